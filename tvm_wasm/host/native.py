"""The one place that touches raw memory: NumPy views over wasmtime memories and madvise.

Everything unsafe (pointers, ctypes, the OS) stays in this module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap

import numpy as np
import wasmtime

MADV_DONTNEED = 4
OS_PAGE = mmap.PAGESIZE

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
_libc.madvise.restype = ctypes.c_int


def memory_view(memory: wasmtime.Memory, store: wasmtime.Store) -> np.ndarray:
    """A zero-copy uint8 view of the memory's current bytes (invalid after it moves)."""
    length = memory.data_len(store)
    if length == 0:
        return np.zeros(0, dtype=np.uint8)
    return np.ctypeslib.as_array(memory.data_ptr(store), shape=(length,))


def memory_address(memory: wasmtime.Memory, store: wasmtime.Store) -> int:
    return ctypes.cast(memory.data_ptr(store), ctypes.c_void_p).value or 0


def release_pages(memory: wasmtime.Memory, store: wasmtime.Store, start: int, length: int) -> None:
    """Give a span's pages back to the OS; they read as zeros afterwards.

    Only whole OS pages inside the span are released; the partial edges are zeroed.
    """
    view = memory_view(memory, store)
    first = -(-start // OS_PAGE) * OS_PAGE
    last = ((start + length) // OS_PAGE) * OS_PAGE
    if last <= first:
        view[start : start + length] = 0
        return
    view[start:first] = 0
    view[last : start + length] = 0
    base = memory_address(memory, store)
    if _libc.madvise(base + first, last - first, MADV_DONTNEED) != 0:
        errno = ctypes.get_errno()
        view[first:last] = 0  # still correct, just not returned to the OS
        raise OSError(errno, f"madvise failed on {last - first} bytes")


def resident_set_bytes() -> int:
    """This process's resident set size, from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * OS_PAGE


def store_id(item: wasmtime.Store | wasmtime.Func | wasmtime.Memory | wasmtime.Global | wasmtime.Table) -> int:
    """The id of the store a wasmtime extern belongs to (a ``Store``: its own, read off a probe global).

    wasmtime's C API aborts the whole process (a Rust panic, "object used with the wrong store") when an
    extern of one store is used in another; the Python package exposes no way to ask, so the id is read
    from the extern's C struct: ``store_id`` directly (funcs, globals) or in its first member (memories,
    tables), as wasmtime 50's ``_bindings`` lay them out."""
    if isinstance(item, wasmtime.Store):
        item = wasmtime.Global(item, wasmtime.GlobalType(wasmtime.ValType.i32(), False), wasmtime.Val.i32(0))
    for field in ("_func", "_global", "_memory", "_table"):
        raw = getattr(item, field, None)
        if raw is not None:
            found = getattr(raw, "store_id", None)
            return int(raw._anon_1.store_id if found is None else found)
    raise TypeError(f"not a wasmtime extern: {type(item).__name__}")
