"""Where checkpoint pages live: in memory, or in checksummed files written crash-safely.

A store keeps *entries*: one region's pages at one checkpoint, as a sorted
array of page indices (``uint32``) and a ``(count, page_size)`` ``uint8``
array of their bytes. Entries are immutable once put; ``put`` under an
existing key replaces the entry as a whole.

``FileCheckpointStore`` writes every entry like ``FileBackingStore`` writes a
spilled copy: a temporary file beside the final name, fsync, rename, directory
fsync, so a name holds the complete old entry or the complete new one. Each
file starts with a fixed little-endian header:

    offset size  field
         0    8  magic           b"TVMCKPT1"
         8    2  format version  u16 (currently 1)
        10    2  flags           u16 (must be 0)
        12    4  region id       u32
        16    8  entry key       u64
        24    4  page size       u32
        28    4  page count      u32
        32   16  checksum        blake2b-128 of bytes 0..32 + payload
        48       payload: page indices (u32 each), then the pages' bytes

``get`` checks all of it: a torn, truncated, renamed or bit-flipped entry
raises ``CheckpointError``, never hands back bytes.

Beside the entries, a ``MANIFEST`` file says which checkpoints the entries
make up (``checkpoint_manifest``), so that a new process opening the same
folder can list and restore them (``saved_checkpoints``), and a ``LEASE``
file (``id_lease``) says which (region id, generation) pairs the store's
processes may have handed out, so that a directory opened on the store later
starts above them and refuses every earlier process's handle (``StaleHandle``).
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .checkpoint_manifest import (
    MANIFEST_NAME,
    SavedCheckpoint,
    decode_manifest,
    encode_manifest,
    manifest_keys,
)
from .durable import write_parts_durably
from .errors import CheckpointError
from .file_backing import _read_exactly
from .id_lease import DEFAULT_GENERATION_BLOCK, DEFAULT_ID_BLOCK, LEASE_NAME, Lease, block_limit

MAGIC = b"TVMCKPT1"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sHHIQII")
_DIGEST_SIZE = 16
HEADER_SIZE = _PREFIX.size + _DIGEST_SIZE  # 48 bytes

Entry = tuple[np.ndarray, np.ndarray]
"""(page indices: uint32[count], page bytes: uint8[count, page_size])."""


def _digest(prefix: bytes, parts: tuple[bytes | memoryview, ...]) -> bytes:
    """blake2b-128 over the header fields and the payload, so a flipped id or count is caught too."""
    digest = hashlib.blake2b(prefix, digest_size=_DIGEST_SIZE)
    for part in parts:
        digest.update(part)
    return digest.digest()


@runtime_checkable
class CheckpointStore(Protocol):
    """What checkpoints need to keep their pages."""

    def put(self, key: int, region_id: int, pages: np.ndarray, data: np.ndarray) -> None:
        """Keep (or replace) entry ``key``: ``pages`` sorted page indices, ``data`` their bytes, one row each."""

    def get(self, key: int, region_id: int) -> Entry:
        """The entry, verified; ``CheckpointError`` if it is missing, torn or corrupted.

        The arrays may be the store's own (the memory store does not copy): callers only read them,
        except the checkpoint chain, which patches a full entry it is about to put under a new key.
        """

    def delete(self, key: int) -> None:
        """Forget an entry; deleting a missing one is a no-op."""


class MemoryCheckpointStore:
    """Entries as NumPy arrays in this process (the default: fastest, gone with the process)."""

    def __init__(self) -> None:
        self._entries: dict[int, Entry] = {}

    def put(self, key: int, region_id: int, pages: np.ndarray, data: np.ndarray) -> None:
        self._entries[key] = (pages, data)

    def get(self, key: int, region_id: int) -> Entry:
        try:
            return self._entries[key]
        except KeyError:
            raise CheckpointError(f"checkpoint entry {key} is not in the store", region_id=region_id) from None

    def delete(self, key: int) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)

    def nbytes(self) -> int:
        """Bytes of page data held (what the checkpoints cost in memory)."""
        return sum(data.nbytes for _, data in self._entries.values())


class FileCheckpointStore:
    """Entries as checksummed files under ``root``, each written atomically and durably, and the
    ``MANIFEST`` naming the checkpoints they make up (see ``checkpoint_manifest``).

    One store should own its root directory: two processes with the store open
    at the same time are not supported (their manifests and leases would
    overwrite each other's). Opening it removes what a crashed writer left
    (temporary files; entries no committed manifest names) and reads the
    manifest and the lease: ``saved_checkpoints()`` are the checkpoints a
    previous process committed, restorable with ``RegionDirectory.restore_saved``;
    ``lease()`` the (region id, generation) space previous processes may have
    handed out, which a directory opened on this store starts above (``id_lease``;
    ``id_block``/``generation_block``: how far each extension reaches). A
    manifest or lease that fails its checksum raises ``CheckpointError`` here.
    """

    def __init__(self, root: str | os.PathLike[str], *, id_block: int = DEFAULT_ID_BLOCK,
                 generation_block: int = DEFAULT_GENERATION_BLOCK) -> None:
        for name, value in (("id_block", id_block), ("generation_block", generation_block)):
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 0xFFFF:
                raise ValueError(f"{name} must be an int in 1..65535, not {value!r}")
        self._id_block, self._generation_block = id_block, generation_block
        self._id_step = id_block  # this process's next extension of fresh ids: doubles each time, to the cap
        self._generation_steps: dict[int, int] = {}  # the same per id, for generations
        self._lease = Lease()
        self._root = Path(os.path.abspath(os.fspath(root)))
        self._saved_records: list[dict[str, object]] = []  # carried into every manifest until forgotten
        self._saved: list[SavedCheckpoint] = []
        self._committed: set[int] = set()  # keys the manifest on disk names
        self._live_records: list[dict[str, object]] = []  # this process's checkpoints at the last commit
        self._doomed: set[int] = set()  # deleted, but named by the manifest on disk: unlinked after the next commit
        try:
            self._root.mkdir(parents=True, exist_ok=True)
            for entry in os.scandir(self._root):
                if entry.name.startswith((".ckpt-", f".{MANIFEST_NAME}", f".{LEASE_NAME}")) and ".tmp-" in entry.name \
                        and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
            manifest = self._root / MANIFEST_NAME
            if manifest.exists():
                self._saved_records, self._saved = decode_manifest(manifest.read_bytes(), str(manifest))
                self._committed = manifest_keys(self._saved_records)
                for entry in os.scandir(self._root):  # a crashed writer's entries no manifest names
                    key = _key_of(entry.name)
                    if key is not None and key not in self._committed:
                        os.unlink(entry.path)
            lease = self._root / LEASE_NAME
            if lease.exists():
                self._lease = Lease.decode(lease.read_bytes(), str(lease))
            self._next_key = 1 + max(self._committed | {k for k in map(_key_of, os.listdir(self._root)) if k}, default=0)
        except OSError as exc:
            raise CheckpointError(f"cannot open checkpoint directory {self._root}: {exc}") from exc

    # ------------------------------------------------------------------ the id lease
    def lease(self) -> Lease:
        """The (region id, generation) space this store's processes may have handed out so far (a copy)."""
        return self._lease.copy()

    def cover(self, region_id: int, generation: int) -> None:
        """Make sure the lease covers ``(region_id, generation)`` before a directory hands it out: if it does
        not, extend it by a block and write ``LEASE`` durably first. ``CheckpointError`` if it cannot be
        written (the lease on disk and here stay as they were: the caller must hand out nothing).

        Blocks start at ``id_block`` ids / ``generation_block`` generations and double with each extension
        of the same kind in this process, up to ``block_limit(...)``: a process that churns an id pays
        one write per ever longer run of generations, while what a restart leaves unused stays below
        the first block plus what the process itself used."""
        if self._lease.covers(region_id, generation):
            return
        fresh = region_id >= self._lease.high
        step = self._generation_steps.get(region_id, self._generation_block)
        extended = self._lease.extended(region_id, generation, id_block=self._id_step, generation_block=step,
                                        fresh_generations=self._generation_block)
        path = self._root / LEASE_NAME
        try:
            write_parts_durably(path, (extended.encode(),))
        except OSError as exc:
            raise CheckpointError(f"cannot extend the id lease {path}: {exc}", region_id=region_id,
                                  generation=generation) from exc
        self._lease = extended
        if fresh:
            self._id_step = min(2 * self._id_step, block_limit(self._id_block))
        else:
            self._generation_steps[region_id] = min(2 * step, block_limit(self._generation_block))

    # ------------------------------------------------------------------ the manifest
    def saved_checkpoints(self) -> list[SavedCheckpoint]:
        """The checkpoints the manifest held when this store was opened (a previous process's), oldest
        first, minus those forgotten since."""
        return list(self._saved)

    def first_free_key(self) -> int:
        """Entry keys from here up are unused (a new process must not overwrite saved entries)."""
        return self._next_key

    def first_free_id(self) -> int:
        """Checkpoint ids from here up are unused by the saved checkpoints."""
        return 1 + max((saved.id for saved in self._saved), default=0)

    def commit(self, checkpoints: list[dict[str, object]], page_size: int) -> None:
        """Make ``checkpoints`` (the live ones, as ``checkpoint_manifest`` records) plus the saved ones
        the manifest, durably; then unlink the entries deleted since the last commit."""
        records = [*self._saved_records, *checkpoints]
        self._live_records = list(checkpoints)
        path = self._root / MANIFEST_NAME
        try:
            write_parts_durably(path, (encode_manifest(records, page_size),))
        except OSError as exc:
            raise CheckpointError(f"cannot write the checkpoint manifest {path}: {exc}") from exc
        self._committed = manifest_keys(records)
        for key in sorted(self._doomed - self._committed):
            self._unlink(key)
        self._doomed &= self._committed

    def forget_saved(self, saved: SavedCheckpoint) -> None:
        """Drop a saved checkpoint from the store, durably: the manifest is rewritten at once without it
        (this process's checkpoints as last committed are kept), then its entries are unlinked.
        ``CheckpointError`` if it is not one of this store's saved checkpoints or the manifest cannot be written."""
        kept = [record for record in self._saved_records if int(record["id"]) != saved.id]  # type: ignore[call-overload]
        if len(kept) == len(self._saved_records):
            raise CheckpointError(f"checkpoint {saved.id} is not a saved checkpoint of this store")
        gone = manifest_keys(self._saved_records) - manifest_keys(kept)
        self._saved_records = kept
        self._saved = [s for s in self._saved if s.id != saved.id]
        self._doomed |= gone
        self.commit(self._live_records, saved.page_size)

    @property
    def root(self) -> Path:
        return self._root

    def __repr__(self) -> str:
        return f"FileCheckpointStore({str(self._root)!r})"

    def path_for(self, key: int) -> Path:
        return self._root / f"ckpt-{key}.bin"

    def put(self, key: int, region_id: int, pages: np.ndarray, data: np.ndarray) -> None:
        pages = np.ascontiguousarray(pages, dtype="<u4")
        data = np.ascontiguousarray(data, dtype=np.uint8)
        if data.ndim != 2 or data.shape[0] != len(pages):
            raise ValueError(f"data must hold one row per page: {data.shape} for {len(pages)} pages")
        payload = (memoryview(pages).cast("B"), memoryview(data.reshape(-1)).cast("B"))
        prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0, region_id, key, data.shape[1], len(pages))
        final = self.path_for(key)
        try:
            write_parts_durably(final, (prefix + _digest(prefix, payload), *payload))
        except OSError as exc:
            raise CheckpointError(f"cannot write checkpoint entry {final}: {exc}", region_id=region_id) from exc

    def get(self, key: int, region_id: int) -> Entry:
        path = self.path_for(key)

        def fail(problem: str) -> CheckpointError:
            return CheckpointError(f"checkpoint entry {problem} ({path})", region_id=region_id)

        try:
            with open(path, "rb") as stream:
                size = os.fstat(stream.fileno()).st_size
                header = _read_exactly(stream, HEADER_SIZE)
                if len(header) < HEADER_SIZE:
                    raise fail(f"is truncated: header needs {HEADER_SIZE} bytes, file has {len(header)}")
                magic, version, flags, stored_region, stored_key, page_size, count = _PREFIX.unpack_from(header)
                if magic != MAGIC:
                    raise fail(f"has wrong magic {magic!r}")
                if version != FORMAT_VERSION or flags != 0:
                    raise fail(f"has unknown format version {version} or flags {flags:#x}")
                if (stored_region, stored_key) != (region_id, key):
                    raise fail(f"belongs to region={stored_region}, key={stored_key}, not the requested one")
                length = count * 4 + count * page_size
                if size != HEADER_SIZE + length:
                    raise fail(f"is torn: header promises {length} payload bytes, file has {size - HEADER_SIZE}")
                payload = _read_exactly(stream, length)
        except FileNotFoundError as exc:
            raise fail("is missing") from exc
        except OSError as exc:
            raise fail(f"cannot be read: {exc}") from exc
        if len(payload) != length:
            raise fail("changed size while being read")
        if _digest(header[: _PREFIX.size], (payload,)) != header[_PREFIX.size :]:
            raise fail(f"fails its checksum ({count} pages)")
        pages = np.frombuffer(payload, dtype="<u4", count=count).astype(np.uint32)
        data = np.frombuffer(payload, dtype=np.uint8, offset=count * 4).reshape(count, page_size)
        return pages, data

    def delete(self, key: int) -> None:
        """Forget an entry: at once, or after the next ``commit`` if the manifest on disk still names it."""
        if key in self._committed:
            self._doomed.add(key)
            return
        self._unlink(key)

    def _unlink(self, key: int) -> None:
        try:
            self.path_for(key).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CheckpointError(f"cannot delete checkpoint entry {self.path_for(key)}: {exc}") from exc


def _key_of(name: str) -> int | None:
    """The key of an entry file's name (``ckpt-<key>.bin``), else None."""
    if name.startswith("ckpt-") and name.endswith(".bin") and name[5:-4].isdigit():
        return int(name[5:-4])
    return None
