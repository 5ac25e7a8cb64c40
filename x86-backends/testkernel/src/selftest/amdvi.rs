//! The AMD-Vi cases: `x86-backends`' driver (`amdvi::driver`) and
//! `iommu-common`'s AMD-Vi page table (`pgtable::amd`) proven with edu on
//! QEMU's `amd-iommu,pt=off`.
//!
//! The first case to run brings the IOMMU up (IVRS → the IVHD → blocked
//! device table, command buffer, event log, IommuEn) and attaches edu to
//! domain 1 through a fresh 3-level table. QEMU writes nothing to the event
//! log, so every blocked DMA is proven by memory: the target is prefilled
//! with bytes unlike what the DMA would write, and the page an untranslated
//! access would have hit is a canary.

use core::cell::UnsafeCell;

use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::pgtable::amd::AmdTable;
use iommu_common::pgtable::{IoPageTable, IotlbGather, PoolAllocator, Prot};
use x86_backends::acpi::{AcpiTables, PhysMem, Unmapped};
use x86_backends::amdvi::dma::DmaMemory;
use x86_backends::amdvi::driver::{AmdVi, Config};
use x86_backends::amdvi::event::LogState;
use x86_backends::amdvi::regs::AmdViRegisterBlock;
use x86_backends::amdvi::{DeviceId, DomainId};

use super::Case;
use crate::bootinfo::BootInfo;
use crate::edu::{self, Direction, DmaAddr, Edu};
use crate::pci;

/// Every AMD-Vi case, in run order.
pub static ALL: &[Case] = &[
    Case {
        name: "amdvi_completion_wait_stores",
        default: true,
        applies: has_ivrs,
        run: completion_wait_stores,
    },
    Case { name: "amdvi_edu_dma_translated", default: true, applies: has_ivrs, run: edu_dma_translated },
    Case { name: "amdvi_unmapped_dma_blocked", default: true, applies: has_ivrs, run: unmapped_dma_blocked },
    Case {
        name: "amdvi_readonly_blocks_write",
        default: true,
        applies: has_ivrs,
        run: readonly_blocks_write,
    },
    Case {
        name: "amdvi_remap_needs_invalidation",
        default: true,
        applies: has_ivrs,
        run: remap_needs_invalidation,
    },
    Case { name: "amdvi_detach_blocks", default: true, applies: has_ivrs, run: detach_blocks },
];

const PAGE: usize = 4096;
pub(super) const DOMAIN: DomainId = DomainId(1);
/// IOVAs below edu's 256 MiB mask, far from the pages they map.
const IOVA_SRC: u64 = 0x0400_0000;
const IOVA_DST: u64 = 0x0500_0000;
const IOVA_RO: u64 = 0x0600_0000;

const TARGET_FILL: u8 = 0x5a;
const GUARD_FILL: u8 = 0xc3;
const CANARY_FILL: u8 = 0x3c;
const RO_FILL: u8 = 0x77;

/// Pages: 0 source, 2 target (guards 1 and 3), 4 read-only page, 5 the
/// canary (its physical address is used as an unmapped IOVA), 6 the remap
/// target.
const SRC: usize = 0;
const DST: usize = 2;
const GUARDS: [usize; 2] = [1, 3];
const RO: usize = 4;
const CANARY: usize = 5;
const NEW: usize = 6;
const NPAGES: usize = 7;

#[repr(C, align(4096))]
struct Pages(UnsafeCell<[u8; NPAGES * PAGE]>);
// SAFETY: one CPU; only these cases touch the pages, through raw pointers.
unsafe impl Sync for Pages {}
static PAGES: Pages = Pages(UnsafeCell::new([0; NPAGES * PAGE]));

fn page_pa(i: usize) -> PhysAddr {
    PhysAddr(PAGES.0.get() as u64 + (i * PAGE) as u64)
}

fn put(page: usize, off: usize, v: u8) {
    assert!(off < PAGE && page < NPAGES);
    // SAFETY: inside PAGES (checked); volatile because only the device reads it.
    unsafe { (PAGES.0.get() as *mut u8).add(page * PAGE + off).write_volatile(v) }
}

fn get(page: usize, off: usize) -> u8 {
    assert!(off < PAGE && page < NPAGES);
    // SAFETY: as in `put`; volatile because the device wrote it.
    unsafe { (PAGES.0.get() as *const u8).add(page * PAGE + off).read_volatile() }
}

fn fill(page: usize, f: impl Fn(usize) -> u8) {
    for i in 0..PAGE {
        put(page, i, f(i));
    }
}

/// Whether `page` holds `f(i)` everywhere; logs the first difference.
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

const FRAMES: usize = 16;
#[repr(C, align(4096))]
struct FrameArena(UnsafeCell<[u64; FRAMES * PAGE / 8]>);
// SAFETY: accessed only through the one `ArenaMemory`, one CPU.
unsafe impl Sync for FrameArena {}
static FRAME_ARENA: FrameArena = FrameArena(UnsafeCell::new([0; FRAMES * PAGE / 8]));

/// The IOMMU's memory: a static, zero-initialised, identity-mapped arena
/// (pointer value = physical address), handed out once, accessed by
/// bounds-checked volatile 64-bit accesses.
pub(super) struct ArenaMemory {
    next: usize,
}

impl ArenaMemory {
    fn word(&self, pa: PhysAddr) -> *mut u64 {
        let base = FRAME_ARENA.0.get() as u64;
        let off = pa.0.checked_sub(base).filter(|&o| o < (FRAMES * PAGE) as u64 && o % 8 == 0);
        let off = off.unwrap_or_else(|| panic!("IOMMU memory access at {:#x} outside the arena", pa.0));
        (FRAME_ARENA.0.get() as *mut u64).wrapping_add(off as usize / 8)
    }
}

impl DmaMemory for ArenaMemory {
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<PhysAddr> {
        let start = self.next.next_multiple_of(align.max(8));
        let end = start.checked_add(size).filter(|&e| e <= FRAMES * PAGE)?;
        self.next = end.next_multiple_of(8);
        Some(PhysAddr(FRAME_ARENA.0.get() as u64 + start as u64))
    }

    fn read_u64(&self, pa: PhysAddr) -> u64 {
        // SAFETY: `word` checked the address lies in the arena, 8-aligned.
        unsafe { self.word(pa).read_volatile() }
    }

    fn write_u64(&self, pa: PhysAddr, v: u64) {
        // SAFETY: as in `read_u64`; the arena is only accessed through here.
        unsafe { self.word(pa).write_volatile(v) }
    }
}

// ---- the IOMMU, brought up once ----

pub(super) struct State {
    pub(super) iommu: AmdVi<'static, ArenaMemory>,
    pub(super) table: AmdTable<PoolAllocator>,
    pub(super) edu: Edu,
    pub(super) devid: DeviceId,
}

struct Global(UnsafeCell<Option<State>>);
// SAFETY: one CPU, no interrupts: the cases run one after another.
unsafe impl Sync for Global {}
static STATE: Global = Global(UnsafeCell::new(None));

pub(super) fn has_ivrs(boot: &BootInfo) -> bool {
    AcpiTables::new(&Identity, PhysAddr(boot.start.rsdp_paddr))
        .is_ok_and(|t| t.ivrs().is_ok_and(|d| d.is_some()))
}

pub(super) fn state(boot: &BootInfo) -> Result<&'static mut State, &'static str> {
    // SAFETY: single-threaded; each case takes the one reference for its
    // duration and drops it before the next case.
    let slot = unsafe { &mut *STATE.0.get() };
    if slot.is_none() {
        *slot = Some(bring_up(boot)?);
    }
    slot.as_mut().ok_or("AMD-Vi state missing")
}

fn bring_up(boot: &BootInfo) -> Result<State, &'static str> {
    let tables =
        AcpiTables::new(&Identity, PhysAddr(boot.start.rsdp_paddr)).map_err(|_| "ACPI tables unreadable")?;
    let ivrs = tables.ivrs().map_err(|_| "IVRS invalid")?.ok_or("no IVRS")?;
    let ivhd = ivrs.preferred_ivhds().next().ok_or("IVRS has no IVHD")?;
    let last = ivhd.devices().map(|d| d.devid).max().unwrap_or(0);
    let f = pci::find(edu::VENDOR, edu::DEVICE).ok_or("no edu on bus 0")?;
    let devid = DeviceId::from_bdf(f.bus, f.dev, f.func).ok_or("edu BDF")?;
    if !ivhd.devices().any(|d| d.devid == devid.0) {
        return Err("the IVHD does not list edu");
    }
    defmt::info!(
        "amdvi: IVHD type {=u8:#x} at {=u64:#x}, IOMMU DeviceID {=u16:#06x}, capability at {=u16:#x}, devices up to {=u16:#06x}; edu is {=u16:#06x}",
        ivhd.block_type,
        ivhd.base_address.0,
        ivhd.iommu_devid,
        ivhd.capability_offset,
        last,
        devid.0
    );
    let base = ivhd.base_address.0;
    if !(crate::boot::UNCACHED_FROM..crate::phys::MAPPED_END).contains(&base) || base % 4096 != 0 {
        return Err("IOMMU registers outside the uncached identity map");
    }
    // SAFETY: the IVHD's register block (16 KiB at an aligned base), mapped
    // uncached by the boot tables (checked above), used only through this
    // driver for the rest of the run.
    let regs: &'static AmdViRegisterBlock = unsafe { &*(base as usize as *const AmdViRegisterBlock) };
    let iommu = AmdVi::new(regs, ArenaMemory { next: 0 }, Config::new(last)).map_err(|e| {
        defmt::error!("amdvi bring-up: {}", defmt::Display2Format(&e));
        "AMD-Vi bring-up failed"
    })?;
    let status = iommu.regs().status();
    defmt::info!(
        "amdvi: enabled: EFR {=u64:#018x} (HATS {=u8} levels), Status {=u64:#x} (CmdBufRun {=bool}, EventLogRun {=bool})",
        iommu.regs().efr(),
        iommu.efr().hats.levels(),
        status.raw,
        status.cmd_buf_run,
        status.event_log_run
    );
    let table = AmdTable::new(3, PoolAllocator::new(32, PAGE)).map_err(|_| "page table")?;
    let edu = edu_device(&f)?;
    Ok(State { iommu, table, edu, devid })
}

fn edu_device(f: &pci::Function) -> Result<Edu, &'static str> {
    let bar = f.bar0_mem32().map_err(|_| "edu BAR0 unusable")?;
    f.set_command(f.command() | pci::CMD_MEM | pci::CMD_BUS_MASTER);
    // SAFETY: BAR0 was just decoded (Command.MEM) and lies in the uncached
    // identity map (checked by the platform cases); only this Edu uses it.
    Ok(unsafe { Edu::new(bar.base) })
}

pub(super) fn dma(edu: &Edu, dir: Direction, iova: u64) -> Result<(), &'static str> {
    edu.dma(dir, DmaAddr(iova), PAGE).map_err(|e| {
        defmt::error!("edu dma {} {=u64:#x}: {}", dir, iova, e);
        "edu DMA did not complete"
    })
}

fn map(s: &mut State, iova: u64, page: usize, prot: Prot) -> Result<(), &'static str> {
    s.table.map(Iova(iova), page_pa(page), PAGE as u64, prot).map_err(|e| {
        defmt::error!("map {=u64:#x}: {}", iova, defmt::Display2Format(&e));
        "mapping refused"
    })
}

fn attached(s: &mut State) -> Result<(), &'static str> {
    s.iommu.attach(s.devid, DOMAIN, &s.table).map_err(|_| "attaching edu failed")
}

fn no_events(s: &mut State) -> Result<(), &'static str> {
    let n = s.iommu.drain_events(|e| defmt::warn!("amdvi event: {}", defmt::Display2Format(&e)));
    if s.iommu.event_log_state() == LogState::Overflowed {
        return Err("event log overflowed");
    }
    defmt::info!("amdvi: {=usize} event log records (QEMU writes none)", n);
    Ok(())
}

// ---- the cases ----

fn completion_wait_stores(boot: &BootInfo) -> Result<(), &'static str> {
    let s = state(boot)?;
    let (at, before) = s.iommu.completion_store();
    s.iommu.completion_wait().map_err(|_| "COMPLETION_WAIT did not store")?;
    let (_, seq) = s.iommu.completion_store();
    let got = s.iommu.memory().read_u64(at);
    defmt::info!("amdvi: COMPLETION_WAIT stored {=u64} at {=u64:#x} (previous {=u64})", got, at.0, before);
    if got != seq || seq != before + 1 {
        return Err("the completion store does not hold the new sequence number");
    }
    no_events(s)
}

fn edu_dma_translated(boot: &BootInfo) -> Result<(), &'static str> {
    let s = state(boot)?;
    map(s, IOVA_SRC, SRC, Prot::RW)?;
    map(s, IOVA_DST, DST, Prot::RW)?;
    attached(s)?;
    fill(SRC, pattern(0xa5));
    fill(DST, |_| TARGET_FILL);
    for g in GUARDS {
        fill(g, |_| GUARD_FILL);
    }
    defmt::info!(
        "amdvi: edu {=u64:#x} (-> {=u64:#x}) -> buffer -> {=u64:#x} (-> {=u64:#x})",
        IOVA_SRC,
        page_pa(SRC).0,
        IOVA_DST,
        page_pa(DST).0
    );
    dma(&s.edu, Direction::ToDevice, IOVA_SRC)?;
    dma(&s.edu, Direction::FromDevice, IOVA_DST)?;
    if !holds("target", DST, pattern(0xa5)) {
        return Err("target bytes differ from the source");
    }
    if !holds("source", SRC, pattern(0xa5)) {
        return Err("the source changed");
    }
    for g in GUARDS {
        if !holds("guard", g, |_| GUARD_FILL) {
            return Err("a neighbouring page changed");
        }
    }
    Ok(())
}

fn unmapped_dma_blocked(boot: &BootInfo) -> Result<(), &'static str> {
    let s = state(boot)?;
    // The canary's physical address as an IOVA: unmapped in the domain, so
    // only a DMA that bypassed translation would reach it.
    let iova = page_pa(CANARY).0;
    if s.table.lookup(Iova(iova)).is_some() {
        return Err("the canary IOVA is mapped");
    }
    fill(SRC, pattern(0x11));
    fill(CANARY, |_| CANARY_FILL);
    dma(&s.edu, Direction::ToDevice, IOVA_SRC)?;
    dma(&s.edu, Direction::FromDevice, iova)?;
    if !holds("canary after blocked write", CANARY, |_| CANARY_FILL) {
        return Err("a write to an unmapped IOVA reached memory");
    }
    // A read from the unmapped IOVA must not bring the canary's bytes in.
    dma(&s.edu, Direction::ToDevice, iova)?;
    fill(DST, |_| TARGET_FILL);
    dma(&s.edu, Direction::FromDevice, IOVA_DST)?;
    let first = get(DST, 0);
    if (0..PAGE).all(|i| get(DST, i) == CANARY_FILL) {
        return Err("a read from an unmapped IOVA returned memory");
    }
    let kept = (0..PAGE).all(|i| get(DST, i) == pattern(0x11)(i));
    let zeros = (0..PAGE).all(|i| get(DST, i) == 0);
    defmt::info!(
        "amdvi: blocked read left edu's buffer {=str} (first byte {=u8:#x})",
        if kept {
            "unchanged"
        } else if zeros {
            "zeroed"
        } else {
            "changed"
        },
        first
    );
    no_events(s)
}

fn readonly_blocks_write(boot: &BootInfo) -> Result<(), &'static str> {
    let s = state(boot)?;
    map(s, IOVA_RO, RO, Prot::RO)?;
    fill(RO, |_| RO_FILL);
    fill(SRC, pattern(0x22));
    dma(&s.edu, Direction::ToDevice, IOVA_SRC)?;
    dma(&s.edu, Direction::FromDevice, IOVA_RO)?;
    if !holds("read-only page", RO, |_| RO_FILL) {
        return Err("a write through an IW=0 mapping reached memory");
    }
    // Reading through it works.
    dma(&s.edu, Direction::ToDevice, IOVA_RO)?;
    fill(DST, |_| TARGET_FILL);
    dma(&s.edu, Direction::FromDevice, IOVA_DST)?;
    if !holds("read through IR=1", DST, |_| RO_FILL) {
        return Err("a read through an IR=1, IW=0 mapping did not return the page");
    }
    Ok(())
}

fn remap_needs_invalidation(boot: &BootInfo) -> Result<(), &'static str> {
    let s = state(boot)?;
    // IOVA_DST -> DST was used by earlier cases: QEMU may hold it cached.
    let mut g = IotlbGather::new();
    s.table.unmap(Iova(IOVA_DST), PAGE as u64, &mut g).map_err(|_| "unmap refused")?;
    map(s, IOVA_DST, NEW, Prot::RW)?;
    fill(DST, |_| TARGET_FILL);
    fill(NEW, |_| TARGET_FILL);
    fill(SRC, pattern(0x33));
    dma(&s.edu, Direction::ToDevice, IOVA_SRC)?;
    dma(&s.edu, Direction::FromDevice, IOVA_DST)?;
    let stale = (0..PAGE).all(|i| get(DST, i) == pattern(0x33)(i));
    let fresh = (0..PAGE).all(|i| get(NEW, i) == pattern(0x33)(i));
    defmt::info!(
        "amdvi: before INVALIDATE_IOMMU_PAGES the DMA went to the {=str} page",
        match (stale, fresh) {
            (true, false) => "old (stale IOTLB entry)",
            (false, true) => "new (nothing cached)",
            (false, false) => "neither",
            (true, true) => "both",
        }
    );
    let n = g.ranges().len();
    s.iommu.invalidate(DOMAIN, &g).map_err(|_| "INVALIDATE_IOMMU_PAGES + COMPLETION_WAIT failed")?;
    s.table.complete(&mut g).map_err(|_| "complete refused")?;
    defmt::info!("amdvi: invalidated {=usize} range(s) of domain {=u16}", n, DOMAIN.0);
    fill(DST, |_| TARGET_FILL);
    fill(NEW, |_| TARGET_FILL);
    fill(SRC, pattern(0x44));
    dma(&s.edu, Direction::ToDevice, IOVA_SRC)?;
    dma(&s.edu, Direction::FromDevice, IOVA_DST)?;
    if !holds("new page", NEW, pattern(0x44)) {
        return Err("after invalidation the DMA did not reach the new page");
    }
    if !holds("old page", DST, |_| TARGET_FILL) {
        return Err("after invalidation the old page was still written");
    }
    Ok(())
}

fn detach_blocks(boot: &BootInfo) -> Result<(), &'static str> {
    let s = state(boot)?;
    fill(SRC, pattern(0x55));
    dma(&s.edu, Direction::ToDevice, IOVA_SRC)?;
    s.iommu.detach(s.devid).map_err(|_| "detach failed")?;
    let dte = s.iommu.dte(s.devid).map_err(|_| "DTE")?.map_err(|_| "DTE undecodable")?;
    if !dte.blocks_dma() {
        return Err("the DTE does not block DMA after detach");
    }
    fill(NEW, |_| TARGET_FILL);
    dma(&s.edu, Direction::FromDevice, IOVA_DST)?;
    if !holds("detached target", NEW, |_| TARGET_FILL) {
        return Err("a detached device's DMA reached memory");
    }
    no_events(s)
}
