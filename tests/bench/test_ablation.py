"""The ablation tool's cuts apply where they say, keep the answers, and its ratios are round by round."""

from __future__ import annotations

import re

import pytest

from tvm_wasm.bench import ablation
from tvm_wasm.bench.wasmtime_runner import Engines


@pytest.fixture(scope="module")
def subject() -> ablation.Subject:
    return ablation.large_ws_probe(Engines())


def _run_text(wasm: bytes) -> str:
    text = ablation.printed(wasm)
    start, end = ablation.run_span(text)
    return "\n".join(line.strip() for line in text[start:end].splitlines()) + "\n"


def test_each_part_is_at_every_keyed_pools_fast_path_and_gone_after_its_cut(subject: ablation.Subject) -> None:
    full = _run_text(subject.linked)
    for part, (pattern, _) in ablation.PARTS.items():
        assert len(re.findall(pattern, full)) == (1 if part in ablation.POOL0_ONLY else 2), part
        assert not re.findall(pattern, _run_text(ablation.cut(subject.linked, (part,)))), part


def test_a_cut_that_no_longer_matches_is_refused(subject: ablation.Subject) -> None:
    once = ablation.cut(subject.linked, ("stamp",))
    with pytest.raises(ValueError, match="'stamp' matched 0 times"):
        ablation.cut(once, ("stamp",))


def test_every_cut_module_answers_right_and_executes_fewer_instructions(subject: ablation.Subject) -> None:
    from tvm_wasm.bench.machine_code import function_code, loop_paths
    from tvm_wasm.host.tvm_host import default_engine

    full = loop_paths(function_code(default_engine(), subject.linked))
    for name, parts in ablation.CUTS.items():
        wasm = ablation.cut(subject.linked, parts)
        call = subject.prepare(wasm)
        for reps in (1, 2):
            subject.check(reps, call(reps))  # raises on a wrong answer
        if parts:
            assert min(loop_paths(function_code(default_engine(), wasm))) < min(full), name
    with pytest.raises(AssertionError, match="wrong answer"):
        subject.check(2, subject.prepare(subject.linked)(1))


def test_the_host_runs_the_cut_module_not_its_own_link(subject: ablation.Subject) -> None:
    """Cutting the count leaves bytes_read at zero: the prepared guest is the cut module."""

    def bytes_read(wasm: bytes) -> int:
        subject.prepare(wasm)(1)
        host = subject.keep[-1].keep[0]  # type: ignore[attr-defined]
        return sum(host.metrics(info.id).bytes_read for info in host.list_regions())

    assert bytes_read(subject.linked) == 16 * 1024  # 4,096 probes of 4 bytes
    assert bytes_read(ablation.cut(subject.linked, ("count",))) == 0


def test_speeds_are_ratios_of_the_same_round() -> None:
    times = {"m32": [1.0, 2.0, 4.0, 1.0], "x": [2.0, 4.0, 8.0, 2.0]}
    q1, q2, q3 = ablation.speeds(times, "m32")["x"]
    assert q1 == q2 == q3 == 0.5  # the load swung 4x, the ratio did not


def test_rounds_interleave_every_variant_in_a_seeded_order() -> None:
    log: list[str] = []
    calls = {name: (lambda reps, name=name: log.append(name)) for name in ("a", "b", "c")}
    times = ablation.sample(calls, 1, rounds=5, seed=7)
    assert all(len(t) == 5 for t in times.values())
    rounds = [log[k : k + 3] for k in range(0, len(log), 3)]
    assert len(rounds) == 7 and all(sorted(r) == ["a", "b", "c"] for r in rounds)
    assert len({tuple(r) for r in rounds}) > 1


def test_main_prints_every_cut(capsys: pytest.CaptureFixture[str]) -> None:
    ablation.main(["large_ws_probe", "--rounds", "1", "--min-sample-s", "0.0005", "--cuts", "full,floor"])
    out = capsys.readouterr().out
    assert "m32" in out and "full" in out and "floor" in out and "instructions" in out
    with pytest.raises(SystemExit):
        ablation.main(["large_ws_probe", "--cuts", "nothing"])
