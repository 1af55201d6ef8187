"""Backing stores: where Cold regions' bytes live.

A store keeps one copy per (region id, generation). ``load`` never returns
bytes it cannot vouch for: a missing, torn or corrupted copy raises
``BackingStoreError``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .errors import BackingStoreError


@runtime_checkable
class BackingStore(Protocol):
    """What the directory needs to spill and fault regions."""

    def spill(self, region_id: int, generation: int, data: bytes) -> None:
        """Store ``data`` durably as the copy of (region_id, generation)."""

    def load(self, region_id: int, generation: int) -> bytes:
        """Return the stored copy, verified; raise ``BackingStoreError`` otherwise."""

    def delete(self, region_id: int, generation: int) -> None:
        """Forget the copy; deleting a missing copy is not an error."""


class MemoryBackingStore:
    """An in-process store for tests and small embedders."""

    def __init__(self) -> None:
        self._copies: dict[tuple[int, int], bytes] = {}

    def spill(self, region_id: int, generation: int, data: bytes) -> None:
        self._copies[(region_id, generation)] = bytes(data)

    def load(self, region_id: int, generation: int) -> bytes:
        try:
            return self._copies[(region_id, generation)]
        except KeyError:
            raise BackingStoreError(
                "no spilled copy", region_id=region_id, generation=generation
            ) from None

    def delete(self, region_id: int, generation: int) -> None:
        self._copies.pop((region_id, generation), None)

    def __len__(self) -> int:
        return len(self._copies)

    def __contains__(self, key: object) -> bool:
        return key in self._copies
