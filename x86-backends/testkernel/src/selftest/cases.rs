//! The platform cases: they need no IOMMU driver, only the machine as QEMU
//! builds it. Each checks behaviour on the running machine and says what it
//! found when it fails (the detail goes to the log on the line before).

use super::Case;
use crate::acpi_scan::{self, RootTable};
use crate::boot::{boot_tables, pte, UNCACHED_FROM};
use crate::bootinfo::BootInfo;
use crate::edu::{self, Direction, DmaAddr, Edu};
use crate::pci;
use core::cell::UnsafeCell;

/// Every case, in run order.
pub static ALL: &[Case] = &[
    Case { name: "boot_long_mode", default: true, applies: always, run: boot_long_mode },
    Case { name: "serial_and_defmt", default: true, applies: always, run: serial_and_defmt },
    Case { name: "pci_finds_edu", default: true, applies: always, run: pci_finds_edu },
    Case { name: "edu_dma_identity", default: true, applies: always, run: edu_dma_identity },
    Case { name: "acpi_rsdp_found", default: true, applies: always, run: acpi_rsdp_found },
    // Ends the run: only when named on the command line.
    Case { name: "panic_is_reported", default: false, applies: always, run: panic_is_reported },
];

fn always(_: &BootInfo) -> bool {
    true
}

const CR0_PE: u64 = 1 << 0;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const IA32_EFER: u32 = 0xc000_0080;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

fn cr0() -> u64 {
    let v;
    // SAFETY: reading CR0 at CPL 0 has no effect.
    unsafe { core::arch::asm!("mov {}, cr0", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn cr3() -> u64 {
    let v;
    // SAFETY: reading CR3 at CPL 0 has no effect.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn cr4() -> u64 {
    let v;
    // SAFETY: reading CR4 at CPL 0 has no effect.
    unsafe { core::arch::asm!("mov {}, cr4", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: only architectural MSRs are read (IA32_EFER), which exist on
    // every x86_64 CPU; the read has no side effect.
    unsafe {
        core::arch::asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// The 2 MiB leaf that maps `pa` in the boot page directory.
fn pd_entry(pa: u64) -> u64 {
    // SAFETY: the boot tables are written once by the stub before paging is
    // on and never again: a shared read is sound.
    let tables = unsafe { &boot_tables };
    tables.pd[(pa >> 30) as usize & 3][(pa >> 21) as usize & 511]
}

fn boot_long_mode(_: &BootInfo) -> Result<(), &'static str> {
    let (cr0, cr3, cr4, efer) = (cr0(), cr3(), cr4(), rdmsr(IA32_EFER));
    defmt::info!("cr0 {=u64:#x} cr3 {=u64:#x} cr4 {=u64:#x} efer {=u64:#x}", cr0, cr3, cr4, efer);
    if cr0 & (CR0_PE | CR0_PG) != CR0_PE | CR0_PG {
        return Err("CR0.PE or CR0.PG clear");
    }
    if cr4 & CR4_PAE == 0 {
        return Err("CR4.PAE clear");
    }
    if efer & (EFER_LME | EFER_LMA) != EFER_LME | EFER_LMA {
        return Err("EFER.LME or EFER.LMA clear");
    }
    let tables = core::ptr::addr_of!(boot_tables) as u64;
    if cr3 & !0xfff != tables {
        return Err("CR3 is not the boot PML4");
    }
    let leaf = pte::P | pte::RW | pte::PS;
    let uncached = pte::PCD | pte::PWT;
    // RAM (the image itself) is write-back; the MMIO the IOMMU drivers and
    // the interrupt controllers use is uncached; everything is identity.
    let checks: [(u64, bool); 6] = [
        (0x0010_0000, false),  // the image
        (UNCACHED_FROM, true), // the q35 ECAM
        (0xfec0_0000, true),   // IOAPIC
        (0xfed8_0000, true),   // AMD-Vi MMIO
        (0xfed9_0000, true),   // VT-d DRHD
        (0xfee0_0000, true),   // LAPIC
    ];
    for (pa, want_uc) in checks {
        let e = pd_entry(pa);
        let ok = e & leaf == leaf
            && e & 0x000f_ffff_ffe0_0000 == pa & !0x1f_ffff
            && (e & uncached == uncached) == want_uc;
        if !ok {
            defmt::error!("pd entry for {=u64:#x} is {=u64:#x}", pa, e);
            return Err("identity map entry wrong (address, flags or cache attribute)");
        }
    }
    Ok(())
}

fn serial_and_defmt(_: &BootInfo) -> Result<(), &'static str> {
    // Reading this line on the host is the test: the frames before it were
    // encoded, sent on COM1 and decoded against this ELF.
    let lsr = crate::serial::line_status();
    if lsr == 0xff {
        return Err("no UART at COM1 (LSR reads 0xff)");
    }
    Ok(())
}

/// edu, found on bus 0, its BAR0 decoded and bus mastering on.
fn edu_device() -> Result<Edu, &'static str> {
    let f = pci::find(edu::VENDOR, edu::DEVICE)
        .ok_or("no edu (1234:11e8) on bus 0: run QEMU with -device edu")?;
    let bar = pci::Function::bar0_mem32(&f).map_err(|e| {
        defmt::error!("edu {}: BAR0: {}", f, e);
        "edu BAR0 unusable"
    })?;
    if bar.assigned_here {
        defmt::warn!("edu BAR0 was unassigned; placed at {=u64:#x}", bar.base);
    }
    defmt::debug!(
        "edu at 00:{=u8:02x}.{=u8}: BAR0 {=u64:#x}, {=u64} KiB",
        f.dev,
        f.func,
        bar.base,
        bar.size >> 10
    );
    if bar.base < UNCACHED_FROM || bar.base.checked_add(bar.size).is_none_or(|e| e > crate::phys::MAPPED_END)
    {
        defmt::error!("edu BAR0 at {=u64:#x} size {=u64:#x}", bar.base, bar.size);
        return Err("edu BAR0 outside the uncached identity map");
    }
    f.set_command(f.command() | pci::CMD_MEM | pci::CMD_BUS_MASTER);
    // SAFETY: BAR0 was just sized and decoded (Command.MEM), lies in the
    // uncached part of the identity map (checked), and only this Edu uses it.
    Ok(unsafe { Edu::new(bar.base) })
}

fn pci_finds_edu(_: &BootInfo) -> Result<(), &'static str> {
    for (f, vendor, device) in pci::bus0() {
        defmt::info!("pci 00:{=u8:02x}.{=u8} {=u16:04x}:{=u16:04x}", f.dev, f.func, vendor, device);
    }
    let edu = edu_device()?;
    let id = edu.id();
    if id != edu::ID_VALUE {
        defmt::error!("edu id {=u32:#x}", id);
        return Err("edu identification register is not 0x010000ed");
    }
    let probe = 0x1234_5678;
    if edu.liveness(probe) != !probe {
        return Err("edu liveness register did not return the complement");
    }
    Ok(())
}

const PAGE: usize = 4096;

/// Four pages the DMA test owns: the source, then the target with a guard
/// page on each side. In `.bss`, so below 256 MiB (edu's 28-bit mask).
#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; 4 * PAGE]>);
// SAFETY: one CPU; only `edu_dma_identity` touches it, through raw pointers.
unsafe impl Sync for Arena {}
static ARENA: Arena = Arena(UnsafeCell::new([0; 4 * PAGE]));

const SOURCE: usize = 0;
const GUARD_LOW: usize = PAGE;
const TARGET: usize = 2 * PAGE;
const GUARD_HIGH: usize = 3 * PAGE;
const TARGET_FILL: u8 = 0x5a;
const GUARD_FILL: u8 = 0xc3;

fn pattern(i: usize) -> u8 {
    (i as u8).wrapping_mul(7) ^ (i >> 8) as u8 ^ 0xa5
}

fn arena_write(off: usize, v: u8) {
    // SAFETY: off < 4 pages (callers iterate inside the arena); volatile so
    // the write is not elided although only the device reads it.
    unsafe { (ARENA.0.get() as *mut u8).add(off).write_volatile(v) }
}

fn arena_read(off: usize) -> u8 {
    // SAFETY: as in `arena_write`; volatile because the device wrote it.
    unsafe { (ARENA.0.get() as *const u8).add(off).read_volatile() }
}

fn edu_dma_identity(_: &BootInfo) -> Result<(), &'static str> {
    let edu = edu_device()?;
    let base = ARENA.0.get() as u64;
    for i in 0..PAGE {
        arena_write(SOURCE + i, pattern(i));
        arena_write(GUARD_LOW + i, GUARD_FILL);
        arena_write(TARGET + i, TARGET_FILL);
        arena_write(GUARD_HIGH + i, GUARD_FILL);
    }
    // No IOMMU translates (none, or one not enabled): the DMA address is
    // the physical address.
    let src = DmaAddr(base + SOURCE as u64);
    let dst = DmaAddr(base + TARGET as u64);
    defmt::info!("edu dma: {=u64:#x} -> edu buffer -> {=u64:#x}, 4 KiB each way", src.0, dst.0);
    edu.dma(Direction::ToDevice, src, PAGE).map_err(|e| {
        defmt::error!("edu dma to device: {}", e);
        "DMA memory -> edu did not complete"
    })?;
    edu.dma(Direction::FromDevice, dst, PAGE).map_err(|e| {
        defmt::error!("edu dma from device: {}", e);
        "DMA edu -> memory did not complete"
    })?;
    for i in 0..PAGE {
        let got = arena_read(TARGET + i);
        if got != pattern(i) {
            defmt::error!("target byte {=usize:#x}: {=u8:#x}, want {=u8:#x}", i, got, pattern(i));
            return Err("target bytes differ from the source");
        }
        if arena_read(SOURCE + i) != pattern(i) {
            return Err("the source changed");
        }
        if arena_read(GUARD_LOW + i) != GUARD_FILL || arena_read(GUARD_HIGH + i) != GUARD_FILL {
            defmt::error!("guard byte {=usize:#x} changed", i);
            return Err("a neighbouring page changed");
        }
    }
    Ok(())
}

fn panic_is_reported(_: &BootInfo) -> Result<(), &'static str> {
    panic!("panic_is_reported: deliberate")
}

fn acpi_rsdp_found(boot: &BootInfo) -> Result<(), &'static str> {
    let at = boot.start.rsdp_paddr;
    if at == 0 {
        return Err("hvm_start_info.rsdp_paddr is 0");
    }
    let rsdp = acpi_scan::rsdp(at).map_err(|e| {
        defmt::error!("RSDP at {=u64:#x}: {}", at, e);
        "RSDP invalid"
    })?;
    let root = RootTable::from_rsdp(&rsdp).map_err(|e| {
        defmt::error!("root table: {}", e);
        "root table (XSDT/RSDT) invalid"
    })?;
    defmt::info!(
        "ACPI RSDP rev {=u8} at {=u64:#x}; {=str} at {=u64:#x}",
        rsdp.revision,
        rsdp.pa,
        acpi_scan::sig_str(&root.signature),
        root.pa
    );
    for pa in root.tables() {
        match acpi_scan::signature(pa) {
            Ok(sig) => defmt::info!("ACPI table {=str} at {=u64:#x}", acpi_scan::sig_str(&sig), pa),
            Err(e) => defmt::warn!("ACPI entry {=u64:#x}: {}", pa, e),
        }
    }
    // What the machine must (not) have comes from the command line, so one
    // image serves q35, q35-vtd and q35-amdvi.
    let mut result = Ok(());
    for sig in boot.arg("bulkhead.acpi-has").into_iter().flat_map(|l| l.split(',')) {
        if table_listed(&root, sig) != Some(true) {
            defmt::error!("no {=str} table listed", sig);
            result = Err("a table named by bulkhead.acpi-has is not listed");
        }
    }
    for sig in boot.arg("bulkhead.acpi-lacks").into_iter().flat_map(|l| l.split(',')) {
        if table_listed(&root, sig) != Some(false) {
            defmt::error!("{=str} table listed", sig);
            result = Err("a table named by bulkhead.acpi-lacks is listed");
        }
    }
    result
}

/// Whether the root table lists `sig`; `None` if `sig` is not 4 bytes.
fn table_listed(root: &RootTable, sig: &str) -> Option<bool> {
    let sig: [u8; 4] = sig.as_bytes().try_into().ok()?;
    Some(root.find(&sig).is_some())
}
