"""The compactable allocator, in wasm: bump allocation plus a per-region block table.

The host's compactable allocator is a Python ``Freelist`` entered through the
slow path; a module with no host needs one of its own. This one is simple on
purpose: ``alloc`` bumps and appends ``(offset, size)`` to the region's block
table (kept in offset order), ``dealloc`` marks a block dead (binary search),
and ``compact_region`` slides the live blocks down in order, zeroes the tail
and remembers each block's previous offset, so ``migrate`` can turn a handle
of the previous generation into its new form. Dead space is reclaimed only
by compaction: an allocation that does not fit above the bump fails (code 5).

It serves the slot's Freelist allocator kind, through the three functions
the shared ABI code calls on the host: ``$host_alloc``, ``$host_dealloc``
and ``$host_fault`` (there is no Cold tier without a host, so a fault is
always "not resident").
"""

from __future__ import annotations

from ..core.errors import AllocationFailed, NotResident, OutOfBounds, StaleHandle
from ..runtime import access as A
from ..runtime import layout as L
from ..runtime.core_module import count_allocation, make_handle, pool_name
from ..runtime.wat import Func, per_pool
from . import layout as G

META = "$meta"


def slot_u32(field: int, slot: str = "$slot") -> str:
    return f"(i32.load {META} offset={L.SLOTS + field} (local.get {slot}))"


def block_field(field: int, entry: str = "$e") -> str:
    return f"(i32.load {META} offset={field} (local.get {entry}))"


def block_at(index: str) -> str:
    """Meta address of entry ``index`` of the block table at ``$table``."""
    return f"(i32.add (i32.add (local.get $table) (i32.const {G.BT_ENTRIES})) (i32.shl (local.get ${index}) (i32.const 4)))"


def table_u32(field: int) -> str:
    return f"(i32.load {META} offset={field} (local.get $table))"


def set_table_u32(field: int, value: str) -> str:
    return f"(i32.store {META} offset={field} (local.get $table) {value})"


def fault_func() -> Func:
    """A live region here is always resident; anything else cannot be faulted in."""
    return Func("host_fault", [("id", "i32")], ["i32"], [], [f"(i32.const {NotResident.code})"])


def find_func() -> Func:
    """Index of the entry whose ``field`` (offset or previous offset, both ascending) is ``key``; -1 if none."""
    body = [
        f"(local.set $hi {table_u32(G.BT_COUNT)})",
        "(block $found (loop $halve",
        "  (br_if $found (i32.ge_u (local.get $lo) (local.get $hi)))",
        "  (local.set $mid (i32.shr_u (i32.add (local.get $lo) (local.get $hi)) (i32.const 1)))",
        f"  (local.set $e {block_at('mid')})",
        "  (if (i32.lt_u (i32.load $meta (i32.add (local.get $e) (local.get $field))) (local.get $key))",
        "    (then (local.set $lo (i32.add (local.get $mid) (i32.const 1))))",
        "    (else (local.set $hi (local.get $mid))))",
        "  (br $halve)))",
        f"(if (i32.ge_u (local.get $lo) {table_u32(G.BT_COUNT)}) (then (return (i32.const -1))))",
        f"(local.set $e {block_at('lo')})",
        ("(select (local.get $lo) (i32.const -1)"
        " (i32.eq (i32.load $meta (i32.add (local.get $e) (local.get $field))) (local.get $key)))"),
    ]
    params = [("table", "i32"), ("field", "i32"), ("key", "i32")]
    locals_ = [("lo", "i32"), ("hi", "i32"), ("mid", "i32"), ("e", "i32")]
    return Func("block_find", params, ["i32"], locals_, body)


def alloc_func() -> Func:
    """``$host_alloc``: bump and record the block; 0 with the code in the header when it does not fit."""
    fail = (
        f"(then (i32.store {META} offset={L.HDR_HOST_ERROR} (i32.const 0) (i32.const {AllocationFailed.code}))"
        " (return (i64.const 0)))"
    )
    body = [
        f"(local.set $slot (i32.shl (local.get $region) (i32.const {L.SLOT_SHIFT})))",
        f"(local.set $table {slot_u32(G.GS_SIDE)})",
        f"(if (i32.eqz (local.get $size)) {fail})",
        f"(local.set $count {table_u32(G.BT_COUNT)})",
        f"(if (i32.ge_u (local.get $count) {table_u32(G.BT_CAP)}) {fail})",
        f"(local.set $offset {table_u32(G.BT_BUMP)})",
        ("(if (i64.gt_u (i64.add (i64.extend_i32_u (local.get $offset)) (i64.extend_i32_u (local.get $size)))"
        f" (i64.load32_u {META} offset={L.SLOTS + L.SLOT_CAPACITY} (local.get $slot))) {fail})"),
        f"(local.set $e {block_at('count')})",
        f"(i32.store {META} offset={G.BLK_OFFSET} (local.get $e) (local.get $offset))",
        f"(i32.store {META} offset={G.BLK_SIZE} (local.get $e) (local.get $size))",
        f"(i32.store {META} offset={G.BLK_PREV} (local.get $e) (i32.const {G.NO_PREV}))",
        f"(i32.store {META} offset={G.BLK_LIVE} (local.get $e) (i32.const 1))",
        set_table_u32(G.BT_COUNT, "(i32.add (local.get $count) (i32.const 1))"),
        set_table_u32(G.BT_BUMP, "(i32.add (local.get $offset) (local.get $size))"),
        (f"(i32.store {META} offset={L.SLOTS + L.SLOT_USED} (local.get $slot)"
        f" (i32.add {slot_u32(L.SLOT_USED)} (local.get $size)))"),
        *count_allocation(),
        *make_handle(["local.get $offset"]),
    ]
    locals_ = [("slot", "i32"), ("table", "i32"), ("count", "i32"), ("offset", "i32"), ("e", "i32")]
    return Func("host_alloc", [("region", "i32"), ("size", "i32")], ["i64"], locals_, body)


def dealloc_func() -> Func:
    """``$host_dealloc``: mark the block starting at the handle's offset dead; 3 if there is none."""
    body = [
        *A.slot_of_handle("h"),
        f"(local.set $table {slot_u32(G.GS_SIDE)})",
        (f"(local.set $index (call $block_find (local.get $table) (i32.const {G.BLK_OFFSET})"
        " (i32.wrap_i64 (local.get $h))))"),
        f"(if (i32.lt_s (local.get $index) (i32.const 0)) (then (return (i32.const {OutOfBounds.code}))))",
        f"(local.set $e {block_at('index')})",
        f"(if (i32.eqz {block_field(G.BLK_LIVE)}) (then (return (i32.const {OutOfBounds.code}))))",
        f"(i32.store {META} offset={G.BLK_LIVE} (local.get $e) (i32.const 0))",
        (f"(i32.store {META} offset={L.SLOTS + L.SLOT_USED} (local.get $slot)"
        f" (i32.sub {slot_u32(L.SLOT_USED)} {block_field(G.BLK_SIZE)}))"),
        "(i32.const 0)",
    ]
    locals_ = [("slot", "i32"), ("table", "i32"), ("index", "i32"), ("e", "i32")]
    return Func("host_dealloc", [("h", "i64")], ["i32"], locals_, body)


def compact_func(pools: int) -> Func:
    """Slide live blocks of the region in ``$slot`` down in order (marking the pages they land on as
    touched), zero the tail's touched pages, keep old offsets.

    Generation and state are the caller's business (``compact_region``).
    """
    slide = per_pool(
        pools,
        lambda k: [
            "(call $touch_span (local.get $pool) (i32.add (local.get $base) (local.get $cursor)) (local.get $size))",
            (f"(memory.copy {pool_name(k)} {pool_name(k)} (i32.add (local.get $base) (local.get $cursor))"
            " (i32.add (local.get $base) (local.get $offset)) (local.get $size))"),
            "br $slid",
        ],
        ["(local.get $pool)"],
        ["unreachable"],
    )
    body = [
        f"(local.set $table {slot_u32(G.GS_SIDE)})",
        f"(local.set $pool {slot_u32(L.SLOT_POOL)})",
        f"(local.set $base {slot_u32(L.SLOT_BASE)})",
        f"(local.set $count {table_u32(G.BT_COUNT)})",
        "(block $packed (loop $next",
        "  (br_if $packed (i32.ge_u (local.get $i) (local.get $count)))",
        f"  (local.set $e {block_at('i')})",
        f"  (if {block_field(G.BLK_LIVE)}",
        "    (then",
        f"      (local.set $offset {block_field(G.BLK_OFFSET)})",
        f"      (local.set $size {block_field(G.BLK_SIZE)})",
        "      (if (i32.ne (local.get $offset) (local.get $cursor))",
        "        (then (block $slid",
        *[f"          {line}" for line in slide],
        "        )))",
        f"      (local.set $e {block_at('kept')})",
        f"      (i32.store {META} offset={G.BLK_OFFSET} (local.get $e) (local.get $cursor))",
        f"      (i32.store {META} offset={G.BLK_SIZE} (local.get $e) (local.get $size))",
        f"      (i32.store {META} offset={G.BLK_PREV} (local.get $e) (local.get $offset))",
        f"      (i32.store {META} offset={G.BLK_LIVE} (local.get $e) (i32.const 1))",
        "      (local.set $cursor (i32.add (local.get $cursor) (local.get $size)))",
        "      (local.set $kept (i32.add (local.get $kept) (i32.const 1)))))",
        "  (local.set $i (i32.add (local.get $i) (i32.const 1)))",
        "  (br $next)))",
        set_table_u32(G.BT_COUNT, "(local.get $kept)"),
        set_table_u32(G.BT_BUMP, "(local.get $cursor)"),
        # Like the model: everything after the packed blocks reads as zero (only touched pages need it).
        "(call $span_scrub (local.get $pool) (i64.extend_i32_u (i32.add (local.get $base) (local.get $cursor)))",
        (f"  (i64.sub (i64.load32_u {META} offset={L.SLOTS + L.SLOT_CAPACITY} (local.get $slot))"
        " (i64.extend_i32_u (local.get $cursor))))"),
    ]
    locals_ = [("table", "i32"), ("pool", "i32"), ("base", "i32"), ("count", "i32"), ("i", "i32"), ("e", "i32"),
               ("offset", "i32"), ("size", "i32"), ("cursor", "i32"), ("kept", "i32")]
    return Func("compact_blocks", [("slot", "i32")], [], locals_, body)


def migrate_func() -> Func:
    """migrate(h) -> the handle's form after the last compaction of its region; 0 with ``last_error`` if none.

    A handle of the current generation comes back unchanged, so a caller may
    migrate every handle it holds without tracking which ones are old.
    """
    stale = f"(then (global.set $last_error (i32.const {StaleHandle.code})) (return (i64.const 0)))"
    body = [
        *A.slot_of_handle("h"),
        # Not live: 1 (never existed) or 2 (destroyed), as every handle check answers.
        f"(if (i32.eqz (i32.and {slot_u32(L.SLOT_STATE)} (i32.const {L.FLAG_LIVE})))",
        "  (then (global.set $last_error (call $check_handle (local.get $h))) (return (i64.const 0))))",
        f"(local.set $gen (i32.and (i32.wrap_i64 (i64.shr_u (local.get $h) (i64.const 32))) (i32.const {L.GEN_MASK})))",
        (f"(if (i32.eq (local.get $gen) (i32.and {slot_u32(L.SLOT_STATE)} (i32.const {L.GEN_MASK})))"
        " (then (return (local.get $h))))"),
        f"(if (i32.ne {slot_u32(L.SLOT_ALLOCATOR)} (i32.const {G.ALLOC_BLOCKS})) {stale})",
        f"(if (i32.or (i32.eqz {slot_u32(G.GS_PREV_GEN)}) (i32.ne (local.get $gen) {slot_u32(G.GS_PREV_GEN)})) {stale})",
        f"(if (i32.eq (i32.wrap_i64 (local.get $h)) (i32.const {G.NO_PREV})) {stale})",
        f"(local.set $table {slot_u32(G.GS_SIDE)})",
        f"(local.set $index (call $block_find (local.get $table) (i32.const {G.BLK_PREV}) (i32.wrap_i64 (local.get $h))))",
        f"(if (i32.lt_s (local.get $index) (i32.const 0)) {stale})",
        f"(local.set $e {block_at('index')})",
        "(i64.or (i64.and (local.get $h) (i64.const 0xFFFF000000000000))",
        ("  (i64.or (i64.shl (i64.extend_i32_u (i32.and "
        f"{slot_u32(L.SLOT_STATE)} (i32.const {L.GEN_MASK}))) (i64.const 32))"),
        f"    (i64.extend_i32_u {block_field(G.BLK_OFFSET)})))",
    ]
    locals_ = [("slot", "i32"), ("gen", "i32"), ("table", "i32"), ("index", "i32"), ("e", "i32")]
    return Func("migrate", [("h", "i64")], ["i64"], locals_, body, export="migrate")


def block_funcs(pools: int) -> list[Func]:
    return [fault_func(), find_func(), alloc_func(), dealloc_func(), compact_func(pools), migrate_func()]
