//! Errors of page-table construction and updates.

use core::fmt;

use crate::addr::Iova;

/// Why a map, unmap or completion was refused. The table is unchanged
/// whenever one of these is returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PgTableError {
    /// The size (`pgcount` or `len`) is zero.
    SizeZero,
    /// The page size is not one the table supports (see
    /// [`IoPageTable::page_sizes`](super::IoPageTable::page_sizes)).
    UnsupportedPageSize(u64),
    /// The input address is not aligned to the page size.
    UnalignedIova(Iova),
    /// The output address is not aligned to the page size.
    UnalignedPaddr(u64),
    /// The length is not a multiple of the smallest page size.
    UnalignedSize,
    /// Part of the input range lies at or above `1 << ias`.
    IovaOutOfRange,
    /// Part of the output range lies at or above `1 << oas`.
    PaddrOutOfRange,
    /// The permissions grant neither read nor write, which no format maps.
    NoAccess,
    /// Part of the range is already mapped: the address is where, in the
    /// request, the first conflict was found (the start of the requested part
    /// covered by the conflicting entry). Remapping needs an unmap and
    /// invalidation first (break-before-make).
    AlreadyMapped(Iova),
    /// Part of the range to unmap is not mapped, e.g. a double unmap: the
    /// address is the start of the first unmapped part found.
    NotMapped(Iova),
    /// The page allocator could not provide a table page.
    OutOfMemory,
    /// The gather holds work for a different page table.
    ForeignGather,
}

impl fmt::Display for PgTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SizeZero => f.write_str("size is zero"),
            Self::UnsupportedPageSize(s) => write!(f, "page size {s:#x} not supported"),
            Self::UnalignedIova(a) => write!(f, "IOVA {a:?} not aligned to the page size"),
            Self::UnalignedPaddr(a) => write!(f, "PA {a:#x} not aligned to the page size"),
            Self::UnalignedSize => f.write_str("length not a multiple of the page size"),
            Self::IovaOutOfRange => f.write_str("IOVA range beyond the input address size"),
            Self::PaddrOutOfRange => f.write_str("PA range beyond the output address size"),
            Self::NoAccess => f.write_str("mapping grants neither read nor write"),
            Self::AlreadyMapped(a) => write!(f, "IOVA {a:?} already mapped"),
            Self::NotMapped(a) => write!(f, "IOVA {a:?} not mapped"),
            Self::OutOfMemory => f.write_str("out of page-table memory"),
            Self::ForeignGather => f.write_str("gather belongs to another page table"),
        }
    }
}

impl core::error::Error for PgTableError {}

/// Why a page table could not be built with the requested geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// The input address size is outside what the format supports.
    UnsupportedIas(u32),
    /// The output address size is not one the format can encode (for
    /// VMSAv8-64: 32, 36, 40, 42, 44, 48, and 52 with the 64 KiB granule).
    UnsupportedOas(u32),
    /// The architecture requires concatenated initial tables for this
    /// combination, but more than 16 would be needed.
    ConcatenationImpossible,
    /// The root table could not be allocated.
    OutOfMemory,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnsupportedIas(b) => write!(f, "input address size {b} not supported"),
            Self::UnsupportedOas(b) => write!(f, "output address size {b} not supported"),
            Self::ConcatenationImpossible => {
                f.write_str("initial lookup needs more than 16 concatenated tables")
            }
            Self::OutOfMemory => f.write_str("out of memory for the root table"),
        }
    }
}

impl core::error::Error for ConfigError {}
