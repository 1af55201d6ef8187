"""The linker's hoisting pass (resolve once, access many): which loops it rewrites, and that a rewritten
loop keeps the model's semantics (answers, typed errors, exact counters and clock, faults that evict)."""

from __future__ import annotations

import numpy as np
import pytest

from tvm_wasm import (
    Freelist, Handle, MemoryBackingStore, OutOfBounds, ReadOnly, RegionKind, Slab, StaleHandle, TvmHost,
)
from tvm_wasm.linker import link
from tvm_wasm.linker.hoist import hoist_text
from tvm_wasm.linker.sexpr import parse, render
from tvm_wasm.runtime import layout as L

IMPORTS = """
 (import "tvm" "load_u32" (func $ld (param i64 i32) (result i32)))
 (import "tvm" "store_u32" (func $st (param i64 i32 i32)))
 (import "tvm" "load_u8" (func $ld8 (param i64 i32) (result i32)))
 (memory (export "memory") 1)
"""

LOOPS = f"""(module
 (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64))) {IMPORTS}
 (func (export "sum") (param $h i64) (param $n i32) (result i64) (local $i i32) (local $acc i64)
  (block $done (loop $next
    (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
    (local.set $acc (i64.add (local.get $acc)
      (i64.extend_i32_u (call $ld (local.get $h) (i32.shl (local.get $i) (i32.const 2))))))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $next)))
  (local.get $acc))
 (func (export "fill_words") (param $h i64) (param $n i32) (local $i i32)
  (block $done (loop $next
    (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
    (call $st (local.get $h) (i32.shl (local.get $i) (i32.const 2)) (i32.mul (local.get $i) (i32.const 3)))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $next))))
 (func (export "pair_sum") (param $a i64) (param $b i64) (param $n i32) (result i64) (local $i i32) (local $acc i64)
  (block $done (loop $next
    (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (i32.add
      (call $ld (local.get $a) (i32.shl (local.get $i) (i32.const 2)))
      (call $ld8 (local.get $b) (i32.shl (local.get $i) (i32.const 2)))))))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $next)))
  (local.get $acc))
 (func (export "find") (param $h i64) (param $n i32) (param $x i32) (result i32) (local $i i32)
  (block $done (loop $next
    (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
    (if (i32.eq (call $ld (local.get $h) (i32.shl (local.get $i) (i32.const 2))) (local.get $x))
      (then (return (local.get $i))))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $next)))
  (i32.const -1))
 (func (export "build") (param $h i64) (param $r i32) (param $n i32) (result i64) (local $i i32) (local $a i64)
  (local $acc i64)
  (loop $next
    (local.set $a (call $alloc (local.get $r) (i32.const 8)))
    (call $st (local.get $h) (i32.shl (local.get $i) (i32.const 2)) (i32.wrap_i64 (local.get $a)))
    (local.set $acc (i64.add (local.get $acc) (i64.and (local.get $a) (i64.const 0xFFFFFFFF))))
    (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (local.get $acc))
)"""

NOT_HOISTED = f"""(module
 (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64))) {IMPORTS}
 (func $other (result i32) (i32.const 0))
 (func (export "calls_other_code") (param $h i64) (param $n i32) (result i32) (local $i i32) (local $acc i32)
  (loop $next
    (local.set $acc (i32.add (local.get $acc) (call $ld (local.get $h) (call $other))))
    (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (local.get $acc))
 (func (export "moves_its_handle") (param $h i64) (param $n i32) (result i32) (local $i i32) (local $acc i32)
  (loop $next
    (local.set $acc (i32.add (local.get $acc) (call $ld (local.get $h) (i32.const 0))))
    (local.set $h (i64.add (local.get $h) (i64.const 4)))
    (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (local.get $acc))
 (func (export "leaves_with_a_value") (param $h i64) (result i32)
  (block $out (result i32) (loop $next
    (br $out (call $ld (local.get $h) (i32.const 0)))) (unreachable)))
)"""


@pytest.fixture(scope="module")
def host(binaryen):
    with TvmHost(pools=2) as made:
        yield made


@pytest.fixture(scope="module")
def guest(host):
    return host.instantiate(LOOPS, inline=True)


def clock(host: TvmHost) -> int:
    return int(host.table.u8[L.HDR_EPOCH : L.HDR_EPOCH + 8].view(np.uint64)[0])


def test_loops_that_only_access_regions_are_hoisted(binaryen):
    linked = link(LOOPS, target="host", pools=2)
    assert (linked.hoisted.loops, linked.hoisted.accesses) == (5, 6)
    assert len(linked.hoisted.functions) == 5


def test_loops_that_may_change_the_directory_or_move_their_handle_are_left_alone(binaryen):
    linked = link(NOT_HOISTED, target="host", pools=2)
    assert linked.hoisted.loops == 0


def test_the_pass_versions_a_loop_per_pool_and_sends_everything_else_to_the_abi_call(binaryen):
    from tvm_wasm.linker.hoist import Helpers
    from tvm_wasm.linker.link import as_binary, binaryen_text, host_runtime, merge
    from tvm_wasm.runtime import sections

    user, memory = sections.memory_as_import(as_binary(LOOPS), abi_prefix="tvm:")
    text = binaryen_text(merge(host_runtime(3, memory), user))
    helpers = Helpers.of(text, "tvm:")
    out, report = hoist_text(text, "tvm:", 3)
    assert (report.loops, report.accesses) == (5, 6)
    assert "tvm-hoist:" not in out  # the helpers' exports never reach the output
    for pool in range(3):  # one copy of each loop per pool, each naming its pool statically
        assert out.count(f"(call {helpers.hoist[f'load_u32_p{pool}']}\n") == 0  # (printed on one line)
        assert out.count(f"(call {helpers.hoist[f'load_u32_p{pool}']} ") == 3  # sum, pair_sum (a), find
        assert out.count(f"(call {helpers.hoist[f'store_u32_p{pool}']} ") == 2  # fill, build
    assert out.count("(call $tvm_cold_hoist_slow_load_u32 ") == 3 * 3
    assert out.count("(call $tvm_cold_hoist_slow_load_u8 ") == 3
    func = next(f for f in (parse(c)[0] for c in out.split("\n") if c.startswith(" (func ") and "(loop" in c))
    assert render(func).count("(loop ") == 3 + 1  # one per pool, and the loop as it was for no pool


def test_a_hoisted_loop_answers_like_the_model_and_counts_exactly(host, guest):
    n = 1000
    region = host.create_region(RegionKind.OBJECT_ARENA, 4 * n)
    h = Handle(region, host.region_info(region).generation, 0).to_i64()
    before = clock(host)
    host.call(guest, "fill_words", h, n)
    assert host.call(guest, "sum", h, n) == sum(3 * i for i in range(n))
    m = host.metrics(region)
    assert (m.bytes_written, m.bytes_read) == (4 * n, 4 * n)
    assert clock(host) == before + 2 * n  # one tick per access, as without hoisting
    assert host.table.get64(region, L.SLOT_LAST_EPOCH) == clock(host)
    assert host.python_entries == 0
    assert host.read(Handle(region, 1, 4 * 7), 4) == (21).to_bytes(4, "little")


def test_regions_of_one_loop_are_stamped_in_the_order_of_their_last_access(host, guest):
    a = host.create_region(RegionKind.OBJECT_ARENA, 400)
    b = host.create_region(RegionKind.OBJECT_ARENA, 400)
    ga, gb = (Handle(r, host.region_info(r).generation, 0) for r in (a, b))
    ha, hb = ga.to_i64(), gb.to_i64()
    host.write(ga, bytes(range(200)) * 2)
    host.write(gb, bytes(400))
    assert host.call(guest, "pair_sum", ha, hb, 100) == sum(
        int.from_bytes((bytes(range(200)) * 2)[4 * i : 4 * i + 4], "little") for i in range(100))
    assert (host.metrics(a).bytes_read, host.metrics(b).bytes_read) == (400, 100)
    assert host.table.get64(a, L.SLOT_LAST_EPOCH) < host.table.get64(b, L.SLOT_LAST_EPOCH) == clock(host)


def test_an_error_inside_a_hoisted_loop_is_the_typed_error_with_the_counts_so_far(host, guest):
    n = 50
    region = host.create_region(RegionKind.OBJECT_ARENA, 4 * n)
    h = Handle(region, host.region_info(region).generation, 0).to_i64()
    with pytest.raises(OutOfBounds):
        host.call(guest, "sum", h, n + 1)
    assert host.metrics(region).bytes_read == 4 * n  # flushed before the failing access's slow path
    host.destroy_region(region)
    with pytest.raises(StaleHandle):
        host.call(guest, "sum", h, 1)


def test_hoisted_stores_honour_read_only_and_dirty_tracking(host, guest):
    n = 4096  # 16 KiB: four 4 KiB dirty-tracking pages
    region = host.create_region(RegionKind.OBJECT_ARENA, 4 * n)
    h = Handle(region, host.region_info(region).generation, 0)
    host.protect(region)
    with pytest.raises(ReadOnly):
        host.call(guest, "fill_words", h.to_i64(), n)
    assert host.read(h, 4 * n) == bytes(4 * n) and host.metrics(region).bytes_written == 0
    assert host.call(guest, "sum", h.to_i64(), n) == 0  # loads of a read-only region stay on the fast path
    host.protect(region, False)
    host.track_dirty(region)
    host.call(guest, "fill_words", h.to_i64(), 1024 + 1)  # page 0 whole, one word of page 1
    assert host.dirty_pages(region) == [0, 1]
    assert host.metrics(region).bytes_written == 4 * 1025
    # hoisted stores mark their own pages (the first and, crossing into the next, the last; the handle's
    # offset counts): nothing more
    for start, words, pages in ((2 * n + 4, 1, [2]), (2 * n - 2, 1, [1, 2]), (n - 4, 1, [0]), (3 * n + 8, 2, [3])):
        host.clear_dirty(region)
        host.call(guest, "fill_words", Handle(region, h.generation, start).to_i64(), words)
        assert host.dirty_pages(region) == pages, (start, words)
    host.clear_dirty(region)
    host.track_dirty(region, False)
    host.call(guest, "fill_words", h.to_i64(), n)
    assert host.call(guest, "sum", h.to_i64(), n) == sum(3 * i for i in range(n))


def test_leaving_a_hoisted_loop_by_return_or_branch_flushes_its_counts(host, guest):
    region = host.create_region(RegionKind.OBJECT_ARENA, 400)
    h = Handle(region, host.region_info(region).generation, 0).to_i64()
    host.call(guest, "fill_words", h, 100)
    assert host.call(guest, "find", h, 100, 3 * 9) == 9  # return from inside the loop
    assert host.metrics(region).bytes_read == 4 * 10
    assert host.call(guest, "find", h, 100, 1) == -1  # br_if out of the loop
    assert host.metrics(region).bytes_read == 4 * 110


def test_a_fault_that_evicts_another_hoisted_region_is_resolved_again(binaryen):
    unit = 65536
    with TvmHost(backing=MemoryBackingStore(), budget_bytes=unit, pools=2) as host:
        guest = host.instantiate(LOOPS, inline=True)
        a = host.create_region(RegionKind.BLOB_ARENA, unit)
        host.view(a)[:] = np.arange(unit, dtype=np.uint32).astype(np.uint8)  # bytes 0,1,2,..
        b = host.create_region(RegionKind.BLOB_ARENA, unit)  # evicts a under the budget
        host.view(b)[:] = 200
        ha, hb = (Handle(r, host.region_info(r).generation, 0).to_i64() for r in (a, b))
        host.read(Handle(a, host.region_info(a).generation, 0), 1)  # a back in, b out
        assert host.region_info(a).residency.is_resident and not host.region_info(b).residency.is_resident
        n = 64
        want = sum(int.from_bytes(bytes((4 * i + k) & 0xFF for k in range(4)), "little") + 200 for i in range(n))
        entries = host.python_entries
        # every access faults its region in and evicts the other one: a loop that kept a resolution
        # across the fault would read the other region's bytes
        assert host.call(guest, "pair_sum", ha, hb, n) == want
        assert host.python_entries > entries
        assert (host.metrics(a).bytes_read, host.metrics(b).bytes_read) == (4 * n + 1, n)  # + the read above


@pytest.mark.parametrize("allocator", [None, "slab", "freelist"])
def test_alloc_inside_a_hoisted_loop_is_a_safepoint_only_when_it_may_enter_the_host(host, guest, allocator):
    made = {None: None, "slab": lambda: Slab(8), "freelist": Freelist}[allocator]
    target = host.create_region(RegionKind.OBJECT_ARENA, 4 * 64)
    source = host.create_region(RegionKind.OBJECT_ARENA, 8 * 64, allocator=made() if made else None)
    h = Handle(target, host.region_info(target).generation, 0)
    entries = host.python_entries
    offsets = host.call(guest, "build", h.to_i64(), source, 64)
    stored = np.frombuffer(host.read(h, 4 * 64), dtype=np.uint32)
    assert int(stored.astype(np.uint64).sum()) == offsets and len(set(stored.tolist())) == 64
    assert host.metrics(source).allocations == 64 and host.metrics(target).bytes_written == 4 * 64 + 0
    assert (host.python_entries > entries) == (allocator == "freelist")  # Freelist allocation enters the host
    assert host.call(guest, "build", h.to_i64(), source, 1) == 0  # the region is full: alloc answers 0


def test_a_hoisted_loop_in_the_self_contained_module_counts_and_marks_what_it_writes(binaryen):
    from tvm_wasm.guest.instance import GuestInstance

    linked = link(LOOPS, target="guest", pools=2, max_pages=256, inline_runtime=True)
    assert linked.hoisted.loops == 5
    g = GuestInstance(linked.wasm)
    n = 16384
    first = g.create_region(RegionKind.OBJECT_ARENA, 4 * n)
    h = Handle(first, g.region_info(first).generation, 0).to_i64()
    g.call(g.instance, "fill_words", h, n)
    assert g.call(g.instance, "sum", h, n) == sum(3 * i for i in range(n))
    assert (g.metrics(first).bytes_written, g.metrics(first).bytes_read) == (4 * n, 4 * n)
    with pytest.raises(OutOfBounds):
        g.call(g.instance, "sum", h, n + 1)
    assert g.metrics(first).bytes_read == 8 * n
    span = (g.region_info(first).pool, g.region_info(first).base)
    g.destroy_region(first)
    second = g.create_region(RegionKind.OBJECT_ARENA, 4 * n)
    assert (g.region_info(second).pool, g.region_info(second).base) == span  # the freed span, reused
    # the hoisted stores marked their pages touched, so freeing the first region zeroed them
    assert g.call(g.instance, "sum", Handle(second, g.region_info(second).generation, 0).to_i64(), n) == 0


def test_hoisted_stores_in_the_self_contained_module_mark_their_dirty_pages(binaryen):
    """The module's spans are 16-byte aligned, not page aligned: a hoisted store marks pages by region offset."""
    from tvm_wasm.guest.instance import GuestInstance

    linked = link(LOOPS, target="guest", pools=2, max_pages=256, inline_runtime=True)
    g = GuestInstance(linked.wasm)
    n = 4096
    g.create_region(RegionKind.OBJECT_ARENA, 40)  # the next region's span starts off a page boundary
    region = g.create_region(RegionKind.OBJECT_ARENA, 4 * n)
    gen = g.region_info(region).generation
    g.track_dirty(region)
    for start, words, pages in ((0, 1024 + 1, [0, 1]), (2 * n + 4, 1, [2]), (2 * n - 2, 1, [1, 2]), (3 * n + 8, 2, [3])):
        g.clear_dirty(region)
        g.call(g.instance, "fill_words", Handle(region, gen, start).to_i64(), words)
        assert g.dirty_pages(region) == pages, (start, words)
    g.protect(region, True)
    with pytest.raises(ReadOnly):
        g.call(g.instance, "fill_words", Handle(region, gen, 0).to_i64(), 1)
