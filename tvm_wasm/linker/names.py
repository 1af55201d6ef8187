"""Function names in a linked module: the runtime's under ``tvm.``, the user's as the user named them.

Binaryen keeps the name section through the merge and the inlining when asked
(``link.KEEP_NAMES``); before the merge the runtime's function names get the
prefix ``abi.trap_cause.RUNTIME_FUNCTION_PREFIX``, so a trap or a traceback
says ``tvm.store_u32`` for the runtime's code and ``scan`` for the user's, and
an embedder can find the user function a typed access failed in
(``abi.trap_cause.user_function``). Rule from the wasm spec's name section
(custom section ``name``, subsection 1: function names).
"""

from __future__ import annotations

import wasmtime

from ..abi.trap_cause import RUNTIME_FUNCTION_PREFIX
from ..runtime import sections as S

NAME_SECTION = "name"
FUNCTION_NAMES = 1  # the name section's function-names subsection


def _name_map(payload: bytes, edit: str) -> bytes:
    count, pos = S.read_u32(payload, 0)
    out = []
    for _ in range(count):
        index, pos = S.read_u32(payload, pos)
        text, pos = S.read_name(payload, pos)
        out.append(S.u32(index) + S.name(edit + text))
    return S.u32(count) + b"".join(out)


def prefix_function_names(wasm: bytes, prefix: str = RUNTIME_FUNCTION_PREFIX) -> bytes:
    """``wasm`` with every function name in its name section prefixed by ``prefix`` (no name section:
    unchanged); every other section is kept byte for byte."""
    parts = []
    for sid, payload in S.sections(wasm):
        if sid == 0:
            title, pos = S.read_name(payload, 0)
            if title == NAME_SECTION:
                body = bytearray(payload[:pos])
                while pos < len(payload):
                    kind = payload[pos]
                    size, start = S.read_u32(payload, pos + 1)
                    sub = payload[start:start + size]
                    if kind == FUNCTION_NAMES:
                        sub = _name_map(sub, prefix)
                    body += bytes([kind]) + S.u32(len(sub)) + sub
                    pos = start + size
                payload = bytes(body)
        parts.append((sid, payload))
    return S.assemble(parts)


def function_names(wasm: bytes) -> dict[int, str]:
    """Function index -> name, from the module's name section (empty without one)."""
    for sid, payload in S.sections(wasm):
        if sid != 0:
            continue
        title, pos = S.read_name(payload, 0)
        if title != NAME_SECTION:
            continue
        while pos < len(payload):
            kind = payload[pos]
            size, start = S.read_u32(payload, pos + 1)
            if kind == FUNCTION_NAMES:
                count, at = S.read_u32(payload, start)
                names = {}
                for _ in range(count):
                    index, at = S.read_u32(payload, at)
                    names[index], at = S.read_name(payload, at)
                return names
            pos = start + size
    return {}


def runtime_internals(runtime_wasm: bytes, runtime: wasmtime.Module) -> frozenset[str]:
    """The runtime's own names a user module might try to import: its functions (name section), exports and
    imports; the ABI's are told apart by the ABI table first (``abi.imports.unserved_import``)."""
    names = set(function_names(runtime_wasm).values())
    names |= {e.name for e in runtime.exports} | {i.name for i in runtime.imports}
    return frozenset(names)
