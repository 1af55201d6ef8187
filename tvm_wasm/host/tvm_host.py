"""TvmHost: the model's semantics, with region bytes in wasm pools and a wasm data plane.

The control plane is ``RegionDirectory`` itself; this subclass only moves
storage into pool spans, mirrors every change into the shared directory
table, and instantiates the generated runtime for each guest. Guests reach
bytes through the runtime's ``tvm`` exports at wasm speed; Python is entered
only to fault a Cold region in or to run a Freelist allocation.
"""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import wasmtime
import wasmtime.component

from ..core.allocators import Allocator, Bump, Freelist, Slab
from ..core.backing import BackingStore
from ..core.checkpoint_store import CheckpointStore
from ..core.directory import RETIRED_GENERATION, Counters, Region, RegionDirectory, _check_int
from ..core.errors import (
    AllocationFailed,
    GuestMemoryError,
    NotResident,
    PolicyViolation,
    RegionNotFound,
    TvmError,
    error_for_code,
)
from ..core.handle import U64_MAX, Handle
from ..core.types import HandleRemap, PlacementPolicy, RegionKind, Residency, checked_flag
from ..abi.imports import first_refused
from ..abi.table import for_deployment
from ..abi.trap_cause import TRAP_SEQ, access_error, read_trap_cause, trap_cause_error
from ..abi.table import HOST as ABI_HOST
from ..runtime import layout as L
from ..runtime.bridge_module import BRIDGE_EXPORTS, GUEST
from ..runtime.core_module import HOST, META_MEM
from ..runtime.link_errors import LinkRefused, import_decls, served_functions
from . import native
from .closed import Closed, RunningCalls, finish_calls, running_calls
from .guest_control import control_imports
from .import_refusals import refuse_missing, wrong_import
from .interrupt import EpochSwitch, interruptible_on, note_epoch_checks
from .pools import PoolSet, Span
from .runtime import RuntimeModules, runtime_modules
from .table import DirectoryTable, TableBump, TableCounters, TableSlab
from .wasi import COMMAND_ENTRY, REACTOR_INIT, WASI_MODULE, WasiArg, give_wasi, imports_wasi

if TYPE_CHECKING:
    from .component import ComponentGuest

DEFAULT_POOLS = 4
ModuleSource = bytes | str | os.PathLike[str] | wasmtime.Module
"""A compiled module, wasm bytes, WAT text (a ``str``), or the path of a ``.wasm``/``.wat`` file (a ``PathLike``)."""


@dataclass
class GuestBinding:
    """A guest instance and the runtime instance that serves its ``tvm`` imports."""

    guest: wasmtime.Instance
    runtime: wasmtime.Instance


_default_engine: wasmtime.Engine | None = None
_interruptible_engine: wasmtime.Engine | None = None
_default_engine_lock = threading.Lock()


def new_engine(*, interruptible: bool = False) -> wasmtime.Engine:
    """A fresh engine configured as hosts need it (memories never move).

    ``interruptible``: compile with wasmtime's epoch interruption, so that
    ``Engine.increment_epoch()`` (``TvmHost.interrupt``) stops wasm running on
    it; every store on such an engine needs an epoch deadline, which a
    ``TvmHost(interruptible=True)`` sets. Off by default: the checks cost a little
    in loops (README, "Interrupting a guest").
    """
    config = wasmtime.Config()
    config.memory_may_move = False  # NumPy views over pools stay valid across growth
    config.epoch_interruption = interruptible
    return note_epoch_checks(wasmtime.Engine(config), interruptible)


def default_engine() -> wasmtime.Engine:
    """The process-wide engine hosts share unless given one.

    Compiled runtime modules are cached per (engine, pool count), so sharing
    one engine means a program that makes a host per request compiles the
    runtime once, not per host (wasmtime's own packages keep one default
    engine for the same reason). Engines are thread-safe; stores are not
    shared.
    """
    global _default_engine
    with _default_engine_lock:
        if _default_engine is None:
            _default_engine = new_engine()
        return _default_engine


def interruptible_engine() -> wasmtime.Engine:
    """The process-wide engine of ``TvmHost(interruptible=True)`` (epoch interruption on).

    A separate engine, not a flag on the default one: code compiled with epoch
    checks differs, so compiled-module caches (keyed per engine) keep the two apart.
    """
    global _interruptible_engine
    with _default_engine_lock:
        if _interruptible_engine is None:
            _interruptible_engine = new_engine(interruptible=True)
        return _interruptible_engine


class TvmHost(RegionDirectory):
    """Regions in wasmtime memories, served to guests by the generated runtime."""

    def __init__(
        self,
        *,
        backing: BackingStore | None = None,
        strict: bool = False,
        budget_bytes: int | None = None,
        engine: wasmtime.Engine | None = None,
        pools: int = DEFAULT_POOLS,
        checkpoint_store: CheckpointStore | None = None,
        interruptible: bool | None = None,
    ) -> None:
        """``interruptible``: wasm on this host can be stopped by :meth:`interrupt` (another
        thread) or by Ctrl-C inside ``interrupt.sigint_interrupts(host.engine)``, and the call
        raises ``Interrupted``; the default engine is then :func:`interruptible_engine`. Unset
        (``None``), it follows a given ``engine``: one whose ``Config`` has epoch interruption on
        makes the host interruptible (its store's deadline kept ahead, so calls run); a value that
        contradicts the engine raises ``ValueError`` naming the fix (``interrupt.interruptible_on``)."""
        super().__init__(backing, strict=strict, checkpoint_store=checkpoint_store)
        if budget_bytes is not None:
            _check_int("budget_bytes", budget_bytes, U64_MAX)
        self.budget_bytes = budget_bytes
        self.engine = engine or (interruptible_engine() if interruptible else default_engine())
        self.interruptible = interruptible_on(self.engine, interruptible, "TvmHost")
        self.store = wasmtime.Store(self.engine)
        self._epoch = EpochSwitch(self.engine, self.store, enabled=self.interruptible, owner="TvmHost")
        self._calls = RunningCalls("TvmHost")
        self.table = DirectoryTable(self.store)
        self.table.strict = strict
        for rid, generation in self._tombstones.items():  # ids a leasing checkpoint store's earlier processes used
            self._mirror_gone(rid, generation)
        for rid in self._retired:
            self._mirror_gone(rid, RETIRED_GENERATION)
        self.pools = PoolSet(self.store, pools)
        self.python_entries = 0
        self.linker = wasmtime.Linker(self.engine)  # what guests may import: ``tvm`` only
        self.linker.allow_shadowing = True
        # The runtime's own imports (directory table, pools, slow paths) live in a linker
        # guests never see: a guest importing the pools or the table could bypass every check.
        self._runtime_linker = wasmtime.Linker(self.engine)
        self._modules: RuntimeModules = runtime_modules(self.engine, pools)
        self._define_host_imports()
        self._bindings: list[GuestBinding] = []
        self._busy: tuple[Region, ...] = ()  # regions an operation needs resident together
        self._imported: dict[int, wasmtime.Memory] = {}
        self._creating_imported = False
        self._wasi_defined = False
        self._runtime_wasi_defined = False
        self._guest_stores: weakref.WeakSet[wasmtime.Store] = weakref.WeakSet()  # component guests' own stores
        # The runtime ``linker`` serves as ``tvm``: guests instantiated through ``linker``
        # directly share it, and its bridge stays unbound until ``bind_guest_memory``.
        self.runtime = self._new_runtime()
        self._bind_nothing(self.runtime)
        self._serve_tvm(self.runtime)

    @property  # type: ignore[override]
    def strict(self) -> bool:
        return self._strict

    @strict.setter
    def strict(self, value: bool) -> None:
        """Strictness may change at any time (as in the model); the data plane follows."""
        self._strict = bool(value)
        table = self.__dict__.get("table")
        if table is not None:
            table.strict = self._strict

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release the store, its pools, table and runtime instances now, not at garbage collection.

        Regions and their bytes are gone afterwards (spilled copies stay in the
        backing store, which the caller owns); views, instances and memories
        obtained from this host must not be used again. The stores of its
        component guests (``instantiate_component``) are closed too. Every
        later use of the host or its component guests raises ``HostClosed``;
        closing twice is a no-op.
        """
        finish_calls(self)  # a call running on another thread returns first (interrupt() it to stop it)
        store = self.__dict__.get("store")
        guest_stores = list(self.__dict__.get("_guest_stores", ()))
        table, pools = self.__dict__.get("table"), self.__dict__.get("pools")
        if table is not None:
            table.detach()  # objects still holding table-backed counters fail cleanly, never read freed memory
        if pools is not None:
            pools.detach()
        self.__dict__.clear()
        self.__class__ = ClosedTvmHost
        for guest_store in guest_stores:
            guest_store.close()
        if store is not None:
            store.close()

    @property
    def closed(self) -> bool:
        return False

    def __enter__(self) -> TvmHost:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def interrupt(self) -> None:
        """Stop the wasm running on this host's engine (from any thread): it stops at its next
        function entry or loop back-edge and the call raises ``Interrupted``.

        Every interruptible store on the same engine is interrupted (``GuestInstance`` ones
        too); the next :meth:`call` runs normally again. Raises ``ValueError`` on a host made
        without ``interruptible=True`` (its code has no epoch checks).
        """
        self._epoch.interrupt()

    def _rearm(self) -> None:
        """A new deadline one epoch ahead, so an earlier interrupt does not stop the next call."""
        self._epoch.arm()

    # ------------------------------------------------------------------ wiring
    def _define_host_imports(self) -> None:
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        self._runtime_linker.define(self.store, HOST, META_MEM, self.table.memory)
        for pool in self.pools.pools:
            self._runtime_linker.define(self.store, HOST, f"pool{pool.index}", pool.memory)
        slow_paths: list[tuple[str, list[wasmtime.ValType], list[wasmtime.ValType], Callable[..., int]]] = [
            ("fault", [i32], [i32], self._host_fault),
            ("alloc", [i32, i32], [i64], self._host_alloc),
            ("dealloc", [i64], [i32], self._host_dealloc),
        ]
        for name, params, results, fn in slow_paths:
            func = wasmtime.Func(self.store, wasmtime.FuncType(params, results), self._counted(fn))
            self._runtime_linker.define(self.store, HOST, name, func)
        trap_type = wasmtime.FuncType([i32, i64, i32, i32, i32], [])
        self._runtime_linker.define(self.store, HOST, "trap", wasmtime.Func(self.store, trap_type,
                                                                            self._counted(self._host_trap)))
        for entry, fn in control_imports(self):
            func_type = wasmtime.FuncType([wasm_type(t) for t in entry.wasm_params],
                                          [wasm_type(t) for t in entry.wasm_results])
            func = wasmtime.Func(self.store, func_type, self._counted(fn))
            self._runtime_linker.define(self.store, HOST, f"control_{entry.name}", func)

    def _serve_tvm(self, runtime: wasmtime.Instance) -> None:
        """Offer ``runtime``'s ABI functions to guests as ``tvm.*``: exactly the ABI table's host set.

        Nothing else the runtime exports (its bridge table above all, whose
        functions copy between any pool address and guest memory) is importable.
        """
        exports = runtime.exports(self.store)
        for name in for_deployment(ABI_HOST):
            self.linker.define(self.store, "tvm", name, exports[name])

    def _counted(self, fn: Callable[..., int]) -> Callable[..., int]:
        def entry(*args: int) -> int:
            self.python_entries += 1
            return fn(*args)

        return entry

    def _new_runtime(self) -> wasmtime.Instance:
        return self._runtime_linker.instantiate(self.store, self._modules.core)

    def bind_guest_memory(self, memory: wasmtime.Memory, runtime: wasmtime.Instance | None = None) -> None:
        """Let ``runtime`` (default: the one ``linker`` serves as ``tvm``) copy to and from ``memory``.

        Only needed when instantiating guests through ``linker`` directly;
        ``instantiate`` does it for you. Until it is called, every ``tvm``
        import of such a guest that moves bytes to or from its memory
        (``read``, ``write``, ``read_gather``, ``byte_histogram``) raises
        ``GuestMemoryError`` saying so. All guests instantiated through
        ``linker`` directly share that one runtime, so bind the memory of one
        guest at a time (or use ``instantiate``, which gives every guest its
        own runtime).
        """
        self._bind_guest_memory(runtime or self.runtime, memory)

    def _bind_guest_memory(self, runtime: wasmtime.Instance, memory: wasmtime.Memory) -> None:
        """Instantiate a bridge over ``memory`` and plug it into the runtime's table."""
        linker = wasmtime.Linker(self.engine)
        for pool in self.pools.pools:
            linker.define(self.store, HOST, f"pool{pool.index}", pool.memory)
        linker.define(self.store, GUEST, "memory", memory)
        bridge = linker.instantiate(self.store, self._modules.bridge)
        exports = bridge.exports(self.store)
        table = runtime.exports(self.store)["bridge"]
        assert isinstance(table, wasmtime.Table)
        for slot, name in enumerate(BRIDGE_EXPORTS):
            table.set(self.store, slot, exports[name])

    def _bind_nothing(self, runtime: wasmtime.Instance) -> None:
        """Fill the bridge table with functions that raise ``GuestMemoryError`` saying what to do
        (an empty funcref slot would trap with a bare ``uninitialized element``)."""
        def unbound(*_args: object) -> int:
            raise GuestMemoryError(
                "no guest memory is bound to the tvm runtime this guest imports: after instantiating "
                "through host.linker directly, call host.bind_guest_memory(<the guest's memory>), "
                "or instantiate with host.instantiate(module), which binds it"
            )

        table = runtime.exports(self.store)["bridge"]
        assert isinstance(table, wasmtime.Table)
        types = {export.name: export.type for export in self._modules.bridge.exports}
        for slot, name in enumerate(BRIDGE_EXPORTS):
            func_type = types[name]
            assert isinstance(func_type, wasmtime.FuncType)
            table.set(self.store, slot, wasmtime.Func(self.store, func_type, unbound))

    # ------------------------------------------------------------------ guests
    def _as_module(self, module: ModuleSource) -> wasmtime.Module:
        if isinstance(module, wasmtime.Module):
            return module
        try:
            if isinstance(module, os.PathLike):
                return wasmtime.Module.from_file(self.engine, os.fspath(module))
            return wasmtime.Module(self.engine, module)
        except wasmtime.WasmtimeError as exc:
            raise ValueError(f"not a valid wasm module: {' '.join(str(exc).split())}") from None

    def _use_wasi(self, compiled: wasmtime.Module, wasi: WasiArg) -> None:
        """Give the store ``wasi`` (True: ``default_wasi_config()``) and serve WASI imports."""
        if wasi is not None and wasi is not False:
            give_wasi(self.store, wasi, owner="the host's store", each="instantiate/run_command")
            if not self._wasi_defined:
                self.linker.define_wasi()
                self._wasi_defined = True
        elif imports_wasi(compiled) and not self._wasi_defined:
            raise ValueError(
                f"the guest imports WASI ({WASI_MODULE}): pass wasi=True (inherited stdio, no arguments) "
                "or wasi=<a wasmtime.WasiConfig> to TvmHost.instantiate (tvm-wasm run does this)"
            )

    def instantiate(
        self, module: ModuleSource, *, memory: str = "memory", wasi: WasiArg = None, inline: bool = False
    ) -> wasmtime.Instance:
        """Instantiate a guest whose ``tvm`` imports are served by a runtime of its own.

        ``module`` is a ``wasmtime.Module``, wasm bytes, WAT text or a file path. A guest that
        imports its memory gets one created here; a guest that defines its
        memory must export it as ``memory``.

        ``wasi``: a ``wasmtime.WasiConfig`` (arguments, environment, preopened
        directories, stdio) or ``True`` for :func:`~tvm_wasm.host.wasi.default_wasi_config`
        (inherited stdio, nothing else) serves the guest's WASI preview1 imports.
        WASI state belongs to the host's one store, so the config given last applies
        to every WASI guest of this host; a config is consumed by the call. Without
        one, a guest importing WASI raises ``ValueError`` (unless an earlier call gave
        one). A reactor's ``_initialize`` export is called once here; a command's
        ``_start`` is left to the caller (see :meth:`run_command`).

        ``inline``: the host links the guest (bytes, WAT or a path) with the
        runtime first (``tvm_wasm.linker``, Binaryen): typed accesses, bump/slab
        allocation and small read/write run inside the guest's own functions,
        the region lifecycle and queries call into the host, with the same
        semantics; ``LinkRefused`` if the module may not be linked (it may
        import ``tvm.*``, WASI and its memory here). A module that imports
        ``tvm_host.*`` (``tvm-wasm link --target host`` output) is refused with
        ``LinkRefused`` either way: the host runs only what it linked itself.

        Raises ``LinkRefused`` (a ``TvmError`` and ``ValueError``) for a module that cannot be
        linked: every import nobody defines, named and worded as ``GuestInstance`` words it
        (``host.import_refusals``), or one of the wrong type; a trap in the start function raises its ``TvmError``
        (``Interrupted`` for :meth:`interrupt`, or the ``wasmtime.Trap``).
        """
        self._rearm()
        try:
            if inline:
                instance = self._instantiate_inlined(module, wasi)
            else:
                instance = self._instantiate_linked(self._as_module(module), wasi, memory)
        except wasmtime.Trap as trap:
            error = self._epoch.typed(trap)
            if error is trap:
                raise
            raise error from trap
        initialise = instance.exports(self.store).get(REACTOR_INIT)
        if isinstance(initialise, wasmtime.Func) and COMMAND_ENTRY not in instance.exports(self.store):
            self.call(instance, REACTOR_INIT)
        return instance

    def _instantiate_linked(self, compiled: wasmtime.Module, wasi: WasiArg, memory: str) -> wasmtime.Instance:
        """A guest whose ``tvm`` imports are a fresh runtime instance's exports."""
        refuse_prelinked(compiled)
        self._refuse_unserved(compiled)
        refuse_memory64(compiled, memory)
        self._use_wasi(compiled, wasi)
        runtime = self._new_runtime()
        self._serve_tvm(runtime)
        try:
            return self._link_guest(compiled, runtime, memory)
        finally:
            self._serve_tvm(self.runtime)

    def _refuse_unserved(self, compiled: wasmtime.Module) -> None:
        """A ``tvm.*`` import the runtime does not serve (a function it lacks or of another signature, a table or
        global, a memory but ``tvm.memory`` and imported regions ``tvm.r<id>``): ``LinkRefused`` worded as every
        entry point words it (``abi.imports.refused_import``); the guest's memory is served below."""
        core = self._modules.core
        tvm = [decl for decl in import_decls(compiled) if decl.module == "tvm"
               and not (decl.kind == "memory" and (decl.name == "memory" or re.fullmatch(r"r\d+", decl.name)))]
        why = first_refused(tvm, served_functions(core), ABI_HOST,
                            internals={e.name for e in core.exports} | {i.name for i in core.imports})
        if why:
            raise LinkRefused(why)

    def run_command(self, module: ModuleSource, *, wasi: WasiArg = True, inline: bool = False) -> int:
        """Run a WASI preview1 command (its ``_start``) and return its exit status.

        The status is the code the program passed to ``proc_exit``, or 0 when
        ``_start`` returned. A trap raises its ``TvmError`` (typed ``tvm`` errors) or
        the ``wasmtime.Trap``; a module without ``_start`` raises ``ValueError``.
        ``wasi`` and ``inline`` are as for :meth:`instantiate` (default: inherited
        stdio only, not inlined).
        """
        compiled = self._as_module(module)
        if not any(export.name == COMMAND_ENTRY for export in compiled.exports):
            raise ValueError(f"not a WASI command: the module exports no {COMMAND_ENTRY} (call its exports instead)")
        instance = self.instantiate(module if inline else compiled, wasi=wasi, inline=inline)
        try:
            self.call(instance, COMMAND_ENTRY)
        except wasmtime.ExitTrap as exit_:
            return int(exit_.code)
        return 0

    def _link_guest(self, compiled: wasmtime.Module, runtime: wasmtime.Instance, memory: str) -> wasmtime.Instance:
        imported = [imp for imp in compiled.imports if isinstance(imp.type, wasmtime.MemoryType)]
        guest_memory: wasmtime.Memory | None = None
        for imp in imported:
            if imp.module.startswith("tvm") and (imp.module, imp.name) != ("tvm", "memory"):
                continue  # imported regions (tvm.r{id}) are defined already; pools never are
            # ``tvm.memory`` is the guest memory the self-contained guest module exports, so a
            # guest written against it gets its own guest memory here too (one ABI, two deployments).
            limits = imp.type.limits
            guest_memory = wasmtime.Memory(self.store, wasmtime.MemoryType(wasmtime.Limits(limits.min, limits.max)))
            self.linker.define(self.store, imp.module, imp.name, guest_memory)
            self._bind_guest_memory(runtime, guest_memory)
            break
        refuse_missing(self.linker, self.store, compiled, "TvmHost")  # one refusal for every embedder
        try:
            instance = self.linker.instantiate(self.store, compiled)
        except wasmtime.Trap:
            raise  # a trap in the start function: the caller's to report
        except wasmtime.WasmtimeError as exc:  # an import of the wrong type
            raise wrong_import(exc) from None
        if guest_memory is None:
            exported = instance.exports(self.store).get(memory)
            if not isinstance(exported, wasmtime.Memory):
                # A guest without (exported) memory can still use typed access and
                # reducers; every guest range it names is outside its memory: code 7.
                exported = wasmtime.Memory(self.store, wasmtime.MemoryType(wasmtime.Limits(0, 0)))
            self._bind_guest_memory(runtime, exported)
        self._bindings.append(GuestBinding(instance, runtime))
        return instance

    def _instantiate_inlined(self, module: ModuleSource, wasi: WasiArg) -> wasmtime.Instance:
        from ..linker.host import inlined_guest  # the linker sits above the host; loaded on first use

        if isinstance(module, wasmtime.Module):
            refuse_prelinked(module)
        compiled = inlined_guest(self.engine, len(self.pools.pools), module)  # type: ignore[arg-type]
        self._use_wasi(compiled, wasi)
        if imports_wasi(compiled) and not self._runtime_wasi_defined:
            self._runtime_linker.define_wasi()  # the linked guest is instantiated by the private linker
            self._runtime_wasi_defined = True
        refuse_missing(self._runtime_linker, self.store, compiled, "TvmHost")  # tvm_host.* are the private linker's
        try:
            instance = self._runtime_linker.instantiate(self.store, compiled)
        except wasmtime.Trap:
            raise  # a trap in the start function: the caller's to report
        except wasmtime.WasmtimeError as exc:  # an import of the wrong type
            raise wrong_import(exc) from None
        self._bindings.append(GuestBinding(instance, instance))  # its runtime globals are its own exports
        return instance

    def call(self, instance: wasmtime.Instance, name: str, *args: object) -> object:
        """Call a guest export.

        An invalid typed access raises its ``TvmError`` from inside the runtime
        (``_host_trap``), so it reaches this caller, or any caller of a wasm
        export, as that error. A module with the runtime linked in (``tvm-wasm
        link --target guest``) records the cause in its trap-cause globals
        instead, and its trap is raised here as the ``TvmError`` they name
        (``abi.trap_cause``). An :meth:`interrupt` of an interruptible host raises
        ``Interrupted``. Every other trap comes out as the ``wasmtime.Trap`` it is.
        A missing export is a ``ValueError``, a wrong argument count a ``TypeError``.
        """
        with running_calls(self, "call").running("call"):
            return self._call(instance, name, *args)

    def _call(self, instance: wasmtime.Instance, name: str, *args: object) -> object:
        self._rearm()
        exports = instance.exports(self.store)
        func = exports.get(name)
        if not isinstance(func, wasmtime.Func):
            raise ValueError(f"the guest has no exported function {name!r}")
        expected = len(func.type(self.store).params)
        if len(args) != expected:
            raise TypeError(f"{name} takes {expected} argument(s), got {len(args)}")
        seq = exports.get(TRAP_SEQ)
        before = seq.value(self.store) if isinstance(seq, wasmtime.Global) else None
        try:
            return func(self.store, *args)  # type: ignore[operator]
        except wasmtime.Trap as trap:
            error = self._epoch.typed(trap)
            if error is not trap:
                raise error from trap
            if before is None or seq.value(self.store) == before:  # type: ignore[union-attr]
                raise  # not a typed access: the program's own trap
            cause = read_trap_cause(lambda field: exports[field].value(self.store))  # type: ignore[union-attr]
            raise trap_cause_error(cause, trap) from trap

    # ------------------------------------------------------------------ component model (WIT path)
    def component_linker(self, *, max_transfer: int | None = None, wasi: bool = False) -> wasmtime.component.Linker:
        """A component linker serving the ``tvm:memory`` WIT interfaces (``tvm_wasm.wit_dir()``) over
        these regions; ``wasi=True`` adds WASI preview 2 too."""
        from .component import DEFAULT_MAX_TRANSFER, component_linker  # the WIT path loads on first use

        limit = DEFAULT_MAX_TRANSFER if max_transfer is None else max_transfer
        return component_linker(self, max_transfer=limit, wasi=wasi)

    def instantiate_component(
        self,
        component: object,
        *,
        wasi: bool | wasmtime.WasiConfig | None = None,
        linker: wasmtime.component.Linker | None = None,
        cache_dir: str | None = None,
    ) -> ComponentGuest:
        """Instantiate a component (``Component``, its bytes, or a path) in a store of its own whose
        ``tvm:memory`` imports reach this host's regions (see ``component.instantiate_component``)."""
        from .component import instantiate_component

        return instantiate_component(self, component, wasi=wasi, linker=linker, cache_dir=cache_dir)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ slow paths (entered from wasm)
    def _host_fault(self, region_id: int) -> int:
        try:
            region = self._region(region_id)
            self._make_resident(region)
            return 0
        except TvmError as exc:
            return exc.code
        except Exception:  # noqa: BLE001 - never unwind through wasm
            return 9

    def _host_alloc(self, region_id: int, size: int) -> int:
        """The packed handle (as an i64), or 0 with the error code left in the table header."""
        try:
            # wasm passes i32s as signed ints; the ABI means them unsigned
            return self.alloc(region_id & 0xFFFF_FFFF, size & 0xFFFF_FFFF).to_i64()
        except TvmError as exc:
            self.table.host_error = exc.code
        except Exception:  # noqa: BLE001 - never unwind through wasm
            self.table.host_error = 9
        return 0

    def _host_trap(self, code: int, packed: int, off: int, width: int, function: int) -> None:
        """An invalid typed access: raise its typed error here, in the runtime's error path.

        wasmtime carries an exception raised in a host function out to
        whoever called the wasm export, so the cause reaches every caller and
        nothing is left behind for a later, unrelated trap to pick up.
        """
        raise typed_access_error(self, code, Handle.unpack(packed), off & 0xFFFF_FFFF, width, function)

    def _host_dealloc(self, packed: int) -> int:
        try:
            self.dealloc(Handle.unpack(packed))
            return 0
        except TvmError as exc:
            return exc.code
        except Exception:  # noqa: BLE001
            return 9

    # ------------------------------------------------------------------ storage hooks
    def _adopt_allocator(self, region_id: int, allocator: Allocator) -> Allocator:
        if type(allocator) is Bump:
            return TableBump(self.table, region_id)
        if type(allocator) is Slab:
            return TableSlab(self.table, region_id, allocator.class_size)
        if type(allocator) is Freelist:
            return allocator
        raise TypeError(f"TvmHost supports Bump, Freelist and Slab allocators, not {type(allocator).__name__}")

    def _new_counters(self, region_id: int) -> Counters:
        self.table.clear(region_id)
        return TableCounters(self.table, region_id)

    def _allocate_storage(self, region: Region) -> None:
        self._make_room(region.capacity, keep=region)
        if self._creating_imported:
            pages = max(1, -(-region.capacity // L.PAGE))
            memory = wasmtime.Memory(self.store, wasmtime.MemoryType(wasmtime.Limits(pages, pages)))
            self._imported[region.id] = memory
            self.linker.define(self.store, "tvm", f"r{region.id}", memory)
            region.storage = memory
        else:
            region.storage = self.pools.allocate(region.capacity)

    def _release_storage(self, region: Region) -> None:
        if isinstance(region.storage, Span):
            self.pools.release(region.storage)
        elif isinstance(region.storage, wasmtime.Memory):
            self._span_view(region)[:] = 0  # guests may still hold the memory: leave nothing behind
            self._imported.pop(region.id, None)
        region.storage = None

    def _region_array(self, region: Region) -> np.ndarray:
        return self._span_view(region)

    def _make_all_resident(self, regions: list[Region]) -> None:
        """The model's, with every region of the rollback kept resident while the others fault in."""
        self._busy = tuple(regions)
        try:
            super()._make_all_resident(regions)
        finally:
            self._busy = ()

    def _span_view(self, region: Region) -> np.ndarray:
        if isinstance(region.storage, wasmtime.Memory):
            return native.memory_view(region.storage, self.store)[: region.capacity]
        assert isinstance(region.storage, Span)
        return self.pools.bytes_of(region.storage)

    # ------------------------------------------------------------------ imported regions (TVM-MM)
    def imported_region(
        self, kind: RegionKind, capacity: int, *, allocator: Allocator | None = None, pinnable: bool | None = None
    ) -> int:
        """A region that is a whole memory of its own, imported by guests as ``tvm.r{id}``.

        Guests reach it with native loads and stores (no dispatch, no handle
        checks). From Python it supports the region API: alloc/dealloc,
        read/write/copy, view, pin/unpin, metrics, destroy (which zeroes the
        memory). It can never leave memory (native loads cannot fault) and its
        bytes never move (guests hold offsets, not handles): its policy is
        unspillable and immovable, so demote, spill, mark_external and compact
        raise ``PolicyViolation`` as the model does; raw-ABI handle access to it returns code 9.
        """
        default = PlacementPolicy.for_kind(kind)
        policy = PlacementPolicy(
            Residency.HOT, default.pinnable if pinnable is None else pinnable, spillable=False, movable=False
        )
        self._creating_imported = True
        try:
            return self.create_region(kind, capacity, allocator=allocator, policy=policy)
        finally:
            self._creating_imported = False

    def imported_memory(self, region_id: int) -> wasmtime.Memory:
        """The memory guests import as ``tvm.r{id}``."""
        try:
            return self._imported[region_id]
        except KeyError:
            raise RegionNotFound("no imported region with this id", region_id=region_id) from None

    def _read_bytes(self, region: Region, offset: int, length: int) -> bytes:
        return self._span_view(region)[offset : offset + length].tobytes()

    def _write_bytes(self, region: Region, offset: int, data: bytes | bytearray | memoryview) -> None:
        chunk = np.frombuffer(data, dtype=np.uint8)
        self._span_view(region)[offset : offset + len(chunk)] = chunk

    def _discard_bytes(self, region: Region, offset: int, length: int) -> None:
        """Zero the range; its whole OS pages go back to the OS (``madvise``), as spill does."""
        if isinstance(region.storage, wasmtime.Memory):
            memory, start = region.storage, offset
        else:
            assert isinstance(region.storage, Span)
            memory, start = self.pools[region.storage.pool].memory, region.storage.base + offset
        try:
            native.release_pages(memory, self.store, start, length)
        except OSError:
            pass  # release_pages zeroed the range anyway: correct, only not returned to the OS

    def _move_bytes(self, src: Region, src_offset: int, dst: Region, dst_offset: int, length: int) -> None:
        source = self._span_view(src)[src_offset : src_offset + length]
        self._span_view(dst)[dst_offset : dst_offset + length] = source  # NumPy handles overlap

    def _transfer(self, src: Region, src_offset: int, dst: Region, dst_offset: int, length: int) -> None:
        """The model's transfer, with both regions kept resident together: faulting one
        in never evicts the other to make room under the budget."""
        self._busy = (src, dst)
        try:
            super()._transfer(src, src_offset, dst, dst_offset, length)
        except AllocationFailed as exc:
            both = f"{src.id}" if src is dst else f"{src.id} and {dst.id}"
            raise AllocationFailed(
                f"copy needs regions {both} resident at once ({src.capacity + (dst.capacity if src is not dst else 0)} "
                f"bytes) and the {self.budget_bytes}-byte budget cannot hold that: {exc.message}",
                region_id=src.id,
                length=length,
            ) from None
        finally:
            self._busy = ()

    def _touch(self, region: Region) -> None:
        super()._touch(region)
        if region.id in self._regions:
            self.table.set64(region.id, L.SLOT_LAST_EPOCH, self.table.next_epoch())

    def _recency(self, region: Region) -> tuple[int, ...]:
        return (self.table.get64(region.id, L.SLOT_LAST_EPOCH), region.last_access)

    def _mirror_gone(self, rid: int, generation: int) -> None:
        """A destroyed (or leased-away) id's slot: a tombstone at the generation its old handles cannot have."""
        table = self.table
        table.clear(rid)  # the fast keys: no_key
        table.set(rid, L.SLOT_STATE, generation | L.FLAG_TOMBSTONE)
        table.set(rid, L.SLOT_WRITE_STATE, generation | L.FLAG_TOMBSTONE)

    def _on_change(self, region: Region) -> None:
        """Mirror the region into its slot: what the data plane checks on every access."""
        table, rid = self.table, region.id
        if rid not in self._regions:
            if isinstance(region.allocator, TableSlab):
                region.allocator.release()
            self._mirror_gone(rid, region.generation)
            return
        state = region.generation | L.FLAG_LIVE
        pool = L.NO_POOL
        if isinstance(region.storage, wasmtime.Memory):
            state |= L.FLAG_RESIDENT  # resident, but in no pool: handle access answers code 9
            table.set(rid, L.SLOT_POOL, L.NO_POOL)
        elif region.residency.is_resident and isinstance(region.storage, Span):
            state |= L.FLAG_RESIDENT
            pool = region.storage.pool
            table.set(rid, L.SLOT_POOL, pool)
            table.set(rid, L.SLOT_BASE, region.storage.base)
        else:
            table.set(rid, L.SLOT_POOL, L.NO_POOL)
            table.set(rid, L.SLOT_BASE, 0)
        table.set(rid, L.SLOT_CAPACITY, region.capacity)
        allocator = region.allocator
        if isinstance(allocator, TableSlab):
            table.set(rid, L.SLOT_ALLOCATOR, L.ALLOC_SLAB)
            table.set(rid, L.SLOT_CLASS_SIZE, allocator.class_size)
            table.set(rid, L.SLOT_SLAB_TABLE, allocator.side_offset)
        elif isinstance(allocator, TableBump):
            table.set(rid, L.SLOT_ALLOCATOR, L.ALLOC_BUMP)
        else:
            table.set(rid, L.SLOT_ALLOCATOR, L.ALLOC_FREELIST)
        table.set(rid, L.SLOT_DIRTY_TABLE, L.dirty_field(region.dirty))  # type: ignore[arg-type]
        write_flags = (L.FLAG_READ_ONLY if region.read_only else 0) | (L.FLAG_TRACK_DIRTY if region.tracks_dirty else 0)
        table.set(rid, L.SLOT_WRITE_STATE, state | write_flags)
        table.set(rid, L.SLOT_STATE, state)
        for k in range(L.FAST_KEY_POOLS):
            table.set64(rid, L.fast_key_field(k), L.fast_key(rid, state, pool, k))

    # ------------------------------------------------------------------ dirty-page map (a side table in meta)
    def _start_tracking(self, region: Region) -> None:
        """A zeroed dirty-page map in the meta memory (one byte per page, ``layout.dirty_table_size``);
        the slot's ``SLOT_DIRTY_TABLE`` points at it (``layout.dirty_field``)."""
        size = L.dirty_table_size(region.capacity)
        offset = self.table.side.allocate(size)
        if offset is None:
            raise AllocationFailed("no room left in the directory for a dirty-page map", region_id=region.id,
                                   length=size)
        self.table.u8[offset : offset + size] = 0
        region.dirty = offset

    def _stop_tracking(self, region: Region) -> None:
        offset, size = region.dirty, L.dirty_table_size(region.capacity)
        region.dirty = None
        if region.id in self._regions:  # the data plane stops marking before the map goes
            self._on_change(region)
        self.table.u8[offset : offset + size] = 0  # type: ignore[misc]
        self.table.side.free(offset, size)  # type: ignore[arg-type]

    def _dirty_map(self, region: Region) -> np.ndarray:
        """The region's dirty-page map: byte i non-zero when page i is dirty (a view of the meta memory)."""
        offset = region.dirty
        return self.table.u8[offset : offset + L.dirty_pages_of(region.capacity)]  # type: ignore[misc]

    def _mark_dirty(self, region: Region, offset: int, length: int) -> None:
        if region.dirty is None or not length:
            return
        self._dirty_map(region)[offset >> L.DIRTY_PAGE_SHIFT : ((offset + length - 1) >> L.DIRTY_PAGE_SHIFT) + 1] = 1

    def _dirty_page_list(self, region: Region) -> list[int]:
        return np.flatnonzero(self._dirty_map(region)).tolist()

    def _clear_dirty_pages(self, region: Region) -> None:
        self._dirty_map(region)[:] = 0

    # ------------------------------------------------------------------ budget
    def create_region(self, kind, capacity, *, allocator=None, policy=None, **options):  # type: ignore[no-untyped-def]
        """The model's ``create_region``; a region the budget can never make room for
        fails before it takes an id or any table space."""
        if isinstance(capacity, int) and not isinstance(capacity, bool) and capacity > 0:
            self._spill_candidates(capacity, region_id=None)
        return super().create_region(kind, capacity, allocator=allocator, policy=policy, **options)

    def _spill_candidates(self, needed: int, *, region_id: int | None, keep: Region | None = None) -> list[Region]:
        """Regions to spill, in order (Warm, then Hot, least recently used first), to fit
        ``needed`` more bytes; raises ``AllocationFailed`` when even all of them would not do."""
        budget = self.budget_bytes
        if budget is None:
            return []
        if needed > budget:
            raise AllocationFailed(
                f"region of {needed} bytes can never fit the {budget}-byte budget",
                region_id=region_id,
                capacity=needed,
            )
        resident = self.resident_bytes()
        if resident + needed <= budget:
            return []
        if self.backing is None:  # nothing can spill: the budget is simply full
            raise AllocationFailed(
                f"budget of {budget} bytes: {resident} bytes resident and no backing store to spill to, "
                f"no room for {needed} more",
                region_id=region_id,
                capacity=needed,
            )
        candidates = [
            region
            for tier in (Residency.WARM, Residency.HOT)
            for region in sorted(
                (
                    r for r in self._regions.values()
                    if r.residency is tier and not r.pinned and r.policy.spillable and r is not keep
                    and r not in self._busy
                ),
                key=lambda r: (*self._recency(r), r.id),
            )
        ]
        stuck = resident - sum(r.capacity for r in candidates)
        if stuck + needed > budget:
            raise AllocationFailed(
                f"budget of {budget} bytes: {stuck} resident bytes are pinned or unspillable, "
                f"no room for {needed} more",
                region_id=region_id,
                capacity=needed,
            )
        return candidates

    def _make_room(self, needed: int, *, keep: Region) -> None:
        """Spill Warm, then Hot, least recently used first, until ``needed`` more bytes fit.

        A request that cannot succeed spills nothing.
        """
        resident = self.resident_bytes()
        for region in self._spill_candidates(needed, region_id=keep.id, keep=keep):
            if resident + needed <= self.budget_bytes:  # type: ignore[operator]
                return
            self.spill_region(region.id)
            resident -= region.capacity

    # ------------------------------------------------------------------ views
    def view(self, region_id: int, *, writable: bool = True) -> np.ndarray:
        """Zero-copy uint8 view of a resident region's ``capacity`` bytes (valid until the region moves).

        A writable view of a dirty-tracked region marks every page of the region dirty when it is
        taken (conservative: bytes written through it are not seen one by one, so take a new view
        after each ``clear_dirty`` or checkpoint). ``writable=False`` gives a read-only array that
        marks nothing; a read-only region's view is always read-only. ``NotResident`` while Cold or
        External; ``TypeError`` if ``writable`` is not a bool.
        """
        writable = checked_flag(writable, "writable")
        region = self._region(region_id)
        if not region.residency.is_resident:
            raise NotResident(f"region is {region.residency.name}", region_id=region_id)
        view = self._span_view(region)
        if region.read_only or not writable:
            view = view.view()
            view.flags.writeable = False  # a read-only region's bytes cannot change through a view either
        else:
            self._mark_dirty(region, 0, region.capacity)
        return view


def refuse_prelinked(module: wasmtime.Module) -> None:
    """``LinkRefused`` for ``tvm-wasm link --target host`` output: it imports the pools and the directory.

    Its inlined code cannot be verified after the fact, so the host runs only
    the modules it links itself (``inline=True``), never a linked file.
    """
    if any(imp.module == HOST for imp in module.imports):
        raise LinkRefused(
            f"the module imports {HOST}.* (the pools and the directory): it is `tvm-wasm link --target host` "
            "output, which TvmHost never runs; pass the unlinked module with inline=True "
            "(tvm-wasm run --inline USER.wasm), or link with --target guest for a module that runs anywhere"
        )


def refuse_memory64(module: wasmtime.Module, memory: str) -> None:
    """``LinkRefused`` for a guest whose memory (imported, or exported as ``memory``) is 64-bit: the runtime's
    ``read``/``write`` address a 32-bit guest memory (as the linker says of such a module)."""
    memories = [(f"import {i.module}.{i.name}", i.type) for i in module.imports if isinstance(i.type, wasmtime.MemoryType)]
    memories += [(f"export {e.name!r}", e.type) for e in module.exports
                 if isinstance(e.type, wasmtime.MemoryType) and e.name == memory]
    for where, memory_type in memories:
        if memory_type.is_64:
            raise LinkRefused(f"the user memory must be an unshared 32-bit memory ({where} is 64-bit)")


def wasm_type(name: str) -> wasmtime.ValType:
    return {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64, "f32": wasmtime.ValType.f32,
            "f64": wasmtime.ValType.f64}[name]()


def typed_access_error(host: TvmHost, code: int, handle: Handle, off: int, width: int, function: int) -> TvmError:
    """The typed error of a failed typed access, worded as on every layer (``abi.trap_cause.access_error``)."""
    region = host._regions.get(handle.region_id)
    accessed = handle.offset + off
    if region is None:
        destroyed = host.table.get(handle.region_id, L.SLOT_STATE) & L.FLAG_TOMBSTONE
        return access_error(code, function, handle, accessed, width, state="destroyed" if destroyed else "absent")
    return access_error(code, function, handle, accessed, width, state="live", generation=region.generation,
                        capacity=region.capacity)


class ClosedTvmHost(Closed, TvmHost):
    """What a ``TvmHost`` becomes once closed: every use raises ``HostClosed`` naming it (``host/closed.py``)."""

    EMBEDDER = "TvmHost"
