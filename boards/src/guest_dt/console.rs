//! The PL011 console (Linux `serial/arm,pl011.yaml`) and the fixed clock it
//! names. Linux's AMBA bus takes the clock named `apb_pclk` to read the
//! PrimeCell ID registers, and the PL011 driver takes `uartclk` for the baud
//! divisor; both are the one `fixed-clock` here.

use super::alloc::string::String;
use super::alloc::vec::Vec;

use super::check::{self, AddressMap};
use super::error::GuestDtError;
use super::spec::Pl011;
use super::writer::{push_irq, unit_name, Writer};
use super::UART_CLOCK_PHANDLE;
use crate::platform::IrqKind;

pub(super) fn check(uart: &Pl011, map: &mut AddressMap) -> Result<(), GuestDtError> {
    check::region("PL011", &uart.regs)?;
    map.add("PL011", uart.regs);
    check::irq("PL011", &uart.irq, IrqKind::Spi)?;
    if uart.clock_hz == 0 {
        return Err(GuestDtError::ZeroClock { what: "PL011" });
    }
    Ok(())
}

/// Writes the clock and the UART; returns the UART's path for
/// `stdout-path`.
pub(super) fn write(w: &mut Writer, uart: &Pl011) -> Result<String, GuestDtError> {
    w.node("apb-pclk", |w| {
        w.string("compatible", "fixed-clock")?;
        w.u32("#clock-cells", 0)?;
        w.u32("clock-frequency", uart.clock_hz)?;
        w.string("clock-output-names", "apb_pclk")?;
        w.phandle(UART_CLOCK_PHANDLE)
    })?;
    let name = unit_name("pl011", uart.regs.base);
    let mut interrupts = Vec::with_capacity(3);
    push_irq(&mut interrupts, &uart.irq);
    w.node(&name, |w| {
        w.strings("compatible", &["arm,pl011", "arm,primecell"])?;
        w.reg(core::slice::from_ref(&uart.regs))?;
        w.cells("interrupts", &interrupts)?;
        w.cells("clocks", &[UART_CLOCK_PHANDLE, UART_CLOCK_PHANDLE])?;
        w.strings("clock-names", &["uartclk", "apb_pclk"])
    })?;
    let mut path = String::from("/");
    path.push_str(&name);
    Ok(path)
}
