//! Identifiers: the Source-ID (PCI requester ID), Domain-ID and PASID.

use core::fmt;

/// A Source-ID: the PCI requester ID of a DMA or interrupt request,
/// bus in bits 15:8, device in 7:3, function in 2:0 (3.4.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceId(pub u16);

impl SourceId {
    /// The Source-ID of `bus:dev.func`; `dev` is masked to 5 bits and `func`
    /// to 3.
    pub const fn new(bus: u8, dev: u8, func: u8) -> Self {
        Self(((bus as u16) << 8) | (((dev & 0x1f) as u16) << 3) | (func & 7) as u16)
    }

    /// Bus number: the root-table index.
    pub const fn bus(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// Device number.
    pub const fn device(self) -> u8 {
        ((self.0 >> 3) & 0x1f) as u8
    }

    /// Function number.
    pub const fn function(self) -> u8 {
        (self.0 & 7) as u8
    }

    /// Device and function together: the context-table index in legacy mode.
    pub const fn devfn(self) -> u8 {
        (self.0 & 0xff) as u8
    }
}

impl fmt::Display for SourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus(), self.device(), self.function())
    }
}

/// A Domain-ID (DID): tags the IOTLB, context and PASID caches. At most 16
/// bits; CAP_REG.ND says how many the unit supports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainId(pub u16);

/// A PASID: 20 bits (ECAP_REG.PSS says how many the unit supports).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pasid(u32);

impl Pasid {
    /// The largest PASID value (2^20 - 1).
    pub const MAX: u32 = (1 << 20) - 1;

    /// A PASID, if `v` fits in 20 bits.
    pub const fn new(v: u32) -> Option<Self> {
        if v <= Self::MAX {
            Some(Self(v))
        } else {
            None
        }
    }

    /// PASID 0, the usual RID_PASID.
    pub const ZERO: Self = Self(0);

    /// The value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The low 20 bits of `v` (for decoders: a 20-bit field always fits).
    pub(crate) const fn from_field(v: u64) -> Self {
        Self((v & Self::MAX as u64) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_id_layout() {
        // 00:03.0 -> 0x0018; ff:1f.7 -> 0xffff.
        assert_eq!(SourceId::new(0, 3, 0).0, 0x0018);
        assert_eq!(SourceId::new(0xff, 0x1f, 7).0, 0xffff);
        let s = SourceId(0x1234);
        assert_eq!((s.bus(), s.device(), s.function(), s.devfn()), (0x12, 6, 4, 0x34));
    }

    #[test]
    fn pasid_is_20_bits() {
        assert_eq!(Pasid::new(0xfffff).map(Pasid::get), Some(0xfffff));
        assert_eq!(Pasid::new(0x10_0000), None);
    }
}
