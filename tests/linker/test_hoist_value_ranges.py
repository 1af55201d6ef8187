"""Offsets bounded by a value range (``tvm_wasm.linker.ranges``): hoisted range checks, linked vs unlinked.

Clang's shapes for hash tables and bucketed lookups (an and-mask, a shift, a
remainder, the mul-high scaling, a loaded ``u8`` index, an unsigned ``min``),
the bench's three-armed ``multi_region`` loop, an offset that may go below
zero and one that may wrap run unlinked and linked (``inline=True``) on the
same regions, whose capacities sit at, one byte short of and past each
range's end: answers or typed errors, every region's counters and LRU stamp,
the access clock and the bytes stored must agree.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hoist_pairs import agree, linked_pair
from test_hoist_ranges import handle

from tvm_wasm import Handle, TvmHost
from tvm_wasm.linker import link

SCALED = "(i32.shl (i32.wrap_i64 (i64.shr_u (i64.mul (i64.extend_i32_u (local.get $x)) (i64.const {n})) (i64.const 32))) (i32.const 2))"
NEXT = "(local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1664525)) (i32.const 1013904223)))"
DOWN = "(br_if $l (local.tee $n (i32.add (local.get $n) (i32.const -1))))"


def _sum(load: str) -> str:
    return f"(local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u {load})))"


RANGED = f"""(module
 (import "tvm" "load_u32" (func $ld32 (param i64 i32) (result i32)))
 (import "tvm" "load_u16" (func $ld16 (param i64 i32) (result i32)))
 (import "tvm" "load_u8" (func $ld8 (param i64 i32) (result i32)))
 (import "tvm" "store_u32" (func $st32 (param i64 i32 i32)))
 (memory (export "memory") 1)
 ;; clang -O2, t[(h * K) % 1024] of u32: an and-mask of a strength-reduced hash; [0, 4092]
 (func (export "masked") (param $h i64) (param $x i32) (param $n i32) (result i64) (local $acc i64)
  (loop $l {_sum("(call $ld32 (local.get $h) (i32.and (local.get $x) (i32.const 4092)))")}
   (local.set $x (i32.add (local.get $x) (i32.const 2027808452))) {DOWN})
  (local.get $acc))
 ;; the bench's scaled(r, 255) << 2 (mul-high), counting up to n; [0, 1016]
 (func (export "scaled") (param $h i64) (param $x i32) (param $n i32) (result i64) (local $acc i64) (local $i i32)
  (loop $l {_sum("(call $ld32 (local.get $h) " + SCALED.format(n=255) + ")")} {NEXT}
   (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (local.get $acc))
 ;; (h % 250) * 4: a remainder by a constant; [0, 996]
 (func (export "rem") (param $h i64) (param $x i32) (param $n i32) (result i64) (local $acc i64)
  (loop $l {_sum("(call $ld32 (local.get $h) (i32.mul (i32.rem_u (local.get $x) (i32.const 250)) (i32.const 4)))")}
   {NEXT} {DOWN})
  (local.get $acc))
 ;; t[idx[i]] with a u8 index loaded from another region: [0, 1020]; the index's own range is affine
 (func (export "bytes") (param $h i64) (param $idx i64) (param $n i32) (result i64) (local $acc i64) (local $i i32)
  (loop $l {_sum("(call $ld32 (local.get $h) (i32.shl (call $ld8 (local.get $idx) (local.get $i)) (i32.const 2)))")}
   (br_if $l (i32.ne (local.get $n) (local.tee $i (i32.add (local.get $i) (i32.const 1))))))
  (local.get $acc))
 ;; u16 cells at (h >> 22) * 2, as clang folds it: [0, 2046]
 (func (export "shifted") (param $h i64) (param $x i32) (param $n i32) (result i64) (local $acc i64)
  (loop $l {_sum("(call $ld16 (local.get $h) (i32.and (i32.shr_u (local.get $x) (i32.const 21)) (i32.const 2046)))")}
   {NEXT} {DOWN})
  (local.get $acc))
 ;; u8 cells at min(h, 255), clang's select: [0, 255]
 (func (export "minned") (param $h i64) (param $x i32) (param $n i32) (result i64) (local $acc i64) (local $k i32)
  (loop $l (local.set $k (i32.shr_u (local.get $x) (i32.const 23)))
   {_sum("(call $ld8 (local.get $h) (select (local.get $k) (i32.const 255) (i32.lt_u (local.get $k) (i32.const 255))))")}
   {NEXT} {DOWN})
  (local.get $acc))
 ;; the bench's multi_region: rounds of n draws, three arms (a load, a store, a u16 load) on three regions
 (func (export "arms") (param $a i64) (param $b i64) (param $c i64) (param $x i32) (param $n i32) (param $rounds i32)
  (result i64) (local $acc i64) (local $i i32) (local $r i32)
  (loop $round
   (local.set $i (i32.const 0))
   (loop $l {NEXT}
    (local.set $r (i32.and (local.get $x) (i32.const 15)))
    (if (i32.lt_u (local.get $r) (i32.const 12))
     (then {_sum("(call $ld32 (local.get $a) " + SCALED.format(n=255) + ")")})
     (else (if (i32.lt_u (local.get $r) (i32.const 15))
      (then (call $st32 (local.get $b) {SCALED.format(n=16)} (local.get $x)))
      (else {_sum("(call $ld16 (local.get $c) (i32.shl (i32.rem_u (local.get $x) (i32.const 100)) (i32.const 1)))")}))))
    (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
   (br_if $round (local.tee $rounds (i32.add (local.get $rounds) (i32.const -1)))))
  (local.get $acc))
 ;; one arm per iteration, the loop itself hoisted (no outer loop), starting anywhere: from 2**32 - 1 the
 ;; counter wraps, so its trip count is not exact and the arms are counted one add each
 (func (export "arms_from") (param $a i64) (param $b i64) (param $x i32) (param $i i32) (param $n i32) (result i64)
  (local $acc i64)
  (loop $l {NEXT}
   (if (i32.lt_u (i32.and (local.get $x) (i32.const 15)) (i32.const 10))
    (then {_sum("(call $ld32 (local.get $a) (i32.and (local.get $x) (i32.const 1020)))")})
    (else {_sum("(call $ld8 (local.get $b) (i32.shr_u (local.get $x) (i32.const 26)))")}))
   (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (local.get $acc))
 ;; at most one arm per iteration (the last if has no else): counted one add each, never by difference
 (func (export "maybe") (param $a i64) (param $b i64) (param $x i32) (param $n i32) (result i64) (local $acc i64)
  (loop $l {NEXT}
   (if (i32.lt_u (i32.and (local.get $x) (i32.const 15)) (i32.const 10))
    (then {_sum("(call $ld32 (local.get $a) (i32.and (local.get $x) (i32.const 1020)))")})
    (else (if (i32.and (local.get $x) (i32.const 16))
     (then {_sum("(call $ld8 (local.get $b) (i32.shr_u (local.get $x) (i32.const 26)))")}))))
   {DOWN})
  (local.get $acc))
 ;; 64 - (h & 127): may go below zero, so its range never fits: compared per access
 (func (export "below") (param $h i64) (param $x i32) (param $n i32) (result i64) (local $acc i64)
  (loop $l {_sum("(call $ld8 (local.get $h) (i32.sub (i32.const 64) (i32.and (local.get $x) (i32.const 127))))")}
   {NEXT} {DOWN})
  (local.get $acc))
 ;; (h & 0x1ffff) << 16 may wrap: no range, compared per access
 (func (export "wraps") (param $h i64) (param $x i32) (param $n i32) (result i64) (local $acc i64)
  (loop $l {_sum("(call $ld8 (local.get $h) (i32.shl (i32.and (local.get $x) (i32.const 131071)) (i32.const 16)))")}
   (local.set $x (i32.shl (local.get $x) (i32.const 1))) {DOWN})
  (local.get $acc))
)"""

#: Capacities at, one byte short of and past the ranges' ends (masked 4096, scaled 1020, rem 1000, bytes 1024,
#: shifted 2048, minned 256, below 65 bytes).
CAPACITIES = (4096, 4095, 4100, 1020, 1019, 1000, 999, 1024, 1023, 2048, 2047, 256, 255, 65, 64)


@pytest.fixture(scope="module")
def setup(binaryen):
    yield from linked_pair(RANGED, CAPACITIES)


def fill(host: TvmHost, regions: list[int]) -> None:
    for k, region in enumerate(regions):
        capacity = host.region_info(region).capacity
        data = (np.arange(capacity, dtype=np.uint32) * (2 * k + 7) + k).astype(np.uint8)
        host.write(Handle(region, host.region_info(region).generation, 0), data.tobytes())


def same(setup, name: str, args: list[int], stamp_order: bool = True) -> object:
    """``name`` unlinked then linked, each from the same bytes: answer, counts, clock, stamps and bytes agree.

    ``stamp_order`` False: the regions stamped agree, not their order (a hoisted loop stamps its regions at
    its end in the order of their last access in the loop body, which with branches is not the order of
    the last accesses that ran: README, linker, Counters)."""
    return agree(setup, name, args, fill, stamp_order)


def test_the_pass_hoists_every_bounded_offset(binaryen):
    report = link(RANGED, target="host", pools=2).hoisted
    # one access each in masked, scaled, rem, shifted, minned; two in bytes (the index affine, the cell
    # ranged); three in arms (one loop: the outer), two each in arms_from and maybe; below's range (never fitting) chooses the copy with
    # its compare at run time; wraps has no range
    assert report.loops == 9 + 2
    assert report.accesses == 12 + 4
    assert report.unchecked == 5 + 2 + 3 + 1 + 4
    assert report.counted_by_difference == 2  # arms (its inner loop), arms_from; not maybe


REGION = st.integers(0, len(CAPACITIES) - 1)
AT = st.one_of(st.integers(0, 8), st.sampled_from([0, 1, 3, 4, 60, 250]))
X = st.one_of(st.integers(0, 0xFFFF_FFFF), st.sampled_from([0, 0xFFFF_FFFF, 0x7FC0_0000, 0xFFC0_0000, 4092, 255 << 23]))
N = st.integers(1, 120)
FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FEW
@given(name=st.sampled_from(["masked", "scaled", "rem", "shifted", "minned", "below", "wraps"]), region=REGION,
       at=AT, x=X, n=N)
def test_one_bounded_access_per_iteration(setup, name, region, at, x, n):
    host, _, _, regions = setup
    same(setup, name, [handle(host, regions[region], at), x, n])


@FEW
@given(region=REGION, index=REGION, at=AT, n=N, poke=st.integers(0, 0xFFFF))
def test_an_index_loaded_as_u8(setup, region, index, at, n, poke):
    host, _, _, regions = setup
    same(setup, "bytes", [handle(host, regions[region], at), handle(host, regions[index], poke % 8), n])


@FEW
@given(a=REGION, b=REGION, c=REGION, at=AT, x=X, n=N, rounds=st.integers(1, 3))
def test_the_three_armed_loop_of_multi_region(setup, a, b, c, at, x, n, rounds):
    host, _, _, regions = setup
    same(setup, "arms", [handle(host, regions[a], at), handle(host, regions[b], 0), handle(host, regions[c], at % 3),
                         x, n, rounds], stamp_order=False)


@FEW
@given(a=REGION, b=REGION, at=AT, x=X, start=st.one_of(st.sampled_from([0, 0xFFFF_FFFF, 0xFFFF_FFF0, 7]), st.integers(0, (1 << 32) - 1)),
       n=N, maybe=st.booleans())
def test_arms_counted_by_difference_and_not(setup, a, b, at, x, start, n, maybe):
    host, _, _, regions = setup
    if maybe:
        same(setup, "maybe", [handle(host, regions[a], at), handle(host, regions[b], 0), x, n], stamp_order=False)
    else:
        same(setup, "arms_from", [handle(host, regions[a], at), handle(host, regions[b], 0), x, start, n],
             stamp_order=False)


def test_a_range_that_fits_and_one_that_does_not_give_the_model_s_answers(setup):
    """The copy without compares (4096 bytes for [0, 4092] + 4) and the one with them (4095: the last
    cell is one byte short, OutOfBounds exactly when h & 4092 reaches it)."""
    host, _, _, regions = setup
    fits, short = regions[CAPACITIES.index(4096)], regions[CAPACITIES.index(4095)]
    assert isinstance(same(setup, "masked", [handle(host, fits, 0), 4092, 1]), int)
    assert same(setup, "masked", [handle(host, short, 0), 4092, 1]) == "OutOfBounds"
    assert isinstance(same(setup, "masked", [handle(host, short, 0), 4088, 1]), int)
    assert same(setup, "masked", [handle(host, fits, 1), 4092, 1]) == "OutOfBounds"
    # (x % 250) * 4 reaches 996 (x = 249): 1000 bytes hold it, 999 do not
    for capacity, answer in ((1000, int), (999, str)):
        region = regions[CAPACITIES.index(capacity)]
        assert isinstance(same(setup, "rem", [handle(host, region, 0), 249, 1]),
                          answer)
