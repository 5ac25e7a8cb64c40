//! The Bulkhead x86_64 test kernel: the platform the VT-d and AMD-Vi
//! backends (`x86-backends`) are proven on in QEMU q35.
//!
//! QEMU boots it directly (`-kernel x86-testkernel`, PVH: [`boot`]), it logs
//! defmt frames on COM1 ([`log`]), runs its named cases ([`selftest`]) and
//! ends QEMU through isa-debug-exit ([`exit`]). `cargo xtask run --board
//! q35-vtd` and `cargo xtask test --suite q35` build, boot and decode it.
#![no_std]
#![no_main]

mod acpi_scan;
mod boot;
mod bootinfo;
mod edu;
mod exit;
mod heap;
mod log;
mod pci;
mod phys;
mod port;
mod selftest;
mod serial;
mod tsc;

use bootinfo::BootInfo;

/// The 64-bit entry, called by the boot stub with the identity map on, a
/// stack and the loader's `hvm_start_info` address.
#[no_mangle]
extern "C" fn kmain(start_info: u64) -> ! {
    serial::init();
    let per_us = tsc::calibrate();
    defmt::info!("x86-testkernel: long mode, start_info at {=u64:#x}", start_info);
    match per_us {
        Some(t) => defmt::info!("tsc: {=u64} ticks/us (PIT channel 2)", t),
        None => defmt::warn!("tsc: PIT calibration timed out, assuming {=u64} ticks/us", tsc::ticks_per_us()),
    }
    let boot = match BootInfo::read(start_info) {
        Ok(b) => b,
        Err(e) => {
            defmt::error!("boot info refused: {}", e);
            exit::fail(exit::ExitCode::BadBootInfo)
        }
    };
    defmt::info!(
        "hvm_start_info v{=u32}: rsdp {=u64:#x}, cmdline \"{=str}\"",
        boot.start.version,
        boot.start.rsdp_paddr,
        boot.cmdline
    );
    selftest::run(&boot)
}
