"""One table, checked to name every WIT function: each is called from the guest once
successfully and once failing (infallible ones: their "unknown region" answer)."""

from __future__ import annotations

from typing import Any

from wasmtime.component import Variant
from wit_guests import Wit, describe

from tvm_wasm import Handle
from tvm_wasm.core.backing import MemoryBackingStore
from tvm_wasm.host.component import TvmInterfaces
from tvm_wasm.host.component_values import from_handle

MISSING = 999  # a region id nobody created
CHECKPOINT = object()  # stands for the id the last checkpoint answered
NEVER_TAKEN = (1 << 63) - 1  # a checkpoint id no process reaches (ids count up from 1 per process)


class SwitchableStore(MemoryBackingStore):
    """A store whose spills start failing when ``broken`` is set (a disk filling up)."""

    broken = False

    def spill(self, region_id: int, generation: int, data: bytes) -> None:
        if self.broken:
            raise OSError("no space left on device")
        super().spill(region_id, generation, data)


def h(region: int, offset: int = 0, generation: int = 1):
    return from_handle(Handle(region, generation, offset))


def test_every_function_succeeds_and_fails_from_a_guest(make_host, make_wit):
    store = SwitchableStore()
    host = make_host(backing=store, budget_bytes=1 << 20)
    wit: Wit = make_wit(host)
    # r1 object-arena/freelist (data), r2 page-store (Warm), r3 hot-heap, r4 blob-arena (External), r5 scratch
    # (the create-region rows below make r1 and r2)
    table: list[tuple[str, str, tuple[Any, ...], str | None]] = [
        # manager
        ("manager", "create-region-with", ("object-arena", 4096, Variant("freelist")), None),
        ("manager", "create-region-with", ("object-arena", 0, Variant("bump")), "invalid-argument"),
        ("manager", "create-region", ("page-store", 4096), None),
        ("manager", "create-region", ("blob-arena", 2 << 20), "allocation-failed"),  # over the budget
        ("manager", "alloc", (1, 16), None),
        ("manager", "alloc", (1, 1 << 20), "allocation-failed"),
        ("manager", "dealloc", (h(1),), None),
        ("manager", "dealloc", (h(1, generation=9),), "stale-handle"),
        ("manager", "describe-region", (1,), None),
        ("manager", "describe-region", (MISSING,), "region-not-found"),
        ("manager", "promote-region", (2,), None),  # Warm -> Hot
        ("manager", "promote-region", (MISSING,), "region-not-found"),
        ("manager", "demote-region", (2,), None),  # Hot -> Warm
        ("manager", "demote-region", (MISSING,), "region-not-found"),
        ("manager", "spill-region", (2,), None),
        ("manager", "load-region", (2,), None),
        ("manager", "load-region", (MISSING,), "region-not-found"),
        ("manager", "create-region", ("hot-heap", 4096), None),  # r3
        ("manager", "spill-region", (3,), "policy-violation"),
        ("manager", "pin", (3,), None),
        ("manager", "pin", (1,), "policy-violation"),
        ("manager", "compact-region", (3,), "pinned"),
        ("manager", "unpin", (3,), None),
        ("manager", "unpin", (MISSING,), "region-not-found"),
        ("manager", "compact-region", (1,), None),
        ("manager", "create-region", ("blob-arena", 64), None),  # r4
        ("manager", "mark-external", (4,), None),
        ("manager", "mark-external", (MISSING,), "region-not-found"),
        ("manager", "load-external", (4, b"outside"), None),
        ("manager", "load-external", (MISSING, b""), "region-not-found"),
        ("manager", "demote-until", (0, "lru"), None),
        ("manager", "load-region", (1,), None),
        ("break the store", "", (), None),
        ("manager", "demote-until", (0, "smallest-first"), "backing-store"),
        ("repair the store", "", (), None),
        ("manager", "demote-until", (0, "lru"), None),
        ("manager", "create-region", ("scratch", 64), None),  # r5
        ("manager", "destroy-region", (5,), None),
        ("manager", "destroy-region", (5,), "region-not-found"),
        ("manager", "demote-until", (1 << 30, "largest-first"), None),
        ("manager", "create-region", ("blob-arena", 3 * 4096), None),  # r6
        ("manager", "track-dirty", (6, True), None),
        ("manager", "track-dirty", (MISSING, True), "region-not-found"),
        ("manager", "protect", (6, True), None),
        ("manager", "protect", (MISSING, True), "region-not-found"),
        ("manager", "is-read-only", (6,), None),
        ("manager", "is-read-only", (MISSING,), "region-not-found"),
        ("bytes", "write", (h(6, 4095), b"no"), "read-only"),
        ("manager", "protect", (6, False), None),
        ("bytes", "write", (h(6, 4095), b"ok"), None),
        ("manager", "dirty-pages", (6,), None),
        ("manager", "dirty-pages", (1,), "policy-violation"),
        ("manager", "clear-dirty", (6,), None),
        ("manager", "clear-dirty", (1,), "policy-violation"),
        ("manager", "checkpoint", ([6],), None),  # its id (unique in the process) is CHECKPOINT below
        ("manager", "checkpoint", ([6, MISSING],), "region-not-found"),
        ("bytes", "write", (h(6, 8), b"later"), None),
        ("manager", "rollback", (CHECKPOINT,), None),
        ("manager", "rollback", (NEVER_TAKEN,), "invalid-argument"),  # ids are unique in the process: no fixed small id is safe
        ("manager", "release-checkpoint", (CHECKPOINT,), None),
        ("manager", "release-checkpoint", (CHECKPOINT,), "invalid-argument"),  # released twice
        # bytes (r1 is Cold after demote-until: reads and writes fault it in)
        ("bytes", "write", (h(1, 0, 2), b"bytes!"), None),
        ("bytes", "write", (h(1, 4090, 2), b"too long"), "out-of-bounds"),
        ("bytes", "read", (h(1, 0, 2), 6), None),
        ("bytes", "read", (h(1, 0, 1), 6), "stale-handle"),  # compaction bumped the generation
        ("bytes", "copy", (h(1, 0, 2), h(4, 8), 6), None),
        ("bytes", "copy", (h(1, 0, 2), h(MISSING), 6), "region-not-found"),
        ("bytes", "read-into", (h(1, 0, 2), 4, 16, 6), None),
        ("bytes", "read-into", (h(1, 0, 2), 4, 60, 6), "out-of-bounds"),
        ("bytes", "write-from", (4, 16, h(1, 100, 2), 6), None),
        ("bytes", "write-from", (MISSING, 0, h(1, 100, 2), 6), "region-not-found"),
        ("bytes", "copy-region", (1, 0, 4, 32, 6), None),
        ("bytes", "copy-region", (1, 0, 4, 60, 6), "out-of-bounds"),
        ("bytes", "discard", (h(6, 4000), 100), None),
        ("bytes", "discard", (h(6, 4000, 2), 100), "stale-handle"),
        # diagnostics
        ("diagnostics", "list-regions", (), None),
        ("diagnostics", "metrics-snapshot", (1,), None),
        ("diagnostics", "metrics-snapshot", (MISSING,), "region-not-found"),
        ("diagnostics", "resident-bytes", (), None),
        ("diagnostics", "budget-bytes", (), None),
        ("diagnostics", "max-transfer", (), None),
    ]
    counters = ("fault-count", "allocation-count", "bytes-read-count", "bytes-written-count")
    seen: dict[tuple[str, str], set[str]] = {}
    taken = None  # the id the last successful checkpoint answered
    for interface, name, args, expected in table:
        if not name:
            store.broken = interface == "break the store"
            continue
        args = tuple(taken if arg is CHECKPOINT else arg for arg in args)
        result = getattr(wit, interface)(name, *args)
        outcome = result.tag if isinstance(result, Variant) else "ok"
        if name == "checkpoint" and outcome == "ok":
            taken = result
        assert outcome == (expected or "ok"), f"{name}{args}: {describe(result)}"
        seen.setdefault((interface, name), set()).add("ok" if expected is None else "err")
    for name in counters:
        assert wit.diagnostics(name, 1) > 0  # r1 saw a fault, allocations, reads and writes
        assert wit.diagnostics(name, MISSING) == 0  # the "error" answer of an infallible counter
        seen[("diagnostics", name)] = {"ok", "err"}
    assert host.read(Handle(4, 1, 8), 6) == b"bytes!"
    assert host.read(Handle(6, 1, 8), 5) == bytes(5)  # rolled back to checkpoint 1
    assert host.read(Handle(4, 1, 32), 6) == b"bytes!"

    infallible = {"list-regions", "resident-bytes", "budget-bytes", "max-transfer"}
    served = {(i, n) for i, funcs in TvmInterfaces(host).functions().items() for n in funcs}
    assert set(seen) == served
    for (interface, name), outcomes in seen.items():
        assert outcomes == ({"ok"} if name in infallible else {"ok", "err"}), (interface, name, outcomes)
