//! ARM PrimeCell PL011 UART (ARM DDI 0183): the console carries binary defmt
//! frames out, decoded on the host; what the user types comes in and goes to
//! a partition's virtual console.

use tock_registers::{
    interfaces::{Readable, Writeable},
    register_bitfields, register_structs,
    registers::{ReadOnly, ReadWrite, WriteOnly},
};

register_bitfields! {u32,
    /// Flag register.
    FR [
        /// Transmit FIFO full.
        TXFF OFFSET(5) NUMBITS(1) [],
        /// Receive FIFO empty.
        RXFE OFFSET(4) NUMBITS(1) [],
        /// UART busy transmitting.
        BUSY OFFSET(3) NUMBITS(1) []
    ],
    /// Line control register.
    LCR_H [
        /// Word length.
        WLEN OFFSET(5) NUMBITS(2) [EightBit = 0b11],
        /// FIFO enable.
        FEN OFFSET(4) NUMBITS(1) []
    ],
    /// Control register.
    CR [
        /// Receive enable.
        RXE OFFSET(9) NUMBITS(1) [],
        /// Transmit enable.
        TXE OFFSET(8) NUMBITS(1) [],
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ]
}

register_structs! {
    /// The PL011 register block.
    pub Pl011Regs {
        (0x00 => dr: ReadWrite<u32>),
        (0x04 => _reserved0),
        (0x18 => fr: ReadOnly<u32, FR::Register>),
        (0x1c => _reserved1),
        (0x24 => ibrd: WriteOnly<u32>),
        (0x28 => fbrd: WriteOnly<u32>),
        (0x2c => lcr_h: WriteOnly<u32, LCR_H::Register>),
        (0x30 => cr: WriteOnly<u32, CR::Register>),
        (0x34 => _reserved2),
        (0x38 => imsc: ReadWrite<u32>),
        (0x3c => _reserved3),
        (0x44 => icr: WriteOnly<u32>),
        (0x48 => @END),
    }
}

/// Bounded wait for FIFO space: a UART that never drains must not hang the
/// hypervisor (the byte is dropped instead).
const TX_SPIN_BUDGET: u32 = 1_000_000;

/// A PL011 at a fixed MMIO address.
pub struct Pl011 {
    regs: *const Pl011Regs,
}

// SAFETY: the register block is MMIO shared by design; the logger serialises
// writers with its own lock.
unsafe impl Send for Pl011 {}
// SAFETY: as above; the type has no interior state besides the device.
unsafe impl Sync for Pl011 {}

impl Pl011 {
    /// Wraps the register block at `base`.
    ///
    /// # Safety
    /// `base` must be the PL011's MMIO address, identity mapped as device
    /// memory (or the MMU off), valid for the life of the program.
    pub const unsafe fn new(base: usize) -> Self {
        Self { regs: base as *const Pl011Regs }
    }

    fn regs(&self) -> &Pl011Regs {
        // SAFETY: `new`'s contract: a valid, permanently mapped register block.
        unsafe { &*self.regs }
    }

    /// Programs 115200 8N1 with FIFOs from the UART reference clock. Loaders
    /// usually did this already; the Pi firmware only with `enable_uart=1`.
    pub fn init(&self, clock_hz: Option<u32>) {
        let r = self.regs();
        let mut budget = TX_SPIN_BUDGET;
        while r.fr.is_set(FR::BUSY) && budget > 0 {
            budget -= 1;
            core::hint::spin_loop();
        }
        r.cr.set(0);
        r.icr.set(0x7ff);
        if let Some(clk) = clock_hz {
            // Divisor = clk / (16 * baud) as 16.6 fixed point.
            let div64 = (u64::from(clk) * 4).div_ceil(115_200);
            r.ibrd.set((div64 >> 6) as u32);
            r.fbrd.set((div64 & 0x3f) as u32);
        }
        r.lcr_h.write(LCR_H::WLEN::EightBit + LCR_H::FEN::SET);
        r.cr.write(CR::UARTEN::SET + CR::TXE::SET + CR::RXE::SET);
    }

    /// The next received byte, if any.
    pub fn read_byte(&self) -> Option<u8> {
        let r = self.regs();
        (!r.fr.is_set(FR::RXFE)).then(|| r.dr.get() as u8)
    }

    /// Raises the UART's interrupt when data arrives (UARTIMSC.RXIM and
    /// RTIM: FIFO level and receive timeout).
    pub fn enable_rx_interrupt(&self) {
        let r = self.regs();
        r.imsc.set(r.imsc.get() | 1 << 4 | 1 << 6);
    }

    /// Queues bytes for transmission.
    pub fn write(&self, bytes: &[u8]) {
        let r = self.regs();
        for &b in bytes {
            let mut budget = TX_SPIN_BUDGET;
            while r.fr.is_set(FR::TXFF) && budget > 0 {
                budget -= 1;
                core::hint::spin_loop();
            }
            r.dr.set(u32::from(b));
        }
    }
}
