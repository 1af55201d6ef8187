"""Compiled components, compiled once per engine: in memory, and optionally on disk.

Compiling a component is the expensive step of instantiating one (a default
componentize-py guest is ~18 MB of wasm: seconds of Cranelift and hundreds of
MiB each time), while a compiled ``Component`` can be instantiated any number
of times, in any store of its engine. So :func:`load_component` keys compiled
components by the SHA-256 of their bytes and by engine:

* in memory, per engine (held weakly: dropping the engine drops its entries),
  the ``max_entries`` most recently used;
* on disk when a ``cache_dir`` is given: ``Component.serialize()`` output in
  ``<cache_dir>/<engine fingerprint>/<sha256>.cwasm``, written atomically. The engine fingerprint
  hashes wasmtime's version and the serialized form of an empty component
  compiled by that engine, which records the engine's compilation settings, so
  engines configured differently never share a file. A file that no longer
  deserializes is recompiled and replaced. Deserializing runs no checks on the
  machine code: keep the cache directory as trusted as the program itself.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import threading
import weakref
from collections import OrderedDict
from pathlib import Path

from wasmtime import Engine, WasmtimeError
from wasmtime.component import Component

from ..core.durable import write_durably
from .component_errors import ComponentLoadError

ComponentSource = Component | bytes | bytearray | memoryview | str | os.PathLike[str]
DEFAULT_MAX_ENTRIES = 16

_lock = threading.Lock()
_memory: weakref.WeakKeyDictionary[Engine, OrderedDict[str, Component]] = weakref.WeakKeyDictionary()
_fingerprints: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_stats = {"compiled": 0, "memory_hits": 0, "disk_hits": 0}


def stats() -> dict[str, int]:
    """Process-wide counts: components compiled, served from memory, loaded from disk."""
    return dict(_stats)


def clear_memory() -> None:
    """Forget every in-memory compiled component (the disk cache is left alone)."""
    with _lock:
        _memory.clear()


def _wasmtime_version() -> str:
    try:
        return importlib.metadata.version("wasmtime")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def engine_fingerprint(engine: Engine) -> str:
    """A short hash that differs between engines whose compiled code is not interchangeable."""
    with _lock:
        found = _fingerprints.get(engine)
    if found is None:
        probe = Component(engine, "(component)").serialize()
        digest = hashlib.sha256(f"wasmtime {_wasmtime_version()}\n".encode())
        digest.update(bytes(probe))
        found = digest.hexdigest()[:16]
        with _lock:
            _fingerprints[engine] = found
    return found


def _read(source: bytes | bytearray | memoryview | str | os.PathLike[str]) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"expected a Component, its bytes or a path, got {type(source).__name__}")
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise ComponentLoadError(f"cannot read component {os.fspath(source)!r}: {exc.strerror or exc}") from exc


def _compile(engine: Engine, wasm: bytes, origin: str) -> Component:
    try:
        component = Component(engine, wasm)
    except WasmtimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid component"
        raise ComponentLoadError(f"{origin} is not a valid component: {first}") from exc
    _stats["compiled"] += 1
    return component


def _from_disk(engine: Engine, path: Path) -> Component | None:
    if not path.is_file():
        return None
    try:
        component = Component.deserialize_file(engine, str(path))
    except WasmtimeError:
        return None  # another wasmtime, another configuration, or a damaged file: recompile
    _stats["disk_hits"] += 1
    return component


def _to_disk(component: Component, path: Path) -> None:
    """Write atomically (``core.durable``), so a reader never sees half a file. Never rewrite a
    cache file in place: a loaded component maps its file, and would lose its code under it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_durably(path, component.serialize())


def _save(component: Component, path: Path) -> None:
    try:
        _to_disk(component, path)
    except OSError:
        pass  # a read-only or full cache directory costs only the next compile


def load_component(
    engine: Engine,
    source: ComponentSource,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    max_entries: int = DEFAULT_MAX_ENTRIES,
) -> Component:
    """A compiled ``Component`` for ``source`` (a ``Component`` passes through unchanged).

    Raises ``ComponentLoadError`` for a missing file or bytes that are not a
    component, ``TypeError`` for another kind of ``source``. A failure to write
    the disk cache is not an error (the compiled component is still returned).
    """
    if isinstance(source, Component):
        return source
    origin = f"component file {os.fspath(source)!r}" if isinstance(source, (str, os.PathLike)) else "component bytes"
    wasm = _read(source)
    key = hashlib.sha256(wasm).hexdigest()
    disk = Path(cache_dir) / engine_fingerprint(engine) / f"{key}.cwasm" if cache_dir is not None else None
    with _lock:
        entries = _memory.setdefault(engine, OrderedDict())
        found = entries.get(key)
        if found is not None:
            entries.move_to_end(key)
            _stats["memory_hits"] += 1
    if found is not None:
        if disk is not None and not disk.is_file():
            _save(found, disk)  # compiled before a cache_dir was asked for: keep it there too
        return found
    component = _from_disk(engine, disk) if disk is not None else None
    if component is None:
        component = _compile(engine, wasm, origin)
        if disk is not None:
            _save(component, disk)
    with _lock:
        entries = _memory.setdefault(engine, OrderedDict())
        entries[key] = component
        entries.move_to_end(key)
        while len(entries) > max(1, max_entries):
            entries.popitem(last=False)
    return component
