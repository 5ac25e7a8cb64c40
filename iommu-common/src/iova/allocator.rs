//! The IOVA allocator of one address space: per-CPU magazine caches and a
//! depot in front of the range tree (Linux's `iova_domain` with its
//! `iova_rcache`s, `alloc_iova_fast` / `free_iova_fast`).
//!
//! Locks, always taken in this order: one CPU's cache, then one class's depot,
//! then the tree. The fast path takes only the first, which is uncontended
//! unless two callers name the same CPU. A [`CpuCache`] holds it across a
//! batch of operations, so they take no lock at all.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;
use core::sync::atomic::AtomicU32;

use super::magazine::{class_of, class_pages, CpuRcache, Depot, Magazine, CLASSES};
use super::range::RangeAllocator;
use super::sync::{Lock, LockGuard};
use super::{DmaLimit, IovaError};
use crate::addr::Iova;

/// Full magazines the depot keeps per class by default (Linux's former
/// `MAX_GLOBAL_MAGS`); beyond that, frees go back to the tree.
pub const DEFAULT_DEPOT_MAGAZINES: usize = 32;

/// Tells allocators apart, so an [`Allocation`] cannot be freed into the
/// wrong one (a 17-bit tag: allocators made 2^17 apart share one, which only
/// weakens this check for a bug already made).
static NEXT_ID: AtomicU32 = AtomicU32::new(1);

/// A live IOVA range, as handed out by [`IovaAllocator`]. It cannot be copied
/// or cloned, and freeing consumes it: a range cannot be freed twice, nor used
/// by its owner after it went back (to the allocator or a
/// [`FlushQueue`](super::FlushQueue)).
///
/// Dropping it without freeing leaks the range (it is never reused), which is
/// safe.
///
/// ```compile_fail
/// # use iommu_common::iova::*;
/// # use iommu_common::addr::Iova;
/// let a = IovaAllocator::new(RangeAllocator::new(Iova(0)..Iova(1 << 20), 4096).unwrap(), 1).unwrap();
/// let x = a.alloc(0, 1, DmaLimit::NONE).unwrap();
/// a.free(0, x).unwrap();
/// a.free(0, x).unwrap(); // use of moved value
/// ```
#[must_use = "an IOVA allocation that is not freed is leaked"]
#[derive(PartialEq, Eq)]
pub struct Allocation {
    iova: Iova,
    /// Pages, granule shift and owner tag, packed so that the token is two
    /// words and travels in registers (measured: 16 ns per cached pair with
    /// a four-word token, 6 ns with this one).
    meta: u64,
}

/// Bits of [`Allocation::meta`] for the size in pages; windows are limited to
/// `2^41` pages (8 PiB at 4 KiB, more than a 52-bit IAS).
const PAGES_BITS: u32 = 41;
/// Then 6 bits of granule shift, and the owner's tag in the rest.
const SHIFT_BITS: u32 = 6;
const OWNER_SHIFT: u32 = PAGES_BITS + SHIFT_BITS;
/// The pages field of [`Allocation::meta`].
const PAGES_MASK: u64 = (1 << PAGES_BITS) - 1;

impl Allocation {
    /// The first address.
    #[inline]
    pub fn iova(&self) -> Iova {
        self.iova
    }

    /// The size in pages: the request rounded up to a power of two if it was
    /// at most [`CACHED_MAX_PAGES`](super::CACHED_MAX_PAGES), else exactly the
    /// request.
    #[inline]
    pub fn pages(&self) -> u64 {
        self.meta & PAGES_MASK
    }

    /// The size in bytes.
    #[inline]
    pub fn len(&self) -> u64 {
        self.pages() << ((self.meta >> PAGES_BITS) & ((1 << SHIFT_BITS) - 1))
    }

    /// Never true: allocations have at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The addresses covered.
    #[inline]
    pub fn range(&self) -> Range<Iova> {
        self.iova..Iova(self.iova.raw() + self.len())
    }
}

impl fmt::Debug for Allocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Allocation({:?}, {} pages)", self.iova, self.pages())
    }
}

/// One CPU's cache lock, alone on its cache lines.
#[repr(align(128))]
struct CpuSlot(Lock<CpuRcache>);

/// A thread-safe IOVA allocator for one window: per-CPU caches in front of a
/// [`RangeAllocator`].
///
/// Requests of 1 to [`CACHED_MAX_PAGES`](super::CACHED_MAX_PAGES) pages are
/// rounded up to a power of two and served from the calling CPU's magazines
/// when they hold a range below the device's limit; otherwise from the depot,
/// otherwise from the tree. When the tree is exhausted, every cache is
/// returned to it and the request is tried once more (Linux's
/// `alloc_iova_fast` with `flush_rcache`).
///
/// The caller names its CPU (`cpu < cpus`): there are no thread-locals in the
/// hypervisor, but it knows where it runs. Any CPU may free any allocation;
/// naming the wrong CPU costs speed, never correctness.
pub struct IovaAllocator {
    cpus: Box<[CpuSlot]>,
    depots: [Lock<Depot>; CLASSES],
    tree: Lock<RangeAllocator>,
    shift: u32,
    /// The window, in pages (copied from the tree, to check limits unlocked).
    start: u64,
    end: u64,
    /// [`Allocation::meta`] of this allocator's tokens without the pages:
    /// granule shift and owner tag.
    meta: u64,
    /// The lowest [`DmaLimit::last`] that reaches the window's end: any
    /// limit at or above it is the whole window (one comparison on the
    /// fast path instead of the page arithmetic).
    unlimited: u64,
}

impl IovaAllocator {
    /// Puts caches for `cpus` CPUs in front of `tree` (build it, and make
    /// its reservations, first), with a depot of
    /// [`DEFAULT_DEPOT_MAGAZINES`] per size class. The window may hold at
    /// most `2^41` pages ([`IovaError::InvalidWindow`]).
    pub fn new(tree: RangeAllocator, cpus: usize) -> Result<Self, IovaError> {
        Self::with_depot(tree, cpus, DEFAULT_DEPOT_MAGAZINES)
    }

    /// [`Self::new`] with a depot of `depot_magazines` full magazines per
    /// class. Each magazine holds [`MAGAZINE_SIZE`](super::MAGAZINE_SIZE)
    /// ranges; the caches take `(2 * cpus + depot_magazines) * 6` magazines at
    /// most, the depot's allocated as they fill.
    pub fn with_depot(tree: RangeAllocator, cpus: usize, depot_magazines: usize) -> Result<Self, IovaError> {
        if cpus == 0 {
            return Err(IovaError::CpuOutOfRange { cpu: 0, cpus });
        }
        if tree.window_pages() >= 1 << PAGES_BITS {
            return Err(IovaError::InvalidWindow);
        }
        let mut slots = Vec::new();
        slots.try_reserve_exact(cpus).map_err(|_| IovaError::NoMemory)?;
        for _ in 0..cpus {
            slots.push(CpuSlot(Lock::new(CpuRcache::new()?)));
        }
        let depot = || Depot::new(depot_magazines).map(Lock::new);
        let depots = [depot()?, depot()?, depot()?, depot()?, depot()?, depot()?];
        let id =
            NEXT_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed) & ((1 << (64 - OWNER_SHIFT)) - 1);
        let (start, end) = (tree.window().start.raw(), tree.window().end.raw());
        let shift = tree.granule_shift();
        Ok(Self {
            cpus: slots.into_boxed_slice(),
            depots,
            tree: Lock::new(tree),
            shift,
            start: start >> shift,
            end: end >> shift,
            meta: u64::from(shift) << PAGES_BITS | u64::from(id) << OWNER_SHIFT,
            // The window is not empty: `end > 0`.
            unlimited: end - 1,
        })
    }

    /// The number of CPUs the caches were built for.
    pub fn cpus(&self) -> usize {
        self.cpus.len()
    }

    /// The window managed.
    pub fn window(&self) -> Range<Iova> {
        Iova(self.start << self.shift)..Iova(self.end << self.shift)
    }

    /// The granule in bytes.
    pub fn granule(&self) -> u64 {
        1 << self.shift
    }

    /// Allocates `pages` pages, size-aligned, below `limit`, on behalf of CPU
    /// `cpu` (Linux's `alloc_iova_fast`). Takes that CPU's cache lock for the
    /// duration; [`Self::cpu`] amortizes it over a batch.
    #[inline(always)] // as `CpuCache::alloc`
    pub fn alloc(&self, cpu: usize, pages: u64, limit: DmaLimit) -> Result<Allocation, IovaError> {
        let slot = self.slot(cpu)?;
        let limit_pfn = self.limit_pfn(limit)?;
        let Some(class) = class_of(pages) else {
            return self.alloc_tree(pages, limit_pfn, limit, None);
        };
        let hit = slot.0.lock().get(class, limit_pfn, || self.depots[class].lock());
        match hit {
            Some(pfn) => Ok(self.token(pfn, class_pages(class))),
            None => self.alloc_tree(class_pages(class), limit_pfn, limit, None),
        }
    }

    /// Frees `a` on behalf of CPU `cpu`: into that CPU's cache if its size
    /// is cached, else into the tree (Linux's `free_iova_fast`).
    ///
    /// The caller must be done with the range: the device's mappings of it
    /// removed *and invalidated* from the IOTLB. A [`FlushQueue`](super::FlushQueue)
    /// defers the free until an invalidation has completed.
    ///
    /// Errors: [`IovaError::CpuOutOfRange`], [`IovaError::ForeignAllocation`];
    /// either way `a` is dropped and its range stays allocated.
    #[inline]
    pub fn free(&self, cpu: usize, a: Allocation) -> Result<(), IovaError> {
        let slot = self.slot(cpu)?;
        self.check_owner(&a)?;
        let pfn = a.iova.raw() >> self.shift;
        match class_of(a.pages()) {
            Some(class) => self.cache_put(&mut slot.0.lock(), class, pfn),
            None => self.tree_free_locked(pfn, a.pages()),
        }
        Ok(())
    }

    /// Whether `a` was made by this allocator (and so may be freed into
    /// it). Does not consume `a`; says nothing about where its range is
    /// mapped.
    #[inline]
    pub fn owns(&self, a: &Allocation) -> bool {
        a.meta & !PAGES_MASK == self.meta
    }

    /// Exclusive use of CPU `cpu`'s cache until the handle is dropped, so its
    /// allocations and frees take no lock. Spins while another handle or call
    /// holds it; hold it for a bounded batch (a scatter-gather list, one exit
    /// to the hypervisor), like any spin lock.
    pub fn cpu(&self, cpu: usize) -> Result<CpuCache<'_>, IovaError> {
        let slot = self.slot(cpu)?;
        Ok(CpuCache { owner: self, cache: slot.0.lock() })
    }

    /// Reserves `range` in the tree (see [`RangeAllocator::reserve`]). If it
    /// overlaps ranges that are only cached, the caches are emptied and the
    /// reservation tried again.
    pub fn reserve(&self, range: Range<Iova>) -> Result<(), IovaError> {
        match self.tree.lock().reserve(range.clone()) {
            Err(IovaError::ReserveOverlap { .. }) => {}
            r => return r,
        }
        self.purge();
        self.tree.lock().reserve(range)
    }

    /// Returns every cached range to the tree (Linux's
    /// `free_cpu_cached_iovas` for all CPUs and `free_global_cached_iovas`).
    /// Waits for each CPU's cache lock in turn.
    pub fn purge(&self) {
        self.purge_caches(None);
    }

    /// Calls `f` with the tree, locked (to inspect it; statistics, tests).
    pub fn with_tree<R>(&self, f: impl FnOnce(&RangeAllocator) -> R) -> R {
        f(&self.tree.lock())
    }

    // ---- internals ----

    #[inline]
    fn slot(&self, cpu: usize) -> Result<&CpuSlot, IovaError> {
        self.cpus.get(cpu).ok_or(IovaError::CpuOutOfRange { cpu, cpus: self.cpus.len() })
    }

    #[inline]
    fn check_owner(&self, a: &Allocation) -> Result<(), IovaError> {
        if self.owns(a) {
            Ok(())
        } else {
            Err(IovaError::ForeignAllocation)
        }
    }

    /// The exclusive end page for `limit` inside the window.
    #[inline]
    fn limit_pfn(&self, limit: DmaLimit) -> Result<u64, IovaError> {
        if limit.last().raw() >= self.unlimited {
            Ok(self.end)
        } else {
            self.limit_pfn_below(limit)
        }
    }

    /// [`Self::limit_pfn`] for a limit inside the window.
    #[inline(never)]
    fn limit_pfn_below(&self, limit: DmaLimit) -> Result<u64, IovaError> {
        let l = limit.end_pfn(self.shift).min(self.end);
        if l <= self.start {
            return Err(IovaError::LimitBelowWindow { limit, window_start: Iova(self.start << self.shift) });
        }
        Ok(l)
    }

    #[inline]
    fn token(&self, pfn: u64, pages: u64) -> Allocation {
        debug_assert!(pages <= PAGES_MASK);
        Allocation { iova: Iova(pfn << self.shift), meta: self.meta | pages }
    }

    /// The slow path: the tree, and if it is exhausted, once more after
    /// emptying the caches. `own` is the caller's CPU cache if it holds its
    /// lock (a [`CpuCache`]).
    #[inline(never)]
    fn alloc_tree(
        &self,
        pages: u64,
        limit_pfn: u64,
        limit: DmaLimit,
        own: Option<&mut CpuRcache>,
    ) -> Result<Allocation, IovaError> {
        let with_limit = |e| match e {
            IovaError::Exhausted { pages, .. } => IovaError::Exhausted { pages, limit },
            e => e,
        };
        match self.tree.lock().alloc_pfn(pages, limit_pfn) {
            Ok(pfn) => return Ok(self.token(pfn, pages)),
            Err(IovaError::Exhausted { .. }) => {}
            Err(e) => return Err(with_limit(e)),
        }
        self.purge_caches(own);
        self.tree.lock().alloc_pfn(pages, limit_pfn).map(|pfn| self.token(pfn, pages)).map_err(with_limit)
    }

    #[inline]
    fn cache_put(&self, cache: &mut CpuRcache, class: usize, pfn: u64) {
        cache.put(
            class,
            pfn,
            || self.depots[class].lock(),
            |m| self.tree_free_all(&mut self.tree.lock(), class, m),
        );
    }

    /// Frees an uncached size into the tree.
    #[inline(never)]
    fn tree_free_locked(&self, pfn: u64, pages: u64) {
        self.tree_free(&mut self.tree.lock(), pfn, pages);
    }

    fn tree_free(&self, tree: &mut RangeAllocator, pfn: u64, pages: u64) {
        let r = tree.free_pfn(pfn, pages);
        // Allocations are unique tokens of this allocator: the range is live.
        debug_assert!(r.is_ok(), "IOVA bookkeeping broken: {r:?}");
    }

    fn tree_free_all(&self, tree: &mut RangeAllocator, class: usize, m: &mut Magazine) {
        for pfn in m.drain() {
            self.tree_free(tree, pfn, class_pages(class));
        }
    }

    /// Empties every cache into the tree: `own` (held by the caller), then
    /// the other CPUs' (waiting for their locks, or only those free right
    /// now if the caller holds its own: two holders waiting for each other
    /// would deadlock), then the depots.
    fn purge_caches(&self, own: Option<&mut CpuRcache>) {
        let holding = own.is_some();
        if let Some(c) = own {
            self.drain_cpu(c);
        }
        for slot in self.cpus.iter() {
            let guard = if holding { slot.0.try_lock() } else { Some(slot.0.lock()) };
            if let Some(mut c) = guard {
                self.drain_cpu(&mut c);
            }
        }
        for (class, depot) in self.depots.iter().enumerate() {
            let mut d = depot.lock();
            if d.full.is_empty() {
                continue;
            }
            let mut tree = self.tree.lock();
            d.drain(|m| self.tree_free_all(&mut tree, class, m));
        }
    }

    fn drain_cpu(&self, c: &mut CpuRcache) {
        let mut tree = self.tree.lock();
        c.drain_all(|class, m| self.tree_free_all(&mut tree, class, m));
    }

    /// Ranges held by the caches (per-CPU and depot), for tests.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn cached(&self) -> usize {
        self.cpus.iter().map(|s| s.0.lock().cached()).sum::<usize>()
            + self.depots.iter().map(|d| d.lock().cached()).sum::<usize>()
    }
}

impl fmt::Debug for IovaAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IovaAllocator")
            .field("window", &self.window())
            .field("granule", &self.granule())
            .field("cpus", &self.cpus.len())
            .finish_non_exhaustive()
    }
}

/// Exclusive use of one CPU's cache (from [`IovaAllocator::cpu`]): the
/// cache's lock is held until this is dropped, so cached allocations and
/// frees through it take no lock. A miss still locks the depot or the tree.
pub struct CpuCache<'a> {
    owner: &'a IovaAllocator,
    cache: LockGuard<'a, CpuRcache>,
}

impl CpuCache<'_> {
    /// [`IovaAllocator::alloc`] on this CPU. When the tree is exhausted it
    /// empties this CPU's cache and those of the other CPUs not in use right
    /// now, then tries again.
    // `inline(always)`: measured, plain `inline` leaves the call (and its
    // result through memory) in a caller's loop.
    #[inline(always)]
    pub fn alloc(&mut self, pages: u64, limit: DmaLimit) -> Result<Allocation, IovaError> {
        let a = self.owner;
        let limit_pfn = a.limit_pfn(limit)?;
        let Some(class) = class_of(pages) else {
            return a.alloc_tree(pages, limit_pfn, limit, Some(&mut self.cache));
        };
        match self.cache.get(class, limit_pfn, || a.depots[class].lock()) {
            Some(pfn) => Ok(a.token(pfn, class_pages(class))),
            None => a.alloc_tree(class_pages(class), limit_pfn, limit, Some(&mut self.cache)),
        }
    }

    /// [`IovaAllocator::free`] on this CPU.
    #[inline]
    pub fn free(&mut self, x: Allocation) -> Result<(), IovaError> {
        let a = self.owner;
        a.check_owner(&x)?;
        let pfn = x.iova.raw() >> a.shift;
        match class_of(x.pages()) {
            Some(class) => a.cache_put(&mut self.cache, class, pfn),
            None => a.tree_free_locked(pfn, x.pages()),
        }
        Ok(())
    }
}

impl fmt::Debug for CpuCache<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CpuCache").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::iova::MAGAZINE_SIZE;

    const G: u64 = 4096;

    fn allocator(pages: u64, cpus: usize) -> IovaAllocator {
        IovaAllocator::new(RangeAllocator::new(Iova(0)..Iova(pages * G), G).unwrap(), cpus).unwrap()
    }

    #[test]
    fn iova_cached_reuse_and_rounding() {
        let a = allocator(1 << 20, 2);
        let x = a.alloc(0, 3, DmaLimit::NONE).unwrap();
        assert_eq!(x.pages(), 4, "cached sizes round up to a power of two");
        assert!(x.iova().is_aligned(4 * G));
        let at = x.iova();
        a.free(0, x).unwrap();
        assert_eq!(a.cached(), 1);
        // The same CPU gets it back from its magazine.
        let y = a.alloc(0, 4, DmaLimit::NONE).unwrap();
        assert_eq!(y.iova(), at);
        let big = a.alloc(1, 33, DmaLimit::NONE).unwrap();
        assert_eq!(big.pages(), 33, "uncached sizes are exact");
        a.free(1, big).unwrap();
        a.free(1, y).unwrap();
        assert_eq!(a.with_tree(|t| t.allocated()), 1, "one range cached");
        a.purge();
        assert_eq!(a.with_tree(|t| t.allocated()), 0);
        assert_eq!(a.cached(), 0);
    }

    #[test]
    fn iova_cached_entry_respects_limit() {
        let a = IovaAllocator::new(RangeAllocator::new(Iova(0)..Iova(1 << 36), G).unwrap(), 1).unwrap();
        let hi = a.alloc(0, 1, DmaLimit::NONE).unwrap();
        assert!(hi.iova().raw() >= 1 << 32);
        a.free(0, hi).unwrap();
        // A 32-bit device must not get the cached 64-bit IOVA.
        let lo = a.alloc(0, 1, DmaLimit::bits(32)).unwrap();
        assert!(lo.range().end.raw() <= 1 << 32);
        let again = a.alloc(0, 1, DmaLimit::NONE).unwrap();
        assert!(again.iova().raw() >= 1 << 32, "the cached one is still there");
        a.free(0, lo).unwrap();
        a.free(0, again).unwrap();
    }

    #[test]
    fn iova_exhaustion_purges_caches() {
        // 8 pages, 2 CPUs: CPU 1's cache holds everything CPU 0 needs.
        let a = allocator(8, 2);
        let all: Vec<_> = (0..8).map(|_| a.alloc(0, 1, DmaLimit::NONE).unwrap()).collect();
        assert!(matches!(a.alloc(0, 1, DmaLimit::NONE), Err(IovaError::Exhausted { pages: 1, .. })));
        for x in all {
            a.free(1, x).unwrap();
        }
        assert_eq!(a.cached(), 8);
        // A size nobody cached: only the purge makes room.
        let big = a.alloc(0, 8, DmaLimit::NONE).unwrap();
        assert_eq!(big.iova(), Iova(0));
        assert_eq!(a.cached(), 0);
        a.free(0, big).unwrap();
        // Through a handle, with the other CPU's cache free to take.
        let mut c = a.cpu(0).unwrap();
        let x = c.alloc(8, DmaLimit::NONE).unwrap();
        c.free(x).unwrap();
        let y = c.alloc(1, DmaLimit::NONE).unwrap();
        c.free(y).unwrap();
    }

    #[test]
    fn iova_depot_trades_magazines() {
        let n = 4 * MAGAZINE_SIZE;
        let a =
            IovaAllocator::with_depot(RangeAllocator::new(Iova(0)..Iova(1 << 30), G).unwrap(), 2, 1).unwrap();
        let xs: Vec<_> = (0..n).map(|_| a.alloc(0, 1, DmaLimit::NONE).unwrap()).collect();
        // CPU 1 frees all: 2 magazines on the CPU, 1 in the depot, the rest
        // back to the tree.
        for x in xs {
            a.free(1, x).unwrap();
        }
        assert_eq!(a.cached(), 3 * MAGAZINE_SIZE);
        assert_eq!(a.with_tree(|t| t.allocated()), 3 * MAGAZINE_SIZE);
        // CPU 0 drains the depot's magazine before going to the tree.
        let ys: Vec<_> = (0..MAGAZINE_SIZE).map(|_| a.alloc(0, 1, DmaLimit::NONE).unwrap()).collect();
        assert_eq!(a.with_tree(|t| t.allocated()), 3 * MAGAZINE_SIZE);
        assert_eq!(a.cached(), 2 * MAGAZINE_SIZE);
        for y in ys {
            a.free(0, y).unwrap();
        }
    }

    #[test]
    fn iova_rejects_bad_cpu_and_foreign_allocations() {
        let a = allocator(64, 2);
        let b = allocator(64, 2);
        assert_eq!(a.alloc(2, 1, DmaLimit::NONE).unwrap_err(), IovaError::CpuOutOfRange { cpu: 2, cpus: 2 });
        assert!(a.cpu(5).is_err());
        let x = a.alloc(0, 1, DmaLimit::NONE).unwrap();
        assert_eq!(b.free(0, x), Err(IovaError::ForeignAllocation));
        assert_eq!(b.with_tree(|t| t.allocated()), 0);
        assert_eq!(a.with_tree(|t| t.allocated()), 1, "leaked, not reused");
        assert!(IovaAllocator::new(RangeAllocator::new(Iova(0)..Iova(G), G).unwrap(), 0).is_err());
    }

    #[test]
    fn iova_owns_tells_allocators_apart_without_consuming() {
        let a = allocator(64, 2);
        let b = allocator(64, 2);
        let x = a.alloc(0, 1, DmaLimit::NONE).unwrap();
        let big = a.alloc(1, 40, DmaLimit::NONE).unwrap();
        assert!(a.owns(&x) && a.owns(&big));
        assert!(!b.owns(&x) && !b.owns(&big));
        // Still usable: `owns` only looked.
        a.free(1, x).unwrap();
        a.free(0, big).unwrap();
        // Same window and granule, different allocator: still foreign.
        let y = b.alloc(0, 1, DmaLimit::NONE).unwrap();
        assert!(!a.owns(&y));
        b.free(0, y).unwrap();
    }

    #[test]
    fn iova_limits_at_and_below_the_window_end() {
        // The fast path takes a limit at or above the window's last byte as
        // "no limit"; just below it must still be honoured.
        let a = IovaAllocator::new(RangeAllocator::new(Iova(0)..Iova(16 * G), G).unwrap(), 1).unwrap();
        let top = a.alloc(0, 1, DmaLimit::from_mask(16 * G - 1)).unwrap();
        assert_eq!(top.iova(), Iova(15 * G));
        let below = a.alloc(0, 1, DmaLimit::from_mask(16 * G - 2)).unwrap();
        assert_eq!(below.iova(), Iova(14 * G), "the last page is not whole below the limit");
        // A cached range above a lower limit is not handed out.
        a.free(0, top).unwrap();
        let low = a.alloc(0, 1, DmaLimit::from_mask(8 * G - 1)).unwrap();
        assert!(low.range().end <= Iova(8 * G));
        let mut c = a.cpu(0).unwrap();
        let again = c.alloc(1, DmaLimit::NONE).unwrap();
        assert_eq!(again.iova(), Iova(15 * G), "the cached range is still there");
        for x in [below, low, again] {
            c.free(x).unwrap();
        }
    }

    #[test]
    fn iova_reserve_purges_cached_overlap() {
        let a = allocator(16, 1);
        let x = a.alloc(0, 1, DmaLimit::NONE).unwrap();
        let r = x.range();
        a.free(0, x).unwrap();
        a.reserve(r.clone()).unwrap();
        let y = a.alloc(0, 1, DmaLimit::NONE).unwrap();
        assert_ne!(y.range(), r);
        assert_eq!(
            a.reserve(y.range()),
            Err(IovaError::ReserveOverlap { start: y.iova(), end: y.range().end })
        );
        a.free(0, y).unwrap();
    }

    #[test]
    fn iova_allocator_is_sync() {
        fn sync<T: Sync + Send>() {}
        sync::<IovaAllocator>();
        fn send<T: Send>() {}
        send::<Allocation>();
    }
}
