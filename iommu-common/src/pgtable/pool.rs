//! A fixed pool of table pages carved from one heap allocation.

use alloc::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use alloc::vec;
use alloc::vec::Vec;
use core::num::NonZeroUsize;
use core::ptr::NonNull;

use super::{PageAllocator, TablePage};
use crate::addr::PhysAddr;

/// Fill byte of free pool memory: `0xa5` in debug builds, 0 otherwise.
const POISON: u8 = if cfg!(debug_assertions) { 0xa5 } else { 0 };

/// A page allocator over one pre-touched, page-aligned heap block whose
/// "physical" address is the pointer value (an identity mapping).
///
/// Tests use it for its bookkeeping ([`in_use`](Self::in_use), a failure
/// [`limit`](Self::set_limit)); benchmarks give every contender the same pool
/// so that table memory costs the same for all. Pages are handed out lowest
/// address first from a bitmap; blocks of several pages (concatenated roots)
/// are aligned to their size.
pub struct PoolAllocator {
    base: NonNull<u8>,
    layout: Layout,
    page_size: usize,
    pages: usize,
    /// One bit per page, set when free.
    free: Vec<u64>,
    /// No free page lies in a word below this one.
    hint: usize,
    in_use: usize,
    pages_in_use: usize,
    limit: Option<usize>,
}

// SAFETY: The pool owns its heap block exclusively; nothing in it is tied to a
// thread.
unsafe impl Send for PoolAllocator {}

impl PoolAllocator {
    /// A pool of `pages` pages of `page_size` bytes (a power of two of at
    /// least 64), all written once so that later use does not fault them in.
    pub fn new(pages: usize, page_size: usize) -> Self {
        assert!(page_size.is_power_of_two() && page_size >= 64 && pages > 0);
        let bytes = pages.checked_mul(page_size).expect("pool size overflows");
        let layout = Layout::from_size_align(bytes, page_size).expect("pool layout");
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc(layout) };
        let Some(base) = NonNull::new(raw) else { handle_alloc_error(layout) };
        // Touch every page now. Debug builds fill the pool with a poison
        // pattern (which looks like valid descriptors) so that a table that
        // does not initialise what it allocates fails its tests.
        // SAFETY: `base` is valid for writes of `bytes` bytes, just allocated.
        unsafe { base.as_ptr().write_bytes(POISON, bytes) };
        // Callers that translate addresses without the pool (benchmarks'
        // peers) rebuild pointers from integers; let them.
        let _ = base.as_ptr().expose_provenance();
        let words = pages.div_ceil(64);
        let mut free = vec![u64::MAX; words];
        if pages % 64 != 0 {
            free[words - 1] = (1u64 << (pages % 64)) - 1;
        }
        Self { base, layout, page_size, pages, free, hint: 0, in_use: 0, pages_in_use: 0, limit: None }
    }

    /// Size of one page.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// Number of pages in the pool.
    pub fn capacity(&self) -> usize {
        self.pages
    }

    /// Number of blocks allocated and not yet freed.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Number of pages allocated and not yet freed.
    pub fn pages_in_use(&self) -> usize {
        self.pages_in_use
    }

    /// Makes allocations fail once `pages` pages are in use (`None`: only
    /// when the pool is exhausted). For testing out-of-memory paths.
    pub fn set_limit(&mut self, pages: Option<usize>) {
        self.limit = pages;
    }

    /// Whether `pa` lies inside the pool.
    pub fn contains(&self, pa: PhysAddr) -> bool {
        let start = self.base.as_ptr().addr() as u64;
        pa.0 >= start && pa.0 - start < self.layout.size() as u64
    }

    fn page(&self, index: usize) -> TablePage {
        // SAFETY: `index < self.pages`, so the offset stays inside the block.
        let va = unsafe { self.base.add(index * self.page_size) };
        TablePage { pa: PhysAddr(va.as_ptr().addr() as u64), va }
    }

    fn take_one(&mut self) -> Option<usize> {
        let words = self.free.len();
        for w in (self.hint..words).chain(0..self.hint) {
            let bits = self.free[w];
            if bits != 0 {
                let bit = bits.trailing_zeros() as usize;
                self.free[w] = bits & (bits - 1);
                self.hint = w;
                return Some(w * 64 + bit);
            }
        }
        None
    }

    fn is_free(&self, index: usize) -> bool {
        self.free[index / 64] & (1 << (index % 64)) != 0
    }

    fn take_run(&mut self, n: usize) -> Option<usize> {
        // Runs are aligned to their size in the address space, not just
        // within the pool (which is aligned to one page only).
        let base_page = self.base.as_ptr().addr() / self.page_size;
        let first = (n - base_page % n) % n;
        let start = (first..self.pages.saturating_sub(n - 1))
            .step_by(n)
            .find(|&s| (s..s + n).all(|i| self.is_free(i)))?;
        for i in start..start + n {
            self.free[i / 64] &= !(1 << (i % 64));
        }
        Some(start)
    }
}

// SAFETY: Blocks are disjoint page runs inside the pool, aligned to their size
// (single pages by the pool's alignment, runs by `take_run`), tracked by the
// bitmap so none is handed out twice; `pa` is the
// address of `va`, and `phys_to_virt` inverts that with the pool's provenance.
unsafe impl PageAllocator for PoolAllocator {
    fn alloc_table(&mut self, size: usize) -> Option<TablePage> {
        if !size.is_power_of_two() || size < self.page_size {
            return None;
        }
        let n = size / self.page_size;
        if self.limit.is_some_and(|l| self.pages_in_use + n > l) {
            return None;
        }
        let index = if n == 1 { self.take_one()? } else { self.take_run(n)? };
        self.in_use += 1;
        self.pages_in_use += n;
        Some(self.page(index))
    }

    unsafe fn free_table(&mut self, page: TablePage, size: usize) {
        if cfg!(debug_assertions) {
            // SAFETY: The caller returns `size` bytes it no longer uses.
            unsafe { page.va.as_ptr().write_bytes(POISON, size) };
        }
        let offset = page.va.as_ptr().addr() - self.base.as_ptr().addr();
        let first = offset / self.page_size;
        let n = size / self.page_size;
        for i in first..first + n {
            debug_assert!(!self.is_free(i), "double free of pool page {i}");
            self.free[i / 64] |= 1 << (i % 64);
        }
        self.hint = self.hint.min(first / 64);
        self.in_use -= 1;
        self.pages_in_use -= n;
    }

    #[inline]
    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        debug_assert!(self.contains(pa), "{pa:?} outside the pool");
        let addr = NonZeroUsize::new(pa.0 as usize).expect("null table address");
        self.base.with_addr(addr)
    }
}

impl Drop for PoolAllocator {
    fn drop(&mut self) {
        // SAFETY: `base` was allocated in `new` with `layout`.
        unsafe { dealloc(self.base.as_ptr(), self.layout) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_distinct_aligned_and_reused() {
        let mut pool = PoolAllocator::new(70, 4096);
        let a = pool.alloc_table(4096).unwrap();
        let b = pool.alloc_table(4096).unwrap();
        assert_ne!(a.pa, b.pa);
        assert!(a.pa.is_aligned(4096) && b.pa.is_aligned(4096));
        assert_eq!(pool.phys_to_virt(b.pa), b.va);
        assert_eq!(pool.in_use(), 2);
        // SAFETY: `a` came from this pool and is not used.
        unsafe { pool.free_table(a, 4096) };
        assert_eq!(pool.alloc_table(4096).unwrap().pa, a.pa);
        assert_eq!(pool.in_use(), 2);
    }

    #[test]
    fn runs_are_aligned_to_their_size() {
        let mut pool = PoolAllocator::new(64, 4096);
        let _one = pool.alloc_table(4096).unwrap();
        let four = pool.alloc_table(4 * 4096).unwrap();
        assert!(four.pa.is_aligned(4 * 4096));
        assert_eq!(pool.pages_in_use(), 5);
        assert_eq!(pool.in_use(), 2);
        // SAFETY: `four` came from this pool with that size.
        unsafe { pool.free_table(four, 4 * 4096) };
        assert_eq!(pool.pages_in_use(), 1);
    }

    #[test]
    fn exhaustion_and_limit() {
        let mut pool = PoolAllocator::new(3, 4096);
        pool.set_limit(Some(2));
        assert!(pool.alloc_table(4096).is_some());
        assert!(pool.alloc_table(4096).is_some());
        assert!(pool.alloc_table(4096).is_none());
        pool.set_limit(None);
        assert!(pool.alloc_table(4096).is_some());
        assert!(pool.alloc_table(4096).is_none());
        assert!(pool.alloc_table(3000).is_none());
    }
}
