//! Context Descriptor (IHI 0070 5.4): the stage 1 translation context of a
//! stream or substream, 64 bytes.
//!
//! [`Cd`] is generic over the address space of its translation table bases:
//! [`PhysAddr`] for stage 1 only streams, [`Ipa`] when stage 2 also
//! translates (nested), so a guest's IPA cannot be written as a PA.

use core::fmt;

use iommu_common::addr::{Ipa, PhysAddr};
use tock_registers::LocalRegisterCopy;

use crate::caps::{AddrSize, Capabilities, Granule, Httu, StallModel, TtEndian, Vax};
use crate::fields::bits;
use crate::ids::Asid;
use crate::ste::{Cacheability, Shareability, SteError};

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// CD word 0, bits `[63:0]`.
        pub CD_0 [
            /// TTB0 region size: 64 - VA bits.
            T0SZ OFFSET(0) NUMBITS(6) [],
            /// TTB0 granule (0 4K, 1 64K, 2 16K).
            TG0 OFFSET(6) NUMBITS(2) [],
            /// TTB0 walk inner cacheability.
            IR0 OFFSET(8) NUMBITS(2) [],
            /// TTB0 walk outer cacheability.
            OR0 OFFSET(10) NUMBITS(2) [],
            /// TTB0 walk shareability.
            SH0 OFFSET(12) NUMBITS(2) [],
            /// TTB0 walks disabled.
            EPD0 OFFSET(14) NUMBITS(1) [],
            /// Big-endian tables.
            ENDI OFFSET(15) NUMBITS(1) [],
            /// TTB1 region size.
            T1SZ OFFSET(16) NUMBITS(6) [],
            /// TTB1 granule (1 16K, 2 4K, 3 64K).
            TG1 OFFSET(22) NUMBITS(2) [],
            /// TTB1 walk inner cacheability.
            IR1 OFFSET(24) NUMBITS(2) [],
            /// TTB1 walk outer cacheability.
            OR1 OFFSET(26) NUMBITS(2) [],
            /// TTB1 walk shareability.
            SH1 OFFSET(28) NUMBITS(2) [],
            /// TTB1 walks disabled.
            EPD1 OFFSET(30) NUMBITS(1) [],
            /// Valid.
            V OFFSET(31) NUMBITS(1) [],
            /// Intermediate physical address size.
            IPS OFFSET(32) NUMBITS(3) [],
            /// Access flag fault disable.
            AFFD OFFSET(35) NUMBITS(1) [],
            /// Write execute never.
            WXN OFFSET(36) NUMBITS(1) [],
            /// Unprivileged write execute never.
            UWXN OFFSET(37) NUMBITS(1) [],
            /// Top byte ignore for TTB0.
            TBI0 OFFSET(38) NUMBITS(1) [],
            /// Top byte ignore for TTB1.
            TBI1 OFFSET(39) NUMBITS(1) [],
            /// Privileged access never.
            PAN OFFSET(40) NUMBITS(1) [],
            /// VMSAv8-64 tables.
            AA64 OFFSET(41) NUMBITS(1) [],
            /// Hardware dirty update.
            HD OFFSET(42) NUMBITS(1) [],
            /// Hardware Access flag update.
            HA OFFSET(43) NUMBITS(1) [],
            /// Stall on fault.
            S OFFSET(44) NUMBITS(1) [],
            /// Record faults.
            R OFFSET(45) NUMBITS(1) [],
            /// Abort (rather than RAZ/WI) terminated transactions.
            A OFFSET(46) NUMBITS(1) [],
            /// ASID set (1: not shared with PE ASIDs).
            ASET OFFSET(47) NUMBITS(1) [],
            /// Address space identifier.
            ASID OFFSET(48) NUMBITS(16) []
        ],
        /// CD words 1 and 2: TTB0 and TTB1.
        pub CD_TTB [
            /// Non-secure table walk attribute (Secure streams only).
            NSCFG OFFSET(0) NUMBITS(1) [],
            /// Hierarchical attribute disable.
            HAD OFFSET(1) NUMBITS(1) [],
            /// Translation table base, bits `[55:4]`.
            TTB OFFSET(4) NUMBITS(52) []
        ]
    ];
}
pub use layout::*;

/// An address space a CD's table bases can live in.
pub trait TableAddress: Copy + PartialEq + fmt::Debug {
    /// The raw address.
    fn raw(self) -> u64;
    /// From a raw address.
    fn from_raw(v: u64) -> Self;
}

impl TableAddress for PhysAddr {
    fn raw(self) -> u64 {
        self.0
    }
    fn from_raw(v: u64) -> Self {
        Self(v)
    }
}

impl TableAddress for Ipa {
    fn raw(self) -> u64 {
        self.0
    }
    fn from_raw(v: u64) -> Self {
        Self(v)
    }
}

/// The configuration of one translation table base (TTB0 or TTB1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TtbCfg<A: TableAddress> {
    /// TxSZ: the region is 2^(64 - tsz) bytes.
    pub tsz: u8,
    /// TGx; `None` is the field's reserved encoding (allowed only with EPDx).
    pub tg: Option<Granule>,
    /// IRx.
    pub ir: Cacheability,
    /// ORx.
    pub or: Cacheability,
    /// SHx.
    pub sh: Shareability,
    /// EPDx: walks disabled, TLB misses fault.
    pub epd: bool,
    /// TBIx.
    pub tbi: bool,
    /// HADx.
    pub had: bool,
    /// NSCFGx.
    pub nscfg: bool,
    /// TTBx.
    pub ttb: A,
}

impl<A: TableAddress> TtbCfg<A> {
    /// A disabled table base (EPDx = 1, everything else zero).
    pub fn disabled() -> Self {
        Self {
            tsz: 0,
            tg: None,
            ir: Cacheability::NonCacheable,
            or: Cacheability::NonCacheable,
            sh: Shareability::NonShareable,
            epd: true,
            tbi: false,
            had: false,
            nscfg: false,
            ttb: A::from_raw(0),
        }
    }

    /// An enabled table base: Inner Shareable Write-Back walks.
    pub fn new(ttb: A, va_bits: u8, tg: Granule) -> Self {
        Self {
            tsz: 64u8.saturating_sub(va_bits),
            tg: Some(tg),
            ir: Cacheability::WriteBack,
            or: Cacheability::WriteBack,
            sh: Shareability::InnerShareable,
            epd: false,
            tbi: false,
            had: false,
            nscfg: false,
            ttb,
        }
    }
}

/// A Context Descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cd<A: TableAddress = PhysAddr> {
    /// V.
    pub valid: bool,
    /// TTB0 and its controls.
    pub tt0: TtbCfg<A>,
    /// TTB1 and its controls.
    pub tt1: TtbCfg<A>,
    /// ENDI: big-endian tables.
    pub endi: bool,
    /// IPS.
    pub ips: AddrSize,
    /// AFFD.
    pub affd: bool,
    /// WXN.
    pub wxn: bool,
    /// UWXN.
    pub uwxn: bool,
    /// PAN.
    pub pan: bool,
    /// AA64: VMSAv8-64 tables.
    pub aa64: bool,
    /// HD.
    pub hd: bool,
    /// HA.
    pub ha: bool,
    /// S: stall on fault.
    pub s: bool,
    /// R: record faults.
    pub r: bool,
    /// A: abort terminated transactions.
    pub a: bool,
    /// ASET.
    pub aset: bool,
    /// ASID.
    pub asid: Asid,
    /// MAIR (MAIR0 in `[31:0]`, MAIR1 in `[63:32]`).
    pub mair: u64,
    /// AMAIR.
    pub amair: u64,
}

/// Word 0 bit 31, V.
pub fn word0_is_valid(w0: u64) -> bool {
    LocalRegisterCopy::<u64, CD_0::Register>::new(w0).is_set(CD_0::V)
}

impl<A: TableAddress> Cd<A> {
    /// A VMSAv8-64 context using only TTB0 (TTB1 disabled with EPD1): faults
    /// are recorded and abort (R = A = 1), never stall; ASID set not shared
    /// with the PE (ASET = 1), so only SMMU commands invalidate it.
    pub fn aarch64_ttb0(asid: Asid, ttb0: A, va_bits: u8, tg: Granule, ips: AddrSize, mair: u64) -> Self {
        Self {
            valid: true,
            tt0: TtbCfg::new(ttb0, va_bits, tg),
            tt1: TtbCfg::disabled(),
            endi: false,
            ips,
            affd: false,
            wxn: false,
            uwxn: false,
            pan: false,
            aa64: true,
            hd: false,
            ha: false,
            s: false,
            r: true,
            a: true,
            aset: true,
            asid,
            mair,
            amair: 0,
        }
    }

    /// Encodes the descriptor (words 5..7 are zero).
    pub fn encode(&self) -> [u64; 8] {
        let tg0 = |g: Option<Granule>| match g {
            Some(Granule::K4) => 0,
            Some(Granule::K64) => 1,
            Some(Granule::K16) => 2,
            None => 3,
        };
        let tg1 = |g: Option<Granule>| match g {
            None => 0,
            Some(Granule::K16) => 1,
            Some(Granule::K4) => 2,
            Some(Granule::K64) => 3,
        };
        let (t0, t1) = (&self.tt0, &self.tt1);
        let b = |v: bool| u64::from(v);
        let mut w0 = LocalRegisterCopy::<u64, CD_0::Register>::new(0);
        w0.write(
            CD_0::T0SZ.val(u64::from(t0.tsz))
                + CD_0::TG0.val(tg0(t0.tg))
                + CD_0::IR0.val(t0.ir.field())
                + CD_0::OR0.val(t0.or.field())
                + CD_0::SH0.val(t0.sh.field())
                + CD_0::EPD0.val(b(t0.epd))
                + CD_0::ENDI.val(b(self.endi))
                + CD_0::T1SZ.val(u64::from(t1.tsz))
                + CD_0::TG1.val(tg1(t1.tg))
                + CD_0::IR1.val(t1.ir.field())
                + CD_0::OR1.val(t1.or.field())
                + CD_0::SH1.val(t1.sh.field())
                + CD_0::EPD1.val(b(t1.epd))
                + CD_0::V.val(b(self.valid))
                + CD_0::IPS.val(self.ips.field())
                + CD_0::AFFD.val(b(self.affd))
                + CD_0::WXN.val(b(self.wxn))
                + CD_0::UWXN.val(b(self.uwxn))
                + CD_0::TBI0.val(b(t0.tbi))
                + CD_0::TBI1.val(b(t1.tbi))
                + CD_0::PAN.val(b(self.pan))
                + CD_0::AA64.val(b(self.aa64))
                + CD_0::HD.val(b(self.hd))
                + CD_0::HA.val(b(self.ha))
                + CD_0::S.val(b(self.s))
                + CD_0::R.val(b(self.r))
                + CD_0::A.val(b(self.a))
                + CD_0::ASET.val(b(self.aset))
                + CD_0::ASID.val(u64::from(self.asid.0)),
        );
        let ttb = |t: &TtbCfg<A>| {
            let mut w = LocalRegisterCopy::<u64, CD_TTB::Register>::new(0);
            w.write(
                CD_TTB::NSCFG.val(b(t.nscfg)) + CD_TTB::HAD.val(b(t.had)) + CD_TTB::TTB.val(t.ttb.raw() >> 4),
            );
            w.get()
        };
        [w0.get(), ttb(t0), ttb(t1), self.mair, self.amair, 0, 0, 0]
    }

    /// Decodes a descriptor. Reserved encodings and bits outside the
    /// modelled fields are errors; never panics.
    pub fn decode(words: [u64; 8]) -> Result<Self, SteError> {
        let ttb_mask = bits(CD_TTB::NSCFG) | bits(CD_TTB::HAD) | bits(CD_TTB::TTB);
        let allowed = [u64::MAX, ttb_mask, ttb_mask, u64::MAX, u64::MAX, 0, 0, 0];
        for (i, (w, m)) in words.iter().zip(allowed).enumerate() {
            if w & !m != 0 {
                return Err(SteError::UnmodelledBits { word: i as u8, bits: w & !m });
            }
        }
        let w0 = LocalRegisterCopy::<u64, CD_0::Register>::new(words[0]);
        let tt = |w: u64, tsz, tg, ir, or, sh, epd, tbi, field_sh| -> Result<TtbCfg<A>, SteError> {
            let w = LocalRegisterCopy::<u64, CD_TTB::Register>::new(w);
            Ok(TtbCfg {
                tsz,
                tg,
                ir: Cacheability::from_field(ir),
                or: Cacheability::from_field(or),
                sh: Shareability::from_field(field_sh, sh)?,
                epd,
                tbi,
                had: w.is_set(CD_TTB::HAD),
                nscfg: w.is_set(CD_TTB::NSCFG),
                ttb: A::from_raw(w.read(CD_TTB::TTB) << 4),
            })
        };
        let tg0 = match w0.read(CD_0::TG0) {
            0 => Some(Granule::K4),
            1 => Some(Granule::K64),
            2 => Some(Granule::K16),
            _ => None,
        };
        let tg1 = match w0.read(CD_0::TG1) {
            1 => Some(Granule::K16),
            2 => Some(Granule::K4),
            3 => Some(Granule::K64),
            _ => None,
        };
        let tt0 = tt(
            words[1],
            w0.read(CD_0::T0SZ) as u8,
            tg0,
            w0.read(CD_0::IR0),
            w0.read(CD_0::OR0),
            w0.read(CD_0::SH0),
            w0.is_set(CD_0::EPD0),
            w0.is_set(CD_0::TBI0),
            "CD.SH0",
        )?;
        let tt1 = tt(
            words[2],
            w0.read(CD_0::T1SZ) as u8,
            tg1,
            w0.read(CD_0::IR1),
            w0.read(CD_0::OR1),
            w0.read(CD_0::SH1),
            w0.is_set(CD_0::EPD1),
            w0.is_set(CD_0::TBI1),
            "CD.SH1",
        )?;
        let cd = Self {
            valid: w0.is_set(CD_0::V),
            tt0,
            tt1,
            endi: w0.is_set(CD_0::ENDI),
            ips: AddrSize::from_field(w0.read(CD_0::IPS)),
            affd: w0.is_set(CD_0::AFFD),
            wxn: w0.is_set(CD_0::WXN),
            uwxn: w0.is_set(CD_0::UWXN),
            pan: w0.is_set(CD_0::PAN),
            aa64: w0.is_set(CD_0::AA64),
            hd: w0.is_set(CD_0::HD),
            ha: w0.is_set(CD_0::HA),
            s: w0.is_set(CD_0::S),
            r: w0.is_set(CD_0::R),
            a: w0.is_set(CD_0::A),
            aset: w0.is_set(CD_0::ASET),
            asid: Asid(w0.read(CD_0::ASID) as u16),
            mair: words[3],
            amair: words[4],
        };
        if cd.hd && !cd.ha {
            return Err(SteError::Reserved { field: "CD.{HD,HA}", value: 0b10 });
        }
        Ok(cd)
    }

    /// Checks the descriptor against the SMMU (5.4 validity rules for the
    /// modelled fields, plus the TTB range check QEMU applies). An invalid
    /// descriptor (V = 0) always passes: it is a legal way to disable a
    /// substream.
    pub fn check(&self, caps: &Capabilities) -> Result<(), SteError> {
        let illegal = |field, reason| Err(SteError::Illegal { field, reason });
        if !self.valid {
            return Ok(());
        }
        if !self.aa64 {
            return illegal("CD.AA64", "VMSAv8-32 stage 1 is not supported by this driver");
        }
        if !caps.ttf.aarch64 {
            return illegal("CD.AA64", "VMSAv8-64 not supported (SMMU_IDR0.TTF)");
        }
        if self.asid.0 > 0xff && !caps.asid16 {
            return illegal("CD.ASID", "16-bit ASID without SMMU_IDR0.ASID16");
        }
        if !self.a && caps.term_model {
            return illegal("CD.A", "must be 1 when SMMU_IDR0.TERM_MODEL == 1");
        }
        match (caps.stall_model, self.s) {
            (StallModel::TerminateOnly, true) => return illegal("CD.S", "stall not supported"),
            (StallModel::StallForced, false) => return illegal("CD.S", "stall is forced"),
            _ => {}
        }
        if self.ha && caps.httu == Httu::None || self.hd && caps.httu != Httu::AccessDirty {
            return illegal("CD.HA/CD.HD", "HTTU not supported (SMMU_IDR0.HTTU)");
        }
        let both_disabled = self.tt0.epd && self.tt1.epd;
        match (caps.ttendian, self.endi, both_disabled) {
            (TtEndian::Little, true, false) | (TtEndian::Big, false, false) => {
                return illegal("CD.ENDI", "endianness not supported (SMMU_IDR0.TTENDIAN)");
            }
            _ => {}
        }
        let eff_ips = self.ips.min(caps.oas);
        for (tt, field) in [(&self.tt0, "CD.T0SZ/TG0/TTB0"), (&self.tt1, "CD.T1SZ/TG1/TTB1")] {
            if tt.epd {
                continue;
            }
            let Some(tg) = tt.tg else {
                return illegal(field, "reserved granule encoding");
            };
            if !tg.supported_by(caps) {
                return illegal(field, "granule not supported (SMMU_IDR5)");
            }
            let max = if caps.stt {
                if tg == Granule::K64 {
                    47
                } else {
                    48
                }
            } else {
                39
            };
            let min = if caps.vax != Vax::Bits48 && tg == Granule::K64 { 12 } else { 16 };
            if !(min..=max).contains(&tt.tsz) {
                return illegal(field, "TxSZ outside the valid range");
            }
            // Outside the effective IPS is an Address Size fault on real
            // SMMUs; QEMU rejects the CD (C_BAD_CD). Refuse it either way.
            let out = if tg == Granule::K64 { eff_ips } else { eff_ips.min(AddrSize::Bits48) };
            if !out.contains(tt.ttb.raw()) {
                return illegal(field, "TTB outside the effective IPS");
            }
            if tt.ttb.raw() & 0xf != 0 {
                return illegal(field, "TTB not 16-byte aligned");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::qemu_caps;
    use proptest::prelude::*;

    fn linux_like() -> Cd {
        Cd::aarch64_ttb0(Asid(0x1234), PhysAddr(0x4567_8000), 48, Granule::K4, AddrSize::Bits44, 0x0044_ff04)
    }

    // Expected values from the spec's CD field table (5.4).
    #[test]
    fn word0_fields() {
        let w = linux_like().encode();
        let mut expect = 16u64; // T0SZ [5:0] = 64 - 48
        expect |= 0b00 << 6; // TG0 4K
        expect |= 0b01 << 8; // IR0 WB
        expect |= 0b01 << 10; // OR0 WB
        expect |= 0b11 << 12; // SH0 ISH
        expect |= 1 << 30; // EPD1
        expect |= 1 << 31; // V
        expect |= 0b100 << 32; // IPS 44 bits
        expect |= 1 << 41; // AA64
        expect |= 1 << 45; // R
        expect |= 1 << 46; // A
        expect |= 1 << 47; // ASET
        expect |= 0x1234 << 48; // ASID [63:48]
        assert_eq!(w[0], expect);
        // TTB0 [119:68]: word 1 bits [55:4].
        assert_eq!(w[1], 0x4567_8000);
        assert_eq!(w[2], 0);
        // MAIR0 [223:192], MAIR1 [255:224]: word 3.
        assert_eq!(w[3], 0x0044_ff04);
    }

    #[test]
    fn single_bits() {
        let base = Cd::<PhysAddr> { valid: false, ..linux_like() };
        let w0 = |cd: Cd| cd.encode()[0] ^ base.encode()[0];
        assert_eq!(w0(Cd { endi: true, ..base }), 1 << 15);
        assert_eq!(w0(Cd { affd: true, ..base }), 1 << 35);
        assert_eq!(w0(Cd { wxn: true, ..base }), 1 << 36);
        assert_eq!(w0(Cd { uwxn: true, ..base }), 1 << 37);
        assert_eq!(w0(Cd { pan: true, ..base }), 1 << 40);
        assert_eq!(w0(Cd { hd: true, ha: true, ..base }), 3 << 42);
        assert_eq!(w0(Cd { s: true, ..base }), 1 << 44);
        let mut t0 = base.tt0;
        t0.tbi = true;
        assert_eq!(w0(Cd { tt0: t0, ..base }), 1 << 38);
        t0.tbi = false;
        t0.epd = true;
        assert_eq!(w0(Cd { tt0: t0, ..base }), 1 << 14);
        let mut t1 = TtbCfg::new(PhysAddr(0x9000), 39, Granule::K4);
        t1.tbi = true;
        t1.had = true;
        t1.nscfg = true;
        let cd = Cd { tt1: t1, ..base };
        let w = cd.encode();
        // T1SZ [21:16] = 25, TG1 [23:22] = 0b10 (4K: TG1's own encoding),
        // IR1 [25:24], OR1 [27:26], SH1 [29:28], EPD1 [30] clear, TBI1 [39].
        assert_eq!((w[0] >> 16) & 0x3f, 25);
        assert_eq!((w[0] >> 22) & 3, 0b10);
        assert_eq!((w[0] >> 24) & 0x3f, 0b11_01_01);
        assert_eq!((w[0] >> 30) & 1, 0);
        assert_eq!((w[0] >> 39) & 1, 1);
        // NSCFG1 [128], HAD1 [129], TTB1 [183:132]: word 2.
        assert_eq!(w[2], 0x9000 | 0b11);
    }

    #[test]
    fn tg_encodings_differ_between_ttb0_and_ttb1() {
        for (g, tg0, tg1) in [(Granule::K4, 0, 2), (Granule::K16, 2, 1), (Granule::K64, 1, 3)] {
            let mut cd = linux_like();
            cd.tt0.tg = Some(g);
            cd.tt1 = TtbCfg::new(PhysAddr(0), 39, g);
            let w = cd.encode()[0];
            assert_eq!((w >> 6) & 3, tg0, "{g:?} TG0");
            assert_eq!((w >> 22) & 3, tg1, "{g:?} TG1");
        }
    }

    #[test]
    fn qemu_constraints() {
        let caps = qemu_caps();
        // 48-bit VA: T0SZ 16, the minimum.
        assert_eq!(linux_like().check(&caps), Ok(()));
        // TERM_MODEL == 1: A must be 1.
        assert!(Cd { a: false, ..linux_like() }.check(&caps).is_err());
        // STALL_MODEL == 0b01: S must be 0.
        assert!(Cd { s: true, ..linux_like() }.check(&caps).is_err());
        // HTTU == 0.
        assert!(Cd { ha: true, ..linux_like() }.check(&caps).is_err());
        // An enabled TTB1 with T1SZ == 0 is illegal (QEMU checks both TTBs).
        let mut cd = linux_like();
        cd.tt1.epd = false;
        assert!(cd.check(&caps).is_err());
        // TTB0 beyond the 44-bit OAS.
        let cd = Cd::aarch64_ttb0(Asid(1), PhysAddr(1 << 44), 48, Granule::K4, AddrSize::Bits48, 0);
        assert!(cd.check(&caps).is_err());
        assert_eq!(Cd { valid: false, ..cd }.check(&caps), Ok(()));
    }

    #[test]
    fn decode_rejects_garbage() {
        assert!(matches!(
            Cd::<PhysAddr>::decode([0, 1 << 2, 0, 0, 0, 0, 0, 0]),
            Err(SteError::UnmodelledBits { word: 1, bits: 4 })
        ));
        assert!(matches!(
            Cd::<PhysAddr>::decode([1 << 12, 0, 0, 0, 0, 0, 0, 0]),
            Err(SteError::Reserved { field: "CD.SH0", value: 1 })
        ));
        assert!(Cd::<PhysAddr>::decode([0, 0, 0, 0, 0, 1, 0, 0]).is_err());
    }

    fn any_ttb() -> impl Strategy<Value = TtbCfg<Ipa>> {
        let sh = prop_oneof![
            Just(Shareability::NonShareable),
            Just(Shareability::OuterShareable),
            Just(Shareability::InnerShareable)
        ];
        let tg = prop_oneof![
            Just(None),
            Just(Some(Granule::K4)),
            Just(Some(Granule::K16)),
            Just(Some(Granule::K64))
        ];
        (0u8..64, tg, 0u64..4, 0u64..4, sh, any::<[bool; 4]>(), 0u64..1 << 52).prop_map(
            |(tsz, tg, ir, or, sh, [epd, tbi, had, nscfg], ttb)| TtbCfg {
                tsz,
                tg,
                ir: Cacheability::from_field(ir),
                or: Cacheability::from_field(or),
                sh,
                epd,
                tbi,
                had,
                nscfg,
                ttb: Ipa(ttb << 4),
            },
        )
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(512))]

        #[test]
        fn cd_round_trip(
            tt0 in any_ttb(),
            tt1 in any_ttb(),
            flags in any::<[bool; 12]>(),
            ips in 0u64..8,
            asid in any::<u16>(),
            mair in any::<u64>(),
            amair in any::<u64>(),
        ) {
            let [valid, endi, affd, wxn, uwxn, pan, aa64, hd, ha, s, r, a] = flags;
            let cd = Cd {
                valid, tt0, tt1, endi, ips: AddrSize::from_field(ips), affd, wxn, uwxn, pan, aa64,
                hd: hd && ha, ha, s, r, a, aset: flags[0] ^ flags[1], asid: Asid(asid), mair, amair,
            };
            prop_assert_eq!(Cd::<Ipa>::decode(cd.encode()), Ok(cd));
        }

        #[test]
        fn cd_decode_is_total(words in any::<[u64; 8]>()) {
            if let Ok(cd) = Cd::<PhysAddr>::decode(words) {
                prop_assert_eq!(cd.encode(), words);
            }
        }
    }
}
