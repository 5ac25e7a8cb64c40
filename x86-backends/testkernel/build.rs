//! Links the test kernel with its own script (`testkernel.ld`, loaded at
//! 1 MiB by QEMU's PVH loader) and defmt's, as a non-PIE executable: the
//! 32-bit entry stub uses absolute addresses and nothing relocates the image.
use std::{env, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let script = dir.join("testkernel.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    // Only the bare-metal build links with these; a host `cargo check` of
    // the workspace must not get them.
    if env::var("TARGET").as_deref() == Ok("x86_64-unknown-none") {
        println!("cargo:rustc-link-arg-bins=-T{}", script.display());
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
        println!("cargo:rustc-link-arg-bins=--no-pie");
    }
}
