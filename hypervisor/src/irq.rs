//! Interrupt dispatch for the hypervisor's own physical interrupts: a small
//! fixed table from INTID to handler, filled at bring-up, walked by the IRQ
//! vector.

use crate::gic::v3;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

const SLOTS: usize = 16;

static INTIDS: [AtomicU32; SLOTS] = [const { AtomicU32::new(u32::MAX) }; SLOTS];
static HANDLERS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static SPURIOUS: AtomicU32 = AtomicU32::new(0);

/// The table is full.
#[derive(Clone, Copy, defmt::Format)]
pub struct NoSlot;

/// Calls `handler` for `intid` from now on (replacing an earlier one).
pub fn register(intid: u32, handler: fn(u32)) -> Result<(), NoSlot> {
    let slot = INTIDS
        .iter()
        .position(|i| i.load(Ordering::Acquire) == intid)
        .or_else(|| INTIDS.iter().position(|i| i.load(Ordering::Acquire) == u32::MAX))
        .ok_or(NoSlot)?;
    HANDLERS[slot].store(handler as usize, Ordering::Release);
    INTIDS[slot].store(intid, Ordering::Release);
    Ok(())
}

/// Unmasks IRQs on this CPU (PSTATE.I).
pub fn enable_local() {
    // SAFETY: clearing the I mask; handlers are installed before.
    unsafe { core::arch::asm!("msr daifclr, #2", options(nomem, nostack)) };
}

/// The IRQ vector's work: acknowledge, dispatch, end.
pub fn handle() {
    let intid = v3::acknowledge();
    if v3::is_spurious(intid) {
        SPURIOUS.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let handler = INTIDS
        .iter()
        .position(|i| i.load(Ordering::Acquire) == intid)
        .map(|s| HANDLERS[s].load(Ordering::Acquire));
    match handler {
        Some(h) if h != 0 => {
            // SAFETY: only `register` stores into HANDLERS, always a `fn(u32)`.
            let f: fn(u32) = unsafe { core::mem::transmute::<usize, fn(u32)>(h) };
            f(intid);
        }
        _ => defmt::warn!("IRQ {=u32} has no handler", intid),
    }
    v3::end_of_interrupt(intid);
}
