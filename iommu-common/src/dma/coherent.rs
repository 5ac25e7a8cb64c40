//! Coherent allocations (Linux's `dma_alloc_coherent`): memory the CPU and
//! the device share for the life of the buffer, such as descriptor rings.

use core::ptr::{self, NonNull};

use super::context::IovaSpan;
use super::teardown::Step;
use super::{CpuMapping, DmaAddr, DmaContext, DmaError, DmaPages, TeardownError, PAGE_SIZE};
use crate::addr::PhysAddr;
use crate::iova::DmaLimit;
use crate::pgtable::{MemType, Prot};

impl DmaContext<'_> {
    /// Allocates `size` bytes of zeroed memory that the device and the CPU
    /// can both use at any time, without syncs.
    ///
    /// The memory is whole pages (IOVA granules behind an IOMMU), aligned to
    /// that unit. Behind an IOMMU it is mapped read/write at an IOVA below the
    /// device's mask; a direct device gets memory below its mask. For a
    /// device that does not snoop caches, the memory is mapped uncached by the
    /// CPU ([`CpuMapping::Uncached`]) and cleaned and invalidated out of the
    /// caches before it is zeroed.
    ///
    /// Give it back with [`DmaCoherent::free`]; a dropped buffer is leaked.
    pub fn alloc_coherent(&mut self, size: usize) -> Result<DmaCoherent, DmaError> {
        if size == 0 {
            return Err(DmaError::ZeroSize);
        }
        let coherent = self.device.is_coherent();
        let (unit, limit) = match &self.iommu {
            Some(i) => (i.granule as usize, DmaLimit::bits(i.dom.table.oas())),
            None => (PAGE_SIZE, self.device.limit()),
        };
        let bytes = size.checked_next_multiple_of(unit).ok_or(DmaError::Overflow)?;
        let count = bytes / PAGE_SIZE;
        let mapping = if coherent { CpuMapping::Cached } else { CpuMapping::Uncached };
        let pages = self.memory.alloc_pages(count, unit, limit, mapping).ok_or(DmaError::OutOfMemory)?;
        if self.iommu.is_none() {
            let reach = self.device.reaches(pages.pa.raw(), bytes as u64);
            if let Some(e) = match reach {
                Some(Ok(_)) => None,
                Some(Err(last)) => Some(DmaError::MaskViolation { last, limit }),
                None => Some(DmaError::Overflow),
            } {
                self.memory.free_pages(pages.pa, count);
                return Err(e);
            }
        }
        if !coherent {
            // Evict whatever a cacheable alias left, before writing through
            // the uncached mapping (Linux's `arch_dma_prep_coherent`).
            self.cache.clean_invalidate(pages.va, bytes);
        }
        // SAFETY: The block is `bytes` bytes valid for writes, and ours alone
        // until it is freed (`DmaMemory` contract).
        unsafe { pages.va.as_ptr().write_bytes(0, bytes) };
        let (dma_addr, iova) = match self.iommu.as_mut() {
            None => (DmaAddr(pages.pa.raw()), None),
            Some(iommu) => {
                let g = iommu.granule;
                let alloc = match iommu.dom.iova.alloc(iommu.dom.cpu, bytes as u64 / g, self.device.limit()) {
                    Ok(a) => a,
                    Err(e) => {
                        self.memory.free_pages(pages.pa, count);
                        return Err(e.into());
                    }
                };
                let mem = if coherent { MemType::WriteBack } else { MemType::NonCacheable };
                if let Err(e) =
                    iommu.dom.table.map(alloc.iova(), pages.pa, bytes as u64, Prot::RW.with_mem(mem))
                {
                    // Never mapped: nothing to flush.
                    let _ = iommu.dom.iova.free(iommu.dom.cpu, alloc);
                    self.memory.free_pages(pages.pa, count);
                    return Err(e.into());
                }
                (DmaAddr(alloc.iova().raw()), Some(IovaSpan { alloc, mapped: bytes as u64 }))
            }
        };
        Ok(DmaCoherent { device: self.device.id(), pages, count, size, dma_addr, iova })
    }
}

/// A coherent DMA buffer (from [`DmaContext::alloc_coherent`]): its device
/// address, and CPU access through bounds-checked copies or a raw pointer.
///
/// It owns its memory and its IOVA range. It has no `Drop`: give it back
/// with [`free`](Self::free), which can fail and says so; a dropped buffer is
/// leaked (memory and IOVA stay allocated and mapped), never freed under the
/// device.
#[must_use = "a coherent buffer that is not freed is leaked"]
#[derive(Debug)]
pub struct DmaCoherent {
    device: u32,
    pages: DmaPages,
    count: usize,
    size: usize,
    dma_addr: DmaAddr,
    iova: Option<IovaSpan>,
}

// SAFETY: The buffer owns its pages exclusively (the `DmaMemory` contract) and
// reaches them only through `&self` (reads) and `&mut self` (writes), like a
// `Box<[u8]>`; nothing in it is tied to a thread.
unsafe impl Send for DmaCoherent {}

impl DmaCoherent {
    /// The address the device uses.
    pub fn dma_addr(&self) -> DmaAddr {
        self.dma_addr
    }

    /// The physical address of the memory.
    pub fn phys_addr(&self) -> PhysAddr {
        self.pages.pa
    }

    /// The size asked for, in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// The CPU pointer, for direct access (descriptor rings are read with
    /// volatile loads). Valid for [`size`](Self::size) bytes until the buffer
    /// is freed; the device may write it at any time.
    pub fn as_ptr(&self) -> NonNull<u8> {
        self.pages.va
    }

    /// Copies `buf.len()` bytes at `offset` into `buf`.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), DmaError> {
        self.check(offset, buf.len())?;
        // SAFETY: `[offset, offset + len)` lies inside the block this buffer
        // owns (checked), which is valid for reads; `copy` tolerates a `buf`
        // that a caller built over the buffer through `as_ptr`.
        unsafe { ptr::copy(self.pages.va.as_ptr().add(offset), buf.as_mut_ptr(), buf.len()) };
        Ok(())
    }

    /// Copies `data` to `offset`.
    pub fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), DmaError> {
        self.check(offset, data.len())?;
        // SAFETY: As in `read`, for writes.
        unsafe { ptr::copy(data.as_ptr(), self.pages.va.as_ptr().add(offset), data.len()) };
        Ok(())
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), DmaError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(DmaError::OutOfBounds { offset, len, size: self.size }),
        }
    }

    /// Unmaps the buffer (behind an IOMMU: unmap, flush, free table pages,
    /// return the IOVA range) and frees its memory, through a context of the
    /// same device.
    #[allow(clippy::result_large_err)] // See `TeardownError`.
    pub fn free(mut self, ctx: &mut DmaContext<'_>) -> Result<(), TeardownError<Self>> {
        if let Err(e) = ctx.check_handle(self.device, self.iova.is_some(), &[]) {
            return Err(TeardownError::Refused(e, self));
        }
        let pages = (self.pages.pa, self.count);
        let unmapped = match self.iova.take() {
            None => false,
            Some(span) => match ctx.remove_span(self.device, span, Some(pages)) {
                Ok(()) => true,
                Err((Step::Refused(e), span)) => {
                    self.iova = span;
                    return Err(TeardownError::Refused(e, self));
                }
                Err((Step::Leaked(e), _)) => {
                    // Flushed: the memory may go back even so.
                    ctx.memory.free_pages(pages.0, pages.1);
                    return Err(TeardownError::Leaked(e));
                }
                Err((step, _)) => return Err(step.with(self)),
            },
        };
        if !ctx.memory.free_pages(pages.0, pages.1) {
            if unmapped {
                return Err(TeardownError::Leaked(DmaError::ForeignHandle));
            }
            return Err(TeardownError::Refused(DmaError::ForeignHandle, self));
        }
        Ok(())
    }
}
