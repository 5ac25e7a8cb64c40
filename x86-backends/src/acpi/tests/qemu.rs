//! The tables QEMU 10.0.2 q35 hands its guest, dumped from a real run (see
//! `../testdata/README.md`), and the same images made by the spec builders.

extern crate std;

use std::vec::Vec;

use iommu_common::addr::PhysAddr;

use super::build::{self, FakeMem};
use crate::acpi::dmar::ScopeType;
use crate::acpi::ivrs::{DeviceEntry, DeviceSetting, DteSetting, Variety};
use crate::acpi::{AcpiTables, Bdf, Dmar, Ivrs, Signature};

const INTEL_DMAR: &[u8] = include_bytes!("../testdata/qemu10-q35-intel-dmar.bin");
const INTEL_RSDP: &[u8] = include_bytes!("../testdata/qemu10-q35-intel-rsdp.bin");
const INTEL_TABLES: &[u8] = include_bytes!("../testdata/qemu10-q35-intel-tables.bin");
const AMD_IVRS: &[u8] = include_bytes!("../testdata/qemu10-q35-amd-ivrs.bin");
const AMD_RSDP: &[u8] = include_bytes!("../testdata/qemu10-q35-amd-rsdp.bin");
const AMD_TABLES: &[u8] = include_bytes!("../testdata/qemu10-q35-amd-tables.bin");
const RSDP_PA: u64 = 0xf5240;
const TABLES_PA: u64 = 0x7fe0000;

const Q35_ENDPOINTS: [(u8, u8); 7] = [(0, 0), (1, 0), (2, 0), (3, 0), (0x1f, 0), (0x1f, 2), (0x1f, 3)];
const Q35_AMD_DEVIDS: [u16; 8] = [0x00, 0x08, 0x10, 0x18, 0x20, 0xf8, 0xfa, 0xfb];

fn bdf(b: u8, d: u8, f: u8) -> Bdf {
    Bdf::new(b, d, f).unwrap()
}

/// QEMU's `build_dmar_q35`, written with the spec builders: one DRHD without
/// INCLUDE_PCI_ALL, the IOAPIC (ID 0 on bus 0xff, 00.0) and each endpoint.
pub fn qemu_like_dmar() -> Vec<u8> {
    let mut scopes = std::vec![build::scope(3, 0, 0xff, &[(0, 0)])];
    for (d, f) in Q35_ENDPOINTS {
        scopes.push(build::scope(1, 0, 0, &[(d, f)]));
    }
    build::dmar(47, 1, &[build::drhd(0, 0, 0, 0xfed9_0000, &scopes)])
}

/// QEMU's `build_amd_iommu`: IVHD 10h and 11h for the IOMMU at 00:03.0,
/// base 0xfed80000, a select (02h) entry per device, and the IOAPIC.
pub fn qemu_like_ivrs() -> Vec<u8> {
    let mut entries = Vec::new();
    for id in Q35_AMD_DEVIDS {
        entries.extend(build::e4(2, id, 0));
    }
    entries.extend(build::e_special(0, 0, 0xa0, 1));
    let ivinfo = 1 | (40 << 8);
    build::ivrs(
        ivinfo,
        &[
            build::ivhd(0x10, 0xd1, 0x18, 0x40, 0xfed8_0000, 0, 0, 0x44, 0, &entries),
            build::ivhd(0x11, 0x11, 0x18, 0x40, 0xfed8_0000, 0, 0, 0, 0x29d3, &entries),
        ],
    )
}

#[test]
fn spec_built_dmar_matches_qemu_dump() {
    // Past the header (OEM fields differ), byte for byte.
    assert_eq!(&qemu_like_dmar()[36..], &INTEL_DMAR[36..]);
    assert_eq!(INTEL_DMAR.len(), 128);
}

#[test]
fn spec_built_ivrs_matches_qemu_dump() {
    assert_eq!(&qemu_like_ivrs()[36..], &AMD_IVRS[36..]);
    assert_eq!(AMD_IVRS.len(), 192);
}

#[test]
fn qemu_dmar_header_and_drhd() {
    let dmar = Dmar::parse(INTEL_DMAR).unwrap();
    assert_eq!(dmar.host_address_width(), 48);
    assert!(dmar.flags().intr_remap());
    assert!(!dmar.flags().x2apic_opt_out());
    assert!(!dmar.flags().dma_ctrl_platform_opt_in());
    let drhds: Vec<_> = dmar.drhds().collect();
    assert_eq!(drhds.len(), 1);
    let d = drhds[0];
    assert_eq!(d.register_base, PhysAddr(0xfed9_0000));
    assert!(!d.include_pci_all(), "QEMU lists explicit scopes");
    assert_eq!(d.segment, 0);
    assert_eq!(d.register_size(), 4096);
    let scopes: Vec<_> = d.scopes().collect();
    assert_eq!(scopes.len(), 8);
    assert_eq!(scopes[0].scope_type(), ScopeType::IoApic);
    assert_eq!(scopes[0].start_bus(), 0xff);
    assert_eq!(scopes[0].enumeration_id(), 0);
    let endpoints: Vec<_> = scopes[1..]
        .iter()
        .map(|s| {
            assert_eq!(s.scope_type(), ScopeType::PciEndpoint);
            s.resolve(&|_| None).unwrap()
        })
        .collect();
    let want: Vec<_> = Q35_ENDPOINTS.iter().map(|&(d, f)| bdf(0, d, f)).collect();
    assert_eq!(endpoints, want);
}

#[test]
fn qemu_dmar_drhd_for_honours_explicit_scopes() {
    let dmar = Dmar::parse(INTEL_DMAR).unwrap();
    // edu at 00:03.0 is listed; 00:04.0 is not, and nothing includes all.
    assert_eq!(dmar.drhd_for(0, bdf(0, 3, 0)).unwrap().register_base, PhysAddr(0xfed9_0000));
    assert_eq!(dmar.drhd_for(0, bdf(0, 0x1f, 3)).map(|d| d.offset), Some(48));
    assert_eq!(dmar.drhd_for(0, bdf(0, 4, 0)), None);
    assert_eq!(dmar.drhd_for(0, bdf(0, 0x1f, 1)), None);
    assert_eq!(dmar.drhd_for(1, bdf(0, 3, 0)), None, "other segment");
    assert!(dmar.drhd_for_ioapic(0).is_some());
    assert!(dmar.drhd_for_ioapic(1).is_none());
    assert!(dmar.drhd_for_hpet(0).is_none());
    assert_eq!(dmar.rmrrs().count(), 0);
}

#[test]
fn qemu_ivrs_header_and_ivhds() {
    let ivrs = Ivrs::parse(AMD_IVRS).unwrap();
    let info = ivrs.iv_info();
    assert!(info.efr_sup());
    assert!(!info.dma_remap_sup());
    assert_eq!(info.pa_size(), 40);
    assert_eq!(info.va_size(), 0);
    assert_eq!(info.gva_size(), 0);
    let hs: Vec<_> = ivrs.ivhds().collect();
    assert_eq!(hs.len(), 2);
    assert_eq!((hs[0].block_type, hs[1].block_type), (0x10, 0x11));
    for h in &hs {
        assert_eq!(h.base_address, PhysAddr(0xfed8_0000));
        assert_eq!(h.iommu_devid, 0x18, "the IOMMU's own function, 00:03.0");
        assert_eq!(h.capability_offset, 0x40);
        assert_eq!(h.pci_segment, 0);
    }
    assert_eq!(hs[0].flags, 0xd1);
    assert_eq!(hs[0].feature_info, 0x44);
    assert_eq!(hs[0].efr_image, None);
    assert_eq!(hs[1].efr_image, Some(0x29d3));
    let preferred: Vec<_> = ivrs.preferred_ivhds().collect();
    assert_eq!(preferred.len(), 1);
    assert_eq!(preferred[0].block_type, 0x11);
}

#[test]
fn qemu_ivrs_devices() {
    let ivrs = Ivrs::parse(AMD_IVRS).unwrap();
    for h in ivrs.ivhds() {
        let devs: Vec<u16> = h.devices().map(|d| d.devid).collect();
        let mut want = Q35_AMD_DEVIDS.to_vec();
        want.push(0xa0);
        assert_eq!(devs, want);
        assert!(h.devices().all(|d| d.dte == DteSetting(0) && d.alias.is_none()));
        let special: Vec<_> = h.entries().filter(|e| matches!(e, DeviceEntry::Special { .. })).collect();
        assert_eq!(
            special,
            [DeviceEntry::Special { handle: 0, devid: 0xa0, dte: DteSetting(0), variety: Variety::IoApic }]
        );
        assert_eq!(
            h.devices().nth(4),
            Some(DeviceSetting { devid: 0x20, dte: DteSetting(0), alias: None, ext: None })
        );
    }
    assert_eq!(Bdf::from_devid(0x20), bdf(0, 4, 0), "edu comes after the IOMMU's slot");
}

#[test]
fn qemu_rsdt_walk_finds_dmar() {
    let mem = FakeMem::default().with(RSDP_PA, INTEL_RSDP).with(TABLES_PA, INTEL_TABLES);
    let t = AcpiTables::new(&mem, PhysAddr(RSDP_PA)).unwrap();
    assert_eq!(t.rsdp().revision(), 0);
    assert_eq!(t.rsdp().xsdt(), None);
    assert_eq!(t.root().signature(), Signature::RSDT);
    let sigs: Vec<_> = t.tables().map(|r| r.unwrap().signature()).collect();
    let want: Vec<_> =
        [b"FACP", b"APIC", b"HPET", b"MCFG", b"DMAR", b"WAET"].iter().map(|s| Signature(**s)).collect();
    assert_eq!(sigs, want);
    let dmar = t.dmar().unwrap().unwrap();
    assert_eq!(dmar.sdt().bytes(), INTEL_DMAR);
    assert!(t.ivrs().unwrap().is_none());
    assert!(t.find(Signature(*b"SSDT")).unwrap().is_none());
}

#[test]
fn qemu_rsdt_walk_finds_ivrs() {
    let mem = FakeMem::default().with(RSDP_PA, AMD_RSDP).with(TABLES_PA, AMD_TABLES);
    let t = AcpiTables::new(&mem, PhysAddr(RSDP_PA)).unwrap();
    assert_eq!(t.ivrs().unwrap().unwrap().sdt().bytes(), AMD_IVRS);
    assert!(t.dmar().unwrap().is_none());
}

#[test]
fn qemu_rsdp_found_by_bios_area_search() {
    // The 0xe0000..0x100000 area as SeaBIOS leaves it (only the RSDP here).
    let mut area = std::vec![0u8; 0x20000];
    let at = (RSDP_PA - 0xe0000) as usize;
    area[at..at + 20].copy_from_slice(INTEL_RSDP);
    let mem = crate::acpi::SliceMem::new(PhysAddr(0xe0000), &area);
    let (pa, rsdp) = crate::acpi::Rsdp::search(&mem, PhysAddr(0xe0000), PhysAddr(0x100000)).unwrap();
    assert_eq!(pa, PhysAddr(RSDP_PA));
    assert_eq!(rsdp.rsdt(), PhysAddr(0x7fe23ae));
    assert_eq!(&rsdp.oem_id(), b"BOCHS ");
}
