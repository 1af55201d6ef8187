// tvm-guest.js: run a tvm-wasm guest module (built by `tvm-wasm guest build`) from JavaScript.
//
// The module imports nothing, so `WebAssembly.instantiate(bytes, {})` is all it needs; this
// file adds what an embedder needs to use it without silent wrong results:
//
// - the control plane as methods that throw typed errors (`TvmError` subclasses with the
//   names, codes and context fields of the Python package's errors);
// - every size, offset and count range-checked (a Number up to 2^53 or a BigInt; a value the
//   ABI cannot hold is a `RangeError`, never truncated), enums validated, bytes of any typed
//   array written and read by their bytes;
// - aligned allocation and typed views (`f64`, `u32`, ...) that survive pool growth;
// - a pool-growth notification, traps turned into typed errors, run-time linking of user
//   modules (including clang's `env.memory` imports), engine feature checks, streaming compile;
// - a Cold tier in the Origin Private File System (`ColdTier`).
//
// Handles are BigInts (the i64 of the raw ABI: region_id:16 | generation:16 | offset:32).
// The module carries its ABI version; `instantiate` refuses a module built for another one.

// --- generated from the ABI table by tvm_wasm.guest.web: do not edit by hand ---
export const ABI_VERSION = 2;
export const ABI_FINGERPRINT = 0x50fed929;
const ERROR_CODES = { OK: 0, NOT_FOUND: 1, STALE: 2, OUT_OF_BOUNDS: 3, NOT_RESIDENT: 4, ALLOCATION_FAILED: 5, PINNED: 6, GUEST_MEMORY: 7, READ_ONLY: 8, OTHER: 9 };
const ERROR_CLASS_CODES = { RegionNotFound: 1, StaleHandle: 2, OutOfBounds: 3, NotResident: 4, AllocationFailed: 5, Pinned: 6, GuestMemoryError: 7, ReadOnly: 8, PolicyViolation: 9, UnsupportedAllocator: 9, BackingStoreError: 9, UnsupportedEngine: 9, AbiMismatch: 9, CheckpointError: 9, LinkRefused: 9 };
const KIND_NAMES = ["HOT_HEAP", "OBJECT_ARENA", "BLOB_ARENA", "PAGE_STORE", "SCRATCH", "DEVICE_STATE", "CODE_CACHE"];
const KIND_POLICY = [{ pinnable: true, spillable: false, warm: false }, { pinnable: false, spillable: true, warm: false }, { pinnable: false, spillable: true, warm: false }, { pinnable: false, spillable: true, warm: true }, { pinnable: false, spillable: false, warm: false }, { pinnable: true, spillable: false, warm: false }, { pinnable: true, spillable: false, warm: false }];
const ALLOCATORS = { BUMP: 0, FREELIST: 1, BLOCKS: 1, SLAB: 2 };
const RESIDENCIES = { HOT: 0, WARM: 1, COLD: 2 };
const DIRTY_PAGE = 4096; // bytes of a dirty-tracking (and checkpoint) page
const TIER_SPILLING = 4; // region_residency of a region the embedder is writing out
const METRICS = ["allocations", "bytesAllocated", "bytesRead", "bytesWritten", "faults", "promotions", "demotions", "bytesDiscarded"];
const MULTI_MEMORY_SINCE = "Chrome 120, Edge 120, Firefox 125, Node.js 22"; // first releases with multi-memory by default
const ABI_NAMES = ["last_error", "create_region", "create_region_with", "destroy_region", "pin", "unpin", "demote_region", "promote_region", "compact_region", "migrate", "protect", "track_dirty", "clear_dirty", "region_generation", "region_kind", "region_capacity", "region_used", "region_residency", "region_pinned", "region_allocator", "region_read_only", "next_dirty_page", "region_pool", "region_base", "region_metric", "region_last_access", "region_count", "lru_candidate", "handle_address", "note_write", "note_read", "alloc", "alloc_aligned", "dealloc", "load_u8", "store_u8", "load_u16", "store_u16", "load_u32", "store_u32", "load_i64", "store_i64", "load_f32", "store_f32", "load_f64", "store_f64", "try_load_u8", "try_store_u8", "try_load_u16", "try_store_u16", "try_load_u32", "try_store_u32", "try_load_i64", "try_store_i64", "try_load_f32", "try_store_f32", "try_load_f64", "try_store_f64", "load_u8_pk", "store_u8_pk", "load_u16_pk", "store_u16_pk", "load_u32_pk", "store_u32_pk", "load_i64_pk", "store_i64_pk", "load_f32_pk", "store_f32_pk", "load_f64_pk", "store_f64_pk", "read", "write", "copy", "copy_region", "read_gather", "sum_u8", "count_byte", "find_byte", "popcount", "min_max_u8", "hash_fnv1a", "eq", "fill", "discard", "byte_histogram", "begin_spill", "finish_spill", "cancel_spill", "restore_region", "checkpoint_add", "checkpoint", "rollback", "release_checkpoint", "layout_size", "save_layout", "load_layout", "renew_generation"]; // by trap_function
const TYPED_ACCESS_ERROR = "{function}({handle}) accessing {width} byte(s) at offset {offset}: {state}";
const REGION_STATES = {"absent": "no region r{region}", "destroyed": "region r{region} was destroyed", "live": "region r{region} at generation {generation}"};
const BULK_ERROR = "{operation}({handle}) of {length} byte(s): {cause}";
const HANDLE_ERROR = "{operation}({handle}): {cause}";
const BULK_CAUSES = {"1": "no such region (never created, or destroyed)", "2": "the handle's generation is not the region's current one", "3": "outside the region's capacity (or not an allocated block)", "4": "the region is Cold or External and may not be faulted in", "5": "no room: region, pool, id space or budget full", "6": "the region is pinned", "7": "a guest-memory range lies outside the guest's memory", "8": "the region is read-only (protect): nothing changed", "9": "policy, allocator, backing store, bad argument, or a region the runtime cannot reach"};
const OUT_OF_BOUNDS = "outside the region's capacity"; // BULK_ERROR's cause past the capacity
const ALLOCATOR_NAMES = ["Bump", "Freelist", "Slab"]; // by allocator value, as errors name them
const COMPACT_REFUSED = "compact_region(r{region}) refused: {cause}";
const COMPACT_CAUSES = {"allocator": "a {allocator} region cannot be compacted (only Freelist regions are)", "pinned": "the region is pinned", "last_generation": "generation space exhausted: the region is at generation {generation}, the last one (a compaction would revive old handles); copy its live blocks to a new region"};
const ARGUMENT_ERRORS = {"not_an_integer": "{name} must be an integer, not {type} {value}", "out_of_range": "{name} must be in {minimum}..{maximum}, got {value}", "not_a_power_of_two": "{name} must be a power of two in {minimum}..{maximum}, got {value}", "not_a_handle": "{name} must be a Handle, not {type} {value}"}; // core.arguments: a malformed argument
const ALLOC_ERROR = "alloc(r{region}) of {size} byte(s): {cause}";
const ALLOC_CAUSES = {"bump_full": "no room above offset {used:#x} (align {align})", "no_free_block": "no free block that large (align {align})", "empty_block": "a Freelist block is at least 1 byte", "block_table_full": "the block table is full ({entries} blocks since the last compaction)", "slab_size": "the Slab region's slots are {class_size} byte(s)", "slab_align": "the Slab region's {class_size}-byte slots cannot be aligned to {align}", "slab_full": "all {slots} slots of the Slab region are taken", "slab_size_or_align": "the Slab region's slots are of another size, or cannot be aligned to {align}"}; // core.allocator_faults
const DEALLOC_CAUSES = {"no_block": "no live block starts at this offset", "slab_boundary": "not a boundary of the Slab region's {class_size}-byte slots", "slab_free": "the slot is free already (a double free)", "slab_no_slot": "no live slot starts at this offset (not a slot boundary, or free already)"};
const UNSERVED_TVM = {"checkpoint_add": "checkpoint_add is a host-only ABI function: it exists only on the host target (TvmHost, `tvm-wasm link --target host`), not on the guest target, because the module's checkpoint pages are kept by its embedder (GuestInstance.checkpoint, like its Cold tier), which uses layout_size, save_layout, load_layout and renew_generation; link with --target host", "checkpoint": "checkpoint is a host-only ABI function: it exists only on the host target (TvmHost, `tvm-wasm link --target host`), not on the guest target, because the module's checkpoint pages are kept by its embedder (GuestInstance.checkpoint, like its Cold tier), which uses layout_size, save_layout, load_layout and renew_generation; link with --target host", "rollback": "rollback is a host-only ABI function: it exists only on the host target (TvmHost, `tvm-wasm link --target host`), not on the guest target, because the module's checkpoint pages are kept by its embedder (GuestInstance.checkpoint, like its Cold tier), which uses layout_size, save_layout, load_layout and renew_generation; link with --target host", "release_checkpoint": "release_checkpoint is a host-only ABI function: it exists only on the host target (TvmHost, `tvm-wasm link --target host`), not on the guest target, because the module's checkpoint pages are kept by its embedder (GuestInstance.checkpoint, like its Cold tier), which uses layout_size, save_layout, load_layout and renew_generation; link with --target host"}; // tvm.* imports of the host only, by name
const UNSERVED_WHY = {"pool": "{name} names pool {pool}, but this module has {have}; link or build with --pools {more} or more", "no_pools": "no per-pool functions (built with specialised=False)", "pools": "{pools} pool(s), so per-pool functions _p0.._p{last}", "not_exported": "{name} is an ABI function this runtime does not export", "internal": "{name} is a runtime internal, not an ABI function: user code reaches the runtime only through the ABI", "unknown": "the tvm ABI has no function '{name}'"}; // the other reasons, as templates
const LINK_REFUSED = {"memory": "import {where}: a user module may import only its own memory (as env.memory or tvm.memory), never a pool or the directory", "kind": "import {where}: user modules may import functions and their memory only, not a {kind}", "signature": "import {where}: signature {signature} does not match the runtime's {expected}", "memories": "the user module declares {count} memories; a linked module has one user memory (the pools are reached only through tvm.*)", "own_memory": "the module defines its own memory but imports {using}, which here copy to and from the self-contained module's memory: import the memory instead (clang/lld: -Wl,--import-memory; rustc: -C link-arg=--import-memory; WAT: (import \"tvm\" \"memory\" (memory 1))), or link it statically with `tvm-wasm link`"}; // abi.imports.refused_import's wordings
const INTERNAL_NAMES = new Set(["abi_fingerprint", "abi_version", "arena_grow_to", "arena_zero", "arena_zero_page", "block_find", "bridge", "check_handle", "compact_blocks", "copy_in", "copy_out", "ensure_resident", "fault", "gather", "histogram", "live_slot", "memory", "meta", "peek_id", "put_i64", "remove_extent", "span_give", "span_scrub", "span_take", "touch_span", "trap", "write_barrier"]);
const INTERNAL_PATTERN = new RegExp("^(?:(hoist_|clocked_|tvm-hoist:|tvm-internal:|tvm_cold_|control_|host_|tvm:|trap_)\\w*|(mem|pool)\\d+|\\w*_p\\d+(_\\w+)?)$");
const ABI_SIGNATURES = {"last_error": "() -> (i32)", "create_region": "(i32 i32) -> (i32)", "create_region_with": "(i32 i32 i32 i32) -> (i32)", "destroy_region": "(i32) -> (i32)", "pin": "(i32) -> (i32)", "unpin": "(i32) -> (i32)", "demote_region": "(i32) -> (i32)", "promote_region": "(i32) -> (i32)", "compact_region": "(i32) -> (i32)", "migrate": "(i64) -> (i64)", "protect": "(i32 i32) -> (i32)", "track_dirty": "(i32 i32) -> (i32)", "clear_dirty": "(i32) -> (i32)", "region_generation": "(i32) -> (i32)", "region_kind": "(i32) -> (i32)", "region_capacity": "(i32) -> (i64)", "region_used": "(i32) -> (i64)", "region_residency": "(i32) -> (i32)", "region_pinned": "(i32) -> (i32)", "region_allocator": "(i32) -> (i32)", "region_read_only": "(i32) -> (i32)", "next_dirty_page": "(i32 i32) -> (i64)", "region_pool": "(i32) -> (i32)", "region_base": "(i32) -> (i64)", "region_metric": "(i32 i32) -> (i64)", "region_last_access": "(i32) -> (i64)", "region_count": "() -> (i32)", "lru_candidate": "() -> (i32)", "handle_address": "(i64 i32) -> (i64)", "note_write": "(i64 i32) -> (i32)", "note_read": "(i64 i32) -> (i32)", "alloc": "(i32 i32) -> (i64)", "alloc_aligned": "(i32 i32 i32) -> (i64)", "dealloc": "(i64) -> (i32)", "load_u8": "(i64 i32) -> (i32)", "store_u8": "(i64 i32 i32) -> ()", "load_u16": "(i64 i32) -> (i32)", "store_u16": "(i64 i32 i32) -> ()", "load_u32": "(i64 i32) -> (i32)", "store_u32": "(i64 i32 i32) -> ()", "load_i64": "(i64 i32) -> (i64)", "store_i64": "(i64 i32 i64) -> ()", "load_f32": "(i64 i32) -> (f32)", "store_f32": "(i64 i32 f32) -> ()", "load_f64": "(i64 i32) -> (f64)", "store_f64": "(i64 i32 f64) -> ()", "try_load_u8": "(i64 i32 i32) -> (i32)", "try_store_u8": "(i64 i32 i32) -> (i32)", "try_load_u16": "(i64 i32 i32) -> (i32)", "try_store_u16": "(i64 i32 i32) -> (i32)", "try_load_u32": "(i64 i32 i32) -> (i32)", "try_store_u32": "(i64 i32 i32) -> (i32)", "try_load_i64": "(i64 i32 i32) -> (i32)", "try_store_i64": "(i64 i32 i64) -> (i32)", "try_load_f32": "(i64 i32 i32) -> (i32)", "try_store_f32": "(i64 i32 f32) -> (i32)", "try_load_f64": "(i64 i32 i32) -> (i32)", "try_store_f64": "(i64 i32 f64) -> (i32)", "load_u8_p{k}": "(i64 i32) -> (i32)", "store_u8_p{k}": "(i64 i32 i32) -> ()", "load_u16_p{k}": "(i64 i32) -> (i32)", "store_u16_p{k}": "(i64 i32 i32) -> ()", "load_u32_p{k}": "(i64 i32) -> (i32)", "store_u32_p{k}": "(i64 i32 i32) -> ()", "load_i64_p{k}": "(i64 i32) -> (i64)", "store_i64_p{k}": "(i64 i32 i64) -> ()", "load_f32_p{k}": "(i64 i32) -> (f32)", "store_f32_p{k}": "(i64 i32 f32) -> ()", "load_f64_p{k}": "(i64 i32) -> (f64)", "store_f64_p{k}": "(i64 i32 f64) -> ()", "read": "(i64 i32 i32) -> (i32)", "write": "(i64 i32 i32) -> (i32)", "copy": "(i64 i64 i32) -> (i32)", "copy_region": "(i32 i32 i32 i32 i32) -> (i32)", "read_gather": "(i64 i32 i32 i32 i32) -> (i32)", "sum_u8": "(i64 i32) -> (i64)", "count_byte": "(i64 i32 i32) -> (i64)", "find_byte": "(i64 i32 i32) -> (i64)", "popcount": "(i64 i32) -> (i64)", "min_max_u8": "(i64 i32) -> (i32)", "hash_fnv1a": "(i64 i32 i32) -> (i32)", "eq": "(i64 i64 i32) -> (i32)", "fill": "(i64 i32 i32) -> (i32)", "discard": "(i64 i32) -> (i32)", "byte_histogram": "(i64 i32 i32) -> (i32)", "begin_spill": "(i32) -> (i32)", "finish_spill": "(i32) -> (i32)", "cancel_spill": "(i32) -> (i32)", "restore_region": "(i32) -> (i32)", "layout_size": "(i32) -> (i32)", "save_layout": "(i32 i32) -> (i32)", "load_layout": "(i32 i32) -> (i32)", "renew_generation": "(i32) -> (i32)"}; // tvm.* function types, per-pool names with {k}
const GUEST_MEMORY_FUNCTIONS = new Set(["byte_histogram", "hash_fnv1a", "load_layout", "read", "read_gather", "save_layout", "try_load_f32", "try_load_f64", "try_load_i64", "try_load_u16", "try_load_u32", "try_load_u8", "write"]); // take guest pointers
const CHECKPOINT_ENDED = {"released": "checkpoint {id} was released", "superseded": "checkpoint {id} was superseded by the rollback to checkpoint {target}", "destroyed": "checkpoint {id} was released when region {region} was destroyed", "foreign": "checkpoint {id} is not a checkpoint of this {owner}", "ended": "checkpoint {id} is no longer live (released, superseded by a rollback, or a region destroyed)"};
const ENDED_KEPT = 4096; // why the latest checkpoints ended is kept for their errors
const LAYOUT = { BT_COUNT: 0, BT_CAP: 4, BT_ENTRIES: 16, BLOCK_SIZE: 16, BLK_OFFSET: 0, BLK_SIZE: 4, BLK_PREV: 8, BLK_LIVE: 12, NO_PREV: 4294967295, SLAB_COUNT: 0, SLAB_SLOTS: 4, SLAB_STACK: 8 }; // save_layout's side tables (rollback's live-block test, compaction's moves)
const UNSATISFIED_IMPORTS = "the module's imports are not all provided: {missing}; {how}"; // instantiate's refusal (host.import_refusals)
const IMPORT_ENTRY = "{module}.{name} ({kind})";
const IMPORT_ADVICE = {"tvm": "tvm.* imports mean a user module not linked with the runtime: link it first (`tvm-wasm link USER.wasm -o OUT.wasm --target guest`), or link it into a running guest module with TvmGuest.link", "tvm_host": "tvm_host.* imports mean `tvm-wasm link --target host` output, which only TvmHost runs (it links the unlinked module itself, with inline=True): link with --target guest", "wasi_snapshot_preview1": "pass a WASI preview1 implementation (a WASI shim's import object) as instantiate(source, { imports: { wasi_snapshot_preview1: ... } })", "other": "pass the others in instantiate(source, { imports: { module: { name: value } } })"}; // by the missing import's module, in this order
const RUNTIME_FUNCTION_PREFIX = "tvm."; // the runtime's functions in a linked module's name section
// --- end of generated code ---

// ---------------------------------------------------------------- enums
const HIDDEN_KEYS = new Set(["then", "toJSON", "constructor", "valueOf", "toString", "inspect", "nodeType", "$$typeof",
  "asymmetricMatch", "__proto__", "prototype", "length"]);

/** A frozen enum whose unknown members throw a `TypeError` (a misspelt name must not read as `undefined`). */
function makeEnum(name, members) {
  const target = Object.freeze({ ...members });
  return new Proxy(target, {
    get(object, key) {
      if (typeof key === "symbol" || key in object || HIDDEN_KEYS.has(key)) return object[key];
      throw new TypeError(`${name}.${String(key)} does not exist; ${name} has ${Object.keys(object).join(", ")}`);
    },
  });
}

export const RegionKind = makeEnum("RegionKind", Object.fromEntries(KIND_NAMES.map((name, value) => [name, value])));
/** FREELIST (the Python name) and BLOCKS are the compactable block allocator. */
export const Allocator = makeEnum("Allocator", ALLOCATORS);
export const Residency = makeEnum("Residency", RESIDENCIES);
/** The raw ABI's error codes (`last_error`, code results, `TvmError.code`). */
export const ErrorCode = makeEnum("ErrorCode", ERROR_CODES);

// ---------------------------------------------------------------- errors (tvm_wasm/core/errors.py)
function renderContext(context) {
  const parts = [];
  if (context.regionId !== undefined) parts.push(`region=${context.regionId}`);
  if (context.generation !== undefined) parts.push(`gen=${context.generation}`);
  if (context.offset !== undefined) parts.push(`offset=0x${context.offset.toString(16)}`);
  if (context.length !== undefined) parts.push(`len=${context.length}`);
  if (context.capacity !== undefined) parts.push(`capacity=${context.capacity}`);
  return parts.length ? ` [${parts.join(", ")}]` : "";
}

/**
 * Base of every tvm-wasm error; `code` is the raw-ABI error code. The context fields
 * (`regionId`, `generation`, `offset`, `length`, `capacity`) are set when known.
 */
export class TvmError extends Error {
  static code = ERROR_CODES.OTHER;

  constructor(message, context = {}) {
    super(message + renderContext(context));
    this.name = new.target.name;
    this.code = new.target.code;
    this.detail = message;
    for (const key of ["regionId", "generation", "offset", "length", "capacity"]) {
      if (context[key] !== undefined) this[key] = context[key];
    }
  }
}
/** The region id was never created or has been destroyed. */
export class RegionNotFound extends TvmError { static code = ERROR_CLASS_CODES.RegionNotFound; }
/** The handle's generation is not the region's current one. */
export class StaleHandle extends TvmError { static code = ERROR_CLASS_CODES.StaleHandle; }
/** An offset or length reaches outside the region (or allocation). */
export class OutOfBounds extends TvmError { static code = ERROR_CLASS_CODES.OutOfBounds; }
/** The region's bytes are not in memory (Cold): fault it in with `await cold.fault(id)`. */
export class NotResident extends TvmError { static code = ERROR_CLASS_CODES.NotResident; }
/** No room: the region, the pool, the id space or the budget is full. */
export class AllocationFailed extends TvmError { static code = ERROR_CLASS_CODES.AllocationFailed; }
/** The region is pinned, so it may not spill or compact. */
export class Pinned extends TvmError { static code = ERROR_CLASS_CODES.Pinned; }
/** A guest-memory range lies outside the guest's memory. */
export class GuestMemoryError extends TvmError { static code = ERROR_CLASS_CODES.GuestMemoryError; }
/** The region is read-only (`protect`): nothing may change its bytes or layout, and nothing changed. */
export class ReadOnly extends TvmError { static code = ERROR_CLASS_CODES.ReadOnly; }
/** The region's placement policy forbids the operation. */
export class PolicyViolation extends TvmError { static code = ERROR_CLASS_CODES.PolicyViolation; }
/** The region's allocator cannot do this (e.g. compact a Bump region). */
export class UnsupportedAllocator extends TvmError { static code = ERROR_CLASS_CODES.UnsupportedAllocator; }
/** The backing store failed, or returned bytes that failed verification. */
export class BackingStoreError extends TvmError { static code = ERROR_CLASS_CODES.BackingStoreError; }
/** The JavaScript engine lacks a WebAssembly feature the module needs (see `isSupported()`). */
export class UnsupportedEngine extends TvmError { static code = ERROR_CLASS_CODES.UnsupportedEngine; }
/** The module was built for another ABI than this file drives. */
export class AbiMismatch extends TvmError { static code = ERROR_CLASS_CODES.AbiMismatch; }
/** A checkpoint cannot be used: released, superseded by a rollback, another guest's, or over a destroyed region (the message says which). */
export class CheckpointError extends TvmError { static code = ERROR_CLASS_CODES.CheckpointError; }
/** A module may not be linked or instantiated as given (worded as `tvm-wasm link`, `TvmHost` and `GuestInstance` word it; an import nobody provides names each). */
export class LinkRefused extends TvmError { static code = ERROR_CLASS_CODES.LinkRefused; }

const ERRORS_BY_CODE = new Map(
  [RegionNotFound, StaleHandle, OutOfBounds, NotResident, AllocationFailed, Pinned, GuestMemoryError, ReadOnly]
    .map((c) => [c.code, c]),
);

/** The typed error a raw-ABI `code` stands for (code 9 has several causes: callers pick the class). */
export function errorForCode(code, message, context = {}) {
  const Class = ERRORS_BY_CODE.get(code) ?? TvmError;
  return new Class(message, context);
}

/** `template` with each `{name}` replaced by `values[name]` (the generated tables' Python-style templates;
 *  `{name:#x}` in hex, as Python's format writes it). */
function fillTemplate(template, values) {
  return template.replace(/\{(\w+)(:#x)?\}/g, (_, name, hex) => (hex ? `0x${values[name].toString(16)}` : String(values[name])));
}

/**
 * The message of a failed typed access, worded as every layer words it (TYPED_ACCESS_ERROR and
 * REGION_STATES, generated from the ABI table): ABI function `fn`, the handle passed, the offset
 * accessed, `width` bytes, and the region's `state` ("absent", "destroyed" or "live" at `generation`).
 */
function typedAccessMessage(fn, handle, offset, width, state, generation) {
  const name = fn >= 0 && fn < ABI_NAMES.length ? ABI_NAMES[fn] : "typed access";
  const words = fillTemplate(REGION_STATES[state], { region: handle.regionId, generation });
  return fillTemplate(TYPED_ACCESS_ERROR, {
    function: name, handle: `r${handle.regionId}@${handle.generation}+${handle.offset}`, width,
    offset: `0x${offset.toString(16)}`, state: words,
  });
}

// ---------------------------------------------------------------- argument checks
const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;

/** `value` as Python's `repr` shows it in the argument templates (ARGUMENT_ERRORS), cut at 40 characters. */
function shownValue(value) {
  let text;
  if (typeof value === "string") text = `'${value}'`;
  else if (typeof value === "boolean") text = value ? "True" : "False";
  else if (value === null || value === undefined) text = "None";
  else if (typeof value === "number" && !Number.isFinite(value)) text = Number.isNaN(value) ? "nan" : value > 0 ? "inf" : "-inf";
  else {
    try { text = String(value); } catch { text = Object.prototype.toString.call(value); }
  }
  return text.length <= 40 ? text : `${text.slice(0, 37)}...`;
}

/** The Python type name of a JavaScript value in the argument templates (a Number with a fraction is a `float`),
 *  so one mistake reads the same in both languages. */
function typeName(value) {
  if (value === null || value === undefined) return "NoneType";
  switch (typeof value) {
    case "string": return "str";
    case "boolean": return "bool";
    case "number": return Number.isInteger(value) ? "int" : "float";
    case "bigint": return "int";
    case "object": return Array.isArray(value) ? "list" : value.constructor?.name ?? "object";
    default: return typeof value;
  }
}

/** A malformed argument's error, worded by the model's `core.arguments` (ARGUMENT_ERRORS): `TypeError` where
 *  Python raises `TypeError`, `RangeError` where it raises `ValueError`. */
function argumentError(Class, key, values) {
  return new Class(fillTemplate(ARGUMENT_ERRORS[key], values));
}

function isInteger(value) {
  return typeof value === "bigint" || (typeof value === "number" && Number.isInteger(value));
}

function notAnInteger(value, name) {
  return argumentError(TypeError, "not_an_integer", { name, type: typeName(value), value: shownValue(value) });
}

/**
 * `value` (an integral Number or a BigInt) as a Number in `[min, max]`: `TypeError` for anything else (a
 * fraction included, as Python's float), `RangeError` outside the range (never truncated).
 */
function integer(value, name, min, max) {
  if (!isInteger(value)) throw notAnInteger(value, name);
  if (value < min || value > max) {
    throw argumentError(RangeError, "out_of_range", { name, minimum: min, maximum: max, value: String(value) });
  }
  return Number(value);
}

/** `align`: 0 (the module's default, 8) or a power of two in 1..2^31. */
function alignment(value, name = "align") {
  if (!isInteger(value)) throw notAnInteger(value, name);
  const number = Number(value);
  if (number === 0) return 0;
  if (number < 1 || number > 2 ** 31 || (number & (number - 1)) !== 0) {
    throw argumentError(RangeError, "not_a_power_of_two", { name, minimum: 1, maximum: 2 ** 31, value: String(value) });
  }
  return number;
}

const u32 = (value, name) => integer(value, name, 0, U32_MAX);
/** An unsigned ABI result as a Number: a u32 carried in an i32, or an i64 (a BigInt). */
const unsigned = (value) => (typeof value === "bigint" ? Number(value) : value >>> 0);
/** A region id: an integer (`TypeError` otherwise); one outside 1..65535 names no region, `RegionNotFound` as
 *  the model words it (REGION_STATES), never a `RangeError` or a wrapped id. */
function regionId(value) {
  if (!isInteger(value)) throw notAnInteger(value, "region_id");
  const id = Number(value);
  if (id < 1 || id > U16_MAX) throw new RegionNotFound(fillTemplate(REGION_STATES.absent, { region: id }), { regionId: id });
  return id;
}

function enumValue(enumObject, enumName, value, name) {
  if (typeof value !== "number" || !Object.values(enumObject).includes(value)) {
    const names = Object.entries(enumObject).map(([key, v]) => `${enumName}.${key} (${v})`).join(", ");
    throw new TypeError(`${name} must be one of ${names}; got ${String(value)}`);
  }
  return value;
}

/** A handle is a BigInt (region:16 | generation:16 | offset:32): `TypeError` worded by ARGUMENT_ERRORS otherwise. */
function checkHandle(handle, name = "handle") {
  if (typeof handle !== "bigint") {
    throw argumentError(TypeError, "not_a_handle", { name, type: typeName(handle), value: shownValue(handle) });
  }
  if (handle < -(1n << 63n) || handle >= 1n << 64n) throw new RangeError(`a handle is 64 bits, got ${handle}`);
  return BigInt.asIntN(64, handle);
}

/** The bytes of `data` (an ArrayBuffer, a typed array or a DataView): written by their bytes, never by element. */
function bytesOf(data, what) {
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && data instanceof SharedArrayBuffer)) {
    return new Uint8Array(data);
  }
  const kind = Array.isArray(data) ? "an Array (elements have no byte size)" : data === null ? "null" : typeof data;
  throw new TypeError(`${what} takes bytes (an ArrayBuffer, a typed array or a DataView), got ${kind}`);
}

// ---------------------------------------------------------------- handles
/** Pack (region id, generation, offset) into the ABI's i64; every field is range-checked. */
export function packHandle(region, generation, offset) {
  const id = integer(region, "region_id", 0, U16_MAX);
  const gen = integer(generation, "generation", 0, U16_MAX);
  const off = u32(offset, "offset");
  return BigInt.asIntN(64, (BigInt(id) << 48n) | (BigInt(gen) << 32n) | BigInt(off));
}

/** The three fields of a handle. */
export function unpackHandle(handle) {
  const bits = BigInt.asUintN(64, checkHandle(handle));
  return { regionId: Number(bits >> 48n), generation: Number((bits >> 32n) & 0xffffn), offset: Number(bits & 0xffffffffn) };
}

/** `handle` moved `bytes` further into its region (the offset stays a u32: `RangeError` otherwise). */
export function offsetHandle(handle, bytes) {
  const { regionId: id, generation, offset } = unpackHandle(handle);
  const delta = integer(bytes, "bytes", -U32_MAX, U32_MAX);
  return packHandle(id, generation, u32(offset + delta, "offset + bytes"));
}

// ---------------------------------------------------------------- typed views
const VIEW_CLASSES = {
  u8: Uint8Array, i8: Int8Array, u8c: Uint8ClampedArray, u16: Uint16Array, i16: Int16Array, u32: Uint32Array,
  i32: Int32Array, f32: Float32Array, f64: Float64Array, u64: BigUint64Array, i64: BigInt64Array,
  ...(typeof Float16Array !== "undefined" ? { f16: Float16Array } : {}), // eslint-disable-line no-undef
};
/** Element types of typed views by short name (`ViewType.f64 === "f64"`). */
export const ViewType = makeEnum("ViewType", Object.fromEntries(Object.keys(VIEW_CLASSES).map((name) => [name, name])));

function viewClass(type) {
  if (typeof type === "function" && Object.values(VIEW_CLASSES).includes(type)) return type;
  const found = typeof type === "string" ? VIEW_CLASSES[type] : undefined;
  if (!found) throw new TypeError(`view type must be one of ${Object.keys(VIEW_CLASSES).join(", ")} or its typed-array class, got ${String(type)}`);
  return found;
}

/**
 * A typed view of `count` elements at a handle that survives pool growth: `array` re-derives
 * the typed array whenever the pool's buffer changed (growth detaches it) or a region was
 * destroyed, compacted or spilled since (then the handle is checked again and a stale one
 * throws). `get(i)`/`set(i, v)` check the index; never `undefined`, never a dropped write.
 */
export class TypedView {
  constructor(guest, handle, Class, count) {
    this.guest = guest;
    this.handle = handle;
    this.type = Class;
    this.length = count;
    this.byteLength = count * Class.BYTES_PER_ELEMENT;
    this._array = null;
    this._memory = null;
    this._epoch = -1;
  }

  /** The current typed array (re-derived when needed). Do not keep it across a growth: keep the view. */
  get array() {
    const array = this._array;
    if (array !== null && this._epoch === this.guest._epoch && array.buffer === this._memory.buffer) return array;
    const { pool, address } = this.guest._locate(this.handle, this.byteLength, "view");
    this.guest._noteWrite(this.handle, this.byteLength, "view"); // a tracked region's pages turn dirty
    if (address % this.type.BYTES_PER_ELEMENT !== 0) {
      throw new RangeError(`a ${this.type.name} needs ${this.type.BYTES_PER_ELEMENT}-byte alignment; the handle's address ${address} is not aligned (allocate with align)`);
    }
    this._memory = this.guest.poolMemory(pool);
    this._array = new this.type(this._memory.buffer, address, this.length);
    this._epoch = this.guest._epoch;
    return this._array;
  }

  _index(index) {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new RangeError(`index ${index} is outside this view of ${this.length} elements`);
    }
    return index;
  }

  get(index) { return this.array[this._index(index)]; }
  set(index, value) { this.array[this._index(index)] = value; }
  /** Copy `source` (an array-like of elements) in at `offset` elements. */
  setAll(source, offset = 0) { this.array.set(source, offset); }
  /** A copy of the elements, independent of the region. */
  toArray() { return this.array.slice(); }
  [Symbol.iterator]() { return this.toArray()[Symbol.iterator](); }
}

// ---------------------------------------------------------------- engine support
const WASM_HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const PROBES = {
  // two memories
  multiMemory: [...WASM_HEADER, 0x05, 0x05, 0x02, 0x00, 0x01, 0x00, 0x01],
  // (func (result v128) v128.const i64x2 0 0)
  simd: [...WASM_HEADER, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03, 0x02, 0x01, 0x00, 0x0a, 0x16, 0x01, 0x14,
    0x00, 0xfd, 0x0c, ...new Array(16).fill(0), 0x0b],
  // (memory 1) (func memory.fill with i32 zeros)
  bulkMemory: [...WASM_HEADER, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x05, 0x03, 0x01, 0x00,
    0x01, 0x0a, 0x0d, 0x01, 0x0b, 0x00, 0x41, 0x00, 0x41, 0x00, 0x41, 0x00, 0xfc, 0x0b, 0x00, 0x0b],
};

function canCreateMemory(pages) {
  try {
    new WebAssembly.Memory({ initial: 0, maximum: pages }); // reserves address space only
    return true;
  } catch {
    return false;
  }
}

/**
 * What this engine can run: `{ok, multiMemory, simd, bulkMemory, memory4GiB, streaming, opfs, missing}`.
 * `ok` means a guest module can be compiled; `memory4GiB` that a pool may be declared up to
 * 4 GiB (else build with `--browser`/`--max-pages`); `opfs` that `ColdTier` can be used here.
 */
export function isSupported() {
  const features = {};
  for (const [name, bytes] of Object.entries(PROBES)) {
    features[name] = typeof WebAssembly === "object" && WebAssembly.validate(new Uint8Array(bytes));
  }
  features.memory4GiB = typeof WebAssembly === "object" && canCreateMemory(65536);
  features.streaming = typeof WebAssembly === "object" && typeof WebAssembly.compileStreaming === "function";
  features.opfs = typeof navigator === "object" && !!navigator.storage && typeof navigator.storage.getDirectory === "function"
    && (typeof isSecureContext === "undefined" || isSecureContext);
  const missing = ["multiMemory", "simd", "bulkMemory"].filter((name) => !features[name]);
  return { ok: missing.length === 0, ...features, missing };
}

function unsupported(cause) {
  const support = isSupported();
  if (support.ok) return null;
  const error = new UnsupportedEngine(`this engine cannot run a tvm-wasm guest module: it lacks ${support.missing.join(", ")}`
    + ` (multi-memory is on by default from ${MULTI_MEMORY_SINCE}; Node.js 20 and Safari lack it)`);
  error.cause = cause;
  return error;
}

// ---------------------------------------------------------------- loading
async function fetchIfNeeded(source) {
  if (typeof source === "string" || source instanceof URL) return fetch(source);
  return source;
}

function isResponse(source) {
  return typeof Response !== "undefined" && source instanceof Response;
}

/** Compile a URL/Response (streaming when served as application/wasm), bytes, or pass a Module through. */
export async function compile(source) {
  if (source instanceof WebAssembly.Module) return source;
  source = await fetchIfNeeded(source);
  try {
    if (isResponse(source)) {
      if (!source.ok) throw new TypeError(`fetching ${source.url} answered ${source.status}`);
      const type = source.headers.get("content-type") ?? "";
      if (typeof WebAssembly.compileStreaming === "function" && type.split(";")[0].trim() === "application/wasm") {
        return await WebAssembly.compileStreaming(source);
      }
      return await WebAssembly.compile(await source.arrayBuffer());
    }
    return await WebAssembly.compile(ArrayBuffer.isView(source) || source instanceof ArrayBuffer ? source : bytesOf(source, "compile"));
  } catch (error) {
    if (error instanceof WebAssembly.CompileError) throw unsupported(error) ?? error;
    throw error;
  }
}

function checkAbi(exports) {
  const version = exports.abi_version instanceof WebAssembly.Global ? exports.abi_version.value : undefined;
  const fingerprint = exports.abi_fingerprint instanceof WebAssembly.Global ? exports.abi_fingerprint.value >>> 0 : undefined;
  if (version !== ABI_VERSION || fingerprint !== ABI_FINGERPRINT) {
    const saw = version === undefined ? "no abi_version export (an older tvm-wasm built it)"
      : `ABI ${version} (fingerprint 0x${fingerprint.toString(16)})`;
    throw new AbiMismatch(`this tvm-guest.js drives ABI ${ABI_VERSION} (fingerprint 0x${ABI_FINGERPRINT.toString(16)}); `
      + `the module has ${saw}: use the tvm-guest.js written next to it by the same tvm-wasm`);
  }
}

/** What `imports` lacks of `module`'s imports: `LinkRefused` naming each (words of host.import_refusals), or null. */
function unsatisfiedImports(module, imports) {
  const missing = WebAssembly.Module.imports(module).filter(({ module: from, name }) => {
    const entries = imports[from];
    return entries === null || (typeof entries !== "object" && typeof entries !== "function") || entries[name] === undefined;
  });
  if (!missing.length) return null;
  const groups = new Set(missing.map((i) => (i.module in IMPORT_ADVICE ? i.module : "other")));
  const how = Object.keys(IMPORT_ADVICE).filter((group) => groups.has(group)).map((group) => IMPORT_ADVICE[group]);
  const entries = missing.map((i) => fillTemplate(IMPORT_ENTRY, { module: i.module, name: i.name, kind: i.kind }));
  return new LinkRefused(fillTemplate(UNSATISFIED_IMPORTS, { missing: entries.join(", "), how: how.join("; ") }));
}

/**
 * Compile (from a URL, Response, bytes or Module) and instantiate a guest module; with no
 * argument, the `guest.wasm` next to this file (the web package's layout). `options.imports`
 * is an import object for what a module linked with `tvm-wasm link --target guest` kept
 * importing (a WASI shim's functions as `wasi_snapshot_preview1`, the user's own imports);
 * any import it lacks is refused with `LinkRefused` naming each, before instantiating.
 */
export async function instantiate(source = new URL("./guest.wasm", import.meta.url), options = {}) {
  if (options === null || typeof options !== "object") throw new TypeError("instantiate options must be an object ({ imports })");
  for (const key of Object.keys(options)) {
    if (key !== "imports") throw new TypeError(`unknown instantiate option ${key} (imports)`);
  }
  const imports = options.imports ?? {};
  if (imports === null || typeof imports !== "object") throw new TypeError("instantiate's imports must be an import object");
  const module = await compile(source);
  const refused = unsatisfiedImports(module, imports);
  if (refused) throw refused;
  let instance;
  try {
    instance = await WebAssembly.instantiate(module, imports);
  } catch (error) {
    if (error instanceof RangeError) {
      throw new UnsupportedEngine(`the engine could not reserve the module's memories (${error.message}); `
        + "build with --browser or a smaller --max-pages", {});
    }
    if (error instanceof WebAssembly.LinkError) { // an import of the wrong kind or type
      const refusedType = new LinkRefused(`the module cannot be instantiated with the imports given: ${error.message}`);
      refusedType.cause = error;
      throw refusedType;
    }
    throw error;
  }
  checkAbi(instance.exports);
  return new TvmGuest(module, instance);
}

// ---------------------------------------------------------------- the user function a trap hit
/**
 * The wasm functions of an error's stack, innermost first, as named there from the module's name section
 * (V8: `at NAME (wasm://wasm/...:wasm-function[3]:0x..)`, SpiderMonkey: `NAME@...:wasm-function[3]:0x..`);
 * a frame of a function with no name is "".
 */
function wasmFrames(error) {
  const frames = [];
  for (const line of String(error?.stack ?? "").split("\n")) {
    if (!line.includes("wasm-function[")) continue;
    const v8 = /^\s*at (?:(.*?) \()?[^()]*wasm-function\[\d+\][^()]*\)?\s*$/.exec(line);
    const spidermonkey = /^(.*?)@.*wasm-function\[\d+\]/.exec(line);
    const name = v8 ? v8[1] ?? "" : spidermonkey ? spidermonkey[1] : "";
    frames.push(/^wasm-function\[\d+\]$/.test(name) ? "" : name);
  }
  return frames;
}

/**
 * The innermost user function of a trap in a module linked with the runtime (whose functions the linker
 * names `tvm.*`): the first wasm frame not named so, as `abi.trap_cause.user_function` reads wasmtime's
 * backtrace. Null when no frame is the runtime's (nothing tells them apart) or the function has no name.
 */
function userFunction(error) {
  const frames = wasmFrames(error);
  if (!frames.some((name) => name.startsWith(RUNTIME_FUNCTION_PREFIX))) return null;
  return frames.find((name) => !name.startsWith(RUNTIME_FUNCTION_PREFIX)) || null;
}

// ---------------------------------------------------------------- the binary's imports and memories
const VALUE_TYPES = { 0x7f: "i32", 0x7e: "i64", 0x7d: "f32", 0x7c: "f64", 0x7b: "v128", 0x70: "funcref", 0x6f: "externref" };
const IMPORT_KINDS = ["func", "table", "memory", "global", "tag"];

function readModuleShape(bytes) {
  // -> { imports: [{module, name, kind, signature, minimum, maximum, shared, memory64}], definedMemories }
  // from the type, import and memory sections; a function's signature is "(i64 i32) -> (i32)" (null when
  // its type is not a plain function type).
  const data = bytesOf(bytes, "link");
  let at = 8;
  const uleb = () => {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = data[at++];
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(byte & 0x80)) return result;
    }
  };
  const name = () => {
    const length = uleb();
    const text = new TextDecoder().decode(data.subarray(at, at + length));
    at += length;
    return text;
  };
  const limits = () => {
    const flags = data[at++];
    const minimum = uleb();
    const maximum = flags & 1 ? uleb() : undefined;
    return { minimum, maximum, shared: !!(flags & 2), memory64: !!(flags & 4) };
  };
  const types = [];
  const imports = [];
  let definedMemories = 0;
  while (at < data.length) {
    const section = data[at++];
    const size = uleb();
    const end = at + size;
    if (section === 1) {
      const count = uleb();
      for (let i = 0; i < count && at < end; i++) {
        if (data[at] !== 0x60) break; // not a plain function type (GC proposal): signatures unknown from here
        at++;
        const vector = () => Array.from({ length: uleb() }, () => VALUE_TYPES[data[at++]] ?? "?");
        const params = vector();
        const results = vector();
        types.push(`(${params.join(" ")}) -> (${results.join(" ")})`);
      }
    } else if (section === 2) {
      const count = uleb();
      for (let i = 0; i < count; i++) {
        const module = name();
        const field = name();
        const code = data[at++];
        const kind = IMPORT_KINDS[code];
        if (kind === "func") imports.push({ module, name: field, kind, signature: types[uleb()] ?? null });
        else if (kind === "table") { at++; limits(); imports.push({ module, name: field, kind }); }
        else if (kind === "memory") imports.push({ module, name: field, kind, ...limits() });
        else if (kind === "global") { at += 2; imports.push({ module, name: field, kind }); }
        else if (kind === "tag") { at++; uleb(); imports.push({ module, name: field, kind }); }
        else throw new LinkRefused(`unknown import kind ${code} in the user module`);
      }
    } else if (section === 5) {
      definedMemories = uleb();
    }
    at = end;
  }
  return { imports, definedMemories };
}

/** A compiled module's shape without its bytes: no signatures, and only exported memories are seen. */
function moduleShape(module) {
  const imports = WebAssembly.Module.imports(module).map((i) => ({ ...i, kind: i.kind === "function" ? "func" : i.kind,
    signature: null }));
  const exported = WebAssembly.Module.exports(module).some((e) => e.kind === "memory");
  return { imports, definedMemories: exported && !imports.some((i) => i.kind === "memory") ? 1 : 0 };
}

/** The ABI signature of `name` (a per-pool name like `load_u8_p3` finds its family's), or undefined. */
function abiSignature(name) {
  if (name in ABI_SIGNATURES) return ABI_SIGNATURES[name];
  const match = /^(.*)_p\d+$/.exec(name);
  return match ? ABI_SIGNATURES[`${match[1]}_p{k}`] : undefined;
}

// ---------------------------------------------------------------- checkpoints (tvm_wasm/core/checkpoints.py)
/**
 * A checkpoint of some regions (`TvmGuest.checkpoint`): pass it to `rollback` or `releaseCheckpoint`.
 * `pagesCopied`/`bytesCopied` say what this checkpoint stored (the incremental cost); `regionIds`
 * the regions it covers, in order. Its pages live in this page's memory (ArrayBuffers).
 */
export class Checkpoint {
  constructor(id, regionIds, pagesCopied, owner) {
    this.id = id;
    this.regionIds = Object.freeze([...regionIds]);
    this.pagesCopied = pagesCopied;
    this.bytesCopied = pagesCopied * DIRTY_PAGE;
    Object.defineProperty(this, "_owner", { value: owner, enumerable: false });
    Object.freeze(this);
  }
}

/**
 * `offset -> boolean`: whether a region offset lies inside a block live in the module's allocator
 * state `layout` (`save_layout`'s bytes: u32 used, then the side table) of an allocator of `kind`.
 * Bump: below the bump pointer; blocks: inside a block-table entry marked live; slab: inside a slot
 * whose is_free byte is 0 (class size = used / live slots). Python: `guest.checkpoints.layout_live_test`.
 */
function layoutLiveTest(kind, layout) {
  const view = new DataView(layout.buffer, layout.byteOffset, layout.byteLength);
  const used = view.getUint32(0, true);
  const table = 4;
  if (kind === ALLOCATORS.BUMP) return (offset) => offset >= 0 && offset < used;
  if (kind === ALLOCATORS.BLOCKS) {
    const count = view.getUint32(table + LAYOUT.BT_COUNT, true);
    const blocks = [];
    for (let i = 0; i < count; i++) {
      const entry = table + LAYOUT.BT_ENTRIES + i * LAYOUT.BLOCK_SIZE;
      if (view.getUint32(entry + LAYOUT.BLK_LIVE, true) !== 0) {
        blocks.push([view.getUint32(entry + LAYOUT.BLK_OFFSET, true), view.getUint32(entry + LAYOUT.BLK_SIZE, true)]);
      }
    }
    blocks.sort((a, b) => a[0] - b[0]);
    return (offset) => {
      let lo = 0, hi = blocks.length; // first block starting after offset
      while (lo < hi) { const mid = (lo + hi) >> 1; if (blocks[mid][0] <= offset) lo = mid + 1; else hi = mid; }
      return lo > 0 && offset < blocks[lo - 1][0] + blocks[lo - 1][1];
    };
  }
  if (kind === ALLOCATORS.SLAB) {
    const slots = view.getUint32(table + LAYOUT.SLAB_SLOTS, true);
    const free = view.getUint32(table + LAYOUT.SLAB_COUNT, true);
    if (slots === free) return () => false;
    const classSize = Math.floor(used / (slots - free));
    const flags = layout.slice(table + LAYOUT.SLAB_STACK + 4 * slots, table + LAYOUT.SLAB_STACK + 5 * slots);
    return (offset) => {
      const slot = Math.floor(offset / classSize);
      return offset >= 0 && slot < slots && flags[slot] === 0;
    };
  }
  throw new TypeError(`unknown allocator kind ${kind}`);
}

/**
 * Old offset -> new offset of every live block, from a FREELIST region's layout (`save_layout`'s bytes)
 * right after `compact_region`, which keeps each block's previous offset for `migrate`.
 * Python: `guest.checkpoints.compaction_moves`.
 */
function compactionMoves(layout) {
  const view = new DataView(layout.buffer, layout.byteOffset, layout.byteLength);
  const table = 4;
  const count = view.getUint32(table + LAYOUT.BT_COUNT, true);
  const moves = new Map();
  for (let i = 0; i < count; i++) {
    const entry = table + LAYOUT.BT_ENTRIES + i * LAYOUT.BLOCK_SIZE;
    const previous = view.getUint32(entry + LAYOUT.BLK_PREV, true);
    if (view.getUint32(entry + LAYOUT.BLK_LIVE, true) !== 0 && previous !== LAYOUT.NO_PREV) {
      moves.set(previous, view.getUint32(entry + LAYOUT.BLK_OFFSET, true));
    }
  }
  return new Map([...moves].sort((a, b) => a[0] - b[0]));
}

/**
 * What `compactRegion` moved, as Python's `HandleRemap`: the region, its generation before and after,
 * and `mapping` (old offset -> new offset of each block live at the compaction).
 */
export class HandleRemap {
  constructor(regionId, oldGeneration, newGeneration, mapping) {
    this.regionId = regionId;
    this.oldGeneration = oldGeneration;
    this.newGeneration = newGeneration;
    this.mapping = mapping;
    Object.freeze(this);
  }

  /** The handle's new form, or `null` if it is not a handle of a live block of this compaction. */
  migrate(handle) {
    const { regionId: id, generation, offset } = unpackHandle(handle);
    if (id !== this.regionId || generation !== this.oldGeneration || !this.mapping.has(offset)) return null;
    return packHandle(id, this.newGeneration, this.mapping.get(offset));
  }
}

/**
 * A region a rollback moved to a new generation: handles taken at the checkpoint to blocks live at
 * the checkpoint keep their offsets (the layout is the checkpoint's) under `newGeneration`; every
 * other handle is stale, and `migrate` refuses it (a block allocated after the checkpoint never
 * comes back to alias a later allocation).
 */
export class RollbackRemap {
  #holds;

  constructor(regionId, oldGeneration, newGeneration, holds) {
    this.regionId = regionId;
    this.oldGeneration = oldGeneration;
    this.newGeneration = newGeneration;
    this.#holds = holds;
    Object.freeze(this);
  }

  /**
   * The handle's new form, or `null` if it was not taken from this region at the checkpoint or its
   * offset lies in no block live in the restored layout.
   */
  migrate(handle) {
    const { regionId: id, generation, offset } = unpackHandle(handle);
    if (id !== this.regionId || generation !== this.oldGeneration) return null;
    if (!this.#holds(offset)) return null;
    return packHandle(id, this.newGeneration, offset);
  }
}

const NO_PAGES = new Uint32Array(0);
const pageCount = (capacity) => Math.ceil(capacity / DIRTY_PAGE);
const allPages = (capacity) => Uint32Array.from({ length: pageCount(capacity) }, (_, i) => i);

/** The sorted union of sorted page lists (no repeats). */
function unionPages(...lists) {
  const present = lists.filter((list) => list.length);
  if (present.length === 0) return NO_PAGES;
  if (present.length === 1) return Uint32Array.from(new Set(present[0]));
  const merged = new Uint32Array(present.reduce((n, list) => n + list.length, 0));
  let at = 0;
  for (const list of present) { merged.set(list, at); at += list.length; }
  merged.sort();
  let kept = 0;
  for (let i = 0; i < merged.length; i++) if (i === 0 || merged[i] !== merged[i - 1]) merged[kept++] = merged[i];
  return merged.slice(0, kept);
}

/** Row of `page` in the sorted `pages`, or -1. */
function rowOf(pages, page) {
  let low = 0;
  let high = pages.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (pages[mid] < page) low = mid + 1; else high = mid;
  }
  return low < pages.length && pages[low] === page ? low : -1;
}

/** `pages` of `bytes` copied into one new buffer, DIRTY_PAGE bytes a row (a partial last page zero-padded). */
function gatherPages(bytes, pages) {
  const data = new Uint8Array(pages.length * DIRTY_PAGE);
  if (pages.length === pageCount(bytes.length) && bytes.length % DIRTY_PAGE === 0) {
    data.set(bytes); // every page: one straight copy
    return data;
  }
  for (let row = 0; row < pages.length; row++) {
    const start = pages[row] * DIRTY_PAGE;
    data.set(bytes.subarray(start, Math.min(start + DIRTY_PAGE, bytes.length)), row * DIRTY_PAGE);
  }
  return data;
}

/**
 * The checkpoints of one `TvmGuest`, with the Python model's rules (`Checkpointer`): per region a
 * chain of entries, the first full and each later one holding the pages changed since the one
 * before it (from the module's dirty-page map), the allocator state (`save_layout`) and generation.
 */
class Checkpoints {
  constructor(guest) {
    this.g = guest;
    this.chains = new Map(); // region id -> {id, capacity, entries: [{checkpointId, pages, data, full, generation, layout}], pending}
    this.live = new Map(); // checkpoint id -> Checkpoint
    this.ended = new Map(); // checkpoint id -> why it is no longer live (CHECKPOINT_ENDED), the latest ENDED_KEPT
    this.nextId = 1;
    this.foreignClears = false; // a linked module imports tvm.clear_dirty: dirty marks may be cleared behind our back
  }

  // -- what the module tells us
  _region(id) {
    if (typeof id !== "number" || !Number.isInteger(id)) {
      throw new TypeError(`region ids must be integers, not ${id === null ? "null" : typeof id}`);
    }
    if (!(id > 0 && id <= U16_MAX)) throw new RegionNotFound("no such region", { regionId: id });
    const info = this.g.regionInfo(id); // RegionNotFound when destroyed
    const chain = this.chains.get(id);
    if (chain && chain.capacity !== info.capacity) this.forget(id); // another region under a reused id
    return info;
  }

  _tracksDirty(id) {
    const found = this.g.exports.next_dirty_page(id, -1);
    if (found === -2n) { this.g.lastError(); return false; } // 9: untracked; read here, leave nothing behind
    return true;
  }

  _dirtyPages(info) {
    return this.foreignClears ? allPages(info.capacity) : Uint32Array.from(this.g.dirtyPages(info.id));
  }

  _clearDirty(id) {
    const code = this.g.exports.clear_dirty(id);
    if (code !== 0) throw this.g._fail(code, "clear_dirty refused", { regionId: id });
  }

  _startTracking(id) { this.g._set("track_dirty", "track_dirty", id, true); }

  /** The region's bytes as they are, to read a checkpoint from (no write: straight from the pool). */
  _source(info) {
    if (info.residency === Residency.COLD) {
      throw new NotResident(`the region is Cold: its bytes are with the Cold tier; await its ColdTier.fault(${info.id}) first`,
        { regionId: info.id });
    }
    return new Uint8Array(this.g.poolMemory(info.pool).buffer, info.base, info.capacity);
  }

  /** Run `fn(ptr)` with `length` bytes of guest memory staged at 0 (their bytes are put back afterwards). */
  _staged(length, fn) {
    const memory = this.g.memory;
    if (memory.buffer.byteLength < length) memory.grow(Math.ceil((length - memory.buffer.byteLength) / 65536));
    const kept = new Uint8Array(memory.buffer, 0, length).slice();
    try {
      return fn(new Uint8Array(memory.buffer, 0, length));
    } finally {
      new Uint8Array(memory.buffer, 0, length).set(kept);
    }
  }

  _layout(id) {
    const x = this.g.exports;
    const length = x.layout_size(id);
    if (length === -1) throw this.g._fail(x.last_error(), "layout_size failed", { regionId: id });
    return this._staged(length, (bytes) => {
      const code = x.save_layout(id, 0);
      if (code !== 0) throw this.g._fail(code, "save_layout failed", { regionId: id });
      return bytes.slice();
    });
  }

  _restoreLayout(id, layout) {
    this._staged(layout.length, (bytes) => {
      bytes.set(layout);
      const code = this.g.exports.load_layout(id, 0);
      if (code !== 0) throw this.g._fail(code, "load_layout failed", { regionId: id });
    });
  }

  // -- checkpoint
  checkpoint(regionIds) {
    if (typeof regionIds === "number" || typeof regionIds === "string" || regionIds === null
        || typeof regionIds !== "object" || typeof regionIds[Symbol.iterator] !== "function") {
      throw new TypeError("regionIds must be an array of region ids, e.g. [3] for one region");
    }
    const ids = [...regionIds];
    if (ids.length === 0) throw new RangeError("a checkpoint needs at least one region id");
    if (new Set(ids).size !== ids.length) throw new RangeError(`region ids repeat: ${ids.join(", ")}`);
    const infos = ids.map((id) => this._region(id));
    const plans = infos.map((info) => {
      this._source(info); // NotResident before anything is copied
      const [pages, full] = this._pagesToCopy(info);
      return { info, pages, full, data: null, layout: this._layout(info.id) };
    });
    for (const plan of plans) plan.data = gatherPages(this._source(plan.info), plan.pages);
    const checkpointId = this.nextId++;
    let copied = 0;
    for (const { info, pages, full, data, layout } of plans) {
      let chain = this.chains.get(info.id);
      if (!chain) this.chains.set(info.id, chain = { id: info.id, capacity: info.capacity, entries: [], pending: null });
      chain.entries.push({ checkpointId, pages, data, full, generation: info.generation, layout });
      chain.pending = NO_PAGES;
      if (this._tracksDirty(info.id)) this._clearDirty(info.id); else this._startTracking(info.id);
      copied += pages.length;
    }
    const checkpoint = new Checkpoint(checkpointId, ids, copied, this);
    this.live.set(checkpointId, checkpoint);
    return checkpoint;
  }

  _pagesToCopy(info) {
    const chain = this.chains.get(info.id);
    if (!chain || !chain.entries.length || chain.pending === null || !this._tracksDirty(info.id)) {
      return [allPages(info.capacity), true];
    }
    const pages = unionPages(this._dirtyPages(info), chain.pending);
    return [pages, pages.length === pageCount(info.capacity)];
  }

  // -- rollback
  rollback(checkpoint) {
    this._checkLive(checkpoint);
    const plans = [];
    for (const id of checkpoint.regionIds) {
      const chain = this.chains.get(id);
      let info = null;
      try { info = this.g.regionInfo(id); } catch (error) { if (!(error instanceof RegionNotFound)) throw error; }
      if (!chain || !info || info.capacity !== chain.capacity) {
        throw new CheckpointError("the region was destroyed after the checkpoint", { regionId: id });
      }
      const index = chain.entries.findIndex((e) => e.checkpointId === checkpoint.id);
      const entry = chain.entries[index];
      const restore = this._pagesToRestore(info, chain, index);
      const layoutChanged = !sameBytes(this._layout(id), entry.layout);
      const newLayout = layoutChanged || info.generation !== entry.generation;
      if (this.g.isReadOnly(id) && (restore.length || newLayout)) {
        throw new ReadOnly("rollback would change a read-only region", { regionId: id, generation: info.generation });
      }
      if (newLayout && info.generation >= U16_MAX) {
        throw new AllocationFailed(`rollback needs a new generation (the layout changed since the checkpoint) and the region is at ${U16_MAX}, the last one`,
          { regionId: id, generation: info.generation });
      }
      plans.push({ info, chain, index, restore, newLayout, layoutChanged });
    }
    const images = plans.map(({ chain, index, restore }) => this._image(chain, index, restore));
    for (const { info } of plans) this._source(info); // every region resident before anything changes
    const remaps = new Map();
    plans.forEach(({ info, chain, index, restore, newLayout, layoutChanged }, k) => {
      const entry = chain.entries[index];
      const id = info.id;
      // Written through handle_address: the module counts the bytes as written (zeroed when freed); the
      // dirty pages are set below.
      const bytes = this.g._bytesAt(packHandle(id, this.g.regionInfo(id).generation, 0), info.capacity, "rollback");
      for (const { page, data, row } of images[k]) {
        const start = page * DIRTY_PAGE;
        const length = Math.min(DIRTY_PAGE, bytes.length - start);
        bytes.set(data.subarray(row * DIRTY_PAGE, row * DIRTY_PAGE + length), start);
      }
      if (layoutChanged) this._restoreLayout(id, entry.layout);
      if (newLayout) {
        const code = this.g.exports.renew_generation(id);
        if (code !== 0) throw this.g._fail(code, "renew_generation failed", { regionId: id });
        const generation = this.g.regionInfo(id).generation;
        const holds = layoutLiveTest(this.g.regionInfo(id).allocator, entry.layout);
        remaps.set(id, new RollbackRemap(id, entry.generation, generation, holds));
        entry.generation = generation;
      }
      if (this._tracksDirty(id)) this._clearDirty(id); else this._startTracking(id);
      chain.pending = NO_PAGES;
    });
    this.g._epoch++;
    const superseded = new Set();
    for (const { chain, index } of plans) {
      for (const entry of chain.entries.slice(index + 1)) superseded.add(entry.checkpointId);
      chain.entries.length = index + 1;
    }
    for (const checkpointId of [...superseded].sort((a, b) => a - b)) {
      const gone = this.live.get(checkpointId);
      this.live.delete(checkpointId);
      if (gone) this._retire(gone);
      this._end(checkpointId, fillTemplate(CHECKPOINT_ENDED.superseded, { id: checkpointId, target: checkpoint.id }));
    }
    return remaps;
  }

  _pagesToRestore(info, chain, index) {
    const later = chain.entries.slice(index + 1);
    if (chain.pending === null || !this._tracksDirty(info.id) || later.some((e) => e.full)) return allPages(info.capacity);
    return unionPages(this._dirtyPages(info), chain.pending, ...later.map((e) => e.pages));
  }

  /** Where each restored page's bytes at entry `index` are: [{page, data, row}], newest entry first. */
  _image(chain, index, restore) {
    const pieces = [];
    for (const page of restore) {
      let found = null;
      for (let i = index; i >= 0 && !found; i--) {
        const entry = chain.entries[i];
        const row = rowOf(entry.pages, page);
        if (row >= 0) found = { page, data: entry.data, row };
      }
      if (!found) throw new CheckpointError(`page ${page} is in no stored checkpoint`, { regionId: chain.id });
      pieces.push(found);
    }
    return pieces;
  }

  // -- release
  release(checkpoint) {
    this._checkLive(checkpoint); // released twice, superseded, another guest's: CheckpointError, nothing changes
    this.live.delete(checkpoint.id);
    this._retire(checkpoint);
    this._end(checkpoint.id, fillTemplate(CHECKPOINT_ENDED.released, { id: checkpoint.id }));
  }

  _end(checkpointId, why) {
    this.ended.set(checkpointId, why);
    if (this.ended.size > ENDED_KEPT) this.ended.delete(this.ended.keys().next().value);
  }

  _retire(checkpoint) {
    for (const id of checkpoint.regionIds) this._dropEntry(id, checkpoint.id);
  }

  _dropEntry(id, checkpointId) {
    const chain = this.chains.get(id);
    if (!chain) return;
    const index = chain.entries.findIndex((e) => e.checkpointId === checkpointId);
    if (index < 0) return;
    const entry = chain.entries[index];
    if (index + 1 < chain.entries.length) {
      this._fold(entry, chain.entries[index + 1], chain);
    } else if (index === 0) {
      this.chains.delete(id); // no checkpoint left: the next one copies every page
    } else {
      chain.pending = entry.full || chain.pending === null ? null : unionPages(chain.pending, entry.pages);
    }
    chain.entries.splice(index, 1);
  }

  /** `newer` holds the pages changed since `older`: give it `older`'s other pages too. */
  _fold(older, newer, chain) {
    if (newer.full) return;
    const pages = unionPages(older.pages, newer.pages);
    const data = new Uint8Array(pages.length * DIRTY_PAGE);
    for (const entry of [older, newer]) { // newer last: its bytes win
      for (let row = 0; row < entry.pages.length; row++) {
        data.set(entry.data.subarray(row * DIRTY_PAGE, (row + 1) * DIRTY_PAGE), rowOf(pages, entry.pages[row]) * DIRTY_PAGE);
      }
    }
    newer.pages = pages;
    newer.data = data;
    newer.full = older.full || pages.length === pageCount(chain.capacity);
  }

  // -- what the guest tells us
  /** Region `id` was destroyed: its checkpoints can no longer be rolled back (they are released). */
  forget(id) {
    const chain = this.chains.get(id);
    if (!chain) return;
    for (const entry of [...chain.entries]) {
      const live = this.live.get(entry.checkpointId);
      if (live) {
        this.live.delete(entry.checkpointId);
        this._retire(live);
        this._end(live.id, fillTemplate(CHECKPOINT_ENDED.destroyed, { id: live.id, region: id }));
      }
    }
    this.chains.delete(id);
  }

  /** The dirty pages of `id` no longer say everything that changed: its next checkpoint copies all. */
  lostTrack(id) {
    const chain = this.chains.get(id);
    if (chain) chain.pending = null;
  }

  _checkLive(checkpoint) {
    if (!(checkpoint instanceof Checkpoint)) {
      throw new TypeError(`expected a Checkpoint, not ${checkpoint === null ? "null" : typeof checkpoint}`);
    }
    if (checkpoint._owner !== this) {
      throw new CheckpointError(fillTemplate(CHECKPOINT_ENDED.foreign, { id: checkpoint.id, owner: "TvmGuest" }));
    }
    if (!this.live.has(checkpoint.id)) {
      throw new CheckpointError(this.ended.get(checkpoint.id) ?? fillTemplate(CHECKPOINT_ENDED.ended, { id: checkpoint.id }));
    }
  }

  /** The checkpoints that can still be rolled back to, oldest first. */
  liveCheckpoints() { return [...this.live.keys()].sort((a, b) => a - b).map((id) => this.live.get(id)); }
}

function sameBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------- the guest
export class TvmGuest {
  constructor(module, instance) {
    this.module = module;
    this.instance = instance;
    this.exports = instance.exports;
    this.pools = Object.keys(this.exports).filter((name) => /^mem\d+$/.test(name)).length;
    this._poolBytes = Array.from({ length: this.pools }, (_, pool) => this.poolMemory(pool).buffer.byteLength);
    this._growListeners = new Set();
    this._epoch = 0; // bumped whenever a handle may have gone stale or bytes moved
    this._checkpoints = new Checkpoints(this);
    this._slabClasses = new Map(); // Slab regions this guest created: their class size (for refusals)
  }

  /** The default memory: spliced user code's plain loads, and `tvm.memory` / `env.memory` of linked modules. */
  get memory() { return this.exports.memory; }

  /** The WebAssembly.Memory of pool `pool`. */
  poolMemory(pool) {
    integer(pool, "pool", 0, this.pools - 1);
    return this.exports[`mem${pool}`];
  }

  // ---------------------------------------------------------------- growth notification
  /**
   * Call `listener({pool, oldBytes, newBytes})` after a pool grew (its old ArrayBuffer, and every
   * plain typed array over it, is detached). Returns a function that removes the listener.
   */
  onGrow(listener) {
    if (typeof listener !== "function") throw new TypeError("onGrow takes a function");
    this._growListeners.add(listener);
    return () => this._growListeners.delete(listener);
  }

  /** Compare each pool's size with the last one seen and notify listeners; returns the pools that grew. */
  checkGrowth() {
    const grown = [];
    for (let pool = 0; pool < this.pools; pool++) {
      const now = this.poolMemory(pool).buffer.byteLength;
      if (now !== this._poolBytes[pool]) {
        grown.push({ pool, oldBytes: this._poolBytes[pool], newBytes: now });
        this._poolBytes[pool] = now;
      }
    }
    for (const event of grown) for (const listener of [...this._growListeners]) listener(event);
    return grown;
  }

  // ---------------------------------------------------------------- errors
  lastError() { return this.exports.last_error(); }

  /** The typed error of a failed call (`code` from the export or `last_error`; `classify()` names a code-9 cause). */
  _fail(code, message, context, classify) {
    this.lastError(); // reported here: leave nothing behind
    const specific = code === 9 && classify ? classify() : null; // code 9 has several causes
    if (specific) return specific;
    if (code === RegionNotFound.code && context.regionId !== undefined && context.generation === undefined) {
      return this._regionFault(context.regionId);
    }
    return new (ERRORS_BY_CODE.get(code) ?? PolicyViolation)(message, context);
  }

  /**
   * Code 1 for a region named by id, worded as every layer words it (REGION_STATES, generated from the model's
   * table): destroyed or never created is asked of the module's own handle check (2 for a destroyed region's
   * handle, 1 for an id never created), and its code cleared.
   */
  _regionFault(id) {
    let destroyed = false;
    if (id > 0 && id <= U16_MAX) {
      destroyed = this.exports.handle_address(packHandle(id, 1, 0), 0) === -BigInt(StaleHandle.code);
      this.lastError();
    }
    return new RegionNotFound(fillTemplate(destroyed ? REGION_STATES.destroyed : REGION_STATES.absent, { region: id }),
      { regionId: id });
  }

  /**
   * The typed error of a trap, or `error` unchanged. Only a trap raised while `trap_code` was
   * clear (see `guard`) is attributed to a typed access; the cause is consumed here.
   */
  trapError(error, seqBefore = undefined) {
    const x = this.exports;
    const global = x.trap_code;
    const code = global ? global.value : 0;
    if (!(error instanceof WebAssembly.RuntimeError) || !code) return error;
    // With `trap_seq` (newer modules) a trap is a typed access only if the count moved.
    if (x.trap_seq instanceof WebAssembly.Global && seqBefore !== undefined && x.trap_seq.value === seqBefore) return error;
    global.value = 0;
    const handle = unpackHandle(x.trap_handle.value);
    const read = (name, fallback) => (x[name] instanceof WebAssembly.Global ? Number(x[name].value) : fallback);
    const offset = read("trap_offset", handle.offset);
    const width = read("trap_length", undefined);
    const capacity = read("trap_capacity", 0);
    const generation = read("trap_generation", 0);
    const context = { regionId: handle.regionId, generation: handle.generation, offset };
    if (width !== undefined) context.length = width;
    if (capacity) context.capacity = capacity;
    const state = capacity ? "live" : generation ? "destroyed" : "absent";
    let message = typedAccessMessage(read("trap_function", -1), handle, offset, width ?? 0, state, generation);
    const where = userFunction(error);
    if (where) message += ` (in ${where})`; // as abi.trap_cause.access_error words it
    const typed = errorForCode(code, message, context);
    typed.cause = error;
    return typed;
  }

  /**
   * Run `fn()`, turning a trap of a typed access into its TvmError. The module's trap cause is
   * cleared first, so a cause left behind by an earlier trap outside `guard` is never reported
   * for an unrelated one (a division by zero stays a `RuntimeError`).
   */
  guard(fn) {
    const global = this.exports.trap_code;
    if (global) global.value = 0;
    const seq = this.exports.trap_seq instanceof WebAssembly.Global ? this.exports.trap_seq.value : undefined;
    try {
      return fn();
    } catch (error) {
      throw this.trapError(error, seq);
    }
  }

  // ---------------------------------------------------------------- control plane
  /**
   * Create a zeroed region of `capacity` bytes (1..2^32-1) of `kind` (a `RegionKind`).
   * Options: `allocator` (`Allocator.BUMP` default, `FREELIST` compactable blocks, `SLAB`),
   * `classSize` (Slab, 1..2^32-1), `maxBlocks` (FREELIST block-table entries, 0 = 4096).
   */
  createRegion(kind, capacity, options = {}) {
    enumValue(RegionKind, "RegionKind", kind, "kind");
    const cap = integer(capacity, "capacity", 1, U32_MAX);
    if (options === null || typeof options !== "object") throw new TypeError("createRegion options must be an object");
    for (const key of Object.keys(options)) {
      if (!["allocator", "classSize", "maxBlocks"].includes(key)) {
        throw new TypeError(`unknown createRegion option ${key} (allocator, classSize, maxBlocks)`);
      }
    }
    const allocator = "allocator" in options ? enumValue(Allocator, "Allocator", options.allocator, "allocator") : Allocator.BUMP;
    let param = 0;
    if (allocator === Allocator.SLAB) {
      if (options.classSize === undefined) throw new TypeError("a SLAB region needs classSize");
      param = integer(options.classSize, "classSize", 1, U32_MAX);
    } else if (options.classSize !== undefined) {
      throw new TypeError("classSize applies to SLAB regions only");
    }
    if (allocator === Allocator.FREELIST) {
      param = options.maxBlocks === undefined ? 0 : integer(options.maxBlocks, "maxBlocks", 0, U32_MAX);
    } else if (options.maxBlocks !== undefined) {
      throw new TypeError("maxBlocks applies to FREELIST regions only");
    }
    const id = this.exports.create_region_with(kind, cap, allocator, param);
    this.checkGrowth();
    if (id === 0) throw this._fail(this.exports.last_error(), "createRegion failed", { capacity: cap });
    if (allocator === Allocator.SLAB) this._slabClasses.set(id, param);
    return id;
  }

  _op(name, exportName, id, classify) {
    const region = regionId(id);
    const code = this.exports[exportName](region);
    if (code !== 0) throw this._fail(code, `${name} failed`, { regionId: region }, classify && (() => classify(region)));
  }

  destroyRegion(id) {
    const region = regionId(id);
    const cold = this._regionTier(region) === Residency.COLD;
    this._op("destroyRegion", "destroy_region", region);
    this._slabClasses.delete(region);
    this._epoch++;
    this._checkpoints.forget(region);
    if (cold && this.coldTier) this.coldTier._forget(region);
  }

  /** Pin a region (only pinnable kinds: HOT_HEAP, DEVICE_STATE, CODE_CACHE). */
  pin(id) {
    this._op("pin", "pin", id, (region) => new PolicyViolation(
      `pin refused: ${KIND_NAMES[this.exports.region_kind(region)]} regions are not pinnable (placement policy)`,
      { regionId: region }));
  }

  unpin(id) { this._op("unpin", "unpin", id); }

  // ---------------------------------------------------------------- read-only regions and dirty pages
  /** Make a region read-only (or writable again): stores, write, fill, copies into it, alloc and compaction
   * then throw `ReadOnly` and change nothing. Zero-copy views are plain typed arrays: they are not guarded. */
  protect(id, readOnly = true) { this._set("protect", "protect", id, readOnly); }

  _set(name, exportName, id, on) {
    const region = regionId(id);
    const code = this.exports[exportName](region, on ? 1 : 0);
    if (code !== 0) throw this._fail(code, `${name} failed`, { regionId: region });
  }

  isReadOnly(id) {
    const region = regionId(id);
    const flag = this.exports.region_read_only(region);
    if (flag < 0) throw this._fail(this.exports.last_error(), "isReadOnly failed", { regionId: region });
    return flag === 1;
  }

  /** Start (all pages clean) or stop dirty-page tracking (4096-byte pages, marked in wasm by every store path). */
  trackDirty(id, enabled = true) {
    this._set("trackDirty", "track_dirty", id, enabled);
    if (!enabled) this._checkpoints.lostTrack(regionId(id));
  }

  /** Ascending indices of the pages changed since tracking began or the last `clearDirty`. */
  dirtyPages(id) {
    const region = regionId(id);
    const pages = [];
    for (let page = 0; ;) {
      const found = this.exports.next_dirty_page(region, page);
      if (found === -2n) {
        throw this._fail(this.exports.last_error(), "dirtyPages failed", { regionId: region },
          () => new PolicyViolation("dirtyPages: dirty tracking is off for this region (trackDirty first)", { regionId: region }));
      }
      if (found === -1n) return pages;
      pages.push(Number(found));
      page = Number(found) + 1;
    }
  }

  clearDirty(id) {
    this._op("clearDirty", "clear_dirty", id, (region) => new PolicyViolation(
      "clearDirty: dirty tracking is off for this region (trackDirty first)", { regionId: region }));
    this._checkpoints.lostTrack(regionId(id)); // the bits checkpoints rely on are gone: the next one copies all
  }

  // ---------------------------------------------------------------- checkpoints (pages kept here, in ArrayBuffers)
  /**
   * Record the regions' pages changed since their previous checkpoint (the first copies all and turns
   * dirty tracking on), allocator state and generation: the Python model's rules. `NotResident` for a
   * Cold region (fault it in first), `RegionNotFound`, `RangeError` for no ids or repeated ids.
   */
  checkpoint(regionIds) { return this._checkpoints.checkpoint(regionIds); }

  /**
   * Put the checkpoint's regions back exactly as they were (bytes and allocator state), copying only
   * the pages changed since. A region whose layout changed moves to a new generation (every older
   * handle stale); the returned Map (region id -> `RollbackRemap`) migrates handles taken at the
   * checkpoint. Later checkpoints of these regions are superseded (`CheckpointError` when used); this
   * one stays valid. All or nothing: `ReadOnly`, `NotResident`, `AllocationFailed` change nothing.
   */
  rollback(checkpoint) { return this._checkpoints.rollback(checkpoint); }

  /**
   * Free a checkpoint's pages (folded into the next checkpoint of each region). A checkpoint that is
   * not live (released already, superseded by a rollback, released with a destroyed region) or is
   * another guest's: `CheckpointError` saying why, nothing changes (the rule of every layer).
   */
  releaseCheckpoint(checkpoint) { this._checkpoints.release(checkpoint); }

  /** The checkpoints that can still be rolled back to, oldest first. */
  checkpoints() { return this._checkpoints.liveCheckpoints(); }

  /** Hot -> Warm (an LRU hint). Colder is `ColdTier.spill`. */
  demoteRegion(id) {
    this._op("demoteRegion", "demote_region", id, (region) => {
      const kind = KIND_NAMES[this.exports.region_kind(region)];
      if (!KIND_POLICY[this.exports.region_kind(region)].spillable) {
        return new PolicyViolation(`demote refused: ${kind} regions may not leave Hot (placement policy)`, { regionId: region });
      }
      return new PolicyViolation(`demote refused: the region is already ${this._tierName(region)}; `
        + "Warm -> Cold is ColdTier.spill", { regionId: region });
    });
  }

  /** Warm -> Hot. A Cold region must be faulted in first (`await cold.fault(id)`): NotResident. */
  promoteRegion(id) { this._op("promoteRegion", "promote_region", id); }

  /**
   * Pack a FREELIST region's live blocks from offset 0 and bump its generation; returns the `HandleRemap`
   * (Python's answer). Old handles fail (StaleHandle) until migrated: `remap.migrate(h)` or `migrate(h)`.
   */
  compactRegion(id) {
    const region = regionId(id);
    const before = this.exports.region_generation(region);
    if (before === -1) this.exports.last_error(); // compact_region reports this failure itself, below
    const refused = (reason, Class, values = {}, context = {}) => new Class(fillTemplate(COMPACT_REFUSED,
      { region, cause: fillTemplate(COMPACT_CAUSES[reason], values) }), { regionId: region, ...context });
    const code = this.exports.compact_region(region);
    if (code === Pinned.code || code === AllocationFailed.code) { // the module's only causes of these codes here
      this.lastError();
      throw code === Pinned.code ? refused("pinned", Pinned)
        : refused("last_generation", AllocationFailed, { generation: before }, { generation: before });
    }
    if (code !== 0) {
      throw this._fail(code, "compactRegion failed", { regionId: region }, () => {
        const allocator = this.exports.region_allocator(region);
        return refused("allocator", UnsupportedAllocator, { allocator: ALLOCATOR_NAMES[allocator] ?? String(allocator) });
      });
    }
    this._epoch++;
    const after = this.regionInfo(region).generation;
    return new HandleRemap(region, before, after, compactionMoves(this._checkpoints._layout(region)));
  }

  /** The handle a pre-compaction handle now stands for. */
  migrate(handle) {
    const h = checkHandle(handle);
    const moved = this.exports.migrate(h);
    if (moved === 0n) {
      const code = this.exports.last_error();
      if (code === RegionNotFound.code || code === StaleHandle.code) throw this._bulkFail(code, "migrate", h);
      const { regionId: id, generation, offset } = unpackHandle(h);
      throw this._fail(code, "cannot migrate", { regionId: id, generation, offset });
    }
    return moved;
  }

  /** The region an embedder should evict first (Warm before Hot, least recently used), or 0. */
  lruCandidate() { return this.exports.lru_candidate(); }
  regionCount() { return this.exports.region_count(); }

  _regionTier(region) {
    const tier = this.exports.region_residency(region);
    return tier === TIER_SPILLING ? Residency.COLD : tier;
  }

  _tierName(region) { return ["HOT", "WARM", "COLD", "EXTERNAL", "COLD"][this.exports.region_residency(region)] ?? "?"; }

  /** `{id, generation, kind, capacity, used, residency, pinned, pool, base, allocator}` (all Numbers). */
  regionInfo(id) {
    const region = regionId(id);
    const generation = this.exports.region_generation(region); // never -1 for a live region
    if (generation === -1) throw this._fail(this.exports.last_error(), "regionInfo failed", { regionId: region });
    const field = (name) => this.exports[`region_${name}`](region);
    return {
      id: region,
      generation,
      kind: field("kind"),
      capacity: unsigned(field("capacity")),
      used: unsigned(field("used")),
      residency: this._regionTier(region),
      pinned: field("pinned") === 1,
      pool: field("pool"),
      base: unsigned(field("base")),
      allocator: field("allocator"),
    };
  }

  /** The region's counters as Numbers (JSON-serialisable). */
  metrics(id) {
    this.regionInfo(id); // throws for a missing region
    return Object.fromEntries(METRICS.map((name, index) => [name, Number(this.exports.region_metric(id, index))]));
  }

  // ---------------------------------------------------------------- data plane
  /**
   * A block of `size` bytes (1..2^32-1 for Bump: 0 allowed) whose offset is a multiple of `align`
   * (a power of two; default 8 so every typed view fits, Slab: what its class size allows).
   */
  alloc(id, size, { align = 0 } = {}) {
    if (!isInteger(id)) throw notAnInteger(id, "region_id"); // every argument before any state, as the model
    const bytes = u32(size, "size");
    const aligned = alignment(align);
    const region = regionId(id);
    const handle = this.exports.alloc_aligned(region, bytes, aligned);
    if (handle === 0n) {
      const code = this.exports.last_error();
      if (code === AllocationFailed.code) throw this._allocRefused(region, bytes, aligned);
      throw this._fail(code, "alloc failed", { regionId: region, length: bytes });
    }
    return handle;
  }

  /** The allocator state that tells the cause of a refusal the module answers with one code, as
   *  GuestInstance reads it: kind, capacity, `used`, a side-table field reader, a Slab's class size
   *  (`used` over its live slots; with none live, the size this guest created it with, else undefined). */
  _allocatorState(region) {
    const kind = this.exports.region_allocator(region);
    const capacity = unsigned(this.exports.region_capacity(region));
    const layout = this._checkpoints._layout(region);
    const data = new DataView(layout.buffer, layout.byteOffset, layout.byteLength);
    const used = data.getUint32(0, true);
    const field = (offset) => data.getUint32(4 + offset, true);
    let classSize;
    if (kind === ALLOCATORS.SLAB) {
      const live = field(LAYOUT.SLAB_SLOTS) - field(LAYOUT.SLAB_COUNT);
      classSize = live ? Math.floor(used / live) : this._slabClasses.get(region);
    }
    return { kind, capacity, used, field, classSize };
  }

  /** Code 5 of `alloc_aligned`, worded by the model's cause (ALLOC_ERROR, ALLOC_CAUSES). */
  _allocRefused(region, size, align) {
    const { kind, capacity, used, field, classSize } = this._allocatorState(region);
    const effective = align || 8; // alloc_aligned's default
    const because = (key, values = {}) => fillTemplate(ALLOC_CAUSES[key], values);
    let cause;
    if (kind === ALLOCATORS.BUMP) {
      cause = because("bump_full", { align: effective, used });
    } else if (kind === ALLOCATORS.FREELIST) {
      const full = field(LAYOUT.BT_COUNT) >= field(LAYOUT.BT_CAP);
      cause = size === 0 ? because("empty_block") : full ? because("block_table_full", { entries: field(LAYOUT.BT_CAP) })
        : because("no_free_block", { align: effective });
    } else {
      const slots = field(LAYOUT.SLAB_SLOTS);
      const free = field(LAYOUT.SLAB_COUNT);
      if (classSize === undefined) cause = free === 0 ? because("slab_full", { slots }) : because("slab_size_or_align", { align: effective });
      else if (size !== classSize) cause = because("slab_size", { class_size: classSize });
      else if (align > 1 && classSize % align) cause = because("slab_align", { align, class_size: classSize });
      else cause = because("slab_full", { slots });
    }
    const generation = this.exports.region_generation(region);
    return new AllocationFailed(fillTemplate(ALLOC_ERROR, { region, size, cause }),
      { regionId: region, generation, length: size, capacity });
  }

  /** Code 3 of `dealloc` (the handle's region live at its generation): past the capacity, or the allocator's
   *  cause (DEALLOC_CAUSES), as GuestInstance words it. */
  _deallocRefused(h) {
    const { regionId: id, generation, offset } = unpackHandle(h);
    const { kind, capacity, field, classSize } = this._allocatorState(id);
    let cause;
    if (offset > capacity) cause = OUT_OF_BOUNDS;
    else if (kind !== ALLOCATORS.SLAB) cause = DEALLOC_CAUSES.no_block;
    else if (classSize === undefined) cause = DEALLOC_CAUSES.slab_no_slot;
    else if (offset % classSize || Math.floor(offset / classSize) >= field(LAYOUT.SLAB_SLOTS)) {
      cause = fillTemplate(DEALLOC_CAUSES.slab_boundary, { class_size: classSize });
    } else cause = DEALLOC_CAUSES.slab_free;
    const message = fillTemplate(HANDLE_ERROR, { operation: "dealloc", handle: `r${id}@${generation}+${offset}`, cause });
    return new OutOfBounds(message, { regionId: id, generation, offset, capacity });
  }

  dealloc(handle) {
    const h = checkHandle(handle);
    const code = this.exports.dealloc(h);
    if (code === RegionNotFound.code || code === StaleHandle.code) throw this._bulkFail(code, "dealloc", h);
    if (code === OutOfBounds.code) {
      this.lastError(); // reported here
      throw this._deallocRefused(h);
    }
    if (code !== 0) {
      const { regionId: id, generation, offset } = unpackHandle(h);
      throw this._fail(code, "dealloc failed", { regionId: id, generation, offset });
    }
  }

  /**
   * The error of operation `what` (of `length` bytes; none for dealloc and migrate) at packed handle `h` that
   * failed with `code`, worded as every layer words it (BULK_ERROR or HANDLE_ERROR, generated from the model's
   * table): a handle whose region was never created, was destroyed or is at another generation says which
   * (REGION_STATES), any other failure its code's meaning (BULK_CAUSES).
   */
  _bulkFail(code, what, h, length = undefined) {
    const { regionId: id, generation, offset } = unpackHandle(h);
    this.lastError(); // reported here: leave nothing behind
    let cause = BULK_CAUSES[code] ?? BULK_CAUSES[9];
    let capacity;
    if (code === OutOfBounds.code && length !== undefined) { // past the capacity: worded as the model words it
      cause = OUT_OF_BOUNDS;
      capacity = unsigned(this.exports.region_capacity(id));
    }
    if (code === RegionNotFound.code) cause = fillTemplate(REGION_STATES.absent, { region: id });
    if (code === StaleHandle.code) {
      const current = this.exports.region_generation(id);
      if (current === -1) this.lastError(); // region_generation's own failure
      cause = current === -1 ? fillTemplate(REGION_STATES.destroyed, { region: id })
        : fillTemplate(REGION_STATES.live, { region: id, generation: current });
    }
    const len = length === undefined ? undefined : Number(length);
    const message = fillTemplate(len === undefined ? HANDLE_ERROR : BULK_ERROR,
      { operation: what, handle: `r${id}@${generation}+${offset}`, length: len, cause });
    return new (ERRORS_BY_CODE.get(code) ?? PolicyViolation)(message, { regionId: id, generation, offset, length: len, capacity });
  }

  /** {pool, address} of `[offset, offset + length)` of a handle, checked like any access. */
  _locate(handle, length, what) {
    const h = checkHandle(handle);
    const len = u32(length, "length");
    const where = this.exports.handle_address(h, len);
    if (where < 0n) throw this._bulkFail(Number(-where), what, h, len);
    return { pool: Number(where >> 32n), address: Number(where & 0xffffffffn) };
  }

  /**
   * Zero-copy bytes of a whole resident region: a plain Uint8Array, detached when its pool grows.
   * Like every view, it counts as written: the module zeroes its pages when the span is freed, and a
   * dirty-tracked region's pages turn dirty when it is taken (use `read` for a copy that marks nothing).
   */
  regionBytes(id) {
    const info = this.regionInfo(id);
    if (info.residency === Residency.COLD) {
      throw new NotResident(`regionBytes: the region is Cold; await its ColdTier.fault(${info.id}) first`, { regionId: info.id });
    }
    return this.handleBytes(packHandle(info.id, info.generation, 0), info.capacity);
  }

  /**
   * Zero-copy bytes `[offset, offset + length)` of a handle: a plain Uint8Array, detached when its pool
   * grows. A dirty-tracked region's pages in the range turn dirty when it is taken (writes through it
   * later are not seen one by one: take it again after a checkpoint or `clearDirty`).
   */
  handleBytes(handle, length) {
    const bytes = this._bytesAt(handle, length, "handleBytes");
    this._noteWrite(handle, length, "handleBytes");
    return bytes;
  }

  /** A writable view of the range was handed out: the module marks a tracked region's pages dirty. A
   *  read-only region's view cannot be guarded (a plain typed array) and marks nothing. */
  _noteWrite(handle, length, what) {
    const h = checkHandle(handle);
    const code = this.exports.note_write(h, u32(length, "length"));
    if (code !== 0 && code !== ReadOnly.code) throw this._bulkFail(code, what, h, length);
  }

  /**
   * A growth-proof typed view of `count` elements of `type` (`"f64"`, `"u32"`, ... or the
   * typed-array class) at `handle`. The handle's address must suit the element size.
   */
  view(handle, type, count) {
    const Class = viewClass(type);
    const n = integer(count, "count", 0, Math.floor(U32_MAX / Class.BYTES_PER_ELEMENT));
    const view = new TypedView(this, checkHandle(handle), Class, n);
    void view.array; // checks the handle, bounds and alignment now
    return view;
  }

  /** A copy of `length` bytes at `handle`, counted in bytesRead (as the model's read). */
  read(handle, length) { return this._copyOut(handle, length, "read"); }

  /** A copy of `count` elements of `type` at `handle` (any alignment; little-endian like wasm). */
  readAs(handle, type, count) {
    const Class = viewClass(type);
    const n = integer(count, "count", 0, Math.floor(U32_MAX / Class.BYTES_PER_ELEMENT));
    const bytes = this._copyOut(handle, n * Class.BYTES_PER_ELEMENT, "readAs");
    return new Class(bytes.buffer, 0, n);
  }

  /** Write the bytes of `data` (ArrayBuffer, any typed array or DataView) at `handle`. */
  write(handle, data) {
    const bytes = bytesOf(data, "write");
    // The span passes the data plane's write barrier first (as a zero fill): a read-only region throws
    // ReadOnly with nothing changed, a tracked one has its pages marked dirty.
    const h = checkHandle(handle);
    const code = this.exports.fill(h, bytes.byteLength, 0);
    if (code !== 0) throw this._bulkFail(code, "write", h, bytes.byteLength);
    this._bytesAt(handle, bytes.byteLength, "write").set(bytes);
  }

  /** Zero `length` bytes at `handle` (through the write barrier: `ReadOnly`, dirty pages); counted in bytesDiscarded. */
  discard(handle, length) {
    const h = checkHandle(handle);
    const len = u32(length, "length");
    const code = this.exports.discard(h, len);
    if (code !== 0) throw this._bulkFail(code, "discard", h, len);
  }

  /** A copy of the range, counted in bytesRead by the module's note_read (handle_address stamped the clock). */
  _copyOut(handle, length, what) {
    const bytes = this._bytesAt(handle, length, what).slice();
    const h = checkHandle(handle);
    const code = this.exports.note_read(h, bytes.byteLength);
    if (code !== 0) throw this._bulkFail(code, what, h, bytes.byteLength);
    return bytes;
  }

  _bytesAt(handle, length, what) {
    const { pool, address } = this._locate(handle, length, what);
    return new Uint8Array(this.poolMemory(pool).buffer, address, Number(length));
  }

  // ---------------------------------------------------------------- user modules
  /**
   * Instantiate a user module whose `tvm.*` imports (functions and `memory`) are this module's
   * exports. A clang-built module importing `env.memory` (`-Wl,--import-memory`) gets the
   * default memory, grown to the minimum it declares. A module that defines its own memory is
   * served when it imports no function taking a guest pointer (`read`, `write`, `try_load_*`...),
   * and refused when it does (those pointers would land in another memory: link it with
   * `tvm-wasm link`). Every refusal is a `LinkRefused` (a `TvmError`) worded as `tvm-wasm link`,
   * `TvmHost` and `GuestInstance.link` word it: more than one memory, a memory other than the
   * module's own, a table or global nobody passes in `imports`, a `tvm.*` function this module
   * does not serve or with another signature, a shared or 64-bit memory import, or one whose
   * maximum is below the memory's size, and any import nobody provides.
   */
  async link(source, imports = {}) {
    let bytes = null;
    if (!(source instanceof WebAssembly.Module)) {
      const fetched = await fetchIfNeeded(source);
      bytes = isResponse(fetched) ? new Uint8Array(await fetched.arrayBuffer()) : bytesOf(fetched, "link");
    }
    const module = bytes ? await compile(bytes) : source;
    const env = { ...(imports.env ?? {}) };
    const shape = bytes ? readModuleShape(bytes) : moduleShape(module);
    const why = this._linkRefusal(shape, imports);
    if (why) throw new LinkRefused(why);
    if (shape.imports.some((i) => i.module === "tvm" && i.name === "clear_dirty")) {
      this._checkpoints.foreignClears = true; // it may clear the bits checkpoints rely on: they copy every page
    }
    for (const memory of shape.imports.filter((i) => i.kind === "memory")) {
      const label = `${memory.module}.${memory.name}`;
      const ours = (memory.module === "env" || memory.module === "tvm") && memory.name === "memory" && !(memory.module === "env" && env.memory);
      if (!ours) continue;
      if (memory.shared || memory.memory64) {
        throw new LinkRefused(`${label} is ${memory.shared ? "shared" : "64-bit"}; the guest's default memory is a `
          + "plain 32-bit memory (link without -pthread/--shared-memory and without memory64)");
      }
      const pages = this.memory.buffer.byteLength / 65536;
      if (memory.maximum !== undefined && memory.maximum < Math.max(pages, memory.minimum)) {
        throw new LinkRefused(`${label} declares at most ${memory.maximum} pages, but the guest's default memory `
          + `already has ${pages}; link with a larger --max-memory or none`);
      }
      if (memory.minimum !== undefined && memory.minimum > pages) this.memory.grow(memory.minimum - pages); // as declared
      if (memory.module === "env") env.memory = this.memory;
    }
    const tvm = { ...this.exports };
    for (const name of ["create_region", "create_region_with", "restore_region"]) {
      const raw = this.exports[name];
      tvm[name] = (...args) => { const result = raw(...args); this.checkGrowth(); return result; };
    }
    const all = { ...imports, tvm, ...(Object.keys(env).length ? { env } : {}) };
    const missing = shape.imports.filter((i) => !(all[i.module] && i.name in all[i.module])).map((i) => `${i.module}.${i.name} (${i.kind})`);
    if (missing.length) {
      throw new LinkRefused(`the user module imports what nobody provides: ${missing.join(", ")}; pass them in imports`);
    }
    try {
      return await WebAssembly.instantiate(module, all);
    } catch (error) { // what only the engine saw (a WebAssembly.Module gives no import signatures): typed all the same
      if (error instanceof WebAssembly.LinkError) throw new LinkRefused(`cannot link the user module: ${error.message}`);
      throw error;
    }
  }

  /**
   * Why `link` refuses a module of this `shape`, or null: the rules and words of `abi.imports.refused_import`
   * (and `GuestInstance.link`'s memory rule), in the same order; imports the caller passes are its own.
   */
  _linkRefusal(shape, imports) {
    const count = shape.imports.filter((i) => i.kind === "memory").length + shape.definedMemories;
    if (count > 1) return fillTemplate(LINK_REFUSED.memories, { count });
    const using = [...new Set(shape.imports.filter((i) => i.module === "tvm" && GUEST_MEMORY_FUNCTIONS.has(i.name))
      .map((i) => i.name))].sort();
    if (shape.definedMemories && using.length) return fillTemplate(LINK_REFUSED.own_memory, { using: using.join(", ") });
    for (const imp of shape.imports) {
      const where = `${imp.module}.${imp.name}`;
      const supplied = imp.module !== "tvm" && imports[imp.module] !== undefined && imp.name in imports[imp.module];
      if (imp.kind === "memory") {
        const own = (imp.module === "tvm" || imp.module === "env") && imp.name === "memory";
        if (!own && !supplied) return fillTemplate(LINK_REFUSED.memory, { where });
      } else if (imp.kind !== "func") {
        if (!supplied) return fillTemplate(LINK_REFUSED.kind, { where, kind: imp.kind });
      } else if (imp.module === "tvm") {
        if (typeof this.exports[imp.name] !== "function") return `import ${where}: ${this._unserved(imp.name)}`;
        const expected = abiSignature(imp.name);
        if (imp.signature && expected && imp.signature !== expected) {
          return fillTemplate(LINK_REFUSED.signature, { where, signature: imp.signature, expected });
        }
      }
    }
    return null;
  }

  /** Why this module serves no `tvm.<name>` (`abi.imports.unserved_import`, without its "did you mean"). */
  _unserved(name) {
    if (name in UNSERVED_TVM) return UNSERVED_TVM[name];
    const perPool = /^(.*)_p(\d+)$/.exec(name);
    if (perPool && `${perPool[1]}_p{k}` in ABI_SIGNATURES) {
      const pool = Number(perPool[2]);
      const have = this.pools ? fillTemplate(UNSERVED_WHY.pools, { pools: this.pools, last: this.pools - 1 })
        : UNSERVED_WHY.no_pools;
      return fillTemplate(UNSERVED_WHY.pool, { name, pool, have, more: pool + 1 });
    }
    if (name in ABI_SIGNATURES) return fillTemplate(UNSERVED_WHY.not_exported, { name });
    if (name in this.exports || INTERNAL_NAMES.has(name) || INTERNAL_PATTERN.test(name)) {
      return fillTemplate(UNSERVED_WHY.internal, { name });
    }
    return fillTemplate(UNSERVED_WHY.unknown, { name });
  }
}

// ---------------------------------------------------------------- the Cold tier (OPFS)
const COLD_MAGIC = "TVMCOLD1";
const COLD_VERSION = 1;
const COLD_HEADER = 44; // magic 8, version u16, flags u16, region u32, generation u32, length u64, checksum 16
const CHUNK = 8 << 20;

/**
 * Checksum state: four 32-bit FNV-1a lanes over little-endian 32-bit words (word i feeds lane
 * i mod 4; tail bytes zero-padded), then the length. Each lane is a bijection of its state for a
 * given word, so changing any one word always changes the digest; four independent lanes keep
 * the loop fast (no single dependency chain).
 */
class Checksum {
  constructor() {
    this.lanes = new Uint32Array([0x811c9dc5, 0x2545f491, 0x9e3779b9, 0x7f4a7c15]);
    this.length = 0;
    this.words = 0; // words consumed so far (which lane comes next)
    this.tail = new Uint8Array(4);
    this.tailLength = 0;
  }

  update(bytes) {
    let at = 0;
    while (this.tailLength && at < bytes.length) {
      this.tail[this.tailLength++] = bytes[at++];
      if (this.tailLength === 4) { this._words(new Uint32Array(this.tail.slice().buffer)); this.tailLength = 0; }
    }
    const whole = Math.floor((bytes.length - at) / 4) * 4;
    if (whole) {
      const start = bytes.byteOffset + at;
      const words = start % 4 === 0 ? new Uint32Array(bytes.buffer, start, whole / 4) : new Uint32Array(bytes.slice(at, at + whole).buffer);
      this._words(words);
      at += whole;
    }
    while (at < bytes.length) this.tail[this.tailLength++] = bytes[at++];
    this.length += bytes.length;
  }

  _words(words) {
    // Rotate the lanes so that word i of the whole stream always feeds lane i mod 4.
    const shift = this.words & 3;
    const l = [0, 1, 2, 3].map((k) => this.lanes[(k + shift) & 3]);
    let [a, b, c, d] = l;
    const n = words.length;
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      a = Math.imul(a ^ words[i], 0x01000193);
      b = Math.imul(b ^ words[i + 1], 0x01000193);
      c = Math.imul(c ^ words[i + 2], 0x01000193);
      d = Math.imul(d ^ words[i + 3], 0x01000193);
    }
    const rest = [a, b, c, d];
    for (let k = 0; i < n; i++, k++) rest[k] = Math.imul(rest[k] ^ words[i], 0x01000193);
    for (let k = 0; k < 4; k++) this.lanes[(k + shift) & 3] = rest[k];
    // Lanes not reached by a short tail keep their order: rotate by what was consumed.
    this.words += n;
  }

  digest() {
    if (this.tailLength) { this.tail.fill(0, this.tailLength); this._words(new Uint32Array(this.tail.slice().buffer)); this.tailLength = 0; }
    const out = new Uint8Array(16);
    const view = new DataView(out.buffer);
    const length = this.length;
    for (let k = 0; k < 4; k++) view.setUint32(4 * k, Math.imul(this.lanes[k] ^ (length >>> (8 * k)), 0x01000193) >>> 0, true);
    return out;
  }
}

function coldPrefix(region, generation, length) {
  const prefix = new Uint8Array(28);
  prefix.set(new TextEncoder().encode(COLD_MAGIC), 0);
  const view = new DataView(prefix.buffer);
  view.setUint16(8, COLD_VERSION, true);
  view.setUint16(10, 0, true);
  view.setUint32(12, region, true);
  view.setUint32(16, generation, true);
  view.setBigUint64(20, BigInt(length), true);
  return prefix;
}

/**
 * The Cold tier of a guest, in the Origin Private File System, driven asynchronously from the
 * page's thread. `spill(id)` writes the region's bytes to a checksummed file (written to a
 * temporary name and then moved onto its final one, so the final name holds a complete copy or
 * none) and gives its span back; `fault(id)` reads the file, verifies header and checksum
 * before anything reaches the region, and places the bytes in a fresh span. While Cold, every
 * access answers NotResident (typed loads trap with it); handles stay valid. With `budget`
 * (resident bytes), `fit()` spills least recently used regions until the rest fits.
 */
export class ColdTier {
  /**
   * `await ColdTier.open(guest, {directory: "tvm-cold", budget: Infinity})`: the files live in a
   * session folder of their own under `directory` (several tabs or instances may share it).
   */
  static async open(guest, { directory = "tvm-cold", budget = Infinity } = {}) {
    if (!isSupported().opfs) {
      throw new UnsupportedEngine("the Origin Private File System is not available here (it needs a secure context: https or http://127.0.0.1)");
    }
    const root = await navigator.storage.getDirectory();
    const parent = await root.getDirectoryHandle(directory, { create: true });
    // One session folder per instance, held by a Web Lock for the page's lifetime: other tabs of the
    // origin keep theirs, and folders whose lock nobody holds (closed or crashed pages) are removed.
    const session = `session-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
    const lockName = (name) => `tvm-cold:${directory}/${name}`;
    if (typeof navigator.locks === "object") {
      await new Promise((held) => {
        navigator.locks.request(lockName(session), () => { held(); return new Promise(() => {}); });
      });
      const { held } = await navigator.locks.query();
      const alive = new Set(held.map((lock) => lock.name));
      const stale = [];
      for await (const name of parent.keys()) if (!alive.has(lockName(name))) stale.push(name);
      for (const name of stale) await parent.removeEntry(name, { recursive: true }).catch(() => {});
    }
    const dir = await parent.getDirectoryHandle(session, { create: true });
    const tier = new ColdTier(guest, dir, budget);
    guest.coldTier = tier;
    return tier;
  }

  constructor(guest, dir, budget) {
    this.guest = guest;
    this.dir = dir;
    this.budget = budget === Infinity ? Infinity : integer(budget, "budget", 0, Number.MAX_SAFE_INTEGER);
    this.cold = new Map(); // region id -> {file, generation, length}
    this.stats = { spills: 0, faults: 0, bytesWritten: 0, bytesRead: 0 };
  }

  static fileName(region, generation) { return `region-${region}-gen-${generation}.bin`; }

  isCold(id) { return this.cold.has(regionId(id)); }

  /** Bytes of every resident region (what the budget counts): a scan of the directory. */
  residentBytes() {
    const x = this.guest.exports;
    let total = 0;
    for (let id = 1, left = x.region_count(); id <= U16_MAX && left > 0; id++) {
      if (x.region_generation(id) === -1) continue;
      left--;
      if (this.guest._regionTier(id) !== Residency.COLD) total += unsigned(x.region_capacity(id));
    }
    x.last_error(); // the misses left NOT_FOUND behind
    return total;
  }

  /** Write region `id` to OPFS and give its span back. */
  async spill(id) {
    const g = this.guest;
    const x = g.exports;
    const region = regionId(id);
    const info = g.regionInfo(region);
    const code = x.begin_spill(region);
    if (code !== 0) {
      throw g._fail(code, code === NotResident.code ? "spill: the region is already Cold" : "spill refused", { regionId: region }, () => new PolicyViolation(
        `spill refused: ${KIND_NAMES[info.kind]} regions may not spill (placement policy)`, { regionId: region }));
    }
    g._epoch++;
    const final = ColdTier.fileName(region, info.generation);
    const temp = `${final}.tmp-${Math.random().toString(16).slice(2, 10)}`;
    try {
      const handle = await this.dir.getFileHandle(temp, { create: true });
      const writable = await handle.createWritable();
      try {
        const prefix = coldPrefix(region, info.generation, info.capacity);
        const sum = new Checksum();
        sum.update(prefix);
        for (let at = 0; at < info.capacity; at += CHUNK) {
          // A copy: the stream reads its chunk later, and the copy is what the checksum covers.
          const chunk = new Uint8Array(g.poolMemory(info.pool).buffer, info.base + at, Math.min(CHUNK, info.capacity - at)).slice();
          sum.update(chunk);
          await writable.write({ type: "write", position: COLD_HEADER + at, data: chunk });
        }
        const header = new Uint8Array(COLD_HEADER);
        header.set(prefix, 0);
        header.set(sum.digest(), 28);
        await writable.write({ type: "write", position: 0, data: header });
        await writable.close();
      } catch (error) {
        await writable.abort().catch(() => {});
        throw error;
      }
      await this.dir.removeEntry(final).catch(() => {}); // a leftover; the bytes are still in the span
      await handle.move(final);
    } catch (error) {
      x.cancel_spill(region);
      await this.dir.removeEntry(temp).catch(() => {});
      throw new BackingStoreError(`spill: writing the region to OPFS failed: ${error && error.message}`, { regionId: region });
    }
    const done = x.finish_spill(region);
    if (done !== 0) throw g._fail(done, "spill: finishing failed", { regionId: region });
    this.cold.set(region, { file: final, generation: info.generation, length: info.capacity });
    this.stats.spills++;
    this.stats.bytesWritten += info.capacity;
  }

  /** Read region `id` back from OPFS (verified) into a fresh span; a no-op for a resident region. */
  async fault(id) {
    const g = this.guest;
    const region = regionId(id);
    const entry = this.cold.get(region);
    if (!entry) {
      g.regionInfo(region); // RegionNotFound for no region
      return false;
    }
    const fail = (why) => new BackingStoreError(`fault: the Cold copy of region ${region} ${why}; the region stays Cold`,
      { regionId: region, generation: entry.generation, length: entry.length });
    let file;
    try {
      file = await (await this.dir.getFileHandle(entry.file)).getFile();
    } catch (error) {
      throw fail(`cannot be opened (${error && error.name})`);
    }
    if (file.size < COLD_HEADER) throw fail(`is truncated: ${file.size} bytes, the header needs ${COLD_HEADER}`);
    const header = new Uint8Array(await file.slice(0, COLD_HEADER).arrayBuffer());
    const view = new DataView(header.buffer);
    if (new TextDecoder().decode(header.subarray(0, 8)) !== COLD_MAGIC) throw fail("has the wrong magic");
    if (view.getUint16(8, true) !== COLD_VERSION || view.getUint16(10, true) !== 0) throw fail("has an unknown format version or flags");
    if (view.getUint32(12, true) !== region || view.getUint32(16, true) !== entry.generation) throw fail("belongs to another region or generation");
    const length = Number(view.getBigUint64(20, true));
    if (length !== entry.length) throw fail(`holds ${length} bytes, the region has ${entry.length}`);
    if (file.size !== COLD_HEADER + length) throw fail(`is torn: ${file.size - COLD_HEADER} payload bytes, expected ${length}`);
    // Verify everything before the region sees a byte: read into a staging copy.
    const payload = new Uint8Array(length);
    const sum = new Checksum();
    sum.update(header.subarray(0, 28));
    for (let at = 0; at < length; at += CHUNK) {
      const chunk = new Uint8Array(await file.slice(COLD_HEADER + at, COLD_HEADER + Math.min(length, at + CHUNK)).arrayBuffer());
      sum.update(chunk);
      payload.set(chunk, at);
    }
    const digest = sum.digest();
    if (!digest.every((byte, i) => byte === header[28 + i])) throw fail("fails its checksum");
    const code = g.exports.restore_region(region);
    g.checkGrowth();
    if (code !== 0) throw g._fail(code, "fault: no pool has room for the region", { regionId: region, capacity: length });
    const info = g.regionInfo(region);
    new Uint8Array(g.poolMemory(info.pool).buffer, info.base, length).set(payload);
    g._epoch++;
    this.cold.delete(region);
    await this.dir.removeEntry(entry.file).catch(() => {});
    this.stats.faults++;
    this.stats.bytesRead += length;
    return true;
  }

  /** Run `fn()` after faulting every listed region in (what sync code needs before touching them). */
  async using(ids, fn) {
    for (const id of ids) await this.fault(id);
    return fn();
  }

  /** Spill least recently used spillable regions until the resident bytes fit the budget; returns the ids spilled. */
  async fit() {
    const spilled = [];
    let resident = this.residentBytes();
    while (resident > this.budget) {
      const candidate = this.guest.lruCandidate();
      if (!candidate) {
        throw new AllocationFailed(`the budget of ${this.budget} bytes cannot be met: nothing left to spill`,
          { capacity: this.budget });
      }
      const capacity = this.guest.regionInfo(candidate).capacity;
      await this.spill(candidate);
      resident -= capacity;
      spilled.push(candidate);
    }
    return spilled;
  }

  /** Called when a Cold region is destroyed: its file goes too. */
  _forget(region) {
    const entry = this.cold.get(region);
    if (!entry) return;
    this.cold.delete(region);
    this.dir.removeEntry(entry.file).catch(() => {});
  }
}
