"""GuestInstance serves what a module linked with ``--target guest`` kept importing: WASI and the user's own imports.

Real clang wasm32-wasi programs, linked by the same linker users run, then run by ``GuestInstance`` as
``TvmHost.run_command`` and ``tvm-wasm run`` run them (``_start``, the ``proc_exit`` status, stdout to a
file); whatever is not provided is refused with ``LinkRefused`` naming each import, never a bare
``WasmtimeError`` ("expected 6 imports, found 0").
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import wasmtime
from c_guests import WASI_COMMAND_C, WASI_PRELUDE_C, clang

from tvm_wasm import Handle, OutOfBounds, TvmError, TvmHost
from tvm_wasm.guest import GuestInstance
from tvm_wasm.guest.module_imports import IMPORT_ADVICE, unsatisfied_message
from tvm_wasm.linker import link
from tvm_wasm.runtime.link_errors import LinkRefused

# A typed access past its block's region: the run stops with OutOfBounds naming the C function.
SCRIBBLE_C = WASI_PRELUDE_C + r"""
__attribute__((noinline)) uint32_t scribble_records(int32_t r, uint32_t n) {
  int64_t h = tvm_alloc(r, 64);
  uint32_t s = 0;
  for (uint32_t i = 0; i < n; i++) { tvm_store_u32(h, 4 * i, i); s += tvm_load_u32(h, 4 * i); }
  return s;
}
int main(void) {
  printf("before\n");
  fflush(stdout);
  return (int)scribble_records(tvm_create_region(1, 4096), 2000);
}
"""

# A reactor (a WASI library): its constructors run in _initialize, which GuestInstance calls once.
REACTOR_C = WASI_PRELUDE_C + r"""
static uint32_t ready = 0;
__attribute__((constructor)) static void init(void) { ready += 41; }
__attribute__((export_name("ready"))) uint32_t is_ready(void) { return ready; }
"""


def linked(binaryen, tmp_path, source: str, name: str, *flags: str) -> bytes:
    wasm = clang(source, tmp_path / f"{name}.wasm", *flags, target="wasm32-wasi")
    return link(wasm, target="guest", pools=2, allow_imports=["env.report"]).wasm


@pytest.fixture(scope="module")
def command(binaryen, tmp_path_factory) -> bytes:
    return linked(binaryen, tmp_path_factory.mktemp("wasi"), WASI_COMMAND_C, "command")


def wasi_config(tmp_path, *argv: str) -> tuple[wasmtime.WasiConfig, object]:
    config = wasmtime.WasiConfig()
    config.argv = ["command", *argv]
    out = tmp_path / "stdout.txt"
    config.stdout_file = str(out)
    return config, out


def test_a_linked_wasi_command_runs_to_its_exit_status_with_stdout_in_a_file(command, tmp_path):
    reported = []
    config, out = wasi_config(tmp_path, "1000", "3")
    with GuestInstance(command, wasi=config, imports={"env": {"report": reported.append}}) as g:
        assert g.run_command() == 3  # main's return value goes to proc_exit
        expected = sum(3 * i + 1 for i in range(1000))
        assert out.read_text() == f"records 1000 sum {expected}\n"
        assert reported == [expected]
        info = g.region_info(1)  # the region the command created stays readable
        assert g.read(Handle(1, info.generation, 0), 8) == (1).to_bytes(4, "little") + (4).to_bytes(4, "little")
        with pytest.raises(ValueError, match="already ran its command: a WASI command runs once per instance"):
            g.run_command()


def test_the_same_status_and_output_as_tvm_host_run_command(command, tmp_path):
    """The linked module runs on TvmHost too (``tvm-wasm run``'s path): same status, same stdout."""
    outputs = []
    for embedder in ("guest", "host"):
        folder = tmp_path / embedder
        folder.mkdir()
        config, out = wasi_config(folder, "77", "0")
        report = {"env": {"report": lambda value: None}}
        if embedder == "guest":
            status = GuestInstance(command, wasi=config, imports=report).run_command()
        else:
            host = TvmHost()
            host.linker.define_func("env", "report", wasmtime.FuncType([wasmtime.ValType.i32()], []), lambda v: None)
            status = host.run_command(command, wasi=config)
        outputs.append((status, out.read_text()))
    assert outputs[0] == outputs[1] == (0, f"records 77 sum {sum(3 * i + 1 for i in range(77))}\n")


def test_wasi_true_inherits_stdio(command, capfd):
    g = GuestInstance(command, wasi=True, imports={"env": {"report": lambda v: None}})
    assert g.run_command() == 0  # no arguments: 4 records
    assert capfd.readouterr().out == f"records 4 sum {sum(3 * i + 1 for i in range(4))}\n"


def test_missing_imports_are_refused_naming_each_and_how_to_supply_it(command):
    module = wasmtime.Module(wasmtime.Engine(), command)
    wasi = [imp.name for imp in module.imports if imp.module == "wasi_snapshot_preview1"]
    assert len(wasi) >= 4 and [(i.module, i.name) for i in module.imports if i.module != "wasi_snapshot_preview1"] == [
        ("env", "report")]
    with pytest.raises(LinkRefused) as refused:
        GuestInstance(command)
    assert isinstance(refused.value, TvmError) and isinstance(refused.value, ValueError)
    message = str(refused.value)
    for imp in module.imports:
        assert f"{imp.module}.{imp.name} (function)" in message
    assert message == unsatisfied_message([(i.module, i.name, "function") for i in module.imports], "GuestInstance")
    assert "wasi=True" in message and "wasi=wasmtime.WasiConfig()" in message and "imports={module: {name: value}}" in message
    # WASI served, env.report still missing: only it is named, with only its advice
    with pytest.raises(LinkRefused, match=re.escape("not all provided: env.report (function); pass the others as")):
        GuestInstance(command, wasi=True)
    # env served, WASI missing
    with pytest.raises(LinkRefused) as refused:
        GuestInstance(command, imports={"env": {"report": print}})
    assert "env.report" not in str(refused.value)
    assert str(refused.value).endswith(IMPORT_ADVICE["wasi_snapshot_preview1"]["GuestInstance"])


def test_imports_of_the_wrong_kind_or_shape_are_refused(command):
    with pytest.raises(LinkRefused, match=r"imports\['env'\]\['report'\] is int, but the module imports a function"):
        GuestInstance(command, wasi=True, imports={"env": {"report": 5}})
    with pytest.raises(ValueError, match="imports must map a module name to a mapping"):
        GuestInstance(command, wasi=True, imports={"env": print})
    store = wasmtime.Store(wasmtime.Engine())
    wrong = wasmtime.Func(store, wasmtime.FuncType([], []), lambda: None)  # () -> (), the import is (i32) -> ()
    with pytest.raises(LinkRefused, match="cannot be instantiated with the imports given"):
        GuestInstance(command, store=store, wasi=True, imports={"env": {"report": wrong}})


def test_a_wasi_config_is_consumed(command):
    config = wasmtime.WasiConfig()
    GuestInstance(command, wasi=config, imports={"env": {"report": print}})
    with pytest.raises(ValueError, match="this wasmtime.WasiConfig was already used"):
        GuestInstance(command, wasi=config, imports={"env": {"report": print}})


def test_an_import_replaces_one_wasi_function(command, tmp_path):
    """An entry of imports wins over WASI's function of the same name (a deterministic clock, say)."""
    exits = []

    def proc_exit(code: int) -> None:
        exits.append(code)
        raise RuntimeError("exit intercepted")

    config, _ = wasi_config(tmp_path, "3", "5")
    g = GuestInstance(command, wasi=config, imports={"env": {"report": print},
                                                     "wasi_snapshot_preview1": {"proc_exit": proc_exit}})
    with pytest.raises(RuntimeError, match="exit intercepted"):
        g.run_command()
    assert exits == [5]


def test_a_typed_access_fault_in_a_command_names_the_user_function(binaryen, tmp_path):
    wasm = linked(binaryen, tmp_path, SCRIBBLE_C, "scribble")
    config, out = wasi_config(tmp_path)
    g = GuestInstance(wasm, wasi=config)
    with pytest.raises(OutOfBounds) as fault:
        g.run_command()
    assert str(fault.value) == ("store_u32(r1@1+0) accessing 4 byte(s) at offset 0x1000: region r1 at generation 1 "
                                "(in scribble_records) [region=1, gen=1, offset=0x1000, len=4, capacity=4096]")
    assert out.read_text() == "before\n"
    host = TvmHost()
    config, _ = wasi_config(tmp_path)
    with pytest.raises(OutOfBounds) as on_host:
        host.run_command(wasm, wasi=config)
    assert str(on_host.value) == str(fault.value)  # tvm-wasm run's words


def test_a_reactor_is_initialised_once_and_a_library_is_not_a_command(binaryen, tmp_path):
    wasm = linked(binaryen, tmp_path, REACTOR_C, "reactor", "-mexec-model=reactor")
    g = GuestInstance(wasm, wasi=True)
    assert g.call(g.instance, "ready") == 41  # its constructor ran once, in _initialize
    with pytest.raises(ValueError, match="not a WASI command: the module exports no _start"):
        g.run_command()


def test_the_runtime_module_and_a_module_with_no_imports_need_nothing(c_modules, binaryen):
    linked_module = link(c_modules["imported"], target="guest", pools=2)
    g = GuestInstance(linked_module.wasm)
    assert g.call(g.instance, "greeting_byte", 0) == ord("l")
    with pytest.raises(ValueError, match="not a WASI command"):
        g.run_command()


def test_an_unlinked_user_module_is_told_to_link_first(c_modules):
    with pytest.raises(LinkRefused) as refused:
        GuestInstance(c_modules["imported"])
    message = str(refused.value)
    assert "tvm.alloc (function)" in message and "env.memory (memory)" in message
    assert "link it first (`tvm-wasm link USER.wasm -o OUT.wasm --target guest`)" in message


def test_the_readme_example_runs_as_written(binaryen, tmp_path, monkeypatch):
    """README's "Modules that import" Python block, on a clang WASI program with an import of its own."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    start = readme.index("**Modules that import (WASI programs linked `--target guest`).**")
    code = re.compile(r"```python\n(.*?)```", re.DOTALL).search(readme, start).group(1)  # type: ignore[union-attr]
    clang(WASI_COMMAND_C, tmp_path / "prog.wasm", target="wasm32-wasi")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - running the documented example is the test
    assert scope["status"] == 0
    assert (tmp_path / "prog.out").read_text() == f"records 1000 sum {sum(3 * i + 1 for i in range(1000))}\n"
