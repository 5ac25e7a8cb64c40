//! GIC interrupt specifiers (`arm,gic` / `arm,gic-v3` bindings): `<type number
//! flags>`, type 0 = SPI, 1 = PPI. Only interrupts whose `interrupt-parent`
//! (on the node or inherited from an ancestor) is the GIC are decoded;
//! `interrupts-extended` is not read (none of the supported boards uses it
//! for the devices described here).

use super::cells::Cells;
use super::error::DtError;
use super::walk::At;
use crate::platform::{Irq, IrqKind};

/// Largest SPI number (INTID 1019 is the last SPI).
const MAX_SPI: u32 = 987;
/// Largest PPI number (INTID 31).
const MAX_PPI: u32 = 15;

/// The chosen GIC, as interrupt parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GicTarget {
    /// Its phandle (`None`: nothing can name it as parent).
    pub(crate) phandle: Option<u32>,
    /// Its `#interrupt-cells` (>= 3; a 4th cell, the GICv3 PPI partition, is
    /// ignored).
    pub(crate) interrupt_cells: u32,
    /// Its `#address-cells` (the parent unit address width in `interrupt-map`;
    /// 0 if absent).
    pub(crate) address_cells: u32,
}

/// Decodes the first three cells of a GIC specifier.
pub(crate) fn decode(kind: u32, num: u32, flags: u32) -> Result<Irq, &'static str> {
    let kind = match kind {
        0 if num <= MAX_SPI => IrqKind::Spi,
        1 if num <= MAX_PPI => IrqKind::Ppi,
        0 => return Err("SPI number above 987"),
        1 => return Err("PPI number above 15"),
        _ => return Err("interrupt type is neither SPI (0) nor PPI (1)"),
    };
    Ok(Irq { kind, num, flags })
}

/// A node's `interrupts`, known to be routed to the GIC.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Interrupts<'a> {
    value: &'a [u8],
    stride: u32,
}

impl Interrupts<'_> {
    pub(crate) fn count(&self) -> usize {
        self.value.len() / (self.stride as usize * 4)
    }

    /// The `i`th interrupt (`None` past the end).
    pub(crate) fn get(&self, at: &At<'_, '_>, i: usize) -> Result<Option<Irq>, DtError> {
        let stride = self.stride as usize * 4;
        let Some(spec) = self.value.get(i.saturating_mul(stride)..) else {
            return Ok(None);
        };
        let mut cells = Cells::new(spec);
        let (Some(kind), Some(num), Some(flags)) = (cells.u32(), cells.u32(), cells.u32()) else {
            return Ok(None);
        };
        decode(kind, num, flags).map(Some).map_err(|reason| at.bad("interrupts", reason))
    }
}

/// The node's `interrupts` if its interrupt parent is the GIC; `None` if it
/// has none or they go to another controller.
pub(crate) fn interrupts<'a>(at: &At<'a, '_>, gic: &GicTarget) -> Result<Option<Interrupts<'a>>, DtError> {
    let Some(value) = at.prop("interrupts") else {
        return Ok(None);
    };
    let parent = at.interrupt_parent()?;
    if parent.is_none() || parent != gic.phandle {
        return Ok(None);
    }
    if value.len() % (gic.interrupt_cells as usize * 4) != 0 {
        return Err(at.bad("interrupts", "length is not a multiple of the GIC's #interrupt-cells"));
    }
    Ok(Some(Interrupts { value, stride: gic.interrupt_cells }))
}

/// The node's first interrupt, if routed to the GIC.
pub(crate) fn first(at: &At<'_, '_>, gic: &GicTarget) -> Result<Option<Irq>, DtError> {
    match interrupts(at, gic)? {
        Some(list) => list.get(at, 0),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spi_and_ppi_intids() {
        let uart = decode(0, 1, 4).unwrap();
        assert_eq!((uart.kind, uart.num, uart.intid()), (IrqKind::Spi, 1, 33));
        let maint = decode(1, 9, 0xf04).unwrap();
        assert_eq!((maint.kind, maint.intid()), (IrqKind::Ppi, 25));
        assert_eq!(maint.trigger(), crate::platform::Trigger::LevelHigh);
        assert_eq!(decode(0, 987, 4).unwrap().intid(), 1019);
    }

    #[test]
    fn out_of_range_specifiers_are_refused() {
        assert!(decode(0, 988, 4).is_err());
        assert!(decode(1, 16, 4).is_err());
        assert!(decode(2, 0, 4).is_err());
        assert!(decode(u32::MAX, 0, 4).is_err());
    }
}
