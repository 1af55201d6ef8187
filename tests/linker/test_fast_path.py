"""The per-access typed load, inlined or called: its fast path passes exactly what the model allows, and
a linked loop keeps the slow path as one call (the linker never inlines the runtime's cold functions).

Each rule of the fast path (state word, pool word, bounds, counts, clock) has a case here that fails
when the rule is dropped: a stale or destroyed handle, a Cold region, a region in another pool or in
no pool, one byte past the end, and the exact counters and access clock after fast loads.
"""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from tvm_wasm import (
    Handle, MemoryBackingStore, OutOfBounds, RegionKind, RegionNotFound, Residency, StaleHandle, TvmError, TvmHost,
)
from tvm_wasm.linker import link, tools
from tvm_wasm.linker.verify import print_module
from tvm_wasm.runtime import layout as L

ARENA = RegionKind.OBJECT_ARENA

# A load whose handle changes per access (read from guest memory), as large_ws_probe's: no hoisting.
PROBE = """(module
 (import "tvm" "load_u32" (func $ld (param i64 i32) (result i32)))
 (import "tvm" "load_u8" (func $ld8 (param i64 i32) (result i32)))
 (memory (export "memory") 1)
 (func (export "get") (param $h i64) (param $off i32) (result i32) (call $ld (local.get $h) (local.get $off)))
 (func (export "get8") (param $h i64) (param $off i32) (result i32) (call $ld8 (local.get $h) (local.get $off)))
 (func (export "probe") (param $n i32) (result i64) (local $i i32) (local $acc i64)
  (loop $next
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u
      (call $ld (i64.load (i32.shl (i32.and (local.get $i) (i32.const 7)) (i32.const 3))) (i32.const 0)))))
    (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (local.get $acc))
)"""


def clock(host: TvmHost) -> int:
    return int(host.table.u8[L.HDR_EPOCH : L.HDR_EPOCH + 8].view(np.uint64)[0])


@pytest.fixture(params=[False, True], ids=["called", "inlined"])
def inline(request, binaryen) -> bool:
    return request.param


def test_regions_of_every_pool_and_no_pool(inline):
    """Pools 0..2 full of one 4 GiB filler each, a small region in pool 3: each load reads its own pool
    (the pool word is part of the fast compare); an imported region (in no pool) answers code 9."""
    with TvmHost(pools=4) as host:
        guest = host.instantiate(PROBE, inline=inline)
        fillers = [host.create_region(ARENA, 0xFFFF_FFFF) for _ in range(3)]
        small = host.create_region(ARENA, 256)
        assert [host.table.get(r, L.SLOT_POOL) for r in [*fillers, small]] == [0, 1, 2, 3]
        for k, region in enumerate([*fillers, small]):
            base = 0 if region == small else 0xFFFF_FFFF - 256
            host.view(region)[base : base + 4] = np.frombuffer((0x1000 + k).to_bytes(4, "little"), np.uint8)
            assert host.call(guest, "get", Handle(region, 1, base).to_i64(), 0) == 0x1000 + k
        imported = host.imported_region(RegionKind.HOT_HEAP, 4096)
        with pytest.raises(TvmError) as caught:
            host.call(guest, "get", Handle(imported, 1, 0).to_i64(), 0)
        assert caught.value.code == 9


def test_stale_destroyed_unknown_and_out_of_bounds_handles_fail_typed(inline):
    with TvmHost() as host:
        guest = host.instantiate(PROBE, inline=inline)
        region = host.create_region(ARENA, 64)
        handle = Handle(region, 1, 0)
        assert host.call(guest, "get", handle.to_i64(), 60) == 0
        with pytest.raises(OutOfBounds):
            host.call(guest, "get", handle.to_i64(), 61)  # one byte past the end
        with pytest.raises(OutOfBounds):
            host.call(guest, "get", handle.with_offset(0xFFFF_FFFF).to_i64(), 0xFFFF_FFFF)  # no 32-bit wrap
        with pytest.raises(StaleHandle):
            host.call(guest, "get", Handle(region, 2, 0).to_i64(), 0)  # a generation the region never had
        with pytest.raises(RegionNotFound):
            host.call(guest, "get", Handle(region + 1, 1, 0).to_i64(), 0)
        with pytest.raises(RegionNotFound):
            host.call(guest, "get8", Handle.NULL.to_i64(), 0)
        host.destroy_region(region)
        with pytest.raises(StaleHandle):
            host.call(guest, "get", handle.to_i64(), 0)


def test_a_cold_region_faults_in_then_loads_fast(inline):
    with TvmHost(backing=MemoryBackingStore()) as host:
        guest = host.instantiate(PROBE, inline=inline)
        region = host.create_region(ARENA, 4096)
        host.view(region)[8:12] = [1, 2, 3, 4]
        host.spill_region(region)
        assert host.region_info(region).residency is Residency.COLD
        entries = host.python_entries
        assert host.call(guest, "get", Handle(region, 1, 8).to_i64(), 0) == 0x04030201
        assert host.python_entries == entries + 1  # one fault, then nothing but wasm
        assert host.call(guest, "get", Handle(region, 1, 8).to_i64(), 0) == 0x04030201
        assert host.python_entries == entries + 1


def test_fast_loads_count_bytes_and_tick_the_clock_once_each(inline):
    """Eight regions probed round-robin by a loop the hoisting pass cannot take: exact bytes_read, one
    clock tick per load, and each region's LRU stamp is the clock at its last load."""
    with TvmHost() as host:
        guest = host.instantiate(PROBE, inline=inline)
        regions = [host.create_region(ARENA, 64) for _ in range(8)]
        memory = guest.exports(host.store)["memory"]
        table = np.array([Handle(r, 1, 0).to_i64() for r in regions], dtype=np.int64)
        memory.write(host.store, table.tobytes(), 0)
        before = clock(host)
        for k, r in enumerate(regions):
            host.view(r)[:4] = np.frombuffer(k.to_bytes(4, "little"), np.uint8)
        assert clock(host) == before  # views are not accesses
        assert host.call(guest, "probe", 20) == sum(i % 8 for i in range(20))
        assert clock(host) == before + 20
        for k, r in enumerate(regions):
            loads = len([i for i in range(20) if i % 8 == k])
            assert host.metrics(r).bytes_read == 4 * loads
            last = max(i for i in range(20) if i % 8 == k)
            assert host.table.get64(r, L.SLOT_LAST_EPOCH) == before + last + 1


def calls_in(wasm: bytes, export: str) -> tuple[list[int], int]:
    """The function indices ``export`` calls, and how many functions the module imports."""
    text = print_module(wasm)  # names stripped: every index explicit
    index = int(re.search(rf'\(export "{export}" \(func (\d+)\)\)', text).group(1))  # type: ignore[union-attr]
    imported = len(re.findall(r"\(import \"[^\"]+\" \"[^\"]+\" \(func", text))
    body = text.split(f"(func (;{index};)")[1].split("\n  (func ")[0]
    return [int(n) for n in re.findall(r"\bcall (\d+)", body)], imported


@pytest.mark.parametrize("target", ["host", "guest"])
def test_a_linked_loop_keeps_its_slow_path_as_one_call(binaryen, target):
    """Inlined into a loop, the typed load brings its fast path and one call to its cold twin, a runtime
    function: no host import (fault, trap) and no error reporting is inlined into the loop."""
    linked = link(PROBE, target=target, pools=4, inline_runtime=True)
    calls, imported = calls_in(linked.wasm, "probe")
    assert len(calls) == 1 and calls[0] >= imported, calls
    try:
        subprocess.run([tools.wasm_tools(), "validate", "-"], input=linked.wasm, check=True)
    except subprocess.CalledProcessError as exc:  # pragma: no cover - validation is the linker's own job
        raise AssertionError("linked module does not validate") from exc


GUEST_LOADER = """(module
  (import "tvm" "load_u8" (func $load_u8 (param i64 i32) (result i32)))
  (func (export "load_u8") (param $h i64) (param $off i32) (result i32) (call $load_u8 (local.get $h) (local.get $off))))"""


def test_the_self_contained_modules_fast_key_follows_pool_and_state():
    """The module's own slot writes keep the fast key: a region of pool 1 (pool 0 full) reads its own pool,
    a destroyed region's handle fails stale, a new generation of the id reads its new bytes."""
    from tvm_wasm.guest import build_module
    from tvm_wasm.guest.instance import GuestInstance

    with GuestInstance(build_module(pools=2, max_pages=1).wasm) as g:
        loader = g.link(GUEST_LOADER)
        first = g.create_region(ARENA, 65536)  # fills pool 0
        second = g.create_region(ARENA, 4096)
        assert g.region_info(second).pool == 1
        g.write(Handle(first, 1, 0), b"\x11")
        g.write(Handle(second, 1, 0), b"\x22")
        assert g.call(loader, "load_u8", Handle(first, 1, 0).to_i64(), 0) == 0x11
        assert g.call(loader, "load_u8", Handle(second, 1, 0).to_i64(), 0) == 0x22
        g.destroy_region(first)
        with pytest.raises(StaleHandle):
            g.call(loader, "load_u8", Handle(first, 1, 0).to_i64(), 0)
        again = g.create_region(ARENA, 4096)
        generation = g.region_info(again).generation
        g.write(Handle(again, generation, 0), b"\x33")
        assert g.call(loader, "load_u8", Handle(again, generation, 0).to_i64(), 0) == 0x33
        with pytest.raises((StaleHandle, RegionNotFound)):
            g.call(loader, "load_u8", Handle(again, generation - 1 or 0xFFFF, 0).to_i64(), 0)


# The clock pass: a loop whose only calls are typed loads keeps the access clock in a local.
CLOCKED = """(module
 (import "tvm" "load_u32" (func $ld (param i64 i32) (result i32)))
 (memory (export "memory") 1)
 (func (export "probe") (param $n i32) (param $trap_at i32) (result i64) (local $i i32) (local $acc i64)
  (loop $next
    (if (i32.eq (local.get $i) (local.get $trap_at)) (then (unreachable)))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u
      (call $ld (i64.load (i32.shl (i32.and (local.get $i) (i32.const 7)) (i32.const 3))) (i32.const 0)))))
    (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (local.get $acc))
)"""


def test_the_clock_pass_takes_loops_that_call_only_typed_loads(binaryen):
    linked = link(CLOCKED, target="host", pools=4)
    assert (linked.clocked.loops, linked.clocked.accesses) == (1, 1)
    calls, imported = calls_in(linked.wasm, "probe")
    assert len(calls) == 1 and calls[0] >= imported, calls  # the cold twin, nothing else
    with_store = CLOCKED.replace('(memory (export "memory") 1)', '(import "tvm" "store_u8" (func $st (param i64 i32 i32)))\n'
                                 ' (memory (export "memory") 1)').replace(
        "(br_if $next", "(call $st (i64.load (i32.const 0)) (i32.const 0) (i32.const 1))\n    (br_if $next")
    assert link(with_store, target="host", pools=4).clocked.loops == 0  # a store ticks the clock too


def probe_hosts(setup, n: int, trap_at: int = -1):
    """Run CLOCKED's probe over eight regions set up by ``setup(host)`` on a host that links it (the clock pass)
    and on one that calls the runtime: (result or error type, clock, stamps, bytes_read) for each."""
    outcomes = []
    for inline in (True, False):
        with TvmHost(pools=4, backing=MemoryBackingStore()) as host:
            guest = host.instantiate(CLOCKED, inline=inline)
            regions = setup(host)
            memory = guest.exports(host.store)["memory"]
            memory.write(host.store, np.array([h.to_i64() for h in regions], dtype=np.int64).tobytes(), 0)
            try:
                result: object = host.call(guest, "probe", n, trap_at)
            except Exception as exc:  # noqa: BLE001 - compared across the two hosts
                result = type(exc).__name__
            ids = sorted({h.region_id for h in regions})
            outcomes.append((result, clock(host), [host.table.get64(r, L.SLOT_LAST_EPOCH) for r in ids],
                             [host.metrics(r).bytes_read for r in ids]))
    assert outcomes[0] == outcomes[1], outcomes
    return outcomes[0]


def eight_regions(host: TvmHost) -> list[Handle]:
    regions = [host.create_region(ARENA, 64) for _ in range(8)]
    for k, r in enumerate(regions):
        host.view(r)[:4] = np.frombuffer((k + 1).to_bytes(4, "little"), np.uint8)
    return [Handle(r, 1, 0) for r in regions]


def test_clocked_loads_leave_clock_stamps_and_counts_as_the_runtime_does(binaryen):
    result, ticks, stamps, read = probe_hosts(eight_regions, 20)
    assert result == sum(i % 8 + 1 for i in range(20)) and read == [4 * len(range(k, 20, 8)) for k in range(8)]
    assert ticks == max(stamps)


def test_a_fault_in_inside_a_clocked_loop_ticks_the_clock_in_memory_and_the_loop_reads_it_again(binaryen):
    """Region 3 is Cold: its first load faults it in (the host ticks the clock) inside the loop; every later
    stamp must come after those ticks, as the runtime's own loads would."""
    def setup(host: TvmHost) -> list[Handle]:
        handles = eight_regions(host)
        host.spill_region(handles[3].region_id)
        return handles

    result, _, stamps, _ = probe_hosts(setup, 20)
    assert result == sum(i % 8 + 1 for i in range(20))


def test_an_error_or_a_trap_inside_a_clocked_loop_leaves_the_clock_exact(binaryen):
    def stale_sixth(host: TvmHost) -> list[Handle]:
        handles = eight_regions(host)
        handles[5] = Handle(handles[5].region_id, 2, 0)
        return handles

    assert probe_hosts(stale_sixth, 20)[0] == "StaleHandle"
    assert probe_hosts(eight_regions, 20, trap_at=11)[0] == "Trap"  # user code traps mid-loop


def test_clocked_loads_of_pools_one_and_up(binaryen):
    """Regions of pools 1 (its own fast key) and 2 and 3 (the cold twin) inside a clocked loop."""
    def setup(host: TvmHost) -> list[Handle]:
        fillers = [host.create_region(ARENA, 0xFFFF_FFFF) for _ in range(3)]
        small = host.create_region(ARENA, 256)
        handles = []
        for k, region in enumerate([*fillers, small]):
            base = 0 if region == small else 0xFFFF_FFFF - 256
            host.view(region)[base : base + 4] = np.frombuffer((0x1000 + k).to_bytes(4, "little"), np.uint8)
            handles.append(Handle(region, 1, base))
        return handles * 2

    result, _, _, read = probe_hosts(setup, 16)
    assert result == 4 * sum(0x1000 + k for k in range(4)) and read == [16] * 4
