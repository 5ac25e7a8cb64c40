//! What a teardown (`unmap`, `free`) that did not finish leaves behind.

use core::fmt;

use super::{DmaContext, DmaError, FlushError};
use crate::addr::PhysAddr;
use crate::iova::Allocation;
use crate::pgtable::IotlbGather;

/// Why an `unmap` or `free` did not finish, and what it leaves to the caller.
///
/// Converting it into a [`DmaError`] (with `?`) drops what it holds, which
/// leaks it: safe, never reused.
///
/// It is large (a [`PendingRelease`] holds an [`IotlbGather`]), and returned
/// by value anyway: teardowns are not a hot path, and boxing would allocate
/// on the path that reports an IOMMU failure.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum TeardownError<H> {
    /// Refused before anything was released (a handle of another device, a
    /// context without the mapping's domain or pool, or a page table that
    /// refused the unmap): the handle comes back unchanged. Device writes may
    /// have been copied or synced to the CPU already, which is harmless.
    Refused(DmaError, H),
    /// The translations are gone from the page table, but the IOTLB flush
    /// failed, so the device may still reach the memory: nothing was
    /// released. Retry with [`PendingRelease::retry`] (after recovering the
    /// IOMMU), or drop it to leak what it holds.
    Unflushed(FlushError, PendingRelease),
    /// Done, except that something could not be given back because the
    /// context's memory, IOVA allocator or pool refused it as not theirs; it
    /// stays allocated there, never reused.
    Leaked(DmaError),
}

impl<H> TeardownError<H> {
    /// The error.
    pub fn error(&self) -> DmaError {
        match self {
            Self::Refused(e, _) | Self::Leaked(e) => *e,
            Self::Unflushed(e, _) => DmaError::FlushFailed(*e),
        }
    }

    /// The handle, if the teardown was refused.
    pub fn into_handle(self) -> Option<H> {
        match self {
            Self::Refused(_, h) => Some(h),
            _ => None,
        }
    }
}

impl<H> From<TeardownError<H>> for DmaError {
    fn from(e: TeardownError<H>) -> Self {
        e.error()
    }
}

impl<H> fmt::Display for TeardownError<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Refused(e, _) => write!(f, "teardown refused: {e}"),
            Self::Unflushed(e, _) => write!(f, "unmapped but not flushed ({e}): nothing released"),
            Self::Leaked(e) => write!(f, "torn down, but a resource was leaked: {e}"),
        }
    }
}

/// What a teardown whose IOTLB flush failed could not release yet: the
/// unmapped ranges still to invalidate, the table pages to free after that,
/// the IOVA range and, for a coherent buffer, its memory.
#[must_use = "retry the release, or drop it to leak what it holds"]
#[derive(Debug)]
pub struct PendingRelease {
    device: u32,
    gather: IotlbGather,
    iova: Allocation,
    pages: Option<(PhysAddr, usize)>,
}

impl PendingRelease {
    pub(crate) fn new(
        device: u32,
        gather: IotlbGather,
        iova: Allocation,
        pages: Option<(PhysAddr, usize)>,
    ) -> Self {
        Self { device, gather, iova, pages }
    }

    /// The invalidation still owed.
    pub fn gather(&self) -> &IotlbGather {
        &self.gather
    }

    /// Flushes again and, if that completes, releases everything, through a
    /// context of the same device and domain.
    #[allow(clippy::result_large_err)] // See `TeardownError`.
    pub fn retry(mut self, ctx: &mut DmaContext<'_>) -> Result<(), TeardownError<Self>> {
        if self.device != ctx.device.id() {
            return Err(TeardownError::Refused(DmaError::ForeignHandle, self));
        }
        let Some(iommu) = ctx.iommu.as_mut() else {
            return Err(TeardownError::Refused(DmaError::ForeignHandle, self));
        };
        if let Err(e) = iommu.dom.flusher.flush(&self.gather) {
            return Err(TeardownError::Unflushed(e, self));
        }
        if let Err(e) = iommu.dom.table.complete(&mut self.gather) {
            // Another domain's table: it checked before changing anything.
            return Err(TeardownError::Refused(e.into(), self));
        }
        let Self { iova, pages, .. } = self;
        let freed = iommu.dom.iova.free(iommu.dom.cpu, iova);
        let pages_freed = pages.is_none_or(|(pa, n)| ctx.memory.free_pages(pa, n));
        freed.map_err(|e| TeardownError::Leaked(e.into()))?;
        if !pages_freed {
            return Err(TeardownError::Leaked(DmaError::ForeignHandle));
        }
        Ok(())
    }
}

/// A teardown's outcome before the handle is attached.
#[allow(clippy::large_enum_variant)] // See `TeardownError`.
pub(crate) enum Step {
    Refused(DmaError),
    Unflushed(FlushError, PendingRelease),
    Leaked(DmaError),
}

impl Step {
    /// The public error; `handle` is given back only if nothing was
    /// released (otherwise it has been taken apart and is dropped).
    pub(crate) fn with<H>(self, handle: H) -> TeardownError<H> {
        match self {
            Self::Refused(e) => TeardownError::Refused(e, handle),
            Self::Unflushed(e, p) => TeardownError::Unflushed(e, p),
            Self::Leaked(e) => TeardownError::Leaked(e),
        }
    }
}
