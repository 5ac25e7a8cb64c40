//! One test per rule (each checks the kind, the line and the message), the
//! examples under `examples/`, the hypervisor's queries, and a property test
//! that throws random and mutated TOML at the parser.

use super::alloc::{format, string::String, vec::Vec};
use super::*;
use crate::{qemu_virt, rpi4};
use proptest::prelude::*;
use std::vec;

const DEMO: &str = include_str!("../../../examples/qemu-virt-demo.toml");
const RPI4_TWO: &str = include_str!("../../../examples/rpi4-two.toml");
const RPI4_REFUSED: &str = include_str!("../../../examples/rpi4-dma-refused.toml");

/// A valid one-partition configuration on `board`, with `extra` added: its
/// keys (up to the first `[[`) to the partition, on line 6, and its tables at
/// the end, from line 9 (line 10 when there are keys).
fn base(board: &str, extra: &str) -> String {
    let host = if board == "rpi4" { "0x1000_0000" } else { "0x5000_0000" };
    let (keys, tables) = extra.split_at(extra.find("[[").unwrap_or(extra.len()));
    format!(
        "board = \"{board}\"\n\
         [[partition]]\n\
         name = \"p\"\n\
         cpus = [0]\n\
         kernel = \"builtin:demo\"\n\
         {keys}\
         [[partition.memory]]\n\
         host = {host}\n\
         size = \"16M\"\n\
         {tables}"
    )
}

fn errors(text: &str) -> Vec<ConfigError> {
    match Config::parse(text) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

/// The only error of `text`, which must be of `kind`, on `line`, with
/// `needle` in its message.
#[track_caller]
fn only(text: &str, kind: ErrorKind, line: u32, needle: &str) -> ConfigError {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "want one {kind:?}, got {errs:#?}\nin:\n{text}");
    let e = errs.into_iter().next().unwrap_or_else(|| unreachable!());
    assert_eq!(e.kind, kind, "{e}");
    assert_eq!(e.at.map(|a| a.line), Some(line), "{e}");
    assert!(e.message.contains(needle), "{:?} lacks {needle:?}", e.message);
    e
}

#[test]
fn base_is_valid() {
    for b in ["qemu-virt", "rpi4"] {
        let cfg = Config::parse(&base(b, "")).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(cfg.board.name, b);
        assert_eq!(cfg.partitions.len(), 1);
        let p = &cfg.partitions[0];
        assert_eq!(p.console, Console::Virtual);
        assert_eq!(p.fault_policy, FaultPolicy::Log);
        assert_eq!(p.memory[0].guest.0, p.memory[0].host.0, "guest defaults to host");
        assert_eq!(p.memory[0].size, 16 << 20);
    }
}

#[test]
fn demo_example_parses() {
    let cfg = Config::parse(DEMO).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(cfg.board, &qemu_virt::BOARD);
    let [owner, victim, greeter] = cfg.partitions.as_slice() else { panic!("three partitions") };
    assert_eq!(greeter.cpus, [2, 3]);
    assert_eq!(owner.name, "dma-owner");
    assert_eq!(owner.cpus, [0]);
    assert_eq!(owner.kernel, KernelSource::Builtin("demo".into()));
    assert!(owner.bootargs.as_deref().is_some_and(|a| a.starts_with("role=dma-owner peer=")));
    assert_eq!(owner.fault_policy, FaultPolicy::Log);
    assert_eq!(
        owner.memory,
        [MemRegion { guest: Ipa(0x4000_0000), host: PhysAddr(0x5000_0000), size: 64 << 20 }]
    );
    assert_eq!(owner.devices.len(), 1);
    assert_eq!(owner.devices[0].name, "edu0");
    assert_eq!(owner.devices[0].kind, DeviceKind::Pci(Bdf { bus: 0, dev: 1, func: 0 }));
    assert!(owner.devices[0].dma && !owner.devices[0].bounce);
    assert_eq!(victim.name, "victim");
    assert_eq!(victim.cpus, [1]);
    assert!(victim.bootargs.as_deref().is_some_and(|a| a.starts_with("role=victim")));
    assert_eq!(victim.memory[0].host, PhysAddr(0x5800_0000));
}

/// Every `examples/*.toml` parses, except the ones named `*-refused.toml`,
/// which must not.
#[test]
fn every_example_parses_unless_refused() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if !name.ends_with(".toml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let result = Config::parse(&text);
        if name.ends_with("-refused.toml") {
            assert!(result.is_err(), "{name} should be refused");
        } else {
            assert!(result.is_ok(), "{name}: {:#?}", result.err());
        }
        n += 1;
    }
    assert!(n >= 3, "examples found: {n}");
}

#[test]
fn rpi4_two_example_parses() {
    let cfg = Config::parse(RPI4_TWO).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(cfg.board, &rpi4::BOARD);
    assert_eq!(cfg.partitions.len(), 2);
    for p in &cfg.partitions {
        assert_eq!(p.console, Console::Virtual);
        assert!(p.devices.is_empty());
    }
    assert_eq!(cfg.partitions[1].fault_policy, FaultPolicy::Inject);
}

#[test]
fn rpi4_dma_example_is_refused_for_its_missing_iommu() {
    let errs = errors(RPI4_REFUSED);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert_eq!(errs[0].kind, ErrorKind::DmaWithoutIommu);
    assert_eq!(
        errs[0].message,
        "board rpi4 has no IOMMU: device \"emmc\" could DMA anywhere; set bounce = true to use bounce buffering"
    );
    // It points at `dma = true`.
    let line = RPI4_REFUSED.lines().position(|l| l.starts_with("dma = true")).map(|n| n as u32 + 1);
    assert_eq!(errs[0].at.map(|a| a.line), line);
    // With bounce buffering it is accepted.
    let fixed = format!("{RPI4_REFUSED}bounce = true\n");
    assert!(Config::parse(&fixed).is_ok(), "{:#?}", errors(&fixed));
}

#[test]
fn syntax_errors_have_locations() {
    let e = errors("board = \"qemu-virt\"\n[[partition]\nname = 1\n");
    assert!(!e.is_empty());
    assert_eq!(e[0].kind, ErrorKind::Syntax);
    assert_eq!(e[0].at.map(|a| a.line), Some(2), "{e:?}");
}

#[test]
fn wrong_types_are_reported() {
    only(&base("qemu-virt", "[[partition]]\nname = 7\n"), ErrorKind::Syntax, 10, "string");
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    only(&base("qemu-virt", "colour = \"red\"\n"), ErrorKind::UnknownKey, 6, "colour");
    only(&format!("extra = 1\n{}", base("qemu-virt", "")), ErrorKind::UnknownKey, 1, "extra");
    let dev = "[[partition.device]]\nname = \"d\"\npci = \"00:02.0\"\nspeed = 3\n";
    only(&base("qemu-virt", dev), ErrorKind::UnknownKey, 12, "speed");
}

#[test]
fn unknown_board() {
    let e = only(&base("pc", ""), ErrorKind::UnknownBoard, 1, "\"pc\"");
    assert!(e.message.contains("qemu-virt, rpi4"), "{e}");
    assert_eq!(e.at, Some(Location { line: 1, col: 9 }));
}

#[test]
fn missing_board_and_partitions() {
    let e = errors("");
    assert_eq!(e.iter().map(|e| e.kind).collect::<Vec<_>>(), [ErrorKind::Missing, ErrorKind::NoPartitions]);
    only("board = \"rpi4\"\n", ErrorKind::NoPartitions, 1, "[[partition]]");
}

#[test]
fn kernel_missing() {
    let text = "board = \"rpi4\"\n[[partition]]\nname = \"p\"\ncpus = [0]\n[[partition.memory]]\nhost = 0x1000_0000\nsize = \"4K\"\n";
    only(text, ErrorKind::Missing, 2, "has no `kernel`");
}

#[test]
fn bad_kernels() {
    let t = base("qemu-virt", "").replace("builtin:demo", "builtin:");
    only(&t, ErrorKind::BadValue, 5, "built-in guest");
    let t = base("qemu-virt", "").replace("builtin:demo", "");
    only(&t, ErrorKind::BadValue, 5, "empty");
    let t = base("qemu-virt", "").replace("builtin:demo", "guests/linux.img");
    let cfg = Config::parse(&t).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(cfg.partitions[0].kernel, KernelSource::Path("guests/linux.img".into()));
}

#[test]
fn duplicate_partition_names() {
    let second = "[[partition]]\nname = \"p\"\ncpus = [1]\nkernel = \"builtin:demo\"\n[[partition.memory]]\nhost = 0x6000_0000\nsize = \"4K\"\n";
    let e = only(&base("qemu-virt", second), ErrorKind::DuplicateName, 10, "\"p\"");
    assert!(e.message.contains("line 3"), "{e}");
}

#[test]
fn duplicate_device_names() {
    let devs = "[[partition.device]]\nname = \"d\"\npci = \"00:01.0\"\n[[partition.device]]\nname = \"d\"\npci = \"00:02.0\"\n";
    only(&base("qemu-virt", devs), ErrorKind::DuplicateName, 13, "device name \"d\"");
}

#[test]
fn bad_name_chars() {
    let t = base("qemu-virt", "").replace("name = \"p\"", "name = \"Web Server\"");
    only(&t, ErrorKind::BadName, 3, "\"Web Server\"");
    let t = base("qemu-virt", "").replace("name = \"p\"", &format!("name = \"{}\"", "a".repeat(32)));
    only(&t, ErrorKind::BadName, 3, "1 to 31");
    let t = base("qemu-virt", "").replace("name = \"p\"", "name = \"\"");
    only(&t, ErrorKind::BadName, 3, "a-z");
    only(
        &base("qemu-virt", "[[partition.device]]\nname = \"Edu\"\npci = \"00:01.0\"\n"),
        ErrorKind::BadName,
        10,
        "Edu",
    );
}

#[test]
fn zero_cpus() {
    let t = base("qemu-virt", "").replace("cpus = [0]", "cpus = []");
    only(&t, ErrorKind::NoCpus, 4, "no CPUs");
}

#[test]
fn cpu_beyond_the_board() {
    let t = base("rpi4", "").replace("cpus = [0]", "cpus = [0, 4]");
    let e = only(&t, ErrorKind::CpuOutOfRange, 4, "CPU 4");
    assert!(e.message.contains("board rpi4 has CPUs 0..=3"), "{e}");
    assert_eq!(e.at.map(|a| a.col), Some(12));
    let t = base("qemu-virt", "").replace("cpus = [0]", "cpus = [4]");
    only(&t, ErrorKind::CpuOutOfRange, 4, "0..=3");
    let t = base("qemu-virt", "").replace("cpus = [0]", "cpus = [-1]");
    only(&t, ErrorKind::BadValue, 4, "-1");
}

#[test]
fn cpu_in_two_partitions() {
    let second = "[[partition]]\nname = \"q\"\ncpus = [0]\nkernel = \"builtin:demo\"\n[[partition.memory]]\nhost = 0x6000_0000\nsize = \"4K\"\n";
    let e = only(&base("qemu-virt", second), ErrorKind::CpuShared, 11, "CPU 0");
    assert!(e.message.contains("\"q\"") && e.message.contains("\"p\""), "{e}");
    let t = base("qemu-virt", "").replace("cpus = [0]", "cpus = [1, 1]");
    only(&t, ErrorKind::CpuShared, 4, "listed twice");
}

#[test]
fn memory_alignment_size_and_overflow() {
    let t = base("qemu-virt", "").replace("host = 0x5000_0000", "host = 0x5000_0800");
    only(&t, ErrorKind::Misaligned, 7, "0x50000800");
    let t = base("qemu-virt", "").replace("\"16M\"", "100");
    only(&t, ErrorKind::Misaligned, 8, "size 0x64");
    let t = base("qemu-virt", "").replace("host = 0x5000_0000", "host = 0x5000_0000\nguest = 0x123");
    only(&t, ErrorKind::Misaligned, 8, "guest base 0x123");
    let t = base("qemu-virt", "").replace("\"16M\"", "0");
    only(&t, ErrorKind::ZeroSize, 8, "size 0");
    let t = base("qemu-virt", "").replace("host = 0x5000_0000", "host = \"0xffff_ffff_ffff_f000\"");
    only(&t, ErrorKind::Overflow, 6, "top of the address space");
    let t = base("qemu-virt", "").replace("\"16M\"", "\"16Q\"");
    only(&t, ErrorKind::BadValue, 8, "\"16Q\"");
    let t = base("qemu-virt", "").replace("size = \"16M\"\n", "");
    only(&t, ErrorKind::Missing, 6, "no `size`");
}

#[test]
fn no_memory() {
    let t = "board = \"rpi4\"\n[[partition]]\nname = \"p\"\ncpus = [0]\nkernel = \"builtin:demo\"\n";
    only(t, ErrorKind::NoMemory, 2, "no memory");
}

#[test]
fn host_memory_overlaps() {
    let within = "[[partition.memory]]\nguest = 0x8000_0000\nhost = 0x5080_0000\nsize = \"16M\"\n";
    let e = only(&base("qemu-virt", within), ErrorKind::HostOverlap, 11, "its own host memory");
    assert!(e.message.contains("0x50800000..0x51800000"), "{e}");
    let across = "[[partition]]\nname = \"q\"\ncpus = [1]\nkernel = \"builtin:demo\"\n[[partition.memory]]\nhost = 0x50ff_f000\nsize = \"4K\"\n";
    let e = only(&base("qemu-virt", across), ErrorKind::HostOverlap, 14, "\"p\"'s host memory");
    assert!(e.message.contains("line 7"), "{e}");
}

#[test]
fn guest_memory_overlaps_within_a_partition() {
    let second = "[[partition.memory]]\nguest = 0x5000_1000\nhost = 0x6000_0000\nsize = \"4K\"\n";
    only(&base("qemu-virt", second), ErrorKind::GuestOverlap, 10, "overlaps its guest memory");
    // The same guest addresses in two partitions are fine (the demo does it).
    assert!(Config::parse(DEMO).is_ok());
}

#[test]
fn host_memory_outside_partition_ram() {
    // The hypervisor's own 256 MiB.
    let t = base("qemu-virt", "").replace("0x5000_0000", "0x4800_0000");
    let e = only(&t, ErrorKind::OutsidePartitionRam, 7, "board qemu-virt");
    assert!(e.message.contains("0x50000000..0x80000000"), "{e}");
    // Past the end of RAM.
    let t = base("qemu-virt", "").replace("0x5000_0000", "0x7ff0_0000");
    only(&t, ErrorKind::OutsidePartitionRam, 7, "0x7ff00000..0x80f00000");
    let t = base("rpi4", "").replace("0x1000_0000", "0x3c00_0000");
    only(&t, ErrorKind::OutsidePartitionRam, 7, "0x10000000..0x3c000000");
}

#[test]
fn pci_function_in_two_partitions() {
    let t = format!(
        "{}[[partition.device]]\nname = \"a\"\npci = \"00:01.0\"\n\
         [[partition]]\nname = \"q\"\ncpus = [1]\nkernel = \"builtin:demo\"\n\
         [[partition.memory]]\nhost = 0x6000_0000\nsize = \"4K\"\n\
         [[partition.device]]\nname = \"b\"\npci = \"0000:00:01.0\"\n",
        base("qemu-virt", "")
    );
    let e = only(&t, ErrorKind::PciShared, 21, "00:01.0");
    assert!(e.message.contains("device \"a\" of partition \"p\""), "{e}");
}

#[test]
fn iommu_group_split() {
    let t = format!(
        "{}[[partition.device]]\nname = \"f0\"\npci = \"00:03.0\"\n\
         [[partition]]\nname = \"q\"\ncpus = [1]\nkernel = \"builtin:demo\"\n\
         [[partition.memory]]\nhost = 0x6000_0000\nsize = \"4K\"\n\
         [[partition.device]]\nname = \"f1\"\npci = \"00:03.1\"\n",
        base("qemu-virt", "")
    );
    let e = only(&t, ErrorKind::IommuGroupSplit, 21, "IOMMU group");
    assert!(e.message.contains("\"f0\" (00:03.0)") && e.message.contains("board qemu-virt"), "{e}");
    // Both functions in one partition: fine.
    let one = base("qemu-virt", "[[partition.device]]\nname = \"f0\"\npci = \"00:03.0\"\n[[partition.device]]\nname = \"f1\"\npci = \"00:03.1\"\n");
    assert!(Config::parse(&one).is_ok(), "{:?}", errors(&one));
    // The rule.
    let mut isolated = qemu_virt::BOARD;
    isolated.pci_functions_isolated = true;
    let a = Bdf { bus: 0, dev: 3, func: 0 };
    let b = Bdf { bus: 0, dev: 3, func: 1 };
    assert_eq!(iommu_group_of(&qemu_virt::BOARD, a), iommu_group_of(&qemu_virt::BOARD, b));
    assert_ne!(iommu_group_of(&isolated, a), iommu_group_of(&isolated, b));
    assert_ne!(
        iommu_group_of(&qemu_virt::BOARD, a),
        iommu_group_of(&qemu_virt::BOARD, Bdf { bus: 0, dev: 4, func: 0 })
    );
}

fn mmio_dev(name: &str, base: &str, size: &str, irqs: &str) -> String {
    format!("[[partition.device]]\nname = \"{name}\"\nmmio = [{{ base = {base}, size = {size} }}]\nirqs = [{irqs}]\n")
}

#[test]
fn mmio_overlaps() {
    // Two devices in one page.
    let t = base(
        "rpi4",
        &format!(
            "{}{}",
            mmio_dev("a", "0xfe20_4000", "0x100", "150"),
            mmio_dev("b", "0xfe20_4800", "0x100", "151")
        ),
    );
    let e = only(&t, ErrorKind::MmioOverlap, 15, "device \"a\"");
    assert!(e.message.contains("pages are given whole"), "{e}");
    // Partition RAM and the hypervisor's RAM.
    let t = base("rpi4", &mmio_dev("a", "0x2000_0000", "0x1000", "150"));
    only(&t, ErrorKind::MmioOverlap, 11, "partition RAM");
    let t = base("qemu-virt", &mmio_dev("a", "0x4000_0000", "0x1000", "40"));
    only(&t, ErrorKind::MmioOverlap, 11, "the hypervisor's RAM");
    // The hypervisor's console.
    let t = base("rpi4", &mmio_dev("uart", "0xfe20_1000", "0x200", "150"));
    only(&t, ErrorKind::MmioOverlap, 11, "console UART at 0xfe201000");
    // Zero-sized.
    let t = base("rpi4", &mmio_dev("a", "0xfe20_4000", "0", "150"));
    only(&t, ErrorKind::ZeroSize, 11, "size 0");
}

#[test]
fn mmio_inside_the_partitions_guest_ram() {
    let t = base("qemu-virt", "").replace("host = 0x5000_0000", "host = 0x5000_0000\nguest = 0x0a00_0000");
    let t = format!("{t}{}", mmio_dev("v", "0x0a00_0000", "0x200", "48"));
    only(&t, ErrorKind::GuestOverlap, 12, "mapped at its own address");
}

#[test]
fn irq_given_twice_or_not_an_spi() {
    let t = base(
        "rpi4",
        &format!(
            "{}{}",
            mmio_dev("a", "0xfe20_4000", "0x100", "150"),
            mmio_dev("b", "0xfe20_5000", "0x100", "150")
        ),
    );
    let e = only(&t, ErrorKind::BadIrq, 16, "interrupt 150");
    assert!(e.message.contains("\"a\""), "{e}");
    let t = base("rpi4", &mmio_dev("a", "0xfe20_4000", "0x100", "150, 150"));
    only(&t, ErrorKind::BadIrq, 12, "already given to device \"a\"");
    let t = base("rpi4", &mmio_dev("a", "0xfe20_4000", "0x100", "27"));
    only(&t, ErrorKind::BadIrq, 12, "not an SPI");
    let t = base("rpi4", &mmio_dev("a", "0xfe20_4000", "0x100", "153"));
    only(&t, ErrorKind::BadIrq, 12, "console interrupt");
}

#[test]
fn dma_without_iommu() {
    let t = base("rpi4", "[[partition.device]]\nname = \"xhci\"\npci = \"01:00.0\"\n");
    only(&t, ErrorKind::DmaWithoutIommu, 11, "board rpi4 has no IOMMU: device \"xhci\" could DMA anywhere");
    let t = base("rpi4", &format!("{}dma = true\n", mmio_dev("emmc", "0xfe34_0000", "0x100", "158")));
    only(&t, ErrorKind::DmaWithoutIommu, 13, "set bounce = true");
    // An MMIO DMA master on qemu-virt: its SMMU is set up for PCI only.
    let t = base("qemu-virt", &format!("{}dma = true\n", mmio_dev("vio", "0x0a00_0000", "0x200", "48")));
    only(&t, ErrorKind::DmaWithoutIommu, 13, "only set up for PCI");
    // PCI on qemu-virt is behind the SMMU.
    assert!(
        Config::parse(&base("qemu-virt", "[[partition.device]]\nname = \"e\"\npci = \"00:01.0\"\n")).is_ok()
    );
    // Bounce without DMA is a mistake.
    let t = base("rpi4", &format!("{}bounce = true\n", mmio_dev("gpio", "0xfe20_0000", "0x100", "145")));
    only(&t, ErrorKind::BadDevice, 13, "does not master DMA");
}

#[test]
fn device_shapes() {
    only(&base("rpi4", "[[partition.device]]\nname = \"x\"\n"), ErrorKind::BadDevice, 9, "neither");
    let both = "[[partition.device]]\nname = \"x\"\npci = \"00:01.0\"\nmmio = [{ base = 0xfe20_4000, size = 0x100 }]\n";
    only(&base("qemu-virt", both), ErrorKind::BadDevice, 12, "both");
    let t = base("qemu-virt", "[[partition.device]]\nname = \"x\"\npci = \"00:01.0\"\ndma = false\n");
    only(&t, ErrorKind::BadDevice, 12, "always master DMA");
    let t = base("qemu-virt", "[[partition.device]]\nname = \"x\"\npci = \"00:41.0\"\n");
    only(&t, ErrorKind::BadValue, 11, "device number");
    let t = base("qemu-virt", "[[partition.device]]\nname = \"x\"\npci = \"00:01.0\"\nirqs = [40]\n");
    only(&t, ErrorKind::BadDevice, 12, "`irqs` is for MMIO");
    let t = base("rpi4", "[[partition.device]]\nname = \"x\"\nmmio = []\n");
    only(&t, ErrorKind::BadDevice, 9, "no region");
}

#[test]
fn console_must_be_an_assigned_uart() {
    let t = base("rpi4", "console = \"uart3\"\n");
    only(&t, ErrorKind::BadConsole, 6, "\"uart3\" is neither \"virtual\" nor a device of this partition");
    let t = base("rpi4", &format!("console = \"gpio\"\n{}", mmio_dev("gpio", "0xfe20_0000", "0x100", "145")));
    only(&t, ErrorKind::BadConsole, 6, "not a UART");
    let t = base(
        "rpi4",
        &format!(
            "console = \"uart3\"\n{}uart = \"pl011\"\n",
            mmio_dev("uart3", "0xfe20_1600", "0x200", "153")
        ),
    );
    // 0xfe20_1600 shares the console's page (0xfe20_1000), and SPI 121 is the
    // console's: pick UART3's own page instead.
    assert!(errors(&t).iter().any(|e| e.kind == ErrorKind::MmioOverlap));
    let t = base(
        "rpi4",
        &format!(
            "console = \"uart3\"\n{}uart = \"pl011\"\n",
            mmio_dev("uart3", "0xfe20_3000", "0x200", "154")
        ),
    );
    let cfg = Config::parse(&t).unwrap_or_else(|e| panic!("{e:#?}"));
    assert_eq!(cfg.partitions[0].console, Console::Device("uart3".into()));
    // A UART of another partition does not count.
    let t = format!(
        "{}[[partition]]\nname = \"q\"\ncpus = [1]\nkernel = \"builtin:demo\"\nconsole = \"u\"\n\
         [[partition.memory]]\nhost = 0x2000_0000\nsize = \"4K\"\n",
        base("rpi4", &format!("{}uart = \"pl011\"\n", mmio_dev("u", "0xfe20_3000", "0x200", "154")))
    );
    only(&t, ErrorKind::BadConsole, 18, "\"u\"");
}

#[test]
fn fault_policies() {
    for (s, want) in [
        ("log", FaultPolicy::Log),
        ("stop-partition", FaultPolicy::StopPartition),
        ("inject", FaultPolicy::Inject),
    ] {
        let cfg = Config::parse(&base("rpi4", &format!("fault_policy = \"{s}\"\n")))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(cfg.partitions[0].fault_policy, want);
    }
    only(&base("rpi4", "fault_policy = \"reboot\"\n"), ErrorKind::BadValue, 6, "\"reboot\"");
}

#[test]
fn bootargs_limits() {
    let long = "x".repeat(MAX_BOOTARGS + 1);
    only(&base("rpi4", &format!("bootargs = \"{long}\"\n")), ErrorKind::BadValue, 6, "2048 bytes given");
    only(&base("rpi4", "bootargs = \"a\\u0000b\"\n"), ErrorKind::BadValue, 6, "without NUL");
}

#[test]
fn every_error_is_reported_in_file_order() {
    let text = "board = \"rpi4\"\n\
        [[partition]]\n\
        name = \"A\"\n\
        cpus = [7]\n\
        kernel = \"builtin:demo\"\n\
        [[partition.memory]]\n\
        host = 0x1000_0001\n\
        size = \"4K\"\n\
        [[partition]]\n\
        name = \"b\"\n\
        cpus = [0]\n\
        wat = 1\n";
    let e = errors(text);
    let kinds: Vec<(ErrorKind, u32)> = e.iter().map(|e| (e.kind, e.at.map_or(0, |a| a.line))).collect();
    assert_eq!(
        kinds,
        [
            (ErrorKind::BadName, 3),
            (ErrorKind::CpuOutOfRange, 4),
            (ErrorKind::Misaligned, 7),
            (ErrorKind::UnknownKey, 12)
        ],
        "{e:#?}"
    );
    assert_eq!(format!("{}", e[1]).split(':').take(2).collect::<Vec<_>>(), ["4", "9"]);
}

#[test]
fn check_files_names_the_missing_one() {
    let t = base("rpi4", "initramfs = \"rd.img\"\n").replace("builtin:demo", "vmlinux");
    let cfg = Config::parse(&t).unwrap_or_else(|e| panic!("{e:?}"));
    let errs = cfg.check_files(|p| p == "vmlinux");
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].kind, ErrorKind::FileNotFound);
    assert_eq!(errs[0].at.map(|a| a.line), Some(6));
    assert!(cfg.check_files(|_| true).is_empty());
}

#[test]
fn queries() {
    let cfg = Config::parse(DEMO).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(cfg.partition_of_cpu(0).map(|(i, p)| (i, p.name.as_str())), Some((0, "dma-owner")));
    assert_eq!(cfg.partition_of_cpu(1).map(|(i, _)| i), Some(1));
    assert_eq!(cfg.partition_of_cpu(2).map(|(i, _)| i), Some(2));
    assert!(cfg.partition_of_cpu(4).is_none());
    let edu = Bdf { bus: 0, dev: 1, func: 0 };
    assert_eq!(cfg.owner_of_pci(edu).map(|(i, _, d)| (i, d.name.as_str())), Some((0, "edu0")));
    assert!(cfg.owner_of_pci(Bdf { bus: 0, dev: 2, func: 0 }).is_none());
    assert_eq!(cfg.partition("victim").map(|(i, _)| i), Some(1));
    let owner = &cfg.partitions[0];
    assert_eq!(owner.ipa_to_pa(Ipa(0x4000_0000)), Some(PhysAddr(0x5000_0000)));
    assert_eq!(owner.ipa_to_pa(Ipa(0x43ff_ffff)), Some(PhysAddr(0x53ff_ffff)));
    assert_eq!(owner.ipa_to_pa(Ipa(0x4400_0000)), None);
    assert_eq!(owner.ipa_to_pa(Ipa(0x3fff_ffff)), None);
    assert_eq!(owner.pa_range(Ipa(0x4000_1000), 0x2000), Some(PhysAddr(0x5000_1000)..PhysAddr(0x5000_3000)));
    assert_eq!(owner.pa_range(Ipa(0x43ff_f000), 0x2000), None, "runs off the region");
    assert_eq!(owner.pa_range(Ipa(0x4000_0000), 0), None);
    assert_eq!(owner.pa_range(Ipa(u64::MAX), 2), None);
    assert!(owner.owns_pa(PhysAddr(0x5000_0000), 64 << 20));
    assert!(!owner.owns_pa(PhysAddr(0x5800_0000), 1));
    assert_eq!(cfg.owner_of_pa(PhysAddr(0x5800_0000), 0x1000).map(|(i, _)| i), Some(1));
    assert_eq!(owner.memory_bytes(), 64 << 20);
}

#[test]
fn a_config_built_in_code_is_validated_without_locations() {
    let p = Partition {
        name: "x".into(),
        cpus: Vec::from([0, 0]),
        kernel: KernelSource::Builtin("demo".into()),
        initramfs: None,
        bootargs: None,
        console: Console::Virtual,
        fault_policy: FaultPolicy::Log,
        memory: Vec::from([MemRegion { guest: Ipa(0), host: PhysAddr(0x1000_0000), size: 0x1000 }]),
        devices: Vec::new(),
    };
    let cfg = Config::new(&rpi4::BOARD, Vec::from([p]));
    let e = cfg.validate().err().unwrap_or_default();
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].kind, ErrorKind::CpuShared);
    assert_eq!(e[0].at, None);
    assert!(Config::new(&rpi4::BOARD, Vec::new()).validate().is_err());
    // Equality ignores where a configuration was written.
    let parsed = Config::parse(RPI4_TWO).unwrap_or_else(|e| panic!("{e:?}"));
    let rebuilt = Config::new(parsed.board, parsed.partitions.clone());
    assert_eq!(parsed, rebuilt);
    assert!(rebuilt.validate().is_ok());
}

/// Fragments a mutated configuration is spliced from.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::from("[[partition]]\n")),
        Just(String::from("[[partition.memory]]\n")),
        Just(String::from("[[partition.device]]\n")),
        Just(String::from("name = \"p\"\n")),
        Just(String::from("cpus = [0, 1, 99, -3]\n")),
        Just(String::from("host = \"0xffff_ffff_ffff_f000\"\n")),
        Just(String::from("size = \"16E\"\n")),
        Just(String::from("guest = -4096\n")),
        Just(String::from("pci = \"ff:1f.7\"\n")),
        Just(String::from("mmio = [{ base = 0xfe20_1000, size = 0xffff_ffff_ffff }]\n")),
        Just(String::from("irqs = [0, 1019, 1020, -1]\n")),
        Just(String::from("console = \"p\"\n")),
        Just(String::from("board = \"rpi4\"\n")),
        Just(String::from("x = { a = [[[[[[1]]]]]] }\n")),
        "[ -~\n]{0,40}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary text never panics.
    #[test]
    fn random_text_never_panics(text in "\\PC{0,300}") {
        let _ = Config::parse(&text).map(|c| c.validate());
    }

    /// Examples with bytes replaced, deleted or spliced never panic, and
    /// every error but syntax errors has a location.
    #[test]
    fn mutated_examples_never_panic(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..4, fragment()), 1..6),
    ) {
        let mut text = String::from([DEMO, RPI4_TWO, RPI4_REFUSED][which]);
        for (at, op, frag) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) {
                i -= 1;
            }
            match op {
                0 => text.insert_str(i, &frag),
                1 => {
                    let end = text[i..].char_indices().nth(frag.len() % 17).map_or(text.len(), |(n, _)| i + n);
                    text.replace_range(i..end, "");
                }
                2 => {
                    let end = text[i..].find('\n').map_or(text.len(), |n| i + n);
                    text.replace_range(i..end, frag.trim_end());
                }
                _ => text.push_str(&frag),
            }
        }
        match Config::parse(&text) {
            Ok(cfg) => prop_assert!(cfg.validate().is_ok()),
            Err(errs) => {
                prop_assert!(!errs.is_empty());
                for e in &errs {
                    prop_assert!(e.at.is_some() || e.kind == ErrorKind::Syntax, "{e:?}");
                }
            }
        }
    }
}
