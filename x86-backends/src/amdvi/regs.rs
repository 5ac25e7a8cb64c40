//! The IOMMU MMIO register block (48882 3.4): the control registers at the
//! base the PCI capability (or IVRS) gives, and the head/tail pointers and
//! Status register 8 KiB above it.
//!
//! Field names follow the spec (`Control.IommuEn` is `CONTROL::IOMMU_EN`,
//! `Status.EventOverflow` is `STATUS::EVENT_OVERFLOW`). All MMIO goes through
//! [`AmdViRegs`], the one seam between a driver and the device: a
//! `tock-registers` struct behind a reference the owner of the mapping hands
//! in, so this module needs no `unsafe`. Values read from a register are
//! decoded from a `LocalRegisterCopy` ([`Status::decode`], [`DevTabBase`],
//! [`RingBase`], [`crate::amdvi::caps::Efr::decode`]), so decoding is tested
//! on plain integers.

use core::fmt;

use iommu_common::addr::PhysAddr;
use tock_registers::interfaces::{Readable, Writeable};
use tock_registers::LocalRegisterCopy;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod fields {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// Device Table Base Address Register (MMIO offset 0x0000).
        pub DEV_TAB_BASE [
            /// Size: device table size in 4 KiB pages, minus one.
            SIZE OFFSET(0) NUMBITS(9) [],
            /// DevTabBase: bits `[51:12]` of the table's system physical address.
            DEV_TAB_BASE OFFSET(12) NUMBITS(40) []
        ],
        /// Command Buffer Base Address Register (0x0008), and the same layout
        /// for the Event Log (0x0010), PPR Log (0x0038) and their B copies.
        pub RING_BASE [
            /// ComBase / EventBase / PPRLogBase: bits `[51:12]` of the base.
            BASE OFFSET(12) NUMBITS(40) [],
            /// ComLen / EventLen / PPRLogLen: log2 of the number of entries
            /// (1000b = 256 entries ... 1111b = 32768; lower values reserved).
            LEN OFFSET(56) NUMBITS(4) []
        ],
        /// IOMMU Control Register (0x0018).
        pub CONTROL [
            /// IommuEn: translation and interrupt remapping enable.
            IOMMU_EN OFFSET(0) NUMBITS(1) [],
            /// HtTunEn: HyperTransport tunnel translation enable.
            HT_TUN_EN OFFSET(1) NUMBITS(1) [],
            /// EventLogEn: event logging enable.
            EVENT_LOG_EN OFFSET(2) NUMBITS(1) [],
            /// EventIntEn: event log interrupt enable.
            EVENT_INT_EN OFFSET(3) NUMBITS(1) [],
            /// ComWaitIntEn: COMPLETION_WAIT interrupt enable.
            COM_WAIT_INT_EN OFFSET(4) NUMBITS(1) [],
            /// InvTimeOut: device IOTLB invalidation timeout.
            INV_TIME_OUT OFFSET(5) NUMBITS(3) [
                None = 0, Ms1 = 1, Ms10 = 2, Ms100 = 3, S1 = 4, S10 = 5, S100 = 6
            ],
            /// PassPW: HyperTransport PassPW for DMA requests.
            PASS_PW OFFSET(8) NUMBITS(1) [],
            /// ResPassPW: HyperTransport PassPW for responses.
            RES_PASS_PW OFFSET(9) NUMBITS(1) [],
            /// Coherent: IOMMU table walks are coherent.
            COHERENT OFFSET(10) NUMBITS(1) [],
            /// Isoc: isochronous table walks.
            ISOC OFFSET(11) NUMBITS(1) [],
            /// CmdBufEn: command buffer enable.
            CMD_BUF_EN OFFSET(12) NUMBITS(1) [],
            /// PPRLogEn: peripheral page request log enable.
            PPR_LOG_EN OFFSET(13) NUMBITS(1) [],
            /// PPRIntEn: PPR log interrupt enable.
            PPR_INT_EN OFFSET(14) NUMBITS(1) [],
            /// PPREn: peripheral page request processing enable.
            PPR_EN OFFSET(15) NUMBITS(1) [],
            /// GTEn: guest translation enable.
            GT_EN OFFSET(16) NUMBITS(1) [],
            /// GAEn: guest virtual APIC enable.
            GA_EN OFFSET(17) NUMBITS(1) [],
            /// CRW: reserved for future use.
            CRW OFFSET(18) NUMBITS(4) [],
            /// SmiFEn: SMI filter enable.
            SMIF_EN OFFSET(22) NUMBITS(1) [],
            /// SlfWBdis: self write-back disable.
            SLF_WB_DIS OFFSET(23) NUMBITS(1) [],
            /// SmiFLogEn: SMI filter log enable.
            SMIF_LOG_EN OFFSET(24) NUMBITS(1) [],
            /// GAMEn: guest virtual APIC mode enable.
            GAM_EN OFFSET(25) NUMBITS(3) [],
            /// GALogEn: guest virtual APIC log enable.
            GA_LOG_EN OFFSET(28) NUMBITS(1) [],
            /// GAIntEn: guest virtual APIC interrupt enable.
            GA_INT_EN OFFSET(29) NUMBITS(1) [],
            /// DualPprLogEn.
            DUAL_PPR_LOG_EN OFFSET(30) NUMBITS(2) [],
            /// DualEventLogEn.
            DUAL_EVENT_LOG_EN OFFSET(32) NUMBITS(2) [],
            /// DevTblSegEn: device table segmentation.
            DEV_TBL_SEG_EN OFFSET(34) NUMBITS(3) [],
            /// PrivAbrtEn: privilege abort enable.
            PRIV_ABRT_EN OFFSET(37) NUMBITS(2) [],
            /// PprAutoRspEn.
            PPR_AUTO_RSP_EN OFFSET(39) NUMBITS(1) [],
            /// MarcEn: memory address routing and control enable.
            MARC_EN OFFSET(40) NUMBITS(1) [],
            /// BlkStopMrkEn: block StopMark messages.
            BLK_STOP_MRK_EN OFFSET(41) NUMBITS(1) [],
            /// PprAutoRspAon.
            PPR_AUTO_RSP_AON OFFSET(42) NUMBITS(1) [],
            /// EPHEn: enhanced PPR handling enable.
            EPH_EN OFFSET(45) NUMBITS(1) [],
            /// HADUpdate: host access/dirty bit updates.
            HAD_UPDATE OFFSET(46) NUMBITS(2) [],
            /// GDUpdateDis: guest dirty bit update disable.
            GD_UPDATE_DIS OFFSET(48) NUMBITS(1) [],
            /// XTEn: x2APIC interrupt remapping (128-bit IRTEs, 32-bit destinations).
            XT_EN OFFSET(50) NUMBITS(1) [],
            /// IntCapXTEn: the IOMMU's own interrupts use the XT interrupt control registers.
            INT_CAP_XT_EN OFFSET(51) NUMBITS(1) [],
            /// GAUpdateDis: guest access bit update disable.
            GA_UPDATE_DIS OFFSET(54) NUMBITS(1) [],
            /// IRTCacheDis: interrupt remapping table caching disable.
            IRT_CACHE_DIS OFFSET(59) NUMBITS(1) []
        ],
        /// Exclusion Range Base Register (0x0020).
        pub EXCLUSION_BASE [
            /// ExEn: exclusion range enable.
            EX_EN OFFSET(0) NUMBITS(1) [],
            /// Allow: the range applies to every device, not only DTE.EX ones.
            ALLOW OFFSET(1) NUMBITS(1) [],
            /// ExclRangeBaseAddr `[51:12]`.
            EXCLUSION_BASE OFFSET(12) NUMBITS(40) []
        ],
        /// Exclusion Range Limit Register (0x0028); bits `[11:0]` read as ones.
        pub EXCLUSION_LIMIT [
            /// ExclRangeLimit `[51:12]`.
            EXCLUSION_LIMIT OFFSET(12) NUMBITS(40) []
        ],
        /// Extended Feature Register (0x0030), decoded by [`crate::amdvi::caps::Efr`].
        pub EFR [
            /// PreFSup: PREFETCH_IOMMU_PAGES supported.
            PREF_SUP OFFSET(0) NUMBITS(1) [],
            /// PPRSup: peripheral page requests supported.
            PPR_SUP OFFSET(1) NUMBITS(1) [],
            /// XTSup: x2APIC supported.
            XT_SUP OFFSET(2) NUMBITS(1) [],
            /// NXSup: no-execute and privilege level protection supported.
            NX_SUP OFFSET(3) NUMBITS(1) [],
            /// GTSup: guest translation supported.
            GT_SUP OFFSET(4) NUMBITS(1) [],
            /// IASup: INVALIDATE_IOMMU_ALL supported.
            IA_SUP OFFSET(6) NUMBITS(1) [],
            /// GASup: guest virtual APIC supported.
            GA_SUP OFFSET(7) NUMBITS(1) [],
            /// HESup: hardware error registers supported.
            HE_SUP OFFSET(8) NUMBITS(1) [],
            /// PCSup: performance counters supported.
            PC_SUP OFFSET(9) NUMBITS(1) [],
            /// HATS: host address translation size (00b 4, 01b 5, 10b 6 levels).
            HATS OFFSET(10) NUMBITS(2) [],
            /// GATS: guest address translation size (00b 4, 01b 5 levels).
            GATS OFFSET(12) NUMBITS(2) [],
            /// GLXSup: guest CR3 table levels supported.
            GLX_SUP OFFSET(14) NUMBITS(2) [],
            /// SmiFSup: SMI filter register support.
            SMIF_SUP OFFSET(16) NUMBITS(2) [],
            /// SmiFRC: SMI filter register count.
            SMIF_RC OFFSET(18) NUMBITS(3) [],
            /// GAMSup: guest virtual APIC modes supported.
            GAM_SUP OFFSET(21) NUMBITS(3) [],
            /// DualPprLogSup.
            DUAL_PPR_LOG_SUP OFFSET(24) NUMBITS(2) [],
            /// DualEventLogSup.
            DUAL_EVENT_LOG_SUP OFFSET(28) NUMBITS(2) [],
            /// PASmax: largest PASID is 2^(PASmax+1) - 1.
            PAS_MAX OFFSET(32) NUMBITS(5) [],
            /// USSup: user/supervisor page protection supported.
            US_SUP OFFSET(37) NUMBITS(1) [],
            /// DevTblSegSup: device table segments supported.
            DEV_TBL_SEG_SUP OFFSET(38) NUMBITS(2) [],
            /// PprOvrflwEarlySup.
            PPR_OVRFLW_EARLY_SUP OFFSET(40) NUMBITS(1) [],
            /// PprAutoRspSup.
            PPR_AUTO_RSP_SUP OFFSET(41) NUMBITS(1) [],
            /// MarcSup.
            MARC_SUP OFFSET(42) NUMBITS(2) [],
            /// BlkStopMrkSup.
            BLK_STOP_MRK_SUP OFFSET(44) NUMBITS(1) [],
            /// PerfOptSup.
            PERF_OPT_SUP OFFSET(45) NUMBITS(1) [],
            /// MsiCapMmioSup.
            MSI_CAP_MMIO_SUP OFFSET(46) NUMBITS(1) [],
            /// GIoSup: guest I/O protection supported.
            GIO_SUP OFFSET(48) NUMBITS(1) [],
            /// HASup: host access (A/D) bits supported.
            HA_SUP OFFSET(49) NUMBITS(1) [],
            /// EPHSup: enhanced PPR handling supported.
            EPH_SUP OFFSET(50) NUMBITS(1) [],
            /// AttrFWSup: attribute forwarding supported.
            ATTR_FW_SUP OFFSET(51) NUMBITS(1) [],
            /// HDSup: host dirty bit supported.
            HD_SUP OFFSET(52) NUMBITS(1) [],
            /// InvIotlbTypeSup.
            INV_IOTLB_TYPE_SUP OFFSET(54) NUMBITS(1) [],
            /// GAUpdateDisSup.
            GA_UPDATE_DIS_SUP OFFSET(61) NUMBITS(1) [],
            /// ForcePhyDestSup.
            FORCE_PHYS_DEST_SUP OFFSET(62) NUMBITS(1) [],
            /// SNPSup: secure nested paging supported.
            SNP_SUP OFFSET(63) NUMBITS(1) []
        ],
        /// Command buffer / event log / PPR log head and tail pointers
        /// (0x2000 .. 0x2078): a byte offset into the ring, 16-byte entries.
        pub RING_PTR [
            /// Pointer `[18:4]`: entry index.
            PTR OFFSET(4) NUMBITS(15) []
        ],
        /// IOMMU Status Register (0x2020). Bits marked RW1C clear when written 1.
        pub STATUS [
            /// EventOverflow (RW1C): the event log overflowed; logging stopped.
            EVENT_OVERFLOW OFFSET(0) NUMBITS(1) [],
            /// EventLogInt (RW1C): an event was written with EventIntEn set.
            EVENT_LOG_INT OFFSET(1) NUMBITS(1) [],
            /// ComWaitInt (RW1C): a COMPLETION_WAIT with I=1 completed.
            COM_WAIT_INT OFFSET(2) NUMBITS(1) [],
            /// EventLogRun: event logging is running.
            EVENT_LOG_RUN OFFSET(3) NUMBITS(1) [],
            /// CmdBufRun: the command buffer is being processed.
            CMD_BUF_RUN OFFSET(4) NUMBITS(1) [],
            /// PprOverflow (RW1C).
            PPR_OVERFLOW OFFSET(5) NUMBITS(1) [],
            /// PprInt (RW1C).
            PPR_INT OFFSET(6) NUMBITS(1) [],
            /// PprLogRun.
            PPR_LOG_RUN OFFSET(7) NUMBITS(1) [],
            /// GALogRun.
            GA_LOG_RUN OFFSET(8) NUMBITS(1) [],
            /// GALOverflow (RW1C).
            GA_LOG_OVERFLOW OFFSET(9) NUMBITS(1) [],
            /// GAInt (RW1C).
            GA_INT OFFSET(10) NUMBITS(1) [],
            /// PprOvrflwB (RW1C).
            PPR_OVERFLOW_B OFFSET(11) NUMBITS(1) [],
            /// PprLogActive: which PPR log (A/B) is active.
            PPR_LOG_ACTIVE OFFSET(12) NUMBITS(1) [],
            /// EvtOvrflwB (RW1C).
            EVENT_OVERFLOW_B OFFSET(15) NUMBITS(1) [],
            /// EventLogActive: which event log (A/B) is active.
            EVENT_LOG_ACTIVE OFFSET(16) NUMBITS(1) [],
            /// PprOvrflwEarlyB (RW1C).
            PPR_OVERFLOW_EARLY_B OFFSET(17) NUMBITS(1) [],
            /// PprOverflowEarly (RW1C).
            PPR_OVERFLOW_EARLY OFFSET(18) NUMBITS(1) []
        ]
    ];
}
pub use fields::*;

// Generated register struct: its fields are documented with their offsets.
#[allow(missing_docs)]
mod block {
    use super::fields::*;
    use tock_registers::register_structs;
    use tock_registers::registers::{ReadOnly, ReadWrite};
    register_structs! {
        /// The MMIO register block (offsets from 48882 3.4).
        ///
        /// Registers the IOMMU changes under the driver's feet (Status, the
        /// tail pointers it writes, the hardware event registers) are
        /// `ReadWrite` (an `UnsafeCell`): tock's `ReadOnly` would tell Rust
        /// the bytes never change while referenced. Only the feature
        /// registers, which are constant, are `ReadOnly`.
        pub AmdViRegisterBlock {
            (0x0000 => pub dev_tab_base: ReadWrite<u64, DEV_TAB_BASE::Register>),
            (0x0008 => pub cmd_buf_base: ReadWrite<u64, RING_BASE::Register>),
            (0x0010 => pub event_log_base: ReadWrite<u64, RING_BASE::Register>),
            (0x0018 => pub control: ReadWrite<u64, CONTROL::Register>),
            (0x0020 => pub exclusion_base: ReadWrite<u64, EXCLUSION_BASE::Register>),
            (0x0028 => pub exclusion_limit: ReadWrite<u64, EXCLUSION_LIMIT::Register>),
            (0x0030 => pub efr: ReadOnly<u64, EFR::Register>),
            (0x0038 => pub ppr_log_base: ReadWrite<u64, RING_BASE::Register>),
            (0x0040 => pub hw_event_hi: ReadWrite<u64>),
            (0x0048 => pub hw_event_lo: ReadWrite<u64>),
            (0x0050 => pub hw_event_status: ReadWrite<u64>),
            (0x0058 => _reserved0),
            (0x00e0 => pub ga_log_base: ReadWrite<u64, RING_BASE::Register>),
            (0x00e8 => pub ga_log_tail_addr: ReadWrite<u64>),
            (0x00f0 => pub ppr_log_b_base: ReadWrite<u64, RING_BASE::Register>),
            (0x00f8 => pub event_log_b_base: ReadWrite<u64, RING_BASE::Register>),
            (0x0100 => _reserved1),
            (0x0170 => pub xt_gen_int_ctrl: ReadWrite<u64>),
            (0x0178 => pub xt_ppr_int_ctrl: ReadWrite<u64>),
            (0x0180 => pub xt_ga_log_int_ctrl: ReadWrite<u64>),
            (0x0188 => _reserved2),
            (0x01a0 => pub efr2: ReadOnly<u64>),
            (0x01a8 => _reserved3),
            (0x2000 => pub cmd_buf_head: ReadWrite<u64, RING_PTR::Register>),
            (0x2008 => pub cmd_buf_tail: ReadWrite<u64, RING_PTR::Register>),
            (0x2010 => pub event_log_head: ReadWrite<u64, RING_PTR::Register>),
            (0x2018 => pub event_log_tail: ReadWrite<u64, RING_PTR::Register>),
            (0x2020 => pub status: ReadWrite<u64, STATUS::Register>),
            (0x2028 => _reserved4),
            (0x2030 => pub ppr_log_head: ReadWrite<u64, RING_PTR::Register>),
            (0x2038 => pub ppr_log_tail: ReadWrite<u64, RING_PTR::Register>),
            (0x2040 => pub ga_log_head: ReadWrite<u64>),
            (0x2048 => pub ga_log_tail: ReadWrite<u64>),
            (0x2050 => pub ppr_log_b_head: ReadWrite<u64, RING_PTR::Register>),
            (0x2058 => pub ppr_log_b_tail: ReadWrite<u64, RING_PTR::Register>),
            (0x2060 => _reserved5),
            (0x2070 => pub event_log_b_head: ReadWrite<u64, RING_PTR::Register>),
            (0x2078 => pub event_log_b_tail: ReadWrite<u64, RING_PTR::Register>),
            (0x2080 => @END),
        }
    }
}
pub use block::AmdViRegisterBlock;

/// Bytes of MMIO the register block spans (the IOMMU decodes 16 KiB at its
/// base, more with performance counters).
pub const REGS_SIZE: usize = 0x2080;

/// Bits of the Status register that are write-one-to-clear.
pub const STATUS_RW1C: u64 = (1 << 0)
    | (1 << 1)
    | (1 << 2)
    | (1 << 5)
    | (1 << 6)
    | (1 << 9)
    | (1 << 10)
    | (1 << 11)
    | (1 << 15)
    | (1 << 17)
    | (1 << 18);

/// The register block of one IOMMU: a driver's only access to the device.
///
/// Whoever maps the registers turns the mapping into a
/// `&AmdViRegisterBlock` (the one `unsafe` step, owned by the mapping code)
/// and hands it in; host tests hand in plain memory.
pub struct AmdViRegs<'a> {
    block: &'a AmdViRegisterBlock,
}

impl<'a> AmdViRegs<'a> {
    /// Wraps a register block.
    pub fn new(block: &'a AmdViRegisterBlock) -> Self {
        Self { block }
    }

    /// The raw register block.
    pub fn block(&self) -> &'a AmdViRegisterBlock {
        self.block
    }

    /// Reads the Extended Feature Register once.
    pub fn efr(&self) -> u64 {
        self.block.efr.get()
    }

    /// Reads and decodes the Status register.
    pub fn status(&self) -> Status {
        Status::decode(self.block.status.get())
    }

    /// Clears the RW1C Status bits set in `bits` (other bits are ignored).
    pub fn clear_status(&self, bits: u64) {
        self.block.status.set(bits & STATUS_RW1C);
    }

    /// Programs the device table base (IommuEn must be 0, 3.4).
    pub fn set_dev_tab(&self, base: DevTabBase) {
        self.block.dev_tab_base.set(base.encode());
    }

    /// Programs the command buffer base and length (CmdBufEn must be 0).
    pub fn set_cmd_buf(&self, ring: RingBase) {
        self.block.cmd_buf_base.set(ring.encode());
    }

    /// Programs the event log base and length (EventLogEn must be 0).
    pub fn set_event_log(&self, ring: RingBase) {
        self.block.event_log_base.set(ring.encode());
    }
}

/// Why a register value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegError {
    /// A base address is not 4 KiB aligned or does not fit in 52 bits.
    BadBase {
        /// Register name.
        reg: &'static str,
        /// The address.
        addr: PhysAddr,
    },
    /// A ring length outside 256..=32768 entries or not a power of two.
    BadLength {
        /// Register name.
        reg: &'static str,
        /// The requested entry count (or the raw field when decoding).
        value: u64,
    },
    /// A device table size outside 1..=512 pages.
    BadDevTabSize {
        /// The requested size in 4 KiB pages.
        pages: u32,
    },
}

impl fmt::Display for RegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadBase { reg, addr } => {
                write!(f, "{reg}: base {addr:#x} not 4 KiB aligned below 2^52")
            }
            Self::BadLength { reg, value } => {
                write!(f, "{reg}: length {value} not a power of two in 256..=32768 entries")
            }
            Self::BadDevTabSize { pages } => {
                write!(f, "Device Table Base: {pages} pages not in 1..=512")
            }
        }
    }
}

const fn valid_base(addr: PhysAddr) -> bool {
    addr.0 & 0xfff == 0 && addr.0 >> 52 == 0
}

/// Device Table Base Address Register value: the table and its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DevTabBase {
    base: PhysAddr,
    pages: u32,
}

impl DevTabBase {
    /// A device table of `pages` 4 KiB pages (128 DTEs each) at `base`.
    pub const fn new(base: PhysAddr, pages: u32) -> Result<Self, RegError> {
        if !valid_base(base) {
            return Err(RegError::BadBase { reg: "DevTabBase", addr: base });
        }
        if pages == 0 || pages > 512 {
            return Err(RegError::BadDevTabSize { pages });
        }
        Ok(Self { base, pages })
    }

    /// A device table with room for every DeviceID up to `last` (rounded up
    /// to whole pages of 128 entries).
    pub const fn covering(base: PhysAddr, last: u16) -> Result<Self, RegError> {
        Self::new(base, (last as u32) / 128 + 1)
    }

    /// Table base.
    pub const fn base(&self) -> PhysAddr {
        self.base
    }

    /// Size in 4 KiB pages.
    pub const fn pages(&self) -> u32 {
        self.pages
    }

    /// Number of DTEs (32 bytes each) the table holds.
    pub const fn entries(&self) -> u32 {
        self.pages * 128
    }

    /// The register value.
    pub fn encode(&self) -> u64 {
        let mut r = LocalRegisterCopy::<u64, DEV_TAB_BASE::Register>::new(0);
        r.write(
            DEV_TAB_BASE::SIZE.val(u64::from(self.pages - 1))
                + DEV_TAB_BASE::DEV_TAB_BASE.val(self.base.0 >> 12),
        );
        r.get()
    }

    /// Decodes a register value (total: every Size is valid).
    pub fn decode(v: u64) -> Self {
        let r = LocalRegisterCopy::<u64, DEV_TAB_BASE::Register>::new(v);
        Self {
            base: PhysAddr(r.read(DEV_TAB_BASE::DEV_TAB_BASE) << 12),
            pages: r.read(DEV_TAB_BASE::SIZE) as u32 + 1,
        }
    }
}

/// A ring base register (command buffer, event log, PPR log): base and
/// log2 of the entry count, entries being 16 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingBase {
    base: PhysAddr,
    log2_entries: u8,
}

impl RingBase {
    /// A ring of `entries` 16-byte entries at `base`: a power of two from
    /// 256 (4 KiB) to 32768 (512 KiB).
    pub const fn new(reg: &'static str, base: PhysAddr, entries: u32) -> Result<Self, RegError> {
        if !valid_base(base) {
            return Err(RegError::BadBase { reg, addr: base });
        }
        if !entries.is_power_of_two() || entries < 256 || entries > 32768 {
            return Err(RegError::BadLength { reg, value: entries as u64 });
        }
        Ok(Self { base, log2_entries: entries.trailing_zeros() as u8 })
    }

    /// Ring base.
    pub const fn base(&self) -> PhysAddr {
        self.base
    }

    /// Number of entries.
    pub const fn entries(&self) -> u32 {
        1 << self.log2_entries
    }

    /// Ring size in bytes.
    pub const fn bytes(&self) -> u64 {
        16 << self.log2_entries
    }

    /// The register value.
    pub fn encode(&self) -> u64 {
        let mut r = LocalRegisterCopy::<u64, RING_BASE::Register>::new(0);
        r.write(RING_BASE::BASE.val(self.base.0 >> 12) + RING_BASE::LEN.val(u64::from(self.log2_entries)));
        r.get()
    }

    /// Decodes a register value; a reserved length (below 1000b) is an error.
    pub fn decode(reg: &'static str, v: u64) -> Result<Self, RegError> {
        let r = LocalRegisterCopy::<u64, RING_BASE::Register>::new(v);
        let len = r.read(RING_BASE::LEN);
        if len < 8 {
            return Err(RegError::BadLength { reg, value: len });
        }
        Ok(Self { base: PhysAddr(r.read(RING_BASE::BASE) << 12), log2_entries: len as u8 })
    }
}

/// A head or tail pointer value: entry index `idx` is byte offset `idx * 16`.
pub fn ring_ptr(idx: u32) -> u64 {
    let mut r = LocalRegisterCopy::<u64, RING_PTR::Register>::new(0);
    r.write(RING_PTR::PTR.val(u64::from(idx)));
    r.get()
}

/// The entry index a head or tail pointer register holds.
pub fn ring_index(v: u64) -> u32 {
    LocalRegisterCopy::<u64, RING_PTR::Register>::new(v).read(RING_PTR::PTR) as u32
}

/// The Status register, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Status {
    /// EventOverflow: the event log filled up; the IOMMU stopped logging
    /// (EventLogRun clears) and later events are lost.
    pub event_overflow: bool,
    /// EventLogInt.
    pub event_log_int: bool,
    /// ComWaitInt.
    pub com_wait_int: bool,
    /// EventLogRun.
    pub event_log_run: bool,
    /// CmdBufRun.
    pub cmd_buf_run: bool,
    /// PprOverflow.
    pub ppr_overflow: bool,
    /// PprInt.
    pub ppr_int: bool,
    /// PprLogRun.
    pub ppr_log_run: bool,
    /// GALogRun.
    pub ga_log_run: bool,
    /// GALOverflow.
    pub ga_log_overflow: bool,
    /// GAInt.
    pub ga_int: bool,
    /// The raw value, for the bits not modelled above.
    pub raw: u64,
}

impl Status {
    /// Decodes a Status register value.
    pub fn decode(v: u64) -> Self {
        let r = LocalRegisterCopy::<u64, STATUS::Register>::new(v);
        Self {
            event_overflow: r.is_set(STATUS::EVENT_OVERFLOW),
            event_log_int: r.is_set(STATUS::EVENT_LOG_INT),
            com_wait_int: r.is_set(STATUS::COM_WAIT_INT),
            event_log_run: r.is_set(STATUS::EVENT_LOG_RUN),
            cmd_buf_run: r.is_set(STATUS::CMD_BUF_RUN),
            ppr_overflow: r.is_set(STATUS::PPR_OVERFLOW),
            ppr_int: r.is_set(STATUS::PPR_INT),
            ppr_log_run: r.is_set(STATUS::PPR_LOG_RUN),
            ga_log_run: r.is_set(STATUS::GA_LOG_RUN),
            ga_log_overflow: r.is_set(STATUS::GA_LOG_OVERFLOW),
            ga_int: r.is_set(STATUS::GA_INT),
            raw: v,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "status {:#x}", self.raw)?;
        let names = [
            (self.event_overflow, " EventOverflow"),
            (self.event_log_int, " EventLogInt"),
            (self.com_wait_int, " ComWaitInt"),
            (self.event_log_run, " EventLogRun"),
            (self.cmd_buf_run, " CmdBufRun"),
            (self.ppr_overflow, " PprOverflow"),
            (self.ga_log_overflow, " GALOverflow"),
        ];
        for (set, name) in names {
            if set {
                f.write_str(name)?;
            }
        }
        Ok(())
    }
}

/// Control.InvTimeOut: how long the IOMMU waits for a device IOTLB
/// invalidation before logging IOTLB_INV_TIMEOUT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvTimeOut {
    /// 000b: no timeout.
    None,
    /// 001b: 1 ms.
    Ms1,
    /// 010b: 10 ms.
    Ms10,
    /// 011b: 100 ms.
    Ms100,
    /// 100b: 1 s.
    S1,
    /// 101b: 10 s.
    S10,
    /// 110b: 100 s.
    S100,
}

impl InvTimeOut {
    /// The field encoding.
    pub const fn field(self) -> u64 {
        self as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    // Offsets from the MMIO register map in 48882 3.4.
    #[test]
    fn offsets_match_spec() {
        assert_eq!(offset_of!(AmdViRegisterBlock, dev_tab_base), 0x0000);
        assert_eq!(offset_of!(AmdViRegisterBlock, cmd_buf_base), 0x0008);
        assert_eq!(offset_of!(AmdViRegisterBlock, event_log_base), 0x0010);
        assert_eq!(offset_of!(AmdViRegisterBlock, control), 0x0018);
        assert_eq!(offset_of!(AmdViRegisterBlock, exclusion_base), 0x0020);
        assert_eq!(offset_of!(AmdViRegisterBlock, exclusion_limit), 0x0028);
        assert_eq!(offset_of!(AmdViRegisterBlock, efr), 0x0030);
        assert_eq!(offset_of!(AmdViRegisterBlock, ppr_log_base), 0x0038);
        assert_eq!(offset_of!(AmdViRegisterBlock, ga_log_base), 0x00e0);
        assert_eq!(offset_of!(AmdViRegisterBlock, xt_gen_int_ctrl), 0x0170);
        assert_eq!(offset_of!(AmdViRegisterBlock, efr2), 0x01a0);
        assert_eq!(offset_of!(AmdViRegisterBlock, cmd_buf_head), 0x2000);
        assert_eq!(offset_of!(AmdViRegisterBlock, cmd_buf_tail), 0x2008);
        assert_eq!(offset_of!(AmdViRegisterBlock, event_log_head), 0x2010);
        assert_eq!(offset_of!(AmdViRegisterBlock, event_log_tail), 0x2018);
        assert_eq!(offset_of!(AmdViRegisterBlock, status), 0x2020);
        assert_eq!(offset_of!(AmdViRegisterBlock, ppr_log_head), 0x2030);
        assert_eq!(offset_of!(AmdViRegisterBlock, ppr_log_tail), 0x2038);
        assert_eq!(offset_of!(AmdViRegisterBlock, event_log_b_tail), 0x2078);
        assert_eq!(core::mem::size_of::<AmdViRegisterBlock>(), REGS_SIZE);
    }

    #[test]
    fn control_bits() {
        // IommuEn 0, HtTunEn 1, EventLogEn 2, EventIntEn 3, ComWaitIntEn 4,
        // InvTimeOut [7:5], PassPW 8, ResPassPW 9, Coherent 10, Isoc 11,
        // CmdBufEn 12, PPRLogEn 13, PPRIntEn 14, PPREn 15, GTEn 16, GAEn 17,
        // XTEn 50.
        let cases: [(tock_registers::fields::FieldValue<u64, CONTROL::Register>, u64); 17] = [
            (CONTROL::IOMMU_EN::SET, 1 << 0),
            (CONTROL::HT_TUN_EN::SET, 1 << 1),
            (CONTROL::EVENT_LOG_EN::SET, 1 << 2),
            (CONTROL::EVENT_INT_EN::SET, 1 << 3),
            (CONTROL::COM_WAIT_INT_EN::SET, 1 << 4),
            (CONTROL::INV_TIME_OUT::S1, 0b100 << 5),
            (CONTROL::PASS_PW::SET, 1 << 8),
            (CONTROL::RES_PASS_PW::SET, 1 << 9),
            (CONTROL::COHERENT::SET, 1 << 10),
            (CONTROL::ISOC::SET, 1 << 11),
            (CONTROL::CMD_BUF_EN::SET, 1 << 12),
            (CONTROL::PPR_LOG_EN::SET, 1 << 13),
            (CONTROL::PPR_INT_EN::SET, 1 << 14),
            (CONTROL::PPR_EN::SET, 1 << 15),
            (CONTROL::GT_EN::SET, 1 << 16),
            (CONTROL::GA_EN::SET, 1 << 17),
            (CONTROL::XT_EN::SET, 1 << 50),
        ];
        for (fv, bits) in cases {
            let mut r = LocalRegisterCopy::<u64, CONTROL::Register>::new(0);
            r.write(fv);
            assert_eq!(r.get(), bits);
        }
        assert_eq!(InvTimeOut::Ms100.field(), 0b011);
    }

    #[test]
    fn dev_tab_base_layout() {
        // Size [8:0] = pages - 1; DevTabBase [51:12].
        let d = DevTabBase::new(PhysAddr(0x1234_5000), 512).unwrap();
        assert_eq!(d.encode(), 0x1234_5000 | 0x1ff);
        assert_eq!(DevTabBase::decode(d.encode()), d);
        assert_eq!(d.entries(), 65536);
        let d = DevTabBase::covering(PhysAddr(0x8000), 0x00ff).unwrap();
        assert_eq!(d.pages(), 2);
        assert_eq!(d.encode(), 0x8000 | 1);
        assert_eq!(
            DevTabBase::new(PhysAddr(0x1800), 1),
            Err(RegError::BadBase { reg: "DevTabBase", addr: PhysAddr(0x1800) })
        );
        assert_eq!(DevTabBase::new(PhysAddr(0x1000), 513), Err(RegError::BadDevTabSize { pages: 513 }));
        assert!(DevTabBase::new(PhysAddr(1 << 52), 1).is_err());
    }

    #[test]
    fn ring_base_layout() {
        // ComBase [51:12], ComLen [59:56]: 1000b = 256 entries (4 KiB).
        let r = RingBase::new("ComBase", PhysAddr(0xabc_d000), 256).unwrap();
        assert_eq!(r.encode(), 0xabc_d000 | (8 << 56));
        assert_eq!(r.bytes(), 4096);
        let r = RingBase::new("EventBase", PhysAddr(0x10_0000), 32768).unwrap();
        assert_eq!(r.encode(), 0x10_0000 | (15 << 56));
        assert_eq!(r.bytes(), 512 * 1024);
        assert_eq!(RingBase::decode("EventBase", r.encode()), Ok(r));
        assert!(RingBase::new("ComBase", PhysAddr(0x1000), 128).is_err());
        assert!(RingBase::new("ComBase", PhysAddr(0x1000), 65536).is_err());
        assert!(RingBase::new("ComBase", PhysAddr(0x1000), 300).is_err());
        assert_eq!(
            RingBase::decode("ComBase", 0x1000 | (7 << 56)),
            Err(RegError::BadLength { reg: "ComBase", value: 7 })
        );
    }

    #[test]
    fn ring_pointers_are_byte_offsets() {
        // Head/tail pointer [18:4]: entry 1 is byte 0x10.
        assert_eq!(ring_ptr(1), 0x10);
        assert_eq!(ring_ptr(0x7fff), 0x7fff0);
        assert_eq!(ring_index(0x7fff0), 0x7fff);
        assert_eq!(ring_index(0x1_2345_678f), 0x5678);
    }

    #[test]
    fn status_bits() {
        // EventOverflow 0, EventLogInt 1, ComWaitInt 2, EventLogRun 3,
        // CmdBufRun 4, PprOverflow 5, PprInt 6, PprLogRun 7, GALogRun 8,
        // GALOverflow 9, GAInt 10.
        let s = Status::decode(1);
        assert!(s.event_overflow && !s.event_log_run);
        let s = Status::decode(0b1_1000);
        assert!(s.event_log_run && s.cmd_buf_run && !s.event_overflow);
        assert!(Status::decode(1 << 2).com_wait_int);
        assert!(Status::decode(1 << 1).event_log_int);
        assert!(Status::decode(1 << 5).ppr_overflow);
        assert!(Status::decode(1 << 7).ppr_log_run);
        assert!(Status::decode(1 << 8).ga_log_run);
        assert!(Status::decode(1 << 9).ga_log_overflow);
        assert!(Status::decode(1 << 10).ga_int);
        assert_eq!(STATUS_RW1C & 0b1_1000, 0, "the Run bits are read-only");
        extern crate std;
        assert_eq!(std::format!("{}", Status::decode(0b1001)), "status 0x9 EventOverflow EventLogRun");
    }
}
