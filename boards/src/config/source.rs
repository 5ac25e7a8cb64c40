//! Where each value of a parsed configuration was written, kept beside the
//! typed [`Config`](super::Config) so that checks made after parsing still
//! point at a line. Every list here is index-aligned with its counterpart in
//! the model: an entry that failed to parse is in neither.

use super::alloc::vec::Vec;
use super::error::{Lines, Span};

/// Spans of a whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SourceMap {
    pub lines: Lines,
    pub parts: Vec<PartSpans>,
}

/// Spans of one `[[partition]]`. A `None` key span means the key was absent
/// (and reported as missing when it is required).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PartSpans {
    pub table: Span,
    pub name: Option<Span>,
    pub cpus: Option<Span>,
    pub cpu: Vec<Span>,
    /// Some CPU index did not parse (so "no CPUs" would mislead).
    pub cpus_dropped: bool,
    pub kernel: Option<Span>,
    pub initramfs: Option<Span>,
    pub bootargs: Option<Span>,
    pub console: Option<Span>,
    pub memory: Vec<MemSpans>,
    /// Some `[[partition.memory]]` did not parse (so "no memory" would mislead).
    pub memory_dropped: bool,
    pub devices: Vec<DevSpans>,
    /// Some `[[partition.device]]` did not parse.
    pub devices_dropped: bool,
}

/// Spans of one `[[partition.memory]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MemSpans {
    pub table: Span,
    pub guest: Option<Span>,
    pub host: Option<Span>,
    pub size: Option<Span>,
}

/// Spans of one `[[partition.device]]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DevSpans {
    pub table: Span,
    pub name: Option<Span>,
    pub pci: Option<Span>,
    pub mmio: Vec<Span>,
    pub irq: Vec<Span>,
    pub dma: Option<Span>,
    pub bounce: Option<Span>,
}
