"""Engines other than in-process wasmtime: what each can run, and why not when it cannot.

Each engine gets a note in the report whether or not it ran; a variant an
engine cannot run appears as an ``unavailable`` row with the reason, never as
a silent gap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .ir import Kernel
from .results import Row

if TYPE_CHECKING:
    from .matrix import Config


class ExternalEngines:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        self._engines: list[object] = []
        self._notes: dict[str, str] = {}
        if "v8" in cfg.engines:
            from .v8 import V8Engine

            self._engines.append(V8Engine(cfg))
        if "wamr" in cfg.engines:
            from .wamr import WamrEngine

            self._engines.append(WamrEngine(cfg))
        for name in ("v8", "wamr"):
            if name not in cfg.engines:
                self._notes[name] = "not requested (use --engines wasmtime,v8,wamr)"

    def notes(self) -> dict[str, str]:
        out = dict(self._notes)
        for engine in self._engines:
            out[engine.name] = engine.note  # type: ignore[attr-defined]
        return out

    def run_kernel(self, kernel: Kernel, cfg: Config, progress: Callable[[str], None]) -> list[Row]:
        rows: list[Row] = []
        for engine in self._engines:
            rows += engine.run_kernel(kernel, progress)  # type: ignore[attr-defined]
        return rows

    def finish(self, progress: Callable[[str], None]) -> list[Row]:
        rows: list[Row] = []
        for engine in self._engines:
            rows += engine.finish(progress)  # type: ignore[attr-defined]
        return rows
