"""tvm-wasm: Tiered Virtual Memory for WebAssembly.

Regions of typed bytes, reached only through generation-checked handles,
moved between residency tiers and spread over several 32-bit memories.
"""

from __future__ import annotations

from .core.allocators import Allocator, Bump, Freelist, Slab
from .core.backing import BackingStore, MemoryBackingStore
from .core.checkpoint_store import CheckpointStore, FileCheckpointStore, MemoryCheckpointStore
from .core.checkpoints import Checkpoint, RollbackRemap
from .core.directory import RegionDirectory
from .core.errors import (
    AllocationFailed,
    BackingStoreError,
    CheckpointError,
    GuestMemoryError,
    HostClosed,
    NotResident,
    OutOfBounds,
    Pinned,
    PolicyViolation,
    ReadOnly,
    RegionNotFound,
    StaleHandle,
    TvmError,
    UnsupportedAllocator,
)
from .core.file_backing import FileBackingStore
from .core.handle import Handle
from .host.interrupt import Interrupted
from .host.tvm_host import TvmHost
from .wit import wit_dir
from .sdk import get_include
from .core.types import (
    EvictionReport,
    HandleRemap,
    PlacementPolicy,
    RegionInfo,
    RegionKind,
    RegionMetrics,
    Residency,
)

__version__ = "0.1.0"

__all__ = [
    "AllocationFailed",
    "Allocator",
    "BackingStore",
    "BackingStoreError",
    "Bump",
    "Checkpoint",
    "CheckpointError",
    "CheckpointStore",
    "EvictionReport",
    "FileBackingStore",
    "FileCheckpointStore",
    "Freelist",
    "GuestMemoryError",
    "Handle",
    "HandleRemap",
    "HostClosed",
    "Interrupted",
    "MemoryBackingStore",
    "MemoryCheckpointStore",
    "NotResident",
    "OutOfBounds",
    "Pinned",
    "PlacementPolicy",
    "PolicyViolation",
    "ReadOnly",
    "RegionDirectory",
    "RegionInfo",
    "RegionKind",
    "RegionMetrics",
    "RegionNotFound",
    "Residency",
    "RollbackRemap",
    "Slab",
    "StaleHandle",
    "TvmError",
    "TvmHost",
    "UnsupportedAllocator",
    "__version__",
    "wit_dir",
    "get_include",
]
