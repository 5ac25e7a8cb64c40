//! Small helpers over `tock-registers` fields for the in-memory structures
//! (STE, CD, commands, event records), whose layouts are declared with
//! `register_bitfields!` like the MMIO registers.

use tock_registers::fields::Field;
use tock_registers::RegisterLongName;

/// The bits a field occupies, in place.
pub(crate) fn bits<R: RegisterLongName>(f: Field<u64, R>) -> u64 {
    f.mask << f.shift
}
