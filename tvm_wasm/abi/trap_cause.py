"""The typed error a failed typed access raises, worded the same on every layer.

A typed access (``load_*``/``store_*``) that fails raises one ``TvmError``
subclass (by its raw code) whose message has one shape everywhere, from the
ABI table's ``TYPED_ACCESS_ERROR`` and ``REGION_STATES``: ``TvmHost``'s runtime
(``typed_access_error`` there), and every embedder of the self-contained
module (or of a module linked into it with ``tvm-wasm link --target guest``),
which reads the cause from the module's trap-cause globals (``TRAP_CAUSE``):
``GuestInstance``, ``TvmHost.call``/``run_command`` (so ``tvm-wasm run``), and
``tvm-guest.js`` (whose generated block carries the same templates).

A module linked with the runtime keeps its name section, the runtime's
functions named ``tvm.<name>`` (``RUNTIME_FUNCTION_PREFIX``), so a typed error
read from the trap-cause globals also names the user function the access
failed in (``user_function``): ``... (in scan_records)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ..core.errors import TvmError, error_for_code
from ..core.handle import Handle
from ..core.handle_faults import handle_message, region_state
from .table import ABI, TRAP_CAUSE, TYPED_ACCESS_ERROR, bulk_cause

TRAP_SEQ = TRAP_CAUSE[0].name  # "trap_seq": moves with every typed-access trap
#: The linker names the runtime's functions ``tvm.<name>`` in a linked module's name section.
RUNTIME_FUNCTION_PREFIX = "tvm."


def user_function(trap: object) -> str | None:
    """The name of the innermost user function in ``trap``'s backtrace (a ``wasmtime.Trap``, innermost frame
    first): the first frame not named ``tvm.*``, in a module linked with the runtime (whose functions carry
    that prefix). None when the module is not such a one (no frame can be told apart from the runtime's) or
    the user function has no name; runtime code inlined into a user function counts as that function."""
    frames = list(getattr(trap, "frames", None) or [])
    if not any((f.func_name or "").startswith(RUNTIME_FUNCTION_PREFIX) for f in frames):
        return None
    for frame in frames:
        if not (frame.func_name or "").startswith(RUNTIME_FUNCTION_PREFIX):
            return frame.func_name or None
    return None


def exports_trap_cause(export_names: set[str] | frozenset[str]) -> bool:
    """Whether a module with these exports records trap causes (it exports every ``TRAP_CAUSE`` global)."""
    return all(field.name in export_names for field in TRAP_CAUSE)


def read_trap_cause(read_global: Callable[[str], int]) -> dict[str, int]:
    """Every trap-cause global, by name, read with ``read_global(name)``."""
    return {field.name: int(read_global(field.name)) for field in TRAP_CAUSE}


def access_error(code: int, function: int, handle: Handle, offset: int, width: int, *, state: str,
                 generation: int = 0, capacity: int | None = None, where: str | None = None) -> TvmError:
    """The ``TvmError`` subclass for ``code`` of a failed typed access of ABI function ``function``:
    ``handle`` passed, ``offset`` accessed (the handle's offset plus the relative one), ``width`` bytes.
    ``state`` is a key of ``REGION_STATES`` (``"absent"``: the id was never created, ``"destroyed"``,
    ``"live"`` at ``generation``, with ``capacity``); ``where``: the user function, when known."""
    name = ABI[function].name.format(k="k") if 0 <= function < len(ABI) else "typed access"
    words = region_state(state, handle.region_id, generation)
    message = TYPED_ACCESS_ERROR.format(function=name, handle=handle, width=width, offset=f"{offset:#x}", state=words)
    if where:
        message += f" (in {where})"
    return error_for_code(code, message, region_id=handle.region_id, generation=handle.generation, offset=offset,
                          length=width, capacity=capacity if state == "live" else None)


def trap_cause_error(cause: Mapping[str, int], trap: object = None) -> TvmError:
    """The typed error the trap-cause globals describe (a region not live has ``trap_capacity`` 0); given the
    ``wasmtime.Trap``, its message ends with the user function the access failed in (``user_function``)."""
    capacity, generation = cause["trap_capacity"], cause["trap_generation"]
    state = "live" if capacity else "destroyed" if generation else "absent"
    return access_error(
        cause["trap_code"], cause["trap_function"], Handle.unpack(cause["trap_handle"]),
        cause["trap_offset"] & 0xFFFF_FFFF_FFFF_FFFF, cause["trap_length"],
        state=state, generation=generation, capacity=capacity or None, where=user_function(trap),
    )


def bulk_error(code: int, operation: str, handle: Handle, length: int) -> TvmError:
    """The ``TvmError`` subclass for ``code`` of a failed bulk ``operation`` of ``length`` bytes at ``handle``
    whose region is live at the handle's generation (out of bounds, read-only, ...), worded by ``BULK_ERROR``
    with the code's meaning; a handle whose region is not is ``core.handle_faults.handle_fault``'s."""
    message = handle_message(operation, handle, bulk_cause(code), length)
    return error_for_code(code, message, region_id=handle.region_id, generation=handle.generation,
                          offset=handle.offset, length=length)
