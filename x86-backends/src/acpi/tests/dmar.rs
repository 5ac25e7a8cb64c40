//! DMAR from spec-built images: every structure type, scope resolution and
//! the malformed cases.

extern crate std;

use std::vec::Vec;

use iommu_common::addr::PhysAddr;

use super::build::{self, andd, atsr, drhd, fix_checksum, rhsa, rmrr, satc, scope};
use crate::acpi::dmar::{PathEntry, RemappingStructure, ScopeType};
use crate::acpi::{Bdf, BusRange, Dmar, Error, ErrorKind, Signature};

fn bdf(b: u8, d: u8, f: u8) -> Bdf {
    Bdf::new(b, d, f).unwrap()
}

fn err(offset: usize, kind: ErrorKind) -> Error {
    Error { table: Signature::DMAR, offset, kind }
}

/// A server-like DMAR: an explicit unit for 00:02.0 (graphics) and a bridge
/// path, the INCLUDE_PCI_ALL unit (listed last, as §8.3 requires) with the
/// IOAPIC and HPET, and one of every other structure.
pub fn rich_dmar() -> Vec<u8> {
    build::dmar(
        38,
        0b111,
        &[
            drhd(0, 1, 0, 0xfed9_0000, &[scope(1, 0, 0, &[(2, 0)]), scope(1, 0, 0, &[(0x1c, 0), (0, 0)])]),
            drhd(
                1,
                0,
                0,
                0xfed9_1000,
                &[
                    scope(3, 2, 0xf0, &[(0x1f, 0)]),
                    scope(4, 0, 0, &[(0x1f, 7)]),
                    scope(5, 1, 0, &[(0x15, 0)]),
                ],
            ),
            rmrr(0, 0x7d00_0000, 0x7d7f_ffff, &[scope(1, 0, 0, &[(0x14, 0)]), scope(2, 0, 0, &[(0x1d, 0)])]),
            atsr(1, 0, &[]),
            atsr(0, 1, &[scope(2, 0, 0, &[(1, 0)])]),
            rhsa(0xfed9_1000, 3),
            andd(1, b"\\_SB.PCI0.I2C0"),
            satc(1, 0, &[scope(1, 0, 0, &[(2, 0)])]),
            // An unknown type (SIDP, 6) with a scope, skipped by length.
            build::cat(&[std::vec![6, 0, 16, 0, 0, 0, 0, 0], scope(1, 0, 0, &[(9, 0)])]),
        ],
    )
}

#[test]
fn every_structure_type_decodes() {
    let t = rich_dmar();
    let dmar = Dmar::parse(&t).unwrap();
    assert_eq!(dmar.host_address_width(), 39);
    assert!(
        dmar.flags().intr_remap() && dmar.flags().x2apic_opt_out() && dmar.flags().dma_ctrl_platform_opt_in()
    );
    let s: Vec<_> = dmar.structures().collect();
    assert_eq!(s.len(), 9);
    let RemappingStructure::Drhd(d0) = s[0] else { panic!("{:?}", s[0]) };
    assert_eq!((d0.offset, d0.flags, d0.size, d0.register_size()), (48, 0, 1, 8192));
    let RemappingStructure::Drhd(d1) = s[1] else { panic!() };
    assert!(d1.include_pci_all());
    let kinds: Vec<_> = d1.scopes().map(|s| (s.scope_type(), s.enumeration_id(), s.start_bus())).collect();
    assert_eq!(
        kinds,
        [
            (ScopeType::IoApic, 2, 0xf0),
            (ScopeType::MsiCapableHpet, 0, 0),
            (ScopeType::AcpiNamespaceDevice, 1, 0)
        ]
    );
    let RemappingStructure::Rmrr(r) = s[2] else { panic!() };
    assert_eq!((r.segment, r.base, r.limit), (0, PhysAddr(0x7d00_0000), PhysAddr(0x7d7f_ffff)));
    assert_eq!(r.scopes().count(), 2);
    let RemappingStructure::Atsr(a) = s[3] else { panic!() };
    assert!(a.all_ports());
    assert_eq!(a.scopes().count(), 0);
    let RemappingStructure::Atsr(a) = s[4] else { panic!() };
    assert!(!a.all_ports());
    assert_eq!(a.segment, 1);
    assert_eq!(a.scopes().next().unwrap().scope_type(), ScopeType::PciSubHierarchy);
    let RemappingStructure::Rhsa(h) = s[5] else { panic!() };
    assert_eq!((h.register_base, h.proximity_domain), (PhysAddr(0xfed9_1000), 3));
    let RemappingStructure::Andd(n) = s[6] else { panic!() };
    assert_eq!((n.acpi_device_number, n.object_name), (1, &b"\\_SB.PCI0.I2C0"[..]));
    let RemappingStructure::Satc(c) = s[7] else { panic!() };
    assert_eq!((c.flags, c.segment, c.scopes().count()), (1, 0, 1));
    let RemappingStructure::Unknown { structure_type, bytes, .. } = s[8] else { panic!() };
    assert_eq!((structure_type, bytes.len()), (6, 16));
    assert_eq!(dmar.drhds().count(), 2);
    assert_eq!(dmar.rmrrs().count(), 1);
    assert_eq!(dmar.atsrs().count(), 2);
}

#[test]
fn scope_path_entries() {
    let t = rich_dmar();
    let dmar = Dmar::parse(&t).unwrap();
    let d0 = dmar.drhds().next().unwrap();
    let bridge_path: Vec<_> = d0.scopes().nth(1).unwrap().path().collect();
    assert_eq!(bridge_path, [PathEntry { device: 0x1c, function: 0 }, PathEntry { device: 0, function: 0 }]);
}

#[test]
fn explicit_scope_wins_over_include_pci_all() {
    // The INCLUDE_PCI_ALL unit listed *first* here: the explicit one still wins.
    let t = build::dmar(
        38,
        0,
        &[
            drhd(1, 0, 0, 0xa000, &[scope(3, 0, 0xf0, &[(0x1f, 0)])]),
            drhd(0, 0, 0, 0xb000, &[scope(1, 0, 0, &[(2, 0)])]),
        ],
    );
    let dmar = Dmar::parse(&t).unwrap();
    let base = |s, b| dmar.drhd_for(s, b).map(|d| d.register_base.raw());
    assert_eq!(base(0, bdf(0, 2, 0)), Some(0xb000));
    assert_eq!(base(0, bdf(0, 2, 1)), Some(0xa000));
    assert_eq!(base(0, bdf(7, 0, 0)), Some(0xa000));
    assert_eq!(base(1, bdf(0, 2, 0)), None, "no unit for segment 1");
    assert_eq!(dmar.drhd_for_ioapic(0).map(|d| d.register_base.raw()), Some(0xa000));
}

#[test]
fn multi_hop_path_needs_the_bridge() {
    let t = rich_dmar();
    let dmar = Dmar::parse(&t).unwrap();
    // 00:1c.0 is a root port whose secondary bus is 2: the path (1c.0, 00.0)
    // names 02:00.0.
    let bridges = |b: Bdf| (b == bdf(0, 0x1c, 0)).then_some(BusRange { secondary: 2, subordinate: 2 });
    assert_eq!(dmar.drhd_for_with(0, bdf(2, 0, 0), &bridges).unwrap().register_base.raw(), 0xfed9_0000);
    // Without config space the path cannot be followed: the include-all unit.
    assert_eq!(dmar.drhd_for(0, bdf(2, 0, 0)).unwrap().register_base.raw(), 0xfed9_1000);
    // A single-hop endpoint needs no bridge.
    assert_eq!(dmar.drhd_for(0, bdf(0, 2, 0)).unwrap().register_base.raw(), 0xfed9_0000);
    let s = dmar.drhds().next().unwrap().scopes().nth(1).unwrap();
    assert_eq!(s.resolve(&bridges), Some(bdf(2, 0, 0)));
    assert_eq!(s.resolve(&|_| None), None);
}

#[test]
fn sub_hierarchy_scope_covers_the_buses_below_its_bridge() {
    let t = build::dmar(38, 0, &[drhd(0, 0, 0, 0xc000, &[scope(2, 0, 0, &[(0x1c, 4)])])]);
    let dmar = Dmar::parse(&t).unwrap();
    let bridges = |b: Bdf| (b == bdf(0, 0x1c, 4)).then_some(BusRange { secondary: 3, subordinate: 5 });
    assert!(dmar.drhd_for_with(0, bdf(0, 0x1c, 4), &bridges).is_some(), "the bridge itself");
    assert!(dmar.drhd_for_with(0, bdf(3, 0, 0), &bridges).is_some());
    assert!(dmar.drhd_for_with(0, bdf(5, 31, 7), &bridges).is_some());
    assert!(dmar.drhd_for_with(0, bdf(6, 0, 0), &bridges).is_none());
    assert!(dmar.drhd_for_with(0, bdf(2, 0, 0), &bridges).is_none());
    assert!(dmar.drhd_for(0, bdf(3, 0, 0)).is_none(), "below the bridge needs its bus range");
    assert!(dmar.drhd_for(0, bdf(0, 0x1c, 4)).is_some());
}

#[test]
fn rmrrs_for_a_device() {
    let t = rich_dmar();
    let dmar = Dmar::parse(&t).unwrap();
    let none = |_: Bdf| None;
    assert_eq!(dmar.rmrrs_for(0, bdf(0, 0x14, 0), &none).count(), 1);
    assert_eq!(dmar.rmrrs_for(0, bdf(0, 0x1d, 0), &none).count(), 1);
    assert_eq!(dmar.rmrrs_for(0, bdf(0, 0x14, 1), &none).count(), 0);
    assert_eq!(dmar.rmrrs_for(1, bdf(0, 0x14, 0), &none).count(), 0);
}

#[test]
fn zero_length_structure_is_an_error_not_a_loop() {
    let mut t = build::dmar(38, 0, &[std::vec![0, 0, 0, 0]]);
    assert_eq!(Dmar::parse(&t).unwrap_err(), err(50, ErrorKind::BadLength));
    t[48] = 0x7f; // unknown type, still zero length
    fix_checksum(&mut t, 9);
    assert_eq!(Dmar::parse(&t).unwrap_err(), err(50, ErrorKind::BadLength));
}

#[test]
fn structure_running_past_the_table() {
    let mut s = drhd(0, 0, 0, 0xd000, &[scope(1, 0, 0, &[(1, 0)])]);
    s[2] += 8;
    let t = build::dmar(38, 0, &[s]);
    assert_eq!(Dmar::parse(&t).unwrap_err(), err(50, ErrorKind::Truncated));
    // Shorter than the DRHD's fixed part.
    let t = build::dmar(38, 0, &[std::vec![0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0]]);
    assert_eq!(Dmar::parse(&t).unwrap_err(), err(50, ErrorKind::BadLength));
    // Three stray bytes after the last structure.
    let t = build::dmar(38, 0, &[std::vec![9, 0, 4]]);
    assert_eq!(Dmar::parse(&t).unwrap_err(), err(48, ErrorKind::Truncated));
}

#[test]
fn bad_device_scopes() {
    // Scope length 0, 7 (odd), 6 (no path), past the DRHD, device 32, function 8.
    let cases: [(Vec<u8>, usize, ErrorKind); 6] = [
        (std::vec![1, 0, 0, 0, 0, 0, 0, 0], 65, ErrorKind::BadLength),
        (std::vec![1, 7, 0, 0, 0, 0, 0, 0], 65, ErrorKind::BadLength),
        (std::vec![1, 6, 0, 0, 0, 0, 0, 0], 65, ErrorKind::BadLength),
        (std::vec![1, 10, 0, 0, 0, 0, 0, 0], 65, ErrorKind::Truncated),
        (scope(1, 0, 0, &[(32, 0)]), 70, ErrorKind::InvalidField),
        (scope(1, 0, 0, &[(0x1c, 0), (0, 8)]), 72, ErrorKind::InvalidField),
    ];
    for (sc, off, kind) in cases {
        let t = build::dmar(38, 0, &[drhd(0, 0, 0, 0xd000, &[sc])]);
        assert_eq!(Dmar::parse(&t).unwrap_err(), err(off, kind));
    }
}

#[test]
fn rmrr_limit_below_base() {
    let t = build::dmar(38, 0, &[rmrr(0, 0x2000, 0x1fff, &[])]);
    assert_eq!(Dmar::parse(&t).unwrap_err(), err(64, ErrorKind::InvertedRange));
}

#[test]
fn header_faults() {
    let mut t = super::qemu::qemu_like_dmar();
    t[20] ^= 1;
    assert_eq!(Dmar::parse(&t).unwrap_err(), err(9, ErrorKind::Checksum));
    let t = build::sdt(b"DMAR", 1, &[47, 0, 0]);
    assert_eq!(Dmar::parse(&t).unwrap_err(), err(4, ErrorKind::BadLength));
    let t = build::sdt(b"DMAX", 1, &[47; 12]);
    assert_eq!(
        Dmar::parse(&t).unwrap_err(),
        Error { table: Signature(*b"DMAX"), offset: 0, kind: ErrorKind::WrongSignature }
    );
    let t = super::qemu::qemu_like_dmar();
    assert_eq!(Dmar::parse(&t[..100]).unwrap_err(), err(4, ErrorKind::Truncated));
    assert_eq!(Dmar::parse(&t[..20]).unwrap_err(), err(0, ErrorKind::Truncated));
    // Bytes past the table's length are not part of it.
    let mut long = t.clone();
    long.extend_from_slice(&[0xff; 9]);
    assert_eq!(Dmar::parse(&long).unwrap().sdt().bytes(), &t[..]);
}

#[test]
fn error_display_names_table_and_offset() {
    let e = err(0x32, ErrorKind::BadLength);
    assert_eq!(std::format!("{e}"), "DMAR+0x32: bad length field");
    let e = Error { table: Signature::IVRS, offset: 0x48, kind: ErrorKind::UnknownEntry(0xc1) };
    assert_eq!(std::format!("{e}"), "IVRS+0x48: unknown variable-length entry type 0xc1");
}

#[test]
fn bdf_and_devid() {
    assert_eq!(Bdf::new(0, 32, 0), None);
    assert_eq!(Bdf::new(0, 0, 8), None);
    let b = bdf(0x3a, 0x1f, 6);
    assert_eq!(b.devid(), 0x3afe);
    assert_eq!(Bdf::from_devid(0x3afe), b);
    assert_eq!(std::format!("{b:?}"), "3a:1f.6");
}
