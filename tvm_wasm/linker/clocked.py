"""The access clock in a local: the linker's pass for loops whose handles change per access.

A loop the hoisting pass cannot take (its handle is new at every access: read
from a table in guest memory, a pointer chase) keeps the typed load's inlined
fast path per access, and that path ticks the access clock: load
``HDR_EPOCH``, add one, store, stamp the slot. When every call in the loop is
a typed load, nothing but those loads moves the clock while the loop runs, so
this pass keeps the clock in a local: read once where the loop is entered,
``clock += 1`` per fast load, written through to ``HDR_EPOCH`` and the slot's
stamp (two stores, no load). A load that misses the fast path (another pool, an
error, a Cold region) runs the typed load's own code, which ticks the clock in
memory (a fault-in may tick it more), and the local is read again after it.
The values are exactly the unlinked module's at every instruction, so a trap
anywhere in the loop leaves the clock, the stamps and ``bytes_read`` exact.

Runs after :mod:`.hoist`, on what it left: a hoisted loop no longer calls the
typed loads (its fallback copy, run as it was, does and qualifies). The
helpers are :mod:`tvm_wasm.runtime.clocked`'s; ``wasm-opt`` inlines them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime.clocked import CLOCK, fast_name, hit_name
from ..runtime.core_module import slow_load_name
from ..runtime.layout import FAST_KEY_POOLS
from .loop_pass import FunctionPass, Helpers, HoistReport
from .sexpr import Node, head, parse, render, top_level, walk

#: Calls that may reach code moving the clock other than a typed load: a loop holding one keeps its loads as they are.
_OTHER_CALLS = {"call_indirect", "call_ref", "return_call", "return_call_indirect", "return_call_ref"}


@dataclass
class ClockReport:
    """Loops whose loads keep the access clock in a local, and their loads."""

    loops: int = 0
    accesses: int = 0


def clock_text(text: str, helpers: Helpers, pools: int) -> tuple[str, ClockReport]:
    """Binaryen's printed module with every qualifying loop's typed loads counting the clock in a local.

    ``helpers`` names the ABI's typed accesses and the runtime's helpers (:meth:`Helpers.of` of the text
    before the hoisting pass removed their exports).
    """
    report = ClockReport()
    if CLOCK not in helpers.hoist:
        return text, report  # a runtime without the helpers
    loads = {name for name, access in helpers.accesses.items() if access.direction == "load"}
    out: list[str] = []
    for chunk in top_level(text):
        if chunk.startswith(" (func ") and "(loop" in chunk and any(f"(call {name}\n" in chunk for name in loads):
            func = parse(chunk)[0]
            if ClockPass(func, helpers, pools, report).run():
                chunk = " " + render(func) + "\n"
        out.append(chunk)
    return "".join(out), report


class ClockPass(FunctionPass):
    """One function's qualifying loops (outermost first; loops inside one are rewritten with it)."""

    def __init__(self, func: list[Node], helpers: Helpers, pools: int, report: ClockReport) -> None:
        super().__init__(func, helpers, pools, HoistReport())
        self.clock_report = report

    def visit(self, node: Node) -> Node:
        if not isinstance(node, list):
            return node
        if head(node) == "loop" and self.qualifies(node):
            return self.clocked_loop(node)
        return [self.visit(child) for child in node]

    def qualifies(self, loop: list[Node]) -> bool:
        """Every call in the loop is a typed load (at least one); the loop has no result."""
        if any(head(item) == "result" for item in loop[1:3]):
            return False
        calls = [n for n in walk(loop) if head(n) == "call"]
        if any(head(n) in _OTHER_CALLS for n in walk(loop)) or not calls:
            return False
        return all(self.is_load(n) for n in calls)

    def is_load(self, call: list[Node]) -> bool:
        access = self.helpers.accesses.get(str(call[1]))
        return access is not None and access.direction == "load"

    def clocked_loop(self, loop: list[Node]) -> Node:
        self.report.loops += 1
        self.clock_report.loops += 1
        clock = self.local("i64")
        body = self.rewrite(loop, clock)
        return ["block", ["local.set", clock, ["call", self.helpers.hoist[CLOCK]]], body]

    def rewrite(self, node: Node, clock: str) -> Node:
        if not isinstance(node, list):
            return node
        children = [self.rewrite(child, clock) for child in node]  # loads inside the operands first
        if head(node) == "call" and self.is_load(node):
            return self.clocked_load(children, clock)
        return children

    def clocked_load(self, call: list[Node], clock: str) -> Node:
        """``(call $load_T h off)``: per keyed pool, its key-and-bounds compare, then the hit with the clock in
        ``clock``; anything else calls the cold twin and reads the clock again."""
        self.clock_report.accesses += 1
        width = self.helpers.accesses[str(call[1])].width
        h, off, value = self.local("i64"), self.local("i32"), self.local(width.value_type)
        done = self.local_label()
        helper = self.helpers.hoist
        args: list[Node] = [["local.get", h], ["local.get", off]]
        fast: list[Node] = []
        for pool in range(min(self.pools, FAST_KEY_POOLS)):
            other = self.local_label()
            fast.append(["block", other,
                         ["br_if", other, ["i32.eqz", ["call", helper[fast_name(width, pool)], *args]]],
                         ["local.set", clock, ["i64.add", ["local.get", clock], ["i64.const", "1"]]],
                         ["br", done, ["call", helper[hit_name(width, pool)], *args, ["local.get", clock]]]])
        return ["block", done, ["result", width.value_type],
                ["local.set", h, call[2]],
                ["local.set", off, call[3]],
                *fast,
                ["local.set", value, ["call", f"${slow_load_name(width)}", *args]],
                ["local.set", clock, ["call", helper[CLOCK]]],
                ["local.get", value]]
