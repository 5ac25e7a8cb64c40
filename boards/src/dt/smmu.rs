//! SMMUv3 nodes (Linux `iommu/arm,smmu-v3.yaml`).

use super::cells;
use super::error::DtError;
use super::irq::{self, GicTarget};
use super::translate;
use super::walk::At;
use crate::platform::{Smmu, SmmuIrqs};

pub(crate) const SMMU_V3: &str = "arm,smmu-v3";

/// Decodes an `arm,smmu-v3` node.
pub(crate) fn parse(at: &At<'_, '_>, gic: &GicTarget) -> Result<Smmu, DtError> {
    let region = translate::reg(at, 0)?.ok_or_else(|| at.bad("reg", "missing"))?;
    let mut irqs = SmmuIrqs::default();
    if let Some(list) = irq::interrupts(at, gic)? {
        match at.prop("interrupt-names") {
            Some(names) => {
                for (i, name) in cells::stringlist(names).enumerate().take(list.count()) {
                    let slot = match name {
                        "eventq" => &mut irqs.eventq,
                        "priq" => &mut irqs.priq,
                        "cmdq-sync" => &mut irqs.cmdq_sync,
                        "gerror" => &mut irqs.gerror,
                        "combined" => &mut irqs.combined,
                        _ => continue,
                    };
                    *slot = list.get(at, i)?;
                }
            }
            // The binding allows one unnamed interrupt: the combined one.
            None if list.count() == 1 => irqs.combined = list.get(at, 0)?,
            None => return Err(at.bad("interrupt-names", "missing with several interrupts")),
        }
    }
    Ok(Smmu {
        base: region.base,
        size: region.size,
        coherent: at.dma_coherent(),
        irqs,
        phandle: at.phandle()?,
    })
}
