"""Byte layout of the directory table that Python and wasm share.

The ``meta`` memory holds a header page, then one 256-byte slot per region
id (0..65535; shared fields first, the self-contained module's own from
``SLOT_SHARED_END``), then per-region side tables (slab free stacks). Python
reads and writes it through NumPy views; the runtime module reads it with loads.
"""

from __future__ import annotations

PAGE = 65536
WASM32_MAX_PAGES = 65536

# Header (offsets in the meta memory).
HDR_STRICT = 0  # u32: 1 = never fault Cold regions in from the data plane
HDR_EPOCH = 8  # u64: access clock, bumped by Python and by the runtime on each access
HDR_HOST_ERROR = 16  # u32: error code of the host slow path (alloc) that last returned 0

SLOTS = PAGE  # slot table starts after the header page
SLOT_SHIFT = 8
SLOT_SIZE = 1 << SLOT_SHIFT
MAX_SLOTS = 1 << 16

# Dirty-page maps: one byte per DIRTY_PAGE bytes of a region, non-zero = dirty. Every typed store
# marks its page(s) with an unconditional ``i32.store8`` at ``DIRTY_SCRATCH + SLOT_DIRTY_TABLE +
# (offset >> DIRTY_PAGE_SHIFT)`` (the constant is the store's memarg offset, so it costs nothing).
# An untracked region's field is 0: its marks land in the scratch map right after the slot table,
# which nobody reads and which is large enough for the pages of a 4 GiB region.
DIRTY_PAGE_SHIFT = 12
DIRTY_PAGE = 1 << DIRTY_PAGE_SHIFT
DIRTY_SCRATCH = SLOTS + SLOT_SIZE * MAX_SLOTS  # first byte after the slot table
DIRTY_SCRATCH_SIZE = 1 << (32 - DIRTY_PAGE_SHIFT)
SIDE_TABLES = DIRTY_SCRATCH + DIRTY_SCRATCH_SIZE  # side tables (slab stacks, dirty maps) start here
META_INITIAL_PAGES = SIDE_TABLES // PAGE

# Slot fields (byte offsets inside a slot).
SLOT_STATE = 0  # u32: generation (bits 0-15) | flags
SLOT_POOL = 4  # u32: pool index; NO_POOL for regions the data plane cannot reach
SLOT_BASE = 8  # u32: byte offset of the region in its pool
SLOT_CAPACITY = 12  # u32
SLOT_USED = 16  # u32: bump pointer / live bytes
SLOT_ALLOCATOR = 20  # u32: ALLOC_* kind
SLOT_CLASS_SIZE = 24  # u32: slab class size
SLOT_SLAB_TABLE = 28  # u32: meta offset of the slab side table
SLOT_ALLOCATIONS = 32  # u64
SLOT_BYTES_ALLOCATED = 40  # u64
SLOT_BYTES_READ = 48  # u64
SLOT_BYTES_WRITTEN = 56  # u64
SLOT_LAST_EPOCH = 64  # u64: HDR_EPOCH at the region's last access (LRU eviction order)
SLOT_WRITE_STATE = 72  # u32: SLOT_STATE | store-only flags (FLAG_READ_ONLY, FLAG_TRACK_DIRTY); stores compare this
SLOT_DIRTY_TABLE = 76  # u32: meta offset of the region's dirty-page map minus DIRTY_SCRATCH (0: not tracked)
SLOT_FAST_KEYS = 80  # u64 per pool 0..FAST_KEY_POOLS-1: the handle's upper half, shifted up, while the fast path serves it
FAST_KEY_POOLS = 2
SLOT_SHARED_END = 128  # fields of one deployment only (the self-contained module's) start here

# State flags above the 16 generation bits.
GEN_MASK = 0xFFFF
FLAG_LIVE = 1 << 16
FLAG_RESIDENT = 1 << 17
FLAG_TOMBSTONE = 1 << 18
# Store-only flags: set in SLOT_WRITE_STATE, never in SLOT_STATE, so loads (which compare
# SLOT_STATE) pay nothing. Every store of a read-only region takes its slow branch. Typed
# stores ignore FLAG_TRACK_DIRTY (they compare the word with it set: one ``i32.or``) and mark
# the dirty-page map unconditionally; bulk writes and hoisted stores still see it and take
# their slow branch, where ``write_barrier`` marks the whole range.
FLAG_READ_ONLY = 1 << 19
FLAG_TRACK_DIRTY = 1 << 20
WRITE_FLAGS = FLAG_READ_ONLY | FLAG_TRACK_DIRTY

NO_POOL = 0xFFFF_FFFF


# The fast keys: a typed load's fast path for pools 0 and 1 (pools fill in order: every region of a working set
# up to 8 GiB) is ONE compare that checks region, generation, liveness, residency, pool and bounds at once:
#
#     (h ^ SLOT_FAST_KEYS[pool]) + u64(off) + width <= u64(SLOT_CAPACITY)       (unsigned, 64-bit)
#
# with the slot of ``h >> 48``. A key is ``fast_key``: ``(region << 16 | generation) << 32`` while the region is
# live, resident and in that pool, else ``no_key``: ``(region ^ 1) << 48``. Why the one compare is exact:
# - the slot is the handle's region, so a key's top 16 bits (the region, or the region ^ 1) cancel the
#   handle's: ``x = h ^ key`` is below 2**49, and adding ``off`` (< 2**32) and the width cannot wrap;
# - the sum is at most the capacity (< 2**32) only if bits 32..63 of ``x`` are 0: the key is ``fast_key``
#   and the generations are equal (a stale, future or forged generation sets a bit there); then
#   ``x`` is the handle's offset and the compare is the model's bounds check ``offset + off + width <= capacity``;
# - ``no_key`` leaves bit 48 set in ``x``: every access misses and takes the checked path.
# A slot never written holds keys 0: for a region id r that is neither 0 nor 65535, ``x = h`` has top bits r,
# between 2**48 and 2**64 - 2**48, so the sum neither wraps nor fits. Region 0 never exists (ids start at 1; its
# capacity stays 0, nothing fits). Slot 65535 is the one where keys 0 would let the sum wrap (its handles'
# top bits are all ones), so its keys are written as ``no_key`` when the table is made and whenever the slot
# is cleared (``RESERVED_KEY_SLOT``). Every writer of SLOT_STATE or SLOT_POOL (the host's mirror of a region, the
# self-contained module's ``set_state``) writes the keys after those: ``fast_key`` of the new words.
RESERVED_KEY_SLOT = 0xFFFF


def fast_key_field(pool: int) -> int:
    """Offset of the slot's fast key (u64) for ``pool`` (< ``FAST_KEY_POOLS``)."""
    assert 0 <= pool < FAST_KEY_POOLS
    return SLOT_FAST_KEYS + 8 * pool


def fast_key(region_id: int, state: int, pool: int, key_pool: int) -> int:
    """The slot's fast key (u64) for ``key_pool``: ``(region << 16 | generation) << 32`` when the region is live,
    resident and in ``key_pool`` (``state`` exactly generation | LIVE | RESIDENT), else ``no_key``."""
    if state & ~GEN_MASK == FLAG_LIVE | FLAG_RESIDENT and pool == key_pool:
        return ((region_id << 16) | (state & GEN_MASK)) << 32
    return no_key(region_id)


def no_key(region_id: int) -> int:
    """A fast key no access through a handle of region ``region_id`` passes: ``h ^ key`` has bit 48 set."""
    return ((region_id ^ 1) & GEN_MASK) << 48

# Allocator kinds.
ALLOC_BUMP = 0
ALLOC_FREELIST = 1
ALLOC_SLAB = 2

# Slab side table: u32 free count, u32 slot count, then u32 stack[slots], then u8 is_free[slots].
SLAB_COUNT = 0
SLAB_SLOTS = 4
SLAB_STACK = 8


# Dirty-page map (a side table per tracked region): byte i is non-zero when page i (region bytes
# i * DIRTY_PAGE up to the next page) changed since tracking began or the last clear.
DIRTY_MAP_ALIGN = 8  # maps are whole u64 words, so a scan reads eight pages at a time


def dirty_pages_of(capacity: int) -> int:
    """Pages a region of ``capacity`` bytes has in its dirty-page map."""
    return -(-capacity // DIRTY_PAGE)


def dirty_table_size(capacity: int) -> int:
    """Bytes of the dirty-page map of a region of ``capacity`` bytes (one per page, whole u64 words)."""
    return -(-dirty_pages_of(capacity) // DIRTY_MAP_ALIGN) * DIRTY_MAP_ALIGN


def dirty_field(map_offset: int | None) -> int:
    """``SLOT_DIRTY_TABLE`` of a region whose map is at meta offset ``map_offset`` (None: untracked)."""
    return 0 if map_offset is None else map_offset - DIRTY_SCRATCH


def slot_offset(region_id: int) -> int:
    return SLOTS + (region_id << SLOT_SHIFT)


def slab_table_size(slots: int) -> int:
    return SLAB_STACK + 4 * slots + slots
