//! Device trees for tests: the DTBs QEMU hands each board (fixtures for the
//! `boards` crate's host tests) and damaged copies for the in-QEMU suites
//! that prove bad input is refused.

use anyhow::{bail, Context, Result};
use bulkhead_tests::DtbDamage;
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use crate::util::run;

/// Dumps the DTB QEMU would hand a guest of `board` started with `extra`.
pub fn dump(root: &Path, board: &str, extra: &[&str], dest: &Path) -> Result<()> {
    let (args, dtb) = crate::board_run(root, board)?;
    let mut cmd = Command::new("qemu-system-aarch64");
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-M" || a == "-machine" {
            let m = it.next().context("-M needs a value")?;
            cmd.arg("-M").arg(format!("{m},dumpdtb={}", dest.display()));
        } else if (a == "-m" || a == "-smp") && extra.contains(&a.as_str()) {
            it.next();
        } else {
            cmd.arg(a);
        }
    }
    if let Some(dtb) = dtb {
        // Boards whose DTB comes from the loader: QEMU edits it like a real one.
        cmd.arg("-dtb").arg(dtb);
    }
    cmd.args(["-display", "none", "-monitor", "none", "-serial", "null"]).args(extra);
    // QEMU wants something to boot even when it only dumps the DTB.
    let dummy = root.join("target/dt-fixtures/empty.bin");
    fs::write(&dummy, [0u8; 16])?;
    cmd.arg("-kernel").arg(&dummy);
    run(&mut cmd).with_context(|| format!("dumping the {board} DTB"))?;
    Ok(())
}

/// Regenerates `target/dt-fixtures/`.
pub fn generate(root: &Path) -> Result<()> {
    crate::provision_all(root)?;
    let dir = root.join("target/dt-fixtures");
    fs::create_dir_all(&dir)?;
    // One CPU: the edit tests count on a single `cpu@0`.
    let virt = ["-smp", "1", "-nic", "none", "-device", "edu"];
    dump(root, "qemu-virt", &virt, &dir.join("virt.dtb"))?;
    dump(root, "qemu-virt", &["-smp", "3", "-m", "2G", "-device", "edu"], &dir.join("virt-smp3-2g.dtb"))?;
    // The same DT passed back in with -dtb: QEMU's edits leave FDT_NOP tokens.
    let mut nops = vec!["-dtb".to_owned(), dir.join("virt.dtb").display().to_string()];
    nops.extend(virt.iter().map(|s| s.to_string()));
    let nops: Vec<&str> = nops.iter().map(String::as_str).collect();
    dump(root, "qemu-virt", &nops, &dir.join("virt-nops.dtb"))?;
    dump(root, "rpi4", &[], &dir.join("raspi4b.dtb"))?;
    eprintln!("xtask: DT fixtures in {}", dir.display());
    Ok(())
}

/// Writes a copy of `src` with `damage` applied to `dest`.
pub fn damaged(src: &Path, damage: DtbDamage, dest: &Path) -> Result<PathBuf> {
    let mut blob = fs::read(src)?;
    match damage {
        DtbDamage::RenameNode { from, to } => rename_node(&mut blob, from, to)?,
    }
    fs::write(dest, &blob)?;
    Ok(dest.to_owned())
}

fn be32(b: &[u8], off: usize) -> Result<u32> {
    let w = b.get(off..off + 4).context("DTB shorter than its header says")?;
    Ok(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// Renames every node called `from` (or `from@unit`) in the structure block.
fn rename_node(blob: &mut [u8], from: &str, to: &str) -> Result<()> {
    if from.len() != to.len() {
        bail!("a rename must keep the length ({from} -> {to})");
    }
    const FDT_BEGIN_NODE: u32 = 1;
    let off = be32(blob, 8)? as usize;
    let size = be32(blob, 36)? as usize;
    let mut hits = 0;
    let mut pos = off;
    while pos + 4 + from.len() < off + size {
        if be32(blob, pos)? == FDT_BEGIN_NODE {
            let name = &blob[pos + 4..pos + 4 + from.len() + 1];
            if &name[..from.len()] == from.as_bytes() && (name[from.len()] == 0 || name[from.len()] == b'@') {
                blob[pos + 4..pos + 4 + to.len()].copy_from_slice(to.as_bytes());
                hits += 1;
            }
        }
        pos += 4;
    }
    if hits == 0 {
        bail!("no node `{from}` in the DTB");
    }
    Ok(())
}
