//! PCIe configuration space through ECAM (PCI Firmware Spec 3.x, "Enhanced
//! Configuration Access Mechanism"): enumeration of the functions on a host
//! bridge's buses.

use core::ptr;

/// A bus/device/function address.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct Bdf {
    /// Bus number.
    pub bus: u8,
    /// Device number (0..32).
    pub dev: u8,
    /// Function number (0..8).
    pub func: u8,
}

impl Bdf {
    /// The 16-bit PCI requester ID: what an IOMMU sees as the source.
    pub fn rid(self) -> u16 {
        (u16::from(self.bus) << 8) | (u16::from(self.dev) << 3) | u16::from(self.func)
    }
}

/// One function found on the bus.
#[derive(Clone, Copy, defmt::Format)]
pub struct Function {
    /// Where it sits.
    pub bdf: Bdf,
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
    /// Class code, subclass and programming interface (24 bits).
    pub class: u32,
    /// Header type (bit 7 masked off): 0 endpoint, 1 PCI-PCI bridge.
    pub header_type: u8,
}

/// An ECAM window: the config space of buses `bus_start..=bus_end`.
#[derive(Clone, Copy)]
pub struct Ecam {
    base: usize,
    bus_start: u8,
    bus_end: u8,
}

impl Ecam {
    /// Wraps the ECAM region at `base` of `size` bytes for the given bus range.
    ///
    /// # Safety
    /// `[base, base + size)` must be the host bridge's ECAM, mapped as device
    /// memory for the life of the program.
    pub unsafe fn new(base: usize, size: usize, bus_start: u8, bus_end: u8) -> Self {
        // Each bus takes 1 MiB of ECAM; never address past the region.
        let buses_in_window = (size >> 20).max(1) - 1;
        let bus_end = bus_end.min(bus_start.saturating_add(buses_in_window.min(255) as u8));
        Self {
            base,
            bus_start,
            bus_end,
        }
    }

    fn addr(&self, bdf: Bdf, offset: u16) -> Option<usize> {
        if bdf.bus < self.bus_start
            || bdf.bus > self.bus_end
            || bdf.dev >= 32
            || bdf.func >= 8
            || offset >= 4096
        {
            return None;
        }
        let rel = (usize::from(bdf.bus - self.bus_start) << 20)
            | (usize::from(bdf.dev) << 15)
            | (usize::from(bdf.func) << 12)
            | usize::from(offset & !3);
        Some(self.base + rel)
    }

    /// Reads a config dword; all ones for an absent function or bad address.
    pub fn read32(&self, bdf: Bdf, offset: u16) -> u32 {
        match self.addr(bdf, offset) {
            // SAFETY: inside the ECAM window (checked by `addr`), device memory.
            Some(a) => unsafe { ptr::read_volatile(a as *const u32) },
            None => u32::MAX,
        }
    }

    /// Writes a config dword; ignored for a bad address.
    pub fn write32(&self, bdf: Bdf, offset: u16, value: u32) {
        if let Some(a) = self.addr(bdf, offset) {
            // SAFETY: inside the ECAM window (checked by `addr`), device memory.
            unsafe { ptr::write_volatile(a as *mut u32, value) }
        }
    }

    /// Calls `f` for every function present on the window's first bus
    /// (multi-function devices included). Buses behind bridges need the
    /// bridges configured first; nothing configures them at boot.
    pub fn scan(&self, mut f: impl FnMut(Function)) {
        let bus = self.bus_start;
        for dev in 0..32u8 {
            for func in 0..8u8 {
                let bdf = Bdf { bus, dev, func };
                let id = self.read32(bdf, 0);
                if id & 0xffff == 0xffff {
                    if func == 0 {
                        break;
                    }
                    continue;
                }
                let class_rev = self.read32(bdf, 8);
                let hdr = (self.read32(bdf, 0xc) >> 16) as u8;
                f(Function {
                    bdf,
                    vendor: id as u16,
                    device: (id >> 16) as u16,
                    class: class_rev >> 8,
                    header_type: hdr & 0x7f,
                });
                if func == 0 && hdr & 0x80 == 0 {
                    break;
                }
            }
        }
    }
}
