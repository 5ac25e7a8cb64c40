//! PCI configuration space through ECAM (PCIe base spec §7.2.2: 1 MiB per
//! bus, 32 KiB per device, 4 KiB per function) and the few header fields the
//! guest uses (PCI local bus spec 3.0 §6.1, type 0 header).

use boards::platform::{PciSpace, PcieHost};

/// Vendor ID / Device ID (dword 0).
pub const ID: usize = 0x00;
/// Command (low half of dword 1; Status in the high half, write 1 to clear).
pub const COMMAND: usize = 0x04;
/// Header type (byte 2 of dword 3).
pub const HEADER: usize = 0x0c;
/// BAR0.
pub const BAR0: usize = 0x10;
/// Interrupt Line (7:0) and Interrupt Pin (15:8).
pub const INTERRUPT: usize = 0x3c;

/// Command.Memory Space Enable.
pub const CMD_MEM: u32 = 1 << 1;
/// Command.Bus Master Enable.
pub const CMD_BUS_MASTER: u32 = 1 << 2;

/// One function's configuration space.
#[derive(Clone, Copy)]
pub struct Function {
    cfg: usize,
    /// Bus number.
    pub bus: u8,
    /// Device number (0..32).
    pub dev: u8,
    /// Function number (0..8).
    pub func: u8,
}

impl Function {
    /// Dword at `off` (4-byte aligned, below 4096).
    pub fn read32(&self, off: usize) -> u32 {
        assert!(off % 4 == 0 && off < 4096, "config offset");
        // SAFETY: inside this function's 4 KiB of the ECAM window from the
        // device tree (checked in `function`), aligned, identity mapped.
        unsafe { ((self.cfg + off) as *const u32).read_volatile() }
    }

    /// Writes the dword at `off`.
    pub fn write32(&self, off: usize, value: u32) {
        assert!(off % 4 == 0 && off < 4096, "config offset");
        // SAFETY: as in `read32`.
        unsafe { ((self.cfg + off) as *mut u32).write_volatile(value) }
    }

    /// (vendor, device), `None` if nothing answers (vendor 0xffff).
    pub fn ids(&self) -> Option<(u16, u16)> {
        let id = self.read32(ID);
        let vendor = id as u16;
        (vendor != 0xffff).then_some((vendor, (id >> 16) as u16))
    }

    /// Sets `bits` in Command without clearing Status bits (writes 0 there).
    pub fn enable(&self, bits: u32) -> u16 {
        let cmd = (self.read32(COMMAND) & 0xffff) | bits;
        self.write32(COMMAND, cmd);
        self.read32(COMMAND) as u16
    }
}

impl core::fmt::Display for Function {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.dev, self.func)
    }
}

/// The function `bus:dev.func` of `host`, if its config space is inside the
/// host's ECAM window.
pub fn function(host: &PcieHost, bus: u8, dev: u8, func: u8) -> Option<Function> {
    if bus < host.bus_start || bus > host.bus_end || dev >= 32 || func >= 8 {
        return None;
    }
    let off = (u64::from(bus - host.bus_start) << 20) | (u64::from(dev) << 15) | (u64::from(func) << 12);
    if off + 4096 > host.ecam.size {
        return None;
    }
    let cfg = usize::try_from(host.ecam.base.checked_add(off)?).ok()?;
    Some(Function { cfg, bus, dev, func })
}

/// Every function present on the host's first bus.
pub fn scan_first_bus(host: &PcieHost) -> impl Iterator<Item = (Function, u16, u16)> + '_ {
    let bus = host.bus_start;
    (0..32u8).flat_map(move |dev| {
        let multi = function(host, bus, dev, 0)
            .filter(|f| f.ids().is_some())
            .map(|f| f.read32(HEADER) & (1 << 23) != 0);
        let funcs = match multi {
            None => 0,
            Some(false) => 1,
            Some(true) => 8,
        };
        (0..funcs).filter_map(move |func| {
            let f = function(host, bus, dev, func)?;
            let (v, d) = f.ids()?;
            Some((f, v, d))
        })
    })
}

/// A decoded memory BAR.
#[derive(Clone, Copy)]
pub struct MemBar {
    /// The address on the PCI side (what the BAR holds).
    pub pci_addr: u64,
    /// Whether it is a 64-bit BAR (type 0b10).
    pub is_64: bool,
}

/// BAR0 of `f` if it is a memory BAR. Reads only: BARs are the
/// hypervisor's (or firmware's) to assign.
pub fn mem_bar0(f: &Function) -> Result<MemBar, u32> {
    let lo = f.read32(BAR0);
    if lo & 1 != 0 {
        return Err(lo);
    }
    let is_64 = (lo >> 1) & 3 == 2;
    let hi = if is_64 { u64::from(f.read32(BAR0 + 4)) } else { 0 };
    Ok(MemBar { pci_addr: (hi << 32) | u64::from(lo & !0xf), is_64 })
}

/// The size of the 32-bit memory BAR0, by the standard sizing probe (writes
/// all ones, reads the mask, restores). Only for an unassigned BAR.
pub fn size_bar0(f: &Function) -> u64 {
    let old = f.read32(BAR0);
    f.write32(BAR0, 0xffff_ffff);
    let mask = f.read32(BAR0) & !0xf;
    f.write32(BAR0, old);
    u64::from(!mask).wrapping_add(1) & 0xffff_ffff
}

/// The CPU address of PCI memory address `pci..pci + len`, through the
/// host's memory windows.
pub fn cpu_addr(host: &PcieHost, pci: u64, len: u64) -> Option<u64> {
    host.windows.iter().filter(|w| matches!(w.kind, PciSpace::Mem32 | PciSpace::Mem64)).find_map(|w| {
        let off = pci.checked_sub(w.pci_addr)?;
        (off.checked_add(len)? <= w.size).then(|| w.cpu_addr + off)
    })
}

/// The first 32-bit memory window of the host: (PCI address, size).
pub fn mem32_window(host: &PcieHost) -> Option<(u64, u64)> {
    host.windows.iter().find(|w| w.kind == PciSpace::Mem32).map(|w| (w.pci_addr, w.size))
}
