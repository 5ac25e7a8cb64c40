//! Remapping hardware registers (11.4) through `tock-registers`.
//!
//! [`VtdRegs`] is the fixed part of the register block (offsets 0x000 to
//! 0x0ef). Two groups move with the implementation and are separate structs
//! at offsets computed from the capabilities:
//!
//! - the IOTLB registers, IVA_REG and IOTLB_REG, at `ECAP_REG.IRO * 16`
//!   ([`IotlbRegs`], [`iotlb_regs_offset`]);
//! - the fault recording registers, 128 bits each, `CAP_REG.NFR + 1` of them
//!   at `CAP_REG.FRO * 16` ([`FaultRecordingReg`], [`fault_recording_offset`]).
//!
//! Field names follow the spec (`GCMD_REG.TE`, `ECAP_REG.QI`, ...). Nothing
//! here maps memory: the driver hands a pointer to these structs in, host
//! tests decode plain integers through `LocalRegisterCopy`. The MTRR,
//! performance-monitoring, virtual-command and enhanced-command registers
//! (0x100 and up) are not modelled.

use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

use crate::vtd::caps::Capabilities;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod fields32 {
    use tock_registers::register_bitfields;
    register_bitfields! [u32,
        /// VER_REG: architecture version (11.4.1).
        pub VER [
            /// Minor version number.
            MIN OFFSET(0) NUMBITS(4) [],
            /// Major version number.
            MAX OFFSET(4) NUMBITS(4) []
        ],
        /// GCMD_REG (11.4.4). Write one command bit at a time, the others as
        /// the current GSTS_REG reports them (one-shot bits masked off).
        pub GCMD [
            /// Compatibility format interrupt.
            CFI OFFSET(23) NUMBITS(1) [],
            /// Set interrupt remap table pointer.
            SIRTP OFFSET(24) NUMBITS(1) [],
            /// Interrupt remapping enable.
            IRE OFFSET(25) NUMBITS(1) [],
            /// Queued invalidation enable.
            QIE OFFSET(26) NUMBITS(1) [],
            /// Write buffer flush.
            WBF OFFSET(27) NUMBITS(1) [],
            /// Enable advanced fault logging (deprecated).
            EAFL OFFSET(28) NUMBITS(1) [],
            /// Set fault log (deprecated).
            SFL OFFSET(29) NUMBITS(1) [],
            /// Set root table pointer.
            SRTP OFFSET(30) NUMBITS(1) [],
            /// Translation enable.
            TE OFFSET(31) NUMBITS(1) []
        ],
        /// GSTS_REG (11.4.5): the status bit of each GCMD_REG command.
        pub GSTS [
            /// Compatibility format interrupt status.
            CFIS OFFSET(23) NUMBITS(1) [],
            /// Interrupt remapping table pointer status.
            IRTPS OFFSET(24) NUMBITS(1) [],
            /// Interrupt remapping enable status.
            IRES OFFSET(25) NUMBITS(1) [],
            /// Queued invalidation enable status.
            QIES OFFSET(26) NUMBITS(1) [],
            /// Write buffer flush status.
            WBFS OFFSET(27) NUMBITS(1) [],
            /// Advanced fault logging status.
            AFLS OFFSET(28) NUMBITS(1) [],
            /// Fault log status.
            FLS OFFSET(29) NUMBITS(1) [],
            /// Root table pointer status.
            RTPS OFFSET(30) NUMBITS(1) [],
            /// Translation enable status.
            TES OFFSET(31) NUMBITS(1) []
        ],
        /// FSTS_REG: fault status (11.4.9.1). PFO, IQE, ICE, ITE are RW1C.
        pub FSTS [
            /// Primary fault overflow.
            PFO OFFSET(0) NUMBITS(1) [],
            /// Primary pending fault: some fault record has F set.
            PPF OFFSET(1) NUMBITS(1) [],
            /// Advanced fault overflow (deprecated).
            AFO OFFSET(2) NUMBITS(1) [],
            /// Advanced pending fault (deprecated).
            APF OFFSET(3) NUMBITS(1) [],
            /// Invalidation queue error.
            IQE OFFSET(4) NUMBITS(1) [],
            /// Invalidation completion error.
            ICE OFFSET(5) NUMBITS(1) [],
            /// Invalidation time-out error.
            ITE OFFSET(6) NUMBITS(1) [],
            /// Fault record index: the first record with F set when PPF is set.
            FRI OFFSET(8) NUMBITS(8) []
        ],
        /// FECTL_REG, IECTL_REG, PECTL_REG: event interrupt control.
        pub EVENT_CTL [
            /// Interrupt pending.
            IP OFFSET(30) NUMBITS(1) [],
            /// Interrupt mask (set after reset).
            IM OFFSET(31) NUMBITS(1) []
        ],
        /// FEDATA_REG, IEDATA_REG, PEDATA_REG: MSI data.
        pub EVENT_DATA [
            /// Interrupt message data.
            IMD OFFSET(0) NUMBITS(16) []
        ],
        /// FEADDR_REG, IEADDR_REG, PEADDR_REG: MSI address, bits 31:2.
        pub EVENT_ADDR [
            /// Message address.
            MA OFFSET(2) NUMBITS(30) []
        ],
        /// PMEN_REG: protected memory enable (11.4.10).
        pub PMEN [
            /// Protected region status.
            PRS OFFSET(0) NUMBITS(1) [],
            /// Enable protected memory.
            EPM OFFSET(31) NUMBITS(1) []
        ],
        /// ICS_REG: invalidation completion status.
        pub ICS [
            /// Invalidation wait descriptor complete (RW1C).
            IWC OFFSET(0) NUMBITS(1) []
        ],
        /// PRS_REG: page request status.
        pub PRS [
            /// Pending page request.
            PPR OFFSET(0) NUMBITS(1) [],
            /// Page request overflow.
            PRO OFFSET(1) NUMBITS(1) []
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
        /// CAP_REG: capabilities (11.4.2).
        pub CAP [
            /// Number of domains supported: 2^(4 + 2 * ND).
            ND OFFSET(0) NUMBITS(3) [],
            /// Advanced fault logging.
            AFL OFFSET(3) NUMBITS(1) [],
            /// Required write-buffer flushing.
            RWBF OFFSET(4) NUMBITS(1) [],
            /// Protected low-memory region.
            PLMR OFFSET(5) NUMBITS(1) [],
            /// Protected high-memory region.
            PHMR OFFSET(6) NUMBITS(1) [],
            /// Caching mode: not-present and erroneous entries may be cached.
            CM OFFSET(7) NUMBITS(1) [],
            /// Supported adjusted guest address widths: bit 1 39-bit (3-level),
            /// bit 2 48-bit (4-level), bit 3 57-bit (5-level).
            SAGAW OFFSET(8) NUMBITS(5) [],
            /// Maximum guest address width, minus one.
            MGAW OFFSET(16) NUMBITS(6) [],
            /// Zero-length read.
            ZLR OFFSET(22) NUMBITS(1) [],
            /// Fault-recording register offset, in 16-byte units.
            FRO OFFSET(24) NUMBITS(10) [],
            /// Second-level large page support: bit 0 2 MiB, bit 1 1 GiB.
            SLLPS OFFSET(34) NUMBITS(4) [],
            /// Page-selective invalidation.
            PSI OFFSET(39) NUMBITS(1) [],
            /// Number of fault-recording registers, minus one.
            NFR OFFSET(40) NUMBITS(8) [],
            /// Maximum address mask value for page-selective invalidation.
            MAMV OFFSET(48) NUMBITS(6) [],
            /// Write draining.
            DWD OFFSET(54) NUMBITS(1) [],
            /// Read draining.
            DRD OFFSET(55) NUMBITS(1) [],
            /// First-level 1 GiB pages.
            FL1GP OFFSET(56) NUMBITS(1) [],
            /// Posted interrupts.
            PI OFFSET(59) NUMBITS(1) [],
            /// First-level 5-level paging.
            FL5LP OFFSET(60) NUMBITS(1) [],
            /// Enhanced command support.
            ECMDS OFFSET(61) NUMBITS(1) [],
            /// Enhanced set interrupt remap table pointer support.
            ESIRTPS OFFSET(62) NUMBITS(1) [],
            /// Enhanced set root table pointer support.
            ESRTPS OFFSET(63) NUMBITS(1) []
        ],
        /// ECAP_REG: extended capabilities (11.4.3).
        pub ECAP [
            /// Page-walk coherency.
            C OFFSET(0) NUMBITS(1) [],
            /// Queued invalidation.
            QI OFFSET(1) NUMBITS(1) [],
            /// Device-TLB.
            DT OFFSET(2) NUMBITS(1) [],
            /// Interrupt remapping.
            IR OFFSET(3) NUMBITS(1) [],
            /// Extended interrupt mode (x2APIC, 32-bit destinations).
            EIM OFFSET(4) NUMBITS(1) [],
            /// Pass through.
            PT OFFSET(6) NUMBITS(1) [],
            /// Snoop control.
            SC OFFSET(7) NUMBITS(1) [],
            /// IOTLB register offset, in 16-byte units.
            IRO OFFSET(8) NUMBITS(10) [],
            /// Maximum handle mask value (interrupt entry cache invalidation).
            MHMV OFFSET(20) NUMBITS(4) [],
            /// Memory type support.
            MTS OFFSET(25) NUMBITS(1) [],
            /// Nested translation.
            NEST OFFSET(26) NUMBITS(1) [],
            /// Page request support.
            PRS OFFSET(29) NUMBITS(1) [],
            /// Execute request support.
            ERS OFFSET(30) NUMBITS(1) [],
            /// Supervisor request support.
            SRS OFFSET(31) NUMBITS(1) [],
            /// No write flag support.
            NWFS OFFSET(33) NUMBITS(1) [],
            /// Extended accessed flag support.
            EAFS OFFSET(34) NUMBITS(1) [],
            /// PASID size supported, minus one.
            PSS OFFSET(35) NUMBITS(5) [],
            /// PASID support.
            PASID OFFSET(40) NUMBITS(1) [],
            /// Device-TLB invalidation throttle.
            DIT OFFSET(41) NUMBITS(1) [],
            /// Page-request drain support.
            PDS OFFSET(42) NUMBITS(1) [],
            /// Scalable mode translation support.
            SMTS OFFSET(43) NUMBITS(1) [],
            /// Virtual command support.
            VCS OFFSET(44) NUMBITS(1) [],
            /// Second-level accessed/dirty support.
            SLADS OFFSET(45) NUMBITS(1) [],
            /// Second-level translation support.
            SLTS OFFSET(46) NUMBITS(1) [],
            /// First-level translation support.
            FLTS OFFSET(47) NUMBITS(1) [],
            /// Scalable-mode page-walk coherency support.
            SMPWCS OFFSET(48) NUMBITS(1) [],
            /// RID_PASID support.
            RPS OFFSET(49) NUMBITS(1) [],
            /// Abort DMA mode support.
            ADMS OFFSET(52) NUMBITS(1) [],
            /// RID_PRIV support.
            RPRIVS OFFSET(53) NUMBITS(1) []
        ],
        /// RTADDR_REG: root table address (11.4.6).
        pub RTADDR [
            /// Translation table mode.
            TTM OFFSET(10) NUMBITS(2) [Legacy = 0, Scalable = 1, AbortDma = 3],
            /// Root table address, bits 63:12.
            RTA OFFSET(12) NUMBITS(52) []
        ],
        /// CCMD_REG: context command (11.4.7).
        pub CCMD [
            /// Domain-ID.
            DID OFFSET(0) NUMBITS(16) [],
            /// Source-ID.
            SID OFFSET(16) NUMBITS(16) [],
            /// Function mask.
            FM OFFSET(32) NUMBITS(2) [],
            /// Context actual invalidation granularity.
            CAIG OFFSET(59) NUMBITS(2) [],
            /// Context invalidation request granularity.
            CIRG OFFSET(61) NUMBITS(2) [Global = 1, Domain = 2, Device = 3],
            /// Invalidate context-cache; cleared by hardware when done.
            ICC OFFSET(63) NUMBITS(1) []
        ],
        /// IOTLB_REG: IOTLB invalidate (11.4.8.1).
        pub IOTLB [
            /// Domain-ID.
            DID OFFSET(32) NUMBITS(16) [],
            /// Drain writes.
            DW OFFSET(48) NUMBITS(1) [],
            /// Drain reads.
            DR OFFSET(49) NUMBITS(1) [],
            /// IOTLB actual invalidation granularity.
            IAIG OFFSET(57) NUMBITS(2) [],
            /// IOTLB invalidation request granularity.
            IIRG OFFSET(60) NUMBITS(2) [Global = 1, Domain = 2, Page = 3],
            /// Invalidate IOTLB; cleared by hardware when done.
            IVT OFFSET(63) NUMBITS(1) []
        ],
        /// IVA_REG: invalidate address (11.4.8.2).
        pub IVA [
            /// Address mask: invalidate 2^AM pages.
            AM OFFSET(0) NUMBITS(6) [],
            /// Invalidation hint: only leaf entries changed.
            IH OFFSET(6) NUMBITS(1) [],
            /// Page address, bits 63:12.
            ADDR OFFSET(12) NUMBITS(52) []
        ],
        /// AFLOG_REG: advanced fault log (deprecated).
        pub AFLOG [
            /// Fault log size.
            FLS OFFSET(9) NUMBITS(3) [],
            /// Fault log address, bits 63:12.
            FLA OFFSET(12) NUMBITS(52) []
        ],
        /// IQH_REG: invalidation queue head, a byte offset into the queue
        /// in bits 18:4 (bit 4 is 0 with 256-bit descriptors).
        pub IQH [
            /// Queue head.
            QH OFFSET(4) NUMBITS(15) []
        ],
        /// IQT_REG: invalidation queue tail, bits 18:4 like IQH_REG.
        pub IQT [
            /// Queue tail.
            QT OFFSET(4) NUMBITS(15) []
        ],
        /// IQA_REG: invalidation queue address (11.4.11.3).
        pub IQA [
            /// Queue size: 2^QS 4 KiB pages.
            QS OFFSET(0) NUMBITS(3) [],
            /// Descriptor width: 0 128-bit, 1 256-bit.
            DW OFFSET(11) NUMBITS(1) [],
            /// Queue base, bits 63:12.
            IQA OFFSET(12) NUMBITS(52) []
        ],
        /// IQERCD_REG: invalidation queue error record.
        pub IQERCD [
            /// Invalidation queue error info.
            IQEI OFFSET(0) NUMBITS(4) [],
            /// Invalidation time-out error source-ID.
            ITESID OFFSET(32) NUMBITS(16) [],
            /// Invalidation completion error source-ID.
            ICESID OFFSET(48) NUMBITS(16) []
        ],
        /// IRTA_REG: interrupt remapping table address (11.4.12).
        pub IRTA [
            /// Size: 2^(S + 1) entries.
            S OFFSET(0) NUMBITS(4) [],
            /// Extended interrupt mode enable (x2APIC).
            EIME OFFSET(11) NUMBITS(1) [],
            /// Table base, bits 63:12.
            IRTA OFFSET(12) NUMBITS(52) []
        ],
        /// PQH_REG: page request queue head, bits 18:5.
        pub PQH [
            /// Queue head.
            PQH OFFSET(5) NUMBITS(14) []
        ],
        /// PQT_REG: page request queue tail, bits 18:5.
        pub PQT [
            /// Queue tail.
            PQT OFFSET(5) NUMBITS(14) []
        ],
        /// PQA_REG: page request queue address.
        pub PQA [
            /// Queue size: 2^PQS 4 KiB pages.
            PQS OFFSET(0) NUMBITS(3) [],
            /// Queue base, bits 63:12.
            PQA OFFSET(12) NUMBITS(52) []
        ],
        /// FRCD_REG bits 63:0.
        pub FRCD_LO [
            /// Fault info: page address (bits 63:12) of the faulting request.
            FI OFFSET(12) NUMBITS(52) []
        ],
        /// FRCD_REG bits 127:64.
        pub FRCD_HI [
            /// Source identifier of the faulting request.
            SID OFFSET(0) NUMBITS(16) [],
            /// Type bit 2 (with T1: write, read, page request, AtomicOp).
            T2 OFFSET(28) NUMBITS(1) [],
            /// Privilege mode requested.
            PRIV OFFSET(29) NUMBITS(1) [],
            /// Execute permission requested.
            EXE OFFSET(30) NUMBITS(1) [],
            /// PASID present.
            PP OFFSET(31) NUMBITS(1) [],
            /// Fault reason.
            FR OFFSET(32) NUMBITS(8) [],
            /// PASID value.
            PV OFFSET(40) NUMBITS(20) [],
            /// Address type of the faulting request.
            AT OFFSET(60) NUMBITS(2) [],
            /// Type bit 1: 0 write, 1 read (or AtomicOp).
            T1 OFFSET(62) NUMBITS(1) [],
            /// Fault: the record is valid (RW1C).
            F OFFSET(63) NUMBITS(1) []
        ]
    ];
}
pub use fields64::*;

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod block {
    use super::*;
    use tock_registers::register_structs;
    register_structs! {
        /// The fixed part of the remapping hardware register block (11.4,
        /// table "Address mapping for remapping hardware registers").
        ///
        /// Status registers the hardware changes under the driver's feet
        /// (GSTS, FSTS, IQH, ICS, PRS, ...) are `ReadWrite` (an `UnsafeCell`),
        /// as in the SMMU driver: tock's `ReadOnly` promises the bytes never
        /// change while referenced. VER, CAP and ECAP are constant.
        pub VtdRegs {
            (0x000 => pub ver: ReadOnly<u32, VER::Register>),
            (0x004 => _reserved0),
            (0x008 => pub cap: ReadOnly<u64, CAP::Register>),
            (0x010 => pub ecap: ReadOnly<u64, ECAP::Register>),
            (0x018 => pub gcmd: WriteOnly<u32, GCMD::Register>),
            (0x01c => pub gsts: ReadWrite<u32, GSTS::Register>),
            (0x020 => pub rtaddr: ReadWrite<u64, RTADDR::Register>),
            (0x028 => pub ccmd: ReadWrite<u64, CCMD::Register>),
            (0x030 => _reserved1),
            (0x034 => pub fsts: ReadWrite<u32, FSTS::Register>),
            (0x038 => pub fectl: ReadWrite<u32, EVENT_CTL::Register>),
            (0x03c => pub fedata: ReadWrite<u32, EVENT_DATA::Register>),
            (0x040 => pub feaddr: ReadWrite<u32, EVENT_ADDR::Register>),
            (0x044 => pub feuaddr: ReadWrite<u32>),
            (0x048 => _reserved2),
            (0x058 => pub aflog: ReadWrite<u64, AFLOG::Register>),
            (0x060 => _reserved3),
            (0x064 => pub pmen: ReadWrite<u32, PMEN::Register>),
            (0x068 => pub plmbase: ReadWrite<u32>),
            (0x06c => pub plmlimit: ReadWrite<u32>),
            (0x070 => pub phmbase: ReadWrite<u64>),
            (0x078 => pub phmlimit: ReadWrite<u64>),
            (0x080 => pub iqh: ReadWrite<u64, IQH::Register>),
            (0x088 => pub iqt: ReadWrite<u64, IQT::Register>),
            (0x090 => pub iqa: ReadWrite<u64, IQA::Register>),
            (0x098 => _reserved4),
            (0x09c => pub ics: ReadWrite<u32, ICS::Register>),
            (0x0a0 => pub iectl: ReadWrite<u32, EVENT_CTL::Register>),
            (0x0a4 => pub iedata: ReadWrite<u32, EVENT_DATA::Register>),
            (0x0a8 => pub ieaddr: ReadWrite<u32, EVENT_ADDR::Register>),
            (0x0ac => pub ieuaddr: ReadWrite<u32>),
            (0x0b0 => pub iqercd: ReadWrite<u64, IQERCD::Register>),
            (0x0b8 => pub irta: ReadWrite<u64, IRTA::Register>),
            (0x0c0 => pub pqh: ReadWrite<u64, PQH::Register>),
            (0x0c8 => pub pqt: ReadWrite<u64, PQT::Register>),
            (0x0d0 => pub pqa: ReadWrite<u64, PQA::Register>),
            (0x0d8 => _reserved5),
            (0x0dc => pub prs: ReadWrite<u32, PRS::Register>),
            (0x0e0 => pub pectl: ReadWrite<u32, EVENT_CTL::Register>),
            (0x0e4 => pub pedata: ReadWrite<u32, EVENT_DATA::Register>),
            (0x0e8 => pub peaddr: ReadWrite<u32, EVENT_ADDR::Register>),
            (0x0ec => pub peuaddr: ReadWrite<u32>),
            (0x0f0 => @END),
        }
    }

    register_structs! {
        /// The IOTLB registers, at `ECAP_REG.IRO * 16` from the block base.
        pub IotlbRegs {
            (0x000 => pub iva: ReadWrite<u64, IVA::Register>),
            (0x008 => pub iotlb: ReadWrite<u64, IOTLB::Register>),
            (0x010 => @END),
        }
    }

    register_structs! {
        /// One 128-bit fault recording register; `CAP_REG.NFR + 1` of them
        /// follow each other at `CAP_REG.FRO * 16`.
        pub FaultRecordingReg {
            (0x000 => pub lo: ReadWrite<u64, FRCD_LO::Register>),
            (0x008 => pub hi: ReadWrite<u64, FRCD_HI::Register>),
            (0x010 => @END),
        }
    }
}
pub use block::*;

/// Size of [`VtdRegs`], the fixed register block.
pub const FIXED_REGS_SIZE: usize = 0xf0;

/// Byte offset of [`IotlbRegs`] from the register block base: `IRO * 16`.
pub const fn iotlb_regs_offset(caps: &Capabilities) -> usize {
    caps.iro as usize * 16
}

/// Byte offset of fault recording register `index` from the register block
/// base, or `None` if `index >= NFR + 1`.
pub const fn fault_recording_offset(caps: &Capabilities, index: u16) -> Option<usize> {
    if index < caps.num_fault_records() {
        Some(caps.fro as usize * 16 + index as usize * 16)
    } else {
        None
    }
}

/// The size of the register frame the driver touches: the fixed block, the
/// IOTLB registers and every fault recording register, whichever ends last.
pub const fn regs_size(caps: &Capabilities) -> usize {
    let iotlb_end = iotlb_regs_offset(caps) + 16;
    let frcd_end = caps.fro as usize * 16 + caps.num_fault_records() as usize * 16;
    let mut end = FIXED_REGS_SIZE;
    if iotlb_end > end {
        end = iotlb_end;
    }
    if frcd_end > end {
        end = frcd_end;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vtd::caps::tests::qemu_caps;
    use core::mem::offset_of;
    use tock_registers::LocalRegisterCopy;

    // Offsets from the register address map (11.4, table 48 in rev 4.x).
    #[test]
    fn offsets_match_spec() {
        assert_eq!(offset_of!(VtdRegs, ver), 0x00);
        assert_eq!(offset_of!(VtdRegs, cap), 0x08);
        assert_eq!(offset_of!(VtdRegs, ecap), 0x10);
        assert_eq!(offset_of!(VtdRegs, gcmd), 0x18);
        assert_eq!(offset_of!(VtdRegs, gsts), 0x1c);
        assert_eq!(offset_of!(VtdRegs, rtaddr), 0x20);
        assert_eq!(offset_of!(VtdRegs, ccmd), 0x28);
        assert_eq!(offset_of!(VtdRegs, fsts), 0x34);
        assert_eq!(offset_of!(VtdRegs, fectl), 0x38);
        assert_eq!(offset_of!(VtdRegs, fedata), 0x3c);
        assert_eq!(offset_of!(VtdRegs, feaddr), 0x40);
        assert_eq!(offset_of!(VtdRegs, feuaddr), 0x44);
        assert_eq!(offset_of!(VtdRegs, aflog), 0x58);
        assert_eq!(offset_of!(VtdRegs, pmen), 0x64);
        assert_eq!(offset_of!(VtdRegs, plmbase), 0x68);
        assert_eq!(offset_of!(VtdRegs, plmlimit), 0x6c);
        assert_eq!(offset_of!(VtdRegs, phmbase), 0x70);
        assert_eq!(offset_of!(VtdRegs, phmlimit), 0x78);
        assert_eq!(offset_of!(VtdRegs, iqh), 0x80);
        assert_eq!(offset_of!(VtdRegs, iqt), 0x88);
        assert_eq!(offset_of!(VtdRegs, iqa), 0x90);
        assert_eq!(offset_of!(VtdRegs, ics), 0x9c);
        assert_eq!(offset_of!(VtdRegs, iectl), 0xa0);
        assert_eq!(offset_of!(VtdRegs, iedata), 0xa4);
        assert_eq!(offset_of!(VtdRegs, ieaddr), 0xa8);
        assert_eq!(offset_of!(VtdRegs, ieuaddr), 0xac);
        assert_eq!(offset_of!(VtdRegs, iqercd), 0xb0);
        assert_eq!(offset_of!(VtdRegs, irta), 0xb8);
        assert_eq!(offset_of!(VtdRegs, pqh), 0xc0);
        assert_eq!(offset_of!(VtdRegs, pqt), 0xc8);
        assert_eq!(offset_of!(VtdRegs, pqa), 0xd0);
        assert_eq!(offset_of!(VtdRegs, prs), 0xdc);
        assert_eq!(offset_of!(VtdRegs, pectl), 0xe0);
        assert_eq!(offset_of!(VtdRegs, pedata), 0xe4);
        assert_eq!(offset_of!(VtdRegs, peaddr), 0xe8);
        assert_eq!(offset_of!(VtdRegs, peuaddr), 0xec);
        assert_eq!(core::mem::size_of::<VtdRegs>(), FIXED_REGS_SIZE);
        assert_eq!(offset_of!(IotlbRegs, iva), 0);
        assert_eq!(offset_of!(IotlbRegs, iotlb), 8);
        assert_eq!(offset_of!(FaultRecordingReg, hi), 8);
    }

    #[test]
    fn offsets_from_qemu_caps() {
        // QEMU: ECAP.IRO = 0xf -> IOTLB registers at 0xf0 (IVA 0xf0, IOTLB
        // 0xf8); CAP.FRO = 0x22 -> fault records at 0x220, NFR = 0 -> one.
        let caps = qemu_caps();
        assert_eq!(iotlb_regs_offset(&caps), 0xf0);
        assert_eq!(fault_recording_offset(&caps, 0), Some(0x220));
        assert_eq!(fault_recording_offset(&caps, 1), None);
        assert_eq!(regs_size(&caps), 0x230);
    }

    #[test]
    fn gcmd_gsts_bits_match_spec() {
        let mut r = LocalRegisterCopy::<u32, GCMD::Register>::new(0);
        for (f, bit) in [
            (GCMD::TE, 31),
            (GCMD::SRTP, 30),
            (GCMD::SFL, 29),
            (GCMD::EAFL, 28),
            (GCMD::WBF, 27),
            (GCMD::QIE, 26),
            (GCMD::IRE, 25),
            (GCMD::SIRTP, 24),
            (GCMD::CFI, 23),
        ] {
            r.set(0);
            r.modify(f.val(1));
            assert_eq!(r.get(), 1 << bit, "GCMD bit {bit}");
        }
        for (f, bit) in [
            (GSTS::TES, 31),
            (GSTS::RTPS, 30),
            (GSTS::FLS, 29),
            (GSTS::AFLS, 28),
            (GSTS::WBFS, 27),
            (GSTS::QIES, 26),
            (GSTS::IRES, 25),
            (GSTS::IRTPS, 24),
            (GSTS::CFIS, 23),
        ] {
            assert!(LocalRegisterCopy::<u32, GSTS::Register>::new(1 << bit).is_set(f), "GSTS bit {bit}");
        }
    }

    #[test]
    fn status_and_control_bits_match_spec() {
        // FSTS: PFO 0, PPF 1, IQE 4, ICE 5, ITE 6, FRI 15:8.
        let f = LocalRegisterCopy::<u32, FSTS::Register>::new(0x0000_2a73);
        assert!(f.is_set(FSTS::PFO) && f.is_set(FSTS::PPF) && f.is_set(FSTS::IQE));
        assert!(f.is_set(FSTS::ICE) && f.is_set(FSTS::ITE));
        assert_eq!(f.read(FSTS::FRI), 0x2a);
        // FECTL/IECTL/PECTL: IM 31, IP 30.
        let c = LocalRegisterCopy::<u32, EVENT_CTL::Register>::new(0x8000_0000);
        assert!(c.is_set(EVENT_CTL::IM) && !c.is_set(EVENT_CTL::IP));
        let mut a = LocalRegisterCopy::<u32, EVENT_ADDR::Register>::new(0);
        a.write(EVENT_ADDR::MA.val(0xfee0_0000 >> 2));
        assert_eq!(a.get(), 0xfee0_0000);
        let p = LocalRegisterCopy::<u32, PMEN::Register>::new(0x8000_0001);
        assert!(p.is_set(PMEN::EPM) && p.is_set(PMEN::PRS));
        assert!(LocalRegisterCopy::<u32, ICS::Register>::new(1).is_set(ICS::IWC));
        assert!(LocalRegisterCopy::<u32, PRS::Register>::new(2).is_set(PRS::PRO));
        let v = LocalRegisterCopy::<u32, VER::Register>::new(0x10);
        assert_eq!((v.read(VER::MAX), v.read(VER::MIN)), (1, 0));
    }

    #[test]
    fn address_registers_match_spec() {
        // RTADDR: TTM 11:10, RTA 63:12.
        let mut r = LocalRegisterCopy::<u64, RTADDR::Register>::new(0);
        r.write(RTADDR::RTA.val(0x1234_5000 >> 12) + RTADDR::TTM::Scalable);
        assert_eq!(r.get(), 0x1234_5000 | (1 << 10));
        // IQA: QS 2:0, DW 11, IQA 63:12.
        let mut q = LocalRegisterCopy::<u64, IQA::Register>::new(0);
        q.write(IQA::IQA.val(0x8_0000_0000 >> 12) + IQA::DW.val(1) + IQA::QS.val(3));
        assert_eq!(q.get(), 0x8_0000_0000 | (1 << 11) | 3);
        // IQH/IQT: 18:4.
        let t = LocalRegisterCopy::<u64, IQT::Register>::new(0x7fff0);
        assert_eq!(t.read(IQT::QT), 0x7fff);
        assert_eq!(LocalRegisterCopy::<u64, IQH::Register>::new(0x20).read(IQH::QH), 2);
        // IRTA: S 3:0, EIME 11, IRTA 63:12.
        let mut i = LocalRegisterCopy::<u64, IRTA::Register>::new(0);
        i.write(IRTA::IRTA.val(0x20_0000 >> 12) + IRTA::EIME.val(1) + IRTA::S.val(0xf));
        assert_eq!(i.get(), 0x20_0000 | (1 << 11) | 0xf);
        // PQH/PQT: 18:5; PQA: PQS 2:0, PQA 63:12.
        assert_eq!(LocalRegisterCopy::<u64, PQT::Register>::new(0x7ffe0).read(PQT::PQT), 0x3fff);
        assert_eq!(LocalRegisterCopy::<u64, PQH::Register>::new(0x40).read(PQH::PQH), 2);
        let pq = LocalRegisterCopy::<u64, PQA::Register>::new(0x4000_0002);
        assert_eq!((pq.read(PQA::PQA), pq.read(PQA::PQS)), (0x4_0000, 2));
        // IQERCD: IQEI 3:0, ITESID 47:32, ICESID 63:48.
        let e = LocalRegisterCopy::<u64, IQERCD::Register>::new(0xabcd_1234_0000_0006);
        assert_eq!(
            (e.read(IQERCD::IQEI), e.read(IQERCD::ITESID), e.read(IQERCD::ICESID)),
            (6, 0x1234, 0xabcd)
        );
        // AFLOG: FLS 11:9, FLA 63:12.
        let l = LocalRegisterCopy::<u64, AFLOG::Register>::new(0x1000 | (5 << 9));
        assert_eq!((l.read(AFLOG::FLA), l.read(AFLOG::FLS)), (1, 5));
    }
}
