"""Pools: the 32-bit memories that hold region bytes, and the spans in them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import wasmtime

from ..core.errors import AllocationFailed
from ..runtime.layout import PAGE, WASM32_MAX_PAGES
from . import native
from .spans import SpanAllocator

POOL_BYTES = PAGE * WASM32_MAX_PAGES


@dataclass(frozen=True, slots=True)
class Span:
    """Where a region's bytes live: a page-aligned range of one pool."""

    pool: int
    base: int
    length: int


class Pool:
    """One 32-bit memory; spans are page-aligned so spilled ones can be released."""

    def __init__(self, store: wasmtime.Store, index: int) -> None:
        self.store = store
        self.index = index
        self.memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(0, WASM32_MAX_PAGES)))
        self.spans = SpanAllocator(0, POOL_BYTES, PAGE, self._grow_to)
        self._view: np.ndarray | None = None

    def _grow_to(self, end: int) -> bool:
        """Grow to hold ``end`` bytes; False when the engine refuses (reservation, OS), nothing changed."""
        pages = -(-end // PAGE) - self.memory.size(self.store)
        if pages > 0:
            try:
                self.memory.grow(self.store, pages)
            except wasmtime.WasmtimeError:
                return False
            self._view = None
        return True

    @property
    def view(self) -> np.ndarray:
        if self._view is None or len(self._view) != self.memory.data_len(self.store):
            self._view = native.memory_view(self.memory, self.store)
        return self._view

    def release(self, span: Span) -> None:
        native.release_pages(self.memory, self.store, span.base, self.spans.round(span.length))
        self.spans.free(span.base, span.length)


class PoolSet:
    """A fixed set of pools, created up front so every runtime instance can import them all."""

    def __init__(self, store: wasmtime.Store, count: int) -> None:
        if not 1 <= count <= 64:
            raise ValueError(f"pool count must be in 1..64, got {count}")
        self.pools = [Pool(store, k) for k in range(count)]

    def __len__(self) -> int:
        return len(self.pools)

    def detach(self) -> None:
        """Forget cached views (the store is closing); a later view asks the closed store and fails."""
        for pool in self.pools:
            pool._view = None

    def __getitem__(self, index: int) -> Pool:
        return self.pools[index]

    def allocate(self, length: int) -> Span:
        """First pool with room wins (freed spans first, then growth)."""
        for pool in self.pools:
            base = pool.spans.allocate(length)
            if base is not None:
                return Span(pool.index, base, length)
        raise AllocationFailed(
            f"no pool has room for {length} bytes ({len(self.pools)} pools of up to 4 GiB; "
            "full, or the engine cannot grow them further)",
            length=length,
        )

    def release(self, span: Span) -> None:
        self.pools[span.pool].release(span)

    def bytes_of(self, span: Span) -> np.ndarray:
        """Zero-copy view of a span's bytes."""
        return self.pools[span.pool].view[span.base : span.base + span.length]
