//! The hypervisor's console: the board's UART, carrying defmt frames.

pub mod pl011;
