//! Capability decoding: CAP_REG and ECAP_REG (11.4.2, 11.4.3).
//!
//! Both registers are read once into plain integers and decoded here from a
//! `LocalRegisterCopy`, so decoding is testable without a device.
//! [`Capabilities::check`] turns a [`Requirements`] into an error naming the
//! first missing feature by its spec name ("QI", "SLTS", ...).

use core::fmt;

use tock_registers::LocalRegisterCopy;

use crate::vtd::regs::{CAP, ECAP};

/// An adjusted guest address width: the number of page-table levels of a
/// second-level (or first-level) table. Encoded in context-entry.AW and
/// PASID-entry.AW as 1/2/3; SAGAW bit n advertises AW value n.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AddressWidth {
    /// 39-bit, 3-level table (AW = 001b).
    Bits39,
    /// 48-bit, 4-level table (AW = 010b).
    Bits48,
    /// 57-bit, 5-level table (AW = 011b).
    Bits57,
}

impl AddressWidth {
    /// The AW field encoding (also the SAGAW bit index).
    pub const fn field(self) -> u64 {
        match self {
            Self::Bits39 => 1,
            Self::Bits48 => 2,
            Self::Bits57 => 3,
        }
    }

    /// Decodes an AW field; 000b (30-bit, 2-level) and 100b and up are
    /// reserved in rev 4.
    pub const fn from_field(v: u64) -> Option<Self> {
        match v {
            1 => Some(Self::Bits39),
            2 => Some(Self::Bits48),
            3 => Some(Self::Bits57),
            _ => None,
        }
    }

    /// The address width in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Self::Bits39 => 39,
            Self::Bits48 => 48,
            Self::Bits57 => 57,
        }
    }

    /// The number of page-table levels.
    pub const fn levels(self) -> u32 {
        match self {
            Self::Bits39 => 3,
            Self::Bits48 => 4,
            Self::Bits57 => 5,
        }
    }

    /// The smallest width covering `bits` address bits.
    pub const fn covering(bits: u32) -> Option<Self> {
        match bits {
            0..=39 => Some(Self::Bits39),
            40..=48 => Some(Self::Bits48),
            49..=57 => Some(Self::Bits57),
            _ => None,
        }
    }
}

/// Second-level large page sizes (CAP_REG.SLLPS).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LargePages {
    /// 2 MiB pages (21-bit offset, SLLPS bit 0).
    pub m2: bool,
    /// 1 GiB pages (30-bit offset, SLLPS bit 1).
    pub g1: bool,
}

/// Decoded CAP_REG and ECAP_REG. Field names follow the register fields;
/// counts that the spec encodes minus one or as a log are decoded by the
/// accessor methods ([`Capabilities::domains`], [`Capabilities::mgaw`], ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The raw CAP_REG value.
    pub cap: u64,
    /// The raw ECAP_REG value.
    pub ecap: u64,
    // --- CAP_REG ---
    /// ND: number of domains, encoded (2^(4 + 2 * ND) domains).
    pub nd: u8,
    /// AFL: advanced fault logging.
    pub afl: bool,
    /// RWBF: write-buffer flushing required after table updates.
    pub rwbf: bool,
    /// PLMR: protected low-memory region.
    pub plmr: bool,
    /// PHMR: protected high-memory region.
    pub phmr: bool,
    /// CM: caching mode (not-present entries may be cached, so they need
    /// invalidation too; set by virtual IOMMUs that shadow the tables).
    pub cm: bool,
    /// SAGAW, raw 5-bit field.
    pub sagaw: u8,
    /// MGAW, raw field (width minus one).
    pub mgaw_field: u8,
    /// ZLR: zero-length reads.
    pub zlr: bool,
    /// FRO: fault recording register offset in 16-byte units.
    pub fro: u16,
    /// SLLPS: second-level large pages.
    pub sllps: LargePages,
    /// PSI: page-selective invalidation.
    pub psi: bool,
    /// NFR, raw field (records minus one).
    pub nfr: u8,
    /// MAMV: maximum address mask value for page-selective invalidation.
    pub mamv: u8,
    /// DWD: write draining.
    pub dwd: bool,
    /// DRD: read draining.
    pub drd: bool,
    /// FL1GP: first-level 1 GiB pages.
    pub fl1gp: bool,
    /// PI: posted interrupts.
    pub pi: bool,
    /// FL5LP: first-level 5-level paging.
    pub fl5lp: bool,
    /// ESIRTPS: enhanced set interrupt root table pointer.
    pub esirtps: bool,
    /// ESRTPS: enhanced set root table pointer.
    pub esrtps: bool,
    // --- ECAP_REG ---
    /// C: page-walk coherency (no cache flushes needed for table updates).
    pub c: bool,
    /// QI: queued invalidation.
    pub qi: bool,
    /// DT: device-TLB (ATS).
    pub dt: bool,
    /// IR: interrupt remapping.
    pub ir: bool,
    /// EIM: extended interrupt mode (x2APIC).
    pub eim: bool,
    /// PT: pass-through translation type.
    pub pt: bool,
    /// SC: snoop control.
    pub sc: bool,
    /// IRO: IOTLB register offset in 16-byte units.
    pub iro: u16,
    /// MHMV: maximum handle mask value.
    pub mhmv: u8,
    /// MTS: memory type support.
    pub mts: bool,
    /// NEST: nested translation.
    pub nest: bool,
    /// PRS: page requests.
    pub prs: bool,
    /// ERS: execute requests.
    pub ers: bool,
    /// SRS: supervisor requests.
    pub srs: bool,
    /// NWFS: no-write flag.
    pub nwfs: bool,
    /// EAFS: extended accessed flag.
    pub eafs: bool,
    /// PSS, raw field (PASID bits minus one).
    pub pss: u8,
    /// PASID: PASID support.
    pub pasid: bool,
    /// DIT: device-TLB invalidation throttle.
    pub dit: bool,
    /// PDS: page-request drain.
    pub pds: bool,
    /// SMTS: scalable-mode translation.
    pub smts: bool,
    /// VCS: virtual command interface.
    pub vcs: bool,
    /// SLADS: second-level accessed/dirty.
    pub slads: bool,
    /// SLTS: second-level translation (in scalable mode).
    pub slts: bool,
    /// FLTS: first-level translation.
    pub flts: bool,
    /// SMPWCS: scalable-mode page-walk coherency.
    pub smpwcs: bool,
    /// RPS: RID_PASID.
    pub rps: bool,
    /// ADMS: abort-DMA mode.
    pub adms: bool,
    /// RPRIVS: RID_PRIV.
    pub rprivs: bool,
}

impl Capabilities {
    /// Decodes CAP_REG and ECAP_REG. Total: every bit pattern decodes
    /// (reserved bits are ignored).
    pub fn decode(cap: u64, ecap: u64) -> Self {
        let c = LocalRegisterCopy::<u64, CAP::Register>::new(cap);
        let e = LocalRegisterCopy::<u64, ECAP::Register>::new(ecap);
        // Every narrowing below is of a field no wider than the target type.
        let f8 = |v: u64| v as u8;
        let f16 = |v: u64| v as u16;
        let sllps = c.read(CAP::SLLPS);
        Self {
            cap,
            ecap,
            nd: f8(c.read(CAP::ND)),
            afl: c.is_set(CAP::AFL),
            rwbf: c.is_set(CAP::RWBF),
            plmr: c.is_set(CAP::PLMR),
            phmr: c.is_set(CAP::PHMR),
            cm: c.is_set(CAP::CM),
            sagaw: f8(c.read(CAP::SAGAW)),
            mgaw_field: f8(c.read(CAP::MGAW)),
            zlr: c.is_set(CAP::ZLR),
            fro: f16(c.read(CAP::FRO)),
            sllps: LargePages { m2: sllps & 1 != 0, g1: sllps & 2 != 0 },
            psi: c.is_set(CAP::PSI),
            nfr: f8(c.read(CAP::NFR)),
            mamv: f8(c.read(CAP::MAMV)),
            dwd: c.is_set(CAP::DWD),
            drd: c.is_set(CAP::DRD),
            fl1gp: c.is_set(CAP::FL1GP),
            pi: c.is_set(CAP::PI),
            fl5lp: c.is_set(CAP::FL5LP),
            esirtps: c.is_set(CAP::ESIRTPS),
            esrtps: c.is_set(CAP::ESRTPS),
            c: e.is_set(ECAP::C),
            qi: e.is_set(ECAP::QI),
            dt: e.is_set(ECAP::DT),
            ir: e.is_set(ECAP::IR),
            eim: e.is_set(ECAP::EIM),
            pt: e.is_set(ECAP::PT),
            sc: e.is_set(ECAP::SC),
            iro: f16(e.read(ECAP::IRO)),
            mhmv: f8(e.read(ECAP::MHMV)),
            mts: e.is_set(ECAP::MTS),
            nest: e.is_set(ECAP::NEST),
            prs: e.is_set(ECAP::PRS),
            ers: e.is_set(ECAP::ERS),
            srs: e.is_set(ECAP::SRS),
            nwfs: e.is_set(ECAP::NWFS),
            eafs: e.is_set(ECAP::EAFS),
            pss: f8(e.read(ECAP::PSS)),
            pasid: e.is_set(ECAP::PASID),
            dit: e.is_set(ECAP::DIT),
            pds: e.is_set(ECAP::PDS),
            smts: e.is_set(ECAP::SMTS),
            vcs: e.is_set(ECAP::VCS),
            slads: e.is_set(ECAP::SLADS),
            slts: e.is_set(ECAP::SLTS),
            flts: e.is_set(ECAP::FLTS),
            smpwcs: e.is_set(ECAP::SMPWCS),
            rps: e.is_set(ECAP::RPS),
            adms: e.is_set(ECAP::ADMS),
            rprivs: e.is_set(ECAP::RPRIVS),
        }
    }

    /// Number of domain-IDs: 2^(4 + 2 * ND). ND = 7 is reserved in rev 4;
    /// it decodes to 2^18 here and [`Capabilities::max_domain_id`] caps it.
    pub const fn domains(&self) -> u32 {
        1 << (4 + 2 * self.nd as u32)
    }

    /// The largest usable Domain-ID (DIDs are 16 bits wide).
    pub const fn max_domain_id(&self) -> u16 {
        let d = self.domains();
        if d > 0x1_0000 {
            0xffff
        } else {
            (d - 1) as u16
        }
    }

    /// Maximum guest address width in bits (MGAW + 1).
    pub const fn mgaw(&self) -> u32 {
        self.mgaw_field as u32 + 1
    }

    /// Whether SAGAW advertises `aw`.
    pub const fn supports_aw(&self, aw: AddressWidth) -> bool {
        self.sagaw & (1 << aw.field()) != 0
    }

    /// The widest address width SAGAW advertises.
    pub fn max_aw(&self) -> Option<AddressWidth> {
        [AddressWidth::Bits57, AddressWidth::Bits48, AddressWidth::Bits39]
            .into_iter()
            .find(|aw| self.supports_aw(*aw))
    }

    /// Number of fault recording registers (NFR + 1).
    pub const fn num_fault_records(&self) -> u16 {
        self.nfr as u16 + 1
    }

    /// Number of PASID bits supported (PSS + 1).
    pub const fn pasid_bits(&self) -> u32 {
        self.pss as u32 + 1
    }

    /// Checks `req`; the error names the first missing feature.
    pub fn check(&self, req: &Requirements) -> Result<(), CapsError> {
        let need = |ok: bool, feat: Feature| if ok { Ok(()) } else { Err(CapsError::Missing(feat)) };
        need(!req.qi || self.qi, Feature::Qi)?;
        need(!req.ir || self.ir, Feature::Ir)?;
        need(!req.eim || self.eim, Feature::Eim)?;
        need(!req.pt || self.pt, Feature::Pt)?;
        need(!req.psi || self.psi, Feature::Psi)?;
        need(!req.coherent || self.c, Feature::C)?;
        need(!req.snoop_control || self.sc, Feature::Sc)?;
        need(!req.scalable_mode || self.smts, Feature::Smts)?;
        need(!req.second_level || !req.scalable_mode || self.slts, Feature::Slts)?;
        need(!req.first_level || self.flts, Feature::Flts)?;
        need(!req.nested || self.nest, Feature::Nest)?;
        need(!req.pasid || self.pasid, Feature::Pasid)?;
        need(!req.large_2m || self.sllps.m2, Feature::Sllps2M)?;
        need(!req.large_1g || self.sllps.g1, Feature::Sllps1G)?;
        if let Some(aw) = req.address_width {
            need(self.supports_aw(aw), Feature::Sagaw(aw))?;
        }
        need(self.domains() >= req.min_domains, Feature::Domains(req.min_domains))?;
        Ok(())
    }
}

/// What the caller needs from the remapping unit; see [`Capabilities::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirements {
    /// ECAP.QI: queued invalidation.
    pub qi: bool,
    /// ECAP.IR: interrupt remapping.
    pub ir: bool,
    /// ECAP.EIM: x2APIC destinations.
    pub eim: bool,
    /// ECAP.PT: pass-through.
    pub pt: bool,
    /// CAP.PSI: page-selective invalidation.
    pub psi: bool,
    /// ECAP.C: coherent table walks.
    pub coherent: bool,
    /// ECAP.SC: snoop control.
    pub snoop_control: bool,
    /// ECAP.SMTS: scalable mode.
    pub scalable_mode: bool,
    /// Second-level translation; in scalable mode this needs ECAP.SLTS
    /// (legacy mode always has it).
    pub second_level: bool,
    /// ECAP.FLTS: first-level translation.
    pub first_level: bool,
    /// ECAP.NEST: nested translation.
    pub nested: bool,
    /// ECAP.PASID.
    pub pasid: bool,
    /// CAP.SLLPS bit 0: 2 MiB second-level pages.
    pub large_2m: bool,
    /// CAP.SLLPS bit 1: 1 GiB second-level pages.
    pub large_1g: bool,
    /// CAP.SAGAW must advertise this width.
    pub address_width: Option<AddressWidth>,
    /// CAP.ND must give at least this many domains.
    pub min_domains: u32,
}

impl Requirements {
    /// What the hypervisor's legacy-mode backend needs: queued invalidation
    /// and 4-level (48-bit) second-level tables.
    pub const LEGACY_SECOND_LEVEL: Self = Self {
        qi: true,
        ir: false,
        eim: false,
        pt: false,
        psi: false,
        coherent: false,
        snoop_control: false,
        scalable_mode: false,
        second_level: true,
        first_level: false,
        nested: false,
        pasid: false,
        large_2m: false,
        large_1g: false,
        address_width: Some(AddressWidth::Bits48),
        min_domains: 16,
    };

    /// The scalable-mode backend: [`Self::LEGACY_SECOND_LEVEL`] plus SMTS and SLTS.
    pub const SCALABLE_SECOND_LEVEL: Self = Self { scalable_mode: true, ..Self::LEGACY_SECOND_LEVEL };
}

/// A feature the caller needs and the unit lacks, by its spec name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// ECAP.QI.
    Qi,
    /// ECAP.IR.
    Ir,
    /// ECAP.EIM.
    Eim,
    /// ECAP.PT.
    Pt,
    /// CAP.PSI.
    Psi,
    /// ECAP.C.
    C,
    /// ECAP.SC.
    Sc,
    /// ECAP.SMTS.
    Smts,
    /// ECAP.SLTS.
    Slts,
    /// ECAP.FLTS.
    Flts,
    /// ECAP.NEST.
    Nest,
    /// ECAP.PASID.
    Pasid,
    /// CAP.SLLPS bit 0.
    Sllps2M,
    /// CAP.SLLPS bit 1.
    Sllps1G,
    /// A CAP.SAGAW bit.
    Sagaw(AddressWidth),
    /// CAP.ND large enough for this many domains.
    Domains(u32),
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Qi => "QI",
            Self::Ir => "IR",
            Self::Eim => "EIM",
            Self::Pt => "PT",
            Self::Psi => "PSI",
            Self::C => "C",
            Self::Sc => "SC",
            Self::Smts => "SMTS",
            Self::Slts => "SLTS",
            Self::Flts => "FLTS",
            Self::Nest => "NEST",
            Self::Pasid => "PASID",
            Self::Sllps2M => "SLLPS (2 MiB)",
            Self::Sllps1G => "SLLPS (1 GiB)",
            Self::Sagaw(aw) => return write!(f, "SAGAW ({}-bit, {}-level)", aw.bits(), aw.levels()),
            Self::Domains(n) => return write!(f, "ND ({n} domains)"),
        };
        f.write_str(name)
    }
}

/// The capability check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapsError {
    /// The unit lacks a required feature.
    Missing(Feature),
}

impl fmt::Display for CapsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(feat) => write!(f, "VT-d unit lacks required feature {feat}"),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    /// QEMU 10 `intel-iommu` (legacy mode, aw-bits=48), as verified on q35.
    pub(crate) const QEMU_CAP: u64 = 0x00d2_008c_222f_0606;
    /// Its ECAP_REG.
    pub(crate) const QEMU_ECAP: u64 = 0x0000_0000_00f0_0f4a;

    pub(crate) fn qemu_caps() -> Capabilities {
        Capabilities::decode(QEMU_CAP, QEMU_ECAP)
    }

    // Expected values worked out by hand from the CAP_REG field table
    // (11.4.2): 0x00d2_008c_222f_0606.
    //   [2:0] ND = 6; [7:3] = 0 (AFL RWBF PLMR PHMR CM clear);
    //   [12:8] SAGAW = 0b00110; [21:16] MGAW = 0x2f; [22] ZLR = 0;
    //   [33:24] FRO = 0x022; [37:34] SLLPS = 0b0011; [39] PSI = 1;
    //   [47:40] NFR = 0; [53:48] MAMV = 0x12; [54] DWD = 1; [55] DRD = 1.
    #[test]
    fn qemu_cap_from_spec_table() {
        let c = qemu_caps();
        assert_eq!(c.nd, 6);
        assert_eq!(c.domains(), 65536, "2^(4 + 2*6)");
        assert_eq!(c.max_domain_id(), 0xffff);
        assert!(!c.afl && !c.rwbf && !c.plmr && !c.phmr && !c.cm);
        assert_eq!(c.sagaw, 0b00110);
        assert!(c.supports_aw(AddressWidth::Bits39), "SAGAW bit 1: 3-level");
        assert!(c.supports_aw(AddressWidth::Bits48), "SAGAW bit 2: 4-level");
        assert!(!c.supports_aw(AddressWidth::Bits57), "SAGAW bit 3 clear");
        assert_eq!(c.max_aw(), Some(AddressWidth::Bits48));
        assert_eq!(c.mgaw(), 48);
        assert!(!c.zlr);
        assert_eq!(c.fro, 0x22);
        assert_eq!(c.fro as usize * 16, 0x220);
        assert_eq!(c.sllps, LargePages { m2: true, g1: true });
        assert!(c.psi);
        assert_eq!(c.nfr, 0);
        assert_eq!(c.num_fault_records(), 1, "NFR = 0 means one record");
        assert_eq!(c.mamv, 18);
        assert!(c.dwd && c.drd);
        assert!(!c.fl1gp && !c.pi && !c.fl5lp && !c.esrtps && !c.esirtps);
    }

    // ECAP_REG 0x00f0_0f4a: [0] C = 0; [1] QI = 1; [2] DT = 0; [3] IR = 1;
    // [4] EIM = 0; [6] PT = 1; [7] SC = 0; [17:8] IRO = 0x00f;
    // [23:20] MHMV = 0xf; everything above bit 23 clear.
    #[test]
    fn qemu_ecap_from_spec_table() {
        let c = qemu_caps();
        assert!(!c.c);
        assert!(c.qi);
        assert!(!c.dt);
        assert!(c.ir);
        assert!(!c.eim);
        assert!(c.pt);
        assert!(!c.sc);
        assert_eq!(c.iro, 0xf, "IOTLB registers at 0xf0 >> 4");
        assert_eq!(c.mhmv, 0xf);
        assert!(!c.nest && !c.prs && !c.pasid && !c.smts && !c.slts && !c.flts);
    }

    #[test]
    fn single_bits_from_spec_table() {
        let cap = |v: u64| Capabilities::decode(v, 0);
        let ecap = |v: u64| Capabilities::decode(0, v);
        assert!(cap(1 << 3).afl);
        assert!(cap(1 << 4).rwbf);
        assert!(cap(1 << 7).cm);
        assert!(cap(1 << 22).zlr);
        assert!(cap(1 << 56).fl1gp);
        assert!(cap(1 << 59).pi);
        assert!(cap(1 << 60).fl5lp);
        assert!(cap(1 << 63).esrtps);
        assert_eq!(cap(0xff << 40).num_fault_records(), 256);
        assert_eq!(cap(0x3ff << 24).fro, 0x3ff);
        assert!(cap(8 << 8).supports_aw(AddressWidth::Bits57), "SAGAW bit 3");
        assert_eq!(cap(0x38 << 16).mgaw(), 57);
        assert_eq!(cap(0).domains(), 16, "ND = 0: 16 domains");
        assert!(ecap(1 << 25).mts);
        assert!(ecap(1 << 26).nest);
        assert!(ecap(1 << 29).prs);
        assert!(ecap(1 << 30).ers);
        assert!(ecap(1 << 31).srs);
        assert!(ecap(1 << 33).nwfs);
        assert!(ecap(1 << 34).eafs);
        assert_eq!(ecap(19 << 35).pasid_bits(), 20);
        assert!(ecap(1 << 40).pasid);
        assert!(ecap(1 << 41).dit);
        assert!(ecap(1 << 42).pds);
        assert!(ecap(1 << 43).smts);
        assert!(ecap(1 << 44).vcs);
        assert!(ecap(1 << 45).slads);
        assert!(ecap(1 << 46).slts);
        assert!(ecap(1 << 47).flts);
        assert!(ecap(1 << 48).smpwcs);
        assert!(ecap(1 << 49).rps);
        assert!(ecap(1 << 52).adms);
        assert!(ecap(1 << 53).rprivs);
    }

    #[test]
    fn check_names_the_missing_feature() {
        let c = qemu_caps();
        assert_eq!(c.check(&Requirements::LEGACY_SECOND_LEVEL), Ok(()));
        let e = c.check(&Requirements::SCALABLE_SECOND_LEVEL).unwrap_err();
        assert_eq!(e, CapsError::Missing(Feature::Smts));
        assert_eq!(e.to_string(), "VT-d unit lacks required feature SMTS");
        // QEMU x-scalable-mode=on x-flts=on: SMTS and FLTS, no SLTS.
        let flts_only = Capabilities { smts: true, flts: true, slts: false, ..c };
        let e = flts_only.check(&Requirements::SCALABLE_SECOND_LEVEL).unwrap_err();
        assert_eq!(e.to_string(), "VT-d unit lacks required feature SLTS");
        let no_qi = Capabilities { qi: false, ..c };
        let e = no_qi.check(&Requirements::LEGACY_SECOND_LEVEL).unwrap_err();
        assert_eq!(e.to_string(), "VT-d unit lacks required feature QI");
        let req =
            Requirements { address_width: Some(AddressWidth::Bits57), ..Requirements::LEGACY_SECOND_LEVEL };
        assert_eq!(c.check(&req), Err(CapsError::Missing(Feature::Sagaw(AddressWidth::Bits57))));
        let req = Requirements { min_domains: 1 << 17, ..Requirements::LEGACY_SECOND_LEVEL };
        assert!(c.check(&req).is_err());
        let req = Requirements {
            ir: true,
            pt: true,
            psi: true,
            large_2m: true,
            large_1g: true,
            ..Requirements::LEGACY_SECOND_LEVEL
        };
        assert_eq!(c.check(&req), Ok(()));
        let req = Requirements { eim: true, ..req };
        assert_eq!(c.check(&req).unwrap_err().to_string(), "VT-d unit lacks required feature EIM");
    }

    #[test]
    fn address_width_encoding() {
        for aw in [AddressWidth::Bits39, AddressWidth::Bits48, AddressWidth::Bits57] {
            assert_eq!(AddressWidth::from_field(aw.field()), Some(aw));
        }
        assert_eq!(AddressWidth::from_field(0), None, "30-bit 2-level is gone in rev 4");
        assert_eq!(AddressWidth::from_field(4), None);
        assert_eq!(AddressWidth::covering(28), Some(AddressWidth::Bits39));
        assert_eq!(AddressWidth::covering(48), Some(AddressWidth::Bits48));
        assert_eq!(AddressWidth::covering(58), None);
    }
}
