//! The defmt global logger: rzcobs-framed defmt frames on the console UART,
//! decoded on the host by `cargo xtask run` / `test` against the ELF.
//!
//! Frames from different CPUs never interleave: a frame is written under a
//! lock with interrupts masked. Before the secondaries start (and before the
//! MMU is on, when exclusive accesses are not reliable on real hardware) only
//! one CPU runs and the lock is skipped. A CPU that faults while holding the
//! lock (an exception inside the logger) takes it over instead of deadlocking.

use crate::console::pl011::Pl011;
use aarch64_cpu::registers::{Readable, Writeable, CNTFRQ_EL0, CNTPCT_EL0, DAIF, TPIDR_EL2};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// MMIO base of the console UART, 0 while there is none (bytes are dropped).
static CONSOLE_BASE: AtomicUsize = AtomicUsize::new(0);
/// Set once more than one CPU may log.
static SHARED: AtomicBool = AtomicBool::new(false);
/// Lock owner: logical CPU index + 1, or 0 when free.
static OWNER: AtomicU64 = AtomicU64::new(0);
/// DAIF of the lock holder before it masked interrupts.
static SAVED_DAIF: AtomicU64 = AtomicU64::new(0);

struct EncoderCell(UnsafeCell<defmt::Encoder>);
// SAFETY: only touched between `acquire` and `release`, i.e. by the lock holder.
unsafe impl Sync for EncoderCell {}
static ENCODER: EncoderCell = EncoderCell(UnsafeCell::new(defmt::Encoder::new()));

/// Directs the log to the PL011 at `base` (identity mapped or MMU off).
pub fn set_console(base: usize, clock_hz: Option<u32>) {
    // SAFETY: the caller names the board's console UART from the DT or the
    // board description; it stays mapped as device memory.
    unsafe { Pl011::new(base) }.init(clock_hz);
    CONSOLE_BASE.store(base, Ordering::Release);
}

/// The console UART, once one is set (its receive side carries what the
/// user types to the partitions).
pub fn console_uart() -> Option<Pl011> {
    let base = CONSOLE_BASE.load(Ordering::Acquire);
    // SAFETY: `base` was validated by `set_console`.
    (base != 0).then(|| unsafe { Pl011::new(base) })
}

/// From now on several CPUs may log: frames are serialised by the lock.
pub fn enable_shared() {
    SHARED.store(true, Ordering::Release);
}

fn emit(bytes: &[u8]) {
    let base = CONSOLE_BASE.load(Ordering::Acquire);
    if base != 0 {
        // SAFETY: `base` was validated by `set_console`.
        unsafe { Pl011::new(base) }.write(bytes);
    }
}

#[defmt::global_logger]
struct Logger;

// SAFETY: `acquire`/`release` bracket every frame under the lock below with
// interrupts masked, which is the exclusivity defmt requires of the encoder.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        let daif = DAIF.get();
        // SAFETY: masking D, A, I and F on this CPU has no memory effects.
        unsafe { core::arch::asm!("msr daifset, #0xf", options(nomem, nostack)) };
        if SHARED.load(Ordering::Acquire) {
            let me = TPIDR_EL2.get() + 1;
            loop {
                match OWNER.compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed) {
                    Ok(_) => break,
                    // Re-entered from an exception on this CPU: take the lock over.
                    Err(owner) if owner == me => break,
                    Err(_) => core::hint::spin_loop(),
                }
            }
        }
        SAVED_DAIF.store(daif, Ordering::Relaxed);
        // SAFETY: we hold the lock (or are the only CPU running).
        unsafe { (*ENCODER.0.get()).start_frame(emit) }
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: called by the lock holder, after `acquire`.
        unsafe { (*ENCODER.0.get()).end_frame(emit) };
        let daif = SAVED_DAIF.load(Ordering::Relaxed);
        if SHARED.load(Ordering::Acquire) {
            OWNER.store(0, Ordering::Release);
        }
        DAIF.set(daif);
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: called by the lock holder, between `acquire` and `release`.
        unsafe { (*ENCODER.0.get()).write(bytes, emit) }
    }
}

/// Microseconds since the counter started, from the architected timer.
pub fn uptime_us() -> u64 {
    let freq = CNTFRQ_EL0.get().max(1);
    let ticks = CNTPCT_EL0.get();
    ((u128::from(ticks) * 1_000_000) / u128::from(freq)) as u64
}

defmt::timestamp!("{=u64:us}", uptime_us());

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    crate::exit::fail(crate::exit::ExitCode::Panic)
}

/// Records this CPU's logical index where the logger and exception code can
/// find it.
pub fn set_cpu_index(index: usize) {
    TPIDR_EL2.set(index as u64);
}

/// The logical index of the CPU running this code (set by [`set_cpu_index`]).
pub fn cpu_index() -> usize {
    TPIDR_EL2.get() as usize
}
