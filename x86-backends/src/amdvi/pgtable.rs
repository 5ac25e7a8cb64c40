//! Host (v1) I/O page table entries (48882 2.2.3): a pure encoder/decoder
//! for PDEs and PTEs. The walk and the mapping policy belong to
//! `iommu-common`'s page-table layer, which a later step plugs this into.
//!
//! A table at level L (1..=6) has 512 eight-byte entries indexed by IOVA
//! bits `[12+9L-1 : 12+9(L-1)]`. Every entry has PR `[0]`, NextLevel
//! `[11:9]`, Address `[51:12]`, IR `[61]`, IW `[62]`; A `[5]` and D `[6]`
//! are the host access/dirty bits (HASup/HDSup), PTEs add U `[59]`
//! (untranslated access only) and FC `[60]` (force coherent).
//!
//! NextLevel decides the kind of entry:
//!
//! - 1..=6: a PDE pointing at a table of that level. Skipping levels is
//!   allowed (NextLevel < L - 1); the IOVA bits the skipped levels would
//!   index must then be zero ([`skip_ok`]).
//! - 0: a PTE mapping a page of the level's default size, 2^(12+9(L-1)).
//! - 7: a PTE mapping a larger power-of-two page, below the next level's
//!   default size; its size is encoded in the address by trailing ones:
//!   with the first zero address bit at position k (k >= 12), the page is
//!   2^(k+1) bytes. Every entry the page spans at this level holds the
//!   same value ([`Pte::entries`]).

use core::fmt;

use iommu_common::addr::PhysAddr;

/// PR.
pub const PR: u64 = 1 << 0;
/// A: accessed (host access bit).
pub const A: u64 = 1 << 5;
/// D: dirty (PTE only).
pub const D: u64 = 1 << 6;
/// NextLevel shift.
pub const NEXT_LEVEL_SHIFT: u32 = 9;
/// Address `[51:12]`.
pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
/// U: untranslated access only (PTE).
pub const U: u64 = 1 << 59;
/// FC: force coherent (PTE).
pub const FC: u64 = 1 << 60;
/// IR: read permission.
pub const IR: u64 = 1 << 61;
/// IW: write permission.
pub const IW: u64 = 1 << 62;
/// Bits `[58:52]`: reserved, must be zero.
const RSVD_PTE: u64 = 0x07f0_0000_0000_0000;
/// Bits `[60:52]`: reserved in a PDE.
const RSVD_PDE: u64 = 0x1ff0_0000_0000_0000;

/// log2 of the default page size at `level` (1..=6): 12 + 9 * (level - 1).
pub const fn level_shift(level: u8) -> u32 {
    12 + 9 * (level as u32 - 1)
}

/// Why an entry was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgError {
    /// A level outside 1..=6.
    BadLevel(u8),
    /// A PDE whose NextLevel is not below its own level.
    BadNextLevel {
        /// The entry's level.
        level: u8,
        /// NextLevel.
        next: u8,
    },
    /// A page size that is not a power of two this level can map.
    BadPageSize {
        /// The entry's level.
        level: u8,
        /// Size in bytes (for decode: the size the address encodes).
        size: u64,
    },
    /// An address misaligned for its use or above 2^52.
    BadAddress(PhysAddr),
    /// Reserved bits set.
    Reserved(u64),
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLevel(l) => write!(f, "level {l} not in 1..=6"),
            Self::BadNextLevel { level, next } => write!(f, "level {level} PDE with NextLevel {next}"),
            Self::BadPageSize { level, size } => write!(f, "level {level} cannot map a {size:#x}-byte page"),
            Self::BadAddress(a) => write!(f, "bad address {a:#x}"),
            Self::Reserved(bits) => write!(f, "reserved bits {bits:#018x} set"),
        }
    }
}

const fn check_level(level: u8) -> Result<(), PgError> {
    if level >= 1 && level <= 6 {
        Ok(())
    } else {
        Err(PgError::BadLevel(level))
    }
}

/// Access permission of an entry (IR/IW). The effective permission is the
/// AND of the DTE's and every PDE's and the PTE's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Perms {
    /// IR.
    pub read: bool,
    /// IW.
    pub write: bool,
}

impl Perms {
    /// Read and write.
    pub const RW: Self = Self { read: true, write: true };

    const fn bits(self) -> u64 {
        (if self.read { IR } else { 0 }) | (if self.write { IW } else { 0 })
    }

    const fn from_bits(v: u64) -> Self {
        Self { read: v & IR != 0, write: v & IW != 0 }
    }
}

/// A page directory entry: points at the next table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pde {
    /// The next table (4 KiB aligned).
    pub table: PhysAddr,
    /// NextLevel (1..=6, below the PDE's own level).
    pub next_level: u8,
    /// IR/IW.
    pub perms: Perms,
}

impl Pde {
    /// A PDE at `level` pointing at a `next_level` table at `table`.
    pub fn new(level: u8, table: PhysAddr, next_level: u8, perms: Perms) -> Result<Self, PgError> {
        check_level(level)?;
        if next_level == 0 || next_level >= level {
            return Err(PgError::BadNextLevel { level, next: next_level });
        }
        if table.0 & !ADDR_MASK != 0 {
            return Err(PgError::BadAddress(table));
        }
        Ok(Self { table, next_level, perms })
    }

    /// Number of levels skipped between this PDE's level and the next table.
    pub const fn skipped(&self, level: u8) -> u8 {
        level - 1 - self.next_level
    }

    /// The entry value.
    pub const fn encode(&self) -> u64 {
        PR | ((self.next_level as u64) << NEXT_LEVEL_SHIFT) | self.table.0 | self.perms.bits()
    }
}

/// Whether `iova` may use a PDE at `level` whose NextLevel is `next_level`:
/// the IOVA bits that the skipped levels would index must be zero.
pub const fn skip_ok(iova: u64, level: u8, next_level: u8) -> bool {
    if next_level + 1 >= level {
        return true;
    }
    // Skipped levels: next_level + 1 ..= level - 1.
    let lo = level_shift(next_level + 1);
    let hi = level_shift(level);
    (iova >> lo) & ((1u64 << (hi - lo)) - 1) == 0
}

/// A page table entry: maps a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pte {
    /// The page (aligned to its size).
    pub addr: PhysAddr,
    /// log2 of the page size.
    pub size_shift: u32,
    /// IR/IW.
    pub perms: Perms,
    /// FC: force coherent.
    pub fc: bool,
    /// U: untranslated access only.
    pub u: bool,
}

impl Pte {
    /// A PTE at `level` mapping the `size`-byte page at `addr`: the level's
    /// default size (NextLevel=0) or a larger power of two below the next
    /// level's default (NextLevel=7).
    pub fn new(level: u8, addr: PhysAddr, size: u64, perms: Perms) -> Result<Self, PgError> {
        check_level(level)?;
        let shift = level_shift(level);
        if !size.is_power_of_two() || size.trailing_zeros() < shift || size.trailing_zeros() >= shift + 9 {
            return Err(PgError::BadPageSize { level, size });
        }
        if addr.0 & (size - 1) != 0 || addr.0 & !ADDR_MASK != 0 {
            return Err(PgError::BadAddress(addr));
        }
        Ok(Self { addr, size_shift: size.trailing_zeros(), perms, fc: false, u: false })
    }

    /// The page size in bytes.
    pub const fn size(&self) -> u64 {
        1 << self.size_shift
    }

    /// How many consecutive entries at `level` hold this PTE (1 for the
    /// default size).
    pub const fn entries(&self, level: u8) -> u64 {
        1 << (self.size_shift - level_shift(level))
    }

    /// NextLevel for this PTE at `level`: 0 for the default size, else 7.
    pub const fn next_level(&self, level: u8) -> u8 {
        if self.size_shift == level_shift(level) {
            0
        } else {
            7
        }
    }

    /// The entry value at `level`.
    pub const fn encode(&self, level: u8) -> u64 {
        let next = self.next_level(level);
        let addr = if next == 7 {
            // Ones from bit 12 up to bit size_shift - 2, a zero at size_shift - 1.
            (self.addr.0 | ((1 << (self.size_shift - 1)) - 1)) & ADDR_MASK
        } else {
            self.addr.0
        };
        PR | ((next as u64) << NEXT_LEVEL_SHIFT)
            | addr
            | self.perms.bits()
            | if self.fc { FC } else { 0 }
            | if self.u { U } else { 0 }
    }
}

/// An entry read back from a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entry {
    /// PR = 0.
    NotPresent,
    /// A PDE.
    Table(Pde),
    /// A PTE.
    Page(Pte),
}

/// The size (log2) a NextLevel=7 address field encodes: 2^(k+1) with k the
/// first zero bit at or above bit 12.
pub const fn encoded_size_shift(raw: u64) -> u32 {
    (raw | 0xfff).trailing_ones() + 1
}

impl Entry {
    /// Parses an entry read from a table at `level`. The A/D bits are
    /// hardware-owned and ignored.
    pub fn decode(raw: u64, level: u8) -> Result<Self, PgError> {
        check_level(level)?;
        if raw & PR == 0 {
            return Ok(Self::NotPresent);
        }
        let next = ((raw >> NEXT_LEVEL_SHIFT) & 7) as u8;
        let perms = Perms::from_bits(raw);
        match next {
            1..=6 => {
                if raw & RSVD_PDE != 0 {
                    return Err(PgError::Reserved(raw & RSVD_PDE));
                }
                if next >= level {
                    return Err(PgError::BadNextLevel { level, next });
                }
                Ok(Self::Table(Pde { table: PhysAddr(raw & ADDR_MASK), next_level: next, perms }))
            }
            _ => {
                if raw & RSVD_PTE != 0 {
                    return Err(PgError::Reserved(raw & RSVD_PTE));
                }
                let shift = level_shift(level);
                let size_shift = if next == 0 { shift } else { encoded_size_shift(raw & ADDR_MASK) };
                if next == 7 && (size_shift <= shift || size_shift >= shift + 9) {
                    return Err(PgError::BadPageSize {
                        level,
                        size: 1u64.checked_shl(size_shift).unwrap_or(0),
                    });
                }
                let addr = raw & ADDR_MASK & !((1u64 << size_shift) - 1);
                Ok(Self::Page(Pte {
                    addr: PhysAddr(addr),
                    size_shift,
                    perms,
                    fc: raw & FC != 0,
                    u: raw & U != 0,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Bit positions from the PDE/PTE figures (2.2.3): PR [0], A [5], D [6],
    // NextLevel [11:9], Address [51:12], U [59], FC [60], IR [61], IW [62].

    #[test]
    fn pde_layout() {
        let p = Pde::new(4, PhysAddr(0x1234_5000), 3, Perms::RW).unwrap();
        assert_eq!(p.encode(), 1 | (3 << 9) | 0x1234_5000 | (1 << 61) | (1 << 62));
        assert_eq!(Entry::decode(p.encode(), 4), Ok(Entry::Table(p)));
        assert_eq!(
            Pde::new(3, PhysAddr(0x1000), 3, Perms::RW),
            Err(PgError::BadNextLevel { level: 3, next: 3 })
        );
        assert_eq!(
            Pde::new(1, PhysAddr(0x1000), 0, Perms::RW),
            Err(PgError::BadNextLevel { level: 1, next: 0 })
        );
        assert!(Pde::new(2, PhysAddr(0x1800), 1, Perms::RW).is_err());
    }

    #[test]
    fn level_skipping() {
        // A level-4 PDE pointing straight at a level-1 table skips levels 3
        // and 2, which index IOVA bits [38:21]: they must be zero.
        let p = Pde::new(4, PhysAddr(0x8000), 1, Perms::RW).unwrap();
        assert_eq!(p.skipped(4), 2);
        assert_eq!(p.encode(), 1 | (1 << 9) | 0x8000 | IR | IW);
        assert!(skip_ok(0x0000_8000_001f_f000, 4, 1), "bits [38:21] clear");
        assert!(!skip_ok(0x0000_0000_0020_0000, 4, 1), "bit 21 set");
        assert!(!skip_ok(1 << 38, 4, 1), "bit 38 set");
        assert!(skip_ok(1 << 39, 4, 1), "bit 39 indexes level 4 itself");
        assert!(skip_ok(u64::MAX, 4, 3), "no level skipped");
    }

    #[test]
    fn default_size_ptes() {
        // NextLevel 0: 4 KiB at level 1, 2 MiB at level 2, 1 GiB at level 3.
        let p = Pte::new(1, PhysAddr(0xabc_d000), 0x1000, Perms { read: true, write: false }).unwrap();
        assert_eq!(p.encode(1), 1 | 0xabc_d000 | (1 << 61));
        let p = Pte::new(2, PhysAddr(0x20_0000), 0x20_0000, Perms::RW).unwrap();
        assert_eq!(p.encode(2), 1 | 0x20_0000 | IR | IW);
        assert_eq!(p.entries(2), 1);
        let p = Pte::new(3, PhysAddr(0x4000_0000), 0x4000_0000, Perms::RW).unwrap();
        assert_eq!(p.encode(3) & (7 << 9), 0);
        assert_eq!(Entry::decode(p.encode(3), 3), Ok(Entry::Page(p)));
    }

    #[test]
    fn page_size_encoding_with_next_level_7() {
        // 8 KiB: bit 12 = 0. 16 KiB: bit 12 = 1, bit 13 = 0. 1 MiB at level 1:
        // bits [18:12] ones, bit 19 zero. 4 MiB at level 2: bits [20:12] ones.
        // 256 GiB at level 3: bits [36:12] ones, bit 37 zero.
        let cases = [
            (1u8, 0x2000u64, 0x2000u64, 0x2000u64, 2u64),
            (1, 0x4000, 0x4000, 0x5000, 4),
            (1, 0x10_0000, 0x10_0000, 0x17_f000, 256),
            (2, 0x40_0000, 0x40_0000, 0x5f_f000, 2),
            (3, 0x40_0000_0000, 0x40_0000_0000, 0x5f_ffff_f000, 256),
        ];
        for (level, addr, size, field, entries) in cases {
            let p = Pte::new(level, PhysAddr(addr), size, Perms::RW).unwrap();
            let raw = p.encode(level);
            assert_eq!(raw, PR | (7 << 9) | field | IR | IW, "{size:#x} at level {level}");
            assert_eq!(p.entries(level), entries);
            assert_eq!(encoded_size_shift(field), size.trailing_zeros());
            assert_eq!(Entry::decode(raw, level), Ok(Entry::Page(p)));
        }
        // Sizes a level cannot map.
        assert!(Pte::new(1, PhysAddr(0), 0x20_0000, Perms::RW).is_err(), "2 MiB is level 2's default");
        assert!(Pte::new(2, PhysAddr(0), 0x1000, Perms::RW).is_err());
        assert!(Pte::new(1, PhysAddr(0x1000), 0x2000, Perms::RW).is_err(), "misaligned");
        assert!(Pte::new(1, PhysAddr(0), 0x3000, Perms::RW).is_err());
    }

    #[test]
    fn decode_errors() {
        assert_eq!(Entry::decode(0, 1), Ok(Entry::NotPresent));
        assert_eq!(Entry::decode(0xffff_ffff_ffff_fffe, 1), Ok(Entry::NotPresent));
        assert_eq!(Entry::decode(PR | (2 << 9), 2), Err(PgError::BadNextLevel { level: 2, next: 2 }));
        assert_eq!(Entry::decode(PR | (1 << 52), 1), Err(PgError::Reserved(1 << 52)));
        assert_eq!(Entry::decode(PR | (1 << 9) | FC, 2), Err(PgError::Reserved(FC)));
        // NextLevel 7 at level 1 encoding a 2 MiB page (bits [19:12] ones).
        assert!(matches!(
            Entry::decode(PR | (7 << 9) | 0xf_f000, 1),
            Err(PgError::BadPageSize { level: 1, .. })
        ));
        // FC and U on a PTE.
        let Entry::Page(p) = Entry::decode(PR | FC | U | 0x5000, 1).unwrap() else { panic!() };
        assert!(p.fc && p.u && p.perms == Perms::default());
        assert_eq!(Entry::decode(PR, 7), Err(PgError::BadLevel(7)));
    }

    proptest! {
        #[test]
        fn pte_round_trip(level in 1u8..=6, extra in 0u32..9, pfn in any::<u64>(), r: bool, w: bool, fc: bool) {
            let shift = level_shift(level) + extra;
            prop_assume!(shift < 52);
            let addr = (pfn << shift) & ADDR_MASK;
            let mut p = Pte::new(level, PhysAddr(addr), 1 << shift, Perms { read: r, write: w }).unwrap();
            p.fc = fc;
            prop_assert_eq!(Entry::decode(p.encode(level), level), Ok(Entry::Page(p)));
        }

        #[test]
        fn decode_never_panics(raw in any::<u64>(), level in 0u8..8) {
            let _ = Entry::decode(raw, level);
        }
    }
}
