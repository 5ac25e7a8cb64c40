//! PCI names used by the remapping tables.

use core::fmt;

/// A PCI bus/device/function inside one segment.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bdf {
    /// Bus number.
    pub bus: u8,
    /// Device number, 0..=31.
    pub device: u8,
    /// Function number, 0..=7.
    pub function: u8,
}

impl Bdf {
    /// A BDF, or `None` if `device > 31` or `function > 7`.
    pub const fn new(bus: u8, device: u8, function: u8) -> Option<Self> {
        if device > 31 || function > 7 {
            None
        } else {
            Some(Self { bus, device, function })
        }
    }

    /// From a 16-bit requester/device ID (bus in bits 15:8, device 7:3,
    /// function 2:0), as AMD-Vi's IVRS names devices.
    pub const fn from_devid(id: u16) -> Self {
        Self { bus: (id >> 8) as u8, device: ((id >> 3) & 0x1f) as u8, function: (id & 7) as u8 }
    }

    /// The 16-bit requester/device ID.
    pub const fn devid(self) -> u16 {
        ((self.bus as u16) << 8) | ((self.device as u16 & 0x1f) << 3) | (self.function as u16 & 7)
    }
}

impl fmt::Debug for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// The buses behind a PCI-PCI bridge: its secondary and subordinate bus
/// numbers (type 1 config header, offsets 0x19 and 0x1a).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusRange {
    /// The bus directly behind the bridge.
    pub secondary: u8,
    /// The highest bus number behind the bridge.
    pub subordinate: u8,
}

impl BusRange {
    /// Whether `bus` is behind the bridge.
    pub const fn contains(self, bus: u8) -> bool {
        self.secondary <= bus && bus <= self.subordinate
    }
}
