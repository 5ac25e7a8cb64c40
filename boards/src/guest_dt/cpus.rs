//! `/cpus` (DT spec §3.7, Linux `arm/cpus.yaml`) and `/psci`
//! (`arm/psci.yaml`): vCPUs are Aff0 `0..n`, started with PSCI over `hvc`,
//! which the hypervisor implements.

use super::error::GuestDtError;
use super::writer::Writer;

/// What each vCPU claims to be: the generic Armv8 binding, so the guest
/// assumes no particular core's errata or PMU.
const CPU_COMPATIBLE: &str = "arm,armv8";
/// PSCI 1.0 and its 0.2 fallback: standard function IDs, no per-call
/// properties.
const PSCI_COMPATIBLE: [&str; 2] = ["arm,psci-1.0", "arm,psci-0.2"];

pub(super) fn write(w: &mut Writer, cpus: u32) -> Result<(), GuestDtError> {
    w.node("cpus", |w| {
        // MPIDR Aff0 fits one cell.
        w.u32("#address-cells", 1)?;
        w.u32("#size-cells", 0)?;
        for mpidr in 0..cpus {
            w.node_at("cpu", u64::from(mpidr), |w| {
                w.string("device_type", "cpu")?;
                w.string("compatible", CPU_COMPATIBLE)?;
                w.u32("reg", mpidr)?;
                w.string("enable-method", "psci")
            })?;
        }
        Ok(())
    })
}

pub(super) fn write_psci(w: &mut Writer) -> Result<(), GuestDtError> {
    w.node("psci", |w| {
        w.strings("compatible", &PSCI_COMPATIBLE)?;
        w.string("method", "hvc")
    })
}
