"""Model values <-> ``tvm:memory`` WIT values as wasmtime-py represents them.

wasmtime-py passes records as ``Record`` objects whose attributes carry the
WIT (kebab-case) field names, enums as their case-name strings, and variants
as ``Variant(tag, payload)``. Keeping every translation here means the
interface bindings read like the model's API.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar

from wasmtime.component import Record, Variant

from ..core.allocators import Allocator, Bump, Freelist, Slab
from ..core.handle import Handle
from ..core.types import EvictionReport, HandleRemap, RegionInfo, RegionKind, RegionMetrics, Residency

E = TypeVar("E", bound=enum.Enum)

EVICTION_ORDERS = ("largest-first", "smallest-first", "insertion-order", "lru")


def record(**fields: object) -> Record:
    """A ``Record`` whose snake_case keywords become the WIT's kebab-case field names."""
    out = Record()
    for name, value in fields.items():
        setattr(out, name.replace("_", "-"), value)
    return out


def field(value: object, name: str) -> object:
    """A record field by its WIT name (``region-id``)."""
    return getattr(value, name)


def case_name(member: enum.Enum) -> str:
    """``RegionKind.HOT_HEAP`` -> ``"hot-heap"``: the WIT enum case."""
    return member.name.lower().replace("_", "-")


def enum_member(cls: type[E], case: str) -> E:
    """The inverse of :func:`case_name`."""
    return cls[case.upper().replace("-", "_")]


def to_handle(value: object) -> Handle:
    """A WIT ``handle`` record as the model's ``Handle`` (a ``Handle`` passes through)."""
    if isinstance(value, Handle):
        return value
    return Handle(int(field(value, "region-id")), int(field(value, "generation")), int(field(value, "offset")))  # type: ignore[call-overload]


def from_handle(handle: Handle) -> Record:
    return record(region_id=handle.region_id, generation=handle.generation, offset=handle.offset)


def to_kind(case: str) -> RegionKind:
    return enum_member(RegionKind, case)


def to_allocator(value: object) -> Allocator:
    """A WIT ``allocator`` variant as a fresh model allocator."""
    assert isinstance(value, Variant), value
    if value.tag == "bump":
        return Bump()
    if value.tag == "freelist":
        return Freelist()
    if value.tag == "slab":
        return Slab(int(value.payload))
    raise ValueError(f"unknown allocator {value.tag!r}")


def from_region_info(info: RegionInfo) -> Record:
    return record(
        id=info.id,
        generation=info.generation,
        kind=case_name(RegionKind(info.kind)),
        capacity=info.capacity,
        used=info.used,
        residency=case_name(Residency(info.residency)),
        pinned=bool(info.pinned),
    )


def from_metrics(metrics: RegionMetrics) -> Record:
    return record(
        allocations=metrics.allocations,
        bytes_allocated=metrics.bytes_allocated,
        bytes_read=metrics.bytes_read,
        bytes_written=metrics.bytes_written,
        faults=metrics.faults,
        promotions=metrics.promotions,
        demotions=metrics.demotions,
    )


def from_remap(remap: HandleRemap) -> Record:
    """Compaction's mapping as (old, new) pairs sorted by old offset."""
    mapping: Mapping[int, int] = remap.mapping
    return record(
        region_id=remap.region_id,
        old_generation=remap.old_generation,
        new_generation=remap.new_generation,
        mapping=sorted(mapping.items()),
    )


def from_eviction(report: EvictionReport) -> Record:
    return record(
        bytes_freed=report.bytes_freed, regions_spilled=report.regions_spilled, target_met=bool(report.target_met)
    )


def to_eviction_order(case: str) -> str:
    """``"largest-first"`` -> the model's ``"largest_first"``."""
    if case not in EVICTION_ORDERS:
        raise ValueError(f"unknown eviction order {case!r}")
    return case.replace("-", "_")
