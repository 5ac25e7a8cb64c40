//! The range allocator: one IOVA window, size-aligned top-down allocation below
//! a limit, reservations, validated frees; O(log n) worst case throughout.
//!
//! # Design
//!
//! Like Linux's `iova_domain`, the tree holds the *used* ranges (allocations
//! and reservations), ordered by address, plus a zero-sized anchor at the
//! window's end. Each node also owns the free gap just below it, from its
//! predecessor's end (or the window start) up to its own start, so a free
//! merges gaps by deleting one node and an allocation splits one by inserting
//! one.
//!
//! The gap search is made exact and logarithmic by one augmented value per
//! node. A request of `n` pages must start at a multiple of
//! `n.next_power_of_two()`; the set of sizes a gap can serve that way is
//! downward closed (a start aligned for `n` is aligned for every smaller size),
//! so one number describes it: the gap's *capacity*, the largest `n` it can
//! serve. Every node stores its gap's capacity and, for each child, that
//! subtree's height and maximum capacity (kept in the parent, so walks up and
//! down one path never touch the siblings); an AVL tree keeps the height below
//! 1.44 log2(n). Top-down allocation then is one descent from the root
//! towards the last gap whose capacity is at least `n`. Below a limit inside
//! the window:
//!
//! 1. find `s`, the first node at or above the limit (a descent);
//! 2. try the part of `s`'s gap below the limit;
//! 3. otherwise walk up from `s` and take the nearest predecessor whose gap's
//!    capacity is at least `n`, using the subtree maxima to skip subtrees and
//!    to descend into the one that holds it.
//!
//! Each step is one root-to-leaf path, and the updates after an insertion or
//! deletion are one leaf-to-root path, so `alloc`, `free` and `reserve` cost
//! O(log n) in the number of live ranges, whatever the fragmentation. The
//! result is the highest suitable address below the limit: the search is
//! exact, never a heuristic that can report exhaustion while a fitting hole
//! exists.
//!
//! Nodes are one cache line each, in a `Vec` arena addressed by `u32` and
//! recycled through a free list, so a steady alloc/free load does not touch
//! the heap.

use alloc::vec::Vec;
use core::ops::Range;

use super::{DmaLimit, IovaError};
use crate::addr::Iova;

/// No node (slot 0 holds an unused sentinel, so writing a missing child's
/// parent link needs no branch).
const NIL: u32 = 0;

/// The anchor's slot.
const ANCHOR: u32 = 1;

/// What a range in the tree is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeKind {
    /// Handed out by [`RangeAllocator::alloc`]; [`RangeAllocator::free`]
    /// returns it.
    Allocated,
    /// Set aside by [`RangeAllocator::reserve`]; never freed.
    Reserved,
    /// The zero-sized end-of-window marker (internal).
    Anchor,
}

/// A tree node: one cache line.
///
/// A node keeps its children's summaries (height, maximum capacity), not its
/// own: updates walk up one path and the search walks down one, without
/// touching the siblings.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
struct Node {
    /// [`gap_capacity`] of the gap below this range.
    cap: u64,
    /// Maximum `cap` in the left subtree (0 if empty).
    lmax: u64,
    /// Maximum `cap` in the right subtree (0 if empty).
    rmax: u64,
    left: u32,
    right: u32,
    /// Parent, or the next free slot while the slot is on the free list.
    parent: u32,
    /// Height of the left subtree (0 if empty).
    lh: u8,
    /// Height of the right subtree.
    rh: u8,
    kind: RangeKind,
    /// First page of the range.
    lo: u64,
    /// One past the last page.
    hi: u64,
    /// The free gap below this range is `gap_lo..lo`.
    gap_lo: u64,
}

impl Node {
    fn leaf(lo: u64, hi: u64, gap_lo: u64, kind: RangeKind) -> Self {
        Self {
            cap: gap_capacity(gap_lo, lo),
            lmax: 0,
            rmax: 0,
            left: NIL,
            right: NIL,
            parent: NIL,
            lh: 0,
            rh: 0,
            kind,
            lo,
            hi,
            gap_lo,
        }
    }

    fn height(&self) -> u8 {
        1 + self.lh.max(self.rh)
    }

    fn max_cap(&self) -> u64 {
        self.cap.max(self.lmax).max(self.rmax)
    }
}

/// The largest `n` such that `[b, e)` holds `n` pages starting at a multiple of
/// `n.next_power_of_two()`, or 0 if the gap is empty.
///
/// Let `2^m` be the largest aligned power-of-two block inside the gap. Sizes up
/// to `2^m` fit. A size in `(2^m, 2^(m+1)]` needs a `2^(m+1)`-aligned start;
/// the first one at or above `b` leaves `f = e - start` pages, and `f < 2^(m+1)`
/// (otherwise a `2^(m+1)` block would fit). Larger sizes need coarser starts,
/// which leave at most `f`. So the capacity is `max(2^m, f)`.
fn gap_capacity(b: u64, e: u64) -> u64 {
    if e <= b {
        return 0;
    }
    let len = e - b;
    // A gap of length >= 2^k holds an aligned 2^(k-1) block, so at most two
    // orders are tried.
    let mut k = 63 - len.leading_zeros();
    let block = loop {
        let a = 1u64 << k;
        if let Some(x) = align_up(b, a) {
            if x <= e - a {
                break a;
            }
        }
        k -= 1;
    };
    if k < 63 {
        if let Some(x) = align_up(b, 1u64 << (k + 1)) {
            if x < e {
                return block.max(e - x);
            }
        }
    }
    block
}

/// `x` rounded up to a multiple of `a` (a power of two), if representable.
fn align_up(x: u64, a: u64) -> Option<u64> {
    Some(x.checked_add(a - 1)? & !(a - 1))
}

/// The highest start for `n` pages aligned to `align` inside `[b, e)`.
fn fit_top(b: u64, e: u64, n: u64, align: u64) -> Option<u64> {
    let x = e.checked_sub(n)? & !(align - 1);
    (x >= b).then_some(x)
}

/// The address-space manager of one IOVA window (Linux's `iova_domain`
/// without the caches; [`IovaAllocator`](super::IovaAllocator) adds them).
///
/// All sizes are in pages of the granule given at construction. Not
/// synchronized: `&mut self` for changes; the cached allocator wraps it in a
/// lock.
#[derive(Clone, Debug)]
pub struct RangeAllocator {
    nodes: Vec<Node>,
    root: u32,
    free_slot: u32,
    /// First page of the window.
    start: u64,
    /// One past the last page of the window (the anchor's position).
    end: u64,
    shift: u32,
    allocated: usize,
    reserved: usize,
}

impl RangeAllocator {
    /// An allocator for the window `window`, in pages of `granule` bytes (a
    /// power of two; [`DEFAULT_GRANULE`](super::DEFAULT_GRANULE) is 4 KiB).
    ///
    /// Both ends of the window must be granule-aligned and the window not
    /// empty, else [`IovaError::InvalidWindow`]. The window may not include the
    /// last page of the 64-bit space (its end is exclusive).
    pub fn new(window: Range<Iova>, granule: u64) -> Result<Self, IovaError> {
        if !granule.is_power_of_two()
            || window.start >= window.end
            || !window.start.is_aligned(granule)
            || !window.end.is_aligned(granule)
        {
            return Err(IovaError::InvalidWindow);
        }
        let shift = granule.trailing_zeros();
        let start = window.start.raw() >> shift;
        let end = window.end.raw() >> shift;
        let mut nodes = Vec::new();
        nodes.try_reserve(16).map_err(|_| IovaError::NoMemory)?;
        let anchor = Node::leaf(end, end, start, RangeKind::Anchor);
        nodes.push(anchor);
        nodes.push(anchor);
        Ok(Self { nodes, root: ANCHOR, free_slot: NIL, start, end, shift, allocated: 0, reserved: 0 })
    }

    /// The granule in bytes.
    pub fn granule(&self) -> u64 {
        1 << self.shift
    }

    /// log2 of the granule.
    pub fn granule_shift(&self) -> u32 {
        self.shift
    }

    /// The window this allocator manages.
    pub fn window(&self) -> Range<Iova> {
        Iova(self.start << self.shift)..Iova(self.end << self.shift)
    }

    /// Pages in the window.
    pub fn window_pages(&self) -> u64 {
        self.end - self.start
    }

    /// Number of live allocations (reservations not counted).
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    /// Number of reservations.
    pub fn reserved(&self) -> usize {
        self.reserved
    }

    /// Allocates `pages` pages starting at a multiple of
    /// `pages.next_power_of_two()` pages, at the highest such address whose
    /// range ends at or below `limit` (Linux's `alloc_iova(.., size_aligned =
    /// true)`). O(log n).
    pub fn alloc(&mut self, pages: u64, limit: DmaLimit) -> Result<Iova, IovaError> {
        let limit_pfn = self.limit_pfn(limit)?;
        self.alloc_pfn(pages, limit_pfn).map(|pfn| Iova(pfn << self.shift)).map_err(|e| match e {
            IovaError::Exhausted { pages, .. } => IovaError::Exhausted { pages, limit },
            e => e,
        })
    }

    /// Frees the allocation that starts at `iova` and is `pages` pages long.
    /// Anything else (a double free, a reservation, a wrong size, an address
    /// inside an allocation) is [`IovaError::NotAllocated`]. O(log n).
    pub fn free(&mut self, iova: Iova, pages: u64) -> Result<(), IovaError> {
        let not_allocated = IovaError::NotAllocated { iova, pages };
        if !iova.is_aligned(self.granule()) {
            return Err(not_allocated);
        }
        self.free_pfn(iova.raw() >> self.shift, pages).map_err(|_| not_allocated)
    }

    /// Sets `range` aside so it is never allocated (an MSI doorbell window, an
    /// RMRR). The range is widened to whole granules; the part outside the
    /// window is ignored. Overlapping a live allocation or reservation is
    /// [`IovaError::ReserveOverlap`]. O(log n).
    pub fn reserve(&mut self, range: Range<Iova>) -> Result<(), IovaError> {
        if range.start >= range.end {
            return Err(IovaError::ZeroSize);
        }
        let lo = (range.start.raw() >> self.shift).max(self.start);
        let hi = ((range.end.raw() - 1) >> self.shift).saturating_add(1).min(self.end);
        if lo >= hi {
            return Ok(());
        }
        let s = self.lower_bound(hi);
        if self.node(s).gap_lo > lo {
            return Err(IovaError::ReserveOverlap { start: range.start, end: range.end });
        }
        self.insert_in_gap(s, lo, hi, RangeKind::Reserved)?;
        self.reserved += 1;
        Ok(())
    }

    /// The live range containing `iova`, with its kind, if any (Linux's
    /// `find_iova`). O(log n).
    pub fn find(&self, iova: Iova) -> Option<(Range<Iova>, RangeKind)> {
        let pfn = iova.raw() >> self.shift;
        // The last node starting at or below `pfn`.
        let mut cur = self.root;
        let mut best = NIL;
        while cur != NIL {
            let n = self.node(cur);
            if n.lo <= pfn {
                best = cur;
                cur = n.right;
            } else {
                cur = n.left;
            }
        }
        if best == NIL {
            return None;
        }
        let n = self.node(best);
        (pfn < n.hi).then(|| (self.to_range(n.lo, n.hi), n.kind))
    }

    /// The live ranges (allocations and reservations) in address order.
    pub fn ranges(&self) -> impl Iterator<Item = (Range<Iova>, RangeKind)> + '_ {
        let mut cur = self.first();
        core::iter::from_fn(move || {
            let n = self.node(cur);
            if n.kind == RangeKind::Anchor {
                return None;
            }
            let item = (self.to_range(n.lo, n.hi), n.kind);
            cur = self.next(cur);
            Some(item)
        })
    }

    // ---- page-number interface, used by the caches ----

    /// The exclusive end page for `limit`, clipped to the window, or
    /// [`IovaError::LimitBelowWindow`].
    pub(crate) fn limit_pfn(&self, limit: DmaLimit) -> Result<u64, IovaError> {
        let l = limit.end_pfn(self.shift).min(self.end);
        if l <= self.start {
            return Err(IovaError::LimitBelowWindow { limit, window_start: Iova(self.start << self.shift) });
        }
        Ok(l)
    }

    /// [`Self::alloc`] with the limit as an exclusive end page inside the
    /// window. `Exhausted` carries [`DmaLimit::NONE`]; callers fill in theirs.
    pub(crate) fn alloc_pfn(&mut self, pages: u64, limit_pfn: u64) -> Result<u64, IovaError> {
        if pages == 0 {
            return Err(IovaError::ZeroSize);
        }
        let window_pages = self.end - self.start;
        let align = match pages.checked_next_power_of_two() {
            Some(a) if pages <= window_pages => a,
            _ => return Err(IovaError::SizeAboveWindow { pages, window_pages }),
        };
        let Some((s, x)) = self.find_fit(pages, align, limit_pfn) else {
            return Err(IovaError::Exhausted { pages, limit: DmaLimit::NONE });
        };
        self.insert_in_gap(s, x, x + pages, RangeKind::Allocated)?;
        self.allocated += 1;
        Ok(x)
    }

    /// [`Self::free`] by page number.
    pub(crate) fn free_pfn(&mut self, pfn: u64, pages: u64) -> Result<(), IovaError> {
        let v = self.find_exact(pfn);
        let not_allocated = IovaError::NotAllocated { iova: Iova(pfn << self.shift), pages };
        if v == NIL {
            return Err(not_allocated);
        }
        let n = *self.node(v);
        if n.kind != RangeKind::Allocated || n.hi - n.lo != pages {
            return Err(not_allocated);
        }
        self.remove(v);
        self.release_slot(v);
        self.allocated -= 1;
        Ok(())
    }

    // ---- the search ----

    /// The node whose gap receives `n` pages aligned to `align` below
    /// `limit` (exclusive page), and the start: the highest possible one.
    fn find_fit(&self, n: u64, align: u64, limit: u64) -> Option<(u32, u64)> {
        let fit = |v: u32| (v, (self.node(v).lo - n) & !(align - 1));
        if limit == self.end {
            // No limit inside the window (the common case): every gap is
            // whole, one descent finds the last that serves `n`.
            return self.rightmost_with_cap(self.root, n).map(fit);
        }
        // 1. The first node at or above the limit; the anchor is at `end`, and
        //    `limit <= end`, so one exists. When everything else ends below
        //    the limit (a 32-bit device in a window used only by such), it is
        //    the anchor, and the descent is skipped.
        let s = if self.node(ANCHOR).gap_lo <= limit { ANCHOR } else { self.lower_bound(limit) };
        let sn = self.node(s);
        // 2. Its gap, clipped to the limit.
        if let Some(x) = fit_top(sn.gap_lo, sn.lo.min(limit), n, align) {
            return Some((s, x));
        }
        // 3. The nearest predecessor whose whole gap can serve `n`: first in
        //    `s`'s left subtree, then for each ancestor reached from its right
        //    child, the ancestor itself and then its left subtree.
        if sn.lmax >= n {
            return self.rightmost_with_cap(sn.left, n).map(fit);
        }
        let mut c = s;
        let mut p = sn.parent;
        while p != NIL {
            let pn = self.node(p);
            if pn.right == c {
                if pn.cap >= n {
                    return Some(fit(p));
                }
                if pn.lmax >= n {
                    return self.rightmost_with_cap(pn.left, n).map(fit);
                }
            }
            c = p;
            p = pn.parent;
        }
        None
    }

    /// The last node, in address order, of the subtree at `t` whose gap
    /// capacity is at least `n`.
    fn rightmost_with_cap(&self, t: u32, n: u64) -> Option<u32> {
        if t == NIL || self.node(t).max_cap() < n {
            return None;
        }
        let mut cur = t;
        loop {
            let c = self.node(cur);
            if c.rmax >= n {
                cur = c.right;
            } else if c.cap >= n {
                return Some(cur);
            } else {
                // The maximum is below, on the left.
                cur = c.left;
            }
        }
    }

    /// The first node whose start is at or above `key` (the anchor at the
    /// latest, for `key <= end`).
    fn lower_bound(&self, key: u64) -> u32 {
        let mut cur = self.root;
        let mut best = NIL;
        while cur != NIL {
            let n = self.node(cur);
            if n.lo >= key {
                best = cur;
                cur = n.left;
            } else {
                cur = n.right;
            }
        }
        best
    }

    /// The node of the non-empty range starting at `pfn`, or `NIL`.
    fn find_exact(&self, pfn: u64) -> u32 {
        let mut cur = self.root;
        while cur != NIL {
            let n = self.node(cur);
            if pfn < n.lo {
                cur = n.left;
            } else if pfn > n.lo || n.kind == RangeKind::Anchor {
                cur = n.right;
            } else {
                return cur;
            }
        }
        NIL
    }

    // ---- tree maintenance ----

    /// Puts `[lo, hi)` into the gap of `s` (the caller checked that it lies
    /// inside it).
    fn insert_in_gap(&mut self, s: u32, lo: u64, hi: u64, kind: RangeKind) -> Result<(), IovaError> {
        // Get the slot first: a failure must leave the tree untouched.
        let u = self.take_slot()?;
        let sn = self.node_mut(s);
        let gap_lo = sn.gap_lo;
        sn.gap_lo = hi;
        sn.cap = gap_capacity(hi, sn.lo);
        let l = sn.left;
        let mut un = Node::leaf(lo, hi, gap_lo, kind);
        // Link `u` as the in-order predecessor of `s`, in `s`'s left subtree,
        // so one retrace covers both changes.
        let p = if l == NIL { s } else { self.max_node(l) };
        un.parent = p;
        let summary = (1, un.cap);
        self.nodes[u as usize] = un;
        if p == s {
            self.node_mut(s).left = u;
            self.set_summary(p, true, summary);
        } else {
            self.node_mut(p).right = u;
            self.set_summary(p, false, summary);
        }
        self.retrace_through(p, s);
        Ok(())
    }

    /// Removes `v`; its successor's gap grows over `v` and `v`'s gap.
    fn remove(&mut self, v: u32) {
        let n = *self.node(v);
        // The anchor is last and never removed: `s` exists.
        let s = self.next(v);
        let sn = self.node_mut(s);
        sn.gap_lo = n.gap_lo;
        sn.cap = gap_capacity(n.gap_lo, sn.lo);
        if n.right == NIL || n.left != NIL {
            // `s` is an ancestor of `v` (no right child), or the node that
            // takes `v`'s place (two children): the unlink's retrace passes
            // it.
            self.unlink(v, s);
        } else {
            // Only a right child, which holds `s`: update above `s` first.
            self.retrace_through(s, NIL);
            self.unlink(v, NIL);
        }
    }

    /// Removes `v` from the tree (its slot stays allocated); the retrace
    /// does not stop before it has passed `until` (`NIL`: no such node).
    fn unlink(&mut self, v: u32, until: u32) {
        let n = *self.node(v);
        let p = n.parent;
        if n.left != NIL && n.right != NIL {
            // Move the successor `m` (leftmost of the right subtree, no left
            // child) into `v`'s place. It takes over `v`'s summaries: the
            // retrace fixes the right one on its way up, and the parent's
            // slot still describes `v`, so the retrace sees what changed.
            let m = self.min_node(n.right);
            let start = if m == n.right {
                m
            } else {
                let mn = *self.node(m);
                let mp = mn.parent;
                let mpn = self.node_mut(mp);
                mpn.left = mn.right;
                mpn.lh = mn.rh;
                mpn.lmax = mn.rmax;
                self.node_mut(mn.right).parent = mp;
                let mn = self.node_mut(m);
                mn.right = n.right;
                mn.rh = n.rh;
                mn.rmax = n.rmax;
                self.node_mut(n.right).parent = m;
                mp
            };
            let mn = self.node_mut(m);
            mn.left = n.left;
            mn.lh = n.lh;
            mn.lmax = n.lmax;
            mn.parent = p;
            self.node_mut(n.left).parent = m;
            self.replace_child(p, v, m);
            // `m` stands where `v`, whose gap left with it, stood: it must be
            // recomputed even if everything below it comes out unchanged.
            debug_assert!(until == m || until == NIL);
            self.retrace_through(start, m);
        } else {
            let c = if n.left != NIL { n.left } else { n.right };
            self.node_mut(c).parent = p;
            if p == NIL {
                self.root = c;
            } else {
                let is_left = self.node(p).left == v;
                if is_left {
                    self.node_mut(p).left = c;
                } else {
                    self.node_mut(p).right = c;
                }
                let summary = self.summary(c);
                self.set_summary(p, is_left, summary);
                self.retrace_through(p, until);
            }
        }
    }

    /// Walks up from `i`, whose own slots are right: rebalances, and writes
    /// each subtree's summary into its parent's slot, until a slot comes
    /// out unchanged, but not before `until` (`i`, an ancestor of `i`, or
    /// `NIL`) is passed.
    fn retrace_through(&mut self, mut i: u32, mut until: u32) {
        loop {
            let n = self.node(i);
            let (top, h, m, p) = if n.lh.abs_diff(n.rh) <= 1 {
                (i, n.height(), n.max_cap(), n.parent)
            } else {
                let t = self.rebalance(i);
                let tn = self.node(t);
                (t, tn.height(), tn.max_cap(), tn.parent)
            };
            if i == until {
                until = NIL;
            }
            if p == NIL {
                return;
            }
            let pn = self.node_mut(p);
            let (sh, sm) =
                if pn.left == top { (&mut pn.lh, &mut pn.lmax) } else { (&mut pn.rh, &mut pn.rmax) };
            if until == NIL && *sh == h && *sm == m {
                return;
            }
            *sh = h;
            *sm = m;
            i = p;
        }
    }

    /// Rotates the unbalanced subtree at `i`; returns its new root. Slots
    /// inside the subtree are updated; the parent's slot is the caller's.
    fn rebalance(&mut self, i: u32) -> u32 {
        let n = *self.node(i);
        if n.lh > n.rh {
            let l = self.node(n.left);
            if l.lh < l.rh {
                let c = self.rotate_left(n.left);
                let summary = self.summary(c);
                self.set_summary(i, true, summary);
            }
            self.rotate_right(i)
        } else {
            let r = self.node(n.right);
            if r.rh < r.lh {
                let c = self.rotate_right(n.right);
                let summary = self.summary(c);
                self.set_summary(i, false, summary);
            }
            self.rotate_left(i)
        }
    }

    fn rotate_left(&mut self, x: u32) -> u32 {
        let xn = *self.node(x);
        let y = xn.right;
        let yn = *self.node(y);
        let b = yn.left;
        let xm = self.node_mut(x);
        xm.right = b;
        xm.rh = yn.lh;
        xm.rmax = yn.lmax;
        xm.parent = y;
        let xs = (xm.height(), xm.max_cap());
        // (On the sentinel, a parent write is harmless: it is never read.)
        self.node_mut(b).parent = x;
        let ym = self.node_mut(y);
        ym.left = x;
        ym.lh = xs.0;
        ym.lmax = xs.1;
        ym.parent = xn.parent;
        self.replace_child(xn.parent, x, y);
        y
    }

    fn rotate_right(&mut self, x: u32) -> u32 {
        let xn = *self.node(x);
        let y = xn.left;
        let yn = *self.node(y);
        let b = yn.right;
        let xm = self.node_mut(x);
        xm.left = b;
        xm.lh = yn.rh;
        xm.lmax = yn.rmax;
        xm.parent = y;
        let xs = (xm.height(), xm.max_cap());
        self.node_mut(b).parent = x;
        let ym = self.node_mut(y);
        ym.right = x;
        ym.rh = xs.0;
        ym.rmax = xs.1;
        ym.parent = xn.parent;
        self.replace_child(xn.parent, x, y);
        y
    }

    fn replace_child(&mut self, p: u32, old: u32, new: u32) {
        if p == NIL {
            self.root = new;
        } else if self.node(p).left == old {
            self.node_mut(p).left = new;
        } else {
            self.node_mut(p).right = new;
        }
    }

    /// Height and maximum capacity of the subtree at `i`.
    fn summary(&self, i: u32) -> (u8, u64) {
        if i == NIL {
            (0, 0)
        } else {
            let n = self.node(i);
            (n.height(), n.max_cap())
        }
    }

    fn set_summary(&mut self, p: u32, left: bool, (h, m): (u8, u64)) {
        let n = self.node_mut(p);
        if left {
            n.lh = h;
            n.lmax = m;
        } else {
            n.rh = h;
            n.rmax = m;
        }
    }

    // ---- navigation ----

    fn node(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    fn node_mut(&mut self, i: u32) -> &mut Node {
        &mut self.nodes[i as usize]
    }

    fn min_node(&self, mut i: u32) -> u32 {
        while self.node(i).left != NIL {
            i = self.node(i).left;
        }
        i
    }

    fn max_node(&self, mut i: u32) -> u32 {
        while self.node(i).right != NIL {
            i = self.node(i).right;
        }
        i
    }

    fn first(&self) -> u32 {
        self.min_node(self.root)
    }

    /// In-order successor (`NIL` after the anchor).
    fn next(&self, i: u32) -> u32 {
        let r = self.node(i).right;
        if r != NIL {
            return self.min_node(r);
        }
        let mut c = i;
        let mut p = self.node(i).parent;
        while p != NIL && self.node(p).right == c {
            c = p;
            p = self.node(p).parent;
        }
        p
    }

    fn to_range(&self, lo: u64, hi: u64) -> Range<Iova> {
        Iova(lo << self.shift)..Iova(hi << self.shift)
    }

    // ---- slots ----

    fn take_slot(&mut self) -> Result<u32, IovaError> {
        if self.free_slot != NIL {
            let i = self.free_slot;
            self.free_slot = self.node(i).parent;
            return Ok(i);
        }
        let i = u32::try_from(self.nodes.len()).map_err(|_| IovaError::NoMemory)?;
        self.nodes.try_reserve(1).map_err(|_| IovaError::NoMemory)?;
        let filler = *self.node(self.root);
        self.nodes.push(filler);
        Ok(i)
    }

    fn release_slot(&mut self, i: u32) {
        self.node_mut(i).parent = self.free_slot;
        self.free_slot = i;
    }

    /// Checks every structural invariant; panics with a description if one
    /// is broken. For tests.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        let mut count = 0usize;
        self.check_subtree(self.root, NIL, &mut count);
        // In-order: gaps chain from the window start to the anchor.
        let mut prev_hi = self.start;
        let mut cur = self.first();
        let mut seen = 0usize;
        let (mut allocated, mut reserved) = (0, 0);
        loop {
            let n = self.node(cur);
            assert_eq!(n.gap_lo, prev_hi, "gap start is not the predecessor's end");
            assert!(n.lo >= n.gap_lo && n.hi >= n.lo, "range out of order");
            assert_eq!(n.cap, gap_capacity(n.gap_lo, n.lo), "stale gap capacity");
            seen += 1;
            match n.kind {
                RangeKind::Allocated => allocated += 1,
                RangeKind::Reserved => reserved += 1,
                RangeKind::Anchor => {
                    assert_eq!((n.lo, n.hi), (self.end, self.end));
                    break;
                }
            }
            assert!(n.hi > n.lo, "empty range");
            prev_hi = n.hi;
            cur = self.next(cur);
        }
        assert_eq!(self.next(cur), NIL, "nodes after the anchor");
        assert_eq!(seen, count, "in-order walk and tree disagree");
        assert_eq!((allocated, reserved), (self.allocated, self.reserved));
    }

    #[cfg(test)]
    fn check_subtree(&self, i: u32, parent: u32, count: &mut usize) -> (u8, u64) {
        if i == NIL {
            return (0, 0);
        }
        *count += 1;
        let n = self.node(i);
        assert_eq!(n.parent, parent, "parent link");
        let (hl, ml) = self.check_subtree(n.left, i, count);
        let (hr, mr) = self.check_subtree(n.right, i, count);
        if n.left != NIL {
            assert!(self.node(n.left).lo < n.lo, "order");
        }
        if n.right != NIL {
            assert!(self.node(n.right).lo > n.lo, "order");
        }
        assert!(hl.abs_diff(hr) <= 1, "AVL balance");
        assert_eq!((n.lh, n.lmax), (hl, ml), "left summary");
        assert_eq!((n.rh, n.rmax), (hr, mr), "right summary");
        (n.height(), n.max_cap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 4096;

    fn pages(n: u64) -> Iova {
        Iova(n * G)
    }

    /// The capacity by brute force: the largest n with an aligned start.
    fn capacity_brute(b: u64, e: u64) -> u64 {
        (1..=e.saturating_sub(b))
            .filter(|&n| {
                let a = n.next_power_of_two();
                (b..e).any(|x| x % a == 0 && x + n <= e)
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn iova_gap_capacity_matches_brute_force() {
        let max = if cfg!(miri) { 12 } else { 70 };
        for b in 0..max {
            for e in b..max + 5 {
                assert_eq!(gap_capacity(b, e), capacity_brute(b, e), "gap {b}..{e}");
            }
        }
        assert_eq!(gap_capacity(0, u64::MAX), 1 << 63);
        assert_eq!(gap_capacity(u64::MAX - 1, u64::MAX), 1);
        assert_eq!(gap_capacity(1 << 63, u64::MAX), (1 << 62) + ((1 << 62) - 1));
    }

    #[test]
    fn iova_allocates_top_down_size_aligned() {
        let mut r = RangeAllocator::new(pages(16)..pages(64), G).unwrap();
        assert_eq!(r.alloc(1, DmaLimit::NONE), Ok(pages(63)));
        assert_eq!(r.alloc(3, DmaLimit::NONE), Ok(pages(60)));
        assert_eq!(r.alloc(1, DmaLimit::NONE), Ok(pages(59)));
        assert_eq!(r.alloc(8, DmaLimit::NONE), Ok(pages(48)));
        // The alignment hole 56..59 is found first, exactly.
        assert_eq!(r.alloc(1, DmaLimit::NONE), Ok(pages(58)));
        assert_eq!(r.alloc(2, DmaLimit::NONE), Ok(pages(56)));
        assert_eq!(r.alloc(1, DmaLimit::NONE), Ok(pages(47)));
        assert_eq!(r.free(pages(59), 1), Ok(()));
        assert_eq!(r.alloc(1, DmaLimit::NONE), Ok(pages(59)));
        r.check_invariants();
        assert_eq!(r.allocated(), 7);
    }

    #[test]
    fn iova_respects_the_limit() {
        let mut r = RangeAllocator::new(Iova(0)..Iova(1 << 40), G).unwrap();
        let a = r.alloc(4, DmaLimit::bits(32)).unwrap();
        assert_eq!(a, Iova((1 << 32) - 4 * G));
        let b = r.alloc(4, DmaLimit::NONE).unwrap();
        assert_eq!(b, Iova((1 << 40) - 4 * G));
        assert_eq!(r.alloc(1, DmaLimit::from_mask(0xfff)), Ok(Iova(0)), "a one-page limit");
        assert_eq!(
            r.alloc(1, DmaLimit::from_mask(0xfff)),
            Err(IovaError::Exhausted { pages: 1, limit: DmaLimit::from_mask(0xfff) })
        );
        let mut w = RangeAllocator::new(Iova(1 << 32)..Iova(1 << 33), G).unwrap();
        assert!(matches!(w.alloc(1, DmaLimit::bits(32)), Err(IovaError::LimitBelowWindow { .. })));
        r.check_invariants();
    }

    #[test]
    fn iova_free_checks_start_and_size() {
        let mut r = RangeAllocator::new(pages(0)..pages(64), G).unwrap();
        let a = r.alloc(4, DmaLimit::NONE).unwrap();
        assert!(r.free(a, 2).is_err());
        assert!(r.free(Iova(a.raw() + G), 4).is_err());
        assert!(r.free(Iova(a.raw() + 1), 4).is_err());
        assert_eq!(r.free(a, 4), Ok(()));
        assert_eq!(r.free(a, 4), Err(IovaError::NotAllocated { iova: a, pages: 4 }));
        r.check_invariants();
        assert_eq!(r.allocated(), 0);
    }

    #[test]
    fn iova_reserve() {
        let mut r = RangeAllocator::new(pages(0)..pages(64), G).unwrap();
        r.reserve(pages(60)..pages(64)).unwrap();
        assert_eq!(
            r.reserve(pages(62)..pages(63)),
            Err(IovaError::ReserveOverlap { start: pages(62), end: pages(63) })
        );
        assert_eq!(r.reserve(pages(1)..pages(1)), Err(IovaError::ZeroSize));
        // Widened to whole pages; outside the window ignored.
        r.reserve(Iova(10 * G + 5)..Iova(11 * G + 1)).unwrap();
        assert_eq!(r.find(pages(11)), Some((pages(10)..pages(12), RangeKind::Reserved)));
        r.reserve(pages(100)..pages(200)).unwrap();
        assert_eq!(r.alloc(4, DmaLimit::NONE), Ok(pages(56)));
        assert!(r.free(pages(60), 4).is_err(), "a reservation is not freed");
        r.check_invariants();
        let all: Vec<_> = r.ranges().collect();
        assert_eq!(
            all,
            [
                (pages(10)..pages(12), RangeKind::Reserved),
                (pages(56)..pages(60), RangeKind::Allocated),
                (pages(60)..pages(64), RangeKind::Reserved),
            ]
        );
    }

    #[test]
    fn iova_errors() {
        assert_eq!(RangeAllocator::new(pages(1)..pages(1), G).unwrap_err(), IovaError::InvalidWindow);
        assert_eq!(RangeAllocator::new(Iova(1)..pages(1), G).unwrap_err(), IovaError::InvalidWindow);
        assert_eq!(RangeAllocator::new(pages(0)..pages(1), 3000).unwrap_err(), IovaError::InvalidWindow);
        let mut r = RangeAllocator::new(pages(0)..pages(8), G).unwrap();
        assert_eq!(r.alloc(0, DmaLimit::NONE), Err(IovaError::ZeroSize));
        assert_eq!(r.alloc(9, DmaLimit::NONE), Err(IovaError::SizeAboveWindow { pages: 9, window_pages: 8 }));
        assert_eq!(r.alloc(8, DmaLimit::NONE), Ok(pages(0)));
        assert!(matches!(r.alloc(1, DmaLimit::NONE), Err(IovaError::Exhausted { pages: 1, .. })));
        r.check_invariants();
    }

    #[test]
    fn iova_tree_stays_balanced_under_churn() {
        let n = if cfg!(miri) { 200 } else { 20_000 };
        let mut r = RangeAllocator::new(Iova(0)..Iova(1 << 40), G).unwrap();
        let mut live = Vec::new();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..n {
            let p = rnd() % 40 + 1;
            live.push((r.alloc(p, DmaLimit::NONE).unwrap(), p));
        }
        for _ in 0..n {
            let i = (rnd() % live.len() as u64) as usize;
            let (a, p) = live.swap_remove(i);
            r.free(a, p).unwrap();
            let p = rnd() % 40 + 1;
            live.push((r.alloc(p, DmaLimit::NONE).unwrap(), p));
        }
        r.check_invariants();
        // 1.44 log2(n + 2) bounds the AVL height.
        let log2 = 64 - ((n + 2) as u64).leading_zeros();
        assert!(u32::from(r.node(r.root).height()) <= log2 * 3 / 2 + 1);
        for (a, p) in live.drain(..) {
            r.free(a, p).unwrap();
        }
        r.check_invariants();
        assert_eq!(r.ranges().count(), 0);
        // Everything merged back: the whole window is one gap again.
        assert_eq!(r.alloc(1 << 28, DmaLimit::NONE), Ok(Iova(0)));
    }
}
