//! The typed configuration: owned values, checked by
//! [`Config::validate`](super::Config::validate), and the questions the
//! hypervisor asks of it.

use super::alloc::{string::String, vec::Vec};
use crate::platform::{Region, UartKind};
use crate::Board;
use core::fmt;
use core::ops::Range;

/// A guest-physical (intermediate physical) address: what a partition's
/// stage-2 tables translate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipa(pub u64);

/// A host physical address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhysAddr(pub u64);

impl Ipa {
    /// `self + n`, or `None` past the top of the address space.
    pub const fn checked_add(self, n: u64) -> Option<Self> {
        match self.0.checked_add(n) {
            Some(a) => Some(Self(a)),
            None => None,
        }
    }
}

impl PhysAddr {
    /// `self + n`, or `None` past the top of the address space.
    pub const fn checked_add(self, n: u64) -> Option<Self> {
        match self.0.checked_add(n) {
            Some(a) => Some(Self(a)),
            None => None,
        }
    }
}

impl fmt::Display for Ipa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

impl fmt::Display for PhysAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A PCI function on segment 0: `BUS:DEV.FN` in the configuration (hex, as
/// `lspci` prints it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    /// Bus number.
    pub bus: u8,
    /// Device number, 0..=31.
    pub dev: u8,
    /// Function number, 0..=7.
    pub func: u8,
}

impl Bdf {
    /// The 16-bit requester ID (`bus << 8 | dev << 3 | func`) an IOMMU sees.
    pub const fn rid(self) -> u16 {
        (self.bus as u16) << 8 | ((self.dev & 0x1f) as u16) << 3 | (self.func & 7) as u16
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{:x}", self.bus, self.dev, self.func)
    }
}

/// The IOMMU group a PCI function belongs to: the functions that must go to
/// one partition together.
///
/// The rule: the functions of one PCI device (same bus and device number)
/// form one group, unless the board says they are isolated
/// ([`Board::pci_functions_isolated`]). Linux groups multi-function devices
/// without ACS the same way, because such functions can reach each other
/// without the IOMMU seeing it. Each device number on a bus is its own group:
/// every function Bulkhead assigns sits on a root bus, with no bridge that
/// would own the requester IDs below it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IommuGroup {
    /// Bus number.
    pub bus: u8,
    /// Device number.
    pub dev: u8,
    /// The function, when the board isolates functions; `None` when the
    /// group is the whole device.
    pub func: Option<u8>,
}

/// The [`IommuGroup`] of `bdf` on `board`.
pub fn iommu_group_of(board: &Board, bdf: Bdf) -> IommuGroup {
    IommuGroup { bus: bdf.bus, dev: bdf.dev, func: board.pci_functions_isolated.then_some(bdf.func) }
}

/// Where a partition's kernel comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KernelSource {
    /// `builtin:<name>`: a guest built in this workspace.
    Builtin(String),
    /// A file, relative to the configuration file (or absolute).
    Path(String),
}

/// Where a partition's console goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Console {
    /// The hypervisor's emulated PL011: output goes to the hypervisor's own
    /// console, each line tagged with the partition's name.
    #[default]
    Virtual,
    /// A UART assigned to the partition, by device name.
    Device(String),
}

/// What the hypervisor does when a partition faults (a stage-2 abort or an
/// SMMU fault of one of its devices).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FaultPolicy {
    /// Log the fault and let the access fail (the default).
    #[default]
    Log,
    /// Log it and stop every CPU of the partition.
    StopPartition,
    /// Log it and inject a synchronous external abort into the guest.
    Inject,
}

impl fmt::Display for KernelSource {
    /// As written in the configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Builtin(b) => write!(f, "builtin:{b}"),
            Self::Path(p) => f.write_str(p),
        }
    }
}

impl fmt::Display for Console {
    /// As written in the configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Virtual => f.write_str("virtual"),
            Self::Device(d) => f.write_str(d),
        }
    }
}

impl fmt::Display for FaultPolicy {
    /// As written in the configuration.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Log => "log",
            Self::StopPartition => "stop-partition",
            Self::Inject => "inject",
        })
    }
}

/// One range of a partition's RAM: `size` bytes at guest-physical `guest`,
/// backed by host RAM at `host`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRegion {
    /// Guest-physical base.
    pub guest: Ipa,
    /// Host physical base.
    pub host: PhysAddr,
    /// Length in bytes.
    pub size: u64,
}

impl MemRegion {
    /// The guest-physical range, or `None` if it overflows.
    pub fn guest_range(&self) -> Option<Range<u64>> {
        Some(self.guest.0..self.guest.0.checked_add(self.size)?)
    }

    /// The host physical range, or `None` if it overflows.
    pub fn host_range(&self) -> Option<Range<u64>> {
        Some(self.host.0..self.host.0.checked_add(self.size)?)
    }
}

/// How a device is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    /// A PCI function behind the board's host bridge. Its BARs, MSIs and
    /// INTx come from PCI enumeration.
    Pci(Bdf),
    /// A platform device: register blocks mapped into the partition at their
    /// own addresses (guest-physical = host physical), and its interrupts.
    Mmio {
        /// Register blocks.
        regions: Vec<Region>,
        /// Its interrupts, as GIC INTIDs (SPIs, 32..=1019).
        irqs: Vec<u32>,
    },
}

/// A device given to a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    /// Unique across the configuration.
    pub name: String,
    /// PCI or MMIO.
    pub kind: DeviceKind,
    /// Whether it masters DMA (always for PCI).
    pub dma: bool,
    /// Whether its DMA goes through the hypervisor's bounce pool, which makes
    /// a device no IOMMU confines acceptable.
    pub bounce: bool,
    /// Set for a UART a partition may use as its [`Console::Device`].
    pub uart: Option<UartKind>,
}

/// One partition: a guest with its own CPUs, memory and devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Unique, `[a-z0-9-]`, 1..=31 characters.
    pub name: String,
    /// Physical CPU indices (positions in the DT's `/cpus`).
    pub cpus: Vec<u32>,
    /// The kernel to boot.
    pub kernel: KernelSource,
    /// An initramfs to load beside it.
    pub initramfs: Option<String>,
    /// The kernel command line (`/chosen/bootargs` of its DT).
    pub bootargs: Option<String>,
    /// Its console.
    pub console: Console,
    /// What a fault does.
    pub fault_policy: FaultPolicy,
    /// Its RAM.
    pub memory: Vec<MemRegion>,
    /// Its devices.
    pub devices: Vec<Device>,
}

impl Partition {
    /// The host address behind guest address `ipa`, if `ipa` is in one of
    /// the partition's memory regions. MMIO of assigned devices is mapped at
    /// its own address and is not covered.
    pub fn ipa_to_pa(&self, ipa: Ipa) -> Option<PhysAddr> {
        self.memory.iter().find_map(|m| {
            let off = ipa.0.checked_sub(m.guest.0)?;
            (off < m.size).then(|| m.host.checked_add(off)).flatten()
        })
    }

    /// The host range behind the guest range `[ipa, ipa + len)`, if all of it
    /// lies in one memory region (so it is contiguous in host memory too).
    /// `len` 0 is `None`.
    pub fn pa_range(&self, ipa: Ipa, len: u64) -> Option<Range<PhysAddr>> {
        if len == 0 {
            return None;
        }
        self.memory.iter().find_map(|m| {
            let off = ipa.0.checked_sub(m.guest.0)?;
            let end = off.checked_add(len)?;
            if end > m.size {
                return None;
            }
            Some(m.host.checked_add(off)?..m.host.checked_add(end)?)
        })
    }

    /// Whether host range `[pa, pa + len)` lies in one of the partition's
    /// memory regions (`len` 0: whether `pa` does).
    pub fn owns_pa(&self, pa: PhysAddr, len: u64) -> bool {
        self.memory.iter().any(|m| {
            pa.0.checked_sub(m.host.0)
                .is_some_and(|off| off < m.size && off.checked_add(len).is_some_and(|end| end <= m.size))
        })
    }

    /// Total bytes of RAM (saturating).
    pub fn memory_bytes(&self) -> u64 {
        self.memory.iter().fold(0u64, |a, m| a.saturating_add(m.size))
    }

    /// The device called `name`.
    pub fn device(&self, name: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.name == name)
    }
}

/// A whole configuration: the board and its partitions.
///
/// Made by [`Config::parse`](super::Config::parse) (checked, and remembering
/// where each value was written so later errors have line numbers) or by
/// [`Config::new`] (then [`Config::validate`](super::Config::validate) before
/// use).
#[derive(Clone, Debug)]
pub struct Config {
    /// The board the partitions are laid out on.
    pub board: &'static Board,
    /// The partitions, in file order; the index is the partition's number.
    pub partitions: Vec<Partition>,
    /// `qemu = [...]`: the QEMU arguments the configuration's devices need
    /// when the board is emulated (`cargo xtask run` appends them). The
    /// hypervisor ignores them: it finds the devices on the bus.
    pub qemu: Vec<String>,
    pub(crate) source: Option<super::source::SourceMap>,
}

/// Two configurations are equal when they say the same, wherever they were
/// written.
impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        self.board == other.board && self.partitions == other.partitions
    }
}

impl Eq for Config {}

impl Config {
    /// A configuration built in code, not yet validated.
    pub fn new(board: &'static Board, partitions: Vec<Partition>) -> Self {
        Self { board, partitions, qemu: Vec::new(), source: None }
    }

    /// The partition that owns physical CPU `cpu`, with its index.
    pub fn partition_of_cpu(&self, cpu: u32) -> Option<(usize, &Partition)> {
        self.partitions.iter().enumerate().find(|(_, p)| p.cpus.contains(&cpu))
    }

    /// The partition and device that own PCI function `bdf`, with the
    /// partition's index.
    pub fn owner_of_pci(&self, bdf: Bdf) -> Option<(usize, &Partition, &Device)> {
        self.partitions
            .iter()
            .enumerate()
            .find_map(|(i, p)| p.devices.iter().find(|d| d.kind == DeviceKind::Pci(bdf)).map(|d| (i, p, d)))
    }

    /// The partition called `name`, with its index.
    pub fn partition(&self, name: &str) -> Option<(usize, &Partition)> {
        self.partitions.iter().enumerate().find(|(_, p)| p.name == name)
    }

    /// The partition whose memory holds host range `[pa, pa + len)`.
    pub fn owner_of_pa(&self, pa: PhysAddr, len: u64) -> Option<(usize, &Partition)> {
        self.partitions.iter().enumerate().find(|(_, p)| p.owns_pa(pa, len))
    }
}
