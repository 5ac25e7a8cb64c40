//! Ending a run. Under QEMU (feature `qemu-exit`) the exit code reaches the
//! host through semihosting `SYS_EXIT`, so `cargo xtask run` and the test
//! harness see the hypervisor's own status. On hardware there is nobody to
//! tell: the CPU parks after the log has said why.

/// Why the hypervisor stopped; the numeric value is the process exit status
/// QEMU returns.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
#[repr(u32)]
pub enum ExitCode {
    /// Everything asked for ran and passed.
    Success = 0,
    /// One or more in-QEMU test cases failed.
    TestsFailed = 1,
    /// An exception was taken at EL2.
    UnexpectedException = 2,
    /// A Rust panic.
    Panic = 3,
    /// The device tree was missing or malformed.
    BadDeviceTree = 4,
    /// The image was entered at an exception level it cannot run at.
    WrongExceptionLevel = 5,
    /// A required piece of hardware did not behave (bounded wait expired, ...).
    HardwareError = 6,
    /// The partition configuration was refused (or does not fit the machine).
    BadConfig = 7,
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
    #[cfg(feature = "qemu-exit")]
    semihosting_exit(code as u32);
    #[allow(unreachable_code)]
    loop {
        aarch64_cpu::asm::wfe();
    }
}

/// Semihosting SYS_EXIT with ADP_Stopped_ApplicationExit and a status
/// (Arm semihosting spec 6.5: on AArch64 x1 points at the reason/subcode pair).
#[cfg(feature = "qemu-exit")]
fn semihosting_exit(status: u32) -> ! {
    const SYS_EXIT: u64 = 0x18;
    const ADP_STOPPED_APPLICATION_EXIT: u64 = 0x20026;
    let block = [ADP_STOPPED_APPLICATION_EXIT, status as u64];
    // SAFETY: `hlt #0xf000` is the AArch64 semihosting trap; QEMU (started with
    // -semihosting) reads the two words at x1 and terminates. The block lives
    // on this stack frame, which outlives the call.
    unsafe {
        core::arch::asm!("hlt #0xf000", in("x0") SYS_EXIT, in("x1") block.as_ptr(), options(nostack));
    }
    loop {
        aarch64_cpu::asm::wfe();
    }
}
