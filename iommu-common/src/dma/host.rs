//! Simulated RAM for host tests and benchmarks.

use alloc::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr::{self, NonNull};

use super::{CpuMapping, DmaMemory, DmaPages, PAGE_SIZE};
use crate::addr::PhysAddr;
use crate::iova::DmaLimit;

/// Fill byte of freed pages, so that a use after free reads nonsense.
const POISON: u8 = 0xa5;

/// [`DmaMemory`] over heap blocks ("regions"), each placed at a chosen
/// physical address or at its own pointer value (an identity mapping, as in
/// the hypervisor). Choosing the address lets a test put memory below and
/// above 4 GiB whatever the host's heap addresses.
///
/// Allocations are first fit over the regions in the order they were added
/// (add the memory normal allocations should come from first; Linux keeps
/// `ZONE_DMA32` for when it is needed). It counts what is live, can be made to
/// fail ([`set_limit`](Self::set_limit)), records the CPU mapping each block
/// asked for, and reads and writes physical memory for a simulated device.
pub struct HostMemory {
    regions: Vec<Region>,
    /// Live blocks by physical address: `(pages, mapping)`.
    live: BTreeMap<u64, (usize, CpuMapping)>,
    pages_in_use: usize,
    limit: Option<usize>,
}

struct Region {
    pa: u64,
    base: NonNull<u8>,
    layout: Layout,
    used: Vec<bool>,
}

impl Region {
    fn size(&self) -> u64 {
        self.layout.size() as u64
    }

    /// The pointer to `[pa, pa + len)` if the region holds all of it.
    fn ptr(&self, pa: u64, len: u64) -> Option<NonNull<u8>> {
        let off = pa.checked_sub(self.pa)?;
        if off.checked_add(len)? > self.size() {
            return None;
        }
        // SAFETY: `off <= size`, so the result lies within (or one past) the
        // region's allocation.
        Some(unsafe { self.base.add(off as usize) })
    }
}

// SAFETY: The regions are heap blocks owned by this value alone.
unsafe impl Send for HostMemory {}

impl HostMemory {
    /// Memory with no regions.
    pub fn new() -> Self {
        Self { regions: Vec::new(), live: BTreeMap::new(), pages_in_use: 0, limit: None }
    }

    /// Adds a zeroed region of `pages` pages at physical address `at`
    /// (page aligned), or at its own address if `None`; returns where it is.
    ///
    /// # Panics
    ///
    /// If `pages` is zero, `at` is not page aligned, or the region would
    /// overlap another or wrap (a broken test set-up).
    pub fn add_region(&mut self, pages: usize, at: Option<PhysAddr>) -> PhysAddr {
        assert!(pages > 0, "empty region");
        let layout = Layout::from_size_align(pages * PAGE_SIZE, PAGE_SIZE).expect("region layout");
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let Some(base) = NonNull::new(raw) else { handle_alloc_error(layout) };
        let pa = at.map_or(base.as_ptr().addr() as u64, PhysAddr::raw);
        let size = layout.size() as u64;
        let fits = pa % PAGE_SIZE as u64 == 0
            && pa.checked_add(size).is_some()
            && self.regions.iter().all(|r| pa + size <= r.pa || r.pa + r.size() <= pa);
        if !fits {
            // SAFETY: Allocated just above with `layout`.
            unsafe { dealloc(raw, layout) };
            panic!("region at {pa:#x} unaligned or overlapping");
        }
        self.regions.push(Region { pa, base, layout, used: vec![false; pages] });
        PhysAddr(pa)
    }

    /// Pages allocated and not freed.
    pub fn pages_in_use(&self) -> usize {
        self.pages_in_use
    }

    /// Blocks allocated and not freed.
    pub fn blocks_in_use(&self) -> usize {
        self.live.len()
    }

    /// The CPU mapping the live block at `pa` was allocated with.
    pub fn mapping_of(&self, pa: PhysAddr) -> Option<CpuMapping> {
        self.live.get(&pa.raw()).map(|&(_, m)| m)
    }

    /// Makes allocations fail once `pages` pages are in use (`None`: only when
    /// memory is exhausted).
    pub fn set_limit(&mut self, pages: Option<usize>) {
        self.limit = pages;
    }

    /// Copies `buf.len()` bytes from physical address `pa` (as a device, or a
    /// test, reads memory). Returns `false` if that is not all RAM.
    pub fn read_phys(&self, pa: PhysAddr, buf: &mut [u8]) -> bool {
        let Some(src) = self.phys_to_virt(pa, buf.len()) else { return false };
        // SAFETY: `src` is valid for `buf.len()` bytes of a region; the region
        // is never borrowed as a reference, so the copy aliases nothing.
        unsafe { ptr::copy(src.as_ptr(), buf.as_mut_ptr(), buf.len()) };
        true
    }

    /// Copies `data` to physical address `pa` (as a device, or a test, writes
    /// memory). Returns `false` if that is not all RAM.
    pub fn write_phys(&self, pa: PhysAddr, data: &[u8]) -> bool {
        let Some(dst) = self.phys_to_virt(pa, data.len()) else { return false };
        // SAFETY: As in `read_phys`; regions are written only through raw
        // pointers, like a device's DMA.
        unsafe { ptr::copy(data.as_ptr(), dst.as_ptr(), data.len()) };
        true
    }

    fn find_free(&self, count: usize, align: u64, last: u64) -> Option<(usize, usize)> {
        for (i, r) in self.regions.iter().enumerate() {
            let pages = r.used.len();
            let mut start = 0;
            while start + count <= pages {
                let pa = r.pa + (start * PAGE_SIZE) as u64;
                let end = pa + (count * PAGE_SIZE) as u64 - 1;
                if end > last {
                    break;
                }
                if pa % align != 0 {
                    start += 1;
                    continue;
                }
                match r.used[start..start + count].iter().rposition(|&u| u) {
                    None => return Some((i, start)),
                    Some(busy) => start += busy + 1,
                }
            }
        }
        None
    }
}

impl Default for HostMemory {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: Blocks are disjoint page runs of one region, tracked in `used` and
// `live` so none is handed out twice, and `free_pages` accepts only a live
// block with its size. `pa` and `va` of a block are the same offset into the
// region; `phys_to_virt` answers only for ranges inside one region. Regions
// are freed only when no block is live.
unsafe impl DmaMemory for HostMemory {
    fn alloc_pages(
        &mut self,
        count: usize,
        align: usize,
        limit: DmaLimit,
        mapping: CpuMapping,
    ) -> Option<DmaPages> {
        if count == 0 || !align.is_power_of_two() || self.limit.is_some_and(|l| self.pages_in_use + count > l)
        {
            return None;
        }
        let (i, start) = self.find_free(count, align as u64, limit.last().raw())?;
        let r = &mut self.regions[i];
        let pa = r.pa + (start * PAGE_SIZE) as u64;
        let va = r.ptr(pa, (count * PAGE_SIZE) as u64)?;
        r.used[start..start + count].fill(true);
        self.live.insert(pa, (count, mapping));
        self.pages_in_use += count;
        Some(DmaPages { pa: PhysAddr(pa), va })
    }

    fn free_pages(&mut self, pa: PhysAddr, count: usize) -> bool {
        if self.live.get(&pa.raw()).is_none_or(|&(n, _)| n != count) {
            return false;
        }
        self.live.remove(&pa.raw());
        self.pages_in_use -= count;
        let len = (count * PAGE_SIZE) as u64;
        let r = self
            .regions
            .iter_mut()
            .find(|r| r.ptr(pa.raw(), len).is_some())
            .expect("live block outside regions");
        let start = ((pa.raw() - r.pa) as usize) / PAGE_SIZE;
        r.used[start..start + count].fill(false);
        let va = r.ptr(pa.raw(), len).expect("checked above");
        // SAFETY: The block is `len` bytes of the region, no longer handed out.
        unsafe { va.as_ptr().write_bytes(POISON, len as usize) };
        true
    }

    fn phys_to_virt(&self, pa: PhysAddr, len: usize) -> Option<NonNull<u8>> {
        self.regions.iter().find_map(|r| r.ptr(pa.raw(), len as u64))
    }

    fn virt_to_phys(&self, va: NonNull<u8>) -> Option<PhysAddr> {
        let addr = va.as_ptr().addr();
        self.regions.iter().find_map(|r| {
            let off = addr.checked_sub(r.base.as_ptr().addr())?;
            ((off as u64) < r.size()).then(|| PhysAddr(r.pa + off as u64))
        })
    }
}

impl Drop for HostMemory {
    fn drop(&mut self) {
        if !self.live.is_empty() {
            // Live blocks must stay valid (the `DmaMemory` contract): leak.
            return;
        }
        for r in &self.regions {
            // SAFETY: Allocated in `add_region` with `layout`; no block is live.
            unsafe { dealloc(r.base.as_ptr(), r.layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_host_memory_places_blocks_by_limit_and_alignment() {
        let mut m = HostMemory::new();
        let hi = m.add_region(8, Some(PhysAddr(0x1_0000_0000)));
        let lo = m.add_region(8, Some(PhysAddr(0x8000_0000)));
        let a = m.alloc_pages(1, PAGE_SIZE, DmaLimit::NONE, CpuMapping::Cached).unwrap();
        assert_eq!(a.pa, hi);
        let b = m.alloc_pages(2, 2 * PAGE_SIZE, DmaLimit::NONE, CpuMapping::Uncached).unwrap();
        assert_eq!(b.pa, PhysAddr(0x1_0000_2000));
        let c = m.alloc_pages(1, PAGE_SIZE, DmaLimit::bits(32), CpuMapping::Cached).unwrap();
        assert_eq!(c.pa, lo);
        assert_eq!(m.mapping_of(b.pa), Some(CpuMapping::Uncached));
        assert_eq!(m.virt_to_phys(b.va), Some(b.pa));
        assert_eq!(m.phys_to_virt(b.pa, 2 * PAGE_SIZE), Some(b.va));
        assert_eq!(m.phys_to_virt(PhysAddr(0x1_0000_7fff), 2), None, "crosses the region end");
        assert!(m.write_phys(PhysAddr(0x1_0000_2001), b"dma"));
        let mut out = [0; 3];
        assert!(m.read_phys(PhysAddr(0x1_0000_2001), &mut out));
        assert_eq!(&out, b"dma");
        assert_eq!((m.pages_in_use(), m.blocks_in_use()), (4, 3));
        assert!(!m.free_pages(b.pa, 1), "wrong size");
        assert!(!m.free_pages(PhysAddr(0x1_0000_3000), 1), "not a block start");
        assert!(m.free_pages(b.pa, 2));
        assert!(!m.free_pages(b.pa, 2), "double free");
        assert!(m.free_pages(a.pa, 1) && m.free_pages(c.pa, 1));
        assert_eq!(m.pages_in_use(), 0);
    }

    #[test]
    fn dma_host_memory_limit_and_exhaustion() {
        let mut m = HostMemory::new();
        m.add_region(2, None);
        m.set_limit(Some(1));
        let a = m.alloc_pages(1, PAGE_SIZE, DmaLimit::NONE, CpuMapping::Cached).unwrap();
        assert!(m.alloc_pages(1, PAGE_SIZE, DmaLimit::NONE, CpuMapping::Cached).is_none());
        m.set_limit(None);
        let b = m.alloc_pages(1, PAGE_SIZE, DmaLimit::NONE, CpuMapping::Cached).unwrap();
        assert!(m.alloc_pages(1, PAGE_SIZE, DmaLimit::NONE, CpuMapping::Cached).is_none());
        assert_eq!(m.virt_to_phys(a.va), Some(a.pa), "identity: pa is the pointer value");
        assert_eq!(a.pa.raw(), a.va.as_ptr().addr() as u64);
        assert!(m.free_pages(a.pa, 1) && m.free_pages(b.pa, 1));
    }
}
