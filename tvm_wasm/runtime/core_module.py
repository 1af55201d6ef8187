"""The runtime module: the raw ``tvm`` ABI served from inside wasm.

It imports the shared ``meta`` memory (directory table), the pool memories
and three host functions for the rare slow paths (fault a Cold region in,
Freelist alloc and dealloc). Operations that touch the guest's own memory go
through the ``bridge`` table, filled by the host with functions of a bridge
module that imports that guest's memory (see ``bridge_module``).
"""

from __future__ import annotations

from collections.abc import Callable

from ..abi.table import TYPED_ACCESS, TypedWidth, function_index
from ..core.errors import AllocationFailed, OutOfBounds, ReadOnly, RegionNotFound
from . import access as A
from . import layout as L
from . import reducers as R
from .conventions import (  # re-exported: the guest module builds on these names
    BRIDGE_COPY_IN, BRIDGE_COPY_OUT, BRIDGE_GATHER, BRIDGE_HISTOGRAM, BRIDGE_PUT_I64, BRIDGE_SLOTS,
    BRIDGE_TYPES, COLD_PREFIX, HOST, bad_pool, bridge_call, pool_name, return_code_on_error,
    return_sentinel_on_error,
)
from .slow_paths import host_control_functions, host_control_wrappers
from .wat import Code, Func, Module, if_, import_func, import_memory, per_pool
from .write_notice import NO_NOTICE, WriteNotice

META_MEM = "meta"


TypedAccess = TypedWidth  # one typed load/store pair, from the ABI table
TYPED = list(TYPED_ACCESS)


# ---------------------------------------------------------------- error conventions
TRAP_CAUSE_PARAMS = [("code", "i32"), ("h", "i64"), ("off", "i32"), ("width", "i32"), ("function", "i32")]
"""What ``$trap_cause`` receives: the code, the handle, the relative offset, the width, the ABI index."""


def trap_on_error(name: str, width: int) -> Callable[[], Code]:
    """Typed accesses trap, after ``$trap_cause`` recorded what was accessed.

    On the host ``$trap_cause`` is an import that raises the typed error in
    Python (so it never returns); in the self-contained module it fills the
    exported trap-cause globals. Either way the fast path is untouched.
    """
    index = function_index(name)

    def on_error() -> Code:
        return ["local.get $code", "local.get $h", "local.get $off", f"i32.const {width}", f"i32.const {index}",
                "call $trap_cause", "unreachable"]

    return on_error


# ---------------------------------------------------------------- typed access
def width_i64(t: TypedAccess) -> Code:
    """``off + width`` as i64, added to the handle's offset by the bounds check."""
    return ["local.get $off", "i64.extend_i32_u", "i64.add", f"i64.const {t.width}", "i64.add"]


def slow_load_name(t: TypedAccess) -> str:
    return f"{COLD_PREFIX}load_{t.name}"


def typed_load(pools: int, t: TypedAccess) -> Func:
    """load_T(h, off): the fast paths inline, everything else one call to :func:`slow_typed_load`.

    A fast path is one compare of the handle against one of the slot's fast keys and the capacity
    (live, resident, this generation, in pool 0, then in pool 1, and in bounds: ``layout``'s fast
    keys), the counts and the load from that pool. Anything else (errors, a Cold region, a region in
    no pool or in pool 2 and up, an access past the end) calls the cold twin, which checks in the
    model's order. What a linker inlines into a loop is then only the fast paths: the slow path's
    host calls, error reporting and the other pools add no live values (pool bases, import pointers).
    """
    body = [
        *A.slot_of_handle("h"),
        *(code for pool in range(min(pools, L.FAST_KEY_POOLS)) for code in fast_load(t, pool)),
        *cold_load(t),
    ]
    return Func(f"load_{t.name}", [("h", "i64"), ("off", "i32")], [t.value_type], A.RESOLVE_LOCALS, body,
                export=f"load_{t.name}")


def fast_load(t: TypedAccess, pool: int) -> Code:
    """The fast path for ``pool`` (``$slot`` set): if the access passes the key and bounds compare, count, load
    and return; otherwise fall through (to the next pool's fast path, then the cold twin)."""
    return [
        "block $other",
        *A.fast_keyed_fits("h", width_i64(t), "$other", pool),
        *A.region_address("h", ["local.get $off"]),
        *A.count(L.SLOT_BYTES_READ, [f"i64.const {t.width}"]),
        "local.get $addr",
        f"{t.load} {pool_name(pool)}",
        "return",
        "end",
    ]


def cold_load(t: TypedAccess) -> Code:
    """The one call to the cold twin (``$h``, ``$off``): every check in the model's order."""
    return ["local.get $h", "local.get $off", f"call ${slow_load_name(t)}"]


def cold_names() -> list[str]:
    """Runtime functions only slow paths call (named with ``COLD_PREFIX``), which a linker keeps out of line."""
    return [slow_load_name(t) for t in TYPED]


def slow_typed_load(pools: int, t: TypedAccess) -> Func:
    """The typed load with every check in the model's order: errors trap with their cause, a Cold
    region faults in, a region in no pool answers code 9."""
    on_error = trap_on_error(f"load_{t.name}", t.width)
    body = [
        *A.resolve("h", width_i64(t), ["local.get $off"], on_error),
        *A.count(L.SLOT_BYTES_READ, [f"i64.const {t.width}"]),
        *per_pool(
            pools,
            lambda k: ["local.get $addr", f"{t.load} {pool_name(k)}", "return"],
            A.pool_index(),
            [*bad_pool(), *on_error()],
        ),
    ]
    return Func(slow_load_name(t), [("h", "i64"), ("off", "i32")], [t.value_type], A.RESOLVE_LOCALS, body)


def typed_store(pools: int, t: TypedAccess, notice: WriteNotice = NO_NOTICE) -> Func:
    on_error = trap_on_error(f"store_{t.name}", t.width)
    body = [
        *A.resolve_store("h", width_i64(t), ["local.get $off"], [f"i32.const {t.width}"], on_error, t.width),
        *A.count(L.SLOT_BYTES_WRITTEN, [f"i64.const {t.width}"]),
        *per_pool(
            pools,
            lambda k: [*notice.store(k), "local.get $addr", "local.get $v", f"{t.store} {pool_name(k)}", "return"],
            A.pool_index(),
            [*bad_pool(), *on_error()],
        ),
    ]
    return Func(
        f"store_{t.name}",
        [("h", "i64"), ("off", "i32"), ("v", t.value_type)],
        [],
        A.RESOLVE_LOCALS,
        body,
        export=f"store_{t.name}",
    )


def try_load(t: TypedAccess) -> Func:
    """try_load_{t}(h, off, out) -> code: the load's checks, then the value's bytes to guest memory at ``out``.

    The bridge checks ``out`` against the guest memory (code 7) before a byte
    moves, so a failed call writes nothing.
    """
    name = f"try_load_{t.name}"
    body = [
        *A.resolve("h", width_i64(t), ["local.get $off"], return_code_on_error),
        *A.pool_index(),
        "local.get $addr",
        "local.get $out",
        f"i32.const {t.width}",
        *bridge_call(BRIDGE_COPY_OUT),
        "local.tee $code",
        *if_([], return_code_on_error()),
        *A.count(L.SLOT_BYTES_READ, [f"i64.const {t.width}"]),
        "i32.const 0",
    ]
    params = [("h", "i64"), ("off", "i32"), ("out", "i32")]
    return Func(name, params, ["i32"], A.RESOLVE_LOCALS, body, export=name)


def try_store(pools: int, t: TypedAccess, notice: WriteNotice = NO_NOTICE) -> Func:
    """try_store_{t}(h, off, v) -> code: the store's checks, returning the code instead of trapping."""
    name = f"try_store_{t.name}"
    body = [
        *A.resolve_store("h", width_i64(t), ["local.get $off"], [f"i32.const {t.width}"], return_code_on_error, t.width),
        *A.count(L.SLOT_BYTES_WRITTEN, [f"i64.const {t.width}"]),
        *per_pool(
            pools,
            lambda k: [*notice.store(k), "local.get $addr", "local.get $v", f"{t.store} {pool_name(k)}", "i32.const 0",
                       "return"],
            A.pool_index(),
            [*bad_pool(), *return_code_on_error()],
        ),
    ]
    params = [("h", "i64"), ("off", "i32"), ("v", t.value_type)]
    return Func(name, params, ["i32"], A.RESOLVE_LOCALS, body, export=name)


# ---------------------------------------------------------------- allocation
def slot_of_region_id() -> Code:
    """``$slot`` from the i32 ``$region``; ids above 65535 name no region."""
    return [
        *if_(
            ["local.get $region", "i32.const 0xFFFF", "i32.gt_u"],
            A.fail_with(RegionNotFound.code, lambda: return_sentinel_on_error("i64.const 0")),
        ),
        "local.get $region",
        f"i32.const {L.SLOT_SHIFT}",
        "i32.shl",
        "local.set $slot",
    ]


def make_handle(offset: Code) -> Code:
    """Pack (region id, current generation, offset) from ``$region`` and the slot."""
    return [
        "local.get $region",
        "i64.extend_i32_u",
        "i64.const 48",
        "i64.shl",
        *A.slot_field(L.SLOT_STATE),
        f"i32.const {L.GEN_MASK}",
        "i32.and",
        "i64.extend_i32_u",
        "i64.const 32",
        "i64.shl",
        "i64.or",
        *offset,
        "i64.extend_i32_u",
        "i64.or",
    ]


def count_allocation() -> Code:
    return [
        *A.count(L.SLOT_ALLOCATIONS, ["i64.const 1"]),
        *A.count(L.SLOT_BYTES_ALLOCATED, ["local.get $size", "i64.extend_i32_u"]),
    ]


def bump_alloc() -> Code:
    fail = A.fail_with(AllocationFailed.code, lambda: return_sentinel_on_error("i64.const 0"))
    return [
        *A.slot_field(L.SLOT_USED),
        "local.set $offset",
        "local.get $offset",
        "i64.extend_i32_u",
        "local.get $size",
        "i64.extend_i32_u",
        "i64.add",
        *A.slot_field(L.SLOT_CAPACITY, "i64.load32_u"),
        "i64.gt_u",
        *if_([], fail),
        "local.get $slot",
        "local.get $offset",
        "local.get $size",
        "i32.add",
        f"i32.store {A.META} offset={L.SLOTS + L.SLOT_USED}",
        *count_allocation(),
        *make_handle(["local.get $offset"]),
        "return",
    ]


def slab_flag_address(index: str) -> Code:
    """Address (less SLAB_STACK) of ``is_free[index]`` in the slab side table at ``$table``."""
    return [
        "local.get $table",
        "local.get $table",
        f"i32.load {A.META} offset={L.SLAB_SLOTS}",
        "i32.const 2",
        "i32.shl",
        "i32.add",
        f"local.get ${index}",
        "i32.add",
    ]


def slab_alloc() -> Code:
    """Pop the free stack in the slab side table (LIFO), exactly like ``Slab``."""
    fail = A.fail_with(AllocationFailed.code, lambda: return_sentinel_on_error("i64.const 0"))
    meta = A.META
    return [
        *if_(["local.get $size", *A.slot_field(L.SLOT_CLASS_SIZE), "i32.ne"], fail),
        *A.slot_field(L.SLOT_SLAB_TABLE),
        "local.set $table",
        "local.get $table",
        f"i32.load {meta} offset={L.SLAB_COUNT}",
        "local.tee $count",
        "i32.eqz",
        *if_([], fail),
        "local.get $table",
        "local.get $count",
        "i32.const 1",
        "i32.sub",
        "local.tee $count",
        f"i32.store {meta} offset={L.SLAB_COUNT}",
        # index = stack[count]
        "local.get $table",
        "local.get $count",
        "i32.const 2",
        "i32.shl",
        "i32.add",
        f"i32.load {meta} offset={L.SLAB_STACK}",
        "local.set $index",
        *slab_flag_address("index"),  # is_free[index] = 0
        "i32.const 0",
        f"i32.store8 {meta} offset={L.SLAB_STACK}",
        "local.get $slot",
        *A.slot_field(L.SLOT_USED),
        "local.get $size",
        "i32.add",
        f"i32.store {meta} offset={L.SLOTS + L.SLOT_USED}",
        *count_allocation(),
        *make_handle(["local.get $index", "local.get $size", "i32.mul"]),
        "return",
    ]


def refuse_read_only(on_error: Callable[[], Code]) -> Code:
    """Code 8 if the region in ``$slot`` is read-only (layout changes: alloc, dealloc)."""
    return if_([*A.slot_field(L.SLOT_WRITE_STATE), f"i32.const {L.FLAG_READ_ONLY}", "i32.and"],
               A.fail_with(ReadOnly.code, on_error))


def alloc_checks() -> Code:
    """What ``alloc`` checks before it allocates (also the start of the linker's in-wasm alloc)."""
    return [
        *slot_of_region_id(),
        *if_(
            [*A.slot_field(L.SLOT_STATE), f"i32.const {L.FLAG_LIVE}", "i32.and", "i32.eqz"],
            A.fail_with(RegionNotFound.code, lambda: return_sentinel_on_error("i64.const 0")),
        ),
        *refuse_read_only(lambda: return_sentinel_on_error("i64.const 0")),
    ]


def alloc_func() -> Func:
    body = [
        *alloc_checks(),
        *A.slot_field(L.SLOT_ALLOCATOR),
        "local.tee $kind",
        f"i32.const {L.ALLOC_BUMP}",
        "i32.eq",
        *if_([], bump_alloc()),
        "local.get $kind",
        f"i32.const {L.ALLOC_SLAB}",
        "i32.eq",
        *if_([], slab_alloc()),
        # Freelist: the host's allocator (one entry into the host). It returns the
        # packed handle, or 0 with the error code in the header (handles of
        # regions >= 0x8000 are negative i64s, so the sign cannot carry errors).
        "local.get $region",
        "local.get $size",
        "call $host_alloc",
        "local.tee $result",
        "i64.eqz",
        *if_([], ["i32.const 0", f"i32.load {A.META} offset={L.HDR_HOST_ERROR}", "global.set $last_error",
                  "i64.const 0", "return"]),
        "local.get $result",
    ]
    locals_ = [("slot", "i32"), ("code", "i32"), ("kind", "i32"), ("offset", "i32"), ("table", "i32"),
               ("count", "i32"), ("index", "i32"), ("result", "i64")]
    return Func("alloc", [("region", "i32"), ("size", "i32")], ["i64"], locals_, body, export="alloc")


def slab_dealloc() -> Code:
    fail = A.fail_with(OutOfBounds.code, return_code_on_error)
    meta = A.META
    return [
        *A.slot_field(L.SLOT_CLASS_SIZE),
        "local.set $class",
        *A.slot_field(L.SLOT_SLAB_TABLE),
        "local.set $table",
        # misaligned or beyond the last slot -> 3
        "local.get $h",
        "i32.wrap_i64",
        "local.get $class",
        "i32.rem_u",
        *if_([], fail),
        "local.get $h",
        "i32.wrap_i64",
        "local.get $class",
        "i32.div_u",
        "local.tee $index",
        "local.get $table",
        f"i32.load {meta} offset={L.SLAB_SLOTS}",
        "i32.ge_u",
        *if_([], fail),
        *slab_flag_address("index"),
        "local.tee $flag",
        f"i32.load8_u {meta} offset={L.SLAB_STACK}",
        *if_([], fail),  # double free
        "local.get $flag",
        "i32.const 1",
        f"i32.store8 {meta} offset={L.SLAB_STACK}",
        # stack[count++] = index
        "local.get $table",
        f"i32.load {meta} offset={L.SLAB_COUNT}",
        "local.set $count",
        "local.get $table",
        "local.get $count",
        "i32.const 2",
        "i32.shl",
        "i32.add",
        "local.get $index",
        f"i32.store {meta} offset={L.SLAB_STACK}",
        "local.get $table",
        "local.get $count",
        "i32.const 1",
        "i32.add",
        f"i32.store {meta} offset={L.SLAB_COUNT}",
        "local.get $slot",
        *A.slot_field(L.SLOT_USED),
        "local.get $class",
        "i32.sub",
        f"i32.store {meta} offset={L.SLOTS + L.SLOT_USED}",
        "i32.const 0",
        "return",
    ]


def dealloc_func() -> Func:
    body = [
        *A.validate_handle("h", [], return_code_on_error),
        *refuse_read_only(return_code_on_error),
        *A.slot_field(L.SLOT_ALLOCATOR),
        "local.tee $kind",
        f"i32.const {L.ALLOC_BUMP}",
        "i32.eq",
        *if_([], ["i32.const 0", "return"]),
        "local.get $kind",
        f"i32.const {L.ALLOC_SLAB}",
        "i32.eq",
        *if_([], slab_dealloc()),
        "local.get $h",
        "call $host_dealloc",
        "local.tee $code",
        *if_([], return_code_on_error()),
        "i32.const 0",
    ]
    locals_ = [*A.RESOLVE_LOCALS, ("kind", "i32"), ("class", "i32"), ("table", "i32"), ("index", "i32"),
               ("flag", "i32"), ("count", "i32")]
    return Func("dealloc", [("h", "i64")], ["i32"], locals_, body, export="dealloc")


# ---------------------------------------------------------------- bulk movement
def len_i64() -> Code:
    return ["local.get $len", "i64.extend_i32_u", "i64.add"]


def guest_transfer(name: str, slot: int, counter: int, guest_param: str, *, len_first: bool = False,
                   notice: WriteNotice = NO_NOTICE) -> Func:
    """read/write: validate the handle's span, then the bridge copies to/from guest memory.

    The export takes ``(h, guest_ptr, len)``, or ``(h, len, guest_ptr)`` with
    ``len_first`` (``byte_histogram``'s ABI order); the bridge always gets
    ``(pool, addr, guest_ptr, len)``; ``notice`` hears of a transfer into the region.
    """
    if counter == L.SLOT_BYTES_WRITTEN:  # guest -> region: through the write barrier
        resolve = A.resolve_store("h", len_i64(), ["i32.const 0"], ["local.get $len"], return_code_on_error)
    else:
        resolve = A.resolve("h", len_i64(), ["i32.const 0"], return_code_on_error)
    body = [
        *resolve,
        *notice.span(A.pool_index(), ["local.get $addr"], ["local.get $len"]),
        *A.pool_index(),
        "local.get $addr",
        f"local.get ${guest_param}",
        "local.get $len",
        *bridge_call(slot),
        "local.tee $code",
        *if_([], return_code_on_error()),
        *A.count(counter, ["local.get $len", "i64.extend_i32_u"]),
        "i32.const 0",
    ]
    params = [("h", "i64"), (guest_param, "i32"), ("len", "i32")]
    if len_first:
        params = [("h", "i64"), ("len", "i32"), (guest_param, "i32")]
    return Func(name, params, ["i32"], A.RESOLVE_LOCALS, body, export=name)


def read_gather_func() -> Func:
    """Gather ``count`` items of ``item_size`` bytes at offset + index[i] into guest memory."""
    body = [
        *A.resolve("h", [], ["i32.const 0"], return_code_on_error),
        *A.pool_index(),
        "local.get $addr",
        # bytes left from the handle's offset to the end of the region
        *A.slot_field(L.SLOT_CAPACITY),
        "local.get $h",
        "i32.wrap_i64",
        "i32.sub",
        "local.get $indices",
        "local.get $count",
        "local.get $item_size",
        "local.get $dst",
        *bridge_call(BRIDGE_GATHER),
        "local.tee $code",
        *if_([], return_code_on_error()),
        *A.count(
            L.SLOT_BYTES_READ,
            ["local.get $count", "i64.extend_i32_u", "local.get $item_size", "i64.extend_i32_u", "i64.mul"],
        ),
        "i32.const 0",
    ]
    params = [("h", "i64"), ("indices", "i32"), ("count", "i32"), ("item_size", "i32"), ("dst", "i32")]
    return Func("read_gather", params, ["i32"], A.RESOLVE_LOCALS, body, export="read_gather")


def pool_to_pool_copy(pools: int, src_pool: Code, dst_pool: Code, src: Code, dst: Code, length: Code) -> Code:
    """memory.copy between two pools chosen at run time (pools x pools specialised arms)."""

    def outer(s: int) -> Code:
        return per_pool(
            pools,
            lambda d: [*dst, *src, *length, f"memory.copy {pool_name(d)} {pool_name(s)}", "br $copied"],
            dst_pool,
            ["unreachable"],
            label="dst",
        )

    return ["block $copied", *per_pool(pools, outer, src_pool, ["unreachable"], label="src"), "end"]


def copy_func(pools: int, notice: WriteNotice = NO_NOTICE) -> Func:
    """copy(src, dst, len): both handles validated (region, generation, bounds), then residency."""
    body = [
        *A.validate_handle("src", len_i64(), return_code_on_error),
        "local.get $slot",
        "local.set $src_slot",
        "local.get $slow",
        "local.set $src_slow",
        *A.validate_handle("dst", len_i64(), return_code_on_error, L.SLOT_WRITE_STATE),
        "local.get $slot",
        "local.set $dst_slot",
        *A.both_resident(
            (A.region_id_of("src"), "$src_slow", "$src_slot"), (A.region_id_of("dst"), "$slow", "$dst_slot"),
            return_code_on_error,
        ),
        *A.write_barrier(["local.get $dst", "i32.wrap_i64"], ["local.get $len"], return_code_on_error),
        *_copy_between_slots(pools, "$src_slot", ["local.get $src", "i32.wrap_i64"], "$dst_slot", ["local.get $dst", "i32.wrap_i64"],
                             notice),
        "i32.const 0",
    ]
    locals_ = [*A.RESOLVE_LOCALS, ("src_slot", "i32"), ("dst_slot", "i32"), ("src_slow", "i32")]
    return Func("copy", [("src", "i64"), ("dst", "i64"), ("len", "i32")], ["i32"], locals_, body, export="copy")


def _copy_between_slots(pools: int, src_slot: str, src_off: Code, dst_slot: str, dst_off: Code,
                        notice: WriteNotice) -> Code:
    """Copy ``$len`` bytes and count them on both regions (bounds already checked)."""
    def field(slot: str, offset: int) -> Code:
        return [f"local.get {slot}", f"i32.load {A.META} offset={L.SLOTS + offset}"]

    code = notice.span(field(dst_slot, L.SLOT_POOL), [*field(dst_slot, L.SLOT_BASE), *dst_off, "i32.add"], ["local.get $len"])
    code += pool_to_pool_copy(
        pools,
        field(src_slot, L.SLOT_POOL),
        field(dst_slot, L.SLOT_POOL),
        [*field(src_slot, L.SLOT_BASE), *src_off, "i32.add"],
        [*field(dst_slot, L.SLOT_BASE), *dst_off, "i32.add"],
        ["local.get $len"],
    )
    for slot, counter in ((src_slot, L.SLOT_BYTES_READ), (dst_slot, L.SLOT_BYTES_WRITTEN)):
        code += [f"local.get {slot}", "local.set $slot", *A.count(counter, ["local.get $len", "i64.extend_i32_u"])]
    return code


def copy_region_func(pools: int, notice: WriteNotice = NO_NOTICE) -> Func:
    """copy_region(src_region, src_off, dst_region, dst_off, len): raw offsets, no generation check."""

    def region_slot(region: str, slot: str) -> Code:
        return [
            *if_([f"local.get ${region}", "i32.const 0xFFFF", "i32.gt_u"], A.fail_with(RegionNotFound.code, return_code_on_error)),
            f"local.get ${region}",
            f"i32.const {L.SLOT_SHIFT}",
            "i32.shl",
            f"local.tee {slot}",
            f"i32.load {A.META} offset={L.SLOTS + L.SLOT_STATE}",
            f"i32.const {L.FLAG_LIVE}",
            "i32.and",
            "i32.eqz",
            *if_([], A.fail_with(RegionNotFound.code, return_code_on_error)),
        ]

    def bounds(slot: str, offset: str) -> Code:
        return [
            f"local.get ${offset}",
            "i64.extend_i32_u",
            *len_i64(),
            f"local.get {slot}",
            f"i64.load32_u {A.META} offset={L.SLOTS + L.SLOT_CAPACITY}",
            "i64.gt_u",
            *if_([], A.fail_with(OutOfBounds.code, return_code_on_error)),
        ]

    def not_resident(slot: str, flag: str) -> Code:
        return [f"local.get {slot}", f"i32.load {A.META} offset={L.SLOTS + L.SLOT_STATE}",
                f"i32.const {L.FLAG_RESIDENT}", "i32.and", "i32.eqz", f"local.set {flag}"]

    body = [
        *region_slot("src_region", "$src_slot"),
        *region_slot("dst_region", "$dst_slot"),
        *bounds("$src_slot", "src_off"),
        *bounds("$dst_slot", "dst_off"),
        *not_resident("$src_slot", "$src_slow"),
        *not_resident("$dst_slot", "$dst_slow"),
        *A.both_resident(
            (["local.get $src_region"], "$src_slow", "$src_slot"), (["local.get $dst_region"], "$dst_slow", "$dst_slot"),
            return_code_on_error,
        ),
        "local.get $dst_slot",
        "local.set $slot",
        "i32.const 1",
        "local.set $slow",  # raw offsets, no fast path to keep: always through the barrier
        *A.write_barrier(["local.get $dst_off"], ["local.get $len"], return_code_on_error),
        *_copy_between_slots(pools, "$src_slot", ["local.get $src_off"], "$dst_slot", ["local.get $dst_off"], notice),
        "i32.const 0",
    ]
    params = [("src_region", "i32"), ("src_off", "i32"), ("dst_region", "i32"), ("dst_off", "i32"), ("len", "i32")]
    locals_ = [("slot", "i32"), ("code", "i32"), ("src_slot", "i32"), ("dst_slot", "i32"), ("src_slow", "i32"), ("dst_slow", "i32"),
               ("slow", "i32")]
    return Func("copy_region", params, ["i32"], locals_, body, export="copy_region")


def last_error_func() -> Func:
    body = ["global.get $last_error", "i32.const 0", "global.set $last_error"]
    return Func("last_error", [], ["i32"], [], body, export="last_error")


# ---------------------------------------------------------------- the module
def check_pool_count(pools: int) -> None:
    if not 1 <= pools <= 64:
        raise ValueError(f"pools must be in 1..64, got {pools}")


def abi_fields() -> list[str]:
    """Types, the bridge table and the error globals every ABI provider declares."""
    fields = []
    for name, params, results in {v[0]: v for v in BRIDGE_TYPES.values()}.values():
        sig = "".join(f" (param {p})" for p in params) + "".join(f" (result {r})" for r in results)
        fields.append(f"(type ${name} (func{sig}))")
    return fields + [
        f'(table $bridge (export "bridge") {BRIDGE_SLOTS} funcref)',
        '(global $last_error (mut i32) (i32.const 0))',
    ]


def abi_funcs(pools: int, notice: WriteNotice = NO_NOTICE) -> list[Func]:
    """The raw ABI over ``pools`` pools.

    Needs, from whoever assembles the module: memories ``$meta`` and
    ``$p0..``, ``abi_fields()``, the bridge table filled with the bridge
    functions, and functions ``$host_fault``, ``$host_alloc``,
    ``$host_dealloc`` and ``$trap_cause`` (imports on the host, internal in a
    self-contained module). ``notice`` hears of every write to pool bytes
    (the module's touched-page map; nothing on the host).
    """
    funcs = [A.check_handle_func(), A.ensure_resident_func(), A.write_barrier_func(), alloc_func(), dealloc_func(),
             last_error_func()]
    for t in TYPED:
        funcs += [typed_load(pools, t), slow_typed_load(pools, t), typed_store(pools, t, notice)]
    for t in TYPED:
        funcs += [try_load(t), try_store(pools, t, notice)]
    funcs += [
        guest_transfer("read", BRIDGE_COPY_OUT, L.SLOT_BYTES_READ, "dst"),
        guest_transfer("write", BRIDGE_COPY_IN, L.SLOT_BYTES_WRITTEN, "src", notice=notice),
        guest_transfer("byte_histogram", BRIDGE_HISTOGRAM, L.SLOT_BYTES_READ, "out", len_first=True),
        read_gather_func(),
        copy_func(pools, notice),
        copy_region_func(pools, notice),
        *R.reducer_funcs(pools, notice),
    ]
    return funcs


def host_imports(pools: int) -> list[str]:
    """What the host supplies to a runtime, from its private linker: directory, pools, slow paths, control."""
    return [
        import_memory(HOST, META_MEM, "meta", L.META_INITIAL_PAGES),
        *(import_memory(HOST, f"pool{k}", f"p{k}", 0, L.WASM32_MAX_PAGES) for k in range(pools)),
        import_func(HOST, "fault", "host_fault", ["i32"], ["i32"]),
        import_func(HOST, "alloc", "host_alloc", ["i32", "i32"], ["i64"]),
        import_func(HOST, "dealloc", "host_dealloc", ["i64"], ["i32"]),
        import_func(HOST, "trap", "trap_cause", [t for _, t in TRAP_CAUSE_PARAMS]),
        *(import_func(HOST, f"control_{f.name}", f"host_{f.name}", f.wasm_params, f.wasm_results)
          for f in host_control_functions()),
    ]


def build_core_wat(pools: int) -> str:
    """WAT of the host's runtime module: the ABI over imported meta and pool memories."""
    check_pool_count(pools)
    module = Module()
    module.imports += host_imports(pools)
    module.fields += abi_fields()
    for func in host_control_wrappers():
        module.add(func)
    for func in abi_funcs(pools):
        module.add(func)
    return module.render()
