"""The component-model path: ``tvm:memory`` WIT interfaces served by a ``TvmHost``.

Every WIT function is a thin call into the same ``TvmHost`` method the Python
API uses, so semantics, metrics and errors are the model's, and a region is
one region whichever path touches it: raw-ABI guests and components share
the host's directory. Failures come back as the ``tvm-error``
variant; a host function never raises (wasmtime would turn that into a trap).

The WIT ships in the package (``tvm_wasm.wit_dir()``, package
``tvm:memory@0.1.0``). Each component guest gets a store of its own (see
``component_guest``); compiled components are cached (``component_cache``);
WASI preview 2 is added on request (``component_wasi``).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import wasmtime
from wasmtime.component import Linker

from ..core.checkpoints import Checkpoint
from ..core.errors import RegionNotFound
from ..core.handle import Handle
from ..wit import PACKAGE, VERSION, wit_dir
from . import component_lists
from .component_cache import ComponentSource, load_component
from .component_calls import Signature, add_fast_func
from .component_errors import (
    ComponentLinkError,
    GuestTrapped,
    TransferTooLarge,
    WasiNotConfigured,
    to_wit_error,
)
from .component_guest import ComponentGuest, trap_cause
from .interrupt import EpochSwitch
from .component_wasi import WasiSpec, wasi_config, wasi_imports
from .component_values import (
    field,
    from_eviction,
    from_handle,
    from_metrics,
    from_region_info,
    from_remap,
    to_allocator,
    to_eviction_order,
    to_handle,
    to_kind,
)

if TYPE_CHECKING:
    from .tvm_host import TvmHost

INTERFACES = ("types", "manager", "bytes", "diagnostics")
# Each byte of a list crosses as a tagged value (32 bytes in wasmtime-py's C API, more
# inside wasmtime), and wasmtime traps a host call that copies more than its hostcall
# fuel allows (128 MiB by default, not configurable from Python): measured, a list
# of about 2.67 MiB in either direction. A cap below that turns an oversized
# transfer into a typed ``transfer-too-large`` instead of a trap, which would
# end the guest (a trapped component instance is never entered again).
DEFAULT_MAX_TRANSFER = 2 << 20
WIT_DIR = wit_dir()

HostFunc = Callable[..., Any]
# Linkers known to have WASI preview 2 in them (added here, or by component_linker(wasi=True)).
_WITH_WASI: weakref.WeakSet[Linker] = weakref.WeakSet()


def interface_name(name: str) -> str:
    """``"manager"`` -> ``"tvm:memory/manager@0.1.0"``; full names pass through."""
    return name if ":" in name else f"{PACKAGE}/{name}@{VERSION}"


class TvmInterfaces:
    """The host side of ``manager``, ``bytes`` and ``diagnostics`` for one ``TvmHost``."""

    def __init__(self, host: TvmHost, *, max_transfer: int = DEFAULT_MAX_TRANSFER) -> None:
        if not 0 < max_transfer <= 0xFFFF_FFFF:
            raise ValueError(f"max_transfer must be in 1..2**32-1, got {max_transfer}")
        self.host = host
        self.max_transfer = max_transfer

    # ------------------------------------------------------------------ plumbing
    def _entry(self, fn: HostFunc) -> HostFunc:
        """An infallible host function: counts the entry into Python."""
        host = self.host

        def entry(_store: object, *args: Any) -> Any:
            host.python_entries += 1
            return fn(*args)

        return entry

    def _fallible(self, fn: HostFunc) -> HostFunc:
        """A ``result<T, tvm-error>`` host function: any failure becomes an ``err``."""
        host = self.host

        def entry(_store: object, *args: Any) -> Any:
            host.python_entries += 1
            try:
                return fn(*args)
            except Exception as exc:  # noqa: BLE001 - never unwind into the guest as a trap
                return to_wit_error(exc, region_id=_region_hint(args))

        return entry

    def _limit(self, length: int) -> None:
        if length > self.max_transfer:
            raise TransferTooLarge(length, self.max_transfer)

    def _at_current_generation(self, region_id: int, offset: int) -> Handle:
        """A handle for a raw region offset (read-into / write-from check only the other side)."""
        return Handle(region_id, self.host.region_info(region_id).generation, offset)

    # ------------------------------------------------------------------ manager
    def create_region(self, kind: str, capacity: int) -> int:
        return self.host.create_region(to_kind(kind), capacity)

    def create_region_with(self, kind: str, capacity: int, allocator: object) -> int:
        return self.host.create_region(to_kind(kind), capacity, allocator=to_allocator(allocator))

    def destroy_region(self, region_id: int) -> None:
        self.host.destroy_region(region_id)

    def alloc(self, region_id: int, size: int) -> object:
        return from_handle(self.host.alloc(region_id, size))

    def dealloc(self, h: object) -> None:
        self.host.dealloc(to_handle(h))

    def describe_region(self, region_id: int) -> object:
        return from_region_info(self.host.region_info(region_id))

    def promote_region(self, region_id: int) -> None:
        self.host.promote_region(region_id)

    def demote_region(self, region_id: int) -> None:
        self.host.demote_region(region_id)  # Hot -> Warm needs no backing store

    def spill_region(self, region_id: int) -> None:
        self.host.spill_region(region_id)  # a failed spill leaves the region resident

    def load_region(self, region_id: int) -> None:
        self.host.load_region(region_id)

    def pin(self, region_id: int) -> None:
        self.host.pin(region_id)

    def unpin(self, region_id: int) -> None:
        self.host.unpin(region_id)

    def compact_region(self, region_id: int) -> object:
        return from_remap(self.host.compact_region(region_id))

    def mark_external(self, region_id: int) -> None:
        self.host.mark_external(region_id)

    def load_external(self, region_id: int, data: bytes) -> None:
        self._limit(len(data))
        self.host.load_external(region_id, lambda _id, _generation: data)

    def demote_until(self, target: int, order: str) -> object:
        return from_eviction(self.host.demote_until(target, order=to_eviction_order(order)))  # type: ignore[arg-type]

    def protect(self, region_id: int, read_only: bool) -> None:
        self.host.protect(region_id, read_only)

    def is_read_only(self, region_id: int) -> bool:
        return self.host.is_read_only(region_id)

    def track_dirty(self, region_id: int, enabled: bool) -> None:
        self.host.track_dirty(region_id, enabled)

    def dirty_pages(self, region_id: int) -> list[int]:
        return self.host.dirty_pages(region_id)

    def clear_dirty(self, region_id: int) -> None:
        self.host.clear_dirty(region_id)

    def checkpoint(self, region_ids: list[int]) -> int:
        return self.host.checkpoint(list(region_ids)).id

    def rollback(self, checkpoint_id: int) -> list[int]:
        return sorted(self.host.rollback(self._checkpoint(checkpoint_id)))  # CheckpointError: invalid-argument

    def _checkpoint(self, checkpoint_id: int) -> Checkpoint:
        return self.host.checkpoint_by_id(checkpoint_id)  # CheckpointError saying why: invalid-argument

    def release_checkpoint(self, checkpoint_id: int) -> None:
        self.host.release_checkpoint(self._checkpoint(checkpoint_id))

    # ------------------------------------------------------------------ bytes
    def read(self, h: object, length: int) -> bytes:
        self._limit(length)
        return self.host.read(to_handle(h), length)

    def write(self, h: object, data: bytes) -> None:
        self._limit(len(data))
        self.host.write(to_handle(h), data)

    def copy(self, src: object, dst: object, length: int) -> None:
        self.host.copy(to_handle(src), to_handle(dst), length)

    def read_into(self, src: object, dst_region: int, dst_offset: int, length: int) -> None:
        source = to_handle(src)
        self.host.copy(source, self._at_current_generation(dst_region, dst_offset), length)

    def write_from(self, src_region: int, src_offset: int, dst: object, length: int) -> None:
        target = to_handle(dst)
        self.host.copy(self._at_current_generation(src_region, src_offset), target, length)

    def copy_region(self, src_region: int, src_offset: int, dst_region: int, dst_offset: int, length: int) -> None:
        self.host.copy_region(src_region, src_offset, dst_region, dst_offset, length)

    def discard(self, h: object, length: int) -> None:
        self.host.discard(to_handle(h), length)

    # ------------------------------------------------------------------ diagnostics
    def list_regions(self) -> list[object]:
        return [from_region_info(info) for info in self.host.list_regions()]

    def _counter(self, name: str) -> HostFunc:
        def count(region_id: int) -> int:
            try:
                return int(getattr(self.host.metrics(region_id), name))
            except RegionNotFound:
                return 0  # the reference's contract: unknown regions count nothing

        return count

    def metrics_snapshot(self, region_id: int) -> object:
        return from_metrics(self.host.metrics(region_id))

    def resident_bytes(self) -> int:
        return self.host.resident_bytes()

    def budget_bytes(self) -> int | None:
        return self.host.budget_bytes

    def get_max_transfer(self) -> int:
        return self.max_transfer

    # ------------------------------------------------------------------ the WIT surface
    @staticmethod
    def signatures() -> dict[str, dict[str, Signature]]:
        """How each function's values move (see ``component_calls``); must match ``wit/tvm.wit``."""
        unit, sig = "result unit", Signature.of
        return {
            "manager": {
                "create-region": sig("enum u32", "result u16"),
                "create-region-with": sig("any", "result u16"),
                "destroy-region": sig("u16", unit),
                "alloc": sig("u16 u32", "result handle"),
                "dealloc": sig("handle", unit),
                "describe-region": sig("u16", "result any"),
                **{name: sig("u16", unit) for name in (
                    "promote-region", "demote-region", "spill-region", "load-region", "pin", "unpin", "mark-external",
                )},
                "compact-region": sig("u16", "result any"),
                "load-external": sig("u16 bytes", unit),
                "demote-until": sig("u64 enum", "result any"),
                "protect": sig("any", unit),
                "is-read-only": sig("u16", "result any"),
                "track-dirty": sig("any", unit),
                "dirty-pages": sig("u16", "result any"),
                "clear-dirty": sig("u16", unit),
                "checkpoint": sig("any", "result any"),
                "rollback": sig("any", "result any"),
                "release-checkpoint": sig("any", unit),
            },
            "bytes": {
                "read": sig("handle u32", "result bytes"),
                "write": sig("handle bytes", unit),
                "copy": sig("handle handle u32", unit),
                "read-into": sig("handle u16 u32 u32", unit),
                "write-from": sig("u16 u32 handle u32", unit),
                "copy-region": sig("u16 u32 u16 u32 u32", unit),
                "discard": sig("handle u32", unit),
            },
            "diagnostics": {
                "list-regions": sig("", "any"),
                **{name: sig("u16", "u64") for name in (
                    "fault-count", "allocation-count", "bytes-read-count", "bytes-written-count",
                )},
                "metrics-snapshot": sig("u16", "result any"),
                "resident-bytes": sig("", "u64"),
                "budget-bytes": sig("", "any"),
                "max-transfer": sig("", "u32"),
            },
        }

    def functions(self) -> dict[str, dict[str, HostFunc]]:
        """Interface -> WIT function name -> host function, ready for ``LinkerInstance.add_func``."""
        fallible, entry = self._fallible, self._entry
        return {
            "manager": {
                "create-region": fallible(self.create_region),
                "create-region-with": fallible(self.create_region_with),
                "destroy-region": fallible(self.destroy_region),
                "alloc": fallible(self.alloc),
                "dealloc": fallible(self.dealloc),
                "describe-region": fallible(self.describe_region),
                "promote-region": fallible(self.promote_region),
                "demote-region": fallible(self.demote_region),
                "spill-region": fallible(self.spill_region),
                "load-region": fallible(self.load_region),
                "pin": fallible(self.pin),
                "unpin": fallible(self.unpin),
                "compact-region": fallible(self.compact_region),
                "mark-external": fallible(self.mark_external),
                "load-external": fallible(self.load_external),
                "demote-until": fallible(self.demote_until),
                "protect": fallible(self.protect),
                "is-read-only": fallible(self.is_read_only),
                "track-dirty": fallible(self.track_dirty),
                "dirty-pages": fallible(self.dirty_pages),
                "clear-dirty": fallible(self.clear_dirty),
                "checkpoint": fallible(self.checkpoint),
                "rollback": fallible(self.rollback),
                "release-checkpoint": fallible(self.release_checkpoint),
            },
            "bytes": {
                "read": fallible(self.read),
                "write": fallible(self.write),
                "copy": fallible(self.copy),
                "read-into": fallible(self.read_into),
                "write-from": fallible(self.write_from),
                "copy-region": fallible(self.copy_region),
                "discard": fallible(self.discard),
            },
            "diagnostics": {
                "list-regions": entry(self.list_regions),
                "fault-count": entry(self._counter("faults")),
                "allocation-count": entry(self._counter("allocations")),
                "bytes-read-count": entry(self._counter("bytes_read")),
                "bytes-written-count": entry(self._counter("bytes_written")),
                "metrics-snapshot": fallible(self.metrics_snapshot),
                "resident-bytes": entry(self.resident_bytes),
                "budget-bytes": entry(self.budget_bytes),
                "max-transfer": entry(self.get_max_transfer),
            },
        }


def _region_hint(args: tuple[Any, ...]) -> int:
    """The region a failed call was about, for a not-found error without one."""
    if not args:
        return 0
    first = args[0]
    if isinstance(first, int) and not isinstance(first, bool):
        return first if 0 <= first <= 0xFFFF else 0
    try:
        return int(field(first, "region-id"))  # type: ignore[call-overload]
    except (AttributeError, TypeError, ValueError):
        return 0


def component_linker(
    host: TvmHost, *, max_transfer: int = DEFAULT_MAX_TRANSFER, fast_calls: bool = True, wasi: bool = False
) -> Linker:
    """A component ``Linker`` whose ``tvm:memory`` imports are served by ``host``.

    ``fast_calls=False`` uses wasmtime-py's own trampoline for every call (the
    benchmark compares the two). ``wasi=True`` adds WASI preview 2 as well
    (``instantiate_component`` then gives each guest's store its WASI
    context). More imports may be added to the linker before instantiating.
    """
    component_lists.install()
    bindings = TvmInterfaces(host, max_transfer=max_transfer)
    signatures = bindings.signatures()
    linker = Linker(host.engine)
    with linker.root() as root:
        for interface, functions in bindings.functions().items():
            with root.add_instance(interface_name(interface)) as instance:
                for name, fn in functions.items():
                    if fast_calls:
                        add_fast_func(instance, name, fn, signatures[interface][name])
                    else:
                        instance.add_func(name, fn)
    if wasi:
        add_wasi(linker)
    return linker


def add_wasi(linker: Linker) -> None:
    """Add WASI preview 2 to ``linker`` unless it is known to have it."""
    if linker in _WITH_WASI:
        return
    try:
        linker.add_wasip2()
    except wasmtime.WasmtimeError as exc:
        if "defined twice" not in str(exc) and "already defined" not in str(exc):
            raise ComponentLinkError(f"cannot add WASI preview 2 to the linker: {exc}") from exc
    _WITH_WASI.add(linker)


def _host_linker(host: TvmHost, *, wasi: bool) -> Linker:
    """The host's own linker, with or without WASI, built on first use."""
    attribute = "_wit_wasi_linker" if wasi else "_wit_linker"
    linker = getattr(host, attribute, None)
    if linker is None:
        linker = component_linker(host, wasi=wasi)
        setattr(host, attribute, linker)
    return linker


def instantiate_component(
    host: TvmHost,
    component: ComponentSource,
    *,
    wasi: WasiSpec = None,
    linker: Linker | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> ComponentGuest:
    """Instantiate ``component`` (a ``Component``, its bytes, or a path) in a store of its own.

    ``wasi``: ``None`` (no WASI), ``True`` (a default configuration) or a
    ``wasmtime.WasiConfig`` (see ``component_wasi``). ``linker``: one from
    ``component_linker(host)``, perhaps with more imports; WASI is added to it
    when ``wasi`` asks for it. ``cache_dir``: also keep compiled components on
    disk (see ``component_cache``).

    Raises ``WasiNotConfigured`` (the component imports WASI but ``wasi`` is
    ``None``) before anything runs, ``ComponentLinkError`` for an import the
    linker lacks, ``ComponentLoadError`` for bytes that are not a component,
    ``GuestTrapped`` if the component traps while starting.
    """
    compiled = load_component(host.engine, component, cache_dir=cache_dir)
    config, stderr = wasi_config(wasi)
    needs = wasi_imports(compiled, host.engine)
    if needs and config is None:
        shown = ", ".join(needs[:4]) + (f" and {len(needs) - 4} more" if len(needs) > 4 else "")
        raise WasiNotConfigured(
            f"the component imports WASI ({shown}) but no WASI is configured: pass wasi=True "
            "(or a wasmtime.WasiConfig) to instantiate_component"
        )
    if linker is None:
        linker = _host_linker(host, wasi=config is not None)
    elif config is not None:
        add_wasi(linker)
    store = wasmtime.Store(host.engine)
    host._guest_stores.add(store)  # closed with the host
    EpochSwitch(host.engine, store, enabled=host.interruptible, owner="TvmHost")  # its start function may run wasm
    if config is not None:
        try:
            store.set_wasi(config)
        except ValueError as exc:  # wasmtime-py's "already closed"
            raise ValueError(
                "this wasmtime.WasiConfig was already used: a store consumes its WasiConfig and each "
                "component guest has a store of its own, so make one WasiConfig per guest (or pass wasi=True)"
            ) from exc
    try:
        instance = linker.instantiate(store, compiled)
    except wasmtime.Trap as exc:
        raise GuestTrapped(f"the component trapped while starting: {trap_cause(str(exc))}", trap=str(exc)) from exc
    except wasmtime.WasmtimeError as exc:
        raise ComponentLinkError(f"cannot instantiate the component: {' '.join(str(exc).split())}") from exc
    return ComponentGuest(host, store, instance, compiled, stderr=stderr)
