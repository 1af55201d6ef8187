"""WASI preview1 for guests of ``TvmHost``: configurations, commands and their exit codes.

WASI in wasmtime belongs to a store (``Store.set_wasi``) and is served by a
linker (``Linker.define_wasi``). A ``TvmHost`` has one store, so all of its
WASI guests share one WASI context: the one given last to
``TvmHost.instantiate(..., wasi=...)``. The rules for arguments follow
``wasmtime run``: ``--dir HOST[::GUEST]`` and ``--env KEY=VALUE``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import wasmtime

WASI_MODULE = "wasi_snapshot_preview1"
COMMAND_ENTRY = "_start"  # a WASI command's entry point (the tool conventions' name)
REACTOR_INIT = "_initialize"  # a WASI reactor's (library's) initialiser, called once after instantiation

WasiArg = wasmtime.WasiConfig | bool | None


def imports_wasi(module: wasmtime.Module) -> bool:
    """True if ``module`` imports anything from WASI preview1."""
    return any(imp.module == WASI_MODULE for imp in module.imports)


def default_wasi_config() -> wasmtime.WasiConfig:
    """What ``wasi=True`` means: stdin, stdout and stderr inherited; no arguments, no
    environment, no directories (as ``wasmtime run`` with no options)."""
    config = wasmtime.WasiConfig()
    config.inherit_stdin()
    config.inherit_stdout()
    config.inherit_stderr()
    return config


def give_wasi(store: wasmtime.Store, wasi: wasmtime.WasiConfig | bool, *, owner: str, each: str) -> None:
    """Set ``wasi`` (``True``: :func:`default_wasi_config`) on ``store``. A config is consumed by the store it
    is set on: one used before raises ``ValueError`` saying to make a new one for each ``each``."""
    try:
        store.set_wasi(default_wasi_config() if wasi is True else wasi)  # type: ignore[arg-type]
    except ValueError as exc:  # wasmtime-py's "already closed"
        raise ValueError(f"this wasmtime.WasiConfig was already used: {owner} consumed it, so make a new one "
                         f"for each {each} (or pass wasi=True)") from exc


def wasi_config(
    argv: Sequence[str],
    *,
    env: Iterable[tuple[str, str]] = (),
    dirs: Iterable[tuple[str, str]] = (),
) -> wasmtime.WasiConfig:
    """A config with inherited stdio, ``argv`` (``argv[0]`` is the program name), ``env``
    pairs and preopened ``(host, guest)`` directories.

    Raises ``ValueError`` when a host directory does not exist.
    """
    config = default_wasi_config()
    config.argv = list(argv)
    config.env = [(key, value) for key, value in env]
    for host_dir, guest_dir in dirs:
        if not os.path.isdir(host_dir):
            raise ValueError(f"--dir {host_dir}: no such directory")
        config.preopen_dir(host_dir, guest_dir)
    return config


def parse_dir(text: str) -> tuple[str, str]:
    """``HOST[::GUEST]`` -> ``(host, guest)``; the guest path defaults to the host path."""
    host_dir, sep, guest_dir = text.partition("::")
    if not host_dir or (sep and not guest_dir):
        raise ValueError(f"invalid --dir {text!r} (expected HOST or HOST::GUEST)")
    return host_dir, guest_dir if sep else host_dir


def parse_env(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` -> ``(key, value)``; the value may be empty, the key may not."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"invalid --env {text!r} (expected KEY=VALUE)")
    return key, value


def trap_summary(trap: wasmtime.Trap) -> str:
    """One line for a trap that is not a typed ``tvm`` error: its cause and the function it hit."""
    lines = [line.strip() for line in trap.message.splitlines() if line.strip()]
    cause = lines[-1] if lines else "trap"
    frames = getattr(trap, "frames", None) or []
    if not frames:
        return cause
    top = frames[0]  # the innermost frame; a module without a name section has only indices
    return f"{cause} (in {top.func_name or f'wasm function {top.func_index}'})"
