"""Typed errors shared by every layer.

Each error carries ``code``, the raw-ABI error code a guest sees, so the wasm
data plane, the Python host and the model all report failures the same way.
Messages name the region, generation, offset, length and capacity involved.
"""

from __future__ import annotations


class TvmError(Exception):
    """Base of every tvm-wasm error; ``code`` is the raw-ABI error code."""

    code: int = 9

    def __init__(
        self,
        message: str,
        *,
        region_id: int | None = None,
        generation: int | None = None,
        offset: int | None = None,
        length: int | None = None,
        capacity: int | None = None,
    ) -> None:
        self.message = message
        self.region_id = region_id
        self.generation = generation
        self.offset = offset
        self.length = length
        self.capacity = capacity
        context = _render_context(region_id, generation, offset, length, capacity)
        super().__init__(f"{message} {context}" if context else message)

    def with_context(self, **context: int | None) -> TvmError:
        """The same error, re-raised with more of the region's context filled in."""
        merged = {
            "region_id": self.region_id,
            "generation": self.generation,
            "offset": self.offset,
            "length": self.length,
            "capacity": self.capacity,
        }
        merged.update({key: value for key, value in context.items() if value is not None})
        return type(self)(self.message, **merged)


def _render_context(
    region_id: int | None,
    generation: int | None,
    offset: int | None,
    length: int | None,
    capacity: int | None,
) -> str:
    parts = []
    if region_id is not None:
        parts.append(f"region={region_id}")
    if generation is not None:
        parts.append(f"gen={generation}")
    if offset is not None:
        parts.append(f"offset={offset:#x}")
    if length is not None:
        parts.append(f"len={length}")
    if capacity is not None:
        parts.append(f"capacity={capacity}")
    return f"[{', '.join(parts)}]" if parts else ""


class RegionNotFound(TvmError):
    """The region id was never created or has been destroyed."""

    code = 1


class StaleHandle(TvmError):
    """The handle's generation is not the region's current one."""

    code = 2


class OutOfBounds(TvmError):
    """An offset or length reaches outside the region (or allocation)."""

    code = 3


class NotResident(TvmError):
    """The region's bytes are not in memory (Cold or External)."""

    code = 4


class AllocationFailed(TvmError):
    """No room: the region, the pool, the id space or the budget is full."""

    code = 5


class Pinned(TvmError):
    """The region is pinned, so it may not spill, compact or go External."""

    code = 6


class GuestMemoryError(TvmError):
    """A guest-memory range lies outside the guest's memory."""

    code = 7


class ReadOnly(TvmError):
    """The region is read-only (``protect``/``freeze``): nothing may change its bytes or layout."""

    code = 8


class PolicyViolation(TvmError):
    """The region's placement policy forbids the operation."""

    code = 9


class UnsupportedAllocator(TvmError):
    """The region's allocator cannot do this (e.g. compact a Bump region)."""

    code = 9


class BackingStoreError(TvmError):
    """The backing store failed, or returned bytes that failed verification."""

    code = 9


class CheckpointError(TvmError):
    """A checkpoint cannot be used: released, superseded by a rollback, from another directory,
    over a destroyed region, or its stored pages are missing, torn or corrupted."""

    code = 9


class HostClosed(TvmError):
    """The host (or instance) was closed: its store, pools and regions are gone."""

    code = 9


ERRORS_BY_CODE: dict[int, type[TvmError]] = {
    cls.code: cls
    for cls in (
        RegionNotFound, StaleHandle, OutOfBounds, NotResident, AllocationFailed, Pinned, GuestMemoryError, ReadOnly
    )
}


def error_for_code(code: int, message: str, **context: int | None) -> TvmError:
    """Build the typed error that a raw-ABI ``code`` stands for."""
    return ERRORS_BY_CODE.get(code, TvmError)(message, **context)

