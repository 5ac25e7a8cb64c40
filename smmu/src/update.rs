//! The configuration structure update procedure (3.21.3.1), for STEs and CDs.
//!
//! The SMMU may fetch a reachable structure at any time and read its 64-bit
//! words in any order; only single 64-bit stores are atomic. So a structure
//! that the SMMU may be using must never pass through a state mixing old and
//! new words. [`update_entry`] orders the stores:
//!
//! 1. If the structure is live (the SMMU uses words beyond word 0) and more
//!    than one word changes, or a word other than word 0 changes together
//!    with word 0: first *break* it by storing a word 0 that makes the other
//!    words unused (STE: V=1 Config=abort; CD: V=0), DSB, CMD_CFGI + CMD_SYNC.
//!    A live structure where exactly one word changes takes one atomic store
//!    instead ("hitless", 3.21.3: a field within one single-copy-atomic span
//!    can be altered without making the structure invalid).
//! 2. Store every changed word except word 0, DSB, CMD_CFGI + CMD_SYNC: the
//!    SMMU sees only word 0's old (unused-others) state or the complete new
//!    words, and no stale copy survives in its configuration cache.
//! 3. Store word 0, DSB, CMD_CFGI + CMD_SYNC: the new structure takes effect
//!    in one atomic store and is in use when this returns.
//!
//! The stores go through an [`EntrySlot`] and the invalidations through a
//! closure, so the sequence is checked on the host by recording both.

/// A 64-byte structure (eight words) in SMMU-visible memory.
pub trait EntrySlot {
    /// Reads the current words.
    fn read(&self) -> [u64; 8];
    /// Stores one word (a single 64-bit single-copy-atomic store).
    fn write_word(&mut self, idx: usize, value: u64);
    /// Makes the stores so far observable by the SMMU: cache clean when the
    /// SMMU is not coherent, then DSB (3.21.3.1 steps 2 and 5).
    fn publish(&mut self);
}

/// What distinguishes STE and CD for the update procedure.
pub trait EntryKind {
    /// Word 0 of the break state: the SMMU may fetch the structure but does
    /// not use its other words.
    const BREAK_WORD0: u64;
    /// Whether a structure with this word 0 makes the SMMU use its other words.
    fn is_live(word0: u64) -> bool;
}

/// Stream Table Entries: break to V=1, Config=abort (silent aborts, no
/// C_BAD_STE events while the entry is being rewritten).
#[derive(Debug)]
pub struct SteKind;

impl EntryKind for SteKind {
    const BREAK_WORD0: u64 = crate::ste::ABORT_WORD0;
    fn is_live(word0: u64) -> bool {
        crate::ste::word0_is_live(word0)
    }
}

/// Context Descriptors: break to V=0 (the spec's procedure to make a CD
/// invalid).
#[derive(Debug)]
pub struct CdKind;

impl EntryKind for CdKind {
    const BREAK_WORD0: u64 = 0;
    fn is_live(word0: u64) -> bool {
        crate::cd::word0_is_valid(word0)
    }
}

/// Which path an update took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdatePath {
    /// Memory already held the new words: nothing written, nothing invalidated.
    Unchanged,
    /// One word changed in a live structure: one store, one invalidation.
    Hitless,
    /// The structure was not live: other words, then word 0.
    Install,
    /// Live structure with several changed words: break, other words, word 0.
    BreakBeforeMake,
}

/// Updates the structure in `slot` to `new` following 3.21.3.1.
/// `invalidate` issues CMD_CFGI_STE/CD for the structure plus CMD_SYNC and
/// waits for completion; its error aborts the sequence (the structure is then
/// left broken or partially written but never live with mixed words).
pub fn update_entry<K: EntryKind, S: EntrySlot + ?Sized, E>(
    slot: &mut S,
    new: &[u64; 8],
    mut invalidate: impl FnMut() -> Result<(), E>,
) -> Result<UpdatePath, E> {
    let old = slot.read();
    let changed: u8 = (0..8).filter(|&i| old[i] != new[i]).fold(0, |m, i| m | (1 << i));
    if changed == 0 {
        return Ok(UpdatePath::Unchanged);
    }
    let live = K::is_live(old[0]);
    let mut word0 = old[0];
    let mut path = UpdatePath::Install;
    if live {
        if changed.count_ones() == 1 {
            let idx = changed.trailing_zeros() as usize;
            slot.write_word(idx, new[idx]);
            slot.publish();
            invalidate()?;
            return Ok(UpdatePath::Hitless);
        }
        slot.write_word(0, K::BREAK_WORD0);
        slot.publish();
        invalidate()?;
        word0 = K::BREAK_WORD0;
        path = UpdatePath::BreakBeforeMake;
    }
    if changed & !1 != 0 {
        for (i, &word) in new.iter().enumerate().skip(1) {
            if changed & (1 << i) != 0 {
                slot.write_word(i, word);
            }
        }
        slot.publish();
        invalidate()?;
    }
    if word0 != new[0] {
        slot.write_word(0, new[0]);
        slot.publish();
        invalidate()?;
    }
    Ok(path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ste::{Stage2Cfg, Ste};
    use core::cell::RefCell;
    use std::vec::Vec;

    /// One recorded step of an update.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Step {
        Write(usize, u64),
        Publish,
        Invalidate,
    }

    /// A slot that records its stores and barriers into a shared log.
    pub(crate) struct Recorder<'a> {
        pub words: [u64; 8],
        pub log: &'a RefCell<Vec<Step>>,
    }

    impl EntrySlot for Recorder<'_> {
        fn read(&self) -> [u64; 8] {
            self.words
        }
        fn write_word(&mut self, idx: usize, value: u64) {
            self.words[idx] = value;
            self.log.borrow_mut().push(Step::Write(idx, value));
        }
        fn publish(&mut self) {
            self.log.borrow_mut().push(Step::Publish);
        }
    }

    fn run<K: EntryKind>(old: [u64; 8], new: [u64; 8]) -> (UpdatePath, Vec<Step>) {
        let log = RefCell::new(Vec::new());
        let mut slot = Recorder { words: old, log: &log };
        let path = update_entry::<K, _, ()>(&mut slot, &new, || {
            log.borrow_mut().push(Step::Invalidate);
            Ok(())
        })
        .unwrap();
        assert_eq!(slot.words, new, "memory ends up holding the new entry");
        (path, log.into_inner())
    }

    fn s2(vmid: u16, ttb: u64) -> Ste {
        Ste::stage2(
            Stage2Cfg::new(
                crate::ids::Vmid(vmid),
                iommu_common::addr::PhysAddr(ttb),
                40,
                crate::caps::Granule::K4,
                1,
                crate::caps::AddrSize::Bits44,
            )
            .unwrap(),
        )
    }

    use Step::*;

    #[test]
    fn install_over_abort_writes_other_words_first() {
        let new = s2(1, 0x10_0000).encode();
        let (path, log) = run::<SteKind>(Ste::abort().encode(), new);
        assert_eq!(path, UpdatePath::Install);
        assert_eq!(
            log,
            [
                Write(1, new[1]),
                Write(2, new[2]),
                Write(3, new[3]),
                Publish,
                Invalidate,
                Write(0, new[0]),
                Publish,
                Invalidate,
            ]
        );
    }

    #[test]
    fn install_over_invalid_entry() {
        let new = s2(1, 0x10_0000).encode();
        let (path, log) = run::<SteKind>([0; 8], new);
        assert_eq!(path, UpdatePath::Install);
        assert_eq!(log.last(), Some(&Invalidate));
        assert_eq!(log[log.len() - 3], Write(0, new[0]), "word 0 is stored last");
    }

    #[test]
    fn live_entry_with_several_changes_is_broken_first() {
        let old = s2(1, 0x10_0000).encode();
        let new = s2(2, 0x20_0000).encode(); // VMID (word 2) and S2TTB (word 3)
        let (path, log) = run::<SteKind>(old, new);
        assert_eq!(path, UpdatePath::BreakBeforeMake);
        assert_eq!(
            log,
            [
                Write(0, 1), // V=1, Config=abort
                Publish,
                Invalidate,
                Write(2, new[2]),
                Write(3, new[3]),
                Publish,
                Invalidate,
                Write(0, new[0]),
                Publish,
                Invalidate,
            ]
        );
    }

    #[test]
    fn single_word_change_is_hitless() {
        let old = s2(1, 0x10_0000).encode();
        let new = s2(1, 0x20_0000).encode(); // only S2TTB, word 3
        let (path, log) = run::<SteKind>(old, new);
        assert_eq!(path, UpdatePath::Hitless);
        assert_eq!(log, [Write(3, new[3]), Publish, Invalidate]);
        // Live to bypass changes word 0 (Config) and words 1-3.
        let (path, _) = run::<SteKind>(old, Ste::bypass().encode());
        assert_eq!(path, UpdatePath::BreakBeforeMake);
    }

    #[test]
    fn decommission_to_abort() {
        let old = s2(1, 0x10_0000).encode();
        let (path, log) = run::<SteKind>(old, Ste::abort().encode());
        assert_eq!(path, UpdatePath::BreakBeforeMake);
        // The break word already is the final word 0: it is not stored twice.
        assert_eq!(
            log,
            [Write(0, 1), Publish, Invalidate, Write(1, 0), Write(2, 0), Write(3, 0), Publish, Invalidate,]
        );
    }

    #[test]
    fn unchanged_does_nothing() {
        let w = s2(1, 0x10_0000).encode();
        assert_eq!(run::<SteKind>(w, w), (UpdatePath::Unchanged, Vec::new()));
    }

    #[test]
    fn invalidation_failure_stops_the_sequence() {
        let old = s2(1, 0x10_0000).encode();
        let new = s2(2, 0x20_0000).encode();
        let log = RefCell::new(Vec::new());
        let mut r = Recorder { words: old, log: &log };
        let e = update_entry::<SteKind, _, &str>(&mut r, &new, || Err("CMD_SYNC timed out"));
        assert_eq!(e, Err("CMD_SYNC timed out"));
        // Broken (abort) and nothing else written: never live with mixed words.
        assert_eq!(r.words[0], 1);
        assert_eq!(&r.words[1..], &old[1..]);
    }
}
