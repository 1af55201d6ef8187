"""README's Python API reference names every public name a user needs (with its members)."""

from __future__ import annotations

import dataclasses
import importlib
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


DOCS = [README, *(path.read_text() for path in sorted((Path(__file__).resolve().parent.parent / "docs").glob("*.md")))]
_FROM_IMPORT = re.compile(r"^\s*from (tvm_wasm(?:\.\w+)*) import \(?([\w\s,]+?)\)?\s*(?:#.*)?$", re.M)
_MULTILINE_IMPORT = re.compile(r"^\s*from (tvm_wasm(?:\.\w+)*) import \(([^)]*)\)", re.M)
_DOTTED = re.compile(r"(?<![\w./-])(tvm_wasm(?:\.[A-Za-z_]\w*)+)")


def _resolve(dotted: str) -> object:
    """Import the longest module prefix of ``dotted``, then take the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            target = getattr(target, attr)
        return target
    raise ModuleNotFoundError(dotted)


def _documented_imports() -> set[tuple[str, str]]:
    found = set()
    for text in DOCS:
        for pattern in (_FROM_IMPORT, _MULTILINE_IMPORT):
            for module, names in pattern.findall(text):
                found |= {(module, n.split("#")[0].strip()) for n in re.split(r"[,\n]", names)
                          if n.split("#")[0].strip()}
    return found


@pytest.mark.parametrize(("module", "name"), sorted(_documented_imports()))
def test_every_documented_import_works(module: str, name: str) -> None:
    """Each ``from tvm_wasm... import NAME`` in the README and docs imports."""
    exec(f"from {module} import {name}", {})  # noqa: S102 - the statement the docs show, as written


@pytest.mark.parametrize("dotted", sorted({m for text in DOCS for m in _DOTTED.findall(text)}))
def test_every_documented_dotted_name_resolves(dotted: str) -> None:
    """Each ``tvm_wasm.x.y`` the README and docs name is a module or an attribute of one."""
    _resolve(dotted)


def test_the_self_contained_modules_names_come_from_its_package() -> None:
    """The README's section on the self-contained module names ``tvm_wasm.guest``: its classes import from there."""
    import tvm_wasm.guest as guest

    for name in ("GuestInstance", "GuestModule", "build_module"):
        assert name in guest.__all__ and hasattr(guest, name), name
