//! A thin layer over `vm_fdt::FdtWriter`: nodes as closures (so every node
//! that is begun is ended), cell encodings this tree uses, and errors mapped
//! to [`GuestDtError`].

use super::alloc::format;
use super::alloc::vec::Vec;

use vm_fdt::FdtWriter;

use super::error::GuestDtError;
use crate::platform::{Irq, IrqKind, Region};

/// `#address-cells` and `#size-cells` of the root (and `/reserved-memory`):
/// 64-bit addresses and sizes.
pub(super) const ROOT_CELLS: u32 = 2;

pub(super) struct Writer {
    fdt: FdtWriter,
}

impl Writer {
    pub(super) fn new() -> Result<Self, GuestDtError> {
        Ok(Self { fdt: FdtWriter::new()? })
    }

    /// Writes node `name` with the properties and children `body` writes.
    pub(super) fn node(
        &mut self,
        name: &str,
        body: impl FnOnce(&mut Self) -> Result<(), GuestDtError>,
    ) -> Result<(), GuestDtError> {
        let node = self.fdt.begin_node(name)?;
        body(self)?;
        Ok(self.fdt.end_node(node)?)
    }

    /// Writes node `name@<base in hex>`.
    pub(super) fn node_at(
        &mut self,
        name: &str,
        base: u64,
        body: impl FnOnce(&mut Self) -> Result<(), GuestDtError>,
    ) -> Result<(), GuestDtError> {
        self.node(&unit_name(name, base), body)
    }

    pub(super) fn empty(&mut self, name: &str) -> Result<(), GuestDtError> {
        Ok(self.fdt.property_null(name)?)
    }

    pub(super) fn string(&mut self, name: &str, value: &str) -> Result<(), GuestDtError> {
        Ok(self.fdt.property_string(name, value)?)
    }

    /// A `stringlist`: each string NUL-terminated, back to back.
    pub(super) fn strings(&mut self, name: &str, values: &[&str]) -> Result<(), GuestDtError> {
        let mut bytes = Vec::new();
        for s in values {
            if s.contains('\0') {
                return Err(GuestDtError::BadString { what: "string list", reason: "contains NUL" });
            }
            bytes.extend_from_slice(s.as_bytes());
            bytes.push(0);
        }
        Ok(self.fdt.property(name, &bytes)?)
    }

    pub(super) fn u32(&mut self, name: &str, value: u32) -> Result<(), GuestDtError> {
        Ok(self.fdt.property_u32(name, value)?)
    }

    /// A 64-bit value in two cells.
    pub(super) fn u64(&mut self, name: &str, value: u64) -> Result<(), GuestDtError> {
        Ok(self.fdt.property_u64(name, value)?)
    }

    pub(super) fn cells(&mut self, name: &str, cells: &[u32]) -> Result<(), GuestDtError> {
        Ok(self.fdt.property_array_u32(name, cells)?)
    }

    /// `reg` with [`ROOT_CELLS`] address and size cells per region.
    pub(super) fn reg(&mut self, regions: &[Region]) -> Result<(), GuestDtError> {
        let mut cells = Vec::with_capacity(regions.len() * 4);
        for r in regions {
            push_u64(&mut cells, r.base);
            push_u64(&mut cells, r.size);
        }
        self.cells("reg", &cells)
    }

    pub(super) fn phandle(&mut self, value: u32) -> Result<(), GuestDtError> {
        Ok(self.fdt.property_phandle(value)?)
    }

    pub(super) fn finish(self) -> Result<Vec<u8>, GuestDtError> {
        Ok(self.fdt.finish()?)
    }
}

/// `name@<base>`, the unit address in lower-case hex without leading zeros
/// (DT spec §2.2.1).
pub(super) fn unit_name(name: &str, base: u64) -> super::alloc::string::String {
    format!("{name}@{base:x}")
}

/// Appends a 64-bit value as two big-endian cells (high first).
pub(super) fn push_u64(cells: &mut Vec<u32>, value: u64) {
    cells.push((value >> 32) as u32);
    cells.push(value as u32);
}

/// Appends a 3-cell GIC specifier `<type number flags>` (type 0 = SPI,
/// 1 = PPI; Linux `interrupt-controller/arm,gic.yaml`).
pub(super) fn push_irq(cells: &mut Vec<u32>, irq: &Irq) {
    let kind = match irq.kind {
        IrqKind::Spi => 0,
        IrqKind::Ppi => 1,
    };
    cells.extend_from_slice(&[kind, irq.num, irq.flags]);
}
