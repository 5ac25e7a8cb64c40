//! Mapping. A map whose leaves all fall into one table (single pages, runs
//! of pages, one block) checks the entries and fills them in one pass; if
//! tables on the way are missing, they are built completely while unlinked
//! and then linked with one store. Anything else takes three steps: a
//! read-only planning walk that finds overlaps and counts the tables to
//! create, allocation of all of them up front, and an infallible commit walk
//! (each new table written in full before it is linked). A failed map
//! therefore has written nothing the walker could have seen.

use super::desc::{leaf_type, TABLE_OR_PAGE, VALID};
use super::table::{kind, Kind, LeafCache, Stash, Tbl};
use super::{Format, Vmsav8Table};
use crate::addr::Iova;
use crate::pgtable::{PageAllocator, PgTableError};

/// Which leaf sizes a map uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Policy {
    /// Leaves at exactly this level.
    Fixed(u8),
    /// The largest leaf the alignment of input and output allows.
    Largest,
}

/// A piece of the range being mapped: `[va, end)` to `pa` onwards.
#[derive(Clone, Copy, Debug)]
struct Run {
    va: u64,
    end: u64,
    pa: u64,
}

impl<F: Format, A: PageAllocator> Vmsav8Table<F, A> {
    /// Maps `[iova, iova + len)` to `pa` onwards with leaf attributes
    /// `attrs`. The caller has validated alignment and ranges.
    #[inline(always)]
    pub(super) fn map_range(
        &mut self,
        iova: u64,
        pa: u64,
        len: u64,
        attrs: u64,
        policy: Policy,
    ) -> Result<(), PgTableError> {
        let policy = match policy {
            Policy::Largest => self.uniform_level(iova, pa, len),
            p => p,
        };
        if let Policy::Fixed(level) = policy {
            let idx = self.geom.index(level, iova);
            let n = (len >> self.geom.shift(level)) as usize;
            if n <= self.geom.entries(level) - idx {
                let tbl = match self.find_table(iova, level) {
                    Ok(tbl) => tbl,
                    Err((tbl, at)) => {
                        let run = Run { va: iova, end: iova + len, pa };
                        return self.map_new_tables(tbl, at, level, run, attrs);
                    }
                };
                {
                    if n == 1 {
                        if tbl.get(idx) != 0 {
                            return Err(PgTableError::AlreadyMapped(Iova(iova)));
                        }
                        tbl.set(idx, attrs | leaf_type(level) | self.geom.encode_oa(pa));
                        self.sync(tbl, idx..idx + 1);
                        return Ok(());
                    }
                    check_free(tbl, idx, n, iova, self.geom.size(level))?;
                    self.fill_leaves(tbl, idx, n, pa, level, attrs);
                    return Ok(());
                }
            }
        }
        self.map_slow(Run { va: iova, end: iova + len, pa }, attrs, policy)
    }

    /// `Fixed(level)` if `Largest` would map the whole range with leaves of
    /// one level (then the fast paths apply), else `Largest`.
    #[inline]
    fn uniform_level(&self, iova: u64, pa: u64, len: u64) -> Policy {
        // The largest block that fits anywhere in the range decides: if it
        // does not tile the whole range, sizes will be mixed.
        for level in self.geom.block_from..3 {
            let bs = self.geom.size(level);
            let first = (iova + bs - 1) & !(bs - 1);
            if (iova ^ pa) & (bs - 1) == 0 && first + bs <= iova + len {
                return if (iova | len) & (bs - 1) == 0 { Policy::Fixed(level) } else { Policy::Largest };
            }
        }
        Policy::Fixed(3)
    }

    /// The table at `level` whose entries cover `iova`; or, if a table on
    /// the way is missing, the deepest table reached and its level.
    #[inline(always)]
    fn find_table(&mut self, iova: u64, level: u8) -> Result<Tbl, (Tbl, u8)> {
        if level == self.geom.start {
            return Ok(self.root_tbl());
        }
        if let Some(t) = self.cache.covers(level, iova) {
            return Ok(t);
        }
        let mut tbl = self.root_tbl();
        let mut l = self.geom.start;
        while l < level {
            let d = tbl.get(self.geom.index(l, iova));
            // Levels above `level` < 3: bits[1:0] = 0b11 is a table.
            if d & (VALID | TABLE_OR_PAGE) != VALID | TABLE_OR_PAGE {
                return Err((tbl, l));
            }
            l += 1;
            tbl = self.table_at(d, l);
        }
        self.cache = LeafCache::at(&self.geom, level, iova, tbl);
        Ok(tbl)
    }

    /// Maps `run`, which fits in one table at `level`, below `tbl` (at level
    /// `at`) whose entry for it is not a table: builds the missing tables
    /// completely while unlinked, then links them with one store.
    #[inline(never)]
    fn map_new_tables(
        &mut self,
        tbl: Tbl,
        at: u8,
        level: u8,
        run: Run,
        attrs: u64,
    ) -> Result<(), PgTableError> {
        let idx = self.geom.index(at, run.va);
        if tbl.get(idx) != 0 {
            // A block or a block being split covers the start of the run.
            return Err(PgTableError::AlreadyMapped(Iova(run.va)));
        }
        let mut stash = self.reserve((level - at) as usize)?;
        let mut take = || {
            let page = stash.pop().expect("reserved above");
            // SAFETY: A reserved granule-sized table, not linked yet, from
            // now on owned by this tree. Every entry is written below.
            (page.pa, unsafe { Tbl::new(page.va, 1 << self.geom.bpl) })
        };
        let (mut below, leaf) = take();
        self.init_leaf_table(leaf, level, run, attrs);
        for l in (at + 1..level).rev() {
            let (pa, t) = take();
            t.zero_unlinked(0, t.len());
            t.set(self.geom.index(l, run.va), self.table_desc(below));
            self.sync(t, 0..t.len());
            below = pa;
        }
        // The new tables' contents must be visible before the link.
        self.alloc.publish_barrier();
        tbl.set(idx, self.table_desc(below));
        self.sync(tbl, idx..idx + 1);
        self.cache = LeafCache::at(&self.geom, level, run.va, leaf);
        Ok(())
    }

    /// Writes `n` leaves at `level` from entry `idx`, mapping `pa` onwards.
    #[inline(always)]
    fn fill_leaves(&self, tbl: Tbl, idx: usize, n: usize, pa: u64, level: u8, attrs: u64) {
        let size = self.geom.size(level);
        let base = attrs | leaf_type(level);
        if self.geom.fold_oa {
            let g = self.geom;
            tbl.fill(idx, n, |k| base | g.encode_oa(pa + k * size));
        } else {
            // The address field is contiguous: step the descriptor itself.
            let first = base | pa;
            tbl.fill(idx, n, |k| first + k * size);
        }
        self.sync(tbl, idx..idx + n);
    }

    fn leaves_here(level: u8, policy: Policy) -> bool {
        match policy {
            Policy::Fixed(l) => level == l,
            Policy::Largest => level == 3,
        }
    }

    /// Whether `Largest` puts a block at `level` for `[va, next)` to `pa`.
    #[inline]
    fn block_fits(&self, level: u8, va: u64, next: u64, pa: u64) -> bool {
        let size = self.geom.size(level);
        level < 3 && self.geom.leaf_allowed(level) && next - va == size && (va | pa) & (size - 1) == 0
    }

    #[inline(never)]
    fn map_slow(&mut self, run: Run, attrs: u64, policy: Policy) -> Result<(), PgTableError> {
        let root = self.root_tbl();
        let needed = self.plan_map(Some(root), self.geom.start, run, policy)?;
        let mut stash = self.reserve(needed)?;
        self.commit_map(root, self.geom.start, run, attrs, policy, &mut stash);
        debug_assert!(stash.is_empty());
        Ok(())
    }

    /// Checks that nothing in `run` is mapped and counts the tables the
    /// commit will create. `tbl` is `None` below a missing table.
    fn plan_map(&self, tbl: Option<Tbl>, level: u8, run: Run, policy: Policy) -> Result<usize, PgTableError> {
        let size = self.geom.size(level);
        if Self::leaves_here(level, policy) {
            if let Some(t) = tbl {
                let n = ((run.end - run.va) >> self.geom.shift(level)) as usize;
                check_free(t, self.geom.index(level, run.va), n, run.va, size)?;
            }
            return Ok(0);
        }
        let mut needed = 0;
        let mut va = run.va;
        while va < run.end {
            let next = ((va | (size - 1)) + 1).min(run.end);
            let pa = run.pa + (va - run.va);
            let d = tbl.map_or(0, |t| t.get(self.geom.index(level, va)));
            if policy == Policy::Largest && self.block_fits(level, va, next, pa) {
                if d != 0 {
                    return Err(PgTableError::AlreadyMapped(Iova(va)));
                }
            } else {
                let sub = Run { va, end: next, pa };
                needed += match kind(d, level) {
                    Kind::Empty => 1 + self.plan_map(None, level + 1, sub, policy)?,
                    Kind::Table => {
                        self.plan_map(Some(self.table_at(d, level + 1)), level + 1, sub, policy)?
                    }
                    Kind::Leaf | Kind::Pending => return Err(PgTableError::AlreadyMapped(Iova(va))),
                };
            }
            va = next;
        }
        Ok(needed)
    }

    /// Maps `run` below `tbl` (at `level`), taking new tables from `stash`.
    /// Cannot fail: `plan_map` found no overlap and reserved the tables.
    fn commit_map(&mut self, tbl: Tbl, level: u8, run: Run, attrs: u64, policy: Policy, stash: &mut Stash) {
        if Self::leaves_here(level, policy) {
            let n = ((run.end - run.va) >> self.geom.shift(level)) as usize;
            self.fill_leaves(tbl, self.geom.index(level, run.va), n, run.pa, level, attrs);
            return;
        }
        let size = self.geom.size(level);
        let mut va = run.va;
        while va < run.end {
            let next = ((va | (size - 1)) + 1).min(run.end);
            let pa = run.pa + (va - run.va);
            let idx = self.geom.index(level, va);
            if policy == Policy::Largest && self.block_fits(level, va, next, pa) {
                self.fill_leaves(tbl, idx, 1, pa, level, attrs);
            } else {
                let d = tbl.get(idx);
                let sub_run = Run { va, end: next, pa };
                if d != 0 {
                    self.commit_map(self.table_at(d, level + 1), level + 1, sub_run, attrs, policy, stash);
                } else {
                    let page = stash.pop().expect("map planned fewer tables than it needs");
                    // SAFETY: A reserved granule-sized table, not linked yet,
                    // from now on owned by this tree.
                    let sub = unsafe { Tbl::new(page.va, 1 << self.geom.bpl) };
                    let leaf_table = Self::leaves_here(level + 1, policy);
                    if leaf_table {
                        // Written completely (leaves and zeros) before the
                        // walker can reach it: one pass over the memory.
                        self.init_leaf_table(sub, level + 1, sub_run, attrs);
                    } else {
                        sub.zero_unlinked(0, sub.len());
                        self.sync(sub, 0..sub.len());
                    }
                    // The table's contents must be visible before the link.
                    self.alloc.publish_barrier();
                    tbl.set(idx, self.table_desc(page.pa));
                    self.sync(tbl, idx..idx + 1);
                    if !leaf_table {
                        self.commit_map(sub, level + 1, sub_run, attrs, policy, stash);
                    }
                }
            }
            va = next;
        }
    }

    /// Writes every entry of the unlinked table `t` at `level`: leaves for
    /// `run`, zeros elsewhere.
    fn init_leaf_table(&self, t: Tbl, level: u8, run: Run, attrs: u64) {
        let i0 = self.geom.index(level, run.va);
        let n = ((run.end - run.va) >> self.geom.shift(level)) as usize;
        let size = self.geom.size(level);
        let base = attrs | leaf_type(level);
        // Few leaves: one clear of the whole page is cheaper than two partial
        // ones; many: write each entry once.
        let sparse = n < t.len() / 2;
        if sparse {
            t.zero_unlinked(0, t.len());
        } else {
            t.zero_unlinked(0, i0);
            t.zero_unlinked(i0 + n, t.len() - i0 - n);
        }
        if self.geom.fold_oa {
            let g = self.geom;
            t.fill_unlinked(i0, n, |k| base | g.encode_oa(run.pa + k * size));
        } else {
            let first = base | run.pa;
            t.fill_unlinked(i0, n, |k| first + k * size);
        }
        self.sync(t, 0..t.len());
    }
}

/// `Ok` if entries `idx..idx + n` are all invalid and free (no pending
/// split either), otherwise the address of the first one that is not.
#[inline(always)]
fn check_free(tbl: Tbl, idx: usize, n: usize, va: u64, size: u64) -> Result<(), PgTableError> {
    let any = tbl.view(idx..idx + n, |s| s.iter().fold(0, |acc, &d| acc | d));
    if any == 0 {
        return Ok(());
    }
    let k = tbl.view(idx..idx + n, |s| s.iter().position(|&d| d != 0)).unwrap_or(0);
    Err(PgTableError::AlreadyMapped(Iova(va + k as u64 * size)))
}
