//! The Intel VT-d second-level translation table format (VT-d spec 3.7 and
//! 9.8): 4-level (48-bit, context-entry AW = 010b) or 3-level (39-bit,
//! AW = 001b) tables of 512 64-bit entries, 4 KiB pages, and 2 MiB / 1 GiB
//! pages where `CAP_REG.SLLPS` offers them. A 5-level (57-bit) geometry is
//! accepted too; QEMU does not offer it.
//!
//! [`SlTable`] implements [`IoPageTable`](crate::pgtable::IoPageTable) with
//! the same contract as the VMSAv8-64 walker: all-or-nothing updates, no
//! silent overwrite of a mapping ([`AlreadyMapped`](super::PgTableError::AlreadyMapped)), unmaps
//! into an [`IotlbGather`](crate::pgtable::IotlbGather), table pages freed
//! once empty (on [`complete`](crate::pgtable::IoPageTable::complete)),
//! never an empty table below the root. Large pages partly unmapped are
//! split at once: unlike Arm, x86 needs no break-before-make to replace a
//! large page with a table mapping the same addresses, so the gather holds
//! the whole large page (the IOTLB may cache it) and nothing is pending.
//!
//! The walker is written for this format rather than reusing the VMSAv8-64
//! one: that one's `Format` trait only abstracts the attribute bits, while
//! the differences here are in the entry kinds themselves (presence by R|W
//! instead of a valid bit, PS instead of the table/block bit, no
//! concatenation, no granules).
//!
//! The driver picks the geometry from the unit's capabilities: the deepest
//! or shallowest `SAGAW` width that covers the input size it needs, input
//! size at most `MGAW + 1`, output size the platform's host address width,
//! large pages from `SLLPS`.

mod entry;
mod table;
#[cfg(test)]
mod tests;

pub use entry::{level_shift, SlEntry, ADDR_MASK, PS, R, SNP, TM, W, X};
pub use table::{SlTable, TableStats};

use crate::pgtable::ConfigError;

/// Geometry of an [`SlTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlConfig {
    /// Levels the walker goes through: 3 (39-bit), 4 (48-bit) or 5 (57-bit).
    pub levels: u8,
    /// Input address size in bits: at most `12 + 9 * levels` (and, for the
    /// unit, at most `MGAW + 1`).
    pub ias: u32,
    /// Output address size in bits (the host address width, 32..=52).
    pub oas: u32,
    /// 2 MiB pages allowed (`SLLPS` bit 0).
    pub large_2m: bool,
    /// 1 GiB pages allowed (`SLLPS` bit 1; needs `large_2m`, which splits
    /// use).
    pub large_1g: bool,
}

impl SlConfig {
    /// `levels` deep with the full input size of that depth, 4 KiB pages
    /// only.
    pub const fn new(levels: u8, oas: u32) -> Self {
        Self { levels, ias: 12 + 9 * levels as u32, oas, large_2m: false, large_1g: false }
    }

    /// Limits the input size (e.g. to `MGAW + 1`).
    pub const fn with_ias(self, ias: u32) -> Self {
        Self { ias, ..self }
    }

    /// Allows large pages.
    pub const fn with_large_pages(self, large_2m: bool, large_1g: bool) -> Self {
        Self { large_2m, large_1g, ..self }
    }

    /// The address width the table's depth covers: 39, 48 or 57.
    pub const fn width(&self) -> u32 {
        12 + 9 * self.levels as u32
    }

    fn check(&self) -> Result<(), ConfigError> {
        if !(3..=5).contains(&self.levels) || self.ias < 21 || self.ias > self.width() {
            return Err(ConfigError::UnsupportedIas(self.ias));
        }
        if !(32..=52).contains(&self.oas) {
            return Err(ConfigError::UnsupportedOas(self.oas));
        }
        if self.large_1g && !self.large_2m {
            // A partial unmap of a 1 GiB page splits it into 2 MiB pages.
            return Err(ConfigError::UnsupportedIas(self.ias));
        }
        Ok(())
    }
}
