//! Property test: random sequences of maps, syncs, device accesses, unmaps
//! and coherent allocations, for every kind of device (behind an IOMMU or
//! direct, 32- or 64-bit mask, coherent or not, with or without a bounce
//! pool, forced bouncing), against a model of the buffers' bytes.
//!
//! Checked after every step: device addresses translate (through the real
//! stage-2 table) to the buffer's bytes, or lie in the bounce pool; the device
//! sees what the model says; no two live mappings overlap; masks hold; bounce
//! slots in use add up; a refused map changes nothing; every flush happens
//! while its IOVA is still allocated; cache maintenance matches the
//! direction; and at the end, unmapping everything restores the start state.

#[path = "dma_common.rs"]
mod common;

use std::ops::Range;

use common::*;
use iommu_common::addr::PhysAddr;
use iommu_common::dma::{
    Bidirectional, DmaAddr, DmaCoherent, DmaContext, DmaDevice, DmaDirection, DmaError, DmaSegment, DmaSg,
    DmaStream, FromDevice, ToDevice, BOUNCE_SLOT_SIZE,
};
use iommu_common::iova::DmaLimit;
use proptest::prelude::*;

const BUFFERS: usize = 8;
const BUF_PAGES: usize = 4;
const BUF_SIZE: usize = BUF_PAGES * 4096;
const POOL_PAGES: usize = 8;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 3 } else { cases },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn ops_len() -> Range<usize> {
    if cfg!(miri) {
        1..12
    } else {
        1..48
    }
}

#[derive(Clone, Copy, Debug)]
struct Setup {
    iommu: bool,
    mask32: bool,
    coherent: bool,
    pool: bool,
    force: bool,
}

#[derive(Clone, Debug)]
enum Op {
    Map {
        buf: usize,
        off: usize,
        len: usize,
        dir: u8,
    },
    /// Pages `pages` (a bitmask) of a buffer, the first entry starting `head`
    /// bytes in and the last ending `tail` bytes early.
    MapSg {
        buf: usize,
        pages: u8,
        head: usize,
        tail: usize,
        dir: u8,
    },
    DevWrite {
        pick: usize,
        seed: u8,
    },
    DevRead {
        pick: usize,
    },
    CpuWrite {
        pick: usize,
        seed: u8,
    },
    SyncCpu {
        pick: usize,
    },
    Unmap {
        pick: usize,
    },
    Coherent {
        size: usize,
        seed: u8,
    },
    FreeCoherent {
        pick: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let len = if cfg!(miri) { 1..600usize } else { 1..9000usize };
    prop_oneof![
        4 => (0..BUFFERS, 0..BUF_SIZE, len, 0..3u8).prop_map(|(buf, off, len, dir)| Op::Map { buf, off, len, dir }),
        2 => (0..BUFFERS, 1..16u8, 0..4096usize, 0..4096usize, 0..3u8)
            .prop_map(|(buf, pages, head, tail, dir)| Op::MapSg { buf, pages, head, tail, dir }),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(pick, seed)| Op::DevWrite { pick, seed }),
        2 => any::<usize>().prop_map(|pick| Op::DevRead { pick }),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(pick, seed)| Op::CpuWrite { pick, seed }),
        2 => any::<usize>().prop_map(|pick| Op::SyncCpu { pick }),
        3 => any::<usize>().prop_map(|pick| Op::Unmap { pick }),
        1 => (1..3 * 4096usize, any::<u8>()).prop_map(|(size, seed)| Op::Coherent { size, seed }),
        1 => any::<usize>().prop_map(|pick| Op::FreeCoherent { pick }),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>(), prop::bool::weighted(0.2))
        .prop_map(|(iommu, mask32, coherent, pool, force)| Setup { iommu, mask32, coherent, pool, force })
}

/// A live mapping of any direction and shape.
enum Handle {
    S2d(DmaStream<ToDevice>),
    Sfd(DmaStream<FromDevice>),
    Sbi(DmaStream<Bidirectional>),
    G2d(DmaSg<ToDevice>),
    Gfd(DmaSg<FromDevice>),
    Gbi(DmaSg<Bidirectional>),
}

impl Handle {
    fn segments(&self) -> Vec<DmaSegment> {
        let one = |s: DmaAddr, len| vec![DmaSegment { addr: s, len }];
        match self {
            Self::S2d(s) => one(s.dma_addr(), s.size()),
            Self::Sfd(s) => one(s.dma_addr(), s.size()),
            Self::Sbi(s) => one(s.dma_addr(), s.size()),
            Self::G2d(g) => g.segments().to_vec(),
            Self::Gfd(g) => g.segments().to_vec(),
            Self::Gbi(g) => g.segments().to_vec(),
        }
    }

    fn dir(&self) -> DmaDirection {
        match self {
            Self::S2d(_) | Self::G2d(_) => DmaDirection::ToDevice,
            Self::Sfd(_) | Self::Gfd(_) => DmaDirection::FromDevice,
            Self::Sbi(_) | Self::Gbi(_) => DmaDirection::Bidirectional,
        }
    }

    fn is_sg(&self) -> bool {
        matches!(self, Self::G2d(_) | Self::Gfd(_) | Self::Gbi(_))
    }

    fn sync_for_cpu(&self, ctx: &DmaContext<'_>) -> Result<(), DmaError> {
        match self {
            Self::Sfd(s) => s.sync_for_cpu(ctx),
            Self::Sbi(s) => s.sync_for_cpu(ctx),
            Self::Gfd(g) => g.sync_for_cpu(ctx),
            Self::Gbi(g) => g.sync_for_cpu(ctx),
            Self::S2d(_) | Self::G2d(_) => unreachable!("the types forbid it"),
        }
    }

    fn sync_for_device(&self, ctx: &DmaContext<'_>) -> Result<(), DmaError> {
        match self {
            Self::S2d(s) => s.sync_for_device(ctx),
            Self::Sbi(s) => s.sync_for_device(ctx),
            Self::G2d(g) => g.sync_for_device(ctx),
            Self::Gbi(g) => g.sync_for_device(ctx),
            Self::Sfd(_) | Self::Gfd(_) => unreachable!("the types forbid it"),
        }
    }

    fn unmap(self, ctx: &mut DmaContext<'_>) -> Result<(), DmaError> {
        match self {
            Self::S2d(s) => s.unmap(ctx).map_err(Into::into),
            Self::Sfd(s) => s.unmap(ctx).map_err(Into::into),
            Self::Sbi(s) => s.unmap(ctx).map_err(Into::into),
            Self::G2d(g) => g.unmap(ctx).map_err(Into::into),
            Self::Gfd(g) => g.unmap(ctx).map_err(Into::into),
            Self::Gbi(g) => g.unmap(ctx).map_err(Into::into),
        }
    }
}

struct Live {
    handle: Handle,
    buf: usize,
    /// The list mapped, as offsets into the buffer.
    list: Vec<(usize, usize)>,
    /// What the device sees, in list order.
    dev_view: Vec<u8>,
}

struct World {
    s: Setup,
    dev: DmaDevice,
    rig: Rig,
    bufs: Vec<PhysAddr>,
    /// The model of each buffer's bytes as the CPU will see them.
    model: Vec<Vec<u8>>,
    live: Vec<Live>,
    coherent: Vec<(DmaCoherent, Vec<u8>)>,
}

impl World {
    fn new(s: Setup) -> Self {
        let mut rig =
            Rig::new(BUFFERS / 2 * BUF_PAGES + 8, BUFFERS / 2 * BUF_PAGES + POOL_PAGES + 8, s.iommu);
        if s.pool {
            rig = rig.with_pool(POOL_PAGES);
        }
        let mut bufs = Vec::new();
        let mut model = Vec::new();
        for i in 0..BUFFERS {
            let limit = if i % 2 == 0 { DmaLimit::NONE } else { DmaLimit::bits(32) };
            let pa = rig.buffer(BUF_PAGES, limit, 0);
            let data = pattern(i as u8, BUF_SIZE);
            rig.write(pa, &data);
            bufs.push(pa);
            model.push(data);
        }
        assert!(bufs.iter().step_by(2).all(|b| b.raw() >= HIGH), "even buffers above 4 GiB");
        let limit = if s.mask32 { DmaLimit::bits(32) } else { DmaLimit::NONE };
        let dev = DmaDevice::new(limit).with_coherent(s.coherent).with_forced_bounce(s.force);
        take(&rig.log);
        Self { s, dev, rig, bufs, model, live: Vec::new(), coherent: Vec::new() }
    }

    fn busy(&self, buf: usize) -> bool {
        self.live.iter().any(|l| l.buf == buf)
    }

    fn pa(&self, buf: usize, off: usize) -> PhysAddr {
        PhysAddr(self.bufs[buf].raw() + off as u64)
    }

    /// Whether a direct device must bounce this buffer.
    fn must_bounce(&self, buf: usize, off: usize, len: usize) -> bool {
        let last = self.pa(buf, off).raw() + len as u64 - 1;
        !self.s.iommu && (self.s.force || (self.s.mask32 && last > 0xffff_ffff))
    }

    fn map(&mut self, buf: usize, list: Vec<(usize, usize)>, dir: u8, sg: bool) {
        if self.busy(buf) {
            return;
        }
        let before = self.rig.snapshot();
        let pas: Vec<_> = list.iter().map(|&(o, n)| (self.pa(buf, o), n)).collect();
        let d = self.dev;
        let r = match (sg, dir) {
            (false, 0) => self.rig.map::<ToDevice>(d, pas[0].0, pas[0].1).map(Handle::S2d),
            (false, 1) => self.rig.map::<FromDevice>(d, pas[0].0, pas[0].1).map(Handle::Sfd),
            (false, _) => self.rig.map::<Bidirectional>(d, pas[0].0, pas[0].1).map(Handle::Sbi),
            (true, 0) => self.rig.map_sg::<ToDevice>(d, &pas).map(Handle::G2d),
            (true, 1) => self.rig.map_sg::<FromDevice>(d, &pas).map(Handle::Gfd),
            (true, _) => self.rig.map_sg::<Bidirectional>(d, &pas).map(Handle::Gbi),
        };
        let cache = take(&self.rig.log);
        let bounce = list.iter().any(|&(o, n)| self.must_bounce(buf, o, n));
        let unreachable = !self.s.iommu
            && self.s.mask32
            && list.iter().any(|&(o, n)| self.pa(buf, o).raw() + n as u64 - 1 > 0xffff_ffff);
        let handle = match r {
            Ok(h) => h,
            Err(e) => {
                // Out of reach wins over a missing pool for a forced device.
                let allowed = match e {
                    DmaError::MaskViolation { .. } => unreachable && !self.s.pool,
                    DmaError::NoBouncePool => bounce && !unreachable && !self.s.pool,
                    DmaError::BouncePoolExhausted { .. } => bounce && self.s.pool,
                    _ => false,
                };
                assert!(allowed, "unexpected {e:?} for {:?}", self.s);
                assert_eq!(self.rig.snapshot(), before, "a refused map changes nothing");
                assert!(cache.is_empty(), "a refused map does no maintenance: {cache:?}");
                return;
            }
        };
        let dev_view = list.iter().flat_map(|&(o, n)| self.model[buf][o..o + n].to_vec()).collect();
        let live = Live { handle, buf, list, dev_view };
        // One clean per piece for a non-coherent device, on what the device
        // reads (checked exactly for single buffers).
        self.check_cache(&live, &cache, true);
        self.live.push(live);
    }

    /// The CPU address of what the device accesses for a stream.
    fn device_va(&self, l: &Live) -> usize {
        let seg = l.handle.segments()[0];
        let pool = self.rig.pool.as_ref();
        let in_pool = pool.is_some_and(|p| {
            (p.phys_addr().raw()..p.phys_addr().raw() + p.size() as u64).contains(&seg.addr.raw())
        });
        if in_pool {
            self.rig.va(PhysAddr(seg.addr.raw()))
        } else {
            self.rig.va(self.pa(l.buf, l.list[0].0))
        }
    }

    fn check_cache(&self, l: &Live, log: &[Event], clean: bool) {
        let cache: Vec<_> =
            log.iter().filter(|e| !matches!(e, Event::Flush(_) | Event::FreeTable(_))).collect();
        if self.s.coherent {
            assert!(cache.is_empty(), "coherent device: {cache:?}");
            return;
        }
        let pieces = merged(&l.list).len();
        assert_eq!(cache.len(), pieces, "{cache:?}");
        if !l.handle.is_sg() {
            let (va, n) = (self.device_va(l), l.list[0].1);
            let want = if clean { Event::Clean(va, n) } else { Event::Invalidate(va, n) };
            assert_eq!(cache[0], &want);
        } else {
            assert!(cache.iter().all(|e| matches!(e, Event::Clean(..)) == clean));
        }
    }

    fn pick(&self, pick: usize) -> Option<usize> {
        (!self.live.is_empty()).then(|| pick % self.live.len())
    }

    fn dev_write(&mut self, pick: usize, seed: u8) {
        let Some(i) = self.pick(pick) else { return };
        let l = &self.live[i];
        if !self.s.iommu && !l.handle.dir().device_writes() {
            return; // Nothing stops a direct device; nothing to check.
        }
        let data = pattern(seed, l.dev_view.len());
        let mut off = 0;
        let mut ok = true;
        for seg in l.handle.segments() {
            ok &= self.rig.dev_write(seg.addr, &data[off..off + seg.len]);
            off += seg.len;
        }
        if l.handle.dir().device_writes() {
            assert!(ok, "the device may write a {:?} mapping", l.handle.dir());
            self.live[i].dev_view = data;
        } else {
            assert!(!ok, "the IOMMU stops writes to a ToDevice mapping");
        }
    }

    fn dev_read(&self, pick: usize) {
        let Some(i) = self.pick(pick) else { return };
        let l = &self.live[i];
        let mut seen = Vec::new();
        for seg in l.handle.segments() {
            match self.rig.dev_read(seg.addr, seg.len) {
                Some(b) => seen.extend(b),
                None => {
                    assert!(self.s.iommu && !l.handle.dir().device_reads(), "read denied");
                    return;
                }
            }
        }
        assert_eq!(seen, l.dev_view, "the device sees the model");
    }

    fn cpu_write(&mut self, pick: usize, seed: u8) {
        let Some(i) = self.pick(pick) else { return };
        if !self.live[i].handle.dir().device_reads() {
            return;
        }
        let (buf, list) = (self.live[i].buf, self.live[i].list.clone());
        let mut view = Vec::new();
        for (k, &(o, n)) in list.iter().enumerate() {
            let data = pattern(seed.wrapping_add(k as u8), n);
            self.rig.write(self.pa(buf, o), &data);
            self.model[buf][o..o + n].copy_from_slice(&data);
            view.extend(data);
        }
        let d = self.dev;
        self.live[i].handle.sync_for_device(&self.rig.ctx(d)).unwrap();
        let log = take(&self.rig.log);
        self.check_cache(&self.live[i], &log, true);
        self.live[i].dev_view = view;
        self.dev_read(i);
        self.check_buffer(buf);
    }

    /// The device's writes reach the model.
    fn hand_to_cpu(&mut self, i: usize) {
        let l = &self.live[i];
        let mut off = 0;
        for &(o, n) in &l.list {
            self.model[l.buf][o..o + n].copy_from_slice(&l.dev_view[off..off + n]);
            off += n;
        }
    }

    fn sync_cpu(&mut self, pick: usize) {
        let Some(i) = self.pick(pick) else { return };
        if !self.live[i].handle.dir().device_writes() {
            return;
        }
        let d = self.dev;
        self.live[i].handle.sync_for_cpu(&self.rig.ctx(d)).unwrap();
        let log = take(&self.rig.log);
        self.check_cache(&self.live[i], &log, false);
        self.hand_to_cpu(i);
        self.check_buffer(self.live[i].buf);
    }

    fn unmap(&mut self, pick: usize) {
        let Some(i) = self.pick(pick) else { return };
        let writes = self.live[i].handle.dir().device_writes();
        if writes {
            self.hand_to_cpu(i);
        }
        let l = self.live.swap_remove(i);
        let buf = l.buf;
        let segs = l.handle.segments();
        let single_va = (!l.handle.is_sg()).then(|| self.device_va(&l));
        let d = self.dev;
        l.handle.unmap(&mut self.rig.ctx(d)).unwrap();
        let log = take(&self.rig.log);
        let cache: Vec<_> =
            log.iter().filter(|e| !matches!(e, Event::Flush(_) | Event::FreeTable(_))).collect();
        if self.s.coherent || !writes {
            assert!(cache.is_empty(), "{cache:?}");
        } else {
            assert_eq!(cache.len(), merged(&l.list).len());
            if let Some(va) = single_va {
                assert_eq!(cache[0], &Event::Invalidate(va, l.list[0].1));
            }
        }
        // Behind an IOMMU: exactly one flush, covering the span, made while
        // the IOVA was still allocated; table frees only after it.
        let flushes: Vec<_> = log.iter().enumerate().filter(|(_, e)| matches!(e, Event::Flush(_))).collect();
        if self.s.iommu {
            assert_eq!(flushes.len(), 1, "{log:?}");
            let (at, Event::Flush(ranges)) = flushes[0] else { unreachable!() };
            assert!(ranges.iter().all(|&(_, live)| live));
            let first = segs[0].addr.raw();
            assert!(ranges.iter().any(|(r, _)| r.start.raw() <= first && first < r.end.raw()));
            assert!(log[..at].iter().all(|e| !matches!(e, Event::FreeTable(_))));
            for s in &segs {
                assert_eq!(self.rig.translate(s.addr, iommu_common::pgtable::Access::READ), None);
            }
        } else {
            assert!(flushes.is_empty());
        }
        self.check_buffer(buf);
    }

    fn coherent(&mut self, size: usize, seed: u8) {
        let d = self.dev;
        let before = self.rig.snapshot();
        let mut c = match self.rig.ctx(d).alloc_coherent(size) {
            Ok(c) => c,
            Err(e) => {
                // Low memory is small; a 32-bit direct device may run out.
                assert!(e == DmaError::OutOfMemory && !self.s.iommu, "{e:?}");
                assert_eq!(self.rig.snapshot(), before);
                return;
            }
        };
        let log = take(&self.rig.log);
        assert_eq!(log.len(), usize::from(!self.s.coherent), "{log:?}");
        let data = pattern(seed, size);
        c.write(0, &data).unwrap();
        assert_eq!(self.rig.dev_read(c.dma_addr(), size).unwrap(), data);
        let back = pattern(seed ^ 0x55, size);
        assert!(self.rig.dev_write(c.dma_addr(), &back));
        let mut seen = vec![0; size];
        c.read(0, &mut seen).unwrap();
        assert_eq!(seen, back);
        self.coherent.push((c, back));
    }

    fn free_coherent(&mut self, pick: usize) {
        if self.coherent.is_empty() {
            return;
        }
        let (c, data) = self.coherent.swap_remove(pick % self.coherent.len());
        let mut seen = vec![0; data.len()];
        c.read(0, &mut seen).unwrap();
        assert_eq!(seen, data);
        let d = self.dev;
        c.free(&mut self.rig.ctx(d)).unwrap();
        take(&self.rig.log);
    }

    /// The buffer's bytes are the model's, except under live device-writable
    /// mappings (whose bytes the device may change before a sync).
    fn check_buffer(&self, buf: usize) {
        let mem = self.rig.read(self.bufs[buf], BUF_SIZE);
        let mut expect = self.model[buf].clone();
        for l in self.live.iter().filter(|l| l.buf == buf && l.handle.dir().device_writes()) {
            for &(o, n) in &l.list {
                expect[o..o + n].copy_from_slice(&mem[o..o + n]);
            }
        }
        assert!(mem == expect, "buffer {buf} differs from the model");
    }

    /// Invariants over all live mappings.
    fn check(&self) {
        let limit = if self.s.mask32 { 0xffff_ffffu64 } else { u64::MAX };
        let pool = self.rig.pool.as_ref().map(|p| p.phys_addr().raw()..p.phys_addr().raw() + p.size() as u64);
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let mut slots = 0;
        for l in &self.live {
            let segs = l.handle.segments();
            let total: usize = segs.iter().map(|s| s.len).sum();
            assert_eq!(total, l.dev_view.len());
            if self.s.iommu {
                assert_eq!(segs.len(), 1, "one IOVA span");
                // Every piece translates to its buffer bytes.
                let mut dev_off = 0u64;
                for &(o, n) in &l.list {
                    let pa = self.pa(l.buf, o).raw();
                    for k in [0, n as u64 / 2, n as u64 - 1] {
                        let got = self.rig.translate(
                            DmaAddr(segs[0].addr.raw() + dev_off + k),
                            iommu_common::pgtable::Access::NONE,
                        );
                        assert_eq!(got, Some(PhysAddr(pa + k)));
                    }
                    dev_off += n as u64;
                }
            } else {
                let pieces = merged(&l.list);
                let bounced: Vec<_> = pieces.iter().map(|&(o, n)| self.must_bounce(l.buf, o, n)).collect();
                slots += pieces
                    .iter()
                    .zip(&bounced)
                    .filter(|(_, &b)| b)
                    .map(|(&(_, n), _)| n.div_ceil(BOUNCE_SLOT_SIZE))
                    .sum::<usize>();
                for s in &segs {
                    let in_pool = pool.as_ref().is_some_and(|p| p.contains(&s.addr.raw()));
                    let at_buffer = pieces.iter().any(|&(o, _)| s.addr.raw() == self.pa(l.buf, o).raw());
                    assert!(in_pool || at_buffer, "a direct segment is the buffer or bounce slots");
                }
                if bounced.iter().all(|&b| !b) {
                    let want: Vec<_> = pieces
                        .iter()
                        .map(|&(o, n)| DmaSegment { addr: DmaAddr(self.pa(l.buf, o).raw()), len: n })
                        .collect();
                    assert_eq!(segs, want);
                }
            }
            for s in &segs {
                assert!(s.addr.raw() + s.len as u64 - 1 <= limit, "mask");
                ranges.push((s.addr.raw(), s.addr.raw() + s.len as u64));
            }
        }
        for (c, _) in &self.coherent {
            assert!(c.dma_addr().raw() + c.size() as u64 - 1 <= limit, "mask");
            ranges.push((c.dma_addr().raw(), c.dma_addr().raw() + c.size() as u64));
        }
        ranges.sort_unstable();
        assert!(ranges.windows(2).all(|w| w[0].1 <= w[1].0), "device ranges overlap: {ranges:x?}");
        if let Some(p) = &self.rig.pool {
            assert_eq!(p.slots_in_use(), slots, "slots held by bounced pieces");
        }
    }
}

/// Physically contiguous entries merged, as the DMA API does.
fn merged(list: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &(o, n) in list {
        match out.last_mut() {
            Some(l) if l.0 + l.1 == o => l.1 += n,
            _ => out.push((o, n)),
        }
    }
    out
}

/// The list `MapSg` describes: whole pages, the first cut `head` bytes in,
/// the last `tail` bytes short.
fn sg_list(pages: u8, head: usize, tail: usize) -> Vec<(usize, usize)> {
    let mut list: Vec<(usize, usize)> =
        (0..BUF_PAGES).filter(|p| pages & (1 << p) != 0).map(|p| (p * 4096, 4096)).collect();
    let first = &mut list[0];
    let head = head.min(first.1 - 1);
    first.0 += head;
    first.1 -= head;
    let last = list.last_mut().unwrap();
    last.1 -= tail.min(last.1 - 1);
    list
}

fn run(s: Setup, ops: Vec<Op>) {
    let mut w = World::new(s);
    let start = w.rig.snapshot();
    for op in ops {
        match op {
            Op::Map { buf, off, len, dir } => {
                let len = len.min(BUF_SIZE - off);
                w.map(buf, vec![(off, len)], dir, false);
            }
            Op::MapSg { buf, pages, head, tail, dir } => w.map(buf, sg_list(pages, head, tail), dir, true),
            Op::DevWrite { pick, seed } => w.dev_write(pick, seed),
            Op::DevRead { pick } => w.dev_read(pick),
            Op::CpuWrite { pick, seed } => w.cpu_write(pick, seed),
            Op::SyncCpu { pick } => w.sync_cpu(pick),
            Op::Unmap { pick } => w.unmap(pick),
            Op::Coherent { size, seed } => w.coherent(size, seed),
            Op::FreeCoherent { pick } => w.free_coherent(pick),
        }
        w.check();
    }
    while !w.live.is_empty() {
        w.unmap(0);
    }
    while !w.coherent.is_empty() {
        w.free_coherent(0);
    }
    for b in 0..BUFFERS {
        w.check_buffer(b);
    }
    assert_eq!(w.rig.snapshot(), start, "everything given back");
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn dma_random_sequences_match_the_model(s in setup(), ops in proptest::collection::vec(op(), ops_len())) {
        run(s, ops);
    }
}
