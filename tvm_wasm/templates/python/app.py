"""A tvm:memory guest in Python, built with componentize-py.

Build (from this folder, after ``tvm-wasm template python .`` laid out ``wit/``):

    componentize-py -d wit -w example:guest/guest@0.1.0 componentize app -o guest.wasm

Each import returns its ``ok`` value or raises ``Err(tvm-error)``; an ``Err``
that leaves an export whose WIT result has the same error type becomes that
export's ``err``. Any other uncaught exception traps the guest (see the docs).
"""

from componentize_py_types import Err

import wit_world
from wit_world import Op, TourReport
from wit_world.imports import bytes as tvm_bytes
from wit_world.imports import diagnostics, manager, types


class WitWorld(wit_world.WitWorld):
    def stash(self, data: bytes) -> types.Handle:
        region = manager.create_region(types.RegionKind.BLOB_ARENA, max(len(data), 1))
        handle = manager.alloc(region, max(len(data), 1))
        tvm_bytes.write(handle, data)
        return handle

    def tour(self, message: bytes) -> TourReport:
        steps: list[str] = []
        size = len(message)
        try:
            region = manager.create_region(types.RegionKind.OBJECT_ARENA, 4096)
            steps.append(f"create: region {region}")
            first = manager.alloc(region, size)
            second = manager.alloc(region, size)
            steps.append(f"alloc: offsets {first.offset} and {second.offset}")
            tvm_bytes.write(first, message)
            steps.append(f"write: {size} bytes")
            if tvm_bytes.read(first, size) != message:
                raise Err("read: the bytes differ from what was written")
            steps.append(f"read: {size} bytes, equal")
            tvm_bytes.copy(first, second, size)
            steps.append(f"copy: to offset {second.offset}")
            info = manager.describe_region(region)
            steps.append(f"describe: {info.kind.name.lower().replace('_', '-')}, {info.used} of {info.capacity} bytes used")
            metrics = diagnostics.metrics_snapshot(region)
            steps.append(f"metrics: {metrics.bytes_written} bytes written, {metrics.bytes_read} read")
        except Err as failed:
            if isinstance(failed.value, str):
                raise
            raise Err(f"{steps[-1] if steps else 'start'} then failed: {failed.value}")
        # An error handled in the guest: a handle whose region is gone is refused, typed.
        scratch = manager.create_region(types.RegionKind.SCRATCH, 64)
        stale = manager.alloc(scratch, 8)
        manager.destroy_region(scratch)
        try:
            tvm_bytes.read(stale, 8)
            raise Err("a destroyed region's handle was accepted")
        except Err as refused:
            if not isinstance(refused.value, types.TvmError_StaleHandle):
                raise Err(f"expected stale-handle, got {refused.value}")
            steps.append(f"error handled: stale-handle ({refused.value.value.message})")
        return TourReport(region=region, copy=second, steps=steps)

    def repeat(self, what: Op, src: types.Handle, dst: types.Handle, len: int, count: int) -> int:
        total = 0
        if what == Op.COPY_REGION:
            for _ in range(count):
                tvm_bytes.copy_region(src.region_id, src.offset, dst.region_id, dst.offset, len)
            return 0
        for _ in range(count):
            data = tvm_bytes.read(src, len)
            total += data[0] if data else 0
            if what == Op.READ_WRITE:
                tvm_bytes.write(dst, data)
        return total
