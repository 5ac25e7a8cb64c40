//! Small helpers over `tock-registers` fields for the in-memory structures,
//! whose layouts are declared with `register_bitfields!` like the registers.

use tock_registers::fields::Field;
use tock_registers::RegisterLongName;

/// The bits a field occupies, in place.
pub(crate) fn bits<R: RegisterLongName>(f: Field<u64, R>) -> u64 {
    f.mask << f.shift
}

/// `Err(UnmodelledBits)` if `word` has bits set outside `allowed`.
pub(crate) fn check_word(word_index: u8, word: u64, allowed: u64) -> Result<(), crate::vtd::DecodeError> {
    if word & !allowed != 0 {
        Err(crate::vtd::DecodeError::UnmodelledBits { word: word_index, bits: word & !allowed })
    } else {
        Ok(())
    }
}
