//! The error every `decode()` of this module returns.

use core::fmt;

/// Why a value read from memory or a register is not a valid encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Bits set outside the fields this crate models (reserved, ignored or
    /// not yet supported), in 64-bit word `word` of the structure.
    UnmodelledBits {
        /// Index of the 64-bit word.
        word: u8,
        /// The offending bits.
        bits: u64,
    },
    /// A field holds a value the spec reserves.
    Reserved {
        /// Spec name of the field, e.g. `"context-entry.AW"`.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A format this crate does not model (e.g. the posted-interrupt IRTE).
    Unsupported {
        /// What was found.
        what: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnmodelledBits { word, bits } => write!(f, "word {word}: unmodelled bits {bits:#x} set"),
            Self::Reserved { field, value } => write!(f, "{field}: reserved value {value:#x}"),
            Self::Unsupported { what } => write!(f, "unsupported format: {what}"),
        }
    }
}
