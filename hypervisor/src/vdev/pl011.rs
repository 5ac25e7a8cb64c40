//! The virtual console: an emulated PL011 (Arm DDI 0183) whose output lines
//! go to the hypervisor's log tagged with the partition's name.
//!
//! Enough of the register file for a polling driver and for Linux's
//! `amba-pl011` probe: data, flags (the transmitter is always empty, the
//! receiver always empty), the control registers read back what was written,
//! and the PrimeCell identification registers.

use spin::Mutex;

/// UARTDR: data.
const DR: u64 = 0x000;
/// UARTFR: flags.
const FR: u64 = 0x018;
/// UARTFR.RXFE: receive FIFO empty.
const FR_RXFE: u64 = 1 << 4;
/// UARTFR.TXFE: transmit FIFO empty.
const FR_TXFE: u64 = 1 << 7;
/// UARTIMSC..UARTDMACR: stored, read back.
const CONTROL: core::ops::Range<u64> = 0x024..0x04c;
/// UARTRIS / UARTMIS: no interrupt is ever raised.
const RIS: u64 = 0x03c;
const MIS: u64 = 0x040;
/// UARTPeriphID0..3, UARTPCellID0..3 (PL011 r1p5).
const ID_BASE: u64 = 0xfe0;
const IDS: [u8; 8] = [0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// UARTIMSC / UARTRIS bits: receive (RXIM) and receive timeout (RTIM).
const RX_BITS: u32 = 1 << 4 | 1 << 6;
/// UARTIMSC offset.
const IMSC: u64 = 0x038;

/// Longest line kept before it is flushed anyway.
const LINE: usize = 120;
/// Typed bytes waiting for the guest.
const RX_FIFO: usize = 64;

/// One partition's virtual PL011.
pub struct VirtualPl011 {
    /// Guest-physical base of its 4 KiB register frame.
    pub base: u64,
    control: Mutex<[u32; 10]>,
    line: Mutex<heapless::String<LINE>>,
    rx: Mutex<heapless::Deque<u8, RX_FIFO>>,
}

impl VirtualPl011 {
    /// A UART at guest-physical `base`.
    pub const fn new(base: u64) -> Self {
        Self {
            base,
            control: Mutex::new([0; 10]),
            line: Mutex::new(heapless::String::new()),
            rx: Mutex::new(heapless::Deque::new()),
        }
    }

    /// Whether `ipa` is one of its registers.
    pub fn claims(&self, ipa: u64) -> bool {
        (self.base..self.base + 0x1000).contains(&ipa)
    }

    /// A guest read of the register at `ipa`.
    pub fn read(&self, ipa: u64) -> u64 {
        let off = ipa - self.base;
        match off {
            DR => self.rx.lock().pop_front().map_or(0, u64::from),
            FR => FR_TXFE | if self.rx.lock().is_empty() { FR_RXFE } else { 0 },
            RIS => u64::from(self.rx_status()),
            MIS => u64::from(self.rx_status() & self.imsc()),
            o if CONTROL.contains(&o) => u64::from(self.control.lock()[((o - CONTROL.start) / 4) as usize]),
            o if (ID_BASE..ID_BASE + 32).contains(&o) && o % 4 == 0 => {
                u64::from(IDS[((o - ID_BASE) / 4) as usize])
            }
            _ => 0,
        }
    }

    fn imsc(&self) -> u32 {
        self.control.lock()[((IMSC - CONTROL.start) / 4) as usize]
    }

    /// UARTRIS receive bits: set while typed bytes wait.
    fn rx_status(&self) -> u32 {
        if self.rx.lock().is_empty() {
            0
        } else {
            RX_BITS
        }
    }

    /// Whether the guest wants an interrupt now: data waits and it unmasked
    /// the receive interrupts.
    pub fn rx_interrupt(&self) -> bool {
        self.rx_status() & self.imsc() != 0
    }

    /// A byte the user typed for this partition; false if its FIFO is full.
    pub fn push_input(&self, byte: u8) -> bool {
        self.rx.lock().push_back(byte).is_ok()
    }

    /// A guest write of `value` to the register at `ipa`; `tag` names the
    /// partition on the output. True if the write unmasked a pending
    /// receive interrupt.
    pub fn write(&self, ipa: u64, value: u64, tag: &str) -> bool {
        let off = ipa - self.base;
        match off {
            DR => self.put(value as u8, tag),
            o if CONTROL.contains(&o) && o != RIS && o != MIS => {
                self.control.lock()[((o - CONTROL.start) / 4) as usize] = value as u32;
                return o == IMSC && self.rx_interrupt();
            }
            _ => {}
        }
        false
    }

    fn put(&self, byte: u8, tag: &str) {
        let mut line = self.line.lock();
        match byte {
            b'\n' => flush(&mut line, tag),
            b'\r' => {}
            b => {
                let c = if b.is_ascii_graphic() || b == b' ' || b == b'\t' { b as char } else { '?' };
                if line.push(c).is_err() {
                    flush(&mut line, tag);
                    let _ = line.push(c);
                }
            }
        }
    }
}

fn flush(line: &mut heapless::String<LINE>, tag: &str) {
    defmt::info!("[{=str}] {=str}", tag, line.as_str());
    line.clear();
}
