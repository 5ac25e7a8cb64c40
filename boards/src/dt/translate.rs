//! Bus address to CPU physical address translation through `ranges`
//! (DT spec v0.4 §2.3.8), as Linux's `of_translate_address` does it: a `reg`
//! is in its parent's address space; each bus up to the root maps its child
//! space into its own parent's with its `ranges` (`<child parent length>`
//! triplets). An empty `ranges` is the identity; no `ranges` at all means the
//! bus is not memory-mapped and the address cannot be translated.
//!
//! On the Pi 4, `/soc` maps 0x7e00_0000 (the VideoCore bus view) to
//! 0xfe00_0000 and 0x4000_0000 to 0xff80_0000 (where the GIC-400 sits).

use super::cells::Cells;
use super::error::DtError;
use super::walk::{address_space, prop, AddrSpace, Ancestry, At};
use crate::platform::Region;

/// Most `ranges` entries looked at per bus.
const MAX_RANGES: usize = 64;

/// Translates `(addr, size)`, expressed in the address space of the last node
/// of `anc` (the bus the device sits on), to a CPU physical region.
pub(crate) fn to_cpu(anc: &Ancestry<'_>, addr: u128, size: u128) -> Result<Region, DtError> {
    let mut addr = addr;
    // Walk from the device's bus up to the root's direct child.
    for depth in (1..anc.len()).rev() {
        let (Some(bus), Some(parent)) = (anc.get(depth), anc.get(depth - 1)) else {
            break;
        };
        let bad = |property: &'static str, reason: &'static str| DtError::BadProperty {
            node: anc.path_to(depth),
            property,
            reason,
        };
        let bus_space = address_space(bus).map_err(|p| bad(p, "more than 4 cells or not one cell"))?;
        let parent_space = address_space(parent).map_err(|p| DtError::BadProperty {
            node: anc.path_to(depth - 1),
            property: p,
            reason: "more than 4 cells or not one cell",
        })?;
        let Some(ranges) = prop(bus, "ranges") else {
            return Err(bad("ranges", "absent: the bus does not map into its parent"));
        };
        addr = through_ranges(ranges, bus_space, parent_space, addr, size)
            .map_err(|reason| bad("ranges", reason))?;
    }
    let base = u64::try_from(addr).map_err(|_| overflow(anc))?;
    let size = u64::try_from(size).map_err(|_| overflow(anc))?;
    if base.checked_add(size).is_none() {
        return Err(overflow(anc));
    }
    Ok(Region { base, size })
}

fn overflow(anc: &Ancestry<'_>) -> DtError {
    DtError::BadProperty {
        node: anc.path_to(anc.len().saturating_sub(1)),
        property: "reg",
        reason: "region does not fit the 64-bit physical address space",
    }
}

/// One bus level: finds the window holding `[addr, addr + size)`.
pub(crate) fn through_ranges(
    ranges: &[u8],
    bus: AddrSpace,
    parent: AddrSpace,
    addr: u128,
    size: u128,
) -> Result<u128, &'static str> {
    if ranges.is_empty() {
        return Ok(addr);
    }
    let entry_cells = (bus.address_cells + parent.address_cells + bus.size_cells) as usize;
    if entry_cells == 0 || ranges.len() % (entry_cells * 4) != 0 {
        return Err("length is not a multiple of (child, parent, size) cells");
    }
    let mut cells = Cells::new(ranges);
    for _ in 0..MAX_RANGES {
        if cells.is_empty() {
            break;
        }
        let (Some(child), Some(parent_base), Some(len)) =
            (cells.take(bus.address_cells), cells.take(parent.address_cells), cells.take(bus.size_cells))
        else {
            return Err("truncated entry");
        };
        let Some(off) = addr.checked_sub(child) else {
            continue;
        };
        // The whole region must sit inside the window.
        if off < len && size <= len - off {
            return parent_base.checked_add(off).ok_or("translated address overflows");
        }
    }
    Err("no window covers the address")
}

/// The `index`th `reg` entry of a node, as a CPU physical region.
pub(crate) fn reg(at: &At<'_, '_>, index: usize) -> Result<Option<Region>, DtError> {
    let Some(value) = at.prop("reg") else {
        return Ok(None);
    };
    let space = at.reg_space()?;
    let entry_cells = (space.address_cells + space.size_cells) as usize;
    if entry_cells == 0 || value.len() % (entry_cells * 4) != 0 {
        return Err(at.bad("reg", "length is not a multiple of (#address-cells + #size-cells)"));
    }
    let Some(entry) = value.get(index.saturating_mul(entry_cells * 4)..) else {
        return Ok(None);
    };
    let mut cells = Cells::new(entry);
    if cells.is_empty() {
        return Ok(None);
    }
    let (Some(addr), Some(size)) = (cells.take(space.address_cells), cells.take(space.size_cells)) else {
        return Err(at.bad("reg", "truncated entry"));
    };
    reg_to_cpu(at, addr, size).map(Some)
}

/// Translates one `reg` value of `at` (in its parent's space).
pub(crate) fn reg_to_cpu(at: &At<'_, '_>, addr: u128, size: u128) -> Result<Region, DtError> {
    to_cpu(at.anc, addr, size).map_err(|e| match e {
        // Name the device rather than the root when the result overflows.
        DtError::BadProperty { property: "reg", reason, .. } => at.bad("reg", reason),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOC: AddrSpace = AddrSpace { address_cells: 1, size_cells: 1 };
    const ROOT: AddrSpace = AddrSpace { address_cells: 2, size_cells: 1 };

    extern crate std;

    fn cells(v: &[u32]) -> std::vec::Vec<u8> {
        v.iter().flat_map(|c| c.to_be_bytes()).collect()
    }

    #[test]
    fn pi4_soc_ranges() {
        // /soc ranges of the Pi 4 DT, verbatim.
        let r = cells(&[
            0x7e00_0000,
            0x0,
            0xfe00_0000,
            0x180_0000, //
            0x7c00_0000,
            0x0,
            0xfc00_0000,
            0x200_0000, //
            0x4000_0000,
            0x0,
            0xff80_0000,
            0x80_0000,
        ]);
        assert_eq!(through_ranges(&r, SOC, ROOT, 0x7e20_1000, 0x200), Ok(0xfe20_1000));
        assert_eq!(through_ranges(&r, SOC, ROOT, 0x4004_1000, 0x1000), Ok(0xff84_1000));
        assert_eq!(through_ranges(&r, SOC, ROOT, 0x7c00_0000, 1), Ok(0xfc00_0000));
        // Just outside every window, and straddling a window's end.
        assert_eq!(through_ranges(&r, SOC, ROOT, 0x7f80_0000, 4), Err("no window covers the address"));
        assert_eq!(through_ranges(&r, SOC, ROOT, 0x7f7f_fffc, 8), Err("no window covers the address"));
    }

    #[test]
    fn empty_ranges_is_identity() {
        assert_eq!(through_ranges(&[], SOC, ROOT, 0x1234, 0x10), Ok(0x1234));
    }

    #[test]
    fn malformed_ranges_are_refused() {
        assert!(through_ranges(&[0, 0, 0], SOC, ROOT, 0, 1).is_err());
        let zero = AddrSpace { address_cells: 0, size_cells: 0 };
        assert!(through_ranges(&[0, 0, 0, 0], zero, zero, 0, 1).is_err());
        // A parent base at the top of a 4-cell space overflows when offset.
        let big = AddrSpace { address_cells: 4, size_cells: 1 };
        let r = cells(&[0, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff, 0x10]);
        assert_eq!(through_ranges(&r, SOC, big, 0x8, 1), Err("translated address overflows"));
    }

    proptest::proptest! {
        /// Disjoint windows, built by construction: an address inside window
        /// k maps to k's parent base plus its offset; a gap maps nowhere.
        #[test]
        fn windows_translate_like_a_lookup_table(
            windows in proptest::collection::vec((1u32..0x1000, 1u32..0x1000, any_u64()), 1..8),
            pick in 0usize..8,
            offset_frac in 0.0f64..1.0,
        ) {
            let mut child = 0u32;
            let mut table = std::vec::Vec::new();
            let mut raw = std::vec::Vec::new();
            for (gap, len, parent) in windows {
                child += gap;
                table.push((child, len, parent));
                raw.extend([child, (parent >> 32) as u32, parent as u32, len]);
                child += len;
            }
            let r = cells(&raw);
            let (base, len, parent) = table[pick % table.len()];
            let off = ((f64::from(len) * offset_frac) as u32).min(len - 1);
            let got = through_ranges(&r, SOC, ROOT, u128::from(base + off), 1);
            proptest::prop_assert_eq!(got, Ok(u128::from(parent) + u128::from(off)));
            // The byte just before each window is in a gap (gaps are >= 1).
            proptest::prop_assert!(through_ranges(&r, SOC, ROOT, u128::from(base - 1), 1).is_err());
        }
    }

    fn any_u64() -> impl proptest::strategy::Strategy<Value = u64> {
        proptest::prelude::any::<u64>()
    }
}
