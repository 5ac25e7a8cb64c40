//! The boot report: what the hypervisor found on this board, one line per
//! fact, so a user (and the test suites) can see discovery worked.

use crate::dtb::device_regions;
use crate::pci::{Bdf, Ecam};
use boards::platform::Gic;
use boards::{Board, Platform};

/// Logs the board, RAM, CPUs, GIC, SMMU and PCI functions.
pub fn report(board: &Board, p: &Platform<'_>) {
    defmt::info!("board {=str}: {=str}", board.name, p.model.unwrap_or("(no model)"));
    let ram_mib = p.memory.iter().map(|r| r.size).sum::<u64>() >> 20;
    defmt::info!("RAM {=u64} MiB in {=usize} region(s)", ram_mib, p.memory.len());
    for r in p.memory.iter() {
        defmt::debug!("  RAM {=u64:#x}..{=u64:#x}", r.base, r.base.saturating_add(r.size));
    }
    for r in p.reserved.iter() {
        defmt::debug!("  reserved {=u64:#x}..{=u64:#x}", r.base, r.base.saturating_add(r.size));
    }
    defmt::info!("CPUs in the device tree: {=usize}", p.cpus.len());
    match &p.gic {
        Gic::V3(g) => defmt::info!(
            "GICv3: distributor {=u64:#x}, {=usize} redistributor region(s) from {=u64:#x}, ITS {=bool}",
            g.dist.base,
            g.redists.len(),
            g.redists.first().map_or(0, |r| r.base),
            g.its.is_some()
        ),
        Gic::V2(g) => defmt::info!(
            "GICv2: distributor {=u64:#x}, CPU interface {=u64:#x}, virtualization extensions {=bool}",
            g.dist.base,
            g.cpu.base,
            g.hyp.is_some() && g.vcpu.is_some()
        ),
    }
    if p.smmus.is_empty() {
        defmt::info!("no SMMU on this board: device DMA is not translated");
    }
    for s in p.smmus.iter() {
        crate::smmu_host::report(s);
    }
    for host in p.pcie.iter() {
        defmt::info!("PCIe ECAM {=u64:#x} buses {=u8}..{=u8}", host.ecam.base, host.bus_start, host.bus_end);
        let ecam = Ecam::of_host(host);
        ecam.scan(|f| {
            let Bdf { bus, dev, func } = f.bdf;
            defmt::info!(
                "PCI {=u8:02x}:{=u8:02x}.{=u8} {=u16:04x}:{=u16:04x} class {=u32:06x}",
                bus,
                dev,
                func,
                f.vendor,
                f.device,
                f.class
            );
        });
    }
    defmt::debug!("{=usize} MMIO regions mapped", device_regions(p).count());
}
