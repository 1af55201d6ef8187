"""Emitters for the per-access path: handle validation, bounds, residency, metrics.

Every raw-ABI function is built from these. The fast path (live, matching
generation, resident) is inlined; anything else calls ``$check_handle`` and
``$ensure_resident``, which may enter the host once to fault a Cold region in.
The order of checks is the model's: region, generation, bounds, residency.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.errors import AllocationFailed, OutOfBounds, ReadOnly
from . import layout as L
from .wat import Code, Func, if_

META = "$meta"

# Locals every function that resolves a handle declares.
RESOLVE_LOCALS = [("slot", "i32"), ("slow", "i32"), ("code", "i32"), ("addr", "i32")]

OnError = Callable[[], Code]
"""Code run with the error code in ``$code``; it must not fall through."""


def slot_field(field_offset: int, load: str = "i32.load") -> Code:
    """Load a field of the slot whose address is in ``$slot``."""
    return ["local.get $slot", f"{load} {META} offset={L.SLOTS + field_offset}"]


def slot_of_handle(handle: str) -> Code:
    """``$slot`` = byte index of the handle's region slot (region id * slot size)."""
    return [
        f"local.get ${handle}",
        "i64.const 48",
        "i64.shr_u",
        "i32.wrap_i64",
        f"i32.const {L.SLOT_SHIFT}",
        "i32.shl",
        "local.set $slot",
    ]


def generation_of(handle: str) -> Code:
    return [f"local.get ${handle}", "i64.const 32", "i64.shr_u", "i32.wrap_i64", f"i32.const {L.GEN_MASK}", "i32.and"]


def offset_of_i64(handle: str) -> Code:
    """The handle's offset as an i64 (a zero extension: one register move on x86-64, where masking
    with 0xFFFFFFFF costs a constant load)."""
    return [f"local.get ${handle}", "i32.wrap_i64", "i64.extend_i32_u"]


def fail_with(code: int, on_error: OnError) -> Code:
    return [f"i32.const {code}", "local.set $code", *on_error()]


def validate_handle(handle: str, extra: Code, on_error: OnError, state_field: int = L.SLOT_STATE) -> Code:
    """Region and generation, then bounds of ``offset + extra`` (an i64 expression).

    Leaves ``$slow`` = 1 when the region may need faulting in (checked by
    ``ensure_resident``). Never enters the host. Stores pass
    ``state_field=SLOT_WRITE_STATE``: a read-only or dirty-tracked region then
    also takes the slow branch, where ``write_barrier`` handles it.
    """
    return [
        *slot_of_handle(handle),
        *slot_field(state_field),
        *generation_of(handle),
        f"i32.const {L.FLAG_LIVE | L.FLAG_RESIDENT}",
        "i32.or",
        "i32.ne",
        "local.tee $slow",
        *if_([], [f"local.get ${handle}", "call $check_handle", "local.tee $code", *if_([], on_error())]),
        *offset_of_i64(handle),
        *extra,
        *slot_field(L.SLOT_CAPACITY, "i64.load32_u"),
        "i64.gt_u",
        *if_([], fail_with(OutOfBounds.code, on_error)),
    ]


def fast_keyed_fits(handle: str, extra: Code, miss: str, pool: int = 0) -> Code:
    """``br_if miss`` unless the handle passes the fast key for ``pool`` of the slot in ``$slot`` and
    ``[offset, offset + extra)`` fits the region: one compare (:func:`keyed_fits_compare`)."""
    return [*keyed_fits_compare(handle, extra, "i64.gt_u", pool), f"br_if {miss}"]


def keyed_fits_compare(handle: str, extra: Code, compare: str, pool: int = 0) -> Code:
    """``compare`` (``i64.le_u``: passes, ``i64.gt_u``: misses) of ``(h ^ key[pool]) + extra`` with the capacity
    of the region in ``$slot``: region, generation, liveness, residency, pool and bounds at once (why it is
    exact: :mod:`tvm_wasm.runtime.layout`, the fast keys). ``extra`` adds ``off`` (zero-extended) and the width."""
    return [
        f"local.get ${handle}",
        "local.get $slot",
        f"i64.load {META} offset={L.SLOTS + L.fast_key_field(pool)}",
        "i64.xor",
        *extra,
        *slot_field(L.SLOT_CAPACITY, "i64.load32_u"),
        compare,
    ]


def ensure_resident(handle: str, on_error: OnError) -> Code:
    """Fault the region in if the fast check failed (may enter the host once)."""
    return if_(["local.get $slow"], fault_in(handle, on_error))


def fault_in(handle: str, on_error: OnError) -> Code:
    return [
        f"local.get ${handle}",
        "i64.const 48",
        "i64.shr_u",
        "i32.wrap_i64",
        "call $ensure_resident",
        "local.tee $code",
        *if_([], on_error()),
    ]


def write_barrier(offset: Code, length: Code, on_error: OnError) -> Code:
    """On the slow branch of a store: refuse a read-only region (code 8), mark tracked pages dirty.

    ``offset``/``length`` are i32 expressions of the region bytes about to change
    (bounds already checked). Untagged stores never get here (``$slow`` is 0).
    """
    return if_(["local.get $slow"], barrier(offset, length, on_error))


def barrier(offset: Code, length: Code, on_error: OnError) -> Code:
    return ["local.get $slot", *offset, *length, "call $write_barrier", "local.tee $code", *if_([], on_error())]


def write_barrier_func() -> Func:
    """write_barrier(slot, off, len) -> code: 8 if read-only; else marks the pages of ``[off, off + len)``
    in the region's dirty-page map (one ``memory.fill``) when it is tracked, and answers 0."""
    def page(at: Code) -> Code:
        return [*at, f"i32.const {L.DIRTY_PAGE_SHIFT}", "i32.shr_u"]

    first = page(["local.get $off"])
    last = page(["local.get $off", "local.get $len", "i32.add", "i32.const 1", "i32.sub"])
    body = [
        *slot_field(L.SLOT_WRITE_STATE),
        "local.tee $state",
        f"i32.const {L.FLAG_READ_ONLY}",
        "i32.and",
        *if_([], [f"i32.const {ReadOnly.code}", "return"]),
        "local.get $state",
        f"i32.const {L.FLAG_TRACK_DIRTY}",
        "i32.and",
        "i32.eqz",
        "local.get $len",
        "i32.eqz",
        "i32.or",
        *if_([], ["i32.const 0", "return"]),
        *slot_field(L.SLOT_DIRTY_TABLE), f"i32.const {L.DIRTY_SCRATCH}", "i32.add", *first, "i32.add",
        "i32.const 1",
        *last, *first, "i32.sub", "i32.const 1", "i32.add",
        f"memory.fill {META}",
        "i32.const 0",
    ]
    params = [("slot", "i32"), ("off", "i32"), ("len", "i32")]
    return Func("write_barrier", params, ["i32"], [("state", "i32")], body)


def region_address(handle: str, extra: Code) -> Code:
    """``$addr`` = pool address of ``offset + extra`` (an i32 expression); bounds already checked."""
    return [*slot_field(L.SLOT_BASE), f"local.get ${handle}", "i32.wrap_i64", *extra, "i32.add", "i32.add", "local.set $addr"]


def resolve(handle: str, extra_i64: Code, extra_i32: Code, on_error: OnError) -> Code:
    """Full validation of ``[offset, offset + extra)`` and ``$addr`` of the handle's offset + rel."""
    return [
        *validate_handle(handle, extra_i64, on_error),
        *ensure_resident(handle, on_error),
        *region_address(handle, extra_i32),
    ]


def validate_store(handle: str, extra: Code, on_error: OnError, ignored: int = 0) -> Code:
    """``validate_handle`` against ``SLOT_WRITE_STATE`` with the flags in ``ignored`` set on both sides
    of the compare (one ``i32.or``): a region that differs from the fast case only by them passes."""
    loaded = [*slot_field(L.SLOT_WRITE_STATE), *([f"i32.const {ignored}", "i32.or"] if ignored else [])]
    return [
        *slot_of_handle(handle),
        *loaded,
        *generation_of(handle),
        f"i32.const {L.FLAG_LIVE | L.FLAG_RESIDENT | ignored}",
        "i32.or",
        "i32.ne",
        "local.tee $slow",
        *if_([], [f"local.get ${handle}", "call $check_handle", "local.tee $code", *if_([], on_error())]),
        *offset_of_i64(handle),
        *extra,
        *slot_field(L.SLOT_CAPACITY, "i64.load32_u"),
        "i64.gt_u",
        *if_([], fail_with(OutOfBounds.code, on_error)),
    ]


def mark_pages(table: str, offset: str, width: int) -> Code:
    """Mark the page(s) of a ``width``-byte store at the region offset in local ``offset`` in the dirty-page
    map whose ``SLOT_DIRTY_TABLE`` is in local ``table``: one ``i32.store8`` each, no branch (an untracked
    region's field is 0, so its marks land in the scratch map). Width <= 8 < a page, so the first and the
    last page are all. Used by the typed stores and the linker's hoisted stores alike."""
    def mark(at: Code) -> Code:
        return [f"local.get ${table}", *at, f"i32.const {L.DIRTY_PAGE_SHIFT}", "i32.shr_u", "i32.add", "i32.const 1",
                f"i32.store8 {META} offset={L.DIRTY_SCRATCH}"]

    code = mark([f"local.get ${offset}"])
    if width > 1:
        code += mark([f"local.get ${offset}", f"i32.const {width - 1}", "i32.add"])
    return code


def resolve_store(handle: str, extra_i64: Code, extra_i32: Code, length_i32: Code, on_error: OnError,
                  width: int | None = None) -> Code:
    """``resolve`` for a store of ``length_i32`` bytes at the handle's offset + ``extra_i32``: the same
    checks against ``SLOT_WRITE_STATE``, then ``write_barrier`` on the slow branch.

    A typed store (``width`` bytes) ignores ``FLAG_TRACK_DIRTY`` in the compare and marks its pages
    unconditionally (``mark_pages``): a tracked region's typed stores run the same code as an untracked
    one's, which is what keeps tracking cheap. Bulk stores (``width`` None) take the slow branch of a
    tracked region, where ``write_barrier`` marks their whole range.
    """
    offset = [f"local.get ${handle}", "i32.wrap_i64", *extra_i32, "i32.add"]
    checks = [
        *validate_store(handle, extra_i64, on_error, 0 if width is None else L.FLAG_TRACK_DIRTY),
        # one branch on the fast path, as for a load: fault in, then the barrier
        *if_(["local.get $slow"], [*fault_in(handle, on_error), *barrier(offset, length_i32, on_error)]),
    ]
    if width is None:
        return [*checks, *region_address(handle, extra_i32)]
    # the map's field in $code (free on the success path), the store's region offset in $addr
    marks = [*slot_field(L.SLOT_DIRTY_TABLE), "local.set $code", *offset, "local.set $addr",
             *mark_pages("code", "addr", width)]
    return [*checks, *marks, *slot_field(L.SLOT_BASE), "local.get $addr", "i32.add", "local.set $addr"]


def count(field_offset: int, amount: Code, stamp: bool = True) -> Code:
    """Add the i64 ``amount`` to a u64 counter of the slot in ``$slot``.

    Counting bytes read or written is what every data access does once it
    succeeded, so it also stamps the access clock (see ``stamp_epoch``), unless
    ``stamp`` is False (the caller ticks the clock itself: ``stamp_clock``).
    """
    code = [
        "local.get $slot",
        *slot_field(field_offset, "i64.load"),
        *amount,
        "i64.add",
        f"i64.store {META} offset={L.SLOTS + field_offset}",
    ]
    if stamp and field_offset in (L.SLOT_BYTES_READ, L.SLOT_BYTES_WRITTEN):
        code += stamp_epoch()
    return code


def stamp_clock(clock: str) -> Code:
    """The access clock is now the i64 local ``clock`` (one more than it was): ``HDR_EPOCH`` and the stamp of
    the slot in ``$slot`` (``stamp_epoch`` with the clock already in a local: no load)."""
    return [
        "i32.const 0", f"local.get ${clock}", f"i64.store {META} offset={L.HDR_EPOCH}",
        "local.get $slot", f"local.get ${clock}", f"i64.store {META} offset={L.SLOTS + L.SLOT_LAST_EPOCH}",
    ]


def stamp_epoch() -> Code:
    """Advance the shared access clock and record it in the slot, so the host's LRU sees data-plane use."""
    return [
        "i32.const 0",
        "i32.const 0",
        f"i64.load {META} offset={L.HDR_EPOCH}",
        "i64.const 1",
        "i64.add",
        f"i64.store {META} offset={L.HDR_EPOCH}",
        "local.get $slot",
        "i32.const 0",
        f"i64.load {META} offset={L.HDR_EPOCH}",
        f"i64.store {META} offset={L.SLOTS + L.SLOT_LAST_EPOCH}",
    ]


def pool_index() -> Code:
    return slot_field(L.SLOT_POOL)


def check_handle_func() -> Func:
    """Slow-path classification: 1 region not found, 2 stale, 0 live with this generation."""
    body = [
        *slot_of_handle("h"),
        *slot_field(L.SLOT_STATE),
        "local.set $state",
        *if_(
            ["local.get $state", f"i32.const {L.FLAG_LIVE}", "i32.and", "i32.eqz"],
            [
                "i32.const 2",
                "i32.const 1",
                "local.get $state",
                f"i32.const {L.FLAG_TOMBSTONE}",
                "i32.and",
                "select",
                "return",
            ],
        ),
        "local.get $state",
        f"i32.const {L.GEN_MASK}",
        "i32.and",
        *generation_of("h"),
        "i32.ne",
        "i32.const 1",
        "i32.shl",  # 2 when stale, 0 otherwise
    ]
    return Func("check_handle", [("h", "i64")], ["i32"], [("slot", "i32"), ("state", "i32")], body)


def ensure_resident_func() -> Func:
    """0 if the region is (now) resident; 4 in strict mode; else whatever the host's fault returns."""
    body = [
        "local.get $id",
        f"i32.const {L.SLOT_SHIFT}",
        "i32.shl",
        f"i32.load {META} offset={L.SLOTS + L.SLOT_STATE}",
        f"i32.const {L.FLAG_RESIDENT}",
        "i32.and",
        *if_([], ["i32.const 0", "return"]),
        "i32.const 0",
        f"i32.load {META} offset={L.HDR_STRICT}",
        *if_([], ["i32.const 4", "return"]),
        "local.get $id",
        "call $host_fault",
    ]
    return Func("ensure_resident", [("id", "i32")], ["i32"], [], body)


def region_id_of(handle: str) -> Code:
    return [f"local.get ${handle}", "i64.const 48", "i64.shr_u", "i32.wrap_i64"]


def both_resident(
    first: tuple[Code, str, str], second: tuple[Code, str, str], on_error: OnError
) -> Code:
    """Fault two regions in, each given as (region id code, slow flag local, slot local).

    A budget too small to hold both at once shows as code 5 rather than a loop.
    """
    not_resident = [f"i32.load {META} offset={L.SLOTS + L.SLOT_STATE}", f"i32.const {L.FLAG_RESIDENT}", "i32.and", "i32.eqz"]

    def fault_in(region_id: Code, slow: str) -> Code:
        return if_([f"local.get {slow}"], [*region_id, "call $ensure_resident", "local.tee $code", *if_([], on_error())])

    return [
        *fault_in(first[0], first[1]),
        *fault_in(second[0], second[1]),
        *if_(
            [f"local.get {first[2]}", *not_resident, f"local.get {second[2]}", *not_resident, "i32.or"],
            fail_with(AllocationFailed.code, on_error),
        ),
    ]
