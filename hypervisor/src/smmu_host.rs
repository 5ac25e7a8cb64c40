//! The hypervisor's side of the SMMUv3 driver: finding the SMMU the device
//! tree names, bringing it up with heap memory and counter-timed waits, and
//! turning event records into one-line fault traces.

use crate::dma::{CounterDelay, HeapFrames};
use crate::faults::{self, FaultRecord};
use crate::pci::Bdf;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};
use smmu::driver::Error;
use smmu::{Event, Smmu, SmmuConfig, SmmuRegs};
use spin::Mutex;

/// The driver as the hypervisor instantiates it.
pub type HostSmmu = Smmu<'static, HeapFrames, CounterDelay>;

fn regs(s: &boards::platform::Smmu) -> SmmuRegs<'static> {
    let base = NonNull::new(s.base as *mut u8).expect("the DT parser rejects a zero SMMU base");
    // SAFETY: the register frame comes from the DT and is identity mapped as
    // device memory for the whole run; callers hold at most one handle at a
    // time (each bring-up replaces the previous driver instance).
    unsafe { SmmuRegs::new(base) }
}

/// Logs what the SMMU at `s` can do (SMMU_IDR0..5 decoded).
pub fn report(s: &boards::platform::Smmu) {
    let probe = Smmu::probe(regs(s));
    let c = probe.capabilities();
    defmt::info!(
        "SMMUv3 at {=u64:#x}: v3.{=u8}, stage 1 {=bool}, stage 2 {=bool}, {=str} stream table, SIDSIZE {=u8}, SSIDSIZE {=u8}, OAS {=u32} bits",
        s.base,
        c.arch.minor,
        c.s1p,
        c.s2p,
        if c.two_level_strtab() { "2-level" } else { "linear" },
        c.sidsize,
        c.ssidsize,
        c.oas.bits()
    );
    defmt::info!(
        "SMMUv3 features: VMID16 {=bool}, ASID16 {=bool}, RIL {=bool}, ATS {=bool}, PRI {=bool}, MSI {=bool}, coherent {=bool}, queues cmd 2^{=u8} evt 2^{=u8}",
        c.vmid16,
        c.asid16,
        c.ril,
        c.ats,
        c.pri,
        c.msi,
        c.cohacc,
        c.cmdqs,
        c.eventqs
    );
}

/// Brings up the SMMU at `s` with `config`: every StreamID aborts until an
/// STE says otherwise.
pub fn bring_up(s: &boards::platform::Smmu, config: &SmmuConfig) -> Result<HostSmmu, Error> {
    Smmu::probe(regs(s)).init(config, HeapFrames, CounterDelay)
}

/// RequesterID -> StreamID mapping of the PCIe host in front of the SMMU
/// (`iommu-map`), kept to name the PCI function a fault came from.
static RID_MAP: Mutex<heapless::Vec<boards::platform::IommuMapEntry, 4>> = Mutex::new(heapless::Vec::new());

/// Remembers the host bridge's `iommu-map` for fault traces.
pub fn set_rid_map(host: &boards::platform::PcieHost) {
    let mut m = RID_MAP.lock();
    m.clear();
    for e in host.iommu_map.iter() {
        let _ = m.push(*e);
    }
}

/// The PCI function behind StreamID `sid`, if the `iommu-map` says.
pub fn bdf_of(sid: u32) -> Option<Bdf> {
    let m = RID_MAP.lock();
    m.iter().find_map(|e| {
        let off = sid.checked_sub(e.sid_base)?;
        (off < e.len).then(|| Bdf::from_rid((e.rid_base + off) as u16))
    })
}

/// One fault trace line (what happened, to which device, where), and the
/// fault kept in the fault ring.
pub fn trace(event: &Event, owner: &str) {
    let sid = event.stream_id().0;
    let bdf = bdf_of(sid).unwrap_or(Bdf { bus: 0xff, dev: 0x1f, func: 7 });
    match event.fault() {
        Some(f) => {
            defmt::warn!(
                "SMMU {=str}: {=str} (StreamID {=u32:#x}, PCI {=u8:02x}:{=u8:02x}.{=u8}) {=str} of IOVA {=u64:#x}, stage {=u8}",
                event.name(),
                owner,
                sid,
                bdf.bus,
                bdf.dev,
                bdf.func,
                if f.access.is_write() { "write" } else { "read" },
                f.input_addr.0,
                if f.s2 { 2 } else { 1 }
            );
            faults::record(FaultRecord {
                at_us: crate::log::uptime_us(),
                code: event.code(),
                sid,
                addr: f.input_addr.0,
                write: f.access.is_write(),
            });
        }
        None => {
            defmt::warn!(
                "SMMU {=str}: {=str} (StreamID {=u32:#x}): {}",
                event.name(),
                owner,
                sid,
                defmt::Display2Format(event)
            );
            faults::record(FaultRecord {
                at_us: crate::log::uptime_us(),
                code: event.code(),
                sid,
                addr: 0,
                write: false,
            });
        }
    }
}

/// The SMMU whose interrupts the hypervisor services.
static ACTIVE: Mutex<Option<HostSmmu>> = Mutex::new(None);
/// Event-queue interrupts taken.
static EVENT_IRQS: AtomicU32 = AtomicU32::new(0);

/// Runs `f` on the active SMMU with IRQs masked on this CPU, so the
/// interrupt handler can never find the lock held by the code it interrupted.
pub fn with_active<R>(f: impl FnOnce(&mut Option<HostSmmu>) -> R) -> R {
    let daif: u64;
    // SAFETY: reading DAIF and masking IRQs on this CPU; no memory effects.
    unsafe { core::arch::asm!("mrs {}, daif", "msr daifset, #2", out(reg) daif, options(nomem, nostack)) };
    let r = f(&mut ACTIVE.lock());
    // SAFETY: restores the caller's mask.
    unsafe { core::arch::asm!("msr daif, {}", in(reg) daif, options(nomem, nostack)) };
    r
}

/// Event-queue interrupts taken so far.
pub fn event_irqs() -> u32 {
    EVENT_IRQS.load(Ordering::Acquire)
}

/// Consecutive fault records of one device, kind, access and stage whose
/// addresses follow each other: what one blocked DMA produces (QEMU records
/// one per 4-byte access, so a page is 1024 records). Traced as one line.
#[derive(Clone, Copy)]
struct Burst {
    event: Event,
    sid: u32,
    write: bool,
    stage: u8,
    start: u64,
    end: u64,
    records: u32,
}

/// Addresses within this distance of a burst's end continue it.
const BURST_GAP: u64 = 0x1000;

impl Burst {
    fn of(event: &Event) -> Option<Self> {
        let f = event.fault()?;
        Some(Self {
            event: *event,
            sid: event.stream_id().0,
            write: f.access.is_write(),
            stage: if f.s2 { 2 } else { 1 },
            start: f.input_addr.0,
            end: f.input_addr.0.saturating_add(4),
            records: 1,
        })
    }

    /// Takes `next` into the burst if it continues it.
    fn extend(&mut self, next: &Burst) -> bool {
        let same = next.sid == self.sid
            && next.event.code() == self.event.code()
            && next.write == self.write
            && next.stage == self.stage;
        if same && next.start >= self.start && next.start <= self.end.saturating_add(BURST_GAP) {
            self.end = self.end.max(next.end);
            self.records += 1;
            true
        } else {
            false
        }
    }
}

/// Event-queue interrupt: drain every record into traces and the fault
/// ring, then apply each owning partition's fault policy (after the SMMU
/// lock is released: stopping a partition reprograms its STEs).
pub fn on_event_irq(_intid: u32) {
    EVENT_IRQS.fetch_add(1, Ordering::AcqRel);
    let mut actions: heapless::Vec<(u32, Event), 8> = heapless::Vec::new();
    let mut lost_actions = 0u32;
    {
        let mut guard = ACTIVE.lock();
        let Some(smmu) = guard.as_mut() else { return };
        let mut burst: Option<Burst> = None;
        loop {
            let rep = smmu.drain_events(|e| {
                record(e);
                let sid = e.stream_id().0;
                let owner = crate::partition::owner_of_stream(sid);
                if let Some((p, _)) = owner {
                    p.dma_faults.fetch_add(1, Ordering::AcqRel);
                }
                match Burst::of(e) {
                    Some(next) => {
                        if !burst.as_mut().is_some_and(|b| b.extend(&next)) {
                            if let Some(done) = burst.replace(next) {
                                report_burst(&done);
                            }
                        }
                    }
                    None => {
                        if let Some(done) = burst.take() {
                            report_burst(&done);
                        }
                        report_other(e);
                    }
                }
                // One policy action per device and interrupt: a storm of
                // records from one DMA is one fault to act on.
                let acts =
                    owner.is_some_and(|(p, _)| p.config.fault_policy != boards::config::FaultPolicy::Log);
                if acts && !actions.iter().any(|(s, _)| *s == sid) && actions.push((sid, *e)).is_err() {
                    lost_actions += 1;
                }
            });
            if rep.overflowed {
                defmt::error!("SMMU event queue overflowed: fault records were lost");
            }
            if !rep.more {
                break;
            }
        }
        if let Some(done) = burst {
            report_burst(&done);
        }
    }
    if lost_actions > 0 {
        defmt::warn!(
            "{=u32} faulting devices beyond one interrupt's batch: their policy waits for the next fault",
            lost_actions
        );
    }
    for (sid, e) in actions.iter() {
        if let Some((p, dev)) = crate::partition::owner_of_stream(*sid) {
            crate::fault_policy::apply(p, dev, e);
        }
    }
}

fn record(event: &Event) {
    let (addr, write) = event.fault().map_or((0, false), |f| (f.input_addr.0, f.access.is_write()));
    faults::record(FaultRecord {
        at_us: crate::log::uptime_us(),
        code: event.code(),
        sid: event.stream_id().0,
        addr,
        write,
    });
}

/// One line for a burst: kind, partition, device, StreamID and BDF, access,
/// the address range and how many records it took. A partition's lines go
/// through its rate limiter.
fn report_burst(b: &Burst) {
    let bdf = bdf_of(b.sid).unwrap_or(Bdf { bus: 0xff, dev: 0x1f, func: 7 });
    let access = if b.write { "write" } else { "read" };
    match crate::partition::owner_of_stream(b.sid) {
        Some((p, dev)) => p.report_rate_limited(|| {
            defmt::warn!(
                "SMMU {=str}: partition {=str}, device {=str} (StreamID {=u32:#x}, PCI {}) {=str} of IPA {=u64:#x}..{=u64:#x} blocked at stage {=u8} ({=u32} records)",
                b.event.name(),
                p.name(),
                dev.name.as_str(),
                b.sid,
                bdf,
                access,
                b.start,
                b.end,
                b.stage,
                b.records
            )
        }),
        None => defmt::warn!(
            "SMMU {=str}: unassigned device (StreamID {=u32:#x}, PCI {}) {=str} of {=u64:#x}..{=u64:#x} blocked at stage {=u8} ({=u32} records)",
            b.event.name(),
            b.sid,
            bdf,
            access,
            b.start,
            b.end,
            b.stage,
            b.records
        ),
    }
}

/// An event without a faulting address (a bad STE or CD, ...).
fn report_other(e: &Event) {
    let sid = e.stream_id().0;
    match crate::partition::owner_of_stream(sid) {
        Some((p, dev)) => p.report_rate_limited(|| {
            defmt::warn!(
                "SMMU {=str}: partition {=str}, device {=str} (StreamID {=u32:#x}): {}",
                e.name(),
                p.name(),
                dev.name.as_str(),
                sid,
                defmt::Display2Format(e)
            )
        }),
        None => trace(e, "unassigned device"),
    }
}

/// Points the STE of StreamID `sid` at a partition's stage-2 tables.
pub fn attach_stage2(sid: u32, cfg: smmu::ste::Stage2Cfg) -> Result<(), Error> {
    with_active(|a| match a.as_mut() {
        Some(smmu) => smmu.set_ste(smmu::StreamId(sid), &smmu::Ste::stage2(cfg)).map(|_| ()),
        None => Ok(()),
    })
}

/// Blocks every device of `p` (abort STEs): its DMA ends with the partition.
pub fn block_partition(p: &crate::partition::Partition) {
    for d in &p.pci {
        let r = with_active(|a| match a.as_mut() {
            Some(smmu) => smmu.set_ste(smmu::StreamId(d.sid), &smmu::Ste::abort()).map(|_| ()),
            None => Ok(()),
        });
        match r {
            Ok(()) => {
                defmt::info!("partition {=str}: device {=str} blocked (abort STE)", p.name(), d.name.as_str())
            }
            Err(e) => defmt::error!(
                "partition {=str}: device {=str} not blocked: {}",
                p.name(),
                d.name.as_str(),
                defmt::Display2Format(&e)
            ),
        }
    }
}

/// Global error interrupt: acknowledge and report.
pub fn on_gerror_irq(_intid: u32) {
    let mut guard = ACTIVE.lock();
    let Some(smmu) = guard.as_mut() else { return };
    let rep = smmu.handle_gerror();
    defmt::error!(
        "SMMU global error {}: command {}",
        defmt::Debug2Format(&rep.errors),
        defmt::Debug2Format(&rep.command)
    );
    if rep.errors.contains(smmu::gerror::GlobalErrors::EVENTQ_ABT_ERR) {
        defmt::error!(
            "SMMU event queue was full: fault records were lost (the DMA itself was still blocked)"
        );
    }
}
