"""The model's refusals over the WIT path: the same table as ``tests/test_refusals_across_layers.py``.

Each ``err(tvm-error)`` maps back to its class through the host's own
``to_tvm_error``; every row must give the model's class. A negative length cannot be written in WIT
(its lengths are ``u32``), so that row is left to the typed layers. The last
generation is reached by setting it directly (65,534 compactions through WIT
would take seconds; the compaction rule itself is the model's, run by the
host, and the table's other layers compact for real).
"""

from __future__ import annotations

import pytest
from refusals_table import ROWS
from wasmtime.component import Variant
from wit_guests import Wit

from tvm_wasm import Freelist, Handle, RegionKind, Slab
from tvm_wasm.core.handle import MAX_GENERATION
from tvm_wasm.host.component_errors import to_tvm_error
from tvm_wasm.host.component_values import from_handle, to_handle


class WitLayer:
    """The refusal table's adapter over a WIT guest; an ``err`` becomes its ``TvmError`` (the host's own mapping)."""

    name = "wit"

    def __init__(self, host, wit: Wit) -> None:
        self.host, self.wit = host, wit

    def _result(self, value):
        if isinstance(value, Variant):
            raise to_tvm_error(value)
        return value

    def create(self, kind: RegionKind, capacity: int, allocator=None) -> int:
        if allocator is None:
            choice = Variant("bump")
        elif isinstance(allocator, Freelist):
            choice = Variant("freelist")
        else:
            assert isinstance(allocator, Slab)
            choice = Variant("slab", allocator.class_size)
        name = kind.name.lower().replace("_", "-")
        return self._result(self.wit.manager("create-region-with", name, capacity, choice))

    def create_immovable(self, kind: RegionKind, capacity: int, allocator=None) -> int:
        return self.host.imported_region(kind, capacity, allocator=allocator)  # WIT cannot make one

    def alloc(self, region_id: int, size: int) -> Handle:
        return to_handle(self._result(self.wit.manager("alloc", region_id, size)))

    def dealloc(self, handle: Handle) -> None:
        self._result(self.wit.manager("dealloc", from_handle(handle)))

    def read(self, handle: Handle, length: int) -> bytes:
        return bytes(self._result(self.wit.bytes("read", from_handle(handle), length)))

    def write(self, handle: Handle, data: bytes) -> None:
        self._result(self.wit.bytes("write", from_handle(handle), bytes(data)))

    def compact_region(self, region_id: int) -> None:
        self._result(self.wit.manager("compact-region", region_id))

    def compact_times(self, region_id: int, n: int) -> None:
        region = self.host._regions[region_id]
        region.generation = min(region.generation + n, MAX_GENERATION)
        self.host._on_change(region)

    def pin(self, region_id: int) -> None:
        self._result(self.wit.manager("pin", region_id))

    def demote_region(self, region_id: int) -> None:
        self._result(self.wit.manager("demote-region", region_id))

    def destroy_region(self, region_id: int) -> None:
        self._result(self.wit.manager("destroy-region", region_id))

    def mark_external(self, region_id: int) -> None:
        self._result(self.wit.manager("mark-external", region_id))

    def state(self) -> object:
        return self.host.list_regions()


@pytest.mark.parametrize("row", [r for r in ROWS if r.error is not ValueError], ids=lambda r: r.name)
def test_refusal_over_wit_is_the_models(row, make_host, make_wit) -> None:
    host = make_host(pools=1)
    layer = WitLayer(host, make_wit(host))
    refused = row.setup(layer)
    before = layer.state()
    with pytest.raises(row.error) as info:
        refused()
    assert type(info.value) is row.error, f"{type(info.value).__name__}, the model says {row.error.__name__}"
    assert layer.state() == before
    if row.after is not None:
        row.after(layer)
