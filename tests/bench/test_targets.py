"""The targets table: each row checked against the right ratio, bound and classes; the lines it prints."""

from __future__ import annotations

from tvm_wasm.bench.matrix_report import size_label, target_lines
from tvm_wasm.bench.results import Row
from tvm_wasm.bench.targets import TARGETS, check


def row(variant: str, cls: str, *, m32: float | None = None, m64: float | None = None, size: int = 16384,
        engine: str = "wasmtime", status: str = "ok") -> Row:
    return Row(variant, cls, size, engine, 0, raw_ns=[1.0], status=status, speedup_vs_m32=m32, speedup_vs_m64=m64)


def outcome(rows: list[Row], label_start: str):
    [found] = [o for o in check(rows, size_label) if o.target.label.startswith(label_start)]
    return found


def test_inlined_core_classes_need_0_7_of_m32_others_0_5() -> None:
    rows = [row("tvm-inline", "list_walk", m32=0.69), row("guest-inline", "random_chase", m32=0.70),
            row("tvm-inline", "growth", m32=0.69)]
    core = outcome(rows, "tvm-inline/guest-inline >= 0.70")
    assert core.checked == 2 and core.misses == ["tvm-inline list_walk 16 KiB 0.69"]
    every = outcome(rows, "tvm-inline/guest-inline >= 0.50")
    assert every.checked == 3 and every.misses == []


def test_faster_than_m64_is_strict_and_beyond_4gib_has_its_own_bound() -> None:
    rows = [row("tvm-inline", "growth", m32=1.0, m64=1.0), row("guest-inline", "jvm_gen_alloc_scan", m64=1.01),
            row("tvm-inline", "beyond_4gib", m64=1.0, size=6 << 30), row("guest-inline", "beyond_4gib", m64=0.99),
            row("guest", "beyond_4gib", m64=0.5)]
    faster = outcome(rows, "tvm-inline/guest-inline faster than m64")
    assert faster.checked == 2 and faster.misses == ["tvm-inline growth 16 KiB 1.00"]  # a tie is not faster
    beyond = outcome(rows, "beyond_4gib")  # >= 1.0 (a tie meets it), the linked variants only
    assert beyond.checked == 2 and beyond.misses == ["guest-inline beyond_4gib 16 KiB 0.99"]


def test_rows_not_measured_or_of_other_engines_are_not_checked() -> None:
    rows = [row("tvm", "growth", m32=0.1, engine="v8"), row("tvm", "growth", m32=0.1, status="infeasible"),
            row("tvm", "growth", m32=None)]
    assert all(o.checked == 0 for o in check(rows, size_label))
    assert target_lines(rows) == []


def test_lines_name_met_checked_and_each_miss() -> None:
    rows = [row("tvm", "sequential_sum", m32=0.2, m64=0.3), row("tvm", "random_chase", m32=0.6, m64=1.2)]
    assert target_lines(rows) == [
        "targets: tvm (per access) >= 0.50 of m32: 1 of 2 rows; missed: tvm sequential_sum 16 KiB 0.20",
        "targets: tvm/tvm-bulk/tvm-mm faster than m64: 1 of 2 rows; missed: tvm sequential_sum 16 KiB 0.30",
    ]


def test_every_target_reads_a_ratio_rows_have() -> None:
    for target in TARGETS:
        assert target.ratio in Row.__dataclass_fields__ and target.variants
