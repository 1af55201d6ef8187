"""Link a compiled core module with the runtime into one module (``tvm-wasm link``).

Two targets share one pipeline:

- ``guest``: the self-contained module (directory and pools inside, no host)
  merged with the user module; it imports nothing but the user's WASI and
  declared imports, and runs in wasmtime and browsers.
- ``host``: the raw-ABI runtime merged with the user module and inlined into
  it; the directory and the pools become imports (``tvm_host.*``) that only
  ``TvmHost``'s private linker supplies, the slow paths (fault-in, Freelist,
  errors) stay calls into the host.

Steps: check the user module's imports and exports (``policy``), make its
memory the runtime's ``memory`` (``sections``), build a runtime whose memory
has the user's limits, merge with Binaryen's ``wasm-merge`` (the user's
``tvm.*`` imports resolve to the runtime's exports), verify that user code
names nothing of the runtime's but its exported functions (``verify``),
optionally inline with ``wasm-opt``, and validate with ``wasm-tools validate``
and wasmtime.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import wasmtime

from ..abi.table import HOST, MODULE
from ..guest.module import (
    bridge_funcs,
    build_module,
    check_limits,
    guest_memory,
    private_bridge_fields,
    validation_engine,
)
from ..guest.touched import TOUCHED_PAGES
from ..runtime import layout as L
from ..runtime.conventions import COLD_PREFIX
from ..runtime.core_module import abi_funcs, cold_names, host_control_wrappers, host_imports
from ..runtime.clocked import clocked_funcs
from ..runtime.hoisted import HOIST_PREFIX, hoist_funcs
from ..runtime.wat import Module
from ..runtime import sections
from . import binaryen_cache, policy, tools
from .errors import LinkRefused, ToolFailed, VerificationFailed
from .clocked import ClockReport, clock_text
from .hoist import Helpers, HoistReport, hoist_text
from .names import prefix_function_names, runtime_internals
from .verify import MARK, RuntimeCounts, mark_runtime, unmark, verify

Target = Literal["guest", "host"]
TARGETS = ("guest", "host")
USER_NAME = "user"
RUNTIME_NAME = "tvm"
#: The host target's runtime exports its ABI under these names (user imports ``tvm.X`` are renamed to
#: match), so a user module may export ``alloc``, ``load_u32``... itself, as proxy guests do.
HOST_ABI_PREFIX = "tvm:"
#: ``wasm-opt`` flags that inline the runtime's fast paths into user loops (measured: ``-O3 --inlining``
#: alone left the typed-load call in the loop; raising the always-inline size and optimizing after
#: inlining removes it).
#: Binaryen drops the name section unless asked to keep it (``-g``/``--debuginfo``); kept, a trap in a linked
#: module names the user's or the runtime's function instead of ``wasm function N``.
KEEP_NAMES = ["--debuginfo"]
INLINE_FLAGS = ["-O3", "--inlining-optimizing", "--always-inline-max-function-size=400",
                "--flexible-inline-max-function-size=1200"]


@dataclass(frozen=True)
class LinkedModule:
    """A linked module and how it was made."""

    wasm: bytes
    target: Target
    pools: int
    max_pages: int
    inlined: bool
    memory: sections.Limits | None
    imports: tuple[tuple[str, str], ...]  # what the linked module still imports
    hoisted: HoistReport = dataclasses.field(default_factory=HoistReport)  # loops the hoisting pass rewrote
    clocked: ClockReport = dataclasses.field(default_factory=ClockReport)  # loops keeping the clock in a local

    def save(self, path: str | os.PathLike[str]) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.wasm)
        return target


def as_binary(user: bytes | str | os.PathLike[str]) -> bytes:
    """A core module's bytes from bytes, WAT text, or a path to either."""
    if isinstance(user, os.PathLike):
        user = Path(user).read_bytes()
    if isinstance(user, str):
        user = user.encode()
    if user.startswith(b"\0asm"):
        if user[4:8] != b"\x01\0\0\0":
            raise LinkRefused("a component or unknown wasm version: tvm-wasm link takes core modules")
        return user
    try:
        return bytes(wasmtime.wat2wasm(user.decode()))
    except (UnicodeDecodeError, wasmtime.WasmtimeError) as exc:
        raise LinkRefused(f"neither a wasm binary nor valid WAT: {str(exc).splitlines()[0]}") from exc


@cache
def _engine() -> wasmtime.Engine:
    return validation_engine()


def compile_checked(wasm: bytes, what: str) -> wasmtime.Module:
    try:
        return wasmtime.Module(_engine(), wasm)
    except wasmtime.WasmtimeError as exc:
        raise LinkRefused(f"{what} is not a valid module: {str(exc).splitlines()[0]}") from exc


# ---------------------------------------------------------------- runtimes
def cold_exports() -> list[str]:
    """The runtime's cold functions exported under ``HOIST_PREFIX``: the hoisting pass finds them by these
    exports (a merge drops function names), names them for ``--no-inline`` and removes the exports."""
    return [f'(export "{HOIST_PREFIX}{name}" (func ${name}))' for name in cold_names()]


def guest_runtime(pools: int, max_pages: int, memory: sections.Limits | None, meta_max_pages: int) -> bytes:
    pages = memory.min if memory else 1
    helpers = "\n".join([*(func.render() for func in [*hoist_funcs(pools, TOUCHED_PAGES), *clocked_funcs(pools)]),
                         *cold_exports()])
    return build_module(pools=pools, max_pages=max_pages, guest_pages=pages, user_wat=helpers,
                        guest_max_pages=memory.max if memory else None, meta_max_pages=meta_max_pages).wasm


def host_runtime_wat(pools: int, memory: sections.Limits | None) -> str:
    """The host runtime with the guest's memory inside: imports the directory, pools and slow paths."""
    module = Module()
    module.imports += host_imports(pools)
    module.fields.append(guest_memory(memory.min if memory else 1, memory.max if memory else None))
    module.fields += private_bridge_fields()
    bridges = bridge_funcs(pools)
    module.fields.append(f"(elem (table $bridge) (i32.const 0) func {' '.join('$' + f.name for f in bridges)})")
    for func in [*host_control_wrappers(), *abi_funcs(pools)]:  # the lifecycle and queries call into the host
        module.add(dataclasses.replace(func, export=HOST_ABI_PREFIX + func.export if func.export else None))
    for func in bridges:
        module.add(func)
    for func in [*hoist_funcs(pools), *clocked_funcs(pools)]:  # exported for the linker's passes only; it removes
        module.add(func)                                       # the exports
    module.fields += cold_exports()
    return module.render()


def host_runtime(pools: int, memory: sections.Limits | None) -> bytes:
    return bytes(wasmtime.wat2wasm(host_runtime_wat(pools, memory)))


# ---------------------------------------------------------------- tools
def _binaryen(tool: str, inputs: list[tuple[bytes, str | None]], extra: list[str]) -> bytes:
    """Run a Binaryen tool on in-memory modules through files in a temporary folder; outputs are
    cached by tool, arguments and inputs (``binaryen_cache``), so linking the same module again runs nothing."""
    names = [name or "" for _, name in inputs]
    modules = [wasm for wasm, _ in inputs]

    def run() -> bytes:
        with tempfile.TemporaryDirectory(prefix="tvm-link-") as folder:
            args: list[str] = []
            for n, (wasm, name) in enumerate(inputs):
                path = Path(folder) / f"in{n}.wasm"
                path.write_bytes(wasm)
                args += [str(path)] + ([name] if name else [])
            out = Path(folder) / "out.wasm"
            start = tools.command(tool, sum(map(len, modules)))
            tools.run([*start, *tools.BINARYEN_FEATURES, *args, *extra, *KEEP_NAMES, "-o", str(out)])
            return out.read_bytes()

    return binaryen_cache.cached(tools.binaryen(tool), [*tools.BINARYEN_FEATURES, *names, *extra, *KEEP_NAMES],
                                 modules, run)


def merge(runtime_wasm: bytes, user_wasm: bytes) -> bytes:
    """``wasm-merge``: the user's ``tvm.*`` imports resolve to the runtime's exports (runtime first)."""
    return _binaryen("wasm-merge", [(runtime_wasm, RUNTIME_NAME), (user_wasm, USER_NAME)], [])


def inline(wasm: bytes) -> bytes:
    return _binaryen("wasm-opt", [(wasm, None)], INLINE_FLAGS)


def binaryen_text(wasm: bytes) -> str:
    """Binaryen's folded text of a module (``wasm-opt --print``), what the hoisting pass rewrites; cached
    like every Binaryen output (``binaryen_cache``), so an inlined link of the same module prints nothing."""

    def run() -> bytes:
        with tempfile.TemporaryDirectory(prefix="tvm-link-") as folder:
            path = Path(folder) / "in.wasm"
            path.write_bytes(wasm)
            return tools.run([tools.binaryen("wasm-opt"), *tools.BINARYEN_FEATURES, str(path), "--print"])

    tool = tools.binaryen("wasm-opt")
    return binaryen_cache.cached(tool, [*tools.BINARYEN_FEATURES, "--print"], [wasm], run).decode()


def without_hoist_exports(wasm: bytes) -> bytes:
    return sections.edit_exports(wasm, lambda entries: [e for e in entries if not e[0].startswith(HOIST_PREFIX)])


def hoist(merged: bytes, abi_prefix: str, pools: int) -> tuple[bytes, HoistReport, ClockReport]:
    """The hoisting pass (:mod:`.hoist`) and the clock pass (:mod:`.clocked`) over the merged module, then
    inlining; the helpers' exports are gone."""
    original = binaryen_text(merged)
    text, report = hoist_text(original, abi_prefix, pools)
    text, clocked = clock_text(text, Helpers.of(original, abi_prefix), pools)
    keep_calls = f"--no-inline={COLD_PREFIX}*"  # the runtime's slow paths and the pass's cold helpers
    return _binaryen("wasm-opt", [(text.encode(), None)], [keep_calls, *INLINE_FLAGS]), report, clocked


def validate(wasm: bytes) -> None:
    """``wasm-tools validate``, then wasmtime's own validation with the runtime's proposals."""
    tools.run([tools.wasm_tools(), "validate"], input=wasm)
    try:
        wasmtime.Module.validate(_engine(), wasm)
    except wasmtime.WasmtimeError as exc:
        raise ToolFailed(f"the linked module does not validate in wasmtime: {exc}") from exc


# ---------------------------------------------------------------- the pipeline
def link(
    user: bytes | str | os.PathLike[str],
    *,
    target: Target = "guest",
    pools: int = 4,
    max_pages: int = L.WASM32_MAX_PAGES,
    meta_max_pages: int = L.WASM32_MAX_PAGES,
    inline_runtime: bool | None = None,
    allow_imports: Iterable[str] = (),
) -> LinkedModule:
    """Link ``user`` (wasm bytes, WAT, or a path) for ``target``; the result is verified and validated.

    ``pools``/``max_pages`` size the pools of the ``guest`` target (each up to
    ``max_pages`` 64 KiB pages); the ``host`` target takes the host's pool
    count. ``inline_runtime`` (default: on for ``host``, off for ``guest``)
    runs ``wasm-opt`` to inline the runtime's fast paths into user code.
    ``allow_imports`` declares extra function imports (``module.name`` or
    ``module.*``). Raises ``LinkRefused`` for a module that asks for what user
    code may not have, ``ToolMissing``/``ToolFailed`` for the tools, and
    ``VerificationFailed`` if the output breaks the isolation rule.
    """
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    check_limits(pools, 0, max_pages, meta_max_pages)
    rules = policy.ImportRules.parse(allow_imports)
    original = as_binary(user)
    user_module = compile_checked(original, "the user module")
    policy.check_not_linked(user_module)
    prefix = HOST_ABI_PREFIX if target == "host" else ""
    rewritten, memory = sections.memory_as_import(original, abi_prefix=prefix)
    if target == "guest":
        runtime_wasm = guest_runtime(pools, max_pages, memory, meta_max_pages)
    else:
        runtime_wasm = host_runtime(pools, memory)
    runtime_module = compile_checked(runtime_wasm, "the generated runtime")
    policy.check_imports(user_module, runtime_module, rules, prefix, deployment=HOST if target == "host" else MODULE,
                         pools=pools, internals=runtime_internals(runtime_wasm, runtime_module))
    policy.check_exports(user_module, runtime_module, (MARK, HOIST_PREFIX), target)
    merged = merge(mark_runtime(prefix_function_names(runtime_wasm)), rewritten)
    abi = {e.name for e in runtime_module.exports if not e.name.startswith(HOIST_PREFIX)}
    verify(without_hoist_exports(merged), RuntimeCounts.of(runtime_wasm), abi)
    merged = unmark(merged)
    do_inline = target == "host" if inline_runtime is None else inline_runtime
    report, clocked = HoistReport(), ClockReport()
    if do_inline:
        linked, report, clocked = hoist(merged, prefix, pools)
    else:
        linked = without_hoist_exports(merged)
    validate(linked)
    compiled = compile_checked(linked, "the linked module")
    if any(e.name.startswith(HOIST_PREFIX) for e in compiled.exports):
        raise VerificationFailed("a hoist helper is still exported")
    remaining = tuple((i.module, i.name) for i in compiled.imports)
    return LinkedModule(linked, target, pools, max_pages, do_inline, memory, remaining, report, clocked)
