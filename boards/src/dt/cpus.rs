//! `/cpus` (DT spec §3.7, Linux `arm/cpus.yaml`) and `/psci`
//! (`arm/psci.yaml`).

use dtoolkit::fdt::Fdt;
use dtoolkit::Node;
use heapless::Vec;

use super::cells::{self, Cells};
use super::error::DtError;
use super::walk::{find_path, At};
use crate::platform::{Conduit, Cpu, EnableMethod, Psci, PsciVersion, MAX_CPUS};

/// Every `device_type = "cpu"` child of `/cpus`, in tree order.
pub(crate) fn cpus(fdt: Fdt<'_>) -> Result<Vec<Cpu, MAX_CPUS>, DtError> {
    let cpus = find_path(fdt, "/cpus")?.ok_or(DtError::MissingNode { node: "/cpus" })?;
    let at = cpus.at();
    let space = at.address_space()?;
    if !(1..=2).contains(&space.address_cells) {
        return Err(at.bad("#address-cells", "not 1 or 2 (an MPIDR)"));
    }
    if space.size_cells != 0 {
        return Err(at.bad("#size-cells", "not 0"));
    }
    let mut anc = cpus.anc;
    anc.push(cpus.node)?;
    let mut out = Vec::new();
    for node in cpus.node.children() {
        let at = At { anc: &anc, node };
        if at.str("device_type")? != Some("cpu") {
            continue;
        }
        let reg = at.prop("reg").ok_or_else(|| at.bad("reg", "missing"))?;
        // A node may list several threads; the first is this CPU.
        let mpidr = Cells::new(reg)
            .take_u64(space.address_cells)
            .ok_or_else(|| at.bad("reg", "shorter than #address-cells"))?;
        let enable = enable_method(&at)?;
        out.push(Cpu { mpidr, enable }).map_err(|_| DtError::TooMany { list: "CPUs", capacity: MAX_CPUS })?;
    }
    if out.is_empty() {
        return Err(DtError::MissingNode { node: "/cpus/cpu" });
    }
    Ok(out)
}

fn enable_method(at: &At<'_, '_>) -> Result<EnableMethod, DtError> {
    let Some(value) = at.prop("enable-method") else {
        return Ok(EnableMethod::Absent);
    };
    if cells::stringlist_contains(value, "psci") {
        return Ok(EnableMethod::Psci);
    }
    if !cells::stringlist_contains(value, "spin-table") {
        return Ok(EnableMethod::Other);
    }
    let release_addr = match at.prop("cpu-release-addr") {
        None => None,
        // Normally two cells; a few old trees use one.
        Some(v) if v.len() == 8 || v.len() == 4 => Cells::new(v).take_u64((v.len() / 4) as u32),
        Some(_) => return Err(at.bad("cpu-release-addr", "not one or two cells")),
    };
    Ok(EnableMethod::SpinTable { release_addr })
}

/// `/psci`, if present and enabled.
pub(crate) fn psci(fdt: Fdt<'_>) -> Result<Option<Psci>, DtError> {
    let Some(node) = find_path(fdt, "/psci")? else {
        return Ok(None);
    };
    let at = node.at();
    if !at.is_enabled() {
        return Ok(None);
    }
    let version = if at.is_compatible("arm,psci-1.0") {
        PsciVersion::V1_0
    } else if at.is_compatible("arm,psci-0.2") {
        PsciVersion::V0_2
    } else if at.is_compatible("arm,psci") {
        PsciVersion::V0_1
    } else {
        return Err(at.bad("compatible", "not an arm,psci binding"));
    };
    let conduit = match at.str("method")? {
        Some("smc") => Conduit::Smc,
        Some("hvc") => Conduit::Hvc,
        Some(_) => return Err(at.bad("method", "neither \"smc\" nor \"hvc\"")),
        None => return Err(at.bad("method", "missing")),
    };
    Ok(Some(Psci { conduit, version }))
}
