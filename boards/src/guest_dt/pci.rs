//! The guest's generic ECAM host bridge (Linux `pci/host-generic-pci.yaml`)
//! with the PCI bus binding's address encoding (IEEE 1275 PCI binding
//! §2.2.1.1: phys.hi = `npt000ss bbbbbbbb dddddfff rrrrrrrr`) and legacy
//! INTx in an `interrupt-map` (DT spec §2.4.3).
//!
//! Deliberately absent: `msi-map`, `msi-parent` and `iommu-map`. The guest
//! sees neither the SMMU (the hypervisor owns it) nor an ITS, so Linux falls
//! back to INTx.

use super::alloc::vec::Vec;

use super::check::{self, AddressMap};
use super::error::GuestDtError;
use super::gic;
use super::spec::{GuestGic, Intx, IntxEntry, Pcie};
use super::writer::{push_irq, push_u64, Writer, ROOT_CELLS};
use super::GIC_PHANDLE;
use crate::platform::{Irq, IrqKind, PciSpace, PciWindow, Region};

/// PCI child addresses are three cells.
const PCI_ADDRESS_CELLS: u32 = 3;
/// ECAM bytes per bus: 32 devices x 8 functions x 4 KiB (PCIe base spec
/// §7.2.2).
const ECAM_BUS_SIZE: u64 = 1 << 20;
/// phys.hi bit 30: prefetchable.
const PREFETCHABLE: u32 = 1 << 30;
/// `interrupt-map-mask` phys.hi for [`Intx::Swizzle`]: the device number.
const SWIZZLE_MASK_HI: u32 = 0x1f << 11;
/// `interrupt-map-mask` phys.hi for [`Intx::Map`]: bus, device, function.
const BDF_MASK_HI: u32 = 0xffff << 8;
/// `interrupt-map-mask` pin cell: INTA..INTD.
const PIN_MASK: u32 = 7;

pub(super) fn check(pcie: &Pcie<'_>, map: &mut AddressMap) -> Result<(), GuestDtError> {
    check::region("ECAM", &pcie.ecam)?;
    map.add("ECAM", pcie.ecam);
    let (start, end) = pcie.bus_range;
    if start > end {
        return Err(GuestDtError::BusRange { start, end });
    }
    let needed = (u64::from(end - start) + 1) * ECAM_BUS_SIZE;
    if pcie.ecam.size < needed {
        return Err(GuestDtError::EcamTooSmall { size: pcie.ecam.size, needed });
    }
    for (index, win) in pcie.windows.iter().enumerate() {
        check_window(index, win)?;
        map.add("PCI window", Region { base: win.cpu_addr, size: win.size });
    }
    match pcie.intx {
        None => Ok(()),
        Some(intx) => check_intx(&intx, pcie.bus_range),
    }
}

/// The INTx routes: SPIs in range, devices and pins that exist, no route
/// listed twice.
fn check_intx(intx: &Intx<'_>, (start, end): (u8, u8)) -> Result<(), GuestDtError> {
    match *intx {
        Intx::Swizzle { devices, first } => {
            check::irq("INTx", &first, IrqKind::Spi)?;
            if first.num.saturating_add(3) > check::MAX_SPI {
                return Err(GuestDtError::BadIrq {
                    what: "INTx",
                    reason: "the swizzle's fourth SPI is above 987",
                });
            }
            for (index, &device) in devices.iter().enumerate() {
                if device > 31 {
                    return Err(GuestDtError::BadIntx { index, reason: "device number above 31" });
                }
                if devices[..index].contains(&device) {
                    return Err(GuestDtError::BadIntx { index, reason: "device listed twice" });
                }
            }
            Ok(())
        }
        Intx::Map(entries) => {
            for (index, e) in entries.iter().enumerate() {
                let bad = |reason| Err(GuestDtError::BadIntx { index, reason });
                if !(1..=4).contains(&e.pin) {
                    return bad("pin is not 1..=4 (INTA..INTD)");
                }
                if !(start..=end).contains(&((e.bdf >> 8) as u8)) {
                    return bad("bus outside bus_range");
                }
                if entries[..index].iter().any(|o| o.bdf == e.bdf && o.pin == e.pin) {
                    return bad("bus, device, function and pin listed twice");
                }
                check::irq("INTx", &e.irq, IrqKind::Spi)?;
            }
            Ok(())
        }
    }
}

fn check_window(index: usize, w: &PciWindow) -> Result<(), GuestDtError> {
    let bad = |reason| Err(GuestDtError::BadWindow { index, reason });
    if w.size == 0 {
        return bad("size 0");
    }
    if w.cpu_addr.checked_add(w.size).is_none() {
        return bad("CPU range runs past the top of the address space");
    }
    let Some(pci_end) = w.pci_addr.checked_add(w.size) else {
        return bad("PCI range runs past the top of the address space");
    };
    match w.kind {
        PciSpace::Io | PciSpace::Mem32 if pci_end > 1 << 32 => bad("a 32-bit window reaches past 4 GiB"),
        PciSpace::Io if w.prefetchable => bad("an I/O window cannot be prefetchable"),
        _ => Ok(()),
    }
}

/// phys.hi of a window: space code in bits 25:24, prefetchable in bit 30.
fn space_code(w: &PciWindow) -> u32 {
    let ss = match w.kind {
        PciSpace::Io => 0b01,
        PciSpace::Mem32 => 0b10,
        PciSpace::Mem64 => 0b11,
    };
    (ss << 24) | if w.prefetchable { PREFETCHABLE } else { 0 }
}

pub(super) fn write(w: &mut Writer, pcie: &Pcie<'_>, gic: &GuestGic) -> Result<(), GuestDtError> {
    let mut ranges = Vec::with_capacity(pcie.windows.len() * 7);
    for win in pcie.windows {
        ranges.push(space_code(win));
        push_u64(&mut ranges, win.pci_addr);
        push_u64(&mut ranges, win.cpu_addr);
        push_u64(&mut ranges, win.size);
    }
    w.node_at("pcie", pcie.ecam.base, |w| {
        w.string("compatible", "pci-host-ecam-generic")?;
        w.string("device_type", "pci")?;
        w.u32("#address-cells", PCI_ADDRESS_CELLS)?;
        w.u32("#size-cells", ROOT_CELLS)?;
        w.reg(core::slice::from_ref(&pcie.ecam))?;
        w.cells("bus-range", &[u32::from(pcie.bus_range.0), u32::from(pcie.bus_range.1)])?;
        w.cells("ranges", &ranges)?;
        if pcie.dma_coherent {
            w.empty("dma-coherent")?;
        }
        if let Some(intx) = &pcie.intx {
            let (mask_hi, map) = interrupt_map(intx, gic::address_cells(gic));
            w.u32("#interrupt-cells", 1)?;
            w.cells("interrupt-map-mask", &[mask_hi, 0, 0, PIN_MASK])?;
            w.cells("interrupt-map", &map)?;
        }
        Ok(())
    })
}

/// The `interrupt-map-mask` phys.hi and the `interrupt-map` cells:
/// `<phys.hi 0 0 pin  gic  parent-unit-address(gic_address_cells)  spi>`.
fn interrupt_map(intx: &Intx<'_>, gic_address_cells: u32) -> (u32, Vec<u32>) {
    let mut cells = Vec::new();
    let mut entry = |hi: u32, pin: u8, irq: &Irq| {
        cells.extend_from_slice(&[hi, 0, 0, u32::from(pin), GIC_PHANDLE]);
        cells.extend((0..gic_address_cells).map(|_| 0));
        push_irq(&mut cells, irq);
    };
    match intx {
        Intx::Swizzle { devices, first } => {
            for &device in *devices {
                for pin in 1..=4u8 {
                    // QEMU hw/arm/virt.c create_pcie_irq_map(): (pin - 1 + device) % 4.
                    let offset = (u32::from(pin) - 1 + u32::from(device)) % 4;
                    let irq = Irq { num: first.num + offset, ..*first };
                    entry(u32::from(device) << 11, pin, &irq);
                }
            }
            (SWIZZLE_MASK_HI, cells)
        }
        Intx::Map(entries) => {
            for IntxEntry { bdf, pin, irq } in *entries {
                entry(u32::from(*bdf) << 8, *pin, irq);
            }
            (BDF_MASK_HI, cells)
        }
    }
}
