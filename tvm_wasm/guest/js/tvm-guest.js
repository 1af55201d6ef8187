// tvm-guest.js: run a tvm-wasm guest module (built by `tvm-wasm guest build`) from JavaScript.
//
// The module imports nothing, so `WebAssembly.instantiate(bytes, {})` is all it needs;
// this file adds the embedder's conveniences: the control plane as methods that throw
// `TvmError`, zero-copy `Uint8Array` views of regions, traps turned into typed errors,
// and run-time linking of user modules that import `tvm.*` (including `tvm.memory`).
//
// Handles are BigInts (the i64 of the raw ABI: region_id:16 | generation:16 | offset:32).
// A view is a window on a pool's ArrayBuffer: creating a region may grow that pool,
// which detaches its old buffer, so take views again after `createRegion`.

export const RegionKind = Object.freeze({
  HOT_HEAP: 0, OBJECT_ARENA: 1, BLOB_ARENA: 2, PAGE_STORE: 3, SCRATCH: 4, DEVICE_STATE: 5, CODE_CACHE: 6,
});
export const Allocator = Object.freeze({ BUMP: 0, BLOCKS: 1, SLAB: 2 });
export const Residency = Object.freeze({ HOT: 0, WARM: 1 });
export const ErrorCode = Object.freeze({
  OK: 0, NOT_FOUND: 1, STALE: 2, OUT_OF_BOUNDS: 3, NOT_RESIDENT: 4, ALLOCATION_FAILED: 5, PINNED: 6,
  GUEST_MEMORY: 7, OTHER: 9,
});
const CODE_NAMES = Object.fromEntries(Object.entries(ErrorCode).map(([name, code]) => [code, name]));
const METRICS = ["allocations", "bytesAllocated", "bytesRead", "bytesWritten", "faults", "promotions", "demotions"];

/** An error of the raw ABI; `code` is the ABI's error code. */
export class TvmError extends Error {
  constructor(code, what) {
    super(`${what}: ${CODE_NAMES[code] ?? "UNKNOWN"} (code ${code})`);
    this.name = "TvmError";
    this.code = code;
  }
}

/** Pack (region id, generation, offset) into the ABI's i64. */
export function packHandle(regionId, generation, offset) {
  const bits = (BigInt(regionId & 0xffff) << 48n) | (BigInt(generation & 0xffff) << 32n) | BigInt(offset >>> 0);
  return BigInt.asIntN(64, bits);
}

/** The three fields of a handle. */
export function unpackHandle(handle) {
  const bits = BigInt.asUintN(64, BigInt(handle));
  return { regionId: Number(bits >> 48n), generation: Number((bits >> 32n) & 0xffffn), offset: Number(bits & 0xffffffffn) };
}

async function toModule(source) {
  if (source instanceof WebAssembly.Module) return source;
  if (typeof source === "string" || source instanceof URL) source = await fetch(source);
  if (typeof Response !== "undefined" && source instanceof Response) {
    return WebAssembly.compile(await source.arrayBuffer());
  }
  return WebAssembly.compile(source); // ArrayBuffer or typed array
}

/** Compile (from a URL, Response, bytes or Module) and instantiate a guest module. */
export async function instantiate(source) {
  const module = await toModule(source);
  const instance = await WebAssembly.instantiate(module, {});
  return new TvmGuest(module, instance);
}

export class TvmGuest {
  constructor(module, instance) {
    this.module = module;
    this.instance = instance;
    this.exports = instance.exports;
    this.pools = Object.keys(this.exports).filter((name) => /^mem\d+$/.test(name)).length;
  }

  /** The default memory: spliced user code's plain loads, and `tvm.memory` of linked modules. */
  get memory() {
    return this.exports.memory;
  }

  poolMemory(pool) {
    return this.exports[`mem${pool}`];
  }

  // ---------------------------------------------------------------- errors
  lastError() {
    return this.exports.last_error();
  }

  check(code, what) {
    if (code !== 0) {
      this.lastError(); // reported here: leave nothing behind
      throw new TvmError(code, what);
    }
  }

  /** A trap of a typed access becomes its TvmError (the module leaves the code in `trap_code`). */
  trapError(error) {
    const global = this.exports.trap_code;
    const code = global ? global.value : 0;
    if (!(error instanceof WebAssembly.RuntimeError) || !code) return error;
    global.value = 0;
    const handle = unpackHandle(this.exports.trap_handle.value);
    return new TvmError(code, `typed access through r${handle.regionId}@${handle.generation}+${handle.offset}`);
  }

  /** Run `fn()`, turning a runtime trap into its TvmError. */
  guard(fn) {
    try {
      return fn();
    } catch (error) {
      throw this.trapError(error);
    }
  }

  // ---------------------------------------------------------------- control plane
  createRegion(kind, capacity, { allocator = Allocator.BUMP, classSize = 0, maxBlocks = 0 } = {}) {
    const param = allocator === Allocator.SLAB ? classSize : allocator === Allocator.BLOCKS ? maxBlocks : 0;
    const id = this.exports.create_region_with(kind, capacity | 0, allocator, param | 0);
    if (id === 0) throw new TvmError(this.lastError(), "createRegion");
    return id;
  }

  destroyRegion(id) { this.check(this.exports.destroy_region(id), "destroyRegion"); }
  pin(id) { this.check(this.exports.pin(id), "pin"); }
  unpin(id) { this.check(this.exports.unpin(id), "unpin"); }
  demoteRegion(id) { this.check(this.exports.demote_region(id), "demoteRegion"); }
  promoteRegion(id) { this.check(this.exports.promote_region(id), "promoteRegion"); }

  /** Pack a blocks region; its old handles fail (code 2) until passed through `migrate`. */
  compactRegion(id) { this.check(this.exports.compact_region(id), "compactRegion"); }

  migrate(handle) {
    const moved = this.exports.migrate(handle);
    if (moved === 0n) throw new TvmError(this.lastError(), "migrate");
    return moved;
  }

  /** The region an embedder should evict first (Warm before Hot, least recently used), or 0. */
  lruCandidate() { return this.exports.lru_candidate(); }
  regionCount() { return this.exports.region_count(); }

  regionInfo(id) {
    const generation = this.exports.region_generation(id); // never -1 for a live region
    if (generation === -1) throw new TvmError(this.lastError(), "regionInfo");
    const field = (name) => this.exports[`region_${name}`](id);
    return {
      id,
      generation,
      kind: field("kind"),
      capacity: field("capacity") >>> 0,
      used: field("used") >>> 0,
      residency: field("residency"),
      pinned: field("pinned") === 1,
      pool: field("pool"),
      base: field("base") >>> 0,
      allocator: field("allocator"),
    };
  }

  metrics(id) {
    this.regionInfo(id); // throws for a missing region
    return Object.fromEntries(METRICS.map((name, index) => [name, this.exports.region_metric(id, index)]));
  }

  // ---------------------------------------------------------------- data plane
  alloc(id, size) {
    const handle = this.exports.alloc(id, size | 0);
    if (handle === 0n) throw new TvmError(this.lastError(), "alloc");
    return handle;
  }

  dealloc(handle) { this.check(this.exports.dealloc(handle), "dealloc"); }

  /** Zero-copy view of a whole region (valid until its pool grows). */
  regionBytes(id) {
    const info = this.regionInfo(id);
    return new Uint8Array(this.poolMemory(info.pool).buffer, info.base, info.capacity);
  }

  /** Zero-copy view of `[offset, offset + length)` of a handle, checked like any access. */
  handleBytes(handle, length) {
    const where = this.exports.handle_address(handle, length | 0);
    if (where < 0n) {
      this.lastError();
      throw new TvmError(Number(-where), "handleBytes");
    }
    const pool = Number(where >> 32n);
    const address = Number(where & 0xffffffffn);
    return new Uint8Array(this.poolMemory(pool).buffer, address, length);
  }

  read(handle, length) { return this.handleBytes(handle, length).slice(); }
  write(handle, bytes) { this.handleBytes(handle, bytes.length).set(bytes); }

  // ---------------------------------------------------------------- user modules
  /** Instantiate a user module whose `tvm.*` imports (functions and `memory`) are this module's exports. */
  async link(source, imports = {}) {
    const module = await toModule(source);
    const instance = await WebAssembly.instantiate(module, { ...imports, tvm: this.exports });
    return instance;
  }
}
