"""How a handle (or region id) that reaches no live region is worded: one table and one function for every layer.

A handle fails to resolve in three ways: its region id was never created (``RegionNotFound``), its
region was destroyed, or its region lives at another generation (compacted, rolled back, or the id
reused: both ``StaleHandle``). The model (``RegionDirectory``, so ``TvmHost``'s Python API and the
WIT path), the self-contained module's embedders (``GuestInstance``, and ``tvm-guest.js``, whose
generated block carries these templates) and every failed typed access (``abi.trap_cause``) word
it from here, so one fault reads the same everywhere. An operation that names a region by its id
alone (``destroy_region``, ``pin``, ``region_info``...) fails with ``RegionNotFound`` worded by
:func:`region_fault`: the state alone, since the layers name their operations differently.
"""

from __future__ import annotations

from .errors import AllocationFailed, OutOfBounds, Pinned, RegionNotFound, StaleHandle, TvmError, UnsupportedAllocator
from .handle import Handle

REGION_STATES: dict[str, str] = {
    "absent": "no region r{region}",
    "destroyed": "region r{region} was destroyed",
    "live": "region r{region} at generation {generation}",
}
"""The state of a handle's region: never created, destroyed, or live (at its current generation)."""

BULK_ERROR = "{operation}({handle}) of {length} byte(s): {cause}"
"""A failed operation on ``length`` bytes at a handle (``read``, ``write``, ``discard``, ``fill``, ``copy``,
views): ``handle`` as ``r{id}@{generation}+{offset}``, ``cause`` a ``REGION_STATES`` entry or, for other
faults of the self-contained module, the raw code's meaning. Context fields follow the message:
``[region=, gen= (the handle's), offset=, len=]``."""

HANDLE_ERROR = "{operation}({handle}): {cause}"
"""``BULK_ERROR`` for an operation on a handle without a length (``dealloc``, ``migrate``); no ``len=``."""


def region_state(state: str, region: int, generation: int = 0) -> str:
    """``REGION_STATES[state]`` for region ``region`` (``generation``: a live region's current one)."""
    return REGION_STATES[state].format(region=region, generation=generation)


def handle_message(operation: str, handle: Handle, cause: str, length: int | None = None) -> str:
    """``BULK_ERROR`` (with ``length``) or ``HANDLE_ERROR`` (without) for ``operation`` on ``handle``."""
    template = HANDLE_ERROR if length is None else BULK_ERROR
    return template.format(operation=operation, handle=handle, length=length, cause=cause)


def region_fault(region_id: int, *, destroyed: bool) -> RegionNotFound:
    """The error of an operation naming region ``region_id`` that is not live: ``no region r7`` for an id
    never created, ``region r7 was destroyed`` for one destroyed (context ``[region=7]``)."""
    return RegionNotFound(region_state("destroyed" if destroyed else "absent", region_id), region_id=region_id)


def handle_fault(operation: str, handle: Handle, state: str, *, generation: int = 0,
                 length: int | None = None) -> TvmError:
    """The error of ``operation`` on a ``handle`` whose region is in ``state`` (a ``REGION_STATES`` key;
    ``generation``: a live region's current one): ``RegionNotFound`` for an id never created,
    ``StaleHandle`` for a destroyed region or another generation."""
    cls = RegionNotFound if state == "absent" else StaleHandle
    return cls(handle_message(operation, handle, region_state(state, handle.region_id, generation), length),
               region_id=handle.region_id, generation=handle.generation, offset=handle.offset, length=length)


OUT_OF_BOUNDS = "outside the region's capacity"
"""``BULK_ERROR``'s cause for a range ``[offset, offset + length)`` that ends past the region's capacity (the
capacity ends the context: ``[region=, gen=, offset=, len=, capacity=]``)."""


def out_of_bounds(operation: str, handle: Handle, length: int | None, capacity: int) -> OutOfBounds:
    """The error of ``operation`` on ``length`` bytes at ``handle`` (live at its generation) reaching past the
    region's ``capacity``: ``read(r1@1+4090) of 8 byte(s): outside the region's capacity [region=1, gen=1,
    offset=0xffa, len=8, capacity=4096]``; an operation without a length (``dealloc``) has ``HANDLE_ERROR``'s
    shape and no ``len=``."""
    return OutOfBounds(handle_message(operation, handle, OUT_OF_BOUNDS, length), region_id=handle.region_id,
                       generation=handle.generation, offset=handle.offset, length=length, capacity=capacity)


ALLOCATOR_NAMES: tuple[str, ...] = ("Bump", "Freelist", "Slab")
"""Allocator names by the ABI's allocator value (``abi.table.ALLOCATORS``): the model's class names."""

COMPACT_REFUSED = "compact_region(r{region}) refused: {cause}"
"""A compaction the region refuses (nothing moves); ``cause`` one of ``COMPACT_CAUSES``. Context: ``[region=]``
(``gen=`` too for the last generation)."""

COMPACT_CAUSES: dict[str, str] = {
    "allocator": "a {allocator} region cannot be compacted (only Freelist regions are)",
    "pinned": "the region is pinned",
    "last_generation": "generation space exhausted: the region is at generation {generation}, the last one "
                       "(a compaction would revive old handles); copy its live blocks to a new region",
}
"""Why a compaction is refused, by key: the region's allocator (``UnsupportedAllocator``), a pin (``Pinned``),
the generation space (``AllocationFailed``)."""

_COMPACT_ERRORS: dict[str, type[TvmError]] = {
    "allocator": UnsupportedAllocator, "pinned": Pinned, "last_generation": AllocationFailed,
}


def compact_refused(region_id: int, reason: str, *, allocator: str = "", generation: int | None = None) -> TvmError:
    """The error of compacting region ``region_id`` refused for ``reason`` (a ``COMPACT_CAUSES`` key;
    ``allocator``: an ``ALLOCATOR_NAMES`` entry; ``generation``: the last one)."""
    cause = COMPACT_CAUSES[reason].format(allocator=allocator, generation=generation)
    return _COMPACT_ERRORS[reason](COMPACT_REFUSED.format(region=region_id, cause=cause), region_id=region_id,
                                  generation=generation)
