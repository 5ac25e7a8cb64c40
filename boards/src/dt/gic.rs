//! The interrupt controller (Linux `arm,gic-v3.yaml`, `arm,gic.yaml`): the
//! node the root's `interrupt-parent` names if it is a supported GIC, else the
//! first enabled one in the tree.

use dtoolkit::fdt::Fdt;
use dtoolkit::Node;
use heapless::Vec;

use super::error::DtError;
use super::irq::{self, GicTarget};
use super::translate;
use super::walk::{self, walk, At, Flow, Located};
use crate::platform::{Gic, GicV2, GicV3, Region, MAX_REDISTS};

const GICV3: &str = "arm,gic-v3";
const GICV2: [&str; 2] = ["arm,gic-400", "arm,cortex-a15-gic"];
const ITS: &str = "arm,gic-v3-its";

fn is_gic(at: &At<'_, '_>) -> bool {
    at.has("interrupt-controller") && (at.is_compatible(GICV3) || GICV2.iter().any(|c| at.is_compatible(c)))
}

/// Finds and decodes the GIC.
pub(crate) fn find(fdt: Fdt<'_>) -> Result<(Gic, GicTarget), DtError> {
    let root_parent = walk::prop(fdt.root(), "interrupt-parent").and_then(super::cells::as_u32);
    let mut first: Option<Located<'_>> = None;
    let mut chosen: Option<Located<'_>> = None;
    walk(fdt, |anc, node| {
        let at = At { anc, node };
        if !is_gic(&at) || !at.is_enabled() {
            return Ok(Flow::Descend);
        }
        let here = Located { anc: *anc, node };
        if root_parent.is_some() && at.phandle()? == root_parent {
            chosen = Some(here);
            return Ok(Flow::Stop);
        }
        if first.is_none() {
            first = Some(here);
        }
        // A GIC's children are ITS / v2m frames, never another GIC.
        Ok(Flow::Skip)
    })?;
    let gic = chosen
        .or(first)
        .ok_or(DtError::MissingNode { node: "interrupt controller (arm,gic-v3 or arm,gic-400)" })?;
    parse(&gic)
}

fn parse(gic: &Located<'_>) -> Result<(Gic, GicTarget), DtError> {
    let at = gic.at();
    let interrupt_cells = match at.u32("#interrupt-cells")? {
        Some(n @ 3..=4) => n,
        Some(_) => return Err(at.bad("#interrupt-cells", "not 3 or 4")),
        None => return Err(at.bad("#interrupt-cells", "missing")),
    };
    let address_cells = match at.u32("#address-cells")? {
        Some(n @ 0..=4) => n,
        Some(_) => return Err(at.bad("#address-cells", "more than 4 cells")),
        None => 0,
    };
    let target = GicTarget { phandle: at.phandle()?, interrupt_cells, address_cells };
    let maintenance_irq = irq::first(&at, &target)?;
    let required = |i: usize, what: &'static str| -> Result<Region, DtError> {
        translate::reg(&at, i)?.ok_or_else(|| at.bad("reg", what))
    };
    let dist = required(0, "missing the distributor (GICD)")?;

    if at.is_compatible(GICV3) {
        let n = match at.u32("#redistributor-regions")? {
            None => 1,
            Some(n) => n as usize,
        };
        if n == 0 {
            return Err(at.bad("#redistributor-regions", "zero"));
        }
        if n > MAX_REDISTS {
            return Err(DtError::TooMany { list: "GICv3 redistributor regions", capacity: MAX_REDISTS });
        }
        let mut redists = Vec::new();
        for i in 0..n {
            let r = required(1 + i, "fewer entries than 1 + #redistributor-regions")?;
            // Capacity checked above.
            let _ = redists.push(r);
        }
        let its = find_its(gic)?;
        Ok((Gic::V3(GicV3 { dist, redists, its, maintenance_irq }), target))
    } else {
        let cpu = required(1, "missing the CPU interface (GICC)")?;
        Ok((
            Gic::V2(GicV2 {
                dist,
                cpu,
                hyp: translate::reg(&at, 2)?,
                vcpu: translate::reg(&at, 3)?,
                maintenance_irq,
            }),
            target,
        ))
    }
}

/// The first enabled ITS child of a GICv3.
fn find_its(gic: &Located<'_>) -> Result<Option<Region>, DtError> {
    let mut anc = gic.anc;
    anc.push(gic.node)?;
    for node in gic.node.children() {
        let at = At { anc: &anc, node };
        if at.is_compatible(ITS) && at.is_enabled() {
            return translate::reg(&at, 0);
        }
    }
    Ok(None)
}
