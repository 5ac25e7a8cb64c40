//! The bits of an AMD-Vi host (v1) I/O page-table entry (AMD IOMMU spec,
//! pub. 48882, 2.2.3), as much as the walker needs. `x86-backends`'
//! `amdvi::pgtable` is the full typed encoder/decoder; a test there checks
//! that both agree.
//!
//! Every entry: PR `[0]`, NextLevel `[11:9]`, Address `[51:12]`, IR `[61]`,
//! IW `[62]`; PTEs add U `[59]` and FC `[60]`. NextLevel 1..=6 is a PDE,
//! 0 a PTE of the level's default size, 7 a PTE of a larger size encoded by
//! trailing ones in the address.

/// PR: present.
pub const PR: u64 = 1 << 0;
/// NextLevel `[11:9]`.
pub const NEXT_LEVEL_SHIFT: u32 = 9;
/// NextLevel mask (after shifting).
pub const NEXT_LEVEL_MASK: u64 = 7;
/// Address `[51:12]`.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// U: untranslated access only (PTE).
pub const U: u64 = 1 << 59;
/// FC: force coherent (PTE): the DMA is snooped whatever its no-snoop bit.
pub const FC: u64 = 1 << 60;
/// IR: read permission.
pub const IR: u64 = 1 << 61;
/// IW: write permission.
pub const IW: u64 = 1 << 62;

/// log2 of the default page size of a level-`level` entry: 12 + 9 (L - 1).
pub const fn level_shift(level: u8) -> u32 {
    12 + 9 * (level as u32 - 1)
}

/// Index of `iova`'s entry in a table at `level`.
pub const fn index(iova: u64, level: u8) -> usize {
    ((iova >> level_shift(level)) & 511) as usize
}

/// A PDE pointing at the `next_level` table at `table` (4 KiB aligned), with
/// IR = IW = 1 so that the PTE alone decides the permission (the effective
/// permission is the AND over DTE, PDEs and PTE).
pub const fn pde(table: u64, next_level: u8) -> u64 {
    PR | ((next_level as u64) << NEXT_LEVEL_SHIFT) | (table & ADDR_MASK) | IR | IW
}

/// A PTE of the level's default size (NextLevel = 0) at `addr`.
pub const fn pte(addr: u64, read: bool, write: bool, fc: bool) -> u64 {
    PR | (addr & ADDR_MASK) | if read { IR } else { 0 } | if write { IW } else { 0 } | if fc { FC } else { 0 }
}

/// NextLevel of an entry.
pub const fn next_level(e: u64) -> u8 {
    ((e >> NEXT_LEVEL_SHIFT) & NEXT_LEVEL_MASK) as u8
}

/// An entry as the hardware walker reads it at some level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// PR = 0.
    NotPresent,
    /// A PDE: next table and its level.
    Table {
        /// The next table's address.
        table: u64,
        /// Its level.
        level: u8,
    },
    /// A PTE: the page's base and log2 of its size.
    Page {
        /// Page base (aligned to the size).
        addr: u64,
        /// log2 of the page size.
        shift: u32,
    },
    /// Something the walker refuses: a PDE whose NextLevel is not below the
    /// entry's level, or a NextLevel = 7 size outside the level's range.
    Invalid,
}

/// Decodes `e` read from a table at `level` (1..=6).
pub const fn decode(e: u64, level: u8) -> Decoded {
    if e & PR == 0 {
        return Decoded::NotPresent;
    }
    let shift = level_shift(level);
    match next_level(e) {
        0 => Decoded::Page { addr: e & ADDR_MASK & !((1u64 << shift) - 1), shift },
        7 => {
            // The first zero address bit at k (k >= 12) gives 2^(k+1).
            let s = ((e & ADDR_MASK) | 0xfff).trailing_ones() + 1;
            if s <= shift || s >= shift + 9 || s >= 52 {
                Decoded::Invalid
            } else {
                Decoded::Page { addr: e & ADDR_MASK & !((1u64 << s) - 1), shift: s }
            }
        }
        n if n < level => Decoded::Table { table: e & ADDR_MASK, level: n },
        _ => Decoded::Invalid,
    }
}

/// Whether an IOVA may pass a PDE at `level` pointing at a `next`-level
/// table: the IOVA bits of skipped levels must be zero.
pub const fn skip_ok(iova: u64, level: u8, next: u8) -> bool {
    if next + 1 >= level {
        return true;
    }
    let lo = level_shift(next + 1);
    let hi = level_shift(level);
    (iova >> lo) & ((1u64 << (hi - lo)) - 1) == 0
}
