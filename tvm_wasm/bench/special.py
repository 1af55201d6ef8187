"""The two classes whose memory models differ by construction.

``spill_driven``: a working set four times the resident budget. Four regions of
``size`` bytes live on a ``TvmHost`` with ``budget_bytes=size`` and a file
backing store, so only one is resident. Each repetition ("cycle") reads the
next region in rotation, which is Cold: the data plane enters the host once to
fault it in, the host first spills the resident region (file write + fsync +
rename), then loads the Cold one from its file; the guest then checksums every
byte (the answer is checked against NumPy). The note gives the share of the
cycle spent inside the backing store and the host entries per cycle. A flat
memory cannot hold the working set within the budget: those rows are
infeasible.

``beyond_4gib``: random u64 probes over a sparse 6 GiB working set (only the
probed pages are ever touched, so the resident set stays small). m64 uses one
6 GiB memory64; the TVM variants use three 2 GiB regions spread over the
32-bit pools; m32 cannot address it. Its loop is bound by memory latency (a TLB
miss per probe), so its samples swing with the machine's load: every variant is
prepared before any is timed, samples are taken round-robin, and each row says
its median and interquartile range per probe.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import wasmtime

from ..core.file_backing import FileBackingStore
from ..core.handle import Handle
from ..core.types import RegionKind
from ..host import native
from ..host.tvm_host import TvmHost
from ..runtime.wat import Func, Module, import_func, import_memory, per_pool
from .guest_runner import _guest
from .results import Row, Unavailable
from .timing import Sampler
from .wasmtime_runner import Engines, WrongAnswer

if TYPE_CHECKING:
    from .matrix import Config

MASK64 = (1 << 64) - 1
GIB = 1 << 30
PAGE = 65536
WS_4G = 6 * GIB
REGION_4G = 2 * GIB


def _signed(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v >= 1 << 63 else v


def infeasible(variant: str, cls: str, size: int, cfg: Config, why: str, engine: str = "wasmtime") -> Row:
    return Row(variant, cls, size, "native" if variant == "native" else engine, cfg.seed, status="infeasible", notes=[why])


def run(cls: str, cfg: Config, engines: Engines, progress: Callable[[str], None]) -> list[Row]:
    if cls == "spill_driven":
        return [row for size in cfg.sizes for row in spill_driven(size, cfg, engines, progress)]
    if cls == "beyond_4gib":
        return beyond_4gib(cfg, engines, progress)
    raise ValueError(cls)


def _finish(row: Row, s: Sampler) -> None:
    row.raw_ns = list(s.samples_ns)
    row.warmup = s.warmup
    row.reps_per_sample = s.reps


# ---------------------------------------------------------------- spill-driven
class TimedBacking:
    """A backing store that adds up the time spent inside it (spill = write + fsync + rename)."""

    def __init__(self, inner: FileBackingStore) -> None:
        self.inner = inner
        self.ns = 0
        self.spills = 0
        self.loads = 0

    def spill(self, region_id: int, generation: int, data: bytes) -> None:
        start = time.perf_counter_ns()
        self.inner.spill(region_id, generation, data)
        self.ns += time.perf_counter_ns() - start
        self.spills += 1

    def load(self, region_id: int, generation: int) -> bytes:
        start = time.perf_counter_ns()
        data = self.inner.load(region_id, generation)
        self.ns += time.perf_counter_ns() - start
        self.loads += 1
        return data

    def delete(self, region_id: int, generation: int) -> None:
        self.inner.delete(region_id, generation)


SPILL_REGIONS = 4


def spill_wat(variant: str, size: int) -> str:
    """One cycle: the next region in rotation (handle table at 0), checksum its u64 words."""
    m = Module()
    words = size // 8
    if variant == "tvm":
        m.imports.append(import_func("tvm", "load_i64", "load_i64", ["i64", "i32"], ["i64"]))
        pages = 1
    else:
        m.imports.append(import_func("tvm", "read", "read", ["i64", "i32", "i32"], ["i32"]))
        pages = 1 + -(-size // PAGE)
    m.fields.append(f'(memory (export "memory") {pages})')
    m.fields.append('(global $cycle (export "cycle") (mut i32) (i32.const 0))')
    if variant == "tvm":
        word = ["local.get $h", "local.get $i", "i32.const 3", "i32.shl", "call $load_i64"]
        prepare: list[str] = []
    else:
        word = ["local.get $i", "i32.const 3", "i32.shl", f"i64.load offset={PAGE}"]
        prepare = ["local.get $h", f"i32.const {PAGE}", f"i32.const {size}", "call $read", "if", "unreachable", "end"]
    body = [
        "loop $cycles",
        "  local.get $reps", "  i32.eqz", "  if", "    local.get $total", "    return", "  end",
        # h = table[cycle % 4]; cycle += 1
        "  global.get $cycle", f"  i32.const {SPILL_REGIONS - 1}", "  i32.and", "  i32.const 3", "  i32.shl",
        "  i64.load", "  local.set $h",
        "  global.get $cycle", "  i32.const 1", "  i32.add", "  global.set $cycle",
        *[f"  {x}" for x in prepare],
        "  i32.const 0", "  local.set $i",
        "  loop $words",
        *[f"    {x}" for x in word],
        "    local.get $total", "    i64.add", "    local.set $total",
        "    local.get $i", "    i32.const 1", "    i32.add", "    local.tee $i", f"    i32.const {words}",
        "    i32.lt_u", "    br_if $words",
        "  end",
        "  local.get $reps", "  i32.const 1", "  i32.sub", "  local.set $reps",
        "  br $cycles",
        "end",
        "local.get $total",
    ]
    m.add(Func("run", [("reps", "i32")], ["i64"], [("h", "i64"), ("i", "i32"), ("total", "i64")], body, export="run"))
    return m.render()


def _timed_call(call: Callable[[], object]) -> int:
    start = time.perf_counter_ns()
    call()
    return time.perf_counter_ns() - start


def spill_driven(size: int, cfg: Config, engines: Engines, progress: Callable[[str], None]) -> list[Row]:
    cls = "spill_driven"
    why = (f"infeasible: the working set ({SPILL_REGIONS} x {size} B) must fit a resident budget of {size} B, "
           "and a flat memory cannot spill")
    rows: list[Row] = []
    for variant in cfg.variants:
        if variant in ("tvm", "tvm-inline", "tvm-bulk"):
            progress(f"{cls} {size}: {variant}")
            rows.append(_spill_row(variant, size, cfg, engines))
        elif variant == "tvm-mm":
            rows.append(infeasible(variant, cls, size, cfg, "infeasible: imported regions never leave memory "
                                   "(native loads cannot fault), so they cannot spill"))
        elif variant in ("guest", "guest-inline"):
            rows.append(infeasible(variant, cls, size, cfg, "infeasible: the self-contained guest module has no "
                                   "backing store (spill needs the host)"))
        else:
            rows.append(infeasible(variant, cls, size, cfg, why))
    return rows


def _spill_row(variant: str, size: int, cfg: Config, engines: Engines) -> Row:
    row = Row(variant, "spill_driven", size, "wasmtime", cfg.seed)
    rng = np.random.default_rng([cfg.seed, 9, size])
    with tempfile.TemporaryDirectory(prefix="tvm-bench-spill-") as root:
        backing = TimedBacking(FileBackingStore(root))
        host = TvmHost(backing=backing, budget_bytes=size, engine=engines.tvm)
        ids, sums = [], []
        for _ in range(SPILL_REGIONS):
            rid = host.create_region(RegionKind.OBJECT_ARENA, size)
            data = rng.integers(0, 256, size, dtype=np.uint8)
            host.write(Handle(rid, host.region_info(rid).generation, 0), data.tobytes())
            ids.append(rid)
            sums.append(int(data.view(np.uint64).sum(dtype=np.uint64)) & MASK64)
        inline = variant == "tvm-inline"
        instance = host.instantiate(spill_wat("tvm" if inline else variant, size), inline=inline)
        store = host.store
        memory = instance.exports(store)["memory"]
        assert isinstance(memory, wasmtime.Memory)
        table = np.array([Handle(r, host.region_info(r).generation, 0).to_i64() for r in ids], dtype=np.int64)
        native.memory_view(memory, store)[: 8 * SPILL_REGIONS] = table.view(np.uint8)
        cycle = instance.exports(store)["cycle"]
        assert isinstance(cycle, wasmtime.Global)
        run = instance.exports(store)["run"]
        # Start the rotation one past the region written last (the only resident one): every cycle faults.
        cycle.set_value(store, wasmtime.Val.i32(0))
        start_cycle = [0]

        def before() -> None:
            start_cycle[0] = int(cycle.value(store))

        def check(reps: int, result: object) -> None:
            want = sum(sums[(start_cycle[0] + c) % SPILL_REGIONS] for c in range(reps))
            if not isinstance(result, int) or _signed(result) != _signed(want):
                raise WrongAnswer(f"spill_driven {size} {variant}: wrong checksum {result} (expected {_signed(want)})")

        sampler = Sampler(lambda reps: run(store, reps), before=before, check=check,  # type: ignore[operator]
                          max_reps=cfg.spill_cycles, reject_preempted=False)  # I/O waits are part of a cycle
        try:
            sampler.calibrate(cfg.min_sample_s)
            sampler.warm(cfg.warmup)
            faults0, spills0, loads0, entries0 = host.metrics(ids[0]).faults, backing.spills, backing.loads, host.python_entries
            backing.ns = 0
            wall0 = time.perf_counter_ns()
            for _ in range(cfg.samples):
                sampler.sample()
            wall = time.perf_counter_ns() - wall0
        except WrongAnswer as exc:
            row.status, row.notes = "failed", [str(exc)]
            return row
        del faults0, wall
        cycles = sampler.reps * cfg.samples
        timed = sum(sampler.durations_ns)
        _finish(row, sampler)
        row.result = sums[0]
        storage = 100 * backing.ns / timed if timed else 0.0
        spills, loads = (backing.spills - spills0) / cycles, (backing.loads - loads0) / cycles
        entries = (host.python_entries - entries0) / cycles
        # The same cycles with every region resident (no budget): what the checksum alone costs.
        host.budget_bytes = None
        for rid in ids:
            host.load_region(rid)
        start_cycle[0] = int(cycle.value(store))
        compute = min(_timed_call(lambda: run(store, SPILL_REGIONS)) for _ in range(3)) / SPILL_REGIONS  # type: ignore[operator]
        compute_pct = 100 * compute * cycles / timed if timed else 0.0
        row.notes.append(
            f"per cycle: {spills:.2f} spills + {loads:.2f} loads (file store, fsync), {entries:.2f} host entries; "
            f"time: {storage:.0f}% inside the backing store, {compute_pct:.0f}% checksumming every byte in wasm, "
            f"{max(0.0, 100 - storage - compute_pct):.0f}% the rest (Python control plane: copies, page release, "
            "bookkeeping)"
        )
        row.call_overhead_pct = None
    return row


# ---------------------------------------------------------------- beyond 4 GiB
def probe_set(cfg: Config) -> tuple[np.ndarray, np.ndarray]:
    """Distinct 8-byte-aligned addresses in [64 KiB, 6 GiB), one per 4 KiB page, and their values."""
    rng = np.random.default_rng([cfg.seed, 4, 4])
    pages = rng.choice(WS_4G // 4096 - 16, size=cfg.probes_4g, replace=False) + 16
    addrs = (pages * 4096 + rng.integers(0, 512, size=len(pages)) * 8).astype(np.uint64)
    values = rng.integers(0, 1 << 63, size=len(pages), dtype=np.uint64)
    return addrs, values


def _probe_loop(n: int, load: list[str], list_load: tuple[str, ...] = ("i64.load",)) -> list[str]:
    """``total += load(addr)`` for the ``n`` u64 addresses at guest 0..; ``load`` turns ``$a`` (i64) into an i64."""
    return [
        "i32.const 0", "local.set $i",
        "loop $probes",
        "  local.get $i", "  i32.const 3", "  i32.shl", *[f"  {x}" for x in list_load], "  local.set $a",
        *[f"  {x}" for x in load],
        "  local.get $total", "  i64.add", "  local.set $total",
        "  local.get $i", "  i32.const 1", "  i32.add", "  local.tee $i", f"  i32.const {n}", "  i32.lt_u",
        "  br_if $probes",
        "end",
    ]


def _reps_func(inner: list[str], locals_: list[tuple[str, str]]) -> Func:
    body = [
        "block $done",
        "loop $reps_loop",
        "  local.get $reps", "  i32.eqz", "  br_if $done",
        *[f"  {x}" for x in inner],
        "  local.get $reps", "  i32.const 1", "  i32.sub", "  local.set $reps",
        "  br $reps_loop",
        "end",
        "end",
        "local.get $total",
    ]
    return Func("run", [("reps", "i32")], ["i64"], [("i", "i32"), ("a", "i64"), ("total", "i64"), *locals_], body,
                export="run")


@dataclass
class _ProbeRun:
    """One variant of ``beyond_4gib`` ready to sample: its row, sampler, notes and what must stay alive."""

    row: Row
    sampler: Sampler
    notes: list[str]
    keep: list[object]


def beyond_4gib(cfg: Config, engines: Engines, progress: Callable[[str], None]) -> list[Row]:
    """Every variant prepared first (each writes the probed values, so exactly the probed pages of its
    memory are faulted in before any timing), then calibrated and warmed (the probe loop itself, so
    TLB and caches are as in a sample), then sampled round-robin in a seeded shuffled order, one
    sample per variant per round: drift and other processes' load hit every variant alike. Every
    variant runs the same probe sequence over the same bytes; a sample is ``reps`` whole passes."""
    cls = "beyond_4gib"
    addrs, values = probe_set(cfg)
    expected = int(values.sum(dtype=np.uint64)) & MASK64
    rows: dict[str, Row] = {}
    ready: list[_ProbeRun] = []
    for variant in cfg.variants:
        if variant in ("m32", "m32-checked"):
            rows[variant] = infeasible(variant, cls, WS_4G, cfg, "infeasible: a 6 GiB working set exceeds the 4 GiB a "
                                       "32-bit memory can address")
            continue
        if variant == "native":
            from .native_c import run_native_probes

            progress(f"{cls}: native")
            rows[variant] = run_native_probes(addrs, values, expected, WS_4G, cfg)
            continue
        progress(f"{cls}: preparing {variant}" + (" (linking)" if variant.endswith("-inline") else ""))
        row = rows[variant] = Row(variant, cls, WS_4G, "wasmtime", cfg.seed)
        try:
            call, notes, keep = _prepare_variant_4g(variant, addrs, values, engines)
        except Unavailable as why:
            row.status, row.notes = why.status, [str(why)]
            continue
        except Exception as exc:  # noqa: BLE001 - a variant that cannot be prepared is a failed row
            row.status, row.notes = "failed", [f"could not prepare: {type(exc).__name__}: {exc}"]
            continue
        sampler = Sampler(call, check=_check_4g(row, expected))
        try:
            sampler.calibrate(cfg.min_sample_s)
            sampler.warm(cfg.warmup)
        except WrongAnswer as exc:
            row.status, row.notes = "failed", [str(exc)]
            continue
        ready.append(_ProbeRun(row, sampler, notes, keep))
    sample_round_robin(ready, cfg, lambda k: progress(f"{cls}: sample {k + 1}/{cfg.samples}"))
    for run_ in ready:
        if run_.row.status == "ok":
            _finish_4g(run_, len(addrs), expected)
    return [rows[v] for v in cfg.variants if v in rows]


def sample_round_robin(ready: list[_ProbeRun], cfg: Config, progress: Callable[[int], None]) -> None:
    """``cfg.samples`` rounds, each one sample of every variant in a shuffled order (seeded by
    ``cfg.seed``); a wrong answer fails that variant's row and drops it from later rounds."""
    order = random.Random(cfg.seed)
    live = list(ready)
    for round_ in range(cfg.samples):
        progress(round_)
        order.shuffle(live)
        for run_ in list(live):
            try:
                run_.sampler.sample()
            except WrongAnswer as exc:
                run_.row.status, run_.row.notes = "failed", [str(exc)]
                live.remove(run_)


def _check_4g(row: Row, expected: int) -> Callable[[int, object], None]:
    def check(reps: int, result: object) -> None:
        if not isinstance(result, int) or _signed(result) != _signed(reps * expected):
            raise WrongAnswer(f"beyond_4gib {row.variant}: wrong answer {result}")

    return check


def spread_note(samples_ns: list[float], probes: int) -> str:
    """The median and interquartile range of the samples, per probe: the run-to-run spread the
    ratios carry (a memory-latency-bound loop swings with the machine's load)."""
    x = np.asarray(samples_ns, dtype=float) / probes
    q1, q2, q3 = (float(np.percentile(x, q)) for q in (25, 50, 75))
    return (f"per probe: median {q2:.2f} ns, interquartile {q1:.2f}-{q3:.2f} ns over {len(x)} samples "
            "(sampled round-robin with the other variants)")


def _finish_4g(run_: _ProbeRun, probes: int, expected: int) -> None:
    row, sampler = run_.row, run_.sampler
    _finish(row, sampler)
    durations = sorted(sampler.durations_ns)
    row.call_overhead_pct = 100 * sampler.call_overhead_ns() / durations[len(durations) // 2]
    row.result = expected
    row.notes += run_.notes
    row.notes.append(spread_note(row.raw_ns, probes))
    if sampler.retaken:
        row.notes.append(f"{sampler.retaken} sample(s) retaken: the thread was preempted")


def _prepare_variant_4g(variant: str, addrs: np.ndarray, values: np.ndarray,
                        engines: Engines) -> tuple[Callable[[int], object], list[str], list[object]]:
    """``(call, notes, keep)`` for one variant: ``call(reps)`` runs ``reps`` passes over the probes."""
    if variant == "guest":
        return _prepare_guest_4g(addrs, values, engines)
    if variant == "guest-inline":
        return _prepare_guest_inline_4g(addrs, values, engines)
    call, keep = _prepare_4g(variant, addrs, values, engines)
    notes = [f"{len(addrs)} random u64 probes (one per distinct page) over 6 GiB; "
             f"resident set {len(addrs) * 4 // 1024} MiB of pages", *keep.pop()]  # type: ignore[misc]
    return call, notes, keep


def _prepare_4g(variant: str, addrs: np.ndarray, values: np.ndarray,
                engines: Engines) -> tuple[Callable[[int], object], list[object]]:
    n = len(addrs)
    list_pages = 1 + (n * 8) // PAGE
    if variant == "m64":
        m = Module()
        m.fields.append(f'(memory (export "memory") i64 {WS_4G // PAGE})')
        # the probe list sits at 0..n*8 (below the first probe, which is >= 64 KiB... checked below)
        m.add(_reps_func(_probe_loop(n, ["local.get $a", "i64.load"], ("i64.extend_i32_u", "i64.load")), []))
        wat = m.render()
        store = wasmtime.Store(engines.default)
        instance = wasmtime.Instance(store, wasmtime.Module(engines.default, wat), [])
        memory = instance.exports(store)["memory"]
        assert isinstance(memory, wasmtime.Memory)
        view = native.memory_view(memory, store)
        assert int(addrs.min()) >= n * 8
        view[: n * 8] = addrs.view(np.uint8)
        view.view(np.uint64)[(addrs // 8).astype(np.int64)] = values
        run = instance.exports(store)["run"]
        return (lambda reps: run(store, reps)), [store, instance, ["one 6 GiB memory64"]]  # type: ignore[operator]
    host = TvmHost(engine=engines.tvm, pools=4)
    mm = variant == "tvm-mm"
    make = host.imported_region if mm else host.create_region
    ids = [make(RegionKind.BLOB_ARENA, REGION_4G) for _ in range(WS_4G // REGION_4G)]
    where = sorted({host._region(r).storage.pool for r in ids}) if not mm else []  # type: ignore[attr-defined]
    region_of = (addrs >> np.uint64(31)).astype(np.int64)
    offset_of = (addrs & np.uint64(REGION_4G - 1)).astype(np.int64)
    for k, rid in enumerate(ids):
        mine = region_of == k
        view = host.view(rid)
        view.view(np.uint64)[offset_of[mine] // 8] = values[mine]
    handles = [Handle(r, host.region_info(r).generation, 0).to_i64() for r in ids]
    m = Module()
    table_at = list_pages * PAGE
    if variant in ("tvm", "tvm-inline"):
        m = tvm_probe_module(n)
        notes = [f"3 regions of 2 GiB in pools {where}; per-probe load_i64"]
    elif mm:
        for k, rid in enumerate(ids):
            m.imports.append(import_memory("tvm", f"r{rid}", f"r{k}", REGION_4G // PAGE, REGION_4G // PAGE))
        m.fields.append(f'(memory $mem (export "memory") {list_pages + 1})')
        load = ["local.get $a", "i64.const 31", "i64.shr_u", "i32.wrap_i64", "local.set $k",
                "block $got (result i64)",
                *per_pool(len(ids), lambda k: ["local.get $a", "i32.wrap_i64", f"i32.const {REGION_4G - 1}", "i32.and",
                                                f"i64.load $r{k}", "br $got"], ["local.get $k"], ["unreachable"]),
                "end"]
        m.add(_reps_func(_probe_loop(n, load, ("i64.load $mem",)), [("k", "i32")]))
        notes = ["3 imported regions (memories) of 2 GiB; a branch tree picks the memory per probe"]
    else:  # tvm-bulk: one read_gather per region into guest memory, then a local sum
        m.imports.append(import_func("tvm", "read_gather", "read_gather", ["i64", "i32", "i32", "i32", "i32"], ["i32"]))
        groups = [np.flatnonzero(region_of == k) for k in range(len(ids))]
        idx_at = table_at + PAGE
        idx_pages = 1 + (n * 4) // PAGE
        dst_at = idx_at + idx_pages * PAGE
        m.fields.append(f'(memory (export "memory") {dst_at // PAGE + 1 + (n * 8) // PAGE})')
        inner: list[str] = []
        at = 0
        for k, g in enumerate(groups):
            inner += [f"i32.const {table_at + 8 * k}", "i64.load", f"i32.const {idx_at + 4 * at}",
                      f"i32.const {len(g)}", "i32.const 8", f"i32.const {dst_at + 8 * at}", "call $read_gather",
                      "if", "unreachable", "end"]
            at += len(g)
        inner += ["i32.const 0", "local.set $i", "loop $sum", "  local.get $i", "  i32.const 3", "  i32.shl",
                  f"  i64.load offset={dst_at}", "  local.get $total", "  i64.add", "  local.set $total",
                  "  local.get $i", "  i32.const 1", "  i32.add", "  local.tee $i", f"  i32.const {n}", "  i32.lt_u",
                  "  br_if $sum", "end"]
        m.add(_reps_func(inner, []))
        notes = [f"3 regions of 2 GiB in pools {where}; one read_gather per region, local sum"]
    instance = host.instantiate(m.render(), inline=variant == "tvm-inline")
    memory = instance.exports(host.store)["memory"]
    assert isinstance(memory, wasmtime.Memory)
    gview = native.memory_view(memory, host.store)
    gview[: n * 8] = addrs.view(np.uint8)
    gview[table_at : table_at + 8 * len(ids)] = np.array(handles, dtype=np.int64).view(np.uint8)
    if variant == "tvm-bulk":
        order = np.concatenate([np.flatnonzero(region_of == k) for k in range(len(ids))])
        idx = offset_of[order].astype(np.uint32)
        gview[table_at + PAGE : table_at + PAGE + 4 * n] = idx.view(np.uint8)
    run = instance.exports(host.store)["run"]
    return (lambda reps: run(host.store, reps)), [host, instance, notes]  # type: ignore[operator]


def tvm_probe_module(n: int) -> Module:
    """The probe kernel against the raw ABI: the probe list at 0, the regions' handles after it, a
    ``tvm.load_i64`` per probe (the ``tvm`` lowering; ``tvm-inline`` and ``guest-inline`` link it)."""
    list_pages = 1 + (n * 8) // PAGE
    table_at = list_pages * PAGE
    m = Module()
    m.imports.append(import_func("tvm", "load_i64", "load_i64", ["i64", "i32"], ["i64"]))
    m.fields.append(f'(memory (export "memory") {list_pages + 1})')
    load = ["local.get $a", "i64.const 31", "i64.shr_u", "i32.wrap_i64", "i32.const 3", "i32.shl",
            f"i64.load offset={table_at}", "local.get $a", "i32.wrap_i64", f"i32.const {REGION_4G - 1}", "i32.and",
            "call $load_i64"]
    m.add(_reps_func(_probe_loop(n, load), []))
    return m


def _prepare_guest_inline_4g(addrs: np.ndarray, values: np.ndarray,
                             engines: Engines) -> tuple[Callable[[int], object], list[str], list[object]]:
    """``tvm_probe_module`` linked into the self-contained module with the runtime inlined (``guest-inline``)."""
    from .guest_linked import POOLS, base_handle, linked_guest

    n = len(addrs)
    table_at = (1 + (n * 8) // PAGE) * PAGE
    region_of = (addrs >> np.uint64(31)).astype(np.int64)
    offset_of = (addrs & np.uint64(REGION_4G - 1)).astype(np.int64)
    gi = linked_guest(tvm_probe_module(n).render(), engines)
    ids = [gi.create_region(RegionKind.BLOB_ARENA, REGION_4G) for _ in range(WS_4G // REGION_4G)]
    pools = sorted({gi.region_info(r).pool for r in ids})
    for k, rid in enumerate(ids):
        mine = region_of == k
        gi.view(rid).view(np.uint64)[offset_of[mine] // 8] = values[mine]
    gview = native.memory_view(gi.guest_memory, gi.store)
    gview[: n * 8] = addrs.view(np.uint8)
    handles = np.array([base_handle(gi, r) for r in ids], dtype=np.int64)
    gview[table_at : table_at + 8 * len(ids)] = handles.view(np.uint8)
    run = gi.instance.exports(gi.store)["run"]
    notes = [f"{n} random u64 probes (one per distinct page) over 6 GiB",
             f"3 regions of 2 GiB in pools {pools} of the linked module ({POOLS} pools, no host); "
             "per-probe load_i64 inlined by tvm_wasm.linker (--target guest --inline)"]
    return (lambda reps: run(gi.store, reps)), notes, [gi]  # type: ignore[operator]


def _prepare_guest_4g(addrs: np.ndarray, values: np.ndarray,
                      engines: Engines) -> tuple[Callable[[int], object], list[str], list[object]]:
    """Three 2 GiB regions in the module's pools; one ``read_gather`` per region, then a local sum
    (``Unavailable`` where the self-contained module cannot be built)."""
    P = PAGE
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
    m = Module()
    m.add(_reps_func(inner, []))
    fields = "\n".join(m.render().splitlines()[1:-1])
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
    run = gi.instance.exports(gi.store)["run"]
    notes = [f"self-contained module: 3 regions of 2 GiB in pools {pools}; one read_gather per region, local sum"]
    return (lambda reps: run(gi.store, reps)), notes, [gi]  # type: ignore[operator]
