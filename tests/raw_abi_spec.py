"""The raw ``tvm`` ABI as the issues state it, shared by the host and guest tests.

Written by hand, not read from the runtime or the ABI table, so a signature
drift in the generated runtime (either deployment) or in the table fails
guest instantiation (``tests/abi`` checks the table against it too).
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
    "count_byte": (("i64", "i32", "i32"), ("i64",)),
    "find_byte": (("i64", "i32", "i32"), ("i64",)),
    "popcount": (("i64", "i32"), ("i64",)),
    "min_max_u8": (("i64", "i32"), ("i32",)),
    "hash_fnv1a": (("i64", "i32", "i32"), ("i32",)),  # the hash goes to guest memory at the third argument
    "eq": (("i64", "i64", "i32"), ("i32",)),
    "fill": (("i64", "i32", "i32"), ("i32",)),
    "byte_histogram": (("i64", "i32", "i32"), ("i32",)),
    "last_error": ((), ("i32",)),
    # non-trapping typed access: try_load_*(h, off, out_ptr) -> code, try_store_*(h, off, v) -> code
    **{f"try_load_{t}": (("i64", "i32", "i32"), ("i32",)) for t in ("u8", "u16", "u32", "i64", "f32", "f64")},
    **{f"try_store_{t}": (("i64", "i32", v), ("i32",))
       for t, v in (("u8", "i32"), ("u16", "i32"), ("u32", "i32"), ("i64", "i64"), ("f32", "f32"), ("f64", "f64"))},
}

# Read-only regions and dirty-page tracking (control functions: served by TvmHost's runtime and the
# self-contained module; not by a guest linked for the host, whose runtime serves the data plane).
PROTECTION_ABI: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "protect": (("i32", "i32"), ("i32",)),
    "region_read_only": (("i32",), ("i32",)),
    "track_dirty": (("i32", "i32"), ("i32",)),
    "clear_dirty": (("i32",), ("i32",)),
    "next_dirty_page": (("i32", "i32"), ("i64",)),
    "discard": (("i64", "i32"), ("i32",)),
}

# Checkpoints on the host's raw ABI (the self-contained module leaves them to its embedder).
CHECKPOINT_ABI: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "checkpoint_add": (("i32",), ("i32",)),
    "checkpoint": ((), ("i64",)),
    "rollback": (("i64",), ("i32",)),
    "release_checkpoint": (("i64",), ("i32",)),
}
