//! PSCI (Arm DEN 0022) through the conduit the device tree names, with the
//! SMC Calling Convention's function IDs.

use core::sync::atomic::{AtomicBool, Ordering};

/// PSCI_VERSION.
pub const VERSION: u32 = 0x8400_0000;
/// CPU_OFF.
pub const CPU_OFF: u32 = 0x8400_0002;
/// SYSTEM_OFF.
pub const SYSTEM_OFF: u32 = 0x8400_0008;
/// CPU_ON (SMC64: it takes an address).
pub const CPU_ON: u32 = 0xc400_0003;
/// AFFINITY_INFO (SMC64).
pub const AFFINITY_INFO: u32 = 0xc400_0004;
/// SYSTEM_RESET.
pub const SYSTEM_RESET: u32 = 0x8400_0009;

/// Whether to use SMC instead of HVC (HVC unless the device tree says `smc`).
static USE_SMC: AtomicBool = AtomicBool::new(false);

/// Selects the conduit from the device tree's `/psci` `method`.
pub fn init(conduit: boards::platform::Conduit) {
    USE_SMC.store(conduit == boards::platform::Conduit::Smc, Ordering::Relaxed);
}

/// One PSCI call; returns x0.
pub fn call(func: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    let ret: i64;
    if USE_SMC.load(Ordering::Relaxed) {
        // SAFETY: a PSCI call; the SMCCC lets the callee clobber x0..x17.
        unsafe {
            core::arch::asm!(
                "smc #0",
                inlateout("x0") u64::from(func) => ret,
                inlateout("x1") a1 => _, inlateout("x2") a2 => _, inlateout("x3") a3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _,
                options(nostack)
            );
        }
    } else {
        // SAFETY: as above, through the hypervisor.
        unsafe {
            core::arch::asm!(
                "hvc #0",
                inlateout("x0") u64::from(func) => ret,
                inlateout("x1") a1 => _, inlateout("x2") a2 => _, inlateout("x3") a3 => _,
                out("x4") _, out("x5") _, out("x6") _, out("x7") _, out("x8") _, out("x9") _,
                out("x10") _, out("x11") _, out("x12") _, out("x13") _, out("x14") _,
                out("x15") _, out("x16") _, out("x17") _,
                options(nostack)
            );
        }
    }
    ret
}

/// PSCI_VERSION as (major, minor), or the error code.
pub fn version() -> Result<(u16, u16), i64> {
    let v = call(VERSION, 0, 0, 0);
    if v < 0 {
        return Err(v);
    }
    Ok(((v >> 16) as u16, v as u16))
}

/// CPU_ON: starts the CPU `mpidr` at `entry` with x0 = `context`.
pub fn cpu_on(mpidr: u64, entry: u64, context: u64) -> Result<(), i64> {
    match call(CPU_ON, mpidr, entry, context) {
        0 => Ok(()),
        e => Err(e),
    }
}

/// Powers the partition off (SYSTEM_OFF); parks the CPU if that returns.
pub fn system_off() -> ! {
    call(SYSTEM_OFF, 0, 0, 0);
    park()
}

/// AFFINITY_INFO for `mpidr` at level 0: 0 on, 1 off, 2 on pending.
pub fn affinity_info(mpidr: u64) -> i64 {
    call(AFFINITY_INFO, mpidr, 0, 0)
}

/// Restarts the partition (SYSTEM_RESET); parks the CPU if that returns.
pub fn system_reset() -> ! {
    call(SYSTEM_RESET, 0, 0, 0);
    park()
}

/// CPU_OFF for the calling CPU; parks it if that returns.
pub fn cpu_off() -> ! {
    call(CPU_OFF, 0, 0, 0);
    park()
}

fn park() -> ! {
    loop {
        aarch64_cpu::asm::wfe();
    }
}
