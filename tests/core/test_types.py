"""Unit tests for region kinds, residency, placement policies, value types and errors."""

from __future__ import annotations

import dataclasses

import pytest

from tvm_wasm.core import errors
from tvm_wasm.core.errors import (
    ERRORS_BY_CODE,
    AllocationFailed,
    BackingStoreError,
    GuestMemoryError,
    NotResident,
    OutOfBounds,
    Pinned,
    PolicyViolation,
    RegionNotFound,
    StaleHandle,
    TvmError,
    UnsupportedAllocator,
    error_for_code,
)
from tvm_wasm.core.handle import Handle
from tvm_wasm.core.types import (
    EvictionReport,
    HandleRemap,
    PlacementPolicy,
    RegionInfo,
    RegionKind,
    RegionMetrics,
    Residency,
)


# -- RegionKind ----------------------------------------------------------------
def test_region_kind_discriminants_follow_declaration_order() -> None:
    assert [(k.name, int(k)) for k in RegionKind] == [
        ("HOT_HEAP", 0),
        ("OBJECT_ARENA", 1),
        ("BLOB_ARENA", 2),
        ("PAGE_STORE", 3),
        ("SCRATCH", 4),
        ("DEVICE_STATE", 5),
        ("CODE_CACHE", 6),
    ]


def test_region_kind_from_int_and_invalid_values() -> None:
    assert RegionKind(3) is RegionKind.PAGE_STORE
    with pytest.raises(ValueError):
        RegionKind(7)
    with pytest.raises(ValueError):
        RegionKind(-1)


# -- Residency -----------------------------------------------------------------
def test_residency_values() -> None:
    assert [(r.name, int(r)) for r in Residency] == [("HOT", 0), ("WARM", 1), ("COLD", 2), ("EXTERNAL", 3)]


@pytest.mark.parametrize(
    ("residency", "resident"),
    [(Residency.HOT, True), (Residency.WARM, True), (Residency.COLD, False), (Residency.EXTERNAL, False)],
)
def test_is_resident(residency: Residency, resident: bool) -> None:
    assert residency.is_resident is resident


# -- PlacementPolicy -----------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "initial", "pinnable", "spillable"),
    [
        (RegionKind.HOT_HEAP, Residency.HOT, True, False),
        (RegionKind.CODE_CACHE, Residency.HOT, True, False),
        (RegionKind.DEVICE_STATE, Residency.HOT, True, False),
        (RegionKind.OBJECT_ARENA, Residency.HOT, False, True),
        (RegionKind.BLOB_ARENA, Residency.HOT, False, True),
        (RegionKind.PAGE_STORE, Residency.WARM, False, True),
        (RegionKind.SCRATCH, Residency.HOT, False, False),
    ],
)
def test_policy_for_kind_table(kind: RegionKind, initial: Residency, pinnable: bool, spillable: bool) -> None:
    policy = PlacementPolicy.for_kind(kind)
    assert policy.initial_residency is initial
    assert policy.pinnable is pinnable
    assert policy.spillable is spillable
    assert PlacementPolicy.for_kind(int(kind)) == policy


def test_policy_for_kind_covers_every_kind() -> None:
    assert {k for k in RegionKind if PlacementPolicy.for_kind(k)} == set(RegionKind)


def test_policy_for_unknown_kind_raises() -> None:
    with pytest.raises(ValueError):
        PlacementPolicy.for_kind(7)  # type: ignore[arg-type]


def test_policy_defaults() -> None:
    policy = PlacementPolicy()
    assert (policy.initial_residency, policy.pinnable, policy.spillable) == (Residency.HOT, False, True)


@pytest.mark.parametrize("initial", [Residency.COLD, Residency.EXTERNAL])
def test_policy_must_start_resident(initial: Residency) -> None:
    with pytest.raises(ValueError, match=initial.name):
        PlacementPolicy(initial)


def test_policy_is_frozen() -> None:
    policy = PlacementPolicy.for_kind(RegionKind.HOT_HEAP)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.spillable = True  # type: ignore[misc]
    assert PlacementPolicy.for_kind(RegionKind.HOT_HEAP).spillable is False


# -- value types ---------------------------------------------------------------
def test_region_metrics_default_to_zero() -> None:
    m = RegionMetrics()
    assert dataclasses.astuple(m) == (0, 0, 0, 0, 0, 0, 0, 0)
    assert [f.name for f in dataclasses.fields(m)] == [
        "allocations",
        "bytes_allocated",
        "bytes_read",
        "bytes_written",
        "faults",
        "promotions",
        "demotions",
        "bytes_discarded",
    ]


def test_region_info_fields() -> None:
    info = RegionInfo(3, 2, RegionKind.BLOB_ARENA, 64, 8, Residency.WARM, False)
    assert (info.id, info.generation, info.kind, info.capacity, info.used, info.residency, info.pinned) == (
        3,
        2,
        RegionKind.BLOB_ARENA,
        64,
        8,
        Residency.WARM,
        False,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.used = 9  # type: ignore[misc]


def test_eviction_report_fields() -> None:
    report = EvictionReport(bytes_freed=128, regions_spilled=2, target_met=False)
    assert (report.bytes_freed, report.regions_spilled, report.target_met) == (128, 2, False)


class TestHandleRemap:
    remap = HandleRemap(region_id=4, old_generation=7, new_generation=8, mapping={0: 0, 32: 8, 64: 24})

    def test_migrates_live_block_starts(self) -> None:
        assert self.remap.migrate(Handle(4, 7, 32)) == Handle(4, 8, 8)
        assert self.remap.migrate(Handle(4, 7, 0)) == Handle(4, 8, 0)
        assert self.remap.migrate(Handle(4, 7, 64)) == Handle(4, 8, 24)

    @pytest.mark.parametrize(
        "handle",
        [
            Handle(5, 7, 32),  # another region
            Handle(4, 8, 32),  # already the new generation
            Handle(4, 6, 32),  # an older generation
            Handle(4, 7, 33),  # inside a block, not its start
            Handle(4, 7, 16),  # not a live block
        ],
    )
    def test_returns_none_for_anything_else(self, handle: Handle) -> None:
        assert self.remap.migrate(handle) is None

    def test_empty_mapping_migrates_nothing(self) -> None:
        assert HandleRemap(1, 1, 2).migrate(Handle(1, 1, 0)) is None


# -- errors --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (RegionNotFound, 1),
        (StaleHandle, 2),
        (OutOfBounds, 3),
        (NotResident, 4),
        (AllocationFailed, 5),
        (Pinned, 6),
        (GuestMemoryError, 7),
        (PolicyViolation, 9),
        (UnsupportedAllocator, 9),
        (BackingStoreError, 9),
        (TvmError, 9),
    ],
)
def test_error_codes(cls: type[TvmError], code: int) -> None:
    assert cls.code == code
    err = cls("boom")
    assert err.code == code
    assert isinstance(err, TvmError)
    assert isinstance(err, Exception)


def test_error_classes_are_distinct() -> None:
    classes = [
        RegionNotFound,
        StaleHandle,
        OutOfBounds,
        NotResident,
        AllocationFailed,
        Pinned,
        GuestMemoryError,
        PolicyViolation,
        UnsupportedAllocator,
        BackingStoreError,
    ]
    for a in classes:
        for b in classes:
            if a is not b:
                assert not issubclass(a, b)


def test_message_renders_full_context() -> None:
    err = OutOfBounds("access outside", region_id=3, generation=2, offset=0x40, length=8, capacity=64)
    assert str(err) == "access outside [region=3, gen=2, offset=0x40, len=8, capacity=64]"
    assert (err.message, err.region_id, err.generation, err.offset, err.length, err.capacity) == (
        "access outside",
        3,
        2,
        0x40,
        8,
        64,
    )


def test_message_without_context_is_bare() -> None:
    err = StaleHandle("stale")
    assert str(err) == "stale"
    assert (err.region_id, err.generation, err.offset, err.length, err.capacity) == (None,) * 5


def test_message_renders_only_given_fields_and_zero_values() -> None:
    assert str(NotResident("gone", region_id=1)) == "gone [region=1]"
    assert str(OutOfBounds("x", offset=0, length=0)) == "x [offset=0x0, len=0]"
    assert str(StaleHandle("s", generation=65535, capacity=1)) == "s [gen=65535, capacity=1]"


def test_with_context_merges_and_keeps_type() -> None:
    err = AllocationFailed("full", length=16, capacity=8)
    richer = err.with_context(region_id=2, generation=5, length=None)
    assert type(richer) is AllocationFailed
    assert richer.code == 5
    assert (richer.region_id, richer.generation, richer.length, richer.capacity) == (2, 5, 16, 8)
    assert str(richer) == "full [region=2, gen=5, len=16, capacity=8]"
    # the original is untouched
    assert err.region_id is None


def test_with_context_overrides_with_given_values() -> None:
    err = OutOfBounds("x", region_id=1, offset=4)
    assert err.with_context(region_id=9).region_id == 9
    assert err.with_context(region_id=9).offset == 4


@pytest.mark.parametrize("code", [1, 2, 3, 4, 5, 6, 7])
def test_error_for_code_builds_typed_errors(code: int) -> None:
    err = error_for_code(code, "raw failure", region_id=3, offset=8)
    assert err.code == code
    assert type(err) is ERRORS_BY_CODE[code]
    assert str(err) == "raw failure [region=3, offset=0x8]"


@pytest.mark.parametrize("code", [0, 9, 42])
def test_error_for_unknown_code_is_generic(code: int) -> None:
    err = error_for_code(code, "other")
    assert type(err) is TvmError
    assert err.code == 9


def test_errors_by_code_table() -> None:
    assert ERRORS_BY_CODE == {
        1: RegionNotFound,
        2: StaleHandle,
        3: OutOfBounds,
        4: NotResident,
        5: AllocationFailed,
        6: Pinned,
        7: GuestMemoryError,
        8: errors.ReadOnly,
    }
    assert errors.ERRORS_BY_CODE is ERRORS_BY_CODE


def test_errors_can_be_raised_and_caught_as_tvm_error() -> None:
    with pytest.raises(TvmError) as info:
        raise Pinned("pinned", region_id=4)
    assert info.value.code == 6
    assert "region=4" in str(info.value)
