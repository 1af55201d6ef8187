//! tvm.rs: the raw `tvm` ABI of tvm-wasm for guests written in Rust (wasm32, core only).
//!
//! Generated from tvm_wasm/abi/table.py by `python -m tvm_wasm.sdk`; do not edit.
//! Use: `#[path = "<tvm-wasm sdk --rust>"] mod tvm;`, then build with
//! `rustc --target wasm32-unknown-unknown --crate-type cdylib -O guest.rs`.
//! Codes: `Result<T>` carries the error; typed loads and stores trap on an invalid access,
//! their `try_` twins return the error instead.
#![allow(dead_code, clippy::all)]

/// The imports, exactly as the ABI table declares them.
pub mod raw {
    #[link(wasm_import_module = "tvm")]
    extern "C" {
        /// The code of the last failure, then 0 (read-and-clear)
        #[link_name = "last_error"]
        pub fn last_error() -> i32;
        /// Create a zeroed Bump region of capacity bytes; returns its id
        #[link_name = "create_region"]
        pub fn create_region(kind: u32, capacity: u32) -> u32;
        /// Create a region with an allocator (0 Bump, 1 Freelist, 2 Slab with param = class size)
        #[link_name = "create_region_with"]
        pub fn create_region_with(kind: u32, capacity: u32, allocator: u32, param: u32) -> u32;
        /// Destroy a region; its handles fail with code 2 from now on
        #[link_name = "destroy_region"]
        pub fn destroy_region(id: u32) -> i32;
        /// Pin a region (pinnable kinds only): it never spills or compacts
        #[link_name = "pin"]
        pub fn pin(id: u32) -> i32;
        /// Unpin a region
        #[link_name = "unpin"]
        pub fn unpin(id: u32) -> i32;
        /// Hot -> Warm; on the host Warm -> Cold spills to the backing store
        #[link_name = "demote_region"]
        pub fn demote_region(id: u32) -> i32;
        /// Warm/Cold -> Hot (faults a Cold region in)
        #[link_name = "promote_region"]
        pub fn promote_region(id: u32) -> i32;
        /// Pack a Freelist region's live blocks, bump its generation (old handles: code 2 until migrate)
        #[link_name = "compact_region"]
        pub fn compact_region(id: u32) -> i32;
        /// A handle of the generation before the last compaction -> its current form (current ones unchanged)
        #[link_name = "migrate"]
        pub fn migrate(h: u64) -> u64;
        /// Make a region read-only (read_only != 0) or writable: while read-only every store, write, fill, discard, copy into it, alloc, dealloc and compaction answers 8 and changes nothing; loads cost nothing extra
        #[link_name = "protect"]
        pub fn protect(id: u32, read_only: u32) -> i32;
        /// Start (enabled != 0, all pages clean) or stop dirty-page tracking: every path that changes bytes marks each 4096-byte page it touches in the region's dirty-page map, in wasm
        #[link_name = "track_dirty"]
        pub fn track_dirty(id: u32, enabled: u32) -> i32;
        /// Mark every page of a tracked region clean (untracked: 9)
        #[link_name = "clear_dirty"]
        pub fn clear_dirty(id: u32) -> i32;
        /// Current generation (1..65535)
        #[link_name = "region_generation"]
        pub fn region_generation(id: u32) -> i32;
        /// RegionKind
        #[link_name = "region_kind"]
        pub fn region_kind(id: u32) -> i32;
        /// Capacity in bytes
        #[link_name = "region_capacity"]
        pub fn region_capacity(id: u32) -> i64;
        /// Bytes allocated (bump pointer / live bytes)
        #[link_name = "region_used"]
        pub fn region_used(id: u32) -> i64;
        /// Residency: 0 Hot, 1 Warm, 2 Cold, 3 External, 4 being spilled
        #[link_name = "region_residency"]
        pub fn region_residency(id: u32) -> i32;
        /// 1 if pinned, else 0
        #[link_name = "region_pinned"]
        pub fn region_pinned(id: u32) -> i32;
        /// Allocator kind: 0 Bump, 1 Freelist, 2 Slab
        #[link_name = "region_allocator"]
        pub fn region_allocator(id: u32) -> i32;
        /// 1 if read-only (protect), else 0
        #[link_name = "region_read_only"]
        pub fn region_read_only(id: u32) -> i32;
        /// Index of the first dirty page (of 4096 bytes) at or after page from, -1 if none (untracked region: 9)
        #[link_name = "next_dirty_page"]
        pub fn next_dirty_page(id: u32, from: u32) -> i64;
        /// Pool memory the region lives in now
        #[link_name = "region_pool"]
        pub fn region_pool(id: u32) -> i32;
        /// Byte offset of the region in its pool
        #[link_name = "region_base"]
        pub fn region_base(id: u32) -> i64;
        /// Counter index of RegionMetrics (allocations, bytes_allocated, bytes_read, bytes_written, faults, promotions, demotions)
        #[link_name = "region_metric"]
        pub fn region_metric(id: u32, index: u32) -> i64;
        /// Access clock at the region's last access (LRU order)
        #[link_name = "region_last_access"]
        pub fn region_last_access(id: u32) -> i64;
        /// Live regions
        #[link_name = "region_count"]
        pub fn region_count() -> i32;
        /// The region to evict first (Warm before Hot, least recently used; never pinned or unspillable), 0 if none
        #[link_name = "lru_candidate"]
        pub fn lru_candidate() -> u32;
        /// pool << 32 | address of [offset, offset+len), checked like any access (for zero-copy views)
        #[link_name = "handle_address"]
        pub fn handle_address(h: u64, len: u32) -> i64;
        /// An embedder took a writable zero-copy view of [offset, offset+len): checked like a store (read-only: 8, nothing marked); the range's pages turn dirty when the region is tracked
        #[link_name = "note_write"]
        pub fn note_write(h: u64, len: u32) -> i32;
        /// An embedder copied [offset, offset+len) out of a zero-copy view (after handle_address, which stamped the access clock): checked like a load; counted in bytes_read, as the model's read counts it
        #[link_name = "note_read"]
        pub fn note_read(h: u64, len: u32) -> i32;
        /// Allocate size bytes in a region; returns the handle
        #[link_name = "alloc"]
        pub fn alloc(region: u32, size: u32) -> u64;
        /// Allocate size bytes at an offset that is a multiple of align (a power of two; 0: 8, or for Slab the largest power of two up to 8 dividing the class size)
        #[link_name = "alloc_aligned"]
        pub fn alloc_aligned(region: u32, size: u32, align: u32) -> u64;
        /// Free an allocation (Bump: no-op; Slab/Freelist: double free is code 3)
        #[link_name = "dealloc"]
        pub fn dealloc(h: u64) -> i32;
        /// Load 1 byte(s) at handle offset + off
        #[link_name = "load_u8"]
        pub fn load_u8(h: u64, off: u32) -> u32;
        /// Store 1 byte(s) at handle offset + off
        #[link_name = "store_u8"]
        pub fn store_u8(h: u64, off: u32, v: u32);
        /// Load 2 byte(s) at handle offset + off
        #[link_name = "load_u16"]
        pub fn load_u16(h: u64, off: u32) -> u32;
        /// Store 2 byte(s) at handle offset + off
        #[link_name = "store_u16"]
        pub fn store_u16(h: u64, off: u32, v: u32);
        /// Load 4 byte(s) at handle offset + off
        #[link_name = "load_u32"]
        pub fn load_u32(h: u64, off: u32) -> u32;
        /// Store 4 byte(s) at handle offset + off
        #[link_name = "store_u32"]
        pub fn store_u32(h: u64, off: u32, v: u32);
        /// Load 8 byte(s) at handle offset + off
        #[link_name = "load_i64"]
        pub fn load_i64(h: u64, off: u32) -> i64;
        /// Store 8 byte(s) at handle offset + off
        #[link_name = "store_i64"]
        pub fn store_i64(h: u64, off: u32, v: i64);
        /// Load 4 byte(s) at handle offset + off
        #[link_name = "load_f32"]
        pub fn load_f32(h: u64, off: u32) -> f32;
        /// Store 4 byte(s) at handle offset + off
        #[link_name = "store_f32"]
        pub fn store_f32(h: u64, off: u32, v: f32);
        /// Load 8 byte(s) at handle offset + off
        #[link_name = "load_f64"]
        pub fn load_f64(h: u64, off: u32) -> f64;
        /// Store 8 byte(s) at handle offset + off
        #[link_name = "store_f64"]
        pub fn store_f64(h: u64, off: u32, v: f64);
        /// Like load_u8, but returns a code; the value (1 byte(s), little-endian) goes to guest memory at out
        #[link_name = "try_load_u8"]
        pub fn try_load_u8(h: u64, off: u32, out: *mut u8) -> i32;
        /// Like store_u8, but returns a code
        #[link_name = "try_store_u8"]
        pub fn try_store_u8(h: u64, off: u32, v: u32) -> i32;
        /// Like load_u16, but returns a code; the value (2 byte(s), little-endian) goes to guest memory at out
        #[link_name = "try_load_u16"]
        pub fn try_load_u16(h: u64, off: u32, out: *mut u16) -> i32;
        /// Like store_u16, but returns a code
        #[link_name = "try_store_u16"]
        pub fn try_store_u16(h: u64, off: u32, v: u32) -> i32;
        /// Like load_u32, but returns a code; the value (4 byte(s), little-endian) goes to guest memory at out
        #[link_name = "try_load_u32"]
        pub fn try_load_u32(h: u64, off: u32, out: *mut u32) -> i32;
        /// Like store_u32, but returns a code
        #[link_name = "try_store_u32"]
        pub fn try_store_u32(h: u64, off: u32, v: u32) -> i32;
        /// Like load_i64, but returns a code; the value (8 byte(s), little-endian) goes to guest memory at out
        #[link_name = "try_load_i64"]
        pub fn try_load_i64(h: u64, off: u32, out: *mut i64) -> i32;
        /// Like store_i64, but returns a code
        #[link_name = "try_store_i64"]
        pub fn try_store_i64(h: u64, off: u32, v: i64) -> i32;
        /// Like load_f32, but returns a code; the value (4 byte(s), little-endian) goes to guest memory at out
        #[link_name = "try_load_f32"]
        pub fn try_load_f32(h: u64, off: u32, out: *mut f32) -> i32;
        /// Like store_f32, but returns a code
        #[link_name = "try_store_f32"]
        pub fn try_store_f32(h: u64, off: u32, v: f32) -> i32;
        /// Like load_f64, but returns a code; the value (8 byte(s), little-endian) goes to guest memory at out
        #[link_name = "try_load_f64"]
        pub fn try_load_f64(h: u64, off: u32, out: *mut f64) -> i32;
        /// Like store_f64, but returns a code
        #[link_name = "try_store_f64"]
        pub fn try_store_f64(h: u64, off: u32, v: f64) -> i32;
        /// Copy len bytes from the handle into guest memory
        #[link_name = "read"]
        pub fn read(h: u64, dst: *mut u8, len: u32) -> i32;
        /// Copy len bytes from guest memory to the handle
        #[link_name = "write"]
        pub fn write(h: u64, src: *const u8, len: u32) -> i32;
        /// Copy between two handles (any regions; overlap is fine)
        #[link_name = "copy"]
        pub fn copy(src: u64, dst: u64, len: u32) -> i32;
        /// Copy between regions by raw offsets (no generation check)
        #[link_name = "copy_region"]
        pub fn copy_region(src_region: u32, src_off: u32, dst_region: u32, dst_off: u32, len: u32) -> i32;
        /// Gather count items of item_size bytes at offset + indices[i] (u32s in guest memory) into dst
        #[link_name = "read_gather"]
        pub fn read_gather(h: u64, indices: *const u8, count: u32, item_size: u32, dst: *mut u8) -> i32;
        /// Sum of the bytes
        #[link_name = "sum_u8"]
        pub fn sum_u8(h: u64, len: u32) -> i64;
        /// Count of bytes equal to byte & 0xFF
        #[link_name = "count_byte"]
        pub fn count_byte(h: u64, len: u32, byte: u32) -> i64;
        /// Offset (from the handle) of the first byte equal to byte & 0xFF, -1 if absent
        #[link_name = "find_byte"]
        pub fn find_byte(h: u64, len: u32, byte: u32) -> i64;
        /// Set bits in the bytes
        #[link_name = "popcount"]
        pub fn popcount(h: u64, len: u32) -> i64;
        /// (min << 8) | max of the bytes; empty: 0xFF00
        #[link_name = "min_max_u8"]
        pub fn min_max_u8(h: u64, len: u32) -> i32;
        /// 64-bit FNV-1a of the bytes, written (u64, little-endian) to guest memory at out
        #[link_name = "hash_fnv1a"]
        pub fn hash_fnv1a(h: u64, len: u32, out: *mut u8) -> i32;
        /// 1 if the two spans are equal, else 0
        #[link_name = "eq"]
        pub fn eq(a: u64, b: u64, len: u32) -> i32;
        /// Set every byte to byte
        #[link_name = "fill"]
        pub fn fill(h: u64, len: u32, byte: u32) -> i32;
        /// Zero the bytes and let their memory go: the range reads as zeros, the rest is intact; counted in bytes_discarded (read-only: 8)
        #[link_name = "discard"]
        pub fn discard(h: u64, len: u32) -> i32;
        /// 256 u32 counts (little-endian) of each byte value, written to guest memory at out
        #[link_name = "byte_histogram"]
        pub fn byte_histogram(h: u64, len: u32, out: *mut u8) -> i32;
        /// Resident -> spilling: accesses answer 4 while the embedder writes the bytes out (pinned: 6, unspillable kind: 9)
        #[link_name = "begin_spill"]
        pub fn begin_spill(id: u32) -> i32;
        /// Spilling -> Cold: the span goes back to its pool
        #[link_name = "finish_spill"]
        pub fn finish_spill(id: u32) -> i32;
        /// Spilling -> Hot: the write-out failed, nothing moved
        #[link_name = "cancel_spill"]
        pub fn cancel_spill(id: u32) -> i32;
        /// Cold -> Hot: a zeroed span for the embedder to fill back in (no room: 5, stays Cold)
        #[link_name = "restore_region"]
        pub fn restore_region(id: u32) -> i32;
        /// Add a region to the set the next checkpoint takes (one set per host)
        #[link_name = "checkpoint_add"]
        pub fn checkpoint_add(id: u32) -> i32;
        /// Checkpoint the regions added since the last checkpoint (pages changed since each region's previous checkpoint are copied; the first copies all); returns its id (none added: 9)
        #[link_name = "checkpoint"]
        pub fn checkpoint() -> i64;
        /// Put the checkpoint's regions back exactly (bytes, allocator state), later checkpoints of them superseded; a region whose layout changed moves to a new generation (every older handle: 2; take region_generation for the new ones, offsets unchanged); all or nothing (read-only: 8; a checkpoint not live or not this host's: 9)
        #[link_name = "rollback"]
        pub fn rollback(checkpoint: i64) -> i32;
        /// Free a checkpoint's pages (folded into the next checkpoint of each region); one already released, superseded by a rollback, released with a destroyed region, or not this host's: 9, nothing changes
        #[link_name = "release_checkpoint"]
        pub fn release_checkpoint(checkpoint: i64) -> i32;
        /// Bytes of the region's allocator state (what save_layout writes)
        #[link_name = "layout_size"]
        pub fn layout_size(id: u32) -> i32;
        /// Copy the region's allocator state (bump pointer / live bytes, then the slab or block table) to guest memory at dst
        #[link_name = "save_layout"]
        pub fn save_layout(id: u32, dst: *mut u8) -> i32;
        /// Put back an allocator state save_layout wrote (read-only region: 8, nothing changes)
        #[link_name = "load_layout"]
        pub fn load_layout(id: u32, src: *const u8) -> i32;
        /// Move the region to the next generation without moving bytes (a rollback that changed the layout): every older handle answers 2, migrate refuses them; at 65535: 5
        #[link_name = "renew_generation"]
        pub fn renew_generation(id: u32) -> i32;
    }
}

/// Region kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RegionKind {
    HotHeap = 0,
    ObjectArena = 1,
    BlobArena = 2,
    PageStore = 3,
    Scratch = 4,
    DeviceState = 5,
    CodeCache = 6,
}

/// Allocators for `Region::create_with`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Allocator {
    Bump = 0,
    Freelist = 1,
    Slab = 2,
}

/// Residency tiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Residency {
    Hot = 0,
    Warm = 1,
    Cold = 2,
    External = 3,
}

/// Region counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Metric {
    Allocations = 0,
    BytesAllocated = 1,
    BytesRead = 2,
    BytesWritten = 3,
    Faults = 4,
    Promotions = 5,
    Demotions = 6,
    BytesDiscarded = 7,
}

/// A raw-ABI error code (never 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum TvmError {
    /// no such region (never created, or destroyed)
    NotFound = 1,
    /// the handle's generation is not the region's current one
    Stale = 2,
    /// outside the region's capacity (or not an allocated block)
    OutOfBounds = 3,
    /// the region is Cold or External and may not be faulted in
    NotResident = 4,
    /// no room: region, pool, id space or budget full
    AllocationFailed = 5,
    /// the region is pinned
    Pinned = 6,
    /// a guest-memory range lies outside the guest's memory
    GuestMemory = 7,
    /// the region is read-only (protect): nothing changed
    ReadOnly = 8,
    /// policy, allocator, backing store, bad argument, or a region the runtime cannot reach
    Other = 9,
    /// A code this version does not know.
    Unknown = -1,
}

impl TvmError {
    /// The error for a nonzero `code`, None for 0.
    pub fn from_code(code: i32) -> Option<TvmError> {
        match code {
            0 => None,
            1 => Some(TvmError::NotFound),
            2 => Some(TvmError::Stale),
            3 => Some(TvmError::OutOfBounds),
            4 => Some(TvmError::NotResident),
            5 => Some(TvmError::AllocationFailed),
            6 => Some(TvmError::Pinned),
            7 => Some(TvmError::GuestMemory),
            8 => Some(TvmError::ReadOnly),
            9 => Some(TvmError::Other),
            _ => Some(TvmError::Unknown),
        }
    }
    /// The ABI's code for this error.
    pub fn code(self) -> i32 { self as i32 }
    /// The code's name ("NOT_FOUND", ...).
    pub fn name(self) -> &'static str {
        match self {
            TvmError::NotFound => "NOT_FOUND",
            TvmError::Stale => "STALE",
            TvmError::OutOfBounds => "OUT_OF_BOUNDS",
            TvmError::NotResident => "NOT_RESIDENT",
            TvmError::AllocationFailed => "ALLOCATION_FAILED",
            TvmError::Pinned => "PINNED",
            TvmError::GuestMemory => "GUEST_MEMORY",
            TvmError::ReadOnly => "READ_ONLY",
            TvmError::Other => "OTHER",
            TvmError::Unknown => "UNKNOWN",
        }
    }
}

/// The result of a tvm call.
pub type Result<T> = core::result::Result<T, TvmError>;

/// `Ok(())` for code 0, else the error.
pub fn check(code: i32) -> Result<()> {
    match TvmError::from_code(code) { None => Ok(()), Some(e) => Err(e) }
}

/// Reads and clears the code of the last failure (None if there was none).
pub fn last_error() -> Option<TvmError> { TvmError::from_code(unsafe { raw::last_error() }) }

fn failed<T>() -> Result<T> { Err(last_error().unwrap_or(TvmError::Unknown)) }

/// A generation-checked handle: region_id:16 | generation:16 | offset:32. A live handle is never 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Handle(pub u64);

impl Handle {
    pub const fn pack(region: u16, generation: u16, offset: u32) -> Handle {
        Handle(((region as u64) << 48) | ((generation as u64) << 32) | offset as u64)
    }
    pub const fn region(self) -> Region { Region((self.0 >> 48) as u32) }
    pub const fn generation(self) -> u16 { (self.0 >> 32) as u16 }
    pub const fn offset(self) -> u32 { self.0 as u32 }
    /// The handle `delta` bytes further; saturates at offset 2^32 - 1 so an overflow fails the bounds check.
    pub const fn add(self, delta: u32) -> Handle {
        let offset = match (self.0 as u32).checked_add(delta) { Some(o) => o, None => u32::MAX };
        Handle((self.0 & !0xFFFF_FFFF) | offset as u64)
    }
    /// Copy `buf.len()` bytes from the handle into `buf`.
    pub fn read(self, buf: &mut [u8]) -> Result<()> {
        check(unsafe { raw::read(self.0, buf.as_mut_ptr(), buf.len() as u32) })
    }
    /// Copy `data` to the handle.
    pub fn write(self, data: &[u8]) -> Result<()> {
        check(unsafe { raw::write(self.0, data.as_ptr(), data.len() as u32) })
    }
    /// Free the allocation.
    pub fn dealloc(self) -> Result<()> { check(unsafe { raw::dealloc(self.0) }) }
    /// The handle's current form after a compaction of its region.
    pub fn migrate(self) -> Result<Handle> {
        match unsafe { raw::migrate(self.0) } { 0 => failed(), h => Ok(Handle(h)) }
    }
    /// 64-bit FNV-1a of `len` bytes.
    pub fn hash_fnv1a(self, len: u32) -> Result<u64> {
        let mut out = 0u64;
        check(unsafe { raw::hash_fnv1a(self.0, len, &mut out as *mut u64 as *mut u8) })?;
        Ok(out)
    }
    /// Sum of `len` bytes.
    pub fn sum_u8(self, len: u32) -> Result<u64> {
        match unsafe { raw::sum_u8(self.0, len) } { -1 => failed(), s => Ok(s as u64) }
    }
    /// Load a u8 at offset + `off`; traps on an invalid access.
    pub fn load_u8(self, off: u32) -> u8 { unsafe { raw::load_u8(self.0, off) as u8 } }
    /// Store a u8 at offset + `off`; traps on an invalid access.
    pub fn store_u8(self, off: u32, v: u8) { unsafe { raw::store_u8(self.0, off, v as u32) } }
    /// Load a u8, or the error (never traps).
    pub fn try_load_u8(self, off: u32) -> Result<u8> {
        let mut out: u8 = Default::default();
        check(unsafe { raw::try_load_u8(self.0, off, &mut out) })?;
        Ok(out)
    }
    /// Store a u8, or the error (never traps).
    pub fn try_store_u8(self, off: u32, v: u8) -> Result<()> {
        check(unsafe { raw::try_store_u8(self.0, off, v as u32) })
    }
    /// Load a u16 at offset + `off`; traps on an invalid access.
    pub fn load_u16(self, off: u32) -> u16 { unsafe { raw::load_u16(self.0, off) as u16 } }
    /// Store a u16 at offset + `off`; traps on an invalid access.
    pub fn store_u16(self, off: u32, v: u16) { unsafe { raw::store_u16(self.0, off, v as u32) } }
    /// Load a u16, or the error (never traps).
    pub fn try_load_u16(self, off: u32) -> Result<u16> {
        let mut out: u16 = Default::default();
        check(unsafe { raw::try_load_u16(self.0, off, &mut out) })?;
        Ok(out)
    }
    /// Store a u16, or the error (never traps).
    pub fn try_store_u16(self, off: u32, v: u16) -> Result<()> {
        check(unsafe { raw::try_store_u16(self.0, off, v as u32) })
    }
    /// Load a u32 at offset + `off`; traps on an invalid access.
    pub fn load_u32(self, off: u32) -> u32 { unsafe { raw::load_u32(self.0, off) } }
    /// Store a u32 at offset + `off`; traps on an invalid access.
    pub fn store_u32(self, off: u32, v: u32) { unsafe { raw::store_u32(self.0, off, v) } }
    /// Load a u32, or the error (never traps).
    pub fn try_load_u32(self, off: u32) -> Result<u32> {
        let mut out: u32 = Default::default();
        check(unsafe { raw::try_load_u32(self.0, off, &mut out) })?;
        Ok(out)
    }
    /// Store a u32, or the error (never traps).
    pub fn try_store_u32(self, off: u32, v: u32) -> Result<()> {
        check(unsafe { raw::try_store_u32(self.0, off, v) })
    }
    /// Load a i64 at offset + `off`; traps on an invalid access.
    pub fn load_i64(self, off: u32) -> i64 { unsafe { raw::load_i64(self.0, off) } }
    /// Store a i64 at offset + `off`; traps on an invalid access.
    pub fn store_i64(self, off: u32, v: i64) { unsafe { raw::store_i64(self.0, off, v) } }
    /// Load a i64, or the error (never traps).
    pub fn try_load_i64(self, off: u32) -> Result<i64> {
        let mut out: i64 = Default::default();
        check(unsafe { raw::try_load_i64(self.0, off, &mut out) })?;
        Ok(out)
    }
    /// Store a i64, or the error (never traps).
    pub fn try_store_i64(self, off: u32, v: i64) -> Result<()> {
        check(unsafe { raw::try_store_i64(self.0, off, v) })
    }
    /// Load a f32 at offset + `off`; traps on an invalid access.
    pub fn load_f32(self, off: u32) -> f32 { unsafe { raw::load_f32(self.0, off) } }
    /// Store a f32 at offset + `off`; traps on an invalid access.
    pub fn store_f32(self, off: u32, v: f32) { unsafe { raw::store_f32(self.0, off, v) } }
    /// Load a f32, or the error (never traps).
    pub fn try_load_f32(self, off: u32) -> Result<f32> {
        let mut out: f32 = Default::default();
        check(unsafe { raw::try_load_f32(self.0, off, &mut out) })?;
        Ok(out)
    }
    /// Store a f32, or the error (never traps).
    pub fn try_store_f32(self, off: u32, v: f32) -> Result<()> {
        check(unsafe { raw::try_store_f32(self.0, off, v) })
    }
    /// Load a f64 at offset + `off`; traps on an invalid access.
    pub fn load_f64(self, off: u32) -> f64 { unsafe { raw::load_f64(self.0, off) } }
    /// Store a f64 at offset + `off`; traps on an invalid access.
    pub fn store_f64(self, off: u32, v: f64) { unsafe { raw::store_f64(self.0, off, v) } }
    /// Load a f64, or the error (never traps).
    pub fn try_load_f64(self, off: u32) -> Result<f64> {
        let mut out: f64 = Default::default();
        check(unsafe { raw::try_load_f64(self.0, off, &mut out) })?;
        Ok(out)
    }
    /// Store a f64, or the error (never traps).
    pub fn try_store_f64(self, off: u32, v: f64) -> Result<()> {
        check(unsafe { raw::try_store_f64(self.0, off, v) })
    }
}

/// A region id (1..65535).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Region(pub u32);

impl Region {
    /// A zeroed Bump region of `capacity` bytes.
    pub fn create(kind: RegionKind, capacity: u32) -> Result<Region> {
        match unsafe { raw::create_region(kind as u32, capacity) } { 0 => failed(), id => Ok(Region(id)) }
    }
    /// A region with an allocator (`param`: Slab class size; module Freelist: block-table entries).
    pub fn create_with(kind: RegionKind, capacity: u32, allocator: Allocator, param: u32) -> Result<Region> {
        match unsafe { raw::create_region_with(kind as u32, capacity, allocator as u32, param) } {
            0 => failed(),
            id => Ok(Region(id)),
        }
    }
    /// Allocate `size` bytes.
    pub fn alloc(self, size: u32) -> Result<Handle> {
        match unsafe { raw::alloc(self.0, size) } { 0 => failed(), h => Ok(Handle(h)) }
    }
    /// A handle to `offset` in the region's current generation.
    pub fn handle(self, offset: u32) -> Result<Handle> {
        Ok(Handle::pack(self.0 as u16, self.generation()? as u16, offset))
    }
    /// Destroy a region; its handles fail with code 2 from now on.
    pub fn destroy(self) -> Result<()> { check(unsafe { raw::destroy_region(self.0) }) }
    /// Pin a region (pinnable kinds only): it never spills or compacts.
    pub fn pin(self) -> Result<()> { check(unsafe { raw::pin(self.0) }) }
    /// Unpin a region.
    pub fn unpin(self) -> Result<()> { check(unsafe { raw::unpin(self.0) }) }
    /// Hot -> Warm; on the host Warm -> Cold spills to the backing store.
    pub fn demote(self) -> Result<()> { check(unsafe { raw::demote_region(self.0) }) }
    /// Warm/Cold -> Hot (faults a Cold region in).
    pub fn promote(self) -> Result<()> { check(unsafe { raw::promote_region(self.0) }) }
    /// Pack a Freelist region's live blocks, bump its generation (old handles: code 2 until migrate).
    pub fn compact(self) -> Result<()> { check(unsafe { raw::compact_region(self.0) }) }
    /// Mark every page of a tracked region clean (untracked: 9).
    pub fn clear_dirty(self) -> Result<()> { check(unsafe { raw::clear_dirty(self.0) }) }
    /// Current generation (1..65535).
    pub fn generation(self) -> Result<u32> {
        match unsafe { raw::region_generation(self.0) } { -1 => failed(), v => Ok(v as u32) }
    }
    /// RegionKind.
    pub fn kind(self) -> Result<u32> {
        match unsafe { raw::region_kind(self.0) } { -1 => failed(), v => Ok(v as u32) }
    }
    /// Capacity in bytes.
    pub fn capacity(self) -> Result<u64> {
        match unsafe { raw::region_capacity(self.0) } { -1 => failed(), v => Ok(v as u64) }
    }
    /// Bytes allocated (bump pointer / live bytes).
    pub fn used(self) -> Result<u64> {
        match unsafe { raw::region_used(self.0) } { -1 => failed(), v => Ok(v as u64) }
    }
    /// Residency: 0 Hot, 1 Warm, 2 Cold, 3 External, 4 being spilled.
    pub fn residency(self) -> Result<u32> {
        match unsafe { raw::region_residency(self.0) } { -1 => failed(), v => Ok(v as u32) }
    }
    /// 1 if pinned, else 0.
    pub fn pinned(self) -> Result<u32> {
        match unsafe { raw::region_pinned(self.0) } { -1 => failed(), v => Ok(v as u32) }
    }
    /// Allocator kind: 0 Bump, 1 Freelist, 2 Slab.
    pub fn allocator(self) -> Result<u32> {
        match unsafe { raw::region_allocator(self.0) } { -1 => failed(), v => Ok(v as u32) }
    }
    /// 1 if read-only (protect), else 0.
    pub fn read_only(self) -> Result<u32> {
        match unsafe { raw::region_read_only(self.0) } { -1 => failed(), v => Ok(v as u32) }
    }
    /// Pool memory the region lives in now.
    pub fn pool(self) -> Result<u32> {
        match unsafe { raw::region_pool(self.0) } { -1 => failed(), v => Ok(v as u32) }
    }
    /// Byte offset of the region in its pool.
    pub fn base(self) -> Result<u64> {
        match unsafe { raw::region_base(self.0) } { -1 => failed(), v => Ok(v as u64) }
    }
    /// Access clock at the region's last access (LRU order).
    pub fn last_access(self) -> Result<u64> {
        match unsafe { raw::region_last_access(self.0) } { -1 => failed(), v => Ok(v as u64) }
    }
    /// Counter `metric` of the region.
    pub fn metric(self, metric: Metric) -> Result<u64> {
        match unsafe { raw::region_metric(self.0, metric as u32) } { -1 => failed(), v => Ok(v as u64) }
    }
}
