//! PCI configuration space through configuration mechanism #1 (ports 0xcf8
//! address / 0xcfc data, PCI local bus spec 3.0 §3.2.2.3.2) and the few
//! type 0 header fields the tests use (§6.1). Bus 0 only: q35 puts every
//! device the tests need there.

use crate::port::{inl, outl};

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

/// Vendor ID / Device ID (dword 0).
pub const ID: u8 = 0x00;
/// Command (low half of dword 1; Status in the high half, write 1 to clear).
pub const COMMAND: u8 = 0x04;
/// Header type (byte 2 of dword 3).
pub const HEADER: u8 = 0x0c;
/// BAR0.
pub const BAR0: u8 = 0x10;

/// Command.Memory Space Enable.
pub const CMD_MEM: u16 = 1 << 1;
/// Command.Bus Master Enable.
pub const CMD_BUS_MASTER: u16 = 1 << 2;

/// Where an unassigned 32-bit memory BAR0 is placed: the start of q35's
/// 32-bit PCI window, right after the 256 MiB ECAM at 0xb000_0000. SeaBIOS
/// (which runs before the PVH entry) normally assigns BARs already.
pub const FALLBACK_BAR_BASE: u64 = 0xc000_0000;

/// One function's configuration space.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct Function {
    /// Bus number.
    pub bus: u8,
    /// Device number (0..32).
    pub dev: u8,
    /// Function number (0..8).
    pub func: u8,
}

/// A memory BAR as found or assigned.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub struct MemBar {
    /// CPU (= bus) address of the window.
    pub base: u64,
    /// Its size in bytes (a power of two).
    pub size: u64,
    /// Whether this kernel assigned it (firmware had left it at 0).
    pub assigned_here: bool,
}

/// Why a BAR could not be used.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum BarError {
    /// The BAR is an I/O BAR.
    NotMemory,
    /// A 64-bit or reserved-type BAR (edu's is 32-bit; others are not needed yet).
    NotMem32(u32),
    /// Writing all ones read back no size bits: the BAR is not implemented.
    NotImplemented,
}

impl Function {
    fn address(&self, off: u8) -> u32 {
        1 << 31
            | u32::from(self.bus) << 16
            | u32::from(self.dev & 0x1f) << 11
            | u32::from(self.func & 0x7) << 8
            | u32::from(off & 0xfc)
    }

    /// The dword at `off` (rounded down to a multiple of 4).
    pub fn read32(&self, off: u8) -> u32 {
        // SAFETY: 0xcf8/0xcfc are the host bridge's configuration ports,
        // used only here, one CPU, so the address/data pair is not torn.
        unsafe {
            outl(CONFIG_ADDRESS, self.address(off));
            inl(CONFIG_DATA)
        }
    }

    /// Writes the dword at `off` (rounded down to a multiple of 4).
    pub fn write32(&self, off: u8, value: u32) {
        // SAFETY: as in `read32`.
        unsafe {
            outl(CONFIG_ADDRESS, self.address(off));
            outl(CONFIG_DATA, value);
        }
    }

    /// (vendor, device), `None` if nothing answers (vendor 0xffff).
    pub fn ids(&self) -> Option<(u16, u16)> {
        let id = self.read32(ID);
        let vendor = id as u16;
        (vendor != 0xffff).then_some((vendor, (id >> 16) as u16))
    }

    /// Whether function 0 of this device says it has more functions.
    pub fn multifunction(&self) -> bool {
        (self.read32(HEADER) >> 16) & 0x80 != 0
    }

    /// The Command register.
    pub fn command(&self) -> u16 {
        self.read32(COMMAND) as u16
    }

    /// Writes Command (Status, in the upper half, gets 0: nothing cleared).
    pub fn set_command(&self, cmd: u16) {
        self.write32(COMMAND, u32::from(cmd));
    }

    /// BAR0 as a 32-bit memory BAR: sized, and placed at
    /// [`FALLBACK_BAR_BASE`] if firmware left it unassigned. Memory decode is
    /// off while sizing and restored afterwards.
    pub fn bar0_mem32(&self) -> Result<MemBar, BarError> {
        let orig = self.read32(BAR0);
        if orig & 1 != 0 {
            return Err(BarError::NotMemory);
        }
        if (orig >> 1) & 0x3 != 0 {
            return Err(BarError::NotMem32(orig));
        }
        let cmd = self.command();
        self.set_command(cmd & !CMD_MEM);
        self.write32(BAR0, 0xffff_ffff);
        let mask = self.read32(BAR0) & !0xf;
        let mut base = u64::from(orig & !0xf);
        let assigned_here = base == 0;
        if assigned_here {
            base = FALLBACK_BAR_BASE;
        }
        self.write32(BAR0, base as u32 | (orig & 0xf));
        self.set_command(cmd);
        if mask == 0 {
            return Err(BarError::NotImplemented);
        }
        Ok(MemBar { base, size: u64::from(!mask) + 1, assigned_here })
    }
}

/// Every function on bus 0 that answers, with its (vendor, device).
pub fn bus0() -> impl Iterator<Item = (Function, u16, u16)> {
    (0..32u8).flat_map(|dev| {
        let f0 = Function { bus: 0, dev, func: 0 };
        let funcs = match f0.ids() {
            None => 0,
            Some(_) if f0.multifunction() => 8,
            Some(_) => 1,
        };
        (0..funcs).filter_map(move |func| {
            let f = Function { bus: 0, dev, func };
            f.ids().map(|(v, d)| (f, v, d))
        })
    })
}

/// The first function on bus 0 with these IDs.
pub fn find(vendor: u16, device: u16) -> Option<Function> {
    bus0().find(|&(_, v, d)| v == vendor && d == device).map(|(f, _, _)| f)
}
