"""Statistics for benchmark samples: summary, 95% confidence interval, Mann-Whitney U.

Written with NumPy only (no SciPy): the formulas are short and stated here.

- Percentile p of n samples: ``sorted[round(p/100 * (n-1))]`` (nearest rank,
  the reference's convention).
- 95% confidence interval of the mean: Student's t interval,
  ``mean +- t(0.975, n-1) * s / sqrt(n)`` with the sample standard deviation.
- Mann-Whitney U of a against b: ranks with ties averaged,
  ``U_a = R_a - n_a(n_a+1)/2``, reported normalised (``U_a / (n_a n_b)``: 0.5
  means no difference, below 0.5 means ``a`` tends to be faster) with a
  two-sided p-value from the normal approximation (tie-corrected variance,
  continuity correction). With very few samples the p-value is approximate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# t(0.975, df) for df = 1..30; beyond 30 the normal value is within 4%.
_T975 = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
]


def t975(df: int) -> float:
    if df < 1:
        return float("nan")
    if df <= 30:
        return _T975[df - 1]
    if df <= 60:
        return 2.042 - (2.042 - 2.000) * (df - 30) / 30
    if df <= 120:
        return 2.000 - (2.000 - 1.980) * (df - 60) / 60
    return 1.960


def percentile(values: np.ndarray, p: float) -> float:
    ordered = np.sort(np.asarray(values, dtype=float))
    return float(ordered[round(p / 100 * (len(ordered) - 1))])


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    p50: float
    p95: float
    p99: float
    ci_low: float
    ci_high: float
    stdev: float


def summarize(samples: np.ndarray | list[float]) -> Summary:
    x = np.asarray(samples, dtype=float)
    n = len(x)
    if n == 0:
        raise ValueError("no samples")
    mean = float(x.mean())
    stdev = float(x.std(ddof=1)) if n > 1 else 0.0
    half = t975(n - 1) * stdev / math.sqrt(n) if n > 1 else float("nan")
    return Summary(n, mean, percentile(x, 50), percentile(x, 95), percentile(x, 99), mean - half, mean + half, stdev)


def _ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties given their average rank."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    sorted_values = values[order]
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and sorted_values[j + 1] == sorted_values[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


@dataclass(frozen=True)
class MannWhitney:
    u: float  # U of a
    u_normalised: float  # U_a / (n_a n_b)
    p_value: float  # two-sided, normal approximation


def mann_whitney_u(a: np.ndarray | list[float], b: np.ndarray | list[float]) -> MannWhitney:
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = len(xa), len(xb)
    if na == 0 or nb == 0:
        return MannWhitney(float("nan"), 0.5, 1.0)
    both = np.concatenate([xa, xb])
    ranks = _ranks(both)
    u_a = float(ranks[:na].sum() - na * (na + 1) / 2)
    mean_u = na * nb / 2
    _, counts = np.unique(both, return_counts=True)
    n = na + nb
    tie = float((counts**3 - counts).sum())
    var_u = na * nb / 12 * ((n + 1) - tie / (n * (n - 1)))
    if var_u <= 0:
        return MannWhitney(u_a, u_a / (na * nb), 1.0)
    z = (abs(u_a - mean_u) - 0.5) / math.sqrt(var_u)
    p = math.erfc(max(z, 0.0) / math.sqrt(2))
    return MannWhitney(u_a, u_a / (na * nb), min(1.0, p))
