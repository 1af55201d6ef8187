"""The built module: no imports, valid in wasmtime and wasm-tools, the promised exports, the CLI."""

from __future__ import annotations

import argparse

import pytest
import wasmtime
from guest_helpers import CONTROL, RAW_ABI, built, engine, wasm_tools_validate

from tvm_wasm.cli import build_parser, main
from tvm_wasm.cli_support import DEFAULT_POOLS
from tvm_wasm.guest import build_module
from tvm_wasm.guest.module import USER_BEGINS, USER_ENDS
from tvm_wasm.runtime.core_module import TYPED


def kinds(module: wasmtime.Module) -> dict[str, str]:
    return {e.name: type(e.type).__name__ for e in module.exports}


def test_zero_imports_and_the_promised_exports():
    module = wasmtime.Module(engine(), built(pools=3).wasm)
    assert list(module.imports) == []
    exports = {e.name: e.type for e in module.exports}
    for k in range(3):
        assert isinstance(exports[f"mem{k}"], wasmtime.MemoryType)
    assert isinstance(exports["memory"], wasmtime.MemoryType)
    assert "mem3" not in exports and "bridge" not in exports  # the bridge table stays inside
    for name, (params, results) in {**RAW_ABI, **CONTROL}.items():
        func = exports[name]
        assert isinstance(func, wasmtime.FuncType), name
        assert [str(p) for p in func.params] == list(params), name
        assert [str(r) for r in func.results] == list(results), name
    for k in range(3):
        for t in TYPED:
            assert isinstance(exports[f"load_{t.name}_p{k}"], wasmtime.FuncType)
            assert isinstance(exports[f"store_{t.name}_p{k}"], wasmtime.FuncType)


def test_memory_order_and_limits():
    module = wasmtime.Module(engine(), built(pools=2, max_pages=64, initial_pages=1).wasm)
    exports = {e.name: e.type for e in module.exports}
    assert exports["mem0"].limits.min == 1 and exports["mem0"].limits.max == 64
    text = built(pools=2, max_pages=64).wat
    # the default memory comes first, so user code's plain loads and linked modules' tvm.memory hit it
    assert text.index("(memory $g") < text.index("(memory $meta") < text.index("(memory $p0")


@pytest.mark.parametrize("pools", [1, 4, 64])
def test_wasm_tools_validates(tmp_path, pools):
    path = built(pools=pools).save(tmp_path / f"guest{pools}.wasm")
    result = wasm_tools_validate(path)
    assert result.returncode == 0, result.stderr
    wasmtime.Module.validate(engine(), path.read_bytes())


def test_save_writes_binary_or_text(tmp_path):
    module = built(pools=2)
    binary = module.save(tmp_path / "deep" / "g.wasm")
    text = module.save(tmp_path / "g.wat", wat=True)
    assert binary.read_bytes() == module.wasm
    assert text.read_text() == module.wat
    assert bytes(wasmtime.wat2wasm(text.read_text())) == module.wasm


@pytest.mark.parametrize(
    "kwargs",
    [{"pools": 0}, {"pools": 65}, {"pools": 2, "max_pages": 0}, {"pools": 2, "max_pages": 65537},
     {"pools": 2, "initial_pages": 5, "max_pages": 4}, {"pools": 2, "meta_max_pages": 10}],
)
def test_bad_parameters_are_refused(kwargs):
    with pytest.raises(ValueError):
        build_module(**kwargs)


def test_user_wat_is_spliced_and_reaches_regions():
    user = """
    (func (export "demo") (result i32) (local $r i32) (local $h i64)
      (local.set $r (call $create_region (i32.const 1) (i32.const 256)))
      (local.set $h (call $alloc (local.get $r) (i32.const 8)))
      (call $store_u32 (local.get $h) (i32.const 4) (i32.const 0xC0FFEE))
      ;; a plain store hits the default memory; then read the region into it
      (i32.store (i32.const 100) (i32.const 7))
      (drop (call $read (local.get $h) (i32.const 200) (i32.const 8)))
      (i32.add (i32.load (i32.const 204)) (i32.load (i32.const 100))))
    """
    module = build_module(pools=2, max_pages=16, user_wat=user)
    assert USER_BEGINS in module.wat and USER_ENDS in module.wat
    instance = wasmtime.Instance(store := wasmtime.Store(engine()), wasmtime.Module(engine(), module.wasm), [])
    assert instance.exports(store)["demo"](store) == 0xC0FFEE + 7


def test_cli_builds_binary_and_wat(tmp_path, capsys):
    out = tmp_path / "out" / "guest.wasm"
    assert main(["guest", "build", "--pools", "3", "-o", str(out)]) == 0
    module = wasmtime.Module(engine(), out.read_bytes())
    assert list(module.imports) == [] and "mem2" in kinds(module)
    assert "no imports" in capsys.readouterr().out
    wat = tmp_path / "guest.wat"
    assert main(["guest", "build", "--pools", "2", "--browser", "--wat", "-o", str(wat)]) == 0
    text = wat.read_text()
    assert '(memory $p1 (export "mem1") 1 256)' in text
    assert wasm_tools_validate(out).returncode == 0


def test_guest_build_and_link_default_to_the_same_pool_count(tmp_path, capsys):
    """``guest build`` without ``--pools`` makes DEFAULT_POOLS pools, the default ``tvm-wasm link`` uses."""
    out = tmp_path / "guest.wasm"
    assert main(["guest", "build", "-o", str(out)]) == 0
    exports = kinds(wasmtime.Module(engine(), out.read_bytes()))
    assert [f"mem{k}" in exports for k in range(DEFAULT_POOLS + 1)] == [True] * DEFAULT_POOLS + [False]
    assert f"{DEFAULT_POOLS} pools" in capsys.readouterr().out
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    link = commands.choices["link"]
    assert next(a.default for a in link._actions if a.dest == "pools") == DEFAULT_POOLS


def test_cli_reports_bad_input(tmp_path, capsys):
    assert main(["guest", "build", "--pools", "0", "-o", str(tmp_path / "x.wasm")]) == 2
    assert "pool count '0' is out of range (expected a pool count in 1..64)" in capsys.readouterr().err
    bad = tmp_path / "user.wat"
    bad.write_text("(func $oops (call $no_such_function))")
    assert main(["guest", "build", "--pools", "1", "--user-wat", str(bad), "-o", str(tmp_path / "y.wasm")]) == 1
    assert "user WAT" in capsys.readouterr().err
    assert not (tmp_path / "y.wasm").exists()
    assert main(["guest"]) == 2


def test_cli_splices_user_wat(tmp_path):
    user = tmp_path / "user.wat"
    user.write_text('(func (export "answer") (result i32) (call $region_count) (i32.const 42) (i32.add))')
    out = tmp_path / "with-user.wasm"
    assert main(["guest", "build", "--pools", "2", "--max-pages", "16", "--user-wat", str(user), "-o", str(out)]) == 0
    store = wasmtime.Store(engine())
    instance = wasmtime.Instance(store, wasmtime.Module(engine(), out.read_bytes()), [])
    assert instance.exports(store)["answer"](store) == 42
