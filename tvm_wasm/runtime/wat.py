"""A small WAT builder: functions, imports and structured control as Python values.

Instructions are plain strings in the flat text syntax (``"i32.load $p1"``);
everything larger is built by the helpers here so generated modules are made
of named, testable pieces rather than one template.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

Instr = str
Code = list[Instr]


@dataclass
class Func:
    """One function: ``params``/``locals`` are (name, type) pairs."""

    name: str
    params: Sequence[tuple[str, str]] = ()
    results: Sequence[str] = ()
    locals: Sequence[tuple[str, str]] = ()
    body: Code = field(default_factory=list)
    export: str | None = None

    def render(self) -> str:
        head = [f"(func ${self.name}"]
        if self.export:
            head.append(f'(export "{self.export}")')
        head += [f"(param ${n} {t})" for n, t in self.params]
        head += [f"(result {t})" for t in self.results]
        lines = [" ".join(head)]
        lines += [f"  (local ${n} {t})" for n, t in self.locals]
        lines += [f"  {instr}" for instr in self.body]
        lines.append(")")
        return "\n".join(lines)


@dataclass
class Module:
    """A module as an ordered list of fields (imports first, as WAT requires)."""

    imports: list[str] = field(default_factory=list)
    fields: list[str] = field(default_factory=list)
    funcs: list[Func] = field(default_factory=list)

    def add(self, func: Func) -> Func:
        if any(existing.name == func.name for existing in self.funcs):
            raise ValueError(f"duplicate function ${func.name}")
        self.funcs.append(func)
        return func

    def render(self) -> str:
        parts = ["(module"]
        parts += [f"  {line}" for line in self.imports]
        parts += [f"  {line}" for line in self.fields]
        parts += [func.render() for func in self.funcs]
        parts.append(")")
        return "\n".join(parts)


def import_memory(module: str, name: str, ident: str, min_pages: int, max_pages: int | None = None) -> str:
    limits = f"{min_pages}" if max_pages is None else f"{min_pages} {max_pages}"
    return f'(import "{module}" "{name}" (memory ${ident} {limits}))'


def import_func(module: str, name: str, ident: str, params: Sequence[str], results: Sequence[str] = ()) -> str:
    sig = "".join(f" (param {t})" for t in params) + "".join(f" (result {t})" for t in results)
    return f'(import "{module}" "{name}" (func ${ident}{sig}))'


def if_(cond: Code, then: Code, else_: Code | None = None, result: str | None = None) -> Code:
    """``cond`` leaves an i32; ``then``/``else_`` run accordingly."""
    head = "if" + (f" (result {result})" if result else "")
    code = [*cond, head, *indent(then)]
    if else_:
        code += ["else", *indent(else_)]
    return code + ["end"]


def loop(label: str, body: Code) -> Code:
    """``block $label_exit (loop $label ...))``: ``br $label`` repeats, ``br $label_exit`` leaves."""
    return [f"block ${label}_exit", f"  loop ${label}", *indent(body, 4), "  end", "end"]


def indent(code: Iterable[Instr], by: int = 2) -> Code:
    pad = " " * by
    return [pad + instr for instr in code]


def dispatch(selector: Code, arms: Sequence[Code], default: Code, label: str = "arm") -> Code:
    """Run ``arms[k]`` for selector k (a ``br_table``); ``default`` for anything else.

    Arms and the default must not fall through: each ends with ``return``,
    ``br`` or ``unreachable``.
    """
    count = len(arms)
    code = [f"block ${label}_default"]
    code += [f"block ${label}{k}" for k in reversed(range(count))]
    targets = " ".join(f"${label}{k}" for k in range(count))
    code += [*selector, f"br_table {targets} ${label}_default"]
    for k in range(count):
        code += ["end", *indent(arms[k])]
    code += ["end", *default]
    return code


def per_pool(pools: int, arm: Callable[[int], Code], selector: Code, default: Code, label: str = "pool") -> Code:
    """One specialised arm per pool, chosen by a balanced branch tree on ``selector``.

    ``selector`` must be cheap and side-effect free (it is evaluated at every
    level). A tree beats ``br_table`` when the pool is unpredictable (measured
    by ``python -m tvm_wasm.guest.bench_dispatch``: about 1.6-2.6x faster on
    random pools, equal on a fixed one). Arms and ``default`` must not fall through.
    """

    def tree(lo: int, hi: int) -> Code:
        if hi - lo == 1:
            return arm(lo)
        mid = (lo + hi) // 2
        return if_([*selector, f"i32.const {mid}", "i32.lt_u"], tree(lo, mid), tree(mid, hi))

    return [
        *if_([*selector, f"i32.const {pools}", "i32.ge_u"], default),
        *tree(0, pools),
        "unreachable",
    ]
