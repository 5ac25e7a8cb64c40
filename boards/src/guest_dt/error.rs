//! Why a partition's device tree could not be written. Like
//! [`crate::DtError`], the error is `Copy`: integers and `&'static str`.

use core::fmt;

/// Why [`super::generate`] refused a spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum GuestDtError {
    /// `memory` is empty.
    NoMemory,
    /// A region of length 0.
    EmptyRegion {
        /// Which (`"memory"`, `"PL011"`, ...).
        what: &'static str,
        /// Its base.
        base: u64,
    },
    /// A region that runs past the top of the 64-bit space.
    RegionWraps {
        /// Which.
        what: &'static str,
        /// Its base.
        base: u64,
    },
    /// Two regions of the guest's address map overlap.
    Overlap {
        /// The one listed first.
        first: &'static str,
        /// Its base.
        first_base: u64,
        /// The other.
        second: &'static str,
        /// Its base.
        second_base: u64,
    },
    /// A region that must lie inside one `memory` region does not.
    OutsideMemory {
        /// Which (`"reserved-memory"`, `"initrd"`).
        what: &'static str,
        /// Its base.
        base: u64,
    },
    /// `cpus` is 0 or more than the GIC can target.
    CpuCount {
        /// The count asked for.
        cpus: u32,
        /// The most this GIC allows.
        max: u32,
    },
    /// The GICv3 redistributor region is smaller than 128 KiB per vCPU.
    RedistTooSmall {
        /// Its size.
        size: u64,
        /// What `cpus` needs.
        needed: u64,
    },
    /// A clock rate of 0 Hz.
    ZeroClock {
        /// Whose.
        what: &'static str,
    },
    /// An interrupt the GIC or the device cannot have.
    BadIrq {
        /// Whose (`"PL011"`, `"timer"`, `"INTx"`).
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// `bus_range` start above its end.
    BusRange {
        /// First bus.
        start: u8,
        /// Last bus.
        end: u8,
    },
    /// The ECAM region is smaller than 1 MiB per bus of `bus_range`.
    EcamTooSmall {
        /// Its size.
        size: u64,
        /// What the bus range needs.
        needed: u64,
    },
    /// A PCI window that cannot be encoded.
    BadWindow {
        /// Index in `windows`.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// An INTx route that cannot be encoded.
    BadIntx {
        /// Index in the device or entry list.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A string that cannot go into the tree.
    BadString {
        /// Which property or node name.
        what: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// The FDT writer refused (a broken internal invariant, or a tree over
    /// 4 GiB).
    Encode {
        /// The writer's reason.
        reason: &'static str,
    },
}

impl From<vm_fdt::Error> for GuestDtError {
    fn from(e: vm_fdt::Error) -> Self {
        use vm_fdt::Error as E;
        let reason = match e {
            E::PropertyBeforeBeginNode => "property before the root node",
            E::PropertyAfterEndNode => "property after a child node",
            E::PropertyValueTooLarge => "property value over 4 GiB",
            E::TotalSizeTooLarge => "tree over 4 GiB",
            E::InvalidString => "string contains NUL",
            E::OutOfOrderEndNode => "nodes closed out of order",
            E::UnclosedNode => "node left open",
            E::InvalidMemoryReservation => "invalid memory reservation",
            E::OverlappingMemoryReservations => "overlapping memory reservations",
            E::InvalidNodeName => "invalid node name",
            E::InvalidPropertyName => "invalid property name",
            E::NodeDepthTooLarge => "nodes nested too deep",
            E::DuplicatePhandle => "duplicate phandle",
        };
        GuestDtError::Encode { reason }
    }
}

impl fmt::Display for GuestDtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestDtError::NoMemory => write!(f, "guest device tree: no memory region"),
            GuestDtError::EmptyRegion { what, base } => {
                write!(f, "guest device tree: {what} at {base:#x} has size 0")
            }
            GuestDtError::RegionWraps { what, base } => {
                write!(f, "guest device tree: {what} at {base:#x} runs past the top of the address space")
            }
            GuestDtError::Overlap { first, first_base, second, second_base } => write!(
                f,
                "guest device tree: {first} at {first_base:#x} overlaps {second} at {second_base:#x}"
            ),
            GuestDtError::OutsideMemory { what, base } => {
                write!(f, "guest device tree: {what} at {base:#x} is not inside one memory region")
            }
            GuestDtError::CpuCount { cpus, max } => {
                write!(f, "guest device tree: {cpus} vCPUs, this GIC allows 1..={max}")
            }
            GuestDtError::RedistTooSmall { size, needed } => write!(
                f,
                "guest device tree: redistributor region of {size:#x} bytes, the vCPUs need {needed:#x}"
            ),
            GuestDtError::ZeroClock { what } => write!(f, "guest device tree: {what} clock of 0 Hz"),
            GuestDtError::BadIrq { what, reason } => {
                write!(f, "guest device tree: {what} interrupt: {reason}")
            }
            GuestDtError::BusRange { start, end } => {
                write!(f, "guest device tree: PCI bus range {start}..={end} is empty")
            }
            GuestDtError::EcamTooSmall { size, needed } => {
                write!(f, "guest device tree: ECAM of {size:#x} bytes, the bus range needs {needed:#x}")
            }
            GuestDtError::BadWindow { index, reason } => {
                write!(f, "guest device tree: PCI window {index}: {reason}")
            }
            GuestDtError::BadIntx { index, reason } => {
                write!(f, "guest device tree: INTx route {index}: {reason}")
            }
            GuestDtError::BadString { what, reason } => write!(f, "guest device tree: {what}: {reason}"),
            GuestDtError::Encode { reason } => write!(f, "guest device tree: FDT writer: {reason}"),
        }
    }
}
