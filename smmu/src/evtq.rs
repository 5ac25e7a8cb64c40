//! The Event queue (3.5, 7.2, 7.4): the SMMU produces 32-byte records and
//! SMMU_EVENTQ_PROD (register page 1); software consumes them and writes
//! SMMU_EVENTQ_CONS.
//!
//! Overflow: when a record is lost to a full queue the SMMU toggles
//! EVENTQ_PROD.OVFLG; the condition holds while OVFLG != EVENTQ_CONS.OVACKFLG
//! and is acknowledged by copying OVFLG into OVACKFLG (7.4). QEMU never
//! toggles OVFLG: it raises SMMU_GERROR.EVENTQ_ABT_ERR for a full queue
//! instead, which [`crate::gerror`] reports.

use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::LocalRegisterCopy;

use crate::dma::{DmaFrames, OutOfMemory};
use crate::event::Event;
pub use crate::queue::DrainReport;
use crate::queue::{Consumer, Ring};
use crate::regs::{SmmuPage0, SmmuPage1, EVENTQ_BASE};

/// The Event queue.
#[derive(Debug)]
pub struct EventQueue {
    q: Consumer<4>,
}

impl EventQueue {
    /// Allocates a queue of 2^`log2size` (at most 2^19) records, aligned to its size.
    pub fn new<F: DmaFrames + ?Sized>(
        frames: &mut F,
        log2size: u8,
        coherent: bool,
    ) -> Result<Self, OutOfMemory> {
        Ok(Self { q: Consumer::new(frames, log2size, coherent)? })
    }

    /// The ring geometry.
    pub fn ring(&self) -> Ring {
        self.q.ring()
    }

    /// The value for SMMU_EVENTQ_BASE: ADDR, LOG2SIZE, write-allocate hint.
    pub fn base_register(&self) -> u64 {
        let mut r = LocalRegisterCopy::<u64, EVENTQ_BASE::Register>::new(0);
        r.write(
            EVENTQ_BASE::ADDR.val(self.q.pa().0 >> 5)
                + EVENTQ_BASE::LOG2SIZE.val(u64::from(self.q.ring().log2size()))
                + EVENTQ_BASE::WA::SET,
        );
        r.get()
    }

    /// Programs base, PROD and CONS; only while SMMU_CR0.EVENTQEN == 0.
    pub(crate) fn program(&mut self, page0: &SmmuPage0, page1: &SmmuPage1) {
        page0.eventq_base.set(self.base_register());
        page1.eventq_prod.set(0);
        page1.eventq_cons.set(0);
        self.q.reset();
    }

    /// Hands every queued record to `f`, oldest first, then releases them.
    /// Bounded: at most two queue-fulls per call (`more` says whether records
    /// remain), so an event storm cannot hold the caller forever.
    pub fn drain(&mut self, page1: &SmmuPage1, mut f: impl FnMut(&Event)) -> DrainReport {
        self.q.drain(|| page1.eventq_prod.get(), |c| page1.eventq_cons.set(c), |r| f(&Event::decode(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::regs::CR0;
    use crate::testing::{Bench, ModelCfg};
    use std::vec::Vec;

    fn record(sid: u32, addr: u64) -> [u64; 4] {
        [0x10 | (u64::from(sid) << 32), 1 << 35, addr, 0]
    }

    fn setup(log2: u8) -> (Bench, EventQueue) {
        let bench = Bench::new(ModelCfg::default());
        let mut frames = bench.frames();
        let mut q = EventQueue::new(&mut frames, log2, true).unwrap();
        let regs = bench.regs();
        q.program(regs.page0(), regs.page1());
        regs.page0().cr0.write(CR0::EVENTQEN::SET);
        (bench, q)
    }

    #[test]
    fn base_register_layout() {
        let (_bench, q) = setup(3);
        // ADDR [55:5], LOG2SIZE [4:0], WA [62].
        assert_eq!(q.base_register(), q.q.pa().0 | 3 | (1 << 62));
    }

    #[test]
    fn drains_in_order_across_the_wrap() {
        let (bench, mut q) = setup(2); // 4 records
        let regs = bench.regs();
        let mut seen = Vec::new();
        for round in 0..3u64 {
            for i in 0..3 {
                assert!(bench.model().inject_event(record(1, round * 0x10 + i)));
            }
            let r = q.drain(regs.page1(), |e| seen.push(e.fault().unwrap().input_addr.0));
            assert_eq!(r, DrainReport { records: 3, overflowed: false, more: false });
        }
        assert_eq!(seen, [0, 1, 2, 0x10, 0x11, 0x12, 0x20, 0x21, 0x22]);
        // CONS caught up with PROD, wrap flag included.
        assert_eq!(regs.page1().eventq_cons.get(), regs.page1().eventq_prod.get());
    }

    #[test]
    fn overflow_is_detected_and_acknowledged() {
        let (bench, mut q) = setup(2);
        let regs = bench.regs();
        // Five records into four slots: the fifth is lost, OVFLG toggles.
        for i in 0..5 {
            bench.model().inject_event(record(2, i));
        }
        let mut n = 0;
        let r = q.drain(regs.page1(), |_| n += 1);
        assert_eq!(r, DrainReport { records: 4, overflowed: true, more: false });
        // Acknowledged: OVACKFLG == OVFLG.
        assert_eq!(regs.page1().eventq_cons.get() >> 31, regs.page1().eventq_prod.get() >> 31);
        bench.model().inject_event(record(2, 9));
        let r = q.drain(regs.page1(), |_| {});
        assert_eq!(r, DrainReport { records: 1, overflowed: false, more: false });
    }

    #[test]
    fn qemu_reports_a_full_queue_as_gerror() {
        let bench = Bench::new(ModelCfg { qemu_evtq_full: true, ..ModelCfg::default() });
        let mut frames = bench.frames();
        let mut q = EventQueue::new(&mut frames, 1, true).unwrap();
        let regs = bench.regs();
        q.program(regs.page0(), regs.page1());
        regs.page0().cr0.write(CR0::EVENTQEN::SET);
        for i in 0..3 {
            bench.model().inject_event(record(3, i));
        }
        let r = q.drain(regs.page1(), |_| {});
        assert_eq!(r, DrainReport { records: 2, overflowed: false, more: false });
        let active = crate::gerror::active(regs.page0());
        assert!(active.contains(crate::gerror::GlobalErrors::EVENTQ_ABT_ERR));
    }

    #[test]
    fn garbage_prod_is_clamped() {
        let (bench, mut q) = setup(2);
        let regs = bench.regs();
        // A PROD far beyond CONS (inconsistent): at most one queue-full is read.
        bench.model().poke_evtq_prod(0b111);
        let mut n = 0;
        let r = q.drain(regs.page1(), |e| {
            assert!(matches!(e, Event::Unknown { code: 0, .. }));
            n += 1;
        });
        assert!(r.records <= 8 && n == r.records);
    }
}
