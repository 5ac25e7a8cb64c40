//! Primary fault logging (7.1, 7.2): the 128-bit fault recording registers
//! (9.9 / 11.4.9.4), FSTS_REG, and the fault reasons of appendix A.
//!
//! Decoding is total: records come from hardware and are not trusted to be
//! well formed, so every bit pattern decodes, unknown reasons included.
//!
//! QEMU 10 records FR = 0x5 for a write to an unmapped IOVA and FR = 0x6
//! for a read (it has no separate "not present" reason), with FI page
//! aligned; with NFR = 0 (one record) the record must be cleared (write 1 to
//! F) before the next fault, or FSTS.PFO is set and the fault is lost.

use core::fmt;

use iommu_common::addr::Iova;
use tock_registers::LocalRegisterCopy;

use crate::vtd::ids::{Pasid, SourceId};
use crate::vtd::regs::{FRCD_HI, FRCD_LO, FSTS};

/// What the faulting request was (FRCD.T1 with FRCD.T2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// T1 = 0, T2 = 0: write request.
    Write,
    /// T1 = 1, T2 = 0: read request.
    Read,
    /// T1 = 0, T2 = 1: page request.
    PageRequest,
    /// T1 = 1, T2 = 1: AtomicOp request.
    AtomicOp,
}

/// FRCD.AT: the PCIe address type of the faulting request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressType {
    /// 00b: untranslated request.
    Untranslated,
    /// 01b: translation request (ATS).
    TranslationRequest,
    /// 10b: translated request.
    Translated,
    /// 11b: reserved.
    Reserved,
}

macro_rules! fault_reasons {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $cond:literal, $text:literal; )*) => {
        /// A fault reason (FRCD.FR), with the spec's condition code and text
        /// (appendix A, "Non-Recoverable Fault Reason Encodings", and the
        /// fault-condition tables of 7.1.3 / 5.1.4.1).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum FaultReason {
            $( $(#[$doc])* $name, )*
            /// A code this crate does not know (reserved, or newer than rev 4).
            Unknown(u8),
        }

        impl FaultReason {
            /// Decodes the 8-bit FR field.
            pub const fn from_code(code: u8) -> Self {
                match code {
                    $( $code => Self::$name, )*
                    other => Self::Unknown(other),
                }
            }

            /// The FR encoding.
            pub const fn code(self) -> u8 {
                match self {
                    $( Self::$name => $code, )*
                    Self::Unknown(c) => c,
                }
            }

            /// The spec's fault-condition code, e.g. `"LGN.2"`.
            pub const fn condition(self) -> &'static str {
                match self {
                    $( Self::$name => $cond, )*
                    Self::Unknown(_) => "?",
                }
            }

            /// What the fault means, after the spec's description.
            pub const fn meaning(&self) -> &'static str {
                match self {
                    $( Self::$name => $text, )*
                    Self::Unknown(_) => "unknown or reserved fault reason",
                }
            }

            /// Every reason this crate knows, in code order.
            pub const ALL: &'static [FaultReason] = &[$( Self::$name, )*];
        }
    };
}

fault_reasons! {
    // --- Legacy-mode DMA remapping (7.1.3) ---
    /// 0x1: root-entry not present.
    RootEntryNotPresent = 0x01, "LRT.2", "The Present (P) field of the root-entry used to process the request is 0.";
    /// 0x2: context-entry not present.
    ContextEntryNotPresent = 0x02, "LCT.2", "The Present (P) field of the context-entry used to process the request is 0.";
    /// 0x3: context-entry programmed with an unsupported value.
    ContextEntryInvalid = 0x03, "LCT.4", "Invalid programming of a context-entry: AW, TT or SLPTPTR holds a value the hardware does not support.";
    /// 0x4: input address above the domain's width.
    AddressBeyondMgaw = 0x04, "LGN.1", "Input address of the request is above (2^X - 1), X being the address width of the context-entry (or MGAW).";
    /// 0x5: write without write permission. QEMU also uses it for a write
    /// to an unmapped IOVA.
    WriteDenied = 0x05, "LGN.2", "Write request without write permission (W = 0) in the second-level paging entries.";
    /// 0x6: read without read permission. QEMU also uses it for a read of
    /// an unmapped IOVA.
    ReadDenied = 0x06, "LGN.3", "Read or AtomicOp request without read permission (R = 0) in the second-level paging entries.";
    /// 0x7: second-level paging entry not accessible.
    SecondLevelEntryAccess = 0x07, "LSL.1", "Error accessing a second-level paging entry (address above HAW, or the access failed).";
    /// 0x8: root-entry not accessible.
    RootTableAccess = 0x08, "LRT.1", "Error accessing the root-entry (root-table address above HAW, or the access failed).";
    /// 0x9: context-entry not accessible.
    ContextTableAccess = 0x09, "LCT.1", "Error accessing the context-entry (context-table address above HAW, or the access failed).";
    /// 0xA: reserved bits in a root-entry.
    RootEntryReserved = 0x0a, "LRT.3", "Non-zero reserved field in a present root-entry.";
    /// 0xB: reserved bits in a context-entry.
    ContextEntryReserved = 0x0b, "LCT.3", "Non-zero reserved field in a present context-entry.";
    /// 0xC: reserved bits in a second-level paging entry.
    SecondLevelEntryReserved = 0x0c, "LSL.2", "Non-zero reserved field in a second-level paging entry with R or W set (including a large-page bit the hardware does not support).";
    /// 0xD: blocked by context-entry.TT.
    TranslationTypeBlocked = 0x0d, "LCT.5", "Translation request or translated request blocked by the Translation Type (TT) of the present context-entry.";
    /// 0xE: output address in the interrupt range.
    InterruptAddress = 0x0e, "LGN.4", "Untranslated or translation request whose translated address falls in the interrupt address range (0xFEEx_xxxx).";
    // --- Interrupt remapping (5.1.4.1) ---
    /// 0x20: reserved bits in a remappable interrupt request.
    IrRequestReserved = 0x20, "IR", "Reserved field set in a remappable-format interrupt request.";
    /// 0x21: interrupt index out of range.
    IrIndexTooLarge = 0x21, "IR", "The interrupt_index of the request is above the table size (IRTA_REG.S) or the IRTE address is above HAW.";
    /// 0x22: IRTE not present.
    IrEntryNotPresent = 0x22, "IR", "The Present (P) field of the IRTE used to process the request is 0.";
    /// 0x23: IRTE not accessible.
    IrTableAccess = 0x23, "IR", "Error accessing the IRTE (interrupt remapping table address above HAW, or the access failed).";
    /// 0x24: reserved bits in an IRTE.
    IrEntryReserved = 0x24, "IR", "Non-zero reserved field in a present IRTE (including an unsupported IRTE mode).";
    /// 0x25: compatibility-format interrupt blocked.
    IrCompatBlocked = 0x25, "IR", "Compatibility-format interrupt blocked: GSTS_REG.CFIS is 0, or extended interrupt mode (IRTA_REG.EIME) is on.";
    /// 0x26: source validation failed.
    IrSourceIdInvalid = 0x26, "IR", "The requester failed source validation against the SID, SQ and SVT fields of the present IRTE.";
    /// 0x27: posted-interrupt descriptor not accessible.
    IrPostedDescAccess = 0x27, "IR", "Error accessing the posted-interrupt descriptor referenced by a posted-format IRTE.";
    /// 0x28: reserved bits in a posted-interrupt descriptor.
    IrPostedDescReserved = 0x28, "IR", "Non-zero reserved field in a posted-interrupt descriptor.";
    // --- Scalable-mode DMA remapping (7.1.3); the condition codes are the
    // spec's, the texts are summaries (see the module notes).
    /// 0x30: Root-table address register.
    RtaddrInvalid = 0x30, "RTA.1", "Request blocked by the programming of the Root Table Address register (RTADDR_REG).";
    /// 0x31: invalid TTM.
    RtaddrTtm = 0x31, "RTA.2", "RTADDR_REG.TTM holds a reserved or unsupported translation table mode.";
    /// 0x32.
    RtaddrFault3 = 0x32, "RTA.3", "Request blocked by the translation table mode in RTADDR_REG.";
    /// 0x33.
    RtaddrFault4 = 0x33, "RTA.4", "Request blocked by the translation table mode in RTADDR_REG.";
    /// 0x38: scalable-mode root-entry not accessible.
    SmRootTableAccess = 0x38, "SRT.1", "Error accessing the scalable-mode root-entry (address above HAW, or the access failed).";
    /// 0x39: scalable-mode root-entry not present.
    SmRootEntryNotPresent = 0x39, "SRT.2", "The Present field (LP or UP) of the scalable-mode root-entry used is 0.";
    /// 0x3A: reserved bits in a scalable-mode root-entry.
    SmRootEntryReserved = 0x3a, "SRT.3", "Non-zero reserved field in a present scalable-mode root-entry.";
    /// 0x40: scalable-mode context-entry not accessible.
    SmContextTableAccess = 0x40, "SCT.1", "Error accessing the scalable-mode context-entry (address above HAW, or the access failed).";
    /// 0x41: scalable-mode context-entry not present.
    SmContextEntryNotPresent = 0x41, "SCT.2", "The Present (P) field of the scalable-mode context-entry used is 0.";
    /// 0x42: reserved bits in a scalable-mode context-entry.
    SmContextEntryReserved = 0x42, "SCT.3", "Non-zero reserved field in a present scalable-mode context-entry.";
    /// 0x43: scalable-mode context-entry invalid.
    SmContextEntryInvalid = 0x43, "SCT.4", "Invalid programming of a present scalable-mode context-entry.";
    /// 0x44.
    SmContextBlocked5 = 0x44, "SCT.5", "Request blocked by the programming of the present scalable-mode context-entry (DTE, PASIDE, PRE, RID_PASID or PDTS).";
    /// 0x45.
    SmContextBlocked6 = 0x45, "SCT.6", "Request blocked by the programming of the present scalable-mode context-entry (DTE, PASIDE, PRE, RID_PASID or PDTS).";
    /// 0x46.
    SmContextBlocked7 = 0x46, "SCT.7", "Request blocked by the programming of the present scalable-mode context-entry (DTE, PASIDE, PRE, RID_PASID or PDTS).";
    /// 0x47.
    SmContextBlocked8 = 0x47, "SCT.8", "Request blocked by the programming of the present scalable-mode context-entry (DTE, PASIDE, PRE, RID_PASID or PDTS).";
    /// 0x48.
    SmContextBlocked9 = 0x48, "SCT.9", "Request blocked by the programming of the present scalable-mode context-entry (DTE, PASIDE, PRE, RID_PASID or PDTS).";
    /// 0x50: PASID-directory entry not accessible.
    PasidDirAccess = 0x50, "SPD.1", "Error accessing the PASID-directory entry (address above HAW, or the access failed).";
    /// 0x51: PASID-directory entry not present.
    PasidDirEntryNotPresent = 0x51, "SPD.2", "The Present (P) field of the PASID-directory entry used is 0.";
    /// 0x52: reserved bits in a PASID-directory entry.
    PasidDirEntryReserved = 0x52, "SPD.3", "Non-zero reserved field in a present PASID-directory entry.";
    /// 0x58: PASID-table entry not accessible.
    PasidTableAccess = 0x58, "SPT.1", "Error accessing the PASID-table entry (address above HAW, or the access failed).";
    /// 0x59: PASID-table entry not present.
    PasidEntryNotPresent = 0x59, "SPT.2", "The Present (P) field of the PASID-table entry used is 0.";
    /// 0x5A: reserved bits in a PASID-table entry.
    PasidEntryReserved = 0x5a, "SPT.3", "Non-zero reserved field in a present PASID-table entry.";
    /// 0x5B: PASID-table entry invalid. QEMU reports it for a PGTT the unit
    /// does not offer.
    PasidEntryInvalid = 0x5b, "SPT.4", "Invalid programming of a present PASID-table entry (e.g. a PGTT, AW or pointer the hardware does not support).";
    /// 0x5C.
    PasidEntryBlocked5 = 0x5c, "SPT.5", "Request blocked by the privilege or execute controls (SRE, ERE) of the present PASID-table entry.";
    /// 0x5D.
    PasidEntryBlocked6 = 0x5d, "SPT.6", "Request blocked by the privilege or execute controls (SRE, ERE) of the present PASID-table entry.";
    /// 0x70: first-level paging entry not accessible.
    FirstLevelAccess = 0x70, "SFL.1", "Error accessing a first-level paging entry (address above HAW, or the access failed).";
    /// 0x71: first-level paging entry not present.
    FirstLevelNotPresent = 0x71, "SFL.2", "The Present (P) field of a first-level paging entry is 0.";
    /// 0x72: reserved bits in a first-level paging entry.
    FirstLevelReserved = 0x72, "SFL.3", "Non-zero reserved field in a present first-level paging entry.";
    /// 0x73: bad first-level pointer.
    FirstLevelPointerInvalid = 0x73, "SFL.4", "The first-level page-table pointer (FLPTR) of the PASID-table entry is invalid (above HAW).";
    /// 0x74.
    FirstLevelFault5 = 0x74, "SFL.5", "Fault in the first-level translation walk.";
    /// 0x75.
    FirstLevelFault6 = 0x75, "SFL.6", "Fault in the first-level translation walk.";
    /// 0x76.
    FirstLevelFault7 = 0x76, "SFL.7", "Fault in the first-level translation walk.";
    /// 0x77.
    FirstLevelFault8 = 0x77, "SFL.8", "Fault in the first-level translation walk.";
    /// 0x78: second-level paging entry not accessible (scalable mode).
    SmSecondLevelAccess = 0x78, "SSL.1", "Error accessing a second-level paging entry (address above HAW, or the access failed).";
    /// 0x79.
    SmSecondLevelFault2 = 0x79, "SSL.2", "Fault in the second-level translation walk (scalable mode).";
    /// 0x7A.
    SmSecondLevelFault3 = 0x7a, "SSL.3", "Fault in the second-level translation walk (scalable mode).";
    /// 0x7B.
    SmSecondLevelFault4 = 0x7b, "SSL.4", "Fault in the second-level translation walk (scalable mode).";
    /// 0x7C.
    SmSecondLevelFault5 = 0x7c, "SSL.5", "Fault in the second-level translation walk (scalable mode).";
    /// 0x7D.
    SmSecondLevelFault6 = 0x7d, "SSL.6", "Fault in the second-level translation walk (scalable mode).";
    /// 0x80: address not canonical / out of range.
    SmAddressInvalid = 0x80, "SGN.1", "Input address of the request is not canonical for first-level translation, or is above the domain's address width.";
    /// 0x81: privilege violation.
    SmPrivilege = 0x81, "SGN.2", "User-mode request to a supervisor-only page (U/S = 0 in the first-level paging entries).";
    /// 0x82.
    SmGeneral3 = 0x82, "SGN.3", "Request blocked by the access rights of the translation (scalable mode).";
    /// 0x83.
    SmGeneral4 = 0x83, "SGN.4", "Request blocked by the access rights of the translation (scalable mode).";
    /// 0x84.
    SmGeneral5 = 0x84, "SGN.5", "Request blocked by the access rights of the translation (scalable mode).";
    /// 0x85: write without write permission (scalable mode).
    SmWriteDenied = 0x85, "SGN.6", "Write request without write permission in the paging entries (scalable mode).";
    /// 0x86.
    SmGeneral7 = 0x86, "SGN.7", "Request blocked by the access rights of the translation (scalable mode).";
    /// 0x87: output address in the interrupt range (scalable mode).
    SmInterruptAddress = 0x87, "SGN.8", "Untranslated or translation request whose translated address falls in the interrupt address range (0xFEEx_xxxx).";
    /// 0x88.
    SmGeneral9 = 0x88, "SGN.9", "Request blocked by the access rights of the translation (scalable mode).";
    /// 0x89.
    SmGeneral10 = 0x89, "SGN.10", "Request blocked by the access rights of the translation (scalable mode).";
    /// 0x90.
    FirstLevelFault9 = 0x90, "SFL.9", "Fault in the first-level translation walk.";
    /// 0x91: accessed/dirty update failed.
    FirstLevelAdUpdate = 0x91, "SFL.10", "Hardware failed to update the Accessed or Dirty flag of a first-level paging entry.";
}

impl FaultReason {
    /// Whether this is an interrupt-remapping fault (codes 0x20..=0x2F):
    /// then FRCD.FI bits 63:48 hold the interrupt_index, not an address.
    pub const fn is_interrupt_remapping(self) -> bool {
        matches!(self.code(), 0x20..=0x2f)
    }
}

impl fmt::Display for FaultReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x} {}: {}", self.code(), self.condition(), self.meaning())
    }
}

/// One recorded fault, decoded from a fault recording register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// SID: who issued the request.
    pub requester: SourceId,
    /// FI: the page address of the request (page aligned; for interrupt
    /// remapping faults bits 63:48 are the interrupt_index instead).
    pub address: Iova,
    /// T1/T2.
    pub access: Access,
    /// PV when PP = 1.
    pub pasid: Option<Pasid>,
    /// PRIV: privileged-mode (supervisor) request.
    pub privileged: bool,
    /// EXE: execute permission requested.
    pub execute: bool,
    /// AT.
    pub address_type: AddressType,
    /// FR.
    pub reason: FaultReason,
}

impl Fault {
    /// Decodes a fault recording register read as two 64-bit words (offset
    /// 0: bits 63:0, offset 8: bits 127:64). `None` when F is clear (no
    /// fault recorded there). Reserved bits are ignored.
    pub fn decode(words: [u64; 2]) -> Option<Self> {
        let lo = LocalRegisterCopy::<u64, FRCD_LO::Register>::new(words[0]);
        let hi = LocalRegisterCopy::<u64, FRCD_HI::Register>::new(words[1]);
        if !hi.is_set(FRCD_HI::F) {
            return None;
        }
        let access = match (hi.is_set(FRCD_HI::T1), hi.is_set(FRCD_HI::T2)) {
            (false, false) => Access::Write,
            (true, false) => Access::Read,
            (false, true) => Access::PageRequest,
            (true, true) => Access::AtomicOp,
        };
        Some(Self {
            requester: SourceId(hi.read(FRCD_HI::SID) as u16),
            address: Iova(lo.read(FRCD_LO::FI) << 12),
            access,
            pasid: hi.is_set(FRCD_HI::PP).then(|| Pasid::from_field(hi.read(FRCD_HI::PV))),
            privileged: hi.is_set(FRCD_HI::PRIV),
            execute: hi.is_set(FRCD_HI::EXE),
            address_type: match hi.read(FRCD_HI::AT) {
                0 => AddressType::Untranslated,
                1 => AddressType::TranslationRequest,
                2 => AddressType::Translated,
                _ => AddressType::Reserved,
            },
            reason: FaultReason::from_code(hi.read(FRCD_HI::FR) as u8),
        })
    }

    /// Encodes the record as the hardware would write it (F set); for tests
    /// and models of the unit.
    pub fn encode(&self) -> [u64; 2] {
        let mut lo = LocalRegisterCopy::<u64, FRCD_LO::Register>::new(0);
        lo.write(FRCD_LO::FI.val(self.address.0 >> 12));
        let (t1, t2) = match self.access {
            Access::Write => (0, 0),
            Access::Read => (1, 0),
            Access::PageRequest => (0, 1),
            Access::AtomicOp => (1, 1),
        };
        let mut hi = LocalRegisterCopy::<u64, FRCD_HI::Register>::new(0);
        hi.write(
            FRCD_HI::F::SET
                + FRCD_HI::SID.val(u64::from(self.requester.0))
                + FRCD_HI::T1.val(t1)
                + FRCD_HI::T2.val(t2)
                + FRCD_HI::PRIV.val(u64::from(self.privileged))
                + FRCD_HI::EXE.val(u64::from(self.execute))
                + FRCD_HI::PP.val(u64::from(self.pasid.is_some()))
                + FRCD_HI::PV.val(self.pasid.map_or(0, |p| u64::from(p.get())))
                + FRCD_HI::AT.val(match self.address_type {
                    AddressType::Untranslated => 0,
                    AddressType::TranslationRequest => 1,
                    AddressType::Translated => 2,
                    AddressType::Reserved => 3,
                })
                + FRCD_HI::FR.val(u64::from(self.reason.code())),
        );
        [lo.get(), hi.get()]
    }

    /// The interrupt_index of an interrupt-remapping fault (FI bits 63:48).
    pub fn interrupt_index(&self) -> Option<u16> {
        self.reason.is_interrupt_remapping().then_some((self.address.0 >> 48) as u16)
    }

    /// Whether the request was a write.
    pub const fn is_write(&self) -> bool {
        matches!(self.access, Access::Write)
    }
}

/// The value that clears a fault recording register's F bit: write it to
/// bits 127:64 (F is RW1C; the other bits are read-only).
pub const FRCD_HI_CLEAR: u64 = 1 << 63;

/// FSTS_REG decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultStatus {
    /// PFO: a fault was lost because the records were full.
    pub pfo: bool,
    /// PPF: at least one fault record has F set.
    pub ppf: bool,
    /// IQE: invalidation queue error.
    pub iqe: bool,
    /// ICE: invalidation completion error.
    pub ice: bool,
    /// ITE: invalidation time-out error.
    pub ite: bool,
    /// FRI: with PPF, the index of the first record to read.
    pub fri: u8,
}

impl FaultStatus {
    /// Decodes FSTS_REG.
    pub fn decode(v: u32) -> Self {
        let r = LocalRegisterCopy::<u32, FSTS::Register>::new(v);
        Self {
            pfo: r.is_set(FSTS::PFO),
            ppf: r.is_set(FSTS::PPF),
            iqe: r.is_set(FSTS::IQE),
            ice: r.is_set(FSTS::ICE),
            ite: r.is_set(FSTS::ITE),
            fri: r.read(FSTS::FRI) as u8,
        }
    }

    /// The value that clears the RW1C bits set in `self` (PFO, IQE, ICE,
    /// ITE); PPF and FRI are read-only.
    pub fn clear_value(&self) -> u32 {
        let mut r = LocalRegisterCopy::<u32, FSTS::Register>::new(0);
        r.write(
            FSTS::PFO.val(u32::from(self.pfo))
                + FSTS::IQE.val(u32::from(self.iqe))
                + FSTS::ICE.val(u32::from(self.ice))
                + FSTS::ITE.val(u32::from(self.ite)),
        );
        r.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Fault recording register (9.9 / 11.4.9.4): FI 63:12; SID 79:64,
    // T2 92, PRIV 93, EXE 94, PP 95, FR 103:96, PV 123:104, AT 125:124,
    // T1 126, F 127.
    #[test]
    fn qemu_unmapped_write_record() {
        // edu at 00:03.0 writing IOVA 0x40000 with nothing mapped: QEMU sets
        // F, T1 = 0 (write), FR = 5, SID 0x0018, FI = 0x40000.
        let hi = (1u64 << 63) | (5 << 32) | 0x0018;
        let f = Fault::decode([0x40000, hi]).unwrap();
        assert_eq!(f.requester, SourceId::new(0, 3, 0));
        assert_eq!(f.address, Iova(0x40000));
        assert_eq!(f.access, Access::Write);
        assert!(f.is_write());
        assert_eq!(f.reason, FaultReason::WriteDenied);
        assert_eq!(f.reason.condition(), "LGN.2");
        assert_eq!(f.pasid, None);
        assert_eq!(f.address_type, AddressType::Untranslated);
        // The read: T1 = 1, FR = 6.
        let f = Fault::decode([0x40000, (1u64 << 63) | (1 << 62) | (6 << 32) | 0x0018]).unwrap();
        assert_eq!((f.access, f.reason), (Access::Read, FaultReason::ReadDenied));
    }

    #[test]
    fn record_fields_from_spec_table() {
        let hi = (1u64 << 63)
            | (1 << (126 - 64))
            | (0b10 << (124 - 64))
            | (0xabcde << (104 - 64))
            | (0x59 << (96 - 64))
            | (1 << (95 - 64))
            | (1 << (94 - 64))
            | (1 << (93 - 64))
            | (1 << (92 - 64))
            | 0xbeef;
        let f = Fault::decode([0x1234_5678_9000 | 0xfff, hi]).unwrap();
        assert_eq!(f.address, Iova(0x1234_5678_9000), "bits 11:0 reserved");
        assert_eq!(f.access, Access::AtomicOp);
        assert_eq!(f.address_type, AddressType::Translated);
        assert_eq!(f.pasid, Pasid::new(0xabcde));
        assert_eq!(f.reason, FaultReason::PasidEntryNotPresent);
        assert!(f.privileged && f.execute);
        assert_eq!(f.requester, SourceId(0xbeef));
        assert_eq!(Fault::decode([0x1000, hi & !(1 << 63)]), None, "F clear: no record");
        assert_eq!(FRCD_HI_CLEAR, 1 << 63);
    }

    #[test]
    fn interrupt_fault_index() {
        let hi = (1u64 << 63) | (0x22 << 32) | (1 << 62);
        let f = Fault::decode([0x0005_0000_0000_0000, hi]).unwrap();
        assert_eq!(f.reason, FaultReason::IrEntryNotPresent);
        assert_eq!(f.interrupt_index(), Some(5));
        let dma = Fault::decode([0x0005_0000_0000_0000, (1u64 << 63) | (5 << 32)]).unwrap();
        assert_eq!(dma.interrupt_index(), None);
    }

    #[test]
    fn every_reason_has_code_condition_and_meaning() {
        for r in FaultReason::ALL {
            assert_eq!(FaultReason::from_code(r.code()), *r);
            assert!(!r.meaning().is_empty() && r.condition() != "?");
        }
        for code in 0..=255u8 {
            assert_eq!(FaultReason::from_code(code).code(), code);
        }
        // Legacy 0x1..=0xD and interrupt remapping 0x20..=0x27 are all known.
        for code in (0x1..=0xd).chain(0x20..=0x27) {
            assert!(!matches!(FaultReason::from_code(code), FaultReason::Unknown(_)), "{code:#x}");
        }
        assert_eq!(FaultReason::from_code(0), FaultReason::Unknown(0));
        assert_eq!(FaultReason::from_code(0x5b).condition(), "SPT.4");
        assert!(FaultReason::from_code(0x26).is_interrupt_remapping());
    }

    // FSTS_REG: PFO 0, PPF 1, IQE 4, ICE 5, ITE 6, FRI 15:8.
    #[test]
    fn fault_status_bits() {
        let s = FaultStatus::decode(0x0000_0302);
        assert_eq!(s, FaultStatus { ppf: true, fri: 3, ..FaultStatus::default() });
        let s = FaultStatus::decode(0x71);
        assert!(s.pfo && s.iqe && s.ice && s.ite && !s.ppf);
        assert_eq!(s.clear_value(), 0x71);
        assert_eq!(FaultStatus::decode(0x2).clear_value(), 0, "PPF is not RW1C");
    }

    fn any_fault() -> impl Strategy<Value = Fault> {
        (
            any::<u16>(),
            0u64..1 << 52,
            0u8..4,
            proptest::option::of(0u32..1 << 20),
            any::<[bool; 2]>(),
            0u8..4,
            any::<u8>(),
        )
            .prop_map(|(sid, fi, acc, pasid, [privileged, execute], at, fr)| Fault {
                requester: SourceId(sid),
                address: Iova(fi << 12),
                access: [Access::Write, Access::Read, Access::PageRequest, Access::AtomicOp][acc as usize],
                pasid: pasid.and_then(Pasid::new),
                privileged,
                execute,
                address_type: [
                    AddressType::Untranslated,
                    AddressType::TranslationRequest,
                    AddressType::Translated,
                    AddressType::Reserved,
                ][at as usize],
                reason: FaultReason::from_code(fr),
            })
    }

    proptest! {
        #[test]
        fn fault_round_trip(f in any_fault()) {
            prop_assert_eq!(Fault::decode(f.encode()), Some(f));
        }

        #[test]
        fn decode_is_total(w in any::<[u64; 2]>()) {
            let _ = Fault::decode(w);
            let _ = FaultStatus::decode(w[0] as u32);
        }
    }
}
