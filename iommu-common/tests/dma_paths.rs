//! Every path of the DMA API, one at a time: a real stage-2 table and IOVA
//! allocator behind the IOMMU, simulated RAM, a recording flusher and cache,
//! and a simulated device that goes through the page table.

#[path = "dma_common.rs"]
mod common;

use common::*;
use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::dma::{
    Bidirectional, BouncePool, CpuMapping, DmaAddr, DmaContext, DmaDevice, DmaError, DmaMemory, DmaSegment,
    FromDevice, IommuDomainRef, TeardownError, ToDevice,
};
use iommu_common::iova::{DmaLimit, IovaAllocator, IovaError, RangeAllocator};
use iommu_common::pgtable::vmsav8::{Granule, Stage2, TableConfig, Vmsav8Table};
use iommu_common::pgtable::{Access, IoPageTable, IovaRange, MemType, PgTableError, PoolAllocator};

fn dev() -> DmaDevice {
    DmaDevice::new(DmaLimit::NONE)
}

fn dev32() -> DmaDevice {
    DmaDevice::new(DmaLimit::bits(32))
}

/// Asserts a flush of exactly `range` (still allocated when flushed), then
/// only table frees.
fn assert_flush_then_frees(ev: &[Event], range: IovaRange) {
    assert_eq!(ev.first(), Some(&Event::Flush(vec![(range, true)])), "{ev:?}");
    assert!(ev[1..].iter().all(|e| matches!(e, Event::FreeTable(_))), "{ev:?}");
}

fn span(addr: DmaAddr, len: u64) -> IovaRange {
    IovaRange { start: Iova(addr.raw()), end: Iova(addr.raw() + len) }
}

// ---- coherent allocations ----

#[test]
fn dma_coherent_iommu_is_zeroed_mapped_rw_and_freed_after_a_flush() {
    let mut rig = Rig::new(16, 0, true);
    let d = dev();
    let before = rig.snapshot();
    let mut buf = rig.ctx(d).alloc_coherent(5000).unwrap();
    assert_eq!(buf.size(), 5000);
    let iova = buf.dma_addr();
    for off in [0, 4095, 4096, 8191] {
        let pa = PhysAddr(buf.phys_addr().raw() + off);
        assert_eq!(rig.translate(DmaAddr(iova.raw() + off), Access::RW), Some(pa));
    }
    assert_eq!(rig.domain().table.lookup(Iova(iova.raw())).unwrap().prot.mem(), MemType::WriteBack);
    assert_eq!(rig.dev_read(iova, 5000).unwrap(), vec![0; 5000]);
    buf.write(10, b"cpu").unwrap();
    assert_eq!(rig.dev_read(DmaAddr(iova.raw() + 10), 3).unwrap(), b"cpu");
    assert!(rig.dev_write(DmaAddr(iova.raw() + 4999), b"d"));
    let mut out = [0];
    buf.read(4999, &mut out).unwrap();
    assert_eq!(&out, b"d");
    assert_eq!(rig.mem.mapping_of(buf.phys_addr()), Some(CpuMapping::Cached));
    assert!(take(&rig.log).is_empty(), "coherent device: no cache maintenance");
    buf.free(&mut rig.ctx(d)).unwrap();
    assert_flush_then_frees(&take(&rig.log), span(iova, 8192));
    assert_eq!(rig.translate(iova, Access::READ), None);
    assert_eq!(rig.snapshot(), before);
}

#[test]
fn dma_coherent_direct_memory_is_below_the_mask() {
    let mut rig = Rig::new(4, 4, false);
    let (narrow_dev, wide_dev) = (dev32(), dev());
    let narrow = rig.ctx(narrow_dev).alloc_coherent(100).unwrap();
    assert_eq!((narrow.phys_addr(), narrow.dma_addr()), (PhysAddr(LOW), DmaAddr(LOW)));
    let wide = rig.ctx(wide_dev).alloc_coherent(100).unwrap();
    assert_eq!(wide.dma_addr(), DmaAddr(HIGH), "high memory is used first when it is reachable");
    narrow.free(&mut rig.ctx(narrow_dev)).unwrap();
    wide.free(&mut rig.ctx(wide_dev)).unwrap();
    assert_eq!(rig.mem.blocks_in_use(), 0);
    let mut only_high = Rig::new(4, 0, false);
    let s = only_high.snapshot();
    assert_eq!(only_high.ctx(narrow_dev).alloc_coherent(1).unwrap_err(), DmaError::OutOfMemory);
    assert_eq!(only_high.snapshot(), s);
}

#[test]
fn dma_coherent_direct_frees_through_the_same_device() {
    let mut rig = Rig::new(4, 4, false);
    let d = dev32();
    let b = rig.ctx(d).alloc_coherent(3 * 4096 + 1).unwrap();
    assert_eq!(rig.mem.pages_in_use(), 4);
    b.free(&mut rig.ctx(d)).unwrap();
    assert_eq!(rig.mem.pages_in_use(), 0);
    assert!(take(&rig.log).is_empty(), "direct: nothing to flush");
}

#[test]
fn dma_coherent_non_coherent_device_gets_uncached_prepared_memory() {
    for iommu in [true, false] {
        let mut rig = Rig::new(8, 0, iommu);
        let d = dev().with_coherent(false);
        let b = rig.ctx(d).alloc_coherent(4096).unwrap();
        assert_eq!(rig.mem.mapping_of(b.phys_addr()), Some(CpuMapping::Uncached));
        assert_eq!(take(&rig.log), vec![Event::CleanInvalidate(b.as_ptr().as_ptr().addr(), 4096)]);
        if iommu {
            let t = rig.domain().table.lookup(Iova(b.dma_addr().raw())).unwrap();
            assert_eq!((t.prot.access(), t.prot.mem()), (Access::RW, MemType::NonCacheable));
        }
        b.free(&mut rig.ctx(d)).unwrap();
        assert_eq!(rig.mem.pages_in_use(), 0);
    }
}

#[test]
fn dma_coherent_errors_leave_state_unchanged() {
    let mut rig = Rig::new(16, 0, true);
    let d = dev();
    let keep = rig.ctx(d).alloc_coherent(4096).unwrap();
    let s = rig.snapshot();
    assert_eq!(rig.ctx(d).alloc_coherent(0).unwrap_err(), DmaError::ZeroSize);
    assert_eq!(rig.ctx(d).alloc_coherent(usize::MAX).unwrap_err(), DmaError::Overflow);
    rig.mem.set_limit(Some(rig.mem.pages_in_use()));
    assert_eq!(rig.ctx(d).alloc_coherent(1).unwrap_err(), DmaError::OutOfMemory);
    rig.mem.set_limit(None);
    // No table page for a 32-bit device's IOVA, far from `keep`'s tables.
    let pages = rig.domain().table_pages();
    rig.dom.as_mut().unwrap().table.allocator_mut().pool.set_limit(Some(pages));
    assert_eq!(
        rig.ctx(dev32()).alloc_coherent(1).unwrap_err(),
        DmaError::PageTable(PgTableError::OutOfMemory)
    );
    rig.dom.as_mut().unwrap().table.allocator_mut().pool.set_limit(None);
    assert_eq!(rig.snapshot(), s);
    keep.free(&mut rig.ctx(d)).unwrap();

    // IOVA space: a window of four pages.
    let mut rig = Rig::new(16, 0, true);
    rig.dom = Some(Domain::with_window(&rig.log, Iova(4 * G4K)..Iova(8 * G4K)));
    let full = rig.ctx(d).alloc_coherent(4 * 4096).unwrap();
    let s = rig.snapshot();
    assert_eq!(
        rig.ctx(d).alloc_coherent(1).unwrap_err(),
        DmaError::IovaExhausted { pages: 1, limit: DmaLimit::NONE }
    );
    assert_eq!(rig.snapshot(), s);
    full.free(&mut rig.ctx(d)).unwrap();
    // A mask below the whole window.
    rig.dom = Some(Domain::with_window(&rig.log, Iova(HIGH)..Iova(HIGH + 16 * G4K)));
    let s = rig.snapshot();
    assert!(matches!(
        rig.ctx(dev32()).alloc_coherent(1).unwrap_err(),
        DmaError::Iova(IovaError::LimitBelowWindow { .. })
    ));
    assert_eq!(rig.snapshot(), s);
}

#[test]
fn dma_coherent_cpu_access_is_bounds_checked() {
    let mut rig = Rig::new(4, 0, false);
    let d = dev();
    let mut b = rig.ctx(d).alloc_coherent(4096).unwrap();
    assert_eq!(b.write(4090, &[0; 10]), Err(DmaError::OutOfBounds { offset: 4090, len: 10, size: 4096 }));
    assert!(matches!(b.read(usize::MAX, &mut [0; 2]), Err(DmaError::OutOfBounds { .. })));
    b.write(4086, &[1; 10]).unwrap();
    assert_eq!(rig.read(PhysAddr(b.phys_addr().raw() + 4086), 10), vec![1; 10]);
    b.free(&mut rig.ctx(d)).unwrap();
}

// ---- streaming mappings behind an IOMMU ----

#[test]
fn dma_stream_iommu_to_device_is_read_only_at_the_buffer_offset() {
    let mut rig = Rig::new(16, 0, true);
    let d = dev();
    let before = rig.snapshot();
    let page = rig.buffer(2, DmaLimit::NONE, 0);
    let buf = PhysAddr(page.raw() + 0x234);
    rig.write(buf, &pattern(1, 5000));
    let s = rig.map::<ToDevice>(d, buf, 5000).unwrap();
    let a = s.dma_addr();
    assert_eq!(a.raw() % G4K, 0x234);
    assert!(!s.is_bounced());
    assert_eq!((s.size(), s.phys_addr()), (5000, buf));
    assert_eq!(rig.dev_read(a, 5000).unwrap(), pattern(1, 5000));
    assert!(!rig.dev_write(a, b"x"), "ToDevice: the device may not write");
    assert_eq!(rig.translate(DmaAddr(a.raw() - 0x234 + 2 * G4K), Access::READ), None);
    s.unmap(&mut rig.ctx(d)).unwrap();
    assert_flush_then_frees(&take(&rig.log), span(DmaAddr(a.raw() - 0x234), 2 * G4K));
    assert_eq!(rig.translate(a, Access::READ), None);
    rig.mem.free_pages(page, 2);
    assert_eq!(rig.snapshot(), before);
}

#[test]
fn dma_stream_iommu_from_device_is_write_only() {
    let mut rig = Rig::new(16, 0, true);
    let d = dev();
    let buf = rig.buffer(1, DmaLimit::NONE, 0);
    let s = rig.map::<FromDevice>(d, buf, 64).unwrap();
    assert!(rig.dev_read(s.dma_addr(), 1).is_none(), "stage 2 encodes write-only");
    assert!(rig.dev_write(s.dma_addr(), &pattern(2, 64)));
    s.sync_for_cpu(&rig.ctx(d)).unwrap();
    assert_eq!(rig.read(buf, 64), pattern(2, 64));
    let b = rig.map::<Bidirectional>(d, buf, 64).unwrap();
    assert!(rig.dev_read(b.dma_addr(), 64).is_some() && rig.dev_write(b.dma_addr(), b"rw"));
    b.unmap(&mut rig.ctx(d)).unwrap();
    s.unmap(&mut rig.ctx(d)).unwrap();
}

#[test]
fn dma_iovas_respect_the_device_mask() {
    let mut rig = Rig::new(16, 0, true);
    let (wide, narrow) = (dev(), dev32());
    let buf = rig.buffer(1, DmaLimit::NONE, 0);
    let w = rig.map::<ToDevice>(wide, buf, 4096).unwrap();
    let n = rig.map::<ToDevice>(narrow, buf, 4096).unwrap();
    assert!(w.dma_addr().raw() >= 1 << 32, "top-down: a 64-bit device gets the top of the window");
    assert!(n.dma_addr().raw() + 4095 <= 0xffff_ffff);
    let c = rig.ctx(narrow).alloc_coherent(3 * 4096).unwrap();
    assert!(c.dma_addr().raw() + 3 * 4096 - 1 <= 0xffff_ffff);
    // Both mappings of the same page translate to it.
    assert_eq!(rig.translate(w.dma_addr(), Access::READ), rig.translate(n.dma_addr(), Access::READ));
    c.free(&mut rig.ctx(narrow)).unwrap();
    n.unmap(&mut rig.ctx(narrow)).unwrap();
    w.unmap(&mut rig.ctx(wide)).unwrap();
}

#[test]
fn dma_unmap_flushes_before_table_pages_and_the_iova_are_reused() {
    let mut rig = Rig::new(80, 0, true);
    let d = dev();
    // 64 pages: beyond the IOVA caches, so a free shows in the tree at once.
    let buf = rig.buffer(64, DmaLimit::NONE, 0);
    let s = rig.map::<Bidirectional>(d, buf, 64 * 4096).unwrap();
    let a = s.dma_addr();
    take(&rig.log);
    s.unmap(&mut rig.ctx(d)).unwrap();
    let ev = take(&rig.log);
    // The flush saw the IOVA still allocated; table pages were freed after.
    assert_flush_then_frees(&ev, span(a, 64 * G4K));
    assert!(ev.len() >= 2, "the mapping's tables are freed: {ev:?}");
    assert!(rig.domain().iova.with_tree(|t| t.find(Iova(a.raw())).is_none()), "IOVA back after the flush");
}

#[test]
fn dma_flush_failure_releases_nothing_until_a_retry_succeeds() {
    let mut rig = Rig::new(16, 0, true);
    let d = dev();
    let buf = rig.buffer(1, DmaLimit::NONE, 0);
    let before = rig.snapshot();
    let s = rig.map::<ToDevice>(d, buf, 100).unwrap();
    let a = s.dma_addr();
    let mapped = rig.snapshot();
    rig.domain().flusher.fail.set(1);
    let pending = match s.unmap(&mut rig.ctx(d)) {
        Err(TeardownError::Unflushed(e, p)) => {
            assert_eq!(e.what, "CMD_SYNC");
            p
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(rig.translate(a, Access::READ), None, "the translation is gone");
    let now = rig.snapshot();
    assert_eq!((now.iovas, now.table_pages), (mapped.iovas, mapped.table_pages), "nothing released");
    assert_eq!(pending.gather().ranges(), &[span(DmaAddr(a.raw() & !0xfff), G4K)]);
    assert!(take(&rig.log).is_empty());
    // Another device cannot finish it; a second failure hands it back again.
    let pending = pending.retry(&mut rig.ctx(dev())).unwrap_err().into_handle().unwrap();
    rig.domain().flusher.fail.set(1);
    let pending = match pending.retry(&mut rig.ctx(d)) {
        Err(TeardownError::Unflushed(_, p)) => p,
        other => panic!("{other:?}"),
    };
    pending.retry(&mut rig.ctx(d)).unwrap();
    assert_eq!(rig.snapshot(), before);

    // A coherent buffer keeps its memory until the flush completes.
    let c = rig.ctx(d).alloc_coherent(4096).unwrap();
    rig.domain().flusher.fail.set(1);
    let err = c.free(&mut rig.ctx(d)).unwrap_err();
    assert_eq!(err.error(), DmaError::FlushFailed(iommu_common::dma::FlushError { what: "CMD_SYNC" }));
    assert_eq!(rig.mem.pages_in_use(), before.mem_pages + 1);
    let TeardownError::Unflushed(_, pending) = err else { panic!() };
    pending.retry(&mut rig.ctx(d)).unwrap();
    assert_eq!(rig.snapshot(), before);
}

#[test]
fn dma_stream_map_errors_leave_state_unchanged() {
    let mut rig = Rig::new(16, 0, true);
    let d = dev();
    let buf = rig.buffer(2, DmaLimit::NONE, 0);
    let keep = rig.map::<ToDevice>(d, buf, 10).unwrap();
    let s = rig.snapshot();
    assert_eq!(rig.map::<ToDevice>(d, buf, 0).unwrap_err(), DmaError::ZeroSize);
    assert_eq!(rig.map::<ToDevice>(d, PhysAddr(u64::MAX - 10), 100).unwrap_err(), DmaError::Overflow);
    assert_eq!(
        rig.map::<ToDevice>(d, PhysAddr(1 << 40), 4096).unwrap_err(),
        DmaError::PageTable(PgTableError::PaddrOutOfRange)
    );
    let pages = rig.domain().table_pages();
    rig.dom.as_mut().unwrap().table.allocator_mut().pool.set_limit(Some(pages));
    assert_eq!(
        rig.map::<ToDevice>(dev32(), buf, 10).unwrap_err(),
        DmaError::PageTable(PgTableError::OutOfMemory)
    );
    rig.dom.as_mut().unwrap().table.allocator_mut().pool.set_limit(None);
    // A non-coherent device needs CPU pointers for cache maintenance.
    assert_eq!(
        rig.map::<ToDevice>(d.with_coherent(false), PhysAddr(0x10_0000), 10).unwrap_err(),
        DmaError::NotMemory(PhysAddr(0x10_0000))
    );
    assert_eq!(rig.snapshot(), s);
    assert!(take(&rig.log).is_empty(), "no flush, no cache maintenance");
    keep.unmap(&mut rig.ctx(d)).unwrap();

    let mut rig = Rig::new(16, 0, true);
    rig.dom = Some(Domain::with_window(&rig.log, Iova(4 * G4K)..Iova(8 * G4K)));
    let buf = rig.buffer(4, DmaLimit::NONE, 0);
    let full = rig.map::<ToDevice>(d, buf, 4 * 4096).unwrap();
    let s = rig.snapshot();
    assert_eq!(
        rig.map::<ToDevice>(d, buf, 1).unwrap_err(),
        DmaError::IovaExhausted { pages: 1, limit: DmaLimit::NONE }
    );
    assert_eq!(rig.snapshot(), s);
    full.unmap(&mut rig.ctx(d)).unwrap();
}

// ---- direct devices and bouncing ----

#[test]
fn dma_direct_device_uses_physical_addresses_within_its_mask() {
    let mut rig = Rig::new(4, 4, false);
    let d = dev32();
    let low = rig.buffer(1, DmaLimit::bits(32), 0);
    let high = rig.buffer(1, DmaLimit::NONE, 0);
    let s = rig.map::<ToDevice>(d, PhysAddr(low.raw() + 8), 100).unwrap();
    assert_eq!(s.dma_addr(), DmaAddr(low.raw() + 8));
    assert!(!s.is_bounced());
    let before = rig.snapshot();
    assert_eq!(
        rig.map::<FromDevice>(d, high, 100).unwrap_err(),
        DmaError::MaskViolation { last: HIGH + 99, limit: DmaLimit::bits(32) }
    );
    assert_eq!(rig.snapshot(), before);
    s.unmap(&mut rig.ctx(d)).unwrap();
    assert!(take(&rig.log).is_empty());
}

#[test]
fn dma_bounce_to_device_and_back_preserves_data_and_guards() {
    let mut rig = Rig::new(8, 8, false).with_pool(4);
    let d = dev32();
    let pool_pa = rig.pool().phys_addr().raw();
    let page = rig.buffer(2, DmaLimit::NONE, 0xee);
    let buf = PhysAddr(page.raw() + 100);
    let guards = |rig: &Rig| {
        let all = rig.read(page, 2 * 4096);
        all[..100].iter().chain(&all[3100..]).all(|&b| b == 0xee)
    };
    rig.write(buf, &pattern(3, 3000));

    let s = rig.map::<ToDevice>(d, buf, 3000).unwrap();
    assert!(s.is_bounced());
    let a = s.dma_addr();
    assert!(a.raw() >= pool_pa && a.raw() + 3000 <= pool_pa + 4 * G4K);
    assert_eq!(rig.dev_read(a, 3000).unwrap(), pattern(3, 3000));
    rig.write(buf, &pattern(4, 3000));
    s.sync_for_device(&rig.ctx(d)).unwrap();
    assert_eq!(rig.dev_read(a, 3000).unwrap(), pattern(4, 3000));
    s.unmap(&mut rig.ctx(d)).unwrap();
    assert_eq!(rig.pool().slots_in_use(), 0);
    assert_eq!(rig.read(buf, 3000), pattern(4, 3000));
    assert!(guards(&rig));

    let s = rig.map::<FromDevice>(d, buf, 3000).unwrap();
    assert!(rig.dev_write(s.dma_addr(), &pattern(5, 3000)));
    assert_eq!(rig.read(buf, 3000), pattern(4, 3000), "not before the sync");
    s.sync_for_cpu(&rig.ctx(d)).unwrap();
    assert_eq!(rig.read(buf, 3000), pattern(5, 3000));
    assert!(rig.dev_write(s.dma_addr(), &pattern(6, 3000)));
    s.unmap(&mut rig.ctx(d)).unwrap();
    assert_eq!(rig.read(buf, 3000), pattern(6, 3000));
    assert!(guards(&rig));

    // A device that writes only part of a FromDevice buffer leaves the rest
    // as it was: the slots were filled from the buffer at map time.
    let s = rig.map::<FromDevice>(d, buf, 3000).unwrap();
    assert!(rig.dev_write(s.dma_addr(), b"head"));
    s.unmap(&mut rig.ctx(d)).unwrap();
    let mut expect = pattern(6, 3000);
    expect[..4].copy_from_slice(b"head");
    assert_eq!(rig.read(buf, 3000), expect);

    let s = rig.map::<Bidirectional>(d, buf, 3000).unwrap();
    assert_eq!(rig.dev_read(s.dma_addr(), 3000).unwrap(), expect);
    assert!(rig.dev_write(s.dma_addr(), &pattern(7, 3000)));
    s.sync_for_cpu(&rig.ctx(d)).unwrap();
    assert_eq!(rig.read(buf, 3000), pattern(7, 3000));
    s.unmap(&mut rig.ctx(d)).unwrap();
    assert!(guards(&rig));
    assert_eq!(rig.pool().slots_in_use(), 0);
}

#[test]
fn dma_bounced_mapping_never_writes_outside_its_slot_run() {
    let mut rig = Rig::new(8, 8, false).with_pool(2);
    let d = dev32();
    let pool_pa = rig.pool().phys_addr();
    rig.write(pool_pa, &[0x5a; 2 * 4096]);
    let page = rig.buffer(2, DmaLimit::NONE, 0xee);
    let (buf_a, buf_b) = (PhysAddr(page.raw() + 8), PhysAddr(page.raw() + 4096));
    rig.write(buf_a, &pattern(1, 100));
    rig.write(buf_b, &pattern(2, 2048));
    let a = rig.map::<Bidirectional>(d, buf_a, 100).unwrap();
    let b = rig.map::<Bidirectional>(d, buf_b, 2048).unwrap();
    assert_eq!(a.dma_addr(), DmaAddr(pool_pa.raw()));
    assert_eq!(b.dma_addr(), DmaAddr(pool_pa.raw() + 2048));
    let pool = rig.read(pool_pa, 2 * 4096);
    assert_eq!(&pool[..100], &pattern(1, 100)[..]);
    assert!(pool[100..2048].iter().all(|&x| x == 0x5a), "copy-in stops at the length");
    assert_eq!(&pool[2048..4096], &pattern(2, 2048)[..]);
    assert!(pool[4096..].iter().all(|&x| x == 0x5a));
    assert!(rig.dev_write(a.dma_addr(), &pattern(3, 100)));
    a.unmap(&mut rig.ctx(d)).unwrap();
    let mem = rig.read(page, 2 * 4096);
    assert!(mem[..8].iter().all(|&x| x == 0xee) && mem[108..4096].iter().all(|&x| x == 0xee));
    assert_eq!(&mem[8..108], &pattern(3, 100)[..]);
    assert_eq!(&rig.read(pool_pa, 4096)[2048..], &pattern(2, 2048)[..], "the neighbour run is untouched");
    b.unmap(&mut rig.ctx(d)).unwrap();
}

#[test]
fn dma_bounce_pool_exhaustion_is_an_error_that_changes_nothing() {
    let mut rig = Rig::new(8, 8, false).with_pool(1);
    let d = dev32();
    let buf = rig.buffer(2, DmaLimit::NONE, 0);
    let full = rig.map::<ToDevice>(d, buf, 4096).unwrap();
    let s = rig.snapshot();
    assert_eq!(rig.map::<ToDevice>(d, buf, 1).unwrap_err(), DmaError::BouncePoolExhausted { slots: 1 });
    assert_eq!(rig.snapshot(), s);
    full.unmap(&mut rig.ctx(d)).unwrap();
    // A list whose second entry does not fit gives the first entry's run back.
    let s = rig.snapshot();
    let list = [(buf, 2048), (PhysAddr(buf.raw() + 4096), 4096)];
    assert_eq!(rig.map_sg::<ToDevice>(d, &list).unwrap_err(), DmaError::BouncePoolExhausted { slots: 2 });
    assert_eq!(rig.snapshot(), s);
}

#[test]
fn dma_forced_bounce_needs_a_pool_and_an_iommu_never_bounces() {
    let d = DmaDevice::new(DmaLimit::NONE).with_forced_bounce(true);
    assert!(d.forces_bounce());
    let mut rig = Rig::new(0, 8, false);
    let buf = rig.buffer(1, DmaLimit::NONE, 0);
    assert_eq!(rig.map::<ToDevice>(d, buf, 10).unwrap_err(), DmaError::NoBouncePool);
    let mut rig = rig.with_pool(1);
    let s = rig.map::<ToDevice>(d, buf, 10).unwrap();
    assert!(s.is_bounced() && s.dma_addr() != DmaAddr(buf.raw()));
    s.unmap(&mut rig.ctx(d)).unwrap();
    let mut rig = Rig::new(8, 0, true);
    let buf = rig.buffer(1, DmaLimit::NONE, 0);
    let s = rig.map::<ToDevice>(d, buf, 10).unwrap();
    assert!(!s.is_bounced());
    s.unmap(&mut rig.ctx(d)).unwrap();
}

#[test]
fn dma_buffer_inside_the_bounce_pool_is_refused() {
    let mut rig = Rig::new(8, 8, false).with_pool(1);
    let pa = PhysAddr(rig.pool().phys_addr().raw() + 100);
    assert_eq!(rig.map::<ToDevice>(dev(), pa, 10).unwrap_err(), DmaError::OverlapsBouncePool(pa));
}

// ---- cache maintenance for non-coherent devices ----

#[test]
fn dma_non_coherent_stream_cache_sequences() {
    let mut rig = Rig::new(8, 0, false);
    let d = dev().with_coherent(false);
    let page = rig.buffer(1, DmaLimit::NONE, 0);
    let buf = PhysAddr(page.raw() + 64);
    let (va, n) = (rig.va(buf), 512);
    take(&rig.log);
    let clean = vec![Event::Clean(va, n)];
    let inval = vec![Event::Invalidate(va, n)];

    let s = rig.map::<ToDevice>(d, buf, n).unwrap();
    assert_eq!(take(&rig.log), clean);
    s.sync_for_device(&rig.ctx(d)).unwrap();
    assert_eq!(take(&rig.log), clean);
    s.unmap(&mut rig.ctx(d)).unwrap();
    assert_eq!(take(&rig.log), vec![], "ToDevice: nothing to hand back");

    let s = rig.map::<FromDevice>(d, buf, n).unwrap();
    assert_eq!(take(&rig.log), clean, "FromDevice is cleaned too (no dirty line evicted over DMA data)");
    s.sync_for_cpu(&rig.ctx(d)).unwrap();
    assert_eq!(take(&rig.log), inval);
    s.unmap(&mut rig.ctx(d)).unwrap();
    assert_eq!(take(&rig.log), inval);

    let s = rig.map::<Bidirectional>(d, buf, n).unwrap();
    assert_eq!(take(&rig.log), clean);
    s.sync_for_device(&rig.ctx(d)).unwrap();
    assert_eq!(take(&rig.log), clean);
    s.sync_for_cpu(&rig.ctx(d)).unwrap();
    assert_eq!(take(&rig.log), inval);
    s.unmap(&mut rig.ctx(d)).unwrap();
    assert_eq!(take(&rig.log), inval);
}

#[test]
fn dma_non_coherent_iommu_invalidates_before_the_flush() {
    let mut rig = Rig::new(8, 0, true);
    let d = dev().with_coherent(false);
    let buf = rig.buffer(1, DmaLimit::NONE, 0);
    let va = rig.va(buf);
    take(&rig.log);
    let s = rig.map::<FromDevice>(d, buf, 4096).unwrap();
    assert_eq!(take(&rig.log), vec![Event::Clean(va, 4096)]);
    let t = rig.domain().table.lookup(Iova(s.dma_addr().raw())).unwrap();
    assert_eq!((t.prot.access(), t.prot.mem()), (Access::WRITE, MemType::NonCacheable));
    let a = s.dma_addr();
    s.unmap(&mut rig.ctx(d)).unwrap();
    let ev = take(&rig.log);
    assert_eq!(ev[0], Event::Invalidate(va, 4096));
    assert_flush_then_frees(&ev[1..], span(a, G4K));
}

#[test]
fn dma_non_coherent_bounced_maintenance_targets_the_slots() {
    let mut rig = Rig::new(8, 8, false).with_pool(1);
    let d = dev32().with_coherent(false);
    let buf = rig.buffer(1, DmaLimit::NONE, 0);
    take(&rig.log);
    let s = rig.map::<FromDevice>(d, buf, 300).unwrap();
    let slot = rig.va(PhysAddr(s.dma_addr().raw()));
    assert_eq!(take(&rig.log), vec![Event::Clean(slot, 300)]);
    assert!(rig.dev_write(s.dma_addr(), &pattern(9, 300)));
    s.sync_for_cpu(&rig.ctx(d)).unwrap();
    assert_eq!(take(&rig.log), vec![Event::Invalidate(slot, 300)]);
    assert_eq!(rig.read(buf, 300), pattern(9, 300));
    s.unmap(&mut rig.ctx(d)).unwrap();
    assert_eq!(take(&rig.log), vec![Event::Invalidate(slot, 300)]);
}

// ---- scatter-gather ----

#[test]
fn dma_sg_behind_an_iommu_is_one_contiguous_span() {
    let mut rig = Rig::new(32, 0, true);
    let d = dev();
    let before = rig.snapshot();
    let base = rig.buffer(16, DmaLimit::NONE, 0).raw();
    let list =
        [(PhysAddr(base + 0x100), 0xf00), (PhysAddr(base + 0x3000), 0x2000), (PhysAddr(base + 0x8000), 0x80)];
    let mut expect = Vec::new();
    for (i, &(pa, len)) in list.iter().enumerate() {
        rig.write(pa, &pattern(i as u8, len));
        expect.extend(pattern(i as u8, len));
    }
    let sg = rig.map_sg::<ToDevice>(d, &list).unwrap();
    assert_eq!(sg.segments().len(), 1);
    let seg = sg.segments()[0];
    assert_eq!((seg.len, seg.addr.raw() % G4K, sg.size(), sg.pieces()), (0x2f80, 0x100, 0x2f80, 3));
    assert_eq!(rig.dev_read(seg.addr, seg.len).unwrap(), expect);
    sg.unmap(&mut rig.ctx(d)).unwrap();
    let ev = take(&rig.log);
    assert_flush_then_frees(&ev, span(DmaAddr(seg.addr.raw() - 0x100), 4 * G4K));
    rig.mem.free_pages(PhysAddr(base), 16);
    assert_eq!(rig.snapshot(), before);
}

#[test]
fn dma_sg_merges_physically_contiguous_entries() {
    let mut rig = Rig::new(8, 0, false);
    let d = dev();
    let b = rig.buffer(4, DmaLimit::NONE, 0).raw();
    let list = [(PhysAddr(b), 0x800), (PhysAddr(b + 0x800), 0x800), (PhysAddr(b + 0x2000), 0x10)];
    let sg = rig.map_sg::<Bidirectional>(d, &list).unwrap();
    assert_eq!(sg.pieces(), 2);
    assert_eq!(
        sg.segments(),
        &[DmaSegment { addr: DmaAddr(b), len: 0x1000 }, DmaSegment { addr: DmaAddr(b + 0x2000), len: 0x10 }]
    );
    sg.unmap(&mut rig.ctx(d)).unwrap();

    // Behind an IOMMU, merging makes an unaligned junction acceptable.
    let mut rig = Rig::new(8, 0, true);
    let b = rig.buffer(4, DmaLimit::NONE, 0).raw();
    let sg =
        rig.map_sg::<FromDevice>(d, &[(PhysAddr(b + 0x10), 0x7f0), (PhysAddr(b + 0x800), 0x900)]).unwrap();
    assert_eq!(sg.segments().len(), 1);
    assert_eq!(sg.segments()[0].len, 0x10f0);
    sg.unmap(&mut rig.ctx(d)).unwrap();
}

#[test]
fn dma_sg_entries_that_break_the_span_are_refused() {
    let mut rig = Rig::new(8, 0, true);
    let d = dev();
    let b = rig.buffer(4, DmaLimit::NONE, 0).raw();
    let s = rig.snapshot();
    let end_unaligned = [(PhysAddr(b), 0x800), (PhysAddr(b + 0x1000), 0x1000)];
    assert_eq!(rig.map_sg::<ToDevice>(d, &end_unaligned).unwrap_err(), DmaError::SgUnaligned { index: 0 });
    let start_unaligned = [(PhysAddr(b), 0x1000), (PhysAddr(b + 0x2000), 8), (PhysAddr(b + 0x3010), 0x10)];
    assert_eq!(rig.map_sg::<ToDevice>(d, &start_unaligned).unwrap_err(), DmaError::SgUnaligned { index: 1 });
    assert_eq!(rig.map_sg::<ToDevice>(d, &[]).unwrap_err(), DmaError::ZeroSize);
    assert_eq!(rig.map_sg::<ToDevice>(d, &[(PhysAddr(b), 0)]).unwrap_err(), DmaError::ZeroSize);
    assert_eq!(rig.snapshot(), s);
    assert!(take(&rig.log).is_empty());
    // A direct device takes the same list as two segments.
    let mut direct = Rig::new(8, 0, false);
    let b = direct.buffer(4, DmaLimit::NONE, 0).raw();
    let sg = direct.map_sg::<ToDevice>(d, &[(PhysAddr(b), 0x800), (PhysAddr(b + 0x1000), 0x1000)]).unwrap();
    assert_eq!(sg.segments().len(), 2);
    sg.unmap(&mut direct.ctx(d)).unwrap();
}

#[test]
fn dma_sg_direct_bounces_only_what_the_device_cannot_reach() {
    let mut rig = Rig::new(8, 8, false).with_pool(2);
    let d = dev32();
    let lo = rig.buffer(1, DmaLimit::bits(32), 0);
    let hi = rig.buffer(1, DmaLimit::NONE, 0);
    assert!(hi.raw() >= HIGH && lo.raw() < HIGH);
    let sg = rig.map_sg::<FromDevice>(d, &[(lo, 100), (hi, 200)]).unwrap();
    let segs = sg.segments().to_vec();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0], DmaSegment { addr: DmaAddr(lo.raw()), len: 100 });
    assert!(segs[1].addr.raw() < HIGH && segs[1].len == 200, "bounced");
    assert!(rig.dev_write(segs[0].addr, &pattern(1, 100)) && rig.dev_write(segs[1].addr, &pattern(2, 200)));
    sg.sync_for_cpu(&rig.ctx(d)).unwrap();
    assert_eq!((rig.read(lo, 100), rig.read(hi, 200)), (pattern(1, 100), pattern(2, 200)));
    sg.unmap(&mut rig.ctx(d)).unwrap();
    assert_eq!(rig.pool().slots_in_use(), 0);
}

#[test]
fn dma_sg_failure_midway_is_rolled_back_with_a_flush() {
    let mut rig = Rig::new(8, 0, true);
    let d = dev();
    let b = rig.buffer(1, DmaLimit::NONE, 0);
    let s = rig.snapshot();
    // The second entry lies beyond the table's 40-bit output size.
    let list = [(b, 4096), (PhysAddr(1 << 40), 4096)];
    assert_eq!(
        rig.map_sg::<ToDevice>(d, &list).unwrap_err(),
        DmaError::PageTable(PgTableError::PaddrOutOfRange)
    );
    let ev = take(&rig.log);
    assert!(
        matches!(ev.first(), Some(Event::Flush(r)) if r.len() == 1 && r[0].0.len() == G4K && r[0].1),
        "{ev:?}"
    );
    assert_eq!(rig.snapshot(), s);
}

// ---- contexts and handles ----

#[test]
fn dma_foreign_handles_are_refused_and_given_back() {
    let mut rig = Rig::new(16, 0, true);
    let (a, b) = (dev(), dev());
    let buf = rig.ctx(a).alloc_coherent(10).unwrap();
    let s = rig.snapshot();
    let err = buf.free(&mut rig.ctx(b)).unwrap_err();
    assert_eq!(err.error(), DmaError::ForeignHandle);
    let buf = err.into_handle().unwrap();
    let page = rig.buffer(1, DmaLimit::NONE, 7);
    let st = rig.map::<FromDevice>(a, page, 100).unwrap();
    let mapped = rig.snapshot();
    assert_eq!(st.sync_for_cpu(&rig.ctx(b)), Err(DmaError::ForeignHandle));
    let st = st.unmap(&mut rig.ctx(b)).unwrap_err().into_handle().unwrap();
    // The same device through a context without its IOMMU domain.
    let direct = DmaContext::direct(a, &mut rig.mem, &rig.cache);
    let mut direct = direct;
    let st = st.unmap(&mut direct).unwrap_err().into_handle().unwrap();
    assert_eq!(rig.snapshot(), mapped);
    let copy = a; // a copy of a device is the same device
    st.unmap(&mut rig.ctx(copy)).unwrap();
    buf.free(&mut rig.ctx(a)).unwrap();
    assert_eq!(rig.snapshot().iovas, Some(0));
    assert_eq!(s.iovas, Some(1));
}

#[test]
fn dma_context_checks_the_domain_geometry() {
    let log: Log = Default::default();
    let mut mem = iommu_common::dma::HostMemory::new();
    let cache = RecordingCache(log.clone());
    let mut dom = Domain::new(&log);
    let r = IommuDomainRef { cpu: 1, ..dom.domain_ref() };
    assert_eq!(
        DmaContext::behind_iommu(dev(), &mut mem, &cache, r).unwrap_err(),
        DmaError::Iova(IovaError::CpuOutOfRange { cpu: 1, cpus: 1 })
    );
    // 4 KiB IOVAs over a 64 KiB-granule table cannot be mapped.
    let mut table64 =
        Vmsav8Table::new(Stage2, TableConfig::new(Granule::Size64K, 40, 40), PoolAllocator::new(8, 65536))
            .unwrap();
    let iova = IovaAllocator::new(RangeAllocator::new(Iova(0)..Iova(1 << 30), G4K).unwrap(), 1).unwrap();
    let r = IommuDomainRef { table: &mut table64, iova: &iova, flusher: &mut dom.flusher, cpu: 0 };
    assert_eq!(
        DmaContext::behind_iommu(dev(), &mut mem, &cache, r).unwrap_err(),
        DmaError::GranuleMismatch { iova: 4096, table: 65536 }
    );
    let _ = BouncePool::new(&mut mem, 4096, DmaLimit::NONE).unwrap_err();
}
