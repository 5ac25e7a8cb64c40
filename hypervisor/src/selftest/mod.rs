//! In-QEMU self-test cases (feature `selftest`). Each case is named, prints
//! `case NAME: pass` or `case NAME: FAIL (why)`, and the run ends with
//! `selftest: N passed, M failed` and a matching exit status. The kernel
//! command line can pick cases: `bulkhead.selftest=name,name`.
//!
//! The plan of which image runs where lives in the `bulkhead-tests` crate.

mod cases;
mod conformance;
mod smmu;

use crate::dtb::Dt;
use crate::exit::{self, ExitCode};

/// A case: a name and a body that says why it failed.
pub struct Case {
    /// Printed name, used on the command line.
    pub name: &'static str,
    /// Whether the case runs by default (fatal cases run only when named).
    pub default: bool,
    /// Whether the case applies to this machine (a PCI case needs PCIe);
    /// one that does not apply is neither run nor counted.
    pub applies: fn(&Dt) -> bool,
    /// The body.
    pub run: fn(&Dt) -> Result<(), &'static str>,
}

/// Runs the selected cases and ends the run with their verdict.
pub fn run(dt: &Dt) -> ! {
    let selection = dt
        .platform
        .bootargs
        .and_then(|args| args.split_whitespace().find_map(|w| w.strip_prefix("bulkhead.selftest=")));
    let selected = |c: &Case| match selection {
        Some(list) => list.split(',').any(|n| n == c.name),
        None => c.default,
    };
    let (mut passed, mut failed) = (0u32, 0u32);
    for name in selection.into_iter().flat_map(|l| l.split(',')) {
        if !all().any(|c| c.name == name) {
            failed += 1;
            defmt::error!("case {=str}: FAIL (no such case)", name);
        }
    }
    for case in all().filter(|c| selected(c) && (c.applies)(dt)) {
        match (case.run)(dt) {
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

fn all() -> impl Iterator<Item = &'static Case> {
    cases::ALL.iter().chain(smmu::CASES.iter()).chain(conformance::CASES.iter())
}
