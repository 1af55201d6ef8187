"""beyond_4gib's measurement: every variant sampled round-robin, the spread in each row."""

from __future__ import annotations

from tvm_wasm.bench import special
from tvm_wasm.bench.matrix import Config, run_matrix
from tvm_wasm.bench.results import Row
from tvm_wasm.bench.timing import Sampler
from tvm_wasm.bench.wasmtime_runner import WrongAnswer


def _runs(log: list[str], wrong_after: dict[str, int]) -> list[special._ProbeRun]:
    runs = []
    for name in ("a", "b", "c"):
        calls = [0]

        def call(reps: int, name: str = name, calls: list[int] = calls) -> int:
            log.append(name)
            calls[0] += 1
            return -1 if calls[0] > wrong_after.get(name, 1 << 30) else reps

        def check(reps: int, result: object) -> None:
            if result != reps:
                raise WrongAnswer("wrong")

        sampler = Sampler(call, check=check, reject_preempted=False)
        runs.append(special._ProbeRun(Row(name, "beyond_4gib", 1, "wasmtime", 0), sampler, [], []))
    return runs


def test_every_round_samples_every_variant_once_in_a_seeded_order() -> None:
    log: list[str] = []
    cfg = Config.quick_config(samples=6)
    special.sample_round_robin(_runs(log, {}), cfg, lambda _k: None)
    rounds = [log[k : k + 3] for k in range(0, len(log), 3)]
    assert len(rounds) == 6 and all(sorted(r) == ["a", "b", "c"] for r in rounds), rounds
    assert len({tuple(r) for r in rounds}) > 1  # the order is shuffled, not always the same variant first
    again: list[str] = []
    special.sample_round_robin(_runs(again, {}), cfg, lambda _k: None)
    assert again == log  # seeded: the same order for the same seed


def test_a_wrong_answer_fails_its_row_and_leaves_the_others_sampled() -> None:
    log: list[str] = []
    runs = _runs(log, {"b": 2})
    special.sample_round_robin(runs, Config.quick_config(samples=5), lambda _k: None)
    by = {r.row.variant: r for r in runs}
    assert by["b"].row.status == "failed" and log.count("b") == 3
    assert log.count("a") == log.count("c") == 5
    assert len(by["a"].sampler.samples_ns) == 5 and by["a"].row.status == "ok"


def test_rows_carry_median_and_interquartile_range_per_probe() -> None:
    cfg = Config.quick_config(classes=("beyond_4gib",), variants=("m64", "tvm"), samples=4, probes_4g=256)
    out = run_matrix(cfg)
    assert not out.failures, out.failures
    for row in out.rows:
        assert row.status == "ok" and len(row.raw_ns) == 4, row.notes
        note = next(n for n in row.notes if n.startswith("per probe: median"))
        assert "interquartile" in note and "round-robin" in note
    assert next(r for r in out.rows if r.variant == "tvm").speedup_vs_m64 is not None


def test_spread_note_is_per_probe() -> None:
    note = special.spread_note([100.0, 200.0, 300.0, 400.0, 500.0], probes=100)
    assert "median 3.00 ns" in note and "2.00-4.00 ns" in note and "5 samples" in note
