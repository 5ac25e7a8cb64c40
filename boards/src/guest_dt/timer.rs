//! The architected timer (Linux `timer/arm,arch_timer.yaml`): four PPIs in
//! the order secure physical, non-secure physical, virtual, hypervisor
//! physical, and optionally hypervisor virtual.

use super::alloc::vec::Vec;

use super::check;
use super::error::GuestDtError;
use super::writer::{push_irq, Writer};
use crate::platform::{IrqKind, Timer};

pub(super) fn check(timer: &Timer) -> Result<(), GuestDtError> {
    for irq in [timer.secure_phys, timer.phys, timer.virt, timer.hyp_phys].iter().chain(&timer.hyp_virt) {
        check::irq("timer", irq, IrqKind::Ppi)?;
    }
    Ok(())
}

pub(super) fn write(w: &mut Writer, timer: &Timer) -> Result<(), GuestDtError> {
    let mut cells = Vec::with_capacity(15);
    for irq in [timer.secure_phys, timer.phys, timer.virt, timer.hyp_phys].iter().chain(&timer.hyp_virt) {
        push_irq(&mut cells, irq);
    }
    w.node("timer", |w| {
        w.string("compatible", "arm,armv8-timer")?;
        w.cells("interrupts", &cells)
    })
}
