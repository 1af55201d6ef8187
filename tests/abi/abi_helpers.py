"""Shared by the ABI tests: one engine per deployment, so each runtime and module compiles once."""

from __future__ import annotations

import functools

import wasmtime

from tvm_wasm.guest import build_module
from tvm_wasm.guest.module import GuestModule, validation_engine
from tvm_wasm.host.tvm_host import default_engine


@functools.cache
def host_engine() -> wasmtime.Engine:
    return default_engine()


@functools.cache
def module_engine() -> wasmtime.Engine:
    return validation_engine()


@functools.cache
def guest_module(pools: int = 2, specialised: bool = True) -> GuestModule:
    return build_module(pools=pools, max_pages=256, specialised=specialised)


@functools.cache
def compiled_guest_module(pools: int = 2) -> wasmtime.Module:
    return wasmtime.Module(module_engine(), guest_module(pools).wasm)
