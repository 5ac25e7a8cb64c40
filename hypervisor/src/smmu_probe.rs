//! Reads an SMMUv3's identification registers for the boot report.

use boards::platform::Smmu;

/// Logs the SMMU's base and the ID registers that say what it can do.
pub fn report(s: &Smmu) {
    let idr = |off: usize| -> u32 {
        // SAFETY: the SMMU's register page comes from the DT and is identity
        // mapped as device memory; IDR registers are read-only.
        unsafe { core::ptr::read_volatile((s.base as usize + off) as *const u32) }
    };
    defmt::info!(
        "SMMUv3 at {=u64:#x}: IDR0 {=u32:#x} IDR1 {=u32:#x} IDR3 {=u32:#x} IDR5 {=u32:#x} AIDR {=u32:#x}",
        s.base,
        idr(0x0),
        idr(0x4),
        idr(0xc),
        idr(0x14),
        idr(0x1c)
    );
}
