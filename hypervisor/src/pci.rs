//! PCIe configuration space through ECAM (PCI Firmware Spec 3.x, "Enhanced
//! Configuration Access Mechanism"): enumeration of the functions on a host
//! bridge's buses.

use core::ptr;

/// A bus/device/function address.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bdf {
    /// Bus number.
    pub bus: u8,
    /// Device number (0..32).
    pub dev: u8,
    /// Function number (0..8).
    pub func: u8,
}

impl defmt::Format for Bdf {
    /// `BB:DD.F`, as lspci and the configuration write it.
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=u8:02x}:{=u8:02x}.{=u8}", self.bus, self.dev, self.func)
    }
}

impl Bdf {
    /// The 16-bit PCI requester ID: what an IOMMU sees as the source.
    pub fn rid(self) -> u16 {
        (u16::from(self.bus) << 8) | (u16::from(self.dev) << 3) | u16::from(self.func)
    }

    /// The function a 16-bit requester ID names.
    pub fn from_rid(rid: u16) -> Self {
        Self { bus: (rid >> 8) as u8, dev: ((rid >> 3) & 0x1f) as u8, func: (rid & 7) as u8 }
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
        Self { base, bus_start, bus_end }
    }

    /// The ECAM window of a host bridge of the discovered platform.
    pub fn of_host(host: &boards::platform::PcieHost) -> Self {
        // SAFETY: every ECAM window the DT names is identity mapped as device
        // memory by `build_el2_map` before anything runs that has a host.
        unsafe { Self::new(host.ecam.base as usize, host.ecam.size as usize, host.bus_start, host.bus_end) }
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

    /// Reads 1, 2 or 4 bytes at `offset` (naturally aligned); all ones for
    /// an absent function, a bad address or a bad size.
    pub fn read(&self, bdf: Bdf, offset: u16, size: u8) -> u32 {
        let Some(a) = self.addr(bdf, offset).filter(|_| offset % u16::from(size.max(1)) == 0) else {
            return u32::MAX;
        };
        let a = a + usize::from(offset & 3);
        // SAFETY: inside the ECAM window (checked by `addr`), device memory,
        // naturally aligned (checked above); ECAM takes byte and halfword
        // accesses.
        unsafe {
            match size {
                1 => u32::from(ptr::read_volatile(a as *const u8)),
                2 => u32::from(ptr::read_volatile(a as *const u16)),
                4 => ptr::read_volatile(a as *const u32),
                _ => u32::MAX,
            }
        }
    }

    /// Writes 1, 2 or 4 bytes at `offset` (naturally aligned); ignored for a
    /// bad address or size.
    pub fn write(&self, bdf: Bdf, offset: u16, size: u8, value: u32) {
        let Some(a) = self.addr(bdf, offset).filter(|_| offset % u16::from(size.max(1)) == 0) else {
            return;
        };
        let a = a + usize::from(offset & 3);
        // SAFETY: as in `read`.
        unsafe {
            match size {
                1 => ptr::write_volatile(a as *mut u8, value as u8),
                2 => ptr::write_volatile(a as *mut u16, value as u16),
                4 => ptr::write_volatile(a as *mut u32, value),
                _ => {}
            }
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

/// A memory BAR after assignment.
#[derive(Clone, Copy, defmt::Format)]
pub struct Bar {
    /// BAR index (0..6); a 64-bit BAR takes this one and the next.
    pub index: u8,
    /// The address the CPU uses.
    pub cpu_addr: u64,
    /// The address on the PCI bus (what the BAR register holds).
    pub pci_addr: u64,
    /// Size in bytes (a power of two).
    pub size: u64,
    /// A 64-bit BAR (it takes registers `index` and `index + 1`).
    pub wide: bool,
}

/// Why a BAR could not be assigned.
#[derive(Clone, Copy, defmt::Format)]
pub enum BarError {
    /// The host bridge's window has no room left for a BAR of this size.
    WindowFull {
        /// The BAR's size.
        size: u64,
    },
    /// The BAR is an I/O BAR (not supported: nothing here needs port I/O).
    IoBar,
    /// The BAR's size probe returned nonsense.
    BadProbe,
}

/// Hands out bus addresses from a host bridge's memory window, as firmware
/// would; nothing else assigns BARs on these boards.
pub struct BarAllocator {
    next: u64,
    end: u64,
    /// cpu_addr - pci_addr of the window.
    cpu_offset: u64,
}

impl BarAllocator {
    /// Allocates from the 32-bit memory window `[pci_addr, pci_addr + size)`,
    /// which the CPU sees at `cpu_addr`.
    pub fn new(pci_addr: u64, cpu_addr: u64, size: u64) -> Self {
        Self {
            next: pci_addr,
            end: pci_addr.saturating_add(size),
            cpu_offset: cpu_addr.wrapping_sub(pci_addr),
        }
    }

    fn take(&mut self, size: u64) -> Result<u64, BarError> {
        let start = self.next.checked_next_multiple_of(size).ok_or(BarError::WindowFull { size })?;
        let end = start.checked_add(size).ok_or(BarError::WindowFull { size })?;
        if end > self.end {
            return Err(BarError::WindowFull { size });
        }
        self.next = end;
        Ok(start)
    }
}

const COMMAND: u16 = 0x04;
const CMD_MEMORY: u32 = 1 << 1;
const CMD_BUS_MASTER: u32 = 1 << 2;
const BAR0: u16 = 0x10;

impl Ecam {
    /// Sizes and assigns memory BAR `index` of `bdf` (PCI Local Bus 3.0
    /// §6.2.5.1: write all ones, read back the size mask). Decoding is off
    /// while probing. Returns `None` for an unimplemented BAR.
    pub fn assign_bar(&self, bdf: Bdf, index: u8, alloc: &mut BarAllocator) -> Result<Option<Bar>, BarError> {
        let off = BAR0 + 4 * u16::from(index);
        let cmd = self.read32(bdf, COMMAND);
        self.write32(bdf, COMMAND, cmd & !(CMD_MEMORY | CMD_BUS_MASTER));
        let orig = self.read32(bdf, off);
        if orig & 1 != 0 {
            self.write32(bdf, COMMAND, cmd);
            return Err(BarError::IoBar);
        }
        let is64 = (orig >> 1) & 3 == 2;
        self.write32(bdf, off, u32::MAX);
        let lo = self.read32(bdf, off) & !0xf;
        let hi = if is64 {
            self.write32(bdf, off + 4, u32::MAX);
            self.read32(bdf, off + 4)
        } else {
            0
        };
        let mask = (u64::from(hi) << 32) | u64::from(lo);
        let result = if mask == 0 {
            Ok(None)
        } else {
            let mask = if is64 { mask } else { mask | 0xffff_ffff_0000_0000 };
            let size = (!mask).wrapping_add(1);
            if !size.is_power_of_two() {
                Err(BarError::BadProbe)
            } else {
                alloc.take(size).map(|pci_addr| {
                    Some(Bar {
                        index,
                        cpu_addr: pci_addr.wrapping_add(alloc.cpu_offset),
                        pci_addr,
                        size,
                        wide: is64,
                    })
                })
            }
        };
        let value = match &result {
            Ok(Some(bar)) => bar.pci_addr,
            _ => u64::from(orig & !0xf),
        };
        self.write32(bdf, off, (value as u32) | (orig & 0xf));
        if is64 {
            self.write32(bdf, off + 4, (value >> 32) as u32);
        }
        self.write32(bdf, COMMAND, cmd);
        result
    }

    /// Turns on memory decoding and bus mastering (DMA) for `bdf`.
    pub fn enable(&self, bdf: Bdf, bus_master: bool) {
        let cmd = self.read32(bdf, COMMAND) & 0xffff;
        let bits = CMD_MEMORY | if bus_master { CMD_BUS_MASTER } else { 0 };
        self.write32(bdf, COMMAND, cmd | bits);
    }

    /// Finds the first function with `vendor:device`.
    pub fn find(&self, vendor: u16, device: u16) -> Option<Function> {
        let mut found = None;
        self.scan(|f| {
            if found.is_none() && f.vendor == vendor && f.device == device {
                found = Some(f);
            }
        });
        found
    }
}
