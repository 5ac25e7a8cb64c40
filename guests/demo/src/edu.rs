//! QEMU's `edu` teaching device (QEMU docs/specs/edu.rst): a 4 KiB internal
//! buffer at DMA address 0x40000 and a DMA engine that copies between it and
//! memory. Run QEMU with `-device edu,dma_mask=0xffffffffff`: the default mask
//! (28 bits) would clamp RAM addresses above 256 MiB.

use crate::timer::Deadline;
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
/// Bytes of BAR0's register block the guest uses.
pub const REGS_SIZE: u64 = 0x100;
/// The internal buffer's DMA address, as the DMA engine sees it.
pub const BUFFER: u64 = 0x40000;
/// The internal buffer's size: the most one DMA may move.
pub const BUFFER_SIZE: usize = 4096;
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
        (0x04 => _reserved0),
        (0x24 => irq_status: ReadOnly<u32>),
        (0x28 => _reserved1),
        (0x60 => irq_raise: ReadWrite<u32>),
        (0x64 => irq_ack: ReadWrite<u32>),
        (0x68 => _reserved2),
        (0x80 => dma_src: ReadWrite<u64>),
        (0x88 => dma_dst: ReadWrite<u64>),
        (0x90 => dma_count: ReadWrite<u64>),
        (0x98 => dma_cmd: ReadWrite<u64, DMA_CMD::Register>),
        (0xa0 => @END),
    }
}

/// Which way a DMA moves data, named from the device's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Memory to edu's buffer (the device reads memory).
    ToDevice,
    /// edu's buffer to memory (the device writes memory).
    FromDevice,
}

/// Why a DMA did not run to completion.
#[derive(Clone, Copy, Debug)]
pub enum DmaError {
    /// A transfer was still running (DMA_CMD.START set) before this one.
    Busy,
    /// More than [`BUFFER_SIZE`] bytes asked for.
    TooLong(usize),
    /// DMA_CMD.START still set after [`DMA_TIMEOUT_MS`]; the last value read.
    Timeout(u64),
}

impl core::fmt::Display for DmaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DmaError::Busy => write!(f, "edu DMA engine busy before the start"),
            DmaError::TooLong(n) => write!(f, "{n} bytes is more than edu's {BUFFER_SIZE}-byte buffer"),
            DmaError::Timeout(cmd) => {
                write!(f, "DMA_CMD.START still set after {DMA_TIMEOUT_MS} ms (DMA_CMD {cmd:#x})")
            }
        }
    }
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
    /// `bar0` is edu's BAR0, assigned and decoded (Command.MEM set), identity
    /// mapped, and not accessed otherwise.
    pub unsafe fn new(bar0: u64) -> Self {
        // SAFETY: per the contract, a valid register block for 'static.
        Self { regs: unsafe { &*(bar0 as usize as *const EduRegs) } }
    }

    /// The identification register.
    pub fn id(&self) -> u32 {
        self.regs.id.get()
    }

    /// Raises edu's interrupt (INTx, level) with `bits` in its status.
    pub fn raise_irq(&self, bits: u32) {
        self.regs.irq_raise.set(bits);
    }

    /// The interrupt status bits raised and not acknowledged.
    pub fn irq_status(&self) -> u32 {
        self.regs.irq_status.get()
    }

    /// Acknowledges status `bits`: the interrupt line drops once none is left.
    pub fn ack_irq(&self, bits: u32) {
        self.regs.irq_ack.set(bits);
    }

    /// Copies `len` bytes between DMA address `addr` and the start of edu's
    /// buffer, and waits (bounded) for the engine to finish. `addr` is a DMA
    /// address: the guest's own RAM, or anything else the test aims at.
    pub fn dma(&self, dir: Direction, addr: u64, len: usize) -> Result<(), DmaError> {
        if len > BUFFER_SIZE {
            return Err(DmaError::TooLong(len));
        }
        if self.regs.dma_cmd.is_set(DMA_CMD::START) {
            return Err(DmaError::Busy);
        }
        let (src, dst, way) = match dir {
            Direction::ToDevice => (addr, BUFFER, DMA_CMD::DIRECTION::ToDevice),
            Direction::FromDevice => (BUFFER, addr, DMA_CMD::DIRECTION::FromDevice),
        };
        self.regs.dma_src.set(src);
        self.regs.dma_dst.set(dst);
        self.regs.dma_count.set(len as u64);
        // The buffer contents the device reads must be in memory before the
        // start (Device-nGnRnE already orders them; the DSB states it).
        crate::mem::dsb();
        self.regs.dma_cmd.write(DMA_CMD::START::SET + way);
        let deadline = Deadline::after_ms(DMA_TIMEOUT_MS);
        loop {
            let cmd = self.regs.dma_cmd.get();
            if cmd & 1 == 0 {
                // What the device wrote is visible to reads after this.
                crate::mem::dsb();
                return Ok(());
            }
            if deadline.expired() {
                return Err(DmaError::Timeout(cmd));
            }
        }
    }
}
