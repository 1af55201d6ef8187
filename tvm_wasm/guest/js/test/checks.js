// The web package's own checks: every input of the browser deployment's acceptance list, a
// property run of cases generated (and predicted) by the Python model, and the figures.
// Runs against ../tvm-guest.js and ../guest.wasm (built with --pools 3 --browser).
//
// runPackageChecks(tvm, {cases, clangBytes, checkpointCases}) -> {results: [{name, ok, detail}], cases, checkpointCases, figures}

const DIV = [0, 97, 115, 109, 1, 0, 0, 0, 1, 7, 1, 96, 2, 127, 127, 1, 127, 3, 2, 1, 0, 7, 7, 1, 3, 100, 105, 118, 0, 0, 10,
  9, 1, 7, 0, 32, 0, 32, 1, 109, 11];
const NO_ABI = [0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 4, 1, 2, 0, 11];
// (import "env" "memory" (memory 2)) poke(addr, v) / peek(addr) / pages()
const ENV_MEMORY = [0, 97, 115, 109, 1, 0, 0, 0, 1, 15, 3, 96, 2, 127, 127, 0, 96, 1, 127, 1, 127, 96, 0, 1, 127, 2, 15, 1,
  3, 101, 110, 118, 6, 109, 101, 109, 111, 114, 121, 2, 0, 2, 3, 4, 3, 0, 1, 2, 7, 23, 3, 4, 112, 111, 107, 101, 0, 0, 4,
  112, 101, 101, 107, 0, 1, 5, 112, 97, 103, 101, 115, 0, 2, 10, 24, 3, 9, 0, 32, 0, 32, 1, 54, 2, 0, 11, 7, 0, 32, 0, 40,
  2, 0, 11, 4, 0, 63, 0, 11];
const SHARED_MEMORY = [0, 97, 115, 109, 1, 0, 0, 0, 2, 16, 1, 3, 101, 110, 118, 6, 109, 101, 109, 111, 114, 121, 2, 3, 1, 2];
// (import "tvm" "clear_dirty" ...) clear(id): a user module that can clear the dirty bits checkpoints rely on
const CLEARS_DIRTY = [0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 127, 1, 127, 2, 19, 1, 3, 116, 118, 109, 11, 99, 108,
  101, 97, 114, 95, 100, 105, 114, 116, 121, 0, 0, 3, 2, 1, 0, 7, 9, 1, 5, 99, 108, 101, 97, 114, 0, 1, 10, 8, 1, 6, 0,
  32, 0, 16, 0, 11];
const SMALL_MAX = [0, 97, 115, 109, 1, 0, 0, 0, 2, 16, 1, 3, 101, 110, 118, 6, 109, 101, 109, 111, 114, 121, 2, 1, 1, 1];

const GiB4 = 2 ** 32;
const PAGE = 65536;
const MIGRATE_PROBES = [0, 7, 8, 99, 100, 107, 108, 4095, 4096, 5007, 5008, 9000, 12304]; // rollback cases: must match Python

export async function runPackageChecks(tvm, { cases = null, clangBytes = null, checkpointCases = null } = {}) {
  const { instantiate, RegionKind, Allocator, Residency, TvmError, ColdTier } = tvm;
  const results = [];
  const figures = {};
  const check = async (name, fn) => {
    try {
      results.push({ name, ok: true, detail: (await fn()) ?? "" });
    } catch (error) {
      results.push({ name, ok: false, detail: `${error && error.stack ? error.stack : error}` });
    }
  };
  const assert = (cond, message) => { if (!cond) throw new Error(`assertion failed: ${message}`); };
  const throws = (Class, fn, message, test = () => true) => {
    try {
      fn();
    } catch (error) {
      if (error instanceof Class && test(error)) return error;
      throw new Error(`${message}: expected ${Class.name}, got ${error && error.name}: ${error && error.message}`);
    }
    throw new Error(`${message}: expected ${Class.name}, nothing was thrown`);
  };
  const rejects = async (Class, fn, message) => {
    try {
      await fn();
    } catch (error) {
      if (error instanceof Class) return error;
      throw new Error(`${message}: expected ${Class.name}, got ${error && error.name}: ${error && error.message}`);
    }
    throw new Error(`${message}: expected ${Class.name}, nothing was thrown`);
  };

  let usedStreaming = false;
  const realStreaming = WebAssembly.compileStreaming;
  WebAssembly.compileStreaming = (...args) => { usedStreaming = true; return realStreaming.apply(WebAssembly, args); };
  let t0 = performance.now();
  const g = await instantiate(); // ../guest.wasm next to tvm-guest.js
  figures.loadMs = performance.now() - t0;
  WebAssembly.compileStreaming = realStreaming;
  const x = g.exports;
  const maxPool = x.mem0.buffer.byteLength <= PAGE ? 256 * PAGE : null; // --browser pools

  await check("engine support and streaming compile", () => {
    const support = tvm.isSupported();
    assert(support.ok && support.multiMemory && support.simd && support.bulkMemory, JSON.stringify(support));
    assert(usedStreaming, "compileStreaming was used for the application/wasm response");
    return JSON.stringify(support);
  });

  await check("a module of another ABI is refused", async () => {
    await rejects(tvm.AbiMismatch, () => instantiate(new Uint8Array(NO_ABI)), "no abi_version");
    await rejects(TypeError, () => instantiate(12), "not a module source");
  });

  await check("typed arrays are written and read by their bytes", () => {
    const r = g.createRegion(RegionKind.OBJECT_ARENA, 8 * 1000);
    const h = g.alloc(r, 8 * 1000);
    const data = Float64Array.from({ length: 1000 }, (_, i) => i + 0.5);
    g.write(h, data);
    const back = g.readAs(h, "f64", 1000);
    let sum = 0;
    for (const value of back) sum += value;
    assert(sum === 500000, `sum ${sum}`);
    assert(g.read(h, 8).join() === Array.from(new Uint8Array(new Float64Array([0.5]).buffer)).join(), "bytes of 0.5");
    throws(TypeError, () => g.write(h, [1, 2, 3]), "a plain Array has no byte size");
    throws(TypeError, () => g.write(h, "bytes"), "a string");
    g.write(h, new DataView(new Uint8Array([9, 8, 7]).buffer));
    assert(g.read(h, 3).join() === "9,8,7", "a DataView");
    g.destroyRegion(r);
  });

  await check("sizes the ABI cannot hold are RangeErrors, never truncated", () => {
    for (const capacity of [GiB4 + 4096, GiB4, 2 ** 53, 2n ** 32n, 2n ** 64n, -1, 0]) {
      throws(RangeError, () => g.createRegion(RegionKind.BLOB_ARENA, capacity), `capacity ${capacity}`);
    }
    throws(TypeError, () => g.createRegion(RegionKind.BLOB_ARENA, 1.5), "fraction"); // not an integer: Python's float
    throws(TypeError, () => g.createRegion(RegionKind.BLOB_ARENA, NaN), "NaN");
    throws(TypeError, () => g.createRegion(RegionKind.BLOB_ARENA, "4096"), "string");
    const r = g.createRegion(RegionKind.BLOB_ARENA, 4096n); // a BigInt in range is fine
    throws(RangeError, () => g.alloc(r, GiB4 + 8), "alloc 4 GiB + 8");
    throws(tvm.AllocationFailed, () => g.alloc(r, GiB4 - 1), "alloc beyond the region");
    const h = g.alloc(r, 16);
    throws(RangeError, () => g.read(h, GiB4), "read length");
    throws(RangeError, () => g.view(h, "f64", 2 ** 31), "view count");
    throws(RangeError, () => tvm.packHandle(r, 1, GiB4 + 5), "handle offset");
    throws(RangeError, () => tvm.packHandle(70000, 1, 0), "handle region");
    throws(RangeError, () => tvm.offsetHandle(tvm.packHandle(r, 1, 10), GiB4), "offset overflow");
    assert(g.regionInfo(r).capacity === 4096 && g.regionInfo(r).used === 16, "nothing else happened");
    if (maxPool) throws(tvm.AllocationFailed, () => g.createRegion(RegionKind.BLOB_ARENA, 20 << 20), "20 MiB over a 16 MiB cap");
    g.destroyRegion(r);
  });

  await check("views survive pool growth; growth is announced", () => {
    const grown = [];
    const stop = g.onGrow((event) => grown.push(event));
    const r = g.createRegion(RegionKind.OBJECT_ARENA, 4096);
    const pool = g.regionInfo(r).pool;
    const h = g.alloc(r, 8 * 100);
    const view = g.view(h, "f64", 100);
    for (let i = 0; i < 100; i++) view.set(i, i * 1.25);
    const raw = g.handleBytes(h, 8);
    const before = g.poolMemory(pool).buffer.byteLength;
    const big = g.createRegion(RegionKind.BLOB_ARENA, before * 2); // grows this pool or the next
    let sum = 0;
    for (let i = 0; i < view.length; i++) sum += view.get(i);
    assert(sum === 1.25 * 4950, `sum after growth ${sum}`);
    view.set(99, 7);
    assert(g.readAs(tvm.offsetHandle(h, 99 * 8), "f64", 1)[0] === 7, "a write after growth lands");
    assert(grown.length >= 1 && grown.every((e) => e.newBytes > e.oldBytes), JSON.stringify(grown));
    if (grown.some((e) => e.pool === pool)) assert(raw.length === 0, "a plain array over the old buffer is detached");
    throws(RangeError, () => view.get(100), "index past the view");
    g.destroyRegion(r);
    throws(tvm.StaleHandle, () => view.get(0), "a view of a destroyed region");
    g.destroyRegion(big);
    stop();
    return JSON.stringify(grown);
  });

  await check("enums are validated", () => {
    assert(Allocator.FREELIST === 1 && Allocator.BUMP === 0 && Allocator.SLAB === 2, "FREELIST exists");
    throws(TypeError, () => Allocator.FRELIST, "a misspelt member");
    throws(TypeError, () => RegionKind.OBJECT_ARENNA, "a misspelt kind");
    throws(TypeError, () => g.createRegion(RegionKind.OBJECT_ARENA, 64, { allocator: undefined }), "allocator undefined");
    throws(TypeError, () => g.createRegion(RegionKind.OBJECT_ARENA, 64, { alocator: 1 }), "unknown option");
    throws(TypeError, () => g.createRegion(99, 64), "kind 99");
    throws(TypeError, () => g.createRegion(RegionKind.OBJECT_ARENA, 64, { allocator: 7 }), "allocator 7");
    throws(TypeError, () => g.createRegion(RegionKind.OBJECT_ARENA, 64, { allocator: Allocator.SLAB }), "slab without class");
    const r = g.createRegion(RegionKind.OBJECT_ARENA, 4096, { allocator: Allocator.FREELIST });
    assert(g.regionInfo(r).allocator === 1, "a FREELIST region");
    assert(JSON.stringify(Allocator) === '{"BUMP":0,"FREELIST":1,"BLOCKS":1,"SLAB":2}', "enums serialise");
    g.destroyRegion(r);
  });

  await check("a trap's cause is reported for that trap only", async () => {
    const r = g.createRegion(RegionKind.OBJECT_ARENA, 64);
    const stale = tvm.packHandle(r, 1, 0);
    g.destroyRegion(r);
    let raw;
    try { x.load_u8(stale, 0); } catch (error) { raw = error; }
    assert(raw instanceof WebAssembly.RuntimeError, "an unguarded bad access is a RuntimeError");
    const user = await WebAssembly.instantiate(new Uint8Array(DIV));
    let error;
    try { g.guard(() => user.instance.exports.div(1, 0)); } catch (e) { error = e; }
    assert(error instanceof WebAssembly.RuntimeError && !(error instanceof TvmError), `division by zero: ${error}`);
    const typed = throws(tvm.StaleHandle, () => g.guard(() => x.load_u8(stale, 0)), "a guarded bad access");
    assert(typed.regionId === r && typed.generation === 1 && typed.cause instanceof WebAssembly.RuntimeError, "context");
    let again;
    try { g.guard(() => user.instance.exports.div(1, 0)); } catch (e) { again = e; }
    assert(!(again instanceof TvmError), "consumed");
  });

  await check("alloc aligns (default 8) and typed views follow", () => {
    const r = g.createRegion(RegionKind.OBJECT_ARENA, 4096);
    const a = g.alloc(r, 3);
    const b = g.alloc(r, 8);
    assert(tvm.unpackHandle(a).offset === 0 && tvm.unpackHandle(b).offset === 8, "3 then 8 lands at +8");
    g.view(b, "f64", 1).set(0, 2.5);
    assert(g.readAs(b, "f64", 1)[0] === 2.5, "f64 view");
    g.alloc(r, 1, { align: 1 });
    const c = g.alloc(r, 1, { align: 1 });
    assert(tvm.unpackHandle(c).offset === 17, "align 1 packs");
    const d = g.alloc(r, 4, { align: 64 });
    assert(tvm.unpackHandle(d).offset === 64, "align 64");
    throws(RangeError, () => g.alloc(r, 4, { align: 3 }), "align 3");
    throws(RangeError, () => g.view(c, "f64", 1), "a misaligned f64 view");
    const slab = g.createRegion(RegionKind.OBJECT_ARENA, 120, { allocator: Allocator.SLAB, classSize: 12 });
    const s1 = g.alloc(slab, 12);
    const s2 = g.alloc(slab, 12);
    assert(tvm.unpackHandle(s2).offset - tvm.unpackHandle(s1).offset === 12, "slab slots");
    g.view(s2, "u32", 3).set(2, 5);
    throws(tvm.AllocationFailed, () => g.alloc(slab, 12, { align: 8 }), "slab cannot align 12-byte slots to 8");
    g.destroyRegion(r);
    g.destroyRegion(slab);
  });

  await check("errors are typed, distinct and carry context", () => {
    const bump = g.createRegion(RegionKind.OBJECT_ARENA, 64);
    const e1 = throws(tvm.UnsupportedAllocator, () => g.compactRegion(bump), "compact a Bump region");
    assert(e1.code === 9 && e1.regionId === bump && e1.name === "UnsupportedAllocator", e1.message);
    const e2 = throws(tvm.PolicyViolation, () => g.pin(bump), "pin an OBJECT_ARENA", (e) => /not pinnable/.test(e.message));
    const store = g.createRegion(RegionKind.PAGE_STORE, 64);
    const e3 = throws(tvm.PolicyViolation, () => g.demoteRegion(store), "demote a Warm region", (e) => /already WARM/.test(e.message));
    const scratch = g.createRegion(RegionKind.SCRATCH, 64);
    const e4 = throws(tvm.PolicyViolation, () => g.demoteRegion(scratch), "demote SCRATCH", (e) => /may not leave Hot/.test(e.message));
    assert(new Set([e1.message, e2.message, e3.message, e4.message]).size === 4, "distinct messages");
    const h = g.alloc(bump, 8);
    const e5 = throws(tvm.OutOfBounds, () => g.read(tvm.offsetHandle(h, 60), 8), "read past the end");
    assert(e5.message.startsWith("read(r") && e5.offset === 60 && e5.length === 8, e5.message);
    g.destroyRegion(bump);
    throws(tvm.StaleHandle, () => g.read(h, 1), "stale");
    throws(tvm.RegionNotFound, () => g.destroyRegion(bump), "destroy twice");
    assert(Object.getPrototypeOf(tvm.StaleHandle.prototype) === TvmError.prototype && tvm.StaleHandle.code === 2, "hierarchy");
    const metrics = JSON.parse(JSON.stringify(g.metrics(store)));
    assert(metrics.allocations === 0 && typeof metrics.bytesRead === "number", JSON.stringify(metrics));
    g.destroyRegion(store);
    g.destroyRegion(scratch);
  });

  await check("compaction with migrate keeps the bytes", () => {
    const r = g.createRegion(RegionKind.OBJECT_ARENA, 4096, { allocator: Allocator.FREELIST });
    const hs = [1, 2, 3].map((n) => { const h = g.alloc(r, 24); g.write(h, new Float64Array([n, n, n])); return h; });
    g.dealloc(hs[0]);
    g.compactRegion(r);
    throws(tvm.StaleHandle, () => g.read(hs[1], 8), "old handle");
    const moved = g.migrate(hs[2]);
    assert(g.readAs(moved, "f64", 3).join() === "3,3,3", "moved bytes");
    g.destroyRegion(r);
  });

  await check("run-time linking: env.memory grown as declared, or one clear refusal", async () => {
    const before = g.memory.buffer.byteLength / PAGE;
    const user = await g.link(new Uint8Array(ENV_MEMORY));
    assert(user.exports.pages() >= 2 && g.memory.buffer.byteLength / PAGE >= Math.max(2, before), "grown to 2 pages");
    user.exports.poke(PAGE + 8, 1234);
    assert(new Int32Array(g.memory.buffer, PAGE + 8, 1)[0] === 1234, "the default memory is env.memory");
    await rejects(tvm.LinkRefused, () => g.link(new Uint8Array(SHARED_MEMORY)), "shared memory");
    await rejects(tvm.LinkRefused, () => g.link(new Uint8Array(SMALL_MAX)), "maximum below the size");
    await rejects(tvm.LinkRefused, () => g.link(new Uint8Array(DIV).buffer, {}).then(() => g.link(new Uint8Array(
      [0, 97, 115, 109, 1, 0, 0, 0, 1, 4, 1, 96, 0, 0, 2, 11, 1, 3, 101, 110, 118, 3, 102, 111, 111, 0, 0]))), "missing env.foo");
    if (clangBytes) {
      const clang = await g.link(clangBytes);
      const r = g.createRegion(RegionKind.OBJECT_ARENA, 4096);
      const result = clang.exports.fill_and_sum(r, 100);
      assert(result === 5050, `clang module: ${result}`);
      return "clang module linked";
    }
    return "no clang module served";
  });

  // ---------------------------------------------------------------- OPFS Cold tier
  await check("OPFS Cold tier: spill, fault-in, corruption detected, LRU budget", async () => {
    const cold = await ColdTier.open(g, { directory: "tvm-cold-checks" });
    const size = 4 << 20;
    const r = g.createRegion(RegionKind.BLOB_ARENA, size);
    const h = g.alloc(r, size);
    const view = g.view(h, "u32", size / 4);
    const pattern = (i) => Math.imul(i, 2654435761) >>> 0;
    for (let i = 0; i < view.length; i++) view.array[i] = pattern(i);
    t0 = performance.now();
    await cold.spill(r);
    figures.spillMiBps = (size / 2 ** 20) / ((performance.now() - t0) / 1000);
    assert(g.regionInfo(r).residency === Residency.COLD && cold.isCold(r), "Cold");
    throws(tvm.NotResident, () => view.get(0), "a view of a Cold region");
    throws(tvm.NotResident, () => g.read(h, 4), "read");
    throws(tvm.NotResident, () => g.guard(() => x.load_u32(h, 0)), "a typed load traps NotResident");
    throws(tvm.NotResident, () => g.regionBytes(r), "regionBytes");
    t0 = performance.now();
    assert(await cold.fault(r), "faulted in");
    figures.faultMiBps = (size / 2 ** 20) / ((performance.now() - t0) / 1000);
    let bad = 0;
    for (let i = 0; i < view.length; i++) if (view.get(i) !== pattern(i)) bad++;
    assert(bad === 0, `${bad} words differ after fault-in`);
    assert(g.metrics(r).faults === 1 && g.metrics(r).demotions === 1, JSON.stringify(g.metrics(r)));

    // Corruption: flip one payload byte, then truncate: both refused, the region stays Cold.
    const corrupt = async (how) => {
      await cold.spill(r);
      const file = await cold.dir.getFileHandle(ColdTier.fileName(r, g.regionInfo(r).generation));
      const writable = await file.createWritable({ keepExistingData: true });
      await how(writable, (await file.getFile()).size);
      await writable.close();
      const error = await rejects(tvm.BackingStoreError, () => cold.fault(r), "corrupt copy");
      assert(cold.isCold(r) && g.regionInfo(r).residency === Residency.COLD, "still Cold");
      throws(tvm.NotResident, () => g.read(h, 4), "no data returned");
      return error.message;
    };
    const flipped = await corrupt((w) => w.write({ type: "write", position: 44 + 12345, data: new Uint8Array([0x5a]) }));
    assert(/checksum/.test(flipped), flipped);
    // Put the original copy back by spilling a second region? No: the copy is gone; rebuild r.
    g.destroyRegion(r);
    const r2 = g.createRegion(RegionKind.BLOB_ARENA, 1 << 20);
    g.write(g.alloc(r2, 16), new Uint8Array(16).fill(3));
    await cold.spill(r2);
    const file = await cold.dir.getFileHandle(ColdTier.fileName(r2, 1));
    const writable = await file.createWritable({ keepExistingData: true });
    await writable.truncate(44 + 1000);
    await writable.close();
    const torn = await rejects(tvm.BackingStoreError, () => cold.fault(r2), "torn copy");
    assert(/torn/.test(torn.message), torn.message);
    g.destroyRegion(r2);

    // Budget (a fresh instance): four 1 MiB regions, a 2.5 MiB budget spills the two least recently used.
    const g2 = await instantiate();
    const budgeted = await ColdTier.open(g2, { directory: "tvm-cold-checks", budget: 2.5 * (1 << 20) });
    assert(budgeted.dir.name !== cold.dir.name, "two instances sharing a directory get a session folder each");
    const ids = [0, 1, 2, 3].map((n) => {
      const id = g2.createRegion(RegionKind.OBJECT_ARENA, 1 << 20);
      g2.write(g2.alloc(id, 8), new Float64Array([n]));
      return id;
    });
    g2.read(tvm.packHandle(ids[0], 1, 0), 1); // ids[0] is now the most recently used
    const spilled = await budgeted.fit();
    assert(spilled.join() === [ids[1], ids[2]].join(), `spilled ${spilled}`);
    assert(budgeted.residentBytes() === 2 << 20, `resident ${budgeted.residentBytes()}`);
    throws(tvm.NotResident, () => g2.read(tvm.packHandle(ids[2], 1, 0), 8), "spilled region");
    await budgeted.using(spilled, () => {});
    assert(g2.readAs(tvm.packHandle(ids[2], 1, 0), "f64", 1)[0] === 2, "faulted back");
    g2.destroyRegion(ids[3]);
    await budgeted.spill(ids[1]);
    g2.destroyRegion(ids[1]); // a Cold region's file goes with it
    let files = 0;
    for await (const name of budgeted.dir.keys()) files += name ? 1 : 0;
    assert(files === 0, `${files} files left after destroying the Cold region`);
    // The first instance's Cold copies survive another instance opening the same directory.
    const keep = g.createRegion(RegionKind.OBJECT_ARENA, 4096);
    g.write(g.alloc(keep, 8), new Float64Array([42]));
    await cold.spill(keep);
    await ColdTier.open(await instantiate(), { directory: "tvm-cold-checks" });
    await cold.fault(keep);
    assert(g.readAs(tvm.packHandle(keep, 1, 0), "f64", 1)[0] === 42, "a copy survives another session's open");
    g.destroyRegion(keep);
    return `${flipped} | ${torn.message}`;
  });

  // ---------------------------------------------------------------- checkpoints and rollback
  await check("writable views mark a tracked region's pages dirty when taken; read and write mark exactly", () => {
    const P = 4096;
    const r = g.createRegion(RegionKind.BLOB_ARENA, 6 * P);
    const at = (offset) => tvm.packHandle(r, 1, offset);
    g.trackDirty(r);
    g.read(at(0), 6 * P);
    g.readAs(at(P), "u32", 4);
    assert(g.dirtyPages(r).length === 0, `reads mark nothing: ${g.dirtyPages(r)}`);
    g.handleBytes(at(P - 1), 2)[0] = 1;
    assert(g.dirtyPages(r).join() === "0,1", `handleBytes: ${g.dirtyPages(r)}`);
    g.clearDirty(r);
    g.view(at(3 * P), "u32", P / 4).set(0, 5);
    assert(g.dirtyPages(r).join() === "3", `view: ${g.dirtyPages(r)}`);
    g.clearDirty(r);
    g.regionBytes(r);
    assert(g.dirtyPages(r).join() === "0,1,2,3,4,5", `regionBytes: ${g.dirtyPages(r)}`);
    g.clearDirty(r);
    g.write(at(2 * P + 5), new Uint8Array([1]));
    assert(g.dirtyPages(r).join() === "2", `write: ${g.dirtyPages(r)}`);
    const ro = g.createRegion(RegionKind.BLOB_ARENA, P);
    g.trackDirty(ro);
    g.protect(ro, true);
    g.regionBytes(ro); // an unguarded typed array of a read-only region: handed out, nothing marked
    assert(g.dirtyPages(ro).length === 0, "a read-only region's view marks nothing");
    g.destroyRegion(r);
    g.destroyRegion(ro);
  });

  await check("checkpoints: incremental pages, exact bytes and layout, generations, typed errors", async () => {
    const { Checkpoint, CheckpointError, StaleHandle, ReadOnly, NotResident, RegionNotFound } = tvm;
    const P = 4096;
    const r = g.createRegion(RegionKind.BLOB_ARENA, 16 * P + 100); // 17 pages, the last one partial
    const at = (offset) => tvm.packHandle(r, g.regionInfo(r).generation, offset);
    const bytes = () => g.read(at(0), 16 * P + 100);
    const same = (a, b) => a.length === b.length && a.every((v, i) => v === b[i]);
    const block = g.alloc(r, 3 * P, { align: 16 });
    g.write(block, new Uint8Array(3 * P).map((_, i) => (i * 7) & 0xff));
    g.write(at(16 * P + 90), new Uint8Array([9, 9, 9])); // the partial page
    const first = g.checkpoint([r]);
    assert(first instanceof Checkpoint && first.pagesCopied === 17 && first.bytesCopied === 17 * P, `first ${first.pagesCopied}`);
    const atFirst = bytes();
    const usedAtFirst = g.regionInfo(r).used;
    g.write(at(5 * P + 1), new Uint8Array([1, 2, 3]));
    g.write(at(16 * P + 99), new Uint8Array([7]));
    const second = g.checkpoint([r]);
    assert(second.pagesCopied === 2, `only the two dirty pages: ${second.pagesCopied}`);
    const atSecond = bytes();
    g.write(at(0), new Uint8Array(P).fill(0xee));
    // Roll back to the second, then the first: exact bytes, the first stays valid, the second is superseded.
    assert(g.rollback(second).size === 0 && same(bytes(), atSecond), "back at the second");
    assert(g.rollback(first).size === 0 && same(bytes(), atFirst), "back at the first");
    const superseded = throws(CheckpointError, () => g.rollback(second), "a superseded checkpoint");
    assert(superseded.code === 9 && /superseded/.test(superseded.message), superseded.message);
    // Releasing it is refused the same way (the rule of every layer), and changes nothing.
    const release = throws(CheckpointError, () => g.releaseCheckpoint(second), "release of a superseded checkpoint");
    assert(release.message === `checkpoint ${second.id} was superseded by the rollback to checkpoint ${first.id}`, release.message);
    assert(g.checkpoints().length === 1 && g.checkpoints()[0] === first, "one live checkpoint");
    // The layout changed (an alloc): a new generation; handles taken at the checkpoint migrate, later ones do not.
    const generation = g.regionInfo(r).generation;
    const later = g.alloc(r, 64);
    g.write(later, new Uint8Array(64).fill(5));
    const remaps = g.rollback(first);
    const remap = remaps.get(r);
    assert(remaps.size === 1 && remap.oldGeneration === generation && remap.newGeneration === generation + 1, "remap");
    throws(StaleHandle, () => g.read(block, 4), "a handle from before the rollback is stale");
    throws(StaleHandle, () => g.read(later, 4), "a block the restored layout does not have");
    assert(remap.migrate(later) === null, "a block born after the checkpoint does not come back");
    assert(same(g.read(remap.migrate(block), 3 * P), atFirst.subarray(tvm.unpackHandle(block).offset, tvm.unpackHandle(block).offset + 3 * P)), "migrated");
    assert(g.regionInfo(r).used === usedAtFirst && same(bytes(), atFirst), "layout and bytes restored");
    assert(tvm.unpackHandle(g.alloc(r, 64)).offset === tvm.unpackHandle(later).offset, "the next alloc lands where it did");
    assert(remap.migrate(later) === null, "and the old handle still does not alias it");
    g.rollback(first);
    // Release folds: a chain of three, the middle released, both ends still exact.
    const c1 = g.checkpoint([r]);
    const b1 = bytes();
    g.write(at(2 * P), new Uint8Array([1]));
    const c2 = g.checkpoint([r]);
    g.write(at(9 * P), new Uint8Array([2]));
    const c3 = g.checkpoint([r]);
    const b3 = bytes();
    g.write(at(2 * P), new Uint8Array([3]));
    g.write(at(9 * P), new Uint8Array([4]));
    g.releaseCheckpoint(c2);
    throws(CheckpointError, () => g.rollback(c2), "a released checkpoint");
    const twice = throws(CheckpointError, () => g.releaseCheckpoint(c2), "released twice");
    assert(twice.message === `checkpoint ${c2.id} was released`, twice.message);
    assert(same((g.rollback(c3), bytes()), b3) && same((g.rollback(c1), bytes()), b1), "exact after a release");
    // A caller's clearDirty loses track: the next checkpoint copies every page.
    g.write(at(P), new Uint8Array([6]));
    g.clearDirty(r);
    assert(g.checkpoint([r]).pagesCopied === 17, "clearDirty: a full copy");
    // Read-only: a rollback that would change the region throws ReadOnly and changes nothing.
    const c4 = g.checkpoint([r]);
    g.write(at(3 * P), new Uint8Array([8]));
    const written = bytes();
    g.protect(r);
    const refused = throws(ReadOnly, () => g.rollback(c4), "rollback of a read-only region");
    assert(refused.code === 8 && same(bytes(), written) && g.checkpoints().includes(c4), "nothing changed");
    g.protect(r, false);
    g.rollback(c4);
    // Cold: NotResident for checkpoint and rollback (nothing changes); after fault-in both work.
    const cold = await ColdTier.open(g, { directory: "tvm-cold-checkpoints" });
    g.write(at(4 * P), new Uint8Array([1]));
    const beforeSpill = bytes();
    await cold.spill(r);
    throws(NotResident, () => g.checkpoint([r]), "checkpoint of a Cold region");
    throws(NotResident, () => g.rollback(c4), "rollback of a Cold region");
    await cold.fault(r);
    assert(same(bytes(), beforeSpill), "untouched while Cold");
    g.rollback(c4);
    const c5 = g.checkpoint([r]);
    const atFive = bytes();
    g.write(at(4 * P), new Uint8Array([2]));
    g.rollback(c5);
    assert(same(bytes(), atFive), "exact after a spill and fault-in");
    // Arguments and ownership.
    throws(RangeError, () => g.checkpoint([]), "no ids");
    throws(RangeError, () => g.checkpoint([r, r]), "repeated ids");
    throws(TypeError, () => g.checkpoint(r), "one id, not a list");
    throws(RegionNotFound, () => g.checkpoint([65000]), "no such region");
    throws(TypeError, () => g.rollback({ id: first.id, regionIds: [r] }), "not a Checkpoint");
    const other = await instantiate();
    const foreign = other.checkpoint([other.createRegion(RegionKind.BLOB_ARENA, 64)]);
    throws(CheckpointError, () => g.rollback(foreign), "another guest's checkpoint");
    throws(CheckpointError, () => g.releaseCheckpoint(foreign), "release of another guest's checkpoint");
    // A linked module that imports clear_dirty may clear the bits behind the checkpoints' back: every page is copied.
    const o = foreign.regionIds[0];
    other.write(tvm.packHandle(o, 1, 0), new Uint8Array([1]));
    assert(other.checkpoint([o]).pagesCopied === 1, "one page");
    const clearer = await other.link(new Uint8Array(CLEARS_DIRTY));
    other.write(tvm.packHandle(o, 1, 0), new Uint8Array([2]));
    const atClear = other.read(tvm.packHandle(o, 1, 0), 64);
    const beforeClear = other.checkpoint([o]);
    other.write(tvm.packHandle(o, 1, 0), new Uint8Array([3]));
    assert(clearer.exports.clear(o) === 0 && other.dirtyPages(o).length === 0, "the linked module cleared the bits");
    other.rollback(beforeClear);
    assert(other.read(tvm.packHandle(o, 1, 0), 64).every((b, i) => b === atClear[i]), "restored although the bits were cleared");
    // Figures: 8 MiB, 1% of its pages dirtied through write, against a full copy of the same bytes.
    const big = g.createRegion(RegionKind.BLOB_ARENA, 8 << 20);
    const bigAt = (offset) => tvm.packHandle(big, 1, offset);
    g.write(bigAt(0), new Uint8Array(8 << 20).map((_, i) => i & 0xff));
    t0 = performance.now();
    const full = g.checkpoint([big]);
    figures.checkpointFullMs = performance.now() - t0;
    const pages = (8 << 20) / P;
    const median = (values) => values.sort((a, b) => a - b)[values.length >> 1];
    const times = [];
    let delta = null;
    for (let round = 0; round < 9; round++) { // the median of 9 rounds (the first ones include compiling the code)
      for (let k = 0; k < pages / 100; k++) g.write(bigAt(((k * 97 + round) % pages) * P + 5), new Uint8Array([k & 0xff, round]));
      t0 = performance.now();
      const next = g.checkpoint([big]);
      times.push(performance.now() - t0);
      if (delta) g.releaseCheckpoint(delta);
      delta = next;
    }
    figures.checkpointOnePercentMs = median(times);
    t0 = performance.now();
    const copy = g.read(bigAt(0), 8 << 20);
    figures.fullCopyMs = performance.now() - t0;
    times.length = 0;
    for (let round = 0; round < 9; round++) {
      for (let k = 0; k < pages / 100; k++) g.write(bigAt(((k * 89 + round) % pages) * P + 9), new Uint8Array([7]));
      t0 = performance.now();
      g.rollback(delta);
      times.push(performance.now() - t0);
    }
    figures.rollbackOnePercentMs = median(times);
    assert(delta.pagesCopied === Math.ceil(pages / 100) && same(g.regionBytes(big), copy), `1%: ${delta.pagesCopied} pages`);
    g.rollback(full);
    assert(g.regionBytes(big).every((b, i) => b === (i & 0xff)), "back at the full checkpoint");
    g.destroyRegion(big);
    g.destroyRegion(r);
    const gone = throws(CheckpointError, () => g.rollback(first), "its region was destroyed");
    assert(g.checkpoints().length === 0, "a destroyed region's checkpoints are released");
    const again = throws(CheckpointError, () => g.releaseCheckpoint(first), "release after its region was destroyed");
    assert(again.message === gone.message && /was released when region \d+ was destroyed/.test(gone.message), again.message);
    return `${gone.name}: ${gone.message}`;
  });

  await check("rollback: migrate refuses a block born after the checkpoint (bump, blocks, slab)", () => {
    const made = [];
    for (const options of [{}, { allocator: Allocator.BLOCKS }, { allocator: Allocator.SLAB, classSize: 64 }]) {
      const players = g.createRegion(RegionKind.OBJECT_ARENA, 1 << 16, options);
      made.push(players);
      const hp = g.alloc(players, 64);
      g.write(hp, new Uint8Array([1, 2, 3]));
      const frame = g.checkpoint([players]);
      const hp2 = g.alloc(players, 64);
      const remap = g.rollback(frame).get(players);
      assert(remap.migrate(hp2) === null, `${JSON.stringify(options)}: born after the checkpoint`);
      const kept = remap.migrate(hp);
      assert(kept !== null && g.read(kept, 3).join() === "1,2,3", "a block live at the checkpoint migrates");
      const inside = tvm.packHandle(players, tvm.unpackHandle(hp).generation, tvm.unpackHandle(hp).offset + 63);
      assert(remap.migrate(inside) !== null, "an offset inside a live block migrates");
      g.alloc(players, 64);
      assert(remap.migrate(hp2) === null, "still refused once a later alloc makes the offset live");
      g.releaseCheckpoint(frame);
    }
    for (const id of made) g.destroyRegion(id);
  });

  // ---------------------------------------------------------------- checkpoint cases from the Python driver
  const checkpointResults = [];
  if (checkpointCases) {
    await check("checkpoint cases: exact bytes after each rollback (compared with the Python driver by the test)", async () => {
      const fresh = await instantiate();
      let rollbacks = 0;
      for (const c of checkpointCases) {
        const out = runCheckpointCase(tvm, fresh, c);
        rollbacks += out.filter((o) => "same" in o).length;
        const wrong = out.findIndex((o) => o.same === false);
        assert(wrong < 0, `case ${checkpointResults.length} op ${wrong}: bytes differ from those read at the checkpoint`);
        checkpointResults.push(out);
      }
      return `${checkpointCases.length} cases, ${rollbacks} rollbacks`;
    });
  }

  // ---------------------------------------------------------------- property cases from the Python model
  const caseResults = [];
  if (cases) {
    await check("property cases (compared with the Python model by the test)", async () => {
      const fresh = await instantiate(); // the Python side starts from a fresh instance too
      const cold = await ColdTier.open(fresh, { directory: "tvm-cold-cases" });
      for (const c of cases) caseResults.push(await runCase(tvm, fresh, c, cold));
      return `${cases.length} cases`;
    });
  }

  // ---------------------------------------------------------------- figures
  await check("figures: a view of 1,000,000 doubles", () => {
    const n = 1000000;
    const r = g.createRegion(RegionKind.BLOB_ARENA, 8 * n);
    const view = g.view(g.alloc(r, 8 * n), "f64", n);
    const array = view.array;
    for (let i = 0; i < n; i++) array[i] = i;
    t0 = performance.now();
    const a = view.array;
    let sum = 0;
    for (let i = 0; i < n; i++) sum += a[i];
    figures.viewSumMs = performance.now() - t0;
    t0 = performance.now();
    let sum2 = 0;
    for (let i = 0; i < n; i++) sum2 += view.get(i);
    figures.viewGetMs = performance.now() - t0;
    assert(sum === (n * (n - 1)) / 2 && sum2 === sum, `sum ${sum} ${sum2}`);
    g.destroyRegion(r);
  });

  return { results, cases: caseResults, checkpointCases: checkpointResults, figures };
}

// One generated case: a sequence of operations; the outcome of each is recorded.
async function runCase(tvm, g, c, cold) {
  const out = [];
  const ids = [];
  const handles = [];
  const bigint = (v) => (typeof v === "string" ? BigInt(v) : v);
  for (const op of c.ops) {
    const missing = ["alloc", "destroy", "spill", "fault"].includes(op.op) ? !ids[op.region] : op.op === "typed" ? !handles[op.handle] : false;
    if (missing) { // refers to a create or alloc that failed
      out.push({ skipped: true });
      if (op.op === "alloc") handles.push(0n);
      continue;
    }
    try {
      if (op.op === "create") {
        const options = op.allocator === 2 ? { allocator: 2, classSize: op.classSize } : { allocator: op.allocator };
        const id = g.createRegion(op.kind, bigint(op.capacity), options);
        ids.push(id);
        const info = g.regionInfo(id);
        out.push({ id, pool: info.pool, base: info.base, capacity: info.capacity });
      } else if (op.op === "alloc") {
        const h = g.alloc(ids[op.region], bigint(op.size), { align: op.align });
        handles.push(h);
        out.push({ offset: tvm.unpackHandle(h).offset });
      } else if (op.op === "typed") {
        const Class = { u8: Uint8Array, i8: Int8Array, u8c: Uint8ClampedArray, u16: Uint16Array, i16: Int16Array,
          u32: Uint32Array, i32: Int32Array, f32: Float32Array, f64: Float64Array, u64: BigUint64Array,
          i64: BigInt64Array }[op.type];
        const h = handles[op.handle];
        const values = new Class(op.count);
        const bytes = new Uint8Array(values.buffer);
        for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + op.seed) & 0xff;
        g.write(h, values); // by bytes
        const back = g.readAs(h, op.type, op.count);
        const same = new Uint8Array(back.buffer).every((b, i) => b === bytes[i]);
        const view = g.view(h, op.type, op.count);
        const grew = g.createRegion(4, op.growBy); // a SCRATCH region: may grow a pool while the view is held
        let viewSame = true;
        for (let i = 0; i < op.count; i++) {
          const a = view.get(i);
          const b = values[i];
          if (!(a === b || (Number.isNaN(a) && Number.isNaN(b)))) viewSame = false;
        }
        g.destroyRegion(grew);
        let hash = 0;
        for (const b of g.read(h, bytes.length)) hash = (Math.imul(hash, 31) + b) >>> 0;
        out.push({ same, viewSame, hash });
      } else if (op.op === "spill") {
        await cold.spill(ids[op.region]);
        out.push({ spilled: true });
      } else if (op.op === "fault") {
        const id = ids[op.region];
        if (cold.isCold(id) && op.corrupt !== "none") {
          const file = await cold.dir.getFileHandle(tvm.ColdTier.fileName(id, g.regionInfo(id).generation));
          const size = (await file.getFile()).size;
          const writable = await file.createWritable({ keepExistingData: true });
          if (op.corrupt === "flip") {
            const at = 44 + ((id * 7919) % Math.max(1, size - 44));
            const old = new Uint8Array(await (await file.getFile()).slice(at, at + 1).arrayBuffer());
            await writable.write({ type: "write", position: at, data: new Uint8Array([old[0] ^ 0x10]) });
          } else {
            await writable.truncate(size - 1);
          }
          await writable.close();
        }
        if (await cold.fault(id)) {
          const info = g.regionInfo(id);
          out.push({ faulted: true, pool: info.pool, base: info.base });
        } else {
          g.regionInfo(id);
          out.push({ faulted: false });
        }
      } else if (op.op === "destroy") {
        g.destroyRegion(ids[op.region]);
        out.push({ destroyed: true });
      }
    } catch (error) {
      out.push({ error: error.name });
      if (op.op === "create") ids.push(0);
      if (op.op === "alloc") handles.push(0n);
    }
  }
  for (const id of ids) {
    if (id) {
      try { g.destroyRegion(id); } catch { /* destroyed by the case */ }
    }
  }
  return out;
}

// One generated checkpoint case: every rollback compares the region's bytes with a copy read (through
// `read`, not the checkpoint) when its checkpoint was taken; outcomes are compared with the Python driver.
function runCheckpointCase(tvm, g, c) {
  const out = [];
  const ids = [];
  const checkpoints = []; // [{checkpoint, copies: Map(id -> bytes)}]
  const hash = (bytes) => { let h = 0; for (const b of bytes) h = (Math.imul(h, 31) + b) >>> 0; return h; };
  const whole = (id) => g.read(tvm.packHandle(id, g.regionInfo(id).generation, 0), g.regionInfo(id).capacity);
  for (const op of c.ops) {
    const id = op.region === undefined ? 0 : ids[op.region];
    try {
      if (op.op === "create") {
        ids.push(g.createRegion(tvm.RegionKind.BLOB_ARENA, op.capacity));
        out.push({ id: ids[ids.length - 1] });
      } else if (op.op === "write") {
        const data = new Uint8Array(op.length).map((_, i) => (i * 131 + op.seed) & 0xff);
        g.write(tvm.packHandle(id, g.regionInfo(id).generation, op.offset), data);
        out.push({ ok: true });
      } else if (op.op === "discard") {
        g.discard(tvm.packHandle(id, g.regionInfo(id).generation, op.offset), op.length);
        out.push({ ok: true });
      } else if (op.op === "alloc") {
        out.push({ offset: tvm.unpackHandle(g.alloc(id, op.size, { align: 8 })).offset });
      } else if (op.op === "checkpoint") {
        const regions = op.regions.map((k) => ids[k]);
        const checkpoint = g.checkpoint(regions);
        checkpoints.push({ checkpoint, copies: new Map(regions.map((r) => [r, whole(r)])) });
        out.push({ pages: checkpoint.pagesCopied });
      } else if (op.op === "rollback" || op.op === "release") {
        const entry = checkpoints[op.checkpoint];
        if (op.op === "release") {
          g.releaseCheckpoint(entry.checkpoint);
          out.push({ released: true });
        } else {
          const remaps = g.rollback(entry.checkpoint);
          let same = true;
          for (const [r, copy] of entry.copies) {
            const now = whole(r);
            same = same && now.length === copy.length && now.every((b, i) => b === copy[i]);
          }
          const generations = Object.fromEntries([...remaps].map(([r, m]) => [r, [m.oldGeneration, m.newGeneration]]));
          // Which probe offsets migrate (the Python driver's answers are the model's rule).
          const migrates = Object.fromEntries([...remaps].map(([r, m]) => [r, MIGRATE_PROBES.filter(
            (offset) => offset < g.regionInfo(r).capacity && m.migrate(tvm.packHandle(r, m.oldGeneration, offset)) !== null)]));
          out.push({ same, generations, migrates, hashes: [...entry.copies.keys()].map((r) => hash(whole(r))) });
        }
      } else if (op.op === "clear") {
        g.clearDirty(id);
        out.push({ cleared: true });
      } else if (op.op === "protect") {
        g.protect(id, op.readOnly);
        out.push({ readOnly: op.readOnly });
      } else if (op.op === "destroy") {
        g.destroyRegion(id);
        out.push({ destroyed: true });
      }
    } catch (error) {
      if (!(error instanceof tvm.TvmError || error instanceof RangeError || error instanceof TypeError)) throw error;
      out.push({ error: error.name });
      if (op.op === "checkpoint") checkpoints.push({ checkpoint: null, copies: new Map() });
    }
  }
  for (const id of ids) {
    try { g.destroyRegion(id); } catch { /* destroyed by the case */ }
  }
  return out;
}
