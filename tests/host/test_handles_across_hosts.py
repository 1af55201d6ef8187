"""What docs/guests.md and the README's `tvm-wasm run` section warn C authors about, as it behaves.

A handle is a number (region id, generation, offset) that only the host which
handed it out can interpret: another host with a region of that id and
generation reads that region's bytes with no error. A ``FileCheckpointStore``'s
id lease is the documented way across processes: a host opened on the store
refuses every handle an earlier host on it handed out.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tvm_wasm import FileCheckpointStore, Freelist, RegionKind, StaleHandle, TvmHost
from tvm_wasm.guest import build_module
from tvm_wasm.guest.instance import GuestInstance


def test_a_handle_from_another_host_names_this_hosts_region_and_reads_it_without_error() -> None:
    with TvmHost(pools=1) as first, TvmHost(pools=1) as second:
        r = first.create_region(RegionKind.OBJECT_ARENA, 64)
        kept = first.alloc(r, 16)
        first.write(kept, b"first's secret!!")
        other = second.create_region(RegionKind.BLOB_ARENA, 64)
        second.write(second.alloc(other, 16), b"second's bytes!!")
        assert second.read(kept, 16) == b"second's bytes!!"  # no error: the warning's case
        assert kept.pack() == 0x1000100000000  # region 1, generation 1, offset 0: the docs' example value
    with GuestInstance(build_module(pools=1, max_pages=16)) as g:
        g.write(g.alloc(g.create_region(RegionKind.OBJECT_ARENA, 64, allocator=Freelist()), 16), b"instance bytes!!")
        assert g.read(kept, 16) == b"instance bytes!!"


def test_a_host_on_a_file_checkpoint_store_refuses_an_earlier_hosts_handle(tmp_path: Path) -> None:
    with TvmHost(pools=1, checkpoint_store=FileCheckpointStore(tmp_path)) as first:
        kept = first.alloc(first.create_region(RegionKind.OBJECT_ARENA, 64), 16)
        first.write(kept, b"first's secret!!")
    with TvmHost(pools=1, checkpoint_store=FileCheckpointStore(tmp_path)) as second:
        fresh = second.alloc(second.create_region(RegionKind.OBJECT_ARENA, 64), 16)
        second.write(fresh, b"second's bytes!!")
        assert (fresh.region_id, fresh.generation) != (kept.region_id, kept.generation)
        with pytest.raises(StaleHandle):
            second.read(kept, 16)
