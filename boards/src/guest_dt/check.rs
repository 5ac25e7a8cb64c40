//! Checks shared by the node writers: regions, interrupts, strings and the
//! guest's address map as a whole.

use super::alloc::vec::Vec;

use super::error::GuestDtError;
use crate::platform::{Irq, IrqKind, Region};

/// Largest SPI number (INTID 1019).
pub(super) const MAX_SPI: u32 = 987;
/// Largest PPI number (INTID 31).
const MAX_PPI: u32 = 15;
/// Longest node name before the `@` (DT spec §2.2.1).
const NODE_NAME_MAX: usize = 31;

/// A non-empty region that does not wrap.
pub(super) fn region(what: &'static str, r: &Region) -> Result<(), GuestDtError> {
    if r.size == 0 {
        return Err(GuestDtError::EmptyRegion { what, base: r.base });
    }
    if r.end().is_none() {
        return Err(GuestDtError::RegionWraps { what, base: r.base });
    }
    Ok(())
}

/// An interrupt of `kind` the GIC can deliver with its trigger. SPIs are
/// level-high or rising-edge only (GICv3 spec §4.3, `GICD_ICFGR`); a PPI may
/// also say active-low or falling edge (inverted before the GIC on some
/// boards, as the Raspberry Pi 4's timer is).
pub(super) fn irq(what: &'static str, irq: &Irq, kind: IrqKind) -> Result<(), GuestDtError> {
    let bad = |reason| Err(GuestDtError::BadIrq { what, reason });
    match (irq.kind, kind) {
        (IrqKind::Spi, IrqKind::Ppi) => return bad("an SPI where a PPI is needed"),
        (IrqKind::Ppi, IrqKind::Spi) => return bad("a PPI where an SPI is needed"),
        _ => {}
    }
    let trigger = irq.flags & 0xf;
    match irq.kind {
        IrqKind::Spi if irq.num > MAX_SPI => bad("SPI number above 987"),
        IrqKind::Ppi if irq.num > MAX_PPI => bad("PPI number above 15"),
        IrqKind::Spi if trigger != 1 && trigger != 4 => {
            bad("an SPI is neither level-high (4) nor edge-rising (1)")
        }
        IrqKind::Ppi if !matches!(trigger, 1 | 2 | 4 | 8) => bad("trigger flags are not one of 1, 2, 4, 8"),
        _ => Ok(()),
    }
}

/// A string that can be a property value: no NUL inside.
pub(super) fn text(what: &'static str, s: &str) -> Result<(), GuestDtError> {
    if s.contains('\0') {
        return Err(GuestDtError::BadString { what, reason: "contains NUL" });
    }
    Ok(())
}

/// A node name without unit address (DT spec §2.2.1, table 2.1).
pub(super) fn node_name(what: &'static str, s: &str) -> Result<(), GuestDtError> {
    let bad = |reason| Err(GuestDtError::BadString { what, reason });
    if s.is_empty() || s.len() > NODE_NAME_MAX {
        return bad("not 1..=31 characters");
    }
    if !s.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return bad("does not start with a letter");
    }
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ',' | '.' | '_' | '+' | '-')) {
        return bad("has a character other than A-Z a-z 0-9 , . _ + -");
    }
    Ok(())
}

/// Whether `inner` lies inside one of `memory`.
pub(super) fn inside_memory(
    what: &'static str,
    inner: &Region,
    memory: &[Region],
) -> Result<(), GuestDtError> {
    let inside =
        |m: &Region| inner.base >= m.base && matches!((inner.end(), m.end()), (Some(i), Some(m)) if i <= m);
    if memory.iter().any(inside) {
        Ok(())
    } else {
        Err(GuestDtError::OutsideMemory { what, base: inner.base })
    }
}

/// Regions that must not overlap, each named for the error.
#[derive(Default)]
pub(super) struct AddressMap {
    regions: Vec<(&'static str, Region)>,
}

impl AddressMap {
    /// Adds a region already checked with [`region`].
    pub(super) fn add(&mut self, what: &'static str, r: Region) {
        self.regions.push((what, r));
    }

    /// The first overlapping pair, in insertion order. Quadratic, and fine
    /// for the dozen regions of a guest.
    pub(super) fn check(&self) -> Result<(), GuestDtError> {
        for (i, (first, a)) in self.regions.iter().enumerate() {
            for (second, b) in &self.regions[i + 1..] {
                if overlaps(a, b) {
                    return Err(GuestDtError::Overlap {
                        first,
                        first_base: a.base,
                        second,
                        second_base: b.base,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Whether two non-empty, non-wrapping regions share a byte.
fn overlaps(a: &Region, b: &Region) -> bool {
    a.base < b.base.saturating_add(b.size) && b.base < a.base.saturating_add(a.size)
}
