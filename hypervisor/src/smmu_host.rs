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

/// Event-queue interrupt: drain every record into traces and the fault ring.
pub fn on_event_irq(_intid: u32) {
    EVENT_IRQS.fetch_add(1, Ordering::AcqRel);
    let mut guard = ACTIVE.lock();
    let Some(smmu) = guard.as_mut() else { return };
    loop {
        let rep = smmu.drain_events(|e| trace(e, "device"));
        if rep.overflowed {
            defmt::error!("SMMU event queue overflowed: fault records were lost");
        }
        if !rep.more {
            break;
        }
    }
}

/// Global error interrupt: acknowledge and report.
pub fn on_gerror_irq(_intid: u32) {
    let mut guard = ACTIVE.lock();
    let Some(smmu) = guard.as_mut() else { return };
    let rep = smmu.handle_gerror();
    defmt::error!("SMMU global error {=u32:#x}: {}", rep.errors.bits(), defmt::Debug2Format(&rep.command));
}
