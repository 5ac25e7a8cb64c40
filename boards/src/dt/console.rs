//! The console UART: `/chosen/stdout-path` (DT spec §3.6; options after `:`
//! stripped, an alias resolved through `/aliases`, §3.3), else the first
//! enabled PL011 (Linux `arm,pl011.yaml`).

use dtoolkit::fdt::Fdt;

use super::cells;
use super::error::DtError;
use super::irq::{self, GicTarget};
use super::translate;
use super::walk::{find_path, find_phandle, At, Located};
use crate::platform::{Uart, UartKind};

pub(crate) const PL011: &str = "arm,pl011";

/// The node `stdout-path` names, if the tree names one that exists.
pub(crate) fn stdout_node(fdt: Fdt<'_>) -> Result<Option<Located<'_>>, DtError> {
    let Some(chosen) = find_path(fdt, "/chosen")? else {
        return Ok(None);
    };
    let at = chosen.at();
    let (value, property) = match (at.prop("stdout-path"), at.prop("linux,stdout-path")) {
        (Some(v), _) => (v, "stdout-path"),
        (None, Some(v)) => (v, "linux,stdout-path"),
        (None, None) => return Ok(None),
    };
    let full = cells::as_str(value).ok_or_else(|| at.bad(property, "not a NUL-terminated string"))?;
    let name = full.split_once(':').map_or(full, |(path, _options)| path);
    if name.starts_with('/') {
        return find_path(fdt, name);
    }
    let Some(aliases) = find_path(fdt, "/aliases")? else {
        return Ok(None);
    };
    let aliases = aliases.at();
    let Some(value) = aliases.prop(name) else {
        return Ok(None);
    };
    match cells::as_str(value) {
        Some(path) if path.starts_with('/') => find_path(fdt, path),
        _ => Err(aliases.bad("stdout-path", "names an alias whose value is not an absolute path")),
    }
}

/// Whether a node is a usable PL011.
pub(crate) fn is_pl011(at: &At<'_, '_>) -> bool {
    at.is_compatible(PL011) && at.is_enabled()
}

/// Decodes a PL011 node.
pub(crate) fn pl011(fdt: Fdt<'_>, at: &At<'_, '_>, gic: &GicTarget) -> Result<Uart, DtError> {
    let region = translate::reg(at, 0)?.ok_or_else(|| at.bad("reg", "missing"))?;
    Ok(Uart {
        base: region.base,
        size: region.size,
        kind: UartKind::Pl011,
        clock_hz: clock_hz(fdt, at)?,
        irq: irq::first(at, gic)?,
    })
}

/// The reference clock rate: Linux's PL011 driver takes the node's first
/// clock as `uartclk` (the AMBA bus takes `apb_pclk` by name). Known only when
/// that provider is a fixed clock with a `clock-frequency`; a clock from a
/// clock controller (the Pi's `cprman`) gives `None`.
fn clock_hz(fdt: Fdt<'_>, at: &At<'_, '_>) -> Result<Option<u32>, DtError> {
    let Some(clocks) = at.prop("clocks") else {
        return frequency(at);
    };
    let Some(phandle) = cells::Cells::new(clocks).u32() else {
        return Err(at.bad("clocks", "empty"));
    };
    let Some(provider) = find_phandle(fdt, phandle)? else {
        return Ok(None);
    };
    let p = provider.at();
    if p.u32("#clock-cells")?.unwrap_or(0) != 0 {
        return Ok(None);
    }
    frequency(&p)
}

/// A node's `clock-frequency` (one cell, or two that fit 32 bits).
fn frequency(at: &At<'_, '_>) -> Result<Option<u32>, DtError> {
    let Some(v) = at.prop("clock-frequency") else {
        return Ok(None);
    };
    let hz = match v.len() {
        4 | 8 => cells::Cells::new(v).take((v.len() / 4) as u32),
        _ => None,
    };
    hz.and_then(|hz| u32::try_from(hz).ok())
        .map(Some)
        .ok_or_else(|| at.bad("clock-frequency", "not one cell (or two that fit 32 bits)"))
}
