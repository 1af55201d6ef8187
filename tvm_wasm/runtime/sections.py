"""The few binary-format edits the linker needs that no tool offers: the user's memory as an import.

Binaryen's ``wasm-merge`` resolves a module's imports against the other
modules' exports, so making the user's memory "the runtime's ``memory``" is
one edit of the import, memory and export sections (wasm spec, binary format
5.5): a defined memory moves to the import section as ``tvm.memory``, an
imported ``env.memory`` is renamed, and memory exports are dropped (the linked
module exports that memory as ``memory`` itself). Nothing else is decoded;
every other section is copied byte for byte, so data segments keep their size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..abi.imports import REFUSED
from .link_errors import LinkRefused

MAGIC = b"\0asm\x01\0\0\0"
SEC_TYPE, SEC_IMPORT, SEC_FUNCTION, SEC_TABLE, SEC_MEMORY, SEC_GLOBAL, SEC_EXPORT = 1, 2, 3, 4, 5, 6, 7
KIND_FUNC, KIND_TABLE, KIND_MEMORY, KIND_GLOBAL, KIND_TAG = 0, 1, 2, 3, 4
# Sections in the order the binary format requires them (the data count section, 12, sits before code).
SECTION_ORDER = [1, 2, 3, 4, 5, 13, 6, 7, 8, 9, 12, 10, 11]


@dataclass(frozen=True)
class Limits:
    """A wasm32, unshared memory's limits in 64 KiB pages."""

    min: int
    max: int | None


@dataclass(frozen=True)
class Import:
    module: str
    name: str
    kind: int
    desc: bytes  # the import description's bytes after the kind byte


# ---------------------------------------------------------------- LEB128
def read_u32(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise LinkRefused("malformed module: truncated LEB128 number")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 35:
            raise LinkRefused("malformed module: LEB128 number too long")


def u32(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def name(text: str) -> bytes:
    raw = text.encode()
    return u32(len(raw)) + raw


def read_name(data: bytes, pos: int) -> tuple[str, int]:
    length, pos = read_u32(data, pos)
    return data[pos : pos + length].decode("utf-8", errors="replace"), pos + length


# ---------------------------------------------------------------- sections
def sections(wasm: bytes) -> list[tuple[int, bytes]]:
    """(id, payload) of every section, in file order."""
    if not wasm.startswith(MAGIC):
        raise LinkRefused("not a WebAssembly core module (bad magic or version)")
    out, pos = [], len(MAGIC)
    while pos < len(wasm):
        section_id = wasm[pos]
        size, pos = read_u32(wasm, pos + 1)
        out.append((section_id, wasm[pos : pos + size]))
        pos += size
    return out


def assemble(parts: list[tuple[int, bytes]]) -> bytes:
    return MAGIC + b"".join(bytes([sid]) + u32(len(payload)) + payload for sid, payload in parts)


def read_limits(data: bytes, pos: int) -> tuple[Limits, int]:
    flags = data[pos]
    if flags not in (0, 1):
        raise LinkRefused(f"the user memory must be an unshared 32-bit memory (limits flags {flags:#x})")
    minimum, pos = read_u32(data, pos + 1)
    maximum = None
    if flags == 1:
        maximum, pos = read_u32(data, pos)
    return Limits(minimum, maximum), pos


def encode_limits(limits: Limits) -> bytes:
    if limits.max is None:
        return b"\0" + u32(limits.min)
    return b"\1" + u32(limits.min) + u32(limits.max)


def _skip_desc(kind: int, data: bytes, pos: int) -> int:
    """Position after an import description of ``kind``."""
    if kind in (KIND_FUNC,):
        return read_u32(data, pos)[1]
    if kind == KIND_TABLE:
        return _skip_limits(data, pos + 1)
    if kind == KIND_MEMORY:
        return _skip_limits(data, pos)
    if kind == KIND_GLOBAL:
        return pos + 2  # a number/vector/reference type byte and the mutability byte
    if kind == KIND_TAG:
        return read_u32(data, pos + 1)[1]
    raise LinkRefused(f"unsupported import kind {kind:#x}")


def _skip_limits(data: bytes, pos: int) -> int:
    flags = data[pos]
    pos += 1
    wide = flags & 4
    for _ in range(2 if flags & 1 else 1):
        pos = read_u32(data, pos)[1] if not wide else _skip_u64(data, pos)
    return pos


def _skip_u64(data: bytes, pos: int) -> int:
    while data[pos] & 0x80:
        pos += 1
    return pos + 1


def imports(payload: bytes) -> list[Import]:
    count, pos = read_u32(payload, 0)
    out = []
    for _ in range(count):
        module, pos = read_name(payload, pos)
        field, pos = read_name(payload, pos)
        kind = payload[pos]
        end = _skip_desc(kind, payload, pos + 1)
        out.append(Import(module, field, kind, payload[pos + 1 : end]))
        pos = end
    return out


def encode_imports(entries: list[Import]) -> bytes:
    body = b"".join(name(i.module) + name(i.name) + bytes([i.kind]) + i.desc for i in entries)
    return u32(len(entries)) + body


def export_entries(payload: bytes) -> list[tuple[str, int, int]]:
    """(name, kind, index) of every export in an export section's payload."""
    count, pos = read_u32(payload, 0)
    out = []
    for _ in range(count):
        field, pos = read_name(payload, pos)
        kind = payload[pos]
        index, pos = read_u32(payload, pos + 1)
        out.append((field, kind, index))
    return out


def encode_exports(entries: list[tuple[str, int, int]]) -> bytes:
    return u32(len(entries)) + b"".join(name(f) + bytes([k]) + u32(i) for f, k, i in entries)


def exports_without_memories(payload: bytes) -> bytes:
    return encode_exports([e for e in export_entries(payload) if e[1] != KIND_MEMORY])


def _vector_count(payload: bytes | None) -> int:
    return read_u32(payload, 0)[0] if payload else 0


def index_spaces(wasm: bytes) -> dict[int, tuple[int, int]]:
    """Per kind (function, table, memory, global): (imported, defined) counts."""
    by_id = {sid: p for sid, p in sections(wasm) if sid != 0}
    entries = imports(by_id[SEC_IMPORT]) if SEC_IMPORT in by_id else []
    defined = {KIND_FUNC: SEC_FUNCTION, KIND_TABLE: SEC_TABLE, KIND_MEMORY: SEC_MEMORY, KIND_GLOBAL: SEC_GLOBAL}
    return {kind: (sum(1 for i in entries if i.kind == kind), _vector_count(by_id.get(sec)))
            for kind, sec in defined.items()}


def edit_exports(wasm: bytes, edit: Callable[[list[tuple[str, int, int]]], list[tuple[str, int, int]]]) -> bytes:
    """The module with its export list replaced by ``edit(old list)`` (an export section is added if needed)."""
    parts = sections(wasm)
    old = next((p for sid, p in parts if sid == SEC_EXPORT), None)
    payload = encode_exports(edit(export_entries(old) if old is not None else []))
    if old is None:
        return assemble(_insert_section(parts, SEC_EXPORT, payload))
    return assemble([(sid, payload if sid == SEC_EXPORT else p) for sid, p in parts])


def defined_memories(wasm: bytes) -> list[Limits]:
    """Limits of the memories the module defines (not imports)."""
    payload = dict((sid, p) for sid, p in sections(wasm) if sid != 0).get(SEC_MEMORY)
    if payload is None:
        return []
    count, pos = read_u32(payload, 0)
    found = []
    for _ in range(count):
        limits, pos = read_limits(payload, pos)
        found.append(limits)
    return found


def data_segment_sizes(wasm: bytes) -> list[int]:
    """Byte length of every data segment, in order (to show that linking keeps them as they were)."""
    payload = dict((sid, p) for sid, p in sections(wasm) if sid != 0).get(11)
    if payload is None:
        return []
    count, pos = read_u32(payload, 0)
    sizes = []
    for _ in range(count):
        flags, pos = read_u32(payload, pos)
        if flags == 2:
            _, pos = read_u32(payload, pos)
        if flags in (0, 2):
            pos = _skip_const_expr(payload, pos)
        size, pos = read_u32(payload, pos)
        sizes.append(size)
        pos += size
    return sizes


def _skip_const_expr(data: bytes, pos: int) -> int:
    while data[pos] != 0x0B:
        pos = _skip_u64(data, pos + 1)  # i32.const / i64.const / global.get: one LEB128 immediate
    return pos + 1


# ---------------------------------------------------------------- the pass
def memory_as_import(wasm: bytes, module: str = "tvm", field: str = "memory", *,
                     abi_prefix: str = "") -> tuple[bytes, Limits | None]:
    """The user's one memory becomes the import ``module.field``; returns the new binary and its limits.

    With ``abi_prefix``, function imports from ``module`` are renamed to
    ``abi_prefix + name`` too (a runtime that exports its ABI under reserved
    names leaves the plain names to the user's own exports). Raises
    ``LinkRefused`` for more than one memory, or a shared or 64-bit one. A
    module with no memory and no renamed import comes back unchanged.
    """
    parts = sections(wasm)
    by_id = {sid: payload for sid, payload in parts if sid != 0}
    entries = imports(by_id[SEC_IMPORT]) if SEC_IMPORT in by_id else []
    imported = [i for i in entries if i.kind == KIND_MEMORY]
    defined = defined_memories(wasm)
    if len(imported) + len(defined) > 1:
        raise LinkRefused(REFUSED["memories"].format(count=len(imported) + len(defined)))
    if abi_prefix:
        entries = [Import(i.module, abi_prefix + i.name, i.kind, i.desc) if (i.module, i.kind) == (module, KIND_FUNC)
                   else i for i in entries]
    limits: Limits | None = None
    if not imported and not defined:
        if not abi_prefix:
            return wasm, None
    elif imported:
        limits, _ = read_limits(imported[0].desc, 0)
        entries = [Import(module, field, i.kind, i.desc) if i.kind == KIND_MEMORY else i for i in entries]
    else:
        limits = defined[0]
        # Imports come first in index space, and this is the only memory: its index stays 0.
        entries = [*entries, Import(module, field, KIND_MEMORY, encode_limits(limits))]
    rebuilt = []
    for sid, payload in parts:
        if sid == SEC_MEMORY:
            continue
        if sid == SEC_IMPORT:
            payload = encode_imports(entries)
        elif sid == SEC_EXPORT:
            payload = exports_without_memories(payload)
        rebuilt.append((sid, payload))
    if SEC_IMPORT not in by_id and entries:
        rebuilt = _insert_section(rebuilt, SEC_IMPORT, encode_imports(entries))
    return assemble(rebuilt), limits


def _insert_section(parts: list[tuple[int, bytes]], sid: int, payload: bytes) -> list[tuple[int, bytes]]:
    rank = SECTION_ORDER.index(sid)
    for index, (other, _) in enumerate(parts):
        if other in SECTION_ORDER and SECTION_ORDER.index(other) > rank:
            return [*parts[:index], (sid, payload), *parts[index:]]
    return [*parts, (sid, payload)]
