//! COM1, the 16550 UART at port 0x3f8: the log's byte stream. QEMU needs no
//! set-up (`-serial stdio`); the 115200 8N1 programming is for real machines.

use crate::port::{inb, outb};

/// COM1's base port.
pub const COM1: u16 = 0x3f8;

const THR: u16 = 0; // transmit holding (DLAB=0) / divisor low (DLAB=1)
const IER: u16 = 1; // interrupt enable / divisor high
const FCR: u16 = 2; // FIFO control
const LCR: u16 = 3; // line control
const MCR: u16 = 4; // modem control
const LSR: u16 = 5; // line status
const LSR_THRE: u8 = 1 << 5;

/// Polls of LSR per byte before writing anyway (a UART that never reports
/// room would otherwise stop the kernel; a lost byte costs one frame).
const THRE_BUDGET: u32 = 100_000;

/// Programs COM1 for 115200 8N1, FIFOs on, no interrupts.
pub fn init() {
    for (reg, val) in
        [(IER, 0x00), (LCR, 0x80), (THR, 0x01), (IER, 0x00), (LCR, 0x03), (FCR, 0xc7), (MCR, 0x03)]
    {
        // SAFETY: COM1 is this kernel's own console; nothing else drives it.
        unsafe { outb(COM1 + reg, val) };
    }
}

/// The line status register (0xff when no UART answers).
pub fn line_status() -> u8 {
    // SAFETY: reading LSR has no side effect beyond clearing error bits.
    unsafe { inb(COM1 + LSR) }
}

/// Sends `bytes`, waiting (bounded) for room before each.
pub fn write(bytes: &[u8]) {
    for &b in bytes {
        let mut budget = THRE_BUDGET;
        while line_status() & LSR_THRE == 0 && budget > 0 {
            budget -= 1;
            core::hint::spin_loop();
        }
        // SAFETY: as in `init`.
        unsafe { outb(COM1 + THR, b) };
    }
}
