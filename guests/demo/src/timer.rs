//! Time from the generic timer's virtual counter (CNTVCT_EL0 at CNTFRQ_EL0).

use aarch64_cpu::{
    asm::barrier,
    registers::{Readable, CNTFRQ_EL0, CNTVCT_EL0},
};

/// Counter frequency used when CNTFRQ_EL0 reads 0 (firmware did not set it).
const FALLBACK_HZ: u64 = 62_500_000;

/// Counter ticks per second.
pub fn frequency() -> u64 {
    match CNTFRQ_EL0.get() {
        0 => FALLBACK_HZ,
        f => f,
    }
}

/// The counter now; the ISB keeps the read from being hoisted.
pub fn now() -> u64 {
    barrier::isb(barrier::SY);
    CNTVCT_EL0.get()
}

/// A point in time to poll against.
#[derive(Clone, Copy)]
pub struct Deadline {
    start: u64,
    end: u64,
}

impl Deadline {
    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Self {
        let start = now();
        let ticks = frequency().saturating_mul(ms) / 1000;
        Self { start, end: start.saturating_add(ticks) }
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        now() >= self.end
    }

    /// Milliseconds since the deadline was set.
    pub fn elapsed_ms(&self) -> u64 {
        now().wrapping_sub(self.start).saturating_mul(1000) / frequency()
    }
}
