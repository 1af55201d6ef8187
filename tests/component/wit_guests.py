"""Guests and helpers for the component-path tests.

* the **proxy** guest re-exports every ``tvm:memory`` function and forwards each
  call to its import, so Python drives the host through a real guest;
* the **scenario** guest is hand-written WAT that runs a whole workflow inside
  wasm and reads results at their canonical-ABI offsets itself;
* the **raw** guest is a core module on the raw ``tvm`` ABI, for coexistence;
* ``WitDirectory`` drives a host only through the proxy guest, with the Python
  API's method names, so the cross-layer machines run the WIT path as a layer.
"""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path
from typing import Any

from wasmtime.component import Record, Variant

from tvm_wasm import Allocator, Bump, Freelist, Handle, RegionInfo, RegionKind, RegionMetrics, RollbackRemap, Slab
from tvm_wasm.host.component import ComponentGuest
from tvm_wasm.host.component_build import REALLOC_WAT, RESULT_AREA, CoreAbi, build_proxy
from tvm_wasm.host.component_values import case_name, field
from tvm_wasm.host.tvm_host import TvmHost

SCENARIO_WIT = """package tvm:test;

world scenario {
    include tvm:memory/tvm-guest@0.1.0;
    /// The whole workflow inside the guest: 0 when every step passed, else the failing step.
    export run: func() -> u32;
}
"""

PAYLOAD = b"component path!!"  # 16 bytes, in the scenario guest's data segment at 0x400


def scenario_wat(abi: CoreAbi) -> str:
    """A guest that creates, writes, reads back, checks, destroys, and sees the stale handle.

    Offsets are the canonical ABI's: a result's discriminant at +0 and its
    payload at +8 (tvm-error is 8-aligned); inside a tvm-error payload the
    case discriminant is at +8 and its own payload at +16.
    """
    r = RESULT_AREA
    decls = "\n  ".join(
        abi.import_decl(interface, name, alias)
        for interface, name, alias in (
            ("manager", "create-region", "create"),
            ("manager", "alloc", "alloc"),
            ("manager", "describe-region", "describe"),
            ("manager", "destroy-region", "destroy"),
            ("bytes", "write", "write"),
            ("bytes", "read", "read"),
            ("diagnostics", "bytes-read-count", "read_count"),
        )
    )

    def expect(step: int, condition: str) -> str:
        return f"(if (i32.eqz {condition}) (then (return (i32.const {step}))))"

    ok = f"(i32.eqz (i32.load8_u (i32.const {r})))"
    return f"""(module
  {decls}
  (memory (export "cm32p2_memory") 1)
  (data (i32.const 0x400) "{PAYLOAD.decode()}")
  {REALLOC_WAT}
  (func (export "cm32p2||run") (result i32)
    (local $rid i32) (local $gen i32) (local $off i32) (local $ptr i32) (local $i i32)
    ;; 1: create-region(object-arena, 4096) -> ok(u16)
    (call $create (i32.const 1) (i32.const 4096) (i32.const {r}))
    {expect(1, ok)}
    (local.set $rid (i32.load16_u (i32.const {r + 8})))
    ;; 2: alloc(rid, 16) -> ok(handle{{region-id, generation, offset}})
    (call $alloc (local.get $rid) (i32.const 16) (i32.const {r}))
    {expect(2, ok)}
    {expect(2, f"(i32.eq (i32.load16_u (i32.const {r + 8})) (local.get $rid))")}
    (local.set $gen (i32.load16_u (i32.const {r + 10})))
    (local.set $off (i32.load (i32.const {r + 12})))
    ;; 3: write(handle, the data segment)
    (call $write (local.get $rid) (local.get $gen) (local.get $off) (i32.const 0x400) (i32.const 16) (i32.const {r}))
    {expect(3, ok)}
    ;; 4: read(handle, 16) -> ok(list) equal to what was written
    (call $read (local.get $rid) (local.get $gen) (local.get $off) (i32.const 16) (i32.const {r}))
    {expect(4, ok)}
    {expect(4, f"(i32.eq (i32.load (i32.const {r + 12})) (i32.const 16))")}
    (local.set $ptr (i32.load (i32.const {r + 8})))
    (block $same (loop $cmp
      (br_if $same (i32.eq (local.get $i) (i32.const 16)))
      {expect(4, "(i32.eq (i32.load8_u (i32.add (local.get $ptr) (local.get $i))) (i32.load8_u (i32.add (i32.const 0x400) (local.get $i))))")}
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $cmp)))
    ;; 5: describe-region -> region-info: id@8 generation@10 kind@12 capacity@16 used@20 residency@24
    (call $describe (local.get $rid) (i32.const {r}))
    {expect(5, ok)}
    {expect(5, f"(i32.eq (i32.load (i32.const {r + 16})) (i32.const 4096))")}
    {expect(5, f"(i32.eq (i32.load (i32.const {r + 20})) (i32.const 16))")}
    {expect(5, f"(i32.eq (i32.load8_u (i32.const {r + 12})) (i32.const 1))")}
    ;; 6: the counters saw the read
    {expect(6, "(i64.eq (call $read_count (local.get $rid)) (i64.const 16))")}
    ;; 7: destroy-region
    (call $destroy (local.get $rid) (i32.const {r}))
    {expect(7, ok)}
    ;; 8: the old handle is now stale: err(stale-handle) = case 1
    (call $read (local.get $rid) (local.get $gen) (local.get $off) (i32.const 16) (i32.const {r}))
    {expect(8, f"(i32.eq (i32.load8_u (i32.const {r})) (i32.const 1))")}
    {expect(8, f"(i32.eq (i32.load8_u (i32.const {r + 8})) (i32.const 1))")}
    ;; 9: describe -> err(region-not-found(rid)) = case 0 with the id as payload
    (call $describe (local.get $rid) (i32.const {r}))
    {expect(9, f"(i32.eq (i32.load8_u (i32.const {r})) (i32.const 1))")}
    {expect(9, f"(i32.eqz (i32.load8_u (i32.const {r + 8})))")}
    {expect(9, f"(i32.eq (i32.load16_u (i32.const {r + 16})) (local.get $rid))")}
    ;; 10: an unknown region counts nothing
    {expect(10, "(i64.eqz (call $read_count (local.get $rid)))")}
    (i32.const 0))
)"""


RAW_WAT = """(module
  (import "tvm" "read" (func $read (param i64 i32 i32) (result i32)))
  (import "tvm" "write" (func $write (param i64 i32 i32) (result i32)))
  (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
  (import "tvm" "last_error" (func $last_error (result i32)))
  (memory (export "memory") 2)
  (func (export "alloc") (param i32 i32) (result i64) (call $alloc (local.get 0) (local.get 1)))
  (func (export "last_error") (result i32) (call $last_error))
  ;; write `len` bytes of `byte` through h
  (func (export "fill_write") (param $h i64) (param $byte i32) (param $len i32) (result i32)
    (memory.fill (i32.const 0) (local.get $byte) (local.get $len))
    (call $write (local.get $h) (i32.const 0) (local.get $len)))
  ;; read `len` bytes through h; the error code, or 0x100 + their byte sum's low byte
  (func (export "read_sum") (param $h i64) (param $len i32) (result i32) (local $code i32) (local $i i32) (local $sum i32)
    (local.set $code (call $read (local.get $h) (i32.const 0x8000) (local.get $len)))
    (if (local.get $code) (then (return (local.get $code))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $sum (i32.add (local.get $sum) (i32.load8_u (i32.add (i32.const 0x8000) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.or (i32.const 0x100) (i32.and (local.get $sum) (i32.const 0xff))))
)"""


class Wit:
    """The proxy guest, one method per interface: ``wit.manager("alloc", rid, 16)``."""

    def __init__(self, guest: ComponentGuest) -> None:
        self.guest = guest

    def manager(self, name: str, *args: Any) -> Any:
        return self.guest.call(name, *args, interface="manager")

    def bytes(self, name: str, *args: Any) -> Any:
        return self.guest.call(name, *args, interface="bytes")

    def diagnostics(self, name: str, *args: Any) -> Any:
        return self.guest.call(name, *args, interface="diagnostics")


def is_err(value: Any) -> bool:
    return isinstance(value, Variant)


def ok(value: Any) -> Any:
    """The ok value of a result, failing the test with the error otherwise."""
    assert not isinstance(value, Variant), f"expected ok, got {describe(value)}"
    return value


def err(value: Any, case: str) -> Any:
    """The payload of an ``err(case)``."""
    assert isinstance(value, Variant), f"expected err({case}), got ok {describe(value)}"
    assert value.tag == case, f"expected err({case}), got {describe(value)}"
    return value.payload


def fields(value: Any) -> dict[str, Any]:
    """A record (or a plain value) as a dict, recursively, for assertions and messages."""
    if isinstance(value, Record):
        return {k: fields(v) for k, v in vars(value).items()}
    if isinstance(value, list):
        return [fields(v) for v in value]  # type: ignore[return-value]
    return value


def describe(value: Any) -> str:
    if isinstance(value, Variant):
        return f"{value.tag}({fields(value.payload)!r})"
    return repr(fields(value))


@functools.cache
def proxy_bytes() -> bytes:
    """The proxy guest component, built once per process (wasm-tools, well under a second)."""
    with tempfile.TemporaryDirectory() as workdir:
        return build_proxy(Path(workdir) / "proxy")


class WitCheckpoint:
    """A checkpoint taken through ``manager.checkpoint``: only its id crosses the interface."""

    def __init__(self, checkpoint_id: int, region_ids: list[int]) -> None:
        self.id = checkpoint_id
        self.region_ids = tuple(region_ids)


class WitDirectory:
    """A ``TvmHost`` driven only through ``tvm:memory`` calls of a real guest component.

    The methods are the Python API's (``write``, ``protect``, ``checkpoint``...) and raise its
    typed errors (``raise_errors=True`` maps each ``tvm-error`` case back), so a test written
    against the model runs the WIT path unchanged. Where the WIT has several functions for one
    model operation, the adapter spreads calls over all of them: ``copy`` goes through
    ``copy``, ``read-into`` and ``write-from`` in turn (the latter two when the side they leave
    unchecked is current); ``fill`` is a ``write`` of the repeated byte (the WIT has no fill).
    """

    def __init__(self, host: TvmHost) -> None:
        self.host = host
        self.guest = host.instantiate_component(proxy_bytes())
        self._copies = 0  # copies alternate between the three WIT functions that copy

    def close(self) -> None:
        self.host.close()

    def _manager(self, name: str, *args: Any) -> Any:
        return self.guest.call(name, *args, interface="manager", raise_errors=True)

    def _bytes(self, name: str, *args: Any) -> Any:
        return self.guest.call(name, *args, interface="bytes", raise_errors=True)

    # ---------------------------------------------------------------- manager
    def create_region(self, kind: RegionKind, capacity: int, allocator: Allocator | None = None) -> int:
        if allocator is None:
            return int(self._manager("create-region", case_name(kind), capacity))
        if isinstance(allocator, Slab):
            case = Variant("slab", allocator.class_size)
        else:
            case = Variant({Bump: "bump", Freelist: "freelist"}[type(allocator)], None)
        return int(self._manager("create-region-with", case_name(kind), capacity, case))

    def alloc(self, region_id: int, size: int) -> Handle:
        return self._manager("alloc", region_id, size)

    def dealloc(self, handle: Handle) -> None:
        self._manager("dealloc", handle)

    def region_info(self, region_id: int) -> RegionInfo:
        return self._manager("describe-region", region_id)

    def spill_region(self, region_id: int) -> None:
        self._manager("spill-region", region_id)

    def compact_region(self, region_id: int) -> Record:
        return self._manager("compact-region", region_id)

    def protect(self, region_id: int, read_only: bool = True) -> None:
        self._manager("protect", region_id, read_only)

    def destroy_region(self, region_id: int) -> None:
        self._manager("destroy-region", region_id)

    def is_read_only(self, region_id: int) -> bool:
        return bool(self._manager("is-read-only", region_id))

    def track_dirty(self, region_id: int, enabled: bool = True) -> None:
        self._manager("track-dirty", region_id, enabled)

    def dirty_pages(self, region_id: int) -> list[int]:
        return list(self._manager("dirty-pages", region_id))

    def tracks_dirty(self, region_id: int) -> bool:
        """Not a WIT function: ``dirty-pages`` answers ``policy-violation`` for an untracked region."""
        result = self.guest.call("dirty-pages", region_id, interface="manager")
        return not (isinstance(result, Variant) and result.tag == "policy-violation")

    def clear_dirty(self, region_id: int) -> None:
        self._manager("clear-dirty", region_id)

    def checkpoint(self, region_ids: list[int]) -> WitCheckpoint:
        return WitCheckpoint(int(self._manager("checkpoint", list(region_ids))), list(region_ids))

    def rollback(self, checkpoint: WitCheckpoint) -> dict[int, RollbackRemap]:
        """``rollback`` answers the regions moved to a new generation; their generation before is
        read first, the new one from ``describe-region``, as a guest would."""
        before = {rid: self.region_info(rid).generation for rid in checkpoint.region_ids
                  if rid in {info.id for info in self.host.list_regions()}}  # a destroyed one: rollback says why
        moved = self._manager("rollback", checkpoint.id)
        return {rid: RollbackRemap(rid, before[rid], self.region_info(rid).generation, self._restored_blocks(rid))
                for rid in moved}

    def _restored_blocks(self, rid: int):
        """WIT has no migrate (a guest rebuilds handles from ``describe-region``): the adapter's remap takes the
        model's rule, the blocks live in the layout just restored."""
        allocator = self.host._region(rid).allocator
        return allocator.live_test(allocator.layout_state())

    def release_checkpoint(self, checkpoint: WitCheckpoint) -> None:
        self._manager("release-checkpoint", checkpoint.id)

    def metrics(self, region_id: int) -> RegionMetrics:
        return self.guest.call("metrics-snapshot", region_id, interface="diagnostics", raise_errors=True)

    # ---------------------------------------------------------------- bytes
    def read(self, handle: Handle, length: int) -> bytes:
        return bytes(self._bytes("read", handle, length))

    def write(self, handle: Handle, data: bytes) -> None:
        self._bytes("write", handle, data)

    def fill(self, handle: Handle, length: int, byte: int) -> None:
        self._bytes("write", handle, bytes([byte]) * length)

    def _current(self, handle: Handle) -> bool:
        try:
            return self.region_info(handle.region_id).generation == handle.generation
        except Exception:  # noqa: BLE001 - an unknown region: let copy give the error
            return False

    def copy(self, src: Handle, dst: Handle, length: int) -> None:
        self._copies += 1
        path = self._copies % 3
        if path == 1 and self._current(dst):
            self._bytes("read-into", src, dst.region_id, dst.offset, length)
        elif path == 2 and self._current(src):
            self._bytes("write-from", src.region_id, src.offset, dst, length)
        else:
            self._bytes("copy", src, dst, length)

    def copy_region(self, src: int, src_offset: int, dst: int, dst_offset: int, length: int) -> None:
        self._bytes("copy-region", src, src_offset, dst, dst_offset, length)

    def discard(self, handle: Handle, length: int) -> None:
        self._bytes("discard", handle, length)
