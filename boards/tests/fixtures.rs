//! Discovery on the real DTBs QEMU 10 hands to a guest. Expected values were
//! read from the blobs' DTS dumps and from QEMU's machine sources, and are
//! written here as literals.

mod common;

use boards::platform::{
    Conduit, Cpu, EnableMethod, Gic, IommuMapEntry, Irq, IrqKind, MsiMapEntry, PciSpace, PciWindow,
    PsciVersion, Region, ReservedRegion, ReservedSource, Trigger,
};
use boards::{board_for_platform, discover, Platform};
use common::fixture;

const fn spi(num: u32, flags: u32) -> Irq {
    Irq { kind: IrqKind::Spi, num, flags }
}

const fn ppi(num: u32, flags: u32) -> Irq {
    Irq { kind: IrqKind::Ppi, num, flags }
}

const fn region(base: u64, size: u64) -> Region {
    Region { base, size }
}

fn assert_virt_devices(p: &Platform<'_>, smmu_phandle: u32, its_phandle: u32) {
    assert_eq!(p.model, Some("linux,dummy-virt"));
    assert!(p.compatible.contains("linux,dummy-virt"));
    assert_eq!(p.boot_cpuid, 0);
    assert!(p.reserved.is_empty());

    let psci = p.psci.expect("virt has /psci");
    assert_eq!((psci.conduit, psci.version), (Conduit::Smc, PsciVersion::V1_0));

    let uart = p.uart.expect("virt has a PL011");
    assert_eq!((uart.base, uart.size), (0x0900_0000, 0x1000));
    assert_eq!(uart.clock_hz, Some(24_000_000));
    assert_eq!(uart.irq, Some(spi(1, 4)));
    assert_eq!(uart.irq.map(|i| i.intid()), Some(33));

    let Gic::V3(gic) = &p.gic else { panic!("virt,gic-version=3 gives a GICv3, got {:?}", p.gic) };
    assert_eq!(gic.dist, region(0x0800_0000, 0x1_0000));
    assert_eq!(gic.redists.as_slice(), [region(0x080a_0000, 0xf6_0000)]);
    assert_eq!(gic.its, Some(region(0x0808_0000, 0x2_0000)));
    assert_eq!(gic.maintenance_irq, Some(ppi(9, 4)));
    assert_eq!(p.gic.maintenance_irq().map(|i| i.intid()), Some(25));

    assert_eq!(p.smmus.len(), 1);
    let smmu = &p.smmus[0];
    assert_eq!((smmu.base, smmu.size), (0x0905_0000, 0x2_0000));
    assert!(smmu.coherent);
    assert_eq!(smmu.phandle, Some(smmu_phandle));
    // SPIs 74..77, edge-rising, named eventq, priq, cmdq-sync, gerror.
    assert_eq!(smmu.irqs.eventq, Some(spi(74, 1)));
    assert_eq!(smmu.irqs.priq, Some(spi(75, 1)));
    assert_eq!(smmu.irqs.cmdq_sync, Some(spi(76, 1)));
    assert_eq!(smmu.irqs.gerror, Some(spi(77, 1)));
    assert_eq!(smmu.irqs.combined, None);
    assert_eq!(smmu.irqs.eventq.map(|i| (i.intid(), i.trigger())), Some((106, Trigger::EdgeRising)));

    assert_eq!(p.pcie.len(), 1);
    let pci = &p.pcie[0];
    assert_eq!(pci.ecam, region(0x40_1000_0000, 0x1000_0000));
    assert_eq!((pci.bus_start, pci.bus_end), (0, 255));
    assert_eq!(pci.domain, Some(0));
    assert!(pci.coherent);
    assert_eq!(
        pci.windows.as_slice(),
        [
            PciWindow {
                kind: PciSpace::Io,
                prefetchable: false,
                pci_addr: 0,
                cpu_addr: 0x3eff_0000,
                size: 0x1_0000,
            },
            PciWindow {
                kind: PciSpace::Mem32,
                prefetchable: false,
                pci_addr: 0x1000_0000,
                cpu_addr: 0x1000_0000,
                size: 0x2eff_0000,
            },
            PciWindow {
                kind: PciSpace::Mem64,
                prefetchable: false,
                pci_addr: 0x80_0000_0000,
                cpu_addr: 0x80_0000_0000,
                size: 0x80_0000_0000,
            },
        ]
    );
    // iommu-map = <0 &smmu 0 0x10000>: the identity RID -> StreamID.
    assert_eq!(
        pci.iommu_map.as_slice(),
        [IommuMapEntry { rid_base: 0, iommu_phandle: smmu_phandle, sid_base: 0, len: 0x1_0000 }]
    );
    assert_eq!(pci.iommu_map_mask, u32::MAX);
    assert_eq!(
        pci.msi_map.as_slice(),
        [MsiMapEntry { rid_base: 0, msi_phandle: its_phandle, msi_base: 0, len: 0x1_0000 }]
    );
    // edu at 00:01.0 (with -nic none) has RequesterID and StreamID 0x8.
    assert_eq!(pci.stream_id(0x0008), Some((smmu_phandle, 0x8)));
    assert_eq!(pci.stream_id(0xffff), Some((smmu_phandle, 0xffff)));
    assert!(p.smmu_by_phandle(smmu_phandle).is_some());

    // interrupt-map: 4 slots x 4 pins, swizzled over SPIs 3..6, mask 0x1800/7.
    let intx = pci.intx.as_ref().expect("virt PCIe has an interrupt-map");
    assert_eq!((intx.mask_hi, intx.mask_pin, intx.skipped), (0x1800, 7, 0));
    assert_eq!(intx.routes.len(), 16);
    assert_eq!(intx.route(0, 0, 0, 1), Some(spi(3, 4)));
    assert_eq!(intx.route(0, 1, 0, 1), Some(spi(4, 4)));
    assert_eq!(intx.route(0, 1, 0, 4), Some(spi(3, 4)));
    assert_eq!(intx.route(0, 3, 0, 2), Some(spi(3, 4)));
    // The mask keeps device bits 12:11 only: slot 5 routes like slot 1.
    assert_eq!(intx.route(0, 5, 0, 1), Some(spi(4, 4)));
    assert_eq!(intx.route(0, 1, 0, 0), None);

    let timer = p.timer.expect("virt has an armv8 timer");
    assert_eq!(timer.secure_phys, ppi(13, 4));
    assert_eq!(timer.phys, ppi(14, 4));
    assert_eq!(timer.virt, ppi(11, 4));
    assert_eq!(timer.hyp_phys, ppi(10, 4));
    // QEMU 10 lists the EL2 virtual timer as a fifth interrupt.
    assert_eq!(timer.hyp_virt, Some(ppi(12, 4)));

    assert_eq!(board_for_platform(p).map(|b| b.name), Some("qemu-virt"));
}

#[test]
fn qemu_virt() {
    let blob = fixture("virt.dtb");
    let p = discover(&blob).unwrap();
    assert_eq!(p.memory.as_slice(), [region(0x4000_0000, 0x4000_0000)]);
    assert_eq!(p.memory_bytes(), 1 << 30);
    assert_eq!(p.cpus.as_slice(), [Cpu { mpidr: 0, enable: EnableMethod::Absent }]);
    assert_virt_devices(&p, 0x8004, 0x8003);
}

#[test]
fn qemu_virt_smp3_2g() {
    let blob = fixture("virt-smp3-2g.dtb");
    let p = discover(&blob).unwrap();
    assert_eq!(p.memory.as_slice(), [region(0x4000_0000, 0x8000_0000)]);
    let cpus: Vec<_> = p.cpus.iter().map(|c| (c.mpidr, c.enable)).collect();
    assert_eq!(cpus, [(0, EnableMethod::Psci), (1, EnableMethod::Psci), (2, EnableMethod::Psci)]);
    // Three cpu phandles shift the others by two.
    assert_virt_devices(&p, 0x8006, 0x8005);
}

#[test]
fn qemu_virt_with_nops_reads_the_same() {
    let plain = fixture("virt.dtb");
    let nops = fixture("virt-nops.dtb");
    // The re-emitted tree is bigger (NOP tokens, more padding) but says the
    // same thing.
    assert!(nops.len() > 2 << 20);
    assert_eq!(discover(&nops).unwrap(), discover(&plain).unwrap());
}

#[test]
fn raspi4b() {
    let blob = fixture("raspi4b.dtb");
    let mut p = discover(&blob).unwrap();
    assert_eq!(p.model, Some("Raspberry Pi 4 Model B"));
    assert_eq!(p.compatible.iter().collect::<Vec<_>>(), ["raspberrypi,4-model-b", "brcm,bcm2711"]);
    // QEMU 10.0 describes only the RAM below the VideoCore carve-out even
    // with -m 2G: its "add /memory@40000000" check compares a RAM size
    // already capped at 0x3c00_0000.
    assert_eq!(p.memory.as_slice(), [region(0, 0x3c00_0000)]);
    // /memreserve/ 0 0x1000 keeps the armstub and spin table; the
    // /reserved-memory children are a size-only CMA pool and a disabled
    // zero-size nvram node.
    assert_eq!(
        p.reserved.as_slice(),
        [ReservedRegion { base: 0, size: 0x1000, no_map: false, source: ReservedSource::MemReserve }]
    );
    let cpus: Vec<_> = p.cpus.iter().map(|c| (c.mpidr, c.enable)).collect();
    let spin = |a| EnableMethod::SpinTable { release_addr: Some(a) };
    assert_eq!(cpus, [(0, spin(0xd8)), (1, spin(0xe0)), (2, spin(0xe8)), (3, spin(0xf0))]);
    assert_eq!(p.psci, None);

    // stdout-path is "serial1:115200n8", the mini UART: not a PL011, so the
    // first enabled PL011 (UART0, behind /soc ranges) is the console. Its
    // clock is cprman's, so the DT does not say its rate.
    let uart = p.uart.expect("the Pi has an enabled PL011");
    assert_eq!((uart.base, uart.size), (0xfe20_1000, 0x200));
    assert_eq!(uart.clock_hz, None);
    assert_eq!(uart.irq, Some(spi(121, 4)));

    // GIC-400 at bus address 0x4004_1000, CPU address 0xff84_1000.
    let Gic::V2(gic) = p.gic.clone() else { panic!("the Pi has a GIC-400, got {:?}", p.gic) };
    assert_eq!(gic.dist, region(0xff84_1000, 0x1000));
    assert_eq!(gic.cpu, region(0xff84_2000, 0x2000));
    assert_eq!(gic.hyp, Some(region(0xff84_4000, 0x2000)));
    assert_eq!(gic.vcpu, Some(region(0xff84_6000, 0x2000)));
    // GICv2 PPI flags carry the CPU mask (0xf00) above the trigger.
    assert_eq!(gic.maintenance_irq, Some(ppi(9, 0xf04)));

    assert!(p.smmus.is_empty());
    // QEMU NOPs out the PCIe node (it does not model the controller).
    assert!(p.pcie.is_empty());

    let timer = p.timer.expect("the Pi has an armv8 timer");
    assert_eq!(
        [timer.secure_phys, timer.phys, timer.virt, timer.hyp_phys],
        [ppi(13, 0xf08), ppi(14, 0xf08), ppi(11, 0xf08), ppi(10, 0xf08)]
    );
    assert_eq!(timer.phys.trigger(), Trigger::LevelLow);
    assert_eq!(timer.hyp_virt, None);

    let board = board_for_platform(&p).expect("rpi4 matches");
    assert_eq!(board.name, "rpi4");
    assert!(!board.has_iommu);
    let applied = board.apply_fallbacks(&mut p);
    assert!(applied.console_clock && !applied.console);
    assert_eq!(applied.release_addrs, 0);
    assert_eq!(p.uart.and_then(|u| u.clock_hz), Some(48_000_000));
}

#[test]
fn errors_display_and_name_themselves() {
    let blob = fixture("virt.dtb");
    let e = discover(&blob[..100]).unwrap_err();
    assert_eq!(e.what(), "truncated");
    assert_eq!(e.to_string(), "device tree: truncated, header says 1048576 bytes, blob has 100");
}
