"""Region kinds, residency tiers, placement policies and the value types
the directory reports (info, metrics, remaps, eviction reports)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from .handle import Handle


class RegionKind(enum.IntEnum):
    """What a region holds; the value is the ABI/WIT discriminant."""

    HOT_HEAP = 0
    OBJECT_ARENA = 1
    BLOB_ARENA = 2
    PAGE_STORE = 3
    SCRATCH = 4
    DEVICE_STATE = 5
    CODE_CACHE = 6


class Residency(enum.IntEnum):
    """Where a region's bytes are: in memory (Hot, Warm) or not (Cold, External)."""

    HOT = 0
    WARM = 1
    COLD = 2
    EXTERNAL = 3

    @property
    def is_resident(self) -> bool:
        return self in (Residency.HOT, Residency.WARM)


@dataclass(frozen=True, slots=True)
class PlacementPolicy:
    """Where a region starts and which lifecycle operations it allows."""

    initial_residency: Residency = Residency.HOT
    pinnable: bool = False
    spillable: bool = True
    #: False for a region whose bytes must stay where they are for its whole life
    #: (an imported memory guests load from natively, holding no handle): it is
    #: never compacted and never goes External.
    movable: bool = True

    def __post_init__(self) -> None:
        if self.initial_residency not in (Residency.HOT, Residency.WARM):
            raise ValueError(
                f"a region must start resident (HOT or WARM), not {self.initial_residency.name}"
            )

    @classmethod
    def for_kind(cls, kind: RegionKind) -> PlacementPolicy:
        """The reference's default policy for each kind."""
        return _POLICY_BY_KIND[RegionKind(kind)]


_POLICY_BY_KIND = {
    RegionKind.HOT_HEAP: PlacementPolicy(Residency.HOT, pinnable=True, spillable=False),
    RegionKind.CODE_CACHE: PlacementPolicy(Residency.HOT, pinnable=True, spillable=False),
    RegionKind.DEVICE_STATE: PlacementPolicy(Residency.HOT, pinnable=True, spillable=False),
    RegionKind.OBJECT_ARENA: PlacementPolicy(Residency.HOT, pinnable=False, spillable=True),
    RegionKind.BLOB_ARENA: PlacementPolicy(Residency.HOT, pinnable=False, spillable=True),
    RegionKind.PAGE_STORE: PlacementPolicy(Residency.WARM, pinnable=False, spillable=True),
    RegionKind.SCRATCH: PlacementPolicy(Residency.HOT, pinnable=False, spillable=False),
}


@dataclass(frozen=True, slots=True)
class RegionInfo:
    """A snapshot of one region's metadata."""

    id: int
    generation: int
    kind: RegionKind
    capacity: int
    used: int
    residency: Residency
    pinned: bool


@dataclass(frozen=True, slots=True)
class RegionMetrics:
    """A snapshot of one region's counters."""

    allocations: int = 0
    bytes_allocated: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    faults: int = 0
    promotions: int = 0
    demotions: int = 0
    bytes_discarded: int = 0  # zeroed by ``discard`` (whole OS pages among them go back to the OS on the host)


@dataclass(frozen=True, slots=True)
class HandleRemap:
    """What compaction moved: old offset of each live block -> its new offset."""

    region_id: int
    old_generation: int
    new_generation: int
    mapping: dict[int, int] = field(default_factory=dict)

    def migrate(self, handle: Handle) -> Handle | None:
        """The handle's new form, or None if it is not a live block of this compaction."""
        if handle.region_id != self.region_id or handle.generation != self.old_generation:
            return None
        new_offset = self.mapping.get(handle.offset)
        if new_offset is None:
            return None
        return Handle(self.region_id, self.new_generation, new_offset)


@dataclass(frozen=True, slots=True)
class EvictionReport:
    """What ``demote_until`` did, and whether it reached its target."""

    bytes_freed: int
    regions_spilled: int
    target_met: bool


def checked_flag(value: object, name: str) -> bool:
    """``value`` as a bool; ``TypeError`` for anything but ``True``/``False`` (a string such as ``"no"``
    would otherwise count as true)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {type(value).__name__} {value!r}")
    return value
