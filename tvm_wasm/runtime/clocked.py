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

The fast paths are the typed load's own (``core_module.typed_load``): per
pool, one compare of the handle with the slot's fast key and capacity
(:func:`fast_func`), then the hit. The helpers are exported under ``HOIST_PREFIX`` like the hoisting
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


def fast_name(t: TypedWidth, pool: int) -> str:
    return f"clocked_fast_{t.name}_p{pool}"


def hit_name(t: TypedWidth, pool: int) -> str:
    return f"clocked_hit_{t.name}_p{pool}"


def _helper(name: str, params: list[tuple[str, str]], results: list[str], locals_: list[tuple[str, str]],
            body: Code) -> Func:
    return Func(name, params, results, locals_, body, export=HOIST_PREFIX + name)


def clock_func() -> Func:
    """clocked_clock() -> i64: the access clock (``HDR_EPOCH``)."""
    return _helper(CLOCK, [], ["i64"], [], ["i32.const 0", f"i64.load {A.META} offset={L.HDR_EPOCH}"])


def fast_func(t: TypedWidth, pool: int) -> Func:
    """clocked_fast_T_pK(h, off) -> i32: 1 when the access passes the fast key of pool K and fits the region
    (live, resident, this generation, in that pool, ``width`` bytes at offset + ``off`` within the capacity)."""
    body = [*A.slot_of_handle("h"), *A.keyed_fits_compare("h", width_i64(t), "i64.le_u", pool)]
    return _helper(fast_name(t, pool), [("h", "i64"), ("off", "i32")], ["i32"], [("slot", "i32")], body)


def hit_func(t: TypedWidth, pool: int) -> Func:
    """clocked_hit_T_pK(h, off, clock) -> T: a load that passed :func:`fast_func` for pool K:
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
    funcs = [clock_func()]
    for t in TYPED_ACCESS:
        funcs += [*(fast_func(t, k) for k in keyed), *(hit_func(t, k) for k in keyed)]
    return funcs
