"""Bulk operations move the same counters on every layer: the model (``RegionDirectory``, the
specification), ``TvmHost``, the self-contained module (``GuestInstance``) and ``tvm-guest.js``.

After each operation of one sequence, every layer's ``bytes_read``, ``bytes_written`` and
``bytes_discarded`` of both regions equal the model's, and the region the operation used is the most
recently used one (the LRU order the model's access clock gives). A refused operation moves nothing.
"""

from __future__ import annotations

import functools
import json

import pytest

from tvm_wasm import RegionDirectory, RegionKind, TvmError, TvmHost
from tvm_wasm.guest import BROWSER_MAX_PAGES, BROWSER_META_MAX_PAGES, build_module
from tvm_wasm.guest.instance import GuestInstance

COUNTERS = ("bytes_read", "bytes_written", "bytes_discarded")

# (name, Python call on (layer, h0, h1, r1), the same call in tvm-guest.js or None, region it uses or None)
OPS = [
    ("write 64", lambda d, h0, h1, r1: d.write(h0, bytes(range(64))), "g.write(h0, new Uint8Array(64).map((_, i) => i))", 0),
    ("read 64", lambda d, h0, h1, r1: d.read(h0, 64), "g.read(h0, 64)", 0),
    ("read 16 as four u32", lambda d, h0, h1, r1: d.read(h0, 16), 'g.readAs(h0, "u32", 4)', 0),
    ("read 16 of the other region", lambda d, h0, h1, r1: d.read(h1, 16), "g.read(h1, 16)", 1),
    ("fill 32", lambda d, h0, h1, r1: d.fill(h0, 32, 7), None, 0),
    ("discard 8", lambda d, h0, h1, r1: d.discard(h1, 8), "g.discard(h1, 8)", 1),
    ("read 0", lambda d, h0, h1, r1: d.read(h0, 0), "g.read(h0, 0)", 0),
    ("read past the capacity (refused)", lambda d, h0, h1, r1: d.read(h1, 5000), "g.read(h1, 5000)", None),
    ("write past the capacity (refused)", lambda d, h0, h1, r1: d.write(h0, bytes(5000)),
     "g.write(h0, new Uint8Array(5000))", None),
    ("protect, then read a read-only region",
     lambda d, h0, h1, r1: (d.protect(r1), d.read(h1, 8)), "(g.protect(r1), g.read(h1, 8))", 1),
    ("write to a read-only region (refused)", lambda d, h0, h1, r1: d.write(h1, b"x"), "g.write(h1, new Uint8Array(1))",
     None),
    ("read 40 after the refusals", lambda d, h0, h1, r1: d.read(h0, 40), "g.read(h0, 40)", 0),
]


def _model_recency(d: RegionDirectory, region_id: int) -> int:
    return d._region(region_id).last_access


def _host_recency(d: TvmHost, region_id: int) -> tuple[int, ...]:
    return d._recency(d._region(region_id))


def _guest_recency(d: GuestInstance, region_id: int) -> int:
    return int(d.raw("region_last_access", region_id))  # type: ignore[call-overload]


@functools.cache
def _guest_module() -> bytes:
    return build_module(pools=2, max_pages=16).wasm


LAYERS = {
    "model": (RegionDirectory, _model_recency),
    "host": (TvmHost, _host_recency),
    "module": (lambda: GuestInstance(_guest_module()), _guest_recency),
}


def run_sequence(make, recency, ops=OPS) -> list[tuple]:  # type: ignore[no-untyped-def]
    """Per operation: (error class or None, counters of both regions, the more recently used region)."""
    d = make()
    r0, r1 = d.create_region(RegionKind.BLOB_ARENA, 4096), d.create_region(RegionKind.BLOB_ARENA, 4096)
    h0, h1 = d.alloc(r0, 64), d.alloc(r1, 64)
    out = []
    for _name, call, _js, _used in ops:
        try:
            call(d, h0, h1, r1)
            error = None
        except TvmError as exc:
            error = type(exc).__name__
        counters = tuple(getattr(d.metrics(r), c) for r in (r0, r1) for c in COUNTERS)
        out.append((error, counters, 0 if recency(d, r0) > recency(d, r1) else 1))
    close = getattr(d, "close", None)
    if close:
        close()
    return out


def test_the_sequence_exercises_what_it_claims():
    """The model's own outcomes: the refusals are refused, and both regions are used."""
    model = run_sequence(*LAYERS["model"])
    assert [error is not None for error, _, _ in model] == [used is None for *_, used in OPS]
    for (error, _, recent), (*_, used) in zip(model, OPS):
        if used is not None:
            assert recent == used
    assert model[1][1][0] == 64  # read 64 counted in bytes_read


@pytest.mark.parametrize("layer", ["host", "module"])
def test_bulk_operations_move_the_models_counters_and_lru_order(layer: str) -> None:
    """``GuestInstance.read`` counted nothing in ``bytes_read`` while the model counts every byte read."""
    expected = run_sequence(*LAYERS["model"])
    got = run_sequence(*LAYERS[layer])
    mismatched = [(name, e, g) for (name, *_), e, g in zip(OPS, expected, got) if e != g]
    assert mismatched == []


JS_PAGE = """
import { instantiate, RegionKind } from "/tvm-guest.js";
const report = { steps: [] };
try {
  const g = await instantiate("/guest.wasm");
  const r0 = g.createRegion(RegionKind.BLOB_ARENA, 4096), r1 = g.createRegion(RegionKind.BLOB_ARENA, 4096);
  const h0 = g.alloc(r0, 64), h1 = g.alloc(r1, 64);
  const calls = [CALLS];
  for (const call of calls) {
    let error = null;
    try { call(); } catch (e) { error = e.name; }
    const counters = [];
    for (const r of [r0, r1]) { const m = g.metrics(r); counters.push(m.bytesRead, m.bytesWritten, m.bytesDiscarded); }
    const recent = g.exports.region_last_access(r0) > g.exports.region_last_access(r1) ? 0 : 1;
    report.steps.push([error, counters, recent]);
  }
} catch (error) {
  report.error = String(error && error.stack ? error.stack : error);
}
await fetch("/result", { method: "POST", body: JSON.stringify(report) });
"""


def test_tvm_guest_js_bulk_operations_move_the_models_counters():
    """The browser package's ``read`` (and ``readAs``) counted nothing in ``bytesRead`` either."""
    from guest.web_harness import run_script_page

    ops = [op for op in OPS if op[2] is not None]
    expected = [list(step) for step in run_sequence(*LAYERS["model"], ops=ops)]
    module = build_module(pools=2, max_pages=BROWSER_MAX_PAGES, meta_max_pages=BROWSER_META_MAX_PAGES).wasm
    report = run_script_page(JS_PAGE.replace("CALLS", ", ".join(f"() => {js}" for _, _, js, _ in ops)), module)
    assert "error" not in report, report["error"]
    got = [[error, list(counters), recent] for error, counters, recent in report["steps"]]
    expected = [[error, list(counters), recent] for error, counters, recent in expected]
    mismatched = [(name, e, g) for (name, *_), e, g in zip(ops, expected, got) if e != g]
    assert len(got) == len(ops) and mismatched == [], json.dumps(mismatched)
