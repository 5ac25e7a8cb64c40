//! Magazines, per-CPU caches and the depot: Linux's `iova_magazine`,
//! `iova_cpu_rcache` and `iova_rcache` (after Bonwick's magazine allocator).
//!
//! A magazine holds up to [`MAGAZINE_SIZE`] page numbers of one size class.
//! Each CPU keeps a *loaded* and a *previous* magazine per class, so it can
//! absorb a burst of frees or allocations of twice a magazine before it has
//! to trade a whole magazine with the depot, under the depot's lock. Only when
//! both the CPU and the depot are out of a class does the tree get involved.
//!
//! Nothing here locks: the caller holds the CPU's lock (for [`CpuRcache`]) or
//! the class's depot lock (for [`Depot`]); `allocator.rs` puts it together.

use alloc::vec::Vec;
use core::mem;

use super::IovaError;

/// Page numbers per magazine (Linux uses 127, to fit its header in 1 KiB).
pub const MAGAZINE_SIZE: usize = 128;

/// Size classes: 1, 2, 4, 8, 16 and 32 pages.
pub(crate) const CLASSES: usize = 6;

/// The largest request served by the caches, in pages. Smaller requests are
/// rounded up to a power of two so a cached range fits any request of its
/// class; larger ones go to the tree at their exact size.
pub const CACHED_MAX_PAGES: u64 = 1 << (CLASSES - 1);

/// The size class of a request of `pages` pages (1..=32), or `None`.
pub(crate) fn class_of(pages: u64) -> Option<usize> {
    if pages.wrapping_sub(1) < CACHED_MAX_PAGES {
        // ceil(log2(pages))
        Some((64 - (pages - 1).leading_zeros()) as usize)
    } else {
        None
    }
}

/// Pages of a class.
pub(crate) const fn class_pages(class: usize) -> u64 {
    1 << class
}

/// A fixed-capacity stack of page numbers. The buffer is allocated once and
/// never grows, so pushes and pops never reach the heap.
#[derive(Debug)]
pub(crate) struct Magazine {
    pfns: Vec<u64>,
}

impl Magazine {
    pub(crate) fn new() -> Result<Self, IovaError> {
        let mut pfns = Vec::new();
        pfns.try_reserve_exact(MAGAZINE_SIZE).map_err(|_| IovaError::NoMemory)?;
        Ok(Self { pfns })
    }

    #[cfg(all(test, not(loom)))]
    pub(crate) fn len(&self) -> usize {
        self.pfns.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pfns.is_empty()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.pfns.len() >= MAGAZINE_SIZE
    }

    /// Adds a page number; the caller checked [`Self::is_full`].
    pub(crate) fn push(&mut self, pfn: u64) {
        debug_assert!(!self.is_full());
        self.pfns.push(pfn);
    }

    /// Takes a page number whose `pages`-page range ends at or below `limit`
    /// (an exclusive page number). The most recently freed one if it fits
    /// (the common case, and the warmest in the IOTLB's neighbourhood), else
    /// the first that does (Linux's `iova_magazine_pop`).
    pub(crate) fn pop_below(&mut self, pages: u64, limit: u64) -> Option<u64> {
        let last = *self.pfns.last()?;
        if last + pages <= limit {
            self.pfns.pop()
        } else {
            let i = self.pfns.iter().position(|&p| p + pages <= limit)?;
            Some(self.pfns.swap_remove(i))
        }
    }

    /// Empties the magazine, yielding its page numbers.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = u64> + '_ {
        self.pfns.drain(..)
    }
}

/// One CPU's cache: a loaded and a previous magazine per class.
#[derive(Debug)]
pub(crate) struct CpuRcache {
    loaded: [Magazine; CLASSES],
    prev: [Magazine; CLASSES],
}

impl CpuRcache {
    pub(crate) fn new() -> Result<Self, IovaError> {
        Ok(Self { loaded: new_magazines()?, prev: new_magazines()? })
    }

    /// Takes a cached range of `class` ending at or below `limit`, trading
    /// an empty magazine for a full one with `depot` if both of this CPU's
    /// are empty. `depot` is only locked (called) then.
    pub(crate) fn get<'d>(
        &mut self,
        class: usize,
        limit: u64,
        depot: impl FnOnce() -> super::sync::LockGuard<'d, Depot>,
    ) -> Option<u64> {
        let pages = class_pages(class);
        if self.loaded[class].is_empty() {
            if !self.prev[class].is_empty() {
                mem::swap(&mut self.loaded[class], &mut self.prev[class]);
            } else {
                let mut d = depot();
                let full = d.full.pop()?;
                let empty = mem::replace(&mut self.loaded[class], full);
                d.spare.push(empty);
            }
        }
        self.loaded[class].pop_below(pages, limit)
    }

    /// Caches a freed range of `class`, or returns it if this CPU's
    /// magazines are full and so is the depot.
    ///
    /// When both magazines are full, the loaded one goes to the depot for
    /// an empty one. If the depot has no room, the loaded magazine comes
    /// back out through `overflow` (to be returned to the tree) and the
    /// page is cached in the emptied magazine.
    pub(crate) fn put<'d>(
        &mut self,
        class: usize,
        pfn: u64,
        depot: impl FnOnce() -> super::sync::LockGuard<'d, Depot>,
        overflow: impl FnOnce(&mut Magazine),
    ) {
        if self.loaded[class].is_full() {
            if !self.prev[class].is_full() {
                mem::swap(&mut self.loaded[class], &mut self.prev[class]);
            } else {
                let mut d = depot();
                if let Some(empty) = d.take_empty() {
                    let full = mem::replace(&mut self.loaded[class], empty);
                    d.full.push(full);
                } else {
                    drop(d);
                    overflow(&mut self.loaded[class]);
                }
            }
        }
        self.loaded[class].push(pfn);
    }

    /// Hands every magazine to `f` to be emptied.
    pub(crate) fn drain_all(&mut self, mut f: impl FnMut(usize, &mut Magazine)) {
        for (class, m) in self.loaded.iter_mut().enumerate() {
            f(class, m);
        }
        for (class, m) in self.prev.iter_mut().enumerate() {
            f(class, m);
        }
    }

    /// Ranges held, for tests.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn cached(&self) -> usize {
        self.loaded.iter().chain(&self.prev).map(Magazine::len).sum()
    }
}

fn new_magazines() -> Result<[Magazine; CLASSES], IovaError> {
    Ok([
        Magazine::new()?,
        Magazine::new()?,
        Magazine::new()?,
        Magazine::new()?,
        Magazine::new()?,
        Magazine::new()?,
    ])
}

/// The global stock of one class: full magazines, and the empty ones traded
/// for them, at most `max` in all. Both lists are allocated at their final
/// capacity up front, so trading never reaches the heap; a new empty
/// magazine is allocated only while the depot has not yet reached `max`.
#[derive(Debug)]
pub(crate) struct Depot {
    pub(crate) full: Vec<Magazine>,
    spare: Vec<Magazine>,
    max: usize,
}

impl Depot {
    pub(crate) fn new(max: usize) -> Result<Self, IovaError> {
        let mut full = Vec::new();
        let mut spare = Vec::new();
        full.try_reserve_exact(max).map_err(|_| IovaError::NoMemory)?;
        spare.try_reserve_exact(max).map_err(|_| IovaError::NoMemory)?;
        Ok(Self { full, spare, max })
    }

    /// An empty magazine for a full one about to be pushed, or `None` if the
    /// depot is full (or the heap refuses a new magazine).
    fn take_empty(&mut self) -> Option<Magazine> {
        if self.full.len() >= self.max {
            return None;
        }
        match self.spare.pop() {
            Some(m) => Some(m),
            // `full + spare <= max` holds: a spare is only missing when the
            // sum is below `max`.
            None => Magazine::new().ok(),
        }
    }

    /// Moves the full magazines out through `f` (which empties them) and
    /// keeps them as spares.
    pub(crate) fn drain(&mut self, mut f: impl FnMut(&mut Magazine)) {
        while let Some(mut m) = self.full.pop() {
            f(&mut m);
            self.spare.push(m);
        }
    }

    /// Ranges held, for tests.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn cached(&self) -> usize {
        self.full.iter().map(Magazine::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iova_size_classes() {
        let classes: Vec<_> = (0..=33).map(class_of).collect();
        assert_eq!(classes[0], None);
        assert_eq!(classes[1], Some(0));
        assert_eq!(classes[2], Some(1));
        assert_eq!(classes[3], Some(2));
        assert_eq!(classes[4], Some(2));
        assert_eq!(classes[5], Some(3));
        assert_eq!(classes[17], Some(5));
        assert_eq!(classes[32], Some(5));
        assert_eq!(classes[33], None);
        assert_eq!(class_of(u64::MAX), None);
        assert_eq!(class_pages(5), CACHED_MAX_PAGES);
    }

    #[test]
    fn iova_magazine_pop_respects_limit() {
        let mut m = Magazine::new().unwrap();
        m.push(10);
        m.push(1000);
        assert_eq!(m.pop_below(4, 100), Some(10));
        assert_eq!(m.pop_below(4, 100), None);
        assert_eq!(m.pop_below(4, 1004), Some(1000));
        assert!(m.is_empty());
        for i in 0..MAGAZINE_SIZE as u64 {
            m.push(i);
        }
        assert!(m.is_full());
        assert_eq!(m.pfns.capacity(), MAGAZINE_SIZE);
    }
}
