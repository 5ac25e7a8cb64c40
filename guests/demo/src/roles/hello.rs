//! `role=hello`: what the partition looks like from inside, and its other
//! CPUs started with PSCI CPU_ON.

use crate::{boot, println, psci, timer::Deadline};
use aarch64_cpu::registers::{Readable, MPIDR_EL1};
use boards::platform::{Conduit, EnableMethod, ReservedSource};
use boards::Platform;
use core::sync::atomic::{AtomicU64, Ordering};

/// How long a started CPU may take to check in.
const CPU_ON_TIMEOUT_MS: u64 = 1000;
/// The MPIDR affinity fields (Aff3 and Aff2..Aff0).
const MPIDR_AFFINITY: u64 = 0xff_00ff_ffff;
/// Set in an [`ALIVE`] slot together with the CPU's MPIDR.
const CHECKED_IN: u64 = 1 << 63;

/// One slot per secondary (PSCI context id 1..): the MPIDR the CPU read
/// itself, with [`CHECKED_IN`]. Plain stores and loads only (MMU off: no
/// exclusive accesses).
static ALIVE: [AtomicU64; boot::MAX_SECONDARIES + 1] =
    [const { AtomicU64::new(0) }; boot::MAX_SECONDARIES + 1];

/// Runs the role.
pub fn run(p: &Platform<'_>, bootargs: &str) {
    println!("hello: Bulkhead demo guest, role=hello");
    if let Some(model) = p.model {
        println!("hello: model \"{model}\"");
    }
    let total = p.memory_bytes();
    println!("hello: memory {} MiB ({total:#x} bytes) in {} region(s)", total >> 20, p.memory.len());
    for r in &p.memory {
        println!("hello:   RAM {:#x}..{:#x}", r.base, r.base.saturating_add(r.size));
    }
    for r in &p.reserved {
        let src = match r.source {
            ReservedSource::MemReserve => "memreserve",
            ReservedSource::Node => "reserved-memory",
        };
        let no_map = if r.no_map { ", no-map" } else { "" };
        println!("hello:   reserved {:#x}..{:#x} ({src}{no_map})", r.base, r.base.saturating_add(r.size));
    }
    println!("hello: {} CPU(s)", p.cpus.len());
    println!("hello: bootargs \"{bootargs}\"");
    match p.psci {
        Some(psci) => {
            let conduit = match psci.conduit {
                Conduit::Hvc => "hvc",
                Conduit::Smc => "smc",
            };
            match psci::version() {
                Ok((major, minor)) => println!("hello: PSCI {major}.{minor} over {conduit}"),
                Err(e) => println!("hello: FAIL: PSCI_VERSION over {conduit} returned {e}"),
            }
        }
        None => println!("hello: FAIL: no PSCI"),
    }
    for host in &p.pcie {
        println!(
            "hello: PCIe host: ECAM {:#x} (+{:#x}), buses {}..={}",
            host.ecam.base, host.ecam.size, host.bus_start, host.bus_end
        );
    }
    let gicv3 = gic_distributor(p);
    SGI_TEST.store(u64::from(gicv3), Ordering::Release);
    start_secondaries(p);
    if crate::bootargs::has(bootargs, "reset-once") {
        reset_once(p);
    }
    println!("hello: goodbye");
}

/// A word in RAM that survives the partition's warm reset (the hypervisor
/// reloads the image and the device tree, nothing else): RAM base + 2 MiB,
/// above the image (the link script keeps it below RAM + 1 MiB).
const RESET_MARK_OFFSET: u64 = 2 << 20;
const RESET_MARK: u64 = 0x5245_5345_5430_4e43; // "RESET0NC"

/// `reset-once`: the first boot waits for its other CPUs to be off, marks
/// RAM and asks for SYSTEM_RESET; the second finds the mark and goes on.
fn reset_once(p: &Platform<'_>) {
    let Some(ram) = p.memory.first() else { return };
    let mark = (ram.base + RESET_MARK_OFFSET) as usize as *mut u64;
    // SAFETY: a word of this partition's RAM that nothing else uses (above
    // the image and its stacks, below the pattern regions of other roles).
    let seen = unsafe { mark.read_volatile() } == RESET_MARK;
    if seen {
        // SAFETY: as above.
        unsafe { mark.write_volatile(0) };
        println!("hello: second boot, after SYSTEM_RESET");
        return;
    }
    let me = MPIDR_EL1.get() & MPIDR_AFFINITY;
    for cpu in p.cpus.iter().filter(|c| c.mpidr & MPIDR_AFFINITY != me) {
        let deadline = Deadline::after_ms(CPU_ON_TIMEOUT_MS);
        while psci::affinity_info(cpu.mpidr) != 1 {
            if deadline.expired() {
                println!("hello: FAIL: cpu {:#x} still on before the reset", cpu.mpidr);
                return;
            }
        }
    }
    // SAFETY: as above.
    unsafe { mark.write_volatile(RESET_MARK) };
    println!("hello: other CPUs off (AFFINITY_INFO); SYSTEM_RESET");
    psci::system_reset()
}

/// CPU_ON for every CPU but this one, each checking in through [`ALIVE`].
fn start_secondaries(p: &Platform<'_>) {
    let me = MPIDR_EL1.get() & MPIDR_AFFINITY;
    let mut index = 0;
    for cpu in p.cpus.iter().filter(|c| c.mpidr & MPIDR_AFFINITY != me) {
        if cpu.enable != EnableMethod::Psci {
            println!("hello: cpu {:#x}: enable-method is not psci, not started", cpu.mpidr);
            continue;
        }
        index += 1;
        if index > boot::MAX_SECONDARIES {
            println!(
                "hello: cpu {:#x}: no stack for more than {} secondaries",
                cpu.mpidr,
                boot::MAX_SECONDARIES
            );
            continue;
        }
        if let Err(e) = psci::cpu_on(cpu.mpidr, boot::secondary_entry_addr(), index as u64) {
            println!("hello: FAIL: CPU_ON {:#x} returned {e}", cpu.mpidr);
            continue;
        }
        let deadline = Deadline::after_ms(CPU_ON_TIMEOUT_MS);
        let seen = loop {
            let v = ALIVE[index].load(Ordering::Acquire);
            if v & CHECKED_IN != 0 {
                break Some(v & !CHECKED_IN);
            }
            if deadline.expired() {
                break None;
            }
        };
        match seen {
            Some(mpidr) => {
                println!("hello: cpu {:#x} is up (MPIDR_EL1 affinity {mpidr:#x})", cpu.mpidr);
                if SGI_TEST.load(Ordering::Acquire) != 0 {
                    sgi_to(index, cpu.mpidr);
                }
            }
            None => {
                println!("hello: FAIL: cpu {:#x} did not check in within {CPU_ON_TIMEOUT_MS} ms", cpu.mpidr)
            }
        }
    }
}

/// The SGI the boot CPU sends each secondary (GICv3 guests).
const TEST_SGI: u32 = 3;
/// Nonzero: secondaries wait for [`TEST_SGI`] before turning off.
static SGI_TEST: AtomicU64 = AtomicU64::new(0);
/// Per secondary: 1 once it acknowledged [`TEST_SGI`].
static GOT_SGI: [AtomicU64; boot::MAX_SECONDARIES + 1] =
    [const { AtomicU64::new(0) }; boot::MAX_SECONDARIES + 1];

/// On a GICv3 guest: reads the distributor's GICD_TYPER and enables group 1
/// in GICD_CTLR, as an OS does, and reports what it sees. True if GICv3.
fn gic_distributor(p: &Platform<'_>) -> bool {
    let boards::platform::Gic::V3(g) = &p.gic else { return false };
    let base = g.dist.base as usize;
    // SAFETY: the GICD frame the device tree names (identity, MMU off);
    // GICD_CTLR at +0, GICD_TYPER at +4, 32-bit registers.
    let (typer, ctlr) = unsafe {
        let ctlr = base as *mut u32;
        ctlr.write_volatile(ctlr.read_volatile() | 0b10);
        (((base + 4) as *const u32).read_volatile(), ctlr.read_volatile())
    };
    let lines = ((typer & 0x1f) + 1) * 32;
    println!("hello: GICv3 distributor: {lines} interrupt lines, GICD_CTLR {ctlr:#x}");
    true
}

/// Sends [`TEST_SGI`] to the secondary `index` (MPIDR `mpidr`, Aff0 < 16)
/// and waits for it to acknowledge.
fn sgi_to(index: usize, mpidr: u64) {
    let target = 1u64 << (mpidr & 0xf);
    let value = u64::from(TEST_SGI) << 24 | ((mpidr >> 8) & 0xff) << 16 | target;
    // SAFETY: generates an SGI to one CPU of this partition.
    unsafe { core::arch::asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) value, options(nostack)) };
    let deadline = Deadline::after_ms(CPU_ON_TIMEOUT_MS);
    while GOT_SGI[index].load(Ordering::Acquire) == 0 {
        if deadline.expired() {
            println!("hello: FAIL: SGI {TEST_SGI} to cpu {mpidr:#x} not acknowledged");
            return;
        }
    }
    println!("hello: SGI {TEST_SGI} to cpu {mpidr:#x} delivered");
}

/// A secondary CPU: checks in, waits for the boot CPU's SGI where there is
/// a GICv3, then turns itself off.
pub fn secondary(index: usize) -> ! {
    let sgi = SGI_TEST.load(Ordering::Acquire) != 0;
    if sgi {
        crate::gic::enable();
    }
    if let Some(slot) = ALIVE.get(index) {
        slot.store(CHECKED_IN | (MPIDR_EL1.get() & MPIDR_AFFINITY), Ordering::Release);
    }
    if sgi {
        let deadline = Deadline::after_ms(2 * CPU_ON_TIMEOUT_MS);
        loop {
            let i = crate::gic::acknowledge();
            if i == TEST_SGI {
                crate::gic::end_of_interrupt(i);
                if let Some(g) = GOT_SGI.get(index) {
                    g.store(1, Ordering::Release);
                }
                break;
            }
            if i != crate::gic::SPURIOUS {
                crate::gic::end_of_interrupt(i);
            }
            if deadline.expired() {
                break;
            }
        }
    }
    psci::cpu_off()
}
