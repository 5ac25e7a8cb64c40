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

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::mem;

use super::IovaError;

/// Page numbers per magazine (Linux uses 127, to fit its header in 1 KiB).
/// A power of two: `magazine.rs` masks indices with it.
pub const MAGAZINE_SIZE: usize = 128;
const _: () = assert!(MAGAZINE_SIZE.is_power_of_two());

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

/// A fixed-capacity stack of page numbers: a boxed array and a count, so a
/// push or pop is one indexed access with no capacity check or growth path,
/// and trading a magazine moves two words.
#[derive(Debug)]
pub(crate) struct Magazine {
    len: usize,
    pfns: Box<[u64; MAGAZINE_SIZE]>,
}

impl Magazine {
    pub(crate) fn new() -> Result<Self, IovaError> {
        // `Box::new` would abort on a refused allocation: go through a
        // vector, which can report it.
        let mut v = Vec::new();
        v.try_reserve_exact(MAGAZINE_SIZE).map_err(|_| IovaError::NoMemory)?;
        v.resize(MAGAZINE_SIZE, 0);
        let pfns = v.into_boxed_slice().try_into().map_err(|_| IovaError::NoMemory)?;
        Ok(Self { len: 0, pfns })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub(crate) fn is_full(&self) -> bool {
        self.len >= MAGAZINE_SIZE
    }

    /// Adds a page number; the caller checked [`Self::is_full`].
    #[inline]
    pub(crate) fn push(&mut self, pfn: u64) {
        debug_assert!(!self.is_full());
        // `len < MAGAZINE_SIZE` here, so the mask changes nothing; it only
        // spares the bounds check the caller's `is_full` already did.
        self.pfns[self.len % MAGAZINE_SIZE] = pfn;
        self.len += 1;
    }

    /// Takes a page number whose `pages`-page range ends at or below `limit`
    /// (an exclusive page number). The most recently freed one if it fits
    /// (the common case, and the warmest in the IOTLB's neighbourhood), else
    /// the first that does (Linux's `iova_magazine_pop`).
    #[inline]
    pub(crate) fn pop_below(&mut self, pages: u64, limit: u64) -> Option<u64> {
        let top = self.len.checked_sub(1)?;
        // `len <= MAGAZINE_SIZE`: as in `push`, the mask only drops a check.
        let last = self.pfns[top % MAGAZINE_SIZE];
        if last + pages <= limit {
            self.len = top;
            Some(last)
        } else {
            self.pop_below_slow(pages, limit)
        }
    }

    /// [`Self::pop_below`] when the top does not fit: a linear search, the
    /// last page number moved into the hole.
    #[cold]
    #[inline(never)]
    fn pop_below_slow(&mut self, pages: u64, limit: u64) -> Option<u64> {
        let i = self.pfns[..self.len].iter().position(|&p| p + pages <= limit)?;
        let pfn = self.pfns[i];
        self.len -= 1;
        self.pfns[i] = self.pfns[self.len];
        Some(pfn)
    }

    /// Empties the magazine, yielding its page numbers.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = u64> + '_ {
        let n = mem::take(&mut self.len);
        self.pfns[..n].iter().copied()
    }
}

/// One class of a CPU's cache: its loaded and previous magazines, side by
/// side (one cache line holds both).
#[derive(Debug)]
struct ClassCache {
    loaded: Magazine,
    prev: Magazine,
}

/// One CPU's cache: a loaded and a previous magazine per class.
#[derive(Debug)]
pub(crate) struct CpuRcache {
    classes: [ClassCache; CLASSES],
}

impl CpuRcache {
    pub(crate) fn new() -> Result<Self, IovaError> {
        let class = || Ok::<_, IovaError>(ClassCache { loaded: Magazine::new()?, prev: Magazine::new()? });
        Ok(Self { classes: [class()?, class()?, class()?, class()?, class()?, class()?] })
    }

    /// Takes a cached range of `class` ending at or below `limit`, trading
    /// an empty magazine for a full one with `depot` if both of this CPU's
    /// are empty. `depot` is only locked (called) then.
    #[inline]
    pub(crate) fn get<'d>(
        &mut self,
        class: usize,
        limit: u64,
        depot: impl FnOnce() -> super::sync::LockGuard<'d, Depot>,
    ) -> Option<u64> {
        let c = &mut self.classes[class];
        if c.loaded.is_empty() {
            c.reload(depot)?;
        }
        c.loaded.pop_below(class_pages(class), limit)
    }

    /// Caches a freed range of `class`, or returns it if this CPU's
    /// magazines are full and so is the depot.
    ///
    /// When both magazines are full, the loaded one goes to the depot for
    /// an empty one. If the depot has no room, the loaded magazine comes
    /// back out through `overflow` (to be returned to the tree) and the
    /// page is cached in the emptied magazine.
    #[inline]
    pub(crate) fn put<'d>(
        &mut self,
        class: usize,
        pfn: u64,
        depot: impl FnOnce() -> super::sync::LockGuard<'d, Depot>,
        overflow: impl FnOnce(&mut Magazine),
    ) {
        let c = &mut self.classes[class];
        if c.loaded.is_full() {
            c.unload(depot, overflow);
        }
        c.loaded.push(pfn);
    }

    /// Hands every magazine to `f` to be emptied.
    pub(crate) fn drain_all(&mut self, mut f: impl FnMut(usize, &mut Magazine)) {
        for (class, c) in self.classes.iter_mut().enumerate() {
            f(class, &mut c.loaded);
            f(class, &mut c.prev);
        }
    }

    /// Ranges held, for tests.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn cached(&self) -> usize {
        self.classes.iter().map(|c| c.loaded.len() + c.prev.len()).sum()
    }
}

impl ClassCache {
    /// Makes the loaded magazine non-empty: the previous one if it holds
    /// something, else a full one from the depot (`None` if it has none).
    #[cold]
    #[inline(never)]
    fn reload<'d>(&mut self, depot: impl FnOnce() -> super::sync::LockGuard<'d, Depot>) -> Option<()> {
        if !self.prev.is_empty() {
            mem::swap(&mut self.loaded, &mut self.prev);
        } else {
            let mut d = depot();
            let full = d.full.pop()?;
            let empty = mem::replace(&mut self.loaded, full);
            d.spare.push(empty);
        }
        Some(())
    }

    /// Makes the loaded magazine non-full: the previous one if it has room,
    /// else an empty one from the depot for the full one, else the loaded
    /// one emptied through `overflow`.
    #[cold]
    #[inline(never)]
    fn unload<'d>(
        &mut self,
        depot: impl FnOnce() -> super::sync::LockGuard<'d, Depot>,
        overflow: impl FnOnce(&mut Magazine),
    ) {
        if !self.prev.is_full() {
            mem::swap(&mut self.loaded, &mut self.prev);
        } else {
            let mut d = depot();
            if let Some(empty) = d.take_empty() {
                let full = mem::replace(&mut self.loaded, empty);
                d.full.push(full);
            } else {
                drop(d);
                overflow(&mut self.loaded);
            }
        }
    }
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
        // Not the top: found by the search, the top moved into its place.
        assert_eq!(m.pop_below(1, 3), Some(0));
        assert_eq!(m.len(), MAGAZINE_SIZE - 1);
        assert_eq!(m.pop_below(1, 3), Some(1));
        assert_eq!(m.pop_below(1, 3), Some(2));
        assert_eq!(m.pop_below(1, 3), None);
        assert_eq!(m.drain().count(), MAGAZINE_SIZE - 3);
        assert!(m.is_empty());
    }
}
