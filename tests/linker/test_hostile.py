"""No way out: hostile user modules are refused before the merge, and the verifier catches what slips past.

Each module tries to reach what only runtime code may touch: the pools, the
directory, the bridge table, runtime globals and internal functions.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import wasmtime

from tvm_wasm import Handle, RegionKind
from tvm_wasm.abi.table import ABI
from tvm_wasm.runtime.link_errors import LinkRefused
from tvm_wasm.guest.instance import GuestInstance
from tvm_wasm.cli import main
from tvm_wasm.guest.module import build_module, build_wat, validation_engine
from tvm_wasm.linker import VerificationFailed, link
from tvm_wasm.linker.verify import MARK, RuntimeCounts, mark_runtime, named, verify
from tvm_wasm.runtime import sections

REFUSED = {
    "imports a pool": '(module (import "tvm" "mem0" (memory 1)))',
    "imports the host's pool": '(module (import "tvm_host" "pool0" (memory 0 65536)))',
    "imports the directory": '(module (import "tvm_host" "meta" (memory 1)))',
    "imports the bridge table": '(module (import "tvm" "bridge" (table 4 funcref)))',
    "imports a runtime global": '(module (import "tvm" "trap_code" (global (mut i32))))',
    "imports an internal function": '(module (import "tvm" "check_handle" (func (param i64) (result i32))))',
    "imports a function with the wrong type": '(module (import "tvm" "alloc" (func (param i32) (result i32))))',
    "imports an undeclared function": '(module (import "env" "syscall" (func)))',
    "imports from the host module": '(module (import "tvm_host" "fault" (func (param i32) (result i32))))',
    "declares two memories": '(module (memory 1) (memory 1))',
    "imports a second memory": '(module (import "env" "memory" (memory 1)) (import "tvm" "memory" (memory 1)))',
    "names a pool by index (invalid alone)": '(module (memory 1) (func i32.const 0 i32.const 0 i32.const 1 memory.fill 1))',
    "is a binary of another kind": "\0asm\x0d\0\x01\0",
}


GUEST_EXPORTS = {  # names the self-contained module exports (the host target's ABI exports are renamed "tvm:...")
    "exports a runtime name": '(module (func (export "alloc")))',
    "exports a runtime global's name": '(module (func (export "trap_code")))',
    "exports a control-plane name": '(module (func (export "create_region")))',
    "exports a pool's name": '(module (global (export "mem0") i32 (i32.const 0)))',
}


@pytest.mark.parametrize("name", list(REFUSED))
@pytest.mark.parametrize("target", ["guest", "host"])
def test_refused_before_anything_is_merged(binaryen, name, target):
    with pytest.raises(LinkRefused):
        link(REFUSED[name], target=target, pools=2, max_pages=16)


def test_host_target_leaves_abi_names_to_the_user_but_not_its_own(binaryen):
    link('(module (func (export "alloc")))', target="host", pools=1)
    with pytest.raises(LinkRefused, match="shadow"):
        link('(module (func (export "tvm:alloc")))', target="host", pools=1)


@pytest.mark.parametrize("name", list(GUEST_EXPORTS))
def test_shadowing_a_guest_module_export_is_refused(binaryen, name):
    with pytest.raises(LinkRefused, match="shadow"):
        link(GUEST_EXPORTS[name], target="guest", pools=2, max_pages=16)


def test_declared_imports_are_allowed_and_stay_imports(binaryen):
    module = link('(module (import "env" "log" (func (param i32))) (func (export "f") i32.const 1 call 0))',
                  target="guest", pools=1, max_pages=4, allow_imports=["env.log"])
    assert module.imports == (("env", "log"),)
    with pytest.raises(ValueError, match="cannot be declared"):
        link("(module)", allow_imports=["tvm_host.pool0"])


def test_calling_the_abi_through_the_users_own_table_is_contained(binaryen):
    """tvm.alloc placed in the user's table: calls with its type work, a wrong type traps; nothing else reachable."""
    user = """(module
      (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
      (type $wrong (func (param i32) (result i32)))
      (type $right (func (param i32 i32) (result i64)))
      (table 2 funcref) (elem (i32.const 0) func $alloc)
      (func (export "ok") (param i32) (result i64) local.get 0 i32.const 16 i32.const 0 call_indirect (type $right))
      (func (export "bad") (result i32) i32.const 1 i32.const 0 call_indirect (type $wrong))
      (func (export "empty") (result i32) i32.const 1 i32.const 1 call_indirect (type $wrong)))"""
    g = GuestInstance(link(user, target="guest", pools=1, max_pages=4).wasm)
    region = g.create_region(RegionKind.OBJECT_ARENA, 64)
    assert Handle.unpack(g.raw("ok", region)) == Handle(region, 1, 0)
    for name in ("bad", "empty"):
        with pytest.raises(wasmtime.Trap):
            g.raw(name)


def test_growing_and_filling_its_own_memory_touches_no_region(binaryen):
    user = """(module (memory 1)
      (func (export "grow_fill") (result i32)
        i32.const 100 memory.grow drop
        i32.const 0 i32.const 0xAB i32.const 0x650000 memory.fill
        memory.size))"""
    g = GuestInstance(link(user, target="guest", pools=1, max_pages=4).wasm)
    region = g.create_region(RegionKind.OBJECT_ARENA, 4096)
    g.write(Handle(region, 1, 0), b"\x11" * 4096)
    assert g.raw("grow_fill") == 101
    assert g.read(Handle(region, 1, 0), 4096) == b"\x11" * 4096
    assert g.pool_memory(0).size(g.store) <= 4


# ---------------------------------------------------------------- the verifier, on hand-made "linked" modules
@pytest.fixture(scope="module")
def runtime_counts():
    runtime = build_module(pools=2, max_pages=16)
    exports = {e.name for e in wasmtime.Module(wasmtime.Engine(), runtime.wasm).exports}
    return RuntimeCounts.of(runtime.wasm), exports


def spliced(user_wat: str) -> bytes:
    """A "linked" module made by hand: the runtime's fields first, then the user's, and the runtime's
    functions, tables and globals marked as the merge of a marked runtime would have them."""
    runtime = build_module(pools=2, max_pages=16).wasm
    linked = bytes(wasmtime.wat2wasm(build_wat(2, 1, 16, 65536, user_wat=user_wat)))
    marked = mark_runtime(runtime)
    marks = [e for e in sections.export_entries(dict(sections.sections(marked))[sections.SEC_EXPORT])
             if e[0].startswith(MARK)]
    return sections.edit_exports(linked, lambda entries: [*entries, *marks])


SMUGGLED = {
    "an export of a runtime global": '(export "g" (global $last_error))',
    "an export of an internal function": '(export "f" (func $check_handle))',
    "a load from a pool": '(func (export "u") (result i32) i32.const 0 i32.load $p0)',
    "a store to the directory": '(func (export "u") i32.const 0 i32.const 0 i32.store $meta)',
    "filling a pool": '(func (export "u") i32.const 0 i32.const 0 i32.const 8 memory.fill $p1)',
    "growing a pool": '(func (export "u") (result i32) i32.const 1 memory.grow $p1)',
    "copying a pool to the user memory": '(func (export "u") i32.const 0 i32.const 0 i32.const 8 memory.copy $g $p0)',
    "a SIMD load from a pool": '(func (export "u") (result v128) i32.const 0 v128.load $p0)',
    "the bridge table": '(func (export "u") (result i32) (call_indirect $bridge (type $t_copy) '
                        '(i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))',
    "setting a runtime global": '(func (export "u") i32.const 0 global.set $last_error)',
    "calling an internal function": '(func (export "u") (result i32) i64.const 0 call $check_handle)',
    "a reference to an internal function": '(elem declare func $check_handle) (func (export "u") ref.func $check_handle drop)',
    "a data segment in the directory": '(data (memory $meta) (i32.const 0) "x")',
    "an element segment in the bridge table": '(func $mine (param i32 i32 i32 i32) (result i32) i32.const 0) '
                                              '(elem (table $bridge) (i32.const 0) func $mine)',
    "exporting the bridge table": '(export "t" (table $bridge))',
}


@pytest.mark.parametrize("name", list(SMUGGLED))
def test_verifier_rejects_user_code_naming_runtime_internals(binaryen, runtime_counts, name):
    counts, exports = runtime_counts
    wasm = spliced(SMUGGLED[name])
    with pytest.raises(VerificationFailed):
        verify(wasm, counts, exports)


def test_verifier_accepts_abi_calls_user_memory_and_own_tables(runtime_counts):
    counts, exports = runtime_counts
    ok = """(global $mine (mut i32) (i32.const 0)) (table $t 1 funcref) (elem (table $t) (i32.const 0) func $alloc)
      (func (export "u") (result i32) i32.const 0 i32.load global.get $mine i32.add
        i32.const 1 i32.const 8 call $alloc drop
        i32.const 0 i32.const 0 i32.const 4 memory.fill $g)
      (start $init) (func $init i32.const 1 global.set $mine)"""
    verify(spliced(ok), counts, exports)


@pytest.mark.parametrize("line, names", [
    ("i32.load offset=8", [("memory", 0)]),
    ("i32.load 3 offset=8 align=1", [("memory", 3)]),
    ("memory.copy 0 2", [("memory", 0), ("memory", 2)]),
    ("memory.copy", [("memory", 0), ("memory", 0)]),
    ("memory.init 1 4", [("memory", 1)]),
    ("memory.init 4", [("memory", 0)]),
    ("v128.load8_lane 2 offset=4 7", [("memory", 2)]),
    ("v128.load8_lane 7", [("memory", 0)]),
    ("call_indirect 1 (type 3)", [("table", 1)]),
    ("call_indirect (type 3)", [("table", 0)]),
    ("table.copy 1 2", [("table", 1), ("table", 2)]),
    ("global.get 5", [("global", 5)]),
    ("return_call 9", [("func", 9)]),
    ("i32.add", []),
    ("memory.atomic.fence", []),
])
def test_what_an_instruction_names(line, names):
    assert named(line) == names


def test_the_names_the_guest_runtime_exports_are_the_ones_docs_guests_lists():
    """docs/guests.md says which export names a guest linked --target guest cannot use: the raw ABI
    table's functions, the per-pool typed paths, the memories and the trap/ABI globals. Every name the
    runtime exports must fall under that rule, or the page would promise a name the linker refuses."""
    config = wasmtime.Config()
    config.wasm_multi_memory = True
    runtime = wasmtime.Module(wasmtime.Engine(config), build_module(pools=3).wasm)
    abi = {entry.name for entry in ABI}
    listed = re.compile(r"\w+_p\d+|mem\d+|memory|trap_\w+|abi_version|abi_fingerprint")
    outside = [e.name for e in runtime.exports if e.name not in abi and not listed.fullmatch(e.name)]
    assert outside == []
    page = (Path(__file__).resolve().parents[2] / "docs" / "guests.md").read_text()
    section = page.split("## Export names on the guest target", 1)[1].split("\n## ", 1)[0]
    for named in ("raw ABI table", "<op>_p<N>", "`memory`", "`mem0`", "`abi_version`", "`abi_fingerprint`", "`trap_*`"):
        assert named in section


# Exports the linked module would shadow or drop, whatever their kind, on every target (the user's memory is
# exported as "memory" by the linked module, and only so; the runtime's names stay the runtime's). Each row:
# (module, the export, targets where the runtime's export would shadow it, targets where it would be dropped);
# on any other target the export links and is kept.
GUEST, HOST, BOTH = ("guest",), ("host",), ("guest", "host")
SHADOWED_OR_DROPPED = {
    "a memory exported as a pool's name": (
        '(module (memory (export "mem0") 1) (func (export "go") (result i32) i32.const 7))', "mem0", GUEST, HOST),
    "a memory exported as memory and as a pool": ('(module (memory (export "memory") (export "mem1") 1))', "mem1",
                                                  GUEST, HOST),
    "a memory exported under another name": ('(module (memory (export "heap") 1))', "heap", (), BOTH),
    "a table as the memory's name": ('(module (table (export "memory") 1 funcref))', "memory", BOTH, ()),
    "a global as the memory's name": ('(module (global (export "memory") i32 (i32.const 0)))', "memory", BOTH, ()),
    "a function as a pool's name": ('(module (func (export "mem0")))', "mem0", GUEST, ()),
    "a global as the ABI fingerprint": ('(module (global (export "abi_fingerprint") i32 (i32.const 1)))',
                                        "abi_fingerprint", GUEST, ()),
    "a table as a runtime global's name": ('(module (table (export "trap_seq") 1 funcref))', "trap_seq", GUEST, ()),
    "a function named like a hoist helper": ('(module (func (export "tvm-hoist:flush")))', "tvm-hoist:flush", (),
                                             BOTH),
    "a function named like a runtime mark": ('(module (func (export "tvm-internal:x")))', "tvm-internal:x", (), BOTH),
}


@pytest.mark.parametrize("target, inline", [("guest", False), ("guest", True), ("host", True), ("host", False)])
@pytest.mark.parametrize("name", list(SHADOWED_OR_DROPPED))
def test_exports_the_linked_module_would_shadow_or_drop_are_refused(binaryen, name, target, inline):
    wat, export, shadowed_on, dropped_on = SHADOWED_OR_DROPPED[name]
    if target not in shadowed_on + dropped_on:
        linked = link(wat, target=target, pools=2, max_pages=16, inline_runtime=inline)
        assert export in {e.name for e in wasmtime.Module(validation_engine(), linked.wasm).exports}
        return
    with pytest.raises(LinkRefused, match=re.escape(repr(export))) as refused:
        link(wat, target=target, pools=2, max_pages=16, inline_runtime=inline)
    message = str(refused.value)
    assert ("would shadow the runtime's export" if target in shadowed_on else "dropped") in message, message


@pytest.mark.parametrize("target", ["guest", "host"])
def test_the_users_memory_exported_as_memory_is_the_linked_modules_memory(binaryen, target):
    linked = link('(module (memory (export "memory") 2) (data (i32.const 8) "hi") (func (export "go") (result i32) '
                  'i32.const 8 i32.load8_u))', target=target, pools=1, max_pages=16)
    exports = {e.name: e.type for e in wasmtime.Module(validation_engine(), linked.wasm).exports}
    assert isinstance(exports["memory"], wasmtime.MemoryType) and exports["memory"].limits.min == 2
    assert "heap" not in exports


def test_the_trials_hostile_exports_are_refused_from_the_command_line(binaryen, tmp_path, capsys):
    """`tvm-wasm link` on a memory exported as mem0 (guest and host, --inline too): exit 1, naming the export."""
    user = tmp_path / "export_mem0.wasm"
    user.write_bytes(wasmtime.wat2wasm('(module (memory (export "mem0") 1) (func (export "go") (result i32) '
                                       'i32.const 7))'))
    for extra in (["--target", "guest"], ["--target", "guest", "--inline"], ["--target", "host"]):
        assert main(["link", str(user), "-o", str(tmp_path / "out.wasm"), "--pools", "2", *extra]) == 1
        assert "export 'mem0'" in capsys.readouterr().err
    assert not (tmp_path / "out.wasm").exists()


def test_a_refused_export_says_why_and_where_the_names_are_listed(binaryen):
    with pytest.raises(LinkRefused, match="Export names on the guest target") as refused:
        link('(module (func (export "fill")))', target="guest", pools=1, max_pages=16)
    assert "'fill'" in str(refused.value)
    link('(module (func (export "fill")))', target="host", pools=1)  # the host target keeps the name
