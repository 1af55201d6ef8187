"""``GuestInstance``'s control-plane errors, known only by the module's raw code, say what the model says.

The model raises ``RegionNotFound`` for a region id it does not have, worded by ``core.handle_faults``
(``no region r999``); the self-contained module answers code 1, and ``GuestInstance`` raises the same
error with the same words. Other codes are worded from the ABI table's meaning of the code
(``abi.table.code_message``), naming the call that failed.
"""

from __future__ import annotations

import pytest

from tvm_wasm import AllocationFailed, Handle, RegionDirectory, RegionKind, RegionNotFound, TvmError
from tvm_wasm.abi.table import ERROR_CODES, code_message
from tvm_wasm.guest import build_module
from tvm_wasm.guest.instance import GuestInstance

MISSING = 999


@pytest.fixture(scope="module")
def guest() -> GuestInstance:
    g = GuestInstance(build_module(pools=1, max_pages=16))
    yield g
    g.close()


CALLS = {
    "destroy_region": lambda d: d.destroy_region(MISSING),
    "pin": lambda d: d.pin(MISSING),
    "protect": lambda d: d.protect(MISSING, True),
    "metrics": lambda d: d.metrics(MISSING),
    "alloc": lambda d: d.alloc(MISSING, 8),
    "track_dirty": lambda d: d.track_dirty(MISSING),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_a_missing_region_is_region_not_found_saying_so(guest: GuestInstance, name: str) -> None:
    with pytest.raises(TvmError) as model:
        CALLS[name](RegionDirectory())
    with pytest.raises(TvmError) as module:
        CALLS[name](guest)
    assert type(module.value) is type(model.value) is RegionNotFound
    assert str(module.value) == str(model.value) == f"no region r{MISSING} [region={MISSING}]", module.value
    assert module.value.region_id == MISSING


def test_the_wording_comes_from_the_abi_table() -> None:
    meanings = {e.code: e.meaning for e in ERROR_CODES}
    assert code_message(1, "destroy_region") == f"destroy_region: {meanings[1]}"
    assert code_message(5, "alloc") == f"alloc: {meanings[5]}"
    assert code_message(9, "pin") == "pin"  # code 9 has several causes: the caller names the one


def test_a_full_region_says_no_room(guest: GuestInstance) -> None:
    r = guest.create_region(RegionKind.OBJECT_ARENA, 64)
    with pytest.raises(AllocationFailed, match=r"^alloc\(r1\) of 128 byte\(s\): no room above offset 0x0 \(align 1\) \["):
        guest.alloc(r, 128)
    assert guest.read(Handle(r, 1, 0), 4) == bytes(4)  # nothing changed
