//! The Bulkhead demo guest: a small bare-metal program that runs at EL1 with
//! its MMU off inside a partition and shows, in plain text lines on its
//! console, what the partition can and cannot do.
//!
//! Boot protocol: Linux arm64 (Documentation/arch/arm64/booting.rst). The
//! flat Image (`cargo xtask`'s `build::guest_image("demo")`) is linked at
//! 0x4008_0000, so **the partition's guest RAM must start at IPA
//! 0x4000_0000** with the Image loaded at RAM + `text_offset` (0x80000), as
//! on QEMU `virt`. It is entered with x0 = DTB address, the MMU off and
//! interrupts masked. Everything else (console, RAM, PCI host, PSCI method,
//! the fault record page) comes from the device tree, through
//! [`boards::discover`].
//!
//! `/chosen/bootargs` selects a role:
//! - `role=hello`: describes the partition and starts its other CPUs.
//! - `role=victim [watch=SECONDS]`: writes a pattern at RAM base + 1 MiB and
//!   watches it for changes (default 5 s).
//! - `role=dma-owner peer=0xADDR [expect=blocked|open]`: drives QEMU's `edu`
//!   PCI device to DMA inside its own RAM, then at `peer` (the victim's
//!   pattern, by physical address), and reports the hypervisor's fault record.
//! - `role=stray addr=0xADDR`: a CPU load outside the partition, which must
//!   come back as an abort.
//!
//! Every role ends with PSCI SYSTEM_OFF; anything unexpected prints a line
//! containing `FAIL`.
#![no_std]
#![no_main]

mod boot;
mod bootargs;
mod console;
mod edu;
mod gic;
mod mem;
mod pattern;
mod pci;
mod psci;
mod roles;
mod timer;

use aarch64_cpu::registers::{CurrentEL, Readable, SCTLR_EL1};
use boards::Platform;

/// Where the device tree is, so a role can keep clear of it.
#[derive(Clone, Copy)]
pub struct DtbRange {
    /// First byte.
    pub base: u64,
    /// `totalsize` from its header.
    pub size: u64,
}

/// The device tree blob at `dtb`, parsed.
fn device_tree(dtb: usize) -> Option<(Platform<'static>, DtbRange)> {
    if dtb == 0 || dtb % 8 != 0 {
        return None;
    }
    // SAFETY: booting.rst: x0 holds the address of a DTB in RAM, 8-byte
    // aligned, that nothing writes while we run (the victim role keeps its
    // pattern off it). The header is read first; its totalsize (checked
    // against a sane maximum) bounds the whole blob.
    let header = unsafe { core::slice::from_raw_parts(dtb as *const u8, boards::dt::HEADER_SIZE) };
    let total = boards::header_total_size(header).ok()?;
    // SAFETY: as above, `total` bytes from the header.
    let blob = unsafe { core::slice::from_raw_parts(dtb as *const u8, total) };
    let platform = boards::discover(blob).ok()?;
    Some((platform, DtbRange { base: dtb as u64, size: total as u64 }))
}

/// The primary CPU's Rust entry, from `boot.rs` (x0 = DTB address).
#[no_mangle]
extern "C" fn rust_main(dtb: usize) -> ! {
    // Without a device tree there is no console to complain on.
    let Some((p, dtb_range)) = device_tree(dtb) else { psci::system_off() };
    if let Some(psci) = p.psci {
        psci::init(psci.conduit);
    }
    let Some(uart) = p.uart else { psci::system_off() };
    console::init(uart.base);

    println!("demo: device tree at {:#x} ({} bytes), console PL011 at {:#x}", dtb, dtb_range.size, uart.base);
    let el = CurrentEL.read(CurrentEL::EL);
    if el != 1 {
        println!("demo: FAIL: running at EL{el}, expected EL1");
    }
    if SCTLR_EL1.is_set(SCTLR_EL1::M) {
        println!("demo: FAIL: entered with the MMU on (booting.rst requires it off)");
    }
    if p.psci.is_none() {
        println!("demo: FAIL: no PSCI node in the device tree; trying HVC anyway");
    }
    let (image_start, image_end) = boot::image_range();
    if !p.memory.iter().any(|r| r.contains(image_start) && r.contains(image_end - 1)) {
        println!(
            "demo: FAIL: the image {image_start:#x}..{image_end:#x} is not inside the RAM the device tree describes"
        );
    }

    let args = p.bootargs.unwrap_or("");
    match bootargs::get(args, "role") {
        Some("hello") => roles::hello::run(&p, args),
        Some("victim") => roles::victim::run(&p, args, dtb_range),
        Some("dma-owner") => roles::dma_owner::run(&p, args),
        Some("stray") => roles::stray::run(args),
        Some(other) => {
            println!("demo: FAIL: unknown role `{other}` (known: hello, victim, dma-owner, stray)")
        }
        None => {
            println!("demo: FAIL: no role= in bootargs \"{args}\" (known: hello, victim, dma-owner, stray)")
        }
    }
    println!("demo: powering off");
    psci::system_off()
}

/// A secondary CPU's Rust entry, from `boot.rs` (x0 = PSCI context id).
#[no_mangle]
extern "C" fn rust_secondary(index: usize) -> ! {
    roles::hello::secondary(index)
}

/// Any exception: everything here runs with interrupts masked and nothing
/// is expected to fault, so report it and stop.
#[no_mangle]
extern "C" fn rust_exception(vector: u64, esr: u64, elr: u64, far: u64) -> ! {
    if roles::stray::is_expected(esr, far) {
        psci::system_off()
    }
    println!("demo: FAIL: exception (vector {vector}) ESR_EL1 {esr:#x} ELR_EL1 {elr:#x} FAR_EL1 {far:#x}");
    psci::system_off()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    println!("demo: FAIL: panic: {info}");
    psci::system_off()
}
