"""Stateful property test: RegionDirectory against an independent tiny model.

The tiny model keeps only bytes, generations, residency and live blocks; it
knows nothing of allocators' internals or the state machine's code, so a bug
in the directory shows up as a disagreement: lost bytes, an accepted stale
handle, an access outside a region.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tvm_wasm import (
    Freelist,
    Handle,
    MemoryBackingStore,
    NotResident,
    OutOfBounds,
    Pinned,
    PolicyViolation,
    RegionDirectory,
    RegionKind,
    RegionNotFound,
    Residency,
    StaleHandle,
    UnsupportedAllocator,
)
from tvm_wasm.core.types import PlacementPolicy

KINDS = list(RegionKind)


@dataclass
class Expected:
    kind: RegionKind
    capacity: int
    freelist: bool
    generation: int = 1
    data: bytearray = field(default_factory=bytearray)
    residency: Residency = Residency.HOT
    pinned: bool = False
    blocks: dict[int, int] = field(default_factory=dict)  # live offset -> size

    @property
    def policy(self) -> PlacementPolicy:
        return PlacementPolicy.for_kind(self.kind)


class DirectoryMachine(RuleBasedStateMachine):
    @initialize(strict=st.booleans())
    def setup(self, strict: bool) -> None:
        self.strict = strict
        self.directory = RegionDirectory(MemoryBackingStore(), strict=strict)
        self.expected: dict[int, Expected] = {}
        self.destroyed: set[int] = set()
        self.handles: list[Handle] = []  # every handle ever handed out, live or stale

    # ------------------------------------------------------------ helpers
    def _live_ids(self) -> list[int]:
        return sorted(self.expected)

    def _fresh(self, handle: Handle) -> bool:
        region = self.expected.get(handle.region_id)
        return region is not None and region.generation == handle.generation

    def _accessible(self, region: Expected) -> bool:
        return region.residency in (Residency.HOT, Residency.WARM) or (
            region.residency is Residency.COLD and not self.strict
        )

    def _edge_biased_shift(self, data: st.DataObject, handle: Handle, width: int) -> int:
        """An offset, often placed so the access ends right at the region's edge."""
        region = self.expected.get(handle.region_id)
        edge = region.capacity - width if region else 0
        return data.draw(st.one_of(st.integers(0, 600), st.integers(max(0, edge - 2), max(0, edge + 2))))

    def _after_fault(self, region: Expected) -> None:
        if region.residency is Residency.COLD:
            region.residency = Residency.HOT

    # ------------------------------------------------------------ rules
    @rule(kind=st.sampled_from(KINDS), capacity=st.integers(1, 512), freelist=st.booleans())
    def create(self, kind: RegionKind, capacity: int, freelist: bool) -> None:
        region_id = self.directory.create_region(kind, capacity, allocator=Freelist() if freelist else None)
        assert region_id not in self.expected
        region = Expected(kind, capacity, freelist, data=bytearray(capacity))
        region.residency = region.policy.initial_residency
        self.expected[region_id] = region

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), size=st.integers(0, 128))
    def alloc(self, data: st.DataObject, size: int) -> None:
        region_id = data.draw(st.sampled_from(self._live_ids()))
        region = self.expected[region_id]
        try:
            handle = self.directory.alloc(region_id, size)
        except Exception as exc:  # noqa: BLE001 - checked below
            assert type(exc).__name__ == "AllocationFailed", exc
            return
        assert handle.region_id == region_id and handle.generation == region.generation
        assert handle.offset + size <= region.capacity
        if region.freelist:
            for offset, length in region.blocks.items():
                assert handle.offset + size <= offset or offset + length <= handle.offset, "overlapping blocks"
            region.blocks[handle.offset] = size
        self.handles.append(handle)

    @precondition(lambda self: self.handles)
    @rule(data=st.data(), payload=st.binary(min_size=0, max_size=64))
    def write(self, data: st.DataObject, payload: bytes) -> None:
        handle = data.draw(st.sampled_from(self.handles))
        shift = self._edge_biased_shift(data, handle, len(payload))
        handle = handle.with_offset(shift)
        region = self.expected.get(handle.region_id)
        try:
            self.directory.write(handle, payload)
        except StaleHandle:
            assert not self._fresh(handle)
            return
        except OutOfBounds:
            assert self._fresh(handle) and shift + len(payload) > region.capacity
            return
        except NotResident:
            assert self._fresh(handle) and not self._accessible(region)
            return
        assert self._fresh(handle) and shift + len(payload) <= region.capacity and self._accessible(region)
        region.data[shift : shift + len(payload)] = payload
        self._after_fault(region)

    @precondition(lambda self: self.handles)
    @rule(data=st.data(), length=st.integers(0, 600))
    def read(self, data: st.DataObject, length: int) -> None:
        handle = data.draw(st.sampled_from(self.handles))
        shift = self._edge_biased_shift(data, handle, length)
        handle = handle.with_offset(shift)
        region = self.expected.get(handle.region_id)
        try:
            got = self.directory.read(handle, length)
        except StaleHandle:
            assert not self._fresh(handle)
            return
        except OutOfBounds:
            assert self._fresh(handle) and shift + length > region.capacity
            return
        except NotResident:
            assert self._fresh(handle) and not self._accessible(region)
            return
        assert self._fresh(handle) and self._accessible(region) and shift + length <= region.capacity
        assert got == bytes(region.data[shift : shift + length])
        self._after_fault(region)

    @precondition(lambda self: len(self.expected) >= 1)
    @rule(data=st.data(), length=st.integers(0, 64), src_off=st.integers(0, 520), dst_off=st.integers(0, 520))
    def copy_region(self, data: st.DataObject, length: int, src_off: int, dst_off: int) -> None:
        src_id = data.draw(st.sampled_from(self._live_ids()))
        dst_id = data.draw(st.sampled_from(self._live_ids()))
        src, dst = self.expected[src_id], self.expected[dst_id]
        try:
            self.directory.copy_region(src_id, src_off, dst_id, dst_off, length)
        except OutOfBounds:
            assert src_off + length > src.capacity or dst_off + length > dst.capacity
            return
        except NotResident:
            assert not (self._accessible(src) and self._accessible(dst))
            return
        chunk = bytes(src.data[src_off : src_off + length])
        dst.data[dst_off : dst_off + length] = chunk
        self._after_fault(src)
        self._after_fault(dst)

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def spill(self, data: st.DataObject) -> None:
        region_id = data.draw(st.sampled_from(self._live_ids()))
        region = self.expected[region_id]
        try:
            self.directory.spill_region(region_id)
        except Pinned:
            assert region.pinned and region.residency is not Residency.COLD
            return
        except PolicyViolation:
            assert not region.policy.spillable and region.residency is not Residency.COLD
            return
        assert region.policy.spillable and not region.pinned or region.residency is Residency.COLD
        region.residency = Residency.COLD

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def load(self, data: st.DataObject) -> None:
        region_id = data.draw(st.sampled_from(self._live_ids()))
        self.directory.load_region(region_id)
        self._after_fault(self.expected[region_id])

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def promote(self, data: st.DataObject) -> None:
        region_id = data.draw(st.sampled_from(self._live_ids()))
        self.directory.promote_region(region_id)
        self.expected[region_id].residency = Residency.HOT

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def demote(self, data: st.DataObject) -> None:
        region_id = data.draw(st.sampled_from(self._live_ids()))
        region = self.expected[region_id]
        try:
            self.directory.demote_region(region_id)
        except Pinned:
            assert region.pinned
            return
        except PolicyViolation:
            assert not region.policy.spillable
            return
        region.residency = {Residency.HOT: Residency.WARM}.get(region.residency, Residency.COLD)

    @precondition(lambda self: self.expected)
    @rule(data=st.data(), pin=st.booleans())
    def pin_or_unpin(self, data: st.DataObject, pin: bool) -> None:
        region_id = data.draw(st.sampled_from(self._live_ids()))
        region = self.expected[region_id]
        if not pin:
            self.directory.unpin(region_id)
            region.pinned = False
            return
        try:
            self.directory.pin(region_id)
        except PolicyViolation:
            assert not region.policy.pinnable
            return
        except NotResident:
            assert region.residency is Residency.COLD
            return
        region.pinned = True

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def compact(self, data: st.DataObject) -> None:
        region_id = data.draw(st.sampled_from(self._live_ids()))
        region = self.expected[region_id]
        try:
            remap = self.directory.compact_region(region_id)
        except Pinned:
            assert region.pinned
            return
        except UnsupportedAllocator:
            assert not region.freelist
            return
        except NotResident:
            assert not self._accessible(region)
            return
        packed = bytearray(region.capacity)
        blocks: dict[int, int] = {}
        cursor = 0
        for offset, size in sorted(region.blocks.items()):
            assert remap.mapping[offset] == cursor
            packed[cursor : cursor + size] = region.data[offset : offset + size]
            blocks[cursor] = size
            cursor += size
        assert len(remap.mapping) == len(region.blocks)
        region.data, region.blocks = packed, blocks
        region.generation = 1 if region.generation == 0xFFFF else region.generation + 1
        assert remap.new_generation == region.generation
        self._after_fault(region)
        self.handles.extend(Handle(region_id, region.generation, offset) for offset in blocks)

    @precondition(lambda self: self.expected)
    @rule(data=st.data())
    def destroy(self, data: st.DataObject) -> None:
        region_id = data.draw(st.sampled_from(self._live_ids()))
        self.directory.destroy_region(region_id)
        del self.expected[region_id]
        self.destroyed.add(region_id)

    @rule(region_id=st.integers(0, 70))
    def unknown_or_destroyed_region(self, region_id: int) -> None:
        if region_id in self.expected:
            return
        try:
            self.directory.region_info(region_id)
        except RegionNotFound:
            return
        raise AssertionError(f"region {region_id} should not exist")

    # ------------------------------------------------------------ invariants
    @invariant()
    def metadata_agrees(self) -> None:
        infos = {info.id: info for info in self.directory.list_regions()}
        assert set(infos) == set(self.expected)
        for region_id, region in self.expected.items():
            info = infos[region_id]
            assert info.generation == region.generation
            assert info.residency is region.residency
            assert info.pinned == region.pinned
            assert info.capacity == region.capacity

    @invariant()
    def resident_bytes_agree(self) -> None:
        # Reading through the internal storage avoids faulting Cold regions in.
        for region_id, region in self.expected.items():
            if region.residency in (Residency.HOT, Residency.WARM):
                stored = self.directory._regions[region_id].storage
                assert bytes(stored) == bytes(region.data), f"bytes of region {region_id} differ"


DirectoryMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestDirectoryStateful = DirectoryMachine.TestCase
