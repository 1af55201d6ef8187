"""Ctrl-C for wasm that never returns to Python: SIGINT raises an engine's epoch.

CPython runs a signal's Python handler only when the main thread gets back to
bytecode, which a wasm loop never does, so a guest spinning in wasm would
ignore Ctrl-C. CPython's C-level handler still writes the signal number to the
wakeup fd (``signal.set_wakeup_fd``); a watcher thread (wasm calls release the
GIL) reads it and calls ``Engine.increment_epoch()``. Code compiled by an engine
with ``Config.epoch_interruption`` checks the epoch at function entries and loop
back-edges, so the running wasm traps (``TrapCode.INTERRUPT``) at once, the call
returns to Python, and Python's own SIGINT handler then raises
``KeyboardInterrupt`` as it does for any Python code (wasmtime's epoch
interruption: docs.wasmtime.dev, "Interrupting Wasm Execution").

:class:`EpochSwitch` is the one opt-in both embedders use (``TvmHost`` and the
self-contained module's ``GuestInstance``, ``interruptible=True``): it keeps
its store's epoch deadline one tick ahead before every call, raises the engine's
epoch for ``interrupt()`` and turns the deadline trap into ``Interrupted``.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from weakref import WeakKeyDictionary

import wasmtime

from ..core.errors import TvmError


class Interrupted(TvmError):
    """The running wasm was stopped from outside (``interrupt()`` from another thread, or Ctrl-C):
    wasmtime's epoch-deadline trap, raised ``from`` it. Not a fault of the guest or of a region, and
    not a model rule (an embedder's, raw-ABI code 9): the host or instance stays usable and its next
    call runs normally."""


def is_interrupt(trap: BaseException) -> bool:
    """Whether ``trap`` is an interrupt, not a program fault: wasmtime's epoch-deadline trap,
    or the ``Interrupted`` error an embedder raised for it."""
    if isinstance(trap, Interrupted):
        return True
    return isinstance(trap, wasmtime.Trap) and trap.trap_code == wasmtime.TrapCode.INTERRUPT


_PROBE = '(module (func (export "probe")))'
"""``(module (func (export "probe")))``: an empty function, whose entry is an epoch check where there are any."""

_epoch_checks: WeakKeyDictionary[wasmtime.Engine, bool] = WeakKeyDictionary()
_epoch_checks_lock = threading.Lock()


def note_epoch_checks(engine: wasmtime.Engine, enabled: bool) -> wasmtime.Engine:
    """Record how an engine this package made was configured (``Config.epoch_interruption``), so
    :func:`epoch_checks` need not ask it; returns ``engine``."""
    with _epoch_checks_lock:
        _epoch_checks[engine] = bool(enabled)
    return engine


def epoch_checks(engine: wasmtime.Engine) -> bool:
    """Whether code ``engine`` compiles checks an epoch deadline (its ``Config.epoch_interruption``).

    wasmtime-py 50 cannot read an engine's configuration back (``Config`` is write-only; ``Engine``
    offers only ``increment_epoch`` and ``is_pulley``), so an engine made elsewhere is asked once:
    an empty function called in a fresh store, whose deadline (0) is already reached, traps with
    ``TrapCode.INTERRUPT`` exactly when the engine compiles epoch checks (fuel is given first, for
    an engine with ``consume_fuel``). The answer is kept per engine.
    """
    with _epoch_checks_lock:
        known = _epoch_checks.get(engine)
    if known is not None:
        return known
    store = wasmtime.Store(engine)
    try:
        try:
            store.set_fuel(1 << 20)
        except wasmtime.WasmtimeError:
            pass  # the engine does not consume fuel
        instance = wasmtime.Instance(store, wasmtime.Module(engine, _PROBE), [])
        probe = instance.exports(store)["probe"]
        try:
            probe(store)  # type: ignore[operator]
            checks = False
        except wasmtime.Trap as trap:
            checks = trap.trap_code == wasmtime.TrapCode.INTERRUPT
    finally:
        store.close()
    return note_epoch_checks(engine, checks) and checks


def interruptible_on(engine: wasmtime.Engine, interruptible: bool | None, owner: str) -> bool:
    """Whether an ``owner`` (``"TvmHost"``, ``"GuestInstance"``) on ``engine`` is interruptible.

    ``None`` (the default) follows the engine: one whose ``Config`` has epoch interruption on makes
    an interruptible owner, which keeps its store's deadline ahead (without one, every call would
    trap at once). ``ValueError`` naming the fix when the argument contradicts the engine.
    """
    checks = epoch_checks(engine)
    if interruptible is None or bool(interruptible) == checks:
        return checks
    if interruptible:
        raise ValueError(
            f"interruptible=True needs an engine that compiles epoch checks (wasmtime.Config.epoch_interruption "
            f"= True); this engine has none, so interrupt() could not stop its wasm: pass no engine (the {owner} "
            "then uses one with the checks) or an engine made with tvm_wasm.host.tvm_host.new_engine(interruptible=True)")
    raise ValueError(
        f"this engine compiles epoch checks (wasmtime.Config.epoch_interruption = True), so its wasm traps at "
        f"once unless the store's deadline is kept ahead, which an interruptible {owner} does: leave "
        "interruptible unset (or True), or use an engine without epoch_interruption")


class EpochSwitch:
    """Whether wasm in one store can be interrupted, and the deadline that makes it so.

    ``owner`` names the embedder (``"TvmHost"``, ``"GuestInstance"``) in its errors. Off, it
    does nothing and costs nothing; on, ``engine`` must compile epoch checks
    (``Config.epoch_interruption``).
    """

    __slots__ = ("engine", "store", "enabled", "owner")

    def __init__(self, engine: wasmtime.Engine, store: wasmtime.Store, *, enabled: bool, owner: str) -> None:
        self.engine, self.store, self.enabled, self.owner = engine, store, bool(enabled), owner
        self.arm()

    def arm(self) -> None:
        """A deadline one epoch ahead (before every call), so an earlier interrupt does not stop the next call."""
        if self.enabled:
            self.store.set_epoch_deadline(1)

    def interrupt(self) -> None:
        """Raise the engine's epoch (any thread): wasm running in every armed store of this engine traps
        at its next function entry or loop back-edge. ``ValueError`` when off: the code has no epoch checks."""
        if not self.enabled:
            raise ValueError(f"this {self.owner} was made without interruptible=True: its wasm cannot be interrupted")
        self.engine.increment_epoch()

    def typed(self, trap: wasmtime.Trap) -> Exception:
        """``Interrupted`` for the epoch-deadline trap (raise it ``from trap``), else ``trap`` itself."""
        if not is_interrupt(trap):
            return trap
        return Interrupted(f"interrupted: the wasm running on this {self.owner} was stopped (interrupt() or "
                           f"Ctrl-C); the {self.owner} stays usable and its next call runs normally")


@contextmanager
def sigint_interrupts(engine: wasmtime.Engine) -> Iterator[None]:
    """While active, SIGINT also interrupts wasm running on ``engine`` (its epoch is raised).

    ``engine`` must have been made with ``Config.epoch_interruption`` (e.g.
    ``new_engine(interruptible=True)``), or the raised epoch changes nothing.
    Only the main thread can own the wakeup fd; elsewhere, or when SIGINT has
    no Python handler (it is ignored, as for a background job), this does
    nothing. The previous wakeup fd is restored on exit.
    """
    if threading.current_thread() is not threading.main_thread() or not callable(signal.getsignal(signal.SIGINT)):
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    stopping = threading.Event()

    def watch() -> None:
        while not stopping.is_set():
            try:
                received = os.read(read_end, 64)
            except OSError:
                return
            if not received:
                return
            if signal.SIGINT in received:
                engine.increment_epoch()

    try:
        previous = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:  # not the main interpreter's main thread after all
        os.close(read_end)
        os.close(write_end)
        yield
        return
    watcher = threading.Thread(target=watch, name="tvm-sigint-epoch", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous)
        stopping.set()
        try:
            os.write(write_end, b"\0")  # wake the watcher so it sees ``stopping``
        except OSError:
            pass
        watcher.join(timeout=1.0)
        os.close(write_end)
        os.close(read_end)
