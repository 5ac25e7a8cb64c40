//! The register frame: the one place the driver makes references to MMIO
//! from a pointer. The fixed block is at offset 0; the IOTLB registers and
//! the fault recording registers sit at offsets the capabilities give
//! (`ECAP_REG.IRO`, `CAP_REG.FRO`), checked against the frame size.

use core::fmt;
use core::ptr::NonNull;

use tock_registers::interfaces::Readable;

use crate::vtd::caps::Capabilities;
use crate::vtd::regs::{fault_recording_offset, iotlb_regs_offset, FaultRecordingReg, IotlbRegs, VtdRegs};

/// A remapping unit's register frame.
#[derive(Clone, Copy)]
pub struct VtdMmio<'r> {
    regs: &'r VtdRegs,
    base: NonNull<u8>,
    size: usize,
}

impl fmt::Debug for VtdMmio<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VtdMmio").field("base", &self.base).field("size", &self.size).finish()
    }
}

impl<'r> VtdMmio<'r> {
    /// The frame of `size` bytes at `base` (the DRHD's register base and
    /// size).
    ///
    /// # Safety
    ///
    /// `[base, base + size)` is the unit's register frame, mapped uncached
    /// for `'r`, at least [`FIXED_REGS_SIZE`](crate::vtd::regs::FIXED_REGS_SIZE)
    /// bytes, and accessed only through this value while it lives.
    pub unsafe fn new(base: NonNull<u8>, size: usize) -> Self {
        assert!(size >= core::mem::size_of::<VtdRegs>(), "register frame too small");
        // SAFETY: per the contract, a valid VtdRegs for 'r (tock registers
        // are UnsafeCell-based, so shared references are fine).
        let regs = unsafe { base.cast::<VtdRegs>().as_ref() };
        Self { regs, base, size }
    }

    /// The fixed register block.
    pub fn regs(&self) -> &'r VtdRegs {
        self.regs
    }

    /// Reads CAP_REG and ECAP_REG and decodes them.
    pub fn read_caps(&self) -> Capabilities {
        Capabilities::decode(self.regs.cap.get(), self.regs.ecap.get())
    }

    fn at<T>(&self, off: usize) -> Option<&'r T> {
        if off.checked_add(core::mem::size_of::<T>())? > self.size || off % 8 != 0 {
            return None;
        }
        // SAFETY: inside the frame (checked above) and 8-aligned, which is
        // all these 64-bit register structs need; the frame is valid for 'r
        // (constructor contract).
        Some(unsafe { self.base.add(off).cast::<T>().as_ref() })
    }

    /// IVA_REG and IOTLB_REG, or `None` if `ECAP_REG.IRO` points outside
    /// the frame.
    pub fn iotlb(&self, caps: &Capabilities) -> Option<&'r IotlbRegs> {
        self.at(iotlb_regs_offset(caps))
    }

    /// Fault recording register `index`, or `None` past `CAP_REG.NFR` or
    /// outside the frame.
    pub fn fault_record(&self, caps: &Capabilities, index: u16) -> Option<&'r FaultRecordingReg> {
        self.at(fault_recording_offset(caps, index)?)
    }
}
