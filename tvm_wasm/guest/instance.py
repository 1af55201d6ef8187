"""Drive a built module from Python on wasmtime: the embedder's view, as JavaScript has it too.

Nothing here adds semantics: every method calls one export of the module and
turns its error code into the model's typed error. It exists for tests,
benchmarks and Python embedders; ``js/tvm-guest.js`` is the same for browsers.
"""

from __future__ import annotations


from collections.abc import Mapping
from dataclasses import dataclass, fields
from weakref import WeakKeyDictionary

import numpy as np
import wasmtime

from ..abi.imports import GUEST_MEMORY_FUNCTIONS, REFUSED
from ..abi.table import ABI, MODULE, code_message
from ..abi.trap_cause import bulk_error, read_trap_cause, trap_cause_error
from ..core.allocators import Allocator, Bump, Freelist, Slab
from ..core.checkpoint_store import CheckpointStore, MemoryCheckpointStore
from ..core.checkpoints import Checkpoint, Checkpointer, RollbackRemap
from ..core.errors import (
    AllocationFailed,
    CheckpointError,
    OutOfBounds,
    Pinned,
    PolicyViolation,
    RegionNotFound,
    StaleHandle,
    TvmError,
    UnsupportedAllocator,
    error_for_code,
)
from ..core.handle import Handle
from ..core import arguments
from ..core.allocator_faults import alloc_cause, alloc_message, dealloc_cause
from ..core.handle_faults import (
    ALLOCATOR_NAMES,
    compact_refused,
    handle_fault,
    handle_message,
    out_of_bounds,
    region_fault,
)
from ..core.types import HandleRemap, PlacementPolicy, RegionKind, RegionMetrics, Residency, checked_flag
from ..host import native
from ..host.closed import Closed, RunningCalls, finish_calls, running_calls
from ..host.interrupt import EpochSwitch, interruptible_on
from ..host.wasi import COMMAND_ENTRY, REACTOR_INIT, WasiArg
from ..runtime import layout as L
from ..runtime import sections
from ..runtime.link_errors import LinkRefused, refuse_imports, served_functions
from . import layout as G
from .checkpoints import GuestCheckpointHooks, GuestLayout, compaction_moves
from .module import GuestModule, validation_engine
from .module_imports import serve_imports

ModuleSource = GuestModule | bytes | str | wasmtime.Module


@dataclass(frozen=True, slots=True)
class GuestRegionInfo:
    """A region as the module's directory holds it (the model's fields plus where its bytes are)."""

    id: int
    generation: int
    kind: RegionKind
    capacity: int
    used: int
    residency: Residency
    pinned: bool
    pool: int
    base: int
    allocator: int


def allocator_args(allocator: Allocator | None, max_blocks: int) -> tuple[int, int]:
    """(allocator kind, param) for ``create_region_with``; Freelist is served by the block allocator."""
    if allocator is None or type(allocator) is Bump:
        return G.ALLOC_BUMP, 0
    if type(allocator) is Freelist:
        return G.ALLOC_BLOCKS, max_blocks
    if type(allocator) is Slab:
        return G.ALLOC_SLAB, allocator.class_size
    raise TypeError(f"the guest module offers Bump, Freelist (compactable blocks) and Slab, not {type(allocator).__name__}")


def u32(value: int) -> int:
    return value & 0xFFFF_FFFF


def check_u32(value: object, what: str) -> int:
    """Sizes and lengths cross the ABI as u32: refuse a non-integer or what would be truncated, worded by
    ``core.arguments`` as the model words it."""
    return arguments.integer(value, what, 0xFFFF_FFFF)


def s32(value: int) -> int:
    value &= 0xFFFF_FFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def check_guest_memory(user: wasmtime.Module, binary: bytes | None = None) -> None:
    """Refuse a user module that would silently read and write the wrong memory (``LinkRefused``).

    Here ``read``, ``write``, ``try_load_*``... copy to and from the module's
    default memory. A user module may have one memory (as the static linker
    rules: more is refused with its words). One that defines its memory and
    imports any of those functions would pass pointers into its own memory that
    land in another: wrong bytes without an error, so it is refused; it must
    import its memory (``tvm.memory``, or ``env.memory`` as ``clang
    -Wl,--import-memory`` makes it) or be linked statically (``tvm-wasm link``
    makes its memory the module's). One that defines its memory and reaches
    regions only through handles (typed access, reducers) is served as it is.
    """
    imported = [imp for imp in user.imports if isinstance(imp.type, wasmtime.MemoryType)]
    if binary is not None:  # the binary shows every defined memory, exported or not
        defined = len(sections.defined_memories(binary))
    else:
        defined = int(any(isinstance(e.type, wasmtime.MemoryType) for e in user.exports) and not imported)
    if len(imported) + defined > 1:
        raise LinkRefused(REFUSED["memories"].format(count=len(imported) + defined))
    using = sorted({imp.name for imp in user.imports if imp.module == "tvm" and imp.name in GUEST_MEMORY_FUNCTIONS})
    if defined and using:
        raise LinkRefused(REFUSED["own_memory"].format(using=", ".join(using)))


_user_modules: WeakKeyDictionary[wasmtime.Engine, dict[bytes, wasmtime.Module]] = WeakKeyDictionary()


def _compiled_user(engine: wasmtime.Engine, binary: bytes) -> wasmtime.Module:
    """User modules linked at run time, compiled once per engine (the same module is often linked many times)."""
    per_engine = _user_modules.setdefault(engine, {})
    if binary not in per_engine:
        per_engine[binary] = wasmtime.Module(engine, binary)
    return per_engine[binary]


def handle_bits(handle: object, name: str = "handle") -> int:
    """The handle's 64 bits for a raw call; ``TypeError`` (as the model's) for anything but a ``Handle``."""
    return arguments.handle(handle, name).to_i64()


def region_arg(region_id: object) -> int:
    """A region id for a raw call, checked as the model checks it (``core.arguments.region_id``): an integer
    the module's i32 parameter cannot name a live region with (0, above 65535, negative) is the model's
    ``RegionNotFound`` here, never an engine error or a wrapped id."""
    rid = arguments.region_id(region_id)
    if not 0 < rid <= 0xFFFF:
        raise region_fault(rid, destroyed=False)
    return rid


class GuestInstance:
    """One instance of a guest module in its own store (or a given one)."""

    def __init__(self, module: ModuleSource, *, engine: wasmtime.Engine | None = None,
                 store: wasmtime.Store | None = None, checkpoint_store: CheckpointStore | None = None,
                 interruptible: bool | None = None, wasi: WasiArg = None,
                 imports: Mapping[str, Mapping[str, object]] | None = None) -> None:
        """``checkpoint_store``: where checkpoint pages live (``MemoryCheckpointStore`` by default). A store
        that leases region ids and generations across processes (``FileCheckpointStore``) is refused with
        ``CheckpointError``: the module hands out ids and generations inside wasm, so it could not extend
        the lease before handing one out, and a later process opening the store could accept this
        instance's handles.

        ``interruptible``: as ``TvmHost``'s (``tvm_wasm.host.interrupt``): wasm running in this
        instance's store (its exports, linked user modules) can be stopped by :meth:`interrupt` from
        another thread, or by Ctrl-C inside ``interrupt.sigint_interrupts(instance.engine)``, and the
        call raises ``Interrupted``. The default engine is then made with ``Config.epoch_interruption``.
        Unset (``None``), it follows a given ``engine`` (or ``store``'s): with epoch interruption on, the
        instance is interruptible (its deadline kept ahead, so calls run); a value that contradicts the
        engine raises ``ValueError`` naming the fix.

        ``wasi`` and ``imports`` serve a module linked with ``tvm-wasm link --target guest`` that kept
        imports of its own (the runtime module itself imports nothing). ``wasi``: a ``wasmtime.WasiConfig``
        (arguments, environment, preopened directories, stdio) or ``True`` for inherited stdio and nothing
        else serves WASI preview1, as for ``TvmHost.instantiate``; the config is consumed (set on the
        store, a given ``store`` included). ``imports``: ``{module: {name: value}}`` for any other import
        (and to replace single WASI functions): a Python callable (wrapped with the import's own function
        type) or a ``wasmtime.Func``/``Memory``/``Global``/``Table`` made in this instance's store. A module
        whose imports are not all provided is refused before instantiation with ``LinkRefused`` (a
        ``TvmError`` and ``ValueError``) naming every missing import and how to supply it
        (``guest.module_imports``). A reactor's ``_initialize`` export is called once here; a command's
        ``_start`` runs with :meth:`run_command`."""
        if getattr(checkpoint_store, "cover", None) is not None:
            raise CheckpointError(
                f"a GuestInstance cannot keep checkpoints in {checkpoint_store!r}: the module hands out region "
                "ids and generations itself, outside the store's id lease (use MemoryCheckpointStore; "
                "a TvmHost can use a FileCheckpointStore)")
        self.engine = store.engine if store is not None else (engine or validation_engine(interruptible=bool(interruptible)))
        self._owns_store = store is None
        self.store = store or wasmtime.Store(self.engine)
        self.interruptible = interruptible_on(self.engine, interruptible, "GuestInstance")
        self._epoch = EpochSwitch(self.engine, self.store, enabled=self.interruptible, owner="GuestInstance")
        self._calls = RunningCalls("GuestInstance")
        self.module = self._compile(module)
        self.instance = self._instantiate(wasi, imports)
        self.exports = self.instance.exports(self.store)
        self.pools = sum(1 for e in self.module.exports if e.name.startswith("mem") and e.name[3:].isdigit())
        self._slab_classes: dict[int, int] = {}  # Slab regions this instance created: their class size
        self._checkpoint_hooks = GuestCheckpointHooks(self)
        self._checkpoints = Checkpointer(
            self._checkpoint_hooks,  # type: ignore[arg-type]
            MemoryCheckpointStore() if checkpoint_store is None else checkpoint_store, L.DIRTY_PAGE,
            owner=type(self).__name__,
        )
        self._command_ran = False
        if isinstance(self.exports.get(REACTOR_INIT), wasmtime.Func) and COMMAND_ENTRY not in self.exports:
            self.call_export(REACTOR_INIT)  # a reactor initialises once, as TvmHost.instantiate does

    def close(self) -> None:
        """Release the instance's store (its pools) now; later calls raise ``HostClosed`` naming the
        method used (as ``TvmHost``'s); closing twice is a no-op. A call running on another thread
        returns first: ``close()`` waits for it (``interrupt()`` it to stop a guest that loops); from
        inside one of the instance's own calls it is a ``ValueError``.

        A store passed in by the caller stays the caller's to close.
        """
        finish_calls(self)  # a call running on another thread returns first (interrupt() it to stop it)
        store = self.store if self._owns_store else None
        self.__dict__.clear()
        self.__class__ = ClosedGuestInstance
        if store is not None:
            store.close()

    @property
    def closed(self) -> bool:
        return False

    def __enter__(self) -> GuestInstance:
        return self

    def interrupt(self) -> None:
        """Stop the wasm running in this instance (from any thread): it stops at its next function
        entry or loop back-edge and the call raises ``Interrupted``; regions stay as the last
        completed operation left them and the next call runs normally.

        Every interruptible store on the same engine is interrupted. Raises ``ValueError`` on an
        instance made without ``interruptible=True`` (its code has no epoch checks).
        """
        self._epoch.interrupt()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _instantiate(self, wasi: WasiArg, imports: Mapping[str, Mapping[str, object]] | None) -> wasmtime.Instance:
        """The module's instance; its imports (a linked module's WASI and own ones) served or refused by name."""
        def instantiate(linker: wasmtime.Linker | None) -> wasmtime.Instance:
            self._epoch.arm()
            try:
                if linker is None:
                    return wasmtime.Instance(self.store, self.module, [])
                return linker.instantiate(self.store, self.module)
            except wasmtime.Trap as trap:  # in a start function
                error = self._epoch.typed(trap)
                if error is trap:
                    raise
                raise error from trap

        return serve_imports(self.store, self.module, wasi, imports, instantiate)

    def run_command(self) -> int:
        """Run the module's WASI command (its ``_start``, as a WASI C or Rust program linked with
        ``tvm-wasm link --target guest`` has) and return its exit status, as ``TvmHost.run_command`` and
        ``tvm-wasm run`` do: the code passed to ``proc_exit``, or 0 when ``_start`` returns.

        Give the instance ``wasi=`` (arguments, stdio...) first. A typed-access trap raises its ``TvmError``
        (naming the user function), an :meth:`interrupt` ``Interrupted``, the program's own traps the
        ``wasmtime.Trap``. A command runs once per instance (its constructors and destructors run with it):
        a second call, or a module without ``_start``, is a ``ValueError``; regions it left stay readable.
        """
        with running_calls(self, "run_command").running("run_command"):
            start = self.exports.get(COMMAND_ENTRY)
            if not isinstance(start, wasmtime.Func):
                raise ValueError(f"not a WASI command: the module exports no {COMMAND_ENTRY} (call its exports "
                                 "with call(instance.instance, name, ...) or raw(name, ...) instead)")
            if self._command_ran:
                raise ValueError("this GuestInstance already ran its command: a WASI command runs once per "
                                 "instance (as with wasmtime run); make a new GuestInstance to run it again")
            self._command_ran = True
            try:
                self._guarded(start)
            except wasmtime.ExitTrap as exit_:
                return int(exit_.code)
            return 0

    def _compile(self, module: ModuleSource) -> wasmtime.Module:
        if isinstance(module, wasmtime.Module):
            return module
        if isinstance(module, GuestModule):
            module = module.wasm
        try:
            return wasmtime.Module(self.engine, module)
        except wasmtime.WasmtimeError as exc:
            raise ValueError(f"not a valid wasm module: {' '.join(str(exc).split())}") from None

    # ------------------------------------------------------------------ raw calls
    def raw(self, name: str, *args: object) -> object:
        """Call an export; a trap from an invalid typed access becomes its ``TvmError``.

        A ``clear_dirty`` (or ``track_dirty`` off) that succeeds drops dirty bits the checkpoints
        rely on, whichever way it is called: the region's next checkpoint and rollback then take
        every page (as after the Python methods), never a rollback that misses a change.
        """
        running_calls(self, "raw")
        result = self.call_export(name, *args)
        if result == 0 and (name == "clear_dirty" or (name == "track_dirty" and len(args) == 2 and not args[1])):
            self._lost_track(int(args[0]))  # type: ignore[call-overload]
        return result

    def call_export(self, name: str, *args: object) -> object:
        """``raw`` without its checkpoint bookkeeping: for the checkpoints' own dirty-bit calls."""
        running_calls(self, "call_export")
        func = self.exports[name] if name in self.exports else None
        if not isinstance(func, wasmtime.Func):
            raise ValueError(f"the module has no exported function {name!r}")
        return self._guarded(func, *args)

    def _guarded(self, func: object, *args: object) -> object:
        """Call ``func``; a trap is typed only if ``trap_seq`` moved during this very call (or it is an
        interrupt: ``Interrupted``)."""
        with running_calls(self, "call").running("call"):
            seq = self.trap_seq()
            self._epoch.arm()
            try:
                return func(self.store, *args)  # type: ignore[operator]
            except TypeError:
                wrong = [a for a in args if not isinstance(a, (int, float, np.integer, np.floating))]
                if not wrong:
                    raise  # not the arguments' conversion
                raise TypeError(f"expected an integer (a region id, a size, a handle's bits), not "
                                f"{type(wrong[0]).__name__} {wrong[0]!r}") from None
            except wasmtime.Trap as trap:
                error = self._epoch.typed(trap)
                if error is trap:
                    error = self.error_from_trap(trap, seq)
                if error is trap:
                    raise
                raise error from trap

    def trap_seq(self) -> int:
        """The module's count of typed-access traps (``abi.TRAP_CAUSE``)."""
        return int(self._global("trap_seq"))

    def _global(self, name: str) -> int:
        value = self.exports[name]
        assert isinstance(value, wasmtime.Global)
        return int(value.value(self.store))  # type: ignore[arg-type]

    def trap_cause(self) -> dict[str, int]:
        """Every trap-cause global of the module, by name (what JavaScript reads too)."""
        return read_trap_cause(self._global)

    def error_from_trap(self, trap: wasmtime.Trap, seq_before: int) -> Exception:
        """The typed error of ``trap``, or ``trap`` itself when it was not a typed access.

        ``seq_before`` is ``trap_seq`` read before the call that trapped: the
        recorded cause belongs to this trap only if the count moved, so a cause
        left by an earlier trap is never reported for an unrelated one.
        """
        if self.trap_seq() == seq_before:
            return trap
        return trap_cause_error(self.trap_cause(), trap)

    def last_error(self) -> int:
        return int(self.raw("last_error"))  # type: ignore[arg-type]

    def _checked(self, code: object, what: str, region_id: int | None = None) -> None:
        if code:
            self.last_error()  # the code is reported here; leave nothing behind
            if code == RegionNotFound.code and region_id is not None:
                raise self._region_fault(region_id)
            raise error_for_code(int(code), code_message(int(code), what), region_id=region_id)  # type: ignore[arg-type]

    def _region_fault(self, region_id: int) -> RegionNotFound:
        """Code 1 for a region named by id, worded as the model words it (``core.handle_faults.region_fault``).
        Destroyed or never created is asked of the module's own handle check, which tells them apart
        (2 for a destroyed region's handle, 1 for an id never created), and its code cleared."""
        destroyed = False
        if 0 < region_id <= 0xFFFF:
            destroyed = int(self.raw("handle_address", Handle(region_id, 1, 0).to_i64(), 0)) == -StaleHandle.code  # type: ignore[call-overload]
            self.last_error()
        return region_fault(region_id, destroyed=destroyed)

    def _bulk_checked(self, code: object, operation: str, handle: Handle, length: int) -> None:
        """Raise a failed bulk operation's error, its code reported here: a handle whose region is not live
        at its generation as every layer words it (:meth:`_handle_fault`), any other failure by
        ``abi.trap_cause.bulk_error``."""
        if code:
            self.last_error()
            if code in (RegionNotFound.code, StaleHandle.code):
                raise self._handle_fault(int(code), operation, handle, length)  # type: ignore[call-overload]
            if code == OutOfBounds.code:
                capacity = u32(int(self.raw("region_capacity", handle.region_id)))  # type: ignore[call-overload]
                raise out_of_bounds(operation, handle, length, capacity)
            raise bulk_error(int(code), operation, handle, length)  # type: ignore[call-overload]

    def _handle_fault(self, code: int, operation: str, handle: Handle, length: int | None = None) -> TvmError:
        """The error of code 1 (an id never created) or 2 (a region destroyed, or at another generation: asked
        here) for ``operation`` on ``handle``, worded by ``core.handle_faults`` as the model words it."""
        if code == RegionNotFound.code:
            return handle_fault(operation, handle, "absent", length=length)
        generation = int(self.raw("region_generation", handle.region_id))  # type: ignore[call-overload]
        if generation == -1:
            self.last_error()  # region_generation's own failure: nothing left behind
            return handle_fault(operation, handle, "destroyed", length=length)
        return handle_fault(operation, handle, "live", generation=generation, length=length)

    def _value(self, result: object, what: str, region_id: int) -> int:
        """Accessor results: -1 means failure, with the code in ``last_error``."""
        if result == -1:
            code = self.last_error()
            if code == RegionNotFound.code:
                raise self._region_fault(region_id)
            if code:
                raise error_for_code(code, code_message(code, what), region_id=region_id)
        return int(result)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ control plane
    def create_region(self, kind: RegionKind, capacity: int, *, allocator: Allocator | None = None,
                      max_blocks: int = 0) -> int:
        """Create a zeroed region; ``Freelist()`` asks for the compactable block allocator."""
        kind_value, param = allocator_args(allocator, arguments.integer(max_blocks, "max_blocks", 0xFFFF_FFFF))
        capacity = arguments.integer(capacity, "capacity", 0xFFFF_FFFF, 1)
        region_id = int(self.raw("create_region_with", int(RegionKind(kind)), s32(capacity), kind_value, s32(param)))  # type: ignore[arg-type]
        if region_id == 0:
            code = self.last_error()
            raise error_for_code(code, code_message(code, "create_region"), capacity=capacity)
        if kind_value == G.ALLOC_SLAB:
            self._slab_classes[region_id] = param  # the class size, for refusals while no slot is live
        return region_id

    def destroy_region(self, region_id: int) -> None:
        region_id = region_arg(region_id)
        self._checked(self.raw("destroy_region", region_id), "destroy_region", region_id)
        self._slab_classes.pop(region_id, None)
        gone = self._checkpoint_hooks.forget(region_id)
        if gone is not None:
            self._checkpoints.forget(gone)  # type: ignore[arg-type]

    def _policy_error(self, code: object, error: TvmError) -> None:
        """Raise ``error`` for code 9 (several causes in the raw ABI; ``error`` names this one)."""
        if code == PolicyViolation.code:
            self.last_error()  # reported here; leave nothing behind
            raise error

    def pin(self, region_id: int) -> None:
        region_id = region_arg(region_id)
        code = self.raw("pin", region_id)
        if code == PolicyViolation.code:
            kind = RegionKind(self._value(self.raw("region_kind", region_id), "region_kind", region_id))
            self._policy_error(code, PolicyViolation(
                f"pin refused: {kind.name} regions are not pinnable (placement policy)", region_id=region_id))
        self._checked(code, "pin", region_id)

    def unpin(self, region_id: int) -> None:
        region_id = region_arg(region_id)
        self._checked(self.raw("unpin", region_id), "unpin", region_id)

    def demote_region(self, region_id: int) -> None:
        """Hot -> Warm; an unspillable kind or a region already Warm is a ``PolicyViolation``."""
        region_id = region_arg(region_id)
        code = self.raw("demote_region", region_id)
        if code == PolicyViolation.code:
            info = self.region_info(region_id)
            why = (f"{info.kind.name} regions may not leave Hot (placement policy)"
                   if not PlacementPolicy.for_kind(info.kind).spillable
                   else f"the region is already {info.residency.name}; there is no Cold tier inside the module")
            self._policy_error(code, PolicyViolation(f"demote refused: {why}", region_id=region_id))
        self._checked(code, "demote_region", region_id)

    def promote_region(self, region_id: int) -> None:
        region_id = region_arg(region_id)
        self._checked(self.raw("promote_region", region_id), "promote_region", region_id)

    def compact_region(self, region_id: int) -> HandleRemap:
        """Pack the region's live blocks from offset 0 and bump its generation, as the model's
        ``compact_region``, answering the same ``HandleRemap`` (region, old and new generation, old offset
        -> new offset of each live block). Old handles are stale until migrated: ``remap.migrate(h)``
        (``None`` for a handle that was not a live block) or :meth:`migrate` (which raises instead).
        A refusal (allocator, pin, last generation) reads as the model's (``core.handle_faults.compact_refused``)."""
        region_id = region_arg(region_id)
        before = int(self.raw("region_generation", region_id))  # type: ignore[call-overload]
        if before == -1:
            self.last_error()  # compact_region reports this failure itself, below
        code = self.raw("compact_region", region_id)
        if code == UnsupportedAllocator.code:
            allocator = self._value(self.raw("region_allocator", region_id), "region_allocator", region_id)
            name = ALLOCATOR_NAMES[allocator] if 0 <= allocator < len(ALLOCATOR_NAMES) else str(allocator)
            self._policy_error(code, compact_refused(region_id, "allocator", allocator=name))
        if code in (Pinned.code, AllocationFailed.code):  # the module's only causes of these codes here
            self.last_error()
            raise (compact_refused(region_id, "pinned") if code == Pinned.code
                   else compact_refused(region_id, "last_generation", generation=before))
        self._checked(code, "compact_region", region_id)
        after = self._value(self.raw("region_generation", region_id), "region_generation", region_id)
        return HandleRemap(region_id, before, after, compaction_moves(GuestLayout(self, region_id).layout_state()))

    def migrate(self, handle: Handle) -> Handle:
        """The handle's form after its region's last compaction, as ``TvmHost.migrate`` (the model's) and the
        raw ABI's ``migrate``: a current handle comes back unchanged, one of the generation before the last
        compaction at a live block's start comes back moved; any other raises ``StaleHandle`` (or
        ``RegionNotFound`` for an id never created)."""
        result = int(self.raw("migrate", handle_bits(handle)))  # type: ignore[arg-type]
        if result == 0:
            code = self.last_error()
            if code in (RegionNotFound.code, StaleHandle.code):
                raise self._handle_fault(code, "migrate", handle)
            raise error_for_code(code, f"cannot migrate {handle}", region_id=handle.region_id)
        return Handle.unpack(result)

    def lru_candidate(self) -> int | None:
        region_id = int(self.raw("lru_candidate"))  # type: ignore[arg-type]
        return region_id or None

    def region_count(self) -> int:
        return int(self.raw("region_count"))  # type: ignore[arg-type]

    def region_info(self, region_id: int) -> GuestRegionInfo:
        region_id = region_arg(region_id)

        def field(name: str) -> int:
            return self._value(self.raw(f"region_{name}", region_id), f"region_{name}", region_id)

        return GuestRegionInfo(
            region_id, field("generation"), RegionKind(field("kind")), u32(field("capacity")), u32(field("used")),
            Residency(field("residency")), bool(field("pinned")), field("pool"), u32(field("base")),
            field("allocator"),
        )

    def metrics(self, region_id: int) -> RegionMetrics:
        region_id = region_arg(region_id)
        values = [self._value(self.raw("region_metric", region_id, i), "region_metric", region_id)
                  for i in range(len(fields(RegionMetrics)))]
        return RegionMetrics(*values)

    # ------------------------------------------------------------------ data plane conveniences
    def alloc(self, region_id: int, size: int, *, align: int = 1) -> Handle:
        """A block whose offset is a multiple of ``align`` (a power of two; 0 = the module's default, 8: the raw
        ABI's convention, which the model, whose default is 1, does not take).

        ``size`` must fit the ABI's u32; malformed arguments are the model's ``TypeError``/``ValueError``
        (``core.arguments``), never truncated.
        """
        region_id = arguments.region_id(region_id)  # every argument is checked before any state, as the model does
        size = check_u32(size, "size")
        align = arguments.alignment(align, zero_is_default=True)
        region_id = region_arg(region_id)
        packed = int(self.raw("alloc_aligned", s32(region_id), s32(size), s32(align)))  # type: ignore[arg-type]
        if packed == 0:
            code = self.last_error()
            if code == RegionNotFound.code:
                raise self._region_fault(region_id)
            if code == AllocationFailed.code:
                raise self._alloc_refused(region_id, size, align)
            raise error_for_code(code, code_message(code, "alloc"), region_id=region_id, length=size)
        return Handle.unpack(packed)

    def _allocator_state(self, region_id: int) -> tuple[int, int, bytes, int | None]:
        """(allocator kind, capacity, ``save_layout``'s side table, Slab class size if known) of a live region:
        what tells the cause of a refusal the module answers with one code. A Slab's class size is its
        ``used`` over its live slots (``guest.checkpoints.layout_live_test``); with none live, the size this
        instance created it with (``None`` for a region linked code created)."""
        kind = self._value(self.raw("region_allocator", region_id), "region_allocator", region_id)
        capacity = u32(self._value(self.raw("region_capacity", region_id), "region_capacity", region_id))
        state = GuestLayout(self, region_id).layout_state()
        assert isinstance(state, bytes)
        used, table = int.from_bytes(state[:4], "little"), state[4:]
        class_size = None
        if kind == G.ALLOC_SLAB:
            slots = int.from_bytes(table[L.SLAB_SLOTS : L.SLAB_SLOTS + 4], "little")
            live = slots - int.from_bytes(table[L.SLAB_COUNT : L.SLAB_COUNT + 4], "little")
            class_size = used // live if live else self._slab_classes.get(region_id)
        return kind, capacity, state, class_size

    def _alloc_refused(self, region_id: int, size: int, align: int) -> AllocationFailed:
        """Code 5 of ``alloc_aligned``, worded by the model's cause (``core.allocator_faults``) told from the
        region's allocator state."""
        kind, capacity, state, class_size = self._allocator_state(region_id)
        used, table = int.from_bytes(state[:4], "little"), state[4:]
        field = lambda offset: int.from_bytes(table[offset : offset + 4], "little")  # noqa: E731
        effective = align or 8  # alloc_aligned's default
        if kind == G.ALLOC_BUMP:
            cause = alloc_cause("bump_full", align=effective, used=used)
        elif kind == G.ALLOC_BLOCKS:
            full = field(G.BT_COUNT) >= field(G.BT_CAP)
            cause = (alloc_cause("empty_block") if size == 0 else
                     alloc_cause("block_table_full", entries=field(G.BT_CAP)) if full else
                     alloc_cause("no_free_block", align=effective))
        else:
            slots, free = field(L.SLAB_SLOTS), field(L.SLAB_COUNT)
            if class_size is None:
                cause = (alloc_cause("slab_full", slots=slots) if free == 0
                         else alloc_cause("slab_size_or_align", align=effective))
            elif size != class_size:
                cause = alloc_cause("slab_size", class_size=class_size)
            elif align > 1 and class_size % align:
                cause = alloc_cause("slab_align", align=align, class_size=class_size)
            else:
                cause = alloc_cause("slab_full", slots=slots)
        generation = self._value(self.raw("region_generation", region_id), "region_generation", region_id)
        return AllocationFailed(alloc_message(region_id, size, cause), region_id=region_id, generation=generation,
                                length=size, capacity=capacity)

    def _dealloc_refused(self, handle: Handle) -> OutOfBounds:
        """Code 3 of ``dealloc`` (the handle's region is live at its generation): past the capacity, or the
        allocator's cause (``core.allocator_faults``) told from the region's allocator state."""
        kind, capacity, state, class_size = self._allocator_state(handle.region_id)
        if handle.offset > capacity:
            return out_of_bounds("dealloc", handle, None, capacity)
        if kind == G.ALLOC_SLAB:
            table = state[4:]
            slots = int.from_bytes(table[L.SLAB_SLOTS : L.SLAB_SLOTS + 4], "little")
            if class_size is None:
                cause = dealloc_cause("slab_no_slot")
            elif handle.offset % class_size or handle.offset // class_size >= slots:
                cause = dealloc_cause("slab_boundary", class_size=class_size)
            else:
                cause = dealloc_cause("slab_free")
        else:
            cause = dealloc_cause("no_block")
        return OutOfBounds(handle_message("dealloc", handle, cause), region_id=handle.region_id,
                           generation=handle.generation, offset=handle.offset, capacity=capacity)

    def dealloc(self, handle: Handle) -> None:
        code = self.raw("dealloc", handle_bits(handle))
        if code in (RegionNotFound.code, StaleHandle.code):
            self.last_error()  # reported here
            raise self._handle_fault(int(code), "dealloc", handle)  # type: ignore[call-overload]
        if code == OutOfBounds.code:
            self.last_error()  # reported here
            raise self._dealloc_refused(handle)
        self._checked(code, "dealloc", handle.region_id)

    def pool_memory(self, pool: int) -> wasmtime.Memory:
        memory = self.exports[f"mem{pool}"]
        assert isinstance(memory, wasmtime.Memory)
        return memory

    @property
    def guest_memory(self) -> wasmtime.Memory:
        memory = self.exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        return memory

    def view(self, region_id: int, *, writable: bool = True) -> np.ndarray:
        """Zero-copy view of a resident region's bytes in its pool (valid until the pool grows).

        As ``handle_view`` over the whole region: a writable view of a dirty-tracked region marks
        every page dirty when it is taken; ``writable=False`` (and any view of a read-only region)
        is a read-only array that marks nothing. ``NotResident`` while Cold.
        """
        info = self.region_info(region_id)
        return self.handle_view(Handle(info.id, info.generation, 0), info.capacity, writable=writable)

    def handle_view(self, handle: Handle, length: int, *, writable: bool = True) -> np.ndarray:
        """Zero-copy view of ``[offset, offset + length)``, checked like any access.

        Taken through ``handle_address``, so the module counts the range as written (its pages are
        zeroed when the span is freed). A writable view passes the store's checks (``note_write``):
        a dirty-tracked region's pages in the range turn dirty when the view is taken (bytes written
        through it later are not seen one by one: take a new view after ``clear_dirty`` or a
        checkpoint). ``writable=False``, or a read-only region, gives a read-only array that marks
        nothing. ``TypeError`` if ``writable`` is not a bool.
        """
        writable = checked_flag(writable, "writable")
        view = self._pool_bytes(handle, length, "view")
        if writable and not self.is_read_only(handle.region_id):
            self._bulk_checked(self.raw("note_write", handle_bits(handle), s32(length)), "view", handle, length)
            return view
        view = view.view()
        view.flags.writeable = False
        return view

    def _pool_bytes(self, handle: Handle, length: int, operation: str) -> np.ndarray:
        """The pool bytes of ``[offset, offset + length)`` through ``handle_address`` (checked, never marked dirty);
        a failure is ``operation``'s, worded by the ABI table's ``BULK_ERROR`` as ``tvm-guest.js`` words it."""
        bits = handle_bits(handle)
        length = check_u32(length, "length")
        packed = int(self.raw("handle_address", bits, s32(length)))  # type: ignore[arg-type]
        if packed < 0:
            self._bulk_checked(-packed, operation, handle, length)
        pool, address = packed >> 32, packed & 0xFFFF_FFFF
        return native.memory_view(self.pool_memory(pool), self.store)[address : address + length]

    def read(self, handle: Handle, length: int) -> bytes:
        """A copy of ``length`` bytes at the handle, counted in ``bytes_read`` (``note_read``) as the model's ``read``."""
        data = self._pool_bytes(handle, length, "read").tobytes()
        self._bulk_checked(self.raw("note_read", handle_bits(handle), s32(len(data))), "read", handle, len(data))
        return data

    def write(self, handle: Handle, data: bytes) -> None:
        """Write ``data`` at the handle: the span first passes the data plane's write barrier as a
        zero ``fill`` (read-only: ``ReadOnly``, nothing changes; tracked: its pages turn dirty)."""
        bits = handle_bits(handle)
        data = arguments.byte_view(data)
        self._bulk_checked(self.raw("fill", bits, s32(data.nbytes), 0), "write", handle, data.nbytes)
        self._pool_bytes(handle, data.nbytes, "write")[:] = np.frombuffer(data, dtype=np.uint8)

    def fill(self, handle: Handle, length: int, byte: int) -> None:
        """Set ``length`` bytes from the handle to ``byte`` (the raw ABI's ``fill``)."""
        byte = arguments.integer(byte, "byte", 0xFF)
        bits = handle_bits(handle)
        length = check_u32(length, "length")
        self._bulk_checked(self.raw("fill", bits, s32(length), byte), "fill", handle, length)

    def discard(self, handle: Handle, length: int) -> None:
        """Zero ``length`` bytes from the handle (the raw ABI's ``discard``; ``memory.fill`` in the module)."""
        bits = handle_bits(handle)
        length = check_u32(length, "length")
        self._bulk_checked(self.raw("discard", bits, s32(length)), "discard", handle, length)

    # ------------------------------------------------------------------ read-only regions and dirty tracking
    def protect(self, region_id: int, read_only: bool = True) -> None:
        region_id = region_arg(region_id)
        self._checked(self.raw("protect", region_id, int(checked_flag(read_only, "read_only"))), "protect", region_id)

    def is_read_only(self, region_id: int) -> bool:
        region_id = region_arg(region_id)
        return bool(self._value(self.raw("region_read_only", region_id), "region_read_only", region_id))

    def track_dirty(self, region_id: int, enabled: bool = True) -> None:
        region_id = region_arg(region_id)
        self._checked(self.raw("track_dirty", region_id, int(checked_flag(enabled, "enabled"))), "track_dirty", region_id)

    def _lost_track(self, region_id: int) -> None:
        """Dirty bits were dropped outside the checkpoints: the region's next checkpoint copies every page."""
        proxy = self._checkpoint_hooks._proxies.get(region_id)
        if proxy is not None:
            self._checkpoints.lost_track(proxy)  # type: ignore[arg-type]

    def dirty_pages(self, region_id: int) -> list[int]:
        """Ascending dirty page indices (4 KiB pages); ``PolicyViolation`` if the region is not tracked."""
        region_id = region_arg(region_id)
        pages, page = [], 0
        while True:
            found = int(self.raw("next_dirty_page", region_id, s32(page)))  # type: ignore[arg-type]
            if found == -2:
                code = self.last_error()
                if code == PolicyViolation.code:
                    raise PolicyViolation("dirty tracking is off for this region (track_dirty first)",
                                          region_id=region_id)
                raise error_for_code(code, code_message(code, "dirty_pages"), region_id=region_id)
            if found < 0:
                return pages
            pages.append(found)
            page = found + 1

    def clear_dirty(self, region_id: int) -> None:
        region_id = region_arg(region_id)
        code = self.raw("clear_dirty", region_id)
        self._policy_error(code, PolicyViolation("dirty tracking is off for this region (track_dirty first)",
                                                 region_id=region_id))
        self._checked(code, "clear_dirty", region_id)

    # ------------------------------------------------------------------ checkpoints (kept by this embedder)
    def checkpoint(self, region_ids: list[int]) -> Checkpoint:
        """Record the regions' pages changed since their previous checkpoint (first: all), allocator state and
        generation; the rules are the model's (``tvm_wasm.core.checkpoints``). ``NotResident`` for a Cold region."""
        return self._checkpoints.checkpoint(region_ids)

    def rollback(self, checkpoint: Checkpoint) -> dict[int, RollbackRemap]:
        """Put the regions back exactly as at the checkpoint; regions whose layout changed move to a new
        generation (returned with the remap of handles taken at the checkpoint). All or nothing."""
        return self._checkpoints.rollback(checkpoint)

    def release_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Free a checkpoint's pages; one that is not live (released, superseded, a destroyed region's) or
        another instance's is ``CheckpointError`` saying why, and nothing changes (the model's rule)."""
        self._checkpoints.release(checkpoint)

    def checkpoints(self) -> list[Checkpoint]:
        return self._checkpoints.live_checkpoints()

    # ------------------------------------------------------------------ user modules
    def link(self, user: bytes | str | wasmtime.Module, *, name: str = "tvm") -> wasmtime.Instance:
        """Instantiate a user module whose ``tvm.*`` imports (functions and ``memory``) are this module's exports.

        ``read``/``write`` and the other guest-memory operations copy to and
        from this module's ``memory``: a module importing ``tvm.memory`` or
        ``env.memory`` (C or Rust built with ``--import-memory``) gets it, grown
        to the import's minimum. A module that defines its own memory is served
        when it imports no function taking a guest pointer, and refused when it
        does (those pointers would land in another memory: link it statically
        with ``tvm-wasm link``, which makes its memory the module's). Every
        refusal is ``LinkRefused`` (a ``TvmError`` and a ``ValueError``) worded
        as ``tvm-wasm link``, ``TvmHost.instantiate`` and ``tvm-guest.js`` word
        it (``abi.imports.refused_import``): more than one memory, a memory
        other than the module's own, a table or global, a ``tvm.*`` function
        this module does not serve or with another signature; and any other
        import (WASI, ``env.*``), which nothing serves here, and a memory
        import that is shared, 64-bit or has a maximum.
        """
        binary: bytes | None = None
        try:
            if isinstance(user, wasmtime.Module):
                compiled = user
            else:
                binary = user if isinstance(user, bytes) else bytes(wasmtime.wat2wasm(user))
                compiled = _compiled_user(self.engine, binary)
        except wasmtime.WasmtimeError as exc:
            raise LinkRefused(f"the user module is not a valid module: {str(exc).splitlines()[0]}") from None
        check_guest_memory(compiled, binary)
        refuse_imports(compiled, served_functions(self.module), MODULE, pools=self.pools,
                       internals={e.name for e in self.module.exports}, abi_module=name)
        foreign = [f"{imp.module}.{imp.name}" for imp in compiled.imports
                   if isinstance(imp.type, wasmtime.FuncType) and imp.module != name]
        if foreign:
            raise LinkRefused(f"import {foreign[0]}: GuestInstance.link serves only {name}.* and the module's "
                              "memory; link the module statically (tvm-wasm link keeps WASI and declared imports "
                              "as imports of the linked module) or serve it from JavaScript (tvm-guest.js link's "
                              "imports)")
        if any(imp.module == name and imp.name == "clear_dirty" for imp in compiled.imports):
            self._checkpoint_hooks.foreign_clears = True  # it may clear bits checkpoints rely on: copy all pages
        linker = wasmtime.Linker(self.engine)
        linker.define_instance(self.store, name, self.instance)
        for imp in compiled.imports:
            if isinstance(imp.type, wasmtime.MemoryType):
                self._serve_memory_import(linker, imp, name)
        self._epoch.arm()
        try:
            return linker.instantiate(self.store, compiled)
        except wasmtime.Trap as trap:  # a trap in the user's start function
            error = self._epoch.typed(trap)
            if error is trap:
                raise
            raise error from trap
        except wasmtime.WasmtimeError as exc:
            raise LinkRefused(f"cannot link the user module: {' '.join(str(exc).split())}") from None

    def _serve_memory_import(self, linker: wasmtime.Linker, imp: wasmtime.ImportType, name: str) -> None:
        """Serve ``tvm.memory``/``env.memory`` with this module's memory, grown to the import's minimum."""
        where = f"{imp.module}.{imp.name}"
        memory_type = imp.type
        if memory_type.is_shared or memory_type.is_64:
            raise LinkRefused(f"{where} is {'shared' if memory_type.is_shared else '64-bit'}; this module's memory is "
                              "a plain 32-bit memory (build without -pthread/--shared-memory and without memory64)")
        limits = memory_type.limits
        memory = self.guest_memory
        pages = memory.size(self.store)
        if limits.max is not None:
            raise LinkRefused(f"the user module's memory import {where} declares a maximum ({limits.max} pages); "
                              "this module's memory has none, so the import cannot match: drop the maximum "
                              "(clang: omit --max-memory)")
        if limits.min > pages:
            memory.grow(self.store, limits.min - pages)
        if imp.module != name:
            linker.define(self.store, imp.module, imp.name, memory)

    def call(self, instance: wasmtime.Instance, name: str, *args: object) -> object:
        """Call a linked user module's export; a typed-access trap during this call becomes its ``TvmError``,
        an :meth:`interrupt` ``Interrupted``, any other trap comes out as the ``wasmtime.Trap`` it is."""
        running_calls(self, "call")
        return self._guarded(instance.exports(self.store)[name], *args)


class ClosedGuestInstance(Closed, GuestInstance):
    """What a ``GuestInstance`` becomes once closed: every use raises ``HostClosed`` naming it (``host/closed.py``)."""

    EMBEDDER = "GuestInstance"
