"""The data plane never enters Python on resident regions: a 100,000-iteration guest loop
of typed loads and stores, reads, writes, bump and slab allocations leaves
``python_entries`` at zero, and computes exactly what NumPy predicts."""

from __future__ import annotations

import numpy as np
import pytest

from host_guests import Guest, abi_imports, require_binaryen
from tvm_wasm import Freelist, Handle, MemoryBackingStore, RegionKind, Residency, Slab

N = 100_000
SLOT_MASK = 0xFFF8  # 8-byte slots of a 64 KiB region

LOOP_GUEST = f"""(module
 {abi_imports(('alloc', 'dealloc', 'read', 'write', 'load_u32', 'load_i64', 'store_u32', 'store_i64'))}
 (memory (export "memory") 1)
 (global $bad (export "bad") (mut i32) (i32.const 0))
 (func $fail global.get $bad i32.const 1 i32.add global.set $bad)
 (func (export "mixed") (param $a i64) (param $b i64) (param $bump i32) (param $slab i32) (param $n i32) (result i64)
   (local $i i32) (local $off i32) (local $acc i64) (local $h i64)
   block $done
   loop $top
     local.get $i local.get $n i32.ge_u br_if $done
     local.get $i i32.const 3 i32.shl i32.const {SLOT_MASK} i32.and local.set $off
     ;; typed loads from A
     local.get $acc
     local.get $a local.get $off call $tvm_load_u32 i64.extend_i32_u i64.add
     local.get $a local.get $off call $tvm_load_i64 i64.add
     local.set $acc
     ;; read 8 bytes of A at off into guest memory, add them too
     local.get $a local.get $off i64.extend_i32_u i64.add i32.const 1024 i32.const 8 call $tvm_read
     if call $fail end
     local.get $acc i32.const 1024 i64.load i64.add local.set $acc
     ;; typed store of i into B, then write ~i right after it from guest memory
     local.get $b local.get $off local.get $i call $tvm_store_u32
     i32.const 2048 local.get $i i32.const -1 i32.xor i32.store
     local.get $b local.get $off i32.const 4 i32.add i64.extend_i32_u i64.add i32.const 2048 i32.const 4 call $tvm_write
     if call $fail end
     ;; bump allocation: 8 bytes at offset 8*i
     local.get $bump i32.const 8 call $tvm_alloc local.tee $h
     i64.const 0xFFFFFFFF i64.and
     local.get $i i32.const 3 i32.shl i64.extend_i32_u i64.ne
     local.get $h i64.eqz i32.or
     if call $fail end
     ;; slab: alloc, store, dealloc
     local.get $slab i32.const 16 call $tvm_alloc local.tee $h
     i64.eqz if call $fail end
     local.get $h i32.const 8 local.get $i i64.extend_i32_u call $tvm_store_i64
     local.get $h call $tvm_dealloc
     if call $fail end
     local.get $i i32.const 1 i32.add local.set $i
     br $top
   end
   end
   local.get $acc))"""


def _setup(host, *, warm: bool = False, bump_allocator=None, inline: bool = False):
    if inline:
        require_binaryen()
    g = Guest(host, host.instantiate(LOOP_GUEST, inline=inline))
    kind = RegionKind.PAGE_STORE if warm else RegionKind.OBJECT_ARENA
    a = host.create_region(kind, 65536)
    b = host.create_region(kind, 65536)
    bump = host.create_region(RegionKind.OBJECT_ARENA, 8 * N, allocator=bump_allocator)
    slab = host.create_region(RegionKind.OBJECT_ARENA, 16 * 4, allocator=Slab(16))
    data = np.random.default_rng(0).integers(0, 256, 65536, dtype=np.uint8)
    host.view(a)[:] = data
    return g, a, b, bump, slab, data


def _expected_acc(data: np.ndarray, n: int) -> int:
    offsets = (np.arange(n, dtype=np.int64) * 8) & SLOT_MASK
    u32 = data.view("<u4")[offsets // 4].astype(np.uint64)
    i64 = data.view("<u8")[offsets // 8]
    with np.errstate(over="ignore"):
        return int((u32.sum(dtype=np.uint64) + 2 * i64.sum(dtype=np.uint64)).astype(np.uint64))


@pytest.mark.parametrize("warm", [False, True], ids=["hot", "warm"])
@pytest.mark.parametrize("inline", [False, True], ids=["calls", "inlined"])
def test_hundred_thousand_accesses_enter_python_zero_times(make_host, warm, inline):
    host = make_host(backing=MemoryBackingStore())
    g, a, b, bump, slab, data = _setup(host, warm=warm, inline=inline)
    acc = g("mixed", Handle(a, 1, 0).to_i64(), Handle(b, 1, 0).to_i64(), bump, slab, N)
    assert host.python_entries == 0
    assert g.instance.exports(host.store)["bad"].value(host.store) == 0
    assert acc & (2**64 - 1) == _expected_acc(data, N)
    # B: slot k holds the last i with 8*i & mask == 8*k, then ~i
    slots = (SLOT_MASK + 8) // 8
    last = np.arange(N - slots, N, dtype=np.uint32)
    order = np.argsort(last % slots)
    expect_b = np.empty(slots * 2, dtype="<u4")
    expect_b[0::2] = last[order]
    expect_b[1::2] = ~last[order]
    assert np.array_equal(host.view(b).view("<u4"), expect_b)
    assert host.region_info(bump).used == 8 * N
    assert host.metrics(bump).allocations == N
    info = host.region_info(slab)
    assert info.used == 0 and host.metrics(slab).allocations == N
    assert int(host.view(slab)[8:16].view("<u8")[0]) == N - 1  # LIFO: always slot 0
    ma, mb = host.metrics(a), host.metrics(b)
    assert (ma.bytes_read, mb.bytes_written) == (N * 20, N * 8)
    assert host.region_info(a).residency is (Residency.WARM if warm else Residency.HOT)


def test_the_counter_counts_a_cold_region_fault(make_host):
    """Control: the same loop touching a Cold region enters Python exactly once."""
    host = make_host(backing=MemoryBackingStore())
    g, a, b, bump, slab, data = _setup(host)
    host.spill_region(b)
    g("mixed", Handle(a, 1, 0).to_i64(), Handle(b, 1, 0).to_i64(), bump, slab, 1000)
    assert host.python_entries == 1
    assert host.metrics(b).faults == 1


def test_the_counter_counts_freelist_slow_paths(make_host):
    """Control: Freelist allocation takes the Python slow path, once per call."""
    host = make_host()
    g, a, b, bump, slab, data = _setup(host, bump_allocator=Freelist())
    g("mixed", Handle(a, 1, 0).to_i64(), Handle(b, 1, 0).to_i64(), bump, slab, 500)
    assert host.python_entries == 500
    assert g.instance.exports(host.store)["bad"].value(host.store) == 0
