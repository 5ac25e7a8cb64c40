//! Host test bench: plain memory standing in for the SMMU register frame and
//! for RAM, and a model of the SMMU that reacts to what the driver wrote.
//!
//! The model follows QEMU 10's `hw/arm/smmuv3.c` where that is what the
//! hypervisor will meet (reset values, synchronous command consumption, the
//! Stream table walk of `smmu_find_ste`), and the spec where QEMU is lax
//! (illegal commands per SMMU_IDR0, EVENTQ_PROD.OVFLG on overflow unless
//! `qemu_evtq_full`, the MSI write of a CMD_SYNC with CS = SIG_IRQ when
//! configured with SMMU_IDR0.MSI = 1, which QEMU 10 does not advertise). It runs whenever the driver pauses in a bounded wait:
//! the driver's `DelayNs` is [`ModelDelay`]. It is not a second driver: it
//! plays the device.

use core::cell::{Cell, RefCell, RefMut};
use core::ptr::NonNull;
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::rc::Rc;
use std::thread_local;
use std::vec::Vec;

use embedded_hal::delay::DelayNs;
use iommu_common::addr::PhysAddr;

use crate::caps::{Capabilities, IdRegs, StallModel};
use crate::cmd::{Command, Sync, SyncSignal};
use crate::dma::{CacheOps, DmaBuf, DmaFrames};
use crate::ids::StreamId;
use crate::queue::Ring;
use crate::regs::{SmmuRegs, PAGE1_OFFSET, REGS_SIZE};

/// QEMU 10 virt SMMUv3 (`stage=nested`): IDR0 as verified on QEMU 10.0;
/// IDR1 SIDSIZE 16, EVENTQS 19, CMDQS 19; IDR3 HAD, XNX, RIL, BBML=2;
/// IDR5 OAS 44 bits, 4K/16K/64K granules.
pub(crate) const QEMU_IDR: [u32; 6] = [
    0x0d44_101b,
    (19 << 21) | (19 << 16) | 16,
    0,
    (2 << 11) | (1 << 10) | (1 << 4) | (1 << 2),
    0,
    (1 << 6) | (1 << 5) | (1 << 4) | 4,
];

/// The capabilities of QEMU's SMMUv3 (AIDR = 1: SMMUv3.1).
pub(crate) fn qemu_caps() -> Capabilities {
    Capabilities::decode(&IdRegs { idr: QEMU_IDR, iidr: 0, aidr: 1 })
}

/// Proptest settings: `cases` natively, a handful under Miri, and no
/// failure-persistence files under Miri (its isolation forbids file access).
pub(crate) fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let mut c = proptest::test_runner::Config::with_cases(if cfg!(miri) { 8 } else { cases });
    if cfg!(miri) {
        c.failure_persistence = None;
    }
    c
}

/// A zeroed heap allocation, freed on drop; all pointers into it derive from
/// the one allocation pointer.
struct Mem {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl Mem {
    fn new(size: usize, align: usize) -> Self {
        let layout = Layout::from_size_align(size, align).unwrap();
        // SAFETY: size is non-zero in every use.
        let p = unsafe { alloc_zeroed(layout) };
        Self { ptr: NonNull::new(p).expect("test allocation"), layout }
    }

    fn at(&self, off: usize, len: usize) -> Option<NonNull<u8>> {
        if off.checked_add(len)? > self.layout.size() {
            return None;
        }
        // SAFETY: off + len is within the allocation.
        Some(unsafe { self.ptr.add(off) })
    }
}

impl Drop for Mem {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Physical address of the first byte of the test RAM.
pub(crate) const ARENA_PA: u64 = 0x4000_0000;

/// Test RAM: a bump allocator over one allocation.
pub(crate) struct Arena {
    mem: Mem,
    next: Cell<usize>,
}

impl Arena {
    fn new(size: usize) -> Self {
        let align = size.next_power_of_two().min(1 << 22);
        Self { mem: Mem::new(size, align), next: Cell::new(0) }
    }

    fn ptr(&self, pa: u64, len: usize) -> Option<NonNull<u8>> {
        let off = usize::try_from(pa.checked_sub(ARENA_PA)?).ok()?;
        self.mem.at(off, len)
    }

    /// Reads a little-endian word of test RAM (`None` outside it: a bus abort).
    pub(crate) fn read64(&self, pa: u64) -> Option<u64> {
        let p = self.ptr(pa, 8)?;
        if pa % 8 != 0 {
            return None;
        }
        // SAFETY: in bounds and aligned; shared only with the driver, which
        // accesses it with volatile operations on the same thread.
        Some(u64::from_le(unsafe { p.cast::<u64>().read_volatile() }))
    }

    /// Writes a 32-bit word of test RAM (an MSI); `false` outside it or
    /// misaligned (the write aborts).
    pub(crate) fn write32(&self, pa: u64, v: u32) -> bool {
        let Some(p) = self.ptr(pa, 4) else { return false };
        if pa % 4 != 0 {
            return false;
        }
        // SAFETY: in bounds and 4-aligned (the arena is at least 8-aligned
        // and `pa` is 4-aligned relative to it); shared with the driver as in
        // `read64`.
        unsafe { p.cast::<u32>().write_volatile(v.to_le()) };
        true
    }

    /// Reads a 32-bit word of test RAM (`None` outside it or misaligned).
    pub(crate) fn read32(&self, pa: u64) -> Option<u32> {
        let p = self.ptr(pa, 4)?;
        if pa % 4 != 0 {
            return None;
        }
        // SAFETY: as in `write32`.
        Some(u32::from_le(unsafe { p.cast::<u32>().read_volatile() }))
    }

    /// Writes a word of test RAM.
    pub(crate) fn write64(&self, pa: u64, v: u64) -> bool {
        let Some(p) = self.ptr(pa, 8) else { return false };
        // SAFETY: as in `read64`.
        unsafe { p.cast::<u64>().write_volatile(v.to_le()) };
        true
    }
}

thread_local! {
    static CLEANS: Cell<usize> = const { Cell::new(0) };
    static INVALIDATES: Cell<usize> = const { Cell::new(0) };
}

/// Cache maintenance hooks that count their calls (per test thread).
pub(crate) fn counting_cache_ops() -> CacheOps {
    CacheOps {
        clean: |_, _| CLEANS.with(|c| c.set(c.get() + 1)),
        invalidate: |_, _| INVALIDATES.with(|c| c.set(c.get() + 1)),
    }
}

/// (cleans, invalidates) counted on this thread.
pub(crate) fn cache_op_counts() -> (usize, usize) {
    (CLEANS.with(Cell::get), INVALIDATES.with(Cell::get))
}

/// A [`DmaFrames`] over the test RAM.
#[derive(Clone)]
pub(crate) struct HeapFrames {
    arena: Rc<Arena>,
    cache: Option<CacheOps>,
}

impl HeapFrames {
    /// A provider over fresh test RAM of `size` bytes.
    pub(crate) fn new(size: usize) -> Self {
        Self { arena: Rc::new(Arena::new(size)), cache: None }
    }

    /// The same RAM, declaring the memory non-coherent with these hooks.
    pub(crate) fn with_cache_ops(mut self, ops: CacheOps) -> Self {
        self.cache = Some(ops);
        self
    }

    /// A copy of `n` bytes at `pa`.
    pub(crate) fn bytes(&self, pa: PhysAddr, n: usize) -> Vec<u8> {
        let p = self.arena.ptr(pa.0, n).expect("inside test RAM");
        // SAFETY: `n` bytes in bounds; copied with volatile reads.
        (0..n).map(|i| unsafe { p.add(i).read_volatile() }).collect()
    }
}

// SAFETY: allocations are disjoint, zeroed (fresh `alloc_zeroed` memory, never
// reused), aligned in both PA and VA (the arena is aligned at least as much
// as any alignment granted), and stay valid while the arena lives (it is
// reference counted by every user).
unsafe impl DmaFrames for HeapFrames {
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<DmaBuf> {
        if align > self.arena.mem.layout.align() {
            return None;
        }
        let off = self.arena.next.get().checked_add(align - 1)? & !(align - 1);
        let va = self.arena.mem.at(off, size)?;
        self.arena.next.set(off + size);
        Some(DmaBuf { pa: PhysAddr(ARENA_PA + off as u64), va, size })
    }

    fn cache_ops(&self) -> Option<CacheOps> {
        self.cache
    }
}

/// Plain memory standing in for the register frame.
pub(crate) struct RegFrame {
    mem: Mem,
}

impl RegFrame {
    fn new() -> Self {
        Self { mem: Mem::new(REGS_SIZE, 4096) }
    }

    fn regs(&self) -> SmmuRegs<'_> {
        // SAFETY: REGS_SIZE bytes, 4 KiB aligned, alive as long as `self`;
        // the model accesses the same bytes only between driver accesses.
        unsafe { SmmuRegs::new(self.mem.ptr) }
    }

    pub(crate) fn peek32(&self, off: usize) -> u32 {
        let p = self.mem.at(off, 4).unwrap().cast::<u32>();
        // SAFETY: in bounds, 4-aligned.
        unsafe { p.read_volatile() }
    }

    pub(crate) fn poke32(&self, off: usize, v: u32) {
        let p = self.mem.at(off, 4).unwrap().cast::<u32>();
        // SAFETY: in bounds, 4-aligned.
        unsafe { p.write_volatile(v) }
    }

    pub(crate) fn peek64(&self, off: usize) -> u64 {
        let p = self.mem.at(off, 8).unwrap().cast::<u64>();
        // SAFETY: in bounds, 8-aligned.
        unsafe { p.read_volatile() }
    }
}

/// Model parameters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ModelCfg {
    /// SMMU_IDR0..5.
    pub idr: [u32; 6],
    /// SMMU_AIDR.
    pub aidr: u32,
    /// Complete GBPA updates (clear Update).
    pub ack_gbpa: bool,
    /// Mirror CR0 into CR0ACK.
    pub ack_cr0: bool,
    /// Mirror IRQ_CTRL into IRQ_CTRLACK.
    pub ack_irq: bool,
    /// Consume commands.
    pub consume: bool,
    /// QEMU behavior for a full Event queue: GERROR.EVENTQ_ABT_ERR instead of
    /// EVENTQ_PROD.OVFLG.
    pub qemu_evtq_full: bool,
    /// SMMU_GBPA at reset (QEMU: 0x1000, SHCFG=incoming, ABORT=0: bypass!).
    pub gbpa_reset: u32,
    /// SMMU_CR0 and CR0ACK at reset (firmware may leave the SMMU on).
    pub cr0_reset: u32,
    /// Refuse this opcode with CERROR_ILL.
    pub fail_opcode: Option<u8>,
    /// With SMMU_IDR0.MSI = 1: perform the MSI write of a CMD_SYNC with
    /// CS = SIG_IRQ (`false` plays an SMMU whose completion MSI never lands).
    pub msi_writes: bool,
    /// After a CMD_SYNC's MSI write, hold CONS on that CMD_SYNC until the
    /// next step. The spec makes the MSI observable only after the CONS
    /// update; this ordering is deliberately reversed so a test can tell a
    /// driver that waits on the MSI word from one that polls CONS.
    pub msi_before_cons: bool,
    /// Test RAM size.
    pub ram: usize,
}

impl Default for ModelCfg {
    fn default() -> Self {
        Self {
            idr: QEMU_IDR,
            aidr: 1,
            ack_gbpa: true,
            ack_cr0: true,
            ack_irq: true,
            consume: true,
            qemu_evtq_full: false,
            gbpa_reset: 0x1000,
            cr0_reset: 0,
            fail_opcode: None,
            msi_writes: true,
            msi_before_cons: false,
            ram: 1 << 20,
        }
    }
}

/// Something the model observed, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Obs {
    /// A GBPA update took effect with this value.
    Gbpa(u32),
    /// SMMU_CR0 changed to this value.
    Cr0(u32),
    /// A command was consumed.
    Cmd(Command),
    /// A command was refused with this CERROR code.
    CmdError(u8),
    /// A CMD_SYNC completion MSI wrote `data` (32 bits) at `addr`.
    Msi {
        /// MSIAddress.
        addr: u64,
        /// MSIData.
        data: u32,
    },
}

const EVTQ_PROD: usize = PAGE1_OFFSET + 0xa8;
const EVTQ_CONS: usize = PAGE1_OFFSET + 0xac;
const ADDR_55_5: u64 = 0x00ff_ffff_ffff_ffe0;
const ADDR_55_6: u64 = 0x00ff_ffff_ffff_ffc0;

/// The SMMU model.
pub(crate) struct Model {
    pub cfg: ModelCfg,
    caps: Capabilities,
    regs: Rc<RegFrame>,
    arena: Rc<Arena>,
    last_cr0: u32,
    /// Observations in order.
    pub log: Vec<Obs>,
    /// Consumed commands in order.
    pub commands: Vec<Command>,
    /// For each CMD_CFGI_STE: the STE the model's table walk found then.
    pub ste_at_cfgi: Vec<(StreamId, Result<[u64; 8], &'static str>)>,
    /// Number of steps run.
    pub steps: usize,
    /// CONS position of a CMD_SYNC whose MSI was sent while CONS is held
    /// (`msi_before_cons`).
    msi_held: Option<u32>,
}

impl Model {
    /// One step of the device: acknowledge control registers, consume
    /// commands.
    pub(crate) fn step(&mut self) {
        self.steps += 1;
        let r = Rc::clone(&self.regs);
        let gbpa = r.peek32(0x44);
        if gbpa & (1 << 31) != 0 && self.cfg.ack_gbpa {
            r.poke32(0x44, gbpa & !(1 << 31));
            self.log.push(Obs::Gbpa(gbpa & !(1 << 31)));
        }
        let cr0 = r.peek32(0x20);
        if cr0 != self.last_cr0 {
            self.log.push(Obs::Cr0(cr0));
            self.last_cr0 = cr0;
        }
        // QEMU: CR0ACK = CR0 & ~SMMU_CR0_RESERVED; IRQ_CTRLACK mirrors IRQ_CTRL.
        if self.cfg.ack_cr0 {
            r.poke32(0x24, cr0 & !0xffff_fc20);
        }
        if self.cfg.ack_irq {
            r.poke32(0x54, r.peek32(0x50));
        }
        if cr0 & (1 << 3) != 0 && self.cfg.consume {
            self.consume_cmdq();
        }
    }

    fn consume_cmdq(&mut self) {
        let r = Rc::clone(&self.regs);
        let base = r.peek64(0x90);
        let log2 = ((base & 0x1f) as u8).min(self.caps.cmdqs);
        let addr = base & ADDR_55_5;
        let Some(ring) = Ring::new(log2) else { return };
        loop {
            if (r.peek32(0x60) ^ r.peek32(0x64)) & 1 != 0 {
                break; // CMDQ_ERR active: consumption stopped (7.1)
            }
            let prod = r.peek32(0x98) & ring.mask();
            let cons_reg = r.peek32(0x9c);
            let cons = cons_reg & ring.mask();
            if ring.is_empty(prod, cons) {
                break;
            }
            let slot = addr + u64::from(ring.index(cons)) * 16;
            let words = match (self.arena.read64(slot), self.arena.read64(slot + 8)) {
                (Some(a), Some(b)) => [a, b],
                _ => {
                    self.cmd_error(cons, 2); // CERROR_ABT
                    break;
                }
            };
            match self.legal(words) {
                Err(code) => {
                    self.cmd_error(cons, code);
                    break;
                }
                Ok(_) if self.msi_held == Some(cons) => {
                    // Executed and signalled at the previous step: now
                    // consumed.
                    self.msi_held = None;
                    r.poke32(0x9c, (cons_reg & !ring.mask()) | ring.advance(cons, 1));
                }
                Ok(cmd) => {
                    if let Command::CfgiSte { sid, .. } = cmd {
                        let ste = self.find_ste(sid);
                        self.ste_at_cfgi.push((sid, ste));
                    }
                    self.commands.push(cmd);
                    self.log.push(Obs::Cmd(cmd));
                    if let Command::Sync(s) = cmd {
                        if self.signal_sync(s) && self.cfg.msi_before_cons {
                            self.msi_held = Some(cons);
                            break;
                        }
                    }
                    // QEMU keeps the ERR bits when advancing.
                    r.poke32(0x9c, (cons_reg & !ring.mask()) | ring.advance(cons, 1));
                }
            }
        }
    }

    /// CMD_SYNC completion signal (4.7.3): with CS = SIG_IRQ, SMMU_IDR0.MSI
    /// and a non-zero MSIAddress, a 32-bit write of MSIData. Returns whether
    /// it wrote. (QEMU 10 has no MSI: it only pulses its wired interrupt.)
    fn signal_sync(&mut self, s: Sync) -> bool {
        if s.cs != SyncSignal::Irq || !self.caps.msi || s.msi_addr.0 == 0 || !self.cfg.msi_writes {
            return false;
        }
        if !self.arena.write32(s.msi_addr.0, s.msi_data) {
            // GERROR.MSI_CMDQ_ABT_ERR: the MSI write aborted.
            self.raise_gerror(1 << 4);
            return false;
        }
        self.log.push(Obs::Msi { addr: s.msi_addr.0, data: s.msi_data });
        true
    }

    /// Whether CONS is being held on a CMD_SYNC whose MSI was written.
    pub(crate) fn msi_held_for_test(&self) -> bool {
        self.msi_held.is_some()
    }

    /// Reads 32 bits of test RAM (what an MSI wrote).
    pub(crate) fn read32(&self, pa: u64) -> Option<u32> {
        self.arena.read32(pa)
    }

    fn cmd_error(&mut self, cons: u32, code: u8) {
        let r = &self.regs;
        r.poke32(0x9c, cons | (u32::from(code) << 24));
        r.poke32(0x60, r.peek32(0x60) ^ 1);
        self.log.push(Obs::CmdError(code));
    }

    /// CERROR_ILL rules: the spec's (4.1.3, per-command ILLEGAL conditions)
    /// for this model's ID registers.
    fn legal(&self, words: [u64; 2]) -> Result<Command, u8> {
        let cmd = Command::decode(words).map_err(|_| 1u8)?;
        if self.cfg.fail_opcode == Some(cmd.opcode()) {
            return Err(1);
        }
        let c = &self.caps;
        let ok = match cmd {
            Command::TlbiEl2All => c.hyp,
            Command::CfgiCd { .. }
            | Command::CfgiCdAll { .. }
            | Command::TlbiNhAll { .. }
            | Command::TlbiNhAsid { .. } => c.s1p,
            Command::TlbiNhVa { opts, .. } | Command::TlbiNhVaa { opts, .. } => {
                c.s1p && (c.ril || opts.range.is_none())
            }
            Command::TlbiS2Ipa { opts, .. } => c.s2p && (c.ril || opts.range.is_none()),
            Command::TlbiS12Vmall { .. } => c.s2p,
            Command::AtcInv { .. } => c.ats,
            Command::PriResp { .. } => c.pri,
            Command::Resume { .. } | Command::StallTerm { .. } => c.stall_model != StallModel::TerminateOnly,
            _ => true,
        };
        if ok {
            Ok(cmd)
        } else {
            Err(1)
        }
    }

    /// The Stream table walk, as QEMU's `smmu_find_ste` with the spec's Span
    /// bound (QEMU accepts up to 2^Span entries; the spec 2^(Span-1)).
    pub(crate) fn find_ste(&self, sid: StreamId) -> Result<[u64; 8], &'static str> {
        let r = &self.regs;
        let base = r.peek64(0x80) & ADDR_55_6;
        let cfg = r.peek32(0x88);
        let log2size = cfg & 0x3f;
        let split = (cfg >> 6) & 0x1f;
        let sid = u64::from(sid.0);
        if sid >> log2size.min(u32::from(self.caps.sidsize)) != 0 {
            return Err("C_BAD_STREAMID");
        }
        let addr = if (cfg >> 16) & 3 == 1 {
            let l1 = self.arena.read64(base + (sid >> split) * 8).ok_or("F_STE_FETCH")?;
            let span = (l1 & 0x1f) as u32;
            if span == 0 || span > split + 1 || (sid & ((1 << split) - 1)) >> (span - 1) != 0 {
                return Err("C_BAD_STREAMID");
            }
            (l1 & ADDR_55_6) + (sid & ((1 << split) - 1)) * 64
        } else {
            base + sid * 64
        };
        let mut w = [0; 8];
        for (i, x) in w.iter_mut().enumerate() {
            *x = self.arena.read64(addr + 8 * i as u64).ok_or("F_STE_FETCH")?;
        }
        Ok(w)
    }

    /// Writes an event record as the SMMU would; `false` if it was not
    /// recorded (queue disabled or full).
    pub(crate) fn inject_event(&mut self, record: [u64; 4]) -> bool {
        let r = Rc::clone(&self.regs);
        if r.peek32(0x20) & (1 << 2) == 0 {
            return false;
        }
        let base = r.peek64(0xa0);
        let log2 = ((base & 0x1f) as u8).min(self.caps.eventqs);
        let addr = base & ADDR_55_5;
        let Some(ring) = Ring::new(log2) else { return false };
        let prod_reg = r.peek32(EVTQ_PROD);
        let cons_reg = r.peek32(EVTQ_CONS);
        let (prod, cons) = (prod_reg & ring.mask(), cons_reg & ring.mask());
        if ring.is_full(prod, cons) {
            if self.cfg.qemu_evtq_full {
                // QEMU: smmuv3_write_eventq fails, GERROR.EVENTQ_ABT_ERR toggles
                // unless already active.
                if (r.peek32(0x60) ^ r.peek32(0x64)) & 4 == 0 {
                    r.poke32(0x60, r.peek32(0x60) ^ 4);
                }
            } else if prod_reg >> 31 == cons_reg >> 31 {
                // 7.4: toggle OVFLG unless an overflow is already unacknowledged.
                r.poke32(EVTQ_PROD, prod_reg ^ (1 << 31));
            }
            return false;
        }
        let slot = addr + u64::from(ring.index(prod)) * 32;
        for (i, w) in record.iter().enumerate() {
            self.arena.write64(slot + 8 * i as u64, *w);
        }
        r.poke32(EVTQ_PROD, (prod_reg & (1 << 31)) | ring.advance(prod, 1));
        true
    }

    /// Forces SMMU_EVENTQ_PROD (to play a misbehaving device).
    pub(crate) fn poke_evtq_prod(&mut self, v: u32) {
        self.regs.poke32(EVTQ_PROD, v);
    }

    /// Raises a global error, as the SMMU would.
    pub(crate) fn raise_gerror(&mut self, bits: u32) {
        let r = &self.regs;
        r.poke32(0x60, r.peek32(0x60) ^ bits);
    }

    /// The register frame.
    pub(crate) fn regs(&self) -> &RegFrame {
        &self.regs
    }
}

/// The driver's `DelayNs`: each pause lets the device model run one step.
pub(crate) struct ModelDelay(Rc<RefCell<Model>>);

impl DelayNs for ModelDelay {
    fn delay_ns(&mut self, _ns: u32) {
        self.0.borrow_mut().step();
    }
}

/// Registers, RAM and the model, wired together.
pub(crate) struct Bench {
    regs: Rc<RegFrame>,
    frames: HeapFrames,
    model: Rc<RefCell<Model>>,
}

impl Bench {
    /// A bench with reset register values from `cfg`.
    pub(crate) fn new(cfg: ModelCfg) -> Self {
        let regs = Rc::new(RegFrame::new());
        for (i, v) in cfg.idr.iter().enumerate() {
            regs.poke32(4 * i, *v);
        }
        regs.poke32(0x1c, cfg.aidr);
        regs.poke32(0x44, cfg.gbpa_reset);
        regs.poke32(0x20, cfg.cr0_reset);
        regs.poke32(0x24, cfg.cr0_reset);
        let frames = HeapFrames::new(cfg.ram);
        let caps = Capabilities::decode(&IdRegs { idr: cfg.idr, iidr: 0, aidr: cfg.aidr });
        let model = Model {
            cfg,
            caps,
            regs: Rc::clone(&regs),
            arena: Rc::clone(&frames.arena),
            last_cr0: cfg.cr0_reset,
            log: Vec::new(),
            commands: Vec::new(),
            ste_at_cfgi: Vec::new(),
            steps: 0,
            msi_held: None,
        };
        Self { regs, frames, model: Rc::new(RefCell::new(model)) }
    }

    /// The register seam for the driver.
    pub(crate) fn regs(&self) -> SmmuRegs<'_> {
        self.regs.regs()
    }

    /// A memory provider over the bench's RAM.
    pub(crate) fn frames(&self) -> HeapFrames {
        self.frames.clone()
    }

    /// The driver's delay, which steps the model.
    pub(crate) fn delay(&self) -> ModelDelay {
        ModelDelay(Rc::clone(&self.model))
    }

    /// The model (do not hold across driver calls).
    pub(crate) fn model(&self) -> RefMut<'_, Model> {
        self.model.borrow_mut()
    }
}
