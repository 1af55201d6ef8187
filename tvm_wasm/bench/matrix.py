"""The benchmark matrix: classes x sizes x variants x engines, measured side by side.

For each (class, size) every variant is prepared first, each is calibrated on
its own (``reps`` per call so a call lasts ``min_sample_s``, which keeps the
~20 us Python->wasm call overhead under 1%), warmed up, and then the samples
are taken round-robin across the variants in a seeded random order per
round, so slow drifts of a shared machine hit every variant alike. Every
call's answer is checked against the NumPy reference (which the m32 row
must match too), so a wrong answer fails the run.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .classes import CLASSES, KIB, MIB
from .ir import Kernel
from .results import Row, Unavailable, annotate
from .timing import Sampler
from .wasmtime_runner import PREPARERS, Engines, Prepared, sampler

SEED = 0xDEADBEEF
VARIANTS = ("m32", "m32-checked", "m64", "tvm", "tvm-bulk", "tvm-mm", "guest", "native")
# Run only when asked for (--variants): each kernel and code layout is linked by Binaryen first
# (seconds per module), which would dominate the default run.
OPT_IN_VARIANTS = ("tvm-inline", "guest-inline")
SPECIAL_CLASSES = ("spill_driven", "beyond_4gib")
ALL_CLASSES = (*CLASSES, *SPECIAL_CLASSES)
FULL_SIZES = (1 * KIB, 16 * KIB, 256 * KIB, 16 * MIB)
QUICK_SIZES = (1 * KIB, 16 * KIB, 256 * KIB)
ENGINES = ("wasmtime", "wamr", "v8")
DEFAULT_ENGINES = ("wasmtime",)


@dataclass
class Config:
    classes: tuple[str, ...] = ALL_CLASSES
    sizes: tuple[int, ...] = FULL_SIZES
    variants: tuple[str, ...] = VARIANTS
    engines: tuple[str, ...] = DEFAULT_ENGINES
    samples: int = 24
    warmup: int = 2
    min_sample_s: float = 0.02
    layouts: int = 8  # code layouts per wasm variant (samples alternate between them)
    seed: int = SEED
    quick: bool = False
    arena_limit: int = 64 * MIB  # bytes an arena may take before the harness resets it (between calls)
    spill_cycles: int = 8  # spill-driven: cycles per sample at most
    probes_4g: int = 4096  # beyond_4gib: random probes per repetition

    @classmethod
    def quick_config(cls, **overrides: object) -> Config:
        base: dict[str, object] = {
            "sizes": QUICK_SIZES, "samples": 8, "warmup": 1, "min_sample_s": 0.005, "layouts": 4, "quick": True,
            "arena_limit": 16 * MIB, "spill_cycles": 4, "probes_4g": 2048,
        }
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]

    def describe(self) -> dict[str, object]:
        return {
            "classes": list(self.classes), "sizes": list(self.sizes), "variants": list(self.variants),
            "engines": list(self.engines), "samples": self.samples, "warmup": self.warmup,
            "min_sample_s": self.min_sample_s, "layouts": self.layouts, "seed": self.seed, "quick": self.quick,
            "arena_limit_bytes": self.arena_limit,
        }


Progress = Callable[[str, int], None]
"""``progress(description, rows_done)``."""


@dataclass
class Outcome:
    rows: list[Row] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    engine_notes: dict[str, str] = field(default_factory=dict)


def planned_rows(cfg: Config) -> int:
    """How many rows the run will produce (for the progress bar)."""
    total = 0
    for cls in cfg.classes:
        sizes = 1 if cls == "beyond_4gib" else len(cfg.sizes)
        total += sizes * len(cfg.variants) * (1 + sum(e in cfg.engines for e in ("v8", "wamr")))
    return total


class Matrix:
    def __init__(self, cfg: Config, progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.progress = progress or (lambda _d, _n: None)
        self.out = Outcome()
        self.engines = Engines()
        self.done = 0
        self._order = random.Random(cfg.seed)

    def run(self) -> Outcome:
        from . import special
        from .engines import ExternalEngines

        external = ExternalEngines(self.cfg)
        for cls in self.cfg.classes:
            if cls in SPECIAL_CLASSES:
                rows = special.run(cls, self.cfg, self.engines, lambda d: self.progress(d, self.done))
                self._add(rows)
                continue
            for size in self.cfg.sizes:
                kernel = CLASSES[cls](size, self.cfg.seed)
                self._group(kernel)
                self._add(external.run_kernel(kernel, self.cfg, lambda d: self.progress(d, self.done)))
        self._add(external.finish(lambda d: self.progress(d, self.done)))
        self.out.engine_notes.update(external.notes())
        annotate(self.out.rows)
        return self.out

    def _add(self, rows: list[Row]) -> None:
        for row in rows:
            self.out.rows.append(row)
            if row.status == "failed":
                self.out.failures.append(f"{row.variant}/{row.cls}/{row.size_bytes}/{row.engine}: {'; '.join(row.notes)}")
            self.done += 1
            self.progress(f"{row.cls} {_size(row.size_bytes)} {row.variant} ({row.engine})", self.done)

    def _row(self, variant: str, kernel: Kernel, engine: str = "wasmtime") -> Row:
        return Row(variant, kernel.cls, kernel.size_bytes, engine, self.cfg.seed)

    def _group(self, kernel: Kernel) -> None:
        """Prepare, calibrate and warm every variant in every code layout, then sample round-robin."""
        cfg = self.cfg
        label = f"{kernel.cls} {_size(kernel.size_bytes)}"
        rows: dict[str, Row] = {}
        samplers: dict[str, list[Sampler]] = {}
        keep: list[Prepared] = []
        for variant in cfg.variants:
            row = rows[variant] = self._row(variant, kernel)
            if variant == "native":
                continue
            pads = layout_pads(cfg.layouts)
            for pad in pads:
                self.progress(f"{label}: preparing {variant}", self.done)
                try:
                    prepared = self._prepare(variant, kernel, pad)
                    s = sampler(prepared, kernel, f"{label} {variant}")
                    s.calibrate(cfg.min_sample_s)
                    s.warm(cfg.warmup)
                except Unavailable as why:
                    row.status, row.notes = why.status, [str(why)]
                    break
                except Exception as exc:  # noqa: BLE001 - a broken variant is a failed row, not a crash
                    row.status, row.notes = "failed", [f"{type(exc).__name__}: {exc}"]
                    break
                keep.append(prepared)
                if pad == 0:
                    row.notes += prepared.notes
                samplers.setdefault(variant, []).append(s)
            if row.status != "ok":
                samplers.pop(variant, None)
        for round_ in range(cfg.samples):
            order = list(samplers)
            self._order.shuffle(order)
            self.progress(f"{label}: sample {round_ + 1}/{cfg.samples}", self.done)
            for variant in order:
                layouts = samplers[variant]
                try:
                    layouts[round_ % len(layouts)].sample()
                except Exception as exc:  # noqa: BLE001
                    rows[variant].status = "failed"
                    rows[variant].notes.append(f"{type(exc).__name__}: {exc}")
                    del samplers[variant]
        for variant, layouts in samplers.items():
            row = rows[variant]
            row.raw_ns = [x for s in layouts for x in s.samples_ns]
            row.warmup = layouts[0].warmup
            row.reps_per_sample = max(s.reps for s in layouts)
            overhead = layouts[0].call_overhead_ns()
            durations = sorted(d for s in layouts for d in s.durations_ns)
            median_call = durations[len(durations) // 2]
            row.call_overhead_pct = 100 * overhead / median_call if median_call else None
            retaken = sum(s.retaken for s in layouts)
            if retaken:
                row.notes.append(f"{retaken} sample(s) retaken: the thread was preempted")
            row.layout_means_ns = [sum(s.samples_ns) / len(s.samples_ns) for s in layouts if s.samples_ns]
            if len(layouts) > 1:
                spread = row.layout_means_ns
                row.notes.append(f"{len(layouts)} code layouts (means {' / '.join(_short_ns(x) for x in spread)})")
            if row.call_overhead_pct is not None and row.call_overhead_pct > 1:
                capped = any(s.reps >= s.max_reps for s in layouts)
                row.notes.append(f"call overhead {row.call_overhead_pct:.1f}% of a sample"
                                 + (f" (reps capped at {layouts[0].max_reps} by the arena size)" if capped else ""))
            row.result = kernel.expected
        if "native" in cfg.variants:
            from .native_c import run_native

            rows["native"] = run_native(kernel, cfg)
        self._add([rows[v] for v in cfg.variants if v in rows])
        keep.clear()

    def _prepare(self, variant: str, kernel: Kernel, pad: int) -> Prepared:
        if variant == "guest":
            from .guest_runner import prepare_guest

            return prepare_guest(kernel, self.engines, self.cfg.arena_limit, pad)
        if variant == "guest-inline":
            from .guest_linked import prepare_guest_inline

            return prepare_guest_inline(kernel, self.engines, self.cfg.arena_limit, pad)
        return PREPARERS[variant](variant, kernel, self.engines, self.cfg.arena_limit, pad)


PAD_CYCLE = 12  # pad stores that move a loop through about one 64-byte fetch line (3-6 bytes each)


def layout_pads(layouts: int) -> list[int]:
    """Stratified code layouts: pad counts spread evenly over one fetch-line cycle, the same
    for every variant, so each variant's hot loops land at the same spread of alignments."""
    return sorted({round(k * PAD_CYCLE / layouts) for k in range(max(1, layouts))})


def _size(n: int) -> str:
    if n >= 1 << 30 and n % (1 << 30) == 0:
        return f"{n >> 30} GiB"
    if n >= MIB and n % MIB == 0:
        return f"{n // MIB} MiB"
    if n >= KIB and n % KIB == 0:
        return f"{n // KIB} KiB"
    return f"{n} B"


def _short_ns(ns: float) -> str:
    return f"{ns / 1e3:.1f} µs" if ns >= 1e3 else f"{ns:.0f} ns"


def size_label(n: int) -> str:
    return _size(n)


def run_matrix(cfg: Config, progress: Progress | None = None) -> Outcome:
    start = time.perf_counter()
    outcome = Matrix(cfg, progress).run()
    outcome.engine_notes.setdefault("wasmtime", "in process (wasmtime-py); all variants")
    outcome.engine_notes["_duration_s"] = f"{time.perf_counter() - start:.1f}"
    return outcome
