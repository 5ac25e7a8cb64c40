//! The interrupt controller, for the hypervisor's own interrupts (SMMU
//! event and error interrupts today; guests' virtual interrupts later).

pub mod v3;
