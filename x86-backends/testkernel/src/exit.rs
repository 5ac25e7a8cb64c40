//! Ending a run through QEMU's `isa-debug-exit` device
//! (`-device isa-debug-exit,iobase=0xf4,iosize=0x04`): writing `v` to port
//! 0xf4 makes QEMU exit with status `(v << 1) | 1`.
//!
//! The kernel writes `0x10 + code`, so QEMU's status is `33 + 2 * code`:
//! 33 is success. `cargo xtask` maps an odd status of 33 or more back to
//! `code` (so success shows as 0); any other status (0 after a triple fault
//! with `-no-reboot`, 1 for a QEMU error) did not come from here.

use crate::port::outl;

/// isa-debug-exit's port.
pub const DEBUG_EXIT_PORT: u16 = 0xf4;
/// Added to every [`ExitCode`] written, so that success is not QEMU's own 1.
pub const DEBUG_EXIT_BASE: u32 = 0x10;

/// Why the kernel stopped; the same numbers as the ARM hypervisor's.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
#[repr(u32)]
pub enum ExitCode {
    /// Everything asked for ran and passed.
    Success = 0,
    /// One or more test cases failed.
    TestsFailed = 1,
    /// A Rust panic.
    Panic = 3,
    /// The boot information was missing or malformed.
    BadBootInfo = 4,
}

/// Ends the run successfully.
pub fn success() -> ! {
    end(ExitCode::Success)
}

/// Ends the run with a failure status.
pub fn fail(code: ExitCode) -> ! {
    end(code)
}

fn end(code: ExitCode) -> ! {
    if code == ExitCode::Success {
        defmt::info!("exit: {}", code);
    } else {
        defmt::error!("exit: {} (status {=u32})", code, code as u32);
    }
    // SAFETY: port 0xf4 is isa-debug-exit under QEMU (the write ends the
    // process); on a machine without it the write is ignored and we halt.
    unsafe { outl(DEBUG_EXIT_PORT, DEBUG_EXIT_BASE + code as u32) };
    loop {
        // SAFETY: interrupts are off (PVH entry, never enabled): `hlt` parks.
        unsafe { core::arch::asm!("hlt", options(nomem, nostack)) };
    }
}
