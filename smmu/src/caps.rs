//! Capability decoding: SMMU_IDR0..5 and SMMU_AIDR (6.3.1-6.3.8).
//!
//! The ID registers are read once into plain integers and decoded here from a
//! `LocalRegisterCopy`, so decoding is testable without a device.

use core::fmt;

use tock_registers::LocalRegisterCopy;

use crate::regs::{AIDR, IDR0, IDR1, IDR3, IDR5, IIDR};

/// Translation table formats the SMMU can walk (SMMU_IDR0.TTF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttf {
    /// VMSAv8-32 LPAE (`TTF[0]`).
    pub aarch32: bool,
    /// VMSAv8-64 (`TTF[1]`).
    pub aarch64: bool,
}

/// Hardware translation table update (SMMU_IDR0.HTTU).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Httu {
    /// No hardware updates.
    None,
    /// Access flag updates.
    AccessFlag,
    /// Access flag and dirty state updates.
    AccessDirty,
    /// Reserved encoding 0b11.
    Reserved,
}

/// Translation table endianness support (SMMU_IDR0.TTENDIAN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtEndian {
    /// Both endiannesses.
    Mixed,
    /// Reserved encoding 0b01.
    Reserved,
    /// Little-endian only.
    Little,
    /// Big-endian only.
    Big,
}

/// Stall model (SMMU_IDR0.STALL_MODEL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StallModel {
    /// Stall and terminate models supported.
    StallAndTerminate,
    /// Stall not supported: STE.S2S and CD.S must be 0.
    TerminateOnly,
    /// Stall forced: STE.S2S and CD.S must be 1.
    StallForced,
    /// Reserved encoding 0b11.
    Reserved,
}

/// Stream table formats supported (SMMU_IDR0.ST_LEVEL).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StLevel {
    /// Linear Stream table only.
    Linear,
    /// 2-level Stream tables supported as well.
    TwoLevel,
    /// Reserved encoding.
    Reserved(u8),
}

/// A physical/intermediate address size as encoded in SMMU_IDR5.OAS, STE.S2PS
/// and CD.IPS (0:32 1:36 2:40 3:42 4:44 5:48 6:52 7:56 bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AddrSize {
    /// 32 bits (4 GiB).
    Bits32 = 0,
    /// 36 bits (64 GiB).
    Bits36 = 1,
    /// 40 bits (1 TiB).
    Bits40 = 2,
    /// 42 bits (4 TiB).
    Bits42 = 3,
    /// 44 bits (16 TiB).
    Bits44 = 4,
    /// 48 bits (256 TiB).
    Bits48 = 5,
    /// 52 bits (4 PiB).
    Bits52 = 6,
    /// 56 bits (SMMUv3.4).
    Bits56 = 7,
}

impl AddrSize {
    /// Decodes a 3-bit field value (total: every 3-bit value is an encoding).
    pub const fn from_field(v: u64) -> Self {
        match v & 0b111 {
            0 => Self::Bits32,
            1 => Self::Bits36,
            2 => Self::Bits40,
            3 => Self::Bits42,
            4 => Self::Bits44,
            5 => Self::Bits48,
            6 => Self::Bits52,
            _ => Self::Bits56,
        }
    }

    /// The field encoding.
    pub const fn field(self) -> u64 {
        self as u64
    }

    /// The size in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Self::Bits32 => 32,
            Self::Bits36 => 36,
            Self::Bits40 => 40,
            Self::Bits42 => 42,
            Self::Bits44 => 44,
            Self::Bits48 => 48,
            Self::Bits52 => 52,
            Self::Bits56 => 56,
        }
    }

    /// The smallest encoding covering `bits` bits, if any.
    pub const fn covering(bits: u32) -> Option<Self> {
        Some(match bits {
            0..=32 => Self::Bits32,
            33..=36 => Self::Bits36,
            37..=40 => Self::Bits40,
            41..=42 => Self::Bits42,
            43..=44 => Self::Bits44,
            45..=48 => Self::Bits48,
            49..=52 => Self::Bits52,
            53..=56 => Self::Bits56,
            _ => return None,
        })
    }

    /// Whether `addr` fits in this many bits.
    pub const fn contains(self, addr: u64) -> bool {
        addr >> self.bits() == 0
    }
}

/// A translation granule. Its encoding differs per field (STE.S2TG, CD.TG0,
/// CD.TG1, the TLBI TG field), so each user converts explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Granule {
    /// 4 KiB.
    K4,
    /// 16 KiB.
    K16,
    /// 64 KiB.
    K64,
}

impl Granule {
    /// log2 of the granule size.
    pub const fn shift(self) -> u32 {
        match self {
            Self::K4 => 12,
            Self::K16 => 14,
            Self::K64 => 16,
        }
    }

    /// The granule size in bytes.
    pub const fn size(self) -> u64 {
        1 << self.shift()
    }

    /// Whether the SMMU supports this granule (SMMU_IDR5.GRANxx).
    pub const fn supported_by(self, caps: &Capabilities) -> bool {
        match self {
            Self::K4 => caps.gran4k,
            Self::K16 => caps.gran16k,
            Self::K64 => caps.gran64k,
        }
    }
}

/// Virtual address size (SMMU_IDR5.VAX).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vax {
    /// 48-bit VAs.
    Bits48,
    /// 52-bit VAs.
    Bits52,
    /// 56-bit VAs.
    Bits56,
    /// Reserved encoding.
    Reserved,
}

/// Architecture revision (SMMU_AIDR).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ArchVersion {
    /// Major revision: 0 means SMMUv3.
    pub major: u8,
    /// Minor revision: x in SMMUv3.x.
    pub minor: u8,
}

/// The raw ID registers, as read from the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdRegs {
    /// SMMU_IDR0..SMMU_IDR5.
    pub idr: [u32; 6],
    /// SMMU_IIDR.
    pub iidr: u32,
    /// SMMU_AIDR.
    pub aidr: u32,
}

/// Decoded SMMU capabilities. Field names follow the ID register fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    // --- SMMU_IDR0 ---
    /// Stage 2 translation.
    pub s2p: bool,
    /// Stage 1 translation.
    pub s1p: bool,
    /// Translation table formats.
    pub ttf: Ttf,
    /// Coherent access to structures, queues and tables.
    pub cohacc: bool,
    /// Broadcast TLB maintenance.
    pub btm: bool,
    /// Hardware translation table update.
    pub httu: Httu,
    /// Dormant hint.
    pub dormhint: bool,
    /// EL2 stage 1 StreamWorld (and the CMD_TLBI_EL2_* commands).
    pub hyp: bool,
    /// PCIe ATS.
    pub ats: bool,
    /// Non-secure stage 1 only ATS.
    pub ns1ats: bool,
    /// 16-bit ASIDs.
    pub asid16: bool,
    /// MSIs.
    pub msi: bool,
    /// WFE wake-up events.
    pub sev: bool,
    /// Address translation operations.
    pub atos: bool,
    /// PCIe PRI (and the PRI queue).
    pub pri: bool,
    /// VMID wildcard.
    pub vmw: bool,
    /// 16-bit VMIDs.
    pub vmid16: bool,
    /// 2-level CD tables.
    pub cd2l: bool,
    /// Virtual ATOS.
    pub vatos: bool,
    /// Translation table endianness.
    pub ttendian: TtEndian,
    /// ATS error recording.
    pub atsrecerr: bool,
    /// Stall model.
    pub stall_model: StallModel,
    /// Terminate model: `true` means CD.A must be 1 (terminations always abort).
    pub term_model: bool,
    /// Stream table formats.
    pub st_level: StLevel,
    // --- SMMU_IDR1 ---
    /// StreamID bits.
    pub sidsize: u8,
    /// SubstreamID bits.
    pub ssidsize: u8,
    /// log2 of the maximum PRI queue size.
    pub priqs: u8,
    /// log2 of the maximum Event queue size.
    pub eventqs: u8,
    /// log2 of the maximum Command queue size.
    pub cmdqs: u8,
    /// Permission attribute override.
    pub attr_perms_ovr: bool,
    /// Memory type attribute override.
    pub attr_types_ovr: bool,
    /// Base addresses relative to the register frame.
    pub rel: bool,
    /// Queue bases fixed.
    pub queues_preset: bool,
    /// Table bases fixed.
    pub tables_preset: bool,
    /// Enhanced command queues.
    pub ecmdq: bool,
    // --- SMMU_IDR3 ---
    /// Hierarchical attribute disable.
    pub had: bool,
    /// Page-based hardware attributes.
    pub pbha: bool,
    /// Stage 2 EL0/EL1 execute control.
    pub xnx: bool,
    /// PASID on PRI responses.
    pub pps: bool,
    /// MPAM.
    pub mpam: bool,
    /// Stage 2 forced write-back.
    pub fwb: bool,
    /// Small translation tables.
    pub stt: bool,
    /// Range invalidation.
    pub ril: bool,
    /// Break-before-make level.
    pub bbml: u8,
    /// E0PD.
    pub e0pd: bool,
    /// Table walks to Device memory as Normal-NC.
    pub ptwnnc: bool,
    /// Device Permission Table.
    pub dpt: bool,
    // --- SMMU_IDR5 ---
    /// Output address size.
    pub oas: AddrSize,
    /// 4 KiB granule.
    pub gran4k: bool,
    /// 16 KiB granule.
    pub gran16k: bool,
    /// 64 KiB granule.
    pub gran64k: bool,
    /// 52-bit addresses with 4/16 KiB granules.
    pub ds: bool,
    /// VMSAv9-128.
    pub d128: bool,
    /// VA size.
    pub vax: Vax,
    /// Maximum outstanding stalls.
    pub stall_max: u16,
    // --- SMMU_IIDR / SMMU_AIDR ---
    /// Implementation identification (raw SMMU_IIDR).
    pub iidr: u32,
    /// Architecture revision.
    pub arch: ArchVersion,
}

/// A feature the caller needs and the SMMU lacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// Stage 1 translation (IDR0.S1P).
    Stage1,
    /// Stage 2 translation (IDR0.S2P).
    Stage2,
    /// VMSAv8-64 tables (`IDR0.TTF[1]`).
    Aarch64Tables,
    /// Little-endian translation tables (IDR0.TTENDIAN).
    LittleEndianTables,
    /// 4 KiB granule (IDR5.GRAN4K).
    Granule4K,
    /// 16 KiB granule (IDR5.GRAN16K).
    Granule16K,
    /// 64 KiB granule (IDR5.GRAN64K).
    Granule64K,
    /// 2-level Stream table (IDR0.ST_LEVEL).
    TwoLevelStreamTable,
    /// 16-bit VMIDs (IDR0.VMID16).
    Vmid16,
    /// Coherent table walks (IDR0.COHACC).
    Coherent,
    /// Range invalidation (IDR3.RIL).
    RangeInvalidation,
    /// A minimum output address size (IDR5.OAS).
    OutputAddressSize(AddrSize),
    /// A minimum number of StreamID bits (IDR1.SIDSIZE).
    StreamIdBits(u8),
    /// Programmable queue and table bases (IDR1.QUEUES_PRESET / TABLES_PRESET clear).
    ProgrammableBases,
    /// SMMUv3 (AIDR.ArchMajorRev == 0).
    Smmuv3,
}

/// The capability check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapsError {
    /// The SMMU lacks a required feature.
    Missing(Feature),
}

impl fmt::Display for CapsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(feat) => write!(f, "SMMU lacks required feature {feat:?}"),
        }
    }
}

/// What the caller needs from the SMMU; checked by [`Capabilities::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirements {
    /// Stage 1 translation.
    pub stage1: bool,
    /// Stage 2 translation.
    pub stage2: bool,
    /// The granules that will be used.
    pub granule_4k: bool,
    /// 16 KiB granule.
    pub granule_16k: bool,
    /// 64 KiB granule.
    pub granule_64k: bool,
    /// At least this output address size.
    pub min_oas: Option<AddrSize>,
    /// At least this many StreamID bits.
    pub min_sid_bits: u8,
    /// 16-bit VMIDs.
    pub vmid16: bool,
}

impl Requirements {
    /// What the partitioning hypervisor needs: stage 2 with VMSAv8-64
    /// little-endian tables and a 4 KiB granule.
    pub const STAGE2_4K: Self = Self {
        stage1: false,
        stage2: true,
        granule_4k: true,
        granule_16k: false,
        granule_64k: false,
        min_oas: None,
        min_sid_bits: 0,
        vmid16: false,
    };
}

impl Capabilities {
    /// Decodes the ID registers. Total: every bit pattern decodes (reserved
    /// encodings become `Reserved` variants).
    pub fn decode(regs: &IdRegs) -> Self {
        let idr0 = LocalRegisterCopy::<u32, IDR0::Register>::new(regs.idr[0]);
        let idr1 = LocalRegisterCopy::<u32, IDR1::Register>::new(regs.idr[1]);
        let idr3 = LocalRegisterCopy::<u32, IDR3::Register>::new(regs.idr[3]);
        let idr5 = LocalRegisterCopy::<u32, IDR5::Register>::new(regs.idr[5]);
        let aidr = LocalRegisterCopy::<u32, AIDR::Register>::new(regs.aidr);
        let ttf = idr0.read(IDR0::TTF);
        // Every narrowing below is of a field no wider than the target type.
        let field8 = |v: u32| v as u8;
        Self {
            s2p: idr0.is_set(IDR0::S2P),
            s1p: idr0.is_set(IDR0::S1P),
            ttf: Ttf { aarch32: ttf & 1 != 0, aarch64: ttf & 2 != 0 },
            cohacc: idr0.is_set(IDR0::COHACC),
            btm: idr0.is_set(IDR0::BTM),
            httu: match idr0.read(IDR0::HTTU) {
                0 => Httu::None,
                1 => Httu::AccessFlag,
                2 => Httu::AccessDirty,
                _ => Httu::Reserved,
            },
            dormhint: idr0.is_set(IDR0::DORMHINT),
            hyp: idr0.is_set(IDR0::HYP),
            ats: idr0.is_set(IDR0::ATS),
            ns1ats: idr0.is_set(IDR0::NS1ATS),
            asid16: idr0.is_set(IDR0::ASID16),
            msi: idr0.is_set(IDR0::MSI),
            sev: idr0.is_set(IDR0::SEV),
            atos: idr0.is_set(IDR0::ATOS),
            pri: idr0.is_set(IDR0::PRI),
            vmw: idr0.is_set(IDR0::VMW),
            vmid16: idr0.is_set(IDR0::VMID16),
            cd2l: idr0.is_set(IDR0::CD2L),
            vatos: idr0.is_set(IDR0::VATOS),
            ttendian: match idr0.read(IDR0::TTENDIAN) {
                0 => TtEndian::Mixed,
                1 => TtEndian::Reserved,
                2 => TtEndian::Little,
                _ => TtEndian::Big,
            },
            atsrecerr: idr0.is_set(IDR0::ATSRECERR),
            stall_model: match idr0.read(IDR0::STALL_MODEL) {
                0 => StallModel::StallAndTerminate,
                1 => StallModel::TerminateOnly,
                2 => StallModel::StallForced,
                _ => StallModel::Reserved,
            },
            term_model: idr0.is_set(IDR0::TERM_MODEL),
            st_level: match idr0.read(IDR0::ST_LEVEL) {
                0 => StLevel::Linear,
                1 => StLevel::TwoLevel,
                other => StLevel::Reserved(field8(other)),
            },
            sidsize: field8(idr1.read(IDR1::SIDSIZE)),
            ssidsize: field8(idr1.read(IDR1::SSIDSIZE)),
            priqs: field8(idr1.read(IDR1::PRIQS)),
            eventqs: field8(idr1.read(IDR1::EVENTQS)),
            cmdqs: field8(idr1.read(IDR1::CMDQS)),
            attr_perms_ovr: idr1.is_set(IDR1::ATTR_PERMS_OVR),
            attr_types_ovr: idr1.is_set(IDR1::ATTR_TYPES_OVR),
            rel: idr1.is_set(IDR1::REL),
            queues_preset: idr1.is_set(IDR1::QUEUES_PRESET),
            tables_preset: idr1.is_set(IDR1::TABLES_PRESET),
            ecmdq: idr1.is_set(IDR1::ECMDQ),
            had: idr3.is_set(IDR3::HAD),
            pbha: idr3.is_set(IDR3::PBHA),
            xnx: idr3.is_set(IDR3::XNX),
            pps: idr3.is_set(IDR3::PPS),
            mpam: idr3.is_set(IDR3::MPAM),
            fwb: idr3.is_set(IDR3::FWB),
            stt: idr3.is_set(IDR3::STT),
            ril: idr3.is_set(IDR3::RIL),
            bbml: field8(idr3.read(IDR3::BBML)),
            e0pd: idr3.is_set(IDR3::E0PD),
            ptwnnc: idr3.is_set(IDR3::PTWNNC),
            dpt: idr3.is_set(IDR3::DPT),
            oas: AddrSize::from_field(u64::from(idr5.read(IDR5::OAS))),
            gran4k: idr5.is_set(IDR5::GRAN4K),
            gran16k: idr5.is_set(IDR5::GRAN16K),
            gran64k: idr5.is_set(IDR5::GRAN64K),
            ds: idr5.is_set(IDR5::DS),
            d128: idr5.is_set(IDR5::D128),
            vax: match idr5.read(IDR5::VAX) {
                0 => Vax::Bits48,
                1 => Vax::Bits52,
                2 => Vax::Bits56,
                _ => Vax::Reserved,
            },
            stall_max: idr5.read(IDR5::STALL_MAX) as u16,
            iidr: LocalRegisterCopy::<u32, IIDR::Register>::new(regs.iidr).get(),
            arch: ArchVersion {
                major: field8(aidr.read(AIDR::ARCH_MAJOR_REV)),
                minor: field8(aidr.read(AIDR::ARCH_MINOR_REV)),
            },
        }
    }

    /// The input address size: the OAS, or at least 40 bits when VMSAv8-32
    /// LPAE tables are supported (3.4).
    pub fn ias(&self) -> AddrSize {
        if self.ttf.aarch32 && self.oas < AddrSize::Bits40 {
            AddrSize::Bits40
        } else {
            self.oas
        }
    }

    /// Whether 2-level Stream tables are supported.
    pub fn two_level_strtab(&self) -> bool {
        self.st_level == StLevel::TwoLevel
    }

    /// Checks `req` against the decoded capabilities; the error names the
    /// first missing feature, checked in the order of the spec's tables.
    pub fn check(&self, req: &Requirements) -> Result<(), CapsError> {
        let need = |ok: bool, feat: Feature| if ok { Ok(()) } else { Err(CapsError::Missing(feat)) };
        need(self.arch.major == 0, Feature::Smmuv3)?;
        need(!req.stage1 || self.s1p, Feature::Stage1)?;
        need(!req.stage2 || self.s2p, Feature::Stage2)?;
        need(self.ttf.aarch64, Feature::Aarch64Tables)?;
        need(matches!(self.ttendian, TtEndian::Mixed | TtEndian::Little), Feature::LittleEndianTables)?;
        need(!req.granule_4k || self.gran4k, Feature::Granule4K)?;
        need(!req.granule_16k || self.gran16k, Feature::Granule16K)?;
        need(!req.granule_64k || self.gran64k, Feature::Granule64K)?;
        need(!req.vmid16 || self.vmid16, Feature::Vmid16)?;
        if let Some(min) = req.min_oas {
            need(self.oas >= min, Feature::OutputAddressSize(min))?;
        }
        need(self.sidsize >= req.min_sid_bits, Feature::StreamIdBits(req.min_sid_bits))?;
        need(!self.queues_preset && !self.tables_preset, Feature::ProgrammableBases)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qemu() -> Capabilities {
        crate::testing::qemu_caps()
    }

    #[test]
    fn qemu_idr0_fields_from_spec_table() {
        // 0x0d44101b = bits 0,1,3,4,12,18,22,24,26,27.
        assert_eq!(crate::testing::QEMU_IDR[0], 0x0d44_101b);
        let c = qemu();
        assert!(c.s2p, "bit 0 S2P");
        assert!(c.s1p, "bit 1 S1P");
        assert_eq!(c.ttf, Ttf { aarch32: false, aarch64: true }, "[3:2] TTF = 0b10");
        assert!(c.cohacc, "bit 4 COHACC");
        assert!(!c.btm, "bit 5 BTM");
        assert_eq!(c.httu, Httu::None, "[7:6] HTTU = 0");
        assert!(!c.dormhint, "bit 8");
        assert!(!c.hyp, "bit 9 Hyp");
        assert!(!c.ats, "bit 10 ATS");
        assert!(!c.ns1ats, "bit 11");
        assert!(c.asid16, "bit 12 ASID16");
        assert!(!c.msi, "bit 13 MSI");
        assert!(!c.sev, "bit 14 SEV");
        assert!(!c.atos, "bit 15 ATOS");
        assert!(!c.pri, "bit 16 PRI");
        assert!(!c.vmw, "bit 17 VMW");
        assert!(c.vmid16, "bit 18 VMID16");
        assert!(!c.cd2l, "bit 19 CD2L");
        assert!(!c.vatos, "bit 20 VATOS");
        assert_eq!(c.ttendian, TtEndian::Little, "[22:21] = 0b10");
        assert_eq!(c.stall_model, StallModel::TerminateOnly, "[25:24] = 0b01");
        assert!(c.term_model, "bit 26 TERM_MODEL");
        assert_eq!(c.st_level, StLevel::TwoLevel, "[28:27] = 0b01");
    }

    #[test]
    fn qemu_idr1_idr3_idr5_aidr() {
        let c = qemu();
        assert_eq!(c.sidsize, 16);
        assert_eq!(c.ssidsize, 0);
        assert_eq!(c.eventqs, 19);
        assert_eq!(c.cmdqs, 19);
        assert_eq!(c.priqs, 0);
        assert!(c.had && c.ril && c.xnx);
        assert_eq!(c.bbml, 2);
        assert!(!c.stt);
        assert_eq!(c.oas, AddrSize::Bits44);
        assert_eq!(c.oas.bits(), 44);
        assert!(c.gran4k && c.gran16k && c.gran64k);
        assert_eq!(c.vax, Vax::Bits48);
        assert_eq!(c.arch, ArchVersion { major: 0, minor: 1 });
        assert_eq!(c.ias(), AddrSize::Bits44);
    }

    #[test]
    fn idr_single_bits() {
        let d = |i: usize, v: u32| {
            let mut idr = [0; 6];
            idr[i] = v;
            Capabilities::decode(&IdRegs { idr, iidr: 0, aidr: 0 })
        };
        assert!(d(0, 1 << 5).btm);
        assert_eq!(d(0, 2 << 6).httu, Httu::AccessDirty);
        assert!(d(0, 1 << 9).hyp);
        assert!(d(0, 1 << 16).pri);
        assert!(d(0, 1 << 19).cd2l);
        assert_eq!(d(0, 3 << 21).ttendian, TtEndian::Big);
        assert_eq!(d(0, 2 << 24).stall_model, StallModel::StallForced);
        assert_eq!(d(0, 3 << 27).st_level, StLevel::Reserved(3));
        assert_eq!(d(1, 20 << 6).ssidsize, 20);
        assert_eq!(d(1, 8 << 11).priqs, 8);
        assert!(d(1, 1 << 26).attr_perms_ovr);
        assert!(d(1, 1 << 27).attr_types_ovr);
        assert!(d(1, 1 << 28).rel);
        assert!(d(1, 1 << 29).queues_preset);
        assert!(d(1, 1 << 30).tables_preset);
        assert!(d(3, 1 << 9).stt);
        assert_eq!(d(5, 0xffff << 16).stall_max, 0xffff);
        assert_eq!(d(5, 1 << 10).vax, Vax::Bits52);
        assert_eq!(d(5, 6).oas, AddrSize::Bits52);
    }

    #[test]
    fn check_names_the_missing_feature() {
        let c = qemu();
        assert_eq!(c.check(&Requirements::STAGE2_4K), Ok(()));
        let s1_only = Capabilities { s2p: false, ..c };
        assert_eq!(s1_only.check(&Requirements::STAGE2_4K), Err(CapsError::Missing(Feature::Stage2)));
        let no4k = Capabilities { gran4k: false, ..c };
        assert_eq!(no4k.check(&Requirements::STAGE2_4K), Err(CapsError::Missing(Feature::Granule4K)));
        let req = Requirements { min_oas: Some(AddrSize::Bits48), ..Requirements::STAGE2_4K };
        assert_eq!(c.check(&req), Err(CapsError::Missing(Feature::OutputAddressSize(AddrSize::Bits48))));
        let req = Requirements { min_sid_bits: 17, ..Requirements::STAGE2_4K };
        assert_eq!(c.check(&req), Err(CapsError::Missing(Feature::StreamIdBits(17))));
    }

    #[test]
    fn addr_size_round_trip() {
        for v in 0..8 {
            assert_eq!(AddrSize::from_field(v).field(), v);
        }
        assert_eq!(AddrSize::covering(44), Some(AddrSize::Bits44));
        assert_eq!(AddrSize::covering(39), Some(AddrSize::Bits40));
        assert_eq!(AddrSize::covering(57), None);
        assert!(AddrSize::Bits44.contains((1 << 44) - 1));
        assert!(!AddrSize::Bits44.contains(1 << 44));
    }
}
