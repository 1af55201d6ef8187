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
  names its pool statically (a first handle in no pool runs the loop as it
  was). An access becomes ``offset <u limit`` then a
  bare load or store at ``base + offset``; anything else calls the unchanged
  ABI function (errors, fault-in, counts), with the loop's counts flushed
  before and every handle resolved again after.
- The loop's counts (accesses per handle, direction and width) live in
  locals and are flushed when the loop is left: after it, before each
  ``br``/``br_if`` out of it and each ``return`` inside it. A trap raised by
  user code inside a hoisted loop (not by the runtime) loses the counts since
  the last flush.

Loops that do not qualify keep their calls, which ``wasm-opt`` inlines as
before. The pass emits calls to the runtime's hoist helpers; ``wasm-opt``
inlines those too.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import dataclass, field

from ..abi.table import TYPED_ACCESS, TypedWidth
from ..runtime.hoisted import HOIST_PREFIX, OUT_OF_LINE
from .sexpr import Node, head, parse, render, walk

_EXPORT = re.compile(r'^ \(export "((?:[^"\\]|\\.)*)" \(func (\$\S+)\)\)$')
_WIDTHS = {t.name: t for t in TYPED_ACCESS}
_DECLS = {"type", "param", "result", "local", "export", "import"}
_SCOPES = {"block", "loop", "try", "try_table"}
_UNSUPPORTED = {"call_indirect", "call_ref", "return_call", "return_call_indirect", "return_call_ref",
                "br_on_null", "br_on_non_null", "br_on_cast", "br_on_cast_fail", "throw", "rethrow",
                "throw_ref", "delegate", "try", "try_table"}
_SIMPLE = {"i32", "i64", "f32", "f64"}
#: Binaryen name prefix of the helpers kept out of line (``wasm-opt --no-inline=tvm_hoist_out_*``).
OUT_OF_LINE_PREFIX = "tvm_hoist_out_"


@dataclass
class HoistReport:
    """What the pass did: loops hoisted and accesses turned into the fast form, per function."""

    loops: int = 0
    accesses: int = 0
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
    for name in OUT_OF_LINE:  # give the cold helpers names wasm-opt's --no-inline can match
        if name in helpers.hoist:
            old, new = helpers.hoist[name], f"${OUT_OF_LINE_PREFIX}{name}"
            text = re.sub(rf"\((func|call) {re.escape(old)}(?=[\s)])", rf"(\1 {new}", text)
            helpers.hoist[name] = new
    out: list[str] = []
    for chunk in _top_level(text):
        if chunk.startswith(' (export "' + HOIST_PREFIX):
            continue
        if chunk.startswith(" (func ") and "(loop" in chunk and helpers.hoist and \
                any(f"(call {name}\n" in chunk for name in helpers.accesses):
            func = parse(chunk)[0]
            if FunctionPass(func, helpers, pools, report).run():
                chunk = " " + render(func) + "\n"
        out.append(chunk)
    return "".join(out), report


def _top_level(text: str) -> list[str]:
    """The module text cut before each top-level field (Binaryen indents them by one space)."""
    chunks: list[str] = []
    current: list[str] = []
    for line in text.splitlines(keepends=True):
        if (line.startswith(" (") or line.startswith(")")) and current:
            chunks.append("".join(current))
            current = []
        current.append(line)
    if current:
        chunks.append("".join(current))
    return chunks


class FunctionPass:
    """Hoists the qualifying loops of one function (outermost first)."""

    def __init__(self, func: list[Node], helpers: Helpers, pools: int, report: HoistReport) -> None:
        self.func, self.helpers, self.pools, self.report = func, helpers, pools, report
        self.types: dict[str, str] = {}
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
            elif h == "result":
                self.results += [str(t) for t in item[1:]]

    def local(self, ty: str) -> str:
        name = next(self.names)
        self.new_locals.append((name, ty))
        return name

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
        return LoopPlan(self, loop, inside, sites)


class LoopPlan:
    """One hoisted loop: its handles, their limits and counters, and the rewritten copies per pool."""

    def __init__(self, fp: FunctionPass, loop: list[Node], inside: set[str], sites: list[list[Node]]) -> None:
        self.fp, self.loop, self.inside = fp, loop, inside
        fp.report.accesses += len(sites)
        self.handles: list[str] = []
        self.groups: dict[tuple[str, str, str], tuple[str, str]] = {}  # (handle, dir, width) -> (limit, count)
        last: dict[str, int] = {}
        for position, site in enumerate(sites):
            access = fp.helpers.accesses[str(site[1])]
            handle = str(site[2][1])  # type: ignore[index]
            if handle not in self.handles:
                self.handles.append(handle)
            key = (handle, access.direction, access.width.name)
            if key not in self.groups:
                self.groups[key] = (fp.local("i32"), fp.local("i64"))
            last[handle] = position
        self.base = {h: fp.local("i32") for h in self.handles}
        self.flush_order = sorted(self.handles, key=lambda h: last[h])
        self.pool_local = fp.local("i32")
        self.return_local = fp.local(fp.results[0]) if fp.results and fp.results[0] in _SIMPLE else None

    def hoist(self, name: str) -> str:
        return self.fp.helpers.hoist[name]

    # -------------------------------------------------------------- pieces
    def resolve(self, pool: int) -> list[Node]:
        code: list[Node] = [["local.set", self.base[h], ["call", self.hoist("base"), ["local.get", h]]] for h in self.handles]
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
        return code

    # -------------------------------------------------------------- rewriting
    def emit(self) -> Node:
        self.fp.report.loops += 1
        versions: list[Node] = [[*self.resolve(p), self.rewrite(copy.deepcopy(self.loop), p)] for p in range(self.fp.pools)]
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

    def rewrite(self, node: Node, pool: int) -> Node:
        if not isinstance(node, list):
            return node
        op = head(node)
        children = [self.rewrite(child, pool) for child in node]
        if op == "call" and node[1] in self.fp.helpers.accesses:
            return self.access(children, pool)
        if op == "call" and node[1] == self.fp.helpers.alloc:
            return self.alloc(children, pool)
        if op == "br" and str(node[1]) not in self.inside:
            return ["block", *self.flush(), children]
        if op == "br_if" and str(node[1]) not in self.inside:
            return ["if", children[2], ["then", *self.flush(), ["br", children[1]]]]
        if op == "return":
            if len(children) == 1:
                return ["block", *self.flush(), children]
            assert self.return_local is not None
            return ["block", ["local.set", self.return_local, children[1]], *self.flush(),
                    ["return", ["local.get", self.return_local]]]
        return children

    def alloc(self, call: list[Node], pool: int) -> Node:
        """``alloc`` inside a hoisted loop: a plain call for Bump and Slab regions, else a slow path."""
        region, size, result = self.fp.local("i32"), self.fp.local("i32"), self.fp.local("i64")
        args = [["local.get", region], ["local.get", size]]
        return ["block", ["result", "i64"], ["local.set", region, call[2]], ["local.set", size, call[3]],
                ["if", ["result", "i64"], ["call", self.hoist("alloc_stays"), ["local.get", region]],
                 ["then", ["call", self.hoist("alloc_in_wasm"), *args]],
                 ["else", *self.flush(), ["local.set", result, ["call", self.hoist("slow_alloc"), *args]],
                  *self.resolve(pool), ["local.get", result]]]]

    def access(self, call: list[Node], pool: int) -> Node:
        fp = self.fp
        func = str(call[1])
        access = fp.helpers.accesses[func]
        handle = str(call[2][1])  # type: ignore[index]
        limit, count = self.groups[(handle, access.direction, access.width.name)]
        offset = fp.local("i32")
        value = fp.local(access.width.value_type)
        address = ["i32.add", ["local.get", self.base[handle]], ["local.get", offset]]
        counted = ["local.set", count, ["i64.add", ["local.get", count], ["i64.const", "1"]]]
        fast = self.hoist(f"{access.direction}_{access.width.name}_p{pool}")
        slow_args = [["local.get", handle], ["local.get", offset]]
        func = self.hoist(f"slow_{access.direction}_{access.width.name}")
        if access.direction == "load":
            return ["if", ["result", access.width.value_type],
                    ["i32.lt_u", ["local.tee", offset, call[3]], ["local.get", limit]],
                    ["then", counted, ["call", fast, address]],
                    ["else", *self.flush(), ["local.set", value, ["call", func, *slow_args]], *self.resolve(pool),
                     ["local.get", value]]]
        return ["block", ["local.set", offset, call[3]], ["local.set", value, call[4]],
                ["if", ["i32.lt_u", ["local.get", offset], ["local.get", limit]],
                 ["then", counted, ["call", fast, address, ["local.get", value]]],
                 ["else", *self.flush(), ["call", func, *slow_args, ["local.get", value]], *self.resolve(pool)]]]


def _sum(terms: list[Node]) -> Node:
    if not terms:
        return ["i64.const", "0"]
    total = terms[0]
    for term in terms[1:]:
        total = ["i64.add", total, term]
    return total
