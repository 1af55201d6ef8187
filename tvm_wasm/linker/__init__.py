"""The linker: a compiled core module and the runtime become one module (``tvm-wasm link``).

``link(user, target="guest" | "host", ...)`` returns a verified, validated
:class:`LinkedModule`; see ``link.py`` for the pipeline and ``tools.py`` for
how Binaryen and wasm-tools are found.
"""

from __future__ import annotations

from .errors import LinkError, LinkRefused, ToolFailed, ToolMissing, VerificationFailed
from .link import LinkedModule, link

__all__ = ["LinkError", "LinkRefused", "LinkedModule", "ToolFailed", "ToolMissing", "VerificationFailed", "link"]
