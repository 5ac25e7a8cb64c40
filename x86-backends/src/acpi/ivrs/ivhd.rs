//! I/O Virtualization Hardware Definition blocks (AMD IOMMU spec rev 3.x
//! §5.2.2.1 to §5.2.2.3) and their device entries.

use iommu_common::addr::PhysAddr;

use crate::acpi::bytes::{array_at, slice_at, u16_at, u32_at, u8_at};
use crate::acpi::error::{Error, ErrorKind, Signature};

/// IVHD header size for type 10h.
pub(crate) const HEADER_10: usize = 24;
/// IVHD header size for types 11h and 40h (they add the EFR image).
pub(crate) const HEADER_11: usize = 40;

/// The DTE setting byte of a device entry (Table 91): which interrupts pass
/// through untranslated, to be copied into the device table entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DteSetting(pub u8);

impl DteSetting {
    /// Bit 0: INIT interrupts pass through.
    pub fn init_pass(self) -> bool {
        self.0 & 1 != 0
    }
    /// Bit 1: ExtInt interrupts pass through.
    pub fn eint_pass(self) -> bool {
        self.0 & 2 != 0
    }
    /// Bit 2: NMIs pass through.
    pub fn nmi_pass(self) -> bool {
        self.0 & 4 != 0
    }
    /// Bits 5:4: SysMgt, how system management messages are handled.
    pub fn sys_mgt(self) -> u8 {
        (self.0 >> 4) & 3
    }
    /// Bit 6: LINT0 passes through.
    pub fn lint0_pass(self) -> bool {
        self.0 & 0x40 != 0
    }
    /// Bit 7: LINT1 passes through.
    pub fn lint1_pass(self) -> bool {
        self.0 & 0x80 != 0
    }
}

/// The kind of device behind a special-device entry (type 48h).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variety {
    /// 01h: an I/O APIC; the handle is its I/O APIC ID.
    IoApic,
    /// 02h: an HPET; the handle is its HPET number.
    Hpet,
    /// Any other value.
    Reserved(u8),
}

/// One IVHD device entry (§5.2.2.4, Tables 93 to 97). Start-of-range entries
/// come fused with the end-of-range entry that must follow them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceEntry<'a> {
    /// 01h: every device ID of the segment.
    All {
        /// DTE setting.
        dte: DteSetting,
    },
    /// 02h: one device.
    Select {
        /// Device ID.
        devid: u16,
        /// DTE setting.
        dte: DteSetting,
    },
    /// 03h + 04h: devices `first..=last`.
    Range {
        /// First device ID.
        first: u16,
        /// Last device ID (inclusive).
        last: u16,
        /// DTE setting.
        dte: DteSetting,
    },
    /// 42h: one device whose requests reach the IOMMU with `alias` as
    /// requester ID.
    AliasSelect {
        /// Device ID.
        devid: u16,
        /// DTE setting.
        dte: DteSetting,
        /// The source device ID its requests carry.
        alias: u16,
    },
    /// 43h + 04h: devices `first..=last`, all seen as `alias`.
    AliasRange {
        /// First device ID.
        first: u16,
        /// Last device ID (inclusive).
        last: u16,
        /// DTE setting.
        dte: DteSetting,
        /// The source device ID their requests carry.
        alias: u16,
    },
    /// 46h: one device with extended settings.
    ExtendedSelect {
        /// Device ID.
        devid: u16,
        /// DTE setting.
        dte: DteSetting,
        /// Extended DTE setting (bit 31: ATS disabled).
        ext: u32,
    },
    /// 47h + 04h: devices `first..=last` with extended settings.
    ExtendedRange {
        /// First device ID.
        first: u16,
        /// Last device ID (inclusive).
        last: u16,
        /// DTE setting.
        dte: DteSetting,
        /// Extended DTE setting.
        ext: u32,
    },
    /// 48h: an I/O APIC or HPET and the device ID its interrupts carry.
    Special {
        /// I/O APIC ID or HPET number.
        handle: u8,
        /// The device ID the device's requests carry.
        devid: u16,
        /// DTE setting.
        dte: DteSetting,
        /// What the device is.
        variety: Variety,
    },
    /// F0h: a device named by ACPI _HID (and _CID, _UID).
    AcpiHid {
        /// Device ID.
        devid: u16,
        /// DTE setting.
        dte: DteSetting,
        /// _HID.
        hid: [u8; 8],
        /// _CID.
        cid: [u8; 8],
        /// UID format (0 none, 1 integer, 2 string).
        uid_format: u8,
        /// The UID bytes.
        uid: &'a [u8],
    },
    /// A reserved fixed-size type, skipped by its size class.
    Reserved {
        /// Its type.
        entry_type: u8,
        /// All of it.
        bytes: &'a [u8],
    },
}

/// One IVHD block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ivhd<'a> {
    /// Offset of the block in the IVRS.
    pub offset: usize,
    /// 10h, 11h or 40h.
    pub block_type: u8,
    /// IVHD flags (HtTunEn, PassPW, ResPassPW, Isoc, IotlbSup, Coherent,
    /// PreFSup, PPRSup from bit 0 up).
    pub flags: u8,
    /// The IOMMU's own PCI device ID.
    pub iommu_devid: u16,
    /// Offset of the IOMMU capability block in its config space.
    pub capability_offset: u16,
    /// Base of the IOMMU's MMIO registers.
    pub base_address: PhysAddr,
    /// PCI segment group.
    pub pci_segment: u16,
    /// IOMMU info: MSI number (bits 4:0), UnitID (bits 12:8).
    pub iommu_info: u16,
    /// Type 10h: IOMMU feature reporting; 11h/40h: IOMMU attributes.
    pub feature_info: u32,
    /// Types 11h/40h: the image of the Extended Feature Register.
    pub efr_image: Option<u64>,
    entries: &'a [u8],
}

impl<'a> Ivhd<'a> {
    pub(crate) fn decode(offset: usize, b: &'a [u8]) -> Self {
        let block_type = u8_at(b, 0).unwrap_or(0);
        let (efr_image, at) = if block_type == 0x10 {
            (None, HEADER_10)
        } else {
            (crate::acpi::bytes::u64_at(b, 24), HEADER_11)
        };
        Self {
            offset,
            block_type,
            flags: u8_at(b, 1).unwrap_or(0),
            iommu_devid: u16_at(b, 4).unwrap_or(0),
            capability_offset: u16_at(b, 6).unwrap_or(0),
            base_address: PhysAddr(crate::acpi::bytes::u64_at(b, 8).unwrap_or(0)),
            pci_segment: u16_at(b, 16).unwrap_or(0),
            iommu_info: u16_at(b, 18).unwrap_or(0),
            feature_info: u32_at(b, 20).unwrap_or(0),
            efr_image,
            entries: b.get(at..).unwrap_or_default(),
        }
    }

    /// The device entries, as written.
    pub fn entries(&self) -> Entries<'a> {
        Entries { rest: self.entries }
    }

    /// Every device ID the block names, with its settings, ranges and
    /// "all" expanded lazily (an "all" entry yields all 65536 IDs).
    pub fn devices(&self) -> Devices<'a> {
        Devices { entries: self.entries(), pending: None }
    }
}

/// Size of the entry at the start of `b`: fixed by the type's top bits, or
/// for F0h given by its UID length. An error for an unknown variable-length
/// type (C0h..FFh but F0h), whose length cannot be known, or when the UID
/// length byte is missing.
fn entry_size(b: &[u8]) -> Result<usize, ErrorKind> {
    match u8_at(b, 0).ok_or(ErrorKind::Truncated)? {
        0x00..=0x3f => Ok(4),
        0x40..=0x7f => Ok(8),
        0x80..=0xbf => Ok(16),
        0xf0 => Ok(22 + usize::from(u8_at(b, 21).ok_or(ErrorKind::Truncated)?)),
        t => Err(ErrorKind::UnknownEntry(t)),
    }
}

const START_OF_RANGE: u8 = 0x03;
const END_OF_RANGE: u8 = 0x04;
const ALIAS_START: u8 = 0x43;
const EXT_START: u8 = 0x47;

/// Checks the device entries in `b`, which start at byte `base` of the IVRS.
pub(crate) fn validate(b: &[u8], base: usize) -> Result<(), Error> {
    let err = |off: usize, kind| Error::new(Signature::IVRS, base + off, kind);
    let mut off = 0;
    while off < b.len() {
        let rest = b.get(off..).unwrap_or_default();
        let size = entry_size(rest).map_err(|k| err(off, k))?;
        let entry = slice_at(rest, 0, size).ok_or(err(off, ErrorKind::Truncated))?;
        match u8_at(entry, 0) {
            Some(START_OF_RANGE | ALIAS_START | EXT_START) => {
                let end_off = off + size;
                if u8_at(b, end_off) != Some(END_OF_RANGE) {
                    return Err(err(off, ErrorKind::RangeWithoutEnd));
                }
                let last = u16_at(b, end_off + 1).ok_or(err(end_off, ErrorKind::Truncated))?;
                if slice_at(b, end_off, 4).is_none() {
                    return Err(err(end_off, ErrorKind::Truncated));
                }
                if last < u16_at(entry, 1).unwrap_or(0) {
                    return Err(err(end_off + 1, ErrorKind::InvertedRange));
                }
                off = end_off + 4;
            }
            Some(END_OF_RANGE) => return Err(err(off, ErrorKind::EndWithoutStart)),
            _ => off += size,
        }
    }
    Ok(())
}

/// Iterator over the device entries of a validated IVHD (padding, type 00h,
/// is left out).
#[derive(Clone, Debug)]
pub struct Entries<'a> {
    rest: &'a [u8],
}

impl<'a> Entries<'a> {
    fn take(&mut self) -> Option<&'a [u8]> {
        let size = entry_size(self.rest).ok()?;
        let e = slice_at(self.rest, 0, size)?;
        self.rest = self.rest.get(size..).unwrap_or_default();
        Some(e)
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = DeviceEntry<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let e = self.take()?;
            let ty = u8_at(e, 0)?;
            let devid = u16_at(e, 1).unwrap_or(0);
            let dte = DteSetting(u8_at(e, 3).unwrap_or(0));
            let word = u32_at(e, 4).unwrap_or(0);
            let alias = u16_at(e, 5).unwrap_or(0);
            let mut end = || {
                let end = self.take()?;
                (u8_at(end, 0)? == END_OF_RANGE).then(|| u16_at(end, 1)).flatten()
            };
            return Some(match ty {
                0x00 => continue,
                0x01 => DeviceEntry::All { dte },
                0x02 => DeviceEntry::Select { devid, dte },
                START_OF_RANGE => DeviceEntry::Range { first: devid, last: end()?, dte },
                0x42 => DeviceEntry::AliasSelect { devid, dte, alias },
                ALIAS_START => DeviceEntry::AliasRange { first: devid, last: end()?, dte, alias },
                0x46 => DeviceEntry::ExtendedSelect { devid, dte, ext: word },
                EXT_START => DeviceEntry::ExtendedRange { first: devid, last: end()?, dte, ext: word },
                0x48 => DeviceEntry::Special {
                    handle: u8_at(e, 4).unwrap_or(0),
                    devid: alias,
                    dte,
                    variety: match u8_at(e, 7).unwrap_or(0) {
                        1 => Variety::IoApic,
                        2 => Variety::Hpet,
                        v => Variety::Reserved(v),
                    },
                },
                0xf0 => DeviceEntry::AcpiHid {
                    devid,
                    dte,
                    hid: array_at(e, 4).unwrap_or_default(),
                    cid: array_at(e, 12).unwrap_or_default(),
                    uid_format: u8_at(e, 20).unwrap_or(0),
                    uid: e.get(22..).unwrap_or_default(),
                },
                entry_type => DeviceEntry::Reserved { entry_type, bytes: e },
            });
        }
    }
}

/// One device ID and the settings an IVHD gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceSetting {
    /// The device ID (bus 15:8, device 7:3, function 2:0).
    pub devid: u16,
    /// Its DTE setting.
    pub dte: DteSetting,
    /// The requester ID its DMA carries, when an alias entry names one.
    pub alias: Option<u16>,
    /// The extended DTE setting, from types 46h/47h.
    pub ext: Option<u32>,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    next: u32,
    last: u32,
    dte: DteSetting,
    alias: Option<u16>,
    ext: Option<u32>,
}

/// Iterator over every device ID an IVHD names; see [`Ivhd::devices`].
#[derive(Clone, Debug)]
pub struct Devices<'a> {
    entries: Entries<'a>,
    pending: Option<Pending>,
}

impl Iterator for Devices<'_> {
    type Item = DeviceSetting;

    fn next(&mut self) -> Option<DeviceSetting> {
        loop {
            if let Some(p) = &mut self.pending {
                if p.next <= p.last {
                    let devid = u16::try_from(p.next).ok()?;
                    p.next += 1;
                    return Some(DeviceSetting { devid, dte: p.dte, alias: p.alias, ext: p.ext });
                }
                self.pending = None;
            }
            let (first, last, dte, alias, ext) = match self.entries.next()? {
                DeviceEntry::All { dte } => (0, 0xffff, dte, None, None),
                DeviceEntry::Select { devid, dte } => (devid, devid, dte, None, None),
                DeviceEntry::Range { first, last, dte } => (first, last, dte, None, None),
                DeviceEntry::AliasSelect { devid, dte, alias } => (devid, devid, dte, Some(alias), None),
                DeviceEntry::AliasRange { first, last, dte, alias } => (first, last, dte, Some(alias), None),
                DeviceEntry::ExtendedSelect { devid, dte, ext } => (devid, devid, dte, None, Some(ext)),
                DeviceEntry::ExtendedRange { first, last, dte, ext } => (first, last, dte, None, Some(ext)),
                DeviceEntry::Special { devid, dte, .. } | DeviceEntry::AcpiHid { devid, dte, .. } => {
                    (devid, devid, dte, None, None)
                }
                DeviceEntry::Reserved { .. } => continue,
            };
            self.pending = Some(Pending { next: u32::from(first), last: u32::from(last), dte, alias, ext });
        }
    }
}
