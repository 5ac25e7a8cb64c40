//! Deferred IOVA freeing: Linux's `iova_fq`.
//!
//! After an unmap, the IOTLB may still hold the old translation until an
//! invalidation has completed (on SMMUv3: `CMD_TLBI_*` followed by a
//! `CMD_SYNC` that returned). Reusing the IOVA earlier would let the device
//! reach the old page through the stale entry. Invalidating on every unmap is
//! slow, so unmapped ranges wait in a [`FlushQueue`] and one invalidation
//! releases many.
//!
//! The rule is Linux's (`fq_flush_start_cnt` / `fq_flush_finish_cnt`): a range
//! may be reused once an invalidation that *began after it was queued* has
//! completed. The types enforce it:
//!
//! - a [`FlushClock`] (one per address space) counts invalidations begun; a
//!   queued range records the count;
//! - [`FlushClock::begin_flush`] returns a [`FlushTicket`], the only way to
//!   report a completion; it cannot be forged, copied or moved to another
//!   clock, and [`FlushTicket::complete`] consumes it;
//! - a [`FlushQueue`] owns the queued [`Allocation`]s, which cannot be copied,
//!   and hands them back to the allocator only when a ticket begun after
//!   their push has completed. There is no other way out.
//!
//! Dropping a queue leaks its ranges and dropping a ticket completes nothing:
//! both err on the side of never reusing. So the only way to reuse a queued
//! range early is to call `complete` on a ticket before the hardware finished
//! the invalidation begun with it (a driver bug at one named call site), or
//! to pair a queue with the clock of another address space.

use alloc::collections::VecDeque;
use core::fmt;

use super::sync::{AtomicU64, Ordering};
use super::{Allocation, IovaAllocator, IovaError};

/// The invalidation counter of one address space (IOMMU domain), shared by
/// its flush queues (one per CPU, as in Linux).
#[derive(Debug)]
pub struct FlushClock {
    /// Invalidations begun.
    started: AtomicU64,
    /// The highest ticket completed.
    finished: AtomicU64,
}

impl FlushClock {
    /// A clock with no invalidation begun.
    pub fn new() -> Self {
        Self { started: AtomicU64::new(0), finished: AtomicU64::new(0) }
    }

    /// Starts an invalidation: call it *before* issuing the invalidation
    /// commands, and [`FlushTicket::complete`] once their `CMD_SYNC` has
    /// returned. The invalidation must cover every range queued so far (a
    /// whole-domain or whole-ASID invalidation).
    pub fn begin_flush(&self) -> FlushTicket<'_> {
        // Pairs with the read-modify-write in `now`: see there.
        let generation = self.started.fetch_add(1, Ordering::AcqRel) + 1;
        FlushTicket { clock: self, generation }
    }

    /// Invalidations begun so far; ranges queued now wait for a later one.
    ///
    /// A read-modify-write, not a load (Linux puts an `smp_mb()` here, in
    /// `queue_iova`): all updates of `started` are then totally ordered. If
    /// this one comes first, the `begin_flush` that follows acquires it, so
    /// the caller's unmap happens before that invalidation is issued; if it
    /// comes second, it returns that flush's generation, which therefore does
    /// not release the range. A plain load would need both sides `SeqCst`,
    /// and loom (which checks this, `loom_tests.rs`) finds the reordering.
    fn now(&self) -> u64 {
        self.started.fetch_add(0, Ordering::AcqRel)
    }

    /// Ranges queued at a generation below this are released.
    fn completed(&self) -> u64 {
        self.finished.load(Ordering::Acquire)
    }
}

impl Default for FlushClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Proof that an invalidation began (from [`FlushClock::begin_flush`]).
/// Completing it releases every range queued before it began, in every queue
/// on that clock.
///
/// It cannot be made any other way, nor copied:
///
/// ```compile_fail
/// # use iommu_common::iova::FlushClock;
/// let clock = FlushClock::new();
/// let t = clock.begin_flush();
/// let u = t.clone();
/// ```
#[must_use = "complete the ticket once the invalidation's CMD_SYNC returned"]
pub struct FlushTicket<'c> {
    clock: &'c FlushClock,
    generation: u64,
}

impl FlushTicket<'_> {
    /// Reports that the invalidation begun with this ticket has completed
    /// (its `CMD_SYNC` returned): ranges queued before [`FlushClock::begin_flush`]
    /// returned it may be reused. Queues release them at their next
    /// [`FlushQueue::reclaim`] or [`FlushQueue::push`].
    pub fn complete(self) {
        // Release pairs with the Acquire in `completed`; completions may
        // arrive out of order, the highest wins.
        self.clock.finished.fetch_max(self.generation, Ordering::Release);
    }

    /// The generation: invalidations begun on the clock, this one included.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl fmt::Debug for FlushTicket<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FlushTicket({})", self.generation)
    }
}

/// The queue is full of ranges not yet covered by a completed invalidation:
/// flush ([`FlushClock::begin_flush`], invalidate, `CMD_SYNC`,
/// [`FlushTicket::complete`]) and push the returned allocation again.
#[derive(Debug)]
pub struct QueueFull(pub Allocation);

/// A fixed-capacity queue of unmapped ranges waiting for an invalidation
/// (Linux's per-CPU `iova_fq`). Single owner: per CPU, or behind the owner's
/// lock.
pub struct FlushQueue<'a> {
    allocator: &'a IovaAllocator,
    clock: &'a FlushClock,
    cpu: usize,
    /// `(generation at push, range)`, in push order, so generations ascend.
    entries: VecDeque<(u64, Allocation)>,
    capacity: usize,
}

impl<'a> FlushQueue<'a> {
    /// A queue of up to `capacity` ranges (Linux uses 256 per CPU), which
    /// frees into `allocator` on behalf of CPU `cpu` once `clock` says so.
    pub fn new(
        allocator: &'a IovaAllocator,
        clock: &'a FlushClock,
        cpu: usize,
        capacity: usize,
    ) -> Result<Self, IovaError> {
        if cpu >= allocator.cpus() {
            return Err(IovaError::CpuOutOfRange { cpu, cpus: allocator.cpus() });
        }
        if capacity == 0 {
            return Err(IovaError::ZeroSize);
        }
        let mut entries = VecDeque::new();
        entries.try_reserve_exact(capacity).map_err(|_| IovaError::NoMemory)?;
        Ok(Self { allocator, clock, cpu, entries, capacity })
    }

    /// Queues a range whose mappings have been removed from the page table.
    /// It goes back to the allocator once an invalidation begun after this
    /// call has completed. First releases what is already covered; if the
    /// queue is still full, returns the range: flush and push it again.
    pub fn push(&mut self, a: Allocation) -> Result<(), QueueFull> {
        if self.entries.len() >= self.capacity {
            self.reclaim();
            if self.entries.len() >= self.capacity {
                return Err(QueueFull(a));
            }
        }
        self.entries.push_back((self.clock.now(), a));
        Ok(())
    }

    /// Frees every queued range covered by a completed invalidation; returns
    /// how many.
    pub fn reclaim(&mut self) -> usize {
        let done = self.clock.completed();
        let mut n = 0;
        while let Some((generation, _)) = self.entries.front() {
            if *generation >= done {
                break;
            }
            if let Some((_, a)) = self.entries.pop_front() {
                // Cannot fail: the CPU was checked at construction; a
                // foreign allocation is dropped (leaked, never reused).
                let _ = self.allocator.free(self.cpu, a);
                n += 1;
            }
        }
        n
    }

    /// Completes `ticket` (see [`FlushTicket::complete`]) and frees what it
    /// covers in this queue; returns how many ranges.
    pub fn flush_complete(&mut self, ticket: FlushTicket<'_>) -> usize {
        ticket.complete();
        self.reclaim()
    }

    /// Ranges waiting.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no range is waiting.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The capacity given at construction.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl fmt::Debug for FlushQueue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlushQueue")
            .field("cpu", &self.cpu)
            .field("len", &self.entries.len())
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::addr::Iova;
    use crate::iova::{DmaLimit, RangeAllocator};
    use alloc::vec::Vec;

    const G: u64 = 4096;

    fn allocator(pages: u64) -> IovaAllocator {
        IovaAllocator::new(RangeAllocator::new(Iova(0)..Iova(pages * G), G).unwrap(), 1).unwrap()
    }

    /// Allocates until exhaustion; the IOVAs handed out.
    fn drain(a: &IovaAllocator) -> Vec<Allocation> {
        core::iter::from_fn(|| a.alloc(0, 1, DmaLimit::NONE).ok()).collect()
    }

    #[test]
    fn iova_fq_no_reuse_before_invalidation_completes() {
        let a = allocator(8);
        let clock = FlushClock::new();
        let mut fq = FlushQueue::new(&a, &clock, 0, 16).unwrap();
        let mut all = drain(&a);
        assert_eq!(all.len(), 8);
        let late = all.pop().unwrap();
        for x in all {
            fq.push(x).unwrap();
        }
        // Queued, not freed: nothing to allocate, even after a purge.
        assert!(a.alloc(0, 1, DmaLimit::NONE).is_err());
        let t = clock.begin_flush();
        // Unmapped after the invalidation began: not covered by it.
        fq.push(late).unwrap();
        assert!(a.alloc(0, 1, DmaLimit::NONE).is_err(), "begun is not done");
        assert_eq!(fq.flush_complete(t), 7);
        let again = drain(&a);
        assert_eq!(again.len(), 7, "the late range waits for the next one");
        assert_eq!(fq.len(), 1);
        let t2 = clock.begin_flush();
        assert_eq!(fq.reclaim(), 0);
        t2.complete();
        assert_eq!(fq.reclaim(), 1);
        assert_eq!(drain(&a).len(), 1);
        drop(again);
    }

    #[test]
    fn iova_fq_full_asks_for_a_flush() {
        let a = allocator(64);
        let clock = FlushClock::new();
        let mut fq = FlushQueue::new(&a, &clock, 0, 4).unwrap();
        let mut xs = drain(&a);
        for x in xs.drain(..4) {
            fq.push(x).unwrap();
        }
        let x = xs.pop().unwrap();
        let QueueFull(x) = fq.push(x).unwrap_err();
        assert_eq!(fq.len(), 4, "nothing was freed silently");
        let t = clock.begin_flush();
        assert_eq!(fq.flush_complete(t), 4);
        fq.push(x).unwrap();
    }

    #[test]
    fn iova_fq_out_of_order_completion() {
        let a = allocator(64);
        let clock = FlushClock::new();
        let mut q0 = FlushQueue::new(&a, &clock, 0, 8).unwrap();
        let mut xs = drain(&a);
        q0.push(xs.pop().unwrap()).unwrap();
        let t1 = clock.begin_flush();
        q0.push(xs.pop().unwrap()).unwrap();
        let t2 = clock.begin_flush();
        assert_eq!((t1.generation(), t2.generation()), (1, 2));
        // The later invalidation finishes first: it covers both.
        t2.complete();
        assert_eq!(q0.reclaim(), 2);
        // The earlier completion changes nothing.
        t1.complete();
        assert_eq!(q0.reclaim(), 0);
    }

    #[test]
    fn iova_fq_rejects_bad_config() {
        let a = allocator(64);
        let clock = FlushClock::new();
        assert!(FlushQueue::new(&a, &clock, 1, 8).is_err());
        assert!(FlushQueue::new(&a, &clock, 0, 0).is_err());
    }
}
