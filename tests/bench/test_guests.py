"""``tvm-wasm bench guests``: the compiled C guests measured side by side, every answer checked."""

from __future__ import annotations

import pytest

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
