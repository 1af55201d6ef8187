"""The region and metrics tables people see (``tvm-wasm demo``, ``tvm-wasm run --stats``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich.table import Table

from .core.types import RegionInfo, RegionMetrics

METRIC_COLUMNS = ("allocs", "alloc B", "read B", "written B", "faults", "promos", "demos")


def region_table(regions: Sequence[RegionInfo], title: str = "Regions") -> Table:
    """One row per region: id, kind, generation, residency, pinned, used/capacity (bytes)."""
    table = Table(title=title, title_justify="left")
    for column in ("id", "kind", "gen", "residency", "pinned"):
        table.add_column(column, justify="right" if column in ("id", "gen") else "left")
    table.add_column("used/capacity", justify="right")
    for info in regions:
        table.add_row(
            str(info.id),
            info.kind.name,
            str(info.generation),
            info.residency.name,
            "yes" if info.pinned else "no",
            f"{info.used}/{info.capacity}",
        )
    return table


def metrics_table(metrics: Mapping[int, RegionMetrics], title: str = "Metrics") -> Table:
    """One row per region id: its ``RegionMetrics`` counters (bytes and counts)."""
    table = Table(title=title, title_justify="left")
    table.add_column("id", justify="right")
    for column in METRIC_COLUMNS:
        table.add_column(column, justify="right")
    for rid, m in metrics.items():
        values = (m.allocations, m.bytes_allocated, m.bytes_read, m.bytes_written, m.faults, m.promotions, m.demotions)
        table.add_row(str(rid), *(str(value) for value in values))
    return table
