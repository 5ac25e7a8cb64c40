//! What the PVH loader handed over, checked once: the `hvm_start_info`
//! block and the command line (QEMU's `-append`), with `key=value` lookup.

use crate::boot::{HvmStartInfo, HVM_START_MAGIC};

/// The longest command line read.
const CMDLINE_MAX: usize = 4096;

/// Why the boot information was refused.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum BootInfoError {
    /// EBX did not point into mapped memory.
    NotMapped(u64),
    /// `hvm_start_info.magic` was not 0x336ec578.
    BadMagic(u32),
    /// The command line was unterminated within 4 KiB or not UTF-8.
    BadCmdline(u64),
}

/// The machine as the loader described it.
pub struct BootInfo {
    /// A copy of `hvm_start_info`.
    pub start: HvmStartInfo,
    /// The command line (empty if none).
    pub cmdline: &'static str,
}

impl BootInfo {
    /// Reads and checks the `hvm_start_info` at `pa`.
    pub fn read(pa: u64) -> Result<Self, BootInfoError> {
        let size = core::mem::size_of::<HvmStartInfo>();
        // SAFETY: the loader's block, in RAM below 1 MiB that nothing writes
        // after entry (the range is checked to be mapped).
        let raw = unsafe { crate::phys::bytes(pa, size) }.ok_or(BootInfoError::NotMapped(pa))?;
        // SAFETY: `raw` is `size` readable bytes; HvmStartInfo is plain
        // integers (any bit pattern valid); read_unaligned needs no alignment.
        let start = unsafe { (raw.as_ptr() as *const HvmStartInfo).read_unaligned() };
        if start.magic != HVM_START_MAGIC {
            return Err(BootInfoError::BadMagic(start.magic));
        }
        let cmdline = match start.cmdline_paddr {
            0 => "",
            at => {
                // SAFETY: the loader's command line, in RAM nothing writes.
                unsafe { crate::phys::c_str(at, CMDLINE_MAX) }.ok_or(BootInfoError::BadCmdline(at))?
            }
        };
        Ok(Self { start, cmdline })
    }

    /// The value of the first `key=value` word of the command line.
    pub fn arg(&self, key: &str) -> Option<&'static str> {
        self.cmdline.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
    }
}
