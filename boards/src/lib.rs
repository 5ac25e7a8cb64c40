//! Boards: what Bulkhead knows about the machines it runs on.
//!
//! - [`dt`]: reads a device tree blob into a [`Platform`] (no heap, bounded
//!   work, never panics on input).
//! - [`platform`]: the typed machine description.
//! - [`board`]: the facts a DT does not carry ([`Board`]), one module per
//!   board: [`qemu_virt`], [`rpi4`].
//! - `config` (feature `config`, needs `alloc`): the partition configuration
//!   a user writes, parsed and checked against a [`Board`].
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod abi;
pub mod board;
#[cfg(feature = "config")]
pub mod config;
pub mod dt;
#[cfg(feature = "guest-dt")]
pub mod guest_dt;
pub mod platform;
pub mod qemu_virt;
pub mod rpi4;

pub use board::{board_by_name, board_for_platform, Board, BOARDS};
pub use dt::{discover, header_total_size, DtError};
pub use platform::Platform;
