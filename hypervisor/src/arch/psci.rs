//! Calls into the firmware's PSCI (Arm DEN 0022) from EL2 through SMC.

/// PSCI function IDs (SMC64 where they take addresses).
pub mod func {
    /// CPU_ON (SMC64).
    pub const CPU_ON: u64 = 0xc400_0003;
}

/// A PSCI return code other than SUCCESS.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum PsciError {
    /// NOT_SUPPORTED (-1).
    NotSupported,
    /// INVALID_PARAMETERS (-2).
    InvalidParameters,
    /// DENIED (-3).
    Denied,
    /// ALREADY_ON (-4).
    AlreadyOn,
    /// ON_PENDING (-5).
    OnPending,
    /// INTERNAL_FAILURE (-6).
    InternalFailure,
    /// Any other value.
    Other(i64),
}

fn smc(func: u64, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: i64;
    // SAFETY: an SMC to the firmware's PSCI implementation; it clobbers only
    // x0..x3 per the SMC calling convention (we mark x0..x17 as clobbered).
    unsafe {
        core::arch::asm!(
            "smc #0",
            inlateout("x0") func as i64 => ret,
            inlateout("x1") a1 => _, inlateout("x2") a2 => _, inlateout("x3") a3 => _,
            out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
            out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
            out("x15") _, out("x16") _, out("x17") _,
            options(nostack)
        );
    }
    ret
}

fn result(ret: i64) -> Result<i64, PsciError> {
    match ret {
        r if r >= 0 => Ok(r),
        -1 => Err(PsciError::NotSupported),
        -2 => Err(PsciError::InvalidParameters),
        -3 => Err(PsciError::Denied),
        -4 => Err(PsciError::AlreadyOn),
        -5 => Err(PsciError::OnPending),
        -6 => Err(PsciError::InternalFailure),
        r => Err(PsciError::Other(r)),
    }
}

/// Starts the CPU `mpidr` at physical address `entry` with `context` in x0.
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), PsciError> {
    result(smc(func::CPU_ON, mpidr, entry, context)).map(|_| ())
}
