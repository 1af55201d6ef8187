"""The typed load's one compare (fast key and bounds at once) passes exactly what the model allows.

``layout``'s fast keys argue that ``(h ^ key) + off + width <= capacity`` (unsigned, 64-bit) holds only
for a live, resident handle of the slot's generation and pool whose bytes fit: no wrap, no stale or
future generation, no other region. The property test checks that argument over the whole handle space
(edges first); the layer tests check the wasm that implements it, called and inlined, on the host and in
the self-contained module, with forged handles at the places a wrap or a carry would let one through.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvm_wasm import Freelist, Handle, OutOfBounds, RegionKind, RegionNotFound, StaleHandle, TvmHost
from tvm_wasm.linker import link
from tvm_wasm.runtime import layout as L

ARENA = RegionKind.OBJECT_ARENA
MASK64 = (1 << 64) - 1


def passes(h: int, off: int, width: int, key: int, capacity: int) -> bool:
    """The fast path's compare, as the runtime's wasm computes it (``access.keyed_fits_compare``)."""
    return ((h ^ key) + off + width) & MASK64 <= capacity


def edge(bits: int) -> st.SearchStrategy[int]:
    top = (1 << bits) - 1
    return st.one_of(st.sampled_from([0, 1, 2, top - 1, top, 1 << (bits - 1), (1 << (bits - 1)) - 1]),
                     st.integers(0, top))


@settings(max_examples=3000, deadline=None)
@given(region=edge(16), generation=edge(16), capacity=edge(32), live=st.sampled_from(["fast", "no_key", "zeroed"]),
       h_generation=edge(16), offset=edge(32), off=edge(32), width=st.sampled_from([1, 2, 4, 8]))
def test_the_compare_passes_only_what_the_model_allows(region, generation, capacity, live, h_generation, offset,
                                                       off, width):
    if live == "zeroed" and region == L.RESERVED_KEY_SLOT:
        live = "no_key"  # its keys are written when the table is made
    state = generation | L.FLAG_LIVE | L.FLAG_RESIDENT
    key = {"fast": L.fast_key(region, state, 0, 0), "no_key": L.no_key(region), "zeroed": 0}[live]
    if live == "zeroed" or region == 0:
        capacity = 0  # a slot never written; region 0 never exists
    h = Handle(region, h_generation, offset).to_i64() & MASK64
    if passes(h, off, width, key, capacity):
        assert live == "fast" and h_generation == generation and offset + off + width <= capacity


@pytest.mark.parametrize("region", [1, 0x7FFF, 0xFFFE])
def test_a_fast_key_is_the_handles_upper_half_and_no_key_matches_nothing(region):
    state = 7 | L.FLAG_LIVE | L.FLAG_RESIDENT
    assert L.fast_key(region, state, 1, 1) == Handle(region, 7, 0).to_i64() & MASK64
    assert L.fast_key(region, state, 1, 0) == L.no_key(region)  # another pool
    assert L.fast_key(region, 7 | L.FLAG_LIVE, 0, 0) == L.no_key(region)  # not resident
    assert (L.no_key(region) ^ (Handle(region, 7, 0).to_i64() & MASK64)) >> 48 == 1


LOADER = """(module
 (import "tvm" "load_u8" (func $ld8 (param i64 i32) (result i32)))
 (import "tvm" "load_u32" (func $ld32 (param i64 i32) (result i32)))
 (import "tvm" "load_i64" (func $ld64 (param i64 i32) (result i64)))
 (memory (export "memory") 1)
 (func (export "get1") (param $h i64) (param $off i32) (result i64) (i64.extend_i32_u (call $ld8 (local.get $h) (local.get $off))))
 (func (export "get4") (param $h i64) (param $off i32) (result i64) (i64.extend_i32_u (call $ld32 (local.get $h) (local.get $off))))
 (func (export "get8") (param $h i64) (param $off i32) (result i64) (call $ld64 (local.get $h) (local.get $off)))
)"""


class Layer:
    """A deployment (``TvmHost`` or ``GuestInstance``: the same calls) and the loader instance in it."""

    def __init__(self, api, instance) -> None:  # noqa: ANN001 - TvmHost or GuestInstance
        self.api, self.instance = api, instance

    def create(self, capacity: int, allocator: Freelist | None = None) -> int:
        return self.api.create_region(ARENA, capacity, **({"allocator": allocator} if allocator else {}))

    def compact(self, region: int) -> None:
        self.api.compact_region(region)

    def generation(self, region: int) -> int:
        return self.api.region_info(region).generation

    def write(self, region: int, data: bytes) -> None:
        self.api.write(Handle(region, self.generation(region), 0), data)

    def get(self, width: int, h: int, off: int) -> int:
        return int(self.api.call(self.instance, f"get{width}", h, off))


def make_layer(kind: str, inline: bool) -> Layer:
    if kind == "host":
        host = TvmHost(pools=2)
        return Layer(host, host.instantiate(LOADER, inline=inline))
    from tvm_wasm.guest import GuestInstance, build_module

    if inline:
        g = GuestInstance(link(LOADER, target="guest", pools=2, max_pages=2, inline_runtime=True).wasm)
        return Layer(g, g.instance)
    g = GuestInstance(build_module(pools=2, max_pages=2).wasm)
    return Layer(g, g.link(LOADER.replace('(memory (export "memory") 1)', "")))


@pytest.fixture(params=["host-called", "host-inlined", "guest-called", "guest-inlined"])
def layer(request, binaryen):
    kind, how = request.param.split("-")
    made = make_layer(kind, how == "inlined")
    yield made
    made.api.close()


def signed(h: int) -> int:
    return h - (1 << 64) if h >= 1 << 63 else h


def test_forged_handles_at_the_wrap_and_carry_edges_fail_typed(layer):
    first = layer.create(64)
    layer.write(first, bytes(range(64)))
    again = layer.create(64, Freelist())
    layer.compact(again)  # a new generation
    generation = layer.generation(again)
    assert generation == 2
    layer.write(again, bytes(range(100, 164)))
    assert layer.get(8, Handle(first, 1, 56).to_i64(), 0) == int.from_bytes(bytes(range(56, 64)), "little")
    assert layer.get(4, Handle(again, generation, 0).to_i64(), 60) == int.from_bytes(bytes(range(160, 164)), "little")
    cases = [
        # slot 65535, never written: keys 0 there would let the sum wrap to 0
        (RegionNotFound, 4, (0xFFFF << 48) | (0xFFFF << 32) | 0xFFFF_FFFC, 0),
        (RegionNotFound, 8, (0xFFFF << 48) | (0xFFFF << 32) | 0xFFFF_FFF8, 0),
        (RegionNotFound, 1, (0xFFFF << 48) | (0xFFFF << 32), 0xFFFF_FFFF),
        # the null handle and a slot never written (region 0 never exists)
        (RegionNotFound, 1, 0, 0),
        (RegionNotFound, 8, Handle(0x7FFF, 1, 0).to_i64(), 0),
        # the previous generation, its offset carrying into the generation bits
        (StaleHandle, 4, Handle(again, generation - 1, 0xFFFF_FF00).to_i64(), 0x100),
        (StaleHandle, 8, Handle(again, generation - 1, 0xFFFF_FFF8).to_i64(), 8),
        (StaleHandle, 1, Handle(again, generation - 1, 0).to_i64(), 0),
        (StaleHandle, 1, Handle(again, generation + 1, 0).to_i64(), 0),  # a future generation
        (StaleHandle, 1, Handle(first, 0xFFFF, 0xFFFF_FFFF).to_i64(), 1),
        # bounds: the last bytes pass, one past fails, and nothing wraps in 32 bits
        (OutOfBounds, 4, Handle(first, 1, 61).to_i64(), 0),
        (OutOfBounds, 8, Handle(first, 1, 0).to_i64(), 57),
        (OutOfBounds, 1, Handle(first, 1, 0xFFFF_FFFF).to_i64(), 0xFFFF_FFFF),
        (OutOfBounds, 1, Handle(first, 1, 1).to_i64(), 0xFFFF_FFFF),
    ]
    for error, width, h, off in cases:
        with pytest.raises(error):
            layer.get(width, signed(h), off)
    assert layer.get(1, Handle(first, 1, 63).to_i64(), 0) == 63  # nothing above moved a byte
