//! What is wrong with a configuration, and where: every error carries the
//! rule it broke ([`ErrorKind`]), a message naming the offending value, and
//! the line and column in the file when the configuration was parsed.

use super::alloc::{string::String, vec::Vec};
use core::fmt;
use core::ops::Range;

/// A byte range in the configuration text.
pub(crate) type Span = Range<usize>;

/// A position in the configuration text, both 1-based; the column counts
/// characters, not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Location {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub col: u32,
}

/// The rule a configuration broke. Tests (and tools) match on this; the
/// message is for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Not TOML, or a value of the wrong type.
    Syntax,
    /// A key the schema does not have.
    UnknownKey,
    /// A required key is absent.
    Missing,
    /// A value that does not parse (size, PCI address, kernel, ...).
    BadValue,
    /// `board` names no known board.
    UnknownBoard,
    /// A name with characters outside `[a-z0-9-]` or not 1..=31 long.
    BadName,
    /// Two partitions, or two devices, with one name.
    DuplicateName,
    /// A partition without CPUs.
    NoCpus,
    /// A CPU index the board does not have.
    CpuOutOfRange,
    /// A CPU given to two partitions, or listed twice.
    CpuShared,
    /// A partition without memory.
    NoMemory,
    /// A base or size that is not a multiple of 4 KiB.
    Misaligned,
    /// A region of size 0.
    ZeroSize,
    /// A region that runs past the top of the 64-bit address space.
    Overflow,
    /// Two partitions' (or one partition's) host memory overlaps.
    HostOverlap,
    /// Two guest-physical regions of one partition overlap.
    GuestOverlap,
    /// Host memory outside the RAM the board leaves to partitions.
    OutsidePartitionRam,
    /// A PCI function given to two partitions.
    PciShared,
    /// The functions of one IOMMU group given to different partitions.
    IommuGroupSplit,
    /// A device's MMIO overlaps another device, RAM, or the hypervisor's
    /// console.
    MmioOverlap,
    /// An interrupt given twice, or not an SPI.
    BadIrq,
    /// A DMA-capable device no IOMMU confines, without `bounce = true`.
    DmaWithoutIommu,
    /// A device description that contradicts itself (PCI and MMIO, ...).
    BadDevice,
    /// `console` names a device this partition does not have, or one that
    /// is not a UART.
    BadConsole,
    /// A kernel or initramfs file that does not exist (host-side check,
    /// [`Config::check_files`](super::Config::check_files)).
    FileNotFound,
    /// No `[[partition]]` at all.
    NoPartitions,
}

/// One thing wrong with a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The rule broken.
    pub kind: ErrorKind,
    /// Where, if the configuration came from text.
    pub at: Option<Location>,
    /// What is wrong, naming the partition, device and offending value.
    pub message: String,
}

impl fmt::Display for ConfigError {
    /// `LINE:COL: message`, or just the message without a location. A tool
    /// prefixes the file name to get `FILE:LINE:COL: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.at {
            Some(at) => write!(f, "{}:{}: {}", at.line, at.col, self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Turns byte offsets of one text into [`Location`]s.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Lines {
    text: String,
}

impl Lines {
    pub(crate) fn new(text: &str) -> Self {
        Self { text: text.into() }
    }

    /// The line and column of byte `offset` (clamped to the text, and moved
    /// back to a character boundary).
    pub(crate) fn locate(&self, offset: usize) -> Location {
        let mut at = offset.min(self.text.len());
        while !self.text.is_char_boundary(at) {
            at -= 1;
        }
        let before = &self.text[..at];
        let line_start = before.rfind('\n').map_or(0, |n| n + 1);
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let col = before[line_start..].chars().count() + 1;
        Location { line: sat_u32(line), col: sat_u32(col) }
    }
}

fn sat_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Collects errors, locating spans as they are added.
pub(crate) struct Sink<'a> {
    lines: Option<&'a Lines>,
    pub(crate) errors: Vec<ConfigError>,
}

impl<'a> Sink<'a> {
    pub(crate) fn new(lines: Option<&'a Lines>) -> Self {
        Self { lines, errors: Vec::new() }
    }

    /// Records `message` of `kind` at `span` (if known).
    pub(crate) fn push(&mut self, kind: ErrorKind, span: Option<&Span>, message: String) {
        let at = match (self.lines, span) {
            (Some(lines), Some(span)) => Some(lines.locate(span.start)),
            _ => None,
        };
        self.errors.push(ConfigError { kind, at, message });
    }

    /// The errors, ordered by position (unlocated ones last, in the order
    /// found).
    pub(crate) fn finish(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|e| e.at.map_or((u32::MAX, u32::MAX), |a| (a.line, a.col)));
        self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_and_count_characters() {
        let l = Lines::new("ab\nçd = 1\n");
        assert_eq!(l.locate(0), Location { line: 1, col: 1 });
        assert_eq!(l.locate(2), Location { line: 1, col: 3 });
        assert_eq!(l.locate(3), Location { line: 2, col: 1 });
        // 'ç' is two bytes: offset 5 is the 'd', column 2.
        assert_eq!(l.locate(5), Location { line: 2, col: 2 });
        // Inside 'ç': moved back to its start.
        assert_eq!(l.locate(4), Location { line: 2, col: 1 });
        assert_eq!(l.locate(1000), Location { line: 3, col: 1 });
    }
}
