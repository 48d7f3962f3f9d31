"""Reading input files safely: every loader (YAML catalog files, trace CSVs and JSONL,
config.json) reads through :func:`read_text` (or :func:`read_text_maybe_gzip` for traces), so
every one of them refuses the same things with one clean line.

Refused: a path that does not exist or cannot be reached (too long, a symlink loop, no
permission), anything that is not a regular file (a folder, a FIFO - opened without blocking,
so it never hangs -, a device), a file larger than the caller's cap, bytes that are not UTF-8
text, and NUL bytes (a binary file). A UTF-8 byte-order mark is accepted and dropped. A gzip
file is refused when it is corrupt or truncated, or decompresses to more than the cap.
"""

from __future__ import annotations

import errno
import os
import stat
import zlib
from pathlib import Path

from ..errors import PlanError

#: Caps on what a loader reads (bytes). Catalog and scenario YAML files are a few KB and a
#: Hugging Face config.json a few KB; traces are the large inputs (the shipped ones ~1 MB).
MAX_YAML_BYTES = 1 << 20
MAX_JSON_BYTES = 1 << 20
MAX_TRACE_BYTES = 256 << 20

_PATH_CHARS = 200  # a path is shortened to this many characters inside a message


def show_path(path: str | Path) -> str:
    """A path as messages show it: whole if short, else its start and end around an ellipsis."""
    text = str(path)
    if len(text) <= _PATH_CHARS:
        return text
    half = _PATH_CHARS // 2
    return f"{text[:half]}\u2026{text[-half:]}"


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "file not found"
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno == errno.ENAMETOOLONG:
        return "file name too long"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.errno == errno.ENOTDIR:
        return "a part of the path is not a folder"
    return f"cannot read ({exc.strerror or exc.__class__.__name__})"


def check_regular_file(path: str | Path, what: str = "file") -> os.stat_result:
    """The ``stat`` of ``path`` if it is an existing regular file (symlinks followed), else a
    PlanError naming the path and what it is instead."""
    try:
        st = os.stat(path)
    except (OSError, ValueError) as exc:  # ValueError: an embedded NUL character
        reason = _reason(exc) if isinstance(exc, OSError) else "not a valid path"
        raise PlanError(f"{show_path(path)}: {reason}") from None
    if stat.S_ISDIR(st.st_mode):
        raise PlanError(f"{show_path(path)}: is a folder, expected a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise PlanError(f"{show_path(path)}: not a regular file (a pipe, socket or device), expected a {what}")
    return st


def is_regular_file(path: str | Path) -> bool:
    """Like Path.is_file(), but False (never an exception) for unreachable paths."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def read_bytes(path: str | Path, what: str, max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them (else a PlanError).
    ``what`` names the expected content for messages ("YAML file")."""
    check_regular_file(path, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise PlanError(f"{show_path(path)}: {_reason(exc)}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for a FIFO since the check above
            raise PlanError(f"{show_path(path)}: not a regular file, expected a {what}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    except OSError as exc:
        raise PlanError(f"{show_path(path)}: {_reason(exc)}") from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise PlanError(f"{show_path(path)}: larger than {max_bytes:,} bytes, the limit for a {what}")
    return data


def decode_text(data: bytes, path: str | Path, what: str) -> str:
    """``data`` as UTF-8 text (a byte-order mark dropped); NUL bytes or invalid UTF-8 are a
    PlanError naming ``path`` and the line."""
    if b"\x00" in data:
        raise PlanError(f"{show_path(path)}: binary data (NUL bytes), expected a {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PlanError(f"{show_path(path)}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}), expected a {what}") from None


def read_text(path: str | Path, what: str, max_bytes: int) -> str:
    """The UTF-8 text of the regular file ``path`` (a byte-order mark dropped), at most
    ``max_bytes`` long. ``what`` names the expected content for messages ("YAML file")."""
    return decode_text(read_bytes(path, what, max_bytes), path, what)


GZIP_MAGIC = b"\x1f\x8b"


def gunzip_bytes(data: bytes, path: str | Path, what: str, max_bytes: int) -> bytes:
    """The decompressed content of gzip ``data`` (every member of a multi-member file), at most
    ``max_bytes`` of it: a larger output (a "zip bomb"), a corrupt or truncated stream, or
    trailing bytes that are not gzip are each a PlanError naming ``path``."""
    out, total, rest = [], 0, data
    while rest:
        if rest[:2] != GZIP_MAGIC:
            raise PlanError(f"{show_path(path)}: not a valid gzip file (bad header at byte {len(data) - len(rest):,}), expected a gzip-compressed {what}")
        z = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = z.decompress(rest, max_bytes - total + 1)
        except zlib.error as exc:
            raise PlanError(f"{show_path(path)}: not a valid gzip file ({exc}), expected a gzip-compressed {what}") from None
        total += len(chunk)
        if total > max_bytes:
            raise PlanError(f"{show_path(path)}: decompresses to more than {max_bytes:,} bytes, the limit for a {what}")
        out.append(chunk)
        if not z.eof:
            raise PlanError(f"{show_path(path)}: truncated gzip file (the compressed stream ends early), expected a gzip-compressed {what}")
        rest = z.unused_data
    return b"".join(out)


def read_text_maybe_gzip(path: str | Path, what: str, max_bytes: int) -> str:
    """Like :func:`read_text`, for a plain or gzip-compressed file (told apart by the gzip magic
    bytes, not the name; a ``.gz`` name on a file without them is refused as not gzip).
    ``max_bytes`` caps both the file and its decompressed text."""
    data = read_bytes(path, what, max_bytes)
    if data[:2] == GZIP_MAGIC or str(path).endswith(".gz"):
        data = gunzip_bytes(data, path, what, max_bytes)
    return decode_text(data, path, what)
