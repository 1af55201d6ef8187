"""The C example programs on TvmHost, through ``tvm-wasm run`` and through the Python API."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest
import wasmtime
from paging_reference import checksum, words
from records_reference import expected_scans

from tvm_wasm import FileBackingStore, Residency, TvmHost
from tvm_wasm.cli import main
from tvm_wasm.sdk import clang

MIB = 1 << 20


def scans_of(out: str) -> dict[str, list[int]]:
    """``{"field": [plain, handles, slab, paged], "filter": [...]}`` from records' output."""
    found = {}
    for scan in ("field", "filter"):
        match = re.search(rf"^{scan}\s+plain (\d+) handles (\d+) slab (\d+) paged (\d+)$", out, re.M)
        assert match, out
        found[scan] = [int(v) for v in match.groups()]
    return found


def captured_config(tmp_path: Path, argv: list[str]) -> tuple[wasmtime.WasiConfig, Path]:
    config = wasmtime.WasiConfig()
    config.argv = argv
    out = tmp_path / "stdout.txt"
    config.stdout_file = str(out)
    config.inherit_stderr()
    return config, out


# ---------------------------------------------------------------- records.c
def test_records_through_tvm_wasm_run(c_guest, capfd) -> None:
    assert main(["run", str(c_guest("records", "wasi")), "100000", "9"]) == 0
    out = capfd.readouterr().out
    expected = expected_scans(100_000, 9)
    assert scans_of(out) == {"field": [expected["field"]] * 4, "filter": [expected["filter"]] * 4}
    assert out.rstrip().endswith("OK")


def test_records_through_the_python_api(c_guest, tmp_path) -> None:
    host = TvmHost(pools=2)
    config, out = captured_config(tmp_path, ["records", "100000", "3"])
    assert host.run_command(c_guest("records", "wasi"), wasi=config) == 0
    expected = expected_scans(100_000, 3)
    assert scans_of(out.read_text())["filter"] == [expected["filter"]] * 4
    store, slab = host.list_regions()
    assert store.used == 100_000 * 32 and host.metrics(slab.id).allocations == 100_000
    records = host.view(store.id).view(np.uint32).reshape(-1, 8)
    assert int(records[:, 1].astype(np.uint64).sum()) == expected["field"]  # the keys, as NumPy reads them


def test_records_library_on_the_host(c_guest) -> None:
    host = TvmHost(pools=2)
    lib = host.instantiate(c_guest("records", "library"))
    assert host.call(lib, "setup", 100_000, 4) == 0
    expected = expected_scans(100_000, 4)
    for way in ("plain", "handles", "slab", "paged"):
        assert host.call(lib, f"field_{way}", 1) & (2**64 - 1) == expected["field"]
        assert host.call(lib, f"filter_{way}", 2) & (2**64 - 1) == 2 * expected["filter"] % 2**64
    assert host.python_entries == 2  # the two create_region calls; 100,000 slab allocations and every access stay in wasm


# ---------------------------------------------------------------- paging.c
def paging_checksums(out: str) -> dict[tuple[int, int], int]:
    return {(int(p), int(r)): int(s, 16)
            for p, r, s in re.findall(r"^pass (\d+) region (\d+) \(id \d+\) checksum ([0-9a-f]+)$", out, re.M)}


def test_paging_64_mib_regions_spill_and_fault_back_under_a_budget(c_guest, tmp_path, capfd) -> None:
    stats = tmp_path / "stats.json"
    argv = ["run", "--budget", "96M", "--spill-dir", str(tmp_path / "spill"), "--stats-json", str(stats),
            str(c_guest("paging", "wasi")), "64", "2", "2"]
    assert main(argv) == 0
    out = capfd.readouterr().out
    sums = paging_checksums(out)
    expected = [checksum(words(r, 64 * MIB // 4)) for r in range(2)]
    assert sums == {(p, r): expected[r] for p in range(2) for r in range(2)}
    doc = json.loads(stats.read_text())
    assert doc["exit_status"] == 0 and doc["resident_bytes"] <= 96 * MIB
    regions = doc["regions"]
    assert len(regions) == 2 and all(r["capacity"] == 64 * MIB for r in regions)
    assert all(r["metrics"]["faults"] >= 1 and r["metrics"]["demotions"] >= 1 for r in regions)


def test_paging_through_the_python_api(c_guest, tmp_path) -> None:
    host = TvmHost(backing=FileBackingStore(tmp_path / "spill"), budget_bytes=24 * MIB, pools=2)
    config, out = captured_config(tmp_path, ["paging", "16", "3", "2"])
    assert host.run_command(c_guest("paging", "wasi"), wasi=config) == 0
    sums = paging_checksums(out.read_text())
    for r in range(3):
        assert sums[(0, r)] == sums[(1, r)] == checksum(words(r, 16 * MIB // 4))
    infos = host.list_regions()
    assert sum(info.residency is Residency.COLD for info in infos) == 2  # only one 16 MiB region fits
    assert sum(host.metrics(info.id).faults for info in infos) >= 4


def test_paging_without_a_spill_dir_fails_cleanly(c_guest, capfd) -> None:
    """Beyond the budget with nowhere to spill: the guest is told (code 5) and exits 2; no traceback."""
    assert main(["run", "--budget", "96M", str(c_guest("paging", "wasi")), "64", "2"]) == 2
    err = capfd.readouterr().err
    assert "cannot make region 1 of 64 MiB (tvm error 5)" in err and "Traceback" not in err


# ---------------------------------------------------------------- sha256.c
def test_sha256_with_its_message_in_regions(c_guest, capfd, tmp_path) -> None:
    size = 300_001
    assert main(["run", "--stats", str(c_guest("sha256", "wasi")), str(size)]) == 0
    out, err = capfd.readouterr()
    assert "SHA-256 tests: SUCCEEDED" in out  # the original test vectors, messages read from regions
    digest = hashlib.sha256(bytes((i * 7 + 1) & 0xFF for i in range(size))).hexdigest()
    assert f"SHA-256 of {size} generated bytes: {digest}" in out
    assert "Regions" in err and "BLOB_ARENA" in err
    host = TvmHost(pools=1)
    config, captured = captured_config(tmp_path, ["sha256"])
    assert host.run_command(c_guest("sha256", "wasi"), wasi=config) == 0
    assert captured.read_text() == "SHA-256 tests: SUCCEEDED\n"
    assert sorted(info.capacity for info in host.list_regions()) == [3, 56, 1_000_000]


# ---------------------------------------------------------------- WASI options
FILE_SIZE_C = r"""
#include <stdio.h>
int main(int argc, char **argv) {
  FILE *f = fopen(argv[1], "rb");
  if (!f) { perror(argv[1]); return 4; }
  long n = 0;
  while (fgetc(f) != EOF) n++;
  printf("%ld\n", n);
  return 0;
}
"""


def test_dir_preopens_a_host_directory(tmp_path, capfd) -> None:
    problem = clang.toolchain_problem("wasi")
    if problem is not None:
        pytest.skip(problem)
    source = tmp_path / "size.c"
    source.write_text(FILE_SIZE_C)
    program = clang.build(source, tmp_path / "size.wasm", target="wasi")
    data = tmp_path / "data"
    data.mkdir()
    (data / "blob").write_bytes(b"x" * 1234)
    assert main(["run", "--dir", f"{data}::/in", str(program), "/in/blob"]) == 0
    assert capfd.readouterr().out == "1234\n"
    assert main(["run", str(program), "/in/blob"]) == 4  # nothing preopened: the guest cannot see it
    assert main(["run", "--dir", str(data), str(program), f"{data}/blob"]) == 0  # HOST alone: same path inside
    assert capfd.readouterr().out.endswith("1234\n")
