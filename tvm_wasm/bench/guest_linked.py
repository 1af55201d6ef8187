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

from ..core.handle import Handle
from ..guest.instance import GuestInstance
from ..linker import link
from .guest_runner import kernel_in_guest
from .ir import Kernel
from .lower_wat import TvmLowering
from .wasmtime_runner import Engines, Prepared, arena_caps, arena_reps

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
    call, reset = kernel_in_guest(gi, kernel, caps, lowering.table_at, tlab_globals=False)
    notes = [f"tvm kernel linked by tvm_wasm.linker (--target guest --inline, {POOLS} pools, no host)"]
    return Prepared(call, reset, max_reps, notes, keep=[gi])
