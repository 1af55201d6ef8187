"""Kind: one guest's failure never takes down the host or the other guests.

Each way a core-module guest can fail on its own (stack exhaustion, in wasm
and while the host is entered; fuel running out; a guest that never returns,
stopped by epoch interruption; exhausting its own memory or a region) has a
typed outcome here, and afterwards the host's regions and a second guest
carry on. Crashes would take pytest down with them, so the scenarios that
enter Python at the edge of the stack run in a child process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

import pytest
import wasmtime

from tvm_wasm import AllocationFailed, Freelist, Handle, Interrupted, RegionKind, TvmHost

NEIGHBOUR = """(module
  (import "tvm" "load_u32" (func $load_u32 (param i64 i32) (result i32)))
  (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (func (export "first_word") (param i64) (result i32) local.get 0 i32.const 0 call $load_u32)
  (func (export "alloc") (param i32 i32) (result i64) local.get 0 local.get 1 call $alloc))"""

HOSTILE = """(module
  (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
  (memory (export "memory") 1 4)
  (func $recurse (export "recurse") (param i32) (result i32)
    local.get 0 i32.const 1 i32.add call $recurse)
  (func $recurse_alloc (export "recurse_alloc") (param i32) (result i32)
    local.get 0 i32.const 8 call $alloc drop
    local.get 0 call $recurse_alloc)
  (func (export "spin") (loop $forever br $forever))
  (func (export "grow_all") (result i32) (local $n i32)
    (block $full (loop $more
      (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $more)))
    local.get $n)
  (func (export "alloc_until_full") (param $r i32) (result i32) (local $n i32)
    (block $full (loop $more
      (br_if $full (i64.eqz (call $alloc (local.get $r) (i32.const 64))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $more)))
    local.get $n))"""


SUMMER = """(module
  (import "tvm" "sum_u8" (func $sum_u8 (param i64 i32) (result i64)))
  (import "tvm" "last_error" (func $last_error (result i32)))
  (memory (export "memory") 1)
  (func (export "sum") (param i64 i32) (result i64) local.get 0 local.get 1 call $sum_u8)
  (func (export "last_error") (result i32) call $last_error))"""


def neighbours_carry_on(host: TvmHost, region: int, word: int) -> None:
    """A second guest, instantiated before or after the failure, still reads and allocates."""
    guest = host.instantiate(NEIGHBOUR)
    assert host.call(guest, "first_word", host.expect_handle.to_i64()) == word
    assert host.call(guest, "alloc", region, 8) != 0


def setup(host: TvmHost) -> tuple[int, int]:
    region = host.create_region(RegionKind.OBJECT_ARENA, 4096, allocator=Freelist())
    handle = host.alloc(region, 8)
    host.write(handle, b"\x2a\0\0\0live")
    host.expect_handle = handle  # type: ignore[attr-defined]
    return region, 42


def test_stack_exhaustion_in_wasm_is_a_trap_and_the_host_carries_on() -> None:
    with TvmHost(pools=1) as host:
        region, word = setup(host)
        hostile = host.instantiate(HOSTILE)
        before = host.instantiate(NEIGHBOUR)
        with pytest.raises(wasmtime.Trap) as info:
            host.call(hostile, "recurse", 0)
        assert info.value.trap_code is wasmtime.TrapCode.STACK_OVERFLOW
        assert host.call(before, "first_word", host.expect_handle.to_i64()) == word
        neighbours_carry_on(host, region, word)
        with pytest.raises(wasmtime.Trap):  # and the guest itself can be called again
            host.call(hostile, "recurse", 0)


CHILD = """
import wasmtime
from tvm_wasm import Freelist, RegionKind, TvmHost
import importlib.util, sys
spec = importlib.util.spec_from_file_location("iso", sys.argv[1]); iso = importlib.util.module_from_spec(spec)
spec.loader.exec_module(iso)
with TvmHost(pools=1) as host:
    region, word = iso.setup(host)
    hostile = host.instantiate(iso.HOSTILE)
    scratch = host.create_region(RegionKind.SCRATCH, 64, allocator=Freelist())  # full soon; every level still enters Python
    try:
        host.call(hostile, "recurse_alloc", scratch)
    except wasmtime.Trap as trap:
        print("trap", trap.trap_code)
    except Exception as exc:
        print("error", type(exc).__name__)
    iso.neighbours_carry_on(host, region, word)
    print("carried on", host.python_entries > 0)
"""


def test_stack_exhaustion_while_entering_the_host_does_not_crash_the_process() -> None:
    """Each level enters Python (a Freelist allocation): the overflow lands at any depth, host frames included."""
    done = subprocess.run([sys.executable, "-c", CHILD, __file__], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[-1] == "carried on True", done.stdout
    assert lines[0] in ("trap TrapCode.STACK_OVERFLOW", "error AllocationFailed"), done.stdout


def limited_engine(**options: bool) -> wasmtime.Engine:
    config = wasmtime.Config()
    config.memory_may_move = False
    for name, value in options.items():
        setattr(config, name, value)
    return wasmtime.Engine(config)


def test_a_guest_that_never_returns_is_interrupted_by_epoch() -> None:
    engine = limited_engine(epoch_interruption=True)
    with TvmHost(pools=1, engine=engine) as host:
        host.store.set_epoch_deadline(1)
        region, word = setup(host)
        hostile = host.instantiate(HOSTILE)
        ticker = threading.Timer(0.2, engine.increment_epoch)
        ticker.start()
        try:
            with pytest.raises(Interrupted) as info:
                host.call(hostile, "spin")
        finally:
            ticker.cancel()
        assert info.value.__cause__.trap_code is wasmtime.TrapCode.INTERRUPT
        host.store.set_epoch_deadline(1_000_000)
        neighbours_carry_on(host, region, word)


def test_a_guest_out_of_fuel_traps_and_refuelling_lets_others_run() -> None:
    engine = limited_engine(consume_fuel=True)
    with TvmHost(pools=1, engine=engine) as host:
        host.store.set_fuel(10_000_000)
        region, word = setup(host)
        hostile = host.instantiate(HOSTILE)
        with pytest.raises(wasmtime.Trap) as info:
            host.call(hostile, "spin")
        assert info.value.trap_code is wasmtime.TrapCode.OUT_OF_FUEL
        host.store.set_fuel(10_000_000)
        neighbours_carry_on(host, region, word)


def test_a_guest_exhausting_its_memory_and_a_region_gets_typed_answers() -> None:
    with TvmHost(pools=1) as host:
        region, word = setup(host)
        hostile = host.instantiate(HOSTILE)
        assert host.call(hostile, "grow_all") == 3  # up to its declared maximum, then memory.grow says -1
        full = host.create_region(RegionKind.BLOB_ARENA, 4096, allocator=Freelist())
        assert host.call(hostile, "alloc_until_full", full) == 64
        with pytest.raises(AllocationFailed):
            host.alloc(full, 64)
        neighbours_carry_on(host, region, word)


def test_a_guest_too_big_to_instantiate_is_refused_and_the_host_carries_on() -> None:
    with TvmHost(pools=1) as host:
        region, word = setup(host)
        with pytest.raises(ValueError):
            host.instantiate('(module (memory (export "memory") 65537))')  # past the wasm32 maximum
        neighbours_carry_on(host, region, word)


def test_fuel_running_out_inside_the_runtime_leaves_regions_and_answers_intact() -> None:
    """The interruption lands in the tvm runtime's own loop (a reducer over 1 MiB), not in guest code."""
    engine = limited_engine(consume_fuel=True)
    with TvmHost(pools=1, engine=engine) as host:
        host.store.set_fuel(10_000_000)
        region = host.create_region(RegionKind.BLOB_ARENA, 1 << 20)
        host.view(region)[:] = 1
        summer = host.instantiate(SUMMER)
        handle = Handle(region, 1, 0).to_i64()
        host.store.set_fuel(5_000)  # far too little for 1 MiB
        with pytest.raises(wasmtime.Trap) as info:
            host.call(summer, "sum", handle, 1 << 20)
        assert info.value.trap_code is wasmtime.TrapCode.OUT_OF_FUEL
        host.store.set_fuel(100_000_000)
        assert host.call(summer, "sum", handle, 1 << 20) == 1 << 20
        assert host.call(summer, "last_error") == 0
        assert host.read(Handle(region, 1, 0), 4) == b"\1\1\1\1"
