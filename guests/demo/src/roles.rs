//! The roles `/chosen/bootargs` selects (`role=...`).

pub mod dma_owner;
pub mod hello;
pub mod stray;
pub mod victim;
