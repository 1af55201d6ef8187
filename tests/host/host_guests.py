"""Shared helpers for the host acceptance tests: the raw ABI as the issue states it,
WAT guests that forward every ``tvm.*`` import, and small utilities.

The ABI table below is written from the issue text, not read from the runtime,
so a signature drift in the generated runtime fails guest instantiation.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import wasmtime

from raw_abi_spec import CHECKPOINT_ABI, PROTECTION_ABI, RAW_ABI
from tvm_wasm import Handle
from tvm_wasm.core.errors import TvmError


REDUCERS = ("sum_u8", "count_byte", "find_byte", "popcount", "min_max_u8", "hash_fnv1a", "eq", "fill", "byte_histogram")

# (name, width, struct format) of the typed accessors.
TYPED = [
    ("u8", 1, "<B"),
    ("u16", 2, "<H"),
    ("u32", 4, "<I"),
    ("i64", 8, "<q"),
    ("f32", 4, "<f"),
    ("f64", 8, "<d"),
]
TYPED_WIDTH = {name: width for name, width, _ in TYPED}
TYPED_FORMAT = {name: fmt for name, _, fmt in TYPED}


SIGNATURES = {**RAW_ABI, **PROTECTION_ABI, **CHECKPOINT_ABI}


def _sig(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return "".join(f" (param {p})" for p in params) + "".join(f" (result {r})" for r in results)


def abi_imports(names: tuple[str, ...] | None = None) -> str:
    """``(import "tvm" ...)`` lines for the named ABI functions (all by default)."""
    lines = []
    for name in names or tuple(RAW_ABI):
        params, results = SIGNATURES[name]
        lines.append(f'(import "tvm" "{name}" (func $tvm_{name}{_sig(params, results)}))')
    return "\n ".join(lines)


def forwarders(names: tuple[str, ...] | None = None) -> str:
    """One export ``name`` per ABI function that calls the import with its own arguments."""
    funcs = []
    for name in names or tuple(RAW_ABI):
        params, results = SIGNATURES[name]
        gets = " ".join(f"local.get {i}" for i in range(len(params)))
        funcs.append(f'(func (export "{name}"){_sig(params, results)} {gets} call $tvm_{name})')
    return "\n ".join(funcs)


def proxy_guest(*, memory: str = "define", pages: int = 2, extra: str = "", max_pages: int | None = None) -> str:
    """A guest forwarding every raw-ABI import.

    ``memory="define"`` defines and exports its memory; ``"import"`` imports it
    (from ``env``) and re-exports it so tests can look at it.
    """
    limits = f"{pages}" if max_pages is None else f"{pages} {max_pages}"
    if memory == "define":
        mem = f'(memory (export "memory") {limits})'
    elif memory == "import":
        mem = f'(import "env" "memory" (memory {limits}))\n (export "memory" (memory 0))'
    else:
        raise ValueError(memory)
    grow = '(func (export "grow") (param i32) (result i32) local.get 0 memory.grow)'
    size = '(func (export "pages") (result i32) memory.size)'
    return f"(module\n {abi_imports()}\n {mem}\n {forwarders()}\n {grow}\n {size}\n {extra}\n)"


def s32(value: int) -> int:
    """An unsigned 32-bit value as the signed int wasm's i32 takes."""
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def s64(value: int) -> int:
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def u32(value: int) -> int:
    return value & 0xFFFF_FFFF


def packed(handle: Handle | int) -> int:
    """The i64 argument for a handle (or an arbitrary 64-bit pattern)."""
    return handle.to_i64() if isinstance(handle, Handle) else s64(handle)


def raw_handle(region_id: int, generation: int, offset: int) -> int:
    """Pack arbitrary (even invalid) fields into a signed i64."""
    return s64(((region_id & 0xFFFF) << 48) | ((generation & 0xFFFF) << 32) | (offset & 0xFFFF_FFFF))


@dataclass
class Guest:
    """A guest instance with typed helpers around ``host.call``."""

    host: object
    instance: wasmtime.Instance

    @property
    def memory(self) -> wasmtime.Memory:
        mem = self.instance.exports(self.host.store)["memory"]  # type: ignore[attr-defined]
        assert isinstance(mem, wasmtime.Memory)
        return mem

    def __call__(self, name: str, *args: object) -> object:
        params, _ = RAW_ABI.get(name, ((), ()))
        fixed = []
        for i, arg in enumerate(args):
            kind = params[i] if i < len(params) else None
            if isinstance(arg, Handle):
                arg = arg.to_i64()
            if kind == "i32" and isinstance(arg, int):
                arg = s32(arg)
            elif kind == "i64" and isinstance(arg, int):
                arg = s64(arg)
            fixed.append(arg)
        return self.host.call(self.instance, name, *fixed)  # type: ignore[attr-defined]

    def fnv1a(self, handle: object, n: int) -> int:
        """``hash_fnv1a`` through its out-pointer (the last 8 bytes of guest memory); -code on failure."""
        out = self.mem_size() - 8
        code = self("hash_fnv1a", handle, n, out)
        return -code if code else int.from_bytes(self.get(out, 8), "little")  # type: ignore[operator]

    def mem_size(self) -> int:
        return self.memory.data_len(self.host.store)  # type: ignore[attr-defined]

    def mem_view(self) -> np.ndarray:
        from tvm_wasm.host.native import memory_view

        return memory_view(self.memory, self.host.store)  # type: ignore[attr-defined]

    def put(self, offset: int, data: bytes) -> None:
        self.memory.write(self.host.store, data, offset)  # type: ignore[attr-defined]

    def get(self, offset: int, length: int) -> bytes:
        return bytes(self.memory.read(self.host.store, offset, offset + length))  # type: ignore[attr-defined]

    def last_error(self) -> int:
        return int(self("last_error"))  # type: ignore[arg-type]

    def alloc(self, region: int, size: int) -> Handle | None:
        value = int(self("alloc", region, size))  # type: ignore[arg-type]
        return None if value == 0 else Handle.unpack(value)


_ENGINE: wasmtime.Engine | None = None
_compiled: dict[str, wasmtime.Module] = {}


def shared_engine() -> wasmtime.Engine:
    """One engine for all host tests, so the generated runtime compiles once per pool count."""
    global _ENGINE
    if _ENGINE is None:
        from tvm_wasm.host.tvm_host import default_engine

        _ENGINE = default_engine()
    return _ENGINE


def compiled(wat: str) -> wasmtime.Module:
    """A guest compiled once for the shared test engine."""
    if wat not in _compiled:
        _compiled[wat] = wasmtime.Module(shared_engine(), wat)
    return _compiled[wat]


def instantiate(host: object, wat: str | None = None, **kwargs: object) -> Guest:
    return Guest(host, host.instantiate(wat or proxy_guest(**kwargs)))  # type: ignore[attr-defined]


def error_code_of(exc: BaseException) -> int:
    assert isinstance(exc, TvmError), f"not a TvmError: {exc!r}"
    return exc.code


def typed_bytes(kind: str, value: object) -> bytes:
    return struct.pack(TYPED_FORMAT[kind], value)


def typed_value(kind: str, data: bytes) -> object:
    return struct.unpack(TYPED_FORMAT[kind], data)[0]


def fnv1a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFF_FFFF_FFFF_FFFF
    return h


def require_binaryen() -> None:
    """Skip (saying how to install it) when Binaryen, which the linker runs, is missing."""
    import pytest

    from tvm_wasm.linker import ToolMissing, tools

    try:
        tools.binaryen("wasm-merge")
        tools.binaryen("wasm-opt")
    except ToolMissing as exc:
        pytest.skip(str(exc))
