//! Scalable-mode PASID directory and PASID table entries (9.5, 9.6).
//!
//! A PASID selects a PASID-directory entry with bits 19:6 and, in the 4 KiB
//! PASID table that entry points to, a 512-bit PASID-table entry with bits
//! 5:0 ([`pasid_dir_index`], [`pasid_table_index`]).

use iommu_common::addr::PhysAddr;
use tock_registers::LocalRegisterCopy;

use crate::vtd::caps::{AddressWidth, Capabilities};
use crate::vtd::context::EntryError;
use crate::vtd::error::DecodeError;
use crate::vtd::fields::{bits, check_word};
use crate::vtd::ids::{DomainId, Pasid};

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// Scalable-mode PASID directory entry (64 bits).
        pub PDE [
            /// Present.
            P OFFSET(0) NUMBITS(1) [],
            /// Fault processing disable.
            FPD OFFSET(1) NUMBITS(1) [],
            /// Scalable-mode PASID table pointer, bits 63:12.
            SMPTBLPTR OFFSET(12) NUMBITS(52) []
        ],
        /// PASID-table entry bits 63:0.
        pub PE_0 [
            /// Present.
            P OFFSET(0) NUMBITS(1) [],
            /// Fault processing disable.
            FPD OFFSET(1) NUMBITS(1) [],
            /// Address width of the second-level table.
            AW OFFSET(2) NUMBITS(3) [],
            /// Second-level execute enable.
            SLEE OFFSET(5) NUMBITS(1) [],
            /// PASID granular translation type.
            PGTT OFFSET(6) NUMBITS(3) [FirstLevel = 1, SecondLevel = 2, Nested = 3, PassThrough = 4],
            /// Second-level accessed/dirty enable.
            SLADE OFFSET(9) NUMBITS(1) [],
            /// Second-level page table pointer, bits 63:12.
            SLPTPTR OFFSET(12) NUMBITS(52) []
        ],
        /// PASID-table entry bits 127:64.
        pub PE_1 [
            /// Domain identifier (79:64).
            DID OFFSET(0) NUMBITS(16) [],
            /// Page-walk snoop (87).
            PWSNP OFFSET(23) NUMBITS(1) [],
            /// Page snoop (88).
            PGSNP OFFSET(24) NUMBITS(1) [],
            /// Cache disable (89).
            CD OFFSET(25) NUMBITS(1) [],
            /// Extended memory type enable (90).
            EMTE OFFSET(26) NUMBITS(1) [],
            /// Extended memory type (93:91).
            EMT OFFSET(27) NUMBITS(3) [],
            /// Page-level write through (94).
            PWT OFFSET(30) NUMBITS(1) [],
            /// Page-level cache disable (95).
            PCD OFFSET(31) NUMBITS(1) [],
            /// Page attribute table (127:96).
            PAT OFFSET(32) NUMBITS(32) []
        ],
        /// PASID-table entry bits 191:128.
        pub PE_2 [
            /// Supervisor request enable (128).
            SRE OFFSET(0) NUMBITS(1) [],
            /// Execute request enable (129).
            ERE OFFSET(1) NUMBITS(1) [],
            /// First-level paging mode (131:130): 0 4-level, 1 5-level.
            FLPM OFFSET(2) NUMBITS(2) [],
            /// Write protect enable (132).
            WPE OFFSET(4) NUMBITS(1) [],
            /// No-execute enable (133).
            NXE OFFSET(5) NUMBITS(1) [],
            /// Supervisor mode execute prevent (134).
            SMEP OFFSET(6) NUMBITS(1) [],
            /// Extended accessed flag enable (135).
            EAFE OFFSET(7) NUMBITS(1) [],
            /// First-level page table pointer, bits 191:140.
            FLPTR OFFSET(12) NUMBITS(52) []
        ]
    ];
}
pub use layout::*;

/// Entries in a PASID table (4 KiB of 64-byte entries).
pub const PASID_TABLE_ENTRIES: usize = 64;

/// Index into the PASID directory: PASID bits 19:6.
pub const fn pasid_dir_index(pasid: Pasid) -> usize {
    (pasid.get() >> 6) as usize
}

/// Index into the PASID table: PASID bits 5:0.
pub const fn pasid_table_index(pasid: Pasid) -> usize {
    (pasid.get() & 0x3f) as usize
}

/// A scalable-mode PASID directory entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PasidDirEntry {
    /// FPD.
    pub fpd: bool,
    /// SMPTBLPTR when P = 1: the PASID table of these 64 PASIDs.
    pub table: Option<PhysAddr>,
}

impl PasidDirEntry {
    /// A present entry pointing at the 4 KiB-aligned PASID table `table`.
    pub const fn new(table: PhysAddr) -> Self {
        Self { fpd: false, table: Some(table) }
    }

    /// Encodes the entry.
    pub fn encode(&self) -> u64 {
        let mut w = LocalRegisterCopy::<u64, PDE::Register>::new(0);
        w.write(PDE::FPD.val(u64::from(self.fpd)));
        if let Some(t) = self.table {
            w.modify(PDE::P::SET + PDE::SMPTBLPTR.val(t.0 >> 12));
        }
        w.get()
    }

    /// Decodes an entry.
    pub fn decode(word: u64) -> Result<Self, DecodeError> {
        let w = LocalRegisterCopy::<u64, PDE::Register>::new(word);
        let fpd = w.is_set(PDE::FPD);
        if !w.is_set(PDE::P) {
            check_word(0, word, bits(PDE::FPD))?;
            return Ok(Self { fpd, table: None });
        }
        check_word(0, word, bits(PDE::P) | bits(PDE::FPD) | bits(PDE::SMPTBLPTR))?;
        Ok(Self { fpd, table: Some(PhysAddr(w.read(PDE::SMPTBLPTR) << 12)) })
    }
}

/// PASID-entry.PGTT: how requests of this PASID are translated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pgtt {
    /// 001b: first-level only (x86 paging format at FLPTR).
    FirstLevel,
    /// 010b: second-level only (SLPTPTR).
    #[default]
    SecondLevel,
    /// 011b: nested, first-level output translated by second-level.
    Nested,
    /// 100b: pass-through.
    PassThrough,
}

impl Pgtt {
    const fn field(self) -> u64 {
        match self {
            Self::FirstLevel => 1,
            Self::SecondLevel => 2,
            Self::Nested => 3,
            Self::PassThrough => 4,
        }
    }
}

/// PASID-entry.FLPM: first-level paging mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Flpm {
    /// 00b: 4-level paging.
    #[default]
    FourLevel,
    /// 01b: 5-level paging (needs CAP.FL5LP).
    FiveLevel,
}

/// A scalable-mode PASID-table entry (512 bits; bits 511:192 reserved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasidEntry {
    /// P.
    pub present: bool,
    /// FPD.
    pub fpd: bool,
    /// AW: depth of the second-level table.
    pub aw: AddressWidth,
    /// SLEE: second-level execute enable.
    pub slee: bool,
    /// PGTT.
    pub pgtt: Pgtt,
    /// SLADE: second-level accessed/dirty enable.
    pub slade: bool,
    /// SLPTPTR.
    pub slptptr: PhysAddr,
    /// DID.
    pub did: DomainId,
    /// PWSNP: page walks snoop.
    pub pwsnp: bool,
    /// PGSNP: page accesses snoop.
    pub pgsnp: bool,
    /// CD: cache disable (first-level / nested memory typing).
    pub cd: bool,
    /// EMTE: extended memory type enable.
    pub emte: bool,
    /// EMT: extended memory type (3 bits).
    pub emt: u8,
    /// PWT.
    pub pwt: bool,
    /// PCD.
    pub pcd: bool,
    /// PAT: page attribute table for first-level memory typing (32 bits).
    pub pat: u32,
    /// SRE: supervisor requests enable.
    pub sre: bool,
    /// ERE: execute requests enable.
    pub ere: bool,
    /// FLPM.
    pub flpm: Flpm,
    /// WPE: write protect enable.
    pub wpe: bool,
    /// NXE: no-execute enable.
    pub nxe: bool,
    /// SMEP: supervisor mode execute prevention.
    pub smep: bool,
    /// EAFE: extended accessed flag enable.
    pub eafe: bool,
    /// FLPTR.
    pub flptr: PhysAddr,
}

impl Default for PasidEntry {
    fn default() -> Self {
        Self::not_present()
    }
}

impl PasidEntry {
    /// P = 0: requests with this PASID fault (reason 0x59).
    pub const fn not_present() -> Self {
        Self {
            present: false,
            fpd: false,
            aw: AddressWidth::Bits39,
            slee: false,
            pgtt: Pgtt::SecondLevel,
            slade: false,
            slptptr: PhysAddr(0),
            did: DomainId(0),
            pwsnp: false,
            pgsnp: false,
            cd: false,
            emte: false,
            emt: 0,
            pwt: false,
            pcd: false,
            pat: 0,
            sre: false,
            ere: false,
            flpm: Flpm::FourLevel,
            wpe: false,
            nxe: false,
            smep: false,
            eafe: false,
            flptr: PhysAddr(0),
        }
    }

    /// Second-level only translation through `root`, `aw` deep.
    pub const fn second_level(did: DomainId, root: PhysAddr, aw: AddressWidth) -> Self {
        let mut e = Self::not_present();
        e.present = true;
        e.pgtt = Pgtt::SecondLevel;
        e.did = did;
        e.slptptr = root;
        e.aw = aw;
        e
    }

    /// First-level only translation through the x86 page table at `root`.
    pub const fn first_level(did: DomainId, root: PhysAddr, flpm: Flpm, aw: AddressWidth) -> Self {
        let mut e = Self::not_present();
        e.present = true;
        e.pgtt = Pgtt::FirstLevel;
        e.did = did;
        e.flptr = root;
        e.flpm = flpm;
        e.aw = aw;
        e
    }

    /// Pass-through: an explicit choice of the caller, never a default.
    pub const fn pass_through(did: DomainId, aw: AddressWidth) -> Self {
        let mut e = Self::not_present();
        e.present = true;
        e.pgtt = Pgtt::PassThrough;
        e.did = did;
        e.aw = aw;
        e
    }

    /// Checks the entry against the unit's capabilities.
    pub fn check(&self, caps: &Capabilities) -> Result<(), EntryError> {
        if !self.present {
            return Ok(());
        }
        let need =
            |ok: bool, field, needs| if ok { Ok(()) } else { Err(EntryError::Unsupported { field, needs }) };
        match self.pgtt {
            Pgtt::FirstLevel => need(caps.flts, "PASID-entry.PGTT", "FLTS")?,
            Pgtt::SecondLevel => need(caps.slts, "PASID-entry.PGTT", "SLTS")?,
            Pgtt::Nested => need(caps.nest, "PASID-entry.PGTT", "NEST")?,
            Pgtt::PassThrough => need(caps.pt, "PASID-entry.PGTT", "PT")?,
        }
        if matches!(self.pgtt, Pgtt::SecondLevel | Pgtt::Nested) {
            need(caps.supports_aw(self.aw), "PASID-entry.AW", "SAGAW")?;
        }
        need(self.flpm != Flpm::FiveLevel || caps.fl5lp, "PASID-entry.FLPM", "FL5LP")?;
        need(!self.slade || caps.slads, "PASID-entry.SLADE", "SLADS")?;
        need(!self.pgsnp || caps.sc, "PASID-entry.PGSNP", "SC")?;
        need(!self.pwsnp || caps.smpwcs, "PASID-entry.PWSNP", "SMPWCS")?;
        need(!self.emte || caps.mts, "PASID-entry.EMTE", "MTS")?;
        need(!self.sre || caps.srs, "PASID-entry.SRE", "SRS")?;
        need(!self.ere || caps.ers, "PASID-entry.ERE", "ERS")?;
        need(!self.eafe || caps.eafs, "PASID-entry.EAFE", "EAFS")?;
        if self.did.0 > caps.max_domain_id() {
            return Err(EntryError::Illegal { field: "PASID-entry.DID", reason: "above the ND limit" });
        }
        if self.slptptr.0 & 0xfff != 0 || self.flptr.0 & 0xfff != 0 {
            return Err(EntryError::Illegal {
                field: "PASID-entry.SLPTPTR/FLPTR",
                reason: "not 4 KiB aligned",
            });
        }
        Ok(())
    }

    /// Encodes the entry as eight 64-bit words. A non-present entry encodes
    /// as zeros (FPD of a non-present entry is not modelled).
    pub fn encode(&self) -> [u64; 8] {
        if !self.present {
            return [0; 8];
        }
        let b = |v: bool| u64::from(v);
        let mut w0 = LocalRegisterCopy::<u64, PE_0::Register>::new(0);
        w0.write(
            PE_0::P::SET
                + PE_0::FPD.val(b(self.fpd))
                + PE_0::AW.val(self.aw.field())
                + PE_0::SLEE.val(b(self.slee))
                + PE_0::PGTT.val(self.pgtt.field())
                + PE_0::SLADE.val(b(self.slade))
                + PE_0::SLPTPTR.val(self.slptptr.0 >> 12),
        );
        let mut w1 = LocalRegisterCopy::<u64, PE_1::Register>::new(0);
        w1.write(
            PE_1::DID.val(u64::from(self.did.0))
                + PE_1::PWSNP.val(b(self.pwsnp))
                + PE_1::PGSNP.val(b(self.pgsnp))
                + PE_1::CD.val(b(self.cd))
                + PE_1::EMTE.val(b(self.emte))
                + PE_1::EMT.val(u64::from(self.emt))
                + PE_1::PWT.val(b(self.pwt))
                + PE_1::PCD.val(b(self.pcd))
                + PE_1::PAT.val(u64::from(self.pat)),
        );
        let mut w2 = LocalRegisterCopy::<u64, PE_2::Register>::new(0);
        w2.write(
            PE_2::SRE.val(b(self.sre))
                + PE_2::ERE.val(b(self.ere))
                + PE_2::FLPM.val(match self.flpm {
                    Flpm::FourLevel => 0,
                    Flpm::FiveLevel => 1,
                })
                + PE_2::WPE.val(b(self.wpe))
                + PE_2::NXE.val(b(self.nxe))
                + PE_2::SMEP.val(b(self.smep))
                + PE_2::EAFE.val(b(self.eafe))
                + PE_2::FLPTR.val(self.flptr.0 >> 12),
        );
        [w0.get(), w1.get(), w2.get(), 0, 0, 0, 0, 0]
    }

    /// Decodes an entry. A non-present entry must be all zeros; reserved
    /// bits and reserved PGTT, AW or FLPM encodings are errors.
    pub fn decode(words: [u64; 8]) -> Result<Self, DecodeError> {
        for (i, w) in words.iter().enumerate().skip(3) {
            check_word(i as u8, *w, 0)?;
        }
        let w0 = LocalRegisterCopy::<u64, PE_0::Register>::new(words[0]);
        let w1 = LocalRegisterCopy::<u64, PE_1::Register>::new(words[1]);
        let w2 = LocalRegisterCopy::<u64, PE_2::Register>::new(words[2]);
        if !w0.is_set(PE_0::P) {
            for (i, w) in words.iter().enumerate().take(3) {
                check_word(i as u8, *w, 0)?;
            }
            return Ok(Self::not_present());
        }
        check_word(0, words[0], mask0())?;
        check_word(1, words[1], mask1())?;
        check_word(2, words[2], mask2())?;
        let pgtt = match w0.read(PE_0::PGTT) {
            1 => Pgtt::FirstLevel,
            2 => Pgtt::SecondLevel,
            3 => Pgtt::Nested,
            4 => Pgtt::PassThrough,
            v => return Err(DecodeError::Reserved { field: "PASID-entry.PGTT", value: v }),
        };
        let aw = w0.read(PE_0::AW);
        let aw = AddressWidth::from_field(aw)
            .ok_or(DecodeError::Reserved { field: "PASID-entry.AW", value: aw })?;
        let flpm = match w2.read(PE_2::FLPM) {
            0 => Flpm::FourLevel,
            1 => Flpm::FiveLevel,
            v => return Err(DecodeError::Reserved { field: "PASID-entry.FLPM", value: v }),
        };
        Ok(Self {
            present: true,
            fpd: w0.is_set(PE_0::FPD),
            aw,
            slee: w0.is_set(PE_0::SLEE),
            pgtt,
            slade: w0.is_set(PE_0::SLADE),
            slptptr: PhysAddr(w0.read(PE_0::SLPTPTR) << 12),
            did: DomainId(w1.read(PE_1::DID) as u16),
            pwsnp: w1.is_set(PE_1::PWSNP),
            pgsnp: w1.is_set(PE_1::PGSNP),
            cd: w1.is_set(PE_1::CD),
            emte: w1.is_set(PE_1::EMTE),
            emt: w1.read(PE_1::EMT) as u8,
            pwt: w1.is_set(PE_1::PWT),
            pcd: w1.is_set(PE_1::PCD),
            pat: w1.read(PE_1::PAT) as u32,
            sre: w2.is_set(PE_2::SRE),
            ere: w2.is_set(PE_2::ERE),
            flpm,
            wpe: w2.is_set(PE_2::WPE),
            nxe: w2.is_set(PE_2::NXE),
            smep: w2.is_set(PE_2::SMEP),
            eafe: w2.is_set(PE_2::EAFE),
            flptr: PhysAddr(w2.read(PE_2::FLPTR) << 12),
        })
    }
}

fn mask0() -> u64 {
    bits(PE_0::P)
        | bits(PE_0::FPD)
        | bits(PE_0::AW)
        | bits(PE_0::SLEE)
        | bits(PE_0::PGTT)
        | bits(PE_0::SLADE)
        | bits(PE_0::SLPTPTR)
}
fn mask1() -> u64 {
    bits(PE_1::DID)
        | bits(PE_1::PWSNP)
        | bits(PE_1::PGSNP)
        | bits(PE_1::CD)
        | bits(PE_1::EMTE)
        | bits(PE_1::EMT)
        | bits(PE_1::PWT)
        | bits(PE_1::PCD)
        | bits(PE_1::PAT)
}
fn mask2() -> u64 {
    bits(PE_2::SRE)
        | bits(PE_2::ERE)
        | bits(PE_2::FLPM)
        | bits(PE_2::WPE)
        | bits(PE_2::NXE)
        | bits(PE_2::SMEP)
        | bits(PE_2::EAFE)
        | bits(PE_2::FLPTR)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtd::caps::tests::qemu_caps;
    use proptest::prelude::*;

    #[test]
    fn pasid_indices() {
        // PASID bits 19:6 index the directory, 5:0 the table.
        let p = Pasid::new(0xabcde).unwrap();
        assert_eq!(pasid_dir_index(p), 0xabcde >> 6);
        assert_eq!(pasid_table_index(p), 0x1e);
        assert_eq!(pasid_dir_index(Pasid::ZERO), 0);
        assert_eq!(pasid_dir_index(Pasid::new(Pasid::MAX).unwrap()), 0x3fff);
    }

    // PASID directory entry (9.5): P 0, FPD 1, 11:2 reserved, SMPTBLPTR 63:12.
    #[test]
    fn pasid_dir_entry_bits() {
        assert_eq!(PasidDirEntry::new(PhysAddr(0x9000)).encode(), 0x9001);
        assert_eq!(PasidDirEntry { fpd: true, table: Some(PhysAddr(0x9000)) }.encode(), 0x9003);
        assert_eq!(PasidDirEntry { fpd: true, table: None }.encode(), 0x2);
        assert_eq!(PasidDirEntry::decode(0x9005), Err(DecodeError::UnmodelledBits { word: 0, bits: 4 }));
    }

    // PASID-table entry (9.6): P 0, FPD 1, AW 4:2, SLEE 5, PGTT 8:6, SLADE 9,
    // SLPTPTR 63:12; DID 79:64, PWSNP 87, PGSNP 88, CD 89, EMTE 90, EMT 93:91,
    // PWT 94, PCD 95, PAT 127:96; SRE 128, ERE 129, FLPM 131:130, WPE 132,
    // NXE 133, SMEP 134, EAFE 135, FLPTR 191:140.
    #[test]
    fn pasid_entry_second_level_bits() {
        let e = PasidEntry::second_level(DomainId(0x4321), PhysAddr(0x55_6000), AddressWidth::Bits48);
        let w = e.encode();
        assert_eq!(w[0], 1 | (0b010 << 2) | (0b010 << 6) | 0x55_6000, "P, AW 4-level, PGTT 010b");
        assert_eq!(w[1], 0x4321);
        assert_eq!(&w[2..], &[0; 6]);
    }

    #[test]
    fn pasid_entry_pgtt_encodings() {
        let pgtt = |e: PasidEntry| (e.encode()[0] >> 6) & 7;
        let fl =
            PasidEntry::first_level(DomainId(1), PhysAddr(0x7000), Flpm::FiveLevel, AddressWidth::Bits48);
        assert_eq!(pgtt(fl), 0b001);
        assert_eq!(fl.encode()[2], 0x7000 | (1 << 2), "FLPTR at 191:140, FLPM 01b at 131:130");
        assert_eq!(pgtt(PasidEntry { pgtt: Pgtt::Nested, ..fl }), 0b011);
        assert_eq!(pgtt(PasidEntry::pass_through(DomainId(1), AddressWidth::Bits48)), 0b100);
    }

    #[test]
    fn pasid_entry_attribute_bits() {
        let mut e = PasidEntry::second_level(DomainId(0), PhysAddr(0), AddressWidth::Bits39);
        e.fpd = true;
        e.slee = true;
        e.slade = true;
        assert_eq!(e.encode()[0], 1 | 2 | (1 << 2) | (1 << 5) | (2 << 6) | (1 << 9));
        let mut e = PasidEntry::second_level(DomainId(0), PhysAddr(0), AddressWidth::Bits39);
        e.pwsnp = true;
        assert_eq!(e.encode()[1], 1 << (87 - 64));
        e.pwsnp = false;
        e.pgsnp = true;
        assert_eq!(e.encode()[1], 1 << (88 - 64));
        e.pgsnp = false;
        e.cd = true;
        e.emte = true;
        e.emt = 0b110;
        e.pwt = true;
        e.pcd = true;
        e.pat = 0x0007_0406;
        assert_eq!(
            e.encode()[1],
            (1 << (89 - 64))
                | (1 << (90 - 64))
                | (0b110 << (91 - 64))
                | (1 << (94 - 64))
                | (1 << (95 - 64))
                | (0x0007_0406 << 32)
        );
        let mut e = PasidEntry::second_level(DomainId(0), PhysAddr(0), AddressWidth::Bits39);
        e.sre = true;
        e.ere = true;
        e.wpe = true;
        e.nxe = true;
        e.smep = true;
        e.eafe = true;
        assert_eq!(e.encode()[2], 0b1111_0011);
    }

    #[test]
    fn pasid_entry_decode_rejects_reserved() {
        let w0 = 1 | (2 << 2);
        assert_eq!(
            PasidEntry::decode([w0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Reserved { field: "PASID-entry.PGTT", value: 0 })
        );
        assert_eq!(
            PasidEntry::decode([w0 | (5 << 6), 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::Reserved { field: "PASID-entry.PGTT", value: 5 })
        );
        assert_eq!(
            PasidEntry::decode([w0 | (2 << 6), 0, 2 << 2, 0, 0, 0, 0, 0]),
            Err(DecodeError::Reserved { field: "PASID-entry.FLPM", value: 2 })
        );
        assert_eq!(
            PasidEntry::decode([w0 | (2 << 6), 1 << 16, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::UnmodelledBits { word: 1, bits: 1 << 16 })
        );
        assert!(PasidEntry::decode([w0 | (2 << 6), 0, 0, 0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn pasid_entry_check_names_capability() {
        // QEMU legacy-mode caps: no SLTS/FLTS.
        let caps = qemu_caps();
        let sl = PasidEntry::second_level(DomainId(1), PhysAddr(0x1000), AddressWidth::Bits48);
        assert_eq!(
            sl.check(&caps),
            Err(EntryError::Unsupported { field: "PASID-entry.PGTT", needs: "SLTS" })
        );
        let sm = Capabilities { smts: true, slts: true, ..caps };
        assert_eq!(sl.check(&sm), Ok(()));
        let fl =
            PasidEntry::first_level(DomainId(1), PhysAddr(0x1000), Flpm::FourLevel, AddressWidth::Bits48);
        assert_eq!(fl.check(&sm), Err(EntryError::Unsupported { field: "PASID-entry.PGTT", needs: "FLTS" }));
        let mut e = sl;
        e.slade = true;
        assert_eq!(e.check(&sm), Err(EntryError::Unsupported { field: "PASID-entry.SLADE", needs: "SLADS" }));
    }

    fn any_entry() -> impl Strategy<Value = PasidEntry> {
        let w0 = (any::<bool>(), 1u64..4, any::<bool>(), 0u8..4, any::<bool>(), 0u64..1 << 52);
        let w1 = (any::<u16>(), any::<[bool; 6]>(), 0u8..8, any::<u32>());
        let w2 = (any::<[bool; 6]>(), any::<bool>(), 0u64..1 << 52);
        (w0, w1, w2).prop_map(
            |((fpd, aw, slee, pgtt, slade, slpt), (did, f1, emt, pat), (f2, flpm, flpt))| PasidEntry {
                present: true,
                fpd,
                aw: AddressWidth::from_field(aw).unwrap(),
                slee,
                pgtt: [Pgtt::FirstLevel, Pgtt::SecondLevel, Pgtt::Nested, Pgtt::PassThrough][pgtt as usize],
                slade,
                slptptr: PhysAddr(slpt << 12),
                did: DomainId(did),
                pwsnp: f1[0],
                pgsnp: f1[1],
                cd: f1[2],
                emte: f1[3],
                emt,
                pwt: f1[4],
                pcd: f1[5],
                pat,
                sre: f2[0],
                ere: f2[1],
                flpm: if flpm { Flpm::FiveLevel } else { Flpm::FourLevel },
                wpe: f2[2],
                nxe: f2[3],
                smep: f2[4],
                eafe: f2[5],
                flptr: PhysAddr(flpt << 12),
            },
        )
    }

    proptest! {
        #[test]
        fn pasid_entry_round_trip(e in any_entry()) {
            prop_assert_eq!(PasidEntry::decode(e.encode()), Ok(e));
        }

        #[test]
        fn pasid_dir_round_trip(fpd: bool, t in proptest::option::of(0u64..1 << 52)) {
            let e = PasidDirEntry { fpd, table: t.map(|t| PhysAddr(t << 12)) };
            prop_assert_eq!(PasidDirEntry::decode(e.encode()), Ok(e));
        }

        #[test]
        fn decode_is_total(w in any::<[u64; 3]>(), d: u64) {
            let words = [w[0], w[1], w[2], 0, 0, 0, 0, 0];
            if let Ok(e) = PasidEntry::decode(words) {
                prop_assert_eq!(e.encode(), words);
            }
            if let Ok(e) = PasidDirEntry::decode(d) {
                prop_assert_eq!(e.encode(), d);
            }
        }
    }
}
