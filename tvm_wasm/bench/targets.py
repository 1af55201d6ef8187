"""The issues' speed targets as one table, checked row by row against a bench run.

Each target names the variants it holds for, the classes it covers (``None``: every class with a
ratio), the ratio it reads (``speedup_vs_m32`` or ``speedup_vs_m64``: the medians of one run, side
by side) and the bound. The terminal table, the Markdown report and the README's results all print
:func:`target_lines`, so a target is written once. Where each comes from: the bulk and per-access
targets from the benchmark issue, the inlined ones from the linker issue (``tvm-wasm link``: typed
loads at ≥ 0.7 of m32 on four classes and ≥ 0.5 on every class, faster than m64 on every class,
``beyond_4gib`` ≥ 1.0× m64 for the inlined and guest variants).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .results import Row

PER_ACCESS_CORE = ("sequential_sum", "random_chase", "list_walk", "multi_region_90_9_1")
"""The classes whose inlined typed loads must reach 0.7 of m32."""

INLINED = ("tvm-inline", "guest-inline")


@dataclass(frozen=True)
class Target:
    """``variants`` reach ``ratio`` ≥ ``bound`` (``strict``: >) on ``classes`` (None: all)."""

    label: str
    variants: tuple[str, ...]
    ratio: str  # "speedup_vs_m32" or "speedup_vs_m64"
    bound: float
    classes: tuple[str, ...] | None = None
    strict: bool = False
    exclude: tuple[str, ...] = ()

    def covers(self, row: Row) -> bool:
        if row.variant not in self.variants or row.cls in self.exclude:
            return False
        return self.classes is None or row.cls in self.classes

    def met(self, value: float) -> bool:
        return value > self.bound if self.strict else value >= self.bound


TARGETS: tuple[Target, ...] = (
    Target("tvm-bulk/tvm-mm/guest >= 0.90 of m32", ("tvm-bulk", "tvm-mm", "guest"), "speedup_vs_m32", 0.90),
    Target("tvm (per access) >= 0.50 of m32", ("tvm",), "speedup_vs_m32", 0.50),
    Target("tvm/tvm-bulk/tvm-mm faster than m64", ("tvm", "tvm-bulk", "tvm-mm"), "speedup_vs_m64", 1.0,
           strict=True),
    Target("tvm-inline/guest-inline >= 0.70 of m32 (sequential_sum, random_chase, list_walk, "
           "multi_region_90_9_1)", INLINED, "speedup_vs_m32", 0.70, classes=PER_ACCESS_CORE),
    Target("tvm-inline/guest-inline >= 0.50 of m32", INLINED, "speedup_vs_m32", 0.50),
    Target("tvm-inline/guest-inline faster than m64", INLINED, "speedup_vs_m64", 1.0, strict=True,
           exclude=("beyond_4gib",)),
    Target("beyond_4gib: tvm-inline/guest-inline >= 1.0x m64", INLINED, "speedup_vs_m64", 1.0, classes=("beyond_4gib",)),
)


@dataclass
class Outcome:
    """One target against one run: the rows it checked and those that missed, as ``variant class size ratio``."""

    target: Target
    checked: int = 0
    misses: list[str] = field(default_factory=list)

    def line(self) -> str:
        met = self.checked - len(self.misses)
        text = f"targets: {self.target.label}: {met} of {self.checked} rows"
        return text + (f"; missed: {', '.join(self.misses)}" if self.misses else "")


def check(rows: list[Row], size_label: Callable[[int], str], targets: tuple[Target, ...] = TARGETS) -> list[Outcome]:
    """Each target against the measured wasmtime ``rows`` that have its ratio (``size_label(bytes) -> str``)."""
    outcomes = []
    for target in targets:
        out = Outcome(target)
        for row in rows:
            value = getattr(row, target.ratio)
            if row.engine != "wasmtime" or not row.measured or value is None or not target.covers(row):
                continue
            out.checked += 1
            if not target.met(value):
                out.misses.append(f"{row.variant} {row.cls} {size_label(row.size_bytes)} {value:.2f}")
        outcomes.append(out)
    return outcomes


def target_lines(rows: list[Row], size_label: Callable[[int], str]) -> list[str]:
    """One line per target that this run has rows for (``targets: LABEL: MET of CHECKED rows; missed: ...``)."""
    return [o.line() for o in check(rows, size_label) if o.checked]
