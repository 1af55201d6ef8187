"""Facts about a loop's code read off its syntax, for the hoisting pass's planning (:mod:`.hoist_plan`).

Which expressions are pure, whether anything in a loop can trap outside the
places the pass flushes its counts, an offset's constant part, which writes of
a local run before a read in every iteration, which operands are the same in
every iteration. Each answers from the folded text alone: no types beyond the
operator names, no values.
"""

from __future__ import annotations

from collections.abc import Iterator

from .induction import CONDITIONAL, const_of
from .loop_pass import Helpers
from .sexpr import Node, head, walk


#: Operators that open a scope a branch may name.
SCOPES = {"block", "loop", "try", "try_table"}
#: Operators that cannot trap and change nothing but their result (no loads, calls, division, truncation).
PURE = {"local.get", "i32.const", "i64.const", "f32.const", "f64.const", "select", "i32.wrap_i64",
        "i64.extend_i32_u", "i64.extend_i32_s", *(f"{t}.{op}" for t in ("i32", "i64") for op in (
            "add", "sub", "mul", "and", "or", "xor", "shl", "shr_u", "shr_s", "rotl", "rotr", "clz", "ctz", "popcnt",
            "eqz", "eq", "ne", "lt_u", "lt_s", "gt_u", "gt_s", "le_u", "le_s", "ge_u", "ge_s"))}


def pure(node: Node) -> bool:
    """Whether ``node`` only computes its value from locals and constants (see :data:`PURE`)."""
    return all(not isinstance(n, list) or head(n) in PURE for n in walk(node))


#: Operators that cannot trap (with :data:`PURE`): structure, locals, globals, branches, ``drop``.
_CANNOT_TRAP = {"block", "loop", "if", "then", "else", "result", "br", "br_if", "br_table", "nop", "drop",
                "local.set", "local.tee", "global.get", "global.set", "return", "i64.extend_i32_u"}


def trap_free(loop: list[Node], helpers: Helpers) -> bool:
    """Whether nothing in ``loop`` can trap but its typed accesses, ``alloc`` calls and ``unreachable``s: the
    places where a hoisted loop flushes (an access's failure, a user ``unreachable``). A division, a
    conversion or a load of the user's own memory may trap anywhere, so a loop holding one does not qualify."""
    for n in walk(loop):
        if not isinstance(n, list):
            continue
        op = head(n)
        if op == "call":
            if n[1] not in helpers.accesses and n[1] != helpers.alloc:
                return False
        elif op not in PURE and op not in _CANNOT_TRAP and op != "unreachable":
            return False
    return True


def offset_plus_constant(node: Node) -> tuple[Node | None, int]:
    """``x`` and ``c`` of an offset ``x + c`` (``c`` an i32 constant, 0 when there is none)."""
    if head(node) == "i32.add":
        for a, b in ((node[1], node[2]), (node[2], node[1])):  # type: ignore[index]
            c = const_of(b)
            if c is not None:
                return a, c
        return None, 0
    return node, 0


def runs(node: Node) -> Iterator[Node]:
    """``node`` and every node evaluated whenever it completes: operands, an ``if``'s condition; not the
    arms of an ``if`` nor the body of a ``block`` or ``loop`` (a branch may leave them early)."""
    if not isinstance(node, list):
        return
    yield node
    op = head(node)
    if op == "if":
        children = [c for c in node[1:] if isinstance(c, list) and head(c) not in ("then", "else", "result")]
    elif op in CONDITIONAL:
        return
    else:
        children = node[1:]
    for child in children:
        yield from runs(child)


def dominated(read: Node, name: str, loop: list[Node], parents: dict[int, tuple[list[Node], int]]) -> bool:
    """Whether a write of local ``name`` runs before ``read`` on every way to it from the start of an
    iteration of ``loop``: an earlier sibling of ``read`` or of one of its ancestors inside the loop
    writes it whenever that sibling completes (structured control flow reaches a node only through
    its earlier siblings)."""
    node = read
    while node is not loop:
        parent, k = parents[id(node)]
        for sibling in parent[:k]:
            if any(head(n) in ("local.set", "local.tee") and str(n[1]) == name for n in runs(sibling)):  # type: ignore[index]
                return True
        node = parent
    return False


def invariant_operand(node: Node, written: set[str], globals_set: set[str]) -> bool:
    """A constant, or a local or global the loop never writes: the same value in every iteration."""
    op = head(node)
    if op == "i32.const":
        return True
    if op == "local.get":
        return str(node[1]) not in written  # type: ignore[index]
    return op == "global.get" and str(node[1]) not in globals_set  # type: ignore[index]


def leaves_by_back_edge_only(loop: list[Node]) -> bool:
    """No ``return``, and no branch to a label outside ``loop``."""
    labels = {str(n[1]) for n in walk(loop) if head(n) in SCOPES and len(n) > 1 and isinstance(n[1], str)}
    for n in walk(loop):
        op = head(n)
        if op == "return" or (op in ("br", "br_if") and str(n[1]) not in labels) or \
                (op == "br_table" and any(isinstance(t, str) and t.startswith("$") and t not in labels for t in n[1:])):
            return False
    return True
