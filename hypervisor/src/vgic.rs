//! Virtual interrupts for the partition running on this CPU, through the
//! GICv3 list registers (ICH_LR<n>_EL2).
//!
//! Design: every partition vCPU owns one physical CPU, so the interrupts of
//! its devices are routed to that CPU and injected there:
//! - a forwarded physical interrupt (an assigned device's SPI, the guest's
//!   timer PPIs) goes into a list register with HW = 1 and its physical
//!   INTID: the hypervisor only drops its priority, the guest's EOI of the
//!   virtual interrupt deactivates the physical one, so a level interrupt
//!   cannot storm before the guest has serviced the device;
//! - a purely virtual interrupt (the fault-record interrupt of the `inject`
//!   fault policy) goes in with HW = 0.
//!
//! The guest reaches its virtual CPU interface through its own ICC_*_EL1
//! accesses (HCR_EL2.IMO redirects them to the ICV_* registers). Its
//! distributor is not the physical one: guests see only interrupts the
//! hypervisor injects.

use core::arch::asm;

/// ICH_LR<n>_EL2.State = pending.
const LR_PENDING: u64 = 0b01 << 62;
/// ICH_LR<n>_EL2.State mask.
const LR_STATE: u64 = 0b11 << 62;
/// ICH_LR<n>_EL2.HW: the virtual interrupt is linked to a physical one.
const LR_HW: u64 = 1 << 61;
/// ICH_LR<n>_EL2.Group: group 1.
const LR_GROUP1: u64 = 1 << 60;
/// Priority of injected interrupts (ICH_LR<n>_EL2.Priority, bits [55:48]).
const LR_PRIORITY: u64 = 0xa0 << 48;

/// Why an interrupt could not be injected.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum InjectError {
    /// Every list register holds a pending or active interrupt.
    ListRegistersFull,
}

macro_rules! lr_access {
    ($n:literal) => {
        (
            || -> u64 {
                let v: u64;
                // SAFETY: reading a list register has no side effects.
                unsafe { asm!(concat!("mrs {}, S3_4_C12_C12_", $n), out(reg) v, options(nomem, nostack)) };
                v
            },
            |v: u64| {
                // SAFETY: writing a list register of this CPU's virtual
                // interface; only the running guest observes it.
                unsafe { asm!(concat!("msr S3_4_C12_C12_", $n, ", {}"), in(reg) v, options(nomem, nostack)) };
            },
        )
    };
}

type LrAccess = (fn() -> u64, fn(u64));

/// ICH_LR0_EL2..ICH_LR7_EL2 (GICv3 implements at most 16; 8 are enough for
/// our partitions and QEMU has 4).
const LRS: [LrAccess; 8] = [
    lr_access!(0),
    lr_access!(1),
    lr_access!(2),
    lr_access!(3),
    lr_access!(4),
    lr_access!(5),
    lr_access!(6),
    lr_access!(7),
];

/// List registers this CPU implements (ICH_VTR_EL2.ListRegs + 1).
fn implemented() -> usize {
    let vtr: u64;
    // SAFETY: reading ICH_VTR_EL2 has no side effects.
    unsafe { asm!("mrs {}, S3_4_C12_C11_1", out(reg) vtr, options(nomem, nostack)) };
    ((vtr & 0x1f) as usize + 1).min(LRS.len())
}

/// Enables this CPU's virtual CPU interface for the guest about to run
/// (ICH_HCR_EL2.En) with empty list registers.
pub fn init_cpu() {
    for (_, write) in LRS.iter().take(implemented()) {
        write(0);
    }
    // SAFETY: ICH_HCR_EL2.En = 1, ICH_VMCR_EL2 = 0 (the guest enables its
    // groups itself); effects are limited to the virtual interface.
    unsafe {
        asm!(
            "msr S3_4_C12_C11_7, xzr",
            "msr S3_4_C12_C11_0, {en}",
            "isb",
            en = in(reg) 1u64,
            options(nomem, nostack)
        )
    };
}

fn place(lr: u64) -> Result<(), InjectError> {
    let vintid = lr & 0xffff_ffff;
    let lrs = &LRS[..implemented()];
    // Already pending in some list register: nothing to add (interrupts
    // are not counted, as on the physical GIC).
    if lrs.iter().any(|(read, _)| {
        let v = read();
        v & LR_STATE == LR_PENDING && v & 0xffff_ffff == vintid
    }) {
        return Ok(());
    }
    let (_, write) =
        lrs.iter().find(|(read, _)| read() & LR_STATE == 0).ok_or(InjectError::ListRegistersFull)?;
    write(lr);
    // SAFETY: orders the list-register write before the return to the guest.
    unsafe { asm!("isb", options(nomem, nostack)) };
    Ok(())
}

/// Makes physical interrupt `intid` pending for the guest on this CPU as the
/// same virtual INTID, linked (HW = 1) so the guest's EOI deactivates it.
pub fn inject_hw(intid: u32) -> Result<(), InjectError> {
    place(LR_PENDING | LR_HW | LR_GROUP1 | LR_PRIORITY | (u64::from(intid) << 32) | u64::from(intid))
}

/// Makes virtual interrupt `vintid` pending for the guest on this CPU, with
/// no physical interrupt behind it.
pub fn inject_virtual(vintid: u32) -> Result<(), InjectError> {
    place(LR_PENDING | LR_GROUP1 | LR_PRIORITY | u64::from(vintid))
}
