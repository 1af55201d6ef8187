"""The end-to-end demo behind ``tvm-wasm demo`` (and ``./run.sh``).

It drives the pure-Python model through one realistic lifecycle: regions of
several kinds, allocation, spill to a file-backed store under a byte budget,
transparent faults on read, deallocation and compaction. Every step is
checked against the bytes it wrote, so the demo doubles as a smoke test: the
CLI exits non-zero when any check fails.

The run (:func:`run_demo`) is kept apart from the rendering
(:func:`render_demo`) so tests and other front ends can inspect the result
without parsing terminal output.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from .core.allocators import Freelist, Slab
from .core.directory import RegionDirectory
from .core.errors import Pinned, StaleHandle
from .core.file_backing import FileBackingStore
from .core.handle import Handle
from .core.types import (
    EvictionReport,
    HandleRemap,
    PlacementPolicy,
    RegionInfo,
    RegionKind,
    RegionMetrics,
)
from .region_tables import metrics_table, region_table

KiB = 1024

#: Default resident-byte budget: small enough that the Warm page store and the
#: spillable Hot arenas must all go Cold, large enough for the 24 KiB of
#: regions that cannot spill (the pinned HOT_HEAP and the SCRATCH slab).
DEFAULT_BUDGET = 32 * KiB

SLAB_CLASS = 64


@dataclass(frozen=True, slots=True)
class Check:
    """One verification step: what was checked, whether it held, and why not."""

    name: str
    ok: bool
    detail: str = ""


@dataclass(slots=True)
class DemoResult:
    """Everything the demo observed; ``ok`` is False if any check failed."""

    budget: int
    spill_dir: Path | None
    resident_before: int
    resident_after: int
    unspillable: int
    eviction: EvictionReport
    remap: HandleRemap
    regions: list[RegionInfo]
    metrics: dict[int, RegionMetrics]
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    @property
    def total_faults(self) -> int:
        return sum(m.faults for m in self.metrics.values())


def payload(tag: str, index: int, size: int) -> bytes:
    """Recognisable, position-dependent bytes, so a misplaced block is caught."""
    stamp = f"<{tag}#{index}>".encode()
    repeated = stamp * (size // len(stamp) + 1)
    return repeated[:size]


@contextmanager
def _spill_root(directory: Path | None) -> Iterator[Path]:
    """The caller's directory (kept afterwards) or a temporary one (removed)."""
    if directory is not None:
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="tvm-wasm-demo-") as tmp:
        yield Path(tmp)


def run_demo(budget: int = DEFAULT_BUDGET, directory: Path | None = None) -> DemoResult:
    """Run the lifecycle and return what happened.

    Failed checks are reported in the result; TvmError or OSError escape only
    when the run cannot go on at all.

    ``directory`` keeps the spilled files there; by default a temporary
    directory is used and removed afterwards.
    """
    if budget < 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    started = time.perf_counter()
    with _spill_root(directory) as root:
        store = FileBackingStore(root)
        result = _run(RegionDirectory(store), budget, root)
    result.spill_dir = directory
    result.seconds = time.perf_counter() - started
    return result


def _run(d: RegionDirectory, budget: int, root: Path) -> DemoResult:
    checks: list[Check] = []

    def check(name: str, ok: bool, detail: str = "") -> None:
        checks.append(Check(name, bool(ok), "" if ok else detail))

    # 1. Regions of several kinds; each allocator fits its kind's access pattern.
    hot = d.create_region(RegionKind.HOT_HEAP, 16 * KiB)
    objects = d.create_region(RegionKind.OBJECT_ARENA, 64 * KiB, allocator=Freelist())
    blobs = d.create_region(RegionKind.BLOB_ARENA, 256 * KiB)
    pages = d.create_region(RegionKind.PAGE_STORE, 128 * KiB)
    scratch = d.create_region(RegionKind.SCRATCH, 8 * KiB, allocator=Slab(SLAB_CLASS))
    d.pin(hot)
    names = {hot: "hot", objects: "obj", blobs: "blob", pages: "page", scratch: "scr"}

    # 2. Allocate and fill; remember what every handle must read back as.
    expected: dict[Handle, bytes] = {}

    def put(region: int, count: int, size_of: int | None, *, align: int = 1) -> list[Handle]:
        handles = []
        for i in range(count):
            size = size_of if size_of is not None else 64 + (i * 97) % 700
            h = d.alloc(region, size, align=align)
            data = payload(names[region], i, size)
            d.write(h, data)
            expected[h] = data
            handles.append(h)
        return handles

    put(hot, 8, 256)
    object_handles = put(objects, 24, None)
    put(blobs, 4, 32 * KiB)
    put(pages, 8, 4 * KiB, align=4 * KiB)
    put(scratch, 32, SLAB_CLASS)

    try:
        d.spill_region(hot)
        check("pinned HOT_HEAP refuses to spill", False, "spill_region succeeded")
    except Pinned:
        check("pinned HOT_HEAP refuses to spill", True)

    # 3. Spill under the budget: Warm regions go before Hot ones.
    before = d.resident_bytes()
    report = d.demote_until(budget, order="largest_first")
    after = d.resident_bytes()
    cold = [info.id for info in d.list_regions() if not info.residency.is_resident]
    check(
        "budget report is honest",
        report.target_met == (after <= budget),
        f"target_met={report.target_met} but {after} B resident vs budget {budget} B",
    )
    check(
        "bytes freed add up",
        report.bytes_freed == before - after,
        f"report says {report.bytes_freed} B freed, residency fell by {before - after} B",
    )
    check(
        "every spilled region is Cold",
        report.regions_spilled == len(cold),
        f"{report.regions_spilled} spilled but {len(cold)} regions are not resident",
    )
    check(
        "no pinned or unspillable region spilled",
        not {hot, scratch} & set(cold),
        f"cold regions: {sorted(cold)}",
    )
    spill_files = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
    check(
        "spilled copies are on disk",
        len(spill_files) >= report.regions_spilled,
        f"{len(spill_files)} files for {report.regions_spilled} spilled regions",
    )

    # 4. Read everything back; Cold regions fault in transparently.
    mismatches = [h for h, data in expected.items() if d.read(h, len(data)) != data]
    check(
        f"all {len(expected)} blocks read back intact",
        not mismatches,
        f"{len(mismatches)} blocks differ, first {mismatches[:1]}",
    )
    unfaulted = [rid for rid in cold if d.metrics(rid).faults < 1]
    check("each Cold region faulted in once read", not unfaulted, f"no fault counted for {unfaulted}")

    # 5. Free every other object, compact, and migrate the survivors.
    freed = object_handles[1::2]
    survivors = object_handles[0::2]
    for h in freed:
        d.dealloc(h)
        del expected[h]
    remap = d.compact_region(objects)
    check(
        "compaction remaps exactly the survivors",
        sorted(remap.mapping) == sorted(h.offset for h in survivors),
        f"mapping has {len(remap.mapping)} entries for {len(survivors)} survivors",
    )
    packed_to = sum(len(expected[h]) for h in survivors)
    check(
        "survivors are packed from offset 0",
        d.region_info(objects).used == packed_to,
        f"used={d.region_info(objects).used}, live bytes={packed_to}",
    )
    old = survivors[-1]
    try:
        d.read(old, 1)
        check("old handle is stale after compaction", False, f"{old} still readable")
    except StaleHandle:
        check("old handle is stale after compaction", True)
    check("freed block has no new home", remap.migrate(freed[0]) is None, f"{freed[0]} migrated")
    moved_bad = []
    for h in survivors:
        new = remap.migrate(h)
        if new is None or d.read(new, len(expected[h])) != expected[h]:
            moved_bad.append(h)
    check(
        "migrated handles read the same bytes",
        not moved_bad,
        f"{len(moved_bad)} survivors lost, first {moved_bad[:1]}",
    )

    regions = d.list_regions()
    unspillable = sum(
        info.capacity
        for info in regions
        if info.pinned or not PlacementPolicy.for_kind(info.kind).spillable
    )
    return DemoResult(
        budget=budget,
        spill_dir=None,
        resident_before=before,
        resident_after=after,
        unspillable=unspillable,
        eviction=report,
        remap=remap,
        regions=regions,
        metrics={info.id: d.metrics(info.id) for info in regions},
        checks=checks,
    )


def summary_line(result: DemoResult) -> str:
    """One line that says whether the run held up and what it did."""
    report = result.eviction
    passed = len(result.checks) - len(result.failed)
    target = "met" if report.target_met else f"NOT met ({result.unspillable} B pinned or unspillable)"
    return (
        f"demo {'OK' if result.ok else 'FAILED'}: {passed}/{len(result.checks)} checks passed; "
        f"budget {result.budget} B {target}, {report.regions_spilled} regions spilled, "
        f"{result.resident_after} B resident; {result.total_faults} faults; "
        f"compaction remapped {len(result.remap.mapping)} handles "
        f"(gen {result.remap.old_generation}->{result.remap.new_generation}); "
        f"{result.seconds * 1000:.0f} ms"
    )


def render_demo(result: DemoResult, console: Console) -> None:
    """Print the region and metrics tables, any failed checks, and the summary."""
    console.print(region_table(result.regions))
    console.print(metrics_table(result.metrics))
    if result.spill_dir is not None:
        console.print(f"spilled copies kept in {result.spill_dir}", markup=False, soft_wrap=True)
    for check in result.failed:
        console.print(f"FAILED {check.name}: {check.detail}", markup=False, soft_wrap=True)
    console.print(summary_line(result), markup=False, soft_wrap=True)
