"""One small adapter per layer over the operations the model specifies, so a table of
inputs runs unchanged on the model, ``TvmHost``'s Python API, the raw ABI from a guest
and the self-contained module. Every adapter raises the layer's typed errors."""

from __future__ import annotations

import functools

import wasmtime

from tvm_wasm import Freelist, Handle, PlacementPolicy, RegionDirectory, RegionKind, Residency, TvmHost
from tvm_wasm.core.errors import error_for_code
from tvm_wasm.guest import build_module
from tvm_wasm.guest.instance import GuestInstance

# A user function spliced into the self-contained module: compact ``id`` ``n`` times in
# wasm (65,534 compactions from Python would take seconds); 0 or the first failing code.
COMPACT_N = """
(func (export "compact_n") (param $id i32) (param $n i32) (result i32) (local $code i32)
  (block $done (loop $more
    (br_if $done (i32.eqz (local.get $n)))
    (local.set $code (call $compact_region (local.get $id)))
    (br_if $done (local.get $code))
    (local.set $n (i32.sub (local.get $n) (i32.const 1)))
    (br $more)))
  (local.get $code))
"""


@functools.cache
def _guest_module() -> bytes:
    return build_module(pools=1, max_pages=16, user_wat=COMPACT_N).wasm


class ModelLayer:
    name = "model"
    checks_type = True  # raises the model's exact error classes

    def __init__(self) -> None:
        self.d = self._make()

    def _make(self) -> RegionDirectory:
        return RegionDirectory()

    def close(self) -> None:
        pass

    def create(self, kind: RegionKind, capacity: int, allocator=None) -> int:
        return self.d.create_region(kind, capacity, allocator=allocator)

    def create_immovable(self, kind: RegionKind, capacity: int, allocator=None) -> int:
        """What an imported region is in the model's terms: Hot, unspillable, immovable."""
        policy = PlacementPolicy(Residency.HOT, PlacementPolicy.for_kind(kind).pinnable, spillable=False, movable=False)
        return self.d.create_region(kind, capacity, allocator=allocator, policy=policy)

    def __getattr__(self, name: str):
        return getattr(self.d, name)

    def compact_times(self, region_id: int, n: int) -> None:
        for _ in range(n):
            self.d.compact_region(region_id)

    def state(self) -> object:
        return self.d.list_regions()


class HostLayer(ModelLayer):
    name = "host"

    def _make(self) -> TvmHost:
        return TvmHost(pools=1)

    def close(self) -> None:
        self.d.close()

    def create_immovable(self, kind: RegionKind, capacity: int, allocator=None) -> int:
        return self.d.imported_region(kind, capacity, allocator=allocator)


class RawAbiLayer(HostLayer):
    """Regions made through the Python API; data operations from a guest through the raw ABI."""

    name = "raw-abi"
    checks_type = False  # codes only: the raw ABI reports numbers

    GUEST = """(module
      (import "tvm" "read" (func $read (param i64 i32 i32) (result i32)))
      (import "tvm" "write" (func $write (param i64 i32 i32) (result i32)))
      (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
      (import "tvm" "dealloc" (func $dealloc (param i64) (result i32)))
      (import "tvm" "last_error" (func $last_error (result i32)))
      (memory (export "memory") 2)
      (func (export "read") (param i64 i32 i32) (result i32) local.get 0 local.get 1 local.get 2 call $read)
      (func (export "write") (param i64 i32 i32) (result i32) local.get 0 local.get 1 local.get 2 call $write)
      (func (export "alloc") (param i32 i32) (result i64) local.get 0 local.get 1 call $alloc)
      (func (export "dealloc") (param i64) (result i32) local.get 0 call $dealloc)
      (func (export "last_error") (result i32) call $last_error))"""

    def __init__(self) -> None:
        super().__init__()
        self.g = self.d.instantiate(self.GUEST)

    def _call(self, name: str, *args: int) -> int:
        return int(self.d.call(self.g, name, *args))  # type: ignore[arg-type]

    def _code(self, code: int, what: str) -> None:
        if code:
            raise error_for_code(code, what)

    def alloc(self, region_id: int, size: int) -> Handle:
        packed = self._call("alloc", region_id, size)
        if packed == 0:
            raise error_for_code(self._call("last_error"), "alloc")
        return Handle.unpack(packed)

    def dealloc(self, handle: Handle) -> None:
        self._code(self._call("dealloc", handle.to_i64()), "dealloc")

    def read(self, handle: Handle, length: int) -> bytes:
        if not 0 <= length <= 65536:
            raise ValueError(f"length={length} does not fit the guest buffer")
        self._code(self._call("read", handle.to_i64(), 0, length), "read")
        memory = self.g.exports(self.d.store)["memory"]
        return bytes(memory.read(self.d.store, 0, length))

    def write(self, handle: Handle, data: bytes) -> None:
        memory = self.g.exports(self.d.store)["memory"]
        memory.write(self.d.store, data, 0)
        self._code(self._call("write", handle.to_i64(), 0, len(data)), "write")


class GuestModuleLayer:
    """The self-contained module, driven through ``GuestInstance`` (codes become typed errors)."""

    name = "guest-module"
    checks_type = False

    def __init__(self) -> None:
        self.g = GuestInstance(_guest_module())

    def close(self) -> None:
        self.g.close()

    def create(self, kind: RegionKind, capacity: int, allocator=None) -> int:
        return self.g.create_region(kind, capacity, allocator=allocator, max_blocks=8 if allocator else 0)

    def destroy_region(self, region_id: int) -> None:
        self.g.destroy_region(region_id)

    def compact_times(self, region_id: int, n: int) -> None:
        code = int(self.g.raw("compact_n", region_id, n))  # type: ignore[arg-type]
        if code:
            raise error_for_code(self.g.last_error(), "compact_region", region_id=region_id)

    def state(self) -> object:
        return [self.g.region_info(r) for r in range(1, 8) if self._live(r)]

    def _live(self, region_id: int) -> bool:
        return self.g.raw("region_generation", region_id) != -1 or self.g.last_error() == 0

    def __getattr__(self, name: str):
        aliases = {"compact_region": "compact_region", "demote_region": "demote_region", "pin": "pin",
                   "unpin": "unpin", "promote_region": "promote_region", "alloc": "alloc", "dealloc": "dealloc",
                   "read": "read", "write": "write", "region_info": "region_info"}
        if name not in aliases:
            raise AttributeError(name)
        return getattr(self.g, aliases[name])


LAYERS = [ModelLayer, HostLayer, RawAbiLayer, GuestModuleLayer]
