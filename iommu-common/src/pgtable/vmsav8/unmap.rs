//! Unmapping, splitting and completion.
//!
//! Like mapping, an unmap is all-or-nothing: an unmap inside one table whose
//! entries are all leaves of the right size is checked and cleared in one
//! pass; anything else is planned first (every byte mapped? how many tables
//! do block splits need?), then the split tables are allocated, then the
//! commit walk runs and cannot fail.
//!
//! # Block splits and break-before-make
//!
//! Unmapping part of a block replaces it with a table that maps everything
//! else in the block exactly as before (same output addresses and
//! attributes), nested when the hole is smaller than the next level's block.
//! That table is built and filled while no walker can see it. Changing a
//! block into a table is a change of block size, which the architecture only
//! allows through break-before-make (unless the SMMU implements BBML2), so
//! with [`SplitPolicy::BreakBeforeMake`] the block entry is written invalid
//! (break) and the whole block range goes into the gather, and the table is
//! linked in by `complete` once the caller's invalidation has finished
//! (make). The invalid entry keeps the table's address with a software bit
//! ([`SW_PENDING`]): hardware ignores invalid entries, the software walker
//! treats it as a table for unmaps and as occupied for maps.
//!
//! [`SplitPolicy::BreakBeforeMake`]: super::SplitPolicy::BreakBeforeMake

use super::desc::{leaf_type, LEAF_ATTR_MASK, SW_PENDING, TABLE_OR_PAGE, VALID};
use super::table::{kind, Kind, LeafCache, Stash, Tbl};
use super::{Format, SplitPolicy, Vmsav8Table};
use crate::addr::{Iova, PhysAddr};
use crate::pgtable::{IotlbGather, PageAllocator, PgTableError};

/// The input range `[va, end)` being unmapped below some entry.
#[derive(Clone, Copy, Debug)]
struct Run {
    va: u64,
    end: u64,
}

/// Where a commit walk puts its results and takes its tables from.
struct Cx<'a> {
    gather: &'a mut IotlbGather,
    stash: Stash,
}

impl<F: Format, A: PageAllocator> Vmsav8Table<F, A> {
    /// Unmaps `[iova, end)`; the caller has validated alignment and range.
    #[inline(always)]
    pub(super) fn unmap_range(
        &mut self,
        iova: u64,
        end: u64,
        gather: &mut IotlbGather,
    ) -> Result<(), PgTableError> {
        if let Some(r) = self.unmap_cached(iova, end, gather) {
            return r;
        }
        if self.unmap_in_one_table(iova, end, gather)? {
            return Ok(());
        }
        let run = Run { va: iova, end };
        let stash = self.unmap_slow(run)?;
        let mut cx = Cx { gather, stash };
        let root = self.root_tbl();
        self.commit_unmap(root, self.geom.start, run, true, &mut cx);
        debug_assert!(cx.stash.is_empty());
        Ok(())
    }

    /// The fastest path: leaves in the table a previous map or unmap reached
    /// (which is on the path of every address it covers). `None` when it
    /// does not apply.
    #[inline(always)]
    fn unmap_cached(
        &mut self,
        iova: u64,
        end: u64,
        gather: &mut IotlbGather,
    ) -> Option<Result<(), PgTableError>> {
        let level = self.cache.level;
        let tbl = self.cache.covers(level, iova)?;
        let shift = self.geom.shift(level);
        if (iova | end) & ((1 << shift) - 1) != 0 {
            return None;
        }
        let idx = self.geom.index(level, iova);
        let n = ((end - iova) >> shift) as usize;
        if n > tbl.len() - idx {
            return None;
        }
        let want = leaf_type(level);
        let odd = if n == 1 {
            (tbl.get(idx) & (VALID | TABLE_OR_PAGE) != want).then_some(0)
        } else {
            tbl.view(idx..idx + n, |s| s.iter().position(|&d| d & (VALID | TABLE_OR_PAGE) != want))
        };
        if let Some(k) = odd {
            // A hole is an error; a table or pending split needs the full path.
            return (tbl.get(idx + k) == 0)
                .then(|| Err(PgTableError::NotMapped(Iova(iova + ((k as u64) << shift)))));
        }
        tbl.fill(idx, n, |_| 0);
        self.sync(tbl, idx..idx + n);
        gather.add_range(iova, end, 1 << shift);
        if tbl.empty_outside(idx, idx + n) {
            let (path, leaf_level) = self.path_to_leaf(iova);
            debug_assert_eq!(leaf_level, level);
            self.prune(&path, level, iova, idx..idx + n, gather, true);
        }
        Some(Ok(()))
    }

    /// The tables from the root down to the one holding the leaf (or empty
    /// entry) for `iova`, and that table's level.
    #[inline(always)]
    fn path_to_leaf(&self, iova: u64) -> ([Tbl; 4], u8) {
        let mut path = [self.root_tbl(); 4];
        let mut level = self.geom.start;
        loop {
            let d = path[level as usize].get(self.geom.index(level, iova));
            if kind(d, level) != Kind::Table {
                return (path, level);
            }
            path[level as usize + 1] = self.table_at(d, level + 1);
            level += 1;
        }
    }

    /// Unlinks the tables on `path` that are empty once entries `lo..hi` of
    /// the one at `level` were cleared, bottom up. `known_empty`: the caller
    /// already found the one at `level` empty.
    fn prune(
        &mut self,
        path: &[Tbl; 4],
        mut level: u8,
        iova: u64,
        cleared: core::ops::Range<usize>,
        gather: &mut IotlbGather,
        mut known_empty: bool,
    ) {
        let (mut lo, mut hi) = (cleared.start, cleared.end);
        while level > self.geom.start && (known_empty || path[level as usize].empty_outside(lo, hi)) {
            known_empty = false;
            let parent = path[level as usize - 1];
            let pidx = self.geom.index(level - 1, iova);
            let pd = parent.get(pidx);
            parent.set(pidx, 0);
            self.sync(parent, pidx..pidx + 1);
            gather.push_freed(PhysAddr(self.geom.decode_oa(pd)));
            gather.set_tables_removed();
            self.cache.tbl = None;
            level -= 1;
            (lo, hi) = (pidx, pidx + 1);
        }
    }

    /// The fast path: `[iova, end)` is covered by whole leaves of one size in
    /// one table. Returns `Ok(false)` when the general path is needed.
    #[inline]
    fn unmap_in_one_table(
        &mut self,
        iova: u64,
        end: u64,
        gather: &mut IotlbGather,
    ) -> Result<bool, PgTableError> {
        let (path, level) = self.path_to_leaf(iova);
        let tbl = path[level as usize];
        let d = tbl.get(self.geom.index(level, iova));
        match kind(d, level) {
            Kind::Leaf => {}
            Kind::Empty => return Err(PgTableError::NotMapped(Iova(iova))),
            Kind::Pending | Kind::Table => return Ok(false),
        }
        if level > self.geom.start {
            self.cache = LeafCache::at(&self.geom, level, iova, tbl);
        }
        let size = self.geom.size(level);
        if (iova | end) & (size - 1) != 0 {
            return Ok(false);
        }
        let idx = self.geom.index(level, iova);
        let n = ((end - iova) >> self.geom.shift(level)) as usize;
        if n > tbl.len() - idx {
            return Ok(false);
        }
        let want = leaf_type(level);
        let odd = tbl.view(idx..idx + n, |s| s.iter().position(|&d| d & (VALID | TABLE_OR_PAGE) != want));
        if let Some(k) = odd {
            return if tbl.get(idx + k) == 0 {
                Err(PgTableError::NotMapped(Iova(iova + k as u64 * size)))
            } else {
                Ok(false)
            };
        }
        tbl.fill(idx, n, |_| 0);
        self.sync(tbl, idx..idx + n);
        gather.add_range(iova, end, size);
        self.prune(&path, level, iova, idx..idx + n, gather, false);
        Ok(true)
    }

    /// Plans a general unmap and reserves the split tables it needs.
    #[inline(never)]
    fn unmap_slow(&mut self, run: Run) -> Result<Stash, PgTableError> {
        let needed = self.plan_unmap(self.root_tbl(), self.geom.start, run)?;
        let stash = self.reserve(needed)?;
        self.cache.tbl = None;
        Ok(stash)
    }

    /// Checks that every byte of `run` is mapped below `tbl` (at `level`)
    /// and counts the tables block splits will need.
    fn plan_unmap(&self, tbl: Tbl, level: u8, run: Run) -> Result<usize, PgTableError> {
        let size = self.geom.size(level);
        if level == 3 {
            let idx = self.geom.index(3, run.va);
            let n = ((run.end - run.va) >> self.geom.shift(3)) as usize;
            let page = VALID | TABLE_OR_PAGE;
            let all = tbl.view(idx..idx + n, |s| s.iter().fold(page, |acc, &d| acc & d));
            if all & page != page {
                let k = tbl.view(idx..idx + n, |s| s.iter().position(|&d| d & page != page));
                let k = k.unwrap_or(0) as u64;
                return Err(PgTableError::NotMapped(Iova(run.va + k * size)));
            }
            return Ok(0);
        }
        let mut needed = 0;
        let mut va = run.va;
        while va < run.end {
            let next = ((va | (size - 1)) + 1).min(run.end);
            let d = tbl.get(self.geom.index(level, va));
            match kind(d, level) {
                Kind::Empty => return Err(PgTableError::NotMapped(Iova(va))),
                Kind::Table | Kind::Pending => {
                    needed +=
                        self.plan_unmap(self.table_at(d, level + 1), level + 1, Run { va, end: next })?;
                }
                Kind::Leaf => {
                    if next - va != size {
                        needed += self.split_tables(level, Run { va, end: next });
                    }
                }
            }
            va = next;
        }
        Ok(needed)
    }

    /// Tables needed to split a block at `level` so that exactly `run` (a
    /// proper part of it) is removed.
    fn split_tables(&self, level: u8, run: Run) -> usize {
        let sub = level + 1;
        if sub == 3 {
            return 1;
        }
        let ss = self.geom.size(sub);
        let first = run.va & !(ss - 1);
        let last = (run.end - 1) & !(ss - 1);
        let partial = |r: Run, base: u64| !(r.va == base && r.end == base + ss);
        let mut n = 1;
        if first == last {
            if partial(run, first) {
                n += self.split_tables(sub, run);
            }
        } else {
            if run.va != first {
                n += self.split_tables(sub, Run { va: run.va, end: first + ss });
            }
            if run.end != last + ss {
                n += self.split_tables(sub, Run { va: last, end: run.end });
            }
        }
        n
    }

    /// Unmaps `run` below `tbl` (at `level`); `live` is false inside a split
    /// table no walker can reach yet. Returns whether `tbl` is now empty.
    fn commit_unmap(&mut self, tbl: Tbl, level: u8, run: Run, live: bool, cx: &mut Cx<'_>) -> bool {
        let size = self.geom.size(level);
        let i0 = self.geom.index(level, run.va);
        if level == 3 {
            let n = ((run.end - run.va) >> self.geom.shift(3)) as usize;
            tbl.fill(i0, n, |_| 0);
            self.sync(tbl, i0..i0 + n);
            if live {
                cx.gather.add_range(run.va, run.end, size);
            }
            return tbl.empty_outside(i0, i0 + n);
        }
        let mut va = run.va;
        let mut idx = i0;
        let mut kept = false;
        while va < run.end {
            let next = ((va | (size - 1)) + 1).min(run.end);
            let full = next - va == size;
            let d = tbl.get(idx);
            match kind(d, level) {
                Kind::Empty => {}
                Kind::Leaf if full => {
                    tbl.set(idx, 0);
                    if live {
                        cx.gather.add_range(va, next, size);
                    }
                }
                Kind::Leaf => {
                    self.split_block(tbl, idx, level, Run { va, end: next }, live, cx);
                    kept = true;
                }
                k @ (Kind::Table | Kind::Pending) => {
                    let sub_live = live && k == Kind::Table;
                    let sub = self.table_at(d, level + 1);
                    let sub_pa = PhysAddr(self.geom.decode_oa(d));
                    if full {
                        tbl.set(idx, 0);
                        let sizes = self.gather_subtree(sub, level + 1, sub_pa, cx.gather);
                        if sub_live {
                            cx.gather.add_table_range(va, next, sizes);
                        }
                    } else if self.commit_unmap(sub, level + 1, Run { va, end: next }, sub_live, cx) {
                        tbl.set(idx, 0);
                        cx.gather.push_freed(sub_pa);
                        if sub_live {
                            cx.gather.set_tables_removed();
                        }
                    } else {
                        kept = true;
                    }
                }
            }
            va = next;
            idx += 1;
        }
        self.sync(tbl, i0..idx);
        !kept && tbl.empty_outside(i0, idx)
    }

    /// Replaces the block in entry `idx` of `tbl` (at `level`) by a table
    /// without `run`, following the split policy when `live`.
    fn split_block(&mut self, tbl: Tbl, idx: usize, level: u8, run: Run, live: bool, cx: &mut Cx<'_>) {
        let d = tbl.get(idx);
        let bsize = self.geom.size(level);
        let bstart = run.va & !(bsize - 1);
        let new = self.build_split(d, level, bstart, run, cx);
        let desc = self.table_desc(new);
        // The filled table must be visible before any link to it.
        self.alloc.publish_barrier();
        if !live || self.cfg.split == SplitPolicy::Bbml2 {
            tbl.set(idx, desc);
            if live {
                cx.gather.add_range(run.va, run.end, bsize);
            }
        } else {
            tbl.set(idx, (desc & !VALID) | SW_PENDING);
            cx.gather.add_range(bstart, bstart + bsize, bsize);
            cx.gather.push_pending(Iova(bstart), level);
        }
        self.sync(tbl, idx..idx + 1);
    }

    /// Builds the table at `level + 1` that maps block `d` (at `level`,
    /// starting at input address `bstart`) except `run`. Returns its address.
    fn build_split(&mut self, d: u64, level: u8, bstart: u64, run: Run, cx: &mut Cx<'_>) -> PhysAddr {
        let page = cx.stash.pop().expect("unmap planned fewer split tables than it needs");
        // SAFETY: A reserved granule-sized table, not linked yet, from now on
        // owned by this tree. Every entry is written below.
        let t = unsafe { Tbl::new(page.va, 1 << self.geom.bpl) };
        let sub = level + 1;
        let ss = self.geom.size(sub);
        let shift = self.geom.shift(sub);
        let (attrs, oa, ty, g) = (d & LEAF_ATTR_MASK, self.geom.decode_oa(d), leaf_type(sub), self.geom);
        let leaf = move |k: u64| attrs | ty | g.encode_oa(oa + k * ss);
        let first = ((run.va - bstart) >> shift) as usize;
        let last = ((run.end - 1 - bstart) >> shift) as usize;
        t.fill_unlinked(0, first, leaf);
        t.fill_unlinked(last + 1, t.len() - last - 1, |k| leaf(k + last as u64 + 1));
        for i in first..=last {
            let s = bstart + i as u64 * ss;
            let e = s + ss;
            if run.va <= s && e <= run.end {
                t.set(i, 0);
                continue;
            }
            let part = Run { va: run.va.max(s), end: run.end.min(e) };
            let child = self.build_split(leaf(i as u64), sub, s, part, cx);
            t.set(i, self.table_desc(child));
        }
        self.sync(t, 0..t.len());
        page.pa
    }

    /// Queues `tbl` (at `level`, address `pa`) and every table below it for
    /// freeing; returns the sizes of the leaves it held.
    fn gather_subtree(&self, tbl: Tbl, level: u8, pa: PhysAddr, gather: &mut IotlbGather) -> u64 {
        gather.push_freed(pa);
        if level == 3 {
            return self.geom.size(3);
        }
        let mut sizes = 0;
        for i in 0..tbl.len() {
            let d = tbl.get(i);
            match kind(d, level) {
                Kind::Empty => {}
                Kind::Leaf => sizes |= self.geom.size(level),
                Kind::Table | Kind::Pending => {
                    let sub = self.table_at(d, level + 1);
                    sizes |= self.gather_subtree(sub, level + 1, PhysAddr(self.geom.decode_oa(d)), gather);
                }
            }
        }
        sizes
    }

    /// Links in the split tables `gather` is waiting for (the "make" of
    /// break-before-make). Entries that were unmapped meanwhile are skipped.
    pub(super) fn install_pending(&mut self, gather: &IotlbGather) {
        for &(iova, level) in gather.pending() {
            let mut tbl = self.root_tbl();
            let mut l = self.geom.start;
            while l < level {
                let d = tbl.get(self.geom.index(l, iova.0));
                if kind(d, l) != Kind::Table {
                    break;
                }
                l += 1;
                tbl = self.table_at(d, l);
            }
            let idx = self.geom.index(level, iova.0);
            if l == level && kind(tbl.get(idx), level) == Kind::Pending {
                let d = tbl.get(idx);
                self.alloc.publish_barrier();
                tbl.set(idx, (d & !SW_PENDING) | VALID);
                self.sync(tbl, idx..idx + 1);
            }
        }
    }
}
