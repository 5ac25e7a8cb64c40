//! The one seam to physical memory: tables are read through [`PhysMem`].

use iommu_common::addr::PhysAddr;

/// The bytes asked for are not (all) in the memory this [`PhysMem`] covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unmapped;

/// Read access to physical memory holding ACPI tables.
///
/// On an identity-mapped test kernel this is a [`SliceMem`] over RAM; on the
/// host it is a `Vec` (or several) standing in for firmware memory.
pub trait PhysMem {
    /// The `len` bytes at `pa`, or [`Unmapped`] if any of them is not covered.
    fn read(&self, pa: PhysAddr, len: usize) -> Result<&[u8], Unmapped>;
}

/// Physical memory `[base, base + bytes.len())` seen as one slice.
#[derive(Clone, Copy, Debug)]
pub struct SliceMem<'a> {
    base: PhysAddr,
    bytes: &'a [u8],
}

impl<'a> SliceMem<'a> {
    /// `bytes` holds the memory starting at physical address `base`.
    pub const fn new(base: PhysAddr, bytes: &'a [u8]) -> Self {
        Self { base, bytes }
    }
}

impl PhysMem for SliceMem<'_> {
    fn read(&self, pa: PhysAddr, len: usize) -> Result<&[u8], Unmapped> {
        let off = pa.offset_from(self.base).ok_or(Unmapped)?;
        let off = usize::try_from(off).map_err(|_| Unmapped)?;
        crate::acpi::bytes::slice_at(self.bytes, off, len).ok_or(Unmapped)
    }
}

impl<M: PhysMem + ?Sized> PhysMem for &M {
    fn read(&self, pa: PhysAddr, len: usize) -> Result<&[u8], Unmapped> {
        (**self).read(pa, len)
    }
}
