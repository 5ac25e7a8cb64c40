//! Behaviour of the walker: blocks, overlaps, splits, gathers, rollback.

use super::*;
use crate::addr::{Iova, PhysAddr};
use crate::pgtable::{
    Access, IoPageTable, IotlbGather, IovaRange, MemType, PgTableError, PoolAllocator, Prot,
};

const K4: u64 = 0x1000;
const M2: u64 = 0x20_0000;
const G1: u64 = 0x4000_0000;

fn pool() -> PoolAllocator {
    PoolAllocator::new(64, 4096)
}

fn s1(pool: &mut PoolAllocator) -> S1Table<&mut PoolAllocator> {
    Vmsav8Table::new(Stage1::default(), TableConfig::new(Granule::Size4K, 48, 48), pool).unwrap()
}

fn s2(pool: &mut PoolAllocator, cfg: TableConfig) -> S2Table<&mut PoolAllocator> {
    Vmsav8Table::new(Stage2, cfg, pool).unwrap()
}

fn done<T: IoPageTable>(t: &mut T, mut g: IotlbGather) {
    t.complete(&mut g).unwrap();
    assert!(g.is_empty());
}

#[test]
fn single_page_round_trip() {
    let mut p = pool();
    let mut t = s1(&mut p);
    t.map_pages(Iova(0x1234_5000), PhysAddr(0x8000_0000), K4, 1, Prot::RW).unwrap();
    let tr = t.lookup(Iova(0x1234_5678)).unwrap();
    assert_eq!(tr.paddr, PhysAddr(0x8000_0678));
    assert_eq!((tr.size, tr.prot), (K4, Prot::RW));
    assert_eq!(t.iova_to_phys(Iova(0x1234_6000)), None);
    assert_eq!(t.stats().tables, 4);
    let mut g = IotlbGather::new();
    t.unmap_pages(Iova(0x1234_5000), K4, 1, &mut g).unwrap();
    assert_eq!(g.ranges(), &[IovaRange { start: Iova(0x1234_5000), end: Iova(0x1234_6000) }]);
    assert!(g.tables_removed());
    assert_eq!(g.freed_tables(), 3);
    done(&mut t, g);
    assert_eq!(t.stats().tables, 1);
    drop(t);
    assert_eq!(p.in_use(), 0);
}

#[test]
fn map_uses_the_largest_leaves_alignment_allows() {
    let mut p = pool();
    let mut t = s1(&mut p);
    // From 1 GiB - 2 MiB - 4 KiB to 2 GiB + 2 MiB + 4 KiB: one page, one
    // 2 MiB block, one 1 GiB block, one 2 MiB block, one page.
    let start = G1 - M2 - K4;
    let len = G1 + 2 * M2 + 2 * K4;
    t.map(Iova(start), PhysAddr(start + 0x10_0000_0000), len, Prot::RW).unwrap();
    let s = t.stats();
    assert_eq!(s.leaves, [0, 1, 2, 2]);
    assert_eq!(s.mapped_bytes, len);
    assert_eq!(t.lookup(Iova(G1 + 5)).unwrap().size, G1);
    assert_eq!(t.iova_to_phys(Iova(G1 + 5)), Some(PhysAddr(0x10_4000_0005)));
    // Misaligned output: pages only.
    let mut t2 = Vmsav8Table::new(
        Stage1::default(),
        TableConfig::new(Granule::Size4K, 48, 48),
        PoolAllocator::new(8, 4096),
    )
    .unwrap();
    t2.map(Iova(0), PhysAddr(K4), 4 * M2, Prot::RW).unwrap();
    assert_eq!(t2.stats().leaves, [0, 0, 0, 4 * 512]);
}

#[test]
fn map_pages_with_blocks_and_across_tables() {
    let mut p = pool();
    let mut t = s2(&mut p, TableConfig::new(Granule::Size4K, 48, 48));
    // 600 pages cross a level-3 table boundary.
    t.map_pages(Iova(0x1ff000 - 99 * K4), PhysAddr(0x4000_0000), K4, 600, Prot::RO).unwrap();
    assert_eq!(t.stats().leaves[3], 600);
    t.map_pages(Iova(0x4000_0000), PhysAddr(0x4000_0000), M2, 3, Prot::RW).unwrap();
    assert_eq!(t.stats().leaves[2], 3);
    let mut g = IotlbGather::new();
    t.unmap(Iova(0x4000_0000), 3 * M2, &mut g).unwrap();
    assert_eq!(g.ranges().len(), 1);
    assert_eq!(g.leaf_sizes(), M2);
    done(&mut t, g);
}

#[test]
fn overlaps_are_refused_and_change_nothing() {
    let mut p = pool();
    let mut t = s1(&mut p);
    t.map_pages(Iova(M2 + 5 * K4), PhysAddr(0x9000_0000), K4, 1, Prot::RW).unwrap();
    let before = t.stats();
    // A run whose 6th page is taken.
    assert_eq!(
        t.map_pages(Iova(M2), PhysAddr(0), K4, 10, Prot::RW),
        Err(PgTableError::AlreadyMapped(Iova(M2 + 5 * K4)))
    );
    // A block over the table that holds the page.
    assert_eq!(
        t.map_pages(Iova(M2), PhysAddr(0), M2, 1, Prot::RW),
        Err(PgTableError::AlreadyMapped(Iova(M2)))
    );
    // A page inside a block.
    t.map_pages(Iova(G1), PhysAddr(G1), M2, 1, Prot::RW).unwrap();
    let before2 = t.stats();
    assert_eq!(
        t.map_pages(Iova(G1 + K4), PhysAddr(0), K4, 1, Prot::RW),
        Err(PgTableError::AlreadyMapped(Iova(G1 + K4)))
    );
    // A multi-table map that conflicts only at its end allocates nothing.
    let in_use = t.allocator().in_use();
    assert_eq!(
        t.map(Iova(G1 - 4 * M2), PhysAddr(0), 4 * M2 + K4, Prot::RW),
        Err(PgTableError::AlreadyMapped(Iova(G1)))
    );
    assert_eq!(t.allocator().in_use(), in_use);
    assert_eq!(t.stats(), before2);
    assert_ne!(before, before2);
}

#[test]
fn argument_errors() {
    let mut p = pool();
    let mut t = s1(&mut p);
    let mut g = IotlbGather::new();
    assert_eq!(t.map_pages(Iova(0), PhysAddr(0), K4, 0, Prot::RW), Err(PgTableError::SizeZero));
    assert_eq!(t.map(Iova(0), PhysAddr(0), 0, Prot::RW), Err(PgTableError::SizeZero));
    assert_eq!(
        t.map_pages(Iova(0), PhysAddr(0), 0x2000, 1, Prot::RW),
        Err(PgTableError::UnsupportedPageSize(0x2000))
    );
    assert_eq!(
        t.map_pages(Iova(0x800), PhysAddr(0), K4, 1, Prot::RW),
        Err(PgTableError::UnalignedIova(Iova(0x800)))
    );
    assert_eq!(
        t.map_pages(Iova(K4), PhysAddr(0), M2, 1, Prot::RW),
        Err(PgTableError::UnalignedIova(Iova(K4)))
    );
    assert_eq!(t.map_pages(Iova(0), PhysAddr(K4), M2, 1, Prot::RW), Err(PgTableError::UnalignedPaddr(K4)));
    assert_eq!(t.map(Iova(0), PhysAddr(0), 0x1800, Prot::RW), Err(PgTableError::UnalignedSize));
    assert_eq!(t.map_pages(Iova(1 << 48), PhysAddr(0), K4, 1, Prot::RW), Err(PgTableError::IovaOutOfRange));
    assert_eq!(
        t.map_pages(Iova((1 << 48) - K4), PhysAddr(0), K4, 2, Prot::RW),
        Err(PgTableError::IovaOutOfRange)
    );
    assert_eq!(t.map_pages(Iova(0), PhysAddr(1 << 48), K4, 1, Prot::RW), Err(PgTableError::PaddrOutOfRange));
    assert_eq!(
        t.map_pages(Iova(!0xfff), PhysAddr(0), K4, usize::MAX, Prot::RW),
        Err(PgTableError::IovaOutOfRange)
    );
    assert_eq!(
        t.map_pages(Iova(0), PhysAddr(0), K4, 1, Prot::new(Access::EXEC, MemType::WriteBack)),
        Err(PgTableError::NoAccess)
    );
    assert_eq!(t.unmap_pages(Iova(0), K4, 1, &mut g), Err(PgTableError::NotMapped(Iova(0))));
    assert_eq!(t.unmap_pages(Iova(0), K4, 0, &mut g), Err(PgTableError::SizeZero));
    assert_eq!(t.unmap(Iova(0), 0x800, &mut g), Err(PgTableError::UnalignedSize));
    assert_eq!(t.stats().tables, 1);
    assert!(g.is_empty());
    // The table's last page is usable.
    t.map_pages(Iova((1 << 48) - K4), PhysAddr((1 << 48) - K4), K4, 1, Prot::RW).unwrap();
    assert_eq!(t.iova_to_phys(Iova((1 << 48) - 1)), Some(PhysAddr((1 << 48) - 1)));
}

#[test]
fn double_unmap_and_holes_change_nothing() {
    let mut p = pool();
    let mut t = s2(&mut p, TableConfig::new(Granule::Size4K, 48, 48));
    t.map_pages(Iova(0), PhysAddr(0), K4, 8, Prot::RW).unwrap();
    t.map_pages(Iova(9 * K4), PhysAddr(0), K4, 1, Prot::RW).unwrap();
    let mut g = IotlbGather::new();
    assert_eq!(t.unmap_pages(Iova(0), K4, 10, &mut g), Err(PgTableError::NotMapped(Iova(8 * K4))));
    assert!(g.is_empty());
    t.unmap_pages(Iova(0), K4, 8, &mut g).unwrap();
    assert_eq!(t.unmap_pages(Iova(0), K4, 1, &mut g), Err(PgTableError::NotMapped(Iova(0))));
    // A hole in a multi-table range is found before anything is cleared.
    t.map_pages(Iova(M2), PhysAddr(0), K4, 1024, Prot::RW).unwrap();
    t.unmap_pages(Iova(M2 + 700 * K4), K4, 1, &mut g).unwrap();
    let before = t.stats();
    assert_eq!(t.unmap(Iova(M2), 2 * M2, &mut g), Err(PgTableError::NotMapped(Iova(M2 + 700 * K4))));
    assert_eq!(t.stats(), before);
    done(&mut t, g);
}

#[test]
fn unmapping_a_gigabyte_of_pages_gathers_one_range() {
    // 1 GiB natively; 8 MiB under Miri, which is slow at filling tables.
    const PAGES: u64 = if cfg!(miri) { 4 * 512 } else { 262_144 };
    let mut p = PoolAllocator::new(600, 4096);
    let mut t = s1(&mut p);
    t.map_pages(Iova(G1), PhysAddr(0x80_0000_0000), K4, PAGES as usize, Prot::RW).unwrap();
    let leaf_tables = (PAGES / 512) as usize;
    assert_eq!(t.stats().tables, 1 + 1 + 1 + leaf_tables);
    let mut g = IotlbGather::new();
    t.unmap_pages(Iova(G1), K4, PAGES as usize, &mut g).unwrap();
    assert_eq!(g.ranges(), &[IovaRange { start: Iova(G1), end: Iova(G1 + PAGES * K4) }]);
    assert!(g.tables_removed());
    assert_eq!(g.leaf_sizes(), K4);
    assert_eq!(g.freed_tables(), 2 + leaf_tables);
    // Pages stay allocated until the invalidation is complete.
    assert_eq!(t.allocator().in_use(), 3 + leaf_tables);
    done(&mut t, g);
    assert_eq!(t.allocator().in_use(), 1);
}

#[test]
fn page_by_page_unmap_merges_ranges_and_frees_tables() {
    let mut p = pool();
    let mut t = s1(&mut p);
    t.map_pages(Iova(M2 - 4 * K4), PhysAddr(0), K4, 8, Prot::RW).unwrap();
    let mut g = IotlbGather::new();
    for i in 0..8 {
        t.unmap_pages(Iova(M2 - 4 * K4 + i * K4), K4, 1, &mut g).unwrap();
    }
    assert_eq!(g.ranges().len(), 1);
    assert_eq!(g.freed_tables(), 2 + 2);
    done(&mut t, g);
    assert_eq!(t.allocator().in_use(), 1);
}

#[test]
fn split_under_break_before_make() {
    let mut p = pool();
    let mut t = s1(&mut p);
    t.map_pages(Iova(G1), PhysAddr(0x8000_0000), M2, 1, Prot::RW).unwrap();
    let mut g = IotlbGather::new();
    t.unmap_pages(Iova(G1 + 3 * K4), K4, 1, &mut g).unwrap();
    // Break: the whole block is invalid and must be invalidated.
    assert_eq!(g.ranges(), &[IovaRange { start: Iova(G1), end: Iova(G1 + M2) }]);
    assert_eq!(g.leaf_sizes(), M2);
    assert!(!g.tables_removed());
    assert_eq!(g.pending_splits(), 1);
    assert_eq!(t.iova_to_phys(Iova(G1)), None);
    assert_eq!(t.stats().pending, 1);
    // The region stays occupied for maps until the make.
    assert_eq!(
        t.map_pages(Iova(G1 + 3 * K4), PhysAddr(0), K4, 1, Prot::RW),
        Err(PgTableError::AlreadyMapped(Iova(G1 + 3 * K4)))
    );
    // Make.
    done(&mut t, g);
    assert_eq!(t.iova_to_phys(Iova(G1 + 2 * K4 + 7)), Some(PhysAddr(0x8000_2007)));
    assert_eq!(t.iova_to_phys(Iova(G1 + 3 * K4)), None);
    assert_eq!(t.iova_to_phys(Iova(G1 + M2 - 1)), Some(PhysAddr(0x8000_0000 + M2 - 1)));
    let s = t.stats();
    assert_eq!((s.leaves[2], s.leaves[3], s.pending), (0, 511, 0));
    assert_eq!(t.lookup(Iova(G1)).unwrap().prot, Prot::RW);
}

#[test]
fn split_with_bbml2_is_immediate() {
    let mut p = pool();
    let cfg = TableConfig::new(Granule::Size4K, 48, 48).with_split(SplitPolicy::Bbml2);
    let mut t = s2(&mut p, cfg);
    t.map_pages(Iova(G1), PhysAddr(0x8000_0000), M2, 1, Prot::RW).unwrap();
    let mut g = IotlbGather::new();
    t.unmap_pages(Iova(G1 + 3 * K4), K4, 2, &mut g).unwrap();
    assert_eq!(g.ranges(), &[IovaRange { start: Iova(G1 + 3 * K4), end: Iova(G1 + 5 * K4) }]);
    assert_eq!(g.leaf_sizes(), M2);
    assert_eq!(g.pending_splits(), 0);
    assert_eq!(t.iova_to_phys(Iova(G1)), Some(PhysAddr(0x8000_0000)));
    assert_eq!(t.iova_to_phys(Iova(G1 + 4 * K4)), None);
    done(&mut t, g);
}

#[test]
fn splitting_a_gigabyte_block_nests_two_tables() {
    let mut p = pool();
    let mut t = s2(&mut p, TableConfig::new(Granule::Size4K, 48, 48));
    t.map_pages(Iova(G1), PhysAddr(2 * G1), G1, 1, Prot::RW).unwrap();
    let tables = t.stats().tables;
    let mut g = IotlbGather::new();
    // Unmap 4 KiB at 3 MiB + 8 KiB, and 2 MiB at 6 MiB, in one call each.
    t.unmap_pages(Iova(G1 + 3 * 0x10_0000 + 2 * K4), K4, 1, &mut g).unwrap();
    done(&mut t, g);
    let s = t.stats();
    assert_eq!(s.tables, tables + 2);
    assert_eq!((s.leaves[1], s.leaves[2], s.leaves[3]), (0, 511, 511));
    let mut g = IotlbGather::new();
    t.unmap_pages(Iova(G1 + 6 * 0x10_0000), M2, 1, &mut g).unwrap();
    done(&mut t, g);
    assert_eq!(t.stats().leaves[2], 510);
    assert_eq!(t.iova_to_phys(Iova(G1 + 0x30_0000)), Some(PhysAddr(2 * G1 + 0x30_0000)));
    assert_eq!(t.iova_to_phys(Iova(G1 + 0x30_2000)), None);
    assert_eq!(t.iova_to_phys(Iova(G1 + 0x60_0000)), None);
    assert_eq!(t.iova_to_phys(Iova(2 * G1 - 1)), Some(PhysAddr(3 * G1 - 1)));
    // Unmapping all the rest frees every table below the root.
    let mut g = IotlbGather::new();
    t.unmap(Iova(G1), 0x30_2000, &mut g).unwrap();
    t.unmap(Iova(G1 + 0x30_3000), 0x60_0000 - 0x30_3000, &mut g).unwrap();
    t.unmap(Iova(G1 + 0x80_0000), G1 - 0x80_0000, &mut g).unwrap();
    done(&mut t, g);
    assert_eq!(t.stats().tables, 1);
}

#[test]
fn unmap_inside_a_pending_split_before_completion() {
    let mut p = pool();
    let mut t = s1(&mut p);
    t.map_pages(Iova(0), PhysAddr(0), M2, 2, Prot::RW).unwrap();
    let mut g = IotlbGather::new();
    t.unmap_pages(Iova(K4), K4, 1, &mut g).unwrap();
    // A second unmap in the same (still broken) block, before completion.
    t.unmap_pages(Iova(2 * K4), K4, 1, &mut g).unwrap();
    // And one removing the rest of the block and part of the next block.
    t.unmap(Iova(0), K4, &mut g).unwrap();
    t.unmap(Iova(3 * K4), M2 - 3 * K4 + K4, &mut g).unwrap();
    assert_eq!(g.pending_splits(), 2);
    assert_eq!(g.ranges(), &[IovaRange { start: Iova(0), end: Iova(2 * M2) }]);
    done(&mut t, g);
    let s = t.stats();
    assert_eq!((s.leaves[2], s.leaves[3], s.pending, s.empty_tables), (0, 511, 0, 0));
    assert_eq!(t.iova_to_phys(Iova(M2)), None);
    assert_eq!(t.iova_to_phys(Iova(M2 + K4)), Some(PhysAddr(M2 + K4)));
}

#[test]
fn out_of_memory_rolls_back() {
    let cfg = TableConfig::new(Granule::Size4K, 48, 48);
    let mut t = Vmsav8Table::new(Stage1::default(), cfg, PoolAllocator::new(64, 4096)).unwrap();
    t.map_pages(Iova(0), PhysAddr(0), K4, 1, Prot::RW).unwrap();
    t.allocator_mut().set_limit(Some(10));
    let before = t.stats();
    // Five level-3 tables plus a new level-1 and level-2 table: 11 pages > 10.
    assert_eq!(
        t.map_pages(Iova(0x80_0000_0000), PhysAddr(0), K4, 5 * 512, Prot::RW),
        Err(PgTableError::OutOfMemory)
    );
    assert_eq!(t.stats(), before);
    assert_eq!(t.allocator().in_use(), 4);
    // A split that cannot get its table changes nothing either.
    t.map_pages(Iova(G1), PhysAddr(0), M2, 1, Prot::RW).unwrap();
    t.allocator_mut().set_limit(Some(5));
    let before = t.stats();
    let mut g = IotlbGather::new();
    assert_eq!(t.unmap_pages(Iova(G1 + K4), K4, 1, &mut g), Err(PgTableError::OutOfMemory));
    assert!(g.is_empty());
    assert_eq!(t.stats(), before);
    assert_eq!(t.lookup(Iova(G1)).unwrap().size, M2);
    t.allocator_mut().set_limit(None);
    t.unmap_pages(Iova(G1 + K4), K4, 1, &mut g).unwrap();
    done(&mut t, g);
    assert_eq!(t.stats().leaves[3], 1 + 511);
}

#[test]
fn foreign_gather_is_refused() {
    let mut p1 = pool();
    let mut p2 = pool();
    let mut a = s1(&mut p1);
    let mut b = s1(&mut p2);
    a.map_pages(Iova(0), PhysAddr(0), K4, 1, Prot::RW).unwrap();
    b.map_pages(Iova(0), PhysAddr(0), K4, 1, Prot::RW).unwrap();
    let mut g = IotlbGather::new();
    a.unmap_pages(Iova(0), K4, 1, &mut g).unwrap();
    assert_eq!(b.unmap_pages(Iova(0), K4, 1, &mut g), Err(PgTableError::ForeignGather));
    assert_eq!(b.complete(&mut g), Err(PgTableError::ForeignGather));
    assert_eq!(b.iova_to_phys(Iova(0)), Some(PhysAddr(0)));
    done(&mut a, g);
}

#[test]
fn sixty_four_k_granule_blocks_and_wide_output() {
    let mut p = PoolAllocator::new(16, 0x1_0000);
    let mut t = Vmsav8Table::new(Stage2, TableConfig::new(Granule::Size64K, 48, 52), &mut p).unwrap();
    const M512: u64 = 0x2000_0000;
    assert_eq!(t.page_sizes(), 0x1_0000 | M512);
    t.map(Iova(0), PhysAddr(0x000A_0000_0000_0000), 2 * M512 + 0x1_0000, Prot::RW).unwrap();
    assert_eq!(t.stats().leaves, [0, 0, 2, 1]);
    assert_eq!(t.iova_to_phys(Iova(M512 + 0x123)), Some(PhysAddr(0x000A_0000_2000_0123)));
    let mut g = IotlbGather::new();
    t.unmap_pages(Iova(0x30_0000), 0x1_0000, 1, &mut g).unwrap();
    done(&mut t, g);
    assert_eq!(t.stats().leaves, [0, 0, 1, 8191 + 1]);
    assert_eq!(t.iova_to_phys(Iova(0x31_0000)), Some(PhysAddr(0x000A_0000_0031_0000)));
    assert_eq!(t.iova_to_phys(Iova(0x30_ffff)), None);
}

#[test]
fn stage_configs() {
    let mut p = pool();
    let t = s1(&mut p);
    let c = t.stage1_config();
    assert_eq!((c.t0sz, c.tg0, c.ips, c.irgn0, c.orgn0, c.sh0, c.start_level), (16, 0, 0b101, 1, 1, 3, 0));
    assert_eq!(c.mair, MAIR);
    assert_eq!(c.ttb0, t.root_pa());
    drop(t);
    let t = s2(&mut p, TableConfig::new(Granule::Size4K, 48, 48));
    let c = t.stage2_config();
    assert_eq!((c.t0sz, c.sl0, c.tg, c.ps, c.start_level, c.concatenated), (16, 0b10, 0, 0b101, 0, 1));
    drop(t);
    // 40-bit IPA, 40-bit PA: two concatenated level-1 tables (SL0 = 0b01),
    // in one 8 KiB block aligned to 8 KiB.
    let cfg = TableConfig::new(Granule::Size4K, 40, 40).with_coherent_walk(false);
    let t = s2(&mut p, cfg);
    let c = t.stage2_config();
    assert_eq!((c.t0sz, c.sl0, c.ps, c.start_level, c.concatenated), (24, 0b01, 0b010, 1, 2));
    assert_eq!((c.irgn, c.orgn, c.sh), (0, 0, 0b10));
    assert!(c.vttb.is_aligned(0x2000));
    assert_eq!(t.allocator().pages_in_use(), 2);
    drop(t);
    // 64K granule, 48-bit: start at level 1, SL0 = 0b10.
    let mut p64 = PoolAllocator::new(4, 0x1_0000);
    let t = Vmsav8Table::new(Stage2, TableConfig::new(Granule::Size64K, 48, 48), &mut p64).unwrap();
    assert_eq!((t.stage2_config().sl0, t.stage2_config().tg), (0b10, 0b01));
}

#[test]
fn concatenated_root_maps_its_whole_range() {
    let mut p = pool();
    let cfg = TableConfig::new(Granule::Size4K, 40, 48).with_concatenation(true);
    let mut t = s2(&mut p, cfg);
    assert_eq!((t.start_level(), t.concatenated_tables()), (1, 2));
    let top = (1u64 << 40) - G1;
    t.map(Iova(top), PhysAddr(G1), G1, Prot::RW).unwrap();
    t.map_pages(Iova(0), PhysAddr(0), K4, 1, Prot::RW).unwrap();
    assert_eq!(t.iova_to_phys(Iova(top + 7)), Some(PhysAddr(G1 + 7)));
    assert_eq!(t.lookup(Iova(top)).unwrap().size, G1);
    assert_eq!(t.map_pages(Iova(1 << 40), PhysAddr(0), K4, 1, Prot::RW), Err(PgTableError::IovaOutOfRange));
    let mut g = IotlbGather::new();
    t.unmap(Iova(0), K4, &mut g).unwrap();
    t.unmap(Iova(top), G1, &mut g).unwrap();
    done(&mut t, g);
    assert_eq!(t.stats().tables, 1);
}
