"""Induction variables, trip counts and affine offsets of one loop in Binaryen's folded text.

What range-check hoisting needs (:mod:`.hoist`): for an access whose offset is
``a * v + b`` (``v`` an induction variable, ``b`` built from constants and
locals the loop never writes), one check before the loop replaces the check
of every iteration. The analysis is syntactic and conservative; every bound it
proves is a *runtime* expression evaluated at loop entry, so nothing has to be
known at link time:

- An *induction variable* is an ``i32`` local whose only write in the loop is
  ``v = v + s`` (``s`` a constant, ``0 < |s| <= MAX_COEFF``) in a position that
  runs exactly once per iteration: a top-level statement of the loop body, or
  the operand tree of one, never under ``if``/``block``/``loop``/``try``.
- The *trip count* ``T`` bounds how often the body runs: the loop's last
  statement must be ``br_if $loop COND``, the only branch to the loop's label
  (early exits only lower the count), with ``COND`` comparing the updated
  value ``c'`` of an induction variable ``c`` with an invariant ``X`` (a local
  the loop never writes, or a constant): ``c' != X`` (``s = +-1``; ``c'`` alone
  means ``c' != 0``), ``c' <u X`` / ``c' <s X`` (``s > 0``), ``c' >u X`` /
  ``c' >s X`` (``s < 0``). For the ordered forms ``T`` is taken only when
  ``c0 + s*T`` does not wrap (a runtime condition returned with ``T``).
- In iteration ``t`` (``0 <= t < T``) an induction variable holds ``v0 + s*t``
  before its update and ``v0 + s*(t+1)`` after it, so an offset that reads it
  before the update ranges over ``t`` in ``[0, T-1]``, after it over
  ``[1, T]``. ``a*v + b`` is linear in ``t``: its two end values bound it.
  i32 arithmetic is arithmetic modulo 2**32, so with any i64 representative of
  ``v0`` and of the invariant locals, the i32 offset equals the i64 value
  modulo 2**32; an i64 value inside ``[0, limit)`` is therefore the offset
  itself. Coefficients are limited to ``MAX_COEFF`` so no i64 value overflows.

Each rule is one small function; ``tests/linker/test_induction.py`` holds a
case that fails without it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .ranges import RangeFacts
from .sexpr import Node, head, walk

#: Largest |step| and |coefficient| accepted: with ``T <= 2**32`` every i64 the bounds compute stays
#: below 2**63 (|s*T| <= 2**44, |a*v| <= 2**57, plus a few invariant terms of at most 2**44).
MAX_COEFF = 1 << 12
#: Largest |end| of a bounded term's range (a u32 range times MAX_COEFF, with room for a few sums).
MAX_RANGE = 1 << 46
MASK32 = 0xFFFF_FFFF
#: Operators under which an operand may run zero times or many times per iteration.
CONDITIONAL = {"if", "then", "else", "block", "loop", "try", "try_table", "catch", "catch_all", "delegate"}
_WRITES = ("local.set", "local.tee")


def body_of(loop: list[Node]) -> list[Node]:
    """The statements of a loop (after its label and type, if any)."""
    at = 2 if len(loop) > 1 and isinstance(loop[1], str) else 1
    while at < len(loop) and head(loop[at]) in ("type", "param", "result"):
        at += 1
    return loop[at:]


def label_of(loop: list[Node]) -> str | None:
    return loop[1] if len(loop) > 1 and isinstance(loop[1], str) else None


def post_order(nodes: list[Node]) -> dict[int, int]:
    """Evaluation order of every list node (operands before their operator), keyed by ``id``."""
    order: dict[int, int] = {}

    def visit(node: Node) -> None:
        if isinstance(node, list):
            for child in node:
                visit(child)
            order[id(node)] = len(order)

    for node in nodes:
        visit(node)
    return order


def unconditional(nodes: list[Node]) -> Iterator[Node]:
    """Every list node that runs exactly once when the statements run: none under a CONDITIONAL operator."""
    for node in nodes:
        if isinstance(node, list) and head(node) not in CONDITIONAL:
            yield node
            yield from unconditional(node[1:])


def const_of(node: Node) -> int | None:
    """The signed value of ``(i32.const K)``."""
    if head(node) == "i32.const" and len(node) == 2 and isinstance(node[1], str):
        value = int(node[1], 0) & MASK32
        return value - (1 << 32) if value >= 1 << 31 else value
    return None


@dataclass(frozen=True)
class Induction:
    """An i32 local updated by ``v = v + step`` exactly once per iteration; ``update`` is that write."""

    local: str
    step: int
    update: int  # post-order index of the write


def step_of(write: list[Node]) -> int | None:
    """``s`` for a write ``v = v + s`` / ``v = s + v`` / ``v = v - s``, else None."""
    if len(write) != 3:
        return None
    local, value = write[1], write[2]
    if not isinstance(value, list) or head(value) not in ("i32.add", "i32.sub") or len(value) != 3:
        return None
    a, b = value[1], value[2]
    if head(a) == "local.get" and a[1] == local and const_of(b) is not None:  # type: ignore[index]
        step = const_of(b)
        assert step is not None
        return step if head(value) == "i32.add" else -step
    if head(value) == "i32.add" and head(b) == "local.get" and b[1] == local and const_of(a) is not None:  # type: ignore[index]
        return const_of(a)
    return None


def inductions(loop: list[Node], types: dict[str, str]) -> dict[str, Induction]:
    """The loop's induction variables, by local name."""
    statements = body_of(loop)
    order = post_order(statements)
    writes: dict[str, list[list[Node]]] = {}
    for node in walk(statements):
        if head(node) in _WRITES:
            writes.setdefault(str(node[1]), []).append(node)  # type: ignore[arg-type]
    once = {id(n) for n in unconditional(statements)}
    found: dict[str, Induction] = {}
    for local, nodes in writes.items():
        if len(nodes) != 1 or types.get(local) != "i32" or id(nodes[0]) not in once:
            continue
        step = step_of(nodes[0])
        if step is not None and 0 < abs(step) <= MAX_COEFF:
            found[local] = Induction(local, step, order[id(nodes[0])])
    return found


@dataclass(frozen=True)
class Affine:
    """``coeff * iv + const + sum(c * local for local, c in terms) + e`` in i32 arithmetic (iv None:
    invariant), where ``e`` is a bounded term known only by its range ``low <= e <= high``
    (:mod:`.ranges`: ``(h & 1023) << 2`` is ``e`` in ``[0, 4092]``; 0 when there is none)."""

    iv: str | None
    coeff: int
    const: int
    terms: tuple[tuple[str, int], ...] = ()
    low: int = 0
    high: int = 0

    def scaled(self, k: int) -> Affine | None:
        ends = sorted((self.low * k, self.high * k))
        out = Affine(self.iv, self.coeff * k, self.const * k, tuple((n, c * k) for n, c in self.terms), *ends)
        return out if out.bounded() else None

    def plus(self, other: Affine, sign: int = 1) -> Affine | None:
        if self.iv and other.iv and self.iv != other.iv:
            return None
        terms = dict(self.terms)
        for n, c in other.terms:
            terms[n] = terms.get(n, 0) + sign * c
        low, high = (other.low, other.high) if sign > 0 else (-other.high, -other.low)
        out = Affine(self.iv or other.iv, self.coeff + sign * other.coeff, self.const + sign * other.const,
                     tuple((n, c) for n, c in terms.items() if c), self.low + low, self.high + high)
        return out if out.bounded() else None

    def bounded(self) -> bool:
        return abs(self.coeff) <= MAX_COEFF and abs(self.const) < 1 << 33 and len(self.terms) <= 4 and \
            all(abs(c) <= MAX_COEFF for _, c in self.terms) and -MAX_RANGE <= self.low <= self.high <= MAX_RANGE

    @property
    def ranged(self) -> bool:
        """Whether a term is known only by its range (its check is the range's, not the iteration's)."""
        return self.low != self.high


def affine(node: Node, ivs: dict[str, Induction], invariant: set[str], facts: RangeFacts | None = None) -> Affine | None:
    """``node`` as an affine function of one induction variable and invariant i32 locals plus a bounded
    term, or None. With ``facts``, a subexpression that is not affine becomes a bounded term when its
    value range is known (:meth:`.ranges.RangeFacts.known`)."""
    found = _affine(node, ivs, invariant, facts)
    if found is None and facts is not None:
        known = facts.known(node) if facts.bits_of(node) == 32 else None
        if known is not None:
            found = Affine(None, 0, known.lo) if known.lo == known.hi else Affine(None, 0, 0, (), known.lo, known.hi)
    return found


def _affine(node: Node, ivs: dict[str, Induction], invariant: set[str], facts: RangeFacts | None) -> Affine | None:
    op = head(node)
    if op == "i32.const":
        value = const_of(node)
        return None if value is None else Affine(None, 0, value)
    if op == "local.get":
        name = str(node[1])  # type: ignore[index]
        if name in ivs:
            return Affine(name, 1, 0)
        return Affine(None, 0, 0, ((name, 1),)) if name in invariant else None
    if op in ("i32.add", "i32.sub") and len(node) == 3:
        a, b = affine(node[1], ivs, invariant, facts), affine(node[2], ivs, invariant, facts)  # type: ignore[index]
        return a.plus(b, 1 if op == "i32.add" else -1) if a and b else None
    if op in ("i32.mul", "i32.shl") and len(node) == 3:
        x, k = node[1], const_of(node[2])  # type: ignore[index]
        if k is None and op == "i32.mul":
            x, k = node[2], const_of(node[1])  # type: ignore[index]
        if k is None:
            return None
        factor = k if op == "i32.mul" else 1 << (k & 31)
        inner = affine(x, ivs, invariant, facts)
        return inner.scaled(factor) if inner and abs(factor) <= MAX_COEFF else None
    return None


@dataclass(frozen=True)
class TripCount:
    """``COND`` of the loop's back edge: ``c' <kind> bound`` for the controlling induction variable ``c``."""

    iv: Induction
    kind: str  # "ne" | "lt_u" | "lt_s" | "gt_u" | "gt_s"
    bound: Node  # (local.get X) or (i32.const K)


_SWAPPED = {"i32.gt_u": "lt_u", "i32.gt_s": "lt_s", "i32.lt_u": "gt_u", "i32.lt_s": "gt_s", "i32.ne": "ne"}
_DIRECT = {"i32.lt_u": "lt_u", "i32.lt_s": "lt_s", "i32.gt_u": "gt_u", "i32.gt_s": "gt_s", "i32.ne": "ne"}


def trip_count(loop: list[Node], ivs: dict[str, Induction], invariant: set[str]) -> TripCount | None:
    """How the loop's back edge ends it, if it is one of the forms the module docstring lists."""
    label, statements = label_of(loop), body_of(loop)
    if label is None or not statements:
        return None
    last = statements[-1]
    if head(last) != "br_if" or len(last) != 3 or last[1] != label:  # type: ignore[index]
        return None
    if sum(1 for n in walk(statements) for a in n if a == label) != 1:
        return None  # another branch continues the loop
    order = post_order(statements)
    cond = last[2]  # type: ignore[index]

    def updated(node: Node) -> Induction | None:
        """The induction variable whose updated value ``node`` is (its write, or a read after it)."""
        if head(node) in _WRITES and str(node[1]) in ivs and ivs[str(node[1])].update == order[id(node)]:  # type: ignore[index]
            return ivs[str(node[1])]  # type: ignore[index]
        if head(node) == "local.get" and str(node[1]) in ivs and ivs[str(node[1])].update < order[id(node)]:  # type: ignore[index]
            return ivs[str(node[1])]  # type: ignore[index]
        return None

    def bound(node: Node) -> bool:
        return const_of(node) is not None or (head(node) == "local.get" and str(node[1]) in invariant)  # type: ignore[index]

    found: TripCount | None = None
    iv = updated(cond)
    if iv is not None:
        found = TripCount(iv, "ne", ["i32.const", "0"])
    elif head(cond) in _DIRECT and len(cond) == 3:  # type: ignore[arg-type]
        a, b = cond[1], cond[2]  # type: ignore[index]
        if updated(a) and bound(b):
            found = TripCount(updated(a), _DIRECT[head(cond)], b)  # type: ignore[arg-type,index]
        elif updated(b) and bound(a):
            found = TripCount(updated(b), _SWAPPED[head(cond)], a)  # type: ignore[arg-type,index]
    if found is None:
        return None
    step = found.iv.step
    fits = {"ne": abs(step) == 1, "lt_u": step > 0, "lt_s": step > 0, "gt_u": step < 0, "gt_s": step < 0}
    return found if fits[found.kind] else None


_NOT_STRAIGHT = {"block", "loop", "br", "br_if", "br_table", "return", "unreachable", "try", "try_table", "throw",
                 "rethrow", "return_call", "return_call_indirect", "return_call_ref", "delegate", "catch", "catch_all"}


def site_counts(node: Node, is_site: Callable[[list[Node]], bool]) -> set[int] | None:
    """How many sites (``is_site``) one evaluation of ``node`` runs, over every path through its
    ``if``s; None where a path may branch, trap on purpose or loop (the count is then not known)."""
    if not isinstance(node, list):
        return {0}
    op = head(node)
    if op in _NOT_STRAIGHT:
        return None
    if op == "if":
        parts = [n for n in node[1:] if isinstance(n, list) and head(n) not in ("result", "type")]
        cond = [n for n in parts if head(n) not in ("then", "else")]
        arms = [n for n in parts if head(n) in ("then", "else")]
        if len(cond) != 1:
            return None
        before = site_counts(cond[0], is_site)
        paths = [site_counts(arm, is_site) for arm in arms] + ([{0}] if len(arms) == 1 else [])
        if before is None or any(p is None for p in paths):
            return None
        return {b + p for b in before for arm in paths for p in arm}  # type: ignore[union-attr]
    total = {1} if is_site(node) else {0}
    for child in node[1:]:
        counts = site_counts(child, is_site)
        if counts is None:
            return None
        total = {a + b for a in total for b in counts}
    return total


def one_site_per_iteration(loop: list[Node], is_site: Callable[[list[Node]], bool]) -> bool:
    """Whether every iteration of ``loop`` (body up to its back edge ``br_if $loop COND``, which runs no
    site) runs exactly one site, whichever arm of its ``if``s it takes."""
    statements = body_of(loop)
    if not statements or head(statements[-1]) != "br_if":
        return False
    total: set[int] | None = site_counts(statements[-1][2], is_site) if len(statements[-1]) == 3 else None  # type: ignore[index]
    if total != {0}:
        return False
    for statement in statements[:-1]:
        counts = site_counts(statement, is_site)
        if counts is None:
            return False
        total = {a + b for a in total for b in counts}
    return total == {1}


# ------------------------------------------------------------------ code evaluated at loop entry
def _i64(value: int) -> Node:
    return ["i64.const", str(value)]


def _u64(local: str) -> Node:
    return ["i64.extend_i32_u", ["local.get", local]]


def _bound64(node: Node, signed: bool) -> Node:
    value = const_of(node)
    if value is not None:
        return _i64(value if signed else value & MASK32)
    return ["i64.extend_i32_s" if signed else "i64.extend_i32_u", node]


def trip_code(trip: TripCount, t: str) -> tuple[list[Node], Node]:
    """Code setting the i64 local ``t`` to the trip count at loop entry, and an i32 condition that it holds.

    The condition is false when the ordered forms' ``c0 + s*T`` would wrap (then
    ``T`` does not bound the loop and nothing may be hoisted).
    """
    step, c = trip.iv.step, trip.iv.local
    if trip.kind == "ne":  # c' != X: T = ((X - c0 - 1) mod 2**32) + 1 counting up, ((c0 - X - 1) mod 2**32) + 1 down
        c0, x = _u64(c), _bound64(trip.bound, False)
        gap = ["i64.sub", x, c0] if step > 0 else ["i64.sub", c0, x]
        value = ["i64.add", ["i64.and", ["i64.sub", gap, _i64(1)], _i64(MASK32)], _i64(1)]
        return [["local.set", t, value]], ["i32.const", "1"]
    signed = trip.kind.endswith("_s")
    c0 = ["i64.extend_i32_s" if signed else "i64.extend_i32_u", ["local.get", c]]
    x = _bound64(trip.bound, signed)
    m = abs(step)
    up = trip.kind.startswith("lt")
    far, near = (x, c0) if up else (c0, x)  # the loop runs while far > near (after each step)
    span = ["i64.add", ["i64.sub", far, near], _i64(m - 1)]
    count = span if m == 1 else ["i64.div_u", span, _i64(m)]
    more = ["i64.gt_s" if signed else "i64.gt_u", far, near]
    value = ["select", count, _i64(1), more]
    end = ["i64.add", c0, ["i64.mul", _i64(step), ["local.get", t]]]  # c0 + s*T: the last updated value
    if up:
        ok = ["i64.le_s", end, _i64((1 << 31) - 1 if signed else MASK32)]
    else:
        ok = ["i64.ge_s", end, _i64(-(1 << 31) if signed else 0)]
    return [["local.set", t, value]], ok


def within(offset: Affine, ivs: dict[str, Induction], after_update: bool, t: str, limit: str) -> Node:
    """i32 condition: every value ``offset`` takes in the loop is below the u32 local ``limit``.

    ``after_update``: the offset reads its induction variable after the
    variable's update in the iteration (so ``t`` ranges over ``[1, T]``). A
    bounded term adds its range to both ends: the lowest value is the lower end
    plus ``low``, the highest the upper end plus ``high``; both must lie in
    ``[0, limit)`` (an i64 below zero is above any u32 limit unsigned).
    """
    base: Node = _i64(offset.const)
    for local, k in offset.terms:
        base = ["i64.add", base, ["i64.mul", _u64(local), _i64(k)]]
    lim = _u64(limit)
    if offset.iv is None:
        ends: list[Node] = [base]
    else:
        base = ["i64.add", base, ["i64.mul", _u64(offset.iv), _i64(offset.coeff)]]
        slope = offset.coeff * ivs[offset.iv].step
        first: Node = _i64(1) if after_update else _i64(0)
        last: Node = ["local.get", t] if after_update else ["i64.sub", ["local.get", t], _i64(1)]
        ends = [["i64.add", base, ["i64.mul", _i64(slope), first]], ["i64.add", base, ["i64.mul", _i64(slope), last]]]
        if slope < 0:  # the first value is the highest
            ends.reverse()
    if not offset.ranged:
        if offset.low:
            ends = [["i64.add", end, _i64(offset.low)] for end in ends]
        return _fold_and([["i64.lt_u", end, lim] for end in ends])
    lowest, highest = copy.deepcopy(ends[0]), ends[-1]
    return _fold_and([["i64.lt_u", ["i64.add", lowest, _i64(offset.low)], lim],
                      ["i64.lt_u", ["i64.add", highest, _i64(offset.high)], lim]])


def _fold_and(conditions: list[Node]) -> Node:
    out = conditions[0]
    for cond in conditions[1:]:
        out = ["i32.and", out, cond]
    return out


def reads_after_update(offset_node: Node, iv: Induction, order: dict[int, int]) -> bool | None:
    """Whether every read of ``iv`` in ``offset_node`` follows its update in the iteration (None: mixed)."""
    reads = [order[id(n)] > iv.update for n in walk(offset_node)
             if head(n) == "local.get" and n[1] == iv.local]  # type: ignore[index]
    if not reads or len(set(reads)) != 1:
        return None if reads else False
    return reads[0]
