"""How a malformed argument is refused: one rule and one wording for every layer.

Every public method's integer arguments (region ids, sizes, lengths, offsets, capacities, ``align``,
a fill byte) and handles are checked here, before anything runs, by the model (``RegionDirectory``,
so ``TvmHost``'s Python API) and the self-contained module's ``GuestInstance``; ``tvm-guest.js``'s
generated block carries the same templates (``guest/web.py``), so one mistake reads the same
everywhere. The rule, the model's (the specification):

- an integer argument is an ``int`` or a NumPy integer; ``bool`` is not one (``True`` passed as a size
  is a mistake, not 1), nor is a float, even a whole one, nor a string: ``TypeError``
  (:data:`NOT_AN_INTEGER`), in JavaScript a ``TypeError`` too (a Number with a fraction reads as
  ``float``, a string as ``str``, so the words match);
- an integer outside the argument's range is a ``ValueError`` (:data:`OUT_OF_RANGE`; JavaScript: a
  ``RangeError``); a region id has no range of its own: an id that names no live region, 0, 70000 or
  -1 alike, is ``RegionNotFound`` (``core.handle_faults.region_fault``), as for any id never created;
- ``align`` is a power of two in 1..2**31 (:data:`NOT_A_POWER_OF_TWO`);
- a handle is a :class:`Handle` (:data:`NOT_A_HANDLE`; JavaScript's handles are BigInts).
"""

from __future__ import annotations

import numpy as np

from .handle import Handle

NOT_AN_INTEGER = "{name} must be an integer, not {type} {value}"
"""``TypeError``: ``name`` (the parameter's name) got a value of another type (``type``, its type name; ``value``,
its ``repr``, cut at :data:`SHOWN_CHARS`)."""

OUT_OF_RANGE = "{name} must be in {minimum}..{maximum}, got {value}"
"""``ValueError``: an integer outside the parameter's range (both ends included)."""

NOT_A_POWER_OF_TWO = "{name} must be a power of two in {minimum}..{maximum}, got {value}"
"""``ValueError``: an alignment that is not a power of two in range."""

NOT_A_HANDLE = "{name} must be a Handle, not {type} {value}"
"""``TypeError``: a handle parameter got something else (a packed int included: ``Handle.unpack`` it)."""

NOT_BYTES = "{name} must be bytes-like (bytes, bytearray, memoryview), not {type} {value}"
"""``TypeError``: bytes to write got something else (a ``str`` must be encoded first). JavaScript's ``write``
takes an ArrayBuffer, typed array or DataView and words its own refusal."""

ARGUMENT_ERRORS: dict[str, str] = {
    "not_an_integer": NOT_AN_INTEGER, "out_of_range": OUT_OF_RANGE,
    "not_a_power_of_two": NOT_A_POWER_OF_TWO, "not_a_handle": NOT_A_HANDLE,
}
"""Every template above by name: what ``tvm-guest.js``'s generated block carries."""

MAX_ALIGN = 1 << 31
SHOWN_CHARS = 40


def shown(value: object) -> str:
    """``repr(value)``, cut to :data:`SHOWN_CHARS` characters (a wrong argument may be a large buffer)."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def is_integer(value: object) -> bool:
    """An ``int`` or NumPy integer, not a ``bool``."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def not_an_integer(name: str, value: object) -> TypeError:
    return TypeError(NOT_AN_INTEGER.format(name=name, type=type(value).__name__, value=shown(value)))


def integer(value: object, name: str, maximum: int, minimum: int = 0) -> int:
    """``value`` as an ``int`` in ``minimum..maximum``: ``TypeError`` for anything but an integer,
    ``ValueError`` outside the range (never truncated)."""
    if not is_integer(value):
        raise not_an_integer(name, value)
    number = int(value)  # type: ignore[call-overload]
    if not minimum <= number <= maximum:
        raise ValueError(OUT_OF_RANGE.format(name=name, minimum=minimum, maximum=maximum, value=number))
    return number


def region_id(value: object, name: str = "region_id") -> int:
    """A region id's type (any integer: one that names no live region is the layer's ``RegionNotFound``)."""
    if not is_integer(value):
        raise not_an_integer(name, value)
    return int(value)  # type: ignore[call-overload]


def alignment(value: object, name: str = "align", *, zero_is_default: bool = False) -> int:
    """A power of two in 1..2**31 (or 0 where the layer's ABI reads 0 as its default alignment: the
    self-contained module's ``alloc_aligned``)."""
    if not is_integer(value):
        raise not_an_integer(name, value)
    number = int(value)  # type: ignore[call-overload]
    if number == 0 and zero_is_default:
        return 0
    if not 1 <= number <= MAX_ALIGN or number & (number - 1):
        raise ValueError(NOT_A_POWER_OF_TWO.format(name=name, minimum=1, maximum=MAX_ALIGN, value=number))
    return number


def handle(value: object, name: str = "handle") -> Handle:
    """``value`` if it is a :class:`Handle`, else ``TypeError``."""
    if not isinstance(value, Handle):
        raise TypeError(NOT_A_HANDLE.format(name=name, type=type(value).__name__, value=shown(value)))
    return value


def byte_view(value: object, name: str = "data") -> memoryview:
    """``value``'s bytes as a flat ``memoryview`` (any buffer: bytes, bytearray, memoryview, NumPy arrays)."""
    try:
        return memoryview(value).cast("B")  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(NOT_BYTES.format(name=name, type=type(value).__name__, value=shown(value))) from None
