"""Errors of the linker: a refused user module, or a missing or failing tool."""

from __future__ import annotations

from ..runtime.link_errors import LinkError, LinkRefused

__all__ = ["LinkError", "LinkRefused", "ToolFailed", "ToolMissing", "VerificationFailed"]


class ToolMissing(LinkError):
    """A tool the linker runs (Binaryen's ``wasm-merge``/``wasm-opt``, ``wasm-tools``) is not installed."""


class ToolFailed(LinkError):
    """A tool ran and refused its input; the message carries its output."""


class VerificationFailed(LinkError):
    """The linked output names a runtime memory, table, global or function outside runtime code."""
