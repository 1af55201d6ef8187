"""What the self-contained module keeps in its ``$meta`` memory beyond the shared layout.

The slot table, slab side tables and the header fields of
:mod:`tvm_wasm.runtime.layout` are used unchanged, so the shared ABI code
reads this module's directory exactly as it reads the host's. On top of
them the guest module keeps, all inside wasm:

- a guest header (next region id, the free-extent count, one *arena* record
  per pool plus one for side tables in ``$meta``);
- guest-only slot fields in the tail of each slot (from ``SLOT_SHARED_END``: kind,
  tier, pin, span length, tier counters, previous generation); the side
  table's offset is the shared ``SLOT_SLAB_TABLE`` for either allocator, its
  length follows from the table's own header;
- a table of free extents (spans given back by destroyed regions), shared by
  every arena;
- the touched-page map: one byte per 64 KiB page of every pool, set by each
  write to the pool's bytes, so a freed span is zeroed only where its region
  wrote (every free byte of every arena reads as zero);
- side tables: slab free stacks (shared layout), block tables of the
  compactable allocator and dirty-page maps (shared layout).
"""

from __future__ import annotations

from ..runtime import layout as L

# ---------------------------------------------------------------- guest header (inside the header page)
GH_NEXT_ID = 256  # u32: next never-used region id (ids start at 1)
GH_EXTENTS = 260  # u32: number of free extents in the extent table
GH_LIVE = 264  # u32: live regions
GH_ARENAS = 1024  # one ARENA_SIZE record per arena: pools 0..N-1, then the side-table arena N
ARENA_SIZE = 32
ARENA_TOP = 0  # i64: end of the highest span handed out (every byte at or above it reads as zero)
ARENA_LIMIT = 16  # i64: the arena's byte limit (its memory's maximum)

# ---------------------------------------------------------------- guest slot fields (after the shared ones)
GS_KIND = L.SLOT_SHARED_END  # u8: RegionKind
GS_TIER = GS_KIND + 1  # u8: Residency (0 Hot, 1 Warm, 2 Cold: span given back, bytes kept by the embedder)
GS_PINNED = GS_KIND + 2  # u8
GS_PREV_GEN = GS_KIND + 4  # u32: generation before the last compaction (0: none), for ``migrate``
GS_BYTES_DISCARDED = GS_KIND + 8  # u64
BYTE_FIELDS = frozenset({GS_KIND, GS_TIER, GS_PINNED})  # loaded with i32.load8_u, stored with i32.store8
GS_SPAN = GS_KIND + 16  # i64: span length in the pool (capacity rounded up to SPAN_ALIGN)
GS_SIDE = L.SLOT_SLAB_TABLE  # u32: meta offset of the region's side table (slab or block table), 0: none
GS_PROMOTIONS = GS_KIND + 24  # u64
GS_DEMOTIONS = GS_KIND + 32  # u64
GS_FAULTS = GS_KIND + 40  # u64: Cold -> resident restores
assert GS_KIND >= L.fast_key_field(L.FAST_KEY_POOLS - 1) + 8 and GS_FAULTS + 8 <= L.SLOT_SIZE

# Tier values of ``GS_TIER`` beyond the model's Residency (HOT 0, WARM 1, COLD 2): a region
# whose bytes are being written out by the embedder is not resident but still owns its span.
TIER_SPILLING = 4

# ---------------------------------------------------------------- free extents
# Every free extent is followed by a live span of its arena (neighbours merge
# and a free span at the top lowers the top instead), so there are never more
# free extents than live spans: at most one pool span and one side table per
# region id.
EXTENTS = L.SIDE_TABLES
EXTENT_SIZE = 16  # u32 arena, u32 start, u32 length, u32 unused
MAX_EXTENTS = 2 * L.MAX_SLOTS
EXT_ARENA = 0
EXT_START = 4
EXT_LEN = 8

# ---------------------------------------------------------------- touched-page map
# Byte ``TOUCHED + pool * TOUCHED_POOL + (address >> TOUCHED_SHIFT)`` is 1 once a write may have
# left non-zero bytes in that 64 KiB page of the pool (a typed store marks the page of its first
# byte only, so a set page also covers the first TOUCH_SPILL - 1 bytes of the next one). Freeing a
# span zeroes its touched pages and clears those that lie wholly inside it.
MAX_POOLS = 64
TOUCHED_SHIFT = 16
TOUCHED_POOL = 1 << (32 - TOUCHED_SHIFT)  # bytes of map per pool: one per page of a 4 GiB memory
TOUCH_SPILL = 8  # the widest typed store
TOUCHED = EXTENTS + EXTENT_SIZE * MAX_EXTENTS
SIDE_START = TOUCHED + TOUCHED_POOL * MAX_POOLS  # the side-table arena starts here
META_INITIAL_PAGES = SIDE_START // L.PAGE
assert SIDE_START % L.PAGE == 0

SPAN_ALIGN = 16  # pool spans and side tables start 16-byte aligned (v128 loads)

# ---------------------------------------------------------------- block tables (compactable allocator)
BT_COUNT = 0  # u32: entries in use
BT_CAP = 4  # u32: entries the table holds
BT_BUMP = 8  # u32: next free offset in the region
BT_ENTRIES = 16
BLOCK_SIZE = 16  # u32 offset, u32 size, u32 offset before the last compaction, u32 live
BLK_OFFSET = 0
BLK_SIZE = 4
BLK_PREV = 8
BLK_LIVE = 12
NO_PREV = 0xFFFF_FFFF
DEFAULT_BLOCKS = 4096

# Allocator kinds as ``create_region_with`` takes them (the shared ALLOC_* values).
ALLOC_BUMP = L.ALLOC_BUMP
ALLOC_BLOCKS = L.ALLOC_FREELIST  # the compactable allocator serves the Freelist slot kind
ALLOC_SLAB = L.ALLOC_SLAB


def block_table_size(entries: int) -> int:
    return BT_ENTRIES + BLOCK_SIZE * entries


def arena_field(arena: int, field: int) -> int:
    return GH_ARENAS + ARENA_SIZE * arena + field
