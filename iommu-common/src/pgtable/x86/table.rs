//! The walker: table memory, map, unmap, lookup and teardown.
//!
//! Every update is planned before anything is written: a read-only walk
//! finds conflicts (for maps) or holes (for unmaps) and counts the table
//! pages the change needs, those pages are allocated up front, and only then
//! does an infallible commit walk write entries. A refused update therefore
//! leaves the table and the allocator as they were.

use alloc::vec::Vec;
use core::ptr::NonNull;

use super::entry::{level_shift, SlEntry};
use super::SlConfig;
use crate::addr::{Iova, PhysAddr};
use crate::pgtable::{
    ConfigError, IoPageTable, IotlbGather, PageAllocator, PgTableError, Prot, TablePage, Translation,
};

/// Entries per table: every level of the format has 512.
const ENTRIES: usize = 512;
/// Bytes per table page.
const TABLE_BYTES: usize = 4096;

/// The 512 entries of one table as the CPU reaches them: the only
/// raw-pointer access to table memory in this format.
#[derive(Clone, Copy, Debug)]
struct Tbl(NonNull<u64>);

impl Tbl {
    /// # Safety
    ///
    /// `va` must be 4 KiB aligned, valid for reads and writes of 4 KiB for
    /// as long as the handle is used, and written only through `Tbl`s.
    unsafe fn new(va: NonNull<u8>) -> Self {
        Self(va.cast())
    }

    fn get(self, i: usize) -> u64 {
        assert!(i < ENTRIES);
        // SAFETY: in bounds of the 512-entry table (constructor contract).
        unsafe { self.0.add(i).read_volatile() }
    }

    /// One volatile 64-bit store: the walker sees the old or the new entry,
    /// never a torn one.
    fn set(self, i: usize, v: u64) {
        assert!(i < ENTRIES);
        // SAFETY: as in `get`.
        unsafe { self.0.add(i).write_volatile(v) }
    }

    fn zero(self) {
        // SAFETY: the whole table, valid for writes (constructor contract).
        unsafe { self.0.as_ptr().write_bytes(0, ENTRIES) }
    }

    fn is_empty(self) -> bool {
        (0..ENTRIES).all(|i| self.get(i) == 0)
    }

    fn entry_ptr(self, i: usize) -> NonNull<u8> {
        assert!(i < ENTRIES);
        // SAFETY: in bounds (checked above).
        unsafe { self.0.add(i).cast() }
    }
}

/// Which leaf sizes a map uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Policy {
    /// Leaves at exactly this level.
    Fixed(u8),
    /// The largest leaf the alignment of input and output allows.
    Largest,
}

/// Counts over a whole table tree (for checks and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Allocated table pages, the root included.
    pub tables: usize,
    /// Leaves by level: index 1 counts 4 KiB pages, 2 the 2 MiB and 3 the
    /// 1 GiB pages.
    pub leaves: [u64; 6],
    /// Bytes mapped by all leaves.
    pub mapped_bytes: u64,
    /// Tables other than the root with no entry: always 0 unless broken.
    pub empty_tables: usize,
}

/// A VT-d second-level IO page table (legacy-mode `SLPTPTR`, or a
/// scalable-mode PASID entry's `SSPTPTR`) whose tables come from `A`.
pub struct SlTable<A: PageAllocator> {
    alloc: A,
    root: TablePage,
    cfg: SlConfig,
}

// SAFETY: the table exclusively owns its table memory; moving it to another
// thread moves that ownership along with the allocator.
unsafe impl<A: PageAllocator + Send> Send for SlTable<A> {}
// SAFETY: `&self` methods only read table memory.
unsafe impl<A: PageAllocator + Sync> Sync for SlTable<A> {}

impl<A: PageAllocator> SlTable<A> {
    /// An empty table: checks the geometry, allocates and clears the root.
    pub fn new(cfg: SlConfig, mut alloc: A) -> Result<Self, ConfigError> {
        cfg.check()?;
        let root = alloc.alloc_table(TABLE_BYTES).ok_or(ConfigError::OutOfMemory)?;
        // SAFETY: a fresh 4 KiB block (allocator contract).
        let tbl = unsafe { Tbl::new(root.va) };
        tbl.zero();
        alloc.sync_for_walker(root.va, TABLE_BYTES);
        Ok(Self { alloc, root, cfg })
    }

    /// Physical address of the root table (context-entry `SLPTPTR`).
    pub fn root_pa(&self) -> PhysAddr {
        self.root.pa
    }

    /// Number of levels the walker goes through (3, 4 or 5).
    pub fn levels(&self) -> u8 {
        self.cfg.levels
    }

    /// The configuration the table was built with.
    pub fn config(&self) -> &SlConfig {
        &self.cfg
    }

    /// The page allocator.
    pub fn allocator(&self) -> &A {
        &self.alloc
    }

    /// The page allocator, mutably (to adjust a pool; freeing through it
    /// stays `unsafe`).
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.alloc
    }

    /// Walks the whole tree and counts tables and leaves.
    pub fn stats(&self) -> TableStats {
        let mut s = TableStats { tables: 1, ..TableStats::default() };
        self.stats_of(self.root_tbl(), self.cfg.levels, &mut s);
        s
    }

    fn stats_of(&self, tbl: Tbl, level: u8, s: &mut TableStats) {
        for i in 0..ENTRIES {
            match SlEntry::decode(tbl.get(i), level) {
                SlEntry::NotPresent => {}
                SlEntry::Leaf { .. } => {
                    s.leaves[level as usize] += 1;
                    s.mapped_bytes += size(level);
                }
                SlEntry::Table(pa) => {
                    s.tables += 1;
                    let sub = self.table_at(pa);
                    if sub.is_empty() {
                        s.empty_tables += 1;
                    }
                    self.stats_of(sub, level - 1, s);
                }
            }
        }
    }

    fn root_tbl(&self) -> Tbl {
        // SAFETY: the root was allocated in `new` and lives as long as `self`.
        unsafe { Tbl::new(self.root.va) }
    }

    /// The table a non-leaf entry points to.
    fn table_at(&self, pa: PhysAddr) -> Tbl {
        // SAFETY: only this table writes non-leaf entries, and only with the
        // addresses of 4 KiB tables it allocated and has not freed.
        unsafe { Tbl::new(self.alloc.phys_to_virt(pa)) }
    }

    /// Makes entry `i` of `tbl` visible to the walker.
    fn sync(&self, tbl: Tbl, i: usize) {
        self.alloc.sync_for_walker(tbl.entry_ptr(i), 8);
    }

    fn leaf_allowed(&self, level: u8) -> bool {
        match level {
            1 => true,
            2 => self.cfg.large_2m,
            3 => self.cfg.large_1g,
            _ => false,
        }
    }

    fn level_of(&self, pgsize: u64) -> Option<u8> {
        (1..=3).find(|&l| size(l) == pgsize && self.leaf_allowed(l))
    }

    fn index(level: u8, va: u64) -> usize {
        ((va >> level_shift(level)) as usize) & (ENTRIES - 1)
    }

    /// Allocates `n` table pages, or none at all.
    fn reserve(&mut self, n: usize) -> Result<Vec<TablePage>, PgTableError> {
        let mut stash = Vec::with_capacity(n);
        for _ in 0..n {
            match self.alloc.alloc_table(TABLE_BYTES) {
                Some(p) => stash.push(p),
                None => {
                    for p in stash.drain(..) {
                        // SAFETY: allocated just above with this size, never linked.
                        unsafe { self.alloc.free_table(p, TABLE_BYTES) };
                    }
                    return Err(PgTableError::OutOfMemory);
                }
            }
        }
        Ok(stash)
    }

    /// A reserved page as a cleared, unlinked table.
    fn take_table(stash: &mut Vec<TablePage>) -> (PhysAddr, Tbl) {
        let page = stash.pop().expect("the plan reserved every table the commit takes");
        // SAFETY: a reserved 4 KiB page, not linked anywhere, owned by this
        // tree from now on.
        let t = unsafe { Tbl::new(page.va) };
        t.zero();
        (page.pa, t)
    }

    fn check_input(&self, iova: u64, len: u64) -> Result<u64, PgTableError> {
        match iova.checked_add(len) {
            Some(end) if end <= 1u64 << self.cfg.ias => Ok(end),
            _ => Err(PgTableError::IovaOutOfRange),
        }
    }

    fn check_output(&self, pa: u64, len: u64) -> Result<(), PgTableError> {
        match pa.checked_add(len) {
            Some(end) if end <= 1u64 << self.cfg.oas => Ok(()),
            _ => Err(PgTableError::PaddrOutOfRange),
        }
    }

    fn map_range(
        &mut self,
        va: u64,
        pa: u64,
        len: u64,
        prot: Prot,
        policy: Policy,
    ) -> Result<(), PgTableError> {
        // Any address will do: only the permissions are kept.
        SlEntry::leaf(PhysAddr(0), prot).ok_or(PgTableError::NoAccess)?;
        let top = self.cfg.levels;
        let needed = self.plan_map(Some(self.root_tbl()), top, va, va + len, pa, policy)?;
        let mut stash = self.reserve(needed)?;
        self.commit_map(self.root_tbl(), top, va, va + len, pa, prot, policy, &mut stash);
        debug_assert!(stash.is_empty());
        Ok(())
    }

    fn leaf_here(&self, level: u8, va: u64, next: u64, pa: u64, policy: Policy) -> bool {
        match policy {
            Policy::Fixed(l) => level == l,
            Policy::Largest => {
                let s = size(level);
                level == 1 || (self.leaf_allowed(level) && next - va == s && (va | pa) & (s - 1) == 0)
            }
        }
    }

    /// Checks that nothing in `[va, end)` is mapped below `tbl` (at
    /// `level`; `None` below a missing table) and counts the tables the
    /// commit will create.
    fn plan_map(
        &self,
        tbl: Option<Tbl>,
        level: u8,
        va: u64,
        end: u64,
        pa: u64,
        policy: Policy,
    ) -> Result<usize, PgTableError> {
        let mut needed = 0;
        let mut cva = va;
        while cva < end {
            let next = chunk_end(level, cva, end);
            let cpa = pa + (cva - va);
            let d = tbl.map_or(0, |t| t.get(Self::index(level, cva)));
            let e = SlEntry::decode(d, level);
            if self.leaf_here(level, cva, next, cpa, policy) {
                if e != SlEntry::NotPresent {
                    return Err(PgTableError::AlreadyMapped(Iova(cva)));
                }
            } else {
                needed += match e {
                    SlEntry::NotPresent => 1 + self.plan_map(None, level - 1, cva, next, cpa, policy)?,
                    SlEntry::Table(p) => {
                        self.plan_map(Some(self.table_at(p)), level - 1, cva, next, cpa, policy)?
                    }
                    SlEntry::Leaf { .. } => return Err(PgTableError::AlreadyMapped(Iova(cva))),
                };
            }
            cva = next;
        }
        Ok(needed)
    }

    /// Maps `[va, end)` to `pa` onwards below `tbl`; cannot fail once
    /// `plan_map` accepted the range and the tables are reserved.
    #[allow(clippy::too_many_arguments)]
    fn commit_map(
        &mut self,
        tbl: Tbl,
        level: u8,
        va: u64,
        end: u64,
        pa: u64,
        prot: Prot,
        policy: Policy,
        stash: &mut Vec<TablePage>,
    ) {
        let mut cva = va;
        while cva < end {
            let next = chunk_end(level, cva, end);
            let cpa = pa + (cva - va);
            let idx = Self::index(level, cva);
            if self.leaf_here(level, cva, next, cpa, policy) {
                let leaf = SlEntry::leaf(PhysAddr(cpa), prot).expect("checked in map_range");
                tbl.set(idx, leaf.encode(level));
                self.sync(tbl, idx);
            } else {
                let sub = match SlEntry::decode(tbl.get(idx), level) {
                    SlEntry::Table(p) => self.table_at(p),
                    _ => {
                        let (spa, sub) = Self::take_table(stash);
                        self.alloc.sync_for_walker(sub.entry_ptr(0), TABLE_BYTES);
                        // The cleared table must be visible before the link.
                        self.alloc.publish_barrier();
                        tbl.set(idx, SlEntry::table(spa).encode(level));
                        self.sync(tbl, idx);
                        sub
                    }
                };
                self.commit_map(sub, level - 1, cva, next, cpa, prot, policy, stash);
            }
            cva = next;
        }
    }

    /// Checks that all of `[va, end)` below `tbl` is mapped and counts the
    /// tables that splitting large pages will need.
    fn plan_unmap(&self, tbl: Tbl, level: u8, va: u64, end: u64) -> Result<usize, PgTableError> {
        let mut needed = 0;
        let mut cva = va;
        while cva < end {
            let next = chunk_end(level, cva, end);
            match SlEntry::decode(tbl.get(Self::index(level, cva)), level) {
                SlEntry::NotPresent => return Err(PgTableError::NotMapped(Iova(cva))),
                SlEntry::Leaf { .. } => needed += split_tables(level, cva, next),
                SlEntry::Table(p) => needed += self.plan_unmap(self.table_at(p), level - 1, cva, next)?,
            }
            cva = next;
        }
        Ok(needed)
    }

    /// Unmaps `[va, end)` below `tbl`: clears leaves, splits large pages
    /// that are partly inside, unlinks tables that become empty.
    fn commit_unmap(
        &mut self,
        tbl: Tbl,
        level: u8,
        va: u64,
        end: u64,
        gather: &mut IotlbGather,
        stash: &mut Vec<TablePage>,
    ) {
        let mut cva = va;
        while cva < end {
            let next = chunk_end(level, cva, end);
            let idx = Self::index(level, cva);
            match SlEntry::decode(tbl.get(idx), level) {
                SlEntry::NotPresent => unreachable!("plan_unmap found every page mapped"),
                SlEntry::Leaf { pa, access } if next - cva < size(level) => {
                    // Split: a table mapping the whole large page as before,
                    // built while unlinked, then the part cleared, then one
                    // store replaces the large page. x86 has no
                    // break-before-make rule: a walker sees the old large
                    // page or the new table, both right outside the hole.
                    let (spa, sub) = Self::take_table(stash);
                    let sub_size = size(level - 1);
                    let base = cva & !(size(level) - 1);
                    for k in 0..ENTRIES {
                        let e = SlEntry::Leaf { pa: PhysAddr(pa.0 + k as u64 * sub_size), access };
                        sub.set(k, e.encode(level - 1));
                    }
                    self.commit_unmap(sub, level - 1, cva, next, gather, stash);
                    self.alloc.sync_for_walker(sub.entry_ptr(0), TABLE_BYTES);
                    self.alloc.publish_barrier();
                    tbl.set(idx, SlEntry::table(spa).encode(level));
                    self.sync(tbl, idx);
                    // The IOTLB may hold the large page: invalidate it whole.
                    gather.add_range(base, base + size(level), size(level));
                }
                SlEntry::Leaf { .. } => {
                    tbl.set(idx, 0);
                    self.sync(tbl, idx);
                    gather.add_range(cva, next, size(level));
                }
                SlEntry::Table(p) => {
                    let sub = self.table_at(p);
                    self.commit_unmap(sub, level - 1, cva, next, gather, stash);
                    if sub.is_empty() {
                        tbl.set(idx, 0);
                        self.sync(tbl, idx);
                        gather.set_tables_removed();
                        gather.push_freed(p);
                    }
                }
            }
            cva = next;
        }
    }

    /// Frees every table below `tbl` (not `tbl` itself).
    fn free_below(&mut self, tbl: Tbl, level: u8) {
        for i in 0..ENTRIES {
            if let SlEntry::Table(p) = SlEntry::decode(tbl.get(i), level) {
                let sub = self.table_at(p);
                self.free_below(sub, level - 1);
                let page = TablePage { pa: p, va: self.alloc.phys_to_virt(p) };
                // SAFETY: the tree is being dropped and the page was linked
                // only here; the caller no longer lets the IOMMU walk it.
                unsafe { self.alloc.free_table(page, TABLE_BYTES) };
            }
        }
    }
}

/// Bytes one entry at `level` maps.
const fn size(level: u8) -> u64 {
    1 << level_shift(level)
}

/// The end of the part of `[va, end)` that the entry at `level` covering
/// `va` maps.
fn chunk_end(level: u8, va: u64, end: u64) -> u64 {
    let s = size(level);
    (va & !(s - 1)).saturating_add(s).min(end)
}

/// Tables needed to split the large page at `level` so that `[va, next)`
/// (part of it) can be unmapped: one for it, plus those of the partly
/// covered pages of the next level down.
fn split_tables(level: u8, va: u64, next: u64) -> usize {
    if next - va == size(level) {
        return 0;
    }
    let sub = size(level - 1);
    let mut n = 1;
    let mut c = va;
    while c < next {
        let e = ((c & !(sub - 1)) + sub).min(next);
        if level - 1 > 1 {
            n += split_tables(level - 1, c, e);
        }
        c = e;
    }
    n
}

impl<A: PageAllocator> IoPageTable for SlTable<A> {
    fn page_sizes(&self) -> u64 {
        (1..=3).filter(|&l| self.leaf_allowed(l)).fold(0, |m, l| m | size(l))
    }

    fn ias(&self) -> u32 {
        self.cfg.ias
    }

    fn oas(&self) -> u32 {
        self.cfg.oas
    }

    fn map_pages(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: u64,
        pgcount: usize,
        prot: Prot,
    ) -> Result<(), PgTableError> {
        let level = self.level_of(pgsize).ok_or(PgTableError::UnsupportedPageSize(pgsize))?;
        if pgcount == 0 {
            return Err(PgTableError::SizeZero);
        }
        if iova.0 & (pgsize - 1) != 0 {
            return Err(PgTableError::UnalignedIova(iova));
        }
        if paddr.0 & (pgsize - 1) != 0 {
            return Err(PgTableError::UnalignedPaddr(paddr.0));
        }
        let len = pgsize.checked_mul(pgcount as u64).ok_or(PgTableError::IovaOutOfRange)?;
        self.check_input(iova.0, len)?;
        self.check_output(paddr.0, len)?;
        self.map_range(iova.0, paddr.0, len, prot, Policy::Fixed(level))
    }

    fn map(&mut self, iova: Iova, paddr: PhysAddr, len: u64, prot: Prot) -> Result<(), PgTableError> {
        let page = size(1);
        if len == 0 {
            return Err(PgTableError::SizeZero);
        }
        if iova.0 & (page - 1) != 0 {
            return Err(PgTableError::UnalignedIova(iova));
        }
        if paddr.0 & (page - 1) != 0 {
            return Err(PgTableError::UnalignedPaddr(paddr.0));
        }
        if len & (page - 1) != 0 {
            return Err(PgTableError::UnalignedSize);
        }
        self.check_input(iova.0, len)?;
        self.check_output(paddr.0, len)?;
        self.map_range(iova.0, paddr.0, len, prot, Policy::Largest)
    }

    fn unmap_pages(
        &mut self,
        iova: Iova,
        pgsize: u64,
        pgcount: usize,
        gather: &mut IotlbGather,
    ) -> Result<(), PgTableError> {
        if self.level_of(pgsize).is_none() {
            return Err(PgTableError::UnsupportedPageSize(pgsize));
        }
        if pgcount == 0 {
            return Err(PgTableError::SizeZero);
        }
        if iova.0 & (pgsize - 1) != 0 {
            return Err(PgTableError::UnalignedIova(iova));
        }
        let len = pgsize.checked_mul(pgcount as u64).ok_or(PgTableError::IovaOutOfRange)?;
        let end = self.check_input(iova.0, len)?;
        gather.claim(self.root.pa)?;
        let top = self.cfg.levels;
        let needed = self.plan_unmap(self.root_tbl(), top, iova.0, end)?;
        let mut stash = self.reserve(needed)?;
        self.commit_unmap(self.root_tbl(), top, iova.0, end, gather, &mut stash);
        debug_assert!(stash.is_empty());
        Ok(())
    }

    fn complete(&mut self, gather: &mut IotlbGather) -> Result<(), PgTableError> {
        if !gather.owned_by(self.root.pa) {
            return Err(PgTableError::ForeignGather);
        }
        // Splits link their tables at once (no break-before-make on x86):
        // nothing is pending, only freeing.
        debug_assert_eq!(gather.pending_splits(), 0);
        for &pa in gather.freed() {
            let page = TablePage { pa, va: self.alloc.phys_to_virt(pa) };
            // SAFETY: unmap unlinked these pages from this table, and the
            // caller has invalidated the IOMMU's caches (complete's contract).
            unsafe { self.alloc.free_table(page, TABLE_BYTES) };
        }
        gather.reset();
        Ok(())
    }

    fn lookup(&self, iova: Iova) -> Option<Translation> {
        if iova.0 >> self.cfg.ias != 0 {
            return None;
        }
        let mut tbl = self.root_tbl();
        let mut level = self.cfg.levels;
        loop {
            match SlEntry::decode(tbl.get(Self::index(level, iova.0)), level) {
                SlEntry::NotPresent => return None,
                SlEntry::Table(p) => {
                    tbl = self.table_at(p);
                    level -= 1;
                }
                e @ SlEntry::Leaf { pa, .. } => {
                    let s = size(level);
                    return Some(Translation {
                        paddr: PhysAddr(pa.0 | (iova.0 & (s - 1))),
                        size: s,
                        prot: e.prot()?,
                    });
                }
            }
        }
    }
}

impl<A: PageAllocator> Drop for SlTable<A> {
    /// Frees every table. The IOMMU must no longer use the table (the
    /// context entries pointing at it were cleared and invalidated).
    fn drop(&mut self) {
        let root = self.root_tbl();
        self.free_below(root, self.cfg.levels);
        // SAFETY: the root came from `alloc_table(TABLE_BYTES)` in `new`.
        unsafe { self.alloc.free_table(self.root, TABLE_BYTES) };
    }
}

impl<A: PageAllocator> core::fmt::Debug for SlTable<A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SlTable").field("root", &self.root.pa).field("config", &self.cfg).finish()
    }
}
