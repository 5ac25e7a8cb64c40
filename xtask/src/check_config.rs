//! `cargo xtask check-config FILE`: parses and validates a partition
//! configuration on the host with the same code the hypervisor runs at boot
//! (`boards::config`), and also checks that kernel and initramfs files exist.

use anyhow::{Context, Result};
use boards::config::{Config, ConfigError, DeviceKind, Partition};
use std::{fmt::Write as _, path::Path, process::ExitCode};

/// Checks `file`; prints the report on stdout (errors on stderr) and exits
/// non-zero if the configuration is refused.
pub fn run(file: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let base = file.parent().unwrap_or(Path::new("."));
    match check(&file.display().to_string(), &text, |p| base.join(p).is_file()) {
        Ok(report) => {
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Err(report) => {
            eprint!("{report}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The report for configuration `text` read from `name`: `Ok` with
/// `NAME: ok (N partitions)` and a line per partition, or `Err` with one
/// `NAME:LINE:COL: message` line per error. `exists` says whether a path
/// named in the file (relative to it) exists.
pub fn check(name: &str, text: &str, exists: impl FnMut(&str) -> bool) -> Result<String, String> {
    let errors = match Config::parse(text) {
        Ok(cfg) => {
            let missing = cfg.check_files(exists);
            if missing.is_empty() {
                return Ok(summary(name, &cfg));
            }
            missing
        }
        Err(errors) => errors,
    };
    Err(errors.iter().map(|e| line(name, e)).collect())
}

fn line(name: &str, e: &ConfigError) -> String {
    match e.at {
        Some(at) => format!("{name}:{}:{}: {}\n", at.line, at.col, e.message),
        None => format!("{name}: {}\n", e.message),
    }
}

fn summary(name: &str, cfg: &Config) -> String {
    let n = cfg.partitions.len();
    let mut s = format!("{name}: ok ({n} partition{})\n", if n == 1 { "" } else { "s" });
    for p in &cfg.partitions {
        let _ = writeln!(s, "  {}", partition_line(p));
    }
    s
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 30) == 0 && b > 0 => format!("{}G", b >> 30),
        b if b % (1 << 20) == 0 && b > 0 => format!("{}M", b >> 20),
        b if b % (1 << 10) == 0 && b > 0 => format!("{}K", b >> 10),
        b => format!("{b}"),
    }
}

/// `dma-owner: cpus [0], 64M (host 0x50000000 -> guest 0x40000000), kernel
/// builtin:demo, console virtual, faults log, devices edu0 (pci 00:01.0)`.
fn partition_line(p: &Partition) -> String {
    let cpus: Vec<String> = p.cpus.iter().map(u32::to_string).collect();
    let mem: Vec<String> =
        p.memory.iter().map(|m| format!("{} (host {} -> guest {})", size(m.size), m.host, m.guest)).collect();
    let devices: Vec<String> = p
        .devices
        .iter()
        .map(|d| {
            let what = match &d.kind {
                DeviceKind::Pci(bdf) => format!("pci {bdf}"),
                DeviceKind::Mmio { regions, .. } => {
                    format!("mmio {}", regions.first().map_or(String::new(), |r| format!("{:#x}", r.base)))
                }
            };
            let bounce = if d.bounce { ", bounce" } else { "" };
            format!("{} ({what}{bounce})", d.name)
        })
        .collect();
    let mut s = format!(
        "{}: cpus [{}], {}, kernel {}, console {}, faults {}",
        p.name,
        cpus.join(", "),
        mem.join(" + "),
        p.kernel,
        p.console,
        p.fault_policy
    );
    if !devices.is_empty() {
        let _ = write!(s, ", devices {}", devices.join(", "));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(name: &str) -> String {
        let path = crate::root().join("examples").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn examples_report() {
        let ok = check("demo.toml", &example("qemu-virt-demo.toml"), |_| true);
        let ok = ok.unwrap_or_else(|e| panic!("{e}"));
        let mut lines = ok.lines();
        assert_eq!(lines.next(), Some("demo.toml: ok (3 partitions)"));
        assert_eq!(
            lines.next(),
            Some(
                "  dma-owner: cpus [0], 64M (host 0x50000000 -> guest 0x40000000), kernel builtin:demo, \
                 console virtual, faults log, devices edu0 (pci 00:01.0)"
            )
        );
        assert!(lines.next().is_some_and(|l| l.starts_with("  victim: cpus [1]")));
        assert!(check("two.toml", &example("rpi4-two.toml"), |_| true).is_ok());
    }

    #[test]
    fn refused_example_reports_file_line_col() {
        let err = check("r.toml", &example("rpi4-dma-refused.toml"), |_| true).err().unwrap_or_default();
        assert!(err.starts_with("r.toml:"), "{err}");
        assert!(err.contains(": board rpi4 has no IOMMU: device \"emmc\" could DMA anywhere"), "{err}");
        assert_eq!(err.lines().count(), 1);
        let loc: Vec<&str> = err.splitn(4, ':').collect();
        assert!(loc[1].parse::<u32>().is_ok() && loc[2].parse::<u32>().is_ok(), "{err}");
    }

    #[test]
    fn missing_files_are_errors() {
        let text = example("rpi4-two.toml").replacen("builtin:demo", "guest/Image", 1);
        let err = check("c.toml", &text, |p| p != "guest/Image").err().unwrap_or_default();
        assert!(err.contains("kernel file \"guest/Image\" not found"), "{err}");
    }
}
