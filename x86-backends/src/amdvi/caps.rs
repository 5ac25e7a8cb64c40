//! Capability decoding: the IOMMU's PCI capability block (48882 3.3.1: at
//! the offset IVHD.CapabilityOffset gives, in the IOMMU's own PCI function)
//! and the Extended Feature Register (MMIO 0x0030, 3.4.5), with a
//! requirements check that names what is missing.
//!
//! Everything is read once into plain integers and decoded here, so decoding
//! is testable without a device.

use core::fmt;

use iommu_common::addr::PhysAddr;
use tock_registers::LocalRegisterCopy;

use crate::amdvi::regs::EFR;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u32,
        /// IOMMU Capability Header (capability offset + 0x00).
        pub CAP_HEADER [
            /// CapID: 0Fh (secure device).
            CAP_ID OFFSET(0) NUMBITS(8) [],
            /// CapPtr: next capability.
            CAP_PTR OFFSET(8) NUMBITS(8) [],
            /// CapType: 011b for an IOMMU.
            CAP_TYPE OFFSET(16) NUMBITS(3) [],
            /// CapRev: capability revision.
            CAP_REV OFFSET(19) NUMBITS(5) [],
            /// IotlbSup: remote IOTLB (ATS) supported.
            IOTLB_SUP OFFSET(24) NUMBITS(1) [],
            /// HtTunnel: HyperTransport tunnel translation supported.
            HT_TUNNEL OFFSET(25) NUMBITS(1) [],
            /// NpCache: not-present table entries may be cached (invalidate after
            /// making an entry present).
            NP_CACHE OFFSET(26) NUMBITS(1) [],
            /// EFRSup: the Extended Feature Register is implemented.
            EFR_SUP OFFSET(27) NUMBITS(1) [],
            /// CapExt: Miscellaneous Information Register 1 is implemented.
            CAP_EXT OFFSET(28) NUMBITS(1) []
        ],
        /// IOMMU Base Address Low (capability offset + 0x04).
        pub BASE_LO [
            /// Enable: the MMIO base is programmed and locked.
            ENABLE OFFSET(0) NUMBITS(1) [],
            /// BaseAddress `[31:14]`.
            BASE_ADDRESS OFFSET(14) NUMBITS(18) []
        ],
        /// IOMMU Range Register (capability offset + 0x0C).
        pub RANGE [
            /// UnitID: HyperTransport unit ID.
            UNIT_ID OFFSET(0) NUMBITS(5) [],
            /// RngValid: the range below is valid.
            RNG_VALID OFFSET(7) NUMBITS(1) [],
            /// BusNumber.
            BUS_NUMBER OFFSET(8) NUMBITS(8) [],
            /// FirstDevice: device/function of the first device.
            FIRST_DEVICE OFFSET(16) NUMBITS(8) [],
            /// LastDevice: device/function of the last device.
            LAST_DEVICE OFFSET(24) NUMBITS(8) []
        ],
        /// IOMMU Miscellaneous Information Register 0 (capability offset + 0x10).
        pub MISC0 [
            /// MsiNum: MSI message number of event interrupts.
            MSI_NUM OFFSET(0) NUMBITS(5) [],
            /// GVAsize: guest virtual address size.
            GVA_SIZE OFFSET(5) NUMBITS(3) [],
            /// PAsize: physical address size in bits.
            PA_SIZE OFFSET(8) NUMBITS(7) [],
            /// VAsize: virtual (IOVA) address size in bits.
            VA_SIZE OFFSET(15) NUMBITS(7) [],
            /// HtAtsResv: the HyperTransport ATS response range is reserved.
            HT_ATS_RESV OFFSET(22) NUMBITS(1) [],
            /// MsiNumPPR: MSI message number of PPR interrupts.
            MSI_NUM_PPR OFFSET(27) NUMBITS(5) []
        ],
        /// IOMMU Miscellaneous Information Register 1 (capability offset + 0x14, CapExt=1).
        pub MISC1 [
            /// MsiNumGA: MSI message number of GA log interrupts.
            MSI_NUM_GA OFFSET(0) NUMBITS(5) []
        ]
    ];
}
pub use layout::*;

/// CapID of the IOMMU capability (secure device).
pub const CAP_ID_SECURE_DEVICE: u8 = 0x0f;
/// CapType of an IOMMU.
pub const CAP_TYPE_IOMMU: u8 = 0b011;

/// The IOMMU PCI capability block, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapBlock {
    /// CapPtr: offset of the next capability.
    pub cap_ptr: u8,
    /// CapRev.
    pub cap_rev: u8,
    /// IotlbSup.
    pub iotlb_sup: bool,
    /// HtTunnel.
    pub ht_tunnel: bool,
    /// NpCache: not-present entries may be cached, so making an entry
    /// present needs an invalidation too.
    pub np_cache: bool,
    /// EFRSup.
    pub efr_sup: bool,
    /// CapExt.
    pub cap_ext: bool,
    /// Base Address Low.Enable.
    pub base_enabled: bool,
    /// The MMIO base (16 KiB aligned).
    pub base: PhysAddr,
    /// The Range register.
    pub range: Range,
    /// The Miscellaneous Information registers.
    pub misc: MiscInfo,
}

/// The IOMMU Range register: the devices behind an IOMMU on one bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// UnitID.
    pub unit_id: u8,
    /// RngValid.
    pub valid: bool,
    /// BusNumber.
    pub bus: u8,
    /// FirstDevice (device << 3 | function).
    pub first_devfn: u8,
    /// LastDevice (device << 3 | function).
    pub last_devfn: u8,
}

/// The Miscellaneous Information registers 0 and 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MiscInfo {
    /// MsiNum.
    pub msi_num: u8,
    /// GVAsize (raw encoding).
    pub gva_size: u8,
    /// PAsize in bits.
    pub pa_size: u8,
    /// VAsize in bits.
    pub va_size: u8,
    /// HtAtsResv.
    pub ht_ats_resv: bool,
    /// MsiNumPPR.
    pub msi_num_ppr: u8,
    /// MsiNumGA (0 without CapExt).
    pub msi_num_ga: u8,
}

/// The capability block is not an IOMMU's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotIommuCap {
    /// The CapID read.
    pub cap_id: u8,
    /// The CapType read.
    pub cap_type: u8,
}

impl fmt::Display for NotIommuCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "not an IOMMU capability: CapID {:#04x} (want 0x0f), CapType {:#05b} (want 0b011)",
            self.cap_id, self.cap_type
        )
    }
}

impl CapBlock {
    /// Decodes the six dwords at the capability offset (+0x00 .. +0x14);
    /// `dw[5]` is ignored unless CapExt is set.
    pub fn decode(dw: [u32; 6]) -> Result<Self, NotIommuCap> {
        let h = LocalRegisterCopy::<u32, CAP_HEADER::Register>::new(dw[0]);
        let cap_id = h.read(CAP_HEADER::CAP_ID) as u8;
        let cap_type = h.read(CAP_HEADER::CAP_TYPE) as u8;
        if cap_id != CAP_ID_SECURE_DEVICE || cap_type != CAP_TYPE_IOMMU {
            return Err(NotIommuCap { cap_id, cap_type });
        }
        let lo = LocalRegisterCopy::<u32, BASE_LO::Register>::new(dw[1]);
        let r = LocalRegisterCopy::<u32, RANGE::Register>::new(dw[3]);
        let m0 = LocalRegisterCopy::<u32, MISC0::Register>::new(dw[4]);
        let m1 = LocalRegisterCopy::<u32, MISC1::Register>::new(dw[5]);
        let cap_ext = h.is_set(CAP_HEADER::CAP_EXT);
        Ok(Self {
            cap_ptr: h.read(CAP_HEADER::CAP_PTR) as u8,
            cap_rev: h.read(CAP_HEADER::CAP_REV) as u8,
            iotlb_sup: h.is_set(CAP_HEADER::IOTLB_SUP),
            ht_tunnel: h.is_set(CAP_HEADER::HT_TUNNEL),
            np_cache: h.is_set(CAP_HEADER::NP_CACHE),
            efr_sup: h.is_set(CAP_HEADER::EFR_SUP),
            cap_ext,
            base_enabled: lo.is_set(BASE_LO::ENABLE),
            base: PhysAddr((u64::from(dw[2]) << 32) | u64::from(lo.read(BASE_LO::BASE_ADDRESS) << 14)),
            range: Range {
                unit_id: r.read(RANGE::UNIT_ID) as u8,
                valid: r.is_set(RANGE::RNG_VALID),
                bus: r.read(RANGE::BUS_NUMBER) as u8,
                first_devfn: r.read(RANGE::FIRST_DEVICE) as u8,
                last_devfn: r.read(RANGE::LAST_DEVICE) as u8,
            },
            misc: MiscInfo {
                msi_num: m0.read(MISC0::MSI_NUM) as u8,
                gva_size: m0.read(MISC0::GVA_SIZE) as u8,
                pa_size: m0.read(MISC0::PA_SIZE) as u8,
                va_size: m0.read(MISC0::VA_SIZE) as u8,
                ht_ats_resv: m0.is_set(MISC0::HT_ATS_RESV),
                msi_num_ppr: m0.read(MISC0::MSI_NUM_PPR) as u8,
                msi_num_ga: if cap_ext { m1.read(MISC1::MSI_NUM_GA) as u8 } else { 0 },
            },
        })
    }
}

/// EFR.HATS: how many levels of host (v1) I/O page table the IOMMU walks,
/// hence the largest DTE.Mode it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hats {
    /// 00b: 4 levels (48-bit IOVAs).
    Levels4,
    /// 01b: 5 levels (57-bit IOVAs).
    Levels5,
    /// 10b: 6 levels (64-bit IOVAs).
    Levels6,
    /// 11b: reserved in rev 3.0x (later revisions: host translation disabled).
    Reserved,
}

impl Hats {
    /// The largest page-table depth, or 0 for the reserved encoding.
    pub const fn levels(self) -> u8 {
        match self {
            Self::Levels4 => 4,
            Self::Levels5 => 5,
            Self::Levels6 => 6,
            Self::Reserved => 0,
        }
    }
}

/// EFR.GATS: guest (v2, x86 format) page-table depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gats {
    /// 00b: 4 levels.
    Levels4,
    /// 01b: 5 levels.
    Levels5,
    /// 10b, 11b: reserved.
    Reserved(u8),
}

/// The Extended Feature Register, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Efr {
    /// PreFSup: PREFETCH_IOMMU_PAGES.
    pub pref_sup: bool,
    /// PPRSup: peripheral page requests.
    pub ppr_sup: bool,
    /// XTSup: x2APIC (128-bit IRTEs, 32-bit destinations).
    pub xt_sup: bool,
    /// NXSup: no-execute and privilege protection.
    pub nx_sup: bool,
    /// GTSup: guest translation.
    pub gt_sup: bool,
    /// IASup: INVALIDATE_IOMMU_ALL.
    pub ia_sup: bool,
    /// GASup: guest virtual APIC.
    pub ga_sup: bool,
    /// HESup: hardware error registers.
    pub he_sup: bool,
    /// PCSup: performance counters.
    pub pc_sup: bool,
    /// HATS.
    pub hats: Hats,
    /// GATS.
    pub gats: Gats,
    /// GLXSup (raw: 00b one-level GCR3 tables, 01b two-level).
    pub glx_sup: u8,
    /// SmiFSup (raw).
    pub smif_sup: u8,
    /// SmiFRC (raw).
    pub smif_rc: u8,
    /// GAMSup (raw: 000b legacy remapping only, 001b adds vAPIC mode).
    pub gam_sup: u8,
    /// DualPprLogSup (raw).
    pub dual_ppr_log_sup: u8,
    /// DualEventLogSup (raw).
    pub dual_event_log_sup: u8,
    /// PASmax: PASIDs up to 2^(PASmax+1) - 1.
    pub pas_max: u8,
    /// USSup: user/supervisor protection.
    pub us_sup: bool,
    /// DevTblSegSup (raw: number of segments is 2^DevTblSegSup).
    pub dev_tbl_seg_sup: u8,
    /// GIoSup: guest I/O protection.
    pub gio_sup: bool,
    /// HASup: host access bit.
    pub ha_sup: bool,
    /// HDSup: host dirty bit.
    pub hd_sup: bool,
    /// SNPSup: secure nested paging.
    pub snp_sup: bool,
    /// The raw value.
    pub raw: u64,
}

impl Efr {
    /// Decodes an EFR value (total: reserved encodings are kept as such).
    pub fn decode(v: u64) -> Self {
        let r = LocalRegisterCopy::<u64, EFR::Register>::new(v);
        let b = |f| r.is_set(f);
        Self {
            pref_sup: b(EFR::PREF_SUP),
            ppr_sup: b(EFR::PPR_SUP),
            xt_sup: b(EFR::XT_SUP),
            nx_sup: b(EFR::NX_SUP),
            gt_sup: b(EFR::GT_SUP),
            ia_sup: b(EFR::IA_SUP),
            ga_sup: b(EFR::GA_SUP),
            he_sup: b(EFR::HE_SUP),
            pc_sup: b(EFR::PC_SUP),
            hats: match r.read(EFR::HATS) {
                0 => Hats::Levels4,
                1 => Hats::Levels5,
                2 => Hats::Levels6,
                _ => Hats::Reserved,
            },
            gats: match r.read(EFR::GATS) {
                0 => Gats::Levels4,
                1 => Gats::Levels5,
                v => Gats::Reserved(v as u8),
            },
            glx_sup: r.read(EFR::GLX_SUP) as u8,
            smif_sup: r.read(EFR::SMIF_SUP) as u8,
            smif_rc: r.read(EFR::SMIF_RC) as u8,
            gam_sup: r.read(EFR::GAM_SUP) as u8,
            dual_ppr_log_sup: r.read(EFR::DUAL_PPR_LOG_SUP) as u8,
            dual_event_log_sup: r.read(EFR::DUAL_EVENT_LOG_SUP) as u8,
            pas_max: r.read(EFR::PAS_MAX) as u8,
            us_sup: b(EFR::US_SUP),
            dev_tbl_seg_sup: r.read(EFR::DEV_TBL_SEG_SUP) as u8,
            gio_sup: b(EFR::GIO_SUP),
            ha_sup: b(EFR::HA_SUP),
            hd_sup: b(EFR::HD_SUP),
            snp_sup: b(EFR::SNP_SUP),
            raw: v,
        }
    }

    /// The largest PASID: 2^(PASmax+1) - 1, capped at the architectural 20 bits.
    pub const fn max_pasid(&self) -> u32 {
        let bits = if self.pas_max >= 19 { 20 } else { self.pas_max as u32 + 1 };
        (1 << bits) - 1
    }
}

/// What a configuration needs from the IOMMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Requirements {
    /// Host page-table depth the domains use (DTE.Mode), 1..=6.
    pub levels: u8,
    /// INVALIDATE_IOMMU_ALL (EFR.IASup).
    pub invalidate_all: bool,
    /// x2APIC interrupt remapping (EFR.XTSup).
    pub x2apic: bool,
    /// Guest virtual APIC (EFR.GASup).
    pub guest_apic: bool,
    /// Guest translation (EFR.GTSup).
    pub guest_translation: bool,
    /// Peripheral page requests (EFR.PPRSup).
    pub ppr: bool,
    /// PREFETCH_IOMMU_PAGES (EFR.PreFSup).
    pub prefetch: bool,
    /// Hardware error registers (EFR.HESup).
    pub hw_error_regs: bool,
    /// PASIDs up to this value (EFR.PASmax), 0 for none.
    pub max_pasid: u32,
}

/// A feature the configuration needs and the IOMMU lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// The EFR is not implemented (capability header EFRSup = 0).
    Efr,
    /// A one-bit EFR feature; the spec name of the bit.
    Feature(&'static str),
    /// EFR.HATS allows fewer page-table levels than needed.
    Levels {
        /// Levels needed.
        need: u8,
        /// Levels EFR.HATS allows.
        have: u8,
    },
    /// EFR.PASmax allows fewer PASIDs than needed.
    Pasid {
        /// Largest PASID needed.
        need: u32,
        /// Largest PASID supported.
        have: u32,
    },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Efr => f.write_str("IOMMU has no Extended Feature Register (EFRSup = 0)"),
            Self::Feature(name) => write!(f, "IOMMU lacks EFR.{name}"),
            Self::Levels { need, have } => {
                write!(f, "IOMMU walks {have} page-table levels (EFR.HATS), {need} needed")
            }
            Self::Pasid { need, have } => {
                write!(f, "IOMMU supports PASIDs up to {have:#x} (EFR.PASmax), {need:#x} needed")
            }
        }
    }
}

impl Requirements {
    /// Checks `efr` (`None` when the capability header says EFRSup = 0)
    /// against the requirements, naming the first missing feature.
    pub fn check(&self, efr: Option<&Efr>) -> Result<(), Missing> {
        let needs_efr = *self != Self::default();
        let Some(efr) = efr else {
            return if needs_efr { Err(Missing::Efr) } else { Ok(()) };
        };
        let have = efr.hats.levels();
        if self.levels > have {
            return Err(Missing::Levels { need: self.levels, have });
        }
        let bits = [
            (self.invalidate_all, efr.ia_sup, "IASup"),
            (self.x2apic, efr.xt_sup, "XTSup"),
            (self.guest_apic, efr.ga_sup, "GASup"),
            (self.guest_translation, efr.gt_sup, "GTSup"),
            (self.ppr, efr.ppr_sup, "PPRSup"),
            (self.prefetch, efr.pref_sup, "PreFSup"),
            (self.hw_error_regs, efr.he_sup, "HESup"),
        ];
        for (need, have, name) in bits {
            if need && !have {
                return Err(Missing::Feature(name));
            }
        }
        if self.max_pasid > 0 {
            if !efr.ppr_sup && !efr.gt_sup {
                return Err(Missing::Feature("GTSup"));
            }
            if self.max_pasid > efr.max_pasid() {
                return Err(Missing::Pasid { need: self.max_pasid, have: efr.max_pasid() });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;

    // Bit positions below are from the spec's tables (capability header
    // 3.3.1, EFR 3.4.5), not from the layout declarations.

    #[test]
    fn capability_block() {
        let header = 0x0f                // CapID
            | (0x64 << 8)                // CapPtr
            | (0b011 << 16)              // CapType
            | (0b00001 << 19)            // CapRev
            | (1 << 24)                  // IotlbSup
            | (1 << 26)                  // NpCache
            | (1 << 27)                  // EFRSup
            | (1 << 28); // CapExt
        let base_lo = 0xfed8_0000 | 1; // BaseAddress [31:14], Enable bit 0
        let range = 3 | (1 << 7) | (0x02 << 8) | (0x08 << 16) | (0xf8 << 24);
        let misc0 = 4 | (2 << 5) | (48 << 8) | (64 << 15) | (1 << 22) | (5 << 27);
        let c = CapBlock::decode([header, base_lo, 0x1, range, misc0, 7]).unwrap();
        assert_eq!(c.cap_ptr, 0x64);
        assert_eq!(c.cap_rev, 1);
        assert!(c.iotlb_sup && !c.ht_tunnel && c.np_cache && c.efr_sup && c.cap_ext);
        assert!(c.base_enabled);
        assert_eq!(c.base, PhysAddr(0x1_fed8_0000));
        assert_eq!(c.range, Range { unit_id: 3, valid: true, bus: 2, first_devfn: 0x08, last_devfn: 0xf8 });
        assert_eq!(
            c.misc,
            MiscInfo {
                msi_num: 4,
                gva_size: 2,
                pa_size: 48,
                va_size: 64,
                ht_ats_resv: true,
                msi_num_ppr: 5,
                msi_num_ga: 7
            }
        );
        // Without CapExt, Misc 1 is not read.
        let c = CapBlock::decode([header & !(1 << 28), 0, 0, 0, 0, 7]).unwrap();
        assert_eq!(c.misc.msi_num_ga, 0);
        assert!(!c.base_enabled);
        // Low base bits [13:1] are reserved and ignored.
        let c = CapBlock::decode([header, 0xfed8_3ffe, 0, 0, 0, 0]).unwrap();
        assert_eq!(c.base, PhysAddr(0xfed8_0000));
    }

    #[test]
    fn not_an_iommu() {
        // An MSI capability (CapID 05h).
        let e = CapBlock::decode([0x05 | (0b011 << 16), 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(e, NotIommuCap { cap_id: 5, cap_type: 3 });
        let e = CapBlock::decode([0x0f | (0b001 << 16), 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(e.cap_type, 1);
        assert!(format!("{e}").contains("CapType"));
    }

    #[test]
    fn efr_bits() {
        // PreFSup 0, PPRSup 1, XTSup 2, NXSup 3, GTSup 4, IASup 6, GASup 7,
        // HESup 8, PCSup 9.
        let one = |bit: u32| Efr::decode(1 << bit);
        assert!(one(0).pref_sup);
        assert!(one(1).ppr_sup);
        assert!(one(2).xt_sup);
        assert!(one(3).nx_sup);
        assert!(one(4).gt_sup);
        assert!(!one(5).gt_sup && !one(5).ia_sup);
        assert!(one(6).ia_sup);
        assert!(one(7).ga_sup);
        assert!(one(8).he_sup);
        assert!(one(9).pc_sup);
        // US_Sup 37, GIoSup 48, HASup 49, HDSup 52, SNPSup 63.
        assert!(one(37).us_sup);
        assert!(one(48).gio_sup);
        assert!(one(49).ha_sup);
        assert!(one(52).hd_sup);
        assert!(one(63).snp_sup);
    }

    #[test]
    fn efr_fields() {
        // HATS [11:10], GATS [13:12], GLXSup [15:14], SmiFSup [17:16],
        // SmiFRC [20:18], GAMSup [23:21], DualPprLogSup [25:24],
        // DualEventLogSup [29:28], PASmax [36:32], DevTblSegSup [39:38].
        assert_eq!(Efr::decode(0).hats, Hats::Levels4);
        assert_eq!(Efr::decode(1 << 10).hats, Hats::Levels5);
        assert_eq!(Efr::decode(2 << 10).hats, Hats::Levels6);
        assert_eq!(Efr::decode(3 << 10).hats, Hats::Reserved);
        assert_eq!(Efr::decode(2 << 10).hats.levels(), 6);
        assert_eq!(Efr::decode(1 << 12).gats, Gats::Levels5);
        assert_eq!(Efr::decode(2 << 12).gats, Gats::Reserved(2));
        assert_eq!(Efr::decode(1 << 14).glx_sup, 1);
        assert_eq!(Efr::decode(3 << 16).smif_sup, 3);
        assert_eq!(Efr::decode(5 << 18).smif_rc, 5);
        assert_eq!(Efr::decode(1 << 21).gam_sup, 1);
        assert_eq!(Efr::decode(2 << 24).dual_ppr_log_sup, 2);
        assert_eq!(Efr::decode(2 << 28).dual_event_log_sup, 2);
        let e = Efr::decode(0xf << 32);
        assert_eq!(e.pas_max, 15);
        assert_eq!(e.max_pasid(), 0xffff);
        assert_eq!(Efr::decode(0x1f << 32).max_pasid(), 0xf_ffff);
        assert_eq!(Efr::decode(3 << 38).dev_tbl_seg_sup, 3);
    }

    #[test]
    fn requirements_name_the_missing_feature() {
        let efr = Efr::decode((1 << 6) | (1 << 2) | (0xf << 32));
        let mut req = Requirements { levels: 4, invalidate_all: true, ..Default::default() };
        assert_eq!(req.check(Some(&efr)), Ok(()));
        req.levels = 5;
        assert_eq!(req.check(Some(&efr)), Err(Missing::Levels { need: 5, have: 4 }));
        req.levels = 3;
        req.x2apic = true;
        assert_eq!(req.check(Some(&efr)), Ok(()));
        req.guest_apic = true;
        assert_eq!(req.check(Some(&efr)), Err(Missing::Feature("GASup")));
        assert_eq!(format!("{}", Missing::Feature("GASup")), "IOMMU lacks EFR.GASup");
        req.guest_apic = false;
        req.max_pasid = 0xff;
        assert_eq!(req.check(Some(&efr)), Err(Missing::Feature("GTSup")));
        let efr = Efr::decode((1 << 4) | (7 << 32));
        assert_eq!(
            Requirements { max_pasid: 0x1000, ..Default::default() }.check(Some(&efr)),
            Err(Missing::Pasid { need: 0x1000, have: 0xff })
        );
        assert_eq!(Requirements { levels: 3, ..Default::default() }.check(None), Err(Missing::Efr));
        assert_eq!(Requirements::default().check(None), Ok(()));
    }
}
