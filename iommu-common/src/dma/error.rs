//! Why a DMA operation was refused.

use core::fmt;

use super::FlushError;
use crate::addr::PhysAddr;
use crate::iova::{DmaLimit, IovaError};
use crate::pgtable::PgTableError;

/// Why a DMA operation was refused. A map or allocation that returns one of
/// these changed nothing (see the [module documentation](super#errors) for
/// the one exception, and [`TeardownError`](super::TeardownError) for
/// teardowns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmaError {
    /// A size, or a scatter-gather entry's length, is zero, or the list is
    /// empty.
    ZeroSize,
    /// A direct device cannot reach the buffer: its last byte is above the
    /// device's mask, and no bounce pool could take it.
    MaskViolation {
        /// The last byte address the device would have to emit.
        last: u64,
        /// The device's mask.
        limit: DmaLimit,
    },
    /// No free IOVA range of that size below the device's mask.
    IovaExhausted {
        /// Pages requested (in IOVA granules, after rounding).
        pages: u64,
        /// The device's mask.
        limit: DmaLimit,
    },
    /// Another refusal of the IOVA allocator (a CPU index out of range, a
    /// mask below the IOVA window).
    Iova(IovaError),
    /// The [`DmaMemory`](super::DmaMemory) has no pages to give (below the
    /// mask, for a direct device), or the heap refused bookkeeping memory.
    OutOfMemory,
    /// The bounce pool has no free run of that many slots.
    BouncePoolExhausted {
        /// Slots the mapping needed.
        slots: usize,
    },
    /// The device forces bouncing but the context has no bounce pool.
    NoBouncePool,
    /// The page table refused the map or unmap.
    PageTable(PgTableError),
    /// The IOTLB invalidation did not complete.
    FlushFailed(FlushError),
    /// The memory cannot give a CPU pointer for this physical range (it is not
    /// RAM it knows), which bouncing or cache maintenance needs.
    NotMemory(PhysAddr),
    /// The buffer overlaps the bounce pool.
    OverlapsBouncePool(PhysAddr),
    /// An address or length computation overflowed.
    Overflow,
    /// Behind an IOMMU, a scatter-gather list is mapped as one IOVA span, so
    /// every entry but the first must start on an IOVA granule and every entry
    /// but the last must end on one (after merging physically contiguous
    /// entries); entry `index` of the list given does not.
    SgUnaligned {
        /// Index of the offending entry in the list as given.
        index: usize,
    },
    /// The handle belongs to another device, or the context lacks what the
    /// mapping was made with (the IOMMU domain, the bounce pool, the memory).
    ForeignHandle,
    /// A CPU access to a coherent buffer reaches outside it.
    OutOfBounds {
        /// Offset of the access.
        offset: usize,
        /// Length of the access.
        len: usize,
        /// Size of the buffer.
        size: usize,
    },
    /// The IOVA allocator's granule is not a multiple of both the page
    /// table's smallest page and [`PAGE_SIZE`](super::PAGE_SIZE).
    GranuleMismatch {
        /// The IOVA allocator's granule.
        iova: u64,
        /// The page table's smallest page size.
        table: u64,
    },
}

impl From<PgTableError> for DmaError {
    fn from(e: PgTableError) -> Self {
        Self::PageTable(e)
    }
}

impl From<FlushError> for DmaError {
    fn from(e: FlushError) -> Self {
        Self::FlushFailed(e)
    }
}

impl From<IovaError> for DmaError {
    /// Exhaustion (and a request larger than the window) becomes
    /// [`DmaError::IovaExhausted`]; anything else [`DmaError::Iova`].
    fn from(e: IovaError) -> Self {
        match e {
            IovaError::Exhausted { pages, limit } => Self::IovaExhausted { pages, limit },
            IovaError::SizeAboveWindow { pages, .. } => Self::IovaExhausted { pages, limit: DmaLimit::NONE },
            e => Self::Iova(e),
        }
    }
}

impl fmt::Display for DmaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroSize => f.write_str("zero-sized DMA request"),
            Self::MaskViolation { last, limit } => {
                write!(
                    f,
                    "device cannot reach {last:#x} (mask {:#x}) and nothing bounces",
                    limit.last().raw()
                )
            }
            Self::IovaExhausted { pages, limit } => {
                write!(f, "no IOVA range of {pages} pages below {:#x}", limit.last().raw())
            }
            Self::Iova(e) => write!(f, "IOVA allocator: {e}"),
            Self::OutOfMemory => f.write_str("out of DMA memory"),
            Self::BouncePoolExhausted { slots } => write!(f, "bounce pool has no free run of {slots} slots"),
            Self::NoBouncePool => f.write_str("device forces bouncing but no bounce pool is configured"),
            Self::PageTable(e) => write!(f, "page table: {e}"),
            Self::FlushFailed(e) => write!(f, "IOTLB flush failed: {e}"),
            Self::NotMemory(pa) => write!(f, "{pa:?} is not memory the CPU can reach"),
            Self::OverlapsBouncePool(pa) => write!(f, "buffer at {pa:?} overlaps the bounce pool"),
            Self::Overflow => f.write_str("address arithmetic overflowed"),
            Self::SgUnaligned { index } => {
                write!(f, "scatter-gather entry {index} breaks the contiguous IOVA span (granule alignment)")
            }
            Self::ForeignHandle => f.write_str("handle belongs to another device or domain"),
            Self::OutOfBounds { offset, len, size } => {
                write!(f, "access of {len} bytes at {offset:#x} outside a {size}-byte buffer")
            }
            Self::GranuleMismatch { iova, table } => {
                write!(f, "IOVA granule {iova:#x} does not fit the page table's smallest page {table:#x}")
            }
        }
    }
}
