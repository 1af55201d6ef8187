"""Byte reducers over a region's span, computed inside wasm next to the data.

A reducer lets a guest ask "sum / count / find / hash these bytes" without
copying the span into its own memory first. Each reducer is a ``Kernel``: a
short instruction list that reads locals ``$addr`` (start address in one pool
memory) and ``$len`` (byte count), never writes them, and leaves its result
on the stack. Kernels are specialised per pool memory because multi-memory
loads name their memory statically; ``reducer_funcs`` wraps them in the
exported raw-ABI functions (validate the handle, count bytes, dispatch on the
region's pool).

The vector kernels take 16 bytes per iteration and finish with a scalar byte
loop; ``simd=False`` emits the byte loop alone, which is both the baseline
the vector path must beat and a second implementation to test against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import access as A
from . import layout as L
from .conventions import BRIDGE_PUT_I64, bad_pool, bridge_call, pool_name, return_code_on_error, return_sentinel_on_error
from .wat import Code, Func, if_, indent, loop, per_pool
from .write_notice import NO_NOTICE, WriteNotice

Locals = tuple[tuple[str, str], ...]

FNV_OFFSET_BASIS = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3

# u16 lanes of the byte-sum accumulator take at most 128 chunks of pairwise
# sums (each <= 2 * 255) before they must be flushed into the i64 lanes.
SUM_BLOCK_CHUNKS = 128

# Every kernel reads these; the cursor locals are its own so inputs stay intact.
CURSOR_LOCALS: Locals = (("k_p", "i32"), ("k_n", "i32"))
BYTE_INPUTS: Locals = (("addr", "i32"), ("len", "i32"), ("byte", "i32"))
SPAN_INPUTS: Locals = (("addr", "i32"), ("len", "i32"))


@dataclass(frozen=True)
class Kernel:
    """A reducer body: ``inputs`` it reads, ``locals`` it owns, ``code``, ``result`` type (None: nothing)."""

    name: str
    inputs: Locals
    locals: Locals
    code: Code
    result: str | None


# ---------------------------------------------------------------- loop pieces
def start_cursor() -> Code:
    """``$k_p``/``$k_n`` walk the span so ``$addr``/``$len`` stay valid for the caller."""
    return ["local.get $addr", "local.set $k_p", "local.get $len", "local.set $k_n"]


def advance(step: int, cursors: tuple[str, ...] = ("k_p",)) -> Code:
    code: Code = []
    for cursor in cursors:
        code += [f"local.get ${cursor}", f"i32.const {step}", "i32.add", f"local.set ${cursor}"]
    return code + ["local.get $k_n", f"i32.const {step}", "i32.sub", "local.set $k_n"]


def chunk_loop(label: str, per_chunk: Code, cursors: tuple[str, ...] = ("k_p",)) -> Code:
    """Run ``per_chunk`` while 16 or more bytes remain; it finds ``$k_p`` at the chunk."""
    guard = ["local.get $k_n", "i32.const 16", "i32.lt_u", f"br_if ${label}_exit"]
    return loop(label, [*guard, *per_chunk, *advance(16, cursors), f"br ${label}"])


def byte_loop(label: str, per_byte: Code, cursors: tuple[str, ...] = ("k_p",)) -> Code:
    """Run ``per_byte`` for each remaining byte (the scalar tail, or the whole span)."""
    guard = ["local.get $k_n", "i32.eqz", f"br_if ${label}_exit"]
    return loop(label, [*guard, *per_byte, *advance(1, cursors), f"br ${label}"])


def load_chunk(mem: str, cursor: str = "k_p") -> Code:
    return [f"local.get ${cursor}", f"v128.load {mem} align=1"]


def load_byte(mem: str, cursor: str = "k_p") -> Code:
    return [f"local.get ${cursor}", f"i32.load8_u {mem}"]


def needle() -> Code:
    """``$k_b`` = ``$byte & 0xFF`` and ``$k_v`` = it in all 16 lanes."""
    return ["local.get $byte", "i32.const 0xFF", "i32.and", "local.tee $k_b", "i8x16.splat", "local.set $k_v"]


def matches() -> Code:
    """v128 on the stack -> i32 bitmask of lanes equal to the needle."""
    return ["local.get $k_v", "i8x16.eq", "i8x16.bitmask"]


def add_to(local: str, op: str = "i32.add") -> Code:
    """Add the value on the stack to ``$local``."""
    return [f"local.get ${local}", op, f"local.set ${local}"]


# ---------------------------------------------------------------- sums of bytes
def widen_u16_into_i64(acc16: str, acc64: str) -> Code:
    """``acc64 += `` the eight u16 lanes of ``acc16`` folded into two u64 lanes."""
    return [
        f"local.get ${acc16}",
        "i32x4.extadd_pairwise_i16x8_u",
        "local.tee $k_t",
        "i64x2.extend_low_i32x4_u",
        "local.get $k_t",
        "i64x2.extend_high_i32x4_u",
        "i64x2.add",
        f"local.get ${acc64}",
        "i64x2.add",
        f"local.set ${acc64}",
    ]


def sum_blocks(label: str, mem: str, lane_op: Code) -> Code:
    """Vector part of a byte sum: u16 lanes per block of <= 128 chunks, flushed to u64 lanes.

    ``lane_op`` maps each loaded chunk to the u8 lanes to add (empty for the
    bytes themselves, ``i8x16.popcnt`` for bit counts).
    """
    chunk = [
        *load_chunk(mem),
        *lane_op,
        "i16x8.extadd_pairwise_i8x16_u",
        "local.get $k_acc16",
        "i16x8.add",
        "local.set $k_acc16",
        *advance(16),
    ]
    block_size = [
        "local.get $k_n",
        "i32.const 4",
        "i32.shr_u",
        "local.tee $k_blk",
        f"i32.const {SUM_BLOCK_CHUNKS}",
        "local.get $k_blk",
        f"i32.const {SUM_BLOCK_CHUNKS}",
        "i32.lt_u",
        "select",
        "local.set $k_blk",
    ]
    one_block = [
        "local.get $k_n",
        "i32.const 16",
        "i32.lt_u",
        f"br_if ${label}_exit",
        *block_size,
        "v128.const i64x2 0 0",
        "local.set $k_acc16",
        f"loop ${label}_chunk",
        *indent([*chunk, "local.get $k_blk", "i32.const 1", "i32.sub", "local.tee $k_blk", f"br_if ${label}_chunk"]),
        "end",
        *widen_u16_into_i64("k_acc16", "k_acc64"),
        f"br ${label}",
    ]
    return loop(label, one_block)


def byte_sum(name: str, mem: str, lane_op: Code, scalar_op: Code, simd: bool) -> Kernel:
    """Sum of ``f(byte)`` as i64, where ``lane_op``/``scalar_op`` compute f per lane/byte."""
    code = [*start_cursor(), "v128.const i64x2 0 0", "local.set $k_acc64"]
    if simd:
        code += sum_blocks(f"k_{name}", mem, lane_op)
    code += [
        "local.get $k_acc64",
        "i64x2.extract_lane 0",
        "local.get $k_acc64",
        "i64x2.extract_lane 1",
        "i64.add",
        "local.set $k_sum",
        *byte_loop(f"k_{name}_tail", [*load_byte(mem), *scalar_op, "i64.extend_i32_u", *add_to("k_sum", "i64.add")]),
        "local.get $k_sum",
    ]
    locals_ = (*CURSOR_LOCALS, ("k_blk", "i32"), ("k_sum", "i64"), ("k_acc16", "v128"), ("k_acc64", "v128"), ("k_t", "v128"))
    return Kernel(name, SPAN_INPUTS, locals_, code, "i64")


def sum_u8(mem: str, simd: bool = True) -> Kernel:
    """Sum of the bytes (i64: cannot overflow for any span a 32-bit pool holds)."""
    return byte_sum("sum_u8", mem, [], [], simd)


def popcount(mem: str, simd: bool = True) -> Kernel:
    """Total set bits: per-lane ``i8x16.popcnt`` then the byte-sum machinery."""
    return byte_sum("popcount", mem, ["i8x16.popcnt"], ["i32.popcnt"], simd)


# ---------------------------------------------------------------- searching
def count_byte(mem: str, simd: bool = True) -> Kernel:
    """Count of bytes equal to ``$byte & 0xFF`` (i32): one bitmask popcount per chunk."""
    code = [*start_cursor(), *needle(), "i32.const 0", "local.set $k_count"]
    if simd:
        code += chunk_loop("k_count", [*load_chunk(mem), *matches(), "i32.popcnt", *add_to("k_count")])
    code += byte_loop("k_count_tail", [*load_byte(mem), "local.get $k_b", "i32.eq", *add_to("k_count")])
    code.append("local.get $k_count")
    locals_ = (*CURSOR_LOCALS, ("k_b", "i32"), ("k_count", "i32"), ("k_v", "v128"))
    return Kernel("count_byte", BYTE_INPUTS, locals_, code, "i32")


def find_byte(mem: str, simd: bool = True) -> Kernel:
    """First offset of ``$byte & 0xFF`` relative to ``$addr`` (i32), -1 when absent."""
    offset = ["local.get $k_p", "local.get $addr", "i32.sub"]
    found_in_chunk = if_(["local.tee $k_m"], [*offset, "local.get $k_m", "i32.ctz", "i32.add", "br $k_found"])
    found_byte = if_([*load_byte(mem), "local.get $k_b", "i32.eq"], [*offset, "br $k_found"])
    code = ["block $k_found (result i32)", *start_cursor(), *needle()]
    if simd:
        code += chunk_loop("k_find", [*load_chunk(mem), *matches(), *found_in_chunk])
    code += [*byte_loop("k_find_tail", found_byte), "i32.const -1", "end"]
    locals_ = (*CURSOR_LOCALS, ("k_b", "i32"), ("k_m", "i32"), ("k_v", "v128"))
    return Kernel("find_byte", BYTE_INPUTS, locals_, code, "i32")


# ---------------------------------------------------------------- extremes
def horizontal(op: str, local: str) -> Code:
    """Fold the 16 u8 lanes of ``$local`` with ``op`` (rotate-and-combine); leaves lane 0 as i32."""
    code: Code = []
    for shift in (8, 4, 2, 1):
        lanes = " ".join(str((i + shift) % 16) for i in range(16))
        rotated = [f"local.get ${local}", f"local.get ${local}", f"i8x16.shuffle {lanes}"]
        code += [f"local.get ${local}", *rotated, op, f"local.set ${local}"]
    return [*code, f"local.get ${local}", "i8x16.extract_lane_u 0"]


def keep_if(local: str, cmp: str) -> Code:
    """``$local = byte`` if ``byte cmp $local`` (the byte is in ``$k_x``)."""
    return ["local.get $k_x", f"local.get ${local}", "local.get $k_x", f"local.get ${local}", cmp, "select", f"local.set ${local}"]


def min_max_u8(mem: str, simd: bool = True) -> Kernel:
    """``(min << 8) | max`` of the bytes (i32); an empty span gives 0xFF00."""
    code = [
        *start_cursor(),
        "v128.const i8x16 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1 -1",
        "local.set $k_vmin",
        "v128.const i64x2 0 0",
        "local.set $k_vmax",
    ]
    if simd:
        per_chunk = [
            *load_chunk(mem),
            "local.tee $k_t",
            "local.get $k_vmin",
            "i8x16.min_u",
            "local.set $k_vmin",
            "local.get $k_t",
            "local.get $k_vmax",
            "i8x16.max_u",
            "local.set $k_vmax",
        ]
        code += chunk_loop("k_minmax", per_chunk)
    code += [
        *horizontal("i8x16.min_u", "k_vmin"),
        "local.set $k_min",
        *horizontal("i8x16.max_u", "k_vmax"),
        "local.set $k_max",
        *byte_loop("k_minmax_tail", [*load_byte(mem), "local.set $k_x", *keep_if("k_min", "i32.lt_u"), *keep_if("k_max", "i32.gt_u")]),
        "local.get $k_min",
        "i32.const 8",
        "i32.shl",
        "local.get $k_max",
        "i32.or",
    ]
    locals_ = (*CURSOR_LOCALS, ("k_x", "i32"), ("k_min", "i32"), ("k_max", "i32"),
               ("k_vmin", "v128"), ("k_vmax", "v128"), ("k_t", "v128"))
    return Kernel("min_max_u8", SPAN_INPUTS, locals_, code, "i32")


# ---------------------------------------------------------------- hashing, filling, comparing
def hash_fnv1a(mem: str, simd: bool = True) -> Kernel:
    """64-bit FNV-1a (i64). Each step depends on the last, so it is a byte loop either way."""
    del simd
    step = [*load_byte(mem), "i64.extend_i32_u", "local.get $k_h", "i64.xor", f"i64.const {FNV_PRIME}", "i64.mul", "local.set $k_h"]
    code = [*start_cursor(), f"i64.const {FNV_OFFSET_BASIS}", "local.set $k_h", *byte_loop("k_fnv", step), "local.get $k_h"]
    return Kernel("hash_fnv1a", SPAN_INPUTS, (*CURSOR_LOCALS, ("k_h", "i64")), code, "i64")


def fill(mem: str, simd: bool = True) -> Kernel:
    """Set every byte to ``$byte`` (no result); ``memory.fill`` is the engine's own bulk path."""
    if simd:
        return Kernel("fill", BYTE_INPUTS, (), ["local.get $addr", "local.get $byte", "local.get $len", f"memory.fill {mem}"], None)
    store = ["local.get $k_p", "local.get $byte", f"i32.store8 {mem}"]
    return Kernel("fill", BYTE_INPUTS, CURSOR_LOCALS, [*start_cursor(), *byte_loop("k_fill", store)], None)


def eq(mem_a: str, mem_b: str, simd: bool = True) -> Kernel:
    """1 if ``$len`` bytes at ``$addr`` (pool A) equal those at ``$addr_b`` (pool B), else 0 (i32)."""
    both = ("k_p", "k_q")
    differ = ["i32.const 0", "br $k_eq"]
    chunk = [*load_chunk(mem_a), *load_chunk(mem_b, "k_q"), "v128.xor", "v128.any_true", *if_([], differ)]
    byte = [*load_byte(mem_a), *load_byte(mem_b, "k_q"), "i32.ne", *if_([], differ)]
    code = ["block $k_eq (result i32)", *start_cursor(), "local.get $addr_b", "local.set $k_q"]
    if simd:
        code += chunk_loop("k_eq_chunks", chunk, both)
    code += [*byte_loop("k_eq_tail", byte, both), "i32.const 1", "end"]
    inputs = (("addr", "i32"), ("len", "i32"), ("addr_b", "i32"))
    return Kernel("eq", inputs, (*CURSOR_LOCALS, ("k_q", "i32")), code, "i32")


SpanKernel = Callable[..., Kernel]  # (mem, simd=True) -> Kernel
# One-pool kernels in export order.
SPAN_KERNELS: dict[str, SpanKernel] = {
    "sum_u8": sum_u8,
    "count_byte": count_byte,
    "find_byte": find_byte,
    "popcount": popcount,
    "min_max_u8": min_max_u8,
    "hash_fnv1a": hash_fnv1a,
    "fill": fill,
}


# ---------------------------------------------------------------- exported raw-ABI functions
@dataclass(frozen=True)
class Convention:
    """How one exported reducer reports: its result type, what it returns on error, and
    ``widen``, run after the kernel to turn its result into the export's (the ABI table's
    sentinels must lie outside every valid result, so some i32 kernel results widen to i64)."""

    result: str
    on_error: Callable[[], Code]
    counter: int = L.SLOT_BYTES_READ
    widen: tuple[str, ...] = ()


def sentinel(value: str) -> Callable[[], Code]:
    def on_error() -> Code:
        return return_sentinel_on_error(value)

    return on_error


def error_code() -> Code:
    return return_code_on_error()


# A found offset is at most 2^32 - 2 (unsigned); the kernel's -1 (absent) stays -1.
FIND_WIDEN = ("local.tee $k_r", "i32.const -1", "i32.eq", "if (result i64)", "  i64.const -1", "else",
              "  local.get $k_r", "  i64.extend_i32_u", "end")

CONVENTIONS: dict[str, Convention] = {
    "sum_u8": Convention("i64", sentinel("i64.const -1")),
    "count_byte": Convention("i64", sentinel("i64.const -1"), widen=("i64.extend_i32_u",)),
    "find_byte": Convention("i64", sentinel("i64.const -2"), widen=FIND_WIDEN),
    "popcount": Convention("i64", sentinel("i64.const -1")),
    "min_max_u8": Convention("i32", sentinel("i32.const -1")),
    "hash_fnv1a": Convention("i32", error_code),
    "fill": Convention("i32", error_code, L.SLOT_BYTES_WRITTEN),
    "eq": Convention("i32", sentinel("i32.const -1")),
}


def span_len_i64() -> Code:
    return ["local.get $len", "i64.extend_i32_u", "i64.add"]


def count_len(counter: int) -> Code:
    return A.count(counter, ["local.get $len", "i64.extend_i32_u"])


def unreachable_pool(on_error: Callable[[], Code]) -> Code:
    """Default arm: the slot names a pool this runtime has no memory for (code 9)."""

    return [*bad_pool(), *on_error()]


def span_reducer_func(pools: int, name: str, notice: WriteNotice = NO_NOTICE) -> Func:
    """``name(h, len[, byte])``: validate ``[offset, offset+len)``, count, run the pool's kernel."""

    conv = CONVENTIONS[name]
    make = SPAN_KERNELS[name]
    kernel = make(pool_name(0))

    def arm(k: int) -> Code:
        code = make(pool_name(k)).code
        return [*code, "i32.const 0", "return"] if kernel.result is None else [*code, *conv.widen, "return"]

    if conv.counter == L.SLOT_BYTES_WRITTEN:  # a kernel that changes bytes goes through the write barrier
        resolve = A.resolve_store("h", span_len_i64(), ["i32.const 0"], ["local.get $len"], conv.on_error)
    else:
        resolve = A.resolve("h", span_len_i64(), ["i32.const 0"], conv.on_error)
    body = [
        *resolve,
        *count_len(conv.counter),
        *(notice.span(A.pool_index(), ["local.get $addr"], ["local.get $len"]) if conv.counter == L.SLOT_BYTES_WRITTEN else []),
        *per_pool(pools, arm, A.pool_index(), unreachable_pool(conv.on_error)),
    ]
    params = [("h", "i64"), *kernel.inputs[1:]]  # $addr comes from the handle
    extra = [("k_r", "i32")] if conv.widen else []
    return Func(name, params, [conv.result], [*A.RESOLVE_LOCALS, *kernel.locals, *extra], body, export=name)


def hash_func(pools: int) -> Func:
    """hash_fnv1a(h, len, out) -> code: every u64 is a valid hash, so it goes to guest memory at ``out``.

    The bridge checks ``out`` (code 7) before writing; bytes are counted only
    once the hash is delivered.
    """
    kernel = hash_fnv1a(pool_name(0))
    body = [
        *A.resolve("h", span_len_i64(), ["i32.const 0"], return_code_on_error),
        "block $hashed",
        *per_pool(pools, lambda k: [*hash_fnv1a(pool_name(k)).code, "local.set $k_hash", "br $hashed"],
                  A.pool_index(), unreachable_pool(return_code_on_error)),
        "end",
        "local.get $out",
        "local.get $k_hash",
        *bridge_call(BRIDGE_PUT_I64),
        "local.tee $code",
        *if_([], return_code_on_error()),
        *count_len(L.SLOT_BYTES_READ),
        "i32.const 0",
    ]
    params = [("h", "i64"), ("len", "i32"), ("out", "i32")]
    locals_ = [*A.RESOLVE_LOCALS, *kernel.locals, ("k_hash", "i64")]
    return Func("hash_fnv1a", params, ["i32"], locals_, body, export="hash_fnv1a")


def slot_address(slot: str, handle: str) -> Code:
    """Pool address of the handle's offset in the region of ``$slot``."""
    return [f"local.get ${slot}", f"i32.load {A.META} offset={L.SLOTS + L.SLOT_BASE}", f"local.get ${handle}", "i32.wrap_i64", "i32.add"]


def slot_pool(slot: str) -> Code:
    return [f"local.get ${slot}", f"i32.load {A.META} offset={L.SLOTS + L.SLOT_POOL}"]


def eq_func(pools: int) -> Func:
    """eq(a, b, len): both spans validated like ``copy``, then a pools x pools compare."""

    on_error = CONVENTIONS["eq"].on_error
    count_both = []
    for slot in ("a_slot", "b_slot"):
        count_both += [f"local.get ${slot}", "local.set $slot", *count_len(L.SLOT_BYTES_READ)]

    def outer(a: int) -> Code:
        def arm(b: int) -> Code:
            return [*eq(pool_name(a), pool_name(b)).code, "return"]

        return per_pool(pools, arm, slot_pool("b_slot"), unreachable_pool(on_error), label="pool_b")

    body = [
        *A.validate_handle("a", span_len_i64(), on_error),
        "local.get $slot",
        "local.set $a_slot",
        "local.get $slow",
        "local.set $a_slow",
        *A.validate_handle("b", span_len_i64(), on_error),
        "local.get $slot",
        "local.set $b_slot",
        *A.both_resident((A.region_id_of("a"), "$a_slow", "$a_slot"), (A.region_id_of("b"), "$slow", "$b_slot"), on_error),
        *slot_address("a_slot", "a"),
        "local.set $addr",
        *slot_address("b_slot", "b"),
        "local.set $addr_b",
        *count_both,
        *per_pool(pools, outer, slot_pool("a_slot"), unreachable_pool(on_error), label="pool_a"),
    ]
    locals_ = [*A.RESOLVE_LOCALS, ("addr_b", "i32"), ("a_slot", "i32"), ("b_slot", "i32"), ("a_slow", "i32"),
               *eq(pool_name(0), pool_name(0)).locals]
    return Func("eq", [("a", "i64"), ("b", "i64"), ("len", "i32")], ["i32"], locals_, body, export="eq")


def reducer_funcs(pools: int, notice: WriteNotice = NO_NOTICE) -> list[Func]:
    """The exported reducers, each specialised per pool (``eq`` per pair of pools); ``notice`` hears of ``fill``."""
    return [
        *(hash_func(pools) if name == "hash_fnv1a" else span_reducer_func(pools, name, notice) for name in SPAN_KERNELS),
        eq_func(pools),
    ]
