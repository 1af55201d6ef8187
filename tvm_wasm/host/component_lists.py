"""Bulk conversion of ``list<u8>`` values between Python ``bytes`` and wasmtime's C API.

wasmtime-py (50.0.1) converts a ``list<u8>`` one element at a time in Python,
about 1 µs per byte per direction: a 64 KiB ``bytes.read`` costs ~70 ms on the
host side alone. In the C API each element is a fixed-size tagged value
(``kind`` byte + union), so NumPy can fill or gather the whole list with two
strided copies instead.

``install()`` swaps ``ListType.convert_to_c`` / ``convert_from_c`` for
versions that take this route for ``list<u8>`` only (every other list type
keeps the stock code). Offsets come from ctypes' own description of the
structs, and a self-check against ctypes field access must pass first;
otherwise nothing is patched and the stock path stays in use.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np
from wasmtime import _ffi as ffi
from wasmtime.component import _types

_VAL = ffi.wasmtime_component_val_t
_VAL_SIZE = ctypes.sizeof(_VAL)
_KIND_OFFSET = _VAL.kind.offset
_U8_OFFSET = _VAL.of.offset + dict(_VAL._fields_)["of"].u8.offset
_KIND_U8 = ffi.WASMTIME_COMPONENT_U8.value

_stock_to_c = _types.ListType.convert_to_c
_stock_from_c = _types.ListType.convert_from_c
_installed = False


def _grid(address: int, count: int) -> np.ndarray:
    """The ``count`` values at ``address`` as a (count, value-size) byte matrix."""
    buffer = (ctypes.c_uint8 * (count * _VAL_SIZE)).from_address(address)
    return np.ctypeslib.as_array(buffer).reshape(count, _VAL_SIZE)


def lower_bytes(data: bytes | bytearray | memoryview) -> Any:
    """A new C ``vallist`` of u8 values holding ``data``; the caller owns it."""
    payload = np.frombuffer(data, dtype=np.uint8)
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(raw, payload.size)
    if payload.size:
        grid = _grid(ctypes.addressof(raw.data.contents), payload.size)
        grid[:, _KIND_OFFSET] = _KIND_U8
        grid[:, _U8_OFFSET] = payload
    return raw


def lift_bytes(raw: Any) -> bytes:
    """The bytes of a C ``vallist`` of u8 values (ownership stays with the caller)."""
    count = int(raw.size)
    if count == 0:
        return b""
    return _grid(ctypes.addressof(raw.data.contents), count)[:, _U8_OFFSET].tobytes()


def _convert_to_c(self: Any, store: Any, val: Any, ptr: Any) -> None:
    if not self._is_bytes():
        return _stock_to_c(self, store, val, ptr)
    if not isinstance(val, (bytes, bytearray, memoryview)):
        raise TypeError("expected bytes value")
    raw = lower_bytes(val)
    ptr.contents.kind = ffi.WASMTIME_COMPONENT_LIST
    ptr.contents.of.list = raw
    return None


def _convert_from_c(self: Any, c: Any) -> Any:
    if not self._is_bytes():
        return _stock_from_c(self, c)
    assert c.kind == ffi.WASMTIME_COMPONENT_LIST.value
    try:
        return lift_bytes(c.of.list)
    finally:
        ffi.wasmtime_component_vallist_delete(ctypes.byref(c.of.list))


def self_check() -> bool:
    """Do the bulk routines agree with ctypes' element-wise view of the same memory?"""
    sample = bytes(range(256)) * 3 + b"\x00\xff"
    raw = lower_bytes(sample)
    try:
        for i, byte in enumerate(sample):
            if raw.data[i].kind != _KIND_U8 or raw.data[i].of.u8 != byte:
                return False
        for i in range(len(sample)):  # and back: ctypes writes, the bulk path reads
            raw.data[i].of.u8 = sample[-1 - i]
        return lift_bytes(raw) == sample[::-1]
    finally:
        ffi.wasmtime_component_vallist_delete(ctypes.byref(raw))


def install() -> bool:
    """Use bulk ``list<u8>`` conversion from now on (idempotent); False if the self-check failed."""
    global _installed
    if _installed:
        return True
    if _VAL_SIZE <= _U8_OFFSET or not self_check():
        return False
    _types.ListType.convert_to_c = _convert_to_c  # type: ignore[method-assign]
    _types.ListType.convert_from_c = _convert_from_c  # type: ignore[method-assign]
    _installed = True
    return True


def uninstall() -> None:
    """Back to wasmtime-py's element-wise conversion (benchmarks compare the two)."""
    global _installed
    _types.ListType.convert_to_c = _stock_to_c  # type: ignore[method-assign]
    _types.ListType.convert_from_c = _stock_from_c  # type: ignore[method-assign]
    _installed = False


def installed() -> bool:
    return _installed
