"""Read-only regions, dirty-page tracking and discard in the self-contained module, in wasm.

Both are store-only flags of ``SLOT_WRITE_STATE`` (see
:mod:`tvm_wasm.runtime.layout`): loads compare ``SLOT_STATE`` and never see
them, every store compares ``SLOT_WRITE_STATE``, so a flagged region takes
the store's slow branch, where the shared ``$write_barrier`` refuses a
read-only region (code 8) or sets the dirty bits of the pages the store
touches. This module only sets and clears the flags, owns the dirty bitmap
(a side table in the ``$meta`` side-table arena) and answers the queries.
``discard`` is a store of zeros through the same barrier (a wasm memory
cannot give pages back, so it is ``memory.fill``).
"""

from __future__ import annotations

from ..core.errors import AllocationFailed, PolicyViolation, RegionNotFound
from ..runtime import access as A
from ..runtime import layout as L
from ..runtime.conventions import bad_pool, pool_name, return_code_on_error
from ..runtime.wat import Func, per_pool
from . import layout as G
from .control import (
    META, accessor, dirty_table_len, fail, give_side_span, live_region, read_only, region_op, slot_load, slot_store,
)


def set_write_flag(flag: int, on: str) -> str:
    """Set ``flag`` in ``SLOT_WRITE_STATE`` when ``on`` (a folded i32) is non-zero, else clear it."""
    state = slot_load(L.SLOT_WRITE_STATE)
    return slot_store(L.SLOT_WRITE_STATE, f"(select (i32.or {state} (i32.const {flag}))"
                                          f" (i32.and {state} (i32.const {~flag})) {on})")


def tracked() -> str:
    """Folded i32: the region in ``$slot`` has a dirty bitmap."""
    return f"(i32.and {slot_load(L.SLOT_WRITE_STATE)} (i32.const {L.FLAG_TRACK_DIRTY}))"


def protect_func() -> Func:
    """protect(id, read_only) -> code: set or clear the read-only flag (1 if no such region)."""
    body = [*live_region(fail(RegionNotFound.code)), set_write_flag(L.FLAG_READ_ONLY, "(local.get $read_only)"),
            "(i32.const 0)"]
    return Func("protect", [("id", "i32"), ("read_only", "i32")], ["i32"], [("slot", "i32")], body, export="protect")


def track_dirty_func(pools: int) -> Func:
    """track_dirty(id, enabled) -> code: place a zeroed bitmap and set the flag, or clear it and give the bitmap back.

    Already so: a no-op. No room in the side-table arena: 5, nothing changes.
    """
    arena = f"(i32.const {pools})"
    body = [
        *live_region(fail(RegionNotFound.code)),
        f"(if (i32.eq (i32.ne (local.get $enabled) (i32.const 0)) (i32.ne {tracked()} (i32.const 0)))"
        " (then (return (i32.const 0))))",
        "(if (local.get $enabled) (then",
        f"  (local.set $table (call $span_take {arena} {dirty_table_len()}))",  # free arena bytes read as zero
        f"  (if (i64.lt_s (local.get $table) (i64.const 0)) {fail(AllocationFailed.code)})",
        f"  {slot_store(L.SLOT_DIRTY_TABLE, '(i32.wrap_i64 (local.get $table))')}",
        f"  {set_write_flag(L.FLAG_TRACK_DIRTY, '(i32.const 1)')}",
        "  (return (i32.const 0))))",
        set_write_flag(L.FLAG_TRACK_DIRTY, "(i32.const 0)"),  # stores stop marking before the bitmap goes
        give_side_span(pools, slot_load(L.SLOT_DIRTY_TABLE), dirty_table_len()),
        slot_store(L.SLOT_DIRTY_TABLE, "(i32.const 0)"),
        "(i32.const 0)",
    ]
    return Func("track_dirty", [("id", "i32"), ("enabled", "i32")], ["i32"], [("slot", "i32"), ("table", "i64")], body,
                export="track_dirty")


def clear_dirty_func() -> Func:
    """clear_dirty(id) -> code: every page clean (9 if the region is not tracked)."""
    return region_op("clear_dirty", [
        f"(if (i32.eqz {tracked()}) {fail(PolicyViolation.code)})",
        f"(memory.fill {META} {slot_load(L.SLOT_DIRTY_TABLE)} (i32.const 0) (i32.wrap_i64 {dirty_table_len()}))",
    ])


def next_dirty_page_func() -> Func:
    """next_dirty_page(id, from) -> the first dirty page at or after ``from``, -1 if none; -2 with ``last_error``.

    Skips clean bytes of the bitmap eight pages at a time.
    """
    bitmap_byte = (f"(i32.shr_u (i32.load8_u {META} (i32.add (local.get $table) (i32.shr_u (local.get $page)"
                   " (i32.const 3)))) (i32.and (local.get $page) (i32.const 7)))")
    body = [
        *live_region(fail(RegionNotFound.code, "(i64.const -2)")),
        f"(if (i32.eqz {tracked()}) {fail(PolicyViolation.code, '(i64.const -2)')})",
        f"(local.set $table {slot_load(L.SLOT_DIRTY_TABLE)})",
        (f"(local.set $pages (i32.wrap_i64 (i64.shr_u (i64.add {slot_load(L.SLOT_CAPACITY, 'i64.load32_u')}"
         f" (i64.const {L.DIRTY_PAGE - 1})) (i64.const {L.DIRTY_PAGE_SHIFT}))))"),
        "(local.set $page (local.get $from))",
        "(block $none (loop $scan",
        "  (br_if $none (i32.ge_u (local.get $page) (local.get $pages)))",
        f"  (local.set $bits {bitmap_byte})",
        "  (if (i32.and (local.get $bits) (i32.const 1)) (then (return (i64.extend_i32_u (local.get $page)))))",
        "  (local.set $page (select (i32.add (local.get $page) (i32.const 1))"
        " (i32.add (i32.or (local.get $page) (i32.const 7)) (i32.const 1)) (local.get $bits)))",
        "  (br $scan)))",
        "(i64.const -1)",
    ]
    locals_ = [("slot", "i32"), ("table", "i32"), ("pages", "i32"), ("page", "i32"), ("bits", "i32")]
    return Func("next_dirty_page", [("id", "i32"), ("from", "i32")], ["i64"], locals_, body, export="next_dirty_page")


def discard_func(pools: int) -> Func:
    """discard(h, len) -> code: the store checks (read-only: 8; tracked pages dirty), then zeros, counted."""
    body = [
        *A.resolve_store("h", ["local.get $len", "i64.extend_i32_u", "i64.add"], ["i32.const 0"], ["local.get $len"],
                         return_code_on_error),
        slot_store(G.GS_BYTES_DISCARDED, f"(i64.add {slot_load(G.GS_BYTES_DISCARDED, 'i64.load')}"
                                         " (i64.extend_i32_u (local.get $len)))", "i64.store"),
        *A.stamp_epoch(),
        *per_pool(pools, lambda k: ["local.get $addr", "i32.const 0", "local.get $len", f"memory.fill {pool_name(k)}",
                                    "i32.const 0", "return"],
                  A.pool_index(), [*bad_pool(), *return_code_on_error()]),
    ]
    return Func("discard", [("h", "i64"), ("len", "i32")], ["i32"], A.RESOLVE_LOCALS, body, export="discard")


def protection_funcs(pools: int) -> list[Func]:
    return [
        protect_func(), track_dirty_func(pools), clear_dirty_func(), next_dirty_page_func(), discard_func(pools),
        accessor("region_read_only", lambda: f"(i32.ne {read_only()} (i32.const 0))"),
    ]
