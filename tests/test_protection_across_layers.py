"""Read-only regions, dirty-page tracking and discard, the same on every layer as in the model.

Random sequences of byte-changing operations (typed stores, ``write``, ``fill``,
``discard``, ``copy``, ``copy_region``, ``alloc``) interleaved with ``protect``,
``track_dirty`` and ``clear_dirty`` run on the model and on each layer: the
host's Python API, the raw ABI from a guest (and from a guest linked with the
runtime inlined), and the self-contained module. After every step the outcome
(error code), every region's bytes, its bump pointer, its read-only flag and
its dirty pages must equal the model's. Since the model refuses every change
to a read-only region, this is also the no-escape property: no path of any
layer changes a read-only region, and a refused call changes nothing.
"""

from __future__ import annotations

import functools
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent / "host"))
sys.path.insert(0, str(Path(__file__).parent / "component"))

from host_guests import Guest, abi_imports, compiled, forwarders, require_binaryen, s32  # noqa: E402
from raw_abi_spec import CHECKPOINT_ABI, PROTECTION_ABI, RAW_ABI  # noqa: E402
from wit_guests import WitDirectory  # noqa: E402
from tvm_wasm import Handle, PolicyViolation, RegionDirectory, RegionKind, TvmError, TvmHost  # noqa: E402
from tvm_wasm.core.directory import DIRTY_PAGE  # noqa: E402
from tvm_wasm.guest import build_module  # noqa: E402
from tvm_wasm.guest.instance import GuestInstance  # noqa: E402

CAPACITIES = (3 * DIRTY_PAGE + 100, 2 * DIRTY_PAGE, 700)  # regions 1, 2, 3 (a partial last page, whole pages, one)
WIDTHS = {"u8": (1, "<B", "i32"), "u16": (2, "<H", "i32"), "u32": (4, "<I", "i32"), "i64": (8, "<q", "i64")}
BUFFER = 65536  # guest-memory bytes the raw layers use for write's source


def code_of(call) -> int:  # type: ignore[no-untyped-def]
    try:
        call()
        return 0
    except TvmError as exc:
        return exc.code


def checkpoint_with(layer, take) -> int:  # type: ignore[no-untyped-def]
    """Run ``take()`` (a checkpoint, or 0 / raises on failure) and keep what it returned in
    ``layer.cps`` (``None`` for a failure), so checkpoint indices agree across layers."""
    try:
        token = take()
    except TvmError as exc:
        layer.cps.append(None)
        return exc.code
    if not token:  # the raw ABI's failed checkpoint
        layer.cps.append(None)
        return layer.call("last_error")
    layer.cps.append(token)
    return 0


class PythonCheckpoints:
    """Checkpoints through the Python API of ``self.d`` (the model, ``TvmHost``, ``GuestInstance``)."""

    d: RegionDirectory
    cps: list

    def checkpoint(self, regions: list[int]) -> int:
        return checkpoint_with(self, lambda: self.d.checkpoint(regions))

    def rollback(self, token: object) -> int:
        return code_of(lambda: self.d.rollback(token))

    def release(self, token: object) -> int:
        return code_of(lambda: self.d.release_checkpoint(token))


class PythonControl(PythonCheckpoints):
    """``protect``/``track_dirty``/``clear_dirty`` through the Python API of ``self.d``."""

    def protect(self, region: int, read_only: bool) -> int:
        return code_of(lambda: self.d.protect(region, read_only))

    def track_dirty(self, region: int, enabled: bool) -> int:
        return code_of(lambda: self.d.track_dirty(region, enabled))

    def clear_dirty(self, region: int) -> int:
        return code_of(lambda: self.d.clear_dirty(region))

    def discard(self, h: Handle, length: int) -> int:
        return code_of(lambda: self.d.discard(h, length))


class PythonLayer(PythonControl):
    """The model, or ``TvmHost``'s Python API (the same methods)."""

    def __init__(self, directory: RegionDirectory) -> None:
        self.d = directory
        self.cps: list = []
        for capacity in CAPACITIES:
            self.d.create_region(RegionKind.BLOB_ARENA, capacity)

    def close(self) -> None:
        if isinstance(self.d, (TvmHost, WitDirectory)):
            self.d.close()

    def store(self, h: Handle, rel: int, width: str, value: int) -> int:
        size, fmt, _ = WIDTHS[width]
        return code_of(lambda: self.d.write(Handle(h.region_id, h.generation, h.offset + rel),
                                            struct.pack(fmt, value)))

    def write(self, h: Handle, data: bytes) -> int:
        return code_of(lambda: self.d.write(h, data))

    def fill(self, h: Handle, length: int, byte: int) -> int:
        return code_of(lambda: self.d.fill(h, length, byte))

    def copy(self, src: Handle, dst: Handle, length: int) -> int:
        return code_of(lambda: self.d.copy(src, dst, length))

    def copy_region(self, src: int, src_off: int, dst: int, dst_off: int, length: int) -> int:
        return code_of(lambda: self.d.copy_region(src, src_off, dst, dst_off, length))

    def alloc(self, region: int, size: int) -> int:
        return code_of(lambda: self.d.alloc(region, size))

    def observe(self, region: int) -> tuple:
        info = self.d.region_info(region)
        try:
            dirty: list[int] | None = self.d.dirty_pages(region)
        except PolicyViolation:
            dirty = None
        return (self.d.read(Handle(region, info.generation, 0), info.capacity), info.used,
                self.d.is_read_only(region), dirty, self.d.metrics(region).bytes_discarded, info.generation)


class RawLayer:
    """Every operation a guest's raw ABI call (regions made from Python; ``call`` runs an export)."""

    def __init__(self) -> None:
        self.last_code = 0
        self.cps: list = []

    # what a subclass provides
    def call(self, name: str, *args: int) -> int:
        raise NotImplementedError

    def put(self, data: bytes) -> None:
        raise NotImplementedError

    def code(self, value: int) -> int:
        return int(value)

    def store(self, h: Handle, rel: int, width: str, value: int) -> int:
        return self.call(f"try_store_{width}", h.to_i64(), s32(rel), value)

    def write(self, h: Handle, data: bytes) -> int:
        self.put(data)
        return self.call("write", h.to_i64(), 0, len(data))

    def fill(self, h: Handle, length: int, byte: int) -> int:
        return self.call("fill", h.to_i64(), s32(length), byte)

    def copy(self, src: Handle, dst: Handle, length: int) -> int:
        return self.call("copy", src.to_i64(), dst.to_i64(), s32(length))

    def copy_region(self, src: int, src_off: int, dst: int, dst_off: int, length: int) -> int:
        return self.call("copy_region", src, s32(src_off), dst, s32(dst_off), s32(length))

    def alloc(self, region: int, size: int) -> int:
        return 0 if self.call("alloc", region, s32(size)) else self.call("last_error")

    def protect(self, region: int, read_only: bool) -> int:
        return self.call("protect", region, int(read_only))

    def track_dirty(self, region: int, enabled: bool) -> int:
        return self.call("track_dirty", region, int(enabled))

    def clear_dirty(self, region: int) -> int:
        return self.call("clear_dirty", region)

    def discard(self, h: Handle, length: int) -> int:
        return self.call("discard", h.to_i64(), s32(length))

    def checkpoint(self, regions: list[int]) -> int:
        for region in regions:
            code = self.call("checkpoint_add", region)
            assert code == 0, f"checkpoint_add({region}) answered {code}"  # the regions always exist
        return checkpoint_with(self, lambda: self.call("checkpoint"))

    def rollback(self, token: object) -> int:
        return self.call("rollback", token)  # type: ignore[arg-type]

    def release(self, token: object) -> int:
        return self.call("release_checkpoint", token)  # type: ignore[arg-type]

    def dirty_pages(self, region: int) -> list[int] | None:
        pages, page = [], 0
        while True:
            found = self.call("next_dirty_page", region, page)
            if found == -2:
                assert self.call("last_error") == PolicyViolation.code
                return None
            if found == -1:
                return pages
            pages.append(found)
            page = found + 1


class HostRawLayer(RawLayer):
    def __init__(self) -> None:
        super().__init__()
        self.d = TvmHost(pools=2)
        for capacity in CAPACITIES:
            self.d.create_region(RegionKind.BLOB_ARENA, capacity)
        names = (*RAW_ABI, *PROTECTION_ABI, *CHECKPOINT_ABI)
        wat = f'(module {abi_imports(names)} (memory (export "memory") 2) {forwarders(names)})'
        self.g = Guest(self.d, self.d.instantiate(compiled(wat)))

    def close(self) -> None:
        self.d.close()

    def call(self, name: str, *args: int) -> int:
        return int(self.g(name, *args))  # type: ignore[arg-type]

    def put(self, data: bytes) -> None:
        self.g.put(0, data)

    def observe(self, region: int) -> tuple:
        info = self.d.region_info(region)
        read_only = self.call("region_read_only", region)
        return (self.d.view(region, writable=False).tobytes(), info.used, bool(read_only), self.dirty_pages(region),
                self.d.metrics(region).bytes_discarded, info.generation)


@functools.cache
def _module() -> bytes:
    return build_module(pools=2, max_pages=64).wasm


class ModuleLayer(PythonCheckpoints, RawLayer):  # type: ignore[misc]
    """The module's raw exports; its checkpoints are its embedder's (``GuestInstance``, in Python)."""

    def __init__(self) -> None:
        RawLayer.__init__(self)
        self.g = self.d = GuestInstance(_module())  # type: ignore[assignment]
        for capacity in CAPACITIES:
            self.g.create_region(RegionKind.BLOB_ARENA, capacity)

    def close(self) -> None:
        self.g.close()

    def call(self, name: str, *args: int) -> int:
        return int(self.g.raw(name, *args))  # type: ignore[arg-type]

    def put(self, data: bytes) -> None:
        self.g.guest_memory.write(self.g.store, data, 0)

    def observe(self, region: int) -> tuple:
        info = self.g.region_info(region)
        view = self.g.view(region, writable=False)
        return (view.tobytes(), info.used, self.g.is_read_only(region), self.dirty_pages(region),
                self.g.metrics(region).bytes_discarded, info.generation)


class HostInlinedLayer(PythonControl, HostRawLayer):  # type: ignore[misc]
    """Data operations from a guest linked with the runtime inlined; control and ``discard`` (a host slow
    path) from Python (the inlined target serves the data plane)."""

    DATA = ("try_store_u8", "try_store_u16", "try_store_u32", "try_store_i64", "write", "fill", "copy",
            "copy_region", "alloc", "last_error")

    def __init__(self) -> None:
        RawLayer.__init__(self)
        self.d = TvmHost(pools=2)
        for capacity in CAPACITIES:
            self.d.create_region(RegionKind.BLOB_ARENA, capacity)
        self.g = Guest(self.d, self.d.instantiate(_data_guest(), inline=True))

    def observe(self, region: int) -> tuple:
        info = self.d.region_info(region)
        dirty = self.d.dirty_pages(region) if self.d.tracks_dirty(region) else None
        return (self.d.view(region, writable=False).tobytes(), info.used, self.d.is_read_only(region), dirty,
                self.d.metrics(region).bytes_discarded, info.generation)


@functools.cache
def _data_guest() -> str:
    names = HostInlinedLayer.DATA
    return f'(module {abi_imports(names)} (memory (export "memory") 2) {forwarders(names)})'


def _host_inline() -> HostRawLayer:
    require_binaryen()
    return HostInlinedLayer()


LAYERS = {
    "host-python": lambda: PythonLayer(TvmHost(pools=2)),
    "host-raw-abi": HostRawLayer,
    "host-inlined": _host_inline,
    "module": ModuleLayer,
    "wit": lambda: PythonLayer(WitDirectory(TvmHost(pools=2))),
}


# ---------------------------------------------------------------- operations
regions = st.integers(1, len(CAPACITIES))


def offsets(region: int) -> st.SearchStrategy[int]:
    capacity = CAPACITIES[region - 1]
    return st.one_of(st.integers(0, capacity + 8), st.sampled_from([0, DIRTY_PAGE - 1, DIRTY_PAGE, capacity - 1]))


@st.composite
def operation(draw: st.DrawFn) -> tuple:
    kind = draw(st.sampled_from(["store", "write", "fill", "discard", "copy", "copy_region", "alloc", "protect",
                                 "track", "clear", "checkpoint", "rollback", "release"]))
    if kind == "checkpoint":
        return ("checkpoint", draw(st.lists(regions, min_size=1, max_size=len(CAPACITIES), unique=True)))
    if kind in ("rollback", "release"):
        return (kind, draw(st.integers(0, 30)))
    r = draw(regions)
    if kind == "store":
        width = draw(st.sampled_from(sorted(WIDTHS)))
        size = WIDTHS[width][0]
        return ("store", r, draw(offsets(r)), draw(st.integers(0, 8)), width, draw(st.integers(0, (1 << (8 * size - 1)) - 1)))
    if kind == "write":
        return ("write", r, draw(offsets(r)), draw(st.binary(min_size=0, max_size=2 * DIRTY_PAGE + 10)))
    if kind in ("fill", "discard", "copy", "copy_region"):
        length = draw(st.one_of(st.integers(0, 300), st.sampled_from([DIRTY_PAGE, DIRTY_PAGE + 1, 2 * DIRTY_PAGE])))
        if kind == "fill":
            return ("fill", r, draw(offsets(r)), length, draw(st.integers(0, 255)))
        if kind == "discard":
            return ("discard", r, draw(offsets(r)), length)
        s = draw(regions)
        return (kind, s, draw(offsets(s)), r, draw(offsets(r)), length)
    if kind == "alloc":
        return ("alloc", r, draw(st.integers(0, 3000)))
    if kind in ("protect", "track"):
        return (kind, r, draw(st.booleans()))
    return ("clear", r)


def apply(layer, op: tuple, generations: dict[int, int]) -> int:  # type: ignore[no-untyped-def]
    """Run ``op`` on ``layer``; handles carry each region's current generation (the model's: a
    rollback that changed a region's layout moves it to a new one). Answers the error code (0: ok;
    -1: a rollback or release whose checkpoint index names no checkpoint, so nothing ran)."""
    kind, *args = op

    def at(region: int, offset: int) -> Handle:
        return Handle(region, generations[region], offset)

    if kind == "store":
        r, off, rel, width, value = args
        return layer.store(at(r, off), rel, width, value)
    if kind == "write":
        r, off, data = args
        return layer.write(at(r, off), data)
    if kind == "fill":
        r, off, length, byte = args
        return layer.fill(at(r, off), length, byte)
    if kind == "discard":
        r, off, length = args
        return layer.discard(at(r, off), length)
    if kind == "copy":
        s, s_off, r, off, length = args
        return layer.copy(at(s, s_off), at(r, off), length)
    if kind == "copy_region":
        return layer.copy_region(*args)
    if kind == "alloc":
        return layer.alloc(*args)
    if kind == "protect":
        return layer.protect(*args)
    if kind == "track":
        return layer.track_dirty(*args)
    if kind == "checkpoint":
        return layer.checkpoint(*args)
    if kind in ("rollback", "release"):
        token = layer.cps[args[0] % len(layer.cps)] if layer.cps else None
        if token is None:
            return -1
        return layer.rollback(token) if kind == "rollback" else layer.release(token)
    return layer.clear_dirty(*args)


# Every run starts with each region holding its own non-zero bytes (so that a change a read-only
# region should have refused shows in its bytes), a checkpoint of all of them taken before a last
# change to each (so that rolling back to it must change them), and one region read-only. The
# operations may then protect or unprotect any region.
PROLOGUE = [
    *[("write", r, 0, bytes((r * 37 + i) % 255 + 1 for i in range(capacity)))
      for r, capacity in enumerate(CAPACITIES, start=1)],
    ("checkpoint", list(range(1, len(CAPACITIES) + 1))),
    *[("write", r, r * 100, b"changed after the checkpoint") for r in range(1, len(CAPACITIES) + 1)],
]


@pytest.mark.parametrize("name", list(LAYERS))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frozen=regions, ops=st.lists(operation(), min_size=5, max_size=30))
def test_read_only_and_dirty_pages_match_the_model(name: str, frozen: int, ops: list[tuple]) -> None:
    model = PythonLayer(RegionDirectory())
    layer = LAYERS[name]()
    try:
        for step, op in enumerate([*PROLOGUE, ("protect", frozen, True), *ops]):
            generations = {r: model.d.region_info(r).generation for r in range(1, len(CAPACITIES) + 1)}
            expected = apply(model, op, generations)
            answered = apply(layer, op, generations)  # a released or superseded checkpoint: 9 everywhere
            assert answered == expected, f"step {step}: {op[:2]} answered differently"
            for region in range(1, len(CAPACITIES) + 1):
                assert layer.observe(region) == model.observe(region), f"step {step}: region {region} after {op[:2]}"
    finally:
        layer.close()


def test_the_model_refuses_every_change_to_a_read_only_region() -> None:
    """The specification the layers are checked against: every path answers ReadOnly (8)."""
    d = RegionDirectory()
    r = d.create_region(RegionKind.BLOB_ARENA, 100, initial=b"frozen", freeze=True)
    other = d.create_region(RegionKind.BLOB_ARENA, 100)
    h = Handle(r, 1, 0)
    before = d.read(h, 100)
    refusals = {
        "write": lambda: d.write(h, b"x"),
        "fill": lambda: d.fill(h, 4, 1),
        "copy": lambda: d.copy(Handle(other, 1, 0), h, 4),
        "copy_region": lambda: d.copy_region(other, 0, r, 0, 4),
        "alloc": lambda: d.alloc(r, 4),
        "dealloc": lambda: d.dealloc(h),
        "mark_external": lambda: d.mark_external(r),
    }
    for name, call in refusals.items():
        assert code_of(call) == 8, name
    assert d.read(h, 100) == before and d.region_info(r).used == 0
    d.copy(h, Handle(other, 1, 0), 6)  # reading from it is fine
    assert d.read(Handle(other, 1, 0), 6) == b"frozen"


@pytest.mark.parametrize("name", list(LAYERS))
def test_every_typed_store_marks_exactly_its_pages(name: str) -> None:
    """Each typed store marks the page of its first byte and, when it crosses into the next page, that page
    too: nothing more, on every layer. A store to an untracked region marks nothing that anyone reads
    (its marks go to the scratch map), and a bulk write marks its whole range."""
    layer = LAYERS[name]()

    def dirty(region: int) -> list[int] | None:
        return layer.observe(region)[3]

    try:
        assert layer.track_dirty(1, True) == 0
        last_page = (CAPACITIES[0] - 1) // DIRTY_PAGE
        for width, (size, _, _) in WIDTHS.items():
            starts = [*range(DIRTY_PAGE - size, DIRTY_PAGE + 1), 2 * DIRTY_PAGE - 1, CAPACITIES[0] - size]
            for at in starts:
                for rel in (0, 3):  # the store's relative offset counts as much as the handle's
                    assert layer.clear_dirty(1) == 0
                    assert layer.store(Handle(1, 1, at - rel), rel, width, 1) == 0
                    expected = sorted({at // DIRTY_PAGE, (at + size - 1) // DIRTY_PAGE})
                    assert dirty(1) == expected, f"{width} at {at} (rel {rel})"
                    assert layer.store(Handle(2, 1, min(at, CAPACITIES[1] - size)), 0, width, 1) == 0
                    assert dirty(1) == expected and dirty(2) is None, f"untracked {width} at {at}"
        assert layer.clear_dirty(1) == 0
        assert layer.fill(Handle(1, 1, DIRTY_PAGE - 1), DIRTY_PAGE + 2, 9) == 0
        assert dirty(1) == [0, 1, 2]
        assert layer.clear_dirty(1) == 0
        assert layer.store(Handle(1, 1, CAPACITIES[0] - 1), 0, "u8", 1) == 0
        assert dirty(1) == [last_page]
    finally:
        layer.close()
