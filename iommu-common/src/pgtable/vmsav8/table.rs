//! The walker: table memory, lookups, stage configurations and teardown.
//! Mapping and unmapping live in `map.rs` and `unmap.rs`.

use alloc::vec::Vec;
use core::ops::Range;
use core::ptr::NonNull;

use super::desc::{leaf_type, LEAF_ATTR_MASK, SW_PENDING, TABLE_OR_PAGE, VALID};
use super::granule::{ps_encoding, Geometry};
use super::map::Policy;
use super::{Format, Granule, Stage1, Stage1Config, Stage2, Stage2Config, TableConfig, MAIR};
use crate::addr::{Iova, PhysAddr};
use crate::pgtable::{
    ConfigError, IoPageTable, IotlbGather, PageAllocator, PgTableError, Prot, TablePage, Translation,
};

/// The entries of one table as the CPU reaches them. The only raw-pointer
/// access to table memory in this format goes through here.
#[derive(Clone, Copy, Debug)]
pub(super) struct Tbl {
    ptr: NonNull<u64>,
    len: usize,
}

impl Tbl {
    /// # Safety
    ///
    /// `ptr` must be aligned and valid for reads and writes of `len`
    /// descriptors for as long as the handle is used, and be written only
    /// through `Tbl` handles.
    #[inline(always)]
    pub(super) unsafe fn new(ptr: NonNull<u8>, len: usize) -> Self {
        Self { ptr: ptr.cast(), len }
    }

    /// Number of entries.
    #[inline(always)]
    pub(super) fn len(self) -> usize {
        self.len
    }

    /// Entry `i`.
    #[inline(always)]
    pub(super) fn get(self, i: usize) -> u64 {
        assert!(i < self.len);
        // SAFETY: `i` is in bounds and the memory is valid (constructor contract).
        unsafe { self.ptr.add(i).read() }
    }

    /// Writes entry `i`: one volatile 64-bit store, which the walker observes
    /// whole (single-copy atomic), never torn or merged.
    #[inline(always)]
    pub(super) fn set(self, i: usize, v: u64) {
        assert!(i < self.len);
        // SAFETY: As in `get`.
        unsafe { self.ptr.add(i).write_volatile(v) }
    }

    /// Calls `f` with the entries in `r`. `f` must not write this table.
    #[inline(always)]
    pub(super) fn view<R>(self, r: Range<usize>, f: impl FnOnce(&[u64]) -> R) -> R {
        assert!(r.start <= r.end && r.end <= self.len);
        // SAFETY: The range is in bounds; the table is not written while the
        // slice lives (callers' `f` only reads).
        let s = unsafe { core::slice::from_raw_parts(self.ptr.add(r.start).as_ptr(), r.len()) };
        f(s)
    }

    /// Writes `f(k)` to entry `start + k` for `k` in `0..n`, each as in
    /// [`set`](Self::set).
    #[inline(always)]
    pub(super) fn fill(self, start: usize, n: usize, mut f: impl FnMut(u64) -> u64) {
        assert!(start <= self.len && n <= self.len - start);
        let first = self.ptr.as_ptr().wrapping_add(start);
        for k in 0..n {
            // SAFETY: `start + k < len`, checked above.
            unsafe { first.add(k).write_volatile(f(k as u64)) }
        }
    }

    /// Writes `f(k)` to entry `start + k` for `k` in `0..n` with plain
    /// stores (which the compiler may merge into vector stores): only for a
    /// table no walker can reach yet.
    #[inline(always)]
    pub(super) fn fill_unlinked(self, start: usize, n: usize, mut f: impl FnMut(u64) -> u64) {
        assert!(start <= self.len && n <= self.len - start);
        // SAFETY: In bounds (checked above); nothing else accesses an
        // unlinked table while this exclusive slice lives.
        let s = unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr().add(start), n) };
        for (k, e) in s.iter_mut().enumerate() {
            *e = f(k as u64);
        }
    }

    /// Clears entries `start..start + n` of a table no walker can reach yet.
    pub(super) fn zero_unlinked(self, start: usize, n: usize) {
        assert!(start <= self.len && n <= self.len - start);
        // SAFETY: In bounds (checked above).
        unsafe { self.ptr.as_ptr().add(start).write_bytes(0, n) }
    }

    /// Pointer to entry `i` (for cache maintenance).
    #[inline(always)]
    pub(super) fn entry_ptr(self, i: usize) -> NonNull<u8> {
        assert!(i <= self.len);
        // SAFETY: At most one past the end of the table.
        unsafe { self.ptr.add(i).cast() }
    }

    /// Whether every entry outside `lo..hi` is zero. Looks at the neighbours
    /// first, so the common "not empty" answer is found in one read.
    #[inline(always)]
    pub(super) fn empty_outside(self, lo: usize, hi: usize) -> bool {
        if (hi < self.len && self.get(hi) != 0) || (lo > 0 && self.get(lo - 1) != 0) {
            return false;
        }
        self.empty_outside_scan(lo, hi)
    }

    #[inline(never)]
    fn empty_outside_scan(self, lo: usize, hi: usize) -> bool {
        self.view(hi.min(self.len)..self.len, all_zero) && self.view(0..lo, all_zero)
    }
}

/// Table pages reserved for one update; small reservations stay off the
/// heap.
pub(super) struct Stash {
    inline: [Option<TablePage>; 4],
    heap: Vec<TablePage>,
}

impl Stash {
    fn with_capacity(n: usize) -> Self {
        Self { inline: [None; 4], heap: if n > 4 { Vec::with_capacity(n - 4) } else { Vec::new() } }
    }

    fn push(&mut self, page: TablePage) {
        match self.inline.iter_mut().find(|p| p.is_none()) {
            Some(slot) => *slot = Some(page),
            None => self.heap.push(page),
        }
    }

    /// Takes a page (the heap first, then the inline slots from the end).
    pub(super) fn pop(&mut self) -> Option<TablePage> {
        self.heap.pop().or_else(|| self.inline.iter_mut().rev().find_map(Option::take))
    }

    /// Whether every reserved page was used.
    pub(super) fn is_empty(&self) -> bool {
        self.heap.is_empty() && self.inline.iter().all(Option::is_none)
    }
}

/// Whether every descriptor in `s` is zero. Eight at a time with an early
/// exit: the release profile optimises for size and does not vectorise.
#[inline]
pub(super) fn all_zero(s: &[u64]) -> bool {
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        if (c[0] | c[1]) | (c[2] | c[3]) | (c[4] | c[5]) | (c[6] | c[7]) != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&d| d == 0)
}

/// What an entry holds, as software sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// Invalid, nothing mapped.
    Empty,
    /// Invalid to hardware, but holds a prepared split table (see
    /// [`SplitPolicy::BreakBeforeMake`](super::SplitPolicy::BreakBeforeMake)).
    Pending,
    /// A valid table descriptor.
    Table,
    /// A valid block or page.
    Leaf,
}

/// Classifies an entry of a table at `level`.
#[inline(always)]
pub(super) fn kind(d: u64, level: u8) -> Kind {
    if d & VALID != 0 {
        if level < 3 && d & TABLE_OR_PAGE != 0 {
            Kind::Table
        } else {
            Kind::Leaf
        }
    } else if d & SW_PENDING != 0 {
        Kind::Pending
    } else {
        Kind::Empty
    }
}

/// The last table a map reached, to skip the walk for the next one nearby.
#[derive(Clone, Copy, Debug)]
pub(super) struct LeafCache {
    pub level: u8,
    /// Input address shifted right by the span of a table at `level`.
    pub key: u64,
    pub tbl: Option<Tbl>,
    /// Size of a leaf at `level`.
    size: u64,
    /// `shift(level - 1)` and `shift(level)`.
    key_shift: u32,
    idx_shift: u32,
}

impl LeafCache {
    /// Nothing remembered.
    pub(super) const EMPTY: Self = Self { level: 0, key: 0, tbl: None, size: 0, key_shift: 0, idx_shift: 0 };

    /// Remembers `tbl`, the (non-root) table at `level` covering `va`.
    #[inline(always)]
    pub(super) fn at(geom: &Geometry, level: u8, va: u64, tbl: Tbl) -> Self {
        let key_shift = geom.shift(level - 1);
        Self {
            level,
            key: va >> key_shift,
            tbl: Some(tbl),
            size: geom.size(level),
            key_shift,
            idx_shift: geom.shift(level),
        }
    }

    /// Whether the remembered table covers `va` at `level`.
    #[inline(always)]
    pub(super) fn covers(&self, level: u8, va: u64) -> Option<Tbl> {
        let tbl = self.tbl?;
        (self.level == level && va >> self.key_shift == self.key).then_some(tbl)
    }

    /// The remembered table and the index of the entry for a leaf of `size`
    /// at `va`, if the table holds such leaves and covers `va`.
    #[inline(always)]
    fn hit(&self, va: u64, size: u64) -> Option<(Tbl, usize)> {
        let tbl = self.tbl?;
        if size != self.size || va >> self.key_shift != self.key {
            return None;
        }
        Some((tbl, ((va >> self.idx_shift) as usize) & (tbl.len() - 1)))
    }
}

/// Counts over a whole table tree (for checks and benchmarks).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Allocated table blocks, the root included.
    pub tables: usize,
    /// Leaves by level: index 3 counts pages, lower indices blocks.
    pub leaves: [u64; 4],
    /// Bytes mapped by all leaves.
    pub mapped_bytes: u64,
    /// Tables other than the root with no entry: always 0 unless broken.
    pub empty_tables: usize,
    /// Entries holding a split table not yet linked in (tables and leaves
    /// below them are counted above).
    pub pending: usize,
}

/// An Arm VMSAv8-64 IO page table of format `F` (stage 1 or 2) whose tables
/// come from `A`.
///
/// Cheap single-page updates: maps and unmaps remember the last leaf table
/// they reached and skip the walk when the next one falls into the same
/// table (the memo is dropped whenever a table is unlinked).
pub struct Vmsav8Table<F: Format, A: PageAllocator> {
    pub(super) alloc: A,
    pub(super) root: TablePage,
    pub(super) geom: Geometry,
    pub(super) fmt: F,
    pub(super) cfg: TableConfig,
    pub(super) cache: LeafCache,
    attr_cache: Option<(Prot, u64)>,
}

// SAFETY: The table exclusively owns its table memory; moving it to another
// thread moves that ownership along with the allocator.
unsafe impl<F: Format + Send, A: PageAllocator + Send> Send for Vmsav8Table<F, A> {}
// SAFETY: `&self` methods only read table memory.
unsafe impl<F: Format + Sync, A: PageAllocator + Sync> Sync for Vmsav8Table<F, A> {}

impl<F: Format, A: PageAllocator> Vmsav8Table<F, A> {
    /// An empty table: allocates and clears the root.
    pub fn new(fmt: F, cfg: TableConfig, mut alloc: A) -> Result<Self, ConfigError> {
        let geom = Geometry::new(cfg.granule, cfg.ias, cfg.oas, F::STAGE2, cfg.prefer_concatenation)?;
        let bytes = geom.alloc_bytes(geom.start);
        let root = alloc.alloc_table(bytes).ok_or(ConfigError::OutOfMemory)?;
        // SAFETY: `root` is a fresh block of `bytes` bytes (allocator contract).
        unsafe { root.va.as_ptr().write_bytes(0, bytes) };
        alloc.sync_for_walker(root.va, bytes);
        Ok(Self { alloc, root, geom, fmt, cfg, cache: LeafCache::EMPTY, attr_cache: None })
    }

    /// Physical address of the root table (`TTB0` / `S2TTB`).
    pub fn root_pa(&self) -> PhysAddr {
        self.root.pa
    }

    /// The initial lookup level.
    pub fn start_level(&self) -> u8 {
        self.geom.start
    }

    /// Number of concatenated tables at the initial level (1: none).
    pub fn concatenated_tables(&self) -> u32 {
        self.geom.concat
    }

    /// The configuration the table was built with.
    pub fn config(&self) -> &TableConfig {
        &self.cfg
    }

    /// The stage format.
    pub fn format(&self) -> &F {
        &self.fmt
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
        self.stats_of(self.root_tbl(), self.geom.start, &mut s);
        s
    }

    fn stats_of(&self, tbl: Tbl, level: u8, s: &mut TableStats) {
        for i in 0..tbl.len() {
            let d = tbl.get(i);
            match kind(d, level) {
                Kind::Empty => {}
                Kind::Leaf => {
                    s.leaves[level as usize] += 1;
                    s.mapped_bytes += self.geom.size(level);
                }
                k @ (Kind::Table | Kind::Pending) => {
                    s.pending += (k == Kind::Pending) as usize;
                    s.tables += 1;
                    let sub = self.table_at(d, level + 1);
                    if sub.empty_outside(0, 0) {
                        s.empty_tables += 1;
                    }
                    self.stats_of(sub, level + 1, s);
                }
            }
        }
    }

    /// Table walk attributes: `(IRGN, ORGN, SH)`.
    fn walk_attrs(&self) -> (u8, u8, u8) {
        if self.cfg.coherent_walk {
            (0b01, 0b01, 0b11)
        } else {
            (0b00, 0b00, 0b10)
        }
    }

    /// The root table.
    #[inline(always)]
    pub(super) fn root_tbl(&self) -> Tbl {
        // SAFETY: The root was allocated in `new` with room for
        // `entries(start)` descriptors and lives as long as `self`.
        unsafe { Tbl::new(self.root.va, self.geom.entries(self.geom.start)) }
    }

    /// The table a table or pending descriptor `d` points to, which is at
    /// `level`.
    #[inline(always)]
    pub(super) fn table_at(&self, d: u64, level: u8) -> Tbl {
        let va = self.alloc.phys_to_virt(PhysAddr(self.geom.decode_oa(d)));
        // SAFETY: Only this table writes table and pending descriptors, and
        // only with addresses of granule-sized tables it allocated and has not
        // freed; a table below the root has `entries(level)` descriptors.
        unsafe { Tbl::new(va, self.geom.entries(level)) }
    }

    /// A table descriptor for the table at `pa`.
    #[inline(always)]
    pub(super) fn table_desc(&self, pa: PhysAddr) -> u64 {
        self.geom.encode_oa(pa.0) | TABLE_OR_PAGE | VALID
    }

    /// Makes entries `r` of `tbl` visible to the walker.
    #[inline(always)]
    pub(super) fn sync(&self, tbl: Tbl, r: Range<usize>) {
        self.alloc.sync_for_walker(tbl.entry_ptr(r.start), r.len() * 8);
    }

    /// Allocates `n` non-root table pages, or none at all. Their contents are
    /// undefined: every entry must be written before a table is linked.
    pub(super) fn reserve(&mut self, n: usize) -> Result<Stash, PgTableError> {
        let bytes = self.geom.granule.size() as usize;
        let mut stash = Stash::with_capacity(n);
        for _ in 0..n {
            let Some(page) = self.alloc.alloc_table(bytes) else {
                while let Some(page) = stash.pop() {
                    // SAFETY: Allocated just above with this size, never linked.
                    unsafe { self.alloc.free_table(page, bytes) };
                }
                return Err(PgTableError::OutOfMemory);
            };
            stash.push(page);
        }
        Ok(stash)
    }

    /// Returns a non-root table page to the allocator.
    ///
    /// # Safety
    ///
    /// `pa` must be a non-root table of this table that is no longer linked,
    /// not used again, and no longer walked by the IOMMU.
    pub(super) unsafe fn free_page(&mut self, pa: PhysAddr) {
        let page = TablePage { pa, va: self.alloc.phys_to_virt(pa) };
        // SAFETY: Allocated by `reserve` with a granule's size; the caller
        // guarantees it is unused.
        unsafe { self.alloc.free_table(page, self.geom.granule.size() as usize) };
    }

    /// Frees every table below `tbl` (not `tbl` itself).
    fn free_below(&mut self, tbl: Tbl, level: u8) {
        if level == 3 {
            return;
        }
        for i in 0..tbl.len() {
            let d = tbl.get(i);
            if matches!(kind(d, level), Kind::Table | Kind::Pending) {
                let sub = self.table_at(d, level + 1);
                self.free_below(sub, level + 1);
                // SAFETY: The table is being dropped; `sub` is linked only here.
                unsafe { self.free_page(PhysAddr(self.geom.decode_oa(d))) };
            }
        }
    }

    fn check_input(&self, iova: u64, len: u64) -> Result<(), PgTableError> {
        match iova.checked_add(len) {
            Some(end) if end <= 1u64 << self.geom.ias => Ok(()),
            _ => Err(PgTableError::IovaOutOfRange),
        }
    }

    fn check_output(&self, pa: u64, len: u64) -> Result<(), PgTableError> {
        match pa.checked_add(len) {
            Some(end) if end <= 1u64 << self.geom.oas => Ok(()),
            _ => Err(PgTableError::PaddrOutOfRange),
        }
    }

    /// `map_pages` beyond the single-leaf fast path.
    #[inline(never)]
    fn map_pages_general(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: u64,
        pgcount: usize,
        prot: Prot,
    ) -> Result<(), PgTableError> {
        let level = self.geom.level_of(pgsize).ok_or(PgTableError::UnsupportedPageSize(pgsize))?;
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
        let attrs = self.attrs(prot)?;
        self.map_range(iova.0, paddr.0, len, attrs, Policy::Fixed(level))
    }

    /// `unmap_pages` beyond the single-leaf fast path.
    #[inline(never)]
    fn unmap_pages_general(
        &mut self,
        iova: Iova,
        pgsize: u64,
        pgcount: usize,
        gather: &mut IotlbGather,
    ) -> Result<(), PgTableError> {
        if self.geom.level_of(pgsize).is_none() {
            return Err(PgTableError::UnsupportedPageSize(pgsize));
        }
        if pgcount == 0 {
            return Err(PgTableError::SizeZero);
        }
        if iova.0 & (pgsize - 1) != 0 {
            return Err(PgTableError::UnalignedIova(iova));
        }
        let len = pgsize.checked_mul(pgcount as u64).ok_or(PgTableError::IovaOutOfRange)?;
        self.check_input(iova.0, len)?;
        gather.claim(self.root.pa)?;
        self.unmap_range(iova.0, iova.0 + len, gather)
    }

    /// The leaf attribute bits for `prot`, remembering the last answer.
    #[inline(always)]
    fn attrs(&mut self, prot: Prot) -> Result<u64, PgTableError> {
        if let Some((p, a)) = self.attr_cache {
            if p == prot {
                return Ok(a);
            }
        }
        let a = self.fmt.leaf_attrs(prot)? & LEAF_ATTR_MASK;
        self.attr_cache = Some((prot, a));
        Ok(a)
    }
}

impl<A: PageAllocator> Vmsav8Table<Stage1, A> {
    /// The values a context descriptor (or `TCR_EL1`/`TTBR0_EL1`/`MAIR_EL1`)
    /// needs for this table.
    pub fn stage1_config(&self) -> Stage1Config {
        let (irgn0, orgn0, sh0) = self.walk_attrs();
        Stage1Config {
            ttb0: self.root.pa,
            t0sz: (64 - self.geom.ias) as u8,
            tg0: self.geom.granule.tg0(),
            ips: ps_encoding(self.geom.oas).unwrap_or(0),
            irgn0,
            orgn0,
            sh0,
            mair: MAIR,
            start_level: self.geom.start,
        }
    }

    /// The MAIR value the descriptors' `AttrIndx` fields refer to.
    pub fn mair(&self) -> u64 {
        MAIR
    }
}

impl<A: PageAllocator> Vmsav8Table<Stage2, A> {
    /// The values a stream table entry (or `VTCR_EL2`/`VTTBR_EL2`) needs for
    /// this table.
    pub fn stage2_config(&self) -> Stage2Config {
        let (irgn, orgn, sh) = self.walk_attrs();
        let sl0 = match self.geom.granule {
            Granule::Size4K => 2 - self.geom.start,
            Granule::Size64K => 3 - self.geom.start,
        };
        Stage2Config {
            vttb: self.root.pa,
            t0sz: (64 - self.geom.ias) as u8,
            sl0,
            tg: self.geom.granule.tg0(),
            ps: ps_encoding(self.geom.oas).unwrap_or(0),
            irgn,
            orgn,
            sh,
            start_level: self.geom.start,
            concatenated: self.geom.concat as u8,
        }
    }
}

impl<F: Format, A: PageAllocator> IoPageTable for Vmsav8Table<F, A> {
    fn page_sizes(&self) -> u64 {
        self.geom.page_sizes()
    }

    fn ias(&self) -> u32 {
        self.geom.ias
    }

    fn oas(&self) -> u32 {
        self.geom.oas
    }

    #[inline(always)]
    fn map_pages(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: u64,
        pgcount: usize,
        prot: Prot,
    ) -> Result<(), PgTableError> {
        // One leaf into the remembered table with the remembered attributes:
        // the common single-page case, checked in a few instructions. A key
        // match implies `iova` is inside the input range; an aligned `paddr`
        // below `1 << oas` ends at or below it.
        if pgcount == 1 && (iova.0 | paddr.0) & pgsize.wrapping_sub(1) == 0 && paddr.0 >> self.geom.oas == 0 {
            if let (Some((tbl, idx)), Some((p, attrs))) = (self.cache.hit(iova.0, pgsize), self.attr_cache) {
                if p == prot && tbl.get(idx) == 0 {
                    tbl.set(idx, attrs | leaf_type(self.cache.level) | self.geom.encode_oa(paddr.0));
                    self.sync(tbl, idx..idx + 1);
                    return Ok(());
                }
            }
        }
        self.map_pages_general(iova, paddr, pgsize, pgcount, prot)
    }

    fn map(&mut self, iova: Iova, paddr: PhysAddr, len: u64, prot: Prot) -> Result<(), PgTableError> {
        let page = self.geom.granule.size();
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
        let attrs = self.attrs(prot)?;
        self.map_range(iova.0, paddr.0, len, attrs, Policy::Largest)
    }

    #[inline(always)]
    fn unmap_pages(
        &mut self,
        iova: Iova,
        pgsize: u64,
        pgcount: usize,
        gather: &mut IotlbGather,
    ) -> Result<(), PgTableError> {
        // One leaf out of the remembered table, which keeps other entries
        // (so nothing needs unlinking), into a gather already ours.
        if pgcount == 1 && iova.0 & pgsize.wrapping_sub(1) == 0 && gather.owned_exactly_by(self.root.pa) {
            if let Some((tbl, idx)) = self.cache.hit(iova.0, pgsize) {
                let kept =
                    (idx + 1 < tbl.len() && tbl.get(idx + 1) != 0) || (idx > 0 && tbl.get(idx - 1) != 0);
                if kept && tbl.get(idx) & (VALID | TABLE_OR_PAGE) == leaf_type(self.cache.level) {
                    tbl.set(idx, 0);
                    self.sync(tbl, idx..idx + 1);
                    gather.add_range(iova.0, iova.0 + pgsize, pgsize);
                    return Ok(());
                }
            }
        }
        self.unmap_pages_general(iova, pgsize, pgcount, gather)
    }

    fn complete(&mut self, gather: &mut IotlbGather) -> Result<(), PgTableError> {
        if !gather.owned_by(self.root.pa) {
            return Err(PgTableError::ForeignGather);
        }
        self.install_pending(gather);
        if !gather.freed().is_empty() {
            self.cache.tbl = None;
        }
        for &pa in gather.freed() {
            // SAFETY: Unmap unlinked these pages from this table and the caller
            // has invalidated the IOMMU's caches (the contract of `complete`).
            unsafe { self.free_page(pa) };
        }
        gather.reset();
        Ok(())
    }

    fn lookup(&self, iova: Iova) -> Option<Translation> {
        if iova.0 >> self.geom.ias != 0 {
            return None;
        }
        let mut tbl = self.root_tbl();
        let mut level = self.geom.start;
        loop {
            let d = tbl.get(self.geom.index(level, iova.0));
            match kind(d, level) {
                Kind::Empty | Kind::Pending => return None,
                Kind::Table => {
                    level += 1;
                    tbl = self.table_at(d, level);
                }
                Kind::Leaf => {
                    if level == 3 && d & TABLE_OR_PAGE == 0 {
                        return None;
                    }
                    let size = self.geom.size(level);
                    return Some(Translation {
                        paddr: PhysAddr(self.geom.decode_oa(d) | (iova.0 & (size - 1))),
                        size,
                        prot: self.fmt.leaf_prot(d),
                    });
                }
            }
        }
    }
}

impl<F: Format, A: PageAllocator> Drop for Vmsav8Table<F, A> {
    /// Frees every table. The IOMMU must no longer use the table (the STE or
    /// CD pointing at it was replaced and invalidated), and gathers of this
    /// table should have been completed: pages they hold are not freed.
    fn drop(&mut self) {
        let root = self.root_tbl();
        self.free_below(root, self.geom.start);
        let bytes = self.geom.alloc_bytes(self.geom.start);
        // SAFETY: The root came from `alloc_table(bytes)` in `new`.
        unsafe { self.alloc.free_table(self.root, bytes) };
    }
}

impl<F: Format, A: PageAllocator> core::fmt::Debug for Vmsav8Table<F, A> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Vmsav8Table")
            .field("format", &self.fmt)
            .field("root", &self.root.pa)
            .field("start_level", &self.geom.start)
            .field("config", &self.cfg)
            .finish()
    }
}
