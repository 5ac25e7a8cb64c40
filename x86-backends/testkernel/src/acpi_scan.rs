//! Just enough ACPI to see which tables firmware published (ACPI 6.5 §5.2.5
//! RSDP, §5.2.7 RSDT, §5.2.8 XSDT): signatures and checksums, nothing
//! parsed. The real parser is `x86-backends`' `acpi` module; this kernel's
//! platform tests must not depend on it.

use crate::phys;

/// Why the tables could not be walked.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum AcpiError {
    /// A structure lies outside the identity map.
    NotMapped(u64),
    /// The RSDP does not start with "RSD PTR ".
    RsdpSignature(u64),
    /// The first 20 bytes of the RSDP do not sum to 0.
    RsdpChecksum,
    /// The revision 2 RSDP's extended checksum over `Length` bytes fails.
    RsdpExtendedChecksum,
    /// The root table has neither "XSDT" nor "RSDT" as its signature.
    RootSignature(u64),
    /// A table header's `Length` is shorter than the header or implausible.
    BadLength(u64),
    /// A table's bytes do not sum to 0.
    TableChecksum(u64),
}

/// The RSDP, checked.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct Rsdp {
    /// Where it is.
    pub pa: u64,
    /// 0 for ACPI 1.0 (RSDT only), 2 for 2.0+ (XSDT too).
    pub revision: u8,
    /// The RSDT's physical address.
    pub rsdt: u32,
    /// The XSDT's physical address (revision 2 and up; 0 otherwise).
    pub xsdt: u64,
}

/// The table headers are 36 bytes; `Length` is at offset 4.
const HEADER_LEN: usize = 36;
/// Tables larger than this are refused as implausible for a root table.
const ROOT_MAX_LEN: u32 = 64 * 1024;

fn sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |a, &b| a.wrapping_add(b))
}

/// Reads firmware memory.
fn firmware(pa: u64, len: usize) -> Result<&'static [u8], AcpiError> {
    // SAFETY: ACPI tables are in RAM/ROM that firmware filled before the
    // entry and nothing writes afterwards; `bytes` checks the mapping.
    unsafe { phys::bytes(pa, len) }.ok_or(AcpiError::NotMapped(pa))
}

/// Checks the RSDP at `pa`.
pub fn rsdp(pa: u64) -> Result<Rsdp, AcpiError> {
    let b = firmware(pa, 20)?;
    if &b[..8] != b"RSD PTR " {
        return Err(AcpiError::RsdpSignature(pa));
    }
    if sum(b) != 0 {
        return Err(AcpiError::RsdpChecksum);
    }
    let revision = b[15];
    let rsdt = u32::from_le_bytes([b[16], b[17], b[18], b[19]]);
    let mut xsdt = 0;
    if revision >= 2 {
        let ext = firmware(pa, 36)?;
        let len = u32::from_le_bytes([ext[20], ext[21], ext[22], ext[23]]) as usize;
        let whole = firmware(pa, len.clamp(36, 1024))?;
        if sum(whole) != 0 {
            return Err(AcpiError::RsdpExtendedChecksum);
        }
        xsdt = u64::from_le_bytes(ext[24..32].try_into().unwrap_or_default());
    }
    Ok(Rsdp { pa, revision, rsdt, xsdt })
}

/// The signature of the table at `pa`.
pub fn signature(pa: u64) -> Result<[u8; 4], AcpiError> {
    let b = firmware(pa, 4)?;
    Ok([b[0], b[1], b[2], b[3]])
}

/// The root table (XSDT when the RSDP offers one, else the RSDT), checked.
#[derive(Clone, Copy, Debug)]
pub struct RootTable {
    /// Where it is.
    pub pa: u64,
    /// "XSDT" or "RSDT".
    pub signature: [u8; 4],
    entries: &'static [u8],
    entry_size: usize,
}

impl RootTable {
    /// Checks the root table the RSDP names.
    pub fn from_rsdp(rsdp: &Rsdp) -> Result<Self, AcpiError> {
        let (pa, want, entry_size) =
            if rsdp.xsdt != 0 { (rsdp.xsdt, b"XSDT", 8) } else { (u64::from(rsdp.rsdt), b"RSDT", 4) };
        let header = firmware(pa, HEADER_LEN)?;
        if &header[..4] != want {
            return Err(AcpiError::RootSignature(pa));
        }
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if (len as usize) < HEADER_LEN || len > ROOT_MAX_LEN {
            return Err(AcpiError::BadLength(pa));
        }
        let whole = firmware(pa, len as usize)?;
        if sum(whole) != 0 {
            return Err(AcpiError::TableChecksum(pa));
        }
        Ok(Self { pa, signature: *want, entries: &whole[HEADER_LEN..], entry_size })
    }

    /// The physical addresses of the tables it lists.
    pub fn tables(&self) -> impl Iterator<Item = u64> + '_ {
        self.entries.chunks_exact(self.entry_size).map(|e| {
            let mut w = [0u8; 8];
            w[..e.len()].copy_from_slice(e);
            u64::from_le_bytes(w)
        })
    }

    /// The address of the first listed table with signature `sig`.
    pub fn find(&self, sig: &[u8; 4]) -> Option<u64> {
        self.tables().find(|&pa| signature(pa).is_ok_and(|s| &s == sig))
    }
}

/// A readable form of a signature for the log.
pub fn sig_str(sig: &[u8; 4]) -> &str {
    core::str::from_utf8(sig).unwrap_or("????")
}
