"""Python failures -> the WIT ``tvm-error`` variant.

A host function must never raise: wasmtime-py turns an exception into a trap,
which would kill the guest's call for what is an ordinary, typed failure.
Every ``TvmError`` subclass has its own case; the context the model attached
(region, generation, offset, length, capacity, message) travels with it.
"""

from __future__ import annotations

from wasmtime.component import Variant

from ..core.errors import (
    AllocationFailed,
    BackingStoreError,
    NotResident,
    OutOfBounds,
    Pinned,
    PolicyViolation,
    RegionNotFound,
    StaleHandle,
    TvmError,
    UnsupportedAllocator,
)
from ..core.handle import U16_MAX, U32_MAX, U64_MAX
from .component_values import record

# Most specific first: the classes are leaves today, but order keeps a future subclass right.
_CASES: tuple[tuple[type[TvmError], str], ...] = (
    (StaleHandle, "stale-handle"),
    (OutOfBounds, "out-of-bounds"),
    (NotResident, "not-resident"),
    (AllocationFailed, "allocation-failed"),
    (Pinned, "pinned"),
    (PolicyViolation, "policy-violation"),
    (UnsupportedAllocator, "unsupported-allocator"),
    (BackingStoreError, "backing-store"),
)


class TransferTooLarge(Exception):
    """A list longer than the host's per-call limit (a WIT-path rule, not a model one)."""

    def __init__(self, requested: int, limit: int) -> None:
        super().__init__(f"{requested} bytes exceed the per-call transfer limit of {limit}")
        self.requested = requested
        self.limit = limit


def _bounded(value: int | None, maximum: int) -> int | None:
    """The value if it fits its WIT field, else absent (context must never fail to lower)."""
    return value if isinstance(value, int) and 0 <= value <= maximum else None


def error_info(exc: TvmError) -> object:
    """The ``error-info`` record for a model error."""
    return record(
        region_id=_bounded(exc.region_id, U16_MAX),
        generation=_bounded(exc.generation, U16_MAX),
        offset=_bounded(exc.offset, U32_MAX),
        len=_bounded(exc.length, U64_MAX),
        capacity=_bounded(exc.capacity, U64_MAX),
        message=str(exc.message),
    )


def to_wit_error(exc: BaseException, *, region_id: int = 0) -> Variant:
    """The ``tvm-error`` case for any exception a binding caught.

    ``region_id`` names the region the call was about, for a ``RegionNotFound``
    that carries none.
    """
    if isinstance(exc, RegionNotFound):
        found = _bounded(exc.region_id, U16_MAX)
        return Variant("region-not-found", found if found is not None else region_id)
    if isinstance(exc, TransferTooLarge):
        return Variant("transfer-too-large", exc.limit)
    if isinstance(exc, TvmError):
        for cls, case in _CASES:
            if isinstance(exc, cls):
                return Variant(case, error_info(exc))
        return Variant("internal", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError):
        return Variant("invalid-argument", str(exc))
    return Variant("internal", f"{type(exc).__name__}: {exc}")
