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
  allocation (:meth:`.hoist_bump.BumpCode.bump_alloc`). A constant size ``s`` compares
  ``used + s <= end`` (no wrap: ``end <= 2**32 - 1 - s`` at entry). In a loop
  where nothing can trap but at a flush (:func:`.loop_facts.trap_free`: no division,
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

The pass in modules, planning below code: :mod:`.loop_pass` (the runtime's
names, one function's declarations and new locals, shared with the clock
pass), :mod:`.loop_facts` (syntactic facts about a loop), :mod:`.hoist_plan`
(which loops qualify and what is proved about each), :mod:`.hoist_bump` and
:mod:`.hoist_code` (the code built from a plan), and here the pass over the
module's text.
"""

from __future__ import annotations

import re

from ..runtime.conventions import COLD_PREFIX
from ..runtime.hoisted import HOIST_PREFIX, OUT_OF_LINE
from .hoist_code import LoopCode
from .hoist_plan import LoopPlan
from .loop_pass import FunctionPass, Helpers, HoistReport
from .sexpr import Node, parse, render, top_level

__all__ = ["OUT_OF_LINE_PREFIX", "Helpers", "HoistPass", "HoistReport", "hoist_text"]

#: Binaryen name prefix of the helpers kept out of line: the runtime's cold prefix, which the linker's
#: ``wasm-opt --no-inline=tvm_cold_*`` never inlines.
OUT_OF_LINE_PREFIX = f"{COLD_PREFIX}hoist_"


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
            if HoistPass(func, helpers, pools, report).run():
                chunk = " " + render(func) + "\n"
        out.append(chunk)
    return "".join(out), report


class HoistPass(FunctionPass):
    """Hoists the qualifying loops of one function (outermost first)."""

    def rewrite_loop(self, loop: list[Node]) -> Node | None:
        plan = LoopPlan.of(self, loop)
        return None if plan is None else LoopCode(plan).emit()
