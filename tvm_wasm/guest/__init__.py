"""The self-contained guest-side module: regions, handles and pools with no host at all."""

from __future__ import annotations

from .module import BROWSER_MAX_PAGES, BROWSER_META_MAX_PAGES, GuestModule, build_module

__all__ = ["BROWSER_MAX_PAGES", "BROWSER_META_MAX_PAGES", "GuestModule", "build_module"]
