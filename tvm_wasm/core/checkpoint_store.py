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
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .durable import write_parts_durably
from .errors import CheckpointError
from .file_backing import _read_exactly

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
    """Entries as checksummed files under ``root``, each written atomically and durably.

    One store should own its root directory (temporary files of a crashed
    writer are removed when it opens).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(os.path.abspath(os.fspath(root)))
        try:
            self._root.mkdir(parents=True, exist_ok=True)
            for entry in os.scandir(self._root):
                if entry.name.startswith(".ckpt-") and ".tmp-" in entry.name and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
        except OSError as exc:
            raise CheckpointError(f"cannot open checkpoint directory {self._root}: {exc}") from exc

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
        try:
            self.path_for(key).unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise CheckpointError(f"cannot delete checkpoint entry {self.path_for(key)}: {exc}") from exc
