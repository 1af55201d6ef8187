"""The benchmark matrix: kernels agree across variants, the JSON schema, compare's exit codes, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tvm_wasm.bench import classes as C
from tvm_wasm.bench.compare import compare
from tvm_wasm.bench.ir import Buffer, Const, Var
from tvm_wasm.bench.matrix import VARIANTS, Config, run_matrix
from tvm_wasm.bench.native_c import compiler, run_native
from tvm_wasm.bench.results import ROW_FIELDS, Row, annotate, load_rows
from tvm_wasm.bench.stats import mann_whitney_u, percentile, summarize
from tvm_wasm.bench.wasmtime_runner import PREPARERS, Engines, WrongAnswer, answer_check
from tvm_wasm.cli import main

SEED = 12345
WASM_VARIANTS = ("m32", "m32-checked", "m64", "tvm", "tvm-bulk", "tvm-mm", "guest")


@pytest.fixture(scope="module")
def engines() -> Engines:
    return Engines()


def prepare(variant: str, kernel, engines: Engines, arena_limit: int = 1 << 20):
    if variant == "guest":
        from tvm_wasm.bench.guest_runner import prepare_guest

        return prepare_guest(kernel, engines, arena_limit)
    return PREPARERS[variant](variant, kernel, engines, arena_limit)


@pytest.mark.parametrize("cls", sorted(C.CLASSES))
@pytest.mark.parametrize("size", [64, 1024, 4096])
def test_every_variant_gives_the_reference_answer(cls: str, size: int, engines: Engines) -> None:
    """m32 matches the NumPy reference, and every other variant matches m32, for 1..3 repetitions."""
    kernel = C.CLASSES[cls](size, SEED)
    answers = {}
    for variant in WASM_VARIANTS:
        prepared = prepare(variant, kernel, engines)
        check = answer_check(kernel, f"{cls} {variant}")
        for reps in (1, 3):
            if prepared.before:
                prepared.before()
            result = prepared.call(reps)
            check(reps, result)  # raises WrongAnswer
            answers[(variant, reps)] = result
    for reps in (1, 3):
        assert len({answers[(v, reps)] for v in WASM_VARIANTS}) == 1


@pytest.mark.skipif(compiler() is None, reason="no C compiler")
@pytest.mark.parametrize("cls", sorted(C.CLASSES))
def test_native_c_gives_the_reference_answer(cls: str) -> None:
    kernel = C.CLASSES[cls](1024, SEED)
    row = run_native(kernel, Config(samples=2, warmup=0, min_sample_s=0.0, arena_limit=1 << 20))
    assert row.status == "ok", row.notes
    assert len(row.raw_ns) == 2 and row.result == kernel.expected


def test_a_wrong_answer_is_caught(engines: Engines) -> None:
    kernel = C.sequential_sum(256, SEED)
    kernel.expected += 1
    prepared = prepare("m32", kernel, engines)
    with pytest.raises(WrongAnswer):
        answer_check(kernel, "m32")(1, prepared.call(1))


def test_the_matrix_marks_a_wrong_answer_as_a_failed_row() -> None:
    from tvm_wasm.bench import matrix

    original = C.CLASSES["sequential_sum"]

    def broken(size: int, seed: int):
        kernel = original(size, seed)
        kernel.expected ^= 1
        return kernel

    cfg = Config(classes=("sequential_sum",), sizes=(256,), variants=("m32", "tvm"), samples=2, warmup=0,
                 min_sample_s=0.0, layouts=1)
    matrix.CLASSES["sequential_sum"] = broken
    try:
        out = run_matrix(cfg)
    finally:
        matrix.CLASSES["sequential_sum"] = original
    assert {r.status for r in out.rows} == {"failed"} and len(out.failures) == 2


def test_kernel_language_rejects_type_mistakes() -> None:
    with pytest.raises(TypeError):
        Var("a") + Const(1, "i64")
    with pytest.raises(ValueError):
        Buffer("b", 10, "sideways")
    with pytest.raises(ValueError):
        Buffer("b", 48, "random", segments=16)  # 3-byte segments are not powers of two
    with pytest.raises(ValueError):
        Buffer("b", 8, "random", data=b"123")


# ---------------------------------------------------------------- statistics
def test_percentile_summary_and_confidence_interval() -> None:
    values = [10.0, 20.0, 30.0, 40.0, 50.0]
    assert percentile(values, 50) == 30.0 and percentile(values, 99) == 50.0 and percentile(values, 0) == 10.0
    s = summarize(values)
    assert s.mean == 30.0 and s.p50 == 30.0
    # t(0.975, 4) = 2.776; s = 15.811; half-width = 2.776 * 15.811 / sqrt(5) = 19.63
    assert s.ci_low == pytest.approx(30 - 19.63, abs=0.01) and s.ci_high == pytest.approx(30 + 19.63, abs=0.01)


def test_mann_whitney_u() -> None:
    faster = mann_whitney_u([1, 2, 3], [4, 5, 6])
    assert faster.u == 0 and faster.u_normalised == 0.0
    assert faster.p_value == pytest.approx(0.0809, abs=0.001)  # normal approximation, continuity-corrected
    same = mann_whitney_u([1, 2, 3], [1, 2, 3])
    assert same.u_normalised == 0.5 and same.p_value == 1.0
    assert mann_whitney_u([], [1]).u_normalised == 0.5
    ties = mann_whitney_u([1, 1, 2], [1, 2, 2])
    assert 0 < ties.u_normalised < 0.5


def test_speedups_are_ratios_of_medians_within_class_size_and_engine() -> None:
    m32 = Row("m32", "c", 64, "wasmtime", 1, raw_ns=[100.0, 100.0, 1000.0])
    m64 = Row("m64", "c", 64, "wasmtime", 1, raw_ns=[200.0, 200.0, 200.0])
    tvm = Row("tvm", "c", 64, "wasmtime", 1, raw_ns=[50.0, 50.0, 50.0])
    other_size = Row("tvm", "c", 128, "wasmtime", 1, raw_ns=[10.0, 10.0])
    native = Row("native", "c", 64, "native", 1, raw_ns=[25.0, 25.0])
    annotate([m32, m64, tvm, other_size, native])
    assert tvm.speedup_vs_m32 == 2.0 and tvm.speedup_vs_m64 == 4.0
    assert other_size.speedup_vs_m32 is None
    assert native.speedup_vs_m32 == 4.0  # compared with wasmtime's m32
    assert m32.speedup_vs_m32 == 1.0 and m32.mann_whitney_u_vs_m32 == 0.5


# ---------------------------------------------------------------- JSON and the CLI
def test_cli_quick_run_writes_json_markdown_and_png(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["bench", "--quick", "--classes", "sequential_sum", "--sizes", "1024", "--report", str(out)])
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "bench.json").read_text())
    assert doc["schema"] == 1 and doc["config"]["quick"] is True
    assert doc["machine"]["cpu_model"] and doc["machine"]["logical_cpus"] and "wasmtime" in doc["packages"]
    assert doc["command"].startswith("tvm-wasm bench --quick")
    rows = load_rows(out / "bench.json")
    assert {r["variant"] for r in rows} >= set(VARIANTS) - ({"native"} if compiler() is None else set())
    for row in rows:
        assert list(row)[: len(ROW_FIELDS)] == list(ROW_FIELDS)
        assert row["class"] == "sequential_sum" and row["size_bytes"] == 1024 and row["seed"] == 0xDEADBEEF
        if row["status"] == "ok":
            assert row["samples"] >= 2 and row["warmup"] >= 1 and len(row["raw_ns"]) == row["samples"]
            assert row["ci95_low_ns"] <= row["mean_ns"] <= row["ci95_high_ns"]
            assert row["p50_ns"] <= row["p95_ns"] <= row["p99_ns"]
            assert row["throughput_gib_per_s"] > 0 and row["speedup_vs_m32"] > 0
            if row["engine"] == "wasmtime":  # every wasm variant is sampled in 4 code layouts in quick mode
                assert len(row["layout_means_ns"]) == 4 and row["best_layout_ns"] == min(row["layout_means_ns"])
                assert row["speedup_vs_m32_best_layout"] > 0
        else:
            assert row["samples"] == 0 and row["notes"]
    report = (out / "report.md").read_text()
    assert "## Headline (wasmtime)" in report and "tvm-bulk" in report and "Quick mode" in report
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "sequential_sum" in capsys.readouterr().out


def test_infeasible_rows_carry_zero_samples_and_a_reason(tmp_path: Path) -> None:
    cfg = Config.quick_config(classes=("spill_driven",), sizes=(1024,), variants=("m32", "m64", "tvm-mm", "tvm"),
                              samples=2)
    out = run_matrix(cfg)
    by = {r.variant: r.to_json() for r in out.rows}
    for variant in ("m32", "m64", "tvm-mm"):
        assert by[variant]["samples"] == 0 and by[variant]["mean_ns"] is None
        assert "infeasible" in by[variant]["notes"]
    assert by["tvm"]["samples"] == 2 and "1.00 spills + 1.00 loads" in by["tvm"]["notes"]


def _doc(rows: list[dict]) -> dict:
    full = []
    for r in rows:
        row = {f: None for f in ROW_FIELDS}
        row.update({"engine": "wasmtime", "samples": 5, "warmup": 1, "seed": 1, "notes": ""})
        row.update(r)
        full.append(row)
    return {"schema": 1, "rows": full}


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps(_doc(rows)))
    return path


def test_compare_exit_codes(tmp_path: Path, capsys) -> None:
    base = _write(tmp_path / "base.json", [
        {"variant": "tvm", "class": "c", "size_bytes": 64, "mean_ns": 100.0},
        {"variant": "guest", "class": "c", "size_bytes": 64, "mean_ns": 100.0},
        {"variant": "m32", "class": "c", "size_bytes": 64, "mean_ns": 100.0},
        {"variant": "tvm-mm", "class": "c", "size_bytes": 64, "mean_ns": None, "samples": 0},
    ])
    same = _write(tmp_path / "same.json", [
        {"variant": "tvm", "class": "c", "size_bytes": 64, "mean_ns": 120.0},
        {"variant": "guest", "class": "c", "size_bytes": 64, "mean_ns": 90.0},
        {"variant": "m32", "class": "c", "size_bytes": 64, "mean_ns": 900.0},  # m32 is not checked
    ])
    slower = _write(tmp_path / "slower.json", [
        {"variant": "tvm", "class": "c", "size_bytes": 64, "mean_ns": 100.0},
        {"variant": "guest", "class": "c", "size_bytes": 64, "mean_ns": 130.0},
    ])
    assert main(["bench", "compare", str(base), str(same)]) == 0
    assert "no regression" in capsys.readouterr().out
    assert main(["bench", "compare", str(base), str(slower)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION guest c 64" in out and "1.30x" in out
    assert main(["bench", "compare", str(base), str(slower), "--threshold", "1.5"]) == 0
    assert main(["bench", "compare", str(base)]) == 2
    (tmp_path / "bad.json").write_text(json.dumps({"rows": [{"variant": "tvm"}]}))
    assert main(["bench", "compare", str(base), str(tmp_path / "bad.json")]) == 2
    result = compare(base, slower)
    assert [c.variant for c in result.regressions] == ["guest"] and len(result.compared) == 2
    # medians win over means when both files have them: a noisy mean alone is no regression
    quiet = _write(tmp_path / "quiet.json", [{"variant": "tvm", "class": "c", "size_bytes": 64, "mean_ns": 100.0,
                                              "p50_ns": 100.0}])
    noisy = _write(tmp_path / "noisy.json", [{"variant": "tvm", "class": "c", "size_bytes": 64, "mean_ns": 500.0,
                                              "p50_ns": 101.0}])
    assert not compare(quiet, noisy).regressions
    assert compare(base, noisy).regressions  # BASE has no median: means are compared
    # best-layout means win over medians when both files have them (code placement swings medians)
    placed_a = _write(tmp_path / "a.json", [{"variant": "tvm-mm", "class": "c", "size_bytes": 64, "mean_ns": 100.0,
                                              "p50_ns": 100.0, "best_layout_ns": 50.0}])
    placed_b = _write(tmp_path / "b.json", [{"variant": "tvm-mm", "class": "c", "size_bytes": 64, "mean_ns": 180.0,
                                              "p50_ns": 180.0, "best_layout_ns": 52.0}])
    assert not compare(placed_a, placed_b).regressions and compare(placed_a, placed_b).compared[0].base_ns == 50.0


def test_cli_rejects_unknown_classes_variants_and_sizes(capsys) -> None:
    assert main(["bench", "--classes", "nope"]) == 2
    assert main(["bench", "--variants", "m128"]) == 2
    assert main(["bench", "--sizes", "1000"]) == 2
    assert main(["bench", "--engines", "spidermonkey"]) == 2
    assert main(["bench", "--layouts", "0"]) == 2
    err = capsys.readouterr().err
    assert "unknown class" in err and "unknown variant" in err and "powers of two" in err


def test_beyond_4gib_runs_every_variant_that_can_address_6_gib() -> None:
    cfg = Config.quick_config(classes=("beyond_4gib",), samples=2, probes_4g=256)
    out = run_matrix(cfg)
    by = {r.variant: r for r in out.rows}
    assert not out.failures, out.failures
    assert by["m32"].status == "infeasible" and by["m32-checked"].status == "infeasible"
    expected = {"m64", "tvm", "tvm-bulk", "tvm-mm", "guest"} | ({"native"} if compiler() else set())
    for variant in expected:
        assert by[variant].status == "ok" and by[variant].size_bytes == 6 << 30, (variant, by[variant].notes)
        assert by[variant].speedup_vs_m64 is not None
