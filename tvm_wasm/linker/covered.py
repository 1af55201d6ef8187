"""Accesses whose bounds an earlier access of the same iteration has already checked.

A list node read as ``v = load(h, (p << 3) + 4); next = load(h, p << 3)``, or a C struct read
field by field through one pointer, checks the same offset expression ``E`` against the same limit
twice. In a hoisted loop's exact copy an access that fails its compare ends the copy (the typed
error, then ``unreachable``), so reaching the later access ``B`` means the earlier one ``A`` passed:
``E + cA + wA <= room`` (``room``: the region's capacity past the handle's offset). ``B`` then needs
no compare of its own when

- ``A`` runs in every iteration that reaches ``B``, before it: ``A`` is evaluated whenever an
  earlier sibling of ``B`` or of one of ``B``'s ancestors (up to ``B``'s innermost loop) completes
  (:func:`.loop_facts.runs`: not inside an ``if`` arm, a ``block`` or a ``loop``);
- both go through the same handle local in the same direction (a store's limit also refuses a
  read-only region, a load's does not);
- ``E`` is pure (locals and constants, :func:`.loop_facts.pure`) and nothing in that loop writes its
  locals but ``B``'s own ancestors and what follows ``B`` in the loop's body (both run after ``B`` in
  its iteration; the next iteration runs ``A`` again first): ``E`` has one value at both;
- neither ``E + cA`` nor ``E + cB`` wraps (``E``'s largest value, :func:`largest`, plus the larger
  constant stays below ``2**32``): the i32 offsets are then the true sums;
- ``0 <= cB`` and ``cB + wB <= cA + wA``: ``B``'s bytes end no later than ``A``'s.

Then ``B``'s offset plus width is at most ``A``'s, which fitted: ``B`` fits. Its count, its clock and
its stamp are unchanged (the compare is all it loses), so the model's counters and errors stay exact;
where the conditions do not all hold the access keeps its compare.
"""

from __future__ import annotations

from .loop_facts import offset_plus_constant, pure, runs
from .loop_pass import Access
from .ranges import MASK32, RangeFacts
from .sexpr import Node, head, walk


def largest(offset: Node, facts: RangeFacts) -> int:
    """The largest unsigned value the i32 expression ``offset`` may take: its value range's top, and for
    ``x << k`` (or ``x * 2**k``) by a constant, ``2**32 - 2**k`` (the low ``k`` bits are zero)."""
    top = facts.range(offset, 32).hi
    op = head(offset)
    if op in ("i32.shl", "i32.mul") and isinstance(offset, list) and len(offset) == 3:
        operand = offset[2]
        if head(operand) == "i32.const" and isinstance(operand, list):
            k = int(str(operand[1]), 0) & MASK32
            if op == "i32.mul":
                k = (k & -k).bit_length() - 1 if k else 32  # a product keeps the factor's trailing zeros
            else:
                k %= 32
            top = min(top, MASK32 + 1 - (1 << k)) if k < 32 else 0
    return top


def covered_accesses(loop: list[Node], sites: list[list[Node]], accesses: dict[str, Access],
                     facts: RangeFacts) -> dict[int, int]:
    """Sites of ``loop`` (by ``id``) whose compare an earlier site covers, each with that site's ``id``."""
    parents = {id(child): (node, k) for node in walk(loop) if isinstance(node, list)
               for k, child in enumerate(node) if isinstance(child, list)}
    site_ids = {id(s) for s in sites}
    covered: dict[int, int] = {}
    for b in sites:
        key = _key(b, accesses)
        if key is None:
            continue
        handle, direction, expr, c_b, w_b = key
        ancestors, innermost = _ancestors(b, loop, parents)
        later = _after(b, innermost, parents) | ancestors  # what runs only once b has run, in its iteration
        names = {str(n[1]) for n in walk(expr) if head(n) == "local.get"}  # type: ignore[index]
        if any(head(n) in ("local.set", "local.tee") and str(n[1]) in names and id(n) not in later  # type: ignore[index]
               for n in walk(innermost)):
            continue
        top = largest(expr, facts)
        node = b
        while node is not innermost and id(b) not in covered:
            parent, k = parents[id(node)]
            for sibling in parent[:k]:
                for a in runs(sibling):
                    if id(a) not in site_ids or a is b:
                        continue
                    other = _key(a, accesses)  # type: ignore[arg-type]
                    if other is None or other[:3] != (handle, direction, expr):
                        continue
                    c_a, w_a = other[3], other[4]
                    if top + max(c_a, c_b) <= MASK32 and c_b + w_b <= c_a + w_a:
                        covered[id(b)] = id(a)
                        break
                if id(b) in covered:
                    break
            node = parent
    return covered


def _key(site: list[Node], accesses: dict[str, Access]) -> tuple[str, str, Node, int, int] | None:
    """(handle local, direction, ``E``, ``c``, width) of a site whose offset is a pure ``E + c``, ``c >= 0``."""
    access = accesses.get(str(site[1]))
    if access is None or head(site[2]) != "local.get":
        return None
    expr, c = offset_plus_constant(site[3])
    if expr is None or c < 0 or c > MASK32 or not pure(expr):
        return None
    return str(site[2][1]), access.direction, expr, c, access.width.width  # type: ignore[index]


def _after(node: Node, loop: list[Node], parents: dict[int, tuple[list[Node], int]]) -> set[int]:
    """The ``id`` of every node in a later sibling of ``node`` or of one of its ancestors below ``loop``: in
    an iteration, these run only after ``node`` has (a branch back to the loop's head starts the next one)."""
    found: set[int] = set()
    current = node
    while current is not loop:
        parent, k = parents[id(current)]
        found.update(id(n) for sibling in parent[k + 1:] for n in walk(sibling) if isinstance(n, list))
        current = parent
    return found


def _ancestors(node: Node, loop: list[Node], parents: dict[int, tuple[list[Node], int]]) -> tuple[set[int], list[Node]]:
    """The ``id`` of each ancestor of ``node`` below its innermost loop (inside ``loop``), and that loop."""
    seen: set[int] = set()
    current = node
    while current is not loop:
        parent, _ = parents[id(current)]
        if head(parent) == "loop":
            return seen, parent
        seen.add(id(parent))
        current = parent
    return seen, loop
