"""Every rename-into-place is durable: file fsync, then rename, then a directory fsync.

The order is observed by instrumenting ``os.fsync`` and ``os.replace``: a
directory fsync before the rename (or none) would let a power failure lose the
rename, and no test would notice otherwise.
"""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

from tvm_wasm.core.allocators import Bump
from tvm_wasm.core.directory import RegionDirectory
from tvm_wasm.core.file_backing import FileBackingStore
from tvm_wasm.core.types import RegionKind
from tvm_wasm.guest import build_module

PACKAGE = Path(__file__).resolve().parents[2] / "tvm_wasm"


@pytest.fixture
def events(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """What was fsynced (a file or a directory, by path) and renamed, in order."""
    log: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        real_fsync(fd)
        log.append(("fsync", kind, path))

    def replace(src: object, dst: object) -> None:
        real_replace(src, dst)
        log.append(("replace", os.path.abspath(os.fspath(src)), os.path.abspath(os.fspath(dst))))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return log


def assert_durable_rename(log: list[tuple[str, ...]], final: Path) -> None:
    renames = [i for i, e in enumerate(log) if e[0] == "replace" and e[2] == str(final)]
    assert len(renames) == 1, log
    at = renames[0]
    temp = log[at][1]
    assert ("fsync", "file", temp) in log[:at], f"the temporary file is not fsynced before the rename: {log}"
    assert ("fsync", "dir", str(final.parent)) in log[at + 1 :], f"no directory fsync after the rename: {log}"


def test_file_store_spill_fsyncs_file_renames_then_fsyncs_directory(tmp_path: Path, events) -> None:
    store = FileBackingStore(tmp_path / "spill")
    store.spill(3, 7, b"payload")
    assert_durable_rename(events, store.path_for(3, 7))
    assert store.load(3, 7) == b"payload"


def test_snapshot_region_fsyncs_directory_after_rename(tmp_path: Path, events) -> None:
    directory = RegionDirectory()
    r = directory.create_region(RegionKind.BLOB_ARENA, 64, allocator=Bump())
    target = tmp_path / "snap.bin"
    directory.snapshot_region(r, target)
    assert_durable_rename(events, target)
    assert target.read_bytes() == bytes(64)


def test_host_snapshot_region_fsyncs_directory_after_rename(tmp_path: Path, events) -> None:
    from tvm_wasm.host.tvm_host import TvmHost

    host = TvmHost(pools=1)
    r = host.create_region(RegionKind.BLOB_ARENA, 64)
    host.write(host.alloc(r, 4), b"abcd")
    target = tmp_path / "host-snap.bin"
    host.snapshot_region(r, target)
    assert_durable_rename(events, target)
    assert target.read_bytes()[:4] == b"abcd"


def test_guest_module_save_is_durable(tmp_path: Path, events) -> None:
    target = tmp_path / "out" / "guest.wasm"
    build_module(pools=1, max_pages=4).save(target)
    assert_durable_rename(events, target)
    assert target.read_bytes()[:4] == b"\0asm"


def test_no_rename_outside_the_durable_helper() -> None:
    """A new rename-into-place anywhere in the package must go through core.durable."""
    offenders = []
    for source in PACKAGE.rglob("*.py"):
        if source.name == "durable.py":
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if node.func.attr in ("replace", "rename", "renames") and isinstance(owner, ast.Name) and owner.id == "os":
                    offenders.append(f"{source.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == [], f"use tvm_wasm.core.durable.replace_durably: {offenders}"
