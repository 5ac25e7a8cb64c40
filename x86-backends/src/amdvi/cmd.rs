//! Command buffer entries (48882 2.4): 128-bit commands as typed values,
//! and the planner that turns an IOVA range into INVALIDATE_IOMMU_PAGES.
//!
//! Every command has its opcode in bits `[63:60]` (the top nibble of the
//! second dword). Addresses of invalidations are `Address[63:12]` with the
//! S bit choosing between one 4 KiB page (S=0) and a naturally aligned
//! power-of-two range (S=1) whose size is encoded in the address: the
//! first zero bit at or above bit 12, at position k, gives 2^(k+1) bytes.
//! All ones in `[62:12]` (0x7FFF_FFFF_FFFF_F000) with S=1 is "all pages".

use core::fmt;

use iommu_common::addr::{Iova, PhysAddr};

use crate::amdvi::ids::{DeviceId, DomainId, Pasid};

/// Opcodes (2.4).
pub mod opcode {
    /// COMPLETION_WAIT.
    pub const COMPLETION_WAIT: u8 = 0x1;
    /// INVALIDATE_DEVTAB_ENTRY.
    pub const INVALIDATE_DEVTAB_ENTRY: u8 = 0x2;
    /// INVALIDATE_IOMMU_PAGES.
    pub const INVALIDATE_IOMMU_PAGES: u8 = 0x3;
    /// INVALIDATE_IOTLB_PAGES.
    pub const INVALIDATE_IOTLB_PAGES: u8 = 0x4;
    /// INVALIDATE_INTERRUPT_TABLE.
    pub const INVALIDATE_INTERRUPT_TABLE: u8 = 0x5;
    /// PREFETCH_IOMMU_PAGES.
    pub const PREFETCH_IOMMU_PAGES: u8 = 0x6;
    /// COMPLETE_PPR_REQUEST.
    pub const COMPLETE_PPR_REQUEST: u8 = 0x7;
    /// INVALIDATE_IOMMU_ALL.
    pub const INVALIDATE_IOMMU_ALL: u8 = 0x8;
}

/// The address field value meaning "all pages" (with S=1).
pub const ALL_PAGES: u64 = 0x7fff_ffff_ffff_f000;

const OPCODE_SHIFT: u32 = 60;
const S: u64 = 1 << 0;
const PDE: u64 = 1 << 1;
const GN: u64 = 1 << 2;
const INVAL: u64 = 1 << 4;
const ADDR: u64 = !0xfff;

/// The pages an invalidation covers (its Address and S fields).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvRange {
    /// One 4 KiB page (S=0).
    Page(Iova),
    /// The naturally aligned 2^shift-byte block at `base` (S=1), 13..=63.
    Block {
        /// Base (aligned to 2^shift).
        base: Iova,
        /// log2 of the size.
        shift: u32,
    },
    /// Every page (S=1, Address = 0x7FFF_FFFF_FFFF_F000).
    All,
}

impl InvRange {
    /// The smallest range covering the 2^shift-byte block at `base` (which
    /// must be aligned to it): a page, a block, or all pages past 2^63.
    pub const fn aligned(base: Iova, shift: u32) -> Self {
        if shift <= 12 {
            Self::Page(Iova(base.0 & ADDR))
        } else if shift >= 64 {
            Self::All
        } else {
            Self::Block { base, shift }
        }
    }

    /// The (Address, S) pair: Address bits `[63:12]` and the S bit.
    pub const fn encode(self) -> (u64, bool) {
        match self {
            Self::Page(a) => (a.0 & ADDR, false),
            Self::Block { base, shift } => ((base.0 | ((1 << (shift - 1)) - 1)) & ADDR, true),
            Self::All => (ALL_PAGES, true),
        }
    }

    /// Parses an (Address, S) pair.
    pub const fn decode(addr: u64, s: bool) -> Self {
        let addr = addr & ADDR;
        if !s {
            return Self::Page(Iova(addr));
        }
        let shift = (addr | 0xfff).trailing_ones() + 1;
        if shift >= 63 && addr & ALL_PAGES == ALL_PAGES {
            return Self::All;
        }
        if shift >= 64 {
            return Self::All;
        }
        Self::Block { base: Iova(addr & !((1 << shift) - 1)), shift }
    }

    /// First byte and size in bytes (`None` for [`InvRange::All`]).
    pub const fn span(self) -> Option<(u64, u64)> {
        match self {
            Self::Page(a) => Some((a.0, 0x1000)),
            Self::Block { base, shift } => Some((base.0, 1 << shift)),
            Self::All => None,
        }
    }
}

/// A command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// COMPLETION_WAIT: completes once every earlier command has; then
    /// stores `store` (S), raises ComWaitInt (I), and with F waits for
    /// outstanding device IOTLB invalidations too.
    CompletionWait {
        /// S: store `data` at `addr` (8-byte aligned).
        store: Option<(PhysAddr, u64)>,
        /// I: interrupt on completion.
        interrupt: bool,
        /// F: flush queue.
        flush: bool,
    },
    /// INVALIDATE_DEVTAB_ENTRY.
    InvalidateDevtabEntry {
        /// DeviceID.
        device: DeviceId,
    },
    /// INVALIDATE_IOMMU_PAGES.
    InvalidateIommuPages {
        /// DomainID.
        domain: DomainId,
        /// GN and PASID: a guest (PASID-tagged) invalidation when `Some`.
        pasid: Option<Pasid>,
        /// Address and S.
        range: InvRange,
        /// PDE: also invalidate cached page directory entries.
        pde: bool,
    },
    /// INVALIDATE_IOTLB_PAGES: a device (ATS) IOTLB invalidation.
    InvalidateIotlbPages {
        /// DeviceID.
        device: DeviceId,
        /// GN and PASID.
        pasid: Option<Pasid>,
        /// Maxpend.
        maxpend: u8,
        /// QueueID.
        queue_id: u16,
        /// Address and S.
        range: InvRange,
    },
    /// INVALIDATE_INTERRUPT_TABLE.
    InvalidateInterruptTable {
        /// DeviceID.
        device: DeviceId,
    },
    /// PREFETCH_IOMMU_PAGES.
    PrefetchIommuPages {
        /// DeviceID.
        device: DeviceId,
        /// GN and PASID.
        pasid: Option<Pasid>,
        /// PFCount: number of translations to prefetch.
        pf_count: u8,
        /// Address (4 KiB aligned).
        addr: Iova,
        /// S: size bit (as for invalidations).
        size: bool,
        /// Inval: invalidate before prefetching.
        inval: bool,
    },
    /// COMPLETE_PPR_REQUEST.
    CompletePprRequest {
        /// DeviceID.
        device: DeviceId,
        /// GN and PASID.
        pasid: Option<Pasid>,
        /// CompletionTag (PRG index, 9 bits).
        tag: u16,
        /// PRI response code (4 bits).
        status: u8,
    },
    /// INVALIDATE_IOMMU_ALL (EFR.IASup).
    InvalidateIommuAll,
}

/// Why a command could not be built or parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdError {
    /// An opcode this module does not know.
    UnknownOpcode(u8),
    /// Bits set outside the opcode's fields.
    ReservedBits {
        /// The opcode.
        opcode: u8,
        /// Which 64-bit word.
        word: u8,
        /// The bits.
        bits: u64,
    },
    /// A COMPLETION_WAIT store address not 8-byte aligned below 2^52.
    BadStoreAddress(PhysAddr),
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOpcode(op) => write!(f, "unknown command opcode {op:#x}"),
            Self::ReservedBits { opcode, word, bits } => {
                write!(f, "{}: reserved bits {bits:#018x} in word {word}", opcode_name(*opcode))
            }
            Self::BadStoreAddress(a) => write!(f, "COMPLETION_WAIT: store address {a:#x} not 8-byte aligned"),
        }
    }
}

/// The spec name of an opcode, for logs.
pub fn opcode_name(op: u8) -> &'static str {
    match op {
        opcode::COMPLETION_WAIT => "COMPLETION_WAIT",
        opcode::INVALIDATE_DEVTAB_ENTRY => "INVALIDATE_DEVTAB_ENTRY",
        opcode::INVALIDATE_IOMMU_PAGES => "INVALIDATE_IOMMU_PAGES",
        opcode::INVALIDATE_IOTLB_PAGES => "INVALIDATE_IOTLB_PAGES",
        opcode::INVALIDATE_INTERRUPT_TABLE => "INVALIDATE_INTERRUPT_TABLE",
        opcode::PREFETCH_IOMMU_PAGES => "PREFETCH_IOMMU_PAGES",
        opcode::COMPLETE_PPR_REQUEST => "COMPLETE_PPR_REQUEST",
        opcode::INVALIDATE_IOMMU_ALL => "INVALIDATE_IOMMU_ALL",
        _ => "UNKNOWN",
    }
}

const fn pasid_bits(p: Option<Pasid>) -> (u64, u64) {
    match p {
        Some(p) => (p.get() as u64, GN),
        None => (0, 0),
    }
}

const fn pasid_of(gn: bool, v: u64) -> Option<Pasid> {
    if gn {
        Some(Pasid::from_field(v))
    } else {
        None
    }
}

/// Bits each opcode may set, words 0 and 1 (opcode excluded).
const fn allowed(op: u8) -> Option<[u64; 2]> {
    Some(match op {
        opcode::COMPLETION_WAIT => [0x000f_ffff_ffff_ffff, u64::MAX],
        opcode::INVALIDATE_DEVTAB_ENTRY | opcode::INVALIDATE_INTERRUPT_TABLE => [0xffff, 0],
        opcode::INVALIDATE_IOMMU_PAGES => [0x0000_ffff_000f_ffff, ADDR | S | PDE | GN],
        opcode::INVALIDATE_IOTLB_PAGES => [0x0fff_ffff_ffff_ffff, ADDR | S | GN],
        opcode::PREFETCH_IOMMU_PAGES => [0x000f_ffff_ff00_ffff, ADDR | S | GN | INVAL],
        opcode::COMPLETE_PPR_REQUEST => [0x000f_ffff_0000_ffff, GN | (0x1ff << 32) | (0xf << 44)],
        opcode::INVALIDATE_IOMMU_ALL => [0, 0],
        _ => return None,
    })
}

impl Command {
    /// A COMPLETION_WAIT that stores `data` at `addr` (the usual way to
    /// wait for the command buffer: poll the store).
    pub const fn completion_wait_store(addr: PhysAddr, data: u64) -> Result<Self, CmdError> {
        if addr.0 & 7 != 0 || addr.0 >> 52 != 0 {
            return Err(CmdError::BadStoreAddress(addr));
        }
        Ok(Self::CompletionWait { store: Some((addr, data)), interrupt: false, flush: false })
    }

    /// The opcode.
    pub const fn opcode(&self) -> u8 {
        match self {
            Self::CompletionWait { .. } => opcode::COMPLETION_WAIT,
            Self::InvalidateDevtabEntry { .. } => opcode::INVALIDATE_DEVTAB_ENTRY,
            Self::InvalidateIommuPages { .. } => opcode::INVALIDATE_IOMMU_PAGES,
            Self::InvalidateIotlbPages { .. } => opcode::INVALIDATE_IOTLB_PAGES,
            Self::InvalidateInterruptTable { .. } => opcode::INVALIDATE_INTERRUPT_TABLE,
            Self::PrefetchIommuPages { .. } => opcode::PREFETCH_IOMMU_PAGES,
            Self::CompletePprRequest { .. } => opcode::COMPLETE_PPR_REQUEST,
            Self::InvalidateIommuAll => opcode::INVALIDATE_IOMMU_ALL,
        }
    }

    /// The two 64-bit words (bits `[63:0]` first).
    pub fn encode(&self) -> [u64; 2] {
        let op = u64::from(self.opcode()) << OPCODE_SHIFT;
        let [w0, w1] = match *self {
            Self::CompletionWait { store, interrupt, flush } => {
                let (addr, data, s) = match store {
                    Some((a, d)) => (a.0 & 0x000f_ffff_ffff_fff8, d, S),
                    None => (0, 0, 0),
                };
                [addr | s | (u64::from(interrupt) << 1) | (u64::from(flush) << 2), data]
            }
            Self::InvalidateDevtabEntry { device } | Self::InvalidateInterruptTable { device } => {
                [u64::from(device.0), 0]
            }
            Self::InvalidateIommuPages { domain, pasid, range, pde } => {
                let (p, gn) = pasid_bits(pasid);
                let (addr, s) = range.encode();
                [p | (u64::from(domain.0) << 32), addr | gn | (u64::from(pde) << 1) | u64::from(s)]
            }
            Self::InvalidateIotlbPages { device, pasid, maxpend, queue_id, range } => {
                let (p, gn) = pasid_bits(pasid);
                let (addr, s) = range.encode();
                [
                    u64::from(device.0)
                        | ((p & 0xff) << 16)
                        | (u64::from(maxpend) << 24)
                        | (u64::from(queue_id) << 32)
                        | ((p >> 8) << 48),
                    addr | gn | u64::from(s),
                ]
            }
            Self::PrefetchIommuPages { device, pasid, pf_count, addr, size, inval } => {
                let (p, gn) = pasid_bits(pasid);
                [
                    u64::from(device.0) | (u64::from(pf_count) << 24) | (p << 32),
                    (addr.0 & ADDR) | gn | u64::from(size) | (u64::from(inval) << 4),
                ]
            }
            Self::CompletePprRequest { device, pasid, tag, status } => {
                let (p, gn) = pasid_bits(pasid);
                [
                    u64::from(device.0) | (p << 32),
                    gn | ((u64::from(tag) & 0x1ff) << 32) | ((u64::from(status) & 0xf) << 44),
                ]
            }
            Self::InvalidateIommuAll => [0, 0],
        };
        [w0 | op, w1]
    }

    /// Parses two words; unknown opcodes and stray bits are errors.
    pub fn decode(w: [u64; 2]) -> Result<Self, CmdError> {
        let op = (w[0] >> OPCODE_SHIFT) as u8;
        let ok = allowed(op).ok_or(CmdError::UnknownOpcode(op))?;
        let w0 = w[0] & !(0xf << OPCODE_SHIFT);
        for (i, (v, m)) in [w0, w[1]].into_iter().zip(ok).enumerate() {
            if v & !m != 0 {
                return Err(CmdError::ReservedBits { opcode: op, word: i as u8, bits: v & !m });
            }
        }
        let gn = w[1] & GN != 0;
        let dev = DeviceId(w0 as u16);
        Ok(match op {
            opcode::COMPLETION_WAIT => Self::CompletionWait {
                store: if w0 & S != 0 { Some((PhysAddr(w0 & 0x000f_ffff_ffff_fff8), w[1])) } else { None },
                interrupt: w0 & 2 != 0,
                flush: w0 & 4 != 0,
            },
            opcode::INVALIDATE_DEVTAB_ENTRY => Self::InvalidateDevtabEntry { device: dev },
            opcode::INVALIDATE_INTERRUPT_TABLE => Self::InvalidateInterruptTable { device: dev },
            opcode::INVALIDATE_IOMMU_PAGES => Self::InvalidateIommuPages {
                domain: DomainId((w0 >> 32) as u16),
                pasid: pasid_of(gn, w0),
                range: InvRange::decode(w[1], w[1] & S != 0),
                pde: w[1] & PDE != 0,
            },
            opcode::INVALIDATE_IOTLB_PAGES => Self::InvalidateIotlbPages {
                device: dev,
                pasid: pasid_of(gn, ((w0 >> 16) & 0xff) | ((w0 >> 48) << 8)),
                maxpend: (w0 >> 24) as u8,
                queue_id: (w0 >> 32) as u16,
                range: InvRange::decode(w[1], w[1] & S != 0),
            },
            opcode::PREFETCH_IOMMU_PAGES => Self::PrefetchIommuPages {
                device: dev,
                pasid: pasid_of(gn, w0 >> 32),
                pf_count: (w0 >> 24) as u8,
                addr: Iova(w[1] & ADDR),
                size: w[1] & S != 0,
                inval: w[1] & INVAL != 0,
            },
            opcode::COMPLETE_PPR_REQUEST => Self::CompletePprRequest {
                device: dev,
                pasid: pasid_of(gn, w0 >> 32),
                tag: ((w[1] >> 32) & 0x1ff) as u16,
                status: ((w[1] >> 44) & 0xf) as u8,
            },
            _ => Self::InvalidateIommuAll,
        })
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(opcode_name(self.opcode()))?;
        match self {
            Self::InvalidateDevtabEntry { device } | Self::InvalidateInterruptTable { device } => {
                write!(f, " dev {device}")
            }
            Self::InvalidateIommuPages { domain, range, .. } => write!(f, " {domain} {range:?}"),
            _ => Ok(()),
        }
    }
}

/// When to stop splitting a range into exact blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidationPolicy {
    /// At most this many commands for an exact cover; beyond, one covering
    /// block (or all pages) that over-invalidates. 1 gives the fewest
    /// commands always (Linux's choice).
    pub max_commands: usize,
}

impl Default for InvalidationPolicy {
    fn default() -> Self {
        Self { max_commands: 8 }
    }
}

/// The INVALIDATE_IOMMU_PAGES for one unmap, yielded one at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidationPlan {
    /// An exact cover: the fewest naturally aligned power-of-two blocks
    /// whose union is the page-rounded range.
    Exact(Blocks),
    /// One command over-covering the range (a covering block or all pages).
    Covering(Option<Command>),
}

/// The greedy decomposition of `[addr, end)` into aligned blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocks {
    domain: DomainId,
    pde: bool,
    addr: u64,
    end: u64,
}

impl Blocks {
    fn next_block(&self) -> Option<(u64, u32)> {
        if self.addr >= self.end {
            return None;
        }
        let align = if self.addr == 0 { 64 } else { self.addr.trailing_zeros() };
        let room = 63 - (self.end - self.addr).leading_zeros();
        Some((self.addr, align.min(room)))
    }
}

impl Iterator for Blocks {
    type Item = Command;

    fn next(&mut self) -> Option<Command> {
        let (addr, shift) = self.next_block()?;
        self.addr = addr.saturating_add(1u64 << shift);
        Some(Command::InvalidateIommuPages {
            domain: self.domain,
            pasid: None,
            range: InvRange::aligned(Iova(addr), shift),
            pde: self.pde,
        })
    }
}

impl Iterator for InvalidationPlan {
    type Item = Command;

    fn next(&mut self) -> Option<Command> {
        match self {
            Self::Exact(b) => b.next(),
            Self::Covering(c) => c.take(),
        }
    }
}

/// Plans the INVALIDATE_IOMMU_PAGES (host translations of `domain`) that
/// cover `[iova, iova + len)`, rounded out to 4 KiB pages: the exact
/// decomposition into naturally aligned power-of-two blocks (the fewest
/// commands that invalidate nothing else) while it takes at most
/// `policy.max_commands`, otherwise one command: the smallest naturally
/// aligned block containing the range, or all pages when that is the whole
/// 64-bit space. `pde` also drops cached PDEs (needed after freeing tables).
pub fn plan_invalidation(
    domain: DomainId,
    iova: Iova,
    len: u64,
    pde: bool,
    policy: InvalidationPolicy,
) -> InvalidationPlan {
    let all = || {
        InvalidationPlan::Covering(Some(Command::InvalidateIommuPages {
            domain,
            pasid: None,
            range: InvRange::All,
            pde,
        }))
    };
    if len == 0 {
        return InvalidationPlan::Exact(Blocks { domain, pde, addr: 0, end: 0 });
    }
    let first = iova.0 & ADDR;
    let Some(last) = iova.0.checked_add(len - 1) else {
        return all();
    };
    let last = last | 0xfff;
    let Some(end) = last.checked_add(1) else {
        // The range reaches the top page: cover up to it.
        let shift = 64 - (first ^ last).leading_zeros();
        if shift >= 64 {
            return all();
        }
        return InvalidationPlan::Covering(Some(Command::InvalidateIommuPages {
            domain,
            pasid: None,
            range: InvRange::aligned(Iova(first & !((1 << shift) - 1)), shift.max(12)),
            pde,
        }));
    };
    let blocks = Blocks { domain, pde, addr: first, end };
    if blocks.clone().take(policy.max_commands.saturating_add(1)).count() <= policy.max_commands {
        return InvalidationPlan::Exact(blocks);
    }
    // Smallest naturally aligned block containing [first, last].
    let shift = 64 - (first ^ last).leading_zeros();
    if shift >= 64 {
        return all();
    }
    InvalidationPlan::Covering(Some(Command::InvalidateIommuPages {
        domain,
        pasid: None,
        range: InvRange::aligned(Iova(first & !((1u64 << shift) - 1)), shift),
        pde,
    }))
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    // Expected words are written from the command figures (2.4): opcode
    // [63:60] of the first quadword; bit n of the 128-bit command is bit
    // n - 64 of word 1 for n >= 64.

    const fn op(o: u64) -> u64 {
        o << 60
    }

    #[test]
    fn completion_wait() {
        // S [0], I [1], F [2], Store Address [51:3], Store Data [127:64].
        let c =
            Command::completion_wait_store(PhysAddr(0x000f_ffff_ffff_fff8), 0xdead_beef_0000_0001).unwrap();
        assert_eq!(c.encode(), [op(1) | 0x000f_ffff_ffff_fff8 | 1, 0xdead_beef_0000_0001]);
        assert_eq!(Command::decode(c.encode()), Ok(c));
        let c = Command::CompletionWait { store: None, interrupt: true, flush: true };
        assert_eq!(c.encode(), [op(1) | 0b110, 0]);
        assert_eq!(
            Command::completion_wait_store(PhysAddr(0x1004), 0),
            Err(CmdError::BadStoreAddress(PhysAddr(0x1004)))
        );
    }

    #[test]
    fn invalidate_devtab_and_interrupt_table() {
        // DeviceID [15:0].
        let c = Command::InvalidateDevtabEntry { device: DeviceId(0x0108) };
        assert_eq!(c.encode(), [op(2) | 0x0108, 0]);
        let c = Command::InvalidateInterruptTable { device: DeviceId(0xffff) };
        assert_eq!(c.encode(), [op(5) | 0xffff, 0]);
        assert_eq!(Command::InvalidateIommuAll.encode(), [op(8), 0]);
    }

    #[test]
    fn invalidate_iommu_pages() {
        // PASID [19:0], DomainID [47:32]; S [64], PDE [65], GN [66],
        // Address [127:76].
        let c = Command::InvalidateIommuPages {
            domain: DomainId(0xabcd),
            pasid: Pasid::new(0xf_1234),
            range: InvRange::Page(Iova(0x1234_5000)),
            pde: true,
        };
        assert_eq!(c.encode(), [op(3) | 0xf_1234 | (0xabcd << 32), 0x1234_5000 | 0b110]);
        assert_eq!(Command::decode(c.encode()), Ok(c));
        // All pages: Address 0x7FFF_FFFF_FFFF_F000 with S=1 (and PDE=1).
        let c = Command::InvalidateIommuPages {
            domain: DomainId(1),
            pasid: None,
            range: InvRange::All,
            pde: true,
        };
        assert_eq!(c.encode(), [op(3) | (1 << 32), 0x7fff_ffff_ffff_f000 | 0b011]);
        assert_eq!(Command::decode(c.encode()), Ok(c));
    }

    #[test]
    fn size_encoding() {
        // 8 KiB at 0x2000: bit 12 = 0. 16 KiB at 0x4000: bit 12 = 1, bit 13 = 0.
        // 2 MiB at 0x20_0000: bits [19:12] ones, bit 20 zero.
        assert_eq!(InvRange::aligned(Iova(0x2000), 13).encode(), (0x2000, true));
        assert_eq!(InvRange::aligned(Iova(0x4000), 14).encode(), (0x5000, true));
        assert_eq!(InvRange::aligned(Iova(0x20_0000), 21).encode(), (0x2f_f000, true));
        assert_eq!(InvRange::decode(0x2f_f000, true), InvRange::Block { base: Iova(0x20_0000), shift: 21 });
        assert_eq!(InvRange::decode(0x2f_f000, false), InvRange::Page(Iova(0x2f_f000)));
        // 2^63 at 0: bits [61:12] ones, bit 62 zero.
        assert_eq!(InvRange::aligned(Iova(0), 63).encode(), (0x3fff_ffff_ffff_f000, true));
        assert_eq!(InvRange::decode(ALL_PAGES, true), InvRange::All);
        assert_eq!(InvRange::decode(u64::MAX, true), InvRange::All);
        assert_eq!(InvRange::aligned(Iova(0), 64), InvRange::All);
    }

    #[test]
    fn invalidate_iotlb_pages() {
        // DeviceID [15:0], PASID[7:0] [23:16], Maxpend [31:24], QueueID
        // [47:32], PASID[19:8] [59:48]; S [64], GN [66], Address [127:76].
        let c = Command::InvalidateIotlbPages {
            device: DeviceId(0x0010),
            pasid: Pasid::new(0xa_bc12),
            maxpend: 0x20,
            queue_id: 0x5555,
            range: InvRange::aligned(Iova(0x4000), 14),
        };
        assert_eq!(
            c.encode(),
            [op(4) | 0x0010 | (0x12 << 16) | (0x20 << 24) | (0x5555 << 32) | (0xabc << 48), 0x5000 | 0b101]
        );
        assert_eq!(Command::decode(c.encode()), Ok(c));
    }

    #[test]
    fn prefetch_and_complete_ppr() {
        // PREFETCH: DeviceID [15:0], PFCount [31:24], PASID [51:32]; S [64],
        // GN [66], Inval [68], Address [127:76].
        let c = Command::PrefetchIommuPages {
            device: DeviceId(3),
            pasid: Pasid::new(7),
            pf_count: 4,
            addr: Iova(0x9000),
            size: false,
            inval: true,
        };
        assert_eq!(c.encode(), [op(6) | 3 | (4 << 24) | (7 << 32), 0x9000 | (1 << 4) | (1 << 2)]);
        assert_eq!(Command::decode(c.encode()), Ok(c));
        // COMPLETE_PPR_REQUEST: DeviceID [15:0], PASID [51:32]; GN [66],
        // CompletionTag [104:96], status [111:108].
        let c = Command::CompletePprRequest { device: DeviceId(9), pasid: None, tag: 0x1ff, status: 0xf };
        assert_eq!(c.encode(), [op(7) | 9, (0x1ff << 32) | (0xf << 44)]);
        assert_eq!(Command::decode(c.encode()), Ok(c));
    }

    #[test]
    fn decode_rejects_garbage() {
        assert_eq!(Command::decode([0, 0]), Err(CmdError::UnknownOpcode(0)));
        assert_eq!(Command::decode([op(0xf), 0]), Err(CmdError::UnknownOpcode(0xf)));
        assert_eq!(
            Command::decode([op(2) | (1 << 16), 0]),
            Err(CmdError::ReservedBits { opcode: 2, word: 0, bits: 1 << 16 })
        );
        assert_eq!(
            Command::decode([op(3), 1 << 3]),
            Err(CmdError::ReservedBits { opcode: 3, word: 1, bits: 1 << 3 })
        );
    }

    fn plan(start: u64, len: u64, max: usize) -> Vec<InvRange> {
        plan_invalidation(DomainId(1), Iova(start), len, false, InvalidationPolicy { max_commands: max })
            .map(|c| match c {
                Command::InvalidateIommuPages { range, .. } => range,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn plans() {
        assert_eq!(plan(0x1000, 0x1000, 8), [InvRange::Page(Iova(0x1000))]);
        assert_eq!(plan(0, 0x4000, 8), [InvRange::Block { base: Iova(0), shift: 14 }]);
        // [0x1000, 0x5000): 4K at 0x1000, 8K at 0x2000, 4K at 0x4000.
        assert_eq!(
            plan(0x1000, 0x4000, 8),
            [
                InvRange::Page(Iova(0x1000)),
                InvRange::Block { base: Iova(0x2000), shift: 13 },
                InvRange::Page(Iova(0x4000))
            ]
        );
        // Unaligned bytes round out to pages: [0x1800, 0x2800) -> pages 1, 2.
        assert_eq!(plan(0x1800, 0x1000, 8), [InvRange::Page(Iova(0x1000)), InvRange::Page(Iova(0x2000))]);
        // Over budget: the smallest aligned block containing [0x1000, 0x5000) is [0, 0x8000).
        assert_eq!(plan(0x1000, 0x4000, 2), [InvRange::Block { base: Iova(0), shift: 15 }]);
        assert_eq!(plan(0x1000, 0x4000, 1)[0].encode(), (0x3000, true));
        // A 2 MiB-aligned 2 MiB range is one command.
        assert_eq!(plan(0x20_0000, 0x20_0000, 1), [InvRange::Block { base: Iova(0x20_0000), shift: 21 }]);
        // Whole space and overflow: all pages.
        assert_eq!(plan(0, u64::MAX, 8), [InvRange::All]);
        assert_eq!(plan(u64::MAX - 0xfff, 0x2000, 8), [InvRange::All]);
        assert_eq!(plan(1 << 63, 1 << 62, 1), [InvRange::Block { base: Iova(1 << 63), shift: 62 }]);
        assert_eq!(plan(0x1000, 0, 8), []);
        assert_eq!(plan(u64::MAX - 0xfff, 0x1000, 8), [InvRange::Page(Iova(u64::MAX - 0xfff))]);
    }

    proptest! {
        #[test]
        fn plan_covers_the_range(start in any::<u64>(), len in 1u64..(1 << 40), max in 1usize..12) {
            prop_assume!(start.checked_add(len).is_some());
            let first = start & !0xfff;
            let end = ((start + len - 1) | 0xfff) as u128 + 1;
            let ranges = plan(start, len, max);
            prop_assert!(!ranges.is_empty() && ranges.len() <= max.max(1));
            let spans: Vec<_> = ranges.iter().filter_map(|r| r.span()).collect();
            if spans.len() < ranges.len() {
                return Ok(()); // all pages
            }
            // Naturally aligned, and together they cover [first, end).
            for (b, s) in &spans {
                prop_assert_eq!(b % s, 0);
            }
            let lo = spans.iter().map(|(b, _)| *b).min().unwrap();
            let hi = spans.iter().map(|(b, s)| *b as u128 + *s as u128).max().unwrap();
            prop_assert!(lo <= first && hi >= end);
            let total: u128 = spans.iter().map(|(_, s)| *s as u128).sum();
            if ranges.len() > 1 {
                // Exact cover: contiguous, disjoint, nothing extra.
                prop_assert_eq!(total, end - first as u128);
            }
        }

        #[test]
        fn command_round_trip(w0 in any::<u64>(), w1 in any::<u64>(), o in 1u64..=8) {
            let w = [(w0 & !(0xf << 60)) | op(o), w1];
            if let Ok(c) = Command::decode(w) {
                prop_assert_eq!(Command::decode(c.encode()), Ok(c));
            }
        }
    }
}
