//! QEMU's `edu` PCI device (QEMU docs/specs/edu.rst): a teaching device whose
//! DMA engine copies between its 4 KiB buffer and memory. With its default
//! 28-bit DMA mask and RAM above 1 GiB on `virt`, it reaches RAM only through
//! IOMMU translation, which is what the SMMU tests use it for.

use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, ReadWrite},
};

/// PCI vendor and device ID.
pub const VENDOR: u16 = 0x1234;
/// PCI device ID.
pub const DEVICE: u16 = 0x11e8;
/// Where the device's own buffer sits in its DMA address space.
pub const BUFFER: u64 = 0x4_0000;
/// Size of that buffer.
pub const BUFFER_SIZE: u64 = 4096;

register_bitfields! {u64,
    /// DMA command register.
    DMA_CMD [
        /// Start; reads back 1 while the transfer runs.
        RUN OFFSET(0) NUMBITS(1) [],
        /// 0: memory to the device buffer, 1: device buffer to memory.
        DIRECTION OFFSET(1) NUMBITS(1) [ToDevice = 0, FromDevice = 1],
        /// Raise an interrupt when done.
        IRQ OFFSET(2) NUMBITS(1) []
    ]
}

register_structs! {
    /// BAR0 registers.
    pub EduRegs {
        (0x00 => ident: ReadOnly<u32>),
        (0x04 => liveness: ReadWrite<u32>),
        (0x08 => _reserved0),
        (0x80 => dma_src: ReadWrite<u64>),
        (0x88 => dma_dst: ReadWrite<u64>),
        (0x90 => dma_count: ReadWrite<u64>),
        (0x98 => dma_cmd: ReadWrite<u64, DMA_CMD::Register>),
        (0xa0 => @END),
    }
}

/// A DMA that did not finish in time.
#[derive(Clone, Copy, defmt::Format)]
pub struct DmaTimeout;

/// Which way a DMA goes.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum Direction {
    /// Memory (at an IOVA) into the device's buffer: the device reads memory.
    ToDevice,
    /// The device's buffer out to memory: the device writes memory.
    FromDevice,
}

/// An `edu` whose BAR0 is mapped.
pub struct Edu {
    regs: *const EduRegs,
}

impl Edu {
    /// Wraps BAR0 at `bar0`.
    ///
    /// # Safety
    /// `bar0` must be the device's assigned BAR0, mapped as device memory.
    pub unsafe fn new(bar0: u64) -> Self {
        Self { regs: bar0 as *const EduRegs }
    }

    fn regs(&self) -> &EduRegs {
        // SAFETY: `new`'s contract.
        unsafe { &*self.regs }
    }

    /// Whether the device answers: identification 0x010000ed and the
    /// liveness register inverting what is written.
    pub fn alive(&self) -> bool {
        let r = self.regs();
        r.liveness.set(0x1234_5678);
        r.ident.get() & 0xff == 0xed && r.liveness.get() == !0x1234_5678
    }

    /// Copies `len` bytes between the device buffer offset `buf_off` and
    /// `iova`, and waits (bounded by `budget_us` of the architected counter).
    pub fn dma(
        &self,
        dir: Direction,
        iova: u64,
        buf_off: u64,
        len: u64,
        budget_us: u64,
    ) -> Result<(), DmaTimeout> {
        let r = self.regs();
        let (src, dst, d) = match dir {
            Direction::ToDevice => (iova, BUFFER + buf_off, DMA_CMD::DIRECTION::ToDevice),
            Direction::FromDevice => (BUFFER + buf_off, iova, DMA_CMD::DIRECTION::FromDevice),
        };
        r.dma_src.set(src);
        r.dma_dst.set(dst);
        r.dma_count.set(len);
        r.dma_cmd.write(DMA_CMD::RUN::SET + d);
        let deadline = crate::log::uptime_us() + budget_us;
        while r.dma_cmd.is_set(DMA_CMD::RUN) {
            if crate::log::uptime_us() > deadline {
                return Err(DmaTimeout);
            }
            core::hint::spin_loop();
        }
        Ok(())
    }
}
