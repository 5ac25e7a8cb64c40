//! The Stream table (3.3.2, 5.1, 6.3.24-25): linear, or 2-level with Level 1
//! Stream Table Descriptors (L1STD) pointing at lazily allocated arrays of
//! STEs.
//!
//! Every STE starts as V=1 Config=abort (secure by default). In a 2-level
//! table, StreamIDs whose L1STD has not been populated yet have Span == 0:
//! their transactions are terminated too, recording C_BAD_STREAMID (with
//! SMMU_CR2.RECINVSID), which reports devices nobody configured.

use core::fmt;

use iommu_common::addr::PhysAddr;
use tock_registers::LocalRegisterCopy;

use crate::cmd::Command;
use crate::dma::{dsb_st, DmaFrames, DmaRegion, OutOfMemory};
use crate::ids::StreamId;
use crate::regs::{STRTAB_BASE, STRTAB_BASE_CFG};
use crate::ste::{Ste, ABORT_WORD0};
use crate::update::{update_entry, EntrySlot, SteKind, UpdatePath};

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// Level 1 Stream Table Descriptor (5.1).
        pub L1STD [
            /// 0: invalid; n in 1..=11: the L2 array holds 2^(n-1) STEs.
            SPAN OFFSET(0) NUMBITS(5) [],
            /// L2 array address, bits `[55:6]`.
            L2PTR OFFSET(6) NUMBITS(50) []
        ]
    ];
}
pub use layout::*;

/// Bytes per STE.
pub const STE_SIZE: usize = 64;
const STE_WORDS: usize = 8;

/// Stream table layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrtabFormat {
    /// One array of 2^sid_bits STEs.
    Linear,
    /// L1STDs indexed by StreamID[sid_bits-1:split], each locating an array
    /// of 2^split STEs indexed by StreamID[split-1:0].
    TwoLevel {
        /// SMMU_STRTAB_BASE_CFG.SPLIT: 6, 8 or 10 (4, 16 or 64 KiB arrays).
        split: u8,
    },
}

/// A Stream table error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrtabError<E> {
    /// The StreamID is not covered by the table (at or above 2^sid_bits).
    SidOutOfRange {
        /// The StreamID.
        sid: StreamId,
        /// Bits covered by the table.
        sid_bits: u8,
    },
    /// The geometry is not allowed (SPLIT not 6/8/10, or above the size).
    BadGeometry,
    /// Memory allocation failed.
    OutOfMemory(OutOfMemory),
    /// The table's own bookkeeping is inconsistent (an L1STD without its
    /// shadow pointer): memory was corrupted.
    Corrupt {
        /// The StreamID being looked up.
        sid: StreamId,
    },
    /// The configuration invalidation failed.
    Invalidate(E),
}

impl<E: fmt::Debug> fmt::Display for StrtabError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SidOutOfRange { sid, sid_bits } => {
                write!(f, "{sid} beyond the {sid_bits}-bit Stream table")
            }
            Self::BadGeometry => f.write_str("invalid Stream table geometry"),
            Self::OutOfMemory(o) => write!(f, "out of memory ({} bytes)", o.size),
            Self::Corrupt { sid } => write!(f, "Stream table bookkeeping corrupt at {sid}"),
            Self::Invalidate(e) => write!(f, "invalidation failed: {e:?}"),
        }
    }
}

/// One STE in table memory, as an [`EntrySlot`] for the update procedure.
struct SteSlot<'a> {
    region: &'a DmaRegion,
    first: usize,
}

impl EntrySlot for SteSlot<'_> {
    fn read(&self) -> [u64; 8] {
        self.region.read_words(self.first)
    }
    fn write_word(&mut self, idx: usize, value: u64) {
        self.region.write(self.first + idx, value);
    }
    fn publish(&mut self) {
        self.region.sync_for_device(self.first, STE_WORDS);
        // 3.21.3.1: DSB so the stores are observable by the SMMU before the
        // CMD_CFGI_STE that follows is.
        dsb_st();
    }
}

/// A Stream table in SMMU-visible memory.
#[derive(Debug)]
pub struct StreamTable {
    format: StrtabFormat,
    sid_bits: u8,
    /// Linear: the STEs. 2-level: the L1STDs.
    base: DmaRegion,
    /// 2-level only: CPU pointers to the L2 arrays, one per L1STD.
    shadow: Option<DmaRegion>,
    coherent: bool,
}

impl StreamTable {
    /// Allocates a table covering StreamIDs below 2^`sid_bits`, every STE
    /// V=1 Config=abort. `coherent` disables cache maintenance (see
    /// [`crate::dma::DmaFrames::cache_ops`]).
    pub fn new<F: DmaFrames + ?Sized, E>(
        frames: &mut F,
        format: StrtabFormat,
        sid_bits: u8,
        coherent: bool,
    ) -> Result<Self, StrtabError<E>> {
        if sid_bits > 32 {
            return Err(StrtabError::BadGeometry);
        }
        let (base, shadow) = match format {
            StrtabFormat::Linear => {
                // Aligned to the table size (6.3.24: ADDR[LOG2SIZE+5:0] = 0).
                let size = STE_SIZE.checked_shl(u32::from(sid_bits)).ok_or(StrtabError::BadGeometry)?;
                let base =
                    DmaRegion::alloc(frames, size, size, coherent).map_err(StrtabError::OutOfMemory)?;
                for i in 0..(1usize << sid_bits) {
                    base.write(i * STE_WORDS, ABORT_WORD0);
                }
                base.sync_for_device(0, base.words());
                (base, None)
            }
            StrtabFormat::TwoLevel { split } => {
                if !matches!(split, 6 | 8 | 10) || split > sid_bits {
                    return Err(StrtabError::BadGeometry);
                }
                let entries = 1usize << (sid_bits - split);
                // L1 aligned to the larger of 64 bytes and its size (6.3.24).
                let size = (entries * 8).max(64);
                let base =
                    DmaRegion::alloc(frames, size, size, coherent).map_err(StrtabError::OutOfMemory)?;
                // Span == 0 everywhere: fresh memory is zero.
                base.sync_for_device(0, base.words());
                // The shadow is CPU-only: always coherent.
                let shadow = DmaRegion::alloc(frames, size, 64, true).map_err(StrtabError::OutOfMemory)?;
                (base, Some(shadow))
            }
        };
        dsb_st();
        Ok(Self { format, sid_bits, base, shadow, coherent })
    }

    /// The layout.
    pub fn format(&self) -> StrtabFormat {
        self.format
    }

    /// StreamID bits covered (SMMU_STRTAB_BASE_CFG.LOG2SIZE).
    pub fn sid_bits(&self) -> u8 {
        self.sid_bits
    }

    /// Physical address of the table (linear) or of the L1STD array.
    pub fn base_pa(&self) -> PhysAddr {
        self.base.pa()
    }

    /// The value for SMMU_STRTAB_BASE: ADDR, with the read-allocate hint.
    pub fn base_register(&self) -> u64 {
        let mut r = LocalRegisterCopy::<u64, STRTAB_BASE::Register>::new(0);
        r.write(STRTAB_BASE::ADDR.val(self.base.pa().0 >> 6) + STRTAB_BASE::RA::SET);
        r.get()
    }

    /// The value for SMMU_STRTAB_BASE_CFG.
    pub fn base_cfg_register(&self) -> u32 {
        let mut r = LocalRegisterCopy::<u32, STRTAB_BASE_CFG::Register>::new(0);
        let log2size = STRTAB_BASE_CFG::LOG2SIZE.val(u32::from(self.sid_bits));
        match self.format {
            StrtabFormat::Linear => r.write(STRTAB_BASE_CFG::FMT::Linear + log2size),
            StrtabFormat::TwoLevel { split } => r.write(
                STRTAB_BASE_CFG::FMT::TwoLevel + STRTAB_BASE_CFG::SPLIT.val(u32::from(split)) + log2size,
            ),
        }
        r.get()
    }

    fn check_sid<E>(&self, sid: StreamId) -> Result<usize, StrtabError<E>> {
        let idx = u64::from(sid.0);
        if idx >> self.sid_bits != 0 {
            return Err(StrtabError::SidOutOfRange { sid, sid_bits: self.sid_bits });
        }
        // sid_bits <= 32 and usize is 64 bits.
        Ok(idx as usize)
    }

    /// Makes sure the STE of `sid` exists: in a 2-level table, allocates the
    /// L2 array (all STEs abort) and installs its L1STD, then issues
    /// `invalidate(CMD_CFGI_STE with Leaf == 0)` (5.1.1: the non-leaf form
    /// invalidates cached L1STDs). Returns whether anything was installed.
    pub fn ensure<F: DmaFrames + ?Sized, E>(
        &mut self,
        frames: &mut F,
        sid: StreamId,
        mut invalidate: impl FnMut(&Command) -> Result<(), E>,
    ) -> Result<bool, StrtabError<E>> {
        let idx = self.check_sid(sid)?;
        let StrtabFormat::TwoLevel { split } = self.format else {
            return Ok(false);
        };
        let l1 = idx >> split;
        if LocalRegisterCopy::<u64, L1STD::Register>::new(self.base.read(l1)).read(L1STD::SPAN) != 0 {
            return Ok(false);
        }
        let count = 1usize << split;
        let size = count * STE_SIZE;
        let l2 = DmaRegion::alloc(frames, size, size, self.coherent).map_err(StrtabError::OutOfMemory)?;
        for i in 0..count {
            l2.write(i * STE_WORDS, ABORT_WORD0);
        }
        l2.sync_for_device(0, l2.words());
        let mut desc = LocalRegisterCopy::<u64, L1STD::Register>::new(0);
        desc.write(L1STD::SPAN.val(u64::from(split) + 1) + L1STD::L2PTR.val(l2.pa().0 >> 6));
        let Some(shadow) = &self.shadow else {
            return Err(StrtabError::Corrupt { sid });
        };
        shadow.write_ptr(l1, l2.into_raw());
        // The L2 array must be observable before the descriptor that makes it
        // reachable (3.21.3: structures are only fetched through valid pointers).
        dsb_st();
        self.base.write(l1, desc.get());
        self.base.sync_for_device(l1, 1);
        dsb_st();
        invalidate(&Command::CfgiSte { sid, leaf: false }).map_err(StrtabError::Invalidate)?;
        Ok(true)
    }

    /// The memory holding the STE of `sid` and its first word index, or
    /// `None` if its L2 array is not allocated.
    fn locate<E>(&self, sid: StreamId) -> Result<Option<(RegionRef<'_>, usize)>, StrtabError<E>> {
        let idx = self.check_sid(sid)?;
        match self.format {
            StrtabFormat::Linear => Ok(Some((RegionRef::Borrowed(&self.base), idx * STE_WORDS))),
            StrtabFormat::TwoLevel { split } => {
                let l1 = idx >> split;
                let desc = LocalRegisterCopy::<u64, L1STD::Register>::new(self.base.read(l1));
                if desc.read(L1STD::SPAN) == 0 {
                    return Ok(None);
                }
                let va =
                    self.shadow.as_ref().and_then(|s| s.read_ptr(l1)).ok_or(StrtabError::Corrupt { sid })?;
                let pa = PhysAddr(desc.read(L1STD::L2PTR) << 6);
                let words = (1usize << split) * STE_WORDS;
                // SAFETY: `va` was stored by `ensure` from `into_raw` of the L2
                // region of `words` words at `pa` (the L1STD written with it);
                // that region is never freed and is only used through `self`,
                // which the caller borrows for the returned handle's lifetime.
                let l2 = unsafe { DmaRegion::from_raw(pa, va, words, self.base.cache_ops()) };
                let off = (idx & ((1 << split) - 1)) * STE_WORDS;
                Ok(Some((RegionRef::Owned(l2), off)))
            }
        }
    }

    /// The current words of the STE of `sid` (`None`: L2 not allocated, the
    /// StreamID is invalid to the SMMU).
    pub fn read<E>(&self, sid: StreamId) -> Result<Option<[u64; 8]>, StrtabError<E>> {
        Ok(self.locate(sid)?.map(|(r, first)| r.get().read_words(first)))
    }

    /// Writes the STE of `sid` following the update procedure of
    /// [`crate::update`]; `invalidate` issues the given CMD_CFGI_STE plus a
    /// CMD_SYNC and waits for it. Allocates the L2 array first if needed.
    /// The STE is not checked against the SMMU here: see [`Ste::check`].
    pub fn write<F: DmaFrames + ?Sized, E>(
        &mut self,
        frames: &mut F,
        sid: StreamId,
        ste: &Ste,
        mut invalidate: impl FnMut(&Command) -> Result<(), E>,
    ) -> Result<UpdatePath, StrtabError<E>> {
        self.ensure(frames, sid, &mut invalidate)?;
        let (region, first) = self.locate(sid)?.ok_or(StrtabError::Corrupt { sid })?;
        let mut slot = SteSlot { region: region.get(), first };
        let cfgi = Command::CfgiSte { sid, leaf: true };
        update_entry::<SteKind, _, E>(&mut slot, &ste.encode(), || invalidate(&cfgi))
            .map_err(StrtabError::Invalidate)
    }
}

/// A borrowed table region, or a handle rebuilt from the shadow table.
enum RegionRef<'a> {
    Borrowed(&'a DmaRegion),
    Owned(DmaRegion),
}

impl RegionRef<'_> {
    fn get(&self) -> &DmaRegion {
        match self {
            Self::Borrowed(r) => r,
            Self::Owned(r) => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::{AddrSize, Granule};
    use crate::ids::Vmid;
    use crate::ste::Stage2Cfg;
    use crate::testing::HeapFrames;
    use std::vec::Vec;

    type R<T> = Result<T, StrtabError<()>>;

    fn s2() -> Ste {
        Ste::stage2(
            Stage2Cfg::new(Vmid(7), PhysAddr(0x8000_0000), 40, Granule::K4, 1, AddrSize::Bits44).unwrap(),
        )
    }

    #[test]
    fn l1std_bits_match_spec() {
        // Span [4:0], L2Ptr [55:6].
        let mut d = LocalRegisterCopy::<u64, L1STD::Register>::new(0);
        d.write(L1STD::SPAN.val(9) + L1STD::L2PTR.val(0x4012_4000 >> 6));
        assert_eq!(d.get(), 0x4012_4000 | 9);
    }

    #[test]
    fn linear_table_starts_all_abort() {
        let mut frames = HeapFrames::new(1 << 20);
        let t: StreamTable = StreamTable::new::<_, ()>(&mut frames, StrtabFormat::Linear, 6, true).unwrap();
        assert!(t.base_pa().is_aligned(64 << 6), "aligned to table size");
        for sid in 0..64 {
            let r: R<_> = t.read(StreamId(sid));
            assert_eq!(r.unwrap(), Some(Ste::abort().encode()));
        }
        // FMT [17:16] = 0 linear, LOG2SIZE [5:0].
        assert_eq!(t.base_cfg_register(), 6);
        // RA bit 62, ADDR [55:6].
        assert_eq!(t.base_register(), t.base_pa().0 | (1 << 62));
    }

    #[test]
    fn sid_above_sidsize_is_refused() {
        let mut frames = HeapFrames::new(1 << 20);
        let mut t = StreamTable::new::<_, ()>(&mut frames, StrtabFormat::Linear, 4, true).unwrap();
        let r: R<_> = t.read(StreamId(16));
        assert_eq!(r, Err(StrtabError::SidOutOfRange { sid: StreamId(16), sid_bits: 4 }));
        let r = t.write::<_, ()>(&mut frames, StreamId(1 << 20), &s2(), |_| Ok(()));
        assert_eq!(r, Err(StrtabError::SidOutOfRange { sid: StreamId(1 << 20), sid_bits: 4 }));
    }

    #[test]
    fn two_level_lazily_allocates_spans() {
        let mut frames = HeapFrames::new(1 << 22);
        let mut t =
            StreamTable::new::<_, ()>(&mut frames, StrtabFormat::TwoLevel { split: 8 }, 16, true).unwrap();
        // FMT = 1, SPLIT [10:6] = 8, LOG2SIZE = 16.
        assert_eq!(t.base_cfg_register(), (1 << 16) | (8 << 6) | 16);
        let r: R<_> = t.read(StreamId(0x1234));
        assert_eq!(r, Ok(None), "no L2 yet: Span == 0");
        let mut cmds = Vec::new();
        let path = t
            .write::<_, ()>(&mut frames, StreamId(0x1234), &s2(), |c| {
                cmds.push(*c);
                Ok(())
            })
            .unwrap();
        assert_eq!(path, UpdatePath::Install);
        // L1STD install (non-leaf CFGI), then the two STE steps (leaf).
        assert_eq!(
            cmds,
            [
                Command::CfgiSte { sid: StreamId(0x1234), leaf: false },
                Command::CfgiSte { sid: StreamId(0x1234), leaf: true },
                Command::CfgiSte { sid: StreamId(0x1234), leaf: true },
            ]
        );
        // L1 index 0x12: Span = SPLIT + 1 = 9, 2^(9-1) = 256 STEs.
        let desc = LocalRegisterCopy::<u64, L1STD::Register>::new(t.base.read(0x12));
        assert_eq!(desc.read(L1STD::SPAN), 9);
        let l2 = desc.read(L1STD::L2PTR) << 6;
        assert_eq!(l2 % (256 * 64), 0, "L2 array aligned to its size");
        // The rest of the span is abort; the other spans stay invalid.
        let r: R<_> = t.read(StreamId(0x1200));
        assert_eq!(r, Ok(Some(Ste::abort().encode())));
        let r: R<_> = t.read(StreamId(0x1234));
        assert_eq!(r, Ok(Some(s2().encode())));
        let r: R<_> = t.read(StreamId(0x1334));
        assert_eq!(r, Ok(None));
        // The STE bytes sit at L2Ptr + 0x34 * 64, as the SMMU computes it.
        let bytes = frames.bytes(PhysAddr(l2 + 0x34 * 64), 8);
        assert_eq!(u64::from_le_bytes(bytes.try_into().unwrap()), s2().encode()[0]);
        // A second StreamID in the same span needs no new L1STD.
        let mut cmds = Vec::new();
        t.write::<_, ()>(&mut frames, StreamId(0x1235), &Ste::bypass(), |c| {
            cmds.push(*c);
            Ok(())
        })
        .unwrap();
        assert!(cmds.iter().all(|c| *c == Command::CfgiSte { sid: StreamId(0x1235), leaf: true }));
    }

    #[test]
    fn bad_geometry() {
        let mut frames = HeapFrames::new(1 << 16);
        let r = StreamTable::new::<_, ()>(&mut frames, StrtabFormat::TwoLevel { split: 7 }, 16, true);
        assert!(matches!(r, Err(StrtabError::BadGeometry)));
        let r = StreamTable::new::<_, ()>(&mut frames, StrtabFormat::TwoLevel { split: 10 }, 8, true);
        assert!(matches!(r, Err(StrtabError::BadGeometry)));
    }

    #[test]
    fn out_of_memory_is_an_error() {
        let mut frames = HeapFrames::new(4096);
        let r = StreamTable::new::<_, ()>(&mut frames, StrtabFormat::Linear, 16, true);
        assert!(matches!(r, Err(StrtabError::OutOfMemory(_))));
    }
}
