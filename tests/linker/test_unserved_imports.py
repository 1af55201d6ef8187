"""Kind: a ``tvm.*`` import a deployment does not serve is refused with one reason, worded from the ABI table.

Every name of the ABI table is imported (with its own signature) into each
deployment: the linker's two targets (the check before the merge, and real
links for some names), ``TvmHost.instantiate`` and ``GuestInstance.link``. A
name the deployment serves is accepted; one only the other deployment has
says so, names the target that has it and suggests linking for it; a pool the
module lacks, a runtime internal and an unknown name (with close matches) say
what they are. ``tvm-guest.js`` carries the same messages (its generated block,
tested in ``tests/guest/test_web_package.py``).
"""

from __future__ import annotations

import functools

import pytest
import wasmtime

from tvm_wasm import TvmHost
from tvm_wasm.abi.imports import unserved_import
from tvm_wasm.abi.table import ABI, HOST, MODULE, AbiFunction, per_pool_names
from tvm_wasm.guest import GuestInstance, build_module
from tvm_wasm.linker import LinkRefused, link, policy
from tvm_wasm.linker.link import HOST_ABI_PREFIX, guest_runtime, host_runtime
from tvm_wasm.linker.names import runtime_internals

POOLS = 2
TARGET = {"guest": MODULE, "host": HOST}
OTHER = {"guest": "host", "host": "guest"}


def importing(name: str, entry: AbiFunction) -> str:
    params = " ".join(entry.wasm_params)
    results = " ".join(entry.wasm_results)
    return f'(module (import "tvm" "{name}" (func (param {params}) (result {results}))))'


NAMES = [(name, entry) for entry in ABI for name in per_pool_names(entry, POOLS)]


@functools.cache
def runtime(target: str) -> tuple[wasmtime.Module, frozenset[str]]:
    wasm = guest_runtime(POOLS, 16, None, 65536) if target == "guest" else host_runtime(POOLS, None)
    module = wasmtime.Module(wasmtime.Engine(), wasm)
    return module, runtime_internals(wasm, module)


def check(target: str, wat: str) -> None:
    module, internals = runtime(target)
    user = wasmtime.Module(wasmtime.Engine(), wat)
    policy.check_imports(user, module, policy.ImportRules(), HOST_ABI_PREFIX if target == "host" else "",
                         deployment=TARGET[target], pools=POOLS, internals=internals)


@pytest.mark.parametrize("target", ["guest", "host"])
@pytest.mark.parametrize(("name", "entry"), NAMES, ids=[n for n, _ in NAMES])
def test_every_abi_name_links_where_it_exists_and_says_which_target_has_it(target, name, entry):
    wat = importing(name, entry)
    if entry.available_on(TARGET[target]):
        check(target, wat)
        return
    only = OTHER[target]
    with pytest.raises(LinkRefused) as refused:
        check(target, wat)
    message = str(refused.value)
    assert message.startswith(f"import tvm.{name}: {name} is a {only}-only ABI function"), message
    assert f"exists only on the {only} target" in message and f"link with --target {only}" in message
    assert entry.absent_because in message  # the reason comes from the table
    assert "internal" not in message


def test_a_host_only_import_linked_for_the_guest_names_it_and_suggests_the_host_target(binaryen):
    wat = importing("checkpoint_add", next(f for f in ABI if f.name == "checkpoint_add"))
    with pytest.raises(LinkRefused, match=r"import tvm\.checkpoint_add: checkpoint_add is a host-only ABI function: "
                                          r"it exists only on the host target .*; link with --target host$"):
        link(wat, target="guest", pools=POOLS, max_pages=16)
    link(wat, target="host", pools=POOLS)  # and it links where it exists


def test_a_guest_only_import_linked_for_the_host_says_so(binaryen):
    wat = importing("layout_size", next(f for f in ABI if f.name == "layout_size"))
    with pytest.raises(LinkRefused, match="layout_size is a guest-only ABI function.*link with --target guest$"):
        link(wat, target="host", pools=POOLS)
    link(wat, target="guest", pools=POOLS, max_pages=16)


@pytest.mark.parametrize("target", ["guest", "host"])
def test_unknown_names_say_unknown_with_close_matches(target):
    with pytest.raises(LinkRefused, match=r"import tvm\.allocc: the tvm ABI has no function 'allocc' "
                                          r"\(did you mean alloc"):
        check(target, '(module (import "tvm" "allocc" (func (param i32 i32) (result i64))))')
    with pytest.raises(LinkRefused, match=r"the tvm ABI has no function 'zzzz'$"):
        check(target, '(module (import "tvm" "zzzz" (func)))')


@pytest.mark.parametrize("target", ["guest", "host"])
@pytest.mark.parametrize("name", ["check_handle", "hoist_flush", "copy_in"])
def test_runtime_internals_say_internal(target, name):
    _, internals = runtime(target)
    assert name in internals  # a function of the runtime's own (name section), not of the ABI
    with pytest.raises(LinkRefused, match=rf"import tvm\.{name}: {name} is a runtime internal, not an ABI function"):
        check(target, f'(module (import "tvm" "{name}" (func (param i64) (result i32))))')


def test_a_pool_the_module_lacks_is_named():
    with pytest.raises(LinkRefused, match=r"load_u8_p2 names pool 2, but this module has 2 pool\(s\).*--pools 3"):
        check("guest", '(module (import "tvm" "load_u8_p2" (func (param i64 i32) (result i32))))')


@pytest.mark.parametrize(("name", "entry"), NAMES, ids=[n for n, _ in NAMES])
def test_tvm_host_instantiate_words_it_the_same(name, entry):
    with TvmHost(pools=POOLS) as host:
        if entry.available_on(HOST):
            host.instantiate(importing(name, entry))
            return
        with pytest.raises(ValueError) as refused:
            host.instantiate(importing(name, entry))
    assert str(refused.value) == (f"import tvm.{name}: "
                                  + unserved_import(name, HOST, pools=POOLS))
    assert "guest-only ABI function" in str(refused.value)


@pytest.fixture(scope="module")
def guest_module():
    return build_module(pools=POOLS, max_pages=16)


@pytest.mark.parametrize(("name", "entry"), NAMES, ids=[n for n, _ in NAMES])
def test_guest_instance_link_words_it_the_same(guest_module, name, entry):
    g = GuestInstance(guest_module)
    try:
        if entry.available_on(MODULE):
            g.link(importing(name, entry))
            return
        with pytest.raises(ValueError) as refused:
            g.link(importing(name, entry))
    finally:
        g.close()
    assert str(refused.value) == (f"import tvm.{name}: "
                                  + unserved_import(name, MODULE, pools=POOLS))
    assert "host-only ABI function" in str(refused.value) and "link with --target host" in str(refused.value)


def test_unknown_names_on_the_host_and_the_module():
    wat = '(module (import "tvm" "allocc" (func (param i32 i32) (result i64))))'
    with TvmHost(pools=1) as host, pytest.raises(ValueError, match="has no function 'allocc' .did you mean alloc"):
        host.instantiate(wat)
    g = GuestInstance(build_module(pools=1, max_pages=16))
    with pytest.raises(ValueError, match="has no function 'allocc' .did you mean alloc"):
        g.link(wat)
