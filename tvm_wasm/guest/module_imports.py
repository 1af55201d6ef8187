"""A module's imports its embedder must provide, and one wording for those it does not.

The self-contained module imports nothing, but a module linked with
``tvm-wasm link --target guest`` keeps the user's WASI and own imports
(``env.*``, ...). ``GuestInstance`` serves WASI from a ``wasmtime.WasiConfig``
and the rest from ``imports=``; ``tvm-guest.js``'s ``instantiate`` takes an
import object. Whatever is still missing is refused before the engine is asked
(``LinkRefused``), naming every missing import and saying how to supply it:
the list is worded alike on both (``tvm-guest.js``'s generated block carries
these templates), the advice in each embedder's own API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import wasmtime

from ..host.wasi import WASI_MODULE, WasiArg, give_wasi
from ..runtime.link_errors import LinkRefused

UNSATISFIED_IMPORTS = "the module's imports are not all provided: {missing}; {how}"
"""The message of the refusal: every missing import (``IMPORT_ENTRY``, in the module's import order), then advice."""

IMPORT_ENTRY = "{module}.{name} ({kind})"
"""One missing import: its two-level name and its kind (the JS API's kind words: function, memory, global, table)."""

EMBEDDERS = ("GuestInstance", "tvm-guest.js")

LINK_FIRST = ("tvm.* imports mean a user module not linked with the runtime: link it first (`tvm-wasm link "
              "USER.wasm -o OUT.wasm --target guest`), or link it into a running guest module with {link}")
HOST_TARGET = ("tvm_host.* imports mean `tvm-wasm link --target host` output, which only TvmHost runs (it links "
               "the unlinked module itself, with inline=True): link with --target guest")

#: Advice per group of missing imports (``import_group``) and embedder, in the order they are given.
IMPORT_ADVICE: dict[str, dict[str, str]] = {
    "tvm": {"GuestInstance": LINK_FIRST.format(link="GuestInstance.link"),
            "tvm-guest.js": LINK_FIRST.format(link="TvmGuest.link")},
    "tvm_host": {"GuestInstance": HOST_TARGET, "tvm-guest.js": HOST_TARGET},
    WASI_MODULE: {
        "GuestInstance": "serve WASI with wasi=True (inherited stdio, no arguments) or wasi=wasmtime.WasiConfig() "
                         "(arguments, environment, directories, stdio), as TvmHost.run_command takes it",
        "tvm-guest.js": f"pass a WASI preview1 implementation (a WASI shim's import object) as "
                        f"instantiate(source, {{ imports: {{ {WASI_MODULE}: ... }} }})",
    },
    "other": {
        "GuestInstance": "pass the others as imports={module: {name: value}} (a function: a Python callable or "
                         "wasmtime.Func; a memory, global or table: the wasmtime object, made in the instance's store)",
        "tvm-guest.js": "pass the others in instantiate(source, { imports: { module: { name: value } } })",
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


EXTERNS = (wasmtime.Func, wasmtime.Memory, wasmtime.Global, wasmtime.Table)
KINDS = ((wasmtime.FuncType, "function"), (wasmtime.MemoryType, "memory"), (wasmtime.GlobalType, "global"),
         (wasmtime.TableType, "table"))


def import_kind(import_type: object) -> str:
    """The JS API's word for a wasmtime import type (``function``, ``memory``, ``global``, ``table``)."""
    return next((word for kind, word in KINDS if isinstance(import_type, kind)), type(import_type).__name__)


def serve_imports(store: wasmtime.Store, module: wasmtime.Module, wasi: WasiArg,
                  imports: Mapping[str, Mapping[str, object]] | None,
                  instantiate: Callable[[wasmtime.Linker | None], wasmtime.Instance]) -> wasmtime.Instance:
    """Instantiate ``module`` in ``store`` with WASI (``wasi``) and the caller's ``imports`` served, through
    ``instantiate(linker)`` (the embedder's own, which types a trap in a start function; ``None`` for a module
    that imports nothing, given no WASI).

    Raises ``LinkRefused`` naming every import nothing provides (before wasmtime is asked), a value of
    the wrong kind, or a type wasmtime does not accept; ``ValueError`` for a ``WasiConfig`` already used
    or ``imports`` that are not a mapping of mappings."""
    entries = _entries(imports)
    if not module.imports and (wasi is None or wasi is False):
        return instantiate(None)  # the runtime module itself: no linker (about 20 us less per instance)
    linker = wasmtime.Linker(store.engine)
    linker.allow_shadowing = True  # an entry of imports replaces the WASI function of the same name
    if wasi is not None and wasi is not False:
        give_wasi(store, wasi, owner="a GuestInstance's store", each="GuestInstance")
        linker.define_wasi()
    wanted = {(imp.module, imp.name): imp.type for imp in module.imports}
    for module_name, served in entries:
        for name, value in served.items():
            import_type = wanted.get((module_name, name))
            if import_type is None:
                continue  # not imported by this module (an import object may serve several)
            linker.define(store, module_name, name, _extern(store, module_name, name, import_type, value))
    missing = []
    for imp in module.imports:
        try:
            linker.get(store, imp.module, imp.name)
        except wasmtime.WasmtimeError:
            missing.append((imp.module, imp.name, import_kind(imp.type)))
    if missing:
        raise LinkRefused(unsatisfied_message(missing, "GuestInstance"))
    try:
        return instantiate(linker)
    except wasmtime.Trap:
        raise  # the start function's: the embedder types it
    except wasmtime.WasmtimeError as exc:  # an import of the wrong type
        raise LinkRefused(f"the module cannot be instantiated with the imports given: {' '.join(str(exc).split())}") \
            from None


def _entries(imports: Mapping[str, Mapping[str, object]] | None) -> list[tuple[str, Mapping[str, object]]]:
    if imports is None:
        return []
    if not isinstance(imports, Mapping) or not all(isinstance(v, Mapping) for v in imports.values()):
        raise ValueError("imports must map a module name to a mapping of names to values: "
                         "{\"env\": {\"log\": print_value}}")
    return [(str(module), entries) for module, entries in imports.items()]


def _extern(store: wasmtime.Store, module: str, name: str, import_type: object, value: object) -> object:
    """``value`` as the extern for import ``module.name``: a callable becomes a ``wasmtime.Func`` of the import's type."""
    if isinstance(value, EXTERNS):
        return value
    if callable(value) and isinstance(import_type, wasmtime.FuncType):
        return wasmtime.Func(store, import_type, value)
    raise LinkRefused(f"imports[{module!r}][{name!r}] is {type(value).__name__}, but the module imports a "
                      f"{import_kind(import_type)} there: give a "
                      f"{'Python callable or wasmtime.Func' if isinstance(import_type, wasmtime.FuncType) else 'wasmtime.' + type(import_type).__name__.removesuffix('Type')}")
