//! The I/O Virtualization Reporting Structure (AMD I/O Virtualization
//! Technology (IOMMU) spec rev 3.x, §5.2): the IOMMUs, the devices each one
//! translates, and memory that must stay mapped for some devices.

mod ivhd;

pub use ivhd::{DeviceEntry, DeviceSetting, Devices, DteSetting, Entries, Ivhd, Variety};

use iommu_common::addr::PhysAddr;

use super::bytes::{slice_at, u16_at, u32_at, u64_at, u8_at};
use super::error::{Error, ErrorKind, Signature};
use super::sdt::Sdt;

/// The IVDBs start after the header, IVinfo and 8 reserved bytes.
const BLOCKS: usize = 48;
const IVMD_LEN: usize = 32;

/// IVinfo (§5.2.1, Table 88).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IvInfo(pub u32);

impl IvInfo {
    /// Bit 0 EFRSup: the IVHD 11h/40h EFR images are valid.
    pub fn efr_sup(self) -> bool {
        self.0 & 1 != 0
    }
    /// Bit 1: firmware set up pre-boot DMA protection (DMA remap support).
    pub fn dma_remap_sup(self) -> bool {
        self.0 & 2 != 0
    }
    /// Bits 7:5 GVAsize: 2 means 48-bit guest virtual addresses, 3 57-bit.
    pub fn gva_size(self) -> u8 {
        ((self.0 >> 5) & 7) as u8
    }
    /// Bits 14:8 PAsize: physical address bits.
    pub fn pa_size(self) -> u8 {
        ((self.0 >> 8) & 0x7f) as u8
    }
    /// Bits 21:15 VAsize: virtual address bits.
    pub fn va_size(self) -> u8 {
        ((self.0 >> 15) & 0x7f) as u8
    }
    /// Bit 22 HTAtsResv: the HyperTransport ATS-reserved range is reserved.
    pub fn ht_ats_resv(self) -> bool {
        self.0 & (1 << 22) != 0
    }
}

/// Which devices an IVMD applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IvmdDevices {
    /// 20h: all devices.
    All,
    /// 21h: one device ID.
    Select(u16),
    /// 22h: device IDs `first..=last`.
    Range(u16, u16),
}

/// An I/O Virtualization Memory Definition block (§5.2.2.5, Table 98).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ivmd {
    /// Offset of the block in the IVRS.
    pub offset: usize,
    /// 20h, 21h or 22h.
    pub block_type: u8,
    /// Flags: Unity (bit 0), IR (1), IW (2), ExclusionRange (3).
    pub flags: u8,
    /// The devices it applies to.
    pub devices: IvmdDevices,
    /// First byte of the block.
    pub start: PhysAddr,
    /// Its length in bytes (`start + length` checked not to overflow).
    pub length: u64,
}

impl Ivmd {
    /// Flag: identity-map the range for the devices.
    pub const UNITY: u8 = 1 << 0;
    /// Flag: the unity mapping allows reads.
    pub const IR: u8 = 1 << 1;
    /// Flag: the unity mapping allows writes.
    pub const IW: u8 = 1 << 2;
    /// Flag: the range is an exclusion range (not translated).
    pub const EXCLUSION_RANGE: u8 = 1 << 3;
}

/// One block of the IVRS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block<'a> {
    /// IVHD, types 10h, 11h, 40h.
    Ivhd(Ivhd<'a>),
    /// IVMD, types 20h, 21h, 22h.
    Ivmd(Ivmd),
    /// Another type, skipped by its length.
    Unknown {
        /// Offset of the block in the IVRS.
        offset: usize,
        /// Its type.
        block_type: u8,
        /// All of it.
        bytes: &'a [u8],
    },
}

/// A validated IVRS.
#[derive(Clone, Copy, Debug)]
pub struct Ivrs<'a> {
    sdt: Sdt<'a>,
}

fn min_len(ty: u8) -> usize {
    match ty {
        0x10 => ivhd::HEADER_10,
        0x11 | 0x40 => ivhd::HEADER_11,
        0x20..=0x22 => IVMD_LEN,
        _ => 4,
    }
}

impl<'a> Ivrs<'a> {
    /// Checks the table at the start of `bytes` (header, checksum) and every
    /// block and device entry in it.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::from_sdt(Sdt::parse_as(bytes, Signature::IVRS)?)
    }

    /// Validates an already checked table as an IVRS.
    pub fn from_sdt(sdt: Sdt<'a>) -> Result<Self, Error> {
        let err = |off, kind| Error::new(Signature::IVRS, off, kind);
        if sdt.signature() != Signature::IVRS {
            return Err(Error::new(sdt.signature(), 0, ErrorKind::WrongSignature));
        }
        let b = sdt.bytes();
        if b.len() < BLOCKS {
            return Err(err(4, ErrorKind::BadLength));
        }
        let mut off = BLOCKS;
        while off < b.len() {
            let (ty, len) = match (u8_at(b, off), u16_at(b, off + 2)) {
                (Some(t), Some(l)) => (t, usize::from(l)),
                _ => return Err(err(off, ErrorKind::Truncated)),
            };
            if len < min_len(ty) {
                return Err(err(off + 2, ErrorKind::BadLength));
            }
            let blk = slice_at(b, off, len).ok_or(err(off + 2, ErrorKind::Truncated))?;
            match ty {
                0x10 => {
                    ivhd::validate(blk.get(ivhd::HEADER_10..).unwrap_or_default(), off + ivhd::HEADER_10)?
                }
                0x11 | 0x40 => {
                    ivhd::validate(blk.get(ivhd::HEADER_11..).unwrap_or_default(), off + ivhd::HEADER_11)?
                }
                0x20..=0x22 => {
                    if ty == 0x22 && u16_at(blk, 6) < u16_at(blk, 4) {
                        return Err(err(off + 6, ErrorKind::InvertedRange));
                    }
                    let (start, length) = (u64_at(blk, 16).unwrap_or(0), u64_at(blk, 24).unwrap_or(0));
                    if start.checked_add(length).is_none() {
                        return Err(err(off + 24, ErrorKind::InvertedRange));
                    }
                }
                _ => {}
            }
            off += len;
        }
        Ok(Self { sdt })
    }

    /// The underlying table.
    pub fn sdt(&self) -> Sdt<'a> {
        self.sdt
    }

    /// IVinfo.
    pub fn iv_info(&self) -> IvInfo {
        IvInfo(u32_at(self.sdt.bytes(), 36).unwrap_or(0))
    }

    /// Every block, in table order.
    pub fn blocks(&self) -> Blocks<'a> {
        Blocks { table: self.sdt.bytes(), off: BLOCKS }
    }

    /// Every IVHD, of every type. A platform usually describes each IOMMU
    /// once per type it supports; see [`Ivrs::preferred_ivhds`].
    pub fn ivhds(&self) -> impl Iterator<Item = Ivhd<'a>> + 'a {
        self.blocks().filter_map(|b| match b {
            Block::Ivhd(h) => Some(h),
            _ => None,
        })
    }

    /// One IVHD per IOMMU (segment and IOMMU device ID): the one of the
    /// highest type (40h over 11h over 10h), as Linux picks them.
    pub fn preferred_ivhds(&self) -> impl Iterator<Item = Ivhd<'a>> + 'a {
        let this = *self;
        self.blocks().enumerate().filter_map(move |(i, b)| {
            let Block::Ivhd(h) = b else { return None };
            let better = this.blocks().enumerate().any(|(j, o)| match o {
                Block::Ivhd(o) if o.pci_segment == h.pci_segment && o.iommu_devid == h.iommu_devid => {
                    o.block_type > h.block_type || (o.block_type == h.block_type && j < i)
                }
                _ => false,
            });
            (!better).then_some(h)
        })
    }

    /// Every IVMD.
    pub fn ivmds(&self) -> impl Iterator<Item = Ivmd> + 'a {
        self.blocks().filter_map(|b| match b {
            Block::Ivmd(m) => Some(m),
            _ => None,
        })
    }
}

/// Iterator over the blocks of a validated IVRS.
#[derive(Clone, Debug)]
pub struct Blocks<'a> {
    table: &'a [u8],
    off: usize,
}

impl<'a> Iterator for Blocks<'a> {
    type Item = Block<'a>;

    fn next(&mut self) -> Option<Block<'a>> {
        let offset = self.off;
        let block_type = u8_at(self.table, offset)?;
        // Validated at parse time; never step by less than the header.
        let len = usize::from(u16_at(self.table, offset + 2)?).max(4);
        let b = slice_at(self.table, offset, len)?;
        self.off = offset + len;
        Some(match block_type {
            0x10 | 0x11 | 0x40 => Block::Ivhd(Ivhd::decode(offset, b)),
            0x20..=0x22 => {
                let devid = u16_at(b, 4).unwrap_or(0);
                Block::Ivmd(Ivmd {
                    offset,
                    block_type,
                    flags: u8_at(b, 1).unwrap_or(0),
                    devices: match block_type {
                        0x20 => IvmdDevices::All,
                        0x21 => IvmdDevices::Select(devid),
                        _ => IvmdDevices::Range(devid, u16_at(b, 6).unwrap_or(0)),
                    },
                    start: PhysAddr(u64_at(b, 16).unwrap_or(0)),
                    length: u64_at(b, 24).unwrap_or(0),
                })
            }
            _ => Block::Unknown { offset, block_type, bytes: b },
        })
    }
}
