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

from collections.abc import Iterator

import wasmtime

from ..abi.trap_cause import RUNTIME_FUNCTION_PREFIX
from ..runtime import sections as S

NAME_SECTION = "name"
FUNCTION_NAMES = 1  # the name section's function-names subsection


def _subsections(payload: bytes) -> tuple[int, Iterator[tuple[int, bytes]]]:
    """(where the subsections start, each (id, payload)) of a custom section's payload named ``name``."""
    _, start = S.read_name(payload, 0)

    def walk() -> Iterator[tuple[int, bytes]]:
        pos = start
        while pos < len(payload):
            size, body = S.read_u32(payload, pos + 1)
            yield payload[pos], payload[body:body + size]
            pos = body + size

    return start, walk()


def _is_name_section(sid: int, payload: bytes) -> bool:
    return sid == 0 and S.read_name(payload, 0)[0] == NAME_SECTION


def _name_map(sub: bytes) -> dict[int, str]:
    count, pos = S.read_u32(sub, 0)
    names = {}
    for _ in range(count):
        index, pos = S.read_u32(sub, pos)
        names[index], pos = S.read_name(sub, pos)
    return names


def prefix_function_names(wasm: bytes, prefix: str = RUNTIME_FUNCTION_PREFIX) -> bytes:
    """``wasm`` with every function name in its name section prefixed by ``prefix`` (no name section:
    unchanged); every other section and subsection is kept byte for byte."""
    parts = []
    for sid, payload in S.sections(wasm):
        if _is_name_section(sid, payload):
            start, subs = _subsections(payload)
            body = bytearray(payload[:start])
            for kind, sub in subs:
                if kind == FUNCTION_NAMES:
                    names = _name_map(sub)
                    sub = S.u32(len(names)) + b"".join(S.u32(i) + S.name(prefix + n) for i, n in names.items())
                body += bytes([kind]) + S.u32(len(sub)) + sub
            payload = bytes(body)
        parts.append((sid, payload))
    return S.assemble(parts)


def function_names(wasm: bytes) -> dict[int, str]:
    """Function index -> name, from the module's name section (empty without one)."""
    for sid, payload in S.sections(wasm):
        if _is_name_section(sid, payload):
            for kind, sub in _subsections(payload)[1]:
                if kind == FUNCTION_NAMES:
                    return _name_map(sub)
    return {}


def runtime_internals(runtime_wasm: bytes, runtime: wasmtime.Module) -> frozenset[str]:
    """The runtime's own names a user module might try to import: its functions (name section), exports and
    imports; the ABI's are told apart by the ABI table first (``abi.imports.unserved_import``)."""
    names = set(function_names(runtime_wasm).values())
    names |= {e.name for e in runtime.exports} | {i.name for i in runtime.imports}
    return frozenset(names)
