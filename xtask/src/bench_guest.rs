//! `cargo xtask bench-guest`: the same Linux guest (kernel, initramfs,
//! bootargs, QEMU devices) booted in a Bulkhead partition and directly on
//! QEMU `virt`, running the same O_DIRECT NVMe workload (`bulkhead.bench` in
//! guests/linux/init), compared as medians over several runs.
//!
//! The two sides, on the same QEMU (TCG):
//! - partition: the hypervisor built with `examples/linux-bench.toml`, on the
//!   board's machine (`virt,virtualization=on,gic-version=3,iommu=smmuv3`,
//!   4 CPUs, 1 GiB); Linux gets 2 vCPUs on dedicated physical CPUs and
//!   128 MiB, its devices behind the SMMU;
//! - direct: `virt,gic-version=3` (no EL2, no SMMU) with `-smp` and `-m` set
//!   to the partition's CPUs and RAM, and `pci=nomsi`: a partition has no
//!   MSI controller (no virtual ITS), so its devices interrupt by INTx, and
//!   direct boot is made to do the same (with MSI-X through the ITS, direct
//!   boot's NVMe is about 35x faster: that gap is the missing virtual ITS).
//!
//! Runs alternate between the two sides so that load from elsewhere on the
//! host spreads over both.

use anyhow::{bail, Context, Result};
use std::{
    fmt::Write as _,
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use crate::{
    build,
    decode::LogDecoder,
    linux::{self, Direct},
    qemu,
};

/// The partition configuration the benchmark boots.
const CONFIG: &str = "examples/linux-bench.toml";
/// How long one boot may take, start to QEMU's exit.
const TIMEOUT: Duration = Duration::from_secs(180);
/// The disks are made afresh, zeroed, before every boot.
const DISK_BYTES: u64 = 16 << 20;
/// The goal: the partition within 10 % of direct boot.
const GOAL: f64 = 0.10;

const USAGE: &str = "usage: cargo xtask bench-guest [--runs N] [--verbose]";

/// `cargo xtask bench-guest [--runs N] [--verbose]`.
pub fn cmd(root: &Path, args: &[String]) -> Result<ExitCode> {
    let opts = parse_args(args)?;
    crate::provision::rust_targets(root)?;
    crate::provision::qemu("aarch64", "qemu-system-arm")?;

    let config_path = root.join(CONFIG);
    let config = build::read_config(&config_path)?;
    let [part] = config.partitions.as_slice() else {
        bail!("{CONFIG}: the benchmark needs exactly one partition, found {}", config.partitions.len());
    };
    let bootargs = part.bootargs.clone().context("the benchmark partition has no bootargs")?;
    if !bootargs.split_whitespace().any(|a| a == "bulkhead.bench") {
        bail!("{CONFIG}: the partition's bootargs lack `bulkhead.bench`");
    }
    let ram: u64 = part.memory.iter().map(|m| m.size).sum();
    // pci=nomsi: the partition has no MSI controller (no virtual ITS), so
    // its NVMe completions arrive by INTx; direct boot is made to use INTx
    // too, so the two sides differ only by the hypervisor.
    let direct = Direct {
        smp: part.cpus.len(),
        memory: format!("{}M", ram >> 20),
        bootargs: format!("{bootargs} pci=nomsi"),
        devices: config.qemu.clone(),
    };
    let disks = drive_files(&config.qemu).into_iter().map(|f| root.join(f)).collect::<Vec<_>>();

    let guest = linux::guest(root)?;
    let built = build::hypervisor(
        root,
        &build::BuildSpec {
            board: "qemu-virt".into(),
            features: vec!["qemu-exit"],
            config: Some(config_path),
        },
    )?;
    let (board_args, _) = crate::board_run(root, "qemu-virt")?;
    let hv = qemu::Run {
        binary: "qemu-system-aarch64".into(),
        board_args,
        image: built.image,
        elf: built.elf.clone(),
        dtb: None,
        append: None,
        extra: config.qemu.clone(),
        timeout: None,
        echo: None,
        input: qemu::Input::None,
    };

    let mut partition = Vec::new();
    let mut direct_runs = Vec::new();
    for i in 1..=opts.runs {
        for side in [Side::Partition, Side::Direct] {
            reset_disks(&disks)?;
            let mut cmd = match side {
                Side::Partition => hv.command(),
                Side::Direct => linux::direct_command(&guest, &direct),
            };
            cmd.current_dir(root);
            eprintln!("xtask: {} run {i}/{}: {cmd:?}", side.name(), opts.runs);
            let mut decode = match side {
                Side::Partition => Decode::Defmt(LogDecoder::new(&built.elf)?),
                Side::Direct => Decode::Text(Vec::new()),
            };
            let figures =
                boot(cmd, &mut decode, opts.verbose).with_context(|| format!("{} run {i}", side.name()))?;
            eprintln!("xtask: {} run {i}: {}", side.name(), figures.summary());
            match side {
                Side::Partition => partition.push(figures),
                Side::Direct => direct_runs.push(figures),
            }
        }
    }

    let qemu_version = Command::new("qemu-system-aarch64")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_owned))
        .unwrap_or_default();
    println!(
        "\nGuest benchmark, {} runs per side, medians ({qemu_version}, TCG, {} host CPUs)",
        opts.runs,
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "partition: {CONFIG} on the board's virt (EL2, SMMUv3), -smp 4 -m 1G, Linux on 2 dedicated CPUs"
    );
    println!(
        "direct:    -M virt,gic-version=3 -smp {} -m {}, pci=nomsi (no hypervisor, no SMMU; INTx like the partition)\n",
        direct.smp, direct.memory
    );
    let table = Table::new(&partition, &direct_runs);
    print!("{}", table.render());
    println!("\n{}", table.verdict());
    Ok(ExitCode::SUCCESS)
}

/// Options of `bench-guest`.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    runs: usize,
    verbose: bool,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut opts = Options { runs: 3, verbose: false };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => {
                let n = it.next().context("--runs needs a number")?;
                opts.runs = n.parse().ok().filter(|&n| n > 0).with_context(|| {
                    format!("--runs {n}: a positive number of runs per side is needed\n{USAGE}")
                })?;
            }
            "--verbose" => opts.verbose = true,
            other => bail!("unknown option `{other}`\n{USAGE}"),
        }
    }
    Ok(opts)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Partition,
    Direct,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Partition => "partition",
            Side::Direct => "direct",
        }
    }
}

/// The files of the `-drive file=...` arguments.
fn drive_files(qemu: &[String]) -> Vec<PathBuf> {
    qemu.windows(2)
        .filter(|w| w[0] == "-drive")
        .filter_map(|w| w[1].split(',').find_map(|kv| kv.strip_prefix("file=")))
        .map(PathBuf::from)
        .collect()
}

/// Fresh, zeroed (sparse) disks: every run starts from the same state.
fn reset_disks(disks: &[PathBuf]) -> Result<()> {
    for d in disks {
        let f = fs::File::create(d).with_context(|| format!("creating {}", d.display()))?;
        f.set_len(DISK_BYTES)?;
    }
    Ok(())
}

/// Console bytes to lines: the hypervisor's defmt stream or the direct
/// boot's plain text.
enum Decode {
    Defmt(LogDecoder),
    Text(Vec<u8>),
}

impl Decode {
    fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        match self {
            Decode::Defmt(d) => d.feed(bytes).into_iter().map(|l| l.text).collect(),
            Decode::Text(pending) => {
                pending.extend_from_slice(bytes);
                let mut lines = Vec::new();
                while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    lines.push(String::from_utf8_lossy(&line).trim_end_matches(['\r', '\n']).to_owned());
                }
                lines
            }
        }
    }
}

/// Runs `cmd` to its exit (or [`TIMEOUT`]), timing each console line from
/// the spawn, and returns the run's figures.
fn boot(mut cmd: Command, decode: &mut Decode, verbose: bool) -> Result<Figures> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().context("starting qemu-system-aarch64")?;
    let mut stdout = child.stdout.take().context("qemu stdout")?;
    let mut stderr = child.stderr.take().context("qemu stderr")?;
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut seen = Collector::default();
    let mut tail: Vec<String> = Vec::new();
    let mut timed_out = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok((at, bytes)) => {
                for line in decode.feed(&bytes) {
                    if verbose || line.contains("linux-guest: ") {
                        println!("  {line}");
                    }
                    seen.see(at.duration_since(start), &line);
                    tail.push(line);
                    if tail.len() > 40 {
                        tail.remove(0);
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        if start.elapsed() > TIMEOUT {
            timed_out = true;
            let _ = child.kill();
            break;
        }
    }
    let status = child.wait()?;
    let stderr = err_reader.join().unwrap_or_default();
    match seen.figures() {
        Ok(f) => {
            if timed_out {
                eprintln!("xtask: warning: QEMU had not exited after {} s; stopped it", TIMEOUT.as_secs());
            }
            Ok(f)
        }
        Err(missing) => {
            let mut msg = String::new();
            let how = if timed_out {
                format!("stopped after {} s", TIMEOUT.as_secs())
            } else {
                format!("QEMU exited with {status} after {:.1} s", start.elapsed().as_secs_f64())
            };
            let _ = writeln!(msg, "{how} without {}", missing.join(", "));
            let _ = writeln!(msg, "last console lines:");
            for l in &tail {
                let _ = writeln!(msg, "  {l}");
            }
            if !stderr.trim().is_empty() {
                let _ = write!(msg, "QEMU's stderr:\n{stderr}");
            }
            bail!("{msg}")
        }
    }
}

/// One phase of the workload: `mib` MiB moved in `ms` milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Phase {
    mib: u64,
    ms: u64,
}

impl Phase {
    fn mib_per_s(self) -> f64 {
        self.mib as f64 * 1000.0 / self.ms.max(1) as f64
    }
}

/// A `linux-guest:` line the benchmark reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GuestLine {
    /// `booted <release>`: /init runs.
    Booted,
    /// `uptime at init N ms`: the kernel's boot time as the guest saw it.
    UptimeAtInit(u64),
    /// `bench nvme write M MiB in N ms`.
    Write(Phase),
    /// `bench nvme read M MiB in N ms`.
    Read(Phase),
    /// A line that says `FAIL`.
    Fail,
}

/// Reads the `linux-guest:` part of a console line (the hypervisor prefixes
/// it with its timestamp, level and the partition's name); `None` for
/// other lines.
fn parse_line(text: &str) -> Option<GuestLine> {
    let (_, rest) = text.split_once("linux-guest: ")?;
    if rest.contains("FAIL") {
        return Some(GuestLine::Fail);
    }
    if rest.starts_with("booted ") {
        return Some(GuestLine::Booted);
    }
    if let Some(ms) = rest.strip_prefix("uptime at init ").and_then(|r| r.strip_suffix(" ms")) {
        return ms.parse().ok().map(GuestLine::UptimeAtInit);
    }
    let (what, phase) = rest.strip_prefix("bench nvme ")?.split_once(' ')?;
    let (mib, ms) = phase.strip_suffix(" ms")?.split_once(" MiB in ")?;
    let phase = Phase { mib: mib.parse().ok()?, ms: ms.parse().ok()? };
    match what {
        "write" => Some(GuestLine::Write(phase)),
        "read" => Some(GuestLine::Read(phase)),
        _ => None,
    }
}

/// What one boot has shown so far.
#[derive(Debug, Default)]
struct Collector {
    booted_at: Option<Duration>,
    uptime_at_init_ms: Option<u64>,
    write: Option<Phase>,
    read: Option<Phase>,
    failures: Vec<String>,
}

impl Collector {
    /// Takes in one console line that arrived `at` after QEMU's spawn.
    fn see(&mut self, at: Duration, text: &str) {
        match parse_line(text) {
            Some(GuestLine::Booted) => self.booted_at = self.booted_at.or(Some(at)),
            Some(GuestLine::UptimeAtInit(ms)) => self.uptime_at_init_ms = Some(ms),
            Some(GuestLine::Write(p)) => self.write = Some(p),
            Some(GuestLine::Read(p)) => self.read = Some(p),
            Some(GuestLine::Fail) => self.failures.push(text.to_owned()),
            None => {}
        }
    }

    /// The run's figures, or what is missing.
    fn figures(&self) -> Result<Figures, Vec<String>> {
        let mut missing: Vec<String> = self.failures.iter().map(|f| format!("failure `{f}`")).collect();
        let mut need = |ok: bool, what: &str| {
            if !ok {
                missing.push(format!("`linux-guest: {what}`"));
            }
        };
        need(self.booted_at.is_some(), "booted ...");
        need(self.uptime_at_init_ms.is_some(), "uptime at init N ms");
        need(self.write.is_some(), "bench nvme write M MiB in N ms");
        need(self.read.is_some(), "bench nvme read M MiB in N ms");
        match (self.booted_at, self.uptime_at_init_ms, self.write, self.read) {
            (Some(wall), Some(uptime), Some(write), Some(read)) if missing.is_empty() => {
                Ok(Figures { wall_to_init: wall, uptime_at_init_ms: uptime, write, read })
            }
            _ => Err(missing),
        }
    }
}

/// The figures of one boot.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Figures {
    /// Host wall time from QEMU's spawn to the `linux-guest: booted` line.
    wall_to_init: Duration,
    /// The guest's uptime when /init started.
    uptime_at_init_ms: u64,
    write: Phase,
    read: Phase,
}

impl Figures {
    fn summary(&self) -> String {
        format!(
            "/init after {:.2} s wall ({:.2} s guest uptime), write {:.1} MiB/s, read {:.1} MiB/s",
            self.wall_to_init.as_secs_f64(),
            self.uptime_at_init_ms as f64 / 1000.0,
            self.write.mib_per_s(),
            self.read.mib_per_s()
        )
    }
}

/// The median of `xs` (the mean of the middle two for an even count).
fn median(mut xs: Vec<f64>) -> f64 {
    assert!(!xs.is_empty(), "a median of no runs");
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// One row: a metric's medians on both sides.
struct Row {
    name: &'static str,
    partition: f64,
    direct: f64,
    /// Whether more is better (throughput) or less (time).
    higher_is_better: bool,
}

impl Row {
    fn ratio(&self) -> f64 {
        self.partition / self.direct
    }

    /// Within [`GOAL`] of direct boot: throughput at least 90 % of it, time
    /// at most 110 %.
    fn within_goal(&self) -> bool {
        if self.higher_is_better {
            self.ratio() >= 1.0 - GOAL
        } else {
            self.ratio() <= 1.0 + GOAL
        }
    }
}

/// The medians of both sides, metric by metric.
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn new(partition: &[Figures], direct: &[Figures]) -> Self {
        let m = |runs: &[Figures], f: fn(&Figures) -> f64| median(runs.iter().map(f).collect());
        let row = |name, higher_is_better, f: fn(&Figures) -> f64| Row {
            name,
            partition: m(partition, f),
            direct: m(direct, f),
            higher_is_better,
        };
        Table {
            rows: vec![
                row("boot to /init, host wall (s)", false, |f| f.wall_to_init.as_secs_f64()),
                row("boot to /init, guest uptime (s)", false, |f| f.uptime_at_init_ms as f64 / 1000.0),
                row("NVMe write, O_DIRECT 1 MiB (MiB/s)", true, |f| f.write.mib_per_s()),
                row("NVMe read, O_DIRECT 1 MiB (MiB/s)", true, |f| f.read.mib_per_s()),
            ],
        }
    }

    /// A Markdown table, ready for the README.
    fn render(&self) -> String {
        let mut s =
            String::from("| metric | partition | direct | partition/direct |\n| --- | --- | --- | --- |\n");
        for r in &self.rows {
            let _ = writeln!(s, "| {} | {:.2} | {:.2} | {:.2} |", r.name, r.partition, r.direct, r.ratio());
        }
        s
    }

    /// Whether every metric is within 10 % of direct boot, naming those that are not.
    fn verdict(&self) -> String {
        let off: Vec<String> = self
            .rows
            .iter()
            .filter(|r| !r.within_goal())
            .map(|r| format!("{} ({:.2})", r.name, r.ratio()))
            .collect();
        if off.is_empty() {
            format!("Goal met: every metric within {:.0} % of direct boot.", GOAL * 100.0)
        } else {
            format!("Goal not met: beyond {:.0} % of direct boot: {}.", GOAL * 100.0, off.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options() {
        assert_eq!(parse_args(&[]).unwrap(), Options { runs: 3, verbose: false });
        assert_eq!(
            parse_args(&args(&["--runs", "5", "--verbose"])).unwrap(),
            Options { runs: 5, verbose: true }
        );
        assert!(parse_args(&args(&["--runs"])).is_err());
        assert!(parse_args(&args(&["--runs", "0"])).is_err());
        assert!(parse_args(&args(&["--runs", "x"])).is_err());
        assert!(parse_args(&args(&["--fast"])).is_err());
    }

    #[test]
    fn guest_lines_plain_and_through_the_hypervisor() {
        let phase = |mib, ms| Phase { mib, ms };
        assert_eq!(parse_line("linux-guest: booted 6.12.95+deb12-arm64"), Some(GuestLine::Booted));
        assert_eq!(parse_line("linux-guest: uptime at init 2310 ms"), Some(GuestLine::UptimeAtInit(2310)));
        assert_eq!(
            parse_line("linux-guest: bench nvme write 64 MiB in 1250 ms"),
            Some(GuestLine::Write(phase(64, 1250)))
        );
        assert_eq!(
            parse_line(
                "  12.345678 INFO  vdev::pl011: [linux] linux-guest: bench nvme read 256 MiB in 980 ms"
            ),
            Some(GuestLine::Read(phase(256, 980)))
        );
        assert_eq!(parse_line("linux-guest: bench nvme write FAIL"), Some(GuestLine::Fail));
        assert_eq!(
            parse_line("linux-guest: nvme 1 MiB pattern written and read back: FAIL"),
            Some(GuestLine::Fail)
        );
        // Other lines, and malformed bench lines, are not figures.
        for other in [
            "linux-guest: nvme 1 MiB pattern written and read back: ok",
            "[    0.000000] Booting Linux on physical CPU 0x0000000000",
            "linux-guest: bench nvme write 64 MiB in ms",
            "linux-guest: bench nvme write x MiB in 5 ms",
            "linux-guest: bench nvme trim 64 MiB in 5 ms",
            "linux-guest: uptime at init 12.5 ms",
            "linux-guest: uptime at init -1 ms",
        ] {
            assert_eq!(parse_line(other), None, "{other}");
        }
    }

    #[test]
    fn a_run_needs_every_line() {
        let s = Duration::from_secs;
        let mut c = Collector::default();
        c.see(s(1), "[    1.2] nvme nvme0: pci function 0000:00:01.0");
        c.see(s(2), "linux-guest: uptime at init 1800 ms");
        c.see(s(3), "linux-guest: booted 6.12");
        let missing = c.figures().unwrap_err();
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert!(missing[0].contains("write") && missing[1].contains("read"));
        c.see(s(4), "linux-guest: bench nvme write 64 MiB in 2000 ms");
        c.see(s(5), "linux-guest: bench nvme read 64 MiB in 500 ms");
        c.see(s(6), "linux-guest: booted again");
        let f = c.figures().unwrap();
        assert_eq!(f.wall_to_init, s(3), "the first `booted` line counts");
        assert_eq!(f.uptime_at_init_ms, 1800);
        assert_eq!((f.write.mib_per_s(), f.read.mib_per_s()), (32.0, 128.0));
        c.see(s(7), "linux-guest: virtio-blk 1 MiB pattern written and read back: FAIL");
        assert_eq!(c.figures().unwrap_err().len(), 1, "a failure spoils the run");
    }

    #[test]
    fn drives_of_the_config() {
        let qemu = args(&[
            "-nic",
            "none",
            "-drive",
            "file=target/images/linux/nvme.img,if=none,id=d0,format=raw",
            "-device",
            "nvme,drive=d0,serial=bulkhead",
            "-drive",
            "if=none,id=d1,file=b.img",
        ]);
        assert_eq!(
            drive_files(&qemu),
            [PathBuf::from("target/images/linux/nvme.img"), PathBuf::from("b.img")]
        );
    }

    #[test]
    fn text_lines_across_chunks() {
        let mut d = Decode::Text(Vec::new());
        assert!(d.feed(b"linux-guest: boo").is_empty());
        assert_eq!(d.feed(b"ted 6.12\r\nnext\n\npart"), ["linux-guest: booted 6.12", "next", ""]);
        assert_eq!(d.feed(b"ial\n"), ["partial"]);
    }

    #[test]
    fn medians_ratios_and_the_goal() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        let run = |wall_ms, uptime_ms, write_ms, read_ms| Figures {
            wall_to_init: Duration::from_millis(wall_ms),
            uptime_at_init_ms: uptime_ms,
            write: Phase { mib: 64, ms: write_ms },
            read: Phase { mib: 64, ms: read_ms },
        };
        let direct =
            [run(10_000, 8_000, 1_000, 500), run(11_000, 8_000, 1_000, 500), run(30_000, 9_000, 4_000, 900)];
        // Within 10 %: 5 % slower boot, 8 % less write throughput, same reads.
        let close =
            [run(10_500, 8_400, 1_087, 500), run(10_500, 8_400, 1_087, 500), run(10_500, 8_400, 1_087, 500)];
        let t = Table::new(&close, &direct);
        assert!((t.rows[0].ratio() - 10.5 / 11.0).abs() < 1e-9, "median of the direct walls is 11 s");
        assert!(t.rows.iter().all(Row::within_goal), "{}", t.render());
        assert!(t.verdict().starts_with("Goal met"));
        // Writes at half the speed: out, and named.
        let slow = [run(10_500, 8_400, 2_000, 500)];
        let t = Table::new(&slow, &direct);
        assert_eq!(t.rows.iter().filter(|r| !r.within_goal()).count(), 1);
        assert!(t.verdict().contains("NVMe write, O_DIRECT 1 MiB (MiB/s) (0.50)"), "{}", t.verdict());
        let rendered = t.render();
        assert!(
            rendered.contains("| NVMe write, O_DIRECT 1 MiB (MiB/s) | 32.00 | 64.00 | 0.50 |"),
            "{rendered}"
        );
    }
}
