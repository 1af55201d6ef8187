"""Assemble the self-contained module: the shared ABI plus an in-wasm control plane.

Memories, in index order: ``$g`` (the default memory, exported as
``memory``: spliced user code's plain loads hit it and run-time-linked user
modules import it as ``tvm.memory``), ``$meta`` (the directory, internal)
and the pools ``$p0..`` (exported as ``mem0..`` for zero-copy views). The
module imports nothing, so it runs in any engine with multi-memory, SIMD
and bulk memory: wasmtime, and V8 in Chromium and Node.
"""

from __future__ import annotations

import dataclasses
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import wasmtime

from ..host.interrupt import note_epoch_checks

from ..core.durable import write_durably
from ..abi.table import TRAP_CAUSE
from ..runtime import access as A
from ..runtime import bridge_module as B
from ..runtime import layout as L
from ..runtime.core_module import TRAP_CAUSE_PARAMS, abi_fields, abi_funcs, check_pool_count
from ..runtime.wat import Func, Module
from . import layout as G
from .blocks import block_funcs
from .control import control_funcs
from .protection import protection_funcs
from .rollback import rollback_funcs
from .spans import initial_arenas, span_funcs
from .specialised import specialised_funcs
from .touched import TOUCHED_PAGES, touched_funcs

USER_BEGINS = ";; --- user body begins ---"
USER_ENDS = ";; --- user body ends ---"
BROWSER_MAX_PAGES = 256  # per pool: browsers reserve address space for each memory's maximum
BROWSER_META_MAX_PAGES = G.META_INITIAL_PAGES + 256
# The embedder-facing interface (exported functions and their meaning). Bump it when an export's
# meaning changes; a change of any signature changes ``abi_fingerprint`` by itself.
ABI_VERSION = 2


@dataclass(frozen=True)
class GuestModule:
    """A built module: its WAT, its validated binary, and the parameters it was built with."""

    pools: int
    initial_pages: int
    max_pages: int
    meta_max_pages: int
    wat: str
    wasm: bytes

    def save(self, path: str | os.PathLike[str], *, wat: bool = False) -> Path:
        """Write the binary (or, with ``wat``, the text) to ``path``, creating parent folders."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        return write_durably(target, self.wat.encode() if wat else self.wasm)

    @property
    def max_bytes(self) -> int:
        """Region bytes the pools can hold at most."""
        return self.pools * self.max_pages * L.PAGE


def validation_engine(*, interruptible: bool = False) -> wasmtime.Engine:
    """An engine with exactly the proposals the module uses, for validation and default instances;
    ``interruptible``: with wasmtime's epoch checks (``GuestInstance(interruptible=True)``)."""
    config = wasmtime.Config()
    config.wasm_multi_memory = True
    config.wasm_simd = True
    config.wasm_bulk_memory = True
    config.wasm_reference_types = True
    config.epoch_interruption = interruptible
    return note_epoch_checks(wasmtime.Engine(config), interruptible)


def check_limits(pools: int, initial_pages: int, max_pages: int, meta_max_pages: int) -> None:
    check_pool_count(pools)
    if not 1 <= max_pages <= L.WASM32_MAX_PAGES:
        raise ValueError(f"max_pages must be in 1..{L.WASM32_MAX_PAGES}, got {max_pages}")
    if not 0 <= initial_pages <= max_pages:
        raise ValueError(f"initial_pages must be in 0..max_pages ({max_pages}), got {initial_pages}")
    if not G.META_INITIAL_PAGES <= meta_max_pages <= L.WASM32_MAX_PAGES:
        raise ValueError(f"meta_max_pages must be in {G.META_INITIAL_PAGES}..{L.WASM32_MAX_PAGES}, got {meta_max_pages}")


def memories(pools: int, initial_pages: int, max_pages: int, meta_max_pages: int, guest_pages: int,
             guest_max_pages: int | None = None) -> list[str]:
    return [
        guest_memory(guest_pages, guest_max_pages),
        f"(memory $meta {G.META_INITIAL_PAGES} {meta_max_pages})",
        *(f'(memory $p{k} (export "mem{k}") {initial_pages} {max_pages})' for k in range(pools)),
    ]


def guest_memory(pages: int, max_pages: int | None = None) -> str:
    """The default memory ``$g``, exported as ``memory``; a linked user module's memory takes its limits."""
    limits = f"{pages}" if max_pages is None else f"{pages} {max_pages}"
    return f'(memory {B.GUEST_MEMORY} (export "memory") {limits})'


def private_bridge_fields() -> list[str]:
    """``abi_fields()`` with the bridge table kept inside: here nothing outside may refill it."""
    fields = []
    for text in abi_fields():
        if text.startswith("(table $bridge"):
            private = text.replace('(export "bridge") ', "")
            assert private != text, "the shared bridge table declaration changed shape"
            text = private
        fields.append(text)
    return fields


def bridge_funcs(pools: int) -> list[Func]:
    """The host's bridge functions over ``$g``, internal, in bridge-table slot order."""
    made = B.bridge_funcs(pools)
    return [dataclasses.replace(made[name], export=None) for name in B.BRIDGE_EXPORTS]


def trap_cause_fields() -> list[str]:
    """The exported trap-cause globals (``abi.TRAP_CAUSE``), all starting at 0."""
    return [f'(global ${f.name} (export "{f.name}") (mut {f.wasm_type}) ({f.wasm_type}.const 0))' for f in TRAP_CAUSE]


def trap_cause_func() -> Func:
    """``$trap_cause``: what the shared ABI code calls just before a typed access traps.

    Records the code, the function, the handle, the offset accessed (handle
    offset + relative offset, as i64: it may pass 2^32), the width, the
    region's capacity and current generation, and bumps ``trap_seq`` last, so
    an embedder comparing ``trap_seq`` around a call knows the globals belong
    to that call's trap (``abi.TRAP_CAUSE``).
    """
    slot_state = f"i32.load $meta offset={L.SLOTS + L.SLOT_STATE}"
    body = [
        *A.slot_of_handle("h"),
        "local.get $code", "global.set $trap_code",
        "local.get $function", "global.set $trap_function",
        "local.get $h", "global.set $trap_handle",
        "local.get $h", "i64.const 0xFFFFFFFF", "i64.and", "local.get $off", "i64.extend_i32_u", "i64.add",
        "global.set $trap_offset",
        "local.get $width", "global.set $trap_length",
        "local.get $slot", slot_state, f"i32.const {L.GEN_MASK}", "i32.and", "global.set $trap_generation",
        "local.get $slot", f"i64.load32_u $meta offset={L.SLOTS + L.SLOT_CAPACITY}",
        "i64.const 0",
        "local.get $slot", slot_state, f"i32.const {L.FLAG_LIVE}", "i32.and",
        "select",  # the capacity while the region is live, else 0
        "global.set $trap_capacity",
        "global.get $trap_seq", "i32.const 1", "i32.add", "global.set $trap_seq",
    ]
    return Func("trap_cause", TRAP_CAUSE_PARAMS, [], [("slot", "i32")], body)


def header_data(pools: int, max_pages: int, meta_max_pages: int) -> str:
    """A data segment with the directory's starting header: next id 1 and every arena's top and limit."""
    values = initial_arenas(pools, max_pages, meta_max_pages)
    end = max(values) + 8
    image = bytearray(end - G.GH_NEXT_ID)
    struct.pack_into("<I", image, 0, 1)
    for offset, value in values.items():
        struct.pack_into("<Q", image, offset - G.GH_NEXT_ID, value)
    return meta_data(G.GH_NEXT_ID, bytes(image))


def reserved_key_data() -> str:
    """A data segment with slot 65535's fast keys as ``no_key``: the one slot whose keys may not start at 0
    (``layout``'s fast keys; the module's own slot writes keep them after that)."""
    slot = L.slot_offset(L.RESERVED_KEY_SLOT)
    image = b"".join(struct.pack("<Q", L.no_key(L.RESERVED_KEY_SLOT)) for _ in range(L.FAST_KEY_POOLS))
    return meta_data(slot + L.SLOT_FAST_KEYS, image)


def meta_data(offset: int, image: bytes) -> str:
    """An active data segment writing ``image`` at ``offset`` of the meta memory."""
    escaped = "".join(f"\\{byte:02x}" for byte in image)
    return f'(data (memory $meta) (i32.const {offset}) "{escaped}")'


def module_funcs(pools: int, *, specialised: bool = True) -> list[Func]:
    """Every function of a module with ``pools`` pools, in module order."""
    funcs = [*abi_funcs(pools, TOUCHED_PAGES), trap_cause_func(), *bridge_funcs(pools), *span_funcs(pools),
             *touched_funcs(), *block_funcs(pools), *control_funcs(pools), *protection_funcs(pools),
             *rollback_funcs()]
    if specialised:
        funcs += specialised_funcs(pools)
    return funcs


def exported_funcs() -> list[Func]:
    """The exported functions every module has, whatever its pool count (not the per-pool accessors)."""
    return [func for func in module_funcs(1, specialised=False) if func.export]


def abi_fingerprint() -> int:
    """CRC-32 of the exported functions' names and signatures: embedders refuse a module whose differs."""
    text = ";".join(sorted(f"{f.export}({','.join(t for _, t in f.params)})->({','.join(f.results)})"
                           for f in exported_funcs()))
    return zlib.crc32(text.encode())


def version_globals() -> list[str]:
    """``abi_version`` and ``abi_fingerprint``, exported so an embedder can check what it drives."""
    return [
        f'(global $abi_version (export "abi_version") i32 (i32.const {ABI_VERSION}))',
        f'(global $abi_fingerprint (export "abi_fingerprint") i32 (i32.const {struct.unpack("<i", struct.pack("<I", abi_fingerprint()))[0]}))',
    ]


def build_wat(
    pools: int,
    initial_pages: int,
    max_pages: int,
    meta_max_pages: int,
    *,
    guest_pages: int = 1,
    guest_max_pages: int | None = None,
    user_wat: str | None = None,
    specialised: bool = True,
) -> str:
    module = Module()
    module.fields += memories(pools, initial_pages, max_pages, meta_max_pages, guest_pages, guest_max_pages)
    module.fields += private_bridge_fields()
    module.fields += trap_cause_fields()
    bridges = [f.name for f in bridge_funcs(pools)]
    module.fields.append(f"(elem (table $bridge) (i32.const 0) func {' '.join('$' + name for name in bridges)})")
    module.fields.append(header_data(pools, max_pages, meta_max_pages))
    module.fields.append(reserved_key_data())
    module.fields += version_globals()
    funcs = module_funcs(pools, specialised=specialised)
    for func in funcs:
        module.add(func)
    text = module.render()
    if user_wat:
        assert text.endswith(")")
        text = f"{text[:-1]}{USER_BEGINS}\n{user_wat}\n{USER_ENDS}\n)"
    return text


def build_module(
    *,
    pools: int,
    initial_pages: int = 1,
    max_pages: int = L.WASM32_MAX_PAGES,
    user_wat: str | None = None,
    guest_pages: int = 1,
    guest_max_pages: int | None = None,
    meta_max_pages: int = L.WASM32_MAX_PAGES,
    specialised: bool = True,
) -> GuestModule:
    """Build and validate a self-contained module with ``pools`` pool memories.

    ``initial_pages``/``max_pages`` apply to every pool (pools grow on demand
    as regions are created, up to ``max_pages``); ``guest_pages`` is the
    initial size of the default memory (``guest_max_pages`` its maximum,
    none by default). ``user_wat`` is spliced into the
    module as extra module fields (functions, globals, exports; no imports):
    it calls the ABI by name (``call $alloc``, ``call $load_u32``...) and its
    plain loads and stores hit the default memory. For browsers use
    ``max_pages=BROWSER_MAX_PAGES`` and ``meta_max_pages=BROWSER_META_MAX_PAGES``.
    ``specialised`` adds the per-pool typed accessors (12 exports per pool).
    """
    check_limits(pools, initial_pages, max_pages, meta_max_pages)
    wat = build_wat(pools, initial_pages, max_pages, meta_max_pages, guest_pages=guest_pages,
                    guest_max_pages=guest_max_pages, user_wat=user_wat, specialised=specialised)
    wasm = bytes(wasmtime.wat2wasm(wat))
    wasmtime.Module.validate(validation_engine(), wasm)
    return GuestModule(pools, initial_pages, max_pages, meta_max_pages, wat, wasm)
