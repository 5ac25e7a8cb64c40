//! In-QEMU test cases, framed like the ARM hypervisor's
//! (`hypervisor/src/selftest/mod.rs`): each case is named and prints
//! `case NAME: pass` or `case NAME: FAIL (why)`, and the run ends with
//! `selftest: N passed, M failed` and a matching exit status. The command
//! line can pick cases: `bulkhead.selftest=name,name`.
//!
//! The plan of which machine runs them is `cargo xtask`'s (`xtask/src/x86.rs`).

mod amdvi;
mod cases;
mod conformance;
mod vtd;

/// Every case table, in run order: the platform cases first (so that
/// `edu_dma_identity` runs before an IOMMU translates), then each driver's,
/// then the conformance suite on whichever IOMMU the machine has.
static TABLES: &[&[Case]] = &[cases::ALL, vtd::ALL, amdvi::ALL, conformance::ALL];

fn all_cases() -> impl Iterator<Item = &'static Case> {
    TABLES.iter().flat_map(|t| t.iter())
}

use crate::bootinfo::BootInfo;
use crate::exit::{self, ExitCode};

/// A case: a name and a body that says why it failed.
pub struct Case {
    /// Printed name, used on the command line.
    pub name: &'static str,
    /// Whether the case runs by default (fatal cases run only when named).
    pub default: bool,
    /// Whether the case applies to this machine; one that does not is
    /// neither run nor counted.
    pub applies: fn(&BootInfo) -> bool,
    /// The body.
    pub run: fn(&BootInfo) -> Result<(), &'static str>,
}

/// Runs the selected cases and ends the run with their verdict.
pub fn run(boot: &BootInfo) -> ! {
    let selection = boot.arg("bulkhead.selftest");
    let selected = |c: &Case| match selection {
        Some(list) => list.split(',').any(|n| n == c.name),
        None => c.default,
    };
    let (mut passed, mut failed) = (0u32, 0u32);
    for name in selection.into_iter().flat_map(|l| l.split(',')) {
        if !all_cases().any(|c| c.name == name) {
            failed += 1;
            defmt::error!("case {=str}: FAIL (no such case)", name);
        }
    }
    for case in all_cases().filter(|c| selected(c) && (c.applies)(boot)) {
        match (case.run)(boot) {
            Ok(()) => {
                passed += 1;
                defmt::info!("case {=str}: pass", case.name);
            }
            Err(why) => {
                failed += 1;
                defmt::error!("case {=str}: FAIL ({=str})", case.name, why);
            }
        }
    }
    defmt::info!("selftest: {=u32} passed, {=u32} failed", passed, failed);
    if failed == 0 && passed > 0 {
        exit::success()
    } else {
        exit::fail(ExitCode::TestsFailed)
    }
}
