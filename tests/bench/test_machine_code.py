"""``tvm_wasm.bench.machine_code``: the instruction counts behind the README's per-access figures."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "host"))

from host_guests import require_binaryen  # noqa: E402

from tvm_wasm.bench.machine_code import (  # noqa: E402
    Instruction, call_paths, every_loop, function_code, loop_paths, probe_module,
)

# head at 0; the fast branch jumps to 10, the slow one calls; both arms meet at 12, which loops back
CODE = [Instruction(0, "mov", None), Instruction(1, "je", 10), Instruction(2, "call", None),
        Instruction(3, "jmp", 12), Instruction(10, "add", None), Instruction(11, "jne", 13),
        Instruction(12, "cmp", None), Instruction(13, "jb", 0), Instruction(14, "ret", None)]


def test_paths_follow_both_arms_and_drop_the_ones_that_call():
    assert loop_paths(CODE) == [5, 6]  # mov je add jne [cmp] jb
    assert call_paths(CODE) == [6, 7]  # the same to the ret after the loop
    with pytest.raises(ValueError):
        loop_paths(CODE[:3])
    assert every_loop(CODE) == [(0, 7, [5, 6])]  # one loop: head 0, back edge 7 instructions on
    assert every_loop(CODE, longest=6) == []


@pytest.fixture
def objdump() -> None:
    if shutil.which("objdump") is None:
        pytest.skip("objdump (GNU binutils) is not installed; .ci/run installs it")


def test_the_inlined_per_access_loop_has_one_fast_path_per_pool_and_costs_more_than_m32(objdump):
    require_binaryen()
    m32 = loop_paths(function_code(*probe_module("large_ws_probe", "m32")))
    inlined = loop_paths(function_code(*probe_module("large_ws_probe", "tvm-inline")))
    assert len(m32) == 1 and m32[0] > 10  # a straight loop body
    assert 2 <= len(inlined) <= 4 and min(inlined) > m32[0]  # pool 0, then the other pools' arms
    with pytest.raises(ValueError, match="exports no function"):
        function_code(*probe_module("large_ws_probe", "m32"), export="absent")


def test_multi_region_s_bounded_offsets_leave_no_compare_in_its_loop(objdump):
    """Its offsets are ``scaled(r, n) << 2`` (below ``4n``): their ranges are checked at the loop's entry, so
    each arm is m32's plus its count (no compare, no limit live, nothing spilled), and the hot arm, counted
    by difference at the loop's end, is m32's."""
    require_binaryen()
    m32 = loop_paths(function_code(*probe_module("multi_region_90_9_1", "m32")))
    inlined = loop_paths(function_code(*probe_module("multi_region_90_9_1", "tvm-inline")))
    assert max(inlined) <= max(m32) + 2 and min(inlined) <= min(m32)


@pytest.mark.parametrize("cls", ["growth", "jvm_gen_alloc_scan"])
def test_the_hoisted_allocating_loop_is_shorter_than_m64_s(objdump, cls):
    """The allocating loop's fast copy for untracked regions: no per-iteration count (iterations come from the
    induction variable), no dirty-map test, the bump pointer stored at the flush: fewer instructions than
    memory64's bounds-checked loop."""
    require_binaryen()
    m64 = loop_paths(function_code(*probe_module(cls, "m64")))
    inlined = loop_paths(function_code(*probe_module(cls, "tvm-inline")))
    assert min(inlined) < min(m64)
