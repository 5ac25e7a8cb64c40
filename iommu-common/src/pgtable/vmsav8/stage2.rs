//! Stage 2: block and page attributes (Arm ARM D8.3, "Stage 2 attribute
//! fields in VMSAv8-64 Block and Page descriptors") and what an SMMU stream
//! table entry (or `VTCR_EL2`/`VTTBR_EL2`) needs to use the table.

use super::desc::{decode_leaf, encode_address, leaf_type, DescError, Shareability, AF};
use super::stage1::leaf_size;
use super::{Format, Granule};
use crate::addr::PhysAddr;
use crate::pgtable::{Access, MemType, PgTableError, Prot};

/// `S2AP[1:0]`, bits `[7:6]`: bit 6 permits reads, bit 7 writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum S2Ap {
    /// `0b00`: no access.
    None = 0b00,
    /// `0b01`: read-only.
    ReadOnly = 0b01,
    /// `0b10`: write-only.
    WriteOnly = 0b10,
    /// `0b11`: read/write.
    ReadWrite = 0b11,
}

impl S2Ap {
    const fn from_bits(b: u64) -> Self {
        match b & 0b11 {
            0b00 => Self::None,
            0b01 => Self::ReadOnly,
            0b10 => Self::WriteOnly,
            _ => Self::ReadWrite,
        }
    }
}

/// `MemAttr[3:0]` values (with `FWB` disabled): `[3:2]` outer or device,
/// `[1:0]` inner or device type.
pub mod mem_attr {
    /// Normal, outer and inner write-back cacheable.
    pub const WRITE_BACK: u8 = 0b1111;
    /// Normal, outer and inner non-cacheable.
    pub const NON_CACHEABLE: u8 = 0b0101;
    /// Device-nGnRE.
    pub const DEVICE_NGNRE: u8 = 0b0001;
    /// Device-nGnRnE.
    pub const DEVICE_NGNRNE: u8 = 0b0000;
}

/// The attribute fields of a stage-2 block or page descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct S2Attrs {
    /// `MemAttr[3:0]`, bits `[5:2]` (see [`mem_attr`]).
    pub mem_attr: u8,
    /// `S2AP[1:0]`, bits `[7:6]`.
    pub s2ap: S2Ap,
    /// `SH[1:0]`, bits `[9:8]`.
    pub sh: Shareability,
    /// `AF`, bit 10.
    pub af: bool,
    /// `XN[1:0]`, bits `[54:53]`. `0b00` executable, `0b10` execute-never
    /// (the only encodings without FEAT_XNX, where bit 53 is RES0).
    pub xn: u8,
}

impl S2Attrs {
    /// The fields in place; OR with an address and the type bits.
    #[inline(always)]
    pub const fn encode(&self) -> u64 {
        ((self.mem_attr as u64 & 0xf) << 2)
            | ((self.s2ap as u64) << 6)
            | self.sh.bits()
            | ((self.af as u64) << 10)
            | ((self.xn as u64 & 0b11) << 53)
    }

    /// Reads the fields back from a descriptor.
    pub fn decode(word: u64) -> Result<Self, DescError> {
        Ok(Self {
            mem_attr: ((word >> 2) & 0xf) as u8,
            s2ap: S2Ap::from_bits(word >> 6),
            sh: Shareability::from_desc(word).ok_or(DescError::BadField)?,
            af: word & AF != 0,
            xn: ((word >> 53) & 0b11) as u8,
        })
    }
}

/// A stage-2 block (levels 1, 2) or page (level 3) descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct S2Leaf {
    /// Output address, aligned to the leaf size.
    pub oa: PhysAddr,
    /// Attribute fields.
    pub attrs: S2Attrs,
}

impl S2Leaf {
    /// The descriptor word for a leaf at `level`.
    pub fn encode(&self, level: u8, granule: Granule) -> Result<u64, DescError> {
        let size = leaf_size(level, granule)?;
        Ok(encode_address(granule, self.oa, size)? | self.attrs.encode() | leaf_type(level))
    }

    /// Decodes a leaf found at `level`.
    pub fn decode(word: u64, level: u8, granule: Granule) -> Result<Self, DescError> {
        leaf_size(level, granule)?;
        Ok(Self { oa: decode_leaf(word, level, granule)?, attrs: S2Attrs::decode(word)? })
    }
}

/// The Arm VMSAv8-64 stage-2 format (an SMMU stream table entry's `S2TTB`).
///
/// Encoding of [`Prot`]: `S2AP` from `READ`/`WRITE` (write-only is
/// expressible), `MemAttr` from the memory type with `FWB` off, `XN = 0b10`
/// unless `EXEC`; `PRIV` has no stage-2 meaning and is ignored. `AF` is set,
/// `SH` inner shareable for write-back memory and outer shareable otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stage2;

impl Format for Stage2 {
    const STAGE2: bool = true;

    #[inline(always)]
    fn leaf_attrs(&self, prot: Prot) -> Result<u64, PgTableError> {
        let a = prot.access();
        let s2ap = match (a.contains(Access::READ), a.contains(Access::WRITE)) {
            (false, false) => return Err(PgTableError::NoAccess),
            (true, false) => S2Ap::ReadOnly,
            (false, true) => S2Ap::WriteOnly,
            (true, true) => S2Ap::ReadWrite,
        };
        let (mem_attr, sh) = match prot.mem() {
            MemType::WriteBack => (mem_attr::WRITE_BACK, Shareability::InnerShareable),
            MemType::NonCacheable => (mem_attr::NON_CACHEABLE, Shareability::OuterShareable),
            MemType::Device => (mem_attr::DEVICE_NGNRE, Shareability::OuterShareable),
            MemType::DeviceStrict => (mem_attr::DEVICE_NGNRNE, Shareability::OuterShareable),
        };
        Ok(S2Attrs { mem_attr, s2ap, sh, af: true, xn: if a.contains(Access::EXEC) { 0b00 } else { 0b10 } }
            .encode())
    }

    fn leaf_prot(&self, desc: u64) -> Prot {
        let mut access = Access::NONE;
        if desc & (1 << 6) != 0 {
            access = access | Access::READ;
        }
        if desc & (1 << 7) != 0 {
            access = access | Access::WRITE;
        }
        if (desc >> 53) & 0b11 == 0 {
            access = access | Access::EXEC;
        }
        let mem = match ((desc >> 2) & 0xf) as u8 {
            mem_attr::WRITE_BACK => MemType::WriteBack,
            mem_attr::NON_CACHEABLE => MemType::NonCacheable,
            mem_attr::DEVICE_NGNRE => MemType::Device,
            _ => MemType::DeviceStrict,
        };
        Prot::new(access, mem)
    }
}

/// What an SMMU stream table entry (`S2TTB` and the `S2VTCR` fields) or
/// `VTTBR_EL2`/`VTCR_EL2` needs to walk a stage-2 table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage2Config {
    /// `S2TTB` / `VTTBR_EL2.BADDR`: physical address of the (possibly
    /// concatenated) root table.
    pub vttb: PhysAddr,
    /// `T0SZ` = 64 - input (IPA) size.
    pub t0sz: u8,
    /// `SL0`: initial lookup level (4 KiB: `0b10` level 0, `0b01` level 1,
    /// `0b00` level 2; 64 KiB: `0b10` level 1, `0b01` level 2, `0b00` level 3).
    pub sl0: u8,
    /// `TG0` / `S2TG`: granule encoding.
    pub tg: u8,
    /// `PS` / `S2PS`: output size encoding.
    pub ps: u8,
    /// `IRGN0` / `S2IR0`: inner cacheability of table walks.
    pub irgn: u8,
    /// `ORGN0` / `S2OR0`: outer cacheability of table walks.
    pub orgn: u8,
    /// `SH0` / `S2SH0`: shareability of table walks.
    pub sh: u8,
    /// The initial lookup level `SL0` encodes.
    pub start_level: u8,
    /// Number of concatenated tables at the initial level (1: none).
    pub concatenated: u8,
}

impl Stage2Config {
    /// The fields packed as `VTCR_EL2[18:0]`, which is also the layout of the
    /// SMMU STE's `S2VTCR` (STE bits `[50:32]`): `T0SZ[5:0]`, `SL0[7:6]`,
    /// `IRGN0[9:8]`, `ORGN0[11:10]`, `SH0[13:12]`, `TG0[15:14]`, `PS[18:16]`.
    pub const fn vtcr(&self) -> u32 {
        (self.t0sz as u32 & 0x3f)
            | ((self.sl0 as u32 & 0b11) << 6)
            | ((self.irgn as u32 & 0b11) << 8)
            | ((self.orgn as u32 & 0b11) << 10)
            | ((self.sh as u32 & 0b11) << 12)
            | ((self.tg as u32 & 0b11) << 14)
            | ((self.ps as u32 & 0b111) << 16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_descriptor_bit_positions() {
        // Arm ARM D8.3, stage 2 page: [1:0]=0b11, MemAttr[5:2], S2AP[7:6],
        // SH[9:8], AF[10], OA[47:12], XN[54:53].
        let leaf = S2Leaf {
            oa: PhysAddr(0x0000_00AB_CDEF_1000),
            attrs: S2Attrs {
                mem_attr: 0b1111,
                s2ap: S2Ap::ReadWrite,
                sh: Shareability::InnerShareable,
                af: true,
                xn: 0b10,
            },
        };
        let expected = 0x0000_00AB_CDEF_1000
            | 0b11
            | (0b1111 << 2)
            | (0b11 << 6)
            | (0b11 << 8)
            | (1 << 10)
            | (0b10 << 53);
        assert_eq!(expected, 0x0040_00AB_CDEF_17FF);
        assert_eq!(leaf.encode(3, Granule::Size4K), Ok(expected));
        assert_eq!(S2Leaf::decode(expected, 3, Granule::Size4K), Ok(leaf));
    }

    #[test]
    fn block_descriptor_bit_positions() {
        // 1 GiB block at level 1, device nGnRE (MemAttr 0b0001), read-only,
        // executable (XN 0b00).
        let leaf = S2Leaf {
            oa: PhysAddr(0x40_0000_0000),
            attrs: S2Attrs {
                mem_attr: 0b0001,
                s2ap: S2Ap::ReadOnly,
                sh: Shareability::OuterShareable,
                af: true,
                xn: 0,
            },
        };
        assert_eq!(leaf.encode(1, Granule::Size4K), Ok(0x0000_0040_0000_0645));
        // 512 MiB block at level 2 with the 64 KiB granule.
        assert_eq!(S2Leaf { oa: PhysAddr(0x2000_0000), ..leaf }.encode(2, Granule::Size64K), Ok(0x2000_0645));
        assert_eq!(leaf.encode(1, Granule::Size64K), Err(DescError::BadLevel(1)));
    }

    #[test]
    fn prot_encoding() {
        let f = Stage2;
        assert_eq!(
            f.leaf_attrs(Prot::RW).unwrap(),
            (0b1111 << 2) | (0b11 << 6) | (0b11 << 8) | (1 << 10) | (1 << 54)
        );
        let wo = Prot::new(Access::WRITE | Access::EXEC, MemType::NonCacheable);
        let d = f.leaf_attrs(wo).unwrap();
        assert_eq!(d, (0b0101 << 2) | (0b10 << 6) | (0b10 << 8) | (1 << 10));
        assert_eq!(f.leaf_prot(d), wo);
        // PRIV is ignored at stage 2.
        let p = Prot::RO.with_access(Access::READ | Access::PRIV);
        assert_eq!(f.leaf_attrs(p), f.leaf_attrs(Prot::RO));
        assert_eq!(f.leaf_attrs(Prot::new(Access::NONE, MemType::Device)), Err(PgTableError::NoAccess));
        let dev = f.leaf_attrs(Prot::RW.with_mem(MemType::DeviceStrict)).unwrap();
        assert_eq!((dev >> 2) & 0xf, 0);
        assert_eq!(f.leaf_prot(dev).mem(), MemType::DeviceStrict);
    }

    #[test]
    fn vtcr_layout() {
        // 48-bit IPA, 4 KiB, start level 0, 48-bit PA, coherent walks:
        // T0SZ=16, SL0=0b10, IRGN0=ORGN0=0b01, SH0=0b11, TG0=0b00, PS=0b101.
        let c = Stage2Config {
            vttb: PhysAddr(0x8000_0000),
            t0sz: 16,
            sl0: 0b10,
            tg: 0b00,
            ps: 0b101,
            irgn: 0b01,
            orgn: 0b01,
            sh: 0b11,
            start_level: 0,
            concatenated: 1,
        };
        assert_eq!(c.vtcr(), 16 | (0b10 << 6) | (0b01 << 8) | (0b01 << 10) | (0b11 << 12) | (0b101 << 16));
        assert_eq!(c.vtcr(), 0x0005_3590);
    }
}
