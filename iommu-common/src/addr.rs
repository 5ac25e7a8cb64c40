//! Address types. An address is a type, not a `u64`: a function that takes an
//! [`Iova`] cannot be handed a [`PhysAddr`]. Arithmetic is checked and returns
//! [`AddrOverflow`] instead of wrapping (rust-vmm's `GuestAddress` is the model).

use core::fmt;

/// An address computation left the 64-bit space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddrOverflow;

impl fmt::Display for AddrOverflow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("address arithmetic overflowed")
    }
}

macro_rules! address_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        #[repr(transparent)]
        pub struct $name(pub u64);

        impl $name {
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

            /// `self - off`, or an error if it underflows.
            pub const fn checked_sub(self, off: u64) -> Result<Self, AddrOverflow> {
                match self.0.checked_sub(off) {
                    Some(v) => Ok(Self(v)),
                    None => Err(AddrOverflow),
                }
            }

            /// The distance from `base` up to `self`, if `self >= base`.
            pub const fn offset_from(self, base: Self) -> Option<u64> {
                self.0.checked_sub(base.0)
            }

            /// Whether the address is a multiple of `align` (a power of two).
            pub const fn is_aligned(self, align: u64) -> bool {
                debug_assert!(align.is_power_of_two());
                self.0 & (align - 1) == 0
            }

            /// Rounds down to a multiple of `align` (a power of two).
            pub const fn align_down(self, align: u64) -> Self {
                debug_assert!(align.is_power_of_two());
                Self(self.0 & !(align - 1))
            }

            /// Rounds up to a multiple of `align` (a power of two), or an error
            /// if that overflows.
            pub const fn align_up(self, align: u64) -> Result<Self, AddrOverflow> {
                debug_assert!(align.is_power_of_two());
                match self.0.checked_add(align - 1) {
                    Some(v) => Ok(Self(v & !(align - 1))),
                    None => Err(AddrOverflow),
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({:#x})"), self.0)
            }
        }

        impl fmt::LowerHex for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::LowerHex::fmt(&self.0, f)
            }
        }
    };
}

address_type!(
    /// A physical address as the memory system sees it (an SMMU's output address).
    PhysAddr
);
address_type!(
    /// An intermediate physical address: guest-physical, the input to stage 2.
    Ipa
);
address_type!(
    /// An I/O virtual address: what a device puts on the bus, the input to an IOMMU.
    Iova
);
address_type!(
    /// A virtual address in the hypervisor's own (EL2 stage-1) address space.
    VirtAddr
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_arithmetic_reports_overflow() {
        assert_eq!(Iova(u64::MAX).checked_add(1), Err(AddrOverflow));
        assert_eq!(PhysAddr(0).checked_sub(1), Err(AddrOverflow));
        assert_eq!(Ipa(0x1000).checked_add(0x1000), Ok(Ipa(0x2000)));
        assert_eq!(Iova(u64::MAX - 5).align_up(0x1000), Err(AddrOverflow));
    }

    #[test]
    fn alignment() {
        assert!(PhysAddr(0x20_0000).is_aligned(0x20_0000));
        assert!(!PhysAddr(0x20_1000).is_aligned(0x20_0000));
        assert_eq!(PhysAddr(0x20_1234).align_down(0x1000), PhysAddr(0x20_1000));
        assert_eq!(PhysAddr(0x20_1234).align_up(0x1000), Ok(PhysAddr(0x20_2000)));
        assert_eq!(Iova(0x3000).offset_from(Iova(0x1000)), Some(0x2000));
        assert_eq!(Iova(0x1000).offset_from(Iova(0x3000)), None);
    }
}
