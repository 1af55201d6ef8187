"""Other engines: WAMR (AOT, WASI command) and V8 (headless Chromium) run what they can and say why not."""

from __future__ import annotations

import pytest

from tvm_wasm.bench.matrix import Config, run_matrix
from tvm_wasm.bench.v8 import chromium
from tvm_wasm.bench.wamr import tools


def _rows(engines: tuple[str, ...], variants: tuple[str, ...], classes=("sequential_sum", "growth")):
    cfg = Config.quick_config(classes=classes, sizes=(1024,), variants=variants, engines=("wasmtime", *engines),
                              samples=3, layouts=1)
    out = run_matrix(cfg)
    return out, {(r.engine, r.variant, r.cls): r for r in out.rows}


@pytest.mark.skipif(tools() is None, reason="wamr/wamrc not installed (pip install 'tvm-wasm[engines]')")
def test_wamr_runs_m32_and_says_why_not_for_the_rest() -> None:
    out, rows = _rows(("wamr",), ("m32", "m64", "tvm", "guest"))
    for cls in ("sequential_sum", "growth"):
        m32 = rows[("wamr", "m32", cls)]
        assert m32.status == "ok" and len(m32.raw_ns) == 3 and m32.result is not None, m32.notes
        assert m32.speedup_vs_m32 == 1.0  # compared within its own engine
        assert rows[("wamr", "m64", cls)].status == "unavailable" and "memory64" in rows[("wamr", "m64", cls)].notes[0]
        assert rows[("wamr", "tvm", cls)].status == "unavailable"
        assert rows[("wamr", "guest", cls)].status == "unavailable" and "guest module" in rows[("wamr", "guest", cls)].notes[0]
    assert "wamr" in out.engine_notes and "AOT" in out.engine_notes["wamr"]
    assert not out.failures


@pytest.mark.skipif(chromium() is None, reason="no chromium on this machine")
def test_v8_runs_m32_m64_and_guest_in_headless_chromium() -> None:
    out, rows = _rows(("v8",), ("m32", "m64", "guest", "tvm-bulk"))
    assert not out.failures, out.failures
    for cls in ("sequential_sum", "growth"):
        for variant in ("m32", "m64", "guest"):
            row = rows[("v8", variant, cls)]
            assert row.status == "ok" and len(row.raw_ns) == 3 and all(x > 0 for x in row.raw_ns), (variant, row.notes)
        assert rows[("v8", "tvm-bulk", cls)].status == "unavailable"
    assert "Chromium" in out.engine_notes["v8"] or "Chrome" in out.engine_notes["v8"]
