"""Machine-readable output: JSON and CSV (nested mappings as dotted columns), and every output file
written atomically (workbooks are built in :mod:`.xlsx`, which uses :func:`flat` from here).

A failed run never leaves a half-written file: everything is rendered in memory first, written
to a temporary file beside the target and renamed over it (:func:`write_atomic`).
"""

from __future__ import annotations

import contextlib
import errno
import csv
import io
import json
import math
import os
import secrets
import signal
import stat
import threading
import time
from pathlib import Path
from typing import Any

from ..catalog.files import show_path
from ..errors import PlanError


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(data: Any) -> str:
    return json.dumps(_clean(data), indent=2) + "\n"


def flat(row: dict) -> dict:
    """Nested mappings become dotted columns (baselines.homogeneous.throughput_req_per_s)."""
    out = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update({f"{k}.{kk}": vv for kk, vv in flat(v).items()})
        elif isinstance(v, (list, tuple)):
            out[k] = json.dumps(_clean(v))
        else:
            out[k] = _clean(v)
    return out


def to_csv(rows: list[dict]) -> str:
    flat_rows = [flat(r) for r in rows]
    columns: list[str] = []
    for r in flat_rows:
        columns += [c for c in r if c not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat_rows)
    return buf.getvalue()


#: Temporary files are named ``.NAME.prfaas-tmp-PID-RANDOM`` beside the target: hidden, and
#: recognisable as ours with the process that wrote them, so a later write to the same target
#: removes those whose process is gone (a run killed with SIGKILL cannot clean up after itself).
_TMP_MARK = ".prfaas-tmp-"
_TMP_NAME_CHARS = 150  # of the target's name, so that the temporary name stays under 255 bytes


#: A temporary file older than this is stale whatever its pid says: a write creates it only once
#: the payload is ready and renames it within a second, and a pid may have been reused since.
STALE_TEMPORARY_AGE_S = 600.0


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs: a zombie (killed, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or not a pid we can ask about: leave its file
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:  # Linux: the state follows the command name
            return fh.read().rpartition(b")")[2].split()[:1] != [b"Z"]
    except OSError:
        return True


def _remove_stale_temporaries(folder: Path, stem: str) -> None:
    """Delete temporary files for this target left by writers that no longer run (or have
    become zombies), or older than STALE_TEMPORARY_AGE_S; a live writer's fresh file stays."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    prefix = f".{stem}{_TMP_MARK}"
    for entry in entries:
        if not entry.name.startswith(prefix):
            continue
        pid_text = entry.name[len(prefix):].split("-", 1)[0]
        try:
            if not (pid_text.isdigit() and entry.is_file(follow_symlinks=False)):
                continue
            old = time.time() - entry.stat(follow_symlinks=False).st_mtime > STALE_TEMPORARY_AGE_S
        except OSError:
            continue
        if old or not _pid_alive(int(pid_text)):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


@contextlib.contextmanager
def _signals_raise():
    """While writing, SIGTERM and SIGHUP raise SystemExit instead of killing the process at once,
    so the ``finally`` below removes the temporary file (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    saved = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            saved[sig] = signal.signal(sig, stop)
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


_OPENED: dict[str, int] = {}  # special targets opened by check_output, kept open for write_atomic


def _open_special(path: Path) -> int:
    """A writable descriptor (blocking) on the special file ``path`` (/dev/null, a FIFO, a pipe
    as /dev/stdout): the one :func:`check_output` opened, else opened now. Opened without
    blocking, so that a FIFO nobody reads is an error at once instead of a hang."""
    fd = _OPENED.pop(str(path), None)
    if fd is None:
        try:
            fd = os.open(path, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                raise PlanError(f"{show_path(path)}: a FIFO that no process reads; not written (start its reader first)") from None
            raise PlanError(f"{show_path(path)}: cannot write ({exc.strerror or exc})") from None
    os.set_blocking(fd, True)
    return fd


def check_output(path: str | Path | None) -> None:
    """Refuse, before any work is done, an output that :func:`write_atomic` would refuse after it:
    a folder, a missing parent folder, a read-only file, a FIFO with no reader (a special target
    is opened now and kept open for the write, so a FIFO's reader does not see the end of it)."""
    if path is None:
        return
    path = Path(path)
    where = show_path(path)
    try:
        real = Path(os.path.realpath(path)) if path.is_symlink() else path
        st = os.stat(real) if real.exists() else None
        parent_ok = real.parent.is_dir()
    except OSError as exc:
        raise PlanError(f"{where}: cannot write ({exc.strerror or exc})") from None
    if not parent_ok:
        raise PlanError(f"{where}: cannot write: {show_path(real.parent)} {'does not exist' if not real.parent.exists() else 'is not a folder'}")
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise PlanError(f"{where}: is a folder; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode) and str(real) not in _OPENED:
        _OPENED[str(real)] = _open_special(real)
    elif st is not None and stat.S_ISREG(st.st_mode) and not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise PlanError(f"{where}: the file is read-only; not replaced (make it writable or choose another name)")


def write_atomic(path: str | Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never
    a part: a temporary file beside it, flushed, then renamed over it. A new file gets the
    permissions a plain ``open()`` would give it (0666 less the umask); a replaced file keeps
    its mode. A read-only file, a folder or a path under a file is refused with one line, and
    nothing is left behind on any failure."""
    path = Path(path)
    where = show_path(path)
    try:
        if path.is_symlink():  # write the file the link points to, as open() would
            path = Path(os.path.realpath(path))
        st = os.stat(path) if path.exists() else None
        parent_ok = path.parent.is_dir()
    except OSError as exc:
        raise PlanError(f"{where}: cannot write ({exc.strerror or exc})") from None
    if not parent_ok:
        what = "does not exist" if not path.parent.exists() else "is not a folder"
        raise PlanError(f"{where}: cannot write: {show_path(path.parent)} {what}")
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise PlanError(f"{where}: is a folder; give a file name")
    if st is not None and not stat.S_ISREG(st.st_mode):  # /dev/null, a pipe with a reader: write through
        fd = _open_special(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data.encode() if isinstance(data, str) else data)
        except OSError as exc:
            raise PlanError(f"{where}: cannot write ({exc.strerror or exc})") from None
        return
    if st is not None and not st.st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH):
        raise PlanError(f"{where}: the file is read-only; not replaced (make it writable or choose another name)")
    payload = data.encode() if isinstance(data, str) else data
    stem = path.name[:_TMP_NAME_CHARS]
    _remove_stale_temporaries(path.parent, stem)
    tmp = path.parent / f".{stem}{_TMP_MARK}{os.getpid()}-{secrets.token_hex(4)}"
    created = False
    try:
        with _signals_raise():
            try:
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
                created = True
                with os.fdopen(fd, "wb") as fh:
                    fh.write(payload)
                    fh.flush()
                    os.fsync(fh.fileno())
                if st is not None:
                    os.chmod(tmp, stat.S_IMODE(st.st_mode))
                os.replace(tmp, path)
                created = False
            finally:
                if created:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
    except OSError as exc:
        raise PlanError(f"{where}: cannot write ({exc.strerror or exc})") from None
