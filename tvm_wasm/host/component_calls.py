"""Host functions for components without wasmtime-py's per-call type rebuild.

wasmtime-py's trampoline rebuilds the Python description of a host
function's type on every call (for ``result<_, tvm-error>`` that is a walk
over twelve variant cases and their records, through ctypes): about 150 µs a
call, ten times what entering Python costs. The ``tvm:memory`` functions
have fixed signatures, so for the shapes they use most (integer, enum, handle
and ``list<u8>`` arguments; ``ok`` results that are unit, u16, a handle or
bytes; plain u32/u64 results) this module reads and writes the C values
directly.

Everything else takes wasmtime-py's own conversion through the type the call
carries: every error result, records such as ``region-info``, and any call
whose argument kinds or field names differ from the expected ones (a
component typed against another WIT). Arguments are checked before any is
consumed, and consumed exactly as wasmtime-py's code consumes them.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from wasmtime import WasmtimeError
from wasmtime import _ffi as ffi
from wasmtime._slab import Slab
from wasmtime.component import LinkerInstance, Variant
from wasmtime.component._enter import catch_exceptions
from wasmtime.component._types import FuncType

from ..core.handle import Handle
from . import component_lists

_VAL = ffi.wasmtime_component_val_t
_U16, _U32, _U64 = ffi.WASMTIME_COMPONENT_U16.value, ffi.WASMTIME_COMPONENT_U32.value, ffi.WASMTIME_COMPONENT_U64.value
_ENUM, _LIST = ffi.WASMTIME_COMPONENT_ENUM.value, ffi.WASMTIME_COMPONENT_LIST.value
_RECORD, _RESULT = ffi.WASMTIME_COMPONENT_RECORD.value, ffi.WASMTIME_COMPONENT_RESULT.value
_HANDLE_FIELDS = ((b"region-id", _U16, "u16"), (b"generation", _U16, "u16"), (b"offset", _U32, "u32"))
_NULL_VAL = ctypes.POINTER(_VAL)()

# Parameter kinds: "u16", "u32", "u64", "enum", "handle", "bytes"; "any" sends the
# arguments through wasmtime-py. Results: "unit", "u16", "handle", "bytes" inside
# result<T, tvm-error>; "u32"/"u64" plain; "any" through wasmtime-py.
_KIND_OF = {"u16": _U16, "u32": _U32, "u64": _U64, "enum": _ENUM, "handle": _RECORD, "bytes": _LIST}


@dataclass(frozen=True)
class Signature:
    params: tuple[str, ...]
    result: str
    is_result: bool = True  # result<T, tvm-error> rather than a plain T

    @classmethod
    def of(cls, params: str, result: str) -> Signature:
        """``Signature.of("handle u32", "result bytes")`` or ``("u16", "u64")``."""
        kinds = tuple(params.split())
        words = result.split()
        return cls(kinds, words[-1], is_result=words[0] == "result")


class _Fallback(Exception):
    """This call's values are not the expected shape: use wasmtime-py's conversion."""


def _name(entry: Any) -> bytes:
    return ctypes.string_at(entry.name.data, entry.name.size)


def _check(arg: Any, kind: str) -> None:
    if arg.kind != _KIND_OF[kind]:
        raise _Fallback
    if kind == "handle":
        fields = arg.of.record
        if fields.size != 3:
            raise _Fallback
        for i, (name, field_kind, _) in enumerate(_HANDLE_FIELDS):
            entry = fields.data[i]
            if entry.val.kind != field_kind or _name(entry) != name:
                raise _Fallback


def _lift(arg: Any, kind: str) -> Any:
    """The Python value of a checked argument, consuming it as wasmtime-py would."""
    if kind == "u16":
        return arg.of.u16
    if kind == "u32":
        return arg.of.u32
    if kind == "u64":
        return arg.of.u64
    if kind == "enum":
        try:
            return ctypes.string_at(arg.of.enumeration.data, arg.of.enumeration.size).decode()
        finally:
            ffi.wasm_byte_vec_delete(ctypes.byref(arg.of.enumeration))
    if kind == "bytes":
        try:
            return component_lists.lift_bytes(arg.of.list)
        finally:
            ffi.wasmtime_component_vallist_delete(ctypes.byref(arg.of.list))
    fields = arg.of.record  # a handle: straight to the model's Handle (``to_handle`` passes it through)
    try:
        data = fields.data
        return Handle(data[0].val.of.u16, data[1].val.of.u16, data[2].val.of.u32)
    finally:
        ffi.wasmtime_component_valrecord_delete(ctypes.byref(fields))


def _lower_ok(value: Any, kind: str, out: Any) -> None:
    """Write a plain ``value`` of ``kind`` into the C value ``out``."""
    if kind == "u16":
        out.kind, out.of.u16 = _U16, value
    elif kind == "u32":
        out.kind, out.of.u32 = _U32, value
    elif kind == "u64":
        out.kind, out.of.u64 = _U64, value
    elif kind == "bytes":
        out.kind, out.of.list = _LIST, component_lists.lower_bytes(value)
    elif kind == "handle":
        fields = ffi.wasmtime_component_valrecord_t()
        ffi.wasmtime_component_valrecord_new_uninit(fields, 3)
        for i, (name, field_kind, attr) in enumerate(_HANDLE_FIELDS):
            entry = fields.data[i]
            entry.name = ffi.str_to_capi(name.decode())
            entry.val.kind = field_kind
            setattr(entry.val.of, attr, getattr(value, name.decode()))
        out.kind, out.of.record = _RECORD, fields
    else:
        raise _Fallback


class FastCall:
    """One host function and how to move its values."""

    def __init__(self, fn: Callable[..., Any], signature: Signature) -> None:
        self.fn = fn
        self.signature = signature
        self.fast_args = "any" not in signature.params

    def invoke(self, store: Any, ty_raw: Any, args: Any, nargs: int, results: Any, nresults: int) -> None:
        signature = self.signature
        fty: FuncType | None = None
        values: Sequence[Any] | None = None
        if self.fast_args and nargs == len(signature.params):
            try:
                for i, kind in enumerate(signature.params):
                    _check(args[i], kind)
                values = [_lift(args[i], kind) for i, kind in enumerate(signature.params)]
            except _Fallback:
                values = None
        if values is None:
            fty = FuncType._from_ptr(ty_raw, owner=store)
            values = [ty.convert_from_c(args[i]) for (_, ty), i in zip(fty.params, range(nargs))]
        result = self.fn(store, *values)
        if nresults != 1:
            raise WasmtimeError(f"expected one result slot, got {nresults}")
        if fty is None:
            try:
                self._lower(result, results[0])
                _counts[0] += 1
                return
            except _Fallback:
                pass
            fty = FuncType._from_ptr(ty_raw, owner=store)
        _counts[1] += 1
        result_ty = fty.result
        assert result_ty is not None
        result_ty.convert_to_c(store, result, results)

    def _lower(self, result: Any, out: Any) -> None:
        signature = self.signature
        if signature.result == "any" or isinstance(result, Variant):
            raise _Fallback  # errors and rich records: wasmtime-py knows them
        if not signature.is_result:
            _lower_ok(result, signature.result, out)
            return
        payload = _NULL_VAL
        if signature.result != "unit":
            if result is None:
                raise _Fallback
            inner = _VAL()
            _lower_ok(result, signature.result, inner)
            payload = ffi.wasmtime_component_val_new(ctypes.byref(inner))
        out.kind = _RESULT
        out.of.result.is_ok = True
        out.of.result.val = payload


_CALLS: Slab[FastCall] = Slab()
_counts = [0, 0]  # calls served entirely by this module, calls that used wasmtime-py's conversion


def counts() -> tuple[int, int]:
    """(direct, fallback) calls so far, process-wide: how often the fast path applied."""
    return _counts[0], _counts[1]


@ffi.wasmtime_component_func_callback_t
def _trampoline(idx, context, ty_raw, args, nargs, results, nresults):  # type: ignore[no-untyped-def]
    call = _CALLS.get(idx or 0)
    return catch_exceptions(context, lambda store: call.invoke(store, ty_raw, args, nargs, results, nresults))


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _finalize(idx):  # type: ignore[no-untyped-def]
    if _CALLS:
        _CALLS.deallocate(idx or 0)


def add_fast_func(instance: LinkerInstance, name: str, fn: Callable[..., Any], signature: Signature) -> FastCall:
    """``instance.add_func(name, fn)``, served by the direct trampoline."""
    instance._assert_not_locked()
    call = FastCall(fn, signature)
    encoded = name.encode()
    index = _CALLS.allocate(call)
    error = ffi.wasmtime_component_linker_instance_add_func(
        instance.ptr(), ctypes.create_string_buffer(encoded), len(encoded), _trampoline, index, _finalize
    )
    if error:
        raise WasmtimeError._from_ptr(error)
    return call
