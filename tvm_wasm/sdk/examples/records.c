/* records.c: a record store of 100,000 fixed-size 32-byte records, kept four ways and
 * scanned by the same C code:
 *
 *   plain    a C array in linear memory (the reference);
 *   handles  one region holding every record, each field read and written through a
 *            per-access typed load or store on a handle (tvm_load_u32(store, i*32 + 4));
 *   slab     one Slab block (32 B) per record: 100,000 handles, one per record;
 *   paged    the region of "handles", brought into linear memory 64 KiB at a time with
 *            tvm_read, then scanned as a plain array.
 *
 * Built as a WASI command (clang --target=wasm32-wasi) it checks that all four give the
 * same answers and exits 0 (1 on a mismatch, 2 when a region cannot be made). Built as a
 * library (clang --target=wasm32 -nostdlib -mbulk-memory -Wl,--no-entry) it exports setup() and the
 * scans for embedders and benchmarks: each scan_* takes a repetition count and returns
 * the sum of that many scans (mod 2^64).
 */
#include <stdint.h>
#include <tvm.h> /* tvm-wasm sdk --include */

#define MAX_RECORDS 100000u
#define RECORD 32u
#define CHUNK 65536u
#define PER_CHUNK (CHUNK / RECORD)
#define EXPORT(name) __attribute__((export_name(#name)))

typedef struct {
  uint32_t id;    /* offset 0 */
  uint32_t key;   /* offset 4 */
  int64_t value;  /* offset 8 */
  float score;    /* offset 16 */
  uint32_t flags; /* offset 20 */
  int64_t tag;    /* offset 24 */
} record;
_Static_assert(sizeof(record) == RECORD, "a record is 32 bytes");

static record plain[MAX_RECORDS];
static tvm_handle slots[MAX_RECORDS];
static record page[PER_CHUNK];
static uint32_t count;
static tvm_handle store;

static void make(record *r, uint32_t i, uint32_t seed) {
  uint32_t x = (i + seed) * 2654435761u;
  x ^= x >> 16;
  r->id = i;
  r->key = x;
  r->value = (int64_t)x * 3 - (int64_t)i;
  r->score = (float)(x % 1000u) / 8.0f;
  r->flags = x & 7u;
  r->tag = -(int64_t)i;
}

static void store_fields(tvm_handle h, uint32_t at, const record *r) {
  tvm_store_u32(h, at + 0, r->id);
  tvm_store_u32(h, at + 4, r->key);
  tvm_store_i64(h, at + 8, r->value);
  tvm_store_f32(h, at + 16, r->score);
  tvm_store_u32(h, at + 20, r->flags);
  tvm_store_i64(h, at + 24, r->tag);
}

/* The two scans, written once over accessor macros: "field" sums one field of every
 * record; "filter" tests two fields and sums a third where both match. */
#define SCAN_FIELD(KEY, from, to, sum) \
  for (uint32_t i = (from); i < (to); i++) (sum) += (uint64_t)KEY(i)
#define SCAN_FILTER(FLAGS, SCORE, VALUE, from, to, sum) \
  for (uint32_t i = (from); i < (to); i++)              \
    if (FLAGS(i) == 3u && SCORE(i) < 60.0f) (sum) += (uint64_t)VALUE(i)

#define PLAIN_KEY(i) plain[i].key
#define PLAIN_FLAGS(i) plain[i].flags
#define PLAIN_SCORE(i) plain[i].score
#define PLAIN_VALUE(i) plain[i].value
#define STORE_KEY(i) tvm_load_u32(store, (i) * RECORD + 4)
#define STORE_FLAGS(i) tvm_load_u32(store, (i) * RECORD + 20)
#define STORE_SCORE(i) tvm_load_f32(store, (i) * RECORD + 16)
#define STORE_VALUE(i) tvm_load_i64(store, (i) * RECORD + 8)
#define SLAB_KEY(i) tvm_load_u32(slots[i], 4)
#define SLAB_FLAGS(i) tvm_load_u32(slots[i], 20)
#define SLAB_SCORE(i) tvm_load_f32(slots[i], 16)
#define SLAB_VALUE(i) tvm_load_i64(slots[i], 8)
#define PAGE_KEY(i) page[(i) - base].key
#define PAGE_FLAGS(i) page[(i) - base].flags
#define PAGE_SCORE(i) page[(i) - base].score
#define PAGE_VALUE(i) page[(i) - base].value

/* Make the regions and write n records (n <= 100,000) every way; 0, or the tvm error code. */
EXPORT(setup) uint32_t setup(uint32_t n, uint32_t seed) {
  if (n > MAX_RECORDS) n = MAX_RECORDS;
  count = n;
  uint32_t bytes = n * RECORD;
  uint32_t store_region = tvm_create_region(TVM_OBJECT_ARENA, bytes ? bytes : RECORD);
  if (!store_region) return tvm_last_error();
  store = tvm_alloc(store_region, bytes ? bytes : RECORD);
  if (!store) return tvm_last_error();
  uint32_t slab_region = tvm_create_region_with(TVM_OBJECT_ARENA, (n ? n : 1) * RECORD, TVM_ALLOC_SLAB, RECORD);
  if (!slab_region) return tvm_last_error();
  for (uint32_t i = 0; i < n; i++) {
    record r;
    make(&r, i, seed);
    plain[i] = r;
    store_fields(store, i * RECORD, &r);
    slots[i] = tvm_alloc(slab_region, RECORD);
    if (!slots[i]) return tvm_last_error();
    store_fields(slots[i], 0, &r);
  }
  return 0;
}

static uint64_t field_paged(void) {
  uint64_t sum = 0;
  for (uint32_t base = 0; base < count; base += PER_CHUNK) {
    uint32_t end = base + PER_CHUNK < count ? base + PER_CHUNK : count;
    if (tvm_read(tvm_handle_add(store, base * RECORD), page, (end - base) * RECORD)) __builtin_trap();
    SCAN_FIELD(PAGE_KEY, base, end, sum);
  }
  return sum;
}

static uint64_t filter_paged(void) {
  uint64_t sum = 0;
  for (uint32_t base = 0; base < count; base += PER_CHUNK) {
    uint32_t end = base + PER_CHUNK < count ? base + PER_CHUNK : count;
    if (tvm_read(tvm_handle_add(store, base * RECORD), page, (end - base) * RECORD)) __builtin_trap();
    SCAN_FILTER(PAGE_FLAGS, PAGE_SCORE, PAGE_VALUE, base, end, sum);
  }
  return sum;
}

#define REPEAT(expr)                                              \
  uint64_t total = 0;                                             \
  for (uint32_t r = 0; r < reps; r++) {                           \
    __asm__ volatile("" ::: "memory"); /* one scan per repetition */ \
    expr;                                                         \
  }                                                               \
  return total

EXPORT(field_plain) uint64_t field_plain(uint32_t reps) { REPEAT(SCAN_FIELD(PLAIN_KEY, 0, count, total)); }
EXPORT(field_handles) uint64_t field_handles(uint32_t reps) { REPEAT(SCAN_FIELD(STORE_KEY, 0, count, total)); }
EXPORT(field_slab) uint64_t field_slab(uint32_t reps) { REPEAT(SCAN_FIELD(SLAB_KEY, 0, count, total)); }
EXPORT(field_paged) uint64_t field_paged_x(uint32_t reps) { REPEAT(total += field_paged()); }
EXPORT(filter_plain) uint64_t filter_plain(uint32_t reps) {
  REPEAT(SCAN_FILTER(PLAIN_FLAGS, PLAIN_SCORE, PLAIN_VALUE, 0, count, total));
}
EXPORT(filter_handles) uint64_t filter_handles(uint32_t reps) {
  REPEAT(SCAN_FILTER(STORE_FLAGS, STORE_SCORE, STORE_VALUE, 0, count, total));
}
EXPORT(filter_slab) uint64_t filter_slab(uint32_t reps) {
  REPEAT(SCAN_FILTER(SLAB_FLAGS, SLAB_SCORE, SLAB_VALUE, 0, count, total));
}
EXPORT(filter_paged) uint64_t filter_paged_x(uint32_t reps) { REPEAT(total += filter_paged()); }

#ifdef __wasi__
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
  uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : MAX_RECORDS;
  uint32_t seed = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 1;
  uint32_t code = setup(n, seed);
  if (code) {
    fprintf(stderr, "records: cannot set up the regions (tvm error %u)\n", code);
    return 2;
  }
  uint64_t field[4] = {field_plain(1), field_handles(1), field_slab(1), field_paged_x(1)};
  uint64_t filter[4] = {filter_plain(1), filter_handles(1), filter_slab(1), filter_paged_x(1)};
  printf("records: %u x %u B\n", count, RECORD);
  printf("field  plain %llu handles %llu slab %llu paged %llu\n", (unsigned long long)field[0],
         (unsigned long long)field[1], (unsigned long long)field[2], (unsigned long long)field[3]);
  printf("filter plain %llu handles %llu slab %llu paged %llu\n", (unsigned long long)filter[0],
         (unsigned long long)filter[1], (unsigned long long)filter[2], (unsigned long long)filter[3]);
  for (int k = 1; k < 4; k++) {
    if (field[k] != field[0] || filter[k] != filter[0]) {
      printf("MISMATCH\n");
      return 1;
    }
  }
  printf("OK\n");
  return 0;
}
#endif
