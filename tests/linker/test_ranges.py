"""Value-range facts (``tvm_wasm.linker.ranges``) rule by rule: what each accepts, and the wrap cases each
must refuse; then bounded terms inside affine offsets (``tvm_wasm.linker.induction``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvm_wasm.linker.induction import Affine, affine, inductions
from tvm_wasm.linker.ranges import Interval, RangeFacts, full
from tvm_wasm.linker.sexpr import parse, walk

MASK32 = 0xFFFF_FFFF
TYPES = {"$x": "i32", "$y": "i32", "$w": "i64", "$p": "i32", "$q": "i32", "$i": "i32", "$n": "i32", "$k": "i32"}


def facts(body: str = "", params: tuple[str, ...] = ("$x", "$y", "$w", "$n", "$k")) -> RangeFacts:
    nodes = parse(body)
    loaded = {"$ld8": Interval(0, 255), "$ld16": Interval(0, 65535)}
    return RangeFacts.of_function(nodes, set(params), TYPES, lambda call: loaded.get(str(call[1])))


def known(text: str, body: str = "") -> Interval | None:
    return facts(body).known(parse(text)[0])


X, W = "(local.get $x)", "(local.get $w)"


@pytest.mark.parametrize("text, lo, hi", [
    (f"(i32.and {X} (i32.const 1023))", 0, 1023),  # a mask
    (f"(i32.and (i32.const 4092) {X})", 0, 4092),
    (f"(i32.shr_u {X} (i32.const 22))", 0, 1023),  # a shift right by a constant
    (f"(i32.shr_u {X} (i32.const 54))", 0, 1023),  # the count is taken modulo 32, as wasm does
    (f"(i32.and (i32.shr_u {X} (i32.const 21)) (i32.const 2046))", 0, 2046),  # clang: (h >> 22) * 2
    (f"(i32.rem_u {X} (i32.const 1000))", 0, 999),  # a remainder
    (f"(i32.div_u (i32.and {X} (i32.const 4095)) (i32.const 16))", 0, 255),
    (f"(i32.shl (i32.and {X} (i32.const 1023)) (i32.const 2))", 0, 4092),  # a shift left that cannot wrap
    (f"(i32.mul (i32.and {X} (i32.const 255)) (i32.const 12))", 0, 3060),
    (f"(i32.add (i32.and {X} (i32.const 255)) (i32.const 8))", 8, 263),
    (f"(i32.sub (i32.const 300) (i32.and {X} (i32.const 255)))", 45, 300),
    (f"(i32.or (i32.and {X} (i32.const 1020)) (i32.const 2))", 2, 1023),
    (f"(i32.xor (i32.and {X} (i32.const 1020)) (i32.const 3))", 0, 1023),
    # the mul-high pattern: ((u64(h) * n) >> 32) is below n; as the bench lowers it and as clang -O2 does
    (f"(i32.wrap_i64 (i64.shr_u (i64.mul (i64.extend_i32_u {X}) (i64.const 2457)) (i64.const 32)))", 0, 2456),
    (f"(i32.and (i32.wrap_i64 (i64.shr_u (i64.mul (i64.and {W} (i64.const 4294967295)) (i64.const 2457)) "
     "(i64.const 30))) (i32.const 16380))", 0, 9827),  # at most both operands (9824 exactly)
    ("(call $ld8 (local.get $p) (local.get $x))", 0, 255),  # a typed u8 / u16 load
    ("(i32.shl (call $ld16 (local.get $p) (local.get $x)) (i32.const 1))", 0, 131070),
    (f"(i32.load8_u offset=3 {X})", 0, 255),  # plain zero-extending loads
    (f"(i32.load16_u {X})", 0, 65535),
    (f"(select {X} (i32.const 255) (i32.lt_u {X} (i32.const 255)))", 0, 255),  # clang's min
    (f"(select {X} (i32.const 255) (i32.gt_u (i32.const 255) {X}))", 0, 255),
    (f"(select (i32.and {X} (i32.const 7)) (i32.const 12) {X})", 0, 12),  # either arm
    (f"(i32.lt_u {X} (local.get $y))", 0, 1),  # comparisons
    (f"(i32.popcnt {X})", 0, 32),
    (f"(i32.wrap_i64 (i64.extend_i32_s (i32.and {X} (i32.const 1023))))", 0, 1023),
])
def test_each_rule_bounds_what_it_can(text, lo, hi):
    assert known(text) == Interval(lo, hi)


@pytest.mark.parametrize("text", [
    X,  # a parameter may hold anything
    f"(i32.shl (i32.and {X} (i32.const 1023)) (i32.const 23))",  # bits shifted out: wraps
    f"(i32.shl (i32.and {X} (i32.const 1023)) {X})",  # a count not known
    f"(i32.mul (i32.and {X} (i32.const 65535)) (i32.const 65537))",  # the product passes 2**32
    f"(i32.add (i32.and {X} (i32.const 2147483647)) (i32.const -2147483647))",  # the sum passes 2**32
    f"(i32.sub (i32.and {X} (i32.const 255)) (i32.const 8))",  # may go below zero
    f"(i32.shr_s {X} (i32.const 22))",  # sign-extending shift: negative values stay huge
    f"(i32.load8_s {X})",  # sign-extending load
    f"(i32.wrap_i64 (i64.shr_u (i64.mul (i64.extend_i32_u {X}) (i64.const 4294967296)) (i64.const 31)))",
    f"(i32.wrap_i64 (i64.shr_u (i64.mul {W} (i64.const 3)) (i64.const 32)))",  # u64 * 3 wraps 64 bits
    f"(i32.wrap_i64 (i64.extend_i32_s {X}))",
    f"(select {X} (i32.const 255) (i32.lt_s {X} (i32.const 255)))",  # a signed min: negatives pass
    f"(select {X} (i32.const 255) (i32.lt_u (i32.const 255) {X}))",  # max, not min
    # the compared value is not the selected one (a write in between): x may be anything
    f"(select {X} (i32.const 255) (i32.lt_u (local.tee $x (i32.const 3)) (i32.const 255)))",
    "(call $ld32 (local.get $p) (local.get $x))",  # a u32 load: any value
    "(call $other)",
])
def test_what_may_wrap_or_is_unknown_is_refused(text):
    assert known(text) is None


def test_a_local_is_bounded_by_every_write_of_the_function_and_its_initial_zero():
    body = """(local.set $p (call $ld8 (local.get $x) (i32.const 0)))
      (if (local.get $y) (then (local.set $p (i32.const 300))))"""
    assert known("(local.get $p)", body) == Interval(0, 300)
    # a write that reads the local itself: unbounded, unless the write bounds it anyway
    assert known("(local.get $p)", "(local.set $p (i32.add (local.get $p) (i32.const 1)))") is None
    assert known("(local.get $p)", "(local.set $p (i32.and (i32.add (local.get $p) (i32.const 1)) (i32.const 63)))") \
        == Interval(0, 63)
    # locals that read each other: sound, whichever is asked first
    pair = """(local.set $p (i32.and (local.get $q) (i32.const 15)))
      (local.set $q (i32.add (local.get $p) (i32.const 1)))"""
    assert known("(local.get $q)", pair) == Interval(0, 16)
    assert known("(local.get $p)", pair) == Interval(0, 15)
    assert known("(local.get $p)", "(local.tee $p (local.get $x))") is None  # a write of anything


def test_a_parameter_is_never_bounded_by_its_writes():
    assert facts("(local.set $x (i32.const 3))").known(parse("(local.get $x)")[0]) is None


def test_an_interval_holds_unsigned_values_only():
    with pytest.raises(ValueError):
        Interval(-1, 3)
    with pytest.raises(ValueError):
        Interval(4, 3)


OPS = ["and", "or", "xor", "shr_u", "shl", "mul", "add", "sub", "rem_u", "div_u"]


def _eval32(op: str, a: int, b: int) -> int | None:
    if op in ("rem_u", "div_u") and b == 0:
        return None  # traps
    value = {"and": a & b, "or": a | b, "xor": a ^ b, "shr_u": a >> (b % 32), "shl": a << (b % 32), "mul": a * b,
             "add": a + b, "sub": a - b, "rem_u": a % b if b else 0, "div_u": a // b if b else 0}[op]
    return value & MASK32


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(OPS), m1=st.integers(0, MASK32), m2=st.integers(0, MASK32), k=st.integers(0, MASK32),
       a=st.integers(0, MASK32), b=st.integers(0, MASK32), const=st.booleans())
def test_every_rule_holds_for_every_value_it_claims(op, m1, m2, k, a, b, const):
    """An operation on two masked operands: the value computed the way wasm does lies in the interval."""
    right = f"(i32.const {k})" if const else f"(i32.and (local.get $y) (i32.const {m2}))"
    text = f"(i32.{op} (i32.and {X} (i32.const {m1})) {right})"
    found = known(text)
    value = _eval32(op, a & m1, k if const else b & m2)
    if found is not None and value is not None:
        assert found.lo <= value <= found.hi, (text, a, b)


@settings(max_examples=200, deadline=None)
@given(r=st.integers(0, MASK32), n=st.integers(1, 1 << 20), shift=st.integers(28, 36))
def test_the_mul_high_range_holds(r, n, shift):
    text = f"(i32.wrap_i64 (i64.shr_u (i64.mul (i64.extend_i32_u {X}) (i64.const {n})) (i64.const {shift})))"
    found = known(text)
    value = ((r * n) >> shift) & MASK32
    if found is not None:
        assert found.lo <= value <= found.hi
    if shift == 32:
        assert found == Interval(0, n - 1)


# ------------------------------------------------------------------ bounded terms in affine offsets
LOOP = parse("""(loop $l (drop (call $ld (local.get $h) (local.get $i)))
  (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (local.get $n)))""")[0]


def offset(text: str) -> Affine | None:
    ivs = inductions(LOOP, TYPES)
    return affine(parse(text)[0], ivs, {"$k"}, facts())


def test_a_bounded_subexpression_becomes_the_offsets_bounded_term():
    assert offset(f"(i32.shl (i32.and {X} (i32.const 1023)) (i32.const 2))") == Affine(None, 0, 0, (), 0, 4092)
    # with an induction variable and an invariant local, scaled and subtracted
    assert offset(f"(i32.add (i32.mul (local.get $i) (i32.const 8)) (i32.sub (local.get $k) (i32.and {X} (i32.const 7))))") \
        == Affine("$i", 8, 0, (("$k", 1),), -7, 0)
    # a bound known exactly is a constant
    assert offset(f"(i32.add (i32.and {X} (i32.const 0)) (i32.const 4))") == Affine(None, 0, 4)
    # a shift past MAX_COEFF that cannot wrap is a range; one that may wrap is nothing
    assert offset(f"(i32.shl (i32.and {X} (i32.const 1023)) (i32.const 13))") == Affine(None, 0, 0, (), 0, 1023 << 13)
    assert offset(f"(i32.shl (i32.and {X} (i32.const 1023)) (i32.const 23))") is None
    assert offset(X) is None  # not invariant and not bounded
    without = affine(parse(f"(i32.and {X} (i32.const 7))")[0], {}, set())
    assert without is None  # no facts, no bounded terms: the affine analysis alone


def test_the_loop_pass_finds_the_bounded_offsets_it_hoists():
    """Every access site of the kind the bench's multi_region lowers to is found, each with its range."""
    body = parse("""(loop $l
      (if (i32.lt_u (i32.and (local.get $x) (i32.const 7)) (i32.const 5))
       (then (drop (call $ld (local.get $w) (i32.shl (i32.wrap_i64 (i64.shr_u (i64.mul (i64.extend_i32_u
         (local.get $x)) (i64.const 2457)) (i64.const 32))) (i32.const 2)))))
       (else (drop (call $ld (local.get $w) (i32.shl (i32.wrap_i64 (i64.shr_u (i64.mul (i64.extend_i32_u
         (local.get $x)) (i64.const 411)) (i64.const 32))) (i32.const 2))))))
      (local.set $x (i32.mul (local.get $x) (i32.const 7)))
      (br_if $l (local.get $n)))""")[0]
    sites = [n for n in walk(body) if n[0] == "call"]
    found = [affine(site[3], {}, set(), facts()) for site in sites]
    assert found == [Affine(None, 0, 0, (), 0, 2456 * 4), Affine(None, 0, 0, (), 0, 410 * 4)]
    assert full(32) == Interval(0, MASK32)
