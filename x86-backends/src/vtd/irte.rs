//! Interrupt remapping (5.1): the remapped-format interrupt remapping table
//! entry (9.10), the IRTA_REG value, and the remappable MSI address/data
//! format (5.1.2.2) devices are programmed with.
//!
//! The posted-interrupt IRTE format (9.11, IM = 1) and the posted-interrupt
//! descriptor are not modelled: posting needs CAP.PI, which QEMU does not
//! offer, and the hypervisor delivers interrupts to partitions itself.
//! [`Irte::decode`] reports a posted entry as [`DecodeError::Unsupported`].

use iommu_common::addr::PhysAddr;
use tock_registers::LocalRegisterCopy;

use crate::vtd::error::DecodeError;
use crate::vtd::fields::{bits, check_word};
use crate::vtd::ids::SourceId;
use crate::vtd::regs::IRTA;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// IRTE bits 63:0.
        pub IRTE_LO [
            /// Present.
            P OFFSET(0) NUMBITS(1) [],
            /// Fault processing disable.
            FPD OFFSET(1) NUMBITS(1) [],
            /// Destination mode: 0 physical, 1 logical.
            DM OFFSET(2) NUMBITS(1) [],
            /// Redirection hint.
            RH OFFSET(3) NUMBITS(1) [],
            /// Trigger mode: 0 edge, 1 level.
            TM OFFSET(4) NUMBITS(1) [],
            /// Delivery mode.
            DLM OFFSET(5) NUMBITS(3) [],
            /// Available to software.
            AVAIL OFFSET(8) NUMBITS(4) [],
            /// IRTE mode: 0 remapped, 1 posted.
            IM OFFSET(15) NUMBITS(1) [],
            /// Vector.
            V OFFSET(16) NUMBITS(8) [],
            /// Destination ID (xAPIC: APIC ID in bits 47:40; x2APIC: 63:32).
            DST OFFSET(32) NUMBITS(32) []
        ],
        /// IRTE bits 127:64.
        pub IRTE_HI [
            /// Source identifier.
            SID OFFSET(0) NUMBITS(16) [],
            /// Source-ID qualifier.
            SQ OFFSET(16) NUMBITS(2) [],
            /// Source validation type.
            SVT OFFSET(18) NUMBITS(2) []
        ]
    ];
}
pub use layout::*;

/// IRTE.DLM: delivery mode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DeliveryMode {
    /// 000b.
    #[default]
    Fixed,
    /// 001b.
    LowestPriority,
    /// 010b.
    Smi,
    /// 100b.
    Nmi,
    /// 101b.
    Init,
    /// 111b.
    ExtInt,
}

impl DeliveryMode {
    const fn field(self) -> u64 {
        match self {
            Self::Fixed => 0,
            Self::LowestPriority => 1,
            Self::Smi => 2,
            Self::Nmi => 4,
            Self::Init => 5,
            Self::ExtInt => 7,
        }
    }
}

/// IRTE.SVT with its SID/SQ: how the requester of an interrupt is checked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SourceValidation {
    /// 00b: no validation.
    #[default]
    None,
    /// 01b: the requester must equal `sid` in the bits SQ does not mask
    /// (SQ 00b: all 16 bits; 01b: ignore bit 2; 10b: bits 2:1; 11b: bits 2:0).
    Requester {
        /// Expected Source-ID.
        sid: SourceId,
        /// SQ.
        sq: u8,
    },
    /// 10b: the requester's bus must lie in `start_bus..=end_bus` (SID
    /// bits 15:8 and 7:0).
    BusRange {
        /// First bus.
        start_bus: u8,
        /// Last bus.
        end_bus: u8,
    },
}

/// A remapped-format interrupt remapping table entry (128 bits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Irte {
    /// P.
    pub present: bool,
    /// FPD.
    pub fpd: bool,
    /// DM: logical destination mode.
    pub logical: bool,
    /// RH: redirection hint (lowest-priority among the destinations).
    pub redirection_hint: bool,
    /// TM: level-triggered.
    pub level: bool,
    /// DLM.
    pub delivery: DeliveryMode,
    /// AVAIL: four bits for software.
    pub avail: u8,
    /// V: the vector.
    pub vector: u8,
    /// DST: the raw destination field; see [`Irte::xapic_dest`] and
    /// [`Irte::x2apic_dest`].
    pub dst: u32,
    /// SVT, SID, SQ.
    pub validation: SourceValidation,
}

impl Irte {
    /// A present, fixed, edge-triggered, physical-mode entry for `vector` on
    /// the CPU with destination field `dst`, accepted only from `sid`.
    pub const fn fixed(vector: u8, dst: u32, sid: SourceId) -> Self {
        Self {
            present: true,
            fpd: false,
            logical: false,
            redirection_hint: false,
            level: false,
            delivery: DeliveryMode::Fixed,
            avail: 0,
            vector,
            dst,
            validation: SourceValidation::Requester { sid, sq: 0 },
        }
    }

    /// The DST field for an xAPIC destination (IRTA_REG.EIME = 0): the
    /// 8-bit APIC ID in bits 15:8 of the field (IRTE bits 47:40).
    pub const fn xapic_dest(apic_id: u8) -> u32 {
        (apic_id as u32) << 8
    }

    /// The DST field for an x2APIC destination (EIME = 1): all 32 bits.
    pub const fn x2apic_dest(apic_id: u32) -> u32 {
        apic_id
    }

    /// Encodes the entry as two 64-bit words. A non-present entry encodes
    /// as zeros.
    pub fn encode(&self) -> [u64; 2] {
        if !self.present {
            return [0, 0];
        }
        let mut lo = LocalRegisterCopy::<u64, IRTE_LO::Register>::new(0);
        lo.write(
            IRTE_LO::P::SET
                + IRTE_LO::FPD.val(u64::from(self.fpd))
                + IRTE_LO::DM.val(u64::from(self.logical))
                + IRTE_LO::RH.val(u64::from(self.redirection_hint))
                + IRTE_LO::TM.val(u64::from(self.level))
                + IRTE_LO::DLM.val(self.delivery.field())
                + IRTE_LO::AVAIL.val(u64::from(self.avail))
                + IRTE_LO::V.val(u64::from(self.vector))
                + IRTE_LO::DST.val(u64::from(self.dst)),
        );
        let (svt, sid, sq) = match self.validation {
            SourceValidation::None => (0, 0, 0),
            SourceValidation::Requester { sid, sq } => (1, u64::from(sid.0), u64::from(sq)),
            SourceValidation::BusRange { start_bus, end_bus } => {
                (2, (u64::from(start_bus) << 8) | u64::from(end_bus), 0)
            }
        };
        let mut hi = LocalRegisterCopy::<u64, IRTE_HI::Register>::new(0);
        hi.write(IRTE_HI::SID.val(sid) + IRTE_HI::SQ.val(sq) + IRTE_HI::SVT.val(svt));
        [lo.get(), hi.get()]
    }

    /// Decodes an entry. A non-present entry must be all zeros; posted
    /// entries (IM = 1), reserved DLM/SVT encodings and reserved bits are
    /// errors.
    pub fn decode(words: [u64; 2]) -> Result<Self, DecodeError> {
        let lo = LocalRegisterCopy::<u64, IRTE_LO::Register>::new(words[0]);
        let hi = LocalRegisterCopy::<u64, IRTE_HI::Register>::new(words[1]);
        if !lo.is_set(IRTE_LO::P) {
            check_word(0, words[0], 0)?;
            check_word(1, words[1], 0)?;
            return Ok(Self::default());
        }
        if lo.is_set(IRTE_LO::IM) {
            return Err(DecodeError::Unsupported { what: "posted-format IRTE (IM = 1)" });
        }
        check_word(
            0,
            words[0],
            bits(IRTE_LO::P)
                | bits(IRTE_LO::FPD)
                | bits(IRTE_LO::DM)
                | bits(IRTE_LO::RH)
                | bits(IRTE_LO::TM)
                | bits(IRTE_LO::DLM)
                | bits(IRTE_LO::AVAIL)
                | bits(IRTE_LO::V)
                | bits(IRTE_LO::DST),
        )?;
        check_word(1, words[1], bits(IRTE_HI::SID) | bits(IRTE_HI::SQ) | bits(IRTE_HI::SVT))?;
        let delivery = match lo.read(IRTE_LO::DLM) {
            0 => DeliveryMode::Fixed,
            1 => DeliveryMode::LowestPriority,
            2 => DeliveryMode::Smi,
            4 => DeliveryMode::Nmi,
            5 => DeliveryMode::Init,
            7 => DeliveryMode::ExtInt,
            v => return Err(DecodeError::Reserved { field: "IRTE.DLM", value: v }),
        };
        let sid = hi.read(IRTE_HI::SID);
        let sq = hi.read(IRTE_HI::SQ);
        let validation = match hi.read(IRTE_HI::SVT) {
            0 if sid == 0 && sq == 0 => SourceValidation::None,
            1 => SourceValidation::Requester { sid: SourceId(sid as u16), sq: sq as u8 },
            2 if sq == 0 => SourceValidation::BusRange { start_bus: (sid >> 8) as u8, end_bus: sid as u8 },
            0 | 2 => return Err(DecodeError::UnmodelledBits { word: 1, bits: words[1] & 0x3_ffff }),
            v => return Err(DecodeError::Reserved { field: "IRTE.SVT", value: v }),
        };
        Ok(Self {
            present: true,
            fpd: lo.is_set(IRTE_LO::FPD),
            logical: lo.is_set(IRTE_LO::DM),
            redirection_hint: lo.is_set(IRTE_LO::RH),
            level: lo.is_set(IRTE_LO::TM),
            delivery,
            avail: lo.read(IRTE_LO::AVAIL) as u8,
            vector: lo.read(IRTE_LO::V) as u8,
            dst: lo.read(IRTE_LO::DST) as u32,
            validation,
        })
    }
}

/// The IRTA_REG value: where the interrupt remapping table is and how big.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irta {
    /// IRTA: table base (4 KiB aligned).
    pub base: PhysAddr,
    /// EIME: x2APIC (32-bit) destinations; needs ECAP.EIM.
    pub eime: bool,
    /// S: the table has 2^(S + 1) entries (0..=15, so 2..=65536).
    pub s: u8,
}

impl Irta {
    /// A table of `entries` entries (a power of two in 2..=65536) at `base`.
    pub fn new(base: PhysAddr, entries: u32, eime: bool) -> Option<Self> {
        if !entries.is_power_of_two() || !(2..=65536).contains(&entries) || base.0 & 0xfff != 0 {
            return None;
        }
        Some(Self { base, eime, s: (entries.trailing_zeros() - 1) as u8 })
    }

    /// Number of entries: 2^(S + 1).
    pub const fn entries(&self) -> u32 {
        1 << (self.s as u32 + 1)
    }

    /// Encodes the register value.
    pub fn encode(&self) -> u64 {
        let mut r = LocalRegisterCopy::<u64, IRTA::Register>::new(0);
        r.write(
            IRTA::IRTA.val(self.base.0 >> 12)
                + IRTA::EIME.val(u64::from(self.eime))
                + IRTA::S.val(u64::from(self.s)),
        );
        r.get()
    }

    /// Decodes a register value; bits 10:4 are reserved.
    pub fn decode(v: u64) -> Result<Self, DecodeError> {
        check_word(0, v, bits(IRTA::IRTA) | bits(IRTA::EIME) | bits(IRTA::S))?;
        let r = LocalRegisterCopy::<u64, IRTA::Register>::new(v);
        Ok(Self {
            base: PhysAddr(r.read(IRTA::IRTA) << 12),
            eime: r.is_set(IRTA::EIME),
            s: r.read(IRTA::S) as u8,
        })
    }
}

/// A remappable-format MSI (5.1.2.2): what a device writes when its MSI is
/// remapped through IRTE `interrupt_index`.
///
/// Address: bits 31:20 0xFEE, 19:5 handle[14:0], 4 interrupt format (1 =
/// remappable), 3 SHV, 2 handle[15]. Data: bits 15:0 subhandle (used when
/// SHV = 1, then interrupt_index = handle + subhandle).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemappableMsi {
    /// The handle.
    pub handle: u16,
    /// The subhandle, when SHV = 1 (multi-vector MSI: the device adds its
    /// vector number to the data).
    pub subhandle: Option<u16>,
}

impl RemappableMsi {
    /// An MSI for IRTE `index`, without subhandle.
    pub const fn new(index: u16) -> Self {
        Self { handle: index, subhandle: None }
    }

    /// The IRTE index this MSI selects (handle + subhandle when SHV = 1),
    /// or `None` if the sum overflows 16 bits.
    pub fn interrupt_index(&self) -> Option<u16> {
        self.handle.checked_add(self.subhandle.unwrap_or(0))
    }

    /// The MSI address (low 32 bits; the upper address register is 0) and
    /// data values.
    pub const fn encode(&self) -> (u32, u32) {
        let h = self.handle as u32;
        let shv = self.subhandle.is_some() as u32;
        let addr = (0xfee << 20) | ((h & 0x7fff) << 5) | (1 << 4) | (shv << 3) | ((h >> 15) << 2);
        let data = match self.subhandle {
            Some(s) => s as u32,
            None => 0,
        };
        (addr, data)
    }

    /// Decodes an MSI address/data pair; `None` if the address is not
    /// 0xFEEx_xxxx or is compatibility format (bit 4 clear).
    pub const fn decode(addr: u32, data: u32) -> Option<Self> {
        if addr >> 20 != 0xfee || addr & (1 << 4) == 0 {
            return None;
        }
        let handle = (((addr >> 5) & 0x7fff) | (((addr >> 2) & 1) << 15)) as u16;
        let subhandle = if addr & (1 << 3) != 0 { Some(data as u16) } else { None };
        Some(Self { handle, subhandle })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // IRTE for remapped interrupts (9.10): P 0, FPD 1, DM 2, RH 3, TM 4,
    // DLM 7:5, AVAIL 11:8, IM 15, V 23:16, DST 63:32 (xAPIC ID at 47:40);
    // SID 79:64, SQ 81:80, SVT 83:82.
    #[test]
    fn irte_bits() {
        let e = Irte::fixed(0x41, Irte::xapic_dest(2), SourceId::new(0, 3, 0));
        assert_eq!(e.encode(), [1 | (0x41 << 16) | (2 << 40), 0x0018 | (1 << 18)]);
        let e = Irte {
            fpd: true,
            logical: true,
            redirection_hint: true,
            level: true,
            delivery: DeliveryMode::ExtInt,
            avail: 0xa,
            dst: Irte::x2apic_dest(0x1234_5678),
            validation: SourceValidation::BusRange { start_bus: 2, end_bus: 5 },
            ..Irte::fixed(0xff, 0, SourceId(0))
        };
        let w = e.encode();
        assert_eq!(w[0], 0b1_1111 | (0b111 << 5) | (0xa << 8) | (0xff << 16) | (0x1234_5678 << 32));
        assert_eq!(w[1], 0x0205 | (0b10 << 18));
        let nmi = Irte { delivery: DeliveryMode::Nmi, ..Irte::fixed(2, 0, SourceId(0)) };
        assert_eq!((nmi.encode()[0] >> 5) & 7, 0b100);
        let sq = Irte { validation: SourceValidation::Requester { sid: SourceId(8), sq: 3 }, ..nmi };
        assert_eq!(sq.encode()[1], 8 | (3 << 16) | (1 << 18));
    }

    #[test]
    fn irte_decode_rejects() {
        assert_eq!(
            Irte::decode([1 | (1 << 15), 0]),
            Err(DecodeError::Unsupported { what: "posted-format IRTE (IM = 1)" })
        );
        assert_eq!(
            Irte::decode([1 | (3 << 5), 0]),
            Err(DecodeError::Reserved { field: "IRTE.DLM", value: 3 })
        );
        assert_eq!(Irte::decode([1, 3 << 18]), Err(DecodeError::Reserved { field: "IRTE.SVT", value: 3 }));
        assert_eq!(
            Irte::decode([1 | (1 << 12), 0]),
            Err(DecodeError::UnmodelledBits { word: 0, bits: 1 << 12 })
        );
        assert!(Irte::decode([1, 1 << 20]).is_err());
    }

    // IRTA_REG: S 3:0, EIME 11, IRTA 63:12.
    #[test]
    fn irta_value() {
        let t = Irta::new(PhysAddr(0x7_0000), 256, false).unwrap();
        assert_eq!(t.s, 7);
        assert_eq!(t.encode(), 0x7_0000 | 7);
        let t = Irta::new(PhysAddr(0x7_0000), 65536, true).unwrap();
        assert_eq!(t.encode(), 0x7_0000 | (1 << 11) | 0xf);
        assert_eq!(t.entries(), 65536);
        assert_eq!(Irta::new(PhysAddr(0x7_0000), 100, false), None);
        assert_eq!(Irta::new(PhysAddr(0x7_0800), 2, false), None);
        assert!(Irta::decode(0x7_0010).is_err());
    }

    // Remappable MSI address (5.1.2.2): 31:20 = 0xFEE, 19:5 handle[14:0],
    // 4 = 1 (remappable), 3 SHV, 2 handle[15]; data 15:0 subhandle.
    #[test]
    fn remappable_msi_format() {
        assert_eq!(RemappableMsi::new(0).encode(), (0xfee0_0010, 0));
        assert_eq!(RemappableMsi::new(5).encode(), (0xfee0_0010 | (5 << 5), 0));
        assert_eq!(RemappableMsi::new(0x8001).encode(), (0xfee0_0010 | (1 << 5) | (1 << 2), 0));
        let m = RemappableMsi { handle: 16, subhandle: Some(3) };
        assert_eq!(m.encode(), (0xfee0_0010 | (16 << 5) | (1 << 3), 3));
        assert_eq!(m.interrupt_index(), Some(19));
        assert_eq!(RemappableMsi::decode(0xfee0_0000, 0), None, "compatibility format");
        assert_eq!(RemappableMsi::decode(0xfed0_0010, 0), None);
    }

    fn any_irte() -> impl Strategy<Value = Irte> {
        (any::<[bool; 4]>(), 0u8..6, 0u8..16, any::<u8>(), any::<u32>(), 0u8..3, any::<u16>(), 0u8..4)
            .prop_map(|([fpd, logical, rh, level], dlm, avail, vector, dst, svt, sid, sq)| Irte {
                present: true,
                fpd,
                logical,
                redirection_hint: rh,
                level,
                delivery: [
                    DeliveryMode::Fixed,
                    DeliveryMode::LowestPriority,
                    DeliveryMode::Smi,
                    DeliveryMode::Nmi,
                    DeliveryMode::Init,
                    DeliveryMode::ExtInt,
                ][dlm as usize],
                avail,
                vector,
                dst,
                validation: match svt {
                    0 => SourceValidation::None,
                    1 => SourceValidation::Requester { sid: SourceId(sid), sq },
                    _ => SourceValidation::BusRange { start_bus: (sid >> 8) as u8, end_bus: sid as u8 },
                },
            })
    }

    proptest! {
        #[test]
        fn irte_round_trip(e in any_irte()) {
            prop_assert_eq!(Irte::decode(e.encode()), Ok(e));
        }

        #[test]
        fn irta_round_trip(base in 0u64..1 << 52, eime: bool, s in 0u8..16) {
            let t = Irta { base: PhysAddr(base << 12), eime, s };
            prop_assert_eq!(Irta::decode(t.encode()), Ok(t));
        }

        #[test]
        fn msi_round_trip(handle: u16, sub in proptest::option::of(any::<u16>())) {
            let m = RemappableMsi { handle, subhandle: sub };
            let (a, d) = m.encode();
            prop_assert_eq!(RemappableMsi::decode(a, d), Some(m));
        }

        #[test]
        fn irte_decode_is_total(lo: u64, hi in 0u64..1 << 20) {
            if let Ok(e) = Irte::decode([lo, hi]) {
                prop_assert_eq!(e.encode(), [lo, hi]);
            }
        }
    }
}
