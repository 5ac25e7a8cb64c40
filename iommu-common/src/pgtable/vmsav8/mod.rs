//! The Arm VMSAv8-64 translation table format (Arm ARM chapter D8), as an
//! SMMUv3 walks it for stage 1 (context descriptors) and stage 2 (stream
//! table entries).
//!
//! One walker, [`Vmsav8Table`], holds the mapping policy: table allocation,
//! block selection, break-before-make, invalidation gathering. What differs
//! between the stages is only the attribute encoding, behind [`Format`]
//! ([`Stage1`], [`Stage2`]), as Google's `aarch64-paging` separates
//! descriptors from mapping.
//!
//! Supported: 4 KiB and 64 KiB granules; input sizes of 25 to 48 bits (the
//! initial level follows from it); output sizes of 32 to 48 bits (52 with the
//! 64 KiB granule, `OA[51:48]` folded into `bits[15:12]`); blocks of 1 GiB and
//! 2 MiB (4 KiB granule) and 512 MiB (64 KiB granule), used automatically by
//! [`IoPageTable::map`](crate::pgtable::IoPageTable::map) where alignment
//! allows. Not supported: the 16 KiB granule, FEAT_LPA2 (52-bit with 4 KiB),
//! the contiguous hint, hardware access/dirty flag management.
//!
//! # Stage-2 concatenation
//!
//! With [`TableConfig::prefer_concatenation`], a stage-2 table whose initial
//! level would hold at most 16 entries starts one level lower with that many
//! concatenated tables instead (one lookup less per walk). Independently of
//! the option, concatenation is used where the architecture requires it
//! (R_SRKBC: a 4 KiB-granule level-0 start needs at least a 44-bit output
//! size), and construction fails if that needs more than 16 tables.
//!
//! # Invariants
//!
//! No table except the root is ever empty: unmap frees a table as soon as its
//! last entry goes (through the gather). So a valid table entry always means
//! "something is mapped below", and mapping a block over a table is an
//! overlap ([`PgTableError::AlreadyMapped`]),
//! never a silent replacement.

mod desc;
mod granule;
mod map;
mod stage1;
mod stage2;
mod table;
#[cfg(test)]
mod tests;
mod unmap;

pub use desc::{DescError, Shareability, TableDesc, AF, TABLE_OR_PAGE, VALID};
pub use granule::Granule;
pub use stage1::{attr_index, S1Ap, S1Attrs, S1Leaf, Stage1, Stage1Config, MAIR};
pub use stage2::{mem_attr, S2Ap, S2Attrs, S2Leaf, Stage2, Stage2Config};
pub use table::{TableStats, Vmsav8Table};

use crate::pgtable::{PgTableError, Prot};

/// A stage-1 table.
pub type S1Table<A> = Vmsav8Table<Stage1, A>;
/// A stage-2 table.
pub type S2Table<A> = Vmsav8Table<Stage2, A>;

/// The stage-specific part of the format: how a [`Prot`] becomes the
/// attribute bits of a block or page descriptor and back.
pub trait Format: Copy + core::fmt::Debug {
    /// Whether this is a stage-2 format (which may concatenate initial tables).
    const STAGE2: bool;

    /// The attribute bits of a leaf mapped with `prot`: everything except the
    /// output address and `bits[1:0]`. Bits outside the lower `[11:2]` and upper
    /// `[63:50]` attribute fields are ignored.
    fn leaf_attrs(&self, prot: Prot) -> Result<u64, PgTableError>;

    /// The protection a leaf descriptor encodes.
    fn leaf_prot(&self, desc: u64) -> Prot;
}

/// How unmapping part of a block is carried out.
///
/// The block is always replaced by a table built beforehand with the same
/// output addresses and attributes for every part that stays mapped (nested
/// where needed: 4 KiB out of a 1 GiB block gives a level-2 table with one
/// level-3 table). The policies differ in how that table is linked in:
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SplitPolicy {
    /// Break-before-make, always correct. `unmap` writes the block entry
    /// invalid (break) and records the whole block range in the gather; the
    /// prepared table is linked in by
    /// [`IoPageTable::complete`](crate::pgtable::IoPageTable::complete) after
    /// the caller's invalidation (make). Until then the rest of the block
    /// faults, so a device must not use it in that window (or its
    /// transactions must be stalled and retried).
    #[default]
    BreakBeforeMake,
    /// For an SMMU with `SMMU_IDR3.BBML = 2` (FEAT_BBM level 2): the table
    /// replaces the block in one write, with no window; the gather holds just
    /// the unmapped range (with the block's size as leaf size, since the TLB
    /// may hold the block).
    Bbml2,
}

/// Geometry and behaviour of a [`Vmsav8Table`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableConfig {
    /// Translation granule.
    pub granule: Granule,
    /// Input address size in bits (25..=48).
    pub ias: u32,
    /// Output address size in bits (32, 36, 40, 42, 44, 48; 52 with 64 KiB).
    pub oas: u32,
    /// Whether the IOMMU's table walks snoop CPU caches (SMMU
    /// `IDR0.COHACC`). Selects the walk attributes reported in the
    /// stage configs; a non-coherent walker also needs the allocator's
    /// [`sync_for_walker`](crate::pgtable::PageAllocator::sync_for_walker).
    pub coherent_walk: bool,
    /// How partial block unmaps are linked in.
    pub split: SplitPolicy,
    /// Stage 2 only: concatenate initial tables whenever possible.
    pub prefer_concatenation: bool,
}

impl TableConfig {
    /// A coherent-walk, break-before-make configuration without optional
    /// concatenation.
    pub const fn new(granule: Granule, ias: u32, oas: u32) -> Self {
        Self {
            granule,
            ias,
            oas,
            coherent_walk: true,
            split: SplitPolicy::BreakBeforeMake,
            prefer_concatenation: false,
        }
    }

    /// Sets [`coherent_walk`](Self::coherent_walk).
    pub const fn with_coherent_walk(self, coherent_walk: bool) -> Self {
        Self { coherent_walk, ..self }
    }

    /// Sets [`split`](Self::split).
    pub const fn with_split(self, split: SplitPolicy) -> Self {
        Self { split, ..self }
    }

    /// Sets [`prefer_concatenation`](Self::prefer_concatenation).
    pub const fn with_concatenation(self, prefer_concatenation: bool) -> Self {
        Self { prefer_concatenation, ..self }
    }
}
