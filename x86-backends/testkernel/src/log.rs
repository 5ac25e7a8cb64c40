//! The defmt global logger: rzcobs-framed defmt frames on COM1, the same
//! framing as the ARM hypervisor's (`hypervisor/src/log.rs`), decoded on the
//! host by `cargo xtask` against this ELF. One CPU, interrupts never enabled:
//! a frame is only ever interrupted by a panic inside the logger, which then
//! takes the encoder over (the frame in progress is lost, not the panic's).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

static TAKEN: AtomicBool = AtomicBool::new(false);

struct EncoderCell(UnsafeCell<defmt::Encoder>);
// SAFETY: only touched between `acquire` and `release` on the one CPU.
unsafe impl Sync for EncoderCell {}
static ENCODER: EncoderCell = EncoderCell(UnsafeCell::new(defmt::Encoder::new()));

#[defmt::global_logger]
struct Logger;

// SAFETY: a single CPU with interrupts off runs this kernel, so frames are
// exclusive by construction; re-entry (a panic mid-frame) restarts the frame.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        // Re-entered from a panic inside a frame: carry on with a new frame.
        let _ = TAKEN.swap(true, Ordering::Acquire);
        // SAFETY: the only CPU, between acquire and release.
        unsafe { (*ENCODER.0.get()).start_frame(crate::serial::write) }
    }

    unsafe fn flush() {}

    unsafe fn release() {
        // SAFETY: called after `acquire`, on the only CPU.
        unsafe { (*ENCODER.0.get()).end_frame(crate::serial::write) };
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        // SAFETY: called between `acquire` and `release`.
        unsafe { (*ENCODER.0.get()).write(bytes, crate::serial::write) }
    }
}

defmt::timestamp!("{=u64:us}", crate::tsc::uptime_us());

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    crate::exit::fail(crate::exit::ExitCode::Panic)
}
