//! Context entries (9.3, 9.4).
//!
//! A legacy [`ContextEntry`] (128 bits) gives a device its domain and its
//! second-level table directly. A [`ScalableContextEntry`] (256 bits) points
//! to a PASID directory instead; requests without PASID use the PASID-table
//! entry of RID_PASID.

use core::fmt;

use iommu_common::addr::PhysAddr;
use tock_registers::LocalRegisterCopy;

use crate::vtd::caps::{AddressWidth, Capabilities};
use crate::vtd::error::DecodeError;
use crate::vtd::fields::{bits, check_word};
use crate::vtd::ids::{DomainId, Pasid};

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// Context entry bits 63:0.
        pub CE_LO [
            /// Present.
            P OFFSET(0) NUMBITS(1) [],
            /// Fault processing disable.
            FPD OFFSET(1) NUMBITS(1) [],
            /// Translation type.
            TT OFFSET(2) NUMBITS(2) [UntranslatedOnly = 0, All = 1, PassThrough = 2],
            /// Second-level page translation pointer, bits 63:12.
            SLPTPTR OFFSET(12) NUMBITS(52) []
        ],
        /// Context entry bits 127:64.
        pub CE_HI [
            /// Address width (bits 66:64).
            AW OFFSET(0) NUMBITS(3) [],
            /// Domain identifier (bits 87:72).
            DID OFFSET(8) NUMBITS(16) []
        ],
        /// Scalable-mode context entry bits 63:0.
        pub SMCE_0 [
            /// Present.
            P OFFSET(0) NUMBITS(1) [],
            /// Fault processing disable.
            FPD OFFSET(1) NUMBITS(1) [],
            /// Device-TLB enable.
            DTE OFFSET(2) NUMBITS(1) [],
            /// PASID enable.
            PASIDE OFFSET(3) NUMBITS(1) [],
            /// Page request enable.
            PRE OFFSET(4) NUMBITS(1) [],
            /// PASID directory size: 2^(PDTS + 7) entries.
            PDTS OFFSET(9) NUMBITS(3) [],
            /// PASID directory pointer, bits 63:12.
            PASIDDIRPTR OFFSET(12) NUMBITS(52) []
        ],
        /// Scalable-mode context entry bits 127:64.
        pub SMCE_1 [
            /// PASID used for requests without PASID (bits 83:64).
            RID_PASID OFFSET(0) NUMBITS(20) [],
            /// Privilege of requests without PASID (bit 84).
            RID_PRIV OFFSET(20) NUMBITS(1) []
        ]
    ];
}
pub use layout::*;

/// Entries in a legacy context table (one per devfn).
pub const CONTEXT_TABLE_ENTRIES: usize = 256;
/// Entries in each of the two scalable-mode context tables of a bus.
pub const SCALABLE_CONTEXT_TABLE_ENTRIES: usize = 128;

/// context-entry.TT: which requests the device may issue and how they are
/// translated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TranslationType {
    /// 00b: untranslated requests are translated by the second-level table;
    /// translation and translated requests are blocked (device-TLB off).
    #[default]
    UntranslatedOnly,
    /// 01b: all requests, including ATS translation and translated requests
    /// (needs ECAP.DT).
    All,
    /// 10b: untranslated requests pass through untranslated (needs ECAP.PT).
    PassThrough,
}

impl TranslationType {
    const fn field(self) -> u64 {
        match self {
            Self::UntranslatedOnly => 0,
            Self::All => 1,
            Self::PassThrough => 2,
        }
    }
}

/// A legacy-mode context entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContextEntry {
    /// P.
    pub present: bool,
    /// FPD: do not record faults from this device.
    pub fpd: bool,
    /// TT.
    pub tt: TranslationType,
    /// SLPTPTR: the second-level table root (ignored for pass-through).
    pub slptptr: PhysAddr,
    /// AW: the table's depth (for pass-through, the largest AGAW supported).
    pub aw: AddressWidth,
    /// DID.
    pub did: DomainId,
}

impl Default for ContextEntry {
    fn default() -> Self {
        Self::not_present()
    }
}

/// A context entry the unit cannot use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryError {
    /// A field needs a capability the unit lacks.
    Unsupported {
        /// The field.
        field: &'static str,
        /// The capability (spec name).
        needs: &'static str,
    },
    /// A field value out of range.
    Illegal {
        /// The field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl fmt::Display for EntryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unsupported { field, needs } => write!(f, "{field} needs {needs}"),
            Self::Illegal { field, reason } => write!(f, "{field}: {reason}"),
        }
    }
}

impl ContextEntry {
    /// P = 0: every request of the device faults (reason 0x2). The entry of
    /// every devfn not assigned to a partition (secure by default).
    pub const fn not_present() -> Self {
        Self {
            present: false,
            fpd: false,
            tt: TranslationType::UntranslatedOnly,
            slptptr: PhysAddr(0),
            aw: AddressWidth::Bits39,
            did: DomainId(0),
        }
    }

    /// Untranslated requests through the second-level table at `root`
    /// (4 KiB aligned), `aw` deep, tagged `did`.
    pub const fn second_level(did: DomainId, root: PhysAddr, aw: AddressWidth) -> Self {
        Self { present: true, fpd: false, tt: TranslationType::UntranslatedOnly, slptptr: root, aw, did }
    }

    /// Pass-through: an explicit, logged choice of the caller, never a default.
    pub const fn pass_through(did: DomainId, aw: AddressWidth) -> Self {
        Self { present: true, fpd: false, tt: TranslationType::PassThrough, slptptr: PhysAddr(0), aw, did }
    }

    /// Sets FPD.
    pub const fn with_fpd(mut self, fpd: bool) -> Self {
        self.fpd = fpd;
        self
    }

    /// Sets TT.
    pub const fn with_tt(mut self, tt: TranslationType) -> Self {
        self.tt = tt;
        self
    }

    /// Checks the entry against the unit's capabilities.
    pub fn check(&self, caps: &Capabilities) -> Result<(), EntryError> {
        if !self.present {
            return Ok(());
        }
        if !caps.supports_aw(self.aw) {
            return Err(EntryError::Unsupported { field: "context-entry.AW", needs: "SAGAW" });
        }
        match self.tt {
            TranslationType::All if !caps.dt => {
                return Err(EntryError::Unsupported { field: "context-entry.TT", needs: "DT" })
            }
            TranslationType::PassThrough if !caps.pt => {
                return Err(EntryError::Unsupported { field: "context-entry.TT", needs: "PT" })
            }
            _ => {}
        }
        if self.did.0 > caps.max_domain_id() {
            return Err(EntryError::Illegal { field: "context-entry.DID", reason: "above the ND limit" });
        }
        if self.tt != TranslationType::PassThrough && self.slptptr.0 & 0xfff != 0 {
            return Err(EntryError::Illegal { field: "context-entry.SLPTPTR", reason: "not 4 KiB aligned" });
        }
        Ok(())
    }

    /// Encodes the entry as two 64-bit words. A non-present entry encodes
    /// as zeros.
    pub fn encode(&self) -> [u64; 2] {
        if !self.present {
            return [0, 0];
        }
        let mut lo = LocalRegisterCopy::<u64, CE_LO::Register>::new(0);
        lo.write(
            CE_LO::P::SET
                + CE_LO::FPD.val(u64::from(self.fpd))
                + CE_LO::TT.val(self.tt.field())
                + CE_LO::SLPTPTR.val(self.slptptr.0 >> 12),
        );
        let mut hi = LocalRegisterCopy::<u64, CE_HI::Register>::new(0);
        hi.write(CE_HI::AW.val(self.aw.field()) + CE_HI::DID.val(u64::from(self.did.0)));
        [lo.get(), hi.get()]
    }

    /// Decodes an entry. A non-present entry must be all zeros; reserved
    /// bits and reserved TT/AW encodings are errors.
    pub fn decode(words: [u64; 2]) -> Result<Self, DecodeError> {
        let lo = LocalRegisterCopy::<u64, CE_LO::Register>::new(words[0]);
        let hi = LocalRegisterCopy::<u64, CE_HI::Register>::new(words[1]);
        if !lo.is_set(CE_LO::P) {
            check_word(0, words[0], 0)?;
            check_word(1, words[1], 0)?;
            return Ok(Self::not_present());
        }
        check_word(0, words[0], bits(CE_LO::P) | bits(CE_LO::FPD) | bits(CE_LO::TT) | bits(CE_LO::SLPTPTR))?;
        check_word(1, words[1], bits(CE_HI::AW) | bits(CE_HI::DID))?;
        let tt = match lo.read(CE_LO::TT) {
            0 => TranslationType::UntranslatedOnly,
            1 => TranslationType::All,
            2 => TranslationType::PassThrough,
            v => return Err(DecodeError::Reserved { field: "context-entry.TT", value: v }),
        };
        let aw = hi.read(CE_HI::AW);
        let aw = AddressWidth::from_field(aw)
            .ok_or(DecodeError::Reserved { field: "context-entry.AW", value: aw })?;
        Ok(Self {
            present: true,
            fpd: lo.is_set(CE_LO::FPD),
            tt,
            slptptr: PhysAddr(lo.read(CE_LO::SLPTPTR) << 12),
            aw,
            did: DomainId(hi.read(CE_HI::DID) as u16),
        })
    }
}

/// A scalable-mode context entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScalableContextEntry {
    /// P.
    pub present: bool,
    /// FPD.
    pub fpd: bool,
    /// DTE: device-TLB (ATS) enable.
    pub dte: bool,
    /// PASIDE: accept requests with PASID.
    pub paside: bool,
    /// PRE: page requests enable.
    pub pre: bool,
    /// PDTS: the PASID directory has 2^(PDTS + 7) entries (0..=7).
    pub pdts: u8,
    /// PASIDDIRPTR (4 KiB aligned).
    pub pasid_dir: PhysAddr,
    /// RID_PASID: the PASID used for requests without one.
    pub rid_pasid: Pasid,
    /// RID_PRIV: requests without PASID are supervisor requests.
    pub rid_priv: bool,
}

impl ScalableContextEntry {
    /// A present entry with PASID directory `dir` of 2^(`pdts` + 7)
    /// entries, RID_PASID 0, everything else off.
    pub const fn new(dir: PhysAddr, pdts: u8) -> Self {
        Self {
            present: true,
            fpd: false,
            dte: false,
            paside: false,
            pre: false,
            pdts,
            pasid_dir: dir,
            rid_pasid: Pasid::ZERO,
            rid_priv: false,
        }
    }

    /// Number of PASID-directory entries: 2^(PDTS + 7).
    pub const fn pasid_dir_entries(&self) -> u32 {
        1 << (self.pdts as u32 + 7)
    }

    /// Checks the entry against the unit's capabilities.
    pub fn check(&self, caps: &Capabilities) -> Result<(), EntryError> {
        if !self.present {
            return Ok(());
        }
        let need =
            |ok: bool, field, needs| if ok { Ok(()) } else { Err(EntryError::Unsupported { field, needs }) };
        need(caps.smts, "scalable-mode context-entry", "SMTS")?;
        need(!self.dte || caps.dt, "scalable-mode context-entry.DTE", "DT")?;
        need(!self.paside || caps.pasid, "scalable-mode context-entry.PASIDE", "PASID")?;
        need(!self.pre || caps.prs, "scalable-mode context-entry.PRE", "PRS")?;
        need(self.rid_pasid.get() == 0 || caps.rps, "scalable-mode context-entry.RID_PASID", "RPS")?;
        need(!self.rid_priv || caps.rprivs, "scalable-mode context-entry.RID_PRIV", "RPRIVS")?;
        if self.pdts > 7 {
            return Err(EntryError::Illegal { field: "scalable-mode context-entry.PDTS", reason: "above 7" });
        }
        if self.pasid_dir.0 & 0xfff != 0 {
            return Err(EntryError::Illegal {
                field: "scalable-mode context-entry.PASIDDIRPTR",
                reason: "not 4 KiB aligned",
            });
        }
        Ok(())
    }

    /// Encodes the entry as four 64-bit words (bits 255:128 are reserved).
    pub fn encode(&self) -> [u64; 4] {
        if !self.present {
            return [0; 4];
        }
        let mut w0 = LocalRegisterCopy::<u64, SMCE_0::Register>::new(0);
        w0.write(
            SMCE_0::P::SET
                + SMCE_0::FPD.val(u64::from(self.fpd))
                + SMCE_0::DTE.val(u64::from(self.dte))
                + SMCE_0::PASIDE.val(u64::from(self.paside))
                + SMCE_0::PRE.val(u64::from(self.pre))
                + SMCE_0::PDTS.val(u64::from(self.pdts))
                + SMCE_0::PASIDDIRPTR.val(self.pasid_dir.0 >> 12),
        );
        let mut w1 = LocalRegisterCopy::<u64, SMCE_1::Register>::new(0);
        w1.write(
            SMCE_1::RID_PASID.val(u64::from(self.rid_pasid.get()))
                + SMCE_1::RID_PRIV.val(u64::from(self.rid_priv)),
        );
        [w0.get(), w1.get(), 0, 0]
    }

    /// Decodes an entry. A non-present entry must be all zeros.
    pub fn decode(words: [u64; 4]) -> Result<Self, DecodeError> {
        let w0 = LocalRegisterCopy::<u64, SMCE_0::Register>::new(words[0]);
        let w1 = LocalRegisterCopy::<u64, SMCE_1::Register>::new(words[1]);
        check_word(2, words[2], 0)?;
        check_word(3, words[3], 0)?;
        if !w0.is_set(SMCE_0::P) {
            check_word(0, words[0], 0)?;
            check_word(1, words[1], 0)?;
            return Ok(Self::default());
        }
        check_word(
            0,
            words[0],
            bits(SMCE_0::P)
                | bits(SMCE_0::FPD)
                | bits(SMCE_0::DTE)
                | bits(SMCE_0::PASIDE)
                | bits(SMCE_0::PRE)
                | bits(SMCE_0::PDTS)
                | bits(SMCE_0::PASIDDIRPTR),
        )?;
        check_word(1, words[1], bits(SMCE_1::RID_PASID) | bits(SMCE_1::RID_PRIV))?;
        Ok(Self {
            present: true,
            fpd: w0.is_set(SMCE_0::FPD),
            dte: w0.is_set(SMCE_0::DTE),
            paside: w0.is_set(SMCE_0::PASIDE),
            pre: w0.is_set(SMCE_0::PRE),
            pdts: w0.read(SMCE_0::PDTS) as u8,
            pasid_dir: PhysAddr(w0.read(SMCE_0::PASIDDIRPTR) << 12),
            rid_pasid: Pasid::from_field(w1.read(SMCE_1::RID_PASID)),
            rid_priv: w1.is_set(SMCE_1::RID_PRIV),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtd::caps::tests::qemu_caps;
    use proptest::prelude::*;

    // Context entry (9.3): P 0, FPD 1, TT 3:2, SLPTPTR 63:12; AW 66:64,
    // AVAIL 70:67, DID 87:72; everything else reserved.
    #[test]
    fn legacy_context_entry_bits() {
        let e = ContextEntry::second_level(DomainId(0x1234), PhysAddr(0x8765_4000), AddressWidth::Bits48);
        let w = e.encode();
        assert_eq!(w[0], 0x8765_4000 | 1, "P, TT = 00b");
        assert_eq!(w[1], 0b010 | (0x1234 << 8), "AW = 010b (4-level), DID at 87:72");
        let e = e.with_fpd(true).with_tt(TranslationType::All);
        assert_eq!(e.encode()[0], 0x8765_4000 | 1 | (1 << 1) | (0b01 << 2));
        let pt = ContextEntry::pass_through(DomainId(1), AddressWidth::Bits39);
        assert_eq!(pt.encode(), [1 | (0b10 << 2), 0b001 | (1 << 8)]);
        let e5 = ContextEntry::second_level(DomainId(0), PhysAddr(0x1000), AddressWidth::Bits57);
        assert_eq!(e5.encode()[1] & 7, 0b011, "AW = 011b (5-level)");
        assert_eq!(ContextEntry::not_present().encode(), [0, 0]);
    }

    #[test]
    fn legacy_context_decode_rejects_reserved() {
        assert_eq!(
            ContextEntry::decode([1 | (3 << 2), 1]),
            Err(DecodeError::Reserved { field: "context-entry.TT", value: 3 })
        );
        assert_eq!(
            ContextEntry::decode([1, 0]),
            Err(DecodeError::Reserved { field: "context-entry.AW", value: 0 })
        );
        assert_eq!(
            ContextEntry::decode([1 | 0x10, 1]),
            Err(DecodeError::UnmodelledBits { word: 0, bits: 0x10 })
        );
        assert_eq!(
            ContextEntry::decode([1, 1 | 0x80]),
            Err(DecodeError::UnmodelledBits { word: 1, bits: 0x80 })
        );
    }

    #[test]
    fn legacy_context_check_against_qemu() {
        let caps = qemu_caps();
        let e = ContextEntry::second_level(DomainId(5), PhysAddr(0x4000), AddressWidth::Bits48);
        assert_eq!(e.check(&caps), Ok(()));
        assert_eq!(ContextEntry::pass_through(DomainId(1), AddressWidth::Bits48).check(&caps), Ok(()));
        let e5 = ContextEntry::second_level(DomainId(5), PhysAddr(0x4000), AddressWidth::Bits57);
        assert_eq!(
            e5.check(&caps),
            Err(EntryError::Unsupported { field: "context-entry.AW", needs: "SAGAW" })
        );
        let dt = e.with_tt(TranslationType::All);
        assert_eq!(dt.check(&caps), Err(EntryError::Unsupported { field: "context-entry.TT", needs: "DT" }));
    }

    // Scalable-mode context entry (9.4): P 0, FPD 1, DTE 2, PASIDE 3, PRE 4,
    // PDTS 11:9, PASIDDIRPTR 63:12; RID_PASID 83:64, RID_PRIV 84.
    #[test]
    fn scalable_context_entry_bits() {
        let mut e = ScalableContextEntry::new(PhysAddr(0x12_3000), 2);
        assert_eq!(e.encode(), [0x12_3000 | 1 | (2 << 9), 0, 0, 0]);
        e.fpd = true;
        e.dte = true;
        e.paside = true;
        e.pre = true;
        e.rid_pasid = Pasid::new(0xabcde).unwrap();
        e.rid_priv = true;
        let w = e.encode();
        assert_eq!(w[0], 0x12_3000 | 0b11111 | (2 << 9));
        assert_eq!(w[1], 0xabcde | (1 << 20));
        assert_eq!(e.pasid_dir_entries(), 512);
        assert_eq!(ScalableContextEntry::new(PhysAddr(0), 7).pasid_dir_entries(), 1 << 14);
        assert!(ScalableContextEntry::decode([1 | (1 << 5), 0, 0, 0]).is_err(), "bits 8:5 reserved");
        assert!(ScalableContextEntry::decode([1, 1 << 21, 0, 0]).is_err(), "bits 127:85 reserved");
        assert!(ScalableContextEntry::decode([1, 0, 1, 0]).is_err(), "bits 255:128 reserved");
    }

    fn any_aw() -> impl Strategy<Value = AddressWidth> {
        prop_oneof![Just(AddressWidth::Bits39), Just(AddressWidth::Bits48), Just(AddressWidth::Bits57)]
    }

    proptest! {
        #[test]
        fn legacy_round_trip(fpd: bool, tt in 0u8..3, ptr in 0u64..1 << 52, aw in any_aw(), did: u16) {
            let tt = [TranslationType::UntranslatedOnly, TranslationType::All, TranslationType::PassThrough][tt as usize];
            let e = ContextEntry { present: true, fpd, tt, slptptr: PhysAddr(ptr << 12), aw, did: DomainId(did) };
            prop_assert_eq!(ContextEntry::decode(e.encode()), Ok(e));
        }

        #[test]
        fn scalable_round_trip(f in any::<[bool; 5]>(), pdts in 0u8..8, ptr in 0u64..1 << 52, rp in 0u32..1 << 20) {
            let e = ScalableContextEntry {
                present: true,
                fpd: f[0],
                dte: f[1],
                paside: f[2],
                pre: f[3],
                pdts,
                pasid_dir: PhysAddr(ptr << 12),
                rid_pasid: Pasid::new(rp).unwrap(),
                rid_priv: f[4],
            };
            prop_assert_eq!(ScalableContextEntry::decode(e.encode()), Ok(e));
        }

        #[test]
        fn decode_is_total(w in any::<[u64; 4]>()) {
            if let Ok(e) = ContextEntry::decode([w[0], w[1]]) {
                prop_assert_eq!(e.encode(), [w[0], w[1]]);
            }
            if let Ok(e) = ScalableContextEntry::decode(w) {
                prop_assert_eq!(e.encode(), w);
            }
        }
    }
}
