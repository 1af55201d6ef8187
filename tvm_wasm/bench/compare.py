"""``tvm-wasm bench compare BASE NEW``: has any TVM or guest row got slower?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .results import load_rows

DEFAULT_THRESHOLD = 1.25
# What is compared, best first, when both files have it: the fastest code layout's mean (tight
# loops swing with code placement, a code regression moves every layout), then the median (one
# disturbed sample moves a mean far more than a regression would), then the mean.
STATISTICS = ("best_layout_ns", "p50_ns", "mean_ns")


def checked_variant(variant: str) -> bool:
    return variant.startswith("tvm") or variant == "guest"


@dataclass(frozen=True)
class Change:
    variant: str
    cls: str
    size_bytes: int
    engine: str
    base_ns: float
    new_ns: float

    @property
    def ratio(self) -> float:
        return self.new_ns / self.base_ns


@dataclass
class Comparison:
    compared: list[Change]
    regressions: list[Change]
    missing: list[tuple[str, str, int, str]]  # measured in BASE, not in NEW


def compare(base: Path, new: Path, threshold: float = DEFAULT_THRESHOLD) -> Comparison:
    """Match rows on (variant, class, size, engine); only tvm* and guest rows measured in both count."""
    if threshold <= 0:
        raise ValueError("threshold must be positive")

    Key = tuple[str, str, int, str]

    def index(path: Path) -> dict[Key, dict[str, float]]:
        out: dict[Key, dict[str, float]] = {}
        for row in load_rows(path):
            if not checked_variant(row["variant"]):
                continue
            stats = {f: float(row[f]) for f in STATISTICS if isinstance(row.get(f), (int, float)) and row[f] > 0}
            if stats:
                out[(row["variant"], row["class"], int(row["size_bytes"]), row["engine"])] = stats
        return out

    def pick(a: dict[str, float], b: dict[str, float]) -> tuple[float, float]:
        for f in STATISTICS:
            if f in a and f in b:
                return a[f], b[f]
        raise AssertionError("unreachable: both rows have a mean")

    old, fresh = index(base), index(new)
    compared = [Change(*key, *pick(old[key], fresh[key])) for key in old if key in fresh]
    regressions = [c for c in compared if c.ratio > threshold]
    missing = [key for key in old if key not in fresh]
    return Comparison(compared, regressions, missing)
