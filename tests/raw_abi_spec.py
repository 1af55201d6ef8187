"""The raw ``tvm`` ABI as the issues state it, shared by the host and guest tests.

Written from the issue text, not read from the runtime, so a signature drift
in the generated runtime (either deployment) fails guest instantiation.
"""

from __future__ import annotations

# name -> (params, results)
RAW_ABI: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "alloc": (("i32", "i32"), ("i64",)),
    "dealloc": (("i64",), ("i32",)),
    "read": (("i64", "i32", "i32"), ("i32",)),
    "write": (("i64", "i32", "i32"), ("i32",)),
    "copy": (("i64", "i64", "i32"), ("i32",)),
    "copy_region": (("i32", "i32", "i32", "i32", "i32"), ("i32",)),
    "read_gather": (("i64", "i32", "i32", "i32", "i32"), ("i32",)),
    "load_u8": (("i64", "i32"), ("i32",)),
    "load_u16": (("i64", "i32"), ("i32",)),
    "load_u32": (("i64", "i32"), ("i32",)),
    "load_i64": (("i64", "i32"), ("i64",)),
    "load_f32": (("i64", "i32"), ("f32",)),
    "load_f64": (("i64", "i32"), ("f64",)),
    "store_u8": (("i64", "i32", "i32"), ()),
    "store_u16": (("i64", "i32", "i32"), ()),
    "store_u32": (("i64", "i32", "i32"), ()),
    "store_i64": (("i64", "i32", "i64"), ()),
    "store_f32": (("i64", "i32", "f32"), ()),
    "store_f64": (("i64", "i32", "f64"), ()),
    "sum_u8": (("i64", "i32"), ("i64",)),
    "count_byte": (("i64", "i32", "i32"), ("i32",)),
    "find_byte": (("i64", "i32", "i32"), ("i32",)),
    "popcount": (("i64", "i32"), ("i64",)),
    "min_max_u8": (("i64", "i32"), ("i32",)),
    "hash_fnv1a": (("i64", "i32"), ("i64",)),
    "eq": (("i64", "i64", "i32"), ("i32",)),
    "fill": (("i64", "i32", "i32"), ("i32",)),
    "byte_histogram": (("i64", "i32", "i32"), ("i32",)),
    "last_error": ((), ("i32",)),
}
