//! The DMA API: how a driver lets a device read and write memory, modelled on
//! Linux's dma-mapping API (`dma_alloc_coherent`, `dma_map_single`,
//! `dma_map_sg`, swiotlb) and on Asterinas' `ostd` DMA types (directions as
//! types, handles that own their mapping).
//!
//! # Pieces
//!
//! - A [`DmaDevice`] says how a device sees memory: its DMA mask
//!   ([`DmaLimit`](crate::iova::DmaLimit)), whether it snoops CPU caches, and
//!   whether every streaming buffer must go through a bounce pool.
//! - A [`DmaContext`] lends the DMA API, for a batch of operations, what the
//!   device's view needs: the [`DmaMemory`] to allocate from and translate
//!   with, the platform's [`CacheMaintenance`], optionally a [`BouncePool`],
//!   and, for a device behind an IOMMU, an [`IommuDomainRef`]: the domain's
//!   [`IoPageTable`](crate::pgtable::IoPageTable), its
//!   [`IovaAllocator`](crate::iova::IovaAllocator) and an [`IotlbFlusher`].
//!   Without one the device is *direct*: its DMA address is the physical
//!   address, which must lie within its mask.
//! - Three kinds of mappings, each a handle that owns what it holds and is
//!   given back explicitly (`free`/`unmap` return a [`TeardownError`] rather
//!   than failing silently in a `Drop`; a forgotten handle is a leak, never a
//!   use after free):
//!   - [`DmaCoherent`] (`dma_alloc_coherent`): memory the CPU and the device
//!     share for the whole life of the buffer, such as descriptor rings.
//!   - [`DmaStream<D>`] (`dma_map_single`): a buffer the caller owns, lent to
//!     the device in direction `D` ([`ToDevice`], [`FromDevice`],
//!     [`Bidirectional`]); ownership moves between CPU and device with
//!     `sync_for_device` / `sync_for_cpu`, which exist only for the
//!     directions where they mean something.
//!   - [`DmaSg<D>`] (`dma_map_sg`): a scatter-gather list, mapped as one
//!     contiguous IOVA span behind an IOMMU.
//!
//! # The path of a DMA
//!
//! A driver sends a packet at physical address `p`, `n` bytes, with
//! `ctx.map_single::<ToDevice>(p, n)`:
//!
//! 1. **Reach.** Direct device: if `p + n - 1` is above the device's mask (or
//!    the device forces bouncing), a slot run is taken from the bounce pool,
//!    which lies below the mask, and the packet is copied there; with no pool
//!    the map fails with [`DmaError::MaskViolation`]. Device behind an IOMMU:
//!    an IOVA range below the mask comes from the IOVA allocator and is mapped
//!    in the domain's page table to the granules holding the packet, with
//!    permissions from the direction (device read for `ToDevice`).
//! 2. **Caches.** A non-coherent device does not see the CPU's caches: the
//!    range the device will read is cleaned to the point of coherency.
//! 3. **Transfer.** The driver gives the device the [`DmaAddr`]; the device's
//!    transactions go through the SMMU, which walks the stage-1/stage-2 table
//!    the mapping was written into, or straight to memory.
//! 4. **Back to the CPU** (`FromDevice`/`Bidirectional` only):
//!    `sync_for_cpu` invalidates the range the device wrote (non-coherent) and
//!    copies a bounce slot back to the original buffer.
//! 5. **Teardown.** `unmap` does step 4, removes the translation into an
//!    [`IotlbGather`](crate::pgtable::IotlbGather), has the [`IotlbFlusher`]
//!    invalidate the IOTLB and wait for it (SMMU: `CMD_TLBI_*`, `CMD_SYNC`),
//!    and only then lets the page table free unlinked table pages
//!    ([`IoPageTable::complete`](crate::pgtable::IoPageTable::complete)) and
//!    returns the IOVA to the allocator and the slots to the pool. Nothing is
//!    reused while the device might still reach it through a stale TLB entry.
//!
//! Invalidation is strict: every teardown flushes before it returns. The
//! lazy mode of Linux (`iova_fq`, [`FlushQueue`](crate::iova::FlushQueue))
//! would batch flushes; it can sit on top of this by giving the IOVAs to a
//! flush queue instead, and is not done here.
//!
//! # Errors
//!
//! Every map and allocation is all-or-nothing: an `Err` leaves the IOVA
//! allocator, the page table, the memory and the bounce pool as they were
//! (with one exception: if undoing a half-mapped scatter-gather list needs a
//! flush and the flush fails, its IOVA range and table pages are leaked, never
//! reused). A teardown that is refused hands the handle back; one whose flush
//! fails hands back a [`PendingRelease`] to retry. See [`DmaError`].
//!
//! # Safety
//!
//! Streaming maps take a physical range the caller owns and are `unsafe`: the
//! DMA API copies into it (bounce buffers), discards cache lines over it
//! (non-coherent devices), and the device writes it. Everything else is safe.
//! The raw pointers live in [`bounce`](BouncePool) (slot copies),
//! [`DmaCoherent`] (CPU access to shared memory) and [`HostMemory`].

mod bounce;
mod coherent;
mod context;
mod device;
mod direction;
mod error;
mod hooks;
mod host;
mod memory;
mod sg;
mod streaming;
mod teardown;

pub use bounce::{BouncePool, BOUNCE_SLOT_SIZE};
pub use coherent::DmaCoherent;
pub use context::{DmaContext, IommuDomainRef};
pub use device::DmaDevice;
pub use direction::{
    Bidirectional, DeviceReads, DeviceWrites, Direction, DmaDirection, FromDevice, ToDevice,
};
pub use error::DmaError;
pub use hooks::{CacheMaintenance, FlushError, IotlbFlusher};
pub use host::HostMemory;
pub use memory::{CpuMapping, DmaMemory, DmaPages, PAGE_SIZE};
pub use sg::{DmaSegment, DmaSg};
pub use streaming::DmaStream;
pub use teardown::{PendingRelease, TeardownError};

use core::fmt;

use crate::addr::AddrOverflow;

/// An address as a device emits it on the bus (Linux's `dma_addr_t`): an
/// IOVA for a device behind an IOMMU, the physical address itself for a
/// direct device.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct DmaAddr(pub u64);

impl DmaAddr {
    /// The raw value.
    pub const fn raw(self) -> u64 {
        self.0
    }

    /// `self + off`, or an error if it overflows.
    pub const fn checked_add(self, off: u64) -> Result<Self, AddrOverflow> {
        match self.0.checked_add(off) {
            Some(v) => Ok(Self(v)),
            None => Err(AddrOverflow),
        }
    }
}

impl fmt::Debug for DmaAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DmaAddr({:#x})", self.0)
    }
}

impl fmt::LowerHex for DmaAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::LowerHex::fmt(&self.0, f)
    }
}
