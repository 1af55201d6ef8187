"""``tvm-wasm bench compare BASE NEW``: has any TVM or guest row got slower?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .results import load_rows

DEFAULT_THRESHOLD = 1.25


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
    """Match rows on (variant, class, size, engine); only tvm* and guest rows with a mean in both count."""
    if threshold <= 0:
        raise ValueError("threshold must be positive")

    def index(path: Path) -> dict[tuple[str, str, int, str], float]:
        out = {}
        for row in load_rows(path):
            mean = row.get("mean_ns")
            if checked_variant(row["variant"]) and isinstance(mean, (int, float)) and mean > 0:
                out[(row["variant"], row["class"], int(row["size_bytes"]), row["engine"])] = float(mean)
        return out

    old, fresh = index(base), index(new)
    compared = [Change(*key, old[key], fresh[key]) for key in old if key in fresh]
    regressions = [c for c in compared if c.ratio > threshold]
    missing = [key for key in old if key not in fresh]
    return Comparison(compared, regressions, missing)
