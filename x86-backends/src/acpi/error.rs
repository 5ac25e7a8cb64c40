//! What went wrong, in which table, at which byte.

use core::fmt;

/// A 4-byte ACPI table signature (`DMAR`, `IVRS`, ...).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 4]);

impl Signature {
    /// The RSDP, whose real signature is the 8 bytes `"RSD PTR "`.
    pub const RSDP: Self = Self(*b"RSD ");
    /// Root System Description Table (32-bit entries).
    pub const RSDT: Self = Self(*b"RSDT");
    /// Extended System Description Table (64-bit entries).
    pub const XSDT: Self = Self(*b"XSDT");
    /// DMA Remapping Reporting table (Intel VT-d spec ch. 8).
    pub const DMAR: Self = Self(*b"DMAR");
    /// I/O Virtualization Reporting Structure (AMD IOMMU spec §5.2).
    pub const IVRS: Self = Self(*b"IVRS");
    /// Stands for a table too short to hold its own signature.
    pub const UNKNOWN: Self = Self(*b"????");
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in &self.0 {
            let c = if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' };
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// A malformed or unreachable table: which table, at which byte offset from
/// the table's first byte, and what.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    /// The table the fault is in (for a table that cannot be reached, the
    /// root table that points at it).
    pub table: Signature,
    /// Byte offset of the faulty field or structure inside `table`.
    pub offset: usize,
    /// What is wrong there.
    pub kind: ErrorKind,
}

impl Error {
    pub(crate) const fn new(table: Signature, offset: usize, kind: ErrorKind) -> Self {
        Self { table, offset, kind }
    }
}

/// The kinds of [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The structure starting at the offset runs past the end of its table
    /// (or of the structure that contains it).
    Truncated,
    /// The length field at the offset is smaller than the structure's fixed
    /// part, or not a size the structure can have.
    BadLength,
    /// The bytes do not sum to zero; the offset is the checksum field.
    Checksum,
    /// The table is not the one asked for (offset 0) or the RSDP signature
    /// is wrong.
    WrongSignature,
    /// An IVHD start-of-range entry not immediately followed by an
    /// end-of-range entry.
    RangeWithoutEnd,
    /// An IVHD end-of-range entry with no start-of-range entry before it.
    EndWithoutStart,
    /// A range whose end lies before its start, or that overflows.
    InvertedRange,
    /// An IVHD device entry of a variable-length type this code does not
    /// know, so its length (and everything after it) cannot be known.
    UnknownEntry(u8),
    /// A field holds a value the spec does not allow (a PCI device number
    /// above 31, a function above 7, ...).
    InvalidField,
    /// [`PhysMem`](super::PhysMem) could not supply the bytes the field at
    /// the offset points to.
    Unmapped,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::Truncated => "structure runs past the end of its table",
            ErrorKind::BadLength => "bad length field",
            ErrorKind::Checksum => "checksum mismatch",
            ErrorKind::WrongSignature => "wrong signature",
            ErrorKind::RangeWithoutEnd => "start of range without end of range",
            ErrorKind::EndWithoutStart => "end of range without start of range",
            ErrorKind::InvertedRange => "range ends before it starts",
            ErrorKind::UnknownEntry(t) => {
                return write!(
                    f,
                    "{}+{:#x}: unknown variable-length entry type {t:#04x}",
                    self.table, self.offset
                )
            }
            ErrorKind::InvalidField => "field value not allowed by the spec",
            ErrorKind::Unmapped => "points at memory that cannot be read",
        };
        write!(f, "{}+{:#x}: {what}", self.table, self.offset)
    }
}
