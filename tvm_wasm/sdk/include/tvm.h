/* tvm.h: the raw `tvm` ABI of tvm-wasm for guests written in C (wasm32, freestanding or WASI).
 *
 * Generated from tvm_wasm/abi/table.py by `python -m tvm_wasm.sdk`; do not edit.
 * Build: clang --target=wasm32 -nostdlib -mbulk-memory -Wl,--no-entry -Wl,--export=NAME -I"$(tvm-wasm sdk --include)" ...
 *        clang --target=wasm32-wasi -I"$(tvm-wasm sdk --include)" ...
 *
 * Conventions: functions returning int32_t codes return 0 on success, else the error code, also left
 * in tvm_last_error(); value-returning functions return a sentinel no success can return (listed per
 * function) with the code in tvm_last_error(); typed loads/stores trap on an invalid access (the
 * tvm_try_* twins return the code instead); tvm_last_error() reads and clears the last code.
 */
#ifndef TVM_WASM_TVM_H
#define TVM_WASM_TVM_H

#if !defined(__wasm32__)
#error "tvm.h declares wasm32 imports: compile with --target=wasm32 or --target=wasm32-wasi"
#endif

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TVM_IMPORT(name) __attribute__((import_module("tvm"), import_name(name)))

typedef uint64_t tvm_handle;
typedef uint32_t tvm_region;

enum tvm_error {
    TVM_OK = 0, /* success */
    TVM_NOT_FOUND = 1, /* no such region (never created, or destroyed) */
    TVM_STALE = 2, /* the handle's generation is not the region's current one */
    TVM_OUT_OF_BOUNDS = 3, /* outside the region's capacity (or not an allocated block) */
    TVM_NOT_RESIDENT = 4, /* the region is Cold or External and may not be faulted in */
    TVM_ALLOCATION_FAILED = 5, /* no room: region, pool, id space or budget full */
    TVM_PINNED = 6, /* the region is pinned */
    TVM_GUEST_MEMORY = 7, /* a guest-memory range lies outside the guest's memory */
    TVM_READ_ONLY = 8, /* the region is read-only (protect): nothing changed */
    TVM_OTHER = 9, /* policy, allocator, backing store, bad argument, or a region the runtime cannot reach */
};

enum tvm_region_kind {
    TVM_HOT_HEAP = 0,
    TVM_OBJECT_ARENA = 1,
    TVM_BLOB_ARENA = 2,
    TVM_PAGE_STORE = 3,
    TVM_SCRATCH = 4,
    TVM_DEVICE_STATE = 5,
    TVM_CODE_CACHE = 6,
};

enum tvm_allocator {
    TVM_ALLOC_BUMP = 0, /* bump allocation; dealloc is a no-op */
    TVM_ALLOC_FREELIST = 1, /* compactable blocks (host: Freelist; module: block table, param = entries, 0: 4096) */
    TVM_ALLOC_SLAB = 2, /* fixed-size slots, param = class size */
};

enum tvm_residency {
    TVM_HOT = 0,
    TVM_WARM = 1,
    TVM_COLD = 2,
    TVM_EXTERNAL = 3,
};

enum tvm_metric {
    TVM_METRIC_ALLOCATIONS = 0,
    TVM_METRIC_BYTES_ALLOCATED = 1,
    TVM_METRIC_BYTES_READ = 2,
    TVM_METRIC_BYTES_WRITTEN = 3,
    TVM_METRIC_FAULTS = 4,
    TVM_METRIC_PROMOTIONS = 5,
    TVM_METRIC_DEMOTIONS = 6,
    TVM_METRIC_BYTES_DISCARDED = 7,
};

/* ---------------------------------------------------------------- errors */
/* The code of the last failure, then 0 (read-and-clear). Errors: cannot fail. On both deployments. */
TVM_IMPORT("last_error") int32_t tvm_last_error(void);

/* ---------------------------------------------------------------- regions */
/* Create a zeroed Bump region of `capacity` bytes; returns its id. Errors: returns 0 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("create_region") tvm_region tvm_create_region(uint32_t kind, uint32_t capacity);
/* Create a region with an allocator (0 Bump, 1 Freelist, 2 Slab with `param` = class size). Errors: returns 0 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("create_region_with") tvm_region tvm_create_region_with(uint32_t kind, uint32_t capacity, uint32_t allocator, uint32_t param);
/* Destroy a region; its handles fail with code 2 from now on. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("destroy_region") int32_t tvm_destroy_region(tvm_region id);
/* Pin a region (pinnable kinds only): it never spills or compacts. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("pin") int32_t tvm_pin(tvm_region id);
/* Unpin a region. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("unpin") int32_t tvm_unpin(tvm_region id);
/* Hot -> Warm; on the host Warm -> Cold spills to the backing store. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("demote_region") int32_t tvm_demote_region(tvm_region id);
/* Warm/Cold -> Hot (faults a Cold region in). Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("promote_region") int32_t tvm_promote_region(tvm_region id);
/* Pack a Freelist region's live blocks, bump its generation (old handles: code 2 until migrate). Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("compact_region") int32_t tvm_compact_region(tvm_region id);
/* A handle of the generation before the last compaction -> its current form (current ones unchanged). Errors: returns 0 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("migrate") tvm_handle tvm_migrate(tvm_handle h);
/* Make a region read-only (`read_only` != 0) or writable: while read-only every store, write, fill, discard, copy into it, alloc, dealloc and compaction answers 8 and changes nothing; loads cost nothing extra. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("protect") int32_t tvm_protect(tvm_region id, uint32_t read_only);
/* Start (`enabled` != 0, all pages clean) or stop dirty-page tracking: every path that changes bytes marks each 4096-byte page it touches in the region's dirty-page map, in wasm. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("track_dirty") int32_t tvm_track_dirty(tvm_region id, uint32_t enabled);
/* Mark every page of a tracked region clean (untracked: 9). Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("clear_dirty") int32_t tvm_clear_dirty(tvm_region id);

/* ---------------------------------------------------------------- queries */
/* Current generation (1..65535). Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_generation") int32_t tvm_region_generation(tvm_region id);
/* RegionKind. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_kind") int32_t tvm_region_kind(tvm_region id);
/* Capacity in bytes. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_capacity") int64_t tvm_region_capacity(tvm_region id);
/* Bytes allocated (bump pointer / live bytes). Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_used") int64_t tvm_region_used(tvm_region id);
/* Residency: 0 Hot, 1 Warm, 2 Cold, 3 External, 4 being spilled. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_residency") int32_t tvm_region_residency(tvm_region id);
/* 1 if pinned, else 0. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_pinned") int32_t tvm_region_pinned(tvm_region id);
/* Allocator kind: 0 Bump, 1 Freelist, 2 Slab. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_allocator") int32_t tvm_region_allocator(tvm_region id);
/* 1 if read-only (protect), else 0. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_read_only") int32_t tvm_region_read_only(tvm_region id);
/* Index of the first dirty page (of 4096 bytes) at or after page `from`, -1 if none (untracked region: 9). Errors: returns -2 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("next_dirty_page") int64_t tvm_next_dirty_page(tvm_region id, uint32_t from);
/* Pool memory the region lives in now. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_pool") int32_t tvm_region_pool(tvm_region id);
/* Byte offset of the region in its pool. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_base") int64_t tvm_region_base(tvm_region id);
/* Counter `index` of RegionMetrics (allocations, bytes_allocated, bytes_read, bytes_written, faults, promotions, demotions). Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_metric") int64_t tvm_region_metric(tvm_region id, uint32_t index);
/* Access clock at the region's last access (LRU order). Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("region_last_access") int64_t tvm_region_last_access(tvm_region id);
/* Live regions. Errors: cannot fail. On both deployments. */
TVM_IMPORT("region_count") int32_t tvm_region_count(void);
/* The region to evict first (Warm before Hot, least recently used; never pinned or unspillable), 0 if none. Errors: cannot fail. On both deployments. */
TVM_IMPORT("lru_candidate") tvm_region tvm_lru_candidate(void);
/* pool << 32 | address of [offset, offset+len), checked like any access (for zero-copy views). Errors: returns -code (< 0) on failure. On the self-contained module only. (Not on the other: a guest cannot import the host's pools, so a pool address is of no use to it; Python embedders use TvmHost.view.) */
TVM_IMPORT("handle_address") int64_t tvm_handle_address(tvm_handle h, uint32_t len);
/* An embedder took a writable zero-copy view of [offset, offset+len): checked like a store (read-only: 8, nothing marked); the range's pages turn dirty when the region is tracked. Errors: returns 0 or the error code (also in last_error). On the self-contained module only. (Not on the other: a guest cannot import the host's pools, so a pool address is of no use to it; Python embedders use TvmHost.view.) */
TVM_IMPORT("note_write") int32_t tvm_note_write(tvm_handle h, uint32_t len);
/* An embedder copied [offset, offset+len) out of a zero-copy view (after handle_address, which stamped the access clock): checked like a load; counted in bytes_read, as the model's read counts it. Errors: returns 0 or the error code (also in last_error). On the self-contained module only. (Not on the other: a guest cannot import the host's pools, so a pool address is of no use to it; Python embedders use TvmHost.view.) */
TVM_IMPORT("note_read") int32_t tvm_note_read(tvm_handle h, uint32_t len);

/* ---------------------------------------------------------------- allocation */
/* Allocate `size` bytes in a region; returns the handle. Errors: returns 0 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("alloc") tvm_handle tvm_alloc(tvm_region region, uint32_t size);
/* Allocate `size` bytes at an offset that is a multiple of `align` (a power of two; 0: 8, or for Slab the largest power of two up to 8 dividing the class size). Errors: returns 0 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("alloc_aligned") tvm_handle tvm_alloc_aligned(tvm_region region, uint32_t size, uint32_t align);
/* Free an allocation (Bump: no-op; Slab/Freelist: double free is code 3). Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("dealloc") int32_t tvm_dealloc(tvm_handle h);

/* ---------------------------------------------------------------- typed access */
/* Load 1 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("load_u8") uint32_t tvm_load_u8(tvm_handle h, uint32_t off);
/* Store 1 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("store_u8") void tvm_store_u8(tvm_handle h, uint32_t off, uint32_t v);
/* Load 2 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("load_u16") uint32_t tvm_load_u16(tvm_handle h, uint32_t off);
/* Store 2 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("store_u16") void tvm_store_u16(tvm_handle h, uint32_t off, uint32_t v);
/* Load 4 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("load_u32") uint32_t tvm_load_u32(tvm_handle h, uint32_t off);
/* Store 4 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("store_u32") void tvm_store_u32(tvm_handle h, uint32_t off, uint32_t v);
/* Load 8 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("load_i64") int64_t tvm_load_i64(tvm_handle h, uint32_t off);
/* Store 8 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("store_i64") void tvm_store_i64(tvm_handle h, uint32_t off, int64_t v);
/* Load 4 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("load_f32") float tvm_load_f32(tvm_handle h, uint32_t off);
/* Store 4 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("store_f32") void tvm_store_f32(tvm_handle h, uint32_t off, float v);
/* Load 8 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("load_f64") double tvm_load_f64(tvm_handle h, uint32_t off);
/* Store 8 byte(s) at handle offset + `off`. Errors: traps on an invalid access. On both deployments. */
TVM_IMPORT("store_f64") void tvm_store_f64(tvm_handle h, uint32_t off, double v);
/* Like load_u8, but returns a code; the value (1 byte(s), little-endian) goes to guest memory at `out`. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_load_u8") int32_t tvm_try_load_u8(tvm_handle h, uint32_t off, uint8_t *out);
/* Like store_u8, but returns a code. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_store_u8") int32_t tvm_try_store_u8(tvm_handle h, uint32_t off, uint32_t v);
/* Like load_u16, but returns a code; the value (2 byte(s), little-endian) goes to guest memory at `out`. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_load_u16") int32_t tvm_try_load_u16(tvm_handle h, uint32_t off, uint16_t *out);
/* Like store_u16, but returns a code. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_store_u16") int32_t tvm_try_store_u16(tvm_handle h, uint32_t off, uint32_t v);
/* Like load_u32, but returns a code; the value (4 byte(s), little-endian) goes to guest memory at `out`. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_load_u32") int32_t tvm_try_load_u32(tvm_handle h, uint32_t off, uint32_t *out);
/* Like store_u32, but returns a code. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_store_u32") int32_t tvm_try_store_u32(tvm_handle h, uint32_t off, uint32_t v);
/* Like load_i64, but returns a code; the value (8 byte(s), little-endian) goes to guest memory at `out`. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_load_i64") int32_t tvm_try_load_i64(tvm_handle h, uint32_t off, int64_t *out);
/* Like store_i64, but returns a code. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_store_i64") int32_t tvm_try_store_i64(tvm_handle h, uint32_t off, int64_t v);
/* Like load_f32, but returns a code; the value (4 byte(s), little-endian) goes to guest memory at `out`. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_load_f32") int32_t tvm_try_load_f32(tvm_handle h, uint32_t off, float *out);
/* Like store_f32, but returns a code. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_store_f32") int32_t tvm_try_store_f32(tvm_handle h, uint32_t off, float v);
/* Like load_f64, but returns a code; the value (8 byte(s), little-endian) goes to guest memory at `out`. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_load_f64") int32_t tvm_try_load_f64(tvm_handle h, uint32_t off, double *out);
/* Like store_f64, but returns a code. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("try_store_f64") int32_t tvm_try_store_f64(tvm_handle h, uint32_t off, double v);

/* ---------------------------------------------------------------- bulk */
/* Copy `len` bytes from the handle into guest memory. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("read") int32_t tvm_read(tvm_handle h, void *dst, uint32_t len);
/* Copy `len` bytes from guest memory to the handle. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("write") int32_t tvm_write(tvm_handle h, const void *src, uint32_t len);
/* Copy between two handles (any regions; overlap is fine). Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("copy") int32_t tvm_copy(tvm_handle src, tvm_handle dst, uint32_t len);
/* Copy between regions by raw offsets (no generation check). Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("copy_region") int32_t tvm_copy_region(tvm_region src_region, uint32_t src_off, tvm_region dst_region, uint32_t dst_off, uint32_t len);
/* Gather `count` items of `item_size` bytes at offset + indices[i] (u32s in guest memory) into `dst`. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("read_gather") int32_t tvm_read_gather(tvm_handle h, const uint32_t *indices, uint32_t count, uint32_t item_size, void *dst);

/* ---------------------------------------------------------------- reducers */
/* Sum of the bytes. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("sum_u8") int64_t tvm_sum_u8(tvm_handle h, uint32_t len);
/* Count of bytes equal to `byte & 0xFF`. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("count_byte") int64_t tvm_count_byte(tvm_handle h, uint32_t len, uint32_t byte);
/* Offset (from the handle) of the first byte equal to `byte & 0xFF`, -1 if absent. Errors: returns -2 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("find_byte") int64_t tvm_find_byte(tvm_handle h, uint32_t len, uint32_t byte);
/* Set bits in the bytes. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("popcount") int64_t tvm_popcount(tvm_handle h, uint32_t len);
/* (min << 8) | max of the bytes; empty: 0xFF00. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("min_max_u8") int32_t tvm_min_max_u8(tvm_handle h, uint32_t len);
/* 64-bit FNV-1a of the bytes, written (u64, little-endian) to guest memory at `out`. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("hash_fnv1a") int32_t tvm_hash_fnv1a(tvm_handle h, uint32_t len, uint64_t *out);
/* 1 if the two spans are equal, else 0. Errors: returns -1 on failure, code in tvm_last_error(). On both deployments. */
TVM_IMPORT("eq") int32_t tvm_eq(tvm_handle a, tvm_handle b, uint32_t len);
/* Set every byte to `byte`. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("fill") int32_t tvm_fill(tvm_handle h, uint32_t len, uint32_t byte);
/* Zero the bytes and let their memory go: the range reads as zeros, the rest is intact; counted in bytes_discarded (read-only: 8). Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("discard") int32_t tvm_discard(tvm_handle h, uint32_t len);
/* 256 u32 counts (little-endian) of each byte value, written to guest memory at `out`. Errors: returns 0 or the error code (also in last_error). On both deployments. */
TVM_IMPORT("byte_histogram") int32_t tvm_byte_histogram(tvm_handle h, uint32_t len, uint32_t *out);

/* ---------------------------------------------------------------- embedder cold tier */
/* Resident -> spilling: accesses answer 4 while the embedder writes the bytes out (pinned: 6, unspillable kind: 9). Errors: returns 0 or the error code (also in last_error). On the self-contained module only. (Not on the other: the host spills to its own backing store (demote_region) and faults regions back in on access; these let a host-less embedder (a browser's storage) keep the Cold tier.) */
TVM_IMPORT("begin_spill") int32_t tvm_begin_spill(tvm_region id);
/* Spilling -> Cold: the span goes back to its pool. Errors: returns 0 or the error code (also in last_error). On the self-contained module only. (Not on the other: the host spills to its own backing store (demote_region) and faults regions back in on access; these let a host-less embedder (a browser's storage) keep the Cold tier.) */
TVM_IMPORT("finish_spill") int32_t tvm_finish_spill(tvm_region id);
/* Spilling -> Hot: the write-out failed, nothing moved. Errors: returns 0 or the error code (also in last_error). On the self-contained module only. (Not on the other: the host spills to its own backing store (demote_region) and faults regions back in on access; these let a host-less embedder (a browser's storage) keep the Cold tier.) */
TVM_IMPORT("cancel_spill") int32_t tvm_cancel_spill(tvm_region id);
/* Cold -> Hot: a zeroed span for the embedder to fill back in (no room: 5, stays Cold). Errors: returns 0 or the error code (also in last_error). On the self-contained module only. (Not on the other: the host spills to its own backing store (demote_region) and faults regions back in on access; these let a host-less embedder (a browser's storage) keep the Cold tier.) */
TVM_IMPORT("restore_region") int32_t tvm_restore_region(tvm_region id);

/* ---------------------------------------------------------------- checkpoints */
/* Add a region to the set the next `checkpoint` takes (one set per host). Errors: returns 0 or the error code (also in last_error). On TvmHost only. (Not on the other: the module's checkpoint pages are kept by its embedder (GuestInstance.checkpoint, like its Cold tier), which uses layout_size, save_layout, load_layout and renew_generation.) */
TVM_IMPORT("checkpoint_add") int32_t tvm_checkpoint_add(tvm_region id);
/* Checkpoint the regions added since the last checkpoint (pages changed since each region's previous checkpoint are copied; the first copies all); returns its id (none added: 9). Errors: returns 0 on failure, code in tvm_last_error(). On TvmHost only. (Not on the other: the module's checkpoint pages are kept by its embedder (GuestInstance.checkpoint, like its Cold tier), which uses layout_size, save_layout, load_layout and renew_generation.) */
TVM_IMPORT("checkpoint") int64_t tvm_checkpoint(void);
/* Put the checkpoint's regions back exactly (bytes, allocator state), later checkpoints of them superseded; a region whose layout changed moves to a new generation (every older handle: 2; take region_generation for the new ones, offsets unchanged); all or nothing (read-only: 8; a checkpoint not live or not this host's: 9). Errors: returns 0 or the error code (also in last_error). On TvmHost only. (Not on the other: the module's checkpoint pages are kept by its embedder (GuestInstance.checkpoint, like its Cold tier), which uses layout_size, save_layout, load_layout and renew_generation.) */
TVM_IMPORT("rollback") int32_t tvm_rollback(int64_t checkpoint);
/* Free a checkpoint's pages (folded into the next checkpoint of each region); one already released, superseded by a rollback, released with a destroyed region, or not this host's: 9, nothing changes. Errors: returns 0 or the error code (also in last_error). On TvmHost only. (Not on the other: the module's checkpoint pages are kept by its embedder (GuestInstance.checkpoint, like its Cold tier), which uses layout_size, save_layout, load_layout and renew_generation.) */
TVM_IMPORT("release_checkpoint") int32_t tvm_release_checkpoint(int64_t checkpoint);

/* ---------------------------------------------------------------- embedder checkpoints */
/* Bytes of the region's allocator state (what save_layout writes). Errors: returns -1 on failure, code in tvm_last_error(). On the self-contained module only. (Not on the other: TvmHost keeps allocator state and generations in Python: its checkpoint/rollback (Python API) restore them directly.) */
TVM_IMPORT("layout_size") int32_t tvm_layout_size(tvm_region id);
/* Copy the region's allocator state (bump pointer / live bytes, then the slab or block table) to guest memory at `dst`. Errors: returns 0 or the error code (also in last_error). On the self-contained module only. (Not on the other: TvmHost keeps allocator state and generations in Python: its checkpoint/rollback (Python API) restore them directly.) */
TVM_IMPORT("save_layout") int32_t tvm_save_layout(tvm_region id, void *dst);
/* Put back an allocator state save_layout wrote (read-only region: 8, nothing changes). Errors: returns 0 or the error code (also in last_error). On the self-contained module only. (Not on the other: TvmHost keeps allocator state and generations in Python: its checkpoint/rollback (Python API) restore them directly.) */
TVM_IMPORT("load_layout") int32_t tvm_load_layout(tvm_region id, const void *src);
/* Move the region to the next generation without moving bytes (a rollback that changed the layout): every older handle answers 2, migrate refuses them; at 65535: 5. Errors: returns 0 or the error code (also in last_error). On the self-contained module only. (Not on the other: TvmHost keeps allocator state and generations in Python: its checkpoint/rollback (Python API) restore them directly.) */
TVM_IMPORT("renew_generation") int32_t tvm_renew_generation(tvm_region id);

/* The self-contained module's per-pool typed accessors (built with specialised=True): no dispatch on
 * the pool; a handle of another pool traps (code 9). Declare them for pool K with TVM_POOL_ACCESSORS(K). */
#define TVM_POOL_ACCESSORS(K) \
    TVM_IMPORT("load_u8_p" #K) uint32_t tvm_load_u8_p##K(tvm_handle h, uint32_t off); \
    TVM_IMPORT("store_u8_p" #K) void tvm_store_u8_p##K(tvm_handle h, uint32_t off, uint32_t v); \
    TVM_IMPORT("load_u16_p" #K) uint32_t tvm_load_u16_p##K(tvm_handle h, uint32_t off); \
    TVM_IMPORT("store_u16_p" #K) void tvm_store_u16_p##K(tvm_handle h, uint32_t off, uint32_t v); \
    TVM_IMPORT("load_u32_p" #K) uint32_t tvm_load_u32_p##K(tvm_handle h, uint32_t off); \
    TVM_IMPORT("store_u32_p" #K) void tvm_store_u32_p##K(tvm_handle h, uint32_t off, uint32_t v); \
    TVM_IMPORT("load_i64_p" #K) int64_t tvm_load_i64_p##K(tvm_handle h, uint32_t off); \
    TVM_IMPORT("store_i64_p" #K) void tvm_store_i64_p##K(tvm_handle h, uint32_t off, int64_t v); \
    TVM_IMPORT("load_f32_p" #K) float tvm_load_f32_p##K(tvm_handle h, uint32_t off); \
    TVM_IMPORT("store_f32_p" #K) void tvm_store_f32_p##K(tvm_handle h, uint32_t off, float v); \
    TVM_IMPORT("load_f64_p" #K) double tvm_load_f64_p##K(tvm_handle h, uint32_t off); \
    TVM_IMPORT("store_f64_p" #K) void tvm_store_f64_p##K(tvm_handle h, uint32_t off, double v);

/* Handles: region_id:16 | generation:16 | offset:32. A live handle is never 0. */
static inline tvm_handle tvm_handle_pack(tvm_region region, uint32_t generation, uint32_t offset) {
    return ((tvm_handle)(region & 0xFFFFu) << 48) | ((tvm_handle)(generation & 0xFFFFu) << 32) | offset;
}
static inline tvm_region tvm_handle_region(tvm_handle h) { return (tvm_region)(h >> 48); }
static inline uint32_t tvm_handle_generation(tvm_handle h) { return (uint32_t)(h >> 32) & 0xFFFFu; }
static inline uint32_t tvm_handle_offset(tvm_handle h) { return (uint32_t)h; }
/* The handle `delta` bytes further. Saturates at offset 2^32 - 1, so an overflowing offset fails the
 * bounds check (code 3) instead of wrapping to the region's start. */
static inline tvm_handle tvm_handle_add(tvm_handle h, uint32_t delta) {
    uint64_t offset = (uint64_t)(uint32_t)h + delta;
    if (offset > 0xFFFFFFFFu) offset = 0xFFFFFFFFu;
    return (h & ~(tvm_handle)0xFFFFFFFFu) | offset;
}

/* Typed wrappers: signed and unsigned twins of the ABI's widths (same checks, same traps). */
static inline int8_t tvm_load_i8(tvm_handle h, uint32_t off) { return (int8_t)tvm_load_u8(h, off); }
static inline void tvm_store_i8(tvm_handle h, uint32_t off, int8_t v) { tvm_store_u8(h, off, (uint32_t)v); }
static inline int32_t tvm_try_load_i8(tvm_handle h, uint32_t off, int8_t *out) { return tvm_try_load_u8(h, off, (uint8_t *)out); }
static inline int32_t tvm_try_store_i8(tvm_handle h, uint32_t off, int8_t v) { return tvm_try_store_u8(h, off, (uint32_t)v); }
static inline int16_t tvm_load_i16(tvm_handle h, uint32_t off) { return (int16_t)tvm_load_u16(h, off); }
static inline void tvm_store_i16(tvm_handle h, uint32_t off, int16_t v) { tvm_store_u16(h, off, (uint32_t)v); }
static inline int32_t tvm_try_load_i16(tvm_handle h, uint32_t off, int16_t *out) { return tvm_try_load_u16(h, off, (uint16_t *)out); }
static inline int32_t tvm_try_store_i16(tvm_handle h, uint32_t off, int16_t v) { return tvm_try_store_u16(h, off, (uint32_t)v); }
static inline int32_t tvm_load_i32(tvm_handle h, uint32_t off) { return (int32_t)tvm_load_u32(h, off); }
static inline void tvm_store_i32(tvm_handle h, uint32_t off, int32_t v) { tvm_store_u32(h, off, (uint32_t)v); }
static inline int32_t tvm_try_load_i32(tvm_handle h, uint32_t off, int32_t *out) { return tvm_try_load_u32(h, off, (uint32_t *)out); }
static inline int32_t tvm_try_store_i32(tvm_handle h, uint32_t off, int32_t v) { return tvm_try_store_u32(h, off, (uint32_t)v); }
static inline uint64_t tvm_load_u64(tvm_handle h, uint32_t off) { return (uint64_t)tvm_load_i64(h, off); }
static inline void tvm_store_u64(tvm_handle h, uint32_t off, uint64_t v) { tvm_store_i64(h, off, (int64_t)v); }
static inline int32_t tvm_try_load_u64(tvm_handle h, uint32_t off, uint64_t *out) { return tvm_try_load_i64(h, off, (int64_t *)out); }
static inline int32_t tvm_try_store_u64(tvm_handle h, uint32_t off, uint64_t v) { return tvm_try_store_i64(h, off, (int64_t)v); }

/* The name of an error code ("OK", "NOT_FOUND", ...). */
static inline const char *tvm_error_name(int32_t code) {
    switch (code) {
    case 0: return "OK";
    case 1: return "NOT_FOUND";
    case 2: return "STALE";
    case 3: return "OUT_OF_BOUNDS";
    case 4: return "NOT_RESIDENT";
    case 5: return "ALLOCATION_FAILED";
    case 6: return "PINNED";
    case 7: return "GUEST_MEMORY";
    case 8: return "READ_ONLY";
    case 9: return "OTHER";
    default: return "UNKNOWN";
    }
}

#ifdef __cplusplus
}
#endif

#endif /* TVM_WASM_TVM_H */
