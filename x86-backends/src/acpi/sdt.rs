//! The System Description Table header every table starts with (ACPI 6.5
//! §5.2.6), and a table whose length and checksum have been checked.

use super::bytes::{array_at, sums_to_zero, u32_at, u8_at};
use super::error::{Error, ErrorKind, Signature};

/// Size of the SDT header.
pub(crate) const HEADER_LEN: usize = 36;
const LENGTH_OFF: usize = 4;
const CHECKSUM_OFF: usize = 9;

/// One ACPI table: its header's length fits the bytes and its checksum holds.
/// The bytes are exactly `length` long.
#[derive(Clone, Copy, Debug)]
pub struct Sdt<'a> {
    bytes: &'a [u8],
}

impl<'a> Sdt<'a> {
    /// Checks the header, the length and the checksum of the table at the
    /// start of `bytes` (which may run on past the table's end).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let sig = array_at(bytes, 0).map_or(Signature::UNKNOWN, Signature);
        let Some(len) = table_length(bytes) else {
            return Err(Error::new(sig, 0, ErrorKind::Truncated));
        };
        if len < HEADER_LEN {
            return Err(Error::new(sig, LENGTH_OFF, ErrorKind::BadLength));
        }
        let Some(bytes) = bytes.get(..len) else {
            return Err(Error::new(sig, LENGTH_OFF, ErrorKind::Truncated));
        };
        if !sums_to_zero(bytes) {
            return Err(Error::new(sig, CHECKSUM_OFF, ErrorKind::Checksum));
        }
        Ok(Self { bytes })
    }

    /// Like [`Sdt::parse`], and the signature must be `want`.
    pub fn parse_as(bytes: &'a [u8], want: Signature) -> Result<Self, Error> {
        let sdt = Self::parse(bytes)?;
        if sdt.signature() != want {
            return Err(Error::new(sdt.signature(), 0, ErrorKind::WrongSignature));
        }
        Ok(sdt)
    }

    /// The table's signature.
    pub fn signature(&self) -> Signature {
        array_at(self.bytes, 0).map_or(Signature::UNKNOWN, Signature)
    }

    /// The table's revision (its format version).
    pub fn revision(&self) -> u8 {
        u8_at(self.bytes, 8).unwrap_or(0)
    }

    /// OEM ID.
    pub fn oem_id(&self) -> [u8; 6] {
        array_at(self.bytes, 10).unwrap_or_default()
    }

    /// OEM table ID.
    pub fn oem_table_id(&self) -> [u8; 8] {
        array_at(self.bytes, 16).unwrap_or_default()
    }

    /// OEM revision.
    pub fn oem_revision(&self) -> u32 {
        u32_at(self.bytes, 24).unwrap_or(0)
    }

    /// The whole table, header included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The table after its 36-byte header.
    pub fn body(&self) -> &'a [u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or_default()
    }
}

/// The header's length field, if the header is all there.
pub(crate) fn table_length(header: &[u8]) -> Option<usize> {
    if header.len() < HEADER_LEN {
        return None;
    }
    u32_at(header, LENGTH_OFF).and_then(|l| usize::try_from(l).ok())
}
