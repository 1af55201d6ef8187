// Type-checked against the generated tvm-guest.d.ts by tests/guest/test_web_package.py (tsc --strict).
import { instantiate, RegionKind, Allocator, ColdTier, TvmError, StaleHandle, TypedView, isSupported, Checkpoint, CheckpointError, RollbackRemap, HandleRemap } from "./pkg/tvm-guest.js";

async function main(): Promise<number> {
  const support = isSupported();
  if (!support.ok) throw new Error(support.missing.join());
  const g = await instantiate();
  const r: number = g.createRegion(RegionKind.OBJECT_ARENA, 1 << 20, { allocator: Allocator.FREELIST });
  const h: bigint = g.alloc(r, 64, { align: 16 });
  const v: TypedView<"f64"> = g.view(h, "f64", 8);
  const x: number = v.get(0);
  const big: TypedView<"i64"> = g.view(h, "i64", 8);
  const y: bigint = big.get(0);
  const arr: Float64Array = g.readAs(h, "f64", 2);
  g.write(h, new Float32Array(4));
  const info = g.regionInfo(r);
  const m = g.metrics(r);
  const off = g.onGrow(({ pool, newBytes }) => console.log(pool, newBytes));
  off();
  const n: number = g.exports.region_count();
  const hh: bigint = g.exports.alloc_aligned(r, 8, 8);
  const remap: HandleRemap = g.compactRegion(r);
  const kept: bigint | null = remap.migrate(h);
  const moves: ReadonlyMap<number, number> = remap.mapping;
  const regenerated: number = remap.newGeneration - remap.oldGeneration + remap.regionId + moves.size;
  const current: bigint = g.migrate(kept ?? h);
  const cold = await ColdTier.open(g, { budget: 1 << 20 });
  await cold.spill(r);
  await cold.fault(r);
  const cp: Checkpoint = g.checkpoint([r]);
  const copied: number = cp.pagesCopied + cp.bytesCopied + cp.regionIds[0];
  const remaps: Map<number, RollbackRemap> = g.rollback(cp);
  const moved: bigint | null = remaps.get(r)?.migrate(h) ?? null;
  g.releaseCheckpoint(g.checkpoints()[0]);
  try { g.rollback(cp); } catch (e) { if (e instanceof CheckpointError && e.code === 9) return copied + Number(moved); }
  try { g.read(h, 4); } catch (e) { if (e instanceof StaleHandle && e.code === 2 && e.regionId !== undefined) return 1; if (e instanceof TvmError) return e.code; }
  return x + Number(y) + arr[0] + info.capacity + m.faults + n + Number(hh) + regenerated + Number(current);
}
export { main };
