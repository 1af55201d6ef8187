"""The browser package: ``tvm-guest.js``'s generated constants, its ``.d.ts`` types and API reference.

``tvm-wasm guest build --web DIR`` writes an npm-layout folder: ``package.json``,
the ES module ``tvm-guest.js``, its types ``tvm-guest.d.ts``, the module
``guest.wasm``, ``API.md`` (the JavaScript reference), ``example/`` and
``test/`` (the package's own checks page, left out of ``npm pack``). The
ES module is shipped inside the Python package (``js/tvm-guest.js``) with a
block generated from the model and the ABI table (the ABI version and
fingerprint the module carries, error codes and the error classes' codes,
region kinds and their placement policies, allocators, residencies, metric
names); :func:`check_shipped_js` is how tests keep it in step.

Everything is generated from two tables: the raw ABI table
(:mod:`tvm_wasm.abi.table`, the functions and globals the self-contained
module exports: names, wasm signatures, meaning, error behaviour) and
:data:`JS_API` below, the JavaScript layer's members with their TypeScript
signatures and docs. ``tests/abi`` checks the module's real exports against
the table, ``tests/guest/test_web_package.py`` the declarations against both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..abi.imports import (
    GUEST_MEMORY_FUNCTIONS,
    INTERNAL_NAMES,
    INTERNAL_PATTERN,
    REFUSED,
    UNSERVED,
    signature_text,
    unserved_import,
)
from ..abi.trap_cause import RUNTIME_FUNCTION_PREFIX
from ..abi.table import (
    ABI,
    ALLOCATORS,
    BULK_CAUSES,
    BULK_ERROR,
    ERROR_CODES,
    HANDLE_ERROR,
    METRICS,
    MODULE,
    MODULE_INFO,
    REGION_KINDS,
    REGION_STATES,
    RESIDENCIES,
    TRAP_CAUSE,
    TYPED_ACCESS_ERROR,
    AbiFunction,
    OnError,
    TrapCauseField,
)
from ..core import errors
from ..core.allocator_faults import ALLOC_CAUSES, ALLOC_ERROR, DEALLOC_CAUSES
from ..core.arguments import ARGUMENT_ERRORS
from ..core.handle_faults import ALLOCATOR_NAMES, COMPACT_CAUSES, COMPACT_REFUSED, OUT_OF_BOUNDS
from ..core.checkpoints import ENDED, ENDED_KEPT
from ..core.types import PlacementPolicy, RegionKind, Residency
from ..runtime import layout as L
from . import layout as G
from .layout import TIER_SPILLING
from .module import ABI_VERSION, GuestModule, abi_fingerprint
from ..host.import_refusals import IMPORT_ENTRY, UNSATISFIED_IMPORTS, js_advice

JS_NAME = "tvm-guest.js"
DTS_NAME = "tvm-guest.d.ts"
WASM_NAME = "guest.wasm"
PACKAGE_NAME = "tvm-wasm-guest"
BEGIN = "// --- generated from the ABI table by tvm_wasm.guest.web: do not edit by hand ---"
END = "// --- end of generated code ---"
TS_TYPES = {"i32": "number", "i64": "bigint", "f32": "number", "f64": "number"}
"""How a wasm value type crosses the JavaScript boundary (the JS API of the wasm spec: i64 is a BigInt)."""


# ---------------------------------------------------------------- ABI facts, as JavaScript sees them
def module_functions() -> list[AbiFunction]:
    """The table's functions the self-contained module exports, in reference order (per-pool families once)."""
    return [entry for entry in ABI if entry.available_on(MODULE)]


def module_globals() -> tuple[TrapCauseField, ...]:
    """The globals the self-contained module exports: the trap cause and its ABI version and fingerprint."""
    return (*TRAP_CAUSE, *MODULE_INFO)


def error_codes() -> dict[str, int]:
    """``ErrorCode``: the table's error codes by name."""
    return {e.name: e.code for e in ERROR_CODES}


JS_ERRORS: tuple[str, ...] = (
    "RegionNotFound", "StaleHandle", "OutOfBounds", "NotResident", "AllocationFailed", "Pinned", "GuestMemoryError",
    "ReadOnly",
    "PolicyViolation", "UnsupportedAllocator", "BackingStoreError", "UnsupportedEngine", "AbiMismatch",
    "CheckpointError", "LinkRefused",
)
"""The ``TvmError`` subclasses of ``tvm-guest.js``: Python's classes of the same name, and two of its own."""


def error_class_codes() -> dict[str, int]:
    """Each JavaScript error class's code: its Python class's (``tvm_wasm.core.errors``), else ``OTHER``."""
    other = error_codes()["OTHER"]
    return {name: getattr(errors, name).code if hasattr(errors, name) else other for name in JS_ERRORS}
    # LinkRefused (runtime.link_errors) is a TvmError with the base code, OTHER


def allocators() -> dict[str, int]:
    """``Allocator``: the table's allocators, plus ``BLOCKS`` (the module's name for its Freelist)."""
    values: dict[str, int] = {}
    for allocator in ALLOCATORS:
        values[allocator.name] = allocator.value
        if allocator.name == "FREELIST":
            values["BLOCKS"] = allocator.value
    return values


def residencies() -> dict[str, int]:
    """``Residency`` in a browser: the table's, less External (imported bytes exist only on ``TvmHost``)."""
    return {r.name: r.value for r in RESIDENCIES if r.value != Residency.EXTERNAL}


# The first releases that run the module with no flags: WebAssembly multi-memory on by default
# (webassembly.org's feature table; SIMD and bulk memory came earlier everywhere). Node.js 20
# (V8 11.3) has no multi-memory ("memory count of 5 exceeds internal limit of 1"); Safari has none yet.
MULTI_MEMORY_SINCE = {"Chrome": "120", "Edge": "120", "Firefox": "125", "Node.js": "22"}


def engines_text() -> str:
    """``Chrome 120, Edge 120, Firefox 125, Node.js 22``: where the module runs, for messages and docs."""
    return ", ".join(f"{engine} {version}" for engine, version in MULTI_MEMORY_SINCE.items())


def metric_names() -> list[str]:
    """``Metrics``' fields in ``region_metric`` index order, camelCase (``BYTES_READ`` -> ``bytesRead``)."""
    def camel(name: str) -> str:
        first, *rest = name.lower().split("_")
        return first + "".join(word.capitalize() for word in rest)

    return [camel(m.name) for m in sorted(METRICS, key=lambda m: m.value)]


def js_object(values: dict[str, int]) -> str:
    return "{ " + ", ".join(f"{name}: {value}" for name, value in values.items()) + " }"


def unserved_messages() -> dict[str, str]:
    """Why the module serves no ``tvm.<name>``, for every ABI name only the host has (``abi.imports``)."""
    return {entry.name: unserved_import(entry.name, MODULE) for entry in ABI
            if not entry.available_on(MODULE) and not entry.per_pool}


def abi_signatures() -> dict[str, str]:
    """Name -> wasm function type of every ABI function the module serves, as the link refusals word it."""
    return {entry.name: signature_text(entry.wasm_params, entry.wasm_results) for entry in ABI
            if entry.available_on(MODULE)}


def generated_block() -> str:
    """The constants ``tvm-guest.js`` needs from the model and the ABI table."""
    kinds = sorted(REGION_KINDS, key=lambda k: k.value)
    if [k.value for k in kinds] != list(range(len(kinds))):
        raise ValueError("region kinds must be 0..n-1: KIND_NAMES is indexed by kind")
    policies = []
    for kind in kinds:
        policy = PlacementPolicy.for_kind(RegionKind(kind.value))
        policies.append(f"{{ pinnable: {str(policy.pinnable).lower()}, spillable: {str(policy.spillable).lower()}, "
                        f"warm: {str(policy.initial_residency is Residency.WARM).lower()} }}")
    names = ", ".join(json.dumps(kind.name) for kind in kinds)
    return "\n".join([
        BEGIN,
        f"export const ABI_VERSION = {ABI_VERSION};",
        f"export const ABI_FINGERPRINT = 0x{abi_fingerprint():08x};",
        f"const ERROR_CODES = {js_object(error_codes())};",
        f"const ERROR_CLASS_CODES = {js_object(error_class_codes())};",
        f"const KIND_NAMES = [{names}];",
        f"const KIND_POLICY = [{', '.join(policies)}];",
        f"const ALLOCATORS = {js_object(allocators())};",
        f"const RESIDENCIES = {js_object(residencies())};",
        f"const DIRTY_PAGE = {L.DIRTY_PAGE}; // bytes of a dirty-tracking (and checkpoint) page",
        f"const TIER_SPILLING = {TIER_SPILLING}; // region_residency of a region the embedder is writing out",
        f"const METRICS = [{', '.join(json.dumps(name) for name in metric_names())}];",
        f"const MULTI_MEMORY_SINCE = {json.dumps(engines_text())}; // first releases with multi-memory by default",
        f"const ABI_NAMES = {json.dumps([entry.name.format(k='k') for entry in ABI])}; // by trap_function",
        f"const TYPED_ACCESS_ERROR = {json.dumps(TYPED_ACCESS_ERROR)};",
        f"const REGION_STATES = {json.dumps(REGION_STATES)};",
        f"const BULK_ERROR = {json.dumps(BULK_ERROR)};",
        f"const HANDLE_ERROR = {json.dumps(HANDLE_ERROR)};",
        f"const BULK_CAUSES = {json.dumps(BULK_CAUSES)};",
        f"const OUT_OF_BOUNDS = {json.dumps(OUT_OF_BOUNDS)}; // BULK_ERROR's cause past the capacity",
        f"const ALLOCATOR_NAMES = {json.dumps(list(ALLOCATOR_NAMES))}; // by allocator value, as errors name them",
        f"const COMPACT_REFUSED = {json.dumps(COMPACT_REFUSED)};",
        f"const COMPACT_CAUSES = {json.dumps(COMPACT_CAUSES)};",
        f"const ARGUMENT_ERRORS = {json.dumps(ARGUMENT_ERRORS)}; // core.arguments: a malformed argument",
        f"const ALLOC_ERROR = {json.dumps(ALLOC_ERROR)};",
        f"const ALLOC_CAUSES = {json.dumps(ALLOC_CAUSES)}; // core.allocator_faults",
        f"const DEALLOC_CAUSES = {json.dumps(DEALLOC_CAUSES)};",
        f"const UNSERVED_TVM = {json.dumps(unserved_messages())}; // tvm.* imports of the host only, by name",
        f"const UNSERVED_WHY = {json.dumps(UNSERVED)}; // the other reasons, as templates",
        f"const LINK_REFUSED = {json.dumps(REFUSED)}; // abi.imports.refused_import's wordings",
        f"const INTERNAL_NAMES = new Set({json.dumps(sorted(INTERNAL_NAMES))});",
        f"const INTERNAL_PATTERN = new RegExp({json.dumps('^(?:' + INTERNAL_PATTERN + ')$')});",
        f"const ABI_SIGNATURES = {json.dumps(abi_signatures())}; // tvm.* function types, per-pool names with {{k}}",
        f"const GUEST_MEMORY_FUNCTIONS = new Set({json.dumps(sorted(GUEST_MEMORY_FUNCTIONS))}); // take guest pointers",
        f"const CHECKPOINT_ENDED = {json.dumps(ENDED)};",
        f"const ENDED_KEPT = {ENDED_KEPT}; // why the latest checkpoints ended is kept for their errors",
        f"const LAYOUT = {js_object(layout_fields())}; // save_layout's side tables (rollback's live-block test, compaction's moves)",
        f"const UNSATISFIED_IMPORTS = {json.dumps(UNSATISFIED_IMPORTS)}; // instantiate's refusal (host.import_refusals)",
        f"const IMPORT_ENTRY = {json.dumps(IMPORT_ENTRY)};",
        f"const IMPORT_ADVICE = {json.dumps(js_advice())}; // by the missing import's module, in this order",
        f"const RUNTIME_FUNCTION_PREFIX = {json.dumps(RUNTIME_FUNCTION_PREFIX)}; // the runtime's functions in a linked module's name section",
        END,
    ])


def layout_fields() -> dict[str, int]:
    """Offsets in ``save_layout``'s bytes that ``RollbackRemap`` and ``HandleRemap`` read (see
    ``guest.checkpoints.layout_live_test`` and ``compaction_moves``)."""
    return {"BT_COUNT": G.BT_COUNT, "BT_CAP": G.BT_CAP, "BT_ENTRIES": G.BT_ENTRIES, "BLOCK_SIZE": G.BLOCK_SIZE,
            "BLK_OFFSET": G.BLK_OFFSET, "BLK_SIZE": G.BLK_SIZE, "BLK_PREV": G.BLK_PREV, "BLK_LIVE": G.BLK_LIVE,
            "NO_PREV": G.NO_PREV,
            "SLAB_COUNT": L.SLAB_COUNT, "SLAB_SLOTS": L.SLAB_SLOTS, "SLAB_STACK": L.SLAB_STACK}


def shipped_js() -> str:
    """``tvm-guest.js`` as the Python package ships it."""
    return resources.files("tvm_wasm.guest").joinpath(f"js/{JS_NAME}").read_text()


def render_js(source: str | None = None) -> str:
    """``source`` (default: the shipped file) with its generated block regenerated."""
    text = shipped_js() if source is None else source
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"{JS_NAME} has no generated block")
    return pattern.sub(lambda _match: generated_block(), text, count=1)


def check_shipped_js() -> None:
    """Raise ``ValueError`` when the shipped file's generated block is out of date."""
    if render_js() != shipped_js():
        raise ValueError(f"{JS_NAME}'s generated block is out of date: run python -m tvm_wasm.guest.web --update")


# ---------------------------------------------------------------- raw exports, from the ABI table
def ts_signature(entry: AbiFunction) -> tuple[str, str]:
    """``(parameters, result)`` of a raw export in TypeScript (``h: bigint, off: number``, ``number``)."""
    params = ", ".join(f"{p.name}: {TS_TYPES[p.wasm_type]}" for p in entry.params)
    return params, TS_TYPES[entry.wasm_results[0]] if entry.wasm_results else "void"


def wasm_signature(entry: AbiFunction) -> str:
    """``(i64, i32) -> i32``: the wasm function type."""
    return f"({', '.join(entry.wasm_params)}) -> {entry.wasm_results[0] if entry.wasm_results else '()'}"


def js_literal(value: int, wasm_type: str) -> str:
    return f"{value}n" if wasm_type == "i64" else str(value)


def on_error_js(entry: AbiFunction) -> str:
    """What a JavaScript caller of the raw export sees when it fails (from the table's error convention)."""
    if entry.on_error is OnError.CODE:
        return "returns the error code (0 on success), also left in `last_error`"
    if entry.on_error is OnError.NEVER:
        return "never fails"
    if entry.on_error is OnError.TRAP:
        twin = "" if entry.per_pool else f"; `try_{entry.name}` returns a code instead"
        return ("traps (`RuntimeError`) with the cause in the `trap_*` globals; `guard()` throws the typed "
                f"`TvmError`{twin}")
    result = entry.wasm_results[0]
    sentinel = "`-code` (negative)" if entry.negative_codes else f"`{js_literal(entry.sentinel or 0, result)}`"
    text = f"returns {sentinel}, with the code in `last_error`"
    if entry.valid is not None:
        low, high = (js_literal(v, result) for v in entry.valid)
        text += f" (success: {low}..{high})"
    return text


def meaning(entry: AbiFunction) -> str:
    """The table's summary, with the module's own note when it has one."""
    return entry.summary + (f" (module: {entry.module_note})" if entry.module_note else "")


def per_pool_pattern(entry: AbiFunction) -> str:
    """``load_u8_p${number}``: the TypeScript template type of a per-pool family's names."""
    return entry.name.replace("{k}", "${number}")


def raw_exports_dts() -> str:
    """``RawExports``: every function and global the self-contained module exports, from the ABI table."""
    lines = ["/**", " * The module's raw exports: the `tvm` ABI as the self-contained module serves it (generated",
             " * from the ABI table). Arguments pass through wasm's ToInt32/ToBigInt64 unchecked: use the",
             " * `TvmGuest` methods for checked calls. i32 sizes, offsets and pointers are unsigned; an i32",
             " * result comes back signed (`x >>> 0` reads a u32).", " */",
             "export interface RawExports {"]
    for entry in module_functions():
        params, result = ts_signature(entry)
        failure = "Cannot fail." if entry.on_error is OnError.NEVER else f"On error: {on_error_js(entry)}."
        lines += ["  /**", f"   * {meaning(entry)}.", f"   * {failure}", f"   * wasm: {wasm_signature(entry)}", "   */"]
        if entry.per_pool:
            lines.append(f"  [name: `{per_pool_pattern(entry)}`]: ({params}) => {result};")
        else:
            lines.append(f"  {entry.name}({params}): {result};")
    for field in module_globals():
        lines += [f"  /** {field.meaning} ({field.wasm_type}). */", f"  readonly {field.name}: WebAssembly.Global;"]
    lines += [
        "  /** The guest memory `ptr` arguments point into (linked modules import it as `tvm.memory`). */",
        "  readonly memory: WebAssembly.Memory;",
        "  /** Pool k's memory (k < pools). */",
        "  readonly [pool: `mem${number}`]: WebAssembly.Memory;",
        "}",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- the JavaScript layer's table
@dataclass(frozen=True)
class Member:
    """One member of the JavaScript API: its TypeScript declaration and what it does."""

    owner: str  # "" for a module-level export, else the class name
    declaration: str
    doc: str


JS_API: list[Member] = [
    Member("", "function instantiate(source?: string | URL | Response | BufferSource | WebAssembly.Module, "
               "options?: { imports?: WebAssembly.Imports }): Promise<TvmGuest>",
           "Compile (streaming when served as `application/wasm`) and instantiate a guest module; with no "
           "argument, the package's `guest.wasm`. `options.imports` serves what a module linked with "
           "`tvm-wasm link --target guest` kept importing (a WASI shim's import object as "
           "`wasi_snapshot_preview1`, the user's own imports). Throws `LinkRefused` naming every import not "
           "provided (before instantiating), `UnsupportedEngine` where the engine lacks multi-memory, "
           "SIMD or bulk memory, `AbiMismatch` for a module built for another ABI."),
    Member("", "function compile(source: string | URL | Response | BufferSource | WebAssembly.Module): Promise<WebAssembly.Module>",
           "Compile only (streaming when possible)."),
    Member("", "function isSupported(): Support",
           "Feature checks: multi-memory, SIMD, bulk memory, 4 GiB memories, streaming compile, OPFS."),
    Member("", "function packHandle(regionId: number | bigint, generation: number | bigint, offset: number | bigint): bigint",
           "Pack a handle; each field is range-checked (`RangeError`, never truncated)."),
    Member("", "function unpackHandle(handle: bigint): { regionId: number; generation: number; offset: number }",
           "The three fields of a handle."),
    Member("", "function offsetHandle(handle: bigint, bytes: number | bigint): bigint",
           "The handle moved `bytes` further into its region (the offset must stay in 0..2^32-1)."),
    Member("", "function errorForCode(code: number, message: string, context?: ErrorContext): TvmError",
           "The typed error a raw-ABI code stands for."),
    Member("TvmGuest", "readonly exports: RawExports", "The module's raw exports (wasm's ToInt32 conversions: unchecked)."),
    Member("TvmGuest", "readonly pools: number", "Number of pool memories."),
    Member("TvmGuest", "readonly memory: WebAssembly.Memory",
           "The default memory (`tvm.memory` / `env.memory` of linked modules)."),
    Member("TvmGuest", "coldTier?: ColdTier", "The Cold tier attached by `ColdTier.open`."),
    Member("TvmGuest", "poolMemory(pool: number): WebAssembly.Memory", "The memory of pool `pool`."),
    Member("TvmGuest", "createRegion(kind: RegionKindValue, capacity: number | bigint, options?: CreateOptions): number",
           "A zeroed region of 1..2^32-1 bytes; returns its id. `RangeError` for a capacity the ABI cannot hold, "
           "`TypeError` for an unknown kind, allocator or option, `AllocationFailed` when no pool has room."),
    Member("TvmGuest", "destroyRegion(id: number): void", "Destroy a region; its handles become stale."),
    Member("TvmGuest", "pin(id: number): void", "Pin (pinnable kinds only: `PolicyViolation` otherwise)."),
    Member("TvmGuest", "unpin(id: number): void", "Unpin."),
    Member("TvmGuest", "protect(id: number, readOnly?: boolean): void",
           "Make a region read-only (default) or writable: changes then throw `ReadOnly` (zero-copy views are not guarded)."),
    Member("TvmGuest", "isReadOnly(id: number): boolean", "Whether the region is read-only."),
    Member("TvmGuest", "trackDirty(id: number, enabled?: boolean): void",
           "Start (all pages clean; default) or stop dirty-page tracking (4096-byte pages; writes through zero-copy views are not seen)."),
    Member("TvmGuest", "dirtyPages(id: number): number[]",
           "Ascending dirty page indices (`PolicyViolation` if the region is not tracked)."),
    Member("TvmGuest", "clearDirty(id: number): void", "Mark every page clean (`PolicyViolation` if not tracked)."),
    Member("TvmGuest", "discard(handle: bigint, length: number | bigint): void",
           "Zero `length` bytes at the handle (`ReadOnly` for a read-only region; tracked pages turn dirty)."),
    Member("TvmGuest", "checkpoint(regionIds: Iterable<number>): Checkpoint",
           "Record the regions' pages changed since their previous checkpoint (the first copies all and turns dirty "
           "tracking on), allocator state and generation, kept in this page's memory; the Python model's rules. A "
           "zero-copy view (`regionBytes`, `handleBytes`, `view`) marks its pages dirty when it is taken, not when "
           "written through: take it again after a checkpoint. `NotResident` for a Cold region, `RangeError` for no "
           "or repeated ids."),
    Member("TvmGuest", "rollback(checkpoint: Checkpoint): Map<number, RollbackRemap>",
           "Put the regions back exactly as at the checkpoint (bytes and allocator state), copying only the pages "
           "changed since. A region whose layout changed moves to a new generation (every older handle stale) and is "
           "in the returned Map; later checkpoints of the regions are superseded, this one stays valid. All or "
           "nothing: `ReadOnly`, `NotResident`, `AllocationFailed`, `CheckpointError` change nothing."),
    Member("TvmGuest", "releaseCheckpoint(checkpoint: Checkpoint): void",
           "Free a checkpoint's pages (folded into the next checkpoint of each region). One that is not live "
           "(released already, superseded by a rollback, a destroyed region's) or another guest's: `CheckpointError` "
           "saying why, nothing changes (the rule of every layer, as for `rollback`)."),
    Member("TvmGuest", "checkpoints(): Checkpoint[]", "The checkpoints that can still be rolled back to, oldest first."),
    Member("TvmGuest", "demoteRegion(id: number): void", "Hot -> Warm (`PolicyViolation` for a Warm or unspillable region)."),
    Member("TvmGuest", "promoteRegion(id: number): void", "Warm -> Hot (`NotResident` for a Cold region: fault it in)."),
    Member("TvmGuest", "compactRegion(id: number): HandleRemap",
           "Pack a FREELIST region (`UnsupportedAllocator` for Bump or Slab) and return what moved (Python's "
           "`HandleRemap`); old handles are stale until migrated (`remap.migrate(h)` or `migrate(h)`)."),
    Member("TvmGuest", "migrate(handle: bigint): bigint", "The current handle of a pre-compaction handle."),
    Member("TvmGuest", "lruCandidate(): number", "The region to evict first (0: none)."),
    Member("TvmGuest", "regionCount(): number", "Live regions."),
    Member("TvmGuest", "regionInfo(id: number): RegionInfo", "A region's fields (Numbers)."),
    Member("TvmGuest", "metrics(id: number): Metrics", "A region's counters as Numbers (JSON-serialisable)."),
    Member("TvmGuest", "alloc(id: number, size: number | bigint, options?: { align?: number }): bigint",
           "A block whose offset is a multiple of `align` (power of two; default 8, Slab: what its class size allows)."),
    Member("TvmGuest", "dealloc(handle: bigint): void", "Give a block back."),
    Member("TvmGuest", "read(handle: bigint, length: number | bigint): Uint8Array", "A copy of `length` bytes."),
    Member("TvmGuest", "readAs<T extends ViewTypeName>(handle: bigint, type: T, count: number): ViewArray<T>",
           "A copy of `count` elements of `type` (any alignment)."),
    Member("TvmGuest", "write(handle: bigint, data: BufferSource): void",
           "Write the bytes of an ArrayBuffer, typed array or DataView (`TypeError` for anything else)."),
    Member("TvmGuest", "view<T extends ViewTypeName>(handle: bigint, type: T, count: number): TypedView<T>",
           "A growth-proof typed view (`RangeError` for a misaligned address); a dirty-tracked region's pages "
           "in it turn dirty when it is taken or re-derived."),
    Member("TvmGuest", "regionBytes(id: number): Uint8Array",
           "Zero-copy bytes of a region (detached when its pool grows); a dirty-tracked region's pages all turn "
           "dirty when it is taken (`read` copies without marking)."),
    Member("TvmGuest", "handleBytes(handle: bigint, length: number | bigint): Uint8Array",
           "Zero-copy bytes at a handle (detached when its pool grows); a dirty-tracked region's pages in the "
           "range turn dirty when it is taken."),
    Member("TvmGuest", "onGrow(listener: (event: GrowEvent) => void): () => void",
           "Be told when a pool grew (plain typed arrays over it are detached); returns the unsubscribe function."),
    Member("TvmGuest", "checkGrowth(): GrowEvent[]", "Compare pool sizes with the last seen and notify listeners."),
    Member("TvmGuest", "guard<T>(fn: () => T): T",
           "Run `fn`, turning a trap of a typed access into its `TvmError` (other traps stay `RuntimeError`); "
           "in a linked module the message names the user function, read from the trap's stack."),
    Member("TvmGuest", "link(source: string | URL | Response | BufferSource | WebAssembly.Module, imports?: WebAssembly.Imports): Promise<WebAssembly.Instance>",
           "Instantiate a user module importing `tvm.*` or clang's `env.memory` (grown as declared); what it "
           "cannot serve is a `LinkRefused` worded as `tvm-wasm link` words it."),
    Member("TypedView", "readonly length: number", "Elements."),
    Member("TypedView", "readonly array: ViewArray<T>", "The current typed array (re-derived after growth; do not keep it)."),
    Member("TypedView", "get(index: number): ViewElement<T>", "Element `index` (`RangeError` outside the view)."),
    Member("TypedView", "set(index: number, value: ViewElement<T>): void", "Store element `index`."),
    Member("TypedView", "setAll(source: ArrayLike<ViewElement<T>>, offset?: number): void", "Copy elements in."),
    Member("TypedView", "toArray(): ViewArray<T>", "A copy."),
    Member("Checkpoint", "readonly id: number", "Its number in this guest (ascending)."),
    Member("Checkpoint", "readonly regionIds: readonly number[]", "The regions it covers, in order."),
    Member("Checkpoint", "readonly pagesCopied: number", "Pages this checkpoint copied (4096 bytes each): its incremental cost."),
    Member("Checkpoint", "readonly bytesCopied: number", "`pagesCopied` in bytes."),
    Member("HandleRemap", "readonly regionId: number", "The compacted region."),
    Member("HandleRemap", "readonly oldGeneration: number", "Its generation before the compaction."),
    Member("HandleRemap", "readonly newGeneration: number", "Its generation now."),
    Member("HandleRemap", "readonly mapping: ReadonlyMap<number, number>",
           "Old offset -> new offset of every block live at the compaction, ascending."),
    Member("HandleRemap", "migrate(handle: bigint): bigint | null",
           "The handle's new form, or `null` if it is not a handle of a live block of this compaction (the "
           "guest's `migrate` throws instead)."),
    Member("RollbackRemap", "readonly regionId: number", "The region the rollback moved to a new generation."),
    Member("RollbackRemap", "readonly oldGeneration: number", "Its generation at the checkpoint."),
    Member("RollbackRemap", "readonly newGeneration: number", "Its generation now."),
    Member("RollbackRemap", "migrate(handle: bigint): bigint | null",
           "A handle taken at the checkpoint to a block live at the checkpoint, under the new generation (same "
           "offset); `null` for any other handle, including one to a block allocated after the checkpoint or freed "
           "before it."),
    Member("ColdTier", "static open(guest: TvmGuest, options?: { directory?: string; budget?: number }): Promise<ColdTier>",
           "Attach a Cold tier in the Origin Private File System (a fresh directory per instance)."),
    Member("ColdTier", "spill(id: number): Promise<void>", "Write a region out (checksummed, atomically) and free its span."),
    Member("ColdTier", "fault(id: number): Promise<boolean>",
           "Read a Cold region back, verified first (`BackingStoreError` for a torn or corrupt copy; it stays Cold)."),
    Member("ColdTier", "fit(): Promise<number[]>", "Spill least recently used regions until the resident bytes fit the budget."),
    Member("ColdTier", "using<T>(ids: number[], fn: () => T): Promise<T>", "Fault the regions in, then run `fn`."),
    Member("ColdTier", "isCold(id: number): boolean", "Whether the region is Cold."),
    Member("ColdTier", "residentBytes(): number", "Bytes of resident regions (what the budget counts)."),
]

DTS_PRELUDE = """\
export declare const ABI_VERSION: {version};
export declare const ABI_FINGERPRINT: {fingerprint};
export declare const RegionKind: Readonly<{kinds}>;
export type RegionKindValue = {kind_values};
export declare const Allocator: Readonly<{allocators}>;
export type AllocatorValue = {allocator_values};
export declare const Residency: Readonly<{residencies}>;
export type ResidencyValue = {residency_values};
/** The raw ABI's error codes (`last_error`, code results, `TvmError.code`). */
export declare const ErrorCode: Readonly<{error_codes}>;

export interface ViewArrays {{
  u8: Uint8Array; i8: Int8Array; u8c: Uint8ClampedArray; u16: Uint16Array; i16: Int16Array; u32: Uint32Array;
  i32: Int32Array; f32: Float32Array; f64: Float64Array; u64: BigUint64Array; i64: BigInt64Array;
}}
export type ViewTypeName = keyof ViewArrays;
export type ViewArray<T extends ViewTypeName> = ViewArrays[T];
export type ViewElement<T extends ViewTypeName> = T extends "u64" | "i64" ? bigint : number;
export declare const ViewType: Readonly<{{ [K in ViewTypeName]: K }}>;

export interface ErrorContext {{ regionId?: number; generation?: number; offset?: number; length?: number; capacity?: number }}
export declare class TvmError extends Error {{
  static readonly code: number;
  readonly code: number;
  readonly detail: string;
  readonly regionId?: number; readonly generation?: number; readonly offset?: number;
  readonly length?: number; readonly capacity?: number;
  constructor(message: string, context?: ErrorContext);
}}
{error_classes}

export interface CreateOptions {{ allocator?: AllocatorValue; classSize?: number | bigint; maxBlocks?: number | bigint }}
export interface RegionInfo {{
  id: number; generation: number; kind: number; capacity: number; used: number; residency: ResidencyValue;
  pinned: boolean; pool: number; base: number; allocator: AllocatorValue;
}}
/** A region's counters (`region_metric` index order). */
export interface Metrics {{ {metrics} }}
export interface GrowEvent {{ pool: number; oldBytes: number; newBytes: number }}
export interface Support {{
  ok: boolean; multiMemory: boolean; simd: boolean; bulkMemory: boolean; memory4GiB: boolean;
  streaming: boolean; opfs: boolean; missing: string[];
}}
"""


def ts_const_object(values: dict[str, int]) -> str:
    return "{ " + "; ".join(f"{name}: {value}" for name, value in values.items()) + " }"


def ts_union(values: dict[str, int]) -> str:
    return " | ".join(str(v) for v in sorted(set(values.values())))


def render_dts() -> str:
    """The TypeScript declarations of ``tvm-guest.js``."""
    kinds = {k.name: k.value for k in sorted(REGION_KINDS, key=lambda k: k.value)}
    codes = error_class_codes()
    error_classes = "\n".join(f"export declare class {name} extends TvmError {{ static readonly code: {codes[name]}; }}"
                               for name in JS_ERRORS)
    parts = [
        f"// Types of {JS_NAME} (ABI {ABI_VERSION}); generated by tvm_wasm.guest.web.",
        DTS_PRELUDE.format(version=ABI_VERSION, fingerprint=abi_fingerprint(), kinds=ts_const_object(kinds),
                           kind_values=ts_union(kinds), allocators=ts_const_object(allocators()),
                           allocator_values=ts_union(allocators()), residencies=ts_const_object(residencies()),
                           residency_values=ts_union(residencies()), error_codes=ts_const_object(error_codes()),
                           error_classes=error_classes,
                           metrics="; ".join(f"{name}: number" for name in metric_names())),
        raw_exports_dts(),
        "",
    ]
    for member in JS_API:
        if not member.owner:
            parts.append(f"/** {member.doc} */\nexport declare {member.declaration};")
    for owner, generic in (("TvmGuest", ""), ("TypedView", "<T extends ViewTypeName>"), ("ColdTier", ""),
                           ("Checkpoint", ""), ("HandleRemap", ""), ("RollbackRemap", "")):
        parts.append(f"\nexport declare class {owner}{generic} {{")
        for member in JS_API:
            if member.owner == owner:
                parts.append(f"  /** {member.doc} */\n  {member.declaration};")
        parts.append("}")
    return "\n".join(parts) + "\n"


def cell(text: str) -> str:
    """``text`` as one Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def raw_exports_reference() -> list[str]:
    """``API.md``'s raw-ABI part: error codes, every function the module exports, its globals."""
    lines = ["## Error codes (`ErrorCode`)", "", "| code | name | meaning | classes |", "|---:|---|---|---|"]
    codes = error_class_codes()
    for e in ERROR_CODES:
        classes = ", ".join(f"`{name}`" for name in JS_ERRORS if codes[name] == e.code)
        lines.append(f"| {e.code} | `{e.name}` | {cell(e.meaning)} | {classes or '-'} |")
    lines += ["", "Every error class extends `TvmError` (`error.code` is the raw-ABI code; `regionId`, `generation`,",
              "`offset`, `length` and `capacity` are set when known). Code 9 has several causes, each its own class."]
    lines += [
        "", "## Raw exports (`guest.exports`)", "",
        "The `tvm` ABI as the self-contained module serves it, generated from the ABI table. Arguments pass",
        "through wasm's ToInt32/ToBigInt64 unchecked (the `TvmGuest` methods check them); an i64 is a BigInt;",
        "i32 sizes, offsets and pointers are unsigned and an i32 result comes back signed (`x >>> 0` reads a u32);",
        "`ptr` arguments point into `exports.memory`.",
        "`{k}` is a pool number: the module exports one such function per pool.", "",
        "| export | wasm | meaning | on error |", "|---|---|---|---|",
    ]
    for entry in module_functions():
        params, result = ts_signature(entry)
        lines.append(f"| `{entry.name}({params}): {result}` | `{wasm_signature(entry)}` | {cell(meaning(entry))} "
                     f"| {cell(on_error_js(entry))} |")
    lines += ["", "Globals (`WebAssembly.Global`; read `trap_seq` before a call: if the call traps and it changed, the",
              "`trap_*` globals describe that trap, else the trap is not a typed access):", "",
              "| global | type | meaning |", "|---|---|---|"]
    lines += [f"| `{f.name}` | {f.wasm_type} | {cell(f.meaning)} |" for f in module_globals()]
    lines += ["", "Memories: `memory` (the guest memory `ptr` arguments point into) and `mem{k}` (pool k).", ""]
    return lines


def render_reference() -> str:
    """``API.md``: the JavaScript API reference, from the same tables as the types."""
    lines = [
        f"# `{JS_NAME}` API reference (ABI {ABI_VERSION}, fingerprint 0x{abi_fingerprint():08x})",
        "",
        "Generated from the ABI table and the JavaScript layer's table by `tvm_wasm.guest.web`.",
        "Sizes, offsets and counts take a Number (an integer up to 2^53) or a BigInt; a value the ABI",
        "cannot hold is a `RangeError`, a value of the wrong type a `TypeError` (a fraction, a string or a boolean "
        "included), worded as Python's `tvm_wasm` words them. Failures of the",
        "control and data plane are `TvmError` subclasses (`error.code` is the raw-ABI code).",
        "",
        "## Module exports",
        "",
    ]
    for member in JS_API:
        if not member.owner:
            lines += [f"- `{member.declaration.removeprefix('function ')}`: {member.doc}"]
    for owner in ("TvmGuest", "TypedView", "ColdTier", "Checkpoint", "HandleRemap", "RollbackRemap"):
        lines += ["", f"## `{owner}`", ""]
        lines += [f"- `{m.declaration}`: {m.doc}" for m in JS_API if m.owner == owner]
    lines += [""]
    return "\n".join(lines + raw_exports_reference())


def package_json(module: GuestModule, version: str) -> str:
    data = {
        "name": PACKAGE_NAME,
        "version": version,
        "description": "tvm-wasm's self-contained guest module (regions, handles, pools) and its JavaScript driver",
        "private": True,
        "type": "module",
        "main": f"./{JS_NAME}",
        "types": f"./{DTS_NAME}",
        "exports": {".": {"types": f"./{DTS_NAME}", "default": f"./{JS_NAME}"}, f"./{WASM_NAME}": f"./{WASM_NAME}"},
        "files": [JS_NAME, DTS_NAME, WASM_NAME, "API.md", "README.md", "example/"],
        "engines": {"node": f">={MULTI_MEMORY_SINCE['Node.js']}"},
        "tvm": {"abiVersion": ABI_VERSION, "abiFingerprint": f"0x{abi_fingerprint():08x}", "pools": module.pools,
                "maxPagesPerPool": module.max_pages},
    }
    return json.dumps(data, indent=2) + "\n"


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tvm-wasm")
    except PackageNotFoundError:
        return "0.0.0"


README = """\
# {name}

The self-contained tvm-wasm guest module ({pools} pools of up to {max_pages} pages each) and its
JavaScript driver, written by `tvm-wasm guest build --web`. `tvm-guest.js` refuses a module built
for another ABI than {abi} (fingerprint {fingerprint}): keep the files of one build together.

```js
import {{ instantiate, RegionKind }} from "{name}";
const g = await instantiate();                    // this folder's guest.wasm (streamed when served as application/wasm)
const r = g.createRegion(RegionKind.OBJECT_ARENA, 1 << 20);
const h = g.alloc(r, 8 * 1000);                   // 8-byte aligned by default
const v = g.view(h, "f64", 1000);                 // survives pool growth
v.set(0, Math.PI);
```

`API.md` is the reference; `example/index.html` runs regions, typed views, compaction with
`migrate`, more than 4 GiB and an OPFS spill (serve the folder over http://127.0.0.1 or https).

The module needs WebAssembly multi-memory, SIMD and bulk memory: {engines} and later run it
with no flags (Node.js 20 and Safari cannot); `isSupported()` says what an engine lacks.
"""


def write_package(directory: str | Path, module: GuestModule, *, version: str | None = None) -> list[Path]:
    """Write the npm-layout package of ``module`` into ``directory``; returns the files written."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = {
        JS_NAME: render_js(),
        DTS_NAME: render_dts(),
        "API.md": render_reference(),
        "package.json": package_json(module, version or package_version()),
        "README.md": README.format(name=PACKAGE_NAME, pools=module.pools, max_pages=module.max_pages, abi=ABI_VERSION,
                                   fingerprint=f"0x{abi_fingerprint():08x}", engines=engines_text()),
    }
    paths = []
    for name, text in written.items():
        (target / name).write_text(text)
        paths.append(target / name)
    (target / WASM_NAME).write_bytes(module.wasm)
    paths.append(target / WASM_NAME)
    for folder in ("example", "test"):  # test/: the package's own checks page (not packed by npm)
        source = resources.files("tvm_wasm.guest").joinpath(f"js/{folder}")
        (target / folder).mkdir(exist_ok=True)
        for item in source.iterdir():
            if item.is_file():
                (target / folder / item.name).write_bytes(item.read_bytes())
                paths.append(target / folder / item.name)
    return paths


def main() -> None:
    """``python -m tvm_wasm.guest.web --update``: rewrite the shipped file's generated block."""
    import sys

    path = Path(__file__).parent / "js" / JS_NAME
    if "--update" in sys.argv[1:]:
        path.write_text(render_js(path.read_text()))
        print(f"updated {path}")
    else:
        check_shipped_js()
        print(f"{path} is up to date")


if __name__ == "__main__":
    main()
