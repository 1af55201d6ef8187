"""The micro-benchmark runs end to end and pairs every TVM row with what it claims."""

from __future__ import annotations

from tvm_wasm.bench.micro import run_micro
from tvm_wasm.bench.timing import calibrate, measure
from tvm_wasm.cli import main


def test_measure_discards_warmup_and_reports_per_repetition() -> None:
    calls: list[int] = []
    timing = measure(calls.append, samples=3, warmup=2, min_sample_s=0.0)
    assert timing.reps == 1 and len(timing.samples_ns) == 3
    assert len(calls) == 1 + 2 + 3  # calibration, warm-up, samples


def test_calibrate_doubles_until_the_sample_is_long_enough(monkeypatch) -> None:
    from tvm_wasm.bench import timing

    now = [0.0]  # a clock the kernel advances by 1 ms per repetition: no dependence on machine load
    monkeypatch.setattr(timing.time, "perf_counter", lambda: now[0])

    def kernel(reps: int) -> None:
        now[0] += reps * 0.001

    assert calibrate(kernel, min_sample_s=0.004) == 4
    assert calibrate(kernel, min_sample_s=0.0041) == 8


def test_run_micro_rows_are_complete_and_positive() -> None:
    rows = run_micro(samples=1, min_sample_s=0.001)
    names = [row.operation for row in rows]
    assert any("load_u32" in name for name in names) and any("read 64 KiB" in name for name in names)
    assert any("spill 16 MiB" in name for name in names) and any("fault-in 64 KiB" in name for name in names)
    assert all(row.ns_per_op > 0 for row in rows)


def test_cli_bench_micro_prints_a_table(capsys) -> None:
    assert main(["bench", "--micro", "--samples", "1"]) == 0
    out = capsys.readouterr().out
    assert "load_u32 through" in out and "speed vs native" in out


def test_cli_bench_rejects_stray_arguments(capsys) -> None:
    assert main(["bench", "stray.json"]) == 2
    assert "invalid choice" in capsys.readouterr().err
