//! A device as the DMA API sees it.

use core::sync::atomic::{AtomicU32, Ordering};

use crate::iova::DmaLimit;

/// Tells devices apart, so that a handle cannot be synced or torn down
/// through another device's context.
static NEXT_DEVICE: AtomicU32 = AtomicU32::new(1);

/// How a device reaches memory: its DMA mask, whether it snoops the CPU's
/// caches, and whether its streaming buffers always go through the bounce
/// pool (Linux's `swiotlb=force`, for a direct device). Whether it sits
/// behind an IOMMU is a property of the [`DmaContext`](super::DmaContext) it
/// is used with.
///
/// Copies are the same device: handles made through one can be torn down
/// through another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaDevice {
    id: u32,
    limit: DmaLimit,
    coherent: bool,
    force_bounce: bool,
}

impl DmaDevice {
    /// A cache-coherent device that can emit addresses up to `limit`
    /// (`DmaLimit::bits(32)` for a 32-bit device), bouncing only what it
    /// cannot reach.
    pub fn new(limit: DmaLimit) -> Self {
        Self { id: NEXT_DEVICE.fetch_add(1, Ordering::Relaxed), limit, coherent: true, force_bounce: false }
    }

    /// Sets whether the device snoops CPU caches (from the device tree's
    /// `dma-coherent`, or SMMU `IDR0.COHACC` for a device behind it). A
    /// non-coherent device gets cache maintenance on every map and sync, and
    /// uncached coherent allocations.
    pub const fn with_coherent(self, coherent: bool) -> Self {
        Self { coherent, ..self }
    }

    /// Sets whether every streaming mapping of this device, if it is direct,
    /// is bounced even when the device could reach the buffer (for a device
    /// that must not see the rest of the buffer's memory). A device behind an
    /// IOMMU never bounces: its IOVAs reach everything.
    pub const fn with_forced_bounce(self, force: bool) -> Self {
        Self { force_bounce: force, ..self }
    }

    /// The highest address the device can emit.
    pub const fn limit(&self) -> DmaLimit {
        self.limit
    }

    /// Whether the device snoops CPU caches.
    pub const fn is_coherent(&self) -> bool {
        self.coherent
    }

    /// Whether streaming mappings of a direct device always bounce.
    pub const fn forces_bounce(&self) -> bool {
        self.force_bounce
    }

    pub(crate) const fn id(&self) -> u32 {
        self.id
    }

    /// The last address of `[addr, addr + len)` if the device can emit all of
    /// it, else `Err(last)`. `len > 0`; `None` on overflow.
    pub(crate) fn reaches(&self, addr: u64, len: u64) -> Option<Result<u64, u64>> {
        let last = addr.checked_add(len.checked_sub(1)?)?;
        Some(if last <= self.limit.last().raw() { Ok(last) } else { Err(last) })
    }
}
