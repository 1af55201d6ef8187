"""A module's imports ``GuestInstance`` serves, and its refusal of those nobody provides.

The self-contained module imports nothing, but a module linked with
``tvm-wasm link --target guest`` keeps the user's WASI and own imports
(``env.*``, ...). ``GuestInstance`` serves WASI from a ``wasmtime.WasiConfig``
and the rest from ``imports=``. Whatever is still missing is refused before the
engine is asked (``LinkRefused``), worded by the one table every embedder uses
(``host.import_refusals``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import wasmtime

from ..host.import_refusals import (IMPORT_ADVICE, import_kind, refuse_missing, unsatisfied_message, unused_message,
                                    wrong_import)

__all__ = ["IMPORT_ADVICE", "serve_imports", "unsatisfied_message"]  # the table's names as this module's users know them
from ..host.native import store_id
from ..host.wasi import WASI_MODULE, WasiArg, give_wasi
from ..runtime.link_errors import LinkRefused

EXTERNS = (wasmtime.Func, wasmtime.Memory, wasmtime.Global, wasmtime.Table)


def serve_imports(store: wasmtime.Store, module: wasmtime.Module, wasi: WasiArg,
                  imports: Mapping[str, Mapping[str, object]] | None,
                  instantiate: Callable[[wasmtime.Linker | None], wasmtime.Instance]) -> wasmtime.Instance:
    """Instantiate ``module`` in ``store`` with WASI (``wasi``) and the caller's ``imports`` served, through
    ``instantiate(linker)`` (the embedder's own, which types a trap in a start function; ``None`` for a module
    that imports nothing, given no WASI).

    Raises ``LinkRefused`` naming every import nothing provides (before wasmtime is asked), an entry of
    ``imports`` the module does not import (a misspelt name: the module's imports of that module name and the
    nearest; entries under WASI's module name are a WASI implementation's and may go unused), a value of
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
                if module_name == WASI_MODULE:
                    continue  # a WASI implementation serves the whole interface, whatever the module uses
                imported = [imp.name for imp in module.imports if imp.module == module_name]
                raise LinkRefused(unused_message(module_name, str(name), imported))
            linker.define(store, module_name, name, _extern(store, module_name, name, import_type, value))
    refuse_missing(linker, store, module, "GuestInstance")
    try:
        return instantiate(linker)
    except wasmtime.Trap:
        raise  # the start function's: the embedder types it
    except wasmtime.WasmtimeError as exc:  # an import of the wrong type
        raise wrong_import(exc) from None


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
        if store_id(value) != store_id(store):  # wasmtime would abort the process, not raise
            raise LinkRefused(f"imports[{module!r}][{name!r}] is a wasmtime.{type(value).__name__} made in another "
                              f"Store: make it in the instance's store (store = wasmtime.Store(engine), then "
                              f"GuestInstance(module, store=store, imports=...)), or pass a Python callable")
        return value
    if callable(value) and isinstance(import_type, wasmtime.FuncType):
        return wasmtime.Func(store, import_type, value)
    raise LinkRefused(f"imports[{module!r}][{name!r}] is {type(value).__name__}, but the module imports a "
                      f"{import_kind(import_type)} there: give a "
                      f"{'Python callable or wasmtime.Func' if isinstance(import_type, wasmtime.FuncType) else 'wasmtime.' + type(import_type).__name__.removesuffix('Type')}")
