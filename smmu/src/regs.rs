//! SMMUv3 register pages (IHI 0070, chapter 6).
//!
//! Register page 0 holds identification, control, the Stream table base and
//! the Command queue; register page 1, 64 KiB above page 0, holds the
//! producer/consumer indices of the output queues (Event and PRI queue).
//! Field names follow the spec (`SMMU_CR0.SMMUEN`, `SMMU_IDR0.S2P`, ...).
//!
//! All MMIO goes through [`SmmuRegs`], the one seam between the driver and the
//! device: `tock-registers` structs over a pointer the caller hands in. The
//! hypervisor hands in its device mapping of the SMMU, host tests hand in
//! plain memory driven by a model of the SMMU.

use core::ptr::NonNull;

use tock_registers::registers::{ReadOnly, ReadWrite};

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod fields32 {
    use tock_registers::register_bitfields;
    register_bitfields! [u32,
        /// SMMU_IDR0: features (6.3.1).
        pub IDR0 [
            /// Stage 2 translation supported.
            S2P OFFSET(0) NUMBITS(1) [],
            /// Stage 1 translation supported.
            S1P OFFSET(1) NUMBITS(1) [],
            /// Translation table formats: bit 0 VMSAv8-32 LPAE, bit 1 VMSAv8-64.
            TTF OFFSET(2) NUMBITS(2) [],
            /// Coherent access to in-memory structures, queues and tables.
            COHACC OFFSET(4) NUMBITS(1) [],
            /// Broadcast TLB maintenance.
            BTM OFFSET(5) NUMBITS(1) [],
            /// Hardware translation table update (0 none, 1 Access flag, 2 Access and dirty).
            HTTU OFFSET(6) NUMBITS(2) [],
            /// Dormant hint (SMMU_STATUSR.DORMANT).
            DORMHINT OFFSET(8) NUMBITS(1) [],
            /// Hypervisor stage 1 contexts (EL2 StreamWorld).
            HYP OFFSET(9) NUMBITS(1) [],
            /// PCIe ATS.
            ATS OFFSET(10) NUMBITS(1) [],
            /// Non-secure stage 1 only ATS.
            NS1ATS OFFSET(11) NUMBITS(1) [],
            /// 16-bit ASIDs.
            ASID16 OFFSET(12) NUMBITS(1) [],
            /// Message-signalled interrupts.
            MSI OFFSET(13) NUMBITS(1) [],
            /// WFE wake-up events.
            SEV OFFSET(14) NUMBITS(1) [],
            /// Address translation operations.
            ATOS OFFSET(15) NUMBITS(1) [],
            /// PCIe Page Request Interface.
            PRI OFFSET(16) NUMBITS(1) [],
            /// VMID wildcard matching for TLB invalidation.
            VMW OFFSET(17) NUMBITS(1) [],
            /// 16-bit VMIDs.
            VMID16 OFFSET(18) NUMBITS(1) [],
            /// 2-level Context descriptor tables.
            CD2L OFFSET(19) NUMBITS(1) [],
            /// Virtual ATOS page.
            VATOS OFFSET(20) NUMBITS(1) [],
            /// Translation table endianness (0 mixed, 2 little, 3 big).
            TTENDIAN OFFSET(21) NUMBITS(2) [],
            /// ATS error recording.
            ATSRECERR OFFSET(23) NUMBITS(1) [],
            /// Stall model (0 stall and terminate, 1 terminate only, 2 stall forced).
            STALL_MODEL OFFSET(24) NUMBITS(2) [],
            /// Terminate model (1: CD.A must be 1, terminated transactions abort).
            TERM_MODEL OFFSET(26) NUMBITS(1) [],
            /// Multi-level Stream table support (0 linear only, 1 2-level).
            ST_LEVEL OFFSET(27) NUMBITS(2) [],
            /// Realm Management Extension implemented.
            RME_IMPL OFFSET(30) NUMBITS(1) []
        ],
        /// SMMU_IDR1: table and queue sizes (6.3.2).
        pub IDR1 [
            /// Max bits of StreamID.
            SIDSIZE OFFSET(0) NUMBITS(6) [],
            /// Max bits of SubstreamID.
            SSIDSIZE OFFSET(6) NUMBITS(5) [],
            /// log2 of the maximum PRI queue entries.
            PRIQS OFFSET(11) NUMBITS(5) [],
            /// log2 of the maximum Event queue entries.
            EVENTQS OFFSET(16) NUMBITS(5) [],
            /// log2 of the maximum Command queue entries.
            CMDQS OFFSET(21) NUMBITS(5) [],
            /// Incoming permission attributes can be overridden.
            ATTR_PERMS_OVR OFFSET(26) NUMBITS(1) [],
            /// Incoming memory type attributes can be overridden.
            ATTR_TYPES_OVR OFFSET(27) NUMBITS(1) [],
            /// Table/queue base addresses are relative to the register base.
            REL OFFSET(28) NUMBITS(1) [],
            /// Queue bases and sizes are fixed.
            QUEUES_PRESET OFFSET(29) NUMBITS(1) [],
            /// Table bases and sizes are fixed.
            TABLES_PRESET OFFSET(30) NUMBITS(1) [],
            /// Enhanced Command queue interface.
            ECMDQ OFFSET(31) NUMBITS(1) []
        ],
        /// SMMU_IDR2 (6.3.3).
        pub IDR2 [
            /// VATOS page base (in 64 KiB units from page 0).
            BA_VATOS OFFSET(0) NUMBITS(10) []
        ],
        /// SMMU_IDR3: optional features (6.3.4).
        pub IDR3 [
            /// Hierarchical attribute disable.
            HAD OFFSET(2) NUMBITS(1) [],
            /// Page-based hardware attributes.
            PBHA OFFSET(3) NUMBITS(1) [],
            /// EL0/EL1 execute control at stage 2.
            XNX OFFSET(4) NUMBITS(1) [],
            /// PASID on PRI responses.
            PPS OFFSET(5) NUMBITS(1) [],
            /// Memory partitioning and monitoring.
            MPAM OFFSET(7) NUMBITS(1) [],
            /// Stage 2 forced write-back.
            FWB OFFSET(8) NUMBITS(1) [],
            /// Small translation tables.
            STT OFFSET(9) NUMBITS(1) [],
            /// Range invalidation and TTL hints.
            RIL OFFSET(10) NUMBITS(1) [],
            /// Break-before-make level.
            BBML OFFSET(11) NUMBITS(2) [],
            /// E0PD.
            E0PD OFFSET(13) NUMBITS(1) [],
            /// Table walks to non-cacheable device memory.
            PTWNNC OFFSET(14) NUMBITS(1) [],
            /// Device Permission Table.
            DPT OFFSET(15) NUMBITS(1) []
        ],
        /// SMMU_IDR5: address sizes and granules (6.3.6).
        pub IDR5 [
            /// Output address size (0:32 1:36 2:40 3:42 4:44 5:48 6:52 7:56 bits).
            OAS OFFSET(0) NUMBITS(3) [],
            /// 4 KiB granule.
            GRAN4K OFFSET(4) NUMBITS(1) [],
            /// 16 KiB granule.
            GRAN16K OFFSET(5) NUMBITS(1) [],
            /// 64 KiB granule.
            GRAN64K OFFSET(6) NUMBITS(1) [],
            /// 52-bit addressing with 4/16 KiB granules.
            DS OFFSET(7) NUMBITS(1) [],
            /// VMSAv9-128 descriptors.
            D128 OFFSET(8) NUMBITS(1) [],
            /// Virtual address extend (0: 48 bits, 1: 52 bits, 2: 56 bits).
            VAX OFFSET(10) NUMBITS(2) [],
            /// Maximum number of outstanding stalled transactions.
            STALL_MAX OFFSET(16) NUMBITS(16) []
        ],
        /// SMMU_IIDR: implementation identification (6.3.7).
        pub IIDR [
            /// JEP106 implementer code.
            IMPLEMENTER OFFSET(0) NUMBITS(12) [],
            /// Revision.
            REVISION OFFSET(12) NUMBITS(4) [],
            /// Variant.
            VARIANT OFFSET(16) NUMBITS(4) [],
            /// Product identifier.
            PRODUCTID OFFSET(20) NUMBITS(12) []
        ],
        /// SMMU_AIDR: architecture version (6.3.8).
        pub AIDR [
            /// Minor revision (SMMUv3.x).
            ARCH_MINOR_REV OFFSET(0) NUMBITS(4) [],
            /// Major revision (0 for SMMUv3).
            ARCH_MAJOR_REV OFFSET(4) NUMBITS(4) []
        ],
        /// SMMU_CR0 and SMMU_CR0ACK (6.3.9, 6.3.10).
        pub CR0 [
            /// SMMU enable.
            SMMUEN OFFSET(0) NUMBITS(1) [],
            /// PRI queue enable.
            PRIQEN OFFSET(1) NUMBITS(1) [],
            /// Event queue enable.
            EVENTQEN OFFSET(2) NUMBITS(1) [],
            /// Command queue enable.
            CMDQEN OFFSET(3) NUMBITS(1) [],
            /// ATS behavior check.
            ATSCHK OFFSET(4) NUMBITS(1) [],
            /// VMID wildcard.
            VMW OFFSET(6) NUMBITS(3) [],
            /// DPT walk enable.
            DPT_WALK_EN OFFSET(10) NUMBITS(1) []
        ],
        /// SMMU_CR1: table and queue access attributes (6.3.11).
        pub CR1 [
            /// Queue inner cacheability.
            QUEUE_IC OFFSET(0) NUMBITS(2) [NonCacheable = 0, WriteBack = 1, WriteThrough = 2],
            /// Queue outer cacheability.
            QUEUE_OC OFFSET(2) NUMBITS(2) [NonCacheable = 0, WriteBack = 1, WriteThrough = 2],
            /// Queue shareability.
            QUEUE_SH OFFSET(4) NUMBITS(2) [NonShareable = 0, OuterShareable = 2, InnerShareable = 3],
            /// Table inner cacheability.
            TABLE_IC OFFSET(6) NUMBITS(2) [NonCacheable = 0, WriteBack = 1, WriteThrough = 2],
            /// Table outer cacheability.
            TABLE_OC OFFSET(8) NUMBITS(2) [NonCacheable = 0, WriteBack = 1, WriteThrough = 2],
            /// Table shareability.
            TABLE_SH OFFSET(10) NUMBITS(2) [NonShareable = 0, OuterShareable = 2, InnerShareable = 3]
        ],
        /// SMMU_CR2 (6.3.12).
        pub CR2 [
            /// EL2-E2H StreamWorld for STE.STRW == EL2.
            E2H OFFSET(0) NUMBITS(1) [],
            /// Record C_BAD_STREAMID for invalid input StreamIDs.
            RECINVSID OFFSET(1) NUMBITS(1) [],
            /// Private TLB maintenance (ignore broadcast TLBI).
            PTM OFFSET(2) NUMBITS(1) [],
            /// Record configuration errors for ATS translated traffic.
            REC_CFG_ATS OFFSET(3) NUMBITS(1) []
        ],
        /// SMMU_STATUSR (6.3.13).
        pub STATUSR [
            /// The SMMU and its caches are dormant.
            DORMANT OFFSET(0) NUMBITS(1) []
        ],
        /// SMMU_GBPA: global bypass attributes, used while SMMUEN == 0 (6.3.14).
        pub GBPA [
            /// Memory attribute override.
            MEMATTR OFFSET(0) NUMBITS(4) [],
            /// Memory type override enable.
            MTCFG OFFSET(4) NUMBITS(1) [],
            /// Allocation hints override.
            ALLOCCFG OFFSET(8) NUMBITS(4) [],
            /// Shareability override.
            SHCFG OFFSET(12) NUMBITS(2) [],
            /// Privilege override.
            PRIVCFG OFFSET(16) NUMBITS(2) [],
            /// Instruction/data override.
            INSTCFG OFFSET(18) NUMBITS(2) [],
            /// Abort all incoming transactions.
            ABORT OFFSET(20) NUMBITS(1) [],
            /// Update in progress; written as 1 together with the new value.
            UPDATE OFFSET(31) NUMBITS(1) []
        ],
        /// SMMU_IRQ_CTRL and SMMU_IRQ_CTRLACK (6.3.16, 6.3.18).
        pub IRQ_CTRL [
            /// Global error interrupt enable.
            GERROR_IRQEN OFFSET(0) NUMBITS(1) [],
            /// PRI queue interrupt enable.
            PRIQ_IRQEN OFFSET(1) NUMBITS(1) [],
            /// Event queue interrupt enable.
            EVENTQ_IRQEN OFFSET(2) NUMBITS(1) []
        ],
        /// SMMU_GERROR and SMMU_GERRORN (6.3.19, 6.3.20).
        pub GERROR [
            /// Command queue error (see SMMU_CMDQ_CONS.ERR).
            CMDQ_ERR OFFSET(0) NUMBITS(1) [],
            /// Event queue write aborted.
            EVENTQ_ABT_ERR OFFSET(2) NUMBITS(1) [],
            /// PRI queue write aborted.
            PRIQ_ABT_ERR OFFSET(3) NUMBITS(1) [],
            /// CMD_SYNC MSI write aborted.
            MSI_CMDQ_ABT_ERR OFFSET(4) NUMBITS(1) [],
            /// Event queue MSI write aborted.
            MSI_EVENTQ_ABT_ERR OFFSET(5) NUMBITS(1) [],
            /// PRI queue MSI write aborted.
            MSI_PRIQ_ABT_ERR OFFSET(6) NUMBITS(1) [],
            /// GERROR MSI write aborted.
            MSI_GERROR_ABT_ERR OFFSET(7) NUMBITS(1) [],
            /// Service failure mode entered.
            SFM_ERR OFFSET(8) NUMBITS(1) [],
            /// Enhanced command queue error.
            CMDQP_ERR OFFSET(9) NUMBITS(1) [],
            /// Device Permission Table error.
            DPT_ERR OFFSET(10) NUMBITS(1) []
        ],
        /// SMMU_*_IRQ_CFG2: MSI attributes (6.3.23).
        pub IRQ_CFG2 [
            /// MSI memory attributes.
            MEMATTR OFFSET(0) NUMBITS(4) [],
            /// MSI shareability.
            SH OFFSET(4) NUMBITS(2) []
        ],
        /// SMMU_PRIQ_IRQ_CFG2 (6.3.36).
        pub PRIQ_IRQ_CFG2 [
            /// MSI memory attributes.
            MEMATTR OFFSET(0) NUMBITS(4) [],
            /// MSI shareability.
            SH OFFSET(4) NUMBITS(2) [],
            /// Interrupt only on the last request of a page request group.
            LO OFFSET(31) NUMBITS(1) []
        ],
        /// SMMU_STRTAB_BASE_CFG (6.3.25).
        pub STRTAB_BASE_CFG [
            /// log2 of the number of StreamIDs covered by the table.
            LOG2SIZE OFFSET(0) NUMBITS(6) [],
            /// StreamID split point of a 2-level table (6, 8 or 10).
            SPLIT OFFSET(6) NUMBITS(5) [],
            /// Format.
            FMT OFFSET(16) NUMBITS(2) [Linear = 0, TwoLevel = 1]
        ],
        /// SMMU_CMDQ_PROD (6.3.27).
        pub CMDQ_PROD [
            /// Write index, with the wrap flag at bit LOG2SIZE.
            WR OFFSET(0) NUMBITS(20) []
        ],
        /// SMMU_CMDQ_CONS (6.3.28).
        pub CMDQ_CONS [
            /// Read index, with the wrap flag at bit LOG2SIZE.
            RD OFFSET(0) NUMBITS(20) [],
            /// Command error code (7.1).
            ERR OFFSET(24) NUMBITS(7) []
        ],
        /// SMMU_EVENTQ_PROD (page 1, 6.3.95).
        pub EVENTQ_PROD [
            /// Write index, with the wrap flag at bit LOG2SIZE.
            WR OFFSET(0) NUMBITS(20) [],
            /// Overflow flag, toggled when an event is lost.
            OVFLG OFFSET(31) NUMBITS(1) []
        ],
        /// SMMU_EVENTQ_CONS (page 1, 6.3.96).
        pub EVENTQ_CONS [
            /// Read index, with the wrap flag at bit LOG2SIZE.
            RD OFFSET(0) NUMBITS(20) [],
            /// Overflow acknowledge: set to EVENTQ_PROD.OVFLG.
            OVACKFLG OFFSET(31) NUMBITS(1) []
        ],
        /// SMMU_PRIQ_PROD (page 1, 6.3.97).
        pub PRIQ_PROD [
            /// Write index, with the wrap flag at bit LOG2SIZE.
            WR OFFSET(0) NUMBITS(20) [],
            /// Overflow flag.
            OVFLG OFFSET(31) NUMBITS(1) []
        ],
        /// SMMU_PRIQ_CONS (page 1, 6.3.98).
        pub PRIQ_CONS [
            /// Read index, with the wrap flag at bit LOG2SIZE.
            RD OFFSET(0) NUMBITS(20) [],
            /// Overflow acknowledge.
            OVACKFLG OFFSET(31) NUMBITS(1) []
        ]
    ];
}
pub use fields32::*;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod fields64 {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// SMMU_STRTAB_BASE (6.3.24).
        pub STRTAB_BASE [
            /// Physical address bits `[55:6]`.
            ADDR OFFSET(6) NUMBITS(50) [],
            /// Read-allocate hint.
            RA OFFSET(62) NUMBITS(1) []
        ],
        /// SMMU_CMDQ_BASE (6.3.26).
        pub CMDQ_BASE [
            /// log2 of the number of entries.
            LOG2SIZE OFFSET(0) NUMBITS(5) [],
            /// Physical address bits `[55:5]`.
            ADDR OFFSET(5) NUMBITS(51) [],
            /// Read-allocate hint.
            RA OFFSET(62) NUMBITS(1) []
        ],
        /// SMMU_EVENTQ_BASE (6.3.29).
        pub EVENTQ_BASE [
            /// log2 of the number of entries.
            LOG2SIZE OFFSET(0) NUMBITS(5) [],
            /// Physical address bits `[55:5]`.
            ADDR OFFSET(5) NUMBITS(51) [],
            /// Write-allocate hint.
            WA OFFSET(62) NUMBITS(1) []
        ],
        /// SMMU_PRIQ_BASE (6.3.33).
        pub PRIQ_BASE [
            /// log2 of the number of entries.
            LOG2SIZE OFFSET(0) NUMBITS(5) [],
            /// Physical address bits `[55:5]`.
            ADDR OFFSET(5) NUMBITS(51) [],
            /// Write-allocate hint.
            WA OFFSET(62) NUMBITS(1) []
        ],
        /// SMMU_*_IRQ_CFG0: MSI target address (6.3.21).
        pub IRQ_CFG0 [
            /// Physical address bits `[55:2]`; 0 means no MSI.
            ADDR OFFSET(2) NUMBITS(54) []
        ]
    ];
}
pub use fields64::*;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod page0_block {
    use super::*;
    use tock_registers::register_structs;
    register_structs! {
        /// SMMUv3 register page 0 (the part of it this driver uses; offsets from 6.2).
        ///
        /// SMMU_CR0ACK, SMMU_STATUSR, SMMU_IRQ_CTRLACK and SMMU_GERROR are
        /// read-only in the spec but change under the driver's feet, so they
        /// are declared `ReadWrite` (an `UnsafeCell`): tock's `ReadOnly`
        /// tells Rust the bytes never change while referenced, which Miri
        /// holds us to. The driver never writes them. The ID registers are
        /// constant.
        pub SmmuPage0 {
            (0x000 => pub idr0: ReadOnly<u32, IDR0::Register>),
            (0x004 => pub idr1: ReadOnly<u32, IDR1::Register>),
            (0x008 => pub idr2: ReadOnly<u32, IDR2::Register>),
            (0x00c => pub idr3: ReadOnly<u32, IDR3::Register>),
            (0x010 => pub idr4: ReadOnly<u32>),
            (0x014 => pub idr5: ReadOnly<u32, IDR5::Register>),
            (0x018 => pub iidr: ReadOnly<u32, IIDR::Register>),
            (0x01c => pub aidr: ReadOnly<u32, AIDR::Register>),
            (0x020 => pub cr0: ReadWrite<u32, CR0::Register>),
            (0x024 => pub cr0ack: ReadWrite<u32, CR0::Register>),
            (0x028 => pub cr1: ReadWrite<u32, CR1::Register>),
            (0x02c => pub cr2: ReadWrite<u32, CR2::Register>),
            (0x030 => _reserved0),
            (0x040 => pub statusr: ReadWrite<u32, STATUSR::Register>),
            (0x044 => pub gbpa: ReadWrite<u32, GBPA::Register>),
            (0x048 => pub agbpa: ReadWrite<u32>),
            (0x04c => _reserved1),
            (0x050 => pub irq_ctrl: ReadWrite<u32, IRQ_CTRL::Register>),
            (0x054 => pub irq_ctrlack: ReadWrite<u32, IRQ_CTRL::Register>),
            (0x058 => _reserved2),
            (0x060 => pub gerror: ReadWrite<u32, GERROR::Register>),
            (0x064 => pub gerrorn: ReadWrite<u32, GERROR::Register>),
            (0x068 => pub gerror_irq_cfg0: ReadWrite<u64, IRQ_CFG0::Register>),
            (0x070 => pub gerror_irq_cfg1: ReadWrite<u32>),
            (0x074 => pub gerror_irq_cfg2: ReadWrite<u32, IRQ_CFG2::Register>),
            (0x078 => _reserved3),
            (0x080 => pub strtab_base: ReadWrite<u64, STRTAB_BASE::Register>),
            (0x088 => pub strtab_base_cfg: ReadWrite<u32, STRTAB_BASE_CFG::Register>),
            (0x08c => _reserved4),
            (0x090 => pub cmdq_base: ReadWrite<u64, CMDQ_BASE::Register>),
            (0x098 => pub cmdq_prod: ReadWrite<u32, CMDQ_PROD::Register>),
            (0x09c => pub cmdq_cons: ReadWrite<u32, CMDQ_CONS::Register>),
            (0x0a0 => pub eventq_base: ReadWrite<u64, EVENTQ_BASE::Register>),
            (0x0a8 => _reserved5),
            (0x0b0 => pub eventq_irq_cfg0: ReadWrite<u64, IRQ_CFG0::Register>),
            (0x0b8 => pub eventq_irq_cfg1: ReadWrite<u32>),
            (0x0bc => pub eventq_irq_cfg2: ReadWrite<u32, IRQ_CFG2::Register>),
            (0x0c0 => pub priq_base: ReadWrite<u64, PRIQ_BASE::Register>),
            (0x0c8 => _reserved6),
            (0x0d0 => pub priq_irq_cfg0: ReadWrite<u64, IRQ_CFG0::Register>),
            (0x0d8 => pub priq_irq_cfg1: ReadWrite<u32>),
            (0x0dc => pub priq_irq_cfg2: ReadWrite<u32, PRIQ_IRQ_CFG2::Register>),
            (0x0e0 => @END),
        }
    }
}
pub use page0_block::*;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod page1_block {
    use super::*;
    use tock_registers::register_structs;
    register_structs! {
        /// SMMUv3 register page 1: output queue indices (6.2).
        pub SmmuPage1 {
            (0x000 => _reserved0),
            (0x0a8 => pub eventq_prod: ReadWrite<u32, EVENTQ_PROD::Register>),
            (0x0ac => pub eventq_cons: ReadWrite<u32, EVENTQ_CONS::Register>),
            (0x0b0 => _reserved1),
            (0x0c8 => pub priq_prod: ReadWrite<u32, PRIQ_PROD::Register>),
            (0x0cc => pub priq_cons: ReadWrite<u32, PRIQ_CONS::Register>),
            (0x0d0 => @END),
        }
    }
}
pub use page1_block::*;

/// Offset of register page 1 from page 0: the spec fixes 64 KiB pages.
pub const PAGE1_OFFSET: usize = 0x1_0000;
/// Size of the SMMU register frame this driver touches (pages 0 and 1).
pub const REGS_SIZE: usize = 0x2_0000;

/// The two register pages of one SMMU: the driver's only access to the device.
///
/// A unique handle (neither `Clone` nor `Copy`): whoever holds it is the one
/// agent programming the SMMU, so it may move to another CPU (`Send`).
pub struct SmmuRegs<'a> {
    page0: &'a SmmuPage0,
    page1: &'a SmmuPage1,
}

// SAFETY: the handle is unique (not Clone/Copy, and the page references it
// lends out borrow it), and `new`'s contract excludes concurrent access
// through other handles, so moving it to another CPU cannot create a data
// race on the registers.
unsafe impl Send for SmmuRegs<'_> {}

impl<'a> SmmuRegs<'a> {
    /// Wraps the register frame at `base` (page 0; page 1 is at
    /// `base + PAGE1_OFFSET`).
    ///
    /// # Safety
    ///
    /// `base` must point to [`REGS_SIZE`] bytes, 8-byte aligned, that are either
    /// the SMMU's register frame mapped as Device memory or plain memory
    /// standing in for it, valid for `'a`. For `'a`, nothing else may access
    /// those bytes concurrently with this handle (from another CPU, or
    /// through Rust references other than this handle's).
    pub unsafe fn new(base: NonNull<u8>) -> Self {
        debug_assert!(base.as_ptr().align_offset(8) == 0);
        // SAFETY: the caller guarantees REGS_SIZE valid bytes at `base` for 'a;
        // page 0 is at offset 0 and page 1 at PAGE1_OFFSET, both inside it, and
        // the register structs consist of `UnsafeCell`-based registers, so
        // shared references permit the volatile writes.
        unsafe {
            Self {
                page0: base.cast::<SmmuPage0>().as_ref(),
                page1: base.add(PAGE1_OFFSET).cast::<SmmuPage1>().as_ref(),
            }
        }
    }

    /// Register page 0.
    pub fn page0(&self) -> &SmmuPage0 {
        self.page0
    }

    /// Register page 1.
    pub fn page1(&self) -> &SmmuPage1 {
        self.page1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use tock_registers::LocalRegisterCopy;

    // Offsets from the register map in IHI 0070 6.2.
    #[test]
    fn page0_offsets_match_spec() {
        assert_eq!(offset_of!(SmmuPage0, idr0), 0x00);
        assert_eq!(offset_of!(SmmuPage0, idr1), 0x04);
        assert_eq!(offset_of!(SmmuPage0, idr3), 0x0c);
        assert_eq!(offset_of!(SmmuPage0, idr5), 0x14);
        assert_eq!(offset_of!(SmmuPage0, iidr), 0x18);
        assert_eq!(offset_of!(SmmuPage0, aidr), 0x1c);
        assert_eq!(offset_of!(SmmuPage0, cr0), 0x20);
        assert_eq!(offset_of!(SmmuPage0, cr0ack), 0x24);
        assert_eq!(offset_of!(SmmuPage0, cr1), 0x28);
        assert_eq!(offset_of!(SmmuPage0, cr2), 0x2c);
        assert_eq!(offset_of!(SmmuPage0, statusr), 0x40);
        assert_eq!(offset_of!(SmmuPage0, gbpa), 0x44);
        assert_eq!(offset_of!(SmmuPage0, agbpa), 0x48);
        assert_eq!(offset_of!(SmmuPage0, irq_ctrl), 0x50);
        assert_eq!(offset_of!(SmmuPage0, irq_ctrlack), 0x54);
        assert_eq!(offset_of!(SmmuPage0, gerror), 0x60);
        assert_eq!(offset_of!(SmmuPage0, gerrorn), 0x64);
        assert_eq!(offset_of!(SmmuPage0, gerror_irq_cfg0), 0x68);
        assert_eq!(offset_of!(SmmuPage0, gerror_irq_cfg1), 0x70);
        assert_eq!(offset_of!(SmmuPage0, gerror_irq_cfg2), 0x74);
        assert_eq!(offset_of!(SmmuPage0, strtab_base), 0x80);
        assert_eq!(offset_of!(SmmuPage0, strtab_base_cfg), 0x88);
        assert_eq!(offset_of!(SmmuPage0, cmdq_base), 0x90);
        assert_eq!(offset_of!(SmmuPage0, cmdq_prod), 0x98);
        assert_eq!(offset_of!(SmmuPage0, cmdq_cons), 0x9c);
        assert_eq!(offset_of!(SmmuPage0, eventq_base), 0xa0);
        assert_eq!(offset_of!(SmmuPage0, eventq_irq_cfg0), 0xb0);
        assert_eq!(offset_of!(SmmuPage0, eventq_irq_cfg1), 0xb8);
        assert_eq!(offset_of!(SmmuPage0, eventq_irq_cfg2), 0xbc);
        assert_eq!(offset_of!(SmmuPage0, priq_base), 0xc0);
        assert_eq!(offset_of!(SmmuPage0, priq_irq_cfg0), 0xd0);
        assert_eq!(offset_of!(SmmuPage0, priq_irq_cfg2), 0xdc);
    }

    #[test]
    fn page1_offsets_match_spec() {
        // SMMU_EVENTQ_PROD is at 0x100A8, i.e. 0xA8 into page 1.
        assert_eq!(offset_of!(SmmuPage1, eventq_prod), 0xa8);
        assert_eq!(offset_of!(SmmuPage1, eventq_cons), 0xac);
        assert_eq!(offset_of!(SmmuPage1, priq_prod), 0xc8);
        assert_eq!(offset_of!(SmmuPage1, priq_cons), 0xcc);
        assert_eq!(PAGE1_OFFSET, 0x10000);
    }

    #[test]
    fn cr0_bits_match_spec() {
        let mut r = LocalRegisterCopy::<u32, CR0::Register>::new(0);
        r.write(CR0::SMMUEN::SET);
        assert_eq!(r.get(), 1 << 0);
        r.write(CR0::PRIQEN::SET);
        assert_eq!(r.get(), 1 << 1);
        r.write(CR0::EVENTQEN::SET);
        assert_eq!(r.get(), 1 << 2);
        r.write(CR0::CMDQEN::SET);
        assert_eq!(r.get(), 1 << 3);
        r.write(CR0::ATSCHK::SET);
        assert_eq!(r.get(), 1 << 4);
        r.write(CR0::VMW.val(0b111));
        assert_eq!(r.get(), 0b111 << 6);
    }

    #[test]
    fn cr1_cr2_gbpa_bits_match_spec() {
        let mut r = LocalRegisterCopy::<u32, CR1::Register>::new(0);
        r.write(
            CR1::QUEUE_IC::WriteBack
                + CR1::QUEUE_OC::WriteBack
                + CR1::QUEUE_SH::InnerShareable
                + CR1::TABLE_IC::WriteBack
                + CR1::TABLE_OC::WriteBack
                + CR1::TABLE_SH::InnerShareable,
        );
        // 0b01 at [1:0], 0b01 at [3:2], 0b11 at [5:4], same again at [11:6].
        assert_eq!(r.get(), 0b11_01_01_11_01_01);
        let mut c2 = LocalRegisterCopy::<u32, CR2::Register>::new(0);
        c2.write(CR2::PTM::SET + CR2::RECINVSID::SET);
        assert_eq!(c2.get(), 0b110);
        let mut g = LocalRegisterCopy::<u32, GBPA::Register>::new(0);
        g.write(GBPA::ABORT::SET + GBPA::UPDATE::SET);
        assert_eq!(g.get(), (1 << 31) | (1 << 20));
        g.write(GBPA::SHCFG.val(1));
        assert_eq!(g.get(), 0x1000);
    }

    #[test]
    fn base_registers_match_spec() {
        let mut b = LocalRegisterCopy::<u64, STRTAB_BASE::Register>::new(0);
        b.write(STRTAB_BASE::ADDR.val(0x4000_1000 >> 6) + STRTAB_BASE::RA::SET);
        assert_eq!(b.get(), 0x4000_1000 | (1 << 62));
        let mut q = LocalRegisterCopy::<u64, CMDQ_BASE::Register>::new(0);
        q.write(CMDQ_BASE::ADDR.val(0x4008_0000 >> 5) + CMDQ_BASE::LOG2SIZE.val(8));
        assert_eq!(q.get(), 0x4008_0000 | 8);
        let mut c = LocalRegisterCopy::<u32, STRTAB_BASE_CFG::Register>::new(0);
        c.write(
            STRTAB_BASE_CFG::FMT::TwoLevel
                + STRTAB_BASE_CFG::SPLIT.val(8)
                + STRTAB_BASE_CFG::LOG2SIZE.val(16),
        );
        assert_eq!(c.get(), (1 << 16) | (8 << 6) | 16);
        let cons = LocalRegisterCopy::<u32, CMDQ_CONS::Register>::new(0x0100_0005);
        assert_eq!(cons.read(CMDQ_CONS::ERR), 1);
        assert_eq!(cons.read(CMDQ_CONS::RD), 5);
        let p = LocalRegisterCopy::<u32, EVENTQ_PROD::Register>::new(0x8000_0003);
        assert!(p.is_set(EVENTQ_PROD::OVFLG));
        assert_eq!(p.read(EVENTQ_PROD::WR), 3);
    }

    #[test]
    fn gerror_bits_match_spec() {
        let bits = [
            (GERROR::CMDQ_ERR, 0),
            (GERROR::EVENTQ_ABT_ERR, 2),
            (GERROR::PRIQ_ABT_ERR, 3),
            (GERROR::MSI_CMDQ_ABT_ERR, 4),
            (GERROR::MSI_EVENTQ_ABT_ERR, 5),
            (GERROR::MSI_PRIQ_ABT_ERR, 6),
            (GERROR::MSI_GERROR_ABT_ERR, 7),
            (GERROR::SFM_ERR, 8),
        ];
        for (field, bit) in bits {
            let r = LocalRegisterCopy::<u32, GERROR::Register>::new(1 << bit);
            assert!(r.is_set(field), "bit {bit}");
        }
    }
}
