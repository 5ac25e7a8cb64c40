//! Bring-up and the public operations of one AMD-Vi IOMMU (48882 3.4,
//! 2.2, 2.4, 2.5): device table, command buffer, event log, then IommuEn;
//! device attach/detach through DTEs with INVALIDATE_DEVTAB_ENTRY;
//! INVALIDATE_IOMMU_PAGES from an unmap's gather; COMPLETION_WAIT with a
//! store, polled with a bounded budget.
//!
//! Secure by default: every DTE of the table starts blocked (V = TV = 1,
//! Mode 0, IR = IW = 0) before IommuEn is set; DeviceIDs beyond the table
//! are refused by the hardware.

use core::fmt;

use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};

use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::pgtable::amd::AmdTable;
use iommu_common::pgtable::{IotlbGather, PageAllocator};

use super::caps::Efr;
use super::cmd::{plan_invalidation, CmdError, Command, InvRange, InvalidationPolicy};
use super::dma::DmaMemory;
use super::dte::{Dte, DteError};
use super::event::{self, Event, LogState};
use super::ids::{DeviceId, DomainId};
use super::regs::{
    ring_index, ring_ptr, AmdViRegisterBlock, AmdViRegs, DevTabBase, RegError, RingBase, CONTROL, STATUS_RW1C,
};
use super::ring::{CmdRing, EventRing};

/// Entries of the command buffer and of the event log (4 KiB each).
pub const RING_ENTRIES: u32 = 256;

/// What the driver needs besides memory and registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// The highest DeviceID the device table must hold (from the IVHD's
    /// device entries); the table is rounded up to whole 4 KiB pages.
    pub last_devid: u16,
    /// Polls of a register or completion store before giving up.
    pub poll_budget: u32,
    /// When an invalidation over-covers rather than splitting further.
    pub policy: InvalidationPolicy,
}

impl Config {
    /// A table up to `last_devid`, a budget of a million polls and the default
    /// invalidation policy.
    pub fn new(last_devid: u16) -> Self {
        Self { last_devid, poll_budget: 1_000_000, policy: InvalidationPolicy::default() }
    }
}

/// Why an operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The memory provider had no room.
    OutOfMemory {
        /// Bytes asked for.
        size: usize,
    },
    /// A bounded wait expired; names what did not acknowledge.
    Timeout(&'static str),
    /// A register value could not be built.
    Reg(RegError),
    /// A DTE could not be built or the IOMMU cannot walk it.
    Dte(DteError),
    /// A command could not be built.
    Cmd(CmdError),
    /// The DeviceID is beyond the device table.
    NoSuchDevice(DeviceId),
    /// Refused for a reason named here.
    Unsupported(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfMemory { size } => write!(f, "out of DMA memory ({size} bytes)"),
            Self::Timeout(what) => write!(f, "{what} did not complete in time"),
            Self::Reg(e) => write!(f, "register: {e}"),
            Self::Dte(e) => write!(f, "DTE: {e}"),
            Self::Cmd(e) => write!(f, "command: {e}"),
            Self::NoSuchDevice(d) => write!(f, "DeviceID {:#06x} beyond the device table", d.0),
            Self::Unsupported(why) => f.write_str(why),
        }
    }
}

/// One AMD-Vi IOMMU, enabled.
pub struct AmdVi<'r, M: DmaMemory> {
    regs: AmdViRegs<'r>,
    mem: M,
    dev_tab: DevTabBase,
    cmd: CmdRing,
    events: EventRing,
    /// Where COMPLETION_WAIT stores its sequence number.
    sem: PhysAddr,
    seq: u64,
    efr: Efr,
    cfg: Config,
}

impl<'r, M: DmaMemory> AmdVi<'r, M> {
    /// Brings the IOMMU up: disables it, allocates and programs a blocked
    /// device table, the command buffer and event log, enables them, sets
    /// IommuEn, and invalidates every DTE it holds.
    pub fn new(regs: &'r AmdViRegisterBlock, mut mem: M, cfg: Config) -> Result<Self, Error> {
        let regs = AmdViRegs::new(regs);
        // Off while the bases change (they may only be written then).
        regs.block().control.set(0);
        let pages = u32::from(cfg.last_devid) / 128 + 1;
        let alloc =
            |mem: &mut M, size: usize| mem.alloc_zeroed(size, 4096).ok_or(Error::OutOfMemory { size });
        let dt = alloc(&mut mem, pages as usize * 4096)?;
        let dev_tab = DevTabBase::new(dt, pages).map_err(Error::Reg)?;
        let blocked = Dte::blocked().encode();
        for id in 0..dev_tab.entries() {
            for (k, w) in blocked.iter().enumerate() {
                mem.write_u64(PhysAddr(dt.0 + u64::from(id) * 32 + k as u64 * 8), *w);
            }
        }
        let cb = alloc(&mut mem, RING_ENTRIES as usize * 16)?;
        let el = alloc(&mut mem, RING_ENTRIES as usize * 16)?;
        let sem = mem.alloc_zeroed(8, 8).ok_or(Error::OutOfMemory { size: 8 })?;
        let efr = Efr::decode(regs.efr());
        regs.set_dev_tab(dev_tab);
        regs.set_cmd_buf(RingBase::new("CmdBufBase", cb, RING_ENTRIES).map_err(Error::Reg)?);
        regs.set_event_log(RingBase::new("EventLogBase", el, RING_ENTRIES).map_err(Error::Reg)?);
        let b = regs.block();
        b.cmd_buf_head.set(ring_ptr(0));
        b.cmd_buf_tail.set(ring_ptr(0));
        b.event_log_head.set(ring_ptr(0));
        b.event_log_tail.set(ring_ptr(0));
        regs.clear_status(STATUS_RW1C);
        // The tables written above are ordered before the enables by the
        // volatile MMIO writes (x86 keeps stores in order, and UC MMIO
        // writes are not reordered with earlier WB stores).
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        b.control.write(CONTROL::CMD_BUF_EN::SET + CONTROL::EVENT_LOG_EN::SET + CONTROL::COHERENT::SET);
        b.control.modify(CONTROL::IOMMU_EN::SET);
        let mut this = Self {
            regs,
            mem,
            dev_tab,
            cmd: CmdRing::new(cb, RING_ENTRIES),
            events: EventRing::new(el, RING_ENTRIES),
            sem,
            seq: 0,
            efr,
            cfg,
        };
        // Nothing the IOMMU cached from before is trusted.
        for id in 0..this.dev_tab.entries() {
            this.queue(&Command::InvalidateDevtabEntry { device: DeviceId(id as u16) })?;
        }
        this.completion_wait()?;
        Ok(this)
    }

    /// The decoded Extended Feature Register.
    pub fn efr(&self) -> &Efr {
        &self.efr
    }

    /// The register block.
    pub fn regs(&self) -> &AmdViRegs<'r> {
        &self.regs
    }

    /// The memory provider.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// The invalidation policy.
    pub fn policy(&self) -> InvalidationPolicy {
        self.cfg.policy
    }

    /// Where COMPLETION_WAIT stores, and the last value it stored (or will).
    pub fn completion_store(&self) -> (PhysAddr, u64) {
        (self.sem, self.seq)
    }

    fn head(&self) -> u32 {
        ring_index(self.regs.block().cmd_buf_head.get()) % RING_ENTRIES
    }

    /// Writes `cmd` into the command buffer and publishes the tail; waits
    /// (bounded) for room if the ring is full.
    pub fn queue(&mut self, cmd: &Command) -> Result<(), Error> {
        let mut budget = self.cfg.poll_budget;
        while !self.cmd.has_room(self.head()) {
            budget = budget.checked_sub(1).ok_or(Error::Timeout("CmdBufHead (command buffer full)"))?;
            core::hint::spin_loop();
        }
        let written = self.cmd.push(&self.mem, self.head(), cmd);
        debug_assert!(written);
        // The command's words are in memory before the IOMMU sees the tail.
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.regs.block().cmd_buf_tail.set(ring_ptr(self.cmd.tail()));
        Ok(())
    }

    /// Queues a COMPLETION_WAIT that stores the next sequence number, and
    /// polls the store (bounded): every earlier command has then completed.
    pub fn completion_wait(&mut self) -> Result<(), Error> {
        self.seq = self.seq.wrapping_add(1);
        let cmd = Command::completion_wait_store(self.sem, self.seq).map_err(Error::Cmd)?;
        self.queue(&cmd)?;
        for _ in 0..self.cfg.poll_budget {
            if self.mem.read_u64(self.sem) == self.seq {
                core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(Error::Timeout("COMPLETION_WAIT"))
    }

    fn dte_at(&self, dev: DeviceId) -> Result<PhysAddr, Error> {
        if u32::from(dev.0) >= self.dev_tab.entries() {
            return Err(Error::NoSuchDevice(dev));
        }
        Ok(PhysAddr(self.dev_tab.base().0 + u64::from(dev.0) * 32))
    }

    /// Replaces the DTE of `dev` and invalidates it (INVALIDATE_DEVTAB_ENTRY,
    /// COMPLETION_WAIT). Word 0 holds V, TV, Mode, the root and IR/IW: it is
    /// written last when the new entry opens DMA (the other words are ready
    /// before it takes effect) and first when it blocks DMA (blocking takes
    /// effect at once).
    pub fn set_dte(&mut self, dev: DeviceId, dte: &Dte) -> Result<(), Error> {
        let at = self.dte_at(dev)?;
        let w = dte.encode();
        let word = |k: u64| PhysAddr(at.0 + k * 8);
        if dte.blocks_dma() {
            self.mem.write_u64(word(0), w[0]);
        }
        for (k, v) in w.iter().enumerate().skip(1) {
            self.mem.write_u64(word(k as u64), *v);
        }
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.mem.write_u64(word(0), w[0]);
        self.queue(&Command::InvalidateDevtabEntry { device: dev })?;
        self.completion_wait()
    }

    /// The DTE of `dev` as the table holds it.
    pub fn dte(&self, dev: DeviceId) -> Result<Result<Dte, DteError>, Error> {
        let at = self.dte_at(dev)?;
        let w: [u64; 4] = core::array::from_fn(|k| self.mem.read_u64(PhysAddr(at.0 + k as u64 * 8)));
        Ok(Dte::decode(w))
    }

    /// Points `dev` at `table`, tagged `domain`: a translated DTE
    /// (IR = IW = 1 at the DTE; the PTEs decide).
    pub fn attach<A: PageAllocator>(
        &mut self,
        dev: DeviceId,
        domain: DomainId,
        table: &AmdTable<A>,
    ) -> Result<(), Error> {
        self.attach_root(dev, domain, table.root(), table.levels())
    }

    /// As [`attach`](Self::attach), with the table given by root and depth.
    pub fn attach_root(
        &mut self,
        dev: DeviceId,
        domain: DomainId,
        root: PhysAddr,
        levels: u8,
    ) -> Result<(), Error> {
        let dte = Dte::translated(root, levels, domain, true, true).map_err(Error::Dte)?;
        dte.check(&self.efr).map_err(Error::Dte)?;
        self.set_dte(dev, &dte)
    }

    /// Blocks all DMA of `dev` (the blocked DTE), then drops what the IOMMU
    /// cached for the domain the device was in: a model that tags its IOTLB
    /// by DeviceID (QEMU's does) would otherwise keep translating.
    pub fn detach(&mut self, dev: DeviceId) -> Result<(), Error> {
        let old = self.dte(dev)?.ok().filter(|d| !d.blocks_dma()).map(|d| d.domain);
        self.set_dte(dev, &Dte::blocked())?;
        if let Some(domain) = old {
            self.queue_invalidate_domain(domain)?;
            self.completion_wait()?;
        }
        Ok(())
    }

    /// Queues INVALIDATE_IOMMU_PAGES for every range of `gather` (with PDE
    /// set when tables were unlinked); [`completion_wait`](Self::completion_wait)
    /// waits for them.
    pub fn queue_invalidation(&mut self, domain: DomainId, gather: &IotlbGather) -> Result<(), Error> {
        let pde = gather.tables_removed();
        for r in gather.ranges() {
            for cmd in plan_invalidation(domain, r.start, r.len(), pde, self.cfg.policy) {
                self.queue(&cmd)?;
            }
        }
        Ok(())
    }

    /// Invalidates `gather`'s ranges and waits for it.
    pub fn invalidate(&mut self, domain: DomainId, gather: &IotlbGather) -> Result<(), Error> {
        self.queue_invalidation(domain, gather)?;
        self.completion_wait()
    }

    /// Invalidates `[iova, iova + len)` of `domain` and waits for it.
    pub fn invalidate_range(&mut self, domain: DomainId, iova: Iova, len: u64) -> Result<(), Error> {
        for cmd in plan_invalidation(domain, iova, len, true, self.cfg.policy) {
            self.queue(&cmd)?;
        }
        self.completion_wait()
    }

    /// Queues the invalidation of everything cached for `domain`.
    pub fn queue_invalidate_domain(&mut self, domain: DomainId) -> Result<(), Error> {
        self.queue(&Command::InvalidateIommuPages { domain, pasid: None, range: InvRange::All, pde: true })
    }

    /// Decodes every logged event into `f` and frees the slots.
    pub fn drain_events(&mut self, f: impl FnMut(Event)) -> usize {
        let b = self.regs.block();
        let head = ring_index(b.event_log_head.get());
        let tail = ring_index(b.event_log_tail.get());
        let mut n = 0;
        let mut f = f;
        let new = self.events.drain(&self.mem, head, tail, |e| {
            n += 1;
            f(e)
        });
        b.event_log_head.set(ring_ptr(new));
        n
    }

    /// The event log's state (EventOverflow means events were lost).
    pub fn event_log_state(&self) -> LogState {
        event::overflow(&self.regs.status())
    }

    /// After an overflow: drains, clears EventOverflow and restarts logging
    /// (EventLogEn off and on, 48882 3.4 Status).
    pub fn restart_event_log(&mut self, f: impl FnMut(Event)) -> usize {
        let n = self.drain_events(f);
        let b = self.regs.block();
        b.control.modify(CONTROL::EVENT_LOG_EN::CLEAR);
        self.regs.clear_status(1 << 0);
        b.control.modify(CONTROL::EVENT_LOG_EN::SET);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amdvi::pgtable::{Entry, Pde, Perms, Pte};
    use iommu_common::pgtable::amd::entry;
    use proptest::prelude::*;

    proptest! {
        /// `iommu-common`'s AMD-Vi table writes entries this crate's spec
        /// encoder builds and decodes the same way.
        #[test]
        fn page_table_bits_agree_with_the_encoder(level in 1u8..=6, pfn in 0u64..(1 << 40), r: bool, w: bool, next in 1u8..=5) {
            let addr = (pfn << 12) & entry::ADDR_MASK;
            let shift = entry::level_shift(level);
            prop_assume!(shift < 52);
            let page = addr & !((1u64 << shift) - 1);
            let ours = entry::pte(page, r, w, false);
            let spec = Pte::new(level, PhysAddr(page), 1 << shift, Perms { read: r, write: w }).unwrap();
            prop_assert_eq!(ours, spec.encode(level));
            prop_assert_eq!(Entry::decode(ours, level), Ok(Entry::Page(spec)));
            let mut fc = spec;
            fc.fc = true;
            prop_assert_eq!(entry::pte(page, r, w, true), fc.encode(level));
            if next < level {
                let pde = Pde::new(level, PhysAddr(addr), next, Perms::RW).unwrap();
                prop_assert_eq!(entry::pde(addr, next), pde.encode());
                prop_assert_eq!(entry::decode(pde.encode(), level), entry::Decoded::Table { table: addr, level: next });
            }
        }
    }

    #[test]
    fn errors_name_what_did_not_complete() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(Error::Timeout("COMPLETION_WAIT").to_string(), "COMPLETION_WAIT did not complete in time");
        assert!(Error::NoSuchDevice(DeviceId(0x120)).to_string().contains("0x0120"));
    }
}
