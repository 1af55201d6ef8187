"""A tiny kernel language: one definition per benchmark class, lowered once per memory model.

A kernel is a list of statements over typed locals (``i32``/``i64``) and
abstract memory operations on named buffers: ``Load``/``Store`` at an i32 byte
offset inside a buffer, ``Alloc`` from an arena buffer, and ``Scan`` (a
sequential pass over one or more buffers, which a bulk memory model may move
in chunks). How a buffer is reached -- a base address in one 32-bit memory,
an i64 address in a memory64, a TVM handle through the raw ABI, an imported
region memory, a C pointer -- is decided by the lowering (``lower_wat``,
``native_c``), never by the kernel. So every variant runs the same logic and
only the memory model differs.

Integer semantics are WebAssembly's: i32 and i64 wrap, shifts and
comparisons are unsigned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

I32 = "i32"
I64 = "i64"

# Load/store kinds: (width in bytes, value type).
KINDS: dict[str, tuple[int, str]] = {"u8": (1, I32), "u32": (4, I32), "u64": (8, I64)}

ARITH = {"add", "sub", "mul", "and", "or", "xor", "shl", "shr_u", "rem_u", "div_u"}
COMPARE = {"eq", "ne", "lt_u", "le_u", "gt_u", "ge_u"}


class Expr:
    """An expression of type ``ty``; Python operators build ``Bin`` nodes."""

    ty: str

    def _bin(self, op: str, other: Expr | int) -> Bin:
        return Bin(op, self, lift(other, self.ty))

    def __add__(self, o: Expr | int) -> Bin:
        return self._bin("add", o)

    def __sub__(self, o: Expr | int) -> Bin:
        return self._bin("sub", o)

    def __mul__(self, o: Expr | int) -> Bin:
        return self._bin("mul", o)

    def __and__(self, o: Expr | int) -> Bin:
        return self._bin("and", o)

    def __or__(self, o: Expr | int) -> Bin:
        return self._bin("or", o)

    def __xor__(self, o: Expr | int) -> Bin:
        return self._bin("xor", o)

    def __lshift__(self, o: Expr | int) -> Bin:
        return self._bin("shl", o)

    def __rshift__(self, o: Expr | int) -> Bin:
        return self._bin("shr_u", o)

    def __mod__(self, o: Expr | int) -> Bin:
        return self._bin("rem_u", o)

    def lt(self, o: Expr | int) -> Bin:
        return self._bin("lt_u", o)

    def ge(self, o: Expr | int) -> Bin:
        return self._bin("ge_u", o)

    def eq(self, o: Expr | int) -> Bin:
        return self._bin("eq", o)

    def ne(self, o: Expr | int) -> Bin:
        return self._bin("ne", o)

    def u64(self) -> Expr:
        """Zero-extend an i32 to i64 (identity on i64)."""
        return self if self.ty == I64 else Un("extend_u", self)

    def u32(self) -> Expr:
        """Wrap an i64 to i32 (identity on i32)."""
        return self if self.ty == I32 else Un("wrap", self)


@dataclass(frozen=True, eq=False)
class Const(Expr):
    value: int
    ty: str = I32


@dataclass(frozen=True, eq=False)
class Var(Expr):
    name: str
    ty: str = I32


@dataclass(frozen=True, eq=False)
class Bin(Expr):
    op: str
    a: Expr
    b: Expr

    def __post_init__(self) -> None:
        if self.op not in ARITH | COMPARE:
            raise ValueError(f"unknown operator {self.op}")
        if self.a.ty != self.b.ty:
            raise TypeError(f"{self.op}: operand types differ ({self.a.ty} vs {self.b.ty})")

    @property
    def ty(self) -> str:  # type: ignore[override]
        return I32 if self.op in COMPARE else self.a.ty


@dataclass(frozen=True, eq=False)
class Un(Expr):
    op: str  # extend_u (i32 -> i64), wrap (i64 -> i32), eqz

    a: Expr

    @property
    def ty(self) -> str:  # type: ignore[override]
        return {"extend_u": I64, "wrap": I32, "eqz": I32}[self.op]


@dataclass(frozen=True, eq=False)
class Select(Expr):
    """``a if cond else b`` (both evaluated, no branch)."""

    cond: Expr
    a: Expr
    b: Expr

    @property
    def ty(self) -> str:  # type: ignore[override]
        return self.a.ty


@dataclass(frozen=True, eq=False)
class Load(Expr):
    """Read ``kind`` at byte offset ``addr`` (i32) of ``buf``."""

    buf: str
    kind: str
    addr: Expr

    @property
    def ty(self) -> str:  # type: ignore[override]
        return KINDS[self.kind][1]


@dataclass(frozen=True, eq=False)
class Alloc(Expr):
    """Allocate ``size`` bytes from arena ``buf``: the i32 byte offset of the block in the arena."""

    buf: str
    size: int
    ty: str = I32


def lift(value: Expr | int, ty: str) -> Expr:
    return value if isinstance(value, Expr) else Const(value, ty)


class Stmt:
    pass


@dataclass(eq=False)
class Set(Stmt):
    var: Var
    value: Expr

    def __post_init__(self) -> None:
        if self.var.ty != self.value.ty:
            raise TypeError(f"set ${self.var.name}: {self.value.ty} into {self.var.ty}")


@dataclass(eq=False)
class Store(Stmt):
    buf: str
    kind: str
    addr: Expr
    value: Expr


@dataclass(eq=False)
class For(Stmt):
    """``for var in range(count)`` (``count`` is evaluated once)."""

    var: Var
    count: Expr
    body: list[Stmt]


@dataclass(eq=False)
class While(Stmt):
    cond: Expr
    body: list[Stmt]


@dataclass(eq=False)
class If(Stmt):
    cond: Expr
    then: list[Stmt]
    else_: list[Stmt] = field(default_factory=list)


@dataclass(eq=False)
class Scan(Stmt):
    """A sequential pass: for index in range(count), each ``Var`` gets element ``index``
    of its buffer (element width = the kind's width). A bulk model may stream it in chunks."""

    streams: Sequence[tuple[str, str, Var]]  # (buffer, kind, value variable)
    count: Expr
    index: Var
    body: list[Stmt]


# ---------------------------------------------------------------- kernels
@dataclass
class Buffer:
    """A named buffer the kernel reads or allocates from.

    ``access`` tells a model that copies data (tvm-bulk, guest) how the kernel
    touches it: ``stream`` (sequential, ``Scan`` only), ``random`` (anywhere,
    often), ``rare`` (seldom: not worth moving) or ``arena`` (allocated from
    with ``Alloc``, reset by the harness before each timed call; ``size`` is
    the bytes one repetition allocates).
    """

    name: str
    size: int
    access: str = "random"
    data: bytes | None = None
    segments: int = 1  # TVM variants keep each of these equal parts in a region of its own

    def __post_init__(self) -> None:
        if self.access not in ("stream", "random", "rare", "arena"):
            raise ValueError(f"unknown access kind {self.access}")
        if self.data is not None and len(self.data) != self.size:
            raise ValueError(f"buffer {self.name}: {len(self.data)} bytes of data for size {self.size}")
        if self.segments < 1 or (self.segments > 1 and (self.size % self.segments or (self.size // self.segments) & (self.size // self.segments - 1))):
            raise ValueError(f"buffer {self.name}: segments must split it into equal power-of-two parts")


@dataclass
class Kernel:
    """One benchmark kernel: ``body`` runs once per repetition and leaves its answer in ``result``."""

    cls: str
    size_bytes: int
    buffers: list[Buffer]
    body: list[Stmt]
    result: Var
    expected: int  # the answer of one repetition (mod 2**64), from a NumPy reference
    params: dict[str, int] = field(default_factory=dict)

    def buffer(self, name: str) -> Buffer:
        for buf in self.buffers:
            if buf.name == name:
                return buf
        raise KeyError(name)

    @property
    def arenas(self) -> list[Buffer]:
        return [b for b in self.buffers if b.access == "arena"]

    def locals(self) -> dict[str, str]:
        """Every local the body uses (name -> type), the result included."""
        found: dict[str, str] = {self.result.name: self.result.ty}

        def expr(e: Expr) -> None:
            if isinstance(e, Var):
                _declare(found, e)
            elif isinstance(e, Bin):
                expr(e.a)
                expr(e.b)
            elif isinstance(e, Un):
                expr(e.a)
            elif isinstance(e, Select):
                expr(e.cond)
                expr(e.a)
                expr(e.b)
            elif isinstance(e, Load):
                expr(e.addr)

        def stmts(body: list[Stmt]) -> None:
            for s in body:
                if isinstance(s, Set):
                    _declare(found, s.var)
                    expr(s.value)
                elif isinstance(s, Store):
                    expr(s.addr)
                    expr(s.value)
                elif isinstance(s, For):
                    _declare(found, s.var)
                    expr(s.count)
                    stmts(s.body)
                elif isinstance(s, While):
                    expr(s.cond)
                    stmts(s.body)
                elif isinstance(s, If):
                    expr(s.cond)
                    stmts(s.then)
                    stmts(s.else_)
                elif isinstance(s, Scan):
                    _declare(found, s.index)
                    for _, _, var in s.streams:
                        _declare(found, var)
                    expr(s.count)
                    stmts(s.body)

        stmts(self.body)
        return found


def _declare(found: dict[str, str], var: Var) -> None:
    if found.setdefault(var.name, var.ty) != var.ty:
        raise TypeError(f"local ${var.name} used as {found[var.name]} and {var.ty}")


def walk_exprs(body: list[Stmt]) -> list[Expr]:
    """Every expression of ``body``, outermost first (for analyses such as "which buffers are loaded")."""
    out: list[Expr] = []

    def expr(e: Expr) -> None:
        out.append(e)
        for child in (getattr(e, n) for n in ("a", "b", "cond", "addr") if hasattr(e, n)):
            if isinstance(child, Expr):
                expr(child)

    def stmts(ss: list[Stmt]) -> None:
        for s in ss:
            if isinstance(s, Set):
                expr(s.value)
            elif isinstance(s, Store):
                expr(s.addr)
                expr(s.value)
            elif isinstance(s, (For, Scan)):
                expr(s.count)
                stmts(s.body)
            elif isinstance(s, While):
                expr(s.cond)
                stmts(s.body)
            elif isinstance(s, If):
                expr(s.cond)
                stmts(s.then)
                stmts(s.else_)

    stmts(body)
    return out
