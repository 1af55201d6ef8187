/* The tvm imports these examples use, declared by hand.
 *
 * Handles are packed i64 values: region_id:16 | generation:16 | offset:32.
 * Typed loads and stores trap on an invalid access; read/write/alloc report
 * errors by a code (0 = ok) or a 0 handle, with the code in tvm_last_error().
 */
#ifndef TVM_DECLS_H
#define TVM_DECLS_H
#include <stdint.h>

typedef int64_t tvm_handle;

#define TVM_IMPORT(name) __attribute__((import_module("tvm"), import_name(#name)))

enum { TVM_HOT_HEAP = 0, TVM_OBJECT_ARENA = 1, TVM_BLOB_ARENA = 2, TVM_PAGE_STORE = 3, TVM_SCRATCH = 4 };
enum { TVM_ALLOC_BUMP = 0, TVM_ALLOC_FREELIST = 1, TVM_ALLOC_SLAB = 2 };

TVM_IMPORT(create_region) uint32_t tvm_create_region(uint32_t kind, uint32_t capacity);
TVM_IMPORT(create_region_with) uint32_t tvm_create_region_with(uint32_t kind, uint32_t capacity,
                                                               uint32_t allocator, uint32_t param);
TVM_IMPORT(destroy_region) uint32_t tvm_destroy_region(uint32_t region);
TVM_IMPORT(region_used) int32_t tvm_region_used(uint32_t region);
TVM_IMPORT(region_capacity) int32_t tvm_region_capacity(uint32_t region);
TVM_IMPORT(region_generation) int32_t tvm_region_generation(uint32_t region);
TVM_IMPORT(region_kind) int32_t tvm_region_kind(uint32_t region);
TVM_IMPORT(alloc) tvm_handle tvm_alloc(uint32_t region, uint32_t size);
TVM_IMPORT(dealloc) uint32_t tvm_dealloc(tvm_handle h);
TVM_IMPORT(read) uint32_t tvm_read(tvm_handle h, void *dst, uint32_t len);
TVM_IMPORT(write) uint32_t tvm_write(tvm_handle h, const void *src, uint32_t len);
TVM_IMPORT(load_u8) uint32_t tvm_load_u8(tvm_handle h, uint32_t offset);
TVM_IMPORT(load_u32) uint32_t tvm_load_u32(tvm_handle h, uint32_t offset);
TVM_IMPORT(load_i64) int64_t tvm_load_i64(tvm_handle h, uint32_t offset);
TVM_IMPORT(load_f32) float tvm_load_f32(tvm_handle h, uint32_t offset);
TVM_IMPORT(store_u8) void tvm_store_u8(tvm_handle h, uint32_t offset, uint32_t value);
TVM_IMPORT(store_u32) void tvm_store_u32(tvm_handle h, uint32_t offset, uint32_t value);
TVM_IMPORT(store_i64) void tvm_store_i64(tvm_handle h, uint32_t offset, int64_t value);
TVM_IMPORT(store_f32) void tvm_store_f32(tvm_handle h, uint32_t offset, float value);
TVM_IMPORT(last_error) uint32_t tvm_last_error(void);

/* The handle ``offset`` bytes further into the same region. */
static inline tvm_handle tvm_at(tvm_handle h, uint32_t offset) { return h + (tvm_handle)offset; }

#endif
