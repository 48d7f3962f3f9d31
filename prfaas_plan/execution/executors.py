"""Executors: run independent tasks (sweep points, risk samples) in order-preserving batches.

One interface, three back ends (dask.distributed's ``ClientExecutor`` idea: the caller sees
``map``, not the pool):

- ``serial``: in this process, one task after another. Every task and its result is pickled and
  unpickled on the way, exactly as a worker would receive them, so a task that cannot travel to
  a worker fails here, in the tests, and not only on a cluster;
- ``process``: a local process pool (``concurrent.futures``). On Linux the workers are forked
  when the pool starts (at once, before the caller starts any thread such as a progress bar):
  they begin with everything this process has imported, where a spawned worker spends ~1 s
  importing numpy and the planner first. Elsewhere (macOS, Windows) they are spawned;
  ``start_method="spawn"`` asks for that on Linux too;
- ``dask``: a Dask distributed cluster: ``scheduler`` joins a running one (its workers must have
  prfaas-plan installed), without it a ``LocalCluster`` of ``workers`` processes is started here
  (and closed with the executor). Needs the optional extra: ``pip install ".[distributed]"``.

Workers run one BLAS thread each, so N workers use N cores, not N x cores: a spawned worker
gets ``OMP_NUM_THREADS`` and friends before numpy loads (Dask's nanny sets the same by default);
a forked one keeps the parent's BLAS, which the CLI loads with one thread (``cli/values.py``;
from Python, set ``OPENBLAS_NUM_THREADS=1`` before importing numpy, or spawn). The planner's
linear algebra is a few tiny fits, so BLAS threads cost start-up, never speed.

Results are identical whichever executor runs them: a task's result depends on the task alone
(tests/test_executors.py runs the same work on all three and compares).
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool

from ..errors import PlanError

KINDS = ("serial", "process", "dask")

#: Environment variables that cap BLAS / OpenMP threads, set to 1 in every worker.
BLAS_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

INSTALL_HINT = 'the dask executor needs dask.distributed: pip install ".[distributed]"'


def default_workers() -> int:
    """The machine's cores (those this process may run on)."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def cap_blas_threads() -> None:
    """One BLAS/OpenMP thread in this process from now on (a worker's initializer)."""
    for var in BLAS_THREAD_VARS:
        os.environ[var] = "1"


def _travel(obj):
    """``obj`` after a pickle round trip, as a worker would see it."""
    try:
        return pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    except (pickle.PicklingError, TypeError, AttributeError) as exc:
        raise PlanError(f"executor: a task cannot be sent to a worker ({exc.__class__.__name__}: {exc})") from None


class Executor:
    """``map(fn, items)`` -> [fn(item) for item in items], in order. ``workers``: how many run at once."""

    kind = "serial"
    workers = 1

    def imap(self, fn: Callable, items: Iterable) -> Iterator:
        """fn(item) for each item, in order, as each becomes available."""
        for item in items:
            f, x = _travel((fn, item))
            yield _travel(f(x))

    def map(self, fn: Callable, items: Iterable) -> list:
        return list(self.imap(fn, items))

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def describe(self) -> str:
        return f"{self.kind}, {self.workers} worker{'s' if self.workers != 1 else ''}"


class ProcessExecutor(Executor):
    kind = "process"

    def __init__(self, workers: int, start_method: str | None = None):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self.start_method = start_method or ("fork" if sys.platform.startswith("linux") else "spawn")
        saved = {v: os.environ.get(v) for v in BLAS_THREAD_VARS}
        cap_blas_threads()  # inherited by spawned workers before they import numpy
        try:
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context(self.start_method), initializer=cap_blas_threads)
            self._pool.submit(int, 0).result()  # start the workers now (forked: all of them, before any thread of the caller's)
        except BrokenProcessPool as exc:
            raise PlanError(f"executor: the process pool could not start ({exc})") from None
        finally:
            for v, old in saved.items():
                if old is None:
                    os.environ.pop(v, None)
                else:
                    os.environ[v] = old

    def imap(self, fn: Callable, items: Iterable) -> Iterator:
        try:
            yield from self._pool.map(fn, items)
        except BrokenProcessPool as exc:
            raise PlanError(f"executor: a worker process died ({exc}); try fewer --workers") from None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(Executor):
    kind = "dask"

    def __init__(self, workers: int, scheduler: str | None = None, processes: bool = True):
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError:
            raise PlanError(INSTALL_HINT) from None
        self._cluster = None
        if scheduler:
            try:
                self._client = Client(scheduler, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise PlanError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc.__class__.__name__})") from None
            self._client.run(cap_blas_threads)
            self.workers = max(len(self._client.scheduler_info().get("workers", {})), 1)
        else:
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=processes, dashboard_address=None)
            self._client = Client(self._cluster)
            self.workers = workers

    def imap(self, fn: Callable, items: Iterable) -> Iterator:
        for future in self._client.map(fn, list(items), pure=False):
            yield future.result()

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(kind: str = "serial", workers: int | None = None, scheduler: str | None = None, processes: bool = True,
                  start_method: str | None = None) -> Executor:
    """The executor ``kind`` (see the module docstring). ``scheduler`` implies ``dask``;
    ``processes=False`` runs a LocalCluster's workers as threads of this process (tests, with one
    worker: the tasks' per-process caches are not shared between threads); ``start_method``:
    the process pool's (default fork on Linux, else spawn)."""
    if scheduler and kind == "serial":
        kind = "dask"
    if kind not in KINDS:
        raise PlanError(f"--executor must be one of {', '.join(KINDS)}, got {kind!r}")
    if scheduler and kind != "dask":
        raise PlanError("--scheduler joins a Dask cluster: use it with --executor dask (or alone)")
    if workers is not None and workers < 1:
        raise PlanError(f"--workers must be >= 1, got {workers}")
    n = workers or default_workers()
    if kind == "serial":
        return Executor()
    if kind == "process":
        return ProcessExecutor(n, start_method)
    return DaskExecutor(n, scheduler, processes)


def chunks(n_items: int, executor: Executor, per_worker: int = 4) -> list[range]:
    """Contiguous index ranges for ``n_items`` tasks: one for a serial executor, else about
    ``per_worker`` per worker (load balance against the cost of sending each)."""
    parts = 1 if executor.workers == 1 else min(n_items, executor.workers * per_worker)
    bounds = [round(i * n_items / max(parts, 1)) for i in range(max(parts, 1) + 1)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
