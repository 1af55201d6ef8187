"""Names and error conventions shared by the runtime's generators.

They live below both ``core_module`` (the raw ABI) and ``reducers`` (the SIMD
kernels), so neither has to import the other for them.
"""

from __future__ import annotations

from .wat import Code

HOST = "tvm_host"
#: Name prefix of runtime functions that only slow paths call: the linker never inlines them
#: (``wasm-opt --no-inline``), so a fast path inlined into a loop keeps one call, not their code.
COLD_PREFIX = "tvm_cold_"

# Bridge table slots and their types (params, results).
BRIDGE_COPY_OUT = 0  # (pool, addr, dst, len) -> code   region -> guest
BRIDGE_COPY_IN = 1  # (pool, addr, src, len) -> code    guest -> region
BRIDGE_GATHER = 2  # (pool, region_addr, capacity_left, indices, count, item_size, dst) -> code
BRIDGE_HISTOGRAM = 3  # (pool, addr, out, len) -> code   (the export is byte_histogram(h, len, out))
BRIDGE_PUT_I64 = 4  # (dst, value) -> code                 a computed u64 out to guest memory
BRIDGE_TYPES = {
    BRIDGE_COPY_OUT: ("t_copy", ["i32"] * 4, ["i32"]),
    BRIDGE_COPY_IN: ("t_copy", ["i32"] * 4, ["i32"]),
    BRIDGE_GATHER: ("t_gather", ["i32"] * 7, ["i32"]),
    BRIDGE_HISTOGRAM: ("t_copy", ["i32"] * 4, ["i32"]),
    BRIDGE_PUT_I64: ("t_put", ["i32", "i64"], ["i32"]),
}
BRIDGE_SLOTS = len(BRIDGE_TYPES)


def pool_name(k: int) -> str:
    return f"$p{k}"


def return_code_on_error() -> Code:
    return ["local.get $code", "global.set $last_error", "local.get $code", "return"]


def return_sentinel_on_error(sentinel: str) -> Code:
    return ["local.get $code", "global.set $last_error", sentinel, "return"]


def bad_pool() -> Code:
    """A slot whose pool this runtime cannot reach (an imported region): code 9."""
    return ["i32.const 9", "local.set $code"]


def bridge_call(slot: int) -> Code:
    type_name = BRIDGE_TYPES[slot][0]
    return [f"i32.const {slot}", f"call_indirect $bridge (type ${type_name})"]
