//! A Linux partition guest built from Debian's own arm64 packages: the
//! kernel `Image` of `linux-image-arm64` (bookworm-backports, 6.12) and an
//! initramfs holding `busybox-static`, the kernel modules the guest needs
//! (with their dependencies, in load order) and `guests/linux/init`.
//!
//! Everything binary comes from the packages, cached under
//! `target/cache/debian/`; the outputs land in `target/images/linux/` and are
//! rewritten only when their bytes change (the initramfs is deterministic:
//! fixed inode numbers, owners and mtimes).

use anyhow::{bail, Context, Result};
use flate2::{write::GzEncoder, Compression};
use std::{
    collections::BTreeSet,
    fs,
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use crate::{debian, util::run};

/// The modules the initramfs loads (names as `modprobe` spells them; `-` and
/// `_` are the same). Their dependencies are added from `modules.dep`.
/// Modules built into the kernel are skipped.
const MODULES: &[&str] = &["nvme", "virtio_blk", "virtio_pci", "e1000e"];

/// A Linux guest ready to be named in a partition configuration.
#[derive(Clone, Debug)]
pub struct LinuxGuest {
    /// The arm64 `Image` (Documentation/arch/arm64/booting.rst).
    pub image: PathBuf,
    /// The gzip'd newc initramfs.
    pub initramfs: PathBuf,
    /// The kernel release (`uname -r`), e.g. `6.12.95+deb12-arm64`.
    pub version: String,
}

/// Makes (or refreshes) `target/images/linux/{Image,initramfs.cpio.gz}`.
pub fn guest(root: &Path) -> Result<LinuxGuest> {
    Ok(build(root)?.guest)
}

/// What `build` made, with the details `cargo xtask linux` prints.
struct Built {
    guest: LinuxGuest,
    header: image::Header,
    modules: Vec<String>,
}

fn build(root: &Path) -> Result<Built> {
    let kernel = debian::unpack(&debian::kernel_package(root)?)?;
    let version = kernel_version(&kernel)?;
    let out = root.join("target/images/linux");
    fs::create_dir_all(&out)?;

    let vmlinuz = kernel.join(format!("boot/vmlinuz-{version}"));
    let bytes = fs::read(&vmlinuz).with_context(|| format!("reading {}", vmlinuz.display()))?;
    let header = image::Header::parse(&bytes).with_context(|| format!("{}", vmlinuz.display()))?;
    let image = out.join("Image");
    write_if_changed(&image, &bytes)?;

    let moddir = kernel.join("lib/modules").join(&version);
    if !moddir.join("modules.dep").exists() {
        // Debian generates modules.dep when the package is installed, not in the .deb.
        let depmod = debian::host_tool("depmod", "kmod")?;
        run(Command::new(depmod).arg("-b").arg(&kernel).arg(&version))
            .context("depmod on the unpacked kernel package")?;
    }
    let dep = fs::read_to_string(moddir.join("modules.dep"))?;
    let builtin = fs::read_to_string(moddir.join("modules.builtin")).unwrap_or_default();
    let modules = modules::load_order(&dep, &builtin, MODULES)?;

    let busybox = debian::unpack(&debian::busybox_static(root)?)?.join("bin/busybox");
    let init_path = root.join("guests/linux/init");
    let init = fs::read(&init_path).with_context(|| format!("reading {}", init_path.display()))?;

    let mut files = vec![
        (
            "bin/busybox".to_owned(),
            0o755,
            fs::read(&busybox).with_context(|| format!("{}", busybox.display()))?,
        ),
        ("init".to_owned(), 0o755, init),
        (
            "etc/modules-load".to_owned(),
            0o644,
            modules.iter().map(|m| format!("{m}\n")).collect::<String>().into(),
        ),
    ];
    for m in &modules {
        files.push((format!("lib/modules/{version}/{m}"), 0o644, fs::read(moddir.join(m))?));
    }
    let cpio = initramfs(&files)?;
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&cpio)?;
    let initramfs = out.join("initramfs.cpio.gz");
    write_if_changed(&initramfs, &gz.finish()?)?;

    Ok(Built { guest: LinuxGuest { image, initramfs, version }, header, modules })
}

/// The one release under `lib/modules/` of an unpacked kernel package.
fn kernel_version(tree: &Path) -> Result<String> {
    let dir = tree.join("lib/modules");
    let mut names: Vec<String> = fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    match names.as_mut_slice() {
        [one] => Ok(std::mem::take(one)),
        _ => bail!("expected one kernel release in {}, found {names:?}", dir.display()),
    }
}

/// The uncompressed cpio: the directories, `/dev/console` (the kernel opens
/// it for `/init` before anything is mounted), `/bin/sh`, and `files`
/// (`(path, permissions, contents)`).
fn initramfs(files: &[(String, u32, Vec<u8>)]) -> Result<Vec<u8>> {
    let mut dirs: BTreeSet<String> =
        ["bin", "dev", "etc", "lib", "proc", "sys", "tmp"].map(String::from).into();
    for (path, _, _) in files {
        let mut p = Path::new(path);
        while let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(parent.to_string_lossy().into_owned());
            p = parent;
        }
    }
    let mut w = newc::Writer::new(Vec::new());
    // BTreeSet order puts every parent before its children.
    for d in &dirs {
        w.dir(d, if d == "tmp" { 0o1777 } else { 0o755 })?;
    }
    w.char_device("dev/console", 0o600, 5, 1)?;
    w.char_device("dev/null", 0o666, 1, 3)?;
    w.symlink("bin/sh", "busybox")?;
    for (path, mode, data) in files {
        w.file(path, *mode, data)?;
    }
    w.finish()
}

/// Writes `bytes` to `path` unless it holds them already (keeps its mtime).
fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<()> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// `cargo xtask linux [--qemu]`.
pub fn cmd(root: &Path, args: &[String]) -> Result<ExitCode> {
    let qemu = match args {
        [] => false,
        [a] if a == "--qemu" => true,
        _ => bail!("usage: cargo xtask linux [--qemu]"),
    };
    let built = build(root)?;
    let g = &built.guest;
    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!("Linux guest {}:", g.version);
    println!(
        "  {}  {} bytes (text_offset {:#x}, image_size {:#x}, flags {:#x})",
        g.image.display(),
        size(&g.image),
        built.header.text_offset,
        built.header.image_size,
        built.header.flags
    );
    println!("  {}  {} bytes", g.initramfs.display(), size(&g.initramfs));
    println!("  modules in load order: {}", built.modules.join(" "));
    if !qemu {
        return Ok(ExitCode::SUCCESS);
    }
    crate::provision::qemu("aarch64", "qemu-system-arm")?;
    Ok(if boot_direct(root, g)? { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// What a good run of `guests/linux/init` prints (substrings of its lines).
const EXPECTED: &[&str] = &[
    "linux-guest: booted ",
    "linux-guest: cpus online 0-1",
    "linux-guest: modules loaded: ",
    "linux-guest: nvme 1 MiB pattern written and read back: ok",
    "linux-guest: poweroff",
];

/// A direct boot of the guest on QEMU `virt`: no hypervisor, no SMMU
/// (`virt,gic-version=3`, `-cpu max`), the console on stdio.
#[derive(Clone, Debug)]
pub struct Direct {
    /// vCPUs (`-smp`).
    pub smp: usize,
    /// RAM (`-m`), e.g. `128M`.
    pub memory: String,
    /// The kernel command line (`-append`).
    pub bootargs: String,
    /// Device arguments (`-drive`, `-device`, `-nic` ...), appended unchanged.
    pub devices: Vec<String>,
}

/// The QEMU command line of `d` booting `g`; QEMU exits when Linux powers
/// off (`-no-reboot`).
pub fn direct_command(g: &LinuxGuest, d: &Direct) -> Command {
    let mut cmd = Command::new("qemu-system-aarch64");
    cmd.args(["-M", "virt,gic-version=3", "-cpu", "max", "-smp", &d.smp.to_string(), "-m", &d.memory])
        .arg("-nographic")
        .arg("-kernel")
        .arg(&g.image)
        .arg("-initrd")
        .arg(&g.initramfs)
        .args(["-append", &d.bootargs])
        .args(&d.devices)
        .arg("-no-reboot");
    cmd
}

/// Boots the guest directly on QEMU `virt` (no hypervisor) with a fresh
/// 16 MiB NVMe disk: proves the artifacts on their own. Streams the console
/// and returns whether every `EXPECTED` line appeared.
fn boot_direct(root: &Path, g: &LinuxGuest) -> Result<bool> {
    const TIMEOUT: Duration = Duration::from_secs(180);
    let disk = root.join("target/images/linux/nvme-test.img");
    let f = fs::File::create(&disk)?;
    f.set_len(16 << 20)?;
    drop(f);
    let direct = Direct {
        smp: 2,
        memory: "256M".into(),
        bootargs: "console=ttyAMA0 earlycon".into(),
        devices: vec![
            "-drive".into(),
            format!("file={},if=none,id=d0,format=raw", disk.display()),
            "-device".into(),
            "nvme,drive=d0,serial=bulkhead".into(),
        ],
    };
    let mut cmd = direct_command(g, &direct);
    cmd.stdin(Stdio::null()).stdout(Stdio::piped());
    eprintln!("xtask: {cmd:?}");
    let start = Instant::now();
    let mut child = cmd.spawn().context("starting qemu-system-aarch64")?;
    let stdout = child.stdout.take().context("qemu stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line).trim_end_matches('\r').to_owned();
            println!("{line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let status = loop {
        while let Ok(line) = rx.try_recv() {
            seen.push(line);
        }
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > TIMEOUT {
            eprintln!("xtask: QEMU still running after {}s, stopping it", TIMEOUT.as_secs());
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let wall = start.elapsed();
    // The reader thread ends at EOF; collect what it had left.
    seen.extend(rx.iter());
    let missing: Vec<&str> =
        EXPECTED.iter().copied().filter(|e| !seen.iter().any(|l| l.contains(e))).collect();
    eprintln!("xtask: QEMU exited with {status:?} after {:.1} s", wall.as_secs_f64());
    if missing.is_empty() {
        eprintln!("xtask: linux guest: all {} expected lines seen", EXPECTED.len());
        Ok(true)
    } else {
        eprintln!("xtask: linux guest: missing {missing:?}");
        Ok(false)
    }
}

/// The arm64 `Image` header (Documentation/arch/arm64/booting.rst, "Call
/// the kernel image").
mod image {
    use anyhow::{bail, Result};

    /// `magic` at offset 0x38: "ARM\x64", little endian.
    const MAGIC: &[u8; 4] = b"ARM\x64";

    /// The fields of the 64-byte header a loader needs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Header {
        /// Offset from a 2 MiB-aligned base at which the Image must sit.
        pub text_offset: u64,
        /// Bytes from the load address the kernel uses (file plus BSS).
        pub image_size: u64,
        /// Bit 0: big endian; bits 1-2: page size; bit 3: physical placement.
        pub flags: u64,
    }

    impl Header {
        /// Checks that `data` is an uncompressed little-endian arm64 Image.
        pub fn parse(data: &[u8]) -> Result<Self> {
            if data.starts_with(&[0x1f, 0x8b]) {
                bail!("gzip-compressed (Image.gz); a plain arm64 Image is needed");
            }
            if data.len() < 64 {
                bail!("{} bytes: too short for an arm64 Image header (64 bytes)", data.len());
            }
            if &data[0x38..0x3c] != MAGIC {
                bail!("no arm64 Image magic \"ARM\\x64\" at 0x38 (found {:02x?})", &data[0x38..0x3c]);
            }
            let word = |off: usize| {
                u64::from_le_bytes(data[off..off + 8].try_into().expect("8 bytes inside the 64-byte header"))
            };
            let h = Header { text_offset: word(8), image_size: word(16), flags: word(24) };
            if h.image_size == 0 {
                bail!("image_size is 0 (a kernel older than 3.17): its placement is unknown");
            }
            if h.image_size < data.len() as u64 {
                bail!("image_size {:#x} is smaller than the file ({:#x} bytes)", h.image_size, data.len());
            }
            if h.flags & 1 != 0 {
                bail!("a big-endian kernel (flags {:#x})", h.flags);
            }
            if h.text_offset % 4096 != 0 {
                bail!("text_offset {:#x} is not page aligned", h.text_offset);
            }
            Ok(h)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn header(text_offset: u64, image_size: u64, flags: u64) -> Vec<u8> {
            let mut h = vec![0u8; 64];
            h[8..16].copy_from_slice(&text_offset.to_le_bytes());
            h[16..24].copy_from_slice(&image_size.to_le_bytes());
            h[24..32].copy_from_slice(&flags.to_le_bytes());
            h[0x38..0x3c].copy_from_slice(&[0x41, 0x52, 0x4d, 0x64]);
            h
        }

        #[test]
        fn reads_the_fields() {
            let h = Header::parse(&header(0, 0x2b0_0000, 0xa)).unwrap();
            assert_eq!(h, Header { text_offset: 0, image_size: 0x2b0_0000, flags: 0xa });
        }

        #[test]
        fn refuses_what_is_not_a_plain_image() {
            let mut bad = header(0, 0x1000, 0xa);
            bad[0x3b] = 0;
            assert!(Header::parse(&bad).is_err());
            assert!(Header::parse(&[0x1f, 0x8b, 8, 0]).is_err());
            assert!(Header::parse(&header(0, 0, 0xa)).is_err());
            assert!(Header::parse(&header(0, 0x10, 0xa)).is_err(), "image_size below the file size");
            assert!(Header::parse(&header(0, 0x1000, 0xb)).is_err(), "big endian");
        }
    }
}

/// The "new" (SVR4, no CRC) cpio format the kernel unpacks as initramfs
/// (Documentation/driver-api/early-userspace/buffer-format.rst): per entry a
/// 110-byte ASCII header (`070701` and 13 eight-digit hex fields), the name
/// with its NUL, padding to 4 bytes, the data, padding to 4 bytes; a
/// `TRAILER!!!` entry ends the archive.
mod newc {
    use anyhow::{bail, Result};
    use std::io::Write;

    pub const S_IFDIR: u32 = 0o040000;
    pub const S_IFREG: u32 = 0o100000;
    pub const S_IFLNK: u32 = 0o120000;
    pub const S_IFCHR: u32 = 0o020000;

    /// Header size: the 6-byte magic and 13 fields of 8 hex digits.
    pub const HEADER_LEN: usize = 110;

    /// One header's fields (the magic and the always-zero check left out).
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct Header {
        pub ino: u32,
        pub mode: u32,
        pub uid: u32,
        pub gid: u32,
        pub nlink: u32,
        pub mtime: u32,
        pub filesize: u32,
        pub devmajor: u32,
        pub devminor: u32,
        pub rdevmajor: u32,
        pub rdevminor: u32,
        /// Name length including its NUL.
        pub namesize: u32,
    }

    impl Header {
        pub fn encode(&self) -> [u8; HEADER_LEN] {
            let fields = [
                self.ino,
                self.mode,
                self.uid,
                self.gid,
                self.nlink,
                self.mtime,
                self.filesize,
                self.devmajor,
                self.devminor,
                self.rdevmajor,
                self.rdevminor,
                self.namesize,
                0, // check: only for the "070702" CRC format
            ];
            let mut out = [0u8; HEADER_LEN];
            out[..6].copy_from_slice(b"070701");
            for (i, f) in fields.iter().enumerate() {
                out[6 + 8 * i..14 + 8 * i].copy_from_slice(format!("{f:08x}").as_bytes());
            }
            out
        }
    }

    /// Writes entries with owner root, mtime 0 and inode numbers counting
    /// from 1, so the same entries always give the same bytes.
    pub struct Writer<W: Write> {
        out: W,
        offset: u64,
        next_ino: u32,
    }

    impl<W: Write> Writer<W> {
        pub fn new(out: W) -> Self {
            Writer { out, offset: 0, next_ino: 1 }
        }

        pub fn dir(&mut self, path: &str, perm: u32) -> Result<()> {
            self.entry(path, S_IFDIR | perm, 2, (0, 0), &[])
        }

        pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> Result<()> {
            self.entry(path, S_IFREG | perm, 1, (0, 0), data)
        }

        pub fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
            self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
        }

        pub fn char_device(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> Result<()> {
            self.entry(path, S_IFCHR | perm, 1, (major, minor), &[])
        }

        /// Writes the trailer and returns the output.
        pub fn finish(mut self) -> Result<W> {
            self.write_entry("TRAILER!!!", Header { nlink: 1, ..Header::default() }, &[])?;
            Ok(self.out)
        }

        fn entry(&mut self, path: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) -> Result<()> {
            if path.is_empty() || path.starts_with('/') || path.contains('\0') {
                bail!("cpio entry name {path:?}: must be relative, non-empty, without NUL");
            }
            let Ok(filesize) = u32::try_from(data.len()) else {
                bail!("{path}: {} bytes do not fit a newc header", data.len());
            };
            let ino = self.next_ino;
            self.next_ino += 1;
            let header = Header {
                ino,
                mode,
                nlink,
                filesize,
                rdevmajor: rdev.0,
                rdevminor: rdev.1,
                ..Header::default()
            };
            self.write_entry(path, header, data)
        }

        fn write_entry(&mut self, name: &str, mut header: Header, data: &[u8]) -> Result<()> {
            header.namesize = u32::try_from(name.len() + 1)?;
            self.put(&header.encode())?;
            self.put(name.as_bytes())?;
            self.put(&[0])?;
            self.pad()?;
            self.put(data)?;
            self.pad()
        }

        fn put(&mut self, bytes: &[u8]) -> Result<()> {
            self.out.write_all(bytes)?;
            self.offset += bytes.len() as u64;
            Ok(())
        }

        fn pad(&mut self) -> Result<()> {
            let n = (4 - self.offset % 4) % 4;
            self.put(&[0; 3][..n as usize])
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// A reader written from the format description, to check the writer.
        fn read(mut buf: &[u8]) -> Vec<(Header, String, Vec<u8>)> {
            let total = buf.len();
            let mut out = Vec::new();
            loop {
                assert_eq!((total - buf.len()) % 4, 0, "every header starts 4-byte aligned");
                assert_eq!(&buf[..6], b"070701");
                let field = |i: usize| {
                    u32::from_str_radix(std::str::from_utf8(&buf[6 + 8 * i..14 + 8 * i]).unwrap(), 16)
                        .unwrap()
                };
                let h = Header {
                    ino: field(0),
                    mode: field(1),
                    uid: field(2),
                    gid: field(3),
                    nlink: field(4),
                    mtime: field(5),
                    filesize: field(6),
                    devmajor: field(7),
                    devminor: field(8),
                    rdevmajor: field(9),
                    rdevminor: field(10),
                    namesize: field(11),
                };
                assert_eq!(field(12), 0, "check");
                let name_end = HEADER_LEN + h.namesize as usize;
                assert_eq!(buf[name_end - 1], 0, "name ends in NUL");
                let name = String::from_utf8(buf[HEADER_LEN..name_end - 1].to_vec()).unwrap();
                let data_start = name_end.next_multiple_of(4);
                assert!(buf[name_end..data_start].iter().all(|&b| b == 0), "name padding is zero");
                let data_end = data_start + h.filesize as usize;
                let data = buf[data_start..data_end].to_vec();
                let next = data_end.next_multiple_of(4);
                assert!(buf[data_end..next].iter().all(|&b| b == 0), "data padding is zero");
                buf = &buf[next..];
                let end = name == "TRAILER!!!";
                out.push((h, name, data));
                if end {
                    assert!(buf.is_empty(), "nothing after the trailer");
                    return out;
                }
            }
        }

        #[test]
        fn header_bytes_follow_the_format() {
            let h = Header {
                ino: 1,
                mode: 0o100755,
                nlink: 1,
                filesize: 0x1234,
                namesize: 5,
                ..Header::default()
            };
            let expected = concat!(
                "070701", "00000001", "000081ed", "00000000", "00000000", "00000001", "00000000", "00001234",
                "00000000", "00000000", "00000000", "00000000", "00000005", "00000000"
            );
            assert_eq!(std::str::from_utf8(&h.encode()).unwrap(), expected);
        }

        #[test]
        fn round_trip() {
            let mut w = Writer::new(Vec::new());
            w.dir("bin", 0o755).unwrap();
            w.file("bin/busybox", 0o755, b"\x7fELF...").unwrap();
            w.symlink("bin/sh", "busybox").unwrap();
            w.char_device("dev/console", 0o600, 5, 1).unwrap();
            let entries = read(&w.finish().unwrap());
            let names: Vec<&str> = entries.iter().map(|(_, n, _)| n.as_str()).collect();
            assert_eq!(names, ["bin", "bin/busybox", "bin/sh", "dev/console", "TRAILER!!!"]);
            let (h, _, data) = &entries[1];
            assert_eq!((h.ino, h.mode, h.nlink, h.filesize, h.mtime), (2, 0o100755, 1, 7, 0));
            assert_eq!(data, b"\x7fELF...");
            assert_eq!(entries[0].0.mode, 0o040755);
            assert_eq!((entries[2].0.mode, entries[2].2.as_slice()), (0o120777, &b"busybox"[..]));
            let console = &entries[3].0;
            assert_eq!(
                (console.mode, console.rdevmajor, console.rdevminor, console.filesize),
                (0o020600, 5, 1, 0)
            );
            let trailer = &entries[4].0;
            assert_eq!((trailer.ino, trailer.mode, trailer.nlink, trailer.namesize), (0, 0, 1, 11));
        }

        #[test]
        fn padding_for_every_name_and_data_length() {
            for name_len in 1..=8 {
                for data_len in 0..=8 {
                    let name = "n".repeat(name_len);
                    let data = vec![0xa5; data_len];
                    let mut w = Writer::new(Vec::new());
                    w.file(&name, 0o644, &data).unwrap();
                    let bytes = w.finish().unwrap();
                    let entry =
                        (HEADER_LEN + name_len + 1).next_multiple_of(4) + data_len.next_multiple_of(4);
                    let trailer = (HEADER_LEN + 11).next_multiple_of(4);
                    assert_eq!(bytes.len(), entry + trailer, "name {name_len}, data {data_len}");
                    let entries = read(&bytes);
                    assert_eq!(
                        (entries[0].1.as_str(), entries[0].2.as_slice()),
                        (name.as_str(), data.as_slice())
                    );
                }
            }
        }

        #[test]
        fn refuses_bad_names() {
            let mut w = Writer::new(Vec::new());
            assert!(w.dir("/abs", 0o755).is_err());
            assert!(w.dir("", 0o755).is_err());
        }
    }
}

/// Which module files to load, in what order, from `modules.dep` (as
/// `depmod` writes it: `path: dep-path dep-path ...`, each line listing the
/// full closure of that module's dependencies).
mod modules {
    use anyhow::{bail, Context, Result};
    use std::collections::{BTreeMap, BTreeSet};

    /// A module's name from its file path: `kernel/.../nvme-core.ko.xz` →
    /// `nvme_core` (`-` and `_` are the same to the module loader).
    pub fn name(path: &str) -> String {
        let file = path.rsplit('/').next().unwrap_or(path);
        file.split(".ko").next().unwrap_or(file).replace('-', "_")
    }

    /// The module files (paths relative to `/lib/modules/<ver>/`) to load
    /// for `wanted`, dependencies first, each once. Names built into the
    /// kernel (`modules.builtin`) are skipped; unknown names are an error.
    pub fn load_order(dep: &str, builtin: &str, wanted: &[&str]) -> Result<Vec<String>> {
        let mut deps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut by_name: BTreeMap<String, &str> = BTreeMap::new();
        for (n, line) in dep.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (path, rest) =
                line.split_once(':').with_context(|| format!("modules.dep line {}: no ':'", n + 1))?;
            deps.insert(path.trim(), rest.split_whitespace().collect());
            by_name.insert(name(path.trim()), path.trim());
        }
        let builtin: BTreeSet<String> = builtin.lines().map(|l| name(l.trim())).collect();
        let mut order = Vec::new();
        let mut done = BTreeSet::new();
        for w in wanted {
            let w = w.replace('-', "_");
            match by_name.get(&w) {
                Some(path) => visit(path, &deps, &mut done, &mut Vec::new(), &mut order)?,
                None if builtin.contains(&w) => {}
                None => bail!("module {w} is neither in modules.dep nor built in"),
            }
        }
        Ok(order)
    }

    /// Depth-first, emitting a module after everything it depends on.
    fn visit<'a>(
        path: &'a str,
        deps: &BTreeMap<&'a str, Vec<&'a str>>,
        done: &mut BTreeSet<&'a str>,
        stack: &mut Vec<&'a str>,
        order: &mut Vec<String>,
    ) -> Result<()> {
        if done.contains(path) {
            return Ok(());
        }
        if stack.contains(&path) {
            bail!("modules.dep has a dependency cycle: {} -> {path}", stack.join(" -> "));
        }
        let Some(ds) = deps.get(path) else { bail!("modules.dep names {path} but has no line for it") };
        stack.push(path);
        // depmod lists the dependency loaded last first; modprobe walks the list backwards.
        for d in ds.iter().rev() {
            visit(d, deps, done, stack, order)?;
        }
        stack.pop();
        done.insert(path);
        order.push(path.to_owned());
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const DEP: &str = "\
kernel/drivers/nvme/host/nvme.ko.xz: kernel/drivers/nvme/host/nvme-core.ko.xz kernel/drivers/nvme/common/nvme-auth.ko.xz kernel/crypto/hkdf.ko.xz
kernel/drivers/nvme/host/nvme-core.ko.xz: kernel/drivers/nvme/common/nvme-auth.ko.xz kernel/crypto/hkdf.ko.xz
kernel/drivers/nvme/common/nvme-auth.ko.xz: kernel/crypto/hkdf.ko.xz
kernel/crypto/hkdf.ko.xz:
kernel/drivers/block/virtio_blk.ko.xz:
kernel/drivers/net/ethernet/intel/e1000e/e1000e.ko.xz: kernel/drivers/ptp/ptp.ko.xz kernel/drivers/pps/pps_core.ko.xz
kernel/drivers/ptp/ptp.ko.xz: kernel/drivers/pps/pps_core.ko.xz
kernel/drivers/pps/pps_core.ko.xz:
";
        const BUILTIN: &str = "kernel/drivers/virtio/virtio_pci.ko\n";

        fn position(order: &[String], module: &str) -> usize {
            order
                .iter()
                .position(|p| name(p) == module)
                .unwrap_or_else(|| panic!("{module} missing from {order:?}"))
        }

        #[test]
        fn names() {
            assert_eq!(name("kernel/drivers/nvme/host/nvme-core.ko.xz"), "nvme_core");
            assert_eq!(name("kernel/drivers/block/virtio_blk.ko"), "virtio_blk");
        }

        #[test]
        fn closure_in_load_order() {
            let order = load_order(DEP, BUILTIN, &["nvme", "virtio_pci", "e1000e", "nvme-core"]).unwrap();
            let names: Vec<String> = order.iter().map(|p| name(p)).collect();
            assert_eq!(names, ["hkdf", "nvme_auth", "nvme_core", "nvme", "pps_core", "ptp", "e1000e"]);
            assert!(position(&order, "nvme_core") < position(&order, "nvme"));
            assert_eq!(order[3], "kernel/drivers/nvme/host/nvme.ko.xz");
        }

        #[test]
        fn dependencies_first_whatever_the_listing_order() {
            // The same graph with each line's dependencies listed the other way round.
            let reversed: String = DEP
                .lines()
                .map(|l| {
                    let (p, r) = l.split_once(':').unwrap();
                    let mut d: Vec<&str> = r.split_whitespace().collect();
                    d.reverse();
                    format!("{p}: {}\n", d.join(" "))
                })
                .collect();
            let order = load_order(&reversed, "", &["nvme"]).unwrap();
            assert!(position(&order, "hkdf") < position(&order, "nvme_auth"));
            assert!(position(&order, "nvme_auth") < position(&order, "nvme_core"));
            assert!(position(&order, "nvme_core") < position(&order, "nvme"));
        }

        #[test]
        fn errors() {
            assert!(load_order(DEP, BUILTIN, &["no_such_module"]).is_err());
            assert!(load_order("a.ko: b.ko\nb.ko: a.ko\n", "", &["a"]).is_err(), "cycle");
            assert!(load_order("a.ko: c.ko\n", "", &["a"]).is_err(), "dangling dependency");
            assert!(load_order("a.ko c.ko\n", "", &["a"]).is_err(), "no colon");
        }
    }
}
