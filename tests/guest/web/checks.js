// The JavaScript side of the guest-module acceptance tests, shared by the headless
// Chromium page and the Node runner: every check runs against `tvm-guest.js` and a module
// built with 3 pools of at most 256 pages each.
//
// runChecks(tvmGuest, guestBytes, userBytes) -> [{name, ok, detail}]

const PAGE = 65536;
const MAX_PAGES = 256;

export async function runChecks(tvm, guestBytes, userBytes) {
  const { instantiate, RegionKind, Allocator, Residency, TvmError, ErrorCode, packHandle, unpackHandle } = tvm;
  const results = [];
  const check = async (name, fn) => {
    try {
      const detail = await fn();
      results.push({ name, ok: true, detail: detail ?? "" });
    } catch (error) {
      results.push({ name, ok: false, detail: `${error && error.stack ? error.stack : error}` });
    }
  };
  const assert = (cond, message) => {
    if (!cond) throw new Error(`assertion failed: ${message}`);
  };
  const expectCode = (code, fn, message) => {
    try {
      fn();
    } catch (error) {
      if (error instanceof TvmError && error.code === code) return;
      throw new Error(`${message}: expected TvmError code ${code}, got ${error}`);
    }
    throw new Error(`${message}: expected TvmError code ${code}, nothing was thrown`);
  };

  const module = await WebAssembly.compile(guestBytes);
  const g = await instantiate(module);
  const x = g.exports;

  await check("the module imports nothing and exports its pools", () => {
    assert(WebAssembly.Module.imports(module).length === 0, "no imports");
    assert(g.pools === 3, `3 pools, saw ${g.pools}`);
    assert(x.mem0 instanceof WebAssembly.Memory && x.memory instanceof WebAssembly.Memory, "memories exported");
    return `${WebAssembly.Module.exports(module).length} exports`;
  });

  // r1 and r3 share pool 0 (adjacent spans); big fills pool 1 (pool 0 has no room for it).
  const r1 = g.createRegion(RegionKind.OBJECT_ARENA, 1000);
  const big = g.createRegion(RegionKind.BLOB_ARENA, MAX_PAGES * PAGE - 512);
  const r3 = g.createRegion(RegionKind.OBJECT_ARENA, 1000);

  await check("placement: pools grow on demand, regions pack in spans", () => {
    const [i1, ib, i3] = [g.regionInfo(r1), g.regionInfo(big), g.regionInfo(r3)];
    assert(i1.pool === 0 && i1.base === 0, `r1 at pool ${i1.pool} base ${i1.base}`);
    assert(ib.pool === 1 && ib.base === 0, `big at pool ${ib.pool} base ${ib.base}`);
    assert(i3.pool === 0 && i3.base === 1008, `r3 at pool ${i3.pool} base ${i3.base}`);
    assert(x.mem1.buffer.byteLength === MAX_PAGES * PAGE, "pool 1 grew to its maximum");
    assert(x.mem2.buffer.byteLength === PAGE, "pool 2 untouched");
    expectCode(ErrorCode.ALLOCATION_FAILED, () => g.createRegion(RegionKind.BLOB_ARENA, MAX_PAGES * PAGE + 1), "larger than a pool");
  });

  await check("round trip: view -> read, write -> view, typed access", () => {
    const h = g.alloc(r1, 64);
    const view = g.regionBytes(r1);
    for (let i = 0; i < 64; i++) view[i] = (i * 7) & 0xff;
    assert(x.read(h, 256, 64) === 0, "read");
    const guest = new Uint8Array(x.memory.buffer, 256, 64);
    for (let i = 0; i < 64; i++) assert(guest[i] === ((i * 7) & 0xff), `byte ${i}`);
    guest.fill(0x42);
    assert(x.write(h, 256, 64) === 0, "write");
    assert(g.read(h, 64).every((b) => b === 0x42), "bytes written");
    x.store_u32(h, 4, 0xdeadbeef | 0);
    assert(x.load_u32(h, 4) >>> 0 === 0xdeadbeef, "u32");
    x.store_i64(h, 8, -5n);
    assert(x.load_i64(h, 8) === -5n, "i64");
    assert(x.sum_u8(h, 4) === 0x42n * 4n, "SIMD reducer");
    const { regionId, generation, offset } = unpackHandle(h);
    assert(regionId === r1 && generation === 1 && offset === 0, "handle fields");
  });

  await check("isolation inside one pool: a handle never reaches the neighbour", () => {
    const neighbour = g.regionBytes(r3);
    neighbour.fill(0x5a);
    const h = packHandle(r1, 1, 0);
    x.store_u8(h, 999, 0xee); // the last byte of r1
    for (const off of [1000, 1008, 1100]) {
      expectCode(ErrorCode.OUT_OF_BOUNDS, () => g.guard(() => x.store_u8(h, off, 1)), `store at ${off}`);
      expectCode(ErrorCode.OUT_OF_BOUNDS, () => g.guard(() => x.load_u8(h, off)), `load at ${off}`);
    }
    assert(x.write(packHandle(r1, 1, 990), 0, 20) === ErrorCode.OUT_OF_BOUNDS, "write across the end");
    assert(x.last_error() === ErrorCode.OUT_OF_BOUNDS, "last_error");
    expectCode(ErrorCode.OUT_OF_BOUNDS, () => g.handleBytes(packHandle(r1, 1, 1000), 1), "view past the end");
    assert(g.regionBytes(r3).every((b) => b === 0x5a), "the neighbour is untouched");
    assert(g.regionBytes(r1)[999] === 0xee, "last byte written");
  });

  await check("isolation across pools, and the far end of a full pool", () => {
    const hb = packHandle(big, 1, 0);
    const cap = MAX_PAGES * PAGE - 512;
    x.store_u8(hb, 0, 0x11);
    x.store_u8(hb, cap - 1, 0x99);
    expectCode(ErrorCode.OUT_OF_BOUNDS, () => g.guard(() => x.store_u8(hb, cap, 0)), "one past the end");
    const view = g.regionBytes(big);
    assert(view[0] === 0x11 && view[cap - 1] === 0x99, "sentinels");
    assert(g.regionBytes(r1)[0] !== 0x11 || g.regionInfo(r1).pool !== 1, "pool 0 is not pool 1");
    assert(x.copy(packHandle(big, 1, cap - 1), packHandle(r3, 1, 0), 1) === 0, "copy across pools");
    assert(g.regionBytes(r3)[0] === 0x99, "copied");
    assert(x.load_u8_p1(hb, cap - 1) === 0x99, "per-pool helper");
    expectCode(ErrorCode.OTHER, () => g.guard(() => x.load_u8_p0(hb, 0)), "wrong pool for the per-pool helper");
  });

  await check("stale handles after destroy", () => {
    const h = packHandle(r3, 1, 0);
    g.destroyRegion(r3);
    assert(x.read(h, 0, 4) === ErrorCode.STALE, "read");
    assert(x.last_error() === ErrorCode.STALE, "last_error");
    expectCode(ErrorCode.STALE, () => g.guard(() => x.load_u32(h, 0)), "typed load traps");
    expectCode(ErrorCode.STALE, () => g.handleBytes(h, 4), "no view");
    expectCode(ErrorCode.NOT_FOUND, () => g.destroyRegion(r3), "destroy twice");
    const again = g.createRegion(RegionKind.OBJECT_ARENA, 1000);
    assert(again !== r3 && g.regionInfo(again).base === 1008, "the span is reused under a new id");
    assert(g.regionBytes(again).every((b) => b === 0), "and zeroed");
  });

  await check("compaction remaps; old handles fail until migrated", () => {
    const r = g.createRegion(RegionKind.OBJECT_ARENA, 4096, { allocator: Allocator.BLOCKS });
    const hs = [0, 1, 2].map((i) => {
      const h = g.alloc(r, 100);
      g.write(h, new Uint8Array(100).fill(i + 1));
      return h;
    });
    g.dealloc(hs[0]);
    g.compactRegion(r);
    assert(g.regionInfo(r).generation === 2, "generation bumped");
    expectCode(ErrorCode.STALE, () => g.read(hs[1], 100), "old handle");
    const moved = g.migrate(hs[1]);
    assert(unpackHandle(moved).offset === 0 && unpackHandle(moved).generation === 2, "moved to 0");
    assert(g.read(moved, 100).every((b) => b === 2), "bytes moved with it");
    assert(g.read(g.migrate(hs[2]), 100).every((b) => b === 3), "second block");
    expectCode(ErrorCode.STALE, () => g.migrate(hs[0]), "a freed block has no new home");
  });

  await check("pin, tiers and the LRU hint", () => {
    const heap = g.createRegion(RegionKind.HOT_HEAP, 64);
    const store = g.createRegion(RegionKind.PAGE_STORE, 64);
    g.pin(heap);
    expectCode(ErrorCode.PINNED, () => g.demoteRegion(heap), "pinned");
    expectCode(ErrorCode.OTHER, () => g.pin(store), "not pinnable");
    assert(g.regionInfo(store).residency === Residency.WARM, "page stores start Warm");
    assert(g.lruCandidate() === store, "Warm goes first");
    g.promoteRegion(store);
    assert(g.regionInfo(store).residency === Residency.HOT && g.metrics(store).promotions === 1, "promoted");
    g.unpin(heap);
  });

  await check("run-time linking: a user module imports tvm.* and tvm.memory", async () => {
    const user = await g.link(userBytes);
    const r = g.createRegion(RegionKind.OBJECT_ARENA, 256);
    const sum = user.exports.fill_and_sum(r, 100);
    assert(sum === (100 * 101) / 2, `sum ${sum}`);
    assert(g.read(packHandle(r, 1, 0), 3).join() === "1,2,3", "bytes in the region");
    assert(new Uint8Array(x.memory.buffer)[4096 + 99] === 100, "the user's memory is the module's default memory");
    expectCode(ErrorCode.OUT_OF_BOUNDS, () => g.guard(() => user.exports.peek(packHandle(r, 1, 256))), "trap via user");
  });

  return results;
}
