"""One handle fault, one error: a handle whose region was never created, was destroyed or lives at
another generation raises the same class with the same message on the model, ``TvmHost`` and the
self-contained module's ``GuestInstance`` (``tvm-guest.js`` matches ``GuestInstance`` in
tests/guest/test_same_words_in_js.py), for every operation on a handle they share.

The words come from one table (``tvm_wasm.core.handle_faults``): ``read(r1@2+0) of 4 byte(s): region
r1 at generation 1 [region=1, gen=2, offset=0x0, len=4]``, ``dealloc(r2@1+0): region r2 was
destroyed [region=2, gen=1, offset=0x0]``, ``read(r99@1+0) of 4 byte(s): no region r99 [...]``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tvm_wasm import Freelist, Handle, RegionDirectory, RegionKind, RegionNotFound, StaleHandle, TvmHost
from tvm_wasm.core.handle_faults import BULK_ERROR, HANDLE_ERROR, REGION_STATES, handle_fault, region_fault
from tvm_wasm.guest import GuestInstance, build_module

LENGTH = 4
OPERATIONS = ["read", "write", "discard", "fill", "dealloc"]  # what every layer offers on a handle
FAULTS = ["stale generation", "destroyed region", "region never created"]


def setup(layer) -> dict[str, Handle]:
    """Region 1 compacted (so at generation 2), region 2 destroyed, 99 never created."""
    first = layer.create_region(RegionKind.OBJECT_ARENA, 4096, allocator=Freelist())
    before = layer.alloc(first, 64)
    layer.compact_region(first)
    gone_region = layer.create_region(RegionKind.OBJECT_ARENA, 4096)
    gone = layer.alloc(gone_region, 8)
    layer.destroy_region(gone_region)
    assert (first, before.generation, gone.region_id) == (1, 1, 2)
    return {"stale generation": before, "destroyed region": gone, "region never created": Handle(99, 1, 0)}


def outcome(call: Callable[[], object]) -> tuple[str, str]:
    """What ``call`` raised, as (class name, message); ("none", "") when it raised nothing."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - compared by class and message
        return type(error).__name__, str(error)
    return "none", ""


def attempt(layer, operation: str, handle: Handle) -> tuple[str, str]:
    calls = {"read": lambda: layer.read(handle, LENGTH), "write": lambda: layer.write(handle, bytes(LENGTH)),
             "discard": lambda: layer.discard(handle, LENGTH), "fill": lambda: layer.fill(handle, LENGTH, 7),
             "dealloc": lambda: layer.dealloc(handle)}
    return outcome(calls[operation])


def words(layer) -> dict[tuple[str, str], tuple[str, str]]:
    handles = setup(layer)
    return {(fault, operation): attempt(layer, operation, handles[fault])
            for fault in FAULTS for operation in OPERATIONS}


Said = dict[tuple[str, str], tuple[str, str]]


def on_every_layer(collect: Callable[[object], Said]) -> dict[str, Said]:
    """``collect`` run on a fresh model, ``TvmHost`` and ``GuestInstance``, by layer name."""
    host = TvmHost(pools=1)
    guest = GuestInstance(build_module(pools=1, max_pages=16))
    try:
        return {"model": collect(RegionDirectory()), "TvmHost": collect(host), "GuestInstance": collect(guest)}
    finally:
        host.close()
        guest.close()


def alike(found_by_layer: dict[str, Said], key: tuple[str, str]) -> dict[str, tuple[str, str]]:
    """What each layer said for ``key``, asserting that TvmHost and GuestInstance said what the model said."""
    said = {layer: found[key] for layer, found in found_by_layer.items()}
    assert said["TvmHost"] == said["model"], said
    assert said["GuestInstance"] == said["model"], said
    return said


@pytest.fixture(scope="module")
def layers() -> dict[str, Said]:
    return on_every_layer(words)


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_every_layer_words_a_handle_fault_alike(layers, fault, operation):
    said = alike(layers, (fault, operation))
    assert said["model"][0] != "none"


ID_OPERATIONS = ["destroy_region", "pin", "unpin", "compact_region", "protect", "region_info", "metrics"]
ID_FAULTS = {"destroyed region": 2, "region never created": 99}


def id_words(layer) -> dict[tuple[str, str], tuple[str, str]]:
    setup(layer)
    return {(fault, operation): outcome(lambda: getattr(layer, operation)(region_id))
            for fault, region_id in ID_FAULTS.items() for operation in ID_OPERATIONS}


@pytest.fixture(scope="module")
def id_layers() -> dict[str, Said]:
    return on_every_layer(id_words)


@pytest.mark.parametrize("fault", ID_FAULTS)
@pytest.mark.parametrize("operation", ID_OPERATIONS)
def test_a_region_named_by_id_reads_alike_on_every_layer(id_layers, fault, operation):
    said = alike(id_layers, (fault, operation))
    expected = region_fault(ID_FAULTS[fault], destroyed=fault == "destroyed region")
    assert said["model"] == ("RegionNotFound", str(expected)), said


def test_a_region_named_by_id_reads_as_the_readme_shows_it(id_layers):
    assert id_layers["GuestInstance"][("destroyed region", "pin")] == (
        "RegionNotFound", "region r2 was destroyed [region=2]")
    assert id_layers["model"][("region never created", "region_info")] == (
        "RegionNotFound", "no region r99 [region=99]")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("operation", OPERATIONS)
def test_the_words_are_the_tables(layers, fault, operation):
    handle = {"stale generation": Handle(1, 1, 0), "destroyed region": Handle(2, 1, 0),
              "region never created": Handle(99, 1, 0)}[fault]
    state = {"stale generation": "live", "destroyed region": "destroyed", "region never created": "absent"}[fault]
    length = None if operation == "dealloc" else LENGTH
    expected = handle_fault(operation, handle, state, generation=2, length=length)
    assert layers["model"][(fault, operation)] == (type(expected).__name__, str(expected))
    cause = REGION_STATES[state].format(region=handle.region_id, generation=2)
    template = HANDLE_ERROR if length is None else BULK_ERROR
    assert str(expected).startswith(template.format(operation=operation, handle=handle, length=length, cause=cause))
    assert type(expected) is (RegionNotFound if state == "absent" else StaleHandle)


def test_a_message_reads_as_the_readme_shows_it(layers):
    assert layers["model"][("stale generation", "read")] == (
        "StaleHandle", "read(r1@1+0) of 4 byte(s): region r1 at generation 2 [region=1, gen=1, offset=0x0, len=4]")
    assert layers["GuestInstance"][("destroyed region", "dealloc")] == (
        "StaleHandle", "dealloc(r2@1+0): region r2 was destroyed [region=2, gen=1, offset=0x0]")
    assert layers["TvmHost"][("region never created", "write")] == (
        "RegionNotFound", "write(r99@1+0) of 4 byte(s): no region r99 [region=99, gen=1, offset=0x0, len=4]")
