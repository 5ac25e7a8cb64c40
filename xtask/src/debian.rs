//! Files from Debian's own arm64 packages, fetched with `apt-get download` on
//! first use and cached under `target/cache/debian/`: nothing binary is kept
//! in the repository. Today: the Raspberry Pi 4 device tree the firmware
//! would pass (shipped in the arm64 kernel package), and the kernel and
//! `busybox-static` a Linux partition guest is built from (`crate::linux`).

use anyhow::{bail, Context, Result};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::util::{cmd_output, run};

/// The kernel series the project uses (bookworm-backports: 6.12).
const KERNEL_META: &str = "linux-image-arm64:arm64/bookworm-backports";

fn cache_dir(root: &Path) -> PathBuf {
    root.join("target/cache/debian")
}

fn is_root() -> bool {
    cmd_output(Command::new("id").arg("-u")).is_ok_and(|s| s.trim() == "0")
}

fn ensure_arm64_architecture() -> Result<()> {
    let foreign = cmd_output(Command::new("dpkg").arg("--print-foreign-architectures"))
        .context("dpkg is needed to fetch Debian's arm64 packages")?;
    if !foreign.lines().any(|l| l.trim() == "arm64") {
        if !is_root() {
            bail!(
                "dpkg does not know the arm64 architecture, needed to `apt-get download` Debian's \
                 arm64 packages. As root run: dpkg --add-architecture arm64 && apt-get update"
            );
        }
        eprintln!("xtask: enabling the arm64 architecture in dpkg (for `apt-get download`)");
        run(Command::new("dpkg").args(["--add-architecture", "arm64"]))?;
        run(Command::new("apt-get").args(["update", "-q"]))?;
    }
    Ok(())
}

/// Downloads `spec` (`name:arch[/suite]`) into the cache unless a matching
/// `.deb` is there; returns its path.
fn download(root: &Path, spec: &str, file_prefix: &str) -> Result<PathBuf> {
    let dir = cache_dir(root);
    fs::create_dir_all(&dir)?;
    let find = || -> Option<PathBuf> {
        fs::read_dir(&dir).ok()?.flatten().map(|e| e.path()).find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(file_prefix) && n.ends_with(".deb"))
        })
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    ensure_arm64_architecture()?;
    eprintln!("xtask: apt-get download {spec}");
    let mut cmd = Command::new("apt-get");
    cmd.args(["download", "-q", "-o", "APT::Sandbox::User=root", spec]).current_dir(&dir);
    if run(&mut cmd).is_err() {
        // The package lists may predate the architecture or the suite.
        run(Command::new("apt-get").args(["update", "-q"]))?;
        run(&mut cmd)?;
    }
    find().with_context(|| format!("apt-get download {spec} left no {file_prefix}*.deb in {}", dir.display()))
}

/// The versioned kernel package the `linux-image-arm64` metapackage names.
pub fn kernel_package(root: &Path) -> Result<PathBuf> {
    let meta = download(root, KERNEL_META, "linux-image-arm64_")?;
    let depends = cmd_output(Command::new("dpkg-deb").arg("-f").arg(&meta).arg("Depends"))?;
    let name = depends
        .split(',')
        .map(str::trim)
        .find(|d| d.starts_with("linux-image-"))
        .and_then(|d| d.split_whitespace().next())
        .with_context(|| format!("no kernel package in Depends: {depends}"))?
        .to_owned();
    download(root, &format!("{name}:arm64"), &format!("{name}_"))
}

/// Extracts one file matching `pattern` (a tar wildcard) from a `.deb` into
/// `dest`, unless `dest` exists.
pub fn extract(deb: &Path, pattern: &str, dest: &Path) -> Result<()> {
    if dest.exists() {
        return Ok(());
    }
    let tmp = dest.with_extension("extract");
    let _ = fs::remove_dir_all(&tmp);
    fs::create_dir_all(&tmp)?;
    let script = format!(
        "dpkg-deb --fsys-tarfile '{}' | tar -x -C '{}' --wildcards '{}'",
        deb.display(),
        tmp.display(),
        pattern
    );
    run(Command::new("sh").args(["-c", &script]))?;
    let found = walk(&tmp).into_iter().find(|p| p.is_file());
    let Some(found) = found else { bail!("{pattern} not found in {}", deb.display()) };
    fs::rename(found, dest)?;
    fs::remove_dir_all(&tmp)?;
    Ok(())
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// The Raspberry Pi 4 Model B device tree from Debian's kernel package.
pub fn rpi4_dtb(root: &Path) -> Result<PathBuf> {
    let dest = cache_dir(root).join("bcm2711-rpi-4-b.dtb");
    if !dest.exists() {
        let deb = kernel_package(root)?;
        extract(&deb, "./usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb", &dest)?;
    }
    Ok(dest)
}

/// The `busybox-static:arm64` package: a static arm64 userland in one binary.
pub fn busybox_static(root: &Path) -> Result<PathBuf> {
    download(root, "busybox-static:arm64", "busybox-static_")
}

/// Unpacks a whole `.deb` with `dpkg-deb -x` into a directory of the cache
/// named after it (once: a stamp file marks a finished unpacking); returns
/// the directory.
pub fn unpack(deb: &Path) -> Result<PathBuf> {
    let stem = deb.file_stem().and_then(|s| s.to_str()).with_context(|| format!("{}", deb.display()))?;
    let dir = deb.with_file_name(format!("{stem}.unpacked"));
    let stamp = dir.join(".bulkhead-unpacked");
    if stamp.exists() {
        return Ok(dir);
    }
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    eprintln!("xtask: dpkg-deb -x {} {}", deb.display(), dir.display());
    run(Command::new("dpkg-deb").arg("-x").arg(deb).arg(&dir))?;
    fs::write(&stamp, "")?;
    Ok(dir)
}

/// The path of the host program `binary` (searched in `PATH` and the sbin
/// directories), installing Debian's `package` with apt when it is missing
/// and we are root; otherwise fails with the command to run.
pub fn host_tool(binary: &str, package: &str) -> Result<PathBuf> {
    let find = || {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
            .map(|d| d.join(binary))
            .find(|p| p.is_file())
    };
    if let Some(p) = find() {
        return Ok(p);
    }
    if !is_root() {
        bail!("{binary} is needed and missing. As root run: apt-get install {package}");
    }
    eprintln!("xtask: {binary} not found, installing {package}");
    let install = || {
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", package])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    };
    if install().is_err() {
        run(Command::new("apt-get").args(["update", "-q"]))?;
        install()?;
    }
    find().with_context(|| format!("installed {package} but found no {binary}"))
}
