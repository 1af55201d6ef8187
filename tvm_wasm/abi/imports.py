"""Why a user module's import is refused, worded from the ABI table (one wording on every path).

A user module's ``tvm.*`` import that a deployment does not serve is one of:
an ABI function of the other deployment only (``AbiFunction.host`` /
``module`` and ``absent_because`` in ``table.ABI``), a per-pool function for
a pool the module does not have, a runtime internal (a function, global,
memory or table of the runtime that is not part of the ABI), or a name the
ABI does not have (with the closest ABI names). :func:`refused_import`
classifies every import of a user module the same way (a memory other than
its own, a table, global or tag, an unserved ``tvm.*`` function, a signature
that does not match the ABI's). The linker (``tvm-wasm link``, both targets),
``TvmHost.instantiate``, ``GuestInstance.link`` and ``tvm-guest.js`` (its
generated block carries these templates) all say it the same way and raise
``LinkRefused``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .table import ABI, DEPLOYMENTS, HOST, MODULE, by_name

#: How each deployment is reached, for the message's suggestion.
TARGETS = {HOST: "the host target (TvmHost, `tvm-wasm link --target host`)",
           MODULE: "the guest target (the self-contained module, `tvm-wasm link --target guest`)"}
SUGGEST = {HOST: "link with --target host", MODULE: "link with --target guest"}
#: The runtime's own names (functions, globals, memories, tables) that are not ABI functions, by family:
#: generated helpers carry a prefix or a pool suffix, the rest are listed. ``tests/abi/test_link_refusals.py``
#: checks that every name the built runtimes (both targets, ``TvmHost``'s) carry is covered.
INTERNAL_PATTERN = (r"(hoist_|clocked_|tvm-hoist:|tvm-internal:|tvm_cold_|control_|host_|tvm:|trap_)\w*"
                    r"|(mem|pool)\d+|\w*_p\d+(_\w+)?")
INTERNAL_NAMES = frozenset({
    "abi_fingerprint", "abi_version", "arena_grow_to", "arena_zero", "arena_zero_page", "block_find", "bridge",
    "check_handle", "compact_blocks", "copy_in", "copy_out", "ensure_resident", "fault", "gather", "histogram",
    "live_slot", "memory", "meta", "peek_id", "put_i64", "remove_extent", "span_give", "span_scrub", "span_take",
    "touch_span", "trap", "write_barrier",
})
#: ABI functions that copy to or from the caller's memory (a guest pointer among their parameters): on the
#: self-contained module, always its default memory.
GUEST_MEMORY_FUNCTIONS = frozenset(f.name for f in ABI if any(p.kind in ("ptr", "cptr") for p in f.params))
#: The one memory a user module may import: its own, which the runtime serves under these names.
MEMORY_IMPORTS = (("tvm", "memory"), ("env", "memory"))
#: The wordings of :func:`refused_import` (``{where}`` is ``module.name``); ``tvm-guest.js`` fills the same ones.
REFUSED = {
    "memory": "import {where}: a user module may import only its own memory (as env.memory or tvm.memory), "
              "never a pool or the directory",
    "kind": "import {where}: user modules may import functions and their memory only, not a {kind}",
    "signature": "import {where}: signature {signature} does not match the runtime's {expected}",
    "memories": "the user module declares {count} memories; a linked module has one user memory "
                "(the pools are reached only through tvm.*)",
    "own_memory": "the module defines its own memory but imports {using}, which here copy to and from the "
                  "self-contained module's memory: import the memory instead (clang/lld: -Wl,--import-memory; "
                  "rustc: -C link-arg=--import-memory; WAT: (import \"tvm\" \"memory\" (memory 1))), or link it "
                  "statically with `tvm-wasm link`",
}
#: The wordings of :func:`unserved_import` after ``import tvm.<name>: `` (a host-only name is worded whole).
UNSERVED = {
    "pool": "{name} names pool {pool}, but this module has {have}; link or build with --pools {more} or more",
    "no_pools": "no per-pool functions (built with specialised=False)",
    "pools": "{pools} pool(s), so per-pool functions _p0.._p{last}",
    "not_exported": "{name} is an ABI function this runtime does not export",
    "internal": "{name} is a runtime internal, not an ABI function: user code reaches the runtime only through the ABI",
    "unknown": "the tvm ABI has no function '{name}'",
}


def is_internal(name: str) -> bool:
    """Whether ``name`` is one of the runtime's own names that the ABI does not have."""
    return name in INTERNAL_NAMES or re.fullmatch(INTERNAL_PATTERN, name) is not None


@dataclass(frozen=True)
class ImportDecl:
    """One import of a user module, as every embedder can read it: ``kind`` is the wasm spec's external
    kind (``func``, ``memory``, ``table``, ``global``, ``tag``); ``signature`` a function's type as
    :func:`signature_text` writes it (None when unknown, e.g. a JavaScript ``WebAssembly.Module``)."""

    module: str
    name: str
    kind: str
    signature: str | None = None


def signature_text(params: Collection[str], results: Collection[str]) -> str:
    """``(i64 i32) -> (i32)``: a function type as the refusals word it."""
    return f"({' '.join(params)}) -> ({' '.join(results)})"


def refused_import(imp: ImportDecl, served: Mapping[str, str], deployment: str, *, pools: int | None = None,
                   internals: Collection[str] = (), abi_module: str = "tvm") -> str | None:
    """Why the runtime refuses ``imp``, or None when this rule has nothing against it.

    ``served``: name -> signature of every ``tvm.*`` function the runtime
    exports. Refused: a memory other than :data:`MEMORY_IMPORTS`; any table,
    global or tag; a ``tvm.*`` function the runtime does not serve
    (:func:`unserved_import`) or with another signature. Other modules'
    functions are the caller's to judge (WASI, declared imports)."""
    where = f"{imp.module}.{imp.name}"
    if imp.kind == "memory":
        own = (imp.module if imp.module != abi_module else "tvm", imp.name)
        return None if own in MEMORY_IMPORTS else REFUSED["memory"].format(where=where)
    if imp.kind != "func":
        return REFUSED["kind"].format(where=where, kind=imp.kind)
    if imp.module != abi_module:
        return None
    if imp.name not in served:
        return f"import {where}: " + unserved_import(imp.name, deployment, pools=pools, internals=internals)
    if imp.signature is not None and imp.signature != served[imp.name]:
        return REFUSED["signature"].format(where=where, signature=imp.signature, expected=served[imp.name])
    return None


def first_refused(imports: Collection[ImportDecl], served: Mapping[str, str], deployment: str, *,
                  pools: int | None = None, internals: Collection[str] = (), abi_module: str = "tvm") -> str | None:
    """:func:`refused_import` of the first import refused, in the module's order (every embedder names the same
    one), else None."""
    for imp in imports:
        why = refused_import(imp, served, deployment, pools=pools, internals=internals, abi_module=abi_module)
        if why:
            return why
    return None


def unserved_import(name: str, deployment: str, *, pools: int | None = None,
                    internals: Collection[str] = ()) -> str:
    """Why ``deployment`` (``"host"`` or ``"module"``) serves no ``tvm.<name>``: the message after
    ``import tvm.<name>: ``. ``pools``: the module's pool count (per-pool functions); ``internals``: the
    runtime's own names that are not ABI functions (from its name section, exports and imports)."""
    if deployment not in DEPLOYMENTS:
        raise ValueError(f"deployment must be one of {DEPLOYMENTS}, got {deployment!r}")
    try:
        entry = by_name(name)
    except KeyError:
        entry = None
    if entry is not None:
        other = MODULE if deployment == HOST else HOST
        if not entry.available_on(deployment):
            only = "host" if other == HOST else "guest"
            return (f"{name} is a {only}-only ABI function: it exists only on {TARGETS[other]}, not on "
                    f"{TARGETS[deployment].split(' (')[0]}, because {entry.absent_because}; {SUGGEST[other]}")
        if entry.per_pool:
            pool = int(name.rpartition("_p")[2])
            have = UNSERVED["no_pools"] if not pools else UNSERVED["pools"].format(pools=pools, last=pools - 1)
            return UNSERVED["pool"].format(name=name, pool=pool, have=have, more=pool + 1)
        if entry.available_on(deployment) and not entry.per_pool:
            return UNSERVED["not_exported"].format(name=name)
    if name in internals or is_internal(name):
        return UNSERVED["internal"].format(name=name)
    served = [f.name.replace("{k}", "0") for f in ABI if f.available_on(deployment)]
    close = difflib.get_close_matches(name, served, n=3, cutoff=0.75)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return UNSERVED["unknown"].format(name=name) + hint
