"""Timing wasm from Python honestly.

A call from Python into wasm costs microseconds, so a sample is one call that
runs a kernel ``reps`` times inside wasm; ``reps`` is calibrated so one call
lasts at least ``min_sample_s`` (call overhead well below 1%). Warm-up calls
are made and discarded before any sample is kept.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

Kernel = Callable[[int], object]
"""Runs the kernel ``reps`` times inside wasm and returns its result."""


@dataclass(frozen=True)
class Timing:
    reps: int
    samples_ns: tuple[float, ...]  # per repetition

    @property
    def median_ns(self) -> float:
        return statistics.median(self.samples_ns)

    @property
    def mean_ns(self) -> float:
        return statistics.fmean(self.samples_ns)


def calibrate(kernel: Kernel, *, min_sample_s: float = 0.02, max_reps: int = 1 << 30) -> int:
    """The smallest power-of-two ``reps`` whose call lasts at least ``min_sample_s``."""
    reps = 1
    while reps < max_reps:
        start = time.perf_counter()
        kernel(reps)
        if time.perf_counter() - start >= min_sample_s:
            break
        reps *= 2
    return reps


def measure(kernel: Kernel, *, samples: int = 7, warmup: int = 2, min_sample_s: float = 0.02) -> Timing:
    """Calibrate, warm up (discarded), then time ``samples`` calls; ns per repetition."""
    reps = calibrate(kernel, min_sample_s=min_sample_s)
    for _ in range(warmup):
        kernel(reps)
    times = []
    for _ in range(samples):
        start = time.perf_counter_ns()
        kernel(reps)
        times.append((time.perf_counter_ns() - start) / reps)
    return Timing(reps, tuple(times))
