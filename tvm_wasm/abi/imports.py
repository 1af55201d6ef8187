"""Why a ``tvm.<name>`` import is not served, worded from the ABI table (one wording on every path).

A user module's ``tvm.*`` import that a deployment does not serve is one of:
an ABI function of the other deployment only (``AbiFunction.host`` /
``module`` and ``absent_because`` in ``table.ABI``), a per-pool function for
a pool the module does not have, a runtime internal (a function, global,
memory or table of the runtime that is not part of the ABI), or a name the
ABI does not have (with the closest ABI names). The linker (``tvm-wasm link``,
both targets), ``TvmHost.instantiate``, ``GuestInstance.link`` and
``tvm-guest.js`` (its generated block carries these messages) all say it the
same way.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection

from .table import ABI, DEPLOYMENTS, HOST, MODULE, by_name

#: How each deployment is reached, for the message's suggestion.
TARGETS = {HOST: "the host target (TvmHost, `tvm-wasm link --target host`)",
           MODULE: "the guest target (the self-contained module, `tvm-wasm link --target guest`)"}
SUGGEST = {HOST: "link with --target host", MODULE: "link with --target guest"}


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
            have = "no per-pool functions (built with specialised=False)" if not pools else \
                f"{pools} pool(s), so per-pool functions _p0.._p{pools - 1}"
            return f"{name} names pool {pool}, but this module has {have}; link or build with --pools {pool + 1} or more"
        if entry.available_on(deployment) and not entry.per_pool:
            return f"{name} is an ABI function this runtime does not export"
    if name in internals:
        return f"{name} is a runtime internal, not an ABI function: user code reaches the runtime only through the ABI"
    served = [f.name.replace("{k}", "0") for f in ABI if f.available_on(deployment)]
    close = difflib.get_close_matches(name, served, n=3, cutoff=0.75)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"the tvm ABI has no function {name!r}{hint}"


def first_unserved(imports: Collection[tuple[str, str]], served: Collection[str], deployment: str, *,
                   pools: int | None = None, internals: Collection[str] = ()) -> str | None:
    """``import tvm.<name>: <why>`` for the first ``(module, name)`` function import from ``tvm`` that is not in
    ``served``, else None (what ``TvmHost.instantiate`` and ``GuestInstance.link`` check before wasmtime's
    bare "unknown import")."""
    for module, name in imports:
        if module == "tvm" and name not in served:
            return f"import tvm.{name}: " + unserved_import(name, deployment, pools=pools, internals=internals)
    return None
