"""Benchmark rows, their statistics and the JSON file that carries them.

A row is one (variant, class, size, engine) cell. Measured rows carry the
per-repetition samples; infeasible or unavailable rows carry ``samples: 0``,
null statistics and a note saying why.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .stats import mann_whitney_u, summarize

SCHEMA_VERSION = 1
GIB = float(1 << 30)

# The JSON row fields the issue asks for, in order; extra fields follow them.
ROW_FIELDS = (
    "variant", "class", "size_bytes", "engine", "samples", "warmup", "seed",
    "mean_ns", "p50_ns", "p95_ns", "p99_ns", "ci95_low_ns", "ci95_high_ns",
    "throughput_gib_per_s", "speedup_vs_m32", "speedup_vs_m64", "notes",
)
EXTRA_FIELDS = (
    "best_layout_ns", "speedup_vs_m32_best_layout", "layout_means_ns", "reps_per_sample", "call_overhead_pct", "mann_whitney_u_vs_m32", "mann_whitney_p_vs_m32",
    "result", "status", "raw_ns",
)


@dataclass
class Row:
    variant: str
    cls: str
    size_bytes: int
    engine: str
    seed: int
    raw_ns: list[float] = field(default_factory=list)  # per-repetition time of each kept sample
    warmup: int = 0
    reps_per_sample: int = 0
    call_overhead_pct: float | None = None
    result: int | None = None
    status: str = "ok"  # ok | infeasible | unavailable | failed
    notes: list[str] = field(default_factory=list)
    speedup_vs_m32: float | None = None
    speedup_vs_m64: float | None = None
    mann_whitney_u_vs_m32: float | None = None
    mann_whitney_p_vs_m32: float | None = None
    layout_means_ns: list[float] = field(default_factory=list)  # mean per code layout (wasm rows)
    speedup_vs_m32_best_layout: float | None = None

    @property
    def measured(self) -> bool:
        return self.status == "ok" and bool(self.raw_ns)

    @property
    def mean_ns(self) -> float | None:
        return summarize(self.raw_ns).mean if self.measured else None

    @property
    def best_layout_ns(self) -> float | None:
        """The fastest code layout's mean: the kernel with its code well placed."""
        return min(self.layout_means_ns) if self.measured and self.layout_means_ns else None

    @property
    def median_ns(self) -> float | None:
        return summarize(self.raw_ns).p50 if self.measured else None

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.variant, self.cls, self.size_bytes, self.engine)

    def to_json(self) -> dict[str, Any]:
        s = summarize(self.raw_ns) if self.measured else None
        mean = s.mean if s else None
        out: dict[str, Any] = {
            "variant": self.variant,
            "class": self.cls,
            "size_bytes": self.size_bytes,
            "engine": self.engine,
            "samples": len(self.raw_ns) if s else 0,
            "warmup": self.warmup if s else 0,
            "seed": self.seed,
            "mean_ns": _r(mean),
            "p50_ns": _r(s.p50) if s else None,
            "p95_ns": _r(s.p95) if s else None,
            "p99_ns": _r(s.p99) if s else None,
            "ci95_low_ns": _r(s.ci_low) if s else None,
            "ci95_high_ns": _r(s.ci_high) if s else None,
            "throughput_gib_per_s": _r(self.size_bytes / mean * 1e9 / GIB, 4) if mean else None,
            "speedup_vs_m32": _r(self.speedup_vs_m32, 4),
            "speedup_vs_m64": _r(self.speedup_vs_m64, 4),
            "notes": "; ".join(self.notes),
            "best_layout_ns": _r(self.best_layout_ns),
            "speedup_vs_m32_best_layout": _r(self.speedup_vs_m32_best_layout, 4),
            "layout_means_ns": [_r(x) for x in self.layout_means_ns],
            "reps_per_sample": self.reps_per_sample if s else 0,
            "call_overhead_pct": _r(self.call_overhead_pct, 3),
            "mann_whitney_u_vs_m32": _r(self.mann_whitney_u_vs_m32, 4),
            "mann_whitney_p_vs_m32": _r(self.mann_whitney_p_vs_m32, 6),
            "result": self.result,
            "status": self.status,
            "raw_ns": [_r(x) for x in self.raw_ns],
        }
        return out


def _r(value: float | None, digits: int = 2) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(float(value), digits)


def annotate(rows: list[Row]) -> None:
    """Speedups and Mann-Whitney U against the m32 (and m64) row of the same class, size and engine.

    ``speedup_vs_X`` = X's median / this row's median (above 1: this row is faster). Medians,
    not means: on a shared machine a single disturbed sample moves a mean far more than the
    kernel does; means and their confidence intervals are reported beside them.
    Rows of an engine with no m32 row of their own (``native``) are compared with wasmtime's.
    """
    by_key = {r.key: r for r in rows}

    def base(variant: str, row: Row) -> Row | None:
        for engine in (row.engine, "wasmtime"):
            found = by_key.get((variant, row.cls, row.size_bytes, engine))
            if found is not None and found.measured:
                return found
        return None

    for row in rows:
        if not row.measured:
            continue
        median = row.median_ns
        assert median
        m32, m64 = base("m32", row), base("m64", row)
        if m32 is not None:
            row.speedup_vs_m32 = m32.median_ns / median  # type: ignore[operator]
            if m32.best_layout_ns and row.best_layout_ns:
                row.speedup_vs_m32_best_layout = m32.best_layout_ns / row.best_layout_ns
            mw = mann_whitney_u(row.raw_ns, m32.raw_ns)
            row.mann_whitney_u_vs_m32, row.mann_whitney_p_vs_m32 = mw.u_normalised, mw.p_value
        if m64 is not None:
            row.speedup_vs_m64 = m64.median_ns / median  # type: ignore[operator]


@dataclass
class RunInfo:
    created: str
    command: str
    argv: list[str]
    config: dict[str, Any]
    machine: dict[str, Any]
    packages: dict[str, str]
    engines: dict[str, str]  # engine -> what it ran, or why it could not
    duration_s: float = 0.0


def write_json(path: Path, info: RunInfo, rows: list[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"schema": SCHEMA_VERSION, **asdict(info), "rows": [r.to_json() for r in rows]}
    path.write_text(json.dumps(doc, indent=1) + "\n")


def load_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a results file (a full document or a bare list of rows)."""
    doc = json.loads(Path(path).read_text())
    rows = doc["rows"] if isinstance(doc, dict) else doc
    if not isinstance(rows, list):
        raise ValueError(f"{path}: no rows")  # noqa: TRY004 - a malformed file, reported as a usage error
    for row in rows:
        missing = [f for f in ROW_FIELDS if f not in row]
        if missing:
            raise ValueError(f"{path}: a row lacks {', '.join(missing)}")
    return rows


class Unavailable(Exception):
    """This variant cannot run here; ``status`` says whether that is by construction or by the machine."""

    def __init__(self, message: str, status: str = "unavailable") -> None:
        super().__init__(message)
        self.status = status
