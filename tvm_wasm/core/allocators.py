"""Per-region allocators: Bump, Freelist and Slab.

An allocator only hands out offsets inside ``[0, capacity)``; it never sees
bytes. The directory attaches one allocator instance to one region.
"""

from __future__ import annotations

import bisect
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

from .allocator_faults import alloc_cause, dealloc_cause
from .errors import AllocationFailed, OutOfBounds


def _check_align(align: int) -> None:
    if not isinstance(align, int) or align <= 0 or align & (align - 1):
        raise AllocationFailed(f"alignment must be a nonzero power of two, got {align!r}")


def _align_up(value: int, align: int) -> int:
    return (value + align - 1) & ~(align - 1)


class Allocator(ABC):
    """Hands out offsets in one region; attached to exactly one region."""

    compactable: bool = False

    def __init__(self) -> None:
        self._capacity: int | None = None

    @property
    def capacity(self) -> int:
        if self._capacity is None:
            raise RuntimeError(f"{type(self).__name__} is not attached to a region")
        return self._capacity

    @property
    def attached(self) -> bool:
        return self._capacity is not None

    def attach(self, capacity: int) -> None:
        """Bind to a region of ``capacity`` bytes; an allocator serves one region only."""
        if self._capacity is not None:
            raise ValueError(f"this {type(self).__name__} already serves another region")
        self._capacity = capacity
        self._on_attach()

    def _on_attach(self) -> None:
        """Hook for subclasses that size their state by capacity."""

    @property
    @abstractmethod
    def used(self) -> int:
        """Bytes the allocator considers taken (the high-water mark for Bump)."""

    @abstractmethod
    def alloc(self, size: int, align: int = 1) -> int:
        """Return the offset of a new block, or raise ``AllocationFailed``."""

    @abstractmethod
    def dealloc(self, offset: int) -> None:
        """Give a block back, or raise ``OutOfBounds`` if it is not a live block."""

    def live_blocks(self) -> list[tuple[int, int]]:
        """Live (offset, size) blocks in ascending offset order (compactable allocators)."""
        raise NotImplementedError

    def rebuild_after_compact(self, blocks: list[tuple[int, int]]) -> None:
        """Adopt ``blocks`` as the packed live set (compactable allocators)."""
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__.lower()

    @abstractmethod
    def layout_state(self) -> object:
        """Everything that decides which blocks exist and where the next one goes, as an immutable,
        comparable value (checkpoints record it; equal values mean the same blocks)."""

    @abstractmethod
    def restore_layout(self, state: object) -> None:
        """Go back to a ``layout_state()`` this allocator returned earlier (rollback)."""

    @abstractmethod
    def live_test(self, state: object) -> Callable[[int], bool]:
        """``offset -> bool``: whether a region offset lies inside a block that is live in ``state`` (a
        ``layout_state()`` of this allocator). Rollback and restore migrate only such handles: a handle to a
        block the layout lacks (allocated after the checkpoint, or freed before it) must not come back."""


class Bump(Allocator):
    """O(1) pointer bump; never frees (dealloc is a successful no-op)."""

    def __init__(self) -> None:
        super().__init__()
        self._used = 0

    @property
    def used(self) -> int:
        return self._used

    def alloc(self, size: int, align: int = 1) -> int:
        _check_align(align)
        offset = _align_up(self._used, align)
        if size < 0 or offset + size > self.capacity:
            raise AllocationFailed(alloc_cause("bump_full", size=size, align=align, used=self._used),
                                   length=size, capacity=self.capacity)
        self._used = offset + size
        return offset

    def dealloc(self, offset: int) -> None:
        return None

    def reset(self) -> None:
        self._used = 0

    def layout_state(self) -> object:
        return self._used

    def restore_layout(self, state: object) -> None:
        self._used = state  # type: ignore[assignment]

    def live_test(self, state: object) -> Callable[[int], bool]:
        top = int(state)  # type: ignore[call-overload]
        return lambda offset: 0 <= offset < top


class Freelist(Allocator):
    """First-fit over an offset-sorted free list with coalescing; compactable."""

    compactable = True

    def __init__(self) -> None:
        super().__init__()
        self._free: list[tuple[int, int]] = []  # (offset, size), sorted, never adjacent
        self._live: dict[int, int] = {}
        self._used = 0

    def _on_attach(self) -> None:
        self._free = [(0, self.capacity)] if self.capacity else []

    @property
    def used(self) -> int:
        return self._used

    def alloc(self, size: int, align: int = 1) -> int:
        _check_align(align)
        if size <= 0:
            raise AllocationFailed(alloc_cause("empty_block"), length=size)
        for index, (start, length) in enumerate(self._free):
            offset = _align_up(start, align)
            end = offset + size
            if end > start + length:
                continue
            pieces = [(start, offset - start), (end, start + length - end)]
            self._free[index : index + 1] = [(s, n) for s, n in pieces if n > 0]
            self._live[offset] = size
            self._used += size
            return offset
        raise AllocationFailed(alloc_cause("no_free_block", size=size, align=align), length=size, capacity=self.capacity)

    def dealloc(self, offset: int) -> None:
        size = self._live.pop(offset, None)
        if size is None:
            raise OutOfBounds(dealloc_cause("no_block"), offset=offset, capacity=self.capacity)
        self._used -= size
        index = bisect.bisect_left(self._free, (offset, 0))
        start, end = offset, offset + size
        if index < len(self._free) and self._free[index][0] == end:
            end += self._free.pop(index)[1]
        if index > 0 and sum(self._free[index - 1]) == start:
            start = self._free.pop(index - 1)[0]
            index -= 1
        self._free.insert(index, (start, end - start))

    def live_blocks(self) -> list[tuple[int, int]]:
        return sorted(self._live.items())

    def free_blocks(self) -> list[tuple[int, int]]:
        return list(self._free)

    def layout_state(self) -> object:
        return tuple(self._free), tuple(sorted(self._live.items())), self._used

    def restore_layout(self, state: object) -> None:
        free, live, used = state  # type: ignore[misc]
        self._free, self._live, self._used = list(free), dict(live), used

    def live_test(self, state: object) -> Callable[[int], bool]:
        return blocks_test(state[1])  # type: ignore[index]

    def rebuild_after_compact(self, blocks: list[tuple[int, int]]) -> None:
        self._live = dict(blocks)
        self._used = sum(size for _, size in blocks)
        end = max((offset + size for offset, size in blocks), default=0)
        self._free = [(end, self.capacity - end)] if end < self.capacity else []


class Slab(Allocator):
    """Fixed-size slots, LIFO reuse, double free detected; not compactable."""

    def __init__(self, class_size: int) -> None:
        super().__init__()
        if not isinstance(class_size, int) or isinstance(class_size, bool) or class_size <= 0:
            raise ValueError(f"slab class size must be a positive int, got {class_size!r}")
        self.class_size = class_size
        self._free: list[int] = []  # stack of free slot indices; top = next handed out
        self._is_free: bytearray = bytearray()
        self._live = 0

    def _on_attach(self) -> None:
        slots = self.capacity // self.class_size
        self._free = list(range(slots - 1, -1, -1))
        self._is_free = bytearray(b"\x01") * slots

    @property
    def slots(self) -> int:
        return len(self._is_free)

    @property
    def used(self) -> int:
        return self._live * self.class_size

    def alloc(self, size: int, align: int = 1) -> int:
        _check_align(align)
        if size != self.class_size:
            raise AllocationFailed(alloc_cause("slab_size", size=size, class_size=self.class_size), length=size)
        if align > 1 and self.class_size % align:
            raise AllocationFailed(alloc_cause("slab_align", align=align, class_size=self.class_size), length=size)
        if not self._free:
            raise AllocationFailed(alloc_cause("slab_full", slots=self.slots), length=size, capacity=self.capacity)
        slot = self._free.pop()
        self._is_free[slot] = 0
        self._live += 1
        return slot * self.class_size

    def dealloc(self, offset: int) -> None:
        slot, misalignment = divmod(offset, self.class_size)
        if misalignment or not 0 <= slot < self.slots:
            raise OutOfBounds(dealloc_cause("slab_boundary", class_size=self.class_size), offset=offset,
                              capacity=self.capacity)
        if self._is_free[slot]:
            raise OutOfBounds(dealloc_cause("slab_free"), offset=offset, capacity=self.capacity)
        self._is_free[slot] = 1
        self._free.append(slot)
        self._live -= 1

    def describe(self) -> str:
        return f"slab({self.class_size})"

    def layout_state(self) -> object:
        return tuple(self._free), bytes(self._is_free), self._live

    def restore_layout(self, state: object) -> None:
        free, is_free, live = state  # type: ignore[misc]
        self._free, self._is_free, self._live = list(free), bytearray(is_free), live

    def live_test(self, state: object) -> Callable[[int], bool]:
        return slots_test(self.class_size, state[1])  # type: ignore[index]


def blocks_test(blocks: Iterable[tuple[int, int]]) -> Callable[[int], bool]:
    """``offset -> bool``: inside one of the live ``(offset, size)`` blocks (any order, never overlapping)."""
    ordered = sorted(blocks)
    starts = [start for start, _ in ordered]

    def holds(offset: int) -> bool:
        index = bisect.bisect_right(starts, offset) - 1
        return index >= 0 and offset < ordered[index][0] + ordered[index][1]

    return holds


def slots_test(class_size: int, is_free: bytes) -> Callable[[int], bool]:
    """``offset -> bool``: inside a slab slot of ``class_size`` bytes whose ``is_free`` byte is 0."""
    flags = bytes(is_free)

    def holds(offset: int) -> bool:
        slot = offset // class_size if offset >= 0 else -1
        return 0 <= slot < len(flags) and not flags[slot]

    return holds


def allocator_name(allocator: Allocator) -> str:
    """``Bump``, ``Freelist`` or ``Slab``: the model's class a region's allocator is (or specialises), as every
    layer names it in an error (``core.handle_faults.ALLOCATOR_NAMES``)."""
    for cls in (Bump, Freelist, Slab):
        if isinstance(allocator, cls):
            return cls.__name__
    return type(allocator).__name__
