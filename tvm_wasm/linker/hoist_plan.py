"""The hoisting pass's planning: which loops qualify and what is known about each (:class:`LoopPlan`).

Everything here decides; the only code built here is the expression of a
count's iterations (:meth:`Counting.begun`). For a qualifying loop the plan
holds its handles and the locals of their limits and counts, whether it is
exact (no ``alloc`` region can change), its Bump arenas, the accesses proved
in bounds by their allocation or by a range checked at entry
(:mod:`.induction`, :mod:`.ranges`), the stores whose dirty-page marks one
store of their run makes, and how a loop's accesses may be counted. The code
is :mod:`.hoist_code`'s, from the plan.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..runtime import layout as L
from .covered import covered_accesses
from .induction import (
    Affine, Induction, TripCount, affine, body_of, const_of, inductions, one_site_per_iteration, post_order,
    reads_after_update, trip_count, unconditional,
)
from .loop_facts import (
    SCOPES, dominated, invariant_operand, leaves_by_back_edge_only, offset_plus_constant, pure, trap_free,
)
from .loop_pass import Access, FunctionPass
from .sexpr import Node, head, render, walk

_UNSUPPORTED = {"call_indirect", "call_ref", "return_call", "return_call_indirect", "return_call_ref",
                "br_on_null", "br_on_non_null", "br_on_cast", "br_on_cast_fail", "throw", "rethrow",
                "throw_ref", "delegate", "try", "try_table"}
_SIMPLE = {"i32", "i64", "f32", "f64"}
#: ``mark`` of a store that marks its own pages (:meth:`.hoist_code.LoopCode.unchecked_access`).
OWN_MARKS: tuple[int, int] = (-1, -1)


@dataclass
class LoopRanges:
    """What range-check hoisting found in one loop: its induction variables, trip count, and the accesses
    (by ``id`` of the call) whose offset is affine, with whether they read the variable after its update."""

    ivs: dict[str, Induction]
    trip: TripCount | None
    found: dict[int, tuple[Affine, bool]]
    sites: dict[int, list[Node]]


@dataclass
class Counting:
    """An innermost loop counted per iteration: one ``it += 1`` per iteration instead of one add per access.

    Each counted access runs once per iteration (none under ``if``/``block``;
    the loop's other accesses count one by one), so when the loop is left or
    an access fails, each counted site has run ``it - 1`` times, plus once if it comes before that point in
    the iteration's evaluation order; after the loop's last iteration, ``it``
    times. The counts are added there (:meth:`.hoist_code.LoopCode.adjust`).
    """

    loop: list[Node]
    it: str  # i64 local: iterations begun
    labels: set[str]  # branch targets inside the loop
    sites: dict[int, tuple[str, int]]  # id of the call -> (count local, 1)
    order: dict[int, int]  # post-order of the loop's body
    derived: tuple[Induction, str] | None = None  # (induction variable, i32 local: its value at entry)

    def begun(self, point: int | None) -> Node:
        """i64: iterations begun at post-order ``point`` of the body (None: after the loop ends).

        Kept in ``it`` (one add per iteration), or, ``derived``, computed from the induction variable
        ``c`` (updated once per iteration by ``s``, ``c0`` at entry): ``|c - c0| / |s|`` iterations
        completed their update, plus the current one when ``point`` comes before it. Exact only while
        ``T * |s| < 2**32`` (the copy's entry condition), so the difference does not wrap.
        """
        if self.derived is None:
            return ["local.get", self.it]
        iv, c0 = self.derived
        step = abs(iv.step)
        diff: Node = ["i32.sub", ["local.get", iv.local], ["local.get", c0]] if iv.step > 0 else \
            ["i32.sub", ["local.get", c0], ["local.get", iv.local]]
        done: Node = ["i64.extend_i32_u", diff]
        if step > 1:
            done = ["i64.div_u", done, ["i64.const", str(step)]]
        if point is not None and point < iv.update:
            done = ["i64.add", done, ["i64.const", "1"]]
        return done


@dataclass
class Arena:
    """An ``alloc`` region of an exact loop, its Bump allocation kept in locals (the code:
    :meth:`.hoist_bump.BumpCode.bump_alloc`)."""

    region: Node  # the calls' region operand (a constant, or a local or global the loop never writes)
    slot: str  # i32: the region's slot (region id << SLOT_SHIFT)
    used: str  # i32: the bump pointer
    end: str  # i32: the capacity (0: not a live writable Bump region, every allocation takes the ABI's path)
    start: str  # i32: the bump pointer at the last flush (bytes allocated since = used - start)
    high: str  # i64: the handle's region and generation
    count: str  # i64: allocations since the last flush (unless ``size`` derives them)
    size: int | None = None  # the one constant size (> 0) of every call: allocations = (used - start) / size


class LoopPlan:
    """One loop the pass hoists: its handles, their limit and count locals, and what is proved about it.

    A loop whose ``alloc`` calls all name a region the loop cannot change
    (``exact``) runs its fast copy only when every handle is fast at entry;
    inside it nothing can change the directory, so an access that fails its
    compare can only be out of bounds, and accesses whose offset range was
    checked at entry (:mod:`.induction`) or that the allocation they come from
    bounds have no compare at all. Other loops keep the slow paths that resolve
    again and rejoin. The locals are the function's (``fp.local``), allocated
    in the order the code is built: the plan is made when the pass reaches the
    loop and consulted while its code is emitted.
    """

    @classmethod
    def of(cls, fp: FunctionPass, loop: list[Node]) -> LoopPlan | None:
        """The plan of ``loop`` if it qualifies: it has no result, calls nothing but typed accesses on handles
        it never writes (and ``alloc``), and no branch leaves it with a value; else None."""
        if any(head(item) == "result" for item in loop[1:3]):
            return None
        inside = {str(n[1]) for n in walk(loop) if head(n) in SCOPES and len(n) > 1 and str(n[1]).startswith("$")}
        written = {str(n[1]) for n in walk(loop) if head(n) in ("local.set", "local.tee")}
        sites: list[list[Node]] = []
        for n in walk(loop):
            op = head(n)
            if op in _UNSUPPORTED:
                return None
            if op == "call":
                if n[1] == fp.helpers.alloc and len(n) == 4:
                    continue  # a safepoint unless the region's allocator stays in wasm
                if n[1] not in fp.helpers.accesses:
                    return None
                handle = n[2] if len(n) > 2 else None
                if head(handle) != "local.get" or str(handle[1]) in written:  # type: ignore[index]
                    return None
                sites.append(n)
            elif op in ("br", "br_if"):
                if str(n[1]) not in inside and len(n) != (2 if op == "br" else 3):
                    return None  # leaves the loop with a value
            elif op == "br_table":
                if any(isinstance(t, str) and t.startswith("$") and t not in inside for t in n[1:]):
                    return None
            elif op == "return" and len(n) > 1 and (len(fp.results) != 1 or fp.results[0] not in _SIMPLE):
                return None
        if not sites:
            return None
        return cls(fp, loop, inside, sites, written)

    def __init__(self, fp: FunctionPass, loop: list[Node], inside: set[str], sites: list[list[Node]],
                 written: set[str]) -> None:
        self.fp, self.loop, self.inside = fp, loop, inside
        fp.report.accesses += len(sites)
        self.handles: list[str] = []
        self.groups: dict[tuple[str, str, str], tuple[str, str]] = {}  # (handle, dir, width) -> (limit, count)
        last: dict[str, int] = {}
        order = post_order([loop])  # evaluation order: a handle's last access in the body flushes last
        for site in sites:
            position = order[id(site)]
            access = fp.helpers.accesses[str(site[1])]
            handle = str(site[2][1])  # type: ignore[index]
            if handle not in self.handles:
                self.handles.append(handle)
            key = (handle, access.direction, access.width.name)
            if key not in self.groups:
                self.groups[key] = (fp.local("i32"), fp.local("i64"))
            last[handle] = position
        self.base = {h: fp.local("i32") for h in self.handles}
        # a stored handle's SLOT_DIRTY_TABLE, resolved with its base: each hoisted store marks its pages
        self.dirty = {h: fp.local("i32") for h in self.handles if any(k[:2] == (h, "store") for k in self.groups)}
        self.flush_order = sorted(self.handles, key=lambda h: last[h])
        self.pool_local = fp.local("i32")
        self.return_local = fp.local(fp.results[0]) if fp.results and fp.results[0] in _SIMPLE else None
        globals_set = {str(n[1]) for n in walk(loop) if head(n) == "global.set"}
        self.allocs = [n for n in walk(loop) if head(n) == "call" and n[1] == fp.helpers.alloc and len(n) == 4]
        self.exact = all(invariant_operand(n[2], written, globals_set) for n in self.allocs)
        self.arenas = self.arenas_of(self.allocs) if self.exact else {}
        # No trap but at a flush: each allocation's bump pointer reaches the slot at the next flush, not at once.
        self.deferred = bool(self.arenas) and trap_free(loop, fp.helpers)
        fp.report.bump_deferred += int(self.deferred)
        self.in_allocation = self.allocation_offsets(loop, sites)
        fp.report.in_allocation += len(self.in_allocation)
        self.marks = self.shared_marks(loop)
        fp.report.marks_shared += sum(1 for m in self.marks.values() if m is None)
        self.ranges = self.ranges_of(loop, frozenset(self.in_allocation)) if self.exact else LoopRanges({}, None, {}, {})
        fp.report.unchecked += len(self.ranges.found)
        # Only in an exact copy does reaching an access mean every earlier one passed its compare.
        proved = set(self.in_allocation) | set(self.ranges.found)
        self.covered = {b: a for b, a in covered_accesses(loop, sites, fp.helpers.accesses, fp.facts).items()
                        if b not in proved} if self.exact else {}
        fp.report.covered += len(self.covered)

    # -------------------------------------------------------------- bump allocation
    def arenas_of(self, allocs: list[list[Node]]) -> dict[str, Arena]:
        """One :class:`Arena` per distinct region operand of the exact loop's ``alloc`` calls."""
        arenas: dict[str, Arena] = {}
        sizes: dict[str, set[int | None]] = {}
        for call in allocs:
            key = render(call[2])
            size = const_of(call[3])
            sizes.setdefault(key, set()).add(size if size is not None and size > 0 else None)
            if key not in arenas:
                fp = self.fp
                arenas[key] = Arena(copy.deepcopy(call[2]), fp.local("i32"), fp.local("i32"), fp.local("i32"),
                                    fp.local("i32"), fp.local("i64"), fp.local("i64"))
        for key, arena in arenas.items():
            if len(sizes[key]) == 1:
                arena.size = next(iter(sizes[key]))
        return arenas

    def allocation_offsets(self, loop: list[Node], sites: list[list[Node]]) -> dict[int, tuple[Arena, int, list[Node]]]:
        """Accesses (by ``id``) whose offset is ``p`` or ``p + c`` where ``p`` is the offset of an allocation
        of ``s`` bytes from an arena of this loop, ``c + width <= s``: each answers (arena, s, the site).

        ``p`` qualifies when every write of it in the loop is such an offset (``i32.wrap_i64`` of the
        ``alloc`` call, of a local holding its handle, or a copy of another such local) and every read
        of such a local is preceded, in its own iteration, by a write (:func:`dominated`): values from
        before the loop never reach it. Every answer of ``alloc(R, s)`` then has ``p <= capacity - s``
        when ``capacity >= s``: a Bump or Slab block ends inside the region, a failure answers 0. With
        that and ``capacity - width < limit`` (checked once at entry,
        :meth:`.hoist_bump.BumpCode.allocation_checks`), the access cannot fail and needs no compare.
        """
        if not self.arenas:
            return {}
        parents = {id(child): (node, k) for node in walk(loop) if isinstance(node, list)
                   for k, child in enumerate(node) if isinstance(child, list)}
        writes: dict[str, list[Node]] = {}
        for n in walk(loop):
            if head(n) in ("local.set", "local.tee"):
                writes.setdefault(str(n[1]), []).append(n[2])
        facts: dict[str, tuple[str, str, int]] = {}  # local -> ("handle" | "offset", arena key, size)

        def fact(node: Node) -> tuple[str, str, int] | None:
            op = head(node)
            if op == "call" and node[1] == self.fp.helpers.alloc and len(node) == 4:  # type: ignore[index]
                size, key = const_of(node[3]), render(node[2])  # type: ignore[index]
                return ("handle", key, size) if size is not None and size > 0 and key in self.arenas else None
            if op == "local.tee":
                return fact(node[2])  # type: ignore[index]
            if op == "local.get":
                name = str(node[1])  # type: ignore[index]
                return facts.get(name) if dominated(node, name, loop, parents) else None
            if op == "i32.wrap_i64":
                inner = fact(node[1])  # type: ignore[index]
                return ("offset", inner[1], inner[2]) if inner is not None and inner[0] == "handle" else None
            return None

        changed = True
        while changed:
            changed = False
            for name, values in writes.items():
                if name in facts:
                    continue
                found = {fact(v) for v in values}
                if len(found) == 1 and None not in found:
                    facts[name] = found.pop()  # type: ignore[assignment]
                    changed = True
        proved: dict[int, tuple[Arena, int, list[Node]]] = {}
        for site in sites:
            access = self.fp.helpers.accesses[str(site[1])]
            base, c = offset_plus_constant(site[3])
            if base is None or c < 0:
                continue
            got = fact(base)
            if got is not None and got[0] == "offset" and c + access.width.width <= got[2]:
                proved[id(site)] = (self.arenas[got[1]], got[2], site)
        return proved

    def shared_marks(self, loop: list[Node]) -> dict[int, tuple[int, int] | None]:
        """Runs of consecutive stores (by ``id``) proved by their allocation (:meth:`allocation_offsets`),
        through one handle at ``p + c`` for one local ``p``, whose values are pure and cannot trap, spanning
        at most a page: the first store marks the pages of the run's first and last byte (``(lowest c,
        highest c + width)``), the others (None) mark nothing.

        Exact: the bytes of a run cover at most two pages, its first and last byte are written, so those
        are the pages it writes; none of its stores can fail and nothing between them can trap or read
        the map, so no observer sees the marks before the stores.
        """
        marks: dict[int, tuple[int, int] | None] = {}
        for node in walk(loop):
            if not isinstance(node, list):
                continue
            run: list[tuple[list[Node], tuple[str, str, int, int]]] = []
            for child in [*node[1:], None]:
                key = self.mark_key(child)
                if key is not None and run and key[:2] == run[0][1][:2]:
                    run.append((child, key))  # type: ignore[arg-type]
                    continue
                if len(run) > 1:
                    low, high = min(k[2] for _, k in run), max(k[2] + k[3] for _, k in run)
                    if high - low <= L.DIRTY_PAGE:
                        marks[id(run[0][0])] = (low, high)
                        marks.update((id(stmt), None) for stmt, _ in run[1:])
                run = [(child, key)] if key is not None else []  # type: ignore[list-item]
        return marks

    def mark_key(self, statement: Node) -> tuple[str, str, int, int] | None:
        """(handle, ``p``, ``c``, width) of a store that may join a run of :meth:`shared_marks`."""
        if head(statement) != "call" or id(statement) not in self.in_allocation:
            return None
        access = self.fp.helpers.accesses[str(statement[1])]  # type: ignore[index]
        if access.direction != "store" or not pure(statement[4]):  # type: ignore[index]
            return None
        base, c = offset_plus_constant(statement[3])  # type: ignore[index]
        if head(base) != "local.get":
            return None
        return str(statement[2][1]), str(base[1]), c, access.width.width  # type: ignore[index]

    # -------------------------------------------------------------- range checks hoisted
    def ranges_of(self, loop: list[Node], skip: frozenset[int] = frozenset()) -> LoopRanges:
        """Accesses of ``loop`` (but those in ``skip``) whose offset is affine in one of its induction
        variables, or invariant in it: their range is checked once, at the loop's entry."""
        written = {str(n[1]) for n in walk(loop) if head(n) in ("local.set", "local.tee")}
        invariant = {name for name, ty in self.fp.types.items() if ty == "i32" and name not in written}
        ivs = inductions(loop, self.fp.types)
        trip = trip_count(loop, ivs, invariant)
        order = post_order(body_of(loop))
        found: dict[int, tuple[Affine, bool]] = {}
        for site in walk(loop):
            if head(site) != "call" or site[1] not in self.fp.helpers.accesses or id(site) in skip:
                continue
            offset = affine(site[3], ivs, invariant, self.fp.facts)
            if offset is None or (offset.iv is not None and trip is None):
                continue
            after = reads_after_update(site[3], ivs[offset.iv], order) if offset.iv else False
            if after is not None:
                found[id(site)] = (offset, after)
        return LoopRanges(ivs, trip, found, {id(n): n for n in walk(loop)})

    # -------------------------------------------------------------- counting
    def counted_by_difference(self, loop: list[Node], trip: TripCount | None, free: frozenset[int]) -> list[Node] | None:
        """The site counted as ``T`` minus the others' counts, for a loop that runs exactly ``T`` times
        (a trip count, no way out but its back edge), all of whose accesses had their range checked
        (nothing in it can fail, so nothing observes the counts while it runs) and whose every iteration
        runs exactly one of them (arms of ``if``s, as in a bucketed lookup): the first site in the body,
        usually the hot arm, loses its add. None for any other loop."""
        if trip is None or not leaves_by_back_edge_only(loop):
            return None
        sites = [n for n in walk(loop) if head(n) == "call" and n[1] in self.fp.helpers.accesses]
        if len(sites) < 2 or not all(id(n) in free for n in sites):
            return None
        if not one_site_per_iteration(loop, lambda n: head(n) == "call" and n[1] in self.fp.helpers.accesses):
            return None
        return sites[0]

    def counted_at_exit(self, loop: list[Node], trip: TripCount | None, free: frozenset[int]) -> dict[int, tuple[str, int]]:
        """Accesses whose count is ``T`` per site, added once when ``loop`` ends (no add per access).

        Only when every access of the loop had its range checked (nothing in it
        can fail, so nothing observes the counts while it runs), the loop has a
        trip count and no way out but its back edge (so it runs exactly ``T``
        times), and each site runs exactly once per iteration. Answers the
        sites by ``id``, each with its count local and its accesses per iteration (1).
        """
        if trip is None or not leaves_by_back_edge_only(loop):
            return {}
        sites = [n for n in walk(loop) if head(n) == "call" and n[1] in self.fp.helpers.accesses]
        once = {id(n) for n in unconditional(body_of(loop))}
        if not all(id(n) in free and id(n) in once for n in sites):
            return {}
        found: dict[int, tuple[str, int]] = {}
        for site in sites:
            _, _, _, count = self.site(site)
            found[id(site)] = (count, 1)
        return found

    def iteration_counting(self, loop: list[Node]) -> Counting | None:
        """A :class:`Counting` for an innermost loop with two or more accesses that run exactly once per
        iteration (none under ``if``/``block``; accesses under them count one by one, as a list walk's
        conditional copy does), that no ``br_table`` or branch with a value leaves; None for any other loop."""
        statements = body_of(loop)
        if any(head(n) == "loop" for n in walk(statements)) or any(head(n) == "result" for n in loop[1:3]):
            return None
        labels = {str(n[1]) for n in walk(loop) if head(n) in SCOPES and len(n) > 1 and isinstance(n[1], str)}
        for n in walk(loop):
            op = head(n)
            if op == "br_table" and any(isinstance(t, str) and t.startswith("$") and t not in labels for t in n[1:]):
                return None
            if op in ("br", "br_if") and str(n[1]) not in labels and len(n) != (2 if op == "br" else 3):
                return None  # leaves with a value
        sites = [n for n in walk(loop) if head(n) == "call" and n[1] in self.fp.helpers.accesses]
        order = post_order(statements)
        once = {id(n) for n in unconditional(statements)}
        # a branch back to the loop's head (but its last statement, the back edge) skips what follows it
        label = loop[1] if len(loop) > 1 and isinstance(loop[1], str) else None
        back = [order[id(n)] for n in walk(statements[:-1] if statements else [])
                if head(n) in ("br", "br_if", "br_table") and label in n[1:]]
        back += [order[id(n)] for n in walk(statements[-1:]) if head(n) == "br_table" and label in n[1:]]
        counted = [n for n in sites if id(n) in once and order[id(n)] < min(back, default=len(order))]
        # the others (under an if, or after a branch back to the head) count per access
        if len(counted) < 2:
            return None
        return Counting(loop, self.fp.local("i64"), labels, {id(n): (self.site(n)[3], 1) for n in counted}, order)

    # -------------------------------------------------------------- sites
    def site(self, call: list[Node]) -> tuple[Access, str, str, str]:
        """One access site's kind, handle, and the limit and count locals of its group."""
        access = self.fp.helpers.accesses[str(call[1])]
        handle = str(call[2][1])  # type: ignore[index]
        limit, count = self.groups[(handle, access.direction, access.width.name)]
        return access, handle, limit, count

