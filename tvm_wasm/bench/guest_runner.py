"""The ``guest`` variant: the kernel spliced into the self-contained guest module (``tvm_wasm.guest``).

The kernel follows the same plan as ``tvm-bulk`` (streamed buffers in 16 KiB
chunks, random-access buffers read whole once per repetition, rare buffers
per access, arenas in 16 KiB TLABs written back), but it calls the ABI
inside its own module (``call $read``: a direct call, no instance boundary),
and there is no host: regions are created through the module's own control
plane (``create_region_with``), and the data plane never leaves wasm.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..core.handle import Handle
from ..core.types import RegionKind
from ..host import native
from ..runtime.wat import Module
from .ir import Kernel
from .lower_wat import PAGE, BulkLowering
from .results import Row, Unavailable
from .wasmtime_runner import Engines, Prepared, _set_global, arena_caps, arena_reps

if TYPE_CHECKING:
    from ..guest.instance import GuestInstance
    from .matrix import Config

GUEST_POOLS = 4


class GuestLowering(BulkLowering):
    """``tvm-bulk``'s plan, calling the module's own ABI functions by name."""

    variant = "guest"

    def need(self, name: str, params: list[str], results: list[str]) -> str:
        return f"${name}"

    def header(self) -> None:  # the module defines the default memory ``$g``; only globals here
        self.handle_globals()
        self.tlab_globals()

    def user_wat(self) -> str:
        """The kernel as module fields to splice in (no ``(module`` wrapper)."""
        text = self.render()
        lines = text.splitlines()
        assert lines[0] == "(module" and lines[-1] == ")"
        return "\n".join(lines[1:-1])


def _guest(kernel_fields: str, guest_pages: int) -> object:
    try:
        from ..guest import build_module
        from ..guest.instance import GuestInstance
    except ImportError:

        raise Unavailable("the self-contained guest module (tvm_wasm.guest) is not in this build") from None
    module = build_module(pools=GUEST_POOLS, user_wat=kernel_fields, guest_pages=guest_pages)
    return module, GuestInstance


def prepare_guest(kernel: Kernel, engines: Engines, arena_limit: int, pad: int = 0) -> Prepared:
    max_reps = arena_reps(kernel, arena_limit)
    caps = arena_caps(kernel, max_reps)
    lowering = GuestLowering(kernel, caps, pad=pad)
    module, guest_instance = _guest(lowering.user_wat(), lowering.end // PAGE)
    gi = guest_instance(module, engine=engines.default)  # type: ignore[operator]
    call, reset = kernel_in_guest(gi, kernel, caps, lowering.table_at, tlab_globals=True)
    notes = ["self-contained module (4 pools, no host), bulk plan with in-module ABI calls"]
    return Prepared(call, reset, max_reps, notes, keep=[gi, module])


def kernel_in_guest(gi: GuestInstance, kernel: Kernel, caps: dict[str, int], table_at: dict[str, int], *,
                    tlab_globals: bool) -> tuple[Callable[[int], object], Callable[[], None] | None]:
    """Create ``kernel``'s regions in the guest module ``gi`` (data written through views), place their
    handles (globals ``h_``/``r_``, or a table at ``table_at`` in guest memory) and return the kernel's
    ``run`` and, for kernels with arenas, the reset between calls."""
    store, instance = gi.store, gi.instance
    region_ids: dict[str, list[int]] = {}

    def base_handle(rid: int) -> int:
        return Handle(rid, gi.region_info(rid).generation, 0).to_i64()

    def place(buf_name: str, ids: list[int]) -> None:
        buf = kernel.buffer(buf_name)
        if buf.segments == 1:
            _set_global(instance, store, f"h_{buf.name}", base_handle(ids[0]), "i64")
        else:
            table = np.array([base_handle(r) for r in ids], dtype=np.int64)
            at = table_at[buf.name]
            native.memory_view(gi.guest_memory, store)[at : at + 8 * len(ids)] = table.view(np.uint8)
        if buf.access == "arena":
            _set_global(instance, store, f"r_{buf.name}", ids[0])

    for buf in kernel.buffers:
        capacity = caps[buf.name] if buf.access == "arena" else buf.size // buf.segments
        kind = RegionKind.OBJECT_ARENA if buf.access == "arena" else RegionKind.BLOB_ARENA
        ids = [gi.create_region(kind, capacity) for _ in range(buf.segments)]
        region_ids[buf.name] = ids
        if buf.data is not None:
            data = np.frombuffer(buf.data, dtype=np.uint8)
            seg = buf.size // buf.segments
            for k, rid in enumerate(ids):
                gi.view(rid)[:seg] = data[k * seg : (k + 1) * seg]
        place(buf.name, ids)
    run = instance.exports(store)["run"]

    def reset() -> None:
        """Arenas start empty for every call: the module has no bump reset, so destroy and recreate."""
        for arena in kernel.arenas:
            gi.destroy_region(region_ids[arena.name][0])
            region_ids[arena.name] = [gi.create_region(RegionKind.OBJECT_ARENA, caps[arena.name])]
            place(arena.name, region_ids[arena.name])
            for g in ("tl", "tle", "tlf") if tlab_globals else ():
                _set_global(instance, store, f"{g}_{arena.name}", 0)

    return (lambda reps: run(store, reps)), (reset if kernel.arenas else None)  # type: ignore[operator]


