//! PCI configuration space as a partition sees it: the host bridge's ECAM
//! window at its own address, trapped and filtered so that only the
//! partition's functions exist (same bus/device/function numbers as on the
//! host; every other function reads as absent).
//!
//! Filtering on an assigned function:
//! - BARs read back what the hypervisor assigned (their MMIO is mapped into
//!   the partition at that address); the sizing protocol (write all ones,
//!   read the size mask) is emulated from the real size; other writes are
//!   ignored, so a guest cannot move a BAR onto memory it does not own.
//! - The MSI and MSI-X capabilities are read-only: message addresses are
//!   physical doorbells the partition must not program (no ITS is given to
//!   guests; drivers use INTx).
//! - The expansion ROM BAR reads as absent.
//! - Everything else (command, status, interrupt line, other
//!   capabilities) passes through.

use crate::pci::{Bar, Bdf, Ecam};
use spin::Mutex;

const BAR0: u16 = 0x10;
const BAR_END: u16 = 0x28;
const ROM: u16 = 0x30;
const CAP_PTR: u16 = 0x34;
const CAP_MSI: u8 = 0x05;
const CAP_MSIX: u8 = 0x11;

/// One assigned function's view.
pub struct Function {
    /// Where it sits (the same on host and guest).
    pub bdf: Bdf,
    /// Its BARs as assigned at boot.
    pub bars: heapless::Vec<Bar, 6>,
    /// Byte ranges of its config space that are read-only to the guest.
    read_only: heapless::Vec<(u16, u16), 4>,
    /// BAR registers (by dword index 0..6) in the middle of a size probe.
    sizing: Mutex<u8>,
}

impl Function {
    /// `bdf` with `bars`; finds the capabilities to protect.
    pub fn new(ecam: &Ecam, bdf: Bdf, bars: heapless::Vec<Bar, 6>) -> Self {
        let mut read_only = heapless::Vec::new();
        let mut ptr = (ecam.read32(bdf, CAP_PTR) & 0xfc) as u16;
        let mut budget = 48;
        while ptr >= 0x40 && budget > 0 {
            budget -= 1;
            let head = ecam.read32(bdf, ptr);
            let len = match head as u8 {
                CAP_MSI => 24,
                CAP_MSIX => 12,
                _ => 0,
            };
            if len > 0 {
                let _ = read_only.push((ptr, ptr + len));
            }
            ptr = ((head >> 8) & 0xfc) as u16;
        }
        Self { bdf, bars, read_only, sizing: Mutex::new(0) }
    }

    /// The BAR (and whether this is its upper half) behind config dword
    /// `off` (0x10..0x28).
    fn bar_at(&self, off: u16) -> Option<(&Bar, bool)> {
        let idx = ((off - BAR0) / 4) as u8;
        self.bars.iter().find_map(|b| {
            if b.index == idx {
                Some((b, false))
            } else if b.index + 1 == idx && is_64(b) {
                Some((b, true))
            } else {
                None
            }
        })
    }
}

fn is_64(b: &Bar) -> bool {
    b.wide
}

/// The partition's configuration space.
pub struct VirtualEcam {
    /// Guest-physical (= host) base of the window.
    pub base: u64,
    /// Its size.
    pub size: u64,
    /// First bus of the window.
    pub bus_start: u8,
    ecam: Ecam,
    functions: alloc::vec::Vec<Function>,
}

impl VirtualEcam {
    /// The window of `ecam` (at `base`, `size` bytes) showing `functions`.
    pub fn new(
        base: u64,
        size: u64,
        bus_start: u8,
        ecam: Ecam,
        functions: alloc::vec::Vec<Function>,
    ) -> Self {
        Self { base, size, bus_start, ecam, functions }
    }

    /// Whether `ipa` is in the window.
    pub fn claims(&self, ipa: u64) -> bool {
        ipa >= self.base && ipa - self.base < self.size
    }

    fn locate(&self, ipa: u64) -> (Option<&Function>, Bdf, u16) {
        let rel = ipa - self.base;
        let bdf = Bdf {
            bus: self.bus_start.wrapping_add((rel >> 20) as u8),
            dev: ((rel >> 15) & 0x1f) as u8,
            func: ((rel >> 12) & 7) as u8,
        };
        let off = (rel & 0xfff) as u16;
        (self.functions.iter().find(|f| f.bdf == bdf), bdf, off)
    }

    /// A guest read of `size` bytes at `ipa`.
    pub fn read(&self, ipa: u64, size: u8) -> u64 {
        let (f, bdf, off) = self.locate(ipa);
        let all_ones = if size >= 8 { u64::MAX } else { (1u64 << (u32::from(size) * 8)) - 1 };
        let Some(f) = f else { return all_ones };
        if size == 8 {
            return u64::from(self.read(ipa, 4) as u32) | (self.read(ipa + 4, 4) << 32);
        }
        let dword = off & !3;
        let value = if (BAR0..BAR_END).contains(&dword) {
            self.bar_read(f, dword)
        } else if dword == ROM {
            0
        } else {
            self.ecam.read32(bdf, dword)
        };
        u64::from(value >> ((off & 3) * 8)) & all_ones
    }

    fn bar_read(&self, f: &Function, dword: u16) -> u32 {
        let real = self.ecam.read32(f.bdf, dword);
        let Some((bar, upper)) = f.bar_at(dword) else { return 0 };
        let sizing = *f.sizing.lock() & (1 << ((dword - BAR0) / 4)) != 0;
        if sizing {
            let mask = !(bar.size - 1);
            if upper {
                (mask >> 32) as u32
            } else {
                (mask as u32 & !0xf) | (real & 0xf)
            }
        } else {
            real
        }
    }

    /// A guest write of `value` (`size` bytes) at `ipa`.
    pub fn write(&self, ipa: u64, size: u8, value: u64) {
        let (f, bdf, off) = self.locate(ipa);
        let Some(f) = f else { return };
        if size == 8 {
            self.write(ipa, 4, value & 0xffff_ffff);
            self.write(ipa + 4, 4, value >> 32);
            return;
        }
        let dword = off & !3;
        if (BAR0..BAR_END).contains(&dword) {
            let bit = 1u8 << ((dword - BAR0) / 4);
            let mut sizing = f.sizing.lock();
            if size == 4 && value as u32 == u32::MAX {
                *sizing |= bit;
            } else {
                *sizing &= !bit;
            }
            return;
        }
        if dword == ROM || f.read_only.iter().any(|&(s, e)| off >= s && off < e) {
            return;
        }
        self.ecam.write(bdf, off, size, value as u32);
    }
}
