"""Generate ``tvm.h``, the C header for guests, from the ABI table.

Every raw function becomes a declaration with
``__attribute__((import_module("tvm"), import_name("...")))`` and C types
(pointers for guest-memory arguments, ``tvm_handle``/``tvm_region`` for
handles and ids); error codes, region kinds, allocators, residency and
metrics become enums; handle helpers and typed wrappers are ``static
inline``. The header needs only the compiler's freestanding ``<stdint.h>``,
so it works for ``--target=wasm32 -nostdlib`` and ``--target=wasm32-wasi``.
"""

from __future__ import annotations

from ..abi.table import (
    ABI,
    ALLOCATORS,
    ERROR_CODES,
    METRICS,
    REGION_KINDS,
    RESIDENCIES,
    AbiFunction,
    EnumValue,
    OnError,
)

C_PARAM = {
    "handle": "tvm_handle", "region": "tvm_region", "u32": "uint32_t", "byte": "uint32_t", "ptr": "void *",
    "cptr": "const void *", "kind": "uint32_t", "allocator": "uint32_t", "metric": "uint32_t",
    "i32": "uint32_t", "i64": "int64_t", "f32": "float", "f64": "double",
}
C_RESULT = {
    "code": "int32_t", "handle": "tvm_handle", "region": "tvm_region", "i32": "int32_t", "u32": "uint32_t",
    "bool": "int32_t", "i64": "int64_t", "f32": "float", "f64": "double",
}
C_VALUE = {"u8": "uint8_t", "u16": "uint16_t", "u32": "uint32_t", "i64": "int64_t", "f32": "float", "f64": "double"}
C_LOADED = {"u8": "uint32_t", "u16": "uint32_t", "u32": "uint32_t", "i64": "int64_t", "f32": "float", "f64": "double"}

# Signed/unsigned twins a C programmer expects, over the ABI's widths: (name, C type, ABI width).
DERIVED = [("i8", "int8_t", "u8"), ("i16", "int16_t", "u16"), ("i32", "int32_t", "u32"), ("u64", "uint64_t", "i64")]



def c_params(entry: AbiFunction) -> list[str]:
    typed = entry.typed
    out = []
    for p in entry.params:
        if typed and p.name == "v":
            out.append(f"{C_LOADED[typed]} v")
        elif typed and p.name == "out":
            out.append(f"{C_VALUE[typed]} *out")
        elif p.name == "out" and entry.name == "hash_fnv1a":
            out.append("uint64_t *out")
        elif p.name == "out" and entry.name == "byte_histogram":
            out.append("uint32_t *out")
        elif p.name == "indices":
            out.append("const uint32_t *indices")
        else:
            ctype = C_PARAM[p.kind]
            out.append(f"{ctype}{p.name}" if ctype.endswith("*") else f"{ctype} {p.name}")
    return out or ["void"]


def c_result(entry: AbiFunction) -> str:
    if entry.result is None:
        return "void"
    typed = entry.typed
    if typed and entry.on_error is OnError.TRAP:
        return C_LOADED[typed]
    return C_RESULT[entry.result]


def comment(entry: AbiFunction) -> str:
    where = "both deployments" if entry.host and entry.module else (
        "the self-contained module only" if entry.module else "TvmHost only")
    errors = {
        OnError.CODE: "returns 0 or the error code (also in last_error)",
        OnError.TRAP: "traps on an invalid access",
        OnError.NEVER: "cannot fail",
        OnError.SENTINEL: ("returns -code (< 0) on failure" if entry.negative_codes
                           else f"returns {entry.sentinel} on failure, code in tvm_last_error()"),
    }[entry.on_error]
    text = f"/* {entry.summary}. Errors: {errors}. On {where}."
    if entry.absent_because:
        text += f" (Not on the other: {entry.absent_because}.)"
    return text.replace("*/", "* /") + " */"


def declaration(entry: AbiFunction) -> str:
    return (f'TVM_IMPORT("{entry.name}") {c_result(entry)} tvm_{entry.name}({", ".join(c_params(entry))});')


def enum(name: str, prefix: str, values: tuple[EnumValue, ...] | list[EnumValue]) -> list[str]:
    lines = [f"enum {name} {{"]
    for v in values:
        note = f" /* {v.meaning} */" if v.meaning else ""
        lines.append(f"    {prefix}{v.name} = {v.value},{note}")
    return [*lines, "};", ""]


def per_pool_macro() -> list[str]:
    family = [f for f in ABI if f.per_pool]
    lines = [
        "/* The self-contained module's per-pool typed accessors (built with specialised=True): no dispatch on",
        " * the pool; a handle of another pool traps (code 9). Declare them for pool K with TVM_POOL_ACCESSORS(K). */",
        "#define TVM_POOL_ACCESSORS(K) \\",
    ]
    for f in family:
        stem = f.name.replace("_p{k}", "")
        params = ", ".join(c_params(f))
        lines.append(f'    TVM_IMPORT("{stem}_p" #K) {c_result(f)} tvm_{stem}_p##K({params}); \\')
    lines[-1] = lines[-1].rstrip(" \\")
    return [*lines, ""]


def handle_helpers() -> list[str]:
    return [
        "/* Handles: region_id:16 | generation:16 | offset:32. A live handle is never 0. */",
        "static inline tvm_handle tvm_handle_pack(tvm_region region, uint32_t generation, uint32_t offset) {",
        "    return ((tvm_handle)(region & 0xFFFFu) << 48) | ((tvm_handle)(generation & 0xFFFFu) << 32) | offset;",
        "}",
        "static inline tvm_region tvm_handle_region(tvm_handle h) { return (tvm_region)(h >> 48); }",
        "static inline uint32_t tvm_handle_generation(tvm_handle h) { return (uint32_t)(h >> 32) & 0xFFFFu; }",
        "static inline uint32_t tvm_handle_offset(tvm_handle h) { return (uint32_t)h; }",
        "/* The handle `delta` bytes further. Saturates at offset 2^32 - 1, so an overflowing offset fails the",
        " * bounds check (code 3) instead of wrapping to the region's start. */",
        "static inline tvm_handle tvm_handle_add(tvm_handle h, uint32_t delta) {",
        "    uint64_t offset = (uint64_t)(uint32_t)h + delta;",
        "    if (offset > 0xFFFFFFFFu) offset = 0xFFFFFFFFu;",
        "    return (h & ~(tvm_handle)0xFFFFFFFFu) | offset;",
        "}",
        "",
    ]


def typed_wrappers() -> list[str]:
    lines = ["/* Typed wrappers: signed and unsigned twins of the ABI's widths (same checks, same traps). */"]
    for name, ctype, base in DERIVED:
        loaded = C_LOADED[base]
        lines += [
            f"static inline {ctype} tvm_load_{name}(tvm_handle h, uint32_t off) {{ "
            f"return ({ctype})tvm_load_{base}(h, off); }}",
            f"static inline void tvm_store_{name}(tvm_handle h, uint32_t off, {ctype} v) {{ "
            f"tvm_store_{base}(h, off, ({loaded})v); }}",
            f"static inline int32_t tvm_try_load_{name}(tvm_handle h, uint32_t off, {ctype} *out) {{ "
            f"return tvm_try_load_{base}(h, off, ({C_VALUE[base]} *)out); }}",
            f"static inline int32_t tvm_try_store_{name}(tvm_handle h, uint32_t off, {ctype} v) {{ "
            f"return tvm_try_store_{base}(h, off, ({loaded})v); }}",
        ]
    lines += [
        "",
        "/* The name of an error code (\"OK\", \"NOT_FOUND\", ...). */",
        "static inline const char *tvm_error_name(int32_t code) {",
        "    switch (code) {",
        *(f'    case {e.code}: return "{e.name}";' for e in ERROR_CODES),
        '    default: return "UNKNOWN";',
        "    }",
        "}",
        "",
    ]
    return lines


def generate() -> str:
    """The text of ``tvm.h``."""
    groups: dict[str, list[AbiFunction]] = {}
    for entry in ABI:
        if not entry.per_pool:
            groups.setdefault(entry.group, []).append(entry)
    lines = [
        "/* tvm.h: the raw `tvm` ABI of tvm-wasm for guests written in C (wasm32, freestanding or WASI).",
        " *",
        " * Generated from tvm_wasm/abi/table.py by `python -m tvm_wasm.sdk`; do not edit.",
        " * Build: clang --target=wasm32 -nostdlib -mbulk-memory -Wl,--no-entry -Wl,--export=NAME -I\"$(tvm-wasm sdk --include)\" ...",
        " *        clang --target=wasm32-wasi -I\"$(tvm-wasm sdk --include)\" ...",
        " *",
        " * Conventions: functions returning int32_t codes return 0 on success, else the error code, also left",
        " * in tvm_last_error(); value-returning functions return a sentinel no success can return (listed per",
        " * function) with the code in tvm_last_error(); typed loads/stores trap on an invalid access (the",
        " * tvm_try_* twins return the code instead); tvm_last_error() reads and clears the last code.",
        " */",
        "#ifndef TVM_WASM_TVM_H",
        "#define TVM_WASM_TVM_H",
        "",
        "#if !defined(__wasm32__)",
        '#error "tvm.h declares wasm32 imports: compile with --target=wasm32 or --target=wasm32-wasi"',
        "#endif",
        "",
        "#include <stdint.h>",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        '#define TVM_IMPORT(name) __attribute__((import_module("tvm"), import_name(name)))',
        "",
        "typedef uint64_t tvm_handle;",
        "typedef uint32_t tvm_region;",
        "",
        *enum("tvm_error", "TVM_", [EnumValue(e.code, e.name, e.meaning) for e in ERROR_CODES]),
        *enum("tvm_region_kind", "TVM_", REGION_KINDS),
        *enum("tvm_allocator", "TVM_ALLOC_", ALLOCATORS),
        *enum("tvm_residency", "TVM_", RESIDENCIES),
        *enum("tvm_metric", "TVM_METRIC_", METRICS),
    ]
    for group, entries in groups.items():
        lines.append(f"/* ---------------------------------------------------------------- {group} */")
        for entry in entries:
            lines += [comment(entry), declaration(entry)]
        lines.append("")
    lines += per_pool_macro()
    lines += handle_helpers()
    lines += typed_wrappers()
    lines += ["#ifdef __cplusplus", "}", "#endif", "", "#endif /* TVM_WASM_TVM_H */", ""]
    return "\n".join(lines)


