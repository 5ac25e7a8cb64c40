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
    if !features.is_empty() {
        cmd.args(["--features", &features]);
    }
    run(&mut cmd).context("building the hypervisor")?;
    let out = root.join("target").join(TARGET).join("release").join("hypervisor");
    let dir = root.join("target/images");
    fs::create_dir_all(&dir)?;
    let stem = if features.is_empty() {
        spec.board.clone()
    } else {
        format!("{}-{}", spec.board, features.replace(',', "+"))
    };
    let elf = dir.join(format!("{stem}.elf"));
    fs::copy(&out, &elf).with_context(|| format!("copying {}", out.display()))?;
    let image = dir.join(format!("{stem}.bin"));
    fs::write(&image, flat_binary(&fs::read(&elf)?)?)?;
    Ok(Built { elf, image })
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
