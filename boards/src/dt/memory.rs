//! RAM (`/memory*`, DT spec §3.4) and what is carved out of it
//! (`/memreserve/`, §5.3, and `/reserved-memory`, §3.5).

use dtoolkit::fdt::Fdt;
use dtoolkit::Node;
use heapless::Vec;

use super::cells::{self, Cells};
use super::error::DtError;
use super::translate;
use super::walk::{find_path, Ancestry, At};
use crate::platform::{MemRegion, ReservedRegion, ReservedSource, MAX_MEMORY, MAX_RESERVED};

/// Most `reg` entries read from one node.
const MAX_REG_ENTRIES: usize = 64;

/// Every region of every enabled root child with `device_type = "memory"`.
pub(crate) fn memory(fdt: Fdt<'_>) -> Result<Vec<MemRegion, MAX_MEMORY>, DtError> {
    let root = fdt.root();
    let mut anc = Ancestry::new();
    anc.push(root)?;
    let mut out = Vec::new();
    for node in root.children() {
        let at = At { anc: &anc, node };
        let is_memory = at.prop("device_type").is_some_and(|v| cells::as_str(v) == Some("memory"));
        if !is_memory || !at.is_enabled() {
            continue;
        }
        for_each_reg(&at, |region| {
            out.push(region).map_err(|_| DtError::TooMany { list: "memory regions", capacity: MAX_MEMORY })
        })?;
    }
    if out.is_empty() {
        return Err(DtError::MissingNode { node: "/memory" });
    }
    Ok(out)
}

/// `/memreserve/` entries, then enabled `/reserved-memory` children with `reg`.
pub(crate) fn reserved(fdt: Fdt<'_>) -> Result<Vec<ReservedRegion, MAX_RESERVED>, DtError> {
    let mut out = Vec::new();
    let full = || DtError::TooMany { list: "reserved regions", capacity: MAX_RESERVED };
    // Validation has checked the block is terminated before the structure
    // block, so this iteration is bounded by the blob.
    for r in fdt.memory_reservations() {
        if r.size() == 0 {
            continue;
        }
        if r.address().checked_add(r.size()).is_none() {
            return Err(DtError::Structure { kind: "memory reservation wraps the 64-bit space", offset: 0 });
        }
        out.push(ReservedRegion {
            base: r.address(),
            size: r.size(),
            no_map: false,
            source: ReservedSource::MemReserve,
        })
        .map_err(|_| full())?;
    }
    if let Some(rm) = find_path(fdt, "/reserved-memory")? {
        let mut anc = rm.anc;
        anc.push(rm.node)?;
        for node in rm.node.children() {
            let at = At { anc: &anc, node };
            if !at.is_enabled() || !at.has("reg") {
                continue;
            }
            let no_map = at.has("no-map");
            for_each_reg(&at, |r| {
                out.push(ReservedRegion { base: r.base, size: r.size, no_map, source: ReservedSource::Node })
                    .map_err(|_| full())
            })?;
        }
    }
    Ok(out)
}

/// Calls `f` with every non-empty `reg` entry of `at`, translated.
fn for_each_reg(at: &At<'_, '_>, mut f: impl FnMut(MemRegion) -> Result<(), DtError>) -> Result<(), DtError> {
    let Some(value) = at.prop("reg") else {
        return Ok(());
    };
    let space = at.reg_space()?;
    let entry = (space.address_cells + space.size_cells) as usize * 4;
    if entry == 0 || value.len() % entry != 0 {
        return Err(at.bad("reg", "length is not a multiple of (#address-cells + #size-cells)"));
    }
    if value.len() / entry > MAX_REG_ENTRIES {
        return Err(at.bad("reg", "more than 64 entries"));
    }
    let mut c = Cells::new(value);
    while !c.is_empty() {
        let (Some(addr), Some(size)) = (c.take(space.address_cells), c.take(space.size_cells)) else {
            return Err(at.bad("reg", "truncated entry"));
        };
        if size == 0 {
            continue;
        }
        f(translate::reg_to_cpu(at, addr, size)?)?;
    }
    Ok(())
}
