/* A guest that creates its own region, stores and loads through a handle, and recovers from a bad
 * handle without trapping. Runs unchanged on TvmHost and on the self-contained module (Writing guests, docs/guests.md). */
#include <tvm.h>

static uint32_t words[16];

/* Sum of i*3 for i < n (n <= 16), read back through a region; a negative result names the failure. */
__attribute__((export_name("run"))) int64_t run(uint32_t n) {
    if (n > 16) n = 16;
    tvm_region r = tvm_create_region(TVM_OBJECT_ARENA, 4096);
    if (r == 0) return -100 - tvm_last_error();
    tvm_handle h = tvm_alloc(r, 64);
    if (h == 0) return -200 - tvm_last_error();

    for (uint32_t i = 0; i < n; i++) tvm_store_u32(h, 4 * i, i * 3);    /* traps if out of bounds */
    int64_t sum = 0;
    for (uint32_t i = 0; i < n; i++) sum += tvm_load_i32(h, 4 * i);

    /* Bulk: the same words into guest memory in one call. */
    if (tvm_read(h, words, 4 * n) != TVM_OK) return -300 - tvm_last_error();
    for (uint32_t i = 0; i < n; i++) if (words[i] != i * 3) return -301;

    /* A handle of a generation the region never had: the try_ twin answers instead of trapping. */
    tvm_handle stale = tvm_handle_pack(r, tvm_handle_generation(h) + 1, 0);
    uint32_t value = 0;
    if (tvm_try_load_u32(stale, 0, &value) != TVM_STALE) return -400;
    if (tvm_last_error() != TVM_STALE) return -401;               /* read-and-clear */
    if (tvm_last_error() != TVM_OK) return -402;
    if (tvm_try_load_u32(h, 4096, &value) != TVM_OUT_OF_BOUNDS) return -403;
    tvm_last_error();

    uint64_t hash = 0;                                             /* every u64 is a valid hash: out-pointer */
    if (tvm_hash_fnv1a(h, 0, &hash) != TVM_OK || hash != 0xCBF29CE484222325ull) return -500;
    if (tvm_region_capacity(r) != 4096) return -600;
    if (tvm_destroy_region(r) != TVM_OK) return -700;
    return sum;
}

/* An out-of-bounds typed access: traps, and the host reports what was accessed. */
__attribute__((export_name("oob"))) uint32_t oob(tvm_handle h) { return tvm_load_u32(h, 1u << 20); }

/* An unrelated trap, reported as the engine's own. */
__attribute__((export_name("divide"))) uint32_t divide(uint32_t d) { return 100 / d; }
