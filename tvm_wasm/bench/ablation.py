"""What each part of the inlined per-access path costs: the linked loop with parts cut out, timed beside m32/m64.

The per-access classes (``large_ws_probe``, ``beyond_4gib``) keep the typed load's inlined fast path per
access: the one compare of the handle's key sum (fast key and bounds at once), the ``bytes_read`` count, the clock written to
``HDR_EPOCH`` and the slot's stamp, then the base and the data. This takes the module the linker made
for ``tvm-inline``, cuts parts out of the exported ``run`` (an edit of its text, checked to apply at
every pool's fast path), and times every cut beside the flat-memory baseline in one process: all
prepared first, the same ``reps`` for every variant, samples round-robin in a seeded shuffled order,
median and interquartile range of each variant's speed over the rounds. It also prints each cut's
x86-64 instructions per iteration (:mod:`.machine_code`). Every answer is checked.

A cut module breaks the model's semantics (counters, clock, stamps, bounds): it exists to measure
what a part costs and is run only here, on the bench's own data. ``-check`` drops pool 0's compare
(every access then takes pool 0's path) and ``floor`` the stores too, so only handle -> slot base ->
data is left (every region must be in pool 0: ``large_ws_probe`` only). ``python -m tvm_wasm.bench.ablation [large_ws_probe|beyond_4gib]
[--rounds N]``.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import wasmtime

from ..cli_support import number
from ..host.tvm_host import DEFAULT_POOLS, default_engine
from ..linker import host as linker_host
from ..linker import link, tools
from ..runtime import layout as L
from .classes import CLASSES
from .lower_wat import TvmLowering
from .machine_code import function_code, loop_paths
from .matrix import Config
from .wasmtime_runner import Engines, arena_caps, arena_reps, prepare_linear, prepare_tvm

_SLOT = L.SLOTS  # the slot table's offset in the directory memory: a slot field is at slot * 256 + this + field

_N = r"(\d+)"
#: Each part: (pattern over the function's text, one instruction per line; its replacement).
PARTS: dict[str, tuple[str, str | Callable[[re.Match[str]], str]]] = {
    "clock-store": (rf"i32\.const {L.HDR_EPOCH}\nlocal\.get {_N}\ni64\.const 1\ni64\.add\nlocal\.tee \1\ni64\.store\n",
                    r"local.get \1\ni64.const 1\ni64.add\nlocal.set \1\n"),
    "stamp": (rf"local\.get {_N}\nlocal\.get {_N}\ni64\.store offset={_SLOT + L.SLOT_LAST_EPOCH}\n", ""),
    "count": (rf"local\.(get|tee) {_N}\nlocal\.get \2\ni64\.load offset={_SLOT + L.SLOT_BYTES_READ}\ni64\.const {_N}\n"
              rf"i64\.add\ni64\.store offset={_SLOT + L.SLOT_BYTES_READ}\n",
              lambda m: f"local.set {m.group(2)}\n" if m.group(1) == "tee" else ""),  # a teed slot index stays set
    "check": (rf"local\.tee {_N}\ni64\.load32_u offset={_SLOT + L.SLOT_CAPACITY}\n((?:.*\n)*?)local\.get {_N}\n"
              rf"local\.get \1\ni64\.load offset={_SLOT + L.SLOT_FAST_KEYS}\ni64\.xor\ni64\.add\ni64\.const {_N}\n"
              r"i64\.add\ni64\.ge_u\n",
              r"local.set \1\n\2drop\ni32.const 1\n"),
}
STORES = ("clock-store", "stamp", "count")
#: The cuts timed, in order: name -> parts cut.
CUTS: dict[str, tuple[str, ...]] = {
    "full": (),
    "-clock store": ("clock-store",),
    "-stamp -count": ("stamp", "count"),
    "-all stores": STORES,
    "-check": ("check",),
    "floor": (*STORES, "check"),
}
POOL0_ONLY = {"check"}  # cuts that are right only when every region is in pool 0 (pool 0's compare: its key field)


def printed(wasm: bytes) -> str:
    """``wasm-tools print`` of the module without its name section, so functions are numbered (linked
    modules keep their names for traps; the cuts' patterns and ``run_span`` read indices)."""
    stripped = tools.run([tools.wasm_tools(), "strip", "--all"], input=wasm)
    return tools.run([tools.wasm_tools(), "print"], input=stripped).decode()


def run_span(text: str) -> tuple[int, int]:
    """Where the exported ``run`` function's text starts and ends in ``wasm-tools print`` output (module
    fields are indented by two spaces, their contents by more)."""
    found = re.search(r'\(export "run" \(func (\d+)\)\)', text)
    if found is None:
        raise ValueError("the module exports no run function")
    start = text.index(f"\n  (func (;{found.group(1)};)") + 1
    end = re.compile(r"\n  \S|\n\)").search(text, start)
    assert end is not None
    return start, end.start() + 1


def cut(wasm: bytes, parts: tuple[str, ...], sites: int = 2) -> bytes:
    """``wasm`` with ``parts`` cut out of ``run``; each must match exactly ``sites`` times (once per keyed pool's
    fast path; ``key``, pool 0's compare only, once), else ``ValueError``: the linker's output changed
    shape and the cut would measure something else."""
    text = printed(wasm)
    start, end = run_span(text)
    body = "\n".join(line.strip() for line in text[start:end].splitlines()) + "\n"
    for part in parts:
        pattern, replacement = PARTS[part]
        body, n = re.subn(pattern, replacement, body)
        want = 1 if part in POOL0_ONLY else sites
        if n != want:
            raise ValueError(f"cut {part!r} matched {n} times in run, not {want}")
    return tools.run([tools.wasm_tools(), "parse", "-"], input=(text[:start] + body + text[end:]).encode())


@contextmanager
def host_runs(wasm: bytes) -> Iterator[None]:
    """The host instantiates ``wasm`` where it would link a guest itself (``inline=True``): the bench's own
    cut modules only, through the host's private linker, while the block runs."""
    original = linker_host.inlined_guest
    linker_host.inlined_guest = lambda engine, pools, user: wasmtime.Module(engine, wasm)  # type: ignore[assignment]
    try:
        yield
    finally:
        linker_host.inlined_guest = original  # type: ignore[assignment]


@dataclass
class Subject:
    """A class to cut: its baseline variants' calls, the linked module, a preparer for a cut module."""

    baselines: dict[str, Callable[[int], object]]
    linked: bytes
    prepare: Callable[[bytes], Callable[[int], object]]
    check: Callable[[int, object], None]
    per_rep: int  # accesses per repetition
    keep: list[object]


def large_ws_probe(engines: Engines) -> Subject:
    kernel = CLASSES["large_ws_probe"](16 * 1024, Config.seed)
    limit = 1 << 24
    caps = arena_caps(kernel, arena_reps(kernel, limit))
    keep: list[object] = []
    baselines = {}
    for variant in ("m32", "m64"):
        prepared = prepare_linear(variant, kernel, engines, limit)
        keep.append(prepared)
        baselines[variant] = prepared.call

    def prepare(wasm: bytes) -> Callable[[int], object]:
        with host_runs(wasm):
            prepared = prepare_tvm("tvm-inline", kernel, engines, limit)
        keep.append(prepared)
        return prepared.call

    def check(reps: int, result: object) -> None:
        if not isinstance(result, int) or (result - reps * kernel.expected) % (1 << 64):
            raise AssertionError(f"large_ws_probe: wrong answer {result!r}")

    linked = link(TvmLowering(kernel, caps).render(), target="host", pools=DEFAULT_POOLS).wasm
    return Subject(baselines, linked, prepare, check, kernel.size_bytes // 4, keep)


def beyond_4gib(engines: Engines) -> Subject:
    from . import special

    cfg = Config.quick_config()
    addrs, values = special.probe_set(cfg)
    expected = int(values.sum(dtype=np.uint64))
    keep: list[object] = []
    call, kept = special._prepare_4g("m64", addrs, values, engines)
    keep.append(kept)

    def prepare(wasm: bytes) -> Callable[[int], object]:
        with host_runs(wasm):
            call, kept = special._prepare_4g("tvm-inline", addrs, values, engines)
        keep.append(kept)
        return call

    def check(reps: int, result: object) -> None:
        if not isinstance(result, int) or (result - reps * expected) % (1 << 64):
            raise AssertionError(f"beyond_4gib: wrong answer {result!r}")

    linked = link(special.tvm_probe_module(len(addrs)).render(), target="host", pools=DEFAULT_POOLS).wasm
    return Subject({"m64": call}, linked, prepare, check, len(addrs), keep)


SUBJECTS: dict[str, Callable[[Engines], Subject]] = {"large_ws_probe": large_ws_probe, "beyond_4gib": beyond_4gib}


def sample(calls: dict[str, Callable[[int], object]], reps: int, rounds: int, seed: int,
           check: Callable[[int, object], None] | None = None) -> dict[str, list[float]]:
    """``rounds`` rounds, one timed call of every variant per round in a seeded shuffled order; ns per rep.
    Two untimed rounds first warm every variant."""
    order, names = random.Random(seed), list(calls)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(rounds + 2):
        order.shuffle(names)
        for name in names:
            start = time.perf_counter_ns()
            result = calls[name](reps)
            elapsed = time.perf_counter_ns() - start
            if check is not None and name not in ("m32", "m64"):
                check(reps, result)
            if round_ >= 2:
                times[name].append(elapsed / reps)
    return times


def speeds(times: dict[str, list[float]], baseline: str) -> dict[str, tuple[float, float, float]]:
    """Per variant: the baseline's median time over its own in each round, as (quartile 1, median, quartile 3)."""
    base = times[baseline]
    out = {}
    for name, samples in times.items():
        ratios = np.asarray(base) / np.asarray(samples)  # round by round: the same moment's load for both
        q1, q2, q3 = (float(np.percentile(ratios, q)) for q in (25, 50, 75))
        out[name] = (q1, q2, q3)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tvm_wasm.bench.ablation", description=__doc__.split("\n")[0])
    parser.add_argument("cls", nargs="?", default="large_ws_probe", choices=sorted(SUBJECTS))
    parser.add_argument("--rounds", type=number(1, 10_000), default=40)
    parser.add_argument("--min-sample-s", type=number(1e-4, 10.0, real=True), default=0.02)
    parser.add_argument("--cuts", default=",".join(CUTS), help=f"comma-separated, of: {', '.join(CUTS)}")
    args = parser.parse_args(argv)
    unknown = set(args.cuts.split(",")) - set(CUTS)
    if unknown:
        parser.error(f"unknown cut(s): {', '.join(sorted(unknown))}")
    engines = Engines()
    subject = SUBJECTS[args.cls](engines)
    calls = dict(subject.baselines)
    counts = {}
    for name in args.cuts.split(","):
        parts = CUTS[name]
        if POOL0_ONLY & set(parts) and args.cls != "large_ws_probe":
            continue
        wasm = cut(subject.linked, parts)
        counts[name] = loop_paths(function_code(default_engine(), wasm))
        calls[name] = subject.prepare(wasm)
        subject.check(3, calls[name](3))
    baseline = next(iter(subject.baselines))
    reps = 1
    while True:
        start = time.perf_counter()
        calls[baseline](reps)
        if time.perf_counter() - start >= args.min_sample_s:
            break
        reps *= 2
    times = sample(calls, reps, args.rounds, Config.seed, subject.check)
    print(f"{args.cls}: {args.rounds} rounds, {reps} reps per call, speed vs {baseline} round by round "
          "(median, quartiles); x86-64 instructions per iteration of run's loop (pool 0, pool 1 paths)")
    for name, (q1, q2, q3) in speeds(times, baseline).items():
        per = statistics.median(times[name]) / subject.per_rep
        count = ", ".join(map(str, counts[name])) if name in counts else "-"
        print(f"  {name:16} {q2:5.2f} ({q1:.2f}-{q3:.2f})  {per:6.2f} ns per access  instructions {count}")


if __name__ == "__main__":
    main()
