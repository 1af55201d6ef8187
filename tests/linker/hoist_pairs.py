"""One module instantiated unlinked and linked (``inline=True``) on one host, and the comparison of the two.

Shared by the hoisting tests whose regions sit at and around the edges of each access's range
(``test_hoist_value_ranges.py``, ``test_hoist_covered.py``)."""

from __future__ import annotations

from collections.abc import Callable

from test_hoist_ranges import observe

from tvm_wasm import Handle, RegionKind, TvmHost


def linked_pair(wat: str, capacities: tuple[int, ...]):  # type: ignore[no-untyped-def]
    """A fixture body: ``(host, plain, linked, regions)`` with one region per capacity; closes the host after."""
    host = TvmHost(pools=2)
    plain = host.instantiate(wat)
    linked = host.instantiate(wat, inline=True)
    regions = [host.create_region(RegionKind.OBJECT_ARENA, capacity) for capacity in capacities]
    yield host, plain, linked, regions
    host.close()


def agree(setup, name: str, args: list[int], fill: Callable[[TvmHost, list[int]], None],
          stamp_order: bool = True) -> object:
    """``name`` unlinked then linked, each from the bytes ``fill`` writes: answer, counts, clock, stamps and the
    bytes stored agree; returns the answer (or the typed error's name). ``stamp_order`` False: the regions
    stamped agree, not their order (a hoisted loop stamps at its end in the order of its access sites)."""
    host, plain, linked, regions = setup
    results = []
    for instance in (plain, linked):
        fill(host, regions)
        answer, counts, ticks, stamps = observe(host, instance, name, args, regions)
        seen = (answer, counts, ticks, stamps if stamp_order or stamps is None else sorted(stamps))
        stored = [host.read(Handle(r, host.region_info(r).generation, 0), host.region_info(r).capacity) for r in regions]
        results.append((seen, stored))
    assert results[1] == results[0], (name, args)
    return results[0][0][0]
