//! Feeds arbitrary bytes to the ACPI parsers: as a DMAR, as an IVRS (each
//! with its signature, length and checksum made right so the input reaches
//! the structure walk), raw, and as physical memory holding an RSDP.
//! Nothing may panic or hang, and every error must point inside its table.
#![no_main]

use iommu_common::addr::PhysAddr;
use libfuzzer_sys::fuzz_target;
use x86_backends::acpi::{AcpiTables, Bdf, BusRange, Dmar, Error, Ivrs, SliceMem};

fn table(sig: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut t = Vec::with_capacity(36 + body.len());
    t.extend_from_slice(sig);
    t.extend_from_slice(&((36 + body.len()) as u32).to_le_bytes());
    t.extend_from_slice(&[1, 0]);
    t.extend_from_slice(&[0; 26]);
    t.extend_from_slice(body);
    let sum = t.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    t[9] = 0u8.wrapping_sub(sum);
    t
}

fn inside(e: Error, len: usize) {
    assert!(e.offset < len.max(1), "{e} outside a {len}-byte table");
}

fn dmar(t: &[u8]) {
    match Dmar::parse(t) {
        Ok(d) => {
            let bridges = |b: Bdf| {
                Some(BusRange { secondary: b.bus.wrapping_add(1), subordinate: b.bus.wrapping_add(2) })
            };
            let _ = d.structures().count();
            for id in [0u16, 0x18, 0x100, 0xffff] {
                let b = Bdf::from_devid(id);
                let _ =
                    (d.drhd_for(0, b), d.drhd_for_with(0, b, &bridges), d.rmrrs_for(0, b, &bridges).count());
            }
            for h in d.drhds() {
                for s in h.scopes() {
                    let _ = (s.path().count(), s.resolve(&bridges));
                }
            }
        }
        Err(e) => inside(e, t.len()),
    }
}

fn ivrs(t: &[u8]) {
    match Ivrs::parse(t) {
        Ok(i) => {
            for h in i.ivhds() {
                let _ = h.entries().count();
                // Bounded: a select-all is 65536 IDs, and there may be many.
                let _ = h.devices().take(1 << 20).count();
            }
            let _ = (i.preferred_ivhds().count(), i.ivmds().count(), i.blocks().count());
        }
        Err(e) => inside(e, t.len()),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode % 4 {
        0 => dmar(&table(b"DMAR", rest)),
        1 => ivrs(&table(b"IVRS", rest)),
        2 => {
            dmar(rest);
            ivrs(rest);
        }
        _ => {
            // `rest` is physical memory from 0; the RSDP is at 0.
            let mem = SliceMem::new(PhysAddr(0), rest);
            if let Ok(t) = AcpiTables::new(&mem, PhysAddr(0)) {
                let _ = t.tables().count();
                if let Ok(Some(d)) = t.dmar() {
                    let _ = d.drhds().count();
                }
                if let Ok(Some(i)) = t.ivrs() {
                    let _ = i.ivhds().count();
                }
            }
        }
    }
});
