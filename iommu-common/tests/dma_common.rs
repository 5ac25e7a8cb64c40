//! Fakes and a simulated device shared by the DMA API tests (`dma_paths.rs`,
//! `dma_props.rs` include it as a module). Built on its own it has no tests.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::Arc;

use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::dma::{
    CacheMaintenance, DmaAddr, DmaContext, DmaDevice, DmaMemory, FlushError, HostMemory, IommuDomainRef,
    IotlbFlusher,
};
use iommu_common::iova::{IovaAllocator, RangeAllocator, RangeKind};
use iommu_common::pgtable::vmsav8::{Granule, S2Table, Stage2, TableConfig, Vmsav8Table};
use iommu_common::pgtable::{
    Access, IoPageTable, IotlbGather, IovaRange, PageAllocator, PoolAllocator, TablePage,
};

/// Where test RAM lives: "high" above 4 GiB, "low" below.
pub(crate) const HIGH: u64 = 0x1_0000_0000;
pub(crate) const LOW: u64 = 0x8000_0000;
pub(crate) const G4K: u64 = 4096;

/// What happened, in order: cache maintenance, IOTLB flushes, table frees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Clean(usize, usize),
    Invalidate(usize, usize),
    CleanInvalidate(usize, usize),
    /// The ranges flushed, and whether each one's IOVA was still allocated in
    /// the tree when the flush ran.
    Flush(Vec<(IovaRange, bool)>),
    FreeTable(PhysAddr),
}

pub(crate) type Log = Rc<RefCell<Vec<Event>>>;

pub(crate) fn take(log: &Log) -> Vec<Event> {
    std::mem::take(&mut *log.borrow_mut())
}

/// Records cache maintenance.
pub(crate) struct RecordingCache(pub Log);

impl CacheMaintenance for RecordingCache {
    fn clean(&self, va: NonNull<u8>, len: usize) {
        self.0.borrow_mut().push(Event::Clean(va.as_ptr().addr(), len));
    }

    unsafe fn invalidate(&self, va: NonNull<u8>, len: usize) {
        self.0.borrow_mut().push(Event::Invalidate(va.as_ptr().addr(), len));
    }

    fn clean_invalidate(&self, va: NonNull<u8>, len: usize) {
        self.0.borrow_mut().push(Event::CleanInvalidate(va.as_ptr().addr(), len));
    }
}

/// Records flushes; fails the next `fail` of them.
pub(crate) struct RecordingFlusher {
    pub(crate) log: Log,
    pub(crate) iova: Arc<IovaAllocator>,
    pub(crate) fail: Rc<Cell<u32>>,
}

impl IotlbFlusher for RecordingFlusher {
    fn flush(&mut self, gather: &IotlbGather) -> Result<(), FlushError> {
        if self.fail.get() > 0 {
            self.fail.set(self.fail.get() - 1);
            return Err(FlushError { what: "CMD_SYNC" });
        }
        let ranges = gather
            .ranges()
            .iter()
            .map(|r| {
                let live =
                    self.iova.with_tree(|t| matches!(t.find(r.start), Some((_, RangeKind::Allocated))));
                (*r, live)
            })
            .collect();
        self.log.borrow_mut().push(Event::Flush(ranges));
        Ok(())
    }
}

/// A page allocator that records frees.
pub(crate) struct LoggingPool {
    pub(crate) pool: PoolAllocator,
    pub(crate) log: Log,
}

// SAFETY: Forwards to `PoolAllocator`, which upholds the contract.
unsafe impl PageAllocator for LoggingPool {
    fn alloc_table(&mut self, size: usize) -> Option<TablePage> {
        self.pool.alloc_table(size)
    }

    unsafe fn free_table(&mut self, page: TablePage, size: usize) {
        self.log.borrow_mut().push(Event::FreeTable(page.pa));
        // SAFETY: The caller's guarantees are passed on unchanged.
        unsafe { self.pool.free_table(page, size) }
    }

    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        self.pool.phys_to_virt(pa)
    }
}

/// An IOMMU domain: a stage-2 table (4 KiB granule, 40-bit input and output)
/// and an IOVA allocator over `[4 KiB, 64 GiB)`.
pub(crate) struct Domain {
    pub(crate) table: S2Table<LoggingPool>,
    pub(crate) iova: Arc<IovaAllocator>,
    pub(crate) flusher: RecordingFlusher,
}

impl Domain {
    pub(crate) fn new(log: &Log) -> Self {
        Self::with_window(log, Iova(G4K)..Iova(1 << 36))
    }

    pub(crate) fn with_window(log: &Log, window: Range<Iova>) -> Self {
        let pool = LoggingPool { pool: PoolAllocator::new(64, 4096), log: log.clone() };
        let table = Vmsav8Table::new(Stage2, TableConfig::new(Granule::Size4K, 40, 40), pool).unwrap();
        let iova = Arc::new(IovaAllocator::new(RangeAllocator::new(window, G4K).unwrap(), 1).unwrap());
        let flusher = RecordingFlusher { log: log.clone(), iova: iova.clone(), fail: Rc::new(Cell::new(0)) };
        Self { table, iova, flusher }
    }

    pub(crate) fn domain_ref(&mut self) -> IommuDomainRef<'_> {
        IommuDomainRef { table: &mut self.table, iova: &self.iova, flusher: &mut self.flusher, cpu: 0 }
    }

    /// IOVA ranges live in the tree once the caches are emptied.
    pub(crate) fn iovas_live(&self) -> usize {
        self.iova.purge();
        self.iova.with_tree(|t| t.allocated())
    }

    /// Table pages in use.
    pub(crate) fn table_pages(&self) -> usize {
        self.table.allocator().pool.pages_in_use()
    }
}

/// Everything a context borrows, owned in one place.
pub(crate) struct Rig {
    pub(crate) log: Log,
    pub(crate) mem: HostMemory,
    pub(crate) cache: RecordingCache,
    pub(crate) dom: Option<Domain>,
    pub(crate) pool: Option<iommu_common::dma::BouncePool>,
    /// Test buffers, freed on drop.
    pub(crate) buffers: Vec<(PhysAddr, usize)>,
}

impl Rig {
    /// `high` pages at 4 GiB (allocated from first) and `low` pages at 2 GiB.
    pub(crate) fn new(high: usize, low: usize, iommu: bool) -> Self {
        let log: Log = Rc::default();
        let mut mem = HostMemory::new();
        if high > 0 {
            mem.add_region(high, Some(PhysAddr(HIGH)));
        }
        if low > 0 {
            mem.add_region(low, Some(PhysAddr(LOW)));
        }
        let dom = iommu.then(|| Domain::new(&log));
        Self { cache: RecordingCache(log.clone()), log, mem, dom, pool: None, buffers: Vec::new() }
    }

    /// Adds a bounce pool of `pages` pages below 4 GiB.
    pub(crate) fn with_pool(mut self, pages: usize) -> Self {
        let pool = iommu_common::dma::BouncePool::new(
            &mut self.mem,
            pages * 4096,
            iommu_common::iova::DmaLimit::bits(32),
        )
        .unwrap();
        self.pool = Some(pool);
        self
    }

    pub(crate) fn ctx(&mut self, dev: DmaDevice) -> DmaContext<'_> {
        let ctx = match self.dom.as_mut() {
            Some(d) => DmaContext::behind_iommu(dev, &mut self.mem, &self.cache, d.domain_ref()).unwrap(),
            None => DmaContext::direct(dev, &mut self.mem, &self.cache),
        };
        match self.pool.as_mut() {
            Some(p) => ctx.with_bounce_pool(p),
            None => ctx,
        }
    }

    /// Allocates a test buffer of `pages` pages (high memory first), filled
    /// with `fill`.
    pub(crate) fn buffer(&mut self, pages: usize, limit: iommu_common::iova::DmaLimit, fill: u8) -> PhysAddr {
        let b = self.mem.alloc_pages(pages, 4096, limit, iommu_common::dma::CpuMapping::Cached).unwrap();
        assert!(self.mem.write_phys(b.pa, &vec![fill; pages * 4096]));
        self.buffers.push((b.pa, pages));
        b.pa
    }

    pub(crate) fn va(&self, pa: PhysAddr) -> usize {
        self.mem.phys_to_virt(pa, 1).unwrap().as_ptr().addr()
    }

    pub(crate) fn read(&self, pa: PhysAddr, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        assert!(self.mem.read_phys(pa, &mut v));
        v
    }

    pub(crate) fn write(&self, pa: PhysAddr, data: &[u8]) {
        assert!(self.mem.write_phys(pa, data));
    }

    /// Where the device's access to `addr` lands, if it is allowed `access`.
    pub(crate) fn translate(&self, addr: DmaAddr, access: Access) -> Option<PhysAddr> {
        match &self.dom {
            None => Some(PhysAddr(addr.raw())),
            Some(d) => {
                let t = d.table.lookup(Iova(addr.raw()))?;
                t.prot.access().contains(access).then_some(t.paddr)
            }
        }
    }

    /// Splits `[addr, addr + len)` at 4 KiB boundaries (the smallest IOMMU
    /// page): `(device address, offset, length)` of each chunk.
    fn chunks(addr: DmaAddr, len: usize) -> impl Iterator<Item = (DmaAddr, usize, usize)> {
        let mut off = 0;
        std::iter::from_fn(move || {
            (off < len).then(|| {
                let a = addr.raw() + off as u64;
                let n = (G4K - a % G4K).min((len - off) as u64) as usize;
                off += n;
                (DmaAddr(a), off - n, n)
            })
        })
    }

    /// The device reads `len` bytes at `addr`, through the IOMMU page by
    /// page; `None` if any byte is not readable.
    pub(crate) fn dev_read(&self, addr: DmaAddr, len: usize) -> Option<Vec<u8>> {
        let mut out = vec![0; len];
        for (a, off, n) in Self::chunks(addr, len) {
            let pa = self.translate(a, Access::READ)?;
            self.mem.read_phys(pa, &mut out[off..off + n]).then_some(())?;
        }
        Some(out)
    }

    /// The device writes `data` at `addr`; `false` (after writing what it
    /// could) if any byte is not writable.
    pub(crate) fn dev_write(&self, addr: DmaAddr, data: &[u8]) -> bool {
        Self::chunks(addr, data.len()).all(|(a, off, n)| {
            self.translate(a, Access::WRITE).is_some_and(|pa| self.mem.write_phys(pa, &data[off..off + n]))
        })
    }

    /// Counters that a failed operation must leave as they were.
    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            mem_pages: self.mem.pages_in_use(),
            mem_blocks: self.mem.blocks_in_use(),
            iovas: self.dom.as_ref().map(Domain::iovas_live),
            table_pages: self.dom.as_ref().map(Domain::table_pages),
            mapped: self.dom.as_ref().map(|d| d.table.stats().mapped_bytes),
            slots: self.pool.as_ref().map(|p| p.slots_in_use()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) mem_pages: usize,
    pub(crate) mem_blocks: usize,
    pub(crate) iovas: Option<usize>,
    pub(crate) table_pages: Option<usize>,
    pub(crate) mapped: Option<u64>,
    pub(crate) slots: Option<usize>,
}

/// A byte pattern that differs per position and seed.
pub(crate) fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Give the pool's memory back so `HostMemory` can free its regions
        // (a test that leaks slots leaks the regions too, which Miri reports).
        if let Some(p) = self.pool.take() {
            let _ = p.destroy(&mut self.mem);
        }
        for &(pa, pages) in &self.buffers {
            // `false` for a buffer the test freed itself.
            self.mem.free_pages(pa, pages);
        }
    }
}

impl Rig {
    /// `map_single` of test memory.
    pub(crate) fn map<D: iommu_common::dma::Direction>(
        &mut self,
        dev: DmaDevice,
        pa: PhysAddr,
        len: usize,
    ) -> Result<iommu_common::dma::DmaStream<D>, iommu_common::dma::DmaError> {
        // SAFETY: Test buffers are rig memory that only the test uses, through
        // `HostMemory`'s raw copies (no references), in the order the
        // mapping's direction allows.
        unsafe { self.ctx(dev).map_single::<D>(pa, len) }
    }

    /// `map_sg` of test memory.
    pub(crate) fn map_sg<D: iommu_common::dma::Direction>(
        &mut self,
        dev: DmaDevice,
        list: &[(PhysAddr, usize)],
    ) -> Result<iommu_common::dma::DmaSg<D>, iommu_common::dma::DmaError> {
        // SAFETY: As in `map`.
        unsafe { self.ctx(dev).map_sg::<D>(list) }
    }

    pub(crate) fn domain(&self) -> &Domain {
        self.dom.as_ref().expect("rig without IOMMU")
    }

    pub(crate) fn pool(&self) -> &iommu_common::dma::BouncePool {
        self.pool.as_ref().expect("rig without bounce pool")
    }
}
