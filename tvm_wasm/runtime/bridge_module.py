"""The bridge module: the only code that touches a guest's own memory.

A guest's memory may exist only after the guest is instantiated (when it
defines and exports it), but its ``tvm`` imports must exist before. So the
runtime validates handles and then calls through its ``bridge`` table; the
host fills that table with this module's functions, instantiated against
the guest's memory. Every guest range is checked against the guest memory's
current size (code 7) before a byte moves.
"""

from __future__ import annotations

from ..core.errors import GuestMemoryError, OutOfBounds
from . import layout as L
from .core_module import HOST, pool_name
from .wat import Code, Func, Module, if_, import_memory, loop, per_pool

GUEST = "tvm_guest"
GUEST_MEMORY = "$g"


def guest_range_ok(start: str, length: Code) -> Code:
    """Push 1 if ``[start, start + length)`` lies inside the guest memory (i64 math, no overflow)."""
    return [
        f"local.get ${start}",
        "i64.extend_i32_u",
        *length,
        "i64.add",
        f"memory.size {GUEST_MEMORY}",
        "i64.extend_i32_u",
        "i64.const 16",
        "i64.shl",
        "i64.le_u",
    ]


def fail(code: int) -> Code:
    return [f"i32.const {code}", "return"]


def check_guest(start: str, length: Code) -> Code:
    return if_([*guest_range_ok(start, length), "i32.eqz"], fail(GuestMemoryError.code))


def u32_len(name: str) -> Code:
    return [f"local.get ${name}", "i64.extend_i32_u"]


def copy_func(name: str, pools: int, outward: bool) -> Func:
    """region -> guest (``outward``) or guest -> region, one specialised arm per pool."""

    def arm(k: int) -> Code:
        if outward:
            operands, mems = ["local.get $guest", "local.get $addr"], f"{GUEST_MEMORY} {pool_name(k)}"
        else:
            operands, mems = ["local.get $addr", "local.get $guest"], f"{pool_name(k)} {GUEST_MEMORY}"
        return [*operands, "local.get $len", f"memory.copy {mems}", "i32.const 0", "return"]

    body = [*check_guest("guest", u32_len("len")), *per_pool(pools, arm, ["local.get $pool"], fail(9))]
    params = [("pool", "i32"), ("addr", "i32"), ("guest", "i32"), ("len", "i32")]
    return Func(name, params, ["i32"], [], body, export=name)


def gather_func(pools: int) -> Func:
    """Check every index first (no partial writes), then copy item by item.

    Each index is read again when its item is copied and checked again, so a
    destination that overlaps the index array can change later indices but
    can never reach outside the region (it then fails with code 3 part way).
    """
    item_end = ["local.get $index", "i64.extend_i32_u", "local.get $item_size", "i64.extend_i32_u", "i64.add"]

    def index_at_i() -> Code:
        return ["local.get $indices", "local.get $i", "i32.const 2", "i32.shl", "i32.add",
                f"i32.load {GUEST_MEMORY}", "local.set $index"]

    check_all = loop("check", [
        "local.get $i", "local.get $count", "i32.ge_u", "br_if $check_exit",
        *index_at_i(),
        *if_([*item_end, "local.get $left", "i64.extend_i32_u", "i64.gt_u"], fail(OutOfBounds.code)),
        "local.get $i", "i32.const 1", "i32.add", "local.set $i", "br $check",
    ])

    def arm(k: int) -> Code:
        return [
            *loop("copy", [
                "local.get $i", "local.get $count", "i32.ge_u", "br_if $copy_exit",
                *index_at_i(),
                # Checked again: when ``dst`` overlaps the index array, an earlier item
                # may have overwritten this index since the check above.
                *if_([*item_end, "local.get $left", "i64.extend_i32_u", "i64.gt_u"], fail(OutOfBounds.code)),
                "local.get $dst", "local.get $i", "local.get $item_size", "i32.mul", "i32.add",
                "local.get $addr", "local.get $index", "i32.add",
                "local.get $item_size",
                f"memory.copy {GUEST_MEMORY} {pool_name(k)}",
                "local.get $i", "i32.const 1", "i32.add", "local.set $i", "br $copy",
            ]),
            "i32.const 0",
            "return",
        ]

    body = [
        *check_guest("indices", [*u32_len("count"), "i64.const 2", "i64.shl"]),
        *check_guest("dst", [*u32_len("count"), *u32_len("item_size"), "i64.mul"]),
        *check_all,
        "i32.const 0",
        "local.set $i",
        *per_pool(pools, arm, ["local.get $pool"], fail(9)),
    ]
    params = [("pool", "i32"), ("addr", "i32"), ("left", "i32"), ("indices", "i32"), ("count", "i32"),
              ("item_size", "i32"), ("dst", "i32")]
    return Func("gather", params, ["i32"], [("i", "i32"), ("index", "i32")], body, export="gather")


def histogram_func(pools: int) -> Func:
    """256 little-endian u32 counts written to guest memory at ``out``."""

    def arm(k: int) -> Code:
        return [
            *loop("count", [
                "local.get $i", "local.get $len", "i32.ge_u", "br_if $count_exit",
                "local.get $out",
                "local.get $addr", "local.get $i", "i32.add", f"i32.load8_u {pool_name(k)}",
                "i32.const 2", "i32.shl", "i32.add",
                "local.tee $cell",
                "local.get $cell", f"i32.load {GUEST_MEMORY}", "i32.const 1", "i32.add",
                f"i32.store {GUEST_MEMORY}",
                "local.get $i", "i32.const 1", "i32.add", "local.set $i", "br $count",
            ]),
            "i32.const 0",
            "return",
        ]

    body = [
        *check_guest("out", ["i64.const 1024"]),
        "local.get $out", "i32.const 0", "i32.const 1024", f"memory.fill {GUEST_MEMORY}",
        *per_pool(pools, arm, ["local.get $pool"], fail(9)),
    ]
    params = [("pool", "i32"), ("addr", "i32"), ("out", "i32"), ("len", "i32")]
    return Func("histogram", params, ["i32"], [("i", "i32"), ("cell", "i32")], body, export="histogram")


def put_i64_func() -> Func:
    """Write a computed u64 (little-endian) to guest memory at ``dst``: a result no sentinel can stand for."""
    body = [
        *check_guest("dst", ["i64.const 8"]),
        "local.get $dst", "local.get $value", f"i64.store {GUEST_MEMORY} align=1",
        "i32.const 0",
    ]
    return Func("put_i64", [("dst", "i32"), ("value", "i64")], ["i32"], [], body, export="put_i64")


BRIDGE_EXPORTS = ("copy_out", "copy_in", "gather", "histogram", "put_i64")  # in bridge-table slot order


def bridge_funcs(pools: int) -> dict[str, Func]:
    """Every bridge function by export name."""
    return {
        "copy_out": copy_func("copy_out", pools, outward=True),
        "copy_in": copy_func("copy_in", pools, outward=False),
        "gather": gather_func(pools),
        "histogram": histogram_func(pools),
        "put_i64": put_i64_func(),
    }


def build_bridge_wat(pools: int, guest_min_pages: int = 0, memory64: bool = False) -> str:
    """WAT of the bridge for ``pools`` pools and one 32-bit guest memory."""
    if memory64:
        raise ValueError("guests with a 64-bit memory are not supported by the raw ABI")
    module = Module()
    module.imports += [import_memory(HOST, f"pool{k}", f"p{k}", 0, L.WASM32_MAX_PAGES) for k in range(pools)]
    module.imports.append(import_memory(GUEST, "memory", "g", guest_min_pages))
    made = bridge_funcs(pools)
    for name in BRIDGE_EXPORTS:
        module.add(made[name])
    return module.render()
