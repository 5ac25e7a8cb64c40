//! Global errors (7.5): SMMU_GERROR toggles a bit when an error becomes
//! active; software acknowledges by toggling the same bit of SMMU_GERRORN.
//! An error is active while the two bits differ.

use core::fmt;

use tock_registers::interfaces::{Readable, Writeable};

use crate::regs::SmmuPage0;

/// A set of global errors (SMMU_GERROR bit positions).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct GlobalErrors(u32);

impl GlobalErrors {
    /// CMDQ_ERR: a command error, see SMMU_CMDQ_CONS.ERR.
    pub const CMDQ_ERR: Self = Self(1 << 0);
    /// EVENTQ_ABT_ERR: writing the Event queue aborted. QEMU also raises it
    /// when the Event queue is full, where the spec toggles EVENTQ_PROD.OVFLG.
    pub const EVENTQ_ABT_ERR: Self = Self(1 << 2);
    /// PRIQ_ABT_ERR.
    pub const PRIQ_ABT_ERR: Self = Self(1 << 3);
    /// MSI_CMDQ_ABT_ERR.
    pub const MSI_CMDQ_ABT_ERR: Self = Self(1 << 4);
    /// MSI_EVENTQ_ABT_ERR.
    pub const MSI_EVENTQ_ABT_ERR: Self = Self(1 << 5);
    /// MSI_PRIQ_ABT_ERR.
    pub const MSI_PRIQ_ABT_ERR: Self = Self(1 << 6);
    /// MSI_GERROR_ABT_ERR.
    pub const MSI_GERROR_ABT_ERR: Self = Self(1 << 7);
    /// SFM_ERR: the SMMU entered Service Failure Mode.
    pub const SFM_ERR: Self = Self(1 << 8);
    /// CMDQP_ERR: an Enhanced Command queue error.
    pub const CMDQP_ERR: Self = Self(1 << 9);
    /// DPT_ERR.
    pub const DPT_ERR: Self = Self(1 << 10);

    const ALL: [(Self, &'static str); 10] = [
        (Self::CMDQ_ERR, "CMDQ_ERR"),
        (Self::EVENTQ_ABT_ERR, "EVENTQ_ABT_ERR"),
        (Self::PRIQ_ABT_ERR, "PRIQ_ABT_ERR"),
        (Self::MSI_CMDQ_ABT_ERR, "MSI_CMDQ_ABT_ERR"),
        (Self::MSI_EVENTQ_ABT_ERR, "MSI_EVENTQ_ABT_ERR"),
        (Self::MSI_PRIQ_ABT_ERR, "MSI_PRIQ_ABT_ERR"),
        (Self::MSI_GERROR_ABT_ERR, "MSI_GERROR_ABT_ERR"),
        (Self::SFM_ERR, "SFM_ERR"),
        (Self::CMDQP_ERR, "CMDQP_ERR"),
        (Self::DPT_ERR, "DPT_ERR"),
    ];
    const MASK: u32 = 0x7fd;

    /// The active errors given SMMU_GERROR and SMMU_GERRORN values.
    pub const fn active(gerror: u32, gerrorn: u32) -> Self {
        Self((gerror ^ gerrorn) & Self::MASK)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether no error is active.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether all of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// The union.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Without `other`.
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The spec names of the errors in the set.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::ALL.into_iter().filter(move |(e, _)| self.contains(*e)).map(|(_, n)| n)
    }

    /// The SMMU_GERRORN value acknowledging `self` given the current GERRORN:
    /// toggle exactly those bits.
    pub const fn ack_value(self, gerrorn: u32) -> u32 {
        gerrorn ^ self.0
    }
}

impl fmt::Debug for GlobalErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.names()).finish()
    }
}

/// Reads the active global errors.
pub(crate) fn active(regs: &SmmuPage0) -> GlobalErrors {
    GlobalErrors::active(regs.gerror.get(), regs.gerrorn.get())
}

/// Acknowledges `errors` (only those still active) by toggling SMMU_GERRORN.
pub(crate) fn acknowledge(regs: &SmmuPage0, errors: GlobalErrors) {
    let gerrorn = regs.gerrorn.get();
    let still = GlobalErrors::active(regs.gerror.get(), gerrorn);
    let ack = GlobalErrors(errors.0 & still.0);
    if !ack.is_empty() {
        regs.gerrorn.set(ack.ack_value(gerrorn));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn active_is_xor() {
        // GERROR toggled bits 0 and 2; GERRORN already acknowledged bit 2.
        let e = GlobalErrors::active(0b101, 0b100);
        assert_eq!(e, GlobalErrors::CMDQ_ERR);
        // Bit 1 is not an error bit (reserved).
        assert!(GlobalErrors::active(0b10, 0).is_empty());
        assert_eq!(GlobalErrors::active(1 << 8, 0), GlobalErrors::SFM_ERR);
    }

    #[test]
    fn acknowledge_toggles_gerrorn() {
        let e = GlobalErrors::active(0b1_1000_0101, 0b0000_0100);
        assert_eq!(e.names().collect::<Vec<_>>(), ["CMDQ_ERR", "MSI_GERROR_ABT_ERR", "SFM_ERR"]);
        let n = e.ack_value(0b100);
        assert!(GlobalErrors::active(0b1_1000_0101, n).is_empty());
        // Acknowledging a subset leaves the others active.
        let n = GlobalErrors::CMDQ_ERR.ack_value(0b100);
        assert_eq!(GlobalErrors::active(0b1_1000_0101, n), e.without(GlobalErrors::CMDQ_ERR));
    }

    #[test]
    fn bit_positions_match_spec() {
        let bits = [
            (GlobalErrors::CMDQ_ERR, 0),
            (GlobalErrors::EVENTQ_ABT_ERR, 2),
            (GlobalErrors::PRIQ_ABT_ERR, 3),
            (GlobalErrors::MSI_CMDQ_ABT_ERR, 4),
            (GlobalErrors::MSI_EVENTQ_ABT_ERR, 5),
            (GlobalErrors::MSI_PRIQ_ABT_ERR, 6),
            (GlobalErrors::MSI_GERROR_ABT_ERR, 7),
            (GlobalErrors::SFM_ERR, 8),
        ];
        for (e, bit) in bits {
            assert_eq!(e.bits(), 1 << bit);
        }
    }
}
