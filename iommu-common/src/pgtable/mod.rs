//! IO page tables: the format-neutral [`IoPageTable`] trait and one module per
//! hardware format.
//!
//! - [`vmsav8`]: the Arm VMSAv8-64 stage-1 and stage-2 formats an SMMUv3 walks
//!   (4 KiB and 64 KiB granules).
//! - [`x86`]: the Intel VT-d second-level format (3/4/5 levels, 2 MiB and
//!   1 GiB leaves where SLLPS allows).
//! - [`amd`]: the AMD-Vi IO page-table format (1 to 6 levels, 4 KiB, 2 MiB and
//!   1 GiB leaves).
//!
//! The shared pieces are the permissions and memory type of a mapping
//! ([`Prot`]), the errors ([`PgTableError`]), the invalidation record an unmap
//! fills ([`IotlbGather`]) and the source of table memory ([`PageAllocator`],
//! with [`PoolAllocator`] as a host/identity-mapped implementation).
//!
//! # Life cycle of a change
//!
//! 1. `map*` only ever turns invalid entries valid, so it needs no TLB
//!    invalidation (a mapping over a valid entry is [`PgTableError::AlreadyMapped`]:
//!    break-before-make is the caller's job, never a silent overwrite).
//! 2. `unmap*` removes entries and records in an [`IotlbGather`] which input
//!    ranges the IOMMU must invalidate and which table pages were unlinked.
//! 3. The caller invalidates (SMMU: `CMD_TLBI_*` for the ranges, then
//!    `CMD_SYNC`), then calls [`IoPageTable::complete`] which frees the
//!    unlinked table pages and finishes any block split (see
//!    [`vmsav8::SplitPolicy`]).
//!
//! ```
//! use iommu_common::addr::{Iova, PhysAddr};
//! use iommu_common::pgtable::vmsav8::{Granule, S2Table, Stage2, TableConfig};
//! use iommu_common::pgtable::{IoPageTable, IotlbGather, PoolAllocator, Prot};
//!
//! let cfg = TableConfig::new(Granule::Size4K, 48, 48);
//! let mut pt = S2Table::new(Stage2, cfg, PoolAllocator::new(16, 4096)).unwrap();
//! // 2 MiB, suitably aligned: one block.
//! pt.map(Iova(0x4000_0000), PhysAddr(0x8_0000_0000), 0x20_0000, Prot::RW).unwrap();
//! // Unmapping 4 KiB of it splits the block.
//! let mut gather = IotlbGather::new();
//! pt.unmap(Iova(0x4000_1000), 0x1000, &mut gather).unwrap();
//! for r in gather.ranges() {
//!     // CMD_TLBI_S2_IPA over r (Leaf = !gather.tables_removed()), ...
//! }
//! // ... CMD_SYNC, then:
//! pt.complete(&mut gather).unwrap();
//! assert_eq!(pt.iova_to_phys(Iova(0x4000_2000)), Some(PhysAddr(0x8_0000_2000)));
//! assert_eq!(pt.iova_to_phys(Iova(0x4000_1000)), None);
//! ```

mod alloc;
pub mod amd;
mod error;
mod gather;
mod pool;
mod prot;
pub mod vmsav8;
pub mod x86;

pub use alloc::{PageAllocator, TablePage};
pub use error::{ConfigError, PgTableError};
pub use gather::{IotlbGather, IovaRange};
pub use pool::PoolAllocator;
pub use prot::{Access, MemType, Prot};

use crate::addr::{Iova, PhysAddr};

/// What one input address translates to: the output address for that input
/// address, and the leaf that maps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The output address of the looked-up input address (offset included).
    pub paddr: PhysAddr,
    /// Size in bytes of the page or block that maps it.
    pub size: u64,
    /// Permissions and memory type of that leaf, as the format encodes them.
    pub prot: Prot,
}

/// An IO page table: the software side of one translation table format.
///
/// All operations are all-or-nothing: an `Err` leaves the table exactly as it
/// was (entries, table pages and allocator state).
pub trait IoPageTable {
    /// The page and block sizes this table can map, as a bitmap (bit `n` set
    /// means `1 << n` bytes), like Linux's `pgsize_bitmap`.
    fn page_sizes(&self) -> u64;

    /// Input address size in bits: input addresses must be below `1 << ias()`.
    fn ias(&self) -> u32;

    /// Output address size in bits: output addresses must be below `1 << oas()`.
    fn oas(&self) -> u32;

    /// Maps `pgcount` pages of `pgsize` bytes (one of [`page_sizes`](Self::page_sizes))
    /// from `iova` to `paddr` onwards, as leaves of exactly that size.
    ///
    /// One call fills consecutive entries; callers do not loop per page.
    /// Fails with [`PgTableError::AlreadyMapped`] if any part of the range is
    /// mapped.
    fn map_pages(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: u64,
        pgcount: usize,
        prot: Prot,
    ) -> Result<(), PgTableError>;

    /// Maps `len` bytes from `iova` to `paddr`, using the largest leaves the
    /// alignment of `iova` and `paddr` allows at each point of the range.
    /// `iova`, `paddr` and `len` must be multiples of the smallest page size.
    fn map(&mut self, iova: Iova, paddr: PhysAddr, len: u64, prot: Prot) -> Result<(), PgTableError>;

    /// Unmaps the range `[iova, iova + pgsize * pgcount)`, whatever leaf sizes
    /// map it; leaves partly inside the range are split. Every byte of the
    /// range must be mapped ([`PgTableError::NotMapped`] otherwise).
    ///
    /// The ranges to invalidate and the table pages to free afterwards are
    /// added to `gather`; see [`complete`](Self::complete).
    fn unmap_pages(
        &mut self,
        iova: Iova,
        pgsize: u64,
        pgcount: usize,
        gather: &mut IotlbGather,
    ) -> Result<(), PgTableError>;

    /// Unmaps `len` bytes from `iova` (both multiples of the smallest page
    /// size); see [`unmap_pages`](Self::unmap_pages).
    fn unmap(&mut self, iova: Iova, len: u64, gather: &mut IotlbGather) -> Result<(), PgTableError> {
        let min = 1u64 << self.page_sizes().trailing_zeros();
        if len == 0 {
            return Err(PgTableError::SizeZero);
        }
        if len % min != 0 {
            return Err(PgTableError::UnalignedSize);
        }
        let count = usize::try_from(len / min).map_err(|_| PgTableError::IovaOutOfRange)?;
        self.unmap_pages(iova, min, count, gather)
    }

    /// Finishes the unmaps recorded in `gather` once the caller has
    /// invalidated its ranges in the IOMMU (and waited for that to complete):
    /// frees the unlinked table pages and installs the tables prepared by
    /// block splits. Leaves `gather` empty for reuse.
    ///
    /// Called before the invalidation has completed, the IOMMU could still
    /// walk freed pages: a device-visible bug (not CPU memory unsafety),
    /// which is why this is the caller's explicit step.
    fn complete(&mut self, gather: &mut IotlbGather) -> Result<(), PgTableError>;

    /// The current translation of `iova` as the IOMMU's walker would find it.
    fn lookup(&self, iova: Iova) -> Option<Translation>;

    /// The output address `iova` translates to, if it is mapped.
    fn iova_to_phys(&self, iova: Iova) -> Option<PhysAddr> {
        self.lookup(iova).map(|t| t.paddr)
    }
}
