"""Host guests with the data plane inlined: what ``TvmHost.instantiate(..., inline=True)`` runs.

The host links the user module itself (``link(..., target="host")``): the
linked module imports the directory, the pools and the slow paths as
``tvm_host.*``, which only the host's private linker supplies, so the host
never instantiates a module it did not link and verify. Links are cached per
engine, pool count and user module, so a guest instantiated many times is
linked and compiled once.
"""

from __future__ import annotations

from weakref import WeakKeyDictionary

import wasmtime

from ..runtime.link_errors import LinkRefused
from ..runtime.core_module import HOST
from .link import as_binary, link
from .policy import WASI_MODULES

_cache: WeakKeyDictionary[wasmtime.Engine, dict[tuple[int, bytes], wasmtime.Module]] = WeakKeyDictionary()


def inlined_guest(engine: wasmtime.Engine, pools: int, user: bytes | str) -> wasmtime.Module:
    """The user module linked for the host (``pools`` pools) and compiled for ``engine``; cached.

    The linked module imports ``tvm_host.*`` (served by the host's private
    linker) and, if the user module does, WASI preview1; anything else (an
    import the author declared for another host) is refused with
    ``LinkRefused``, since the private linker defines nothing more.
    """
    if isinstance(user, wasmtime.Module):
        raise TypeError("inline=True links the module itself: pass its bytes or WAT, not a wasmtime.Module")
    binary = as_binary(user)
    per_engine = _cache.setdefault(engine, {})
    key = (pools, binary)
    if key not in per_engine:
        linked = link(binary, target="host", pools=pools)
        foreign = [f"{m}.{n}" for m, n in linked.imports if m != HOST and m not in WASI_MODULES]
        if foreign:
            raise LinkRefused(f"inline=True runs modules that import only tvm.*, WASI and their memory; this one "
                              f"also imports {', '.join(foreign)} (link it with tvm-wasm link and a host that "
                              "defines those)")
        per_engine[key] = wasmtime.Module(engine, linked.wasm)
    return per_engine[key]
