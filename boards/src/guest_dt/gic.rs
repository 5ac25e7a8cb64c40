//! The guest's interrupt controller (Linux `interrupt-controller/arm,gic-v3.yaml`,
//! `arm,gic.yaml`): distributor and redistributor (v3) or CPU interface (v2),
//! without ITS or GICv2m frames.

use super::check::{self, AddressMap};
use super::error::GuestDtError;
use super::spec::GuestGic;
use super::writer::{Writer, ROOT_CELLS};
use super::GIC_PHANDLE;

/// vCPUs a GICv3 guest may have: Aff0 0..=15, the 16 bits of an
/// `ICC_SGI1R_EL1` target list (GICv3 spec §12.2.23) with Aff1..3 zero.
pub const GICV3_MAX_CPUS: u32 = 16;
/// vCPUs a GICv2 guest may have: the 8 bits of `GICD_ITARGETSR`.
pub const GICV2_MAX_CPUS: u32 = 8;
/// One redistributor's frames: RD_base and SGI_base, 64 KiB each (GICv3 spec
/// §12.10).
const GICR_STRIDE: u64 = 0x2_0000;

/// `#address-cells` written on the GIC node: the width of the parent unit
/// address in an `interrupt-map` that targets it.
pub(super) const fn address_cells(gic: &GuestGic) -> u32 {
    match gic {
        GuestGic::V3 { .. } => ROOT_CELLS,
        GuestGic::V2 { .. } => 0,
    }
}

/// Checks the regions and that the GIC can target `cpus` vCPUs.
pub(super) fn check(gic: &GuestGic, cpus: u32, map: &mut AddressMap) -> Result<(), GuestDtError> {
    let (max, regions) = match gic {
        GuestGic::V3 { dist, redist } => (GICV3_MAX_CPUS, [("GICD", dist), ("GICR", redist)]),
        GuestGic::V2 { dist, cpu } => (GICV2_MAX_CPUS, [("GICD", dist), ("GICC", cpu)]),
    };
    if !(1..=max).contains(&cpus) {
        return Err(GuestDtError::CpuCount { cpus, max });
    }
    for (what, r) in regions {
        check::region(what, r)?;
        map.add(what, *r);
    }
    if let GuestGic::V3 { redist, .. } = gic {
        let needed = u64::from(cpus) * GICR_STRIDE;
        if redist.size < needed {
            return Err(GuestDtError::RedistTooSmall { size: redist.size, needed });
        }
    }
    Ok(())
}

pub(super) fn write(w: &mut Writer, gic: &GuestGic) -> Result<(), GuestDtError> {
    let (compatible, regs, dist) = match gic {
        GuestGic::V3 { dist, redist } => ("arm,gic-v3", [*dist, *redist], dist.base),
        GuestGic::V2 { dist, cpu } => ("arm,cortex-a15-gic", [*dist, *cpu], dist.base),
    };
    w.node_at("intc", dist, |w| {
        w.string("compatible", compatible)?;
        w.empty("interrupt-controller")?;
        w.u32("#interrupt-cells", 3)?;
        w.u32("#address-cells", address_cells(gic))?;
        if let GuestGic::V3 { .. } = gic {
            w.u32("#size-cells", ROOT_CELLS)?;
            w.empty("ranges")?;
            w.u32("#redistributor-regions", 1)?;
        }
        w.reg(&regs)?;
        w.phandle(GIC_PHANDLE)
    })
}
