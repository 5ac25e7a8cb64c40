//! Property tests against a simple model (a map of live ranges and a brute
//! force search for the top-down fit), and multi-threaded stress tests.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;
use core::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;

use super::*;
use crate::addr::Iova;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 2 } else { cases },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Operations per generated sequence.
fn ops_len() -> Range<usize> {
    if cfg!(miri) {
        1..24
    } else {
        1..160
    }
}

/// Live ranges by first page: `(end page, kind)`.
type Model = BTreeMap<u64, (u64, RangeKind)>;

fn overlaps(m: &Model, lo: u64, hi: u64) -> bool {
    // The last range starting below `hi` is the only candidate.
    m.range(..hi).next_back().is_some_and(|(_, &(e, _))| e > lo)
}

/// The highest start for `n` pages aligned to `n.next_power_of_two()` in
/// `[start, limit)` that overlaps nothing, by trying every page.
fn brute_fit(m: &Model, start: u64, limit: u64, n: u64) -> Option<u64> {
    let a = n.next_power_of_two();
    let top = limit.checked_sub(n)?;
    (start..=top).rev().find(|&x| x % a == 0 && !overlaps(m, x, x + n))
}

/// The model's exclusive page limit for a DMA mask (`None`: no limit).
fn limit_page(mask: Option<u64>, shift: u32) -> u64 {
    match mask {
        None => u64::MAX,
        Some(m) => (m >> shift) + u64::from(m & ((1 << shift) - 1) == (1 << shift) - 1),
    }
}

fn dma_limit(mask: Option<u64>) -> DmaLimit {
    mask.map_or(DmaLimit::NONE, DmaLimit::from_mask)
}

#[derive(Clone, Debug)]
enum RangeOp {
    Alloc {
        pages: u64,
        mask: Option<u64>,
    },
    /// Free a live range picked by index, its size perturbed by `dsize` and
    /// its start by `dstart` pages (0 and 0: a correct free).
    FreeLive {
        pick: usize,
        dstart: i8,
        dsize: i8,
    },
    /// Free something arbitrary, usually not allocated.
    FreeAny {
        page: u64,
        pages: u64,
    },
    Reserve {
        lo: u64,
        len: u64,
    },
}

fn range_op(window_end_bytes: u64) -> impl Strategy<Value = RangeOp> {
    let mask = prop_oneof![
        2 => Just(None),
        3 => (0..window_end_bytes + 4096).prop_map(Some),
    ];
    prop_oneof![
        6 => (0u64..40, mask).prop_map(|(pages, mask)| RangeOp::Alloc { pages, mask }),
        4 => (any::<usize>(), prop_oneof![4 => Just(0i8), 1 => -1i8..=1], prop_oneof![4 => Just(0i8), 1 => -1i8..=1])
            .prop_map(|(pick, dstart, dsize)| RangeOp::FreeLive { pick, dstart, dsize }),
        1 => (0u64..200, 0u64..40).prop_map(|(page, pages)| RangeOp::FreeAny { page, pages }),
        1 => (0..window_end_bytes + 8192, 0u64..6 * 4096).prop_map(|(lo, len)| RangeOp::Reserve { lo, len }),
    ]
}

/// A window `[start, start + pages)` in pages, and a granule shift.
fn window() -> impl Strategy<Value = (u64, u64, u32)> {
    (0u64..12, 1u64..120, prop_oneof![Just(12u32), Just(0u32), Just(16u32)])
}

fn snapshot(r: &RangeAllocator) -> Vec<(Range<Iova>, RangeKind)> {
    r.ranges().collect()
}

fn model_ranges(m: &Model, shift: u32) -> Vec<(Range<Iova>, RangeKind)> {
    m.iter().map(|(&lo, &(hi, k))| (Iova(lo << shift)..Iova(hi << shift), k)).collect()
}

proptest! {
    #![proptest_config(config(512))]

    /// Every result equals the model's: allocations are exactly the highest
    /// free size-aligned fit below the limit (so exhaustion only when none
    /// exists), frees and reservations succeed exactly when the model says,
    /// and errors change nothing.
    #[test]
    fn iova_range_allocator_matches_model(
        (start, pages, shift) in window(),
        ops in proptest::collection::vec(range_op(200 * 4096), ops_len()),
    ) {
        let g = 1u64 << shift;
        let end = start + pages;
        let mut r = RangeAllocator::new(Iova(start * g)..Iova(end * g), g).unwrap();
        let mut m = Model::new();
        for op in ops {
            let before = snapshot(&r);
            let result: Result<(), IovaError> = match op {
                RangeOp::Alloc { pages: n, mask } => {
                    let limit = limit_page(mask, shift).min(end);
                    let got = r.alloc(n, dma_limit(mask));
                    let want = if limit <= start {
                        Err(IovaError::LimitBelowWindow { limit: dma_limit(mask), window_start: Iova(start * g) })
                    } else if n == 0 {
                        Err(IovaError::ZeroSize)
                    } else if n > pages {
                        Err(IovaError::SizeAboveWindow { pages: n, window_pages: pages })
                    } else {
                        brute_fit(&m, start, limit, n)
                            .map(|x| Iova(x * g))
                            .ok_or(IovaError::Exhausted { pages: n, limit: dma_limit(mask) })
                    };
                    prop_assert_eq!(got, want);
                    if let Ok(a) = got {
                        let x = a.raw() >> shift;
                        // The properties, independently of the brute force.
                        prop_assert!(x >= start && x + n <= end, "outside the window");
                        prop_assert!(x + n <= limit, "above the limit");
                        prop_assert_eq!(x % n.next_power_of_two(), 0, "misaligned");
                        prop_assert!(!overlaps(&m, x, x + n), "overlap");
                        m.insert(x, (x + n, RangeKind::Allocated));
                    }
                    got.map(|_| ())
                }
                RangeOp::FreeLive { pick, dstart, dsize } => {
                    let live: Vec<_> = m.iter().map(|(&lo, &v)| (lo, v)).collect();
                    if live.is_empty() {
                        continue;
                    }
                    let (lo, (hi, _)) = live[pick % live.len()];
                    let at = lo.saturating_add_signed(dstart.into());
                    let n = (hi - lo).saturating_add_signed(dsize.into());
                    free_checked(&mut r, &mut m, at, n, shift)?
                }
                RangeOp::FreeAny { page, pages: n } => free_checked(&mut r, &mut m, page, n, shift)?,
                RangeOp::Reserve { lo, len } => {
                    let got = r.reserve(Iova(lo)..Iova(lo + len));
                    let (plo, phi) = ((lo >> shift).max(start), (lo + len).div_ceil(g).min(end));
                    let want = if len == 0 {
                        Err(IovaError::ZeroSize)
                    } else if plo >= phi {
                        Ok(())
                    } else if overlaps(&m, plo, phi) {
                        Err(IovaError::ReserveOverlap { start: Iova(lo), end: Iova(lo + len) })
                    } else {
                        m.insert(plo, (phi, RangeKind::Reserved));
                        Ok(())
                    };
                    prop_assert_eq!(got, want);
                    got
                }
            };
            r.check_invariants();
            if result.is_err() {
                prop_assert_eq!(&snapshot(&r), &before, "an error changed the state");
            }
            prop_assert_eq!(snapshot(&r), model_ranges(&m, shift));
            prop_assert_eq!(r.allocated(), m.values().filter(|v| v.1 == RangeKind::Allocated).count());
        }
    }
}

/// Frees `pages` pages at page `at` in both, checking they agree.
fn free_checked(
    r: &mut RangeAllocator,
    m: &mut Model,
    at: u64,
    pages: u64,
    shift: u32,
) -> Result<Result<(), IovaError>, TestCaseError> {
    let got = r.free(Iova(at << shift), pages);
    let valid = m.get(&at) == Some(&(at + pages, RangeKind::Allocated));
    if valid {
        m.remove(&at);
    }
    let want = if valid { Ok(()) } else { Err(IovaError::NotAllocated { iova: Iova(at << shift), pages }) };
    prop_assert_eq!(got, want);
    Ok(got)
}

#[derive(Clone, Debug)]
enum CachedOp {
    Alloc { cpu: usize, pages: u64, low: bool, handle: bool },
    Free { cpu: usize, pick: usize, handle: bool },
    Purge,
}

fn cached_op() -> impl Strategy<Value = CachedOp> {
    prop_oneof![
        5 => (0usize..3, 1u64..40, any::<bool>(), any::<bool>())
            .prop_map(|(cpu, pages, low, handle)| CachedOp::Alloc { cpu, pages, low, handle }),
        4 => (0usize..3, any::<usize>(), any::<bool>())
            .prop_map(|(cpu, pick, handle)| CachedOp::Free { cpu, pick, handle }),
        1 => Just(CachedOp::Purge),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// The cached allocator on three CPUs with a one-magazine depot: no
    /// overlap, alignment, window and limit respected, exhaustion only when
    /// the model has no fit (the caches having been emptied into the tree),
    /// and the tree always holds exactly the live and the cached ranges.
    #[test]
    fn iova_cached_allocator_matches_model(
        pages in 1u64..300,
        reserve in proptest::option::of((0u64..300, 1u64..8)),
        ops in proptest::collection::vec(cached_op(), ops_len()),
    ) {
        const G: u64 = 4096;
        let mut tree = RangeAllocator::new(Iova(0)..Iova(pages * G), G).unwrap();
        let mut reserved = Model::new();
        if let Some((lo, len)) = reserve {
            tree.reserve(Iova(lo * G)..Iova((lo + len) * G)).unwrap();
            if lo < pages {
                reserved.insert(lo, ((lo + len).min(pages), RangeKind::Reserved));
            }
        }
        let a = IovaAllocator::with_depot(tree, 3, 1).unwrap();
        let low_mask = (pages / 2).max(1) * G - 1;
        let mut live: Vec<Allocation> = Vec::new();
        for op in ops {
            match op {
                CachedOp::Alloc { cpu, pages: n, low, handle } => {
                    let limit = if low { DmaLimit::from_mask(low_mask) } else { DmaLimit::NONE };
                    let limit_pfn = if low { (low_mask + 1) / G } else { pages };
                    let got = if handle {
                        a.cpu(cpu).unwrap().alloc(n, limit)
                    } else {
                        a.alloc(cpu, n, limit)
                    };
                    let size = if n <= CACHED_MAX_PAGES { n.next_power_of_two() } else { n };
                    let mut model = reserved.clone();
                    for x in &live {
                        let lo = x.iova().raw() / G;
                        model.insert(lo, (lo + x.pages(), RangeKind::Allocated));
                    }
                    match got {
                        Ok(x) => {
                            let lo = x.iova().raw() / G;
                            prop_assert_eq!(x.pages(), size);
                            prop_assert_eq!(lo % size.next_power_of_two(), 0, "misaligned");
                            prop_assert!(lo + size <= limit_pfn, "above the limit or window");
                            prop_assert!(!overlaps(&model, lo, lo + size), "handed out twice");
                            live.push(x);
                        }
                        Err(IovaError::Exhausted { pages: p, .. }) => {
                            prop_assert_eq!(p, size);
                            prop_assert_eq!(brute_fit(&model, 0, limit_pfn, size), None, "spurious exhaustion");
                            prop_assert_eq!(a.cached(), 0, "gave up with ranges cached");
                        }
                        Err(IovaError::SizeAboveWindow { .. }) => prop_assert!(size > pages),
                        Err(e) => prop_assert!(false, "unexpected {:?}", e),
                    }
                }
                CachedOp::Free { cpu, pick, handle } => {
                    if live.is_empty() {
                        continue;
                    }
                    let x = live.swap_remove(pick % live.len());
                    if handle {
                        a.cpu(cpu).unwrap().free(x).unwrap();
                    } else {
                        a.free(cpu, x).unwrap();
                    }
                }
                CachedOp::Purge => {
                    a.purge();
                    prop_assert_eq!(a.cached(), 0);
                }
            }
            let (allocated, ok) = a.with_tree(|t| {
                t.check_invariants();
                (t.allocated(), live.iter().all(|x| t.find(x.iova()) == Some((x.range(), RangeKind::Allocated))))
            });
            prop_assert!(ok, "a live range is missing from the tree");
            prop_assert_eq!(allocated, live.len() + a.cached());
        }
        for x in live {
            a.free(0, x).unwrap();
        }
        a.purge();
        prop_assert_eq!(a.with_tree(|t| t.allocated()), 0);
    }
}

#[derive(Clone, Debug)]
enum FqOp {
    Alloc,
    /// Unmap a live range and queue it.
    Unmap(usize),
    Begin,
    /// Complete an outstanding ticket.
    Complete(usize),
    Reclaim,
}

fn fq_op() -> impl Strategy<Value = FqOp> {
    prop_oneof![
        4 => Just(FqOp::Alloc),
        4 => any::<usize>().prop_map(FqOp::Unmap),
        1 => Just(FqOp::Begin),
        1 => any::<usize>().prop_map(FqOp::Complete),
        1 => Just(FqOp::Reclaim),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    /// A queued range is never handed out again before an invalidation that
    /// began after it was queued has completed, and is released as soon as
    /// one has (at the next reclaim or push). A full queue refuses instead
    /// of freeing.
    #[test]
    fn iova_flush_queue_never_reuses_early(
        capacity in 1usize..8,
        ops in proptest::collection::vec(fq_op(), ops_len()),
    ) {
        const G: u64 = 4096;
        let a = IovaAllocator::new(RangeAllocator::new(Iova(0)..Iova(16 * G), G).unwrap(), 1).unwrap();
        let clock = FlushClock::new();
        let mut fq = FlushQueue::new(&a, &clock, 0, capacity).unwrap();
        let mut live: Vec<Allocation> = Vec::new();
        // Model: queued ranges with the number of tickets begun before them.
        let mut queued: Vec<(u64, Range<Iova>)> = Vec::new();
        let mut tickets = Vec::new();
        let (mut begun, mut done) = (0u64, 0u64);
        for op in ops {
            match op {
                FqOp::Alloc => {
                    if let Ok(x) = a.alloc(0, 1, DmaLimit::NONE) {
                        for (_, q) in &queued {
                            prop_assert!(q.end <= x.iova() || x.range().end <= q.start, "reused while queued");
                        }
                        live.push(x);
                    }
                }
                FqOp::Unmap(i) => {
                    if live.is_empty() {
                        continue;
                    }
                    let x = live.swap_remove(i % live.len());
                    let r = x.range();
                    let covered = queued.iter().filter(|(g, _)| *g < done).count();
                    match fq.push(x) {
                        Ok(()) => {
                            // A push into a full queue reclaims first.
                            if queued.len() == capacity {
                                queued.retain(|(g, _)| *g >= done);
                            }
                            queued.push((begun, r));
                        }
                        Err(QueueFull(x)) => {
                            prop_assert_eq!(queued.len(), capacity);
                            prop_assert_eq!(covered, 0, "refused although it could reclaim");
                            live.push(x);
                        }
                    }
                }
                FqOp::Begin => {
                    tickets.push(clock.begin_flush());
                    begun += 1;
                }
                FqOp::Complete(i) => {
                    if tickets.is_empty() {
                        continue;
                    }
                    let t = tickets.swap_remove(i % tickets.len());
                    done = done.max(t.generation());
                    t.complete();
                }
                FqOp::Reclaim => {
                    let n = fq.reclaim();
                    let before = queued.len();
                    queued.retain(|(g, _)| *g >= done);
                    prop_assert_eq!(n, before - queued.len());
                }
            }
            prop_assert_eq!(fq.len(), queued.len());
        }
    }
}

/// A small xorshift for the stress tests.
fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// One bit per page: set while a thread holds the page. Setting a bit that is
/// already set means the page was handed out twice.
struct Ownership(Vec<AtomicU64>);

impl Ownership {
    fn new(pages: u64) -> Self {
        Self((0..pages.div_ceil(64)).map(|_| AtomicU64::new(0)).collect())
    }

    fn claim(&self, x: &Allocation, shift: u32) {
        let lo = x.iova().raw() >> shift;
        for p in lo..lo + x.pages() {
            let old = self.0[(p / 64) as usize].fetch_or(1 << (p % 64), Ordering::AcqRel);
            assert_eq!(old & (1 << (p % 64)), 0, "page {p} handed out twice");
        }
    }

    fn release(&self, x: &Allocation, shift: u32) {
        let lo = x.iova().raw() >> shift;
        for p in lo..lo + x.pages() {
            self.0[(p / 64) as usize].fetch_and(!(1 << (p % 64)), Ordering::AcqRel);
        }
    }
}

/// Four threads on four CPU ids (more than the machine's cores, so they are
/// preempted in their critical sections) allocate, free locally, pass ranges
/// to each other to free on another CPU, and use handles, in a window small
/// enough that exhaustion and purges are frequent.
#[test]
fn iova_concurrent_stress() {
    use std::sync::Mutex;
    use std::thread;

    const G: u64 = 4096;
    const PAGES: u64 = 3000;
    const THREADS: usize = 4;
    let iters = if cfg!(miri) { 60 } else { 100_000 };
    let a = Arc::new(
        IovaAllocator::with_depot(RangeAllocator::new(Iova(0)..Iova(PAGES * G), G).unwrap(), THREADS, 2)
            .unwrap(),
    );
    let own = Arc::new(Ownership::new(PAGES));
    let mailboxes: Arc<Vec<Mutex<Vec<Allocation>>>> =
        Arc::new((0..THREADS).map(|_| Mutex::new(Vec::new())).collect());
    let handles: Vec<_> = (0..THREADS)
        .map(|cpu| {
            let (a, own, mail) = (a.clone(), own.clone(), mailboxes.clone());
            thread::spawn(move || {
                let mut seed = 0x2545_f491_4f6c_dd1d ^ ((cpu as u64 + 1) * 0x9e37_79b9);
                let mut mine: Vec<Allocation> = Vec::new();
                let mut exhausted = 0u64;
                for _ in 0..iters {
                    let r = xorshift(&mut seed);
                    match r % 10 {
                        0..=4 => {
                            let pages = if r % 97 == 0 { 33 + r % 40 } else { 1 + (r >> 8) % 32 };
                            let limit = if r % 3 == 0 {
                                DmaLimit::from_mask(PAGES / 2 * G - 1)
                            } else {
                                DmaLimit::NONE
                            };
                            match a.alloc(cpu, pages, limit) {
                                Ok(x) => {
                                    own.claim(&x, 12);
                                    mine.push(x);
                                }
                                Err(IovaError::Exhausted { .. }) => {
                                    exhausted += 1;
                                    let half = mine.len() / 2;
                                    for x in mine.drain(half..) {
                                        own.release(&x, 12);
                                        a.free(cpu, x).unwrap();
                                    }
                                }
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                        5..=6 if !mine.is_empty() => {
                            let x = mine.swap_remove((r >> 16) as usize % mine.len());
                            own.release(&x, 12);
                            a.free(cpu, x).unwrap();
                        }
                        7 if !mine.is_empty() => {
                            // Hand one to another CPU, which frees it there.
                            let x = mine.swap_remove((r >> 16) as usize % mine.len());
                            let to = (cpu + 1 + (r >> 32) as usize % (THREADS - 1)) % THREADS;
                            mail[to].lock().unwrap().push(x);
                        }
                        8 => {
                            let inbox: Vec<_> = core::mem::take(&mut *mail[cpu].lock().unwrap());
                            for x in inbox {
                                own.release(&x, 12);
                                a.free(cpu, x).unwrap();
                            }
                        }
                        _ => {
                            // A short batch through a handle.
                            let mut c = a.cpu(cpu).unwrap();
                            for _ in 0..4 {
                                if let Ok(x) = c.alloc(1 + (r >> 20) % 8, DmaLimit::NONE) {
                                    own.claim(&x, 12);
                                    own.release(&x, 12);
                                    c.free(x).unwrap();
                                }
                            }
                        }
                    }
                }
                for x in mine {
                    own.release(&x, 12);
                    a.free(cpu, x).unwrap();
                }
                exhausted
            })
        })
        .collect();
    let exhausted: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    for (cpu, m) in mailboxes.iter().enumerate() {
        for x in m.lock().unwrap().drain(..) {
            a.free(cpu, x).unwrap();
        }
    }
    a.purge();
    a.with_tree(|t| {
        t.check_invariants();
        assert_eq!(t.allocated(), 0, "ranges lost");
    });
    if !cfg!(miri) {
        assert!(exhausted > 0, "the window never filled: the test is too easy");
    }
}

/// A pipeline: one thread allocates on CPU 0, another frees on CPU 1, so
/// ranges flow from CPU 1's magazines through the depot back to CPU 0.
#[test]
fn iova_concurrent_cross_cpu_pipeline() {
    use std::sync::mpsc;
    use std::thread;

    const G: u64 = 4096;
    let n = if cfg!(miri) { 300 } else { 200_000 };
    let a = Arc::new(IovaAllocator::new(RangeAllocator::new(Iova(0)..Iova(1 << 30), G).unwrap(), 2).unwrap());
    let own = Arc::new(Ownership::new((1 << 30) / G));
    let (tx, rx) = mpsc::sync_channel::<Allocation>(1024);
    let consumer = {
        let (a, own) = (a.clone(), own.clone());
        thread::spawn(move || {
            for x in rx {
                own.release(&x, 12);
                a.free(1, x).unwrap();
            }
        })
    };
    let mut seed = 7u64;
    for _ in 0..n {
        let pages = 1 + xorshift(&mut seed) % 32;
        let x = a.alloc(0, pages, DmaLimit::NONE).unwrap();
        own.claim(&x, 12);
        tx.send(x).unwrap();
    }
    drop(tx);
    consumer.join().unwrap();
    a.purge();
    assert_eq!(a.with_tree(|t| t.allocated()), 0);
}
