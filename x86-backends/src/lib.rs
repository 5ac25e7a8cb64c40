//! Intel VT-d and AMD-Vi backends behind `iommu-common`'s traits.
//!
//! Nothing here yet: the backends follow once `iommu-common`'s domain and
//! assignment traits stand (see docs/ARCHITECTURE.md).
#![no_std]
