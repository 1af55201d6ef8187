"""The ``guest`` variant: the kernel spliced into the self-contained guest module (``tvm_wasm.guest``).

The kernel follows the same plan as ``tvm-bulk`` (streamed buffers in 16 KiB
chunks, random-access buffers read whole once per repetition, rare buffers
per access, arenas in 16 KiB TLABs written back), but it calls the ABI
inside its own module (``call $read``: a direct call, no instance boundary),
and there is no host: regions are created through the module's own control
plane (``create_region_with``), and the data plane never leaves wasm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..core.handle import Handle
from ..core.types import RegionKind
from ..host import native
from ..runtime.wat import Module
from .ir import Kernel
from .lower_wat import PAGE, BulkLowering
from .results import Row
from .wasmtime_runner import Engines, Prepared, _set_global, arena_caps, arena_reps

if TYPE_CHECKING:
    from .matrix import Config

GUEST_POOLS = 4


class GuestLowering(BulkLowering):
    """``tvm-bulk``'s plan, calling the module's own ABI functions by name."""

    variant = "guest"

    def need(self, name: str, params: list[str], results: list[str]) -> str:
        return f"${name}"

    def header(self) -> None:  # the module defines the default memory ``$g``; only globals here
        self.handle_globals()
        self.tlab_globals()

    def user_wat(self) -> str:
        """The kernel as module fields to splice in (no ``(module`` wrapper)."""
        text = self.render()
        lines = text.splitlines()
        assert lines[0] == "(module" and lines[-1] == ")"
        return "\n".join(lines[1:-1])


def _guest(kernel_fields: str, guest_pages: int) -> object:
    try:
        from ..guest import build_module
        from ..guest.instance import GuestInstance
    except ImportError:
        from .matrix import Unavailable

        raise Unavailable("the self-contained guest module (tvm_wasm.guest) is not in this build") from None
    module = build_module(pools=GUEST_POOLS, user_wat=kernel_fields, guest_pages=guest_pages)
    return module, GuestInstance


def prepare_guest(kernel: Kernel, engines: Engines, arena_limit: int, pad: int = 0) -> Prepared:
    max_reps = arena_reps(kernel, arena_limit)
    caps = arena_caps(kernel, max_reps)
    lowering = GuestLowering(kernel, caps, pad=pad)
    module, guest_instance = _guest(lowering.user_wat(), lowering.end // PAGE)
    gi = guest_instance(module, engine=engines.default)  # type: ignore[operator]
    store, instance = gi.store, gi.instance
    region_ids: dict[str, list[int]] = {}

    def base_handle(rid: int) -> int:
        return Handle(rid, gi.region_info(rid).generation, 0).to_i64()

    def place(buf_name: str, ids: list[int]) -> None:
        buf = kernel.buffer(buf_name)
        if buf.segments == 1:
            _set_global(instance, store, f"h_{buf.name}", base_handle(ids[0]), "i64")
        else:
            table = np.array([base_handle(r) for r in ids], dtype=np.int64)
            at = lowering.table_at[buf.name]
            native.memory_view(gi.guest_memory, store)[at : at + 8 * len(ids)] = table.view(np.uint8)
        if buf.access == "arena":
            _set_global(instance, store, f"r_{buf.name}", ids[0])

    for buf in kernel.buffers:
        capacity = caps[buf.name] if buf.access == "arena" else buf.size // buf.segments
        kind = RegionKind.OBJECT_ARENA if buf.access == "arena" else RegionKind.BLOB_ARENA
        ids = [gi.create_region(kind, capacity) for _ in range(buf.segments)]
        region_ids[buf.name] = ids
        if buf.data is not None:
            data = np.frombuffer(buf.data, dtype=np.uint8)
            seg = buf.size // buf.segments
            for k, rid in enumerate(ids):
                gi.view(rid)[:seg] = data[k * seg : (k + 1) * seg]
        place(buf.name, ids)
    run = instance.exports(store)["run"]

    def reset() -> None:
        """Arenas start empty for every call: the module has no bump reset, so destroy and recreate."""
        for arena in kernel.arenas:
            gi.destroy_region(region_ids[arena.name][0])
            region_ids[arena.name] = [gi.create_region(RegionKind.OBJECT_ARENA, caps[arena.name])]
            place(arena.name, region_ids[arena.name])
            for g in ("tl", "tle", "tlf"):
                _set_global(instance, store, f"{g}_{arena.name}", 0)

    notes = ["self-contained module (4 pools, no host), bulk plan with in-module ABI calls"]
    return Prepared(lambda reps: run(store, reps), reset if kernel.arenas else None, max_reps, notes,  # type: ignore[operator]
                    keep=[gi, module])


def guest_beyond_4gib(addrs: np.ndarray, values: np.ndarray, expected: int, cfg: Config, engines: Engines) -> Row:
    """Three 2 GiB regions in the module's pools; one ``read_gather`` per region, then a local sum."""
    from .special import PAGE as P
    from .special import REGION_4G, WS_4G, measure_4g

    row = Row("guest", "beyond_4gib", WS_4G, "wasmtime", cfg.seed)
    n = len(addrs)
    list_pages = 1 + (n * 8) // P
    table_at = list_pages * P
    idx_at = table_at + P
    idx_pages = 1 + (n * 4) // P
    dst_at = idx_at + idx_pages * P
    guest_pages = dst_at // P + 1 + (n * 8) // P
    region_of = (addrs >> np.uint64(31)).astype(np.int64)
    offset_of = (addrs & np.uint64(REGION_4G - 1)).astype(np.int64)
    groups = [np.flatnonzero(region_of == k) for k in range(WS_4G // REGION_4G)]
    inner: list[str] = []
    at = 0
    for k, g in enumerate(groups):
        inner += [f"i32.const {table_at + 8 * k}", "i64.load", f"i32.const {idx_at + 4 * at}", f"i32.const {len(g)}",
                  "i32.const 8", f"i32.const {dst_at + 8 * at}", "call $read_gather", "if", "unreachable", "end"]
        at += len(g)
    inner += ["i32.const 0", "local.set $i", "loop $sum", "  local.get $i", "  i32.const 3", "  i32.shl",
              f"  i64.load offset={dst_at}", "  local.get $total", "  i64.add", "  local.set $total",
              "  local.get $i", "  i32.const 1", "  i32.add", "  local.tee $i", f"  i32.const {n}", "  i32.lt_u",
              "  br_if $sum", "end"]
    from .special import _reps_func

    m = Module()
    m.add(_reps_func(inner, []))
    fields = "\n".join(m.render().splitlines()[1:-1])
    try:
        module, guest_instance = _guest(fields, guest_pages)
        gi = guest_instance(module, engine=engines.default)  # type: ignore[operator]
        ids = [gi.create_region(RegionKind.BLOB_ARENA, REGION_4G) for _ in groups]
        pools = sorted({gi.region_info(r).pool for r in ids})
        for k, rid in enumerate(ids):
            mine = region_of == k
            gi.view(rid).view(np.uint64)[offset_of[mine] // 8] = values[mine]
        gview = native.memory_view(gi.guest_memory, gi.store)
        handles = np.array([Handle(r, gi.region_info(r).generation, 0).to_i64() for r in ids], dtype=np.int64)
        gview[table_at : table_at + 8 * len(ids)] = handles.view(np.uint8)
        order = np.concatenate(groups)
        gview[idx_at : idx_at + 4 * n] = offset_of[order].astype(np.uint32).view(np.uint8)
    except Exception as exc:  # noqa: BLE001
        from .matrix import Unavailable

        if isinstance(exc, Unavailable):
            row.status, row.notes = exc.status, [str(exc)]
        else:
            row.status, row.notes = "failed", [f"could not prepare: {type(exc).__name__}: {exc}"]
        return row
    run = gi.instance.exports(gi.store)["run"]
    measure_4g(row, lambda reps: run(gi.store, reps), expected, cfg)  # type: ignore[operator]
    row.notes.append(f"self-contained module: 3 regions of 2 GiB in pools {pools}; one read_gather per region, "
                     "local sum")
    return row
