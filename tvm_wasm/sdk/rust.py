"""Generate ``tvm.rs``, the Rust bindings for guests, from the ABI table.

``raw`` is the extern block (``#[link(wasm_import_module = "tvm")]``), one
declaration per function; above it thin safe types: ``Handle`` (typed loads
and stores, their ``try_`` twins, bulk reads and writes), ``Region``
(lifecycle, allocation, queries) and ``TvmError`` with ``Result<T>``. The
file uses ``core`` only, so it builds for ``#![no_std]`` guests too, with
Debian's ``rustc`` 1.63 for ``wasm32-unknown-unknown`` and ``wasm32-wasi``.
"""

from __future__ import annotations

from ..abi.table import (
    ABI,
    ALLOCATORS,
    ERROR_CODES,
    METRICS,
    REGION_KINDS,
    RESIDENCIES,
    TYPED_ACCESS,
    AbiFunction,
    EnumValue,
    OnError,
)

RUST_PARAM = {
    "handle": "u64", "region": "u32", "u32": "u32", "byte": "u32", "ptr": "*mut u8", "cptr": "*const u8",
    "kind": "u32", "allocator": "u32", "metric": "u32", "i32": "u32", "i64": "i64", "f32": "f32", "f64": "f64",
}
RUST_RESULT = {
    "code": "i32", "handle": "u64", "region": "u32", "i32": "i32", "u32": "u32", "bool": "i32",
    "i64": "i64", "f32": "f32", "f64": "f64",
}
RUST_VALUE = {"u8": "u8", "u16": "u16", "u32": "u32", "i64": "i64", "f32": "f32", "f64": "f64"}
RUST_LOADED = {"u8": "u32", "u16": "u32", "u32": "u32", "i64": "i64", "f32": "f32", "f64": "f64"}


def camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.lower().split("_"))



def raw_decl(entry: AbiFunction) -> list[str]:
    typed = entry.typed
    params = []
    for p in entry.params:
        if typed and p.name == "v":
            params.append(f"v: {RUST_LOADED[typed]}")
        elif typed and p.name == "out":
            params.append(f"out: *mut {RUST_VALUE[typed]}")
        else:
            params.append(f"{p.name}: {RUST_PARAM[p.kind]}")
    result = ""
    if entry.result is not None:
        result = " -> " + (RUST_LOADED[typed] if typed and entry.on_error is OnError.TRAP else RUST_RESULT[entry.result])
    doc = entry.summary.replace("`", "")
    return [f"        /// {doc}", f'        #[link_name = "{entry.name}"]',
            f"        pub fn {entry.name}({', '.join(params)}){result};"]


def rust_enum(name: str, values: tuple[EnumValue, ...], doc: str) -> list[str]:
    lines = [f"/// {doc}", "#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]", "#[repr(u32)]", f"pub enum {name} {{"]
    lines += [f"    {camel(v.name)} = {v.value}," for v in values]
    return [*lines, "}", ""]


def error_type() -> list[str]:
    errors = [e for e in ERROR_CODES if e.code]
    lines = [
        "/// A raw-ABI error code (never 0).",
        "#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]",
        "#[repr(i32)]",
        "pub enum TvmError {",
    ]
    lines += [f"    /// {e.meaning}\n    {camel(e.name)} = {e.code}," for e in errors]
    lines += [
        "    /// A code this version does not know.",
        "    Unknown = -1,",
        "}",
        "",
        "impl TvmError {",
        "    /// The error for a nonzero `code`, None for 0.",
        "    pub fn from_code(code: i32) -> Option<TvmError> {",
        "        match code {",
        "            0 => None,",
        *(f"            {e.code} => Some(TvmError::{camel(e.name)})," for e in errors),
        "            _ => Some(TvmError::Unknown),",
        "        }",
        "    }",
        "    /// The ABI's code for this error.",
        "    pub fn code(self) -> i32 { self as i32 }",
        "    /// The code's name (\"NOT_FOUND\", ...).",
        "    pub fn name(self) -> &'static str {",
        "        match self {",
        *(f'            TvmError::{camel(e.name)} => "{e.name}",' for e in errors),
        '            TvmError::Unknown => "UNKNOWN",',
        "        }",
        "    }",
        "}",
        "",
        "/// The result of a tvm call.",
        "pub type Result<T> = core::result::Result<T, TvmError>;",
        "",
        "/// `Ok(())` for code 0, else the error.",
        "pub fn check(code: i32) -> Result<()> {",
        "    match TvmError::from_code(code) { None => Ok(()), Some(e) => Err(e) }",
        "}",
        "",
        "/// Reads and clears the code of the last failure (None if there was none).",
        "pub fn last_error() -> Option<TvmError> { TvmError::from_code(unsafe { raw::last_error() }) }",
        "",
        "fn failed<T>() -> Result<T> { Err(last_error().unwrap_or(TvmError::Unknown)) }",
        "",
    ]
    return lines


def handle_type() -> list[str]:
    lines = [
        "/// A generation-checked handle: region_id:16 | generation:16 | offset:32. A live handle is never 0.",
        "#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]",
        "#[repr(transparent)]",
        "pub struct Handle(pub u64);",
        "",
        "impl Handle {",
        "    pub const fn pack(region: u16, generation: u16, offset: u32) -> Handle {",
        "        Handle(((region as u64) << 48) | ((generation as u64) << 32) | offset as u64)",
        "    }",
        "    pub const fn region(self) -> Region { Region((self.0 >> 48) as u32) }",
        "    pub const fn generation(self) -> u16 { (self.0 >> 32) as u16 }",
        "    pub const fn offset(self) -> u32 { self.0 as u32 }",
        "    /// The handle `delta` bytes further; saturates at offset 2^32 - 1 so an overflow fails the bounds check.",
        "    pub const fn add(self, delta: u32) -> Handle {",
        "        let offset = match (self.0 as u32).checked_add(delta) { Some(o) => o, None => u32::MAX };",
        "        Handle((self.0 & !0xFFFF_FFFF) | offset as u64)",
        "    }",
        "    /// Copy `buf.len()` bytes from the handle into `buf`.",
        "    pub fn read(self, buf: &mut [u8]) -> Result<()> {",
        "        check(unsafe { raw::read(self.0, buf.as_mut_ptr(), buf.len() as u32) })",
        "    }",
        "    /// Copy `data` to the handle.",
        "    pub fn write(self, data: &[u8]) -> Result<()> {",
        "        check(unsafe { raw::write(self.0, data.as_ptr(), data.len() as u32) })",
        "    }",
        "    /// Free the allocation.",
        "    pub fn dealloc(self) -> Result<()> { check(unsafe { raw::dealloc(self.0) }) }",
        "    /// The handle's current form after a compaction of its region.",
        "    pub fn migrate(self) -> Result<Handle> {",
        "        match unsafe { raw::migrate(self.0) } { 0 => failed(), h => Ok(Handle(h)) }",
        "    }",
        "    /// 64-bit FNV-1a of `len` bytes.",
        "    pub fn hash_fnv1a(self, len: u32) -> Result<u64> {",
        "        let mut out = 0u64;",
        "        check(unsafe { raw::hash_fnv1a(self.0, len, &mut out as *mut u64 as *mut u8) })?;",
        "        Ok(out)",
        "    }",
        "    /// Sum of `len` bytes.",
        "    pub fn sum_u8(self, len: u32) -> Result<u64> {",
        "        match unsafe { raw::sum_u8(self.0, len) } { -1 => failed(), s => Ok(s as u64) }",
        "    }",
    ]
    for t in TYPED_ACCESS:
        value, loaded = RUST_VALUE[t.name], RUST_LOADED[t.name]
        cast_in = f"v as {loaded}" if value != loaded else "v"
        cast_out = f" as {value}" if value != loaded else ""
        lines += [
            f"    /// Load a {value} at offset + `off`; traps on an invalid access.",
            f"    pub fn load_{t.name}(self, off: u32) -> {value} {{ unsafe {{ raw::load_{t.name}(self.0, off){cast_out} }} }}",
            f"    /// Store a {value} at offset + `off`; traps on an invalid access.",
            f"    pub fn store_{t.name}(self, off: u32, v: {value}) {{ unsafe {{ raw::store_{t.name}(self.0, off, {cast_in}) }} }}",
            f"    /// Load a {value}, or the error (never traps).",
            f"    pub fn try_load_{t.name}(self, off: u32) -> Result<{value}> {{",
            f"        let mut out: {value} = Default::default();",
            f"        check(unsafe {{ raw::try_load_{t.name}(self.0, off, &mut out) }})?;",
            "        Ok(out)",
            "    }",
            f"    /// Store a {value}, or the error (never traps).",
            f"    pub fn try_store_{t.name}(self, off: u32, v: {value}) -> Result<()> {{",
            f"        check(unsafe {{ raw::try_store_{t.name}(self.0, off, {cast_in}) }})",
            "    }",
        ]
    return [*lines, "}", ""]


def region_type() -> list[str]:
    lines = [
        "/// A region id (1..65535).",
        "#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]",
        "#[repr(transparent)]",
        "pub struct Region(pub u32);",
        "",
        "impl Region {",
        "    /// A zeroed Bump region of `capacity` bytes.",
        "    pub fn create(kind: RegionKind, capacity: u32) -> Result<Region> {",
        "        match unsafe { raw::create_region(kind as u32, capacity) } { 0 => failed(), id => Ok(Region(id)) }",
        "    }",
        "    /// A region with an allocator (`param`: Slab class size; module Freelist: block-table entries).",
        "    pub fn create_with(kind: RegionKind, capacity: u32, allocator: Allocator, param: u32) -> Result<Region> {",
        "        match unsafe { raw::create_region_with(kind as u32, capacity, allocator as u32, param) } {",
        "            0 => failed(),",
        "            id => Ok(Region(id)),",
        "        }",
        "    }",
        "    /// Allocate `size` bytes.",
        "    pub fn alloc(self, size: u32) -> Result<Handle> {",
        "        match unsafe { raw::alloc(self.0, size) } { 0 => failed(), h => Ok(Handle(h)) }",
        "    }",
        "    /// A handle to `offset` in the region's current generation.",
        "    pub fn handle(self, offset: u32) -> Result<Handle> {",
        "        Ok(Handle::pack(self.0 as u16, self.generation()? as u16, offset))",
        "    }",
    ]
    for entry in ABI:
        if entry.group == "regions" and entry.on_error is OnError.CODE and [p.kind for p in entry.params] == ["region"]:
            method = {"destroy_region": "destroy", "demote_region": "demote", "promote_region": "promote",
                      "compact_region": "compact"}.get(entry.name, entry.name)
            lines += [f"    /// {entry.summary.replace('`', '')}.",
                      f"    pub fn {method}(self) -> Result<()> {{ check(unsafe {{ raw::{entry.name}(self.0) }}) }}"]
        if (entry.group == "queries" and entry.on_error is OnError.SENTINEL and entry.host
                and [p.kind for p in entry.params] == ["region"]):
            method = entry.name.removeprefix("region_")
            rtype = "u64" if entry.result == "i64" else "u32"
            lines += [f"    /// {entry.summary.replace('`', '')}.",
                      f"    pub fn {method}(self) -> Result<{rtype}> {{",
                      f"        match unsafe {{ raw::{entry.name}(self.0) }} {{ {entry.sentinel} => failed(), v => Ok(v as {rtype}) }}",
                      "    }"]
    lines += [
        "    /// Counter `metric` of the region.",
        "    pub fn metric(self, metric: Metric) -> Result<u64> {",
        "        match unsafe { raw::region_metric(self.0, metric as u32) } { -1 => failed(), v => Ok(v as u64) }",
        "    }",
        "}",
        "",
    ]
    return lines


def generate() -> str:
    """The text of ``tvm.rs``."""
    lines = [
        "//! tvm.rs: the raw `tvm` ABI of tvm-wasm for guests written in Rust (wasm32, core only).",
        "//!",
        "//! Generated from tvm_wasm/abi/table.py by `python -m tvm_wasm.sdk`; do not edit.",
        "//! Use: `#[path = \"<tvm-wasm sdk --rust>\"] mod tvm;`, then build with",
        "//! `rustc --target wasm32-unknown-unknown --crate-type cdylib -O guest.rs`.",
        "//! Codes: `Result<T>` carries the error; typed loads and stores trap on an invalid access,",
        "//! their `try_` twins return the error instead.",
        "#![allow(dead_code, clippy::all)]",
        "",
        "/// The imports, exactly as the ABI table declares them.",
        "pub mod raw {",
        '    #[link(wasm_import_module = "tvm")]',
        '    extern "C" {',
    ]
    for entry in ABI:
        if not entry.per_pool:
            lines += raw_decl(entry)
    lines += ["    }", "}", ""]
    lines += rust_enum("RegionKind", REGION_KINDS, "Region kinds.")
    lines += rust_enum("Allocator", ALLOCATORS, "Allocators for `Region::create_with`.")
    lines += rust_enum("Residency", RESIDENCIES, "Residency tiers.")
    lines += rust_enum("Metric", METRICS, "Region counters.")
    lines += error_type()
    lines += handle_type()
    lines += region_type()
    return "\n".join(lines)
