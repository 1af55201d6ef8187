"""The raw ``tvm`` ABI: every function a guest may import from module ``tvm``, as one table.

This is the source of truth. The runtime's exports (``tvm_wasm.runtime``),
the host's slow paths (``tvm_wasm.host``), the self-contained module
(``tvm_wasm.guest``), the C header and Rust bindings (``tvm_wasm.sdk``) and
the reference table in ``docs/guests.md`` are generated from it or tested
against it (``tests/abi``), so none of them can drift.

**Conventions** (one for the whole ABI):

- Handles are i64: ``region_id:16 | generation:16 | offset:32``. Generations
  start at 1 and are never 0, so a live handle never packs to 0. Region ids
  are 1..65535. Every i32 the ABI calls a size, offset, length or pointer is
  unsigned.
- A function whose result is an error code (``OnError.CODE``) returns 0 on
  success, else the code, and leaves the code in ``last_error``.
- A function that returns a value (``OnError.SENTINEL``) returns its
  ``sentinel`` on failure, a value no successful call can return (the
  ``valid`` range says which values can), and leaves the code in
  ``last_error``. A value that could be anything (a 64-bit hash, a loaded
  value) is written through an out-pointer into guest memory instead, and
  the function returns a code.
- Typed loads and stores (``OnError.TRAP``) trap on any invalid access,
  having recorded the cause: on ``TvmHost`` the runtime enters Python once
  and raises the typed ``TvmError`` (which reaches whoever called the wasm
  export), in the self-contained module the ``TRAP_CAUSE`` globals hold it
  and ``trap_seq`` counts it. Each has a ``try_`` twin that returns a code.
- ``last_error()`` returns the code of the last failure and clears it
  (read-and-clear); a successful call does not clear it.

Use :func:`for_deployment` for the functions one deployment serves and
:func:`by_name` to look one up.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..core.errors import (
    AllocationFailed,
    GuestMemoryError,
    NotResident,
    OutOfBounds,
    Pinned,
    ReadOnly,
    RegionNotFound,
    StaleHandle,
)
from ..core.directory import DIRTY_PAGE
from ..core.handle_faults import BULK_ERROR, HANDLE_ERROR, REGION_STATES  # noqa: F401 - part of the table
from ..core.types import RegionKind, RegionMetrics, Residency

U32_MAX = 0xFFFF_FFFF
I64_MAX = (1 << 63) - 1

HOST = "host"
MODULE = "module"
DEPLOYMENTS = (HOST, MODULE)


class OnError(enum.Enum):
    """What a function does when it fails."""

    CODE = "returns the error code (0 on success), also left in last_error"
    SENTINEL = "returns its sentinel, with the code in last_error"
    TRAP = "traps; the cause is recorded (host: raises the typed TvmError)"
    NEVER = "cannot fail"


# ---------------------------------------------------------------- error codes
@dataclass(frozen=True)
class ErrorCode:
    """One raw-ABI error code: ``name`` is the C/Rust/JS constant suffix."""

    code: int
    name: str
    meaning: str


ERROR_CODES: tuple[ErrorCode, ...] = (
    ErrorCode(0, "OK", "success"),
    ErrorCode(RegionNotFound.code, "NOT_FOUND", "no such region (never created, or destroyed)"),
    ErrorCode(StaleHandle.code, "STALE", "the handle's generation is not the region's current one"),
    ErrorCode(OutOfBounds.code, "OUT_OF_BOUNDS", "outside the region's capacity (or not an allocated block)"),
    ErrorCode(NotResident.code, "NOT_RESIDENT", "the region is Cold or External and may not be faulted in"),
    ErrorCode(AllocationFailed.code, "ALLOCATION_FAILED", "no room: region, pool, id space or budget full"),
    ErrorCode(Pinned.code, "PINNED", "the region is pinned"),
    ErrorCode(GuestMemoryError.code, "GUEST_MEMORY", "a guest-memory range lies outside the guest's memory"),
    ErrorCode(ReadOnly.code, "READ_ONLY", "the region is read-only (protect): nothing changed"),
    ErrorCode(9, "OTHER", "policy, allocator, backing store, bad argument, or a region the runtime cannot reach"),
)


def code_message(code: int, what: str) -> str:
    """The message of an error known only by its raw ``code`` (an embedder that got a code back, such as
    ``GuestInstance``): ``what`` failed, then the code's meaning from ``ERROR_CODES`` (``destroy_region:
    no such region (never created, or destroyed)``); code 9 has several causes, so it is ``what`` alone."""
    meaning = next((e.meaning for e in ERROR_CODES if e.code == code and 0 < code < 9), None)
    return f"{what}: {meaning}" if meaning else what


# ---------------------------------------------------------------- enums a guest passes
@dataclass(frozen=True)
class EnumValue:
    value: int
    name: str
    meaning: str = ""


REGION_KINDS: tuple[EnumValue, ...] = tuple(EnumValue(int(k), k.name) for k in RegionKind)
RESIDENCIES: tuple[EnumValue, ...] = tuple(EnumValue(int(r), r.name) for r in Residency)
ALLOCATORS: tuple[EnumValue, ...] = (
    EnumValue(0, "BUMP", "bump allocation; dealloc is a no-op"),
    EnumValue(1, "FREELIST", "compactable blocks (host: Freelist; module: block table, param = entries, 0: 4096)"),
    EnumValue(2, "SLAB", "fixed-size slots, param = class size"),
)
METRICS: tuple[EnumValue, ...] = tuple(
    EnumValue(i, name.upper()) for i, name in enumerate(RegionMetrics.__dataclass_fields__)
)


# ---------------------------------------------------------------- typed access
@dataclass(frozen=True)
class TypedWidth:
    """One typed load/store pair: wasm value type, width in bytes and the instructions."""

    name: str
    value_type: str
    width: int
    load: str
    store: str


TYPED_ACCESS: tuple[TypedWidth, ...] = (
    TypedWidth("u8", "i32", 1, "i32.load8_u", "i32.store8"),
    TypedWidth("u16", "i32", 2, "i32.load16_u", "i32.store16"),
    TypedWidth("u32", "i32", 4, "i32.load", "i32.store"),
    TypedWidth("i64", "i64", 8, "i64.load", "i64.store"),
    TypedWidth("f32", "f32", 4, "f32.load", "f32.store"),
    TypedWidth("f64", "f64", 8, "f64.load", "f64.store"),
)


# ---------------------------------------------------------------- functions
PARAM_TYPES = {
    "handle": "i64", "region": "i32", "u32": "i32", "byte": "i32", "ptr": "i32", "cptr": "i32",
    "kind": "i32", "allocator": "i32", "metric": "i32",
    "i32": "i32", "i64": "i64", "f32": "f32", "f64": "f64",
}
"""Parameter kinds and their wasm types (``ptr``: guest memory written, ``cptr``: read)."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: str

    @property
    def wasm_type(self) -> str:
        return PARAM_TYPES[self.kind]


RESULT_TYPES = {
    "code": "i32", "handle": "i64", "region": "i32", "i32": "i32", "u32": "i32", "bool": "i32",
    "i64": "i64", "f32": "f32", "f64": "f64",
}
"""Result kinds: ``code`` is an error code, ``i32``/``i64`` signed values (sentinels are negative)."""


@dataclass(frozen=True)
class AbiFunction:
    """One raw-ABI function.

    ``host``/``module``: whether ``TvmHost`` / the self-contained module serve
    it; ``absent_because`` says why one does not. ``sentinel`` is the failure
    result (``negative_codes``: any negative result, ``-code``); ``valid`` the
    inclusive range of successful results, when it is numeric. ``per_pool``
    marks a family with one function per pool (``{k}`` in the name).
    """

    name: str
    params: tuple[Param, ...]
    result: str | None
    group: str
    summary: str
    on_error: OnError
    sentinel: int | None = None
    negative_codes: bool = False
    valid: tuple[int, int] | None = None
    host: bool = True
    module: bool = True
    absent_because: str | None = None
    host_note: str | None = None
    module_note: str | None = None
    width: int | None = None  # bytes a typed access touches
    per_pool: bool = False
    out: tuple[str, int] | None = None  # (param, bytes written through it on success)
    slow_path: bool = False  # TvmHost serves it through Python (``tvm_wasm.host.guest_control``)

    @property
    def wasm_params(self) -> tuple[str, ...]:
        return tuple(p.wasm_type for p in self.params)

    @property
    def wasm_results(self) -> tuple[str, ...]:
        return () if self.result is None else (RESULT_TYPES[self.result],)

    @property
    def typed(self) -> str | None:
        """The typed access's width name (``u8`` for ``load_u8``, ``try_store_u8``, ``load_u8_p{k}``), else None."""
        if self.group != "typed access":
            return None
        return self.name.removeprefix("try_").split("_")[1]

    def available_on(self, deployment: str) -> bool:
        if deployment not in DEPLOYMENTS:
            raise ValueError(f"deployment must be one of {DEPLOYMENTS}, got {deployment!r}")
        return self.host if deployment == HOST else self.module

    def errors_text(self) -> str:
        """One line for docs: what a caller sees on failure."""
        if self.on_error is OnError.CODE:
            return "code"
        if self.on_error is OnError.TRAP:
            return "trap"
        if self.on_error is OnError.NEVER:
            return "never fails"
        if self.negative_codes:
            return "-code (< 0), last_error"
        return f"{self.sentinel}, last_error"


SLOW_PATH = "a Python slow path (one host entry per call), with the host's budget, spill, policies and metrics"
NO_VIEW = ("a guest cannot import the host's pools, so a pool address is of no use to it; "
           "Python embedders use TvmHost.view")
NO_PER_POOL = ("the host moves a region between pools when it spills and faults back in, so a pool fixed "
               "in the guest's code would go stale; load_*/store_* pick the pool at run time")


H, R, N = Param("h", "handle"), Param("region", "region"), Param("len", "u32")


def _code(name: str, params: tuple[Param, ...], group: str, summary: str, **kw: object) -> AbiFunction:
    if kw.get("host_note") == SLOW_PATH or str(kw.get("host_note", "")).startswith(SLOW_PATH):
        kw.setdefault("slow_path", True)
    return AbiFunction(name, params, "code", group, summary, OnError.CODE, **kw)  # type: ignore[arg-type]


def _value(name: str, params: tuple[Param, ...], result: str, group: str, summary: str, sentinel: int,
           valid: tuple[int, int] | None, **kw: object) -> AbiFunction:
    if str(kw.get("host_note", "")).startswith(SLOW_PATH):
        kw.setdefault("slow_path", True)
    return AbiFunction(name, params, result, group, summary, OnError.SENTINEL, sentinel=sentinel,  # type: ignore[arg-type]
                       valid=valid, **kw)


def _control() -> list[AbiFunction]:
    rid = Param("id", "region")
    return [
        _value("create_region", (Param("kind", "kind"), Param("capacity", "u32")), "region", "regions",
               "Create a zeroed Bump region of `capacity` bytes; returns its id", 0, (1, 0xFFFF),
               host_note=SLOW_PATH + "; may spill other regions to fit the budget"),
        _value("create_region_with", (Param("kind", "kind"), Param("capacity", "u32"), Param("allocator", "allocator"),
                                      Param("param", "u32")), "region", "regions",
               "Create a region with an allocator (0 Bump, 1 Freelist, 2 Slab with `param` = class size)", 0,
               (1, 0xFFFF), host_note=SLOW_PATH + "; Freelist ignores `param`",
               module_note="Freelist is the block allocator: `param` block-table entries (0: 4096)"),
        _code("destroy_region", (rid,), "regions", "Destroy a region; its handles fail with code 2 from now on",
              host_note=SLOW_PATH),
        _code("pin", (rid,), "regions", "Pin a region (pinnable kinds only): it never spills or compacts",
              host_note=SLOW_PATH),
        _code("unpin", (rid,), "regions", "Unpin a region", host_note=SLOW_PATH),
        _code("demote_region", (rid,), "regions", "Hot -> Warm; on the host Warm -> Cold spills to the backing store",
              host_note=SLOW_PATH, module_note="no Cold tier: demoting a Warm region answers 9"),
        _code("promote_region", (rid,), "regions", "Warm/Cold -> Hot (faults a Cold region in)", host_note=SLOW_PATH),
        _code("compact_region", (rid,), "regions",
              "Pack a Freelist region's live blocks, bump its generation (old handles: code 2 until migrate)",
              host_note=SLOW_PATH),
        _value("migrate", (H,), "handle", "regions",
               "A handle of the generation before the last compaction -> its current form (current ones unchanged)",
               0, None, host_note=SLOW_PATH),
        _code("protect", (rid, Param("read_only", "u32")), "regions",
              "Make a region read-only (`read_only` != 0) or writable: while read-only every store, write, fill, "
              "discard, copy into it, alloc, dealloc and compaction answers 8 and changes nothing; loads cost "
              "nothing extra", host_note=SLOW_PATH),
        _code("track_dirty", (rid, Param("enabled", "u32")), "regions",
              "Start (`enabled` != 0, all pages clean) or stop dirty-page tracking: every path that changes bytes "
              f"marks each {DIRTY_PAGE}-byte page it touches in the region's dirty-page map, in wasm", host_note=SLOW_PATH),
        _code("clear_dirty", (rid,), "regions", "Mark every page of a tracked region clean (untracked: 9)",
              host_note=SLOW_PATH),
    ]


def _queries() -> list[AbiFunction]:
    rid = Param("id", "region")

    def field_(name: str, summary: str, result: str = "i32", valid: tuple[int, int] = (0, U32_MAX),
               **kw: object) -> AbiFunction:
        kw.setdefault("host_note", SLOW_PATH)
        return _value(name, (rid,), result, "queries", summary, -1, valid, **kw)

    return [
        field_("region_generation", "Current generation (1..65535)", valid=(1, 0xFFFF)),
        field_("region_kind", "RegionKind", valid=(0, max(RegionKind))),
        field_("region_capacity", "Capacity in bytes", "i64"),
        field_("region_used", "Bytes allocated (bump pointer / live bytes)", "i64"),
        field_("region_residency", "Residency: 0 Hot, 1 Warm, 2 Cold, 3 External, 4 being spilled", valid=(0, 4),
               module_note="4 while the embedder writes a spilled region out (begin_spill .. finish_spill)"),
        field_("region_pinned", "1 if pinned, else 0", valid=(0, 1)),
        field_("region_allocator", "Allocator kind: 0 Bump, 1 Freelist, 2 Slab", valid=(0, 2)),
        field_("region_read_only", "1 if read-only (protect), else 0", valid=(0, 1)),
        _value("next_dirty_page", (rid, Param("from", "u32")), "i64", "queries",
               f"Index of the first dirty page (of {DIRTY_PAGE} bytes) at or after page `from`, -1 if none "
               "(untracked region: 9)", -2, (-1, U32_MAX), host_note=SLOW_PATH),
        field_("region_pool", "Pool memory the region lives in now", valid=(0, 63),
               host_note=SLOW_PATH + "; a Cold or External region answers code 4, an imported one 9"),
        field_("region_base", "Byte offset of the region in its pool", "i64",
               host_note=SLOW_PATH + "; a Cold or External region answers code 4, an imported one 9"),
        _value("region_metric", (rid, Param("index", "metric")), "i64", "queries",
               "Counter `index` of RegionMetrics (allocations, bytes_allocated, bytes_read, bytes_written, faults, "
               "promotions, demotions)", -1, (0, I64_MAX), host_note=SLOW_PATH),
        _value("region_last_access", (rid,), "i64", "queries", "Access clock at the region's last access (LRU order)",
               -1, (0, I64_MAX), host_note=SLOW_PATH),
        AbiFunction("region_count", (), "i32", "queries", "Live regions", OnError.NEVER, valid=(0, 0xFFFF),
                    host_note=SLOW_PATH, slow_path=True),
        AbiFunction("lru_candidate", (), "region", "queries",
                    "The region to evict first (Warm before Hot, least recently used; never pinned or unspillable), "
                    "0 if none", OnError.NEVER, valid=(0, 0xFFFF), host_note=SLOW_PATH, slow_path=True),
        AbiFunction("handle_address", (H, Param("len", "u32")), "i64", "queries",
                    "pool << 32 | address of [offset, offset+len), checked like any access (for zero-copy views)",
                    OnError.SENTINEL, negative_codes=True, valid=(0, (64 << 32) - 1), host=False,
                    absent_because=NO_VIEW),
        _code("note_write", (H, N), "queries",
              "An embedder took a writable zero-copy view of [offset, offset+len): checked like a store (read-only: "
              "8, nothing marked); the range's pages turn dirty when the region is tracked",
              host=False, absent_because=NO_VIEW),
        _code("note_read", (H, N), "queries",
              "An embedder copied [offset, offset+len) out of a zero-copy view (after handle_address, which "
              "stamped the access clock): checked like a load; counted in bytes_read, as the model's read counts it",
              host=False, absent_because=NO_VIEW),
    ]


def _allocation() -> list[AbiFunction]:
    return [
        _value("alloc", (R, Param("size", "u32")), "handle", "allocation",
               "Allocate `size` bytes in a region; returns the handle", 0, None,
               host_note="Bump and Slab in wasm; Freelist through a Python slow path"),
        _value("alloc_aligned", (R, Param("size", "u32"), Param("align", "u32")), "handle", "allocation",
               "Allocate `size` bytes at an offset that is a multiple of `align` (a power of two; 0: 8, or for Slab "
               "the largest power of two up to 8 dividing the class size)", 0, None,
               host_note=SLOW_PATH + "; Slab needs `align` to divide the class size (else 5)"),
        _code("dealloc", (H,), "allocation", "Free an allocation (Bump: no-op; Slab/Freelist: double free is code 3)"),
    ]


EMBEDDER_COLD = ("the host spills to its own backing store (demote_region) and faults regions back in on access; "
                 "these let a host-less embedder (a browser's storage) keep the Cold tier")


def _cold_tier() -> list[AbiFunction]:
    rid = Param("id", "region")
    kw = {"host": False, "absent_because": EMBEDDER_COLD}
    return [
        _code("begin_spill", (rid,), "embedder cold tier",
              "Resident -> spilling: accesses answer 4 while the embedder writes the bytes out (pinned: 6, "
              "unspillable kind: 9)", **kw),
        _code("finish_spill", (rid,), "embedder cold tier", "Spilling -> Cold: the span goes back to its pool", **kw),
        _code("cancel_spill", (rid,), "embedder cold tier", "Spilling -> Hot: the write-out failed, nothing moved",
              **kw),
        _code("restore_region", (rid,), "embedder cold tier",
              "Cold -> Hot: a zeroed span for the embedder to fill back in (no room: 5, stays Cold)", **kw),
    ]


EMBEDDER_CHECKPOINTS = ("TvmHost keeps allocator state and generations in Python: its checkpoint/rollback "
                        "(Python API) restore them directly")


def _checkpoint_support() -> list[AbiFunction]:
    rid = Param("id", "region")
    kw = {"host": False, "absent_because": EMBEDDER_CHECKPOINTS}
    return [
        _value("layout_size", (rid,), "i32", "embedder checkpoints",
               "Bytes of the region's allocator state (what save_layout writes)", -1, (4, 0x7FFF_FFFF), **kw),
        _code("save_layout", (rid, Param("dst", "ptr")), "embedder checkpoints",
              "Copy the region's allocator state (bump pointer / live bytes, then the slab or block table) to "
              "guest memory at `dst`", **kw),
        _code("load_layout", (rid, Param("src", "cptr")), "embedder checkpoints",
              "Put back an allocator state save_layout wrote (read-only region: 8, nothing changes)", **kw),
        _code("renew_generation", (rid,), "embedder checkpoints",
              "Move the region to the next generation without moving bytes (a rollback that changed the layout): "
              "every older handle answers 2, migrate refuses them; at 65535: 5", **kw),
    ]


CHECKPOINTS_IN_EMBEDDER = ("the module's checkpoint pages are kept by its embedder (GuestInstance.checkpoint, "
                           "like its Cold tier), which uses layout_size, save_layout, load_layout and renew_generation")


def _checkpoints() -> list[AbiFunction]:
    rid, cid = Param("id", "region"), Param("checkpoint", "i64")
    kw = {"module": False, "absent_because": CHECKPOINTS_IN_EMBEDDER, "host_note": SLOW_PATH}
    return [
        _code("checkpoint_add", (rid,), "checkpoints",
              "Add a region to the set the next `checkpoint` takes (one set per host)", **kw),
        _value("checkpoint", (), "i64", "checkpoints",
               "Checkpoint the regions added since the last checkpoint (pages changed since each region's previous "
               "checkpoint are copied; the first copies all); returns its id (none added: 9)", 0, (1, I64_MAX), **kw),
        _code("rollback", (cid,), "checkpoints",
              "Put the checkpoint's regions back exactly (bytes, allocator state), later checkpoints of them "
              "superseded; a region whose layout changed moves to a new generation (every older handle: 2; take "
              "region_generation for the new ones, offsets unchanged); all or nothing (read-only: 8; a checkpoint "
              "not live or not this host's: 9)", **kw),
        _code("release_checkpoint", (cid,), "checkpoints",
              "Free a checkpoint's pages (folded into the next checkpoint of each region); one already released, "
              "superseded by a rollback, released with a destroyed region, or not this host's: 9, nothing changes",
              **kw),
    ]


def _typed() -> list[AbiFunction]:
    funcs = []
    off = Param("off", "u32")
    for t in TYPED_ACCESS:
        value = Param("v", t.value_type)
        funcs += [
            AbiFunction(f"load_{t.name}", (H, off), t.value_type, "typed access",
                        f"Load {t.width} byte(s) at handle offset + `off`", OnError.TRAP, width=t.width),
            AbiFunction(f"store_{t.name}", (H, off, value), None, "typed access",
                        f"Store {t.width} byte(s) at handle offset + `off`", OnError.TRAP, width=t.width),
        ]
    for t in TYPED_ACCESS:
        value = Param("v", t.value_type)
        funcs += [
            _code(f"try_load_{t.name}", (H, off, Param("out", "ptr")), "typed access",
                  f"Like load_{t.name}, but returns a code; the value ({t.width} byte(s), little-endian) "
                  "goes to guest memory at `out`", width=t.width, out=("out", t.width)),
            _code(f"try_store_{t.name}", (H, off, value), "typed access",
                  f"Like store_{t.name}, but returns a code", width=t.width),
        ]
    for t in TYPED_ACCESS:
        value = Param("v", t.value_type)
        funcs += [
            AbiFunction(f"load_{t.name}_p{{k}}", (H, off), t.value_type, "typed access",
                        f"load_{t.name} for a region known to live in pool k (no dispatch; another pool traps, 9)",
                        OnError.TRAP, width=t.width, per_pool=True, host=False, absent_because=NO_PER_POOL),
            AbiFunction(f"store_{t.name}_p{{k}}", (H, off, value), None, "typed access",
                        f"store_{t.name} for a region known to live in pool k", OnError.TRAP, width=t.width,
                        per_pool=True, host=False, absent_because=NO_PER_POOL),
        ]
    return funcs


def _bulk() -> list[AbiFunction]:
    return [
        _code("read", (H, Param("dst", "ptr"), N), "bulk", "Copy `len` bytes from the handle into guest memory"),
        _code("write", (H, Param("src", "cptr"), N), "bulk", "Copy `len` bytes from guest memory to the handle"),
        _code("copy", (Param("src", "handle"), Param("dst", "handle"), N), "bulk",
              "Copy between two handles (any regions; overlap is fine)"),
        _code("copy_region", (Param("src_region", "region"), Param("src_off", "u32"), Param("dst_region", "region"),
                              Param("dst_off", "u32"), N), "bulk",
              "Copy between regions by raw offsets (no generation check)"),
        _code("read_gather", (H, Param("indices", "cptr"), Param("count", "u32"), Param("item_size", "u32"),
                              Param("dst", "ptr")), "bulk",
              "Gather `count` items of `item_size` bytes at offset + indices[i] (u32s in guest memory) into `dst`"),
    ]


def _reducers() -> list[AbiFunction]:
    b = Param("byte", "byte")
    return [
        _value("sum_u8", (H, N), "i64", "reducers", "Sum of the bytes", -1, (0, 255 * U32_MAX)),
        _value("count_byte", (H, N, b), "i64", "reducers", "Count of bytes equal to `byte & 0xFF`", -1, (0, U32_MAX)),
        _value("find_byte", (H, N, b), "i64", "reducers",
               "Offset (from the handle) of the first byte equal to `byte & 0xFF`, -1 if absent", -2, (-1, U32_MAX - 1)),
        _value("popcount", (H, N), "i64", "reducers", "Set bits in the bytes", -1, (0, 8 * U32_MAX)),
        _value("min_max_u8", (H, N), "i32", "reducers", "(min << 8) | max of the bytes; empty: 0xFF00", -1,
               (0, 0xFFFF)),
        _code("hash_fnv1a", (H, N, Param("out", "ptr")), "reducers",
              "64-bit FNV-1a of the bytes, written (u64, little-endian) to guest memory at `out`", out=("out", 8)),
        _value("eq", (Param("a", "handle"), Param("b", "handle"), N), "i32", "reducers",
               "1 if the two spans are equal, else 0", -1, (0, 1)),
        _code("fill", (H, N, b), "reducers", "Set every byte to `byte`"),
        _code("discard", (H, N), "reducers",
              "Zero the bytes and let their memory go: the range reads as zeros, the rest is intact; counted in "
              "bytes_discarded (read-only: 8)",
              host_note=SLOW_PATH + "; whole OS pages in the range go back to the OS (madvise)",
              module_note="memory.fill with zeros: wasm cannot return pages of a memory"),
        _code("byte_histogram", (H, N, Param("out", "ptr")), "reducers",
              "256 u32 counts (little-endian) of each byte value, written to guest memory at `out`",
              out=("out", 1024)),
    ]


def _errors() -> list[AbiFunction]:
    return [
        AbiFunction("last_error", (), "code", "errors", "The code of the last failure, then 0 (read-and-clear)",
                    OnError.NEVER, valid=(0, 9)),
    ]


ABI: tuple[AbiFunction, ...] = tuple(
    [*_errors(), *_control(), *_queries(), *_allocation(), *_typed(), *_bulk(), *_reducers(), *_cold_tier(),
     *_checkpoints(), *_checkpoint_support()]
)
"""Every raw-ABI function, in reference order (per-pool families once, with ``{k}`` in the name)."""

_BY_NAME = {f.name: f for f in ABI}
assert len(_BY_NAME) == len(ABI), "duplicate ABI names"


def by_name(name: str) -> AbiFunction:
    """The table entry for ``name`` (a per-pool name like ``load_u8_p3`` finds its family)."""
    if name in _BY_NAME:
        return _BY_NAME[name]
    stem, _, pool = name.rpartition("_p")
    if pool.isdigit() and f"{stem}_p{{k}}" in _BY_NAME:
        return _BY_NAME[f"{stem}_p{{k}}"]
    raise KeyError(f"{name!r} is not a raw tvm ABI function")


def function_index(name: str) -> int:
    """Position of ``name``'s entry in ``ABI``: what ``trap_function`` reports."""
    return ABI.index(by_name(name))


def per_pool_names(entry: AbiFunction, pools: int) -> list[str]:
    return [entry.name.format(k=k) for k in range(pools)] if entry.per_pool else [entry.name]


def for_deployment(deployment: str, *, pools: int | None = None) -> dict[str, AbiFunction]:
    """Name -> entry of every function ``deployment`` (``"host"`` or ``"module"``) serves.

    Per-pool families are expanded for ``pools`` pools, or left out when
    ``pools`` is None (a module built with ``specialised=False`` has none).
    """
    served: dict[str, AbiFunction] = {}
    for entry in ABI:
        if not entry.available_on(deployment):
            continue
        if entry.per_pool and pools is None:
            continue
        for name in per_pool_names(entry, pools or 0):
            served[name] = entry
    return served


# ---------------------------------------------------------------- the trap cause (self-contained module)
@dataclass(frozen=True)
class TrapCauseField:
    """An exported global of the self-contained module describing the last typed-access trap."""

    name: str
    wasm_type: str
    meaning: str


TRAP_CAUSE: tuple[TrapCauseField, ...] = (
    TrapCauseField("trap_seq", "i32", "incremented by every typed-access trap: compare before and after a call"),
    TrapCauseField("trap_code", "i32", "error code of the last typed-access trap"),
    TrapCauseField("trap_function", "i32", "index in the ABI table of the function that trapped"),
    TrapCauseField("trap_handle", "i64", "the handle passed"),
    TrapCauseField("trap_offset", "i64", "offset accessed: the handle's offset plus the relative offset"),
    TrapCauseField("trap_length", "i32", "bytes accessed (the access width)"),
    TrapCauseField("trap_capacity", "i64", "the region's capacity (0 if the region is not live)"),
    TrapCauseField("trap_generation", "i32", "the region's current generation (0 if the id never existed)"),
)
"""How an embedder of the self-contained module reads the cause of a trap.

Read ``trap_seq`` before calling into the module; if a call traps and
``trap_seq`` changed, the trap was a typed access and the other globals
describe it; if it did not change, the trap is something else (a division
by zero, ``unreachable`` in user code...) and must be reported as the engine
reported it. A cause is thus never attributed to a later, unrelated trap.
"""


TYPED_ACCESS_ERROR = "{function}({handle}) accessing {width} byte(s) at offset {offset}: {state}"
"""The message of a failed typed access on every layer: ``TvmHost``'s runtime, the embedders of the
self-contained module (``GuestInstance``, ``TvmHost.call`` of a module linked ``--target guest``) and
``tvm-guest.js`` (its generated block carries this). ``function`` is the ABI name, ``handle`` the handle
passed (``r{id}@{generation}+{offset}``), ``offset`` the offset accessed in hex (the handle's plus the
relative one), ``width`` the bytes accessed, ``state`` one of ``REGION_STATES``. The error's class is
the code's (a destroyed region's handle: ``StaleHandle``; an id never created: ``RegionNotFound``) and
its context fields follow the message: ``[region=, gen= (the handle's), offset=, len=, capacity=]``."""

# ``REGION_STATES`` (the region's state in ``TYPED_ACCESS_ERROR``), ``BULK_ERROR`` and ``HANDLE_ERROR`` are the
# model's (``core.handle_faults``): a handle that reaches no live bytes reads the same on every layer, and
# ``tvm-guest.js``'s generated block carries them from here.

BULK_CAUSES: dict[int, str] = {e.code: e.meaning for e in ERROR_CODES if e.code}
"""A failed bulk operation's ``cause`` in ``BULK_ERROR`` by raw code, for the faults that are not a handle's
region state (out of bounds, read-only, ...): the errors table's meanings (``ERROR_CODES``)."""


def bulk_cause(code: int) -> str:
    """``BULK_ERROR``'s cause for a failure that is not a handle's region state: its code's meaning."""
    return BULK_CAUSES.get(code, BULK_CAUSES[9])


MODULE_INFO: tuple[TrapCauseField, ...] = (
    TrapCauseField("abi_version", "i32", "the module's ABI version"),
    TrapCauseField("abi_fingerprint", "i32", "CRC-32 of the exported functions' names and signatures"),
)
"""Immutable globals the self-contained module exports so an embedder can check what it drives."""
