//! The spec's identifiers: StreamID, SubstreamID, VMID, ASID (3.2, 3.17).
//!
//! Each is its own type so a VMID cannot be passed where an ASID is meant.

use core::fmt;

/// A StreamID: identifies the requester of a transaction (3.2). Up to 32 bits;
/// the SMMU implements `SMMU_IDR1.SIDSIZE` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StreamId(pub u32);

/// A SubstreamID (PCIe PASID): 20 bits at most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SubstreamId(u32);

impl SubstreamId {
    /// The largest SubstreamID the architecture allows (20 bits).
    pub const MAX: u32 = (1 << 20) - 1;

    /// A SubstreamID, or `None` if `v` does not fit in 20 bits.
    pub const fn new(v: u32) -> Option<Self> {
        if v <= Self::MAX {
            Some(Self(v))
        } else {
            None
        }
    }

    /// The raw value.
    pub const fn get(self) -> u32 {
        self.0
    }
}

/// A Virtual Machine Identifier tagging stage 2 (and NS-EL1) TLB entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Vmid(pub u16);

/// An Address Space Identifier tagging stage 1 TLB entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Asid(pub u16);

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sid {:#x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substream_id_is_20_bits() {
        assert_eq!(SubstreamId::new(0xf_ffff).map(SubstreamId::get), Some(0xf_ffff));
        assert_eq!(SubstreamId::new(0x10_0000), None);
    }
}
