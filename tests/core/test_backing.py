"""Unit tests for the backing stores: round trips, keys, deletion and, for the
file store, that every kind of damage to a spilled copy is refused."""

from __future__ import annotations

import errno
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from tvm_wasm.core import file_backing
from tvm_wasm.core.backing import BackingStore, MemoryBackingStore
from tvm_wasm.core.errors import BackingStoreError
from tvm_wasm.core.file_backing import HEADER_SIZE, MAGIC, FileBackingStore


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BackingStore:
    if request.param == "memory":
        return MemoryBackingStore()
    return FileBackingStore(tmp_path / "spill")


@pytest.fixture
def fstore(tmp_path: Path) -> FileBackingStore:
    return FileBackingStore(tmp_path / "spill")


def _payload(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def _temps(root: Path) -> list[str]:
    return sorted(name for name in os.listdir(root) if ".tmp-" in name)


# -- behaviour shared by both stores -------------------------------------------


def test_satisfies_protocol(store: BackingStore) -> None:
    assert isinstance(store, BackingStore)


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 65537, 8 * 1024 * 1024 + 3])
def test_round_trip(store: BackingStore, size: int) -> None:
    data = _payload(size, seed=size)
    store.spill(7, 3, data)
    loaded = store.load(7, 3)
    assert isinstance(loaded, bytes)
    assert loaded == data


def test_overwrite_same_key(store: BackingStore) -> None:
    store.spill(1, 1, b"first version, longer")
    store.spill(1, 1, b"second")
    assert store.load(1, 1) == b"second"


def test_separate_keys(store: BackingStore) -> None:
    store.spill(1, 1, b"a")
    store.spill(1, 2, b"b")
    store.spill(2, 1, b"c")
    assert (store.load(1, 1), store.load(1, 2), store.load(2, 1)) == (b"a", b"b", b"c")
    store.delete(1, 2)
    assert store.load(1, 1) == b"a"
    assert store.load(2, 1) == b"c"
    with pytest.raises(BackingStoreError):
        store.load(1, 2)


def test_load_missing(store: BackingStore) -> None:
    with pytest.raises(BackingStoreError, match="no spilled copy") as info:
        store.load(4, 9)
    assert info.value.region_id == 4
    assert info.value.generation == 9
    assert "region=4" in str(info.value) and "gen=9" in str(info.value)


def test_delete_and_noop_delete(store: BackingStore) -> None:
    store.spill(3, 0, b"xyz")
    store.delete(3, 0)
    with pytest.raises(BackingStoreError):
        store.load(3, 0)
    store.delete(3, 0)  # already gone: no error
    store.delete(60000, 60000)  # never existed: no error


def test_load_does_not_delete(store: BackingStore) -> None:
    store.spill(5, 5, b"keep me")
    assert store.load(5, 5) == b"keep me"
    assert store.load(5, 5) == b"keep me"


def test_spill_copies_mutable_input(store: BackingStore) -> None:
    data = bytearray(b"before")
    store.spill(1, 0, data)
    data[:] = b"after!"
    assert store.load(1, 0) == b"before"


# -- file store: inputs and basics ---------------------------------------------


def test_constructor_creates_root(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "c"
    store = FileBackingStore(str(root))
    assert root.is_dir()
    assert store.root == root
    assert isinstance(store.root, Path)
    assert str(root) in repr(store)
    assert repr(store).startswith("FileBackingStore(")


def test_file_naming(fstore: FileBackingStore) -> None:
    fstore.spill(12, 34, b"x")
    assert os.listdir(fstore.root) == ["region-12-gen-34.bin"]
    assert fstore.path_for(12, 34) == fstore.root / "region-12-gen-34.bin"


def test_header_layout(fstore: FileBackingStore) -> None:
    fstore.spill(513, 65535, b"hello")
    raw = fstore.path_for(513, 65535).read_bytes()
    assert len(raw) == HEADER_SIZE + 5
    magic, version, flags, region, gen, length = struct.unpack_from("<8sHHIIQ", raw)
    assert (magic, version, flags, region, gen, length) == (MAGIC, 1, 0, 513, 65535, 5)
    assert raw[HEADER_SIZE:] == b"hello"


@pytest.mark.parametrize(
    "data",
    [
        bytearray(b"\x00\x01\x02\xff"),
        memoryview(b"\x00\x01\x02\xff"),
        np.array([0, 1, 2, 255], dtype=np.uint8),
    ],
    ids=["bytearray", "memoryview", "numpy"],
)
def test_buffer_inputs(fstore: FileBackingStore, data: object) -> None:
    fstore.spill(1, 1, data)  # type: ignore[arg-type]
    assert fstore.load(1, 1) == b"\x00\x01\x02\xff"


def test_non_contiguous_and_wide_buffers(fstore: FileBackingStore) -> None:
    wide = np.arange(10, dtype=np.uint32)
    fstore.spill(1, 1, wide)  # type: ignore[arg-type]
    assert fstore.load(1, 1) == wide.tobytes()
    strided = np.arange(20, dtype=np.uint8)[::3]
    fstore.spill(1, 2, strided)  # type: ignore[arg-type]
    assert fstore.load(1, 2) == strided.tobytes()


def test_rejects_non_buffer(fstore: FileBackingStore) -> None:
    with pytest.raises(TypeError):
        fstore.spill(1, 1, "text")  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, 65536, 1 << 40, 1.0, "1", None, True])
@pytest.mark.parametrize("which", ["region", "generation"])
def test_rejects_bad_ids(fstore: FileBackingStore, bad: object, which: str) -> None:
    args = (bad, 0) if which == "region" else (0, bad)
    with pytest.raises(ValueError):
        fstore.spill(*args, b"x")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fstore.load(*args)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fstore.delete(*args)  # type: ignore[arg-type]
    assert os.listdir(fstore.root) == []


def test_accepts_boundary_and_numpy_ids(fstore: FileBackingStore) -> None:
    fstore.spill(0, 65535, b"a")
    fstore.spill(np.uint16(65535), np.int64(0), b"b")  # type: ignore[arg-type]
    assert fstore.load(0, 65535) == b"a"
    assert fstore.load(65535, 0) == b"b"


def test_files_persist_across_instances(tmp_path: Path) -> None:
    FileBackingStore(tmp_path).spill(9, 9, b"durable")
    assert FileBackingStore(tmp_path).load(9, 9) == b"durable"


# -- file store: corruption is always refused ----------------------------------


def _spilled(fstore: FileBackingStore, region: int = 2, gen: int = 5, size: int = 1000) -> tuple[Path, bytes]:
    fstore.spill(region, gen, _payload(size, seed=region * 100 + gen))
    path = fstore.path_for(region, gen)
    return path, path.read_bytes()


def _refused(fstore: FileBackingStore, match: str | None, region: int = 2, gen: int = 5) -> BackingStoreError:
    with pytest.raises(BackingStoreError, match=match) as info:
        fstore.load(region, gen)
    error = info.value
    assert error.region_id == region and error.generation == gen
    assert str(fstore.path_for(region, gen)) in str(error)
    return error


@pytest.mark.parametrize("keep", [0, 1, 8, HEADER_SIZE - 1])
def test_truncated_header(fstore: FileBackingStore, keep: int) -> None:
    path, raw = _spilled(fstore)
    path.write_bytes(raw[:keep])
    _refused(fstore, "truncated")


@pytest.mark.parametrize("cut", [1, 500, 1000])
def test_truncated_payload(fstore: FileBackingStore, cut: int) -> None:
    path, raw = _spilled(fstore)
    path.write_bytes(raw[:-cut])
    _refused(fstore, "truncated")


@pytest.mark.parametrize("position", [0, 1, 499, 999])
def test_flipped_payload_byte(fstore: FileBackingStore, position: int) -> None:
    path, raw = _spilled(fstore)
    damaged = bytearray(raw)
    damaged[HEADER_SIZE + position] ^= 0x01
    path.write_bytes(damaged)
    _refused(fstore, "checksum")


@pytest.mark.parametrize("position", range(HEADER_SIZE))
def test_flipped_header_byte(fstore: FileBackingStore, position: int) -> None:
    path, raw = _spilled(fstore)
    damaged = bytearray(raw)
    damaged[position] ^= 0x01
    path.write_bytes(damaged)
    _refused(fstore, None)


def test_header_field_change_with_matching_length_still_caught(fstore: FileBackingStore) -> None:
    # Rewrite the length field and trim the file to match: only the checksum can notice.
    path, raw = _spilled(fstore)
    damaged = bytearray(raw[:-1])
    struct.pack_into("<Q", damaged, 20, 999)
    path.write_bytes(damaged)
    _refused(fstore, "checksum")


def test_wrong_magic(fstore: FileBackingStore) -> None:
    path, raw = _spilled(fstore)
    path.write_bytes(b"NOTTVM!!" + raw[8:])
    _refused(fstore, "magic")


def test_unknown_version(fstore: FileBackingStore) -> None:
    path, raw = _spilled(fstore)
    damaged = bytearray(raw)
    struct.pack_into("<H", damaged, 8, 2)
    path.write_bytes(damaged)
    _refused(fstore, "version")


def test_mismatched_region(fstore: FileBackingStore) -> None:
    other, _ = _spilled(fstore, region=3, gen=5)
    _spilled(fstore, region=2, gen=5)
    os.replace(other, fstore.path_for(2, 5))
    _refused(fstore, "region=3, gen=5")


def test_mismatched_generation(fstore: FileBackingStore) -> None:
    other, _ = _spilled(fstore, region=2, gen=6)
    os.replace(other, fstore.path_for(2, 5))  # no copy of (2, 5) existed before
    _refused(fstore, "region=2, gen=6")


@pytest.mark.parametrize("extra", [b"\x00", b"garbage" * 100])
def test_trailing_garbage(fstore: FileBackingStore, extra: bytes) -> None:
    path, raw = _spilled(fstore)
    path.write_bytes(raw + extra)
    _refused(fstore, "trailing")


def test_empty_payload_corruption(fstore: FileBackingStore) -> None:
    path, raw = _spilled(fstore, size=0)
    assert len(raw) == HEADER_SIZE
    path.write_bytes(raw + b"\x00")
    _refused(fstore, "trailing")


def test_raw_payload_without_header(fstore: FileBackingStore) -> None:
    path = fstore.path_for(2, 5)
    path.write_bytes(_payload(5000))
    _refused(fstore, "magic")


def test_directory_in_place_of_file(fstore: FileBackingStore) -> None:
    fstore.path_for(2, 5).mkdir()
    _refused(fstore, "cannot read")


# -- file store: failures while spilling ----------------------------------------


def _fail(*_args: object, **_kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device (injected)")


@pytest.mark.parametrize("target", ["replace", "fsync", "write"])
def test_failed_spill_keeps_previous_copy(
    fstore: FileBackingStore, monkeypatch: pytest.MonkeyPatch, target: str
) -> None:
    fstore.spill(4, 2, b"previous copy")
    if target == "write":
        # Fail mid-way through writing the payload: the buffered writer reports ENOSPC.
        real_fdopen = os.fdopen

        class FullDisk:
            def __init__(self, stream):  # type: ignore[no-untyped-def]
                self._stream = stream
                self._writes = 0

            def __enter__(self):  # type: ignore[no-untyped-def]
                return self

            def __exit__(self, *exc):  # type: ignore[no-untyped-def]
                self._stream.close()

            def write(self, data):  # type: ignore[no-untyped-def]
                self._writes += 1
                if self._writes > 1:
                    self._stream.write(bytes(data)[: len(data) // 2])
                    _fail()
                return self._stream.write(data)

            def __getattr__(self, name):  # type: ignore[no-untyped-def]
                return getattr(self._stream, name)

        monkeypatch.setattr(file_backing.os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    else:
        monkeypatch.setattr(file_backing.os, target, _fail)

    with pytest.raises(BackingStoreError, match="cannot spill") as info:
        fstore.spill(4, 2, _payload(100_000))
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.region_id == 4 and info.value.generation == 2
    monkeypatch.undo()

    assert fstore.load(4, 2) == b"previous copy"
    assert _temps(fstore.root) == []


def test_failed_first_spill_leaves_nothing(fstore: FileBackingStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_backing.os, "replace", _fail)
    with pytest.raises(BackingStoreError):
        fstore.spill(4, 3, b"data")
    monkeypatch.undo()
    assert os.listdir(fstore.root) == []
    with pytest.raises(BackingStoreError, match="no spilled copy"):
        fstore.load(4, 3)


def test_unwritable_root(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(BackingStoreError, match="cannot create"):
        FileBackingStore(blocker / "sub")


# -- file store: stale temporary files --------------------------------------------


def _stale_temp(root: Path, region: int, gen: int, token: str = "0123456789abcdef") -> Path:
    path = root / f".region-{region}-gen-{gen}.bin.tmp-{token}"
    path.write_bytes(b"half-written junk")
    return path


def test_stale_temp_ignored_by_load_and_cleaned_by_spill(fstore: FileBackingStore) -> None:
    fstore.spill(1, 1, b"good")
    mine = _stale_temp(fstore.root, 1, 1)
    other_key = _stale_temp(fstore.root, 1, 2)
    assert fstore.load(1, 1) == b"good"
    with pytest.raises(BackingStoreError, match="no spilled copy"):
        fstore.load(1, 2)  # a temp file is never mistaken for a copy

    fstore.spill(1, 1, b"newer")
    assert not mine.exists()
    assert other_key.exists()  # only the spilled key's temps are touched
    assert fstore.load(1, 1) == b"newer"


def test_stale_temps_cleaned_on_construction(tmp_path: Path) -> None:
    FileBackingStore(tmp_path).spill(1, 1, b"good")
    stale = [_stale_temp(tmp_path, 1, 1), _stale_temp(tmp_path, 9, 0, "fedcba9876543210")]
    foreign = [
        tmp_path / "notes.txt",
        tmp_path / ".region-1-gen-1.bin.tmp-short",
        tmp_path / ".region-1-gen-1.bin.tmp-0123456789ABCDEF",
        tmp_path / "region-1-gen-1.bin.tmp-0123456789abcdef",
        tmp_path / ".other-1-gen-1.bin.tmp-0123456789abcdef",
    ]
    for path in foreign:
        path.write_bytes(b"not ours")
    # A directory with a temp-like name is not a file we wrote: leave it.
    (tmp_path / ".region-2-gen-2.bin.tmp-aaaaaaaaaaaaaaaa").mkdir()

    store = FileBackingStore(tmp_path)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in foreign)
    assert (tmp_path / ".region-2-gen-2.bin.tmp-aaaaaaaaaaaaaaaa").is_dir()
    assert store.load(1, 1) == b"good"


def test_successful_spills_leave_no_temps(fstore: FileBackingStore) -> None:
    for gen in range(5):
        fstore.spill(1, gen, _payload(10_000, gen))
        fstore.spill(1, gen, _payload(20_000, gen + 1))
    assert _temps(fstore.root) == []
    assert sorted(os.listdir(fstore.root)) == [f"region-1-gen-{gen}.bin" for gen in range(5)]
