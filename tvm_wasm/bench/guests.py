"""``tvm-wasm bench guests``: compiled C guests, the same code over a plain array, through
handles and paged, side by side in one run.

Two example programs (``tvm_wasm/sdk/examples``), built with clang as libraries:

- ``records.c``: 100,000 records of 32 bytes, scanned two ways ("field": sum one field of
  every record; "filter": test two fields, sum a third) over a plain C array, through
  per-access typed loads on one region (``handles``), through one Slab block per record
  (``slab``), and paged into linear memory 64 KiB at a time with ``tvm.read`` (``paged``);
- ``paging.c``: a position-weighted checksum of a region's words, over a plain buffer and
  paged 64 KiB at a time.

Each program runs four ways: on TvmHost calling the runtime's exports (``host``), on the
self-contained module calling its exports (``module``), and linked by ``tvm_wasm.linker``
with the runtime's fast paths inlined into the C code: on TvmHost
(``host-inline``: ``TvmHost.instantiate(..., inline=True)``) and as one self-contained
module (``guest-inline``: ``link(..., target="guest", inline_runtime=True)``). The inlined
deployments need Binaryen; without it they are reported as not measured, saying why.
Within a group (program, scan, deployment) every variant is calibrated and warmed, then
sampled round-robin in a seeded random order per round (``timing.Sampler``, the matrix's
method); every call's answer is checked against the plain variant's. Speeds are ratios of
medians against ``plain`` in the same group.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import TvmError
from ..guest.instance import GuestInstance
from ..guest.module import build_module
from ..host.tvm_host import TvmHost
from ..linker import link
from ..sdk import clang
from .stats import Summary, summarize
from .timing import Sampler

RECORDS = 100_000
MASK64 = (1 << 64) - 1
DEPLOYMENTS = ("host", "module", "host-inline", "guest-inline")
MODULE_POOLS, MODULE_MAX_PAGES = 2, 8192
RECORD_WAYS = ("plain", "handles", "slab", "paged")
PAGING_WAYS = ("plain", "paged")


@dataclass
class GuestRow:
    """One variant of one group: its samples (ns per scan) and speed against ``plain``."""

    program: str
    scan: str
    deployment: str
    variant: str
    reps: int = 0
    samples_ns: list[float] = field(default_factory=list)
    speed_vs_plain: float | None = None

    @property
    def summary(self) -> Summary:
        return summarize(self.samples_ns)


@dataclass(frozen=True)
class GuestsConfig:
    samples: int = 15
    warmup: int = 2
    min_sample_s: float = 0.02
    paging_mib: int = 64
    seed: int = 0xDEADBEEF
    deployments: tuple[str, ...] = DEPLOYMENTS

    @classmethod
    def quick(cls) -> GuestsConfig:
        return cls(samples=5, warmup=1, min_sample_s=0.005, paging_mib=16)


Call = Callable[[str, int], int]
"""``call(export, reps)``: run an export of the loaded library, its u64 result."""


def _libraries(folder: Path) -> dict[str, Path]:
    return {name: clang.build(clang.example(name), folder / f"{name}.wasm", target="library")
            for name in ("records", "paging")}


def _load(deployment: str, library: Path, setup: tuple[int, ...]) -> Call:
    """Instantiate ``library`` on the deployment, run ``setup(*setup)``, return its caller."""
    if deployment in ("host", "host-inline"):
        host = TvmHost()
        inline = deployment == "host-inline"
        instance = host.instantiate(library.read_bytes() if inline else library, inline=inline)
        run = host.call
        keep: object = host
    elif deployment == "module":
        module = build_module(pools=MODULE_POOLS, max_pages=MODULE_MAX_PAGES)
        guest = GuestInstance(module.wasm)
        instance = clang.link_library(guest, library)
        run = guest.call
        keep = guest
    else:  # guest-inline: one module, the library's code with the runtime's fast paths inlined
        linked = link(library, target="guest", pools=MODULE_POOLS, max_pages=MODULE_MAX_PAGES, inline_runtime=True)
        guest = GuestInstance(linked.wasm)
        instance = guest.instance
        run = guest.call
        keep = guest
    code = run(instance, "setup", *setup)
    if code:
        raise RuntimeError(f"{library.stem} setup on {deployment} failed with tvm error {code}")

    def call(name: str, reps: int) -> int:
        _ = keep  # the host or module lives as long as its caller
        return int(run(instance, name, reps)) & MASK64  # type: ignore[arg-type]

    return call


def _group(rows: list[GuestRow], call: Call, names: dict[str, str], cfg: GuestsConfig, order: random.Random,
           progress: Callable[[str], None]) -> None:
    """Measure the variants ``names`` (variant -> export) of one group side by side."""
    expected = call(names["plain"], 1)
    samplers: dict[str, Sampler] = {}
    for row in rows:
        export = names[row.variant]

        def check(reps: int, result: object, export: str = export) -> None:
            if result != (reps * expected) & MASK64:
                raise AssertionError(f"{export}: wrong answer {result} for {reps} repetitions (plain: {expected})")

        progress(f"{row.program} {row.scan} {row.deployment}: calibrating {row.variant}")
        sampler = Sampler(lambda reps, export=export: call(export, reps), check=check, max_reps=1 << 16)
        sampler.calibrate(cfg.min_sample_s)
        sampler.warm(cfg.warmup)
        samplers[row.variant] = sampler
    for round_ in range(cfg.samples):
        variants = list(samplers)
        order.shuffle(variants)
        progress(f"{rows[0].program} {rows[0].scan} {rows[0].deployment}: sample {round_ + 1}/{cfg.samples}")
        for variant in variants:
            samplers[variant].sample()
    plain = summarize(samplers["plain"].samples_ns).p50
    for row in rows:
        sampler = samplers[row.variant]
        row.reps, row.samples_ns = sampler.reps, list(sampler.samples_ns)
        row.speed_vs_plain = plain / row.summary.p50


@dataclass
class GuestsOutcome:
    rows: list[GuestRow] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # deployment -> why it could not run


def run_guests(cfg: GuestsConfig, progress: Callable[[str], None] = lambda _: None) -> GuestsOutcome:
    """Build the programs, measure every group; raises ``clang.ToolchainMissing`` without clang
    and ``AssertionError`` on a wrong answer. A deployment that cannot run the programs
    (say, one lacking an import they use) is reported in ``unavailable``."""
    order = random.Random(cfg.seed)
    out = GuestsOutcome()
    rows = out.rows
    with tempfile.TemporaryDirectory(prefix="tvm-bench-guests-") as tmp:
        progress("building the C programs")
        libraries = _libraries(Path(tmp))
        for deployment in cfg.deployments:
            progress(f"records on {deployment}: setup")
            try:
                records = _load(deployment, libraries["records"], (RECORDS, 1))
            except (ValueError, RuntimeError, TvmError) as exc:
                out.unavailable[deployment] = str(exc)
                continue
            for scan in ("field", "filter"):
                group = [GuestRow("records", scan, deployment, way) for way in RECORD_WAYS]
                _group(group, records, {way: f"{scan}_{way}" for way in RECORD_WAYS}, cfg, order, progress)
                rows += group
            progress(f"paging on {deployment}: setup")
            paging = _load(deployment, libraries["paging"], (cfg.paging_mib,))
            group = [GuestRow("paging", f"checksum {cfg.paging_mib} MiB", deployment, way) for way in PAGING_WAYS]
            _group(group, paging, {way: f"checksum_{way}" for way in PAGING_WAYS}, cfg, order, progress)
            rows += group
    return out


def render_guests(rows: list[GuestRow], console: object, command: str) -> None:
    """The table: median ns per scan, p95, and speed against ``plain`` (above 1 is faster)."""
    from rich.table import Table

    from .report import _duration

    table = Table(title=f"C guests, medians per scan ({command})")
    for column in ("program", "scan", "on", "variant"):
        table.add_column(column)
    for column in ("median", "p95", "speed vs plain", "time / plain"):
        table.add_column(column, justify="right")
    for row in rows:
        s = row.summary
        speed = row.speed_vs_plain or float("nan")
        table.add_row(row.program, row.scan, row.deployment, row.variant, _duration(s.p50), _duration(s.p95),
                      f"{speed:.2f}x", f"{1 / speed:.2f}x")
    console.print(table)  # type: ignore[attr-defined]
    console.print(side_by_side(rows))  # type: ignore[attr-defined]


def side_by_side(rows: list[GuestRow]) -> object:
    """Time relative to ``plain`` per deployment, one column each: the same C code, deployed four ways."""
    from rich.table import Table

    deployments = [d for d in DEPLOYMENTS if any(r.deployment == d for r in rows)]
    table = Table(title="time / plain, by deployment (below 1 is faster)")
    for column in ("program", "scan", "variant"):
        table.add_column(column)
    for deployment in deployments:
        table.add_column(deployment, justify="right")
    cells: dict[tuple[str, str, str], dict[str, str]] = {}
    for row in rows:
        if row.variant != "plain" and row.speed_vs_plain:
            cells.setdefault((row.program, row.scan, row.variant), {})[row.deployment] = f"{1 / row.speed_vs_plain:.2f}x"
    for (program, scan, variant), by in cells.items():
        table.add_row(program, scan, variant, *(by.get(d, "") for d in deployments))
    return table


def rows_json(rows: list[GuestRow]) -> list[dict[str, object]]:
    return [
        {"program": r.program, "scan": r.scan, "deployment": r.deployment, "variant": r.variant, "reps": r.reps,
         "samples_ns": r.samples_ns, "median_ns": r.summary.p50, "mean_ns": r.summary.mean,
         "speed_vs_plain": r.speed_vs_plain}
        for r in rows
    ]
