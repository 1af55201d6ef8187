"""Read-only regions, dirty-page tracking and discard in the self-contained module, in wasm.

Both are store-only flags of ``SLOT_WRITE_STATE`` (see
:mod:`tvm_wasm.runtime.layout`): loads compare ``SLOT_STATE`` and never see
them. Every store of a read-only region takes its slow branch, where the
shared ``$write_barrier`` refuses it (code 8). A tracked region has a
dirty-page map (one byte per 4 KiB page, a side table in the ``$meta``
side-table arena, found through ``SLOT_DIRTY_TABLE``): typed stores mark it
with one unconditional ``i32.store8`` per page they touch (an untracked
region's marks land in a scratch map nobody reads), bulk writes take the slow
branch and ``$write_barrier`` fills their range. This module only sets and
clears the flags, owns the maps and answers the queries. ``discard`` is a
store of zeros through the same barrier (a wasm memory cannot give pages
back, so it is ``memory.fill``).
"""

from __future__ import annotations

from ..core.errors import AllocationFailed, PolicyViolation, RegionNotFound
from ..runtime import access as A
from ..runtime import layout as L
from ..runtime.conventions import bad_pool, pool_name, return_code_on_error
from ..runtime.wat import Func, per_pool
from . import layout as G
from .control import (
    META, accessor, dirty_map_start, dirty_table_len, fail, give_side_span, live_region, read_only, region_op, slot_load, slot_store,
)


def set_write_flag(flag: int, on: str) -> str:
    """Set ``flag`` in ``SLOT_WRITE_STATE`` when ``on`` (a folded i32) is non-zero, else clear it."""
    state = slot_load(L.SLOT_WRITE_STATE)
    return slot_store(L.SLOT_WRITE_STATE, f"(select (i32.or {state} (i32.const {flag}))"
                                          f" (i32.and {state} (i32.const {~flag})) {on})")


def tracked() -> str:
    """Folded i32: the region in ``$slot`` has a dirty-page map."""
    return f"(i32.and {slot_load(L.SLOT_WRITE_STATE)} (i32.const {L.FLAG_TRACK_DIRTY}))"


def protect_func() -> Func:
    """protect(id, read_only) -> code: set or clear the read-only flag (1 if no such region)."""
    body = [*live_region(fail(RegionNotFound.code)), set_write_flag(L.FLAG_READ_ONLY, "(local.get $read_only)"),
            "(i32.const 0)"]
    return Func("protect", [("id", "i32"), ("read_only", "i32")], ["i32"], [("slot", "i32")], body, export="protect")


def track_dirty_func(pools: int) -> Func:
    """track_dirty(id, enabled) -> code: place a zeroed dirty-page map and set the flag, or clear it and give
    the map back.

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
        f"  {slot_store(L.SLOT_DIRTY_TABLE, f'(i32.sub (i32.wrap_i64 (local.get $table)) (i32.const {L.DIRTY_SCRATCH}))')}",
        f"  {set_write_flag(L.FLAG_TRACK_DIRTY, '(i32.const 1)')}",
        "  (return (i32.const 0))))",
        f"(local.set $start {dirty_map_start()})",
        # typed stores mark through the field: point it back at the scratch map before the map goes
        slot_store(L.SLOT_DIRTY_TABLE, "(i32.const 0)"),
        set_write_flag(L.FLAG_TRACK_DIRTY, "(i32.const 0)"),
        give_side_span(pools, "(local.get $start)", dirty_table_len()),
        "(i32.const 0)",
    ]
    locals_ = [("slot", "i32"), ("table", "i64"), ("start", "i32")]
    return Func("track_dirty", [("id", "i32"), ("enabled", "i32")], ["i32"], locals_, body, export="track_dirty")


def clear_dirty_func() -> Func:
    """clear_dirty(id) -> code: every page clean (9 if the region is not tracked)."""
    return region_op("clear_dirty", [
        f"(if (i32.eqz {tracked()}) {fail(PolicyViolation.code)})",
        f"(memory.fill {META} {dirty_map_start()} (i32.const 0) (i32.wrap_i64 {dirty_table_len()}))",
    ])


def next_dirty_page_func() -> Func:
    """next_dirty_page(id, from) -> the first dirty page at or after ``from``, -1 if none; -2 with ``last_error``.

    Skips clean pages of the map eight at a time (one ``i64.load`` of a whole aligned word).
    """
    word = f"(i64.load {META} (i32.add (local.get $table) (i32.and (local.get $page) (i32.const -8))))"
    body = [
        *live_region(fail(RegionNotFound.code, "(i64.const -2)")),
        f"(if (i32.eqz {tracked()}) {fail(PolicyViolation.code, '(i64.const -2)')})",
        f"(local.set $table {dirty_map_start()})",
        (f"(local.set $pages (i32.wrap_i64 (i64.shr_u (i64.add {slot_load(L.SLOT_CAPACITY, 'i64.load32_u')}"
         f" (i64.const {L.DIRTY_PAGE - 1})) (i64.const {L.DIRTY_PAGE_SHIFT}))))"),
        "(local.set $page (local.get $from))",
        "(block $none (loop $scan",
        "  (br_if $none (i32.ge_u (local.get $page) (local.get $pages)))",
        # the word's bytes from the page's own on (little-endian: byte k is bits 8k..8k+7)
        f"  (local.set $bits (i64.shr_u {word} (i64.extend_i32_u (i32.shl (i32.and (local.get $page) (i32.const 7))"
        " (i32.const 3)))))",
        "  (if (i64.ne (local.get $bits) (i64.const 0)) (then",
        "    (local.set $page (i32.add (local.get $page) (i32.wrap_i64 (i64.shr_u (i64.ctz (local.get $bits))"
        " (i64.const 3)))))",
        # map bytes past the last page stay zero, but the page must still be inside the region
        "    (br_if $none (i32.ge_u (local.get $page) (local.get $pages)))",
        "    (return (i64.extend_i32_u (local.get $page)))))",
        "  (local.set $page (i32.add (i32.or (local.get $page) (i32.const 7)) (i32.const 1)))",
        "  (br $scan)))",
        "(i64.const -1)",
    ]
    locals_ = [("slot", "i32"), ("table", "i32"), ("pages", "i32"), ("page", "i32"), ("bits", "i64")]
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


def note_write_func() -> Func:
    """note_write(h, len) -> code: a writable view of the range was handed out; the store's checks and write
    barrier (read-only: 8; a tracked region's pages in the range turn dirty), no byte changes."""
    body = [
        *A.resolve_store("h", ["local.get $len", "i64.extend_i32_u", "i64.add"], ["i32.const 0"], ["local.get $len"],
                         return_code_on_error),
        "i32.const 0",
    ]
    return Func("note_write", [("h", "i64"), ("len", "i32")], ["i32"], A.RESOLVE_LOCALS, body, export="note_write")


def protection_funcs(pools: int) -> list[Func]:
    return [
        protect_func(), track_dirty_func(pools), clear_dirty_func(), next_dirty_page_func(), discard_func(pools),
        note_write_func(),
        accessor("region_read_only", lambda: f"(i32.ne {read_only()} (i32.const 0))"),
    ]
