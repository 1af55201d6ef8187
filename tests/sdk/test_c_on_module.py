"""C programs on the self-contained module (no host): built with clang, linked against its exports."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).parent.parent), str(Path(__file__).parent.parent / "guest")]  # guest_helpers

from tvm_wasm.sdk.clang import link_library  # noqa: E402
from guest_helpers import compiled, engine  # noqa: E402
from tvm_wasm.guest.instance import GuestInstance  # noqa: E402
from paging_reference import checksum, words  # noqa: E402
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


def test_paging_library_checksums_equal_numpys(c_guest) -> None:
    guest = GuestInstance(compiled(pools=2, max_pages=1024), engine=engine())
    lib = link_library(guest, c_guest("paging", "library"))
    assert guest.call(lib, "setup", 4) == 0
    data = words(0, 4 << 18)
    assert np.array_equal(guest.view(1)[: 4 << 20].view("<u4"), data)  # the bytes the region holds
    expected = checksum(data)
    assert guest.call(lib, "checksum_paged", 1) & (2**64 - 1) == expected
    assert guest.call(lib, "checksum_plain", 2) & (2**64 - 1) == 2 * expected % 2**64


def test_regions_guest_holds_what_it_says(c_guest) -> None:
    guest = GuestInstance(compiled(pools=2, max_pages=64), engine=engine())
    lib = link_library(guest, c_guest("regions", "library"))
    first = guest.call(lib, "run", 7, 12)
    assert guest.call(lib, "live") == guest.region_count() == 6  # the even rounds keep theirs
    again = GuestInstance(compiled(pools=2, max_pages=64), engine=engine())
    assert again.call(link_library(again, c_guest("regions", "library")), "run", 7, 12) == first
