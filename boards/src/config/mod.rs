//! The partition configuration: the file a user writes to say which
//! partitions exist, what each one runs, and what it owns. The hypervisor
//! parses the configuration embedded in its image at boot; `cargo xtask
//! check-config` parses the same file on the host. Parsing needs `alloc`, not
//! `std`, and never panics on input.
//!
//! # Schema (TOML)
//!
//! ```toml
//! board = "qemu-virt"          # a boards::Board name: qemu-virt, rpi4
//! qemu = ["-device", "edu"]    # optional: QEMU arguments for the devices this
//!                              # configuration assigns (`cargo xtask run` adds them)
//!
//! [[partition]]
//! name = "dma-owner"           # unique, a-z 0-9 '-', 1..=31 characters
//! cpus = [0]                   # physical CPUs (0-based, the board's /cpus order);
//!                              # at least one; a CPU belongs to one partition
//! kernel = "builtin:demo"      # "builtin:<guest>" or a path relative to this file
//! initramfs = "initrd.img"     # optional, a path relative to this file, or
//!                              # "builtin:linux-initramfs" (built by xtask)
//! bootargs = "role=dma-owner"  # optional, the guest's /chosen/bootargs
//! console = "virtual"          # "virtual" (default): the hypervisor's emulated PL011,
//!                              # lines tagged with the partition name; or the name of
//!                              # one of this partition's devices marked uart = "pl011"
//! fault_policy = "log"         # log (default) | stop-partition | inject
//!
//! [[partition.memory]]         # at least one
//! guest = 0x4000_0000          # guest-physical base; default: same as host
//! host = 0x5000_0000           # host physical base, inside the board's partition RAM
//! size = "64M"                 # bytes, or a string with K/M/G/T (binary) suffix
//!
//! [[partition.device]]
//! name = "edu0"                # unique across the whole configuration
//! pci = "00:01.0"              # a PCI function, BUS:DEV.FN in hex (segment 0) ...
//! # mmio = [{ base = 0xfe340000, size = 0x100 }]   # ... or MMIO register blocks
//! # irqs = [158]               # MMIO devices: their SPIs, as GIC INTIDs (32..=1019)
//! # dma = true                 # MMIO devices: it masters DMA (PCI functions always do)
//! # uart = "pl011"             # MMIO devices: a UART the partition may use as console
//! bounce = false               # route its DMA through the hypervisor's bounce pool
//! ```
//!
//! Addresses, sizes, `base` and `size` take a TOML integer or a string
//! (`"0x1_0000_0000"`, `"64M"`). Memory bases and sizes must be multiples of
//! 4 KiB. MMIO is mapped into the partition at its own address and given out
//! in whole pages: two devices whose registers share a page conflict.
//!
//! # Rules
//!
//! [`Config::parse`] reports every error it finds (each with `line:col`, the
//! rule as an [`ErrorKind`], and the offending value), not just the first:
//! TOML syntax, unknown keys, missing keys, and then the rules of
//! [`Config::validate`]: names; CPUs (exist on the board, one partition
//! each); memory (aligned, non-empty, no wrap, inside
//! [`Board::partition_ram`](crate::Board::partition_ram), no host overlap
//! anywhere, no guest overlap within a partition); devices (one owner per
//! PCI function and per [`IommuGroup`], MMIO clear of RAM, the hypervisor's
//! console and other devices, interrupts given once); DMA (a device that
//! masters DMA and no IOMMU confines needs `bounce = true`: every device on a
//! board without an IOMMU, and MMIO devices everywhere, as the configuration
//! gives no StreamIDs for them); consoles (a device of the partition marked
//! as a UART).
//!
//! Examples: `examples/*.toml` at the repository root.

extern crate alloc;

mod error;
mod lower;
mod model;
mod raw;
mod source;
mod validate;

#[cfg(test)]
mod tests;

pub use error::{ConfigError, ErrorKind, Location};
pub use model::{
    iommu_group_of, Bdf, Config, Console, Device, DeviceKind, FaultPolicy, IommuGroup, Ipa, KernelSource,
    MemRegion, Partition, PhysAddr,
};
pub use validate::{MAX_BOOTARGS, PAGE, SPI_INTIDS};

use alloc::vec::Vec;
use error::{Lines, Sink};
use source::SourceMap;

fn sort(errors: &mut [ConfigError]) {
    errors.sort_by_key(|e| e.at.map_or((u32::MAX, u32::MAX), |a| (a.line, a.col)));
}

impl Config {
    /// Parses and validates `text`: the configuration, or every error found,
    /// in file order.
    pub fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
        let lines = Lines::new(text);
        let mut sink = Sink::new(Some(&lines));
        let lowered = lower::lower(text, &mut sink);
        let mut errors = sink.finish();
        let Some(board) = lowered.board else {
            return Err(errors);
        };
        if lowered.syntax_failed {
            return Err(errors);
        }
        let cfg = Config {
            board,
            partitions: lowered.partitions,
            qemu: lowered.qemu,
            source: Some(SourceMap { lines, parts: lowered.spans }),
        };
        if let Err(more) = cfg.validate() {
            errors.extend(more);
        }
        if errors.is_empty() {
            Ok(cfg)
        } else {
            sort(&mut errors);
            Err(errors)
        }
    }

    /// Checks the rules of the [module documentation](self) and returns every
    /// error. For a parsed configuration the errors have locations.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut sink = Sink::new(self.source.as_ref().map(|s| &s.lines));
        validate::validate(self, &mut sink);
        let errors = sink.finish();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Checks that the files named by `kernel = "<path>"` and `initramfs`
    /// exist, asking `exists` (which resolves the path relative to the
    /// configuration file). A host-side check: the hypervisor has no files.
    pub fn check_files(&self, mut exists: impl FnMut(&str) -> bool) -> Vec<ConfigError> {
        let mut sink = Sink::new(self.source.as_ref().map(|s| &s.lines));
        for (i, p) in self.partitions.iter().enumerate() {
            let spans = self.source.as_ref().and_then(|s| s.parts.get(i));
            if let KernelSource::Path(path) = &p.kernel {
                if !path.is_empty() && !exists(path) {
                    sink.push(
                        ErrorKind::FileNotFound,
                        spans.and_then(|s| s.kernel.as_ref()),
                        alloc::format!("partition \"{}\": kernel file \"{path}\" not found", p.name),
                    );
                }
            }
            if let Some(path) = p.initramfs.as_deref().filter(|p| !p.is_empty() && !p.starts_with("builtin:"))
            {
                if !exists(path) {
                    sink.push(
                        ErrorKind::FileNotFound,
                        spans.and_then(|s| s.initramfs.as_ref()),
                        alloc::format!("partition \"{}\": initramfs file \"{path}\" not found", p.name),
                    );
                }
            }
        }
        sink.finish()
    }
}
