//! The console: a PL011 UART (Arm DDI 0183), transmit side only. The line
//! settings are whatever the loader (QEMU or the hypervisor's emulation) left.
//!
//! The base comes from the device tree and is kept in a static so that the
//! panic and exception handlers can still print.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};
use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, ReadWrite},
};

register_bitfields![u32,
    /// UARTFR, the flag register.
    UARTFR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) []
    ]
];

register_structs! {
    /// The part of the PL011 register block the guest uses.
    Pl011Regs {
        (0x00 => uartdr: ReadWrite<u32>),
        (0x04 => _reserved),
        (0x18 => uartfr: ReadOnly<u32, UARTFR::Register>),
        (0x1c => @END),
    }
}

/// Polls of UARTFR.TXFF per character before writing anyway: a stuck UART
/// loses characters rather than hanging the guest.
const TXFF_BUDGET: u32 = 1_000_000;

/// The console's register block base, 0 until [`init`].
static BASE: AtomicUsize = AtomicUsize::new(0);

/// Uses the PL011 at `base` (from the device tree) from now on.
pub fn init(base: u64) {
    BASE.store(base as usize, Ordering::Relaxed);
}

/// The console, once [`init`] ran.
fn regs() -> Option<&'static Pl011Regs> {
    let base = BASE.load(Ordering::Relaxed);
    if base == 0 {
        return None;
    }
    // SAFETY: `base` is the PL011 register block from the device tree,
    // identity mapped (MMU off) and only ever accessed through these
    // volatile registers.
    Some(unsafe { &*(base as *const Pl011Regs) })
}

fn put(regs: &Pl011Regs, byte: u8) {
    let mut budget = TXFF_BUDGET;
    while regs.uartfr.is_set(UARTFR::TXFF) && budget > 0 {
        budget -= 1;
    }
    regs.uartdr.set(u32::from(byte));
}

/// A `fmt::Write` sink for the console; writes nothing before [`init`].
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(regs) = regs() {
            s.bytes().for_each(|b| put(regs, b));
        }
        Ok(())
    }
}

/// Prints one line on the console.
#[macro_export]
macro_rules! println {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::console::Console, $($arg)*);
    }};
}
