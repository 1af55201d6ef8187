"""Range checks hoisted out of loops, counts taken at loop exit, and fast copies no slow path rejoins.

Every loop shape the induction analysis accepts (``tvm_wasm.linker.induction``)
runs linked (``inline=True``) and unlinked on the same host with the same
regions: the answer or the typed error, every region's ``bytes_read`` /
``bytes_written`` and LRU stamp, and the access clock must be the same, for
offsets that fit, that end exactly at the region's end, that run past it, that
start below it, and bounds near 2**32.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tvm_wasm import Handle, RegionKind, TvmError, TvmHost
from tvm_wasm.linker import link
from tvm_wasm.runtime import layout as L

SHAPES = """(module
 (import "tvm" "load_u32" (func $ld32 (param i64 i32) (result i32)))
 (import "tvm" "load_u16" (func $ld16 (param i64 i32) (result i32)))
 (import "tvm" "load_u8" (func $ld8 (param i64 i32) (result i32)))
 (import "tvm" "store_u32" (func $st32 (param i64 i32 i32)))
 (memory (export "memory") 1)
 ;; clang -O2: a derived offset, a down-counter tested against zero (c' != 0, step -1)
 (func (export "down") (param $h i64) (param $off i32) (param $n i32) (result i64) (local $acc i64)
  (loop $l
   (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (call $ld32 (local.get $h) (local.get $off)))))
   (local.set $off (i32.add (local.get $off) (i32.const 4)))
   (br_if $l (local.tee $n (i32.add (local.get $n) (i32.const -1)))))
  (local.get $acc))
 ;; c' != X counting up, the offset reads the variable before its update, plus a constant
 (func (export "up_ne") (param $h i64) (param $i i32) (param $n i32) (result i64) (local $acc i64)
  (loop $l
   (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (call $ld8 (local.get $h) (i32.add (local.get $i) (i32.const 3))))))
   (br_if $l (i32.ne (local.get $n) (local.tee $i (i32.add (local.get $i) (i32.const 1))))))
  (local.get $acc))
 ;; c' <u X, step 8 (a division in the trip count), the offset is read after the update
 (func (export "lt_u") (param $h i64) (param $i i32) (param $end i32) (result i64) (local $acc i64)
  (loop $l
   (local.set $i (i32.add (local.get $i) (i32.const 8)))
   (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (call $ld32 (local.get $h) (i32.sub (local.get $i) (i32.const 8))))))
   (br_if $l (i32.lt_u (local.get $i) (local.get $end))))
  (local.get $acc))
 ;; c' <s X with offsets below zero for negative starts: (i << 1) - 2
 (func (export "lt_s") (param $h i64) (param $i i32) (param $n i32) (result i64) (local $acc i64)
  (loop $l
   (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (call $ld16 (local.get $h)
     (i32.sub (i32.shl (local.get $i) (i32.const 1)) (i32.const 2))))))
   (br_if $l (i32.gt_s (local.get $n) (local.tee $i (i32.add (local.get $i) (i32.const 1))))))
  (local.get $acc))
 ;; c' >u X counting down; stores, and an invariant local in the offset
 (func (export "gt_u") (param $h i64) (param $i i32) (param $stop i32) (param $base i32)
  (loop $l
   (call $st32 (local.get $h) (i32.add (local.get $base) (i32.mul (local.get $i) (i32.const 4))) (local.get $i))
   (br_if $l (i32.gt_u (local.tee $i (i32.sub (local.get $i) (i32.const 1))) (local.get $stop)))))
 ;; c' >s X counting down by 3
 (func (export "gt_s") (param $h i64) (param $i i32) (param $stop i32) (result i64) (local $acc i64)
  (loop $l
   (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (call $ld8 (local.get $h) (local.get $i)))))
   (br_if $l (i32.gt_s (local.tee $i (i32.add (local.get $i) (i32.const -3))) (local.get $stop))))
  (local.get $acc))
 ;; an early exit: ranges hoisted, counts per access (the loop may end before T)
 (func (export "find") (param $h i64) (param $n i32) (param $x i32) (result i32) (local $i i32)
  (block $out
   (loop $l
    (br_if $out (i32.eq (call $ld32 (local.get $h) (i32.shl (local.get $i) (i32.const 2))) (local.get $x)))
    (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
   (return (i32.const -1)))
  (local.get $i))
 ;; an affine access and one through a loaded index (compared per access, leaves by the ABI's error)
 (func (export "gather") (param $h i64) (param $idx i64) (param $n i32) (result i64) (local $i i32) (local $acc i64)
  (loop $l
   (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u
     (call $ld32 (local.get $h) (call $ld32 (local.get $idx) (i32.shl (local.get $i) (i32.const 2)))))))
   (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (local.get $acc))
 ;; a linked list (the bench's list_walk): two accesses a visit, the exit at the top, counted per iteration
 (func (export "walk") (param $h i64) (param $p i32) (result i64) (local $acc i64) (local $step i32)
  (block $out
   (loop $l
    (br_if $out (i32.eq (local.get $p) (i32.const -1)))
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u
      (i32.xor (call $ld32 (local.get $h) (i32.add (i32.shl (local.get $p) (i32.const 3)) (i32.const 4))) (local.get $step)))))
    (local.set $step (i32.add (local.get $step) (i32.const 1)))
    (local.set $p (call $ld32 (local.get $h) (i32.shl (local.get $p) (i32.const 3))))
    (br $l)))
  (local.get $acc))
 ;; counted per iteration inside an outer loop, left by return and by a branch to the outer loop's block
 (func (export "scan") (param $h i64) (param $rounds i32) (param $x i32) (result i32) (local $p i32) (local $r i32)
  (loop $round
   (local.set $p (i32.const 0))
   (block $next
    (loop $l
     (if (i32.eq (call $ld32 (local.get $h) (i32.shl (local.get $p) (i32.const 2))) (local.get $x))
      (then (return (i32.add (i32.mul (local.get $r) (i32.const 1000)) (local.get $p)))))
     (local.set $p (call $ld8 (local.get $h) (i32.add (i32.shl (local.get $p) (i32.const 2)) (i32.const 1))))
     (br_if $next (i32.eqz (local.get $p)))
     (br $l)))
   (br_if $round (i32.lt_u (local.tee $r (i32.add (local.get $r) (i32.const 1))) (local.get $rounds))))
  (i32.const -1))
 ;; nested loops: the inner one's ranges are checked at its own entry, inside the outer fast copy
 (func (export "rows") (param $h i64) (param $rows i32) (param $cols i32) (result i64)
  (local $r i32) (local $c i32) (local $row i32) (local $acc i64)
  (loop $outer
   (local.set $c (i32.const 0))
   (loop $inner
    (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u
      (call $ld32 (local.get $h) (i32.add (local.get $row) (i32.shl (local.get $c) (i32.const 2)))))))
    (br_if $inner (i32.lt_u (local.tee $c (i32.add (local.get $c) (i32.const 1))) (local.get $cols))))
   (local.set $row (i32.add (local.get $row) (i32.shl (local.get $cols) (i32.const 2))))
   (br_if $outer (i32.lt_u (local.tee $r (i32.add (local.get $r) (i32.const 1))) (local.get $rows))))
  (local.get $acc))
)"""

U32 = st.one_of(st.integers(0, 300), st.integers(0, 0xFFFF_FFFF), st.sampled_from([0, 1, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF]))
I32 = U32.map(lambda v: v - (1 << 32) if v >= 1 << 31 else v)


@pytest.fixture(scope="module")
def setup(binaryen):
    host = TvmHost(pools=2)
    plain = host.instantiate(SHAPES)
    linked = host.instantiate(SHAPES, inline=True)
    regions = []
    for capacity in (64, 256, 1000):
        region = host.create_region(RegionKind.OBJECT_ARENA, capacity)
        host.write(Handle(region, host.region_info(region).generation, 0), bytes(range(7, 7 + capacity)) if capacity < 250
                   else np.arange(capacity, dtype=np.uint32).astype(np.uint8).tobytes())
        regions.append(region)
    yield host, plain, linked, regions
    host.close()


def clock(host: TvmHost) -> int:
    return int(host.table.u8[L.HDR_EPOCH : L.HDR_EPOCH + 8].view(np.uint64)[0])


def observe(host: TvmHost, instance, name: str, args: list[int], regions: list[int]):
    """The answer (or the typed error's name), the bytes each region's counters gained, the clock's ticks,
    and (without an error) the regions whose LRU stamp moved, oldest first."""
    def snapshot():
        return [(host.metrics(r).bytes_read, host.metrics(r).bytes_written, host.table.get64(r, L.SLOT_LAST_EPOCH))
                for r in regions]

    before, start = snapshot(), clock(host)
    try:
        answer: object = host.call(instance, name, *args)
    except TvmError as exc:
        answer = type(exc).__name__
    after = snapshot()
    gained = [(r1 - r0, w1 - w0) for (r0, w0, _), (r1, w1, _) in zip(before, after)]
    moved = sorted((s1, r) for r, (_, _, s0), (_, _, s1) in zip(regions, before, after) if s1 != s0)
    stamps = None if isinstance(answer, str) else [r for _, r in moved]
    return answer, gained, clock(host) - start, stamps


def same(setup, name: str, args: list[int]) -> object:
    """Run ``name`` unlinked, then linked, on the same regions: everything observable must agree."""
    host, plain, linked, regions = setup
    want = observe(host, plain, name, args, regions)
    got = observe(host, linked, name, args, regions)
    assert got == want, (name, args)
    return want[0]


def handle(host: TvmHost, region: int, offset: int) -> int:
    return Handle(region, host.region_info(region).generation, offset).to_i64()


REGION = st.integers(0, 2)
OFFSET = st.one_of(st.integers(0, 64), st.sampled_from([0, 4, 60, 252, 996, 1000]))
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def test_the_pass_hoists_the_ranges_of_every_shape_and_counts_unconditional_loops_at_exit(binaryen):
    report = link(SHAPES, target="host", pools=2).hoisted
    # down, up_ne, lt_u, lt_s, gt_u, gt_s, find, gather (its affine index load), rows (inner loop); walk has
    # no affine access; scan's two offsets are bounded by a value range (its pointer is a loaded u8)
    assert report.loops == 11
    assert report.unchecked == 9 + 2
    # all but find (an early exit), gather (a checked access) and rows' inner loop (a nested loop is left
    # to its own copy; its outer loop has per-access counts)
    assert report.counted_at_exit == 6 + 1
    assert report.counted_per_iteration == 2 + 2  # walk, scan's inner loop


@FEW
@given(region=REGION, at=OFFSET, off=U32, n=U32)
def test_down_counter(setup, region, at, off, n):
    host, _, _, regions = setup
    same(setup, "down", [handle(host, regions[region], at), off % 2048 if n % 3 else off, n % 600 if off % 5 else n])


@FEW
@given(region=REGION, at=OFFSET, i=U32, n=U32)
def test_up_not_equal(setup, region, at, i, n):
    host, _, _, regions = setup
    same(setup, "up_ne", [handle(host, regions[region], at), i % 1200 if n % 2 else i, n % 1200 if i % 3 else n])


@FEW
@given(region=REGION, at=OFFSET, i=U32, end=U32)
def test_unsigned_less_than_with_a_step_of_eight(setup, region, at, i, end):
    host, _, _, regions = setup
    same(setup, "lt_u", [handle(host, regions[region], at), i % 1100 if end % 2 else i, end % 1100 if i % 3 else end])


@FEW
@given(region=REGION, at=OFFSET, i=I32, n=I32)
def test_signed_less_than_with_offsets_below_zero(setup, region, at, i, n):
    host, _, _, regions = setup
    same(setup, "lt_s", [handle(host, regions[region], at), i % 700 - 100 if n % 2 else i, n % 700 - 50 if i % 3 else n])


@FEW
@given(region=REGION, at=OFFSET, i=U32, stop=U32, base=I32)
def test_unsigned_greater_than_counting_down_stores(setup, region, at, i, stop, base):
    host, _, _, regions = setup
    same(setup, "gt_u", [handle(host, regions[region], at), i % 300 if stop % 2 else i, stop % 300 if i % 3 else stop,
                         base % 64 if i % 2 else base])


@FEW
@given(region=REGION, at=OFFSET, i=I32, stop=I32)
def test_signed_greater_than_counting_down_by_three(setup, region, at, i, stop):
    host, _, _, regions = setup
    same(setup, "gt_s", [handle(host, regions[region], at), i % 1100 if stop % 2 else i, stop % 1100 - 10 if i % 3 else stop])


@FEW
@given(region=REGION, at=OFFSET, n=U32, x=st.integers(0, 300))
def test_an_early_exit(setup, region, at, n, x):
    host, _, _, regions = setup
    same(setup, "find", [handle(host, regions[region], at), n % 400 if x % 2 else n, x])


@FEW
@given(data=REGION, index=st.integers(0, 1), n=st.integers(0, 300), poke=st.integers(0, 0xFFFF_FFFF))
def test_a_loaded_index_out_of_bounds_leaves_through_the_abi_error(setup, data, index, n, poke):
    host, _, _, regions = setup
    table = regions[1 + index]  # 256 or 1000 bytes of u32 indexes
    cells = host.region_info(table).capacity // 4
    values = (np.arange(cells, dtype=np.uint32) * 7) % 16
    if poke % 3 == 0:
        values[poke % cells] = poke  # one index out of bounds (or not)
    gen = host.region_info(table).generation
    host.write(Handle(table, gen, 0), values.astype("<u4").tobytes())
    same(setup, "gather", [handle(host, regions[data], 0), handle(host, table, 0), n])


@FEW
@given(region=REGION, at=OFFSET, rows=st.integers(0, 20), cols=st.integers(0, 80))
def test_nested_loops(setup, region, at, rows, cols):
    host, _, _, regions = setup
    same(setup, "rows", [handle(host, regions[region], at), rows, cols])


@FEW
@given(region=REGION, nodes=st.lists(st.integers(0, 40), min_size=1, max_size=40), start=st.integers(0, 45),
       poke=st.integers(0, 0xFFFF_FFFF))
def test_a_list_walk_counted_per_iteration(setup, region, nodes, start, poke):
    """Nodes [next, payload]: lists that end (-1, next always further on, so every walk ends) or point past
    the region (OutOfBounds at the first or the second access of a visit)."""
    host, _, _, regions = setup
    r = regions[region]
    cells = host.region_info(r).capacity // 8
    table = np.zeros(2 * cells, dtype=np.uint32)
    for k, target in enumerate(nodes[:cells]):
        table[2 * k] = target if k < target < len(nodes) else 0xFFFF_FFFF
        table[2 * k + 1] = k * 977
    if poke % 4 == 0:
        table[poke % (2 * cells)] = poke | 0x1000_0000  # a pointer out of bounds, or a payload
    host.write(Handle(r, host.region_info(r).generation, 0), table.astype("<u4").tobytes())
    same(setup, "walk", [handle(host, r, 0), start % (cells + 3)])


@FEW
@given(region=REGION, rounds=st.integers(1, 3), x=st.integers(0, 300), poke=st.integers(0, 0xFFFF_FFFF))
def test_leaving_a_loop_counted_per_iteration_by_return_and_branch(setup, region, rounds, x, poke):
    host, _, _, regions = setup
    r = regions[region]
    cells = host.region_info(r).capacity // 4
    values = np.array([(k * 37) % 256 | ((k + 1) % cells) << 8 for k in range(cells)], dtype=np.uint32)
    if poke % 3 == 0:  # a node that ends the walk (next 0) or points past the region (next 255)
        values[poke % cells] = (poke & 0xFFFF_00FF) | (0 if poke & 4 else 0xFF00)
    host.write(Handle(r, host.region_info(r).generation, 0), values.astype("<u4").tobytes())
    same(setup, "scan", [handle(host, r, 0), rounds, x])


def test_a_loop_whose_handle_is_not_fast_at_entry_runs_as_it_was(setup):
    """Read-only (stores), dirty-tracked (stores) and stale handles: the original loop, with its errors."""
    host, _, _, regions = setup
    region = regions[1]
    host.protect(region)
    try:
        assert same(setup, "gt_u", [handle(host, region, 0), 10, 0, 0]) == "ReadOnly"
        assert same(setup, "down", [handle(host, region, 0), 0, 8]) == sum(
            int.from_bytes(host.read(Handle(region, host.region_info(region).generation, 4 * k), 4), "little") for k in range(8))
    finally:
        host.protect(region, False)
    host.track_dirty(region)
    try:
        assert same(setup, "gt_u", [handle(host, region, 0), 10, 0, 0]) is None
        assert host.dirty_pages(region) == [0]
    finally:
        host.clear_dirty(region)
        host.track_dirty(region, False)
    stale = Handle(region, (host.region_info(region).generation + 1) & 0xFFFF, 0).to_i64()
    assert same(setup, "down", [stale, 0, 4]) == "StaleHandle"
