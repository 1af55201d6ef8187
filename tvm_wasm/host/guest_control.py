"""The host side of the guest-visible region lifecycle and queries (the ABI table's ``regions`` and ``queries``).

Each function here serves one ``tvm_host.control_{name}`` import of the
runtime with ``TvmHost``'s own semantics: a region a guest creates is an
ordinary host region (budget, spill, policies, metrics), visible and
manageable from Python. Failures follow the ABI table: a code-returning
function returns the code, a value-returning one returns its sentinel with
the code left in the table header, which the runtime's wrapper copies into
that guest's ``last_error`` (``tvm_wasm.runtime.slow_paths``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import wasmtime

from ..abi.table import AbiFunction, OnError
from ..core.allocators import Allocator, Bump, Freelist, Slab
from ..core.checkpoints import Checkpoint
from ..core.errors import AllocationFailed, NotResident, PolicyViolation, TvmError
from ..core.handle import Handle
from ..core.types import RegionKind, Residency
from ..runtime import layout as L
from ..runtime.slow_paths import host_control_functions
from .pools import Span

if TYPE_CHECKING:
    from .tvm_host import TvmHost


def u32(value: int) -> int:
    """wasm passes i32s as signed ints; the ABI means them unsigned."""
    return value & 0xFFFF_FFFF


def allocator_for(kind: int, param: int) -> Allocator:
    if kind == L.ALLOC_BUMP:
        return Bump()
    if kind == L.ALLOC_FREELIST:
        return Freelist()
    if kind == L.ALLOC_SLAB:
        if param == 0:
            raise PolicyViolation("a Slab region needs a class size (param) above 0")
        return Slab(param)
    raise PolicyViolation(f"allocator must be 0 (Bump), 1 (Freelist) or 2 (Slab), got {kind}")


def region_kind(value: int) -> RegionKind:
    try:
        return RegionKind(value)
    except ValueError:
        raise PolicyViolation(f"no region kind {value}") from None


class GuestControl:
    """Python implementations of the control imports, bound to one host."""

    def __init__(self, host: TvmHost) -> None:
        self.host = host
        self._staged: list[int] = []  # regions checkpoint_add gave for the next checkpoint

    # ------------------------------------------------------------------ lifecycle
    def create_region(self, kind: int, capacity: int) -> int:
        return self.host.create_region(region_kind(kind), u32(capacity))

    def create_region_with(self, kind: int, capacity: int, allocator: int, param: int) -> int:
        made = allocator_for(u32(allocator), u32(param))
        return self.host.create_region(region_kind(kind), u32(capacity), allocator=made)

    def destroy_region(self, region_id: int) -> int:
        self.host.destroy_region(u32(region_id))
        return 0

    def pin(self, region_id: int) -> int:
        self.host.pin(u32(region_id))
        return 0

    def unpin(self, region_id: int) -> int:
        self.host.unpin(u32(region_id))
        return 0

    def demote_region(self, region_id: int) -> int:
        self.host.demote_region(u32(region_id))
        return 0

    def promote_region(self, region_id: int) -> int:
        self.host.promote_region(u32(region_id))
        return 0

    def compact_region(self, region_id: int) -> int:
        self.host.compact_region(u32(region_id))
        return 0

    def migrate(self, packed: int) -> int:
        """The model's ``migrate`` (as the module's: current handles unchanged, handles of the generation
        before the region's last compaction moved, anything else 2, or 1 for an id never created)."""
        return self.host.migrate(Handle.unpack(packed)).to_i64()

    def alloc_aligned(self, region_id: int, size: int, align: int) -> int:
        """The module's rules: ``align`` a power of two, 0 meaning 8 (Slab: the largest power of two
        up to 8 dividing the class size); Slab needs ``align`` to divide the class size (else 5)."""
        host, rid, align = self.host, u32(region_id), u32(align)
        region = host._region(rid)
        class_size = getattr(region.allocator, "class_size", None)
        if align == 0:
            align = 8
            if class_size:
                while class_size % align:
                    align //= 2
        if align & (align - 1):
            raise PolicyViolation(f"align must be 0 or a power of two, got {align}", region_id=rid)
        if class_size and class_size % align:
            raise AllocationFailed(f"Slab class size {class_size} is not a multiple of {align}", region_id=rid)
        return host.alloc(rid, u32(size), align=align).to_i64()

    # ------------------------------------------------------------------ read-only regions and dirty tracking
    def protect(self, region_id: int, read_only: int) -> int:
        self.host.protect(u32(region_id), bool(read_only))
        return 0

    def track_dirty(self, region_id: int, enabled: int) -> int:
        self.host.track_dirty(u32(region_id), bool(enabled))
        return 0

    def clear_dirty(self, region_id: int) -> int:
        self.host.clear_dirty(u32(region_id))
        return 0

    def discard(self, packed: int, length: int) -> int:
        self.host.discard(Handle.unpack(packed), u32(length))
        return 0

    def region_read_only(self, region_id: int) -> int:
        return int(self.host.is_read_only(u32(region_id)))

    def next_dirty_page(self, region_id: int, start: int) -> int:
        start = u32(start)
        return next((page for page in self.host.dirty_pages(u32(region_id)) if page >= start), -1)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_add(self, region_id: int) -> int:
        self.host._region(u32(region_id))
        if u32(region_id) not in self._staged:
            self._staged.append(u32(region_id))
        return 0

    def checkpoint(self) -> int:
        if not self._staged:
            raise PolicyViolation("no region was added with checkpoint_add")
        staged, self._staged = self._staged, []
        return self.host.checkpoint(staged).id

    def _checkpoint(self, checkpoint_id: int) -> Checkpoint:
        return self.host.checkpoint_by_id(checkpoint_id)  # CheckpointError (code 9) saying why

    def rollback(self, checkpoint_id: int) -> int:
        self.host.rollback(self._checkpoint(checkpoint_id))
        return 0

    def release_checkpoint(self, checkpoint_id: int) -> int:
        self.host.release_checkpoint(self._checkpoint(checkpoint_id))
        return 0

    # ------------------------------------------------------------------ queries
    def _info(self, region_id: int):  # type: ignore[no-untyped-def]
        return self.host.region_info(u32(region_id))

    def region_generation(self, region_id: int) -> int:
        return self._info(region_id).generation

    def region_kind(self, region_id: int) -> int:
        return int(self._info(region_id).kind)

    def region_capacity(self, region_id: int) -> int:
        return self._info(region_id).capacity

    def region_used(self, region_id: int) -> int:
        return self._info(region_id).used

    def region_residency(self, region_id: int) -> int:
        return int(self._info(region_id).residency)

    def region_pinned(self, region_id: int) -> int:
        return int(self._info(region_id).pinned)

    def region_allocator(self, region_id: int) -> int:
        self._info(region_id)
        return self.host.table.get(u32(region_id), L.SLOT_ALLOCATOR)

    def _span(self, region_id: int) -> Span:
        region = self.host._region(u32(region_id))
        if isinstance(region.storage, Span):
            return region.storage
        if isinstance(region.storage, wasmtime.Memory):
            raise PolicyViolation("an imported region lives in a memory of its own, not in a pool",
                                  region_id=region.id)
        raise NotResident(f"region is {region.residency.name}", region_id=region.id)

    def region_pool(self, region_id: int) -> int:
        return self._span(region_id).pool

    def region_base(self, region_id: int) -> int:
        return self._span(region_id).base

    def region_metric(self, region_id: int, index: int) -> int:
        metrics = self.host.metrics(u32(region_id))
        fields = list(type(metrics).__dataclass_fields__)
        if not 0 <= u32(index) < len(fields):
            raise PolicyViolation(f"metric index must be in 0..{len(fields) - 1}, got {u32(index)}")
        return int(getattr(metrics, fields[u32(index)]))

    def region_last_access(self, region_id: int) -> int:
        self._info(region_id)
        return self.host.table.get64(u32(region_id), L.SLOT_LAST_EPOCH)

    def region_count(self) -> int:
        return len(self.host.list_regions())

    def lru_candidate(self) -> int:
        """The host's eviction order: Warm before Hot, least recently used first, never pinned or unspillable."""
        host = self.host
        candidates = [r for r in host._regions.values()
                      if r.residency in (Residency.WARM, Residency.HOT) and not r.pinned and r.policy.spillable]
        if not candidates:
            return 0
        best = min(candidates, key=lambda r: (r.residency is not Residency.WARM, *host._recency(r), r.id))
        return best.id

    # ------------------------------------------------------------------ serving the imports
    def serve(self, entry: AbiFunction) -> Callable[..., int]:
        """The import's Python function: the result, or the ABI's failure convention."""
        method = getattr(self, entry.name)
        table = self.host.table

        def call(*args: int) -> int:
            try:
                return method(*args)
            except TvmError as exc:
                code = exc.code
            except (ValueError, TypeError, OverflowError):
                code = 9  # a malformed argument, as the self-contained module answers it
            table.host_error = code
            if entry.on_error is OnError.CODE:
                return code
            assert entry.sentinel is not None
            return entry.sentinel

        return call


def control_imports(host: TvmHost) -> list[tuple[AbiFunction, Callable[..., int]]]:
    """(table entry, Python function) for every control import of the host runtime."""
    control = GuestControl(host)
    return [(entry, control.serve(entry)) for entry in host_control_functions()]

