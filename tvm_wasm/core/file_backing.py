"""A crash-safe, verifying backing store: one file per (region, generation).

A spill writes a temporary file in the root directory, flushes and fsyncs it,
renames it onto its final name and fsyncs the directory, so at every instant
the final name holds either the complete previous copy or the complete new
one, never a torn mix. Every file starts with a fixed little-endian header:

    offset size  field
         0    8  magic           b"TVMSPIL1"
         8    2  format version  u16 (currently 1)
        10    2  flags           u16 (must be 0)
        12    4  region id       u32
        16    4  generation      u32
        20    8  payload length  u64
        28   16  checksum        blake2b-128 of bytes 0..28 + payload
        44       payload

``load`` checks all of it, so a torn, truncated, renamed or bit-flipped copy
raises ``BackingStoreError`` rather than handing back wrong bytes.

One store should own its root directory: construction removes temporary files
left by a crashed writer, which would break a second live writer.
"""

from __future__ import annotations

import hashlib
import operator
import os
import re
import struct
from pathlib import Path
from typing import IO, Any

from .durable import write_parts_durably
from .errors import BackingStoreError

MAGIC = b"TVMSPIL1"
FORMAT_VERSION = 1
_PREFIX = struct.Struct("<8sHHIIQ")
_DIGEST_SIZE = 16
HEADER_SIZE = _PREFIX.size + _DIGEST_SIZE  # 44 bytes
MAX_ID = 0xFFFF

# Temporary files are hidden, carry the final name and a random 16-hex token,
# so cleanup can never match a final copy or a file this store did not make.
_TEMP_RE = re.compile(r"\.region-(\d+)-gen-(\d+)\.bin\.tmp-[0-9a-f]{16}")


def _checked_id(value: Any, what: str) -> int:
    """Region ids and generations are 16-bit in the raw ABI; reject anything else early."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an int in 0..{MAX_ID}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{what} must be an int in 0..{MAX_ID}, got {value!r}") from None
    if not 0 <= number <= MAX_ID:
        raise ValueError(f"{what} must be in 0..{MAX_ID}, got {number}")
    return number


def _as_bytes_view(data: Any) -> memoryview:
    """A flat byte view of any buffer (bytes, bytearray, memoryview, numpy), copying only if non-contiguous."""
    view = memoryview(data)  # TypeError for non-buffers, which is the right error
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _checksum(prefix: bytes, payload: memoryview | bytes) -> bytes:
    """Covers the header fields too, so a flipped id or length is caught even if it looks plausible."""
    digest = hashlib.blake2b(prefix, digest_size=_DIGEST_SIZE)
    digest.update(payload)
    return digest.digest()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class FileBackingStore:
    """Spilled copies as checksummed files under ``root``, written atomically."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(os.path.abspath(os.fspath(root)))
        try:
            self._root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackingStoreError(f"cannot create backing directory {self._root}: {exc}") from exc
        self._remove_stale_temps(None)

    @property
    def root(self) -> Path:
        """The directory holding the spilled copies."""
        return self._root

    def __repr__(self) -> str:
        return f"FileBackingStore({str(self._root)!r})"

    def path_for(self, region_id: int, generation: int) -> Path:
        """The final file name of (region_id, generation)'s copy."""
        return self._path(_checked_id(region_id, "region_id"), _checked_id(generation, "generation"))

    def _path(self, region_id: int, generation: int) -> Path:
        return self._root / f"region-{region_id}-gen-{generation}.bin"

    # -- spill -----------------------------------------------------------------

    def spill(self, region_id: int, generation: int, data: bytes | bytearray | memoryview) -> None:
        """Store ``data`` durably; on failure any previous copy of the key is left intact."""
        region_id = _checked_id(region_id, "region_id")
        generation = _checked_id(generation, "generation")
        payload = _as_bytes_view(data)
        final = self._path(region_id, generation)
        self._remove_stale_temps((region_id, generation))

        prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0, region_id, generation, payload.nbytes)
        header = prefix + _checksum(prefix, payload)
        try:
            write_parts_durably(final, (header, payload))
        except OSError as exc:
            raise BackingStoreError(
                f"cannot spill {payload.nbytes} bytes to {final}: {exc}",
                region_id=region_id,
                generation=generation,
            ) from exc

    # -- load ------------------------------------------------------------------

    def load(self, region_id: int, generation: int) -> bytes:
        """Return the verified copy; anything missing, torn or corrupted raises ``BackingStoreError``."""
        region_id = _checked_id(region_id, "region_id")
        generation = _checked_id(generation, "generation")
        path = self._path(region_id, generation)

        def fail(problem: str) -> BackingStoreError:
            return BackingStoreError(f"{problem} ({path})", region_id=region_id, generation=generation)

        try:
            with open(path, "rb") as stream:
                file_size = os.fstat(stream.fileno()).st_size
                header = _read_exactly(stream, HEADER_SIZE)
                if len(header) < HEADER_SIZE:
                    raise fail(f"spilled copy is truncated: header needs {HEADER_SIZE} bytes, file has {len(header)}")
                magic, version, flags, stored_region, stored_generation, length = _PREFIX.unpack_from(header)
                if magic != MAGIC:
                    raise fail(f"spilled copy has wrong magic {magic!r}, expected {MAGIC!r}")
                if version != FORMAT_VERSION:
                    raise fail(f"spilled copy has unknown format version {version}, expected {FORMAT_VERSION}")
                if flags != 0:
                    raise fail(f"spilled copy has unknown flags {flags:#x}")
                if (stored_region, stored_generation) != (region_id, generation):
                    raise fail(
                        f"spilled copy belongs to region={stored_region}, gen={stored_generation}, "
                        f"not the requested one"
                    )
                # Check the size before reading so a corrupted length cannot make us allocate wildly.
                expected_size = HEADER_SIZE + length
                if file_size < expected_size:
                    raise fail(f"spilled copy is truncated: header promises {length} payload bytes, "
                               f"file has {max(file_size - HEADER_SIZE, 0)}")
                if file_size > expected_size:
                    raise fail(f"spilled copy has {file_size - expected_size} trailing bytes after "
                               f"its {length}-byte payload")
                payload = _read_exactly(stream, length)
                if len(payload) != length or stream.read(1):
                    raise fail(f"spilled copy changed size while being read (expected {length} payload bytes)")
        except FileNotFoundError as exc:
            raise fail("no spilled copy") from exc
        except OSError as exc:
            raise fail(f"cannot read spilled copy: {exc}") from exc

        if _checksum(header[: _PREFIX.size], payload) != header[_PREFIX.size :]:
            raise fail(f"spilled copy fails its checksum ({length} payload bytes)")
        return payload

    # -- delete ----------------------------------------------------------------

    def delete(self, region_id: int, generation: int) -> None:
        """Forget the copy; deleting a missing copy is a no-op."""
        path = self.path_for(region_id, generation)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BackingStoreError(
                f"cannot delete spilled copy {path}: {exc}", region_id=region_id, generation=generation
            ) from exc

    # -- housekeeping ----------------------------------------------------------

    def _remove_stale_temps(self, key: tuple[int, int] | None) -> None:
        """Drop temp files a crashed spill left behind (all of them, or just ``key``'s)."""
        try:
            entries = list(os.scandir(self._root))
        except OSError as exc:
            raise BackingStoreError(f"cannot list backing directory {self._root}: {exc}") from exc
        for entry in entries:
            match = _TEMP_RE.fullmatch(entry.name)
            if match is None:
                continue
            if key is not None and (int(match[1]), int(match[2])) != key:
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise BackingStoreError(f"cannot remove stale temporary file {entry.path}: {exc}") from exc
