//! Bulkhead: a static partitioning hypervisor for AArch64 at EL2.
//!
//! Boot flow (see docs/ARCHITECTURE.md): `arch::boot` enters at EL2 with a
//! stack, `rust_entry` reads the device tree, maps RAM and devices, starts the
//! heap and the other CPUs, and reports the board it found.
#![no_std]
#![no_main]
// Drivers and helpers the in-QEMU self-tests use (edu, the fault ring's
// queries, EL2 probes) are unused in a build without them.
#![cfg_attr(not(feature = "selftest"), allow(dead_code))]

extern crate alloc;

mod arch;
mod banner;
mod console;
mod devices;
mod dma;
mod dtb;
mod exit;
mod fault_policy;
mod faults;
mod gic;
mod heap;
mod irq;
mod log;
mod mem;
mod partition;
mod pci;
#[cfg(feature = "selftest")]
mod selftest;
mod smmu_host;
mod smp;
mod vcpu;
mod vdev;
mod vgic;
mod vpsci;

use aarch64_cpu::registers::{CurrentEL, Readable};
use arch::mmu;
use exit::ExitCode;

/// The board this image was built for (`BULKHEAD_BOARD` at build time).
pub fn board() -> &'static boards::Board {
    boards::board_by_name(env!("BULKHEAD_BOARD")).expect("build.rs only accepts known boards")
}

#[no_mangle]
extern "C" fn rust_entry(cpu: usize, dtb: usize) -> ! {
    if cpu == 0 {
        primary(dtb)
    } else {
        smp::secondary_main(cpu)
    }
}

fn primary(dtb_addr: usize) -> ! {
    let board = board();
    // The board's console until the device tree names one, so that DT errors
    // can be reported at all.
    log::set_console(board.console.base as usize, board.console.clock_hz);
    let el = CurrentEL.read(CurrentEL::EL);
    if el != 2 {
        defmt::error!("entered at EL{=u64}: Bulkhead runs at EL2 (enable virtualization in the loader)", el);
        exit::fail(ExitCode::WrongExceptionLevel);
    }
    log::set_cpu_index(0);
    defmt::info!("Bulkhead {=str} for {=str}", env!("CARGO_PKG_VERSION"), board.name);

    let dt = match dtb::load(dtb_addr, board) {
        Ok(dt) => dt,
        Err(e) => {
            defmt::error!("device tree at {=usize:#x} refused: {}", dtb_addr, e);
            exit::fail(ExitCode::BadDeviceTree);
        }
    };
    let platform = &dt.platform;
    if let Some(uart) = &platform.uart {
        if uart.base != board.console.base {
            log::set_console(uart.base as usize, uart.clock_hz);
        }
    }

    if let Err(e) = build_el2_map(platform) {
        defmt::error!("EL2 memory map: {}", e);
        exit::fail(ExitCode::HardwareError);
    }
    mmu::enable();

    let heap = match mem::place_heap(platform, dt.range) {
        Ok(h) => h,
        Err(e) => {
            defmt::error!("no RAM for the heap: {}", e);
            exit::fail(ExitCode::HardwareError);
        }
    };
    // SAFETY: `place_heap` chose RAM that is mapped read-write and used by
    // nothing else (not the image, the DT or a reserved region).
    unsafe { heap::init(heap.start as usize, (heap.end - heap.start) as usize) };
    defmt::debug!("memory: image {}, device tree {}, heap {}", mem::image(), dt.range, heap);

    banner::report(board, platform);
    smp::record_self(0);
    init_interrupts(platform);
    log::enable_shared();
    let online = smp::start_secondaries(platform);
    defmt::info!("CPUs online: {=usize} of {=usize}", online, platform.cpus.len());

    #[cfg(feature = "selftest")]
    selftest::run(&dt);
    #[cfg(not(feature = "selftest"))]
    match partition::build::build(platform, online, (dt.range.start, dt.range.end - dt.range.start)) {
        Ok(0) => exit::success(),
        Ok(_) => vcpu::idle(0),
        Err(_) => exit::fail(ExitCode::BadConfig),
    }
}

/// Identity maps RAM (the image W^X) and every device the DT names.
fn build_el2_map(platform: &boards::Platform<'_>) -> Result<(), mmu::MapError> {
    use mmu::Attr;
    let mut map = mmu::Builder::new();
    let img = mem::image();
    for ram in platform.memory.iter() {
        let end = ram.end().ok_or(mmu::MapError::OutOfRange)?;
        // RAM around the image read-write; the image's own sections W^X.
        if ram.base < img.text.start {
            map.map(ram.base, img.text.start.min(end), Attr::RamRw)?;
        }
        if end > img.data.end {
            map.map(ram.base.max(img.data.end), end, Attr::RamRw)?;
        }
    }
    map.map(img.text.start, img.text.end, Attr::RamRx)?;
    map.map(img.rodata.start, img.rodata.end, Attr::RamRo)?;
    map.map(img.data.start, img.data.end, Attr::RamRw)?;
    for dev in dtb::device_regions(platform) {
        map.map(dev.base, dev.base.saturating_add(dev.size), Attr::Device)?;
    }
    map.finish();
    Ok(())
}

/// Physical interrupts go to EL2 (HCR_EL2.IMO/FMO, and AMO so SErrors are
/// reported here too); the GIC's distributor and this CPU's interface are
/// brought up where the board has a GICv3.
fn init_interrupts(platform: &boards::Platform<'_>) {
    use aarch64_cpu::registers::{ReadWriteable, HCR_EL2};
    HCR_EL2.modify(
        HCR_EL2::RW::EL1IsAarch64
            + HCR_EL2::IMO::EnableVirtualIRQ
            + HCR_EL2::FMO::EnableVirtualFIQ
            + HCR_EL2::AMO::SET,
    );
    if let boards::platform::Gic::V3(g) = &platform.gic {
        // SAFETY: the GIC regions come from the DT and are identity mapped
        // as device memory by `build_el2_map`.
        let gic = gic::v3::publish(unsafe { gic::v3::GicV3::new(g) });
        if let Err(e) = gic.init_distributor().and_then(|_| gic.init_cpu()) {
            defmt::error!("GICv3 bring-up: {}", e);
            exit::fail(ExitCode::HardwareError);
        }
        init_cpu_interrupts(0);
        irq::enable_local();
    }
}

/// This CPU's side of the GIC: its redistributor and CPU interface (the boot
/// CPU's were brought up with the distributor) and the kick SGI other CPUs
/// use to reach it.
pub fn init_cpu_interrupts(cpu: usize) {
    let Some(gic) = gic::v3::get() else { return };
    if cpu != 0 {
        if let Err(e) = gic.init_cpu() {
            defmt::error!("cpu {=usize}: GICv3 CPU interface: {}", cpu, e);
            return;
        }
    }
    if let Err(e) = irq::register(vcpu::KICK_SGI, vcpu::on_kick)
        .and(gic.enable_private(vcpu::KICK_SGI).map_err(|_| irq::NoSlot))
    {
        defmt::error!("cpu {=usize}: kick SGI not enabled: {}", cpu, e);
    }
}
