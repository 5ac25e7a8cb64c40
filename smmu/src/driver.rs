//! Probe, bring-up and the public operations of one SMMU.
//!
//! ```text
//! let regs  = unsafe { SmmuRegs::new(base) };        // the MMIO seam
//! let probe = Smmu::probe(regs)?;                      // reads SMMU_IDR*, AIDR
//! let smmu  = probe.init(&SmmuConfig::default(), frames, delay)?;
//! smmu.set_ste(sid, &Ste::stage2(cfg))?;               // safe update sequence
//! smmu.invalidate_s2_range(vmid, ipa, len)?;
//! smmu.drain_events(|e| log(e));
//! ```
//!
//! Bring-up (3.11, following Linux's `arm_smmu_device_reset`, with abort
//! first): GBPA.ABORT is set before anything else, so while the SMMU is
//! disabled no transaction bypasses it; then SMMU_CR0 = 0, interrupts off,
//! stale global errors acknowledged, tables and queues allocated and
//! programmed (every STE abort), Command queue on, configuration and TLBs
//! invalidated, Event queue (and PRI queue) on, SMMUEN last. Every wait is
//! bounded and names what did not acknowledge.

use core::fmt;

use embedded_hal::delay::DelayNs;
use iommu_common::addr::{Iova, Ipa};
use tock_registers::interfaces::{ReadWriteable, Readable, Writeable};
use tock_registers::LocalRegisterCopy;

use crate::caps::{Capabilities, CapsError, Granule, IdRegs, Requirements, StLevel};
use crate::cd::Cd;
use crate::cdtab::{CdInvalidation, CdTabError, CdTable};
use crate::cmd::{plan_invalidation, Command, InvalidationPolicy, PriResponse, TlbiTarget};
use crate::cmdq::{CmdqError, CommandError, CommandQueue, SyncCompletion};
use crate::dma::{DmaFrames, OutOfMemory};
use crate::event::Event;
use crate::evtq::{DrainReport, EventQueue};
use crate::gerror::{self, GlobalErrors};
use crate::ids::{Asid, StreamId, SubstreamId, Vmid};
use crate::priq::{PageRequest, PriQueue};
use crate::regs::{SmmuRegs, CR0, CR1, CR2, GBPA, IRQ_CTRL};
use crate::ste::{S1Fmt, Ste, SteError};
use crate::strtab::{StreamTable, StrtabError, StrtabFormat};
use crate::update::UpdatePath;
use crate::wait::{poll, Cr0Bit, Timeout, Timeouts};

/// A driver error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The SMMU lacks a required feature.
    Caps(CapsError),
    /// A bounded wait ran out; names what did not acknowledge.
    Timeout(Timeout),
    /// Table or queue memory could not be allocated.
    OutOfMemory(OutOfMemory),
    /// The SMMU refused a command (it was replaced and the queue resumed).
    Command(CommandError),
    /// A StreamID beyond the Stream table.
    SidOutOfRange {
        /// The StreamID.
        sid: StreamId,
        /// StreamID bits covered.
        sid_bits: u8,
    },
    /// A SubstreamID beyond a CD table.
    SsidOutOfRange {
        /// The SubstreamID.
        ssid: SubstreamId,
    },
    /// The STE or CD is not valid for this SMMU.
    Entry(SteError),
    /// The configuration cannot be applied (names the field).
    Config(&'static str),
    /// A command given to [`Smmu::submit_sync`] does not encode exactly
    /// (see [`Command::check`]); it was not submitted.
    InvalidCommand(crate::cmd::CmdDecodeError),
    /// Table bookkeeping is inconsistent (memory corruption).
    Corrupt,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Caps(e) => write!(f, "{e}"),
            Self::Timeout(t) => write!(f, "timeout: {t}"),
            Self::OutOfMemory(o) => write!(f, "out of memory allocating {} bytes", o.size),
            Self::Command(c) => write!(f, "command error: {c:?}"),
            Self::SidOutOfRange { sid, sid_bits } => write!(f, "{sid} beyond {sid_bits} StreamID bits"),
            Self::SsidOutOfRange { ssid } => write!(f, "SubstreamID {:#x} beyond the CD table", ssid.get()),
            Self::Entry(e) => write!(f, "{e}"),
            Self::Config(what) => write!(f, "bad configuration: {what}"),
            Self::InvalidCommand(e) => write!(f, "invalid command: {e}"),
            Self::Corrupt => f.write_str("table bookkeeping corrupt"),
        }
    }
}

impl From<CmdqError> for Error {
    fn from(e: CmdqError) -> Self {
        match e {
            CmdqError::Timeout(t) => Self::Timeout(t),
            CmdqError::Command(c) => Self::Command(c),
        }
    }
}

impl From<Timeout> for Error {
    fn from(t: Timeout) -> Self {
        Self::Timeout(t)
    }
}

impl From<OutOfMemory> for Error {
    fn from(o: OutOfMemory) -> Self {
        Self::OutOfMemory(o)
    }
}

impl From<StrtabError<Error>> for Error {
    fn from(e: StrtabError<Error>) -> Self {
        match e {
            StrtabError::SidOutOfRange { sid, sid_bits } => Self::SidOutOfRange { sid, sid_bits },
            StrtabError::BadGeometry => Self::Config("Stream table geometry"),
            StrtabError::OutOfMemory(o) => Self::OutOfMemory(o),
            StrtabError::Corrupt { .. } => Self::Corrupt,
            StrtabError::Invalidate(e) => e,
        }
    }
}

impl From<CdTabError<Error>> for Error {
    fn from(e: CdTabError<Error>) -> Self {
        match e {
            CdTabError::SsidOutOfRange { ssid, .. } => Self::SsidOutOfRange { ssid },
            CdTabError::BadGeometry => Self::Config("CD table geometry"),
            CdTabError::OutOfMemory(o) => Self::OutOfMemory(o),
            CdTabError::Corrupt => Self::Corrupt,
            CdTabError::Invalidate(e) => e,
        }
    }
}

/// Stream table layout choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrtabChoice {
    /// 2-level with SPLIT = 8 (16 KiB leaf arrays of 256 STEs, one PCI bus,
    /// as Linux) when supported and the StreamID space exceeds 2^8, else
    /// linear.
    Auto,
    /// Linear (memory: 64 bytes per StreamID).
    Linear,
    /// 2-level with the given SPLIT (6, 8 or 10).
    TwoLevel {
        /// SMMU_STRTAB_BASE_CFG.SPLIT.
        split: u8,
    },
}

/// Interrupt enables for SMMU_IRQ_CTRL (the driver itself polls).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IrqEnables {
    /// GERROR_IRQEN.
    pub gerror: bool,
    /// EVENTQ_IRQEN.
    pub eventq: bool,
    /// PRIQ_IRQEN.
    pub priq: bool,
}

/// Bring-up parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmmuConfig {
    /// What the SMMU must support; checked before touching it.
    pub requirements: Requirements,
    /// Stream table layout.
    pub strtab: StrtabChoice,
    /// Cover only StreamIDs below 2^n (capped at SMMU_IDR1.SIDSIZE).
    pub sid_bits: Option<u8>,
    /// log2 of Command queue entries (capped at SMMU_IDR1.CMDQS).
    pub cmdq_log2size: u8,
    /// log2 of Event queue entries (capped at SMMU_IDR1.EVENTQS). QEMU writes
    /// one record per 4 bytes of a failed DMA, so this fills quickly.
    pub evtq_log2size: u8,
    /// log2 of PRI queue entries (capped at SMMU_IDR1.PRIQS); the PRI queue
    /// exists only if SMMU_IDR0.PRI.
    pub priq_log2size: u8,
    /// Record C_BAD_STREAMID for StreamIDs without an STE (SMMU_CR2.RECINVSID).
    pub record_invalid_sids: bool,
    /// Interrupts to enable.
    pub irqs: IrqEnables,
    /// Poll budgets.
    pub timeouts: Timeouts,
    /// Above this many TLBI commands for a range, invalidate the whole VMID/ASID.
    pub max_range_commands: usize,
    /// Let CMD_SYNC signal completion with an MSI write to memory when the
    /// SMMU can (SMMU_IDR0.MSI and COHACC); `false` forces CONS polling.
    /// See [`SyncCompletion`].
    pub sync_msi: bool,
}

impl Default for SmmuConfig {
    fn default() -> Self {
        Self {
            requirements: Requirements::STAGE2_4K,
            strtab: StrtabChoice::Auto,
            sid_bits: None,
            cmdq_log2size: 8,
            evtq_log2size: 10,
            priq_log2size: 8,
            record_invalid_sids: true,
            irqs: IrqEnables::default(),
            timeouts: Timeouts::default(),
            max_range_commands: 64,
            sync_msi: true,
        }
    }
}

/// A probed SMMU: capabilities known, nothing written yet.
pub struct SmmuProbe<'r> {
    regs: SmmuRegs<'r>,
    caps: Capabilities,
    id: IdRegs,
}

impl fmt::Debug for SmmuProbe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmmuProbe").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Global errors found and handled by [`Smmu::handle_gerror`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct GerrorReport {
    /// The errors that were active (all now acknowledged).
    pub errors: GlobalErrors,
    /// For CMDQ_ERR: the command that failed (replaced by a CMD_SYNC).
    pub command: Option<CommandError>,
}

/// An initialized, enabled SMMU.
pub struct Smmu<'r, F, D> {
    regs: SmmuRegs<'r>,
    caps: Capabilities,
    frames: F,
    delay: D,
    timeouts: Timeouts,
    strtab: StreamTable,
    cmdq: CommandQueue,
    evtq: EventQueue,
    priq: Option<PriQueue>,
    coherent: bool,
    policy: InvalidationPolicy,
    stale_gerrors: GlobalErrors,
}

impl<F, D> fmt::Debug for Smmu<'_, F, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Smmu")
            .field("strtab", &self.strtab.format())
            .field("sid_bits", &self.strtab.sid_bits())
            .field("coherent", &self.coherent)
            .field("sync_completion", &self.cmdq.sync_completion())
            .finish_non_exhaustive()
    }
}

impl<'r> Smmu<'r, (), ()> {
    /// Reads SMMU_IDR0..5, SMMU_IIDR and SMMU_AIDR and decodes them. Writes
    /// nothing.
    pub fn probe(regs: SmmuRegs<'r>) -> SmmuProbe<'r> {
        let p = regs.page0();
        let id = IdRegs {
            idr: [p.idr0.get(), p.idr1.get(), p.idr2.get(), p.idr3.get(), p.idr4.get(), p.idr5.get()],
            iidr: p.iidr.get(),
            aidr: p.aidr.get(),
        };
        SmmuProbe { regs, caps: Capabilities::decode(&id), id }
    }
}

impl<'r> SmmuProbe<'r> {
    /// The decoded capabilities.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// The raw ID registers.
    pub fn id_regs(&self) -> &IdRegs {
        &self.id
    }

    /// Brings the SMMU up (see the module documentation). On error the SMMU
    /// is left disabled with SMMU_GBPA.ABORT set whenever that step was
    /// reached.
    pub fn init<F: DmaFrames, D: DelayNs>(
        self,
        config: &SmmuConfig,
        mut frames: F,
        mut delay: D,
    ) -> Result<Smmu<'r, F, D>, Error> {
        let caps = self.caps;
        caps.check(&config.requirements).map_err(Error::Caps)?;
        let regs = self.regs;
        let p0 = regs.page0();
        let t = config.timeouts;

        // 1. Abort incoming transactions while the SMMU is disabled. 6.3.14.1:
        //    write only when Update == 0, with Update set, then wait for it.
        poll(&mut delay, t, Timeout::GbpaUpdate, || (!p0.gbpa.is_set(GBPA::UPDATE)).then_some(()))?;
        let gbpa = p0.gbpa.get();
        let mut g = LocalRegisterCopy::<u32, GBPA::Register>::new(gbpa);
        g.modify(GBPA::ABORT::SET + GBPA::UPDATE::SET);
        p0.gbpa.set(g.get());
        poll(&mut delay, t, Timeout::GbpaUpdate, || (!p0.gbpa.is_set(GBPA::UPDATE)).then_some(()))?;

        // 2. Disable everything (the SMMU may have been left on by firmware).
        write_cr0(&regs, &mut delay, t, 0)?;
        p0.irq_ctrl.set(0);
        poll(&mut delay, t, Timeout::IrqCtrlAck, || (p0.irq_ctrlack.get() == 0).then_some(()))?;

        // 3. Stale global errors: an active CMDQ_ERR would stop the new
        //    Command queue before it starts.
        let stale = gerror::active(p0);
        gerror::acknowledge(p0, stale);

        // 4. Tables and queues.
        let coherent = caps.cohacc;
        let sid_bits = config.sid_bits.map_or(caps.sidsize, |b| b.min(caps.sidsize));
        let format = match config.strtab {
            StrtabChoice::Linear => StrtabFormat::Linear,
            StrtabChoice::TwoLevel { split } => {
                if caps.st_level != StLevel::TwoLevel {
                    return Err(Error::Config("2-level Stream table not supported (SMMU_IDR0.ST_LEVEL)"));
                }
                StrtabFormat::TwoLevel { split }
            }
            StrtabChoice::Auto if caps.st_level == StLevel::TwoLevel && sid_bits > 8 => {
                StrtabFormat::TwoLevel { split: 8 }
            }
            StrtabChoice::Auto => StrtabFormat::Linear,
        };
        let strtab = StreamTable::new::<F, Error>(&mut frames, format, sid_bits, coherent)?;
        let mut cmdq = CommandQueue::new(&mut frames, config.cmdq_log2size.min(caps.cmdqs), coherent)?;
        // Chosen once, before the first CMD_SYNC (QEMU 10: no MSI, CONS polling).
        if SyncCompletion::for_caps(&caps, config.sync_msi) == SyncCompletion::MsiWrite {
            cmdq.use_msi_completion(&mut frames)?;
        }
        let mut evtq = EventQueue::new(&mut frames, config.evtq_log2size.min(caps.eventqs), coherent)?;
        let mut priq = if caps.pri {
            Some(PriQueue::new(&mut frames, config.priq_log2size.min(caps.priqs), coherent)?)
        } else {
            None
        };

        // 5. Table and queue access attributes (6.3.11). Coherent SMMU: the
        //    same Inner Shareable Write-Back attributes as the CPU's mapping
        //    of RAM. Otherwise Non-cacheable, and the DmaFrames cache hooks
        //    clean/invalidate around every access.
        if coherent {
            p0.cr1.write(
                CR1::QUEUE_IC::WriteBack
                    + CR1::QUEUE_OC::WriteBack
                    + CR1::QUEUE_SH::InnerShareable
                    + CR1::TABLE_IC::WriteBack
                    + CR1::TABLE_OC::WriteBack
                    + CR1::TABLE_SH::InnerShareable,
            );
        } else {
            p0.cr1.write(
                CR1::QUEUE_IC::NonCacheable
                    + CR1::QUEUE_OC::NonCacheable
                    + CR1::QUEUE_SH::OuterShareable
                    + CR1::TABLE_IC::NonCacheable
                    + CR1::TABLE_OC::NonCacheable
                    + CR1::TABLE_SH::OuterShareable,
            );
        }
        // PTM: only this driver's commands maintain SMMU TLBs. E2H = 0.
        p0.cr2.write(CR2::PTM::SET + CR2::RECINVSID.val(u32::from(config.record_invalid_sids)));
        p0.strtab_base.set(strtab.base_register());
        p0.strtab_base_cfg.set(strtab.base_cfg_register());
        cmdq.program(p0);
        evtq.program(p0, regs.page1());
        if let Some(q) = priq.as_mut() {
            q.program(p0, regs.page1());
        }

        // 6. Command queue on; drop anything cached from before.
        let mut cr0 = CR0::CMDQEN::SET.value;
        write_cr0(&regs, &mut delay, t, cr0)?;
        // CMD_TLBI_EL2_* are ILLEGAL without SMMU_IDR0.Hyp (4.4.2.7).
        let el2 = caps.hyp.then_some(Command::TlbiEl2All);
        let cmds = [Command::CfgiAll, Command::TlbiNsnhAll].into_iter().chain(el2);
        cmdq.submit_sync(p0, &mut delay, t, cmds)?;

        // 7. Event queue (and PRI queue) on before SMMUEN, so no record of
        //    the first transactions is lost.
        cr0 |= CR0::EVENTQEN::SET.value;
        write_cr0(&regs, &mut delay, t, cr0)?;
        if priq.is_some() {
            cr0 |= CR0::PRIQEN::SET.value;
            write_cr0(&regs, &mut delay, t, cr0)?;
        }
        let mut irq = LocalRegisterCopy::<u32, IRQ_CTRL::Register>::new(0);
        irq.write(
            IRQ_CTRL::GERROR_IRQEN.val(u32::from(config.irqs.gerror))
                + IRQ_CTRL::EVENTQ_IRQEN.val(u32::from(config.irqs.eventq))
                + IRQ_CTRL::PRIQ_IRQEN.val(u32::from(config.irqs.priq && priq.is_some())),
        );
        p0.irq_ctrl.set(irq.get());
        poll(&mut delay, t, Timeout::IrqCtrlAck, || (p0.irq_ctrlack.get() == irq.get()).then_some(()))?;

        // 8. Translate (every STE aborts until set_ste).
        cr0 |= CR0::SMMUEN::SET.value;
        write_cr0(&regs, &mut delay, t, cr0)?;

        Ok(Smmu {
            regs,
            caps,
            frames,
            delay,
            timeouts: t,
            strtab,
            cmdq,
            evtq,
            priq,
            coherent,
            policy: InvalidationPolicy { ril: caps.ril, max_commands: config.max_range_commands },
            stale_gerrors: stale,
        })
    }
}

/// Writes SMMU_CR0 and waits for SMMU_CR0ACK to match (6.3.10).
fn write_cr0<D: DelayNs>(regs: &SmmuRegs<'_>, delay: &mut D, t: Timeouts, value: u32) -> Result<(), Error> {
    regs.page0().cr0.set(value);
    let mut diff = 0;
    poll(delay, t, Timeout::Cr0Ack { bit: Cr0Bit::Other }, || {
        diff = regs.page0().cr0ack.get() ^ value;
        (diff == 0).then_some(())
    })
    .map_err(|_| Error::Timeout(Timeout::Cr0Ack { bit: Cr0Bit::first_of(diff) }))
}

impl<'r, F: DmaFrames, D: DelayNs> Smmu<'r, F, D> {
    /// The decoded capabilities.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Global errors that were active before bring-up (acknowledged then).
    pub fn stale_gerrors(&self) -> GlobalErrors {
        self.stale_gerrors
    }

    /// How CMD_SYNC completion is observed: an MSI write to memory, or
    /// polling SMMU_CMDQ_CONS (chosen at bring-up, see [`SyncCompletion`]).
    pub fn sync_completion(&self) -> SyncCompletion {
        self.cmdq.sync_completion()
    }

    /// StreamID bits covered by the Stream table.
    pub fn sid_bits(&self) -> u8 {
        self.strtab.sid_bits()
    }

    /// The register seam (for diagnostics and tests).
    pub fn regs(&self) -> &SmmuRegs<'r> {
        &self.regs
    }

    /// Submits commands and a CMD_SYNC, and waits for completion. Each
    /// command is checked first ([`Command::check`]); submission stops at the
    /// first that does not encode exactly, the commands before it are still
    /// synchronized, and the error is returned.
    pub fn submit_sync(&mut self, cmds: impl IntoIterator<Item = Command>) -> Result<(), Error> {
        let mut invalid = None;
        let checked = cmds.into_iter().map_while(|c| match c.check() {
            Ok(()) => Some(c),
            Err(e) => {
                invalid = Some(e);
                None
            }
        });
        self.issue(checked)?;
        invalid.map_or(Ok(()), |e| Err(Error::InvalidCommand(e)))
    }

    /// Submits driver-built commands and a CMD_SYNC, and waits.
    fn issue(&mut self, cmds: impl IntoIterator<Item = Command>) -> Result<(), Error> {
        let p0 = self.regs.page0();
        self.cmdq.submit_sync(p0, &mut self.delay, self.timeouts, cmds).map_err(Error::from)
    }

    /// Queues commands without waiting for them; a later CMD_SYNC (any
    /// `*_sync` call) waits for them. Batches share one producer update.
    pub fn queue(&mut self, cmds: impl IntoIterator<Item = Command>) -> Result<(), Error> {
        let p0 = self.regs.page0();
        self.cmdq.submit(p0, &mut self.delay, self.timeouts, cmds).map_err(Error::from)
    }

    /// The TLB invalidation policy (range commands if SMMU_IDR3.RIL, the
    /// threshold for a whole-VMID/ASID invalidation).
    pub(crate) fn policy(&self) -> InvalidationPolicy {
        self.policy
    }

    /// Submits raw command words and a CMD_SYNC, and waits. For self-tests
    /// of error recovery: a reserved opcode (0x07 is CMD_CFGI_VMS_PIDM, not
    /// implemented by QEMU) or SSec == 1 makes the SMMU raise CERROR_ILL,
    /// which typed [`Command`]s cannot express.
    pub fn submit_raw_sync(&mut self, words: &[[u64; 2]]) -> Result<(), Error> {
        let p0 = self.regs.page0();
        let (delay, t) = (&mut self.delay, self.timeouts);
        self.cmdq.submit_words(p0, delay, t, words.iter().copied())?;
        self.cmdq.sync(p0, delay, t).map_err(Error::from)
    }

    /// Installs `ste` for `sid` with the configuration structure update
    /// procedure (3.21.3.1, see [`crate::update`]): checked against the SMMU
    /// first ([`Ste::check`]), L2 array allocated if needed, then each step
    /// followed by CMD_CFGI_STE + CMD_SYNC. Returns when the SMMU uses it.
    /// TLB entries tagged with an old VMID/ASID are the caller's to
    /// invalidate.
    pub fn set_ste(&mut self, sid: StreamId, ste: &Ste) -> Result<UpdatePath, Error> {
        ste.check(&self.caps).map_err(Error::Entry)?;
        let p0 = self.regs.page0();
        let (cmdq, delay, t) = (&mut self.cmdq, &mut self.delay, self.timeouts);
        let path = self.strtab.write::<F, Error>(&mut self.frames, sid, ste, |cmd| {
            cmdq.submit_sync(p0, delay, t, [*cmd]).map_err(Error::from)
        })?;
        Ok(path)
    }

    /// Allocates the Stream table storage of `sid` ahead of time (2-level
    /// tables), so that its transactions abort silently rather than raising
    /// C_BAD_STREAMID.
    pub fn prepare_stream(&mut self, sid: StreamId) -> Result<(), Error> {
        let p0 = self.regs.page0();
        let (cmdq, delay, t) = (&mut self.cmdq, &mut self.delay, self.timeouts);
        self.strtab.ensure::<F, Error>(&mut self.frames, sid, |cmd| {
            cmdq.submit_sync(p0, delay, t, [*cmd]).map_err(Error::from)
        })?;
        Ok(())
    }

    /// The STE currently installed for `sid` (`None`: no L2 array yet, the
    /// SMMU treats the StreamID as invalid).
    pub fn ste(&self, sid: StreamId) -> Result<Option<Ste>, Error> {
        match self.strtab.read::<Error>(sid)? {
            Some(words) => Ste::decode(words).map(Some).map_err(Error::Entry),
            None => Ok(None),
        }
    }

    /// Allocates a CD table for stage 1 contexts (PA space).
    pub fn new_cd_table(&mut self, fmt: S1Fmt, cdmax: u8) -> Result<CdTable, Error> {
        if cdmax > self.caps.ssidsize {
            return Err(Error::Config("S1CDMax beyond SMMU_IDR1.SSIDSIZE"));
        }
        Ok(CdTable::new::<F, Error>(&mut self.frames, fmt, cdmax, self.coherent)?)
    }

    /// Writes the CD of `ssid` in `table`, invalidating it for every stream
    /// in `sids` (the streams whose STEs point at the table).
    pub fn set_cd(
        &mut self,
        table: &mut CdTable,
        sids: &[StreamId],
        ssid: SubstreamId,
        cd: &Cd,
    ) -> Result<UpdatePath, Error> {
        cd.check(&self.caps).map_err(Error::Entry)?;
        let p0 = self.regs.page0();
        let (cmdq, delay, t) = (&mut self.cmdq, &mut self.delay, self.timeouts);
        let path = table.write::<F, Error>(&mut self.frames, ssid, cd, |inv: CdInvalidation| {
            let cmds = sids.iter().map(|&sid| Command::CfgiCd { sid, ssid: inv.ssid, leaf: inv.leaf });
            cmdq.submit_sync(p0, delay, t, cmds).map_err(Error::from)
        })?;
        Ok(path)
    }

    /// Invalidates cached configuration for `sid` (CMD_CFGI_STE + CMD_SYNC).
    pub fn invalidate_ste(&mut self, sid: StreamId) -> Result<(), Error> {
        self.issue([Command::CfgiSte { sid, leaf: false }])
    }

    /// Invalidates stage 2 translations of `vmid` for `[ipa, ipa + len)`
    /// (granule `granule`): range TLBIs if SMMU_IDR3.RIL, else one per page,
    /// or CMD_TLBI_S12_VMALL when that would take too many commands.
    pub fn invalidate_s2_range(
        &mut self,
        vmid: Vmid,
        ipa: Ipa,
        len: u64,
        granule: Granule,
    ) -> Result<(), Error> {
        let plan = plan_invalidation(TlbiTarget::Stage2 { vmid }, ipa.0, len, granule, false, 0, self.policy);
        self.issue(plan)
    }

    /// Invalidates stage 1 translations of (`vmid`, `asid`) for
    /// `[iova, iova + len)`, or the whole ASID when too big.
    pub fn invalidate_s1_range(
        &mut self,
        vmid: Vmid,
        asid: Asid,
        iova: Iova,
        len: u64,
        granule: Granule,
    ) -> Result<(), Error> {
        let target = TlbiTarget::Stage1 { vmid, asid };
        let plan = plan_invalidation(target, iova.0, len, granule, false, 0, self.policy);
        self.issue(plan)
    }

    /// Invalidates every stage 1 and stage 2 translation tagged `vmid`.
    pub fn invalidate_vmid(&mut self, vmid: Vmid) -> Result<(), Error> {
        self.issue([Command::TlbiS12Vmall { vmid }])
    }

    /// Invalidates the stage 1 translations of one ASID.
    pub fn invalidate_asid(&mut self, vmid: Vmid, asid: Asid) -> Result<(), Error> {
        self.issue([Command::TlbiNhAsid { vmid, asid }])
    }

    /// Invalidates all cached configuration and translations.
    pub fn invalidate_all(&mut self) -> Result<(), Error> {
        let el2 = self.caps.hyp.then_some(Command::TlbiEl2All);
        self.issue([Command::CfgiAll, Command::TlbiNsnhAll].into_iter().chain(el2))
    }

    /// Hands each queued event record to `f` and releases it. Bounded per
    /// call; `DrainReport::more` says whether records remain.
    pub fn drain_events(&mut self, f: impl FnMut(&Event)) -> DrainReport {
        self.evtq.drain(self.regs.page1(), f)
    }

    /// Hands each queued PRI page request to `f`; for the last request of a
    /// group, a `Some(response)` from `f` is sent with CMD_PRI_RESP. Does
    /// nothing without a PRI queue (SMMU_IDR0.PRI == 0, as on QEMU).
    pub fn drain_page_requests(
        &mut self,
        mut f: impl FnMut(&PageRequest) -> Option<PriResponse>,
    ) -> Result<DrainReport, Error> {
        let Some(q) = self.priq.as_mut() else {
            return Ok(DrainReport::default());
        };
        let p0 = self.regs.page0();
        let (cmdq, delay, t) = (&mut self.cmdq, &mut self.delay, self.timeouts);
        let mut result = Ok(());
        let report = q.drain(self.regs.page1(), |req| {
            if let Some(resp) = f(req) {
                if req.last && result.is_ok() {
                    let cmd =
                        Command::PriResp { sid: req.sid, ssid: req.ssid, prg_index: req.prg_index, resp };
                    result = cmdq.submit(p0, delay, t, [cmd]);
                }
            }
        });
        result?;
        self.cmdq.sync(p0, &mut self.delay, self.timeouts)?;
        Ok(report)
    }

    /// Handles active global errors (7.5): a command error is recovered
    /// (the command replaced by CMD_SYNC, see [`crate::cmdq`]); every active
    /// error is acknowledged in SMMU_GERRORN and reported.
    pub fn handle_gerror(&mut self) -> GerrorReport {
        let p0 = self.regs.page0();
        let errors = gerror::active(p0);
        let command = if errors.contains(GlobalErrors::CMDQ_ERR) {
            let e = self.cmdq.recover(p0);
            // Reported here, not again at the next CMD_SYNC.
            self.cmdq.take_error();
            e
        } else {
            None
        };
        gerror::acknowledge(p0, errors.without(GlobalErrors::CMDQ_ERR));
        GerrorReport { errors, command }
    }

    /// Disables translation: GBPA.ABORT stays set, so every transaction is
    /// then aborted (not bypassed). Queues stay allocated.
    pub fn disable(&mut self) -> Result<(), Error> {
        let p0 = self.regs.page0();
        let t = self.timeouts;
        poll(&mut self.delay, t, Timeout::GbpaUpdate, || (!p0.gbpa.is_set(GBPA::UPDATE)).then_some(()))?;
        if !p0.gbpa.is_set(GBPA::ABORT) {
            p0.gbpa.modify(GBPA::ABORT::SET + GBPA::UPDATE::SET);
            poll(&mut self.delay, t, Timeout::GbpaUpdate, || (!p0.gbpa.is_set(GBPA::UPDATE)).then_some(()))?;
        }
        write_cr0(&self.regs, &mut self.delay, t, 0)
    }
}

#[cfg(test)]
mod tests;
