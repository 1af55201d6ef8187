"""The region directory: the executable specification of tvm-wasm.

Every later layer (the wasm data plane, the wasmtime host, the guest module)
must behave exactly like this class. Region bytes live in ``bytearray``s here;
subclasses move them elsewhere by overriding the small storage hooks
(``_allocate_storage`` … ``_on_change``) and nothing else.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

from .allocators import Allocator, Bump
import numpy as np

from .backing import BackingStore
from .checkpoint_manifest import RestoredRegion, SavedCheckpoint
from .checkpoint_store import CheckpointStore, MemoryCheckpointStore
from .checkpoints import Checkpoint, Checkpointer, RollbackRemap
from .durable import write_durably
from .errors import (
    AllocationFailed,
    BackingStoreError,
    NotResident,
    OutOfBounds,
    Pinned,
    PolicyViolation,
    ReadOnly,
    RegionNotFound,
    StaleHandle,
    TvmError,
)
from .handle import MAX_GENERATION, U16_MAX, U32_MAX, U64_MAX, Handle, next_generation
from . import arguments
from .allocators import allocator_name
from .allocator_faults import alloc_message
from .handle_faults import compact_refused, handle_fault, handle_message, out_of_bounds, region_fault
from .types import (
    EvictionReport,
    HandleRemap,
    PlacementPolicy,
    RegionInfo,
    RegionKind,
    RegionMetrics,
    Residency,
    checked_flag,
)

FIRST_REGION_ID = 1
MAX_REGION_ID = U16_MAX
MAX_CAPACITY = U32_MAX

DIRTY_PAGE_SHIFT = 12
DIRTY_PAGE = 1 << DIRTY_PAGE_SHIFT
"""Granularity of dirty tracking: page i of a region is bytes [i * 4096, (i + 1) * 4096)."""

RETIRED_GENERATION = 0  # what a retired id's tombstone records: no live handle has generation 0

EvictionOrder = Literal["largest_first", "smallest_first", "insertion_order", "lru"]
ExternalLoader = Callable[[int, int], bytes]


@dataclass
class Counters:
    """Mutable per-region counters; ``RegionMetrics`` is their snapshot."""

    allocations: int = 0
    bytes_allocated: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    faults: int = 0
    promotions: int = 0
    demotions: int = 0
    bytes_discarded: int = 0

    def snapshot(self) -> RegionMetrics:
        return RegionMetrics(**{f.name: getattr(self, f.name) for f in fields(RegionMetrics)})


@dataclass(eq=False)
class Region:
    """One live region's state. ``storage`` is whatever the storage hooks use."""

    id: int
    kind: RegionKind
    capacity: int
    policy: PlacementPolicy
    allocator: Allocator
    generation: int
    residency: Residency
    pinned: bool = False
    storage: object = None
    counters: Counters = field(default_factory=Counters)
    last_access: int = 0
    spilled_generation: int | None = None  # the backing store's copy, if any
    read_only: bool = False  # protect/freeze: no path may change the bytes or the layout
    dirty: object = None  # the dirty-page record while tracking is on (what the dirty hooks use), else None

    @property
    def tracks_dirty(self) -> bool:
        return self.dirty is not None

    def info(self) -> RegionInfo:
        return RegionInfo(
            self.id, self.generation, self.kind, self.capacity, self.allocator.used, self.residency, self.pinned
        )


def _check_int(name: str, value: object, maximum: int) -> int:
    """``value`` as an int in 0..``maximum``, worded by ``core.arguments`` as every layer words it."""
    return arguments.integer(value, name, maximum)


class RegionDirectory:
    """Regions, their allocators, residency tiers and spill, in plain Python.

    ``backing`` stores Cold regions; with ``strict=True`` touching a Cold
    region raises ``NotResident`` instead of faulting it back in.
    """

    def __init__(
        self,
        backing: BackingStore | None = None,
        *,
        strict: bool = False,
        checkpoint_store: CheckpointStore | None = None,
    ) -> None:
        self.backing = backing
        self.strict = strict
        self._regions: dict[int, Region] = {}
        self._tombstones: dict[int, int] = {}  # destroyed id -> generation its old handles can't match
        self._last_remaps: dict[int, HandleRemap] = {}  # each region's last compaction, for ``migrate``
        self._retired: set[int] = set()  # destroyed at the last generation: never handed out again
        self._next_fresh_id = FIRST_REGION_ID
        self._clock = itertools.count(1)
        self._checkpoints = Checkpointer(
            self, MemoryCheckpointStore() if checkpoint_store is None else checkpoint_store, DIRTY_PAGE, manifest=True,
            owner=type(self).__name__,
        )
        # A store that leases (region id, generation) space (``FileCheckpointStore``): start above what its
        # earlier processes may have handed out, and extend the lease before handing out anything beyond it.
        self._cover: Callable[[int, int], None] | None = getattr(checkpoint_store, "cover", None)
        lease = getattr(checkpoint_store, "lease", None)
        if lease is not None:
            self._tombstones, self._retired, self._next_fresh_id = lease().starting_state()

    # ------------------------------------------------------------------ storage hooks
    def _allocate_storage(self, region: Region) -> None:
        """Give ``region`` zeroed resident bytes."""
        region.storage = bytearray(region.capacity)

    def _release_storage(self, region: Region) -> None:
        """Drop ``region``'s resident bytes (spill, external, destroy)."""
        region.storage = None

    def _read_bytes(self, region: Region, offset: int, length: int) -> bytes:
        return bytes(region.storage[offset : offset + length])  # type: ignore[index]

    def _write_bytes(self, region: Region, offset: int, data: bytes | bytearray | memoryview) -> None:
        region.storage[offset : offset + len(data)] = data  # type: ignore[index]

    def _move_bytes(self, src: Region, src_offset: int, dst: Region, dst_offset: int, length: int) -> None:
        """Copy with memmove semantics (overlap within one region is safe)."""
        self._write_bytes(dst, dst_offset, self._read_bytes(src, src_offset, length))

    def _snapshot(self, region: Region) -> bytes:
        """All ``capacity`` bytes of a resident region."""
        return self._read_bytes(region, 0, region.capacity)

    def _install(self, region: Region, data: bytes | bytearray | memoryview) -> None:
        """Give a region fresh storage holding ``data`` followed by zeros."""
        self._allocate_storage(region)
        self._write_bytes(region, 0, data)

    def _region_array(self, region: Region) -> np.ndarray:
        """A writable ``uint8`` view of a resident region's ``capacity`` bytes (checkpoints, rollback)."""
        return np.frombuffer(region.storage, dtype=np.uint8)  # type: ignore[call-overload]

    def _page_source(self, region: Region) -> np.ndarray:
        """A region's bytes for a checkpoint without changing its residency: a Cold one's spilled copy."""
        if region.residency.is_resident:
            return self._region_array(region)
        backing = self._require_backing(region)
        try:
            data = backing.load(region.id, region.spilled_generation)  # type: ignore[arg-type]
        except BackingStoreError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BackingStoreError(f"load failed: {exc}", region_id=region.id, generation=region.generation) from exc
        if len(data) != region.capacity:
            raise BackingStoreError("spilled copy does not hold the full capacity", region_id=region.id,
                                    capacity=region.capacity)
        return np.frombuffer(data, dtype=np.uint8)

    def _make_all_resident(self, regions: list[Region]) -> None:
        """Give every region of a rollback resident bytes: Cold ones are loaded, External ones get zeros."""
        for region in regions:
            if region.residency is Residency.COLD:
                self.load_region(region.id)
            elif region.residency is Residency.EXTERNAL:
                self._install(region, b"")
                region.residency = Residency.HOT
                region.counters.promotions += 1

    def _adopt_allocator(self, region_id: int, allocator: Allocator) -> Allocator:
        """The allocator a new region will use (subclasses keep its state elsewhere)."""
        return allocator

    def _new_counters(self, region_id: int) -> Counters:
        """Zeroed counters for a new region (subclasses keep them elsewhere)."""
        return Counters()

    def _recency(self, region: Region) -> tuple[int, ...]:
        """Sort key for least-recently-used eviction: smaller is older."""
        return (region.last_access,)

    def _start_tracking(self, region: Region) -> None:
        """Give ``region`` an empty dirty-page record (tracking starts clean)."""
        region.dirty = set()

    def _stop_tracking(self, region: Region) -> None:
        """Drop ``region``'s dirty-page record."""
        region.dirty = None

    def _mark_dirty(self, region: Region, offset: int, length: int) -> None:
        """Record that ``[offset, offset + length)`` changed (tracked regions only)."""
        if region.dirty is not None and length:
            region.dirty.update(range(offset >> DIRTY_PAGE_SHIFT, ((offset + length - 1) >> DIRTY_PAGE_SHIFT) + 1))  # type: ignore[attr-defined]

    def _dirty_page_list(self, region: Region) -> list[int]:
        return sorted(region.dirty)  # type: ignore[call-overload]

    def _clear_dirty_pages(self, region: Region) -> None:
        region.dirty.clear()  # type: ignore[attr-defined]

    def _on_change(self, region: Region) -> None:
        """Called after any change to a region's bytes layout, generation, residency or pin.

        Caches of derived state (resolve caches, the wasm directory table) hook here.
        """

    # ------------------------------------------------------------------ lookup
    def _region(self, region_id: int) -> Region:
        region_id = arguments.region_id(region_id)
        region = self._regions.get(region_id)
        if region is None:
            raise region_fault(region_id, destroyed=region_id in self._tombstones or region_id in self._retired)
        return region

    def _validate(self, handle: Handle, length: int, operation: str = "access", *, sized: bool = True,
                  handle_name: str = "handle") -> Region:
        """Check region, generation and bounds of ``[offset, offset+length)``, in that order.

        A handle whose region is not live at its generation fails as ``operation`` (with ``length``
        unless not ``sized``), worded by ``handle_faults`` as every layer words it; every public
        operation names itself.
        """
        arguments.handle(handle, handle_name)
        length = _check_int("length", length, MAX_CAPACITY)
        shown = length if sized else None
        region = self._regions.get(handle.region_id)
        if region is None:
            gone = handle.region_id in self._tombstones or handle.region_id in self._retired
            raise handle_fault(operation, handle, "destroyed" if gone else "absent", length=shown)
        if handle.generation != region.generation:
            raise handle_fault(operation, handle, "live", generation=region.generation, length=shown)
        self._check_span(region, handle.offset, length, operation, sized=sized)
        return region

    @staticmethod
    def _check_span(region: Region, offset: int, length: int, operation: str, *, sized: bool = True) -> None:
        """``[offset, offset + length)`` inside the region, else ``operation``'s ``OutOfBounds`` (``handle_faults``;
        without ``len=`` unless ``sized``)."""
        if offset + length > region.capacity:
            handle = Handle(region.id, region.generation, offset)
            raise out_of_bounds(operation, handle, length if sized else None, region.capacity)

    def _touch(self, region: Region) -> None:
        region.last_access = next(self._clock)

    @staticmethod
    def _check_writable(region: Region) -> None:
        """Refuse any change to a read-only region's bytes or layout (before anything changes)."""
        if region.read_only:
            raise ReadOnly("region is read-only", region_id=region.id, generation=region.generation)

    def _changed(self, region: Region, offset: int, length: int) -> None:
        """Bytes ``[offset, offset + length)`` of ``region`` now hold new values."""
        self._mark_dirty(region, offset, length)

    def _make_resident(self, region: Region) -> None:
        """Fault a Cold region back in for a data access, unless strict."""
        if region.residency.is_resident:
            return
        if region.residency is Residency.COLD and not self.strict and self.backing is not None:
            self.load_region(region.id)
            return
        how = "strict directory" if self.strict else "no way to fault it in"
        raise NotResident(
            f"region is {region.residency.name} ({how})", region_id=region.id, generation=region.generation
        )

    # ------------------------------------------------------------------ lifecycle
    def create_region(
        self,
        kind: RegionKind,
        capacity: int,
        *,
        allocator: Allocator | None = None,
        policy: PlacementPolicy | None = None,
        initial: bytes | bytearray | memoryview | None = None,
        freeze: bool = False,
        track_dirty: bool = False,
    ) -> int:
        """Create a zeroed region and return its id (ids start at 1).

        ``initial`` bytes are written at offset 0 as part of the creation (not
        counted, not dirty); ``freeze=True`` makes the region read-only once they
        are in (as ``protect``); ``track_dirty=True`` starts dirty-page tracking.
        """
        kind = RegionKind(kind)
        capacity = arguments.integer(capacity, "capacity", MAX_CAPACITY, 1)
        initial_view = None if initial is None else memoryview(initial).cast("B")
        if initial_view is not None and initial_view.nbytes > capacity:
            raise OutOfBounds("initial bytes exceed the capacity", length=initial_view.nbytes, capacity=capacity)
        policy = policy or PlacementPolicy.for_kind(kind)
        allocator = allocator or Bump()
        if not isinstance(allocator, Allocator):
            raise TypeError(f"allocator must be a Bump, Freelist or Slab, not {type(allocator).__name__}")
        if allocator.attached:
            raise ValueError(f"this {type(allocator).__name__} already serves another region")
        region_id, generation = self._peek_id()
        self._lease(region_id, generation)  # may fail (CheckpointError): nothing has changed yet
        region = Region(region_id, kind, capacity, policy, allocator, generation, policy.initial_residency)
        self._allocate_storage(region)  # may fail (no room): nothing has changed yet
        if track_dirty:
            try:
                self._start_tracking(region)
            except BaseException:
                self._release_storage(region)
                raise
        self._commit_id(region_id)
        region.allocator = self._adopt_allocator(region_id, allocator)
        region.allocator.attach(capacity)
        region.counters = self._new_counters(region_id)
        self._regions[region_id] = region
        if initial_view is not None and initial_view.nbytes:
            self._write_bytes(region, 0, initial_view)
        region.read_only = bool(freeze)
        self._touch(region)
        self._on_change(region)
        return region_id

    def _peek_id(self) -> tuple[int, int]:
        """The id the next region gets: a fresh one while any remain, then the longest-destroyed
        one (its generation carried on, so old handles stay stale). Retired ids (destroyed at
        the last generation) are never handed out again. On a leasing checkpoint store, ids
        earlier processes used start as destroyed ones (``tvm_wasm.core.id_lease``)."""
        if self._next_fresh_id <= MAX_REGION_ID:
            return self._next_fresh_id, 1
        if self._tombstones:
            region_id = next(iter(self._tombstones))
            return region_id, self._tombstones[region_id]
        raise AllocationFailed(
            f"all {MAX_REGION_ID} region ids are in use or retired ({len(self._retired)} retired)"
        )

    def _lease(self, region_id: int, generation: int) -> None:
        """Before ``(region_id, generation)`` is handed out: make sure the store's lease covers it (a durable
        write when it does not), so no later process opening the store accepts its handles
        (``tvm_wasm.core.id_lease``). A no-op without a leasing store; ``CheckpointError`` if the lease
        cannot be written, and the caller hands out nothing."""
        if self._cover is not None:
            self._cover(region_id, generation)

    def _commit_id(self, region_id: int) -> None:
        if region_id == self._next_fresh_id:
            self._next_fresh_id += 1
        else:
            del self._tombstones[region_id]

    def destroy_region(self, region_id: int) -> None:
        """Forget a region; its handles fail with ``StaleHandle`` from now on.

        The id is reused later with the next generation; an id destroyed at the
        last generation (65535) is retired instead, so no handle ever matches again.
        """
        region = self._region(region_id)
        del self._regions[region_id]
        self._last_remaps.pop(region_id, None)
        self._checkpoints.forget(region)
        if region.dirty is not None:
            self._stop_tracking(region)
        region.read_only = False
        if region.generation < MAX_GENERATION:
            self._tombstones[region_id] = next_generation(region.generation)
            region.generation = self._tombstones[region_id]
        else:
            self._retired.add(region_id)
            region.generation = RETIRED_GENERATION
        self._release_storage(region)
        self._forget_spilled_copy(region)
        self._on_change(region)

    def _forget_spilled_copy(self, region: Region) -> None:
        if region.spilled_generation is not None and self.backing is not None:
            try:
                self.backing.delete(region.id, region.spilled_generation)
            except (OSError, TvmError):
                pass  # a leftover copy wastes disk but cannot be mistaken for live data
        region.spilled_generation = None

    # ------------------------------------------------------------------ allocation
    def alloc(self, region_id: int, size: int, *, align: int = 1) -> Handle:
        """Allocate ``size`` bytes in a region; metadata only, any residency."""
        region_id = arguments.region_id(region_id)  # every argument is checked before any state
        size = _check_int("size", size, MAX_CAPACITY)
        align = arguments.alignment(align)
        region = self._region(region_id)
        self._check_writable(region)
        try:
            offset = region.allocator.alloc(size, align)
        except TvmError as exc:  # the allocator's cause (core.allocator_faults), in ALLOC_ERROR
            raise type(exc)(alloc_message(region.id, size, exc.message), region_id=region.id,
                            generation=region.generation, length=size, capacity=region.capacity) from None
        region.counters.allocations += 1
        region.counters.bytes_allocated += size
        return Handle(region.id, region.generation, offset)

    def dealloc(self, handle: Handle) -> None:
        """Return a block to its region's allocator (a no-op for Bump)."""
        region = self._validate(handle, 0, "dealloc", sized=False)
        self._check_writable(region)
        try:
            region.allocator.dealloc(handle.offset)
        except TvmError as exc:  # the allocator's cause (core.allocator_faults), in HANDLE_ERROR
            raise type(exc)(handle_message("dealloc", handle, exc.message), region_id=region.id,
                            generation=region.generation, offset=handle.offset, capacity=region.capacity) from None

    # ------------------------------------------------------------------ data access
    def read(self, handle: Handle, length: int) -> bytes:
        region = self._validate(handle, length, "read")
        self._make_resident(region)
        data = self._read_bytes(region, handle.offset, length)
        region.counters.bytes_read += length
        self._touch(region)
        return data

    def write(self, handle: Handle, data: bytes | bytearray | memoryview) -> None:
        arguments.handle(handle)
        view = arguments.byte_view(data)
        region = self._validate(handle, view.nbytes, "write")
        self._make_resident(region)
        self._check_writable(region)
        self._changed(region, handle.offset, view.nbytes)
        self._write_bytes(region, handle.offset, view)
        region.counters.bytes_written += view.nbytes
        self._touch(region)

    def discard(self, handle: Handle, length: int) -> None:
        """Zero ``length`` bytes from the handle and let their memory go (the raw ABI's ``discard``).

        The range reads as zeros afterwards and the rest of the region is
        intact. Where the bytes live in host memory, whole OS pages inside the
        range are returned to the operating system (``madvise``), so the
        process's resident set falls by them; counted in ``bytes_discarded``.
        Read-only regions refuse it (``ReadOnly``); tracked pages turn dirty.
        """
        region = self._validate(handle, length, "discard")
        self._make_resident(region)
        self._check_writable(region)
        self._changed(region, handle.offset, length)
        self._discard_bytes(region, handle.offset, length)
        region.counters.bytes_discarded += length
        self._touch(region)

    def _discard_bytes(self, region: Region, offset: int, length: int) -> None:
        """Zero a range of a resident region (subclasses also return its whole pages to the OS)."""
        self._write_bytes(region, offset, bytes(length))

    def fill(self, handle: Handle, length: int, byte: int) -> None:
        """Set ``length`` bytes from the handle to ``byte`` (0..255), like the raw ABI's ``fill``."""
        byte = _check_int("byte", byte, 0xFF)
        region = self._validate(handle, length, "fill")
        self._make_resident(region)
        self._check_writable(region)
        self._changed(region, handle.offset, length)
        self._write_bytes(region, handle.offset, bytes([byte]) * length)
        region.counters.bytes_written += length
        self._touch(region)

    def copy(self, src: Handle, dst: Handle, length: int) -> None:
        """Copy between two handles (both generation-checked); overlap-safe."""
        src_region = self._validate(src, length, "copy", handle_name="src")
        dst_region = self._validate(dst, length, "copy", handle_name="dst")
        self._transfer(src_region, src.offset, dst_region, dst.offset, length)

    def copy_region(self, src_region: int, src_offset: int, dst_region: int, dst_offset: int, length: int) -> None:
        """Copy between raw region offsets (no handles, so no generation check)."""
        src_region, dst_region = arguments.region_id(src_region, "src_region"), arguments.region_id(dst_region, "dst_region")
        src_offset = _check_int("src_offset", src_offset, U32_MAX)
        dst_offset = _check_int("dst_offset", dst_offset, U32_MAX)
        length = _check_int("length", length, MAX_CAPACITY)
        src, dst = self._region(src_region), self._region(dst_region)
        self._check_span(src, src_offset, length, "copy_region")
        self._check_span(dst, dst_offset, length, "copy_region")
        self._transfer(src, src_offset, dst, dst_offset, length)

    def _transfer(self, src: Region, src_offset: int, dst: Region, dst_offset: int, length: int) -> None:
        self._make_resident(src)
        self._make_resident(dst)
        self._check_writable(dst)
        self._changed(dst, dst_offset, length)
        self._move_bytes(src, src_offset, dst, dst_offset, length)
        src.counters.bytes_read += length
        dst.counters.bytes_written += length
        self._touch(src)
        self._touch(dst)

    # ------------------------------------------------------------------ introspection
    def region_info(self, region_id: int) -> RegionInfo:
        return self._region(region_id).info()

    def list_regions(self) -> list[RegionInfo]:
        return [region.info() for region in sorted(self._regions.values(), key=lambda r: r.id)]

    def metrics(self, region_id: int) -> RegionMetrics:
        return self._region(region_id).counters.snapshot()

    def __len__(self) -> int:
        return len(self._regions)

    def __contains__(self, region_id: object) -> bool:
        return region_id in self._regions

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._regions))

    def resident_bytes(self) -> int:
        """Capacity of every Hot and Warm region: what their bytes can occupy."""
        return sum(r.capacity for r in self._regions.values() if r.residency.is_resident)

    def dump_layout(self) -> str:
        rows = [f"regions: {len(self._regions)}  (id gen kind residency pin used/cap allocator)"]
        for region in sorted(self._regions.values(), key=lambda r: r.id):
            rows.append(
                f"  r{region.id:<5} gen {region.generation:<5} {region.kind.name:<12} "
                f"{region.residency.name:<8} {'pinned' if region.pinned else '-':<6} "
                f"{region.allocator.used}/{region.capacity} {region.allocator.describe()}"
            )
        return "\n".join(rows)

    # ------------------------------------------------------------------ pinning
    def pin(self, region_id: int) -> None:
        """Keep a resident region resident: no spill, no compaction, no External."""
        region = self._region(region_id)
        if not region.policy.pinnable:
            raise PolicyViolation(f"{region.kind.name} regions are not pinnable", region_id=region_id)
        if not region.residency.is_resident:
            raise NotResident(f"cannot pin a {region.residency.name} region; load it first", region_id=region_id)
        region.pinned = True
        self._on_change(region)

    def unpin(self, region_id: int) -> None:
        region = self._region(region_id)
        region.pinned = False
        self._on_change(region)

    # ------------------------------------------------------------------ residency
    def _check_may_leave_hot(self, region: Region) -> None:
        if region.pinned:
            raise Pinned("region is pinned", region_id=region.id, generation=region.generation)
        if not region.policy.spillable:
            raise PolicyViolation(
                f"{region.kind.name} region's policy forbids demotion and spill", region_id=region.id
            )

    def demote_region(self, region_id: int) -> None:
        """Hot -> Warm (no backing needed); Warm -> Cold (spill); Cold stays Cold."""
        region = self._region(region_id)
        if region.residency is Residency.EXTERNAL:
            raise NotResident("an External region cannot be demoted", region_id=region_id)
        if region.residency is Residency.COLD:
            return
        self._check_may_leave_hot(region)
        if region.residency is Residency.WARM:
            self.spill_region(region_id)
            return
        region.residency = Residency.WARM
        region.counters.demotions += 1
        self._touch(region)
        self._on_change(region)

    def promote_region(self, region_id: int) -> None:
        """Warm -> Hot; Cold -> load from the backing store; Hot stays Hot."""
        region = self._region(region_id)
        if region.residency is Residency.EXTERNAL:
            raise NotResident("an External region needs load_external", region_id=region_id)
        if region.residency is Residency.COLD:
            self.load_region(region_id)
        elif region.residency is Residency.WARM:
            region.residency = Residency.HOT
            region.counters.promotions += 1
            self._touch(region)
            self._on_change(region)

    def _require_backing(self, region: Region) -> BackingStore:
        if self.backing is None:
            raise BackingStoreError("no backing store configured", region_id=region.id)
        return self.backing

    def spill_region(self, region_id: int) -> None:
        """Write a resident region to the backing store and drop its bytes.

        The bytes are dropped only after the store accepted them: a failed
        spill leaves the region resident and unchanged.
        """
        region = self._region(region_id)
        if region.residency is Residency.COLD:
            return
        if region.residency is Residency.EXTERNAL:
            raise NotResident("an External region has no bytes to spill", region_id=region_id)
        self._check_may_leave_hot(region)
        backing = self._require_backing(region)
        data = self._snapshot(region)
        try:
            backing.spill(region.id, region.generation, data)
        except BackingStoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - any store failure must keep the bytes
            raise BackingStoreError(f"spill failed: {exc}", region_id=region.id, generation=region.generation) from exc
        if region.spilled_generation not in (None, region.generation):
            self._forget_spilled_copy(region)
        region.spilled_generation = region.generation
        self._release_storage(region)
        region.residency = Residency.COLD
        region.counters.demotions += 1
        self._on_change(region)

    def load_region(self, region_id: int) -> None:
        """Bring a Cold region back from the backing store; resident regions are untouched."""
        region = self._region(region_id)
        if region.residency.is_resident:
            return
        if region.residency is Residency.EXTERNAL:
            raise NotResident("an External region needs load_external", region_id=region_id)
        backing = self._require_backing(region)
        try:
            data = backing.load(region.id, region.generation)
        except BackingStoreError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise BackingStoreError(f"load failed: {exc}", region_id=region.id, generation=region.generation) from exc
        if len(data) != region.capacity:
            raise BackingStoreError(
                f"spilled copy holds {len(data)} bytes, expected the full capacity",
                region_id=region.id,
                generation=region.generation,
                capacity=region.capacity,
            )
        self._install(region, data)
        region.residency = Residency.HOT
        region.counters.promotions += 1
        region.counters.faults += 1
        self._touch(region)
        self._on_change(region)

    def mark_external(self, region_id: int) -> None:
        """Drop a region's bytes; an external loader will provide them again."""
        region = self._region(region_id)
        if region.pinned:
            raise Pinned("region is pinned", region_id=region_id)
        if not region.policy.movable:
            raise PolicyViolation(
                f"{region.kind.name} region's bytes may not leave memory (guests address it natively)",
                region_id=region_id,
            )
        if region.residency is Residency.EXTERNAL:
            return
        self._check_writable(region)  # its bytes would come back from a loader, unchecked
        self._changed(region, 0, region.capacity)
        self._release_storage(region)
        self._forget_spilled_copy(region)
        region.residency = Residency.EXTERNAL
        self._on_change(region)

    def load_external(self, region_id: int, loader: ExternalLoader) -> None:
        """Fill an External region from ``loader(id, generation)``; a no-op otherwise."""
        region = self._region(region_id)
        if region.residency is not Residency.EXTERNAL:
            return
        self._check_writable(region)
        try:
            data = memoryview(loader(region.id, region.generation)).cast("B")
        except TvmError:
            raise
        except Exception as exc:  # noqa: BLE001 - the region stays External
            raise BackingStoreError(f"external loader failed: {exc}", region_id=region_id) from exc
        if data.nbytes > region.capacity:
            raise OutOfBounds(
                "external loader returned more bytes than the region holds",
                region_id=region_id,
                length=data.nbytes,
                capacity=region.capacity,
            )
        self._install(region, data)
        self._changed(region, 0, region.capacity)
        region.residency = Residency.HOT
        region.counters.promotions += 1
        region.counters.faults += 1
        self._touch(region)
        self._on_change(region)

    # ------------------------------------------------------------------ compaction
    def compact_region(self, region_id: int) -> HandleRemap:
        """Pack live blocks from offset 0, zero the rest, bump the generation.

        Refused (nothing moves) for a pinned region (``Pinned``), an immovable one
        (``PolicyViolation``), a non-Freelist one (``UnsupportedAllocator``) and one at
        the last generation, 65535 (``AllocationFailed``: a wrap would revive old handles).
        """
        region = self._region(region_id)
        self._check_writable(region)
        if region.pinned:
            raise compact_refused(region.id, "pinned")
        if not region.policy.movable:
            raise PolicyViolation(
                f"{region.kind.name} region's bytes may not move (guests address it natively)", region_id=region_id
            )
        if not region.allocator.compactable:
            raise compact_refused(region.id, "allocator", allocator=allocator_name(region.allocator))
        if region.generation >= MAX_GENERATION:
            raise compact_refused(region.id, "last_generation", generation=region.generation)
        self._lease(region.id, region.generation + 1)
        self._make_resident(region)
        self._changed(region, 0, region.capacity)  # blocks slide and the tail is zeroed: every page may change
        blocks = region.allocator.live_blocks()
        mapping: dict[int, int] = {}
        packed: list[tuple[int, int]] = []
        cursor = 0
        for offset, size in blocks:
            mapping[offset] = cursor
            packed.append((cursor, size))
            cursor += size
        self._relocate(region, [(old, new, size) for (old, size), (new, _) in zip(blocks, packed)])
        region.allocator.rebuild_after_compact(packed)
        old_generation = region.generation
        region.generation = next_generation(old_generation)
        self._forget_spilled_copy(region)
        self._touch(region)
        self._on_change(region)
        remap = HandleRemap(region.id, old_generation, region.generation, mapping)
        self._last_remaps[region.id] = remap
        return remap

    def migrate(self, handle: Handle) -> Handle:
        """The handle's form after its region's last compaction, as the raw ABI's ``migrate`` answers.

        A handle of the region's current generation comes back unchanged (so a caller may pass every
        handle it holds); one of the generation before the last compaction, at the start of a block live
        then, comes back at the block's new offset (what ``compact_region``'s ``HandleRemap`` maps). Any
        other handle raises what an access with it raises: ``StaleHandle`` (another generation, or a
        destroyed region), ``RegionNotFound`` (an id never created).
        """
        arguments.handle(handle)
        region = self._regions.get(handle.region_id)
        if region is not None:
            if handle.generation == region.generation:
                return handle
            remap = self._last_remaps.get(region.id)
            if remap is not None and remap.new_generation == region.generation:
                moved = remap.migrate(handle)
                if moved is not None:
                    return moved
        self._validate(handle, 0, "migrate", sized=False)  # raises: the region is not live at the handle's generation
        return handle

    def _relocate(self, region: Region, moves: list[tuple[int, int, int]]) -> None:
        """Slide blocks (old, new, size), ascending with new <= old, then zero the tail."""
        for old, new, size in moves:
            if old != new:
                self._move_bytes(region, old, region, new, size)
        end = moves[-1][1] + moves[-1][2] if moves else 0
        self._write_bytes(region, end, bytes(region.capacity - end))

    # ------------------------------------------------------------------ eviction
    def demote_until(self, target_resident_bytes: int, *, order: EvictionOrder = "largest_first") -> EvictionReport:
        """Spill Warm, then Hot, regions until resident bytes <= target.

        Pinned and non-spillable regions are skipped; missing the target is
        reported, not raised.
        """
        _check_int("target_resident_bytes", target_resident_bytes, U64_MAX)
        keys: dict[str, Callable[[Region], object]] = {
            "largest_first": lambda r: (-r.capacity, r.id),
            "smallest_first": lambda r: (r.capacity, r.id),
            "insertion_order": lambda r: r.id,
            "lru": lambda r: (*self._recency(r), r.id),
        }
        if order not in keys:
            raise ValueError(f"order must be one of {sorted(keys)}, not {order!r}")
        freed = spilled = 0
        resident = self.resident_bytes()
        for tier in (Residency.WARM, Residency.HOT):
            candidates = [
                r
                for r in self._regions.values()
                if r.residency is tier and not r.pinned and r.policy.spillable
            ]
            for region in sorted(candidates, key=keys[order]):
                if resident <= target_resident_bytes:
                    break
                self.spill_region(region.id)
                resident -= region.capacity
                freed += region.capacity
                spilled += 1
        return EvictionReport(freed, spilled, resident <= target_resident_bytes)

    # ------------------------------------------------------------------ snapshots
    def snapshot_region(self, region_id: int, path: str | os.PathLike[str]) -> None:
        """Write a region's raw bytes to ``path`` atomically and durably (temp file, fsync, rename, directory fsync)."""
        region = self._region(region_id)
        self._make_resident(region)
        try:
            write_durably(path, self._snapshot(region))
        except OSError as exc:
            raise BackingStoreError(f"cannot write snapshot {os.fspath(path)}: {exc}", region_id=region_id) from exc

    def restore_region(self, region_id: int, path: str | os.PathLike[str]) -> None:
        """Replace a region's bytes with a snapshot (zero tail); the region becomes Hot."""
        region = self._region(region_id)
        self._check_writable(region)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise BackingStoreError(f"cannot read snapshot {os.fspath(path)}: {exc}", region_id=region_id) from exc
        if len(data) > region.capacity:
            raise OutOfBounds(
                "snapshot is larger than the region", region_id=region_id, length=len(data), capacity=region.capacity
            )
        if region.residency.is_resident:
            self._write_bytes(region, 0, data)
            self._write_bytes(region, len(data), bytes(region.capacity - len(data)))
        else:
            self._forget_spilled_copy(region)
            self._install(region, data)
        self._changed(region, 0, region.capacity)
        region.residency = Residency.HOT  # from Warm too, as documented
        region.counters.bytes_written += len(data)
        self._touch(region)
        self._on_change(region)

    # ------------------------------------------------------------------ read-only regions and dirty tracking
    def protect(self, region_id: int, read_only: bool = True) -> None:
        """Make a region read-only (or writable again).

        While read-only, every path that would change its bytes or layout
        (stores, ``write``, ``fill``, ``discard``, ``copy``/``copy_region`` into
        it, ``alloc``/``dealloc``, compaction, ``mark_external``/``load_external``,
        ``restore_region``) raises ``ReadOnly`` and changes nothing. Loads, spill
        and fault-in stay allowed (they do not change the bytes).
        """
        region = self._region(region_id)
        region.read_only = checked_flag(read_only, "read_only")
        self._on_change(region)

    def is_read_only(self, region_id: int) -> bool:
        return self._region(region_id).read_only

    def track_dirty(self, region_id: int, enabled: bool = True) -> None:
        """Start (clean) or stop dirty-page tracking of a region; a no-op if already so.

        A tracked region records, per 4 KiB page (``DIRTY_PAGE``), whether any
        path changed its bytes since tracking started or ``clear_dirty``.
        """
        region = self._region(region_id)
        if checked_flag(enabled, "enabled") == region.tracks_dirty:
            return
        if enabled:
            self._start_tracking(region)
        else:
            self._stop_tracking(region)
            self._checkpoints.lost_track(region)
        self._on_change(region)

    def tracks_dirty(self, region_id: int) -> bool:
        return self._region(region_id).tracks_dirty

    def _tracked(self, region_id: int) -> Region:
        region = self._region(region_id)
        if not region.tracks_dirty:
            raise PolicyViolation("dirty tracking is off for this region (track_dirty first)", region_id=region_id)
        return region

    def dirty_pages(self, region_id: int) -> list[int]:
        """Ascending indices of the pages (``DIRTY_PAGE`` bytes each) changed since tracking began or the last
        ``clear_dirty``; ``PolicyViolation`` if the region is not tracked."""
        return self._dirty_page_list(self._tracked(region_id))

    def clear_dirty(self, region_id: int) -> None:
        """Mark every page of a tracked region clean (its next checkpoint then copies every page)."""
        region = self._tracked(region_id)
        self._clear_dirty_pages(region)
        self._checkpoints.lost_track(region)

    # ------------------------------------------------------------------ checkpoints and rollback
    def checkpoint(self, region_ids: list[int]) -> Checkpoint:
        """Record ``region_ids``' bytes, allocator state and generation; only pages changed since each
        region's previous checkpoint are copied (the first copies all and turns dirty tracking on).

        Rules, handles and generations: ``tvm_wasm.core.checkpoints``. Raises ``RegionNotFound``,
        ``NotResident`` (External), ``CheckpointError``/``BackingStoreError`` (storing or reading a spilled
        copy failed: nothing is recorded), ``ValueError``/``TypeError`` for a malformed list.
        """
        return self._checkpoints.checkpoint(region_ids)

    def rollback(self, checkpoint: Checkpoint) -> dict[int, RollbackRemap]:
        """Put the checkpoint's regions back exactly as they were at it (bytes, allocator state).

        Returns the regions moved to a new generation (their layout had changed), with the remap of
        handles taken at the checkpoint. All or nothing: ``CheckpointError``, ``ReadOnly``,
        ``AllocationFailed`` change nothing.
        """
        return self._checkpoints.rollback(checkpoint)

    def release_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Free a checkpoint's stored pages (they fold into the next checkpoint of each region).

        A checkpoint that is not live (released already, superseded by a rollback, released when one of
        its regions was destroyed) or is another directory's: ``CheckpointError`` saying why, nothing
        changes (the rule ``rollback`` follows too). ``TypeError`` for anything but a ``Checkpoint``.
        """
        self._checkpoints.release(checkpoint)

    def checkpoint_by_id(self, checkpoint_id: int) -> Checkpoint:
        """The live checkpoint whose ``id`` this is (the raw ABI's and WIT's form of a checkpoint).

        Ids are unique in the process. ``CheckpointError`` saying why for any other id: released,
        superseded, released with a destroyed region, or never taken here (another directory's).
        """
        return self._checkpoints.by_id(checkpoint_id)

    def restore_saved(self, saved: SavedCheckpoint) -> dict[int, RestoredRegion]:
        """Recreate the regions of a checkpoint saved by another process in this directory's
        ``FileCheckpointStore`` (``store.saved_checkpoints()``): new regions with the bytes, allocator
        state and read-only flag they had, keyed by their old id (``RestoredRegion.migrate`` maps old
        handles; used directly, an old process's handle is ``StaleHandle``: the store's id lease,
        ``tvm_wasm.core.id_lease``). ``CheckpointError`` (an entry missing, torn or corrupted) creates nothing."""
        return self._checkpoints.restore_saved(saved)

    def checkpoints(self) -> list[Checkpoint]:
        """The checkpoints that can still be rolled back to, oldest first."""
        return self._checkpoints.live_checkpoints()
