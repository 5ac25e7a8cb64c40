//! Byte-image builders, from the specs' layout tables (not from the parser).

extern crate std;

use std::vec::Vec;

use iommu_common::addr::PhysAddr;

use crate::acpi::{PhysMem, Unmapped};

fn le16(v: &mut Vec<u8>, x: u16) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn le32(v: &mut Vec<u8>, x: u32) {
    v.extend_from_slice(&x.to_le_bytes());
}
fn le64(v: &mut Vec<u8>, x: u64) {
    v.extend_from_slice(&x.to_le_bytes());
}

/// Sets byte `at` so that all bytes sum to zero.
pub fn fix_checksum(t: &mut [u8], at: usize) {
    t[at] = 0;
    let sum = t.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    t[at] = 0u8.wrapping_sub(sum);
}

/// ACPI 6.5 Table 5.4: the 36-byte SDT header, then `body`.
pub fn sdt(sig: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(sig); // 0 Signature
    le32(&mut t, (36 + body.len()) as u32); // 4 Length
    t.push(revision); // 8 Revision
    t.push(0); // 9 Checksum
    t.extend_from_slice(b"BULKHD"); // 10 OEMID
    t.extend_from_slice(b"TESTTBL "); // 16 OEM Table ID
    le32(&mut t, 1); // 24 OEM Revision
    t.extend_from_slice(b"BLKH"); // 28 Creator ID
    le32(&mut t, 1); // 32 Creator Revision
    t.extend_from_slice(body);
    fix_checksum(&mut t, 9);
    t
}

/// ACPI 6.5 Table 5.3, revision 0 (20 bytes).
pub fn rsdp_v1(rsdt: u32) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(b"RSD PTR "); // 0
    r.push(0); // 8 checksum
    r.extend_from_slice(b"BULKHD"); // 9 OEMID
    r.push(0); // 15 revision
    le32(&mut r, rsdt); // 16
    fix_checksum(&mut r, 8);
    r
}

/// ACPI 6.5 Table 5.3, revision 2 (36 bytes).
pub fn rsdp_v2(rsdt: u32, xsdt: u64) -> Vec<u8> {
    let mut r = Vec::new();
    r.extend_from_slice(b"RSD PTR ");
    r.push(0);
    r.extend_from_slice(b"BULKHD");
    r.push(2);
    le32(&mut r, rsdt);
    le32(&mut r, 36); // 20 Length
    le64(&mut r, xsdt); // 24 XsdtAddress
    r.push(0); // 32 Extended checksum
    r.extend_from_slice(&[0; 3]); // 33 reserved
    fix_checksum(&mut r[..20], 8); // checksum of the first 20 bytes
    fix_checksum(&mut r, 32); // extended checksum of the whole
    r
}

pub fn rsdt(entries: &[u32]) -> Vec<u8> {
    let mut b = Vec::new();
    for &e in entries {
        le32(&mut b, e);
    }
    sdt(b"RSDT", 1, &b)
}

pub fn xsdt(entries: &[u64]) -> Vec<u8> {
    let mut b = Vec::new();
    for &e in entries {
        le64(&mut b, e);
    }
    sdt(b"XSDT", 1, &b)
}

// ---- DMAR, VT-d spec ch. 8 ----

/// Table 19: Host Address Width (N-1), Flags, 10 reserved bytes, structures.
pub fn dmar(haw_minus_1: u8, flags: u8, structures: &[Vec<u8>]) -> Vec<u8> {
    let mut b = std::vec![haw_minus_1, flags];
    b.extend_from_slice(&[0; 10]);
    for s in structures {
        b.extend_from_slice(s);
    }
    sdt(b"DMAR", 1, &b)
}

/// Table 21 (§8.3.1): Type, Length, Flags/Reserved (2), Enumeration ID,
/// Start Bus Number, Path.
pub fn scope(ty: u8, enum_id: u8, start_bus: u8, path: &[(u8, u8)]) -> Vec<u8> {
    let mut s = std::vec![ty, (6 + 2 * path.len()) as u8, 0, 0, enum_id, start_bus];
    for &(d, f) in path {
        s.push(d);
        s.push(f);
    }
    s
}

fn structure(ty: u16, fixed: &[u8], scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut s = Vec::new();
    le16(&mut s, ty);
    let len = 4 + fixed.len() + scopes.iter().map(Vec::len).sum::<usize>();
    le16(&mut s, len as u16);
    s.extend_from_slice(fixed);
    for sc in scopes {
        s.extend_from_slice(sc);
    }
    s
}

/// Table 20 (§8.3): Flags, Size, Segment, Register Base Address, scopes.
pub fn drhd(flags: u8, size: u8, segment: u16, base: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut f = std::vec![flags, size];
    le16(&mut f, segment);
    le64(&mut f, base);
    structure(0, &f, scopes)
}

/// Table 23 (§8.4): Reserved (2), Segment, Base, Limit, scopes.
pub fn rmrr(segment: u16, base: u64, limit: u64, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut f = std::vec![0, 0];
    le16(&mut f, segment);
    le64(&mut f, base);
    le64(&mut f, limit);
    structure(1, &f, scopes)
}

/// Table 24 (§8.5): Flags, Reserved, Segment, scopes.
pub fn atsr(flags: u8, segment: u16, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut f = std::vec![flags, 0];
    le16(&mut f, segment);
    structure(2, &f, scopes)
}

/// Table 25 (§8.6): Reserved (4), Register Base, Proximity Domain.
pub fn rhsa(base: u64, domain: u32) -> Vec<u8> {
    let mut f = std::vec![0; 4];
    le64(&mut f, base);
    le32(&mut f, domain);
    structure(3, &f, &[])
}

/// Table 26 (§8.7): Reserved (3), ACPI Device Number, Object Name.
pub fn andd(number: u8, name: &[u8]) -> Vec<u8> {
    let mut f = std::vec![0, 0, 0, number];
    f.extend_from_slice(name);
    f.push(0);
    structure(4, &f, &[])
}

/// Table 27 (§8.8): Flags, Reserved, Segment, scopes.
pub fn satc(flags: u8, segment: u16, scopes: &[Vec<u8>]) -> Vec<u8> {
    let mut f = std::vec![flags, 0];
    le16(&mut f, segment);
    structure(5, &f, scopes)
}

// ---- IVRS, AMD IOMMU spec §5.2 ----

/// Table 87: IVinfo, 8 reserved bytes, IVDBs.
pub fn ivrs(ivinfo: u32, blocks: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Vec::new();
    le32(&mut b, ivinfo);
    b.extend_from_slice(&[0; 8]);
    for blk in blocks {
        b.extend_from_slice(blk);
    }
    sdt(b"IVRS", 2, &b)
}

/// Tables 89/90: IVHD type 10h (24-byte header) or 11h/40h (40-byte header
/// with the EFR image at 24 and 8 reserved bytes at 32).
#[allow(clippy::too_many_arguments)]
pub fn ivhd(
    ty: u8,
    flags: u8,
    devid: u16,
    cap: u16,
    base: u64,
    segment: u16,
    info: u16,
    feature: u32,
    efr: u64,
    entries: &[u8],
) -> Vec<u8> {
    let mut h = std::vec![ty, flags];
    let hdr = if ty == 0x10 { 24 } else { 40 };
    le16(&mut h, (hdr + entries.len()) as u16);
    le16(&mut h, devid);
    le16(&mut h, cap);
    le64(&mut h, base);
    le16(&mut h, segment);
    le16(&mut h, info);
    le32(&mut h, feature);
    if ty != 0x10 {
        le64(&mut h, efr);
        le64(&mut h, 0);
    }
    h.extend_from_slice(entries);
    h
}

/// Table 93: 4-byte entry: type, DeviceID, DTE setting.
pub fn e4(ty: u8, devid: u16, dte: u8) -> Vec<u8> {
    let mut e = std::vec![ty];
    le16(&mut e, devid);
    e.push(dte);
    e
}

/// Table 94: alias entries 42h/43h: type, DeviceID, DTE, reserved, source
/// DeviceID, reserved.
pub fn e_alias(ty: u8, devid: u16, dte: u8, source: u16) -> Vec<u8> {
    let mut e = e4(ty, devid, dte);
    e.push(0);
    le16(&mut e, source);
    e.push(0);
    e
}

/// Table 95: extended entries 46h/47h: type, DeviceID, DTE, extended DTE.
pub fn e_ext(ty: u8, devid: u16, dte: u8, ext: u32) -> Vec<u8> {
    let mut e = e4(ty, devid, dte);
    le32(&mut e, ext);
    e
}

/// Table 97: special device 48h: type, reserved (2), DTE, handle, used
/// DeviceID, variety.
pub fn e_special(dte: u8, handle: u8, used: u16, variety: u8) -> Vec<u8> {
    let mut e = std::vec![0x48, 0, 0, dte, handle];
    le16(&mut e, used);
    e.push(variety);
    e
}

/// Table 96: ACPI _HID device F0h.
pub fn e_hid(devid: u16, dte: u8, hid: &[u8; 8], cid: &[u8; 8], uid_format: u8, uid: &[u8]) -> Vec<u8> {
    let mut e = e4(0xf0, devid, dte);
    e.extend_from_slice(hid);
    e.extend_from_slice(cid);
    e.push(uid_format);
    e.push(uid.len() as u8);
    e.extend_from_slice(uid);
    e
}

/// Table 98: IVMD: type, flags, length (32), DeviceID, auxiliary data,
/// reserved (8), start address, memory block length.
pub fn ivmd(ty: u8, flags: u8, devid: u16, aux: u16, start: u64, len: u64) -> Vec<u8> {
    let mut m = std::vec![ty, flags];
    le16(&mut m, 32);
    le16(&mut m, devid);
    le16(&mut m, aux);
    le64(&mut m, 0);
    le64(&mut m, start);
    le64(&mut m, len);
    m
}

pub fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

/// A fake physical memory of separate regions.
#[derive(Debug, Default)]
pub struct FakeMem {
    regions: Vec<(u64, Vec<u8>)>,
}

impl FakeMem {
    pub fn with(mut self, base: u64, bytes: &[u8]) -> Self {
        self.regions.push((base, bytes.to_vec()));
        self
    }
}

impl PhysMem for FakeMem {
    fn read(&self, pa: PhysAddr, len: usize) -> Result<&[u8], Unmapped> {
        for (base, bytes) in &self.regions {
            if let Some(off) = pa.raw().checked_sub(*base) {
                let off = off as usize;
                if let Some(s) = bytes.get(off..off.saturating_add(len)).filter(|s| s.len() == len) {
                    return Ok(s);
                }
            }
        }
        Err(Unmapped)
    }
}
