//! Memory the SMMU reads and writes: the memory-provider seam and the one
//! place that touches it through raw pointers.
//!
//! Stream tables, CD tables and queues live in memory obtained from a
//! [`DmaFrames`] provider: the hypervisor implements it on its frame allocator,
//! host tests on a heap arena. Everything else in the crate goes through
//! `DmaRegion`, which does bounds-checked volatile 64-bit accesses.
//!
//! Ordering with the device uses the barriers at the bottom of this module;
//! callers put them right next to the write they order.

use core::ptr::NonNull;

use iommu_common::addr::PhysAddr;

/// A zeroed, physically contiguous buffer handed out by a [`DmaFrames`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaBuf {
    /// Physical address of the first byte: what the SMMU is given.
    pub pa: PhysAddr,
    /// The CPU mapping of the first byte (Normal memory).
    pub va: NonNull<u8>,
    /// Size in bytes.
    pub size: usize,
}

/// Cache maintenance for an SMMU whose table walks and queue accesses are not
/// coherent with the CPU caches (`SMMU_IDR0.COHACC == 0`). Each function
/// operates on a virtual range and must complete (include its DSB) before
/// returning.
#[derive(Clone, Copy, Debug)]
pub struct CacheOps {
    /// Clean the range to the point of coherency (DC CVAC, DSB): CPU writes
    /// become visible to the SMMU.
    pub clean: fn(va: NonNull<u8>, len: usize),
    /// Invalidate the range (DC IVAC, DSB): later CPU reads see what the SMMU
    /// wrote.
    pub invalidate: fn(va: NonNull<u8>, len: usize),
}

/// Provider of memory for SMMU tables and queues.
///
/// # Safety
///
/// Implementors promise, for every `Some(buf)` returned by `alloc_zeroed`:
/// - `buf.size >= size`, and both `buf.pa` and `buf.va` are aligned to `align`;
/// - `buf.va` maps `buf.size` bytes of Normal memory, readable and writable by
///   the CPU, all zero, and `buf.pa` is the physical address of that memory
///   (physically contiguous);
/// - the memory is owned by the caller from then on: it is never handed out
///   again, freed, or accessed by anyone but the caller and the SMMU.
///
/// The crate relies on these for memory safety (it writes through `buf.va`)
/// and for isolation (the SMMU reads tables at `buf.pa`).
pub unsafe trait DmaFrames {
    /// Allocates `size` bytes aligned to `align` (a power of two), zeroed.
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<DmaBuf>;

    /// Cache maintenance to use when the SMMU is not coherent
    /// (`SMMU_IDR0.COHACC == 0`). `None` (the default) declares the memory
    /// non-cacheable or the system coherent; then no maintenance is done.
    fn cache_ops(&self) -> Option<CacheOps> {
        None
    }
}

/// Allocation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutOfMemory {
    /// Bytes requested.
    pub size: usize,
    /// Alignment requested.
    pub align: usize,
}

/// A buffer of SMMU-visible memory, accessed as little-endian 64-bit words.
///
/// Owns the memory (allocations are never freed: tables live as long as the
/// SMMU). Not `Clone`: one owner writes a given structure.
#[derive(Debug)]
pub(crate) struct DmaRegion {
    pa: PhysAddr,
    va: NonNull<u64>,
    words: usize,
    cache: Option<CacheOps>,
}

// SAFETY: a `DmaRegion` exclusively owns its memory (DmaFrames contract) and
// has no affinity to a CPU; moving the owner to another CPU is sound. It is
// not `Sync`: shared use across CPUs would race.
unsafe impl Send for DmaRegion {}

impl DmaRegion {
    /// Allocates `size` bytes (a multiple of 8) aligned to `align`.
    /// `coherent` selects whether cache maintenance is done on writes/reads.
    pub(crate) fn alloc<F: DmaFrames + ?Sized>(
        frames: &mut F,
        size: usize,
        align: usize,
        coherent: bool,
    ) -> Result<Self, OutOfMemory> {
        debug_assert!(size % 8 == 0 && align.is_power_of_two() && align >= 8);
        let oom = OutOfMemory { size, align };
        let buf = frames.alloc_zeroed(size, align).ok_or(oom)?;
        // Defend against a provider that breaks its contract in a checkable way.
        let align64 = u64::try_from(align).map_err(|_| oom)?;
        if buf.size < size || !buf.pa.is_aligned(align64) || buf.va.as_ptr().align_offset(align) != 0 {
            return Err(oom);
        }
        Ok(Self {
            pa: buf.pa,
            va: buf.va.cast(),
            words: size / 8,
            cache: if coherent { None } else { frames.cache_ops() },
        })
    }

    /// Physical address of word 0.
    pub(crate) fn pa(&self) -> PhysAddr {
        self.pa
    }

    /// Number of 64-bit words.
    pub(crate) fn words(&self) -> usize {
        self.words
    }

    fn word_ptr(&self, idx: usize) -> *mut u64 {
        assert!(idx < self.words, "DMA region index {idx} out of {}", self.words);
        // SAFETY: idx < words, so the offset stays inside the allocation of
        // `words * 8` bytes that `va` points to (DmaFrames contract).
        unsafe { self.va.as_ptr().add(idx) }
    }

    /// Reads word `idx` (volatile: the SMMU may write it).
    pub(crate) fn read(&self, idx: usize) -> u64 {
        let p = self.word_ptr(idx);
        // SAFETY: `p` is in bounds, 8-aligned (allocation aligned to >= 8) and
        // valid for reads; the memory is only shared with the device.
        u64::from_le(unsafe { p.read_volatile() })
    }

    /// Writes word `idx` as one 64-bit single-copy-atomic store.
    pub(crate) fn write(&self, idx: usize, value: u64) {
        let p = self.word_ptr(idx);
        // SAFETY: as for `read`; the region is owned by this value, so no Rust
        // reference aliases the word.
        unsafe { p.write_volatile(value.to_le()) }
    }

    /// Reads `N` consecutive words starting at `first`.
    pub(crate) fn read_words<const N: usize>(&self, first: usize) -> [u64; N] {
        core::array::from_fn(|i| self.read(first + i))
    }

    /// Writes consecutive words starting at `first`.
    pub(crate) fn write_words(&self, first: usize, words: &[u64]) {
        for (i, w) in words.iter().enumerate() {
            self.write(first + i, *w);
        }
    }

    /// Makes CPU writes to words `[first, first + count)` visible to the SMMU:
    /// cache clean if the SMMU is not coherent. Callers follow this with a
    /// barrier before telling the SMMU.
    pub(crate) fn sync_for_device(&self, first: usize, count: usize) {
        if let Some(ops) = self.cache {
            let p = self.word_ptr(first);
            let _ = self.word_ptr(first + count.max(1) - 1);
            // `p` is in bounds and derived from a NonNull, hence non-null.
            if let Some(nn) = NonNull::new(p.cast::<u8>()) {
                (ops.clean)(nn, count * 8);
            }
        }
    }

    /// Makes SMMU writes to words `[first, first + count)` visible to the CPU.
    pub(crate) fn sync_for_cpu(&self, first: usize, count: usize) {
        if let Some(ops) = self.cache {
            let p = self.word_ptr(first);
            let _ = self.word_ptr(first + count.max(1) - 1);
            if let Some(nn) = NonNull::new(p.cast::<u8>()) {
                (ops.invalidate)(nn, count * 8);
            }
        }
    }

    /// Stores a CPU pointer in word `idx`, for CPU-only shadow tables (the
    /// SMMU never reads them). Kept as a pointer store so provenance survives.
    pub(crate) fn write_ptr(&self, idx: usize, ptr: NonNull<u8>) {
        let p = self.word_ptr(idx).cast::<*mut u8>();
        // SAFETY: in bounds and 8-aligned; pointers are 8 bytes on the 64-bit
        // targets this crate supports (checked below at compile time).
        unsafe { p.write_volatile(ptr.as_ptr()) }
    }

    /// Loads a pointer stored by [`Self::write_ptr`] (null if none).
    pub(crate) fn read_ptr(&self, idx: usize) -> Option<NonNull<u8>> {
        let p = self.word_ptr(idx).cast::<*mut u8>();
        // SAFETY: in bounds and 8-aligned; the word holds either zero (fresh
        // allocation) or a pointer written by `write_ptr`.
        NonNull::new(unsafe { p.read_volatile() })
    }

    /// Rebuilds a region from a pointer stored in a shadow table.
    ///
    /// # Safety
    ///
    /// `va`/`pa` must describe an allocation of at least `words * 8` bytes made
    /// by [`DmaRegion::alloc`] whose `DmaRegion` was converted into a shadow
    /// entry with [`DmaRegion::into_raw`] (so that it has no other owner).
    pub(crate) unsafe fn from_raw(
        pa: PhysAddr,
        va: NonNull<u8>,
        words: usize,
        cache: Option<CacheOps>,
    ) -> Self {
        Self { pa, va: va.cast(), words, cache }
    }

    /// Gives up ownership, returning the CPU pointer (see `from_raw`).
    pub(crate) fn into_raw(self) -> NonNull<u8> {
        self.va.cast()
    }

    /// The cache maintenance in use (None when coherent).
    pub(crate) fn cache_ops(&self) -> Option<CacheOps> {
        self.cache
    }
}

const _: () = assert!(core::mem::size_of::<*mut u8>() == 8, "64-bit targets only");

/// Orders all prior normal-memory writes (tables, queue entries) before any
/// later write, in particular the MMIO write that tells the SMMU to read them
/// (SMMU spec 3.21.3.1: "perform a DSB operation to ensure written data is
/// observable from the SMMU").
#[inline(always)]
pub(crate) fn dsb_st() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier instruction; no memory or register effects visible to Rust.
    unsafe {
        core::arch::asm!("dsb st", options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "aarch64"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// Orders a prior read of a producer index (MMIO) before the reads of the
/// queue entries it announces (3.5.2 queue entry visibility).
#[inline(always)]
pub(crate) fn dsb_ld() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier instruction; no memory or register effects visible to Rust.
    unsafe {
        core::arch::asm!("dsb ld", options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "aarch64"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// Completes all prior memory accesses before later ones: used before
/// releasing consumed queue entries to the SMMU (their reads must be done).
#[inline(always)]
pub(crate) fn dsb_sy() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier instruction; no memory or register effects visible to Rust.
    unsafe {
        core::arch::asm!("dsb sy", options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "aarch64"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::HeapFrames;

    #[test]
    fn region_words_round_trip() {
        let mut frames = HeapFrames::new(1 << 16);
        let r = DmaRegion::alloc(&mut frames, 64, 64, true).unwrap();
        assert!(r.pa().is_aligned(64));
        assert_eq!(r.words(), 8);
        for i in 0..8 {
            assert_eq!(r.read(i), 0, "zeroed");
        }
        r.write_words(2, &[0x1122_3344_5566_7788, u64::MAX]);
        assert_eq!(r.read_words::<3>(1), [0, 0x1122_3344_5566_7788, u64::MAX]);
        // Little-endian in memory: the SMMU reads bytes, not host words.
        assert_eq!(frames.bytes(r.pa(), 24)[16..18], [0x88, 0x77]);
    }

    #[test]
    #[should_panic(expected = "out of")]
    fn region_bounds_are_checked() {
        let mut frames = HeapFrames::new(1 << 16);
        let r = DmaRegion::alloc(&mut frames, 64, 64, true).unwrap();
        r.write(8, 1);
    }

    #[test]
    fn pointer_shadow_round_trip() {
        let mut frames = HeapFrames::new(1 << 16);
        let shadow = DmaRegion::alloc(&mut frames, 64, 64, true).unwrap();
        let table = DmaRegion::alloc(&mut frames, 128, 128, true).unwrap();
        let pa = table.pa();
        table.write(3, 42);
        assert_eq!(shadow.read_ptr(1), None);
        shadow.write_ptr(1, table.into_raw());
        let va = shadow.read_ptr(1).unwrap();
        // SAFETY: `va` came from `into_raw` of a 128-byte region just above.
        let back = unsafe { DmaRegion::from_raw(pa, va, 16, None) };
        assert_eq!(back.read(3), 42);
    }

    #[test]
    fn provider_contract_violations_are_caught() {
        struct Misaligned(HeapFrames);
        // SAFETY: forwards to HeapFrames but shifts the result by 8 bytes,
        // still inside HeapFrames' arena (it over-allocates below).
        unsafe impl DmaFrames for Misaligned {
            fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<DmaBuf> {
                let b = self.0.alloc_zeroed(size + 8, align)?;
                // SAFETY: b.size >= size + 8, so va + 8 is in bounds.
                let va = unsafe { b.va.add(8) };
                Some(DmaBuf { pa: PhysAddr(b.pa.0 + 8), va, size })
            }
        }
        let mut m = Misaligned(HeapFrames::new(1 << 16));
        assert_eq!(DmaRegion::alloc(&mut m, 64, 64, true).err(), Some(OutOfMemory { size: 64, align: 64 }));
    }
}
