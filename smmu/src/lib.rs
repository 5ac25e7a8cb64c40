//! Arm SMMUv3 driver core (IHI 0070), `no_std`, no allocation.
//!
//! One module per spec concept:
//!
//! | module     | spec                                                         |
//! |------------|--------------------------------------------------------------|
//! | [`regs`]   | register pages 0 and 1 (chapter 6)                           |
//! | [`caps`]   | SMMU_IDR0..5, SMMU_AIDR decoding and requirement checks      |
//! | [`ids`]    | StreamID, SubstreamID, VMID, ASID                            |
//! | [`ste`]    | Stream Table Entry (5.2)                                     |
//! | [`strtab`] | Stream table, linear and 2-level with L1STD (5.1, 6.3.24)    |
//! | [`cd`]     | Context Descriptor (5.4)                                     |
//! | [`cdtab`]  | CD tables, linear and 2-level with L1CD (5.3)                |
//! | [`update`] | configuration structure update procedure (3.21.3.1)          |
//! | [`cmd`]    | commands (chapter 4) and TLB invalidation planning           |
//! | [`cmdq`]   | Command queue ring, CMD_SYNC, CERROR recovery (3.5, 7.1)     |
//! | [`event`]  | event records (7.3)                                          |
//! | [`evtq`]   | Event queue consumer and overflow (7.4)                      |
//! | [`priq`]   | PRI queue records and consumer (chapter 8)                   |
//! | [`gerror`] | global errors, SMMU_GERROR/GERRORN (7.5)                     |
//! | [`queue`]  | ring index arithmetic shared by the queues (3.5)             |
//! | [`dma`]    | the memory-provider seam ([`DmaFrames`]) and barriers        |
//! | [`wait`]   | bounded polling and timeout errors                           |
//! | [`driver`] | probe, bring-up and the public operations ([`Smmu`])         |
//! | [`backend`]| the `iommu-common` assignment-model backend (stage-2 domains)|
#![no_std]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

#[cfg(test)]
extern crate std;

pub mod backend;
pub mod caps;
pub mod cd;
pub mod cdtab;
pub mod cmd;
pub mod cmdq;
pub mod dma;
pub mod driver;
pub mod event;
pub mod evtq;
mod fields;
pub mod gerror;
pub mod ids;
pub mod priq;
pub mod queue;
pub mod regs;
pub mod ste;
pub mod strtab;
pub mod update;
pub mod wait;

#[cfg(test)]
pub(crate) mod testing;

pub use caps::{Capabilities, Requirements};
pub use cmd::Command;
pub use dma::{DmaBuf, DmaFrames};
pub use driver::{Smmu, SmmuConfig};
pub use event::Event;
pub use ids::{Asid, StreamId, SubstreamId, Vmid};
pub use regs::SmmuRegs;
pub use ste::Ste;
