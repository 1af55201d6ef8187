"""What a loop pass over one function of Binaryen's folded text starts from.

The hoisting pass (:mod:`.hoist`) and the clock pass (:mod:`.clocked`) both
rewrite loops that call the runtime's typed accesses, one function at a time:
they find the runtime's functions by their exports (:class:`Helpers`; a merge
drops function names), read the function's declarations, allocate fresh
locals and labels, and put the new locals' declarations in front of the body
(:class:`FunctionPass`). Which loops a pass takes, and what it makes of them,
is the subclass's (:meth:`FunctionPass.rewrite_loop`).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from ..abi.table import TYPED_ACCESS, TypedWidth
from ..runtime.hoisted import HOIST_PREFIX
from .ranges import Interval, RangeFacts
from .sexpr import Node, head, walk

_EXPORT = re.compile(r'^ \(export "((?:[^"\\]|\\.)*)" \(func (\$\S+)\)\)$')
#: The ABI's typed access widths by name (``u8``, ``i64``...).
WIDTHS = {t.name: t for t in TYPED_ACCESS}
_DECLS = {"type", "param", "result", "local", "export", "import"}


@dataclass
class HoistReport:
    """What the hoisting pass did: loops hoisted and accesses turned into the fast form, per function.

    Here, below both passes, because :meth:`FunctionPass.run` keeps ``loops`` and ``functions``."""

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
    covered: int = 0  # accesses whose compare an earlier access of the same iteration covers (.covered)
    functions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Access:
    """What one of the ABI's typed access functions does."""

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
                if direction in ("load", "store") and width in WIDTHS:
                    accesses[func] = Access(direction, WIDTHS[width])
        return cls(accesses, hoist, alloc)


class FunctionPass:
    """One function's loops rewritten (outermost first; a loop taken is not visited further).

    Keeps the function's declarations (``types`` of params and locals, ``results``), the value ranges
    its locals may hold (``facts``, :mod:`.ranges`) and the locals the pass adds: :meth:`run` declares
    them when some loop was rewritten (``report.loops`` grew)."""

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
            rewritten = self.rewrite_loop(node)
            if rewritten is not None:
                return rewritten
        return [self.visit(child) for child in node]

    def rewrite_loop(self, loop: list[Node]) -> Node | None:
        """What replaces ``loop`` (counted in ``report.loops``), or None to keep it and visit inside it."""
        return None
