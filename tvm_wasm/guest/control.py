"""The control plane of the self-contained module, in wasm: what Python does for ``TvmHost``.

Region lifecycle (create with span placement and side tables, destroy with
a generation bump), pin/unpin with each kind's placement policy compiled
in, Hot/Warm tiers as an LRU hint, compaction, and the accessors an embedder
needs for zero-copy views. Every function writes the shared slot layout, so
the ABI code of :mod:`tvm_wasm.runtime.core_module` serves these regions
unchanged.

Error reporting follows the raw ABI: functions returning a code return it
(and leave it in ``last_error``); ``create_region`` returns 0 and accessors
return -1 with the code in ``last_error``. The codes are the model's: 1 no
such region, 5 allocation failed (no room, no id, generation space exhausted), 6 pinned, 8 read-only, 9 policy,
unsupported allocator, bad argument, or no Cold tier to demote into.

The Cold tier belongs to the embedder (in a browser, ``ColdTier`` of
``tvm-guest.js`` writes to the Origin Private File System): the module only
moves a region through its states. ``begin_spill`` makes it non-resident
while it still owns its span (accesses answer 4, so its bytes hold still
while they are written out), ``finish_spill`` gives the span back (Cold) or
``cancel_spill`` makes it resident again, and ``restore_region`` places a
fresh zeroed span for the embedder to fill back in.
"""

from __future__ import annotations

from collections.abc import Callable

from ..core.errors import AllocationFailed, NotResident, Pinned, PolicyViolation, ReadOnly, RegionNotFound
from ..core.types import PlacementPolicy, RegionKind, Residency
from ..runtime import access as A
from ..runtime import layout as L
from ..runtime.wat import Code, Func, dispatch
from . import layout as G
from .spans import round_span

META = "$meta"
MAX_KIND = max(RegionKind)

# Per-kind policy bits, 4 per kind: pinnable, spillable, starts Warm.
POLICY_PINNABLE = 1
POLICY_SPILLABLE = 2
POLICY_WARM = 4


def policy_bits(policy: PlacementPolicy) -> int:
    return (
        (POLICY_PINNABLE if policy.pinnable else 0)
        | (POLICY_SPILLABLE if policy.spillable else 0)
        | (POLICY_WARM if policy.initial_residency is Residency.WARM else 0)
    )


LIVE_RESIDENT = L.FLAG_LIVE | L.FLAG_RESIDENT
POLICY_TABLE = sum(policy_bits(PlacementPolicy.for_kind(kind)) << (4 * kind) for kind in RegionKind)


# ---------------------------------------------------------------- small pieces
def slot_load(field: int, load: str = "i32.load") -> str:
    if field in G.BYTE_FIELDS and load == "i32.load":
        load = "i32.load8_u"
    return f"({load} {META} offset={L.SLOTS + field} (local.get $slot))"


def slot_store(field: int, value: str, store: str = "i32.store") -> str:
    if field in G.BYTE_FIELDS and store == "i32.store":
        store = "i32.store8"
    return f"({store} {META} offset={L.SLOTS + field} (local.get $slot) {value})"


def set_state(value: str) -> Code:
    """Write ``SLOT_STATE`` and keep ``SLOT_WRITE_STATE`` = it | the region's store-only flags and
    ``SLOT_FAST_KEYS`` = :func:`fast_key` (so ``SLOT_POOL`` is written before the state it goes with).

    ``value`` (a folded i32) must be pure: it is evaluated once per field.
    """
    kept = f"(i32.and {slot_load(L.SLOT_WRITE_STATE)} (i32.const {L.WRITE_FLAGS}))"
    return [slot_store(L.SLOT_WRITE_STATE, f"(i32.or {value} {kept})"), slot_store(L.SLOT_STATE, value),
            *(slot_store(L.fast_key_field(k), fast_key(k), "i64.store") for k in range(L.FAST_KEY_POOLS))]


def fast_key(pool: int) -> str:
    """``layout.fast_key`` for ``pool`` of the slot in ``$slot`` from its state and pool words, as a folded i64."""
    region = f"(i64.extend_i32_u (i32.shr_u (local.get $slot) (i32.const {L.SLOT_SHIFT})))"
    state = slot_load(L.SLOT_STATE)
    fast = (f"(i32.and (i32.eq (i32.and {state} (i32.const {~L.GEN_MASK & 0xFFFFFFFF})) "
            f"(i32.const {L.FLAG_LIVE | L.FLAG_RESIDENT})) (i32.eq {slot_load(L.SLOT_POOL)} (i32.const {pool})))")
    key = (f"(i64.shl (i64.or (i64.shl {region} (i64.const 16)) "
           f"(i64.extend_i32_u (i32.and {state} (i32.const {L.GEN_MASK})))) (i64.const 32))")
    no_key = f"(i64.shl (i64.xor {region} (i64.const 1)) (i64.const 48))"
    return f"(select {key} {no_key} {fast})"


def header(field: int) -> str:
    return f"(i32.load {META} offset={field} (i32.const 0))"


def set_header(field: int, value: str) -> str:
    return f"(i32.store {META} offset={field} (i32.const 0) {value})"


def fail(code: int, result: str | None = None) -> str:
    """A ``then`` clause: record ``code`` in ``last_error`` and return ``result`` (the code by default)."""
    return f"(then {' '.join(failing(code, result))})"


def failing(code: int, result: str | None = None) -> Code:
    return [f"(global.set $last_error (i32.const {code}))", f"(return {result or f'(i32.const {code})'})"]


def policy_of(kind: str) -> str:
    """Folded i32: the policy bits of the kind in ``kind`` (an i32 expression)."""
    return f"(i32.and (i32.shr_u (i32.const {POLICY_TABLE}) (i32.shl {kind} (i32.const 2))) (i32.const 15))"


def next_generation(gen: str) -> str:
    """Folded i32: the next generation; callers refuse the bump at 65535 first (no wrap, as in the model)."""
    return f"(i32.add {gen} (i32.const 1))"


def destroyed_generation(gen: str) -> str:
    """Folded i32: the tombstone's generation, or 0 (retired: never reused) after the last one."""
    return f"(select (i32.const 0) {next_generation(gen)} (i32.ge_u {gen} (i32.const {L.GEN_MASK})))"


def current_generation() -> str:
    return f"(i32.and {slot_load(L.SLOT_STATE)} (i32.const {L.GEN_MASK}))"


def live_region(on_missing: str) -> Code:
    """``$slot`` of the live region ``$id``, or run ``on_missing`` (a ``then`` clause)."""
    return [
        "(local.set $slot (call $live_slot (local.get $id)))",
        f"(if (i32.lt_s (local.get $slot) (i32.const 0)) {on_missing})",
    ]


def stamp() -> Code:
    """Record an access in the shared LRU clock (the shared emitter reads ``$slot``)."""
    return A.stamp_epoch()


def bump_counter(field: int) -> str:
    return slot_store(field, f"(i64.add {slot_load(field, 'i64.load')} (i64.const 1))", "i64.store")


# ---------------------------------------------------------------- helpers
def live_slot_func() -> Func:
    """Slot byte index of region ``id`` if it is live, else -1 (ids 0 and above 65535 are never live)."""
    body = [
        ("(if (i32.or (i32.eqz (local.get $id)) (i32.gt_u (local.get $id) (i32.const 0xFFFF)))"
        " (then (return (i32.const -1))))"),
        f"(local.set $slot (i32.shl (local.get $id) (i32.const {L.SLOT_SHIFT})))",
        f"(select (local.get $slot) (i32.const -1) (i32.and {slot_load(L.SLOT_STATE)} (i32.const {L.FLAG_LIVE})))",
    ]
    return Func("live_slot", [("id", "i32")], ["i32"], [("slot", "i32")], body)


def peek_id_func() -> Func:
    """The id the next region gets: a never-used one while any remain, then a destroyed one that
    is not retired (a tombstone with generation 0); 0 if none."""
    body = [
        f"(local.set $id {header(G.GH_NEXT_ID)})",
        "(if (i32.le_u (local.get $id) (i32.const 0xFFFF)) (then (return (local.get $id))))",
        "(local.set $id (i32.const 1))",
        "(block $none (loop $scan",
        "  (br_if $none (i32.gt_u (local.get $id) (i32.const 0xFFFF)))",
        (f"  (local.set $state (i32.load {META} offset={L.SLOTS + L.SLOT_STATE} (i32.shl (local.get $id)"
        f" (i32.const {L.SLOT_SHIFT}))))"),
        (f"  (if (i32.and (i32.ne (i32.and (local.get $state) (i32.const {L.FLAG_TOMBSTONE})) (i32.const 0))"
        f" (i32.ne (i32.and (local.get $state) (i32.const {L.GEN_MASK})) (i32.const 0)))"),
        "    (then (return (local.get $id))))",
        "  (local.set $id (i32.add (local.get $id) (i32.const 1)))",
        "  (br $scan)))",
        "(i32.const 0)",
    ]
    return Func("peek_id", [], ["i32"], [("id", "i32"), ("state", "i32")], body)


# ---------------------------------------------------------------- create / destroy
def place_span(pools: int, failed: str = "(i32.const 0)") -> Code:
    """``$pool``/``$base`` of a span of ``$size`` bytes: the first pool with room (freed spans, then growth).

    ``failed`` is what the function returns when no pool has room (``last_error`` = 5).
    """
    return [
        "(local.set $base (i64.const -1))",
        "(block $placed (loop $try",
        f"  (br_if $placed (i32.ge_u (local.get $pool) (i32.const {pools})))",
        "  (local.set $base (call $span_take (local.get $pool) (local.get $size)))",
        "  (br_if $placed (i64.ge_s (local.get $base) (i64.const 0)))",
        "  (local.set $pool (i32.add (local.get $pool) (i32.const 1)))",
        "  (br $try)))",
        f"(if (i64.lt_s (local.get $base) (i64.const 0)) {fail(AllocationFailed.code, failed)})",
    ]


def side_table(pools: int) -> Code:
    """Size and place the slab or block side table; give the pool span back if there is no room."""
    slab_len = round_span("(i64.add (i64.const 8) (i64.mul (i64.const 5) (i64.extend_i32_u (local.get $slots))))")
    block_len = round_span(f"(i64.add (i64.const {G.BT_ENTRIES}) (i64.mul (i64.const {G.BLOCK_SIZE})"
                           " (i64.extend_i32_u (local.get $entries))))")
    return [
        f"(if (i32.eq (local.get $allocator) (i32.const {G.ALLOC_SLAB})) (then",
        "  (local.set $slots (i32.div_u (local.get $capacity) (local.get $param)))",
        f"  (local.set $side_len {slab_len})))",
        f"(if (i32.eq (local.get $allocator) (i32.const {G.ALLOC_BLOCKS})) (then",
        f"  (local.set $entries (select (local.get $param) (i32.const {G.DEFAULT_BLOCKS}) (local.get $param)))",
        f"  (local.set $side_len {block_len})))",
        "(if (i64.ne (local.get $side_len) (i64.const 0)) (then",
        f"  (local.set $side (call $span_take (i32.const {pools}) (local.get $side_len)))",
        "  (if (i64.lt_s (local.get $side) (i64.const 0)) (then",
        "    (call $span_give (local.get $pool) (local.get $base) (local.get $size))",
        f"    (global.set $last_error (i32.const {AllocationFailed.code})) (return (i32.const 0))))))",
    ]


def init_slab() -> Code:
    """The shared slab side table: all slots free, popped in ascending order (like ``Slab``)."""
    stack_entry = "(i32.add (local.get $table) (i32.shl (local.get $i) (i32.const 2)))"
    return [
        f"(if (i32.eq (local.get $allocator) (i32.const {G.ALLOC_SLAB})) (then",
        "  (local.set $table (i32.wrap_i64 (local.get $side)))",
        f"  (i32.store {META} offset={L.SLAB_COUNT} (local.get $table) (local.get $slots))",
        f"  (i32.store {META} offset={L.SLAB_SLOTS} (local.get $table) (local.get $slots))",
        "  (block $filled (loop $fill",
        "    (br_if $filled (i32.ge_u (local.get $i) (local.get $slots)))",
        f"    (i32.store {META} offset={L.SLAB_STACK} {stack_entry}",
        "      (i32.sub (i32.sub (local.get $slots) (local.get $i)) (i32.const 1)))",
        "    (local.set $i (i32.add (local.get $i) (i32.const 1)))",
        "    (br $fill)))",
        (f"  (memory.fill {META} (i32.add (i32.add (local.get $table) (i32.const {L.SLAB_STACK}))"
        " (i32.shl (local.get $slots) (i32.const 2))) (i32.const 1) (local.get $slots))"),
        f"  {slot_store(L.SLOT_CLASS_SIZE, '(local.get $param)')}",
        f"  {slot_store(L.SLOT_SLAB_TABLE, '(local.get $table)')}))",
    ]


def init_blocks() -> Code:
    return [
        f"(if (i32.eq (local.get $allocator) (i32.const {G.ALLOC_BLOCKS})) (then",
        "  (local.set $table (i32.wrap_i64 (local.get $side)))",
        f"  (i32.store {META} offset={G.BT_CAP} (local.get $table) (local.get $entries))",
        f"  (i32.store {META} offset={G.BT_COUNT} (local.get $table) (i32.const 0))",
        f"  (i32.store {META} offset={G.BT_BUMP} (local.get $table) (i32.const 0))))",
    ]


def create_func(pools: int) -> Func:
    """create_region_with(kind, capacity, allocator, param) -> region id, or 0 with ``last_error``.

    ``allocator``: 0 bump, 1 compactable blocks (``param`` = block-table
    entries, 0 for the default), 2 slab (``param`` = class size). Nothing
    changes on failure: the id is taken only once the span and side table are.
    """
    bad = fail(PolicyViolation.code, "(i32.const 0)")
    body = [
        f"(if (i32.gt_u (local.get $kind) (i32.const {MAX_KIND})) {bad})",
        f"(if (i32.eqz (local.get $capacity)) {bad})",
        f"(if (i32.gt_u (local.get $allocator) (i32.const {G.ALLOC_SLAB})) {bad})",
        f"(if (i32.and (i32.eq (local.get $allocator) (i32.const {G.ALLOC_SLAB})) (i32.eqz (local.get $param))) {bad})",
        "(local.set $id (call $peek_id))",
        f"(if (i32.eqz (local.get $id)) {fail(AllocationFailed.code, '(i32.const 0)')})",
        f"(local.set $size {round_span('(i64.extend_i32_u (local.get $capacity))')})",
        *place_span(pools),
        *side_table(pools),
        # Commit: the id, then its slot (a destroyed id carries its bumped generation on).
        f"(local.set $slot (i32.shl (local.get $id) (i32.const {L.SLOT_SHIFT})))",
        f"(local.set $gen {current_generation()})",
        "(if (i32.eqz (local.get $gen)) (then (local.set $gen (i32.const 1))))",
        (f"(if (i32.eq (local.get $id) {header(G.GH_NEXT_ID)})"
        f" (then {set_header(G.GH_NEXT_ID, '(i32.add (local.get $id) (i32.const 1))')}))"),
        f"(memory.fill {META} (i32.add (local.get $slot) (i32.const {L.SLOTS})) (i32.const 0) (i32.const {L.SLOT_SIZE}))",
        slot_store(L.SLOT_POOL, "(local.get $pool)"),
        slot_store(L.SLOT_BASE, "(i32.wrap_i64 (local.get $base))"),
        slot_store(L.SLOT_CAPACITY, "(local.get $capacity)"),
        slot_store(L.SLOT_ALLOCATOR, "(local.get $allocator)"),
        slot_store(G.GS_KIND, "(local.get $kind)"),
        slot_store(G.GS_TIER, f"(i32.shr_u (i32.and {policy_of('(local.get $kind)')} (i32.const {POLICY_WARM}))"
                              " (i32.const 2))"),
        slot_store(G.GS_SPAN, "(local.get $size)", "i64.store"),
        slot_store(G.GS_SIDE, "(i32.wrap_i64 (local.get $side))"),
        *init_slab(),
        *init_blocks(),
        *set_state(f"(i32.or (local.get $gen) (i32.const {L.FLAG_LIVE | L.FLAG_RESIDENT}))"),
        *stamp(),
        set_header(G.GH_LIVE, f"(i32.add {header(G.GH_LIVE)} (i32.const 1))"),
        "(local.get $id)",
    ]
    params = [("kind", "i32"), ("capacity", "i32"), ("allocator", "i32"), ("param", "i32")]
    locals_ = [("id", "i32"), ("gen", "i32"), ("slot", "i32"), ("pool", "i32"), ("size", "i64"), ("base", "i64"),
               ("side", "i64"), ("side_len", "i64"), ("slots", "i32"), ("entries", "i32"), ("table", "i32"),
               ("i", "i32")]
    return Func("create_region_with", params, ["i32"], locals_, body, export="create_region_with")


def create_bump_func() -> Func:
    """create_region(kind, capacity): a Bump region, as ``TvmHost.create_region`` makes by default."""
    body = ["(call $create_region_with (local.get $kind) (local.get $capacity) (i32.const 0) (i32.const 0))"]
    return Func("create_region", [("kind", "i32"), ("capacity", "i32")], ["i32"], [], body, export="create_region")


def give_span() -> str:
    """Zero what the region in ``$slot`` wrote (its touched pages), then give its pool span back."""
    span = f"{slot_load(L.SLOT_POOL)} (i64.extend_i32_u {slot_load(L.SLOT_BASE)}) {slot_load(G.GS_SPAN, 'i64.load')}"
    return f"(call $span_scrub {span}) (call $span_give {span})"


def side_table_len() -> str:
    """Folded i64: the span length of the slab or block side table at ``SLOT_SLAB_TABLE`` (as ``side_table`` sized it)."""
    table = f"(i64.extend_i32_u (i32.load {META} offset={{}} {slot_load(G.GS_SIDE)}))"
    slab = round_span(f"(i64.add (i64.const 8) (i64.mul (i64.const 5) {table.format(L.SLAB_SLOTS)}))")
    blocks = round_span(f"(i64.add (i64.const {G.BT_ENTRIES}) (i64.mul (i64.const {G.BLOCK_SIZE}) {table.format(G.BT_CAP)}))")
    return f"(select {slab} {blocks} (i32.eq {slot_load(L.SLOT_ALLOCATOR)} (i32.const {G.ALLOC_SLAB})))"


def give_side_span(pools: int, start: str, length: str) -> str:
    """Zero a side table (free arena bytes read as zero) and give its span back to the side-table arena."""
    span = f"(i32.const {pools}) (i64.extend_i32_u {start}) {length}"
    return f"(call $arena_zero {span}) (call $span_give {span})"


def dirty_table_len() -> str:
    """Folded i64: the span length of the region's dirty-page map (``layout.dirty_table_size``, rounded)."""
    pages = (f"(i64.shr_u (i64.add {slot_load(L.SLOT_CAPACITY, 'i64.load32_u')} (i64.const {L.DIRTY_PAGE - 1}))"
             f" (i64.const {L.DIRTY_PAGE_SHIFT}))")
    align = L.DIRTY_MAP_ALIGN
    return round_span(f"(i64.and (i64.add {pages} (i64.const {align - 1})) (i64.const {-align}))")


def dirty_map_start() -> str:
    """Folded i32: the meta offset of the region's dirty-page map (``SLOT_DIRTY_TABLE`` is relative to the
    scratch map, see ``layout.dirty_field``); meaningful only while the region is tracked."""
    return f"(i32.add {slot_load(L.SLOT_DIRTY_TABLE)} (i32.const {L.DIRTY_SCRATCH}))"


def destroy_func(pools: int) -> Func:
    """Zero what the region wrote, give the span and side table back and leave a tombstone: old handles
    now fail with code 2."""
    body = [
        *live_region(fail(RegionNotFound.code)),
        # A Cold region's span was given back when it was spilled.
        f"(if (i32.ne {slot_load(G.GS_TIER)} (i32.const {Residency.COLD})) (then {give_span()}))",
        f"(if {slot_load(G.GS_SIDE)} (then {give_side_span(pools, slot_load(G.GS_SIDE), side_table_len())}))",
        (f"(if {slot_load(L.SLOT_DIRTY_TABLE)}"
         f" (then {give_side_span(pools, dirty_map_start(), dirty_table_len())}))"),
        f"(local.set $gen {destroyed_generation(current_generation())})",
        f"(memory.fill {META} (i32.add (local.get $slot) (i32.const {L.SLOTS})) (i32.const 0) (i32.const {L.SLOT_SIZE}))",
        *set_state(f"(i32.or (local.get $gen) (i32.const {L.FLAG_TOMBSTONE}))"),
        set_header(G.GH_LIVE, f"(i32.sub {header(G.GH_LIVE)} (i32.const 1))"),
        "(i32.const 0)",
    ]
    return Func("destroy_region", [("id", "i32")], ["i32"], [("slot", "i32"), ("gen", "i32")], body,
                export="destroy_region")


# ---------------------------------------------------------------- pin, tiers, compaction
def region_op(name: str, code: Code, extra_locals: list[tuple[str, str]] | None = None) -> Func:
    """``name(id) -> code``: find the live region, run ``code`` (which returns on failure), answer 0."""
    body = [*live_region(fail(RegionNotFound.code)), *code, "(i32.const 0)"]
    return Func(name, [("id", "i32")], ["i32"], [("slot", "i32"), *(extra_locals or [])], body, export=name)


def kind_policy() -> str:
    return policy_of(slot_load(G.GS_KIND))


def read_only() -> str:
    """Folded i32: the region in ``$slot`` is read-only (``protect``)."""
    return f"(i32.and {slot_load(L.SLOT_WRITE_STATE)} (i32.const {L.FLAG_READ_ONLY}))"


def not_resident() -> str:
    """Folded i32: the region in ``$slot`` is Cold or being spilled (its bytes are not in its pool)."""
    return f"(i32.eqz (i32.and {slot_load(L.SLOT_STATE)} (i32.const {L.FLAG_RESIDENT})))"


def pin_func() -> Func:
    """Only pinnable kinds (the policy table) may pin, and only while resident (fault it in first: 4)."""
    return region_op("pin", [
        f"(if (i32.eqz (i32.and {kind_policy()} (i32.const {POLICY_PINNABLE}))) {fail(PolicyViolation.code)})",
        f"(if {not_resident()} {fail(NotResident.code)})",
        slot_store(G.GS_PINNED, "(i32.const 1)"),
    ])


def unpin_func() -> Func:
    return region_op("unpin", [slot_store(G.GS_PINNED, "(i32.const 0)")])


def demote_func() -> Func:
    """Hot -> Warm, an LRU hint for the embedder; colder needs the embedder's Cold tier (9)."""
    return region_op("demote_region", [
        f"(if {slot_load(G.GS_PINNED)} {fail(Pinned.code)})",
        f"(if (i32.eqz (i32.and {kind_policy()} (i32.const {POLICY_SPILLABLE}))) {fail(PolicyViolation.code)})",
        f"(if (i32.ne {slot_load(G.GS_TIER)} (i32.const {Residency.HOT})) {fail(PolicyViolation.code)})",
        slot_store(G.GS_TIER, f"(i32.const {Residency.WARM})"),
        bump_counter(G.GS_DEMOTIONS),
        *stamp(),
    ])


def promote_func() -> Func:
    """Warm -> Hot; Hot stays Hot; a Cold region must be restored by the embedder first (4)."""
    return region_op("promote_region", [
        f"(if {not_resident()} {fail(NotResident.code)})",
        f"(if (i32.eq {slot_load(G.GS_TIER)} (i32.const {Residency.WARM})) (then",
        f"  {slot_store(G.GS_TIER, f'(i32.const {Residency.HOT})')}",
        f"  {bump_counter(G.GS_PROMOTIONS)}",
        *[f"  {line}" for line in stamp()],
        "))",
    ])


def compact_region_func() -> Func:
    """Pack a blocks region, bump its generation (old handles: code 2 until ``migrate``d)."""
    return region_op("compact_region", [
        f"(if {read_only()} {fail(ReadOnly.code)})",
        f"(if {slot_load(G.GS_PINNED)} {fail(Pinned.code)})",
        f"(if {not_resident()} {fail(NotResident.code)})",
        f"(if (i32.ne {slot_load(L.SLOT_ALLOCATOR)} (i32.const {G.ALLOC_BLOCKS})) {fail(PolicyViolation.code)})",
        "(local.set $gen " + current_generation() + ")",
        f"(if (i32.ge_u (local.get $gen) (i32.const {L.GEN_MASK})) {fail(AllocationFailed.code)})",
        # Blocks slide and the tail is zeroed: every page may change (not read-only, so this answers 0).
        f"(drop (call $write_barrier (local.get $slot) (i32.const 0) {slot_load(L.SLOT_CAPACITY)}))",
        "(call $compact_blocks (local.get $slot))",
        slot_store(G.GS_PREV_GEN, "(local.get $gen)"),
        *set_state(f"(i32.or {next_generation('(local.get $gen)')} (i32.const {L.FLAG_LIVE | L.FLAG_RESIDENT}))"),
        *stamp(),
    ], [("gen", "i32")])


# ---------------------------------------------------------------- accessors
def accessor(name: str, value: Callable[[], str], result: str = "i32") -> Func:
    """``name(id)``: a field of a live region, or -1 with ``last_error`` = 1.

    u32 fields that may reach 2^32 - 1 (capacity, used, base) answer as i64,
    so -1 is never a valid result (the ABI table's ``valid`` ranges).
    """
    body = [*live_region(fail(RegionNotFound.code, f"({result}.const -1)")), value()]
    return Func(name, [("id", "i32")], [result], [("slot", "i32")], body, export=name)


def _u32_as_i64(field: int) -> Callable[[], str]:
    return lambda: slot_load(field, "i64.load32_u")


ACCESSORS: dict[str, tuple[Callable[[], str], str]] = {
    "region_used": (_u32_as_i64(L.SLOT_USED), "i64"),
    "region_generation": (current_generation, "i32"),
    "region_pool": (lambda: slot_load(L.SLOT_POOL), "i32"),
    "region_base": (_u32_as_i64(L.SLOT_BASE), "i64"),
    "region_capacity": (_u32_as_i64(L.SLOT_CAPACITY), "i64"),
    "region_allocator": (lambda: slot_load(L.SLOT_ALLOCATOR), "i32"),
    "region_kind": (lambda: slot_load(G.GS_KIND), "i32"),
    "region_residency": (lambda: slot_load(G.GS_TIER), "i32"),
    "region_pinned": (lambda: slot_load(G.GS_PINNED), "i32"),
}

# ``region_metric(id, index)``: the fields of ``RegionMetrics``, in order.
METRIC_FIELDS: list[int | None] = [
    L.SLOT_ALLOCATIONS, L.SLOT_BYTES_ALLOCATED, L.SLOT_BYTES_READ, L.SLOT_BYTES_WRITTEN,
    G.GS_FAULTS,
    G.GS_PROMOTIONS, G.GS_DEMOTIONS, G.GS_BYTES_DISCARDED,
]


def metric_func() -> Func:
    arms = [[f"(return {slot_load(f, 'i64.load') if f is not None else '(i64.const 0)'})"] for f in METRIC_FIELDS]
    body = [
        *live_region(fail(RegionNotFound.code, "(i64.const -1)")),
        *dispatch(["(local.get $index)"], arms, failing(PolicyViolation.code, "(i64.const -1)"), "metric"),
    ]
    return Func("region_metric", [("id", "i32"), ("index", "i32")], ["i64"], [("slot", "i32")], body,
                export="region_metric")


def last_access_func() -> Func:
    return accessor("region_last_access", lambda: slot_load(L.SLOT_LAST_EPOCH, "i64.load"), "i64")


def region_count_func() -> Func:
    return Func("region_count", [], ["i32"], [], [header(G.GH_LIVE)], export="region_count")


def lru_candidate_func() -> Func:
    """The region an embedder should evict first: Warm before Hot, least recently used first.

    Pinned, unspillable and non-resident regions are never candidates; 0 when there is none.
    This is the host's eviction order, offered as a hint (nothing here spills).
    """
    key = (f"(i64.or (i64.shl (i64.extend_i32_u (i32.ne {slot_load(G.GS_TIER)} (i32.const {Residency.WARM})))"
           f" (i64.const 63)) {slot_load(L.SLOT_LAST_EPOCH, 'i64.load')})")
    body = [
        "(local.set $best_key (i64.const -1))",
        (f"(local.set $end (select {header(G.GH_NEXT_ID)} (i32.const 0x10000)"
        f" (i32.le_u {header(G.GH_NEXT_ID)} (i32.const 0x10000))))"),
        "(local.set $id (i32.const 1))",
        "(block $done (loop $scan",
        "  (br_if $done (i32.ge_u (local.get $id) (local.get $end)))",
        f"  (local.set $slot (i32.shl (local.get $id) (i32.const {L.SLOT_SHIFT})))",
        f"  (if (i32.and (i32.and (i32.eq (i32.and {slot_load(L.SLOT_STATE)} (i32.const {LIVE_RESIDENT}))"
        f" (i32.const {LIVE_RESIDENT}))",
        f"                        (i32.eqz {slot_load(G.GS_PINNED)}))",
        f"               (i32.ne (i32.and {kind_policy()} (i32.const {POLICY_SPILLABLE})) (i32.const 0)))",
        "    (then",
        f"      (local.set $key {key})",
        "      (if (i64.lt_u (local.get $key) (local.get $best_key))",
        "        (then (local.set $best_key (local.get $key)) (local.set $best (local.get $id))))))",
        "  (local.set $id (i32.add (local.get $id) (i32.const 1)))",
        "  (br $scan)))",
        "(local.get $best)",
    ]
    locals_ = [("id", "i32"), ("end", "i32"), ("slot", "i32"), ("best", "i32"), ("key", "i64"), ("best_key", "i64")]
    return Func("lru_candidate", [], ["i32"], locals_, body, export="lru_candidate")


def handle_address_func() -> Func:
    """handle_address(h, len) -> ``pool << 32 | address`` of ``[offset, offset + len)``, or -code.

    What an embedder needs for a zero-copy view of a handle's bytes, with the
    same region, generation, residency and bounds checks as every data access;
    it stamps the region's last access (uses of a view it hands out are not seen)
    and marks the range touched (the embedder may write through the view).
    """
    on_error = lambda: [
        "(global.set $last_error (local.get $code))",
        "(return (i64.sub (i64.const 0) (i64.extend_i32_u (local.get $code))))",
    ]
    body = [
        *A.validate_handle("h", ["local.get $len", "i64.extend_i32_u", "i64.add"], on_error),
        *A.ensure_resident("h", on_error),  # a Cold region's bytes are not in its pool: 4
        *stamp(),  # taking a view is an access, for the LRU order
        *A.region_address("h", ["i32.const 0"]),
        f"(call $touch_span {slot_load(L.SLOT_POOL)} (local.get $addr) (local.get $len))",
        f"(i64.or (i64.shl (i64.extend_i32_u {slot_load(L.SLOT_POOL)}) (i64.const 32))",
        f"  (i64.extend_i32_u (i32.add {slot_load(L.SLOT_BASE)} (i32.wrap_i64 (local.get $h)))))",
    ]
    return Func("handle_address", [("h", "i64"), ("len", "i32")], ["i64"], A.RESOLVE_LOCALS, body,
                export="handle_address")


def note_read_func() -> Func:
    """note_read(h, len) -> code: the embedder copied ``[offset, offset + len)`` out through ``handle_address``
    (which stamped the clock): the same checks, then ``len`` counted in ``bytes_read``, as the model's ``read``
    counts it. No clock tick of its own, so a read is one access for the LRU order, as in the model."""
    on_error = lambda: ["(global.set $last_error (local.get $code))", "(return (local.get $code))"]
    body = [
        *A.validate_handle("h", ["local.get $len", "i64.extend_i32_u", "i64.add"], on_error),
        *A.ensure_resident("h", on_error),
        *A.count(L.SLOT_BYTES_READ, ["local.get $len", "i64.extend_i32_u"], stamp=False),
        "i32.const 0",
    ]
    return Func("note_read", [("h", "i64"), ("len", "i32")], ["i32"], A.RESOLVE_LOCALS, body, export="note_read")


# ---------------------------------------------------------------- aligned allocation
DEFAULT_ALIGN = 8  # every typed array's element size divides it (Float64Array, BigInt64Array)


def alloc_aligned_func() -> Func:
    """alloc_aligned(id, size, align) -> handle whose offset is a multiple of ``align``; 0 with ``last_error``.

    ``align`` is a power of two (0: the default, 8 for Bump and compactable
    blocks, the largest power of two dividing the class size, at most 8,
    for Slab). Spans start 16-byte aligned, so an offset alignment up to 16
    is an address alignment too (what typed views need). Bump pads ``used``
    up to the boundary (like the model's ``Bump.alloc(size, align)``),
    blocks pad their bump pointer, Slab needs ``align`` to divide the class
    size (else 5, like a model allocator that cannot align). Padding is
    undone when the allocation fails.
    """
    bad = fail(AllocationFailed.code, "(i64.const 0)")
    pad_to = "(i32.and (i32.add (local.get $was) (i32.sub (local.get $align) (i32.const 1))) (i32.sub (i32.const 0) (local.get $align)))"
    pad_fits = ("(i64.le_u (i64.and (i64.add (i64.extend_i32_u (local.get $was)) (i64.extend_i32_u (i32.sub (local.get $align) (i32.const 1))))"
                " (i64.sub (i64.const 0) (i64.extend_i32_u (local.get $align))))"
                f" (i64.extend_i32_u {slot_load(L.SLOT_CAPACITY)}))")
    table_bump = f"(i32.load {META} offset={G.BT_BUMP} (local.get $table))"
    body = [
        *live_region(fail(RegionNotFound.code, "(i64.const 0)")),
        f"(if {read_only()} {fail(ReadOnly.code, '(i64.const 0)')})",
        f"(local.set $allocator {slot_load(L.SLOT_ALLOCATOR)})",
        "(if (i32.eqz (local.get $align)) (then",
        f"  (local.set $align (i32.const {DEFAULT_ALIGN}))",
        f"  (if (i32.eq (local.get $allocator) (i32.const {G.ALLOC_SLAB})) (then",
        "    (local.set $class " + slot_load(L.SLOT_CLASS_SIZE) + ")",
        "    (local.set $align (i32.and (local.get $class) (i32.sub (i32.const 0) (local.get $class))))",
        f"    (if (i32.gt_u (local.get $align) (i32.const {DEFAULT_ALIGN})) (then (local.set $align (i32.const {DEFAULT_ALIGN}))))))))",
        f"(if (i32.or (i32.eqz (local.get $align)) (i32.and (local.get $align) (i32.sub (local.get $align) (i32.const 1)))) {bad})",
        f"(if (i32.eq (local.get $allocator) (i32.const {G.ALLOC_SLAB})) (then",
        f"  (if (i32.rem_u {slot_load(L.SLOT_CLASS_SIZE)} (local.get $align)) {bad})",
        "  (return (call $alloc (local.get $id) (local.get $size)))))",
        f"(if (i32.eq (local.get $allocator) (i32.const {G.ALLOC_BLOCKS})) (then",
        f"  (local.set $table {slot_load(G.GS_SIDE)})",
        f"  (local.set $was {table_bump})",
        f"  (if (i32.eqz {pad_fits}) {bad})",
        f"  (i32.store {META} offset={G.BT_BUMP} (local.get $table) {pad_to})",
        "  (local.set $h (call $alloc (local.get $id) (local.get $size)))",
        f"  (if (i64.eqz (local.get $h)) (then (i32.store {META} offset={G.BT_BUMP} (local.get $table) (local.get $was))))",
        "  (return (local.get $h))))",
        f"(local.set $was {slot_load(L.SLOT_USED)})",
        f"(if (i32.eqz {pad_fits}) {bad})",
        slot_store(L.SLOT_USED, pad_to),
        "(local.set $h (call $alloc (local.get $id) (local.get $size)))",
        f"(if (i64.eqz (local.get $h)) (then {slot_store(L.SLOT_USED, '(local.get $was)')}))",
        "(local.get $h)",
    ]
    params = [("id", "i32"), ("size", "i32"), ("align", "i32")]
    locals_ = [("slot", "i32"), ("allocator", "i32"), ("class", "i32"), ("table", "i32"), ("was", "i32"), ("h", "i64")]
    return Func("alloc_aligned", params, ["i64"], locals_, body, export="alloc_aligned")


# ---------------------------------------------------------------- the embedder's Cold tier
def tier_is(value: int) -> str:
    return f"(i32.eq {slot_load(G.GS_TIER)} (i32.const {value}))"


def set_state_flags(flags: str) -> Code:
    return set_state(f"(i32.or (i32.and {slot_load(L.SLOT_STATE)} (i32.const {~L.FLAG_RESIDENT})) {flags})")


def begin_spill_func() -> Func:
    """Resident -> spilling: accesses answer 4 while the embedder writes the bytes out (the span stays).

    Pinned: 6; a kind that may not spill: 9; already Cold or spilling: 4.
    """
    return region_op("begin_spill", [
        f"(if {not_resident()} {fail(NotResident.code)})",
        f"(if {slot_load(G.GS_PINNED)} {fail(Pinned.code)})",
        f"(if (i32.eqz (i32.and {kind_policy()} (i32.const {POLICY_SPILLABLE}))) {fail(PolicyViolation.code)})",
        *set_state_flags("(i32.const 0)"),
        slot_store(G.GS_TIER, f"(i32.const {G.TIER_SPILLING})"),
    ])


def finish_spill_func() -> Func:
    """Spilling -> Cold: what the region wrote is zeroed and the span goes back to its pool (it may be
    reused at once)."""
    return region_op("finish_spill", [
        f"(if (i32.eqz {tier_is(G.TIER_SPILLING)}) {fail(PolicyViolation.code)})",
        give_span(),
        slot_store(G.GS_TIER, f"(i32.const {Residency.COLD})"),
        bump_counter(G.GS_DEMOTIONS),
    ])


def cancel_spill_func() -> Func:
    """Spilling -> Hot: the write-out failed; the bytes never left the span."""
    return region_op("cancel_spill", [
        f"(if (i32.eqz {tier_is(G.TIER_SPILLING)}) {fail(PolicyViolation.code)})",
        *set_state_flags(f"(i32.const {L.FLAG_RESIDENT})"),
        slot_store(G.GS_TIER, f"(i32.const {Residency.HOT})"),
    ])


def restore_region_func(pools: int) -> Func:
    """Cold -> Hot: place a zeroed span (first pool with room, like create) for the embedder to fill.

    Not Cold: 9; no room in any pool: 5 (the region stays Cold). The whole
    span counts as touched: the embedder writes the bytes back in directly.
    """
    return region_op("restore_region", [
        f"(if (i32.eqz {tier_is(Residency.COLD)}) {fail(PolicyViolation.code)})",
        f"(local.set $size {slot_load(G.GS_SPAN, 'i64.load')})",
        *place_span(pools, f"(i32.const {AllocationFailed.code})"),
        slot_store(L.SLOT_POOL, "(local.get $pool)"),
        slot_store(L.SLOT_BASE, "(i32.wrap_i64 (local.get $base))"),
        "(call $touch_span (local.get $pool) (i32.wrap_i64 (local.get $base)) " + slot_load(L.SLOT_CAPACITY) + ")",
        *set_state_flags(f"(i32.const {L.FLAG_RESIDENT})"),
        slot_store(G.GS_TIER, f"(i32.const {Residency.HOT})"),
        bump_counter(G.GS_FAULTS),
        *stamp(),
    ], [("pool", "i32"), ("size", "i64"), ("base", "i64")])


def control_funcs(pools: int) -> list[Func]:
    return [
        live_slot_func(), peek_id_func(),
        create_func(pools), create_bump_func(), destroy_func(pools),
        pin_func(), unpin_func(), demote_func(), promote_func(), compact_region_func(),
        *(accessor(name, value, result) for name, (value, result) in ACCESSORS.items()),
        metric_func(), last_access_func(), region_count_func(), lru_candidate_func(), handle_address_func(),
        note_read_func(),
        alloc_aligned_func(), begin_spill_func(), finish_spill_func(), cancel_spill_func(),
        restore_region_func(pools),
    ]
