//! The VT-d cases: `x86-backends`' legacy-mode driver (`vtd::driver`) and
//! `iommu-common`'s second-level table (`pgtable::x86`) proven with edu on
//! QEMU's `intel-iommu`.
//!
//! The first case to run brings the unit up (DMAR → the DRHD whose explicit
//! scope lists edu → probe with translation on → edu attached to domain 1
//! through a fresh table). After that, translation stays on for the rest of
//! the run: the platform cases (`edu_dma_identity`) run before these.
//! Each case maps what it needs and unmaps it (with invalidation) again.

use core::cell::UnsafeCell;
use core::ptr::NonNull;

use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::domain::DomainConfig;
use iommu_common::pgtable::x86::SlTable;
use iommu_common::pgtable::{IoPageTable, IotlbGather, PoolAllocator, Prot};
use x86_backends::acpi::{AcpiTables, Bdf, PhysMem, Unmapped};
use x86_backends::vtd::dma::{ClflushPages, DmaBuf, DmaFrames};
use x86_backends::vtd::driver::{InvalidationMode, Vtd, VtdConfig};
use x86_backends::vtd::fault::{Access, Fault};
use x86_backends::vtd::mmio::VtdMmio;
use x86_backends::vtd::{DomainId, SourceId};

use super::Case;
use crate::bootinfo::BootInfo;
use crate::edu::{self, Direction, DmaAddr, Edu};
use crate::pci;

/// Every VT-d case, in run order.
pub static ALL: &[Case] = &[
    Case { name: "vtd_edu_dma_translated", default: true, applies: has_dmar, run: edu_dma_translated },
    Case { name: "vtd_unmapped_dma_faults", default: true, applies: has_dmar, run: unmapped_dma_faults },
    Case { name: "vtd_readonly_blocks_write", default: true, applies: has_dmar, run: readonly_blocks_write },
    Case { name: "vtd_remap_needs_invalidation_qi", default: true, applies: has_dmar, run: remap_qi },
    Case {
        name: "vtd_remap_needs_invalidation_register",
        default: true,
        applies: has_dmar,
        run: remap_register,
    },
    Case { name: "vtd_detach_blocks", default: true, applies: has_dmar, run: detach_blocks },
];

const PAGE: usize = 4096;
/// The domain edu is attached to.
pub(super) const DID: DomainId = DomainId(1);
/// Where edu reads its source page through the IOMMU (mapped read-only for
/// the whole run).
const IOVA_SRC: u64 = 0x10_0000;
/// Target IOVAs, all below edu's 256 MiB DMA mask and far from the pages
/// they map (so an untranslated access would be visible elsewhere).
const IOVA_DST: u64 = 0x0ff0_0000;
const IOVA_UNMAPPED: u64 = 0x0fe0_0000;
const IOVA_RO: u64 = 0x0fd0_0000;
const IOVA_REMAP: u64 = 0x0fc0_0000;
const IOVA_DETACH: u64 = 0x0fb0_0000;

const TARGET_FILL: u8 = 0x5a;
const GUARD_FILL: u8 = 0xc3;
const UNMAPPED_FILL: u8 = 0x3c;

/// Pages edu reads and writes: 0 the source, 2 and 4 targets, guards at
/// 1, 3 and 5.
const SRC: usize = 0;
const T1: usize = 2;
const T2: usize = 4;
const GUARDS: [usize; 3] = [1, 3, 5];

#[repr(C, align(4096))]
struct Pages(UnsafeCell<[u8; 6 * PAGE]>);
// SAFETY: one CPU; only these cases touch the pages, through raw pointers.
unsafe impl Sync for Pages {}
static PAGES: Pages = Pages(UnsafeCell::new([0; 6 * PAGE]));

fn page_pa(i: usize) -> PhysAddr {
    PhysAddr(PAGES.0.get() as u64 + (i * PAGE) as u64)
}

fn put(page: usize, off: usize, v: u8) {
    assert!(off < PAGE && page < 6);
    // SAFETY: inside PAGES (checked); volatile because only the device reads it.
    unsafe { (PAGES.0.get() as *mut u8).add(page * PAGE + off).write_volatile(v) }
}

fn get(page: usize, off: usize) -> u8 {
    assert!(off < PAGE && page < 6);
    // SAFETY: as in `put`; volatile because the device wrote it.
    unsafe { (PAGES.0.get() as *const u8).add(page * PAGE + off).read_volatile() }
}

fn fill(page: usize, f: impl Fn(usize) -> u8) {
    for i in 0..PAGE {
        put(page, i, f(i));
    }
}

/// Whether `page` holds `f(i)` at every offset; logs the first difference.
fn holds(what: &str, page: usize, f: impl Fn(usize) -> u8) -> bool {
    for i in 0..PAGE {
        let (got, want) = (get(page, i), f(i));
        if got != want {
            defmt::error!("{=str}: byte {=usize:#x} is {=u8:#x}, want {=u8:#x}", what, i, got, want);
            return false;
        }
    }
    true
}

fn pattern(seed: u8) -> impl Fn(usize) -> u8 {
    move |i| (i as u8).wrapping_mul(7) ^ (i >> 8) as u8 ^ seed
}

fn guards_intact() -> Result<(), &'static str> {
    for g in GUARDS {
        if !holds("guard page", g, |_| GUARD_FILL) {
            return Err("a neighbouring page changed");
        }
    }
    Ok(())
}

// ---- the platform seams ----

/// Physical memory below 4 GiB, identity mapped (ACPI tables).
struct Identity;

impl PhysMem for Identity {
    fn read(&self, pa: PhysAddr, len: usize) -> Result<&[u8], Unmapped> {
        // SAFETY: ACPI tables are RAM/ROM firmware filled before entry and
        // nothing writes afterwards; `bytes` checks the identity map.
        unsafe { crate::phys::bytes(pa.0, len) }.ok_or(Unmapped)
    }
}

/// DMA memory for the unit's root/context tables and queue: a static,
/// identity-mapped arena, handed out once.
pub(super) struct ArenaFrames {
    next: usize,
}

const FRAMES: usize = 16;
#[repr(C, align(4096))]
struct FrameArena(UnsafeCell<[u8; FRAMES * PAGE]>);
// SAFETY: handed out in disjoint blocks by the one `ArenaFrames`.
unsafe impl Sync for FrameArena {}
static FRAME_ARENA: FrameArena = FrameArena(UnsafeCell::new([0; FRAMES * PAGE]));

// SAFETY: blocks are disjoint parts of a static, zero-initialised arena
// (never reused), aligned as asked up to 4 KiB, and identity mapped, so the
// pointer value is the physical address.
unsafe impl DmaFrames for ArenaFrames {
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<DmaBuf> {
        if align > PAGE {
            return None;
        }
        let start = self.next.next_multiple_of(align);
        let end = start.checked_add(size).filter(|&e| e <= FRAMES * PAGE)?;
        self.next = end;
        let va = NonNull::new((FRAME_ARENA.0.get() as *mut u8).wrapping_add(start))?;
        Some(DmaBuf { pa: PhysAddr(va.as_ptr() as u64), va, size })
    }
}

// ---- the unit, brought up once ----

pub(super) struct State {
    pub(super) vtd: Vtd<'static, ArenaFrames>,
    pub(super) table: SlTable<ClflushPages<PoolAllocator>>,
    pub(super) edu: Edu,
    pub(super) sid: SourceId,
}

struct Global(UnsafeCell<Option<State>>);
// SAFETY: one CPU, no interrupts: the cases run one after another.
unsafe impl Sync for Global {}
static STATE: Global = Global(UnsafeCell::new(None));

pub(super) fn has_dmar(boot: &BootInfo) -> bool {
    AcpiTables::new(&Identity, PhysAddr(boot.start.rsdp_paddr))
        .is_ok_and(|t| t.dmar().is_ok_and(|d| d.is_some()))
}

pub(super) fn state(boot: &BootInfo) -> Result<&'static mut State, &'static str> {
    // SAFETY: single-threaded; each case takes the one reference for its
    // duration and drops it before the next case.
    let slot = unsafe { &mut *STATE.0.get() };
    if slot.is_none() {
        *slot = Some(bring_up(boot)?);
    }
    slot.as_mut().ok_or("VT-d state missing")
}

fn edu_device() -> Result<(Edu, pci::Function), &'static str> {
    let f = pci::find(edu::VENDOR, edu::DEVICE).ok_or("no edu on bus 0")?;
    let bar = f.bar0_mem32().map_err(|_| "edu BAR0 unusable")?;
    f.set_command(f.command() | pci::CMD_MEM | pci::CMD_BUS_MASTER);
    // SAFETY: BAR0 was just decoded (Command.MEM) and lies in the uncached
    // identity map (checked by the platform cases); only this Edu uses it.
    Ok((unsafe { Edu::new(bar.base) }, f))
}

fn bring_up(boot: &BootInfo) -> Result<State, &'static str> {
    let tables =
        AcpiTables::new(&Identity, PhysAddr(boot.start.rsdp_paddr)).map_err(|_| "ACPI tables unreadable")?;
    let dmar = tables.dmar().map_err(|_| "DMAR invalid")?.ok_or("no DMAR")?;
    let (edu, f) = edu_device()?;
    let bdf = Bdf::new(f.bus, f.dev, f.func).ok_or("edu BDF")?;
    let drhd = dmar.drhd_for(0, bdf).ok_or("no DRHD covers edu (explicit scopes)")?;
    let haw = u32::from(dmar.host_address_width()) + 1;
    defmt::info!(
        "vtd: edu {=u8:02x}:{=u8:02x}.{=u8} is behind the DRHD at {=u64:#x} ({=u64} bytes, INCLUDE_PCI_ALL {=bool}), HAW {=u32}",
        f.bus,
        f.dev,
        f.func,
        drhd.register_base.0,
        drhd.register_size(),
        drhd.include_pci_all(),
        haw
    );
    let base = NonNull::new(drhd.register_base.0 as usize as *mut u8).ok_or("DRHD base 0")?;
    if drhd.register_base.0 < crate::boot::UNCACHED_FROM || drhd.register_base.0 >= crate::phys::MAPPED_END {
        return Err("DRHD registers outside the uncached identity map");
    }
    // SAFETY: the DRHD's register frame, mapped uncached by the boot tables
    // (checked above), used only through this driver for the rest of the run.
    let mmio = unsafe { VtdMmio::new(base, drhd.register_size() as usize) };
    let caps = mmio.read_caps();
    defmt::info!(
        "vtd: CAP {=u64:#018x} ECAP {=u64:#018x}: SAGAW {=u8:#x} MGAW {=u32} SLLPS 2M {=bool} 1G {=bool} NFR {=u16} QI {=bool} CM {=bool} C {=bool}",
        caps.cap,
        caps.ecap,
        caps.sagaw,
        caps.mgaw(),
        caps.sllps.m2,
        caps.sllps.g1,
        caps.num_fault_records(),
        caps.qi,
        caps.cm,
        caps.c
    );
    let mut vtd = Vtd::probe(mmio, caps, ArenaFrames { next: 0 }, VtdConfig::default()).map_err(|e| {
        defmt::error!("vtd probe: {}", defmt::Display2Format(&e));
        "VT-d bring-up failed"
    })?;
    let cfg = vtd.sl_config(haw).map_err(|_| "no usable second-level geometry")?;
    let pages = ClflushPages::new(PoolAllocator::new(64, PAGE), caps.c);
    let mut table = SlTable::new(cfg, pages).map_err(|_| "second-level table")?;
    let dom = vtd.domain_config(&table).map_err(|_| "the unit cannot walk the table")?;
    let sid = SourceId::new(f.bus, f.dev, f.func);
    vtd.attach(sid, DID, &dom).map_err(|_| "attaching edu failed")?;
    table.map(Iova(IOVA_SRC), page_pa(SRC), PAGE as u64, Prot::RO).map_err(|_| "mapping the source page")?;
    vtd.flush_map(DID, Iova(IOVA_SRC), PAGE as u64).map_err(|_| "flush after map")?;
    defmt::info!(
        "vtd: translating: root table {=u64:#x}, {=u8}-level second-level table at {=u64:#x} (IAS {=u32}, OAS {=u32}), invalidation {=str}, edu source-id {=u16:#06x} in domain {=u16}",
        vtd.root_table().0,
        table.levels(),
        table.root_pa().0,
        table.ias(),
        table.oas(),
        mode_str(vtd.invalidation_mode()),
        sid.0,
        DID.0
    );
    Ok(State { vtd, table, edu, sid })
}

fn mode_str(m: InvalidationMode) -> &'static str {
    match m {
        InvalidationMode::Queued => "queued",
        InvalidationMode::Register => "register",
    }
}

fn access_str(a: Access) -> &'static str {
    match a {
        Access::Write => "write",
        Access::Read => "read",
        Access::PageRequest => "page-request",
        Access::AtomicOp => "atomic",
    }
}

fn log_fault(f: &Fault) {
    let s = f.requester;
    defmt::info!(
        "vtd fault: device {=u8:02x}:{=u8:02x}.{=u8} {=str} at {=u64:#x}, reason {=u8:#04x} {=str}: {=str}",
        s.bus(),
        s.device(),
        s.function(),
        access_str(f.access),
        f.address.0,
        f.reason.code(),
        f.reason.condition(),
        f.reason.meaning()
    );
}

impl State {
    /// Loads edu's buffer from the source page, through the IOMMU.
    fn load(&self, seed: u8) -> Result<(), &'static str> {
        fill(SRC, pattern(seed));
        self.edu
            .dma(Direction::ToDevice, DmaAddr(IOVA_SRC), PAGE)
            .map_err(|_| "DMA IOVA -> edu did not complete")
    }

    /// edu's buffer to `iova`.
    fn store(&self, iova: u64) -> Result<(), &'static str> {
        self.edu
            .dma(Direction::FromDevice, DmaAddr(iova), PAGE)
            .map_err(|_| "DMA edu -> IOVA did not complete")
    }

    /// Drains the fault records, logging each; returns the faults.
    pub(super) fn faults(&mut self) -> ([Option<Fault>; 4], usize) {
        let mut out = [None; 4];
        let mut n = 0;
        let r = self.vtd.poll_faults(|f| {
            log_fault(f);
            if n < out.len() {
                out[n] = Some(*f);
            }
            n += 1;
        });
        if r.overflow {
            defmt::warn!("vtd: FSTS.PFO was set: faults were lost");
        }
        (out, n)
    }

    /// Expects exactly one fault: edu, at `iova`, this access and reason.
    fn expect_fault(&mut self, iova: u64, access: Access, reason: u8) -> Result<(), &'static str> {
        let (faults, n) = self.faults();
        let Some(f) = faults[0].filter(|_| n == 1) else {
            defmt::error!("vtd: {=usize} fault records, want 1", n);
            return Err("not exactly one fault recorded");
        };
        if f.requester != self.sid
            || f.address != Iova(iova)
            || f.access != access
            || f.reason.code() != reason
        {
            return Err("the fault record does not name edu, the page, the access and the reason");
        }
        Ok(())
    }

    fn map(&mut self, iova: u64, page: usize, prot: Prot) -> Result<(), &'static str> {
        self.table.map(Iova(iova), page_pa(page), PAGE as u64, prot).map_err(|_| "map refused")?;
        self.vtd.flush_map(DID, Iova(iova), PAGE as u64).map_err(|_| "flush after map failed")
    }

    fn unmap(&mut self, iova: u64) -> Result<(), &'static str> {
        let mut g = IotlbGather::new();
        self.table.unmap(Iova(iova), PAGE as u64, &mut g).map_err(|_| "unmap refused")?;
        self.vtd.invalidate_gather(DID, &g).map_err(|_| "IOTLB invalidation failed")?;
        self.table.complete(&mut g).map_err(|_| "completing the unmap failed")
    }

    fn prepare(&mut self) {
        fill(T1, |_| TARGET_FILL);
        fill(T2, |_| TARGET_FILL);
        for g in GUARDS {
            fill(g, |_| GUARD_FILL);
        }
        let (_, n) = self.faults();
        if n > 0 {
            defmt::warn!("vtd: {=usize} stale fault records drained", n);
        }
    }
}

fn edu_dma_translated(boot: &BootInfo) -> Result<(), &'static str> {
    let s = state(boot)?;
    s.prepare();
    s.map(IOVA_DST, T1, Prot::RW)?;
    defmt::info!(
        "vtd dma: IOVA {=u64:#x} -> PA {=u64:#x} (read-only), IOVA {=u64:#x} -> PA {=u64:#x} (read-write)",
        IOVA_SRC,
        page_pa(SRC).0,
        IOVA_DST,
        page_pa(T1).0
    );
    s.load(0xa5)?;
    s.store(IOVA_DST)?;
    let (_, n) = s.faults();
    let ok = holds("target", T1, pattern(0xa5))
        && holds("source", SRC, pattern(0xa5))
        && holds("other target", T2, |_| TARGET_FILL);
    s.unmap(IOVA_DST)?;
    if n != 0 {
        return Err("translated DMA faulted");
    }
    if !ok {
        return Err("the target does not hold the source's bytes (or another page changed)");
    }
    guards_intact()
}

/// The page at physical address `pa` (RAM nothing else uses), for checking
/// that an untranslated access did not land there.
fn ram_page(pa: u64) -> *mut u8 {
    pa as usize as *mut u8
}

fn unmapped_dma_faults(boot: &BootInfo) -> Result<(), &'static str> {
    let s = state(boot)?;
    s.prepare();
    // RAM at the IOVA's own address: where an untranslated write would go.
    let raw = ram_page(IOVA_UNMAPPED);
    for i in 0..PAGE {
        // SAFETY: RAM at 254 MiB, inside the 512 MiB machine and the
        // identity map, used by nothing else (the image and heap are low).
        unsafe { raw.add(i).write_volatile(UNMAPPED_FILL) };
    }
    s.load(0x11)?;
    s.store(IOVA_UNMAPPED)?;
    s.expect_fault(IOVA_UNMAPPED, Access::Write, 0x05)?;
    // SAFETY: as above.
    let untouched = (0..PAGE).all(|i| unsafe { raw.add(i).read_volatile() } == UNMAPPED_FILL);
    if !untouched || !holds("target", T1, |_| TARGET_FILL) || !holds("target", T2, |_| TARGET_FILL) {
        return Err("a blocked DMA write reached memory");
    }
    // A read of an unmapped IOVA faults too (reason 6).
    s.edu
        .dma(Direction::ToDevice, DmaAddr(IOVA_UNMAPPED), PAGE)
        .map_err(|_| "DMA from unmapped IOVA did not complete")?;
    s.expect_fault(IOVA_UNMAPPED, Access::Read, 0x06)?;
    guards_intact()
}

fn readonly_blocks_write(boot: &BootInfo) -> Result<(), &'static str> {
    let s = state(boot)?;
    s.prepare();
    s.map(IOVA_RO, T1, Prot::RO)?;
    fill(T1, pattern(0x22));
    // Writing through the read-only mapping is blocked and recorded. (First:
    // QEMU checks a write against an IOTLB entry a read created without
    // recording a fault, so the walk that records it must come first.)
    s.load(0x33)?;
    s.store(IOVA_RO)?;
    let fault = s.expect_fault(IOVA_RO, Access::Write, 0x05);
    let kept = holds("read-only page", T1, pattern(0x22));
    // Reading through it works.
    let read =
        s.edu.dma(Direction::ToDevice, DmaAddr(IOVA_RO), PAGE).map_err(|_| "DMA read did not complete");
    let (_, n) = s.faults();
    s.unmap(IOVA_RO)?;
    fault?;
    if !kept {
        return Err("a write through a read-only mapping changed the page");
    }
    read?;
    if n != 0 {
        return Err("a read through a read-only mapping faulted");
    }
    guards_intact()
}

fn remap(boot: &BootInfo, mode: InvalidationMode) -> Result<(), &'static str> {
    let s = state(boot)?;
    s.prepare();
    let before = s.vtd.invalidation_mode();
    s.vtd.set_invalidation_mode(mode).map_err(|_| "switching the invalidation mode failed")?;
    let r = remap_body(s);
    s.vtd.set_invalidation_mode(before).map_err(|_| "restoring the invalidation mode failed")?;
    r
}

fn remap_body(s: &mut State) -> Result<(), &'static str> {
    let how = mode_str(s.vtd.invalidation_mode());
    s.map(IOVA_REMAP, T1, Prot::RW)?;
    s.load(0x44)?;
    s.store(IOVA_REMAP)?; // the unit's IOTLB now holds IOVA -> T1
    if !holds("old page", T1, pattern(0x44)) {
        return Err("the first DMA did not reach the old page");
    }
    // Remap to T2 without invalidating yet.
    let mut g = IotlbGather::new();
    s.table.unmap(Iova(IOVA_REMAP), PAGE as u64, &mut g).map_err(|_| "unmap refused")?;
    s.table.map(Iova(IOVA_REMAP), page_pa(T2), PAGE as u64, Prot::RW).map_err(|_| "remap refused")?;
    s.load(0x55)?;
    s.store(IOVA_REMAP)?;
    let stale =
        holds("old page (stale translation)", T1, pattern(0x55)) && holds("new page", T2, |_| TARGET_FILL);
    defmt::info!(
        "vtd remap ({=str}): IOVA {=u64:#x} moved {=u64:#x} -> {=u64:#x}; before invalidation the write went to the {=str} page",
        how,
        IOVA_REMAP,
        page_pa(T1).0,
        page_pa(T2).0,
        if stale { "old" } else { "new" }
    );
    // The driver's invalidation.
    s.vtd.invalidate_gather(DID, &g).map_err(|_| "IOTLB invalidation failed")?;
    s.table.complete(&mut g).map_err(|_| "completing the unmap failed")?;
    s.load(0x66)?;
    s.store(IOVA_REMAP)?;
    let fresh = holds("new page", T2, pattern(0x66)) && holds("old page", T1, pattern(0x55));
    defmt::info!(
        "vtd remap ({=str}): after invalidation the write went to the {=str} page",
        how,
        if fresh { "new" } else { "old" }
    );
    let (_, n) = s.faults();
    s.unmap(IOVA_REMAP)?;
    if !stale {
        return Err("no stale translation before the invalidation (did the unit cache it?)");
    }
    if !fresh {
        return Err("the device still used the old page after the invalidation");
    }
    if n != 0 {
        return Err("remapping faulted");
    }
    guards_intact()
}

fn remap_qi(boot: &BootInfo) -> Result<(), &'static str> {
    remap(boot, InvalidationMode::Queued)
}

fn remap_register(boot: &BootInfo) -> Result<(), &'static str> {
    remap(boot, InvalidationMode::Register)
}

fn detach_blocks(boot: &BootInfo) -> Result<(), &'static str> {
    let s = state(boot)?;
    s.prepare();
    s.map(IOVA_DETACH, T1, Prot::RW)?;
    s.load(0x77)?;
    s.store(IOVA_DETACH)?;
    if !holds("target while attached", T1, pattern(0x77)) {
        return Err("DMA while attached did not arrive");
    }
    s.vtd.detach(s.sid).map_err(|_| "detach failed")?;
    // edu still holds 0x77's pattern: refill the target so a write shows.
    fill(T1, |_| TARGET_FILL);
    s.store(IOVA_DETACH)?;
    // Reason 2: the context entry is not present.
    let fault = s.expect_fault(IOVA_DETACH, Access::Write, 0x02);
    let blocked = holds("target while detached", T1, |_| TARGET_FILL);
    // Attach again for later cases and clean up.
    let dom = s.vtd.domain_config(&s.table).map_err(|_| "domain config")?;
    s.vtd.attach(s.sid, DID, &dom).map_err(|_| "re-attach failed")?;
    s.unmap(IOVA_DETACH)?;
    fault?;
    if !blocked {
        return Err("DMA reached memory after detach");
    }
    guards_intact()
}
