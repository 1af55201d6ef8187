"""Per-pool typed accessors: the full handle check, but no dispatch on the pool.

A memory index is an immediate, so the generic ``load_u32(h, off)`` picks
the pool's arm at run time (a ``br_table``). A caller that knows where its
region lives (``region_pool(id)``) can call ``load_u32_p{k}(h, off)``
instead: same region, generation and bounds checks, then the load on pool
``k`` directly. A handle whose region lives in another pool traps with code
9, like any access the runtime cannot serve.
"""

from __future__ import annotations

from collections.abc import Callable

from ..runtime import access as A
from ..runtime import layout as L
from ..runtime.core_module import TYPED, TypedAccess, bad_pool, pool_name, trap_on_error
from ..runtime.wat import Code, Func, if_
from .touched import TOUCHED_PAGES


def width_check(t: TypedAccess) -> Code:
    return ["local.get $off", "i64.extend_i32_u", "i64.add", f"i64.const {t.width}", "i64.add"]


def in_pool(k: int, on_error: Callable[[], Code]) -> Code:
    """Trap (code 9) unless the resolved region lives in pool ``k``."""
    return if_([*A.pool_index(), f"i32.const {k}", "i32.ne"], [*bad_pool(), *on_error()])


def load_in_pool(k: int, t: TypedAccess) -> Func:
    name = f"load_{t.name}_p{k}"
    on_error = trap_on_error(name, t.width)
    body = [
        *A.resolve("h", width_check(t), ["local.get $off"], on_error),
        *in_pool(k, on_error),
        *A.count(L.SLOT_BYTES_READ, [f"i64.const {t.width}"]),
        "local.get $addr",
        f"{t.load} {pool_name(k)}",
    ]
    return Func(name, [("h", "i64"), ("off", "i32")], [t.value_type], A.RESOLVE_LOCALS, body, export=name)


def store_in_pool(k: int, t: TypedAccess) -> Func:
    name = f"store_{t.name}_p{k}"
    on_error = trap_on_error(name, t.width)
    body = [
        *A.resolve_store("h", width_check(t), ["local.get $off"], [f"i32.const {t.width}"], on_error, t.width),
        *in_pool(k, on_error),
        *A.count(L.SLOT_BYTES_WRITTEN, [f"i64.const {t.width}"]),
        *TOUCHED_PAGES.store(k),
        "local.get $addr",
        "local.get $v",
        f"{t.store} {pool_name(k)}",
    ]
    params = [("h", "i64"), ("off", "i32"), ("v", t.value_type)]
    return Func(name, params, [], A.RESOLVE_LOCALS, body, export=name)


def specialised_funcs(pools: int) -> list[Func]:
    """``load_{type}_p{k}`` and ``store_{type}_p{k}`` for every typed access and pool."""
    return [f for k in range(pools) for t in TYPED for f in (load_in_pool(k, t), store_in_pool(k, t))]
