"""What a checkpoint store must remember for a new process to use its checkpoints: the manifest.

A ``FileCheckpointStore`` holds one entry file per region per checkpoint (the
pages changed since the region's previous checkpoint), but entries alone do
not say which checkpoints exist, which regions they cover, how large those
regions are, their allocator state or which entries make up each region's
image. The manifest says it, as one JSON document (``MANIFEST`` in the
store's folder) rewritten whole after every change of the checkpoints
(checkpoint, rollback, release, a destroyed region), written durably and
atomically like the entries (temporary file, fsync, rename, directory fsync),
after the entries it names, and with a checksum. Entries a change drops are
deleted only once the manifest that no longer names them is on disk, so at
every instant the manifest on disk names only complete entries: a process
killed at any point leaves the last committed manifest, whose checkpoints
can all be restored. Entries it does not name (written by a process killed
before it committed) are deleted when the store is opened again.

A new process opens the folder with ``FileCheckpointStore(root)``:
``saved_checkpoints()`` lists what the manifest holds, and
``RegionDirectory.restore_saved(saved)`` (so ``TvmHost`` too) recreates the
regions of one of them, with new ids and generations (``RestoredRegion``
migrates handles; the store's id lease, ``id_lease``, makes every handle of an
earlier process ``StaleHandle`` in the new one). Saved checkpoints stay in the
store, carried into every manifest the new process commits, until
``forget_saved``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .allocators import Allocator, Bump, Freelist, Slab
from .errors import CheckpointError
from .handle import Handle
from .types import RegionKind

if TYPE_CHECKING:
    from .directory import Region

MANIFEST_NAME = "MANIFEST"
MANIFEST_FORMAT = 1


# ---------------------------------------------------------------- allocator state as JSON
def encode_state(value: object) -> object:
    """An allocator's ``layout_state()`` (ints, tuples, bytes) as JSON, exactly reversible."""
    if isinstance(value, bool) or value is None:
        raise TypeError(f"unexpected value in an allocator state: {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, tuple):
        return {"tuple": [encode_state(item) for item in value]}
    raise TypeError(f"unexpected value in an allocator state: {value!r}")


def decode_state(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, dict) and set(value) == {"bytes"} and isinstance(value["bytes"], str):
        return bytes.fromhex(value["bytes"])
    if isinstance(value, dict) and set(value) == {"tuple"} and isinstance(value["tuple"], list):
        return tuple(decode_state(item) for item in value["tuple"])
    raise ValueError(f"not an encoded allocator state: {value!r}")


def describe_allocator(allocator: Allocator) -> dict[str, object]:
    if isinstance(allocator, Slab):
        return {"type": "slab", "class_size": allocator.class_size}
    if isinstance(allocator, Freelist):
        return {"type": "freelist"}
    return {"type": "bump"}


def make_allocator(description: dict[str, object]) -> Allocator:
    kind = description.get("type")
    if kind == "slab":
        return Slab(int(description["class_size"]))  # type: ignore[call-overload]
    if kind == "freelist":
        return Freelist()
    if kind == "bump":
        return Bump()
    raise ValueError(f"unknown allocator {kind!r}")


# ---------------------------------------------------------------- what a manifest holds
@dataclass(frozen=True)
class SavedRegion:
    """One region of a saved checkpoint: enough to recreate it (``entries``: store keys, oldest first,
    the first a full copy; each page's bytes are those of the newest entry holding it)."""

    region_id: int  # its id in the process that took the checkpoint
    generation: int  # its generation at the checkpoint
    kind: RegionKind
    capacity: int
    allocator: dict[str, object]
    layout: object  # the allocator's layout_state()
    read_only: bool
    entries: tuple[int, ...]


@dataclass(frozen=True)
class SavedCheckpoint:
    """A checkpoint found in a store's manifest (see ``FileCheckpointStore.saved_checkpoints``)."""

    id: int
    regions: tuple[SavedRegion, ...]
    page_size: int

    @property
    def region_ids(self) -> tuple[int, ...]:
        return tuple(region.region_id for region in self.regions)


@dataclass(frozen=True)
class RestoredRegion:
    """Where a saved region now lives: ``migrate`` turns a handle taken at the checkpoint into its new form."""

    old_id: int
    old_generation: int
    region_id: int
    generation: int
    _holds: Callable[[int], bool] = field(repr=False, compare=False)  # inside a block live at the checkpoint

    def migrate(self, handle: Handle) -> Handle | None:
        """The handle's new form, or None if it was not a handle of this region at the checkpoint or its
        offset lies in no block live in the saved layout (a block allocated after the checkpoint, or freed
        before it: its bytes are not the handle's, so it must not come back to life)."""
        if handle.region_id != self.old_id or handle.generation != self.old_generation:
            return None
        if not self._holds(handle.offset):
            return None
        return Handle(self.region_id, self.generation, handle.offset)


def region_record(region: Region, generation: int, layout: object, entries: list[int]) -> dict[str, object]:
    """A region's part of a checkpoint, as the manifest stores it."""
    return {
        "region_id": region.id,
        "generation": generation,
        "kind": int(region.kind),
        "capacity": region.capacity,
        "allocator": describe_allocator(region.allocator),
        "layout": encode_state(layout),
        "read_only": bool(region.read_only),
        "entries": list(entries),
    }


def _saved(record: dict[str, object], page_size: int) -> SavedCheckpoint:
    regions = []
    for item in record["regions"]:  # type: ignore[attr-defined]
        regions.append(SavedRegion(
            region_id=int(item["region_id"]), generation=int(item["generation"]), kind=RegionKind(int(item["kind"])),
            capacity=int(item["capacity"]), allocator=dict(item["allocator"]), layout=decode_state(item["layout"]),
            read_only=bool(item["read_only"]), entries=tuple(int(key) for key in item["entries"]),
        ))
    return SavedCheckpoint(int(record["id"]), tuple(regions), page_size)  # type: ignore[call-overload]


def encode_manifest(checkpoints: list[dict[str, object]], page_size: int) -> bytes:
    """The manifest file's bytes: a checksum line, then the JSON body."""
    body = json.dumps({"format": MANIFEST_FORMAT, "page_size": page_size, "checkpoints": checkpoints},
                      sort_keys=True, separators=(",", ":")).encode()
    return hashlib.blake2b(body, digest_size=16).hexdigest().encode() + b"\n" + body


def decode_manifest(data: bytes, where: str) -> tuple[list[dict[str, object]], list[SavedCheckpoint]]:
    """(the raw checkpoint records, as ``SavedCheckpoint``s); ``CheckpointError`` for a torn or corrupt file."""
    digest, _, body = data.partition(b"\n")
    if hashlib.blake2b(body, digest_size=16).hexdigest().encode() != digest:
        raise CheckpointError(f"the checkpoint manifest {where} fails its checksum (torn or corrupted)")
    try:
        document = json.loads(body)
        if document.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unknown manifest format {document.get('format')!r}")
        page_size = int(document["page_size"])
        records = list(document["checkpoints"])
        return records, [_saved(record, page_size) for record in records]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"the checkpoint manifest {where} cannot be read: {exc}") from None


def manifest_keys(records: list[dict[str, object]]) -> set[int]:
    return {int(key) for record in records for region in record["regions"] for key in region["entries"]}  # type: ignore[attr-defined]


def saved_image(store: object, region: SavedRegion, page_size: int) -> np.ndarray:
    """The region's bytes at the checkpoint, assembled from its entries (each verified by the store)."""
    pages = -(-region.capacity // page_size)
    image = np.zeros(pages * page_size, dtype=np.uint8)
    body = image.reshape(pages, page_size) if pages else image.reshape(0, page_size)
    covered = np.zeros(pages, dtype=bool)
    for key in region.entries:  # oldest first: later entries overwrite
        stored_pages, data = store.get(key, region.region_id)  # type: ignore[attr-defined]
        if data.shape[1:] != (page_size,) or (len(stored_pages) and int(stored_pages[-1]) >= pages):
            raise CheckpointError(f"stored checkpoint entry {key} does not fit region {region.region_id}",
                                  region_id=region.region_id)
        body[stored_pages] = data
        covered[stored_pages] = True
    if not covered.all():
        raise CheckpointError(f"{int((~covered).sum())} page(s) of region {region.region_id} are in no stored entry",
                              region_id=region.region_id)
    return image[: region.capacity]
