"""A host or instance on the user's own wasmtime ``Engine`` whose ``Config`` has epoch interruption on.

Such an engine compiles a deadline check into every function entry and loop back-edge, and a new
store's deadline is already reached, so before this was handled every call trapped. Now: left
unset, ``interruptible`` follows the engine (``TvmHost``, ``GuestInstance``, a ``GuestInstance`` on
the user's ``Store``, and a ``TvmHost``'s component guests run, and ``interrupt()`` stops them);
an ``interruptible`` that contradicts the engine is a ``ValueError`` naming the fix. wasmtime-py 50
cannot read an engine's ``Config`` back, so ``interrupt.epoch_checks`` asks the engine itself.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import wasmtime
from wasmtime.component import Component

from tvm_wasm import Interrupted, RegionKind, TvmHost
from tvm_wasm.guest import GuestInstance, build_module
from tvm_wasm.host.component_build import build_component
from tvm_wasm.host.component_errors import GuestTrapped
from tvm_wasm.host.interrupt import epoch_checks
from tvm_wasm.host.tvm_host import default_engine, interruptible_engine

USER = """(module
  (import "tvm" "load_u32" (func $load_u32 (param i64 i32) (result i32)))
  (func (export "first") (param $h i64) (result i32) (call $load_u32 (local.get $h) (i32.const 0)))
  (func (export "spin") (param $h i64) (result i32) (local $s i32)
    (loop $l (local.set $s (i32.add (local.get $s) (call $load_u32 (local.get $h) (i32.const 0)))) (br $l))
    (local.get $s)))
"""


def user_engine(**options: bool) -> wasmtime.Engine:
    """An engine as a user makes one: our settings are not known to the package."""
    config = wasmtime.Config()
    config.memory_may_move = False
    config.wasm_multi_memory = True
    for name, value in options.items():
        setattr(config, name, value)
    return wasmtime.Engine(config)


@pytest.mark.parametrize(("options", "expected"), [
    ({}, False),
    ({"epoch_interruption": True}, True),
    ({"consume_fuel": True}, False),
    ({"epoch_interruption": True, "consume_fuel": True}, True),
])
def test_the_engine_is_asked_whether_it_compiles_epoch_checks(options, expected):
    assert epoch_checks(user_engine(**options)) is expected


def test_the_packages_own_engines_are_known_without_asking():
    assert epoch_checks(default_engine()) is False
    assert epoch_checks(interruptible_engine()) is True


def _stopped_by_interrupt(target, call) -> Interrupted:
    timer = threading.Timer(0.2, target.interrupt)
    backstop = threading.Timer(20.0, target.engine.increment_epoch)  # a broken interrupt fails, never hangs
    started = time.monotonic()
    timer.start()
    backstop.start()
    try:
        with pytest.raises(Interrupted) as caught:
            call()
    finally:
        timer.cancel()
        backstop.cancel()
    assert 0.15 <= time.monotonic() - started < 10
    return caught.value


def test_a_tvm_host_on_an_epoch_engine_runs_and_can_be_interrupted():
    host = TvmHost(pools=1, engine=user_engine(epoch_interruption=True))
    assert host.interruptible
    rid = host.create_region(RegionKind.SCRATCH, 4096)
    handle = host.alloc(rid, 8)
    host.write(handle, (41).to_bytes(4, "little"))
    guest = host.instantiate(USER)
    assert host.call(guest, "first", handle.to_i64()) == 41  # trapped with "interrupt" before
    _stopped_by_interrupt(host, lambda: host.call(guest, "spin", handle.to_i64()))
    assert host.call(guest, "first", handle.to_i64()) == 41


def guest_module() -> bytes:
    return build_module(pools=1, max_pages=16).wasm


@pytest.mark.parametrize("given", ["engine", "store"])
def test_a_guest_instance_on_an_epoch_engine_runs_and_can_be_interrupted(given):
    engine = user_engine(epoch_interruption=True, wasm_simd=True, wasm_bulk_memory=True,
                         wasm_reference_types=True)
    g = (GuestInstance(guest_module(), engine=engine) if given == "engine"
         else GuestInstance(guest_module(), store=wasmtime.Store(engine)))
    assert g.interruptible
    rid = g.create_region(RegionKind.SCRATCH, 4096)
    handle = g.alloc(rid, 8)
    g.write(handle, (41).to_bytes(4, "little"))
    user = g.link(USER)
    assert g.call(user, "first", handle.to_i64()) == 41
    _stopped_by_interrupt(g, lambda: g.call(user, "spin", handle.to_i64()))
    assert g.read(handle, 4) == (41).to_bytes(4, "little")


@pytest.mark.parametrize("make", [
    lambda engine, flag: TvmHost(pools=1, engine=engine, interruptible=flag),
    lambda engine, flag: GuestInstance(guest_module(), engine=engine, interruptible=flag),
], ids=["TvmHost", "GuestInstance"])
def test_an_interruptible_flag_that_contradicts_the_engine_names_the_fix(make):
    with pytest.raises(ValueError, match=r"interruptible=True needs an engine .*epoch_interruption"):
        make(user_engine(wasm_simd=True, wasm_bulk_memory=True, wasm_reference_types=True), True)
    with pytest.raises(ValueError, match=r"compiles epoch checks .*leave interruptible unset"):
        make(user_engine(epoch_interruption=True, wasm_simd=True, wasm_bulk_memory=True,
                         wasm_reference_types=True), False)
    plain = make(user_engine(wasm_simd=True, wasm_bulk_memory=True, wasm_reference_types=True), None)
    assert not plain.interruptible  # an engine without the checks: as before
    with pytest.raises(ValueError, match="interruptible=True"):
        plain.interrupt()


SPIN_WIT = """package tvm:test;

world spinner {
    include tvm:memory/imports@0.1.0;
    export spin: func();
    export fine: func() -> u32;
}
"""
SPIN_WAT = """(module
  (memory (export "cm32p2_memory") 1)
  (func (export "cm32p2||spin") (loop $l (br $l)))
  (func (export "cm32p2||fine") (result i32) (i32.const 7))
)"""


@pytest.fixture(scope="module")
def spinner(tmp_path_factory) -> bytes:
    return build_component(SPIN_WAT, "spinner", tmp_path_factory.mktemp("spinner") / "spinner", extra_wit=SPIN_WIT)


@pytest.mark.parametrize("engine", ["interruptible=True", "user's epoch engine"])
def test_component_guests_of_an_interruptible_host_run_and_an_interrupt_ends_only_that_guest(spinner, engine):
    host = (TvmHost(pools=1, interruptible=True) if engine == "interruptible=True"
            else TvmHost(pools=1, engine=user_engine(epoch_interruption=True, wasm_component_model=True)))
    component = Component(host.engine, spinner)
    looping, sibling = host.instantiate_component(component), host.instantiate_component(component)
    assert looping.call("fine") == 7  # trapped with "interrupt" before: the store had no deadline
    timer = threading.Timer(0.2, host.interrupt)
    timer.start()
    with pytest.raises(GuestTrapped, match="interrupt"):
        looping.call("spin")  # a trapped component instance cannot be entered again
    timer.join()
    assert sibling.call("fine") == 7
    rid = host.create_region(RegionKind.SCRATCH, 64)
    assert host.region_info(rid).capacity == 64
