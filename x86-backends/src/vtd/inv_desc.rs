//! Queued invalidation (6.5.2): the IQA_REG value, the invalidation
//! descriptors, and [`plan_page_invalidation`], which turns an IOVA range
//! into the fewest page-selective IOTLB invalidations.
//!
//! Descriptors are 128 bits ([`InvDesc::encode`]) or, when IQA_REG.DW = 1,
//! 256 bits ([`InvDesc::encode256`]: the same fields, bits 255:128 zero).
//! The type is split: bits 3:0 and 11:9 (all current types fit in 3:0).
//! The page-group and page-stream response descriptors (types 9 and 0xA,
//! for PRS) are not modelled.

use iommu_common::addr::{Iova, PhysAddr};
use tock_registers::LocalRegisterCopy;

use crate::vtd::caps::Capabilities;
use crate::vtd::error::DecodeError;
use crate::vtd::fields::{bits, check_word};
use crate::vtd::ids::{DomainId, Pasid, SourceId};
use crate::vtd::regs::IQA;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// Descriptor bits 63:0: the fields every type shares a position for.
        pub DSC_0 [
            /// Type bits 3:0.
            TYPE_LO OFFSET(0) NUMBITS(4) [],
            /// Granularity (context-cache, IOTLB, PASID-cache, PASID-IOTLB).
            G OFFSET(4) NUMBITS(2) [],
            /// IOTLB: drain writes.
            DW OFFSET(6) NUMBITS(1) [],
            /// IOTLB: drain reads.
            DR OFFSET(7) NUMBITS(1) [],
            /// Type bits 6:4.
            TYPE_HI OFFSET(9) NUMBITS(3) [],
            /// Device-TLB: PFSID bits 3:0.
            PFSID_LO OFFSET(12) NUMBITS(4) [],
            /// Domain-ID (context-cache, IOTLB, PASID-cache, PASID-IOTLB).
            DID OFFSET(16) NUMBITS(16) [],
            /// Context-cache / device-TLB: Source-ID (47:32).
            SID OFFSET(32) NUMBITS(16) [],
            /// Context-cache: function mask (49:48).
            FM OFFSET(48) NUMBITS(2) [],
            /// PASID (51:32).
            PASID OFFSET(32) NUMBITS(20) [],
            /// Device-TLB: PFSID bits 15:4 (63:52).
            PFSID_HI OFFSET(52) NUMBITS(12) []
        ],
        /// Device-TLB invalidate bits 63:0 where they differ.
        pub DEVTLB_0 [
            /// Max invalidations pending (20:16).
            MIP OFFSET(16) NUMBITS(5) []
        ],
        /// PASID-based device-TLB invalidate bits 63:0 where they differ.
        pub PDEVTLB_0 [
            /// Max invalidations pending (8:4).
            MIP OFFSET(4) NUMBITS(5) [],
            /// Source-ID (31:16).
            SID OFFSET(16) NUMBITS(16) []
        ],
        /// Interrupt entry cache invalidate bits 63:0.
        pub IEC_0 [
            /// Granularity: 0 global, 1 index-selective.
            G OFFSET(4) NUMBITS(1) [],
            /// Index mask: 2^IM entries.
            IM OFFSET(27) NUMBITS(5) [],
            /// Interrupt index.
            IIDX OFFSET(32) NUMBITS(16) []
        ],
        /// Invalidation wait bits 63:0.
        pub WAIT_0 [
            /// Interrupt flag.
            IF OFFSET(4) NUMBITS(1) [],
            /// Status write.
            SW OFFSET(5) NUMBITS(1) [],
            /// Fence.
            FN OFFSET(6) NUMBITS(1) [],
            /// Page-request drain.
            PD OFFSET(7) NUMBITS(1) [],
            /// Status data.
            STDATA OFFSET(32) NUMBITS(32) []
        ],
        /// Invalidation wait bits 127:64.
        pub WAIT_1 [
            /// Status address, bits 63:2.
            STADDR OFFSET(2) NUMBITS(62) []
        ],
        /// IOTLB and PASID-based IOTLB invalidate bits 127:64.
        pub ADDR_1 [
            /// Address mask: 2^AM pages.
            AM OFFSET(0) NUMBITS(6) [],
            /// Invalidation hint.
            IH OFFSET(6) NUMBITS(1) [],
            /// Page address, bits 63:12.
            ADDR OFFSET(12) NUMBITS(52) []
        ],
        /// Device-TLB invalidate bits 127:64.
        pub DEVTLB_1 [
            /// PASID-based only: global (bit 64).
            G OFFSET(0) NUMBITS(1) [],
            /// Size (device-TLB: bit 64; PASID-based: bit 75).
            S OFFSET(0) NUMBITS(1) [],
            /// PASID-based: size (bit 75).
            PS OFFSET(11) NUMBITS(1) [],
            /// Address, bits 63:12.
            ADDR OFFSET(12) NUMBITS(52) []
        ]
    ];
}
pub use layout::*;

type W<R> = LocalRegisterCopy<u64, R>;

/// Descriptor type codes.
pub mod dtype {
    /// Context-cache invalidate.
    pub const CONTEXT_CACHE: u64 = 0x1;
    /// IOTLB invalidate.
    pub const IOTLB: u64 = 0x2;
    /// Device-TLB invalidate.
    pub const DEVICE_TLB: u64 = 0x3;
    /// Interrupt entry cache invalidate.
    pub const IEC: u64 = 0x4;
    /// Invalidation wait.
    pub const WAIT: u64 = 0x5;
    /// PASID-based IOTLB invalidate.
    pub const PASID_IOTLB: u64 = 0x6;
    /// PASID-cache invalidate.
    pub const PASID_CACHE: u64 = 0x7;
    /// PASID-based device-TLB invalidate.
    pub const PASID_DEVICE_TLB: u64 = 0x8;
}

/// Context-cache function mask (FM): how many low function-number bits of
/// the Source-ID are ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FunctionMask {
    /// 00b: exact Source-ID.
    #[default]
    None,
    /// 01b: ignore function bit 2.
    Bit2,
    /// 10b: ignore function bits 2:1.
    Bits2To1,
    /// 11b: ignore function bits 2:0 (every function of the device).
    Bits2To0,
}

impl FunctionMask {
    pub(crate) const fn field(self) -> u64 {
        self as u64
    }
    pub(crate) const fn from_field(v: u64) -> Self {
        match v & 3 {
            0 => Self::None,
            1 => Self::Bit2,
            2 => Self::Bits2To1,
            _ => Self::Bits2To0,
        }
    }
}

/// Context-cache invalidation granularity (descriptor G / CCMD_REG.CIRG).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CcGranularity {
    /// 01b: every context entry.
    Global,
    /// 10b: the entries of one domain.
    Domain(DomainId),
    /// 11b: one device's entries (of domain `did`).
    Device {
        /// Domain-ID the entries had.
        did: DomainId,
        /// Source-ID.
        sid: SourceId,
        /// Function mask.
        fm: FunctionMask,
    },
}

/// IOTLB invalidation granularity (descriptor G / IOTLB_REG.IIRG).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IotlbGranularity {
    /// 01b: everything.
    Global,
    /// 10b: one domain.
    Domain(DomainId),
    /// 11b: 2^`am` pages at `addr` (aligned to 2^(12 + am)) of one domain.
    Page {
        /// Domain-ID.
        did: DomainId,
        /// Page address.
        addr: Iova,
        /// Address mask (at most CAP.MAMV).
        am: u8,
        /// Invalidation hint: only leaf entries changed, keep cached
        /// paging-structure entries.
        ih: bool,
    },
}

/// PASID-based IOTLB granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasidIotlbGranularity {
    /// 10b: all non-global mappings of DID + PASID.
    NonGlobal,
    /// 11b: 2^`am` pages at `addr`.
    Page {
        /// Page address.
        addr: Iova,
        /// Address mask.
        am: u8,
        /// Invalidation hint.
        ih: bool,
    },
}

/// PASID-cache granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasidCacheGranularity {
    /// 00b: every PASID of the domain.
    Domain,
    /// 01b: one PASID of the domain.
    Pasid(Pasid),
    /// 11b: everything.
    Global,
}

/// Device-TLB target: `addr` with the PCIe ATS size encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevTlbRange {
    /// ADDR bits 63:12 with the size bits folded in when `s`.
    pub addr: u64,
    /// S: the range is larger than 4 KiB and encoded in the low address bits.
    pub s: bool,
}

impl DevTlbRange {
    /// The range of 2^`order` pages at `base` (aligned to it): for order
    /// k >= 1 S = 1 and address bits 12..(12 + k - 2) are set, bit
    /// (12 + k - 1) clear (PCIe ATS invalidate request encoding).
    pub const fn new(base: u64, order: u32) -> Self {
        if order == 0 {
            Self { addr: base & !0xfff, s: false }
        } else {
            let ones = ((1u64 << (order - 1)) - 1) << 12;
            Self { addr: (base & !0xfff & !(((1u64 << order) - 1) << 12)) | ones, s: true }
        }
    }

    /// Everything: S = 1, address bits 62:12 set, 63 clear.
    pub const ALL: Self = Self { addr: 0x7fff_ffff_ffff_f000, s: true };
}

/// One invalidation descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvDesc {
    /// Context-cache invalidate (type 1, 6.5.2.1).
    ContextCache(CcGranularity),
    /// IOTLB invalidate (type 2, 6.5.2.3).
    Iotlb {
        /// Granularity.
        granularity: IotlbGranularity,
        /// DR: drain reads (if CAP.DRD).
        dr: bool,
        /// DW: drain writes (if CAP.DWD).
        dw: bool,
    },
    /// Device-TLB invalidate (type 3, 6.5.2.5).
    DeviceTlb {
        /// Source-ID of the device.
        sid: SourceId,
        /// PFSID: the physical function of an SR-IOV VF (else = `sid`).
        pfsid: SourceId,
        /// MIP: max invalidations pending (5 bits).
        mip: u8,
        /// Range.
        range: DevTlbRange,
    },
    /// Interrupt entry cache invalidate (type 4, 6.5.2.7).
    InterruptEntryCache {
        /// `None`: global; `Some((index, im))`: 2^im entries from `index`.
        index: Option<(u16, u8)>,
    },
    /// Invalidation wait (type 5, 6.5.2.8).
    Wait(InvWait),
    /// PASID-based IOTLB invalidate (type 6, 6.5.2.4).
    PasidIotlb {
        /// Domain-ID.
        did: DomainId,
        /// PASID.
        pasid: Pasid,
        /// Granularity.
        granularity: PasidIotlbGranularity,
    },
    /// PASID-cache invalidate (type 7, 6.5.2.2).
    PasidCache {
        /// Domain-ID (ignored for global).
        did: DomainId,
        /// Granularity.
        granularity: PasidCacheGranularity,
    },
    /// PASID-based device-TLB invalidate (type 8, 6.5.2.6).
    PasidDeviceTlb {
        /// Source-ID.
        sid: SourceId,
        /// PFSID.
        pfsid: SourceId,
        /// MIP.
        mip: u8,
        /// PASID.
        pasid: Pasid,
        /// G: global mappings too.
        global: bool,
        /// Range.
        range: DevTlbRange,
    },
}

/// An invalidation wait descriptor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InvWait {
    /// IF: raise the invalidation completion event (ICS.IWC).
    pub interrupt: bool,
    /// SW: write `data` to `addr` (4-byte aligned) on completion.
    pub status: Option<(PhysAddr, u32)>,
    /// FN: later descriptors wait for this one.
    pub fence: bool,
    /// PD: page-request drain.
    pub page_drain: bool,
}

impl InvWait {
    /// The usual completion marker: write `data` to `addr`, fenced.
    pub const fn status_write(addr: PhysAddr, data: u32) -> Self {
        Self { interrupt: false, status: Some((addr, data)), fence: true, page_drain: false }
    }
}

fn split_pfsid(p: SourceId) -> (u64, u64) {
    (u64::from(p.0 & 0xf), u64::from(p.0 >> 4))
}

impl InvDesc {
    /// The descriptor type code.
    pub const fn type_code(&self) -> u64 {
        match self {
            Self::ContextCache(_) => dtype::CONTEXT_CACHE,
            Self::Iotlb { .. } => dtype::IOTLB,
            Self::DeviceTlb { .. } => dtype::DEVICE_TLB,
            Self::InterruptEntryCache { .. } => dtype::IEC,
            Self::Wait(_) => dtype::WAIT,
            Self::PasidIotlb { .. } => dtype::PASID_IOTLB,
            Self::PasidCache { .. } => dtype::PASID_CACHE,
            Self::PasidDeviceTlb { .. } => dtype::PASID_DEVICE_TLB,
        }
    }

    /// Encodes the 128-bit form.
    pub fn encode(&self) -> [u64; 2] {
        let mut w0 = W::<DSC_0::Register>::new(0);
        w0.write(DSC_0::TYPE_LO.val(self.type_code()));
        let mut w1 = 0u64;
        match *self {
            Self::ContextCache(g) => match g {
                CcGranularity::Global => w0.modify(DSC_0::G.val(1)),
                CcGranularity::Domain(did) => w0.modify(DSC_0::G.val(2) + DSC_0::DID.val(u64::from(did.0))),
                CcGranularity::Device { did, sid, fm } => w0.modify(
                    DSC_0::G.val(3)
                        + DSC_0::DID.val(u64::from(did.0))
                        + DSC_0::SID.val(u64::from(sid.0))
                        + DSC_0::FM.val(fm.field()),
                ),
            },
            Self::Iotlb { granularity, dr, dw } => {
                w0.modify(DSC_0::DR.val(u64::from(dr)) + DSC_0::DW.val(u64::from(dw)));
                match granularity {
                    IotlbGranularity::Global => w0.modify(DSC_0::G.val(1)),
                    IotlbGranularity::Domain(did) => {
                        w0.modify(DSC_0::G.val(2) + DSC_0::DID.val(u64::from(did.0)))
                    }
                    IotlbGranularity::Page { did, addr, am, ih } => {
                        w0.modify(DSC_0::G.val(3) + DSC_0::DID.val(u64::from(did.0)));
                        w1 = addr_word(addr, am, ih);
                    }
                }
            }
            Self::DeviceTlb { sid, pfsid, mip, range } => {
                let (lo, hi) = split_pfsid(pfsid);
                w0.modify(
                    DSC_0::PFSID_LO.val(lo) + DSC_0::SID.val(u64::from(sid.0)) + DSC_0::PFSID_HI.val(hi),
                );
                let mut m = W::<DEVTLB_0::Register>::new(w0.get());
                m.modify(DEVTLB_0::MIP.val(u64::from(mip)));
                w0.set(m.get());
                let mut r = W::<DEVTLB_1::Register>::new(0);
                r.write(DEVTLB_1::S.val(u64::from(range.s)) + DEVTLB_1::ADDR.val(range.addr >> 12));
                w1 = r.get();
            }
            Self::InterruptEntryCache { index } => {
                let mut m = W::<IEC_0::Register>::new(w0.get());
                if let Some((idx, im)) = index {
                    m.modify(IEC_0::G::SET + IEC_0::IM.val(u64::from(im)) + IEC_0::IIDX.val(u64::from(idx)));
                }
                w0.set(m.get());
            }
            Self::Wait(w) => {
                let mut m = W::<WAIT_0::Register>::new(w0.get());
                m.modify(
                    WAIT_0::IF.val(u64::from(w.interrupt))
                        + WAIT_0::FN.val(u64::from(w.fence))
                        + WAIT_0::PD.val(u64::from(w.page_drain)),
                );
                if let Some((addr, data)) = w.status {
                    m.modify(WAIT_0::SW::SET + WAIT_0::STDATA.val(u64::from(data)));
                    let mut a = W::<WAIT_1::Register>::new(0);
                    a.write(WAIT_1::STADDR.val(addr.0 >> 2));
                    w1 = a.get();
                }
                w0.set(m.get());
            }
            Self::PasidIotlb { did, pasid, granularity } => {
                w0.modify(DSC_0::DID.val(u64::from(did.0)) + DSC_0::PASID.val(u64::from(pasid.get())));
                match granularity {
                    PasidIotlbGranularity::NonGlobal => w0.modify(DSC_0::G.val(2)),
                    PasidIotlbGranularity::Page { addr, am, ih } => {
                        w0.modify(DSC_0::G.val(3));
                        w1 = addr_word(addr, am, ih);
                    }
                }
            }
            Self::PasidCache { did, granularity } => {
                w0.modify(DSC_0::DID.val(u64::from(did.0)));
                match granularity {
                    PasidCacheGranularity::Domain => {}
                    PasidCacheGranularity::Pasid(p) => {
                        w0.modify(DSC_0::G.val(1) + DSC_0::PASID.val(u64::from(p.get())))
                    }
                    PasidCacheGranularity::Global => w0.modify(DSC_0::G.val(3)),
                }
            }
            Self::PasidDeviceTlb { sid, pfsid, mip, pasid, global, range } => {
                let (lo, hi) = split_pfsid(pfsid);
                w0.modify(
                    DSC_0::PFSID_LO.val(lo)
                        + DSC_0::PASID.val(u64::from(pasid.get()))
                        + DSC_0::PFSID_HI.val(hi),
                );
                let mut m = W::<PDEVTLB_0::Register>::new(w0.get());
                m.modify(PDEVTLB_0::MIP.val(u64::from(mip)) + PDEVTLB_0::SID.val(u64::from(sid.0)));
                w0.set(m.get());
                let mut r = W::<DEVTLB_1::Register>::new(0);
                r.write(
                    DEVTLB_1::G.val(u64::from(global))
                        + DEVTLB_1::PS.val(u64::from(range.s))
                        + DEVTLB_1::ADDR.val(range.addr >> 12),
                );
                w1 = r.get();
            }
        }
        [w0.get(), w1]
    }

    /// Encodes the 256-bit form (IQA_REG.DW = 1).
    pub fn encode256(&self) -> [u64; 4] {
        let [a, b] = self.encode();
        [a, b, 0, 0]
    }

    /// Decodes a 256-bit descriptor: bits 255:128 must be zero.
    pub fn decode256(words: [u64; 4]) -> Result<Self, DecodeError> {
        check_word(2, words[2], 0)?;
        check_word(3, words[3], 0)?;
        Self::decode([words[0], words[1]])
    }

    /// Decodes a 128-bit descriptor. Reserved bits, fields a granularity
    /// ignores (if non-zero) and reserved encodings are errors.
    pub fn decode(words: [u64; 2]) -> Result<Self, DecodeError> {
        let w0 = W::<DSC_0::Register>::new(words[0]);
        let ty = (w0.read(DSC_0::TYPE_HI) << 4) | w0.read(DSC_0::TYPE_LO);
        let common = bits(DSC_0::TYPE_LO);
        let did = DomainId(w0.read(DSC_0::DID) as u16);
        let g = w0.read(DSC_0::G);
        let reserved = |field, value| Err(DecodeError::Reserved { field, value });
        let desc = match ty {
            dtype::CONTEXT_CACHE => {
                let (gran, allowed) = match g {
                    1 => (CcGranularity::Global, 0),
                    2 => (CcGranularity::Domain(did), bits(DSC_0::DID)),
                    3 => (
                        CcGranularity::Device {
                            did,
                            sid: SourceId(w0.read(DSC_0::SID) as u16),
                            fm: FunctionMask::from_field(w0.read(DSC_0::FM)),
                        },
                        bits(DSC_0::DID) | bits(DSC_0::SID) | bits(DSC_0::FM),
                    ),
                    v => return reserved("context-cache invalidate.G", v),
                };
                check_word(0, words[0], common | bits(DSC_0::G) | allowed)?;
                check_word(1, words[1], 0)?;
                Self::ContextCache(gran)
            }
            dtype::IOTLB => {
                let drain = bits(DSC_0::DR) | bits(DSC_0::DW);
                let (granularity, allowed0) = match g {
                    1 => (IotlbGranularity::Global, 0),
                    2 => (IotlbGranularity::Domain(did), bits(DSC_0::DID)),
                    3 => {
                        let (addr, am, ih) = decode_addr_word(words[1])?;
                        (IotlbGranularity::Page { did, addr, am, ih }, bits(DSC_0::DID))
                    }
                    v => return reserved("IOTLB invalidate.G", v),
                };
                check_word(0, words[0], common | bits(DSC_0::G) | drain | allowed0)?;
                if g != 3 {
                    check_word(1, words[1], 0)?;
                }
                Self::Iotlb { granularity, dr: w0.is_set(DSC_0::DR), dw: w0.is_set(DSC_0::DW) }
            }
            dtype::DEVICE_TLB => {
                let m = W::<DEVTLB_0::Register>::new(words[0]);
                check_word(
                    0,
                    words[0],
                    common
                        | bits(DSC_0::PFSID_LO)
                        | bits(DEVTLB_0::MIP)
                        | bits(DSC_0::SID)
                        | bits(DSC_0::PFSID_HI),
                )?;
                let r = W::<DEVTLB_1::Register>::new(words[1]);
                check_word(1, words[1], bits(DEVTLB_1::S) | bits(DEVTLB_1::ADDR))?;
                Self::DeviceTlb {
                    sid: SourceId(w0.read(DSC_0::SID) as u16),
                    pfsid: join_pfsid(&w0),
                    mip: m.read(DEVTLB_0::MIP) as u8,
                    range: DevTlbRange { addr: r.read(DEVTLB_1::ADDR) << 12, s: r.is_set(DEVTLB_1::S) },
                }
            }
            dtype::IEC => {
                let m = W::<IEC_0::Register>::new(words[0]);
                check_word(1, words[1], 0)?;
                if m.is_set(IEC_0::G) {
                    check_word(0, words[0], common | bits(IEC_0::G) | bits(IEC_0::IM) | bits(IEC_0::IIDX))?;
                    Self::InterruptEntryCache {
                        index: Some((m.read(IEC_0::IIDX) as u16, m.read(IEC_0::IM) as u8)),
                    }
                } else {
                    check_word(0, words[0], common)?;
                    Self::InterruptEntryCache { index: None }
                }
            }
            dtype::WAIT => {
                let m = W::<WAIT_0::Register>::new(words[0]);
                let flags =
                    common | bits(WAIT_0::IF) | bits(WAIT_0::SW) | bits(WAIT_0::FN) | bits(WAIT_0::PD);
                let status = if m.is_set(WAIT_0::SW) {
                    check_word(0, words[0], flags | bits(WAIT_0::STDATA))?;
                    check_word(1, words[1], bits(WAIT_1::STADDR))?;
                    Some((PhysAddr(words[1]), m.read(WAIT_0::STDATA) as u32))
                } else {
                    check_word(0, words[0], flags)?;
                    check_word(1, words[1], 0)?;
                    None
                };
                Self::Wait(InvWait {
                    interrupt: m.is_set(WAIT_0::IF),
                    status,
                    fence: m.is_set(WAIT_0::FN),
                    page_drain: m.is_set(WAIT_0::PD),
                })
            }
            dtype::PASID_IOTLB => {
                check_word(0, words[0], common | bits(DSC_0::G) | bits(DSC_0::DID) | bits(DSC_0::PASID))?;
                let granularity = match g {
                    2 => {
                        check_word(1, words[1], 0)?;
                        PasidIotlbGranularity::NonGlobal
                    }
                    3 => {
                        let (addr, am, ih) = decode_addr_word(words[1])?;
                        PasidIotlbGranularity::Page { addr, am, ih }
                    }
                    v => return reserved("PASID-based IOTLB invalidate.G", v),
                };
                Self::PasidIotlb { did, pasid: Pasid::from_field(w0.read(DSC_0::PASID)), granularity }
            }
            dtype::PASID_CACHE => {
                check_word(1, words[1], 0)?;
                let (granularity, allowed) = match g {
                    0 => (PasidCacheGranularity::Domain, bits(DSC_0::DID)),
                    1 => (
                        PasidCacheGranularity::Pasid(Pasid::from_field(w0.read(DSC_0::PASID))),
                        bits(DSC_0::DID) | bits(DSC_0::PASID),
                    ),
                    3 => (PasidCacheGranularity::Global, bits(DSC_0::DID)),
                    v => return reserved("PASID-cache invalidate.G", v),
                };
                check_word(0, words[0], common | bits(DSC_0::G) | allowed)?;
                Self::PasidCache { did, granularity }
            }
            dtype::PASID_DEVICE_TLB => {
                let m = W::<PDEVTLB_0::Register>::new(words[0]);
                check_word(
                    0,
                    words[0],
                    common
                        | bits(PDEVTLB_0::MIP)
                        | bits(DSC_0::PFSID_LO)
                        | bits(PDEVTLB_0::SID)
                        | bits(DSC_0::PASID)
                        | bits(DSC_0::PFSID_HI),
                )?;
                let r = W::<DEVTLB_1::Register>::new(words[1]);
                check_word(1, words[1], bits(DEVTLB_1::G) | bits(DEVTLB_1::PS) | bits(DEVTLB_1::ADDR))?;
                Self::PasidDeviceTlb {
                    sid: SourceId(m.read(PDEVTLB_0::SID) as u16),
                    pfsid: join_pfsid(&w0),
                    mip: m.read(PDEVTLB_0::MIP) as u8,
                    pasid: Pasid::from_field(w0.read(DSC_0::PASID)),
                    global: r.is_set(DEVTLB_1::G),
                    range: DevTlbRange { addr: r.read(DEVTLB_1::ADDR) << 12, s: r.is_set(DEVTLB_1::PS) },
                }
            }
            v => return reserved("invalidation descriptor type", v),
        };
        Ok(desc)
    }
}

fn join_pfsid(w0: &W<DSC_0::Register>) -> SourceId {
    SourceId(((w0.read(DSC_0::PFSID_HI) << 4) | w0.read(DSC_0::PFSID_LO)) as u16)
}

fn addr_word(addr: Iova, am: u8, ih: bool) -> u64 {
    let mut w = W::<ADDR_1::Register>::new(0);
    w.write(ADDR_1::AM.val(u64::from(am)) + ADDR_1::IH.val(u64::from(ih)) + ADDR_1::ADDR.val(addr.0 >> 12));
    w.get()
}

fn decode_addr_word(v: u64) -> Result<(Iova, u8, bool), DecodeError> {
    check_word(1, v, bits(ADDR_1::AM) | bits(ADDR_1::IH) | bits(ADDR_1::ADDR))?;
    let w = W::<ADDR_1::Register>::new(v);
    Ok((Iova(w.read(ADDR_1::ADDR) << 12), w.read(ADDR_1::AM) as u8, w.is_set(ADDR_1::IH)))
}

/// The IQA_REG value: queue base, size and descriptor width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iqa {
    /// IQA: queue base (4 KiB aligned).
    pub base: PhysAddr,
    /// QS: the queue is 2^QS 4 KiB pages (0..=7).
    pub qs: u8,
    /// DW: 256-bit descriptors.
    pub dw256: bool,
}

impl Iqa {
    /// Encodes the register value.
    pub fn encode(&self) -> u64 {
        let mut r = LocalRegisterCopy::<u64, IQA::Register>::new(0);
        r.write(
            IQA::IQA.val(self.base.0 >> 12)
                + IQA::QS.val(u64::from(self.qs))
                + IQA::DW.val(u64::from(self.dw256)),
        );
        r.get()
    }

    /// Decodes a register value; bits 10:3 are reserved.
    pub fn decode(v: u64) -> Result<Self, DecodeError> {
        check_word(0, v, bits(IQA::IQA) | bits(IQA::QS) | bits(IQA::DW))?;
        let r = LocalRegisterCopy::<u64, IQA::Register>::new(v);
        Ok(Self {
            base: PhysAddr(r.read(IQA::IQA) << 12),
            qs: r.read(IQA::QS) as u8,
            dw256: r.is_set(IQA::DW),
        })
    }

    /// Descriptor size in bytes (16 or 32).
    pub const fn desc_size(&self) -> u64 {
        if self.dw256 {
            32
        } else {
            16
        }
    }

    /// Number of descriptors the queue holds: 2^(QS + 8) 128-bit or
    /// 2^(QS + 7) 256-bit descriptors.
    pub const fn entries(&self) -> u32 {
        ((4096u64 << self.qs) / self.desc_size()) as u32
    }

    /// The IQT_REG / IQH_REG value for descriptor index `i`: its byte
    /// offset (bits 18:4).
    pub const fn offset_of(&self, i: u32) -> u64 {
        (i as u64 % self.entries() as u64) * self.desc_size()
    }
}

/// How [`plan_page_invalidation`] plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PsiPolicy {
    /// Above this many page-selective descriptors, invalidate the whole
    /// domain instead.
    pub max_descriptors: usize,
    /// IH: only leaf entries changed (an unmap that freed no tables).
    pub leaf_only: bool,
    /// Set DR/DW where the unit offers draining (CAP.DRD/DWD).
    pub drain: bool,
}

impl Default for PsiPolicy {
    fn default() -> Self {
        Self { max_descriptors: 16, leaf_only: false, drain: true }
    }
}

/// Result of [`plan_page_invalidation`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IotlbPlan {
    /// One domain-selective descriptor: the range was too big, overflowed
    /// the address space, or the unit has no page-selective invalidation.
    Domain(InvDesc),
    /// Page-selective descriptors covering exactly the range's pages.
    Pages(PsiIter),
}

impl Iterator for IotlbPlan {
    type Item = InvDesc;

    fn next(&mut self) -> Option<InvDesc> {
        match self {
            Self::Domain(d) => {
                let d = *d;
                *self = Self::Pages(PsiIter::empty());
                Some(d)
            }
            Self::Pages(it) => it.next(),
        }
    }
}

/// Page-selective IOTLB descriptors covering a page range, generated lazily.
/// Each step takes the largest naturally aligned block of 2^am pages
/// (am <= MAMV) that starts at the next page and stays inside the range:
/// the fewest aligned blocks that cover the range exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PsiIter {
    did: DomainId,
    page: u64,
    pages: u64,
    mamv: u8,
    ih: bool,
    dr: bool,
    dw: bool,
}

impl PsiIter {
    const fn empty() -> Self {
        Self { did: DomainId(0), page: 0, pages: 0, mamv: 0, ih: false, dr: false, dw: false }
    }
}

impl Iterator for PsiIter {
    type Item = InvDesc;

    fn next(&mut self) -> Option<InvDesc> {
        if self.pages == 0 {
            return None;
        }
        let align = if self.page == 0 { 63 } else { self.page.trailing_zeros() };
        let fit = 63 - self.pages.leading_zeros(); // floor(log2(pages))
        let am = align.min(fit).min(u32::from(self.mamv));
        let d = InvDesc::Iotlb {
            granularity: IotlbGranularity::Page {
                did: self.did,
                addr: Iova(self.page << 12),
                am: am as u8,
                ih: self.ih,
            },
            dr: self.dr,
            dw: self.dw,
        };
        self.page += 1 << am;
        self.pages -= 1 << am;
        Some(d)
    }
}

/// Plans the IOTLB invalidation of `[iova, iova + len)` in domain `did`:
/// the fewest page-selective descriptors that cover exactly the 4 KiB pages
/// the range touches, honouring CAP.MAMV, or one domain-selective
/// descriptor when that would take more than `policy.max_descriptors`, when
/// CAP.PSI is clear, or when the range wraps the address space. `len == 0`
/// plans nothing. Follow with an invalidation wait.
pub fn plan_page_invalidation(
    did: DomainId,
    iova: Iova,
    len: u64,
    caps: &Capabilities,
    policy: PsiPolicy,
) -> IotlbPlan {
    let dr = policy.drain && caps.drd;
    let dw = policy.drain && caps.dwd;
    let domain = IotlbPlan::Domain(InvDesc::Iotlb { granularity: IotlbGranularity::Domain(did), dr, dw });
    if len == 0 {
        return IotlbPlan::Pages(PsiIter::empty());
    }
    let Some(last) = iova.0.checked_add(len - 1) else {
        return domain;
    };
    if !caps.psi {
        return domain;
    }
    let first_page = iova.0 >> 12;
    let pages = (last >> 12) - first_page + 1;
    let it = PsiIter { did, page: first_page, pages, mamv: caps.mamv.min(63), ih: policy.leaf_only, dr, dw };
    if it.take(policy.max_descriptors.saturating_add(1)).count() > policy.max_descriptors {
        domain
    } else {
        IotlbPlan::Pages(it)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::vtd::caps::tests::qemu_caps;
    use proptest::prelude::*;
    use std::vec::Vec;

    // Expected words written from the descriptor layouts of 6.5.2.x.

    #[test]
    fn context_cache_descriptor() {
        // Type 3:0 = 1; G 5:4 (01 global, 10 domain, 11 device); DID 31:16;
        // SID 47:32; FM 49:48.
        assert_eq!(InvDesc::ContextCache(CcGranularity::Global).encode(), [0x11, 0]);
        assert_eq!(InvDesc::ContextCache(CcGranularity::Domain(DomainId(7))).encode(), [0x21 | (7 << 16), 0]);
        let d = InvDesc::ContextCache(CcGranularity::Device {
            did: DomainId(0xabcd),
            sid: SourceId(0x0018),
            fm: FunctionMask::Bits2To0,
        });
        assert_eq!(d.encode(), [0x31 | (0xabcd << 16) | (0x0018 << 32) | (3 << 48), 0]);
    }

    #[test]
    fn iotlb_descriptor() {
        // Type 2; G 5:4; DW 6; DR 7; DID 31:16; AM 69:64; IH 70; ADDR 127:76.
        let g = InvDesc::Iotlb { granularity: IotlbGranularity::Global, dr: true, dw: true };
        assert_eq!(g.encode(), [0x12 | (1 << 6) | (1 << 7), 0]);
        let d = InvDesc::Iotlb { granularity: IotlbGranularity::Domain(DomainId(3)), dr: false, dw: false };
        assert_eq!(d.encode(), [0x22 | (3 << 16), 0]);
        let p = InvDesc::Iotlb {
            granularity: IotlbGranularity::Page { did: DomainId(3), addr: Iova(0x20_0000), am: 9, ih: true },
            dr: false,
            dw: true,
        };
        assert_eq!(p.encode(), [0x32 | (1 << 6) | (3 << 16), 0x20_0000 | (1 << 6) | 9]);
        assert_eq!(p.encode256(), [0x32 | (1 << 6) | (3 << 16), 0x20_0000 | (1 << 6) | 9, 0, 0]);
    }

    #[test]
    fn device_tlb_descriptors() {
        // Type 3: PFSID[3:0] 15:12, MIP 20:16, SID 47:32, PFSID[15:4] 63:52;
        // S 64, ADDR 127:76.
        let d = InvDesc::DeviceTlb {
            sid: SourceId(0x0118),
            pfsid: SourceId(0xabc5),
            mip: 0x1f,
            range: DevTlbRange::new(0x4000, 0),
        };
        assert_eq!(d.encode(), [0x3 | (5 << 12) | (0x1f << 16) | (0x0118 << 32) | (0xabc << 52), 0x4000]);
        // Type 8: MIP 8:4, PFSID[3:0] 15:12, SID 31:16, PASID 51:32,
        // PFSID[15:4] 63:52; G 64, S 75, ADDR 127:76.
        let p = InvDesc::PasidDeviceTlb {
            sid: SourceId(0x0118),
            pfsid: SourceId(0x0118),
            mip: 2,
            pasid: Pasid::new(0x12345).unwrap(),
            global: true,
            range: DevTlbRange::ALL,
        };
        assert_eq!(
            p.encode(),
            [
                0x8 | (2 << 4) | (8 << 12) | (0x0118 << 16) | (0x12345 << 32) | (0x011 << 52),
                1 | (1 << 11) | 0x7fff_ffff_ffff_f000
            ]
        );
        // ATS size encoding: 8 KiB -> S, bit 12 clear; 16 KiB -> bit 12 set, 13 clear.
        assert_eq!(DevTlbRange::new(0x8000, 1), DevTlbRange { addr: 0x8000, s: true });
        assert_eq!(DevTlbRange::new(0x8000, 2), DevTlbRange { addr: 0x9000, s: true });
        assert_eq!(DevTlbRange::new(0x10_0000, 8), DevTlbRange { addr: 0x17_f000, s: true });
    }

    #[test]
    fn iec_wait_pasid_descriptors() {
        // IEC type 4: G 4 (1 index-selective), IM 31:27, IIDX 47:32.
        assert_eq!(InvDesc::InterruptEntryCache { index: None }.encode(), [0x4, 0]);
        assert_eq!(
            InvDesc::InterruptEntryCache { index: Some((0x1234, 3)) }.encode(),
            [0x4 | (1 << 4) | (3 << 27) | (0x1234 << 32), 0]
        );
        // Wait type 5: IF 4, SW 5, FN 6, PD 7, status data 63:32; status
        // address 127:66.
        let w = InvDesc::Wait(InvWait::status_write(PhysAddr(0x8000_1004), 0xdead_beef));
        assert_eq!(w.encode(), [0x5 | (1 << 5) | (1 << 6) | (0xdead_beef << 32), 0x8000_1004]);
        let w = InvDesc::Wait(InvWait { interrupt: true, page_drain: true, ..InvWait::default() });
        assert_eq!(w.encode(), [0x5 | (1 << 4) | (1 << 7), 0]);
        // PASID-IOTLB type 6: G 5:4 (10 non-global, 11 page), DID 31:16,
        // PASID 51:32; AM, IH, ADDR like IOTLB.
        let p = InvDesc::PasidIotlb {
            did: DomainId(9),
            pasid: Pasid::new(0xfffff).unwrap(),
            granularity: PasidIotlbGranularity::Page { addr: Iova(0x1000), am: 0, ih: false },
        };
        assert_eq!(p.encode(), [0x36 | (9 << 16) | (0xfffff << 32), 0x1000]);
        let p = InvDesc::PasidIotlb {
            did: DomainId(9),
            pasid: Pasid::ZERO,
            granularity: PasidIotlbGranularity::NonGlobal,
        };
        assert_eq!(p.encode(), [0x26 | (9 << 16), 0]);
        // PASID-cache type 7: G 5:4 (00 domain, 01 PASID, 11 global).
        let c = InvDesc::PasidCache {
            did: DomainId(2),
            granularity: PasidCacheGranularity::Pasid(Pasid::new(5).unwrap()),
        };
        assert_eq!(c.encode(), [0x17 | (2 << 16) | (5 << 32), 0]);
        let c = InvDesc::PasidCache { did: DomainId(2), granularity: PasidCacheGranularity::Domain };
        assert_eq!(c.encode(), [0x07 | (2 << 16), 0]);
        let c = InvDesc::PasidCache { did: DomainId(0), granularity: PasidCacheGranularity::Global };
        assert_eq!(c.encode(), [0x37, 0]);
    }

    #[test]
    fn decode_rejects() {
        assert_eq!(
            InvDesc::decode([0x01, 0]),
            Err(DecodeError::Reserved { field: "context-cache invalidate.G", value: 0 })
        );
        assert_eq!(
            InvDesc::decode([0x09, 0]),
            Err(DecodeError::Reserved { field: "invalidation descriptor type", value: 9 })
        );
        assert_eq!(
            InvDesc::decode([0x201, 0]),
            Err(DecodeError::Reserved { field: "invalidation descriptor type", value: 0x11 })
        );
        assert_eq!(
            InvDesc::decode([0x12 | (5 << 16), 0]),
            Err(DecodeError::UnmodelledBits { word: 0, bits: 5 << 16 }),
            "global IOTLB with a DID"
        );
        assert_eq!(
            InvDesc::decode([0x05, 0x1000]),
            Err(DecodeError::UnmodelledBits { word: 1, bits: 0x1000 }),
            "status address without SW"
        );
        assert_eq!(
            InvDesc::decode([0x16, 0]),
            Err(DecodeError::Reserved { field: "PASID-based IOTLB invalidate.G", value: 1 })
        );
        assert!(InvDesc::decode256([0x11, 0, 1, 0]).is_err());
    }

    #[test]
    fn iqa_value() {
        // IQA_REG: QS 2:0, DW 11, IQA 63:12.
        let q = Iqa { base: PhysAddr(0x10_0000), qs: 0, dw256: false };
        assert_eq!(q.encode(), 0x10_0000);
        assert_eq!(q.entries(), 256);
        assert_eq!(q.offset_of(3), 0x30);
        let q = Iqa { base: PhysAddr(0x10_0000), qs: 1, dw256: true };
        assert_eq!(q.encode(), 0x10_0000 | (1 << 11) | 1);
        assert_eq!(q.entries(), 256);
        assert_eq!(q.offset_of(3), 0x60);
        assert_eq!(q.offset_of(256), 0, "wraps");
        assert!(Iqa::decode(0x10_0008).is_err());
    }

    fn plan(iova: u64, len: u64, caps: &Capabilities, max: usize) -> IotlbPlan {
        plan_page_invalidation(
            DomainId(4),
            Iova(iova),
            len,
            caps,
            PsiPolicy { max_descriptors: max, leaf_only: false, drain: false },
        )
    }

    fn blocks(p: IotlbPlan) -> Vec<(u64, u8)> {
        p.map(|d| match d {
            InvDesc::Iotlb { granularity: IotlbGranularity::Page { addr, am, .. }, .. } => (addr.0, am),
            other => panic!("not a PSI: {other:?}"),
        })
        .collect()
    }

    #[test]
    fn psi_plan_arithmetic() {
        let caps = qemu_caps(); // MAMV = 18, PSI
                                // One page, unaligned start and length inside it.
        assert_eq!(blocks(plan(0x4_0123, 0x10, &caps, 16)), [(0x4_0000, 0)]);
        // Two pages straddled by 2 bytes: 0x40 and 0x41 form an aligned pair,
        // 0x41 and 0x42 do not.
        assert_eq!(blocks(plan(0x4_0fff, 2, &caps, 16)), [(0x4_0000, 1)]);
        assert_eq!(blocks(plan(0x4_1fff, 2, &caps, 16)), [(0x4_1000, 0), (0x4_2000, 0)]);
        // An aligned 2 MiB block: one descriptor, AM = 9.
        assert_eq!(blocks(plan(0x20_0000, 0x20_0000, &caps, 16)), [(0x20_0000, 9)]);
        // Pages 1..=6: 1 (AM 0), 2..3 (AM 1), 4..5 (AM 1), 6 (AM 0).
        assert_eq!(
            blocks(plan(0x1000, 0x6000, &caps, 16)),
            [(0x1000, 0), (0x2000, 1), (0x4000, 1), (0x6000, 0)]
        );
        // MAMV caps the block: 1 GiB aligned with MAMV 18 -> one AM 18 block.
        assert_eq!(blocks(plan(0x4000_0000, 0x4000_0000, &caps, 16)), [(0x4000_0000, 18)]);
        let small = Capabilities { mamv: 2, ..caps };
        assert_eq!(blocks(plan(0, 0x10000, &small, 16)), [(0, 2), (0x4000, 2), (0x8000, 2), (0xc000, 2)]);
        // Empty range: nothing.
        assert_eq!(plan(0x1000, 0, &caps, 16).count(), 0);
    }

    #[test]
    fn psi_plan_falls_back_to_domain() {
        let caps = qemu_caps();
        let dsi = InvDesc::Iotlb { granularity: IotlbGranularity::Domain(DomainId(4)), dr: false, dw: false };
        // Pages 1..=6 need 4 descriptors: above a limit of 3.
        assert_eq!(plan(0x1000, 0x6000, &caps, 3), IotlbPlan::Domain(dsi));
        assert_eq!(plan(0x1000, 0x6000, &caps, 3).count(), 1);
        // Wrapping the address space.
        assert_eq!(plan(u64::MAX - 0xfff, 0x2000, &caps, 16), IotlbPlan::Domain(dsi));
        // No PSI.
        assert_eq!(plan(0x1000, 0x1000, &Capabilities { psi: false, ..caps }, 16), IotlbPlan::Domain(dsi));
        // Drain bits follow CAP.DRD/DWD (QEMU has both).
        let p = plan_page_invalidation(DomainId(4), Iova(0), 0x1000, &caps, PsiPolicy::default()).next();
        assert!(matches!(p, Some(InvDesc::Iotlb { dr: true, dw: true, .. })));
    }

    fn any_desc() -> impl Strategy<Value = InvDesc> {
        let did = any::<u16>().prop_map(DomainId);
        let pasid = (0u32..1 << 20).prop_map(|p| Pasid::new(p).unwrap());
        let addr = (0u64..1 << 52).prop_map(|a| Iova(a << 12));
        prop_oneof![
            Just(InvDesc::ContextCache(CcGranularity::Global)),
            did.clone().prop_map(|d| InvDesc::ContextCache(CcGranularity::Domain(d))),
            (did.clone(), any::<u16>(), 0u64..4).prop_map(|(did, sid, fm)| InvDesc::ContextCache(
                CcGranularity::Device { did, sid: SourceId(sid), fm: FunctionMask::from_field(fm) }
            )),
            (0u8..3, did.clone(), addr.clone(), 0u8..64, any::<[bool; 3]>()).prop_map(
                |(g, did, addr, am, [ih, dr, dw])| {
                    let granularity = match g {
                        0 => IotlbGranularity::Global,
                        1 => IotlbGranularity::Domain(did),
                        _ => IotlbGranularity::Page { did, addr, am, ih },
                    };
                    InvDesc::Iotlb { granularity, dr, dw }
                }
            ),
            (any::<u16>(), any::<u16>(), 0u8..32, 0u64..1 << 52, any::<bool>()).prop_map(
                |(sid, pf, mip, a, s)| InvDesc::DeviceTlb {
                    sid: SourceId(sid),
                    pfsid: SourceId(pf),
                    mip,
                    range: DevTlbRange { addr: a << 12, s }
                }
            ),
            proptest::option::of((any::<u16>(), 0u8..32))
                .prop_map(|index| InvDesc::InterruptEntryCache { index }),
            (any::<[bool; 3]>(), proptest::option::of((0u64..1 << 62, any::<u32>()))).prop_map(
                |([i, f, p], st)| {
                    InvDesc::Wait(InvWait {
                        interrupt: i,
                        status: st.map(|(a, d)| (PhysAddr(a << 2), d)),
                        fence: f,
                        page_drain: p,
                    })
                }
            ),
            (did.clone(), pasid.clone(), proptest::option::of((addr, 0u8..64, any::<bool>()))).prop_map(
                |(did, pasid, pg)| {
                    InvDesc::PasidIotlb {
                        did,
                        pasid,
                        granularity: match pg {
                            None => PasidIotlbGranularity::NonGlobal,
                            Some((addr, am, ih)) => PasidIotlbGranularity::Page { addr, am, ih },
                        },
                    }
                }
            ),
            (did, 0u8..3, pasid.clone()).prop_map(|(did, g, p)| InvDesc::PasidCache {
                did,
                granularity: [
                    PasidCacheGranularity::Domain,
                    PasidCacheGranularity::Pasid(p),
                    PasidCacheGranularity::Global
                ][g as usize]
            }),
            (any::<u16>(), any::<u16>(), 0u8..32, pasid, any::<bool>(), 0u64..1 << 52, any::<bool>())
                .prop_map(|(sid, pf, mip, pasid, global, a, s)| InvDesc::PasidDeviceTlb {
                    sid: SourceId(sid),
                    pfsid: SourceId(pf),
                    mip,
                    pasid,
                    global,
                    range: DevTlbRange { addr: a << 12, s }
                }),
        ]
    }

    proptest! {
        #[test]
        fn desc_round_trip(d in any_desc()) {
            prop_assert_eq!(InvDesc::decode(d.encode()), Ok(d));
            prop_assert_eq!(InvDesc::decode256(d.encode256()), Ok(d));
        }

        #[test]
        fn desc_decode_is_total(w0: u64, w1: u64, ty in 0u64..10) {
            let words = [(w0 & !0xe0f) | ty, w1];
            if let Ok(d) = InvDesc::decode(words) {
                prop_assert_eq!(d.encode(), words);
            }
        }

        #[test]
        fn iqa_round_trip(base in 0u64..1 << 52, qs in 0u8..8, dw: bool) {
            let q = Iqa { base: PhysAddr(base << 12), qs, dw256: dw };
            prop_assert_eq!(Iqa::decode(q.encode()), Ok(q));
        }

        // The plan covers exactly the touched pages, each block aligned and
        // within MAMV, in order, without overlap.
        #[test]
        fn psi_plan_covers_exactly(first in 0u64..1 << 30, pages in 1u64..5000, mamv in 0u8..20, off in 0u64..4096) {
            let caps = Capabilities { mamv, ..qemu_caps() };
            let iova = (first << 12) + off;
            let len = (pages << 12) - off;
            let mut next = first;
            let mut n = 0;
            for (addr, am) in blocks(plan(iova, len, &caps, usize::MAX)) {
                prop_assert!(am <= mamv);
                prop_assert_eq!(addr >> 12, next);
                prop_assert_eq!((addr >> 12) % (1 << am), 0);
                next += 1 << am;
                n += 1;
            }
            prop_assert_eq!(next, first + pages);
            // Never more blocks than pages; with MAMV above the range's
            // size, at most two blocks per bit of the page count.
            prop_assert!(n <= pages);
            if mamv >= 13 {
                prop_assert!(n <= 2 * 13);
            }
        }
    }
}
