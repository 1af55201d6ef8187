"""The one classification of a user module's imports (``abi.imports.refused_import``) and its internal names.

Every name the built runtimes carry (the self-contained module, the host
target's runtime, ``TvmHost``'s core module: functions from the name section,
exports and imports) that is not an ABI function must read as a runtime
internal on every entry point, so ``INTERNAL_NAMES``/``INTERNAL_PATTERN`` must
cover them all; and no ABI name may be taken for an internal one.
"""

from __future__ import annotations

import wasmtime

from tvm_wasm import TvmHost
from tvm_wasm.abi.imports import (
    INTERNAL_NAMES,
    REFUSED,
    ImportDecl,
    first_refused,
    is_internal,
    refused_import,
    unserved_import,
)
from tvm_wasm.abi.table import ABI, MODULE, by_name, per_pool_names
from tvm_wasm.guest.module import build_module, validation_engine
from tvm_wasm.linker.link import guest_runtime, host_runtime
from tvm_wasm.linker.names import runtime_internals

SERVED = {"alloc": "(i32 i32) -> (i64)", "read": "(i64 i32 i32) -> (i32)"}


def names_of(wasm: bytes) -> frozenset[str]:
    return runtime_internals(wasm, wasmtime.Module(validation_engine(), wasm))


def abi_name(name: str) -> bool:
    try:
        by_name(name)
    except KeyError:
        return False
    return True


def test_every_runtime_name_outside_the_abi_reads_as_internal():
    names = set()
    for pools in (1, 3):
        names |= names_of(guest_runtime(pools, 16, None, 65536)) | names_of(host_runtime(pools, None))
        names |= names_of(build_module(pools=pools, max_pages=16).wasm)
    with TvmHost(pools=2) as host:
        core = host._modules.core
        names |= {e.name for e in core.exports} | {i.name for i in core.imports}
    missed = sorted(n for n in names if not abi_name(n) and not is_internal(n))
    assert missed == [], f"add these to abi.imports.INTERNAL_NAMES (or a family to INTERNAL_PATTERN): {missed}"


def test_no_abi_name_reads_as_internal():
    assert not INTERNAL_NAMES & {entry.name for entry in ABI}
    for entry in ABI:
        for name in per_pool_names(entry, 3):
            assert unserved_import(name, MODULE, pools=0 if entry.per_pool else 3).find("runtime internal") < 0


def test_each_rule_of_the_classification():
    def why(module: str, name: str, kind: str, signature: str | None = None) -> str | None:
        return refused_import(ImportDecl(module, name, kind, signature), SERVED, MODULE, pools=2)

    assert why("env", "memory", "memory") is None and why("tvm", "memory", "memory") is None
    assert why("tvm", "mem0", "memory") == REFUSED["memory"].format(where="tvm.mem0")
    assert why("env", "heap", "memory") == REFUSED["memory"].format(where="env.heap")
    assert why("env", "__indirect_function_table", "table") == REFUSED["kind"].format(
        where="env.__indirect_function_table", kind="table")
    assert why("tvm", "last_error", "global") == REFUSED["kind"].format(where="tvm.last_error", kind="global")
    assert why("tvm", "alloc", "func", "(i32 i32) -> (i64)") is None
    assert why("tvm", "alloc", "func", None) is None  # a signature nobody could read is left to the engine
    assert why("tvm", "alloc", "func", "(i32) -> (i32)") == (
        "import tvm.alloc: signature (i32) -> (i32) does not match the runtime's (i32 i32) -> (i64)")
    assert why("tvm", "copy_in", "func", "()") == "import tvm.copy_in: " + unserved_import("copy_in", MODULE)
    assert "runtime internal" in why("tvm", "copy_in", "func", "()")
    assert why("env", "log", "func", "(i32) -> ()") is None  # other modules' functions: the entry point's rule
    # the first refused import in the module's order, whatever follows
    imports = [ImportDecl("tvm", "alloc", "func", SERVED["alloc"]), ImportDecl("tvm", "bridge", "table"),
               ImportDecl("tvm", "mem0", "memory")]
    assert first_refused(imports, SERVED, MODULE) == REFUSED["kind"].format(where="tvm.bridge", kind="table")
    # a module linked under another name: its memory import is still the module's own
    assert refused_import(ImportDecl("mine", "memory", "memory"), SERVED, MODULE, abi_module="mine") is None
