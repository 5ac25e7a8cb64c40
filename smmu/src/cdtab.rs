//! Context descriptor tables indexed by SubstreamID (STE.S1Fmt, 5.3): a
//! linear array of 2^S1CDMax CDs, or Level 1 CD descriptors (L1CD) pointing at
//! lazily allocated leaf tables of 64 (4 KiB) or 1024 (64 KiB) CDs.
//!
//! The table lives in PA space (stage 1 only streams). A nested stream's CD
//! table belongs to the guest, in IPA space, and is not managed here.

use iommu_common::addr::PhysAddr;
use tock_registers::LocalRegisterCopy;

use crate::cd::Cd;
use crate::dma::{dsb_st, DmaFrames, DmaRegion, OutOfMemory};
use crate::ids::SubstreamId;
use crate::ste::{CdTablePtr, S1Fmt, Stage1Cfg};
use crate::update::{update_entry, CdKind, EntrySlot, UpdatePath};

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// Level 1 Context Descriptor (5.3).
        pub L1CD [
            /// L2Ptr valid.
            V OFFSET(0) NUMBITS(1) [],
            /// Leaf table address, bits `[55:12]`.
            L2PTR OFFSET(12) NUMBITS(44) []
        ]
    ];
}
pub use layout::*;

const CD_WORDS: usize = 8;
const CD_SIZE: usize = 64;

/// An invalidation the CD table needs: CMD_CFGI_CD(StreamID, SubstreamID,
/// Leaf) for every stream using the table, followed by CMD_SYNC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CdInvalidation {
    /// The SubstreamID whose CD (or L1CD) changed.
    pub ssid: SubstreamId,
    /// `false` when an L1CD changed (non-leaf form, 5.3.1).
    pub leaf: bool,
}

/// A CD table error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CdTabError<E> {
    /// SubstreamID at or above 2^S1CDMax.
    SsidOutOfRange {
        /// The SubstreamID.
        ssid: SubstreamId,
        /// S1CDMax of the table.
        cdmax: u8,
    },
    /// Bad format/size combination (S1CDMax above 20, or a 2-level format
    /// with S1CDMax not above the leaf size).
    BadGeometry,
    /// Memory allocation failed.
    OutOfMemory(OutOfMemory),
    /// Bookkeeping inconsistent: memory corruption.
    Corrupt,
    /// The invalidation failed.
    Invalidate(E),
}

struct CdSlot<'a> {
    region: &'a DmaRegion,
    first: usize,
}

impl EntrySlot for CdSlot<'_> {
    fn read(&self) -> [u64; 8] {
        self.region.read_words(self.first)
    }
    fn write_word(&mut self, idx: usize, value: u64) {
        self.region.write(self.first + idx, value);
    }
    fn publish(&mut self) {
        self.region.sync_for_device(self.first, CD_WORDS);
        // 3.21.3.1: DSB before the CMD_CFGI_CD.
        dsb_st();
    }
}

/// A CD table in SMMU-visible memory.
#[derive(Debug)]
pub struct CdTable {
    fmt: S1Fmt,
    cdmax: u8,
    /// Linear: the CDs. 2-level: the L1CDs.
    base: DmaRegion,
    /// 2-level only: CPU pointers to the leaf tables.
    shadow: Option<DmaRegion>,
    coherent: bool,
}

impl CdTable {
    /// Log2 of the CDs in a leaf table.
    fn leaf_bits(fmt: S1Fmt) -> u8 {
        match fmt {
            S1Fmt::Linear => 0,
            S1Fmt::TwoLevel4K => 6,
            S1Fmt::TwoLevel64K => 10,
        }
    }

    /// Allocates a table for SubstreamIDs below 2^`cdmax` (every CD invalid).
    pub fn new<F: DmaFrames + ?Sized, E>(
        frames: &mut F,
        fmt: S1Fmt,
        cdmax: u8,
        coherent: bool,
    ) -> Result<Self, CdTabError<E>> {
        if cdmax > 20 {
            return Err(CdTabError::BadGeometry);
        }
        let (size, shadow) = match fmt {
            // Aligned to its size (STE.S1Fmt 0b00).
            S1Fmt::Linear => (CD_SIZE << cdmax, None),
            _ => {
                let leaf = Self::leaf_bits(fmt);
                if cdmax <= leaf {
                    return Err(CdTabError::BadGeometry);
                }
                let n = 1usize << (cdmax - leaf);
                let shadow =
                    DmaRegion::alloc(frames, (n * 8).max(64), 64, true).map_err(CdTabError::OutOfMemory)?;
                ((n * 8).max(64), Some(shadow))
            }
        };
        let base = DmaRegion::alloc(frames, size, size, coherent).map_err(CdTabError::OutOfMemory)?;
        base.sync_for_device(0, base.words());
        dsb_st();
        Ok(Self { fmt, cdmax, base, shadow, coherent })
    }

    /// The stage 1 STE fields locating this table: S1Fmt, S1ContextPtr,
    /// S1CDMax (other fields default; set S1DSS as needed).
    pub fn stage1_cfg(&self) -> Stage1Cfg {
        Stage1Cfg {
            fmt: self.fmt,
            context_ptr: CdTablePtr::Pa(self.base.pa()),
            cdmax: self.cdmax,
            ..Stage1Cfg::default()
        }
    }

    /// Physical address of the table (S1ContextPtr).
    pub fn base_pa(&self) -> PhysAddr {
        self.base.pa()
    }

    fn index<E>(&self, ssid: SubstreamId) -> Result<usize, CdTabError<E>> {
        if ssid.get() >> self.cdmax != 0 {
            return Err(CdTabError::SsidOutOfRange { ssid, cdmax: self.cdmax });
        }
        Ok(ssid.get() as usize)
    }

    /// Writes the CD of `ssid` following [`crate::update`]; allocates the
    /// leaf table first in a 2-level table. `invalidate` issues CMD_CFGI_CD
    /// for every stream using the table, plus CMD_SYNC, and waits.
    pub fn write<F: DmaFrames + ?Sized, E>(
        &mut self,
        frames: &mut F,
        ssid: SubstreamId,
        cd: &Cd,
        mut invalidate: impl FnMut(CdInvalidation) -> Result<(), E>,
    ) -> Result<UpdatePath, CdTabError<E>> {
        let idx = self.index(ssid)?;
        let new = cd.encode();
        let leaf = CdInvalidation { ssid, leaf: true };
        match self.fmt {
            S1Fmt::Linear => {
                let mut slot = CdSlot { region: &self.base, first: idx * CD_WORDS };
                update_entry::<CdKind, _, E>(&mut slot, &new, || invalidate(leaf))
                    .map_err(CdTabError::Invalidate)
            }
            fmt => {
                let bits = Self::leaf_bits(fmt);
                let l1 = idx >> bits;
                let l2 = self.leaf_table(frames, l1, ssid, &mut invalidate)?;
                let mut slot = CdSlot { region: &l2, first: (idx & ((1 << bits) - 1)) * CD_WORDS };
                update_entry::<CdKind, _, E>(&mut slot, &new, || invalidate(leaf))
                    .map_err(CdTabError::Invalidate)
            }
        }
    }

    /// The leaf table of L1CD `l1`, allocated and installed if needed.
    fn leaf_table<F: DmaFrames + ?Sized, E>(
        &mut self,
        frames: &mut F,
        l1: usize,
        ssid: SubstreamId,
        invalidate: &mut impl FnMut(CdInvalidation) -> Result<(), E>,
    ) -> Result<DmaRegion, CdTabError<E>> {
        let bits = Self::leaf_bits(self.fmt);
        let words = (1usize << bits) * CD_WORDS;
        let shadow = self.shadow.as_ref().ok_or(CdTabError::Corrupt)?;
        let desc = LocalRegisterCopy::<u64, L1CD::Register>::new(self.base.read(l1));
        if desc.is_set(L1CD::V) {
            let va = shadow.read_ptr(l1).ok_or(CdTabError::Corrupt)?;
            let pa = PhysAddr(desc.read(L1CD::L2PTR) << 12);
            // SAFETY: `va` was stored below from `into_raw` of the leaf region
            // of `words` words at `pa` (written into the same L1CD); leaf
            // tables are never freed and only used through `self`.
            return Ok(unsafe { DmaRegion::from_raw(pa, va, words, self.base.cache_ops()) });
        }
        let size = words * 8;
        let l2 = DmaRegion::alloc(frames, size, size, self.coherent).map_err(CdTabError::OutOfMemory)?;
        l2.sync_for_device(0, l2.words());
        let (pa, cache) = (l2.pa(), l2.cache_ops());
        let va = l2.into_raw();
        shadow.write_ptr(l1, va);
        // The leaf (all CDs invalid) is observable before the L1CD points at it.
        dsb_st();
        let mut d = LocalRegisterCopy::<u64, L1CD::Register>::new(0);
        d.write(L1CD::V::SET + L1CD::L2PTR.val(pa.0 >> 12));
        self.base.write(l1, d.get());
        self.base.sync_for_device(l1, 1);
        dsb_st();
        invalidate(CdInvalidation { ssid, leaf: false }).map_err(CdTabError::Invalidate)?;
        // SAFETY: rebuilt from the region just given up with `into_raw`.
        Ok(unsafe { DmaRegion::from_raw(pa, va, words, cache) })
    }

    /// The current words of the CD of `ssid` (`None` if its leaf table does
    /// not exist).
    pub fn read<E>(&self, ssid: SubstreamId) -> Result<Option<[u64; 8]>, CdTabError<E>> {
        let idx = self.index(ssid)?;
        match self.fmt {
            S1Fmt::Linear => Ok(Some(self.base.read_words(idx * CD_WORDS))),
            fmt => {
                let bits = Self::leaf_bits(fmt);
                let l1 = idx >> bits;
                let desc = LocalRegisterCopy::<u64, L1CD::Register>::new(self.base.read(l1));
                if !desc.is_set(L1CD::V) {
                    return Ok(None);
                }
                let shadow = self.shadow.as_ref().ok_or(CdTabError::Corrupt)?;
                let va = shadow.read_ptr(l1).ok_or(CdTabError::Corrupt)?;
                let pa = PhysAddr(desc.read(L1CD::L2PTR) << 12);
                let words = (1usize << bits) * CD_WORDS;
                // SAFETY: as in `leaf_table`.
                let l2 = unsafe { DmaRegion::from_raw(pa, va, words, None) };
                Ok(Some(l2.read_words((idx & ((1 << bits) - 1)) * CD_WORDS)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::{AddrSize, Granule};
    use crate::ids::Asid;
    use crate::testing::HeapFrames;
    use crate::update::UpdatePath;
    use std::vec::Vec;

    fn ssid(v: u32) -> SubstreamId {
        SubstreamId::new(v).unwrap()
    }

    fn cd(asid: u16) -> Cd {
        Cd::aarch64_ttb0(Asid(asid), PhysAddr(0x9000_0000), 48, Granule::K4, AddrSize::Bits44, 0xff)
    }

    #[test]
    fn l1cd_bits_match_spec() {
        // V bit 0, L2Ptr [55:12].
        let mut d = LocalRegisterCopy::<u64, L1CD::Register>::new(0);
        d.write(L1CD::V::SET + L1CD::L2PTR.val(0x1234_5000 >> 12));
        assert_eq!(d.get(), 0x1234_5001);
    }

    #[test]
    fn linear_single_cd() {
        let mut frames = HeapFrames::new(1 << 16);
        let mut t = CdTable::new::<_, ()>(&mut frames, S1Fmt::Linear, 0, true).unwrap();
        let s1 = t.stage1_cfg();
        assert_eq!(s1.cdmax, 0);
        assert_eq!(s1.context_ptr, CdTablePtr::Pa(t.base_pa()));
        let mut inv = Vec::new();
        let path = t
            .write::<_, ()>(&mut frames, ssid(0), &cd(1), |i| {
                inv.push(i);
                Ok(())
            })
            .unwrap();
        assert_eq!(path, UpdatePath::Install);
        assert_eq!(inv, [CdInvalidation { ssid: ssid(0), leaf: true }; 2]);
        let r: Result<_, CdTabError<()>> = t.read(ssid(0));
        assert_eq!(r, Ok(Some(cd(1).encode())));
        let r = t.write::<_, ()>(&mut frames, ssid(1), &cd(1), |_| Ok(()));
        assert_eq!(r, Err(CdTabError::SsidOutOfRange { ssid: ssid(1), cdmax: 0 }));
        // Changing only the ASID of a valid CD is one atomic store (3.21.3).
        let mut inv = 0;
        let path = t
            .write::<_, ()>(&mut frames, ssid(0), &cd(2), |_| {
                inv += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!((path, inv), (UpdatePath::Hitless, 1));
    }

    #[test]
    fn two_level_allocates_leaf_tables() {
        let mut frames = HeapFrames::new(1 << 20);
        let mut t = CdTable::new::<_, ()>(&mut frames, S1Fmt::TwoLevel4K, 10, true).unwrap();
        // 2^(10-6) = 16 L1CDs.
        let r: Result<_, CdTabError<()>> = t.read(ssid(100));
        assert_eq!(r, Ok(None));
        let mut inv = Vec::new();
        t.write::<_, ()>(&mut frames, ssid(100), &cd(9), |i| {
            inv.push(i);
            Ok(())
        })
        .unwrap();
        assert_eq!(inv[0], CdInvalidation { ssid: ssid(100), leaf: false });
        assert!(inv[1..].iter().all(|i| i.leaf));
        // L1 index 100 >> 6 = 1; leaf index 36.
        let d = LocalRegisterCopy::<u64, L1CD::Register>::new(t.base.read(1));
        assert!(d.is_set(L1CD::V));
        let leaf = d.read(L1CD::L2PTR) << 12;
        let bytes = frames.bytes(PhysAddr(leaf + 36 * 64), 8);
        assert_eq!(u64::from_le_bytes(bytes.try_into().unwrap()), cd(9).encode()[0]);
        let r: Result<_, CdTabError<()>> = t.read(ssid(100));
        assert_eq!(r, Ok(Some(cd(9).encode())));
        let r: Result<_, CdTabError<()>> = t.read(ssid(101));
        assert_eq!(r, Ok(Some([0; 8])));
    }

    #[test]
    fn bad_geometry() {
        let mut frames = HeapFrames::new(1 << 16);
        let r = CdTable::new::<_, ()>(&mut frames, S1Fmt::TwoLevel64K, 10, true);
        assert!(matches!(r, Err(CdTabError::BadGeometry)));
        let r = CdTable::new::<_, ()>(&mut frames, S1Fmt::Linear, 21, true);
        assert!(matches!(r, Err(CdTabError::BadGeometry)));
    }
}
