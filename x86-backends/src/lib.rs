//! Intel VT-d and AMD-Vi for x86 targets, behind `iommu-common`'s traits.
//!
//! - [`acpi`]: RSDP → RSDT/XSDT → DMAR and IVRS, parsed into typed values.
//! - [`vtd`]: VT-d registers, capabilities, root/context/PASID entries,
//!   invalidation descriptors, fault records, IRTEs.
//! - [`amdvi`]: AMD-Vi registers, capabilities, device table entries, IO
//!   page-table entries, commands, event log records, IRTEs.
//!
//! These are the spec-checked building blocks; the drivers that program
//! QEMU's units with them run in the x86 test kernel (`testkernel/`).
#![no_std]

pub mod acpi;
pub mod amdvi;
pub mod vtd;
