//! Architecture-neutral IOMMU building blocks shared by the SMMUv3 driver, the
//! hypervisor and the x86 backends.
//!
//! | module | what |
//! | --- | --- |
//! | [`addr`] | address types: `PhysAddr`, `Ipa`, `Iova`, `VirtAddr` |
//! | [`pgtable`] | the `IoPageTable` trait; VMSAv8-64 stage 1/stage 2, VT-d second-level and AMD-Vi formats |
//! | [`iova`] | IOVA allocation: range tree, per-CPU magazines, flush queue |
//! | [`dma`] | the DMA API: coherent, streaming, scatter-gather, bounce buffers |
//! | [`group`] | devices and IOMMU groups (the isolation unit) |
//! | [`domain`] | domains (address spaces) and the `IommuBackend` trait drivers implement |
//! | [`container`] | partitions owning groups, domains and memory, with the assignment rules |
//! | [`pasid`] | PASID allocation and (device, PASID) bindings |
//! | [`conformance`] | the conformance suite every backend runs in QEMU, generic over a test rig |
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod addr;
pub mod conformance;
pub mod container;
pub mod dma;
pub mod domain;
pub mod group;
pub mod iova;
pub mod pasid;
pub mod pgtable;
