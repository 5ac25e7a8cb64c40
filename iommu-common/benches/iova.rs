//! IOVA allocator benchmarks, each workload side by side with its peers:
//! rust-vmm `vm-allocator` (AddressAllocator), `buddy_system_allocator`
//! (FrameAllocator), `range-alloc` and `offset-allocator`.
//!
//! One iteration is one *pair*: free a live range, allocate a new one (the
//! unmap/map steady state of a DMA driver). Plans (which range to free, what
//! size to allocate) are drawn with a seeded xorshift before the timed loop.
//! No `black_box`: every result is stored or freed, so nothing can be
//! optimized away, and copying tokens through the stack for `black_box`
//! measured as store-forwarding stalls (~12 ns) rather than allocator work.
//!
//! Ours appears three ways:
//! - `ours_cached`: [`IovaAllocator::alloc`]/[`IovaAllocator::free`], each
//!   call taking its CPU's cache lock;
//! - `ours_handle`: the same through a [`CpuCache`] held for the run (no
//!   lock on a cache hit);
//! - `ours_range_only`: the [`RangeAllocator`] alone, caches disabled, so the
//!   tree's own cost is visible.
//!
//! Peers differ in what they guarantee: `buddy_system_allocator` rounds
//! every size to a power of two (size-aligned like ours); `range-alloc` and
//! `vm-allocator` are given the same alignment; `offset-allocator` cannot
//! align at all (it gets the plain size, an easier job).
//!
//! Run: `cargo bench -p iommu-common --bench iova -- --warm-up-time 1 --measurement-time 3`.

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, BenchmarkId, Criterion};
use iommu_common::addr::Iova;
use iommu_common::iova::{Allocation, CpuCache, DmaLimit, IovaAllocator, RangeAllocator};

const G: u64 = 4096;
const GIB: u64 = 1 << 30;

/// A xorshift64 generator: plans are reproducible run to run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The interface every contestant is driven through.
trait Contestant {
    type Handle;
    /// Allocates `pages` pages (size-aligned where the allocator can).
    fn alloc(&mut self, pages: u64) -> Option<Self::Handle>;
    fn free(&mut self, h: Self::Handle);
}

/// Ours, through the thread-safe API, allocating on `alloc_cpu` and freeing
/// on `free_cpu`.
struct OursCached<'a> {
    a: &'a IovaAllocator,
    alloc_cpu: usize,
    free_cpu: usize,
    limit: DmaLimit,
}

impl Contestant for OursCached<'_> {
    type Handle = Allocation;
    #[inline(always)]
    fn alloc(&mut self, pages: u64) -> Option<Allocation> {
        self.a.alloc(self.alloc_cpu, pages, self.limit).ok()
    }
    #[inline(always)]
    fn free(&mut self, h: Allocation) {
        self.a.free(self.free_cpu, h).unwrap();
    }
}

/// Ours through held per-CPU handles (the same CPU for both, or two).
struct OursHandle<'a> {
    alloc: CpuCache<'a>,
    free: Option<CpuCache<'a>>,
    limit: DmaLimit,
}

impl Contestant for OursHandle<'_> {
    type Handle = Allocation;
    #[inline(always)]
    fn alloc(&mut self, pages: u64) -> Option<Allocation> {
        self.alloc.alloc(pages, self.limit).ok()
    }
    #[inline(always)]
    fn free(&mut self, h: Allocation) {
        match &mut self.free {
            Some(f) => f.free(h).unwrap(),
            None => self.alloc.free(h).unwrap(),
        }
    }
}

/// Ours, the range tree alone.
struct OursRange {
    r: RangeAllocator,
    limit: DmaLimit,
}

impl Contestant for OursRange {
    type Handle = (Iova, u64);
    #[inline(always)]
    fn alloc(&mut self, pages: u64) -> Option<(Iova, u64)> {
        self.r.alloc(pages, self.limit).ok().map(|a| (a, pages))
    }
    #[inline(always)]
    fn free(&mut self, (a, pages): (Iova, u64)) {
        self.r.free(a, pages).unwrap();
    }
}

struct VmAllocator(vm_allocator::AddressAllocator);

impl Contestant for VmAllocator {
    type Handle = vm_allocator::RangeInclusive;
    #[inline(always)]
    fn alloc(&mut self, pages: u64) -> Option<Self::Handle> {
        // Top-down like Linux and ours.
        self.0.allocate(pages * G, pages.next_power_of_two() * G, vm_allocator::AllocPolicy::LastMatch).ok()
    }
    #[inline(always)]
    fn free(&mut self, h: Self::Handle) {
        self.0.free(&h).unwrap();
    }
}

struct Buddy(buddy_system_allocator::FrameAllocator<33>);

impl Contestant for Buddy {
    type Handle = (usize, usize);
    #[inline(always)]
    fn alloc(&mut self, pages: u64) -> Option<(usize, usize)> {
        self.0.alloc(pages as usize).map(|s| (s, pages as usize))
    }
    #[inline(always)]
    fn free(&mut self, (s, n): (usize, usize)) {
        self.0.dealloc(s, n);
    }
}

struct RangeAlloc(range_alloc::RangeAllocator<u64>);

impl Contestant for RangeAlloc {
    type Handle = core::ops::Range<u64>;
    #[inline(always)]
    fn alloc(&mut self, pages: u64) -> Option<Self::Handle> {
        self.0.allocate_range_aligned(pages, pages.next_power_of_two()).ok()
    }
    #[inline(always)]
    fn free(&mut self, h: Self::Handle) {
        self.0.free_range(h);
    }
}

struct OffsetAlloc(offset_allocator::Allocator);

impl Contestant for OffsetAlloc {
    type Handle = offset_allocator::Allocation;
    #[inline(always)]
    fn alloc(&mut self, pages: u64) -> Option<Self::Handle> {
        self.0.allocate(pages as u32)
    }
    #[inline(always)]
    fn free(&mut self, h: Self::Handle) {
        self.0.free(h);
    }
}

/// A workload: the window, the live population, and a plan of pairs.
#[derive(Clone)]
struct Workload {
    /// Window size in bytes (from 0).
    window: u64,
    /// Sizes of the initial population, in order.
    initial: Vec<u64>,
    /// Pairs: the index of the live range to free, the size to allocate.
    pairs: Vec<(u32, u32)>,
    /// The device limit (ours only; peers get a window of this size).
    limit: DmaLimit,
    /// Each iteration allocates and frees at once, the range never stored:
    /// the bare cost of a pair.
    lifo: bool,
}

const PLAN: usize = 1 << 16;

enum Order {
    Random,
    Fifo,
    /// The range just allocated is freed at once.
    Lifo,
}

enum Sizes {
    Fixed(u64),
    Uniform(u64, u64),
    /// The freed range's size again.
    SameAsFreed,
}

fn workload(window: u64, live: usize, initial: Sizes, sizes: Sizes, order: Order, seed: u64) -> Workload {
    let mut rng = XorShift(seed);
    let draw = |s: &Sizes, rng: &mut XorShift| match *s {
        Sizes::Fixed(n) => n,
        Sizes::Uniform(lo, hi) => lo + rng.below(hi - lo + 1),
        Sizes::SameAsFreed => 0,
    };
    let initial: Vec<u64> = (0..live).map(|_| draw(&initial, &mut rng)).collect();
    let pairs = (0..PLAN)
        .map(|i| {
            let victim = match order {
                Order::Random => rng.below(live as u64) as u32,
                Order::Fifo => (i % live) as u32,
                Order::Lifo => 0,
            };
            (victim, draw(&sizes, &mut rng) as u32)
        })
        .collect();
    let lifo = matches!(order, Order::Lifo);
    Workload { window, initial, pairs, limit: DmaLimit::NONE, lifo }
}

/// Populates `c` with the workload's initial ranges and times its pairs.
fn run<C: Contestant>(g: &mut BenchmarkGroup<'_, WallTime>, id: BenchmarkId, w: &Workload, mut c: C) {
    let mut live: Vec<(Option<C::Handle>, u64)> =
        w.initial.iter().map(|&p| (Some(c.alloc(p).expect("initial population does not fit")), p)).collect();
    let mut i = 0usize;
    g.bench_function(id, |b| {
        b.iter(|| {
            let (victim, size) = w.pairs[i & (PLAN - 1)];
            i = i.wrapping_add(1);
            if w.lifo {
                let h = c.alloc(u64::from(size)).expect("allocation failed");
                c.free(h);
                return;
            }
            let slot = &mut live[victim as usize];
            c.free(slot.0.take().unwrap());
            let size = if size == 0 { slot.1 } else { u64::from(size) };
            slot.0 = Some(c.alloc(size).expect("allocation failed"));
            slot.1 = size;
        })
    });
    for (h, _) in live {
        c.free(h.unwrap());
    }
}

/// Which contestants to run on a workload (to keep the run near 5 minutes).
#[derive(Clone, Copy)]
struct Field {
    /// `ours_handle` besides `ours_cached` (they differ by one lock per
    /// operation; shown where the caches matter most).
    handle: bool,
    /// vm-allocator and range-alloc, whose operations are linear in the
    /// number of ranges; skipped where populating them alone takes longer
    /// than the rest of the workload (vm-allocator: 26 s for 44k ranges).
    linear_peers: bool,
}

const ALL: Field = Field { handle: true, linear_peers: true };

const NO_HANDLE: Field = Field { handle: false, linear_peers: true };

fn contest(c: &mut Criterion, group: &str, param: &str, w: &Workload, field: Field) {
    let mut g = c.benchmark_group(group);
    let cpus = 2;
    let tree = || RangeAllocator::new(Iova(0)..Iova(w.window), G).unwrap();
    {
        let a = IovaAllocator::new(tree(), cpus).unwrap();
        let ours = OursCached { a: &a, alloc_cpu: 0, free_cpu: 0, limit: w.limit };
        run(&mut g, BenchmarkId::new("ours_cached", param), w, ours);
    }
    if field.handle {
        let a = IovaAllocator::new(tree(), cpus).unwrap();
        let ours = OursHandle { alloc: a.cpu(0).unwrap(), free: None, limit: w.limit };
        run(&mut g, BenchmarkId::new("ours_handle", param), w, ours);
    }
    let ours = OursRange { r: tree(), limit: w.limit };
    run(&mut g, BenchmarkId::new("ours_range_only", param), w, ours);
    // Peers cannot take a limit: their window is what lies below it.
    let peer_window = w.window.min(w.limit.last().raw().saturating_add(1));
    let pages = peer_window / G;
    let mut buddy = buddy_system_allocator::FrameAllocator::<33>::new();
    buddy.add_frame(0, pages as usize);
    run(&mut g, BenchmarkId::new("buddy_system_allocator", param), w, Buddy(buddy));
    let offset = offset_allocator::Allocator::with_max_allocs(pages as u32, 1 << 20);
    run(&mut g, BenchmarkId::new("offset-allocator", param), w, OffsetAlloc(offset));
    if field.linear_peers {
        let vm = vm_allocator::AddressAllocator::new(0, peer_window).unwrap();
        run(&mut g, BenchmarkId::new("vm-allocator", param), w, VmAllocator(vm));
        let ra = range_alloc::RangeAllocator::new(0..pages);
        run(&mut g, BenchmarkId::new("range-alloc", param), w, RangeAlloc(ra));
    }
    g.finish();
}

/// (a) 1-page pairs, random frees, 10k live, 4 GiB.
fn a_one_page(c: &mut Criterion) {
    let w = workload(4 * GIB, 10_000, Sizes::Fixed(1), Sizes::Fixed(1), Order::Random, 1);
    contest(c, "a_1page_random", "10k", &w, ALL);
}

/// (a') The bare cost of a cached-size pair: 1 page, allocated and freed at
/// once (no access into the live set, whose cache misses weigh on (a)).
fn a_pair_lifo(c: &mut Criterion) {
    let w = workload(4 * GIB, 10_000, Sizes::Fixed(1), Sizes::Fixed(1), Order::Lifo, 8);
    let field = Field { handle: true, linear_peers: false };
    contest(c, "a_1page_lifo", "10k", &w, field);
}

/// (b) 1..32 pages, size-aligned, random frees, 10k live, 4 GiB.
fn b_mixed(c: &mut Criterion) {
    let w = workload(4 * GIB, 10_000, Sizes::Uniform(1, 32), Sizes::Uniform(1, 32), Order::Random, 2);
    contest(c, "b_1to32_random", "10k", &w, ALL);
}

/// (c) as (b), frees in FIFO order (oldest first).
fn c_fifo(c: &mut Criterion) {
    let w = workload(4 * GIB, 10_000, Sizes::Uniform(1, 32), Sizes::Uniform(1, 32), Order::Fifo, 3);
    contest(c, "c_1to32_fifo", "10k", &w, NO_HANDLE);
}

/// (d) 64..256 pages: beyond the caches. 10k of these (about 2 M pages
/// rounded) do not fit in 4 GiB (1 M pages): a 16 GiB window.
fn d_large(c: &mut Criterion) {
    let w = workload(16 * GIB, 10_000, Sizes::Uniform(64, 256), Sizes::Uniform(64, 256), Order::Random, 4);
    contest(c, "d_64to256_random", "10k", &w, NO_HANDLE);
}

/// (e) (b) at 100, 1k, 10k and 100k live. 100k ranges of 1..32 pages need
/// about 2.1 M pages: a 16 GiB window for the whole series.
fn e_scaling(c: &mut Criterion) {
    for (live, name) in [(100, "100"), (1_000, "1k"), (10_000, "10k"), (100_000, "100k")] {
        let w = workload(16 * GIB, live, Sizes::Uniform(1, 32), Sizes::Uniform(1, 32), Order::Random, 5);
        let field = Field { handle: false, linear_peers: live <= 10_000 };
        contest(c, "e_scaling_1to32", name, &w, field);
    }
}

/// (f) a 32-bit device in a 64 GiB window whose low 4 GiB is about 90% full
/// (44k ranges of 1..32 pages, 90% of 1 M pages after rounding); each pair
/// frees a range and allocates one of the same size below 4 GiB. Peers get
/// the 4 GiB they can reach as their window. (vm-allocator and range-alloc
/// measured 808 us and 45 us per pair here; vm-allocator takes 26 s to
/// populate, so both are left out of the regular run.)
fn f_dma32_full(c: &mut Criterion) {
    let mut w = workload(64 * GIB, 44_000, Sizes::Uniform(1, 32), Sizes::SameAsFreed, Order::Random, 6);
    w.limit = DmaLimit::bits(32);
    let rounded: u64 = w.initial.iter().map(|p| p.next_power_of_two()).sum();
    eprintln!(
        "f: the low 4 GiB is {:.1}% full (pages rounded)",
        rounded as f64 * 100.0 / (4 * GIB / G) as f64
    );
    let field = Field { handle: false, linear_peers: false };
    contest(c, "f_dma32_90pct_full", "44k", &w, field);
}

/// (g) allocate on CPU 0, free on CPU 1: ranges travel through the depot.
fn g_cross_cpu(c: &mut Criterion) {
    let w = workload(4 * GIB, 10_000, Sizes::Uniform(1, 32), Sizes::Uniform(1, 32), Order::Random, 7);
    let mut g = c.benchmark_group("g_cross_cpu_1to32");
    let tree = || RangeAllocator::new(Iova(0)..Iova(w.window), G).unwrap();
    {
        let a = IovaAllocator::new(tree(), 2).unwrap();
        let ours = OursCached { a: &a, alloc_cpu: 0, free_cpu: 1, limit: w.limit };
        run(&mut g, BenchmarkId::new("ours_cached", "10k"), &w, ours);
    }
    {
        let a = IovaAllocator::new(tree(), 2).unwrap();
        let ours = OursHandle { alloc: a.cpu(0).unwrap(), free: Some(a.cpu(1).unwrap()), limit: w.limit };
        run(&mut g, BenchmarkId::new("ours_handle", "10k"), &w, ours);
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .without_plots()
}

criterion_group! {
    name = iova;
    config = config();
    targets = a_one_page, a_pair_lifo, b_mixed, c_fifo, d_large, e_scaling, f_dma32_full, g_cross_cpu
}
criterion_main!(iova);
