//! Second-level paging entries (VT-d spec 9.8, "Second-Level Paging
//! Entries"): one 64-bit format for every level, told apart by the level
//! and the PS bit.
//!
//! | bits | field | here |
//! |------|-------|------|
//! | 0 | R: read | from [`Access::READ`]; also set in every non-leaf entry |
//! | 1 | W: write | from [`Access::WRITE`]; also set in every non-leaf entry |
//! | 2 | X: execute (scalable mode with ECAP.ERS only) | 0 |
//! | 5:3 | EMT: extended memory type (ignored unless ECAP.MTS with EMTE) | 0 |
//! | 6 | IPAT | 0 |
//! | 7 | PS: page size, a 2 MiB (level 2) or 1 GiB (level 3) leaf | leaves above level 1 |
//! | 11 | SNP: snoop (ECAP.SC) | 0 |
//! | 51:12 | ADDR: next table or page frame, bits `[HAW-1:12]` | |
//! | 62 | TM: transient mapping (ECAP.DT) | 0 |
//!
//! An entry is present when R or W is set (bits 1:0 not both 0). QEMU's
//! walker (`vtd_iova_to_slpte`) treats a non-leaf entry without R or W as
//! not present, and combines the permissions along the walk, so non-leaf
//! entries always carry R|W and the leaf alone decides access.

use core::fmt;

use crate::addr::PhysAddr;
use crate::pgtable::{Access, MemType, Prot};

/// R: read permission (bit 0).
pub const R: u64 = 1 << 0;
/// W: write permission (bit 1).
pub const W: u64 = 1 << 1;
/// X: execute permission (bit 2; not used by this format).
pub const X: u64 = 1 << 2;
/// PS: the entry at level 2 or 3 maps a 2 MiB or 1 GiB page (bit 7).
pub const PS: u64 = 1 << 7;
/// SNP: snoop behaviour (bit 11; left 0).
pub const SNP: u64 = 1 << 11;
/// TM: transient mapping (bit 62; left 0).
pub const TM: u64 = 1 << 62;
/// ADDR: bits 51:12 of the next table or page frame.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// log2 of the bytes one entry at `level` (1 = page table) maps:
/// 12 + 9 * (level - 1).
pub const fn level_shift(level: u8) -> u32 {
    12 + 9 * (level as u32 - 1)
}

/// What an entry says, decoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SlEntry {
    /// R = W = 0: nothing mapped (the other bits are ignored by hardware).
    NotPresent,
    /// A pointer to the next-level table.
    Table(PhysAddr),
    /// A page (level 1) or a large page (PS = 1 at level 2 or 3).
    Leaf {
        /// The page frame (aligned to the page size).
        pa: PhysAddr,
        /// R and W.
        access: Access,
    },
}

impl SlEntry {
    /// A non-leaf entry for the table at `pa` (4 KiB aligned): R|W, so that
    /// the leaf's permissions alone decide access.
    pub const fn table(pa: PhysAddr) -> Self {
        Self::Table(pa)
    }

    /// A leaf for `pa` with `prot`'s read and write permissions. Execute,
    /// privilege and memory type have no second-level encoding in legacy
    /// mode and are dropped; a protection without read or write has none.
    pub fn leaf(pa: PhysAddr, prot: Prot) -> Option<Self> {
        let access = prot.access();
        let rw = Access::NONE
            .union(if access.contains(Access::READ) { Access::READ } else { Access::NONE })
            .union(if access.contains(Access::WRITE) { Access::WRITE } else { Access::NONE });
        (rw != Access::NONE).then_some(Self::Leaf { pa, access: rw })
    }

    /// The 64-bit value of the entry at `level` (1..=5).
    pub fn encode(&self, level: u8) -> u64 {
        match *self {
            Self::NotPresent => 0,
            Self::Table(pa) => (pa.0 & ADDR_MASK) | R | W,
            Self::Leaf { pa, access } => {
                let mut v = pa.0 & ADDR_MASK;
                if access.contains(Access::READ) {
                    v |= R;
                }
                if access.contains(Access::WRITE) {
                    v |= W;
                }
                if level > 1 {
                    v |= PS;
                }
                v
            }
        }
    }

    /// Decodes the entry `v` of a table at `level`. Bits this format never
    /// writes (X, EMT, IPAT, SNP, TM, ignored bits) are ignored, as the
    /// walker would.
    pub fn decode(v: u64, level: u8) -> Self {
        if v & (R | W) == 0 {
            return Self::NotPresent;
        }
        if level == 1 || (v & PS != 0) {
            let size_mask = (1u64 << level_shift(level)) - 1;
            let mut access = Access::NONE;
            if v & R != 0 {
                access = access.union(Access::READ);
            }
            if v & W != 0 {
                access = access.union(Access::WRITE);
            }
            Self::Leaf { pa: PhysAddr(v & ADDR_MASK & !size_mask), access }
        } else {
            Self::Table(PhysAddr(v & ADDR_MASK))
        }
    }

    /// The protection a leaf stands for (write-back: the format has no
    /// memory type in legacy mode).
    pub fn prot(&self) -> Option<Prot> {
        match *self {
            Self::Leaf { access, .. } => Some(Prot::new(access, MemType::WriteBack)),
            _ => None,
        }
    }
}

impl fmt::Debug for SlEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotPresent => f.write_str("NotPresent"),
            Self::Table(pa) => write!(f, "Table({:#x})", pa.0),
            Self::Leaf { pa, access } => write!(f, "Leaf({:#x}, {access:?})", pa.0),
        }
    }
}
