"""Accesses whose compare an earlier access of the same iteration covers (``tvm_wasm.linker.covered``).

A list walk reads ``(p << 3) + 4`` then ``p << 3``; a struct is read field by field through one
pointer. Each shape runs unlinked and linked (``inline=True``) on the same regions and bytes, with
pointers read from the region (so the walk meets the region's end, and wraps), and everything
observable must agree: answer or typed error, counters, the clock and the LRU stamps. The shapes the
rule must refuse (a later access reaching further, an offset that may wrap, the pointer written
between, the earlier access under an ``if``, a store after a load, another handle) keep their
compare: the report counts exactly the covered ones, and the wrap case fails if it is covered.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hoist_pairs import agree, linked_pair
from test_hoist_ranges import handle
from test_hoist_value_ranges import _sum as _add

from tvm_wasm import Handle, TvmHost
from tvm_wasm.linker import link
from tvm_wasm.linker.covered import largest
from tvm_wasm.linker.ranges import RangeFacts
from tvm_wasm.linker.sexpr import parse


def _loop(body: str) -> str:
    return f"""(param $h i64) (param $g i64) (param $p i32) (param $n i32) (result i64) (local $acc i64) (local $v i32)
  (loop $l {body}
   (br_if $l (local.tee $n (i32.add (local.get $n) (i32.const -1)))))
  (local.get $acc)"""


#: The typed accesses the shapes use: (ABI name, local name, result type or None for a store).
ACCESSES = (("load_u32", "ld32", "i32"), ("load_u8", "ld8", "i32"), ("load_i64", "ld64", "i64"), ("store_u32", "st32", None))
IMPORTS = "\n".join(f'(import "tvm" "{abi}" (func ${name} (param i64 i32) (result {result})))' if result else
                    f'(import "tvm" "{abi}" (func ${name} (param i64 i32 i32)))' for abi, name, result in ACCESSES)

COVERED = f"""(module
 {IMPORTS}
 (memory (export "memory") 1)
 ;; the bench's list walk: the payload at (p << 3) + 4, then next at p << 3 (covered)
 (func (export "walk") {_loop(_add("(call $ld32 (local.get $h) (i32.add (i32.shl (local.get $p) (i32.const 3)) (i32.const 4)))")
                              + "(local.set $p (call $ld32 (local.get $h) (i32.shl (local.get $p) (i32.const 3))))")})
 ;; a 16-byte struct read last field first: p<<4 + 12, then + 0, + 4 (an u8), + 8 (all three covered)
 (func (export "fields") {_loop(_add("(call $ld32 (local.get $h) (i32.add (i32.shl (local.get $p) (i32.const 4)) (i32.const 12)))")
                                + _add("(call $ld8 (local.get $h) (i32.add (i32.shl (local.get $p) (i32.const 4)) (i32.const 4)))")
                                + _add("(call $ld32 (local.get $h) (i32.add (i32.shl (local.get $p) (i32.const 4)) (i32.const 8)))")
                                + "(local.set $p (call $ld32 (local.get $h) (i32.shl (local.get $p) (i32.const 4))))")})
 ;; an i64 at p << 3, then the u32 in its upper half (covered: 4 + 4 <= 0 + 8)
 (func (export "wide") {_loop("(local.set $acc (i64.add (local.get $acc) (call $ld64 (local.get $h) (i32.shl (local.get $p) (i32.const 3)))))"
                              + "(local.set $p (call $ld32 (local.get $h) (i32.add (i32.shl (local.get $p) (i32.const 3)) (i32.const 4))))")})
 ;; refused: p + 8 may wrap (p is any u32), so reading p + 8 says nothing about p
 (func (export "wraps") {_loop(_add("(call $ld32 (local.get $h) (i32.add (local.get $p) (i32.const 8)))")
                               + "(local.set $p (call $ld32 (local.get $h) (local.get $p)))")})
 ;; refused: next at p << 3 first, the payload after it reaches further
 (func (export "further") {_loop("(local.set $v (call $ld32 (local.get $h) (i32.shl (local.get $p) (i32.const 3))))"
                                 + _add("(call $ld32 (local.get $h) (i32.add (i32.shl (local.get $p) (i32.const 3)) (i32.const 4)))")
                                 + "(local.set $p (local.get $v))")})
 ;; refused: p rewritten between the two reads
 (func (export "rewritten") {_loop("(local.set $v (call $ld32 (local.get $h) (i32.add (i32.shl (local.get $p) (i32.const 3)) (i32.const 4))))"
                                   + "(local.set $p (i32.add (local.get $p) (local.get $v)))"
                                   + "(local.set $p (call $ld32 (local.get $h) (i32.shl (local.get $p) (i32.const 3))))")})
 ;; refused: the wider read is under an if (it may not have run)
 (func (export "arm") {_loop("(if (i32.and (local.get $n) (i32.const 1)) (then "
                             + _add("(call $ld32 (local.get $h) (i32.add (i32.shl (local.get $p) (i32.const 3)) (i32.const 4)))") + "))"
                             + "(local.set $p (call $ld32 (local.get $h) (i32.shl (local.get $p) (i32.const 3))))")})
 ;; refused: a store after a load (a store's limit also refuses read-only regions), and another handle
 (func (export "others") {_loop(_add("(call $ld32 (local.get $h) (i32.add (i32.shl (local.get $p) (i32.const 3)) (i32.const 4)))")
                                + "(call $st32 (local.get $h) (i32.shl (local.get $p) (i32.const 3)) (local.get $n))"
                                + _add("(call $ld32 (local.get $g) (i32.shl (local.get $p) (i32.const 3)))")
                                + "(local.set $p (i32.and (i32.add (local.get $p) (i32.const 1)) (local.get $n)))")})
)"""

CAPACITIES = (64, 63, 60, 4096, 4095, 12, 11, 8, 16)


@pytest.fixture(scope="module")
def setup(binaryen):
    yield from linked_pair(COVERED, CAPACITIES)


def fill(host: TvmHost, regions: list[int], seed: int, spread: int) -> None:
    """Every region's u32s drawn below ``spread`` (pointers that mostly stay inside), edges included."""
    rng = np.random.default_rng(seed)
    for region in regions:
        capacity = host.region_info(region).capacity
        words = rng.integers(0, spread, (capacity + 3) // 4, dtype=np.uint64).astype(np.uint32)
        words[rng.integers(0, len(words), 2)] = rng.choice(np.array([0xFFFF_FFFF, 0xFFFF_FFFE, 0x1FFF_FFFF,
                                                                     0x0FFF_FFFF, 0xFFFF_FFF8], dtype=np.uint32))
        host.write(Handle(region, host.region_info(region).generation, 0), words.tobytes()[:capacity])


def same(setup, name: str, args: list[int], seed: int, spread: int) -> object:
    return agree(setup, name, args, lambda host, regions: fill(host, regions, seed, spread))


def test_the_pass_covers_exactly_the_dominated_narrower_reads(binaryen):
    report = link(COVERED, target="host", pools=2).hoisted
    assert report.loops == 8
    assert report.covered == 1 + 3 + 1  # walk, fields, wide; none of wraps, further, rewritten, arm, others


def test_largest_knows_a_shifted_value_keeps_its_low_bits_zero():
    facts = RangeFacts.of_function([], {"$p"}, {"$p": "i32"})
    assert largest(parse("(i32.shl (local.get $p) (i32.const 3))")[0], facts) == 2**32 - 8
    assert largest(parse("(i32.mul (local.get $p) (i32.const 24))")[0], facts) == 2**32 - 8
    assert largest(parse("(i32.mul (local.get $p) (i32.const 0))")[0], facts) == 0
    assert largest(parse("(local.get $p)")[0], facts) == 2**32 - 1
    assert largest(parse("(i32.shl (local.get $p) (i32.const 35))")[0], facts) == 2**32 - 8  # a count mod 32


REGION = st.integers(0, len(CAPACITIES) - 1)
START = st.one_of(st.integers(0, 20), st.sampled_from([0xFFFF_FFFF, 0xFFFF_FFFE, 0xFFFF_FFF8, 0x1FFF_FFFF, 0x0FFF_FFFF]))
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FEW
@given(name=st.sampled_from(["walk", "fields", "wide", "wraps", "further", "rewritten", "arm", "others"]),
       region=REGION, other=REGION, at=st.sampled_from([0, 1, 4, 8, 60]), p=START, n=st.integers(1, 40),
       seed=st.integers(0, 2**16), spread=st.sampled_from([2, 8, 16, 512, 2**32]))
def test_linked_and_unlinked_agree(setup, name, region, other, at, p, n, seed, spread):
    host, _, _, regions = setup
    same(setup, name, [handle(host, regions[region], at), handle(host, regions[other], 0), p, n], seed, spread)


EDGES = [("walk", 64, 7, True), ("walk", 63, 7, False), ("walk", 60, 7, False), ("walk", 8, 0, True),
         ("wide", 64, 7, True), ("wide", 63, 7, False), ("wide", 8, 0, True), ("wide", 11, 1, False),
         ("fields", 64, 3, True), ("fields", 63, 3, False), ("fields", 16, 0, True), ("fields", 12, 0, False),
         ("further", 64, 7, True), ("further", 60, 7, False), ("rewritten", 63, 7, False)]


@pytest.mark.parametrize(("name", "capacity", "p", "fits"), EDGES)
def test_the_edges_of_the_covering_read(setup, name, capacity, p, fits):
    """One iteration at the region's end: the struct's last byte exactly at the end reads; one byte short
    fails, at the wider read, before the covered one; where the wider read comes second (further) or
    reads elsewhere (rewritten), the narrower one keeps its compare."""
    host, _, _, regions = setup
    region = regions[CAPACITIES.index(capacity)]
    got = same(setup, name, [handle(host, region, 0), handle(host, region, 0), p, 1], 1, 1)
    assert isinstance(got, int) if fits else got == "OutOfBounds"


def test_a_pointer_that_wraps_is_still_refused_at_the_covered_read(setup):
    """wraps: p + 8 wraps to 2 (inside the region) but p itself is past the end: the model fails the second
    read, and so must the linked loop (were it covered, it would read outside the region)."""
    host, _, _, regions = setup
    region = regions[CAPACITIES.index(4096)]
    assert same(setup, "wraps", [handle(host, region, 0), handle(host, region, 0), 0xFFFF_FFFA, 1], 3, 16) == "OutOfBounds"
