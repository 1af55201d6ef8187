"""Run-time linking on wasmtime: separately built user modules import ``tvm.*`` and share regions."""

from __future__ import annotations

import pytest
import wasmtime

from tvm_wasm import Handle, RegionKind, StaleHandle

PRODUCER = """
(module
  (import "tvm" "memory" (memory 1))
  (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
  (import "tvm" "write" (func $write (param i64 i32 i32) (result i32)))
  (import "tvm" "store_u32" (func $store_u32 (param i64 i32 i32)))
  ;; a 16-byte record: a plain store into the shared default memory, then one write into the region
  (func (export "produce") (param $region i32) (param $tag i32) (result i64) (local $h i64)
    (local.set $h (call $alloc (local.get $region) (i32.const 16)))
    (i64.store (i32.const 512) (i64.const 0x0807060504030201))
    (drop (call $write (local.get $h) (i32.const 512) (i32.const 8)))
    (call $store_u32 (local.get $h) (i32.const 8) (local.get $tag))
    (local.get $h)))
"""

CONSUMER = """
(module
  (import "tvm" "memory" (memory 1))
  (import "tvm" "read" (func $read (param i64 i32 i32) (result i32)))
  (import "tvm" "load_u32" (func $load_u32 (param i64 i32) (result i32)))
  (import "tvm" "sum_u8" (func $sum_u8 (param i64 i32) (result i64)))
  (func (export "tag") (param $h i64) (result i32) (call $load_u32 (local.get $h) (i32.const 8)))
  (func (export "sum") (param $h i64) (result i64) (call $sum_u8 (local.get $h) (i32.const 8)))
  (func (export "fetch") (param $h i64) (result i32) (call $read (local.get $h) (i32.const 1024) (i32.const 16))))
"""


def test_producer_and_consumer_share_regions_through_one_module(make_guest):
    g = make_guest(pools=2, max_pages=4)
    producer, consumer = g.link(PRODUCER), g.link(CONSUMER)
    region = g.create_region(RegionKind.OBJECT_ARENA, 1024)
    h = g.call(producer, "produce", region, 0xABCD)
    assert Handle.unpack(h) == Handle(region, 1, 0)
    assert g.call(consumer, "tag", h) == 0xABCD
    assert g.call(consumer, "sum", h) == sum(range(1, 9))
    assert g.call(consumer, "fetch", h) == 0
    # both modules import the same default memory: the module's own
    assert bytes(g.guest_memory.read(g.store, 1024, 1040)) == bytes(range(1, 9)) + (0xABCD).to_bytes(8, "little")
    g.destroy_region(region)
    with pytest.raises(StaleHandle):
        g.call(consumer, "tag", h)
    assert g.call(consumer, "fetch", h) == 2


def test_a_user_module_asking_for_something_the_module_lacks_fails_to_link(make_guest):
    g = make_guest(pools=1, max_pages=4)
    with pytest.raises(ValueError, match="no_such_export"):  # a typed refusal, not a bare wasmtime error
        g.link('(module (import "tvm" "no_such_export" (func)))')
    with pytest.raises(ValueError, match="cannot link"):
        g.link('(module (import "tvm" "alloc" (func (param i32) (result i32))))')  # wrong signature
