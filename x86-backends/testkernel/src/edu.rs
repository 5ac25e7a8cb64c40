//! QEMU's `edu` teaching device (QEMU docs/specs/edu.rst), PCI 1234:11e8: a
//! 4 KiB internal buffer at DMA address 0x40000 and a DMA engine that copies
//! between it and memory. Its default `dma_mask` is 28 bits: a DMA address at
//! or above 256 MiB would be clamped silently, so [`Edu::dma`] refuses one.
//! The same driver as the ARM demo guest's (`guests/demo/src/edu.rs`), with
//! the TSC for its deadline.

use crate::tsc::Deadline;
use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, ReadWrite},
};

/// PCI vendor ID.
pub const VENDOR: u16 = 0x1234;
/// PCI device ID.
pub const DEVICE: u16 = 0x11e8;
/// What the identification register reads (major 1, minor 0, 0xed).
pub const ID_VALUE: u32 = 0x0100_00ed;
/// The internal buffer's DMA address, as the DMA engine sees it.
pub const BUFFER: u64 = 0x40000;
/// The internal buffer's size: the most one DMA may move.
pub const BUFFER_SIZE: usize = 4096;
/// One past the highest DMA address edu reaches with its default 28-bit mask.
pub const DMA_LIMIT: u64 = 1 << 28;
/// How long one DMA may take (edu completes it about 100 ms after the start).
pub const DMA_TIMEOUT_MS: u64 = 2000;

register_bitfields![u64,
    /// The DMA command register.
    DMA_CMD [
        /// Start the transfer; reads 1 until it is done.
        START OFFSET(0) NUMBITS(1) [],
        /// 0: RAM to edu, 1: edu to RAM.
        DIRECTION OFFSET(1) NUMBITS(1) [
            ToDevice = 0,
            FromDevice = 1
        ],
        /// Raise an interrupt when done.
        RAISE_IRQ OFFSET(2) NUMBITS(1) []
    ]
];

register_structs! {
    /// edu's BAR0 registers (32-bit below 0x80, 64-bit from 0x80).
    EduRegs {
        (0x00 => id: ReadOnly<u32>),
        (0x04 => liveness: ReadWrite<u32>),
        (0x08 => _reserved0),
        (0x80 => dma_src: ReadWrite<u64>),
        (0x88 => dma_dst: ReadWrite<u64>),
        (0x90 => dma_count: ReadWrite<u64>),
        (0x98 => dma_cmd: ReadWrite<u64, DMA_CMD::Register>),
        (0xa0 => @END),
    }
}

/// An address as edu's DMA engine emits it: the physical address without an
/// IOMMU (or with it disabled), an IOVA with one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub struct DmaAddr(pub u64);

/// Which way a DMA moves data, named from the device's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, defmt::Format)]
pub enum Direction {
    /// Memory to edu's buffer (the device reads memory).
    ToDevice,
    /// edu's buffer to memory (the device writes memory).
    FromDevice,
}

/// Why a DMA did not run to completion.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum DmaError {
    /// A transfer was still running (DMA_CMD.START set) before this one.
    Busy,
    /// More than [`BUFFER_SIZE`] bytes asked for.
    TooLong(usize),
    /// The range reaches [`DMA_LIMIT`]: edu would clamp the address.
    BeyondDmaMask(DmaAddr),
    /// DMA_CMD.START still set after [`DMA_TIMEOUT_MS`]; the last value read.
    Timeout(u64),
}

/// An edu device whose BAR0 is at a known CPU address.
pub struct Edu {
    regs: &'static EduRegs,
}

impl Edu {
    /// The device with BAR0 at CPU address `bar0`.
    ///
    /// # Safety
    ///
    /// `bar0` is edu's BAR0, assigned and decoded (Command.MEM set), mapped
    /// uncached, and not accessed otherwise while this value lives.
    pub unsafe fn new(bar0: u64) -> Self {
        // SAFETY: per the contract, a valid register block for 'static.
        Self { regs: unsafe { &*(bar0 as usize as *const EduRegs) } }
    }

    /// The identification register.
    pub fn id(&self) -> u32 {
        self.regs.id.get()
    }

    /// The liveness check: edu returns the complement of what was written.
    pub fn liveness(&self, value: u32) -> u32 {
        self.regs.liveness.set(value);
        self.regs.liveness.get()
    }

    /// Copies `len` bytes between DMA address `addr` and the start of edu's
    /// buffer, and waits (bounded) for the engine to finish.
    pub fn dma(&self, dir: Direction, addr: DmaAddr, len: usize) -> Result<(), DmaError> {
        if len > BUFFER_SIZE {
            return Err(DmaError::TooLong(len));
        }
        if addr.0.checked_add(len as u64).is_none_or(|end| end > DMA_LIMIT) {
            return Err(DmaError::BeyondDmaMask(addr));
        }
        if self.regs.dma_cmd.is_set(DMA_CMD::START) {
            return Err(DmaError::Busy);
        }
        let (src, dst, way) = match dir {
            Direction::ToDevice => (addr.0, BUFFER, DMA_CMD::DIRECTION::ToDevice),
            Direction::FromDevice => (BUFFER, addr.0, DMA_CMD::DIRECTION::FromDevice),
        };
        self.regs.dma_src.set(src);
        self.regs.dma_dst.set(dst);
        self.regs.dma_count.set(len as u64);
        // What the device reads must be written before the start: a full
        // fence also keeps the compiler from sinking plain buffer stores
        // below the (volatile) command write.
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        self.regs.dma_cmd.write(DMA_CMD::START::SET + way);
        let deadline = Deadline::after_ms(DMA_TIMEOUT_MS);
        loop {
            let cmd = self.regs.dma_cmd.get();
            if cmd & 1 == 0 {
                // Reads of what the device wrote stay after this.
                core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
                return Ok(());
            }
            if deadline.expired() {
                return Err(DmaError::Timeout(cmd));
            }
        }
    }
}
