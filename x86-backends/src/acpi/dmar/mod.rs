//! The DMA Remapping Reporting table (Intel VT-d spec rev 4.x, ch. 8): which
//! remapping units exist, which devices each one translates, and the memory
//! ranges some devices must keep reaching.

mod scope;

pub use scope::{DeviceScope, DeviceScopes, PathEntry, ScopeType};

use iommu_common::addr::PhysAddr;

use super::bytes::{slice_at, u16_at, u64_at, u8_at};
use super::error::{Error, ErrorKind, Signature};
use super::pci::{Bdf, BusRange};
use super::sdt::Sdt;

/// Where the remapping structures start (after the header, host address
/// width, flags and 10 reserved bytes; §8.1).
const STRUCTURES: usize = 48;

/// The DMAR header flags (§8.1, Table 19).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmarFlags(pub u8);

impl DmarFlags {
    /// Bit 0: the platform supports interrupt remapping.
    pub const INTR_REMAP: u8 = 1 << 0;
    /// Bit 1: firmware asks the OS not to enable x2APIC mode.
    pub const X2APIC_OPT_OUT: u8 = 1 << 1;
    /// Bit 2: firmware set up DMA protection and the OS may opt in to keep it.
    pub const DMA_CTRL_PLATFORM_OPT_IN: u8 = 1 << 2;

    /// INTR_REMAP.
    pub fn intr_remap(self) -> bool {
        self.0 & Self::INTR_REMAP != 0
    }
    /// X2APIC_OPT_OUT.
    pub fn x2apic_opt_out(self) -> bool {
        self.0 & Self::X2APIC_OPT_OUT != 0
    }
    /// DMA_CTRL_PLATFORM_OPT_IN.
    pub fn dma_ctrl_platform_opt_in(self) -> bool {
        self.0 & Self::DMA_CTRL_PLATFORM_OPT_IN != 0
    }
}

/// A validated DMAR.
#[derive(Clone, Copy, Debug)]
pub struct Dmar<'a> {
    sdt: Sdt<'a>,
}

/// A DMA Remapping Hardware Unit Definition (§8.3): one remapping unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drhd<'a> {
    /// Offset of the structure in the DMAR.
    pub offset: usize,
    /// Flags; bit 0 is INCLUDE_PCI_ALL.
    pub flags: u8,
    /// Size of the register set: bits 3:0 give 2^N 4-KiB pages (0 in tables
    /// older than the field, meaning one page).
    pub size: u8,
    /// PCI segment.
    pub segment: u16,
    /// Base of the unit's register set.
    pub register_base: PhysAddr,
    scopes: &'a [u8],
}

impl<'a> Drhd<'a> {
    /// Flag bit: the unit covers every PCI device of its segment that no
    /// other DRHD names.
    pub const INCLUDE_PCI_ALL: u8 = 1 << 0;

    /// INCLUDE_PCI_ALL.
    pub fn include_pci_all(&self) -> bool {
        self.flags & Self::INCLUDE_PCI_ALL != 0
    }

    /// The register set's size in bytes (`2^N` 4-KiB pages).
    pub fn register_size(&self) -> u64 {
        4096u64 << (self.size & 0xf)
    }

    /// The unit's device scopes.
    pub fn scopes(&self) -> DeviceScopes<'a> {
        DeviceScopes::new(self.scopes)
    }
}

/// A Reserved Memory Region Reporting structure (§8.4): memory that the
/// devices in scope use (for instance USB legacy emulation) and that must
/// stay identity mapped for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rmrr<'a> {
    /// Offset of the structure in the DMAR.
    pub offset: usize,
    /// PCI segment.
    pub segment: u16,
    /// First byte of the region.
    pub base: PhysAddr,
    /// Last byte of the region (inclusive; checked `>= base`).
    pub limit: PhysAddr,
    scopes: &'a [u8],
}

impl<'a> Rmrr<'a> {
    /// The devices that use the region.
    pub fn scopes(&self) -> DeviceScopes<'a> {
        DeviceScopes::new(self.scopes)
    }
}

/// A Root Port ATS Capability Reporting structure (§8.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Atsr<'a> {
    /// Offset of the structure in the DMAR.
    pub offset: usize,
    /// Flags; bit 0 is ALL_PORTS.
    pub flags: u8,
    /// PCI segment.
    pub segment: u16,
    scopes: &'a [u8],
}

impl<'a> Atsr<'a> {
    /// Flag bit: every root port of the segment supports ATS.
    pub const ALL_PORTS: u8 = 1 << 0;

    /// ALL_PORTS.
    pub fn all_ports(&self) -> bool {
        self.flags & Self::ALL_PORTS != 0
    }

    /// The root ports that support ATS (when not ALL_PORTS).
    pub fn scopes(&self) -> DeviceScopes<'a> {
        DeviceScopes::new(self.scopes)
    }
}

/// A Remapping Hardware Static Affinity structure (§8.6): the NUMA node of a
/// remapping unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rhsa {
    /// Offset of the structure in the DMAR.
    pub offset: usize,
    /// The register base of the DRHD this applies to.
    pub register_base: PhysAddr,
    /// Proximity domain, as in the SRAT.
    pub proximity_domain: u32,
}

/// An ACPI Name-space Device Declaration (§8.7): names the ACPI device that
/// device scopes of type 05h refer to by number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Andd<'a> {
    /// Offset of the structure in the DMAR.
    pub offset: usize,
    /// The number device scopes use as enumeration ID.
    pub acpi_device_number: u8,
    /// The device's ACPI object name (`\_SB.PCI0.XXXX`), without its NUL.
    pub object_name: &'a [u8],
}

/// A SoC Integrated Address Translation Cache structure (§8.8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Satc<'a> {
    /// Offset of the structure in the DMAR.
    pub offset: usize,
    /// Flags; bit 0 is ATC_REQUIRED.
    pub flags: u8,
    /// PCI segment.
    pub segment: u16,
    scopes: &'a [u8],
}

impl<'a> Satc<'a> {
    /// Flag bit: the devices must have their ATC enabled to work.
    pub const ATC_REQUIRED: u8 = 1 << 0;

    /// The devices with an address translation cache.
    pub fn scopes(&self) -> DeviceScopes<'a> {
        DeviceScopes::new(self.scopes)
    }
}

/// One remapping structure of the DMAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemappingStructure<'a> {
    /// Type 0.
    Drhd(Drhd<'a>),
    /// Type 1.
    Rmrr(Rmrr<'a>),
    /// Type 2.
    Atsr(Atsr<'a>),
    /// Type 3.
    Rhsa(Rhsa),
    /// Type 4.
    Andd(Andd<'a>),
    /// Type 5.
    Satc(Satc<'a>),
    /// A type this code does not know (SIDP and later), skipped by length.
    Unknown {
        /// Offset of the structure in the DMAR.
        offset: usize,
        /// Its type.
        structure_type: u16,
        /// All of it, header included.
        bytes: &'a [u8],
    },
}

/// Minimum lengths (the fixed parts) of the known structure types.
fn min_len(ty: u16) -> usize {
    match ty {
        0 => 16,
        1 => 24,
        2 | 5 => 8,
        3 => 20,
        4 => 8,
        _ => 4,
    }
}

/// Scopes start here, for the types that have them.
fn scopes_at(ty: u16) -> Option<usize> {
    match ty {
        0 => Some(16),
        1 => Some(24),
        2 | 5 => Some(8),
        _ => None,
    }
}

impl<'a> Dmar<'a> {
    /// Checks the table at the start of `bytes` (header, checksum) and every
    /// remapping structure and device scope in it.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::from_sdt(Sdt::parse_as(bytes, Signature::DMAR)?)
    }

    /// Validates an already checked table as a DMAR.
    pub fn from_sdt(sdt: Sdt<'a>) -> Result<Self, Error> {
        let err = |off, kind| Error::new(Signature::DMAR, off, kind);
        if sdt.signature() != Signature::DMAR {
            return Err(Error::new(sdt.signature(), 0, ErrorKind::WrongSignature));
        }
        let b = sdt.bytes();
        if b.len() < STRUCTURES {
            return Err(err(4, ErrorKind::BadLength));
        }
        let mut off = STRUCTURES;
        while off < b.len() {
            let (ty, len) = match (u16_at(b, off), u16_at(b, off + 2)) {
                (Some(t), Some(l)) => (t, usize::from(l)),
                _ => return Err(err(off, ErrorKind::Truncated)),
            };
            if len < min_len(ty) {
                return Err(err(off + 2, ErrorKind::BadLength));
            }
            let s = slice_at(b, off, len).ok_or(err(off + 2, ErrorKind::Truncated))?;
            if let Some(at) = scopes_at(ty) {
                scope::validate(s.get(at..).unwrap_or_default(), off + at)?;
            }
            if ty == 1 && u64_at(s, 16) < u64_at(s, 8) {
                return Err(err(off + 16, ErrorKind::InvertedRange));
            }
            off += len;
        }
        Ok(Self { sdt })
    }

    /// The underlying table.
    pub fn sdt(&self) -> Sdt<'a> {
        self.sdt
    }

    /// The host address width: the field holds N-1, this returns N (bits).
    pub fn host_address_width(&self) -> u8 {
        u8_at(self.sdt.bytes(), 36).unwrap_or(0).saturating_add(1)
    }

    /// The header flags.
    pub fn flags(&self) -> DmarFlags {
        DmarFlags(u8_at(self.sdt.bytes(), 37).unwrap_or(0))
    }

    /// Every remapping structure, in table order.
    pub fn structures(&self) -> Structures<'a> {
        Structures { table: self.sdt.bytes(), off: STRUCTURES }
    }

    /// The remapping units.
    pub fn drhds(&self) -> impl Iterator<Item = Drhd<'a>> + 'a {
        self.structures().filter_map(|s| match s {
            RemappingStructure::Drhd(d) => Some(d),
            _ => None,
        })
    }

    /// The reserved memory regions.
    pub fn rmrrs(&self) -> impl Iterator<Item = Rmrr<'a>> + 'a {
        self.structures().filter_map(|s| match s {
            RemappingStructure::Rmrr(r) => Some(r),
            _ => None,
        })
    }

    /// The root-port ATS structures.
    pub fn atsrs(&self) -> impl Iterator<Item = Atsr<'a>> + 'a {
        self.structures().filter_map(|s| match s {
            RemappingStructure::Atsr(a) => Some(a),
            _ => None,
        })
    }

    /// The remapping unit that translates PCI function `bdf` of `segment`,
    /// for paths of one hop (no bridge between the start bus and the device).
    /// See [`Dmar::drhd_for_with`].
    pub fn drhd_for(&self, segment: u16, bdf: Bdf) -> Option<Drhd<'a>> {
        self.drhd_for_with(segment, bdf, &|_| None)
    }

    /// The remapping unit that translates PCI function `bdf` of `segment`:
    /// a DRHD whose explicit device scopes cover it, else the segment's
    /// INCLUDE_PCI_ALL DRHD, else none (§8.3: explicit scopes win, and the
    /// INCLUDE_PCI_ALL unit takes the rest). `bridges` gives the secondary
    /// and subordinate bus of the PCI-PCI bridge at a BDF, from config space;
    /// it is needed for multi-hop paths and for devices below a
    /// sub-hierarchy scope's bridge.
    pub fn drhd_for_with<B>(&self, segment: u16, bdf: Bdf, bridges: &B) -> Option<Drhd<'a>>
    where
        B: Fn(Bdf) -> Option<BusRange> + ?Sized,
    {
        let mut include_all = None;
        for d in self.drhds().filter(|d| d.segment == segment) {
            if d.include_pci_all() {
                include_all = include_all.or(Some(d));
            } else if d.scopes().any(|s| s.covers(bdf, bridges)) {
                return Some(d);
            }
        }
        include_all
    }

    /// The remapping unit whose scopes list the I/O APIC with this ID (used
    /// for interrupt remapping; even an INCLUDE_PCI_ALL unit lists them).
    pub fn drhd_for_ioapic(&self, ioapic_id: u8) -> Option<Drhd<'a>> {
        self.drhd_for_enumerated(ScopeType::IoApic, ioapic_id)
    }

    /// The remapping unit whose scopes list the HPET with this number.
    pub fn drhd_for_hpet(&self, hpet_number: u8) -> Option<Drhd<'a>> {
        self.drhd_for_enumerated(ScopeType::MsiCapableHpet, hpet_number)
    }

    fn drhd_for_enumerated(&self, ty: ScopeType, id: u8) -> Option<Drhd<'a>> {
        self.drhds().find(|d| d.scopes().any(|s| s.scope_type() == ty && s.enumeration_id() == id))
    }

    /// The reserved memory regions that PCI function `bdf` of `segment` uses.
    pub fn rmrrs_for<'b, B>(
        &self,
        segment: u16,
        bdf: Bdf,
        bridges: &'b B,
    ) -> impl Iterator<Item = Rmrr<'a>> + 'b
    where
        B: Fn(Bdf) -> Option<BusRange> + ?Sized,
        'a: 'b,
    {
        self.rmrrs().filter(move |r| r.segment == segment && r.scopes().any(|s| s.covers(bdf, bridges)))
    }
}

/// Iterator over the remapping structures of a validated DMAR.
#[derive(Clone, Debug)]
pub struct Structures<'a> {
    table: &'a [u8],
    off: usize,
}

impl<'a> Iterator for Structures<'a> {
    type Item = RemappingStructure<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        let offset = self.off;
        let ty = u16_at(self.table, offset)?;
        let len = usize::from(u16_at(self.table, offset + 2)?);
        // Validated at parse time; never step by less than the header.
        let s = slice_at(self.table, offset, len.max(4))?;
        self.off = offset + len.max(4);
        let u16_ = |o| u16_at(s, o).unwrap_or(0);
        let u64_ = |o| u64_at(s, o).unwrap_or(0);
        let rest = |o: usize| s.get(o..).unwrap_or_default();
        Some(match ty {
            0 => RemappingStructure::Drhd(Drhd {
                offset,
                flags: u8_at(s, 4).unwrap_or(0),
                size: u8_at(s, 5).unwrap_or(0),
                segment: u16_(6),
                register_base: PhysAddr(u64_(8)),
                scopes: rest(16),
            }),
            1 => RemappingStructure::Rmrr(Rmrr {
                offset,
                segment: u16_(6),
                base: PhysAddr(u64_(8)),
                limit: PhysAddr(u64_(16)),
                scopes: rest(24),
            }),
            2 => RemappingStructure::Atsr(Atsr {
                offset,
                flags: u8_at(s, 4).unwrap_or(0),
                segment: u16_(6),
                scopes: rest(8),
            }),
            3 => RemappingStructure::Rhsa(Rhsa {
                offset,
                register_base: PhysAddr(u64_(8)),
                proximity_domain: crate::acpi::bytes::u32_at(s, 16).unwrap_or(0),
            }),
            4 => {
                let name = rest(8);
                let end = name.iter().position(|&c| c == 0).unwrap_or(name.len());
                RemappingStructure::Andd(Andd {
                    offset,
                    acpi_device_number: u8_at(s, 7).unwrap_or(0),
                    object_name: name.get(..end).unwrap_or_default(),
                })
            }
            5 => RemappingStructure::Satc(Satc {
                offset,
                flags: u8_at(s, 4).unwrap_or(0),
                segment: u16_(6),
                scopes: rest(8),
            }),
            structure_type => RemappingStructure::Unknown { offset, structure_type, bytes: s },
        })
    }
}
