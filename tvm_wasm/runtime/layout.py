"""Byte layout of the directory table that Python and wasm share.

The ``meta`` memory holds a header page, then one 128-byte slot per region
id (0..65535), then per-region side tables (slab free stacks). Python reads
and writes it through NumPy views; the runtime module reads it with loads.
"""

from __future__ import annotations

PAGE = 65536
WASM32_MAX_PAGES = 65536

# Header (offsets in the meta memory).
HDR_STRICT = 0  # u32: 1 = never fault Cold regions in from the data plane
HDR_EPOCH = 8  # u64: access clock, bumped by Python and by the runtime on each access
HDR_HOST_ERROR = 16  # u32: error code of the host slow path (alloc) that last returned 0

SLOTS = PAGE  # slot table starts after the header page
SLOT_SHIFT = 7
SLOT_SIZE = 1 << SLOT_SHIFT
MAX_SLOTS = 1 << 16
SIDE_TABLES = SLOTS + SLOT_SIZE * MAX_SLOTS  # first byte after the slot table
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
SLOT_DIRTY_TABLE = 76  # u32: meta offset of the region's dirty-page bitmap (0: not tracked)

# State flags above the 16 generation bits.
GEN_MASK = 0xFFFF
FLAG_LIVE = 1 << 16
FLAG_RESIDENT = 1 << 17
FLAG_TOMBSTONE = 1 << 18
# Store-only flags: set in SLOT_WRITE_STATE, never in SLOT_STATE, so loads (which compare
# SLOT_STATE) pay nothing and every store of a flagged region takes its slow branch.
FLAG_READ_ONLY = 1 << 19
FLAG_TRACK_DIRTY = 1 << 20
WRITE_FLAGS = FLAG_READ_ONLY | FLAG_TRACK_DIRTY

NO_POOL = 0xFFFF_FFFF

# Allocator kinds.
ALLOC_BUMP = 0
ALLOC_FREELIST = 1
ALLOC_SLAB = 2

# Slab side table: u32 free count, u32 slot count, then u32 stack[slots], then u8 is_free[slots].
SLAB_COUNT = 0
SLAB_SLOTS = 4
SLAB_STACK = 8


# Dirty-page bitmap (a side table per tracked region): bit i of byte i // 8 is page i,
# a page being DIRTY_PAGE bytes of the region (offset i * DIRTY_PAGE up to the next page).
DIRTY_PAGE_SHIFT = 12
DIRTY_PAGE = 1 << DIRTY_PAGE_SHIFT


def dirty_pages_of(capacity: int) -> int:
    """Pages a region of ``capacity`` bytes has in its dirty bitmap."""
    return -(-capacity // DIRTY_PAGE)


def dirty_table_size(capacity: int) -> int:
    """Bytes of the dirty bitmap of a region of ``capacity`` bytes (whole u32 words)."""
    return -(-dirty_pages_of(capacity) // 32) * 4


def slot_offset(region_id: int) -> int:
    return SLOTS + (region_id << SLOT_SHIFT)


def slab_table_size(slots: int) -> int:
    return SLAB_STACK + 4 * slots + slots
