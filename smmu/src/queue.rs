//! Circular queue index arithmetic (3.5).
//!
//! SMMU queues are rings of 2^LOG2SIZE entries. PROD.WR and CONS.RD hold an
//! index of LOG2SIZE bits followed by a wrap flag: equal indices with equal
//! wrap flags mean empty, equal indices with different wrap flags mean full.

use iommu_common::addr::PhysAddr;

use crate::dma::{dsb_ld, dsb_sy, DmaFrames, DmaRegion, OutOfMemory};

/// Ring geometry of one queue: pure arithmetic, no memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    log2size: u8,
}

impl Ring {
    /// The largest queue the architecture allows: 2^19 entries.
    pub const MAX_LOG2SIZE: u8 = 19;

    /// A ring of 2^`log2size` entries, or `None` above 2^19.
    pub const fn new(log2size: u8) -> Option<Self> {
        if log2size <= Self::MAX_LOG2SIZE {
            Some(Self { log2size })
        } else {
            None
        }
    }

    /// A ring of 2^min(`log2size`, 19) entries.
    pub const fn clamped(log2size: u8) -> Self {
        let l = if log2size > Self::MAX_LOG2SIZE { Self::MAX_LOG2SIZE } else { log2size };
        Self { log2size: l }
    }

    /// log2 of the number of entries.
    pub const fn log2size(self) -> u8 {
        self.log2size
    }

    /// Number of entries.
    pub const fn entries(self) -> u32 {
        1 << self.log2size
    }

    /// Mask of the index bits plus the wrap bit: the meaningful part of a
    /// PROD.WR or CONS.RD value.
    pub const fn mask(self) -> u32 {
        (self.entries() << 1) - 1
    }

    /// The slot a pointer refers to.
    pub const fn index(self, p: u32) -> u32 {
        p & (self.entries() - 1)
    }

    /// The wrap flag of a pointer.
    pub const fn wrap(self, p: u32) -> bool {
        p & self.entries() != 0
    }

    /// Whether the queue is empty.
    pub const fn is_empty(self, prod: u32, cons: u32) -> bool {
        (prod ^ cons) & self.mask() == 0
    }

    /// Whether the queue is full.
    pub const fn is_full(self, prod: u32, cons: u32) -> bool {
        (prod ^ cons) & self.mask() == self.entries()
    }

    /// Entries between `cons` and `prod`. For consistent pointers this is at
    /// most [`Self::entries`]; inconsistent ones (read from a misbehaving
    /// device) can give more, which callers clamp.
    pub const fn used(self, prod: u32, cons: u32) -> u32 {
        prod.wrapping_sub(cons) & self.mask()
    }

    /// Free entries (0 if the pointers are inconsistent).
    pub const fn free(self, prod: u32, cons: u32) -> u32 {
        self.entries().saturating_sub(self.used(prod, cons))
    }

    /// `p` advanced by `n` entries, wrap flag included.
    pub const fn advance(self, p: u32, n: u32) -> u32 {
        p.wrapping_add(n) & self.mask()
    }

    /// Whether the consumer at `cons` has consumed the entry at `pos`, given
    /// that `pos` lies between the consumer and the producer at `prod`
    /// (the producer's view when it queued `pos`).
    pub const fn consumed(self, prod: u32, cons: u32, pos: u32) -> bool {
        self.used(prod, cons) < self.used(prod, pos)
    }
}

/// What a drain of an output queue found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DrainReport {
    /// Records handed to the callback.
    pub records: usize,
    /// Records were lost since the last drain (overflow), now acknowledged.
    pub overflowed: bool,
    /// The drain stopped at its bound with records still queued.
    pub more: bool,
}

/// PROD.OVFLG / CONS.OVACKFLG: bit 31 of the Event and PRI queue pointers.
const OVERFLOW_FLAG: u32 = 1 << 31;

/// The consumer side of a queue the SMMU produces into (the Event queue and
/// the PRI queue): records of `WORDS` 64-bit words, PROD written by the
/// SMMU, CONS by us. Both queues' PROD/CONS share one layout: WR/RD in the
/// low bits, OVFLG/OVACKFLG in bit 31 (6.3.27-6.3.30).
///
/// Overflow: when a record is lost to a full queue the SMMU toggles
/// PROD.OVFLG; the condition holds while OVFLG != CONS.OVACKFLG and is
/// acknowledged by copying OVFLG into OVACKFLG (7.4, 8.1).
#[derive(Debug)]
pub(crate) struct Consumer<const WORDS: usize> {
    ring: Ring,
    mem: DmaRegion,
    /// Our CONS.RD (index and wrap).
    cons: u32,
    /// Our CONS.OVACKFLG.
    ovack: bool,
}

impl<const WORDS: usize> Consumer<WORDS> {
    /// Allocates 2^`log2size` (at most 2^19) records, aligned to the
    /// queue's size (at least 32 bytes, the base register's granularity).
    pub(crate) fn new<F: DmaFrames + ?Sized>(
        frames: &mut F,
        log2size: u8,
        coherent: bool,
    ) -> Result<Self, OutOfMemory> {
        let ring = Ring::clamped(log2size);
        let size = (ring.entries() as usize * WORDS * 8).max(32);
        let mem = DmaRegion::alloc(frames, size, size, coherent)?;
        Ok(Self { ring, mem, cons: 0, ovack: false })
    }

    /// The ring geometry.
    pub(crate) fn ring(&self) -> Ring {
        self.ring
    }

    /// Where the records live.
    pub(crate) fn pa(&self) -> PhysAddr {
        self.mem.pa()
    }

    /// The record memory (tests write records into it as the SMMU would).
    #[cfg(test)]
    pub(crate) fn mem(&self) -> &DmaRegion {
        &self.mem
    }

    /// Forgets the consumer state; the caller zeroes PROD and CONS.
    pub(crate) fn reset(&mut self) {
        self.cons = 0;
        self.ovack = false;
    }

    /// Hands every queued record to `f`, oldest first, then releases them
    /// by writing CONS. Bounded: at most two queue-fulls per call (`more`
    /// says whether records remain), so a fault storm cannot hold the
    /// caller forever.
    pub(crate) fn drain(
        &mut self,
        read_prod: impl Fn() -> u32,
        write_cons: impl Fn(u32),
        mut f: impl FnMut([u64; WORDS]),
    ) -> DrainReport {
        let mut report = DrainReport::default();
        let budget = 2 * self.ring.entries() as usize;
        loop {
            let prod_reg = read_prod();
            let prod = prod_reg & self.ring.mask();
            let ovflg = prod_reg & OVERFLOW_FLAG != 0;
            if ovflg != self.ovack {
                report.overflowed = true;
                self.ovack = ovflg;
            }
            // Records up to PROD are visible once PROD is (3.5.2); do not read
            // them before the PROD read.
            dsb_ld();
            // A misbehaving device could report more than a queue-full.
            let avail = self.ring.used(prod, self.cons).min(self.ring.entries()) as usize;
            let n = avail.min(budget - report.records);
            for _ in 0..n {
                let first = self.ring.index(self.cons) as usize * WORDS;
                self.mem.sync_for_cpu(first, WORDS);
                f(self.mem.read_words::<WORDS>(first));
                self.cons = self.ring.advance(self.cons, 1);
            }
            report.records += n;
            // The reads of the records must be complete before the SMMU may
            // overwrite them.
            dsb_sy();
            write_cons(self.cons | if self.ovack { OVERFLOW_FLAG } else { 0 });
            if n == 0 || report.records >= budget {
                let pending = !self.ring.is_empty(read_prod() & self.ring.mask(), self.cons);
                report.more = (n != 0 && n < avail) || pending;
                return report;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn empty_and_full_use_the_wrap_bit() {
        let r = Ring::new(2).unwrap(); // 4 entries, wrap flag at bit 2
        assert_eq!(r.mask(), 0b111);
        assert!(r.is_empty(0, 0));
        assert!(r.is_empty(0b100, 0b100));
        assert!(r.is_full(0b100, 0b000), "same index, different wrap");
        assert!(r.is_full(0b011, 0b111));
        assert!(!r.is_full(0b011, 0b000));
        assert_eq!(r.used(0b001, 0b110), 3);
        assert_eq!(r.free(0b001, 0b110), 1);
        assert_eq!(r.advance(0b011, 1), 0b100, "index wraps, flag toggles");
        assert_eq!(r.advance(0b111, 1), 0b000);
        assert_eq!(r.index(0b110), 2);
        assert!(r.wrap(0b110));
    }

    #[test]
    fn one_entry_queue() {
        // QS == 0: zero index bits, the wrap flag is bit 0 (6.3.170).
        let r = Ring::new(0).unwrap();
        assert_eq!(r.entries(), 1);
        assert!(r.is_full(1, 0));
        assert_eq!(r.index(1), 0);
        assert_eq!(r.advance(1, 1), 0);
    }

    #[test]
    fn consumed_across_the_wrap() {
        let r = Ring::new(2).unwrap();
        // Producer queued entries at 0b011 and 0b100 (wrapping), prod = 0b101.
        assert!(!r.consumed(0b101, 0b011, 0b100));
        assert!(!r.consumed(0b101, 0b100, 0b100));
        assert!(r.consumed(0b101, 0b101, 0b100));
        assert!(r.consumed(0b101, 0b101, 0b011));
    }

    #[test]
    fn sizes_are_bounded() {
        assert!(Ring::new(19).is_some());
        assert!(Ring::new(20).is_none());
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(256))]

        /// Against a model with unbounded counters: pointers are the counters
        /// modulo 2 * entries.
        #[test]
        fn ring_matches_counter_model(log2 in 0u8..6, ops in proptest::collection::vec((any::<bool>(), 0u32..9), 1..64)) {
            let r = Ring::new(log2).unwrap();
            let n = u64::from(r.entries());
            let (mut produced, mut consumed) = (0u64, 0u64);
            let (mut prod, mut cons) = (0u32, 0u32);
            for (is_prod, k) in ops {
                let k = u64::from(k);
                if is_prod {
                    let k = k.min(n - (produced - consumed));
                    produced += k;
                    prod = r.advance(prod, k as u32);
                } else {
                    let k = k.min(produced - consumed);
                    consumed += k;
                    cons = r.advance(cons, k as u32);
                }
                prop_assert_eq!(u64::from(r.used(prod, cons)), produced - consumed);
                prop_assert_eq!(r.is_empty(prod, cons), produced == consumed);
                prop_assert_eq!(r.is_full(prod, cons), produced - consumed == n);
                prop_assert_eq!(u64::from(r.index(prod)), produced % n);
                prop_assert_eq!(r.wrap(prod), (produced / n) % 2 == 1);
            }
        }
    }
}
