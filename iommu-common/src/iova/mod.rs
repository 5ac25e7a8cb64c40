//! IOVA allocation, after Linux's `drivers/iommu/iova.c`, in three layers:
//!
//! - [`RangeAllocator`] (`range.rs`): the address-space manager of one window.
//!   Size-aligned, top-down, below a device's [`DmaLimit`], with reservations
//!   (MSI doorbells, RMRRs). An augmented AVL tree gives O(log n) worst case for
//!   every operation, where Linux's `iova_domain` rbtree walks linearly when its
//!   cached node does not help.
//! - [`IovaAllocator`] (`allocator.rs`, with `magazine.rs`): Linux's
//!   `iova_rcache` in front of the tree. Per-CPU magazines of recently freed
//!   IOVAs in power-of-two size classes of 1 to 32 pages and a global depot of
//!   full magazines, so the common map/unmap pair never touches the tree. It
//!   hands out [`Allocation`] tokens, which cannot be copied: an IOVA cannot be
//!   freed twice.
//! - [`FlushQueue`] (`flush_queue.rs`): Linux's `iova_fq`. An unmapped IOVA
//!   goes back to the allocator only after an IOTLB invalidation that began
//!   after the unmap has completed, proven by a [`FlushTicket`].
//!
//! Addresses are [`Iova`]s; sizes are counted in pages of the allocator's
//! granule (4 KiB unless configured otherwise).

#![forbid(unsafe_code)]
// `cfg(loom)` selects loom's model of the locks and atomics (see `sync.rs`).
#![allow(unexpected_cfgs)]

mod allocator;
mod flush_queue;
mod magazine;
mod range;
mod sync;

#[cfg(all(test, not(loom)))]
mod model_tests;

#[cfg(all(test, loom))]
mod loom_tests;

use core::fmt;

use crate::addr::Iova;

pub use allocator::{Allocation, CpuCache, IovaAllocator, DEFAULT_DEPOT_MAGAZINES};
pub use flush_queue::{FlushClock, FlushQueue, FlushTicket, QueueFull};
pub use magazine::{CACHED_MAX_PAGES, MAGAZINE_SIZE};
pub use range::{RangeAllocator, RangeKind};

/// The granule used when none is given: 4 KiB, the smallest translation granule
/// of SMMUv3, VT-d and AMD-Vi.
pub const DEFAULT_GRANULE: u64 = 4096;

/// The highest IOVA a device can emit (its DMA mask), inclusive.
///
/// A 32-bit device gets IOVAs below 4 GiB: `DmaLimit::bits(32)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DmaLimit {
    last: Iova,
}

impl DmaLimit {
    /// No limit: the whole 64-bit space.
    pub const NONE: Self = Self { last: Iova(u64::MAX) };

    /// A limit given as a DMA mask: the highest address the device can emit.
    pub const fn from_mask(mask: u64) -> Self {
        Self { last: Iova(mask) }
    }

    /// A device with `bits` address lines (`bits(32)`: below 4 GiB). Values of
    /// 64 or more mean no limit.
    pub const fn bits(bits: u32) -> Self {
        if bits >= 64 {
            Self::NONE
        } else {
            Self { last: Iova((1u64 << bits) - 1) }
        }
    }

    /// The highest address the device can emit.
    pub const fn last(self) -> Iova {
        self.last
    }

    /// One past the last whole page of size `1 << shift` below the limit.
    pub(crate) const fn end_pfn(self, shift: u32) -> u64 {
        // `last` is inclusive: the page holding it counts only if it is whole.
        let pages_end = (self.last.0 >> shift).saturating_add(1);
        let page_mask = (1u64 << shift) - 1;
        if self.last.0 & page_mask == page_mask {
            pages_end
        } else {
            pages_end - 1
        }
    }
}

impl Default for DmaLimit {
    fn default() -> Self {
        Self::NONE
    }
}

/// Why an IOVA operation was refused. An error leaves the allocator unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IovaError {
    /// A request for zero pages, or an empty reservation.
    ZeroSize,
    /// A request for more pages than the whole window holds.
    SizeAboveWindow {
        /// Pages requested.
        pages: u64,
        /// Pages in the window.
        window_pages: u64,
    },
    /// No free, suitably aligned range of that size below the limit.
    Exhausted {
        /// Pages requested (after rounding to the size class).
        pages: u64,
        /// The device's limit.
        limit: DmaLimit,
    },
    /// The address does not start a live allocation of that size: never
    /// allocated, already freed (a double free), reserved, or the wrong size.
    NotAllocated {
        /// The address given.
        iova: Iova,
        /// The size given, in pages.
        pages: u64,
    },
    /// A reservation overlaps an allocation or another reservation.
    ReserveOverlap {
        /// Start of the refused reservation.
        start: Iova,
        /// End (exclusive) of the refused reservation.
        end: Iova,
    },
    /// The device's limit lies below the window's first page: it can reach
    /// nothing in it.
    LimitBelowWindow {
        /// The device's limit.
        limit: DmaLimit,
        /// The window's first address.
        window_start: Iova,
    },
    /// The window or granule given to a constructor is unusable: the granule
    /// is not a power of two, the window is empty or not granule-aligned.
    InvalidWindow,
    /// A CPU index not below the CPU count the allocator was built for.
    CpuOutOfRange {
        /// The index given.
        cpu: usize,
        /// The number of CPUs.
        cpus: usize,
    },
    /// An [`Allocation`] handed to an allocator that did not make it. The
    /// allocation is dropped: its IOVA stays allocated in its own allocator.
    ForeignAllocation,
    /// The heap refused memory for the allocator's bookkeeping.
    NoMemory,
}

impl fmt::Display for IovaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::ZeroSize => f.write_str("zero-sized IOVA request"),
            Self::SizeAboveWindow { pages, window_pages } => {
                write!(f, "{pages} pages requested, the window holds {window_pages}")
            }
            Self::Exhausted { pages, limit } => {
                write!(f, "no free size-aligned range of {pages} pages below {:#x}", limit.last.0)
            }
            Self::NotAllocated { iova, pages } => {
                write!(f, "{iova:?} does not start a live allocation of {pages} pages")
            }
            Self::ReserveOverlap { start, end } => {
                write!(f, "reservation {start:?}..{end:?} overlaps a live range")
            }
            Self::LimitBelowWindow { limit, window_start } => {
                write!(f, "device limit {:#x} is below the window start {window_start:?}", limit.last.0)
            }
            Self::InvalidWindow => f.write_str("IOVA window or granule is invalid"),
            Self::CpuOutOfRange { cpu, cpus } => {
                write!(f, "CPU {cpu} out of range (allocator built for {cpus})")
            }
            Self::ForeignAllocation => f.write_str("allocation belongs to another allocator"),
            Self::NoMemory => f.write_str("out of memory for IOVA bookkeeping"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_limit_pages() {
        assert_eq!(DmaLimit::bits(32).end_pfn(12), 1 << 20);
        assert_eq!(DmaLimit::NONE.end_pfn(12), 1 << 52);
        // A limit in the middle of a page excludes that page.
        assert_eq!(DmaLimit::from_mask(0x1_0fff).end_pfn(12), 0x11);
        assert_eq!(DmaLimit::from_mask(0x1_0ffe).end_pfn(12), 0x10);
        assert_eq!(DmaLimit::from_mask(0xffe).end_pfn(12), 0);
        assert_eq!(DmaLimit::NONE.end_pfn(0), u64::MAX);
        assert_eq!(DmaLimit::bits(64), DmaLimit::NONE);
    }
}
