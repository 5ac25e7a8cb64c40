//! `role=stray addr=0xADDR`: a CPU load from a guest-physical address the
//! partition does not own. Under Bulkhead the access traps to the
//! hypervisor, which reports it and hands it back as a synchronous external
//! abort; the exception vector then reports what it got.

use crate::{bootargs, println};
use core::sync::atomic::{AtomicU64, Ordering};

/// The address of the one access this role expects to abort (0: none).
static EXPECTED_ABORT: AtomicU64 = AtomicU64::new(0);

/// Runs the role; returns only if the load completed (it must not).
pub fn run(args: &str) {
    let Some(addr) = bootargs::get(args, "addr").and_then(bootargs::parse_u64).filter(|a| a % 8 == 0) else {
        println!("stray: FAIL: no 8-byte aligned addr=0xADDR in bootargs");
        return;
    };
    println!("stray: loading from {addr:#x}, outside this partition");
    EXPECTED_ABORT.store(addr, Ordering::SeqCst);
    // SAFETY: deliberately reads an address the partition does not own;
    // the hypervisor turns the access into an abort taken by our vector.
    let v = unsafe { core::ptr::read_volatile(addr as usize as *const u64) };
    println!("stray: FAIL: the load completed and returned {v:#x}");
}

/// Called by the exception vector: whether this is the abort the role
/// provoked (then it reports it).
pub fn is_expected(esr: u64, far: u64) -> bool {
    let addr = EXPECTED_ABORT.load(Ordering::SeqCst);
    let ec = esr >> 26;
    let dfsc = esr & 0x3f;
    if addr == 0 || far != addr || ec != 0x25 {
        return false;
    }
    println!("stray: the load from {far:#x} was refused: data abort, DFSC {dfsc:#x} (ESR {esr:#x})");
    true
}
