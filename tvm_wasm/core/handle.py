"""Generation-checked 64-bit handles: the only way a guest names bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

U16_MAX = 0xFFFF
U32_MAX = 0xFFFF_FFFF
U64_MAX = 0xFFFF_FFFF_FFFF_FFFF


@dataclass(frozen=True, slots=True)
class Handle:
    """(region id, generation, offset) packed as region<<48 | gen<<32 | offset."""

    region_id: int
    generation: int
    offset: int

    NULL: ClassVar[Handle]

    def __post_init__(self) -> None:
        _check_range("region_id", self.region_id, U16_MAX)
        _check_range("generation", self.generation, U16_MAX)
        _check_range("offset", self.offset, U32_MAX)

    def pack(self) -> int:
        """The unsigned 64-bit form the raw ABI passes around."""
        return (self.region_id << 48) | (self.generation << 32) | self.offset

    @classmethod
    def unpack(cls, packed: int) -> Handle:
        """Inverse of :meth:`pack`; negative values are read as i64 bit patterns."""
        if not isinstance(packed, int) or isinstance(packed, bool):
            raise TypeError(f"packed handle must be an int, not {type(packed).__name__}")
        if packed < 0:
            if packed < -(1 << 63):
                raise ValueError(f"packed handle {packed} does not fit in 64 bits")
            packed &= U64_MAX
        if packed > U64_MAX:
            raise ValueError(f"packed handle {packed:#x} does not fit in 64 bits")
        return cls(packed >> 48, (packed >> 32) & U16_MAX, packed & U32_MAX)

    def to_i64(self) -> int:
        """The signed reinterpretation wasm passes as an ``i64``."""
        packed = self.pack()
        return packed - (1 << 64) if packed >= (1 << 63) else packed

    @property
    def is_null(self) -> bool:
        return self.region_id == 0 and self.generation == 0 and self.offset == 0

    def with_offset(self, offset: int) -> Handle:
        """The same region and generation at another offset."""
        return Handle(self.region_id, self.generation, offset)

    def __str__(self) -> str:
        if self.is_null:
            return "<null>"
        return f"r{self.region_id}@{self.generation}+{self.offset}"

    def __repr__(self) -> str:
        return f"Handle(r{self.region_id}@gen{self.generation}+{self.offset:#x})"


def _check_range(name: str, value: int, maximum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"Handle.{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= maximum:
        raise ValueError(f"Handle.{name}={value} is outside 0..{maximum}")


Handle.NULL = Handle(0, 0, 0)


MAX_GENERATION = U16_MAX


def next_generation(generation: int) -> int:
    """The generation after ``generation``; generations run 1..65535 and never wrap.

    A wrap would make a handle from 65,535 generations ago valid again, so the
    directory refuses the bump instead (see ``RegionDirectory.compact_region``
    and ``destroy_region``); calling this at the last generation is a bug.
    """
    if not 1 <= generation < MAX_GENERATION:
        raise OverflowError(f"generation {generation} has no successor in 1..{MAX_GENERATION}")
    return generation + 1
