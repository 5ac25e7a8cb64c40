//! The Command queue (3.5, 6.3.26-28, 7.1): a ring of 16-byte commands in
//! memory, SMMU_CMDQ_PROD written by software, SMMU_CMDQ_CONS by the SMMU.
//!
//! This driver is the only producer. Commands are written in batches with one
//! PROD update per batch (after a DSB). Completion is observed by queuing a
//! CMD_SYNC and waiting, with a bounded budget, in one of two ways chosen once
//! at bring-up ([`SyncCompletion`]): polling CONS past the CMD_SYNC, or (SMMU
//! with MSIs and coherent access) polling a completion word in memory that the
//! CMD_SYNC's MSI writes, as Linux's arm-smmu-v3 does. A command error
//! (SMMU_GERROR.CMDQ_ERR) stops consumption at the failing command: it is
//! reported with its index and opcode, replaced by a CMD_SYNC (as Linux does)
//! and acknowledged in SMMU_GERRORN so consumption resumes.

use core::fmt;

use embedded_hal::delay::DelayNs;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::LocalRegisterCopy;

use crate::caps::Capabilities;
use crate::cmd::{opcode_name, Command, Sync};
use crate::dma::{dsb_ld, dsb_st, DmaFrames, DmaRegion, OutOfMemory};
use crate::gerror::{self, GlobalErrors};
use crate::queue::Ring;
use crate::regs::{SmmuPage0, CMDQ_BASE, CMDQ_CONS, CMDQ_PROD};
use crate::wait::{Timeout, Timeouts};

const ENTRY_WORDS: usize = 2;

/// SMMU_CMDQ_CONS.ERR codes (7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cerror {
    /// CERROR_NONE (not reported with an error).
    None,
    /// CERROR_ILL: illegal command.
    Ill,
    /// CERROR_ABT: abort on command fetch.
    Abt,
    /// CERROR_ATC_INV_SYNC: a CMD_SYNC failed to complete ATC invalidations.
    AtcInvSync,
    /// Another (reserved or IMPLEMENTATION DEFINED) code.
    Other(u8),
}

impl Cerror {
    /// Decodes SMMU_CMDQ_CONS.ERR.
    pub const fn from_code(code: u8) -> Self {
        match code {
            0 => Self::None,
            1 => Self::Ill,
            2 => Self::Abt,
            3 => Self::AtcInvSync,
            c => Self::Other(c),
        }
    }
}

/// A command the SMMU refused.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommandError {
    /// The ring slot of the command.
    pub index: u32,
    /// Its opcode.
    pub opcode: u8,
    /// The error.
    pub cerror: Cerror,
}

impl fmt::Debug for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} on {} (opcode {:#04x}) at slot {}",
            self.cerror,
            opcode_name(self.opcode),
            self.opcode,
            self.index
        )
    }
}

/// A Command queue operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdqError {
    /// A bounded wait ran out (CmdSync or CmdqSpace).
    Timeout(Timeout),
    /// The SMMU refused a command; it was replaced with a CMD_SYNC and
    /// consumption resumed.
    Command(CommandError),
}

impl From<Timeout> for CmdqError {
    fn from(t: Timeout) -> Self {
        Self::Timeout(t)
    }
}

/// How the driver learns that a CMD_SYNC completed (4.7.3). Chosen once at
/// bring-up from SMMU_IDR0 (see [`SyncCompletion::for_caps`]).
///
/// QEMU 10's SMMUv3 model has SMMU_IDR0.MSI == 0 (on a CMD_SYNC with
/// CS = SIG_IRQ it only pulses its wired CMD_SYNC interrupt and writes no
/// memory), so in QEMU the driver always uses [`SyncCompletion::ConsPoll`];
/// the MSI path is exercised by the host model in `crate::testing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncCompletion {
    /// CMD_SYNC with CS = SIG_IRQ and an MSI to a completion word owned by
    /// the queue (Normal Write-Back, Inner Shareable); MSIData is a sequence
    /// number, and the driver polls the word until it holds the number of the
    /// CMD_SYNC it waits for. Needs SMMU_IDR0.MSI and SMMU_IDR0.COHACC (the
    /// CPU reads the word through its cache).
    MsiWrite,
    /// CMD_SYNC with CS = SIG_NONE; the driver polls SMMU_CMDQ_CONS until it
    /// has moved past the CMD_SYNC.
    ConsPoll,
}

impl SyncCompletion {
    /// [`Self::MsiWrite`] when the SMMU supports MSIs (SMMU_IDR0.MSI) and
    /// accesses memory coherently (SMMU_IDR0.COHACC), unless `allow_msi` is
    /// false; [`Self::ConsPoll`] otherwise.
    pub const fn for_caps(caps: &Capabilities, allow_msi: bool) -> Self {
        if allow_msi && caps.msi && caps.cohacc {
            Self::MsiWrite
        } else {
            Self::ConsPoll
        }
    }
}

/// The memory a CMD_SYNC MSI writes, and the MSIData of the last CMD_SYNC.
#[derive(Debug)]
struct MsiCompletion {
    /// One 64-byte line of its own: the MSI writes the low 32 bits of word 0
    /// (some SMMUs write an 8-byte payload; it stays inside the line).
    word: DmaRegion,
    /// MSIData of the last CMD_SYNC queued.
    seq: u32,
}

const MSI_WORD_BYTES: usize = 64;

/// The Command queue.
#[derive(Debug)]
pub struct CommandQueue {
    ring: Ring,
    mem: DmaRegion,
    /// Our PROD.WR (index and wrap): we are the only producer.
    prod: u32,
    /// Last CONS.RD observed.
    cons: u32,
    /// First command error seen since the last report.
    error: Option<CommandError>,
    /// `Some` when CMD_SYNC completion is signalled by an MSI write.
    msi: Option<MsiCompletion>,
    /// Ring position (with wrap) of the MSI CMD_SYNC being waited for.
    msi_sync_at: Option<u32>,
}

impl CommandQueue {
    /// Allocates a queue of 2^`log2size` (at most 2^19) entries, aligned to its size
    /// (at least 32 bytes, 6.3.26).
    pub fn new<F: DmaFrames + ?Sized>(
        frames: &mut F,
        log2size: u8,
        coherent: bool,
    ) -> Result<Self, OutOfMemory> {
        // 2^19 entries at most (SMMU_IDR1.CMDQS/EVENTQS/PRIQS <= 19).
        let ring = Ring::clamped(log2size);
        let size = (ring.entries() as usize) * ENTRY_WORDS * 8;
        let mem = DmaRegion::alloc(frames, size, size.max(32), coherent)?;
        Ok(Self { ring, mem, prod: 0, cons: 0, error: None, msi: None, msi_sync_at: None })
    }

    /// Switches CMD_SYNC completion to [`SyncCompletion::MsiWrite`],
    /// allocating the completion word. Only for an SMMU with SMMU_IDR0.MSI
    /// and coherent access (the word is read without cache maintenance).
    pub fn use_msi_completion<F: DmaFrames + ?Sized>(&mut self, frames: &mut F) -> Result<(), OutOfMemory> {
        if self.msi.is_none() {
            let word = DmaRegion::alloc(frames, MSI_WORD_BYTES, MSI_WORD_BYTES, true)?;
            self.msi = Some(MsiCompletion { word, seq: 0 });
        }
        Ok(())
    }

    /// How CMD_SYNC completion is observed.
    pub fn sync_completion(&self) -> SyncCompletion {
        if self.msi.is_some() {
            SyncCompletion::MsiWrite
        } else {
            SyncCompletion::ConsPoll
        }
    }

    /// The ring geometry.
    pub fn ring(&self) -> Ring {
        self.ring
    }

    /// Our producer index (with wrap flag).
    pub fn prod(&self) -> u32 {
        self.prod
    }

    /// The value for SMMU_CMDQ_BASE: ADDR, LOG2SIZE, read-allocate hint.
    pub fn base_register(&self) -> u64 {
        let mut r = LocalRegisterCopy::<u64, CMDQ_BASE::Register>::new(0);
        r.write(
            CMDQ_BASE::ADDR.val(self.mem.pa().0 >> 5)
                + CMDQ_BASE::LOG2SIZE.val(u64::from(self.ring.log2size()))
                + CMDQ_BASE::RA::SET,
        );
        r.get()
    }

    /// Programs SMMU_CMDQ_BASE/PROD/CONS; only while SMMU_CR0.CMDQEN == 0.
    pub(crate) fn program(&mut self, regs: &SmmuPage0) {
        regs.cmdq_base.set(self.base_register());
        regs.cmdq_prod.set(0);
        regs.cmdq_cons.set(0);
        self.prod = 0;
        self.cons = 0;
    }

    fn read_cons(&mut self, regs: &SmmuPage0) -> u32 {
        let cons = LocalRegisterCopy::<u32, CMDQ_CONS::Register>::new(regs.cmdq_cons.get());
        self.cons = cons.read(CMDQ_CONS::RD) & self.ring.mask();
        self.cons
    }

    /// If SMMU_GERROR.CMDQ_ERR is active: records the failing command,
    /// replaces it with a CMD_SYNC unless the error is CERROR_ATC_INV_SYNC
    /// (then the CMD_SYNC itself is retried, 7.1), and acknowledges the
    /// error so the SMMU resumes. Returns the error handled, if any.
    pub fn recover(&mut self, regs: &SmmuPage0) -> Option<CommandError> {
        if !gerror::active(regs).contains(GlobalErrors::CMDQ_ERR) {
            return None;
        }
        let cons = LocalRegisterCopy::<u32, CMDQ_CONS::Register>::new(regs.cmdq_cons.get());
        // ERR is 7 bits wide.
        let cerror = Cerror::from_code(cons.read(CMDQ_CONS::ERR) as u8);
        let index = self.ring.index(cons.read(CMDQ_CONS::RD));
        let slot = index as usize * ENTRY_WORDS;
        let words = self.mem.read_words::<2>(slot);
        let err = CommandError { index, opcode: words[0] as u8, cerror };
        // The MSI CMD_SYNC being waited for is kept as it is (only its MSI
        // tells the waiter that it completed); anything else becomes a plain
        // CMD_SYNC.
        let ours = self.msi_sync_at.is_some_and(|at| self.ring.index(at) == index);
        if cerror != Cerror::AtcInvSync && !ours {
            self.mem.write_words(slot, &Command::sync().encode());
            self.mem.sync_for_device(slot, ENTRY_WORDS);
            // The replacement must be observable before the acknowledge
            // restarts consumption (7.1: commands at CONS are re-fetched).
            dsb_st();
        }
        gerror::acknowledge(regs, GlobalErrors::CMDQ_ERR);
        self.error.get_or_insert(err);
        Some(err)
    }

    /// Takes the first command error recorded since the last call.
    pub fn take_error(&mut self) -> Option<CommandError> {
        self.error.take()
    }

    /// Waits until at least one slot is free.
    fn wait_space<D: DelayNs>(
        &mut self,
        regs: &SmmuPage0,
        delay: &mut D,
        budget: Timeouts,
    ) -> Result<u32, Timeout> {
        let (ring, prod) = (self.ring, self.prod);
        crate::wait::poll(delay, budget, Timeout::CmdqSpace, || {
            let cons = self.read_cons(regs);
            let free = ring.free(prod, cons);
            if free == 0 {
                // A stuck error would keep the queue full forever.
                self.recover(regs);
            }
            (free > 0).then_some(free)
        })
    }

    /// Writes `cmds` to the queue in batches (as many as fit, then one PROD
    /// update), waiting for space when the queue is full. Does not wait for
    /// consumption.
    pub fn submit<D: DelayNs>(
        &mut self,
        regs: &SmmuPage0,
        delay: &mut D,
        budget: Timeouts,
        cmds: impl IntoIterator<Item = Command>,
    ) -> Result<(), CmdqError> {
        self.submit_words(regs, delay, budget, cmds.into_iter().map(|c| c.encode()))
    }

    /// [`Self::submit`] for already encoded command words.
    pub fn submit_words<D: DelayNs>(
        &mut self,
        regs: &SmmuPage0,
        delay: &mut D,
        budget: Timeouts,
        cmds: impl IntoIterator<Item = [u64; 2]>,
    ) -> Result<(), CmdqError> {
        let mut cmds = cmds.into_iter().fuse().peekable();
        while cmds.peek().is_some() {
            let mut free = self.ring.free(self.prod, self.cons);
            if free == 0 {
                free = self.wait_space(regs, delay, budget)?;
            }
            let start = self.prod;
            let mut written = 0;
            while written < free {
                let Some(words) = cmds.next() else { break };
                let slot = self.ring.index(self.prod) as usize * ENTRY_WORDS;
                self.mem.write_words(slot, &words);
                self.prod = self.ring.advance(self.prod, 1);
                written += 1;
            }
            self.publish(start, written);
            // 3.5 / 4.1.2: commands must be observable before PROD moves.
            dsb_st();
            regs.cmdq_prod.set(CMDQ_PROD::WR.val(self.prod).value);
        }
        Ok(())
    }

    /// Cache maintenance for `n` entries from `start` (split at the wrap).
    fn publish(&self, start: u32, n: u32) {
        let first = self.ring.index(start);
        let to_end = (self.ring.entries() - first).min(n);
        self.mem.sync_for_device(first as usize * ENTRY_WORDS, to_end as usize * ENTRY_WORDS);
        if n > to_end {
            self.mem.sync_for_device(0, (n - to_end) as usize * ENTRY_WORDS);
        }
    }

    /// Queues a CMD_SYNC and waits until it completed, i.e. until all
    /// earlier commands completed (4.7.3): by polling CONS past it, or by
    /// polling the word its MSI writes ([`Self::sync_completion`]). Command
    /// errors met on the way are recovered; the first one is returned after
    /// the CMD_SYNC completes.
    pub fn sync<D: DelayNs>(
        &mut self,
        regs: &SmmuPage0,
        delay: &mut D,
        budget: Timeouts,
    ) -> Result<(), CmdqError> {
        if self.msi.is_some() {
            self.sync_msi(regs, delay, budget)?;
        } else {
            self.sync_cons(regs, delay, budget)?;
        }
        match self.take_error() {
            Some(e) => Err(CmdqError::Command(e)),
            None => Ok(()),
        }
    }

    /// CS = SIG_NONE, then poll CONS past the CMD_SYNC.
    fn sync_cons<D: DelayNs>(
        &mut self,
        regs: &SmmuPage0,
        delay: &mut D,
        budget: Timeouts,
    ) -> Result<(), CmdqError> {
        self.submit(regs, delay, budget, [Command::sync()])?;
        let (ring, prod) = (self.ring, self.prod);
        let sync_at = ring.advance(prod, ring.mask());
        crate::wait::poll(delay, budget, Timeout::CmdSync, || {
            let cons = self.read_cons(regs);
            if ring.consumed(prod, cons, sync_at) {
                return Some(());
            }
            // 7.1: poll GERROR too, or an error would look like a hang.
            self.recover(regs);
            None
        })?;
        Ok(())
    }

    /// CS = SIG_IRQ with an MSI writing the next sequence number to the
    /// completion word, then poll the word. CONS is not read for completion
    /// (the cached CONS stays as it was: space is still found by reading
    /// CONS, which is always safe). A sequence number rather than a fixed
    /// value means a late MSI of an earlier, timed-out CMD_SYNC cannot be
    /// taken for this one's.
    fn sync_msi<D: DelayNs>(
        &mut self,
        regs: &SmmuPage0,
        delay: &mut D,
        budget: Timeouts,
    ) -> Result<(), CmdqError> {
        let Some(msi) = self.msi.as_mut() else { return self.sync_cons(regs, delay, budget) };
        msi.seq = msi.seq.wrapping_add(1);
        let (seq, pa) = (msi.seq, msi.word.pa());
        // The CMD_SYNC lands in the slot at PROD (waiting for space does not
        // move PROD). Recorded only once it is queued: while waiting for
        // space, the slot at PROD may still hold an older command.
        let at = self.prod;
        let submitted = self.submit(regs, delay, budget, [Command::Sync(Sync::msi(pa, seq))]);
        let waited = submitted.and_then(|()| {
            self.msi_sync_at = Some(at);
            crate::wait::poll(delay, budget, Timeout::CmdSync, || {
                if self.msi_word() == Some(seq) {
                    return Some(());
                }
                // 7.1: poll GERROR too, or an error would look like a hang.
                self.recover(regs);
                None
            })
            .map_err(CmdqError::from)
        });
        self.msi_sync_at = None;
        waited?;
        // The MSI was observed: later accesses (the caller reusing memory the
        // commands invalidated) must not be performed before that read.
        dsb_ld();
        Ok(())
    }

    /// The completion word (the MSIData last written), if MSI completion is in use.
    fn msi_word(&self) -> Option<u32> {
        let msi = self.msi.as_ref()?;
        msi.word.sync_for_cpu(0, 1);
        // The MSI writes 32 bits at the word's address: the low half of
        // little-endian word 0.
        Some(msi.word.read(0) as u32)
    }

    /// `submit` then `sync`.
    pub fn submit_sync<D: DelayNs>(
        &mut self,
        regs: &SmmuPage0,
        delay: &mut D,
        budget: Timeouts,
        cmds: impl IntoIterator<Item = Command>,
    ) -> Result<(), CmdqError> {
        self.submit(regs, delay, budget, cmds)?;
        self.sync(regs, delay, budget)
    }

    /// The command words in slot `index` (for tests and diagnostics).
    pub fn entry(&self, index: u32) -> [u64; 2] {
        self.mem.read_words((self.ring.index(index) as usize) * ENTRY_WORDS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::SyncSignal;
    use crate::ids::StreamId;
    use crate::regs::CR0;
    use crate::testing::{Bench, ModelCfg, Obs, QEMU_IDR};
    use iommu_common::addr::PhysAddr;
    use std::vec::Vec;

    fn budget() -> Timeouts {
        Timeouts { polls: 50, poll_interval_ns: 1 }
    }

    fn cfgi(sid: u32) -> Command {
        Command::CfgiSte { sid: StreamId(sid), leaf: true }
    }

    #[test]
    fn base_register_layout() {
        let bench = Bench::new(ModelCfg::default());
        let mut frames = bench.frames();
        let q = CommandQueue::new(&mut frames, 3, true).unwrap();
        // ADDR [55:5], LOG2SIZE [4:0], RA [62].
        assert_eq!(q.base_register(), q.mem.pa().0 | 3 | (1 << 62));
        assert!(q.mem.pa().is_aligned(16 << 3));
    }

    #[test]
    fn batch_is_one_prod_update_and_crosses_the_wrap() {
        let bench = Bench::new(ModelCfg::default());
        let mut frames = bench.frames();
        let regs = bench.regs();
        let mut q = CommandQueue::new(&mut frames, 2, true).unwrap(); // 4 entries
        q.program(regs.page0());
        regs.page0().cr0.write(CR0::CMDQEN::SET);
        let mut delay = bench.delay();
        // Fill 3, sync (4th slot), then a batch of 3 crossing the wrap.
        q.submit_sync(regs.page0(), &mut delay, budget(), [cfgi(1), cfgi(2), cfgi(3)]).unwrap();
        assert_eq!(q.prod(), 0b100, "4 entries written: index 0, wrap flag set");
        // The batch fills slots 0..3 of the second lap; with space for all,
        // nothing waits, so the SMMU sees one PROD update covering all three.
        let steps = bench.model().steps;
        q.submit(regs.page0(), &mut delay, budget(), [cfgi(4), cfgi(5), cfgi(6)]).unwrap();
        assert_eq!(bench.model().steps, steps, "no pause inside a batch");
        assert_eq!(regs.page0().cmdq_prod.get(), 0b111);
        assert_eq!(bench.model().commands.len(), 4, "nothing consumed before the SMMU runs");
        q.sync(regs.page0(), &mut delay, budget()).unwrap();
        let m = bench.model();
        let sids: Vec<u32> = m
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::CfgiSte { sid, .. } => Some(sid.0),
                _ => None,
            })
            .collect();
        assert_eq!(sids, [1, 2, 3, 4, 5, 6]);
        assert_eq!(m.commands.iter().filter(|c| matches!(c, Command::Sync(_))).count(), 2);
    }

    #[test]
    fn more_commands_than_slots_wait_for_space() {
        let bench = Bench::new(ModelCfg::default());
        let mut frames = bench.frames();
        let regs = bench.regs();
        let mut q = CommandQueue::new(&mut frames, 1, true).unwrap(); // 2 entries
        q.program(regs.page0());
        regs.page0().cr0.write(CR0::CMDQEN::SET);
        let mut delay = bench.delay();
        q.submit_sync(regs.page0(), &mut delay, budget(), (0..9).map(cfgi)).unwrap();
        assert_eq!(bench.model().commands.len(), 10);
    }

    #[test]
    fn sync_times_out_when_the_smmu_does_not_consume() {
        let bench = Bench::new(ModelCfg::default());
        let mut frames = bench.frames();
        let regs = bench.regs();
        let mut q = CommandQueue::new(&mut frames, 2, true).unwrap();
        q.program(regs.page0());
        // CMDQEN never set: nothing is consumed.
        let mut delay = bench.delay();
        let r = q.submit_sync(regs.page0(), &mut delay, budget(), [cfgi(1)]);
        assert_eq!(r, Err(CmdqError::Timeout(Timeout::CmdSync)));
        // A full queue then times out waiting for space, never spins.
        let r = q.submit(regs.page0(), &mut delay, budget(), (0..8).map(cfgi));
        assert_eq!(r, Err(CmdqError::Timeout(Timeout::CmdqSpace)));
    }

    #[test]
    fn illegal_command_is_reported_replaced_and_acknowledged() {
        let bench = Bench::new(ModelCfg::default());
        let mut frames = bench.frames();
        let regs = bench.regs();
        let mut q = CommandQueue::new(&mut frames, 3, true).unwrap();
        q.program(regs.page0());
        regs.page0().cr0.write(CR0::CMDQEN::SET);
        let mut delay = bench.delay();
        // QEMU's model advertises no Hyp: the spec makes CMD_TLBI_EL2_ALL
        // ILLEGAL there (the fake follows the spec).
        let r = q.submit_sync(regs.page0(), &mut delay, budget(), [cfgi(1), Command::TlbiEl2All, cfgi(2)]);
        assert_eq!(r, Err(CmdqError::Command(CommandError { index: 1, opcode: 0x20, cerror: Cerror::Ill })));
        // Replaced by a CMD_SYNC, consumption resumed: cfgi(2) and the final
        // CMD_SYNC were executed, and the error is no longer active.
        assert_eq!(q.entry(1), Command::sync().encode());
        let m = bench.model();
        assert!(m.commands.contains(&cfgi(2)));
        assert!(!gerror::active(regs.page0()).contains(GlobalErrors::CMDQ_ERR));
        drop(m);
        // The next sync is clean.
        q.submit_sync(regs.page0(), &mut delay, budget(), [cfgi(3)]).unwrap();
    }

    /// QEMU's ID registers with SMMU_IDR0.MSI (bit 13) set; COHACC is set.
    fn msi_cfg() -> ModelCfg {
        let mut idr = QEMU_IDR;
        idr[0] |= 1 << 13;
        ModelCfg { idr, ..ModelCfg::default() }
    }

    /// A queue of 8 entries, programmed and enabled, MSI completion if `msi`.
    fn queue(bench: &Bench, msi: bool) -> CommandQueue {
        let mut frames = bench.frames();
        let mut q = CommandQueue::new(&mut frames, 3, true).unwrap();
        if msi {
            q.use_msi_completion(&mut frames).unwrap();
        }
        let regs = bench.regs();
        q.program(regs.page0());
        regs.page0().cr0.write(CR0::CMDQEN::SET);
        q
    }

    fn msi_pa(q: &CommandQueue) -> u64 {
        q.msi.as_ref().unwrap().word.pa().0
    }

    fn syncs(bench: &Bench) -> Vec<crate::cmd::Sync> {
        let m = bench.model();
        m.commands.iter().filter_map(|c| if let Command::Sync(s) = c { Some(*s) } else { None }).collect()
    }

    #[test]
    fn completion_choice_follows_idr0_msi_and_cohacc() {
        let caps = |idr0: u32| {
            let mut idr = QEMU_IDR;
            idr[0] = idr0;
            crate::caps::Capabilities::decode(&crate::caps::IdRegs { idr, iidr: 0, aidr: 1 })
        };
        let (msi, cohacc) = (1 << 13, 1 << 4);
        let qemu = QEMU_IDR[0];
        assert_eq!(qemu & msi, 0, "QEMU 10 has no MSI");
        assert_eq!(SyncCompletion::for_caps(&caps(qemu), true), SyncCompletion::ConsPoll);
        assert_eq!(SyncCompletion::for_caps(&caps(qemu | msi), true), SyncCompletion::MsiWrite);
        assert_eq!(SyncCompletion::for_caps(&caps(qemu | msi), false), SyncCompletion::ConsPoll);
        assert_eq!(SyncCompletion::for_caps(&caps((qemu | msi) & !cohacc), true), SyncCompletion::ConsPoll);
    }

    #[test]
    fn msi_sync_completes_on_the_memory_word_before_cons_moves() {
        // The model writes the MSI and holds CONS on the CMD_SYNC until its
        // next step: a driver polling CONS could not return before that step.
        let bench = Bench::new(ModelCfg { msi_before_cons: true, ..msi_cfg() });
        let regs = bench.regs();
        let mut delay = bench.delay();
        let mut q = queue(&bench, true);
        assert_eq!(q.sync_completion(), SyncCompletion::MsiWrite);
        q.submit_sync(regs.page0(), &mut delay, budget(), [cfgi(1), cfgi(2)]).unwrap();
        let word = msi_pa(&q);
        // The CMD_SYNC (slot 2) asked for an MSI of sequence number 1 to the word...
        assert_eq!(q.entry(2), Command::Sync(crate::cmd::Sync::msi(PhysAddr(word), 1)).encode());
        let m = bench.model();
        assert_eq!(m.log.last(), Some(&Obs::Msi { addr: word, data: 1 }));
        assert_eq!(m.read32(word), Some(1));
        // ...and the driver returned while CONS still points at it.
        assert_eq!(regs.page0().cmdq_cons.get() & q.ring().mask(), 2, "CONS not past the CMD_SYNC");
        assert!(m.msi_held_for_test());
        drop(m);
        // The next CMD_SYNC carries the next number; CONS catches up meanwhile.
        q.submit_sync(regs.page0(), &mut delay, budget(), [cfgi(3)]).unwrap();
        assert_eq!(bench.model().read32(word), Some(2));
        assert_eq!(regs.page0().cmdq_cons.get() & q.ring().mask(), 4);
        let s = syncs(&bench);
        assert_eq!(
            s.iter().map(|s| (s.cs, s.msi_data)).collect::<Vec<_>>(),
            [(SyncSignal::Irq, 1), (SyncSignal::Irq, 2)]
        );
        assert!(s.iter().all(|s| s.msi_addr.0 == word && s.msh == 0b11 && s.msi_attr == 0xf));
    }

    #[test]
    fn msi_completion_survives_the_wrap_and_waits_for_space() {
        let bench = Bench::new(ModelCfg { msi_before_cons: true, ..msi_cfg() });
        let regs = bench.regs();
        let mut delay = bench.delay();
        let mut q = queue(&bench, true);
        for i in 0..20 {
            q.submit_sync(regs.page0(), &mut delay, budget(), (0..i % 9).map(cfgi)).unwrap();
        }
        assert_eq!(bench.model().read32(msi_pa(&q)), Some(20));
        assert_eq!(syncs(&bench).len(), 20);
    }

    #[test]
    fn cons_polling_never_asks_for_an_msi() {
        // An MSI-capable SMMU, but the queue was left on CONS polling (as
        // for SMMU_IDR0.MSI == 0, or when forced).
        let bench = Bench::new(msi_cfg());
        let regs = bench.regs();
        let mut delay = bench.delay();
        let mut q = queue(&bench, false);
        assert_eq!(q.sync_completion(), SyncCompletion::ConsPoll);
        q.submit_sync(regs.page0(), &mut delay, budget(), [cfgi(1)]).unwrap();
        q.submit_sync(regs.page0(), &mut delay, budget(), [cfgi(2)]).unwrap();
        let s = syncs(&bench);
        assert_eq!(s.len(), 2);
        assert!(s.iter().all(|s| s.cs == SyncSignal::None && s.msi_addr.0 == 0));
        assert!(!bench.model().log.iter().any(|o| matches!(o, Obs::Msi { .. })));
    }

    #[test]
    fn lost_msi_times_out_naming_cmd_sync() {
        // The SMMU consumes the CMD_SYNC (CONS moves past it) but its MSI
        // never lands: the driver waits on the word only, and gives up.
        let bench = Bench::new(ModelCfg { msi_writes: false, ..msi_cfg() });
        let regs = bench.regs();
        let mut delay = bench.delay();
        let mut q = queue(&bench, true);
        let r = q.submit_sync(regs.page0(), &mut delay, budget(), [cfgi(1)]);
        assert_eq!(r, Err(CmdqError::Timeout(Timeout::CmdSync)));
        assert_eq!(regs.page0().cmdq_cons.get() & q.ring().mask(), 2, "the CMD_SYNC was consumed");
        assert_eq!(bench.model().read32(msi_pa(&q)), Some(0));
        // A queue that is not consumed at all times out the same way.
        let bench = Bench::new(ModelCfg { consume: false, ..msi_cfg() });
        let mut delay = bench.delay();
        let mut q = queue(&bench, true);
        let r = q.submit_sync(bench.regs().page0(), &mut delay, budget(), [cfgi(1)]);
        assert_eq!(r, Err(CmdqError::Timeout(Timeout::CmdSync)));
    }

    #[test]
    fn command_error_before_an_msi_sync_is_recovered() {
        let bench = Bench::new(ModelCfg { msi_before_cons: true, ..msi_cfg() });
        let regs = bench.regs();
        let mut delay = bench.delay();
        let mut q = queue(&bench, true);
        let r = q.submit_sync(regs.page0(), &mut delay, budget(), [cfgi(1), Command::TlbiEl2All, cfgi(2)]);
        assert_eq!(r, Err(CmdqError::Command(CommandError { index: 1, opcode: 0x20, cerror: Cerror::Ill })));
        // The failing command became a plain CMD_SYNC; ours kept its MSI.
        assert_eq!(q.entry(1), Command::sync().encode());
        assert_eq!(bench.model().read32(msi_pa(&q)), Some(1));
        assert!(bench.model().commands.contains(&cfgi(2)));
        q.submit_sync(regs.page0(), &mut delay, budget(), [cfgi(3)]).unwrap();
        assert_eq!(bench.model().read32(msi_pa(&q)), Some(2));
    }
}
