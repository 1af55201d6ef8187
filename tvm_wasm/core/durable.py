"""Crash-safe file replacement: the one way tvm-wasm puts a file in place.

A rename is only durable once the directory holding the new name is fsynced
(POSIX leaves the directory entry in the page cache until then, so a power
failure can bring back the old name, or none). Every rename-into-place in the
project goes through :func:`replace_durably`, which does the rename and then
the directory fsync, in that order.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make renames and unlinks inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(temp: str | os.PathLike[str], final: str | os.PathLike[str]) -> None:
    """Rename ``temp`` (already written and fsynced) onto ``final``, then fsync ``final``'s directory."""
    os.replace(temp, final)
    fsync_directory(Path(os.path.abspath(final)).parent)


def write_durably(path: str | os.PathLike[str], data: bytes | bytearray | memoryview) -> Path:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, fsync, rename, directory fsync.

    At every instant ``path`` holds the old content or all of the new one.
    Raises ``OSError`` (the temporary file is removed) when any step fails.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        replace_durably(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def write_parts_durably(final: Path, parts: tuple[bytes | memoryview, ...]) -> None:
    """Write ``parts`` to a new hidden temporary file beside ``final`` (``.NAME.tmp-<16 hex>``), fsync it,
    then :func:`replace_durably` it onto ``final``. On any failure the temporary file is removed and
    ``final`` is untouched; raises ``OSError``."""
    temp = final.parent / f".{final.name}.tmp-{secrets.token_hex(8)}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as stream:
            for part in parts:
                stream.write(part)
            stream.flush()
            os.fsync(stream.fileno())
        replace_durably(temp, final)
    except BaseException:
        try:
            os.unlink(temp)
        except OSError:
            pass
        raise
