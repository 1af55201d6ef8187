"""The directory table as Python sees it: NumPy views over the shared meta memory."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import wasmtime

from ..core.allocators import Bump, Slab, slots_test
from ..core.directory import Counters
from ..core.allocator_faults import alloc_cause, dealloc_cause
from ..core.errors import AllocationFailed, OutOfBounds
from ..runtime import layout as L
from . import native
from .spans import SpanAllocator


class DirectoryTable:
    """Slots (one per region id) and side tables, shared zero-copy with the runtime."""

    def __init__(self, store: wasmtime.Store) -> None:
        self.store = store
        self.memory = wasmtime.Memory(
            store, wasmtime.MemoryType(wasmtime.Limits(L.META_INITIAL_PAGES, L.WASM32_MAX_PAGES))
        )
        self.side = SpanAllocator(L.SIDE_TABLES, L.PAGE * L.WASM32_MAX_PAGES, 8, self._grow_to)
        self._refresh()
        self.clear(L.RESERVED_KEY_SLOT)  # the one slot whose keys may not stay 0 (layout's fast keys)

    def _grow_to(self, end: int) -> bool:
        pages = -(-end // L.PAGE) - self.memory.size(self.store)
        if pages > 0:
            try:
                self.memory.grow(self.store, pages)
            except wasmtime.WasmtimeError:
                return False  # the slab's side table reports AllocationFailed
        self._refresh()
        return True

    def _refresh(self) -> None:
        raw = native.memory_view(self.memory, self.store)
        self.u8 = raw
        self.u32 = raw[: len(raw) // 4 * 4].view(np.uint32)
        slots = raw[L.SLOTS : L.DIRTY_SCRATCH]
        self.slots32 = slots.view(np.uint32).reshape(L.MAX_SLOTS, L.SLOT_SIZE // 4)
        self.slots64 = slots.view(np.uint64).reshape(L.MAX_SLOTS, L.SLOT_SIZE // 8)

    def detach(self) -> None:
        """Drop the views over the meta memory (its store is closing): later reads raise IndexError."""
        empty = np.zeros(0, dtype=np.uint8)
        self.u8, self.u32 = empty, empty.view(np.uint32)
        self.slots32 = np.zeros((0, L.SLOT_SIZE // 4), dtype=np.uint32)
        self.slots64 = np.zeros((0, L.SLOT_SIZE // 8), dtype=np.uint64)

    # header
    @property
    def strict(self) -> bool:
        return bool(self.u32[L.HDR_STRICT // 4])

    @strict.setter
    def strict(self, value: bool) -> None:
        self.u32[L.HDR_STRICT // 4] = int(value)

    @property
    def host_error(self) -> int:
        return int(self.u32[L.HDR_HOST_ERROR // 4])

    @host_error.setter
    def host_error(self, code: int) -> None:
        self.u32[L.HDR_HOST_ERROR // 4] = code

    def next_epoch(self) -> int:
        """Advance the access clock shared with the runtime (u64, never wraps in practice)."""
        clock = self.u8[L.HDR_EPOCH : L.HDR_EPOCH + 8].view(np.uint64)
        epoch = int(clock[0]) + 1
        clock[0] = epoch
        return epoch

    # slots
    def get(self, region_id: int, field: int) -> int:
        return int(self.slots32[region_id, field // 4])

    def set(self, region_id: int, field: int, value: int) -> None:
        self.slots32[region_id, field // 4] = value

    def get64(self, region_id: int, field: int) -> int:
        return int(self.slots64[region_id, field // 8])

    def set64(self, region_id: int, field: int, value: int) -> None:
        self.slots64[region_id, field // 8] = value

    def clear(self, region_id: int) -> None:
        """Zero the slot, its fast keys set to ``no_key`` (every typed load's fast path misses)."""
        self.slots32[region_id, :] = 0
        for pool in range(L.FAST_KEY_POOLS):
            self.set64(region_id, L.fast_key_field(pool), L.no_key(region_id))


class TableCounters(Counters):
    """Counters whose data-plane fields live in the slot, so wasm and Python add to the same numbers."""

    _TABLE_FIELDS = {
        "allocations": L.SLOT_ALLOCATIONS,
        "bytes_allocated": L.SLOT_BYTES_ALLOCATED,
        "bytes_read": L.SLOT_BYTES_READ,
        "bytes_written": L.SLOT_BYTES_WRITTEN,
    }

    def __init__(self, table: DirectoryTable, region_id: int) -> None:
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_region_id", region_id)
        super().__init__()

    def __getattribute__(self, name: str) -> object:
        fields = object.__getattribute__(self, "_TABLE_FIELDS")
        if name in fields:
            table = object.__getattribute__(self, "_table")
            return table.get64(object.__getattribute__(self, "_region_id"), fields[name])
        return object.__getattribute__(self, name)

    def __setattr__(self, name: str, value: object) -> None:
        if name in self._TABLE_FIELDS:
            self._table.set64(self._region_id, self._TABLE_FIELDS[name], int(value))  # type: ignore[arg-type]
        else:
            object.__setattr__(self, name, value)


class TableBump(Bump):
    """Bump whose pointer is the slot's ``used`` field, which the runtime bumps too."""

    def __init__(self, table: DirectoryTable, region_id: int) -> None:
        self._table = table
        self._region_id = region_id
        super().__init__()

    @property  # type: ignore[override]
    def _used(self) -> int:
        return self._table.get(self._region_id, L.SLOT_USED)

    @_used.setter
    def _used(self, value: int) -> None:
        self._table.set(self._region_id, L.SLOT_USED, value)

    def describe(self) -> str:
        return "bump"


class TableSlab(Slab):
    """Slab whose free stack and free flags live in a side table the runtime pops and pushes."""

    def __init__(self, table: DirectoryTable, region_id: int, class_size: int) -> None:
        super().__init__(class_size)
        self._table = table
        self._region_id = region_id
        self.side_offset = 0

    def _on_attach(self) -> None:
        slots = self.capacity // self.class_size
        offset = self._table.side.allocate(L.slab_table_size(slots))
        if offset is None:
            raise AllocationFailed("no room left for the slab's side table", capacity=self.capacity)
        self.side_offset = offset
        u32 = self._table.u32
        head = offset // 4
        u32[head + L.SLAB_COUNT // 4] = slots
        u32[head + L.SLAB_SLOTS // 4] = slots
        stack = head + L.SLAB_STACK // 4
        u32[stack : stack + slots] = np.arange(slots - 1, -1, -1, dtype=np.uint32)
        flags = offset + L.SLAB_STACK + 4 * slots
        self._table.u8[flags : flags + slots] = 1
        self._slots = slots
        t = self._table
        t.set(self._region_id, L.SLOT_USED, 0)

    def layout_state(self) -> object:
        """The side table's bytes (free stack and flags) and the slot's live bytes."""
        size = L.slab_table_size(self._slots)
        return self._table.u8[self.side_offset : self.side_offset + size].tobytes(), self.used

    def restore_layout(self, state: object) -> None:
        side, used = state  # type: ignore[misc]
        self._table.u8[self.side_offset : self.side_offset + len(side)] = np.frombuffer(side, dtype=np.uint8)
        self._table.set(self._region_id, L.SLOT_USED, used)

    def live_test(self, state: object) -> Callable[[int], bool]:
        """Inside a slot whose free flag is 0 in the side table of ``state``."""
        side, _ = state  # type: ignore[misc]
        slots = int.from_bytes(side[L.SLAB_SLOTS : L.SLAB_SLOTS + 4], "little")
        return slots_test(self.class_size, side[L.SLAB_STACK + 4 * slots : L.SLAB_STACK + 5 * slots])

    def release(self) -> None:
        """Give the side table back (the region is gone)."""
        if self.side_offset:
            size = L.slab_table_size(self._slots)
            self._table.u8[self.side_offset : self.side_offset + size] = 0
            self._table.side.free(self.side_offset, size)
            self.side_offset = 0

    @property
    def slots(self) -> int:
        return self._slots

    @property
    def used(self) -> int:
        return self._table.get(self._region_id, L.SLOT_USED)

    def _count_index(self) -> int:
        return self.side_offset // 4 + L.SLAB_COUNT // 4

    def alloc(self, size: int, align: int = 1) -> int:
        if size != self.class_size:
            raise AllocationFailed(alloc_cause("slab_size", size=size, class_size=self.class_size), length=size)
        if align > 1 and (align & (align - 1) or self.class_size % align):
            raise AllocationFailed(alloc_cause("slab_align", align=align, class_size=self.class_size), length=size)
        u32 = self._table.u32
        count = int(u32[self._count_index()])
        if count == 0:
            raise AllocationFailed(alloc_cause("slab_full", slots=self._slots), length=size, capacity=self.capacity)
        count -= 1
        u32[self._count_index()] = count
        slot = int(u32[self.side_offset // 4 + L.SLAB_STACK // 4 + count])
        self._table.u8[self.side_offset + L.SLAB_STACK + 4 * self._slots + slot] = 0
        self._table.set(self._region_id, L.SLOT_USED, self.used + self.class_size)
        return slot * self.class_size

    def dealloc(self, offset: int) -> None:
        slot, misalignment = divmod(offset, self.class_size)
        if misalignment or not 0 <= slot < self._slots:
            raise OutOfBounds(dealloc_cause("slab_boundary", class_size=self.class_size), offset=offset,
                              capacity=self.capacity)
        flag = self.side_offset + L.SLAB_STACK + 4 * self._slots + slot
        if self._table.u8[flag]:
            raise OutOfBounds(dealloc_cause("slab_free"), offset=offset, capacity=self.capacity)
        self._table.u8[flag] = 1
        u32 = self._table.u32
        count = int(u32[self._count_index()])
        u32[self.side_offset // 4 + L.SLAB_STACK // 4 + count] = slot
        u32[self._count_index()] = count + 1
        self._table.set(self._region_id, L.SLOT_USED, self.used - self.class_size)
