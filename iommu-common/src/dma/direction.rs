//! DMA directions as types (Asterinas' `DmaDirection`, Linux's
//! `enum dma_data_direction`), so that a streaming mapping can only be synced
//! the ways its direction allows:
//!
//! | direction         | device | `sync_for_device` | `sync_for_cpu` | IOMMU permission |
//! |-------------------|--------|-------------------|----------------|------------------|
//! | [`ToDevice`]      | reads  | yes               | no             | read             |
//! | [`FromDevice`]    | writes | no                | yes            | write            |
//! | [`Bidirectional`] | both   | yes               | yes            | read and write   |
//!
//! `sync_for_device` hands CPU writes to the device, so it exists where the
//! device reads ([`DeviceReads`]); `sync_for_cpu` hands device writes to the
//! CPU, so it exists where the device writes ([`DeviceWrites`]). The CPU does
//! not write a `FromDevice` buffer while it is mapped, so it never needs to
//! give one back to the device.

use crate::pgtable::Access;

mod sealed {
    pub trait Sealed {}
}

/// A direction as a value, for the code that does not need the type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DmaDirection {
    /// The device reads the buffer (`DMA_TO_DEVICE`).
    ToDevice,
    /// The device writes the buffer (`DMA_FROM_DEVICE`).
    FromDevice,
    /// The device reads and writes the buffer (`DMA_BIDIRECTIONAL`).
    Bidirectional,
}

impl DmaDirection {
    /// Whether the device reads the buffer.
    pub const fn device_reads(self) -> bool {
        !matches!(self, Self::FromDevice)
    }

    /// Whether the device writes the buffer.
    pub const fn device_writes(self) -> bool {
        !matches!(self, Self::ToDevice)
    }

    /// The IOMMU permission the device needs: read for `ToDevice`, write for
    /// `FromDevice` (stage 2 encodes write-only; stage 1 widens it to
    /// read/write, as Linux does), both for `Bidirectional`.
    pub const fn access(self) -> Access {
        match self {
            Self::ToDevice => Access::READ,
            Self::FromDevice => Access::WRITE,
            Self::Bidirectional => Access::RW,
        }
    }
}

/// A DMA direction type: [`ToDevice`], [`FromDevice`] or [`Bidirectional`].
/// Sealed: there are exactly these three.
pub trait Direction: sealed::Sealed + Copy + core::fmt::Debug + Default + Send + Sync + 'static {
    /// The direction as a value.
    const KIND: DmaDirection;
}

/// Directions in which the device reads the buffer, so CPU writes must be
/// handed to it: the ones with `sync_for_device`.
pub trait DeviceReads: Direction {}

/// Directions in which the device writes the buffer, so its writes must be
/// handed to the CPU: the ones with `sync_for_cpu`.
pub trait DeviceWrites: Direction {}

/// The device reads the buffer: the CPU fills it, then maps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ToDevice;

/// The device writes the buffer: the CPU reads it after `sync_for_cpu` or
/// `unmap`, and does not write it while it is mapped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FromDevice;

/// The device reads and writes the buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Bidirectional;

impl sealed::Sealed for ToDevice {}
impl sealed::Sealed for FromDevice {}
impl sealed::Sealed for Bidirectional {}

impl Direction for ToDevice {
    const KIND: DmaDirection = DmaDirection::ToDevice;
}
impl Direction for FromDevice {
    const KIND: DmaDirection = DmaDirection::FromDevice;
}
impl Direction for Bidirectional {
    const KIND: DmaDirection = DmaDirection::Bidirectional;
}

impl DeviceReads for ToDevice {}
impl DeviceReads for Bidirectional {}
impl DeviceWrites for FromDevice {}
impl DeviceWrites for Bidirectional {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dma_direction_values_match_types() {
        assert_eq!(ToDevice::KIND, DmaDirection::ToDevice);
        assert_eq!(FromDevice::KIND, DmaDirection::FromDevice);
        assert_eq!(Bidirectional::KIND, DmaDirection::Bidirectional);
        assert!(DmaDirection::ToDevice.device_reads() && !DmaDirection::ToDevice.device_writes());
        assert!(!DmaDirection::FromDevice.device_reads() && DmaDirection::FromDevice.device_writes());
        assert!(DmaDirection::Bidirectional.device_reads() && DmaDirection::Bidirectional.device_writes());
        assert_eq!(DmaDirection::ToDevice.access(), Access::READ);
        assert_eq!(DmaDirection::FromDevice.access(), Access::WRITE);
        assert_eq!(DmaDirection::Bidirectional.access(), Access::RW);
    }
}
