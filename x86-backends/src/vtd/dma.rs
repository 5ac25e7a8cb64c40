//! Memory the remapping unit reads and writes (root and context tables, the
//! invalidation queue, the wait-status word): the memory-provider seam and
//! the one place in the driver that touches it through raw pointers.
//!
//! The structures live in memory from a [`DmaFrames`] provider (the
//! hypervisor's frame allocator, the test kernel's identity-mapped arena,
//! a heap arena on the host). Everything else goes through [`DmaRegion`]:
//! bounds-checked volatile 64-bit accesses, plus a cache-line flush
//! (`CLFLUSH`) when the unit's walks do not snoop (`ECAP_REG.C = 0`, 6.6:
//! "software must flush ... to ensure that the updates are visible").

use core::ptr::NonNull;
use core::sync::atomic::{fence, Ordering};

use iommu_common::addr::PhysAddr;

/// A zeroed, physically contiguous buffer handed out by a [`DmaFrames`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaBuf {
    /// Physical address of the first byte: what the unit is given.
    pub pa: PhysAddr,
    /// The CPU mapping of the first byte (write-back memory).
    pub va: NonNull<u8>,
    /// Size in bytes.
    pub size: usize,
}

/// Provider of memory for the unit's tables and queue.
///
/// # Safety
///
/// For every `Some(buf)` returned by `alloc_zeroed(size, align)`:
/// `buf.size >= size`; `buf.pa` and `buf.va` are aligned to `align`;
/// `buf.va` maps `buf.size` zeroed bytes of RAM readable and writable by
/// the CPU, physically contiguous at `buf.pa`; and the memory belongs to the
/// caller from then on (never handed out again). The driver writes through
/// `buf.va` and points the unit at `buf.pa` relying on this.
pub unsafe trait DmaFrames {
    /// Allocates `size` bytes aligned to `align` (a power of two), zeroed.
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<DmaBuf>;
}

/// Allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory {
    /// Bytes requested.
    pub size: usize,
}

/// A buffer of unit-visible memory accessed as little-endian 64-bit words.
/// Owns its memory (never freed: the structures live as long as the unit).
#[derive(Debug)]
pub struct DmaRegion {
    pa: PhysAddr,
    va: NonNull<u64>,
    words: usize,
    /// Flush written cache lines (the unit does not snoop).
    flush: bool,
}

// SAFETY: a `DmaRegion` exclusively owns its memory (DmaFrames contract);
// moving the owner to another CPU is sound. Not `Sync`.
unsafe impl Send for DmaRegion {}

impl DmaRegion {
    /// Allocates `size` bytes (a multiple of 8) aligned to `align`.
    /// `coherent` is `ECAP_REG.C`: without it, writes are flushed.
    pub fn alloc<F: DmaFrames + ?Sized>(
        frames: &mut F,
        size: usize,
        align: usize,
        coherent: bool,
    ) -> Result<Self, OutOfMemory> {
        debug_assert!(size % 8 == 0 && align.is_power_of_two() && align >= 8);
        let oom = OutOfMemory { size };
        let buf = frames.alloc_zeroed(size, align).ok_or(oom)?;
        if buf.size < size || !buf.pa.is_aligned(align as u64) || buf.va.as_ptr().align_offset(align) != 0 {
            return Err(oom);
        }
        Ok(Self { pa: buf.pa, va: buf.va.cast(), words: size / 8, flush: !coherent })
    }

    /// Physical address of word 0.
    pub fn pa(&self) -> PhysAddr {
        self.pa
    }

    /// Physical address of word `idx`.
    pub fn pa_of(&self, idx: usize) -> PhysAddr {
        assert!(idx < self.words);
        PhysAddr(self.pa.0 + idx as u64 * 8)
    }

    fn word_ptr(&self, idx: usize) -> *mut u64 {
        assert!(idx < self.words, "DMA region index {idx} out of {}", self.words);
        // SAFETY: idx < words: inside the allocation `va` points to.
        unsafe { self.va.as_ptr().add(idx) }
    }

    /// Reads word `idx` (volatile: the unit may write it).
    pub fn read(&self, idx: usize) -> u64 {
        let p = self.word_ptr(idx);
        // SAFETY: in bounds, 8-aligned, valid for reads (DmaFrames contract).
        u64::from_le(unsafe { p.read_volatile() })
    }

    /// Writes word `idx` as one 64-bit store the unit sees whole.
    pub fn write(&self, idx: usize, value: u64) {
        let p = self.word_ptr(idx);
        // SAFETY: as for `read`; the region is owned by this value.
        unsafe { p.write_volatile(value.to_le()) }
    }

    /// Makes CPU writes to words `[first, first + count)` visible to a
    /// non-snooping unit (CLFLUSH each line, then a fence). Callers then
    /// tell the unit (MMIO write or invalidation).
    pub fn flush(&self, first: usize, count: usize) {
        if !self.flush || count == 0 {
            return;
        }
        let start = self.word_ptr(first) as usize;
        let end = self.word_ptr(first + count - 1) as usize + 8;
        let mut line = start & !63;
        while line < end {
            clflush(line as *const u8);
            line += 64;
        }
        fence(Ordering::SeqCst);
    }
}

fn clflush(p: *const u8) {
    // Miri cannot run CLFLUSH; cache maintenance changes nothing it checks.
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: CLFLUSH of a mapped line (inside a DmaRegion) has no effect
    // visible to Rust; SSE2 (which CLFLUSH comes with) is in the x86_64
    // baseline.
    unsafe {
        core::arch::x86_64::_mm_clflush(p)
    };
    #[cfg(any(not(target_arch = "x86_64"), miri))]
    let _ = p;
}

/// Orders the table and queue writes before the MMIO write that makes the
/// unit read them. x86 keeps stores in order (and UC MMIO stores after WB
/// ones); the fence stops the compiler from moving plain stores past the
/// volatile MMIO access.
#[inline(always)]
pub fn wmb() {
    fence(Ordering::SeqCst);
}

/// A page-table allocator for a unit whose walks do not snoop
/// (`ECAP_REG.C = 0`): forwards to `A` and flushes every range the table
/// makes visible to the walker (`sync_for_walker`) with CLFLUSH. With
/// `flush = false` (a coherent unit) it only forwards.
#[derive(Debug)]
pub struct ClflushPages<A> {
    inner: A,
    flush: bool,
}

impl<A> ClflushPages<A> {
    /// Wraps `inner`; `coherent` is `ECAP_REG.C`.
    pub const fn new(inner: A, coherent: bool) -> Self {
        Self { inner, flush: !coherent }
    }

    /// The wrapped allocator.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// The wrapped allocator, mutably.
    pub fn inner_mut(&mut self) -> &mut A {
        &mut self.inner
    }
}

// SAFETY: every allocation call is forwarded unchanged to `A`, which upholds
// the contract; the flush only adds cache maintenance.
unsafe impl<A: iommu_common::pgtable::PageAllocator> iommu_common::pgtable::PageAllocator
    for ClflushPages<A>
{
    fn alloc_table(&mut self, size: usize) -> Option<iommu_common::pgtable::TablePage> {
        self.inner.alloc_table(size)
    }

    unsafe fn free_table(&mut self, page: iommu_common::pgtable::TablePage, size: usize) {
        // SAFETY: the caller's guarantees are passed on unchanged.
        unsafe { self.inner.free_table(page, size) }
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        self.inner.phys_to_virt(pa)
    }

    fn sync_for_walker(&self, va: NonNull<u8>, len: usize) {
        self.inner.sync_for_walker(va, len);
        if self.flush && len > 0 {
            let start = va.as_ptr() as usize;
            let mut line = start & !63;
            while line < start + len {
                clflush(line as *const u8);
                line += 64;
            }
            fence(Ordering::SeqCst);
        }
    }

    fn publish_barrier(&self) {
        self.inner.publish_barrier()
    }
}
