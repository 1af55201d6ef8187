"""Resolve once, access many: the linker's loop pass over the merged module, before inlining.

Neither Binaryen (its effect analysis does not tell memories apart, so any
store in a loop pins every load) nor Cranelift (no loop-invariant load motion,
no bounds-check elimination) moves a typed access's directory reads out of a
loop. This pass does, at the wasm level, on Binaryen's folded text of every
function that calls a typed load or store inside a loop:

- A loop is *hoisted* when everything it calls is a typed load or store
  (``load_T``/``store_T`` of the ABI) whose handle operand is a local the loop
  never writes, its branches out of the loop carry no value, and it has no
  result. Nothing else in such a loop can change the directory: the only way
  in is an access's slow path, after which the pass resolves again.
- Before the loop, each handle is resolved once into a base address and one
  limit per (direction, width) (see :mod:`tvm_wasm.runtime.hoisted`); the
  loop is versioned per pool on its first handle's pool, so every fast access
  names its pool statically. An access becomes ``offset <u limit`` then a
  bare load or store at ``base + offset``.
- *Exact* loops (every ``alloc`` names a region the loop cannot change, the
  usual case) enter their fast copy only when every handle is fast at entry
  (state word exact, region in the copy's pool, first access fits) and every
  ``alloc`` region allocates in wasm; anything else runs the loop as it was.
  Inside the fast copy nothing can change the directory, so a failed compare
  can only be an access out of bounds: flush, call the ABI function (which
  raises the typed error) and ``unreachable``. No slow path rejoins the loop,
  so the compiler keeps no value alive across a call in it.
- Range checks hoisted (:mod:`.induction`): an access whose offset is affine
  in an induction variable of a loop with a known trip count (or invariant)
  has no compare at all; its whole range is checked once at the loop's entry
  (for the outermost loop, together with the entry checks; for an innermost
  loop inside the fast copy, choosing between a copy without and a copy with
  those compares). When every access of such a loop had its range checked,
  each runs once per iteration and the back edge is the only way out, the
  loop's counts are ``T`` per access, added once at its end.
- Other loops (an ``alloc`` whose region may change per iteration) keep the
  slow paths that call the ABI function, with the loop's counts flushed
  before and every handle resolved again after.
- The loop's counts (accesses per handle, direction and width) live in
  locals and are flushed when the loop is left: after it, before each
  ``br``/``br_if`` out of it, each ``return`` and each ``unreachable`` inside
  it. Any other trap raised by user code inside a hoisted loop (not by the
  runtime: a division by zero, say) loses the counts since the last flush.
- ``alloc`` in an exact loop keeps a Bump arena's bump pointer, end and
  handle high half in locals: one compare in registers per allocation, the
  bump pointer stored to the slot (so the region's layout is exact even
  after such a trap), the allocation counts flushed with the access counts;
  anything else (an arena out of room, a Slab region) takes the in-wasm ABI
  allocation (:meth:`LoopPlan.bump_alloc`). A constant size ``s`` compares
  ``used + s <= end`` (no wrap: ``end <= 2**32 - 1 - s`` at entry). In a loop
  where nothing can trap but at a flush (:func:`trap_free`: no division,
  conversion or load of the user's memory), the bump pointer reaches the
  slot at each flush and before the ABI's allocation, which reads it, not
  at each allocation.
- An exact loop that stores has a second fast copy for stored regions whose
  dirty-page map is 0 at entry: its stores mark nothing (no test per store;
  nothing in the fast copy can start tracking).
- An inner loop counted per iteration whose back edge has a trip count
  derives its iterations from its induction variable (``|c - c0| / |s|``,
  plus one before the update) instead of adding one per iteration, in a copy
  entered while ``T * |s| < 2**32``. A loop counted per iteration may hold
  accesses under an ``if`` (a list walk's conditional copy): they count one
  by one.

Loops that do not qualify keep their calls, which ``wasm-opt`` inlines as
before. The pass emits calls to the runtime's hoist helpers; ``wasm-opt``
inlines those too.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..abi.table import TYPED_ACCESS, TypedWidth
from ..runtime.conventions import COLD_PREFIX
from ..runtime import layout as L
from ..runtime.hoisted import HOIST_PREFIX, OUT_OF_LINE
from .induction import (
    CONDITIONAL, MASK32, Affine, Induction, TripCount, affine, body_of, const_of, inductions, one_site_per_iteration,
    post_order, reads_after_update, trip_code, trip_count, unconditional, within,
)
from .ranges import Interval, RangeFacts
from .sexpr import Node, head, parse, render, top_level, walk

_EXPORT = re.compile(r'^ \(export "((?:[^"\\]|\\.)*)" \(func (\$\S+)\)\)$')
_WIDTHS = {t.name: t for t in TYPED_ACCESS}
_DECLS = {"type", "param", "result", "local", "export", "import"}
_SCOPES = {"block", "loop", "try", "try_table"}
_UNSUPPORTED = {"call_indirect", "call_ref", "return_call", "return_call_indirect", "return_call_ref",
                "br_on_null", "br_on_non_null", "br_on_cast", "br_on_cast_fail", "throw", "rethrow",
                "throw_ref", "delegate", "try", "try_table"}
_SIMPLE = {"i32", "i64", "f32", "f64"}
#: Binaryen name prefix of the helpers kept out of line: the runtime's cold prefix, which the linker's
#: ``wasm-opt --no-inline=tvm_cold_*`` never inlines.
OUT_OF_LINE_PREFIX = f"{COLD_PREFIX}hoist_"


@dataclass
class HoistReport:
    """What the pass did: loops hoisted and accesses turned into the fast form, per function."""

    loops: int = 0
    accesses: int = 0
    unchecked: int = 0  # accesses whose range check moved before their loop
    counted_at_exit: int = 0  # of those, accesses counted once when their loop ends
    counted_per_iteration: int = 0  # accesses counted by their loop's iteration count (no add per access)
    counted_by_difference: int = 0  # accesses of one-per-iteration arms counted as T minus the other arms
    counted_by_induction: int = 0  # of those counted per iteration, accesses whose loop derives its iterations
    untracked_copies: int = 0  # exact loops with a copy for regions without dirty tracking (stores mark nothing)
    bump_deferred: int = 0  # loops whose allocations store their bump pointer at each flush, not each allocation
    in_allocation: int = 0  # accesses proved in bounds by the allocation their offset comes from
    marks_shared: int = 0  # stores whose dirty-page marks an earlier store of their run makes
    functions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Access:
    direction: str  # "load" | "store"
    width: TypedWidth


@dataclass
class Helpers:
    """Binaryen names of the ABI's typed accesses and of the hoist helpers in one merged module."""

    accesses: dict[str, Access]  # function name -> what it does
    hoist: dict[str, str]  # helper (without prefix) -> function name
    alloc: str | None = None  # the ABI's alloc

    @classmethod
    def of(cls, text: str, abi_prefix: str) -> Helpers:
        accesses: dict[str, Access] = {}
        hoist: dict[str, str] = {}
        alloc = None
        for line in text.splitlines():
            found = _EXPORT.match(line)
            if found is None:
                continue
            name, func = found.groups()
            if name.startswith(HOIST_PREFIX):
                hoist[name[len(HOIST_PREFIX):]] = func
            elif name.startswith(abi_prefix):
                op = name[len(abi_prefix):]
                if op == "alloc":
                    alloc = func
                direction, _, width = op.partition("_")
                if direction in ("load", "store") and width in _WIDTHS:
                    accesses[func] = Access(direction, _WIDTHS[width])
        return cls(accesses, hoist, alloc)


def hoist_text(text: str, abi_prefix: str, pools: int) -> tuple[str, HoistReport]:
    """Binaryen's printed module with qualifying loops hoisted and the hoist helpers' exports removed."""
    helpers = Helpers.of(text, abi_prefix)
    report = HoistReport()
    cold = [name for name in helpers.hoist if name.startswith(COLD_PREFIX)]  # the runtime's slow paths
    for name in (*OUT_OF_LINE, *cold):  # give the cold helpers names wasm-opt's --no-inline can match
        if name in helpers.hoist:
            old, new = helpers.hoist[name], f"${name}" if name in cold else f"${OUT_OF_LINE_PREFIX}{name}"
            text = re.sub(rf"\((func|call) {re.escape(old)}(?=[\s)])", rf"(\1 {new}", text)
            helpers.hoist[name] = new
    out: list[str] = []
    for chunk in top_level(text):
        if chunk.startswith(' (export "' + HOIST_PREFIX):
            continue
        if chunk.startswith(" (func ") and "(loop" in chunk and helpers.hoist and \
                any(f"(call {name}\n" in chunk for name in helpers.accesses):
            func = parse(chunk)[0]
            if FunctionPass(func, helpers, pools, report).run():
                chunk = " " + render(func) + "\n"
        out.append(chunk)
    return "".join(out), report


class FunctionPass:
    """Hoists the qualifying loops of one function (outermost first)."""

    def __init__(self, func: list[Node], helpers: Helpers, pools: int, report: HoistReport) -> None:
        self.func, self.helpers, self.pools, self.report = func, helpers, pools, report
        self.types: dict[str, str] = {}
        self.params: set[str] = set()
        self.results: list[str] = []
        self.new_locals: list[tuple[str, str]] = []
        taken = {a for n in walk(func) for a in n if isinstance(a, str) and a.startswith("$")}
        prefix = next(p for p in (f"$tvm_hoist{k}_" for k in itertools.count()) if not any(t.startswith(p) for t in taken))
        self.names = (f"{prefix}{k}" for k in itertools.count())
        self.body_at = 2
        for k, item in enumerate(func[2:], start=2):
            h = head(item)
            if h not in _DECLS:
                break
            self.body_at = k + 1
            assert isinstance(item, list)
            if h in ("param", "local") and len(item) == 3:
                self.types[str(item[1])] = str(item[2])
                if h == "param":
                    self.params.add(str(item[1]))
            elif h == "result":
                self.results += [str(t) for t in item[1:]]
        self.facts = RangeFacts.of_function(func[self.body_at:], self.params, self.types, self.loaded_range)

    def loaded_range(self, call: list[Node]) -> Interval | None:
        """A typed ``u8``/``u16`` load's value: below ``2**8`` / ``2**16`` (it zero-extends)."""
        access = self.helpers.accesses.get(str(call[1])) if len(call) > 1 else None
        if access is None or access.direction != "load" or access.width.name not in ("u8", "u16"):
            return None
        return Interval(0, (1 << (8 * access.width.width)) - 1)

    def local(self, ty: str) -> str:
        name = next(self.names)
        self.new_locals.append((name, ty))
        return name

    def local_label(self) -> str:
        return next(self.names)

    def run(self) -> bool:
        before = self.report.loops
        body = self.func[self.body_at:]
        self.func[self.body_at:] = [self.visit(node) for node in body]
        if self.report.loops == before:
            return False
        self.func[self.body_at:self.body_at] = [["local", n, t] for n, t in self.new_locals]
        self.report.functions.append(str(self.func[1]))
        return True

    def visit(self, node: Node) -> Node:
        if not isinstance(node, list):
            return node
        if head(node) == "loop":
            plan = self.plan(node)
            if plan is not None:
                return plan.emit()
        return [self.visit(child) for child in node]

    # -------------------------------------------------------------- analysis
    def plan(self, loop: list[Node]) -> LoopPlan | None:
        if any(head(item) == "result" for item in loop[1:3]):
            return None
        inside = {str(n[1]) for n in walk(loop) if head(n) in _SCOPES and len(n) > 1 and str(n[1]).startswith("$")}
        written = {str(n[1]) for n in walk(loop) if head(n) in ("local.set", "local.tee")}
        sites: list[list[Node]] = []
        for n in walk(loop):
            op = head(n)
            if op in _UNSUPPORTED:
                return None
            if op == "call":
                if n[1] == self.helpers.alloc and len(n) == 4:
                    continue  # a safepoint unless the region's allocator stays in wasm
                if n[1] not in self.helpers.accesses:
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
            elif op == "return" and len(n) > 1 and (len(self.results) != 1 or self.results[0] not in _SIMPLE):
                return None
        if not sites:
            return None
        return LoopPlan(self, loop, inside, sites, written)


#: ``mark`` of a store that marks its own pages (:meth:`LoopPlan.unchecked_access`).
OWN_MARKS: tuple[int, int] = (-1, -1)
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
    times. The counts are added there (:meth:`LoopPlan.adjust`).
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
    """An ``alloc`` region of an exact loop, its Bump allocation kept in locals (:meth:`LoopPlan.bump_alloc`)."""

    region: Node  # the calls' region operand (a constant, or a local or global the loop never writes)
    slot: str  # i32: the region's slot (region id << SLOT_SHIFT)
    used: str  # i32: the bump pointer
    end: str  # i32: the capacity (0: not a live writable Bump region, every allocation takes the ABI's path)
    start: str  # i32: the bump pointer at the last flush (bytes allocated since = used - start)
    high: str  # i64: the handle's region and generation
    count: str  # i64: allocations since the last flush (unless ``size`` derives them)
    size: int | None = None  # the one constant size (> 0) of every call: allocations = (used - start) / size


class LoopPlan:
    """One hoisted loop: its handles, their limits and counters, and the rewritten copies per pool.

    A loop whose ``alloc`` calls all name a region the loop cannot change
    (``exact``) runs its fast copy only when every handle is fast at entry
    (:meth:`entry_checks`); inside it nothing can change the directory, so an
    access that fails its compare can only be out of bounds: it calls the ABI
    (which raises the typed error) and ends in ``unreachable``, so no slow path
    rejoins the loop; accesses whose offset range was checked at entry
    (:mod:`.induction`) have no compare at all. Other loops keep the slow paths
    that resolve again and rejoin (:meth:`checked_access`).
    """

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
        self.untracked = False  # emitting the copy for stored regions without dirty tracking (no marks)
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

    def hoist(self, name: str) -> str:
        return self.fp.helpers.hoist[name]

    # -------------------------------------------------------------- bump allocation hoisted
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
        that and ``capacity - width < limit`` (checked once at entry, :meth:`allocation_checks`), the
        access cannot fail and needs no compare.
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

    def allocation_checks(self) -> list[Node]:
        """At entry, for each access :meth:`allocation_offsets` proved: the arena is a live writable Bump
        region of at least ``s`` bytes, and the access's limit covers the whole arena (``end - width <
        limit``)."""
        checks: list[Node] = []
        for arena, size, site in self.in_allocation.values():
            access = self.fp.helpers.accesses[str(site[1])]
            limit, _ = self.groups[(str(site[2][1]), access.direction, access.width.name)]  # type: ignore[index]
            width = ["i32.const", str(access.width.width)]
            checks += [["i32.ge_u", ["local.get", arena.end], ["i32.const", str(size)]],
                       ["i32.lt_u", ["i32.sub", ["local.get", arena.end], width], ["local.get", limit]]]
        return checks

    def arena_entry(self) -> list[Node]:
        """At the fast copy's entry: each arena's bump pointer, end (0 unless a live writable Bump region),
        handle high half, and its allocation count since the last flush."""
        code: list[Node] = []
        for arena in self.arenas.values():
            code += [["local.set", arena.slot, ["i32.shl", copy.deepcopy(arena.region), ["i32.const", str(L.SLOT_SHIFT)]]],
                     ["local.set", arena.used, ["call", self.hoist("bump_used"), copy.deepcopy(arena.region)]],
                     ["local.set", arena.end, ["call", self.hoist("bump_end"), copy.deepcopy(arena.region)]],
                     ["local.set", arena.start, ["local.get", arena.used]],
                     ["local.set", arena.count, ["i64.const", "0"]]]
        return code

    def arena_high(self) -> list[Node]:
        """Each arena's handle high half, once the entry checks passed (its region is live)."""
        return [["local.set", a.high, ["call", self.hoist("handle_high"), copy.deepcopy(a.region)]]
                for a in self.arenas.values()]

    def arena_checks(self) -> list[Node]:
        """Distinct region operands must name distinct regions (each arena's bump pointer is its own); an arena
        allocated with a constant size ``s`` ends at most at ``2**32 - 1 - s`` (``used + s`` cannot wrap)."""
        regions = [a.region for a in self.arenas.values()]
        checks: list[Node] = [["i32.ne", copy.deepcopy(a), copy.deepcopy(b)] for a, b in itertools.combinations(regions, 2)]
        for call in self.allocs:
            arena, constant = self.arenas[render(call[2])], const_of(call[3])
            if constant is not None and constant > 0:
                checks.append(["i32.le_u", ["local.get", arena.end], ["i32.const", str(MASK32 - constant)]])
        return checks

    def arena_flush(self) -> list[Node]:
        """Add each arena's allocations and bytes since the last flush to its slot (its bump pointer is stored
        by every allocation)."""
        code: list[Node] = []
        for arena in self.arenas.values():
            allocated = ["i64.extend_i32_u", ["i32.sub", ["local.get", arena.used], ["local.get", arena.start]]]
            count: Node = ["local.get", arena.count] if arena.size is None else \
                ["i64.div_u", copy.deepcopy(allocated), ["i64.const", str(arena.size)]]
            if self.deferred:
                code.append(self.bump_store(arena))
            code += [["call", self.hoist("alloc_flush"), ["local.get", arena.slot], count, allocated],
                     *([["local.set", arena.count, ["i64.const", "0"]]] if arena.size is None else []),
                     ["local.set", arena.start, ["local.get", arena.used]]]
        return code

    def bump_store(self, arena: Arena) -> Node:
        """The arena's bump pointer to its slot, where the loop defers it (:attr:`deferred`): only for a live
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
        :attr:`deferred` loop the slot's bump pointer is written at each flush and before the ABI's path
        (which reads it), not by each allocation."""
        arena = self.arenas[render(call[2])]
        size, offset = self.fp.local("i32"), self.fp.local("i32")
        constant = const_of(call[3])
        if constant is not None and constant > 0:
            fits: Node = ["i32.le_u", ["i32.add", ["local.get", arena.used], ["i32.const", str(constant)]],
                          ["local.get", arena.end]]
        else:
            fits = ["i32.gt_u", ["i32.sub", ["local.get", arena.end], ["local.get", arena.used]],
                    ["i32.sub", ["local.get", size], ["i32.const", "1"]]]
        stored = [] if self.deferred else \
            [["call", self.hoist("bump_set"), ["local.get", arena.slot], ["local.get", arena.used]]]
        return ["block", ["result", "i64"], ["local.set", size, call[3]],
                ["if", ["result", "i64"], fits,
                 ["then", ["local.set", offset, ["local.get", arena.used]],
                  ["local.set", arena.used, ["i32.add", ["local.get", offset], ["local.get", size]]],
                  *stored,
                  *([] if arena.size is not None else  # else counted at the flush: (used - start) / size
                    [["local.set", arena.count, ["i64.add", ["local.get", arena.count], ["i64.const", "1"]]]]),
                  ["i64.or", ["local.get", arena.high], ["i64.extend_i32_u", ["local.get", offset]]]],
                 ["else", *([self.bump_store(arena)] if self.deferred else []),
                  ["call", self.hoist("alloc_in_wasm"), call[2], ["local.get", size]]]]]

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
            limit, _ = self.groups[(str(site[2][1]), access.direction, access.width.name)]  # type: ignore[index]
            check = within(offset, ranges.ivs, after, t, limit)
            if offset.ranged:
                ranged[key] = check
            else:
                checks.append(check)
        return code, checks, ranged, t

    def counted_by_difference(self, loop: list[Node], trip: TripCount | None, free: frozenset[int]) -> list[Node] | None:
        """The site counted as ``T`` minus the others' counts, for a loop that runs exactly ``T`` times
        (a trip count, no way out but its back edge), all of whose accesses had their range checked
        (nothing in it can fail, so nothing observes the counts while it runs) and whose every iteration
        runs exactly one of them (arms of ``if``s, as in a bucketed lookup): the first site in the body,
        usually the hot arm, loses its add. None for any other loop."""
        if trip is None or not self.leaves_by_back_edge_only(loop):
            return None
        sites = [n for n in walk(loop) if head(n) == "call" and n[1] in self.fp.helpers.accesses]
        if len(sites) < 2 or not all(id(n) in free for n in sites):
            return None
        if not one_site_per_iteration(loop, lambda n: head(n) == "call" and n[1] in self.fp.helpers.accesses):
            return None
        return sites[0]

    def difference_copy(self, loop: list[Node], pool: int, free: frozenset[int], derived: list[Node], t: str,
                        nested: bool) -> list[Node]:
        """The copy of :meth:`counted_by_difference`: the other sites' count locals summed before the loop,
        and after it the derived site's count grows by ``T`` minus what they gained."""
        _, _, _, count = self.site(derived)
        others = sorted({self.site(n)[3] for n in walk(loop) if head(n) == "call" and
                         n[1] in self.fp.helpers.accesses and n is not derived})
        snapshot = self.fp.local("i64")
        gained = ["i64.sub", _sum([["local.get", c] for c in others]), ["local.get", snapshot]]
        return [["local.set", snapshot, _sum([["local.get", c] for c in others])],
                self.rewrite(loop, pool, free, frozenset({id(derived)}), nested=nested),
                ["local.set", count, ["i64.add", ["local.get", count], ["i64.sub", ["local.get", t], gained]]]]

    def leaves_by_back_edge_only(self, loop: list[Node]) -> bool:
        """No ``return``, and no branch to a label outside ``loop``."""
        labels = {str(n[1]) for n in walk(loop) if head(n) in _SCOPES and len(n) > 1 and isinstance(n[1], str)}
        for n in walk(loop):
            op = head(n)
            if op == "return" or (op in ("br", "br_if") and str(n[1]) not in labels) or \
                    (op == "br_table" and any(isinstance(t, str) and t.startswith("$") and t not in labels for t in n[1:])):
                return False
        return True

    def counted_at_exit(self, loop: list[Node], trip: TripCount | None, free: frozenset[int]) -> dict[int, tuple[str, int]]:
        """Accesses whose count is ``T`` per site, added once when ``loop`` ends (no add per access).

        Only when every access of the loop had its range checked (nothing in it
        can fail, so nothing observes the counts while it runs), the loop has a
        trip count and no way out but its back edge (so it runs exactly ``T``
        times), and each site runs exactly once per iteration. Answers the
        sites by ``id``, each with its count local and its accesses per iteration (1).
        """
        if trip is None or not self.leaves_by_back_edge_only(loop):
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
        labels = {str(n[1]) for n in walk(loop) if head(n) in _SCOPES and len(n) > 1 and isinstance(n[1], str)}
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
        (:meth:`counted_at_exit`), per iteration (:meth:`iteration_counting`) or per access."""
        counted = self.counted_at_exit(loop, trip, free)
        if counted:
            if pool == 0:
                self.fp.report.counted_at_exit += len(counted)
            return [self.rewrite(loop, pool, free, frozenset(counted), nested=nested), *self.add_counts(counted, t)]
        derived = self.counted_by_difference(loop, trip, free)
        if derived is not None:
            if pool == 0:
                self.fp.report.counted_by_difference += 1
            return self.difference_copy(loop, pool, free, derived, t, nested)
        counting = self.iteration_counting(loop)
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

    # -------------------------------------------------------------- pieces
    def resolve(self, pool: int) -> list[Node]:
        code: list[Node] = [["local.set", self.base[h], ["call", self.hoist("base"), ["local.get", h]]] for h in self.handles]
        code += [["local.set", table, ["call", self.hoist("dirty"), ["local.get", h]]] for h, table in self.dirty.items()]
        for (h, direction, width), (limit, _) in self.groups.items():
            code.append(["local.set", limit, ["call", self.hoist(f"limit_{direction}"), ["local.get", h],
                                              ["i32.const", str(_WIDTHS[width].width)], ["i32.const", str(pool)]]])
        return code

    def flush(self) -> list[Node]:
        code: list[Node] = []
        for h in self.flush_order:
            read: list[Node] = []
            written: list[Node] = []
            count: list[Node] = []
            for (gh, direction, width), (_, n) in self.groups.items():
                if gh != h:
                    continue
                bytes_ = ["i64.mul", ["local.get", n], ["i64.const", str(_WIDTHS[width].width)]]
                (read if direction == "load" else written).append(bytes_)
                count.append(["local.get", n])
            code.append(["call", self.hoist("flush"), ["local.get", h], _sum(read), _sum(written), _sum(count)])
        code += [["local.set", n, ["i64.const", "0"]] for _, n in self.groups.values()]
        return code + self.arena_flush()

    def entry_checks(self) -> list[Node]:
        """i32 conditions, at loop entry after :meth:`resolve`, under which the fast copy cannot leave the
        fast path except by an access out of bounds: every handle fast, every ``alloc`` region staying in
        wasm, every hoisted range inside its limit."""
        checks: list[Node] = [["i32.ne", ["local.get", limit], ["i32.const", "0"]] for limit, _ in self.groups.values()]
        checks += [["call", self.hoist("alloc_stays"), copy.deepcopy(n[2])] for n in self.allocs]
        return checks + self.arena_checks()

    # -------------------------------------------------------------- rewriting
    def emit(self) -> Node:
        self.fp.report.loops += 1
        if not self.exact:
            return self.emit_rejoining()
        done, slow = self.fp.local_label(), self.fp.local_label()
        ranges, range_checks, ranged, t = self.range_checks(self.ranges)
        free = frozenset(self.ranges.found) | frozenset(self.in_allocation)
        checks = [*self.entry_checks(), *range_checks, *self.allocation_checks()]
        versions: list[Node] = []
        if self.dirty:
            self.fp.report.untracked_copies += 1
        for p in range(self.fp.pools):
            body = self.fast_body(p, free, ranged, t)
            if self.dirty:  # no stored region tracks dirty pages: a copy whose stores mark nothing
                self.untracked = True
                with self.unreported():
                    plain = self.fast_body(p, free, ranged, t)
                self.untracked = False
                untracked = _all([["i32.eqz", ["local.get", table]] for table in self.dirty.values()])
                body = [["if", untracked, ["then", *plain], ["else", *body]]]
            versions.append(["if", ["i32.eq", ["local.get", self.pool_local], ["i32.const", str(p)]],
                             ["then", *self.resolve(p), *self.arena_entry(), *ranges,
                              ["br_if", slow, ["i32.eqz", _all(checks)]], *self.arena_high(),
                              *body, *self.flush(), ["br", done]]])
        # Anything else (a handle Cold, stale, in another pool or read-only for a store, an affine range
        # that may not fit) runs the loop as it was: every access inlined and checked on its own.
        return ["block", done,
                ["block", slow, *[["local.set", n, ["i64.const", "0"]] for _, n in self.groups.values()],
                 ["local.set", self.pool_local, ["call", self.hoist("pool"), ["local.get", self.handles[0]]]],
                 *versions],
                copy.deepcopy(self.loop)]

    def fast_body(self, p: int, free: frozenset[int], ranged: dict[int, Node], t: str) -> list[Node]:
        """The exact loop's fast copy for pool ``p``, with a copy whose ranged accesses are compared for
        when a range may not fit.

        With :attr:`untracked`, the copy for stored regions whose dirty-page map is 0 at entry: stores
        mark nothing (the map cannot change inside the fast copy: nothing in it enters the host)."""
        body = self.loop_copy(self.loop, p, free, self.ranges.trip, t, nested=True)
        if ranged:  # a range that may not fit: the fast copy with those accesses compared
            with self.unreported():
                checked = self.loop_copy(self.loop, p, free - set(ranged), self.ranges.trip, t, nested=True)
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
        versions: list[Node] = [[*self.resolve(p), self.rewrite(self.loop, p)] for p in range(self.fp.pools)]
        # A first handle in no pool (Cold, stale, not reachable) runs the loop as it was: every access
        # inlined and checked on its own, so a loop entered before its region is faulted in is never
        # slower than without the pass.
        dispatch: list[Node] = [copy.deepcopy(self.loop)]
        for p in reversed(range(self.fp.pools)):
            dispatch = [["if", ["i32.eq", ["local.get", self.pool_local], ["i32.const", str(p)]],
                         ["then", *versions[p]], ["else", *dispatch]]]  # type: ignore[list-item]
        first = self.handles[0]
        return ["block", *[["local.set", n, ["i64.const", "0"]] for _, n in self.groups.values()],
                ["local.set", self.pool_local, ["call", self.hoist("pool"), ["local.get", first]]],
                *dispatch, *self.flush()]

    def rewrite(self, node: Node, pool: int, free: frozenset[int] = frozenset(), uncounted: frozenset[int] = frozenset(),
                nested: bool = True, counting: Counting | None = None) -> Node:
        """A new tree (lists are never shared with ``node``): the loop's copy for ``pool``; accesses in
        ``free`` (ids of calls) had their range checked before their loop, those in ``uncounted`` are
        counted when their loop ends."""
        if not isinstance(node, list):
            return node
        op = head(node)
        if op == "loop" and nested and node is not self.loop and self.exact:
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
            if not self.exact:
                return self.checked_access(children, pool, rejoin=True)
            if id(node) in free:
                return self.unchecked_access(children, pool, counted=id(node) not in uncounted,
                                             mark=self.marks.get(id(node), OWN_MARKS))
            return self.checked_access(children, pool, rejoin=False, counted=id(node) not in uncounted,
                                       before_flush=self.adjust(counting, node))
        if leaves:
            adjust = self.adjust(counting, node)
            if op == "br_if":
                outer = str(node[1]) not in self.inside
                return ["if", children[2], ["then", *adjust, *(self.flush() if outer else []), ["br", children[1]]]]
            if op == "br" and str(node[1]) in self.inside:
                return ["block", *adjust, children]
        if op == "unreachable":  # a trap of user code (a failed alloc, say): the counts so far are the model's
            return ["block", *self.adjust(counting, node), *self.flush(), children]
        if op == "call" and node[1] == self.fp.helpers.alloc:
            if self.exact:
                return self.bump_alloc(children)
            return self.alloc(children, pool)
        if op == "br" and str(node[1]) not in self.inside:
            return ["block", *(self.adjust(counting, node) if leaves else []), *self.flush(), children]
        if op == "br_if" and str(node[1]) not in self.inside:
            return ["if", children[2], ["then", *self.flush(), ["br", children[1]]]]
        if op == "return":
            adjust = self.adjust(counting, node)
            if len(children) == 1:
                return ["block", *adjust, *self.flush(), children]
            assert self.return_local is not None
            return ["block", ["local.set", self.return_local, children[1]], *adjust, *self.flush(),
                    ["return", ["local.get", self.return_local]]]
        return children

    def nested_ranges(self, loop: list[Node], pool: int, free: frozenset[int]) -> Node | None:
        """An innermost loop inside the fast copy with ranges of its own to check: two copies, the one
        without those compares entered when the checks pass at its entry; without ranges, one copy
        if it is counted per iteration."""
        if any(head(n) == "loop" for n in walk(loop[1:])) or any(head(n) == "result" for n in loop[1:3]):
            return None
        ranges = self.ranges_of(loop, free)
        if not ranges.found:
            if ranges.trip is not None and self.counted_by_difference(loop, ranges.trip, free) is not None:
                t = self.fp.local("i64")
                count, ok = trip_code(ranges.trip, t)  # T is exact only when ok: else the copy counted as it was
                with self.unreported():
                    plain = self.loop_copy(loop, pool, free, None, t, nested=False)
                return ["block", *count, ["if", ok, ["then", *self.loop_copy(loop, pool, free, ranges.trip, t, nested=False)],
                                          ["else", *plain]]]
            if self.iteration_counting(loop) is None:
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

    def site(self, call: list[Node]) -> tuple[Access, str, str, str]:
        """One access site's kind, handle, and the limit and count locals of its group."""
        access = self.fp.helpers.accesses[str(call[1])]
        handle = str(call[2][1])  # type: ignore[index]
        limit, count = self.groups[(handle, access.direction, access.width.name)]
        return access, handle, limit, count

    def parts(self, call: list[Node]) -> tuple[Access, str, str, str, str]:
        """:meth:`site`, and a fresh local for the offset."""
        return (*self.site(call), self.fp.local("i32"))

    def unchecked_access(self, call: list[Node], pool: int, counted: bool = True,
                         mark: tuple[int, int] | None = OWN_MARKS) -> Node:
        """An access whose range was checked before the loop: count it (unless its loop counts it at
        exit), then the bare load or store; a store marks its own pages, or its run's (``(low, high)``
        bytes from ``p``, :meth:`shared_marks`), or none (None: an earlier store of its run did)."""
        access, handle, _, count, offset = self.parts(call)
        address = ["i32.add", ["local.get", self.base[handle]], ["local.get", offset]]
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
                stored.insert(0, ["call", self.hoist("mark_span"), ["local.get", self.dirty[handle]],
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
        return ["call", fast, address, ["local.get", value], ["local.get", self.dirty[handle]], at]

    def checked_access(self, call: list[Node], pool: int, rejoin: bool, counted: bool = True,
                       before_flush: list[Node] | None = None) -> Node:
        """One compare against the hoisted limit, then the bare access. Failing it: with ``rejoin``, flush,
        call the ABI (errors, fault-in), resolve every handle again and go on; without (an exact loop,
        where it can only be out of bounds), flush, let the ABI raise the typed error, ``unreachable``."""
        access, handle, limit, count, offset = self.parts(call)
        value = self.fp.local(access.width.value_type)
        address = ["i32.add", ["local.get", self.base[handle]], ["local.get", offset]]
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


def _fold(op: str, terms: list[Node], empty: Node) -> Node:
    """``terms`` joined by the binary ``op`` (``empty`` for none)."""
    if not terms:
        return empty
    total = terms[0]
    for term in terms[1:]:
        total = [op, total, term]
    return total


def _all(conditions: list[Node]) -> Node:
    return _fold("i32.and", conditions, ["i32.const", "1"])


def _sum(terms: list[Node]) -> Node:
    return _fold("i64.add", terms, ["i64.const", "0"])
