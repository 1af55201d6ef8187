"""Durable leases of (region id, generation) space, so a later process never accepts an old handle.

A handle is ``(region id, generation, offset)``; a directory refuses a handle
whose generation is not its region's, which is only sound while no
``(id, generation)`` pair is handed out twice. Within one process the
directory guarantees it (generations only grow, destroyed ids are
tombstoned). Across processes it needs memory: a process that reopens a
``FileCheckpointStore`` (to ``restore_saved`` what an earlier process saved)
starts a fresh directory, whose first regions would again be ``r1@1``,
``r2@1``..., so a handle the earlier process wrote to a file would be
accepted and read the new process's bytes.

A **lease** is that memory: ``high`` (every id handed out is below it) and,
per id below it, the last generation this store's processes may have handed
out (``generations[id]``). The directory extends the lease durably *before*
it hands out an ``(id, generation)`` beyond it, so a process killed at any
instant leaves a lease covering everything it handed out. A directory opened
on a store with a lease starts above it: each leased id is a tombstone at
``generations[id] + 1`` (retired when that is past 65535), and fresh ids
start at ``high``. Every handle of an earlier process then fails with
``StaleHandle``.

Extensions come in blocks, so region creation, compaction and rollback rarely
write: fresh ids ``id_block`` (64) at a time, each leased up to generation
``generation_block`` (32), and an id's further generations
``generation_block`` at a time; within one process each further extension
of the same kind doubles its block, up to 1024 (``BLOCK_GROWTH_LIMIT``), so
a process that churns one id through thousands of generations writes about
once per 1024. The cost of a restart is what the blocks leave unused: fewer
ids than the first block plus what the process itself took, and per leased
id fewer generations than the first block plus what the process itself used
of that id, out of 65535 ids and 65535 generations per id. With the
defaults, an id that a process reuses for a few generations costs 32 of
them per process, so it lasts about 2047 such processes before it is
retired; fresh ids last 1023 processes that create a few regions before old
ids are reused at their next generations.

The record (``LEASE`` in the store's folder), little-endian, written
atomically and durably (temporary file, fsync, rename, directory fsync)::

    offset size  field
         0    8  magic            b"TVMLEAS1"
         8    2  format version   u16 (currently 1)
        10    2  flags            u16 (must be 0)
        12    4  high             u32, 1..65536
        16   16  checksum         blake2b-128 of bytes 0..16 + payload
        32       payload: u16 generation per id 0..high-1 (id 0 unused: 0)
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np

from .errors import CheckpointError
from .handle import MAX_GENERATION, U16_MAX

LEASE_NAME = "LEASE"
MAGIC = b"TVMLEAS1"
FORMAT_VERSION = 1
ID_LIMIT = U16_MAX + 1  # ids run 1..65535, so ``high`` is at most 65536
DEFAULT_ID_BLOCK = 64
DEFAULT_GENERATION_BLOCK = 32
BLOCK_GROWTH_LIMIT = 1024  # blocks double per extension up to this (or the first block, if larger)
_PREFIX = struct.Struct("<8sHHI")
_DIGEST_SIZE = 16
HEADER_SIZE = _PREFIX.size + _DIGEST_SIZE  # 32 bytes


def block_limit(first_block: int) -> int:
    """The largest block a doubling series starting at ``first_block`` reaches."""
    return max(first_block, BLOCK_GROWTH_LIMIT)


class Lease:
    """The (id, generation) space some store's processes may have handed out (see the module docstring).

    ``generations`` is a ``uint16`` array of length ``high``; ``generations[0]`` is unused (0).
    """

    def __init__(self, high: int = 1, generations: np.ndarray | None = None) -> None:
        if not 1 <= high <= ID_LIMIT:
            raise ValueError(f"lease high water {high} is outside 1..{ID_LIMIT}")
        self.high = high
        self.generations = np.zeros(high, dtype=np.uint16) if generations is None else generations.astype(np.uint16)
        if len(self.generations) != high:
            raise ValueError(f"lease holds {len(self.generations)} generations for high water {high}")

    def copy(self) -> Lease:
        return Lease(self.high, self.generations.copy())

    def covers(self, region_id: int, generation: int) -> bool:
        """Whether handing out ``(region_id, generation)`` needs no extension."""
        return region_id < self.high and generation <= int(self.generations[region_id])

    def extended(self, region_id: int, generation: int, *, id_block: int, generation_block: int,
                 fresh_generations: int) -> Lease:
        """A lease covering this one and ``(region_id, generation)``: a fresh id brings ids up to the next
        multiple of ``id_block`` (generations 1..``fresh_generations`` each), a generation beyond an id's
        lease brings ``generation_block`` generations (never past 65535)."""
        if not 1 <= region_id < ID_LIMIT or not 1 <= generation <= MAX_GENERATION:
            raise ValueError(f"({region_id}, {generation}) is not a region id and generation")
        high = self.high
        generations = self.generations
        if region_id >= high:
            high = min(ID_LIMIT, -(-(region_id + 1) // id_block) * id_block)
            generations = np.zeros(high, dtype=np.uint16)
            generations[: self.high] = self.generations
            generations[max(self.high, 1) :] = min(fresh_generations, MAX_GENERATION)
        else:
            generations = generations.copy()
        if generation > int(generations[region_id]):
            generations[region_id] = min(MAX_GENERATION, generation + generation_block - 1)
        return Lease(high, generations)

    def starting_state(self) -> tuple[dict[int, int], set[int], int]:
        """Where a directory opened on this lease starts: (tombstones {id: first generation it may hand
        out}, retired ids, first fresh id). Ids in id order, so the oldest-leased is reused first."""
        leased = np.arange(1, self.high)
        last = self.generations[1:].astype(np.int64)
        retired = set(leased[last >= MAX_GENERATION].tolist())
        tombstones = {int(i): int(g) + 1 for i, g in zip(leased.tolist(), last.tolist()) if g < MAX_GENERATION}
        return tombstones, retired, self.high

    # ------------------------------------------------------------------ the record
    def encode(self) -> bytes:
        payload = self.generations.astype("<u2").tobytes()
        prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0, self.high)
        return prefix + _digest(prefix, payload) + payload

    @classmethod
    def decode(cls, data: bytes, where: str) -> Lease:
        """The lease a record holds; ``CheckpointError`` for a torn, truncated or corrupted one."""

        def fail(problem: str) -> CheckpointError:
            return CheckpointError(f"the id lease {where} {problem}; nothing is handed out until it is repaired "
                                   "(a lost lease could let an old process's handles match again)")

        if len(data) < HEADER_SIZE:
            raise fail(f"is truncated: {len(data)} bytes, the header needs {HEADER_SIZE}")
        magic, version, flags, high = _PREFIX.unpack_from(data)
        if magic != MAGIC:
            raise fail(f"has wrong magic {magic!r}")
        if version != FORMAT_VERSION or flags != 0:
            raise fail(f"has unknown format version {version} or flags {flags:#x}")
        if not 1 <= high <= ID_LIMIT or len(data) != HEADER_SIZE + 2 * high:
            raise fail(f"is torn: high water {high} needs {HEADER_SIZE + 2 * high} bytes, file has {len(data)}")
        payload = data[HEADER_SIZE:]
        if _digest(data[: _PREFIX.size], payload) != data[_PREFIX.size : HEADER_SIZE]:
            raise fail("fails its checksum")
        return cls(high, np.frombuffer(payload, dtype="<u2").astype(np.uint16))


def _digest(prefix: bytes, payload: bytes) -> bytes:
    return hashlib.blake2b(prefix + payload, digest_size=_DIGEST_SIZE).digest()
