"""A clang-built module linked for ``--target guest`` runs in headless Chromium, loaded through tvm-guest.js."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from c_guests import expected_fill_sum

sys.path.insert(0, str(Path(__file__).parents[1] / "guest"))

from web_harness import find_chromium, run_in_chromium, tvm_guest_js  # noqa: E402

from tvm_wasm.guest import BROWSER_MAX_PAGES, BROWSER_META_MAX_PAGES  # noqa: E402
from tvm_wasm.linker import link  # noqa: E402

PAGE = """<!doctype html>
<script type="module">
  import { instantiate, RegionKind } from "/tvm-guest.js";
  const report = {};
  try {
    for (const name of ["defined", "imported"]) {
      const g = await instantiate(`/${name}.wasm`);
      const r = g.createRegion(RegionKind.OBJECT_ARENA, 1 << 17);
      const sum = g.exports.fill_sum(r, 65536) >>> 0;
      const bytes = g.regionBytes(r);
      report[name] = { sum, first: Array.from(bytes.subarray(0, 4)), pages: g.memory.buffer.byteLength >> 16 };
    }
  } catch (error) {
    report.error = String(error && error.stack ? error.stack : error);
  }
  await fetch("/result", { method: "POST", body: JSON.stringify(report) });
</script>
"""


def test_linked_c_modules_run_in_chromium(binaryen, c_modules):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium binary found (Debian's chromium package; .ci/run installs it)")
    files = {"/": ("text/html", PAGE.encode()), "/tvm-guest.js": ("text/javascript", tvm_guest_js())}
    for name, wasm in c_modules.items():
        linked = link(wasm, target="guest", pools=2, max_pages=BROWSER_MAX_PAGES, meta_max_pages=BROWSER_META_MAX_PAGES)
        files[f"/{name}.wasm"] = ("application/wasm", linked.wasm)
    report = run_in_chromium(chromium, files=files)
    assert "error" not in report, report["error"]
    first = [(i * 7 + b"linked"[i % 6]) & 0xFF for i in range(4)]
    for name in c_modules:
        assert report[name]["sum"] == expected_fill_sum(65536)
        assert report[name]["first"] == first
        assert report[name]["pages"] >= 3
