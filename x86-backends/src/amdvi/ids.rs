//! The spec's identifiers: DeviceID (the 16-bit requester ID, 2.2.1),
//! DomainID (16 bits, tags IOMMU TLB entries) and PASID (up to 20 bits).
//!
//! Each is its own type so a DomainID cannot be passed where a DeviceID is
//! meant.

use core::fmt;

/// A DeviceID: bus `[15:8]`, device `[7:3]`, function `[2:0]` (the PCI
/// requester ID), the index into the device table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DeviceId(pub u16);

impl DeviceId {
    /// The DeviceID of bus/device/function, or `None` if device > 31 or
    /// function > 7.
    pub const fn from_bdf(bus: u8, device: u8, function: u8) -> Option<Self> {
        if device > 31 || function > 7 {
            return None;
        }
        Some(Self(((bus as u16) << 8) | ((device as u16) << 3) | function as u16))
    }

    /// Bus number.
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
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{:x}", self.bus(), self.device(), self.function())
    }
}

/// A DomainID: tags the IOMMU's translation caches; DTEs sharing page tables
/// share it (DTE `[79:64]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DomainId(pub u16);

impl fmt::Display for DomainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dom {:#x}", self.0)
    }
}

/// A PASID (process address space ID): 20 bits at most; the IOMMU
/// implements `EFR.PASmax + 1` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pasid(u32);

impl Pasid {
    /// The largest PASID the architecture allows (20 bits).
    pub const MAX: u32 = (1 << 20) - 1;

    /// A PASID, or `None` if `v` does not fit in 20 bits.
    pub const fn new(v: u32) -> Option<Self> {
        if v <= Self::MAX {
            Some(Self(v))
        } else {
            None
        }
    }

    /// The PASID made of the low 20 bits of `v` (for fields that are 20 bits
    /// wide by construction).
    pub(crate) const fn from_field(v: u64) -> Self {
        Self((v as u32) & Self::MAX)
    }

    /// The raw value.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Pasid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pasid {:#x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn device_id_is_the_requester_id() {
        // Bus [15:8], Device [7:3], Function [2:0].
        let id = DeviceId::from_bdf(0x12, 0x1f, 7).unwrap();
        assert_eq!(id, DeviceId(0x12ff));
        assert_eq!((id.bus(), id.device(), id.function()), (0x12, 0x1f, 7));
        assert_eq!(DeviceId::from_bdf(0, 32, 0), None);
        assert_eq!(DeviceId::from_bdf(0, 0, 8), None);
        assert_eq!(format!("{}", DeviceId(0x0108)), "01:01.0");
    }

    #[test]
    fn pasid_is_20_bits() {
        assert_eq!(Pasid::new(0xf_ffff).map(Pasid::get), Some(0xf_ffff));
        assert_eq!(Pasid::new(0x10_0000), None);
        assert_eq!(Pasid::from_field(0xff_ffff).get(), 0xf_ffff);
    }
}
