//! The invalidation record an unmap fills.

use alloc::vec::Vec;

use super::PgTableError;
use crate::addr::{Iova, PhysAddr};

/// A half-open range `[start, end)` of input addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IovaRange {
    /// First address in the range.
    pub start: Iova,
    /// First address after the range.
    pub end: Iova,
}

impl IovaRange {
    /// Length in bytes.
    pub const fn len(&self) -> u64 {
        self.end.0 - self.start.0
    }

    /// Whether the range is empty.
    pub const fn is_empty(&self) -> bool {
        self.end.0 <= self.start.0
    }
}

/// What an unmap left for the caller to do, in the spirit of Linux's
/// `iommu_iotlb_gather`: the input ranges to invalidate, whether any of them
/// lost a table entry (so a leaf-only invalidation is not enough), and the
/// table pages that may be freed once the invalidation has completed.
///
/// Ranges are merged with the previous one when they touch, so unmapping a
/// contiguous range yields one range however many pages it covered.
///
/// Use: unmap into a gather (several unmaps may share one), invalidate every
/// range in the IOMMU (SMMU: `CMD_TLBI_NH_VA`/`CMD_TLBI_S2_IPA`, `Leaf = 1`
/// only if [`tables_removed`](Self::tables_removed) is false, then
/// `CMD_SYNC`), then pass the gather to
/// [`IoPageTable::complete`](super::IoPageTable::complete).
#[must_use = "the gathered ranges must be invalidated and the gather completed"]
#[derive(Debug)]
pub struct IotlbGather {
    ranges: SmallVec<IovaRange, 2>,
    leaf_sizes: u64,
    tables_removed: bool,
    freed: SmallVec<PhysAddr, 8>,
    pending: SmallVec<(Iova, u8), 2>,
    owner: Option<PhysAddr>,
}

impl IotlbGather {
    /// An empty gather.
    pub const fn new() -> Self {
        Self {
            ranges: SmallVec::new(IovaRange { start: Iova(0), end: Iova(0) }),
            leaf_sizes: 0,
            tables_removed: false,
            freed: SmallVec::new(PhysAddr(0)),
            pending: SmallVec::new((Iova(0), 0)),
            owner: None,
        }
    }

    /// The input ranges to invalidate, in the order they were unmapped.
    pub fn ranges(&self) -> &[IovaRange] {
        self.ranges.as_slice()
    }

    /// Whether there is nothing to invalidate, free or install.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.freed.is_empty() && self.pending.is_empty()
    }

    /// Whether table (non-leaf) entries were removed: the invalidation must
    /// then also clear walk caches (SMMU: `Leaf = 0`).
    pub fn tables_removed(&self) -> bool {
        self.tables_removed
    }

    /// Sizes of the leaves (pages and blocks) removed, as a bitmap like
    /// [`IoPageTable::page_sizes`](super::IoPageTable::page_sizes). A driver
    /// that passes a level hint (SMMU `TTL`) must use it only when exactly one
    /// bit is set.
    pub fn leaf_sizes(&self) -> u64 {
        self.leaf_sizes
    }

    /// Number of table pages to free on completion.
    pub fn freed_tables(&self) -> usize {
        self.freed.len()
    }

    /// Number of block splits waiting for their new table to be installed.
    pub fn pending_splits(&self) -> usize {
        self.pending.len()
    }

    /// Records that `[start, end)` lost leaves of `leaf_size` bytes.
    #[inline(always)]
    pub(crate) fn add_range(&mut self, start: u64, end: u64, leaf_size: u64) {
        // Writes only on change: repeated unmaps then do not chain through
        // memory on every call.
        if self.leaf_sizes & leaf_size != leaf_size {
            self.leaf_sizes |= leaf_size;
        }
        if let Some(last) = self.ranges.last_mut() {
            if start <= last.end.0 && end >= last.start.0 {
                if start < last.start.0 {
                    last.start.0 = start;
                }
                if end > last.end.0 {
                    last.end.0 = end;
                }
                return;
            }
        }
        self.ranges.push(IovaRange { start: Iova(start), end: Iova(end) });
    }

    /// Records that a table entry covering `[start, end)` was removed.
    pub(crate) fn add_table_range(&mut self, start: u64, end: u64, leaf_sizes: u64) {
        self.tables_removed = true;
        self.add_range(start, end, leaf_sizes);
    }

    /// Records that table entries were removed.
    pub(crate) fn set_tables_removed(&mut self) {
        self.tables_removed = true;
    }

    /// Queues a table page to free on completion.
    pub(crate) fn push_freed(&mut self, pa: PhysAddr) {
        self.freed.push(pa);
    }

    /// Queues the installation of a split table for the entry at `level`
    /// covering `iova`.
    pub(crate) fn push_pending(&mut self, iova: Iova, level: u8) {
        self.pending.push((iova, level));
    }

    /// Ties the gather to the table whose root is `owner`.
    #[inline]
    pub(crate) fn claim(&mut self, owner: PhysAddr) -> Result<(), PgTableError> {
        match self.owner {
            Some(o) if o == owner => Ok(()),
            Some(_) => Err(PgTableError::ForeignGather),
            None => {
                self.owner = Some(owner);
                Ok(())
            }
        }
    }

    /// Whether the gather is already tied to the table whose root is `owner`.
    #[inline(always)]
    pub(crate) fn owned_exactly_by(&self, owner: PhysAddr) -> bool {
        self.owner == Some(owner)
    }

    /// Whether the gather may be completed by the table whose root is `owner`.
    pub(crate) fn owned_by(&self, owner: PhysAddr) -> bool {
        self.owner.is_none_or(|o| o == owner)
    }

    /// The pending installations, in order.
    pub(crate) fn pending(&self) -> &[(Iova, u8)] {
        self.pending.as_slice()
    }

    /// The table pages to free.
    pub(crate) fn freed(&self) -> &[PhysAddr] {
        self.freed.as_slice()
    }

    /// Empties the gather for reuse, keeping its allocations.
    pub(crate) fn reset(&mut self) {
        self.ranges.clear();
        self.freed.clear();
        self.pending.clear();
        self.leaf_sizes = 0;
        self.tables_removed = false;
        self.owner = None;
    }
}

impl Default for IotlbGather {
    fn default() -> Self {
        Self::new()
    }
}

/// A vector whose first `N` elements live inline, so that the usual gather
/// (one range, a few tables) costs no heap allocation.
#[derive(Debug)]
struct SmallVec<T: Copy, const N: usize> {
    inline: [T; N],
    len: usize,
    /// All elements once more than `N` were pushed.
    heap: Vec<T>,
}

impl<T: Copy, const N: usize> SmallVec<T, N> {
    const fn new(fill: T) -> Self {
        Self { inline: [fill; N], len: 0, heap: Vec::new() }
    }

    #[inline]
    fn push(&mut self, v: T) {
        if self.heap.is_empty() && self.len < N {
            self.inline[self.len] = v;
            self.len += 1;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline[..self.len]);
            }
            self.heap.push(v);
        }
    }

    #[inline]
    fn as_slice(&self) -> &[T] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }

    #[inline(always)]
    fn last_mut(&mut self) -> Option<&mut T> {
        if self.heap.is_empty() {
            self.inline[..self.len].last_mut()
        } else {
            self.heap.last_mut()
        }
    }

    fn len(&self) -> usize {
        self.as_slice().len()
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the vector, keeping the heap capacity.
    fn clear(&mut self) {
        self.len = 0;
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_and_overlapping_ranges_merge() {
        let mut g = IotlbGather::new();
        for i in 0..512u64 {
            g.add_range(0x1000 * i, 0x1000 * (i + 1), 0x1000);
        }
        assert_eq!(g.ranges(), &[IovaRange { start: Iova(0), end: Iova(0x20_0000) }]);
        // Overlap (a split recording its whole block) merges too.
        g.add_range(0x1f_f000, 0x40_0000, 0x20_0000);
        assert_eq!(g.ranges().len(), 1);
        assert_eq!(g.ranges()[0].len(), 0x40_0000);
        assert_eq!(g.leaf_sizes(), 0x1000 | 0x20_0000);
        assert!(!g.tables_removed());
    }

    #[test]
    fn disjoint_ranges_stay_apart() {
        let mut g = IotlbGather::new();
        g.add_range(0x1000, 0x2000, 0x1000);
        g.add_table_range(0x4000, 0x5000, 0x1000);
        assert_eq!(g.ranges().len(), 2);
        assert!(g.tables_removed());
        g.reset();
        assert!(g.is_empty());
        assert!(!g.tables_removed());
    }

    #[test]
    fn many_entries_spill_to_the_heap_in_order() {
        let mut g = IotlbGather::new();
        for i in 0..20u64 {
            g.add_range(0x2000 * i, 0x2000 * i + 0x1000, 0x1000);
            g.push_freed(PhysAddr(i));
        }
        assert_eq!(g.ranges().len(), 20);
        assert_eq!(g.ranges()[19].start, Iova(0x2000 * 19));
        assert_eq!(
            g.freed().iter().map(|p| p.0).collect::<alloc::vec::Vec<_>>(),
            (0..20).collect::<alloc::vec::Vec<_>>()
        );
        g.reset();
        assert!(g.is_empty());
        g.push_freed(PhysAddr(7));
        assert_eq!(g.freed(), &[PhysAddr(7)]);
    }

    #[test]
    fn claim_rejects_a_second_owner() {
        let mut g = IotlbGather::new();
        assert_eq!(g.claim(PhysAddr(0x1000)), Ok(()));
        assert_eq!(g.claim(PhysAddr(0x1000)), Ok(()));
        assert_eq!(g.claim(PhysAddr(0x2000)), Err(PgTableError::ForeignGather));
        assert!(!g.owned_by(PhysAddr(0x2000)));
    }
}
