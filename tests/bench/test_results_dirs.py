"""A slice of the matrix (``./run.sh --classes ...``, ``tvm-wasm bench --classes ...``) writes where it says it
does, ``results/slices/<slice>/``, and leaves the whole matrix's ``results/`` (and other slices) intact."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from tvm_wasm.bench.command import DEFAULT_DIR, matrix_dir

ROOT = Path(__file__).resolve().parents[2]


def bench(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tvm_wasm.cli", "bench", "--quick", "--samples", "2", "--layouts", "1",
                           *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def test_a_slice_keeps_the_whole_matrixs_results(tmp_path):
    whole = tmp_path / "results"
    whole.mkdir()
    for name in ("bench.json", "report.md", "bench.png"):
        (whole / name).write_text(f"the whole matrix's {name}")
    first = bench(tmp_path, "--classes", "sequential_sum", "--sizes", "1K", "--variants", "m32,tvm")
    second = bench(tmp_path, "--classes", "random_chase", "--sizes", "1K", "--variants", "m32")
    for done in (first, second):
        assert done.returncode == 0, done.stderr[-2000:]
    for name in ("bench.json", "report.md", "bench.png"):
        assert (whole / name).read_text() == f"the whole matrix's {name}"
    one = whole / "slices" / "classes-sequential_sum_sizes-1K_variants-m32+tvm"
    other = whole / "slices" / "classes-random_chase_sizes-1K_variants-m32"
    assert f"wrote {one.relative_to(tmp_path) / 'bench.json'}" in " ".join(first.stdout.split())
    for folder, classes in ((one, {"sequential_sum"}), (other, {"random_chase"})):
        rows = json.loads((folder / "bench.json").read_text())["rows"]
        assert {row["class"] for row in rows} == classes
        assert (folder / "report.md").exists() and (folder / "bench.png").exists()


def test_the_whole_matrix_and_explicit_paths_keep_their_places():
    args = argparse.Namespace(classes=None, sizes=None, variants=None, engines=None)
    assert matrix_dir(args) == DEFAULT_DIR
    args.engines = ["wasmtime", "v8"]
    assert matrix_dir(args) == DEFAULT_DIR / "slices" / "engines-wasmtime+v8"
    args.classes = ["../../etc"]  # a name cannot leave results/slices/
    assert "/" not in matrix_dir(args).name and matrix_dir(args).parent == DEFAULT_DIR / "slices"


def test_run_sh_and_the_readme_say_where_a_slice_goes():
    assert "results/slices/" in (ROOT / "run.sh").read_text()
    assert "results/slices/" in (ROOT / "README.md").read_text().split("## Benchmarks", 1)[0]
