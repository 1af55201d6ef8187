"""The benchmark classes: one kernel definition each, with data and a NumPy reference answer.

Every class is a function ``(size, seed) -> Kernel``. Its body is written once
in the kernel language of :mod:`.ir`; the variants differ only in how the
buffers are reached. Data comes from NumPy's seeded generator; random draws
inside kernels use a counter-based hash (murmur3's fmix32 of the draw index),
so the reference answer is computed vectorised and any variant that touched
the wrong bytes gives a different answer.

``spill_driven`` and ``beyond_4gib`` are not in this table: their memory models
differ by construction (see :mod:`.special`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .ir import (
    I64,
    Alloc,
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
    Var,
    While,
)

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
SENTINEL = 0xFFFF_FFFF
MASK64 = (1 << 64) - 1

acc = Var("acc", I64)


def _rng(seed: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFF_FFFF, salt])


def fmix32(x: Var, out: Var) -> list[Stmt]:
    """``out = fmix32(x)`` (murmur3 finaliser): a stateless hash, cheap in wasm and in NumPy."""
    return [
        Set(out, x ^ (x >> 16)),
        Set(out, out * 0x85EBCA6B),
        Set(out, out ^ (out >> 13)),
        Set(out, out * 0xC2B2AE35),
        Set(out, out ^ (out >> 16)),
    ]


def fmix32_np(x: np.ndarray) -> np.ndarray:
    h = x.astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    return h


def scaled(r: Expr, n: int) -> Expr:
    """``floor(r * n / 2**32)``: a uniform index below ``n`` from a 32-bit hash (no division)."""
    return ((r.u64() * Const(n, I64)) >> Const(32, I64)).u32()


def scaled_np(r: np.ndarray, n: int) -> np.ndarray:
    return ((r.astype(np.uint64) * np.uint64(n)) >> np.uint64(32)).astype(np.uint64)


def _sum64(values: np.ndarray) -> int:
    return int(values.astype(np.uint64).sum(dtype=np.uint64)) & MASK64


# ---------------------------------------------------------------- classes
def sequential_sum(size: int, seed: int) -> Kernel:
    """u64 sum of every byte, in order."""
    data = _rng(seed, 1).integers(0, 256, size, dtype=np.uint8)
    i, v = Var("i"), Var("v")
    body: list[Stmt] = [
        Set(acc, Const(0, I64)),
        Scan([("data", "u8", v)], Const(size), i, [Set(acc, acc + v.u64())]),
    ]
    return Kernel("sequential_sum", size, [Buffer("data", size, "stream", data.tobytes())], body, acc, _sum64(data))


def random_chase(size: int, seed: int) -> Kernel:
    """Follow a single random cycle through ``size/4`` u32 cells (dependent loads)."""
    cells = max(2, size // 4)
    order = np.concatenate(([0], 1 + _rng(seed, 2).permutation(cells - 1))).astype(np.uint32)
    nxt = np.empty(cells, dtype=np.uint32)
    nxt[order] = np.roll(order, -1)
    idx, k = Var("idx"), Var("k")
    body: list[Stmt] = [
        Set(acc, Const(0, I64)),
        Set(idx, Const(0)),
        For(k, Const(cells), [
            Set(idx, Load("next", "u32", idx << 2)),
            Set(acc, acc + (idx ^ k).u64()),
        ]),
    ]
    visited = np.roll(order, -1)  # the values idx takes, in order
    expected = _sum64(visited ^ np.arange(cells, dtype=np.uint32))
    return Kernel("random_chase", size, [Buffer("next", cells * 4, "random", nxt.tobytes())], body, acc, expected)


def list_walk(size: int, seed: int) -> Kernel:
    """Walk a linked list of ``size/8`` nodes ``[next u32, payload u32]`` laid out in random order."""
    nodes = max(2, size // 8)
    rng = _rng(seed, 3)
    order = rng.permutation(nodes).astype(np.uint32)
    payload = rng.integers(0, 1 << 32, nodes, dtype=np.uint32)
    table = np.empty((nodes, 2), dtype=np.uint32)
    table[order, 0] = np.append(order[1:], np.uint32(SENTINEL))
    table[:, 1] = payload
    p, step = Var("p"), Var("step")
    body: list[Stmt] = [
        Set(acc, Const(0, I64)),
        Set(p, Const(int(order[0]))),
        Set(step, Const(0)),
        While(p.ne(SENTINEL), [
            Set(acc, acc + (Load("list", "u32", (p << 3) + 4) ^ step).u64()),
            Set(step, step + 1),
            Set(p, Load("list", "u32", p << 3)),
        ]),
    ]
    expected = _sum64(payload[order] ^ np.arange(nodes, dtype=np.uint32))
    return Kernel("list_walk", size, [Buffer("list", nodes * 8, "random", table.tobytes())], body, acc, expected)


def growth(size: int, seed: int) -> Kernel:
    """Allocate ``size/32`` blocks of 32 bytes one at a time and touch each (write its header,
    read the previous block's). The heap grows: nothing is freed until the harness resets it."""
    count = max(2, size // 32)
    i, p, prev = Var("i"), Var("p"), Var("prev")
    body: list[Stmt] = [
        Set(acc, Const(0, I64)),
        Set(prev, Alloc("heap", 32)),
        Store("heap", "u32", prev, Const(0)),
        For(i, Const(count - 1), [
            Set(p, Alloc("heap", 32)),
            Store("heap", "u32", p, i + 1),
            Store("heap", "u32", p + 28, i),
            Set(acc, acc + Load("heap", "u32", prev).u64()),
            Set(prev, p),
        ]),
    ]
    expected = _sum64(np.arange(count - 1, dtype=np.uint64))
    del seed  # the class has no data
    return Kernel("growth", size, [Buffer("heap", count * 32, "arena")], body, acc, expected)


def multi_region(size: int, seed: int) -> Kernel:
    """Random u32 reads over three regions holding 60/30/10 % of the bytes, drawn 90/9/1 %."""
    words = max(4, size // 4)
    n_hot, n_warm = max(1, words * 6 // 10), max(1, words * 3 // 10)
    n_cold = max(1, words - n_hot - n_warm)
    rng = _rng(seed, 4)
    hot, warm, cold = (rng.integers(0, 1 << 32, n, dtype=np.uint32) for n in (n_hot, n_warm, n_cold))
    draws = words
    salt = seed & 0xFFFF_FFFF
    i, x, r, b, v = Var("i"), Var("x"), Var("r"), Var("b"), Var("v")
    body: list[Stmt] = [
        Set(acc, Const(0, I64)),
        For(i, Const(draws), [
            Set(x, i ^ salt),
            *fmix32(x, r),
            Set(b, ((r & 0xFFFF) * 100) >> 16),
            If(b.lt(90), [Set(v, Load("hot", "u32", scaled(r, n_hot) << 2))], [
                If(b.lt(99), [Set(v, Load("warm", "u32", scaled(r, n_warm) << 2))],
                   [Set(v, Load("cold", "u32", scaled(r, n_cold) << 2))]),
            ]),
            Set(acc, acc + v.u64()),
        ]),
    ]
    rr = fmix32_np(np.arange(draws, dtype=np.uint32) ^ np.uint32(salt))
    bucket = ((rr & 0xFFFF) * 100) >> 16
    values = np.where(
        bucket < 90, hot[scaled_np(rr, n_hot) % n_hot],
        np.where(bucket < 99, warm[scaled_np(rr, n_warm) % n_warm], cold[scaled_np(rr, n_cold) % n_cold]),
    )
    buffers = [
        Buffer("hot", n_hot * 4, "random", hot.tobytes()),
        Buffer("warm", n_warm * 4, "random", warm.tobytes()),
        Buffer("cold", n_cold * 4, "rare", cold.tobytes()),
    ]
    return Kernel("multi_region_90_9_1", size, buffers, body, acc, _sum64(values))


def columnar(size: int, seed: int) -> Kernel:
    """Two u32 columns of ``size/8`` rows: sum b where a < 2**31 (branch-free, about half the rows)."""
    rows = max(1, size // 8)
    rng = _rng(seed, 5)
    a = rng.integers(0, 1 << 32, rows, dtype=np.uint32)
    b_col = rng.integers(0, 1 << 32, rows, dtype=np.uint32)
    i, va, vb = Var("i"), Var("va"), Var("vb")
    body: list[Stmt] = [
        Set(acc, Const(0, I64)),
        Scan([("a", "u32", va), ("b", "u32", vb)], Const(rows), i, [
            Set(acc, acc + Select(va.lt(0x8000_0000), vb, Const(0)).u64()),
        ]),
    ]
    expected = _sum64(np.where(a < 0x8000_0000, b_col, 0))
    buffers = [Buffer("a", rows * 4, "stream", a.tobytes()), Buffer("b", rows * 4, "stream", b_col.tobytes())]
    return Kernel("columnar_filter_sum", size, buffers, body, acc, expected)


def jvm_gen(size: int, seed: int) -> Kernel:
    """Generational allocate-and-scan, JVM style: ``size/32`` objects of 32 bytes, each
    allocated on its own and linked to the previous one; a scan walks the list, sums the
    values and promotes every 8th object into an old generation (a 16-byte copy)."""
    objects = max(8, size // 32)
    i, p, prev, q, v, o = Var("i"), Var("p"), Var("prev"), Var("q"), Var("v"), Var("o")
    body: list[Stmt] = [
        Set(acc, Const(0, I64)),
        Set(prev, Const(SENTINEL)),
        For(i, Const(objects), [
            Set(p, Alloc("nursery", 32)),
            Store("nursery", "u32", p, prev),
            Store("nursery", "u32", p + 4, i),
            Store("nursery", "u32", p + 8, i ^ 0x5A5A5A5A),
            Set(prev, p),
        ]),
        Set(q, prev),
        While(q.ne(SENTINEL), [
            Set(v, Load("nursery", "u32", q + 4)),
            Set(acc, acc + v.u64()),
            If((v & 7).eq(0), [
                Set(o, Alloc("old", 16)),
                Store("old", "u32", o, v),
                Store("old", "u32", o + 4, Load("nursery", "u32", q + 8)),
                Set(acc, acc + Const(1 << 32, I64)),
            ]),
            Set(q, Load("nursery", "u32", q)),
        ]),
    ]
    survivors = (objects + 7) // 8
    expected = (_sum64(np.arange(objects, dtype=np.uint64)) + (survivors << 32)) & MASK64
    del seed
    buffers = [Buffer("nursery", objects * 32, "arena"), Buffer("old", survivors * 16, "arena")]
    return Kernel("jvm_gen_alloc_scan", size, buffers, body, acc, expected)


SEGMENTS = 16


def large_ws_probe(size: int, seed: int) -> Kernel:
    """Independent random u32 probes over a working set split into 16 blocks
    (16 regions for the TVM variants, one memory range elsewhere)."""
    words = max(SEGMENTS, size // 4)
    words -= words % SEGMENTS
    data = _rng(seed, 6).integers(0, 1 << 32, words, dtype=np.uint32)
    probes = words
    salt = (seed * 2654435761) & 0xFFFF_FFFF
    i, x, r = Var("i"), Var("x"), Var("r")
    body: list[Stmt] = [
        Set(acc, Const(0, I64)),
        For(i, Const(probes), [
            Set(x, i ^ salt),
            *fmix32(x, r),
            Set(acc, acc + Load("ws", "u32", scaled(r, words) << 2).u64()),
        ]),
    ]
    rr = fmix32_np(np.arange(probes, dtype=np.uint32) ^ np.uint32(salt))
    expected = _sum64(data[scaled_np(rr, words)])
    buf = Buffer("ws", words * 4, "random", data.tobytes(), segments=SEGMENTS)
    return Kernel("large_ws_probe", size, [buf], body, acc, expected)


CLASSES: dict[str, Callable[[int, int], Kernel]] = {
    "sequential_sum": sequential_sum,
    "random_chase": random_chase,
    "list_walk": list_walk,
    "growth": growth,
    "multi_region_90_9_1": multi_region,
    "columnar_filter_sum": columnar,
    "jvm_gen_alloc_scan": jvm_gen,
    "large_ws_probe": large_ws_probe,
}
