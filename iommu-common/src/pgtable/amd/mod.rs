//! The AMD-Vi host (v1) I/O page-table format (AMD IOMMU spec, pub. 48882,
//! 2.2.3), as the Device Table Entry's `Mode` (1..=6 levels) and
//! `HostPageTableRootPtr` point an IOMMU at it.
//!
//! [`AmdTable`] is a compact walker of its own: the VMSAv8 walker is built
//! around that format's granules, descriptor types and split policies, none
//! of which AMD-Vi shares. The mapping policy is the same as VMSAv8's:
//! all-or-nothing updates, no overwrite of a present entry
//! ([`PgTableError::AlreadyMapped`]), table pages unlinked on unmap as soon as
//! they are empty and freed by [`IoPageTable::complete`] after the caller's
//! invalidation.
//!
//! Leaves are default-size PTEs (NextLevel = 0): 4 KiB at level 1, 2 MiB at
//! level 2, 1 GiB at level 3, as far as the table has those levels. The
//! NextLevel = 7 encodings (other power-of-two sizes) and skipped levels are
//! decoded by [`lookup`](IoPageTable::lookup) (as hardware would walk them)
//! but never written. Unmapping part of a leaf replaces it by a table
//! holding the rest in one 64-bit store; AMD-Vi has no break-before-make
//! rule for that, and the gather records the whole old leaf.
//!
//! Permissions: IR/IW from [`Access::READ`]/[`Access::WRITE`] (EXEC and PRIV
//! have no bit and are dropped); PDEs carry IR = IW = 1 so the PTE alone
//! decides. Memory type: [`MemType::WriteBack`] sets FC (force coherent,
//! as Linux does for every PTE); any other type leaves FC clear and reads back
//! as [`MemType::NonCacheable`] (see [`AmdTable::effective_prot`]).

pub mod entry;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::ptr::NonNull;

use self::entry::{decode, index, level_shift, Decoded, ADDR_MASK, FC, IR, IW, PR, U};
use crate::addr::{Iova, PhysAddr};
use crate::pgtable::{
    Access, ConfigError, IoPageTable, IotlbGather, MemType, PageAllocator, PgTableError, Prot, TablePage,
    Translation,
};

/// Size of every table: 512 eight-byte entries.
pub const TABLE_SIZE: usize = 4096;
const ENTRIES: usize = 512;
/// Output addresses: Address `[51:12]`.
pub const OAS: u32 = 52;
/// The deepest level a leaf is written at (1 GiB pages).
const MAX_LEAF_LEVEL: u8 = 3;

/// One table's entries as the CPU reaches them; the only raw-pointer access
/// to table memory in this format.
#[derive(Clone, Copy)]
struct Tbl(NonNull<u64>);

impl Tbl {
    fn get(self, i: usize) -> u64 {
        assert!(i < ENTRIES);
        // SAFETY: `i` is in bounds; the pointer comes from the allocator for a
        // live table page of TABLE_SIZE bytes (PageAllocator contract), 8-aligned.
        unsafe { self.0.add(i).read_volatile() }
    }

    /// One volatile 64-bit store: the walker sees the entry whole.
    fn set(self, i: usize, v: u64) {
        assert!(i < ENTRIES);
        // SAFETY: As in `get`; table pages are written only through `Tbl`.
        unsafe { self.0.add(i).write_volatile(v) }
    }

    /// Where entry `i` is, for cache maintenance.
    fn ptr(self, i: usize) -> NonNull<u8> {
        assert!(i < ENTRIES);
        // SAFETY: In bounds of the table page.
        unsafe { self.0.add(i).cast() }
    }

    fn is_empty(self) -> bool {
        (0..ENTRIES).all(|i| self.get(i) == 0)
    }

    fn zero(self) {
        for i in 0..ENTRIES {
            self.set(i, 0);
        }
    }
}

/// Which level a map writes its leaves at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Leaves {
    /// Exactly this level (`map_pages`).
    At(u8),
    /// The highest level whose entry lies wholly in the request with an
    /// aligned output address (`map`).
    Largest,
}

/// What a map writes: output offset, leaf placement, protection.
#[derive(Clone, Copy, Debug)]
struct MapReq {
    /// Output address minus input address.
    delta: u64,
    how: Leaves,
    prot: Prot,
}

/// What a split keeps: the old leaf's attributes, and the hole `[s, e)`.
#[derive(Clone, Copy, Debug)]
struct Hole {
    attrs: u64,
    s: u64,
    e: u64,
}

/// Counts over a whole table tree (for checks and tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AmdTableStats {
    /// Table pages, the root included.
    pub tables: usize,
    /// Leaves per level (index 1..=6).
    pub leaves: [usize; 7],
    /// Bytes mapped.
    pub mapped_bytes: u64,
    /// Non-root tables without a present entry (always 0: an invariant).
    pub empty_tables: usize,
}

/// An AMD-Vi host page table of 1..=6 levels over a [`PageAllocator`].
pub struct AmdTable<A: PageAllocator> {
    alloc: A,
    root: TablePage,
    levels: u8,
}

// SAFETY: The table exclusively owns its pages; `A: Send` moves with it.
unsafe impl<A: PageAllocator + Send> Send for AmdTable<A> {}

impl<A: PageAllocator> AmdTable<A> {
    /// An empty table with `levels` levels (the DTE's Mode; QEMU and most
    /// hardware walk 3 or 4): input addresses of 12 + 9 * levels bits.
    pub fn new(levels: u8, mut alloc: A) -> Result<Self, ConfigError> {
        if !(1..=6).contains(&levels) {
            return Err(ConfigError::UnsupportedIas(12 + 9 * u32::from(levels)));
        }
        let root = alloc.alloc_table(TABLE_SIZE).ok_or(ConfigError::OutOfMemory)?;
        // A fresh table page of TABLE_SIZE bytes (PageAllocator contract).
        let t = Tbl(root.va.cast());
        t.zero();
        alloc.sync_for_walker(root.va, TABLE_SIZE);
        Ok(Self { alloc, root, levels })
    }

    /// Number of levels: the DTE's Mode field.
    pub fn levels(&self) -> u8 {
        self.levels
    }

    /// The root table: the DTE's HostPageTableRootPtr.
    pub fn root(&self) -> PhysAddr {
        self.root.pa
    }

    /// The allocator.
    pub fn allocator(&self) -> &A {
        &self.alloc
    }

    /// The allocator, mutably (for limits in tests).
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.alloc
    }

    /// The protection a lookup reports for a leaf mapped with `prot`.
    pub fn effective_prot(prot: Prot) -> Prot {
        let a = prot.access();
        let access = Access::NONE
            .union(if a.contains(Access::READ) { Access::READ } else { Access::NONE })
            .union(if a.contains(Access::WRITE) { Access::WRITE } else { Access::NONE });
        let mem = if prot.mem() == MemType::WriteBack { MemType::WriteBack } else { MemType::NonCacheable };
        Prot::new(access, mem)
    }

    fn tbl(&self, pa: u64) -> Tbl {
        Tbl(self.alloc.phys_to_virt(PhysAddr(pa)).cast())
    }

    /// Input addresses must be below this (`None`: the whole 64-bit space).
    fn limit(&self) -> Option<u64> {
        1u64.checked_shl(self.ias()).filter(|_| self.ias() < 64)
    }

    fn leaf_level(&self, pgsize: u64) -> Result<u8, PgTableError> {
        if pgsize & self.page_sizes() == 0 || !pgsize.is_power_of_two() {
            return Err(PgTableError::UnsupportedPageSize(pgsize));
        }
        Ok(((pgsize.trailing_zeros() - 12) / 9 + 1) as u8)
    }

    fn check_input(&self, iova: Iova, len: u64) -> Result<u64, PgTableError> {
        let end = iova.0.checked_add(len).ok_or(PgTableError::IovaOutOfRange)?;
        if self.limit().is_some_and(|l| end > l) {
            return Err(PgTableError::IovaOutOfRange);
        }
        Ok(end)
    }

    /// The leaf value for output `pa` with `prot`.
    fn leaf(pa: u64, prot: Prot) -> u64 {
        let a = prot.access();
        entry::pte(pa, a.contains(Access::READ), a.contains(Access::WRITE), prot.mem() == MemType::WriteBack)
    }

    fn leaf_here(level: u8, es: u64, ee: u64, s: u64, e: u64, pa: u64, how: Leaves) -> bool {
        match how {
            Leaves::At(l) => level == l,
            Leaves::Largest => {
                level <= MAX_LEAF_LEVEL && s <= es && ee <= e && pa & ((1u64 << level_shift(level)) - 1) == 0
            }
        }
    }

    /// Calls `f(idx, entry_start, part_start, part_end)` for each entry of a
    /// level-`level` table that `[s, e)` (inside the table) touches.
    fn entries(level: u8, s: u64, e: u64, mut f: impl FnMut(usize, u64, u64, u64)) {
        let span = 1u64 << level_shift(level);
        let mut a = s;
        while a < e {
            let es = a & !(span - 1);
            let ee = es.saturating_add(span).min(e);
            f(index(a, level), es, a, ee);
            if ee <= a {
                break;
            }
            a = ee;
        }
    }

    /// Table pages a fresh subtree at `level` for `[s, e)` needs.
    fn fresh_tables(level: u8, s: u64, e: u64, delta: u64, how: Leaves) -> usize {
        let mut n = 1;
        if level == 1 || how == Leaves::At(level) {
            return n;
        }
        Self::entries(level, s, e, |_, es, ps, pe| {
            let span = 1u64 << level_shift(level);
            if !Self::leaf_here(level, es, es.wrapping_add(span), ps, pe, ps.wrapping_add(delta), how) {
                n += Self::fresh_tables(level - 1, ps, pe, delta, how);
            }
        });
        n
    }

    /// The read-only pass of a map: the first conflict, or the number of new
    /// table pages needed.
    fn check_map(&self, tbl: Tbl, level: u8, s: u64, e: u64, delta: u64, how: Leaves) -> Result<usize, u64> {
        let span = 1u64 << level_shift(level);
        let mut need = 0;
        let mut conflict = None;
        Self::entries(level, s, e, |i, es, ps, pe| {
            if conflict.is_some() {
                return;
            }
            let d = tbl.get(i);
            if Self::leaf_here(level, es, es.wrapping_add(span), ps, pe, ps.wrapping_add(delta), how) {
                if d & PR != 0 {
                    conflict = Some(ps);
                }
                return;
            }
            match decode(d, level) {
                Decoded::NotPresent => need += Self::fresh_tables(level - 1, ps, pe, delta, how),
                Decoded::Table { table, level: l } if l == level - 1 => {
                    match self.check_map(self.tbl(table), l, ps, pe, delta, how) {
                        Ok(n) => need += n,
                        Err(a) => conflict = Some(a),
                    }
                }
                _ => conflict = Some(ps),
            }
        });
        conflict.map_or(Ok(need), Err)
    }

    fn do_map(&mut self, tbl: Tbl, level: u8, s: u64, e: u64, req: MapReq, stash: &mut Vec<TablePage>) {
        let MapReq { delta, how, prot } = req;
        let span = 1u64 << level_shift(level);
        let mut a = s;
        while a < e {
            let es = a & !(span - 1);
            let pe = es.saturating_add(span).min(e);
            let i = index(a, level);
            if Self::leaf_here(level, es, es.wrapping_add(span), a, pe, a.wrapping_add(delta), how) {
                tbl.set(i, Self::leaf(a.wrapping_add(delta), prot));
            } else {
                let d = tbl.get(i);
                if d & PR != 0 {
                    let Decoded::Table { table, .. } = decode(d, level) else {
                        unreachable!("check_map let a leaf through")
                    };
                    self.do_map(self.tbl(table), level - 1, a, pe, req, stash);
                } else {
                    let page = stash.pop().expect("check_map counted the tables");
                    let child = Tbl(page.va.cast());
                    child.zero();
                    self.do_map(child, level - 1, a, pe, req, stash);
                    // The child must be complete before the PDE links it.
                    self.alloc.sync_for_walker(page.va, TABLE_SIZE);
                    self.alloc.publish_barrier();
                    tbl.set(i, entry::pde(page.pa.0, level - 1));
                }
            }
            self.alloc.sync_for_walker(tbl.ptr(i), 8);
            a = pe;
        }
    }

    fn reserve(&mut self, n: usize) -> Result<Vec<TablePage>, PgTableError> {
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            match self.alloc.alloc_table(TABLE_SIZE) {
                Some(p) => v.push(p),
                None => {
                    for p in v.drain(..) {
                        // SAFETY: Just allocated here, never linked.
                        unsafe { self.alloc.free_table(p, TABLE_SIZE) };
                    }
                    return Err(PgTableError::OutOfMemory);
                }
            }
        }
        Ok(v)
    }

    fn map_range(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        len: u64,
        prot: Prot,
        how: Leaves,
    ) -> Result<(), PgTableError> {
        let a = prot.access();
        if !a.contains(Access::READ) && !a.contains(Access::WRITE) {
            return Err(PgTableError::NoAccess);
        }
        let end = self.check_input(iova, len)?;
        if paddr.0.checked_add(len).is_none_or(|pe| pe > 1 << OAS) {
            return Err(PgTableError::PaddrOutOfRange);
        }
        let delta = paddr.0.wrapping_sub(iova.0);
        let root = self.tbl(self.root.pa.0);
        let need = self
            .check_map(root, self.levels, iova.0, end, delta, how)
            .map_err(|a| PgTableError::AlreadyMapped(Iova(a)))?;
        let mut stash = self.reserve(need)?;
        self.do_map(root, self.levels, iova.0, end, MapReq { delta, how, prot }, &mut stash);
        debug_assert!(stash.is_empty());
        Ok(())
    }

    /// Table pages splitting the level-`level` leaf at `es` around `[s, e)`
    /// (inside the leaf, not all of it) needs: one, plus the splits of the
    /// at most two child entries that `s` and `e` fall strictly inside.
    fn split_tables(level: u8, es: u64, s: u64, e: u64) -> usize {
        let cspan = 1u64 << level_shift(level - 1);
        let (lo, hi) = (s.max(es), e.min(es.wrapping_add(1u64 << level_shift(level))));
        let first = (lo % cspan != 0).then_some(lo & !(cspan - 1));
        let last = (hi % cspan != 0).then_some(hi & !(cspan - 1)).filter(|&c| Some(c) != first);
        1 + first.into_iter().chain(last).map(|c| Self::split_tables(level - 1, c, lo, hi)).sum::<usize>()
    }

    fn check_unmap(&self, tbl: Tbl, level: u8, s: u64, e: u64) -> Result<usize, u64> {
        let span = 1u64 << level_shift(level);
        let mut need = 0;
        let mut missing = None;
        Self::entries(level, s, e, |i, es, ps, pe| {
            if missing.is_some() {
                return;
            }
            match decode(tbl.get(i), level) {
                Decoded::Table { table, level: l } if l == level - 1 => {
                    match self.check_unmap(self.tbl(table), l, ps, pe) {
                        Ok(n) => need += n,
                        Err(a) => missing = Some(a),
                    }
                }
                Decoded::Page { shift, .. } if shift == level_shift(level) => {
                    if ps != es || pe != es.wrapping_add(span) {
                        need += Self::split_tables(level, es, ps, pe);
                    }
                }
                _ => missing = Some(ps),
            }
        });
        missing.map_or(Ok(need), Err)
    }

    /// Fills the fresh level-`level` table `t` covering `[base, base + span)`
    /// with leaves for output `pa` onwards carrying `attrs`, except `[s, e)`.
    fn build_split(&self, t: Tbl, level: u8, base: u64, pa: u64, hole: Hole, stash: &mut Vec<TablePage>) {
        let Hole { attrs, s, e } = hole;
        let span = 1u64 << level_shift(level);
        for i in 0..ENTRIES {
            let cs = base + i as u64 * span;
            let ce = cs + span;
            let out = pa + i as u64 * span;
            let v = if ce <= s || cs >= e {
                PR | (out & ADDR_MASK) | attrs
            } else if s <= cs && ce <= e {
                0
            } else {
                let page = stash.pop().expect("check_unmap counted the tables");
                let child = Tbl(page.va.cast());
                self.build_split(child, level - 1, cs, out, hole, stash);
                self.alloc.sync_for_walker(page.va, TABLE_SIZE);
                entry::pde(page.pa.0, level - 1)
            };
            t.set(i, v);
        }
    }

    fn do_unmap(
        &mut self,
        tbl: Tbl,
        level: u8,
        s: u64,
        e: u64,
        g: &mut IotlbGather,
        stash: &mut Vec<TablePage>,
    ) {
        let span = 1u64 << level_shift(level);
        let mut a = s;
        while a < e {
            let es = a & !(span - 1);
            let ee = es.wrapping_add(span);
            let pe = ee.min(e);
            let i = index(a, level);
            let d = tbl.get(i);
            match decode(d, level) {
                Decoded::Table { table, .. } => {
                    let child = self.tbl(table);
                    self.do_unmap(child, level - 1, a, pe, g, stash);
                    if child.is_empty() {
                        tbl.set(i, 0);
                        self.alloc.sync_for_walker(tbl.ptr(i), 8);
                        g.push_freed(PhysAddr(table));
                        g.set_tables_removed();
                    }
                }
                Decoded::Page { .. } if a == es && pe == ee => {
                    tbl.set(i, 0);
                    self.alloc.sync_for_walker(tbl.ptr(i), 8);
                    g.add_range(es, ee, span);
                }
                Decoded::Page { addr, .. } => {
                    let page = stash.pop().expect("check_unmap counted the tables");
                    let child = Tbl(page.va.cast());
                    let hole = Hole { attrs: d & (IR | IW | FC | U), s: a, e: pe };
                    self.build_split(child, level - 1, es, addr, hole, stash);
                    self.alloc.sync_for_walker(page.va, TABLE_SIZE);
                    self.alloc.publish_barrier();
                    tbl.set(i, entry::pde(page.pa.0, level - 1));
                    self.alloc.sync_for_walker(tbl.ptr(i), 8);
                    g.add_range(es, ee, span);
                }
                _ => unreachable!("check_unmap let a hole through"),
            }
            a = pe;
        }
    }

    /// Counts tables, leaves and mapped bytes.
    pub fn stats(&self) -> AmdTableStats {
        let mut s = AmdTableStats::default();
        self.stats_of(self.tbl(self.root.pa.0), self.levels, true, &mut s);
        s
    }

    fn stats_of(&self, t: Tbl, level: u8, root: bool, s: &mut AmdTableStats) {
        s.tables += 1;
        if !root && t.is_empty() {
            s.empty_tables += 1;
        }
        for i in 0..ENTRIES {
            match decode(t.get(i), level) {
                Decoded::Table { table, level: l } => self.stats_of(self.tbl(table), l, false, s),
                Decoded::Page { shift, .. } => {
                    s.leaves[usize::from(level)] += 1;
                    s.mapped_bytes += 1 << shift;
                }
                _ => {}
            }
        }
    }

    fn free_tree(&mut self, pa: u64, level: u8) {
        let t = self.tbl(pa);
        for i in 0..ENTRIES {
            if let Decoded::Table { table, level: l } = decode(t.get(i), level) {
                self.free_tree(table, l);
            }
        }
        let page = TablePage { pa: PhysAddr(pa), va: self.alloc.phys_to_virt(PhysAddr(pa)) };
        // SAFETY: A table of this tree, freed once; the table is being
        // dropped, so its owner has detached it from every device.
        unsafe { self.alloc.free_table(page, TABLE_SIZE) };
    }
}

impl<A: PageAllocator> Drop for AmdTable<A> {
    fn drop(&mut self) {
        self.free_tree(self.root.pa.0, self.levels);
    }
}

impl<A: PageAllocator> IoPageTable for AmdTable<A> {
    fn page_sizes(&self) -> u64 {
        (1..=self.levels.min(MAX_LEAF_LEVEL)).fold(0, |m, l| m | 1 << level_shift(l))
    }

    fn ias(&self) -> u32 {
        (12 + 9 * u32::from(self.levels)).min(64)
    }

    fn oas(&self) -> u32 {
        OAS
    }

    fn map_pages(
        &mut self,
        iova: Iova,
        paddr: PhysAddr,
        pgsize: u64,
        pgcount: usize,
        prot: Prot,
    ) -> Result<(), PgTableError> {
        if pgcount == 0 {
            return Err(PgTableError::SizeZero);
        }
        let level = self.leaf_level(pgsize)?;
        if iova.0 % pgsize != 0 {
            return Err(PgTableError::UnalignedIova(iova));
        }
        if paddr.0 % pgsize != 0 {
            return Err(PgTableError::UnalignedPaddr(paddr.0));
        }
        let len = pgsize.checked_mul(pgcount as u64).ok_or(PgTableError::IovaOutOfRange)?;
        self.map_range(iova, paddr, len, prot, Leaves::At(level))
    }

    fn map(&mut self, iova: Iova, paddr: PhysAddr, len: u64, prot: Prot) -> Result<(), PgTableError> {
        if len == 0 {
            return Err(PgTableError::SizeZero);
        }
        let min = TABLE_SIZE as u64;
        if iova.0 % min != 0 {
            return Err(PgTableError::UnalignedIova(iova));
        }
        if paddr.0 % min != 0 {
            return Err(PgTableError::UnalignedPaddr(paddr.0));
        }
        if len % min != 0 {
            return Err(PgTableError::UnalignedSize);
        }
        self.map_range(iova, paddr, len, prot, Leaves::Largest)
    }

    fn unmap_pages(
        &mut self,
        iova: Iova,
        pgsize: u64,
        pgcount: usize,
        gather: &mut IotlbGather,
    ) -> Result<(), PgTableError> {
        if pgcount == 0 {
            return Err(PgTableError::SizeZero);
        }
        self.leaf_level(pgsize)?;
        if iova.0 % pgsize != 0 {
            return Err(PgTableError::UnalignedIova(iova));
        }
        let len = pgsize.checked_mul(pgcount as u64).ok_or(PgTableError::IovaOutOfRange)?;
        let end = self.check_input(iova, len)?;
        if !gather.owned_by(self.root.pa) {
            return Err(PgTableError::ForeignGather);
        }
        let root = self.tbl(self.root.pa.0);
        let need =
            self.check_unmap(root, self.levels, iova.0, end).map_err(|a| PgTableError::NotMapped(Iova(a)))?;
        let mut stash = self.reserve(need)?;
        gather.claim(self.root.pa)?;
        self.do_unmap(root, self.levels, iova.0, end, gather, &mut stash);
        debug_assert!(stash.is_empty());
        Ok(())
    }

    fn complete(&mut self, gather: &mut IotlbGather) -> Result<(), PgTableError> {
        if !gather.owned_by(self.root.pa) {
            return Err(PgTableError::ForeignGather);
        }
        for &pa in gather.freed() {
            let page = TablePage { pa, va: self.alloc.phys_to_virt(pa) };
            // SAFETY: Unlinked by an unmap of this table and, per this
            // method's contract, no longer walked (invalidation completed).
            unsafe { self.alloc.free_table(page, TABLE_SIZE) };
        }
        gather.reset();
        Ok(())
    }

    fn lookup(&self, iova: Iova) -> Option<Translation> {
        if self.limit().is_some_and(|l| iova.0 >= l) {
            return None;
        }
        let (mut pa, mut level) = (self.root.pa.0, self.levels);
        let mut perm = IR | IW;
        loop {
            let d = self.tbl(pa).get(index(iova.0, level));
            match decode(d, level) {
                Decoded::Table { table, level: l } => {
                    if !entry::skip_ok(iova.0, level, l) {
                        return None;
                    }
                    perm &= d;
                    pa = table;
                    level = l;
                }
                Decoded::Page { addr, shift } => {
                    perm &= d;
                    let access = Access::NONE
                        .union(if perm & IR != 0 { Access::READ } else { Access::NONE })
                        .union(if perm & IW != 0 { Access::WRITE } else { Access::NONE });
                    let mem = if d & FC != 0 { MemType::WriteBack } else { MemType::NonCacheable };
                    let size = 1u64 << shift;
                    return Some(Translation {
                        paddr: PhysAddr(addr | (iova.0 & (size - 1))),
                        size,
                        prot: Prot::new(access, mem),
                    });
                }
                Decoded::NotPresent | Decoded::Invalid => return None,
            }
        }
    }
}
