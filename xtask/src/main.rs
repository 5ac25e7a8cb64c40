//! `cargo xtask`: every step a person would otherwise type. See `--help`.

mod bench_guest;
mod build;
mod check_config;
mod debian;
mod decode;
mod fixtures;
mod linux;
mod provision;
mod qemu;
mod test;
mod util;
mod x86;

use anyhow::{bail, Context, Result};
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

const HELP: &str = "\
cargo xtask <command>

  run [--board qemu-virt|rpi4] [--config FILE|none] [-- QEMU-ARGS...]
        build the hypervisor with the partitions of FILE (default: the
        board's demo, examples/qemu-virt-demo.toml or examples/rpi4-two.toml),
        boot it in QEMU with the devices the configuration names (its `qemu`
        key), stream the decoded defmt log, exit with the hypervisor's own
        status. Arguments after `--` go to QEMU unchanged (-smp, -m, -device ...).
  run --board q35|q35-vtd|q35-amdvi [-- QEMU-ARGS...]
        boot the x86_64 test kernel (x86-backends/testkernel) on QEMU q35
        (plain, Intel VT-d, AMD-Vi), stream its decoded log, exit with its
        status (isa-debug-exit's 33 shows as 0).
  test [--no-host] [--no-miri] [--suite SUBSTRING]
        host unit tests of every library crate, the in-QEMU suites, then the
        crates with unsafe code under Miri (one check); ends with
        `N passed, M failed`. The options narrow the run while developing;
        CI runs everything.
  image --board rpi4 [--config FILE|none] [--out DIR]
        the files for a Raspberry Pi 4 SD card (kernel8.img with the partitions
        of FILE, default examples/rpi4-two.toml; a config.txt fragment).
  miri  the host tests of the crates with unsafe code (smmu, iommu-common)
        under Miri; installs a nightly toolchain with Miri if missing.
  check-config FILE
        parse and validate a partition configuration (see examples/*.toml):
        `FILE: ok (N partitions)` and a line per partition, or every error
        as `FILE:LINE:COL: message` and a non-zero exit.
  linux [--qemu]
        the Linux partition guest from Debian's arm64 packages (kernel 6.12,
        busybox-static, modules): target/images/linux/{Image,initramfs.cpio.gz}.
        --qemu boots them directly on QEMU virt (no hypervisor) with an NVMe
        disk and checks the guest's `linux-guest:` lines.
  bench-guest [--runs N] [--verbose]
        the Linux guest's NVMe O_DIRECT workload (`bulkhead.bench`) in a
        partition (examples/linux-bench.toml) and with the same kernel,
        bootargs and devices booted directly on QEMU virt, N runs each
        (default 3): a table of medians (boot time, MiB/s) and the ratios.
  fixtures
        regenerate the device-tree test fixtures under target/dt-fixtures.
  provision
        install what is missing: Rust targets, QEMU 10 (Debian, as root).
";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace").to_owned()
}

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::from(101)
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = args.split_first() else {
        print!("{HELP}");
        return Ok(ExitCode::from(2));
    };
    let root = root();
    match cmd.as_str() {
        "run" => cmd_run(&root, rest),
        "test" => test::all(&root, &parse_test_opts(rest)?),
        "image" => cmd_image(&root, rest),
        "check-config" => match rest {
            [file] => check_config::run(Path::new(file)),
            _ => bail!("check-config takes one FILE\n{HELP}"),
        },
        "linux" => linux::cmd(&root, rest),
        "bench-guest" => bench_guest::cmd(&root, rest),
        "fixtures" => fixtures::generate(&root).map(|_| ExitCode::SUCCESS),
        "miri" => test::miri(&root).map(|ok| if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }),
        "provision" => provision_all(&root).map(|_| ExitCode::SUCCESS),
        "-h" | "--help" | "help" => {
            print!("{HELP}");
            Ok(ExitCode::SUCCESS)
        }
        other => bail!("unknown command `{other}`\n{HELP}"),
    }
}

/// Everything the project needs on this machine.
pub fn provision_all(root: &Path) -> Result<()> {
    provision::rust_targets(root)?;
    provision::qemu("aarch64", "qemu-system-arm")?;
    provision::qemu("x86_64", x86::QEMU_PACKAGE)?;
    Ok(())
}

fn parse_test_opts(args: &[String]) -> Result<test::Selection> {
    let mut sel = test::Selection::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--no-host" => sel.no_host = true,
            "--no-miri" => sel.no_miri = true,
            "--suite" => sel.suite = Some(it.next().context("--suite needs a name")?.clone()),
            other => bail!("unknown option `{other}`\n{HELP}"),
        }
    }
    Ok(sel)
}

/// Options before `--`, and everything after it.
struct Opts {
    board: String,
    config: Option<PathBuf>,
    out: Option<PathBuf>,
    passthrough: Vec<String>,
}

fn parse_opts(args: &[String], default_board: &str) -> Result<Opts> {
    let mut opts = Opts { board: default_board.into(), config: None, out: None, passthrough: Vec::new() };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--board" => opts.board = it.next().context("--board needs a name")?.clone(),
            "--out" => opts.out = Some(it.next().context("--out needs a directory")?.into()),
            "--config" => opts.config = Some(it.next().context("--config needs a file")?.into()),
            "--" => {
                opts.passthrough = it.cloned().collect();
                break;
            }
            other => bail!("unknown option `{other}`\n{HELP}"),
        }
    }
    if boards::board_by_name(&opts.board).is_none() && x86::board(&opts.board).is_none() {
        let names: Vec<&str> =
            boards::BOARDS.iter().map(|b| b.name).chain(x86::BOARDS.iter().map(|b| b.name)).collect();
        bail!("unknown board `{}`; boards: {}", opts.board, names.join(", "));
    }
    Ok(opts)
}

/// The QEMU arguments and device tree a board boots with.
pub fn board_run(root: &Path, board: &str) -> Result<(Vec<String>, Option<PathBuf>)> {
    let b = boards::board_by_name(board).with_context(|| format!("unknown board {board}"))?;
    let args = b.qemu.args().map(str::to_owned).collect();
    let dtb = match board {
        // The Pi's firmware hands the kernel a DTB; QEMU's raspi4b makes none.
        "rpi4" => Some(debian::rpi4_dtb(root)?),
        _ => None,
    };
    Ok((args, dtb))
}

fn cmd_run(root: &Path, args: &[String]) -> Result<ExitCode> {
    let opts = parse_opts(args, "qemu-virt")?;
    provision_all(root)?;
    if let Some(board) = x86::board(&opts.board) {
        if opts.config.is_some() {
            bail!("--config is for the ARM boards; {} boots the x86 test kernel", board.name);
        }
        return x86::cmd_run(root, board, opts.passthrough);
    }
    let config = match opts.config {
        Some(c) if c.as_os_str() == "none" => None,
        Some(c) => Some(c),
        None => default_config(root, &opts.board),
    };
    let built = build::hypervisor(
        root,
        &build::BuildSpec { board: opts.board.clone(), features: vec!["qemu-exit"], config: config.clone() },
    )?;
    let (board_args, dtb) = board_run(root, &opts.board)?;
    // The configuration's devices first, so arguments after `--` can add to them.
    let mut extra = match &config {
        Some(c) => build::read_config(c)?.qemu,
        None => Vec::new(),
    };
    extra.extend(opts.passthrough);
    let run = qemu::Run {
        input: qemu::Input::Terminal,
        binary: "qemu-system-aarch64".into(),
        board_args,
        image: built.image,
        elf: built.elf,
        dtb,
        append: None,
        extra,
        timeout: None,
        echo: Some(String::new()),
    };
    let out = run.execute()?;
    if !out.stderr.trim().is_empty() {
        eprint!("{}", out.stderr);
    }
    if out.malformed > 0 {
        eprintln!("xtask: {} log frames did not decode", out.malformed);
    }
    let status = out.status.unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(status).unwrap_or(1)))
}

/// The demo configuration `run` boots when none is named.
fn default_config(root: &Path, board: &str) -> Option<PathBuf> {
    let file = match board {
        "qemu-virt" => "examples/qemu-virt-demo.toml",
        "rpi4" => "examples/rpi4-two.toml",
        _ => return None,
    };
    Some(root.join(file))
}

fn cmd_image(root: &Path, args: &[String]) -> Result<ExitCode> {
    let opts = parse_opts(args, "rpi4")?;
    if opts.board != "rpi4" {
        bail!("`image` makes SD-card files for rpi4; QEMU boards boot with `cargo xtask run`");
    }
    provision::rust_targets(root)?;
    let config = match opts.config {
        Some(c) if c.as_os_str() == "none" => None,
        Some(c) => Some(c),
        None => default_config(root, &opts.board),
    };
    let built =
        build::hypervisor(root, &build::BuildSpec { board: opts.board.clone(), features: vec![], config })?;
    let out = opts.out.unwrap_or_else(|| root.join("target/rpi4-sdcard"));
    std::fs::create_dir_all(&out)?;
    std::fs::copy(&built.image, out.join("kernel8.img"))?;
    std::fs::copy(&built.elf, out.join("bulkhead-rpi4.elf"))?;
    std::fs::write(
        out.join("config.txt"),
        "# Bulkhead on Raspberry Pi 4: add to the SD card's config.txt\n\
         arm_64bit=1\n\
         kernel=kernel8.img\n\
         # the image is linked for 0x80000 and expects to be entered there at EL2\n\
         kernel_address=0x80000\n\
         # the hypervisor's defmt log goes out on the PL011 (GPIO 14/15, 115200 8N1)\n\
         enable_uart=1\n\
         dtoverlay=disable-bt\n",
    )?;
    println!("SD card files in {}:", out.display());
    println!("  kernel8.img        the hypervisor (arm64 Image)");
    println!("  config.txt         lines to add to the card's config.txt");
    println!("  bulkhead-rpi4.elf  keep it: decodes the UART log (`defmt-print -e bulkhead-rpi4.elf`)");
    Ok(ExitCode::SUCCESS)
}
