//! Root entries (9.1, 9.2): the root table is one 4 KiB page of 256 entries
//! of 128 bits, indexed by bus number.
//!
//! In legacy mode (RTADDR_REG.TTM = 00b) each [`RootEntry`] points to a
//! context table of 256 [`ContextEntry`](crate::vtd::ContextEntry)s indexed
//! by devfn. In scalable mode (TTM = 01b) a [`ScalableRootEntry`] points to
//! two context tables of 128 256-bit scalable-mode context entries: the
//! lower one for devfn 0..=127, the upper one for devfn 128..=255.

use iommu_common::addr::PhysAddr;
use tock_registers::LocalRegisterCopy;

use crate::vtd::error::DecodeError;
use crate::vtd::fields::{bits, check_word};
use crate::vtd::ids::SourceId;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// Root entry bits 63:0 (bits 127:64 are reserved).
        pub RE_LO [
            /// Present.
            P OFFSET(0) NUMBITS(1) [],
            /// Context-table pointer, bits 63:12.
            CTP OFFSET(12) NUMBITS(52) []
        ],
        /// Scalable-mode root entry, either half: bits 63:0 (LP, LCTP) or
        /// bits 127:64 (UP, UCTP).
        pub SMRE_HALF [
            /// Lower / upper present.
            P OFFSET(0) NUMBITS(1) [],
            /// Lower / upper context-table pointer, bits 63:12.
            CTP OFFSET(12) NUMBITS(52) []
        ]
    ];
}
pub use layout::*;

/// Entries in the root table (one per bus).
pub const ROOT_TABLE_ENTRIES: usize = 256;

/// Index of the root entry for `sid`: its bus number.
pub const fn root_index(sid: SourceId) -> usize {
    sid.bus() as usize
}

/// A legacy-mode root entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RootEntry {
    /// The context table of this bus, or `None` (P = 0: every request from
    /// the bus faults with reason 0x1).
    pub context_table: Option<PhysAddr>,
}

impl RootEntry {
    /// A present entry pointing at the 4 KiB-aligned context table `ctp`.
    pub const fn new(ctp: PhysAddr) -> Self {
        Self { context_table: Some(ctp) }
    }

    /// Encodes the entry as two 64-bit words (bits 63:0, bits 127:64).
    pub fn encode(&self) -> [u64; 2] {
        let mut w = LocalRegisterCopy::<u64, RE_LO::Register>::new(0);
        if let Some(ctp) = self.context_table {
            w.write(RE_LO::P::SET + RE_LO::CTP.val(ctp.0 >> 12));
        }
        [w.get(), 0]
    }

    /// Decodes an entry; reserved bits and a pointer in a non-present entry
    /// are errors.
    pub fn decode(words: [u64; 2]) -> Result<Self, DecodeError> {
        let w = LocalRegisterCopy::<u64, RE_LO::Register>::new(words[0]);
        check_word(1, words[1], 0)?;
        if !w.is_set(RE_LO::P) {
            check_word(0, words[0], 0)?;
            return Ok(Self::default());
        }
        check_word(0, words[0], bits(RE_LO::P) | bits(RE_LO::CTP))?;
        Ok(Self::new(PhysAddr(w.read(RE_LO::CTP) << 12)))
    }
}

/// Which of the two context tables of a scalable-mode root entry a devfn
/// uses, and its index there.
pub const fn scalable_context_slot(sid: SourceId) -> (ContextHalf, usize) {
    let devfn = sid.devfn();
    if devfn < 128 {
        (ContextHalf::Lower, devfn as usize)
    } else {
        (ContextHalf::Upper, (devfn - 128) as usize)
    }
}

/// The half of a scalable-mode root entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContextHalf {
    /// LP/LCTP: devfn 0..=127.
    Lower,
    /// UP/UCTP: devfn 128..=255.
    Upper,
}

/// A scalable-mode root entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScalableRootEntry {
    /// LCTP when LP = 1: context table for devfn 0..=127.
    pub lower: Option<PhysAddr>,
    /// UCTP when UP = 1: context table for devfn 128..=255.
    pub upper: Option<PhysAddr>,
}

impl ScalableRootEntry {
    /// Encodes the entry as two 64-bit words.
    pub fn encode(&self) -> [u64; 2] {
        let half = |p: Option<PhysAddr>| {
            let mut w = LocalRegisterCopy::<u64, SMRE_HALF::Register>::new(0);
            if let Some(ctp) = p {
                w.write(SMRE_HALF::P::SET + SMRE_HALF::CTP.val(ctp.0 >> 12));
            }
            w.get()
        };
        [half(self.lower), half(self.upper)]
    }

    /// Decodes an entry; reserved bits and pointers in non-present halves
    /// are errors.
    pub fn decode(words: [u64; 2]) -> Result<Self, DecodeError> {
        let half = |i: u8, v: u64| -> Result<Option<PhysAddr>, DecodeError> {
            let w = LocalRegisterCopy::<u64, SMRE_HALF::Register>::new(v);
            if !w.is_set(SMRE_HALF::P) {
                check_word(i, v, 0)?;
                return Ok(None);
            }
            check_word(i, v, bits(SMRE_HALF::P) | bits(SMRE_HALF::CTP))?;
            Ok(Some(PhysAddr(w.read(SMRE_HALF::CTP) << 12)))
        };
        Ok(Self { lower: half(0, words[0])?, upper: half(1, words[1])? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Root entry (9.1): P bit 0, 11:1 reserved, CTP 63:12, 127:64 reserved.
    #[test]
    fn root_entry_bits() {
        assert_eq!(RootEntry::new(PhysAddr(0x1234_5000)).encode(), [0x1234_5001, 0]);
        assert_eq!(RootEntry::default().encode(), [0, 0]);
        assert_eq!(RootEntry::decode([0x2, 0]), Err(DecodeError::UnmodelledBits { word: 0, bits: 2 }));
        assert_eq!(
            RootEntry::decode([0x1000, 0]),
            Err(DecodeError::UnmodelledBits { word: 0, bits: 0x1000 })
        );
        assert!(RootEntry::decode([1, 1]).is_err());
    }

    // Scalable-mode root entry (9.2): LP bit 0, LCTP 63:12, UP bit 64,
    // UCTP 127:76.
    #[test]
    fn scalable_root_entry_bits() {
        let e = ScalableRootEntry { lower: Some(PhysAddr(0x5000)), upper: Some(PhysAddr(0xabc_d000)) };
        assert_eq!(e.encode(), [0x5001, 0xabc_d001]);
        let e = ScalableRootEntry { lower: None, upper: Some(PhysAddr(0x7000)) };
        assert_eq!(e.encode(), [0, 0x7001]);
        assert_eq!(scalable_context_slot(SourceId::new(0, 3, 0)), (ContextHalf::Lower, 0x18));
        assert_eq!(scalable_context_slot(SourceId::new(0, 0x10, 0)), (ContextHalf::Upper, 0));
        assert_eq!(root_index(SourceId::new(0x42, 0, 0)), 0x42);
    }

    proptest! {
        #[test]
        fn root_round_trip(p in proptest::option::of(0u64..1 << 52)) {
            let e = RootEntry { context_table: p.map(|p| PhysAddr(p << 12)) };
            prop_assert_eq!(RootEntry::decode(e.encode()), Ok(e));
        }

        #[test]
        fn scalable_root_round_trip(l in proptest::option::of(0u64..1 << 52), u in proptest::option::of(0u64..1 << 52)) {
            let e = ScalableRootEntry { lower: l.map(|p| PhysAddr(p << 12)), upper: u.map(|p| PhysAddr(p << 12)) };
            prop_assert_eq!(ScalableRootEntry::decode(e.encode()), Ok(e));
        }

        #[test]
        fn root_decode_is_total(w in any::<[u64; 2]>()) {
            if let Ok(e) = RootEntry::decode(w) {
                prop_assert_eq!(e.encode(), w);
            }
            if let Ok(e) = ScalableRootEntry::decode(w) {
                prop_assert_eq!(e.encode(), w);
            }
        }
    }
}
