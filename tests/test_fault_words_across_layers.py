"""Kind: one fault, one error, on every layer; nothing stored changes on a refused call.

Three kinds of fault beyond a stale handle (tests/test_handle_faults_across_layers.py) read the same, class
and message, on the model (the specification), ``TvmHost``'s Python API and the self-contained module's
``GuestInstance``: a bulk access past a region's capacity (``core.handle_faults.out_of_bounds``), a
compaction the region refuses (``compact_refused``), an ``alloc`` or ``dealloc`` the region's allocator
refuses (``core.allocator_faults``: the module answers one code for several causes, its embedders tell them
apart) and a malformed argument (``core.arguments``). The
WIT path is checked in tests/component/test_wit_bad_input.py and ``tvm-guest.js`` in
tests/guest/test_same_words_in_js.py, from the same tables.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from test_handle_faults_across_layers import on_every_layer, outcome

from tvm_wasm import Freelist, Handle, RegionKind, Slab
from tvm_wasm.core.allocator_faults import alloc_cause, dealloc_cause
from tvm_wasm.core.arguments import NOT_A_HANDLE, NOT_A_POWER_OF_TWO, NOT_AN_INTEGER, NOT_BYTES, OUT_OF_RANGE
from tvm_wasm.core.handle_faults import COMPACT_CAUSES, COMPACT_REFUSED, OUT_OF_BOUNDS, compact_refused, out_of_bounds
from tvm_wasm.guest import GuestInstance, build_module

PAYLOAD = bytes(range(64))
ARENA, HEAP = RegionKind.OBJECT_ARENA, RegionKind.HOT_HEAP


class Setup:
    """On one layer: a Bump region (1) with a 64-byte block holding ``PAYLOAD``, a pinned Freelist region (2)
    with a 16-byte block, an empty Slab region of 32-byte slots (3) and a full one of one slot (4)."""

    def __init__(self, layer) -> None:
        self.layer = layer
        self.bump = layer.create_region(ARENA, 4096)
        self.h = layer.alloc(self.bump, 64)
        layer.write(self.h, PAYLOAD)
        self.pinned = layer.create_region(HEAP, 4096, allocator=Freelist())
        layer.alloc(self.pinned, 16)
        layer.pin(self.pinned)
        self.slab = layer.create_region(ARENA, 4096, allocator=Slab(32))
        self.full = layer.create_region(ARENA, 32, allocator=Slab(32))
        layer.alloc(self.full, 32)
        assert (self.bump, self.pinned, self.slab, self.full) == (1, 2, 3, 4)

    def stored(self) -> tuple[object, ...]:
        """What a refused call must leave as it was: the block's bytes and every region's state."""
        info = [self.layer.region_info(r) for r in (self.bump, self.pinned, self.slab, self.full)]
        return (self.layer.read(self.h, 64), *((i.generation, i.used, i.pinned) for i in info))


def faults(s: Setup) -> dict[str, Callable[[], object]]:
    """Every fault, by name, as a call on the layer ``s`` was set up on."""
    L, h, r = s.layer, s.h, s.bump
    end = h.with_offset(4090)
    return {
        # past the capacity
        "read past the capacity": lambda: L.read(end, 8),
        "write past the capacity": lambda: L.write(end, b"x" * 8),
        "fill past the capacity": lambda: L.fill(end, 8, 7),
        "discard past the capacity": lambda: L.discard(end, 8),
        "read from past the capacity": lambda: L.read(Handle(r, 1, 5000), 1),
        # compaction refused
        "compact a Bump region": lambda: L.compact_region(r),
        "compact a Slab region": lambda: L.compact_region(s.slab),
        "compact a pinned region": lambda: L.compact_region(s.pinned),
        # alloc and dealloc refused by the allocator
        "alloc past a Bump region's room": lambda: L.alloc(r, 8000),
        "alloc past a Bump region's room, aligned": lambda: L.alloc(r, 4040, align=16),
        "alloc an empty Freelist block": lambda: L.alloc(s.pinned, 0),
        "alloc too large a Freelist block": lambda: L.alloc(s.pinned, 5000, align=4),
        "alloc another size from a Slab": lambda: L.alloc(s.slab, 16),
        "alloc a Slab slot aligned past its class": lambda: L.alloc(s.slab, 32, align=64),
        "alloc from a full Slab": lambda: L.alloc(s.full, 32),
        "alloc another size from a full Slab": lambda: L.alloc(s.full, 8),
        "dealloc inside a Freelist block": lambda: L.dealloc(Handle(s.pinned, 1, 4)),
        "dealloc past the capacity": lambda: L.dealloc(Handle(s.pinned, 1, 5000)),
        "dealloc between Slab slots": lambda: L.dealloc(Handle(s.slab, 1, 4)),
        "dealloc a free Slab slot": lambda: L.dealloc(Handle(s.slab, 1, 32)),
        "dealloc between a full Slab's slots": lambda: L.dealloc(Handle(s.full, 1, 8)),
        # malformed arguments: types
        "alloc a str region id": lambda: L.alloc("1", 8),
        "alloc a bool region id": lambda: L.alloc(True, 8),
        "alloc a float size": lambda: L.alloc(r, 8.0),
        "alloc a bool size": lambda: L.alloc(r, True),
        "alloc a str align": lambda: L.alloc(r, 8, align="8"),
        "read a float length": lambda: L.read(h, 1.5),
        "read a None length": lambda: L.read(h, None),
        "read a packed handle": lambda: L.read(h.to_i64(), 4),
        "write a str": lambda: L.write(h, "abc"),
        "write to a packed handle": lambda: L.write(h.to_i64(), b"x"),
        "fill a bool length": lambda: L.fill(h, True, 1),
        "fill a float byte": lambda: L.fill(h, 4, 1.0),
        "discard a str length": lambda: L.discard(h, "4"),
        "dealloc a packed handle": lambda: L.dealloc(h.to_i64()),
        "migrate a None handle": lambda: L.migrate(None),
        "pin a str region id": lambda: L.pin("2"),
        "destroy a float region id": lambda: L.destroy_region(1.0),
        "region_info of None": lambda: L.region_info(None),
        "compact a str region id": lambda: L.compact_region("1"),
        "create a str capacity": lambda: L.create_region(ARENA, "64"),
        # malformed arguments: ranges
        "alloc a negative size": lambda: L.alloc(r, -1),
        "alloc 2**40 bytes": lambda: L.alloc(r, 1 << 40),
        "alloc align 3": lambda: L.alloc(r, 8, align=3),
        "alloc align 2**32": lambda: L.alloc(r, 8, align=1 << 32),
        "alloc a bad size in a region never created": lambda: L.alloc(99, -1),  # arguments before state
        "read a negative length": lambda: L.read(h, -1),
        "fill byte 256": lambda: L.fill(h, 4, 256),
        "discard 2**32 bytes": lambda: L.discard(h, 1 << 32),
        "create capacity 0": lambda: L.create_region(ARENA, 0),
        "create capacity 2**32": lambda: L.create_region(ARENA, 1 << 32),
        # region ids no region has
        "alloc in region 0": lambda: L.alloc(0, 8),
        "alloc in region 70000": lambda: L.alloc(70000, 8),
        "pin region -1": lambda: L.pin(-1),
        "region_info of 2**40": lambda: L.region_info(1 << 40),
    }


Said = dict[str, tuple[str, str]]


def words(layer) -> Said:
    s = Setup(layer)
    before = s.stored()
    said = {}
    for name, call in faults(s).items():
        said[name] = outcome(call)
        assert s.stored() == before, f"{name} changed what is stored"
    return said


@pytest.fixture(scope="module")
def layers() -> dict[str, Said]:
    return on_every_layer(words)


def _names() -> list[str]:
    """The fault names (built on a throwaway instance, so each is its own test)."""
    g = GuestInstance(build_module(pools=1, max_pages=16))
    try:
        return list(faults(Setup(g)))
    finally:
        g.close()


ALL = _names()


@pytest.mark.parametrize("fault", ALL)
def test_every_layer_says_the_models_words(layers, fault):
    said = {layer: found[fault] for layer, found in layers.items()}
    assert said["model"][0] != "none", said
    assert said["TvmHost"] == said["model"], said
    assert said["GuestInstance"] == said["model"], said


def test_the_words_are_the_tables(layers):
    model = layers["model"]
    h = Handle(1, 1, 4090)
    assert model["read past the capacity"] == ("OutOfBounds", str(out_of_bounds("read", h, 8, 4096)))
    assert model["discard past the capacity"] == (
        "OutOfBounds", f"discard(r1@1+4090) of 8 byte(s): {OUT_OF_BOUNDS} [region=1, gen=1, offset=0xffa, len=8, capacity=4096]")
    assert model["compact a Slab region"] == ("UnsupportedAllocator", str(compact_refused(3, "allocator", allocator="Slab")))
    cause = COMPACT_CAUSES["allocator"].format(allocator="Bump")
    assert model["compact a Bump region"] == ("UnsupportedAllocator", COMPACT_REFUSED.format(region=1, cause=cause) + " [region=1]")
    assert model["compact a pinned region"] == ("Pinned", "compact_region(r2) refused: the region is pinned [region=2]")
    assert model["alloc a str region id"] == ("TypeError", NOT_AN_INTEGER.format(name="region_id", type="str", value="'1'"))
    assert model["alloc a bool size"] == ("TypeError", "size must be an integer, not bool True")
    assert model["read a float length"] == ("TypeError", "length must be an integer, not float 1.5")
    assert model["read a packed handle"][0] == "TypeError"
    assert model["read a packed handle"][1].startswith(NOT_A_HANDLE.format(name="handle", type="int", value="")[:-1])
    assert model["write a str"] == ("TypeError", NOT_BYTES.format(name="data", type="str", value="'abc'"))
    assert model["alloc a negative size"] == ("ValueError", OUT_OF_RANGE.format(name="size", minimum=0, maximum=2**32 - 1, value=-1))
    assert model["alloc align 3"] == ("ValueError", NOT_A_POWER_OF_TWO.format(name="align", minimum=1, maximum=2**31, value=3))
    assert model["alloc a bad size in a region never created"][0] == "ValueError"
    assert model["create capacity 0"] == ("ValueError", "capacity must be in 1..4294967295, got 0")
    assert model["alloc in region 70000"] == ("RegionNotFound", "no region r70000 [region=70000]")
    assert model["pin region -1"] == ("RegionNotFound", "no region r-1 [region=-1]")
    assert model["alloc past a Bump region's room"] == (
        "AllocationFailed", "alloc(r1) of 8000 byte(s): " + alloc_cause("bump_full", used=64, align=1)
        + " [region=1, gen=1, len=8000, capacity=4096]")
    assert model["alloc another size from a Slab"][1] == (
        "alloc(r3) of 16 byte(s): the Slab region's slots are 32 byte(s) [region=3, gen=1, len=16, capacity=4096]")
    assert model["alloc from a full Slab"][1].startswith("alloc(r4) of 32 byte(s): all 1 slots of the Slab region")
    assert model["dealloc a free Slab slot"] == (
        "OutOfBounds", "dealloc(r3@1+32): " + dealloc_cause("slab_free") + " [region=3, gen=1, offset=0x20, capacity=4096]")
    assert model["dealloc inside a Freelist block"][1].startswith("dealloc(r2@1+4): no live block starts at this offset [")
    assert model["dealloc past the capacity"][1].startswith("dealloc(r2@1+5000): outside the region's capacity [")


def test_a_guest_view_past_the_capacity_reads_as_a_read_does():
    """``GuestInstance.handle_view`` (the model has no handle views): ``view`` in the same template."""
    g = GuestInstance(build_module(pools=1, max_pages=16))
    try:
        r = g.create_region(ARENA, 4096)
        h = g.alloc(r, 64)
        said = outcome(lambda: g.handle_view(h.with_offset(4090), 8))
        assert said == ("OutOfBounds", str(out_of_bounds("view", Handle(r, 1, 4090), 8, 4096)))
        assert g.last_error() == 0
    finally:
        g.close()
