"""The host's own slab (its free stack and flags live in the directory table): the checks the
model's ``Slab`` makes, made from Python on the table-backed one too."""

from __future__ import annotations

import pytest

from tvm_wasm import Handle, OutOfBounds, RegionKind, Slab


def test_double_free_is_refused_and_the_slot_is_not_handed_out_twice(make_host) -> None:
    host = make_host(pools=1)
    r = host.create_region(RegionKind.OBJECT_ARENA, 640, allocator=Slab(64))
    first, second = host.alloc(r, 64), host.alloc(r, 64)
    host.dealloc(first)
    with pytest.raises(OutOfBounds, match="double free"):
        host.dealloc(first)
    assert host.region_info(r).used == 64
    again = [host.alloc(r, 64).offset for _ in range(2)]
    assert len(set(again)) == 2 and second.offset not in again
    assert host.region_info(r).used == 3 * 64


def test_slab_refusals_match_the_model(make_host) -> None:
    from tvm_wasm.core.directory import RegionDirectory

    host = make_host(pools=1)
    model = RegionDirectory()
    outcomes = []
    for d in (host, model):
        r = d.create_region(RegionKind.OBJECT_ARENA, 256, allocator=Slab(64))
        h = d.alloc(r, 64)
        steps = []
        for action in (lambda: d.dealloc(Handle(r, 1, 32)), lambda: d.dealloc(Handle(r, 1, 64)),
                       lambda: d.dealloc(h), lambda: d.dealloc(h), lambda: d.alloc(r, 63)):
            try:
                action()
                steps.append("ok")
            except Exception as exc:  # noqa: BLE001 - compared by type and message
                steps.append(f"{type(exc).__name__}: {exc.message}")
        steps.append([d.alloc(r, 64).offset for _ in range(4)])
        outcomes.append(steps)
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][3] == "OutOfBounds: dealloc(r1@1+0): the slot is free already (a double free)"  # allocator_faults
