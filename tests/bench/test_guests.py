"""``tvm-wasm bench guests``: the compiled C guests measured side by side, every answer checked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "host"))  # host_guests

from tvm_wasm.bench.guests import RECORD_WAYS, GuestsConfig, run_guests
from tvm_wasm.sdk import clang


@pytest.fixture(autouse=True)
def _needs_clang() -> None:
    problem = clang.toolchain_problem("library")
    if problem is not None:
        pytest.skip(problem)


def test_every_group_has_every_variant_and_plain_is_the_baseline() -> None:
    cfg = GuestsConfig(samples=2, warmup=0, min_sample_s=0.0005, paging_mib=1, deployments=("host", "module"))
    outcome = run_guests(cfg)
    assert outcome.unavailable == {}
    rows = outcome.rows
    records = [r for r in rows if r.program == "records"]
    assert sorted({(r.scan, r.variant) for r in records}) == sorted((s, w) for s in ("field", "filter")
                                                                   for w in RECORD_WAYS)
    assert {r.variant for r in rows if r.program == "paging"} == {"plain", "paged"}
    assert {r.deployment for r in rows} == {"host", "module"}
    for row in rows:
        assert len(row.samples_ns) == 2 and all(ns > 0 for ns in row.samples_ns)
        if row.variant == "plain":
            assert row.speed_vs_plain == 1.0


def test_the_inlined_deployments_run_the_same_c_code_and_sit_beside_the_others() -> None:
    from rich.console import Console

    from host_guests import require_binaryen

    from tvm_wasm.bench.guests import render_guests

    require_binaryen()
    cfg = GuestsConfig(samples=2, warmup=0, min_sample_s=0.0005, paging_mib=1,
                       deployments=("host", "host-inline", "guest-inline"))
    outcome = run_guests(cfg)  # every call's answer is checked against the plain scan of the same deployment
    assert outcome.unavailable == {}
    for deployment in cfg.deployments:
        mine = {(r.program, r.scan, r.variant) for r in outcome.rows if r.deployment == deployment}
        assert len(mine) == 2 * len(RECORD_WAYS) + 2, deployment
    console = Console(width=200, record=True)
    render_guests(outcome.rows, console, "bench guests")
    text = console.export_text()
    header = next(line for line in text.splitlines() if "host-inline" in line and "guest-inline" in line)
    assert header.index("host") < header.index("host-inline") < header.index("guest-inline")


def test_piped_reports_keep_each_row_on_one_line(monkeypatch, capsys) -> None:
    from rich.table import Table

    from tvm_wasm.bench.command import PIPED_WIDTH, report_console

    monkeypatch.delenv("COLUMNS", raising=False)
    console = report_console()  # pytest captures stdout: not a terminal, as when piped
    assert console.width == PIPED_WIDTH
    table = Table()
    for n in range(12):
        table.add_column(f"column {n}")
    table.add_row(*(f"value {n:04}" for n in range(12)))
    console.print(table)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and "value 0011" in lines[3]  # top, header, rule, the row, bottom: nothing wrapped
    monkeypatch.setenv("COLUMNS", "100")
    assert report_console().width == 100  # an explicit width still wins
