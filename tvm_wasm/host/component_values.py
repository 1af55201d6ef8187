"""Model values <-> ``tvm:memory`` WIT values as wasmtime-py represents them (public).

wasmtime-py passes records as ``Record`` objects whose attributes carry the
WIT (kebab-case) field names, enums as their case-name strings, and variants
as ``Variant(tag, payload)``. Keeping every translation here means the
interface bindings read like the model's API, and host code that drives a
component passes and receives the project's own types:

* ``from_handle(Handle)`` / ``to_handle(record)``: ``handle``;
* ``from_region_info(RegionInfo)`` / ``to_region_info(record)``: ``region-info``;
* ``from_metrics(RegionMetrics)`` / ``to_metrics(record)``: ``region-metrics``;
* ``to_wit(value)``: any argument, with every ``Handle``, ``RegionInfo`` and
  ``RegionMetrics`` inside it (lists, tuples, ``Record`` fields) made a record;
* ``from_wit(value)``: the inverse, for results: every record whose field names
  are exactly those of ``handle``, ``region-info`` or ``region-metrics`` becomes
  the project's type (records are structural in the component model: a record
  of another package with the same fields converts too);
* errors: ``component_errors.to_wit_error`` / ``to_tvm_error``.
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


def to_region_info(value: object) -> RegionInfo:
    """A WIT ``region-info`` record as the model's ``RegionInfo``."""
    return RegionInfo(
        id=int(field(value, "id")),  # type: ignore[call-overload]
        generation=int(field(value, "generation")),  # type: ignore[call-overload]
        kind=enum_member(RegionKind, str(field(value, "kind"))),
        capacity=int(field(value, "capacity")),  # type: ignore[call-overload]
        used=int(field(value, "used")),  # type: ignore[call-overload]
        residency=enum_member(Residency, str(field(value, "residency"))),
        pinned=bool(field(value, "pinned")),
    )


def to_metrics(value: object) -> RegionMetrics:
    """A WIT ``region-metrics`` record as the model's ``RegionMetrics``."""
    return RegionMetrics(**{name: int(field(value, name.replace("_", "-"))) for name in _METRIC_FIELDS})  # type: ignore[call-overload]


def to_wit(value: object) -> object:
    """``value`` with each project value inside it made its WIT record (for call arguments)."""
    if isinstance(value, Handle):
        return from_handle(value)
    if isinstance(value, RegionInfo):
        return from_region_info(value)
    if isinstance(value, RegionMetrics):
        return from_metrics(value)
    if isinstance(value, list):
        return [to_wit(item) for item in value]
    if isinstance(value, tuple):
        return tuple(to_wit(item) for item in value)
    if isinstance(value, Record):
        return record(**{name.replace("-", "_"): to_wit(item) for name, item in vars(value).items()})
    if isinstance(value, Variant):
        return Variant(value.tag, to_wit(value.payload))
    return value


_HANDLE_FIELDS = frozenset({"region-id", "generation", "offset"})
_INFO_FIELDS = frozenset({"id", "generation", "kind", "capacity", "used", "residency", "pinned"})


def from_wit(value: object) -> object:
    """``value`` with each ``handle``, ``region-info`` and ``region-metrics`` record inside it made
    the project's ``Handle``, ``RegionInfo`` and ``RegionMetrics`` (for call results)."""
    if isinstance(value, Record):
        names = frozenset(vars(value))
        if names == _HANDLE_FIELDS:
            return to_handle(value)
        if names == _INFO_FIELDS:
            return to_region_info(value)
        if names == _METRIC_WIT_FIELDS:
            return to_metrics(value)
        return record(**{name.replace("-", "_"): from_wit(item) for name, item in vars(value).items()})
    if isinstance(value, list):
        return [from_wit(item) for item in value]
    if isinstance(value, tuple):
        return tuple(from_wit(item) for item in value)
    if isinstance(value, Variant):
        return Variant(value.tag, from_wit(value.payload))
    return value


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


_METRIC_FIELDS = ("allocations", "bytes_allocated", "bytes_read", "bytes_written", "faults", "promotions", "demotions",
                  "bytes_discarded")
_METRIC_WIT_FIELDS = frozenset(name.replace("_", "-") for name in _METRIC_FIELDS)


def from_metrics(metrics: RegionMetrics) -> Record:
    return record(**{name: getattr(metrics, name) for name in _METRIC_FIELDS})


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
