"""Binaryen's outputs are cached (memory, then disk) by tool, arguments and inputs; Node tools start
with baseline-only wasm compilation on small inputs."""

from __future__ import annotations

import os

import pytest
from c_guests import expected_fill_sum

from tvm_wasm import RegionKind, TvmHost
from tvm_wasm.linker import binaryen_cache, link, tools


@pytest.fixture
def cache_at(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv(binaryen_cache.ENV, str(folder))
    binaryen_cache.clear_memory()
    yield folder
    binaryen_cache.clear_memory()


@pytest.fixture
def tool(tmp_path):
    path = tmp_path / "wasm-fake"
    path.write_text("#!/usr/bin/env node\n")
    return str(path)


def counting(output: bytes):
    calls = []

    def run() -> bytes:
        calls.append(1)
        return output

    return run, calls


def test_an_output_is_computed_once_then_served_from_memory_then_from_disk(cache_at, tool):
    run, calls = counting(b"\0asm\x01\0\0\0out")
    for _ in range(2):
        assert binaryen_cache.cached(tool, ["-O3"], [b"in"], run) == b"\0asm\x01\0\0\0out"
    binaryen_cache.clear_memory()
    assert binaryen_cache.cached(tool, ["-O3"], [b"in"], run) == b"\0asm\x01\0\0\0out"
    assert calls == [1] and len(list(cache_at.iterdir())) == 1


def test_the_key_is_the_tool_its_arguments_and_every_input(cache_at, tool):
    run, calls = counting(b"x")
    binaryen_cache.cached(tool, ["-O3"], [b"a", b"b"], run)
    binaryen_cache.cached(tool, ["-O2"], [b"a", b"b"], run)   # other arguments
    binaryen_cache.cached(tool, ["-O3"], [b"a", b"c"], run)   # another input
    binaryen_cache.cached(tool, ["-O3"], [b"ab"], run)        # the same bytes, split differently
    os.utime(tool, ns=(1, 1))                                  # another install of the tool
    binaryen_cache.cached(tool, ["-O3"], [b"a", b"b"], run)
    assert len(calls) == 5


def test_a_damaged_file_is_recomputed_and_replaced(cache_at, tool):
    run, calls = counting(b"\0asm good")
    binaryen_cache.cached(tool, [], [b"in"], run)
    (entry,) = cache_at.iterdir()
    entry.write_bytes(entry.read_bytes()[:-1] + b"X")  # one byte changed: the digest no longer matches
    binaryen_cache.clear_memory()
    assert binaryen_cache.cached(tool, [], [b"in"], run) == b"\0asm good"
    assert len(calls) == 2
    binaryen_cache.clear_memory()
    binaryen_cache.cached(tool, [], [b"in"], run)
    assert len(calls) == 2  # the replaced file serves again


@pytest.mark.parametrize("setting", ["off", ""])
def test_the_disk_cache_can_be_turned_off(monkeypatch, tmp_path, tool, setting):
    monkeypatch.setenv(binaryen_cache.ENV, setting)
    assert binaryen_cache.cache_dir() is None
    monkeypatch.delenv(binaryen_cache.ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert binaryen_cache.cache_dir() == tmp_path / "tvm-wasm" / "link"


def test_an_unwritable_cache_costs_only_speed(tmp_path, monkeypatch, tool):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(binaryen_cache.ENV, str(blocker / "cache"))
    binaryen_cache.clear_memory()
    run, calls = counting(b"\0asm")
    assert binaryen_cache.cached(tool, [], [b"in"], run) == b"\0asm"
    binaryen_cache.clear_memory()


def test_linking_again_runs_no_binaryen_and_gives_the_same_module(binaryen, c_modules, cache_at, monkeypatch):
    first = link(c_modules["defined"], target="host", pools=2)
    runs = binaryen_cache.stats()["runs"]
    binaryen_cache.clear_memory()  # a new process: only the disk cache remains
    spawned: list[str] = []
    real_run = tools.run

    def counting_run(command, *args, **kwargs):
        if any(name in " ".join(map(str, command)) for name in ("wasm-opt", "wasm-merge")):
            spawned.append(" ".join(map(str, command)))
        return real_run(command, *args, **kwargs)

    monkeypatch.setattr(tools, "run", counting_run)
    again = link(c_modules["defined"], target="host", pools=2)
    assert binaryen_cache.stats()["runs"] == runs and again.wasm == first.wasm
    assert spawned == []  # every Binaryen step, the hoisting pass's text print included, came from the cache
    monkeypatch.setattr(tools, "run", real_run)
    host = TvmHost(pools=2)
    guest = host.instantiate(c_modules["defined"], inline=True)
    region = host.create_region(RegionKind.OBJECT_ARENA, 1 << 17)
    assert host.call(guest, "fill_sum", region, 4096) & 0xFFFF_FFFF == expected_fill_sum(4096)


def test_node_tools_start_baseline_only_on_small_inputs(monkeypatch, tool, tmp_path):
    monkeypatch.setattr(tools, "binaryen", lambda name: tool)
    node = tools.command("wasm-opt", 1000)
    assert node[1:] == [*tools.NODE_FLAGS, tool] and node[0].endswith("node")
    assert tools.command("wasm-opt", tools.BASELINE_ONLY_BELOW)[1:] == [tool]  # large: both tiers pay off
    native = tmp_path / "wasm-opt"
    native.write_bytes(b"\x7fELF")
    monkeypatch.setattr(tools, "binaryen", lambda name: str(native))
    assert tools.command("wasm-opt", 1000) == [str(native)]
