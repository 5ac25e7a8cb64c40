//! What the platform and the IOMMU driver provide: cache maintenance for
//! devices that do not snoop CPU caches, and IOTLB invalidation.

use core::fmt;
use core::ptr::NonNull;

use crate::pgtable::IotlbGather;

/// Cache maintenance by virtual address for devices that do not snoop the
/// CPU's caches (on AArch64: `DC CVAC`, `DC IVAC`, `DC CIVAC` over every line
/// of the range, then `DSB SY`, like Linux's `dcache_*_poc`). Coherent devices
/// never call it.
///
/// Each operation must be complete when it returns (the barrier included): the
/// DMA API hands the device its address right after a clean.
pub trait CacheMaintenance {
    /// Writes dirty lines of `[va, va + len)` back to the point of coherency,
    /// so that the device reads what the CPU wrote. Lines stay valid.
    fn clean(&self, va: NonNull<u8>, len: usize);

    /// Discards the lines of `[va, va + len)`, so that the CPU's next reads
    /// fetch what the device wrote. Lines only partly inside the range hold
    /// other data too: they must be cleaned and invalidated, not just
    /// invalidated (Linux's `dcache_inval_poc` does the same).
    ///
    /// # Safety
    ///
    /// CPU writes to the range that are still in the cache are lost: the caller
    /// must own the range and have nothing there that is not also in memory
    /// (or that it is willing to lose).
    unsafe fn invalidate(&self, va: NonNull<u8>, len: usize);

    /// Writes dirty lines of `[va, va + len)` back and discards them: before
    /// memory starts being used through a non-cacheable mapping.
    fn clean_invalidate(&self, va: NonNull<u8>, len: usize);
}

/// An IOTLB invalidation that did not complete, naming what did not
/// acknowledge (`"CMD_SYNC"`, `"IOTLB invalidation wait descriptor"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlushError {
    /// What did not acknowledge, in the spec's words.
    pub what: &'static str,
}

impl fmt::Display for FlushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} did not complete", self.what)
    }
}

/// Invalidates an IOMMU domain's TLB entries: implemented by the IOMMU
/// backend (the SMMUv3 driver issues `CMD_TLBI_NH_VA` or `CMD_TLBI_S2_IPA`
/// per range, with `Leaf = 0` when [`IotlbGather::tables_removed`], then a
/// `CMD_SYNC` and waits for it within a budget).
pub trait IotlbFlusher {
    /// Invalidates every range in `gather` and waits until the IOMMU has
    /// completed it. After `Ok`, no transaction can use the old translations;
    /// after `Err`, some may still, and the DMA API reuses nothing they reach.
    fn flush(&mut self, gather: &IotlbGather) -> Result<(), FlushError>;
}
