//! Generic ECAM host bridges (Linux `pci/host-generic-pci.yaml`), with the
//! PCI bus binding's address encoding (IEEE 1275 PCI binding §2.2.1.1:
//! phys.hi = `npt000ss bbbbbbbb dddddfff rrrrrrrr`), `iommu-map` / `msi-map`
//! (`pci/pci-iommu.yaml`, `pci/pci-msi.txt`) and `interrupt-map` (DT spec
//! §2.4.3).

use dtoolkit::fdt::Fdt;
use heapless::Vec;

use super::cells::Cells;
use super::error::DtError;
use super::irq::{self, GicTarget};
use super::translate;
use super::walk::{find_phandle, At};
use crate::platform::{
    IntxMap, IntxRoute, IommuMapEntry, MsiMapEntry, PciSpace, PciWindow, PcieHost, MAX_ID_MAP, MAX_INTX,
    MAX_PCI_WINDOWS,
};

pub(crate) const ECAM: &str = "pci-host-ecam-generic";

/// PCI child addresses are three cells.
const PCI_ADDRESS_CELLS: u32 = 3;
/// Most `ranges` entries looked at.
const MAX_RANGES: usize = 64;
/// Most distinct non-GIC interrupt parents looked up for one `interrupt-map`
/// (each lookup walks the tree).
const MAX_FOREIGN_PARENTS: usize = 4;

/// Decodes a `pci-host-ecam-generic` node.
pub(crate) fn parse(fdt: Fdt<'_>, at: &At<'_, '_>, gic: &GicTarget) -> Result<PcieHost, DtError> {
    let space = at.address_space()?;
    if space.address_cells != PCI_ADDRESS_CELLS {
        return Err(at.bad("#address-cells", "not 3 (PCI bus binding)"));
    }
    let ecam = translate::reg(at, 0)?.ok_or_else(|| at.bad("reg", "missing"))?;
    let (bus_start, bus_end) = bus_range(at)?;
    let buses = u64::from(bus_end - bus_start) + 1;
    if ecam.size < buses << 20 {
        return Err(at.bad("reg", "ECAM smaller than 1 MiB per bus of bus-range"));
    }
    let iommu_map_mask = at.u32("iommu-map-mask")?.unwrap_or(u32::MAX);
    Ok(PcieHost {
        ecam,
        bus_start,
        bus_end,
        domain: at.u32("linux,pci-domain")?,
        coherent: at.dma_coherent(),
        windows: windows(at, space.size_cells)?,
        iommu_map: id_map(at, "iommu-map", |[rid_base, iommu_phandle, sid_base, len]| IommuMapEntry {
            rid_base,
            iommu_phandle,
            sid_base,
            len,
        })?,
        iommu_map_mask,
        msi_map: id_map(at, "msi-map", |[rid_base, msi_phandle, msi_base, len]| MsiMapEntry {
            rid_base,
            msi_phandle,
            msi_base,
            len,
        })?,
        intx: interrupt_map(fdt, at, gic)?,
    })
}

fn bus_range(at: &At<'_, '_>) -> Result<(u8, u8), DtError> {
    let Some(v) = at.prop("bus-range") else {
        return Ok((0, 255));
    };
    let mut c = Cells::new(v);
    match (c.u32(), c.u32(), c.is_empty()) {
        (Some(s), Some(e), true) => match (u8::try_from(s), u8::try_from(e)) {
            (Ok(s), Ok(e)) if s <= e => Ok((s, e)),
            _ => Err(at.bad("bus-range", "not start <= end <= 255")),
        },
        _ => Err(at.bad("bus-range", "not two cells")),
    }
}

/// `ranges`: `<phys.hi phys.mid phys.lo  cpu-address  size>`.
fn windows(at: &At<'_, '_>, size_cells: u32) -> Result<Vec<PciWindow, MAX_PCI_WINDOWS>, DtError> {
    let mut out = Vec::new();
    let Some(ranges) = at.prop("ranges") else {
        return Ok(out);
    };
    let parent = at.reg_space()?;
    let entry = (PCI_ADDRESS_CELLS + parent.address_cells + size_cells) as usize * 4;
    if ranges.len() % entry != 0 {
        return Err(at.bad("ranges", "length is not a multiple of (3 + parent address + size) cells"));
    }
    if ranges.len() / entry > MAX_RANGES {
        return Err(at.bad("ranges", "more than 64 entries"));
    }
    let mut c = Cells::new(ranges);
    while !c.is_empty() {
        let (Some(hi), Some(pci_addr), Some(cpu), Some(size)) =
            (c.u32(), c.take_u64(2), c.take(parent.address_cells), c.take(size_cells))
        else {
            return Err(at.bad("ranges", "truncated entry"));
        };
        let kind = match (hi >> 24) & 0x3 {
            0b01 => PciSpace::Io,
            0b10 => PciSpace::Mem32,
            0b11 => PciSpace::Mem64,
            // Configuration space goes through the ECAM `reg`, not a window.
            _ => continue,
        };
        let region = translate::reg_to_cpu(at, cpu, size)?;
        out.push(PciWindow {
            kind,
            prefetchable: hi & (1 << 30) != 0,
            pci_addr,
            cpu_addr: region.base,
            size: region.size,
        })
        .map_err(|_| DtError::TooMany { list: "PCI windows", capacity: MAX_PCI_WINDOWS })?;
    }
    Ok(out)
}

/// `iommu-map` / `msi-map`: `<rid-base phandle target-base length>` entries
/// (the target's `#iommu-cells` / `#msi-cells` is 1 in both bindings' ARM
/// uses, so entries are four cells).
fn id_map<T>(
    at: &At<'_, '_>,
    property: &'static str,
    make: impl Fn([u32; 4]) -> T,
) -> Result<Vec<T, MAX_ID_MAP>, DtError> {
    let mut out = Vec::new();
    let Some(v) = at.prop(property) else {
        return Ok(out);
    };
    if v.len() % 16 != 0 {
        return Err(at.bad(property, "length is not a multiple of 4 cells"));
    }
    let mut c = Cells::new(v);
    while let (Some(a), Some(b), Some(d), Some(e)) = (c.u32(), c.u32(), c.u32(), c.u32()) {
        if e == 0 {
            return Err(at.bad(property, "entry of length 0"));
        }
        if out.push(make([a, b, d, e])).is_err() {
            return Err(DtError::TooMany { list: property, capacity: MAX_ID_MAP });
        }
    }
    Ok(out)
}

/// `interrupt-map`: `<child-unit-address(3) child-pin(1) parent-phandle
/// parent-unit-address(parent #address-cells) parent-specifier(parent
/// #interrupt-cells)>`.
fn interrupt_map(fdt: Fdt<'_>, at: &At<'_, '_>, gic: &GicTarget) -> Result<Option<IntxMap>, DtError> {
    let Some(map) = at.prop("interrupt-map") else {
        return Ok(None);
    };
    let child_ic = match at.u32("#interrupt-cells")? {
        Some(1) => 1,
        Some(_) => return Err(at.bad("#interrupt-cells", "not 1 (a PCI pin)")),
        None => return Err(at.bad("#interrupt-cells", "missing with an interrupt-map")),
    };
    let (mask_hi, mask_pin) = match at.prop("interrupt-map-mask") {
        None => (u32::MAX, u32::MAX),
        Some(v) => {
            let mut c = Cells::new(v);
            match (c.u32(), c.u32(), c.u32(), c.u32(), c.is_empty()) {
                (Some(hi), Some(_), Some(_), Some(pin), true) => (hi, pin),
                _ => return Err(at.bad("interrupt-map-mask", "not 4 cells")),
            }
        }
    };
    let mut out = IntxMap { mask_hi, mask_pin, routes: Vec::new(), skipped: 0 };
    let truncated = || at.bad("interrupt-map", "truncated entry");
    // (phandle, #address-cells, #interrupt-cells) of parents other than the GIC.
    let mut foreign: Vec<(u32, u32, u32), MAX_FOREIGN_PARENTS> = Vec::new();
    let mut c = Cells::new(map);
    // Every entry consumes at least five cells, so this loop ends.
    while !c.is_empty() {
        let hi = c.u32().ok_or_else(truncated)?;
        c.take(PCI_ADDRESS_CELLS - 1).ok_or_else(truncated)?;
        let pin = c.take(child_ic).ok_or_else(truncated)?;
        let parent = c.u32().ok_or_else(truncated)?;
        let to_gic = Some(parent) == gic.phandle;
        let (p_ac, p_ic) = if to_gic {
            (gic.address_cells, gic.interrupt_cells)
        } else {
            foreign_parent(fdt, at, parent, &mut foreign)?
        };
        c.take(p_ac).ok_or_else(truncated)?;
        if !to_gic {
            for _ in 0..p_ic {
                c.u32().ok_or_else(truncated)?;
            }
            out.skipped = out.skipped.saturating_add(1);
            continue;
        }
        let (Some(kind), Some(num), Some(flags)) = (c.u32(), c.u32(), c.u32()) else {
            return Err(truncated());
        };
        for _ in 3..p_ic {
            c.u32().ok_or_else(truncated)?;
        }
        let irq = irq::decode(kind, num, flags).map_err(|r| at.bad("interrupt-map", r))?;
        let pin = u8::try_from(pin)
            .ok()
            .filter(|p| (1..=4).contains(p))
            .ok_or_else(|| at.bad("interrupt-map", "pin is not 1..=4 (INTA..INTD)"))?;
        out.routes
            .push(IntxRoute { child_hi: hi, device: ((hi >> 11) & 0x1f) as u8, pin, irq })
            .map_err(|_| DtError::TooMany { list: "interrupt-map entries", capacity: MAX_INTX })?;
    }
    Ok(Some(out))
}

/// The cell counts of a non-GIC `interrupt-map` parent, looked up once each.
fn foreign_parent(
    fdt: Fdt<'_>,
    at: &At<'_, '_>,
    phandle: u32,
    seen: &mut Vec<(u32, u32, u32), MAX_FOREIGN_PARENTS>,
) -> Result<(u32, u32), DtError> {
    if let Some(&(_, ac, ic)) = seen.iter().find(|(p, _, _)| *p == phandle) {
        return Ok((ac, ic));
    }
    let node =
        find_phandle(fdt, phandle)?.ok_or_else(|| at.bad("interrupt-map", "parent phandle names no node"))?;
    let p = node.at();
    let ac = p.u32("#address-cells")?.unwrap_or(0);
    let ic = p
        .u32("#interrupt-cells")?
        .ok_or_else(|| p.bad("#interrupt-cells", "missing on an interrupt-map parent"))?;
    if ac > 4 || !(1..=4).contains(&ic) {
        return Err(p.bad("#interrupt-cells", "cell counts above 4"));
    }
    seen.push((phandle, ac, ic)).map_err(|_| DtError::Limit {
        what: "distinct non-GIC interrupt-map parents",
        limit: MAX_FOREIGN_PARENTS,
    })?;
    Ok((ac, ic))
}
