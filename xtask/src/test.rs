//! `cargo xtask test`: host unit tests of every library crate, then every
//! in-QEMU suite of `bulkhead-tests`, then one summary line.

use anyhow::{Context, Result};
use bulkhead_tests::{Dtb, Suite};
use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    time::Duration,
};

use crate::{build, fixtures, qemu};

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    failures: Vec<String>,
}

impl Tally {
    fn record(&mut self, ok: bool, what: impl Into<String>) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            self.failures.push(what.into());
        }
    }
}

/// What to run: everything unless narrowed (for development).
#[derive(Default)]
pub struct Selection {
    /// Skip the host unit tests.
    pub no_host: bool,
    /// Only in-QEMU suites whose name contains this.
    pub suite: Option<String>,
    /// Skip the Miri run of the crates with unsafe code.
    pub no_miri: bool,
}

/// Runs the selection; the exit code is non-zero if anything failed.
pub fn all(root: &Path, sel: &Selection) -> Result<ExitCode> {
    crate::provision_all(root)?;
    fixtures::generate(root)?;
    let mut tally = Tally::default();
    if !sel.no_host {
        host_tests(root, &mut tally)?;
    }
    qemu_suites(root, sel.suite.as_deref(), &mut tally)?;
    for (ok, what) in crate::x86::run_suites(root, sel.suite.as_deref())? {
        tally.record(ok, what);
    }
    if !sel.no_miri && sel.suite.is_none() {
        println!("== miri ({})", MIRI_CRATES.join(", "));
        let ok = miri(root)?;
        tally.record(ok, format!("miri: the unit tests of {} under Miri", MIRI_CRATES.join(", ")));
    }
    println!();
    for f in &tally.failures {
        println!("FAILED: {f}");
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(if tally.failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `cargo test` over the workspace's host crates, counting libtest's result lines.
fn host_tests(root: &Path, tally: &mut Tally) -> Result<()> {
    println!("== host tests");
    let mut child = Command::new("cargo")
        .current_dir(root)
        .args(["test", "--workspace", "--exclude", "hypervisor", "--no-fail-fast"])
        .stdout(Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let stdout = child.stdout.take().expect("piped");
    let (mut passed, mut failed) = (0, 0);
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            passed += count(rest, " passed");
            failed += count(rest, " failed");
        }
        if line.starts_with("test ") && line.ends_with("FAILED") {
            tally
                .failures
                .push(format!("host {}", line.trim_start_matches("test ").trim_end_matches(" ... FAILED")));
        }
    }
    let status = child.wait()?;
    tally.passed += passed;
    tally.failed += failed;
    if !status.success() && failed == 0 {
        // A build error or a crashed test binary: no result line says so.
        tally.record(false, "host tests: cargo test failed without a failing test (build error?)");
    }
    Ok(())
}

/// The number before `what` in a libtest summary (`ok. 3 passed; 0 failed; ...`).
fn count(summary: &str, what: &str) -> usize {
    summary
        .split(';')
        .find_map(|part| part.trim().strip_suffix(what)?.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

fn qemu_suites(root: &Path, filter: Option<&str>, tally: &mut Tally) -> Result<()> {
    let mut images: BTreeMap<(String, Vec<&str>, Option<&str>), build::Built> = BTreeMap::new();
    for suite in bulkhead_tests::suites().into_iter().filter(|s| filter.is_none_or(|f| s.name.contains(f))) {
        let mut features = vec!["qemu-exit"];
        features.extend_from_slice(suite.features);
        let key = (suite.board.to_owned(), features.clone(), suite.config);
        if !images.contains_key(&key) {
            let config = suite.config.map(|c| root.join(c));
            let built =
                build::hypervisor(root, &build::BuildSpec { board: suite.board.into(), features, config })?;
            images.insert(key.clone(), built);
        }
        let built = &images[&key];
        run_suite(root, &suite, built, tally)?;
    }
    Ok(())
}

fn suite_dtb(root: &Path, suite: &Suite) -> Result<Option<PathBuf>> {
    let (_, board_dtb) = crate::board_run(root, suite.board)?;
    match suite.dtb {
        Dtb::Board => Ok(board_dtb),
        Dtb::Damaged(damage) => {
            let dir = root.join("target/dt-fixtures");
            let src = dir.join(format!("{}-for-damage.dtb", suite.name));
            fixtures::dump(root, suite.board, suite.qemu_args, &src)?;
            let dest = dir.join(format!("{}.dtb", suite.name));
            fixtures::damaged(&src, damage, &dest).map(Some)
        }
    }
}

/// The Linux guest's test pattern (guests/linux/init): 16384 lines of 64
/// bytes, `bulkhead <offset as %08x> <index as %045d>\n`.
fn linux_pattern() -> Vec<u8> {
    (0..16384u32).flat_map(|i| format!("bulkhead {:08x} {:045}\n", i * 64, i).into_bytes()).collect()
}

/// Whether the first MiB of `disk` is the Linux guest's pattern.
fn check_disk_pattern(disk: &Path) -> Result<()> {
    let want = linux_pattern();
    let mut got = vec![0u8; want.len()];
    let mut f = std::fs::File::open(disk)?;
    std::io::Read::read_exact(&mut f, &mut got)?;
    match got.iter().zip(&want).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(at) => anyhow::bail!("the guest's pattern is not on the disk (first difference at byte {at})"),
    }
}

/// The suite's QEMU arguments: its configuration's devices, then its own.
fn suite_qemu_args(root: &Path, suite: &Suite) -> Result<Vec<String>> {
    let mut args = match suite.config {
        Some(c) => build::read_config(&root.join(c))?.qemu,
        None => Vec::new(),
    };
    args.extend(suite.qemu_args.iter().map(|s| s.to_string()));
    Ok(args)
}

fn run_suite(root: &Path, suite: &Suite, built: &build::Built, tally: &mut Tally) -> Result<()> {
    println!("== qemu {} ({})", suite.name, suite.board);
    let (board_args, _) = crate::board_run(root, suite.board)?;
    let run = qemu::Run {
        input: qemu::Input::Script(suite.input.iter().map(|(t, x)| (t.to_string(), x.to_string())).collect()),
        binary: "qemu-system-aarch64".into(),
        board_args,
        image: built.image.clone(),
        elf: built.elf.clone(),
        dtb: suite_dtb(root, suite)?,
        append: suite.append.map(str::to_owned),
        extra: suite_qemu_args(root, suite)?,
        timeout: Some(Duration::from_secs(suite.timeout_secs)),
        echo: Some("   | ".into()),
    };
    let out = run.execute()?;
    let mut problems = Vec::new();
    match out.status {
        None => problems.push(format!("killed after {} s (hung)", suite.timeout_secs)),
        Some(s) if s != suite.expect_status => {
            problems.push(format!("exit status {s}, expected {}", suite.expect_status))
        }
        Some(_) => {}
    }
    for want in suite.expect_lines {
        if !out.lines.iter().any(|l| l.text.contains(want)) {
            problems.push(format!("no log line contains {want:?}"));
        }
    }
    for disk in suite.disk_patterns {
        if let Err(e) = check_disk_pattern(&root.join(disk)) {
            problems.push(format!("{disk}: {e}"));
        }
    }
    let mut from = 0;
    for want in suite.expect_order {
        match out.lines.iter().skip(from).position(|l| l.text.contains(want)) {
            Some(i) => from += i + 1,
            None => problems.push(format!("no log line contains {want:?} after the previous expected one")),
        }
    }
    for bad in suite.forbid_lines {
        if let Some(l) = out.lines.iter().find(|l| l.text.contains(bad)) {
            problems.push(format!("forbidden {bad:?} in: {}", l.text));
        }
    }
    if out.malformed > 0 {
        problems.push(format!("{} log frames did not decode", out.malformed));
    }
    // Each case the image reports counts on its own.
    for line in &out.lines {
        if let Some(rest) = line.message.strip_prefix("case ") {
            if let Some((name, verdict)) = rest.split_once(": ") {
                let ok = verdict.starts_with("pass");
                tally.record(ok, format!("{} / case {name}: {verdict}", suite.name));
            }
        }
    }
    if !out.stderr.trim().is_empty() {
        for l in out.stderr.lines() {
            println!("   ! {l}");
        }
    }
    println!(
        "   {} in {:.2} s",
        if problems.is_empty() { "ok" } else { "FAILED" },
        out.elapsed.as_secs_f64()
    );
    for p in &problems {
        println!("   - {p}");
    }
    tally.record(problems.is_empty(), format!("{}: {}", suite.name, problems.join("; ")));
    Ok(())
}

/// Runs [`MIRI_CRATES`]' unit tests under Miri (nightly), installing the
/// toolchain and component with rustup when missing. Returns whether they passed.
pub fn miri(root: &Path) -> Result<bool> {
    let has_miri = Command::new("cargo")
        .args(["+nightly", "miri", "--version"])
        .current_dir(root)
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_miri {
        eprintln!("xtask: installing nightly with Miri (rustup)");
        crate::util::run(Command::new("rustup").args([
            "toolchain",
            "install",
            "nightly",
            "--profile",
            "minimal",
            "-c",
            "miri,rust-src",
        ]))?;
    }
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root).args(["+nightly", "miri", "test", "--lib"]);
    for c in MIRI_CRATES {
        cmd.args(["-p", c]);
    }
    // Property tests shrink their case counts under cfg(miri) themselves.
    // proptest's failure persistence asks for the working directory, which
    // Miri's isolation refuses; nothing under test reads the host otherwise.
    cmd.env("CARGO_TARGET_DIR", root.join("target/miri")).env("MIRIFLAGS", "-Zmiri-disable-isolation");
    let libs = cmd.status().context("starting cargo miri")?.success();
    // x86-backends: its unsafe code is the VT-d MMIO and DMA seams, which the
    // driver's host tests drive over plain memory (the encoders are safe code
    // and their property tests would take long under Miri). Those tests leak
    // their DMA frames on purpose (a unit may still hold them, as hardware
    // would), and the seams work with addresses as integers.
    let mut x86 = Command::new("cargo");
    x86.current_dir(root)
        .args(["+nightly", "miri", "test", "--lib", "-p", "x86-backends", "--", "vtd::driver"])
        .env("CARGO_TARGET_DIR", root.join("target/miri"))
        .env("MIRIFLAGS", "-Zmiri-disable-isolation -Zmiri-permissive-provenance -Zmiri-ignore-leaks");
    let x86 = x86.status().context("starting cargo miri")?.success();
    Ok(libs && x86)
}

/// Crates whose host tests exercise `unsafe` code, checked under Miri (and
/// x86-backends' VT-d driver tests, see [`miri`]).
const MIRI_CRATES: &[&str] = &["smmu", "iommu-common"];

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn libtest_summary_counts() {
        let s = "ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(count(s, " passed"), 12);
        assert_eq!(count(s, " failed"), 0);
        let f = "FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(count(f, " passed"), 3);
        assert_eq!(count(f, " failed"), 2);
    }
}
