//! AMD I/O Virtualization Technology (AMD-Vi) building blocks, after the AMD
//! IOMMU specification (pub. 48882, rev 3.x): register blocks, capability
//! decoding and every in-memory structure as a typed value with
//! `encode()`/`decode()`, and the driver on top of them (bring-up,
//! attach/detach, invalidation, event log) with its `iommu-common` backend.
//!
//! One module per spec concept, named with the spec's own words:
//!
//! | module      | spec                                                          |
//! |-------------|---------------------------------------------------------------|
//! | [`ids`]     | DeviceID, DomainID, PASID                                     |
//! | [`regs`]    | MMIO register block (3.4) through `tock-registers`            |
//! | [`caps`]    | PCI capability block (3.3) and the Extended Feature Register  |
//! | [`dte`]     | Device Table Entry, 256 bits (2.2.2)                          |
//! | [`pgtable`] | host I/O page table entries: PDE/PTE, skip and page-size codes (2.2.3) |
//! | [`cmd`]     | command buffer entries (2.4) and invalidation planning        |
//! | [`event`]   | event log entries (2.5) and the overflow status               |
//! | [`irte`]    | interrupt remapping table entries, 32- and 128-bit (2.2.5)    |
//! | [`dma`]     | the memory seam: device table, rings, completion stores        |
//! | [`ring`]    | command buffer and event log ring logic (2.4, 2.5)            |
//! | [`driver`]  | bring-up and operations of one IOMMU                          |
//! | [`backend`] | [`IommuBackend`](iommu_common::domain::IommuBackend) over it  |
//!
//! Section numbers follow rev 3.0x; they move between revisions, the field
//! names do not.
#![forbid(unsafe_code)]

pub mod backend;
pub mod caps;
pub mod cmd;
pub mod dma;
pub mod driver;
pub mod dte;
pub mod event;
pub mod ids;
pub mod irte;
pub mod pgtable;
pub mod regs;
pub mod ring;

pub use caps::{Efr, Requirements};
pub use cmd::Command;
pub use dte::Dte;
pub use event::Event;
pub use ids::{DeviceId, DomainId, Pasid};
pub use regs::AmdViRegs;
