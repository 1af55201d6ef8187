"""The ``guest-inline`` variant: the ``tvm`` kernel linked into one self-contained module.

The kernel is lowered exactly as for ``tvm`` (per-access typed loads and
stores, a ``tvm.alloc`` per block, all through the raw ABI), then linked by
the linker users run: ``link(kernel, target="guest", inline_runtime=True)``,
the same as ``tvm-wasm link --target guest --inline``. The result is the
self-contained module (directory and pools inside, no host) with the
runtime's fast paths inlined into the kernel's loops, so the figure is the
product's, side by side with ``guest`` (the bulk plan spliced into the module
as WAT) and ``tvm-inline`` (the same kernel inlined for ``TvmHost``).
Opt-in, like ``tvm-inline``: each kernel and code layout is linked first
(seconds per module, once; Binaryen's outputs are cached).
"""

from __future__ import annotations

import numpy as np
import wasmtime

from ..core.handle import Handle
from ..core.types import RegionKind
from ..guest.instance import GuestInstance
from ..host import native
from ..linker import link
from .ir import Kernel
from .lower_wat import TvmLowering
from .wasmtime_runner import Engines, Prepared, _set_global, arena_caps, arena_reps

VARIANT = "guest-inline"
POOLS = 4


def linked_guest(kernel_wat: str, engines: Engines) -> GuestInstance:
    """``kernel_wat`` (a module importing ``tvm.*``) linked with the runtime, inlined, instantiated."""
    linked = link(kernel_wat, target="guest", pools=POOLS, inline_runtime=True)
    return GuestInstance(linked.wasm, engine=engines.default)


def base_handle(gi: GuestInstance, region_id: int) -> int:
    return Handle(region_id, gi.region_info(region_id).generation, 0).to_i64()


def prepare_guest_inline(kernel: Kernel, engines: Engines, arena_limit: int, pad: int = 0) -> Prepared:
    max_reps = arena_reps(kernel, arena_limit)
    caps = arena_caps(kernel, max_reps)
    lowering = TvmLowering(kernel, caps, pad=pad)
    gi = linked_guest(lowering.render(), engines)
    store, instance = gi.store, gi.instance
    region_ids: dict[str, list[int]] = {}

    def place(buf_name: str, ids: list[int]) -> None:
        buf = kernel.buffer(buf_name)
        if buf.segments == 1:
            _set_global(instance, store, f"h_{buf.name}", base_handle(gi, ids[0]), "i64")
        else:
            table = np.array([base_handle(gi, r) for r in ids], dtype=np.int64)
            at = lowering.table_at[buf.name]
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
    assert isinstance(run, wasmtime.Func)

    def reset() -> None:
        """Arenas start empty for every call: the module has no bump reset, so destroy and recreate."""
        for arena in kernel.arenas:
            gi.destroy_region(region_ids[arena.name][0])
            region_ids[arena.name] = [gi.create_region(RegionKind.OBJECT_ARENA, caps[arena.name])]
            place(arena.name, region_ids[arena.name])

    notes = [f"tvm kernel linked by tvm_wasm.linker (--target guest --inline, {POOLS} pools, no host)"]
    return Prepared(lambda reps: run(store, reps), reset if kernel.arenas else None, max_reps, notes,
                    keep=[gi])
