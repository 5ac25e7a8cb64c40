//! Real trees edited one property or node at a time (dtoolkit's writer), to
//! reach each error and fallback path with an otherwise valid blob.

mod common;

use boards::platform::{EnableMethod, Irq, IrqKind, ReservedRegion, ReservedSource};
use boards::{board_for_platform, discover, DtError};
use common::{cells, remove, set, set_str, tree, unset};
use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};

const VIRT: &str = "virt.dtb";
const PI4: &str = "raspi4b.dtb";

fn error(t: &DeviceTree) -> DtError {
    discover(&t.to_dtb()).expect_err("the edit should be refused")
}

/// The error's (node path, property, reason) if it is a `BadProperty`.
fn bad_property(e: DtError) -> (String, &'static str, &'static str) {
    match e {
        DtError::BadProperty { node, property, reason } => (node.to_string(), property, reason),
        other => panic!("expected BadProperty, got {other:?}"),
    }
}

fn child(name: &str, props: &[(&str, &[u8])]) -> DeviceTreeNode {
    let mut n = DeviceTreeNode::new(name).unwrap();
    for (k, v) in props {
        n.add_property(DeviceTreeProperty::new(*k, *v).unwrap());
    }
    n
}

#[test]
fn missing_required_nodes() {
    let mut t = tree(VIRT);
    remove(&mut t, "/cpus");
    assert_eq!(error(&t), DtError::MissingNode { node: "/cpus" });

    let mut t = tree(VIRT);
    remove(&mut t, "/cpus/cpu@0");
    assert_eq!(error(&t), DtError::MissingNode { node: "/cpus/cpu" });

    let mut t = tree(VIRT);
    remove(&mut t, "/memory@40000000");
    assert_eq!(error(&t), DtError::MissingNode { node: "/memory" });

    // A disabled memory node does not count.
    let mut t = tree(VIRT);
    set_str(&mut t, "/memory@40000000", "status", "disabled");
    assert_eq!(error(&t), DtError::MissingNode { node: "/memory" });

    let mut t = tree(VIRT);
    remove(&mut t, "/intc@8000000");
    assert_eq!(error(&t).what(), "missing node");
}

#[test]
fn bad_properties_name_node_and_property() {
    let mut t = tree(VIRT);
    set(&mut t, "/memory@40000000", "reg", &cells(&[0, 0x4000_0000, 0]));
    let (node, prop, reason) = bad_property(error(&t));
    assert_eq!((node.as_str(), prop), ("/memory@40000000", "reg"));
    assert!(reason.contains("multiple"), "{reason}");

    let mut t = tree(VIRT);
    set(&mut t, "/intc@8000000", "#interrupt-cells", &cells(&[2]));
    assert_eq!(bad_property(error(&t)), ("/intc@8000000".into(), "#interrupt-cells", "not 3 or 4"));

    let mut t = tree(VIRT);
    set(&mut t, "/cpus", "#size-cells", &cells(&[1]));
    assert_eq!(bad_property(error(&t)), ("/cpus".into(), "#size-cells", "not 0"));

    let mut t = tree(VIRT);
    set_str(&mut t, "/psci", "method", "svc");
    assert_eq!(bad_property(error(&t)), ("/psci".into(), "method", "neither \"smc\" nor \"hvc\""));

    let mut t = tree(VIRT);
    set(&mut t, "/pcie@10000000", "iommu-map", &cells(&[0, 0x8004, 0]));
    assert_eq!(bad_property(error(&t)).1, "iommu-map");

    let mut t = tree(VIRT);
    set(&mut t, "/pcie@10000000", "bus-range", &cells(&[0, 0x100]));
    assert_eq!(bad_property(error(&t)).1, "bus-range");

    // A 1 MiB ECAM cannot hold 256 buses.
    let mut t = tree(VIRT);
    set(&mut t, "/pcie@10000000", "reg", &cells(&[0x40, 0x1000_0000, 0, 0x10_0000]));
    assert_eq!(
        bad_property(error(&t)),
        ("/pcie@10000000".into(), "reg", "ECAM smaller than 1 MiB per bus of bus-range")
    );

    let mut t = tree(VIRT);
    set(&mut t, "/timer", "interrupts", &cells(&[1, 13, 4, 1, 14, 4, 1, 11, 4]));
    assert_eq!(bad_property(error(&t)).2, "fewer than 4 timer interrupts");

    // An SPI number past INTID 1019.
    let mut t = tree(VIRT);
    set(&mut t, "/pl011@9000000", "interrupts", &cells(&[0, 988, 4]));
    assert_eq!(bad_property(error(&t)), ("/pl011@9000000".into(), "interrupts", "SPI number above 987"));

    // A region that would wrap the 64-bit space.
    let mut t = tree(VIRT);
    set(&mut t, "/memory@40000000", "reg", &cells(&[0xffff_ffff, 0xffff_f000, 0, 0x2000]));
    assert_eq!(
        bad_property(error(&t)),
        ("/memory@40000000".into(), "reg", "region does not fit the 64-bit physical address space")
    );
}

#[test]
fn fixed_capacities_are_errors_not_truncation() {
    let mut t = tree(VIRT);
    let regs: Vec<u32> = (0..9u32).flat_map(|i| [0, 0x4000_0000 + i * 0x100_0000, 0, 0x100_0000]).collect();
    set(&mut t, "/memory@40000000", "reg", &cells(&regs));
    assert_eq!(error(&t), DtError::TooMany { list: "memory regions", capacity: 8 });

    let mut t = tree(VIRT);
    set(&mut t, "/intc@8000000", "#redistributor-regions", &cells(&[5]));
    assert_eq!(error(&t), DtError::TooMany { list: "GICv3 redistributor regions", capacity: 4 });

    // Three SMMUs.
    let mut t = tree(VIRT);
    for n in ["smmuv3@9070000", "smmuv3@9090000"] {
        let smmu =
            child(n, &[("compatible", b"arm,smmu-v3\0"), ("reg", &cells(&[0, 0x0907_0000, 0, 0x2_0000]))]);
        t.root.add_child(smmu);
    }
    assert_eq!(error(&t), DtError::TooMany { list: "SMMUs", capacity: 2 });
}

#[test]
fn depth_is_bounded() {
    let mut t = tree(VIRT);
    let mut deep = DeviceTreeNode::new("n").unwrap();
    for _ in 0..20 {
        let mut outer = DeviceTreeNode::new("n").unwrap();
        outer.add_child(deep);
        deep = outer;
    }
    t.root.add_child(deep);
    assert_eq!(error(&t), DtError::Limit { what: "tree depth", limit: boards::dt::MAX_DEPTH });
}

#[test]
fn console_selection() {
    // Without stdout-path: the first enabled PL011.
    let mut t = tree(VIRT);
    unset(&mut t, "/chosen", "stdout-path");
    let blob = t.to_dtb();
    assert_eq!(discover(&blob).unwrap().uart.map(|u| u.base), Some(0x0900_0000));

    // An alias with options.
    let mut t = tree(VIRT);
    set_str(&mut t, "/chosen", "stdout-path", "serial0:115200n8");
    let blob = t.to_dtb();
    assert_eq!(discover(&blob).unwrap().uart.map(|u| u.base), Some(0x0900_0000));

    // A second PL011 named by stdout-path wins over the first in tree order.
    let mut t = tree(VIRT);
    t.root.add_child(child(
        "pl011@9040000",
        &[("compatible", b"arm,pl011\0arm,primecell\0"), ("reg", &cells(&[0, 0x0904_0000, 0, 0x1000]))],
    ));
    set_str(&mut t, "/chosen", "stdout-path", "/pl011@9040000");
    let blob = t.to_dtb();
    let uart = discover(&blob).unwrap().uart.unwrap();
    assert_eq!((uart.base, uart.clock_hz, uart.irq), (0x0904_0000, None, None));

    // A disabled PL011 is no console; the board's fallback then applies.
    let mut t = tree(VIRT);
    set_str(&mut t, "/pl011@9000000", "status", "disabled");
    let blob = t.to_dtb();
    let mut p = discover(&blob).unwrap();
    assert_eq!(p.uart, None);
    let board = board_for_platform(&p).unwrap();
    let applied = board.apply_fallbacks(&mut p);
    assert!(applied.console);
    assert_eq!(p.uart, Some(board.console));

    // An interrupt routed to another controller is not decoded as a GIC one.
    let mut t = tree(VIRT);
    set(&mut t, "/pl011@9000000", "interrupt-parent", &cells(&[0x8005]));
    let blob = t.to_dtb();
    assert_eq!(discover(&blob).unwrap().uart.unwrap().irq, None);
}

#[test]
fn pi4_translation_and_fallbacks() {
    // Without /soc ranges, nothing under /soc is reachable: the GIC fails.
    let mut t = tree(PI4);
    unset(&mut t, "/soc", "ranges");
    assert_eq!(
        bad_property(error(&t)),
        ("/soc".into(), "ranges", "absent: the bus does not map into its parent")
    );

    // A window that misses the UART.
    let mut t = tree(PI4);
    set(&mut t, "/soc", "ranges", &cells(&[0x4000_0000, 0, 0xff80_0000, 0x80_0000]));
    assert_eq!(bad_property(error(&t)).2, "no window covers the address");

    // A spin-table CPU without cpu-release-addr takes the board's address.
    let mut t = tree(PI4);
    unset(&mut t, "/cpus/cpu@2", "cpu-release-addr");
    let blob = t.to_dtb();
    let mut p = discover(&blob).unwrap();
    assert_eq!(p.cpus[2].enable, EnableMethod::SpinTable { release_addr: None });
    let applied = board_for_platform(&p).unwrap().apply_fallbacks(&mut p);
    assert_eq!(applied.release_addrs, 1);
    assert_eq!(p.cpus[2].enable, EnableMethod::SpinTable { release_addr: Some(0xe8) });

    // stdout-path naming UART0 directly.
    let mut t = tree(PI4);
    set_str(&mut t, "/chosen", "stdout-path", "/soc/serial@7e201000:115200n8");
    let blob = t.to_dtb();
    assert_eq!(discover(&blob).unwrap().uart.map(|u| u.base), Some(0xfe20_1000));

    // A node behind /emmc2bus (2-cell child addresses) translates as well:
    // make the eMMC controller a PL011 to observe it.
    let mut t = tree(PI4);
    set_str(&mut t, "/chosen", "stdout-path", "emmc2bus:");
    set_str(&mut t, "/aliases", "emmc2bus", "/emmc2bus/mmc@7e340000");
    set(&mut t, "/emmc2bus/mmc@7e340000", "compatible", b"arm,pl011\0");
    let blob = t.to_dtb();
    let uart = discover(&blob).unwrap().uart.unwrap();
    assert_eq!((uart.base, uart.size), (0xfe34_0000, 0x100));
}

#[test]
fn reserved_memory_nodes() {
    let mut t = tree(VIRT);
    let mut rm = child(
        "reserved-memory",
        &[("#address-cells", &cells(&[2])), ("#size-cells", &cells(&[2])), ("ranges", b"")],
    );
    rm.add_child(child(
        "secmon@40000000",
        &[("reg", &cells(&[0, 0x4000_0000, 0, 0x1_0000])), ("no-map", b"")],
    ));
    rm.add_child(child("pool@48000000", &[("reg", &cells(&[0, 0x4800_0000, 0, 0x10_0000]))]));
    rm.add_child(child(
        "off@50000000",
        &[("reg", &cells(&[0, 0x5000_0000, 0, 0x1000])), ("status", b"disabled\0")],
    ));
    rm.add_child(child("cma", &[("size", &cells(&[0, 0x400_0000]))]));
    t.root.add_child(rm);
    t.memory_reservations.push(dtoolkit::memreserve::MemoryReservation::new(0x4000_0000, 0x1000));
    let blob = t.to_dtb();
    let p = discover(&blob).unwrap();
    let node = |base, size, no_map| ReservedRegion { base, size, no_map, source: ReservedSource::Node };
    assert_eq!(
        p.reserved.as_slice(),
        [
            ReservedRegion {
                base: 0x4000_0000,
                size: 0x1000,
                no_map: false,
                source: ReservedSource::MemReserve
            },
            node(0x4000_0000, 0x1_0000, true),
            node(0x4800_0000, 0x10_0000, false),
        ]
    );
}

#[test]
fn smmu_and_pci_details() {
    // One unnamed interrupt is the combined one.
    let mut t = tree(VIRT);
    unset(&mut t, "/smmuv3@9050000", "interrupt-names");
    set(&mut t, "/smmuv3@9050000", "interrupts", &cells(&[0, 74, 1]));
    let blob = t.to_dtb();
    let p = discover(&blob).unwrap();
    let irqs = p.smmus[0].irqs;
    assert_eq!(irqs.combined, Some(Irq { kind: IrqKind::Spi, num: 74, flags: 1 }));
    assert_eq!(irqs.eventq, None);

    // A disabled host bridge is not reported.
    let mut t = tree(VIRT);
    set_str(&mut t, "/pcie@10000000", "status", "disabled");
    let blob = t.to_dtb();
    assert!(discover(&blob).unwrap().pcie.is_empty());

    // iommu-map-mask and an offset StreamID base.
    let mut t = tree(VIRT);
    set(&mut t, "/pcie@10000000", "iommu-map", &cells(&[0x100, 0x8004, 0x4000, 0x100]));
    set(&mut t, "/pcie@10000000", "iommu-map-mask", &cells(&[0xff08]));
    let blob = t.to_dtb();
    let p = discover(&blob).unwrap();
    let pci = &p.pcie[0];
    assert_eq!(pci.stream_id(0x0108), Some((0x8004, 0x4008)));
    // Function bits 2:0 are masked off.
    assert_eq!(pci.stream_id(0x010f), Some((0x8004, 0x4008)));
    assert_eq!(pci.stream_id(0x0008), None);

    // interrupt-map entries to another controller are skipped, not misread:
    // route slot 0 INTA to the PL061 (made an interrupt controller with
    // two-cell specifiers and no address cells).
    let mut t = tree(VIRT);
    set(&mut t, "/pl061@9030000", "#interrupt-cells", &cells(&[2]));
    set(&mut t, "/pl061@9030000", "#address-cells", &cells(&[0]));
    set(
        &mut t,
        "/pcie@10000000",
        "interrupt-map",
        &cells(&[0, 0, 0, 1, 0x8005, 7, 4, 0x800, 0, 0, 1, 0x8002, 0, 0, 0, 4, 4]),
    );
    let blob = t.to_dtb();
    let p = discover(&blob).unwrap();
    let intx = p.pcie[0].intx.as_ref().unwrap();
    assert_eq!(intx.skipped, 1);
    assert_eq!(intx.routes.len(), 1);
    assert_eq!(intx.route(0, 1, 0, 1).map(|i| i.num), Some(4));
    assert_eq!(intx.route(0, 0, 0, 1), None);

    // ... and a parent without #interrupt-cells cannot be stepped over.
    let mut t = tree(VIRT);
    set(&mut t, "/pcie@10000000", "interrupt-map", &cells(&[0, 0, 0, 1, 0x8001, 7, 4]));
    assert_eq!(
        bad_property(error(&t)),
        ("/cpus/cpu@0".into(), "#interrupt-cells", "missing on an interrupt-map parent")
    );
}

#[test]
fn psci_variants() {
    let mut t = tree(VIRT);
    set_str(&mut t, "/psci", "status", "disabled");
    let blob = t.to_dtb();
    assert_eq!(discover(&blob).unwrap().psci, None);

    let mut t = tree(VIRT);
    set(&mut t, "/psci", "compatible", b"arm,psci\0");
    set_str(&mut t, "/psci", "method", "hvc");
    let blob = t.to_dtb();
    let psci = discover(&blob).unwrap().psci.unwrap();
    assert_eq!(
        (psci.conduit, psci.version),
        (boards::platform::Conduit::Hvc, boards::platform::PsciVersion::V0_1)
    );
}

#[test]
fn long_paths_are_cut_in_errors() {
    let mut t = tree(VIRT);
    let name = "a-node-name-of-thirty-one-chars";
    let mut leaf = child("pl011@0", &[("compatible", b"arm,pl011\0"), ("reg", &cells(&[0]))]);
    for _ in 0..4 {
        let mut outer = child(name, &[("ranges", b""), ("#address-cells", &cells(&[1]))]);
        outer.add_child(leaf);
        leaf = outer;
    }
    t.root.add_child(leaf);
    // The PL011 comes first in tree order only if the real one is disabled.
    set_str(&mut t, "/pl011@9000000", "status", "disabled");
    unset(&mut t, "/chosen", "stdout-path");
    let e = error(&t);
    let DtError::BadProperty { node, .. } = e else { panic!("{e:?}") };
    assert!(node.is_truncated());
    assert!(node.to_string().ends_with("/..."));
    assert!(node.as_str().len() <= boards::dt::NODE_PATH_MAX);
}

#[test]
fn bootargs_from_chosen() {
    let mut t = tree(VIRT);
    set_str(&mut t, "/chosen", "bootargs", "bulkhead.selftest=a,b quiet");
    let blob = t.to_dtb();
    let p = discover(&blob).unwrap();
    assert_eq!(p.bootargs, Some("bulkhead.selftest=a,b quiet"));

    // QEMU writes no bootargs without -append.
    let blob = tree(VIRT).to_dtb();
    assert_eq!(discover(&blob).unwrap().bootargs, None);

    // Not a string: refused, naming the property.
    let mut t = tree(VIRT);
    set(&mut t, "/chosen", "bootargs", &[0x41, 0x42]);
    let (node, prop, _) = bad_property(error(&t));
    assert_eq!((node.as_str(), prop), ("/chosen", "bootargs"));
}
