"""``tvm-wasm bench checkpoints``: what dirty tracking and incremental checkpoints cost, side by side in one run.

Three measurements, each a ratio of two things timed in the same run:

- **tracking**: the store-heavy classes (``growth``, ``jvm_gen_alloc_scan``,
  ``columnar_filter_sum``) on TvmHost (``tvm``: a raw-ABI typed store per
  access; ``tvm-inline``: the same kernel linked with the runtime inlined and
  its loops hoisted; ``tvm-bulk``: spans through ``tvm.write``), with every
  region's dirty tracking on vs off, samples interleaved; target: within 10%.
- **checkpoint**: after a guest dirties 1% of the pages of a set of regions
  (1 GiB; typed stores in wasm), ``checkpoint`` of the set vs a full copy of the
  same bytes into a preallocated buffer (NumPy, memcpy speed); target: at
  least 20x faster. A rollback to the first checkpoint is timed and verified.
- **game**: a networked-game loop over 64 MiB of state at 60 steps a second:
  each step dirties 1-5% of the pages, takes a checkpoint and releases the one
  8 steps back; every 10 steps it rolls back 5 steps (verified against a CRC
  of the state at that checkpoint) and re-simulates. Time per checkpoint and
  per rollback, against cloning the whole state (what programs do today).
"""

from __future__ import annotations

import statistics
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from ..core.handle import Handle
from ..core.types import RegionKind
from ..host.tvm_host import TvmHost
from ..linker.errors import ToolMissing
from .classes import CLASSES
from .wasmtime_runner import Engines, prepare_tvm, sampler

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
PAGE = 4 * KIB
FRAME_S = 1 / 60
TRACKING_CLASSES = ("growth", "jvm_gen_alloc_scan", "columnar_filter_sum")
TRACKING_VARIANTS = ("tvm", "tvm-inline", "tvm-bulk")

# The guest that dirties pages: one typed store (tvm.store_u8) per offset listed in its memory.
POKER = """(module
  (import "tvm" "store_u8" (func $store_u8 (param i64 i32 i32)))
  (memory (export "memory") 4)
  (func (export "poke") (param $h i64) (param $count i32) (param $value i32) (local $i i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
      (call $store_u8 (local.get $h) (i32.load (i32.shl (local.get $i) (i32.const 2)))
                      (i32.add (local.get $value) (local.get $i)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))))"""


@dataclass(frozen=True)
class CheckpointBenchConfig:
    size: int = 256 * KIB  # tracking: kernel size
    samples: int = 15  # tracking samples per side; checkpoint samples
    checkpoint_bytes: int = GIB
    checkpoint_regions: int = 16
    dirty_fraction: float = 0.01
    game_bytes: int = 64 * MIB
    game_regions: int = 4
    game_steps: int = 120
    seed: int = 0xDEADBEEF
    tracking_classes: tuple[str, ...] = TRACKING_CLASSES

    @classmethod
    def quick(cls) -> CheckpointBenchConfig:
        return cls(size=16 * KIB, samples=7, game_steps=60)


@dataclass
class CheckpointBenchResult:
    config: CheckpointBenchConfig
    tracking: list[dict[str, object]] = field(default_factory=list)
    checkpoint: dict[str, float] = field(default_factory=dict)
    game: dict[str, float] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        return {"config": asdict(self.config), "tracking": self.tracking, "checkpoint": self.checkpoint,
                "game": self.game}


def _ms(seconds: list[float]) -> float:
    return statistics.median(seconds) * 1e3


def _p99(seconds: list[float]) -> float:
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3


# ---------------------------------------------------------------- tracking on vs off
def measure_tracking(cfg: CheckpointBenchConfig, progress: Callable[[str], None]) -> list[dict[str, object]]:
    engines = Engines()
    rows = []
    for name in cfg.tracking_classes:
        kernel = CLASSES[name](cfg.size, cfg.seed)
        for variant in TRACKING_VARIANTS:
            progress(f"tracking: {name} {variant}")
            try:
                off = prepare_tvm(variant, kernel, engines, 16 * MIB)
            except ToolMissing as exc:  # tvm-inline links with Binaryen
                rows.append({"class": name, "variant": variant, "size": cfg.size, "skipped": str(exc)})
                continue
            on = prepare_tvm(variant, kernel, engines, 16 * MIB)
            host = on.keep[0]
            assert isinstance(host, TvmHost)
            for region_id in host:
                host.track_dirty(region_id, True)
            samplers = {"off": sampler(off, kernel, f"{name} {variant}"),
                        "on": sampler(on, kernel, f"{name} {variant} tracked")}
            reps = samplers["off"].calibrate(0.02)
            for s in samplers.values():
                s.reps = reps  # the same work per sample on both sides
                s.warm(2)
            for _ in range(cfg.samples):
                for s in samplers.values():
                    s.sample()
            dirty = sum(len(host.dirty_pages(r)) for r in host)
            off_ns, on_ns = (statistics.median(samplers[k].samples_ns) for k in ("off", "on"))
            rows.append({"class": name, "variant": variant, "size": cfg.size, "off_ns": off_ns, "on_ns": on_ns,
                         "ratio": on_ns / off_ns, "dirty_pages_seen": dirty})
            for prepared in (off, on):
                prepared.keep[0].close()  # type: ignore[union-attr]
    return rows


# ---------------------------------------------------------------- incremental checkpoint vs full copy
class _Poker:
    """A guest dirtying pages with typed stores (the data plane marks the dirty-page map in wasm)."""

    def __init__(self, host: TvmHost) -> None:
        self.host = host
        self.instance = host.instantiate(POKER)
        self.memory = self.instance.exports(host.store)["memory"]
        self.poke = self.instance.exports(host.store)["poke"]

    def dirty(self, region_id: int, pages: np.ndarray, value: int) -> None:
        offsets = (pages.astype(np.uint32) * PAGE + 17).astype("<u4")
        for start in range(0, len(offsets), 16 * KIB):
            chunk = offsets[start : start + 16 * KIB]
            self.memory.write(self.host.store, chunk.tobytes(), 0)
            self.poke(self.host.store, _base(self.host, region_id), len(chunk), value & 0x7F)


def _base(host: TvmHost, region_id: int) -> int:
    return Handle(region_id, host.region_info(region_id).generation, 0).to_i64()


def _fill(host: TvmHost, ids: list[int], seed: int) -> None:
    rng = np.random.default_rng(seed)
    pattern = rng.integers(0, 256, size=MIB, dtype=np.uint8)
    for region_id in ids:
        view = host.view(region_id)
        for start in range(0, len(view), MIB):
            view[start : start + MIB] = pattern[: len(view) - start]


def _crc(host: TvmHost, ids: list[int]) -> int:
    crc = 0
    for region_id in ids:
        crc = zlib.crc32(host.view(region_id, writable=False), crc)
    return crc


def measure_checkpoint(cfg: CheckpointBenchConfig, progress: Callable[[str], None]) -> dict[str, float]:
    per_region = cfg.checkpoint_bytes // cfg.checkpoint_regions
    pages_per_region = per_region // PAGE
    rng = np.random.default_rng(cfg.seed)
    with TvmHost(pools=1 + cfg.checkpoint_bytes // (2 * GIB)) as host:
        ids = [host.create_region(RegionKind.BLOB_ARENA, per_region) for _ in range(cfg.checkpoint_regions)]
        progress("checkpoint: filling")
        _fill(host, ids, cfg.seed)
        initial = _crc(host, ids)
        poker = _Poker(host)
        start = time.perf_counter()
        first = host.checkpoint(ids)
        first_s = time.perf_counter() - start
        copy = np.empty(cfg.checkpoint_bytes, dtype=np.uint8)
        incremental, full, copied = [], [], []
        previous = None
        for sample in range(cfg.samples):
            progress(f"checkpoint: sample {sample + 1}/{cfg.samples}")
            for region_id in ids:
                count = max(1, int(pages_per_region * cfg.dirty_fraction))
                poker.dirty(region_id, np.sort(rng.choice(pages_per_region, count, replace=False)), sample + 1)
            start = time.perf_counter()
            checkpoint = host.checkpoint(ids)
            incremental.append(time.perf_counter() - start)
            copied.append(checkpoint.bytes_copied)
            start = time.perf_counter()
            for k, region_id in enumerate(ids):
                np.copyto(copy[k * per_region : (k + 1) * per_region], host.view(region_id, writable=False))
            full.append(time.perf_counter() - start)
            if previous is not None:
                host.release_checkpoint(previous)
            previous = checkpoint
        start = time.perf_counter()
        host.rollback(first)
        rollback_s = time.perf_counter() - start
        if _crc(host, ids) != initial:
            raise AssertionError("rollback to the first checkpoint did not restore the bytes")
    return {"bytes": cfg.checkpoint_bytes, "regions": cfg.checkpoint_regions, "dirty_fraction": cfg.dirty_fraction,
            "first_checkpoint_ms": first_s * 1e3, "checkpoint_ms": _ms(incremental), "full_copy_ms": _ms(full),
            "speedup": statistics.median(full) / statistics.median(incremental),
            "bytes_copied": statistics.median(copied), "rollback_to_first_ms": rollback_s * 1e3}


# ---------------------------------------------------------------- the networked-game loop
def measure_game(cfg: CheckpointBenchConfig, progress: Callable[[str], None]) -> dict[str, float]:
    per_region = cfg.game_bytes // cfg.game_regions
    pages_per_region = per_region // PAGE
    rng = np.random.default_rng(cfg.seed + 1)
    keep, every, back = 8, 10, 5
    with TvmHost(pools=1) as host:
        ids = [host.create_region(RegionKind.DEVICE_STATE, per_region) for _ in range(cfg.game_regions)]
        _fill(host, ids, cfg.seed)
        poker = _Poker(host)
        ring: list[tuple[object, int | None]] = []
        checkpoint_s, rollback_s, dirty_share = [], [], []
        clone = np.empty(cfg.game_bytes, dtype=np.uint8)
        scratch = np.empty(cfg.game_bytes, dtype=np.uint8)  # where a clone-based rollback would copy back to
        clone_s, restore_s = [], []
        step = 0
        while step < cfg.game_steps:
            progress(f"game: step {step + 1}/{cfg.game_steps}")
            share = rng.uniform(0.01, 0.05)
            for region_id in ids:
                count = max(1, int(pages_per_region * share))
                poker.dirty(region_id, np.sort(rng.choice(pages_per_region, count, replace=False)), step)
            dirty_share.append(share)
            start = time.perf_counter()
            checkpoint = host.checkpoint(ids)
            if len(ring) >= keep:
                host.release_checkpoint(ring.pop(0)[0])  # type: ignore[arg-type]
            checkpoint_s.append(time.perf_counter() - start)
            wanted = (step + back) % every == 0  # the state a rollback will go back to: remember its CRC
            ring.append((checkpoint, _crc(host, ids) if wanted else None))
            start = time.perf_counter()
            for k, region_id in enumerate(ids):
                np.copyto(clone[k * per_region : (k + 1) * per_region], host.view(region_id, writable=False))
            clone_s.append(time.perf_counter() - start)
            step += 1
            if step % every == 0 and len(ring) > back:
                target, crc = ring[-1 - back]
                start = time.perf_counter()
                host.rollback(target)  # type: ignore[arg-type]
                rollback_s.append(time.perf_counter() - start)
                if crc is not None and _crc(host, ids) != crc:
                    raise AssertionError(f"game rollback at step {step} did not restore the state")
                del ring[len(ring) - back :]  # superseded: re-simulated below
                start = time.perf_counter()
                np.copyto(scratch, clone)  # the same bytes a clone-based rollback copies back
                restore_s.append(time.perf_counter() - start)
    first, steady = checkpoint_s[0], checkpoint_s[1:]  # the first checkpoint copies everything
    return {"bytes": cfg.game_bytes, "steps": cfg.game_steps, "dirty_share_mean": statistics.fmean(dirty_share),
            "first_checkpoint_ms": first * 1e3, "checkpoint_ms": _ms(steady), "checkpoint_p99_ms": _p99(steady),
            "rollback_ms": _ms(rollback_s), "rollback_p99_ms": _p99(rollback_s), "rollbacks": len(rollback_s),
            "clone_ms": _ms(clone_s), "clone_restore_ms": _ms(restore_s), "frame_ms": FRAME_S * 1e3}


def run_checkpoint_bench(cfg: CheckpointBenchConfig, progress: Callable[[str], None] = lambda _: None,
                         parts: tuple[str, ...] = ("tracking", "checkpoint", "game")) -> CheckpointBenchResult:
    result = CheckpointBenchResult(cfg)
    if "tracking" in parts:
        result.tracking = measure_tracking(cfg, progress)
    if "checkpoint" in parts:
        result.checkpoint = measure_checkpoint(cfg, progress)
    if "game" in parts:
        result.game = measure_game(cfg, progress)
    return result


# ---------------------------------------------------------------- report
TRACKING_TARGET = 1.10
CHECKPOINT_TARGET = 20.0


def render(result: CheckpointBenchResult, console: object, command: str) -> list[str]:
    """Print the three tables; return the targets missed (empty when all are met)."""
    from rich.table import Table

    missed: list[str] = []
    if result.tracking:
        table = Table(title=f"dirty tracking on vs off (TvmHost, {result.config.size // KIB} KiB, median per run)")
        for column in ("class", "variant", "off", "on", "on/off", "dirty pages", f"target <= {TRACKING_TARGET:.2f}"):
            table.add_column(column, justify="left" if column in ("class", "variant") else "right")
        for row in result.tracking:
            if "skipped" in row:
                table.add_row(str(row["class"]), str(row["variant"]), "", "", "", "", f"skipped: {row['skipped']}")
                continue
            ok = row["ratio"] <= TRACKING_TARGET  # type: ignore[operator]
            if not ok:
                missed.append(f"tracking {row['class']} {row['variant']}: {row['ratio']:.2f}x")
            table.add_row(str(row["class"]), str(row["variant"]), f"{row['off_ns'] / 1e3:.1f} µs",
                          f"{row['on_ns'] / 1e3:.1f} µs", f"{row['ratio']:.2f}x", str(row["dirty_pages_seen"]),
                          "met" if ok else "NOT met")
        console.print(table)  # type: ignore[attr-defined]
    if result.checkpoint:
        c = result.checkpoint
        ok = c["speedup"] >= CHECKPOINT_TARGET
        if not ok:
            missed.append(f"checkpoint speedup {c['speedup']:.1f}x")
        table = Table(title=f"checkpoint after dirtying {c['dirty_fraction']:.0%} of {c['bytes'] / GIB:g} GiB "
                            f"({c['regions']} regions) vs a full copy")
        for column in ("checkpoint", "bytes copied", "full copy", "speedup", f"target >= {CHECKPOINT_TARGET:g}x",
                       "first (full) checkpoint", "rollback to first"):
            table.add_column(column, justify="right")
        table.add_row(f"{c['checkpoint_ms']:.2f} ms", f"{c['bytes_copied'] / MIB:.1f} MiB",
                      f"{c['full_copy_ms']:.1f} ms", f"{c['speedup']:.1f}x", "met" if ok else "NOT met",
                      f"{c['first_checkpoint_ms']:.0f} ms", f"{c['rollback_to_first_ms']:.1f} ms")
        console.print(table)  # type: ignore[attr-defined]
    if result.game:
        g = result.game
        table = Table(title=f"networked-game loop: {g['bytes'] / MIB:g} MiB state, 60 steps/s, "
                            f"{g['dirty_share_mean']:.1%} of pages dirtied per step on average")
        for column in ("", "median", "p99", "share of a 16.7 ms frame"):
            table.add_column(column, justify="right")
        table.add_row("checkpoint (and release of the one 8 steps back)", f"{g['checkpoint_ms']:.2f} ms",
                      f"{g['checkpoint_p99_ms']:.2f} ms", f"{g['checkpoint_ms'] / g['frame_ms']:.1%}")
        table.add_row(f"rollback 5 steps ({g['rollbacks']}x, verified)", f"{g['rollback_ms']:.2f} ms",
                      f"{g['rollback_p99_ms']:.2f} ms", f"{g['rollback_ms'] / g['frame_ms']:.1%}")
        table.add_row("first checkpoint (copies everything, once)", f"{g['first_checkpoint_ms']:.2f} ms", "", "")
        table.add_row("clone the whole state (today)", f"{g['clone_ms']:.2f} ms", "", f"{g['clone_ms'] / g['frame_ms']:.1%}")
        table.add_row("copy a clone back (today's rollback)", f"{g['clone_restore_ms']:.2f} ms", "",
                      f"{g['clone_restore_ms'] / g['frame_ms']:.1%}")
        console.print(table)  # type: ignore[attr-defined]
    console.print(f"command: {command}")  # type: ignore[attr-defined]
    return missed
