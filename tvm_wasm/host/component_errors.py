"""Python failures <-> the WIT ``tvm-error`` variant, and the component path's own errors.

A host function must never raise: wasmtime-py turns an exception into a trap,
which would kill the guest's call for what is an ordinary, typed failure.
Every ``TvmError`` subclass has its own case; the context the model attached
(region, generation, offset, length, capacity, message) travels with it, and
:func:`to_tvm_error` turns a case back into the same ``TvmError`` on the host.

The component path adds errors of its own (``ComponentError`` and below), so
that linking, WASI, export lookup and a guest's trap never reach the caller
as a bare wasmtime error.
"""

from __future__ import annotations

from wasmtime.component import Variant

from ..core.errors import (
    AllocationFailed,
    BackingStoreError,
    CheckpointError,
    NotResident,
    OutOfBounds,
    Pinned,
    PolicyViolation,
    ReadOnly,
    RegionNotFound,
    StaleHandle,
    TvmError,
    UnsupportedAllocator,
)
from ..core.handle import U16_MAX, U32_MAX, U64_MAX
from .component_values import field, record

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
    (ReadOnly, "read-only"),
)


class TransferTooLarge(TvmError):
    """A list longer than the host's per-call limit (a WIT-path rule, not a model one).

    ``transfer-too-large(limit)`` carries only the limit, so ``requested`` is
    ``None`` for an error that came back from a guest.
    """

    def __init__(self, requested: int | None, limit: int) -> None:
        size = "a list" if requested is None else f"{requested} bytes"
        super().__init__(f"{size} exceed the per-call transfer limit of {limit}", length=requested, capacity=limit)
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
    if isinstance(exc, InvalidArgument):
        return Variant("invalid-argument", exc.message)
    if isinstance(exc, CheckpointError):  # a checkpoint id that cannot be used: released, superseded, corrupted
        return Variant("invalid-argument", f"checkpoint: {exc}")
    if isinstance(exc, TvmError):
        for cls, case in _CASES:
            if isinstance(exc, cls):
                return Variant(case, error_info(exc))
        return Variant("internal", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError):
        return Variant("invalid-argument", str(exc))
    return Variant("internal", f"{type(exc).__name__}: {exc}")


_CLASSES: dict[str, type[TvmError]] = {case: cls for cls, case in _CASES}


class ComponentError(TvmError):
    """Base of the component path's own errors (not a model rule; raw-ABI code 9)."""


class ComponentLoadError(ComponentError, ValueError):
    """The bytes or file are not a component this engine can compile (or the file is missing)."""


class ComponentLinkError(ComponentError):
    """An import of the component has no matching definition in the linker."""


class WasiNotConfigured(ComponentError, ValueError):
    """The component imports WASI but ``wasi=`` was not given: refused before anything runs
    (a ``ValueError``, as ``TvmHost.instantiate`` refuses a core module in the same case)."""


class ExportNotFound(ComponentError, LookupError):
    """No export (or more than one) answers to the name; the message lists the exports."""


class GuestTrapped(ComponentError):
    """The guest trapped (an uncaught exception, ``unreachable``, ...): this guest is done.

    A trapped component instance can never be entered again; other guests and
    the host's regions carry on. ``trap`` is the engine's message, ``stderr``
    what the guest last wrote to its WASI stderr (its traceback, say).
    """

    def __init__(self, message: str, *, trap: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.trap = trap
        self.stderr = stderr


class GuestError(ComponentError):
    """A guest export returned ``err`` with a payload that is not a ``tvm-error`` (``value`` holds it)."""

    def __init__(self, message: str, *, value: object = None) -> None:
        super().__init__(message)
        self.value = value


def to_tvm_error(value: Variant) -> TvmError:
    """The ``TvmError`` a ``tvm-error`` value stands for, with its ``error-info`` context.

    ``region-not-found(id)`` -> ``RegionNotFound``; the cases with an
    ``error-info`` -> their model class; ``transfer-too-large(limit)`` ->
    ``TransferTooLarge``; ``invalid-argument`` -> ``InvalidArgument``;
    ``internal`` -> ``TvmError``. Raises ``ValueError`` for anything else.
    """
    if not isinstance(value, Variant):
        raise ValueError(f"not a tvm-error value: {value!r}")
    tag, payload = value.tag, value.payload
    if tag == "region-not-found":
        return RegionNotFound(f"region {payload} not found", region_id=int(payload))  # type: ignore[arg-type]
    if tag in _CLASSES:
        return _CLASSES[tag](
            str(field(payload, "message")),
            region_id=field(payload, "region-id"),  # type: ignore[arg-type]
            generation=field(payload, "generation"),  # type: ignore[arg-type]
            offset=field(payload, "offset"),  # type: ignore[arg-type]
            length=field(payload, "len"),  # type: ignore[arg-type]
            capacity=field(payload, "capacity"),  # type: ignore[arg-type]
        )
    if tag == "transfer-too-large":
        return TransferTooLarge(None, int(payload))  # type: ignore[arg-type]
    if tag == "invalid-argument":
        return InvalidArgument(str(payload))
    if tag == "internal":
        return TvmError(str(payload))
    raise ValueError(f"not a tvm-error case: {tag!r}")


class InvalidArgument(TvmError, ValueError):
    """``invalid-argument``: an argument no region operation accepts (a ``ValueError`` on the host)."""

