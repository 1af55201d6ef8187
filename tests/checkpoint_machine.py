"""The checkpoint differential machine, shared by every layer's tests.

Random writes, fills, copies, allocations, frees, spills, compactions, dirty
clears, checkpoints, rollbacks and releases run against a layer; a tiny
independent model keeps only each region's bytes and live blocks. After every
rollback the layer's bytes must equal the bytes the tiny model recorded at
that checkpoint, handles taken before a rollback that changed the layout must
be stale, and handles taken at the checkpoint must work through the remap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tvm_wasm import Freelist, Handle, RegionKind, StaleHandle

PAGE = 4096
CAPACITIES = (PAGE * 3 + 100, PAGE * 2, 700)


@dataclass
class Tiny:
    data: bytearray
    freelist: bool
    generation: int = 1
    blocks: dict[int, int] = field(default_factory=dict)  # offset -> size (freelist regions)
    top: int = 0  # end of the last block handed out (bump regions)


class CheckpointMachine(RuleBasedStateMachine):
    """Subclass and set ``make()`` (a directory-like layer) and optionally ``guest_write``."""

    def make(self):  # pragma: no cover - set by subclasses
        raise NotImplementedError

    def close(self) -> None:
        pass

    spills = True  # the layer has a Cold tier the machine can spill to

    def compact(self, rid: int, offsets: list[int]) -> tuple[int, dict[int, int]]:
        """Compact ``rid``: (new generation, old offset -> new offset of each live block)."""
        remap = self.d.compact_region(rid)
        return remap.new_generation, {offset: remap.mapping[offset] for offset in offsets}

    def guest_write(self, handle: Handle, data: bytes) -> None:
        """A write from a guest through the data plane (default: the Python API)."""
        self.d.write(handle, data)

    def typed_load_u8(self, handle: Handle) -> int | None:
        """A guest's ``tvm.load_u8`` at the handle (the typed load's fast path: its key follows every
        change of the slot); None where the layer has no typed loads to try."""
        return None

    @initialize()
    def setup(self) -> None:
        self.d = self.make()
        self.tiny: dict[int, Tiny] = {}
        for i, capacity in enumerate(CAPACITIES):
            freelist = i == 1
            rid = self.d.create_region(RegionKind.BLOB_ARENA, capacity, allocator=Freelist() if freelist else None)
            self.tiny[rid] = Tiny(bytearray(capacity), freelist)
        self.saved: list[tuple[object, dict[int, bytes], dict[int, int]]] = []  # (checkpoint, bytes, generation)
        self.old_handles: list[Handle] = []

    def teardown(self) -> None:
        if hasattr(self, "d"):
            self.close()

    # ------------------------------------------------------------ helpers
    def _handle(self, rid: int, offset: int = 0) -> Handle:
        return Handle(rid, self.tiny[rid].generation, offset)

    def _span(self, data: st.DataObject, rid: int) -> tuple[int, int]:
        capacity = len(self.tiny[rid].data)
        offset = data.draw(st.integers(0, capacity - 1))
        length = data.draw(st.integers(1, min(capacity - offset, 5000)))
        return offset, length

    # ------------------------------------------------------------ rules
    @rule(data=st.data(), guest=st.booleans())
    def write(self, data: st.DataObject, guest: bool) -> None:
        rid = data.draw(st.sampled_from(sorted(self.tiny)))
        offset, length = self._span(data, rid)
        payload = data.draw(st.binary(min_size=length, max_size=length)) if length < 64 else \
            bytes([data.draw(st.integers(1, 255))]) * length
        (self.guest_write if guest else self.d.write)(self._handle(rid, offset), payload)
        self.tiny[rid].data[offset : offset + length] = payload

    @rule(data=st.data())
    def fill(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.tiny)))
        offset, length = self._span(data, rid)
        byte = data.draw(st.integers(0, 255))
        self.d.fill(self._handle(rid, offset), length, byte)
        self.tiny[rid].data[offset : offset + length] = bytes([byte]) * length

    @rule(data=st.data())
    def copy(self, data: st.DataObject) -> None:
        src = data.draw(st.sampled_from(sorted(self.tiny)))
        dst = data.draw(st.sampled_from(sorted(self.tiny)))
        limit = min(len(self.tiny[src].data), len(self.tiny[dst].data))
        length = data.draw(st.integers(1, limit))
        so = data.draw(st.integers(0, len(self.tiny[src].data) - length))
        do = data.draw(st.integers(0, len(self.tiny[dst].data) - length))
        self.d.copy(self._handle(src, so), self._handle(dst, do), length)
        self.tiny[dst].data[do : do + length] = bytes(self.tiny[src].data[so : so + length])

    @rule(data=st.data())
    def alloc(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.tiny)))
        size = data.draw(st.integers(1, 300))
        try:
            handle = self.d.alloc(rid, size)
        except Exception as exc:  # noqa: BLE001 - full is fine, anything else is not
            assert type(exc).__name__ == "AllocationFailed", exc
            return
        assert handle.generation == self.tiny[rid].generation
        self.old_handles.append(handle)
        if self.tiny[rid].freelist:
            self.tiny[rid].blocks[handle.offset] = size
        else:
            self.tiny[rid].top = handle.offset + size

    @precondition(lambda self: any(t.blocks for t in self.tiny.values()))
    @rule(data=st.data())
    def dealloc(self, data: st.DataObject) -> None:
        rid = next(r for r in sorted(self.tiny) if self.tiny[r].blocks)
        offset = data.draw(st.sampled_from(sorted(self.tiny[rid].blocks)))
        self.d.dealloc(self._handle(rid, offset))
        del self.tiny[rid].blocks[offset]

    @precondition(lambda self: self.spills)
    @rule(data=st.data())
    def spill(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.tiny)))
        self.d.spill_region(rid)

    @rule()
    def compact_blocks(self) -> None:
        rid = next(r for r in sorted(self.tiny) if self.tiny[r].freelist)
        tiny = self.tiny[rid]
        generation, mapping = self.compact(rid, sorted(tiny.blocks))
        packed = bytearray(len(tiny.data))
        blocks = {}
        for old, size in sorted(tiny.blocks.items()):
            new = mapping[old]
            packed[new : new + size] = tiny.data[old : old + size]
            blocks[new] = size
        tiny.data, tiny.blocks, tiny.generation = packed, blocks, generation

    @rule(data=st.data())
    def clear_dirty(self, data: st.DataObject) -> None:
        rid = data.draw(st.sampled_from(sorted(self.tiny)))
        if data.draw(st.integers(0, 3)) == 0 and self.d.tracks_dirty(rid):  # rare: it makes the next checkpoint full
            self.d.clear_dirty(rid)

    @rule(data=st.data())
    def checkpoint(self, data: st.DataObject) -> None:
        rids = data.draw(st.lists(st.sampled_from(sorted(self.tiny)), min_size=1, unique=True))
        cp = self.d.checkpoint(rids)
        self.saved.append((cp, {r: bytes(self.tiny[r].data) for r in rids},
                           {r: (self.tiny[r].generation, dict(self.tiny[r].blocks), self.tiny[r].top) for r in rids}))

    @precondition(lambda self: self.saved)
    @rule(data=st.data())
    def rollback(self, data: st.DataObject) -> None:
        index = data.draw(st.one_of(st.just(0), st.integers(0, len(self.saved) - 1)))  # the oldest: the longest way back
        cp, images, layouts = self.saved[index]
        before = {r: self.tiny[r].generation for r in images}
        remaps = self.d.rollback(cp)
        for rid, image in images.items():
            tiny = self.tiny[rid]
            tiny.data[:] = image
            generation, blocks, top = layouts[rid]
            tiny.blocks, tiny.top = dict(blocks), top
            now = self.d.region_info(rid).generation
            if rid in remaps:
                assert now != before[rid] and remaps[rid].new_generation == now
                self._check_remap(data, rid, remaps[rid], image, blocks, top)
                for handle in self.old_handles:
                    if handle.region_id == rid and handle.generation == before[rid]:
                        try:
                            self.d.read(handle, 1)
                        except StaleHandle:
                            pass
                        else:
                            raise AssertionError(f"{handle} from before the rollback still works")
            else:
                assert now == before[rid]
            tiny.generation = now
            assert self.d.read(self._handle(rid), len(image)) == image
        # later checkpoints of these regions are superseded
        self.saved = [s for i, s in enumerate(self.saved)
                      if i <= index or not (set(s[1]) & set(images))]

    def _check_remap(self, data: st.DataObject, rid: int, remap, image: bytes, blocks: dict[int, int],
                     top: int) -> None:
        """migrate answers None or a handle inside a block live at the checkpoint that reads the checkpoint's
        bytes; every offset inside such a block migrates (a block born later never comes back)."""
        def live(offset: int) -> bool:
            if self.tiny[rid].freelist:
                return any(start <= offset < start + size for start, size in blocks.items())
            return offset < top

        offsets = {h.offset for h in self.old_handles if h.region_id == rid}
        offsets |= {o for start, size in blocks.items() for o in (start, start + size - 1, start + size)}
        offsets |= {0, max(top - 1, 0), top, len(image) - 1}
        offsets |= set(data.draw(st.lists(st.integers(0, len(image) - 1), max_size=8)))
        for offset in sorted(offsets):
            moved = remap.migrate(Handle(rid, remap.old_generation, offset))
            if not live(offset):
                assert moved is None, f"offset {offset} lies in no block live at the checkpoint, migrated to {moved}"
                continue
            assert moved == Handle(rid, remap.new_generation, offset), (offset, moved)
            assert self.d.read(moved, 1) == image[offset : offset + 1]
        assert remap.migrate(Handle(rid, remap.new_generation, 0)) is None  # not a handle of the old generation

    @precondition(lambda self: self.saved)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, len(self.saved) - 1))
        cp = self.saved.pop(index)[0]
        self.d.release_checkpoint(cp)

    @invariant()
    def typed_loads_take_exactly_the_live_generation(self) -> None:
        """Through a guest's typed load, every resident region's current handle reads its first byte and a
        handle one generation off fails stale (the fast path's key follows creates, compactions, rollbacks)."""
        if not hasattr(self, "d"):
            return
        for rid, tiny in self.tiny.items():
            if not self.d.region_info(rid).residency.is_resident:
                continue
            value = self.typed_load_u8(self._handle(rid))
            if value is None:
                return
            assert value == tiny.data[0], f"r{rid}"
            for generation in {tiny.generation - 1, tiny.generation + 1} - {0}:
                try:
                    self.typed_load_u8(Handle(rid, generation & 0xFFFF, 0))
                except StaleHandle:
                    continue
                raise AssertionError(f"r{rid} generation {generation} loads (live: {tiny.generation})")

    @invariant()
    def bytes_agree(self) -> None:
        if not hasattr(self, "d"):
            return
        for rid, tiny in self.tiny.items():
            if self.d.region_info(rid).residency.is_resident:
                assert self.d.read(self._handle(rid), len(tiny.data)) == bytes(tiny.data), f"r{rid}"


def check_a_block_born_after_the_checkpoint_stays_dead(d, allocator) -> None:
    """A fresh user's trial, on any layer ``d``: a handle to a block allocated after the checkpoint must not
    come back to life through the rollback's remap and alias the next allocation (it read zeros, then another
    block's bytes); handles inside blocks live at the checkpoint still migrate."""
    players = d.create_region(RegionKind.OBJECT_ARENA, 1 << 16, allocator=allocator)
    hp = d.alloc(players, 64)
    d.write(hp, b"alive")
    frame = d.checkpoint([players])
    hp2 = d.alloc(players, 64)
    remap = d.rollback(frame)[players]
    assert remap.migrate(hp2) is None and remap.migrate(hp2.with_offset(hp2.offset + 63)) is None
    assert d.read(remap.migrate(hp), 5) == b"alive"
    assert remap.migrate(hp.with_offset(hp.offset + 63)) is not None  # inside a block live at the checkpoint
    d.write(d.alloc(players, 64), b"other")
    assert remap.migrate(hp2) is None  # still refused once the offset is live again
