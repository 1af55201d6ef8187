"""What paging.c must compute, in NumPy: region r's words and their position-weighted checksum."""

from __future__ import annotations

import numpy as np


def words(region: int, count: int) -> np.ndarray:
    """Word j of region r: x = j * 2654435761 + r * 0x9E3779B9; x ^= x >> 15; x *= 0x85EBCA6B; x ^= x >> 13 (u32)."""
    j = np.arange(count, dtype=np.uint32)
    with np.errstate(over="ignore"):
        x = j * np.uint32(2654435761) + np.uint32((region * 0x9E3779B9) & 0xFFFF_FFFF)
        x ^= x >> np.uint32(15)
        x *= np.uint32(0x85EBCA6B)
        x ^= x >> np.uint32(13)
    return x


def checksum(data: np.ndarray) -> int:
    """sum_j word_j * (j % 65521 + 1) mod 2^64 over the little-endian u32 words of ``data``."""
    w = np.frombuffer(data.tobytes() if data.dtype != np.uint8 else data, dtype="<u4").astype(np.uint64)
    weights = np.arange(len(w), dtype=np.uint64) % np.uint64(65521) + np.uint64(1)
    return int((w * weights).sum(dtype=np.uint64))
