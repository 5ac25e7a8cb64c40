//! Time from the TSC, calibrated once against the 8254 PIT's channel 2
//! (1.193182 MHz, gated through port 0x61 as on every PC): the log's µs
//! timestamps and the deadlines of bounded waits.

use crate::port::{inb, outb};
use core::sync::atomic::{AtomicU64, Ordering};

const PIT_HZ: u64 = 1_193_182;
const PIT_CH2: u16 = 0x42;
const PIT_MODE: u16 = 0x43;
/// NMI status and control: bit 0 gates channel 2, bit 1 drives the speaker,
/// bit 5 reads channel 2's OUT.
const PORT_61: u16 = 0x61;
/// PIT ticks of the calibration window (10 ms).
const WINDOW: u64 = PIT_HZ / 100;
/// Reads of port 0x61 before calibration gives up (the window takes a few
/// thousand under TCG).
const POLL_BUDGET: u32 = 50_000_000;
/// TSC ticks per µs assumed when calibration fails: high, so that deadlines
/// last at least as long as asked on any machine up to 4 GHz.
const FALLBACK_PER_US: u64 = 4000;

static PER_US: AtomicU64 = AtomicU64::new(FALLBACK_PER_US);
static START: AtomicU64 = AtomicU64::new(0);

/// The time-stamp counter.
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: `rdtsc` reads a counter into EDX:EAX; no memory, no flags.
    unsafe {
        core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags))
    };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Measures the TSC rate over 10 ms of PIT channel 2 (mode 0, one shot).
/// Returns ticks per µs, or `None` if OUT never rose (then
/// [`FALLBACK_PER_US`] stays in use).
pub fn calibrate() -> Option<u64> {
    START.store(rdtsc(), Ordering::Relaxed);
    // SAFETY: ports 0x42/0x43/0x61 are the PIT's channel 2 and its gate;
    // nothing else in this kernel uses them, and the speaker stays off.
    unsafe {
        outb(PORT_61, (inb(PORT_61) & !0x02) | 0x01);
        outb(PIT_MODE, 0b1011_0000); // channel 2, lobyte/hibyte, mode 0, binary
        outb(PIT_CH2, WINDOW as u8);
        outb(PIT_CH2, (WINDOW >> 8) as u8);
    }
    let t0 = rdtsc();
    let mut budget = POLL_BUDGET;
    // SAFETY: reading port 0x61 has no side effect.
    while unsafe { inb(PORT_61) } & 0x20 == 0 {
        budget = budget.checked_sub(1)?;
    }
    let ticks = rdtsc().wrapping_sub(t0);
    let per_us = (ticks * PIT_HZ / (WINDOW * 1_000_000)).max(1);
    PER_US.store(per_us, Ordering::Relaxed);
    Some(per_us)
}

/// TSC ticks per microsecond (calibrated or the fallback).
pub fn ticks_per_us() -> u64 {
    PER_US.load(Ordering::Relaxed)
}

/// Microseconds since calibration started.
pub fn uptime_us() -> u64 {
    rdtsc().wrapping_sub(START.load(Ordering::Relaxed)) / ticks_per_us()
}

/// A point in time a bounded wait gives up at.
#[derive(Clone, Copy)]
pub struct Deadline(u64);

impl Deadline {
    /// `ms` milliseconds from now.
    pub fn after_ms(ms: u64) -> Self {
        Self(rdtsc().saturating_add(ms.saturating_mul(1000).saturating_mul(ticks_per_us())))
    }

    /// Whether the deadline has passed.
    pub fn expired(&self) -> bool {
        rdtsc() >= self.0
    }
}
