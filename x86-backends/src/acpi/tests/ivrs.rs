//! IVRS from spec-built images: every device entry type, IVMDs, and the
//! malformed cases.

extern crate std;

use std::vec::Vec;

use iommu_common::addr::PhysAddr;

use super::build::{self, e4, e_alias, e_ext, e_hid, e_special, fix_checksum, ivhd, ivmd};
use crate::acpi::ivrs::{Block, DeviceEntry, DeviceSetting, DteSetting, IvInfo, IvmdDevices, Variety};
use crate::acpi::{Error, ErrorKind, Ivrs, Signature};

fn err(offset: usize, kind: ErrorKind) -> Error {
    Error { table: Signature::IVRS, offset, kind }
}

/// One entry of every type the spec defines, plus padding and reserved
/// fixed-size types, in an IVHD 40h.
pub fn rich_entries() -> Vec<u8> {
    build::cat(&[
        e4(0x00, 0, 0),                                                    // padding
        e4(0x02, 0x0010, 0x01),                                            // select 00:02.0, INITPass
        e4(0x03, 0x0100, 0xc0),                                            // range 01:00.0 ..
        e4(0x04, 0x0103, 0),                                               // .. 01:00.3
        e_alias(0x42, 0x0200, 0x04, 0x0208),                               // alias select
        e_alias(0x43, 0x0300, 0x00, 0x0318),                               // alias range ..
        e4(0x04, 0x0301, 0),                                               // .. end
        e_ext(0x46, 0x0400, 0x02, 0x8000_0000),                            // extended select, ATS disabled
        e_ext(0x47, 0x0500, 0x00, 1),                                      // extended range ..
        e4(0x04, 0x0502, 0),                                               // .. end
        e_special(0x00, 2, 0x00fa, 2),                                     // HPET 2 as 00:1f.2
        e_special(0x37, 9, 0x00a0, 1),                                     // IOAPIC 9 as 00:14.0
        e_hid(0x00f9, 0x00, b"AMDI0020", b"\0\0\0\0\0\0\0\0", 2, b"ID00"), // ACPI HID
        e4(0x05, 0xffff, 0xff),                                            // reserved 4-byte type
        e_ext(0x44, 0xffff, 0xff, 0),                                      // reserved 8-byte type
        std::vec![0x80; 16],                                               // reserved 16-byte type
    ])
}

pub fn rich_ivrs() -> Vec<u8> {
    build::ivrs(
        (1 << 22) | (64 << 15) | (52 << 8) | (2 << 5) | 0b11,
        &[
            ivhd(
                0x40,
                0xff,
                0x0002,
                0x40,
                0xfd00_0000,
                0,
                0x1f05,
                0x1234,
                0x0123_4567_89ab_cdef,
                &rich_entries(),
            ),
            ivhd(0x10, 0x00, 0x0002, 0x40, 0xfd00_0000, 0, 0, 0, 0, &e4(0x01, 0, 0x05)),
            ivhd(0x11, 0x00, 0x0002, 0x40, 0xfd00_0000, 0, 0, 0, 7, &[]),
            ivhd(0x11, 0x00, 0x1000, 0x40, 0xfe00_0000, 1, 0, 0, 7, &[]),
            ivmd(0x20, 0x07, 0, 0, 0x1000_0000, 0x1000),
            ivmd(0x21, 0x06, 0x0010, 0, 0x2000_0000, 0x2000),
            ivmd(0x22, 0x08, 0x0100, 0x01ff, 0x3000_0000, 0x3000),
            // An unknown block type (0x30), 8 bytes, skipped.
            std::vec![0x30, 0, 8, 0, 1, 2, 3, 4],
        ],
    )
}

#[test]
fn ivinfo_fields() {
    let t = rich_ivrs();
    let i = Ivrs::parse(&t).unwrap().iv_info();
    assert!(i.efr_sup() && i.dma_remap_sup() && i.ht_ats_resv());
    assert_eq!((i.gva_size(), i.pa_size(), i.va_size()), (2, 52, 64));
    assert_eq!(IvInfo(0).pa_size(), 0);
}

#[test]
fn every_entry_type_decodes() {
    let t = rich_ivrs();
    let ivrs = Ivrs::parse(&t).unwrap();
    let h = ivrs.ivhds().next().unwrap();
    assert_eq!((h.offset, h.block_type, h.flags, h.iommu_devid), (48, 0x40, 0xff, 2));
    assert_eq!((h.base_address, h.iommu_info, h.feature_info), (PhysAddr(0xfd00_0000), 0x1f05, 0x1234));
    assert_eq!(h.efr_image, Some(0x0123_4567_89ab_cdef));
    let e: Vec<_> = h.entries().collect();
    let d = DteSetting;
    assert_eq!(
        e[..9],
        [
            DeviceEntry::Select { devid: 0x10, dte: d(1) },
            DeviceEntry::Range { first: 0x100, last: 0x103, dte: d(0xc0) },
            DeviceEntry::AliasSelect { devid: 0x200, dte: d(4), alias: 0x208 },
            DeviceEntry::AliasRange { first: 0x300, last: 0x301, dte: d(0), alias: 0x318 },
            DeviceEntry::ExtendedSelect { devid: 0x400, dte: d(2), ext: 0x8000_0000 },
            DeviceEntry::ExtendedRange { first: 0x500, last: 0x502, dte: d(0), ext: 1 },
            DeviceEntry::Special { handle: 2, devid: 0xfa, dte: d(0), variety: Variety::Hpet },
            DeviceEntry::Special { handle: 9, devid: 0xa0, dte: d(0x37), variety: Variety::IoApic },
            DeviceEntry::AcpiHid {
                devid: 0xf9,
                dte: d(0),
                hid: *b"AMDI0020",
                cid: [0; 8],
                uid_format: 2,
                uid: b"ID00"
            },
        ]
    );
    assert!(matches!(e[9], DeviceEntry::Reserved { entry_type: 0x05, bytes } if bytes.len() == 4));
    assert!(matches!(e[10], DeviceEntry::Reserved { entry_type: 0x44, bytes } if bytes.len() == 8));
    assert!(matches!(e[11], DeviceEntry::Reserved { entry_type: 0x80, bytes } if bytes.len() == 16));
    assert_eq!(e.len(), 12);
}

#[test]
fn devices_expand_ranges_lazily() {
    let t = rich_ivrs();
    let ivrs = Ivrs::parse(&t).unwrap();
    let h = ivrs.ivhds().next().unwrap();
    let devs: Vec<_> = h.devices().collect();
    let ids: Vec<u16> = devs.iter().map(|d| d.devid).collect();
    assert_eq!(
        ids,
        [0x10, 0x100, 0x101, 0x102, 0x103, 0x200, 0x300, 0x301, 0x400, 0x500, 0x501, 0x502, 0xfa, 0xa0, 0xf9]
    );
    assert_eq!(devs[6], DeviceSetting { devid: 0x300, dte: DteSetting(0), alias: Some(0x318), ext: None });
    assert_eq!(devs[9].ext, Some(1));
    assert_eq!(devs[2].dte, DteSetting(0xc0));
    assert!(devs[2].dte.lint0_pass() && devs[2].dte.lint1_pass() && !devs[2].dte.init_pass());
    let d = DteSetting(0x37);
    assert!(d.init_pass() && d.eint_pass() && d.nmi_pass());
    assert_eq!(d.sys_mgt(), 3);
    // "Select all" is every ID of the segment, produced one at a time.
    let all = ivrs.ivhds().nth(1).unwrap();
    let mut it = all.devices();
    assert_eq!(it.next().map(|d| (d.devid, d.dte)), Some((0, DteSetting(5))));
    assert_eq!(it.count(), 0xffff);
    assert_eq!(all.devices().last().map(|d| d.devid), Some(0xffff));
}

#[test]
fn range_ending_at_ffff_terminates() {
    let t = build::ivrs(
        0,
        &[ivhd(
            0x10,
            0,
            2,
            0x40,
            0xfd00_0000,
            0,
            0,
            0,
            0,
            &build::cat(&[e4(3, 0xfffe, 0), e4(4, 0xffff, 0)]),
        )],
    );
    let ivrs = Ivrs::parse(&t).unwrap();
    let ids: Vec<_> = ivrs.ivhds().next().unwrap().devices().map(|d| d.devid).collect();
    assert_eq!(ids, [0xfffe, 0xffff]);
}

#[test]
fn ivmds_and_unknown_blocks() {
    let t = rich_ivrs();
    let ivrs = Ivrs::parse(&t).unwrap();
    let m: Vec<_> = ivrs.ivmds().collect();
    assert_eq!(m.len(), 3);
    assert_eq!(
        (m[0].devices, m[0].flags, m[0].start, m[0].length),
        (IvmdDevices::All, 7, PhysAddr(0x1000_0000), 0x1000)
    );
    assert_eq!(m[1].devices, IvmdDevices::Select(0x10));
    assert_eq!(m[2].devices, IvmdDevices::Range(0x100, 0x1ff));
    assert_eq!(m[2].flags & crate::acpi::ivrs::Ivmd::EXCLUSION_RANGE, 8);
    let last = ivrs.blocks().last().unwrap();
    assert!(matches!(last, Block::Unknown { block_type: 0x30, bytes, .. } if bytes.len() == 8));
    assert_eq!(ivrs.blocks().count(), 8);
}

#[test]
fn preferred_ivhds_pick_the_highest_type_per_iommu() {
    let t = rich_ivrs();
    let ivrs = Ivrs::parse(&t).unwrap();
    let p: Vec<_> = ivrs.preferred_ivhds().map(|h| (h.pci_segment, h.iommu_devid, h.block_type)).collect();
    assert_eq!(p, [(0, 2, 0x40), (1, 0x1000, 0x11)]);
}

fn one_ivhd(entries: &[u8]) -> Result<(), Error> {
    let t = build::ivrs(0, &[ivhd(0x10, 0, 2, 0x40, 0xfd00_0000, 0, 0, 0, 0, entries)]);
    Ivrs::parse(&t).map(|_| ())
}

/// Entries of the IVHD built by `one_ivhd` start at 48 + 24.
const E: usize = 72;

#[test]
fn range_faults() {
    // Start of range, then a select instead of the end.
    assert_eq!(one_ivhd(&build::cat(&[e4(3, 1, 0), e4(2, 5, 0)])), Err(err(E, ErrorKind::RangeWithoutEnd)));
    // Start of range as the last entry.
    assert_eq!(
        one_ivhd(&build::cat(&[e4(2, 0, 0), e_alias(0x43, 1, 0, 9)])),
        Err(err(E + 4, ErrorKind::RangeWithoutEnd))
    );
    // End of range alone.
    assert_eq!(one_ivhd(&e4(4, 1, 0)), Err(err(E, ErrorKind::EndWithoutStart)));
    // End before start.
    assert_eq!(
        one_ivhd(&build::cat(&[e_ext(0x47, 9, 0, 0), e4(4, 8, 0)])),
        Err(err(E + 9, ErrorKind::InvertedRange))
    );
    // End of range cut short by the end of the block.
    assert_eq!(one_ivhd(&build::cat(&[e4(3, 1, 0), std::vec![4, 2]])), Err(err(E + 4, ErrorKind::Truncated)));
}

#[test]
fn entry_faults() {
    assert_eq!(one_ivhd(&[0xc5, 0, 0, 0]), Err(err(E, ErrorKind::UnknownEntry(0xc5))));
    assert_eq!(one_ivhd(&[0x42, 0, 0, 0]), Err(err(E, ErrorKind::Truncated)));
    let mut hid = e_hid(1, 0, b"AMDI0020", b"PNP0A08\0", 1, b"12345678");
    hid.truncate(25);
    assert_eq!(one_ivhd(&hid), Err(err(E, ErrorKind::Truncated)));
    hid.truncate(21); // even the UID length byte is missing
    assert_eq!(one_ivhd(&hid), Err(err(E, ErrorKind::Truncated)));
}

#[test]
fn block_faults() {
    // A zero-length block must not loop.
    let t = build::ivrs(0, &[std::vec![0x10, 0, 0, 0]]);
    assert_eq!(Ivrs::parse(&t).unwrap_err(), err(50, ErrorKind::BadLength));
    let t = build::ivrs(0, &[std::vec![0x99, 0, 0, 0]]);
    assert_eq!(Ivrs::parse(&t).unwrap_err(), err(50, ErrorKind::BadLength));
    // An IVHD 11h with only a 10h-sized header.
    let mut h = ivhd(0x10, 0, 2, 0x40, 0, 0, 0, 0, 0, &[]);
    h[0] = 0x11;
    assert_eq!(Ivrs::parse(&build::ivrs(0, &[h])).unwrap_err(), err(50, ErrorKind::BadLength));
    // A block longer than the table.
    let mut m = ivmd(0x21, 0, 0, 0, 0, 0);
    m[2] = 40;
    assert_eq!(Ivrs::parse(&build::ivrs(0, &[m])).unwrap_err(), err(50, ErrorKind::Truncated));
    // IVMD range ending before its start, and one that wraps the address space.
    let m = ivmd(0x22, 0, 0x200, 0x100, 0, 0);
    assert_eq!(Ivrs::parse(&build::ivrs(0, &[m])).unwrap_err(), err(54, ErrorKind::InvertedRange));
    let m = ivmd(0x21, 0, 0x200, 0, u64::MAX - 1, 2);
    assert_eq!(Ivrs::parse(&build::ivrs(0, &[m])).unwrap_err(), err(72, ErrorKind::InvertedRange));
    // Header faults.
    let mut t = super::qemu::qemu_like_ivrs();
    t[40] = 1;
    assert_eq!(Ivrs::parse(&t).unwrap_err(), err(9, ErrorKind::Checksum));
    fix_checksum(&mut t, 9);
    assert!(Ivrs::parse(&t).is_ok(), "reserved bytes are not checked");
    let t = build::sdt(b"IVRS", 2, &[0; 8]);
    assert_eq!(Ivrs::parse(&t).unwrap_err(), err(4, ErrorKind::BadLength));
}
