"""The self-contained guest-side module: regions, handles and pools with no host at all.

``build_module`` builds it (``GuestModule``), ``GuestInstance`` drives one on wasmtime (or runs a module
linked ``tvm-wasm link --target guest``).
"""

from __future__ import annotations

from .instance import GuestInstance
from .module import BROWSER_MAX_PAGES, BROWSER_META_MAX_PAGES, GuestModule, build_module

__all__ = ["BROWSER_MAX_PAGES", "BROWSER_META_MAX_PAGES", "GuestInstance", "GuestModule", "build_module"]
