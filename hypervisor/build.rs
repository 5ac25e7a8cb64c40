//! Selects the board's linker script, records the board name for the image,
//! and embeds the partition configuration with its guest images.
//!
//! `BULKHEAD_CONFIG` names the configuration file (TOML, see
//! `boards::config`); it is validated here, so a bad configuration fails the
//! build with `FILE:LINE:COL: message` lines, and then again by the
//! hypervisor at boot against the machine it finds. `builtin:<name>`
//! kernels are read from `BULKHEAD_GUESTS_DIR/<name>.img` (xtask builds
//! them); other kernels and initramfs paths are relative to the
//! configuration file. Without `BULKHEAD_CONFIG` the image has no
//! partitions.
use std::fmt::Write as _;
use std::{env, fs, path::Path, path::PathBuf};

fn main() {
    let board = env::var("BULKHEAD_BOARD").unwrap_or_else(|_| "qemu-virt".into());
    let linker = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../linker");
    let script = linker.join(format!("{board}.ld"));
    if !script.exists() {
        panic!("no linker script for board `{board}` at {}", script.display());
    }
    println!("cargo:rerun-if-env-changed=BULKHEAD_BOARD");
    println!("cargo:rerun-if-env-changed=BULKHEAD_CONFIG");
    println!("cargo:rerun-if-env-changed=BULKHEAD_GUESTS_DIR");
    println!("cargo:rerun-if-changed={}", linker.display());
    println!("cargo:rustc-link-search={}", linker.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rustc-env=BULKHEAD_BOARD={board}");

    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("embedded.rs");
    let generated = match env::var("BULKHEAD_CONFIG").ok().filter(|s| !s.is_empty()) {
        None => {
            "/// No configuration was given at build time.\npub const CONFIG: Option<(&str, &str)> = None;\n\
                 /// No guest images.\npub static IMAGES: &[(&str, &[u8])] = &[];\n"
                .to_string()
        }
        Some(path) => embed(Path::new(&path), &board),
    };
    fs::write(out, generated).expect("write embedded.rs");
}

fn embed(path: &Path, board: &str) -> String {
    let path = fs::canonicalize(path).unwrap_or_else(|e| panic!("BULKHEAD_CONFIG {}: {e}", path.display()));
    println!("cargo:rerun-if-changed={}", path.display());
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let config = match boards::config::Config::parse(&text) {
        Ok(c) => c,
        Err(errors) => {
            let mut msg = String::new();
            for e in errors {
                let _ = writeln!(msg, "{}:{e}", path.display());
            }
            panic!("the partition configuration is refused:\n{msg}");
        }
    };
    if config.board.name != board {
        panic!(
            "{}: the configuration is for board {}, this image for {board}",
            path.display(),
            config.board.name
        );
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let guests = env::var("BULKHEAD_GUESTS_DIR").map(PathBuf::from).ok();
    let mut images = String::new();
    let mut seen = Vec::new();
    for p in &config.partitions {
        let mut files = vec![];
        match &p.kernel {
            boards::config::KernelSource::Builtin(name) => {
                let g = guests.as_ref().unwrap_or_else(|| {
                    panic!(
                        "partition {}: builtin:{name} needs BULKHEAD_GUESTS_DIR (cargo xtask builds it)",
                        p.name
                    )
                });
                files.push((format!("builtin:{name}"), g.join(format!("{name}.img"))));
            }
            boards::config::KernelSource::Path(f) => files.push((f.clone(), dir.join(f))),
        }
        match p.initramfs.as_deref().map(|f| (f, f.strip_prefix("builtin:"))) {
            Some((f, Some(name))) => {
                let g = guests.as_ref().unwrap_or_else(|| {
                    panic!("partition {}: {f} needs BULKHEAD_GUESTS_DIR (cargo xtask builds it)", p.name)
                });
                files.push((f.to_owned(), g.join(format!("{name}.img"))));
            }
            Some((f, None)) => files.push((f.to_owned(), dir.join(f))),
            None => {}
        }
        for (key, file) in files {
            if seen.contains(&key) {
                continue;
            }
            let file = fs::canonicalize(&file)
                .unwrap_or_else(|e| panic!("partition {}: {}: {e}", p.name, file.display()));
            println!("cargo:rerun-if-changed={}", file.display());
            let _ = writeln!(images, "    ({key:?}, include_bytes!({:?})),", file.display().to_string());
            seen.push(key);
        }
    }
    format!(
        "/// The configuration file's name and text.\n\
         pub const CONFIG: Option<(&str, &str)> = Some(({name:?}, include_str!({path:?})));\n\
         /// Guest images by the name the configuration gives them.\n\
         pub static IMAGES: &[(&str, &[u8])] = &[\n{images}];\n",
        name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        path = path.display().to_string(),
    )
}
