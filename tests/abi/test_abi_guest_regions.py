"""One ABI on both deployments: guests that create, destroy and query regions.

On ``TvmHost`` the lifecycle is served by Python with the host's semantics
(budget, spill, policies, metrics), and a region a guest creates is an
ordinary host region. A random sequence of lifecycle and query calls gives
the same results, codes and ``last_error`` on both deployments where their
semantics agree (Hot/Warm, no budget).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tvm_wasm import FileBackingStore, Handle, RegionKind, Residency
from tvm_wasm.abi import ABI, for_deployment
from tvm_wasm.abi.table import HOST, MODULE
from tvm_wasm.core.backing import MemoryBackingStore

BOTH = sorted(set(for_deployment(HOST)) & set(for_deployment(MODULE)))


def proxy() -> str:
    """A guest importing every function both deployments serve, re-exporting each as ``x_{name}``."""
    lines = ["(module"]
    entries = {e.name: e for e in ABI}
    for name in BOTH:
        e = entries[name]
        sig = "".join(f" (param {t})" for t in e.wasm_params) + "".join(f" (result {t})" for t in e.wasm_results)
        lines.append(f'  (import "tvm" "{name}" (func $t_{name}{sig}))')
    lines.append('  (import "tvm" "memory" (memory 1))')
    for name in BOTH:
        e = entries[name]
        sig = "".join(f" (param {t})" for t in e.wasm_params) + "".join(f" (result {t})" for t in e.wasm_results)
        gets = " ".join(f"local.get {i}" for i in range(len(e.wasm_params)))
        lines.append(f'  (func (export "x_{name}"){sig} {gets} call $t_{name})')
    lines += ['  (func (export "word64") (param i32) (result i64) local.get 0 i64.load)', ")"]
    return "\n".join(lines)


PROXY = proxy()


def s32(v: int) -> int:
    v &= 0xFFFF_FFFF
    return v - (1 << 32) if v >= 1 << 31 else v


class HostSide:
    def __init__(self, make_host, **kwargs) -> None:
        self.host = make_host(**kwargs)
        self.guest = self.host.instantiate(PROXY)

    def __call__(self, name: str, *args: int) -> object:
        return self.host.call(self.guest, f"x_{name}", *args)


class ModuleSide:
    def __init__(self, make_guest) -> None:
        self.g = make_guest()
        self.user = self.g.link(PROXY)

    def __call__(self, name: str, *args: int) -> object:
        return self.g.call(self.user, f"x_{name}", *args)


def test_guest_created_region_is_an_ordinary_host_region(make_host):
    side = HostSide(make_host)
    host = side.host
    r = side("create_region_with", int(RegionKind.OBJECT_ARENA), 4096, 1, 0)  # Freelist
    assert r > 0 and host.region_info(r).capacity == 4096
    h = Handle.unpack(side("alloc", r, 16))
    host.write(h, b"from python....!")  # Python reaches it like any region
    assert side("region_used", r) == 16 and side("region_allocator", r) == 1
    assert side("region_kind", r) == int(RegionKind.OBJECT_ARENA)
    assert side("region_metric", r, 0) == 1  # allocations
    # compaction through the ABI bumps the generation; migrate moves old handles
    h2 = Handle.unpack(side("alloc", r, 16))
    assert side("dealloc", h.to_i64()) == 0
    assert side("compact_region", r) == 0
    assert side("region_generation", r) == 2
    moved = Handle.unpack(side("migrate", h2.to_i64()))
    assert moved == Handle(r, 2, 0)
    assert side("migrate", h.to_i64()) == 0 and side("last_error") == 2  # h was freed: stale
    # Python destroys it; the guest sees it gone
    host.destroy_region(r)
    assert side("region_capacity", r) == -1 and side("last_error") == 1
    assert side("destroy_region", r) == 1 and side("last_error") == 1


def test_guest_created_regions_respect_the_hosts_budget_and_spill(make_host, tmp_path):
    side = HostSide(make_host, backing=FileBackingStore(tmp_path), budget_bytes=3 * 65536)
    host = side.host
    ids = [side("create_region", int(RegionKind.BLOB_ARENA), 65536) for _ in range(3)]
    assert all(ids)
    h = Handle(ids[0], 1, 0)
    side("store_u32", h.to_i64(), 0, 0xABCD)
    for other in ids[1:]:  # data-plane use stamps recency: ids[0] is now the least recently used
        side("store_u32", Handle(other, 1, 0).to_i64(), 0, 1)
    fourth = side("create_region", int(RegionKind.BLOB_ARENA), 65536)  # spills the least recently used
    assert fourth > 0 and host.resident_bytes() <= 3 * 65536
    assert host.region_info(ids[0]).residency is Residency.COLD
    assert side("region_residency", ids[0]) == int(Residency.COLD)
    assert side("region_pool", ids[0]) == -1 and side("last_error") == 4  # Cold: in no pool
    assert side("load_u32", h.to_i64(), 0) == 0xABCD  # faulted back in
    assert side("create_region", int(RegionKind.BLOB_ARENA), 4 * 65536) == 0  # can never fit the budget
    assert side("last_error") == 5
    # pinning follows each kind's policy; pinned regions are never spilled
    assert side("pin", ids[1]) == 9 and side("last_error") == 9  # BLOB_ARENA is not pinnable
    heap = side("create_region", int(RegionKind.HOT_HEAP), 4096)
    assert heap > 0 and side("pin", heap) == 0 and host.region_info(heap).pinned
    hot = next(r for r in [*ids, fourth] if host.region_info(r).residency is Residency.HOT)
    assert side("demote_region", hot) == 0
    assert host.region_info(hot).residency is Residency.WARM
    assert side("lru_candidate") == hot  # Warm before Hot
    assert side("region_count") == len(host.list_regions())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(st.tuples(
    st.sampled_from(["create", "create_with", "destroy", "pin", "unpin", "demote", "promote", "alloc", "query",
                     "metric", "count"]),
    st.integers(0, 7), st.integers(0, 600), st.integers(0, 3)), max_size=30))
def test_lifecycle_and_queries_agree_on_both_deployments(make_host, make_guest, ops):
    host, module = HostSide(make_host, backing=MemoryBackingStore()), ModuleSide(make_guest)
    made: list[int] = []
    queries = ["region_generation", "region_kind", "region_capacity", "region_used", "region_pinned",
               "region_allocator", "region_residency"]
    for op, ref, size, extra in ops:
        rid = made[ref % len(made)] if made and ref < 6 else [0, 999, 70000, 0xFFFF][ref % 4]
        if op == "create":
            call = ("create_region", ref % 8, size)  # kind 7 does not exist
        elif op == "create_with":
            call = ("create_region_with", ref % 7, size, extra % 3, [8, 0, 24, 5][extra])
        elif op in ("destroy", "pin", "unpin", "demote", "promote"):
            call = ({"destroy": "destroy_region", "demote": "demote_region", "promote": "promote_region"}.get(op, op),
                    s32(rid))
        elif op == "alloc":
            call = ("alloc", s32(rid), size % 64)
        elif op == "query":
            call = (queries[size % len(queries)], s32(rid))
        elif op == "metric":
            call = ("region_metric", s32(rid), extra + 1)  # bytes allocated, read, written
        else:
            call = ("region_count",)
        region = host.host._regions.get(rid)
        if op == "demote" and region is not None and region.residency is Residency.WARM:
            continue  # Warm -> Cold exists on the host only (the module answers 9): semantics differ by design
        got_host, got_module = host(*call), module(*call)
        assert got_host == got_module, (call, got_host, got_module)
        assert host("last_error") == module("last_error"), call
        if op.startswith("create") and got_host:
            made.append(int(got_host))
        if op == "alloc" and got_host and got_host != 0:
            # a handle works for stores on both
            host("store_u8", got_host, 0, 7)
            module("store_u8", got_host, 0, 7)

