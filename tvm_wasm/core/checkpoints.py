"""Incremental checkpoints of regions, and rollback to them: the rules every layer follows.

**checkpoint(region_ids)** records, for each region, the pages (``DIRTY_PAGE``
bytes each, the dirty-tracking granularity) changed since that region's
previous checkpoint, its allocator state and its generation. The first
checkpoint of a region copies every page and turns dirty tracking on; so does
the next one after anything that loses track of changes (``clear_dirty`` or
``track_dirty(False)`` by the caller, releasing the region's newest
checkpoint). A Cold region is read from its spilled copy and stays Cold; an
External region has no bytes to record (``NotResident``).

**rollback(checkpoint)** puts each region's bytes and allocator state back
exactly as they were at the checkpoint, copying only the pages that changed
since (the dirty pages, plus those recorded by later checkpoints). A region
that is Cold or External by then is faulted in first and ends Hot.

**Handles and generations.** A region keeps its generation when its
generation and allocator state are what they were at the checkpoint: every
handle then names the same blocks as at the checkpoint. Otherwise (an
``alloc``, ``dealloc`` or compaction since) the region moves to the next
generation, one it never had, so every handle taken before the rollback is
stale, including handles to blocks the restored layout does not have; the
``RollbackRemap`` returned for it migrates handles taken at the checkpoint
(same offsets, new generation). Generations only grow, so no handle from an
abandoned timeline can ever match again.

**Checkpoint lifetime.** A checkpoint is live from ``checkpoint`` until it is
released, superseded or one of its regions is destroyed. A rollback to a
checkpoint supersedes the later checkpoints of its regions; the checkpoint
itself stays valid (roll back to it again and again). ``release_checkpoint``
frees one: its pages fold into the next checkpoint of each region, so memory
stays bounded by one full copy plus the deltas kept. **One rule for every
use of a checkpoint that is not live**, ``rollback`` and ``release_checkpoint``
alike (a second release included): ``CheckpointError`` saying why
(``ENDED``), and nothing changes; the same for a checkpoint of another
directory, host or instance. Checkpoint ids are unique in the process, so the
raw ABI's and WIT's integer ids cannot name another host's checkpoint by
accident (``by_id``: ``CheckpointError`` for an id this one never issued).

Refusals change nothing: ``ReadOnly`` (a read-only region's bytes or layout
would change), ``AllocationFailed`` (a region at generation 65535 needs a new
generation), ``CheckpointError`` (released, superseded, another directory's,
a destroyed region, or stored pages missing or corrupted).
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .checkpoint_manifest import RestoredRegion, SavedCheckpoint, make_allocator, region_record, saved_image
from .checkpoint_store import CheckpointStore
from .errors import AllocationFailed, CheckpointError, NotResident, ReadOnly, TvmError
from .handle import MAX_GENERATION, Handle, next_generation
from .types import Residency

if TYPE_CHECKING:
    from .directory import Region, RegionDirectory

_NO_PAGES = np.empty(0, dtype=np.uint32)

#: Why a checkpoint is no longer live, worded once for every layer (``tvm-guest.js`` gets the same
#: templates in its generated block): ``{id}`` the checkpoint, ``{target}`` the checkpoint a rollback
#: went back to, ``{region}`` the destroyed region, ``{owner}`` what took it ("host", "guest", ...).
ENDED: dict[str, str] = {
    "released": "checkpoint {id} was released",
    "superseded": "checkpoint {id} was superseded by the rollback to checkpoint {target}",
    "destroyed": "checkpoint {id} was released when region {region} was destroyed",
    "foreign": "checkpoint {id} is not a checkpoint of this {owner}",
    "ended": "checkpoint {id} is no longer live (released, superseded by a rollback, or a region destroyed)",
}
ENDED_KEPT = 4096  # why the most recent checkpoints ended; older ones get ENDED["ended"] (memory stays bounded)

_id_lock = threading.Lock()
_last_id = 0


def _new_checkpoint_id(floor: int) -> int:
    """A checkpoint id no other checkpoint of this process has, at least ``floor``."""
    global _last_id
    with _id_lock:
        _last_id = max(_last_id + 1, floor)
        return _last_id


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """A checkpoint of some regions: pass it to ``rollback`` or ``release_checkpoint``.

    ``pages_copied``/``bytes_copied`` say what this checkpoint stored (the
    incremental cost); ``region_ids`` the regions it covers, in order.
    """

    id: int
    region_ids: tuple[int, ...]
    pages_copied: int
    bytes_copied: int
    _owner: object = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class RollbackRemap:
    """A region that a rollback moved to a new generation: handles taken at the checkpoint to blocks
    live at the checkpoint keep their offsets (the layout is the checkpoint's) under ``new_generation``.

    ``_holds(offset)`` says whether an offset lies inside a block live in the restored layout (the
    allocator's ``live_test``)."""

    region_id: int
    old_generation: int
    new_generation: int
    _holds: Callable[[int], bool] = field(repr=False, compare=False)

    def migrate(self, handle: Handle) -> Handle | None:
        """The handle's new form, or None for a handle this remap does not cover: another region's or
        generation's, or one whose offset lies in no block live in the restored layout (a block allocated
        after the checkpoint, or freed before it), so it can never alias a later allocation."""
        if handle.region_id != self.region_id or handle.generation != self.old_generation:
            return None
        if not self._holds(handle.offset):
            return None
        return Handle(self.region_id, self.new_generation, handle.offset)


@dataclass
class _Entry:
    """One region's part of one checkpoint."""

    checkpoint_id: int
    key: int  # the store's key for its pages
    pages: np.ndarray  # sorted page indices stored (uint32)
    full: bool  # every page of the region is stored
    generation: int
    layout: object  # the allocator's layout_state()


@dataclass
class _Chain:
    """A region's checkpoints, oldest first: the first is full, each later one holds the pages
    changed since the one before it."""

    region: Region
    entries: list[_Entry] = field(default_factory=list)
    pending: np.ndarray | None = None  # pages the next checkpoint must copy beyond the dirty ones; None: all


def page_count(capacity: int, page: int) -> int:
    return -(-capacity // page)


def gather_pages(view: np.ndarray, pages: np.ndarray, page: int) -> np.ndarray:
    """Rows of ``page`` bytes of ``view`` at the sorted ``pages`` (a partial last page is zero-padded)."""
    whole = len(view) // page
    body = view[: whole * page].reshape(whole, page)
    if len(pages) and pages[-1] >= whole:
        out = np.empty((len(pages), page), dtype=np.uint8)
        out[:-1] = body[pages[:-1]]
        tail = view[whole * page :]
        out[-1, : len(tail)] = tail
        out[-1, len(tail) :] = 0
        return out
    if len(pages) == whole and whole:
        return body.copy()  # every page: one straight copy
    return body[pages]  # fancy indexing copies (and is faster than np.take(..., out=))


def scatter_pages(view: np.ndarray, pages: np.ndarray, data: np.ndarray, page: int) -> None:
    """Write rows of ``data`` back to the sorted ``pages`` of ``view``."""
    whole = len(view) // page
    body = view[: whole * page].reshape(whole, page)
    if len(pages) and pages[-1] >= whole:
        body[pages[:-1]] = data[:-1]
        tail = len(view) - whole * page
        view[whole * page :] = data[-1, :tail]
    elif len(pages) == whole and whole:
        body[:] = data
    else:
        body[pages] = data


def _positions(sorted_pages: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hit mask over ``wanted``, row of each wanted page in ``sorted_pages``)."""
    rows = np.searchsorted(sorted_pages, wanted)
    clipped = np.minimum(rows, max(len(sorted_pages) - 1, 0))
    hit = (rows < len(sorted_pages)) & (sorted_pages[clipped] == wanted) if len(sorted_pages) else \
        np.zeros(len(wanted), dtype=bool)
    return hit, rows


class Checkpointer:
    """The checkpoints of one directory (``RegionDirectory.checkpoint`` and friends use it)."""

    def __init__(self, directory: RegionDirectory, store: CheckpointStore, page: int, *, manifest: bool = False,
                 owner: str = "directory") -> None:
        """``manifest``: tell a store that keeps one (``FileCheckpointStore.commit``) the live checkpoints, so
        a new process can restore them (``RegionDirectory`` does; ``GuestInstance``, whose regions live in
        the module, does not). ``owner`` names the directory in errors ("host", "guest")."""
        self._d = directory
        self._manifest = manifest
        self.store = store
        self.page = page
        self._chains: dict[int, _Chain] = {}
        self._live: dict[int, Checkpoint] = {}
        self._owner = owner
        self._ended: OrderedDict[int, str] = OrderedDict()  # checkpoint id -> why it ended, the latest ENDED_KEPT
        self._issued: list[list[int]] = []  # [first, last] runs of the ids this directory took (ids are sparse)
        # a store reopened by a new process holds saved checkpoints: new ids and keys start above theirs
        self._first_id = getattr(store, "first_free_id", lambda: 1)()
        self._keys = itertools.count(getattr(store, "first_free_key", lambda: 1)())

    # ------------------------------------------------------------------ checkpoint
    def checkpoint(self, region_ids: Iterable[int]) -> Checkpoint:
        regions = self._regions_of(region_ids)
        plans: list[tuple[Region, np.ndarray, bool]] = []
        for region in regions:
            if region.residency is Residency.EXTERNAL:
                raise NotResident("an External region has no bytes to checkpoint", region_id=region.id,
                                  generation=region.generation)
            plans.append((region, *self._pages_to_copy(region)))
        keys: list[int] = []
        try:
            for region, pages, _ in plans:
                data = gather_pages(self._d._page_source(region), pages, self.page)
                keys.append(next(self._keys))
                self.store.put(keys[-1], region.id, pages, data)
        except BaseException:
            for key in keys:
                self._delete_quietly(key)
            raise
        checkpoint_id = _new_checkpoint_id(self._first_id)
        if self._issued and self._issued[-1][1] == checkpoint_id - 1:
            self._issued[-1][1] = checkpoint_id
        else:
            self._issued.append([checkpoint_id, checkpoint_id])
        copied = 0
        for (region, pages, full), key in zip(plans, keys):
            chain = self._chains.get(region.id)
            if chain is None or chain.region is not region:
                chain = self._chains[region.id] = _Chain(region)
            chain.entries.append(_Entry(checkpoint_id, key, pages, full, region.generation,
                                        region.allocator.layout_state()))
            chain.pending = _NO_PAGES
            if region.tracks_dirty:
                self._d._clear_dirty_pages(region)
            else:
                self._d._start_tracking(region)
                self._d._on_change(region)
            copied += len(pages)
        checkpoint = Checkpoint(checkpoint_id, tuple(r.id for r in regions), copied, copied * self.page, self)
        self._live[checkpoint_id] = checkpoint
        self._commit()
        return checkpoint

    def _regions_of(self, region_ids: Iterable[int]) -> list[Region]:
        if isinstance(region_ids, int) or isinstance(region_ids, (str, bytes)):
            raise TypeError("region_ids must be a list of region ids, e.g. [3] for one region")
        ids = list(region_ids)
        if not ids:
            raise ValueError("a checkpoint needs at least one region id")
        for region_id in ids:
            if not isinstance(region_id, int) or isinstance(region_id, bool):
                raise TypeError(f"region ids must be ints, not {type(region_id).__name__}")
        if len(set(ids)) != len(ids):
            raise ValueError(f"region ids repeat: {ids}")
        return [self._d._region(region_id) for region_id in ids]

    def _pages_to_copy(self, region: Region) -> tuple[np.ndarray, bool]:
        count = page_count(region.capacity, self.page)
        chain = self._chains.get(region.id)
        if chain is None or chain.region is not region or not chain.entries or chain.pending is None \
                or not region.tracks_dirty:
            return np.arange(count, dtype=np.uint32), True
        dirty = np.asarray(self._d._dirty_page_list(region), dtype=np.uint32)
        pages = np.union1d(dirty, chain.pending).astype(np.uint32) if len(chain.pending) else dirty
        return pages, len(pages) == count

    # ------------------------------------------------------------------ rollback
    def rollback(self, checkpoint: Checkpoint) -> dict[int, RollbackRemap]:
        self._check_live(checkpoint)
        plans = []
        for region_id in checkpoint.region_ids:
            chain = self._chains.get(region_id)
            region = self._d._regions.get(region_id)
            if chain is None or region is not chain.region:
                raise CheckpointError("the region was destroyed after the checkpoint", region_id=region_id)
            index = next(i for i, e in enumerate(chain.entries) if e.checkpoint_id == checkpoint.id)
            entry = chain.entries[index]
            restore = self._pages_to_restore(region, chain, index)
            layout_changed = region.allocator.layout_state() != entry.layout
            new_layout = layout_changed or region.generation != entry.generation
            if region.read_only and (len(restore) or new_layout):
                raise ReadOnly("rollback would change a read-only region", region_id=region_id,
                               generation=region.generation)
            if new_layout and region.generation >= MAX_GENERATION:
                raise AllocationFailed(
                    f"rollback needs a new generation (the layout changed since the checkpoint) and the region is "
                    f"at {MAX_GENERATION}, the last one", region_id=region_id, generation=region.generation)
            if new_layout:
                self._d._lease(region_id, region.generation + 1)  # before anything changes (a leasing store)
            plans.append((region, chain, index, restore, new_layout, layout_changed))
        images = [self._image(chain, index, restore) for _, chain, index, restore, _, _ in plans]
        self._d._make_all_resident([region for region, *_ in plans])
        remaps: dict[int, RollbackRemap] = {}
        for (region, chain, index, restore, new_layout, layout_changed), data in zip(plans, images):
            entry = chain.entries[index]
            view = self._d._region_array(region)
            for pages, stored, rows in data:
                scatter_pages(view, pages, stored[rows], self.page)
            if layout_changed:
                region.allocator.restore_layout(entry.layout)
            if new_layout:
                region.generation = next_generation(region.generation)
                self._d._forget_spilled_copy(region)
                remaps[region.id] = RollbackRemap(region.id, entry.generation, region.generation,
                                                  region.allocator.live_test(entry.layout))
                entry.generation = region.generation
            region.counters.bytes_written += min(len(restore) * self.page, region.capacity)
            if region.tracks_dirty:
                self._d._clear_dirty_pages(region)
            else:
                self._d._start_tracking(region)
            chain.pending = _NO_PAGES
            self._d._touch(region)
            self._d._on_change(region)
        superseded = {e.checkpoint_id for _, chain, index, *_ in plans for e in chain.entries[index + 1 :]}
        for _, chain, index, *_ in plans:
            for entry in chain.entries[index + 1 :]:
                self._delete_quietly(entry.key)
            del chain.entries[index + 1 :]
        for checkpoint_id in sorted(superseded):
            self._retire(self._live.pop(checkpoint_id))
            self._end(checkpoint_id, ENDED["superseded"].format(id=checkpoint_id, target=checkpoint.id))
        self._commit()
        return remaps

    def _pages_to_restore(self, region: Region, chain: _Chain, index: int) -> np.ndarray:
        count = page_count(region.capacity, self.page)
        later = chain.entries[index + 1 :]
        if (chain.pending is None or not region.tracks_dirty or region.residency is Residency.EXTERNAL
                or any(e.full for e in later)):
            return np.arange(count, dtype=np.uint32)
        parts = [np.asarray(self._d._dirty_page_list(region), dtype=np.uint32), chain.pending,
                 *(e.pages for e in later)]
        return np.unique(np.concatenate(parts)).astype(np.uint32)

    def _image(self, chain: _Chain, index: int, restore: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Where the bytes of ``restore``'s pages at ``chain.entries[index]`` are: (pages, entry data, rows)
        pieces, every entry read and verified before the caller changes anything."""
        pieces = []
        todo = np.arange(len(restore))
        for entry in reversed(chain.entries[: index + 1]):
            if not len(todo):
                break
            hit, rows = _positions(entry.pages, restore[todo])
            if hit.any():
                _, data = self._load(entry, chain.region.id)
                pieces.append((restore[todo[hit]], data, rows[hit]))
            todo = todo[~hit]
        if len(todo):
            raise CheckpointError(f"{len(todo)} page(s) are in no stored checkpoint", region_id=chain.region.id)
        return pieces

    def _load(self, entry: _Entry, region_id: int) -> tuple[np.ndarray, np.ndarray]:
        pages, data = self.store.get(entry.key, region_id)
        if len(pages) != len(entry.pages) or not np.array_equal(pages, entry.pages) or data.shape != (
                len(pages), self.page):
            raise CheckpointError(f"stored checkpoint entry {entry.key} does not hold the pages it was given",
                                  region_id=region_id)
        return pages, data

    # ------------------------------------------------------------------ release
    def release(self, checkpoint: Checkpoint) -> None:
        """Free a checkpoint's pages (folding them into the next checkpoint of each region).

        A checkpoint that is not live (released already, superseded by a rollback, or released when one
        of its regions was destroyed) or is another directory's: ``CheckpointError`` saying why, nothing
        changes. ``TypeError`` for anything but a ``Checkpoint``.
        """
        self._check_live(checkpoint)
        self._retire(self._live.pop(checkpoint.id))
        self._end(checkpoint.id, ENDED["released"].format(id=checkpoint.id))
        self._commit()

    def _retire(self, checkpoint: Checkpoint) -> None:
        for region_id in checkpoint.region_ids:
            self._drop_entry(region_id, checkpoint.id)

    def _drop_entry(self, region_id: int, checkpoint_id: int) -> None:
        chain = self._chains.get(region_id)
        if chain is None:
            return
        index = next((i for i, e in enumerate(chain.entries) if e.checkpoint_id == checkpoint_id), None)
        if index is None:
            return
        entry = chain.entries[index]
        if index + 1 < len(chain.entries):
            self._fold(entry, chain.entries[index + 1], chain)
        elif index == 0:
            del self._chains[region_id]  # no checkpoint left: the next one copies every page
        else:
            chain.pending = None if entry.full or chain.pending is None else np.union1d(chain.pending, entry.pages)
        self._delete_quietly(entry.key)
        chain.entries.remove(entry)

    def _fold(self, older: _Entry, newer: _Entry, chain: _Chain) -> None:
        """``newer`` holds the pages changed since ``older``: give it ``older``'s other pages too."""
        if newer.full:
            return
        region_id = chain.region.id
        old_pages, old_data = self._load(older, region_id)
        new_pages, new_data = self._load(newer, region_id)
        if older.full:
            merged_pages = old_pages
            merged = old_data if old_data.flags.writeable else old_data.copy()  # the older entry is going away
            merged[np.searchsorted(old_pages, new_pages)] = new_data
        else:
            merged_pages = np.union1d(old_pages, new_pages).astype(np.uint32)
            merged = np.empty((len(merged_pages), self.page), dtype=np.uint8)
            merged[np.searchsorted(merged_pages, old_pages)] = old_data
            merged[np.searchsorted(merged_pages, new_pages)] = new_data
        self.store.put(newer.key, region_id, merged_pages, merged)
        newer.pages = merged_pages
        newer.full = older.full or len(merged_pages) == page_count(chain.region.capacity, self.page)

    # ------------------------------------------------------------------ what the directory tells us
    def forget(self, region: Region) -> None:
        """``region`` is destroyed: its checkpoints can no longer be rolled back (they are released)."""
        chain = self._chains.get(region.id)
        if chain is None or chain.region is not region:
            return
        for entry in list(chain.entries):
            live = self._live.pop(entry.checkpoint_id, None)
            if live is not None:
                self._end(live.id, ENDED["destroyed"].format(id=live.id, region=region.id))
                self._retire(live)
        self._chains.pop(region.id, None)
        self._commit()

    def lost_track(self, region: Region) -> None:
        """The dirty pages of ``region`` no longer say everything that changed: the next checkpoint copies all."""
        chain = self._chains.get(region.id)
        if chain is not None and chain.region is region:
            chain.pending = None

    # ------------------------------------------------------------------ a store's manifest
    def _commit(self) -> None:
        """Tell a store that keeps a manifest (``FileCheckpointStore``) the live checkpoints, after every
        change of them, so that a new process can restore any of them (``checkpoint_manifest``)."""
        commit = getattr(self.store, "commit", None)
        if commit is None or not self._manifest:
            return
        records = []
        for checkpoint in self.live_checkpoints():
            regions = []
            for region_id in checkpoint.region_ids:
                chain = self._chains[region_id]
                index = next(i for i, e in enumerate(chain.entries) if e.checkpoint_id == checkpoint.id)
                entry = chain.entries[index]
                keys = [e.key for e in chain.entries[: index + 1]]
                regions.append(region_record(chain.region, entry.generation, entry.layout, keys))
            records.append({"id": checkpoint.id, "regions": regions})
        commit(records, self.page)

    def restore_saved(self, saved: SavedCheckpoint) -> dict[int, RestoredRegion]:
        """New regions holding a saved checkpoint's regions (bytes, allocator state, read-only flag), by
        their id at the checkpoint. Every entry is read and verified before any region is created:
        ``CheckpointError`` (missing, torn or corrupted) creates nothing."""
        if not isinstance(saved, SavedCheckpoint):
            raise TypeError(f"expected a SavedCheckpoint, not {type(saved).__name__}")
        if saved.page_size != self.page:
            raise CheckpointError(f"saved with {saved.page_size}-byte pages, this directory uses {self.page}")
        held = getattr(self.store, "saved_checkpoints", None)
        if held is None or saved not in held():
            raise CheckpointError(f"checkpoint {saved.id} is not a saved checkpoint of this directory's store "
                                  "(forgotten, or another store's)")
        images = [saved_image(self.store, region, saved.page_size) for region in saved.regions]
        restored: dict[int, RestoredRegion] = {}
        try:
            for region, image in zip(saved.regions, images):
                new_id = self._d.create_region(region.kind, region.capacity, allocator=make_allocator(region.allocator),
                                               initial=image.tobytes())
                made = self._d._region(new_id)
                restored[region.region_id] = RestoredRegion(region.region_id, region.generation, new_id,
                                                            made.generation, made.allocator.live_test(region.layout))
                made.allocator.restore_layout(region.layout)
                self._d._on_change(made)
                if region.read_only:
                    self._d.protect(new_id, True)
        except BaseException:
            for done in restored.values():
                self._d.destroy_region(done.region_id)
            raise
        return restored

    # ------------------------------------------------------------------ helpers
    def _check_live(self, checkpoint: Checkpoint) -> None:
        if not isinstance(checkpoint, Checkpoint):
            raise TypeError(f"expected a Checkpoint, not {type(checkpoint).__name__}")
        if checkpoint._owner is not self:
            raise CheckpointError(ENDED["foreign"].format(id=checkpoint.id, owner=self._owner))
        self.by_id(checkpoint.id)

    def by_id(self, checkpoint_id: int) -> Checkpoint:
        """The live checkpoint with this id (the raw ABI's and WIT's form of a checkpoint); otherwise
        ``CheckpointError`` saying why: released, superseded, released with a destroyed region, or never
        taken here (another host's id, or no checkpoint's)."""
        live = self._live.get(checkpoint_id)
        if live is not None:
            return live
        ended = self._ended.get(checkpoint_id)
        if ended is None:
            took = any(first <= checkpoint_id <= last for first, last in self._issued)
            ended = ENDED["ended" if took else "foreign"].format(id=checkpoint_id, owner=self._owner)
        raise CheckpointError(ended)

    def _end(self, checkpoint_id: int, why: str) -> None:
        self._ended[checkpoint_id] = why
        while len(self._ended) > ENDED_KEPT:
            self._ended.popitem(last=False)

    def _delete_quietly(self, key: int) -> None:
        try:
            self.store.delete(key)
        except (OSError, TvmError):
            pass  # an orphaned entry wastes space but is never read: no live chain names its key

    def live_checkpoints(self) -> list[Checkpoint]:
        """The checkpoints that can still be rolled back to, oldest first."""
        return [self._live[i] for i in sorted(self._live)]
