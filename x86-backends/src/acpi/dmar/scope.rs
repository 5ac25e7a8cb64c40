//! Device scopes (VT-d spec §8.3.1): which devices a remapping structure
//! covers, named by a start bus and a path of (device, function) hops.

use crate::acpi::bytes::{slice_at, u8_at};
use crate::acpi::error::{Error, ErrorKind, Signature};
use crate::acpi::pci::{Bdf, BusRange};

/// Fixed part of a device scope: type, length, flags, reserved,
/// enumeration ID, start bus.
const FIXED: usize = 6;

/// The device scope types of VT-d spec Table 21 (§8.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeType {
    /// 01h: a PCI endpoint device.
    PciEndpoint,
    /// 02h: a PCI-PCI bridge and every device below it.
    PciSubHierarchy,
    /// 03h: an I/O APIC; the enumeration ID is its I/O APIC ID.
    IoApic,
    /// 04h: an MSI-capable HPET; the enumeration ID is its HPET number.
    MsiCapableHpet,
    /// 05h: an ACPI namespace device; the enumeration ID is its ANDD number.
    AcpiNamespaceDevice,
    /// Any other (reserved) type, which software ignores.
    Reserved(u8),
}

impl ScopeType {
    fn from_raw(t: u8) -> Self {
        match t {
            1 => Self::PciEndpoint,
            2 => Self::PciSubHierarchy,
            3 => Self::IoApic,
            4 => Self::MsiCapableHpet,
            5 => Self::AcpiNamespaceDevice,
            t => Self::Reserved(t),
        }
    }
}

/// One hop of a device scope's path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathEntry {
    /// PCI device number (0..=31, checked at parse time).
    pub device: u8,
    /// PCI function number (0..=7, checked at parse time).
    pub function: u8,
}

/// One device scope entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceScope<'a> {
    scope_type: ScopeType,
    flags: u8,
    enumeration_id: u8,
    start_bus: u8,
    path: &'a [u8],
}

impl<'a> DeviceScope<'a> {
    /// The scope's type.
    pub fn scope_type(&self) -> ScopeType {
        self.scope_type
    }

    /// Byte 2 (reserved before VT-d 4.0, flags since).
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// I/O APIC ID, HPET number or ACPI device number, by type.
    pub fn enumeration_id(&self) -> u8 {
        self.enumeration_id
    }

    /// The bus the path starts on.
    pub fn start_bus(&self) -> u8 {
        self.start_bus
    }

    /// The path's hops, from the start bus down (at least one).
    pub fn path(&self) -> impl Iterator<Item = PathEntry> + 'a {
        self.path.chunks_exact(2).map(|c| PathEntry {
            device: c.first().copied().unwrap_or(0),
            function: c.get(1).copied().unwrap_or(0),
        })
    }

    /// The device the path ends at. Each hop but the last is a PCI-PCI bridge
    /// whose secondary bus `bridges` reads from config space; a one-hop path
    /// needs no lookup. `None` if a bridge on the way is not found.
    pub fn resolve<B>(&self, bridges: &B) -> Option<Bdf>
    where
        B: Fn(Bdf) -> Option<BusRange> + ?Sized,
    {
        let mut bus = self.start_bus;
        let mut hops = self.path();
        let mut here = hops.next()?;
        for next in hops {
            bus = bridges(Bdf::new(bus, here.device, here.function)?)?.secondary;
            here = next;
        }
        Bdf::new(bus, here.device, here.function)
    }

    /// Whether this scope covers PCI function `bdf` (same segment assumed):
    /// an endpoint scope names exactly one function, a sub-hierarchy scope a
    /// bridge and every bus behind it (which needs `bridges`: without it the
    /// bridge alone matches). Other scope types cover no PCI function.
    pub fn covers<B>(&self, bdf: Bdf, bridges: &B) -> bool
    where
        B: Fn(Bdf) -> Option<BusRange> + ?Sized,
    {
        let Some(dev) = self.resolve(bridges) else { return false };
        match self.scope_type {
            ScopeType::PciEndpoint => dev == bdf,
            ScopeType::PciSubHierarchy => dev == bdf || bridges(dev).is_some_and(|r| r.contains(bdf.bus)),
            _ => false,
        }
    }
}

/// The device scopes of one remapping structure.
#[derive(Clone, Debug)]
pub struct DeviceScopes<'a> {
    rest: &'a [u8],
}

impl<'a> DeviceScopes<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for DeviceScopes<'a> {
    type Item = DeviceScope<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        // Validated at parse time; anything inconsistent just ends the walk.
        let len = usize::from(u8_at(self.rest, 1)?);
        if len < FIXED + 2 {
            self.rest = &[];
            return None;
        }
        let entry = slice_at(self.rest, 0, len)?;
        self.rest = self.rest.get(len..).unwrap_or_default();
        Some(DeviceScope {
            scope_type: ScopeType::from_raw(u8_at(entry, 0)?),
            flags: u8_at(entry, 2)?,
            enumeration_id: u8_at(entry, 4)?,
            start_bus: u8_at(entry, 5)?,
            path: entry.get(FIXED..)?,
        })
    }
}

/// Checks the device scopes in `bytes`, which start at byte `base` of the
/// DMAR: each lies inside `bytes`, has a path of at least one whole hop, and
/// every hop names a valid device and function.
pub(crate) fn validate(bytes: &[u8], base: usize) -> Result<(), Error> {
    let err = |off: usize, kind| Error::new(Signature::DMAR, base + off, kind);
    let mut off = 0;
    while off < bytes.len() {
        let len = usize::from(u8_at(bytes, off + 1).ok_or(err(off, ErrorKind::Truncated))?);
        if len < FIXED + 2 || len & 1 != 0 {
            return Err(err(off + 1, ErrorKind::BadLength));
        }
        let entry = slice_at(bytes, off, len).ok_or(err(off + 1, ErrorKind::Truncated))?;
        for (i, hop) in entry.get(FIXED..).unwrap_or_default().chunks_exact(2).enumerate() {
            if let [device, function] = *hop {
                if Bdf::new(0, device, function).is_none() {
                    return Err(err(off + FIXED + 2 * i, ErrorKind::InvalidField));
                }
            }
        }
        off += len;
    }
    Ok(())
}
