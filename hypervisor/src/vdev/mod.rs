//! Devices the hypervisor emulates for partitions: guest accesses to their
//! addresses are not mapped in stage 2, trap as data aborts, and are
//! decoded ([`mmio`]) and served here.
//!
//! - [`pl011`]: the virtual console, each line tagged with the partition.
//! - [`ecam`]: PCI configuration space filtered to the partition's own
//!   functions.
//! - [`gicv3`]: the partition's GIC distributor and redistributors.

pub mod ecam;
pub mod gicv3;
pub mod mmio;
pub mod pl011;
