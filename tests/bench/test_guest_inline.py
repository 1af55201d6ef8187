"""``guest-inline``: the ``tvm`` kernel linked by ``tvm_wasm.linker`` (``--target guest --inline``) gives the
reference answers, arenas included, and measures beyond 4 GiB next to m64."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "host"))

from host_guests import require_binaryen  # noqa: E402

from tvm_wasm.bench import classes as C  # noqa: E402
from tvm_wasm.bench.guest_linked import prepare_guest_inline  # noqa: E402
from tvm_wasm.bench.matrix import OPT_IN_VARIANTS, Config, run_matrix  # noqa: E402
from tvm_wasm.bench.wasmtime_runner import Engines, answer_check  # noqa: E402


@pytest.fixture(autouse=True)
def binaryen() -> None:
    require_binaryen()


# streamed, random, rare, arena (reset between calls) and a multi-segment buffer (a handle table in memory)
@pytest.mark.parametrize("cls", ["sequential_sum", "multi_region_90_9_1", "jvm_gen_alloc_scan", "large_ws_probe"])
def test_the_linked_kernel_gives_the_reference_answer(cls: str) -> None:
    kernel = C.CLASSES[cls](4096, 12345)
    prepared = prepare_guest_inline(kernel, Engines(), 1 << 20)
    check = answer_check(kernel, f"{cls} guest-inline")
    for reps in (1, 3, 2):
        if prepared.before:
            prepared.before()
        check(reps, prepared.call(reps))  # raises WrongAnswer


def test_beyond_4gib_through_the_linker_sits_beside_m64() -> None:
    assert "guest-inline" in OPT_IN_VARIANTS
    cfg = Config.quick_config(classes=("beyond_4gib", "spill_driven"), sizes=(65536,),
                              variants=("m64", "guest-inline"), samples=2, probes_4g=256)
    out = run_matrix(cfg)
    assert not out.failures, out.failures
    by = {(r.cls, r.variant): r for r in out.rows}
    row = by[("beyond_4gib", "guest-inline")]
    assert row.status == "ok" and row.size_bytes == 6 << 30 and row.speedup_vs_m64 is not None, row.notes
    assert any("--target guest --inline" in note for note in row.notes)
    assert by[("spill_driven", "guest-inline")].status == "infeasible"
