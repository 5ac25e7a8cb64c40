//! The x86_64 side of `cargo xtask`: the q35 boards (plain, with VT-d, with
//! AMD-Vi), the test kernel (`x86-backends/testkernel`), booting it, and its
//! in-QEMU suites.
//!
//! The boards are not in the `boards` crate: that one describes the ARM
//! machines the hypervisor runs on (device trees, partitions); here a board
//! is only a QEMU command line. The suites live here for now; moving them to
//! `bulkhead-tests` (`tests/src/lib.rs`) beside the ARM plan is a later step.
//!
//! Exit status: the kernel ends QEMU through isa-debug-exit, which exits with
//! `(v << 1) | 1` for a write of `v`. The kernel writes `0x10 + code` (its
//! `exit.rs`), so QEMU's 33 is success; [`exit_status`] maps it back to the
//! kernel's code, so success shows as 0 like on ARM.

use anyhow::{bail, Context, Result};
use std::{
    fs,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
    time::Duration,
};

use crate::{qemu, util::run};

/// The test kernel's bare-metal target (listed in `rust-toolchain.toml`).
pub const TARGET: &str = "x86_64-unknown-none";
/// The test kernel's package.
pub const PACKAGE: &str = "x86-testkernel";
/// The QEMU binary the boards run on.
pub const QEMU: &str = "qemu-system-x86_64";
/// Debian's package for [`QEMU`].
pub const QEMU_PACKAGE: &str = "qemu-system-x86";

/// An x86 machine: a QEMU command line.
pub struct Board {
    /// Name for `--board`.
    pub name: &'static str,
    /// What it models, for the help and the log.
    pub about: &'static str,
    /// The IOMMU device, if any (before the other devices: QEMU wants the
    /// vIOMMU created before the PCI devices it translates).
    pub iommu: &'static [&'static str],
}

/// Every x86 board.
pub const BOARDS: &[Board] = &[
    Board { name: "q35", about: "QEMU q35, no IOMMU", iommu: &[] },
    Board { name: "q35-vtd", about: "QEMU q35 with Intel VT-d", iommu: &["-device", "intel-iommu"] },
    Board {
        name: "q35-vtd39",
        about: "q35, VT-d, 3-level tables",
        iommu: &["-device", "intel-iommu,aw-bits=39"],
    },
    Board {
        name: "q35-vtd48",
        about: "q35, VT-d, 4-level tables",
        iommu: &["-device", "intel-iommu,aw-bits=48"],
    },
    Board {
        name: "q35-vtd-cm",
        about: "q35, VT-d, caching mode",
        iommu: &["-device", "intel-iommu,caching-mode=on"],
    },
    // With the default pt=on QEMU's AMD-Vi passes emulated devices through
    // whatever the device table says; pt=off makes it translate them.
    Board { name: "q35-amdvi", about: "QEMU q35 with AMD-Vi", iommu: &["-device", "amd-iommu,pt=off"] },
];

/// The x86 board called `name`.
pub fn board(name: &str) -> Option<&'static Board> {
    BOARDS.iter().find(|b| b.name == name)
}

impl Board {
    /// QEMU arguments beyond those every run gets (`qemu::Run` adds the
    /// serial on stdio, no display, no monitor, `-no-reboot`). TCG: under
    /// nested KVM SeaBIOS boots slower than the whole test run takes.
    pub fn qemu_args(&self) -> Vec<String> {
        let mut args = vec!["-M", "q35", "-cpu", "max", "-m", "512M"];
        args.extend_from_slice(self.iommu);
        args.extend_from_slice(&["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-device", "edu"]);
        args.into_iter().map(str::to_owned).collect()
    }
}

/// The kernel's exit code from QEMU's status: 33 + 2 * code (see the module
/// docs) gives `code`; any other status did not come from the kernel (0:
/// QEMU shut down, which a triple fault does under `-no-reboot`; 1: QEMU
/// refused to start) and becomes `0x80 | status`, never 0.
pub fn exit_status(qemu_status: i32) -> i32 {
    if qemu_status >= 33 && qemu_status % 2 == 1 {
        (qemu_status - 33) / 2
    } else {
        0x80 | qemu_status
    }
}

/// Builds the test kernel (release, defmt at debug level) and copies its
/// ELF, which QEMU boots directly (PVH) and the decoder reads, to
/// `target/images/x86-testkernel.elf`.
pub fn build_kernel(root: &Path) -> Result<PathBuf> {
    run(Command::new("cargo")
        .current_dir(root)
        .args(["build", "--quiet", "--release", "-p", PACKAGE, "--target", TARGET])
        .env("DEFMT_LOG", "debug"))
    .context("building the x86 test kernel")?;
    let out = cargo_target_dir(root).join(TARGET).join("release").join(PACKAGE);
    let dir = root.join("target/images");
    fs::create_dir_all(&dir)?;
    let elf = dir.join(format!("{PACKAGE}.elf"));
    fs::copy(&out, &elf).with_context(|| format!("copying {}", out.display()))?;
    check_pvh_elf(&fs::read(&elf)?).with_context(|| format!("{}", elf.display()))?;
    Ok(elf)
}

/// What QEMU's PVH loader needs: a non-relocatable ELF (nothing applies
/// relocations) with the Xen PHYS32_ENTRY note.
fn check_pvh_elf(bytes: &[u8]) -> Result<()> {
    use object::{Object, ObjectKind, ObjectSection};
    let file = object::File::parse(bytes).context("parsing the kernel ELF")?;
    if file.kind() != ObjectKind::Executable {
        bail!("the kernel is {:?}, not a non-PIE executable: is `--no-pie` in its build.rs?", file.kind());
    }
    let note = file.section_by_name(".note.Xen").context("no .note.Xen section: QEMU cannot PVH-boot it")?;
    let data = note.data()?;
    // namesz 4, descsz 8, type 18 (XEN_ELFNOTE_PHYS32_ENTRY), "Xen\0".
    if data.len() < 24 || data[..16] != [4, 0, 0, 0, 8, 0, 0, 0, 18, 0, 0, 0, b'X', b'e', b'n', 0] {
        bail!("the .note.Xen section is not a PHYS32_ENTRY note");
    }
    Ok(())
}

/// Where cargo puts its output: `CARGO_TARGET_DIR` (relative to `root`) if
/// set, else `root/target`.
fn cargo_target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

fn qemu_run(board: &Board, elf: PathBuf, append: Option<String>, extra: Vec<String>) -> qemu::Run {
    qemu::Run {
        input: qemu::Input::None,
        binary: QEMU.into(),
        board_args: board.qemu_args(),
        image: elf.clone(),
        elf,
        dtb: None,
        append,
        extra,
        timeout: None,
        echo: None,
    }
}

/// `cargo xtask run --board q35|q35-vtd|q35-amdvi [-- QEMU-ARGS]`: boots the
/// test kernel, streams its decoded log, exits with the kernel's status.
pub fn cmd_run(root: &Path, board: &Board, passthrough: Vec<String>) -> Result<ExitCode> {
    let elf = build_kernel(root)?;
    let mut run = qemu_run(board, elf, None, passthrough);
    run.echo = Some(String::new());
    let out = run.execute()?;
    if !out.stderr.trim().is_empty() {
        eprint!("{}", out.stderr);
    }
    if out.malformed > 0 {
        eprintln!("xtask: {} log frames did not decode", out.malformed);
    }
    let status = match out.status {
        Some(s) if exit_status(s) >= 0x80 => {
            eprintln!("xtask: QEMU exited with {s}, not through the kernel's isa-debug-exit");
            exit_status(s)
        }
        Some(s) => exit_status(s),
        None => 1,
    };
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(1)))
}

/// One boot of the test kernel and what it must show.
pub struct Suite {
    /// Unique name, printed in the summary (`--suite` matches a substring).
    pub name: &'static str,
    /// [`BOARDS`] entry.
    pub board: &'static str,
    /// Kernel command line: what ACPI must and must not list, and
    /// `bulkhead.selftest=a,b` to pick cases.
    pub append: &'static str,
    /// Substrings that must each appear in some decoded log line.
    pub expect_lines: &'static [&'static str],
    /// Wall-clock limit; a run still going is killed and fails.
    pub timeout_secs: u64,
}

/// Every x86 suite, in the order `cargo xtask test` runs them (after the
/// ARM ones).
pub fn suites() -> Vec<Suite> {
    vec![
        Suite {
            name: "x86-q35",
            board: "q35",
            append: "bulkhead.acpi-lacks=DMAR,IVRS",
            expect_lines: &["selftest: 5 passed, 0 failed"],
            timeout_secs: 30,
        },
        Suite {
            name: "x86-q35-vtd",
            board: "q35-vtd",
            // The platform cases only: the VT-d driver's run on the boards below.
            append: "bulkhead.acpi-has=DMAR bulkhead.acpi-lacks=IVRS bulkhead.selftest=boot_long_mode,serial_and_defmt,pci_finds_edu,edu_dma_identity,acpi_rsdp_found",
            expect_lines: &["ACPI table DMAR", "selftest: 5 passed, 0 failed"],
            timeout_secs: 30,
        },
        // The VT-d driver (platform cases first: edu_dma_identity runs before
        // translation is on), with 3-level and 4-level second-level tables.
        Suite {
            name: "x86-q35-vtd-aw39",
            board: "q35-vtd39",
            append: "bulkhead.acpi-has=DMAR",
            expect_lines: &["3-level second-level table", "reason 0x05", "reason 0x06", "reason 0x02", "selftest: 16 passed, 0 failed"],
            timeout_secs: 60,
        },
        Suite {
            name: "x86-q35-vtd-aw48",
            board: "q35-vtd48",
            append: "bulkhead.acpi-has=DMAR",
            expect_lines: &["4-level second-level table", "reason 0x05", "reason 0x06", "reason 0x02", "selftest: 16 passed, 0 failed"],
            timeout_secs: 60,
        },
        Suite {
            name: "x86-q35-vtd-cm",
            board: "q35-vtd-cm",
            append: "bulkhead.acpi-has=DMAR",
            expect_lines: &["CM true", "selftest: 16 passed, 0 failed"],
            timeout_secs: 60,
        },
        Suite {
            name: "x86-q35-amdvi",
            board: "q35-amdvi",
            append: "bulkhead.acpi-has=IVRS bulkhead.acpi-lacks=DMAR",
            // The IOMMU is a PCI function of its own (AMD 1022:1419) and
            // takes a slot on bus 0: edu moves down one.
            // The platform cases, then the six amdvi_* cases.
            expect_lines: &["ACPI table IVRS", " 1022:1419", "amdvi: enabled", "selftest: 16 passed, 0 failed"],
            timeout_secs: 30,
        },
    ]
}

/// Runs the suites whose name contains `filter` (all without one). Returns
/// one verdict per reported case and one per suite, as (passed, what).
pub fn run_suites(root: &Path, filter: Option<&str>) -> Result<Vec<(bool, String)>> {
    let selected: Vec<Suite> =
        suites().into_iter().filter(|s| filter.is_none_or(|f| s.name.contains(f))).collect();
    let mut verdicts = Vec::new();
    if selected.is_empty() {
        return Ok(verdicts);
    }
    let elf = build_kernel(root)?;
    for suite in &selected {
        run_suite(suite, &elf, &mut verdicts)?;
    }
    Ok(verdicts)
}

fn run_suite(suite: &Suite, elf: &Path, verdicts: &mut Vec<(bool, String)>) -> Result<()> {
    let Some(board) = board(suite.board) else { bail!("suite {}: no x86 board {}", suite.name, suite.board) };
    println!("== qemu {} ({}: {})", suite.name, board.name, board.about);
    let mut run = qemu_run(board, elf.to_owned(), Some(suite.append.into()), Vec::new());
    run.timeout = Some(Duration::from_secs(suite.timeout_secs));
    run.echo = Some("   | ".into());
    let out = run.execute()?;
    let mut problems = Vec::new();
    match out.status.map(exit_status) {
        None => problems.push(format!("killed after {} s (hung)", suite.timeout_secs)),
        Some(0) => {}
        Some(s) => problems.push(format!("exit status {s} (QEMU {}), expected 0", out.status.unwrap_or(0))),
    }
    for want in suite.expect_lines {
        if !out.lines.iter().any(|l| l.text.contains(want)) {
            problems.push(format!("no log line contains {want:?}"));
        }
    }
    if out.malformed > 0 {
        problems.push(format!("{} log frames did not decode", out.malformed));
    }
    // Each case the kernel reports counts on its own, as on ARM.
    for line in &out.lines {
        if let Some((name, verdict)) = line.message.strip_prefix("case ").and_then(|r| r.split_once(": ")) {
            verdicts.push((verdict.starts_with("pass"), format!("{} / case {name}: {verdict}", suite.name)));
        }
    }
    for l in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
        println!("   ! {l}");
    }
    println!(
        "   {} in {:.2} s",
        if problems.is_empty() { "ok" } else { "FAILED" },
        out.elapsed.as_secs_f64()
    );
    for p in &problems {
        println!("   - {p}");
    }
    verdicts.push((problems.is_empty(), format!("{}: {}", suite.name, problems.join("; "))));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_exit_status_maps_to_the_kernel_code() {
        assert_eq!(exit_status((0x10 << 1) | 1), 0);
        assert_eq!(exit_status((0x11 << 1) | 1), 1);
        assert_eq!(exit_status((0x13 << 1) | 1), 3);
        // Not from the kernel: never success.
        assert_eq!(exit_status(0), 0x80);
        assert_eq!(exit_status(1), 0x81);
    }

    #[test]
    fn boards_have_the_iommu_before_edu() {
        for b in BOARDS {
            let args = b.qemu_args();
            let edu = args.iter().position(|a| a == "edu").expect("edu");
            if let Some(iommu) = args.iter().position(|a| a.contains("iommu")) {
                assert!(iommu < edu, "{}", b.name);
            }
        }
        assert!(suites().iter().all(|s| board(s.board).is_some()));
    }
}
