//! Building the hypervisor for a board and turning the ELF into the flat
//! arm64 Image that QEMU's `-kernel` and the Pi firmware load.

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSegment};
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::util::run;

/// The hypervisor's bare-metal target.
pub const TARGET: &str = "aarch64-unknown-none";

/// What to build.
#[derive(Clone, Debug)]
pub struct BuildSpec {
    /// Board name (`boards::Board::name`), selects the linker script.
    pub board: String,
    /// Cargo features of the hypervisor crate.
    pub features: Vec<&'static str>,
    /// The partition configuration to embed (and whose `builtin:` guests to
    /// build first), if any.
    pub config: Option<PathBuf>,
}

/// A built image: the ELF (for defmt decoding) and the flat binary (to boot).
#[derive(Clone, Debug)]
pub struct Built {
    /// The linked ELF with debug info.
    pub elf: PathBuf,
    /// The arm64 Image.
    pub image: PathBuf,
}

/// Builds the hypervisor; images land in `target/images/<board>-<features>.{elf,bin}`.
pub fn hypervisor(root: &Path, spec: &BuildSpec) -> Result<Built> {
    let features = spec.features.join(",");
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .args(["build", "--quiet", "--release", "-p", "hypervisor", "--target", TARGET])
        .env("BULKHEAD_BOARD", &spec.board)
        .env("DEFMT_LOG", "debug");
    match &spec.config {
        Some(config) => {
            let config = fs::canonicalize(config).with_context(|| format!("{}", config.display()))?;
            for guest in builtin_guests(&config)? {
                if guest == "linux" {
                    linux_guest_images(root)?;
                } else {
                    guest_image(root, &guest)?;
                }
            }
            cmd.env("BULKHEAD_CONFIG", &config).env("BULKHEAD_GUESTS_DIR", root.join("target/images/guests"));
        }
        None => {
            cmd.env("BULKHEAD_CONFIG", "");
        }
    }
    if !features.is_empty() {
        cmd.args(["--features", &features]);
    }
    run(&mut cmd).context("building the hypervisor")?;
    let out = cargo_target_dir(root).join(TARGET).join("release").join("hypervisor");
    let dir = root.join("target/images");
    fs::create_dir_all(&dir)?;
    let mut stem = if features.is_empty() {
        spec.board.clone()
    } else {
        format!("{}-{}", spec.board, features.replace(',', "+"))
    };
    if let Some(stem_of_config) = spec.config.as_deref().and_then(Path::file_stem) {
        stem = format!("{stem}@{}", stem_of_config.to_string_lossy());
    }
    let elf = dir.join(format!("{stem}.elf"));
    fs::copy(&out, &elf).with_context(|| format!("copying {}", out.display()))?;
    let image = dir.join(format!("{stem}.bin"));
    fs::write(&image, flat_binary(&fs::read(&elf)?)?)?;
    Ok(Built { elf, image })
}

/// A configuration, parsed and checked with the same code the hypervisor
/// uses; the errors as `FILE:LINE:COL: message` lines.
pub fn read_config(config: &Path) -> Result<boards::config::Config> {
    let text = fs::read_to_string(config).with_context(|| format!("reading {}", config.display()))?;
    boards::config::Config::parse(&text).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(|e| format!("{}:{e}", config.display())).collect();
        anyhow::anyhow!("the partition configuration is refused:\n{}", lines.join("\n"))
    })
}

/// The `builtin:<name>` guests a configuration boots.
fn builtin_guests(config: &Path) -> Result<Vec<String>> {
    let parsed = read_config(config)?;
    let mut names: Vec<String> = parsed
        .partitions
        .iter()
        .flat_map(|p| {
            let kernel = match &p.kernel {
                boards::config::KernelSource::Builtin(n) => Some(n.clone()),
                boards::config::KernelSource::Path(_) => None,
            };
            let initramfs = p.initramfs.as_deref().and_then(|i| i.strip_prefix("builtin:"));
            // `builtin:linux-initramfs` comes with `builtin:linux`.
            kernel.into_iter().chain(initramfs.map(|i| i.trim_end_matches("-initramfs").to_owned()))
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// `builtin:linux` and `builtin:linux-initramfs`: the Debian guest
/// (`cargo xtask linux`), copied where the hypervisor's build looks for
/// builtin images, and the NVMe disk image the Linux demo's QEMU uses.
fn linux_guest_images(root: &Path) -> Result<()> {
    let g = crate::linux::guest(root)?;
    let dir = root.join("target/images/guests");
    fs::create_dir_all(&dir)?;
    for (from, to) in [(&g.image, "linux.img"), (&g.initramfs, "linux-initramfs.img")] {
        let dest = dir.join(to);
        let same = fs::read(&dest).ok().is_some_and(|old| fs::read(from).ok().is_some_and(|new| new == old));
        if !same {
            fs::copy(from, &dest).with_context(|| format!("copying {}", from.display()))?;
        }
    }
    // Fresh, zeroed disks: what a run finds on them afterwards it wrote.
    for name in ["nvme.img", "vblk.img"] {
        let f = fs::File::create(root.join("target/images/linux").join(name))?;
        f.set_len(16 << 20)?;
    }
    Ok(())
}

/// Builds the bare-metal guest in `guests/<name>` (package `<name>-guest`) in
/// release for [`TARGET`] and writes its flat arm64 Image (made like the
/// hypervisor's, by [`flat_binary`]) to `target/images/guests/<name>.img`,
/// with the ELF beside it as `<name>.elf`. Returns the image's path.
pub fn guest_image(root: &Path, name: &str) -> Result<PathBuf> {
    let manifest = root.join("guests").join(name).join("Cargo.toml");
    if !manifest.is_file() {
        bail!("no guest `{name}`: {} does not exist", manifest.display());
    }
    let package = format!("{name}-guest");
    run(Command::new("cargo").current_dir(root).args([
        "build",
        "--quiet",
        "--release",
        "-p",
        &package,
        "--target",
        TARGET,
    ]))
    .with_context(|| format!("building the guest `{name}`"))?;
    let out = cargo_target_dir(root).join(TARGET).join("release").join(&package);
    let dir = root.join("target/images/guests");
    fs::create_dir_all(&dir)?;
    let elf = dir.join(format!("{name}.elf"));
    fs::copy(&out, &elf).with_context(|| format!("copying {}", out.display()))?;
    let image = dir.join(format!("{name}.img"));
    let bin = flat_binary(&fs::read(&elf)?).with_context(|| format!("flattening {}", elf.display()))?;
    fs::write(&image, bin).with_context(|| format!("writing {}", image.display()))?;
    Ok(image)
}

/// Where cargo puts its output: `CARGO_TARGET_DIR` (relative to `root`, where
/// cargo runs) if set, else `root/target`.
fn cargo_target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// The loadable segments of `elf` laid out from the lowest physical address,
/// gaps zero-filled; `.bss` is not included (the Image header's image_size
/// covers it and the entry code zeroes it).
pub fn flat_binary(elf: &[u8]) -> Result<Vec<u8>> {
    let file = object::File::parse(elf).context("parsing the hypervisor ELF")?;
    let mut segs: Vec<(u64, &[u8])> = Vec::new();
    for seg in file.segments() {
        let data = seg.data()?;
        if !data.is_empty() {
            segs.push((seg.address(), data));
        }
    }
    segs.sort_by_key(|s| s.0);
    let Some(&(base, _)) = segs.first() else { bail!("the ELF has no loadable segment") };
    let end = segs.iter().map(|(a, d)| a + d.len() as u64).max().unwrap_or(base);
    if end - base > 64 << 20 {
        bail!("loadable segments span {} MiB: the linker script is broken", (end - base) >> 20);
    }
    let mut bin = vec![0u8; (end - base) as usize];
    for (addr, data) in segs {
        let off = (addr - base) as usize;
        bin[off..off + data.len()].copy_from_slice(data);
    }
    if bin.len() < 64 || &bin[0x38..0x3c] != b"ARM\x64" {
        bail!("the image does not start with the arm64 Image header");
    }
    Ok(bin)
}
