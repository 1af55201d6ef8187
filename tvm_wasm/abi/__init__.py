"""The raw ``tvm`` ABI as data: the one table every deployment, SDK and doc is built from or tested against.

``tvm_wasm.abi.table`` lists every function a guest may import from module
``tvm`` (name, wasm signature, meaning, error behaviour, which deployments
serve it and why one does not), the error codes, the enums a guest passes
(region kinds, allocators, residency, metrics) and the trap-cause globals of
the self-contained module. It sits below the runtime: it imports only the
model (``tvm_wasm.core``).
"""

from .table import (
    ABI,
    ALLOCATORS,
    ERROR_CODES,
    METRICS,
    TRAP_CAUSE,
    TYPED_ACCESS,
    AbiFunction,
    ErrorCode,
    OnError,
    Param,
    TrapCauseField,
    TypedWidth,
    by_name,
    for_deployment,
    function_index,
    per_pool_names,
)

__all__ = [
    "ABI",
    "ALLOCATORS",
    "ERROR_CODES",
    "METRICS",
    "TRAP_CAUSE",
    "TYPED_ACCESS",
    "AbiFunction",
    "ErrorCode",
    "OnError",
    "Param",
    "TrapCauseField",
    "TypedWidth",
    "by_name",
    "for_deployment",
    "function_index",
    "per_pool_names",
]
