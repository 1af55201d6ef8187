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


class Sampler:
    """One kernel being timed: calibrated once, then sampled call by call, so the matrix can
    interleave the samples of several variants (drift and noise then hit all of them alike)."""

    def __init__(
        self,
        call: Callable[[int], object],
        *,
        before: Callable[[], None] | None = None,
        check: Callable[[int, object], None] | None = None,
        max_reps: int = 1 << 30,
        reject_preempted: bool = True,
    ) -> None:
        self.call, self.before, self.check, self.max_reps = call, before, check, max_reps
        self.reject_preempted = reject_preempted
        self.reps = 1
        self.samples_ns: list[float] = []
        self.durations_ns: list[int] = []
        self.warmup = 0
        self.retaken = 0  # samples taken again because the thread was not on a CPU for all of it
        self.last_cpu_ns = 0

    def once(self, reps: int) -> int:
        if self.before is not None:
            self.before()
        cpu = time.thread_time_ns()
        start = time.perf_counter_ns()
        result = self.call(reps)
        elapsed = time.perf_counter_ns() - start
        self.last_cpu_ns = time.thread_time_ns() - cpu
        if self.check is not None:
            self.check(reps, result)
        return elapsed

    def calibrate(self, min_sample_s: float) -> int:
        """Double ``reps`` until one call lasts ``min_sample_s`` (or ``max_reps`` is reached)."""
        reps = 1
        while reps < self.max_reps and self.once(reps) < min_sample_s * 1e9:
            reps = min(self.max_reps, reps * 2)
        self.reps = reps
        return reps

    def warm(self, calls: int) -> None:
        for _ in range(calls):
            self.once(self.reps)
        self.warmup += calls

    def sample(self, retries: int = 3) -> float:
        """One timed call. A CPU-bound kernel whose thread got less than 97% of the wall time
        (preempted by another process on a shared machine) is measured again, up to ``retries``
        times; the last attempt is kept either way."""
        for attempt in range(retries + 1):
            elapsed = self.once(self.reps)
            if not self.reject_preempted or self.last_cpu_ns >= 0.97 * elapsed or attempt == retries:
                break
            self.retaken += 1
        self.durations_ns.append(elapsed)
        self.samples_ns.append(elapsed / self.reps)
        return self.samples_ns[-1]

    def call_overhead_ns(self, calls: int = 5) -> float:
        """Median time of an empty call (``reps`` = 0): what every sample pays once."""
        times = []
        for _ in range(calls):
            if self.before is not None:
                self.before()
            start = time.perf_counter_ns()
            self.call(0)
            times.append(time.perf_counter_ns() - start)
        return float(statistics.median(times))
