"""The typed error a self-contained module's trap-cause globals (``TRAP_CAUSE``) describe.

A typed access that fails inside the self-contained module (or a module
linked into it with ``tvm-wasm link --target guest``) records its cause in
exported globals, then traps. Every embedder that runs such a module maps the
trap back the same way: ``GuestInstance``, and ``TvmHost.call`` /
``run_command`` (so ``tvm-wasm run``) for a linked module run on the host.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..core.errors import TvmError, error_for_code
from ..core.handle import Handle
from .table import ABI, TRAP_CAUSE

TRAP_SEQ = TRAP_CAUSE[0].name  # "trap_seq": moves with every typed-access trap


def exports_trap_cause(export_names: set[str] | frozenset[str]) -> bool:
    """Whether a module with these exports records trap causes (it exports every ``TRAP_CAUSE`` global)."""
    return all(field.name in export_names for field in TRAP_CAUSE)


def read_trap_cause(read_global: Callable[[str], int]) -> dict[str, int]:
    """Every trap-cause global, by name, read with ``read_global(name)``."""
    return {field.name: int(read_global(field.name)) for field in TRAP_CAUSE}


def trap_cause_error(cause: Mapping[str, int]) -> TvmError:
    """The ``TvmError`` subclass (by ``trap_code``) with a message naming the function, handle, offset,
    width and the region's state, and the error's context fields filled in."""
    handle = Handle.unpack(cause["trap_handle"])
    function = cause["trap_function"]
    name = ABI[function].name.format(k="k") if 0 <= function < len(ABI) else "typed access"
    generation = cause["trap_generation"]
    state = f"region r{handle.region_id} at generation {generation}" if generation else f"no region r{handle.region_id}"
    offset, width = cause["trap_offset"] & 0xFFFF_FFFF_FFFF_FFFF, cause["trap_length"]
    capacity = cause["trap_capacity"] or None
    return error_for_code(
        cause["trap_code"],
        f"{name}({handle}) accessing {width} byte(s) at offset {offset:#x}: {state}",
        region_id=handle.region_id, generation=handle.generation, offset=offset, length=width, capacity=capacity,
    )
