"""What a user module may ask for before it is linked (the first line of "no way out").

A user module may import: ``tvm.<function>`` for any function the runtime
exports, with the runtime's signature; its one memory as ``tvm.memory`` or
``env.memory``; WASI functions (they stay imports of the linked module); and
functions its author declares (``allow_imports``, as ``module.name`` or
``module.*``). Everything else is refused: the pools, the directory, the
bridge table and the runtime's globals are never importable, nor are memories
other than the one, tables, globals or tags (the one classification every entry
point shares: ``abi.imports.refused_import``). Its exports must not be shadowed
by the runtime's or dropped by the linker (``check_exports``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import wasmtime

from ..abi.table import MODULE
from ..runtime.link_errors import refuse_imports, served_functions
from .errors import LinkRefused

WASI_MODULES = frozenset({"wasi_snapshot_preview1", "wasi_unstable"})
#: Module names the runtime owns; a user's declared imports may not use them.
RESERVED_MODULES = frozenset({"tvm", "tvm_host", "tvm_guest"})


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


def check_imports(user: wasmtime.Module, runtime: wasmtime.Module, rules: ImportRules, abi_prefix: str = "", *,
                  deployment: str = MODULE, pools: int | None = None, internals: Collection[str] = ()) -> None:
    """Refuse every import outside the rules, naming it and saying why (``tvm.X`` is the runtime's ``abi_prefix + X``).

    Memories, tables, globals and ``tvm.*`` functions are judged by the one classification every entry point
    shares (``abi.imports.refused_import``: a memory other than the user's own, a table or global, a ``tvm.*``
    function the runtime does not export for ``deployment`` or with another signature); other functions must be
    WASI's or declared."""
    refuse_imports(user, served_functions(runtime, abi_prefix), deployment, pools=pools, internals=internals)
    for imp in user.imports:
        if not isinstance(imp.type, wasmtime.FuncType) or imp.module == "tvm" or imp.module in WASI_MODULES:
            continue
        if imp.module in RESERVED_MODULES or not rules.allows(imp.module, imp.name):
            raise LinkRefused(f"import {imp.module}.{imp.name} is not allowed: user modules import tvm.*, WASI and "
                              "the imports their author declares (allow_imports / --allow-import MODULE.NAME)")


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


#: The name the linked module exports the user's memory under (the runtime's memory, on both targets).
MEMORY_EXPORT = "memory"


def check_exports(user: wasmtime.Module, runtime: wasmtime.Module, reserved_prefixes: Collection[str],
                  target: str = "guest") -> None:
    """Refuse every export of ``user`` that the linked module would shadow or drop, whatever its kind.

    Shadowed: a name the runtime exports (``target`` guest: the self-contained runtime's functions,
    memories and globals; host: ``memory`` and the ``tvm:`` ABI). Dropped: a name starting with one of
    ``reserved_prefixes`` (the linker's own exports, removed after the merge), and an export of the user's
    memory under any name but ``memory`` (the user's memory becomes the runtime's, which the linked module
    exports as ``memory`` only).
    """
    taken = {e.name for e in runtime.exports}
    for export in user.exports:
        name = export.name
        reserved = next((prefix for prefix in reserved_prefixes if name.startswith(prefix)), None)
        if reserved is not None:
            raise LinkRefused(f"export {name!r}: names starting with {reserved!r} are the linker's (it removes those "
                              "exports after the merge, so this one would be dropped); rename this export")
        memory = isinstance(export.type, wasmtime.MemoryType)
        if memory and name == MEMORY_EXPORT:
            continue  # the user's memory is the linked module's "memory": the same memory, the same name
        if name in taken:
            raise LinkRefused(shadowed(name, target, memory))
        if memory:
            raise LinkRefused(
                f"export {name!r} of the user's memory would be dropped: the user's memory becomes the linked "
                f"module's memory, which it exports as {MEMORY_EXPORT!r} only; export it as {MEMORY_EXPORT!r} "
                "(clang and rustc do) or not at all")


def shadowed(name: str, target: str, memory: bool) -> str:
    """Why an export named like one of the runtime's is refused (the user's would be shadowed or dropped)."""
    what = "memory export" if memory else "export"
    if target == "guest":
        return (f"{what} {name!r} would shadow the runtime's export of that name: a module linked "
                "--target guest exports the self-contained runtime's functions, memories and globals beside its "
                "own (GuestInstance and tvm-guest.js use them by name), so the two share one set of export names; "
                "rename this export (docs/guests.md, 'Export names on the guest target', lists the names the "
                "runtime takes)")
    return (f"{what} {name!r} would shadow the runtime's export of that name: a module linked --target host "
            f"exports the user's memory as {MEMORY_EXPORT!r} and the ABI under 'tvm:' names beside the user's own; "
            "rename this export (docs/guests.md, 'Export names on the guest target')")
