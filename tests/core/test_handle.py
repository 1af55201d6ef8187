"""Unit tests for Handle: packing layout, validation, NULL, rendering and generations that never wrap."""

from __future__ import annotations

import dataclasses

import pytest

from tvm_wasm.core.handle import U16_MAX, U32_MAX, U64_MAX, Handle, next_generation


# -- packing -------------------------------------------------------------------
def test_pack_puts_id_generation_offset_in_their_bit_ranges() -> None:
    h = Handle(0x1234, 0x5678, 0x9ABCDEF0)
    assert h.pack() == 0x1234_5678_9ABC_DEF0
    assert h.pack() >> 48 == 0x1234
    assert (h.pack() >> 32) & 0xFFFF == 0x5678
    assert h.pack() & 0xFFFF_FFFF == 0x9ABCDEF0


@pytest.mark.parametrize(
    ("fields", "packed"),
    [
        ((0, 0, 0), 0),
        ((1, 0, 0), 1 << 48),
        ((0, 1, 0), 1 << 32),
        ((0, 0, 1), 1),
        ((1, 1, 0), (1 << 48) | (1 << 32)),
        ((U16_MAX, U16_MAX, U32_MAX), U64_MAX),
        ((U16_MAX, 0, 0), 0xFFFF_0000_0000_0000),
        ((0, U16_MAX, 0), 0x0000_FFFF_0000_0000),
        ((0, 0, U32_MAX), 0x0000_0000_FFFF_FFFF),
    ],
)
def test_pack_and_unpack_are_exact_inverses(fields: tuple[int, int, int], packed: int) -> None:
    h = Handle(*fields)
    assert h.pack() == packed
    assert Handle.unpack(packed) == h
    assert Handle.unpack(h.pack()) == h
    assert (Handle.unpack(packed).region_id, Handle.unpack(packed).generation, Handle.unpack(packed).offset) == fields


def test_unpack_field_values() -> None:
    h = Handle.unpack(0x0003_0002_0000_0010)
    assert (h.region_id, h.generation, h.offset) == (3, 2, 16)


def test_unpack_reads_negative_values_as_i64_bit_patterns() -> None:
    h = Handle(0xFFFF, 1, 7)
    assert h.pack() >= 1 << 63
    signed = h.to_i64()
    assert signed < 0
    assert signed == h.pack() - (1 << 64)
    assert Handle.unpack(signed) == h
    assert Handle.unpack(-1) == Handle(U16_MAX, U16_MAX, U32_MAX)
    assert Handle.unpack(-(1 << 63)) == Handle(0x8000, 0, 0)


def test_to_i64_is_the_plain_value_below_the_sign_bit() -> None:
    h = Handle(0x7FFF, 0xFFFF, 0xFFFF_FFFF)
    assert h.to_i64() == h.pack() == (1 << 63) - 1
    assert Handle(1, 1, 0).to_i64() == (1 << 48) | (1 << 32)


@pytest.mark.parametrize("packed", [1 << 64, U64_MAX + 1, 1 << 70, -(1 << 63) - 1, -(1 << 64)])
def test_unpack_rejects_values_outside_64_bits(packed: int) -> None:
    with pytest.raises(ValueError, match="64 bits"):
        Handle.unpack(packed)


@pytest.mark.parametrize("packed", [1.0, "1", None, True, b"\x00"])
def test_unpack_rejects_non_ints(packed: object) -> None:
    with pytest.raises(TypeError):
        Handle.unpack(packed)  # type: ignore[arg-type]


# -- field validation ----------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "name"),
    [
        ((-1, 1, 0), "region_id"),
        ((U16_MAX + 1, 1, 0), "region_id"),
        ((1, -1, 0), "generation"),
        ((1, U16_MAX + 1, 0), "generation"),
        ((1, 1, -1), "offset"),
        ((1, 1, U32_MAX + 1), "offset"),
        ((1, 1, 1 << 40), "offset"),
    ],
)
def test_out_of_range_fields_raise_value_error(fields: tuple[int, int, int], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        Handle(*fields)


@pytest.mark.parametrize("fields", [(1.0, 1, 0), (1, "1", 0), (1, 1, None), (True, 1, 0), (1, 1, False)])
def test_non_int_fields_raise_type_error(fields: tuple[object, object, object]) -> None:
    with pytest.raises(TypeError):
        Handle(*fields)  # type: ignore[arg-type]


def test_boundary_fields_are_accepted() -> None:
    h = Handle(U16_MAX, U16_MAX, U32_MAX)
    assert (h.region_id, h.generation, h.offset) == (65535, 65535, 0xFFFF_FFFF)


def test_handle_is_frozen() -> None:
    h = Handle(1, 1, 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.offset = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        h.generation = 2  # type: ignore[misc]
    assert h == Handle(1, 1, 0)


def test_handles_compare_and_hash_by_value() -> None:
    assert Handle(1, 2, 3) == Handle(1, 2, 3)
    assert Handle(1, 2, 3) != Handle(1, 2, 4)
    assert Handle(1, 2, 3) != Handle(1, 3, 3)
    assert Handle(1, 2, 3) != Handle(2, 2, 3)
    assert len({Handle(1, 2, 3), Handle(1, 2, 3), Handle(1, 2, 4)}) == 2


def test_with_offset_keeps_region_and_generation() -> None:
    h = Handle(4, 9, 0)
    moved = h.with_offset(128)
    assert moved == Handle(4, 9, 128)
    assert h.offset == 0
    with pytest.raises(ValueError):
        h.with_offset(U32_MAX + 1)


# -- NULL ----------------------------------------------------------------------
def test_null_is_all_zeros() -> None:
    assert Handle.NULL == Handle(0, 0, 0)
    assert Handle.NULL.pack() == 0
    assert Handle.NULL.to_i64() == 0
    assert Handle.unpack(0) == Handle.NULL
    assert Handle.NULL.is_null


@pytest.mark.parametrize("fields", [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0)])
def test_is_null_only_when_every_field_is_zero(fields: tuple[int, int, int]) -> None:
    assert not Handle(*fields).is_null


# -- rendering -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ((1, 1, 0), "r1@1+0"),
        ((3, 7, 4096), "r3@7+4096"),
        ((65535, 65535, U32_MAX), "r65535@65535+4294967295"),
        ((0, 0, 0), "<null>"),
        ((0, 0, 5), "r0@0+5"),
    ],
)
def test_str(fields: tuple[int, int, int], text: str) -> None:
    assert str(Handle(*fields)) == text


def test_repr_shows_generation_and_hex_offset() -> None:
    assert repr(Handle(2, 5, 255)) == "Handle(r2@gen5+0xff)"


# -- generations ---------------------------------------------------------------
@pytest.mark.parametrize(("gen", "following"), [(1, 2), (2, 3), (100, 101), (65534, 65535)])
def test_next_generation(gen: int, following: int) -> None:
    assert next_generation(gen) == following


@pytest.mark.parametrize("gen", [0, U16_MAX, U16_MAX + 1, -1])
def test_generations_never_wrap(gen: int) -> None:
    """65535 is the last generation: there is no successor to wrap to (the directory refuses first)."""
    with pytest.raises(OverflowError):
        next_generation(gen)


def test_generations_visit_1_to_65535_once_and_never_0() -> None:
    gen, seen = 1, {1}
    while gen < U16_MAX:
        gen = next_generation(gen)
        assert gen not in seen and gen != 0
        seen.add(gen)
    assert seen == set(range(1, U16_MAX + 1))


def test_live_handles_never_pack_to_zero() -> None:
    # a live handle has generation >= 1, so its packed form is never the 0 sentinel
    for gen in (1, 2, U16_MAX):
        assert Handle(0, gen, 0).pack() != 0
