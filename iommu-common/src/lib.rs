//! Architecture-neutral IOMMU building blocks shared by the SMMUv3 driver, the
//! hypervisor and the x86 backends.
#![no_std]

extern crate alloc;

pub mod addr;
