//! SMMUv3 cases, proven with QEMU's `edu` device doing real DMA through the
//! SMMU. edu's 28-bit DMA mask keeps it below RAM (which starts at 1 GiB on
//! `virt`), so only translation lets it reach memory: every successful case
//! is a translation, every blocked one is checked byte for byte.

use super::Case;
use crate::devices::edu::{self, Direction, Edu};
use crate::dtb::Dt;
use crate::pci::{BarAllocator, Bdf, Ecam};
use crate::smmu_host::{self, HostSmmu};
use alloc::{boxed::Box, vec::Vec};
use boards::platform::PciSpace;
use iommu_common::addr::{Iova, Ipa, PhysAddr};
use iommu_common::pgtable::vmsav8::{Granule as PtGranule, S1Table, S2Table, Stage1, Stage2, TableConfig};
use iommu_common::pgtable::{IoPageTable, IotlbGather, PoolAllocator, Prot};
use smmu::caps::{AddrSize, Granule};
use smmu::cd::Cd;
use smmu::driver::{Error, StrtabChoice};
use smmu::gerror::GlobalErrors;
use smmu::ste::{CdTablePtr, S1Fmt, Stage2Cfg};
use smmu::{Asid, Event, SmmuConfig, Ste, StreamId, SubstreamId, Vmid};

/// The SMMU cases (virt with an `edu`).
pub static CASES: &[Case] = &[
    // First: QEMU 10 never clears its 2-level stream-table mode once
    // STRTAB_BASE_CFG.FMT selected it (hw/arm/smmuv3.c, A_STRTAB_BASE_CFG
    // only ever sets SMMU_FEATURE_2LVL_STE), so a linear table works only
    // before any 2-level one in the same QEMU run.
    Case { name: "smmu_s2_dma_linear_strtab", default: true, applies: has_smmu_edu, run: s2_linear },
    Case { name: "smmu_caps", default: true, applies: has_smmu_edu, run: caps },
    Case { name: "smmu_s2_dma_2level_strtab", default: true, applies: has_smmu_edu, run: s2_two_level },
    Case { name: "smmu_s1_dma", default: true, applies: has_smmu_edu, run: s1_dma },
    Case { name: "smmu_nested_dma", default: true, applies: has_smmu_edu, run: nested_dma },
    Case { name: "smmu_unmapped_iova_faults", default: true, applies: has_smmu_edu, run: unmapped_faults },
    Case { name: "smmu_readonly_write_faults", default: true, applies: has_smmu_edu, run: readonly_faults },
    Case { name: "smmu_abort_ste_blocks", default: true, applies: has_smmu_edu, run: abort_blocks },
    Case { name: "smmu_sid_beyond_table_refused", default: true, applies: has_smmu_edu, run: sid_refused },
    Case {
        name: "smmu_cdmax_beyond_ssidsize_refused",
        default: true,
        applies: has_smmu_edu,
        run: cdmax_refused,
    },
    Case { name: "smmu_evtq_overflow_reported", default: true, applies: has_smmu_edu, run: evtq_overflow },
    Case { name: "smmu_cerror_reported", default: true, applies: has_smmu_edu, run: cerror },
    Case {
        name: "smmu_remap_needs_invalidation",
        default: true,
        applies: has_smmu_edu,
        run: remap_invalidation,
    },
    Case { name: "smmu_event_irq_traced", default: true, applies: has_smmu_edu, run: event_irq },
    Case { name: "smmu_assignment_model", default: true, applies: has_smmu_edu, run: assignment_model },
    // Needs `-device edu,dma_mask=...` wide enough to reach RAM untranslated.
    Case { name: "smmu_bypass_ste_passes", default: false, applies: has_smmu_edu, run: bypass_passes },
];

const PAGE: usize = 4096;
/// Where the tests put device-visible addresses: below edu's 28-bit mask.
const IOVA: u64 = 0x10_0000;
const FILL: u8 = 0x5a;
/// edu DMA takes ~100 ms of virtual time; allow far more.
pub(super) const DMA_BUDGET_US: u64 = 2_000_000;
const VMID: Vmid = Vmid(1);

pub(super) fn has_smmu_edu(dt: &Dt) -> bool {
    !dt.platform.smmus.is_empty()
        && dt.platform.pcie.first().is_some_and(|h| Ecam::of_host(h).find(edu::VENDOR, edu::DEVICE).is_some())
}

/// The SMMU, an `edu` behind it, and its StreamID.
pub(super) struct Rig {
    pub(super) smmu: HostSmmu,
    pub(super) edu: Edu,
    pub(super) sid: StreamId,
    pub(super) bdf: Bdf,
}

fn rig_with(dt: &Dt, config: &SmmuConfig) -> Result<Rig, &'static str> {
    let host = dt.platform.pcie.first().ok_or("no PCIe")?;
    let ecam = Ecam::of_host(host);
    let f = ecam.find(edu::VENDOR, edu::DEVICE).ok_or("no edu")?;
    let win = host.windows.iter().find(|w| w.kind == PciSpace::Mem32).ok_or("no 32-bit PCI window")?;
    let mut bars = BarAllocator::new(win.pci_addr, win.cpu_addr, win.size);
    let bar =
        ecam.assign_bar(f.bdf, 0, &mut bars).map_err(|_| "BAR0 not assignable")?.ok_or("edu has no BAR0")?;
    ecam.enable(f.bdf, true);
    // SAFETY: BAR0 was just assigned inside the host bridge window, which the
    // EL2 map covers as device memory.
    let edu = unsafe { Edu::new(bar.cpu_addr) };
    if !edu.alive() {
        return Err("edu does not answer at its BAR");
    }
    let (_, sid) = host.stream_id(f.bdf.rid()).ok_or("edu has no StreamID in iommu-map")?;
    let smmu = smmu_host::bring_up(&dt.platform.smmus[0], config).map_err(|e| {
        defmt::error!("SMMU bring-up: {}", defmt::Display2Format(&e));
        "SMMU bring-up failed"
    })?;
    Ok(Rig { smmu, edu, sid: StreamId(sid), bdf: f.bdf })
}

pub(super) fn rig(dt: &Dt) -> Result<Rig, &'static str> {
    rig_with(dt, &SmmuConfig::default())
}

/// Page-aligned memory the device is aimed at, with neighbours that must stay untouched.
struct Pages {
    buf: Box<[Page]>,
}

#[repr(C, align(4096))]
#[derive(Clone, Copy)]
struct Page([u8; PAGE]);

impl Pages {
    fn new(n: usize, fill: u8) -> Self {
        Self { buf: (0..n).map(|_| Page([fill; PAGE])).collect::<Vec<_>>().into_boxed_slice() }
    }
    fn pa(&self, i: usize) -> PhysAddr {
        PhysAddr(&self.buf[i] as *const Page as u64)
    }
    fn page(&self, i: usize) -> &[u8; PAGE] {
        // Volatile: the device wrote behind the compiler's back.
        // SAFETY: reading our own, live allocation.
        unsafe { &*core::ptr::read_volatile(&&self.buf[i].0) }
    }
    fn all(&self, i: usize, v: u8) -> bool {
        (0..PAGE).all(|k| {
            // SAFETY: in bounds of our allocation; volatile for the same reason.
            unsafe { core::ptr::read_volatile(&self.buf[i].0[k]) == v }
        })
    }
    fn set(&mut self, i: usize, pattern: impl Fn(usize) -> u8) {
        for (k, b) in self.buf[i].0.iter_mut().enumerate() {
            *b = pattern(k);
        }
    }
}

fn pattern(k: usize) -> u8 {
    (k as u8).wrapping_mul(7).wrapping_add(3)
}

fn pool() -> PoolAllocator {
    PoolAllocator::new(64, PAGE)
}

pub(super) fn s2_table() -> Result<S2Table<PoolAllocator>, &'static str> {
    S2Table::new(Stage2, TableConfig::new(PtGranule::Size4K, 40, 44), pool())
        .map_err(|_| "stage-2 table config")
}

fn s2_ste(t: &S2Table<PoolAllocator>) -> Result<Stage2Cfg, &'static str> {
    let c = t.stage2_config();
    Stage2Cfg::new(VMID, c.vttb, 64 - c.t0sz, Granule::K4, c.start_level, AddrSize::Bits44)
        .map_err(|_| "stage-2 STE fields")
}

/// Drains the event queue, tracing each record; returns them.
pub(super) fn events(r: &mut Rig) -> Vec<Event> {
    let mut out = Vec::new();
    r.smmu.drain_events(|e| {
        smmu_host::trace(e, "edu");
        out.push(*e);
    });
    out
}

/// Device round trip through `iova`: the device reads the source page into
/// its buffer, then writes its buffer to `iova`.
fn dma_in_out(r: &Rig, src_iova: u64, dst_iova: u64) -> Result<(), &'static str> {
    r.edu
        .dma(Direction::ToDevice, src_iova, 0, PAGE as u64, DMA_BUDGET_US)
        .map_err(|_| "DMA to device timed out")?;
    r.edu
        .dma(Direction::FromDevice, dst_iova, 0, PAGE as u64, DMA_BUDGET_US)
        .map_err(|_| "DMA from device timed out")
}

fn caps(dt: &Dt) -> Result<(), &'static str> {
    let r = rig(dt)?;
    let c = r.smmu.capabilities();
    if !(c.s1p && c.s2p) {
        return Err("QEMU 10 virt SMMU should offer both stages");
    }
    if r.smmu.ste(r.sid).map_err(|_| "STE read")?.is_some_and(|s| s != Ste::abort()) {
        return Err("an unassigned StreamID does not abort");
    }
    defmt::info!(
        "edu {=u8:02x}:{=u8:02x}.{=u8} is StreamID {=u32:#x}",
        r.bdf.bus,
        r.bdf.dev,
        r.bdf.func,
        r.sid.0
    );
    Ok(())
}

/// Stage 2: IOVA page 0 -> source, page 1 -> target; both directions checked.
fn s2_dma(dt: &Dt, strtab: StrtabChoice) -> Result<(), &'static str> {
    let mut r = rig_with(dt, &SmmuConfig { strtab, ..SmmuConfig::default() })?;
    let mut mem = Pages::new(4, FILL); // [guard, source, target, guard]
    mem.set(1, pattern);
    let mut t = s2_table()?;
    t.map(Iova(IOVA), mem.pa(1), PAGE as u64, Prot::RO).map_err(|_| "map source")?;
    t.map(Iova(IOVA + PAGE as u64), mem.pa(2), PAGE as u64, Prot::RW).map_err(|_| "map target")?;
    r.smmu.set_ste(r.sid, &Ste::stage2(s2_ste(&t)?)).map_err(|_| "set STE")?;
    dma_in_out(&r, IOVA, IOVA + PAGE as u64)?;
    let evs = events(&mut r);
    if !evs.is_empty() {
        return Err("translated DMA raised events");
    }
    if mem.page(2) != mem.page(1) {
        return Err("target does not hold the source bytes");
    }
    if !mem.all(0, FILL) || !mem.all(3, FILL) {
        return Err("a neighbouring page changed");
    }
    r.smmu.set_ste(r.sid, &Ste::abort()).map_err(|_| "restore abort STE")?;
    Ok(())
}

fn s2_linear(dt: &Dt) -> Result<(), &'static str> {
    s2_dma(dt, StrtabChoice::Linear)
}

fn s2_two_level(dt: &Dt) -> Result<(), &'static str> {
    s2_dma(dt, StrtabChoice::TwoLevel { split: 8 })
}

/// Stage 1 only: a CD with a stage-1 table.
fn s1_dma(dt: &Dt) -> Result<(), &'static str> {
    let mut r = rig(dt)?;
    let mut mem = Pages::new(4, FILL);
    mem.set(1, pattern);
    let mut t = S1Table::new(Stage1::default(), TableConfig::new(PtGranule::Size4K, 40, 44), pool())
        .map_err(|_| "stage-1 table config")?;
    t.map(Iova(IOVA), mem.pa(1), PAGE as u64, Prot::RO).map_err(|_| "map source")?;
    t.map(Iova(IOVA + PAGE as u64), mem.pa(2), PAGE as u64, Prot::RW).map_err(|_| "map target")?;
    let c = t.stage1_config();
    let cd = Cd::aarch64_ttb0(Asid(1), c.ttb0, 64 - c.t0sz, Granule::K4, AddrSize::Bits44, c.mair);
    let mut cds = r.smmu.new_cd_table(S1Fmt::Linear, 0).map_err(|_| "CD table")?;
    r.smmu.set_cd(&mut cds, &[r.sid], SubstreamId::default(), &cd).map_err(|_| "set CD")?;
    r.smmu.set_ste(r.sid, &Ste::stage1(cds.stage1_cfg())).map_err(|_| "set STE")?;
    dma_in_out(&r, IOVA, IOVA + PAGE as u64)?;
    if !events(&mut r).is_empty() {
        return Err("translated DMA raised events");
    }
    if mem.page(2) != mem.page(1) || !mem.all(0, FILL) || !mem.all(3, FILL) {
        return Err("stage-1 DMA did not land exactly on the target");
    }
    Ok(())
}

/// Both stages: IOVA -(stage 1)-> IPA -(stage 2)-> PA, with the IPA chosen
/// unlike the PA so that skipping a stage would miss. The CD and the stage-1
/// tables are read through stage 2, which maps the heap 1:1.
fn nested_dma(dt: &Dt) -> Result<(), &'static str> {
    const IPA: u64 = 0x30_0000_0000;
    let mut r = rig(dt)?;
    let mut mem = Pages::new(4, FILL);
    mem.set(1, pattern);
    let mut s1 = S1Table::new(Stage1::default(), TableConfig::new(PtGranule::Size4K, 40, 40), pool())
        .map_err(|_| "stage-1 table config")?;
    s1.map(Iova(IOVA), PhysAddr(IPA), 2 * PAGE as u64, Prot::RW).map_err(|_| "stage-1 map")?;
    let mut s2 = s2_table()?;
    let (heap_start, heap_end) = crate::heap::range();
    s2.map(Iova(heap_start), PhysAddr(heap_start), heap_end - heap_start, Prot::RW)
        .map_err(|_| "stage-2 heap")?;
    s2.map(Iova(IPA), mem.pa(1), PAGE as u64, Prot::RO).map_err(|_| "stage-2 source")?;
    s2.map(Iova(IPA + PAGE as u64), mem.pa(2), PAGE as u64, Prot::RW).map_err(|_| "stage-2 target")?;
    let c = s1.stage1_config();
    let cd = Cd::aarch64_ttb0(Asid(2), c.ttb0, 64 - c.t0sz, Granule::K4, AddrSize::Bits40, c.mair);
    let mut cds = r.smmu.new_cd_table(S1Fmt::Linear, 0).map_err(|_| "CD table")?;
    r.smmu.set_cd(&mut cds, &[r.sid], SubstreamId::default(), &cd).map_err(|_| "set CD")?;
    let mut s1cfg = cds.stage1_cfg();
    s1cfg.context_ptr = CdTablePtr::Ipa(Ipa(cds.base_pa().0));
    r.smmu.set_ste(r.sid, &Ste::nested(s1cfg, s2_ste(&s2)?)).map_err(|_| "set STE")?;
    dma_in_out(&r, IOVA, IOVA + PAGE as u64)?;
    if !events(&mut r).is_empty() {
        return Err("nested DMA raised events");
    }
    if mem.page(2) != mem.page(1) || !mem.all(0, FILL) || !mem.all(3, FILL) {
        return Err("nested DMA did not land exactly on the target");
    }
    Ok(())
}

/// Expects exactly one fault of `kind` for a 4-byte write at `iova`.
fn expect_fault(
    evs: &[Event],
    kind: &str,
    sid: StreamId,
    iova: u64,
    write: bool,
) -> Result<(), &'static str> {
    let [e] = evs else { return Err("not exactly one event") };
    if e.name() != kind {
        return Err("wrong event type");
    }
    let f = e.fault().ok_or("event carries no fault")?;
    if f.stream.sid != sid || f.input_addr != Iova(iova) || f.access.is_write() != write || !f.s2 {
        return Err("fault record names the wrong stream, address, access or stage");
    }
    Ok(())
}

fn unmapped_faults(dt: &Dt) -> Result<(), &'static str> {
    let mut r = rig(dt)?;
    let mem = Pages::new(3, FILL);
    let mut t = s2_table()?;
    t.map(Iova(IOVA), mem.pa(1), PAGE as u64, Prot::RW).map_err(|_| "map")?;
    r.smmu.set_ste(r.sid, &Ste::stage2(s2_ste(&t)?)).map_err(|_| "set STE")?;
    let hole = IOVA + 16 * PAGE as u64;
    r.edu.dma(Direction::FromDevice, hole, 0, 4, DMA_BUDGET_US).map_err(|_| "DMA timed out")?;
    expect_fault(&events(&mut r), "F_TRANSLATION", r.sid, hole, true)?;
    (mem.all(0, FILL) && mem.all(1, FILL) && mem.all(2, FILL)).then_some(()).ok_or("memory changed")
}

fn readonly_faults(dt: &Dt) -> Result<(), &'static str> {
    let mut r = rig(dt)?;
    let mut mem = Pages::new(3, FILL);
    mem.set(1, pattern);
    let mut t = s2_table()?;
    t.map(Iova(IOVA), mem.pa(1), PAGE as u64, Prot::RO).map_err(|_| "map")?;
    r.smmu.set_ste(r.sid, &Ste::stage2(s2_ste(&t)?)).map_err(|_| "set STE")?;
    // The write goes first: QEMU 10 attributes a permission fault found in
    // its IOTLB (filled by an earlier read) to stage 1 and, with no CD to say
    // "record", drops the event; a write that walks the tables is reported.
    r.edu.dma(Direction::FromDevice, IOVA + 8, 0x100, 4, DMA_BUDGET_US).map_err(|_| "DMA timed out")?;
    expect_fault(&events(&mut r), "F_PERMISSION", r.sid, IOVA + 8, true)?;
    // Reading the read-only page works.
    r.edu.dma(Direction::ToDevice, IOVA, 0, 4, DMA_BUDGET_US).map_err(|_| "DMA timed out")?;
    if !events(&mut r).is_empty() {
        return Err("a read of a read-only page faulted");
    }
    let intact = (0..PAGE).all(|k| mem.page(1)[k] == pattern(k));
    (intact && mem.all(0, FILL) && mem.all(2, FILL)).then_some(()).ok_or("read-only page changed")
}

fn abort_blocks(dt: &Dt) -> Result<(), &'static str> {
    let mut r = rig(dt)?;
    let mem = Pages::new(3, FILL);
    // A working stage-2 mapping first, then the STE replaced by abort.
    let mut t = s2_table()?;
    t.map(Iova(IOVA), mem.pa(1), PAGE as u64, Prot::RW).map_err(|_| "map")?;
    r.smmu.set_ste(r.sid, &Ste::stage2(s2_ste(&t)?)).map_err(|_| "set STE")?;
    r.smmu.set_ste(r.sid, &Ste::abort()).map_err(|_| "abort STE")?;
    r.edu.dma(Direction::FromDevice, IOVA, 0, PAGE as u64, DMA_BUDGET_US).map_err(|_| "DMA timed out")?;
    let _ = events(&mut r);
    (mem.all(0, FILL) && mem.all(1, FILL) && mem.all(2, FILL))
        .then_some(())
        .ok_or("an aborting STE let DMA through")
}

fn sid_refused(dt: &Dt) -> Result<(), &'static str> {
    let mut r = rig_with(dt, &SmmuConfig { sid_bits: Some(8), ..SmmuConfig::default() })?;
    let beyond = StreamId(1 << r.smmu.sid_bits());
    match r.smmu.set_ste(beyond, &Ste::bypass()) {
        Err(Error::SidOutOfRange { .. }) => Ok(()),
        _ => Err("a StreamID beyond the table was accepted"),
    }
}

fn cdmax_refused(dt: &Dt) -> Result<(), &'static str> {
    let mut r = rig(dt)?;
    if r.smmu.capabilities().ssidsize != 0 {
        return Err("this SMMU has substreams: the QEMU 10 model has none");
    }
    match r.smmu.new_cd_table(S1Fmt::Linear, 1) {
        Err(Error::Config(_)) => Ok(()),
        _ => Err("a CD table beyond SSIDSIZE was accepted"),
    }
}

fn evtq_overflow(dt: &Dt) -> Result<(), &'static str> {
    let mut r = rig_with(dt, &SmmuConfig { evtq_log2size: 3, ..SmmuConfig::default() })?;
    let t = s2_table()?;
    r.smmu.set_ste(r.sid, &Ste::stage2(s2_ste(&t)?)).map_err(|_| "set STE")?;
    // 4 KiB of unmapped writes: QEMU records one event per 4 bytes, 1024 in all.
    r.edu.dma(Direction::FromDevice, IOVA, 0, PAGE as u64, DMA_BUDGET_US).map_err(|_| "DMA timed out")?;
    let mut overflowed = false;
    let mut records = 0;
    loop {
        let rep = r.smmu.drain_events(|_| {});
        overflowed |= rep.overflowed;
        records += rep.records;
        if !rep.more {
            break;
        }
    }
    // The spec flags overflow in SMMU_EVTQ_PROD.OVFLG; QEMU 10 instead
    // raises GERROR.EVTQ_ABT_ERR when the queue is full. Either way the
    // driver must say records were lost.
    let gerror = r.smmu.handle_gerror();
    let aborted = gerror.errors.contains(GlobalErrors::EVENTQ_ABT_ERR);
    defmt::info!(
        "event queue of 8 after 1024 faults: {=usize} records kept, OVFLG {=bool}, EVTQ_ABT_ERR {=bool}",
        records,
        overflowed,
        aborted
    );
    ((overflowed || aborted) && records <= 8).then_some(()).ok_or("lost event records not reported")
}

fn cerror(dt: &Dt) -> Result<(), &'static str> {
    let mut r = rig(dt)?;
    // Opcode 0x07 is reserved: the SMMU stops with CERROR_ILL at that slot.
    // The driver names the slot and opcode, replaces the command with a
    // CMD_SYNC and lets the queue run on.
    match r.smmu.submit_raw_sync(&[[0x07, 0]]) {
        Err(Error::Command(c)) => defmt::info!("CERROR reported: {}", defmt::Debug2Format(&c)),
        Err(_) => return Err("the illegal command gave another error"),
        Ok(()) => return Err("the illegal command was accepted"),
    }
    r.smmu.invalidate_all().map_err(|_| "command queue stuck after CERROR")
}

/// Remap an IOVA to a new page: without invalidation the device still sees
/// the old page (the SMMU's TLB), after it the new one.
fn remap_invalidation(dt: &Dt) -> Result<(), &'static str> {
    let mut r = rig(dt)?;
    let mut mem = Pages::new(3, FILL);
    mem.set(0, |_| 0xa1);
    mem.set(1, |_| 0xb2);
    let mut t = s2_table()?;
    t.map(Iova(IOVA), mem.pa(0), PAGE as u64, Prot::RO).map_err(|_| "map A")?;
    t.map(Iova(IOVA + PAGE as u64), mem.pa(2), PAGE as u64, Prot::RW).map_err(|_| "map out")?;
    r.smmu.set_ste(r.sid, &Ste::stage2(s2_ste(&t)?)).map_err(|_| "set STE")?;
    let read_through = |r: &Rig, mem: &Pages| -> Result<u8, &'static str> {
        dma_in_out(r, IOVA, IOVA + PAGE as u64)?;
        Ok(mem.page(2)[0])
    };
    if read_through(&r, &mem)? != 0xa1 {
        return Err("first DMA did not read page A");
    }
    let mut gather = IotlbGather::default();
    t.unmap(Iova(IOVA), PAGE as u64, &mut gather).map_err(|_| "unmap")?;
    if gather.ranges().len() != 1 {
        return Err("one page unmapped should gather one range");
    }
    t.map(Iova(IOVA), mem.pa(1), PAGE as u64, Prot::RO).map_err(|_| "map B")?;
    let stale = read_through(&r, &mem)?;
    for range in gather.ranges() {
        r.smmu
            .invalidate_s2_range(VMID, Ipa(range.start.0), range.len(), Granule::K4)
            .map_err(|_| "invalidate")?;
    }
    t.complete(&mut gather).map_err(|_| "complete")?;
    let fresh = read_through(&r, &mem)?;
    defmt::info!("after remap: before TLBI the device read {=u8:#x}, after {=u8:#x}", stale, fresh);
    if stale != 0xa1 {
        return Err("the device saw the new page before invalidation (no IOTLB?)");
    }
    (fresh == 0xb2).then_some(()).ok_or("the device still sees the old page after invalidation")
}

fn bypass_passes(dt: &Dt) -> Result<(), &'static str> {
    let mut r = rig(dt)?;
    let mut mem = Pages::new(3, FILL);
    mem.set(1, pattern);
    r.smmu.set_ste(r.sid, &Ste::bypass()).map_err(|_| "bypass STE")?;
    dma_in_out(&r, mem.pa(1).0, mem.pa(2).0)?;
    if !events(&mut r).is_empty() {
        return Err("bypassed DMA raised events");
    }
    (mem.page(2) == mem.page(1) && mem.all(0, FILL)).then_some(()).ok_or("bypass DMA did not land at the PA")
}

/// The event queue drained from its wired interrupt: a fault raised by the
/// device reaches the fault ring through the GIC, without polling.
fn event_irq(dt: &Dt) -> Result<(), &'static str> {
    use boards::platform::{Gic, Trigger};
    let irqs = smmu::driver::IrqEnables { gerror: true, eventq: true, priq: false };
    let mut r = rig_with(dt, &SmmuConfig { irqs, ..SmmuConfig::default() })?;
    let t = s2_table()?;
    r.smmu.set_ste(r.sid, &Ste::stage2(s2_ste(&t)?)).map_err(|_| "set STE")?;
    let host = dt.platform.pcie.first().ok_or("no PCIe")?;
    smmu_host::set_rid_map(host);
    let Gic::V3(g) = &dt.platform.gic else { return Err("needs GICv3") };
    let s = &dt.platform.smmus[0];
    let evt = s.irqs.eventq.ok_or("the DT names no eventq interrupt")?;
    let gerr = s.irqs.gerror.ok_or("the DT names no gerror interrupt")?;
    // SAFETY: GIC regions from the DT, identity mapped as device memory.
    let gic = unsafe { crate::gic::v3::GicV3::new(g) };
    crate::irq::register(evt.intid(), smmu_host::on_event_irq).map_err(|_| "IRQ table full")?;
    crate::irq::register(gerr.intid(), smmu_host::on_gerror_irq).map_err(|_| "IRQ table full")?;
    gic.enable_spi(evt.intid(), evt.trigger() != Trigger::LevelHigh)
        .map_err(|_| "GIC refused the eventq SPI")?;
    gic.enable_spi(gerr.intid(), gerr.trigger() != Trigger::LevelHigh)
        .map_err(|_| "GIC refused the gerror SPI")?;
    let Rig { smmu, edu, sid, bdf } = r;
    smmu_host::with_active(|a| *a = Some(smmu));
    let irqs_before = smmu_host::event_irqs();
    let hole = IOVA + 32 * PAGE as u64;
    let dma = edu.dma(Direction::FromDevice, hole, 0, 4, DMA_BUDGET_US);
    let deadline = crate::log::uptime_us() + 1_000_000;
    let found = loop {
        let f = crate::faults::find_latest(|f| f.code == 0x10 && f.sid == sid.0 && f.addr == hole && f.write);
        if f.is_some() || crate::log::uptime_us() > deadline {
            break f;
        }
        core::hint::spin_loop();
    };
    smmu_host::with_active(|a| *a = None);
    dma.map_err(|_| "DMA timed out")?;
    let f = found.ok_or("no fault record reached the ring through the interrupt")?;
    if smmu_host::event_irqs() == irqs_before {
        return Err("the fault was recorded without an interrupt");
    }
    if smmu_host::bdf_of(f.sid) != Some(bdf) {
        return Err("the trace does not name the edu's PCI function");
    }
    Ok(())
}

/// The SMMU driven through `iommu-common`'s assignment model: a partition
/// owning some memory gets the edu's group and a stage-2 domain; DMA lands
/// inside, a mapping outside the partition is refused, an unmap is
/// invalidated through the backend, and detaching blocks the device.
fn assignment_model(dt: &Dt) -> Result<(), &'static str> {
    use iommu_common::container::{ContainerError, ContainerId, DeviceAssignment, PhysRange, PhysRegions};
    use iommu_common::domain::TagAllocator;
    use iommu_common::group::{Bdf as GBdf, Device, DeviceId, GroupBuilder, HwId, IommuUnit};

    let mut r = rig(dt)?;
    // Pages 0..4 are the partition's memory; page 4 belongs to someone else.
    let mut mem = Pages::new(5, FILL);
    mem.set(1, pattern);
    let bdf = GBdf::new(0, r.bdf.bus, r.bdf.dev, r.bdf.func).ok_or("bad BDF")?;
    let dev_id = DeviceId::Pci(bdf);
    let mut topo = GroupBuilder::new();
    topo.add_device(Device::new(dev_id, [HwId::new(IommuUnit(0), r.sid.0)])).map_err(|_| "topology")?;
    let mut model =
        DeviceAssignment::new(topo.build(), TagAllocator::smmu_vmid(r.smmu.capabilities().vmid16));
    let part = ContainerId(1);
    let memory = PhysRegions::new([PhysRange::new(mem.pa(0), 4 * PAGE as u64)]).map_err(|_| "regions")?;
    model.create_container(part, memory).map_err(|_| "create partition")?;
    let dom = model.create_domain(&r.smmu, part, s2_table()?).map_err(|_| "create domain")?;
    let group = model.assign_device(part, dev_id).map_err(|_| "assign edu")?;
    model.attach_group(&mut r.smmu, part, group, dom).map_err(|_| "attach")?;
    model.map(part, dom, Iova(IOVA), mem.pa(1), PAGE as u64, Prot::RO).map_err(|_| "map source")?;
    model
        .map(part, dom, Iova(IOVA + PAGE as u64), mem.pa(2), PAGE as u64, Prot::RW)
        .map_err(|_| "map target")?;
    match model.map(part, dom, Iova(IOVA + 2 * PAGE as u64), mem.pa(4), PAGE as u64, Prot::RW) {
        Err(ContainerError::OutsideMemory { .. }) => {}
        Err(_) => return Err("a map outside the partition failed for the wrong reason"),
        Ok(()) => return Err("a map outside the partition's memory was accepted"),
    }
    dma_in_out(&r, IOVA, IOVA + PAGE as u64)?;
    if mem.page(2) != mem.page(1) || !events(&mut r).is_empty() {
        return Err("DMA through the partition's domain did not land");
    }
    // Unmap the target: the backend invalidates, so the next write faults.
    mem.set(2, |_| FILL);
    model.unmap(&mut r.smmu, part, dom, Iova(IOVA + PAGE as u64), PAGE as u64).map_err(|_| "unmap")?;
    r.edu.dma(Direction::FromDevice, IOVA + PAGE as u64, 0, 4, DMA_BUDGET_US).map_err(|_| "DMA timed out")?;
    expect_fault(&events(&mut r), "F_TRANSLATION", r.sid, IOVA + PAGE as u64, true)?;
    // Detach: the device is blocked (abort STE), the source is no longer readable.
    model.detach_group(&mut r.smmu, part, group).map_err(|_| "detach")?;
    if r.smmu.ste(r.sid).map_err(|_| "STE read")? != Some(Ste::abort()) {
        return Err("detach did not leave an abort STE");
    }
    r.edu.dma(Direction::FromDevice, IOVA, 0, PAGE as u64, DMA_BUDGET_US).map_err(|_| "DMA timed out")?;
    let untouched = (0..PAGE).all(|k| mem.page(1)[k] == pattern(k)) && mem.all(2, FILL) && mem.all(4, FILL);
    untouched.then_some(()).ok_or("memory changed after detach")
}
