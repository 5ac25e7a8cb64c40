//! AArch64 at EL2: entry, exception vectors, the EL2 MMU, PSCI calls.

pub mod boot;
pub mod cache;
pub mod el2_guest;
pub mod exception;
pub mod mmu;
pub mod psci;
