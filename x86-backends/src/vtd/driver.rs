//! The VT-d driver in legacy mode: probe and bring-up, device attach and
//! detach through context entries, IOTLB invalidation (queued or through
//! registers) and fault handling.
//!
//! ```text
//! let mmio  = unsafe { VtdMmio::new(base, size) };   // the MMIO seam
//! let caps  = mmio.read_caps();
//! let mut vtd = Vtd::probe(mmio, caps, frames, VtdConfig::default())?;
//! let table = SlTable::new(vtd.sl_config(haw)?, pages)?;
//! vtd.attach(sid, did, &SlDomainCfg::of(&table)?)?;
//! table.unmap(iova, len, &mut gather)?;
//! vtd.invalidate_gather(did, &gather)?;             // PSI + wait
//! table.complete(&mut gather)?;
//! vtd.poll_faults(|f| log(f));
//! ```
//!
//! # Bring-up (10.4 / 6.x of the spec, in the order Linux uses)
//!
//! 1. Translation and queued invalidation left on by a previous owner are
//!    turned off (`GCMD_REG.TE`, `QIE`).
//! 2. A zeroed root table (every bus not present: every DMA is blocked,
//!    secure by default) goes to `RTADDR_REG` (TTM = legacy), then
//!    `GCMD_REG.SRTP`, waiting for `GSTS_REG.RTPS`.
//! 3. Stale fault records and `FSTS_REG` bits are cleared. Faults are
//!    polled ([`Vtd::poll_faults`]); `FECTL_REG.IM` stays set.
//! 4. Queued invalidation is enabled when `ECAP_REG.QI` (and not configured
//!    away): `IQT_REG` = 0, `IQA_REG`, `GCMD_REG.QIE`, wait for `QIES`.
//! 5. Global context-cache, then global IOTLB invalidation, waited for.
//! 6. `GCMD_REG.TE`, waiting for `GSTS_REG.TES`.
//!
//! Every `GCMD_REG` write is the current `GSTS_REG` value with the one-shot
//! status bits (RTPS, FLS, WBFS, IRTPS) masked off, plus or minus the one
//! command bit (11.4.4). Every wait is bounded by
//! [`VtdConfig::poll_budget`] reads and fails naming the bit or status that
//! did not acknowledge.

use core::fmt;

use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::pgtable::x86::SlConfig;
use iommu_common::pgtable::IotlbGather;
use tock_registers::interfaces::{Readable, Writeable};

use crate::vtd::caps::{AddressWidth, Capabilities, CapsError, Requirements};
use crate::vtd::context::{ContextEntry, EntryError};
use crate::vtd::dma::{wmb, DmaFrames, DmaRegion, OutOfMemory};
use crate::vtd::fault::{Fault, FaultStatus, FRCD_HI_CLEAR};
use crate::vtd::ids::{DomainId, SourceId};
use crate::vtd::inv_desc::{
    plan_page_invalidation, CcGranularity, FunctionMask, InvDesc, InvWait, IotlbGranularity, Iqa, PsiPolicy,
};
use crate::vtd::inv_reg::{ContextCommand, IotlbCommand};
use crate::vtd::mmio::VtdMmio;
use crate::vtd::regs::IotlbRegs;
use crate::vtd::root::{root_index, RootEntry};

/// GCMD_REG / GSTS_REG bits (11.4.4, 11.4.5).
const TE: u32 = 1 << 31;
const SRTP: u32 = 1 << 30;
const WBF: u32 = 1 << 27;
const QIE: u32 = 1 << 26;
/// The one-shot status bits: RTPS, FLS, WBFS, IRTPS. Written back as 1 they
/// would repeat their command.
const ONE_SHOT: u32 = (1 << 30) | (1 << 29) | (1 << 27) | (1 << 24);

/// Queue size: QS = 0, one 4 KiB page of 256 128-bit descriptors.
const QUEUE_QS: u8 = 0;

/// Faults remembered in [`Vtd::recent_faults`].
pub const FAULT_RING: usize = 8;

/// How the driver invalidates caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvalidationMode {
    /// The invalidation queue (6.5.2), ending each batch with an
    /// invalidation wait descriptor with a status write.
    Queued,
    /// CCMD_REG and IOTLB_REG/IVA_REG (6.5.1).
    Register,
}

/// Driver options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VtdConfig {
    /// `None`: queued when `ECAP_REG.QI`, else registers.
    pub invalidation: Option<InvalidationMode>,
    /// Register reads a wait may take before it fails.
    pub poll_budget: u32,
    /// How ranges become page-selective IOTLB invalidations.
    pub psi: PsiPolicy,
}

impl Default for VtdConfig {
    fn default() -> Self {
        Self { invalidation: None, poll_budget: 1_000_000, psi: PsiPolicy::default() }
    }
}

/// Why a driver operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A bounded wait ran out: names the bit or status that did not
    /// acknowledge (`"GSTS_REG.TES"`, `"invalidation wait status"`, ...).
    Timeout(&'static str),
    /// The unit lacks something the configuration needs.
    Caps(CapsError),
    /// No memory for a table or the queue.
    OutOfMemory(OutOfMemory),
    /// A context entry the unit cannot use.
    Entry(EntryError),
    /// `FSTS_REG.IQE`: the unit refused a descriptor (`IQERCD_REG.IQEI`)
    /// at queue index `head`.
    QueueError {
        /// Invalidation queue error info.
        iqei: u8,
        /// Descriptor index the unit stopped at.
        head: u32,
    },
    /// A request the driver cannot carry out, and why.
    Config(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout(what) => write!(f, "{what} did not acknowledge"),
            Self::Caps(e) => write!(f, "{e}"),
            Self::OutOfMemory(o) => write!(f, "out of DMA memory ({} bytes)", o.size),
            Self::Entry(e) => write!(f, "context entry: {e}"),
            Self::QueueError { iqei, head } => {
                write!(f, "invalidation queue error {iqei} at descriptor {head}")
            }
            Self::Config(why) => f.write_str(why),
        }
    }
}

impl From<OutOfMemory> for Error {
    fn from(e: OutOfMemory) -> Self {
        Self::OutOfMemory(e)
    }
}

/// What a context entry needs to translate through a second-level table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlDomainCfg {
    /// SLPTPTR: the table root.
    pub root: PhysAddr,
    /// AW: the table's depth.
    pub aw: AddressWidth,
}

impl SlDomainCfg {
    /// The fields for a table of `levels` levels at `root`.
    pub fn new(root: PhysAddr, levels: u8) -> Result<Self, Error> {
        let aw = match levels {
            3 => AddressWidth::Bits39,
            4 => AddressWidth::Bits48,
            5 => AddressWidth::Bits57,
            _ => return Err(Error::Config("second-level tables have 3, 4 or 5 levels")),
        };
        Ok(Self { root, aw })
    }
}

/// What [`Vtd::poll_faults`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultReport {
    /// Fault records read and cleared.
    pub handled: u32,
    /// `FSTS_REG.PFO` was set (faults were lost); it is cleared.
    pub overflow: bool,
}

/// The invalidation queue.
#[derive(Debug)]
struct Queue {
    ring: DmaRegion,
    /// The wait descriptors' status word.
    status: DmaRegion,
    iqa: Iqa,
    /// Next free descriptor index (software tail).
    tail: u32,
    /// Tail as last written to IQT_REG.
    committed: u32,
    /// Status value of the last wait descriptor.
    seq: u32,
    enabled: bool,
}

/// A remapping unit, up and translating in legacy mode.
pub struct Vtd<'r, F: DmaFrames> {
    mmio: VtdMmio<'r>,
    iotlb: Option<&'r IotlbRegs>,
    caps: Capabilities,
    cfg: VtdConfig,
    frames: F,
    root: DmaRegion,
    contexts: [Option<DmaRegion>; 256],
    queue: Option<Queue>,
    mode: InvalidationMode,
    recent: [Option<Fault>; FAULT_RING],
    recent_next: usize,
}

impl<'r, F: DmaFrames> Vtd<'r, F> {
    /// Brings the unit up (see the module documentation): root table set,
    /// caches invalidated, translation on, every device blocked.
    pub fn probe(
        mmio: VtdMmio<'r>,
        caps: Capabilities,
        mut frames: F,
        cfg: VtdConfig,
    ) -> Result<Self, Error> {
        let mode = match cfg.invalidation {
            Some(m) => m,
            None if caps.qi => InvalidationMode::Queued,
            None => InvalidationMode::Register,
        };
        let req = Requirements {
            qi: mode == InvalidationMode::Queued,
            address_width: None,
            min_domains: 16,
            ..Requirements::LEGACY_SECOND_LEVEL
        };
        caps.check(&req).map_err(Error::Caps)?;
        if caps.max_aw().is_none() {
            return Err(Error::Config("CAP_REG.SAGAW offers no second-level width"));
        }
        let iotlb = mmio.iotlb(&caps);
        if iotlb.is_none() {
            return Err(Error::Config("ECAP_REG.IRO points outside the register frame"));
        }
        let coherent = caps.c;
        let root = DmaRegion::alloc(&mut frames, 4096, 4096, coherent)?;
        let mut vtd = Self {
            mmio,
            iotlb,
            caps,
            cfg,
            frames,
            root,
            contexts: core::array::from_fn(|_| None),
            queue: None,
            mode: InvalidationMode::Register,
            recent: [None; FAULT_RING],
            recent_next: 0,
        };
        vtd.bring_up(mode)?;
        Ok(vtd)
    }

    fn bring_up(&mut self, mode: InvalidationMode) -> Result<(), Error> {
        let r = self.mmio.regs();
        if r.gsts.get() & TE != 0 {
            self.gcmd(TE, false, "GSTS_REG.TES (disable)")?;
        }
        if r.gsts.get() & QIE != 0 {
            self.disable_queue()?;
        }
        // Legacy mode: TTM = 00b, the root table's address in 63:12.
        self.root.flush(0, 512);
        wmb();
        r.rtaddr.set(self.root.pa().0);
        self.gcmd(SRTP, true, "GSTS_REG.RTPS")?;
        self.clear_stale_faults();
        if mode == InvalidationMode::Queued {
            self.enable_queue()?;
        }
        self.queue_descs([
            InvDesc::ContextCache(CcGranularity::Global),
            InvDesc::Iotlb { granularity: IotlbGranularity::Global, dr: self.caps.drd, dw: self.caps.dwd },
        ])?;
        self.sync()?;
        self.flush_write_buffer()?;
        self.gcmd(TE, true, "GSTS_REG.TES")?;
        Ok(())
    }

    /// Sets (`on`) or clears one GCMD_REG command bit and waits for its
    /// status bit to follow.
    fn gcmd(&self, bit: u32, on: bool, what: &'static str) -> Result<(), Error> {
        let r = self.mmio.regs();
        let sts = r.gsts.get() & !ONE_SHOT;
        r.gcmd.set(if on { sts | bit } else { sts & !bit });
        self.poll(what, || (r.gsts.get() & bit != 0) == on)
    }

    fn poll(&self, what: &'static str, mut done: impl FnMut() -> bool) -> Result<(), Error> {
        for _ in 0..self.cfg.poll_budget {
            if done() {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        if done() {
            Ok(())
        } else {
            Err(Error::Timeout(what))
        }
    }

    /// `GCMD_REG.WBF` where `CAP_REG.RWBF` asks for it (after table
    /// changes that need no invalidation).
    fn flush_write_buffer(&self) -> Result<(), Error> {
        if !self.caps.rwbf {
            return Ok(());
        }
        let r = self.mmio.regs();
        let sts = r.gsts.get() & !ONE_SHOT;
        r.gcmd.set(sts | WBF);
        self.poll("GSTS_REG.WBFS", || r.gsts.get() & WBF == 0)
    }

    /// The decoded capabilities.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The invalidation path in use.
    pub fn invalidation_mode(&self) -> InvalidationMode {
        self.mode
    }

    /// Physical address of the root table.
    pub fn root_table(&self) -> PhysAddr {
        self.root.pa()
    }

    /// The geometry of second-level tables this unit walks: the widest
    /// `SAGAW` depth, input size up to `MGAW + 1`, output size `haw` (the
    /// DMAR's host address width + 1), large pages as `SLLPS` offers.
    pub fn sl_config(&self, haw: u32) -> Result<SlConfig, Error> {
        let aw = self.caps.max_aw().ok_or(Error::Config("CAP_REG.SAGAW offers no width"))?;
        let levels = aw.levels() as u8;
        let large_2m = self.caps.sllps.m2;
        Ok(SlConfig::new(levels, haw)
            .with_ias(aw.bits().min(self.caps.mgaw()))
            .with_large_pages(large_2m, large_2m && self.caps.sllps.g1))
    }

    // ---- invalidation ----

    fn enable_queue(&mut self) -> Result<(), Error> {
        if self.queue.is_none() {
            let ring = DmaRegion::alloc(&mut self.frames, 4096 << QUEUE_QS, 4096, true)?;
            let status = DmaRegion::alloc(&mut self.frames, 64, 64, true)?;
            let iqa = Iqa { base: ring.pa(), qs: QUEUE_QS, dw256: false };
            self.queue = Some(Queue { ring, status, iqa, tail: 0, committed: 0, seq: 0, enabled: false });
        }
        let r = self.mmio.regs();
        let Some(q) = self.queue.as_mut() else { return Err(Error::Config("no queue")) };
        // IQH_REG resets to 0 when the queue is enabled; the tail must match.
        q.tail = 0;
        q.committed = 0;
        r.iqt.set(0);
        r.iqa.set(q.iqa.encode());
        self.gcmd(QIE, true, "GSTS_REG.QIES")?;
        if let Some(q) = self.queue.as_mut() {
            q.enabled = true;
        }
        self.mode = InvalidationMode::Queued;
        Ok(())
    }

    fn disable_queue(&mut self) -> Result<(), Error> {
        let r = self.mmio.regs();
        // The queue must be drained (IQH_REG = IQT_REG) before QIE is cleared.
        self.poll("IQH_REG = IQT_REG (queue drain)", || r.iqh.get() == r.iqt.get())?;
        self.gcmd(QIE, false, "GSTS_REG.QIES (disable)")?;
        if let Some(q) = self.queue.as_mut() {
            q.enabled = false;
        }
        self.mode = InvalidationMode::Register;
        Ok(())
    }

    /// Switches between queued and register-based invalidation (disabling
    /// or enabling the queue; the unit accepts only one of them at a time).
    pub fn set_invalidation_mode(&mut self, mode: InvalidationMode) -> Result<(), Error> {
        if mode == self.mode {
            return Ok(());
        }
        self.sync()?;
        match mode {
            InvalidationMode::Register => self.disable_queue(),
            InvalidationMode::Queued => {
                if !self.caps.qi {
                    return Err(Error::Caps(CapsError::Missing(crate::vtd::caps::Feature::Qi)));
                }
                self.enable_queue()
            }
        }
    }

    /// Queues invalidation descriptors (queued mode: appended, executed at
    /// the next [`sync`](Self::sync); register mode: carried out now, one
    /// by one, each waited for).
    pub fn queue_descs(&mut self, descs: impl IntoIterator<Item = InvDesc>) -> Result<(), Error> {
        for d in descs {
            match self.mode {
                InvalidationMode::Queued => self.push(d)?,
                InvalidationMode::Register => self.register_invalidate(d)?,
            }
        }
        Ok(())
    }

    /// Waits until everything queued so far has completed: an invalidation
    /// wait descriptor with a status write, polled. Register mode: nothing
    /// is outstanding.
    pub fn sync(&mut self) -> Result<(), Error> {
        if self.mode != InvalidationMode::Queued {
            return Ok(());
        }
        let (addr, seq) = {
            let Some(q) = self.queue.as_mut() else { return Ok(()) };
            q.seq = q.seq.wrapping_add(1);
            q.status.write(0, 0);
            (q.status.pa(), q.seq)
        };
        self.push(InvDesc::Wait(InvWait::status_write(addr, seq)))?;
        self.commit();
        let r = self.mmio.regs();
        let mut err = None;
        let q = self.queue.as_ref().ok_or(Error::Config("no queue"))?;
        let iqa = q.iqa;
        let res = self.poll("invalidation wait status", || {
            if FaultStatus::decode(r.fsts.get()).iqe {
                let iqei = (r.iqercd.get() & 0xf) as u8;
                let head = (r.iqh.get() / iqa.desc_size()) as u32;
                err = Some(Error::QueueError { iqei, head });
                return true;
            }
            q.status.read(0) as u32 == seq
        });
        if let Some(e) = err {
            return Err(e);
        }
        res
    }

    /// Appends one descriptor, first making room if the ring is full.
    fn push(&mut self, d: InvDesc) -> Result<(), Error> {
        let r = self.mmio.regs();
        let next = {
            let q = self.queue.as_ref().ok_or(Error::Config("queued invalidation is not enabled"))?;
            (q.tail + 1) % q.iqa.entries()
        };
        let size = self.queue.as_ref().map_or(16, |q| q.iqa.desc_size());
        if (r.iqh.get() / size) as u32 == next {
            // Full: hand the unit what is there and wait for the head to move.
            self.commit();
            self.poll("IQH_REG (queue full)", || (r.iqh.get() / size) as u32 != next)?;
        }
        let q = self.queue.as_mut().ok_or(Error::Config("no queue"))?;
        let w = d.encode();
        let at = q.tail as usize * 2;
        q.ring.write(at, w[0]);
        q.ring.write(at + 1, w[1]);
        q.tail = next;
        Ok(())
    }

    /// Writes the software tail to IQT_REG.
    fn commit(&mut self) {
        let Some(q) = self.queue.as_mut() else { return };
        if q.committed == q.tail {
            return;
        }
        wmb();
        q.committed = q.tail;
        self.mmio.regs().iqt.set(q.iqa.offset_of(q.tail));
    }

    /// One invalidation through CCMD_REG or IVA_REG/IOTLB_REG (6.5.1).
    fn register_invalidate(&mut self, d: InvDesc) -> Result<(), Error> {
        let r = self.mmio.regs();
        match d {
            InvDesc::ContextCache(g) => {
                r.ccmd.set(ContextCommand(g).encode());
                self.poll("CCMD_REG.ICC", || r.ccmd.get() & (1 << 63) == 0)
            }
            InvDesc::Iotlb { granularity, dr, dw } => {
                let regs = self.iotlb.ok_or(Error::Config("no IOTLB registers"))?;
                let (cmd, iva) = IotlbCommand::from_granularity(granularity, dr, dw);
                if let Some(iva) = iva {
                    regs.iva.set(iva.encode());
                }
                regs.iotlb.set(cmd.encode());
                self.poll("IOTLB_REG.IVT", || regs.iotlb.get() & (1 << 63) == 0)
            }
            InvDesc::Wait(_) => Ok(()),
            _ => Err(Error::Config("this invalidation has no register form")),
        }
    }

    /// Queues the IOTLB invalidation of `[iova, iova + len)` in domain
    /// `did`: page-selective where `CAP_REG.PSI` allows and the range needs
    /// few descriptors, domain-selective otherwise. `leaf_only` sets IH
    /// (no table pages were unlinked).
    pub fn invalidate_range(
        &mut self,
        did: DomainId,
        iova: Iova,
        len: u64,
        leaf_only: bool,
    ) -> Result<(), Error> {
        let policy = PsiPolicy { leaf_only, ..self.cfg.psi };
        let plan = plan_page_invalidation(did, iova, len, &self.caps, policy);
        self.queue_descs(plan)
    }

    /// Invalidates what an unmap gathered, and waits.
    pub fn invalidate_gather(&mut self, did: DomainId, gather: &IotlbGather) -> Result<(), Error> {
        for r in gather.ranges() {
            self.invalidate_range(did, r.start, r.len(), !gather.tables_removed())?;
        }
        self.sync()
    }

    /// Queues a domain-selective IOTLB invalidation.
    pub fn invalidate_domain(&mut self, did: DomainId) -> Result<(), Error> {
        let d = InvDesc::Iotlb {
            granularity: IotlbGranularity::Domain(did),
            dr: self.caps.drd,
            dw: self.caps.dwd,
        };
        self.queue_descs([d])
    }

    /// What a map needs: with `CAP_REG.CM` the unit may cache not-present
    /// entries, so new mappings are invalidated like removed ones
    /// (6.1); otherwise at most a write-buffer flush (`CAP_REG.RWBF`).
    pub fn flush_map(&mut self, did: DomainId, iova: Iova, len: u64) -> Result<(), Error> {
        if self.caps.cm {
            self.invalidate_range(did, iova, len, true)?;
            self.sync()
        } else {
            self.flush_write_buffer()
        }
    }

    // ---- context entries ----

    /// The context table of `bus`, created (and linked from the root
    /// table) on first use.
    fn context_table(&mut self, bus: u8) -> Result<&DmaRegion, Error> {
        let i = bus as usize;
        if self.contexts[i].is_none() {
            let t = DmaRegion::alloc(&mut self.frames, 4096, 4096, self.caps.c)?;
            t.flush(0, 512);
            let w = RootEntry::new(t.pa()).encode();
            wmb();
            self.root.write(2 * i + 1, w[1]);
            self.root.write(2 * i, w[0]);
            self.root.flush(2 * i, 2);
            self.contexts[i] = Some(t);
            if self.caps.cm {
                // Not-present root entries may be cached (tagged DID 0).
                self.queue_descs([InvDesc::ContextCache(CcGranularity::Global)])?;
                self.sync()?;
            }
        }
        self.contexts[i].as_ref().ok_or(Error::Config("context table"))
    }

    /// The context entry of `sid` as the unit would read it.
    pub fn context_entry(&self, sid: SourceId) -> Result<ContextEntry, Error> {
        let Some(t) = self.contexts[root_index(sid)].as_ref() else { return Ok(ContextEntry::not_present()) };
        let i = sid.devfn() as usize;
        ContextEntry::decode([t.read(2 * i), t.read(2 * i + 1)])
            .map_err(|_| Error::Config("context entry holds an encoding this driver never writes"))
    }

    fn write_context(&mut self, sid: SourceId, e: &ContextEntry) -> Result<(), Error> {
        let i = sid.devfn() as usize;
        let t = self.context_table(sid.bus())?;
        let w = e.encode();
        if e.present {
            // Present last: the unit never sees P = 1 with a stale DID/AW.
            t.write(2 * i + 1, w[1]);
            wmb();
            t.write(2 * i, w[0]);
        } else {
            t.write(2 * i, w[0]);
            wmb();
            t.write(2 * i + 1, w[1]);
        }
        t.flush(2 * i, 2);
        wmb();
        Ok(())
    }

    /// Context-cache invalidation for one device, then domain-selective
    /// IOTLB invalidation, waited for (6.5.3.3 "context-entry programming
    /// considerations").
    fn invalidate_device(
        &mut self,
        sid: SourceId,
        cc_did: DomainId,
        iotlb_did: DomainId,
    ) -> Result<(), Error> {
        let cc = CcGranularity::Device { did: cc_did, sid, fm: FunctionMask::None };
        self.queue_descs([InvDesc::ContextCache(cc)])?;
        self.invalidate_domain(iotlb_did)?;
        self.sync()
    }

    /// Points requests without PASID from `sid` at the second-level table
    /// `cfg`, tagged `did` (TT = 00b: untranslated requests only). Replacing
    /// another domain goes through not-present first.
    pub fn attach(&mut self, sid: SourceId, did: DomainId, cfg: &SlDomainCfg) -> Result<(), Error> {
        if did.0 == 0 && self.caps.cm {
            return Err(Error::Config("domain-ID 0 is reserved with CAP_REG.CM"));
        }
        let entry = ContextEntry::second_level(did, cfg.root, cfg.aw);
        entry.check(&self.caps).map_err(Error::Entry)?;
        let old = self.context_entry(sid)?;
        if old == entry {
            return Ok(());
        }
        if old.present {
            self.write_context(sid, &ContextEntry::not_present())?;
            self.invalidate_device(sid, old.did, old.did)?;
        }
        self.write_context(sid, &entry)?;
        // With CM, not-present entries may be cached, under DID 0.
        let cc_did = if self.caps.cm { DomainId(0) } else { did };
        self.invalidate_device(sid, cc_did, did)
    }

    /// Blocks `sid`: its context entry becomes not present (every request
    /// faults with reason 2 from then on), and the caches drop it.
    pub fn detach(&mut self, sid: SourceId) -> Result<(), Error> {
        let old = self.context_entry(sid)?;
        if !old.present {
            return Ok(());
        }
        self.write_context(sid, &ContextEntry::not_present())?;
        self.invalidate_device(sid, old.did, old.did)
    }

    // ---- faults ----

    fn clear_stale_faults(&mut self) {
        let n = self.caps.num_fault_records();
        for i in 0..n {
            if let Some(rec) = self.mmio.fault_record(&self.caps, i) {
                rec.hi.set(FRCD_HI_CLEAR);
            }
        }
        let r = self.mmio.regs();
        let st = FaultStatus::decode(r.fsts.get());
        r.fsts.set(st.clear_value());
    }

    /// Reads every recorded fault from `FSTS_REG.FRI` on, hands it to `f`,
    /// remembers it in the ring of [`recent_faults`](Self::recent_faults),
    /// clears it (writes F = 1), and clears `FSTS_REG.PFO` if faults were
    /// lost.
    pub fn poll_faults(&mut self, mut f: impl FnMut(&Fault)) -> FaultReport {
        let r = self.mmio.regs();
        let st = FaultStatus::decode(r.fsts.get());
        let mut report = FaultReport::default();
        let n = self.caps.num_fault_records();
        if st.ppf {
            let first = u16::from(st.fri) % n;
            for k in 0..n {
                let i = (first + k) % n;
                let Some(rec) = self.mmio.fault_record(&self.caps, i) else { continue };
                let hi = rec.hi.get();
                let lo = rec.lo.get();
                if let Some(fault) = Fault::decode([lo, hi]) {
                    f(&fault);
                    self.recent[self.recent_next] = Some(fault);
                    self.recent_next = (self.recent_next + 1) % FAULT_RING;
                    rec.hi.set(FRCD_HI_CLEAR);
                    report.handled += 1;
                }
            }
        }
        if st.pfo {
            report.overflow = true;
            r.fsts.set(FaultStatus { pfo: true, ..FaultStatus::default() }.clear_value());
        }
        report
    }

    /// The last faults [`poll_faults`](Self::poll_faults) read, oldest
    /// first.
    pub fn recent_faults(&self) -> impl Iterator<Item = &Fault> + '_ {
        (0..FAULT_RING).filter_map(move |k| self.recent[(self.recent_next + k) % FAULT_RING].as_ref())
    }

    /// `FSTS_REG`, decoded.
    pub fn fault_status(&self) -> FaultStatus {
        FaultStatus::decode(self.mmio.regs().fsts.get())
    }

    /// Turns translation off (every DMA then bypasses the unit): only for
    /// handing the unit back; logged by the caller.
    pub fn disable(&mut self) -> Result<(), Error> {
        self.sync()?;
        self.gcmd(TE, false, "GSTS_REG.TES (disable)")
    }
}

#[cfg(test)]
#[allow(unsafe_code)] // a fake register frame and DMA memory on the heap
mod tests {
    extern crate std;
    use super::*;
    use core::ptr::NonNull;
    use std::alloc::{alloc_zeroed, Layout};

    use crate::vtd::dma::DmaBuf;

    /// A 4 KiB-aligned, zeroed, leaked heap block.
    fn block(size: usize) -> NonNull<u8> {
        let layout = Layout::from_size_align(size, 4096).unwrap();
        // SAFETY: non-zero size.
        NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap()
    }

    struct HeapFrames;
    // SAFETY: fresh zeroed, 4 KiB-aligned blocks, leaked (never reused);
    // "physical" = the pointer value.
    unsafe impl DmaFrames for HeapFrames {
        fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<DmaBuf> {
            if align > 4096 {
                return None;
            }
            let va = block(size.max(8));
            Some(DmaBuf { pa: PhysAddr(va.as_ptr() as u64), va, size })
        }
    }

    /// A register frame in plain memory with QEMU's CAP/ECAP: nothing acts
    /// on GCMD_REG, so the first wait must fail and name its bit.
    #[test]
    fn a_unit_that_never_acknowledges_gives_a_named_timeout() {
        let base = block(4096);
        // SAFETY: CAP at 0x08 and ECAP at 0x10 inside the 4 KiB block.
        unsafe {
            base.add(0x08).cast::<u64>().write(0x00d2_008c_222f_0606);
            base.add(0x10).cast::<u64>().write(0x0000_0000_00f0_0f4a);
        }
        // SAFETY: a 4 KiB block only this test uses, leaked.
        let mmio = unsafe { VtdMmio::new(base, 4096) };
        let caps = mmio.read_caps();
        assert!(caps.qi && caps.psi && caps.sllps.g1);
        let cfg = VtdConfig { poll_budget: 100, ..VtdConfig::default() };
        let err = Vtd::probe(mmio, caps, HeapFrames, cfg).err();
        assert_eq!(err, Some(Error::Timeout("GSTS_REG.RTPS")));
        // GCMD_REG got SRTP alone (GSTS_REG read 0), RTADDR_REG the root.
        // SAFETY: offsets 0x18 and 0x20 inside the block.
        let (gcmd, rtaddr) =
            unsafe { (base.add(0x18).cast::<u32>().read(), base.add(0x20).cast::<u64>().read()) };
        assert_eq!(gcmd, 1 << 30);
        assert!(rtaddr != 0 && rtaddr & 0xfff == 0);
    }

    #[test]
    fn domain_cfg_from_levels() {
        assert_eq!(SlDomainCfg::new(PhysAddr(0x1000), 3).unwrap().aw, AddressWidth::Bits39);
        assert_eq!(SlDomainCfg::new(PhysAddr(0x1000), 4).unwrap().aw, AddressWidth::Bits48);
        assert!(SlDomainCfg::new(PhysAddr(0x1000), 2).is_err());
    }
}
