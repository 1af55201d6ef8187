/* regions.c: a guest that manages its own regions. It creates regions of several kinds
 * and allocators, allocates and stores in them, queries them, destroys some, and checks
 * that what it destroyed is gone (a 0 handle and last_error = 1, never a trap), mixing
 * every answer into one 64-bit digest. The same module gives the same digest on TvmHost
 * and on the self-contained module: the guest sees one ABI on both.
 *
 * Library exports: run(seed, rounds) -> digest; live() -> regions this guest still holds.
 */
#include <stdint.h>
#include <tvm.h> /* tvm-wasm sdk --include */

#define EXPORT(name) __attribute__((export_name(#name)))
#define MAX_ROUNDS 64u

static uint64_t digest;
static uint32_t held[MAX_ROUNDS];
static uint32_t held_count;

static void mix(uint64_t value) {
  digest = (digest ^ value) * 1099511628211ull; /* FNV-1a step over whole values */
}

EXPORT(run) uint64_t run(uint32_t seed, uint32_t rounds) {
  digest = 14695981039346656037ull;
  if (rounds > MAX_ROUNDS) rounds = MAX_ROUNDS;
  for (uint32_t round = 0; round < rounds; round++) {
    uint32_t x = (seed + round) * 2654435761u;
    uint32_t kind = x % 5u;             /* HOT_HEAP .. SCRATCH */
    uint32_t capacity = 256u + (x >> 8) % 4096u;
    uint32_t slab = round % 3u == 2u;
    uint32_t id = slab ? tvm_create_region_with(kind, capacity, TVM_ALLOC_SLAB, 16u + 8u * (round % 4u))
                       : tvm_create_region(kind, capacity);
    mix(id != 0);
    if (!id) {
      mix(tvm_last_error());
      continue;
    }
    mix((uint32_t)tvm_region_capacity(id));
    mix((uint32_t)tvm_region_kind(id));
    mix((uint32_t)tvm_region_generation(id));
    mix((uint32_t)tvm_region_used(id));
    tvm_handle h = tvm_alloc(id, 16u);
    mix(h != 0);
    if (h) {
      tvm_store_u32(h, 0, x);
      tvm_store_i64(h, 8, (int64_t)x * -3);
      mix(tvm_load_u32(h, 0));
      mix((uint64_t)tvm_load_i64(h, 8));
      mix((uint32_t)tvm_region_used(id));
    } else {
      mix(tvm_last_error());
    }
    if (round % 2u) {
      mix(tvm_destroy_region(id));
      mix((uint32_t)tvm_region_used(id)); /* -1: no such region */
      mix(tvm_last_error());              /* 1 */
      mix(tvm_alloc(id, 8u) == 0);
      mix(tvm_last_error());
      mix(tvm_destroy_region(id));        /* destroying twice: 1 */
      mix(tvm_last_error());
    } else {
      held[held_count++ % MAX_ROUNDS] = id;
    }
  }
  mix((uint32_t)tvm_region_used(60000u)); /* an id never made */
  mix(tvm_last_error());
  mix(tvm_create_region(TVM_BLOB_ARENA, 0u)); /* a zero capacity is refused */
  mix(tvm_last_error());
  mix(tvm_last_error()); /* read-and-clear: 0 now */
  return digest;
}

EXPORT(live) uint32_t live(void) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < held_count && i < MAX_ROUNDS; i++) n += tvm_region_used(held[i]) >= 0;
  return n;
}
