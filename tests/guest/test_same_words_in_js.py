"""Kind: one fault of the self-contained module, one message, in Python (``GuestInstance``) and in ``tvm-guest.js``.

Both word a failed bulk operation (``read``, ``write``, ``discard``) from the ABI table's ``BULK_ERROR``
and ``BULK_CAUSES``, a handle whose region was never created, was destroyed or is at another generation
(those operations, ``dealloc`` and ``migrate``) from the model's ``core.handle_faults`` (the model and
``TvmHost`` match ``GuestInstance`` in tests/test_handle_faults_across_layers.py), and a ``tvm.*`` import
the module does not serve from ``abi.imports``; the same
script of faults runs on both (the JavaScript side in headless Chromium, the module needing
multi-memory) and every error's class and message must be equal.
"""

from __future__ import annotations

import json

import pytest
import wasmtime
from web_harness import find_chromium, run_in_chromium, tvm_guest_js

from tvm_wasm import Handle, RegionKind
from tvm_wasm.abi.table import ERROR_CODES
from tvm_wasm.guest import BROWSER_MAX_PAGES, BROWSER_META_MAX_PAGES, GuestInstance, build_module

# (what, operation, how to reach the fault): ``h`` the 64-byte block of region 1, ``gone`` a destroyed region's
FAULTS = [
    ("read past the end", "read", "end", 16),
    ("write past the end", "write", "end", 16),
    ("discard past the end", "discard", "end", 16),
    ("read a stale generation", "read", "stale", 4),
    ("write a stale generation", "write", "stale", 4),
    ("read a region never created", "read", "absent", 4),
    ("discard a region never created", "discard", "absent", 4),
    ("write a read-only region", "write", "read-only", 1),
    ("discard in a read-only region", "discard", "read-only", 4),
    ("read a destroyed region", "read", "destroyed", 4),
    ("write a destroyed region", "write", "destroyed", 1),
    ("discard in a destroyed region", "discard", "destroyed", 4),
    ("dealloc a stale generation", "dealloc", "stale", 0),
    ("dealloc in a destroyed region", "dealloc", "destroyed", 0),
    ("dealloc in a region never created", "dealloc", "absent", 0),
    ("migrate a stale generation", "migrate", "stale", 0),
    ("migrate a destroyed region's handle", "migrate", "destroyed", 0),
    ("migrate a region never created", "migrate", "absent", 0),
    ("destroy a destroyed region", "destroy_region", "destroyed", 0),
    ("destroy a region never created", "destroy_region", "absent", 0),
    ("pin a destroyed region", "pin", "destroyed", 0),
    ("ask about a region never created", "region_info", "absent", 0),
]
JS_NAMES = {"destroy_region": "destroyRegion", "region_info": "regionInfo"}  # the rest are spelt alike
UNSERVED = ["checkpoint_add", "rollback", "checkpoint", "trap_code"]  # host-only (three), a runtime internal


def user_wat(name: str) -> str:
    return f'(module (import "tvm" "{name}" (func (param i32) (result i32))))'


def python_side(module: bytes) -> tuple[list[list[str]], list[str]]:
    g = GuestInstance(module)
    errors = []
    try:
        region = g.create_region(RegionKind.OBJECT_ARENA, 4096)
        h = g.alloc(region, 64)
        gone_region = g.create_region(RegionKind.OBJECT_ARENA, 4096)
        gone = g.alloc(gone_region, 8)
        g.destroy_region(gone_region)
        handles = {"end": Handle(region, h.generation, 4090), "stale": Handle(region, h.generation + 1, 0),
                   "absent": Handle(99, 1, 0), "read-only": h, "destroyed": gone}
        for _, operation, fault, length in FAULTS:
            g.protect(region, fault == "read-only")
            handle = handles[fault]
            try:
                if operation == "read":
                    g.read(handle, length)
                elif operation == "write":
                    g.write(handle, bytes(length))
                elif operation == "dealloc":
                    g.dealloc(handle)
                elif operation == "migrate":
                    g.migrate(handle)
                elif operation in ("destroy_region", "pin", "region_info"):
                    getattr(g, operation)(handle.region_id)
                else:
                    g.discard(handle, length)
            except Exception as error:  # noqa: BLE001 - compared by class name and message
                errors.append([type(error).__name__, str(error)])
            else:
                errors.append(["none", ""])
            assert g.last_error() == 0  # each failure reported once
        refusals = []
        for name in UNSERVED:
            with pytest.raises(ValueError) as refused:
                g.link(user_wat(name))
            refusals.append(str(refused.value).removeprefix("cannot link the user module: "))
    finally:
        g.close()
    return errors, refusals


PAGE = """<!doctype html>
<script type="module">
  import { instantiate, RegionKind, packHandle, offsetHandle } from "/tvm-guest.js";
  const faults = FAULTS;
  const names = JS_NAMES;
  const report = { errors: [], refusals: [] };
  try {
    const g = await instantiate("/guest.wasm");
    const region = g.createRegion(RegionKind.OBJECT_ARENA, 4096);
    const h = g.alloc(region, 64);
    const goneRegion = g.createRegion(RegionKind.OBJECT_ARENA, 4096);
    const gone = g.alloc(goneRegion, 8);
    g.destroyRegion(goneRegion);
    const generation = Number((h >> 32n) & 0xffffn);
    const handles = { end: offsetHandle(h, 4090), stale: packHandle(region, generation + 1, 0),
                      absent: packHandle(99, 1, 0), "read-only": h, destroyed: gone };
    for (const [, operation, fault, length] of faults) {
      g.protect(region, fault === "read-only");
      try {
        if (operation === "read") g.read(handles[fault], length);
        else if (operation === "write") g.write(handles[fault], new Uint8Array(length));
        else if (operation === "dealloc") g.dealloc(handles[fault]);
        else if (operation === "migrate") g.migrate(handles[fault]);
        else if (operation in names || operation === "pin") g[names[operation] ?? operation](Number(handles[fault] >> 48n));
        else g.discard(handles[fault], length);
        report.errors.push(["none", ""]);
      } catch (error) {
        report.errors.push([error.name, error.message]);
      }
    }
    for (const name of UNSERVED) {
      try { await g.link(`/user-${name}.wasm`); report.refusals.push("linked"); }
      catch (error) { report.refusals.push(`${error.name}: ${error.message}`); }
    }
  } catch (error) {
    report.error = String(error && error.stack ? error.stack : error);
  }
  await fetch("/result", { method: "POST", body: JSON.stringify(report) });
</script>
"""


def test_every_bulk_fault_reads_the_same_in_python_and_javascript():
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium binary found (Debian's chromium package; .ci/run installs it)")
    module = build_module(pools=1, max_pages=BROWSER_MAX_PAGES, meta_max_pages=BROWSER_META_MAX_PAGES).wasm
    errors, refusals = python_side(module)
    page = (PAGE.replace("FAULTS", json.dumps(FAULTS)).replace("UNSERVED", json.dumps(UNSERVED))
            .replace("JS_NAMES", json.dumps(JS_NAMES)))
    files = {"/": ("text/html", page.encode()), "/tvm-guest.js": ("text/javascript", tvm_guest_js()),
             "/guest.wasm": ("application/wasm", module)}
    for name in UNSERVED:
        files[f"/user-{name}.wasm"] = ("application/wasm", bytes(wasmtime.wat2wasm(user_wat(name))))
    report = run_in_chromium(chromium, files=files)
    assert "error" not in report, report["error"]
    assert report["errors"] == errors
    assert report["refusals"] == [f"LinkRefused: {message}" for message in refusals]
    assert all(name != "none" for name, _ in errors)
    assert "host-only ABI function" in refusals[0] and "runtime internal" in refusals[-1]


def test_the_python_words_come_from_the_table():
    module = build_module(pools=1, max_pages=16).wasm
    errors, _ = python_side(module)
    meaning = {e.name: e.meaning for e in ERROR_CODES}
    assert errors[0] == ["OutOfBounds", "read(r1@1+4090) of 16 byte(s): outside the region's capacity "
                                        "[region=1, gen=1, offset=0xffa, len=16, capacity=4096]"]  # handle_faults
    assert errors[3][1].startswith("read(r1@2+0) of 4 byte(s): region r1 at generation 1 [")  # REGION_STATES
    assert errors[5] == ["RegionNotFound", "read(r99@1+0) of 4 byte(s): no region r99 [region=99, gen=1, offset=0x0, len=4]"]
    assert errors[7] == ["ReadOnly", f"write(r1@1+0) of 1 byte(s): {meaning['READ_ONLY']} "
                                     "[region=1, gen=1, offset=0x0, len=1]"]
    assert [e[1].split(": ", 1)[1].split(" [")[0] for e in errors[9:12]] == ["region r2 was destroyed"] * 3
    assert {e[0] for e in errors[9:12]} == {"StaleHandle"}
    assert errors[12:15] == [  # no length: HANDLE_ERROR
        ["StaleHandle", "dealloc(r1@2+0): region r1 at generation 1 [region=1, gen=2, offset=0x0]"],
        ["StaleHandle", "dealloc(r2@1+0): region r2 was destroyed [region=2, gen=1, offset=0x0]"],
        ["RegionNotFound", "dealloc(r99@1+0): no region r99 [region=99, gen=1, offset=0x0]"],
    ]
    assert [e[1].split(" [")[0] for e in errors[15:18]] == [
        "migrate(r1@2+0): region r1 at generation 1", "migrate(r2@1+0): region r2 was destroyed",
        "migrate(r99@1+0): no region r99"]
    assert errors[18:] == [["RegionNotFound", "region r2 was destroyed [region=2]"],  # a region named by id
                           ["RegionNotFound", "no region r99 [region=99]"],
                           ["RegionNotFound", "region r2 was destroyed [region=2]"],
                           ["RegionNotFound", "no region r99 [region=99]"]]


# ---------------------------------------------------------------- past the capacity, compaction refused, malformed arguments
# (name, the call in Python on GuestInstance ``g``, the same call in JavaScript): region 1 Bump with a block ``h``,
# region 2 a pinned Freelist with a 16-byte block, region 3 an empty Slab of 32-byte slots, region 4 a full one
# of one slot; ``end`` is ``h`` moved to offset 4090.
MORE_FAULTS = [
    ("read past the capacity", lambda g, h, end: g.read(end, 8), "g.read(end, 8)"),
    ("write past the capacity", lambda g, h, end: g.write(end, bytes(8)), "g.write(end, new Uint8Array(8))"),
    ("discard past the capacity", lambda g, h, end: g.discard(end, 8), "g.discard(end, 8)"),
    ("view past the capacity", lambda g, h, end: g.handle_view(end, 8), "g.view(end, 'u8', 8)"),
    ("compact a Bump region", lambda g, h, end: g.compact_region(1), "g.compactRegion(1)"),
    ("compact a pinned region", lambda g, h, end: g.compact_region(2), "g.compactRegion(2)"),
    ("compact a Slab region", lambda g, h, end: g.compact_region(3), "g.compactRegion(3)"),
    ("alloc past a Bump region's room", lambda g, h, end: g.alloc(1, 8000, align=8), "g.alloc(1, 8000, { align: 8 })"),
    ("alloc an empty Freelist block", lambda g, h, end: g.alloc(2, 0, align=8), "g.alloc(2, 0, { align: 8 })"),
    ("alloc too large a Freelist block", lambda g, h, end: g.alloc(2, 5000, align=4), "g.alloc(2, 5000, { align: 4 })"),
    ("alloc another size from a Slab", lambda g, h, end: g.alloc(3, 16, align=8), "g.alloc(3, 16, { align: 8 })"),
    ("alloc a Slab slot aligned past its class", lambda g, h, end: g.alloc(3, 32, align=64), "g.alloc(3, 32, { align: 64 })"),
    ("alloc from a full Slab", lambda g, h, end: g.alloc(4, 32, align=8), "g.alloc(4, 32, { align: 8 })"),
    ("dealloc inside a Freelist block", lambda g, h, end: g.dealloc(Handle(2, 1, 4)), "g.dealloc(packHandle(2, 1, 4))"),
    ("dealloc past the capacity", lambda g, h, end: g.dealloc(Handle(2, 1, 5000)), "g.dealloc(packHandle(2, 1, 5000))"),
    ("dealloc between Slab slots", lambda g, h, end: g.dealloc(Handle(3, 1, 4)), "g.dealloc(packHandle(3, 1, 4))"),
    ("dealloc a free Slab slot", lambda g, h, end: g.dealloc(Handle(3, 1, 32)), "g.dealloc(packHandle(3, 1, 32))"),
    ("dealloc between a full Slab's slots", lambda g, h, end: g.dealloc(Handle(4, 1, 8)), "g.dealloc(packHandle(4, 1, 8))"),
    ("alloc a str region id", lambda g, h, end: g.alloc("1", 8), "g.alloc('1', 8)"),
    ("alloc a bool region id", lambda g, h, end: g.alloc(True, 8), "g.alloc(true, 8)"),
    ("alloc a fractional size", lambda g, h, end: g.alloc(1, 8.5), "g.alloc(1, 8.5)"),
    ("alloc a negative size", lambda g, h, end: g.alloc(1, -1), "g.alloc(1, -1)"),
    ("alloc 2**40 bytes", lambda g, h, end: g.alloc(1, 1 << 40), "g.alloc(1, 2 ** 40)"),
    ("alloc align 3", lambda g, h, end: g.alloc(1, 8, align=3), "g.alloc(1, 8, { align: 3 })"),
    ("alloc in region 0", lambda g, h, end: g.alloc(0, 8), "g.alloc(0, 8)"),
    ("alloc in region 70000", lambda g, h, end: g.alloc(70000, 8), "g.alloc(70000, 8)"),
    ("read a fractional length", lambda g, h, end: g.read(h, 1.5), "g.read(h, 1.5)"),
    ("read a negative length", lambda g, h, end: g.read(h, -1), "g.read(h, -1)"),
    ("read a None length", lambda g, h, end: g.read(h, None), "g.read(h, null)"),
    ("read a packed handle", lambda g, h, end: g.read(h.to_i64(), 4), "g.read(Number(h), 4)"),
    ("discard a str length", lambda g, h, end: g.discard(h, "4"), "g.discard(h, '4')"),
    ("pin a str region id", lambda g, h, end: g.pin("2"), "g.pin('2')"),
    ("pin region -1", lambda g, h, end: g.pin(-1), "g.pin(-1)"),
    ("destroy a fractional region id", lambda g, h, end: g.destroy_region(1.5), "g.destroyRegion(1.5)"),
    ("region info of None", lambda g, h, end: g.region_info(None), "g.regionInfo(null)"),
    ("create capacity 0", lambda g, h, end: g.create_region(RegionKind.OBJECT_ARENA, 0),
     "g.createRegion(RegionKind.OBJECT_ARENA, 0)"),
    ("create a str capacity", lambda g, h, end: g.create_region(RegionKind.OBJECT_ARENA, "64"),
     "g.createRegion(RegionKind.OBJECT_ARENA, '64')"),
]
PAYLOAD = bytes(range(64))


def more_python_side(module: bytes) -> list[list[str]]:
    from tvm_wasm import Freelist, Slab

    g = GuestInstance(module)
    said = []
    try:
        region = g.create_region(RegionKind.OBJECT_ARENA, 4096)
        h = g.alloc(region, 64)
        g.write(h, PAYLOAD)
        heap = g.create_region(RegionKind.HOT_HEAP, 4096, allocator=Freelist())
        g.alloc(heap, 16)
        g.pin(heap)
        g.create_region(RegionKind.OBJECT_ARENA, 4096, allocator=Slab(32))
        g.alloc(g.create_region(RegionKind.OBJECT_ARENA, 32, allocator=Slab(32)), 32)
        for _, call, _ in MORE_FAULTS:
            try:
                call(g, h, h.with_offset(4090))
            except Exception as error:  # noqa: BLE001 - compared by class name and message
                said.append(["RangeError" if type(error) is ValueError else type(error).__name__, str(error)])
            else:
                said.append(["none", ""])
            assert g.last_error() == 0 and g.read(h, 64) == PAYLOAD  # reported once; nothing stored changed
    finally:
        g.close()
    return said


MORE_PAGE = """
  import { instantiate, RegionKind, Allocator, offsetHandle, packHandle } from "/tvm-guest.js";
  const report = { errors: [] };
  try {
    const g = await instantiate("/guest.wasm");
    const region = g.createRegion(RegionKind.OBJECT_ARENA, 4096);
    const h = g.alloc(region, 64);
    g.write(h, Uint8Array.from({ length: 64 }, (_, i) => i));
    const heap = g.createRegion(RegionKind.HOT_HEAP, 4096, { allocator: Allocator.FREELIST });
    g.alloc(heap, 16);
    g.pin(heap);
    g.createRegion(RegionKind.OBJECT_ARENA, 4096, { allocator: Allocator.SLAB, classSize: 32 });
    g.alloc(g.createRegion(RegionKind.OBJECT_ARENA, 32, { allocator: Allocator.SLAB, classSize: 32 }), 32);
    const end = offsetHandle(h, 4090);
    const calls = [CALLS];
    for (const call of calls) {
      try { call(); report.errors.push(["none", ""]); }
      catch (error) { report.errors.push([error.name, error.message]); }
      const back = g.read(h, 64);
      if (g.lastError() !== 0 || back.some((byte, i) => byte !== i)) report.error = "a refused call changed something";
    }
  } catch (error) {
    report.error = String(error && error.stack ? error.stack : error);
  }
  await fetch("/result", { method: "POST", body: JSON.stringify(report) });
"""


def test_past_the_capacity_refused_compaction_and_malformed_arguments_read_the_same_in_javascript():
    """``tvm-guest.js`` takes the words from its generated block (``core.handle_faults``, ``core.arguments``):
    the same class (``RangeError`` where Python raises ``ValueError``) and message as ``GuestInstance``,
    which says what the model says (tests/test_fault_words_across_layers.py)."""
    from web_harness import run_script_page

    module = build_module(pools=1, max_pages=BROWSER_MAX_PAGES, meta_max_pages=BROWSER_META_MAX_PAGES).wasm
    expected = more_python_side(module)
    calls = ", ".join(f"() => {js}" for _, _, js in MORE_FAULTS)
    report = run_script_page(MORE_PAGE.replace("CALLS", calls), module)
    assert "error" not in report, report["error"]
    assert len(report["errors"]) == len(expected) == len(MORE_FAULTS)
    mismatched = [(name, js, py) for (name, _, _), js, py in zip(MORE_FAULTS, report["errors"], expected) if js != py]
    assert mismatched == []
    assert all(name != "none" for name, _ in expected)
