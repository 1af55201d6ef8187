"""How many x86-64 instructions a kernel's loop executes, read from the code wasmtime compiled.

Timings on a shared machine swing by 2-3x between runs; the machine code does not. This compiles a
module with the engine a variant runs on, disassembles ``wasmtime.Module.serialize()`` with
``objdump`` and follows every path from the head of the innermost loop of the exported ``run`` back
to it that calls nothing (slow paths call out of line; pool dispatch makes several fast paths):
their lengths are what each iteration executes. ``python -m tvm_wasm.bench.machine_code`` prints
them (``--loops CLASS VARIANT``: every loop of one module) for the per-access classes (``large_ws_probe``, ``beyond_4gib``), ``multi_region_90_9_1`` and the
allocating loops of ``growth`` and ``jvm_gen_alloc_scan`` under m32, m64, ``tvm-inline`` and ``guest-inline``, and the runtime's ``load_u32``/``load_i64`` (what the ``tvm`` variant calls). Needs ``objdump`` (GNU binutils) and, for the linked variants, Binaryen.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from ..host.tvm_host import DEFAULT_POOLS, default_engine
from ..linker import link, tools
from ..runtime.core_module import build_core_wat
from ..runtime.wat import Module
from .classes import CLASSES
from .guest_linked import POOLS
from .lower_wat import LinearLowering, TvmLowering
from .special import PAGE, WS_4G, _probe_loop, _reps_func, tvm_probe_module
from .wasmtime_runner import arena_caps, arena_reps

_LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)(.*)$")
_TARGET = re.compile(r"\b([0-9a-f]+) <")


@dataclass(frozen=True)
class Instruction:
    address: int
    mnemonic: str
    target: int | None  # a jump's destination


def objdump() -> str:
    found = shutil.which("objdump")
    if found is None:
        raise FileNotFoundError("objdump not found: install GNU binutils (Debian: apt-get install binutils)")
    return found


def function_code(engine: wasmtime.Engine, wasm: bytes, export: str = "run") -> list[Instruction]:
    """The machine code wasmtime compiled for the function exported as ``export``, in address order."""
    stripped = tools.run([tools.wasm_tools(), "strip", "--all"], input=wasm)
    text = tools.run([tools.wasm_tools(), "print"], input=stripped).decode()
    found = re.search(rf'\(export "{re.escape(export)}" \(func (\d+)\)\)', text)
    if found is None:
        raise ValueError(f"the module exports no function {export!r}")
    index = int(found.group(1))  # wasmtime's symbols number functions as the module does, imports included
    with tempfile.TemporaryDirectory(prefix="tvm-code-") as folder:
        path = Path(folder) / "module.o"
        path.write_bytes(wasmtime.Module(engine, wasm).serialize())
        listing = subprocess.run([objdump(), "-d", "--no-show-raw-insn", str(path)], capture_output=True,
                                 text=True, check=True).stdout
    code: list[Instruction] = []
    inside = False
    for line in listing.splitlines():
        if line.endswith(">:"):
            inside = f"function[{index}]>" in line or f"function[{index}]::" in line
            continue
        parsed = _LINE.match(line) if inside else None
        if parsed:
            mnemonic, rest = parsed.group(2), parsed.group(3)
            target = _TARGET.search(rest) if mnemonic.startswith("j") else None
            code.append(Instruction(int(parsed.group(1), 16), mnemonic, int(target.group(1), 16) if target else None))
    if not code:
        raise ValueError(f"no machine code found for {export!r}")
    return code


def loop_paths(code: list[Instruction]) -> list[int]:
    """Lengths of the call-free paths from the head of the innermost loop back to it, shortest first.

    The innermost loop is the shortest backward jump; a path ends at a jump to its head and is
    dropped at a call, a return or a trap (those are not the loop's hot path).
    """
    at = {ins.address: k for k, ins in enumerate(code)}
    back = [(k - at[ins.target], at[ins.target]) for k, ins in enumerate(code)
            if ins.target is not None and ins.target in at and ins.target <= ins.address]
    if not back:
        raise ValueError("the function has no loop")
    return _paths(code, min(back)[1], code[min(back)[1]].address)


def every_loop(code: list[Instruction], longest: int = 260) -> list[tuple[int, int, list[int]]]:
    """Every loop of at most ``longest`` instructions, shortest first: (head address, instructions from the
    head to the back edge, :func:`loop_paths`-style path lengths). A kernel's second loop (jvm_gen_alloc_scan's
    scan) and each of a hoisted loop's copies appear here; the caller tells them apart by their paths."""
    at = {ins.address: k for k, ins in enumerate(code)}
    back = sorted({(k - at[ins.target], at[ins.target]) for k, ins in enumerate(code)
                   if ins.target is not None and ins.target in at and ins.target <= ins.address})
    return [(code[start].address, size, _paths(code, start, code[start].address)) for size, start in back if size <= longest]


def call_paths(code: list[Instruction]) -> list[int]:
    """Lengths of the paths from the function's entry to a return that call nothing, shortest first."""
    return _paths(code, 0, None)


def _paths(code: list[Instruction], start: int, head: int | None) -> list[int]:
    """Paths from ``code[start]`` that end at a jump to ``head`` (a loop) or at a return (``head`` None)."""
    at = {ins.address: k for k, ins in enumerate(code)}
    lengths: set[int] = set()

    def walk(k: int, length: int, seen: frozenset[int]) -> None:
        if k >= len(code) or k in seen:
            return
        ins = code[k]
        if ins.mnemonic.startswith(("call", "ud2")) or (ins.mnemonic.startswith("ret") and head is not None):
            return
        length += 1
        if ins.mnemonic.startswith("ret"):
            lengths.add(length)
            return
        if head is not None and ins.target == head:
            lengths.add(length)
            if ins.mnemonic.startswith("jmp"):
                return
        elif ins.target is not None and ins.target in at:
            walk(at[ins.target], length, seen | {k})
            if ins.mnemonic.startswith("jmp"):
                return
        walk(k + 1, length, seen | {k})

    walk(start, 0, frozenset())
    return sorted(lengths)


PROBES = [("large_ws_probe", "m32"), ("large_ws_probe", "m64"), ("large_ws_probe", "tvm-inline"),
          ("large_ws_probe", "guest-inline"), ("beyond_4gib", "m64"), ("beyond_4gib", "tvm-inline"),
          ("beyond_4gib", "guest-inline"), ("multi_region_90_9_1", "m32"), ("multi_region_90_9_1", "m64"),
          ("multi_region_90_9_1", "tvm-inline"), ("multi_region_90_9_1", "guest-inline"),
          *((cls, variant) for cls in ("growth", "jvm_gen_alloc_scan") for variant in ("m32", "m64", "tvm-inline", "guest-inline"))]
"""The (class, variant) pairs :func:`main` reports: the classes whose handle changes per access,
``multi_region_90_9_1`` (offsets with a known range: three arms of a hash-scaled index), and the classes that
allocate in a loop (their innermost loop is the allocating one; for the linked variants, the shortest of the
hoisted loop's copies per pool and per dirty tracking)."""


def probe_module(cls: str, variant: str) -> tuple[wasmtime.Engine, bytes]:
    """The engine and module of ``variant`` for ``cls`` (16 KiB; ``beyond_4gib``: 2,048 probes), lowered
    and linked as the bench does."""
    if cls == "beyond_4gib":
        if variant == "m64":
            config = wasmtime.Config()
            config.wasm_memory64 = True
            m64 = Module()
            m64.fields.append(f'(memory (export "memory") i64 {WS_4G // PAGE})')
            m64.add(_reps_func(_probe_loop(2048, ["local.get $a", "i64.load"], ("i64.extend_i32_u", "i64.load")), []))
            return wasmtime.Engine(config), wasmtime.wat2wasm(m64.render())
        kernel_wat = tvm_probe_module(2048).render()
    elif cls in CLASSES:
        kernel = CLASSES[cls](16 * 1024, 0xDEADBEEF)
        caps = arena_caps(kernel, arena_reps(kernel, 1 << 24))
        if variant in ("m32", "m64"):
            return wasmtime.Engine(), wasmtime.wat2wasm(LinearLowering(kernel, caps, memory64=variant == "m64").render())
        kernel_wat = TvmLowering(kernel, caps).render()
    else:
        raise ValueError(f"no probe module for class {cls!r}")
    if variant == "tvm-inline":
        return default_engine(), link(kernel_wat, target="host", pools=DEFAULT_POOLS).wasm
    if variant == "guest-inline":
        return wasmtime.Engine(), link(kernel_wat, target="guest", pools=POOLS, inline_runtime=True).wasm
    raise ValueError(f"no probe module for variant {variant!r} of {cls!r}")


def main(argv: list[str] | None = None) -> None:
    """Every row of :data:`PROBES`; with ``--loops CLASS VARIANT``, each loop of that module instead."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--loops"] and len(args) == 3:
        for address, size, paths in every_loop(function_code(*probe_module(args[1], args[2]))):
            print(f"  loop at {address:#x}, {size} instructions: paths {', '.join(map(str, paths[:6]))}")
        return
    print("x86-64 instructions per iteration of the innermost loop of run (each call-free path):")
    for cls, variant in PROBES:
        paths = loop_paths(function_code(*probe_module(cls, variant)))
        print(f"  {cls:15} {variant:13} {', '.join(map(str, paths))}")
    runtime = wasmtime.wat2wasm(build_core_wat(DEFAULT_POOLS))
    for name in ("load_u32", "load_i64"):
        paths = call_paths(function_code(default_engine(), runtime, name))
        print(f"the runtime's {name} (the tvm variant's call), entry to return: {', '.join(map(str, paths))}")


if __name__ == "__main__":
    main()
