"""Build C guests with clang: WASI commands and freestanding libraries.

Debian's ``clang`` 14 with ``lld`` builds freestanding modules
(``--target=wasm32 -nostdlib``); ``wasi-libc`` and ``libclang-rt-14-dev-wasm32``
add WASI preview1 commands (``--target=wasm32-wasi``). Libraries import their
memory (``env.memory``), so an embedder can hand them the memory it wants
(``TvmHost.instantiate`` creates one; the self-contained module's ``memory``
works too); they leave ``tvm`` imports to the host. The example programs in
``examples/`` build both ways from one source.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import wasmtime

from . import get_include

if TYPE_CHECKING:
    from ..guest.instance import GuestInstance

Target = Literal["wasi", "library"]

EXAMPLES = Path(__file__).parent / "examples"
FLAGS: dict[str, list[str]] = {
    "wasi": ["--target=wasm32-wasi", "-O2"],
    "library": ["--target=wasm32", "-nostdlib", "-O2", "-mbulk-memory", "-Wl,--no-entry", "-Wl,--import-memory"],
}
PACKAGES = {"wasi": "clang lld wasi-libc libclang-rt-14-dev-wasm32", "library": "clang lld"}


class ToolchainMissing(RuntimeError):
    """clang, wasm-ld or wasi-libc cannot build for the target on this machine."""


def clang() -> str | None:
    """The clang driver to use: ``$CC_WASM``, else ``clang`` (or ``clang-14``) on PATH."""
    return os.environ.get("CC_WASM") or shutil.which("clang") or shutil.which("clang-14")


@functools.cache
def toolchain_problem(target: Target) -> str | None:
    """Why ``target`` cannot be built here (None when a probe program builds)."""
    cc = clang()
    if cc is None:
        return f"no clang on PATH (Debian: apt-get install {PACKAGES[target]})"
    probe = "int main(void) { return 0; }\n" if target == "wasi" else "int probe(void) { return 0; }\n"
    with tempfile.TemporaryDirectory(prefix="tvm-clang-probe-") as tmp:
        source = Path(tmp) / "probe.c"
        source.write_text(probe)
        try:
            done = subprocess.run([cc, *FLAGS[target], "-o", str(Path(tmp) / "probe.wasm"), str(source)],
                                  capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{cc} failed to run: {exc}"
    if done.returncode != 0:
        first = next((line for line in done.stderr.splitlines() if line.strip()), "unknown error")
        return f"{cc} cannot build for {target} ({first.strip()}; Debian: apt-get install {PACKAGES[target]})"
    return None


def build(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    target: Target,
    include_dirs: Sequence[str | os.PathLike[str]] = (),
    flags: Sequence[str] = (),
) -> Path:
    """Compile and link one C file to ``output``; the source's folder and ``tvm.h``'s are on the include path.

    Raises ``ToolchainMissing`` when the toolchain for ``target`` is absent, and
    ``RuntimeError`` with clang's message when the program does not build.
    """
    problem = toolchain_problem(target)
    if problem is not None:
        raise ToolchainMissing(problem)
    source, output = Path(source), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    includes = [f"-I{path}" for path in (source.parent, get_include(), *include_dirs)]
    command = [clang() or "clang", *FLAGS[target], *includes, *flags, "-o", str(output), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"building {source.name} for {target} failed: {done.stderr.strip()}")
    return output


def example(name: str) -> Path:
    """The source of an example program (``records``, ``paging``, ``sha256``, ``regions``)."""
    path = EXAMPLES / f"{name}.c"
    if not path.is_file():
        raise ValueError(f"no example {name!r}; there are {', '.join(sorted(p.stem for p in EXAMPLES.glob('*.c')))}")
    return path


def link_library(guest: GuestInstance, library: str | os.PathLike[str] | bytes) -> wasmtime.Instance:
    """Instantiate a library built here (it imports ``env.memory`` and ``tvm.*``) against the
    self-contained module: its memory is the module's ``memory``, the one ``tvm.read`` and
    ``tvm.write`` copy to and from (grown to the library's minimum first)."""
    wasm = library if isinstance(library, bytes) else Path(library).read_bytes()
    module = wasmtime.Module(guest.engine, wasm)
    memory = guest.guest_memory
    needed = [imp.type.limits.min for imp in module.imports if isinstance(imp.type, wasmtime.MemoryType)]
    if needed and memory.size(guest.store) < needed[0]:
        memory.grow(guest.store, needed[0] - memory.size(guest.store))
    linker = wasmtime.Linker(guest.engine)
    linker.define_instance(guest.store, "tvm", guest.instance)
    linker.define(guest.store, "env", "memory", memory)
    return linker.instantiate(guest.store, module)
