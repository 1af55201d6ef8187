"""What a user module may ask for before it is linked (the first line of "no way out").

A user module may import: ``tvm.<function>`` for any function the runtime
exports, with the runtime's signature; its one memory as ``tvm.memory`` or
``env.memory``; WASI functions (they stay imports of the linked module); and
functions its author declares (``allow_imports``, as ``module.name`` or
``module.*``). Everything else is refused: the pools, the directory, the
bridge table and the runtime's globals are never importable, nor are memories
other than the one, tables, globals or tags. Its exports must not shadow the
runtime's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import wasmtime

from ..abi.imports import unserved_import
from ..abi.table import MODULE
from .errors import LinkRefused

WASI_MODULES = frozenset({"wasi_snapshot_preview1", "wasi_unstable"})
#: Module names the runtime owns; a user's declared imports may not use them.
RESERVED_MODULES = frozenset({"tvm", "tvm_host", "tvm_guest"})
MEMORY_IMPORTS = frozenset({("tvm", "memory"), ("env", "memory")})


@dataclass(frozen=True)
class ImportRules:
    """Declared imports: exact ``module.name`` pairs and whole modules (``module.*``)."""

    names: frozenset[tuple[str, str]] = frozenset()
    modules: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, declared: Iterable[str]) -> ImportRules:
        names, modules = set(), set()
        for item in declared:
            module, dot, field = item.partition(".")
            if not dot or not module or not field:
                raise ValueError(f"a declared import is MODULE.NAME or MODULE.*, got {item!r}")
            if module in RESERVED_MODULES or module in WASI_MODULES:
                raise ValueError(f"{module!r} imports are the runtime's or WASI's; they cannot be declared")
            if field == "*":
                modules.add(module)
            else:
                names.add((module, field))
        return cls(frozenset(names), frozenset(modules))

    def allows(self, module: str, field: str) -> bool:
        return module in self.modules or (module, field) in self.names


def signature(func_type: wasmtime.FuncType) -> str:
    params = " ".join(str(t) for t in func_type.params)
    results = " ".join(str(t) for t in func_type.results)
    return f"({params}) -> ({results})"


def runtime_functions(runtime: wasmtime.Module) -> dict[str, str]:
    """Name -> signature of every function the runtime exports (what ``tvm.*`` may import)."""
    return {e.name: signature(e.type) for e in runtime.exports if isinstance(e.type, wasmtime.FuncType)}


def check_imports(user: wasmtime.Module, runtime: wasmtime.Module, rules: ImportRules, abi_prefix: str = "", *,
                  deployment: str = MODULE, pools: int | None = None, internals: Collection[str] = ()) -> None:
    """Refuse every import outside the rules, naming it and saying why (``tvm.X`` is the runtime's ``abi_prefix + X``).

    A ``tvm.*`` function the runtime does not export is worded from the ABI table for ``deployment``
    (``abi.imports.unserved_import``: the other target's only, a pool the module lacks, a runtime internal
    among ``internals``, or unknown)."""
    functions = {name.removeprefix(abi_prefix): sig for name, sig in runtime_functions(runtime).items()
                 if name.startswith(abi_prefix)}
    for imp in user.imports:
        where = f"{imp.module}.{imp.name}"
        kind = imp.type
        if isinstance(kind, wasmtime.MemoryType):
            if (imp.module, imp.name) not in MEMORY_IMPORTS:
                raise LinkRefused(f"import {where}: a user module may import only its own memory "
                                  "(as env.memory or tvm.memory), never a pool or the directory")
            continue
        if not isinstance(kind, wasmtime.FuncType):
            raise LinkRefused(f"import {where}: user modules may import functions and their memory only, "
                              f"not a {type(kind).__name__.removesuffix('Type').lower()}")
        if imp.module == "tvm":
            if imp.name not in functions:
                raise LinkRefused(f"import {where}: "
                                  + unserved_import(imp.name, deployment, pools=pools, internals=internals))
            if signature(kind) != functions[imp.name]:
                raise LinkRefused(f"import {where}: signature {signature(kind)} does not match the runtime's "
                                  f"{functions[imp.name]}")
        elif imp.module in WASI_MODULES:
            continue
        elif imp.module in RESERVED_MODULES or not rules.allows(imp.module, imp.name):
            raise LinkRefused(f"import {where} is not allowed: user modules import tvm.*, WASI and the imports "
                              "their author declares (allow_imports / --allow-import MODULE.NAME)")


def check_not_linked(user: wasmtime.Module) -> None:
    """Refuse a module that imports the host runtime's own fields (``tvm_host.*``) before anything else reads it.

    Only linked output imports them (``--target host``): naming that is
    clearer than the first of its several memories being refused.
    """
    taken = sorted(f"{imp.module}.{imp.name}" for imp in user.imports if imp.module == "tvm_host")
    if taken:
        raise LinkRefused(f"import {taken[0]}: tvm_host.* (the pools, the directory, the host's slow paths) are "
                          "imported only by linked output, never by a user module; if this is `tvm-wasm link "
                          "--target host` output, link the original module instead")


def check_exports(user: wasmtime.Module, runtime: wasmtime.Module, reserved_prefix: str) -> None:
    taken = {e.name for e in runtime.exports}
    for export in user.exports:
        if export.name.startswith(reserved_prefix):
            raise LinkRefused(f"export {export.name!r}: names starting with {reserved_prefix!r} are the linker's")
        if export.name in taken and not isinstance(export.type, wasmtime.MemoryType):
            raise LinkRefused(
                f"export {export.name!r} would shadow the runtime's export of that name: a module linked "
                "--target guest exports the self-contained runtime's functions beside its own (GuestInstance "
                "and tvm-guest.js call them by name), so the two share one set of export names; rename this "
                "export (docs/guests.md, 'Export names on the guest target', lists the names the runtime takes)")
