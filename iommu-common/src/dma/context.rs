//! The context mappings are made and torn down in, and the mapping engine
//! that [`DmaStream`](super::DmaStream) and [`DmaSg`](super::DmaSg) share.

use core::fmt;
use core::ptr::NonNull;

use super::bounce::BounceRun;
use super::teardown::{PendingRelease, Step};
use super::{
    BouncePool, CacheMaintenance, DmaAddr, DmaDevice, DmaDirection, DmaError, DmaMemory, FlushError,
    IotlbFlusher, BOUNCE_SLOT_SIZE, PAGE_SIZE,
};
use crate::addr::{Iova, PhysAddr};
use crate::iova::{Allocation, IovaAllocator, IovaError};
use crate::pgtable::{IoPageTable, IotlbGather, MemType, Prot};

/// The parts of an IOMMU domain a device behind it needs, borrowed for the
/// life of a [`DmaContext`]: the page table its IOVAs are mapped in, the
/// allocator they come from (on behalf of CPU `cpu`), and the IOTLB
/// invalidation of the IOMMU driver.
pub struct IommuDomainRef<'a> {
    /// The domain's page table.
    pub table: &'a mut dyn IoPageTable,
    /// The domain's IOVA allocator.
    pub iova: &'a IovaAllocator,
    /// Invalidates the domain's IOTLB entries.
    pub flusher: &'a mut dyn IotlbFlusher,
    /// The CPU the caller runs on (for the IOVA allocator's caches).
    pub cpu: usize,
}

pub(crate) struct Iommu<'a> {
    pub(crate) dom: IommuDomainRef<'a>,
    /// The IOVA granule: what mappings are rounded to.
    pub(crate) granule: u64,
}

/// Everything the DMA API needs to map for one device, lent for a batch of
/// operations: the device's description, the memory, the platform's cache
/// maintenance, the device's IOMMU domain if it sits behind one, and
/// optionally a bounce pool.
///
/// Handles made through a context are synced and torn down through a context
/// of the same device built over the same memory, domain and pool. Another
/// device's handle is refused ([`DmaError::ForeignHandle`]); a context over
/// other resources is refused where they can tell (the IOVA allocator, the
/// bounce pool, the memory), never obeyed.
pub struct DmaContext<'a> {
    pub(crate) device: DmaDevice,
    pub(crate) memory: &'a mut dyn DmaMemory,
    pub(crate) cache: &'a dyn CacheMaintenance,
    pub(crate) iommu: Option<Iommu<'a>>,
    pub(crate) bounce: Option<&'a mut BouncePool>,
}

/// One physically contiguous piece of a streaming mapping.
#[derive(Debug)]
pub(crate) struct Part {
    /// The caller's buffer.
    pub(crate) pa: PhysAddr,
    pub(crate) len: usize,
    /// Where the device sees it.
    pub(crate) dev: DmaAddr,
    /// The bounce slots standing in for it, if bounced.
    pub(crate) bounce: Option<BounceRun>,
}

impl Part {
    pub(crate) const fn new(pa: PhysAddr, len: usize) -> Self {
        Self { pa, len, dev: DmaAddr(0), bounce: None }
    }
}

/// An IOVA allocation and the part of it mapped (from its start).
#[derive(Debug)]
pub(crate) struct IovaSpan {
    pub(crate) alloc: Allocation,
    pub(crate) mapped: u64,
}

/// How removing an IOVA span failed.
#[allow(clippy::large_enum_variant)] // See `TeardownError`.
enum SpanError {
    /// Nothing changed.
    Refused(DmaError, IovaSpan),
    /// Unmapped, not flushed: nothing released.
    Unflushed(FlushError, IotlbGather, Allocation),
    /// Unmapped and flushed, but something could not be given back.
    Leaked(DmaError),
}

impl<'a> DmaContext<'a> {
    /// A context for a device without an IOMMU: its DMA addresses are
    /// physical addresses, which must lie within its mask.
    pub fn direct(device: DmaDevice, memory: &'a mut dyn DmaMemory, cache: &'a dyn CacheMaintenance) -> Self {
        Self { device, memory, cache, iommu: None, bounce: None }
    }

    /// A context for a device behind an IOMMU domain: its DMA addresses are
    /// IOVAs from `domain.iova`, below its mask, mapped in `domain.table`.
    ///
    /// Fails if `domain.cpu` is not a CPU of the allocator, or if the IOVA
    /// granule is not a multiple of the table's smallest page and of
    /// [`PAGE_SIZE`] ([`DmaError::GranuleMismatch`]).
    pub fn behind_iommu(
        device: DmaDevice,
        memory: &'a mut dyn DmaMemory,
        cache: &'a dyn CacheMaintenance,
        domain: IommuDomainRef<'a>,
    ) -> Result<Self, DmaError> {
        let cpus = domain.iova.cpus();
        if domain.cpu >= cpus {
            return Err(DmaError::Iova(IovaError::CpuOutOfRange { cpu: domain.cpu, cpus }));
        }
        let sizes = domain.table.page_sizes();
        let granule = domain.iova.granule();
        let table = if sizes == 0 { 0 } else { 1u64 << sizes.trailing_zeros() };
        if table == 0 || granule % table != 0 || granule % PAGE_SIZE as u64 != 0 {
            return Err(DmaError::GranuleMismatch { iova: granule, table });
        }
        Ok(Self { device, memory, cache, iommu: Some(Iommu { dom: domain, granule }), bounce: None })
    }

    /// Adds a bounce pool, used for direct devices' streaming buffers they
    /// cannot reach (or all of them, if the device forces bouncing).
    pub fn with_bounce_pool(self, pool: &'a mut BouncePool) -> Self {
        Self { bounce: Some(pool), ..self }
    }

    /// The device.
    pub fn device(&self) -> &DmaDevice {
        &self.device
    }

    /// The IOVA granule, if the device is behind an IOMMU.
    pub fn iova_granule(&self) -> Option<u64> {
        self.iommu.as_ref().map(|i| i.granule)
    }

    /// The bounce pool, if any.
    pub fn bounce_pool(&self) -> Option<&BouncePool> {
        self.bounce.as_deref()
    }

    // ---- the engine shared by streaming and scatter-gather mappings ----

    /// Makes `parts` reachable by the device in direction `dir`; fills in
    /// each part's device address. All or nothing.
    pub(crate) fn map_parts(
        &mut self,
        parts: &mut [Part],
        dir: DmaDirection,
    ) -> Result<Option<IovaSpan>, DmaError> {
        self.check_buffers(parts)?;
        let span = if self.iommu.is_some() {
            Some(self.map_iommu(parts, dir)?)
        } else {
            self.map_direct(parts)?;
            None
        };
        if !self.device.is_coherent() {
            // Clean for every direction (Linux/arm64 `arch_sync_dma_for_device`):
            // for `FromDevice` too, so that no dirty line the CPU holds is
            // evicted over what the device writes.
            if let Err(e) = self.clean_parts(parts) {
                let undo = self.undo(parts, span);
                return Err(undo.unwrap_or(e));
            }
        }
        Ok(span)
    }

    /// Refuses empty, wrapping, pool-overlapping and (where the CPU will
    /// touch them) untranslatable buffers before anything is allocated.
    fn check_buffers(&self, parts: &[Part]) -> Result<(), DmaError> {
        for p in parts {
            if p.len == 0 {
                return Err(DmaError::ZeroSize);
            }
            let reach = self.device.reaches(p.pa.raw(), p.len as u64).ok_or(DmaError::Overflow)?;
            if self.bounce.as_ref().is_some_and(|b| b.overlaps(p.pa, p.len as u64)) {
                return Err(DmaError::OverlapsBouncePool(p.pa));
            }
            let may_bounce = self.iommu.is_none() && (reach.is_err() || self.device.forces_bounce());
            if (may_bounce || !self.device.is_coherent()) && self.memory.phys_to_virt(p.pa, p.len).is_none() {
                return Err(DmaError::NotMemory(p.pa));
            }
        }
        Ok(())
    }

    fn map_direct(&mut self, parts: &mut [Part]) -> Result<(), DmaError> {
        for i in 0..parts.len() {
            if let Err(e) = self.map_direct_part(&mut parts[i]) {
                self.release_runs(&mut parts[..i]);
                return Err(e);
            }
        }
        Ok(())
    }

    fn map_direct_part(&mut self, p: &mut Part) -> Result<(), DmaError> {
        let limit = self.device.limit();
        let reach = self.device.reaches(p.pa.raw(), p.len as u64).ok_or(DmaError::Overflow)?;
        if reach.is_ok() && !self.device.forces_bounce() {
            p.dev = DmaAddr(p.pa.raw());
            return Ok(());
        }
        let Some(pool) = self.bounce.as_deref_mut() else {
            return Err(match reach {
                Err(last) => DmaError::MaskViolation { last, limit },
                Ok(_) => DmaError::NoBouncePool,
            });
        };
        let src = self.memory.phys_to_virt(p.pa, p.len).ok_or(DmaError::NotMemory(p.pa))?;
        // Page-sized and larger mappings get page-aligned runs (as Linux's
        // swiotlb does), the rest one slot.
        let align = if p.len >= PAGE_SIZE { PAGE_SIZE } else { BOUNCE_SLOT_SIZE };
        let run = pool.alloc(p.len, align)?;
        let run_pa = pool.run_pa(&run);
        if let Err(last) = self.device.reaches(run_pa.raw(), p.len as u64).ok_or(DmaError::Overflow)? {
            // A pool made for a wider mask than this device's.
            pool.free(run)?;
            return Err(DmaError::MaskViolation { last, limit });
        }
        // Copy whatever the direction: for `FromDevice` too, so the device
        // cannot read what an earlier mapping left in the slots, and bytes it
        // does not write come back unchanged (Linux does the same since the
        // swiotlb information leak, CVE-2022-0854).
        // SAFETY: `src` is valid for reads of `p.len` bytes (`DmaMemory`
        // contract), and the caller of the map lent the buffer to the DMA API.
        unsafe { pool.copy_in(&run, src, p.len) }?;
        p.dev = DmaAddr(run_pa.raw());
        p.bounce = Some(run);
        Ok(())
    }

    fn map_iommu(&mut self, parts: &mut [Part], dir: DmaDirection) -> Result<IovaSpan, DmaError> {
        let coherent = self.device.is_coherent();
        let limit = self.device.limit();
        let Some(iommu) = self.iommu.as_mut() else { return Err(DmaError::ForeignHandle) };
        let g = iommu.granule;
        let mut span = 0u64;
        for p in parts.iter() {
            let (start, end) = granules(p, g)?;
            span = span.checked_add(end - start).ok_or(DmaError::Overflow)?;
        }
        let alloc = iommu.dom.iova.alloc(iommu.dom.cpu, span / g, limit)?;
        let prot = Prot::new(dir.access(), if coherent { MemType::WriteBack } else { MemType::NonCacheable });
        let base = alloc.iova().raw();
        let mut cursor = base;
        for p in parts.iter_mut() {
            let mapped = granules(p, g).and_then(|(start, end)| {
                iommu.dom.table.map(Iova(cursor), PhysAddr(start), end - start, prot)?;
                Ok((start, end))
            });
            let (start, end) = match mapped {
                Ok(r) => r,
                Err(e) => {
                    let undo = self.undo_span(IovaSpan { alloc, mapped: cursor - base });
                    return Err(undo.unwrap_or(e));
                }
            };
            p.dev = DmaAddr(cursor + (p.pa.raw() - start));
            cursor += end - start;
        }
        Ok(IovaSpan { alloc, mapped: span })
    }

    /// Undoes a successful `map_direct` or `map_iommu`; returns what went
    /// wrong undoing it, if anything.
    fn undo(&mut self, parts: &mut [Part], span: Option<IovaSpan>) -> Option<DmaError> {
        let runs = self.release_runs(parts);
        span.and_then(|s| self.undo_span(s)).or(runs)
    }

    /// Removes a span mapped by a map that is failing. What cannot be
    /// undone safely (the flush failed) is leaked.
    fn undo_span(&mut self, span: IovaSpan) -> Option<DmaError> {
        if span.mapped == 0 {
            let iommu = self.iommu.as_mut()?;
            return iommu.dom.iova.free(iommu.dom.cpu, span.alloc).err().map(DmaError::from);
        }
        match self.unmap_span(span) {
            Ok(()) => None,
            Err(SpanError::Refused(e, _)) | Err(SpanError::Leaked(e)) => Some(e),
            Err(SpanError::Unflushed(e, _, _)) => Some(DmaError::FlushFailed(e)),
        }
    }

    /// Unmaps a span, flushes the IOTLB, frees the unlinked table pages and
    /// returns the IOVA range, in that order.
    #[allow(clippy::result_large_err)] // See `TeardownError`.
    fn unmap_span(&mut self, span: IovaSpan) -> Result<(), SpanError> {
        let Some(iommu) = self.iommu.as_mut() else {
            return Err(SpanError::Refused(DmaError::ForeignHandle, span));
        };
        let mut gather = IotlbGather::new();
        if let Err(e) = iommu.dom.table.unmap(span.alloc.iova(), span.mapped, &mut gather) {
            // All or nothing: the table is as it was.
            return Err(SpanError::Refused(e.into(), span));
        }
        if let Err(e) = iommu.dom.flusher.flush(&gather) {
            return Err(SpanError::Unflushed(e, gather, span.alloc));
        }
        // Only now may table pages and the IOVA range be reused.
        if let Err(e) = iommu.dom.table.complete(&mut gather) {
            // The gather came from this table a moment ago; cannot happen.
            // Its table pages stay unfreed; the IOVA range is safe to reuse.
            let _ = iommu.dom.iova.free(iommu.dom.cpu, span.alloc);
            return Err(SpanError::Leaked(e.into()));
        }
        iommu.dom.iova.free(iommu.dom.cpu, span.alloc).map_err(|e| SpanError::Leaked(e.into()))
    }

    /// Gives bounce runs back to the pool; returns the last refusal.
    fn release_runs(&mut self, parts: &mut [Part]) -> Option<DmaError> {
        let mut err = None;
        for p in parts.iter_mut() {
            if let Some(run) = p.bounce.take() {
                let r = match self.bounce.as_deref_mut() {
                    Some(pool) => pool.free(run),
                    None => Err(DmaError::ForeignHandle),
                };
                err = r.err().or(err);
            }
        }
        err
    }

    /// The CPU pointer of the memory the device accesses for `p`: its bounce
    /// run, or the buffer itself.
    fn device_view(&self, p: &Part) -> Result<NonNull<u8>, DmaError> {
        match &p.bounce {
            Some(run) => self.bounce.as_deref().ok_or(DmaError::ForeignHandle)?.run_ptr(run),
            None => self.memory.phys_to_virt(p.pa, p.len).ok_or(DmaError::NotMemory(p.pa)),
        }
    }

    fn clean_parts(&self, parts: &[Part]) -> Result<(), DmaError> {
        for p in parts {
            self.cache.clean(self.device_view(p)?, p.len);
        }
        Ok(())
    }

    /// Whether the handle of `device`, mapped with or without an IOVA span,
    /// with these parts, can be used with this context.
    pub(crate) fn check_handle(&self, device: u32, has_span: bool, parts: &[Part]) -> Result<(), DmaError> {
        let pool_ok = |run: &BounceRun| self.bounce.as_ref().is_some_and(|b| b.owns(run));
        if device != self.device.id()
            || has_span != self.iommu.is_some()
            || !parts.iter().filter_map(|p| p.bounce.as_ref()).all(pool_ok)
        {
            return Err(DmaError::ForeignHandle);
        }
        Ok(())
    }

    /// Hands CPU writes to the device: copy into bounce runs, clean.
    pub(crate) fn sync_parts_for_device(&self, parts: &[Part]) -> Result<(), DmaError> {
        for p in parts {
            if let Some(run) = &p.bounce {
                let pool = self.bounce.as_deref().ok_or(DmaError::ForeignHandle)?;
                let src = self.memory.phys_to_virt(p.pa, p.len).ok_or(DmaError::NotMemory(p.pa))?;
                // SAFETY: `src` is valid for reads of `p.len` bytes (`DmaMemory`
                // contract); the map's caller lent the buffer to the DMA API.
                unsafe { pool.copy_in(run, src, p.len) }?;
            }
            if !self.device.is_coherent() {
                self.cache.clean(self.device_view(p)?, p.len);
            }
        }
        Ok(())
    }

    /// Hands device writes to the CPU: invalidate, copy out of bounce runs.
    pub(crate) fn sync_parts_for_cpu(&self, parts: &[Part]) -> Result<(), DmaError> {
        for p in parts {
            if !self.device.is_coherent() {
                let va = self.device_view(p)?;
                // SAFETY: The range is the device's side of a live mapping:
                // the map's caller lent it (and does not write it while the
                // device owns it), or it is a bounce run whose CPU writes were
                // cleaned when they were made.
                unsafe { self.cache.invalidate(va, p.len) };
            }
            if let Some(run) = &p.bounce {
                let pool = self.bounce.as_deref().ok_or(DmaError::ForeignHandle)?;
                let dst = self.memory.phys_to_virt(p.pa, p.len).ok_or(DmaError::NotMemory(p.pa))?;
                // SAFETY: `dst` is valid for writes of `p.len` bytes
                // (`DmaMemory` contract); the map's caller lent the buffer to
                // the DMA API and is not using it.
                unsafe { pool.copy_out(run, dst, p.len) }?;
            }
        }
        Ok(())
    }

    /// Tears a streaming mapping down: hand device writes to the CPU, remove
    /// the translation and flush, give the IOVA range and bounce runs back.
    /// On `Step::Refused`, `parts` and `span` are as they were.
    #[allow(clippy::result_large_err)] // See `TeardownError`.
    pub(crate) fn teardown(
        &mut self,
        device: u32,
        parts: &mut [Part],
        span: &mut Option<IovaSpan>,
        dir: DmaDirection,
    ) -> Result<(), Step> {
        self.check_handle(device, span.is_some(), parts).map_err(Step::Refused)?;
        if dir.device_writes() {
            self.sync_parts_for_cpu(parts).map_err(Step::Refused)?;
        }
        if let Some(s) = span.take() {
            self.remove_span(device, s, None).map_err(|(step, s)| {
                *span = s;
                step
            })?;
        }
        match self.release_runs(parts) {
            None => Ok(()),
            Some(e) => Err(Step::Leaked(e)),
        }
    }

    /// [`unmap_span`](Self::unmap_span) for a handle of `device`; on refusal
    /// the span comes back. `pages` are the handle's memory, released by the
    /// caller on success, kept by the pending release otherwise.
    #[allow(clippy::result_large_err)] // See `TeardownError`.
    pub(crate) fn remove_span(
        &mut self,
        device: u32,
        span: IovaSpan,
        pages: Option<(PhysAddr, usize)>,
    ) -> Result<(), (Step, Option<IovaSpan>)> {
        match self.unmap_span(span) {
            Ok(()) => Ok(()),
            Err(SpanError::Refused(e, s)) => Err((Step::Refused(e), Some(s))),
            Err(SpanError::Unflushed(e, gather, alloc)) => {
                Err((Step::Unflushed(e, PendingRelease::new(device, gather, alloc, pages)), None))
            }
            Err(SpanError::Leaked(e)) => Err((Step::Leaked(e), None)),
        }
    }
}

/// The granule-aligned physical range `[start, end)` holding `p`.
fn granules(p: &Part, g: u64) -> Result<(u64, u64), DmaError> {
    let start = p.pa.align_down(g).raw();
    let end = p.pa.checked_add(p.len as u64).and_then(|e| e.align_up(g)).map_err(|_| DmaError::Overflow)?;
    Ok((start, end.raw()))
}

impl fmt::Debug for DmaContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaContext")
            .field("device", &self.device)
            .field("iova_granule", &self.iova_granule())
            .field("bounce", &self.bounce)
            .finish_non_exhaustive()
    }
}
