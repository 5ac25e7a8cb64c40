//! The PRI queue (chapter 8): PCIe Page Request Interface messages, 16 bytes
//! each, present when SMMU_IDR0.PRI == 1 (QEMU's SMMUv3 has none).

use iommu_common::addr::Iova;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::LocalRegisterCopy;

use crate::dma::{DmaFrames, OutOfMemory};
use crate::ids::{StreamId, SubstreamId};
use crate::queue::{Consumer, DrainReport};
use crate::regs::{SmmuPage0, SmmuPage1, PRIQ_BASE};

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// PRI queue record word 0.
        pub PRI_0 [
            /// StreamID.
            STREAMID OFFSET(0) NUMBITS(32) [],
            /// SubstreamID (PASID).
            SUBSTREAMID OFFSET(32) NUMBITS(20) [],
            /// Privileged.
            PRIV OFFSET(58) NUMBITS(1) [],
            /// Execute.
            EXEC OFFSET(59) NUMBITS(1) [],
            /// Read.
            READ OFFSET(60) NUMBITS(1) [],
            /// Write.
            WRITE OFFSET(61) NUMBITS(1) [],
            /// Last request of the page request group.
            LAST OFFSET(62) NUMBITS(1) [],
            /// SubstreamID valid.
            SSV OFFSET(63) NUMBITS(1) []
        ],
        /// PRI queue record word 1.
        pub PRI_1 [
            /// Page request group index.
            PRGINDEX OFFSET(0) NUMBITS(9) [],
            /// Page address `[63:12]`.
            ADDR OFFSET(12) NUMBITS(52) []
        ]
    ];
}
pub use layout::*;

/// A PRI Page Request (or Stop PASID marker: `last` with no access bits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// Requester.
    pub sid: StreamId,
    /// PASID when SSV == 1.
    pub ssid: Option<SubstreamId>,
    /// Page address.
    pub addr: Iova,
    /// PRGIndex, to answer with CMD_PRI_RESP.
    pub prg_index: u16,
    /// Last request of its group.
    pub last: bool,
    /// Read access requested.
    pub read: bool,
    /// Write access requested.
    pub write: bool,
    /// Execute access requested.
    pub exec: bool,
    /// Privileged access requested.
    pub privileged: bool,
}

impl PageRequest {
    /// Decodes a record (total).
    pub fn decode(record: [u64; 2]) -> Self {
        let w0 = LocalRegisterCopy::<u64, PRI_0::Register>::new(record[0]);
        let w1 = LocalRegisterCopy::<u64, PRI_1::Register>::new(record[1]);
        Self {
            sid: StreamId(w0.read(PRI_0::STREAMID) as u32),
            ssid: if w0.is_set(PRI_0::SSV) {
                SubstreamId::new(w0.read(PRI_0::SUBSTREAMID) as u32)
            } else {
                None
            },
            addr: Iova(w1.read(PRI_1::ADDR) << 12),
            prg_index: w1.read(PRI_1::PRGINDEX) as u16,
            last: w0.is_set(PRI_0::LAST),
            read: w0.is_set(PRI_0::READ),
            write: w0.is_set(PRI_0::WRITE),
            exec: w0.is_set(PRI_0::EXEC),
            privileged: w0.is_set(PRI_0::PRIV),
        }
    }

    /// A Stop PASID marker (LWR == 0b100 with a PASID, chapter 8).
    pub fn is_stop_marker(&self) -> bool {
        self.last && !self.read && !self.write && self.ssid.is_some()
    }
}

/// The PRI queue.
#[derive(Debug)]
pub struct PriQueue {
    q: Consumer<2>,
}

impl PriQueue {
    /// Allocates a queue of 2^`log2size` (at most 2^19) records, aligned to its size.
    pub fn new<F: DmaFrames + ?Sized>(
        frames: &mut F,
        log2size: u8,
        coherent: bool,
    ) -> Result<Self, OutOfMemory> {
        Ok(Self { q: Consumer::new(frames, log2size, coherent)? })
    }

    /// The value for SMMU_PRIQ_BASE.
    pub fn base_register(&self) -> u64 {
        let mut r = LocalRegisterCopy::<u64, PRIQ_BASE::Register>::new(0);
        r.write(
            PRIQ_BASE::ADDR.val(self.q.pa().0 >> 5)
                + PRIQ_BASE::LOG2SIZE.val(u64::from(self.q.ring().log2size()))
                + PRIQ_BASE::WA::SET,
        );
        r.get()
    }

    /// Programs base, PROD and CONS; only while SMMU_CR0.PRIQEN == 0.
    pub(crate) fn program(&mut self, page0: &SmmuPage0, page1: &SmmuPage1) {
        page0.priq_base.set(self.base_register());
        page1.priq_prod.set(0);
        page1.priq_cons.set(0);
        self.q.reset();
    }

    /// Hands queued page requests to `f`, oldest first, releasing them;
    /// bounded like [`crate::evtq::EventQueue::drain`]. On overflow the SMMU
    /// auto-responds to lost requests (8.1); `overflowed` reports it.
    pub fn drain(&mut self, page1: &SmmuPage1, mut f: impl FnMut(&PageRequest)) -> DrainReport {
        self.q.drain(|| page1.priq_prod.get(), |c| page1.priq_cons.set(c), |r| f(&PageRequest::decode(r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_request_layout() {
        // StreamID [31:0], SubstreamID [51:32], Priv 58, Exec 59, Read 60,
        // Write 61, Last 62, SSV 63; PRGIndex [72:64], Address [127:76].
        let w0 = 0x1234 | (0x5 << 32) | (1 << 60) | (1 << 61) | (1 << 62) | (1 << 63);
        let w1 = 0x1ab | 0x7fff_f000;
        let r = PageRequest::decode([w0, w1]);
        assert_eq!(
            r,
            PageRequest {
                sid: StreamId(0x1234),
                ssid: SubstreamId::new(5),
                addr: Iova(0x7fff_f000),
                prg_index: 0x1ab,
                last: true,
                read: true,
                write: true,
                exec: false,
                privileged: false,
            }
        );
        assert!(!r.is_stop_marker());
        let stop = PageRequest::decode([(1 << 62) | (1 << 63), 0]);
        assert!(stop.is_stop_marker());
        let no_pasid = PageRequest::decode([(1 << 62) | (0xfffff << 32), 0]);
        assert_eq!(no_pasid.ssid, None);
        assert!(!no_pasid.is_stop_marker());
    }

    #[test]
    fn drain_from_plain_memory() {
        use crate::testing::{Bench, ModelCfg};
        let bench = Bench::new(ModelCfg::default());
        let mut frames = bench.frames();
        let mut q = PriQueue::new(&mut frames, 2, true).unwrap();
        let regs = bench.regs();
        q.program(regs.page0(), regs.page1());
        // Pretend the SMMU wrote two requests.
        q.q.mem().write_words(0, &[7 | (1 << 60), 0x1000 | 3]);
        q.q.mem().write_words(2, &[7 | (1 << 62), 0x2000 | 3]);
        regs.page1().priq_prod.set(2);
        let mut got = std::vec::Vec::new();
        let r = q.drain(regs.page1(), |p| got.push((p.addr.0, p.last)));
        assert_eq!(r.records, 2);
        assert_eq!(got, [(0x1000, false), (0x2000, true)]);
        assert_eq!(regs.page1().priq_cons.get(), 2);
    }
}
