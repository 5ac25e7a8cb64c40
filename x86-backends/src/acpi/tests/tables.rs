//! RSDP → XSDT/RSDT walks over fake physical memory.

extern crate std;

use iommu_common::addr::PhysAddr;

use super::build::{self, FakeMem};
use crate::acpi::{AcpiTables, Error, ErrorKind, Rsdp, Signature, SliceMem};

const RSDP: u64 = 0xe_0010;

/// An ACPI 2.0 system whose tables live above 4 GiB, reachable only
/// through the XSDT; the RSDT points at a different (bogus) table so the
/// test tells which root was used.
fn v2_system() -> FakeMem {
    let dmar = super::qemu::qemu_like_dmar();
    let ivrs = super::qemu::qemu_like_ivrs();
    let facp = build::sdt(b"FACP", 6, &[0; 8]);
    FakeMem::default()
        .with(RSDP, &build::rsdp_v2(0x1000, 0x1_0000_0000))
        .with(0x1000, &build::rsdt(&[0x2000]))
        .with(0x2000, &build::sdt(b"BOGS", 1, &[]))
        .with(0x1_0000_0000, &build::xsdt(&[0x1_0000_1000, 0x1_0000_2000, 0x1_0000_3000]))
        .with(0x1_0000_1000, &facp)
        .with(0x1_0000_2000, &dmar)
        .with(0x1_0000_3000, &ivrs)
}

#[test]
fn v2_rsdp_prefers_the_xsdt() {
    let mem = v2_system();
    let t = AcpiTables::new(&mem, PhysAddr(RSDP)).unwrap();
    assert_eq!(t.rsdp().revision(), 2);
    assert_eq!(t.rsdp().xsdt(), Some(PhysAddr(0x1_0000_0000)));
    assert_eq!(t.rsdp().rsdt(), PhysAddr(0x1000));
    assert_eq!(t.root().signature(), Signature::XSDT);
    let entries: std::vec::Vec<_> = t.entries().collect();
    assert_eq!(
        entries,
        [(36, PhysAddr(0x1_0000_1000)), (44, PhysAddr(0x1_0000_2000)), (52, PhysAddr(0x1_0000_3000))]
    );
    assert_eq!(t.tables().filter(Result::is_ok).count(), 3);
    assert_eq!(t.dmar().unwrap().unwrap().host_address_width(), 48);
    assert_eq!(t.ivrs().unwrap().unwrap().ivhds().count(), 2);
    assert!(t.find(Signature(*b"BOGS")).unwrap().is_none());
}

#[test]
fn rsdp_faults() {
    let rs = |b: &[u8]| Rsdp::parse(b).unwrap_err();
    let e = |offset, kind| Error { table: Signature::RSDP, offset, kind };
    let mut v1 = build::rsdp_v1(0x1000);
    assert_eq!(Rsdp::parse(&v1).unwrap().xsdt(), None);
    v1[16] ^= 0x10;
    assert_eq!(rs(&v1), e(8, ErrorKind::Checksum));
    v1[0] = b'X';
    assert_eq!(rs(&v1), e(0, ErrorKind::WrongSignature));
    assert_eq!(rs(&v1[..19]), e(0, ErrorKind::Truncated));
    let mut v2 = build::rsdp_v2(0x1000, 0x2000);
    assert_eq!(Rsdp::parse(&v2).unwrap().xsdt(), Some(PhysAddr(0x2000)));
    assert_eq!(rs(&v2[..30]), e(20, ErrorKind::Truncated));
    v2[26] ^= 1; // inside the XSDT address: only the extended checksum sees it
    assert_eq!(rs(&v2), e(32, ErrorKind::Checksum));
    let mut v2 = build::rsdp_v2(0x1000, 0x2000);
    v2[20] = 35; // Length below 36 (outside the 20 bytes the first checksum covers)
    assert_eq!(rs(&v2), e(20, ErrorKind::BadLength));
    // A zero XSDT address in a v2 RSDP falls back to the RSDT.
    let v2 = build::rsdp_v2(0x1000, 0);
    assert_eq!(Rsdp::parse(&v2).unwrap().xsdt(), None);
}

#[test]
fn rsdp_unmapped_or_absent() {
    let mem = FakeMem::default();
    assert_eq!(
        AcpiTables::new(&mem, PhysAddr(RSDP)).unwrap_err(),
        Error { table: Signature::RSDP, offset: 0, kind: ErrorKind::Unmapped }
    );
    let area = [0u8; 256];
    let mem = SliceMem::new(PhysAddr(0xe0000), &area);
    assert!(Rsdp::search(&mem, PhysAddr(0xe0000), PhysAddr(0x100000)).is_none());
    // A signature with a bad checksum is passed over.
    let mut area = [0u8; 64];
    let mut bad = build::rsdp_v1(0x1000);
    bad[8] ^= 1;
    area[..20].copy_from_slice(&bad);
    area[32..52].copy_from_slice(&build::rsdp_v1(0x3000));
    let mem = SliceMem::new(PhysAddr(0xe0000), &area);
    let (pa, r) = Rsdp::search(&mem, PhysAddr(0xe0000), PhysAddr(0xe0040)).unwrap();
    assert_eq!((pa, r.rsdt()), (PhysAddr(0xe0020), PhysAddr(0x3000)));
    // Search bounds at the top of the address space do not overflow.
    assert!(Rsdp::search(&mem, PhysAddr(u64::MAX - 8), PhysAddr(u64::MAX)).is_none());
}

#[test]
fn root_table_faults() {
    // The RSDT named by the RSDP is not there.
    let mem = FakeMem::default().with(RSDP, &build::rsdp_v1(0x1000));
    let e = AcpiTables::new(&mem, PhysAddr(RSDP)).unwrap_err();
    assert_eq!(e, Error { table: Signature::RSDP, offset: 16, kind: ErrorKind::Unmapped });
    // The RSDP names something that is not an RSDT.
    let mem =
        FakeMem::default().with(RSDP, &build::rsdp_v1(0x1000)).with(0x1000, &build::sdt(b"XSDT", 1, &[]));
    let e = AcpiTables::new(&mem, PhysAddr(RSDP)).unwrap_err();
    assert_eq!(e, Error { table: Signature::XSDT, offset: 0, kind: ErrorKind::WrongSignature });
    // An XSDT whose body is not whole 8-byte entries.
    let mem = FakeMem::default()
        .with(RSDP, &build::rsdp_v2(0, 0x1000))
        .with(0x1000, &build::sdt(b"XSDT", 1, &[0; 12]));
    let e = AcpiTables::new(&mem, PhysAddr(RSDP)).unwrap_err();
    assert_eq!(e, Error { table: Signature::XSDT, offset: 4, kind: ErrorKind::BadLength });
    // A root table with a bad checksum.
    let mut x = build::xsdt(&[0x2000]);
    x[40] ^= 1;
    let mem = FakeMem::default().with(RSDP, &build::rsdp_v2(0, 0x1000)).with(0x1000, &x);
    let e = AcpiTables::new(&mem, PhysAddr(RSDP)).unwrap_err();
    assert_eq!(e, Error { table: Signature::XSDT, offset: 9, kind: ErrorKind::Checksum });
}

#[test]
fn listed_table_faults() {
    let mut dmar = super::qemu::qemu_like_dmar();
    dmar[60] ^= 0x80;
    let mem = FakeMem::default()
        .with(RSDP, &build::rsdp_v2(0, 0x1000))
        .with(0x1000, &build::xsdt(&[0x2000, 0x3000, 0x9000]))
        .with(0x2000, &build::sdt(b"FACP", 6, &[]))
        .with(0x3000, &dmar);
    let t = AcpiTables::new(&mem, PhysAddr(RSDP)).unwrap();
    // The DMAR's checksum fails.
    assert_eq!(t.dmar().unwrap_err(), Error { table: Signature::DMAR, offset: 9, kind: ErrorKind::Checksum });
    // Looking for the IVRS reaches the unmapped third entry (XSDT offset 52).
    assert_eq!(
        t.ivrs().unwrap_err(),
        Error { table: Signature::XSDT, offset: 52, kind: ErrorKind::Unmapped }
    );
    let r: std::vec::Vec<_> = t.tables().collect();
    assert!(r[0].is_ok());
    assert_eq!(r[1].unwrap_err().kind, ErrorKind::Checksum);
    assert_eq!(r[2].unwrap_err(), Error { table: Signature::XSDT, offset: 52, kind: ErrorKind::Unmapped });
    // A table whose header is there but whose body runs off mapped memory.
    let mut short = super::qemu::qemu_like_dmar();
    short.truncate(64);
    let mem = FakeMem::default()
        .with(RSDP, &build::rsdp_v2(0, 0x1000))
        .with(0x1000, &build::xsdt(&[0x2000]))
        .with(0x2000, &short);
    let t = AcpiTables::new(&mem, PhysAddr(RSDP)).unwrap();
    assert_eq!(
        t.dmar().unwrap_err(),
        Error { table: Signature::XSDT, offset: 36, kind: ErrorKind::Unmapped }
    );
}
