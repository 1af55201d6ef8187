"""How an allocator refuses ``alloc`` or ``dealloc``: one table of causes, worded alike on every layer.

The model's allocators (``core.allocators``, and ``TvmHost``'s table-backed ones in ``host/table.py``) raise
with a cause from :data:`ALLOC_CAUSES` or :data:`DEALLOC_CAUSES`; ``RegionDirectory.alloc`` puts it in
:data:`ALLOC_ERROR` (naming the region and the size) and ``dealloc`` in ``core.handle_faults.HANDLE_ERROR``
(naming the handle). The self-contained module answers one code for several causes (5 for any refused
``alloc``, 3 for any refused ``dealloc``); ``GuestInstance`` and ``tvm-guest.js`` (whose generated block
carries these templates) tell the cause from what the module shows (the region's allocator, ``used`` and
its side table) and word it from here, so one refusal reads the same everywhere.

Where a layer's allocator differs from the model's, its own cause says so: the module's compactable
allocator keeps a block table of a fixed number of entries (``block_table_full``); it also reuses freed
space only after ``compact_region``, where the model's ``Freelist`` reuses it at once, so "no free block"
can come sooner there.
"""

from __future__ import annotations

ALLOC_ERROR = "alloc(r{region}) of {size} byte(s): {cause}"
"""A refused allocation of ``size`` bytes in region ``region``; context ``[region=, gen=, len=, capacity=]``."""

ALLOC_CAUSES: dict[str, str] = {
    "bump_full": "no room above offset {used:#x} (align {align})",
    "no_free_block": "no free block that large (align {align})",
    "empty_block": "a Freelist block is at least 1 byte",
    "block_table_full": "the block table is full ({entries} blocks since the last compaction)",
    "slab_size": "the Slab region's slots are {class_size} byte(s)",
    "slab_align": "the Slab region's {class_size}-byte slots cannot be aligned to {align}",
    "slab_full": "all {slots} slots of the Slab region are taken",
    "slab_size_or_align": "the Slab region's slots are of another size, or cannot be aligned to {align}",
}
"""Why an allocator refuses (``AllocationFailed``), by key. ``slab_size_or_align`` is what an embedder of the
module says when it cannot know the class size (an empty Slab region it did not create itself)."""

DEALLOC_CAUSES: dict[str, str] = {
    "no_block": "no live block starts at this offset",
    "slab_boundary": "not a boundary of the Slab region's {class_size}-byte slots",
    "slab_free": "the slot is free already (a double free)",
    "slab_no_slot": "no live slot starts at this offset (not a slot boundary, or free already)",
}
"""Why an allocator refuses to free a block (``OutOfBounds``), by key; ``slab_no_slot`` as above."""


def alloc_cause(key: str, **values: int) -> str:
    """``ALLOC_CAUSES[key]`` filled with ``values`` (``size``, ``align``, ``used``, ``class_size``, ``slots``...)."""
    return ALLOC_CAUSES[key].format(**values)


def dealloc_cause(key: str, **values: int) -> str:
    """``DEALLOC_CAUSES[key]`` filled with ``values`` (``class_size``)."""
    return DEALLOC_CAUSES[key].format(**values)


def alloc_message(region_id: int, size: int, cause: str) -> str:
    """``ALLOC_ERROR`` for region ``region_id`` and ``size`` bytes, refused for ``cause``."""
    return ALLOC_ERROR.format(region=region_id, size=size, cause=cause)
