/* paging.c: out-of-core paging. Regions larger than the host's byte budget are filled and
 * checksummed 64 KiB at a time, each chunk moved between a buffer in linear memory and
 * the region with tvm_write / tvm_read. Under a budget smaller than the regions, making or
 * touching one region spills another to the backing store, and reading it again faults it
 * back in: the program never sees the difference, only the host's metrics do.
 *
 *   paging [MIB_PER_REGION=64] [REGIONS=2] [PASSES=2]
 *
 * Word j (little-endian u32) of region r is word(j, r) below; the checksum of a region is
 * sum_j word(j, r) * (j % 65521 + 1) mod 2^64, so it depends on every byte and its place.
 * Prints one line per region and pass; exits 0 when every pass agrees, 1 when not, 2 when a
 * region cannot be made, 3 when a read or write fails (with the tvm error code).
 *
 * Built as a library it exports checksum_plain / checksum_paged for the benchmark: the
 * same checksum over a plain buffer in linear memory and over a region, paged.
 */
#include <stdint.h>
#include <tvm.h> /* tvm-wasm sdk --include */

#define CHUNK 65536u
#define WORDS (CHUNK / 4u)
#define EXPORT(name) __attribute__((export_name(#name)))

static uint32_t chunk[WORDS];

static inline uint32_t word(uint32_t j, uint32_t r) {
  uint32_t x = j * 2654435761u + r * 0x9E3779B9u;
  x ^= x >> 15;
  x *= 0x85EBCA6Bu;
  x ^= x >> 13;
  return x;
}

/* The running checksum over words [first, first + n) held in ``w``. */
static uint64_t checksum_words(uint64_t acc, const uint32_t *w, uint32_t first, uint32_t n) {
  for (uint32_t i = 0; i < n; i++) acc += (uint64_t)w[i] * ((first + i) % 65521u + 1u);
  return acc;
}

/* Fill ``bytes`` (a multiple of 64 KiB) of the block ``h`` with region r's words. */
static uint32_t fill(tvm_handle h, uint32_t bytes, uint32_t r) {
  for (uint32_t at = 0; at < bytes; at += CHUNK) {
    for (uint32_t i = 0; i < WORDS; i++) chunk[i] = word(at / 4u + i, r);
    uint32_t code = tvm_write(tvm_handle_add(h, at), chunk, CHUNK);
    if (code) return code;
  }
  return 0;
}

static uint32_t checksum_region(tvm_handle h, uint32_t bytes, uint64_t *out) {
  uint64_t acc = 0;
  for (uint32_t at = 0; at < bytes; at += CHUNK) {
    uint32_t code = tvm_read(tvm_handle_add(h, at), chunk, CHUNK);
    if (code) return code;
    acc = checksum_words(acc, chunk, at / 4u, WORDS);
  }
  *out = acc;
  return 0;
}

/* ---- library exports (benchmark): one region and one plain buffer of the same bytes ---- */
static tvm_handle bench_block;
static uint32_t *bench_plain;
static uint32_t bench_bytes;

/* Make a region of ``mib`` MiB and a plain buffer (grown linear memory) with region 0's words. */
EXPORT(setup) uint32_t setup(uint32_t mib) {
  bench_bytes = mib << 20;
  uint32_t region = tvm_create_region(TVM_BLOB_ARENA, bench_bytes);
  if (!region) return tvm_last_error();
  bench_block = tvm_alloc(region, bench_bytes);
  if (!bench_block) return tvm_last_error();
  int32_t old = __builtin_wasm_memory_grow(0, bench_bytes / 65536u);
  if (old < 0) return 5;
  bench_plain = (uint32_t *)((uintptr_t)old * 65536u);
  for (uint32_t j = 0; j < bench_bytes / 4u; j++) bench_plain[j] = word(j, 0);
  return fill(bench_block, bench_bytes, 0);
}

EXPORT(checksum_plain) uint64_t checksum_plain(uint32_t reps) {
  uint64_t total = 0;
  for (uint32_t r = 0; r < reps; r++) {
    __asm__ volatile("" ::: "memory");
    total += checksum_words(0, bench_plain, 0, bench_bytes / 4u);
  }
  return total;
}

EXPORT(checksum_paged) uint64_t checksum_paged(uint32_t reps) {
  uint64_t total = 0;
  for (uint32_t r = 0; r < reps; r++) {
    uint64_t one;
    if (checksum_region(bench_block, bench_bytes, &one)) __builtin_trap();
    total += one;
  }
  return total;
}

#ifdef __wasi__
#include <stdio.h>
#include <stdlib.h>

#define MAX_REGIONS 16

int main(int argc, char **argv) {
  uint32_t mib = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 64;
  uint32_t regions = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 2;
  uint32_t passes = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 0) : 2;
  if (mib < 1 || mib > 2048 || regions < 1 || regions > MAX_REGIONS || passes < 1) {
    fprintf(stderr, "usage: paging [MIB 1..2048] [REGIONS 1..%d] [PASSES >= 1]\n", MAX_REGIONS);
    return 2;
  }
  uint32_t bytes = mib << 20;
  uint32_t ids[MAX_REGIONS];
  tvm_handle blocks[MAX_REGIONS];
  uint64_t first[MAX_REGIONS];
  for (uint32_t r = 0; r < regions; r++) {
    ids[r] = tvm_create_region(TVM_BLOB_ARENA, bytes);
    blocks[r] = ids[r] ? tvm_alloc(ids[r], bytes) : 0;
    if (!blocks[r]) {
      fprintf(stderr, "paging: cannot make region %u of %u MiB (tvm error %u)\n", r, mib, tvm_last_error());
      return 2;
    }
    uint32_t code = fill(blocks[r], bytes, r);
    if (code) {
      fprintf(stderr, "paging: writing region %u failed (tvm error %u)\n", r, code);
      return 3;
    }
  }
  int same = 1;
  for (uint32_t pass = 0; pass < passes; pass++) {
    for (uint32_t r = 0; r < regions; r++) {
      uint64_t sum;
      uint32_t code = checksum_region(blocks[r], bytes, &sum);
      if (code) {
        fprintf(stderr, "paging: reading region %u failed (tvm error %u)\n", r, code);
        return 3;
      }
      printf("pass %u region %u (id %u) checksum %016llx\n", pass, r, ids[r], (unsigned long long)sum);
      if (pass == 0) first[r] = sum;
      else same &= sum == first[r];
    }
  }
  printf(same ? "OK\n" : "MISMATCH\n");
  return same ? 0 : 1;
}
#endif
