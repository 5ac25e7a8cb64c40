//! The EL2 controls a guest kernel entered at EL1 needs for the CPU features
//! the board exposes (Linux `Documentation/arch/arm64/booting.rst`, "Entering
//! the kernel at EL1 with EL2 present"): nothing the hardware has is left
//! trapping by accident, so an unmodified kernel finds the features its ID
//! registers advertise usable.

use core::arch::asm;

macro_rules! read_sysreg {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading an ID register has no side effects.
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack)) };
        v
    }};
}

fn field(reg: u64, shift: u32) -> u64 {
    (reg >> shift) & 0xf
}

/// What the CPU implements, from its ID registers.
struct Features {
    sve: bool,
    sme: bool,
    sme_fa64: bool,
    sme2: bool,
    hcx: bool,
    fgt: bool,
    tcr2: bool,
    sctlr2: bool,
    mops: bool,
}

fn features() -> Features {
    let pfr0 = read_sysreg!("id_aa64pfr0_el1");
    let pfr1 = read_sysreg!("id_aa64pfr1_el1");
    let mmfr0 = read_sysreg!("id_aa64mmfr0_el1");
    let mmfr1 = read_sysreg!("id_aa64mmfr1_el1");
    // ID_AA64MMFR3_EL1, ID_AA64ISAR2_EL1, ID_AA64SMFR0_EL1 by encoding (the
    // assembler may not know their names); RAZ where not implemented.
    let mmfr3 = read_sysreg!("S3_0_C0_C7_3");
    let isar2 = read_sysreg!("S3_0_C0_C6_2");
    let sme = field(pfr1, 24) != 0;
    let smfr0 = if sme { read_sysreg!("S3_0_C0_C4_5") } else { 0 };
    Features {
        sve: field(pfr0, 32) != 0,
        sme,
        sme_fa64: sme && smfr0 >> 63 != 0,
        sme2: sme && field(smfr0, 56) != 0,
        hcx: field(mmfr1, 40) != 0,
        fgt: field(mmfr0, 56) != 0,
        tcr2: field(mmfr3, 0) != 0,
        sctlr2: field(mmfr3, 4) != 0,
        mops: field(isar2, 16) != 0,
    }
}

/// Fine-grained read/write trap bits of HFGRTR_EL2/HFGWTR_EL2 with negative
/// polarity (nAMAIR2_EL1 .. nGCS_EL0 at [63:52], nACCDATA_EL1 at [50]):
/// zero means "trap", so they are set; for features the CPU lacks they are
/// RES0 and ignored.
const HFGXTR_NEGATIVE: u64 = 0xfff4_0000_0000_0000;

/// Programs this CPU's EL2 trap and feature controls for a guest at EL1:
/// FP/SIMD, SVE and SME untrapped with the longest vector lengths, the
/// performance monitors all given to EL1 (MDCR_EL2.HPMN = PMCR_EL0.N),
/// HCRX_EL2 enabling TCR2/SCTLR2/MOPS where present, fine-grained traps off.
pub fn configure() {
    let f = features();
    // CPTR_EL2 (E2H = 0): RES1 bits [13], [9], [7:0]; TZ [8] and TSM [12]
    // are RES1 when SVE / SME are absent, cleared (no trap) otherwise; TFP
    // [10], TTA [20], TAM [30], TCPAC [31] clear.
    let cptr = 0x22ff | if f.sve { 0 } else { 1 << 8 } | if f.sme { 0 } else { 1 << 12 };
    let pmcr = read_sysreg!("pmcr_el0");
    let mdcr = (pmcr >> 11) & 0x1f;
    // SAFETY: EL2 controls of this CPU, written before the guest runs; none
    // maps or changes memory.
    unsafe {
        asm!("msr cptr_el2, {}", "msr mdcr_el2, {}", "isb", in(reg) cptr as u64, in(reg) mdcr, options(nomem, nostack));
        if f.sve {
            // ZCR_EL2.LEN = all ones: the hardware clamps to its maximum.
            asm!("msr S3_4_C1_C2_0, {}", in(reg) 0x1ffu64, options(nomem, nostack));
        }
        if f.sme {
            let smcr = 0x1ffu64 | if f.sme_fa64 { 1 << 31 } else { 0 } | if f.sme2 { 1 << 30 } else { 0 };
            asm!("msr S3_4_C1_C2_6, {}", in(reg) smcr, options(nomem, nostack));
        }
        if f.hcx {
            // HCRX_EL2: TCR2En [14], SCTLR2En [15], MSCEn [11]; SMPME [5] = 0.
            let hcrx: u64 = if f.tcr2 { 1 << 14 } else { 0 }
                | if f.sctlr2 { 1 << 15 } else { 0 }
                | if f.mops { 1 << 11 } else { 0 };
            asm!("msr S3_4_C1_C2_2, {}", in(reg) hcrx, options(nomem, nostack));
        }
        if f.fgt {
            asm!(
                "msr S3_4_C1_C1_4, {n}", // HFGRTR_EL2
                "msr S3_4_C1_C1_5, {n}", // HFGWTR_EL2
                "msr S3_4_C1_C1_6, xzr", // HFGITR_EL2
                "msr S3_4_C3_C1_4, xzr", // HDFGRTR_EL2
                "msr S3_4_C3_C1_5, xzr", // HDFGWTR_EL2
                n = in(reg) HFGXTR_NEGATIVE,
                options(nomem, nostack)
            );
        }
        asm!("isb", options(nomem, nostack));
    }
}
