//! The root of the tables: RSDP → XSDT (or RSDT) → every other table.

use iommu_common::addr::PhysAddr;

use super::bytes::{u32_at, u64_at};
use super::dmar::Dmar;
use super::error::{Error, ErrorKind, Signature};
use super::ivrs::Ivrs;
use super::phys::PhysMem;
use super::rsdp::Rsdp;
use super::sdt::{table_length, Sdt, HEADER_LEN};

/// The system's ACPI tables, reached from a checked root table.
///
/// The XSDT is used when the RSDP (revision 2 or later) gives one, the RSDT
/// otherwise, as ACPI 6.5 §5.2.5.3 asks.
#[derive(Clone, Copy, Debug)]
pub struct AcpiTables<'m, M: PhysMem + ?Sized> {
    mem: &'m M,
    rsdp: Rsdp,
    root: Sdt<'m>,
}

impl<'m, M: PhysMem + ?Sized> AcpiTables<'m, M> {
    /// Reads the RSDP at `rsdp_pa` and the root table it names.
    pub fn new(mem: &'m M, rsdp_pa: PhysAddr) -> Result<Self, Error> {
        Self::from_rsdp(mem, Rsdp::read(mem, rsdp_pa)?)
    }

    /// Reads and checks the root table named by an already checked RSDP.
    pub fn from_rsdp(mem: &'m M, rsdp: Rsdp) -> Result<Self, Error> {
        let (pa, want, field) = match rsdp.xsdt() {
            Some(x) => (x, Signature::XSDT, 24),
            None => (rsdp.rsdt(), Signature::RSDT, 16),
        };
        let unmapped = Error::new(Signature::RSDP, field, ErrorKind::Unmapped);
        let root = read_table(mem, pa).map_err(|e| e.unwrap_or(unmapped))?;
        if root.signature() != want {
            return Err(Error::new(root.signature(), 0, ErrorKind::WrongSignature));
        }
        let entry = if want == Signature::XSDT { 8 } else { 4 };
        if root.body().len() % entry != 0 {
            return Err(Error::new(want, 4, ErrorKind::BadLength));
        }
        Ok(Self { mem, rsdp, root })
    }

    /// The RSDP the tables were reached from.
    pub fn rsdp(&self) -> &Rsdp {
        &self.rsdp
    }

    /// The root table (XSDT or RSDT).
    pub fn root(&self) -> Sdt<'m> {
        self.root
    }

    /// The addresses the root table lists, each with the offset of its entry
    /// in the root table.
    pub fn entries(&self) -> impl Iterator<Item = (usize, PhysAddr)> + 'm {
        let root = self.root;
        let wide = root.signature() == Signature::XSDT;
        let size = if wide { 8 } else { 4 };
        let count = root.body().len() / size;
        (0..count).map(move |i| {
            let off = HEADER_LEN + i * size;
            let pa = if wide {
                u64_at(root.bytes(), off).unwrap_or(0)
            } else {
                u64::from(u32_at(root.bytes(), off).unwrap_or(0))
            };
            (off, PhysAddr(pa))
        })
    }

    /// Every table the root lists, each checked; one that cannot be read is
    /// an error at its entry in the root table.
    pub fn tables(&self) -> impl Iterator<Item = Result<Sdt<'m>, Error>> + 'm {
        let mem = self.mem;
        let root_sig = self.root.signature();
        self.entries().map(move |(off, pa)| {
            read_table(mem, pa).map_err(|e| e.unwrap_or(Error::new(root_sig, off, ErrorKind::Unmapped)))
        })
    }

    /// The first table with signature `sig`, checked. Strict on purpose: an
    /// entry that cannot be read, or whose header cannot, stops the search
    /// with an error, since the unreadable table might be the one wanted.
    /// A table with another signature and a bad checksum is passed over.
    pub fn find(&self, sig: Signature) -> Result<Option<Sdt<'m>>, Error> {
        let root_sig = self.root.signature();
        for (off, pa) in self.entries() {
            let header =
                self.mem.read(pa, HEADER_LEN).map_err(|_| Error::new(root_sig, off, ErrorKind::Unmapped))?;
            if header.get(..4) != Some(&sig.0[..]) {
                continue;
            }
            return read_table(self.mem, pa)
                .map(Some)
                .map_err(|e| e.unwrap_or(Error::new(root_sig, off, ErrorKind::Unmapped)));
        }
        Ok(None)
    }

    /// The DMAR, parsed and validated, if the system has one.
    pub fn dmar(&self) -> Result<Option<Dmar<'m>>, Error> {
        self.find(Signature::DMAR)?.map(Dmar::from_sdt).transpose()
    }

    /// The IVRS, parsed and validated, if the system has one.
    pub fn ivrs(&self) -> Result<Option<Ivrs<'m>>, Error> {
        self.find(Signature::IVRS)?.map(Ivrs::from_sdt).transpose()
    }
}

/// Reads the table at `pa`: its header, then as many bytes as the header
/// says, then checks it. `Err(None)` means memory could not be read.
fn read_table<M: PhysMem + ?Sized>(mem: &M, pa: PhysAddr) -> Result<Sdt<'_>, Option<Error>> {
    let header = mem.read(pa, HEADER_LEN).map_err(|_| None)?;
    let len = table_length(header).unwrap_or(0);
    if len < HEADER_LEN {
        // Let the parser name the fault.
        return Sdt::parse(header).map_err(Some);
    }
    let bytes = mem.read(pa, len).map_err(|_| None)?;
    Sdt::parse(bytes).map_err(Some)
}
