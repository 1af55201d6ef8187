"""The one binary edit the linker makes itself: the user's memory becomes the import ``tvm.memory``."""

from __future__ import annotations

import pytest
import wasmtime

from tvm_wasm.runtime.link_errors import LinkRefused
from tvm_wasm.runtime import sections
from tvm_wasm.runtime.sections import Limits


def wasm(text: str) -> bytes:
    return bytes(wasmtime.wat2wasm(text))


def imports_of(binary: bytes) -> list[tuple[str, str, str]]:
    module = wasmtime.Module(wasmtime.Engine(), binary)
    return [(i.module, i.name, type(i.type).__name__) for i in module.imports]


def test_a_defined_memory_becomes_an_import_after_the_others_and_its_export_goes():
    source = wasm('(module (import "tvm" "alloc" (func (param i32 i32) (result i64))) (memory (export "memory") 3 9)'
                  ' (data (i32.const 8) "abc") (func (export "f") (result i32) i32.const 8 i32.load8_u))')
    out, limits = sections.memory_as_import(source)
    assert limits == Limits(3, 9)
    assert imports_of(out) == [("tvm", "alloc", "FuncType"), ("tvm", "memory", "MemoryType")]
    exports = [e.name for e in wasmtime.Module(wasmtime.Engine(), out).exports]
    assert exports == ["f"]
    assert sections.data_segment_sizes(out) == sections.data_segment_sizes(source) == [3]
    assert sections.defined_memories(out) == [] and sections.defined_memories(source) == [Limits(3, 9)]


def test_an_imported_env_memory_is_renamed_and_a_module_without_imports_gets_an_import_section():
    out, limits = sections.memory_as_import(wasm('(module (import "env" "memory" (memory 2)) (func))'))
    assert limits == Limits(2, None) and imports_of(out) == [("tvm", "memory", "MemoryType")]
    out, limits = sections.memory_as_import(wasm("(module (memory 1) (func (export \"f\")))"))
    assert imports_of(out) == [("tvm", "memory", "MemoryType")]


def test_no_memory_comes_back_unchanged():
    source = wasm("(module (func))")
    assert sections.memory_as_import(source) == (source, None)


@pytest.mark.parametrize("text, reason", [
    ('(module (memory 1) (memory 1))', "2 memories"),
    ('(module (import "env" "memory" (memory 1)) (memory 1))', "2 memories"),
    ('(module (memory i64 1))', "32-bit"),
    ('(module (memory 1 1 shared))', "unshared"),
])
def test_refused_memories(text, reason):
    with pytest.raises(LinkRefused, match=reason):
        sections.memory_as_import(wasm(text))


def test_not_a_module():
    with pytest.raises(LinkRefused, match="magic"):
        sections.memory_as_import(b"(module)")


@pytest.mark.parametrize("value", [0, 1, 127, 128, 65536, 2**32 - 1])
def test_leb128_round_trip(value):
    assert sections.read_u32(sections.u32(value), 0) == (value, len(sections.u32(value)))
