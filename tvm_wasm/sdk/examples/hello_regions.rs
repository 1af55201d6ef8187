//! The Rust twin of hello_regions.c: a guest that creates its own region and handles errors as `Result`s.
#![no_std]

#[path = "../rust/tvm.rs"]
mod tvm;

use tvm::{Handle, Region, RegionKind, TvmError};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

fn body(n: u32) -> tvm::Result<i64> {
    let n = n.min(16);
    let r = Region::create(RegionKind::ObjectArena, 4096)?;
    let h = r.alloc(64)?;
    for i in 0..n {
        h.store_u32(4 * i, i * 3); // traps if out of bounds
    }
    let mut sum = 0i64;
    for i in 0..n {
        sum += h.load_u32(4 * i) as i64;
    }
    let mut words = [0u8; 64];
    h.read(&mut words[..(4 * n) as usize])?;
    let stale = Handle::pack(r.0 as u16, h.generation() + 1, 0);
    if stale.try_load_u32(0) != Err(TvmError::Stale) || tvm::last_error() != Some(TvmError::Stale) {
        return Ok(-400);
    }
    if h.try_load_u32(4096) != Err(TvmError::OutOfBounds) {
        return Ok(-403);
    }
    if h.hash_fnv1a(0)? != 0xCBF2_9CE4_8422_2325 || r.capacity()? != 4096 {
        return Ok(-500);
    }
    r.destroy()?;
    Ok(sum)
}

/// Sum of i*3 for i < n (n <= 16); -1000 - code on an error.
#[no_mangle]
pub extern "C" fn run(n: u32) -> i64 {
    match body(n) {
        Ok(v) => v,
        Err(e) => -1000 - e.code() as i64,
    }
}

/// An out-of-bounds typed access: traps.
#[no_mangle]
pub extern "C" fn oob(h: u64) -> u32 {
    Handle(h).load_u32(1 << 20)
}
