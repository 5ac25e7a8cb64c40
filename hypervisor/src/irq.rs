//! Interrupt dispatch for the hypervisor's own physical interrupts: a small
//! fixed table from INTID to handler, filled at bring-up, walked by the IRQ
//! vector.

use crate::gic::v3;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

const SLOTS: usize = 16;

static INTIDS: [AtomicU32; SLOTS] = [const { AtomicU32::new(u32::MAX) }; SLOTS];
static HANDLERS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static SPURIOUS: AtomicU32 = AtomicU32::new(0);
/// INTIDs that belong to the guest of the CPU they arrive on (one bit each).
static FORWARDED: [AtomicU32; 32] = [const { AtomicU32::new(0) }; 32];

/// From now on, `intid` is injected into the guest running on the CPU that
/// takes it (HW-linked: the guest's EOI deactivates it).
pub fn forward(intid: u32) {
    if let Some(w) = FORWARDED.get((intid / 32) as usize) {
        w.fetch_or(1 << (intid % 32), Ordering::AcqRel);
    }
}

fn is_forwarded(intid: u32) -> bool {
    FORWARDED.get((intid / 32) as usize).is_some_and(|w| w.load(Ordering::Acquire) & (1 << (intid % 32)) != 0)
}

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
    if is_forwarded(intid) {
        // Only the priority drop here: the interrupt stays active until the
        // guest's EOI of the linked virtual interrupt deactivates it.
        v3::priority_drop(intid);
        if crate::vcpu::power(crate::vcpu::this_cpu()) != crate::vcpu::Power::On {
            // A timer left armed by a guest that stopped: turn it off.
            if crate::vcpu::GUEST_TIMER_PPIS.contains(&intid) {
                crate::vcpu::quiesce_guest_timers();
            } else {
                defmt::warn!("IRQ {=u32} belongs to a guest, but no vCPU runs on this CPU", intid);
            }
            v3::deactivate(intid);
        } else if let Err(e) = crate::vgic::inject_hw(intid) {
            defmt::warn!("IRQ {=u32} not injected: {}", intid, e);
            v3::deactivate(intid);
        }
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
