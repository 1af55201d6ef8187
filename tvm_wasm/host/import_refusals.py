"""One wording for a module's imports that its embedder does not provide.

``TvmHost`` serves ``tvm.*`` (and WASI when asked); ``GuestInstance`` serves WASI
from a ``wasmtime.WasiConfig`` and the rest from ``imports=``; ``tvm-guest.js``'s
``instantiate`` takes an import object. Whatever is still missing is refused
before the engine is asked (``LinkRefused``), naming every missing import and
saying how to supply it: the list is worded alike on every embedder
(``tvm-guest.js``'s generated block carries these templates), the advice in
each embedder's own API. ``tvm-wasm run`` is ``TvmHost``'s.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import wasmtime

from ..runtime.link_errors import LinkRefused
from .wasi import WASI_MODULE

UNSATISFIED_IMPORTS = "the module's imports are not all provided: {missing}; {how}"
"""The message of the refusal: every missing import (``IMPORT_ENTRY``, in the module's import order), then advice."""

IMPORT_ENTRY = "{module}.{name} ({kind})"
"""One missing import: its two-level name and its kind (the JS API's kind words: function, memory, global, table)."""

WRONG_IMPORT = "the module cannot be instantiated with the imports given: {reason}"
"""The refusal when every import is there but the engine does not accept one (a wrong type): wasmtime's reason."""

EMBEDDERS = ("GuestInstance", "tvm-guest.js", "TvmHost")

LINK_FIRST = ("tvm.* imports mean a user module not linked with the runtime: link it first (`tvm-wasm link "
              "USER.wasm -o OUT.wasm --target guest`), or link it into a running guest module with {link}")
HOST_TARGET = ("tvm_host.* imports mean `tvm-wasm link --target host` output, which only TvmHost runs (it links "
               "the unlinked module itself, with inline=True): link with --target guest")

#: Advice per group of missing imports (``import_group``) and embedder, in the order they are given.
IMPORT_ADVICE: dict[str, dict[str, str]] = {
    "tvm": {"GuestInstance": LINK_FIRST.format(link="GuestInstance.link"),
            "tvm-guest.js": LINK_FIRST.format(link="TvmGuest.link"),
            "TvmHost": "TvmHost serves the tvm.* functions of the ABI table's host set and tvm.memory"},
    "tvm_host": {"GuestInstance": HOST_TARGET, "tvm-guest.js": HOST_TARGET,
                 "TvmHost": "tvm_host.* imports mean `tvm-wasm link --target host` output: give TvmHost the "
                            "unlinked module with inline=True (tvm-wasm run --inline)"},
    WASI_MODULE: {
        "GuestInstance": "serve WASI with wasi=True (inherited stdio, no arguments) or wasi=wasmtime.WasiConfig() "
                         "(arguments, environment, directories, stdio), as TvmHost.run_command takes it",
        "tvm-guest.js": f"pass a WASI preview1 implementation (a WASI shim's import object) as "
                        f"instantiate(source, {{ imports: {{ {WASI_MODULE}: ... }} }})",
        "TvmHost": "TvmHost serves wasmtime's WASI preview1 (wasi=True or a wasmtime.WasiConfig; tvm-wasm run "
                   "always does), which defines no other WASI names",
    },
    "other": {
        "GuestInstance": "pass the others as imports={module: {name: value}} (a function: a Python callable or "
                         "wasmtime.Func; a memory, global or table: the wasmtime object, made in the instance's store)",
        "tvm-guest.js": "pass the others in instantiate(source, { imports: { module: { name: value } } })",
        "TvmHost": "TvmHost (and tvm-wasm run) serves only tvm.* and WASI: link the module without keeping them "
                   "(`tvm-wasm link` refuses them unless --allow-import), run it with GuestInstance(..., "
                   "imports={module: {name: value}}), or define them in TvmHost.linker before instantiate "
                   "(not with inline=True)",
    },
}


def import_group(module: str) -> str:
    """Which advice a missing import from ``module`` gets (a key of ``IMPORT_ADVICE``)."""
    return module if module in IMPORT_ADVICE else "other"


def unsatisfied_message(missing: Iterable[tuple[str, str, str]], embedder: str) -> str:
    """The refusal's words for ``missing`` ``(module, name, kind)`` imports on ``embedder`` (``EMBEDDERS``)."""
    if embedder not in EMBEDDERS:
        raise ValueError(f"embedder must be one of {EMBEDDERS}, got {embedder!r}")
    missing = list(missing)
    groups = dict.fromkeys(import_group(module) for module, _, _ in missing)
    how = "; ".join(IMPORT_ADVICE[group][embedder] for group in IMPORT_ADVICE if group in groups)
    entries = ", ".join(IMPORT_ENTRY.format(module=module, name=name, kind=kind) for module, name, kind in missing)
    return UNSATISFIED_IMPORTS.format(missing=entries, how=how)


def js_advice() -> dict[str, str]:
    """``tvm-guest.js``'s advice by group, for its generated block."""
    return {group: advice["tvm-guest.js"] for group, advice in IMPORT_ADVICE.items()}


UNUSED_IMPORT = "imports[{module!r}][{name!r}] is not an import of the module{suggestion}: it imports {imported}"
"""The refusal of an entry the module does not import (a misspelt name, most often): what it does import from
that module name, and the nearest of those names when one is close."""


def unused_message(module: str, name: str, imported: list[str]) -> str:
    """``UNUSED_IMPORT`` for entry ``module.name``, given the names the module imports from ``module``."""
    close = difflib.get_close_matches(name, imported, n=1)
    listing = (f"from {module!r}: " + ", ".join(imported)) if imported else f"nothing from {module!r}"
    return UNUSED_IMPORT.format(module=module, name=name, imported=listing,
                                suggestion=f" (did you mean {close[0]!r}?)" if close else "")


KINDS = ((wasmtime.FuncType, "function"), (wasmtime.MemoryType, "memory"), (wasmtime.GlobalType, "global"),
         (wasmtime.TableType, "table"))


def import_kind(import_type: object) -> str:
    """The JS API's word for a wasmtime import type (``function``, ``memory``, ``global``, ``table``)."""
    return next((word for kind, word in KINDS if isinstance(import_type, kind)), type(import_type).__name__)


def refuse_missing(linker: wasmtime.Linker, store: wasmtime.Store, module: wasmtime.Module, embedder: str) -> None:
    """``LinkRefused`` (``unsatisfied_message``) naming every import of ``module`` that ``linker`` does not define."""
    missing = []
    for imp in module.imports:
        try:
            linker.get(store, imp.module, imp.name)
        except wasmtime.WasmtimeError:
            missing.append((imp.module, imp.name, import_kind(imp.type)))
    if missing:
        raise LinkRefused(unsatisfied_message(missing, embedder))


def wrong_import(exc: wasmtime.WasmtimeError) -> LinkRefused:
    """The refusal of an instantiation the engine turned down with every import present (``WRONG_IMPORT``)."""
    return LinkRefused(WRONG_IMPORT.format(reason=" ".join(str(exc).split())))
