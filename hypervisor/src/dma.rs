//! Memory and time for device drivers: SMMU tables and queues come from the
//! hypervisor heap (identity mapped, so the CPU address is the physical
//! address), and bounded waits use the architected counter.

use alloc::alloc::{alloc_zeroed, Layout};
use core::ptr::NonNull;
use iommu_common::addr::PhysAddr;
use smmu::{DmaBuf, DmaFrames};

/// Physically contiguous, zeroed memory from the heap, never freed (tables
/// and queues live as long as the device that walks them).
pub struct HeapFrames;

// SAFETY: every buffer comes from the global allocator with the requested
// size and alignment, zeroed, and is leaked to the caller: nobody else gets
// it again. The heap is identity mapped Normal write-back memory, so the
// virtual address is the physical address the SMMU walks.
unsafe impl DmaFrames for HeapFrames {
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<DmaBuf> {
        let layout = Layout::from_size_align(size.max(1), align.max(8)).ok()?;
        // SAFETY: the layout has a non-zero size.
        let va = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        Some(DmaBuf { pa: PhysAddr(va.as_ptr() as u64), va, size })
    }
}

/// `embedded_hal::delay::DelayNs` over the architected counter.
pub struct CounterDelay;

impl embedded_hal::delay::DelayNs for CounterDelay {
    fn delay_ns(&mut self, ns: u32) {
        let start = crate::log::uptime_us();
        let us = u64::from(ns).div_ceil(1000);
        while crate::log::uptime_us() < start + us {
            core::hint::spin_loop();
        }
    }
}
