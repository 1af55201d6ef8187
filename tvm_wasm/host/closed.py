"""What an embedder (``TvmHost``, ``GuestInstance``) becomes once closed.

``close()`` swaps the object's class for a closed one built on :class:`Closed`:
every later attribute use raises ``HostClosed`` naming what the caller used
(``call``, ``read``, ``create_region``...), never an internal export or
attribute reached on the way, so both embedders word it the same way.
"""

from __future__ import annotations

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
