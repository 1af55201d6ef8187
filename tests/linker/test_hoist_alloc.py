"""Bump allocation hoisted into loops: the bump pointer, end and allocation counts in locals.

Each loop runs linked (``inline=True``) and unlinked on fresh regions set up
the same way: the answer (or the typed error), every allocation's handle, the
region's bump pointer, ``allocations``/``bytes_allocated``/``bytes_read``/
``bytes_written``, its bytes and its dirty pages must be the same, for arenas
that have room, that run out inside the loop, Slab and read-only regions,
a destroyed region, two operands naming one region, and zero-byte allocations.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tvm_wasm import Handle, RegionKind, Slab, TvmError, TvmHost
from tvm_wasm.linker import link

#: One step of the bench's growth: allocate 32 bytes (a failure traps in user code), write the block's first and
#: last word through the handle $h, read the previous block's first word.
GROWTH_STEP = """   (if (i64.eqz (local.tee $t (call $alloc (local.get $r) (i32.const 32)))) (then (unreachable)))
   (local.set $p (i32.wrap_i64 (local.get $t)))
   (call $st (local.get $h) (local.get $p) (i32.add (local.get $i) (i32.const 1)))
   (call $st (local.get $h) (i32.add (local.get $p) (i32.const 28)) (local.get $i))
   (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (call $ld (local.get $h) (local.get $prev)))))
   (local.set $prev (local.get $p))
"""

STEP_J = "(local.set $j (i32.sub (local.get $j) (i32.const 2)))"
#: An outer loop like nested_growth's, whose inner loop has a trip count: ``$j`` steps by -2, at its ``early``
#: or ``late`` place, and the back edge runs while it is above 0.
NESTED_COUNTED = """ (func (export "{name}") (param $h i64) (param $r i32) (param $rounds i32) (param $n i32) (result i64)
  (local $k i32) (local $i i32) (local $j i32) (local $t i64) (local $p i32) (local $prev i32) (local $acc i64)
  (loop $round
   (if (i64.eqz (local.tee $t (call $alloc (local.get $r) (i32.const 32)))) (then (unreachable)))
   (local.set $prev (i32.wrap_i64 (local.get $t)))
   (call $st (local.get $h) (local.get $prev) (i32.const 0))
   (local.set $j (i32.shl (local.get $n) (i32.const 1)))
   (loop $next
    {early}
""" + GROWTH_STEP + """    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    {late}
    (br_if $next (i32.gt_u (local.get $j) (i32.const 0))))
   (br_if $round (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 1))) (local.get $rounds))))
  (local.get $acc))
"""

ALLOCS = f"""(module
 (import "tvm" "alloc" (func $alloc (param i32 i32) (result i64)))
 (import "tvm" "last_error" (func $last_error (result i32)))
 (import "tvm" "load_u32" (func $ld (param i64 i32) (result i32)))
 (import "tvm" "store_u32" (func $st (param i64 i32 i32)))
 (import "tvm" "store_u8" (func $st8 (param i64 i32 i32)))
 (memory (export "memory") 1)
 ;; the bench's growth: allocate 32 bytes, write its first and last word through the arena's handle, read the
 ;; previous block (the first time, at the caller's offset); a failed allocation traps in user code
 (func (export "growth") (param $h i64) (param $r i32) (param $first i32) (param $n i32) (result i64)
  (local $i i32) (local $t i64) (local $p i32) (local $prev i32) (local $acc i64)
  (local.set $prev (local.get $first))
  (loop $next
{GROWTH_STEP}   (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (local.get $acc))
 ;; the bench's growth kernel: the outer loop is the one hoisted, prev's first value comes from inside it
 (func (export "nested_growth") (param $h i64) (param $r i32) (param $rounds i32) (param $n i32) (result i64)
  (local $k i32) (local $i i32) (local $t i64) (local $p i32) (local $prev i32) (local $acc i64)
  (loop $round
   (if (i64.eqz (local.tee $t (call $alloc (local.get $r) (i32.const 32)))) (then (unreachable)))
   (local.set $prev (i32.wrap_i64 (local.get $t)))
   (call $st (local.get $h) (local.get $prev) (i32.const 0))
   (local.set $i (i32.const 0))
   (block $done (loop $next
    (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
{GROWTH_STEP}    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $next)))
   (br_if $round (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 1))) (local.get $rounds))))
  (local.get $acc))
 ;; the bench's lowering: the inner loop ends in its back edge with a trip count, so its iterations come from its
 ;; induction variable ($j: from 2 * n down by 2, updated last or first); a failed allocation traps in the middle
{NESTED_COUNTED.format(name="nested_counted", early="", late=STEP_J)}{NESTED_COUNTED.format(name="nested_counted_early", early=STEP_J, late="")} ;; growth with a division in the loop (it may trap anywhere): each allocation stores its bump pointer at once
 (func (export "growth_div") (param $h i64) (param $r i32) (param $d i32) (param $n i32) (result i64)
  (local $i i32) (local $t i64) (local $p i32) (local $prev i32) (local $acc i64)
  (loop $next
{GROWTH_STEP}   (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (i32.div_u (local.get $p) (local.get $d)))))
   (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (local.get $acc))
 ;; the bench's jvm scan: walk a list of (next, value, extra) nodes through $h; every value divisible by 8
 ;; copies (value, extra) into a 16-byte block of the arena $r (through its handle $oh); a bad next pointer
 ;; fails its load, a full arena traps in user code
 (func (export "scan") (param $h i64) (param $q i32) (param $oh i64) (param $r i32) (result i64)
  (local $v i32) (local $o i64) (local $acc i64)
  (block $done (loop $next
   (br_if $done (i32.eq (local.get $q) (i32.const -1)))
   (local.set $v (call $ld (local.get $h) (i32.add (local.get $q) (i32.const 4))))
   (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (local.get $v))))
   (if (i32.eqz (i32.and (local.get $v) (i32.const 7))) (then
    (if (i64.eqz (local.tee $o (call $alloc (local.get $r) (i32.const 16)))) (then (unreachable)))
    (call $st (local.get $oh) (i32.wrap_i64 (local.get $o)) (local.get $v))
    (call $st (local.get $oh) (i32.add (i32.wrap_i64 (local.get $o)) (i32.const 4))
     (call $ld (local.get $h) (i32.add (local.get $q) (i32.const 8))))
    (local.set $acc (i64.add (local.get $acc) (i64.const 0x100000000)))))
   (local.set $q (call $ld (local.get $h) (local.get $q)))
   (br $next)))
  (local.get $acc))
 ;; every handle, and the last failure's code; the arena may run out, the loop goes on
 (func (export "handles") (param $log i64) (param $r i32) (param $high i64) (param $size i32) (param $n i32)
  (result i64) (local $i i32) (local $a i64) (local $acc i64)
  (loop $next
   (local.set $a (call $alloc (local.get $r) (local.get $size)))
   (call $st (local.get $log) (i32.shl (local.get $i) (i32.const 2)) (i32.wrap_i64 (local.get $a)))
   (local.set $acc (i64.add (i64.rotl (local.get $acc) (i64.const 7))  ;; a handle's offset if $high is its high half
    (select (i64.xor (local.get $a) (local.get $high)) (i64.const -1) (i64.ne (local.get $a) (i64.const 0)))))
   (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
  (i64.xor (local.get $acc) (i64.extend_i32_u (call $last_error))))
 ;; two arenas, sizes 8 and 12, left by a branch when the first runs out (counts flushed on the way out)
 (func (export "two") (param $log i64) (param $r1 i32) (param $r2 i32) (param $n i32) (result i64)
  (local $i i32) (local $a i64) (local $b i64) (local $acc i64)
  (block $out (loop $next
   (local.set $a (call $alloc (local.get $r1) (i32.const 8)))
   (br_if $out (i64.eqz (local.get $a)))
   (local.set $b (call $alloc (local.get $r2) (i32.const 12)))
   (call $st8 (local.get $log) (local.get $i) (i32.wrap_i64 (local.get $b)))
   (local.set $acc (i64.add (i64.rotl (local.get $acc) (i64.const 5))
    (i64.xor (i64.and (local.get $a) (i64.const 0xFFFFFFFF)) (i64.shl (local.get $b) (i64.const 32)))))
   (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n)))))
  (i64.add (local.get $acc) (i64.extend_i32_u (local.get $i))))
)"""

CALL_ERRORS = (TvmError,)


def run(host: TvmHost, instance, name: str, args: list[int]) -> object:
    try:
        return host.call(instance, name, *args)
    except CALL_ERRORS as exc:
        return type(exc).__name__
    except Exception as exc:  # a trap of user code (unreachable): what matters is the state it leaves
        return "trap" if "unreachable" in str(exc) or "wasm trap" in str(exc) else repr(exc)


def state(host: TvmHost, regions: list[int], tracked: set[int]) -> list[tuple]:
    """What an allocating loop may change: allocator and counters, bytes, dirty pages (per region)."""
    out = []
    for r in regions:
        info = host.region_info(r)
        m = host.metrics(r)
        data = host.read(Handle(r, info.generation, 0), info.capacity) if info.capacity else b""
        out.append((info.used, m.allocations, m.bytes_allocated, m.bytes_read, m.bytes_written, data,
                    host.dirty_pages(r) if r in tracked else None))
    return out


@pytest.fixture(scope="module")
def setup(binaryen):
    host = TvmHost(pools=2)
    plain = host.instantiate(ALLOCS)
    linked = host.instantiate(ALLOCS, inline=True)
    yield host, plain, linked
    host.close()


def test_exact_loops_keep_their_bump_pointer_in_locals(binaryen):
    from tvm_wasm.linker.hoist import Helpers, hoist_text
    from tvm_wasm.linker.link import as_binary, binaryen_text, host_runtime, merge
    from tvm_wasm.runtime import sections

    report = link(ALLOCS, target="host", pools=2).hoisted
    assert report.loops == 8
    # three accesses each in growth's, growth_div's, nested_growth's and nested_counted's inner loops, scan's two
    # unconditional loads (its third load and its stores, under an if, count per access)
    assert report.counted_per_iteration == 3 * 5 + 2
    # growth's two stores (not its load: prev's first value comes from before the loop), nested_growth's and
    # the nested_counted's four accesses (prev is written before the inner loop in each round), growth_div's two
    assert report.in_allocation == 2 + 4 + 4 + 4 + 2 + 2
    assert report.marks_shared == 1 + 1 + 1 + 1 + 1  # the second store of each run (p, p + 28) marks nothing itself
    assert report.counted_by_induction == 3 + 3  # the nested_counted inner loops: no add per iteration
    assert report.untracked_copies == 8  # every loop stores
    assert report.bump_deferred == 7  # all but growth_div
    user, memory = sections.memory_as_import(as_binary(ALLOCS), abi_prefix="tvm:")
    text = binaryen_text(merge(host_runtime(2, memory), user))
    helpers = Helpers.of(text, "tvm:")
    out, _ = hoist_text(text, "tvm:", 2)
    # each alloc call of the seven loops (growth's in-loop one, nested_growth's two, each nested_counted's two (its
    # inner loop twice: iterations counted from its induction variable, or one by one when T * 2 may wrap),
    # growth_div's one, handles', two's two), once per pool copy and per copy for tracked and untracked regions (every loop
    # stores): an in-register allocation with the ABI's in-wasm allocation beside it
    calls = 1 + 2 + 3 + 3 + 1 + 1 + 2 + 1
    assert out.count(f"(call {helpers.hoist['alloc_in_wasm']} ") == calls * 2 * 2
    # growth_div's allocation stores its bump pointer itself (a division may trap anywhere); the others' bump
    # pointers reach the slot at each flush and before the in-wasm allocation, which reads it
    assert out.count(f"(call {helpers.hoist['bump_set']} ") > 1 * 2 * 2 + (calls - 1) * 2 * 2
    assert out.count("(call $tvm_cold_hoist_alloc_flush ") > 0


TRACKED: set[int] = set()  # regions make_arena put under dirty tracking
KINDS = st.sampled_from(["bump", "slab", "read_only", "destroyed", "tracked"])


def make_arena(host: TvmHost, kind: str, capacity: int, size: int) -> int:
    allocator = Slab(max(size, 1)) if kind == "slab" else None
    region = host.create_region(RegionKind.OBJECT_ARENA, capacity, allocator=allocator)
    if kind == "read_only":
        host.protect(region)
    if kind == "tracked":
        host.track_dirty(region)
        TRACKED.add(region)
    return region


def compare(setup, build, name: str, args_of) -> object:
    """Build regions, run unlinked; build them again, run linked; everything observable must agree."""
    host, plain, linked = setup
    results = []
    for instance in (plain, linked):
        regions, destroyed = build()
        tracked = {r for r in regions if r in TRACKED}
        args = args_of(regions)
        for r in destroyed:
            host.destroy_region(r)
        answer = run(host, instance, name, args)
        live = [r for r in regions if r not in destroyed]
        results.append((answer, state(host, live, tracked)))
        for r in live:
            host.destroy_region(r)
            TRACKED.discard(r)
    assert results[1] == results[0], name
    return results[0][0]


def handle(host: TvmHost, region: int, offset: int = 0) -> int:
    return Handle(region, host.region_info(region).generation, offset).to_i64()


FEW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


VIEWS = st.sampled_from(["arena", "arena+4", "arena+64", "small", "large"])


def arena_and_view(host: TvmHost, kind: str, blocks: int, view: str) -> tuple[list[int], list[int]]:
    """An arena of ``blocks`` 32-byte blocks and, for a ``small``/``large`` view, the region the stores go
    to; the regions to destroy before the call."""
    region = make_arena(host, kind, 32 * blocks, 32)
    regions = [region]
    if view in ("small", "large"):
        regions.append(host.create_region(RegionKind.OBJECT_ARENA, 32 * blocks + (64 if view == "large" else -20)))
    return regions, [region] if kind == "destroyed" else []


def view_handle(host: TvmHost, regions: list[int], view: str) -> int:
    """The handle the stores go through: the last region's, at the view's offset."""
    return handle(host, regions[-1], {"arena+4": 4, "arena+64": 64}.get(view, 0))


@FEW
@given(blocks=st.integers(1, 40), n=st.integers(1, 60), kind=KINDS, view=VIEWS,
       first=st.one_of(st.integers(0, 64), st.sampled_from([1276, 1280, 4096, 0xFFFF_FFFC])))
def test_growth(setup, blocks, n, kind, view, first):
    """The stores go through ``view``: the arena's own handle (offset 0 or not), or another region's,
    smaller or larger than the arena: the proof from the allocation holds only when the view's limit
    covers the whole arena, else the loop runs as it was (and fails where the model fails)."""
    host = setup[0]
    compare(setup, lambda: arena_and_view(host, kind, blocks, view), "growth",
            lambda rs: [view_handle(host, rs, view), rs[0], first, n])


@FEW
@given(blocks=st.integers(1, 40), rounds=st.integers(1, 4), n=st.integers(1, 30), kind=KINDS, view=VIEWS)
def test_nested_growth(setup, blocks, rounds, n, kind, view):
    """The bench's shape: the outer loop allocates ``prev`` before the inner one, so every access's offset
    comes from an allocation of its own iteration."""
    host = setup[0]
    compare(setup, lambda: arena_and_view(host, kind, blocks, view), "nested_growth",
            lambda rs: [view_handle(host, rs, view), rs[0], rounds, n])


@FEW
@given(blocks=st.integers(1, 40), rounds=st.integers(1, 4), n=st.integers(1, 30), kind=KINDS, view=VIEWS,
       name=st.sampled_from(["nested_counted", "nested_counted_early"]))
def test_nested_counted(setup, blocks, rounds, n, kind, view, name):
    """The inner loop's accesses counted from its induction variable (stepping by -2, before or after them), at
    its end and at a trap in the middle of an iteration (the arena runs out)."""
    host = setup[0]
    compare(setup, lambda: arena_and_view(host, kind, blocks, view), name,
            lambda rs: [view_handle(host, rs, view), rs[0], rounds, n])


@FEW
@given(blocks=st.integers(1, 40), n=st.integers(1, 60), d=st.integers(1, 9), kind=KINDS)
def test_growth_with_a_division(setup, blocks, n, d, kind):
    """A loop that may trap anywhere keeps storing each allocation's bump pointer at once."""
    host = setup[0]
    compare(setup, lambda: arena_and_view(host, kind, blocks, "arena"), "growth_div",
            lambda rs: [handle(host, rs[0]), rs[0], d, n])


def test_a_trap_anywhere_keeps_the_bump_pointer_exact(setup):
    """A division by zero inside a hoisted loop: the blocks allocated before it are the region's."""
    host, _, linked = setup
    region = host.create_region(RegionKind.OBJECT_ARENA, 32 * 10)
    with pytest.raises(Exception, match="divide by zero|wasm trap"):
        host.call(linked, "growth_div", handle(host, region), region, 0, 5)
    assert host.region_info(region).used == 32  # the first allocation, then the trap
    assert host.alloc(region, 32).offset == 32
    host.destroy_region(region)


@FEW
@given(capacity=st.integers(1, 400), size=st.sampled_from([0, 1, 7, 8, 32, 100, 0xFFFF_FFFF]), n=st.integers(1, 64),
       kind=KINDS)
def test_handles_and_errors(setup, capacity, size, n, kind):
    """Sizes that fit exactly, run out, are 0 or cannot fit any region: in-register allocation and the ABI's."""
    host = setup[0]

    def build():
        log = host.create_region(RegionKind.OBJECT_ARENA, 4 * 64)
        region = make_arena(host, kind, capacity, size)
        return [log, region], [region] if kind == "destroyed" else []

    compare(setup, build, "handles", lambda rs: [handle(host, rs[0]), rs[1], handle(host, rs[1]), size, n])


@FEW
@given(first=st.integers(8, 300), second=st.integers(1, 300), n=st.integers(1, 64), same=st.booleans(),
       kinds=st.tuples(KINDS, KINDS))
def test_two_arenas_left_by_a_branch(setup, first, second, n, same, kinds):
    host = setup[0]

    def build():
        log = host.create_region(RegionKind.OBJECT_ARENA, 64)
        a = make_arena(host, "bump" if kinds[0] == "slab" else kinds[0], first, 8)
        b = a if same else make_arena(host, "bump" if kinds[1] == "slab" else kinds[1], second, 12)
        regions = [log, a] if same else [log, a, b]
        return regions, [r for r, k in ((a, kinds[0]), (b, kinds[1])) if k == "destroyed" and r in regions][:1]

    compare(setup, build, "two", lambda rs: [handle(host, rs[0]), rs[1], rs[1] if same else rs[2], n])


def test_an_arena_filled_by_the_loop_then_allocated_again_in_python(setup):
    host, _, linked = setup
    region = host.create_region(RegionKind.OBJECT_ARENA, 32 * 10)
    log = host.create_region(RegionKind.OBJECT_ARENA, 4 * 64)
    host.call(linked, "handles", handle(host, log), region, handle(host, region), 32, 8)
    assert host.region_info(region).used == 256
    assert (host.metrics(region).allocations, host.metrics(region).bytes_allocated) == (8, 256)
    assert host.alloc(region, 64).offset == 256  # the loop's bump pointer is the region's


@pytest.mark.parametrize("view_offset", [0, 4, 28, 4064, 4090])
@pytest.mark.parametrize("name", ["growth", "nested_growth", "nested_counted", "nested_counted_early"])
def test_runs_of_stores_into_one_block_mark_exactly_their_pages(setup, name, view_offset):
    """Blocks of 32 bytes across three 4 KiB pages, through a view whose offset puts some blocks across a
    page boundary, the last one ending at one: the dirty pages (and everything else) are the model's."""
    host = setup[0]
    blocks = 3 * 4096 // 32 - 4

    def build():
        arena = make_arena(host, "tracked", 32 * blocks, 32)
        view = make_arena(host, "tracked", 32 * blocks + view_offset, 32)
        return [arena, view], []

    def args(rs):
        target = handle(host, rs[1], view_offset)
        # 256 blocks: the last one ends at a page boundary (with the view at 0 or 4064, but one byte short)
        return [target, rs[0], 0, 256] if name == "growth" else [target, rs[0], 1, 255]

    compare(setup, build, name, args)


@pytest.mark.parametrize("name", ["nested_counted", "nested_counted_early"])
@pytest.mark.parametrize("kind", ["bump", "tracked"])
@pytest.mark.parametrize("blocks", [1, 5, 12, 40])
def test_nested_counted_runs_out_inside_the_inner_loop(setup, name, kind, blocks):
    """The arena runs out in the first round's inner loop (5 blocks), at its last iteration (12: 1 + 11), in the
    second round's outer allocation (13 would be needed for the second round) or not at all (40)."""
    host = setup[0]
    compare(setup, lambda: arena_and_view(host, kind, blocks, "arena"), name,
            lambda rs: [view_handle(host, rs, "arena"), rs[0], 3, 11])


@FEW
@given(values=st.lists(st.integers(0, 0xFFFF_FFFF), min_size=1, max_size=40),
       bad=st.one_of(st.none(), st.integers(0, 39)), room=st.integers(1, 12), kind=KINDS,
       old_view=st.sampled_from(["arena", "small"]))
def test_scan_counts_its_unconditional_loads_per_iteration(setup, values, bad, room, kind, old_view):
    """jvm_gen_alloc_scan's scan: a list walk counting its two unconditional loads by iterations (the third and
    the stores under an if per access): the counts are the model's at the end, at a bad pointer's typed error
    and at a full arena's trap."""
    host = setup[0]
    values = [v & ~7 if k % 3 == 0 else v for k, v in enumerate(values)]  # some copies in every walk
    nodes = bytearray()
    for k, v in enumerate(values):
        nxt = 12 * (k + 1) if k + 1 < len(values) else 0xFFFF_FFFF
        if bad == k:
            nxt = 12 * len(values) - 2  # its next load runs off the region's end
        nodes += nxt.to_bytes(4, "little") + v.to_bytes(4, "little") + (v ^ 0x5A5A5A5A).to_bytes(4, "little")

    def build():
        lst = host.create_region(RegionKind.OBJECT_ARENA, len(nodes))
        host.write(Handle(lst, host.region_info(lst).generation, 0), bytes(nodes))
        old = make_arena(host, kind, 16 * room, 16)
        regions = [lst, old]
        if old_view == "small":
            regions.append(host.create_region(RegionKind.OBJECT_ARENA, 8 * room + 4))
        return regions, [old] if kind == "destroyed" else []

    compare(setup, build, "scan", lambda rs: [handle(host, rs[0]), 0, handle(host, rs[-1]), rs[1]])


#: A loop whose second load follows a branch back to its head: it runs in every other iteration only.
CONTINUES = """(module
 (import "tvm" "load_u32" (func $ld (param i64 i32) (result i32)))
 (memory (export "memory") 1)
 (func (export "f") (param $h i64) (param $n i32) (result i32)
  (local $i i32) (local $acc i32)
  (loop $next
   (local.set $acc (i32.add (local.get $acc) (call $ld (local.get $h) (i32.shl (local.get $i) (i32.const 2)))))
   (local.set $i (i32.add (local.get $i) (i32.const 1)))
   (br_if $next (i32.and (local.get $i) (i32.const 1)))
   (local.set $acc (i32.add (local.get $acc) (call $ld (local.get $h) (i32.and (local.get $acc) (i32.const 0xFFC)))))
   (br_if $next (i32.lt_u (local.get $i) (local.get $n))))
  (local.get $acc)))"""


@pytest.mark.parametrize("n", [1, 2, 7, 20])
@pytest.mark.parametrize("capacity", [4096, 40])
def test_a_branch_back_to_the_head_skips_what_follows_it(binaryen, n, capacity):
    """Counted per iteration, the second load would count in every iteration; it runs in every other one (and
    with 40 bytes the first load fails at the eleventh iteration): the counts are the model's."""
    host = TvmHost(pools=2)
    try:
        results = []
        for inline in (False, True):
            instance = host.instantiate(CONTINUES, inline=inline)
            region = host.create_region(RegionKind.OBJECT_ARENA, capacity)
            host.write(Handle(region, host.region_info(region).generation, 0), bytes(range(40)))
            answer = run(host, instance, "f", [handle(host, region), n])
            results.append((answer, host.metrics(region).bytes_read))
            host.destroy_region(region)
        assert results[1] == results[0]
    finally:
        host.close()
