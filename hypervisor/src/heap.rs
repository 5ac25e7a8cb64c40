//! The hypervisor heap: a buddy allocator (`buddy_system_allocator`) over a
//! RAM range chosen at boot (see `mem.rs`), behind a spin lock.

use buddy_system_allocator::LockedHeap;
use core::sync::atomic::{AtomicU64, Ordering};

static RANGE: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];

#[global_allocator]
static HEAP: LockedHeap<33> = LockedHeap::empty();

/// Hands `[start, start + size)` to the allocator.
///
/// # Safety
/// The range must be RAM, mapped read-write, used by nothing else, and this
/// must be called once.
pub unsafe fn init(start: usize, size: usize) {
    // SAFETY: forwarded from the caller's contract.
    unsafe { HEAP.lock().init(start, size) };
    RANGE[0].store(start as u64, Ordering::Release);
    RANGE[1].store((start + size) as u64, Ordering::Release);
}

/// Bytes handed out and the heap's total size, for the boot log.
pub fn stats() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.stats_alloc_actual(), heap.stats_total_bytes())
}

/// The heap's physical range `[start, end)` (identity mapped).
pub fn range() -> (u64, u64) {
    (RANGE[0].load(Ordering::Acquire), RANGE[1].load(Ordering::Acquire))
}
