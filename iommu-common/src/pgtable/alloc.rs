//! Where table memory comes from.

use core::ptr::NonNull;
use core::sync::atomic::{fence, Ordering};

use crate::addr::PhysAddr;

/// A block of table memory as both sides see it: the address the IOMMU's
/// walker uses and the pointer the CPU writes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TablePage {
    /// Physical address, as programmed into descriptors, STEs, CDs.
    pub pa: PhysAddr,
    /// Where the CPU accesses the same memory.
    pub va: NonNull<u8>,
}

/// The source of page-table memory, plus the two hooks that make CPU writes
/// to it visible to the IOMMU's table walker.
///
/// In the hypervisor this hands out pages from partition-independent memory
/// and returns their real physical addresses; on the host (tests, benches)
/// [`PoolAllocator`](super::PoolAllocator) uses the pointer value as the
/// "physical" address.
///
/// # Safety
///
/// Page tables write through the pointers this trait returns, so an
/// implementation must guarantee:
/// - a block returned by [`alloc_table`](Self::alloc_table)`(size)` is valid
///   for reads and writes of `size` bytes, `va` and `pa` are both aligned to
///   `size`, and nothing else uses the block until it is passed to
///   [`free_table`](Self::free_table);
/// - [`phys_to_virt`](Self::phys_to_virt) of the `pa` of a block that is
///   allocated and not freed returns that block's `va`.
pub unsafe trait PageAllocator {
    /// Allocates `size` bytes (a power of two, at least one granule) aligned
    /// to `size`. The contents need not be zeroed: tables clear their pages.
    fn alloc_table(&mut self, size: usize) -> Option<TablePage>;

    /// Returns a block to the allocator.
    ///
    /// # Safety
    ///
    /// `page` must come from `alloc_table(size)` on this allocator, must not
    /// have been freed yet, and no walker may still use it (its unlinking was
    /// followed by a completed IOMMU invalidation).
    unsafe fn free_table(&mut self, page: TablePage, size: usize);

    /// The CPU pointer of an allocated table given its physical address.
    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8>;

    /// Makes CPU writes to `[va, va + len)` visible to the walker. A walker
    /// that snoops CPU caches (SMMU `IDR0.COHACC = 1` with cacheable table
    /// walks) needs nothing, which is the default; otherwise clean the range
    /// to the point of coherency (`DC CVAC`). Called before the write that
    /// makes the range reachable.
    fn sync_for_walker(&self, va: NonNull<u8>, len: usize) {
        let _ = (va, len);
    }

    /// Orders the table writes made so far before the ones that follow, as
    /// the walker observes them; called between filling a new table and
    /// linking it in. The default is a release fence (`DMB ISH` on AArch64),
    /// enough for a coherent walker in the inner-shareable domain; a
    /// non-coherent one needs `DSB` after the cache clean.
    fn publish_barrier(&self) {
        fence(Ordering::Release);
    }
}

// SAFETY: Forwards every call to `A`, which upholds the contract.
unsafe impl<A: PageAllocator + ?Sized> PageAllocator for &mut A {
    fn alloc_table(&mut self, size: usize) -> Option<TablePage> {
        (**self).alloc_table(size)
    }

    unsafe fn free_table(&mut self, page: TablePage, size: usize) {
        // SAFETY: The caller's guarantees are passed on unchanged.
        unsafe { (**self).free_table(page, size) }
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        (**self).phys_to_virt(pa)
    }

    fn sync_for_walker(&self, va: NonNull<u8>, len: usize) {
        (**self).sync_for_walker(va, len)
    }

    fn publish_barrier(&self) {
        (**self).publish_barrier()
    }
}
