"""The C programs on ``TvmHost`` with the data plane inlined (``inline=True``, ``tvm-wasm run --inline``).

Every program gives the same answers as when it runs unlinked: the region
lifecycle and queries (``regions.c``) call into the host from the linked
module, the typed accesses, slab allocations and 64 KiB reads (``records.c``)
stay in wasm, a spilled region faults back in through the host's slow path
(``paging.c``), and a WASI command keeps its arguments, output and exit status.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from records_reference import expected_scans

sys.path.insert(0, str(Path(__file__).parents[1] / "host"))

from host_guests import require_binaryen  # noqa: E402
from test_c_on_host import MIB, paging_checksums, scans_of  # noqa: E402

from tvm_wasm import TvmHost  # noqa: E402
from tvm_wasm.cli import main  # noqa: E402
from paging_reference import checksum, words  # noqa: E402


@pytest.fixture(autouse=True)
def binaryen() -> None:
    require_binaryen()


@pytest.mark.parametrize(("seed", "rounds"), [(7, 20), (1, 64)])
def test_regions_digest_and_regions_equal_the_unlinked_guest(c_guest, seed, rounds) -> None:
    module = c_guest("regions", "library").read_bytes()
    answers = []
    for inline in (False, True):
        host = TvmHost(pools=2)
        lib = host.instantiate(module, inline=inline)
        digest = host.call(lib, "run", seed, rounds)
        regions = [(i.id, i.kind, i.capacity, i.used, i.generation) for i in host.list_regions()]
        answers.append((digest, host.call(lib, "live"), regions, host.python_entries > 0))
        host.close()
    assert answers[0] == answers[1]
    assert answers[1][1] == len(answers[1][2]) > 0  # what the guest holds is what the host lists


def test_records_library_inlined_stays_in_wasm(c_guest) -> None:
    host = TvmHost(pools=2)
    lib = host.instantiate(c_guest("records", "library").read_bytes(), inline=True)
    assert host.call(lib, "setup", 100_000, 4) == 0
    expected = expected_scans(100_000, 4)
    for way in ("plain", "handles", "slab", "paged"):
        assert host.call(lib, f"field_{way}", 1) & (2**64 - 1) == expected["field"], way
        assert host.call(lib, f"filter_{way}", 2) & (2**64 - 1) == 2 * expected["filter"] % 2**64, way
    assert host.python_entries == 2  # the two create_region calls; 100,000 slab allocations stay in wasm
    store, slab = host.list_regions()
    assert store.used == 100_000 * 32 and host.metrics(slab.id).allocations == 100_000


def test_records_command_through_tvm_wasm_run_inline(c_guest, capfd) -> None:
    assert main(["run", "--inline", str(c_guest("records", "wasi")), "100000", "9"]) == 0
    out = capfd.readouterr().out
    expected = expected_scans(100_000, 9)
    assert scans_of(out) == {"field": [expected["field"]] * 4, "filter": [expected["filter"]] * 4}
    assert out.rstrip().endswith("OK")


def test_paging_inlined_spills_and_faults_back_under_a_budget(c_guest, tmp_path, capfd) -> None:
    stats = tmp_path / "stats.json"
    argv = ["run", "--inline", "--budget", "96M", "--spill-dir", str(tmp_path / "spill"), "--stats-json", str(stats),
            str(c_guest("paging", "wasi")), "64", "2", "2"]
    assert main(argv) == 0
    out = capfd.readouterr().out
    expected = [checksum(words(r, 64 * MIB // 4)) for r in range(2)]
    assert paging_checksums(out) == {(p, r): expected[r] for p in range(2) for r in range(2)}
    doc = json.loads(stats.read_text())
    assert doc["exit_status"] == 0 and doc["resident_bytes"] <= 96 * MIB
    regions = doc["regions"]
    assert len(regions) == 2 and all(r["metrics"]["faults"] >= 1 and r["metrics"]["demotions"] >= 1 for r in regions)


def test_sha256_inlined_passes_its_test_vectors(c_guest, capfd) -> None:
    assert main(["run", "--inline", str(c_guest("sha256", "wasi"))]) == 0
    assert "SHA-256 tests: SUCCEEDED" in capfd.readouterr().out
