"""Rendering benchmark results for people (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .micro import MicroRow


def _duration(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.2f} ns"


def render_micro(rows: list[MicroRow], console: Console) -> None:
    table = Table(title="tvm-wasm host data plane: micro-benchmarks (median per operation)")
    table.add_column("operation")
    table.add_column("time", justify="right")
    table.add_column("native counterpart")
    table.add_column("time", justify="right")
    table.add_column("speed vs native", justify="right")
    for row in rows:
        has_baseline = row.baseline_ns > 0
        table.add_row(
            row.operation,
            _duration(row.ns_per_op),
            row.baseline if has_baseline else "-",
            _duration(row.baseline_ns) if has_baseline else "-",
            f"{row.ratio:.2f}x" if has_baseline else "-",
        )
    console.print(table)
