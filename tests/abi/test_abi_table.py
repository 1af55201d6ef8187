"""The ABI table against every deployment's real imports and exports, the hand-written spec and the docs.

The table is the source of truth; these tests make drift impossible: a
function the table lists must be served (with its exact wasm signature) by
each deployment it names, and nothing else may be importable as ``tvm.*``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime
from abi_helpers import guest_module, host_engine, module_engine

from raw_abi_spec import RAW_ABI
from tvm_wasm.abi import ABI, TRAP_CAUSE, by_name, for_deployment, function_index
from tvm_wasm.abi.table import HOST, MODULE, MODULE_INFO, U32_MAX, OnError
from tvm_wasm.core.handle import Handle
from tvm_wasm.runtime.slow_paths import host_control_functions
from tvm_wasm.sdk.generated import stale_files
from tvm_wasm.sdk.reference import splice

DOCS = Path(__file__).resolve().parents[2] / "docs" / "guests.md"


def signature(func_type: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in func_type.params), tuple(str(r) for r in func_type.results)


def importer(names: list[str], served: dict) -> str:
    """A module importing ``names`` from ``tvm`` with the table's signatures."""
    lines = ["(module"]
    for name in names:
        entry = served[name]
        sig = "".join(f" (param {t})" for t in entry.wasm_params) + "".join(f" (result {t})" for t in entry.wasm_results)
        lines.append(f'  (import "tvm" "{name}" (func{sig}))')
    lines += ['  (memory (export "memory") 1)', ")"]
    return "\n".join(lines)


def test_host_runtime_exports_exactly_the_table(make_host):
    host = make_host()
    served = for_deployment(HOST)
    exports = {e.name: e.type for e in host._modules.core.exports}
    functions = {name: t for name, t in exports.items() if isinstance(t, wasmtime.FuncType)}
    assert set(functions) == set(served), (set(functions) ^ set(served))
    for name, entry in served.items():
        assert signature(functions[name]) == (entry.wasm_params, entry.wasm_results), name
    # the only other export is the bridge table, which guests must never import
    assert {name for name, t in exports.items() if not isinstance(t, wasmtime.FuncType)} == {"bridge"}


def test_host_serves_every_table_function_and_nothing_else(make_host):
    host = make_host()
    served = for_deployment(HOST)
    host.instantiate(importer(sorted(served), served))  # every function, with the table's signature
    module_only = [f for f in ABI if not f.host]
    assert module_only and all(f.absent_because for f in module_only)
    for entry in module_only:
        name = entry.name.format(k=0)
        with pytest.raises(ValueError, match=f"import tvm.{name}: {name} is a guest-only ABI function") as refused:
            host.instantiate(importer([name], {name: entry}))
        assert entry.absent_because in str(refused.value)  # why, from the table
    for internal in ("bridge", "control_create_region", "fault"):
        with pytest.raises(ValueError, match=f"{internal} is a runtime internal"):
            host.instantiate(f'(module (import "tvm" "{internal}" (func)))')
    # the module's global, not the host's: a runtime internal all the same (one wording on every entry point)
    with pytest.raises(ValueError, match="trap_code is a runtime internal"):
        host.instantiate('(module (import "tvm" "trap_code" (func)))')
    with pytest.raises(ValueError, match="the tvm ABI has no function 'no_such_name'"):
        host.instantiate('(module (import "tvm" "no_such_name" (func)))')


def test_host_control_imports_follow_the_table(make_host):
    host = make_host()
    imports = {(i.module, i.name): i.type for i in host._modules.core.imports}
    for entry in host_control_functions():
        func_type = imports[("tvm_host", f"control_{entry.name}")]
        assert signature(func_type) == (entry.wasm_params, entry.wasm_results), entry.name


@pytest.mark.parametrize("specialised", [True, False])
def test_module_exports_exactly_the_table(specialised):
    pools = 2
    module = wasmtime.Module(module_engine(), guest_module(pools, specialised).wasm)
    assert not module.imports
    exports = {e.name: e.type for e in module.exports}
    served = for_deployment(MODULE, pools=pools if specialised else None)
    functions = {name: t for name, t in exports.items() if isinstance(t, wasmtime.FuncType)}
    assert set(functions) == set(served), (set(functions) ^ set(served))
    for name, entry in served.items():
        assert signature(functions[name]) == (entry.wasm_params, entry.wasm_results), name
    globals_ = {name: t for name, t in exports.items() if isinstance(t, wasmtime.GlobalType)}
    assert {name: str(t.content) for name, t in globals_.items()} == {
        f.name: f.wasm_type for f in (*TRAP_CAUSE, *MODULE_INFO)}
    memories = {name for name, t in exports.items() if isinstance(t, wasmtime.MemoryType)}
    assert memories == {"memory", *(f"mem{k}" for k in range(pools))}


def test_hand_written_spec_agrees_with_the_table():
    for name, (params, results) in RAW_ABI.items():
        entry = by_name(name)
        assert (entry.wasm_params, entry.wasm_results) == (params, results), name
        assert entry.host and entry.module, name


def test_sentinels_can_never_be_valid_results():
    for entry in ABI:
        if entry.on_error is not OnError.SENTINEL:
            continue
        if entry.negative_codes:
            assert entry.valid is not None and entry.valid[0] >= 0, entry.name
        elif entry.result in ("handle",):
            # a live handle never packs to 0: generations are 1..65535
            assert entry.sentinel == 0 and Handle(1, 1, 0).to_i64() != 0
        elif entry.result == "region":
            assert entry.sentinel == 0 and entry.valid == (1, 0xFFFF), entry.name
        else:
            assert entry.valid is not None, entry.name
            low, high = entry.valid
            assert not low <= entry.sentinel <= high, entry.name
            bits = 64 if entry.wasm_results == ("i64",) else 32
            assert -(1 << (bits - 1)) <= low and high < (1 << (bits - 1)), f"{entry.name}: valid range fits signed"
    # a reducer whose every bit pattern is a valid result delivers through an out-pointer instead
    assert by_name("hash_fnv1a").out == ("out", 8) and by_name("hash_fnv1a").on_error is OnError.CODE
    assert by_name("count_byte").valid == (0, U32_MAX)


def test_every_trapping_function_has_a_non_trapping_twin():
    trapping = [f for f in ABI if f.on_error is OnError.TRAP and not f.per_pool]
    assert trapping
    for entry in trapping:
        twin = by_name(f"try_{entry.name}")
        assert twin.on_error is OnError.CODE and twin.width == entry.width
        assert (twin.host, twin.module) == (entry.host, entry.module)


def test_names_and_indices():
    assert by_name("load_u8_p7") is by_name("load_u8_p{k}")
    assert ABI[function_index("store_f64")].name == "store_f64"
    with pytest.raises(KeyError):
        by_name("bridge")
    with pytest.raises(ValueError):
        ABI[0].available_on("browser")


def test_shipped_sdk_files_are_generated_from_the_current_table():
    assert stale_files() == [], "run `python -m tvm_wasm.sdk` and commit the result"


def test_docs_reference_is_generated_from_the_current_table():
    text = DOCS.read_text()
    assert splice(text) == text, "regenerate with `python -m tvm_wasm.sdk docs/guests.md`"


def test_sdk_command_prints_the_shipped_locations(capsys):
    from tvm_wasm import get_include
    from tvm_wasm.cli import main
    from tvm_wasm.sdk import get_rust_bindings
    from tvm_wasm.sdk.reference import reference_markdown

    assert main(["sdk", "--include"]) == 0
    assert capsys.readouterr().out.strip() == get_include()
    assert (Path(get_include()) / "tvm.h").is_file()
    assert main(["sdk", "--rust"]) == 0
    assert capsys.readouterr().out.strip() == get_rust_bindings() and Path(get_rust_bindings()).is_file()
    assert main(["sdk", "--abi"]) == 0
    assert capsys.readouterr().out == reference_markdown()
    assert main(["sdk", "--examples"]) == 0
    examples = Path(capsys.readouterr().out.strip())
    assert {"hello_regions.c", "hello_regions.rs", "records.c"} <= {p.name for p in examples.iterdir()}
    assert main(["sdk"]) == 2  # one of them is required: a usage error, not a traceback
