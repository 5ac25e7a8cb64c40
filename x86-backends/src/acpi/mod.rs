//! ACPI discovery for the x86 IOMMUs: RSDP → RSDT/XSDT → DMAR (Intel VT-d) and
//! IVRS (AMD-Vi).
//!
//! Everything here reads borrowed table bytes and returns typed views over them:
//! no heap, no `unsafe`, and no panic on any input. A table is validated whole
//! when it is parsed ([`Dmar::parse`], [`Ivrs::parse`]), so the iterators over a
//! parsed table are infallible; a malformed table is an [`Error`] naming the
//! table's signature and the byte offset of the fault.
//!
//! Physical memory is reached through [`PhysMem`]: [`SliceMem`] serves both an
//! identity-mapped test kernel (a slice over RAM) and host tests (a `Vec`).

#![forbid(unsafe_code)]

mod bytes;
pub mod dmar;
mod error;
pub mod ivrs;
mod pci;
mod phys;
mod rsdp;
mod sdt;
mod tables;

pub use dmar::Dmar;
pub use error::{Error, ErrorKind, Signature};
pub use ivrs::Ivrs;
pub use pci::{Bdf, BusRange};
pub use phys::{PhysMem, SliceMem, Unmapped};
pub use rsdp::Rsdp;
pub use sdt::Sdt;
pub use tables::AcpiTables;

#[cfg(test)]
mod tests;
