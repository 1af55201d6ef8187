"""The hoisting pass's code: a planned loop's copies, its accesses, counts and flushes (:class:`LoopCode`).

From a :class:`.hoist_plan.LoopPlan`, the Binaryen-text s-expressions that
replace the loop: per pool, the entry (resolve every handle into a base and
limits, the entry checks), the fast copy (and, for stored regions without
dirty tracking, the copy whose stores mark nothing; for an inner loop with
ranges of its own, the copy without their compares), the flushes of the
counts at every way out, and the loop as it was for anything else. The
allocations' code is :mod:`.hoist_bump`'s.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator

from .hoist_bump import BumpCode
from .hoist_plan import OWN_MARKS, Counting, LoopPlan, LoopRanges
from .induction import MASK32, Induction, TripCount, body_of, trip_code, within
from .loop_facts import offset_plus_constant
from .loop_pass import WIDTHS, Access
from .sexpr import Node, head, walk


class LoopCode:
    """The code of one planned loop, built once by :meth:`emit`.

    An exact loop's fast copy is entered only when every handle is fast at entry (:meth:`entry_checks`);
    an access failing its compare there can only be out of bounds: it calls the ABI (which raises the
    typed error) and ends in ``unreachable``, so no slow path rejoins the loop. Other loops keep the slow
    paths that resolve again and rejoin (:meth:`checked_access`).
    """

    def __init__(self, plan: LoopPlan) -> None:
        self.plan, self.fp = plan, plan.fp
        self.bump = BumpCode(plan)
        self.untracked = False  # emitting the copy for stored regions without dirty tracking (no marks)

    def hoist(self, name: str) -> str:
        """The Binaryen name of the runtime's hoist helper ``name``."""
        return self.fp.helpers.hoist[name]

    # -------------------------------------------------------------- loop and its copies
    def emit(self) -> Node:
        """What replaces the loop: per pool, the entry and the fast copies (exact) or the rejoining copy; else
        the loop as it was."""
        self.fp.report.loops += 1
        if not self.plan.exact:
            return self.emit_rejoining()
        done, slow = self.fp.local_label(), self.fp.local_label()
        ranges, range_checks, ranged, t = self.range_checks(self.plan.ranges)
        free = frozenset(self.plan.ranges.found) | frozenset(self.plan.in_allocation) | frozenset(self.plan.covered)
        checks = [*self.entry_checks(), *range_checks, *self.bump.allocation_checks()]
        versions: list[Node] = []
        if self.plan.dirty:
            self.fp.report.untracked_copies += 1
        for p in range(self.fp.pools):
            body = self.fast_body(p, free, ranged, t)
            if self.plan.dirty:  # no stored region tracks dirty pages: a copy whose stores mark nothing
                self.untracked = True
                with self.unreported():
                    plain = self.fast_body(p, free, ranged, t)
                self.untracked = False
                untracked = _all([["i32.eqz", ["local.get", table]] for table in self.plan.dirty.values()])
                body = [["if", untracked, ["then", *plain], ["else", *body]]]
            versions.append(["if", ["i32.eq", ["local.get", self.plan.pool_local], ["i32.const", str(p)]],
                             ["then", *self.resolve(p), *self.bump.arena_entry(), *ranges,
                              ["br_if", slow, ["i32.eqz", _all(checks)]], *self.bump.arena_high(),
                              *body, *self.flush(), ["br", done]]])
        # Anything else (a handle Cold, stale, in another pool or read-only for a store, an affine range
        # that may not fit) runs the loop as it was: every access inlined and checked on its own.
        return ["block", done,
                ["block", slow, *[["local.set", n, ["i64.const", "0"]] for _, n in self.plan.groups.values()],
                 ["local.set", self.plan.pool_local, ["call", self.hoist("pool"), ["local.get", self.plan.handles[0]]]],
                 *versions],
                copy.deepcopy(self.plan.loop)]

    def fast_body(self, p: int, free: frozenset[int], ranged: dict[int, Node], t: str) -> list[Node]:
        """The exact loop's fast copy for pool ``p``, with a copy whose ranged accesses are compared for
        when a range may not fit.

        With :attr:`untracked`, the copy for stored regions whose dirty-page map is 0 at entry: stores
        mark nothing (the map cannot change inside the fast copy: nothing in it enters the host)."""
        body = self.loop_copy(self.plan.loop, p, free, self.plan.ranges.trip, t, nested=True)
        if ranged:  # a range that may not fit: the fast copy with those accesses compared
            with self.unreported():
                checked = self.loop_copy(self.plan.loop, p, free - set(ranged), self.plan.ranges.trip, t, nested=True)
            body = [["if", _all(list(ranged.values())), ["then", *body], ["else", *checked]]]
        return body

    @contextlib.contextmanager
    def unreported(self) -> Iterator[None]:
        """Emit a second copy without counting it in the report again."""
        saved = dataclasses.replace(self.fp.report, functions=list(self.fp.report.functions))
        yield
        for f in dataclasses.fields(saved):
            setattr(self.fp.report, f.name, getattr(saved, f.name))

    def emit_rejoining(self) -> Node:
        versions: list[Node] = [[*self.resolve(p), self.rewrite(self.plan.loop, p)] for p in range(self.fp.pools)]
        # A first handle in no pool (Cold, stale, not reachable) runs the loop as it was: every access
        # inlined and checked on its own, so a loop entered before its region is faulted in is never
        # slower than without the pass.
        dispatch: list[Node] = [copy.deepcopy(self.plan.loop)]
        for p in reversed(range(self.fp.pools)):
            dispatch = [["if", ["i32.eq", ["local.get", self.plan.pool_local], ["i32.const", str(p)]],
                         ["then", *versions[p]], ["else", *dispatch]]]  # type: ignore[list-item]
        first = self.plan.handles[0]
        return ["block", *[["local.set", n, ["i64.const", "0"]] for _, n in self.plan.groups.values()],
                ["local.set", self.plan.pool_local, ["call", self.hoist("pool"), ["local.get", first]]],
                *dispatch, *self.flush()]

    def rewrite(self, node: Node, pool: int, free: frozenset[int] = frozenset(), uncounted: frozenset[int] = frozenset(),
                nested: bool = True, counting: Counting | None = None) -> Node:
        """A new tree (lists are never shared with ``node``): the loop's copy for ``pool``; accesses in
        ``free`` (ids of calls) had their range checked before their loop, those in ``uncounted`` are
        counted when their loop ends."""
        if not isinstance(node, list):
            return node
        op = head(node)
        if op == "loop" and nested and node is not self.plan.loop and self.plan.exact:
            inner = self.nested_ranges(node, pool, free)
            if inner is not None:
                return inner
        children = [self.rewrite(child, pool, free, uncounted, nested, counting) for child in node]
        if counting is not None and counting.derived is None and node is counting.loop:  # the count goes up first
            at = len(node) - len(body_of(node))
            children[at:at] = [["local.set", counting.it, ["i64.add", ["local.get", counting.it], ["i64.const", "1"]]]]
        leaves = counting is not None and op in ("br", "br_if", "return") and \
            (op == "return" or str(node[1]) not in counting.labels)
        if op == "call" and node[1] in self.fp.helpers.accesses:
            if not self.plan.exact:
                return self.checked_access(children, pool, rejoin=True)
            if id(node) in free:
                return self.unchecked_access(children, pool, counted=id(node) not in uncounted,
                                             mark=self.plan.marks.get(id(node), OWN_MARKS))
            return self.checked_access(children, pool, rejoin=False, counted=id(node) not in uncounted,
                                       before_flush=self.adjust(counting, node))
        if leaves:
            adjust = self.adjust(counting, node)
            if op == "br_if":
                outer = str(node[1]) not in self.plan.inside
                return ["if", children[2], ["then", *adjust, *(self.flush() if outer else []), ["br", children[1]]]]
            if op == "br" and str(node[1]) in self.plan.inside:
                return ["block", *adjust, children]
        if op == "unreachable":  # a trap of user code (a failed alloc, say): the counts so far are the model's
            return ["block", *self.adjust(counting, node), *self.flush(), children]
        if op == "call" and node[1] == self.fp.helpers.alloc:
            if self.plan.exact:
                return self.bump.bump_alloc(children)
            return self.alloc(children, pool)
        if op == "br" and str(node[1]) not in self.plan.inside:
            return ["block", *(self.adjust(counting, node) if leaves else []), *self.flush(), children]
        if op == "br_if" and str(node[1]) not in self.plan.inside:
            return ["if", children[2], ["then", *self.flush(), ["br", children[1]]]]
        if op == "return":
            adjust = self.adjust(counting, node)
            if len(children) == 1:
                return ["block", *adjust, *self.flush(), children]
            assert self.plan.return_local is not None
            return ["block", ["local.set", self.plan.return_local, children[1]], *adjust, *self.flush(),
                    ["return", ["local.get", self.plan.return_local]]]
        return children

    def nested_ranges(self, loop: list[Node], pool: int, free: frozenset[int]) -> Node | None:
        """An innermost loop inside the fast copy with ranges of its own to check: two copies, the one
        without those compares entered when the checks pass at its entry; without ranges, one copy
        if it is counted per iteration."""
        if any(head(n) == "loop" for n in walk(loop[1:])) or any(head(n) == "result" for n in loop[1:3]):
            return None
        ranges = self.plan.ranges_of(loop, free)
        if not ranges.found:
            if ranges.trip is not None and self.plan.counted_by_difference(loop, ranges.trip, free) is not None:
                t = self.fp.local("i64")
                count, ok = trip_code(ranges.trip, t)  # T is exact only when ok: else the copy counted as it was
                with self.unreported():
                    plain = self.loop_copy(loop, pool, free, None, t, nested=False)
                return ["block", *count, ["if", ok, ["then", *self.loop_copy(loop, pool, free, ranges.trip, t, nested=False)],
                                          ["else", *plain]]]
            if self.plan.iteration_counting(loop) is None:
                return None
            if ranges.trip is not None:  # iterations derived from the induction variable while T * |s| < 2**32
                t = self.fp.local("i64")
                count, ok = trip_code(ranges.trip, t)
                fits = ["i64.le_u", ["local.get", t], ["i64.const", str(MASK32 // abs(ranges.trip.iv.step))]]
                with self.unreported():
                    plain = self.loop_copy(loop, pool, free, None, "", nested=False)
                derived = self.loop_copy(loop, pool, free, None, "", nested=False, derive=ranges.trip.iv)
                return ["block", *count, ["if", ["i32.and", ok, fits], ["then", *derived], ["else", *plain]]]
            return ["block", *self.loop_copy(loop, pool, free, None, "", nested=False)]
        if pool == 0:  # counted once, not per pool copy
            self.fp.report.unchecked += len(ranges.found)
        code, checks, t = self.range_code(ranges)
        inner_free = free | frozenset(ranges.found)
        with self.unreported():
            checked = self.loop_copy(loop, pool, free, None, t, nested=False)
        return ["block", *code, ["if", _all(checks),
                                 ["then", *self.loop_copy(loop, pool, inner_free, ranges.trip, t, nested=False)],
                                 ["else", *checked]]]

    def alloc(self, call: list[Node], pool: int) -> Node:
        """``alloc`` inside a rejoining loop: a plain call for Bump and Slab regions, else a slow path."""
        region, size, result = self.fp.local("i32"), self.fp.local("i32"), self.fp.local("i64")
        args = [["local.get", region], ["local.get", size]]
        return ["block", ["result", "i64"], ["local.set", region, call[2]], ["local.set", size, call[3]],
                ["if", ["result", "i64"], ["call", self.hoist("alloc_stays"), ["local.get", region]],
                 ["then", ["call", self.hoist("alloc_in_wasm"), *args]],
                 ["else", *self.flush(), ["local.set", result, ["call", self.hoist("slow_alloc"), *args]],
                  *self.resolve(pool), ["local.get", result]]]]

    # -------------------------------------------------------------- accesses
    def parts(self, call: list[Node]) -> tuple[Access, str, str, str, str]:
        """:meth:`LoopPlan.site`, and a fresh local for the offset."""
        return (*self.plan.site(call), self.fp.local("i32"))

    def unchecked_access(self, call: list[Node], pool: int, counted: bool = True,
                         mark: tuple[int, int] | None = OWN_MARKS) -> Node:
        """An access whose range was checked before the loop: count it (unless its loop counts it at
        exit), then the bare load or store; a store marks its own pages, or its run's (``(low, high)``
        bytes from ``p``, :meth:`LoopPlan.shared_marks`), or none (None: an earlier store of its run did)."""
        access, handle, _, count, offset = self.parts(call)
        address = ["i32.add", ["local.get", self.plan.base[handle]], ["local.get", offset]]
        count_it = [["local.set", count, ["i64.add", ["local.get", count], ["i64.const", "1"]]]] if counted else []
        fast = self.hoist(f"{access.direction}_{access.width.name}_p{pool}")
        if access.direction == "load":
            return ["block", ["result", access.width.value_type], ["local.set", offset, call[3]], *count_it,
                    ["call", fast, address]]
        value = self.fp.local(access.width.value_type)
        if mark is OWN_MARKS or self.untracked:
            stored: list[Node] = [self.store(fast, address, value, handle, offset)]
        else:
            stored = [["call", self.hoist(f"store_{access.width.name}_p{pool}_unmarked"), address, ["local.get", value]]]
            if mark is not None:
                _, c = offset_plus_constant(call[3])
                at = ["i32.add", ["i32.wrap_i64", ["local.get", handle]], ["local.get", offset]]
                first, last = mark[0] - c, mark[1] - 1 - c
                stored.insert(0, ["call", self.hoist("mark_span"), ["local.get", self.plan.dirty[handle]],
                                  ["i32.add", copy.deepcopy(at), ["i32.const", str(first)]],
                                  ["i32.add", at, ["i32.const", str(last)]]])
        return ["block", ["local.set", offset, call[3]], ["local.set", value, call[4]], *count_it, *stored]

    def store(self, fast: str, address: Node, value: str, handle: str, offset: str) -> Node:
        """The bare store, told the handle's dirty-page map and the store's region offset (handle offset +
        relative offset) so that it marks the page(s) it writes; in the :attr:`untracked` copy, unmarked."""
        if self.untracked:
            unmarked = next(k for k, v in self.fp.helpers.hoist.items() if v == fast) + "_unmarked"
            return ["call", self.hoist(unmarked), address, ["local.get", value]]
        at = ["i32.add", ["i32.wrap_i64", ["local.get", handle]], ["local.get", offset]]
        return ["call", fast, address, ["local.get", value], ["local.get", self.plan.dirty[handle]], at]

    def checked_access(self, call: list[Node], pool: int, rejoin: bool, counted: bool = True,
                       before_flush: list[Node] | None = None) -> Node:
        """One compare against the hoisted limit, then the bare access. Failing it: with ``rejoin``, flush,
        call the ABI (errors, fault-in), resolve every handle again and go on; without (an exact loop,
        where it can only be out of bounds), flush, let the ABI raise the typed error, ``unreachable``."""
        access, handle, limit, count, offset = self.parts(call)
        value = self.fp.local(access.width.value_type)
        address = ["i32.add", ["local.get", self.plan.base[handle]], ["local.get", offset]]
        count_it = [["local.set", count, ["i64.add", ["local.get", count], ["i64.const", "1"]]]] if counted else []
        flush = [*(before_flush or []), *self.flush()]
        fast = self.hoist(f"{access.direction}_{access.width.name}_p{pool}")
        slow_args = [["local.get", handle], ["local.get", offset]]
        func = self.hoist(f"slow_{access.direction}_{access.width.name}")
        if access.direction == "load":
            slow: list[Node] = [["local.set", value, ["call", func, *slow_args]], *self.resolve(pool),
                                ["local.get", value]] if rejoin else \
                [["drop", ["call", func, *slow_args]], ["unreachable"]]
            return ["if", ["result", access.width.value_type],
                    ["i32.lt_u", ["local.tee", offset, call[3]], ["local.get", limit]],
                    ["then", *count_it, ["call", fast, address]],
                    ["else", *flush, *slow]]
        slow = [["call", func, *slow_args, ["local.get", value]], *(self.resolve(pool) if rejoin else [["unreachable"]])]
        return ["block", ["local.set", offset, call[3]], ["local.set", value, call[4]],
                ["if", ["i32.lt_u", ["local.get", offset], ["local.get", limit]],
                 ["then", *count_it, self.store(fast, address, value, handle, offset)],
                 ["else", *flush, *slow]]]

    # -------------------------------------------------------------- resolving and flushing
    def resolve(self, pool: int) -> list[Node]:
        """Each handle's base, dirty-page map and limits for the copy of ``pool`` (0: not fast there)."""
        plan = self.plan
        code: list[Node] = [["local.set", plan.base[h], ["call", self.hoist("base"), ["local.get", h]]] for h in plan.handles]
        code += [["local.set", table, ["call", self.hoist("dirty"), ["local.get", h]]] for h, table in plan.dirty.items()]
        for (h, direction, width), (limit, _) in plan.groups.items():
            code.append(["local.set", limit, ["call", self.hoist(f"limit_{direction}"), ["local.get", h],
                                              ["i32.const", str(WIDTHS[width].width)], ["i32.const", str(pool)]]])
        return code

    def flush(self) -> list[Node]:
        """The counts since the last flush to each handle's slot (in the order of their last access), then
        the arenas' (:meth:`.hoist_bump.BumpCode.arena_flush`)."""
        code: list[Node] = []
        for h in self.plan.flush_order:
            read: list[Node] = []
            written: list[Node] = []
            count: list[Node] = []
            for (gh, direction, width), (_, n) in self.plan.groups.items():
                if gh != h:
                    continue
                bytes_ = ["i64.mul", ["local.get", n], ["i64.const", str(WIDTHS[width].width)]]
                (read if direction == "load" else written).append(bytes_)
                count.append(["local.get", n])
            code.append(["call", self.hoist("flush"), ["local.get", h], _sum(read), _sum(written), _sum(count)])
        code += [["local.set", n, ["i64.const", "0"]] for _, n in self.plan.groups.values()]
        return code + self.bump.arena_flush()

    def entry_checks(self) -> list[Node]:
        """i32 conditions, at loop entry after :meth:`resolve`, under which the fast copy cannot leave the
        fast path except by an access out of bounds: every handle fast, every ``alloc`` region staying in
        wasm, every hoisted range inside its limit."""
        checks: list[Node] = [["i32.ne", ["local.get", limit], ["i32.const", "0"]]
                              for limit, _ in self.plan.groups.values()]
        checks += [["call", self.hoist("alloc_stays"), copy.deepcopy(n[2])] for n in self.plan.allocs]
        return checks + self.bump.arena_checks()

    # -------------------------------------------------------------- range checks hoisted
    def range_code(self, ranges: LoopRanges) -> tuple[list[Node], list[Node], str]:
        """Code computing the trip count (into the returned i64 local) at loop entry, and one i32
        condition per hoisted range."""
        code, checks, ranged, t = self.range_checks(ranges)
        return code, [*checks, *ranged.values()], t

    def range_checks(self, ranges: LoopRanges) -> tuple[list[Node], list[Node], dict[int, Node], str]:
        """:meth:`range_code` with the checks of offsets bounded by a value range (:mod:`.ranges`) apart,
        by site: those may fail without any access failing (a masked index into a smaller table that
        the loop never reaches), so they choose between copies instead of sending the loop to the slow path."""
        t = self.fp.local("i64")
        if not ranges.found:
            return [], [], {}, t
        code: list[Node] = []
        checks: list[Node] = []
        ranged: dict[int, Node] = {}
        if ranges.trip is not None:
            count, ok = trip_code(ranges.trip, t)
            code += count
            checks.append(ok)
        for key, (offset, after) in ranges.found.items():
            site = ranges.sites[key]
            access = self.fp.helpers.accesses[str(site[1])]
            limit, _ = self.plan.groups[(str(site[2][1]), access.direction, access.width.name)]  # type: ignore[index]
            check = within(offset, ranges.ivs, after, t, limit)
            if offset.ranged:
                ranged[key] = check
            else:
                checks.append(check)
        return code, checks, ranged, t

    # -------------------------------------------------------------- counting
    def difference_copy(self, loop: list[Node], pool: int, free: frozenset[int], derived: list[Node], t: str,
                        nested: bool) -> list[Node]:
        """The copy of :meth:`LoopPlan.counted_by_difference`: the other sites' count locals summed before the
        loop, and after it the derived site's count grows by ``T`` minus what they gained."""
        _, _, _, count = self.plan.site(derived)
        others = sorted({self.plan.site(n)[3] for n in walk(loop) if head(n) == "call" and
                         n[1] in self.fp.helpers.accesses and n is not derived})
        snapshot = self.fp.local("i64")
        gained = ["i64.sub", _sum([["local.get", c] for c in others]), ["local.get", snapshot]]
        return [["local.set", snapshot, _sum([["local.get", c] for c in others])],
                self.rewrite(loop, pool, free, frozenset({id(derived)}), nested=nested),
                ["local.set", count, ["i64.add", ["local.get", count], ["i64.sub", ["local.get", t], gained]]]]

    def adjust(self, counting: Counting | None, point: list[Node]) -> list[Node]:
        """At ``point`` (a branch out of the counted loop, or a failing access): add what each site ran."""
        if counting is None:
            return []
        per_local: dict[str, tuple[int, int]] = {}  # count local -> (sites, sites not yet run this iteration)
        at = counting.order[id(point)]
        for key, (count, k) in counting.sites.items():
            sites, pending = per_local.get(count, (0, 0))
            per_local[count] = (sites + k, pending + (k if counting.order[key] >= at else 0))
        return [["local.set", count, ["i64.add", ["local.get", count],
                                      ["i64.sub", ["i64.mul", counting.begun(at), ["i64.const", str(sites)]],
                                       ["i64.const", str(pending)]]]]
                for count, (sites, pending) in per_local.items()]

    def loop_copy(self, loop: list[Node], pool: int, free: frozenset[int], trip: TripCount | None, t: str,
                  nested: bool, derive: Induction | None = None) -> list[Node]:
        """The fast copy of ``loop`` for ``pool`` with the accesses in ``free`` unchecked, counted at exit
        (:meth:`LoopPlan.counted_at_exit`), per iteration (:meth:`LoopPlan.iteration_counting`) or per
        access."""
        counted = self.plan.counted_at_exit(loop, trip, free)
        if counted:
            if pool == 0:
                self.fp.report.counted_at_exit += len(counted)
            return [self.rewrite(loop, pool, free, frozenset(counted), nested=nested), *self.add_counts(counted, t)]
        derived = self.plan.counted_by_difference(loop, trip, free)
        if derived is not None:
            if pool == 0:
                self.fp.report.counted_by_difference += 1
            return self.difference_copy(loop, pool, free, derived, t, nested)
        counting = self.plan.iteration_counting(loop)
        if counting is None:
            return [self.rewrite(loop, pool, free, nested=nested)]
        if pool == 0:
            self.fp.report.counted_per_iteration += len(counting.sites)
        if derive is not None:  # iterations from the induction variable: no add per iteration
            if pool == 0:
                self.fp.report.counted_by_induction += len(counting.sites)
            counting.derived = (derive, self.fp.local("i32"))
            start: Node = ["local.set", counting.derived[1], ["local.get", derive.local]]
        else:
            start = ["local.set", counting.it, ["i64.const", "0"]]
        return [start, self.rewrite(loop, pool, free, frozenset(counting.sites), nested=False, counting=counting),
                *self.add_counts(counting.sites, counting.begun(None))]

    def add_counts(self, counted: dict[int, tuple[str, int]], t: str | Node) -> list[Node]:
        """After a loop counted at exit: each site's count local grows by the trip count ``t`` (a local, or
        an i64 expression)."""
        iterations: Node = ["local.get", t] if isinstance(t, str) else t
        per_local: dict[str, int] = {}
        for count, k in counted.values():
            per_local[count] = per_local.get(count, 0) + k
        return [["local.set", count, ["i64.add", ["local.get", count], ["i64.mul", copy.deepcopy(iterations),
                                                                            ["i64.const", str(k)]]]]
                for count, k in per_local.items()]


def _fold(op: str, terms: list[Node], empty: Node) -> Node:
    """``terms`` joined by the binary ``op`` (``empty`` for none)."""
    if not terms:
        return empty
    total = terms[0]
    for term in terms[1:]:
        total = [op, total, term]
    return total


def _all(conditions: list[Node]) -> Node:
    """i32: every condition holds (1 for none)."""
    return _fold("i32.and", conditions, ["i32.const", "1"])


def _sum(terms: list[Node]) -> Node:
    """i64: the terms' sum (0 for none)."""
    return _fold("i64.add", terms, ["i64.const", "0"])
