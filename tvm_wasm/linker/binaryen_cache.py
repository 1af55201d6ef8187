"""Binaryen's outputs, kept so that linking the same module again costs no Binaryen run.

A Binaryen step is a pure function of the tool, its arguments and its input
modules, so :func:`cached` keys each output by the SHA-256 of all three (the
tool by its resolved path, size and modification time, which changes when a
different version is installed). Outputs live in memory for the process (the
last :data:`MEMORY_ENTRIES`) and on disk in :func:`cache_dir`, one file per
key, written atomically after the output's SHA-256; a file that does not match
its digest is recomputed and replaced.

The directory is ``$TVM_WASM_LINK_CACHE`` when set (``off`` or empty: no disk
cache), else ``$XDG_CACHE_HOME/tvm-wasm/link`` (``~/.cache/tvm-wasm/link``).
The linker still verifies the merged output and validates the result on every
link, but an inlined output is code the host runs: keep the directory as
trusted as the program itself (as for compiled components).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from ..core.durable import write_durably

ENV = "TVM_WASM_LINK_CACHE"
MEMORY_ENTRIES = 32
_lock = threading.Lock()
_memory: OrderedDict[str, bytes] = OrderedDict()
_stats = {"runs": 0, "memory_hits": 0, "disk_hits": 0}


def cache_dir() -> Path | None:
    """Where outputs are kept on disk, or None when the disk cache is off."""
    configured = os.environ.get(ENV)
    if configured is not None:
        return None if configured.strip() in ("", "off") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tvm-wasm" / "link"


def stats() -> dict[str, int]:
    """Process-wide counts: Binaryen runs, outputs served from memory, outputs read from disk."""
    return dict(_stats)


def clear_memory() -> None:
    """Forget the in-memory outputs (the disk cache is left alone)."""
    with _lock:
        _memory.clear()


def tool_identity(path: str) -> str:
    """The resolved path, size and modification time of a tool: a new install gives a new identity."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return f"{resolved}:{stat.st_size}:{stat.st_mtime_ns}"


def key_of(tool: str, arguments: Sequence[str], inputs: Sequence[bytes]) -> str:
    digest = hashlib.sha256()
    for part in (tool_identity(tool), "\0".join(arguments)):
        digest.update(part.encode() + b"\xff")
    for wasm in inputs:
        digest.update(len(wasm).to_bytes(8, "little") + hashlib.sha256(wasm).digest())
    return digest.hexdigest()


def cached(tool: str, arguments: Sequence[str], inputs: Sequence[bytes], run: Callable[[], bytes]) -> bytes:
    """The output of ``run()`` (``tool`` with ``arguments`` on ``inputs``), from a cache when it holds one."""
    key = key_of(tool, arguments, inputs)
    with _lock:
        if key in _memory:
            _memory.move_to_end(key)
            _stats["memory_hits"] += 1
            return _memory[key]
    folder = cache_dir()
    path = folder / f"{key}.wasm" if folder is not None else None
    output = _read(path) if path is not None else None
    if output is not None:
        _stats["disk_hits"] += 1
    else:
        output = run()
        _stats["runs"] += 1
        if path is not None:
            _write(path, output)
    with _lock:
        _memory[key] = output
        while len(_memory) > MEMORY_ENTRIES:
            _memory.popitem(last=False)
    return output


def _read(path: Path) -> bytes | None:
    """A kept output, or None when there is none or it does not match its recorded digest."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    digest, output = data[:32], data[32:]
    return output if hashlib.sha256(output).digest() == digest else None


def _write(path: Path, output: bytes) -> None:
    """The output after its SHA-256 (so a damaged file is recomputed, never used), written atomically."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_durably(path, hashlib.sha256(output).digest() + output)
    except OSError:
        pass  # a read-only or full cache directory costs only speed
