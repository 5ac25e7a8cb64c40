//! Translation granules and the lookup geometry they imply (Arm ARM D8.2,
//! "Translation table walk" and the per-granule lookup tables).

use crate::pgtable::ConfigError;

/// The translation granule: page size and size of every non-root table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Granule {
    /// 4 KiB pages, 512-entry tables; blocks of 2 MiB (level 2) and 1 GiB (level 1).
    Size4K,
    /// 64 KiB pages, 8192-entry tables; blocks of 512 MiB (level 2).
    Size64K,
}

impl Granule {
    /// log2 of the page size.
    pub const fn shift(self) -> u32 {
        match self {
            Self::Size4K => 12,
            Self::Size64K => 16,
        }
    }

    /// The page size in bytes.
    pub const fn size(self) -> u64 {
        1 << self.shift()
    }

    /// Input address bits resolved per lookup level (a table has
    /// `1 << bits_per_level()` entries of 8 bytes).
    pub const fn bits_per_level(self) -> u32 {
        self.shift() - 3
    }

    /// The `TG0` encoding of `TCR_ELx`, `VTCR_EL2`, SMMU `CD.TG0` and
    /// `STE.S2TG`: `0b00` 4 KiB, `0b01` 64 KiB (`0b10` would be 16 KiB).
    pub const fn tg0(self) -> u8 {
        match self {
            Self::Size4K => 0b00,
            Self::Size64K => 0b01,
        }
    }

    /// The lowest-numbered (largest) level that may hold block descriptors
    /// without FEAT_LPA2 / 52-bit FEAT_LPA blocks.
    const fn first_block_level(self) -> u8 {
        match self {
            Self::Size4K => 1,
            Self::Size64K => 2,
        }
    }
}

/// `TCR.IPS` / `VTCR.PS` / `CD.IPS` / `STE.S2PS` encoding of an output size.
pub(crate) const fn ps_encoding(oas: u32) -> Option<u8> {
    match oas {
        32 => Some(0b000),
        36 => Some(0b001),
        40 => Some(0b010),
        42 => Some(0b011),
        44 => Some(0b100),
        48 => Some(0b101),
        52 => Some(0b110),
        _ => None,
    }
}

/// Most tables concatenated at the initial stage-2 lookup (Arm ARM,
/// "Concatenated translation tables for the initial stage 2 lookup").
const MAX_CONCAT: u32 = 16;

/// The fixed shape of one table: levels, entries per table, leaf sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub granule: Granule,
    pub ias: u32,
    pub oas: u32,
    /// Initial lookup level (0..=3); the leaf level is always 3.
    pub start: u8,
    /// Index bits of the root table (more than `bpl` when concatenated).
    pub root_bits: u32,
    /// Number of concatenated tables forming the root (1: none).
    pub concat: u32,
    pub pg_shift: u32,
    pub bpl: u32,
    /// Lowest level number at which blocks may be used.
    pub block_from: u8,
    /// Output addresses are folded (64 KiB granule: `OA[51:48]` in `bits[15:12]`).
    pub fold_oa: bool,
    /// Bitmap of the leaf sizes (see `page_sizes`).
    page_sizes: u64,
    /// `shift(level)` by level.
    shifts: [u32; 4],
    /// Index masks of the root and of other tables.
    root_mask: usize,
    table_mask: usize,
}

impl Geometry {
    /// Works out the lookup for `ias` input bits. Stage 2 may start one level
    /// lower with up to 16 concatenated root tables: always when
    /// `prefer_concat` and possible, and whenever the architecture requires
    /// it (R_SRKBC, as Linux applies it: 4 KiB granule with a level-0 start is
    /// not allowed with an output size below 44 bits).
    pub fn new(
        granule: Granule,
        ias: u32,
        oas: u32,
        stage2: bool,
        prefer_concat: bool,
    ) -> Result<Self, ConfigError> {
        if !(25..=48).contains(&ias) {
            return Err(ConfigError::UnsupportedIas(ias));
        }
        if ps_encoding(oas).is_none() || (oas == 52 && granule == Granule::Size4K) {
            return Err(ConfigError::UnsupportedOas(oas));
        }
        let pg_shift = granule.shift();
        let bpl = granule.bits_per_level();
        let shift = |l: u8| pg_shift + (3 - l as u32) * bpl;
        let mut start = 3u8;
        while shift(start) + bpl < ias {
            start -= 1;
        }
        let mut root_bits = ias - shift(start);
        let mut concat = 1;
        if stage2 && start < 3 {
            let entries = 1u32 << root_bits;
            let mandatory = granule == Granule::Size4K && start == 0 && oas < 44;
            if (prefer_concat || mandatory) && entries <= MAX_CONCAT {
                start += 1;
                root_bits += bpl;
                concat = entries;
            } else if mandatory {
                return Err(ConfigError::ConcatenationImpossible);
            }
        }
        let block_from = granule.first_block_level().max(start);
        Ok(Self {
            granule,
            ias,
            oas,
            start,
            root_bits,
            concat,
            pg_shift,
            bpl,
            block_from,
            fold_oa: granule == Granule::Size64K,
            page_sizes: (block_from..=3).fold(0, |m, l| m | 1 << shift(l)),
            shifts: [shift(0), shift(1), shift(2), shift(3)],
            root_mask: (1 << root_bits) - 1,
            table_mask: (1 << bpl) - 1,
        })
    }

    /// log2 of the size an entry at `level` maps.
    #[inline(always)]
    pub fn shift(&self, level: u8) -> u32 {
        self.shifts[level as usize & 3]
    }

    /// Bytes an entry at `level` maps.
    #[inline(always)]
    pub fn size(&self, level: u8) -> u64 {
        1 << self.shift(level)
    }

    /// Entries in a table at `level`.
    #[inline(always)]
    pub fn entries(&self, level: u8) -> usize {
        if level == self.start {
            1 << self.root_bits
        } else {
            1 << self.bpl
        }
    }

    /// Index of the entry for `va` in its table at `level`.
    #[inline(always)]
    pub fn index(&self, level: u8, va: u64) -> usize {
        let mask = if level == self.start { self.root_mask } else { self.table_mask };
        ((va >> self.shift(level)) as usize) & mask
    }

    /// Bytes to allocate for a table at `level` (the root is rounded up to a
    /// whole granule).
    pub fn alloc_bytes(&self, level: u8) -> usize {
        (self.entries(level) * 8).max(self.granule.size() as usize)
    }

    /// Whether leaves at `level` may be blocks (level 3 always holds pages).
    #[inline(always)]
    pub fn leaf_allowed(&self, level: u8) -> bool {
        level == 3 || level >= self.block_from
    }

    /// The level whose leaves are `size` bytes, if the table supports that size.
    #[inline]
    pub fn level_of(&self, size: u64) -> Option<u8> {
        if !size.is_power_of_two() || size & self.page_sizes() == 0 {
            return None;
        }
        // Level 0 never holds leaves here, so three candidates.
        let s = size.trailing_zeros();
        Some(if s == self.pg_shift {
            3
        } else if s == self.pg_shift + self.bpl {
            2
        } else {
            1
        })
    }

    /// Bitmap of the page and block sizes.
    #[inline]
    pub fn page_sizes(&self) -> u64 {
        self.page_sizes
    }

    /// Output address bits of a descriptor for the (granule-aligned) `pa`.
    #[inline(always)]
    pub fn encode_oa(&self, pa: u64) -> u64 {
        if self.fold_oa {
            (pa & OA_MASK_64K) | ((pa >> 36) & 0xf000)
        } else {
            pa
        }
    }

    /// The output address held in descriptor `d` (block, page or table).
    #[inline(always)]
    pub fn decode_oa(&self, d: u64) -> u64 {
        if self.fold_oa {
            (d & OA_MASK_64K) | ((d & 0xf000) << 36)
        } else {
            d & OA_MASK_4K
        }
    }
}

/// `OA[47:12]` of a 4 KiB-granule descriptor.
pub(crate) const OA_MASK_4K: u64 = 0x0000_ffff_ffff_f000;
/// `OA[47:16]` of a 64 KiB-granule descriptor.
pub(crate) const OA_MASK_64K: u64 = 0x0000_ffff_ffff_0000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_k_48_bit_starts_at_level_0() {
        let g = Geometry::new(Granule::Size4K, 48, 48, false, false).unwrap();
        assert_eq!((g.start, g.root_bits, g.concat), (0, 9, 1));
        assert_eq!(g.size(1), 1 << 30);
        assert_eq!(g.size(2), 1 << 21);
        assert_eq!(g.page_sizes(), (1 << 12) | (1 << 21) | (1 << 30));
        assert_eq!(g.level_of(1 << 21), Some(2));
        assert_eq!(g.level_of(1 << 39), None);
        assert_eq!(g.level_of(1 << 13), None);
        assert_eq!(g.index(0, 0x0000_8000_0000_0000 - 1), 255);
    }

    #[test]
    fn sixty_four_k_geometry() {
        let g = Geometry::new(Granule::Size64K, 48, 52, false, false).unwrap();
        // 64K: level 3 resolves [28:16], level 2 [41:29], level 1 [47:42].
        assert_eq!((g.start, g.root_bits), (1, 6));
        assert_eq!(g.page_sizes(), (1 << 16) | (1 << 29));
        assert_eq!(g.entries(2), 8192);
        let g = Geometry::new(Granule::Size64K, 42, 48, false, false).unwrap();
        assert_eq!((g.start, g.root_bits), (2, 13));
    }

    #[test]
    fn smaller_input_sizes() {
        // 40 bits, stage 1: level 0 with 2 entries.
        let g = Geometry::new(Granule::Size4K, 40, 48, false, false).unwrap();
        assert_eq!((g.start, g.root_bits, g.concat), (0, 1, 1));
        // Stage 2 preferring concatenation: level 1, two tables.
        let g = Geometry::new(Granule::Size4K, 40, 48, true, true).unwrap();
        assert_eq!((g.start, g.root_bits, g.concat), (1, 10, 2));
        assert_eq!(g.alloc_bytes(1), 8192);
        // Stage 2, 42-bit PA: concatenation is mandatory (8 tables).
        let g = Geometry::new(Granule::Size4K, 42, 42, true, false).unwrap();
        assert_eq!((g.start, g.concat), (1, 8));
        // ... and impossible when 32 tables would be needed.
        assert_eq!(
            Geometry::new(Granule::Size4K, 44, 40, true, false),
            Err(ConfigError::ConcatenationImpossible)
        );
        // 39 bits: level 1 natively; 44 bits with 64K: 4 concatenated at level 2.
        let g = Geometry::new(Granule::Size4K, 39, 40, true, false).unwrap();
        assert_eq!((g.start, g.concat), (1, 1));
        let g = Geometry::new(Granule::Size64K, 44, 44, true, true).unwrap();
        assert_eq!((g.start, g.root_bits, g.concat), (2, 15, 4));
        // A 30-bit space starting at level 2 has no 1 GiB blocks.
        let g = Geometry::new(Granule::Size4K, 30, 40, false, false).unwrap();
        assert_eq!(g.start, 2);
        assert_eq!(g.page_sizes(), (1 << 12) | (1 << 21));
    }

    #[test]
    fn rejected_sizes() {
        assert_eq!(
            Geometry::new(Granule::Size4K, 49, 48, false, false),
            Err(ConfigError::UnsupportedIas(49))
        );
        assert_eq!(
            Geometry::new(Granule::Size4K, 48, 52, false, false),
            Err(ConfigError::UnsupportedOas(52))
        );
        assert_eq!(
            Geometry::new(Granule::Size4K, 48, 46, false, false),
            Err(ConfigError::UnsupportedOas(46))
        );
    }

    #[test]
    fn folded_output_address_for_64k() {
        let g = Geometry::new(Granule::Size64K, 48, 52, false, false).unwrap();
        // OA[51:48] = 0xA goes to descriptor bits [15:12].
        let pa = 0x000A_1234_5678_0000;
        assert_eq!(g.encode_oa(pa), 0x0000_1234_5678_A000);
        assert_eq!(g.decode_oa(0x0000_1234_5678_A000 | 0x3), pa);
    }
}
