//! Raspberry Pi 4 Model B (BCM2711), real or QEMU `raspi4b`. It has no SMMU,
//! and its PCIe (the USB controller) reaches only the first 3 GiB of RAM.

use crate::board::{Board, QemuMachine, IMAGE_TEXT_OFFSET};
use crate::platform::{Irq, IrqKind, Region, Uart, UartKind};

/// The `raspi4b` / Pi 4 board.
pub const BOARD: Board = Board {
    name: "rpi4",
    compatible: &["raspberrypi,4-model-b", "brcm,bcm2711"],
    qemu: QemuMachine {
        binary: "qemu-system-aarch64",
        // The CPU is fixed (Cortex-A72), and QEMU 10.0 refuses any -m but 2G
        // ("Invalid RAM size, should be 2 GiB").
        machine: "raspi4b",
        cpu: None,
        // Four Cortex-A72s, fixed.
        smp: None,
        memory: "2G",
    },
    ram_base: 0,
    // QEMU loads an Image at its text_offset; the firmware loads kernel8.img
    // at `kernel_address` (0x80000 by default with `arm_64bit=1`).
    load_address: IMAGE_TEXT_OFFSET,
    // Both QEMU and the firmware pass the DTB in x0 (QEMU: 0x100).
    dtb_if_x0_is_zero: None,
    // PL011 UART0 (`/soc/serial@7e201000`, bus address 0x7e20_1000 behind
    // `/soc` ranges), SPI 121. Its DT clock comes from `cprman`, a clock
    // controller, so the rate is not in the DT: 48 MHz is the firmware's
    // default `init_uart_clock`.
    console: Uart {
        base: 0xfe20_1000,
        size: 0x200,
        kind: UartKind::Pl011,
        clock_hz: Some(48_000_000),
        irq: Some(Irq { kind: IrqKind::Spi, num: 121, flags: 4 }),
    },
    // The armstub's spin table, one 64-bit slot per core.
    spin_table_release: &[0xd8, 0xe0, 0xe8, 0xf0],
    has_iommu: false,
    cpus: 4,
    // The DT a Pi 4 boots with under QEMU's raspi4b describes 960 MiB at 0
    // (0..0x3c00_0000). The hypervisor keeps the first 256 MiB (image at
    // 0x8_0000, DTB at 0x800_0000, heap after the image).
    partition_ram: &[Region { base: 0x1000_0000, size: 0x2c00_0000 }],
    // The Pi's one PCIe device (the VL805 USB controller) is single-function.
    pci_functions_isolated: false,
};
