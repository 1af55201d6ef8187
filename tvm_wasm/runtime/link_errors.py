"""Errors of linking a user module with the runtime (statically, or at run time).

They live below every layer that links (the binary edits here in ``runtime``,
``GuestInstance.link``, the linker): a refused module is a ``TvmError`` with
code 9 ("other"); it names the import, export or memory and says why.
"""

from __future__ import annotations

from ..core.errors import TvmError


class LinkError(TvmError):
    """Linking a user module failed (statically with ``tvm-wasm link``, or at run time)."""


class LinkRefused(LinkError, ValueError):
    """The user module may not be linked: it is malformed, or asks for what no user code may have
    (the pools, the directory, the bridge table, runtime globals, a memory other than its one)."""
