"""Runtime helpers for loops that keep the access clock in a local (``tvm_wasm.linker.clocked``).

A typed load ticks the access clock: it loads ``HDR_EPOCH``, adds one, stores
it back and stamps its region's slot with it. In a loop whose only calls are
typed loads nothing else can move the clock, so the linker keeps a copy of it
in a local: read once before the loop (:func:`clock_func`), one more per fast
load, written through to ``HDR_EPOCH`` and the stamp with no load
(:func:`hit_func`). A load that leaves the fast paths calls the typed load's
cold twin, which ticks the clock in memory itself (a fault-in may tick it
more than once), and the copy is read again after it. ``HDR_EPOCH`` is exact
after every instruction, so a trap anywhere leaves the clock, the stamps and
the counters exactly as the unlinked module would.

The fast paths are the typed load's own (``core_module.typed_load``): a fast
key per pool (:func:`key_func`), one bounds compare (:func:`fits_func`), then
the hit. The helpers are exported under ``HOIST_PREFIX`` like the hoisting
pass's, so the linker finds them in the merged module and removes the exports.
"""

from __future__ import annotations

from ..abi.table import TYPED_ACCESS, TypedWidth
from . import access as A
from . import layout as L
from .conventions import pool_name
from .core_module import width_i64
from .hoisted import HOIST_PREFIX
from .wat import Code, Func

CLOCK = "clocked_clock"


def key_name(pool: int) -> str:
    return f"clocked_key_p{pool}"


def fits_name(t: TypedWidth) -> str:
    return f"clocked_fits_{t.name}"


def hit_name(t: TypedWidth, pool: int) -> str:
    return f"clocked_hit_{t.name}_p{pool}"


def _helper(name: str, params: list[tuple[str, str]], results: list[str], locals_: list[tuple[str, str]],
            body: Code) -> Func:
    return Func(name, params, results, locals_, body, export=HOIST_PREFIX + name)


def clock_func() -> Func:
    """clocked_clock() -> i64: the access clock (``HDR_EPOCH``)."""
    return _helper(CLOCK, [], ["i64"], [], ["i32.const 0", f"i64.load {A.META} offset={L.HDR_EPOCH}"])


def key_func(pool: int) -> Func:
    """clocked_key_pK(h) -> i32: 1 when the handle's upper half is its slot's fast key for pool K (live,
    resident, this generation, in that pool)."""
    body = [*A.slot_of_handle("h"), *A.key_compare("h", "i32.eq", pool)]
    return _helper(key_name(pool), [("h", "i64")], ["i32"], [("slot", "i32")], body)


def fits_func(t: TypedWidth) -> Func:
    """clocked_fits_T(h, off) -> i32: 1 when the ``width`` bytes at the handle's offset + ``off`` fit the capacity."""
    body = [*A.slot_of_handle("h"), *A.fits_compare("h", width_i64(t), "i64.le_u")]
    return _helper(fits_name(t), [("h", "i64"), ("off", "i32")], ["i32"], [("slot", "i32")], body)


def hit_func(t: TypedWidth, pool: int) -> Func:
    """clocked_hit_T_pK(h, off, clock) -> T: a load that passed :func:`key_func` for pool K and :func:`fits_func`:
    count its bytes, the clock is now ``clock`` (written through, stamped), load from pool K."""
    body = [
        *A.slot_of_handle("h"),
        *A.count(L.SLOT_BYTES_READ, [f"i64.const {t.width}"], stamp=False),
        *A.stamp_clock("clock"),
        *A.region_address("h", ["local.get $off"]),
        "local.get $addr",
        f"{t.load} {pool_name(pool)}",
    ]
    params = [("h", "i64"), ("off", "i32"), ("clock", "i64")]
    return _helper(hit_name(t, pool), params, [t.value_type], A.RESOLVE_LOCALS, body)


def clocked_funcs(pools: int) -> list[Func]:
    """Every helper the clock pass may call, for a runtime with ``pools`` pools."""
    keyed = range(min(pools, L.FAST_KEY_POOLS))
    funcs = [clock_func(), *(key_func(k) for k in keyed)]
    for t in TYPED_ACCESS:
        funcs += [fits_func(t), *(hit_func(t, k) for k in keyed)]
    return funcs
