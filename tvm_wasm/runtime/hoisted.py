"""Runtime helpers for loops whose handle resolution the linker hoists ("resolve once, access many").

A loop that calls nothing but typed loads and stores on handles it never
reassigns cannot change the directory except through those accesses' slow
paths. The linker's hoisting pass (``tvm_wasm.linker.hoist``) resolves each
such handle once before the loop into a base address and a *limit*, and turns
every access into one unsigned compare of the relative offset against the
limit plus a load or store at ``base + offset`` in a pool chosen statically
(the loop is versioned per pool). The limit folds every check the model
makes into that compare: it is 0 (no offset passes) unless the slot's state
word equals the handle's generation | LIVE | RESIDENT (region, generation,
liveness, residency; a store compares the store-side state word), the region
sits in the version's pool, and the access fits (``offset < capacity -
handle offset - width + 1``). Anything that fails the compare calls the
untouched ABI function, which reports errors, faults regions in and counts
its own access; the pass flushes its counts before and resolves again after
such a call, since a fault-in may evict or move any region.

Per-access counters and the LRU clock are kept in the loop's locals and
written here (:func:`flush_func`) when the loop is left and before every slow
call, so a region's ``bytes_read``/``bytes_written`` and the access clock's
total stay exact; a region's LRU stamp is taken at the flush.

The helpers are runtime functions exported under :data:`HOIST_PREFIX` so the
pass finds them in the merged module; the linker removes those exports before
verifying user code and before writing the output, so user code can never
name them.
"""

from __future__ import annotations

from ..abi.table import TYPED_ACCESS, TypedWidth
from . import access as A
from . import layout as L
from .conventions import pool_name
from .core_module import alloc_checks, bump_alloc, make_handle, slab_alloc
from .wat import Code, Func, if_
from .write_notice import NO_NOTICE, WriteNotice

HOIST_PREFIX = "tvm-hoist:"
#: Slot word a hoisted store compares: the store-side word, as the runtime's typed store does, with
#: ``FLAG_TRACK_DIRTY`` ignored (``STORE_IGNORED``): a read-only region never passes, so its stores take
#: the ABI's write barrier; a dirty-tracked one does, and each hoisted store marks its pages itself.
STORE_STATE = L.SLOT_WRITE_STATE
STORE_IGNORED = L.FLAG_TRACK_DIRTY
LOAD_STATE = L.SLOT_STATE


def expected_state(handle: str) -> Code:
    """The state word of a live, resident region of the handle's generation."""
    return [*A.generation_of(handle), f"i32.const {L.FLAG_LIVE | L.FLAG_RESIDENT}", "i32.or"]


def base_func() -> Func:
    """hoist_base(h) -> i32: pool address of the handle's offset (meaningful only where the limit is non-zero)."""
    body = [*A.slot_of_handle("h"), *A.slot_field(L.SLOT_BASE), "local.get $h", "i32.wrap_i64", "i32.add"]
    return Func("hoist_base", [("h", "i64")], ["i32"], [("slot", "i32")], body, export=HOIST_PREFIX + "base")


def pool_func() -> Func:
    """hoist_pool(h) -> i32: the pool of the handle's region (NO_POOL or stale data pick no fast version)."""
    body = [*A.slot_of_handle("h"), *A.slot_field(L.SLOT_POOL)]
    return Func("hoist_pool", [("h", "i64")], ["i32"], [("slot", "i32")], body, export=HOIST_PREFIX + "pool")


def dirty_func() -> Func:
    """hoist_dirty(h) -> i32: the handle's ``SLOT_DIRTY_TABLE`` (0 when untracked), what a hoisted store marks."""
    body = [*A.slot_of_handle("h"), *A.slot_field(L.SLOT_DIRTY_TABLE)]
    return Func("hoist_dirty", [("h", "i64")], ["i32"], [("slot", "i32")], body, export=HOIST_PREFIX + "dirty")


def limit_func(state_field: int, name: str, ignored: int = 0) -> Func:
    """hoist_limit_*(h, width, pool) -> i32: relative offsets below it take the fast path; 0 means none.

    Non-zero only if the slot's ``state_field`` word, the flags in ``ignored``
    aside, is exactly the handle's generation | LIVE | RESIDENT, the region is in ``pool`` and
    ``handle offset + width <= capacity``; then it is ``capacity - handle
    offset - width + 1`` (at most 2**32 - 1, since width >= 1).
    """
    room = [  # capacity - handle offset - width, as i64 (negative: nothing fits)
        *A.slot_field(L.SLOT_CAPACITY, "i64.load32_u"), *A.offset_of_i64("h"), "i64.sub",
        "local.get $width", "i64.extend_i32_u", "i64.sub", "local.tee $room",
    ]
    body = [
        *A.slot_of_handle("h"),
        *A.slot_field(state_field), *([f"i32.const {ignored}", "i32.or"] if ignored else []),
        *expected_state("h"), *([f"i32.const {ignored}", "i32.or"] if ignored else []), "i32.eq",
        *A.slot_field(L.SLOT_POOL), "local.get $pool", "i32.eq",
        "i32.and",
        *room, "i64.const 0", "i64.ge_s",
        "i32.and",
        "if (result i32)",
        "  local.get $room", "  i32.wrap_i64", "  i32.const 1", "  i32.add",
        "else",
        "  i32.const 0",
        "end",
    ]
    return Func(f"hoist_limit_{name}", [("h", "i64"), ("width", "i32"), ("pool", "i32")], ["i32"],
                [("slot", "i32"), ("room", "i64")], body, export=f"{HOIST_PREFIX}limit_{name}")


def flush_func() -> Func:
    """hoist_flush(h, read, written, accesses): add a loop's counts to the region's slot, stamp the clock.

    ``accesses`` typed accesses advance the shared clock by as many ticks as
    they would have one by one; the region's LRU stamp is the clock after them.
    Nothing happens for 0 accesses (a loop that only took slow paths).
    """
    def add(field: int, amount: str) -> Code:
        return ["local.get $slot", *A.slot_field(field, "i64.load"), f"local.get ${amount}", "i64.add",
                f"i64.store {A.META} offset={L.SLOTS + field}"]

    body = [
        "local.get $accesses", "i64.eqz", "if", "  return", "end",
        *A.slot_of_handle("h"),
        *add(L.SLOT_BYTES_READ, "read"),
        *add(L.SLOT_BYTES_WRITTEN, "written"),
        "i32.const 0", "i32.const 0", f"i64.load {A.META} offset={L.HDR_EPOCH}", "local.get $accesses", "i64.add",
        f"i64.store {A.META} offset={L.HDR_EPOCH}",
        "local.get $slot", "i32.const 0", f"i64.load {A.META} offset={L.HDR_EPOCH}",
        f"i64.store {A.META} offset={L.SLOTS + L.SLOT_LAST_EPOCH}",
    ]
    params = [("h", "i64"), ("read", "i64"), ("written", "i64"), ("accesses", "i64")]
    return Func("hoist_flush", params, [], [("slot", "i32")], body, export=HOIST_PREFIX + "flush")


def access_funcs(pools: int, t: TypedWidth, notice: WriteNotice = NO_NOTICE) -> list[Func]:
    """hoist_load_T_pK(addr) / hoist_store_T_pK(addr, v, dirty, at) / hoist_store_T_pK_unmarked(addr, v): the bare
    access at a pool address, per pool.

    A store (but an unmarked one, whose run marks its pages with ``hoist_mark_span``) marks its page(s) in the dirty-page map whose ``SLOT_DIRTY_TABLE`` is ``dirty`` (from
    ``hoist_dirty``; 0, untracked, marks the scratch map) at region offset ``at``, as the ABI's typed
    store does (``access.mark_pages``), then emits the deployment's write notice.
    """
    funcs = []
    for k in range(pools):
        funcs.append(Func(f"hoist_load_{t.name}_p{k}", [("addr", "i32")], [t.value_type], [],
                          ["local.get $addr", f"{t.load} {pool_name(k)}"], export=f"{HOIST_PREFIX}load_{t.name}_p{k}"))
        funcs.append(Func(f"hoist_store_{t.name}_p{k}", [("addr", "i32"), ("v", t.value_type), ("dirty", "i32"),
                                                         ("at", "i32")], [], [],
                          [*if_(["local.get $dirty"], A.mark_pages("dirty", "at", t.width)), *notice.store(k),
                           "local.get $addr", "local.get $v", f"{t.store} {pool_name(k)}"],
                          export=f"{HOIST_PREFIX}store_{t.name}_p{k}"))
        funcs.append(Func(f"hoist_store_{t.name}_p{k}_unmarked", [("addr", "i32"), ("v", t.value_type)], [], [],
                          [*notice.store(k), "local.get $addr", "local.get $v", f"{t.store} {pool_name(k)}"],
                          export=f"{HOIST_PREFIX}store_{t.name}_p{k}_unmarked"))
    return funcs


def mark_span_func() -> Func:
    """hoist_mark_span(dirty, first, last): mark the pages of region offsets ``first`` and ``last`` in the
    dirty-page map ``dirty`` (nothing when 0, untracked): the marks of a run of stores into one block of at
    most a page, whose pages are exactly those of its first and last byte (the stores, then, are
    ``hoist_store_T_pK_unmarked``)."""
    body = if_(["local.get $dirty"], [*A.mark_pages("dirty", "first", 1), *A.mark_pages("dirty", "last", 1)])
    return Func("hoist_mark_span", [("dirty", "i32"), ("first", "i32"), ("last", "i32")], [], [], body,
                export=HOIST_PREFIX + "mark_span")


def slow_funcs(t: TypedWidth) -> list[Func]:
    """hoist_slow_load_T / hoist_slow_store_T: the ABI access itself, as a call the linker keeps out of line.

    The slow path of a hoisted access must stay a call: inlined into the loop,
    its dispatch over every pool and its host calls keep all pool bases live
    and crowd the loop's registers.
    """
    load = Func(f"hoist_slow_load_{t.name}", [("h", "i64"), ("off", "i32")], [t.value_type], [],
                ["local.get $h", "local.get $off", f"call $load_{t.name}"], export=f"{HOIST_PREFIX}slow_load_{t.name}")
    store = Func(f"hoist_slow_store_{t.name}", [("h", "i64"), ("off", "i32"), ("v", t.value_type)], [], [],
                 ["local.get $h", "local.get $off", "local.get $v", f"call $store_{t.name}"],
                 export=f"{HOIST_PREFIX}slow_store_{t.name}")
    return [load, store]


def alloc_stays_func() -> Func:
    """hoist_alloc_stays(region) -> i32: 1 if ``alloc`` on the region cannot enter the host.

    Bump and Slab allocation run in wasm and change only the region's bump
    pointer, slab table and allocation counters, never a slot's state, base,
    capacity or pool; Freelist allocation (and any error) may enter the host,
    which may evict or move regions, so the pass treats it as a slow path.
    """
    body = [
        "local.get $region", "i32.const 0xFFFF", "i32.gt_u", "if", "  i32.const 0", "  return", "end",
        "local.get $region", f"i32.const {L.SLOT_SHIFT}", "i32.shl", "local.set $slot",
        *A.slot_field(L.SLOT_STATE), f"i32.const {L.FLAG_LIVE}", "i32.and", "i32.const 0", "i32.ne",
        *A.slot_field(L.SLOT_ALLOCATOR), f"i32.const {L.ALLOC_BUMP}", "i32.eq",
        *A.slot_field(L.SLOT_ALLOCATOR), f"i32.const {L.ALLOC_SLAB}", "i32.eq",
        "i32.or", "i32.and",
    ]
    return Func("hoist_alloc_stays", [("region", "i32")], ["i32"], [("slot", "i32")], body,
                export=HOIST_PREFIX + "alloc_stays")


def alloc_in_wasm_func() -> Func:
    """hoist_alloc_in_wasm(region, size) -> handle: ``alloc`` for a region ``hoist_alloc_stays`` accepted.

    The ABI's ``alloc`` without its Freelist branch (a host call): inlined into
    a hoisted loop, it adds no call to the loop's hot path.
    """
    body = [
        *alloc_checks(),
        *A.slot_field(L.SLOT_ALLOCATOR), "local.tee $kind", f"i32.const {L.ALLOC_BUMP}", "i32.eq",
        "if", *bump_alloc(), "end",
        "local.get $kind", f"i32.const {L.ALLOC_SLAB}", "i32.eq",
        "if", *slab_alloc(), "end",
        "unreachable",  # hoist_alloc_stays said Bump or Slab, and nothing ran in between
    ]
    locals_ = [("slot", "i32"), ("code", "i32"), ("kind", "i32"), ("offset", "i32"), ("table", "i32"),
               ("count", "i32"), ("index", "i32")]
    return Func("hoist_alloc_in_wasm", [("region", "i32"), ("size", "i32")], ["i64"], locals_, body,
                export=HOIST_PREFIX + "alloc_in_wasm")


def bump_arena() -> Code:
    """i32: 1 if ``$region`` names a live, writable Bump region; sets ``$slot`` (0 for ids above 65535)."""
    return [
        "local.get $region", "i32.const 0xFFFF", "i32.gt_u", "if", "  i32.const 0", "  return", "end",
        "local.get $region", f"i32.const {L.SLOT_SHIFT}", "i32.shl", "local.set $slot",
        *A.slot_field(L.SLOT_STATE), f"i32.const {L.FLAG_LIVE}", "i32.and", "i32.const 0", "i32.ne",
        *A.slot_field(L.SLOT_WRITE_STATE), f"i32.const {L.FLAG_READ_ONLY}", "i32.and", "i32.eqz", "i32.and",
        *A.slot_field(L.SLOT_ALLOCATOR), f"i32.const {L.ALLOC_BUMP}", "i32.eq", "i32.and",
    ]


def bump_field_func(name: str, field: int) -> Func:
    """hoist_bump_used/hoist_bump_end(region) -> i32: a Bump arena's bump pointer or capacity, read once at a
    hoisted loop's entry; 0 for anything else (a Slab, read-only or dead region), so that no allocation
    passes the loop's in-register compare ``size - 1 <u end - used`` and each takes the ABI's path."""
    body = [*bump_arena(), "if (result i32)", *[f"  {line}" for line in A.slot_field(field)], "else", "  i32.const 0", "end"]
    return Func(f"hoist_bump_{name}", [("region", "i32")], ["i32"], [("slot", "i32")], body,
                export=f"{HOIST_PREFIX}bump_{name}")


def handle_high_func() -> Func:
    """hoist_handle_high(region) -> i64: the region id and its generation in a handle's high half (a live
    region; the loop ORs in each allocation's offset)."""
    body = ["local.get $region", f"i32.const {L.SLOT_SHIFT}", "i32.shl", "local.set $slot",
            *make_handle(["i32.const 0"])]
    return Func("hoist_handle_high", [("region", "i32")], ["i64"], [("slot", "i32")], body,
                export=HOIST_PREFIX + "handle_high")


def bump_set_func() -> Func:
    """hoist_bump_set(slot, used): the arena's new bump pointer, stored by every allocation of a hoisted
    loop (one store, no load), so the region's layout is exact at every point, a trap included."""
    body = ["local.get $slot", "local.get $used", f"i32.store {A.META} offset={L.SLOTS + L.SLOT_USED}"]
    return Func("hoist_bump_set", [("slot", "i32"), ("used", "i32")], [], [], body, export=HOIST_PREFIX + "bump_set")


def alloc_flush_func() -> Func:
    """hoist_alloc_flush(slot, allocations, bytes): add a hoisted loop's allocation counts to the region's
    ``SLOT_ALLOCATIONS``/``SLOT_BYTES_ALLOCATED`` where its access counts are flushed (nothing for 0)."""
    def add(field: int, amount: str) -> Code:
        return ["local.get $slot", *A.slot_field(field, "i64.load"), f"local.get ${amount}", "i64.add",
                f"i64.store {A.META} offset={L.SLOTS + field}"]

    body = ["local.get $allocations", "i64.eqz", "if", "  return", "end",
            *add(L.SLOT_ALLOCATIONS, "allocations"), *add(L.SLOT_BYTES_ALLOCATED, "bytes")]
    return Func("hoist_alloc_flush", [("slot", "i32"), ("allocations", "i64"), ("bytes", "i64")], [], [], body,
                export=HOIST_PREFIX + "alloc_flush")


def slow_alloc_func() -> Func:
    return Func("hoist_slow_alloc", [("region", "i32"), ("size", "i32")], ["i64"], [],
                ["local.get $region", "local.get $size", "call $alloc"], export=HOIST_PREFIX + "slow_alloc")


#: Helpers the linker keeps out of line (everything but the bare accesses): cold code stays out of loops.
OUT_OF_LINE = ("base", "pool", "dirty", "limit_load", "limit_store", "flush", "slow_alloc", "alloc_flush",
               "bump_used", "bump_end", "handle_high",
               *(f"slow_{d}_{t.name}" for t in TYPED_ACCESS for d in ("load", "store")))


def hoist_funcs(pools: int, notice: WriteNotice = NO_NOTICE) -> list[Func]:
    """Every helper the hoisting pass may call, for a runtime with ``pools`` pools and that write notice."""
    funcs = [base_func(), pool_func(), dirty_func(), limit_func(LOAD_STATE, "load"),
             limit_func(STORE_STATE, "store", STORE_IGNORED), flush_func(),
             alloc_stays_func(), alloc_in_wasm_func(), slow_alloc_func(), bump_field_func("used", L.SLOT_USED),
             bump_field_func("end", L.SLOT_CAPACITY), handle_high_func(), bump_set_func(), alloc_flush_func(),
             mark_span_func()]
    for t in TYPED_ACCESS:
        funcs += access_funcs(pools, t, notice) + slow_funcs(t)
    return funcs
