"""Span placement inside wasm: first-fit over free extents, then growth at the top.

An *arena* is a memory spans are cut from: pool ``k`` is arena ``k`` and the
side tables in ``$meta`` are arena ``pools``. Each arena bumps a top pointer
and grows its memory on demand, up to the memory's maximum; spans given back
merge with free neighbours (a free span at the top lowers the top instead),
so a pool never fragments into more free extents than it has live regions.

Every free byte of every arena reads as zero, so ``span_take`` hands spans
out as they are. Whoever gives a span back zeroes what was written in it
first: pool spans through the touched-page map (:mod:`tvm_wasm.guest.touched`,
so the cost follows the pages the region wrote, not its size), side tables
whole (they are small). Zeroing fills only 4 KiB pieces that do not already
read as zero (reading an untouched page commits nothing).
"""

from __future__ import annotations

from collections.abc import Callable

from ..runtime import layout as L
from ..runtime.core_module import pool_name
from ..runtime.wat import Code, Func, dispatch
from . import layout as G

META = "$meta"
ZERO_PAGE = L.PAGE  # arena_zero works one wasm page at a time
ZERO_CHUNK = 4096  # and checks (and fills) 4 KiB pieces of it


def arena_mem(pools: int, arena: int) -> str:
    return pool_name(arena) if arena < pools else META


def arena_field(field: int, load: str = "i64.load") -> str:
    """Folded load of a field of the arena record of ``$arena``."""
    return f"({load} {META} offset={G.GH_ARENAS + field} (i32.shl (local.get $arena) (i32.const 5)))"


def set_arena_field(field: int, value: str) -> str:
    return f"(i64.store {META} offset={G.GH_ARENAS + field} (i32.shl (local.get $arena) (i32.const 5)) {value})"


def per_arena(pools: int, arm: Callable[[str], Code], label: str) -> Code:
    """Run ``arm(memory)`` for the memory of arena ``$arena`` (pools, then ``$meta``)."""
    arms = [arm(arena_mem(pools, k)) for k in range(pools + 1)]
    return dispatch(["local.get $arena"], arms, ["unreachable"], label)


def grow_to_func(pools: int) -> Func:
    """Grow the arena's memory to hold ``end`` bytes; 0 when its maximum (or the engine) says no."""

    def arm(mem: str) -> Code:
        return [
            f"(if (i64.gt_u (local.get $pages) (i64.extend_i32_u (memory.size {mem})))",
            (f"  (then (if (i32.eq (memory.grow {mem} (i32.wrap_i64 (i64.sub (local.get $pages)"
            f" (i64.extend_i32_u (memory.size {mem}))))) (i32.const -1))"),
            "    (then (return (i32.const 0))))))",
            "(return (i32.const 1))",
        ]

    body = [
        "(local.set $pages (i64.shr_u (i64.add (local.get $end) (i64.const 65535)) (i64.const 16)))",
        *per_arena(pools, arm, "grow"),
    ]
    return Func("arena_grow_to", [("arena", "i32"), ("end", "i64")], ["i32"], [("pages", "i64")], body)


def zero_page_func(pools: int) -> Func:
    """Zero ``n`` bytes at ``at`` (inside one 64 KiB page), skipping 4 KiB pieces that read as zero.

    Reading a page that was never written costs no memory (the engine maps
    the shared zero page), while filling it commits it: a touched wasm page
    whose region wrote a few bytes is filled only where they are. Each piece
    is scanned (64 bytes a step, then 16) until its first non-zero bytes, then
    filled. Unaligned
    requests (only the ends of odd spans) are simply filled.
    """

    def arm(mem: str) -> Code:
        load = lambda offset: f"(v128.load {mem} offset={offset} (local.get $q))"  # noqa: E731
        return [
            "(if (i32.and (i32.or (local.get $at) (local.get $n)) (i32.const 15)) (then",
            f"  (memory.fill {mem} (local.get $at) (i32.const 0) (local.get $n)) (return)))",
            "(local.set $p (local.get $at))",
            "(local.set $left (local.get $n))",
            "(block $done (loop $piece",
            "  (br_if $done (i32.eqz (local.get $left)))",
            f"  (local.set $c (i32.sub (i32.const {ZERO_CHUNK}) (i32.and (local.get $p) (i32.const {ZERO_CHUNK - 1}))))",
            "  (if (i32.lt_u (local.get $left) (local.get $c)) (then (local.set $c (local.get $left))))",
            "  (local.set $q (local.get $p))",
            "  (local.set $k (local.get $c))",
            "  (block $clean (block $dirty",
            "    (loop $wide",  # 64 bytes a step while they last
            "      (if (i32.ge_u (local.get $k) (i32.const 64)) (then",
            f"        (br_if $dirty (v128.any_true (v128.or (v128.or {load(0)} {load(16)}) (v128.or {load(32)} {load(48)}))))",
            "        (local.set $q (i32.add (local.get $q) (i32.const 64)))",
            "        (local.set $k (i32.sub (local.get $k) (i32.const 64)))",
            "        (br $wide))))",
            "    (loop $scan",
            "      (br_if $clean (i32.eqz (local.get $k)))",
            f"      (br_if $dirty (v128.any_true {load(0)}))",
            "      (local.set $q (i32.add (local.get $q) (i32.const 16)))",
            "      (local.set $k (i32.sub (local.get $k) (i32.const 16)))",
            "      (br $scan)))",
            f"    (memory.fill {mem} (local.get $p) (i32.const 0) (local.get $c)))",
            "  (local.set $p (i32.add (local.get $p) (local.get $c)))",
            "  (local.set $left (i32.sub (local.get $left) (local.get $c)))",
            "  (br $piece)))",
            "(return)",
        ]

    params = [("arena", "i32"), ("at", "i32"), ("n", "i32")]
    locals_ = [("p", "i32"), ("left", "i32"), ("c", "i32"), ("q", "i32"), ("k", "i32")]
    return Func("arena_zero_page", params, [], locals_, per_arena(pools, arm, "zero_page"))


def zero_func() -> Func:
    """Zero ``len`` bytes at ``start`` of the arena's memory, page by page (see ``arena_zero_page``)."""
    body = [
        "(block $done (loop $next",
        "  (br_if $done (i64.eqz (local.get $len)))",
        f"  (local.set $n (i64.sub (i64.const {ZERO_PAGE}) (i64.and (local.get $start) (i64.const {ZERO_PAGE - 1}))))",
        "  (if (i64.lt_u (local.get $len) (local.get $n)) (then (local.set $n (local.get $len))))",
        "  (call $arena_zero_page (local.get $arena) (i32.wrap_i64 (local.get $start)) (i32.wrap_i64 (local.get $n)))",
        "  (local.set $start (i64.add (local.get $start) (local.get $n)))",
        "  (local.set $len (i64.sub (local.get $len) (local.get $n)))",
        "  (br $next)))",
    ]
    params = [("arena", "i32"), ("start", "i64"), ("len", "i64")]
    return Func("arena_zero", params, [], [("n", "i64")], body)


def extent(field: int, load: str = "i32.load") -> str:
    """Folded load of a field of the free extent at meta address ``$e``."""
    return f"({load} {META} offset={field} (local.get $e))"


def extent_at(index: str) -> str:
    return f"(i32.add (i32.const {G.EXTENTS}) (i32.shl (local.get ${index}) (i32.const 4)))"


def remove_extent_func() -> Func:
    """Drop extent ``i`` (the last one takes its place)."""
    count = f"(i32.load {META} offset={G.GH_EXTENTS} (i32.const 0))"
    body = [
        f"(local.set $last (i32.sub {count} (i32.const 1)))",
        f"(i32.store {META} offset={G.GH_EXTENTS} (i32.const 0) (local.get $last))",
        f"(memory.copy {META} {META} {extent_at('i')} {extent_at('last')} (i32.const {G.EXTENT_SIZE}))",
    ]
    return Func("remove_extent", [("i", "i32")], [], [("last", "i32")], body)


def take_func() -> Func:
    """Start of a span of ``size`` bytes (a multiple of SPAN_ALIGN) in the arena, or -1; it reads as zero."""
    count = f"(i32.load {META} offset={G.GH_EXTENTS} (i32.const 0))"
    first_fit = [
        "(block $scanned (loop $scan",
        f"  (br_if $scanned (i32.ge_u (local.get $i) {count}))",
        f"  (local.set $e {extent_at('i')})",
        f"  (if (i32.and (i32.eq {extent(G.EXT_ARENA)} (local.get $arena))",
        f"               (i64.ge_u {extent(G.EXT_LEN, 'i64.load32_u')} (local.get $size)))",
        "    (then",
        f"      (local.set $start {extent(G.EXT_START, 'i64.load32_u')})",
        f"      (if (i64.eq {extent(G.EXT_LEN, 'i64.load32_u')} (local.get $size))",
        "        (then (call $remove_extent (local.get $i)))",
        "        (else",
        (f"          (i32.store {META} offset={G.EXT_START} (local.get $e)"
        f" (i32.wrap_i64 (i64.add (local.get $start) (local.get $size))))"),
        (f"          (i32.store {META} offset={G.EXT_LEN} (local.get $e)"
        f" (i32.sub {extent(G.EXT_LEN)} (i32.wrap_i64 (local.get $size))))))"),
        "      (return (local.get $start))))",
        "  (local.set $i (i32.add (local.get $i) (i32.const 1)))",
        "  (br $scan)))",
    ]
    at_top = [
        f"(local.set $start {arena_field(G.ARENA_TOP)})",
        "(local.set $end (i64.add (local.get $start) (local.get $size)))",
        f"(if (i64.gt_u (local.get $end) {arena_field(G.ARENA_LIMIT)}) (then (return (i64.const -1))))",
        "(if (i32.eqz (call $arena_grow_to (local.get $arena) (local.get $end))) (then (return (i64.const -1))))",
        set_arena_field(G.ARENA_TOP, "(local.get $end)"),
        "(local.get $start)",
    ]
    locals_ = [("i", "i32"), ("e", "i32"), ("start", "i64"), ("end", "i64")]
    return Func("span_take", [("arena", "i32"), ("size", "i64")], ["i64"], locals_, [*first_fit, *at_top])


def give_func() -> Func:
    """Give a span back (the caller zeroed what was written in it): merge with free neighbours, lower the
    top or record a free extent."""
    count = f"(i32.load {META} offset={G.GH_EXTENTS} (i32.const 0))"
    body = [
        "(block $scanned (loop $scan",
        f"  (br_if $scanned (i32.ge_u (local.get $i) {count}))",
        f"  (local.set $e {extent_at('i')})",
        f"  (if (i32.eq {extent(G.EXT_ARENA)} (local.get $arena))",
        "    (then",
        (f"      (if (i64.eq (i64.add {extent(G.EXT_START, 'i64.load32_u')} {extent(G.EXT_LEN, 'i64.load32_u')})"
        " (local.get $start))"),
        "        (then",
        f"          (local.set $start {extent(G.EXT_START, 'i64.load32_u')})",
        f"          (local.set $size (i64.add (local.get $size) {extent(G.EXT_LEN, 'i64.load32_u')}))",
        "          (call $remove_extent (local.get $i))",
        "          (br $scan)))",
        f"      (if (i64.eq {extent(G.EXT_START, 'i64.load32_u')} (i64.add (local.get $start) (local.get $size)))",
        "        (then",
        f"          (local.set $size (i64.add (local.get $size) {extent(G.EXT_LEN, 'i64.load32_u')}))",
        "          (call $remove_extent (local.get $i))",
        "          (br $scan)))))",
        "  (local.set $i (i32.add (local.get $i) (i32.const 1)))",
        "  (br $scan)))",
        f"(if (i64.eq (i64.add (local.get $start) (local.get $size)) {arena_field(G.ARENA_TOP)})",
        f"  (then {set_arena_field(G.ARENA_TOP, '(local.get $start)')} (return)))",
        f"(local.set $e (i32.add (i32.const {G.EXTENTS}) (i32.shl {count} (i32.const 4))))",
        f"(i32.store {META} offset={G.EXT_ARENA} (local.get $e) (local.get $arena))",
        f"(i32.store {META} offset={G.EXT_START} (local.get $e) (i32.wrap_i64 (local.get $start)))",
        f"(i32.store {META} offset={G.EXT_LEN} (local.get $e) (i32.wrap_i64 (local.get $size)))",
        f"(i32.store {META} offset={G.GH_EXTENTS} (i32.const 0) (i32.add {count} (i32.const 1)))",
    ]
    params = [("arena", "i32"), ("start", "i64"), ("size", "i64")]
    return Func("span_give", params, [], [("i", "i32"), ("e", "i32")], body)


def span_funcs(pools: int) -> list[Func]:
    return [grow_to_func(pools), zero_page_func(pools), zero_func(), remove_extent_func(), take_func(), give_func()]


def round_span(size: str) -> str:
    """Folded i64: ``size`` (an i64 expression) rounded up to SPAN_ALIGN."""
    mask = G.SPAN_ALIGN - 1
    return f"(i64.and (i64.add {size} (i64.const {mask})) (i64.const {~mask}))"


def initial_arenas(pools: int, max_pages: int, meta_max_pages: int) -> dict[int, int]:
    """Header bytes (offset -> i64) the module starts with: every arena's top and limit."""
    values = {}
    for arena in range(pools):
        values[G.arena_field(arena, G.ARENA_TOP)] = 0
        values[G.arena_field(arena, G.ARENA_LIMIT)] = max_pages * L.PAGE
    side = pools
    values[G.arena_field(side, G.ARENA_TOP)] = G.SIDE_START
    values[G.arena_field(side, G.ARENA_LIMIT)] = meta_max_pages * L.PAGE
    return values
