//! The architected timer (Linux `timer/arm,arch_timer.yaml`): PPIs in the
//! fixed order secure physical, non-secure physical, virtual, hypervisor
//! physical, and optionally hypervisor virtual.

use super::error::DtError;
use super::irq::{self, GicTarget};
use super::walk::At;
use crate::platform::{Irq, IrqKind, Timer};

pub(crate) const ARMV8_TIMER: &str = "arm,armv8-timer";

/// Decodes an `arm,armv8-timer` node; `None` if its interrupts do not go to
/// the GIC.
pub(crate) fn parse(at: &At<'_, '_>, gic: &GicTarget) -> Result<Option<Timer>, DtError> {
    let Some(list) = irq::interrupts(at, gic)? else {
        return Ok(None);
    };
    if list.count() < 4 {
        return Err(at.bad("interrupts", "fewer than 4 timer interrupts"));
    }
    let ppi = |i: usize| -> Result<Option<Irq>, DtError> {
        match list.get(at, i)? {
            Some(irq) if irq.kind != IrqKind::Ppi => {
                Err(at.bad("interrupts", "a timer interrupt that is not a PPI"))
            }
            other => Ok(other),
        }
    };
    let need = |i: usize| -> Result<Irq, DtError> {
        ppi(i)?.ok_or_else(|| at.bad("interrupts", "fewer than 4 timer interrupts"))
    };
    Ok(Some(Timer {
        secure_phys: need(0)?,
        phys: need(1)?,
        virt: need(2)?,
        hyp_phys: need(3)?,
        hyp_virt: ppi(4)?,
    }))
}
