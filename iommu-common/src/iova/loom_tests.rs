//! Loom models: every interleaving (up to a preemption bound) of the real
//! code, with the locks and atomics of `sync.rs` replaced by loom's.
//! Run with `RUSTFLAGS="--cfg loom" cargo test -p iommu-common --release iova::loom`.

use loom::sync::atomic::AtomicU64 as ModelU64;
use loom::sync::Arc;
use loom::thread;

use super::sync::Ordering;
use super::*;
use crate::addr::Iova;

const G: u64 = 4096;

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(3);
    b.check(f);
}

/// Two CPUs allocate concurrently from a full tree whose only free pages
/// sit in CPU 1's cache: CPU 0 must purge CPU 1's cache (taking its lock
/// while CPU 1 may be using it). Both succeed, with different pages, and
/// nothing deadlocks.
#[test]
fn iova_loom_purge_races_cache_hit() {
    model(|| {
        let a = Arc::new(
            IovaAllocator::with_depot(RangeAllocator::new(Iova(0)..Iova(2 * G), G).unwrap(), 2, 1).unwrap(),
        );
        let x = a.alloc(1, 1, DmaLimit::NONE).unwrap();
        let y = a.alloc(1, 1, DmaLimit::NONE).unwrap();
        a.free(1, x).unwrap();
        a.free(1, y).unwrap();
        let a0 = a.clone();
        let t = thread::spawn(move || a0.alloc(0, 1, DmaLimit::NONE).unwrap());
        let mine = a.alloc(1, 1, DmaLimit::NONE).unwrap();
        let theirs = t.join().unwrap();
        assert_ne!(mine.iova(), theirs.iova());
        a.free(0, mine).unwrap();
        a.free(1, theirs).unwrap();
    });
}

/// Two handles exhaust the tree at the same time, each holding its own
/// CPU's lock while purging: they must not wait for each other forever.
#[test]
fn iova_loom_handles_purge_without_deadlock() {
    model(|| {
        let a = Arc::new(
            IovaAllocator::with_depot(RangeAllocator::new(Iova(0)..Iova(2 * G), G).unwrap(), 2, 1).unwrap(),
        );
        let x = a.alloc(0, 1, DmaLimit::NONE).unwrap();
        let y = a.alloc(1, 1, DmaLimit::NONE).unwrap();
        a.free(0, x).unwrap();
        a.free(1, y).unwrap();
        let a1 = a.clone();
        // Two pages cached as 1-page ranges; both want 2 pages.
        let t = thread::spawn(move || a1.cpu(1).unwrap().alloc(2, DmaLimit::NONE).ok());
        let mine = a.cpu(0).unwrap().alloc(2, DmaLimit::NONE).ok();
        let theirs = t.join().unwrap();
        // At most one can win; if both purged only their own cache, both
        // may lose, which is allowed (a busy cache is skipped).
        assert!(mine.is_none() || theirs.is_none());
        for z in mine.into_iter().chain(theirs) {
            a.free(0, z).unwrap();
        }
    });
}

/// The flush-queue rule: if a queued range is released, the invalidation
/// that released it saw the unmap. A thread unmaps (clears the modelled PTE)
/// and queues; another begins a flush, "invalidates" (reads the PTE, as the
/// IOTLB would refetch it) and completes.
#[test]
fn iova_loom_flush_sees_the_unmap() {
    model(|| {
        let a =
            Arc::new(IovaAllocator::new(RangeAllocator::new(Iova(0)..Iova(4 * G), G).unwrap(), 1).unwrap());
        let clock = Arc::new(FlushClock::new());
        let pte = Arc::new(ModelU64::new(1));
        let seen = Arc::new(ModelU64::new(u64::MAX));
        let (c1, p1, s1) = (clock.clone(), pte.clone(), seen.clone());
        let flusher = thread::spawn(move || {
            let t = c1.begin_flush();
            s1.store(p1.load(Ordering::SeqCst), Ordering::SeqCst);
            t.complete();
        });
        let x = a.alloc(0, 1, DmaLimit::NONE).unwrap();
        let mut fq = FlushQueue::new(&a, &clock, 0, 4).unwrap();
        pte.store(0, Ordering::SeqCst);
        fq.push(x).unwrap();
        let released = fq.reclaim();
        if released == 1 {
            assert_eq!(seen.load(Ordering::SeqCst), 0, "released before an invalidation saw the unmap");
        }
        flusher.join().unwrap();
    });
}
