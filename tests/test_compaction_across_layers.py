"""Compaction answers the same on every embedder: ``compact_region`` returns the model's ``HandleRemap``
(region, old and new generation, old offset -> new offset of each live block) on ``RegionDirectory``,
``TvmHost`` and ``GuestInstance``, and ``migrate(handle)`` (a method of all three, and the raw ABI's
``migrate`` on ``TvmHost`` and the self-contained module) gives the same handle or the same error class.

``GuestInstance.compact_region`` returned None and ``TvmHost`` had no ``migrate``: a program written
against one embedder could not run on the other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tvm_wasm import Freelist, Handle, HandleRemap, RegionDirectory, RegionKind, TvmHost, TvmError
from tvm_wasm.guest import build_module
from tvm_wasm.guest.instance import GuestInstance

MIGRATE = """(module
  (import "tvm" "migrate" (func $migrate (param i64) (result i64)))
  (import "tvm" "last_error" (func $last_error (result i32)))
  (memory (export "memory") 1)
  (func (export "migrate") (param i64) (result i64) (call $migrate (local.get 0)))
  (func (export "last_error") (result i32) (call $last_error)))"""


def embedders() -> Iterator[object]:
    yield RegionDirectory()
    yield TvmHost(pools=1)
    yield GuestInstance(build_module(pools=1, max_pages=16))


def answer(embedder: object, handle: Handle) -> object:
    """``migrate``'s answer: the new handle, or the error's class name."""
    try:
        return embedder.migrate(handle)  # type: ignore[attr-defined]
    except TvmError as error:
        return type(error).__name__


def raw_answer(embedder: object, guest: object, handle: Handle) -> tuple[int, int]:
    """The raw ABI's ``migrate``: (packed result, last_error)."""
    if isinstance(embedder, TvmHost):
        return (int(embedder.call(guest, "migrate", handle.to_i64())),  # type: ignore[arg-type]
                int(embedder.call(guest, "last_error")))  # type: ignore[arg-type]
    assert isinstance(embedder, GuestInstance)
    return int(embedder.raw("migrate", handle.to_i64())), embedder.last_error()  # type: ignore[arg-type]


def run(embedder: object, sizes: list[int], freed: list[bool]) -> list[object]:
    """Blocks of ``sizes``, the ``freed`` ones deallocated, two compactions; every answer in order."""
    guest = embedder.instantiate(MIGRATE) if isinstance(embedder, TvmHost) else None
    r = embedder.create_region(RegionKind.OBJECT_ARENA, 1 << 16, allocator=Freelist())  # type: ignore[attr-defined]
    handles = [embedder.alloc(r, size) for size in sizes]  # type: ignore[attr-defined]
    for handle, gone in zip(handles, freed):
        if gone:
            embedder.dealloc(handle)  # type: ignore[attr-defined]
    answers: list[object] = []
    for _ in range(2):
        remap = embedder.compact_region(r)  # type: ignore[attr-defined]
        assert isinstance(remap, HandleRemap)
        answers.append(remap)
        probes = [*handles, *(h.with_offset(h.offset + 1) for h in handles), Handle(r, remap.new_generation, 3),
                  Handle(r, remap.old_generation - 1 or 1, 0), Handle(77, 1, 0)]
        for probe in probes:
            moved = answer(embedder, probe)
            answers.append(moved)
            if probe.generation == remap.old_generation and probe.region_id == r:
                assert remap.migrate(probe) == (moved if isinstance(moved, Handle) else None)
            if guest is not None or isinstance(embedder, GuestInstance):
                packed, code = raw_answer(embedder, guest, probe)
                assert (packed, code) == ((moved.to_i64(), 0) if isinstance(moved, Handle) else
                                          (0, {"StaleHandle": 2, "RegionNotFound": 1}[moved]))  # type: ignore[index]
        handles = [moved if isinstance(moved, Handle) else h
                   for h, moved in zip(handles, (answer(embedder, h) for h in handles))]
    embedder.destroy_region(r)  # type: ignore[attr-defined]
    answers.append(answer(embedder, handles[0]))
    return answers


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(1, 300), st.booleans()), min_size=1, max_size=12))
def test_compact_region_and_migrate_answer_alike_on_every_embedder(blocks: list[tuple[int, bool]]) -> None:
    sizes, freed = [size for size, _ in blocks], [gone for _, gone in blocks]
    results = []
    for embedder in embedders():
        try:
            results.append(run(embedder, sizes, freed))
        finally:
            getattr(embedder, "close", lambda: None)()
    assert results[0] == results[1] == results[2]


@pytest.mark.parametrize("make", [RegionDirectory, lambda: TvmHost(pools=1),
                                  lambda: GuestInstance(build_module(pools=1, max_pages=16))],
                         ids=["model", "TvmHost", "GuestInstance"])
def test_the_documented_forms_work_on_every_embedder(make) -> None:
    """The README's forms: ``h = remap.migrate(h)`` and ``h = embedder.migrate(h)`` after ``compact_region``."""
    e = make()
    r = e.create_region(RegionKind.OBJECT_ARENA, 4096, allocator=Freelist())
    a, b = e.alloc(r, 16), e.alloc(r, 16)
    e.write(b, b"second block....")
    e.dealloc(a)
    remap = e.compact_region(r)
    assert remap == HandleRemap(r, 1, 2, {16: 0})
    assert remap.migrate(b) == e.migrate(b) == Handle(r, 2, 0)
    assert e.read(e.migrate(b), 16) == b"second block...."
    assert e.migrate(e.migrate(b)) == Handle(r, 2, 0)  # a current handle comes back unchanged
