//! Entry bits from the spec's PDE/PTE figures (48882 2.2.3), the walker's
//! behaviour, and random map/unmap sequences against the page-by-page model
//! the VMSAv8 property tests use (`tests/pgtable_model.rs`).

extern crate std;

use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::entry::{self, Decoded};
use super::*;
use crate::pgtable::{IovaRange, PoolAllocator};

const K4: u64 = 0x1000;
const M2: u64 = 0x20_0000;
const G1: u64 = 0x4000_0000;

fn table(levels: u8, pages: usize) -> AmdTable<PoolAllocator> {
    AmdTable::new(levels, PoolAllocator::new(pages, 4096)).unwrap()
}

/// The raw entry at `level` on the walk of `iova` (tables must exist above).
fn raw(t: &AmdTable<PoolAllocator>, iova: u64, level: u8) -> u64 {
    let mut pa = t.root().0;
    let mut l = t.levels();
    loop {
        let e = t.tbl(pa).get(entry::index(iova, l));
        if l == level {
            return e;
        }
        match entry::decode(e, l) {
            Decoded::Table { table, level } => {
                pa = table;
                l = level;
            }
            _ => panic!("no table at level {l} for {iova:#x}"),
        }
    }
}

#[test]
fn entry_bits_from_the_spec() {
    // PR [0], NextLevel [11:9], Address [51:12], FC [60], IR [61], IW [62].
    assert_eq!(entry::pde(0x1234_5000, 2), 1 | (2 << 9) | 0x1234_5000 | (1 << 61) | (1 << 62));
    assert_eq!(entry::pte(0xabc_d000, true, false, true), 1 | 0xabc_d000 | (1 << 60) | (1 << 61));
    assert_eq!(entry::pte(0xabc_d000, false, true, false), 1 | 0xabc_d000 | (1 << 62));
    assert_eq!(entry::level_shift(1), 12);
    assert_eq!(entry::level_shift(2), 21);
    assert_eq!(entry::level_shift(3), 30);
    assert_eq!(entry::level_shift(6), 57);
    // NextLevel 7: 8 KiB at level 1 is bit 12 zero; 16 KiB is bit 12 one,
    // bit 13 zero; 4 MiB at level 2 is bits [20:12] ones, bit 21 zero.
    assert_eq!(entry::decode(1 | (7 << 9) | 0x2000, 1), Decoded::Page { addr: 0x2000, shift: 13 });
    assert_eq!(entry::decode(1 | (7 << 9) | 0x5000, 1), Decoded::Page { addr: 0x4000, shift: 14 });
    assert_eq!(entry::decode(1 | (7 << 9) | 0x5f_f000, 2), Decoded::Page { addr: 0x40_0000, shift: 22 });
    // 2 MiB encoded at level 1 is level 2's default size: not allowed.
    assert_eq!(entry::decode(1 | (7 << 9) | 0xf_f000, 1), Decoded::Invalid);
    // A PDE must point below its own level.
    assert_eq!(entry::decode(1 | (3 << 9), 3), Decoded::Invalid);
    assert_eq!(entry::decode(0xffff_ffff_ffff_fffe, 3), Decoded::NotPresent);
    // Level skipping: a level-4 PDE to a level-1 table needs IOVA [38:21] zero.
    assert!(entry::skip_ok(0x8000_001f_f000, 4, 1));
    assert!(!entry::skip_ok(0x20_0000, 4, 1));
}

#[test]
fn three_levels_as_qemu_walks_them() {
    let mut t = table(3, 16);
    assert_eq!((t.ias(), t.oas(), t.page_sizes()), (39, 52, K4 | M2 | G1));
    t.map_pages(Iova(0x1234_5000), PhysAddr(0x8000_0000), K4, 1, Prot::RW).unwrap();
    // Root (level 3) PDE -> level 2 PDE -> level 1 PTE with FC, IR, IW.
    let l3 = raw(&t, 0x1234_5000, 3);
    assert_eq!(l3 & 0xe01, 1 | (2 << 9));
    assert_eq!(l3 & (IR | IW), IR | IW);
    assert_eq!(raw(&t, 0x1234_5000, 2) & 0xe01, 1 | (1 << 9));
    assert_eq!(raw(&t, 0x1234_5000, 1), 1 | 0x8000_0000 | FC | IR | IW);
    let tr = t.lookup(Iova(0x1234_5678)).unwrap();
    assert_eq!((tr.paddr, tr.size, tr.prot), (PhysAddr(0x8000_0678), K4, Prot::RW));
    assert_eq!(t.stats().tables, 3);
    let mut g = IotlbGather::new();
    t.unmap_pages(Iova(0x1234_5000), K4, 1, &mut g).unwrap();
    assert_eq!(g.ranges(), &[IovaRange { start: Iova(0x1234_5000), end: Iova(0x1234_6000) }]);
    assert!(g.tables_removed());
    assert_eq!(g.freed_tables(), 2);
    t.complete(&mut g).unwrap();
    assert_eq!(t.allocator().in_use(), 1);
    assert_eq!(t.lookup(Iova(0x1234_5000)), None);
}

#[test]
fn large_pages_stop_at_a_lower_level_with_next_level_0() {
    let mut t = table(4, 16);
    t.map(Iova(G1 - M2 - K4), PhysAddr(0x10_0000_0000 + G1 - M2 - K4), G1 + 2 * M2 + 2 * K4, Prot::RO)
        .unwrap();
    let s = t.stats();
    assert_eq!(s.leaves[1..4], [2, 2, 1]);
    assert_eq!(raw(&t, G1, 3), 1 | (0x10_4000_0000) | FC | IR);
    assert_eq!(raw(&t, G1 - M2, 2), 1 | (0x10_3fe0_0000) | FC | IR);
    assert_eq!(t.lookup(Iova(G1 + 5)).unwrap().size, G1);
    // Misaligned output: 4 KiB pages only.
    let mut t2 = table(3, 16);
    t2.map(Iova(0), PhysAddr(K4), 2 * M2, Prot::RW).unwrap();
    assert_eq!(t2.stats().leaves[1], 1024);
}

#[test]
fn partial_unmap_splits_a_leaf_in_one_store() {
    let mut t = table(3, 16);
    t.map_pages(Iova(G1), PhysAddr(2 * G1), G1, 1, Prot::RW).unwrap();
    let mut g = IotlbGather::new();
    t.unmap(Iova(G1 + M2 + K4), K4, &mut g).unwrap();
    // The whole old leaf is to be invalidated.
    assert_eq!(g.ranges(), &[IovaRange { start: Iova(G1), end: Iova(2 * G1) }]);
    t.complete(&mut g).unwrap();
    assert_eq!(t.stats().leaves[1..4], [511, 511, 0]);
    assert_eq!(t.lookup(Iova(G1 + M2 + K4)), None);
    assert_eq!(t.iova_to_phys(Iova(G1 + M2 + 2 * K4)), Some(PhysAddr(2 * G1 + M2 + 2 * K4)));
    assert_eq!(t.iova_to_phys(Iova(G1 + 5 * M2 + 8)), Some(PhysAddr(2 * G1 + 5 * M2 + 8)));
}

#[test]
fn refusals_change_nothing() {
    let mut t = table(3, 16);
    t.map_pages(Iova(M2 + 5 * K4), PhysAddr(0x9000_0000), K4, 1, Prot::RW).unwrap();
    let before = (t.stats(), t.allocator().in_use());
    assert_eq!(
        t.map_pages(Iova(M2), PhysAddr(0), K4, 10, Prot::RW),
        Err(PgTableError::AlreadyMapped(Iova(M2 + 5 * K4)))
    );
    assert_eq!(
        t.map_pages(Iova(M2), PhysAddr(0), M2, 1, Prot::RW),
        Err(PgTableError::AlreadyMapped(Iova(M2)))
    );
    assert_eq!(
        t.map_pages(Iova(0), PhysAddr(0), 0x2000, 1, Prot::RW),
        Err(PgTableError::UnsupportedPageSize(0x2000))
    );
    assert_eq!(t.map_pages(Iova(1 << 39), PhysAddr(0), K4, 1, Prot::RW), Err(PgTableError::IovaOutOfRange));
    assert_eq!(
        t.map_pages(Iova(0), PhysAddr(0), K4, 1, Prot::new(Access::EXEC, MemType::WriteBack)),
        Err(PgTableError::NoAccess)
    );
    let mut g = IotlbGather::new();
    assert_eq!(t.unmap(Iova(M2 + 4 * K4), 2 * K4, &mut g), Err(PgTableError::NotMapped(Iova(M2 + 4 * K4))));
    assert!(g.is_empty());
    let used = t.allocator().pages_in_use();
    t.allocator_mut().set_limit(Some(used));
    assert_eq!(t.map_pages(Iova(G1), PhysAddr(0), K4, 1, Prot::RW), Err(PgTableError::OutOfMemory));
    assert_eq!((t.stats(), t.allocator().in_use()), before);
    // A gather of another table.
    let mut other = table(3, 4);
    other.map_pages(Iova(0), PhysAddr(0), K4, 1, Prot::RW).unwrap();
    other.unmap(Iova(0), K4, &mut g).unwrap();
    assert_eq!(t.unmap(Iova(M2 + 5 * K4), K4, &mut g), Err(PgTableError::ForeignGather));
    other.complete(&mut g).unwrap();
}

#[test]
fn lookup_follows_skipped_levels_and_next_level_7() {
    let mut t = table(4, 16);
    // Hand-written: a level-4 PDE straight to a level-1 table (levels 3 and
    // 2 skipped) holding a 16 KiB NextLevel-7 page at entry 4..8.
    let leaf = t.reserve(1).unwrap().pop().unwrap();
    let l1 = Tbl(leaf.va.cast());
    l1.zero();
    for i in 4..8 {
        l1.set(i, 1 | (7 << 9) | 0x7_5000 | IR);
    }
    t.tbl(t.root().0).set(0, entry::pde(leaf.pa.0, 1));
    assert_eq!(t.iova_to_phys(Iova(0x5123)), Some(PhysAddr(0x7_5123)));
    assert_eq!(t.lookup(Iova(0x4000)).unwrap().size, 0x4000);
    assert_eq!(t.lookup(Iova(0x4000)).unwrap().prot, Prot::new(Access::READ, MemType::NonCacheable));
    // IOVA bit 21 set: the skipped levels' bits are not zero.
    assert_eq!(t.lookup(Iova(M2 + 0x4000)), None);
}

// ---- model ----

const PROTS: [Prot; 4] = [
    Prot::RW,
    Prot::RO,
    Prot::new(Access::WRITE, MemType::WriteBack),
    Prot::new(Access::RW, MemType::Device),
];
const BLOCK_PAGES: u64 = 512;
const WINDOW: u64 = 4 * BLOCK_PAGES;

#[derive(Clone, Debug)]
enum Op {
    Map { page: u64, count: u64, pa_shift: u64, prot: usize, how: u8, target: Option<u16> },
    Unmap { page: u64, count: u64, target: Option<u16> },
    Limit(Option<usize>),
    Complete,
}

fn op() -> impl Strategy<Value = Op> {
    let start =
        prop_oneof![0..WINDOW, (0..4u64, 0..4u64).prop_map(|(b, o)| (b * BLOCK_PAGES + o).saturating_sub(2))];
    let count = prop_oneof![1..8u64, 1..2 * BLOCK_PAGES, (1..3u64).prop_map(|b| b * BLOCK_PAGES)];
    let pa_shift = prop_oneof![(0..8u64).prop_map(|b| b * BLOCK_PAGES), 0..8u64];
    let target = prop_oneof![1 => Just(None), 2 => any::<u16>().prop_map(Some)];
    prop_oneof![
        5 => (start.clone(), count.clone(), pa_shift, 0..PROTS.len(), 0..3u8, target.clone())
            .prop_map(|(page, count, pa_shift, prot, how, target)| Op::Map { page, count, pa_shift, prot, how, target }),
        4 => (start, count, target).prop_map(|(page, count, target)| Op::Unmap { page, count, target }),
        1 => prop_oneof![Just(None), (0..3usize).prop_map(Some)].prop_map(Op::Limit),
        1 => Just(Op::Complete),
    ]
}

struct Harness {
    t: AmdTable<PoolAllocator>,
    model: Vec<Option<(u64, Prot)>>,
    base: u64,
    g: IotlbGather,
    defer: bool,
}

impl Harness {
    fn new(levels: u8, defer: bool) -> Self {
        // Straddle a 1 GiB boundary so tables at several levels come and go.
        Self {
            t: table(levels, 128),
            model: vec![None; WINDOW as usize],
            base: G1 - 2 * M2,
            g: IotlbGather::new(),
            defer,
        }
    }

    fn iova(&self, p: u64) -> u64 {
        self.base + p * K4
    }

    fn check_page(&self, p: u64) {
        let got = self.t.lookup(Iova(self.iova(p) + 8));
        match self.model[p as usize] {
            None => assert_eq!(got, None, "page {p} should be unmapped"),
            Some((pa, prot)) => {
                let got = got.unwrap_or_else(|| panic!("page {p} should be mapped"));
                assert_eq!(got.paddr, PhysAddr(pa + 8), "page {p}");
                assert_eq!(got.prot, AmdTable::<PoolAllocator>::effective_prot(prot), "page {p}");
            }
        }
    }

    fn check_range(&self, page: u64, count: u64) {
        let lo = page.saturating_sub(1);
        let hi = (page + count + 1).min(WINDOW);
        for p in lo..hi {
            self.check_page(p);
        }
    }

    fn retarget(&self, page: u64, count: u64, target: Option<u16>, mapped: bool) -> (u64, u64) {
        let Some(k) = target else { return (page, count) };
        let n = self.model.len();
        let mut runs = Vec::new();
        let mut p = 0;
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

    fn snapshot(&self) -> (AmdTableStats, usize) {
        (self.t.stats(), self.t.allocator().in_use())
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Limit(n) => {
                let used = self.t.allocator().pages_in_use();
                self.t.allocator_mut().set_limit(n.map(|n| used + n));
            }
            Op::Complete => {
                self.t.complete(&mut self.g).unwrap();
                assert!(self.g.is_empty());
            }
            Op::Map { page, count, pa_shift, prot, how, target } => {
                let (page, count) = self.retarget(page, count, target, false);
                let (page, count, pgsize) = if how == 1 {
                    let page = page / BLOCK_PAGES * BLOCK_PAGES;
                    let blocks = count.div_ceil(BLOCK_PAGES).min((WINDOW - page) / BLOCK_PAGES).max(1);
                    (page, blocks * BLOCK_PAGES, M2)
                } else {
                    (page, count.min(WINDOW - page), K4)
                };
                let mut pa = 0x40_0000_0000 + (page + pa_shift) * K4;
                pa &= !(pgsize - 1);
                let iova = Iova(self.iova(page));
                let before = self.snapshot();
                let r = if how == 2 {
                    self.t.map(iova, PhysAddr(pa), count * K4, PROTS[prot])
                } else {
                    self.t.map_pages(iova, PhysAddr(pa), pgsize, (count * K4 / pgsize) as usize, PROTS[prot])
                };
                match r {
                    Ok(()) => {
                        assert!(
                            (page..page + count).all(|p| self.model[p as usize].is_none()),
                            "map over a mapping"
                        );
                        for k in 0..count {
                            self.model[(page + k) as usize] = Some((pa + k * K4, PROTS[prot]));
                        }
                    }
                    Err(e) => {
                        match e {
                            PgTableError::AlreadyMapped(a) => {
                                assert!((iova.0..iova.0 + count * K4).contains(&a.0));
                                // The start of the requested part the conflicting
                                // entry covers: something there is mapped.
                                let p = (a.0 - self.base) / K4;
                                assert!((p..page + count).any(|p| self.model[p as usize].is_some()));
                            }
                            PgTableError::OutOfMemory => {}
                            e => panic!("unexpected {e:?}"),
                        }
                        assert_eq!(self.snapshot(), before, "{e:?} changed the table");
                    }
                }
                self.check_range(page, count);
            }
            Op::Unmap { page, count, target } => {
                let (page, count) = self.retarget(page, count, target, true);
                let count = count.min(WINDOW - page);
                let before = self.snapshot();
                let gathered = (self.g.ranges().to_vec(), self.g.freed_tables());
                match self.t.unmap(Iova(self.iova(page)), count * K4, &mut self.g) {
                    Ok(()) => {
                        assert!((page..page + count).all(|p| self.model[p as usize].is_some()));
                        for p in page..page + count {
                            self.model[p as usize] = None;
                        }
                        let covered = |a: u64| self.g.ranges().iter().any(|r| r.start.0 <= a && a < r.end.0);
                        assert!(covered(self.iova(page)) && covered(self.iova(page + count - 1)));
                        if !self.defer {
                            self.t.complete(&mut self.g).unwrap();
                        }
                    }
                    Err(e) => {
                        match e {
                            PgTableError::NotMapped(a) => {
                                let p = (a.0 - self.base) / K4;
                                assert!(p >= page && p < page + count && self.model[p as usize].is_none());
                            }
                            PgTableError::OutOfMemory => {}
                            e => panic!("unexpected {e:?}"),
                        }
                        assert_eq!((self.g.ranges().to_vec(), self.g.freed_tables()), gathered);
                        assert_eq!(self.snapshot(), before, "{e:?} changed the table");
                    }
                }
                self.check_range(page, count);
            }
        }
    }

    fn finish(mut self) {
        self.t.complete(&mut self.g).unwrap();
        let s = self.t.stats();
        assert_eq!(s.empty_tables, 0);
        assert_eq!(s.tables, self.t.allocator().in_use());
        let mapped = self.model.iter().filter(|m| m.is_some()).count() as u64;
        assert_eq!(s.mapped_bytes, mapped * K4);
        self.check_range(0, WINDOW);
        self.t.allocator_mut().set_limit(None);
        let mut g = IotlbGather::new();
        let n = self.model.len();
        let mut p = 0;
        while p < n {
            if self.model[p].is_none() {
                p += 1;
                continue;
            }
            let q = (p..n).find(|&q| self.model[q].is_none()).unwrap_or(n);
            self.t.unmap(Iova(self.iova(p as u64)), (q - p) as u64 * K4, &mut g).unwrap();
            p = q;
        }
        self.t.complete(&mut g).unwrap();
        assert_eq!(self.t.allocator().in_use(), 1, "tables left after unmapping everything");
    }
}

fn run(levels: u8, defer: bool, ops: &[Op]) {
    let mut h = Harness::new(levels, defer);
    for op in ops {
        h.apply(op);
    }
    h.finish();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 2 } else { 128 }, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    // Each case checks every page of a window larger than 1 GiB against the
    // model: minutes per case under Miri. The unit tests run there instead.
    #[cfg_attr(miri, ignore = "too slow under Miri; unit tests cover the unsafe table memory")]
    fn amd_model_3_levels(ops in proptest::collection::vec(op(), 1..40), defer in any::<bool>()) {
        run(3, defer, &ops);
    }

    #[test]
    // Each case checks every page of a window larger than 1 GiB against the
    // model: minutes per case under Miri. The unit tests run there instead.
    #[cfg_attr(miri, ignore = "too slow under Miri; unit tests cover the unsafe table memory")]
    fn amd_model_4_levels(ops in proptest::collection::vec(op(), 1..24), defer in any::<bool>()) {
        run(4, defer, &ops);
    }
}

#[test]
fn amd_model_fixed_sequence() {
    let bp = BLOCK_PAGES;
    let ops = [
        Op::Map { page: 0, count: 3 * bp, pa_shift: 0, prot: 0, how: 2, target: None },
        Op::Unmap { page: bp + 7, count: 3, target: None },
        Op::Map { page: bp + 8, count: 1, pa_shift: 5, prot: 3, how: 0, target: None },
        Op::Map { page: bp + 6, count: 4, pa_shift: 0, prot: 1, how: 0, target: None },
        Op::Limit(Some(0)),
        Op::Unmap { page: 2 * bp + 1, count: 1, target: None },
        Op::Map { page: 3 * bp, count: 600, pa_shift: 0, prot: 1, how: 0, target: None },
        Op::Limit(None),
        Op::Unmap { page: 0, count: bp + 7, target: None },
        Op::Map { page: 3 * bp, count: bp, pa_shift: 0, prot: 2, how: 1, target: None },
        Op::Unmap { page: 3 * bp - 1, count: 2, target: None },
    ];
    for defer in [false, true] {
        run(3, defer, &ops);
        run(6, defer, &ops);
    }
}
