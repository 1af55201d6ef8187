"""WASI preview 2 for component guests: what a guest imports, and the configuration it gets.

``wasi=`` takes the same values as ``TvmHost.instantiate`` (core modules,
WASI preview1, ``host.wasi``), here for WASI preview 2:

* ``None`` (the default): no WASI. A guest that imports any ``wasi:*``
  interface is refused with ``WasiNotConfigured`` (a ``ValueError``, as for
  core modules) before anything runs: a WASI import called on a store without
  a WASI context aborts the process inside wasmtime's C API, so this is
  checked up front, never left to a call.
* ``True``: ``host.wasi.default_wasi_config()`` (stdio inherited; no
  arguments, environment or directories), except that stderr goes through
  Python: it still reaches the process's stderr, and its last 4 KiB are kept
  for the message of a ``GuestTrapped`` error (a Python or JavaScript guest
  prints its traceback there before it traps).
* a ``wasmtime.WasiConfig``: used as given. wasmtime consumes a ``WasiConfig``
  when a store takes it, and each component guest has a store of its own, so
  each ``WasiConfig`` serves one guest.
"""

from __future__ import annotations

import sys
from collections import deque

from wasmtime import Engine, WasiConfig
from wasmtime.component import Component

from .wasi import default_wasi_config

WasiSpec = bool | WasiConfig | None
STDERR_TAIL_BYTES = 4096


def wasi_imports(component: Component, engine: Engine) -> list[str]:
    """The component's imports from WASI packages (``wasi:io/poll@0.2.9``, ...), sorted."""
    return sorted(name for name in component.type.imports(engine) if name.startswith("wasi:"))


class StderrTail:
    """A WASI stderr that forwards to ``sys.stderr`` and remembers the last bytes written."""

    def __init__(self, limit: int = STDERR_TAIL_BYTES) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self.limit = limit

    def write(self, data: bytes) -> None:
        try:
            sys.stderr.write(data.decode(errors="replace"))
            sys.stderr.flush()
        except (OSError, ValueError):
            pass  # a closed stderr must not make the guest trap
        self._chunks.append(bytes(data))
        self._size += len(data)
        while self._size - len(self._chunks[0]) >= self.limit and len(self._chunks) > 1:
            self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        """What the guest wrote last (up to ``limit`` bytes), decoded."""
        return b"".join(self._chunks)[-self.limit :].decode(errors="replace")


def wasi_config(wasi: WasiSpec) -> tuple[WasiConfig | None, StderrTail | None]:
    """The configuration ``wasi`` stands for, and the stderr tail it keeps (``True`` only).

    Raises ``TypeError`` for any other value.
    """
    if wasi is None or wasi is False:
        return None, None
    if wasi is True:
        config = default_wasi_config()
        tail = StderrTail()
        config.stderr_custom = tail.write  # a setter property in wasmtime-py
        return config, tail
    if isinstance(wasi, WasiConfig):
        return wasi, None
    raise TypeError(f"wasi must be None, True or a wasmtime.WasiConfig, got {type(wasi).__name__}")
