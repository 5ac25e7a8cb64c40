//! Scatter-gather mappings (Linux's `dma_map_sg`): a list of physical ranges
//! lent to the device together. How entries merge is described on
//! [`DmaContext::map_sg`].

use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use super::context::{IovaSpan, Part};
use super::{DeviceReads, DeviceWrites, Direction, DmaAddr, DmaContext, DmaError, TeardownError};
use crate::addr::PhysAddr;

/// A device-visible piece of a scatter-gather mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DmaSegment {
    /// The address the device uses.
    pub addr: DmaAddr,
    /// Length in bytes.
    pub len: usize,
}

impl DmaContext<'_> {
    /// Lends the ranges `(pa, len)` of `list` to the device in direction `D`
    /// and returns the mapping with its device-visible
    /// [`segments`](DmaSg::segments), in list order.
    ///
    /// Entries that are physically contiguous (one ends where the next
    /// starts) are merged first. Then:
    ///
    /// - Behind an IOMMU the list becomes one contiguous IOVA span, so the
    ///   device sees a single segment: entries are mapped back to back, each
    ///   from the granule holding its start to the granule holding its end.
    ///   For that to leave no hole, every entry but the first must start on a
    ///   granule and every entry but the last end on one (as
    ///   `iommu_dma_map_sg` arranges); otherwise the map fails with
    ///   [`DmaError::SgUnaligned`].
    /// - A direct device gets one segment per merged entry, at its physical
    ///   address or at its bounce slots (only entries it cannot reach are
    ///   bounced); segments whose device addresses touch are merged again.
    ///
    /// # Safety
    ///
    /// As for [`map_single`](Self::map_single), for every range of the list.
    pub unsafe fn map_sg<D: Direction>(&mut self, list: &[(PhysAddr, usize)]) -> Result<DmaSg<D>, DmaError> {
        let (mut parts, total) = self.merge(list)?;
        let mut segments = Vec::new();
        segments.try_reserve_exact(parts.len()).map_err(|_| DmaError::OutOfMemory)?;
        let iova = self.map_parts(&mut parts, D::KIND)?;
        if iova.is_some() {
            segments.push(DmaSegment { addr: parts[0].dev, len: total });
        } else {
            for p in &parts {
                match segments.last_mut() {
                    Some(s) if s.addr.raw() + s.len as u64 == p.dev.raw() => s.len += p.len,
                    _ => segments.push(DmaSegment { addr: p.dev, len: p.len }),
                }
            }
        }
        Ok(DmaSg { device: self.device.id(), parts, segments, total, iova, _dir: PhantomData })
    }

    /// Merges physically contiguous entries and, behind an IOMMU, checks that
    /// the result can be one IOVA span. Returns the parts and the total size.
    fn merge(&self, list: &[(PhysAddr, usize)]) -> Result<(Vec<Part>, usize), DmaError> {
        if list.is_empty() {
            return Err(DmaError::ZeroSize);
        }
        let granule = self.iova_granule();
        let mut parts: Vec<Part> = Vec::new();
        parts.try_reserve_exact(list.len()).map_err(|_| DmaError::OutOfMemory)?;
        let mut total = 0usize;
        for (i, &(pa, len)) in list.iter().enumerate() {
            if len == 0 {
                return Err(DmaError::ZeroSize);
            }
            pa.checked_add(len as u64).map_err(|_| DmaError::Overflow)?;
            total = total.checked_add(len).ok_or(DmaError::Overflow)?;
            if let Some(last) = parts.last_mut() {
                let last_end = last.pa.raw() + last.len as u64;
                if last_end == pa.raw() {
                    last.len += len;
                    continue;
                }
                if let Some(g) = granule {
                    if last_end % g != 0 {
                        return Err(DmaError::SgUnaligned { index: i - 1 });
                    }
                    if !pa.is_aligned(g) {
                        return Err(DmaError::SgUnaligned { index: i });
                    }
                }
            }
            parts.push(Part::new(pa, len));
        }
        Ok((parts, total))
    }
}

/// A scatter-gather mapping in direction `D` (from [`DmaContext::map_sg`]).
/// Syncs and teardown work as for [`DmaStream`](super::DmaStream), over every
/// entry; the directions restrict them the same way:
///
/// ```compile_fail
/// use iommu_common::dma::{DmaContext, DmaSg, ToDevice};
/// fn after_transfer(sg: &DmaSg<ToDevice>, ctx: &mut DmaContext<'_>) {
///     sg.sync_for_cpu(ctx).unwrap(); // no such method
/// }
/// ```
#[must_use = "a scatter-gather mapping that is not unmapped is leaked, with the device's access"]
pub struct DmaSg<D: Direction> {
    device: u32,
    parts: Vec<Part>,
    segments: Vec<DmaSegment>,
    total: usize,
    iova: Option<IovaSpan>,
    _dir: PhantomData<D>,
}

impl<D: Direction> DmaSg<D> {
    /// What the device sees: one segment behind an IOMMU, one per merged
    /// entry (merged again where they touch) for a direct device.
    pub fn segments(&self) -> &[DmaSegment] {
        &self.segments
    }

    /// The total size in bytes.
    pub fn size(&self) -> usize {
        self.total
    }

    /// Number of physically contiguous pieces after merging.
    pub fn pieces(&self) -> usize {
        self.parts.len()
    }

    /// Ends the mapping, as [`DmaStream::unmap`](super::DmaStream::unmap)
    /// does for every entry; one flush covers the whole span.
    #[allow(clippy::result_large_err)] // See `TeardownError`.
    pub fn unmap(mut self, ctx: &mut DmaContext<'_>) -> Result<(), TeardownError<Self>> {
        match ctx.teardown(self.device, &mut self.parts, &mut self.iova, D::KIND) {
            Ok(()) => Ok(()),
            Err(step) => Err(step.with(self)),
        }
    }
}

impl<D: DeviceReads> DmaSg<D> {
    /// Hands what the CPU wrote to the device, for every entry.
    pub fn sync_for_device(&self, ctx: &DmaContext<'_>) -> Result<(), DmaError> {
        ctx.check_handle(self.device, self.iova.is_some(), &self.parts)?;
        ctx.sync_parts_for_device(&self.parts)
    }
}

impl<D: DeviceWrites> DmaSg<D> {
    /// Hands what the device wrote to the CPU, for every entry.
    pub fn sync_for_cpu(&self, ctx: &DmaContext<'_>) -> Result<(), DmaError> {
        ctx.check_handle(self.device, self.iova.is_some(), &self.parts)?;
        ctx.sync_parts_for_cpu(&self.parts)
    }
}

impl<D: Direction> fmt::Debug for DmaSg<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaSg")
            .field("direction", &D::KIND)
            .field("segments", &self.segments)
            .field("pieces", &self.parts.len())
            .finish()
    }
}
