"""An instantiated component guest: its own store, its exports by name, typed failures.

Each guest lives in a ``wasmtime.Store`` of its own. Its ``tvm:memory``
imports are host functions that call ``TvmHost`` methods, which work on the
host's store, so the guest needs nothing from that store to reach regions.
What a store of its own buys: wasmtime never enters a component instance again
once it trapped, and that rule reaches every instance in the store, so a guest
that traps (an uncaught exception, ``unreachable``, stack exhaustion) disables
itself only. Regions, raw-ABI guests and every other component carry on.

Export names follow wasmtime: a world-level function by its name (``run``),
an interface's function as ``<interface>#<function>`` with the interface's
full name (``example:guest/bench@0.1.0#read-loop``). Shorter spellings are
accepted when exactly one export answers to them: the interface without
package or version (``bench#read-loop``), or the function alone
(``read-loop``); snake_case is read as kebab-case. Anything else raises
``ExportNotFound`` listing every export.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import wasmtime
from wasmtime.component import Component, Func, Instance, Variant
from wasmtime.component import _types as wit_types
from wasmtime.component._types import ComponentInstanceType, FuncType, ResultType

from ..core.errors import HostClosed
from .component_errors import ExportNotFound, GuestError, GuestTrapped, to_tvm_error
from .interrupt import EpochSwitch
from .component_values import from_wit, to_wit
from .component_wasi import StderrTail

if TYPE_CHECKING:
    from .tvm_host import TvmHost

TVM_ERROR_CASES = frozenset({
    "region-not-found", "stale-handle", "out-of-bounds", "not-resident", "allocation-failed", "pinned",
    "policy-violation", "unsupported-allocator", "backing-store", "transfer-too-large", "invalid-argument", "internal",
    "read-only",
})


@dataclass(frozen=True)
class ExportName:
    """One exported function: ``interface`` is ``None`` for a world-level function."""

    interface: str | None
    function: str

    @property
    def full(self) -> str:
        return self.function if self.interface is None else f"{self.interface}#{self.function}"


def _short_interface(name: str) -> str:
    """``example:guest/bench@0.1.0`` -> ``bench``."""
    return name.split("/", 1)[-1].split("@", 1)[0]


def _unversioned(name: str) -> str:
    return name.split("@", 1)[0]


def export_names(component: Component, engine: wasmtime.Engine) -> list[ExportName]:
    """Every function the component exports, world-level and inside exported interfaces."""
    names = []
    for name, extern in component.type.exports(engine).items():
        ty = extern.ty
        if isinstance(ty, FuncType):
            names.append(ExportName(None, name))
        elif isinstance(ty, ComponentInstanceType):
            for inner, inner_extern in ty.exports(engine).items():
                if isinstance(inner_extern.ty, FuncType):
                    names.append(ExportName(name, inner))
    return names


def resolve_export(exports: list[ExportName], name: str, interface: str | None = None) -> ExportName:
    """The export ``name`` (optionally inside ``interface``) stands for; see the module docstring."""
    if interface is None and "#" in name:
        interface, name = name.rsplit("#", 1)
    function = name.replace("_", "-")
    candidates = [e for e in exports if e.function in (name, function)]
    if interface is None:
        world_level = [e for e in candidates if e.interface is None]
        if world_level:
            return world_level[0]
    else:
        wanted = interface.replace("_", "-")
        for match in (
            lambda e: e.interface == interface,
            lambda e: _unversioned(e.interface) == _unversioned(wanted),
            lambda e: _short_interface(e.interface) == wanted,
        ):
            narrowed = [e for e in candidates if e.interface is not None and match(e)]
            if narrowed:
                candidates = narrowed
                break
        else:
            candidates = []
    if len(candidates) == 1:
        return candidates[0]
    asked = name if interface is None else f"{interface}#{name}"
    listing = ", ".join(e.full for e in exports) or "(none)"
    if candidates:
        matches = ", ".join(e.full for e in candidates)
        raise ExportNotFound(f"export {asked!r} is ambiguous: it matches {matches}; give the full name")
    raise ExportNotFound(f"the component exports no function {asked!r}; its exports: {listing}")


def split_result(result_type: Any, value: Any) -> tuple[bool, Any]:
    """``(is_ok, payload)`` of a ``result`` value as wasmtime-py lifted it.

    wasmtime-py returns ``Variant("ok" | "err", payload)`` only when the two
    cases' Python classes overlap; otherwise it returns the bare payload, and
    the case is the one whose classes the payload belongs to.
    """
    if result_type._tagged():
        return value.tag == "ok", value.payload
    ok_type, err_type = result_type.ok, result_type.err
    if err_type is None:
        return value is not None, value
    if ok_type is None:
        return value is None, value
    classes: set[type] = set()
    err_type.add_classes(classes)
    return not isinstance(value, tuple(classes)), value


def trap_cause(text: str) -> str:
    """The cause in a wasmtime trap message (the lines after ``Caused by:``, else the last line)."""
    _, marker, cause = text.partition("Caused by:")
    lines = [line.strip() for line in (cause if marker else text).splitlines() if line.strip()]
    if not marker:
        lines = lines[-1:]
    return "; ".join(lines)


_INT_RANGES: dict[type, tuple[int, int]] = {
    wit_types.U8: (0, 0xFF), wit_types.U16: (0, 0xFFFF), wit_types.U32: (0, 0xFFFF_FFFF),
    wit_types.U64: (0, 0xFFFF_FFFF_FFFF_FFFF),
    wit_types.S8: (-0x80, 0x7F), wit_types.S16: (-0x8000, 0x7FFF), wit_types.S32: (-0x8000_0000, 0x7FFF_FFFF),
    wit_types.S64: (-0x8000_0000_0000_0000, 0x7FFF_FFFF_FFFF_FFFF),
}


def check_ranges(ty: Any, value: Any, where: str) -> None:
    """Raise ``ValueError`` for an integer outside its WIT type's range, anywhere inside ``value``.

    wasmtime-py stores integers through ctypes, which wraps silently (``u16``
    65537 would arrive as 1): a wrong region, with no error.
    """
    bounds = _INT_RANGES.get(type(ty))
    if bounds is not None:
        if isinstance(value, int) and not bounds[0] <= value <= bounds[1]:
            raise ValueError(f"{where}: {value} does not fit {type(ty).__name__.lower()} ({bounds[0]}..{bounds[1]})")
        return
    if isinstance(ty, wit_types.RecordType):
        for name, field_ty in ty.fields:
            if hasattr(value, name):
                check_ranges(field_ty, getattr(value, name), f"{where}.{name}")
    elif isinstance(ty, wit_types.ListType):
        if isinstance(value, (list, tuple)):
            element = ty.element
            for i, item in enumerate(value):
                check_ranges(element, item, f"{where}[{i}]")
    elif isinstance(ty, wit_types.TupleType):
        if isinstance(value, tuple):
            for i, (item_ty, item) in enumerate(zip(ty.elements, value)):
                check_ranges(item_ty, item, f"{where}[{i}]")
    elif isinstance(ty, wit_types.OptionType):
        if value is not None:
            check_ranges(ty.payload, value, where)


class GuestFunc:
    """An exported function, callable as wasmtime's: ``func(store, *args)``.

    Differences from a bare ``wasmtime.component.Func``: arguments may be the
    project's own values (``Handle``, ``RegionInfo``, ``RegionMetrics``, also
    inside lists and records), a trap raises ``GuestTrapped``, and with
    ``raise_errors=True`` (see :meth:`call`) a ``result`` comes back as its ok
    value, in the project's types, or raises its error.
    """

    def __init__(self, guest: ComponentGuest, name: ExportName, func: Func) -> None:
        self.guest = guest
        self.name = name
        self.func = func
        self._result_type: Any = None
        self._params: list[tuple[str, Any]] | None = None

    def __call__(self, store: wasmtime.Store, *args: Any) -> Any:
        return self.guest._invoke(self, store, args, raise_errors=False)

    def call(self, *args: Any, raise_errors: bool = False) -> Any:
        """Call in the guest's store.

        ``raise_errors=True``: an ``err(tvm-error)`` raises the matching
        ``TvmError``, any other ``err`` raises ``GuestError``; ``ok`` returns its
        payload, with ``handle``, ``region-info`` and ``region-metrics`` records
        made ``Handle``, ``RegionInfo`` and ``RegionMetrics`` (``from_wit``).
        Without it the value comes back as wasmtime-py lifted it.
        """
        return self.guest._invoke(self, self.guest.store, args, raise_errors=raise_errors)

    def type(self, store: wasmtime.Store | None = None) -> FuncType:
        return self.func.type(store or self.guest.store)

    def params(self) -> list[tuple[str, Any]]:
        if self._params is None:
            self._params = list(self.type().params)
        return self._params

    def result_type(self) -> Any:
        if self._result_type is None:
            self._result_type = self.type().result or False
        return self._result_type

    def __repr__(self) -> str:
        return f"<GuestFunc {self.name.full}>"


class ComponentGuest:
    """One instantiated component in a store of its own (``store``), wasmtime-style.

    ``get_func(store, name)`` and ``call(name, *args)`` find exports by the
    names described in the module docstring; ``func(name)`` gives the bare
    ``wasmtime.component.Func`` (call it with ``guest.store``) for the lowest
    overhead. ``exports()`` lists every function's full name.
    """

    def __init__(
        self,
        host: TvmHost,
        store: wasmtime.Store,
        instance: Instance,
        component: Component,
        *,
        stderr: StderrTail | None = None,
    ) -> None:
        self.host = host
        self.store = store
        self.instance = instance
        self.component = component
        self.stderr = stderr
        self.trapped: GuestTrapped | None = None
        # An interruptible host's guests too: the deadline kept ahead before each call (see ``_invoke``).
        self._epoch = EpochSwitch(host.engine, store, enabled=host.interruptible, owner="TvmHost")
        self._exports = export_names(component, host.engine)
        self._funcs: dict[ExportName, GuestFunc] = {}

    def exports(self) -> list[str]:
        """Full names of every exported function."""
        return [e.full for e in self._exports]

    def __iter__(self) -> Iterator[str]:
        return iter(self.exports())

    def get_func(self, store: wasmtime.Store, name: str) -> GuestFunc:
        """The exported function ``name`` (full, ``iface#func`` or unambiguous short name).

        Unlike wasmtime's ``Instance.get_func``, a name that matches nothing (or
        several exports) raises ``ExportNotFound`` listing the exports, rather
        than returning ``None``. ``store`` must be this guest's ``store``.
        """
        if store is not self.store:
            raise ValueError("this guest lives in its own store: pass guest.store")
        return self._lookup(resolve_export(self._exports, name))

    def guest_func(self, name: str, interface: str | None = None) -> GuestFunc:
        return self._lookup(resolve_export(self._exports, name, interface))

    def func(self, name: str, interface: str | None = None) -> Func:
        """The bare wasmtime ``Func`` (no conversions, no trap mapping): call it as ``f(guest.store, ...)``."""
        return self.guest_func(name, interface).func

    def call(self, name: str, *args: Any, interface: str | None = None, raise_errors: bool = False) -> Any:
        """Call an export in the guest's store (see ``GuestFunc.call`` for ``raise_errors``)."""
        return self.guest_func(name, interface).call(*args, raise_errors=raise_errors)

    def _lookup(self, name: ExportName) -> GuestFunc:
        if self.host.closed:  # its store was closed with the host
            raise HostClosed(f"this component guest's host is closed (used: {name.full})")
        found = self._funcs.get(name)
        if found is None:
            parent = None
            if name.interface is not None:
                parent = self.instance.get_export_index(self.store, name.interface)
            index = self.instance.get_export_index(self.store, name.function, parent)
            func = self.instance.get_func(self.store, index) if index is not None else None
            if func is None:  # listed by the component's type, so only a wasmtime change gets here
                raise ExportNotFound(f"export {name.full!r} is listed but could not be looked up")
            found = self._funcs[name] = GuestFunc(self, name, func)
        return found

    def _invoke(self, target: GuestFunc, store: wasmtime.Store, args: tuple[Any, ...], *, raise_errors: bool) -> Any:
        if store is not self.store:
            raise ValueError("this guest lives in its own store: pass guest.store")
        if self.trapped is not None:
            raise GuestTrapped(
                f"{target.name.full}: this guest trapped earlier and cannot be entered again "
                f"(first trap: {self.trapped.trap}); instantiate it anew",
                trap=self.trapped.trap,
                stderr=self.trapped.stderr,
            )
        converted = [to_wit(arg) for arg in args]
        params = target.params()
        if len(converted) == len(params):  # a wrong count is wasmtime-py's TypeError, below
            for (name, ty), arg in zip(params, converted):
                check_ranges(ty, arg, f"{target.name.full}: argument {name!r}")
        entries = self.host.python_entries
        self._epoch.arm()
        try:
            value = target.func(store, *converted)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            self.trapped = self._trap(target, exc)
            raise self.trapped from exc
        except Exception as exc:
            if self.host.python_entries != entries:
                # Raised inside wasm (only a host function can): wasmtime has closed the instance.
                self.trapped = self._trap(target, exc)
                raise self.trapped from exc
            if isinstance(exc, AttributeError):  # a record argument missing a field: read by name
                raise TypeError(f"{target.name.full}: an argument does not match the parameter types: {exc}") from exc
            raise  # wasmtime-py's own TypeError / ValueError for a malformed argument
        if not raise_errors:
            return value
        result_type = target.result_type()
        if not isinstance(result_type, ResultType):
            return from_wit(value)
        is_ok, payload = split_result(result_type, value)
        if is_ok:
            return from_wit(payload)
        if isinstance(payload, Variant) and payload.tag in TVM_ERROR_CASES:
            raise to_tvm_error(payload)
        raise GuestError(f"{target.name.full} returned err: {payload!r}", value=payload)

    def _trap(self, target: GuestFunc, exc: Exception) -> GuestTrapped:
        trap = str(exc).strip() if isinstance(exc, wasmtime.WasmtimeError) else f"{type(exc).__name__}: {exc}"
        stderr = self.stderr.text().strip() if self.stderr is not None else ""
        message = f"{target.name.full} trapped: {trap_cause(trap) or type(exc).__name__}"
        if stderr:
            message += f"; the guest's stderr ended with: {stderr[-1000:]}"
        return GuestTrapped(message, trap=trap, stderr=stderr)
