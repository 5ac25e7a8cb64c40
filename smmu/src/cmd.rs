//! Commands (IHI 0070 chapter 4): 16-byte Command queue entries as typed
//! values, and the planner that turns an address range into TLB invalidations.
//!
//! Every command begins with an 8-bit opcode (4.1.1). Common fields (4.1.6):
//! SSec at bit 10 (must be 0 on the Non-secure queue), SSV at bit 11,
//! SubstreamID at `[31:12]`, StreamID at `[63:32]`; VA arguments are
//! `Address[63:12]`, IPA/PA arguments `Address[55:12]`.

use core::fmt;

use iommu_common::addr::{Iova, Ipa, PhysAddr};
use tock_registers::LocalRegisterCopy;

use crate::caps::Granule;
use crate::ids::{Asid, StreamId, SubstreamId, Vmid};

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// Command word 0 (bits `[63:0]`); fields overlap between commands.
        pub CMD_0 [
            /// Command opcode.
            OPCODE OFFSET(0) NUMBITS(8) [],
            /// CMD_ATC_INV: Global invalidate.
            GLOBAL OFFSET(9) NUMBITS(1) [],
            /// StreamID is Secure (must be 0 from the Non-secure queue).
            SSEC OFFSET(10) NUMBITS(1) [],
            /// SubstreamID valid.
            SSV OFFSET(11) NUMBITS(1) [],
            /// SubstreamID.
            SUBSTREAMID OFFSET(12) NUMBITS(20) [],
            /// TLBI range: granule multiplier - 1.
            NUM OFFSET(12) NUMBITS(5) [],
            /// TLBI range: scale (bit 25 only when SMMU_IDR5.DS == 1).
            SCALE OFFSET(20) NUMBITS(6) [],
            /// CMD_SYNC: completion signal.
            CS OFFSET(12) NUMBITS(2) [None = 0, Irq = 1, Sev = 2],
            /// CMD_RESUME: action (1 retry, 0 terminate).
            AC OFFSET(12) NUMBITS(1) [],
            /// CMD_RESUME: abort on terminate.
            AB OFFSET(13) NUMBITS(1) [],
            /// CMD_SYNC: MSI shareability.
            MSH OFFSET(22) NUMBITS(2) [],
            /// CMD_SYNC: MSI memory attributes.
            MSIATTR OFFSET(24) NUMBITS(4) [],
            /// StreamID.
            STREAMID OFFSET(32) NUMBITS(32) [],
            /// TLBI: VMID.
            VMID OFFSET(32) NUMBITS(16) [],
            /// TLBI: ASID.
            ASID OFFSET(48) NUMBITS(16) [],
            /// CMD_SYNC: MSI data.
            MSIDATA OFFSET(32) NUMBITS(32) []
        ],
        /// Command word 1 (bits `[127:64]`).
        pub CMD_1 [
            /// CFGI/TLBI: leaf only.
            LEAF OFFSET(0) NUMBITS(1) [],
            /// CMD_CFGI_STE_RANGE: 2^(Range+1) StreamIDs.
            RANGE OFFSET(0) NUMBITS(5) [],
            /// CMD_PREFETCH_ADDR: log2 of the number of translations.
            SIZE OFFSET(0) NUMBITS(5) [],
            /// CMD_PREFETCH_ADDR: stride is 2^(12 + Stride).
            STRIDE OFFSET(5) NUMBITS(5) [],
            /// CMD_ATC_INV: span is 4 KiB * 2^Size.
            ATC_SIZE OFFSET(0) NUMBITS(6) [],
            /// TLBI: translation table level hint.
            TTL OFFSET(8) NUMBITS(2) [],
            /// TLBI: translation granule (0 none, 1 4K, 2 16K, 3 64K).
            TG OFFSET(10) NUMBITS(2) [],
            /// Virtual address `[63:12]`.
            VA OFFSET(12) NUMBITS(52) [],
            /// IPA or PA `[55:12]`.
            PA OFFSET(12) NUMBITS(44) [],
            /// CMD_PRI_RESP: page request group index.
            PRGINDEX OFFSET(0) NUMBITS(9) [],
            /// CMD_PRI_RESP: response.
            RESP OFFSET(12) NUMBITS(2) [],
            /// CMD_RESUME: stall tag.
            STAG OFFSET(0) NUMBITS(16) [],
            /// CMD_SYNC: MSI address `[55:2]`.
            MSIADDRESS OFFSET(2) NUMBITS(54) []
        ]
    ];
}
pub use layout::*;

/// Opcodes (4.1.1).
pub mod opcode {
    /// CMD_PREFETCH_CONFIG.
    pub const PREFETCH_CONFIG: u8 = 0x01;
    /// CMD_PREFETCH_ADDR.
    pub const PREFETCH_ADDR: u8 = 0x02;
    /// CMD_CFGI_STE.
    pub const CFGI_STE: u8 = 0x03;
    /// CMD_CFGI_STE_RANGE, and CMD_CFGI_ALL with Range == 31.
    pub const CFGI_STE_RANGE: u8 = 0x04;
    /// CMD_CFGI_CD.
    pub const CFGI_CD: u8 = 0x05;
    /// CMD_CFGI_CD_ALL.
    pub const CFGI_CD_ALL: u8 = 0x06;
    /// CMD_TLBI_NH_ALL.
    pub const TLBI_NH_ALL: u8 = 0x10;
    /// CMD_TLBI_NH_ASID.
    pub const TLBI_NH_ASID: u8 = 0x11;
    /// CMD_TLBI_NH_VA.
    pub const TLBI_NH_VA: u8 = 0x12;
    /// CMD_TLBI_NH_VAA.
    pub const TLBI_NH_VAA: u8 = 0x13;
    /// CMD_TLBI_EL2_ALL.
    pub const TLBI_EL2_ALL: u8 = 0x20;
    /// CMD_TLBI_S12_VMALL.
    pub const TLBI_S12_VMALL: u8 = 0x28;
    /// CMD_TLBI_S2_IPA.
    pub const TLBI_S2_IPA: u8 = 0x2a;
    /// CMD_TLBI_NSNH_ALL.
    pub const TLBI_NSNH_ALL: u8 = 0x30;
    /// CMD_ATC_INV.
    pub const ATC_INV: u8 = 0x40;
    /// CMD_PRI_RESP.
    pub const PRI_RESP: u8 = 0x41;
    /// CMD_RESUME.
    pub const RESUME: u8 = 0x44;
    /// CMD_STALL_TERM.
    pub const STALL_TERM: u8 = 0x45;
    /// CMD_SYNC.
    pub const SYNC: u8 = 0x46;
}

/// The spec name of an opcode, for logs.
pub fn opcode_name(op: u8) -> &'static str {
    match op {
        0x01 => "CMD_PREFETCH_CONFIG",
        0x02 => "CMD_PREFETCH_ADDR",
        0x03 => "CMD_CFGI_STE",
        0x04 => "CMD_CFGI_STE_RANGE",
        0x05 => "CMD_CFGI_CD",
        0x06 => "CMD_CFGI_CD_ALL",
        0x07 => "CMD_CFGI_VMS_PIDM",
        0x10 => "CMD_TLBI_NH_ALL",
        0x11 => "CMD_TLBI_NH_ASID",
        0x12 => "CMD_TLBI_NH_VA",
        0x13 => "CMD_TLBI_NH_VAA",
        0x18 => "CMD_TLBI_EL3_ALL",
        0x1a => "CMD_TLBI_EL3_VA",
        0x20 => "CMD_TLBI_EL2_ALL",
        0x21 => "CMD_TLBI_EL2_ASID",
        0x22 => "CMD_TLBI_EL2_VA",
        0x23 => "CMD_TLBI_EL2_VAA",
        0x28 => "CMD_TLBI_S12_VMALL",
        0x2a => "CMD_TLBI_S2_IPA",
        0x30 => "CMD_TLBI_NSNH_ALL",
        0x40 => "CMD_ATC_INV",
        0x41 => "CMD_PRI_RESP",
        0x44 => "CMD_RESUME",
        0x45 => "CMD_STALL_TERM",
        0x46 => "CMD_SYNC",
        0x80..=0x8f => "IMPLEMENTATION DEFINED",
        _ => "reserved",
    }
}

/// Range and level-hint fields of an address-based TLBI (4.4.1.1). Requires
/// SMMU_IDR3.RIL. Invalidates `(num + 1) * 2^scale` granules from the address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlbiRange {
    /// Granule of the entries to invalidate (TG).
    pub tg: Granule,
    /// Level of the leaf entries (TTL), 0 if unknown, else 1..=3.
    pub ttl: u8,
    /// NUM: granule multiplier minus one (0..=31).
    pub num: u8,
    /// SCALE (0..=31; up to 39 with SMMU_IDR5.DS).
    pub scale: u8,
}

impl TlbiRange {
    fn tg_field(&self) -> u64 {
        match self.tg {
            Granule::K4 => 1,
            Granule::K16 => 2,
            Granule::K64 => 3,
        }
    }

    /// Number of granules covered.
    pub fn pages(&self) -> u64 {
        (u64::from(self.num) + 1) << self.scale
    }
}

/// Leaf and range options of an address-based TLBI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TlbiOpts {
    /// Only leaf (last-level) entries need invalidating.
    pub leaf: bool,
    /// Range form; `None` for a single-address invalidation (TG == 0).
    pub range: Option<TlbiRange>,
}

/// CMD_SYNC completion signal (CS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncSignal {
    /// SIG_NONE: poll CMDQ_CONS.
    #[default]
    None,
    /// SIG_IRQ: MSI (if MSIAddress != 0) or wired interrupt.
    Irq,
    /// SIG_SEV: WFE wake-up event.
    Sev,
}

/// CMD_SYNC parameters (4.7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Sync {
    /// Completion signal.
    pub cs: SyncSignal,
    /// MSI shareability (MSH).
    pub msh: u8,
    /// MSI memory attributes (MSIAttr, STE.MemAttr encoding).
    pub msi_attr: u8,
    /// MSI data.
    pub msi_data: u32,
    /// MSI target; 0 means no MSI.
    pub msi_addr: PhysAddr,
}

impl Sync {
    /// MSH for a completion MSI to memory: Inner Shareable (0b11), as the
    /// CPU's mapping of RAM.
    pub const MSH_INNER_SHAREABLE: u8 = 0b11;
    /// MSIAttr for a completion MSI to memory: Normal, Inner and Outer
    /// Write-Back cacheable (STE.MemAttr encoding 0b1111).
    pub const MSIATTR_WRITE_BACK: u8 = 0b1111;

    /// A CMD_SYNC that signals completion with an MSI writing `data` (32 bits)
    /// to `addr` in Normal Write-Back Inner Shareable memory (CS = SIG_IRQ,
    /// 4.7.3). Only meaningful when SMMU_IDR0.MSI == 1; the memory must be
    /// coherent with the SMMU (SMMU_IDR0.COHACC == 1) for the CPU to see the
    /// write without cache maintenance. `addr` must be 4-byte aligned.
    pub const fn msi(addr: PhysAddr, data: u32) -> Self {
        Self {
            cs: SyncSignal::Irq,
            msh: Self::MSH_INNER_SHAREABLE,
            msi_attr: Self::MSIATTR_WRITE_BACK,
            msi_data: data,
            msi_addr: addr,
        }
    }
}

/// CMD_PRI_RESP response code (4.5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PriResponse {
    /// ResponseFailure.
    Failure = 0,
    /// InvalidRequest.
    InvalidRequest = 1,
    /// Success.
    Success = 2,
}

/// CMD_RESUME action (4.7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeAction {
    /// Retry the stalled transaction.
    Retry,
    /// Terminate it, with an abort or RAZ/WI.
    Terminate {
        /// Report an abort (Ab == 1) rather than RAZ/WI.
        abort: bool,
    },
}

/// A command for the Command queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// CMD_PREFETCH_CONFIG (4.2.1).
    PrefetchConfig {
        /// StreamID.
        sid: StreamId,
        /// SubstreamID, if any (SSV).
        ssid: Option<SubstreamId>,
    },
    /// CMD_PREFETCH_ADDR (4.2.2).
    PrefetchAddr {
        /// StreamID.
        sid: StreamId,
        /// SubstreamID, if any (SSV).
        ssid: Option<SubstreamId>,
        /// First address.
        addr: Iova,
        /// log2 of the number of translations (5 bits).
        size: u8,
        /// Stride 2^(12 + stride) (5 bits).
        stride: u8,
    },
    /// CMD_CFGI_STE (4.3.1): invalidate the STE (and with `leaf == false` the L1STD).
    CfgiSte {
        /// StreamID.
        sid: StreamId,
        /// Leaf: only the STE.
        leaf: bool,
    },
    /// CMD_CFGI_STE_RANGE (4.3.2): the 2^(range+1) STEs around `sid`.
    CfgiSteRange {
        /// A StreamID in the range.
        sid: StreamId,
        /// Range (0..=30; 31 is CMD_CFGI_ALL).
        range: u8,
    },
    /// CMD_CFGI_CD (4.3.3).
    CfgiCd {
        /// StreamID.
        sid: StreamId,
        /// SubstreamID of the CD.
        ssid: SubstreamId,
        /// Leaf: only the CD, not the L1CD.
        leaf: bool,
    },
    /// CMD_CFGI_CD_ALL (4.3.4): all CDs of a stream.
    CfgiCdAll {
        /// StreamID.
        sid: StreamId,
    },
    /// CMD_CFGI_ALL (4.3.6): CMD_CFGI_STE_RANGE with Range == 31.
    CfgiAll,
    /// CMD_TLBI_NH_ALL (4.4.2.1): all NS-EL1 stage 1 entries of a VMID.
    TlbiNhAll {
        /// VMID.
        vmid: Vmid,
    },
    /// CMD_TLBI_NH_ASID (4.4.2.2).
    TlbiNhAsid {
        /// VMID.
        vmid: Vmid,
        /// ASID.
        asid: Asid,
    },
    /// CMD_TLBI_NH_VA (4.4.2.4).
    TlbiNhVa {
        /// VMID.
        vmid: Vmid,
        /// ASID.
        asid: Asid,
        /// Virtual address (granule aligned).
        addr: Iova,
        /// Leaf and range.
        opts: TlbiOpts,
    },
    /// CMD_TLBI_NH_VAA (4.4.2.3): all ASIDs.
    TlbiNhVaa {
        /// VMID.
        vmid: Vmid,
        /// Virtual address (granule aligned).
        addr: Iova,
        /// Leaf and range.
        opts: TlbiOpts,
    },
    /// CMD_TLBI_EL2_ALL (4.4.2.7). ILLEGAL unless SMMU_IDR0.Hyp.
    TlbiEl2All,
    /// CMD_TLBI_S12_VMALL (4.4.3.2): all stage 1 and 2 entries of a VMID.
    TlbiS12Vmall {
        /// VMID.
        vmid: Vmid,
    },
    /// CMD_TLBI_S2_IPA (4.4.3.1).
    TlbiS2Ipa {
        /// VMID.
        vmid: Vmid,
        /// Intermediate physical address (granule aligned).
        addr: Ipa,
        /// Leaf and range.
        opts: TlbiOpts,
    },
    /// CMD_TLBI_NSNH_ALL (4.4.4.1): all Non-secure non-Hyp entries.
    TlbiNsnhAll,
    /// CMD_ATC_INV (4.5.1).
    AtcInv {
        /// StreamID.
        sid: StreamId,
        /// SubstreamID, if any (SSV).
        ssid: Option<SubstreamId>,
        /// Global.
        global: bool,
        /// Address (aligned to the span).
        addr: Iova,
        /// Span is 4 KiB * 2^size; 52 means everything.
        size: u8,
    },
    /// CMD_PRI_RESP (4.5.2).
    PriResp {
        /// StreamID.
        sid: StreamId,
        /// SubstreamID, if any (SSV).
        ssid: Option<SubstreamId>,
        /// Page request group index (9 bits).
        prg_index: u16,
        /// Response.
        resp: PriResponse,
    },
    /// CMD_RESUME (4.7.1).
    Resume {
        /// StreamID.
        sid: StreamId,
        /// Stall tag from the event.
        stag: u16,
        /// Action.
        action: ResumeAction,
    },
    /// CMD_STALL_TERM (4.7.2).
    StallTerm {
        /// StreamID.
        sid: StreamId,
    },
    /// CMD_SYNC (4.7.3).
    Sync(Sync),
}

/// A command word pair that is not a valid command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmdDecodeError {
    /// Reserved or unsupported opcode.
    UnknownOpcode(u8),
    /// SSec == 1: illegal on the Non-secure queue.
    SecureStream,
    /// A reserved field encoding (CS == 3, Resp == 3, TLBI TG with NUM, SCALE
    /// and TTL all zero, ...).
    ReservedEncoding,
    /// A field of the typed command does not fit its encoding (it would be
    /// truncated), or an address is not aligned as the field requires.
    Truncated,
    /// Bits outside the command's fields are set.
    ReservedBits {
        /// Word (0 or 1).
        word: u8,
        /// The offending bits.
        bits: u64,
    },
}

impl fmt::Display for CmdDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownOpcode(op) => write!(f, "unknown command opcode {op:#04x}"),
            Self::SecureStream => f.write_str("SSec set on the Non-secure command queue"),
            Self::ReservedEncoding => f.write_str("reserved field encoding"),
            Self::Truncated => f.write_str("field value does not fit its encoding"),
            Self::ReservedBits { word, bits } => {
                write!(f, "reserved bits {bits:#x} set in command word {word}")
            }
        }
    }
}

type W0 = LocalRegisterCopy<u64, CMD_0::Register>;
type W1 = LocalRegisterCopy<u64, CMD_1::Register>;

fn with_ssid(w0: &mut W0, ssid: Option<SubstreamId>) {
    if let Some(s) = ssid {
        w0.modify(CMD_0::SSV::SET + CMD_0::SUBSTREAMID.val(u64::from(s.get())));
    }
}

fn tlbi_opts(w0: &mut W0, w1: &mut W1, opts: &TlbiOpts) {
    if opts.leaf {
        w1.modify(CMD_1::LEAF::SET);
    }
    if let Some(r) = opts.range {
        w0.modify(CMD_0::NUM.val(u64::from(r.num)) + CMD_0::SCALE.val(u64::from(r.scale)));
        w1.modify(CMD_1::TG.val(r.tg_field()) + CMD_1::TTL.val(u64::from(r.ttl)));
    }
}

impl Command {
    /// The opcode (word 0 bits `[7:0]`).
    pub const fn opcode(&self) -> u8 {
        use opcode::*;
        match self {
            Self::PrefetchConfig { .. } => PREFETCH_CONFIG,
            Self::PrefetchAddr { .. } => PREFETCH_ADDR,
            Self::CfgiSte { .. } => CFGI_STE,
            Self::CfgiSteRange { .. } | Self::CfgiAll => CFGI_STE_RANGE,
            Self::CfgiCd { .. } => CFGI_CD,
            Self::CfgiCdAll { .. } => CFGI_CD_ALL,
            Self::TlbiNhAll { .. } => TLBI_NH_ALL,
            Self::TlbiNhAsid { .. } => TLBI_NH_ASID,
            Self::TlbiNhVa { .. } => TLBI_NH_VA,
            Self::TlbiNhVaa { .. } => TLBI_NH_VAA,
            Self::TlbiEl2All => TLBI_EL2_ALL,
            Self::TlbiS12Vmall { .. } => TLBI_S12_VMALL,
            Self::TlbiS2Ipa { .. } => TLBI_S2_IPA,
            Self::TlbiNsnhAll => TLBI_NSNH_ALL,
            Self::AtcInv { .. } => ATC_INV,
            Self::PriResp { .. } => PRI_RESP,
            Self::Resume { .. } => RESUME,
            Self::StallTerm { .. } => STALL_TERM,
            Self::Sync(_) => SYNC,
        }
    }

    /// A CMD_SYNC that signals nothing (completion is seen by polling CONS).
    pub const fn sync() -> Self {
        Self::Sync(Sync { cs: SyncSignal::None, msh: 0, msi_attr: 0, msi_data: 0, msi_addr: PhysAddr(0) })
    }

    /// Encodes the command as two little-endian words (word 0 first).
    /// Numeric fields are truncated to their width: use [`Command::check`]
    /// (or the typed constructors and planners) to keep them in range.
    pub fn encode(&self) -> [u64; 2] {
        let mut w0 = W0::new(0);
        let mut w1 = W1::new(0);
        w0.write(CMD_0::OPCODE.val(u64::from(self.opcode())));
        let sid = |w0: &mut W0, sid: StreamId| w0.modify(CMD_0::STREAMID.val(u64::from(sid.0)));
        match *self {
            Self::PrefetchConfig { sid: s, ssid } => {
                sid(&mut w0, s);
                with_ssid(&mut w0, ssid);
            }
            Self::PrefetchAddr { sid: s, ssid, addr, size, stride } => {
                sid(&mut w0, s);
                with_ssid(&mut w0, ssid);
                w1.modify(
                    CMD_1::SIZE.val(u64::from(size))
                        + CMD_1::STRIDE.val(u64::from(stride))
                        + CMD_1::VA.val(addr.0 >> 12),
                );
            }
            Self::CfgiSte { sid: s, leaf } => {
                sid(&mut w0, s);
                if leaf {
                    w1.modify(CMD_1::LEAF::SET);
                }
            }
            Self::CfgiSteRange { sid: s, range } => {
                sid(&mut w0, s);
                w1.modify(CMD_1::RANGE.val(u64::from(range)));
            }
            Self::CfgiAll => w1.modify(CMD_1::RANGE.val(31)),
            Self::CfgiCd { sid: s, ssid, leaf } => {
                sid(&mut w0, s);
                w0.modify(CMD_0::SUBSTREAMID.val(u64::from(ssid.get())));
                if leaf {
                    w1.modify(CMD_1::LEAF::SET);
                }
            }
            Self::CfgiCdAll { sid: s } | Self::StallTerm { sid: s } => sid(&mut w0, s),
            Self::TlbiNhAll { vmid } | Self::TlbiS12Vmall { vmid } => {
                w0.modify(CMD_0::VMID.val(u64::from(vmid.0)));
            }
            Self::TlbiNhAsid { vmid, asid } => {
                w0.modify(CMD_0::VMID.val(u64::from(vmid.0)) + CMD_0::ASID.val(u64::from(asid.0)));
            }
            Self::TlbiNhVa { vmid, asid, addr, opts } => {
                w0.modify(CMD_0::VMID.val(u64::from(vmid.0)) + CMD_0::ASID.val(u64::from(asid.0)));
                w1.modify(CMD_1::VA.val(addr.0 >> 12));
                tlbi_opts(&mut w0, &mut w1, &opts);
            }
            Self::TlbiNhVaa { vmid, addr, opts } => {
                w0.modify(CMD_0::VMID.val(u64::from(vmid.0)));
                w1.modify(CMD_1::VA.val(addr.0 >> 12));
                tlbi_opts(&mut w0, &mut w1, &opts);
            }
            Self::TlbiS2Ipa { vmid, addr, opts } => {
                w0.modify(CMD_0::VMID.val(u64::from(vmid.0)));
                w1.modify(CMD_1::PA.val(addr.0 >> 12));
                tlbi_opts(&mut w0, &mut w1, &opts);
            }
            Self::TlbiEl2All | Self::TlbiNsnhAll => {}
            Self::AtcInv { sid: s, ssid, global, addr, size } => {
                sid(&mut w0, s);
                with_ssid(&mut w0, ssid);
                if global {
                    w0.modify(CMD_0::GLOBAL::SET);
                }
                w1.modify(CMD_1::ATC_SIZE.val(u64::from(size)) + CMD_1::VA.val(addr.0 >> 12));
            }
            Self::PriResp { sid: s, ssid, prg_index, resp } => {
                sid(&mut w0, s);
                with_ssid(&mut w0, ssid);
                w1.modify(CMD_1::PRGINDEX.val(u64::from(prg_index)) + CMD_1::RESP.val(resp as u64));
            }
            Self::Resume { sid: s, stag, action } => {
                sid(&mut w0, s);
                match action {
                    ResumeAction::Retry => w0.modify(CMD_0::AC::SET),
                    ResumeAction::Terminate { abort: true } => w0.modify(CMD_0::AB::SET),
                    ResumeAction::Terminate { abort: false } => {}
                }
                w1.modify(CMD_1::STAG.val(u64::from(stag)));
            }
            Self::Sync(s) => {
                let cs = match s.cs {
                    SyncSignal::None => CMD_0::CS::None,
                    SyncSignal::Irq => CMD_0::CS::Irq,
                    SyncSignal::Sev => CMD_0::CS::Sev,
                };
                w0.modify(
                    cs + CMD_0::MSH.val(u64::from(s.msh))
                        + CMD_0::MSIATTR.val(u64::from(s.msi_attr))
                        + CMD_0::MSIDATA.val(u64::from(s.msi_data)),
                );
                w1.modify(CMD_1::MSIADDRESS.val(s.msi_addr.0 >> 2));
            }
        }
        [w0.get(), w1.get()]
    }

    /// Checks that the command encodes exactly: every field fits, addresses
    /// are aligned as their fields require, no reserved encoding is used
    /// (`decode(encode(c)) == c`). CMD_CFGI_STE_RANGE with Range 31 must be
    /// written as [`Command::CfgiAll`].
    pub fn check(&self) -> Result<(), CmdDecodeError> {
        match Self::decode(self.encode()) {
            Ok(c) if c == *self => Ok(()),
            Ok(_) => Err(CmdDecodeError::Truncated),
            Err(e) => Err(e),
        }
    }

    /// Decodes a command. Strict: reserved opcodes, SSec == 1, reserved
    /// encodings and any bit outside the command's fields are errors, so
    /// `decode(w).map(|c| c.encode()) == Ok(w)` whenever decoding succeeds.
    pub fn decode(words: [u64; 2]) -> Result<Self, CmdDecodeError> {
        let w0 = W0::new(words[0]);
        let w1 = W1::new(words[1]);
        if w0.is_set(CMD_0::SSEC) {
            return Err(CmdDecodeError::SecureStream);
        }
        // Field extraction: the narrowing casts are of fields no wider than
        // the target type.
        let sid = StreamId(w0.read(CMD_0::STREAMID) as u32);
        let ssid_raw = w0.read(CMD_0::SUBSTREAMID) as u32;
        let ssid = if w0.is_set(CMD_0::SSV) { SubstreamId::new(ssid_raw) } else { None };
        let vmid = Vmid(w0.read(CMD_0::VMID) as u16);
        let asid = Asid(w0.read(CMD_0::ASID) as u16);
        let va = Iova(w1.read(CMD_1::VA) << 12);
        let opts = || -> Result<TlbiOpts, CmdDecodeError> {
            let tg = match w1.read(CMD_1::TG) {
                0 => None,
                1 => Some(Granule::K4),
                2 => Some(Granule::K16),
                _ => Some(Granule::K64),
            };
            let range = match tg {
                None => None,
                Some(tg) => {
                    let r = TlbiRange {
                        tg,
                        ttl: w1.read(CMD_1::TTL) as u8,
                        num: w0.read(CMD_0::NUM) as u8,
                        scale: w0.read(CMD_0::SCALE) as u8,
                    };
                    if r.num == 0 && r.scale == 0 && r.ttl == 0 {
                        // 4.4.1.1: Reserved, causes CERROR_ILL.
                        return Err(CmdDecodeError::ReservedEncoding);
                    }
                    Some(r)
                }
            };
            Ok(TlbiOpts { leaf: w1.is_set(CMD_1::LEAF), range })
        };
        use opcode::*;
        let cmd = match w0.read(CMD_0::OPCODE) as u8 {
            PREFETCH_CONFIG => Self::PrefetchConfig { sid, ssid },
            PREFETCH_ADDR => Self::PrefetchAddr {
                sid,
                ssid,
                addr: va,
                size: w1.read(CMD_1::SIZE) as u8,
                stride: w1.read(CMD_1::STRIDE) as u8,
            },
            CFGI_STE => Self::CfgiSte { sid, leaf: w1.is_set(CMD_1::LEAF) },
            CFGI_STE_RANGE => match w1.read(CMD_1::RANGE) as u8 {
                31 if sid.0 == 0 => Self::CfgiAll,
                range => Self::CfgiSteRange { sid, range },
            },
            CFGI_CD => Self::CfgiCd {
                sid,
                ssid: SubstreamId::new(ssid_raw).ok_or(CmdDecodeError::ReservedEncoding)?,
                leaf: w1.is_set(CMD_1::LEAF),
            },
            CFGI_CD_ALL => Self::CfgiCdAll { sid },
            TLBI_NH_ALL => Self::TlbiNhAll { vmid },
            TLBI_NH_ASID => Self::TlbiNhAsid { vmid, asid },
            TLBI_NH_VA => Self::TlbiNhVa { vmid, asid, addr: va, opts: opts()? },
            TLBI_NH_VAA => Self::TlbiNhVaa { vmid, addr: va, opts: opts()? },
            TLBI_EL2_ALL => Self::TlbiEl2All,
            TLBI_S12_VMALL => Self::TlbiS12Vmall { vmid },
            TLBI_S2_IPA => Self::TlbiS2Ipa { vmid, addr: Ipa(w1.read(CMD_1::PA) << 12), opts: opts()? },
            TLBI_NSNH_ALL => Self::TlbiNsnhAll,
            ATC_INV => Self::AtcInv {
                sid,
                ssid,
                global: w0.is_set(CMD_0::GLOBAL),
                addr: va,
                size: w1.read(CMD_1::ATC_SIZE) as u8,
            },
            PRI_RESP => Self::PriResp {
                sid,
                ssid,
                prg_index: w1.read(CMD_1::PRGINDEX) as u16,
                resp: match w1.read(CMD_1::RESP) {
                    0 => PriResponse::Failure,
                    1 => PriResponse::InvalidRequest,
                    2 => PriResponse::Success,
                    _ => return Err(CmdDecodeError::ReservedEncoding),
                },
            },
            RESUME => Self::Resume {
                sid,
                stag: w1.read(CMD_1::STAG) as u16,
                action: if w0.is_set(CMD_0::AC) {
                    ResumeAction::Retry
                } else {
                    ResumeAction::Terminate { abort: w0.is_set(CMD_0::AB) }
                },
            },
            STALL_TERM => Self::StallTerm { sid },
            SYNC => Self::Sync(Sync {
                cs: match w0.read(CMD_0::CS) {
                    0 => SyncSignal::None,
                    1 => SyncSignal::Irq,
                    2 => SyncSignal::Sev,
                    _ => return Err(CmdDecodeError::ReservedEncoding),
                },
                msh: w0.read(CMD_0::MSH) as u8,
                msi_attr: w0.read(CMD_0::MSIATTR) as u8,
                msi_data: w0.read(CMD_0::MSIDATA) as u32,
                msi_addr: PhysAddr(w1.read(CMD_1::MSIADDRESS) << 2),
            }),
            op => return Err(CmdDecodeError::UnknownOpcode(op)),
        };
        // Anything the typed value does not re-encode is a reserved bit
        // (for CMD_RESUME with Retry, Ab is IGNORED rather than reserved).
        let canon = cmd.encode();
        let mut extra0 = words[0] ^ canon[0];
        if let Self::Resume { action: ResumeAction::Retry, .. } = cmd {
            extra0 &= !crate::fields::bits(CMD_0::AB);
        }
        if extra0 != 0 {
            return Err(CmdDecodeError::ReservedBits { word: 0, bits: extra0 });
        }
        if words[1] != canon[1] {
            return Err(CmdDecodeError::ReservedBits { word: 1, bits: words[1] ^ canon[1] });
        }
        Ok(cmd)
    }
}

// ---------------------------------------------------------------------------
// Invalidation planning.

/// How to invalidate an address range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidationPolicy {
    /// Use range invalidation (only if SMMU_IDR3.RIL).
    pub ril: bool,
    /// Above this many commands, invalidate the whole VMID/ASID instead.
    pub max_commands: usize,
}

impl Default for InvalidationPolicy {
    fn default() -> Self {
        Self { ril: false, max_commands: 64 }
    }
}

/// Which translations an address-range invalidation targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlbiTarget {
    /// Stage 1 (NS-EL1) VAs of one ASID: CMD_TLBI_NH_VA, or CMD_TLBI_NH_ASID
    /// when too big.
    Stage1 {
        /// VMID of the stream.
        vmid: Vmid,
        /// ASID of the context.
        asid: Asid,
    },
    /// Stage 1 VAs of all ASIDs: CMD_TLBI_NH_VAA, or CMD_TLBI_NH_ALL.
    Stage1AllAsids {
        /// VMID of the stream.
        vmid: Vmid,
    },
    /// Stage 2 IPAs: CMD_TLBI_S2_IPA, or CMD_TLBI_S12_VMALL. For nested
    /// streams, combined entries additionally need CMD_TLBI_NH_ALL (4.4.3.1).
    Stage2 {
        /// VMID.
        vmid: Vmid,
    },
}

impl TlbiTarget {
    /// The single command invalidating everything the target could cache.
    pub fn whole(&self) -> Command {
        match *self {
            Self::Stage1 { vmid, asid } => Command::TlbiNhAsid { vmid, asid },
            Self::Stage1AllAsids { vmid } => Command::TlbiNhAll { vmid },
            Self::Stage2 { vmid } => Command::TlbiS12Vmall { vmid },
        }
    }

    fn at(&self, addr: u64, opts: TlbiOpts) -> Command {
        match *self {
            Self::Stage1 { vmid, asid } => Command::TlbiNhVa { vmid, asid, addr: Iova(addr), opts },
            Self::Stage1AllAsids { vmid } => Command::TlbiNhVaa { vmid, addr: Iova(addr), opts },
            Self::Stage2 { vmid } => Command::TlbiS2Ipa { vmid, addr: Ipa(addr), opts },
        }
    }
}

/// Result of [`plan_invalidation`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvalidationPlan {
    /// One VMID/ASID-wide command (the range was too big, or overflowed).
    Whole(Command),
    /// A series of address-based commands.
    Range(TlbiIter),
}

impl Iterator for InvalidationPlan {
    type Item = Command;

    fn next(&mut self) -> Option<Command> {
        match self {
            Self::Whole(c) => {
                let c = *c;
                *self = Self::Range(TlbiIter::empty());
                Some(c)
            }
            Self::Range(it) => it.next(),
        }
    }
}

/// Address-based TLBIs covering a range, generated lazily (no allocation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlbiIter {
    target: TlbiTarget,
    granule: Granule,
    addr: u64,
    pages: u64,
    ril: bool,
    leaf: bool,
    ttl: u8,
}

impl TlbiIter {
    fn empty() -> Self {
        Self {
            target: TlbiTarget::Stage2 { vmid: Vmid(0) },
            granule: Granule::K4,
            addr: 0,
            pages: 0,
            ril: false,
            leaf: false,
            ttl: 0,
        }
    }
}

impl Iterator for TlbiIter {
    type Item = Command;

    fn next(&mut self) -> Option<Command> {
        if self.pages == 0 {
            return None;
        }
        let (opts, chunk) = if self.ril {
            // Greedy over the page count's binary digits from the lowest set
            // bit: one command per 5-bit window (NUM holds 5 bits), as Linux's
            // __arm_smmu_tlb_inv_range does.
            let scale = self.pages.trailing_zeros().min(31);
            let q = self.pages >> scale;
            let num = if self.pages.trailing_zeros() <= 31 { q & 31 } else { q.min(32) };
            // NUM == SCALE == TTL == 0 is Reserved (4.4.1.1): encode two
            // granules instead. The extra granule overlaps the next command
            // (or lies just past the end): harmless over-invalidation that
            // keeps the decomposition of the rest unchanged.
            let encoded = if num == 1 && scale == 0 && self.ttl == 0 { 2 } else { num };
            let range = TlbiRange {
                tg: self.granule,
                ttl: self.ttl,
                // encoded in 1..=32, scale in 0..=31: both fit.
                num: (encoded - 1) as u8,
                scale: scale as u8,
            };
            (TlbiOpts { leaf: self.leaf, range: Some(range) }, num << scale)
        } else {
            (TlbiOpts { leaf: self.leaf, range: None }, 1)
        };
        let cmd = self.target.at(self.addr, opts);
        self.pages = self.pages.saturating_sub(chunk);
        match chunk.checked_mul(self.granule.size()).and_then(|bytes| self.addr.checked_add(bytes)) {
            Some(a) => self.addr = a,
            None => self.pages = 0,
        }
        Some(cmd)
    }
}

/// Plans the invalidation of `[start, start + len)` for `target`, using
/// `granule` pages: range commands when `policy.ril`, one command per granule
/// otherwise, and a single VMID/ASID-wide command when that would take more
/// than `policy.max_commands` commands (or the range wraps the address space).
/// `ttl` is the level of the leaf entries (1..=3) if known, else 0.
pub fn plan_invalidation(
    target: TlbiTarget,
    start: u64,
    len: u64,
    granule: Granule,
    leaf: bool,
    ttl: u8,
    policy: InvalidationPolicy,
) -> InvalidationPlan {
    let g = granule.size();
    let first = start & !(g - 1);
    let Some(end) = start.checked_add(len).and_then(|e| e.checked_add(g - 1)) else {
        return InvalidationPlan::Whole(target.whole());
    };
    let end = end & !(g - 1);
    let pages = if len == 0 { 0 } else { (end - first) >> granule.shift() };
    let it = TlbiIter {
        target,
        granule,
        addr: first,
        pages,
        ril: policy.ril,
        leaf,
        ttl: if policy.ril { ttl.min(3) } else { 0 },
    };
    let too_many = if policy.ril {
        it.clone().take(policy.max_commands.saturating_add(1)).count() > policy.max_commands
    } else {
        pages > policy.max_commands as u64
    };
    if too_many {
        InvalidationPlan::Whole(target.whole())
    } else {
        InvalidationPlan::Range(it)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::vec;

    fn ssid(v: u32) -> SubstreamId {
        SubstreamId::new(v).unwrap()
    }

    // Expected words below are written from the spec's command layouts
    // (4.1.1 opcodes, 4.1.6 common fields, 4.4.1.1 range fields).

    #[test]
    fn opcode_in_bits_7_0() {
        assert_eq!(Command::TlbiNsnhAll.encode(), [0x30, 0]);
        assert_eq!(Command::TlbiEl2All.encode(), [0x20, 0]);
        assert_eq!(Command::sync().encode(), [0x46, 0]);
    }

    #[test]
    fn cfgi_layouts() {
        let c = Command::CfgiSte { sid: StreamId(0x1234), leaf: true };
        assert_eq!(c.encode(), [0x03 | (0x1234 << 32), 1]);
        let c = Command::CfgiSte { sid: StreamId(0xffff_ffff), leaf: false };
        assert_eq!(c.encode(), [0x03 | (0xffff_ffff << 32), 0]);
        let c = Command::CfgiSteRange { sid: StreamId(0x100), range: 7 };
        assert_eq!(c.encode(), [0x04 | (0x100 << 32), 7]);
        // CMD_CFGI_ALL is CMD_CFGI_STE_RANGE with Range == 31 (4.3.6).
        assert_eq!(Command::CfgiAll.encode(), [0x04, 31]);
        let c = Command::CfgiCd { sid: StreamId(9), ssid: ssid(0xabcde), leaf: true };
        assert_eq!(c.encode(), [0x05 | (0xabcde << 12) | (9 << 32), 1]);
        assert_eq!(Command::CfgiCdAll { sid: StreamId(5) }.encode(), [0x06 | (5 << 32), 0]);
    }

    #[test]
    fn prefetch_layouts() {
        let c = Command::PrefetchConfig { sid: StreamId(7), ssid: Some(ssid(3)) };
        assert_eq!(c.encode(), [0x01 | (1 << 11) | (3 << 12) | (7 << 32), 0]);
        let c = Command::PrefetchAddr {
            sid: StreamId(7),
            ssid: None,
            addr: Iova(0xdead_b000),
            size: 4,
            stride: 9,
        };
        assert_eq!(c.encode(), [0x02 | (7 << 32), 0xdead_b000 | (9 << 5) | 4]);
    }

    #[test]
    fn tlbi_layouts() {
        let c = Command::TlbiNhAll { vmid: Vmid(0xbeef) };
        assert_eq!(c.encode(), [0x10 | (0xbeef << 32), 0]);
        let c = Command::TlbiNhAsid { vmid: Vmid(1), asid: Asid(0xface) };
        assert_eq!(c.encode(), [0x11 | (1 << 32) | (0xface << 48), 0]);
        let c = Command::TlbiS12Vmall { vmid: Vmid(3) };
        assert_eq!(c.encode(), [0x28 | (3 << 32), 0]);
        // Non-range VA: TG == 0, address [63:12], Leaf bit 64.
        let c = Command::TlbiNhVa {
            vmid: Vmid(2),
            asid: Asid(5),
            addr: Iova(0xffff_8000_0000_1000),
            opts: TlbiOpts { leaf: true, range: None },
        };
        assert_eq!(c.encode(), [0x12 | (2 << 32) | (5 << 48), 0xffff_8000_0000_1000 | 1]);
        // Range: NUM [16:12], SCALE [24:20], TTL [73:72], TG [75:74].
        let c = Command::TlbiS2Ipa {
            vmid: Vmid(4),
            addr: Ipa(0x8000_0000),
            opts: TlbiOpts {
                leaf: false,
                range: Some(TlbiRange { tg: Granule::K4, ttl: 3, num: 31, scale: 2 }),
            },
        };
        assert_eq!(
            c.encode(),
            [0x2a | (31 << 12) | (2 << 20) | (4 << 32), 0x8000_0000 | (0b01 << 10) | (3 << 8)]
        );
        let c = Command::TlbiNhVaa {
            vmid: Vmid(0),
            addr: Iova(0x1_0000),
            opts: TlbiOpts {
                leaf: true,
                range: Some(TlbiRange { tg: Granule::K64, ttl: 0, num: 1, scale: 0 }),
            },
        };
        assert_eq!(c.encode(), [0x13 | (1 << 12), 0x1_0000 | (0b11 << 10) | 1]);
    }

    #[test]
    fn ipa_address_is_55_12() {
        let c =
            Command::TlbiS2Ipa { vmid: Vmid(0), addr: Ipa(0x00ff_ffff_ffff_f000), opts: TlbiOpts::default() };
        assert_eq!(c.encode()[1], 0x00ff_ffff_ffff_f000);
        // Bits above 55 are not IPA bits: truncated by encode.
        let c = Command::TlbiS2Ipa { vmid: Vmid(0), addr: Ipa(1 << 60), opts: TlbiOpts::default() };
        assert_eq!(c.encode()[1], 0);
    }

    #[test]
    fn atc_pri_resume_stall_layouts() {
        let c = Command::AtcInv {
            sid: StreamId(0x10),
            ssid: Some(ssid(2)),
            global: true,
            addr: Iova(0x4000),
            size: 52,
        };
        assert_eq!(c.encode(), [0x40 | (1 << 9) | (1 << 11) | (2 << 12) | (0x10 << 32), 0x4000 | 52]);
        let c =
            Command::PriResp { sid: StreamId(1), ssid: None, prg_index: 0x1ff, resp: PriResponse::Success };
        assert_eq!(c.encode(), [0x41 | (1 << 32), 0x1ff | (0b10 << 12)]);
        let c = Command::Resume { sid: StreamId(2), stag: 0xabcd, action: ResumeAction::Retry };
        assert_eq!(c.encode(), [0x44 | (1 << 12) | (2 << 32), 0xabcd]);
        let c =
            Command::Resume { sid: StreamId(2), stag: 1, action: ResumeAction::Terminate { abort: true } };
        assert_eq!(c.encode(), [0x44 | (1 << 13) | (2 << 32), 1]);
        assert_eq!(Command::StallTerm { sid: StreamId(8) }.encode(), [0x45 | (8 << 32), 0]);
    }

    #[test]
    fn sync_layout() {
        let c = Command::Sync(Sync {
            cs: SyncSignal::Irq,
            msh: 0b11,
            msi_attr: 0xf,
            msi_data: 0xdead_beef,
            msi_addr: PhysAddr(0x0800_0040),
        });
        // CS [13:12], MSH [23:22], MSIAttr [27:24], MSIData [63:32], MSIAddress [55:2].
        assert_eq!(
            c.encode(),
            [0x46 | (1 << 12) | (3 << 22) | (0xf << 24) | (0xdead_beef << 32), 0x0800_0040]
        );
        let c = Command::Sync(Sync { cs: SyncSignal::Sev, ..Sync::default() });
        assert_eq!(c.encode(), [0x46 | (2 << 12), 0]);
    }

    #[test]
    fn sync_fields_at_spec_bit_positions() {
        // CMD_SYNC (4.7.3), one field at a time so a misplaced field cannot
        // hide behind another: word 0 [7:0] opcode 0x46, [13:12] CS,
        // [23:22] MSH, [27:24] MSIAttr, [63:32] MSIData; word 1 [51:2]
        // MSIAddress[51:2] (bits [1:0] of the address are not encoded).
        let only = |s: Sync| Command::Sync(s).encode();
        assert_eq!(only(Sync { cs: SyncSignal::None, ..Sync::default() }), [0x46, 0]);
        assert_eq!(only(Sync { cs: SyncSignal::Irq, ..Sync::default() }), [0x46 | (0b01 << 12), 0]);
        assert_eq!(only(Sync { cs: SyncSignal::Sev, ..Sync::default() }), [0x46 | (0b10 << 12), 0]);
        assert_eq!(only(Sync { msh: 0b01, ..Sync::default() }), [0x46 | (0b01 << 22), 0]);
        assert_eq!(only(Sync { msh: 0b10, ..Sync::default() }), [0x46 | (0b10 << 22), 0]);
        assert_eq!(only(Sync { msi_attr: 0b0001, ..Sync::default() }), [0x46 | (1 << 24), 0]);
        assert_eq!(only(Sync { msi_attr: 0b1000, ..Sync::default() }), [0x46 | (1 << 27), 0]);
        assert_eq!(only(Sync { msi_data: 1, ..Sync::default() }), [0x46 | (1 << 32), 0]);
        assert_eq!(only(Sync { msi_data: 0x8000_0000, ..Sync::default() }), [0x46 | (1 << 63), 0]);
        // MSIAddress keeps its byte position: address bit n is word 1 bit n.
        assert_eq!(only(Sync { msi_addr: PhysAddr(1 << 2), ..Sync::default() }), [0x46, 1 << 2]);
        assert_eq!(only(Sync { msi_addr: PhysAddr(1 << 51), ..Sync::default() }), [0x46, 1 << 51]);
        let a = 0x000f_ffff_ffff_fffc; // every bit of [51:2]
        assert_eq!(only(Sync { msi_addr: PhysAddr(a), ..Sync::default() }), [0x46, a]);
        // Bits [1:0] are not address bits: dropped by encode, refused by check.
        assert_eq!(only(Sync { msi_addr: PhysAddr(0x1003), ..Sync::default() }), [0x46, 0x1000]);
        let c = Command::Sync(Sync { msi_addr: PhysAddr(0x1002), ..Sync::default() });
        assert_eq!(c.check(), Err(CmdDecodeError::Truncated));
    }

    #[test]
    fn msi_sync_constructor() {
        // SIG_IRQ, Inner Shareable (0b11), Normal Inner/Outer Write-Back (0b1111).
        let c = Command::Sync(Sync::msi(PhysAddr(0x4000_1040), 0x1234_5678));
        assert_eq!(
            c.encode(),
            [0x46 | (0b01 << 12) | (0b11 << 22) | (0b1111 << 24) | (0x1234_5678 << 32), 0x4000_1040]
        );
        assert_eq!(c.check(), Ok(()));
    }

    #[test]
    fn decode_rejects_garbage_without_panicking() {
        assert_eq!(Command::decode([0, 0]), Err(CmdDecodeError::UnknownOpcode(0)));
        assert_eq!(Command::decode([0x07, 0]), Err(CmdDecodeError::UnknownOpcode(7)));
        assert_eq!(Command::decode([0x03 | (1 << 10), 0]), Err(CmdDecodeError::SecureStream));
        assert_eq!(Command::decode([0x46 | (3 << 12), 0]), Err(CmdDecodeError::ReservedEncoding));
        assert_eq!(Command::decode([0x30, 1]), Err(CmdDecodeError::ReservedBits { word: 1, bits: 1 }));
        // TG != 0 with NUM == SCALE == TTL == 0 is Reserved.
        assert_eq!(Command::decode([0x2a, 1 << 10]), Err(CmdDecodeError::ReservedEncoding));
        for w0 in [u64::MAX, 0x8000_0000_0000_00ff, 0x1234_5678_9abc_def0] {
            let _ = Command::decode([w0, u64::MAX]);
        }
    }

    #[test]
    fn check_catches_truncation() {
        assert_eq!(Command::CfgiSte { sid: StreamId(1), leaf: true }.check(), Ok(()));
        let c =
            Command::PrefetchAddr { sid: StreamId(1), ssid: None, addr: Iova(0x1000), size: 32, stride: 0 };
        assert_eq!(c.check(), Err(CmdDecodeError::Truncated));
        let c = Command::TlbiNhVaa { vmid: Vmid(0), addr: Iova(0x1234), opts: TlbiOpts::default() };
        assert_eq!(c.check(), Err(CmdDecodeError::Truncated), "unaligned VA");
        let r = TlbiRange { tg: Granule::K4, ttl: 0, num: 0, scale: 0 };
        let c = Command::TlbiS2Ipa {
            vmid: Vmid(0),
            addr: Ipa(0),
            opts: TlbiOpts { leaf: false, range: Some(r) },
        };
        assert_eq!(c.check(), Err(CmdDecodeError::ReservedEncoding));
        assert_eq!(
            Command::CfgiSteRange { sid: StreamId(0), range: 31 }.check(),
            Err(CmdDecodeError::Truncated)
        );
    }

    #[test]
    fn decode_cfgi_all() {
        assert_eq!(Command::decode([0x04, 31]), Ok(Command::CfgiAll));
        assert_eq!(
            Command::decode([0x04 | (8 << 32), 31]),
            Ok(Command::CfgiSteRange { sid: StreamId(8), range: 31 })
        );
    }

    fn plan(target: TlbiTarget, start: u64, len: u64, ril: bool, max: usize) -> InvalidationPlan {
        plan_invalidation(
            target,
            start,
            len,
            Granule::K4,
            true,
            0,
            InvalidationPolicy { ril, max_commands: max },
        )
    }

    const S2: TlbiTarget = TlbiTarget::Stage2 { vmid: Vmid(1) };

    #[test]
    fn per_granule_fallback_without_ril() {
        let cmds: std::vec::Vec<_> = plan(S2, 0x1800, 0x2000, false, 16).collect();
        // [0x1800, 0x3800) touches pages 0x1000, 0x2000, 0x3000.
        assert_eq!(cmds.len(), 3);
        for (i, c) in cmds.iter().enumerate() {
            assert_eq!(
                *c,
                Command::TlbiS2Ipa {
                    vmid: Vmid(1),
                    addr: Ipa(0x1000 * (i as u64 + 1)),
                    opts: TlbiOpts { leaf: true, range: None },
                }
            );
        }
    }

    #[test]
    fn threshold_switches_to_whole_vmid() {
        let mut p = plan(S2, 0, 0x1000 * 17, false, 16);
        assert_eq!(p, InvalidationPlan::Whole(Command::TlbiS12Vmall { vmid: Vmid(1) }));
        assert_eq!(p.next(), Some(Command::TlbiS12Vmall { vmid: Vmid(1) }));
        assert_eq!(p.next(), None);
        let s1 = TlbiTarget::Stage1 { vmid: Vmid(1), asid: Asid(2) };
        assert_eq!(
            plan(s1, u64::MAX - 0xfff, 0x2000, true, 16),
            InvalidationPlan::Whole(Command::TlbiNhAsid { vmid: Vmid(1), asid: Asid(2) })
        );
    }

    #[test]
    fn ril_splits_by_5_bit_windows() {
        // 0b11_0000_0001 pages = 769: windows at bit 0 (1 page, widened to 2
        // because NUM=SCALE=TTL=0 is reserved) and bit 8 (3 pages << 8).
        let cmds: std::vec::Vec<_> = plan(S2, 0x10_0000, 769 * 0x1000, true, 16).collect();
        assert_eq!(cmds.len(), 2);
        let range = |c: &Command| match c {
            Command::TlbiS2Ipa { addr, opts, .. } => (addr.0, opts.range.unwrap()),
            _ => unreachable!(),
        };
        let (a0, r0) = range(&cmds[0]);
        assert_eq!((a0, r0.num, r0.scale), (0x10_0000, 1, 0));
        let (a1, r1) = range(&cmds[1]);
        assert_eq!((a1, r1.num, r1.scale), (0x10_1000, 2, 8));
        // 64 pages: one command, (NUM + 1) * 2^SCALE = 1 * 2^6.
        let cmds: std::vec::Vec<_> = plan(S2, 0, 64 * 0x1000, true, 16).collect();
        assert_eq!(cmds.len(), 1);
        assert_eq!(range(&cmds[0]).1, TlbiRange { tg: Granule::K4, ttl: 0, num: 0, scale: 6 });
    }

    #[test]
    fn ril_with_ttl_keeps_single_page() {
        let p = plan_invalidation(
            S2,
            0x5000,
            0x1000,
            Granule::K4,
            true,
            3,
            InvalidationPolicy { ril: true, max_commands: 4 },
        );
        let cmds: std::vec::Vec<_> = p.collect();
        assert_eq!(
            cmds,
            [Command::TlbiS2Ipa {
                vmid: Vmid(1),
                addr: Ipa(0x5000),
                opts: TlbiOpts {
                    leaf: true,
                    range: Some(TlbiRange { tg: Granule::K4, ttl: 3, num: 0, scale: 0 }),
                },
            }]
        );
    }

    #[test]
    fn empty_range_plans_nothing() {
        assert_eq!(plan(S2, 0x1000, 0, true, 4).count(), 0);
    }

    /// The fewest commands of the form m * 2^s (1 <= m <= 32) summing to n.
    fn min_terms(n: usize) -> std::vec::Vec<u32> {
        let mut best = std::vec![u32::MAX; n + 1];
        best[0] = 0;
        for i in 1..=n {
            for s in 0..12 {
                for m in 1..=32usize {
                    let t = m << s;
                    if t <= i && best[i - t] != u32::MAX {
                        best[i] = best[i].min(best[i - t] + 1);
                    }
                }
            }
        }
        best
    }

    #[test]
    #[cfg_attr(miri, ignore = "slow under Miri; no unsafe code involved")]
    fn ril_plan_is_minimal_for_small_ranges() {
        let best = min_terms(1200);
        for (n, &min) in best.iter().enumerate().skip(2) {
            let count = plan(S2, 0, n as u64 * 0x1000, true, 1000).count() as u32;
            assert_eq!(count, min, "{n} pages");
        }
    }

    fn any_sid() -> impl Strategy<Value = StreamId> {
        any::<u32>().prop_map(StreamId)
    }
    fn any_ssid() -> impl Strategy<Value = SubstreamId> {
        (0..=SubstreamId::MAX).prop_map(|v| SubstreamId::new(v).unwrap())
    }
    fn any_opts() -> impl Strategy<Value = TlbiOpts> {
        let range = (0..3u8, 0..4u8, 0..32u8, 0..32u8).prop_filter_map("reserved", |(g, ttl, num, scale)| {
            let tg = [Granule::K4, Granule::K16, Granule::K64][g as usize];
            (num | scale | ttl != 0).then_some(TlbiRange { tg, ttl, num, scale })
        });
        (any::<bool>(), proptest::option::of(range)).prop_map(|(leaf, range)| TlbiOpts { leaf, range })
    }
    fn any_command() -> impl Strategy<Value = Command> {
        let va = any::<u64>().prop_map(|a| Iova(a & !0xfff));
        let ipa = (0u64..1 << 56).prop_map(|a| Ipa(a & !0xfff));
        prop_oneof![
            (any_sid(), proptest::option::of(any_ssid()))
                .prop_map(|(sid, ssid)| Command::PrefetchConfig { sid, ssid }),
            (any_sid(), proptest::option::of(any_ssid()), va.clone(), 0..32u8, 0..32u8).prop_map(
                |(sid, ssid, addr, size, stride)| Command::PrefetchAddr { sid, ssid, addr, size, stride }
            ),
            (any_sid(), any::<bool>()).prop_map(|(sid, leaf)| Command::CfgiSte { sid, leaf }),
            (any_sid(), 0..31u8).prop_map(|(sid, range)| Command::CfgiSteRange { sid, range }),
            (any_sid(), any_ssid(), any::<bool>()).prop_map(|(sid, ssid, leaf)| Command::CfgiCd {
                sid,
                ssid,
                leaf
            }),
            any_sid().prop_map(|sid| Command::CfgiCdAll { sid }),
            Just(Command::CfgiAll),
            any::<u16>().prop_map(|v| Command::TlbiNhAll { vmid: Vmid(v) }),
            (any::<u16>(), any::<u16>())
                .prop_map(|(v, a)| Command::TlbiNhAsid { vmid: Vmid(v), asid: Asid(a) }),
            (any::<u16>(), any::<u16>(), va.clone(), any_opts()).prop_map(|(v, a, addr, opts)| {
                Command::TlbiNhVa { vmid: Vmid(v), asid: Asid(a), addr, opts }
            }),
            (any::<u16>(), va.clone(), any_opts()).prop_map(|(v, addr, opts)| Command::TlbiNhVaa {
                vmid: Vmid(v),
                addr,
                opts
            }),
            Just(Command::TlbiEl2All),
            any::<u16>().prop_map(|v| Command::TlbiS12Vmall { vmid: Vmid(v) }),
            (any::<u16>(), ipa, any_opts()).prop_map(|(v, addr, opts)| Command::TlbiS2Ipa {
                vmid: Vmid(v),
                addr,
                opts
            }),
            Just(Command::TlbiNsnhAll),
            (any_sid(), proptest::option::of(any_ssid()), any::<bool>(), va, 0..64u8).prop_map(
                |(sid, ssid, global, addr, size)| Command::AtcInv { sid, ssid, global, addr, size }
            ),
            (any_sid(), proptest::option::of(any_ssid()), 0..512u16, 0..3u8).prop_map(
                |(sid, ssid, prg_index, r)| Command::PriResp {
                    sid,
                    ssid,
                    prg_index,
                    resp: [PriResponse::Failure, PriResponse::InvalidRequest, PriResponse::Success]
                        [r as usize],
                }
            ),
            (any_sid(), any::<u16>(), 0..3u8).prop_map(|(sid, stag, a)| Command::Resume {
                sid,
                stag,
                action: match a {
                    0 => ResumeAction::Retry,
                    1 => ResumeAction::Terminate { abort: false },
                    _ => ResumeAction::Terminate { abort: true },
                },
            }),
            any_sid().prop_map(|sid| Command::StallTerm { sid }),
            (0..3u8, 0..4u8, 0..16u8, any::<u32>(), 0u64..1 << 54).prop_map(
                |(cs, msh, msi_attr, msi_data, a)| Command::Sync(Sync {
                    cs: [SyncSignal::None, SyncSignal::Irq, SyncSignal::Sev][cs as usize],
                    msh,
                    msi_attr,
                    msi_data,
                    msi_addr: PhysAddr(a << 2),
                })
            ),
        ]
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(512))]

        #[test]
        fn encode_decode_round_trip(cmd in any_command()) {
            prop_assert_eq!(Command::decode(cmd.encode()), Ok(cmd));
        }

        #[test]
        fn decode_never_panics(w0 in any::<u64>(), w1 in any::<u64>()) {
            if let Ok(c) = Command::decode([w0, w1]) {
                // Strict decode: what decodes re-encodes to the same words
                // (except the IGNORED Ab of CMD_RESUME(Retry)).
                let enc = c.encode();
                prop_assert_eq!(enc[1], w1);
            }
        }

        #[test]
        fn ril_plan_covers_the_range(start in 0u64..1 << 40, pages in 1u64..5000) {
            let start = start & !0xfff;
            let end = start + pages * 0x1000;
            let mut covered_to = start;
            let mut total = 0u64;
            for c in plan(S2, start, pages * 0x1000, true, usize::MAX) {
                let Command::TlbiS2Ipa { addr, opts, .. } = c else { panic!() };
                let r = opts.range.unwrap();
                prop_assert!(r.num <= 31 && r.scale <= 31);
                prop_assert!(r.num != 0 || r.scale != 0 || r.ttl != 0);
                // No gap, never below the range.
                prop_assert!(addr.0 >= start && addr.0 <= covered_to);
                covered_to = covered_to.max(addr.0 + r.pages() * 0x1000);
                total += r.pages();
            }
            // Covers the range, overshooting by at most the one widened page.
            prop_assert!(covered_to >= end && covered_to <= end + 0x1000);
            prop_assert!(total <= pages + 1);
        }
    }
}
