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

_cache: WeakKeyDictionary[wasmtime.Engine, dict[tuple[int, bytes], wasmtime.Module]] = WeakKeyDictionary()


def inlined_guest(engine: wasmtime.Engine, pools: int, user: bytes | str) -> wasmtime.Module:
    """The user module linked for the host (``pools`` pools) and compiled for ``engine``; cached."""
    if isinstance(user, wasmtime.Module):
        raise TypeError("inline=True links the module itself: pass its bytes or WAT, not a wasmtime.Module")
    binary = as_binary(user)
    per_engine = _cache.setdefault(engine, {})
    key = (pools, binary)
    if key not in per_engine:
        linked = link(binary, target="host", pools=pools)
        foreign = [f"{m}.{n}" for m, n in linked.imports if m != HOST]
        if foreign:
            raise LinkRefused(f"inline=True runs modules that import only tvm.* and their memory; this one also "
                              f"imports {', '.join(foreign)} (link it with tvm-wasm link and a WASI host instead)")
        per_engine[key] = wasmtime.Module(engine, linked.wasm)
    return per_engine[key]
