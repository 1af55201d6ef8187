"""The web package: ``tvm-wasm guest build --web DIR``, packed by npm, checked in headless Chromium.

The package's own page (``test/index.html``) runs every input of the browser
deployment's acceptance list, the OPFS Cold tier (spill, fault-in, a flipped
byte and a torn file refused, an LRU budget), a clang-built module that
imports ``env.memory``, and property cases generated here; the same cases run
on the Python driver of the same module (wasmtime) and the two must agree.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import wasmtime
from guest_helpers import engine
from web_harness import directory_assets, find_chromium, run_in_chromium

from tvm_wasm.abi.table import ABI, ALLOCATORS, ERROR_CODES, OnError
from tvm_wasm.cli import main
from tvm_wasm.core.allocators import Bump, Freelist, Slab
from tvm_wasm.core.errors import BackingStoreError, TvmError, error_for_code
from tvm_wasm.core.handle import Handle
from tvm_wasm.core.types import RegionKind
from tvm_wasm.guest import build_module, web
from tvm_wasm.guest.bench_reuse import chromium_reuse
from tvm_wasm.guest.instance import GuestInstance
from tvm_wasm.guest.module import ABI_VERSION, abi_fingerprint

ELEMENT_SIZES = {"u8": 1, "i8": 1, "u8c": 1, "u16": 2, "i16": 2, "u32": 4, "i32": 4, "f32": 4, "f64": 8, "u64": 8, "i64": 8}
POOL_BYTES = 256 * 65536  # --browser


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("web") / "pkg"
    assert main(["guest", "build", "--pools", "3", "--browser", "--web", str(target)]) == 0
    return target


def test_the_shipped_js_is_generated_from_the_current_abi():
    web.check_shipped_js()
    text = web.shipped_js()
    assert f"export const ABI_VERSION = {ABI_VERSION};" in text
    assert f"0x{abi_fingerprint():08x}" in text


def test_package_layout_and_versions(package):
    names = {p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()}
    assert {"package.json", "tvm-guest.js", "tvm-guest.d.ts", "guest.wasm", "API.md", "README.md",
            "example/index.html", "example/c-guest.c", "test/index.html", "test/checks.js"} <= names
    meta = json.loads((package / "package.json").read_text())
    assert meta["type"] == "module" and meta["types"] == "./tvm-guest.d.ts" and meta["private"] is True
    assert meta["tvm"]["abiVersion"] == ABI_VERSION and meta["tvm"]["abiFingerprint"] == f"0x{abi_fingerprint():08x}"
    assert meta["engines"] == {"node": ">=22"}  # the first Node.js with multi-memory by default
    assert "Node.js 22" in (package / "README.md").read_text()
    dts = (package / "tvm-guest.d.ts").read_text()
    assert "  alloc_aligned(region: number, size: number, align: number): bigint;" in dts
    reference = (package / "API.md").read_text()
    assert "| `restore_region(id: number): number` |" in reference and "## `ColdTier`" in reference


TS_OF_WASM = {"i32": "number", "i64": "bigint", "f32": "number", "f64": "number"}  # the wasm JS API's conversions


def declared_raw_exports(dts: str) -> tuple[dict[str, tuple[str, str, str]], set[str], set[str]]:
    """``RawExports`` of a ``.d.ts``: functions (name -> params, result, doc; per-pool families as
    ``load_u8_p{k}``), globals and memories (``mem{k}`` for the pool pattern)."""
    body = dts.split("export interface RawExports {", 1)[1].split("\n}\n", 1)[0]
    functions, globals_, memories = {}, set(), set()
    for doc, declaration in re.findall(r"/\*\*(.*?)\*/\s*\n\s*([^\n]+);", body, re.S):
        if match := re.fullmatch(r"(\w+)\((.*)\): (\w+)", declaration):
            functions[match[1]] = (match[2], match[3], doc)
        elif match := re.fullmatch(r"\[name: `(\w+)\$\{number\}`\]: \((.*)\) => (\w+)", declaration):
            functions[match[1] + "{k}"] = (match[2], match[3], doc)
        elif match := re.fullmatch(r"readonly (\w+): WebAssembly\.Global", declaration):
            globals_.add(match[1])
        elif match := re.fullmatch(r"readonly (?:(\w+)|\[pool: `(\w+)\$\{number\}`\]): WebAssembly\.Memory",
                                   declaration):
            memories.add(match[1] or match[2] + "{k}")
        else:
            raise AssertionError(f"unexpected RawExports member {declaration!r}")
    return functions, globals_, memories


def test_raw_export_types_and_docs_are_the_abi_tables_and_the_modules(package):
    """The .d.ts's ``RawExports`` and API.md's raw section are the table's module functions, with its docs
    and error behaviour, and match the exports of the package's own guest.wasm (the table against the
    module's exports for every build: tests/abi/test_abi_table.py)."""
    functions, globals_, memories = declared_raw_exports((package / "tvm-guest.d.ts").read_text())
    module = wasmtime.Module(engine(), (package / "guest.wasm").read_bytes())
    pools = json.loads((package / "package.json").read_text())["tvm"]["pools"]
    exported = {e.name: e.type for e in module.exports}
    wasm_functions = {name: t for name, t in exported.items() if isinstance(t, wasmtime.FuncType)}
    expanded = {name.replace("{k}", str(k)): name for name in functions for k in range(pools)}
    assert set(wasm_functions) == set(expanded), set(wasm_functions) ^ set(expanded)
    for name, family in expanded.items():
        params, result, _ = functions[family]
        func_type = wasm_functions[name]
        assert [p.split(": ")[1] for p in params.split(", ") if p] == [TS_OF_WASM[str(t)] for t in func_type.params]
        assert result == (TS_OF_WASM[str(func_type.results[0])] if func_type.results else "void"), name
    assert globals_ == {n for n, t in exported.items() if isinstance(t, wasmtime.GlobalType)}
    assert {m.replace("{k}", str(k)) for m in memories for k in range(pools)} == {
        n for n, t in exported.items() if isinstance(t, wasmtime.MemoryType)}

    reference = (package / "API.md").read_text()
    served = {f.name: f for f in ABI if f.module}
    assert set(functions) == set(served)
    failure = {OnError.CODE: "returns the error code", OnError.TRAP: "traps", OnError.NEVER: "Cannot fail"}
    for name, entry in served.items():
        params, result, doc = functions[name]
        assert [p.split(": ")[0] for p in params.split(", ") if p] == [p.name for p in entry.params], name
        assert entry.summary in doc, name
        row = next(line for line in reference.splitlines() if line.startswith(f"| `{name}("))
        assert entry.summary.replace("|", "\\|") in row, name
        if entry.on_error is OnError.SENTINEL:
            sentinel = "`-code` (negative)" if entry.negative_codes else (
                f"`{entry.sentinel}{'n' if result == 'bigint' else ''}`")
            assert f"returns {sentinel}, with the code in `last_error`" in doc, name
            assert sentinel in row, name
        else:
            assert failure[entry.on_error] in doc, name
    assert "returns `0n`, with the code in `last_error`" in functions["alloc"][2]  # a handle's sentinel is a BigInt
    assert "returns `-2n`" in functions["find_byte"][2]


def run_in_node(package: Path, tmp_path: Path, body: str) -> dict:
    """Run ``body`` in Node after ``import * as tvm`` of the package's ES module; its JSON output."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("no node binary")
    shutil.copy(package / "tvm-guest.js", tmp_path / "tvm-guest.mjs")
    script = tmp_path / "probe.mjs"
    script.write_text('import * as tvm from "./tvm-guest.mjs";\n' + body)
    done = subprocess.run([node, str(script)], capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


def test_the_js_constants_are_the_abi_tables(package, tmp_path):
    """tvm-guest.js's enums and error classes, as Node loads them, carry the table's and the model's values."""
    found = run_in_node(package, tmp_path, f"""
const classes = Object.fromEntries({json.dumps(list(web.JS_ERRORS))}.map((name) => [name, tvm[name].code]));
const plain = (e) => Object.fromEntries(Object.keys(e).map((k) => [k, e[k]]));
console.log(JSON.stringify({{ errorCode: plain(tvm.ErrorCode), regionKind: plain(tvm.RegionKind),
  allocator: plain(tvm.Allocator), residency: plain(tvm.Residency), classes, base: tvm.TvmError.code }}));
""")
    assert found["errorCode"] == {e.name: e.code for e in ERROR_CODES}
    assert found["regionKind"] == {k.name: int(k) for k in RegionKind}
    assert found["allocator"] == {**{a.name: a.value for a in ALLOCATORS}, "BLOCKS": 1}
    assert found["residency"] == {"HOT": 0, "WARM": 1, "COLD": 2}
    from tvm_wasm.core import errors

    for name, code in found["classes"].items():
        assert code == (getattr(errors, name).code if hasattr(errors, name) else 9), name
    assert found["base"] == errors.TvmError.code


def test_npm_pack_packs_the_package(package, tmp_path):
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("no npm binary (Debian's npm package)")
    done = subprocess.run([npm, "pack", str(package), "--pack-destination", str(tmp_path), "--json"],
                          capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    tarball = tmp_path / json.loads(done.stdout)[0]["filename"]
    with tarfile.open(tarball) as archive:
        packed = {name.removeprefix("package/") for name in archive.getnames()}
    assert {"package.json", "tvm-guest.js", "tvm-guest.d.ts", "guest.wasm", "API.md", "example/index.html"} <= packed
    assert not any(name.startswith("test/") for name in packed)


# ---------------------------------------------------------------- property cases
def make_cases(seed: int, count: int) -> list[dict]:
    """Random operation sequences: sizes up to and beyond 2**32, every element type, growth while viewing."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        ops: list[dict] = []
        regions = 0
        handles = 0
        spilled: list[int] = []
        for _ in range(rng.randint(3, 10)):
            choice = rng.random()
            if regions == 0 or choice < 0.3:
                valid = [rng.randint(1, 4096), rng.randint(4097, 3 << 20)]
                invalid = [POOL_BYTES + rng.randint(1, 9), 2**32 + rng.randint(0, 4096), 2**32 - 1, 2**32, 0,
                           rng.randint(2**33, 2**53)]
                capacity = rng.choice(valid) if rng.random() < 0.75 else rng.choice(invalid)
                allocator = rng.choice([0, 0, 1, 2])
                op = {"op": "create", "kind": rng.choice([1, 2, 3]), "capacity": str(capacity), "allocator": allocator}
                if allocator == 2:
                    op["classSize"] = rng.choice([8, 12, 16, 64])
                ops.append(op)
                regions += 1
            elif handles == 0 or choice < 0.65:
                size = (rng.choice([rng.randint(1, 512), rng.randint(1, 64) * 8]) if rng.random() < 0.8
                        else rng.choice([2**32 + 8, 2**32 - 1, 0]))
                ops.append({"op": "alloc", "region": rng.randrange(regions), "size": str(size),
                            "align": rng.choice([0, 1, 2, 4, 8, 16, 64])})
                handles += 1
            elif choice < 0.75:
                kind = rng.choice(list(ELEMENT_SIZES))
                ops.append({"op": "typed", "handle": rng.randrange(handles), "type": kind, "count": rng.randint(1, 8),
                            "seed": rng.randrange(256), "growBy": rng.choice([64, 1 << 20, 6 << 20])})
            elif spilled and choice < 0.95 and rng.random() < 0.5:  # fault a region spilled before
                ops.append({"op": "fault", "region": spilled.pop(), "corrupt": rng.choice(["none", "none", "flip", "truncate"])})
            elif choice < 0.84:
                spilled.append(rng.randrange(regions))
                ops.append({"op": "spill", "region": spilled[-1]})
            elif choice < 0.87:  # any region, Cold or not
                ops.append({"op": "fault", "region": rng.randrange(regions), "corrupt": "none"})
            else:
                ops.append({"op": "destroy", "region": rng.randrange(regions)})
        cases.append({"ops": ops})
    return cases


def error_name(error: Exception) -> str:
    if isinstance(error, ValueError):
        return "RangeError"  # a malformed argument: ValueError in Python, RangeError in JavaScript
    return type(error).__name__


def predict(instance: GuestInstance, case: dict) -> list[dict]:
    """The outcomes the Python driver of the same module gives (the JavaScript page must match)."""
    out: list[dict] = []
    ids: list[int] = []
    handles: list = []
    sizes: list[int] = []
    model: dict[int, Bump] = {}
    cold: dict[int, bytes] = {}  # Cold regions' bytes, as the page's OPFS files hold them
    corrupt: set[int] = set()  # regions whose Cold copy the page damaged
    for op in case["ops"]:
        missing = (not ids[op["region"]] if op["op"] in ("alloc", "destroy", "spill", "fault")
                   else handles[op["handle"]] is None if op["op"] == "typed" else False)
        if missing:  # refers to a create or alloc that failed
            out.append({"skipped": True})
            if op["op"] == "alloc":
                handles.append(None)
                sizes.append(0)
            continue
        try:
            if op["op"] == "create":
                allocator = {0: None, 1: Freelist(), 2: Slab(op.get("classSize", 8))}[op["allocator"]]
                region = instance.create_region(RegionKind(op["kind"]), int(op["capacity"]), allocator=allocator)
                ids.append(region)
                info = instance.region_info(region)
                out.append({"id": region, "pool": info.pool, "base": info.base, "capacity": info.capacity})
                if op["allocator"] == 0:
                    model[region] = Bump()
                    model[region].attach(info.capacity)
            elif op["op"] == "alloc":
                region, size = ids[op["region"]], int(op["size"])
                handle = instance.alloc(region, size, align=op["align"])
                handles.append(handle)
                sizes.append(size)
                if region in model:  # the model's Bump agrees on every offset (default align 8)
                    assert model[region].alloc(size, op["align"] or 8) == handle.offset
                out.append({"offset": handle.offset})
            elif op["op"] == "typed":
                handle = handles[op["handle"]]
                length = op["count"] * ELEMENT_SIZES[op["type"]]
                data = bytes((i * 131 + op["seed"]) & 0xFF for i in range(length))
                instance.write(handle, data)
                back = instance.read(handle, length)
                if handle.offset % ELEMENT_SIZES[op["type"]]:  # spans are 16-byte aligned: offset decides
                    raise ValueError("a typed view needs an aligned address")
                scratch = instance.create_region(RegionKind.SCRATCH, op["growBy"])
                instance.destroy_region(scratch)
                digest = 0
                for byte in back:
                    digest = (digest * 31 + byte) & 0xFFFF_FFFF
                out.append({"same": back == data, "viewSame": True, "hash": digest})
            elif op["op"] == "spill":
                region = ids[op["region"]]
                info = instance.region_info(region)  # RegionNotFound first, like the page
                held = None if region in cold else instance.read(Handle(region, info.generation, 0), info.capacity)
                code = int(instance.raw("begin_spill", region))
                if code:
                    instance.last_error()
                    raise error_for_code(code, "spill")
                cold[region] = held
                assert int(instance.raw("finish_spill", region)) == 0
                out.append({"spilled": True})
            elif op["op"] == "fault":
                region = ids[op["region"]]
                instance.region_info(region)
                if region not in cold:
                    out.append({"faulted": False})
                    continue
                if op["corrupt"] != "none" or region in corrupt:
                    corrupt.add(region)
                    raise BackingStoreError("fault")
                code = int(instance.raw("restore_region", region))
                if code:
                    instance.last_error()
                    raise error_for_code(code, "fault")
                info = instance.region_info(region)
                instance.write(Handle(region, info.generation, 0), cold.pop(region))
                out.append({"faulted": True, "pool": info.pool, "base": info.base})
            elif op["op"] == "destroy":
                instance.destroy_region(ids[op["region"]])
                cold.pop(ids[op["region"]], None)
                out.append({"destroyed": True})
        except (TvmError, ValueError) as error:
            out.append({"error": error_name(error)})
            if op["op"] == "create":
                ids.append(0)
            if op["op"] == "alloc":
                handles.append(None)
                sizes.append(0)
    for region in ids:
        if region:
            try:
                instance.destroy_region(region)
            except TvmError:
                pass
    return out


MIGRATE_PROBES = [0, 7, 8, 99, 100, 107, 108, 4095, 4096, 5007, 5008, 9000, 12304]  # as checks.js probes after a rollback


def make_checkpoint_cases(seed: int, count: int) -> list[dict]:
    """Random writes (some across page ends) and discards, allocs, checkpoints of region subsets, rollbacks, releases,
    a caller's clear_dirty, read-only spells and destroys over two or three small regions."""
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        capacities = [rng.choice([100, 4096, 3 * 4096 + 17, 9 * 4096]) for _ in range(rng.randint(2, 3))]
        ops: list[dict] = [{"op": "create", "capacity": c} for c in capacities]
        taken = 0
        for _ in range(rng.randint(8, 24)):
            choice = rng.random()
            region = rng.randrange(len(capacities))
            if choice < 0.4:
                offset = rng.randrange(capacities[region])
                length = rng.randint(1, min(6000, capacities[region] - offset + (8 if rng.random() < 0.1 else 0)))
                ops.append({"op": "write", "region": region, "offset": offset, "length": length, "seed": rng.randrange(256)})
                if rng.random() < 0.2:  # zero part of it again (discard: another path that changes bytes)
                    ops.append({"op": "discard", "region": region, "offset": offset, "length": rng.randint(1, length)})
            elif choice < 0.5:
                ops.append({"op": "alloc", "region": region, "size": rng.choice([8, 100, 5000])})
            elif choice < 0.7 or not taken:
                regions = rng.sample(range(len(capacities)), rng.randint(1, len(capacities)))
                ops.append({"op": "checkpoint", "regions": regions})
                taken += 1
            elif choice < 0.85:
                ops.append({"op": "rollback", "checkpoint": rng.randrange(taken)})
            elif choice < 0.9:
                ops.append({"op": "release", "checkpoint": rng.randrange(taken)})
            elif choice < 0.94:
                ops.append({"op": "clear", "region": region})
            elif choice < 0.985:
                ops.append({"op": "protect", "region": region, "readOnly": rng.random() < 0.6})
            else:
                ops.append({"op": "destroy", "region": region})
        cases.append({"ops": ops})
    return cases


def predict_checkpoints(instance: GuestInstance, case: dict) -> list[dict]:
    """The outcomes of a checkpoint case on the Python driver of the same module (the page must match)."""
    out: list[dict] = []
    ids: list[int] = []
    taken: list = []

    def whole(region: int) -> bytes:
        info = instance.region_info(region)
        return instance.read(Handle(region, info.generation, 0), info.capacity)

    def digest(data: bytes) -> int:
        value = 0
        for byte in data:
            value = (value * 31 + byte) & 0xFFFF_FFFF
        return value

    for op in case["ops"]:
        region = ids[op["region"]] if "region" in op else 0
        try:
            if op["op"] == "create":
                ids.append(instance.create_region(RegionKind.BLOB_ARENA, op["capacity"]))
                out.append({"id": ids[-1]})
            elif op["op"] == "write":
                data = bytes((i * 131 + op["seed"]) & 0xFF for i in range(op["length"]))
                instance.write(Handle(region, instance.region_info(region).generation, op["offset"]), data)
                out.append({"ok": True})
            elif op["op"] == "discard":
                instance.discard(Handle(region, instance.region_info(region).generation, op["offset"]), op["length"])
                out.append({"ok": True})
            elif op["op"] == "alloc":
                out.append({"offset": instance.alloc(region, op["size"], align=8).offset})
            elif op["op"] == "checkpoint":
                regions = [ids[k] for k in op["regions"]]
                taken.append((instance.checkpoint(regions), regions))
                out.append({"pages": taken[-1][0].pages_copied})
            elif op["op"] == "release":
                instance.release_checkpoint(taken[op["checkpoint"]][0])
                out.append({"released": True})
            elif op["op"] == "rollback":
                checkpoint, regions = taken[op["checkpoint"]]
                remaps = instance.rollback(checkpoint)
                generations = {str(r): [m.old_generation, m.new_generation] for r, m in remaps.items()}
                migrates = {str(r): [o for o in MIGRATE_PROBES if o < instance.region_info(r).capacity
                                     and m.migrate(Handle(r, m.old_generation, o)) is not None] for r, m in remaps.items()}
                out.append({"same": True, "generations": generations, "migrates": migrates,
                            "hashes": [digest(whole(r)) for r in regions]})
            elif op["op"] == "clear":
                instance.clear_dirty(region)
                out.append({"cleared": True})
            elif op["op"] == "protect":
                instance.protect(region, op["readOnly"])
                out.append({"readOnly": op["readOnly"]})
            elif op["op"] == "destroy":
                instance.destroy_region(region)
                out.append({"destroyed": True})
        except (TvmError, ValueError, TypeError) as error:
            out.append({"error": error_name(error)})
            if op["op"] == "checkpoint":
                taken.append((None, []))
    for region in ids:
        try:
            instance.destroy_region(region)
        except TvmError:
            pass
    return out


def test_the_package_page_passes_in_headless_chromium(package, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium binary found (Debian's chromium package; .ci/run installs it)")
    served = tmp_path / "served"
    shutil.copytree(package, served)
    cases = make_cases(seed=13, count=150)
    (served / "test" / "cases.json").write_text(json.dumps(cases))
    checkpoint_cases = make_checkpoint_cases(seed=14, count=40)
    (served / "test" / "checkpoint-cases.json").write_text(json.dumps(checkpoint_cases))
    clang = shutil.which("clang")
    if clang:
        subprocess.run([clang, "--target=wasm32", "-nostdlib", "-O2", "-Wl,--no-entry", "-Wl,--import-memory",
                        "-Wl,--export=fill_and_sum", "-o", str(served / "test" / "clang.wasm"),
                        str(package / "example" / "c-guest.c")], check=True, capture_output=True, timeout=120)
    report = run_in_chromium(chromium, timeout=240, files=directory_assets(served), page="/test/index.html?report=/result")
    assert "error" not in report, report.get("error")
    assert "Chrome/" in report["engine"]
    failed = [f"{r['name']}: {r['detail']}" for r in report["results"] if not r["ok"]]
    assert failed == [], "\n".join(failed)
    names = [r["name"] for r in report["results"]]
    assert len(names) == 18, names
    if clang:
        assert any(r["detail"] == "clang module linked" for r in report["results"])

    instance = GuestInstance((package / "guest.wasm").read_bytes())
    expected = [predict(instance, case) for case in cases]
    for index, (case, got, want) in enumerate(zip(cases, report["cases"], expected, strict=True)):
        assert got == want, f"case {index}: {json.dumps(case)}\n got  {got}\n want {want}"
    # Checkpoints of the same module driven from Python (the model's Checkpointer): the same pages copied,
    # the same outcomes, generations and bytes after every rollback.
    instance = GuestInstance((package / "guest.wasm").read_bytes())
    expected = [predict_checkpoints(instance, case) for case in checkpoint_cases]
    rollbacks = sum(1 for out in expected for o in out if "same" in o)
    assert rollbacks >= 40, rollbacks
    for index, (case, got, want) in enumerate(zip(checkpoint_cases, report["checkpointCases"], expected, strict=True)):
        assert got == want, f"checkpoint case {index}: {json.dumps(case)}\n got  {got}\n want {want}"
    print("figures:", json.dumps(report["figures"]))


def test_the_example_page_runs_in_headless_chromium(package):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium binary found (Debian's chromium package; .ci/run installs it)")
    report = run_in_chromium(chromium, files=directory_assets(package), page="/example/index.html?report=/result")
    log = report["log"]
    assert log.rstrip().endswith("done"), log
    assert "sum of 1000000 doubles = 249999750000" in log
    assert "4 GiB + 4 KiB: RangeError" in log and "compact a Bump region: UnsupportedAllocator (code 9)" in log
    assert "after compaction, block 3 holds 3" in log
    assert "while Cold: NotResident" in log and "view[3] = 1.5" in log


def test_a_region_in_freed_space_reads_zero_and_costs_what_the_old_one_wrote_in_chromium():
    """4 GiB - 64 KiB created where a destroyed region wrote sentinels and 1 MiB: all zero again.

    The page (``bench_reuse``) times it (printed, not asserted); the old bytes must be gone.
    """
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no chromium binary found (Debian's chromium package; .ci/run installs it)")
    report = chromium_reuse({"this version": build_module(pools=1).wasm}, samples=1, timeout=300)
    assert report["reuse"]["this version"]["dirty"] == 0
    print("reuse:", json.dumps(report["reuse"]), "access ns:", json.dumps(report["access"]))


def test_reused_spans_read_as_zero_across_partial_pages(make_guest):
    """Freed bytes come back zeroed whether the reused span starts or ends mid-page."""
    g = make_guest(pools=1, max_pages=16)
    first = g.create_region(RegionKind.BLOB_ARENA, 200_000)
    keeper = g.create_region(RegionKind.BLOB_ARENA, 64)  # keeps the freed span from lowering the top
    g.view(first)[:] = 0xFF
    g.view(first)[65_536 * 2 : 65_536 * 2 + 10] = 0  # one page only partly dirty
    g.destroy_region(first)
    for capacity in (70_000, 100_000, 29_000):
        region = g.create_region(RegionKind.BLOB_ARENA, capacity)
        view = g.view(region)
        assert not view.any(), f"{capacity}-byte region at {g.region_info(region).base} has old bytes"
    assert g.region_info(keeper).capacity == 64


def find_tsc() -> str | None:
    """TypeScript's compiler: the pinned one .ci/run installs (.ci/tsc), else one on PATH."""
    pinned = Path(__file__).resolve().parents[2] / ".ci/tsc/node_modules/.bin/tsc"
    return str(pinned) if pinned.exists() else shutil.which("tsc")


def test_the_declarations_type_check_and_catch_misuse(package, tmp_path):
    tsc = find_tsc()
    if tsc is None:
        pytest.skip("no TypeScript compiler (.ci/run installs the pinned typescript into .ci/tsc)")
    shutil.copytree(package, tmp_path / "pkg")
    sources = Path(__file__).parent / "web" / "ts"
    flags = ["--noEmit", "--strict", "--target", "es2022", "--module", "es2022", "--moduleResolution", "bundler",
             "--lib", "es2022,dom,dom.iterable"]
    for name in ("uses-the-api.ts", "wrong-types.ts"):
        shutil.copy(sources / name, tmp_path / name)
    good = subprocess.run([tsc, *flags, str(tmp_path / "uses-the-api.ts")], capture_output=True, text=True, timeout=120,
                          check=False)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = subprocess.run([tsc, *flags, str(tmp_path / "wrong-types.ts")], capture_output=True, text=True, timeout=120,
                         check=False)
    lines = {int(line.split("(")[1].split(",")[0]) for line in bad.stdout.splitlines() if "error TS" in line}
    assert lines == {5, 6, 7, 8, 9, 10, 11}, bad.stdout


def test_code_9_names_its_cause_in_python_as_in_javascript(make_guest):
    """The raw ABI's code 9 has several causes; the Python driver names them like tvm-guest.js."""
    from tvm_wasm.core.errors import PolicyViolation, UnsupportedAllocator

    g = make_guest(pools=1, max_pages=16)
    bump = g.create_region(RegionKind.OBJECT_ARENA, 64)
    with pytest.raises(UnsupportedAllocator, match="a Bump region cannot be compacted"):
        g.compact_region(bump)
    with pytest.raises(PolicyViolation, match="OBJECT_ARENA regions are not pinnable"):
        g.pin(bump)
    with pytest.raises(PolicyViolation, match="already WARM"):
        g.demote_region(g.create_region(RegionKind.PAGE_STORE, 64))
    with pytest.raises(PolicyViolation, match="SCRATCH regions may not leave Hot"):
        g.demote_region(g.create_region(RegionKind.SCRATCH, 64))
    assert g.last_error() == 0  # each was reported once


def test_an_engine_without_multi_memory_gets_one_clear_error(package, tmp_path):
    """Node 20's V8 has no multi-memory: instantiate says so (UnsupportedEngine), isSupported() agrees."""
    report = run_in_node(package, tmp_path, f"""
import {{ readFile }} from "node:fs/promises";
const support = tvm.isSupported();
let outcome;
try {{
  await tvm.instantiate(await readFile({json.dumps(str(package / "guest.wasm"))}));
  outcome = "instantiated";
}} catch (error) {{
  outcome = `${{error.name}}: ${{error.message}}`;
}}
console.log(JSON.stringify({{ support, outcome }}));
""")
    if report["support"]["multiMemory"]:
        assert report["outcome"] == "instantiated"
    else:
        assert report["outcome"].startswith("UnsupportedEngine: this engine cannot run a tvm-wasm guest module: it lacks multiMemory")
        assert web.engines_text() in report["outcome"] and "Node.js 22" in report["outcome"]
    node = subprocess.run([shutil.which("node"), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    if node and int(node.lstrip("v").split(".")[0]) >= int(web.MULTI_MEMORY_SINCE["Node.js"]):
        assert report["support"]["multiMemory"], f"Node {node} should have multi-memory by default"
