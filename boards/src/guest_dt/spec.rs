//! What a partition's device tree says: plain data borrowed from the caller
//! (no heap), checked by [`super::generate`] before anything is written.
//!
//! Addresses are guest-physical (IPAs). Interrupts use the [`Irq`] type that
//! [`crate::discover`] returns, so a generated tree read back compares equal
//! to its spec.

use crate::platform::{Irq, IrqKind, PciWindow, Region, Timer};

/// GIC trigger flag (low 4 bits of a specifier's third cell): rising edge.
pub const IRQ_EDGE_RISING: u32 = 1;
/// GIC trigger flag: active-high level.
pub const IRQ_LEVEL_HIGH: u32 = 4;

/// Shared peripheral interrupt `num` (INTID 32 + `num`) with `flags`.
pub const fn spi(num: u32, flags: u32) -> Irq {
    Irq { kind: IrqKind::Spi, num, flags }
}

/// Private peripheral interrupt `num` (INTID 16 + `num`) with `flags`.
pub const fn ppi(num: u32, flags: u32) -> Irq {
    Irq { kind: IrqKind::Ppi, num, flags }
}

/// The generic timer's PPIs at the INTIDs the Arm BSA recommends (secure 29,
/// non-secure 30, virtual 27, hypervisor 26), all with `flags`. On GICv2 put
/// the CPU mask in bits 15:8 of `flags` (for one vCPU, `0x100 |
/// IRQ_LEVEL_HIGH`).
pub const fn arch_timer(flags: u32) -> Timer {
    Timer {
        secure_phys: ppi(13, flags),
        phys: ppi(14, flags),
        virt: ppi(11, flags),
        hyp_phys: ppi(10, flags),
        hyp_virt: None,
    }
}

/// A partition's machine, as its own device tree will describe it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GuestDt<'a> {
    /// Root `model`.
    pub model: &'a str,
    /// Root `compatible`, most specific first (`["linux,dummy-virt"]` for a
    /// `virt`-like guest).
    pub compatible: &'a [&'a str],
    /// RAM, one `/memory@` node per region. Must not be empty.
    pub memory: &'a [Region],
    /// vCPU count: CPUs with MPIDR Aff0 `0..cpus`, started with PSCI
    /// `CPU_ON`. 1..=8 on GICv2, 1..=16 on GICv3 (one Aff0 target list).
    pub cpus: u32,
    /// The interrupt controller the guest sees.
    pub gic: GuestGic,
    /// The architected timer's PPIs (`hyp_virt`, if set, is listed fifth).
    pub timer: Timer,
    /// The console, if the partition has one.
    pub uart: Option<Pl011>,
    /// A PCIe host bridge with the partition's assigned devices, if any.
    pub pcie: Option<Pcie<'a>>,
    /// `/chosen`.
    pub chosen: Chosen<'a>,
    /// `/reserved-memory` children, each `no-map`: RAM the guest must not
    /// use, such as a page shared with the hypervisor for fault records. Each
    /// must lie inside one `memory` region.
    pub reserved: &'a [Reserved<'a>],
}

/// The GIC as the guest sees it. No ITS, no GICv2m frame: the guest gets no
/// MSI controller, so its devices use INTx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GuestGic {
    /// `arm,gic-v3`.
    V3 {
        /// GICD.
        dist: Region,
        /// One GICR region, 128 KiB (RD + SGI frame) per vCPU.
        redist: Region,
    },
    /// `arm,cortex-a15-gic`.
    V2 {
        /// GICD.
        dist: Region,
        /// Where the guest finds its CPU interface: the GICV frame, mapped at
        /// the guest's GICC address.
        cpu: Region,
    },
}

/// A PL011 console (Linux `serial/arm,pl011.yaml`), with a fixed clock as
/// both `uartclk` and `apb_pclk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pl011 {
    /// Register block.
    pub regs: Region,
    /// Its interrupt: an SPI.
    pub irq: Irq,
    /// Reference clock rate in Hz.
    pub clock_hz: u32,
}

/// A generic ECAM host bridge (Linux `pci/host-generic-pci.yaml`). It has no
/// `msi-map`, `msi-parent` or `iommu-map`: the guest must not see the SMMU or
/// the ITS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Pcie<'a> {
    /// Configuration space, 1 MiB per bus of `bus_range`.
    pub ecam: Region,
    /// First and last bus number.
    pub bus_range: (u8, u8),
    /// I/O and memory windows (`ranges`). `cpu_addr` and `size` are IPAs.
    pub windows: &'a [PciWindow],
    /// Legacy interrupt routing, if any device uses INTx.
    pub intx: Option<Intx<'a>>,
    /// `dma-coherent`: device DMA snoops the guest's caches.
    pub dma_coherent: bool,
}

/// How INTx pins reach the GIC (`interrupt-map`, DT spec §2.4.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Intx<'a> {
    /// QEMU `virt`'s swizzle: pin P (INTA = 0) of device D raises
    /// `first.num + (D + P) % 4`, for INTA..INTD of each listed device on any
    /// bus (mask: device number and pin).
    Swizzle {
        /// Device numbers (0..=31) to route.
        devices: &'a [u8],
        /// The SPI of INTA on device 0 (and its flags); the next three SPIs
        /// are used too.
        first: Irq,
    },
    /// Explicit routes, matched on bus, device, function and pin.
    Map(&'a [IntxEntry]),
}

/// One explicit INTx route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IntxEntry {
    /// Bus (15:8), device (7:3) and function (2:0).
    pub bdf: u16,
    /// 1 = INTA .. 4 = INTD.
    pub pin: u8,
    /// The SPI it raises.
    pub irq: Irq,
}

/// `/chosen` (DT spec §3.6). `stdout-path` is set to the PL011, if any.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Chosen<'a> {
    /// The kernel command line.
    pub bootargs: Option<&'a str>,
    /// Where the loader put the initramfs (`linux,initrd-start` / `-end`);
    /// must lie inside one `memory` region.
    pub initrd: Option<Region>,
}

/// A `/reserved-memory` child with `no-map`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Reserved<'a> {
    /// Node name without the unit address (`"bulkhead-faults"`); the node is
    /// `<name>@<base>`.
    pub name: &'a str,
    /// The region.
    pub region: Region,
}
