"""What an embedder (``TvmHost``, ``GuestInstance``) becomes once closed.

``close()`` swaps the object's class for a closed one built on :class:`Closed`:
every later attribute use raises ``HostClosed`` naming what the caller used
(``call``, ``read``, ``create_region``...), never an internal export or
attribute reached on the way, so both embedders word it the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..core.errors import HostClosed


class Closed:
    """Mixed in first: a closed embedder whose every use but ``close``/``closed`` raises ``HostClosed``."""

    EMBEDDER = "embedder"  # the public class name the message shows
    STILL_USABLE = frozenset({"close", "closed", "__class__", "__dict__", "__enter__", "__exit__"})

    def __getattribute__(self, name: str) -> object:
        if name in Closed.STILL_USABLE or (name.startswith("__") and name.endswith("__")):
            return object.__getattribute__(self, name)
        raise closed_error(type(self).EMBEDDER, name)

    def close(self) -> None:
        return None

    @property
    def closed(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"<{type(self).EMBEDDER} (closed)>"


def closed_error(embedder: str, used: str) -> HostClosed:
    """``HostClosed`` for a use of ``used`` (a public method or attribute) on a closed ``embedder``."""
    return HostClosed(f"this {embedder} is closed (used: {used})")


class RunningCalls:
    """The wasm calls an embedder has running, so that ``close()`` from another thread (a timeout that
    interrupts, then closes) waits for them to return instead of freeing a store wasm still runs on:
    wasmtime then aborts or crashes the whole process. Calls that start once closing began raise
    ``HostClosed``; ``close()`` from inside one of the embedder's own calls (a host function) is a
    ``ValueError``, since that call could never return first."""

    def __init__(self, embedder: str) -> None:
        self.embedder = embedder
        self._changed = threading.Condition()
        self._running: dict[int, int] = {}  # thread id -> calls running on it (nested through host functions)
        self._closing = False

    @contextmanager
    def running(self, used: str) -> Iterator[None]:
        """Around one call into wasm (``used``: the public method, for ``HostClosed``)."""
        me = threading.get_ident()
        with self._changed:
            if self._closing:
                raise closed_error(self.embedder, used)
            self._running[me] = self._running.get(me, 0) + 1
        try:
            yield
        finally:
            with self._changed:
                self._running[me] -= 1
                if not self._running[me]:
                    del self._running[me]
                self._changed.notify_all()

    def close(self) -> None:
        """Refuse new calls, then wait until every running call has returned (``interrupt()`` stops a guest
        that would not)."""
        with self._changed:
            if threading.get_ident() in self._running:
                raise ValueError(f"{self.embedder}.close() was called from inside one of its own calls "
                                 "(a host function): close it after the call returns")
            self._closing = True
            while self._running:
                self._changed.wait()


def running_calls(embedder: object, used: str) -> RunningCalls:
    """The embedder's :class:`RunningCalls`; ``HostClosed`` naming ``used`` if it was closed (a method bound
    before ``close()`` still runs its body on the closed object, so it asks here first)."""
    calls = embedder.__dict__.get("_calls")
    if calls is None:
        raise closed_error(getattr(type(embedder), "EMBEDDER", type(embedder).__name__), used)
    return calls


def finish_calls(embedder: object) -> None:
    """At the start of ``close()``: refuse new calls and wait for the running ones (:meth:`RunningCalls.close`);
    nothing for an embedder whose constructor failed before it had any."""
    calls = embedder.__dict__.get("_calls")
    if calls is not None:
        calls.close()
