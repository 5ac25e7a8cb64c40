//! A partition's own device tree: a [`GuestDt`] spec in, a DTB out, written
//! with rust-vmm's `vm-fdt`. The guest sees only its memory, its vCPUs, a
//! GIC, the timer, its console and a PCIe host bridge with its assigned
//! devices: never the SMMU, the ITS or anything of another partition.
//!
//! The spec is checked whole before anything is written ([`GuestDtError`] on
//! any inconsistency, never a panic): regions non-empty and not wrapping,
//! the guest's address map without overlaps, reserved regions and the
//! initrd inside RAM, interrupts of the right kind and range, the vCPU count
//! within what the GIC can target.
//!
//! Output is deterministic: the same spec gives the same bytes. Nodes, in
//! order: `/psci`, `/memory@*`, `/reserved-memory`, `/cpus`, `/intc@*`,
//! `/timer`, `/apb-pclk`, `/pl011@*`, `/pcie@*`, `/chosen`, `/aliases`.
//! Phandles are fixed: [`GIC_PHANDLE`], [`UART_CLOCK_PHANDLE`].
//!
//! Needs `alloc` (feature `guest-dt`): the hypervisor builds a guest's tree
//! once, when it creates the partition.

// The crate is `no_std`; this module (feature `guest-dt`) needs a heap.
extern crate alloc;

mod check;
mod chosen;
mod console;
mod cpus;
mod error;
mod gic;
mod memory;
mod pci;
mod spec;
mod timer;
mod writer;

#[cfg(test)]
mod tests;

use alloc::vec::Vec;

pub use self::error::GuestDtError;
pub use self::gic::{GICV2_MAX_CPUS, GICV3_MAX_CPUS};
pub use self::spec::{
    arch_timer, ppi, spi, Chosen, GuestDt, GuestGic, Intx, IntxEntry, Pcie, Pl011, Reserved, IRQ_EDGE_RISING,
    IRQ_LEVEL_HIGH,
};
use self::writer::{Writer, ROOT_CELLS};

/// The GIC's phandle: the root's `interrupt-parent` and every
/// `interrupt-map` entry's parent.
pub const GIC_PHANDLE: u32 = 1;
/// The PL011's fixed clock (present only with a console).
pub const UART_CLOCK_PHANDLE: u32 = 2;

/// Checks `spec` and writes the guest's device tree blob.
pub fn generate(spec: &GuestDt<'_>) -> Result<Vec<u8>, GuestDtError> {
    validate(spec)?;

    let mut w = Writer::new()?;
    let mut stdout = None;
    w.node("", |w| {
        w.string("model", spec.model)?;
        w.strings("compatible", spec.compatible)?;
        w.u32("#address-cells", ROOT_CELLS)?;
        w.u32("#size-cells", ROOT_CELLS)?;
        w.u32("interrupt-parent", GIC_PHANDLE)?;
        cpus::write_psci(w)?;
        memory::write(w, spec.memory)?;
        memory::write_reserved(w, spec.reserved)?;
        cpus::write(w, spec.cpus)?;
        gic::write(w, &spec.gic)?;
        timer::write(w, &spec.timer)?;
        if let Some(uart) = &spec.uart {
            stdout = Some(console::write(w, uart)?);
        }
        if let Some(pcie) = &spec.pcie {
            pci::write(w, pcie, &spec.gic)?;
        }
        chosen::write(w, &spec.chosen, stdout.as_deref(), spec.pcie.is_some())
    })?;
    w.finish()
}

/// Every check, before any byte is written.
fn validate(spec: &GuestDt<'_>) -> Result<(), GuestDtError> {
    check::text("model", spec.model)?;
    if spec.compatible.is_empty() {
        return Err(GuestDtError::BadString { what: "compatible", reason: "empty list" });
    }
    for c in spec.compatible {
        check::text("compatible", c)?;
    }
    let mut map = check::AddressMap::default();
    memory::check(spec, &mut map)?;
    gic::check(&spec.gic, spec.cpus, &mut map)?;
    timer::check(&spec.timer)?;
    if let Some(uart) = &spec.uart {
        console::check(uart, &mut map)?;
    }
    if let Some(pcie) = &spec.pcie {
        pci::check(pcie, &mut map)?;
    }
    chosen::check(&spec.chosen)?;
    map.check()
}
