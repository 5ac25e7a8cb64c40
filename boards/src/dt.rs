//! Device-tree discovery: a flattened device tree (DT spec v0.4 ch. 5) in,
//! a [`Platform`] out.
//!
//! The blob is untrusted. [`header_total_size`] checks the header before the
//! caller maps or slices anything; [`discover`] then has dtoolkit validate the
//! whole structure block (tokens, names, offsets) before anything is read, and
//! every walk here is bounded in depth ([`MAX_DEPTH`]) and nodes
//! ([`MAX_NODES`]). Any input gives a `Platform` or a [`DtError`], never a
//! panic or an endless loop (see `tests/corrupt.rs`).

mod cells;
mod console;
mod cpus;
mod error;
mod gic;
mod irq;
mod memory;
mod pci;
mod smmu;
mod timer;
mod translate;
mod walk;

use dtoolkit::fdt::Fdt;
use heapless::Vec;

pub use self::error::{DtError, NodePath, NODE_PATH_MAX};
use self::walk::{find_path, walk, Ancestry, At, Flow, Located};
pub use self::walk::{MAX_DEPTH, MAX_NODES};
use crate::platform::{Platform, StrList, MAX_PCIE, MAX_SMMUS};

/// The FDT magic number.
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// Bytes of the FDT header (version 17).
pub const HEADER_SIZE: usize = 40;
/// Largest `totalsize` accepted. QEMU re-emitting a `-dtb` grows the `virt`
/// tree past 2 MiB, so the limit is well above that.
pub const MAX_TOTAL_SIZE: usize = 16 << 20;
/// The FDT version this crate reads.
const FDT_VERSION: u32 = 17;

/// Checks the 40-byte header at the start of `header` and returns its
/// `totalsize`: how many bytes the caller must make available (and no more)
/// before calling [`discover`].
pub fn header_total_size(header: &[u8]) -> Result<usize, DtError> {
    let Some(h) = header.first_chunk::<HEADER_SIZE>() else {
        return Err(DtError::HeaderTooShort { len: header.len() });
    };
    let word = |i: usize| {
        let mut w = [0u8; 4];
        w.copy_from_slice(&h[i * 4..i * 4 + 4]);
        u32::from_be_bytes(w)
    };
    let (magic, total_size, version, last_compatible) = (word(0), word(1), word(5), word(6));
    if magic != FDT_MAGIC {
        return Err(DtError::BadMagic { found: magic });
    }
    if !(last_compatible..=version).contains(&FDT_VERSION) {
        return Err(DtError::UnsupportedVersion { version, last_compatible });
    }
    let size = total_size as usize;
    if !(HEADER_SIZE..=MAX_TOTAL_SIZE).contains(&size) {
        return Err(DtError::BadTotalSize { total_size });
    }
    Ok(size)
}

/// Reads the machine description out of a device tree blob. `blob` may be
/// longer than the header's `totalsize` (the rest is ignored), not shorter.
pub fn discover(blob: &[u8]) -> Result<Platform<'_>, DtError> {
    let total = header_total_size(blob)?;
    let blob = blob.get(..total).ok_or(DtError::Truncated { header_says: total, blob_has: blob.len() })?;
    let fdt = Fdt::new(blob).map_err(|e| DtError::from_parse(&e))?;

    let no_ancestors = Ancestry::new();
    let root = At { anc: &no_ancestors, node: fdt.root() };
    let model = root.str("model")?;
    let bootargs = match find_path(fdt, "/chosen")? {
        Some(chosen) => chosen.at().str("bootargs")?,
        None => None,
    };
    let compatible = StrList::new(root.prop("compatible").unwrap_or(&[]));

    let memory = memory::memory(fdt)?;
    let reserved = memory::reserved(fdt)?;
    let cpus = cpus::cpus(fdt)?;
    let psci = cpus::psci(fdt)?;
    let (gic, target) = gic::find(fdt)?;

    let mut uart = match console::stdout_node(fdt)? {
        Some(node) if console::is_pl011(&node.at()) => Some(console::pl011(fdt, &node.at(), &target)?),
        _ => None,
    };

    // One walk for everything found by `compatible`.
    let mut first_pl011: Option<Located<'_>> = None;
    let mut smmus = Vec::new();
    let mut pcie = Vec::new();
    let mut timer = None;
    walk(fdt, |anc, node| {
        let at = At { anc, node };
        let Some(compat) = at.prop("compatible") else {
            return Ok(Flow::Descend);
        };
        let has = |c: &str| cells::stringlist_contains(compat, c);
        if has(console::PL011) {
            if uart.is_none() && first_pl011.is_none() && at.is_enabled() {
                first_pl011 = Some(Located { anc: *anc, node });
            }
        } else if has(smmu::SMMU_V3) {
            if at.is_enabled() {
                smmus
                    .push(smmu::parse(&at, &target)?)
                    .map_err(|_| DtError::TooMany { list: "SMMUs", capacity: MAX_SMMUS })?;
            }
        } else if has(pci::ECAM) {
            if at.is_enabled() {
                pcie.push(pci::parse(fdt, &at, &target)?)
                    .map_err(|_| DtError::TooMany { list: "PCIe host bridges", capacity: MAX_PCIE })?;
            }
        } else if has(timer::ARMV8_TIMER) && timer.is_none() {
            timer = timer::parse(&at, &target)?;
        }
        Ok(Flow::Descend)
    })?;
    if let Some(node) = first_pl011 {
        uart = Some(console::pl011(fdt, &node.at(), &target)?);
    }

    Ok(Platform {
        model,
        compatible,
        bootargs,
        boot_cpuid: fdt.boot_cpuid_phys(),
        memory,
        reserved,
        cpus,
        psci,
        uart,
        gic,
        smmus,
        pcie,
        timer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(magic: u32, total: u32, version: u32, last: u32) -> [u8; 40] {
        let mut h = [0u8; 40];
        h[0..4].copy_from_slice(&magic.to_be_bytes());
        h[4..8].copy_from_slice(&total.to_be_bytes());
        h[20..24].copy_from_slice(&version.to_be_bytes());
        h[24..28].copy_from_slice(&last.to_be_bytes());
        h
    }

    #[test]
    fn header_checks() {
        assert_eq!(header_total_size(&header(FDT_MAGIC, 0x1000, 17, 16)), Ok(0x1000));
        assert_eq!(
            header_total_size(&header(FDT_MAGIC, 0x1000, 17, 16)[..39]),
            Err(DtError::HeaderTooShort { len: 39 })
        );
        assert_eq!(
            header_total_size(&header(0xedfe_0dd0, 0x1000, 17, 16)),
            Err(DtError::BadMagic { found: 0xedfe_0dd0 })
        );
        assert_eq!(
            header_total_size(&header(FDT_MAGIC, 0x1000, 16, 16)),
            Err(DtError::UnsupportedVersion { version: 16, last_compatible: 16 })
        );
        assert_eq!(
            header_total_size(&header(FDT_MAGIC, 0x1000, 20, 18)),
            Err(DtError::UnsupportedVersion { version: 20, last_compatible: 18 })
        );
        // A newer version that is still compatible with 17 is fine.
        assert_eq!(header_total_size(&header(FDT_MAGIC, 64, 18, 16)), Ok(64));
        for bad in [0, 39, (MAX_TOTAL_SIZE + 1) as u32, u32::MAX] {
            assert_eq!(
                header_total_size(&header(FDT_MAGIC, bad, 17, 16)),
                Err(DtError::BadTotalSize { total_size: bad })
            );
        }
    }

    #[test]
    fn discover_wants_the_whole_blob() {
        let h = header(FDT_MAGIC, 0x100, 17, 16);
        assert_eq!(discover(&h).unwrap_err(), DtError::Truncated { header_says: 0x100, blob_has: 40 });
    }
}
