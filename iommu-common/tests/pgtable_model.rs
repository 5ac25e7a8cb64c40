//! Property tests: random map/unmap sequences against a page-by-page model,
//! for both VMSAv8-64 stages and both granules. Checks every outcome (success
//! or the exact error kind), the translation of every touched page, that
//! failed operations change nothing (table, allocator), and that unmapping
//! everything frees every table but the root.

use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::pgtable::vmsav8::{
    Format, Granule, SplitPolicy, Stage1, Stage2, TableConfig, TableStats, Vmsav8Table,
};
use iommu_common::pgtable::{Access, IoPageTable, IotlbGather, MemType, PgTableError, PoolAllocator, Prot};
use proptest::prelude::*;

/// Pages of the model window, in blocks of the smallest block size.
const WINDOW_BLOCKS: u64 = 4;

#[derive(Clone, Debug)]
enum How {
    /// `map_pages` with the granule's page size.
    Pages,
    /// `map_pages` with the smallest block size (start and count rounded).
    Blocks,
    /// `map` (largest leaves alignment allows).
    Largest,
}

#[derive(Clone, Debug)]
enum Op {
    /// With `target`, `page` is moved into the `target`-th free run of the
    /// model (and `count` clipped to it), so that most maps succeed.
    Map { page: u64, count: u64, pa_shift: u64, prot: usize, how: How, target: Option<u16> },
    /// With `target`, the range is moved into the `target`-th mapped run.
    Unmap { page: u64, count: u64, target: Option<u16> },
    /// Make allocations fail after `n` more pages (`None`: no limit).
    Limit(Option<usize>),
    /// Complete the gather (when completion is deferred).
    Complete,
}

const PROTS: [Prot; 5] = [
    Prot::RW,
    Prot::RO,
    Prot::new(Access::READ.union(Access::EXEC), MemType::WriteBack),
    Prot::new(Access::RW, MemType::Device),
    Prot::new(Access::READ.union(Access::PRIV), MemType::NonCacheable),
];

fn op(block_pages: u64) -> impl Strategy<Value = Op> {
    let window = WINDOW_BLOCKS * block_pages;
    let start = prop_oneof![
        0..window,
        (0..WINDOW_BLOCKS, 0..4u64).prop_map(move |(b, o)| (b * block_pages + o).saturating_sub(2)),
    ];
    let count = prop_oneof![1..8u64, 1..2 * block_pages, (1..3u64).prop_map(move |b| b * block_pages),];
    let how = prop_oneof![Just(How::Pages), Just(How::Blocks), Just(How::Largest)];
    // Output shifts that keep block alignment, and some that break it.
    let pa_shift = prop_oneof![(0..8u64).prop_map(move |b| b * block_pages), 0..8u64];
    let target = prop_oneof![1 => Just(None), 2 => any::<u16>().prop_map(Some)];
    prop_oneof![
        5 => (start.clone(), count.clone(), pa_shift, 0..PROTS.len(), how, target.clone()).prop_map(
            |(page, count, pa_shift, prot, how, target)| Op::Map { page, count, pa_shift, prot, how, target }
        ),
        4 => (start, count, target).prop_map(|(page, count, target)| Op::Unmap { page, count, target }),
        1 => prop_oneof![Just(None), (0..4usize).prop_map(Some)].prop_map(Op::Limit),
        1 => Just(Op::Complete),
    ]
}

struct Harness<F: Format> {
    t: Vmsav8Table<F, PoolAllocator>,
    model: Vec<Option<(u64, Prot)>>,
    page: u64,
    block_pages: u64,
    base: u64,
    pa_base: u64,
    /// Check at most this many pages per range (all of them natively).
    check_budget: u64,
    /// The gather unmaps go to.
    g: IotlbGather,
    /// Complete the gather only on `Op::Complete` (and at the end) instead
    /// of after every unmap: exercises unmaps and maps around pending splits.
    defer: bool,
}

impl<F: Format> Harness<F> {
    fn new(fmt: F, granule: Granule, split: SplitPolicy, defer: bool, check_budget: u64) -> Self {
        let page = granule.size();
        let block_pages = 1 << granule.bits_per_level();
        // Straddle a level-1 (4K: 1 GiB) / level-1 entry (64K: 4 TiB) boundary
        // so that tables at several levels come and go.
        let base = match granule {
            Granule::Size4K => (1 << 30) - 2 * block_pages * page,
            Granule::Size64K => (1 << 42) - 2 * block_pages * page,
        };
        let cfg = TableConfig::new(granule, 48, 48).with_split(split);
        let pool = PoolAllocator::new(if granule == Granule::Size4K { 256 } else { 96 }, page as usize);
        Self {
            t: Vmsav8Table::new(fmt, cfg, pool).unwrap(),
            model: vec![None; (WINDOW_BLOCKS * block_pages) as usize],
            page,
            block_pages,
            base,
            pa_base: 0x40_0000_0000,
            check_budget,
            g: IotlbGather::new(),
            defer,
        }
    }

    fn iova(&self, page: u64) -> Iova {
        Iova(self.base + page * self.page)
    }

    fn expected_prot(&self, p: Prot) -> Prot {
        let f = self.t.format();
        f.leaf_prot(f.leaf_attrs(p).unwrap())
    }

    /// Compares the table with the model on `[page, page + count)` and one
    /// page either side.
    fn check_range(&self, page: u64, count: u64) {
        let lo = page.saturating_sub(1);
        let hi = (page + count + 1).min(self.model.len() as u64);
        let step = ((hi - lo) / self.check_budget).max(1);
        let mut p = lo;
        while p < hi {
            self.check_page(p);
            p += step;
        }
        self.check_page(hi - 1);
    }

    /// Whether page `p` lies in a range the gather still has to invalidate
    /// (where a block being split is transiently unmapped).
    fn in_gather(&self, p: u64) -> bool {
        let a = self.iova(p).0;
        self.g.ranges().iter().any(|r| r.start.0 <= a && a < r.end.0)
    }

    fn check_page(&self, p: u64) {
        let got = self.t.lookup(Iova(self.iova(p).0 + 8));
        match self.model[p as usize] {
            None => assert_eq!(got, None, "page {p} should be unmapped"),
            Some(_) if got.is_none() && self.g.pending_splits() > 0 && self.in_gather(p) => {}
            Some((pa, prot)) => {
                let got = got.unwrap_or_else(|| panic!("page {p} should be mapped"));
                assert_eq!(got.paddr, PhysAddr(pa + 8), "page {p}");
                assert_eq!(got.prot, self.expected_prot(prot), "page {p}");
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        let window = self.model.len() as u64;
        match *op {
            Op::Limit(n) => {
                let used = self.t.allocator().pages_in_use();
                self.t.allocator_mut().set_limit(n.map(|n| used + n));
            }
            Op::Map { page, count, pa_shift, prot, ref how, target } => {
                let (page, count) = self.retarget(page, count, target, false);
                let (page, count, pgsize) = match how {
                    How::Blocks => {
                        let bp = self.block_pages;
                        let page = page / bp * bp;
                        let blocks = count.div_ceil(bp).min((window - page) / bp).max(1);
                        (page, blocks * bp, bp * self.page)
                    }
                    _ => (page, count.min(window - page), self.page),
                };
                let mut pa = self.pa_base + (page + pa_shift) * self.page;
                if pgsize != self.page {
                    // Blocks need an aligned output address.
                    pa &= !(pgsize - 1);
                }
                let iova = self.iova(page);
                let len = count * self.page;
                let before = (self.t.stats(), self.t.allocator().in_use());
                let r = match how {
                    How::Largest => self.t.map(iova, PhysAddr(pa), len, PROTS[prot]),
                    How::Pages | How::Blocks => {
                        self.t.map_pages(iova, PhysAddr(pa), pgsize, (len / pgsize) as usize, PROTS[prot])
                    }
                };
                match r {
                    Ok(()) => self.record_map(page, count, pa, prot),
                    Err(PgTableError::AlreadyMapped(a)) => {
                        assert!((iova.0..iova.0 + len).contains(&a.0), "{a:?} outside the request");
                        // Mapped, or a block split waiting for completion.
                        assert!((page..page + count).any(|p| {
                            self.model[p as usize].is_some()
                                || (self.g.pending_splits() > 0 && self.in_gather(p))
                        }));
                        self.unchanged_after(PgTableError::AlreadyMapped(a), before);
                    }
                    Err(e) => self.unchanged_after(e, before),
                }
                self.check_range(page, count);
            }
            Op::Unmap { page, count, target } => {
                let (page, count) = self.retarget(page, count, target, true);
                let count = count.min(window - page);
                let iova = self.iova(page);
                let before = (self.t.stats(), self.t.allocator().in_use());
                let gathered = (self.g.ranges().to_vec(), self.g.freed_tables(), self.g.pending_splits());
                let r = self.t.unmap(iova, count * self.page, &mut self.g);
                match r {
                    Ok(()) => {
                        assert!((page..page + count).all(|p| self.model[p as usize].is_some()));
                        for p in page..page + count {
                            self.model[p as usize] = None;
                        }
                        // The gathered ranges cover what was unmapped.
                        assert!(self.in_gather(page) && self.in_gather(page + count - 1));
                        if !self.defer {
                            self.t.complete(&mut self.g).unwrap();
                        }
                    }
                    Err(e) => {
                        if let PgTableError::NotMapped(a) = e {
                            let p = (a.0 - self.base) / self.page;
                            assert!(p >= page && p < page + count, "{a:?} outside the request");
                            assert!((page..page + count).any(|p| self.model[p as usize].is_none()));
                        }
                        let now = (self.g.ranges().to_vec(), self.g.freed_tables(), self.g.pending_splits());
                        assert_eq!(now, gathered, "{e:?} changed the gather");
                        self.unchanged_after(e, before);
                    }
                }
                self.check_range(page, count);
            }
            Op::Complete => {
                self.t.complete(&mut self.g).unwrap();
                assert!(self.g.is_empty());
                self.check_range(0, self.model.len() as u64);
            }
        }
    }

    /// Moves `[page, page + count)` into the `target`-th run of mapped
    /// (`mapped`) or free pages, if there is one.
    fn retarget(&self, page: u64, count: u64, target: Option<u16>, mapped: bool) -> (u64, u64) {
        let Some(k) = target else { return (page, count) };
        let mut runs = Vec::new();
        let mut p = 0;
        let n = self.model.len();
        while p < n {
            if self.model[p].is_some() != mapped {
                p += 1;
                continue;
            }
            let q = (p..n).find(|&q| self.model[q].is_some() != mapped).unwrap_or(n);
            runs.push((p as u64, q as u64));
            p = q;
        }
        if runs.is_empty() {
            return (page, count);
        }
        let (a, b) = runs[k as usize % runs.len()];
        let start = a + page % (b - a);
        (start, count.min(b - start))
    }

    fn record_map(&mut self, page: u64, count: u64, pa: u64, prot: usize) {
        assert!(
            (page..page + count).all(|p| self.model[p as usize].is_none()),
            "map succeeded over a mapping"
        );
        for k in 0..count {
            self.model[(page + k) as usize] = Some((pa + k * self.page, PROTS[prot]));
        }
    }

    fn unchanged_after(&self, e: PgTableError, before: (TableStats, usize)) {
        if !matches!(e, PgTableError::AlreadyMapped(_) | PgTableError::NotMapped(_)) {
            assert_eq!(e, PgTableError::OutOfMemory, "unexpected error");
        }
        assert_eq!((self.t.stats(), self.t.allocator().in_use()), before, "{e:?} changed the table");
    }

    /// Full comparison, then unmap everything: only the root may remain.
    fn finish(mut self) {
        self.t.complete(&mut self.g).unwrap();
        let s = self.t.stats();
        assert_eq!((s.empty_tables, s.pending), (0, 0));
        assert_eq!(s.tables, self.t.allocator().in_use());
        let mapped = self.model.iter().filter(|m| m.is_some()).count() as u64;
        assert_eq!(s.mapped_bytes, mapped * self.page);
        self.check_range(0, self.model.len() as u64);
        self.t.allocator_mut().set_limit(None);
        let mut g = IotlbGather::new();
        let mut p = 0;
        while p < self.model.len() {
            if self.model[p].is_none() {
                p += 1;
                continue;
            }
            let q = (p..self.model.len()).find(|&q| self.model[q].is_none()).unwrap_or(self.model.len());
            self.t.unmap(self.iova(p as u64), (q - p) as u64 * self.page, &mut g).unwrap();
            p = q;
        }
        self.t.complete(&mut g).unwrap();
        assert_eq!(self.t.allocator().in_use(), 1, "tables left after unmapping everything");
        assert_eq!(self.t.stats().tables, 1);
    }
}

fn run<F: Format>(fmt: F, granule: Granule, split: SplitPolicy, defer: bool, ops: &[Op]) {
    let budget = if cfg!(miri) { 16 } else { u64::MAX };
    let mut h = Harness::new(fmt, granule, split, defer, budget);
    for op in ops {
        h.apply(op);
    }
    h.finish();
}

/// `cases` natively; under Miri (slow at filling tables, above all 8192-entry
/// ones) `miri_cases`.
fn config(cases: u32, miri_cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { miri_cases } else { cases },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ops(block_pages: u64) -> impl Strategy<Value = Vec<Op>> {
    // Under Miri, short sequences; shorter still with 8192-entry tables.
    let max = match (cfg!(miri), block_pages > 512) {
        (false, _) => 48,
        (true, false) => 6,
        (true, true) => 4,
    };
    proptest::collection::vec(op(block_pages), 1..max)
}

fn split() -> impl Strategy<Value = SplitPolicy> {
    prop_oneof![Just(SplitPolicy::BreakBeforeMake), Just(SplitPolicy::Bbml2)]
}

proptest! {
    #![proptest_config(config(96, 3))]

    #[test]
    fn pgtable_model_stage1_4k(ops in ops(512), split in split(), defer in any::<bool>()) {
        run(Stage1::default(), Granule::Size4K, split, defer, &ops);
    }

    #[test]
    fn pgtable_model_stage2_4k(ops in ops(512), split in split(), defer in any::<bool>()) {
        run(Stage2, Granule::Size4K, split, defer, &ops);
    }
}

proptest! {
    #![proptest_config(config(24, 1))]

    #[test]
    fn pgtable_model_stage1_64k(ops in ops(8192), split in split(), defer in any::<bool>()) {
        run(Stage1::default(), Granule::Size64K, split, defer, &ops);
    }

    #[test]
    fn pgtable_model_stage2_64k(ops in ops(8192), split in split(), defer in any::<bool>()) {
        run(Stage2, Granule::Size64K, split, defer, &ops);
    }
}

/// A fixed sequence touching every path, so a plain run exercises them even
/// when the random cases happen not to.
#[test]
fn pgtable_model_fixed_sequence() {
    let bp = 512;
    let ops = [
        Op::Map { page: 0, count: 3 * bp, pa_shift: 0, prot: 0, how: How::Largest, target: None },
        Op::Unmap { page: bp + 7, count: 3, target: None },
        Op::Map { page: bp + 8, count: 1, pa_shift: 5, prot: 3, how: How::Pages, target: None },
        Op::Map { page: bp + 6, count: 4, pa_shift: 0, prot: 1, how: How::Pages, target: None },
        Op::Limit(Some(0)),
        Op::Unmap { page: 2 * bp + 1, count: 1, target: None },
        Op::Map { page: 3 * bp, count: 600, pa_shift: 0, prot: 1, how: How::Pages, target: None },
        Op::Limit(None),
        Op::Unmap { page: 0, count: bp + 7, target: None },
        Op::Map { page: 3 * bp, count: bp, pa_shift: 0, prot: 2, how: How::Blocks, target: None },
        Op::Unmap { page: 3 * bp - 1, count: 2, target: None },
    ];
    for split in [SplitPolicy::BreakBeforeMake, SplitPolicy::Bbml2] {
        for defer in [false, true] {
            run(Stage1::default(), Granule::Size4K, split, defer, &ops);
            run(Stage2, Granule::Size4K, split, defer, &ops);
        }
    }
}
