//! Device Table Entry (48882 2.2.2): 256 bits, four 64-bit words, indexed
//! by DeviceID. It names the device's host page table and DomainID, its
//! permissions, and how its interrupts and special requests are handled.
//!
//! [`Dte`] is a typed value: build it with [`Dte::blocked`],
//! [`Dte::translated`] or (explicitly) [`Dte::passthrough`], check it
//! against the IOMMU with [`Dte::check`], then [`Dte::encode`] it.
//! [`Dte::decode`] parses words back and rejects reserved encodings and set
//! bits outside the modelled fields.
//!
//! What V, TV and Mode mean (2.2.2, DTE fields table):
//!
//! | V | TV | Mode  | DMA from the device                                     |
//! |---|----|-------|---------------------------------------------------------|
//! | 0 | x  | x     | the entry is not valid: requests pass untranslated      |
//! | 1 | 1  | 000b  | translation disabled, access controlled by IR and IW    |
//! | 1 | 1  | 1..6  | translated by a 1- to 6-level host page table           |
//! | 1 | 1  | 111b  | reserved (IO_PAGE_FAULT / ILLEGAL_DEV_TABLE_ENTRY)      |
//!
//! So "blocked" is V=1, TV=1, Mode=000b with IR=IW=0 (every access is
//! target-aborted), and "pass-through" is the same with IR=IW=1. V=1 with
//! TV=0 ("translation information not valid") is never built here: its
//! handling differs between implementations (SNP-enabled IOMMUs use it, and
//! QEMU's model falls back to IR/IW), so we do not rely on it.

use core::fmt;

use iommu_common::addr::PhysAddr;
use tock_registers::LocalRegisterCopy;

use crate::amdvi::caps::Efr;
use crate::amdvi::ids::DomainId;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// DTE bits `[63:0]`.
        pub DTE_0 [
            /// V: the entry is valid.
            V OFFSET(0) NUMBITS(1) [],
            /// TV: the translation information is valid.
            TV OFFSET(1) NUMBITS(1) [],
            /// HAD: host access/dirty update control.
            HAD OFFSET(7) NUMBITS(2) [],
            /// Mode: host page-table depth (000b: translation disabled).
            MODE OFFSET(9) NUMBITS(3) [],
            /// Host Page Table Root Pointer `[51:12]`.
            PT_ROOT OFFSET(12) NUMBITS(40) [],
            /// PPR: peripheral page requests are logged.
            PPR OFFSET(52) NUMBITS(1) [],
            /// GPRP: guest PPR response with PASID.
            GPRP OFFSET(53) NUMBITS(1) [],
            /// GIoV: guest I/O protection valid.
            GIOV OFFSET(54) NUMBITS(1) [],
            /// GV: guest translation valid.
            GV OFFSET(55) NUMBITS(1) [],
            /// GLX: guest CR3 table levels.
            GLX OFFSET(56) NUMBITS(2) [],
            /// GCR3 Table Root Pointer `[14:12]`.
            GCR3_LO OFFSET(58) NUMBITS(3) [],
            /// IR: DMA reads allowed.
            IR OFFSET(61) NUMBITS(1) [],
            /// IW: DMA writes allowed.
            IW OFFSET(62) NUMBITS(1) []
        ],
        /// DTE bits `[127:64]`.
        pub DTE_1 [
            /// DomainID.
            DOMAIN_ID OFFSET(0) NUMBITS(16) [],
            /// GCR3 Table Root Pointer `[30:15]`.
            GCR3_MID OFFSET(16) NUMBITS(16) [],
            /// I: the device has an IOTLB (ATS responses allowed).
            IOTLB OFFSET(32) NUMBITS(1) [],
            /// SE: suppress I/O page fault events (repeated ones).
            SE OFFSET(33) NUMBITS(1) [],
            /// SA: suppress all I/O page fault events.
            SA OFFSET(34) NUMBITS(1) [],
            /// IoCtl: port I/O control.
            IOCTL OFFSET(35) NUMBITS(2) [],
            /// Cache: IOTLB cache hint.
            CACHE OFFSET(37) NUMBITS(1) [],
            /// SD: snoop disable.
            SD OFFSET(38) NUMBITS(1) [],
            /// EX: the exclusion range applies to this device.
            EX OFFSET(39) NUMBITS(1) [],
            /// SysMgt: system management message handling.
            SYSMGT OFFSET(40) NUMBITS(2) [],
            /// GCR3 Table Root Pointer `[51:31]`.
            GCR3_HI OFFSET(43) NUMBITS(21) []
        ],
        /// DTE bits `[191:128]`.
        pub DTE_2 [
            /// IV: the interrupt map is valid.
            IV OFFSET(0) NUMBITS(1) [],
            /// IntTabLen: the table holds 2^IntTabLen entries.
            INT_TAB_LEN OFFSET(1) NUMBITS(4) [],
            /// IG: ignore unmapped interrupts (no event).
            IG OFFSET(5) NUMBITS(1) [],
            /// Interrupt Table Root Pointer `[51:6]`.
            INT_TAB_ROOT OFFSET(6) NUMBITS(46) [],
            /// InitPass: INIT messages pass unmapped.
            INIT_PASS OFFSET(56) NUMBITS(1) [],
            /// EIntPass: ExtInt messages pass unmapped.
            EINT_PASS OFFSET(57) NUMBITS(1) [],
            /// NMIPass: NMI messages pass unmapped.
            NMI_PASS OFFSET(58) NUMBITS(1) [],
            /// IntCtl: fixed and arbitrated interrupt control.
            INT_CTL OFFSET(60) NUMBITS(2) [],
            /// Lint0Pass.
            LINT0_PASS OFFSET(62) NUMBITS(1) [],
            /// Lint1Pass.
            LINT1_PASS OFFSET(63) NUMBITS(1) []
        ]
    ];
}
pub use layout::*;

type W0 = LocalRegisterCopy<u64, DTE_0::Register>;
type W1 = LocalRegisterCopy<u64, DTE_1::Register>;
type W2 = LocalRegisterCopy<u64, DTE_2::Register>;

/// DTE.Mode: the host page-table depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PagingMode {
    /// 000b: translation disabled; DMA is allowed or aborted by IR/IW alone.
    #[default]
    Disabled,
    /// 001b..110b: a page table of this many levels (1..=6).
    Levels(u8),
}

impl PagingMode {
    /// A translated mode of `levels` levels, if 1..=6.
    pub const fn levels(levels: u8) -> Option<Self> {
        if levels >= 1 && levels <= 6 {
            Some(Self::Levels(levels))
        } else {
            None
        }
    }

    /// The field encoding.
    pub const fn field(self) -> u64 {
        match self {
            Self::Disabled => 0,
            Self::Levels(n) => n as u64,
        }
    }
}

/// DTE.IoCtl: port I/O requests from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IoCtl {
    /// 00b: target-aborted.
    #[default]
    Abort,
    /// 01b: forwarded untranslated.
    Forward,
    /// 10b: translated through the I/O page table.
    Translate,
}

/// DTE.SysMgt: requests to the system management address range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SysMgt {
    /// 00b: target-aborted.
    #[default]
    Blocked,
    /// 01b: all system management messages forwarded untranslated.
    ForwardAll,
    /// 10b: INTx messages forwarded untranslated, the others blocked.
    ForwardIntx,
    /// 11b: translated through the I/O page table.
    Translate,
}

/// DTE.IntCtl: fixed and arbitrated interrupts from the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IntCtl {
    /// 00b: target-aborted.
    #[default]
    Abort,
    /// 01b: forwarded unmapped.
    Forward,
    /// 10b: remapped through the interrupt remapping table.
    Remap,
}

/// The interrupt half of a DTE (bits `[191:128]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Interrupts {
    /// IV: the fields below are valid. With IV=0 interrupts pass unmapped.
    pub iv: bool,
    /// IntTabLen: log2 of the number of IRTEs (0..=11).
    pub int_tab_len: u8,
    /// IG: ignore (drop silently) interrupts without a valid IRTE.
    pub ig: bool,
    /// Interrupt Table Root Pointer (64-byte granular field; we require 128).
    pub table: PhysAddr,
    /// InitPass.
    pub init_pass: bool,
    /// EIntPass.
    pub eint_pass: bool,
    /// NMIPass.
    pub nmi_pass: bool,
    /// IntCtl.
    pub int_ctl: IntCtl,
    /// Lint0Pass.
    pub lint0_pass: bool,
    /// Lint1Pass.
    pub lint1_pass: bool,
}

/// The guest (v2) translation fields: GV, GLX, GCR3 table root, GIoV, GPRP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Guest {
    /// GV: guest translation valid.
    pub gv: bool,
    /// GLX: GCR3 table levels (raw).
    pub glx: u8,
    /// GCR3 Table Root Pointer (4 KiB aligned).
    pub gcr3_root: PhysAddr,
    /// GIoV: guest I/O protection valid.
    pub giov: bool,
    /// GPRP: guest PPR response with PASID.
    pub gprp: bool,
}

/// A Device Table Entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Dte {
    /// V.
    pub v: bool,
    /// TV.
    pub tv: bool,
    /// HAD (raw 2 bits).
    pub had: u8,
    /// Mode.
    pub mode: PagingMode,
    /// Host Page Table Root Pointer (4 KiB aligned).
    pub pt_root: PhysAddr,
    /// PPR.
    pub ppr: bool,
    /// Guest translation fields.
    pub guest: Guest,
    /// IR.
    pub ir: bool,
    /// IW.
    pub iw: bool,
    /// DomainID.
    pub domain: DomainId,
    /// I: IOTLB (ATS) enable.
    pub iotlb: bool,
    /// SE.
    pub se: bool,
    /// SA.
    pub sa: bool,
    /// IoCtl.
    pub ioctl: IoCtl,
    /// Cache.
    pub cache: bool,
    /// SD.
    pub sd: bool,
    /// EX.
    pub ex: bool,
    /// SysMgt.
    pub sysmgt: SysMgt,
    /// The interrupt fields.
    pub int: Interrupts,
}

/// Why a DTE was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DteError {
    /// A field holds a reserved encoding.
    Reserved {
        /// Spec name of the field.
        field: &'static str,
        /// The value.
        value: u64,
    },
    /// Bits set outside the modelled fields (reserved, or features we do not
    /// model such as word 3's attribute override).
    UnmodelledBits {
        /// Which 64-bit word.
        word: u8,
        /// The offending bits.
        bits: u64,
    },
    /// An address is misaligned or above 2^52.
    BadAddress {
        /// Spec name of the field.
        field: &'static str,
        /// The address.
        addr: PhysAddr,
    },
    /// A page-table depth outside 1..=6.
    BadLevels(u8),
    /// An interrupt table size that is not a power of two in 1..=2048.
    BadIntTabEntries(u32),
    /// The IOMMU cannot walk this many levels (EFR.HATS).
    TooManyLevels {
        /// DTE.Mode.
        mode: u8,
        /// EFR.HATS levels.
        hats: u8,
    },
}

impl fmt::Display for DteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reserved { field, value } => write!(f, "DTE.{field}: reserved encoding {value:#x}"),
            Self::UnmodelledBits { word, bits } => {
                write!(f, "DTE word {word}: unmodelled bits {bits:#018x} set")
            }
            Self::BadAddress { field, addr } => write!(f, "DTE.{field}: bad address {addr:#x}"),
            Self::BadLevels(n) => write!(f, "DTE.Mode: {n} levels not in 1..=6"),
            Self::BadIntTabEntries(n) => {
                write!(f, "DTE.IntTabLen: {n} entries not a power of two in 1..=2048")
            }
            Self::TooManyLevels { mode, hats } => {
                write!(f, "DTE.Mode {mode} exceeds EFR.HATS ({hats} levels)")
            }
        }
    }
}

const fn addr_ok(addr: PhysAddr, align: u64) -> bool {
    addr.0 & (align - 1) == 0 && addr.0 >> 52 == 0
}

fn mask<R: tock_registers::RegisterLongName>(fields: &[tock_registers::fields::Field<u64, R>]) -> u64 {
    fields.iter().fold(0, |m, f| m | (f.mask << f.shift))
}

fn allowed() -> [u64; 4] {
    use DTE_0 as A;
    use DTE_1 as B;
    use DTE_2 as C;
    [
        mask(&[
            A::V,
            A::TV,
            A::HAD,
            A::MODE,
            A::PT_ROOT,
            A::PPR,
            A::GPRP,
            A::GIOV,
            A::GV,
            A::GLX,
            A::GCR3_LO,
            A::IR,
            A::IW,
        ]),
        mask(&[
            B::DOMAIN_ID,
            B::GCR3_MID,
            B::IOTLB,
            B::SE,
            B::SA,
            B::IOCTL,
            B::CACHE,
            B::SD,
            B::EX,
            B::SYSMGT,
            B::GCR3_HI,
        ]),
        mask(&[
            C::IV,
            C::INT_TAB_LEN,
            C::IG,
            C::INT_TAB_ROOT,
            C::INIT_PASS,
            C::EINT_PASS,
            C::NMI_PASS,
            C::INT_CTL,
            C::LINT0_PASS,
            C::LINT1_PASS,
        ]),
        0,
    ]
}

impl Dte {
    /// All DMA, interrupts and special requests from the device are refused
    /// (the secure default for every DeviceID nothing is assigned to):
    /// V=1, TV=1, Mode=000b with IR=IW=0 aborts DMA; IV=1 with IntCtl=00b
    /// aborts fixed and arbitrated interrupts without needing a table, and
    /// the pass bits, IoCtl=00b and SysMgt=00b refuse the rest. Faults are
    /// logged (SE=SA=0).
    pub fn blocked() -> Self {
        Self {
            v: true,
            tv: true,
            int: Interrupts { iv: true, int_ctl: IntCtl::Abort, ..Interrupts::default() },
            ..Self::default()
        }
    }

    /// DMA passes untranslated (Mode=000b, IR=IW=1); interrupts stay blocked
    /// as in [`Dte::blocked`]. Only for an explicit, logged configuration
    /// choice: the device can reach all of memory.
    pub fn passthrough(domain: DomainId) -> Self {
        Self { ir: true, iw: true, domain, ..Self::blocked() }
    }

    /// DMA translated by the `levels`-level host page table at `root`,
    /// tagged `domain`, with DTE-level read/write permission `ir`/`iw` (ANDed
    /// with each PDE/PTE's). Interrupts stay blocked until
    /// [`Dte::with_interrupt_remapping`].
    pub fn translated(
        root: PhysAddr,
        levels: u8,
        domain: DomainId,
        ir: bool,
        iw: bool,
    ) -> Result<Self, DteError> {
        let mode = PagingMode::levels(levels).ok_or(DteError::BadLevels(levels))?;
        if !addr_ok(root, 0x1000) {
            return Err(DteError::BadAddress { field: "HostPageTableRootPtr", addr: root });
        }
        Ok(Self { mode, pt_root: root, domain, ir, iw, ..Self::blocked() })
    }

    /// Remaps fixed and arbitrated interrupts through the table of `entries`
    /// IRTEs at `table` (IV=1, IntCtl=10b). The table must be 128-byte
    /// aligned (the field holds bits `[51:6]`; Linux and Xen align to 128).
    pub fn with_interrupt_remapping(mut self, table: PhysAddr, entries: u32) -> Result<Self, DteError> {
        if !entries.is_power_of_two() || entries > 2048 {
            return Err(DteError::BadIntTabEntries(entries));
        }
        if !addr_ok(table, 128) {
            return Err(DteError::BadAddress { field: "IntTabRootPtr", addr: table });
        }
        self.int.iv = true;
        self.int.int_ctl = IntCtl::Remap;
        self.int.int_tab_len = entries.trailing_zeros() as u8;
        self.int.table = table;
        Ok(self)
    }

    /// Whether DMA from the device is refused outright (valid, translation
    /// disabled, no permission).
    pub fn blocks_dma(&self) -> bool {
        self.v && self.tv && self.mode == PagingMode::Disabled && !self.ir && !self.iw
    }

    /// Checks the entry against the IOMMU's features.
    pub fn check(&self, efr: &Efr) -> Result<(), DteError> {
        if let PagingMode::Levels(n) = self.mode {
            let hats = efr.hats.levels();
            if n > hats {
                return Err(DteError::TooManyLevels { mode: n, hats });
            }
        }
        Ok(())
    }

    /// The four 64-bit words, word 0 first (bits `[63:0]`).
    pub fn encode(&self) -> [u64; 4] {
        let g = &self.guest;
        let gcr3 = g.gcr3_root.0 >> 12;
        let mut w0 = W0::new(0);
        w0.write(
            DTE_0::V.val(u64::from(self.v))
                + DTE_0::TV.val(u64::from(self.tv))
                + DTE_0::HAD.val(u64::from(self.had))
                + DTE_0::MODE.val(self.mode.field())
                + DTE_0::PT_ROOT.val(self.pt_root.0 >> 12)
                + DTE_0::PPR.val(u64::from(self.ppr))
                + DTE_0::GPRP.val(u64::from(g.gprp))
                + DTE_0::GIOV.val(u64::from(g.giov))
                + DTE_0::GV.val(u64::from(g.gv))
                + DTE_0::GLX.val(u64::from(g.glx))
                + DTE_0::GCR3_LO.val(gcr3 & 0x7)
                + DTE_0::IR.val(u64::from(self.ir))
                + DTE_0::IW.val(u64::from(self.iw)),
        );
        let mut w1 = W1::new(0);
        w1.write(
            DTE_1::DOMAIN_ID.val(u64::from(self.domain.0))
                + DTE_1::GCR3_MID.val((gcr3 >> 3) & 0xffff)
                + DTE_1::IOTLB.val(u64::from(self.iotlb))
                + DTE_1::SE.val(u64::from(self.se))
                + DTE_1::SA.val(u64::from(self.sa))
                + DTE_1::IOCTL.val(self.ioctl as u64)
                + DTE_1::CACHE.val(u64::from(self.cache))
                + DTE_1::SD.val(u64::from(self.sd))
                + DTE_1::EX.val(u64::from(self.ex))
                + DTE_1::SYSMGT.val(self.sysmgt as u64)
                + DTE_1::GCR3_HI.val(gcr3 >> 19),
        );
        let i = &self.int;
        let mut w2 = W2::new(0);
        w2.write(
            DTE_2::IV.val(u64::from(i.iv))
                + DTE_2::INT_TAB_LEN.val(u64::from(i.int_tab_len))
                + DTE_2::IG.val(u64::from(i.ig))
                + DTE_2::INT_TAB_ROOT.val(i.table.0 >> 6)
                + DTE_2::INIT_PASS.val(u64::from(i.init_pass))
                + DTE_2::EINT_PASS.val(u64::from(i.eint_pass))
                + DTE_2::NMI_PASS.val(u64::from(i.nmi_pass))
                + DTE_2::INT_CTL.val(i.int_ctl as u64)
                + DTE_2::LINT0_PASS.val(u64::from(i.lint0_pass))
                + DTE_2::LINT1_PASS.val(u64::from(i.lint1_pass)),
        );
        [w0.get(), w1.get(), w2.get(), 0]
    }

    /// Parses four words (as read from the device table).
    pub fn decode(words: [u64; 4]) -> Result<Self, DteError> {
        for (i, (w, ok)) in words.iter().zip(allowed()).enumerate() {
            if w & !ok != 0 {
                return Err(DteError::UnmodelledBits { word: i as u8, bits: w & !ok });
            }
        }
        let w0 = W0::new(words[0]);
        let w1 = W1::new(words[1]);
        let w2 = W2::new(words[2]);
        let reserved = |field, value| DteError::Reserved { field, value };
        let mode = match w0.read(DTE_0::MODE) {
            0 => PagingMode::Disabled,
            7 => return Err(reserved("Mode", 7)),
            n => PagingMode::Levels(n as u8),
        };
        let ioctl = match w1.read(DTE_1::IOCTL) {
            0 => IoCtl::Abort,
            1 => IoCtl::Forward,
            2 => IoCtl::Translate,
            v => return Err(reserved("IoCtl", v)),
        };
        let sysmgt = match w1.read(DTE_1::SYSMGT) {
            0 => SysMgt::Blocked,
            1 => SysMgt::ForwardAll,
            2 => SysMgt::ForwardIntx,
            _ => SysMgt::Translate,
        };
        let int_ctl = match w2.read(DTE_2::INT_CTL) {
            0 => IntCtl::Abort,
            1 => IntCtl::Forward,
            2 => IntCtl::Remap,
            v => return Err(reserved("IntCtl", v)),
        };
        let int_tab_len = w2.read(DTE_2::INT_TAB_LEN);
        if int_tab_len > 11 {
            return Err(reserved("IntTabLen", int_tab_len));
        }
        let gcr3 =
            w0.read(DTE_0::GCR3_LO) | (w1.read(DTE_1::GCR3_MID) << 3) | (w1.read(DTE_1::GCR3_HI) << 19);
        Ok(Self {
            v: w0.is_set(DTE_0::V),
            tv: w0.is_set(DTE_0::TV),
            had: w0.read(DTE_0::HAD) as u8,
            mode,
            pt_root: PhysAddr(w0.read(DTE_0::PT_ROOT) << 12),
            ppr: w0.is_set(DTE_0::PPR),
            guest: Guest {
                gv: w0.is_set(DTE_0::GV),
                glx: w0.read(DTE_0::GLX) as u8,
                gcr3_root: PhysAddr(gcr3 << 12),
                giov: w0.is_set(DTE_0::GIOV),
                gprp: w0.is_set(DTE_0::GPRP),
            },
            ir: w0.is_set(DTE_0::IR),
            iw: w0.is_set(DTE_0::IW),
            domain: DomainId(w1.read(DTE_1::DOMAIN_ID) as u16),
            iotlb: w1.is_set(DTE_1::IOTLB),
            se: w1.is_set(DTE_1::SE),
            sa: w1.is_set(DTE_1::SA),
            ioctl,
            cache: w1.is_set(DTE_1::CACHE),
            sd: w1.is_set(DTE_1::SD),
            ex: w1.is_set(DTE_1::EX),
            sysmgt,
            int: Interrupts {
                iv: w2.is_set(DTE_2::IV),
                int_tab_len: int_tab_len as u8,
                ig: w2.is_set(DTE_2::IG),
                table: PhysAddr(w2.read(DTE_2::INT_TAB_ROOT) << 6),
                init_pass: w2.is_set(DTE_2::INIT_PASS),
                eint_pass: w2.is_set(DTE_2::EINT_PASS),
                nmi_pass: w2.is_set(DTE_2::NMI_PASS),
                int_ctl,
                lint0_pass: w2.is_set(DTE_2::LINT0_PASS),
                lint1_pass: w2.is_set(DTE_2::LINT1_PASS),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;

    // Expected values are written from the DTE field table (2.2.2): bit
    // positions are relative to the 256-bit entry; word n holds bits
    // [64n+63:64n].

    const fn bit(n: u32) -> u64 {
        1 << n
    }

    #[test]
    fn blocked_entry() {
        // V [0], TV [1], Mode [11:9] = 000b, IR [61] = IW [62] = 0;
        // IV [128] = 1, IntCtl [189:188] = 00b.
        let w = Dte::blocked().encode();
        assert_eq!(w, [0b11, 0, 1, 0]);
        assert!(Dte::blocked().blocks_dma());
        assert_eq!(Dte::decode(w), Ok(Dte::blocked()));
    }

    #[test]
    fn passthrough_entry() {
        // IR [61], IW [62], DomainID [79:64].
        let w = Dte::passthrough(DomainId(0x0102)).encode();
        assert_eq!(w, [0b11 | bit(61) | bit(62), 0x0102, 1, 0]);
        assert!(!Dte::passthrough(DomainId(0)).blocks_dma());
    }

    #[test]
    fn translated_entry() {
        // Mode [11:9] = 3 levels, Host Page Table Root Pointer [51:12].
        let d = Dte::translated(PhysAddr(0x000f_ffff_ffff_f000), 3, DomainId(0xbeef), true, false).unwrap();
        let w = d.encode();
        assert_eq!(w[0], 0b11 | (3 << 9) | 0x000f_ffff_ffff_f000 | bit(61));
        assert_eq!(w[1], 0xbeef);
        assert_eq!(Dte::decode(w), Ok(d));
        for levels in 1..=6u8 {
            let w = Dte::translated(PhysAddr(0x1000), levels, DomainId(1), true, true).unwrap().encode();
            assert_eq!((w[0] >> 9) & 7, u64::from(levels));
        }
        assert_eq!(
            Dte::translated(PhysAddr(0x1000), 0, DomainId(1), true, true),
            Err(DteError::BadLevels(0))
        );
        assert_eq!(
            Dte::translated(PhysAddr(0x1000), 7, DomainId(1), true, true),
            Err(DteError::BadLevels(7))
        );
        assert!(matches!(
            Dte::translated(PhysAddr(0x1800), 4, DomainId(1), true, true),
            Err(DteError::BadAddress { field: "HostPageTableRootPtr", .. })
        ));
        assert!(Dte::translated(PhysAddr(1 << 52), 4, DomainId(1), true, true).is_err());
    }

    #[test]
    fn interrupt_fields() {
        // IV [128], IntTabLen [132:129], IG [133], IntTabRootPtr [179:134],
        // IntCtl [189:188] = 10b (remapped).
        let d = Dte::blocked().with_interrupt_remapping(PhysAddr(0x12_3480), 512).unwrap();
        let w = d.encode();
        assert_eq!(w[2], 1 | (9 << 1) | 0x12_3480 | (0b10 << 60));
        assert!(Dte::blocked().with_interrupt_remapping(PhysAddr(0x40), 1).is_err(), "128-byte alignment");
        assert_eq!(
            Dte::blocked().with_interrupt_remapping(PhysAddr(0x80), 4096),
            Err(DteError::BadIntTabEntries(4096))
        );
        assert_eq!(
            Dte::blocked().with_interrupt_remapping(PhysAddr(0x80), 2048).unwrap().int.int_tab_len,
            11
        );
        // InitPass [184], EIntPass [185], NMIPass [186], Lint0Pass [190],
        // Lint1Pass [191], IG [133].
        let mut d = Dte::blocked();
        d.int.init_pass = true;
        d.int.eint_pass = true;
        d.int.nmi_pass = true;
        d.int.lint0_pass = true;
        d.int.lint1_pass = true;
        d.int.ig = true;
        assert_eq!(
            d.encode()[2],
            1 | bit(5) | bit(184 - 128) | bit(185 - 128) | bit(186 - 128) | bit(190 - 128) | bit(191 - 128)
        );
    }

    #[test]
    fn control_bits_of_word1() {
        // I [96], SE [97], SA [98], IoCtl [100:99], Cache [101], SD [102],
        // EX [103], SysMgt [105:104].
        let mut d = Dte::blocked();
        d.iotlb = true;
        d.se = true;
        d.sa = true;
        d.ioctl = IoCtl::Translate;
        d.cache = true;
        d.sd = true;
        d.ex = true;
        d.sysmgt = SysMgt::ForwardIntx;
        let w1 = d.encode()[1];
        assert_eq!(
            w1,
            bit(96 - 64)
                | bit(97 - 64)
                | bit(98 - 64)
                | (0b10 << (99 - 64))
                | bit(101 - 64)
                | bit(102 - 64)
                | bit(103 - 64)
                | (0b10 << (104 - 64))
        );
        assert_eq!(Dte::decode(d.encode()), Ok(d));
    }

    #[test]
    fn guest_fields_and_gcr3_pieces() {
        // PPR [52], GPRP [53], GIoV [54], GV [55], GLX [57:56], HAD [8:7];
        // GCR3 root [14:12] at [60:58], [30:15] at [95:80], [51:31] at [127:107].
        let gcr3 = PhysAddr((0x1f_ffff << 31) | (0xffff << 15) | (0b101 << 12));
        let mut d = Dte::blocked();
        d.ppr = true;
        d.had = 0b11;
        d.guest = Guest { gv: true, glx: 1, gcr3_root: gcr3, giov: true, gprp: true };
        let w = d.encode();
        assert_eq!(
            w[0],
            0b11 | (0b11 << 7) | bit(52) | bit(53) | bit(54) | bit(55) | (1 << 56) | (0b101 << 58)
        );
        assert_eq!(w[1], (0xffff << 16) | (0x1f_ffff << 43));
        assert_eq!(Dte::decode(w).unwrap().guest.gcr3_root, gcr3);
    }

    #[test]
    fn decode_rejects_reserved() {
        let w = Dte::blocked().encode();
        assert_eq!(
            Dte::decode([w[0] | (7 << 9), w[1], w[2], 0]),
            Err(DteError::Reserved { field: "Mode", value: 7 })
        );
        assert_eq!(
            Dte::decode([w[0], w[1] | (3 << 35), w[2], 0]),
            Err(DteError::Reserved { field: "IoCtl", value: 3 })
        );
        assert_eq!(
            Dte::decode([w[0], w[1], w[2] | (3 << 60), 0]),
            Err(DteError::Reserved { field: "IntCtl", value: 3 })
        );
        assert_eq!(
            Dte::decode([w[0], w[1], w[2] | (12 << 1), 0]),
            Err(DteError::Reserved { field: "IntTabLen", value: 12 })
        );
        // Reserved bits [6:2], [63], [106], [183:180], [187] and word 3.
        assert_eq!(
            Dte::decode([w[0] | bit(2), w[1], w[2], 0]),
            Err(DteError::UnmodelledBits { word: 0, bits: bit(2) })
        );
        assert_eq!(
            Dte::decode([w[0] | bit(63), w[1], w[2], 0]).unwrap_err(),
            DteError::UnmodelledBits { word: 0, bits: bit(63) }
        );
        assert!(Dte::decode([w[0], w[1] | bit(106 - 64), w[2], 0]).is_err());
        assert!(Dte::decode([w[0], w[1], w[2] | bit(180 - 128), 0]).is_err());
        assert!(Dte::decode([w[0], w[1], w[2] | bit(187 - 128), 0]).is_err());
        assert!(Dte::decode([w[0], w[1], w[2], 1]).is_err());
    }

    #[test]
    fn check_against_hats() {
        let d = Dte::translated(PhysAddr(0x1000), 6, DomainId(1), true, true).unwrap();
        assert_eq!(d.check(&Efr::decode(0)), Err(DteError::TooManyLevels { mode: 6, hats: 4 }));
        assert_eq!(d.check(&Efr::decode(2 << 10)), Ok(()));
        assert_eq!(Dte::blocked().check(&Efr::decode(0)), Ok(()));
    }

    fn valid_words() -> impl Strategy<Value = [u64; 4]> {
        let ok = allowed();
        (any::<[u64; 3]>(), 0u64..7, 0u64..3, 0u64..3, 0u64..12).prop_map(
            move |(r, mode, ioctl, intctl, len)| {
                let w0 = (r[0] & ok[0] & !(7 << 9)) | (mode << 9);
                let w1 = (r[1] & ok[1] & !(3 << 35)) | (ioctl << 35);
                let w2 = (r[2] & ok[2] & !(3 << 60) & !(0xf << 1)) | (intctl << 60) | (len << 1);
                [w0, w1, w2, 0]
            },
        )
    }

    proptest! {
        #[test]
        fn decode_encode_round_trip(w in valid_words()) {
            let d = Dte::decode(w).unwrap();
            prop_assert_eq!(d.encode(), w);
            prop_assert_eq!(Dte::decode(d.encode()), Ok(d));
        }

        #[test]
        fn decode_never_panics(w in any::<[u64; 4]>()) {
            if let Ok(d) = Dte::decode(w) {
                prop_assert_eq!(d.encode(), w);
            }
        }
    }
}
