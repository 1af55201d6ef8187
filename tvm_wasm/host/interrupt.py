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
