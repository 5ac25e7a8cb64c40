//! Each generated tree is read back with the crate's own discovery
//! ([`crate::discover`]) and the `Platform` it yields is compared with the
//! spec; expected values are literals from the spec, not from the writer.

use std::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::platform::{
    Conduit, Cpu, EnableMethod, Gic, PciSpace, PciWindow, PsciVersion, Region, ReservedRegion,
    ReservedSource, Timer, UartKind,
};
use crate::{discover, Platform};

const fn region(base: u64, size: u64) -> Region {
    Region { base, size }
}

const VIRT_WINDOWS: [PciWindow; 3] = [
    PciWindow { kind: PciSpace::Io, prefetchable: false, pci_addr: 0, cpu_addr: 0x3eff_0000, size: 0x1_0000 },
    PciWindow {
        kind: PciSpace::Mem32,
        prefetchable: false,
        pci_addr: 0x1000_0000,
        cpu_addr: 0x1000_0000,
        size: 0x2eff_0000,
    },
    PciWindow {
        kind: PciSpace::Mem64,
        prefetchable: true,
        pci_addr: 0x80_0000_0000,
        cpu_addr: 0x80_0000_0000,
        size: 0x80_0000_0000,
    },
];
const VIRT_MEMORY: [Region; 1] = [region(0x4000_0000, 64 << 20)];
const FAULT_PAGE: [Reserved<'static>; 1] =
    [Reserved { name: "bulkhead-faults", region: region(0x43ff_f000, 0x1000) }];
const VIRT_BOOTARGS: &str = "console=ttyAMA0 earlycon root=/dev/vda";

/// Case (a): a `virt`-like GICv3 guest, 2 vCPUs, 64 MiB at 1 GiB, a PL011, a
/// host bridge with device 1's INTx swizzled from SPI 3, a fault page.
fn virt_spec() -> GuestDt<'static> {
    GuestDt {
        model: "Bulkhead guest (virt)",
        compatible: &["linux,dummy-virt"],
        memory: &VIRT_MEMORY,
        cpus: 2,
        gic: GuestGic::V3 { dist: region(0x0800_0000, 0x1_0000), redist: region(0x080a_0000, 0x4_0000) },
        timer: arch_timer(IRQ_LEVEL_HIGH),
        uart: Some(Pl011 {
            regs: region(0x0900_0000, 0x1000),
            irq: spi(1, IRQ_LEVEL_HIGH),
            clock_hz: 24_000_000,
        }),
        pcie: Some(Pcie {
            ecam: region(0x3f00_0000, 0x100_0000),
            bus_range: (0, 15),
            windows: &VIRT_WINDOWS,
            intx: Some(Intx::Swizzle { devices: &[1], first: spi(3, IRQ_LEVEL_HIGH) }),
            dma_coherent: true,
        }),
        chosen: Chosen { bootargs: Some(VIRT_BOOTARGS), initrd: Some(region(0x4200_0000, 0x10_0000)) },
        reserved: &FAULT_PAGE,
    }
}

const PI_MEMORY: [Region; 1] = [region(0x1000_0000, 0x1000_0000)];

/// Case (b): a Raspberry Pi 4-like GICv2 guest, 1 vCPU, its PL011 at the
/// Pi's address, the GICV frame at the guest's GICC address.
fn pi_spec() -> GuestDt<'static> {
    GuestDt {
        model: "Bulkhead guest (rpi4)",
        compatible: &["bulkhead,rpi4-guest"],
        memory: &PI_MEMORY,
        cpus: 1,
        gic: GuestGic::V2 { dist: region(0xff84_1000, 0x1000), cpu: region(0xff84_2000, 0x2000) },
        timer: arch_timer(0x100 | IRQ_LEVEL_HIGH),
        uart: Some(Pl011 {
            regs: region(0xfe20_1000, 0x200),
            irq: spi(121, IRQ_LEVEL_HIGH),
            clock_hz: 48_000_000,
        }),
        pcie: None,
        chosen: Chosen { bootargs: Some("console=ttyAMA0,115200"), initrd: None },
        reserved: &[],
    }
}

/// Cells as big-endian bytes.
fn be(cells: &[u32]) -> Vec<u8> {
    cells.iter().flat_map(|c| c.to_be_bytes()).collect()
}

fn read_back(blob: &[u8]) -> Platform<'_> {
    match discover(blob) {
        Ok(p) => p,
        Err(e) => panic!("generated tree does not parse: {e}"),
    }
}

fn assert_guest_cpus(p: &Platform<'_>, n: u64) {
    let want: Vec<Cpu> = (0..n).map(|mpidr| Cpu { mpidr, enable: EnableMethod::Psci }).collect();
    assert_eq!(p.cpus.as_slice(), want.as_slice());
    let psci = p.psci.expect("/psci");
    assert_eq!((psci.conduit, psci.version), (Conduit::Hvc, PsciVersion::V1_0));
    assert_eq!(p.boot_cpuid, 0);
}

#[test]
fn virt_guest_reads_back() {
    let blob = generate(&virt_spec()).unwrap();
    let p = read_back(&blob);

    assert_eq!(p.model, Some("Bulkhead guest (virt)"));
    assert!(p.compatible.contains("linux,dummy-virt"));
    assert_eq!(p.bootargs, Some(VIRT_BOOTARGS));
    assert_eq!(p.memory.as_slice(), [region(0x4000_0000, 0x400_0000)]);
    assert_eq!(
        p.reserved.as_slice(),
        [ReservedRegion { base: 0x43ff_f000, size: 0x1000, no_map: true, source: ReservedSource::Node }]
    );
    assert_guest_cpus(&p, 2);

    let Gic::V3(gic) = &p.gic else { panic!("want a GICv3, got {:?}", p.gic) };
    assert_eq!(gic.dist, region(0x0800_0000, 0x1_0000));
    assert_eq!(gic.redists.as_slice(), [region(0x080a_0000, 0x4_0000)]);
    assert_eq!(gic.its, None, "the guest must not see an ITS");
    assert_eq!(gic.maintenance_irq, None);

    let timer = p.timer.expect("timer");
    assert_eq!(
        [timer.secure_phys, timer.phys, timer.virt, timer.hyp_phys].map(|i| i.intid()),
        [29, 30, 27, 26]
    );
    assert_eq!(timer.virt, ppi(11, 4));
    assert_eq!(timer.hyp_virt, None);

    let uart = p.uart.expect("the PL011 is stdout");
    assert_eq!((uart.base, uart.size, uart.kind), (0x0900_0000, 0x1000, UartKind::Pl011));
    assert_eq!(uart.irq, Some(spi(1, 4)));
    assert_eq!(uart.irq.map(|i| i.intid()), Some(33));
    assert_eq!(uart.clock_hz, Some(24_000_000));

    assert!(p.smmus.is_empty(), "the guest must not see the SMMU");
    assert_eq!(p.pcie.len(), 1);
    let host = &p.pcie[0];
    assert_eq!(host.ecam, region(0x3f00_0000, 0x100_0000));
    assert_eq!((host.bus_start, host.bus_end), (0, 15));
    assert!(host.coherent);
    assert_eq!(host.windows.as_slice(), VIRT_WINDOWS);
    assert!(host.iommu_map.is_empty(), "no iommu-map");
    assert!(host.msi_map.is_empty(), "no msi-map");
    assert_eq!(host.stream_id(0x08), None, "device 1 has no StreamID in the guest's view");
    // Device 1: INTA..INTD raise SPI 3 + (1 + pin - 1) % 4, i.e. 4, 5, 6, 3.
    let intx = host.intx.as_ref().expect("interrupt-map");
    assert_eq!(intx.routes.len(), 4);
    assert_eq!(intx.skipped, 0);
    for (pin, num) in [(1, 4), (2, 5), (3, 6), (4, 3)] {
        assert_eq!(intx.route(0, 1, 0, pin), Some(spi(num, 4)), "INT{}", b"?ABCD"[pin as usize] as char);
    }
    // Other devices have no route.
    assert_eq!(intx.route(0, 2, 0, 1), None);
}

#[test]
fn virt_guest_chosen_and_phandles() {
    use dtoolkit::fdt::Fdt;
    use dtoolkit::{Node, Property};

    let blob = generate(&virt_spec()).unwrap();
    let fdt = Fdt::new(&blob).unwrap();
    let prop = |path: &str, name: &str| -> Vec<u8> {
        let node = fdt.find_node(path).unwrap_or_else(|| panic!("{path}"));
        node.property(name).unwrap_or_else(|| panic!("{path}:{name}")).value().to_vec()
    };
    assert_eq!(prop("/chosen", "stdout-path"), b"/pl011@9000000\0");
    assert_eq!(prop("/aliases", "serial0"), b"/pl011@9000000\0");
    assert_eq!(prop("/chosen", "linux,initrd-start"), 0x4200_0000u64.to_be_bytes());
    assert_eq!(prop("/chosen", "linux,initrd-end"), 0x4210_0000u64.to_be_bytes());
    // A PCIe host: the guest keeps the hypervisor's BAR assignments.
    assert_eq!(prop("/chosen", "linux,pci-probe-only"), be(&[1]));
    assert_eq!(prop("/intc@8000000", "phandle"), be(&[GIC_PHANDLE]));
    assert_eq!(prop("/apb-pclk", "phandle"), be(&[UART_CLOCK_PHANDLE]));
    assert_eq!((GIC_PHANDLE, UART_CLOCK_PHANDLE), (1, 2));
    assert_eq!(prop("/", "interrupt-parent"), be(&[1]));
    assert_eq!(prop("/pl011@9000000", "clocks"), be(&[2, 2]));
    assert_eq!(prop("/pl011@9000000", "clock-names"), b"uartclk\0apb_pclk\0");
    assert_eq!(prop("/pl011@9000000", "compatible"), b"arm,pl011\0arm,primecell\0");
    assert_eq!(prop("/psci", "compatible"), b"arm,psci-1.0\0arm,psci-0.2\0");
    let pcie = fdt.find_node("/pcie@3f000000").unwrap();
    for absent in ["msi-map", "msi-parent", "iommu-map", "iommu-map-mask"] {
        assert!(pcie.property(absent).is_none(), "{absent}");
    }
    // phys.hi of each window: I/O, 32-bit memory, prefetchable 64-bit memory.
    let ranges = prop("/pcie@3f000000", "ranges");
    let his: Vec<u32> = ranges.chunks(28).map(|e| u32::from_be_bytes([e[0], e[1], e[2], e[3]])).collect();
    assert_eq!(his, [0x0100_0000, 0x0200_0000, 0x4300_0000]);
    // Swizzle mask: device number and pin.
    assert_eq!(prop("/pcie@3f000000", "interrupt-map-mask"), be(&[0xf800, 0, 0, 7]));
}

#[test]
fn pi_guest_reads_back() {
    let blob = generate(&pi_spec()).unwrap();
    let p = read_back(&blob);

    assert_eq!(p.model, Some("Bulkhead guest (rpi4)"));
    assert_eq!(p.bootargs, Some("console=ttyAMA0,115200"));
    assert_eq!(p.memory.as_slice(), [region(0x1000_0000, 0x1000_0000)]);
    assert!(p.reserved.is_empty());
    assert_guest_cpus(&p, 1);

    let Gic::V2(gic) = p.gic else { panic!("want a GICv2, got {:?}", p.gic) };
    assert_eq!(gic.dist, region(0xff84_1000, 0x1000));
    assert_eq!(gic.cpu, region(0xff84_2000, 0x2000));
    assert_eq!((gic.hyp, gic.vcpu), (None, None), "no GICH/GICV in the guest's view");

    let uart = p.uart.expect("the PL011 is stdout");
    assert_eq!((uart.base, uart.size), (0xfe20_1000, 0x200));
    assert_eq!(uart.irq.map(|i| i.intid()), Some(153));
    assert_eq!(uart.clock_hz, Some(48_000_000));

    let timer = p.timer.expect("timer");
    assert_eq!(timer.virt, ppi(11, 0x104));
    assert!(p.pcie.is_empty() && p.smmus.is_empty());
}

#[test]
fn explicit_intx_map_routes_by_bdf() {
    let entries = [
        IntxEntry { bdf: 0x0008, pin: 1, irq: spi(5, IRQ_LEVEL_HIGH) },
        IntxEntry { bdf: 0x0100, pin: 2, irq: spi(6, IRQ_LEVEL_HIGH) },
    ];
    let mut spec = virt_spec();
    spec.pcie = Some(Pcie { intx: Some(Intx::Map(&entries)), ..spec.pcie.unwrap() });
    let blob = generate(&spec).unwrap();
    let p = read_back(&blob);
    let intx = p.pcie[0].intx.as_ref().unwrap();
    assert_eq!((intx.mask_hi, intx.mask_pin), (0xff_ff00, 7));
    assert_eq!(intx.route(0, 1, 0, 1), Some(spi(5, 4)));
    assert_eq!(intx.route(1, 0, 0, 2), Some(spi(6, 4)));
    // Same device number on another bus, or another function: no route.
    assert_eq!(intx.route(1, 1, 0, 1), None);
    assert_eq!(intx.route(0, 1, 1, 1), None);
}

#[test]
fn gicv2_interrupt_map_has_no_parent_address_cells() {
    let windows = [VIRT_WINDOWS[1]];
    let mut spec = pi_spec();
    spec.memory = &VIRT_MEMORY;
    spec.pcie = Some(Pcie {
        ecam: region(0x3f00_0000, 0x10_0000),
        bus_range: (0, 0),
        windows: &windows,
        intx: Some(Intx::Swizzle { devices: &[0, 3], first: spi(40, IRQ_LEVEL_HIGH) }),
        dma_coherent: false,
    });
    let blob = generate(&spec).unwrap();
    let p = read_back(&blob);
    let host = &p.pcie[0];
    assert!(!host.coherent);
    let intx = host.intx.as_ref().unwrap();
    assert_eq!(intx.routes.len(), 8);
    assert_eq!(intx.route(0, 0, 0, 1), Some(spi(40, 4)));
    assert_eq!(intx.route(0, 3, 0, 1), Some(spi(43, 4)));
    assert_eq!(intx.route(0, 3, 0, 2), Some(spi(40, 4)));
}

#[test]
fn output_is_deterministic() {
    assert_eq!(generate(&virt_spec()).unwrap(), generate(&virt_spec()).unwrap());
}

#[test]
fn minimal_guest() {
    let mut spec = pi_spec();
    spec.uart = None;
    spec.chosen = Chosen::default();
    let p_blob = generate(&spec).unwrap();
    let p = read_back(&p_blob);
    assert_eq!((p.uart, p.bootargs), (None, None));
}

fn refused<'a>(edit: impl FnOnce(&mut GuestDt<'a>)) -> GuestDtError {
    let mut spec: GuestDt<'a> = virt_spec();
    edit(&mut spec);
    generate(&spec).expect_err("spec should be refused")
}

#[test]
fn inconsistent_specs_are_refused() {
    use GuestDtError as E;
    assert_eq!(refused(|s| s.memory = &[]), E::NoMemory);
    assert_eq!(
        refused(|s| s.memory = &[Region { base: 0x4000_0000, size: 0 }]),
        E::EmptyRegion { what: "memory", base: 0x4000_0000 }
    );
    assert_eq!(
        refused(|s| s.memory = &[Region { base: u64::MAX - 0xfff, size: 0x2000 }]),
        E::RegionWraps { what: "memory", base: u64::MAX - 0xfff }
    );
    assert_eq!(refused(|s| s.cpus = 0), E::CpuCount { cpus: 0, max: 16 });
    assert_eq!(refused(|s| s.cpus = 17), E::CpuCount { cpus: 17, max: 16 });
    assert_eq!(refused(|s| s.cpus = 3), E::RedistTooSmall { size: 0x4_0000, needed: 0x6_0000 });
    assert_eq!(
        refused(|s| s.uart = Some(Pl011 { irq: ppi(1, 4), ..s.uart.unwrap() })),
        E::BadIrq { what: "PL011", reason: "a PPI where an SPI is needed" }
    );
    assert_eq!(
        refused(|s| s.uart = Some(Pl011 { irq: spi(1, 8), ..s.uart.unwrap() })),
        E::BadIrq { what: "PL011", reason: "an SPI is neither level-high (4) nor edge-rising (1)" }
    );
    assert_eq!(
        refused(|s| s.uart = Some(Pl011 { irq: spi(988, 4), ..s.uart.unwrap() })),
        E::BadIrq { what: "PL011", reason: "SPI number above 987" }
    );
    assert_eq!(
        refused(|s| s.uart = Some(Pl011 { clock_hz: 0, ..s.uart.unwrap() })),
        E::ZeroClock { what: "PL011" }
    );
    assert_eq!(
        refused(|s| s.timer = Timer { virt: spi(11, 4), ..s.timer }),
        E::BadIrq { what: "timer", reason: "an SPI where a PPI is needed" }
    );
    assert_eq!(
        refused(|s| s.timer = Timer { phys: ppi(16, 4), ..s.timer }),
        E::BadIrq { what: "timer", reason: "PPI number above 15" }
    );
    // The UART inside RAM.
    assert_eq!(
        refused(|s| s.uart = Some(Pl011 { regs: region(0x4100_0000, 0x1000), ..s.uart.unwrap() })),
        E::Overlap { first: "memory", first_base: 0x4000_0000, second: "PL011", second_base: 0x4100_0000 }
    );
    // The redistributors reaching into the UART.
    assert_eq!(
        refused(|s| s.gic =
            GuestGic::V3 { dist: region(0x0800_0000, 0x1_0000), redist: region(0x08fe_0000, 0x4_0000) }),
        E::Overlap { first: "GICR", first_base: 0x08fe_0000, second: "PL011", second_base: 0x0900_0000 }
    );
    assert_eq!(
        refused(|s| s.reserved =
            &[Reserved { name: "bulkhead-faults", region: Region { base: 0x3000_0000, size: 0x1000 } }]),
        E::OutsideMemory { what: "reserved-memory", base: 0x3000_0000 }
    );
    // Straddling the end of RAM.
    assert_eq!(
        refused(|s| s.chosen.initrd = Some(region(0x43ff_0000, 0x2_0000))),
        E::OutsideMemory { what: "initrd", base: 0x43ff_0000 }
    );
    assert_eq!(
        refused(|s| s.chosen.initrd = Some(region(0x43ff_e000, 0x2000))),
        E::Overlap {
            first: "reserved-memory",
            first_base: 0x43ff_f000,
            second: "initrd",
            second_base: 0x43ff_e000
        }
    );
    assert_eq!(
        refused(
            |s| s.reserved = &[Reserved { name: "2bad", region: Region { base: 0x4000_0000, size: 0x1000 } }]
        ),
        E::BadString { what: "reserved-memory name", reason: "does not start with a letter" }
    );
    assert_eq!(
        refused(|s| s.reserved =
            &[Reserved { name: "bad@name", region: Region { base: 0x4000_0000, size: 0x1000 } }]),
        E::BadString {
            what: "reserved-memory name",
            reason: "has a character other than A-Z a-z 0-9 , . _ + -"
        }
    );
    assert_eq!(
        refused(|s| s.chosen.bootargs = Some("a\0b")),
        E::BadString { what: "bootargs", reason: "contains NUL" }
    );
    assert_eq!(refused(|s| s.model = "m\0"), E::BadString { what: "model", reason: "contains NUL" });
    assert_eq!(refused(|s| s.compatible = &[]), E::BadString { what: "compatible", reason: "empty list" });
}

#[test]
fn inconsistent_pcie_is_refused() {
    use GuestDtError as E;
    let pcie = virt_spec().pcie.unwrap();
    let with = |p: Pcie<'_>| refused(move |s| s.pcie = Some(p));
    assert_eq!(with(Pcie { bus_range: (2, 1), ..pcie }), E::BusRange { start: 2, end: 1 });
    assert_eq!(
        with(Pcie { bus_range: (0, 16), ..pcie }),
        E::EcamTooSmall { size: 0x100_0000, needed: 0x110_0000 }
    );
    let io_past_4g = [PciWindow { pci_addr: 0xffff_f000, ..VIRT_WINDOWS[0] }];
    assert_eq!(
        with(Pcie { windows: &io_past_4g, ..pcie }),
        E::BadWindow { index: 0, reason: "a 32-bit window reaches past 4 GiB" }
    );
    let empty = [PciWindow { size: 0, ..VIRT_WINDOWS[1] }];
    assert_eq!(with(Pcie { windows: &empty, ..pcie }), E::BadWindow { index: 0, reason: "size 0" });
    let into_ram = [PciWindow { cpu_addr: 0x4000_0000, ..VIRT_WINDOWS[0] }];
    assert_eq!(
        with(Pcie { windows: &into_ram, ..pcie }),
        E::Overlap {
            first: "memory",
            first_base: 0x4000_0000,
            second: "PCI window",
            second_base: 0x4000_0000
        }
    );
    assert_eq!(
        with(Pcie { intx: Some(Intx::Swizzle { devices: &[32], first: spi(3, 4) }), ..pcie }),
        E::BadIntx { index: 0, reason: "device number above 31" }
    );
    assert_eq!(
        with(Pcie { intx: Some(Intx::Swizzle { devices: &[1, 2, 1], first: spi(3, 4) }), ..pcie }),
        E::BadIntx { index: 2, reason: "device listed twice" }
    );
    assert_eq!(
        with(Pcie { intx: Some(Intx::Swizzle { devices: &[1], first: spi(985, 4) }), ..pcie }),
        E::BadIrq { what: "INTx", reason: "the swizzle's fourth SPI is above 987" }
    );
    let bad_pin = [IntxEntry { bdf: 8, pin: 5, irq: spi(3, 4) }];
    assert_eq!(
        with(Pcie { intx: Some(Intx::Map(&bad_pin)), ..pcie }),
        E::BadIntx { index: 0, reason: "pin is not 1..=4 (INTA..INTD)" }
    );
    let bad_bus = [IntxEntry { bdf: 16 << 8, pin: 1, irq: spi(3, 4) }];
    assert_eq!(
        with(Pcie { intx: Some(Intx::Map(&bad_bus)), ..pcie }),
        E::BadIntx { index: 0, reason: "bus outside bus_range" }
    );
}

#[test]
fn gicv2_targets_at_most_eight_vcpus() {
    let mut spec = pi_spec();
    spec.cpus = 8;
    let blob = generate(&spec).unwrap();
    assert_eq!(read_back(&blob).cpus.len(), 8);
    spec.cpus = 9;
    assert_eq!(generate(&spec), Err(GuestDtError::CpuCount { cpus: 9, max: 8 }));
}

proptest! {
    /// Any spec gives a tree or an error, never a panic; a tree reads back
    /// with the spec's RAM and vCPUs.
    #[test]
    fn generated_trees_read_back(
        regions in proptest::collection::vec((0u64..0x100, 1u64..0x100), 1..4),
        gap in 0u64..4,
        cpus in 0u32..20,
        v3 in any::<bool>(),
        uart_spi in 0u32..1000,
    ) {
        // RAM above 4 GiB in MiB steps, each region after the previous.
        let mut memory = Vec::new();
        let mut next = 1u64 << 32;
        for (skip, size) in regions {
            let base = next + ((skip * gap) << 20);
            memory.push(region(base, size << 20));
            next = base + (size << 20);
        }
        let mut spec = virt_spec();
        spec.memory = &memory;
        spec.reserved = &[];
        spec.chosen.initrd = None;
        spec.cpus = cpus;
        if !v3 {
            spec.gic = GuestGic::V2 { dist: region(0x0800_0000, 0x1_0000), cpu: region(0x0801_0000, 0x1_0000) };
        }
        spec.gic = match spec.gic {
            GuestGic::V3 { dist, .. } => GuestGic::V3 { dist, redist: region(0x080a_0000, 0x20_0000) },
            v2 => v2,
        };
        spec.uart = Some(Pl011 { irq: spi(uart_spi, IRQ_LEVEL_HIGH), ..spec.uart.unwrap() });
        match generate(&spec) {
            Ok(blob) => {
                let p = read_back(&blob);
                prop_assert_eq!(p.memory.as_slice(), memory.as_slice());
                prop_assert_eq!(p.cpus.len() as u32, cpus);
                prop_assert_eq!(p.uart.and_then(|u| u.irq), Some(spi(uart_spi, 4)));
            }
            Err(e) => {
                let max = if v3 { GICV3_MAX_CPUS } else { GICV2_MAX_CPUS };
                let cpus_ok = (1..=max).contains(&cpus);
                prop_assert!(!cpus_ok || uart_spi > 987, "unexpected refusal: {e}");
            }
        }
    }
}
