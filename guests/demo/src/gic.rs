//! The GICv3 CPU interface through its system registers (ARM IHI 0069
//! §12.2). Under a hypervisor these are the virtual interface (ICV_*),
//! which is where the hypervisor injects the fault interrupt.
//!
//! The guest polls ICC_IAR1_EL1 with PSTATE.I masked: acknowledging does not
//! depend on the mask, so no vectors or handlers are needed.

use core::arch::asm;

/// ICC_IAR1_EL1 reads this when nothing is pending.
pub const SPURIOUS: u32 = 1023;

/// Enables the system register interface and Group 1 interrupts at every
/// priority: ICC_SRE_EL1.SRE = 1, ICC_PMR_EL1 = 0xff, ICC_IGRPEN1_EL1 = 1.
pub fn enable() {
    // SAFETY: writes the calling CPU's own GIC CPU interface registers;
    // interrupts stay masked in PSTATE, so nothing is taken.
    unsafe {
        asm!(
            "mrs {t}, icc_sre_el1",
            "orr {t}, {t}, #1",
            "msr icc_sre_el1, {t}",
            "isb",
            "mov {t}, #0xff",
            "msr icc_pmr_el1, {t}",
            "mov {t}, #1",
            "msr icc_igrpen1_el1, {t}",
            "isb",
            t = out(reg) _,
            options(nostack)
        );
    }
}

/// Acknowledges the highest priority pending Group 1 interrupt; its INTID,
/// or [`SPURIOUS`].
pub fn acknowledge() -> u32 {
    let iar: u64;
    // SAFETY: reads the CPU interface's acknowledge register.
    unsafe { asm!("mrs {}, icc_iar1_el1", out(reg) iar, options(nostack)) };
    // Acknowledge before reading what the interrupt announces (IHI 0069 §12.1.4).
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
    (iar & 0xff_ffff) as u32
}

/// Ends interrupt `intid` (priority drop and deactivation, EOImode 0).
pub fn end_of_interrupt(intid: u32) {
    // SAFETY: writes the CPU interface's end-of-interrupt register for an
    // INTID this CPU acknowledged.
    unsafe { asm!("msr icc_eoir1_el1, {}", "isb", in(reg) u64::from(intid), options(nostack)) };
}
