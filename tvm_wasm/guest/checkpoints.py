"""Checkpoints of the self-contained module's regions, kept by its embedder (``GuestInstance``).

The rules are the model's (:mod:`tvm_wasm.core.checkpoints`), run by the same
``Checkpointer`` over this module: pages come from the exported pools, dirty
pages from ``next_dirty_page`` (set in wasm by every store path), allocator
state through ``save_layout``/``load_layout`` and new generations through
``renew_generation``. Like the Cold tier, the pages live with the embedder.

Two things the module cannot tell the embedder, handled safely: a linked user
module that imports ``tvm.clear_dirty`` could clear the bits checkpoints rely
on, so with such a module every checkpoint copies (and every rollback
restores) all pages; and checkpoints need resident regions (a region the
embedder's Cold tier holds raises ``NotResident``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..core.allocators import blocks_test, slots_test
from ..core.errors import NotResident, PolicyViolation, RegionNotFound
from ..core.handle import Handle
from ..core.types import Residency
from ..host import native
from ..runtime import layout as L
from . import layout as G

if TYPE_CHECKING:
    from .instance import GuestInstance

SCRATCH = 0  # guest-memory offset the layout is staged at (its bytes are put back afterwards)


class _Counters:
    """The module keeps its counters in wasm; a rollback's restored bytes are not added to them."""

    bytes_written = 0


class GuestLayout:
    """The allocator state of one region, moved through guest memory (``save_layout``/``load_layout``)."""

    def __init__(self, instance: GuestInstance, region_id: int) -> None:
        self._g = instance
        self._id = region_id

    def _staged(self, length: int, action: str, payload: bytes | None = None) -> bytes:
        g = self._g
        memory = g.guest_memory
        if memory.data_len(g.store) < SCRATCH + length:
            memory.grow(g.store, -(-(SCRATCH + length - memory.data_len(g.store)) // 65536))
        kept = bytes(memory.read(g.store, SCRATCH, SCRATCH + length))
        try:
            if payload is not None:
                memory.write(g.store, payload, SCRATCH)
            g._checked(g.raw(action, self._id, SCRATCH), action, self._id)
            return bytes(memory.read(g.store, SCRATCH, SCRATCH + length))
        finally:
            memory.write(g.store, kept, SCRATCH)

    def layout_state(self) -> object:
        length = self._g._value(self._g.raw("layout_size", self._id), "layout_size", self._id)
        return self._staged(length, "save_layout")

    def restore_layout(self, state: object) -> None:
        assert isinstance(state, bytes)
        self._staged(len(state), "load_layout", state)

    def live_test(self, state: object) -> Callable[[int], bool]:
        """The model's ``Allocator.live_test`` over the module's layout bytes (``save_layout``)."""
        assert isinstance(state, bytes)
        kind = self._g._value(self._g.raw("region_allocator", self._id), "region_allocator", self._id)
        return layout_live_test(kind, state)


def layout_live_test(kind: int, state: bytes) -> Callable[[int], bool]:
    """``offset -> bool``: inside a block live in the module's allocator state ``state`` (``save_layout``'s
    bytes: u32 ``SLOT_USED``, then the side table) of an allocator of ``kind`` (``ALLOC_*``).

    Bump: below the bump pointer. Blocks: inside an entry of the block table marked live. Slab: inside a
    slot whose ``is_free`` byte is 0; the class size is ``used / live slots`` (no live slot: nothing held)."""
    used = int.from_bytes(state[:4], "little")
    table = state[4:]
    if kind == G.ALLOC_BUMP:
        return lambda offset: 0 <= offset < used
    if kind == G.ALLOC_BLOCKS:
        live = live_block_entries(state)
        return blocks_test(zip(live[:, G.BLK_OFFSET // 4].tolist(), live[:, G.BLK_SIZE // 4].tolist()))
    if kind == G.ALLOC_SLAB:
        slots = int.from_bytes(table[L.SLAB_SLOTS : L.SLAB_SLOTS + 4], "little")
        free = int.from_bytes(table[L.SLAB_COUNT : L.SLAB_COUNT + 4], "little")
        flags = table[L.SLAB_STACK + 4 * slots : L.SLAB_STACK + 5 * slots]
        if slots == free:
            return lambda offset: False
        return slots_test(used // (slots - free), flags)
    raise ValueError(f"unknown allocator kind {kind}")


def live_block_entries(state: bytes) -> np.ndarray:
    """The live entries of a blocks region's block table in ``save_layout``'s bytes, one row of u32 fields
    (``BLK_OFFSET``, ``BLK_SIZE``, ``BLK_PREV``, ``BLK_LIVE``, each at its byte offset // 4)."""
    table = state[4:]
    count = int.from_bytes(table[G.BT_COUNT : G.BT_COUNT + 4], "little")
    entries = np.frombuffer(table, dtype="<u4", count=count * G.BLOCK_SIZE // 4,
                            offset=G.BT_ENTRIES).reshape(count, G.BLOCK_SIZE // 4)
    return entries[entries[:, G.BLK_LIVE // 4] != 0]


def compaction_moves(state: bytes) -> dict[int, int]:
    """Old offset -> new offset of every live block, read from a blocks region's layout (``save_layout``'s
    bytes) right after ``compact_region``, which keeps each block's previous offset (``BLK_PREV``) for
    ``migrate``: the mapping of the model's ``HandleRemap``."""
    live = live_block_entries(state)
    moved = live[live[:, G.BLK_PREV // 4] != G.NO_PREV]
    return dict(zip(moved[:, G.BLK_PREV // 4].tolist(), moved[:, G.BLK_OFFSET // 4].tolist()))


class GuestRegion:
    """A live region of the module, as the checkpointer sees it (every field read from wasm)."""

    def __init__(self, instance: GuestInstance, region_id: int, capacity: int) -> None:
        self._g = instance
        self.id = region_id
        self.capacity = capacity
        self.allocator = GuestLayout(instance, region_id)
        self.counters = _Counters()

    @property
    def residency(self) -> Residency:
        value = self._g._value(self._g.raw("region_residency", self.id), "region_residency", self.id)
        return Residency(value) if value <= Residency.EXTERNAL else Residency.COLD  # being spilled: not resident

    @property
    def generation(self) -> int:
        return self._g.region_info(self.id).generation

    @generation.setter
    def generation(self, value: int) -> None:
        if value != self.generation + 1:
            raise ValueError("a rollback moves a module region to the next generation only")
        self._g._checked(self._g.raw("renew_generation", self.id), "renew_generation", self.id)

    @property
    def read_only(self) -> bool:
        return self._g.is_read_only(self.id)

    @property
    def tracks_dirty(self) -> bool:
        found = int(self._g.raw("next_dirty_page", self.id, -1))  # type: ignore[arg-type]
        if found == -2:
            self._g.last_error()  # 9: untracked; read here, leave nothing behind
            return False
        return True


class _LiveRegions:
    """``directory._regions`` for the checkpointer: the proxy of a live region, else None."""

    def __init__(self, hooks: GuestCheckpointHooks) -> None:
        self._hooks = hooks

    def get(self, region_id: int) -> GuestRegion | None:
        try:
            return self._hooks._region(region_id)
        except RegionNotFound:
            return None


class GuestCheckpointHooks:
    """The directory side of ``Checkpointer`` over a ``GuestInstance``."""

    def __init__(self, instance: GuestInstance) -> None:
        self._g = instance
        self._proxies: dict[int, GuestRegion] = {}
        self._regions = _LiveRegions(self)
        self.foreign_clears = False  # a linked module imports tvm.clear_dirty

    def _region(self, region_id: int) -> GuestRegion:
        if not isinstance(region_id, int) or isinstance(region_id, bool) or not 0 < region_id <= 0xFFFF:
            raise RegionNotFound("no such region", region_id=region_id if isinstance(region_id, int) else None)
        info = self._g.region_info(region_id)  # RegionNotFound when destroyed
        proxy = self._proxies.get(region_id)
        if proxy is None or proxy.capacity != info.capacity:
            proxy = self._proxies[region_id] = GuestRegion(self._g, region_id, info.capacity)
        return proxy

    def _lease(self, region_id: int, generation: int) -> None:
        """No lease: the module hands out its own generations (``GuestInstance`` refuses a leasing store)."""

    def forget(self, region_id: int) -> GuestRegion | None:
        return self._proxies.pop(region_id, None)

    def _region_array(self, region: GuestRegion) -> np.ndarray:
        """The region's bytes to write a rollback into: taken through ``handle_address``, so the module counts
        them as written (zeroed when the span is freed); rollback then sets the dirty pages itself."""
        return self._g._pool_bytes(Handle(region.id, self._g.region_info(region.id).generation, 0), region.capacity, "checkpoint")

    def _page_source(self, region: GuestRegion) -> np.ndarray:
        """The region's bytes to read a checkpoint from (no write: the pool view as it is)."""
        if not region.residency.is_resident:
            raise NotResident("the region is Cold: its bytes are with the embedder's Cold tier; restore it first",
                              region_id=region.id)
        info = self._g.region_info(region.id)
        return native.memory_view(self._g.pool_memory(info.pool), self._g.store)[info.base : info.base + info.capacity]

    def _make_all_resident(self, regions: list[GuestRegion]) -> None:
        for region in regions:
            self._page_source(region)

    def _dirty_page_list(self, region: GuestRegion) -> list[int]:
        if self.foreign_clears:
            return list(range(-(-region.capacity // 4096)))
        return self._g.dirty_pages(region.id)

    def _clear_dirty_pages(self, region: GuestRegion) -> None:
        code = self._g.call_export("clear_dirty", region.id)
        if code:
            self._g.last_error()
            raise PolicyViolation("clear_dirty refused", region_id=region.id)

    def _start_tracking(self, region: GuestRegion) -> None:
        self._g._checked(self._g.call_export("track_dirty", region.id, 1), "track_dirty", region.id)

    def _on_change(self, region: GuestRegion) -> None:
        """The module's directory is in wasm: every change above already went through its exports."""

    def _touch(self, region: GuestRegion) -> None:
        pass

    def _forget_spilled_copy(self, region: GuestRegion) -> None:
        pass
