//! Register-based invalidation (6.5.1): the CCMD_REG, IOTLB_REG and IVA_REG
//! values, for units without queued invalidation or before the queue is
//! enabled. The same granularities as the descriptors in
//! [`inv_desc`](crate::vtd::inv_desc) are reused, so one invalidation can
//! be issued either way.
//!
//! Sequence: write the value with ICC (IVT) set, then poll until hardware
//! clears ICC (IVT); CAIG (IAIG) then says which granularity was actually
//! done. For page-selective IOTLB invalidation write IVA_REG first.

use iommu_common::addr::Iova;
use tock_registers::LocalRegisterCopy;

use crate::vtd::error::DecodeError;
use crate::vtd::fields::{bits, check_word};
use crate::vtd::ids::{DomainId, SourceId};
use crate::vtd::inv_desc::{CcGranularity, FunctionMask, IotlbGranularity};
use crate::vtd::regs::{CCMD, IOTLB, IVA};

/// A context-command: the CCMD_REG value requesting `granularity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextCommand(pub CcGranularity);

impl ContextCommand {
    /// The value to write: ICC = 1, CIRG, DID, SID, FM.
    pub fn encode(&self) -> u64 {
        let mut r = LocalRegisterCopy::<u64, CCMD::Register>::new(0);
        r.write(CCMD::ICC::SET);
        match self.0 {
            CcGranularity::Global => r.modify(CCMD::CIRG::Global),
            CcGranularity::Domain(did) => r.modify(CCMD::CIRG::Domain + CCMD::DID.val(u64::from(did.0))),
            CcGranularity::Device { did, sid, fm } => r.modify(
                CCMD::CIRG::Device
                    + CCMD::DID.val(u64::from(did.0))
                    + CCMD::SID.val(u64::from(sid.0))
                    + CCMD::FM.val(fm.field()),
            ),
        }
        r.get()
    }

    /// Decodes a request value (ICC set, CAIG clear).
    pub fn decode(v: u64) -> Result<Self, DecodeError> {
        let r = LocalRegisterCopy::<u64, CCMD::Register>::new(v);
        if !r.is_set(CCMD::ICC) {
            return Err(DecodeError::Reserved { field: "CCMD_REG.ICC", value: 0 });
        }
        let did = DomainId(r.read(CCMD::DID) as u16);
        let base = bits(CCMD::ICC) | bits(CCMD::CIRG);
        let (g, allowed) = match r.read(CCMD::CIRG) {
            1 => (CcGranularity::Global, base),
            2 => (CcGranularity::Domain(did), base | bits(CCMD::DID)),
            3 => (
                CcGranularity::Device {
                    did,
                    sid: SourceId(r.read(CCMD::SID) as u16),
                    fm: FunctionMask::from_field(r.read(CCMD::FM)),
                },
                base | bits(CCMD::DID) | bits(CCMD::SID) | bits(CCMD::FM),
            ),
            v => return Err(DecodeError::Reserved { field: "CCMD_REG.CIRG", value: v }),
        };
        check_word(0, v, allowed)?;
        Ok(Self(g))
    }
}

/// The granularity hardware reports having performed (CAIG / IAIG).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActualGranularity {
    /// 00b: not reported / request not done.
    None,
    /// 01b: global.
    Global,
    /// 10b: domain-selective.
    Domain,
    /// 11b: device-selective (CCMD) or page-selective (IOTLB).
    Selective,
}

impl ActualGranularity {
    const fn from_field(v: u64) -> Self {
        match v & 3 {
            0 => Self::None,
            1 => Self::Global,
            2 => Self::Domain,
            _ => Self::Selective,
        }
    }
}

/// A CCMD_REG value read back while polling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CcmdStatus {
    /// ICC still set: the invalidation is in progress.
    pub busy: bool,
    /// CAIG.
    pub actual: ActualGranularity,
}

impl CcmdStatus {
    /// Decodes a CCMD_REG read.
    pub fn decode(v: u64) -> Self {
        let r = LocalRegisterCopy::<u64, CCMD::Register>::new(v);
        Self { busy: r.is_set(CCMD::ICC), actual: ActualGranularity::from_field(r.read(CCMD::CAIG)) }
    }
}

/// IOTLB_REG request granularity (the page address goes to IVA_REG).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IotlbRegGranularity {
    /// IIRG 01b.
    Global,
    /// IIRG 10b.
    Domain(DomainId),
    /// IIRG 11b: pages described by IVA_REG.
    Page(DomainId),
}

/// An IOTLB invalidation through IOTLB_REG.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IotlbCommand {
    /// IIRG and DID.
    pub granularity: IotlbRegGranularity,
    /// DR.
    pub dr: bool,
    /// DW.
    pub dw: bool,
}

impl IotlbCommand {
    /// The register form of a descriptor granularity: the IOTLB_REG command
    /// and, for page-selective invalidation, the IVA_REG value to write
    /// first.
    pub fn from_granularity(g: IotlbGranularity, dr: bool, dw: bool) -> (Self, Option<Iva>) {
        match g {
            IotlbGranularity::Global => (Self { granularity: IotlbRegGranularity::Global, dr, dw }, None),
            IotlbGranularity::Domain(did) => {
                (Self { granularity: IotlbRegGranularity::Domain(did), dr, dw }, None)
            }
            IotlbGranularity::Page { did, addr, am, ih } => {
                (Self { granularity: IotlbRegGranularity::Page(did), dr, dw }, Some(Iva { addr, am, ih }))
            }
        }
    }

    /// The IOTLB_REG value: IVT = 1, IIRG, DID, DR, DW.
    pub fn encode(&self) -> u64 {
        let mut r = LocalRegisterCopy::<u64, IOTLB::Register>::new(0);
        r.write(IOTLB::IVT::SET + IOTLB::DR.val(u64::from(self.dr)) + IOTLB::DW.val(u64::from(self.dw)));
        match self.granularity {
            IotlbRegGranularity::Global => r.modify(IOTLB::IIRG::Global),
            IotlbRegGranularity::Domain(did) => {
                r.modify(IOTLB::IIRG::Domain + IOTLB::DID.val(u64::from(did.0)))
            }
            IotlbRegGranularity::Page(did) => r.modify(IOTLB::IIRG::Page + IOTLB::DID.val(u64::from(did.0))),
        }
        r.get()
    }

    /// Decodes a request value.
    pub fn decode(v: u64) -> Result<Self, DecodeError> {
        let r = LocalRegisterCopy::<u64, IOTLB::Register>::new(v);
        if !r.is_set(IOTLB::IVT) {
            return Err(DecodeError::Reserved { field: "IOTLB_REG.IVT", value: 0 });
        }
        let did = DomainId(r.read(IOTLB::DID) as u16);
        let base = bits(IOTLB::IVT) | bits(IOTLB::IIRG) | bits(IOTLB::DR) | bits(IOTLB::DW);
        let (granularity, allowed) = match r.read(IOTLB::IIRG) {
            1 => (IotlbRegGranularity::Global, base),
            2 => (IotlbRegGranularity::Domain(did), base | bits(IOTLB::DID)),
            3 => (IotlbRegGranularity::Page(did), base | bits(IOTLB::DID)),
            v => return Err(DecodeError::Reserved { field: "IOTLB_REG.IIRG", value: v }),
        };
        check_word(0, v, allowed)?;
        Ok(Self { granularity, dr: r.is_set(IOTLB::DR), dw: r.is_set(IOTLB::DW) })
    }

    /// Decodes an IOTLB_REG read while polling: (IVT still set, IAIG).
    pub fn status(v: u64) -> (bool, ActualGranularity) {
        let r = LocalRegisterCopy::<u64, IOTLB::Register>::new(v);
        (r.is_set(IOTLB::IVT), ActualGranularity::from_field(r.read(IOTLB::IAIG)))
    }
}

/// The IVA_REG value of a page-selective invalidation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iva {
    /// ADDR: page address, aligned to 2^(12 + AM).
    pub addr: Iova,
    /// AM: 2^AM pages (at most CAP.MAMV).
    pub am: u8,
    /// IH: only leaf entries changed.
    pub ih: bool,
}

impl Iva {
    /// The register value.
    pub fn encode(&self) -> u64 {
        let mut r = LocalRegisterCopy::<u64, IVA::Register>::new(0);
        r.write(
            IVA::ADDR.val(self.addr.0 >> 12)
                + IVA::AM.val(u64::from(self.am))
                + IVA::IH.val(u64::from(self.ih)),
        );
        r.get()
    }

    /// Decodes a register value; bits 11:7 are reserved.
    pub fn decode(v: u64) -> Result<Self, DecodeError> {
        check_word(0, v, bits(IVA::ADDR) | bits(IVA::AM) | bits(IVA::IH))?;
        let r = LocalRegisterCopy::<u64, IVA::Register>::new(v);
        Ok(Self { addr: Iova(r.read(IVA::ADDR) << 12), am: r.read(IVA::AM) as u8, ih: r.is_set(IVA::IH) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // CCMD_REG (11.4.7): DID 15:0, SID 31:16, FM 33:32, CAIG 60:59,
    // CIRG 62:61, ICC 63.
    #[test]
    fn ccmd_values() {
        assert_eq!(ContextCommand(CcGranularity::Global).encode(), (1 << 63) | (1 << 61));
        assert_eq!(
            ContextCommand(CcGranularity::Domain(DomainId(0x55))).encode(),
            (1 << 63) | (2 << 61) | 0x55
        );
        let dev = ContextCommand(CcGranularity::Device {
            did: DomainId(1),
            sid: SourceId(0x0018),
            fm: FunctionMask::Bit2,
        });
        assert_eq!(dev.encode(), (1 << 63) | (3 << 61) | (1 << 32) | (0x0018 << 16) | 1);
        assert_eq!(
            CcmdStatus::decode(1 << 59),
            CcmdStatus { busy: false, actual: ActualGranularity::Global }
        );
        assert!(CcmdStatus::decode(1 << 63).busy);
        assert!(ContextCommand::decode(1 << 61).is_err(), "ICC clear");
    }

    // IOTLB_REG (11.4.8.1): DID 47:32, DW 48, DR 49, IAIG 58:57, IIRG 61:60,
    // IVT 63. IVA_REG (11.4.8.2): AM 5:0, IH 6, ADDR 63:12.
    #[test]
    fn iotlb_and_iva_values() {
        let g = IotlbCommand { granularity: IotlbRegGranularity::Global, dr: true, dw: true };
        assert_eq!(g.encode(), (1 << 63) | (1 << 60) | (1 << 49) | (1 << 48));
        let (cmd, iva) = IotlbCommand::from_granularity(
            IotlbGranularity::Page { did: DomainId(0x1234), addr: Iova(0x40_0000), am: 10, ih: true },
            false,
            false,
        );
        assert_eq!(cmd.encode(), (1 << 63) | (3 << 60) | (0x1234 << 32));
        assert_eq!(iva.unwrap().encode(), 0x40_0000 | (1 << 6) | 10);
        let (d, none) = IotlbCommand::from_granularity(IotlbGranularity::Domain(DomainId(2)), false, true);
        assert_eq!((d.encode(), none), ((1 << 63) | (2 << 60) | (2 << 32) | (1 << 48), None));
        assert_eq!(IotlbCommand::status(2 << 57), (false, ActualGranularity::Domain));
        assert!(Iva::decode(0x1080).is_err(), "bit 7 reserved");
    }

    proptest! {
        #[test]
        fn ccmd_round_trip(g in 0u8..3, did: u16, sid: u16, fm in 0u64..4) {
            let c = ContextCommand(match g {
                0 => CcGranularity::Global,
                1 => CcGranularity::Domain(DomainId(did)),
                _ => CcGranularity::Device { did: DomainId(did), sid: SourceId(sid), fm: FunctionMask::from_field(fm) },
            });
            prop_assert_eq!(ContextCommand::decode(c.encode()), Ok(c));
        }

        #[test]
        fn iotlb_round_trip(g in 0u8..3, did: u16, dr: bool, dw: bool, a in 0u64..1 << 52, am in 0u8..64, ih: bool) {
            let granularity = match g {
                0 => IotlbRegGranularity::Global,
                1 => IotlbRegGranularity::Domain(DomainId(did)),
                _ => IotlbRegGranularity::Page(DomainId(did)),
            };
            let c = IotlbCommand { granularity, dr, dw };
            prop_assert_eq!(IotlbCommand::decode(c.encode()), Ok(c));
            let iva = Iva { addr: Iova(a << 12), am, ih };
            prop_assert_eq!(Iva::decode(iva.encode()), Ok(iva));
        }

        #[test]
        fn decode_is_total(v: u64) {
            if let Ok(c) = ContextCommand::decode(v) { prop_assert_eq!(c.encode(), v); }
            if let Ok(c) = IotlbCommand::decode(v) { prop_assert_eq!(c.encode(), v); }
            if let Ok(c) = Iva::decode(v) { prop_assert_eq!(c.encode(), v); }
        }
    }
}
