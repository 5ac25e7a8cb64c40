//! Selects the board's linker script and records the board name for the image.
use std::{env, path::PathBuf};

fn main() {
    let board = env::var("BULKHEAD_BOARD").unwrap_or_else(|_| "qemu-virt".into());
    let linker = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../linker");
    let script = linker.join(format!("{board}.ld"));
    if !script.exists() {
        panic!("no linker script for board `{board}` at {}", script.display());
    }
    println!("cargo:rerun-if-env-changed=BULKHEAD_BOARD");
    println!("cargo:rerun-if-changed={}", linker.display());
    println!("cargo:rustc-link-search={}", linker.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rustc-env=BULKHEAD_BOARD={board}");
}
