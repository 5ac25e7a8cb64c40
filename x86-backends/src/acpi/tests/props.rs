//! Random mutations of valid tables: the parsers never panic, never loop,
//! and every error points inside the table it names.

extern crate std;

use std::vec::Vec;

use iommu_common::addr::PhysAddr;
use proptest::prelude::*;

use super::build::{fix_checksum, FakeMem};
use crate::acpi::{AcpiTables, Bdf, BusRange, Dmar, Error, Ivrs, Signature};

/// Applies `muts` (index taken modulo the length), truncates to `keep` if
/// given, and optionally makes the checksum right again so the mutation
/// reaches the structure walk.
fn mutate(mut t: Vec<u8>, muts: &[(usize, u8)], keep: Option<usize>, fix: bool) -> Vec<u8> {
    for &(i, v) in muts {
        let n = t.len();
        t[i % n] = v;
    }
    if let Some(k) = keep {
        t.truncate(k % (t.len() + 1));
    }
    if fix && t.len() > 9 {
        fix_checksum(&mut t, 9);
    }
    t
}

fn assert_inside(e: Error, len: usize) {
    assert!(e.offset < len.max(1), "{e} outside a {len}-byte table");
}

/// Walks everything a parsed DMAR offers.
fn exercise_dmar(d: &Dmar<'_>) {
    let bridges =
        |b: Bdf| Some(BusRange { secondary: b.bus.wrapping_add(1), subordinate: b.bus.wrapping_add(3) });
    let _ = (d.host_address_width(), d.flags());
    for s in d.structures() {
        let _ = s;
    }
    for h in d.drhds() {
        for s in h.scopes() {
            let _ = (s.path().count(), s.resolve(&bridges), s.resolve(&|_| None));
        }
    }
    for b in [Bdf::from_devid(0x18), Bdf::from_devid(0x210), Bdf::from_devid(0xfffe)] {
        let _ = (d.drhd_for(0, b), d.drhd_for_with(0, b, &bridges), d.rmrrs_for(0, b, &bridges).count());
    }
    let _ = (d.drhd_for_ioapic(0), d.drhd_for_hpet(0), d.atsrs().count());
}

/// Walks everything a parsed IVRS offers (`devices()` of a select-all is
/// 65536 items: fine, and it proves the expansion ends).
fn exercise_ivrs(i: &Ivrs<'_>) {
    let _ = i.iv_info();
    for h in i.ivhds() {
        let _ = h.entries().count();
        assert!(h.devices().count() <= 65536 * h.entries().count().max(1));
    }
    let _ = (i.preferred_ivhds().count(), i.ivmds().count(), i.blocks().count());
}

fn mutations() -> impl Strategy<Value = (Vec<(usize, u8)>, Option<usize>, bool)> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        prop::option::of(any::<usize>()),
        any::<bool>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn dmar_mutations_never_panic((muts, keep, fix) in mutations(), rich in any::<bool>()) {
        let base = if rich { super::dmar::rich_dmar() } else { super::qemu::qemu_like_dmar() };
        let t = mutate(base, &muts, keep, fix);
        match Dmar::parse(&t) {
            Ok(d) => exercise_dmar(&d),
            Err(e) => assert_inside(e, t.len()),
        }
    }

    #[test]
    fn ivrs_mutations_never_panic((muts, keep, fix) in mutations(), rich in any::<bool>()) {
        let base = if rich { super::ivrs::rich_ivrs() } else { super::qemu::qemu_like_ivrs() };
        let t = mutate(base, &muts, keep, fix);
        match Ivrs::parse(&t) {
            Ok(i) => exercise_ivrs(&i),
            Err(e) => assert_inside(e, t.len()),
        }
    }

    /// Random bodies behind a right header and checksum.
    #[test]
    fn random_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..300), dmar in any::<bool>()) {
        let sig = if dmar { b"DMAR" } else { b"IVRS" };
        let t = super::build::sdt(sig, 1, &body);
        if dmar {
            match Dmar::parse(&t) { Ok(d) => exercise_dmar(&d), Err(e) => assert_inside(e, t.len()) }
        } else {
            match Ivrs::parse(&t) { Ok(i) => exercise_ivrs(&i), Err(e) => assert_inside(e, t.len()) }
        }
    }

    /// Mutations of the RSDP, the root table and the tables it lists.
    #[test]
    fn table_walk_mutations_never_panic((muts, keep, fix) in mutations(), which in 0usize..3) {
        let mut rsdp = super::build::rsdp_v2(0x1000, 0x2000);
        let mut xsdt = super::build::xsdt(&[0x3000, 0x4000]);
        let mut dmar = super::dmar::rich_dmar();
        match which {
            0 => rsdp = mutate(rsdp, &muts, keep, false),
            1 => xsdt = mutate(xsdt, &muts, keep, fix),
            _ => dmar = mutate(dmar, &muts, keep, fix),
        }
        let ivrs = super::ivrs::rich_ivrs();
        let mem = FakeMem::default().with(0xe0000, &rsdp).with(0x2000, &xsdt).with(0x3000, &dmar).with(0x4000, &ivrs);
        match AcpiTables::new(&mem, PhysAddr(0xe0000)) {
            Ok(t) => {
                for s in t.tables().flatten() {
                    let _ = s.signature();
                }
                match t.dmar() {
                    Ok(Some(d)) => exercise_dmar(&d),
                    Ok(None) => {}
                    Err(e) if e.table == Signature::DMAR => assert_inside(e, dmar.len()),
                    Err(e) => assert_inside(e, xsdt.len()),
                }
                if let Ok(Some(i)) = t.ivrs() { exercise_ivrs(&i); }
            }
            Err(e) if e.table == Signature::RSDP => assert_inside(e, rsdp.len()),
            Err(e) => assert_inside(e, xsdt.len()),
        }
    }
}
