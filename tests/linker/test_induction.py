"""The induction analysis behind range-check hoisting, rule by rule, on Binaryen's folded text of loops."""

from __future__ import annotations

import pytest

from tvm_wasm.linker.induction import (
    MAX_COEFF, Affine, affine, body_of, inductions, one_site_per_iteration, post_order, reads_after_update, trip_count,
)
from tvm_wasm.linker.sexpr import parse

TYPES = {"$i": "i32", "$n": "i32", "$off": "i32", "$k": "i32", "$acc": "i64", "$h": "i64"}


def loop(text: str) -> list:
    return parse(text)[0]


def ld(offset: str) -> str:
    return f"(call $ld (local.get $h) {offset})"


CLANG_DOWN = loop(f"""(loop $l
  (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u {ld('(local.get $off)')})))
  (local.set $off (i32.add (local.get $off) (i32.const 4)))
  (br_if $l (local.tee $n (i32.add (local.get $n) (i32.const -1)))))""")


def test_a_variable_updated_once_per_iteration_by_a_constant_is_an_induction_variable():
    ivs = inductions(CLANG_DOWN, TYPES)
    assert {name: iv.step for name, iv in ivs.items()} == {"$off": 4, "$n": -1}


@pytest.mark.parametrize("update", [
    "(if (local.get $k) (then (local.set $off (i32.add (local.get $off) (i32.const 4)))))",  # conditional
    "(block $b (local.set $off (i32.add (local.get $off) (i32.const 4))))",  # a block may be left before it
    "(local.set $off (i32.add (local.get $off) (local.get $k)))",  # not a constant step
    f"(local.set $off (i32.add (local.get $off) (i32.const {MAX_COEFF + 1})))",  # too large a step
    "(local.set $off (i32.mul (local.get $off) (i32.const 2)))",  # not an addition
])
def test_updates_that_do_not_run_exactly_once_by_a_constant_are_not(update):
    body = loop(f"(loop $l (drop {ld('(local.get $off)')}) {update} (br_if $l (local.get $k)))")
    assert "$off" not in inductions(body, TYPES)


def test_a_second_write_or_an_i64_local_is_not_an_induction_variable():
    twice = loop("""(loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (local.get $n)))""")
    assert "$i" not in inductions(twice, TYPES)
    wide = loop("(loop $l (local.set $acc (i64.add (local.get $acc) (i64.const 1))) (br_if $l (local.get $n)))")
    assert inductions(wide, TYPES) == {}


@pytest.mark.parametrize("cond, kind", [
    ("(local.tee $n (i32.add (local.get $n) (i32.const -1)))", "ne"),
    ("(i32.ne (local.get $k) (local.tee $i (i32.add (local.get $i) (i32.const 1))))", "ne"),
    ("(i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 2))) (local.get $k))", "lt_u"),
    ("(i32.gt_s (local.get $k) (local.tee $i (i32.add (local.get $i) (i32.const 1))))", "lt_s"),
    ("(i32.gt_u (local.tee $i (i32.sub (local.get $i) (i32.const 1))) (i32.const 0))", "gt_u"),
    ("(i32.lt_s (i32.const 3) (local.tee $i (i32.add (local.get $i) (i32.const -3))))", "gt_s"),
])
def test_the_back_edge_forms_that_give_a_trip_count(cond, kind):
    body = loop(f"(loop $l (drop {ld('(local.get $k)')}) (br_if $l {cond}))")
    invariant = {"$k"}
    trip = trip_count(body, inductions(body, TYPES), invariant)
    assert trip is not None and trip.kind == kind


@pytest.mark.parametrize("text", [
    # the step does not fit the comparison: counting down against <u, or by 2 against !=
    "(loop $l (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const -1))) (local.get $k))))",
    "(loop $l (br_if $l (i32.ne (local.get $k) (local.tee $i (i32.add (local.get $i) (i32.const 2))))))",
    # the bound changes in the loop
    """(loop $l (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $k))))""",
    # another branch continues the loop
    """(loop $l (br_if $l (local.get $k))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))""",
    # the compared value is read before its update (the bench's while loops: the exit is at the top)
    """(loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l))""",
])
def test_other_back_edges_give_none(text):
    body = loop(text)
    written = {"$i", "$k"} if "local.set $k" in text else {"$i"}
    invariant = {"$k", "$n"} - written
    assert trip_count(body, inductions(body, TYPES), invariant) is None


def test_affine_offsets_and_what_is_refused():
    ivs = inductions(CLANG_DOWN, TYPES)
    invariant = {"$k"}
    parsed = lambda text: affine(parse(text)[0], ivs, invariant)  # noqa: E731
    assert parsed("(i32.add (i32.shl (local.get $off) (i32.const 3)) (i32.const -4))") == Affine("$off", 8, -4)
    assert parsed("(i32.sub (local.get $k) (i32.mul (i32.const 3) (local.get $off)))") == Affine("$off", -3, 0, (("$k", 1),))
    assert parsed("(i32.const 12)") == Affine(None, 0, 12)
    assert parsed("(i32.add (local.get $off) (local.get $n))") is None  # two induction variables
    assert parsed("(i32.mul (local.get $off) (local.get $k))") is None  # not linear
    assert parsed("(i32.shl (local.get $off) (i32.const 13))") is None  # beyond MAX_COEFF
    assert parsed("(i32.load (local.get $off))") is None


def test_an_offset_read_after_its_variables_update_ranges_one_step_later():
    body = loop(f"""(loop $l (drop {ld('(local.get $i)')})
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (drop {ld('(local.get $i)')}) (br_if $l (local.get $n)))""")
    iv = inductions(body, TYPES)["$i"]
    order = post_order(body_of(body))
    first, second = body_of(body)[0][1][3], body_of(body)[2][1][3]
    assert (reads_after_update(first, iv, order), reads_after_update(second, iv, order)) == (False, True)


SITE = "(drop (call $ld (local.get $h) (i32.const 0)))"


def _is_site(node: list) -> bool:
    return node[0] == "call" and node[1] == "$ld"


@pytest.mark.parametrize("body, once", [
    (f"(if (local.get $k) (then {SITE}) (else {SITE}))", True),  # one arm or the other
    (f"(if (local.get $k) (then {SITE}) (else (if (local.get $n) (then {SITE}) (else {SITE}))))", True),
    (f"(local.set $i (i32.const 1)) {SITE}", True),  # straight
    (f"(if (local.get $k) (then {SITE}))", False),  # no else: none in some iterations
    (f"(if (local.get $k) (then {SITE}) (else (if (local.get $n) (then {SITE}))))", False),
    (f"(if (local.get $k) (then {SITE} {SITE}) (else {SITE}))", False),  # two in one arm
    (f"(if (call $ld (local.get $h) (i32.const 4)) (then {SITE}) (else {SITE}))", False),  # one more in the condition
    (f"(block $b (br_if $b (local.get $k)) {SITE})", False),  # a branch may skip it
    (f"(if (local.get $k) (then {SITE}) (else (unreachable)))", False),
])
def test_one_site_per_iteration(body, once):
    looped = loop(f"(loop $l {body} (br_if $l (local.get $n)))")
    assert one_site_per_iteration(looped, _is_site) is once


def test_a_site_in_the_back_edge_is_not_one_per_iteration():
    looped = loop(f"(loop $l {SITE} (br_if $l (call $ld (local.get $h) (local.get $n))))")
    assert not one_site_per_iteration(looped, _is_site)
