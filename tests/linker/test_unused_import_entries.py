"""``GuestInstance(..., imports=)`` refuses an entry the module does not import (a misspelt name would
otherwise be ignored and the import it meant reported missing, or worse, served by nothing): the refusal
names the entry, what the module imports from that module name and the nearest name. Entries under
WASI's module name are a WASI implementation's and may go unused."""

from __future__ import annotations

import re

import pytest

from tvm_wasm.guest import GuestInstance
from tvm_wasm.host.import_refusals import unused_message
from tvm_wasm.linker import link
from tvm_wasm.runtime.link_errors import LinkRefused

USER = """(module
  (import "env" "report" (func $report (param i32)))
  (import "env" "limit" (func $limit (result i32)))
  (memory (export "memory") 1)
  (func (export "go") (result i32) (call $report (i32.const 7)) (call $limit)))"""


@pytest.fixture(scope="module")
def linked(binaryen) -> bytes:
    return link(USER.encode(), target="guest", pools=1, allow_imports=["env.report", "env.limit"]).wasm


def test_a_misspelt_entry_is_refused_with_the_nearest_name(linked) -> None:
    with pytest.raises(LinkRefused) as refused:
        GuestInstance(linked, imports={"env": {"reprot": print, "limit": lambda: 1}})
    assert isinstance(refused.value, ValueError)
    assert str(refused.value) == ("imports['env']['reprot'] is not an import of the module (did you mean 'report'?): "
                                  "it imports from 'env': report, limit")
    assert str(refused.value) == unused_message("env", "reprot", ["report", "limit"])


def test_an_entry_of_a_module_name_it_does_not_import_is_refused(linked) -> None:
    imports = {"env": {"report": print, "limit": lambda: 1}, "envv": {"report": print}}
    with pytest.raises(LinkRefused, match=re.escape("imports['envv']['report'] is not an import of the module: "
                                                    "it imports nothing from 'envv'")):
        GuestInstance(linked, imports=imports)


def test_exact_entries_and_unused_wasi_functions_are_served(linked) -> None:
    seen = []
    g = GuestInstance(linked, wasi=True, imports={"env": {"report": seen.append, "limit": lambda: 3},
                                                  "wasi_snapshot_preview1": {"sched_yield": lambda: 0}})
    assert g.call_export("go") == 3 and seen == [7]


def test_an_extern_of_another_store_is_refused_not_a_process_abort(linked) -> None:
    """wasmtime aborts the process when an extern of one store is defined in another; the embedder refuses it."""
    import wasmtime

    other = wasmtime.Store()
    report = wasmtime.Func(other, wasmtime.FuncType([wasmtime.ValType.i32()], []), lambda value: None)
    with pytest.raises(LinkRefused, match=re.escape("imports['env']['report'] is a wasmtime.Func made in another Store")):
        GuestInstance(linked, imports={"env": {"report": report, "limit": lambda: 1}})
    store = wasmtime.Store()
    seen = []
    own = wasmtime.Func(store, wasmtime.FuncType([wasmtime.ValType.i32()], []), seen.append)
    g = GuestInstance(linked, store=store, imports={"env": {"report": own, "limit": lambda: 4}})
    assert g.call_export("go") == 4 and seen == [7]
