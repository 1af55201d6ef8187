"""The host runtime's control functions: thin wasm wrappers over Python slow paths.

On ``TvmHost`` a guest's region lifecycle and queries (``create_region``,
``destroy_region``, ``region_capacity``...) are served by Python, which owns
the budget, spill, policies and metrics. The runtime imports each as
``tvm_host.control_{name}`` and exports a wrapper with the ABI table's
signature that moves the failure code into the runtime's ``last_error``, so a
guest sees exactly the convention the self-contained module follows.
"""

from __future__ import annotations

from ..abi.table import ABI, HOST, AbiFunction, OnError
from . import layout as L
from .wat import Code, Func, if_

def host_control_functions() -> list[AbiFunction]:
    """Table entries the host serves through Python (``slow_path``), in table order."""
    return [f for f in ABI if f.slow_path and f.available_on(HOST)]


def record_failure(entry: AbiFunction) -> Code:
    """With the result in ``$r``: copy the failure code into ``last_error`` (results stay as Python gave them)."""
    if entry.on_error is OnError.CODE:
        return if_(["local.get $r"], ["local.get $r", "global.set $last_error"])
    if entry.on_error is OnError.SENTINEL:
        result_type = entry.wasm_results[0]
        return if_(
            ["local.get $r", f"{result_type}.const {entry.sentinel}", f"{result_type}.eq"],
            ["i32.const 0", f"i32.load $meta offset={L.HDR_HOST_ERROR}", "global.set $last_error"],
        )
    return []


def wrapper(entry: AbiFunction) -> Func:
    params = [(p.name, p.wasm_type) for p in entry.params]
    result_type = entry.wasm_results[0]
    body = [
        *(f"local.get ${name}" for name, _ in params),
        f"call $host_{entry.name}",
        "local.set $r",
        *record_failure(entry),
        "local.get $r",
    ]
    return Func(entry.name, params, [result_type], [("r", result_type)], body, export=entry.name)


def host_control_wrappers() -> list[Func]:
    return [wrapper(entry) for entry in host_control_functions()]
