"""What the embedder's checkpoints need from the self-contained module, in wasm.

Checkpoint pages are kept by the embedder (``GuestInstance``, like the Cold
tier), which reads region bytes from the exported pools and dirty pages
through ``next_dirty_page``. A rollback must also put back the allocator's
state and, when the layout changed, move the region to a generation it never
had; both live in the private ``$meta`` memory, so the module exports:

- ``layout_size(id)``: bytes of the region's allocator state (-1: no region);
- ``save_layout(id, ptr)`` / ``load_layout(id, ptr)``: copy it (``SLOT_USED``,
  then the slab or block side table) to / from the default memory at ``ptr``
  (outside it: 7; ``load_layout`` of a read-only region: 8);
- ``renew_generation(id)``: the next generation, migrate history dropped
  (at 65535: 5, nothing changes).
"""

from __future__ import annotations

from ..core.errors import AllocationFailed, GuestMemoryError, ReadOnly, RegionNotFound
from ..runtime import layout as L
from ..runtime.bridge_module import GUEST_MEMORY
from ..runtime.wat import Func
from . import layout as G
from .control import (
    META,
    accessor,
    current_generation,
    fail,
    live_region,
    read_only,
    region_op,
    set_state,
    side_table_len,
    slot_load,
    slot_store,
)


def layout_len() -> str:
    """Folded i32: bytes of the allocator state of the region in ``$slot`` (used + side table)."""
    return f"(i32.add (i32.const 4) (select (i32.wrap_i64 {side_table_len()}) (i32.const 0) {slot_load(G.GS_SIDE)}))"


def _copy_layout(name: str, to_guest: bool) -> Func:
    """``name(id, ptr) -> code``: the allocator state to (``save_layout``) or from (``load_layout``) guest memory."""
    guest_end = f"(i64.mul (i64.extend_i32_u (memory.size {GUEST_MEMORY})) (i64.const {L.PAGE}))"
    side = "(i32.add (local.get $ptr) (i32.const 4))"
    if to_guest:
        used = f"(i32.store {GUEST_MEMORY} (local.get $ptr) {slot_load(L.SLOT_USED)})"
        table = f"(memory.copy {GUEST_MEMORY} {META} {side} {slot_load(G.GS_SIDE)} (i32.sub (local.get $len) (i32.const 4)))"
        guard: list[str] = []
    else:
        used = slot_store(L.SLOT_USED, f"(i32.load {GUEST_MEMORY} (local.get $ptr))")
        table = f"(memory.copy {META} {GUEST_MEMORY} {slot_load(G.GS_SIDE)} {side} (i32.sub (local.get $len) (i32.const 4)))"
        guard = [f"(if {read_only()} {fail(ReadOnly.code)})"]
    body = [
        *live_region(fail(RegionNotFound.code)),
        *guard,
        f"(local.set $len {layout_len()})",
        f"(if (i64.gt_u (i64.add (i64.extend_i32_u (local.get $ptr)) (i64.extend_i32_u (local.get $len))) {guest_end})"
        f" {fail(GuestMemoryError.code)})",
        used,
        f"(if {slot_load(G.GS_SIDE)} (then {table}))",
        "(i32.const 0)",
    ]
    return Func(name, [("id", "i32"), ("ptr", "i32")], ["i32"], [("slot", "i32"), ("len", "i32")], body, export=name)


def renew_generation_func() -> Func:
    """renew_generation(id) -> code: the next generation (old handles: code 2), no migrate from before it."""
    return region_op("renew_generation", [
        "(local.set $gen " + current_generation() + ")",
        f"(if (i32.ge_u (local.get $gen) (i32.const {L.GEN_MASK})) {fail(AllocationFailed.code)})",
        slot_store(G.GS_PREV_GEN, "(i32.const 0)"),
        *set_state(f"(i32.or (i32.and {slot_load(L.SLOT_STATE)} (i32.const {~L.GEN_MASK}))"
                   " (i32.add (local.get $gen) (i32.const 1)))"),
    ], [("gen", "i32")])


def rollback_funcs() -> list[Func]:
    return [
        accessor("layout_size", layout_len),
        _copy_layout("save_layout", to_guest=True),
        _copy_layout("load_layout", to_guest=False),
        renew_generation_func(),
    ]
