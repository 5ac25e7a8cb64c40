//! The bounce pool (Linux's swiotlb): memory below a device's reach into
//! which buffers it cannot reach are copied. The layout is described on
//! [`BouncePool`].

use alloc::vec::Vec;
use core::fmt;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, Ordering};

use super::{CpuMapping, DmaError, DmaMemory, PAGE_SIZE};
use crate::addr::PhysAddr;
use crate::iova::DmaLimit;

/// Size of a bounce slot, the pool's allocation unit (Linux's `IO_TLB_SIZE`).
pub const BOUNCE_SLOT_SIZE: usize = 2048;

const SLOTS_PER_PAGE: usize = PAGE_SIZE / BOUNCE_SLOT_SIZE;

/// Tells pools apart, so a run cannot be returned to, or copied through,
/// another pool.
static NEXT_POOL: AtomicU32 = AtomicU32::new(1);

/// A fixed pool of bounce slots in memory below a limit (Linux's
/// `io_tlb_mem`, one area).
///
/// # Layout
///
/// One block of [`DmaMemory`] taken at init, below the limit given, cut into
/// slots of [`BOUNCE_SLOT_SIZE`] (2 KiB, Linux's `IO_TLB_SIZE`). A mapping of
/// `n` bytes takes a run of `ceil(n / 2 KiB)` contiguous free slots, starting
/// at a multiple of its alignment (one slot, or a page for mappings of a page
/// or more, as Linux does). A bitmap records free slots; the search starts
/// after the last run handed out (Linux's `index`) and wraps once, so an
/// exhausted pool is an error after one pass
/// ([`DmaError::BouncePoolExhausted`]), never a wait.
///
/// A run is a token that cannot be copied, tagged with its pool; copies into
/// and out of it are bounded by the mapping's length, which is at most the
/// run's size, so a bounced mapping never touches another run or anything
/// outside the pool.
pub struct BouncePool {
    id: u32,
    pa: PhysAddr,
    va: NonNull<u8>,
    pages: usize,
    slots: usize,
    /// One bit per slot, set when free.
    free: Vec<u64>,
    used: usize,
    /// Where the next search starts.
    next: usize,
}

// SAFETY: The pool owns its memory block exclusively (the `DmaMemory`
// contract); nothing in it is tied to a thread.
unsafe impl Send for BouncePool {}

/// A run of slots held by one bounced mapping.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct BounceRun {
    pool: u32,
    first: usize,
    count: usize,
}

impl BouncePool {
    /// Takes `size` bytes (rounded up to whole pages) of `memory`, all below
    /// `limit`, for a pool: choose the limit of the most limited direct device
    /// that will use it (`DmaLimit::bits(32)` for 32-bit devices).
    pub fn new(memory: &mut dyn DmaMemory, size: usize, limit: DmaLimit) -> Result<Self, DmaError> {
        if size == 0 {
            return Err(DmaError::ZeroSize);
        }
        let pages = size.div_ceil(PAGE_SIZE);
        let slots = pages.checked_mul(SLOTS_PER_PAGE).ok_or(DmaError::Overflow)?;
        let bytes = u64::try_from(pages * PAGE_SIZE).map_err(|_| DmaError::Overflow)?;
        let words = slots.div_ceil(64);
        let mut free = Vec::new();
        free.try_reserve_exact(words).map_err(|_| DmaError::OutOfMemory)?;
        free.resize(words, u64::MAX);
        if slots % 64 != 0 {
            free[words - 1] = (1 << (slots % 64)) - 1;
        }
        let block =
            memory.alloc_pages(pages, PAGE_SIZE, limit, CpuMapping::Cached).ok_or(DmaError::OutOfMemory)?;
        let last = block.pa.raw().checked_add(bytes - 1);
        if last.is_none_or(|l| l > limit.last().raw()) {
            memory.free_pages(block.pa, pages);
            return Err(DmaError::MaskViolation { last: last.unwrap_or(u64::MAX), limit });
        }
        let id = NEXT_POOL.fetch_add(1, Ordering::Relaxed);
        Ok(Self { id, pa: block.pa, va: block.va, pages, slots, free, used: 0, next: 0 })
    }

    /// Gives the pool's memory back, if no slot is in use (else returns the
    /// pool). `memory` must be the one the pool came from (else the pool is
    /// returned too).
    pub fn destroy(self, memory: &mut dyn DmaMemory) -> Result<(), Self> {
        if self.used != 0 || !memory.free_pages(self.pa, self.pages) {
            return Err(self);
        }
        Ok(())
    }

    /// Physical address of the pool's first byte.
    pub fn phys_addr(&self) -> PhysAddr {
        self.pa
    }

    /// Size of the pool in bytes.
    pub fn size(&self) -> usize {
        self.pages * PAGE_SIZE
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Number of slots held by mappings.
    pub fn slots_in_use(&self) -> usize {
        self.used
    }

    /// Whether `[pa, pa + len)` overlaps the pool.
    pub(crate) fn overlaps(&self, pa: PhysAddr, len: u64) -> bool {
        let start = self.pa.raw();
        let end = start + (self.pages * PAGE_SIZE) as u64;
        pa.raw() < end && pa.raw().saturating_add(len) > start
    }

    /// Takes a run for `len` bytes (`len > 0`) whose start is a multiple of
    /// `align` (a power of two, at least a slot).
    pub(crate) fn alloc(&mut self, len: usize, align: usize) -> Result<BounceRun, DmaError> {
        debug_assert!(len > 0 && align.is_power_of_two() && align >= BOUNCE_SLOT_SIZE);
        let count = len.div_ceil(BOUNCE_SLOT_SIZE);
        let exhausted = DmaError::BouncePoolExhausted { slots: count };
        if count > self.slots - self.used {
            return Err(exhausted);
        }
        // Candidate starts: `first + k * stride`, the slots at multiples of
        // `align` (the pool is page aligned, so `first` is a whole slot).
        let stride = align / BOUNCE_SLOT_SIZE;
        let misalign = (self.pa.raw() % align as u64) as usize;
        let first = if misalign == 0 { 0 } else { (align - misalign) / BOUNCE_SLOT_SIZE };
        if first + count > self.slots {
            return Err(exhausted);
        }
        let candidates = (self.slots - count - first) / stride + 1;
        let from = self.next.saturating_sub(first).div_ceil(stride) % candidates;
        for k in (from..candidates).chain(0..from) {
            let start = first + k * stride;
            if (start..start + count).all(|s| self.is_free(s)) {
                for s in start..start + count {
                    self.free[s / 64] &= !(1 << (s % 64));
                }
                self.used += count;
                self.next = if start + count >= self.slots { 0 } else { start + count };
                return Ok(BounceRun { pool: self.id, first: start, count });
            }
        }
        Err(exhausted)
    }

    /// Returns a run; a run of another pool is refused (and leaked).
    pub(crate) fn free(&mut self, run: BounceRun) -> Result<(), DmaError> {
        if !self.owns(&run) {
            return Err(DmaError::ForeignHandle);
        }
        for s in run.first..run.first + run.count {
            debug_assert!(!self.is_free(s), "bounce slot {s} freed twice");
            self.free[s / 64] |= 1 << (s % 64);
        }
        self.used -= run.count;
        Ok(())
    }

    /// Whether `run` came from this pool.
    pub(crate) fn owns(&self, run: &BounceRun) -> bool {
        run.pool == self.id
    }

    /// Physical address of a run.
    pub(crate) fn run_pa(&self, run: &BounceRun) -> PhysAddr {
        PhysAddr(self.pa.raw() + (run.first * BOUNCE_SLOT_SIZE) as u64)
    }

    /// The CPU pointer of a run of this pool.
    pub(crate) fn run_ptr(&self, run: &BounceRun) -> Result<NonNull<u8>, DmaError> {
        if !self.owns(run) {
            return Err(DmaError::ForeignHandle);
        }
        // SAFETY: `run.first < self.slots`, so the offset lies inside the
        // pool's block of `slots * BOUNCE_SLOT_SIZE` bytes.
        Ok(unsafe { self.va.add(run.first * BOUNCE_SLOT_SIZE) })
    }

    /// Copies `len` bytes from `src` into `run`.
    ///
    /// # Safety
    ///
    /// `src` must be valid for reads of `len` bytes.
    pub(crate) unsafe fn copy_in(
        &self,
        run: &BounceRun,
        src: NonNull<u8>,
        len: usize,
    ) -> Result<(), DmaError> {
        let dst = self.run_ptr(run)?;
        assert!(len <= run.count * BOUNCE_SLOT_SIZE, "bounce copy beyond its run");
        // SAFETY: `dst` is valid for writes of the run's size, which bounds
        // `len` (asserted), and the pool owns it; the caller vouches for
        // `src`. `copy` tolerates overlap, though callers refuse buffers in
        // the pool.
        unsafe { ptr::copy(src.as_ptr(), dst.as_ptr(), len) };
        Ok(())
    }

    /// Copies `len` bytes from `run` to `dst`.
    ///
    /// # Safety
    ///
    /// `dst` must be valid for writes of `len` bytes.
    pub(crate) unsafe fn copy_out(
        &self,
        run: &BounceRun,
        dst: NonNull<u8>,
        len: usize,
    ) -> Result<(), DmaError> {
        let src = self.run_ptr(run)?;
        assert!(len <= run.count * BOUNCE_SLOT_SIZE, "bounce copy beyond its run");
        // SAFETY: `src` is valid for reads of the run's size, which bounds
        // `len`; the caller vouches for `dst`.
        unsafe { ptr::copy(src.as_ptr(), dst.as_ptr(), len) };
        Ok(())
    }

    fn is_free(&self, slot: usize) -> bool {
        self.free[slot / 64] & (1 << (slot % 64)) != 0
    }
}

impl fmt::Debug for BouncePool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BouncePool")
            .field("pa", &self.pa)
            .field("slots", &self.slots)
            .field("used", &self.used)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dma::HostMemory;

    fn pool(mem: &mut HostMemory, pages: usize) -> BouncePool {
        BouncePool::new(mem, pages * PAGE_SIZE, DmaLimit::NONE).unwrap()
    }

    #[test]
    fn dma_bounce_runs_are_contiguous_aligned_and_disjoint() {
        let mut mem = HostMemory::new();
        mem.add_region(16, Some(PhysAddr(0x8000_0000)));
        let mut p = pool(&mut mem, 4);
        assert_eq!(p.slots(), 8);
        let a = p.alloc(1, BOUNCE_SLOT_SIZE).unwrap();
        let b = p.alloc(BOUNCE_SLOT_SIZE + 1, BOUNCE_SLOT_SIZE).unwrap();
        assert_eq!((a.first, a.count), (0, 1));
        assert_eq!((b.first, b.count), (1, 2));
        // A page-aligned run skips slot 3.
        let c = p.alloc(PAGE_SIZE, PAGE_SIZE).unwrap();
        assert_eq!((c.first, c.count), (4, 2));
        assert_eq!(p.run_pa(&c), PhysAddr(0x8000_2000));
        assert_eq!(p.slots_in_use(), 5);
        p.free(b).unwrap();
        p.free(a).unwrap();
        p.free(c).unwrap();
        assert_eq!(p.slots_in_use(), 0);
        p.destroy(&mut mem).unwrap();
        assert_eq!(mem.pages_in_use(), 0);
    }

    #[test]
    fn dma_bounce_exhaustion_is_an_error_and_wraps() {
        let mut mem = HostMemory::new();
        mem.add_region(16, None);
        let mut p = pool(&mut mem, 1);
        let a = p.alloc(BOUNCE_SLOT_SIZE, BOUNCE_SLOT_SIZE).unwrap();
        let b = p.alloc(BOUNCE_SLOT_SIZE, BOUNCE_SLOT_SIZE).unwrap();
        assert_eq!(p.alloc(1, BOUNCE_SLOT_SIZE), Err(DmaError::BouncePoolExhausted { slots: 1 }));
        assert_eq!(
            p.alloc(3 * BOUNCE_SLOT_SIZE, BOUNCE_SLOT_SIZE),
            Err(DmaError::BouncePoolExhausted { slots: 3 })
        );
        p.free(a).unwrap();
        // The search starts after `b` and wraps to slot 0.
        let c = p.alloc(10, BOUNCE_SLOT_SIZE).unwrap();
        assert_eq!(c.first, 0);
        // A run held, the pool cannot go away.
        let p = p.destroy(&mut mem).unwrap_err();
        let mut p = p;
        p.free(b).unwrap();
        p.free(c).unwrap();
        p.destroy(&mut mem).unwrap();
    }

    #[test]
    fn dma_bounce_foreign_runs_are_refused() {
        let mut mem = HostMemory::new();
        mem.add_region(16, None);
        let mut p = pool(&mut mem, 1);
        let mut q = pool(&mut mem, 1);
        let a = p.alloc(1, BOUNCE_SLOT_SIZE).unwrap();
        assert_eq!(q.run_ptr(&a), Err(DmaError::ForeignHandle));
        let first = a.first;
        assert_eq!(q.free(a), Err(DmaError::ForeignHandle));
        assert_eq!(q.slots_in_use(), 0);
        assert_eq!(p.slots_in_use(), 1);
        // Leaked in `p`: give it back by hand for the cleanup.
        p.free(BounceRun { pool: p.id, first, count: 1 }).unwrap();
        p.destroy(&mut mem).unwrap();
        q.destroy(&mut mem).unwrap();
    }

    #[test]
    fn dma_bounce_pool_lies_below_its_limit() {
        let mut mem = HostMemory::new();
        mem.add_region(4, Some(PhysAddr(0x2_0000_0000)));
        assert_eq!(
            BouncePool::new(&mut mem, PAGE_SIZE, DmaLimit::bits(32)).unwrap_err(),
            DmaError::OutOfMemory
        );
        mem.add_region(4, Some(PhysAddr(0x1000_0000)));
        let p = BouncePool::new(&mut mem, 3 * PAGE_SIZE, DmaLimit::bits(32)).unwrap();
        assert_eq!(p.phys_addr(), PhysAddr(0x1000_0000));
        assert!(p.overlaps(PhysAddr(0x1000_2fff), 1));
        assert!(!p.overlaps(PhysAddr(0x1000_3000), 1));
        assert!(p.overlaps(PhysAddr(0xfff_f000), 0x1001));
        p.destroy(&mut mem).unwrap();
        assert_eq!(BouncePool::new(&mut mem, 0, DmaLimit::NONE).unwrap_err(), DmaError::ZeroSize);
    }
}
