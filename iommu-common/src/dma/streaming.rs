//! Streaming mappings (Linux's `dma_map_single` / `dma_map_page`): a buffer
//! the caller owns, lent to the device in one direction.

use core::fmt;
use core::marker::PhantomData;
use core::slice;

use super::context::{IovaSpan, Part};
use super::{DeviceReads, DeviceWrites, Direction, DmaAddr, DmaContext, DmaError, TeardownError};
use crate::addr::PhysAddr;

impl DmaContext<'_> {
    /// Lends `[pa, pa + size)` to the device in direction `D` and returns the
    /// mapping, whose [`dma_addr`](DmaStream::dma_addr) the device uses.
    ///
    /// Behind an IOMMU the granules holding the buffer are mapped at an IOVA
    /// below the device's mask, with the permission `D` needs (the device sees
    /// the rest of those granules too). A direct device uses `pa`, or a bounce
    /// slot run if it cannot reach the buffer (or forces bouncing); without a
    /// pool that is [`DmaError::MaskViolation`]. For a non-coherent device the
    /// range it accesses is cleaned.
    ///
    /// # Safety
    ///
    /// Until the mapping is unmapped (for ever, if the handle is dropped), the
    /// memory must stay the caller's and reserved for this use: the device may
    /// read it and, for `FromDevice` and `Bidirectional`, write it; the DMA API
    /// copies into it and invalidates cache lines over it
    /// ([`sync_for_cpu`](DmaStream::sync_for_cpu), `unmap`). The CPU may read
    /// it only after `sync_for_cpu` (or `unmap`), may write it only in a
    /// `ToDevice` or `Bidirectional` mapping and then only before
    /// `sync_for_device`, and must hold no reference to it while the device
    /// owns it. `[pa, pa + size)` must be memory the context's
    /// [`DmaMemory`](super::DmaMemory) translates whenever the CPU side is
    /// touched (bouncing, non-coherent devices); it may be other memory
    /// (another device's MMIO) otherwise.
    pub unsafe fn map_single<D: Direction>(
        &mut self,
        pa: PhysAddr,
        size: usize,
    ) -> Result<DmaStream<D>, DmaError> {
        let mut parts = [Part::new(pa, size)];
        let iova = self.map_parts(&mut parts, D::KIND)?;
        let [part] = parts;
        Ok(DmaStream { device: self.device.id(), part, iova, _dir: PhantomData })
    }
}

/// A streaming mapping of one buffer in direction `D` (from
/// [`DmaContext::map_single`]).
///
/// Ownership of the buffer moves between CPU and device with the syncs, which
/// exist only where `D` needs them. A `ToDevice` mapping has no
/// `sync_for_cpu`:
///
/// ```compile_fail
/// use iommu_common::dma::{DmaContext, DmaStream, ToDevice};
/// fn after_transfer(s: &DmaStream<ToDevice>, ctx: &mut DmaContext<'_>) {
///     s.sync_for_cpu(ctx).unwrap(); // no such method: the device did not write
/// }
/// ```
///
/// and a `FromDevice` mapping no `sync_for_device`:
///
/// ```compile_fail
/// use iommu_common::dma::{DmaContext, DmaStream, FromDevice};
/// fn before_transfer(s: &DmaStream<FromDevice>, ctx: &mut DmaContext<'_>) {
///     s.sync_for_device(ctx).unwrap(); // no such method: the CPU did not write
/// }
/// ```
///
/// while both exist for `Bidirectional`:
///
/// ```
/// use iommu_common::dma::{Bidirectional, DmaContext, DmaStream};
/// fn round_trip(s: &DmaStream<Bidirectional>, ctx: &mut DmaContext<'_>) {
///     s.sync_for_device(ctx).unwrap();
///     s.sync_for_cpu(ctx).unwrap();
/// }
/// ```
///
/// `unmap` consumes the handle, so a mapping cannot be used after it:
///
/// ```compile_fail
/// use iommu_common::dma::{DmaContext, DmaStream, FromDevice};
/// fn twice(s: DmaStream<FromDevice>, ctx: &mut DmaContext<'_>) {
///     let _ = s.unmap(ctx);
///     s.sync_for_cpu(ctx).unwrap(); // use of moved value
/// }
/// ```
///
/// It has no `Drop`: a dropped mapping is leaked (the device keeps access and
/// the IOVA range or bounce slots stay taken), which is why the buffer is
/// then the device's for ever (see `map_single`'s safety contract).
#[must_use = "a streaming mapping that is not unmapped is leaked, with the device's access"]
pub struct DmaStream<D: Direction> {
    device: u32,
    part: Part,
    iova: Option<IovaSpan>,
    _dir: PhantomData<D>,
}

impl<D: Direction> DmaStream<D> {
    /// The address the device uses for the buffer's first byte.
    pub fn dma_addr(&self) -> DmaAddr {
        self.part.dev
    }

    /// The size in bytes.
    pub fn size(&self) -> usize {
        self.part.len
    }

    /// The buffer's physical address (not the bounce slots').
    pub fn phys_addr(&self) -> PhysAddr {
        self.part.pa
    }

    /// Whether the device uses a bounce slot run instead of the buffer.
    pub fn is_bounced(&self) -> bool {
        self.part.bounce.is_some()
    }

    /// Ends the mapping: for `FromDevice` and `Bidirectional`, hands the
    /// device's writes to the CPU first (as [`sync_for_cpu`](Self::sync_for_cpu));
    /// then removes the translation and flushes the IOTLB, and only after that
    /// gives back the IOVA range and bounce slots.
    #[allow(clippy::result_large_err)] // See `TeardownError`.
    pub fn unmap(mut self, ctx: &mut DmaContext<'_>) -> Result<(), TeardownError<Self>> {
        match ctx.teardown(self.device, slice::from_mut(&mut self.part), &mut self.iova, D::KIND) {
            Ok(()) => Ok(()),
            Err(step) => Err(step.with(self)),
        }
    }
}

impl<D: DeviceReads> DmaStream<D> {
    /// Hands what the CPU wrote to the device: copies the buffer into its
    /// bounce slots, and cleans the device's side for a non-coherent device.
    /// Call it after writing the buffer and before telling the device.
    pub fn sync_for_device(&self, ctx: &DmaContext<'_>) -> Result<(), DmaError> {
        let parts = slice::from_ref(&self.part);
        ctx.check_handle(self.device, self.iova.is_some(), parts)?;
        ctx.sync_parts_for_device(parts)
    }
}

impl<D: DeviceWrites> DmaStream<D> {
    /// Hands what the device wrote to the CPU: invalidates the device's side
    /// for a non-coherent device, and copies bounce slots back into the
    /// buffer. Call it after the device is done and before reading the buffer.
    pub fn sync_for_cpu(&self, ctx: &DmaContext<'_>) -> Result<(), DmaError> {
        let parts = slice::from_ref(&self.part);
        ctx.check_handle(self.device, self.iova.is_some(), parts)?;
        ctx.sync_parts_for_cpu(parts)
    }
}

impl<D: Direction> fmt::Debug for DmaStream<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DmaStream")
            .field("direction", &D::KIND)
            .field("dma_addr", &self.part.dev)
            .field("phys_addr", &self.part.pa)
            .field("size", &self.part.len)
            .field("bounced", &self.is_bounced())
            .finish()
    }
}
