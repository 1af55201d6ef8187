"""Value-range facts: the interval an integer expression's unsigned value lies in, whatever its inputs.

Range-check hoisting (:mod:`.hoist`, :mod:`.induction`) moves an access's
bounds compare to its loop's entry when it can bound the access's offset
there. Affine offsets are bounded by their induction variable's first and last
values; the offsets of hash tables and bucketed lookups are not affine, but
their *value* is bounded whatever the hash: ``h & 1023``, ``h >> 22``,
``h % 1000``, a loaded ``u8``, ``(u64(h) * n) >> 32`` (below ``n``), and
shifts, products and sums of those that cannot wrap. This module computes
those bounds on Binaryen's folded text, one small rule per operator.

An :class:`Interval` ``[lo, hi]`` is a claim about the exact unsigned value of
an ``i32`` (``0 <= lo <= hi < 2**32``) or ``i64`` expression in every
evaluation. Every rule keeps the claim true for all inputs in its operands'
intervals; an operation that may wrap (a left shift, product or sum past the
type's width, a difference that may go below zero) answers the whole type,
which :meth:`RangeFacts.known` reports as nothing known. A local's interval is
the hull of every value written to it anywhere in the function (and 0, its
initial value, unless it is a parameter, which may be anything), so a local
read in a loop is bounded by what the whole function may store in it; a local
whose writes read itself is taken as unbounded while its writes are examined.
``tests/linker/test_ranges.py`` holds, for every rule, a case that must be
accepted and a wrap case that must not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .sexpr import Node, head, walk

MASK32 = 0xFFFF_FFFF
MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Interval:
    """The exact unsigned values ``lo..hi`` (inclusive) an expression may take."""

    lo: int
    hi: int

    def __post_init__(self) -> None:
        if not 0 <= self.lo <= self.hi:
            raise ValueError(f"not an interval of unsigned values: [{self.lo}, {self.hi}]")


def full(bits: int) -> Interval:
    """Every value of a ``bits``-wide integer: nothing known."""
    return Interval(0, (1 << bits) - 1)


def exact(value: int) -> Interval:
    return Interval(value, value)


def hull(a: Interval, b: Interval) -> Interval:
    return Interval(min(a.lo, b.lo), max(a.hi, b.hi))


def _ones(value: int) -> int:
    """The smallest ``2**k - 1`` at or above ``value``: an upper bound of any or/xor of values up to it."""
    return (1 << value.bit_length()) - 1


# ------------------------------------------------------------------ one rule per operator
def and_mask(a: Interval, b: Interval, bits: int) -> Interval:
    """``a & b`` is at most either operand: ``h & 1023`` lies in ``[0, 1023]``."""
    return Interval(0, min(a.hi, b.hi))


def or_bits(a: Interval, b: Interval, bits: int) -> Interval:
    """``a | b`` is at least either operand and sets no bit above their highest."""
    return Interval(max(a.lo, b.lo), _ones(max(a.hi, b.hi)))


def xor_bits(a: Interval, b: Interval, bits: int) -> Interval:
    """``a ^ b`` sets no bit above the operands' highest."""
    return Interval(0, _ones(max(a.hi, b.hi)))


def shift_right(a: Interval, k: Interval, bits: int) -> Interval:
    """``a >>u k``: a constant count (taken modulo the width, as wasm does) shifts both ends; any count
    keeps the value at most ``a``."""
    if k.lo == k.hi:
        shift = k.lo % bits
        return Interval(a.lo >> shift, a.hi >> shift)
    return Interval(0, a.hi)


def shift_left(a: Interval, k: Interval, bits: int) -> Interval:
    """``a << k`` for a constant count, when ``a.hi << k`` still fits: no bit may be shifted out."""
    if k.lo != k.hi:
        return full(bits)
    shift = k.lo % bits
    if a.hi << shift > (1 << bits) - 1:
        return full(bits)
    return Interval(a.lo << shift, a.hi << shift)


def product(a: Interval, b: Interval, bits: int) -> Interval:
    """``a * b`` when the largest product fits (the mul-high pattern's ``u64(h) * n``)."""
    if a.hi * b.hi > (1 << bits) - 1:
        return full(bits)
    return Interval(a.lo * b.lo, a.hi * b.hi)


def total(a: Interval, b: Interval, bits: int) -> Interval:
    """``a + b`` when the largest sum fits."""
    if a.hi + b.hi > (1 << bits) - 1:
        return full(bits)
    return Interval(a.lo + b.lo, a.hi + b.hi)


def difference(a: Interval, b: Interval, bits: int) -> Interval:
    """``a - b`` when it cannot go below zero (``a.lo >= b.hi``)."""
    if a.lo < b.hi:
        return full(bits)
    return Interval(a.lo - b.hi, a.hi - b.lo)


def remainder(a: Interval, b: Interval, bits: int) -> Interval:
    """``a %u b`` is below ``b`` and at most ``a`` (a zero divisor traps: the access never runs)."""
    if a.hi < b.lo:
        return a
    return Interval(0, max(0, min(a.hi, b.hi - 1)))


def quotient(a: Interval, b: Interval, bits: int) -> Interval:
    """``a /u b``: the ends divided by the divisor's other ends (a zero divisor traps)."""
    return Interval(a.lo // max(b.hi, 1), a.hi // max(b.lo, 1))


def narrow(a: Interval) -> Interval:
    """``i32.wrap_i64``: the value itself when it fits 32 bits, else any."""
    return a if a.hi <= MASK32 else full(32)


def widen_signed(a: Interval) -> Interval:
    """``i64.extend_i32_s``: the value itself when its sign bit is clear, else any."""
    return a if a.hi < 1 << 31 else full(64)


def smaller(a: Interval, b: Interval) -> Interval:
    """``min_u(a, b)``: at most the smaller of the two upper ends."""
    return Interval(min(a.lo, b.lo), min(a.hi, b.hi))


BINARY: dict[str, Callable[[Interval, Interval, int], Interval]] = {
    "and": and_mask, "or": or_bits, "xor": xor_bits, "shr_u": shift_right, "shl": shift_left,
    "mul": product, "add": total, "sub": difference, "rem_u": remainder, "div_u": quotient,
}
#: Operators whose result is 0 or 1.
BOOLEAN = {"eqz", "eq", "ne", "lt_u", "lt_s", "gt_u", "gt_s", "le_u", "le_s", "ge_u", "ge_s"}
#: Memory loads that zero-extend, by the bits they read.
ZERO_EXTENDING = {"i32.load8_u": 8, "i32.load16_u": 16, "i64.load8_u": 8, "i64.load16_u": 16, "i64.load32_u": 32}
_UNSIGNED_MIN = {"lt_u": False, "le_u": False, "gt_u": True, "ge_u": True}  # -> whether the operands are swapped


def _bits(op: str) -> int | None:
    prefix = op.split(".", 1)[0]
    return {"i32": 32, "i64": 64}.get(prefix)


def _pure(node: Node) -> bool:
    """A local read or a constant: evaluating it twice gives the same value."""
    return head(node) in ("local.get", "i32.const", "i64.const") and len(node) == 2


class RangeFacts:
    """The value ranges of one function's integer expressions.

    ``params`` may hold anything on entry; ``types`` gives every local's and
    parameter's type; ``writes`` every ``local.set``/``local.tee`` of the
    function; ``call_range`` answers a call's result interval (the linker's
    typed ``u8``/``u16`` loads) or None.
    """

    def __init__(self, writes: Iterable[list[Node]], params: set[str], types: dict[str, str],
                 call_range: Callable[[list[Node]], Interval | None] = lambda call: None) -> None:
        self.params, self.types, self.call_range = params, types, call_range
        self.writes: dict[str, list[Node]] = {}
        for write in writes:
            if len(write) == 3:
                self.writes.setdefault(str(write[1]), []).append(write[2])
            else:
                self.writes.setdefault(str(write[1]), []).append(["unreachable"])  # a form not understood
        self.locals: dict[str, Interval] = {}
        self.visiting: set[str] = set()

    @classmethod
    def of_function(cls, body: list[Node], params: set[str], types: dict[str, str],
                    call_range: Callable[[list[Node]], Interval | None] = lambda call: None) -> RangeFacts:
        writes = [n for n in walk(body) if head(n) in ("local.set", "local.tee")]
        return cls(writes, params, types, call_range)

    def known(self, node: Node) -> Interval | None:
        """``node``'s interval when it says more than the type (an i32 or i64 that may be anything: None)."""
        bits = self.bits_of(node)
        if bits is None:
            return None
        found = self.range(node, bits)
        return None if found == full(bits) else found

    def bits_of(self, node: Node) -> int | None:
        op = head(node)
        if op is None:
            return None
        if op in ("local.get", "local.tee"):
            return {"i32": 32, "i64": 64}.get(self.types.get(str(node[1]), ""))
        if op == "select":
            return self.bits_of(node[1]) if len(node) == 4 else None
        if op == "call":
            return 32 if self.call_range(node) is not None else None  # type: ignore[arg-type]
        return _bits(op)

    def local(self, name: str, bits: int) -> Interval:
        """The hull of everything the function writes to ``name`` (and its initial 0)."""
        if name in self.params or self.types.get(name) not in ("i32", "i64"):
            return full(bits)
        if name in self.locals:
            return self.locals[name]
        if name in self.visiting:
            return full(bits)  # a write that reads the local itself: unbounded while it is examined
        self.visiting.add(name)
        found = exact(0)
        for value in self.writes.get(name, []):
            found = hull(found, self.range(value, bits))
        self.visiting.discard(name)
        self.locals[name] = found
        return found

    def range(self, node: Node, bits: int) -> Interval:
        """The interval of ``node``, a ``bits``-wide integer expression (the whole type when unknown)."""
        op = head(node)
        if op is None or not isinstance(node, list):
            return full(bits)
        if op in ("i32.const", "i64.const") and len(node) == 2:
            return exact(int(str(node[1]), 0) & ((1 << bits) - 1))
        if op == "local.get" and len(node) == 2:
            return self.local(str(node[1]), bits)
        if op == "local.tee" and len(node) == 3:
            return self.range(node[2], bits)
        if op == "select" and len(node) == 4:
            return self.select(node, bits)
        if op == "call":
            return self.call_range(node) or full(bits)
        if op in ZERO_EXTENDING:
            return full(ZERO_EXTENDING[op])
        if op == "i32.wrap_i64" and len(node) == 2:
            return narrow(self.range(node[1], 64))
        if op == "i64.extend_i32_u" and len(node) == 2:
            return self.range(node[1], 32)
        if op == "i64.extend_i32_s" and len(node) == 2:
            return widen_signed(self.range(node[1], 32))
        width, _, name = op.partition(".")
        if width not in ("i32", "i64"):
            return full(bits)
        if name in BOOLEAN:
            return Interval(0, 1)
        if name in ("clz", "ctz", "popcnt"):
            return Interval(0, bits)
        if name in BINARY and len(node) == 3:
            return BINARY[name](self.range(node[1], bits), self.range(node[2], bits), bits)
        return full(bits)

    def select(self, node: list[Node], bits: int) -> Interval:
        """``select a b c``: either operand; ``select a b (a <u b)`` (clang's ``min``) at most both."""
        a, b, cond = node[1], node[2], node[3]
        ra, rb = self.range(a, bits), self.range(b, bits)
        cmp = head(cond)
        if cmp is not None and isinstance(cond, list) and len(cond) == 3 and _pure(a) and _pure(b) and \
                _pure(cond[1]) and _pure(cond[2]):
            _, _, kind = cmp.partition(".")
            if kind in _UNSIGNED_MIN and _bits(cmp) == bits:
                x, y = (cond[2], cond[1]) if _UNSIGNED_MIN[kind] else (cond[1], cond[2])
                if x == a and y == b:  # a when a < b (or <=), else b: the smaller
                    return smaller(ra, rb)
        return hull(ra, rb)
