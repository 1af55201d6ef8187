"""C programs on the self-contained module (no host): built with clang, linked against its exports."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).parent.parent), str(Path(__file__).parent.parent / "guest")]  # guest_helpers

from tvm_wasm.sdk.clang import link_library  # noqa: E402
from guest_helpers import compiled, engine  # noqa: E402
from tvm_wasm.guest.instance import GuestInstance  # noqa: E402
from records_reference import expected_scans  # noqa: E402

SCANS = ("field", "filter")
WAYS = ("plain", "handles", "slab", "paged")


def test_record_store_every_way_equals_the_plain_scan(c_guest) -> None:
    guest = GuestInstance(compiled(pools=2, max_pages=1024), engine=engine())
    lib = link_library(guest, c_guest("records", "library"))
    assert guest.call(lib, "setup", 100_000, 5) == 0
    expected = expected_scans(100_000, 5)
    for scan in SCANS:
        for way in WAYS:
            assert guest.call(lib, f"{scan}_{way}", 1) & (2**64 - 1) == expected[scan], (scan, way)
        assert guest.call(lib, f"{scan}_handles", 3) & (2**64 - 1) == 3 * expected[scan] % 2**64
    store, slab = 1, 2
    assert guest.region_info(store).used == 100_000 * 32
    assert guest.region_info(slab).used >= 100_000 * 32
    assert guest.metrics(slab).allocations == 100_000
    assert np.frombuffer(guest.view(store)[4:36], dtype="<u4")[0] == expected["first_key"]
