//! Format-neutral permissions and memory types of a mapping.

use core::fmt;
use core::ops::BitOr;

/// Access permissions of a mapping: read, write, execute, and whether only
/// privileged transactions may use it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access(u8);

impl Access {
    /// No access.
    pub const NONE: Self = Self(0);
    /// Reads (device-to-memory "read" transactions) are permitted.
    pub const READ: Self = Self(1 << 0);
    /// Writes are permitted.
    pub const WRITE: Self = Self(1 << 1);
    /// Instruction fetches are permitted (otherwise execute-never).
    pub const EXEC: Self = Self(1 << 2);
    /// Only privileged transactions may use the mapping (stage 1 `AP[1] = 0`);
    /// without it, unprivileged transactions may too. Stage 2 has no such bit
    /// and ignores it.
    pub const PRIV: Self = Self(1 << 3);
    /// Read and write.
    pub const RW: Self = Self(Self::READ.0 | Self::WRITE.0);

    /// Whether all permissions in `other` are in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the permissions in `other` added.
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// `self` with the permissions in `other` removed.
    pub const fn difference(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// The raw bits (READ = 1, WRITE = 2, EXEC = 4, PRIV = 8).
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl BitOr for Access {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = |a: Self, c: char| if self.contains(a) { c } else { '-' };
        write!(
            f,
            "Access({}{}{}{})",
            flag(Self::READ, 'r'),
            flag(Self::WRITE, 'w'),
            flag(Self::EXEC, 'x'),
            flag(Self::PRIV, 'p')
        )
    }
}

/// Memory type of a mapping: how the IOMMU's output transactions are cached
/// and ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum MemType {
    /// Normal memory, inner and outer write-back cacheable (read/write
    /// allocate), inner shareable: DMA buffers on a coherent interconnect.
    #[default]
    WriteBack,
    /// Normal memory, inner and outer non-cacheable.
    NonCacheable,
    /// Device-nGnRE memory: MMIO, e.g. a peer device's registers or an MSI
    /// doorbell.
    Device,
    /// Device-nGnRnE memory: MMIO that needs non-posted writes.
    DeviceStrict,
}

/// Permissions plus memory type: everything a mapping needs besides its
/// addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Prot {
    access: Access,
    mem: MemType,
}

impl Prot {
    /// Read-write, write-back cacheable, not executable: an ordinary DMA buffer.
    pub const RW: Self = Self::new(Access::RW, MemType::WriteBack);
    /// Read-only, write-back cacheable, not executable.
    pub const RO: Self = Self::new(Access::READ, MemType::WriteBack);

    /// A protection with these permissions and this memory type.
    pub const fn new(access: Access, mem: MemType) -> Self {
        Self { access, mem }
    }

    /// The permissions.
    pub const fn access(self) -> Access {
        self.access
    }

    /// The memory type.
    pub const fn mem(self) -> MemType {
        self.mem
    }

    /// The same protection with another memory type.
    pub const fn with_mem(self, mem: MemType) -> Self {
        Self { mem, ..self }
    }

    /// The same protection with other permissions.
    pub const fn with_access(self, access: Access) -> Self {
        Self { access, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use alloc::format;

    #[test]
    fn access_set_operations() {
        let rw = Access::READ | Access::WRITE;
        assert_eq!(rw, Access::RW);
        assert!(rw.contains(Access::READ));
        assert!(!rw.contains(Access::EXEC));
        assert_eq!(rw.difference(Access::WRITE), Access::READ);
        assert_eq!(format!("{:?}", rw | Access::PRIV), "Access(rw-p)");
    }

    #[test]
    fn prot_builders() {
        let p = Prot::RW.with_mem(MemType::Device);
        assert_eq!(p.access(), Access::RW);
        assert_eq!(p.mem(), MemType::Device);
        assert_eq!(Prot::RO.with_access(Access::RW), Prot::RW);
    }
}
