//! Stage 1: block and page attributes (Arm ARM D8.3, "Stage 1 attribute
//! fields in VMSAv8-64 Block and Page descriptors"), the MAIR they index, and
//! what an SMMU context descriptor (or `TCR_ELx`) needs to use the table.

use super::desc::{decode_leaf, encode_address, leaf_type, DescError, Shareability, AF};
use super::{Format, Granule};
use crate::addr::PhysAddr;
use crate::pgtable::{Access, MemType, PgTableError, Prot};

/// `AP[2:1]`, bits `[7:6]`: data access permissions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum S1Ap {
    /// `0b00`: read/write, privileged only.
    PrivRw = 0b00,
    /// `0b01`: read/write, privileged and unprivileged.
    Rw = 0b01,
    /// `0b10`: read-only, privileged only.
    PrivRo = 0b10,
    /// `0b11`: read-only, privileged and unprivileged.
    Ro = 0b11,
}

impl S1Ap {
    const fn from_bits(b: u64) -> Self {
        match b & 0b11 {
            0b00 => Self::PrivRw,
            0b01 => Self::Rw,
            0b10 => Self::PrivRo,
            _ => Self::Ro,
        }
    }
}

/// The attribute fields of a stage-1 block or page descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct S1Attrs {
    /// `AttrIndx[2:0]`, bits `[4:2]`: index into MAIR (see [`MAIR`]).
    pub attr_indx: u8,
    /// `NS`, bit 5: output to the Non-secure PA space (ignored for
    /// Non-secure streams).
    pub ns: bool,
    /// `AP[2:1]`, bits `[7:6]`.
    pub ap: S1Ap,
    /// `SH[1:0]`, bits `[9:8]`.
    pub sh: Shareability,
    /// `AF`, bit 10: access flag (clear means an access flag fault).
    pub af: bool,
    /// `nG`, bit 11: not global, i.e. tagged with the ASID.
    pub ng: bool,
    /// `PXN`, bit 53: privileged execute-never.
    pub pxn: bool,
    /// `UXN`/`XN`, bit 54: unprivileged execute-never.
    pub uxn: bool,
}

impl S1Attrs {
    /// The fields in place; OR with an address and the type bits.
    #[inline(always)]
    pub const fn encode(&self) -> u64 {
        ((self.attr_indx as u64 & 0b111) << 2)
            | ((self.ns as u64) << 5)
            | ((self.ap as u64) << 6)
            | self.sh.bits()
            | ((self.af as u64) << 10)
            | ((self.ng as u64) << 11)
            | ((self.pxn as u64) << 53)
            | ((self.uxn as u64) << 54)
    }

    /// Reads the fields back from a descriptor.
    pub fn decode(word: u64) -> Result<Self, DescError> {
        Ok(Self {
            attr_indx: ((word >> 2) & 0b111) as u8,
            ns: word & (1 << 5) != 0,
            ap: S1Ap::from_bits(word >> 6),
            sh: Shareability::from_desc(word).ok_or(DescError::BadField)?,
            af: word & AF != 0,
            ng: word & (1 << 11) != 0,
            pxn: word & (1 << 53) != 0,
            uxn: word & (1 << 54) != 0,
        })
    }
}

/// A stage-1 block (levels 1, 2) or page (level 3) descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct S1Leaf {
    /// Output address, aligned to the leaf size.
    pub oa: PhysAddr,
    /// Attribute fields.
    pub attrs: S1Attrs,
}

impl S1Leaf {
    /// The descriptor word for a leaf at `level`.
    pub fn encode(&self, level: u8, granule: Granule) -> Result<u64, DescError> {
        let size = leaf_size(level, granule)?;
        Ok(encode_address(granule, self.oa, size)? | self.attrs.encode() | leaf_type(level))
    }

    /// Decodes a leaf found at `level`.
    pub fn decode(word: u64, level: u8, granule: Granule) -> Result<Self, DescError> {
        leaf_size(level, granule)?;
        Ok(Self { oa: decode_leaf(word, level, granule)?, attrs: S1Attrs::decode(word)? })
    }
}

/// Size of a leaf at `level`, if the granule has leaves there.
pub(super) fn leaf_size(level: u8, granule: Granule) -> Result<u64, DescError> {
    let first = match granule {
        Granule::Size4K => 1,
        Granule::Size64K => 2,
    };
    if !(first..=3).contains(&level) {
        return Err(DescError::BadLevel(level));
    }
    Ok(1 << (granule.shift() + (3 - level as u32) * granule.bits_per_level()))
}

/// `AttrIndx` values of the fixed [`MAIR`].
pub mod attr_index {
    /// Normal, inner/outer write-back, read/write-allocate (`0xff`).
    pub const WRITE_BACK: u8 = 0;
    /// Normal, inner/outer non-cacheable (`0x44`).
    pub const NON_CACHEABLE: u8 = 1;
    /// Device-nGnRE (`0x04`).
    pub const DEVICE_NGNRE: u8 = 2;
    /// Device-nGnRnE (`0x00`).
    pub const DEVICE_NGNRNE: u8 = 3;
}

/// The `MAIR_ELx` / SMMU `CD.MAIR` value stage-1 tables are encoded for: one
/// byte per [`attr_index`] entry (Arm ARM, `MAIR_EL1.Attr<n>`).
pub const MAIR: u64 = 0x00_04_44_ff;

/// The Arm VMSAv8-64 stage-1 format (an SMMU context descriptor's TTB0).
///
/// Encoding of [`Prot`]: `AttrIndx` from the memory type (see [`MAIR`]);
/// `AP[2] = !WRITE`, `AP[1] = !PRIV`; execute-never unless `EXEC`, and with
/// `EXEC | PRIV` only `PXN` is clear. Stage 1 cannot express write-only:
/// `WRITE` without `READ` is mapped read/write, as Linux does. `AF` is set
/// (no hardware access-flag management), `SH` is inner shareable for
/// write-back memory and outer shareable otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage1 {
    /// Set `nG` so TLB entries are tagged with the context's ASID (the SMMU
    /// norm; clear it only for a table shared by all ASIDs).
    pub non_global: bool,
}

impl Default for Stage1 {
    fn default() -> Self {
        Self { non_global: true }
    }
}

impl Format for Stage1 {
    const STAGE2: bool = false;

    #[inline(always)]
    fn leaf_attrs(&self, prot: Prot) -> Result<u64, PgTableError> {
        let a = prot.access();
        if !a.contains(Access::READ) && !a.contains(Access::WRITE) {
            return Err(PgTableError::NoAccess);
        }
        let privileged = a.contains(Access::PRIV);
        let ap = match (a.contains(Access::WRITE), privileged) {
            (true, false) => S1Ap::Rw,
            (true, true) => S1Ap::PrivRw,
            (false, false) => S1Ap::Ro,
            (false, true) => S1Ap::PrivRo,
        };
        let exec = a.contains(Access::EXEC);
        let (attr_indx, sh) = match prot.mem() {
            MemType::WriteBack => (attr_index::WRITE_BACK, Shareability::InnerShareable),
            MemType::NonCacheable => (attr_index::NON_CACHEABLE, Shareability::OuterShareable),
            MemType::Device => (attr_index::DEVICE_NGNRE, Shareability::OuterShareable),
            MemType::DeviceStrict => (attr_index::DEVICE_NGNRNE, Shareability::OuterShareable),
        };
        Ok(S1Attrs {
            attr_indx,
            ns: false,
            ap,
            sh,
            af: true,
            ng: self.non_global,
            pxn: !exec,
            uxn: !exec || privileged,
        }
        .encode())
    }

    fn leaf_prot(&self, desc: u64) -> Prot {
        let ap = S1Ap::from_bits(desc >> 6);
        let pxn = desc & (1 << 53) != 0;
        let uxn = desc & (1 << 54) != 0;
        let privileged = matches!(ap, S1Ap::PrivRw | S1Ap::PrivRo);
        let mut access = Access::READ;
        if matches!(ap, S1Ap::PrivRw | S1Ap::Rw) {
            access = access | Access::WRITE;
        }
        if privileged {
            access = access | Access::PRIV;
        }
        if (privileged && !pxn) || (!privileged && !uxn) {
            access = access | Access::EXEC;
        }
        let mem = match ((desc >> 2) & 0b111) as u8 {
            attr_index::WRITE_BACK => MemType::WriteBack,
            attr_index::NON_CACHEABLE => MemType::NonCacheable,
            attr_index::DEVICE_NGNRE => MemType::Device,
            _ => MemType::DeviceStrict,
        };
        Prot::new(access, mem)
    }
}

/// What an SMMU context descriptor (or `TCR_EL1`/`TTBR0_EL1`) needs to walk a
/// stage-1 table. Field encodings as in `TCR_EL1` and SMMUv3 `CD` (which use
/// the same values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage1Config {
    /// `TTB0`: physical address of the root table.
    pub ttb0: PhysAddr,
    /// `T0SZ` = 64 - input address size.
    pub t0sz: u8,
    /// `TG0`: granule encoding.
    pub tg0: u8,
    /// `IPS`: output (intermediate physical) size encoding.
    pub ips: u8,
    /// `IRGN0`: inner cacheability of table walks (`0b01` WBWA, `0b00` NC).
    pub irgn0: u8,
    /// `ORGN0`: outer cacheability of table walks.
    pub orgn0: u8,
    /// `SH0`: shareability of table walks (`0b11` inner, `0b10` outer).
    pub sh0: u8,
    /// `MAIR` the descriptors' `AttrIndx` values refer to.
    pub mair: u64,
    /// The initial lookup level implied by `T0SZ` and `TG0` (informative;
    /// stage 1 has no `SL0` field).
    pub start_level: u8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_descriptor_bit_positions() {
        // Arm ARM D8.3, stage 1 page at level 3, 4 KiB granule:
        // [1:0]=0b11, AttrIndx[4:2], NS[5], AP[7:6], SH[9:8], AF[10], nG[11],
        // OA[47:12], PXN[53], UXN[54].
        let leaf = S1Leaf {
            oa: PhysAddr(0x0000_1234_5678_9000),
            attrs: S1Attrs {
                attr_indx: 2,
                ns: true,
                ap: S1Ap::Ro,
                sh: Shareability::InnerShareable,
                af: true,
                ng: true,
                pxn: true,
                uxn: true,
            },
        };
        let expected = 0x0000_1234_5678_9000
            | 0b11
            | (0b010 << 2)
            | (1 << 5)
            | (0b11 << 6)
            | (0b11 << 8)
            | (1 << 10)
            | (1 << 11)
            | (1 << 53)
            | (1 << 54);
        assert_eq!(expected, 0x0060_1234_5678_9FEB);
        assert_eq!(leaf.encode(3, Granule::Size4K), Ok(expected));
        assert_eq!(S1Leaf::decode(expected, 3, Granule::Size4K), Ok(leaf));
    }

    #[test]
    fn block_descriptor_bit_positions() {
        // 2 MiB block at level 2: bits[1:0] = 0b01, AP = 0b01 (EL0 RW), SH = outer.
        let leaf = S1Leaf {
            oa: PhysAddr(0x8020_0000),
            attrs: S1Attrs {
                attr_indx: 0,
                ns: false,
                ap: S1Ap::Rw,
                sh: Shareability::OuterShareable,
                af: true,
                ng: false,
                pxn: false,
                uxn: true,
            },
        };
        assert_eq!(
            leaf.encode(2, Granule::Size4K),
            Ok(0x8020_0000 | 0b01 | (0b01 << 6) | (0b10 << 8) | (1 << 10) | (1 << 54))
        );
        assert_eq!(leaf.encode(2, Granule::Size4K), Ok(0x0040_0000_8020_0641));
        // A block address must be aligned to the block.
        let bad = S1Leaf { oa: PhysAddr(0x8000_1000), ..leaf };
        assert_eq!(bad.encode(2, Granule::Size4K), Err(DescError::Unaligned));
        assert_eq!(leaf.encode(0, Granule::Size4K), Err(DescError::BadLevel(0)));
    }

    #[test]
    fn sixty_four_k_page_with_52_bit_address() {
        // 64 KiB granule: OA[47:16] in place, OA[51:48] in bits[15:12].
        let leaf = S1Leaf {
            oa: PhysAddr(0x000C_0000_ABCD_0000),
            attrs: S1Attrs {
                attr_indx: 1,
                ns: false,
                ap: S1Ap::PrivRw,
                sh: Shareability::NonShareable,
                af: true,
                ng: false,
                pxn: true,
                uxn: true,
            },
        };
        let expected = 0x0000_0000_ABCD_0000 | (0xC << 12) | 0b11 | (1 << 2) | (1 << 10) | (3 << 53);
        assert_eq!(expected, 0x0060_0000_ABCD_C407);
        assert_eq!(leaf.encode(3, Granule::Size64K), Ok(expected));
        assert_eq!(S1Leaf::decode(expected, 3, Granule::Size64K), Ok(leaf));
    }

    #[test]
    fn mair_bytes() {
        // MAIR Attr<n> is byte n: 0xff Normal WB RW-allocate, 0x44 Normal NC,
        // 0x04 Device-nGnRE, 0x00 Device-nGnRnE.
        assert_eq!(MAIR & 0xff, 0xff);
        assert_eq!((MAIR >> 8) & 0xff, 0x44);
        assert_eq!((MAIR >> 16) & 0xff, 0x04);
        assert_eq!((MAIR >> 24) & 0xff, 0x00);
    }

    #[test]
    fn prot_encoding() {
        let f = Stage1::default();
        // RW, write-back, no exec: AttrIndx 0, AP 0b01, SH inner, AF, nG, PXN, UXN.
        let rw = f.leaf_attrs(Prot::RW).unwrap();
        assert_eq!(rw, (0b01 << 6) | (0b11 << 8) | (1 << 10) | (1 << 11) | (3 << 53));
        // Read-only privileged exec device: AttrIndx 2, AP 0b10, PXN clear, UXN set.
        let p = Prot::new(Access::READ | Access::EXEC | Access::PRIV, MemType::Device);
        let d = f.leaf_attrs(p).unwrap();
        assert_eq!(d, (2 << 2) | (0b10 << 6) | (0b10 << 8) | (1 << 10) | (1 << 11) | (1 << 54));
        assert_eq!(f.leaf_prot(d), p);
        assert_eq!(f.leaf_prot(rw), Prot::RW);
        // Write-only becomes read/write; no access is refused.
        let wo = f.leaf_attrs(Prot::new(Access::WRITE, MemType::WriteBack)).unwrap();
        assert_eq!(wo, rw);
        assert_eq!(f.leaf_attrs(Prot::new(Access::EXEC, MemType::WriteBack)), Err(PgTableError::NoAccess));
        let nc = f.leaf_attrs(Prot::RO.with_mem(MemType::NonCacheable)).unwrap();
        assert_eq!(f.leaf_prot(nc), Prot::RO.with_mem(MemType::NonCacheable));
    }
}
