//! The device tree the loader handed over: found, bounds-checked, parsed
//! into a [`boards::Platform`], and kept (its memory stays reserved).

use crate::mem::Range;
use boards::platform::{Gic, Region};
use boards::{DtError, Platform};

/// Largest DTB accepted. booting.rst says 2 MiB, but QEMU grows a DTB given
/// with `-dtb` past that (FDT_NOP padding), so the parser's own bound applies.
const MAX_DTB_SIZE: usize = boards::dt::MAX_TOTAL_SIZE;
/// Bytes of the FDT header read before trusting its `totalsize`.
const HEADER_LEN: usize = 40;

/// Why the device tree was refused.
#[derive(Clone, Copy, defmt::Format)]
pub enum LoadError {
    /// x0 was 0: the loader passed no device tree.
    Missing,
    /// The address is not 8-byte aligned (booting.rst requires it).
    Misaligned,
    /// The header claims more than booting.rst allows.
    TooLarge {
        /// `totalsize` from the header.
        size: usize,
    },
    /// The blob did not parse.
    Invalid(DtError),
}

/// The parsed device tree and where its blob lives.
pub struct Dt {
    /// What the DT says the machine is.
    pub platform: Platform<'static>,
    /// The blob's physical range (not to be reused).
    pub range: Range,
    /// The blob itself.
    pub blob: &'static [u8],
}

/// Validates and parses the blob at `addr`.
pub fn load(addr: usize, board: &boards::Board) -> Result<Dt, LoadError> {
    if addr == 0 {
        return Err(LoadError::Missing);
    }
    if addr % 8 != 0 {
        return Err(LoadError::Misaligned);
    }
    // SAFETY: the loader passed this address as the DTB (booting.rst); the
    // MMU is off, so every physical address is accessible, and only the
    // 40-byte header is read before its size is checked.
    let header = unsafe { core::slice::from_raw_parts(addr as *const u8, HEADER_LEN) };
    let size = boards::dt::header_total_size(header).map_err(LoadError::Invalid)?;
    if size > MAX_DTB_SIZE {
        return Err(LoadError::TooLarge { size });
    }
    // SAFETY: as above; `size` is bounded by MAX_DTB_SIZE and the blob is
    // never written: its memory stays reserved for the whole run.
    let blob: &'static [u8] = unsafe { core::slice::from_raw_parts(addr as *const u8, size) };
    let mut platform = boards::dt::discover(blob).map_err(LoadError::Invalid)?;
    let applied = board.apply_fallbacks(&mut platform);
    if applied != boards::board::Applied::default() {
        defmt::info!("filled in from the board description: {}", applied);
    }
    Ok(Dt { platform, range: Range { start: addr as u64, end: (addr + size) as u64 }, blob })
}

/// Every MMIO region the hypervisor itself touches, as the DT names them.
pub fn device_regions<'a>(p: &'a Platform<'_>) -> impl Iterator<Item = Region> + 'a {
    let uart = p.uart.iter().map(|u| Region { base: u.base, size: u.size });
    let gic: heapless::Vec<Region, 8> = match &p.gic {
        Gic::V3(g) => core::iter::once(g.dist).chain(g.redists.iter().copied()).chain(g.its).collect(),
        Gic::V2(g) => [Some(g.dist), Some(g.cpu), g.hyp, g.vcpu].into_iter().flatten().collect(),
    };
    let smmus = p.smmus.iter().map(|s| Region { base: s.base, size: s.size });
    let ecam = p.pcie.iter().map(|h| h.ecam);
    let windows =
        p.pcie.iter().flat_map(|h| h.windows.iter().map(|w| Region { base: w.cpu_addr, size: w.size }));
    uart.chain(gic).chain(smmus).chain(ecam).chain(windows)
}
