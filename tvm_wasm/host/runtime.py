"""Compiled runtime and bridge modules, built once per (engine, pool count)."""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary

import wasmtime

from ..runtime.bridge_module import build_bridge_wat
from ..runtime.core_module import build_core_wat


@dataclass(frozen=True)
class RuntimeModules:
    core: wasmtime.Module
    bridge: wasmtime.Module


_cache: WeakKeyDictionary[wasmtime.Engine, dict[int, RuntimeModules]] = WeakKeyDictionary()


def runtime_modules(engine: wasmtime.Engine, pools: int) -> RuntimeModules:
    """Compile (and validate) the generated modules; compiled once per engine."""
    per_engine = _cache.setdefault(engine, {})
    if pools not in per_engine:
        core = wasmtime.Module(engine, wasmtime.wat2wasm(build_core_wat(pools)))
        bridge = wasmtime.Module(engine, wasmtime.wat2wasm(build_bridge_wat(pools)))
        per_engine[pools] = RuntimeModules(core, bridge)
    return per_engine[pools]
