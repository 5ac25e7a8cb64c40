//! The memory the IOMMU reads and writes (device table, command buffer,
//! event log, completion stores), behind one seam.
//!
//! Unlike the SMMU's `DmaFrames`, which hands out pointers the driver then
//! dereferences, [`DmaMemory`] also does the accesses: the driver stays free
//! of `unsafe` and host tests run it over a plain array ([`ArrayMemory`]),
//! while the test kernel implements it with volatile accesses to its
//! identity-mapped arena.

use iommu_common::addr::PhysAddr;

/// Provider of IOMMU-visible memory, accessed as little-endian 64-bit words
/// at physical addresses.
///
/// Implementations must keep `read_u64`/`write_u64` sound for any address
/// (refuse, by panicking, addresses outside what they handed out), make every
/// access a single untorn 64-bit volatile access, and hand out memory the
/// IOMMU reaches at the returned physical address.
pub trait DmaMemory {
    /// Allocates `size` zeroed bytes aligned to `align` (a power of two);
    /// never freed (the structures live as long as the IOMMU).
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<PhysAddr>;

    /// Reads the word at `pa` (8-byte aligned).
    fn read_u64(&self, pa: PhysAddr) -> u64;

    /// Writes the word at `pa` (8-byte aligned) as one 64-bit store.
    fn write_u64(&self, pa: PhysAddr, v: u64);
}

impl<M: DmaMemory + ?Sized> DmaMemory for &mut M {
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<PhysAddr> {
        (**self).alloc_zeroed(size, align)
    }

    fn read_u64(&self, pa: PhysAddr) -> u64 {
        (**self).read_u64(pa)
    }

    fn write_u64(&self, pa: PhysAddr, v: u64) {
        (**self).write_u64(pa, v)
    }
}

/// A bump allocator over an array of `N` words at a pretend physical
/// `base`: host tests, and any caller that wants the driver's memory in one
/// inspectable place.
#[derive(Debug)]
pub struct ArrayMemory<const N: usize> {
    base: PhysAddr,
    words: [core::cell::Cell<u64>; N],
    next: usize,
}

impl<const N: usize> ArrayMemory<N> {
    /// `N` zeroed words at `base` (4 KiB aligned).
    pub fn new(base: PhysAddr) -> Self {
        assert!(base.0 % 4096 == 0, "ArrayMemory base must be page aligned");
        Self { base, words: core::array::from_fn(|_| core::cell::Cell::new(0)), next: 0 }
    }

    fn index(&self, pa: PhysAddr) -> usize {
        let off = pa.0.checked_sub(self.base.0).expect("address below ArrayMemory");
        assert!(off % 8 == 0, "unaligned word access at {:#x}", pa.0);
        let i = usize::try_from(off / 8).expect("address beyond ArrayMemory");
        assert!(i < N, "address {:#x} beyond ArrayMemory", pa.0);
        i
    }
}

impl<const N: usize> DmaMemory for ArrayMemory<N> {
    fn alloc_zeroed(&mut self, size: usize, align: usize) -> Option<PhysAddr> {
        let align = align.max(8);
        let start = (self.next * 8).next_multiple_of(align);
        let end = start.checked_add(size)?.next_multiple_of(8);
        if end > N * 8 {
            return None;
        }
        self.next = end / 8;
        Some(PhysAddr(self.base.0 + start as u64))
    }

    fn read_u64(&self, pa: PhysAddr) -> u64 {
        self.words[self.index(pa)].get()
    }

    fn write_u64(&self, pa: PhysAddr, v: u64) {
        self.words[self.index(pa)].set(v)
    }
}
