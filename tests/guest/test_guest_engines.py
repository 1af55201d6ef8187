"""Other engines: the module in headless Chromium (V8), and in Node when its V8 has multi-memory.

The JavaScript checks (``web/checks.js``) use the shipped ``tvm-guest.js``:
round trips, placement and growth, isolation inside a pool and across pools,
stale handles, compaction with ``migrate``, tiers, and run-time linking of a
user module through an imports object.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from web_harness import big_assets, find_chromium, run_in_chromium, run_in_node


def failures(report: dict) -> list[str]:
    assert "error" not in report, report.get("error")
    return [f"{r['name']}: {r['detail']}" for r in report["results"] if not r["ok"]]


def test_checks_pass_in_headless_chromium():
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium binary found (Debian's chromium package; .ci/run installs it)")
    report = run_in_chromium(chromium)
    assert "Chrome/" in report["engine"]
    assert failures(report) == []
    assert len(report["results"]) == 9


def test_more_than_4_gib_in_one_chromium_tab():
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium binary found (Debian's chromium package; .ci/run installs it)")
    report = run_in_chromium(chromium, files=big_assets())
    assert "error" not in report, report.get("error")
    regions = report["regions"]
    assert [r["pool"] for r in regions] == [0, 0, 1, 2]
    assert sum(r["capacity"] for r in regions) == 3 * 2**31 + 2**32 - 1  # 10 GiB
    for n, r in enumerate(regions):
        assert (r["first"], r["second"], r["last"]) == (0x10 + n, 0x20 + n, 0xE0 + n)
        assert r["pastEnd"] == 3  # one past the end: the typed access traps as OutOfBounds


def node_has_multi_memory(node: str) -> bool:
    """Node 20 (V8 11.3) refuses a second memory outright; newer ones compile it."""
    probe = "new WebAssembly.Module(new Uint8Array([0,97,115,109,1,0,0,0,5,5,2,0,1,0,1]))"
    return subprocess.run([node, "-e", probe], capture_output=True, timeout=30, check=False).returncode == 0


def test_checks_pass_in_node_when_it_has_multi_memory(tmp_path):
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node binary")
    if not node_has_multi_memory(node):
        pytest.skip("this Node's V8 has no multi-memory (Node 20 / V8 11.3: 'memory count exceeds internal limit of 1')")
    assert failures(run_in_node(node, tmp_path)) == []
