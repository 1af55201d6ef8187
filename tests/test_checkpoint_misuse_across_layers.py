"""One rule for a checkpoint that is no longer live, on every layer: ``CheckpointError`` saying why.

Releasing a checkpoint twice, releasing or rolling back to one a rollback superseded, one released
when its region was destroyed, or one of another directory, host or instance: each raises
``CheckpointError`` (raw ABI: code 9; WIT: ``invalid-argument``) with the model's wording
(``tvm_wasm.core.checkpoints.ENDED``), and nothing changes: the live checkpoints and every byte stay
as they were. The layers: the model, ``TvmHost``'s Python API, ``GuestInstance``, the WIT path, and
the raw ABI from a guest (ids, which are unique in the process, so another host's id is refused too).
``tvm-guest.js`` follows the same rule in its checks page (``tests/guest/test_web_package.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "host"))
sys.path.insert(0, str(Path(__file__).parent / "component"))

from test_checkpoints_host import RAW_GUEST  # noqa: E402
from wit_guests import WitDirectory  # noqa: E402
from tvm_wasm import CheckpointError, Handle, RegionDirectory, RegionKind, TvmError, TvmHost  # noqa: E402
from tvm_wasm.core.checkpoints import ENDED  # noqa: E402
from tvm_wasm.guest import build_module  # noqa: E402
from tvm_wasm.guest.instance import GuestInstance  # noqa: E402

PAGE = 4096


def _model() -> RegionDirectory:
    return RegionDirectory()


def _host() -> TvmHost:
    return TvmHost(pools=1)


def _guest() -> GuestInstance:
    return GuestInstance(build_module(pools=1, max_pages=16))


def _wit() -> WitDirectory:
    return WitDirectory(TvmHost(pools=1))


LAYERS = {"model": _model, "host": _host, "guest": _guest, "wit": _wit}


def _close(d: object) -> None:
    close = getattr(d, "close", None)
    if close is not None:
        close()


def _live(d: object) -> list[int]:
    if isinstance(d, WitDirectory):
        return [c.id for c in d.host.checkpoints()]
    return [c.id for c in d.checkpoints()]  # type: ignore[attr-defined]


def _refused(d: object, call, why: str) -> None:  # type: ignore[no-untyped-def]
    """``call()`` raises CheckpointError (WIT: its invalid-argument) with ``why``, changing nothing."""
    region_ids = [1, 2]
    before = (_live(d), [d.read(Handle(r, d.region_info(r).generation, 0), 2 * PAGE) for r in region_ids])  # type: ignore[attr-defined]
    with pytest.raises(TvmError) as info:
        call()
    assert isinstance(info.value, CheckpointError) or type(info.value).__name__ == "InvalidArgument", info.value
    assert why in str(info.value), str(info.value)
    after = (_live(d), [d.read(Handle(r, d.region_info(r).generation, 0), 2 * PAGE) for r in region_ids])  # type: ignore[attr-defined]
    assert after == before


@pytest.mark.parametrize("name", list(LAYERS))
def test_a_checkpoint_that_is_not_live_is_refused_saying_why(name: str) -> None:
    d = LAYERS[name]()
    try:
        a = d.create_region(RegionKind.BLOB_ARENA, 2 * PAGE)  # type: ignore[attr-defined]
        b = d.create_region(RegionKind.BLOB_ARENA, 2 * PAGE)  # type: ignore[attr-defined]
        assert (a, b) == (1, 2)
        d.write(Handle(a, 1, 0), b"first")  # type: ignore[attr-defined]
        first = d.checkpoint([a, b])  # type: ignore[attr-defined]
        d.write(Handle(a, 1, 0), b"second")  # type: ignore[attr-defined]
        second = d.checkpoint([a])  # type: ignore[attr-defined]
        third = d.checkpoint([b])  # type: ignore[attr-defined]

        d.release_checkpoint(third)  # type: ignore[attr-defined]
        released = ENDED["released"].format(id=third.id)
        _refused(d, lambda: d.release_checkpoint(third), released)  # type: ignore[attr-defined]
        _refused(d, lambda: d.rollback(third), released)  # type: ignore[attr-defined]

        d.rollback(first)  # type: ignore[attr-defined]
        superseded = ENDED["superseded"].format(id=second.id, target=first.id)
        _refused(d, lambda: d.release_checkpoint(second), superseded)  # type: ignore[attr-defined]
        _refused(d, lambda: d.rollback(second), superseded)  # type: ignore[attr-defined]
        assert _live(d) == [first.id]

        c = d.create_region(RegionKind.BLOB_ARENA, PAGE)  # type: ignore[attr-defined]
        gone = d.checkpoint([c])  # type: ignore[attr-defined]
        d.destroy_region(c)  # type: ignore[attr-defined]
        destroyed = ENDED["destroyed"].format(id=gone.id, region=c)
        _refused(d, lambda: d.release_checkpoint(gone), destroyed)  # type: ignore[attr-defined]
        _refused(d, lambda: d.rollback(gone), destroyed)  # type: ignore[attr-defined]

        other = LAYERS[name]()
        try:
            theirs_region = other.create_region(RegionKind.BLOB_ARENA, PAGE)  # type: ignore[attr-defined]
            theirs = other.checkpoint([theirs_region])  # type: ignore[attr-defined]
            foreign = f"checkpoint {theirs.id} is not a checkpoint of this"
            _refused(d, lambda: d.release_checkpoint(theirs), foreign)  # type: ignore[attr-defined]
            _refused(d, lambda: d.rollback(theirs), foreign)  # type: ignore[attr-defined]
            assert _live(other) == [theirs.id]  # theirs is untouched too
        finally:
            _close(other)

        d.release_checkpoint(first)  # type: ignore[attr-defined]
        assert _live(d) == []
    finally:
        _close(d)


def test_raw_abi_answers_9_for_every_checkpoint_that_is_not_live_and_changes_nothing() -> None:
    with TvmHost(pools=1) as host, TvmHost(pools=1) as neighbour:
        a = host.create_region(RegionKind.BLOB_ARENA, 2 * PAGE)
        guest = host.instantiate(RAW_GUEST)

        def call(name: str, *args: int) -> int | None:
            return host.call(guest, name, *args)  # type: ignore[return-value]

        handle = call("alloc", a, 16)
        assert call("add", a) == 0
        first = call("checkpoint")
        assert call("add", a) == 0
        second = call("checkpoint")
        call("store", handle, 5)
        # another host's live checkpoint: ids are unique in the process, so its id is none of ours
        theirs = neighbour.checkpoint([neighbour.create_region(RegionKind.BLOB_ARENA, PAGE)])
        assert theirs.id not in (first, second)
        for refused in (theirs.id, second + 1000):
            assert call("release", refused) == 9 and call("last_error") == 9
            assert call("rollback", refused) == 9 and call("last_error") == 9
        with pytest.raises(CheckpointError, match=f"checkpoint {theirs.id} is not a checkpoint of this TvmHost"):
            host.checkpoint_by_id(theirs.id)
        assert [c.id for c in neighbour.checkpoints()] == [theirs.id]
        assert call("release", second) == 0
        assert call("release", second) == 9 and call("last_error") == 9  # released twice
        with pytest.raises(CheckpointError, match=ENDED["released"].format(id=second)):
            host.checkpoint_by_id(second)
        assert call("load", handle) == 5  # nothing rolled back
        assert [c.id for c in host.checkpoints()] == [first]
        assert call("rollback", first) == 0 and call("load", handle) == 0


def test_why_a_checkpoint_ended_is_kept_for_a_bounded_number() -> None:
    """A long-running loop (a game taking 60 checkpoints a second) keeps memory bounded: beyond the
    latest ``ENDED_KEPT`` the reason is generic, but still a ``CheckpointError``, never a success."""
    from tvm_wasm.core import checkpoints

    d = RegionDirectory()
    r = d.create_region(RegionKind.BLOB_ARENA, PAGE)
    oldest = d.checkpoint([r])
    d.release_checkpoint(oldest)
    for _ in range(checkpoints.ENDED_KEPT):
        d.release_checkpoint(d.checkpoint([r]))
    with pytest.raises(CheckpointError, match=f"checkpoint {oldest.id} is no longer live"):
        d.release_checkpoint(oldest)
    assert len(d._checkpoints._ended) == checkpoints.ENDED_KEPT
