//! The typed description of a discovered machine: what [`crate::dt::discover`]
//! returns. Every list has a fixed capacity (no heap: this runs before the
//! hypervisor has one); a device tree with more entries than a list holds is an
//! error ([`crate::DtError::TooMany`]), not a silent truncation.
//!
//! Addresses here are CPU physical addresses: `reg` values have already been
//! translated through every parent bus's `ranges` (DT spec v0.4 §2.3.8).

use heapless::Vec;

/// Memory regions kept from the `/memory*` nodes.
pub const MAX_MEMORY: usize = 8;
/// Reserved regions kept (`/memreserve/` entries plus `/reserved-memory` children).
pub const MAX_RESERVED: usize = 16;
/// CPUs kept from `/cpus`.
pub const MAX_CPUS: usize = 16;
/// GICv3 redistributor regions kept.
pub const MAX_REDISTS: usize = 4;
/// SMMUv3 instances kept.
pub const MAX_SMMUS: usize = 2;
/// PCIe ECAM host bridges kept.
pub const MAX_PCIE: usize = 2;
/// Address windows kept per host bridge (`ranges` entries).
pub const MAX_PCI_WINDOWS: usize = 4;
/// `iommu-map` / `msi-map` entries kept per host bridge.
pub const MAX_ID_MAP: usize = 4;
/// Legacy INTx routes kept per host bridge (`interrupt-map` entries).
pub const MAX_INTX: usize = 16;

/// A range of CPU physical addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Region {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
}

/// A region of RAM from a `/memory*` node.
pub type MemRegion = Region;

impl Region {
    /// One past the last byte, or `None` if the region ends at the top of the
    /// 64-bit space (discovery rejects regions that would wrap).
    pub const fn end(&self) -> Option<u64> {
        self.base.checked_add(self.size)
    }

    /// Whether `addr` lies inside the region.
    pub const fn contains(&self, addr: u64) -> bool {
        addr >= self.base && addr - self.base < self.size
    }
}

/// The `compatible` strings of a node, in order (a DT `stringlist`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StrList<'dt> {
    raw: &'dt [u8],
}

impl<'dt> StrList<'dt> {
    /// An empty list.
    pub const EMPTY: Self = Self { raw: &[] };

    pub(crate) const fn new(raw: &'dt [u8]) -> Self {
        Self { raw }
    }

    /// The strings, in order. Stops at the first string that is not valid
    /// UTF-8 or not NUL-terminated.
    pub fn iter(&self) -> impl Iterator<Item = &'dt str> + 'dt {
        let mut rest = self.raw;
        core::iter::from_fn(move || {
            let nul = rest.iter().position(|&b| b == 0)?;
            let s = core::str::from_utf8(&rest[..nul]).ok()?;
            rest = &rest[nul + 1..];
            Some(s)
        })
    }

    /// Whether `s` is one of the strings.
    pub fn contains(&self, s: &str) -> bool {
        self.iter().any(|c| c == s)
    }
}

impl core::fmt::Debug for StrList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for StrList<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "[");
        for (i, s) in self.iter().enumerate() {
            if i > 0 {
                defmt::write!(f, ", ");
            }
            defmt::write!(f, "{=str}", s);
        }
        defmt::write!(f, "]");
    }
}

/// Everything the hypervisor needs to know about the machine, from its DT.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Platform<'dt> {
    /// The root `model` property, if present.
    pub model: Option<&'dt str>,
    /// The root `compatible` strings (used to pick a [`crate::Board`]).
    pub compatible: StrList<'dt>,
    /// `/chosen/bootargs`: the command line the loader passed (QEMU `-append`).
    pub bootargs: Option<&'dt str>,
    /// The header's `boot_cpuid_phys`: the MPIDR of the CPU that booted.
    pub boot_cpuid: u32,
    /// RAM, from every root node with `device_type = "memory"` (not disabled),
    /// in tree order. Never empty.
    pub memory: Vec<MemRegion, MAX_MEMORY>,
    /// Memory the hypervisor must not hand out: `/memreserve/` first, then the
    /// `/reserved-memory` children that have a `reg`.
    pub reserved: Vec<ReservedRegion, MAX_RESERVED>,
    /// The CPUs under `/cpus` (nodes with `device_type = "cpu"`). Never empty.
    pub cpus: Vec<Cpu, MAX_CPUS>,
    /// PSCI, from `/psci`, if present and enabled.
    pub psci: Option<Psci>,
    /// The console: the PL011 named by `/chosen/stdout-path`, else the first
    /// enabled PL011. `None` if the tree has no usable PL011 (see
    /// [`crate::Board::apply_fallbacks`]).
    pub uart: Option<Uart>,
    /// The interrupt controller (required).
    pub gic: Gic,
    /// Enabled `arm,smmu-v3` nodes, in tree order.
    pub smmus: Vec<Smmu, MAX_SMMUS>,
    /// Enabled `pci-host-ecam-generic` host bridges, in tree order.
    pub pcie: Vec<PcieHost, MAX_PCIE>,
    /// The architected timer's PPIs (`arm,armv8-timer`), if described.
    pub timer: Option<Timer>,
}

impl Platform<'_> {
    /// The SMMU whose `phandle` is `phandle` (the target of an `iommu-map`).
    pub fn smmu_by_phandle(&self, phandle: u32) -> Option<&Smmu> {
        self.smmus.iter().find(|s| s.phandle == Some(phandle))
    }

    /// Total bytes of RAM in [`Platform::memory`] (saturating).
    pub fn memory_bytes(&self) -> u64 {
        self.memory.iter().fold(0u64, |acc, r| acc.saturating_add(r.size))
    }
}

/// Where a reserved region was declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReservedSource {
    /// The blob's memory reservation block (`/memreserve/`).
    MemReserve,
    /// A child of `/reserved-memory`.
    Node,
}

/// Memory that is not free for the hypervisor's allocators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReservedRegion {
    /// First byte.
    pub base: u64,
    /// Length in bytes.
    pub size: u64,
    /// `no-map`: the region must not be mapped at all (not even cacheable).
    pub no_map: bool,
    /// Where it was declared.
    pub source: ReservedSource,
}

/// How a secondary CPU is started (the cpu node's `enable-method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EnableMethod {
    /// `"psci"`: PSCI `CPU_ON` through the [`Psci`] conduit.
    Psci,
    /// `"spin-table"`: write the entry point to `release_addr`, then `sev`.
    /// `None` if the node has no `cpu-release-addr`; the board may know it
    /// ([`crate::Board::apply_fallbacks`]).
    SpinTable {
        /// The `cpu-release-addr` (a 64-bit value in two cells).
        release_addr: Option<u64>,
    },
    /// No `enable-method`: typically the only CPU of a uniprocessor tree.
    Absent,
    /// A method this crate does not know.
    Other,
}

/// One CPU from `/cpus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Cpu {
    /// The node's first `reg` entry: its MPIDR affinity fields.
    pub mpidr: u64,
    /// How to start it.
    pub enable: EnableMethod,
}

/// The PSCI calling conduit (`/psci` `method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Conduit {
    /// Secure Monitor Call (firmware at EL3). What QEMU `virt` with
    /// `virtualization=on` uses, and what an EL2 hypervisor itself must use.
    Smc,
    /// Hypervisor Call (firmware at EL2, i.e. we are a guest).
    Hvc,
}

/// The PSCI binding the DT claims (the firmware's real version is read at run
/// time with `PSCI_VERSION`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PsciVersion {
    /// Only `"arm,psci"`: function IDs come from the node's properties.
    V0_1,
    /// `"arm,psci-0.2"`: standard function IDs.
    V0_2,
    /// `"arm,psci-1.0"`.
    V1_0,
}

/// PSCI firmware interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Psci {
    /// `smc` or `hvc`.
    pub conduit: Conduit,
    /// The newest binding listed in `compatible`.
    pub version: PsciVersion,
}

/// GIC interrupt type, from the first cell of a 3-cell GIC specifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IrqKind {
    /// Shared peripheral interrupt (cell value 0), INTID 32 + n.
    Spi,
    /// Private peripheral interrupt (cell value 1), INTID 16 + n.
    Ppi,
}

/// Trigger type from the low 4 bits of a GIC specifier's flags cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Trigger {
    /// 1: rising edge.
    EdgeRising,
    /// 2: falling edge.
    EdgeFalling,
    /// 4: active-high level.
    LevelHigh,
    /// 8: active-low level.
    LevelLow,
    /// Anything else (0 or a combination).
    Unspecified,
}

/// A decoded 3-cell GIC interrupt specifier (`<type number flags>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Irq {
    /// SPI or PPI.
    pub kind: IrqKind,
    /// The number within its kind (SPI 0..=987, PPI 0..=15).
    pub num: u32,
    /// The raw flags cell: trigger in bits 3:0; on GICv2, PPI CPU mask in 15:8.
    pub flags: u32,
}

impl Irq {
    /// The GIC INTID: SPI n is 32 + n, PPI n is 16 + n.
    pub const fn intid(&self) -> u32 {
        match self.kind {
            IrqKind::Spi => self.num.saturating_add(32),
            IrqKind::Ppi => self.num.saturating_add(16),
        }
    }

    /// The trigger type from the flags.
    pub const fn trigger(&self) -> Trigger {
        match self.flags & 0xf {
            1 => Trigger::EdgeRising,
            2 => Trigger::EdgeFalling,
            4 => Trigger::LevelHigh,
            8 => Trigger::LevelLow,
            _ => Trigger::Unspecified,
        }
    }
}

/// UART programming model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum UartKind {
    /// Arm PrimeCell PL011.
    Pl011,
}

/// The console UART.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Uart {
    /// Register block base.
    pub base: u64,
    /// Register block size.
    pub size: u64,
    /// Programming model.
    pub kind: UartKind,
    /// Reference clock (`uartclk`), when the clock provider is a fixed clock
    /// with a `clock-frequency`. Needed to program the baud-rate divisor.
    pub clock_hz: Option<u32>,
    /// Its interrupt, when routed to the GIC.
    pub irq: Option<Irq>,
}

/// GICv3 (`arm,gic-v3`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GicV3 {
    /// GICD.
    pub dist: Region,
    /// GICR regions (`#redistributor-regions` of them, default 1).
    pub redists: Vec<Region, MAX_REDISTS>,
    /// The first enabled `arm,gic-v3-its` child, if any.
    pub its: Option<Region>,
    /// The virtual interface maintenance interrupt (a PPI).
    pub maintenance_irq: Option<Irq>,
}

/// GICv2 (`arm,gic-400`, `arm,cortex-a15-gic`). `reg` order: GICD, GICC,
/// GICH, GICV.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct GicV2 {
    /// GICD.
    pub dist: Region,
    /// GICC.
    pub cpu: Region,
    /// GICH: the virtual interface control block (hypervisor only).
    pub hyp: Option<Region>,
    /// GICV: the virtual CPU interface a guest sees as its GICC.
    pub vcpu: Option<Region>,
    /// The virtual interface maintenance interrupt (a PPI).
    pub maintenance_irq: Option<Irq>,
}

/// The interrupt controller.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Gic {
    /// GICv3 with redistributors (QEMU `virt,gic-version=3`).
    V3(GicV3),
    /// GICv2 / GIC-400 (Raspberry Pi 4).
    V2(GicV2),
}

impl Gic {
    /// The distributor.
    pub const fn dist(&self) -> Region {
        match self {
            Gic::V3(g) => g.dist,
            Gic::V2(g) => g.dist,
        }
    }

    /// The maintenance interrupt.
    pub const fn maintenance_irq(&self) -> Option<Irq> {
        match self {
            Gic::V3(g) => g.maintenance_irq,
            Gic::V2(g) => g.maintenance_irq,
        }
    }
}

/// An SMMUv3's wired interrupts, by `interrupt-names`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SmmuIrqs {
    /// `"eventq"`.
    pub eventq: Option<Irq>,
    /// `"priq"`.
    pub priq: Option<Irq>,
    /// `"cmdq-sync"`.
    pub cmdq_sync: Option<Irq>,
    /// `"gerror"`.
    pub gerror: Option<Irq>,
    /// `"combined"` (or a single unnamed interrupt).
    pub combined: Option<Irq>,
}

/// An SMMUv3 (`arm,smmu-v3`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Smmu {
    /// Register base (page 0).
    pub base: u64,
    /// Register space size (0x20000 with page 1).
    pub size: u64,
    /// `dma-coherent` on the node or an ancestor: table walks snoop caches.
    pub coherent: bool,
    /// Wired interrupts.
    pub irqs: SmmuIrqs,
    /// Its `phandle`, which `iommu-map` entries refer to.
    pub phandle: Option<u32>,
}

/// The address space of a PCI `ranges` window (phys.hi bits 25:24).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PciSpace {
    /// 0b01: I/O space.
    Io,
    /// 0b10: 32-bit memory space.
    Mem32,
    /// 0b11: 64-bit memory space.
    Mem64,
}

/// One CPU-visible window of a host bridge (a `ranges` entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PciWindow {
    /// Which PCI space.
    pub kind: PciSpace,
    /// phys.hi bit 30.
    pub prefetchable: bool,
    /// Start address on the PCI side.
    pub pci_addr: u64,
    /// Start address on the CPU side.
    pub cpu_addr: u64,
    /// Length in bytes.
    pub size: u64,
}

/// An `iommu-map` entry: RequesterIDs `rid_base..rid_base+len` become
/// StreamIDs `sid_base..` on the IOMMU with phandle `iommu_phandle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IommuMapEntry {
    /// First RequesterID.
    pub rid_base: u32,
    /// The IOMMU's phandle (see [`Platform::smmu_by_phandle`]).
    pub iommu_phandle: u32,
    /// StreamID of `rid_base`.
    pub sid_base: u32,
    /// Number of IDs.
    pub len: u32,
}

/// An `msi-map` entry: RequesterIDs `rid_base..rid_base+len` become DeviceIDs
/// `msi_base..` at the MSI controller with phandle `msi_phandle`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct MsiMapEntry {
    /// First RequesterID.
    pub rid_base: u32,
    /// The MSI controller's phandle (a GICv3 ITS on `virt`).
    pub msi_phandle: u32,
    /// DeviceID of `rid_base`.
    pub msi_base: u32,
    /// Number of IDs.
    pub len: u32,
}

/// One decoded `interrupt-map` entry of a host bridge: legacy INTx of a
/// device slot to a GIC SPI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IntxRoute {
    /// The entry's child unit address phys.hi (bus 23:16, device 15:11,
    /// function 10:8).
    pub child_hi: u32,
    /// The device number, phys.hi bits 15:11.
    pub device: u8,
    /// The pin: 1 = INTA .. 4 = INTD.
    pub pin: u8,
    /// The GIC interrupt it raises.
    pub irq: Irq,
}

/// A host bridge's decoded `interrupt-map` (PCI bus binding §4.1.1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IntxMap {
    /// `interrupt-map-mask` cell for phys.hi (0 if no mask: match all bits).
    pub mask_hi: u32,
    /// `interrupt-map-mask` cell for the pin.
    pub mask_pin: u32,
    /// Entries whose parent is the GIC.
    pub routes: Vec<IntxRoute, MAX_INTX>,
    /// Entries skipped because their parent is not the GIC.
    pub skipped: u32,
}

impl IntxMap {
    /// The GIC interrupt raised by `pin` (1..=4) of `device` (0..=31),
    /// function `function`, on bus `bus`.
    pub fn route(&self, bus: u8, device: u8, function: u8, pin: u8) -> Option<Irq> {
        let hi =
            (u32::from(bus) << 16) | ((u32::from(device) & 0x1f) << 11) | ((u32::from(function) & 0x7) << 8);
        self.routes
            .iter()
            .find(|r| {
                r.child_hi & self.mask_hi == hi & self.mask_hi
                    && u32::from(r.pin) & self.mask_pin == u32::from(pin) & self.mask_pin
            })
            .map(|r| r.irq)
    }
}

/// A generic ECAM PCIe host bridge (`pci-host-ecam-generic`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PcieHost {
    /// Configuration space (ECAM), 1 MiB per bus from `bus_start`.
    pub ecam: Region,
    /// First bus number (`bus-range`, default 0).
    pub bus_start: u8,
    /// Last bus number (`bus-range`, default 255).
    pub bus_end: u8,
    /// `linux,pci-domain`, if given.
    pub domain: Option<u32>,
    /// `dma-coherent` on the node or an ancestor.
    pub coherent: bool,
    /// I/O and memory windows, from `ranges` (config-space entries skipped).
    pub windows: Vec<PciWindow, MAX_PCI_WINDOWS>,
    /// `iommu-map`: empty if the bridge has none (no IOMMU in front).
    pub iommu_map: Vec<IommuMapEntry, MAX_ID_MAP>,
    /// `iommu-map-mask` (default all ones).
    pub iommu_map_mask: u32,
    /// `msi-map`.
    pub msi_map: Vec<MsiMapEntry, MAX_ID_MAP>,
    /// Legacy INTx routing, if the node has an `interrupt-map`.
    pub intx: Option<IntxMap>,
}

impl PcieHost {
    /// The (IOMMU phandle, StreamID) for a RequesterID (`bus << 8 | devfn`),
    /// following `iommu-map` and `iommu-map-mask` (DT `pci-iommu` binding).
    /// `None` if no entry covers it: the device then has no IOMMU mapping.
    pub fn stream_id(&self, rid: u16) -> Option<(u32, u32)> {
        let id = u32::from(rid) & self.iommu_map_mask;
        self.iommu_map.iter().find_map(|e| {
            let off = id.checked_sub(e.rid_base)?;
            (off < e.len).then(|| (e.iommu_phandle, e.sid_base.wrapping_add(off)))
        })
    }
}

/// The architected generic timer's PPIs (`arm,armv8-timer`), in binding order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timer {
    /// Secure physical timer.
    pub secure_phys: Irq,
    /// Non-secure physical timer (CNTP).
    pub phys: Irq,
    /// Virtual timer (CNTV): what a guest uses.
    pub virt: Irq,
    /// EL2 physical timer (CNTHP): the hypervisor's own timer.
    pub hyp_phys: Irq,
    /// EL2 virtual timer (CNTHV, FEAT_VHE), when listed as a fifth interrupt.
    pub hyp_virt: Option<Irq>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_fits_an_early_stack() {
        // discover() returns it by value before any heap exists.
        assert!(core::mem::size_of::<Platform<'_>>() <= 4096);
    }

    #[test]
    fn region_bounds() {
        let r = Region { base: 0x1000, size: 0x1000 };
        assert!(r.contains(0x1000) && r.contains(0x1fff) && !r.contains(0x2000));
        assert!(!r.contains(0xfff));
        assert_eq!(r.end(), Some(0x2000));
        let top = Region { base: u64::MAX, size: 1 };
        assert_eq!(top.end(), None);
        assert!(top.contains(u64::MAX));
    }

    #[test]
    fn str_list() {
        let l = StrList::new(b"raspberrypi,4-model-b\0brcm,bcm2711\0");
        assert!(l.contains("brcm,bcm2711"));
        assert!(!l.contains("brcm"));
        assert_eq!(l.iter().count(), 2);
        assert_eq!(StrList::EMPTY.iter().count(), 0);
        // Stops at the first malformed entry.
        assert_eq!(StrList::new(b"a\0\xff\0b\0").iter().count(), 1);
        assert_eq!(StrList::new(b"unterminated").iter().count(), 0);
    }

    fn id_map(entries: &[IommuMapEntry], mask: u32) -> PcieHost {
        PcieHost {
            ecam: Region { base: 0, size: 0 },
            bus_start: 0,
            bus_end: 0,
            domain: None,
            coherent: false,
            windows: Vec::new(),
            iommu_map: Vec::from_slice(entries).unwrap(),
            iommu_map_mask: mask,
            msi_map: Vec::new(),
            intx: None,
        }
    }

    #[test]
    fn stream_ids_follow_iommu_map() {
        let e =
            |rid_base, iommu_phandle, sid_base, len| IommuMapEntry { rid_base, iommu_phandle, sid_base, len };
        let host = id_map(&[e(0, 1, 0x100, 0x10), e(0x10, 2, 0, 0x10)], u32::MAX);
        assert_eq!(host.stream_id(0x0), Some((1, 0x100)));
        assert_eq!(host.stream_id(0xf), Some((1, 0x10f)));
        assert_eq!(host.stream_id(0x10), Some((2, 0)));
        assert_eq!(host.stream_id(0x20), None);
        // An entry reaching past u32::MAX does not overflow.
        let host = id_map(&[e(0, 1, u32::MAX, 2)], u32::MAX);
        assert_eq!(host.stream_id(1), Some((1, 0)));
        assert_eq!(id_map(&[], u32::MAX).stream_id(0), None);
    }

    #[test]
    fn intx_route_applies_the_mask() {
        let irq = |num| Irq { kind: IrqKind::Spi, num, flags: 4 };
        let route = |device: u32, pin, num| IntxRoute {
            child_hi: device << 11,
            device: device as u8,
            pin,
            irq: irq(num),
        };
        let map = IntxMap {
            mask_hi: 0x1800,
            mask_pin: 7,
            routes: Vec::from_slice(&[route(0, 1, 3), route(1, 1, 4), route(1, 2, 5)]).unwrap(),
            skipped: 0,
        };
        assert_eq!(map.route(0, 1, 0, 1), Some(irq(4)));
        // Bus and function bits are outside the mask.
        assert_eq!(map.route(3, 1, 7, 2), Some(irq(5)));
        // Device 4 aliases device 0 under mask 0x1800.
        assert_eq!(map.route(0, 4, 0, 1), Some(irq(3)));
        assert_eq!(map.route(0, 0, 0, 2), None);
    }
}
