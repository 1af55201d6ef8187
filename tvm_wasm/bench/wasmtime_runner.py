"""Running lowered kernels in-process on wasmtime, one memory model per variant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import wasmtime

from ..core.handle import Handle
from ..core.types import RegionKind
from ..host import native
from ..host.tvm_host import TvmHost, default_engine
from .ir import Kernel
from .lower_wat import (
    TLAB,
    BulkLowering,
    HandleLowering,
    LinearLowering,
    MMLowering,
    TvmLowering,
    pages_for,
)
from .timing import Sampler

MASK64 = (1 << 64) - 1


class WrongAnswer(AssertionError):
    """A kernel's answer differs from the reference: the run fails."""


@dataclass
class Prepared:
    """A kernel ready to time: ``call(reps)`` runs it, ``before()`` resets arenas."""

    call: Callable[[int], object]
    before: Callable[[], None] | None
    max_reps: int
    notes: list[str] = field(default_factory=list)
    keep: list[object] = field(default_factory=list)  # stores, hosts: alive while timing


@dataclass
class Engines:
    """One engine per configuration, shared by every row (modules compile once per engine)."""

    default: wasmtime.Engine = field(default_factory=wasmtime.Engine)
    checked: wasmtime.Engine = field(default_factory=lambda: checked_engine())
    tvm: wasmtime.Engine = field(default_factory=default_engine)


def checked_engine() -> wasmtime.Engine:
    """Explicit bounds checks on every access: no reservation, no guard pages."""
    config = wasmtime.Config()
    config.memory_reservation = 0
    config.memory_guard_size = 0
    return wasmtime.Engine(config)


def arena_reps(kernel: Kernel, arena_limit: int) -> int:
    """How many repetitions one call may run before its arenas (reset between calls) are full."""
    per_rep = sum(a.size for a in kernel.arenas)
    return max(1, arena_limit // per_rep) if per_rep else 1 << 30


def arena_caps(kernel: Kernel, max_reps: int) -> dict[str, int]:
    return {a.name: a.size * max_reps + 2 * TLAB for a in kernel.arenas}


def _set_global(instance: wasmtime.Instance, store: wasmtime.Store, name: str, value: int, ty: str = "i32") -> None:
    g = instance.exports(store)[name]
    assert isinstance(g, wasmtime.Global)
    g.set_value(store, wasmtime.Val.i64(value) if ty == "i64" else wasmtime.Val.i32(value))


def _signed64(value: int) -> int:
    value &= MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def prepare_linear(variant: str, kernel: Kernel, engines: Engines, arena_limit: int, pad: int = 0) -> Prepared:
    max_reps = arena_reps(kernel, arena_limit)
    caps = arena_caps(kernel, max_reps)
    lowering = LinearLowering(kernel, caps, memory64=variant == "m64", pad=pad)
    engine = engines.checked if variant == "m32-checked" else engines.default
    store = wasmtime.Store(engine)
    module = wasmtime.Module(engine, lowering.render())
    instance = wasmtime.Instance(store, module, [])
    memory = instance.exports(store)["memory"]
    assert isinstance(memory, wasmtime.Memory)
    view = native.memory_view(memory, store)
    for buf in kernel.buffers:
        if buf.data is not None:
            base = lowering.bases[buf.name]
            view[base : base + buf.size] = np.frombuffer(buf.data, dtype=np.uint8)
    run = instance.exports(store)["run"]

    def reset() -> None:
        for arena in kernel.arenas:
            _set_global(instance, store, f"bump_{arena.name}", 0)

    return Prepared(lambda reps: run(store, reps), reset if kernel.arenas else None, max_reps,  # type: ignore[operator]
                    keep=[store, instance])


def prepare_tvm(variant: str, kernel: Kernel, engines: Engines, arena_limit: int, pad: int = 0) -> Prepared:
    """tvm, tvm-bulk, tvm-mm: regions on a fresh TvmHost (shared engine), data written through Python."""
    max_reps = arena_reps(kernel, arena_limit)
    caps = arena_caps(kernel, max_reps)
    host = TvmHost(engine=engines.tvm)
    mm = variant == "tvm-mm"
    region_ids: dict[str, list[int]] = {}
    region_pages: dict[str, int] = {}
    for buf in kernel.buffers:
        capacity = caps[buf.name] if buf.access == "arena" else buf.size // buf.segments
        kind = RegionKind.OBJECT_ARENA if buf.access == "arena" else RegionKind.BLOB_ARENA
        make = host.imported_region if mm else host.create_region
        ids = [make(kind, capacity) for _ in range(buf.segments)]
        region_ids[buf.name] = ids
        region_pages[buf.name] = pages_for(capacity)
        if buf.data is not None:
            data = np.frombuffer(buf.data, dtype=np.uint8)
            seg = buf.size // buf.segments
            for k, rid in enumerate(ids):
                host.view(rid)[:seg] = data[k * seg : (k + 1) * seg]

    def base_handle(rid: int) -> int:
        return Handle(rid, host.region_info(rid).generation, 0).to_i64()

    lowering: HandleLowering
    if variant in ("tvm", "tvm-inline"):
        lowering = TvmLowering(kernel, caps, pad=pad)
    elif variant == "tvm-bulk":
        lowering = BulkLowering(kernel, caps, pad=pad)
    else:
        lowering = MMLowering(kernel, caps, region_ids, region_pages, pad=pad)
    # tvm-inline: the same raw-ABI kernel, linked by the linker users run (tvm_wasm.linker, Binaryen).
    instance = host.instantiate(lowering.render(), inline=variant == "tvm-inline")
    store = host.store
    for buf in kernel.buffers:
        ids = region_ids[buf.name]
        if buf.segments == 1:
            _set_global(instance, store, f"h_{buf.name}", base_handle(ids[0]), "i64")
        elif not mm:
            memory = instance.exports(store)["memory"]
            assert isinstance(memory, wasmtime.Memory)
            table = np.array([base_handle(r) for r in ids], dtype=np.int64)
            at = lowering.table_at[buf.name]
            native.memory_view(memory, store)[at : at + 8 * len(ids)] = table.view(np.uint8)
        if buf.access == "arena":
            _set_global(instance, store, f"r_{buf.name}", ids[0])
    run = instance.exports(store)["run"]

    def reset() -> None:
        for arena in kernel.arenas:
            host._region(region_ids[arena.name][0]).allocator.reset()  # type: ignore[attr-defined]
            if variant in ("tvm-bulk", "tvm-mm"):
                for g in ("tl", "tle", "tlf"):
                    _set_global(instance, store, f"{g}_{arena.name}", 0)

    def call(reps: int) -> object:
        return run(store, reps)  # type: ignore[operator]

    notes = []
    if variant == "tvm-bulk":
        notes.append(_bulk_note(kernel))
    elif variant == "tvm" and kernel.arenas:
        notes.append("one tvm.alloc per block")
    elif variant == "tvm-mm" and kernel.arenas:
        notes.append("arenas: 16 KiB TLABs from tvm.alloc, blocks bump-allocated in the guest, native stores")
    prepared = Prepared(call, reset if kernel.arenas else None, max_reps, notes, keep=[host, instance])
    prepared.keep.append(lambda: host.python_entries)
    return prepared


def _bulk_note(kernel: Kernel) -> str:
    parts = []
    for b in kernel.buffers:
        parts.append({
            "stream": f"{b.name}: 16 KiB chunks via read",
            "random": f"{b.name}: read whole per repetition",
            "rare": f"{b.name}: per-access typed loads",
            "arena": f"{b.name}: 16 KiB TLABs in guest memory, written back when full and at return",
        }[b.access])
    return "bulk plan: " + "; ".join(parts)


PREPARERS: dict[str, Callable[..., Prepared]] = {
    "m32": prepare_linear,
    "m32-checked": prepare_linear,
    "m64": prepare_linear,
    "tvm": prepare_tvm,
    "tvm-inline": prepare_tvm,
    "tvm-bulk": prepare_tvm,
    "tvm-mm": prepare_tvm,
}


def answer_check(kernel: Kernel, label: str) -> Callable[[int, object], None]:
    """Every call's answer must equal reps x the reference answer (mod 2**64)."""

    def check(reps: int, result: object) -> None:
        want = _signed64(reps * kernel.expected)
        if not isinstance(result, int) or _signed64(result) != want:
            raise WrongAnswer(
                f"{label}: wrong answer {result!r} for {reps} repetitions (expected {want}, "
                f"{kernel.expected} per repetition)"
            )

    return check


def sampler(prepared: Prepared, kernel: Kernel, label: str) -> Sampler:
    return Sampler(prepared.call, before=prepared.before, check=answer_check(kernel, label), max_reps=prepared.max_reps)
