"""Executors (issue 18): serial, process pool and Dask give identical results; a task that
cannot be pickled fails on the serial path too; dask missing is one line saying how to install it."""

from __future__ import annotations

import builtins
import json

import pytest

from prfaas_plan.errors import PlanError
from prfaas_plan.execution import executors
from prfaas_plan.execution.executors import Executor, chunks, make_executor
from prfaas_plan.planning.overrides import parse_axis
from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.planning.sweep import sweep
from prfaas_plan.planning.uncertainty import parse_uncertain
from prfaas_plan.risk.analysis import risk

UNCERTAIN = dict(parse_uncertain(t) for t in ("arrival_rate_factor=lognormal(mu=0.05,sigma=0.1)", "input_tokens_factor=uniform(min=0.9,max=1.2)",
                                              "link_bandwidth_factor=uniform(min=0.5,max=1)"))


def _work(ex):
    """A small sweep and a small risk run on ``ex``, as JSON text (byte comparison)."""
    sc = load_scenario("budget-case-study")
    rows = sweep(sc, [parse_axis("objective.budget_usd_per_hour=1000:4000:5")], executor=ex)
    r = risk(sc, samples=12, seed=3, uncertain=UNCERTAIN, executor=ex)
    return json.dumps({"sweep": rows, "risk": r}, sort_keys=True, default=str)


@pytest.fixture(scope="module")
def serial_result():
    return _work(Executor())


def test_process_pool_gives_identical_results(serial_result):
    with make_executor("process", workers=2) as ex:
        assert ex.workers == 2
        assert _work(ex) == serial_result


def test_dask_local_cluster_gives_identical_results(serial_result):
    """A LocalCluster with one in-process worker (light enough for the test machine)."""
    pytest.importorskip("dask.distributed")
    with make_executor("dask", workers=1, processes=False) as ex:
        assert ex.kind == "dask"
        assert _work(ex) == serial_result


def test_chunking_does_not_change_results(serial_result):
    """A result depends on its task alone: four workers' worth of chunks give the same rows."""

    class FourChunks(Executor):
        workers = 4

    assert _work(FourChunks()) == serial_result


def test_serial_path_pickles_tasks():
    """A task that cannot travel to a worker (a lambda) fails here, not only on a cluster."""
    with pytest.raises(PlanError, match="cannot be sent to a worker"):
        Executor().map(lambda x: x, [1])
    assert Executor().map(abs, [-1, 2]) == [1, 2]


def test_missing_dask_is_one_line(monkeypatch):
    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.startswith("dask"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(PlanError, match=r'pip install "\.\[distributed\]"'):
        make_executor("dask", workers=1)


@pytest.mark.parametrize("kwargs, message", [({"kind": "threads"}, "--executor must be one of"), ({"kind": "process", "workers": 0}, "--workers must be >= 1"),
                                             ({"kind": "process", "scheduler": "tcp://x:1"}, "--scheduler joins a Dask cluster")])
def test_bad_executor_options(kwargs, message):
    with pytest.raises(PlanError, match=message):
        make_executor(**kwargs)


def test_chunks_cover_every_item_once():
    class Two(Executor):
        workers = 2

    parts = chunks(10, Two())
    assert [i for r in parts for i in r] == list(range(10)) and len(parts) == 8
    assert chunks(3, Executor()) == [range(0, 3)]
    assert executors.default_workers() >= 1


def test_spawned_process_pool_works():
    """The start method used off Linux (and on request): fresh interpreters that import the task's module."""
    with make_executor("process", workers=1, start_method="spawn") as ex:
        assert ex.map(abs, [-3, 4]) == [3, 4]
