"""Who hears of the pool bytes a data-plane write may change.

The shared ABI code is the same for both deployments, but what a write must
leave behind differs. ``TvmHost`` zeroes a destroyed region's span with
``madvise`` and needs nothing (``NO_NOTICE``: the generated code is exactly
what it was). The self-contained module keeps a map of the pool pages writes
have touched, so a freed span is zeroed in proportion to what its region
wrote (see :mod:`tvm_wasm.guest.touched`). Every write path of the ABI
(typed stores, ``write``, ``copy``, ``copy_region``, ``fill``) emits its
notice after its checks passed and before the bytes move; loads emit
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from .wat import Code


@dataclass(frozen=True)
class WriteNotice:
    """Code emitted where a write is about to change pool bytes; the base class emits none."""

    def store(self, pool: int) -> Code:
        """A typed store to pool ``pool`` (a constant) at the address in ``$addr``."""
        return []

    def span(self, pool: Code, addr: Code, length: Code) -> Code:
        """A bulk write of ``length`` bytes (i32) at ``addr`` (i32) of the pool ``pool`` (i32)."""
        return []


NO_NOTICE = WriteNotice()
