//! QEMU `virt` (10.x) as Bulkhead runs it: EL2 (`virtualization=on`), GICv3,
//! and an SMMUv3 in front of the PCIe root bus (`iommu=smmuv3`).

use crate::board::{Board, QemuMachine, IMAGE_TEXT_OFFSET};
use crate::platform::{Irq, IrqKind, Region, Uart, UartKind};

/// Start of RAM (QEMU `hw/arm/virt.c` `VIRT_MEM`).
pub const RAM_BASE: u64 = 0x4000_0000;

/// The `virt` board.
pub const BOARD: Board = Board {
    name: "qemu-virt",
    compatible: &["linux,dummy-virt"],
    qemu: QemuMachine {
        binary: "qemu-system-aarch64",
        machine: "virt,virtualization=on,gic-version=3,iommu=smmuv3",
        cpu: Some("max"),
        // Four CPUs by default, so a configuration can give each of up to
        // four partitions its own (QEMU's default is one). `-smp` after `--`
        // replaces it; `cpus` below follows this value.
        smp: Some("4"),
        memory: "1G",
    },
    ram_base: RAM_BASE,
    load_address: RAM_BASE + IMAGE_TEXT_OFFSET,
    // An ELF gets x0 = 0 and finds the DTB at the start of RAM (QEMU docs,
    // "virt" bare-metal boot); an Image gets its address in x0.
    dtb_if_x0_is_zero: Some(RAM_BASE),
    // `pl011@9000000`, clocked by the 24 MHz `apb-pclk`, SPI 1 level-high.
    console: Uart {
        base: 0x0900_0000,
        size: 0x1000,
        kind: UartKind::Pl011,
        clock_hz: Some(24_000_000),
        irq: Some(Irq { kind: IrqKind::Spi, num: 1, flags: 4 }),
    },
    // Secondary CPUs start with PSCI CPU_ON.
    spin_table_release: &[],
    has_iommu: true,
    cpus: 4,
    // `-m 1G` is 0x4000_0000..0x8000_0000; the hypervisor keeps the first
    // 256 MiB (image at 0x4008_0000, the DTB QEMU puts at 0x4800_0000, the
    // heap after the image).
    partition_ram: &[Region { base: RAM_BASE + 0x1000_0000, size: 0x3000_0000 }],
    // QEMU's root-bus devices do not implement ACS.
    pci_functions_isolated: false,
};
