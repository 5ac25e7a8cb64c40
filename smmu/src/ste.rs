//! Stream Table Entry (IHI 0070 5.2): 64 bytes, eight 64-bit words.
//!
//! [`Ste`] is a typed value: build it with [`Ste::abort`], [`Ste::bypass`],
//! [`Ste::stage2`], [`Ste::stage1`] or [`Ste::nested`], check it against the
//! SMMU with [`Ste::check`], then [`Ste::encode`] it. [`Ste::decode`] parses
//! words back and rejects reserved encodings and bits outside the modelled
//! fields. Writing an STE into a live table goes through
//! [`crate::update`], never a plain store.

use core::fmt;

use iommu_common::addr::{Ipa, PhysAddr};
use tock_registers::LocalRegisterCopy;

use crate::caps::{AddrSize, Capabilities, Granule, Httu, StallModel, TtEndian};
use crate::fields::bits;
use crate::ids::Vmid;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// STE word 0, bits `[63:0]`.
        pub STE_0 [
            /// Valid.
            V OFFSET(0) NUMBITS(1) [],
            /// Stream configuration.
            CONFIG OFFSET(1) NUMBITS(3) [Abort = 0b000, Bypass = 0b100, S1Trans = 0b101, S2Trans = 0b110, Nested = 0b111],
            /// Stage 1 CD table format.
            S1FMT OFFSET(4) NUMBITS(2) [],
            /// Stage 1 context pointer, bits `[55:6]`.
            S1CONTEXTPTR OFFSET(6) NUMBITS(50) [],
            /// log2 of the number of CDs.
            S1CDMAX OFFSET(59) NUMBITS(5) []
        ],
        /// STE word 1, bits `[127:64]`.
        pub STE_1 [
            /// Default substream.
            S1DSS OFFSET(0) NUMBITS(2) [],
            /// CD fetch inner cacheability.
            S1CIR OFFSET(2) NUMBITS(2) [],
            /// CD fetch outer cacheability.
            S1COR OFFSET(4) NUMBITS(2) [],
            /// CD fetch shareability.
            S1CSH OFFSET(6) NUMBITS(2) [],
            /// Merge events.
            MEV OFFSET(19) NUMBITS(1) [],
            /// Stage 1 stall disable.
            S1STALLD OFFSET(27) NUMBITS(1) [],
            /// Enable ATS.
            EATS OFFSET(28) NUMBITS(2) [],
            /// StreamWorld.
            STRW OFFSET(30) NUMBITS(2) [],
            /// Shareability override.
            SHCFG OFFSET(44) NUMBITS(2) []
        ],
        /// STE word 2, bits `[191:128]`.
        pub STE_2 [
            /// Stage 2 VMID.
            S2VMID OFFSET(0) NUMBITS(16) [],
            /// Stage 2 input size: 64 - IPA bits.
            S2T0SZ OFFSET(32) NUMBITS(6) [],
            /// Stage 2 starting level (VTCR_EL2.SL0 encoding).
            S2SL0 OFFSET(38) NUMBITS(2) [],
            /// Stage 2 walk inner cacheability.
            S2IR0 OFFSET(40) NUMBITS(2) [],
            /// Stage 2 walk outer cacheability.
            S2OR0 OFFSET(42) NUMBITS(2) [],
            /// Stage 2 walk shareability.
            S2SH0 OFFSET(44) NUMBITS(2) [],
            /// Stage 2 granule (0 4K, 1 64K, 2 16K).
            S2TG OFFSET(46) NUMBITS(2) [],
            /// Stage 2 output size.
            S2PS OFFSET(48) NUMBITS(3) [],
            /// VMSAv8-64 stage 2 tables.
            S2AA64 OFFSET(51) NUMBITS(1) [],
            /// Big-endian stage 2 tables.
            S2ENDI OFFSET(52) NUMBITS(1) [],
            /// Stage 2 Access flag fault disable.
            S2AFFD OFFSET(53) NUMBITS(1) [],
            /// Protected table walk.
            S2PTW OFFSET(54) NUMBITS(1) [],
            /// Stage 2 hardware dirty update.
            S2HD OFFSET(55) NUMBITS(1) [],
            /// Stage 2 hardware Access flag update.
            S2HA OFFSET(56) NUMBITS(1) [],
            /// Stage 2 faults stall.
            S2S OFFSET(57) NUMBITS(1) [],
            /// Stage 2 faults are recorded.
            S2R OFFSET(58) NUMBITS(1) []
        ],
        /// STE word 3, bits `[255:192]`.
        pub STE_3 [
            /// Stage 2 translation table base, bits `[55:4]`.
            S2TTB OFFSET(4) NUMBITS(52) []
        ]
    ];
}
pub use layout::*;

/// STE.Config: which stages translate (5.2, Config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Config {
    /// 0b000: transactions are aborted, no event is recorded.
    #[default]
    Abort,
    /// 0b100: both stages bypass.
    Bypass,
    /// 0b101: stage 1 translates, stage 2 bypasses.
    S1Translate,
    /// 0b110: stage 1 bypasses, stage 2 translates.
    S2Translate,
    /// 0b111: both stages translate.
    Nested,
}

impl Config {
    const fn field(self) -> u64 {
        match self {
            Self::Abort => 0b000,
            Self::Bypass => 0b100,
            Self::S1Translate => 0b101,
            Self::S2Translate => 0b110,
            Self::Nested => 0b111,
        }
    }

    /// Stage 1 translates (Config == 0b1x1).
    pub const fn stage1(self) -> bool {
        matches!(self, Self::S1Translate | Self::Nested)
    }

    /// Stage 2 translates (Config == 0b11x).
    pub const fn stage2(self) -> bool {
        matches!(self, Self::S2Translate | Self::Nested)
    }
}

/// STE.S1Fmt: layout of the CD table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum S1Fmt {
    /// Linear table of 2^S1CDMax CDs.
    #[default]
    Linear,
    /// 2-level table, 4 KiB leaf tables of 64 CDs.
    TwoLevel4K,
    /// 2-level table, 64 KiB leaf tables of 1024 CDs.
    TwoLevel64K,
}

/// STE.S1DSS: transactions without a SubstreamID when S1CDMax != 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum S1Dss {
    /// Terminate, recording F_STREAM_DISABLED.
    #[default]
    Terminate,
    /// Bypass stage 1.
    Bypass,
    /// Use the CD of substream 0.
    Substream0,
}

/// Cacheability of a structure or table walk access (S1CIR, S2IR0, CD.IR0 ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Cacheability {
    /// 0b00 Normal Non-cacheable.
    #[default]
    NonCacheable,
    /// 0b01 Write-Back, Read-Allocate (and Write-Allocate for table walks).
    WriteBack,
    /// 0b10 Write-Through, Read-Allocate.
    WriteThrough,
    /// 0b11 Write-Back, no (Write-)Allocate.
    WriteBackNoAllocate,
}

impl Cacheability {
    pub(crate) const fn field(self) -> u64 {
        self as u64
    }
    pub(crate) const fn from_field(v: u64) -> Self {
        match v & 3 {
            0 => Self::NonCacheable,
            1 => Self::WriteBack,
            2 => Self::WriteThrough,
            _ => Self::WriteBackNoAllocate,
        }
    }
}

/// Shareability of a structure or table walk access (S1CSH, S2SH0, CD.SH0 ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Shareability {
    /// 0b00.
    #[default]
    NonShareable,
    /// 0b10.
    OuterShareable,
    /// 0b11.
    InnerShareable,
}

impl Shareability {
    pub(crate) const fn field(self) -> u64 {
        match self {
            Self::NonShareable => 0,
            Self::OuterShareable => 2,
            Self::InnerShareable => 3,
        }
    }
    pub(crate) fn from_field(field: &'static str, v: u64) -> Result<Self, SteError> {
        match v {
            0 => Ok(Self::NonShareable),
            2 => Ok(Self::OuterShareable),
            3 => Ok(Self::InnerShareable),
            _ => Err(SteError::Reserved { field, value: v }),
        }
    }
}

/// STE.SHCFG: shareability override for incoming transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ShCfg {
    /// Non-shareable.
    #[default]
    NonShareable,
    /// Use the incoming attribute.
    Incoming,
    /// Outer shareable.
    OuterShareable,
    /// Inner shareable.
    InnerShareable,
}

/// STE.EATS: PCIe ATS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Eats {
    /// ATS Translation Requests are refused.
    #[default]
    Abort,
    /// Full ATS.
    Full,
    /// Split-stage ATS.
    Split,
    /// Full ATS with DPT checks.
    FullDpt,
}

/// STE.STRW: StreamWorld for stage 1 only streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strw {
    /// 0b00 NS-EL1.
    #[default]
    NsEl1,
    /// 0b10 EL2 (or EL2-E2H with SMMU_CR2.E2H).
    El2,
}

/// Where STE.S1ContextPtr points: a PA, or an IPA when stage 2 translates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CdTablePtr {
    /// A physical address (stage 2 bypassed).
    Pa(PhysAddr),
    /// An intermediate physical address, translated by stage 2 (nested).
    Ipa(Ipa),
}

impl Default for CdTablePtr {
    fn default() -> Self {
        Self::Pa(PhysAddr(0))
    }
}

impl CdTablePtr {
    /// The raw address.
    pub const fn raw(self) -> u64 {
        match self {
            Self::Pa(a) => a.0,
            Self::Ipa(a) => a.0,
        }
    }
}

/// The stage 1 fields of an STE (IGNORED unless Config == 0b1x1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Stage1Cfg {
    /// S1Fmt.
    pub fmt: S1Fmt,
    /// S1ContextPtr (64-byte aligned).
    pub context_ptr: CdTablePtr,
    /// S1CDMax: log2 of the number of CDs (0: one CD, no substreams).
    pub cdmax: u8,
    /// S1DSS.
    pub dss: S1Dss,
    /// S1CIR.
    pub cir: Cacheability,
    /// S1COR.
    pub cor: Cacheability,
    /// S1CSH.
    pub csh: Shareability,
    /// S1STALLD: disallow stage 1 stalls. ILLEGAL unless the stall model is
    /// configurable (SMMU_IDR0.STALL_MODEL == 0b00).
    pub stalld: bool,
}

/// The stage 2 fields of an STE (IGNORED unless Config == 0b11x, except S2VMID).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage2Cfg {
    /// S2VMID.
    pub vmid: Vmid,
    /// S2T0SZ: the IPA space is 2^(64 - t0sz) bytes.
    pub t0sz: u8,
    /// S2SL0, VTCR_EL2.SL0 encoding (see [`Stage2Cfg::sl0_for`]).
    pub sl0: u8,
    /// S2IR0.
    pub ir0: Cacheability,
    /// S2OR0.
    pub or0: Cacheability,
    /// S2SH0.
    pub sh0: Shareability,
    /// S2TG.
    pub tg: Granule,
    /// S2PS.
    pub ps: AddrSize,
    /// S2AA64: VMSAv8-64 tables.
    pub aa64: bool,
    /// S2ENDI: big-endian tables.
    pub endi: bool,
    /// S2AFFD.
    pub affd: bool,
    /// S2PTW.
    pub ptw: bool,
    /// S2HD.
    pub hd: bool,
    /// S2HA.
    pub ha: bool,
    /// S2S: stall on stage 2 faults.
    pub s: bool,
    /// S2R: record stage 2 faults.
    pub r: bool,
    /// S2TTB: stage 2 table base (aligned to the start-level table size).
    pub ttb: PhysAddr,
}

impl Default for Stage2Cfg {
    /// All fields zero, as in an STE that does not use stage 2.
    fn default() -> Self {
        Self {
            vmid: Vmid(0),
            t0sz: 0,
            sl0: 0,
            ir0: Cacheability::NonCacheable,
            or0: Cacheability::NonCacheable,
            sh0: Shareability::NonShareable,
            tg: Granule::K4,
            ps: AddrSize::Bits32,
            aa64: false,
            endi: false,
            affd: false,
            ptw: false,
            hd: false,
            ha: false,
            s: false,
            r: false,
            ttb: PhysAddr(0),
        }
    }
}

impl Stage2Cfg {
    /// A VMSAv8-64 little-endian stage 2 configuration for an IPA space of
    /// `ipa_bits` walked from `start_level` with `granule` tables at `ttb`,
    /// output size `ps`. Table walks are Inner Shareable Write-Back (what a
    /// coherent SMMU needs for tables in normal cached RAM); faults are
    /// recorded (S2R) and never stall. Checks the start level against the
    /// IPA size (at most 16 concatenated start-level tables) and the TTB
    /// alignment.
    ///
    /// QEMU 10 checks S2T0SZ against the effective S2PS (min(S2PS, OAS))
    /// instead of the IAS: give a `ps` that covers `ipa_bits` (the SMMU's
    /// OAS does), or QEMU raises C_BAD_STE for an otherwise legal entry.
    pub fn new(
        vmid: Vmid,
        ttb: PhysAddr,
        ipa_bits: u8,
        granule: Granule,
        start_level: u8,
        ps: AddrSize,
    ) -> Result<Self, SteError> {
        let sl0 = Self::sl0_for(granule, start_level).ok_or(SteError::Illegal {
            field: "STE.S2SL0",
            reason: "start level not encodable for this granule",
        })?;
        if !(25..=48).contains(&ipa_bits) {
            return Err(SteError::Illegal { field: "STE.S2T0SZ", reason: "IPA size out of range" });
        }
        let cfg = Self {
            vmid,
            t0sz: 64 - ipa_bits,
            sl0,
            ir0: Cacheability::WriteBack,
            or0: Cacheability::WriteBack,
            sh0: Shareability::InnerShareable,
            tg: granule,
            ps,
            aa64: true,
            endi: false,
            affd: false,
            ptw: false,
            hd: false,
            ha: false,
            s: false,
            r: true,
            ttb,
        };
        cfg.check_walk()?;
        Ok(cfg)
    }

    /// The S2SL0 encoding of `level` for `granule` (VTCR_EL2.SL0):
    /// 4 KiB: 0 -> level 2, 1 -> level 1, 2 -> level 0;
    /// 16/64 KiB: 0 -> level 3, 1 -> level 2, 2 -> level 1.
    pub const fn sl0_for(granule: Granule, level: u8) -> Option<u8> {
        match (granule, level) {
            (Granule::K4, 0..=2) => Some(2 - level),
            (Granule::K16 | Granule::K64, 1..=3) => Some(3 - level),
            _ => None,
        }
    }

    /// The start level S2SL0 selects, if it is defined.
    pub const fn start_level(&self) -> Option<u8> {
        match (self.tg, self.sl0) {
            (Granule::K4, 0..=2) => Some(2 - self.sl0),
            (Granule::K16 | Granule::K64, 0..=2) => Some(3 - self.sl0),
            _ => None,
        }
    }

    /// Input address bits (64 - S2T0SZ).
    pub const fn ipa_bits(&self) -> u32 {
        64u32.saturating_sub(self.t0sz as u32)
    }

    /// Bits translated by the start-level table (including concatenation),
    /// if S2T0SZ, S2SL0 and S2TG are consistent: the start level must
    /// translate at least one bit and at most stride + 4 (16 tables).
    pub fn start_level_bits(&self) -> Option<u32> {
        let level = u32::from(self.start_level()?);
        let g = self.tg.shift();
        let stride = g - 3;
        let below = g + stride * (3 - level);
        let at = self.ipa_bits().checked_sub(below)?;
        (1..=stride + 4).contains(&at).then_some(at)
    }

    /// Checks S2T0SZ/S2SL0/S2TG consistency and the S2TTB alignment.
    pub fn check_walk(&self) -> Result<(), SteError> {
        let at = self
            .start_level_bits()
            .ok_or(SteError::Illegal { field: "STE.S2SL0", reason: "inconsistent with S2T0SZ and S2TG" })?;
        // The start-level table (or concatenated tables) holds 2^at 8-byte
        // descriptors and must be aligned to its size, at least 64 bytes.
        let align = (8u64 << at).max(64);
        if !self.ttb.is_aligned(align) {
            return Err(SteError::Illegal {
                field: "STE.S2TTB",
                reason: "not aligned to the start-level table size",
            });
        }
        Ok(())
    }
}

/// A Stream Table Entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ste {
    /// V.
    pub valid: bool,
    /// Config.
    pub config: Config,
    /// Stage 1 fields.
    pub s1: Stage1Cfg,
    /// Stage 2 fields.
    pub s2: Stage2Cfg,
    /// EATS.
    pub eats: Eats,
    /// STRW.
    pub strw: Strw,
    /// MEV: permit event merging.
    pub mev: bool,
    /// SHCFG.
    pub shcfg: ShCfg,
}

/// An STE that cannot be decoded or is not valid for this SMMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SteError {
    /// Bits outside the modelled fields are set.
    UnmodelledBits {
        /// Word index (0..8).
        word: u8,
        /// The bits.
        bits: u64,
    },
    /// A field holds a reserved encoding.
    Reserved {
        /// Spec name of the field.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// The configuration is ILLEGAL for this SMMU (5.2.2) and would raise
    /// C_BAD_STE.
    Illegal {
        /// Spec name of the field.
        field: &'static str,
        /// Why.
        reason: &'static str,
    },
}

impl fmt::Display for SteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnmodelledBits { word, bits } => {
                write!(f, "STE word {word}: unsupported bits {bits:#x} set")
            }
            Self::Reserved { field, value } => write!(f, "{field}: reserved value {value:#x}"),
            Self::Illegal { field, reason } => write!(f, "{field}: {reason}"),
        }
    }
}

type W0 = LocalRegisterCopy<u64, STE_0::Register>;
type W1 = LocalRegisterCopy<u64, STE_1::Register>;
type W2 = LocalRegisterCopy<u64, STE_2::Register>;
type W3 = LocalRegisterCopy<u64, STE_3::Register>;

/// Word 0 of the STE that aborts everything: V = 1, Config = 0b000.
pub const ABORT_WORD0: u64 = 1;

/// Whether an STE whose word 0 is `w0` lets the SMMU use the other words:
/// V == 1 and a Config that is not abort (5.2.1: with Config == 0b000 the
/// remaining fields are IGNORED).
pub fn word0_is_live(w0: u64) -> bool {
    let w = W0::new(w0);
    w.is_set(STE_0::V) && w.read(STE_0::CONFIG) & 0b100 != 0
}

impl Ste {
    /// V = 0: transactions abort and record C_BAD_STE.
    pub fn invalid() -> Self {
        Self::default()
    }

    /// V = 1, Config = abort: transactions abort silently. The default for
    /// every StreamID (secure by default).
    pub fn abort() -> Self {
        Self { valid: true, ..Self::default() }
    }

    /// V = 1, Config = bypass, incoming shareability. Bypass is an explicit
    /// choice of the caller, never a default.
    pub fn bypass() -> Self {
        Self { valid: true, config: Config::Bypass, shcfg: ShCfg::Incoming, ..Self::default() }
    }

    /// Stage 2 translation only.
    pub fn stage2(s2: Stage2Cfg) -> Self {
        Self { valid: true, config: Config::S2Translate, s2, shcfg: ShCfg::Incoming, ..Self::default() }
    }

    /// Stage 1 translation only.
    pub fn stage1(s1: Stage1Cfg) -> Self {
        Self { valid: true, config: Config::S1Translate, s1, shcfg: ShCfg::Incoming, ..Self::default() }
    }

    /// Both stages (S1ContextPtr must then be an IPA).
    pub fn nested(s1: Stage1Cfg, s2: Stage2Cfg) -> Self {
        Self { valid: true, config: Config::Nested, s1, s2, shcfg: ShCfg::Incoming, ..Self::default() }
    }

    /// Sets MEV.
    pub fn with_mev(mut self, mev: bool) -> Self {
        self.mev = mev;
        self
    }

    /// Sets SHCFG.
    pub fn with_shcfg(mut self, shcfg: ShCfg) -> Self {
        self.shcfg = shcfg;
        self
    }

    /// Sets EATS.
    pub fn with_eats(mut self, eats: Eats) -> Self {
        self.eats = eats;
        self
    }

    /// Sets STRW.
    pub fn with_strw(mut self, strw: Strw) -> Self {
        self.strw = strw;
        self
    }

    /// Encodes the entry. Numeric fields are truncated to their width;
    /// [`Ste::check`] rejects out-of-range values first.
    pub fn encode(&self) -> [u64; 8] {
        let s1 = &self.s1;
        let s2 = &self.s2;
        let mut w0 = W0::new(0);
        w0.write(
            STE_0::V.val(u64::from(self.valid))
                + STE_0::CONFIG.val(self.config.field())
                + STE_0::S1FMT.val(match s1.fmt {
                    S1Fmt::Linear => 0,
                    S1Fmt::TwoLevel4K => 1,
                    S1Fmt::TwoLevel64K => 2,
                })
                + STE_0::S1CONTEXTPTR.val(s1.context_ptr.raw() >> 6)
                + STE_0::S1CDMAX.val(u64::from(s1.cdmax)),
        );
        let mut w1 = W1::new(0);
        w1.write(
            STE_1::S1DSS.val(match s1.dss {
                S1Dss::Terminate => 0,
                S1Dss::Bypass => 1,
                S1Dss::Substream0 => 2,
            }) + STE_1::S1CIR.val(s1.cir.field())
                + STE_1::S1COR.val(s1.cor.field())
                + STE_1::S1CSH.val(s1.csh.field())
                + STE_1::MEV.val(u64::from(self.mev))
                + STE_1::S1STALLD.val(u64::from(s1.stalld))
                + STE_1::EATS.val(self.eats as u64)
                + STE_1::STRW.val(match self.strw {
                    Strw::NsEl1 => 0,
                    Strw::El2 => 2,
                })
                + STE_1::SHCFG.val(self.shcfg as u64),
        );
        let mut w2 = W2::new(0);
        w2.write(
            STE_2::S2VMID.val(u64::from(s2.vmid.0))
                + STE_2::S2T0SZ.val(u64::from(s2.t0sz))
                + STE_2::S2SL0.val(u64::from(s2.sl0))
                + STE_2::S2IR0.val(s2.ir0.field())
                + STE_2::S2OR0.val(s2.or0.field())
                + STE_2::S2SH0.val(s2.sh0.field())
                + STE_2::S2TG.val(match s2.tg {
                    Granule::K4 => 0,
                    Granule::K64 => 1,
                    Granule::K16 => 2,
                })
                + STE_2::S2PS.val(s2.ps.field())
                + STE_2::S2AA64.val(u64::from(s2.aa64))
                + STE_2::S2ENDI.val(u64::from(s2.endi))
                + STE_2::S2AFFD.val(u64::from(s2.affd))
                + STE_2::S2PTW.val(u64::from(s2.ptw))
                + STE_2::S2HD.val(u64::from(s2.hd))
                + STE_2::S2HA.val(u64::from(s2.ha))
                + STE_2::S2S.val(u64::from(s2.s))
                + STE_2::S2R.val(u64::from(s2.r)),
        );
        let mut w3 = W3::new(0);
        w3.write(STE_3::S2TTB.val(s2.ttb.0 >> 4));
        [w0.get(), w1.get(), w2.get(), w3.get(), 0, 0, 0, 0]
    }

    /// Decodes an entry. Total over all inputs: reserved encodings and set
    /// bits outside the modelled fields are errors, never panics.
    pub fn decode(words: [u64; 8]) -> Result<Self, SteError> {
        const MASKS: [fn() -> u64; 4] = [mask0, mask1, mask2, mask3];
        for (i, w) in words.iter().enumerate() {
            let allowed = MASKS.get(i).map_or(0, |m| m());
            if w & !allowed != 0 {
                return Err(SteError::UnmodelledBits { word: i as u8, bits: w & !allowed });
            }
        }
        let w0 = W0::new(words[0]);
        let w1 = W1::new(words[1]);
        let w2 = W2::new(words[2]);
        let w3 = W3::new(words[3]);
        let reserved = |field, value| SteError::Reserved { field, value };
        let config = match w0.read(STE_0::CONFIG) {
            0b000 => Config::Abort,
            0b100 => Config::Bypass,
            0b101 => Config::S1Translate,
            0b110 => Config::S2Translate,
            0b111 => Config::Nested,
            v => return Err(reserved("STE.Config", v)),
        };
        let ptr = w0.read(STE_0::S1CONTEXTPTR) << 6;
        let s1 = Stage1Cfg {
            fmt: match w0.read(STE_0::S1FMT) {
                0 => S1Fmt::Linear,
                1 => S1Fmt::TwoLevel4K,
                2 => S1Fmt::TwoLevel64K,
                v => return Err(reserved("STE.S1Fmt", v)),
            },
            // An IPA when both stages translate; IGNORED without stage 1.
            context_ptr: if config == Config::Nested {
                CdTablePtr::Ipa(Ipa(ptr))
            } else {
                CdTablePtr::Pa(PhysAddr(ptr))
            },
            // 5-bit field.
            cdmax: w0.read(STE_0::S1CDMAX) as u8,
            dss: match w1.read(STE_1::S1DSS) {
                0 => S1Dss::Terminate,
                1 => S1Dss::Bypass,
                2 => S1Dss::Substream0,
                v => return Err(reserved("STE.S1DSS", v)),
            },
            cir: Cacheability::from_field(w1.read(STE_1::S1CIR)),
            cor: Cacheability::from_field(w1.read(STE_1::S1COR)),
            csh: Shareability::from_field("STE.S1CSH", w1.read(STE_1::S1CSH))?,
            stalld: w1.is_set(STE_1::S1STALLD),
        };
        let s2 = Stage2Cfg {
            vmid: Vmid(w2.read(STE_2::S2VMID) as u16),
            t0sz: w2.read(STE_2::S2T0SZ) as u8,
            sl0: w2.read(STE_2::S2SL0) as u8,
            ir0: Cacheability::from_field(w2.read(STE_2::S2IR0)),
            or0: Cacheability::from_field(w2.read(STE_2::S2OR0)),
            sh0: Shareability::from_field("STE.S2SH0", w2.read(STE_2::S2SH0))?,
            tg: match w2.read(STE_2::S2TG) {
                0 => Granule::K4,
                1 => Granule::K64,
                2 => Granule::K16,
                v => return Err(reserved("STE.S2TG", v)),
            },
            ps: AddrSize::from_field(w2.read(STE_2::S2PS)),
            aa64: w2.is_set(STE_2::S2AA64),
            endi: w2.is_set(STE_2::S2ENDI),
            affd: w2.is_set(STE_2::S2AFFD),
            ptw: w2.is_set(STE_2::S2PTW),
            hd: w2.is_set(STE_2::S2HD),
            ha: w2.is_set(STE_2::S2HA),
            s: w2.is_set(STE_2::S2S),
            r: w2.is_set(STE_2::S2R),
            ttb: PhysAddr(w3.read(STE_3::S2TTB) << 4),
        };
        if s2.hd && !s2.ha {
            return Err(reserved("STE.{S2HA,S2HD}", 0b01));
        }
        Ok(Self {
            valid: w0.is_set(STE_0::V),
            config,
            s1,
            s2,
            eats: match w1.read(STE_1::EATS) {
                0 => Eats::Abort,
                1 => Eats::Full,
                2 => Eats::Split,
                _ => Eats::FullDpt,
            },
            strw: match w1.read(STE_1::STRW) {
                0 => Strw::NsEl1,
                2 => Strw::El2,
                v => return Err(reserved("STE.STRW", v)),
            },
            mev: w1.is_set(STE_1::MEV),
            shcfg: match w1.read(STE_1::SHCFG) {
                0 => ShCfg::NonShareable,
                1 => ShCfg::Incoming,
                2 => ShCfg::OuterShareable,
                _ => ShCfg::InnerShareable,
            },
        })
    }

    /// Checks the entry against the SMMU's capabilities, following the
    /// validity rules of 5.2.2 for the fields this crate models. An entry
    /// that passes does not raise C_BAD_STE on a conforming SMMU.
    pub fn check(&self, caps: &Capabilities) -> Result<(), SteError> {
        let illegal = |field, reason| Err(SteError::Illegal { field, reason });
        if !self.valid || self.config == Config::Abort {
            return Ok(());
        }
        if self.config.stage1() && !caps.s1p {
            return illegal("STE.Config", "stage 1 not implemented (SMMU_IDR0.S1P == 0)");
        }
        if self.config.stage2() && !caps.s2p {
            return illegal("STE.Config", "stage 2 not implemented (SMMU_IDR0.S2P == 0)");
        }
        if caps.s2p && !caps.vmid16 && self.s2.vmid.0 > 0xff && self.config != Config::Bypass {
            return illegal("STE.S2VMID", "16-bit VMID without SMMU_IDR0.VMID16");
        }
        if self.strw == Strw::El2 && !self.config.stage2() && self.config.stage1() && !caps.hyp {
            return illegal("STE.STRW", "EL2 StreamWorld without SMMU_IDR0.Hyp");
        }
        if self.config.stage1() {
            self.check_s1(caps)?;
        }
        if self.config.stage2() {
            self.check_s2(caps)?;
        }
        Ok(())
    }

    fn check_s1(&self, caps: &Capabilities) -> Result<(), SteError> {
        let illegal = |field, reason| Err(SteError::Illegal { field, reason });
        let s1 = &self.s1;
        if s1.cdmax > caps.ssidsize {
            return illegal("STE.S1CDMax", "exceeds SMMU_IDR1.SSIDSIZE");
        }
        if s1.cdmax != 0 && s1.fmt != S1Fmt::Linear && !caps.cd2l {
            return illegal("STE.S1Fmt", "2-level CD table without SMMU_IDR0.CD2L");
        }
        if s1.stalld && caps.stall_model != StallModel::StallAndTerminate {
            return illegal("STE.S1STALLD", "stall model not configurable");
        }
        let (ptr, size) = match s1.context_ptr {
            CdTablePtr::Pa(pa) if !self.config.stage2() => (pa.0, caps.oas),
            CdTablePtr::Ipa(ipa) if self.config.stage2() => (ipa.0, caps.ias()),
            _ => return illegal("STE.S1ContextPtr", "must be an IPA exactly when stage 2 translates"),
        };
        if !size.contains(ptr) {
            return illegal("STE.S1ContextPtr", "outside the address size");
        }
        // Linear tables are aligned to their size (S1ContextPtr[S1CDMax+5:6] RES0).
        let align = if s1.fmt == S1Fmt::Linear { 64u64 << s1.cdmax.min(20) } else { 64 };
        if ptr & (align - 1) != 0 {
            return illegal("STE.S1ContextPtr", "not aligned to the CD table");
        }
        Ok(())
    }

    fn check_s2(&self, caps: &Capabilities) -> Result<(), SteError> {
        let illegal = |field, reason| Err(SteError::Illegal { field, reason });
        let s2 = &self.s2;
        if s2.aa64 && !caps.ttf.aarch64 || !s2.aa64 && !caps.ttf.aarch32 {
            return illegal("STE.S2AA64", "table format not supported (SMMU_IDR0.TTF)");
        }
        if !s2.aa64 {
            return illegal("STE.S2AA64", "VMSAv8-32 stage 2 is not supported by this driver");
        }
        if !s2.tg.supported_by(caps) {
            return illegal("STE.S2TG", "granule not supported (SMMU_IDR5)");
        }
        let max = if caps.stt {
            if s2.tg == Granule::K64 {
                47
            } else {
                48
            }
        } else {
            39
        };
        let ias = caps.ias().bits();
        let min = match (caps.arch.minor, s2.tg) {
            (0, _) => 64 - ias,
            (_, Granule::K64) => (64 - ias).max(12),
            _ => (64 - ias).max(16),
        };
        if !(min..=max).contains(&u32::from(s2.t0sz)) {
            return illegal("STE.S2T0SZ", "outside the valid range for this SMMU");
        }
        s2.check_walk()?;
        let eff_ps = s2.ps.min(caps.oas);
        if !eff_ps.contains(s2.ttb.0) {
            return illegal("STE.S2TTB", "outside the effective S2PS");
        }
        match (caps.ttendian, s2.endi) {
            (TtEndian::Little, true) | (TtEndian::Big, false) => {
                return illegal("STE.S2ENDI", "endianness not supported (SMMU_IDR0.TTENDIAN)");
            }
            _ => {}
        }
        if s2.ha && caps.httu == Httu::None || s2.hd && caps.httu != Httu::AccessDirty {
            return illegal("STE.S2HA/S2HD", "HTTU not supported (SMMU_IDR0.HTTU)");
        }
        match (caps.stall_model, s2.s) {
            (StallModel::TerminateOnly, true) => illegal("STE.S2S", "stall not supported"),
            (StallModel::StallForced, false) => illegal("STE.S2S", "stall is forced"),
            _ => Ok(()),
        }
    }
}

fn mask0() -> u64 {
    bits(STE_0::V)
        | bits(STE_0::CONFIG)
        | bits(STE_0::S1FMT)
        | bits(STE_0::S1CONTEXTPTR)
        | bits(STE_0::S1CDMAX)
}
fn mask1() -> u64 {
    bits(STE_1::S1DSS)
        | bits(STE_1::S1CIR)
        | bits(STE_1::S1COR)
        | bits(STE_1::S1CSH)
        | bits(STE_1::MEV)
        | bits(STE_1::S1STALLD)
        | bits(STE_1::EATS)
        | bits(STE_1::STRW)
        | bits(STE_1::SHCFG)
}
fn mask2() -> u64 {
    bits(STE_2::S2VMID)
        | bits(STE_2::S2T0SZ)
        | bits(STE_2::S2SL0)
        | bits(STE_2::S2IR0)
        | bits(STE_2::S2OR0)
        | bits(STE_2::S2SH0)
        | bits(STE_2::S2TG)
        | bits(STE_2::S2PS)
        | bits(STE_2::S2AA64)
        | bits(STE_2::S2ENDI)
        | bits(STE_2::S2AFFD)
        | bits(STE_2::S2PTW)
        | bits(STE_2::S2HD)
        | bits(STE_2::S2HA)
        | bits(STE_2::S2S)
        | bits(STE_2::S2R)
}
fn mask3() -> u64 {
    bits(STE_3::S2TTB)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::{IdRegs, Ttf};
    use crate::testing::qemu_caps;
    use proptest::prelude::*;

    fn s2_40bit(ttb: u64) -> Stage2Cfg {
        // 40-bit IPA, 4 KiB granule, start level 1 (2 concatenated tables).
        Stage2Cfg::new(Vmid(0x1234), PhysAddr(ttb), 40, Granule::K4, 1, AddrSize::Bits44).unwrap()
    }

    // The expected values below are written from the spec's STE field table
    // (5.2): bit positions are relative to the 512-bit entry; word n holds
    // bits [64n+63:64n].

    #[test]
    fn abort_and_bypass_config() {
        // V bit 0; Config [3:1]: 0b000 abort, 0b100 bypass.
        let w = Ste::abort().encode();
        assert_eq!(w, [1, 0, 0, 0, 0, 0, 0, 0]);
        let w = Ste::bypass().encode();
        assert_eq!(w[0], 1 | (0b100 << 1));
        assert_eq!(w[0] & 0xe, 0b100 << 1);
        // SHCFG [109:108] = 0b01 (incoming): word 1 bits [45:44].
        assert_eq!(w[1], 1 << 44);
        assert_eq!(Ste::invalid().encode(), [0; 8]);
    }

    #[test]
    fn config_encodings() {
        let mut ste = Ste::abort();
        for (config, bits) in
            [(Config::S1Translate, 0b101), (Config::S2Translate, 0b110), (Config::Nested, 0b111)]
        {
            ste.config = config;
            assert_eq!(ste.encode()[0] & 0xe, bits << 1, "{config:?}");
        }
    }

    #[test]
    fn stage1_fields() {
        let ste = Ste::stage1(Stage1Cfg {
            fmt: S1Fmt::TwoLevel64K,
            context_ptr: CdTablePtr::Pa(PhysAddr(0x00ab_cdef_1234_5640)),
            cdmax: 0b10101,
            dss: S1Dss::Substream0,
            cir: Cacheability::WriteBack,
            cor: Cacheability::WriteThrough,
            csh: Shareability::InnerShareable,
            stalld: true,
        })
        .with_mev(true)
        .with_eats(Eats::Split)
        .with_strw(Strw::El2);
        let w = ste.encode();
        // S1Fmt [5:4] = 0b10; S1ContextPtr [55:6]; S1CDMax [63:59].
        assert_eq!(w[0], 1 | (0b101 << 1) | (0b10 << 4) | 0x00ab_cdef_1234_5640 | (0b10101 << 59));
        // S1DSS [65:64]=0b10, S1CIR [67:66]=0b01, S1COR [69:68]=0b10,
        // S1CSH [71:70]=0b11, MEV [83], S1STALLD [91], EATS [93:92]=0b10,
        // STRW [95:94]=0b10, SHCFG [109:108]=0b01.
        let expect1 = 0b10
            | (0b01 << 2)
            | (0b10 << 4)
            | (0b11 << 6)
            | (1 << (83 - 64))
            | (1 << (91 - 64))
            | (0b10 << (92 - 64))
            | (0b10 << (94 - 64))
            | (0b01 << (108 - 64));
        assert_eq!(w[1], expect1);
        assert_eq!(&w[2..], &[0; 6]);
    }

    #[test]
    fn stage2_fields() {
        let mut s2 = s2_40bit(0x8_0000_2000);
        s2.affd = true;
        s2.ptw = true;
        s2.s = true;
        let w = Ste::stage2(s2).encode();
        assert_eq!(w[0], 1 | (0b110 << 1));
        // S2VMID [143:128] -> word 2 [15:0].
        assert_eq!(w[2] & 0xffff, 0x1234);
        // S2T0SZ [165:160] -> word 2 [37:32] = 64 - 40.
        assert_eq!((w[2] >> 32) & 0x3f, 24);
        // S2SL0 [167:166] -> [39:38] = 1 (level 1 with 4K).
        assert_eq!((w[2] >> 38) & 3, 1);
        // S2IR0 [41:40] = S2OR0 [43:42] = 0b01, S2SH0 [45:44] = 0b11.
        assert_eq!((w[2] >> 40) & 0x3f, 0b11_01_01);
        // S2TG [47:46] = 0b00 (4K); S2PS [50:48] = 0b100 (44 bits).
        assert_eq!((w[2] >> 46) & 3, 0);
        assert_eq!((w[2] >> 48) & 7, 0b100);
        // S2AA64 bit 179 -> word 2 bit 51; S2ENDI 52; S2AFFD 53; S2PTW 54;
        // S2HD 55; S2HA 56; S2S 57; S2R 58.
        assert_eq!(w[2] >> 51 & 1, 1, "S2AA64");
        assert_eq!(w[2] >> 52 & 1, 0, "S2ENDI");
        assert_eq!(w[2] >> 53 & 1, 1, "S2AFFD");
        assert_eq!(w[2] >> 54 & 1, 1, "S2PTW");
        assert_eq!(w[2] >> 55 & 3, 0, "S2HD/S2HA");
        assert_eq!(w[2] >> 57 & 1, 1, "S2S");
        assert_eq!(w[2] >> 58 & 1, 1, "S2R");
        assert_eq!(w[2] >> 59, 0);
        // S2TTB [247:196] -> word 3 [55:4].
        assert_eq!(w[3], 0x8_0000_2000);
        assert_eq!(&w[4..], &[0; 4]);
    }

    #[test]
    fn s2tg_encoding_is_not_tg0() {
        let mut s2 = s2_40bit(0x4000);
        s2.tg = Granule::K64;
        assert_eq!((Ste::stage2(s2).encode()[2] >> 46) & 3, 0b01);
        s2.tg = Granule::K16;
        assert_eq!((Ste::stage2(s2).encode()[2] >> 46) & 3, 0b10);
    }

    #[test]
    fn start_levels() {
        assert_eq!(Stage2Cfg::sl0_for(Granule::K4, 0), Some(2));
        assert_eq!(Stage2Cfg::sl0_for(Granule::K4, 2), Some(0));
        assert_eq!(Stage2Cfg::sl0_for(Granule::K4, 3), None);
        assert_eq!(Stage2Cfg::sl0_for(Granule::K64, 1), Some(2));
        assert_eq!(Stage2Cfg::sl0_for(Granule::K16, 0), None);
        // 40-bit IPA with 4K: level 1 resolves 40-30 = 10 bits (2 tables).
        assert_eq!(s2_40bit(0x2000).start_level_bits(), Some(10));
        // 48 bits at level 1 would need 2^18 / 2^9 = 512 tables: illegal.
        let e = Stage2Cfg::new(Vmid(1), PhysAddr(0), 48, Granule::K4, 1, AddrSize::Bits48);
        assert!(matches!(e, Err(SteError::Illegal { field: "STE.S2SL0", .. })));
        // 40 bits at level 1 need an 8 KiB aligned table.
        let e = Stage2Cfg::new(Vmid(1), PhysAddr(0x1000), 40, Granule::K4, 1, AddrSize::Bits48);
        assert!(matches!(e, Err(SteError::Illegal { field: "STE.S2TTB", .. })));
        // 39 bits at level 0 translate 0 bits there: start level too high.
        let e = Stage2Cfg::new(Vmid(1), PhysAddr(0), 39, Granule::K4, 0, AddrSize::Bits48);
        assert!(e.is_err());
    }

    #[test]
    fn check_against_qemu() {
        let caps = qemu_caps();
        assert_eq!(Ste::stage2(s2_40bit(0x4000_0000)).check(&caps), Ok(()));
        assert_eq!(Ste::bypass().check(&caps), Ok(()));
        // QEMU: STALL_MODEL = 0b01, so S2S must be 0 and S1STALLD 0.
        let mut s2 = s2_40bit(0x4000_0000);
        s2.s = true;
        assert!(matches!(Ste::stage2(s2).check(&caps), Err(SteError::Illegal { field: "STE.S2S", .. })));
        // OAS 44: a 48-bit IPA (T0SZ 16) is below the minimum T0SZ of 20.
        let s2 = Stage2Cfg::new(Vmid(1), PhysAddr(0), 48, Granule::K4, 0, AddrSize::Bits48).unwrap();
        assert!(matches!(Ste::stage2(s2).check(&caps), Err(SteError::Illegal { field: "STE.S2T0SZ", .. })));
        // Stage 1 CD pointer must be a PA without stage 2, an IPA with it.
        let s1 = Stage1Cfg { context_ptr: CdTablePtr::Ipa(Ipa(0x1000)), ..Stage1Cfg::default() };
        assert!(Ste::stage1(s1).check(&caps).is_err());
        let s1 = Stage1Cfg { context_ptr: CdTablePtr::Pa(PhysAddr(0x1000)), ..Stage1Cfg::default() };
        assert_eq!(Ste::stage1(s1).check(&caps), Ok(()));
        // SSIDSIZE is 0 on QEMU: S1CDMax must be 0.
        let s1 = Stage1Cfg { cdmax: 1, ..s1 };
        assert!(matches!(Ste::stage1(s1).check(&caps), Err(SteError::Illegal { field: "STE.S1CDMax", .. })));
        // Stage 2 on an S1-only SMMU.
        let s1_only = Capabilities { s2p: false, ..caps };
        assert!(Ste::stage2(s2_40bit(0)).check(&s1_only).is_err());
    }

    #[test]
    fn check_ttf_and_endianness() {
        let caps = Capabilities::decode(&IdRegs {
            idr: [0x0d44_101b | (3 << 21), 16, 0, 0, 0, 0x74],
            iidr: 0,
            aidr: 1,
        });
        assert_eq!(caps.ttf, Ttf { aarch32: false, aarch64: true });
        let mut s2 = s2_40bit(0);
        assert!(Ste::stage2(s2).check(&caps).is_err(), "big-endian only SMMU");
        s2.endi = true;
        assert_eq!(Ste::stage2(s2).check(&caps), Ok(()));
    }

    #[test]
    fn decode_rejects_reserved() {
        assert_eq!(
            Ste::decode([0b011 << 1 | 1, 0, 0, 0, 0, 0, 0, 0]),
            Err(SteError::Reserved { field: "STE.Config", value: 0b011 })
        );
        assert_eq!(
            Ste::decode([1, 0, 3 << 46, 0, 0, 0, 0, 0]),
            Err(SteError::Reserved { field: "STE.S2TG", value: 3 })
        );
        assert_eq!(
            Ste::decode([1, 1 << 30, 0, 0, 0, 0, 0, 0]),
            Err(SteError::Reserved { field: "STE.STRW", value: 1 })
        );
        assert_eq!(Ste::decode([1, 0, 0, 0, 0, 0, 0, 1]), Err(SteError::UnmodelledBits { word: 7, bits: 1 }));
        assert_eq!(
            Ste::decode([1 << 56, 0, 0, 0, 0, 0, 0, 0]),
            Err(SteError::UnmodelledBits { word: 0, bits: 1 << 56 })
        );
    }

    #[test]
    fn live_word0() {
        assert!(!word0_is_live(0));
        assert!(!word0_is_live(ABORT_WORD0));
        assert!(word0_is_live(Ste::bypass().encode()[0]));
        assert!(word0_is_live(Ste::stage2(s2_40bit(0)).encode()[0]));
        assert!(!word0_is_live(Ste::stage2(s2_40bit(0)).encode()[0] & !1));
    }

    fn any_cache() -> impl Strategy<Value = Cacheability> {
        (0u64..4).prop_map(Cacheability::from_field)
    }
    fn any_sh() -> impl Strategy<Value = Shareability> {
        prop_oneof![
            Just(Shareability::NonShareable),
            Just(Shareability::OuterShareable),
            Just(Shareability::InnerShareable)
        ]
    }
    fn any_ste() -> impl Strategy<Value = Ste> {
        let config = prop_oneof![
            Just(Config::Abort),
            Just(Config::Bypass),
            Just(Config::S1Translate),
            Just(Config::S2Translate),
            Just(Config::Nested)
        ];
        let s1 = (0u8..3, 0u64..1 << 50, 0u8..32, 0u8..3, any_cache(), any_cache(), any_sh(), any::<bool>());
        let s2a = (any::<u16>(), 0u8..64, 0u8..4, any_cache(), any_cache(), any_sh(), 0u8..3, 0u64..8);
        let s2b = (any::<[bool; 8]>(), 0u64..1 << 52);
        let rest = (0u8..4, any::<bool>(), any::<bool>(), 0u8..4);
        (any::<bool>(), config, s1, s2a, s2b, rest).prop_map(|(valid, config, s1, s2a, s2b, rest)| {
            let (fmt, ptr, cdmax, dss, cir, cor, csh, stalld) = s1;
            let ptr = ptr << 6;
            let s1 = Stage1Cfg {
                fmt: [S1Fmt::Linear, S1Fmt::TwoLevel4K, S1Fmt::TwoLevel64K][fmt as usize],
                context_ptr: if config == Config::Nested {
                    CdTablePtr::Ipa(Ipa(ptr))
                } else {
                    CdTablePtr::Pa(PhysAddr(ptr))
                },
                cdmax,
                dss: [S1Dss::Terminate, S1Dss::Bypass, S1Dss::Substream0][dss as usize],
                cir,
                cor,
                csh,
                stalld,
            };
            let (vmid, t0sz, sl0, ir0, or0, sh0, tg, ps) = s2a;
            let ([aa64, endi, affd, ptw, hd, ha, s, r], ttb) = s2b;
            let s2 = Stage2Cfg {
                vmid: Vmid(vmid),
                t0sz,
                sl0,
                ir0,
                or0,
                sh0,
                tg: [Granule::K4, Granule::K16, Granule::K64][tg as usize],
                ps: AddrSize::from_field(ps),
                aa64,
                endi,
                affd,
                ptw,
                hd: hd && ha,
                ha,
                s,
                r,
                ttb: PhysAddr(ttb << 4),
            };
            let (eats, mev, el2, shcfg) = rest;
            Ste {
                valid,
                config,
                s1,
                s2,
                eats: [Eats::Abort, Eats::Full, Eats::Split, Eats::FullDpt][eats as usize],
                strw: if el2 { Strw::El2 } else { Strw::NsEl1 },
                mev,
                shcfg: [ShCfg::NonShareable, ShCfg::Incoming, ShCfg::OuterShareable, ShCfg::InnerShareable]
                    [shcfg as usize],
            }
        })
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(512))]

        #[test]
        fn ste_round_trip(ste in any_ste()) {
            prop_assert_eq!(Ste::decode(ste.encode()), Ok(ste));
        }

        #[test]
        fn ste_decode_is_total(words in any::<[u64; 8]>()) {
            if let Ok(ste) = Ste::decode(words) {
                prop_assert_eq!(ste.encode(), words);
            }
        }
    }
}
