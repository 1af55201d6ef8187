"""README's Python API reference names every public name a user needs (with its members)."""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

import tvm_wasm
from tvm_wasm import (
    Checkpoint, EvictionReport, Handle, HandleRemap, PlacementPolicy, RegionDirectory, RegionInfo, RegionMetrics,
    RollbackRemap,
)

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
SECTION = README.split("### The public names (`from tvm_wasm import ...`)", 1)[1].split("\n## ", 1)[0]


def _named(name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", SECTION) is not None


@pytest.mark.parametrize("name", tvm_wasm.__all__)
def test_every_top_level_name_is_in_the_reference(name: str) -> None:
    assert _named(name), f"README's Python API reference does not name {name}"


@pytest.mark.parametrize("owner", [RegionDirectory, Handle, HandleRemap, RollbackRemap])
def test_every_public_member_is_in_the_reference(owner: type) -> None:
    members = [n for n, _ in inspect.getmembers(owner) if not n.startswith("_")]
    missing = [n for n in members if not _named(n)]
    assert not missing, f"README's reference does not name {owner.__name__}.{missing}"


@pytest.mark.parametrize("value", [RegionInfo, RegionMetrics, HandleRemap, RollbackRemap, EvictionReport,
                                   Checkpoint, PlacementPolicy])
def test_every_field_is_in_the_reference(value: type) -> None:
    fields = [f.name for f in dataclasses.fields(value) if not f.name.startswith("_")]
    listed = re.search(rf"`{value.__name__}\(([^`]*)\)`", SECTION)
    assert listed is not None, value.__name__
    assert [part.split("=")[0].strip() for part in listed.group(1).split(",")] == fields


def test_handle_unpack_round_trip_as_documented() -> None:
    h = Handle(3, 2, 0x10)
    assert h.pack() == 3 << 48 | 2 << 32 | 0x10
    assert Handle.unpack(h.pack()) == Handle.unpack(h.to_i64()) == h
    assert str(h) == "r3@2+16" and Handle.NULL.is_null and h.with_offset(5) == Handle(3, 2, 5)
    with pytest.raises(ValueError):
        Handle.unpack(1 << 64)
    with pytest.raises(TypeError):
        Handle.unpack("3")  # type: ignore[arg-type]
