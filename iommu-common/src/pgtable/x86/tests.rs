//! Entry bits from the spec's tables, walker behaviour, and property tests
//! against a page-by-page model (as `tests/pgtable_model.rs` does for
//! VMSAv8-64).

use alloc::vec;
use alloc::vec::Vec;

use proptest::prelude::*;

use super::*;
use crate::addr::{Iova, PhysAddr};
use crate::pgtable::{
    Access, IoPageTable, IotlbGather, IovaRange, MemType, PgTableError, PoolAllocator, Prot,
};

const K4: u64 = 0x1000;
const M2: u64 = 0x20_0000;
const G1: u64 = 0x4000_0000;

fn table(levels: u8, large: bool) -> SlTable<PoolAllocator> {
    let cfg = SlConfig::new(levels, 48).with_large_pages(large, large);
    SlTable::new(cfg, PoolAllocator::new(64, 4096)).unwrap()
}

fn done<T: IoPageTable>(t: &mut T, mut g: IotlbGather) {
    t.complete(&mut g).unwrap();
    assert!(g.is_empty());
}

// Bit positions from VT-d spec 9.8 (second-level paging entries).
#[test]
fn entry_bits_match_the_spec() {
    assert_eq!((R, W, X, PS, SNP, TM), (1, 2, 4, 0x80, 0x800, 1 << 62));
    assert_eq!(ADDR_MASK, ((1u64 << 52) - 1) & !0xfff);
    // Non-leaf: ADDR | R | W, whatever the level.
    for level in 2..=5 {
        assert_eq!(SlEntry::table(PhysAddr(0x1234_5000)).encode(level), 0x1234_5003);
    }
    // 4 KiB page: no PS (bit 7 is ignored/reserved at level 1).
    let rw = SlEntry::leaf(PhysAddr(0xabc_d000), Prot::RW).unwrap();
    assert_eq!(rw.encode(1), 0xabc_d003);
    let ro = SlEntry::leaf(PhysAddr(0xabc_d000), Prot::RO).unwrap();
    assert_eq!(ro.encode(1), 0xabc_d001);
    let wo = SlEntry::leaf(PhysAddr(0x1000), Prot::new(Access::WRITE, MemType::WriteBack)).unwrap();
    assert_eq!(wo.encode(1), 0x1002);
    // 2 MiB and 1 GiB pages: PS = 1.
    assert_eq!(SlEntry::leaf(PhysAddr(0x4020_0000), Prot::RW).unwrap().encode(2), 0x4020_0083);
    assert_eq!(SlEntry::leaf(PhysAddr(0x8000_0000), Prot::RO).unwrap().encode(3), 0x8000_0081);
    // Execute, privilege and memory type have no encoding: dropped, SNP and
    // TM stay 0.
    let p = Prot::new(Access::RW.union(Access::EXEC).union(Access::PRIV), MemType::Device);
    assert_eq!(SlEntry::leaf(PhysAddr(0x5000), p).unwrap().encode(1), 0x5003);
    assert_eq!(SlEntry::leaf(PhysAddr(0x5000), Prot::new(Access::EXEC, MemType::WriteBack)), None);
}

#[test]
fn entries_decode_by_level_and_ps() {
    assert_eq!(SlEntry::decode(0, 1), SlEntry::NotPresent);
    // Present means R or W: other bits alone are not present.
    assert_eq!(SlEntry::decode(0xdead_0000 | PS | X, 2), SlEntry::NotPresent);
    assert_eq!(SlEntry::decode(0x1234_5003, 4), SlEntry::Table(PhysAddr(0x1234_5000)));
    assert_eq!(
        SlEntry::decode(0x4020_0081, 2),
        SlEntry::Leaf { pa: PhysAddr(0x4020_0000), access: Access::READ }
    );
    // PS at level 1 is not a large page: still a 4 KiB leaf.
    assert_eq!(
        SlEntry::decode(0x7000 | PS | W, 1),
        SlEntry::Leaf { pa: PhysAddr(0x7000), access: Access::WRITE }
    );
    // SNP and TM are ignored.
    assert_eq!(SlEntry::decode(0x7003 | SNP | TM, 1).prot(), Some(Prot::RW));
}

#[test]
fn geometry() {
    assert_eq!(SlConfig::new(3, 48).width(), 39);
    assert_eq!(SlConfig::new(4, 48).width(), 48);
    let mut p = PoolAllocator::new(4, 4096);
    assert!(SlTable::new(SlConfig::new(3, 48).with_ias(40), &mut p).is_err());
    assert!(SlTable::new(SlConfig::new(2, 48), &mut p).is_err());
    assert!(SlTable::new(SlConfig::new(4, 53), &mut p).is_err());
    assert!(SlTable::new(SlConfig::new(4, 48).with_large_pages(false, true), &mut p).is_err());
    let t = table(3, false);
    assert_eq!((t.ias(), t.oas(), t.page_sizes()), (39, 48, K4));
    assert_eq!(table(4, true).page_sizes(), K4 | M2 | G1);
    assert_eq!(
        SlTable::new(SlConfig::new(4, 48).with_large_pages(true, false), &mut p).unwrap().page_sizes(),
        K4 | M2
    );
}

#[test]
fn single_page_walks_every_level() {
    for levels in [3u8, 4] {
        let mut t = table(levels, false);
        t.map_pages(Iova(0x10_0000), PhysAddr(0x8765_4000), K4, 1, Prot::RW).unwrap();
        let tr = t.lookup(Iova(0x10_0123)).unwrap();
        assert_eq!((tr.paddr, tr.size, tr.prot), (PhysAddr(0x8765_4123), K4, Prot::RW));
        assert_eq!(t.stats().tables, levels as usize);
        // The raw walk as hardware does it: every non-leaf entry has R|W.
        let mut g = IotlbGather::new();
        t.unmap(Iova(0x10_0000), K4, &mut g).unwrap();
        assert_eq!(g.ranges(), &[IovaRange { start: Iova(0x10_0000), end: Iova(0x10_1000) }]);
        assert!(g.tables_removed());
        assert_eq!(g.freed_tables(), levels as usize - 1);
        done(&mut t, g);
        assert_eq!(t.allocator().in_use(), 1);
    }
}

#[test]
fn three_level_input_limit() {
    let mut t = table(3, true);
    assert_eq!(t.map_pages(Iova(1 << 39), PhysAddr(0), K4, 1, Prot::RW), Err(PgTableError::IovaOutOfRange));
    t.map_pages(Iova((1 << 39) - G1), PhysAddr(G1), G1, 1, Prot::RO).unwrap();
    assert_eq!(t.lookup(Iova((1 << 39) - 1)).unwrap().size, G1);
    // A 1 GiB page in a 3-level table is a root (level-3) entry: one table.
    assert_eq!(t.stats().tables, 1);
}

#[test]
fn largest_leaves_and_split() {
    let mut t = table(4, true);
    let start = G1 - M2 - K4;
    let len = G1 + 2 * M2 + 2 * K4;
    t.map(Iova(start), PhysAddr(start + 0x10_0000_0000), len, Prot::RW).unwrap();
    assert_eq!(&t.stats().leaves[1..4], &[2, 2, 1]);
    // Unmap 4 KiB in the middle of the 1 GiB page: two nested splits.
    let mut g = IotlbGather::new();
    t.unmap(Iova(G1 + 3 * M2 + K4), K4, &mut g).unwrap();
    assert_eq!(g.ranges(), &[IovaRange { start: Iova(G1), end: Iova(2 * G1) }]);
    assert_eq!(g.leaf_sizes(), K4 | M2 | G1);
    assert!(!g.tables_removed());
    done(&mut t, g);
    assert_eq!(&t.stats().leaves[1..4], &[2 + 511, 2 + 511, 0]);
    assert_eq!(t.iova_to_phys(Iova(G1 + 3 * M2 + K4)), None);
    assert_eq!(
        t.iova_to_phys(Iova(G1 + 3 * M2 + 2 * K4)),
        Some(PhysAddr(0x10_0000_0000 + G1 + 3 * M2 + 2 * K4))
    );
    assert_eq!(t.lookup(Iova(G1 + 5 * M2)).unwrap().size, M2);
}

#[test]
fn refusals_change_nothing() {
    let mut t = table(4, true);
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
        t.map(Iova(0), PhysAddr(0), K4, Prot::new(Access::EXEC, MemType::WriteBack)),
        Err(PgTableError::NoAccess)
    );
    let mut g = IotlbGather::new();
    assert_eq!(t.unmap(Iova(M2 + 4 * K4), 2 * K4, &mut g), Err(PgTableError::NotMapped(Iova(M2 + 4 * K4))));
    assert_eq!((t.stats(), t.allocator().in_use()), before);
    assert!(g.is_empty());
    // Out of memory: nothing allocated stays.
    t.allocator_mut().set_limit(Some(before.1 + 1));
    assert_eq!(
        t.map_pages(Iova(0x80_0000_0000), PhysAddr(0), K4, 1, Prot::RW),
        Err(PgTableError::OutOfMemory)
    );
    assert_eq!((t.stats(), t.allocator().in_use()), before);
    t.allocator_mut().set_limit(None);
    t.map_pages(Iova(G1), PhysAddr(G1), G1, 1, Prot::RW).unwrap();
    let before = (t.stats(), t.allocator().in_use());
    t.allocator_mut().set_limit(Some(before.1 + 1));
    assert_eq!(t.unmap(Iova(G1 + K4), K4, &mut g), Err(PgTableError::OutOfMemory));
    assert_eq!((t.stats(), t.allocator().in_use()), before);
    assert!(g.is_empty());
}

#[test]
fn foreign_gather_is_refused() {
    let mut a = table(4, false);
    let mut b = table(4, false);
    a.map_pages(Iova(0), PhysAddr(0), K4, 1, Prot::RW).unwrap();
    b.map_pages(Iova(0), PhysAddr(0), K4, 1, Prot::RW).unwrap();
    let mut g = IotlbGather::new();
    a.unmap(Iova(0), K4, &mut g).unwrap();
    assert_eq!(b.unmap(Iova(0), K4, &mut g), Err(PgTableError::ForeignGather));
    assert_eq!(b.complete(&mut g), Err(PgTableError::ForeignGather));
    done(&mut a, g);
}

// ---- Model-based property tests ----

/// The model window: four 2 MiB regions straddling a 1 GiB boundary.
const WINDOW: u64 = 4 * 512;
const BASE: u64 = G1 - 2 * M2;

#[derive(Clone, Debug)]
enum Op {
    Map { page: u64, count: u64, pa_shift: u64, ro: bool, how: u8 },
    Unmap { page: u64, count: u64 },
    Limit(Option<usize>),
    Complete,
}

fn op() -> impl Strategy<Value = Op> {
    let start = prop_oneof![0..WINDOW, (0..4u64, 0..4u64).prop_map(|(b, o)| (b * 512 + o).saturating_sub(2))];
    let count = prop_oneof![1..8u64, 1..1024u64, (1..3u64).prop_map(|b| b * 512)];
    let pa_shift = prop_oneof![(0..8u64).prop_map(|b| b * 512), 0..8u64];
    prop_oneof![
        5 => (start.clone(), count.clone(), pa_shift, any::<bool>(), 0..3u8)
            .prop_map(|(page, count, pa_shift, ro, how)| Op::Map { page, count, pa_shift, ro, how }),
        4 => (start, count).prop_map(|(page, count)| Op::Unmap { page, count }),
        1 => prop_oneof![Just(None), (0..4usize).prop_map(Some)].prop_map(Op::Limit),
        1 => Just(Op::Complete),
    ]
}

struct Harness {
    t: SlTable<PoolAllocator>,
    model: Vec<Option<(u64, Prot)>>,
    g: IotlbGather,
}

impl Harness {
    fn iova(p: u64) -> Iova {
        Iova(BASE + p * K4)
    }

    fn check(&self, lo: u64, hi: u64) {
        for p in lo.saturating_sub(1)..(hi + 1).min(WINDOW) {
            let got = self.t.lookup(Iova(Self::iova(p).0 + 8));
            match self.model[p as usize] {
                None => assert_eq!(got, None, "page {p}"),
                Some((pa, prot)) => {
                    let got = got.unwrap_or_else(|| panic!("page {p} unmapped"));
                    assert_eq!((got.paddr, got.prot), (PhysAddr(pa + 8), prot), "page {p}");
                }
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        let before = (self.t.stats(), self.t.allocator().in_use());
        match *op {
            Op::Limit(n) => {
                let used = self.t.allocator().pages_in_use();
                self.t.allocator_mut().set_limit(n.map(|n| used + n));
            }
            Op::Complete => {
                self.t.complete(&mut self.g).unwrap();
                self.check(0, WINDOW);
            }
            Op::Map { page, count, pa_shift, ro, how } => {
                let prot = if ro { Prot::RO } else { Prot::RW };
                let (page, count, pgsize) = if how == 1 {
                    let page = page / 512 * 512;
                    (page, count.div_ceil(512).min((WINDOW - page) / 512).max(1) * 512, M2)
                } else {
                    (page, count.min(WINDOW - page), K4)
                };
                let mut pa = 0x40_0000_0000 + (page + pa_shift) * K4;
                pa &= !(pgsize - 1);
                let r = if how == 2 {
                    self.t.map(Self::iova(page), PhysAddr(pa), count * K4, prot)
                } else {
                    self.t.map_pages(
                        Self::iova(page),
                        PhysAddr(pa),
                        pgsize,
                        (count * K4 / pgsize) as usize,
                        prot,
                    )
                };
                let free = (page..page + count).all(|p| self.model[p as usize].is_none());
                match r {
                    Ok(()) => {
                        assert!(free, "map over a mapping succeeded");
                        for k in 0..count {
                            self.model[(page + k) as usize] = Some((pa + k * K4, prot));
                        }
                    }
                    Err(PgTableError::AlreadyMapped(a)) => {
                        assert!(!free);
                        let p = (a.0 - BASE) / K4;
                        assert!((page..page + count).contains(&p));
                        assert_eq!((self.t.stats(), self.t.allocator().in_use()), before);
                    }
                    Err(e) => {
                        assert_eq!(e, PgTableError::OutOfMemory);
                        assert_eq!((self.t.stats(), self.t.allocator().in_use()), before);
                    }
                }
                self.check(page, page + count);
            }
            Op::Unmap { page, count } => {
                let count = count.min(WINDOW - page);
                let gathered = (self.g.ranges().to_vec(), self.g.freed_tables());
                let mapped = (page..page + count).all(|p| self.model[p as usize].is_some());
                match self.t.unmap(Self::iova(page), count * K4, &mut self.g) {
                    Ok(()) => {
                        assert!(mapped, "unmap of a hole succeeded");
                        for p in page..page + count {
                            self.model[p as usize] = None;
                        }
                        let covered = |a: Iova| self.g.ranges().iter().any(|r| r.start <= a && a < r.end);
                        assert!(covered(Self::iova(page)) && covered(Self::iova(page + count - 1)));
                    }
                    Err(e) => {
                        match e {
                            PgTableError::NotMapped(a) => {
                                assert!(!mapped);
                                let p = (a.0 - BASE) / K4;
                                assert!(
                                    self.model[p as usize].is_none() && (page..page + count).contains(&p)
                                );
                            }
                            e => assert_eq!(e, PgTableError::OutOfMemory),
                        }
                        assert_eq!((self.g.ranges().to_vec(), self.g.freed_tables()), gathered);
                        assert_eq!((self.t.stats(), self.t.allocator().in_use()), before);
                    }
                }
                self.check(page, page + count);
            }
        }
    }

    fn finish(mut self) {
        self.t.complete(&mut self.g).unwrap();
        let s = self.t.stats();
        assert_eq!(s.empty_tables, 0);
        assert_eq!(s.tables, self.t.allocator().in_use());
        assert_eq!(s.mapped_bytes, self.model.iter().flatten().count() as u64 * K4);
        self.check(0, WINDOW);
        self.t.allocator_mut().set_limit(None);
        let mut g = IotlbGather::new();
        let mut p = 0;
        while p < WINDOW as usize {
            if self.model[p].is_none() {
                p += 1;
                continue;
            }
            let q = (p..WINDOW as usize).find(|&q| self.model[q].is_none()).unwrap_or(WINDOW as usize);
            self.t.unmap(Self::iova(p as u64), (q - p) as u64 * K4, &mut g).unwrap();
            p = q;
        }
        self.t.complete(&mut g).unwrap();
        assert_eq!(self.t.allocator().in_use(), 1, "tables left after unmapping everything");
    }
}

fn run(levels: u8, large: bool, ops: &[Op]) {
    let cfg = SlConfig::new(levels, 48).with_large_pages(large, large);
    let mut h = Harness {
        t: SlTable::new(cfg, PoolAllocator::new(256, 4096)).unwrap(),
        model: vec![None; WINDOW as usize],
        g: IotlbGather::new(),
    };
    for op in ops {
        // Without large pages a 2 MiB map_pages is refused as a page size.
        if let (false, Op::Map { how: 1, .. }) = (large, op) {
            continue;
        }
        h.apply(op);
    }
    h.finish();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 2 } else { 96 }, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    // Each case checks every page of a window larger than 1 GiB against the
    // model: minutes per case under Miri. The unit tests run there instead.
    #[cfg_attr(miri, ignore = "too slow under Miri; unit tests cover the unsafe table memory")]
    fn model_three_level(ops in proptest::collection::vec(op(), 1..40), large in any::<bool>()) {
        run(3, large, &ops);
    }

    #[test]
    // Each case checks every page of a window larger than 1 GiB against the
    // model: minutes per case under Miri. The unit tests run there instead.
    #[cfg_attr(miri, ignore = "too slow under Miri; unit tests cover the unsafe table memory")]
    fn model_four_level(ops in proptest::collection::vec(op(), 1..40), large in any::<bool>()) {
        run(4, large, &ops);
    }
}
