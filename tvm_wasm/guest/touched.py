"""Which pool pages writes have touched, so freeing a span costs what its region wrote.

A region created in freed space must read as zero. Zeroing the whole span
(or even scanning it for non-zero pages) costs time in proportion to the
region's size: seconds for a span of 4 GiB that its previous owner barely
used. Instead the module keeps a map with one byte per 64 KiB page of every
pool (layout: :mod:`tvm_wasm.guest.layout`, ``TOUCHED``). Every path that can
change a pool's bytes marks the pages it writes:

- typed stores mark the page of their address, one ``i32.store8`` of a
  constant with no branch, on the store side only (loads do nothing);
- ``write``, ``copy``, ``copy_region``, ``fill``, compaction's slides and
  ``restore_region`` (the embedder refills the span) mark their range with
  one ``memory.fill`` on the map;
- ``handle_address`` marks the range it hands out, since the embedder may
  write through the view (so do the JavaScript and Python views built on it).

When a span is given back (``destroy_region``, ``finish_spill``) or a region
is compacted, only touched pages are zeroed, 4 KiB at a time and only where
they do not already read as zero (reading a never-written page commits no
memory), and pages lying wholly inside the span are unmarked. So every free
byte of every arena reads as zero, ``span_take`` hands out spans as they are,
and the cost of reuse follows the pages the previous region wrote.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime.wat import Code, Func
from ..runtime.write_notice import WriteNotice
from . import layout as G

META = "$meta"
# Bytes past a touched page that are zeroed with it: a store that began in the page may end up to
# TOUCH_SPILL - 1 bytes into the next; rounded to 16 so the piece is scanned rather than filled.
SPILL_SCAN = 16
assert SPILL_SCAN >= G.TOUCH_SPILL - 1


def map_offset(pool: int) -> int:
    return G.TOUCHED + G.TOUCHED_POOL * pool


@dataclass(frozen=True)
class TouchedPages(WriteNotice):
    """The module's notice: mark the touched-page map (typed stores inline, bulk writes by a call)."""

    def store(self, pool: int) -> Code:
        return ["local.get $addr", f"i32.const {G.TOUCHED_SHIFT}", "i32.shr_u", "i32.const 1",
                f"i32.store8 {META} offset={map_offset(pool)}"]

    def span(self, pool: Code, addr: Code, length: Code) -> Code:
        return [*pool, *addr, *length, "call $touch_span"]


TOUCHED_PAGES = TouchedPages()


def touch_span_func() -> Func:
    """Mark the pages of ``[addr, addr + len)`` of pool ``pool`` as touched (bounds already checked)."""
    first = f"(i32.shr_u (local.get $addr) (i32.const {G.TOUCHED_SHIFT}))"
    # addr + len <= 2^32, so the last byte's address fits in 32 bits.
    last = (f"(i32.shr_u (i32.sub (i32.add (local.get $addr) (local.get $len)) (i32.const 1))"
            f" (i32.const {G.TOUCHED_SHIFT}))")
    body = [
        "(if (i32.eqz (local.get $len)) (then (return)))",
        (f"(memory.fill {META} (i32.add (i32.add (i32.const {G.TOUCHED}) (i32.shl (local.get $pool)"
         f" (i32.const {32 - G.TOUCHED_SHIFT}))) {first})"),
        f"  (i32.const 1) (i32.add (i32.sub {last} {first}) (i32.const 1)))",
    ]
    return Func("touch_span", [("pool", "i32"), ("addr", "i32"), ("len", "i32")], [], [], body)


def scrub_func() -> Func:
    """Zero what writes left in ``[start, start + len)`` of pool ``pool``; unmark pages wholly inside it.

    Only touched pages are visited (plus the first ``SPILL_SCAN`` bytes after
    each, where a wide store that began in it may have ended), through
    ``arena_zero`` (which fills only 4 KiB pieces that do not read as zero).
    """
    page_start = f"(i64.shl (local.get $page) (i64.const {G.TOUCHED_SHIFT}))"
    page_end = f"(i64.shl (i64.add (local.get $page) (i64.const 1)) (i64.const {G.TOUCHED_SHIFT}))"
    entry = (f"(i32.add (i32.shl (local.get $pool) (i32.const {32 - G.TOUCHED_SHIFT}))"
             " (i32.wrap_i64 (local.get $page)))")
    body = [
        "(if (i64.eqz (local.get $len)) (then (return)))",
        "(local.set $end (i64.add (local.get $start) (local.get $len)))",
        f"(local.set $page (i64.shr_u (local.get $start) (i64.const {G.TOUCHED_SHIFT})))",
        f"(local.set $last (i64.shr_u (i64.sub (local.get $end) (i64.const 1)) (i64.const {G.TOUCHED_SHIFT})))",
        "(block $done (loop $next",
        "  (br_if $done (i64.gt_u (local.get $page) (local.get $last)))",
        f"  (if (i32.load8_u {META} offset={G.TOUCHED} {entry}) (then",
        f"    (local.set $lo (select {page_start} (local.get $start) (i64.gt_u {page_start} (local.get $start))))",
        f"    (local.set $hi (i64.add {page_end} (i64.const {SPILL_SCAN})))",
        "    (if (i64.gt_u (local.get $hi) (local.get $end)) (then (local.set $hi (local.get $end))))",
        "    (call $arena_zero (local.get $pool) (local.get $lo) (i64.sub (local.get $hi) (local.get $lo)))",
        (f"    (if (i32.and (i64.ge_u {page_start} (local.get $start)) (i64.le_u {page_end} (local.get $end)))"
         f" (then (i32.store8 {META} offset={G.TOUCHED} {entry} (i32.const 0))))))"),
        "  (local.set $page (i64.add (local.get $page) (i64.const 1)))",
        "  (br $next)))",
    ]
    locals_ = [("end", "i64"), ("page", "i64"), ("last", "i64"), ("lo", "i64"), ("hi", "i64")]
    return Func("span_scrub", [("pool", "i32"), ("start", "i64"), ("len", "i64")], [], locals_, body)


def touched_funcs() -> list[Func]:
    return [touch_span_func(), scrub_func()]
