"""What records.c must compute, from its record formula, in NumPy (an oracle independent of C)."""

from __future__ import annotations

import numpy as np


def expected_scans(n: int, seed: int) -> dict[str, int]:
    """``field``: the sum of every key; ``filter``: the sum of value where flags == 3 and
    score < 60 (mod 2^64); ``first_key``: record 0's key."""
    i = np.arange(n, dtype=np.uint64)
    x = ((i + np.uint64(seed)) * np.uint64(2654435761)) & np.uint64(0xFFFF_FFFF)
    x ^= x >> np.uint64(16)
    value = (x.astype(np.int64) * 3 - i.astype(np.int64)).astype(np.uint64)
    flags = x & np.uint64(7)
    score_ok = (x % np.uint64(1000)) < np.uint64(480)  # (x % 1000) / 8 < 60, exact in f32
    return {
        "field": int(x.sum(dtype=np.uint64)),
        "filter": int(value[(flags == 3) & score_ok].sum(dtype=np.uint64)),
        "first_key": int(x[0]),
    }
