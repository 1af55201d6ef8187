"""Crash safety of FileBackingStore under SIGKILL.

A forked child spills ever-newer payloads for a few (region, generation) keys
in a loop; the parent SIGKILLs it at random moments and then checks the root:
every final file loads, and its bytes are exactly the payload of one version,
either the one seen before the kill or one written in the killed round (never
a torn mix, never an older one). Payloads are a pure function of
(region, generation, version), so the child records nothing but the files.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from tvm_wasm.core.errors import BackingStoreError
from tvm_wasm.core.file_backing import HEADER_SIZE, FileBackingStore

REGIONS = 4
GENERATIONS = 3
VERSIONS_PER_ROUND = 1_000_000  # round k writes versions k*1e6, k*1e6+1, ...

_HEAD = struct.Struct("<8sIIQQ")  # magic, region, generation, version, body size
_HEAD_MAGIC = b"CRASHPL1"
_FINAL_RE = re.compile(r"region-(\d+)-gen-(\d+)\.bin")
_TEMP_RE = re.compile(r"\.region-(\d+)-gen-(\d+)\.bin\.tmp-[0-9a-f]{16}")


def _body_size(version: int, large: bool) -> int:
    rng = random.Random(version)
    if large:
        return rng.randrange(1 << 20, 3 << 20)
    roll = rng.random()
    if roll < 0.1:
        return 0
    if roll < 0.8:
        return rng.randrange(1, 64 << 10)
    return rng.randrange(64 << 10, 1 << 20)


def make_payload(region: int, generation: int, version: int, large: bool) -> bytes:
    """Deterministic, position- and version-dependent bytes, so any splice of two versions differs."""
    size = _body_size(version, large)
    seed = np.uint64((version * 0x100000001B3 + region * 0x10001 + generation) & (2**64 - 1))
    words = np.arange((size + 7) // 8, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    body = (words ^ seed).tobytes()[:size]
    return _HEAD.pack(_HEAD_MAGIC, region, generation, version, size) + body


def _writer(root: str, first_version: int, seed: int, large: bool, started=None) -> None:
    """Child: spill forever until killed (``started`` is set once it runs, so a busy machine's
    slow fork does not eat the kill window)."""
    store = FileBackingStore(root)
    if started is not None:
        started.set()
    rng = random.Random(seed)
    version = first_version
    while True:
        region, generation = rng.randrange(REGIONS), rng.randrange(GENERATIONS)
        store.spill(region, generation, make_payload(region, generation, version, large))
        version += 1


def verify_root(
    store: FileBackingStore, last_seen: dict[tuple[int, int], int], round_index: int, large: bool
) -> int:
    """Check every copy under ``store.root`` after a kill; return how many stale temp files there were.

    ``last_seen`` maps each key to the version found after the previous kill and is updated.
    """
    new_low, new_high = round_index * VERSIONS_PER_ROUND, (round_index + 1) * VERSIONS_PER_ROUND
    names = os.listdir(store.root)
    temps = 0
    present = set()
    for name in names:
        if _TEMP_RE.fullmatch(name):
            temps += 1
            continue
        match = _FINAL_RE.fullmatch(name)
        assert match, f"unexpected file {name!r} in the backing directory"
        key = (int(match[1]), int(match[2]))
        present.add(key)
        try:
            data = store.load(*key)
        except BackingStoreError as exc:
            raise AssertionError(f"copy of {key} does not load after the kill: {exc}") from exc
        assert len(data) >= _HEAD.size, f"copy of {key} is too short to be a payload"
        magic, region, generation, version, _size = _HEAD.unpack_from(data)
        assert magic == _HEAD_MAGIC and (region, generation) == key, f"copy of {key} holds another key's payload"
        previous = last_seen.get(key)
        assert version == previous or new_low <= version < new_high, (
            f"copy of {key} has version {version}: neither the previous one ({previous}) "
            f"nor one written in round {round_index}"
        )
        assert data == make_payload(region, generation, version, large), (
            f"copy of {key} claims version {version} but its bytes are not that version's payload"
        )
        last_seen[key] = version
    vanished = set(last_seen) - present
    assert not vanished, f"copies vanished after the kill: {sorted(vanished)}"
    return temps


def _crash_rounds(
    root: Path, rounds: int, large: bool, seed: int, last_seen: dict[tuple[int, int], int], first_round: int = 0
) -> tuple[int, int]:
    """Run ``rounds`` fork/kill/verify cycles; return (stale temps seen, versions changed)."""
    rng = random.Random(seed)
    context = multiprocessing.get_context("fork")
    reader = FileBackingStore(root)  # made before any crash, so it never cleans temps itself
    temps_seen = changes = 0
    for round_index in range(first_round, first_round + rounds):
        started = context.Event()
        child = context.Process(
            target=_writer, args=(str(root), round_index * VERSIONS_PER_ROUND, rng.getrandbits(32), large, started)
        )
        child.start()
        started.wait(10)
        time.sleep(rng.uniform(0.0, 0.05))
        assert child.is_alive(), f"writer died on its own with exit code {child.exitcode}"
        child.kill()
        child.join(5)
        assert child.exitcode == -9

        before = dict(last_seen)
        temps_seen += verify_root(reader, last_seen, round_index, large)
        changes += sum(1 for key, version in last_seen.items() if before.get(key) != version)

        # A new store cleans up what the crash left, without touching the copies.
        FileBackingStore(root)
        leftovers = [name for name in os.listdir(root) if not _FINAL_RE.fullmatch(name)]
        assert leftovers == [], f"stale files survive construction: {leftovers}"
        assert verify_root(reader, last_seen, round_index, large) == 0
    return temps_seen, changes


@pytest.mark.parametrize("large", [False, True], ids=["mixed-sizes", "large-payloads"])
def test_sigkill_never_leaves_a_torn_copy(tmp_path: Path, large: bool) -> None:
    # Kill timing depends on how busy the machine is, so keep killing in batches until the
    # run has meaning (the writer made progress, and for large payloads a kill landed
    # mid-spill), up to a cap; every round is verified either way.
    last_seen: dict[tuple[int, int], int] = {}
    temps_seen = changes = rounds = 0
    while rounds < 150 and (changes < 12 or (large and temps_seen < 1)):
        temps, changed = _crash_rounds(tmp_path, 10, large, 1234 + large + rounds, last_seen, first_round=rounds)
        temps_seen, changes, rounds = temps_seen + temps, changes + changed, rounds + 10
    assert changes >= 12, f"the writer barely wrote anything ({changes} new versions in {rounds} rounds)"
    if large:
        assert temps_seen >= 1, f"no kill landed in the middle of a spill in {rounds} rounds"


# -- self-checks: the verification above can fail ---------------------------------


def test_self_check_torn_file_is_rejected(tmp_path: Path) -> None:
    store = FileBackingStore(tmp_path)
    store.spill(1, 2, make_payload(1, 2, 10, large=True))
    old = store.path_for(1, 2).read_bytes()
    store.spill(1, 2, make_payload(1, 2, 11, large=False))
    new = store.path_for(1, 2).read_bytes()
    assert len(old) > len(new) > 2 * HEADER_SIZE
    cut = len(new) // 2

    # What a naive in-place writer killed mid-write could leave behind.
    torn_files = {
        "prefix of the new copy": new[:cut],
        "header only": new[:HEADER_SIZE],
        "new bytes over the old file": new[:cut] + old[cut:],
        "new bytes over the old file, same length": new[:cut] + old[cut : len(new)],
    }
    for what, torn in torn_files.items():
        store.path_for(1, 2).write_bytes(torn)
        with pytest.raises(BackingStoreError):
            store.load(1, 2)
            pytest.fail(f"{what} was accepted")
        with pytest.raises(AssertionError, match="does not load"):
            verify_root(store, {}, 0, large=True)


def test_self_check_wrong_version_bytes_are_caught(tmp_path: Path) -> None:
    store = FileBackingStore(tmp_path)
    payload = bytearray(make_payload(3, 1, 7, large=False))
    payload[-1] ^= 0xFF  # a valid file holding bytes that are no version's payload
    store.spill(3, 1, payload)
    with pytest.raises(AssertionError, match="not that version's payload"):
        verify_root(store, {}, 0, large=False)


def test_self_check_rollback_and_loss_are_caught(tmp_path: Path) -> None:
    store = FileBackingStore(tmp_path)
    store.spill(0, 0, make_payload(0, 0, 5, large=False))
    with pytest.raises(AssertionError, match="neither the previous one"):
        verify_root(store, {(0, 0): 1_000_007}, 1, large=False)  # an older version reappeared
    store.delete(0, 0)
    with pytest.raises(AssertionError, match="vanished"):
        verify_root(store, {(0, 0): 5}, 0, large=False)


def test_payloads_are_distinct_per_version() -> None:
    a = make_payload(1, 1, 100, large=False)
    b = make_payload(1, 1, 101, large=False)
    assert a != b and a == make_payload(1, 1, 100, large=False)
    big = make_payload(2, 0, 5, large=True)
    assert (1 << 20) <= len(big) - _HEAD.size < (3 << 20)
