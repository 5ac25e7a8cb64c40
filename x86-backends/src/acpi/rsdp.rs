//! The Root System Description Pointer (ACPI 6.5 §5.2.5.3): revision 0 (20
//! bytes, RSDT only) and revision 2 (36 bytes, adds the XSDT).

use iommu_common::addr::PhysAddr;

use super::bytes::{array_at, sums_to_zero, u32_at, u64_at, u8_at};
use super::error::{Error, ErrorKind, Signature};
use super::phys::PhysMem;

const V1_LEN: usize = 20;
const V2_LEN: usize = 36;
const RSDP_SIGNATURE: &[u8; 8] = b"RSD PTR ";

/// A checked RSDP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rsdp {
    revision: u8,
    oem_id: [u8; 6],
    rsdt: PhysAddr,
    xsdt: Option<PhysAddr>,
}

impl Rsdp {
    /// Parses and checks the RSDP at the start of `bytes`: the signature, the
    /// checksum of the first 20 bytes and, for revision 2 and later, the
    /// length and the extended checksum over the whole structure.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let err = |offset, kind| Error::new(Signature::RSDP, offset, kind);
        let v1 = bytes.get(..V1_LEN).ok_or(err(0, ErrorKind::Truncated))?;
        if array_at::<8>(v1, 0).as_ref() != Some(RSDP_SIGNATURE) {
            return Err(err(0, ErrorKind::WrongSignature));
        }
        if !sums_to_zero(v1) {
            return Err(err(8, ErrorKind::Checksum));
        }
        let revision = u8_at(v1, 15).unwrap_or(0);
        let oem_id = array_at(v1, 9).unwrap_or_default();
        let rsdt = PhysAddr(u64::from(u32_at(v1, 16).unwrap_or(0)));
        let mut xsdt = None;
        if revision >= 2 {
            let len = u32_at(bytes, 20).ok_or(err(0, ErrorKind::Truncated))?;
            let len = usize::try_from(len).map_err(|_| err(20, ErrorKind::BadLength))?;
            if len < V2_LEN {
                return Err(err(20, ErrorKind::BadLength));
            }
            let all = bytes.get(..len).ok_or(err(20, ErrorKind::Truncated))?;
            if !sums_to_zero(all) {
                return Err(err(32, ErrorKind::Checksum));
            }
            xsdt = u64_at(all, 24).filter(|&a| a != 0).map(PhysAddr);
        }
        Ok(Self { revision, oem_id, rsdt, xsdt })
    }

    /// Reads and checks the RSDP at `pa`.
    pub fn read<M: PhysMem + ?Sized>(mem: &M, pa: PhysAddr) -> Result<Self, Error> {
        let err = |offset, kind| Error::new(Signature::RSDP, offset, kind);
        let v1 = mem.read(pa, V1_LEN).map_err(|_| err(0, ErrorKind::Unmapped))?;
        if u8_at(v1, 15).unwrap_or(0) < 2 || array_at::<8>(v1, 0).as_ref() != Some(RSDP_SIGNATURE) {
            return Self::parse(v1);
        }
        let len = match mem.read(pa, V2_LEN) {
            Ok(b) => u32_at(b, 20).and_then(|l| usize::try_from(l).ok()).unwrap_or(0),
            Err(_) => return Err(err(0, ErrorKind::Unmapped)),
        };
        if len < V2_LEN {
            return Err(err(20, ErrorKind::BadLength));
        }
        Self::parse(mem.read(pa, len).map_err(|_| err(20, ErrorKind::Unmapped))?)
    }

    /// Looks for the RSDP on the 16-byte boundaries of `[start, end)`, as a
    /// BIOS system is searched (the EBDA's first KiB and `0xe0000..0x100000`,
    /// ACPI 6.5 §5.2.5.1). Returns the address and the RSDP of the first
    /// candidate whose checks pass.
    pub fn search<M: PhysMem + ?Sized>(mem: &M, start: PhysAddr, end: PhysAddr) -> Option<(PhysAddr, Self)> {
        let mut pa = start.align_up(16).ok()?;
        while pa.raw().checked_add(V1_LEN as u64)? <= end.raw() {
            if let Ok(b) = mem.read(pa, RSDP_SIGNATURE.len()) {
                if b == RSDP_SIGNATURE {
                    if let Ok(rsdp) = Self::read(mem, pa) {
                        return Some((pa, rsdp));
                    }
                }
            }
            pa = pa.checked_add(16).ok()?;
        }
        None
    }

    /// The RSDP's revision: 0 for ACPI 1.0, 2 for ACPI 2.0 and later.
    pub fn revision(&self) -> u8 {
        self.revision
    }

    /// OEM ID.
    pub fn oem_id(&self) -> [u8; 6] {
        self.oem_id
    }

    /// The RSDT's address (32-bit entries).
    pub fn rsdt(&self) -> PhysAddr {
        self.rsdt
    }

    /// The XSDT's address, for revision 2 and later when it is not zero.
    pub fn xsdt(&self) -> Option<PhysAddr> {
        self.xsdt
    }
}
