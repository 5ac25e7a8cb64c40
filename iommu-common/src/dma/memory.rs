//! Where DMA memory comes from, and how physical addresses become CPU
//! pointers.

use core::ptr::NonNull;

use crate::addr::PhysAddr;
use crate::iova::DmaLimit;

/// The unit of [`DmaMemory`] allocations: 4 KiB.
pub const PAGE_SIZE: usize = 4096;

/// A block of DMA memory as both sides see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaPages {
    /// Physical address of the first byte.
    pub pa: PhysAddr,
    /// Where the CPU accesses the same byte.
    pub va: NonNull<u8>,
}

/// How the CPU maps memory it shares with a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CpuMapping {
    /// Normal write-back memory: for coherent devices, and for memory the DMA
    /// API maintains by hand (streaming buffers, the bounce pool).
    Cached,
    /// Normal non-cacheable memory: coherent allocations for a device that
    /// does not snoop caches (Linux remaps these uncached too).
    Uncached,
}

/// Physical memory the DMA API allocates from, and the translation between
/// physical addresses and CPU pointers.
///
/// In the hypervisor, RAM is identity mapped, so the CPU pointer of a physical
/// address is that address; on the host, [`HostMemory`](super::HostMemory)
/// simulates RAM with heap blocks.
///
/// # Safety
///
/// The DMA API reads and writes through the pointers this trait returns, so an
/// implementation must guarantee:
/// - a block from [`alloc_pages`](Self::alloc_pages)`(count, align, limit,
///   mapping)` is `count * PAGE_SIZE` bytes valid for reads and writes at `va`,
///   is the physical memory `[pa, pa + count * PAGE_SIZE)`, has `pa` aligned to
///   `align`, ends at or below `limit.last()`, is mapped by the CPU as
///   `mapping` asks, and is used by nothing else until it is freed; it stays
///   valid until then even if the `DmaMemory` value is dropped (a drop with
///   live blocks leaks them);
/// - [`free_pages`](Self::free_pages) frees only a live block it handed out,
///   with the same `count`, and returns `false` without changing anything for
///   any other argument (so a block can be neither freed twice nor into the
///   wrong memory);
/// - if [`phys_to_virt`](Self::phys_to_virt)`(pa, len)` returns `Some(va)`,
///   `[va, va + len)` is the CPU mapping of `[pa, pa + len)`, valid for reads
///   and writes (who may use that memory is the business of the DMA API's
///   callers, see [`DmaContext::map_single`](super::DmaContext::map_single)).
pub unsafe trait DmaMemory {
    /// Allocates `count` pages (`count > 0`) starting at a multiple of `align`
    /// (a power of two, at least [`PAGE_SIZE`]) and ending at or below
    /// `limit.last()`, mapped by the CPU as `mapping` says. The contents are
    /// unspecified.
    fn alloc_pages(
        &mut self,
        count: usize,
        align: usize,
        limit: DmaLimit,
        mapping: CpuMapping,
    ) -> Option<DmaPages>;

    /// Frees the block of `count` pages at `pa`. Returns `false`, and does
    /// nothing, if that is not a live block of this memory.
    fn free_pages(&mut self, pa: PhysAddr, count: usize) -> bool;

    /// The CPU pointer of `[pa, pa + len)`, if that range is RAM this memory
    /// maps in one piece.
    fn phys_to_virt(&self, pa: PhysAddr, len: usize) -> Option<NonNull<u8>>;

    /// The physical address of the byte at `va`, if it is RAM this memory maps.
    fn virt_to_phys(&self, va: NonNull<u8>) -> Option<PhysAddr>;
}
