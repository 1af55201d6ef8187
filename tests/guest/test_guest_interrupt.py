"""``interruptible=True`` means the same on both embedders: a guest looping for ever in wasm is
stopped by ``interrupt()`` from another thread, the call raises ``Interrupted`` (its cause the
engine's epoch-deadline trap), and the embedder works afterwards with its regions intact.

Embedders: ``TvmHost``; ``GuestInstance`` running a user module linked at run time
(``GuestInstance.link``); ``GuestInstance`` running a module with the user code built in
(``build_module(user_wat=...)``). ``tvm-wasm run``'s Ctrl-C is in tests/linker/test_run_interrupt.py.
"""

from __future__ import annotations

import functools
import os
import signal
import threading
import time
from collections.abc import Callable

import pytest
import wasmtime

from tvm_wasm import Handle, Interrupted, RegionKind, TvmError, TvmHost
from tvm_wasm.guest import GuestInstance, build_module
from tvm_wasm.host.interrupt import is_interrupt, sigint_interrupts

# A user module linked at run time (TvmHost.instantiate, GuestInstance.link): it loads through
# its handle for ever; ``seven`` shows the embedder still runs wasm afterwards.
SPIN_USER = """(module
  (import "tvm" "load_u32" (func $load_u32 (param i64 i32) (result i32)))
  (func (export "spin") (param $h i64) (result i32) (local $s i32)
    (loop $l (local.set $s (i32.add (local.get $s) (call $load_u32 (local.get $h) (i32.const 0)))) (br $l))
    (local.get $s))
  (func (export "seven") (result i32) (i32.const 7)))
"""

# The same two functions spliced into the self-contained module (they call its runtime directly).
SPIN_BUILT_IN = """
(func (export "spin") (param $h i64) (result i32) (local $s i32)
  (loop $l (local.set $s (i32.add (local.get $s) (call $load_u32 (local.get $h) (i32.const 0)))) (br $l))
  (local.get $s))
(func (export "seven") (result i32) (i32.const 7))
"""

WORD = b"survives"


@functools.cache
def built_in_module() -> bytes:
    return build_module(pools=1, max_pages=16, user_wat=SPIN_BUILT_IN).wasm


class Embedder:
    """One embedder with a region holding ``WORD`` and a way to call the spinning user code."""

    def __init__(self, kind: str, interruptible: bool = True) -> None:
        self.kind = kind
        if kind == "TvmHost":
            self.target = TvmHost(pools=1, interruptible=interruptible)
            user = self.target.instantiate(SPIN_USER)
            self._call: Callable[..., object] = functools.partial(self.target.call, user)
        elif kind == "GuestInstance.link":
            self.target = GuestInstance(build_module(pools=1, max_pages=16), interruptible=interruptible)
            user = self.target.link(SPIN_USER)
            self._call = functools.partial(self.target.call, user)
        else:
            self.target = GuestInstance(built_in_module(), interruptible=interruptible)
            self._call = self.target.raw
        rid = self.target.create_region(RegionKind.SCRATCH, 4096)
        self.handle: Handle = self.target.alloc(rid, 64)
        self.target.write(self.handle, WORD)

    def call(self, name: str, *args: object) -> object:
        return self._call(name, *args)

    def still_works(self) -> None:
        assert self.call("seven") == 7  # the next call is not interrupted
        assert self.target.read(self.handle, len(WORD)) == WORD
        rid = self.target.create_region(RegionKind.SCRATCH, 4096)
        fresh = self.target.alloc(rid, 8)
        self.target.write(fresh, b"new data")
        assert self.target.read(fresh, 8) == b"new data"


EMBEDDERS = ["TvmHost", "GuestInstance.link", "GuestInstance(user_wat)"]


def spin_until(embedder: Embedder, stop: Callable[[], None], after: float = 0.3) -> tuple[BaseException, float]:
    """Call ``spin`` while another thread runs ``stop`` after ``after`` seconds; (what the call raised, seconds).

    A backstop thread raises the engine's epoch itself after 20 s, so a broken ``stop`` fails the
    test instead of hanging it (the assertion on the seconds catches it).
    """
    timer = threading.Timer(after, stop)
    backstop = threading.Timer(20.0, embedder.target.engine.increment_epoch)
    started = time.monotonic()
    timer.start()
    backstop.start()
    try:
        with pytest.raises(BaseException) as caught:
            embedder.call("spin", embedder.handle.to_i64())
    finally:
        timer.cancel()
        backstop.cancel()
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize("kind", EMBEDDERS)
def test_interrupt_from_another_thread_stops_a_guest_looping_in_wasm(kind):
    embedder = Embedder(kind)
    raised, seconds = spin_until(embedder, embedder.target.interrupt)
    assert type(raised) is Interrupted, repr(raised)
    assert isinstance(raised, TvmError)
    assert isinstance(raised.__cause__, wasmtime.Trap)
    assert raised.__cause__.trap_code is wasmtime.TrapCode.INTERRUPT
    assert is_interrupt(raised)
    assert 0.25 <= seconds < 10  # it looped until the interrupt, and stopped at it
    assert f"the wasm running on this {kind.split('.')[0].split('(')[0]} was stopped" in str(raised)
    embedder.still_works()
    raised_again, _ = spin_until(embedder, embedder.target.interrupt, after=0.1)  # and can be interrupted again
    assert type(raised_again) is Interrupted
    embedder.still_works()


def test_both_embedders_word_the_interrupt_alike():
    """One wording (``interrupt.EpochSwitch.typed``), the embedder's name in it."""
    words = {}
    for kind in ("TvmHost", "GuestInstance.link"):
        embedder = Embedder(kind)
        raised, _ = spin_until(embedder, embedder.target.interrupt, after=0.1)
        words[kind] = str(raised).replace(type(embedder.target).__name__, "EMBEDDER")
    assert words["TvmHost"] == words["GuestInstance.link"], words
    assert "interrupted" in words["TvmHost"] and "stays usable" in words["TvmHost"]


def test_interrupting_one_instance_leaves_a_plain_one_on_another_engine_running():
    interruptible = Embedder("GuestInstance.link")
    plain = Embedder("GuestInstance.link", interruptible=False)
    raised, _ = spin_until(interruptible, interruptible.target.interrupt, after=0.1)
    assert type(raised) is Interrupted
    assert plain.call("seven") == 7
    plain.still_works()


@pytest.mark.parametrize("kind", EMBEDDERS)
def test_an_instance_without_interruptible_refuses_interrupt(kind):
    embedder = Embedder(kind, interruptible=False)
    with pytest.raises(ValueError, match="interruptible=True"):
        embedder.target.interrupt()
    embedder.still_works()


def test_ctrl_c_interrupts_a_guest_instance_on_the_main_thread():
    embedder = Embedder("GuestInstance.link")
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in an interactive program
    try:
        with sigint_interrupts(embedder.target.engine):
            raised, _ = spin_until(embedder, lambda: os.kill(os.getpid(), signal.SIGINT))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert isinstance(raised, KeyboardInterrupt) or type(raised) is Interrupted, repr(raised)
    embedder.still_works()
    assert signal.set_wakeup_fd(-1) == -1  # the wakeup fd was handed back


@pytest.mark.parametrize("kind", EMBEDDERS)
@pytest.mark.parametrize("interrupt_first", [True, False], ids=["interrupt-then-close", "close-alone"])
def test_close_from_another_thread_waits_for_the_running_call(kind, interrupt_first):
    """A timeout's ``interrupt(); close()`` (or a bare ``close()``) while wasm runs on the main thread: the
    call returns first and the store is freed after it, never under it (that aborted or crashed the
    process). The closing thread blocks until the call is over; later use raises ``HostClosed``."""
    embedder = Embedder(kind)
    target = embedder.target
    closed_at: list[float] = []

    def stop() -> None:
        if interrupt_first:
            target.interrupt()
        target.close()
        closed_at.append(time.monotonic())

    ended = threading.Timer(0.8, target.engine.increment_epoch)  # for close-alone: the call ends by itself later
    if not interrupt_first:
        ended.start()
    try:
        raised, _ = spin_until(embedder, stop)
        returned = time.monotonic()
        time.sleep(0.1)  # the closing thread goes on once the call has returned
    finally:
        ended.cancel()
    assert type(raised) is Interrupted, repr(raised)
    assert closed_at and closed_at[0] >= returned - 0.05  # closed after the call returned, not during it
    assert target.closed
    with pytest.raises(TvmError, match=r"is closed \(used: (call|raw)\)"):
        embedder.call("seven")


def test_close_from_inside_a_call_is_refused():
    from tvm_wasm.host.closed import RunningCalls

    calls = RunningCalls("TvmHost")
    with calls.running("call"):
        with pytest.raises(ValueError, match="from inside one of its own calls"):
            calls.close()
    calls.close()
    with pytest.raises(TvmError, match=r"this TvmHost is closed \(used: call\)"):
        with calls.running("call"):
            pass
