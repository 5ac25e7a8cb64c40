//! Intel VT-d building blocks, after the "Intel Virtualization Technology for
//! Directed I/O Architecture Specification" (rev 4.x / 5.0): the register
//! block, capability decoding and every in-memory structure as a typed value
//! with `encode()`/`decode()`, and on top of them the legacy-mode driver
//! ([`driver`]) and its `iommu-common` backend ([`backend`]).
//!
//! One module per spec concept, named with the spec's own words:
//!
//! | module        | spec                                                              |
//! |---------------|-------------------------------------------------------------------|
//! | [`ids`]       | Source-ID (requester bus/dev/fn), Domain-ID, PASID                |
//! | [`regs`]      | remapping hardware registers (11.4), IOTLB and fault recording registers |
//! | [`caps`]      | CAP_REG / ECAP_REG decoding and requirement checks                |
//! | [`root`]      | root entry and scalable-mode root entry (9.1, 9.2)                |
//! | [`context`]   | context entry and scalable-mode context entry (9.3, 9.4)          |
//! | [`pasid`]     | scalable-mode PASID directory and PASID table entries (9.5, 9.6)  |
//! | [`inv_desc`]  | invalidation queue: IQA value and descriptors (6.5.2), PSI planning |
//! | [`inv_reg`]   | register-based invalidation: CCMD, IOTLB_REG, IVA_REG (6.5.1)     |
//! | [`fault`]     | fault recording registers, FSTS, fault reasons (7.1, 9.9, appendix A) |
//! | [`irte`]      | remapped-format IRTE (9.10), IRTA_REG, remappable MSI (5.1.2)     |
//! | [`mmio`]      | the register-frame seam (pointer → register references)           |
//! | [`dma`]       | the DMA-memory seam ([`dma::DmaFrames`]), cache flushes, barriers  |
//! | [`driver`]    | probe, legacy-mode bring-up, attach/detach, invalidation, faults  |
//! | [`backend`]   | `iommu_common::domain::IommuBackend` for [`driver::Vtd`]          |
//!
//! Section numbers follow rev 4.x; they move between revisions, the field
//! names do not. Where rev 4 renamed "first-level"/"second-level" to
//! "first-stage"/"second-stage" the older names are kept, since they are the
//! field names (SLPTPTR, FLPTR, SLTS, FLTS) every revision still uses.
#![deny(unsafe_code)]

pub mod backend;
pub mod caps;
pub mod context;
#[allow(unsafe_code)] // the DMA-memory seam: raw pointers live here only
pub mod dma;
pub mod driver;
mod error;
pub mod fault;
mod fields;
pub mod ids;
pub mod inv_desc;
pub mod inv_reg;
pub mod irte;
#[allow(unsafe_code)] // the MMIO seam: register references from a pointer
pub mod mmio;
pub mod pasid;
pub mod regs;
pub mod root;

pub use caps::{AddressWidth, Capabilities, Requirements};
pub use context::{ContextEntry, ScalableContextEntry};
pub use error::DecodeError;
pub use fault::{Fault, FaultReason};
pub use ids::{DomainId, Pasid, SourceId};
pub use inv_desc::InvDesc;
pub use irte::Irte;
pub use pasid::{PasidDirEntry, PasidEntry};
pub use regs::VtdRegs;
pub use root::{RootEntry, ScalableRootEntry};
