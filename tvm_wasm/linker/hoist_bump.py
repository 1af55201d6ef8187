"""The code of an exact loop's Bump allocations kept in registers (:class:`BumpCode`).

An exact hoisted loop keeps each ``alloc`` region's bump pointer, end and
handle high half in locals (:class:`.hoist_plan.Arena`): one compare in
registers per allocation, the allocation counts flushed with the access
counts, the bump pointer stored to the slot at each allocation or, in a
loop that cannot trap but at a flush, at each flush. Here is the code of
that: the entry's loads and checks, the allocation, the flush. What the plan
proved (the arenas, the accesses bounded by their allocation) is
:mod:`.hoist_plan`'s.
"""

from __future__ import annotations

import copy
import itertools

from ..runtime import layout as L
from .hoist_plan import Arena, LoopPlan
from .induction import MASK32, const_of
from .sexpr import Node, render


class BumpCode:
    """The Bump allocation code of one exact loop's plan."""

    def __init__(self, plan: LoopPlan) -> None:
        self.plan = plan

    def hoist(self, name: str) -> str:
        """The Binaryen name of the runtime's hoist helper ``name``."""
        return self.plan.fp.helpers.hoist[name]

    def allocation_checks(self) -> list[Node]:
        """At entry, for each access :meth:`LoopPlan.allocation_offsets` proved: the arena is a live writable
        Bump region of at least ``s`` bytes, and the access's limit covers the whole arena (``end - width <
        limit``)."""
        checks: list[Node] = []
        for arena, size, site in self.plan.in_allocation.values():
            access = self.plan.fp.helpers.accesses[str(site[1])]
            limit, _ = self.plan.groups[(str(site[2][1]), access.direction, access.width.name)]  # type: ignore[index]
            width = ["i32.const", str(access.width.width)]
            checks += [["i32.ge_u", ["local.get", arena.end], ["i32.const", str(size)]],
                       ["i32.lt_u", ["i32.sub", ["local.get", arena.end], width], ["local.get", limit]]]
        return checks

    def arena_entry(self) -> list[Node]:
        """At the fast copy's entry: each arena's bump pointer, end (0 unless a live writable Bump region),
        handle high half, and its allocation count since the last flush."""
        code: list[Node] = []
        for arena in self.plan.arenas.values():
            code += [["local.set", arena.slot, ["i32.shl", copy.deepcopy(arena.region), ["i32.const", str(L.SLOT_SHIFT)]]],
                     ["local.set", arena.used, ["call", self.hoist("bump_used"), copy.deepcopy(arena.region)]],
                     ["local.set", arena.end, ["call", self.hoist("bump_end"), copy.deepcopy(arena.region)]],
                     ["local.set", arena.start, ["local.get", arena.used]],
                     ["local.set", arena.count, ["i64.const", "0"]]]
        return code

    def arena_high(self) -> list[Node]:
        """Each arena's handle high half, once the entry checks passed (its region is live)."""
        return [["local.set", a.high, ["call", self.hoist("handle_high"), copy.deepcopy(a.region)]]
                for a in self.plan.arenas.values()]

    def arena_checks(self) -> list[Node]:
        """Distinct region operands must name distinct regions (each arena's bump pointer is its own); an arena
        allocated with a constant size ``s`` ends at most at ``2**32 - 1 - s`` (``used + s`` cannot wrap)."""
        regions = [a.region for a in self.plan.arenas.values()]
        checks: list[Node] = [["i32.ne", copy.deepcopy(a), copy.deepcopy(b)] for a, b in itertools.combinations(regions, 2)]
        for call in self.plan.allocs:
            arena, constant = self.plan.arenas[render(call[2])], const_of(call[3])
            if constant is not None and constant > 0:
                checks.append(["i32.le_u", ["local.get", arena.end], ["i32.const", str(MASK32 - constant)]])
        return checks

    def arena_flush(self) -> list[Node]:
        """Add each arena's allocations and bytes since the last flush to its slot (its bump pointer is stored
        by every allocation)."""
        code: list[Node] = []
        for arena in self.plan.arenas.values():
            allocated = ["i64.extend_i32_u", ["i32.sub", ["local.get", arena.used], ["local.get", arena.start]]]
            count: Node = ["local.get", arena.count] if arena.size is None else \
                ["i64.div_u", copy.deepcopy(allocated), ["i64.const", str(arena.size)]]
            if self.plan.deferred:
                code.append(self.bump_store(arena))
            code += [["call", self.hoist("alloc_flush"), ["local.get", arena.slot], count, allocated],
                     *([["local.set", arena.count, ["i64.const", "0"]]] if arena.size is None else []),
                     ["local.set", arena.start, ["local.get", arena.used]]]
        return code

    def bump_store(self, arena: Arena) -> Node:
        """The arena's bump pointer to its slot, where the loop defers it (:attr:`LoopPlan.deferred`): only for a live
        writable Bump region (``end`` non-zero; a Slab region's slot keeps its own value)."""
        return ["if", ["i32.ne", ["local.get", arena.end], ["i32.const", "0"]],
                ["then", ["call", self.hoist("bump_set"), ["local.get", arena.slot], ["local.get", arena.used]]]]

    def bump_alloc(self, call: list[Node]) -> Node:
        """``alloc`` in an exact loop's fast copy: ``1 <= size <= end - used`` (one compare in registers)
        takes the bump pointer, stores it to the slot, counts, and ORs the offset into the arena's handle
        high half; anything else (exhausted, size 0, a Slab region) is the in-wasm ABI allocation, whose
        answer and error are the model's. That path cannot move the bump pointer: a Bump arena that fails
        the compare has no room for ``size`` bytes (or allocates 0), a Slab arena's locals are 0.

        A constant size ``s`` compares ``used + s <= end`` (the new bump pointer is the sum anyway; it
        cannot wrap: ``used <= end <= 2**32 - 1 - s`` is checked at entry, :meth:`arena_checks`). In a
        :attr:`LoopPlan.deferred` loop the slot's bump pointer is written at each flush and before the ABI's path
        (which reads it), not by each allocation."""
        arena = self.plan.arenas[render(call[2])]
        size, offset = self.plan.fp.local("i32"), self.plan.fp.local("i32")
        constant = const_of(call[3])
        if constant is not None and constant > 0:
            fits: Node = ["i32.le_u", ["i32.add", ["local.get", arena.used], ["i32.const", str(constant)]],
                          ["local.get", arena.end]]
        else:
            fits = ["i32.gt_u", ["i32.sub", ["local.get", arena.end], ["local.get", arena.used]],
                    ["i32.sub", ["local.get", size], ["i32.const", "1"]]]
        stored = [] if self.plan.deferred else \
            [["call", self.hoist("bump_set"), ["local.get", arena.slot], ["local.get", arena.used]]]
        return ["block", ["result", "i64"], ["local.set", size, call[3]],
                ["if", ["result", "i64"], fits,
                 ["then", ["local.set", offset, ["local.get", arena.used]],
                  ["local.set", arena.used, ["i32.add", ["local.get", offset], ["local.get", size]]],
                  *stored,
                  *([] if arena.size is not None else  # else counted at the flush: (used - start) / size
                    [["local.set", arena.count, ["i64.add", ["local.get", arena.count], ["i64.const", "1"]]]]),
                  ["i64.or", ["local.get", arena.high], ["i64.extend_i32_u", ["local.get", offset]]]],
                 ["else", *([self.bump_store(arena)] if self.plan.deferred else []),
                  ["call", self.hoist("alloc_in_wasm"), call[2], ["local.get", size]]]]]

