"""``tvm-guest.js`` answers a compaction as Python does: ``compactRegion`` returns a ``HandleRemap``
(region, old and new generation, old offset -> new offset of each live block) equal to
``GuestInstance.compact_region``'s, and ``remap.migrate`` / ``migrate`` move the same handles (it
returned nothing before). The JavaScript side runs in headless Chromium (the module needs multi-memory).
"""

from __future__ import annotations

import json

from web_harness import run_script_page

from tvm_wasm import Freelist, Handle, RegionKind
from tvm_wasm.guest import BROWSER_MAX_PAGES, BROWSER_META_MAX_PAGES, GuestInstance, build_module

SIZES = [16, 40, 8, 100, 24, 64, 8]
FREED = [1, 3, 4]


def python_side(module: bytes) -> list[object]:
    with GuestInstance(module) as g:
        region = g.create_region(RegionKind.OBJECT_ARENA, 4096, allocator=Freelist())
        handles = [g.alloc(region, size) for size in SIZES]
        for i in FREED:
            g.dealloc(handles[i])
        remap = g.compact_region(region)
        moved = [remap.migrate(h) for h in handles]
        same = [g.migrate(h) == m for h, m in zip(handles, moved) if m is not None]
        return [remap.region_id, remap.old_generation, remap.new_generation, sorted(remap.mapping.items()),
                [None if m is None else str(m.pack()) for m in moved], all(same),
                remap.migrate(Handle(region, remap.new_generation, 0)) is None]


SCRIPT = """
  import { instantiate, RegionKind, Allocator, HandleRemap } from "/tvm-guest.js";
  let report;
  try {
    const g = await instantiate("/guest.wasm");
    const region = g.createRegion(RegionKind.OBJECT_ARENA, 4096, { allocator: Allocator.FREELIST });
    const handles = SIZES.map((size) => g.alloc(region, size, { align: 1 }));
    for (const i of FREED) g.dealloc(handles[i]);
    const remap = g.compactRegion(region);
    const moved = handles.map((h) => remap.migrate(h));
    const same = handles.every((h, i) => moved[i] === null || g.migrate(h) === moved[i]);
    const current = BigInt.asIntN(64, (BigInt(region) << 48n) | (BigInt(remap.newGeneration) << 32n));
    report = { result: [remap instanceof HandleRemap && remap.regionId, remap.oldGeneration, remap.newGeneration,
              [...remap.mapping], moved.map((m) => m === null ? null : BigInt.asUintN(64, m).toString()), same,
              remap.migrate(current) === null] };
  } catch (error) {
    report = { error: String(error && error.stack ? error.stack : error) };
  }
  await fetch("/result", { method: "POST", body: JSON.stringify(report) });
"""


def test_compact_region_answers_the_same_handle_remap_in_python_and_javascript():
    module = build_module(pools=1, max_pages=BROWSER_MAX_PAGES, meta_max_pages=BROWSER_META_MAX_PAGES).wasm
    expected = json.loads(json.dumps(python_side(module)))
    report = run_script_page(SCRIPT.replace("SIZES", json.dumps(SIZES)).replace("FREED", json.dumps(FREED)), module)
    assert "error" not in report, report
    assert report["result"] == expected
    assert expected[3] and expected[4].count(None) == len(FREED)
