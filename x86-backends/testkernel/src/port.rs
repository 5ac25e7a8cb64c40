//! x86 I/O-port access (`in`/`out`), the one seam every port driver
//! (COM1, the PIT, PCI configuration mechanism #1, isa-debug-exit) goes
//! through.

use core::arch::asm;

/// Reads a byte from `port`.
///
/// # Safety
///
/// `port` belongs to a device the caller drives; reading it may have side
/// effects on that device (a UART's receive FIFO, for instance).
pub unsafe fn inb(port: u16) -> u8 {
    let v: u8;
    // SAFETY: per the contract; `in` touches no memory and no stack.
    unsafe { asm!("in al, dx", out("al") v, in("dx") port, options(nostack, preserves_flags)) };
    v
}

/// Writes a byte to `port`.
///
/// # Safety
///
/// As for [`inb`]: the write's effect on the device is the caller's intent.
pub unsafe fn outb(port: u16, v: u8) {
    // SAFETY: per the contract. Not `nomem`: writes before it stay before it
    // (a device may act on memory when it sees the port write).
    unsafe { asm!("out dx, al", in("dx") port, in("al") v, options(nostack, preserves_flags)) };
}

/// Reads a dword from `port`.
///
/// # Safety
///
/// As for [`inb`].
pub unsafe fn inl(port: u16) -> u32 {
    let v: u32;
    // SAFETY: per the contract.
    unsafe { asm!("in eax, dx", out("eax") v, in("dx") port, options(nostack, preserves_flags)) };
    v
}

/// Writes a dword to `port`.
///
/// # Safety
///
/// As for [`outb`].
pub unsafe fn outl(port: u16, v: u32) {
    // SAFETY: per the contract.
    unsafe { asm!("out dx, eax", in("dx") port, in("eax") v, options(nostack, preserves_flags)) };
}
