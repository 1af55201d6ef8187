"""The verifier over a linked module (the NaCl/LFI validator idea, at the wasm level).

After the merge, every instruction that names a runtime memory (the directory
or a pool), the runtime's table, a runtime global, or a runtime function that
is not a public entry point must sit in a runtime function. User functions,
user data and element segments and the start function may name only the user
memory, user tables and globals, user and imported functions, and the
runtime's exported functions (the ABI). It reads ``wasm-tools print`` of the
stripped module: every index is explicit there, and the tool decodes every
instruction the module may hold.

Which entities are the runtime's comes from marks: before the merge, the
runtime exports each function, table and global it defines under a reserved
name (:func:`mark_runtime`), so the merged module says itself which indices
are the runtime's, whatever order the merge chose; the marks are removed after.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..runtime import sections as S
from . import tools
from .errors import VerificationFailed

RUNTIME_IMPORT_MODULES = frozenset({"tvm_host"})
_TOP = re.compile(r"^  \((\w+)")
_IMPORT = re.compile(r'^  \(import "([^"]*)" "([^"]*)" \((func|table|memory|global|tag) ')
_EXPORT = re.compile(r'^  \(export "((?:[^"\\]|\\.)*)" \((func|table|memory|global|tag) (\d+)\)\)')
_INT = re.compile(r"^\d+$")


@dataclass
class Shape:
    """Index spaces of a printed module, in index order, and where its code is."""

    imports: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {k: [] for k in KINDS})
    defined: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    exports: list[tuple[str, str, int]] = field(default_factory=list)
    bodies: list[list[str]] = field(default_factory=list)  # defined functions' instruction lines
    elems: list[str] = field(default_factory=list)
    datas: list[str] = field(default_factory=list)
    start: int | None = None

    def count(self, kind: str) -> int:
        return len(self.imports[kind]) + self.defined[kind]


KINDS = ("func", "table", "memory", "global", "tag")


def print_module(wasm: bytes) -> str:
    """The module's text with every custom section (names included) removed first, so indices are explicit."""
    stripped = tools.run([tools.wasm_tools(), "strip", "--all"], input=wasm)
    return tools.run([tools.wasm_tools(), "print"], input=stripped).decode()


def shape_of(text: str) -> Shape:
    shape = Shape()
    body: list[str] | None = None
    for line in text.splitlines():
        top = _TOP.match(line)
        if top is None:
            if body is not None and line.startswith("    "):
                body.append(line.strip())
            continue
        body = None
        what = top.group(1)
        if what == "import":
            found = _IMPORT.match(line)
            if found is None:
                raise VerificationFailed(f"unreadable import line: {line[:120]}")
            shape.imports[found.group(3)].append((found.group(1), found.group(2)))
        elif what in KINDS:
            shape.defined[what] += 1
            if what == "func":
                body = []
                shape.bodies.append(body)
        elif what == "export":
            found = _EXPORT.match(line)
            if found is None:
                raise VerificationFailed(f"unreadable export line: {line[:120]}")
            shape.exports.append((found.group(1), found.group(2), int(found.group(3))))
        elif what == "elem":
            shape.elems.append(line)
        elif what == "data":
            shape.datas.append(line.split('"', 1)[0])
        elif what == "start":
            shape.start = int(line.split()[1].rstrip(")"))
    return shape


# ---------------------------------------------------------------- what an instruction names
def _ints(tokens: list[str]) -> list[int]:
    return [int(t) for t in tokens if _INT.match(t)]


def named(line: str) -> list[tuple[str, int]]:
    """(kind, index) of every memory, table, global and function an instruction line names."""
    tokens = line.replace("(", " ( ").replace(")", " ) ").split()
    if not tokens:
        return []
    op, args = tokens[0], tokens[1:]
    before_type = args[: args.index("(")] if "(" in args else args
    ints = _ints(before_type)
    if op in ("global.get", "global.set"):
        return [("global", ints[0])]
    if op in ("call", "return_call", "ref.func"):
        return [("func", ints[0])]
    if op in ("call_indirect", "return_call_indirect"):
        return [("table", ints[0] if ints else 0)]
    if op == "table.copy":
        return [("table", i) for i in (ints or [0, 0])]
    if op == "table.init":
        return [("table", ints[0] if len(ints) == 2 else 0)]
    if op.startswith("table."):
        return [("table", ints[0] if ints else 0)]
    if op == "memory.copy":
        return [("memory", i) for i in (ints or [0, 0])]
    if op == "memory.init" or op.endswith("_lane"):
        return [("memory", ints[0] if len(ints) == 2 else 0)]
    if op.startswith("memory.") or ".load" in op or ".store" in op or ".atomic." in op:
        if op == "memory.atomic.fence":
            return []
        return [("memory", ints[0] if ints else 0)]
    return []


def elem_names(line: str) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    if " declare " not in line and any(o in line for o in ("(i32.const", "(global.get", "(offset")):
        table = re.search(r"\(table (\d+)\)", line)
        found.append(("table", int(table.group(1)) if table else 0))
    if " func " in line:
        found += [("func", int(t)) for t in line.split(" func ", 1)[1].replace(")", " ").split() if _INT.match(t)]
    found += [("func", int(m)) for m in re.findall(r"ref\.func (\d+)", line)]
    return found


def data_names(head: str) -> list[tuple[str, int]]:
    memory = re.search(r"\(memory (\d+)\)", head)
    if memory:
        return [("memory", int(memory.group(1)))]
    return [("memory", 0)] if "i32.const" in head or "global.get" in head else []


# ---------------------------------------------------------------- the check
MARK = "tvm-internal:"
_KIND_NAMES = {S.KIND_FUNC: "func", S.KIND_TABLE: "table", S.KIND_GLOBAL: "global"}


def mark_runtime(runtime_wasm: bytes) -> bytes:
    """The runtime with every function, table and global it defines exported as ``tvm-internal:KIND:INDEX``.

    The merge may reorder index spaces (Binaryen sorts globals, for one), so
    the merged module's exports, not positions, say what is the runtime's.
    The marks are removed again (:func:`unmark`) once the output is verified.
    """
    spaces = S.index_spaces(runtime_wasm)

    def add(entries: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
        marks = []
        for kind, label in _KIND_NAMES.items():
            imported, defined = spaces[kind]
            marks += [(f"{MARK}{label}:{k}", kind, imported + k) for k in range(defined)]
        return [*entries, *marks]

    return S.edit_exports(runtime_wasm, add)


def unmark(wasm: bytes) -> bytes:
    return S.edit_exports(wasm, lambda entries: [e for e in entries if not e[0].startswith(MARK)])


@dataclass(frozen=True)
class RuntimeCounts:
    """Data and element segments of the runtime (each must keep its runtime target)."""

    elems: int
    datas: int

    @classmethod
    def of(cls, runtime_wasm: bytes) -> RuntimeCounts:
        by_id = {sid: p for sid, p in S.sections(runtime_wasm) if sid != 0}
        return cls(S.read_u32(by_id[9], 0)[0] if 9 in by_id else 0, S.read_u32(by_id[11], 0)[0] if 11 in by_id else 0)


def verify(linked_wasm: bytes, runtime: RuntimeCounts, runtime_exports: set[str]) -> None:
    """Raise ``VerificationFailed`` if user code in ``linked_wasm`` names anything of the runtime's but its ABI.

    ``linked_wasm`` is the merge of :func:`mark_runtime`'s output with the user
    module; ``runtime_exports`` are the runtime's public export names.
    """
    shape = shape_of(print_module(linked_wasm))
    user_memory = [i for name, kind, i in shape.exports if kind == "memory" and name == "memory"]
    if len(user_memory) != 1:
        raise VerificationFailed("the linked module must export its user memory as 'memory'")
    owned: dict[str, set[int]] = {"func": set(), "table": set(), "global": set()}
    entry_points: set[int] = set()
    for name, kind, index in shape.exports:
        if name.startswith(MARK):
            owned[kind].add(index)
    owned["func"] |= {i for i, (module, _) in enumerate(shape.imports["func"]) if module in RUNTIME_IMPORT_MODULES}
    for name, kind, index in shape.exports:
        if name.startswith(MARK):
            continue
        if kind == "func" and name in runtime_exports:
            if index not in owned["func"]:
                raise VerificationFailed(f"runtime export {name!r} is not a runtime function")
            entry_points.add(index)
        elif kind in owned and index in owned[kind] and name not in runtime_exports:
            raise VerificationFailed(f"export {name!r} exposes runtime {kind} {index}")
    imported = len(shape.imports["func"])
    runtime_bodies = {i - imported for i in owned["func"] if i >= imported}
    if len(runtime_bodies) + len(owned["func"] & set(range(imported))) != len(owned["func"]):
        raise VerificationFailed("runtime function marks do not add up")

    def allowed(kind: str, index: int) -> bool:
        if kind == "memory":
            return index == user_memory[0]
        if kind == "func":
            return index not in owned["func"] or index in entry_points
        return index not in owned.get(kind, set())

    def check(where: str, names: list[tuple[str, int]]) -> None:
        for kind, index in names:
            if not allowed(kind, index):
                raise VerificationFailed(f"{where} names runtime {kind} {index}: user code reaches the runtime "
                                         "only through its exported functions")

    for number, body in enumerate(shape.bodies):
        if number in runtime_bodies:
            continue
        for line in body:
            check(f"user function {number + imported} ({line!r})", named(line))
    # Segments: the runtime's own ones are the only ones that may target its memories and table.
    runtime_targets = {"memory": 0, "table": 0}
    for where, line, names in [*((f"element segment {n}", l, elem_names(l)) for n, l in enumerate(shape.elems)),
                               *((f"data segment {n}", l, data_names(l)) for n, l in enumerate(shape.datas))]:
        targets = [(k, i) for k, i in names if k in ("memory", "table") and not allowed(k, i)]
        if targets:
            runtime_targets[targets[0][0]] += 1
        else:
            check(where, names)
    if runtime_targets["table"] > runtime.elems or runtime_targets["memory"] > runtime.datas:
        raise VerificationFailed("a data or element segment outside the runtime targets a runtime memory or table")
    if shape.start is not None and shape.start in owned["func"]:
        raise VerificationFailed("the start function is a runtime function")
