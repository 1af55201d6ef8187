"""First-fit span allocation inside one growable memory (pools, side tables)."""

from __future__ import annotations

import bisect
from collections.abc import Callable


class SpanAllocator:
    """Hands out aligned spans below ``limit``; calls ``grow_to(end)`` as the high-water mark rises.

    ``grow_to`` answers False when the memory cannot grow that far (its maximum, the
    engine's reservation, the OS): the span does not fit, exactly as above ``limit``.
    """

    def __init__(self, start: int, limit: int, align: int, grow_to: Callable[[int], bool]) -> None:
        self.align = align
        self.limit = limit
        self.top = start
        self._free: list[tuple[int, int]] = []  # (start, length), sorted, coalesced
        self._grow_to = grow_to

    def round(self, length: int) -> int:
        return max(self.align, -(-length // self.align) * self.align)

    def allocate(self, length: int) -> int | None:
        """Start of a zeroed span of ``round(length)`` bytes, or None when it does not fit."""
        size = self.round(length)
        for index, (start, free) in enumerate(self._free):
            if free >= size:
                if free == size:
                    del self._free[index]
                else:
                    self._free[index] = (start + size, free - size)
                return start
        if self.top + size > self.limit:
            return None
        start = self.top
        if not self._grow_to(start + size):
            return None
        self.top = start + size
        return start

    def free(self, start: int, length: int) -> None:
        """Return a span (already zeroed by the caller); neighbours merge."""
        size = self.round(length)
        index = bisect.bisect_left(self._free, (start, 0))
        end = start + size
        if index < len(self._free) and self._free[index][0] == end:
            end += self._free.pop(index)[1]
        if index > 0 and sum(self._free[index - 1]) == start:
            start = self._free.pop(index - 1)[0]
            index -= 1
        if end == self.top:
            self.top = start  # the memory keeps its size; the span is reused first
        else:
            self._free.insert(index, (start, end - start))

    @property
    def free_bytes(self) -> int:
        return self.limit - self.top + sum(length for _, length in self._free)
