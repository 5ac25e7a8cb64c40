//! Descriptor fields shared by stage 1 and stage 2 (Arm ARM D8.3,
//! "Translation table descriptor formats"): the valid and type bits, the
//! output/next-table address, shareability and the access flag.

use super::Granule;
use crate::addr::PhysAddr;

/// `Bit[0]`: the descriptor is valid.
pub const VALID: u64 = 1 << 0;
/// `Bit[1]`: at levels 0 to 2, 1 = table and 0 = block; at level 3 it must be 1
/// (page).
pub const TABLE_OR_PAGE: u64 = 1 << 1;
/// `Bit[10]`: the access flag (AF) of a block or page.
pub const AF: u64 = 1 << 10;

/// Software bit `[55]` of an *invalid* descriptor: the entry holds the address
/// of a prepared table that replaces a block being split under
/// break-before-make. Hardware ignores `bits[63:1]` of an invalid descriptor.
pub(crate) const SW_PENDING: u64 = 1 << 55;

/// The attribute bits of a block or page descriptor a format may set: the
/// upper attributes `[63:50]` and the lower attributes `[11:2]`.
pub(crate) const LEAF_ATTR_MASK: u64 = 0xfffc_0000_0000_0ffc;

/// Shareability, `SH[1:0]` in bits `[9:8]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Shareability {
    /// `0b00`: non-shareable.
    NonShareable = 0b00,
    /// `0b10`: outer shareable.
    OuterShareable = 0b10,
    /// `0b11`: inner shareable.
    InnerShareable = 0b11,
}

impl Shareability {
    /// The field in place (bits `[9:8]`).
    pub const fn bits(self) -> u64 {
        (self as u64) << 8
    }

    /// Decodes bits `[9:8]` of a descriptor (`0b01` is reserved).
    pub const fn from_desc(d: u64) -> Option<Self> {
        match (d >> 8) & 0b11 {
            0b00 => Some(Self::NonShareable),
            0b10 => Some(Self::OuterShareable),
            0b11 => Some(Self::InnerShareable),
            _ => None,
        }
    }
}

/// Why a descriptor word could not be decoded as asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DescError {
    /// `Bit[0]` is clear.
    Invalid,
    /// A table descriptor where a block or page was expected, or the reverse.
    WrongType,
    /// Level 3 with `bit[1]` clear: reserved.
    Reserved,
    /// Level given that cannot hold this kind of descriptor.
    BadLevel(u8),
    /// The address is not aligned to the granule (or block).
    Unaligned,
    /// The address does not fit the descriptor (48 bits, or 52 with the
    /// 64 KiB granule).
    TooWide,
    /// A reserved field encoding (for instance `SH = 0b01`).
    BadField,
}

/// Output-address bits of a descriptor for `pa` (Arm ARM D8.3: 4 KiB granule
/// `OA[47:12]` in `bits[47:12]`; 64 KiB granule `OA[47:16]` in `bits[47:16]` and
/// `OA[51:48]` in `bits[15:12]`).
pub fn encode_address(granule: Granule, pa: PhysAddr, align: u64) -> Result<u64, DescError> {
    let pa = pa.raw();
    if pa & (align - 1) != 0 || pa & (granule.size() - 1) != 0 {
        return Err(DescError::Unaligned);
    }
    match granule {
        Granule::Size4K if pa >> 48 == 0 => Ok(pa),
        Granule::Size64K if pa >> 52 == 0 => Ok((pa & 0x0000_ffff_ffff_0000) | ((pa >> 36) & 0xf000)),
        _ => Err(DescError::TooWide),
    }
}

/// The address held in a descriptor (inverse of [`encode_address`]).
pub fn decode_address(granule: Granule, d: u64) -> PhysAddr {
    PhysAddr(match granule {
        Granule::Size4K => d & 0x0000_ffff_ffff_f000,
        Granule::Size64K => (d & 0x0000_ffff_ffff_0000) | ((d & 0xf000) << 36),
    })
}

/// A table descriptor (levels 0 to 2): the next-level table's address. The
/// hierarchical attributes of stage 1 (`APTable`, `XNTable`, `PXNTable`,
/// `NSTable`, bits `[63:59]`) are left zero: no restriction from above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableDesc {
    /// Physical address of the next-level table.
    pub next: PhysAddr,
}

impl TableDesc {
    /// The descriptor word.
    pub fn encode(&self, granule: Granule) -> Result<u64, DescError> {
        Ok(encode_address(granule, self.next, granule.size())? | TABLE_OR_PAGE | VALID)
    }

    /// Decodes a descriptor found at `level`.
    pub fn decode(word: u64, level: u8, granule: Granule) -> Result<Self, DescError> {
        if level >= 3 {
            return Err(DescError::BadLevel(level));
        }
        if word & VALID == 0 {
            return Err(DescError::Invalid);
        }
        if word & TABLE_OR_PAGE == 0 {
            return Err(DescError::WrongType);
        }
        Ok(Self { next: decode_address(granule, word) })
    }
}

/// The type bits of a leaf at `level`: block (`0b01`) or page (`0b11`).
pub(crate) const fn leaf_type(level: u8) -> u64 {
    if level == 3 {
        VALID | TABLE_OR_PAGE
    } else {
        VALID
    }
}

/// Checks a leaf descriptor's type bits and decodes its address.
pub(crate) fn decode_leaf(word: u64, level: u8, granule: Granule) -> Result<PhysAddr, DescError> {
    if level > 3 || (level == 0 && granule == Granule::Size4K) {
        return Err(DescError::BadLevel(level));
    }
    if word & VALID == 0 {
        return Err(DescError::Invalid);
    }
    match (level == 3, word & TABLE_OR_PAGE != 0) {
        (true, false) => Err(DescError::Reserved),
        (false, true) => Err(DescError::WrongType),
        _ => Ok(decode_address(granule, word)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_descriptor_bits() {
        // Arm ARM D8.3: table descriptor = next-level address [47:12] | 0b11.
        let d = TableDesc { next: PhysAddr(0x0000_8765_4321_0000) };
        assert_eq!(d.encode(Granule::Size4K), Ok(0x0000_8765_4321_0003));
        assert_eq!(TableDesc::decode(0x0000_8765_4321_0003, 1, Granule::Size4K), Ok(d));
        assert_eq!(TableDesc::decode(0x0000_8765_4321_0001, 1, Granule::Size4K), Err(DescError::WrongType));
        assert_eq!(TableDesc::decode(0x3, 3, Granule::Size4K), Err(DescError::BadLevel(3)));
        // 64 KiB granule, 52-bit: address bits [51:48] land in [15:12].
        let d = TableDesc { next: PhysAddr(0x000F_0000_0001_0000) };
        assert_eq!(d.encode(Granule::Size64K), Ok(0x0000_0000_0001_F003));
        assert_eq!(TableDesc::decode(0x0000_0000_0001_F003, 2, Granule::Size64K), Ok(d));
    }

    #[test]
    fn address_limits() {
        assert_eq!(encode_address(Granule::Size4K, PhysAddr(1 << 48), 0x1000), Err(DescError::TooWide));
        assert_eq!(encode_address(Granule::Size4K, PhysAddr(0x1800), 0x1000), Err(DescError::Unaligned));
        assert_eq!(encode_address(Granule::Size64K, PhysAddr(0x8000), 0x1000), Err(DescError::Unaligned));
        assert_eq!(encode_address(Granule::Size64K, PhysAddr(1 << 52), 0x1_0000), Err(DescError::TooWide));
    }

    #[test]
    fn shareability_field() {
        assert_eq!(Shareability::InnerShareable.bits(), 0x300);
        assert_eq!(Shareability::OuterShareable.bits(), 0x200);
        assert_eq!(Shareability::from_desc(0x100), None);
        assert_eq!(Shareability::from_desc(0x300), Some(Shareability::InnerShareable));
    }

    #[test]
    fn leaf_type_bits() {
        assert_eq!(leaf_type(3), 0b11);
        assert_eq!(leaf_type(2), 0b01);
        assert_eq!(decode_leaf(0x1000 | 0b01, 3, Granule::Size4K), Err(DescError::Reserved));
        assert_eq!(decode_leaf(0x20_0000 | 0b11, 2, Granule::Size4K), Err(DescError::WrongType));
        assert_eq!(decode_leaf(0x20_0000 | 0b01, 0, Granule::Size4K), Err(DescError::BadLevel(0)));
    }
}
