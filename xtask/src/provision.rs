//! Puts on this machine what the project needs, from the project's own files:
//! the Rust targets named in `rust-toolchain.toml` and QEMU 10.x. On Debian as
//! root it installs QEMU from the suite's backports; elsewhere it stops with
//! the exact command to run.

use anyhow::{bail, Context, Result};
use std::{fs, path::Path, process::Command};

use crate::util::{cmd_output, run};

/// The oldest QEMU whose `virt` SMMUv3 model does stage 2.
const QEMU_MIN_MAJOR: u32 = 10;

/// Installs the rustup targets listed in `rust-toolchain.toml` that are missing.
pub fn rust_targets(root: &Path) -> Result<()> {
    let text = fs::read_to_string(root.join("rust-toolchain.toml"))?;
    let wanted: Vec<String> = text
        .lines()
        .find(|l| l.trim_start().starts_with("targets"))
        .map(|l| l.split('"').skip(1).step_by(2).map(str::to_owned).collect())
        .unwrap_or_default();
    let installed =
        cmd_output(Command::new("rustup").args(["target", "list", "--installed"]).current_dir(root))
            .context("rustup is needed to install the bare-metal targets")?;
    let missing: Vec<&String> =
        wanted.iter().filter(|t| !installed.lines().any(|l| l.trim() == t.as_str())).collect();
    if !missing.is_empty() {
        eprintln!("xtask: installing Rust targets {missing:?}");
        let mut c = Command::new("rustup");
        c.args(["target", "add"]).args(&missing).current_dir(root);
        run(&mut c)?;
    }
    Ok(())
}

/// The major and minor version of `binary`, if it runs.
fn qemu_version(binary: &str) -> Option<(u32, u32)> {
    let out = Command::new(binary).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let ver = text.split("version ").nth(1)?.split_whitespace().next()?;
    let mut parts = ver.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

/// Makes sure `qemu-system-<arch>` 10.x is installed (`package` is Debian's
/// package name for it).
pub fn qemu(arch: &str, package: &str) -> Result<()> {
    let binary = format!("qemu-system-{arch}");
    match qemu_version(&binary) {
        Some((major, _)) if major >= QEMU_MIN_MAJOR => return Ok(()),
        Some((major, minor)) => {
            eprintln!("xtask: {binary} {major}.{minor} found, {QEMU_MIN_MAJOR}.x needed")
        }
        None => eprintln!("xtask: {binary} not found"),
    }
    let codename = debian_codename();
    let is_root = cmd_output(Command::new("id").arg("-u")).map(|s| s.trim() == "0").unwrap_or(false);
    let Some(codename) = codename.filter(|_| is_root) else {
        bail!(
            "{binary} {QEMU_MIN_MAJOR}.x is needed. On Debian, as root: add the <codename>-backports suite \
             to APT and run `apt-get install -t <codename>-backports {package}`; elsewhere install QEMU \
             {QEMU_MIN_MAJOR} or newer from your distribution or from source"
        );
    };
    let suite = format!("{codename}-backports");
    add_backports_suite(&codename, &suite)?;
    eprintln!("xtask: installing {package} from {suite}");
    run(Command::new("apt-get").args(["update", "-q"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends", "-t", &suite, package])
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    match qemu_version(&binary) {
        Some((major, _)) if major >= QEMU_MIN_MAJOR => Ok(()),
        other => bail!(
            "installed {package} from {suite} but {binary} reports {other:?}; {QEMU_MIN_MAJOR}.x is needed"
        ),
    }
}

fn debian_codename() -> Option<String> {
    let text = fs::read_to_string("/etc/os-release").ok()?;
    if !text.lines().any(|l| l == "ID=debian") {
        return None;
    }
    text.lines().find_map(|l| l.strip_prefix("VERSION_CODENAME=")).map(|s| s.trim_matches('"').to_owned())
}

/// Adds `<codename>-backports` with the main suite's mirror, unless an APT
/// source already names it.
fn add_backports_suite(codename: &str, suite: &str) -> Result<()> {
    let dir = Path::new("/etc/apt/sources.list.d");
    let mut texts: Vec<String> =
        fs::read_dir(dir)?.flatten().filter_map(|e| fs::read_to_string(e.path()).ok()).collect();
    texts.extend(fs::read_to_string("/etc/apt/sources.list").ok());
    if texts.iter().any(|t| t.split_whitespace().any(|w| w == suite)) {
        return Ok(());
    }
    let uri = texts.iter().find_map(|t| main_suite_uri(t, codename));
    let uri = uri.unwrap_or_else(|| "http://deb.debian.org/debian".into());
    let body = format!(
        "Types: deb\nURIs: {uri}\nSuites: {suite}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    );
    eprintln!("xtask: adding APT suite {suite} ({uri})");
    fs::write(dir.join("bulkhead-backports.sources"), body)?;
    Ok(())
}

/// The mirror URI of the main `codename` suite in one APT source file, in
/// either the deb822 (`.sources`) or the one-line format.
fn main_suite_uri(text: &str, codename: &str) -> Option<String> {
    for stanza in text.split("\n\n") {
        let field = |name: &str| stanza.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
        if let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) {
            if suites.split_whitespace().any(|s| s == codename) {
                return uris.split_whitespace().next().map(str::to_owned);
            }
        }
    }
    text.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.first() == Some(&"deb") && w.get(2) == Some(&codename)).then(|| w[1].to_owned())
    })
}
