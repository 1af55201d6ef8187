"""Errors of linking a user module with the runtime (statically, or at run time).

They live below every layer that links (the binary edits here in ``runtime``,
``TvmHost.instantiate``, ``GuestInstance.link``, the linker): a refused module
is a ``TvmError`` with code 9 ("other"); it names the import, export or memory
and says why. :func:`refuse_imports` applies the one classification of a user
module's imports (``abi.imports.refused_import``) to a compiled module.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import wasmtime

from ..abi.imports import ImportDecl, first_refused, signature_text
from ..core.errors import TvmError

KINDS = {wasmtime.FuncType: "func", wasmtime.MemoryType: "memory", wasmtime.TableType: "table",
         wasmtime.GlobalType: "global"}


class LinkError(TvmError):
    """Linking a user module failed (statically with ``tvm-wasm link``, or at run time)."""


class LinkRefused(LinkError, ValueError):
    """The user module may not be linked: it is malformed, or asks for what no user code may have
    (the pools, the directory, the bridge table, runtime globals, a memory other than its one)."""


def import_decls(module: wasmtime.Module) -> list[ImportDecl]:
    """A compiled module's imports as :func:`~tvm_wasm.abi.imports.refused_import` reads them."""
    decls = []
    for imp in module.imports:
        kind = imp.type
        if isinstance(kind, wasmtime.FuncType):
            decls.append(ImportDecl(imp.module, imp.name, "func", func_signature(kind)))
        else:
            decls.append(ImportDecl(imp.module, imp.name, KINDS.get(type(kind), "tag")))
    return decls


def func_signature(func_type: wasmtime.FuncType) -> str:
    return signature_text([str(t) for t in func_type.params], [str(t) for t in func_type.results])


def served_functions(runtime: wasmtime.Module, prefix: str = "") -> dict[str, str]:
    """Name (without ``prefix``) -> signature of every function ``runtime`` exports under ``prefix``."""
    return {e.name.removeprefix(prefix): func_signature(e.type) for e in runtime.exports
            if isinstance(e.type, wasmtime.FuncType) and e.name.startswith(prefix)}


def refuse_imports(user: wasmtime.Module, served: Mapping[str, str], deployment: str, *, pools: int | None = None,
                   internals: Collection[str] = (), abi_module: str = "tvm", skip: Collection[str] = ()) -> None:
    """``LinkRefused`` naming the first import of ``user`` the runtime refuses (``abi.imports.first_refused``);
    imports of kinds in ``skip`` are left to the caller."""
    decls = [d for d in import_decls(user) if d.kind not in skip]
    why = first_refused(decls, served, deployment, pools=pools, internals=internals, abi_module=abi_module)
    if why:
        raise LinkRefused(why)
