// Each line below must fail to type-check: the declarations are precise enough to catch it.
import { instantiate, RegionKind, TypedView } from "./pkg/tvm-guest.js";
export async function wrong(): Promise<void> {
  const g = await instantiate();
  const id: string = g.createRegion(RegionKind.OBJECT_ARENA, 10); // an id is a number
  const handle: number = g.alloc(1, 8); // a handle is a bigint
  const view: TypedView<"f64"> = g.view(0n, "u32", 1); // a u32 view is not an f64 view
  const element: bigint = g.view(0n, "f64", 1).get(0); // f64 elements are numbers
  g.write(0n, [1, 2, 3]); // an Array is not bytes
  g.exports.alloc_aligned(1, 8); // three parameters
  g.rollback(g.checkpoint([1]).id); // a rollback takes the Checkpoint, not its number
  console.log(id, handle, view, element);
}
