//! The command buffer and event log as rings of 16-byte entries in memory
//! (48882 2.4, 2.5, 3.4): the index arithmetic and the entry copies, over a
//! [`DmaMemory`], separate from the registers so host tests run them.
//!
//! Both rings are empty when head == tail. The command buffer is full when
//! advancing the tail would make it equal the head (one slot stays unused);
//! the IOMMU stops logging events (EventOverflow) when the event log is.

use iommu_common::addr::PhysAddr;

use super::cmd::Command;
use super::dma::DmaMemory;
use super::event::Event;

/// The command buffer as software writes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CmdRing {
    base: PhysAddr,
    entries: u32,
    tail: u32,
}

impl CmdRing {
    /// A ring of `entries` (a power of two) at `base`, tail at 0.
    pub const fn new(base: PhysAddr, entries: u32) -> Self {
        Self { base, entries, tail: 0 }
    }

    /// The software tail (entry index), as the tail register must hold it.
    pub const fn tail(&self) -> u32 {
        self.tail
    }

    /// Whether a command fits with the IOMMU's head at `head`.
    pub const fn has_room(&self, head: u32) -> bool {
        (self.tail + 1) % self.entries != head % self.entries
    }

    /// Writes `cmd` at the tail and advances it; `false` (nothing written)
    /// when the ring is full for `head`. The caller then publishes the tail.
    pub fn push<M: DmaMemory + ?Sized>(&mut self, mem: &M, head: u32, cmd: &Command) -> bool {
        if !self.has_room(head) {
            return false;
        }
        let [w0, w1] = cmd.encode();
        let at = self.base.0 + u64::from(self.tail) * 16;
        mem.write_u64(PhysAddr(at), w0);
        mem.write_u64(PhysAddr(at + 8), w1);
        self.tail = (self.tail + 1) % self.entries;
        true
    }
}

/// The event log as software reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventRing {
    base: PhysAddr,
    entries: u32,
}

impl EventRing {
    /// A log of `entries` (a power of two) at `base`.
    pub const fn new(base: PhysAddr, entries: u32) -> Self {
        Self { base, entries }
    }

    /// Decodes every record from `head` up to `tail` (entry indices; a
    /// `tail` outside the ring is clamped into it), clearing each slot, and
    /// returns the new head. At most one lap is read.
    pub fn drain<M: DmaMemory + ?Sized>(
        &self,
        mem: &M,
        head: u32,
        tail: u32,
        mut f: impl FnMut(Event),
    ) -> u32 {
        let (mut head, tail) = (head % self.entries, tail % self.entries);
        while head != tail {
            let at = self.base.0 + u64::from(head) * 16;
            let rec = [mem.read_u64(PhysAddr(at)), mem.read_u64(PhysAddr(at + 8))];
            mem.write_u64(PhysAddr(at), 0);
            mem.write_u64(PhysAddr(at + 8), 0);
            f(Event::decode(rec));
            head = (head + 1) % self.entries;
        }
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amdvi::cmd::InvRange;
    use crate::amdvi::dma::ArrayMemory;
    use crate::amdvi::event::Flags;
    use crate::amdvi::ids::{DeviceId, DomainId};
    use iommu_common::addr::Iova;

    #[test]
    fn commands_land_at_the_tail_and_wrap() {
        let mut mem = ArrayMemory::<1024>::new(PhysAddr(0x10_0000));
        let base = mem.alloc_zeroed(4 * 16, 4096).unwrap();
        let mut ring = CmdRing::new(base, 4);
        let inv = Command::InvalidateDevtabEntry { device: DeviceId(0x20) };
        assert!(ring.push(&mem, 0, &inv));
        // Opcode 2 in bits [63:60] of the first word, DeviceID in [15:0].
        assert_eq!(mem.read_u64(base), (2 << 60) | 0x20);
        assert!(ring.push(&mem, 0, &inv) && ring.push(&mem, 0, &inv));
        // Three in a four-entry ring: full until the IOMMU moves its head.
        assert!(!ring.push(&mem, 0, &inv));
        assert_eq!(ring.tail(), 3);
        let wait = Command::completion_wait_store(PhysAddr(0x10_0ff8), 7).unwrap();
        assert!(ring.push(&mem, 2, &wait));
        assert_eq!(ring.tail(), 0);
        assert_eq!(mem.read_u64(PhysAddr(base.0 + 48)), (1 << 60) | 0x10_0ff8 | 1);
        assert_eq!(mem.read_u64(PhysAddr(base.0 + 56)), 7);
        let pages = Command::InvalidateIommuPages {
            domain: DomainId(5),
            pasid: None,
            range: InvRange::Page(Iova(0x1000)),
            pde: false,
        };
        assert!(ring.push(&mem, 2, &pages));
        assert_eq!(mem.read_u64(base) >> 60, 3);
    }

    #[test]
    fn events_placed_in_memory_are_drained_and_cleared() {
        let mut mem = ArrayMemory::<1024>::new(PhysAddr(0x20_0000));
        let base = mem.alloc_zeroed(4 * 16, 4096).unwrap();
        let log = EventRing::new(base, 4);
        // IO_PAGE_FAULT (code 2 in [63:60]) for DeviceID 0x20, DomainID 1
        // in [47:32], RW (bit 53: a write), address in word 1; written at
        // slots 3 and 0 (wrapping), as the IOMMU would after three others.
        let fault = [(2u64 << 60) | (1 << 53) | (1 << 32) | 0x20, 0x1234_5000];
        for slot in [3u64, 0] {
            mem.write_u64(PhysAddr(base.0 + slot * 16), fault[0]);
            mem.write_u64(PhysAddr(base.0 + slot * 16 + 8), fault[1]);
        }
        let mut seen = heapless_vec();
        let head = log.drain(&mem, 3, 1, |e| seen.push(e));
        assert_eq!(head, 1);
        assert_eq!(seen.len, 2);
        for e in &seen.items[..2] {
            match e.unwrap() {
                Event::IoPageFault { device, addr, flags, .. } => {
                    assert_eq!((device, addr), (DeviceId(0x20), Iova(0x1234_5000)));
                    assert_eq!(flags, Flags::decode(fault[0]));
                    assert!(flags.rw);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(mem.read_u64(PhysAddr(base.0 + 48)), 0, "slot cleared");
        // Empty: nothing read.
        assert_eq!(log.drain(&mem, 1, 1, |_| panic!("no events")), 1);
    }

    struct Few {
        items: [Option<Event>; 4],
        len: usize,
    }

    impl Few {
        fn push(&mut self, e: Event) {
            self.items[self.len] = Some(e);
            self.len += 1;
        }
    }

    fn heapless_vec() -> Few {
        Few { items: [None; 4], len: 0 }
    }
}
