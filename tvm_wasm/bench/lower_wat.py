"""Lowering kernels to WebAssembly, one memory model per variant.

The statement and expression lowering is shared (:class:`Lowering`); a
subclass only says how a buffer is reached:

- ``m32``/``m32-checked``: every buffer at a fixed base of one 32-bit memory
  (the same module; ``m32-checked`` runs it on an engine without guard pages);
  arenas are bump pointers that grow the memory with ``memory.grow``.
- ``m64``: the same layout in a memory64 (i64 addresses).
- ``tvm``: every access is a raw-ABI typed load or store through a handle;
  arenas allocate each block with ``tvm.alloc``.
- ``tvm-bulk``: spans move with ``tvm.read``/``tvm.write``: streamed buffers in
  16 KiB chunks, random-access buffers copied in once per repetition, rarely
  touched buffers stay per-access, and arenas hand out blocks from 16 KiB
  thread-local allocation buffers (one ``tvm.alloc`` per chunk, written back
  with ``tvm.write`` when full and before returning to the host) -- the way a
  real runtime would use the ABI.
- ``tvm-mm``: every buffer is an imported region memory (``tvm.r{id}``) and
  read with native loads; a buffer in several regions needs a branch tree
  over its memories (a memory index is an immediate); arenas hand out blocks from 16 KiB TLABs taken with
  ``tvm.alloc`` (no write-back: the stores land in the region directly).

Each module exports ``run(reps) -> i64``: the kernel ``reps`` times, the sum of
the answers.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..runtime.wat import (
    Code,
    Func,
    Module,
    if_,
    import_func,
    import_memory,
    indent,
    per_pool,
)
from .ir import (
    I32,
    I64,
    KINDS,
    Alloc,
    Bin,
    Buffer,
    Const,
    Expr,
    For,
    If,
    Kernel,
    Load,
    Scan,
    Select,
    Set,
    Stmt,
    Store,
    Un,
    Var,
    While,
    walk_exprs,
)

PAGE = 65536
CHUNK = 16 * 1024  # bytes per streamed chunk (tvm-bulk)
TLAB = 16 * 1024  # bytes per thread-local allocation buffer (tvm-bulk)
HANDLE_TABLE = 0  # guest address of the handle table of segmented buffers

LOAD_OPS = {"u8": "i32.load8_u", "u32": "i32.load", "u64": "i64.load"}
STORE_OPS = {"u8": "i32.store8", "u32": "i32.store", "u64": "i64.store"}
ABI_KIND = {"u8": "u8", "u32": "u32", "u64": "i64"}
SHIFT = {1: 0, 4: 2, 8: 3}


def pages_for(nbytes: int) -> int:
    return max(1, -(-nbytes // PAGE))


def layout(buffers: Sequence[Buffer], sizes: dict[str, int], start: int = PAGE) -> tuple[dict[str, int], int]:
    """Page-aligned bases for ``buffers`` (bytes from ``sizes``) from ``start``; returns (bases, end)."""
    bases, at = {}, start
    for buf in buffers:
        bases[buf.name] = at
        at += pages_for(sizes[buf.name]) * PAGE
    return bases, at


class Lowering:
    """Shared lowering of statements and expressions; memory access is left to subclasses."""

    variant = "?"

    def __init__(self, kernel: Kernel, arena_caps: dict[str, int], *, pad: int = 0) -> None:
        self.k = kernel
        self.caps = arena_caps
        self.pad = pad  # code-layout padding: this many global stores at the top of run()
        self._labels = 0
        self._temps: list[tuple[str, str]] = []
        self.module = Module()
        self.funcs: list[Func] = []

    # ------------------------------------------------------------ helpers
    def label(self, stem: str) -> str:
        self._labels += 1
        return f"{stem}{self._labels}"

    def temp(self, ty: str) -> str:
        name = f"__t{len(self._temps)}"
        self._temps.append((name, ty))
        return f"${name}"

    def uses(self, cls: type) -> list[Expr]:
        return [e for e in walk_exprs(self.k.body) if isinstance(e, cls)]

    def stores(self) -> list[Store]:
        found: list[Store] = []

        def walk(body: list[Stmt]) -> None:
            for s in body:
                if isinstance(s, Store):
                    found.append(s)
                for child in ("body", "then", "else_"):
                    if hasattr(s, child):
                        walk(getattr(s, child))

        walk(self.k.body)
        return found

    def scans(self) -> list[Scan]:
        found: list[Scan] = []

        def walk(body: list[Stmt]) -> None:
            for s in body:
                if isinstance(s, Scan):
                    found.append(s)
                for child in ("body", "then", "else_"):
                    if hasattr(s, child):
                        walk(getattr(s, child))

        walk(self.k.body)
        return found

    def kinds_used(self) -> tuple[set[str], set[str]]:
        loads = {e.kind for e in self.uses(Load)}  # type: ignore[attr-defined]
        for scan in self.scans():
            loads |= {kind for _, kind, _ in scan.streams}
        return loads, {s.kind for s in self.stores()}

    # ------------------------------------------------------------ expressions
    def expr(self, e: Expr) -> Code:
        if isinstance(e, Const):
            value = e.value & (0xFFFF_FFFF if e.ty == I32 else (1 << 64) - 1)
            return [f"{e.ty}.const {value}"]
        if isinstance(e, Var):
            return [f"local.get ${e.name}"]
        if isinstance(e, Bin):
            return [*self.expr(e.a), *self.expr(e.b), f"{e.a.ty}.{e.op}"]
        if isinstance(e, Un):
            op = {"extend_u": "i64.extend_i32_u", "wrap": "i32.wrap_i64", "eqz": f"{e.a.ty}.eqz"}[e.op]
            return [*self.expr(e.a), op]
        if isinstance(e, Select):
            return [*self.expr(e.a), *self.expr(e.b), *self.expr(e.cond), "select"]
        if isinstance(e, Load):
            return self.load(e.buf, e.kind, e.addr)
        if isinstance(e, Alloc):
            return self.alloc(e.buf, e.size)
        raise TypeError(f"cannot lower {e!r}")

    # ------------------------------------------------------------ statements
    def stmts(self, body: list[Stmt]) -> Code:
        return [instr for s in body for instr in self.stmt(s)]

    def stmt(self, s: Stmt) -> Code:
        if isinstance(s, Set):
            return [*self.expr(s.value), f"local.set ${s.var.name}"]
        if isinstance(s, Store):
            return self.store(s.buf, s.kind, s.addr, s.value)
        if isinstance(s, For):
            return self.for_loop(s.var, s.count, self.stmts(s.body))
        if isinstance(s, While):
            top = self.label("w")
            return [
                f"block ${top}_exit",
                f"  loop ${top}",
                *indent([*self.expr(s.cond), "i32.eqz", f"br_if ${top}_exit", *self.stmts(s.body), f"br ${top}"], 4),
                "  end",
                "end",
            ]
        if isinstance(s, If):
            return if_(self.expr(s.cond), self.stmts(s.then), self.stmts(s.else_) or None)
        if isinstance(s, Scan):
            return self.scan(s)
        raise TypeError(f"cannot lower {s!r}")

    def for_loop(self, var: Var, count: Expr, body: Code) -> Code:
        top = self.label("f")
        n = self.temp(I32)
        return [
            *self.expr(count),
            f"local.set {n}",
            "i32.const 0",
            f"local.set ${var.name}",
            f"block ${top}_exit",
            f"  local.get {n}",
            "  i32.eqz",
            f"  br_if ${top}_exit",
            f"  loop ${top}",
            *indent(body, 4),
            f"    local.get ${var.name}",
            "    i32.const 1",
            "    i32.add",
            f"    local.tee ${var.name}",
            f"    local.get {n}",
            "    i32.lt_u",
            f"    br_if ${top}",
            "  end",
            "end",
        ]

    def scan(self, s: Scan) -> Code:
        """Default: a counted loop whose variables are per-element loads."""
        body: Code = []
        for buf, kind, var in s.streams:
            width = KINDS[kind][0]
            body += [*self.load(buf, kind, s.index << SHIFT[width] if width > 1 else s.index), f"local.set ${var.name}"]
        return self.for_loop(s.index, s.count, [*body, *self.stmts(s.body)])

    # ------------------------------------------------------------ the memory model
    def header(self) -> None:
        raise NotImplementedError

    def call_prologue(self) -> Code:
        return []

    def rep_prologue(self) -> Code:
        return []

    def rep_epilogue(self) -> Code:
        return []

    def call_epilogue(self) -> Code:
        return []

    def load(self, buf: str, kind: str, addr: Expr) -> Code:
        raise NotImplementedError

    def store(self, buf: str, kind: str, addr: Expr, value: Expr) -> Code:
        raise NotImplementedError

    def alloc(self, buf: str, size: int) -> Code:
        raise NotImplementedError

    # ------------------------------------------------------------ the module
    def render(self) -> str:
        self.header()
        body = self.stmts(self.k.body)  # lowered first: it allocates temps
        pad_fields, pad_code = layout_pad(self.pad)
        self.module.fields += pad_fields
        pro = [*pad_code, *self.call_prologue()]
        rep_pro, rep_epi = self.rep_prologue(), self.rep_epilogue()
        code = [
            *pro,
            "i64.const 0",
            "local.set $__total",
            "i32.const 0",
            "local.set $__rep",
            "block $reps_exit",
            "  local.get $reps",
            "  i32.eqz",
            "  br_if $reps_exit",
            "  loop $reps_loop",
            *indent([*rep_pro, *body, *rep_epi], 4),
            "    local.get $__total",
            f"    local.get ${self.k.result.name}",
            "    i64.add",
            "    local.set $__total",
            "    local.get $__rep",
            "    i32.const 1",
            "    i32.add",
            "    local.tee $__rep",
            "    local.get $reps",
            "    i32.lt_u",
            "    br_if $reps_loop",
            "  end",
            "end",
            *self.call_epilogue(),
            "local.get $__total",
        ]
        locals_ = [*self.k.locals().items(), ("__total", I64), ("__rep", I32), *self._temps, *self.extra_locals()]
        self.module.add(Func("run", [("reps", I32)], [I64], locals_, code, export="run"))
        for func in self.funcs:
            self.module.add(func)
        return self.module.render()

    def extra_locals(self) -> list[tuple[str, str]]:
        return []


def layout_pad(stores: int) -> tuple[list[str], Code]:
    """Code-layout padding: ``stores`` stores to distinct globals at the top of ``run`` (run once
    per call). They cannot be removed by the compiler and each adds a few bytes of machine
    code, so everything after them -- the kernel's loops -- moves by a pad-dependent number
    of bytes. Several layouts of one kernel sample where its hot loops fall relative to
    64-byte fetch lines, so alignment luck averages out (see THREATS.md)."""
    fields = [f"(global $__pad{j} (mut i32) (i32.const 0))" for j in range(stores)]
    code = [instr for j in range(stores) for instr in ("local.get $reps", f"global.set $__pad{j}")]
    return fields, code


# ---------------------------------------------------------------- plain linear memories
class LinearLowering(Lowering):
    """m32 / m64: all buffers in one memory at fixed bases; arenas grow the memory."""

    def __init__(self, kernel: Kernel, arena_caps: dict[str, int], *, memory64: bool = False, pad: int = 0) -> None:
        super().__init__(kernel, arena_caps, pad=pad)
        self.memory64 = memory64
        self.variant = "m64" if memory64 else "m32"
        fixed = [b for b in kernel.buffers if b.access != "arena"]
        sizes = {b.name: b.size for b in fixed} | dict(arena_caps)
        self.bases, self.fixed_end = layout(fixed, sizes)
        arena_bases, self.end = layout(kernel.arenas, sizes, self.fixed_end)
        self.bases |= arena_bases
        self.ptr = I64 if memory64 else I32

    def address(self, addr: Expr) -> Code:
        return [*self.expr(addr), "i64.extend_i32_u"] if self.memory64 else self.expr(addr)

    def header(self) -> None:
        index = "i64 " if self.memory64 else ""
        max_pages = 65536 if not self.memory64 else 1 << 18  # 16 GiB: V8's memory64 limit
        self.module.fields.append(f'(memory $mem (export "memory") {index}{self.fixed_end // PAGE} {max_pages})')
        for arena in self.k.arenas:
            self.module.fields.append(f'(global $bump_{arena.name} (export "bump_{arena.name}") (mut i32) (i32.const 0))')
        if self.k.arenas:
            p = self.ptr
            grow = [
                "local.get $end",
                f"{p}.const 65535",
                f"{p}.add",
                f"{p}.const 16",
                f"{p}.shr_u",
                "memory.size",
                f"{p}.sub",
                "memory.grow",
                f"{p}.const -1",
                f"{p}.eq",
                "if",
                "  unreachable",
                "end",
            ]
            self.funcs.append(Func("grow", [("end", p)], [], [], grow))

    def load(self, buf: str, kind: str, addr: Expr) -> Code:
        return [*self.address(addr), f"{LOAD_OPS[kind]} offset={self.bases[buf]}"]

    def store(self, buf: str, kind: str, addr: Expr, value: Expr) -> Code:
        return [*self.address(addr), *self.expr(value), f"{STORE_OPS[kind]} offset={self.bases[buf]}"]

    def alloc(self, buf: str, size: int) -> Code:
        t, end = self.temp(I32), self.temp(I32)
        p = self.ptr
        ext = ["i64.extend_i32_u"] if self.memory64 else []
        return [
            f"global.get $bump_{buf}",
            f"local.tee {t}",
            f"i32.const {size}",
            "i32.add",
            f"local.tee {end}",
            f"i32.const {self.caps[buf]}",
            "i32.gt_u",
            "if",
            "  unreachable",  # the arena is full (the same capacity as the TVM region)
            "end",
            f"local.get {end}",
            f"global.set $bump_{buf}",
            f"local.get {end}",
            *ext,
            f"{p}.const {self.bases[buf]}",
            f"{p}.add",
            "memory.size",
            f"{p}.const 16",
            f"{p}.shl",
            f"{p}.gt_u",
            "if",
            f"  local.get {end}",
            *[f"  {x}" for x in ext],
            f"  {p}.const {self.bases[buf]}",
            f"  {p}.add",
            "  call $grow",
            "end",
            f"local.get {t}",
        ]


# ---------------------------------------------------------------- TVM through the raw ABI
class HandleLowering(Lowering):
    """Shared by the raw-ABI variants: handles in locals (from exported globals), a
    handle table in guest memory for buffers split across several regions, and TLAB
    allocation (``write_back``: TLABs are built in guest memory and written to the region)."""

    write_back = False

    def __init__(self, kernel: Kernel, arena_caps: dict[str, int], *, pad: int = 0) -> None:
        super().__init__(kernel, arena_caps, pad=pad)
        self.segmented = [b for b in kernel.buffers if b.segments > 1]
        self.table_at: dict[str, int] = {}
        at = HANDLE_TABLE
        for b in self.segmented:
            self.table_at[b.name] = at
            at += 8 * b.segments
        self.imports: dict[str, str] = {}

    def need(self, name: str, params: list[str], results: list[str]) -> str:
        if name not in self.imports:
            self.imports[name] = import_func("tvm", name, f"tvm_{name}", params, results)
        return f"$tvm_{name}"

    def handle_globals(self) -> None:
        for b in self.k.buffers:
            if b.segments == 1:
                self.module.fields.append(f'(global $gh_{b.name} (export "h_{b.name}") (mut i64) (i64.const 0))')
            if b.access == "arena":
                self.module.fields.append(f'(global $gr_{b.name} (export "r_{b.name}") (mut i32) (i32.const 0))')

    def handle_locals(self) -> list[tuple[str, str]]:
        return [(f"h_{b.name}", I64) for b in self.k.buffers if b.segments == 1]

    def call_prologue(self) -> Code:
        return [c for b in self.k.buffers if b.segments == 1 for c in (f"global.get $gh_{b.name}", f"local.set $h_{b.name}")]

    def extra_locals(self) -> list[tuple[str, str]]:
        return self.handle_locals()

    def render(self) -> str:
        text = super().render()
        # imports must come first; they are only known once the body is lowered
        head, rest = text.split("\n", 1)
        return "\n".join([head, *(f"  {imp}" for imp in self.imports.values()), rest])

    def segment_handle(self, buf: Buffer, addr_local: str) -> Code:
        """Push the handle of the segment ``addr`` falls in (from the guest handle table)."""
        shift = (buf.size // buf.segments).bit_length() - 1
        return [
            f"local.get {addr_local}",
            f"i32.const {shift}",
            "i32.shr_u",
            "i32.const 3",
            "i32.shl",
            f"i64.load offset={self.table_at[buf.name]}",
        ]

    def segment_offset(self, buf: Buffer, addr_local: str) -> Code:
        return [f"local.get {addr_local}", f"i32.const {buf.size // buf.segments - 1}", "i32.and"]

    def abi_load(self, buf: str, kind: str, addr: Expr) -> Code:
        fn = self.need(f"load_{ABI_KIND[kind]}", [I64, I32], [KINDS[kind][1]])
        b = self.k.buffer(buf)
        if b.segments == 1:
            return [f"local.get $h_{buf}", *self.expr(addr), f"call {fn}"]
        a = self.temp(I32)
        return [*self.expr(addr), f"local.set {a}", *self.segment_handle(b, a), *self.segment_offset(b, a), f"call {fn}"]

    def abi_store(self, buf: str, kind: str, addr: Expr, value: Expr) -> Code:
        fn = self.need(f"store_{ABI_KIND[kind]}", [I64, I32, KINDS[kind][1]], [])
        if self.k.buffer(buf).segments != 1:
            raise NotImplementedError("stores into segmented buffers")
        return [f"local.get $h_{buf}", *self.expr(addr), *self.expr(value), f"call {fn}"]

    def abi_alloc(self, buf: str, size: int) -> Code:
        fn = self.need("alloc", [I32, I32], [I64])
        h = self.temp(I64)
        return [
            f"global.get $gr_{buf}",
            f"i32.const {size}",
            f"call {fn}",
            f"local.tee {h}",
            "i64.eqz",
            "if",
            "  unreachable",  # allocation failed
            "end",
            f"local.get {h}",
            "i32.wrap_i64",
        ]

    def refill_func(self, a: str) -> Func:
        """(Write back the current TLAB and) take a new one from the region: one ``tvm.alloc``."""
        fn = self.need("alloc", [I32, I32], [I64])
        body = [
            *(self.flush(a) if self.write_back else []),
            f"global.get $gr_{a}",
            f"i32.const {TLAB}",
            f"call {fn}",
            "local.tee $h",
            "i64.eqz",
            "if",
            "  unreachable",
            "end",
            "local.get $h",
            "i32.wrap_i64",
            "local.tee $c",
            f"global.set $tl_{a}",
            "local.get $c",
            f"global.set $tlf_{a}",
            "local.get $c",
            f"i32.const {TLAB}",
            "i32.add",
            f"global.set $tle_{a}",
        ]
        # the flush reads $h_{a}: the refill function takes it as a parameter
        params = [(f"h_{a}", I64)] if self.write_back else []
        return Func(f"refill_{a}", params, [], [("h", I64), ("c", I32)], body)

    def tlab_globals(self) -> None:
        for a in self.k.arenas:
            for g in ("tl", "tle", "tlf"):
                self.module.fields.append(f'(global ${g}_{a.name} (export "{g}_{a.name}") (mut i32) (i32.const 0))')

    def tlab_alloc(self, buf: str, size: int) -> Code:
        """Bump-allocate in the guest from a 16 KiB thread-local allocation buffer (TLAB) that
        ``tvm.alloc`` hands out; a block never straddles two TLABs."""
        if size > TLAB:
            raise ValueError(f"blocks of {size} bytes do not fit a {TLAB}-byte TLAB")
        if not any(f.name == f"refill_{buf}" for f in self.funcs):
            self.funcs.append(self.refill_func(buf))
        t = self.temp(I32)
        return [
            f"global.get $tl_{buf}",
            f"i32.const {size}",
            "i32.add",
            f"global.get $tle_{buf}",
            "i32.gt_u",
            "if",
            *([f"  local.get $h_{buf}"] if self.write_back else []),
            f"  call $refill_{buf}",
            "end",
            f"global.get $tl_{buf}",
            f"local.tee {t}",
            f"i32.const {size}",
            "i32.add",
            f"global.set $tl_{buf}",
            f"local.get {t}",
        ]

    def flush(self, a: str) -> Code:
        raise NotImplementedError("only write-back lowerings flush")

    def guest_memory(self, pages: int) -> None:
        self.module.fields.append(f'(memory $mem (export "memory") {pages})')


class TvmLowering(HandleLowering):
    """``tvm``: per-access typed loads and stores and per-block ``alloc`` through the raw ABI."""

    variant = "tvm"

    def header(self) -> None:
        self.guest_memory(1)
        self.handle_globals()

    def load(self, buf: str, kind: str, addr: Expr) -> Code:
        return self.abi_load(buf, kind, addr)

    def store(self, buf: str, kind: str, addr: Expr, value: Expr) -> Code:
        return self.abi_store(buf, kind, addr, value)

    def alloc(self, buf: str, size: int) -> Code:
        return self.abi_alloc(buf, size)


class BulkLowering(HandleLowering):
    """``tvm-bulk``: move spans with ``read``/``write``, compute on guest memory."""

    variant = "tvm-bulk"
    write_back = True

    def __init__(self, kernel: Kernel, arena_caps: dict[str, int], *, pad: int = 0) -> None:
        super().__init__(kernel, arena_caps, pad=pad)
        sizes: dict[str, int] = {}
        for b in kernel.buffers:
            if b.access == "stream":
                sizes[b.name] = CHUNK
            elif b.access == "random":
                sizes[b.name] = b.size
            elif b.access == "arena":
                sizes[b.name] = arena_caps[b.name]
        placed = [b for b in kernel.buffers if b.name in sizes]
        self.bases, self.end = layout(placed, sizes)

    def header(self) -> None:
        self.guest_memory(self.end // PAGE)
        self.handle_globals()
        self.tlab_globals()

    def checked(self, call: Code) -> Code:
        return [*call, "if", "  unreachable", "end"]  # a non-zero ABI code fails the run

    def read_into(self, handle: Code, dst: int | Code, length: int | Code) -> Code:
        fn = self.need("read", [I64, I32, I32], [I32])
        dst_code = [f"i32.const {dst}"] if isinstance(dst, int) else dst
        len_code = [f"i32.const {length}"] if isinstance(length, int) else length
        return self.checked([*handle, *dst_code, *len_code, f"call {fn}"])

    def rep_prologue(self) -> Code:
        """Random-access buffers come in whole, once per repetition."""
        code: Code = []
        for b in self.k.buffers:
            if b.access != "random":
                continue
            if b.segments == 1:
                code += self.read_into([f"local.get $h_{b.name}"], self.bases[b.name], b.size)
            else:
                seg = b.size // b.segments
                for k in range(b.segments):
                    handle = [f"i32.const {self.table_at[b.name] + 8 * k}", "i64.load"]
                    code += self.read_into(handle, self.bases[b.name] + k * seg, seg)
        return code

    def flush(self, a: str) -> Code:
        """Write the arena bytes allocated since the last flush back to the region."""
        fn = self.need("write", [I64, I32, I32], [I32])
        return [
            f"global.get $tl_{a}",
            f"global.get $tlf_{a}",
            "i32.ne",
            "if",
            *indent(self.checked([
                f"local.get $h_{a}",
                f"global.get $tlf_{a}",
                "i64.extend_i32_u",
                "i64.add",
                f"global.get $tlf_{a}",
                f"i32.const {self.bases[a]}",
                "i32.add",
                f"global.get $tl_{a}",
                f"global.get $tlf_{a}",
                "i32.sub",
                f"call {fn}",
            ])),
            f"  global.get $tl_{a}",
            f"  global.set $tlf_{a}",
            "end",
        ]

    def call_epilogue(self) -> Code:
        """Write back what the TLABs hold before control returns to the host (a full TLAB is
        written back when it is replaced): the regions are current whenever anyone else can look."""
        return [c for a in self.k.arenas for c in self.flush(a.name)]

    def alloc(self, buf: str, size: int) -> Code:
        return self.tlab_alloc(buf, size)

    def load(self, buf: str, kind: str, addr: Expr) -> Code:
        access = self.k.buffer(buf).access
        if access == "rare":
            return self.abi_load(buf, kind, addr)
        if access == "stream":
            raise NotImplementedError(f"{buf} is streamed: read it with Scan")
        return [*self.expr(addr), f"{LOAD_OPS[kind]} offset={self.bases[buf]}"]

    def store(self, buf: str, kind: str, addr: Expr, value: Expr) -> Code:
        if self.k.buffer(buf).access != "arena":
            return self.abi_store(buf, kind, addr, value)
        return [*self.expr(addr), *self.expr(value), f"{STORE_OPS[kind]} offset={self.bases[buf]}"]

    def scan(self, s: Scan) -> Code:
        """Chunks of up to 16 KiB per stream: read them in, run the body over guest memory."""
        width = max(KINDS[kind][0] for _, kind, _ in s.streams)
        per_chunk = CHUNK // width
        top, inner = self.label("chunk"), self.label("elem")
        i, n, j, count = self.temp(I32), self.temp(I32), self.temp(I32), self.temp(I32)
        reads: Code = []
        loads: Code = []
        for buf, kind, var in s.streams:
            sh = SHIFT[KINDS[kind][0]]
            handle = [f"local.get $h_{buf}", f"local.get {i}", f"i32.const {sh}", "i32.shl", "i64.extend_i32_u", "i64.add"]
            reads += self.read_into(handle, self.bases[buf], [f"local.get {n}", f"i32.const {sh}", "i32.shl"])
            loads += [f"local.get {j}", f"i32.const {sh}", "i32.shl", f"{LOAD_OPS[kind]} offset={self.bases[buf]}",
                      f"local.set ${var.name}"]
        elem = [
            *loads,
            f"local.get {i}",
            f"local.get {j}",
            "i32.add",
            f"local.set ${s.index.name}",
            *self.stmts(s.body),
            f"local.get {j}",
            "i32.const 1",
            "i32.add",
            f"local.tee {j}",
            f"local.get {n}",
            "i32.lt_u",
            f"br_if ${inner}",
        ]
        chunk = [
            f"local.get {i}",
            f"local.get {count}",
            "i32.ge_u",
            f"br_if ${top}_exit",
            f"i32.const {per_chunk}",
            f"local.get {count}",
            f"local.get {i}",
            "i32.sub",
            "local.tee " + n,
            f"i32.const {per_chunk}",
            f"local.get {n}",
            f"i32.const {per_chunk}",
            "i32.lt_u",
            "select",
            f"local.set {n}",
            *reads,
            "i32.const 0",
            f"local.set {j}",
            f"loop ${inner}",
            *indent(elem),
            "end",
            f"local.get {i}",
            f"local.get {n}",
            "i32.add",
            f"local.set {i}",
            f"br ${top}",
        ]
        return [
            *self.expr(s.count),
            f"local.set {count}",
            "i32.const 0",
            f"local.set {i}",
            f"block ${top}_exit",
            f"  loop ${top}",
            *indent(chunk, 4),
            "  end",
            "end",
        ]


class MMLowering(HandleLowering):
    """``tvm-mm``: native loads on imported region memories ``tvm.r{id}``."""

    variant = "tvm-mm"

    def __init__(self, kernel: Kernel, arena_caps: dict[str, int], region_ids: dict[str, list[int]],
                 region_pages: dict[str, int], *, pad: int = 0) -> None:
        super().__init__(kernel, arena_caps, pad=pad)
        self.region_ids = region_ids
        self.region_pages = region_pages

    def header(self) -> None:
        for b in self.k.buffers:
            pages = self.region_pages[b.name]
            for k, rid in enumerate(self.region_ids[b.name]):
                ident = f"m_{b.name}" if b.segments == 1 else f"m_{b.name}_{k}"
                self.module.imports.append(import_memory("tvm", f"r{rid}", ident, pages, pages))
        self.guest_memory(1)
        self.handle_globals()
        self.tlab_globals()

    def call_prologue(self) -> Code:
        return []

    def extra_locals(self) -> list[tuple[str, str]]:
        return []

    def load(self, buf: str, kind: str, addr: Expr) -> Code:
        b = self.k.buffer(buf)
        op = LOAD_OPS[kind]
        if b.segments == 1:
            return [*self.expr(addr), f"{op} $m_{buf}"]
        a, seg = self.temp(I32), self.temp(I32)
        done = self.label("seg")
        shift = (b.size // b.segments).bit_length() - 1
        return [
            *self.expr(addr),
            f"local.tee {a}",
            f"i32.const {shift}",
            "i32.shr_u",
            f"local.set {seg}",
            f"block ${done} (result {KINDS[kind][1]})",
            *indent(per_pool(b.segments, lambda k: [*self.segment_offset(b, a), f"{op} $m_{buf}_{k}", f"br ${done}"],
                             [f"local.get {seg}"], ["unreachable"])),
            "end",
        ]

    def store(self, buf: str, kind: str, addr: Expr, value: Expr) -> Code:
        if self.k.buffer(buf).segments != 1:
            raise NotImplementedError("stores into segmented buffers")
        return [*self.expr(addr), *self.expr(value), f"{STORE_OPS[kind]} $m_{buf}"]

    def alloc(self, buf: str, size: int) -> Code:
        return self.tlab_alloc(buf, size)


def lower(variant: str, kernel: Kernel, arena_caps: dict[str, int], **kwargs: object) -> str:
    """WAT for ``kernel`` under ``variant``'s memory model."""
    if variant in ("m32", "m32-checked"):
        return LinearLowering(kernel, arena_caps).render()
    if variant == "m64":
        return LinearLowering(kernel, arena_caps, memory64=True).render()
    if variant == "tvm":
        return TvmLowering(kernel, arena_caps).render()
    if variant == "tvm-bulk":
        return BulkLowering(kernel, arena_caps).render()
    if variant == "tvm-mm":
        return MMLowering(kernel, arena_caps, **kwargs).render()  # type: ignore[arg-type]
    raise ValueError(f"no WAT lowering for variant {variant}")
