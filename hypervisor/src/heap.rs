//! The hypervisor heap: a buddy allocator (`buddy_system_allocator`) over a
//! RAM range chosen at boot (see `mem.rs`), behind a spin lock.

use buddy_system_allocator::LockedHeap;

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
}

/// Bytes handed out and the heap's total size, for the boot log.
pub fn stats() -> (usize, usize) {
    let heap = HEAP.lock();
    (heap.stats_alloc_actual(), heap.stats_total_bytes())
}
