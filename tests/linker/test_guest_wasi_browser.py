"""Linked clang guests in headless Chromium through tvm-guest.js, against GuestInstance on the same modules.

A WASI command linked ``--target guest``: ``instantiate`` without imports is ``LinkRefused`` naming every
import before instantiating (the list worded as GuestInstance words it); with a small WASI shim passed as
``{imports}`` it runs to the same exit status and output as ``GuestInstance.run_command``. A freestanding
guest's out-of-bounds store through ``guard()`` reads exactly as GuestInstance's error, user function
included (taken from the trap's stack).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import wasmtime
from c_guests import TVM_ACCESS_C, WASI_COMMAND_C, clang

sys.path.insert(0, str(Path(__file__).parents[1] / "guest"))

from web_harness import find_chromium, run_in_chromium, tvm_guest_js  # noqa: E402

from tvm_wasm import OutOfBounds, StaleHandle  # noqa: E402
from tvm_wasm.guest import BROWSER_MAX_PAGES, BROWSER_META_MAX_PAGES, GuestInstance  # noqa: E402
from tvm_wasm.guest.module_imports import unsatisfied_message  # noqa: E402
from tvm_wasm.linker import link  # noqa: E402

OOB_C = TVM_ACCESS_C + r"""
__attribute__((export_name("scribble_records"))) uint32_t scribble_records(uint32_t n) {
  int64_t h = tvm_alloc(tvm_create_region(1, 4096), 64);
  uint32_t s = 0;
  for (uint32_t i = 0; i < n; i++) { tvm_store_u32(h, 4 * i, i); s += tvm_load_u32(h, 4 * i); }
  return s;
}
__attribute__((export_name("stale"))) uint32_t stale(void) {
  int32_t r = tvm_create_region(1, 4096);
  int64_t h = tvm_alloc(r, 64);
  tvm_destroy_region(r);
  return tvm_load_u32(h, 0);
}
"""

PAGE = """<!doctype html>
<script type="module">
  import { instantiate } from "/tvm-guest.js";
  const report = {};
  // A small WASI preview1 shim: what wasi-libc's printf and _start need, stdout kept as text.
  class Exit { constructor(code) { this.code = code; } }
  function wasiShim(argv) {
    const state = { memory: null, stdout: "" };
    const bytes = argv.map((arg) => new TextEncoder().encode(arg + "\\0"));
    const view = () => new DataView(state.memory.buffer);
    const wasi = {
      args_sizes_get(count, size) {
        view().setUint32(count, bytes.length, true);
        view().setUint32(size, bytes.reduce((n, b) => n + b.length, 0), true);
        return 0;
      },
      args_get(argvAt, bufferAt) {
        bytes.forEach((b, i) => {
          view().setUint32(argvAt + 4 * i, bufferAt, true);
          new Uint8Array(state.memory.buffer, bufferAt, b.length).set(b);
          bufferAt += b.length;
        });
        return 0;
      },
      fd_write(fd, iovs, count, written) {
        let total = 0;
        for (let i = 0; i < count; i++) {
          const at = view().getUint32(iovs + 8 * i, true), length = view().getUint32(iovs + 8 * i + 4, true);
          state.stdout += new TextDecoder().decode(new Uint8Array(state.memory.buffer, at, length));
          total += length;
        }
        view().setUint32(written, total, true);
        return 0;
      },
      fd_fdstat_get(fd, at) { new Uint8Array(state.memory.buffer, at, 24).fill(0); view().setUint8(at, 2); return 0; },
      fd_seek() { return 70; },  // ESPIPE: stdout is a character device
      fd_close() { return 0; },
      proc_exit(code) { throw new Exit(code); },
    };
    return { state, wasi };
  }
  const outcome = async (fn) => { try { return ["ok", await fn()]; } catch (e) { return [e.name, e.message]; } };
  try {
    report.refused = await outcome(() => instantiate("/command.wasm"));
    const { state, wasi } = wasiShim(["command", "50", "4"]);
    const reported = [];
    const g = await instantiate("/command.wasm", { imports: { wasi_snapshot_preview1: wasi, env: { report: (v) => reported.push(v >>> 0) } } });
    state.memory = g.memory;  // the user's memory: the linked module's default memory
    let status = 0;
    try { g.guard(() => g.exports._start()); } catch (e) { if (!(e instanceof Exit)) throw e; status = e.code; }
    report.run = { status, stdout: state.stdout, reported };
    const oob = await instantiate("/oob.wasm");
    report.scribble = await outcome(() => oob.guard(() => oob.exports.scribble_records(2000)));
    report.stale = await outcome(() => oob.guard(() => oob.exports.stale()));
  } catch (error) {
    report.error = String(error && error.stack ? error.stack : error);
  }
  await fetch("/result", { method: "POST", body: JSON.stringify(report) });
</script>
"""


def browser_link(wasm: bytes, **options: object) -> bytes:
    return link(wasm, target="guest", pools=2, max_pages=BROWSER_MAX_PAGES, meta_max_pages=BROWSER_META_MAX_PAGES,
                **options).wasm  # type: ignore[arg-type]


def test_linked_guests_in_chromium_match_guest_instance(binaryen, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium binary found (Debian's chromium package; .ci/run installs it)")
    command = browser_link(clang(WASI_COMMAND_C, tmp_path / "command.wasm", target="wasm32-wasi"),
                           allow_imports=["env.report"])
    oob = browser_link(clang(OOB_C, tmp_path / "oob.wasm"))
    files = {"/": ("text/html", PAGE.encode()), "/tvm-guest.js": ("text/javascript", tvm_guest_js()),
             "/command.wasm": ("application/wasm", command), "/oob.wasm": ("application/wasm", oob)}
    report = run_in_chromium(chromium, files=files)
    assert "error" not in report, report["error"]

    # the refusal: every import, in the module's order, worded as GuestInstance words the list
    module = wasmtime.Module(wasmtime.Engine(), command)
    missing = [(imp.module, imp.name, "function") for imp in module.imports]
    assert report["refused"] == ["LinkRefused", unsatisfied_message(missing, "tvm-guest.js")]
    with pytest.raises(Exception) as on_python:
        GuestInstance(command)
    assert str(on_python.value).split("; ")[0] == report["refused"][1].split("; ")[0]

    # the command with a WASI shim: the status and output GuestInstance.run_command gives
    config = wasmtime.WasiConfig()
    config.argv = ["command", "50", "4"]
    config.stdout_file = str(tmp_path / "out.txt")
    reported: list[int] = []
    status = GuestInstance(command, wasi=config, imports={"env": {"report": reported.append}}).run_command()
    assert report["run"] == {"status": status, "stdout": (tmp_path / "out.txt").read_text(), "reported": reported}
    assert status == 4 and reported == [sum(3 * i + 1 for i in range(50))]

    # guard(): the same class and words as GuestInstance, the user function included
    g = GuestInstance(oob)
    for name, args, error in (("scribble", (2000,), OutOfBounds), ("stale", (), StaleHandle)):
        export = "scribble_records" if name == "scribble" else "stale"
        with pytest.raises(error) as python_error:
            g.call(g.instance, export, *args)
        assert f"(in {export})" in str(python_error.value)
        assert report[name] == [error.__name__, str(python_error.value)], json.dumps(report[name])
