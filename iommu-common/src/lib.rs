//! Architecture-neutral IOMMU building blocks shared by the SMMUv3 driver, the
//! hypervisor and the x86 backends.
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod addr;
pub mod iova;
pub mod pgtable;
