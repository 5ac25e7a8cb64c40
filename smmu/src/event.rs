//! Event records (IHI 0070 7.3): 32 bytes written by the SMMU to the Event
//! queue. Decoding is total: every record becomes an [`Event`], unknown
//! event numbers included, because records come from hardware and are not
//! trusted to be well formed.

use core::fmt;

use iommu_common::addr::{Iova, Ipa, PhysAddr};
use tock_registers::LocalRegisterCopy;

use crate::ids::{StreamId, SubstreamId};

// Generated items (Register marker types, SET/CLEAR values) carry the
// spec names documented on each field; the macro cannot document them.
#[allow(missing_docs)]
mod layout {
    use tock_registers::register_bitfields;
    register_bitfields! [u64,
        /// Event record word 0.
        pub EVT_0 [
            /// Event number.
            TYPE OFFSET(0) NUMBITS(8) [],
            /// SubstreamID valid.
            SSV OFFSET(11) NUMBITS(1) [],
            /// SubstreamID.
            SUBSTREAMID OFFSET(12) NUMBITS(20) [],
            /// StreamID.
            STREAMID OFFSET(32) NUMBITS(32) []
        ],
        /// Event record word 1 (fields vary per event).
        pub EVT_1 [
            /// Stall tag.
            STAG OFFSET(0) NUMBITS(16) [],
            /// Fetch events: IMPLEMENTATION DEFINED reason.
            FETCH_REASON OFFSET(0) NUMBITS(16) [],
            /// Fetch events: Granule Protection Check fault.
            GPCF OFFSET(16) NUMBITS(1) [],
            /// F_UUT: IMPLEMENTATION DEFINED reason.
            UUT_REASON OFFSET(16) NUMBITS(16) [],
            /// F_CFG_CONFLICT: IMPLEMENTATION DEFINED reason.
            CFG_REASON OFFSET(0) NUMBITS(32) [],
            /// The transaction is stalled.
            STALL OFFSET(31) NUMBITS(1) [],
            /// Privileged (1) or unprivileged (0).
            PNU OFFSET(33) NUMBITS(1) [],
            /// Instruction (1) or data (0).
            IND OFFSET(34) NUMBITS(1) [],
            /// Read (1) or write (0).
            RNW OFFSET(35) NUMBITS(1) [],
            /// The IPA is Non-secure (Secure streams only).
            NSIPA OFFSET(38) NUMBITS(1) [],
            /// Stage 2 fault.
            S2 OFFSET(39) NUMBITS(1) [],
            /// Class of the faulting access.
            CLASS OFFSET(40) NUMBITS(2) [],
            /// E_PAGE_REQUEST: unprivileged execute.
            UX OFFSET(33) NUMBITS(1) [],
            /// E_PAGE_REQUEST: unprivileged write.
            UW OFFSET(34) NUMBITS(1) [],
            /// E_PAGE_REQUEST: unprivileged read.
            UR OFFSET(35) NUMBITS(1) [],
            /// E_PAGE_REQUEST: privileged execute.
            PX OFFSET(37) NUMBITS(1) [],
            /// E_PAGE_REQUEST: privileged write.
            PW OFFSET(38) NUMBITS(1) [],
            /// E_PAGE_REQUEST: privileged read.
            PR OFFSET(39) NUMBITS(1) [],
            /// E_PAGE_REQUEST: span in 4 KiB pages.
            SPAN OFFSET(44) NUMBITS(8) []
        ],
        /// Event record word 3.
        pub EVT_3 [
            /// Fetch address, bits `[55:3]`.
            FETCHADDR OFFSET(3) NUMBITS(53) [],
            /// IPA, bits `[55:12]`.
            IPA OFFSET(12) NUMBITS(44) []
        ]
    ];
}
pub use layout::*;

/// Event numbers (7.3).
pub mod code {
    /// F_UUT.
    pub const F_UUT: u8 = 0x01;
    /// C_BAD_STREAMID.
    pub const C_BAD_STREAMID: u8 = 0x02;
    /// F_STE_FETCH.
    pub const F_STE_FETCH: u8 = 0x03;
    /// C_BAD_STE.
    pub const C_BAD_STE: u8 = 0x04;
    /// F_BAD_ATS_TREQ.
    pub const F_BAD_ATS_TREQ: u8 = 0x05;
    /// F_STREAM_DISABLED.
    pub const F_STREAM_DISABLED: u8 = 0x06;
    /// F_TRANSL_FORBIDDEN.
    pub const F_TRANSL_FORBIDDEN: u8 = 0x07;
    /// C_BAD_SUBSTREAMID.
    pub const C_BAD_SUBSTREAMID: u8 = 0x08;
    /// F_CD_FETCH.
    pub const F_CD_FETCH: u8 = 0x09;
    /// C_BAD_CD.
    pub const C_BAD_CD: u8 = 0x0a;
    /// F_WALK_EABT.
    pub const F_WALK_EABT: u8 = 0x0b;
    /// F_TRANSLATION.
    pub const F_TRANSLATION: u8 = 0x10;
    /// F_ADDR_SIZE.
    pub const F_ADDR_SIZE: u8 = 0x11;
    /// F_ACCESS.
    pub const F_ACCESS: u8 = 0x12;
    /// F_PERMISSION.
    pub const F_PERMISSION: u8 = 0x13;
    /// F_TLB_CONFLICT.
    pub const F_TLB_CONFLICT: u8 = 0x20;
    /// F_CFG_CONFLICT.
    pub const F_CFG_CONFLICT: u8 = 0x21;
    /// E_PAGE_REQUEST.
    pub const E_PAGE_REQUEST: u8 = 0x24;
    /// F_VMS_FETCH.
    pub const F_VMS_FETCH: u8 = 0x25;
}

/// The requester of the transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamInfo {
    /// StreamID.
    pub sid: StreamId,
    /// SubstreamID when SSV == 1.
    pub ssid: Option<SubstreamId>,
}

/// Attributes of the faulting transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// RnW: read (true) or write (false).
    pub rnw: bool,
    /// InD: instruction fetch (true) or data (false).
    pub ind: bool,
    /// PnU: privileged (true) or unprivileged (false).
    pub pnu: bool,
}

impl Access {
    /// Whether the transaction was a write.
    pub const fn is_write(&self) -> bool {
        !self.rnw
    }
}

/// CLASS: which access faulted (7.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultClass {
    /// 0b00 CD fetch.
    Cd,
    /// 0b01 stage 1 translation table fetch.
    Tt,
    /// 0b10 the input address.
    In,
    /// 0b11 reserved.
    Reserved,
}

/// The common content of F_WALK_EABT, F_TRANSLATION, F_ADDR_SIZE, F_ACCESS
/// and F_PERMISSION records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Requester.
    pub stream: StreamInfo,
    /// InputAddr: the address presented to the SMMU.
    pub input_addr: Iova,
    /// Transaction attributes.
    pub access: Access,
    /// S2: the fault is a stage 2 fault.
    pub s2: bool,
    /// CLASS.
    pub class: FaultClass,
    /// STAG of a stalled transaction (Stall == 1).
    pub stall: Option<u16>,
    /// NSIPA.
    pub nsipa: bool,
}

/// Permissions anticipated by an E_PAGE_REQUEST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PagePerms {
    /// pR.
    pub priv_read: bool,
    /// pW.
    pub priv_write: bool,
    /// pX.
    pub priv_exec: bool,
    /// uR.
    pub user_read: bool,
    /// uW.
    pub user_write: bool,
    /// uX.
    pub user_exec: bool,
}

/// A decoded event record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// F_UUT (0x01): unsupported upstream transaction.
    UnsupportedTransaction {
        /// Requester.
        stream: StreamInfo,
        /// InputAddr.
        input_addr: Iova,
        /// Attributes (incoming, not overridden).
        access: Access,
        /// IMPLEMENTATION DEFINED reason.
        reason: u16,
    },
    /// C_BAD_STREAMID (0x02): StreamID out of range of the Stream table.
    BadStreamId {
        /// Requester.
        stream: StreamInfo,
    },
    /// F_STE_FETCH (0x03): fetching the STE aborted.
    SteFetch {
        /// Requester.
        stream: StreamInfo,
        /// FetchAddr.
        fetch_addr: PhysAddr,
        /// IMPLEMENTATION DEFINED reason.
        reason: u16,
    },
    /// C_BAD_STE (0x04): the STE is invalid or ILLEGAL.
    BadSte {
        /// Requester.
        stream: StreamInfo,
    },
    /// F_BAD_ATS_TREQ (0x05): ATS Translation Request refused.
    BadAtsTreq {
        /// Requester.
        stream: StreamInfo,
        /// Requested address (bits `[11:0]` zero).
        input_addr: Iova,
    },
    /// F_STREAM_DISABLED (0x06): non-substream traffic disabled by S1DSS.
    StreamDisabled {
        /// StreamID.
        sid: StreamId,
    },
    /// F_TRANSL_FORBIDDEN (0x07): ATS Translated traffic not allowed.
    TranslationForbidden {
        /// StreamID.
        sid: StreamId,
        /// InputAddr.
        input_addr: Iova,
        /// RnW.
        rnw: bool,
    },
    /// C_BAD_SUBSTREAMID (0x08).
    BadSubstreamId {
        /// StreamID.
        sid: StreamId,
        /// The SubstreamID supplied (always valid in this record).
        ssid: u32,
    },
    /// F_CD_FETCH (0x09): fetching the CD aborted.
    CdFetch {
        /// Requester.
        stream: StreamInfo,
        /// FetchAddr.
        fetch_addr: PhysAddr,
        /// IMPLEMENTATION DEFINED reason.
        reason: u16,
    },
    /// C_BAD_CD (0x0a): the CD is invalid or ILLEGAL.
    BadCd {
        /// Requester.
        stream: StreamInfo,
    },
    /// F_WALK_EABT (0x0b): external abort on a table walk.
    WalkAbort {
        /// The fault.
        fault: Fault,
        /// FetchAddr: the descriptor address.
        fetch_addr: PhysAddr,
    },
    /// F_TRANSLATION (0x10).
    Translation {
        /// The fault.
        fault: Fault,
        /// IPA (stage 2 faults only).
        ipa: Option<Ipa>,
    },
    /// F_ADDR_SIZE (0x11).
    AddressSize {
        /// The fault.
        fault: Fault,
        /// IPA (stage 2 faults only).
        ipa: Option<Ipa>,
    },
    /// F_ACCESS (0x12): Access flag fault.
    AccessFlag {
        /// The fault.
        fault: Fault,
        /// IPA (stage 2 faults only).
        ipa: Option<Ipa>,
    },
    /// F_PERMISSION (0x13).
    Permission {
        /// The fault.
        fault: Fault,
        /// IPA (stage 2 faults only).
        ipa: Option<Ipa>,
    },
    /// F_TLB_CONFLICT (0x20).
    TlbConflict {
        /// Requester.
        stream: StreamInfo,
        /// InputAddr.
        input_addr: Iova,
        /// Attributes.
        access: Access,
        /// S2.
        s2: bool,
        /// The IPA reported with the conflict.
        ipa: Ipa,
    },
    /// F_CFG_CONFLICT (0x21).
    ConfigConflict {
        /// Requester.
        stream: StreamInfo,
        /// IMPLEMENTATION DEFINED reason.
        reason: u32,
    },
    /// E_PAGE_REQUEST (0x24): speculative page request hint.
    PageRequest {
        /// Requester.
        stream: StreamInfo,
        /// Page address.
        addr: Iova,
        /// Span in 4 KiB pages.
        span: u8,
        /// Anticipated permissions.
        perms: PagePerms,
    },
    /// F_VMS_FETCH (0x25).
    VmsFetch {
        /// Requester.
        stream: StreamInfo,
        /// FetchAddr.
        fetch_addr: PhysAddr,
        /// IMPLEMENTATION DEFINED reason.
        reason: u16,
    },
    /// IMPDEF_EVENTn (0xe0..=0xef).
    ImplementationDefined {
        /// Event number.
        code: u8,
        /// The raw record.
        record: [u64; 4],
    },
    /// A reserved event number.
    Unknown {
        /// Event number.
        code: u8,
        /// The raw record.
        record: [u64; 4],
    },
}

impl Event {
    /// Decodes a record. Never fails: unknown numbers become
    /// [`Event::Unknown`]; fields are read where the record type defines them.
    pub fn decode(record: [u64; 4]) -> Self {
        let w0 = LocalRegisterCopy::<u64, EVT_0::Register>::new(record[0]);
        let w1 = LocalRegisterCopy::<u64, EVT_1::Register>::new(record[1]);
        let w3 = LocalRegisterCopy::<u64, EVT_3::Register>::new(record[3]);
        // All narrowing casts below are of fields no wider than the target.
        let sid = StreamId(w0.read(EVT_0::STREAMID) as u32);
        let raw_ssid = w0.read(EVT_0::SUBSTREAMID) as u32;
        let stream =
            StreamInfo { sid, ssid: if w0.is_set(EVT_0::SSV) { SubstreamId::new(raw_ssid) } else { None } };
        let input_addr = Iova(record[2]);
        let access =
            Access { rnw: w1.is_set(EVT_1::RNW), ind: w1.is_set(EVT_1::IND), pnu: w1.is_set(EVT_1::PNU) };
        let fetch_addr = PhysAddr(w3.read(EVT_3::FETCHADDR) << 3);
        let fetch_reason = w1.read(EVT_1::FETCH_REASON) as u16;
        let s2 = w1.is_set(EVT_1::S2);
        let fault = Fault {
            stream,
            input_addr,
            access,
            s2,
            class: match w1.read(EVT_1::CLASS) {
                0 => FaultClass::Cd,
                1 => FaultClass::Tt,
                2 => FaultClass::In,
                _ => FaultClass::Reserved,
            },
            stall: w1.is_set(EVT_1::STALL).then(|| w1.read(EVT_1::STAG) as u16),
            nsipa: w1.is_set(EVT_1::NSIPA),
        };
        let ipa = Ipa(w3.read(EVT_3::IPA) << 12);
        let fault_ipa = s2.then_some(ipa);
        let c = w0.read(EVT_0::TYPE) as u8;
        match c {
            code::F_UUT => Self::UnsupportedTransaction {
                stream,
                input_addr,
                access,
                reason: w1.read(EVT_1::UUT_REASON) as u16,
            },
            code::C_BAD_STREAMID => Self::BadStreamId { stream },
            code::F_STE_FETCH => Self::SteFetch { stream, fetch_addr, reason: fetch_reason },
            code::C_BAD_STE => Self::BadSte { stream },
            code::F_BAD_ATS_TREQ => Self::BadAtsTreq { stream, input_addr: Iova(record[2] & !0xfff) },
            code::F_STREAM_DISABLED => Self::StreamDisabled { sid },
            code::F_TRANSL_FORBIDDEN => Self::TranslationForbidden { sid, input_addr, rnw: access.rnw },
            code::C_BAD_SUBSTREAMID => Self::BadSubstreamId { sid, ssid: raw_ssid },
            code::F_CD_FETCH => Self::CdFetch { stream, fetch_addr, reason: fetch_reason },
            code::C_BAD_CD => Self::BadCd { stream },
            code::F_WALK_EABT => Self::WalkAbort { fault, fetch_addr },
            code::F_TRANSLATION => Self::Translation { fault, ipa: fault_ipa },
            code::F_ADDR_SIZE => Self::AddressSize { fault, ipa: fault_ipa },
            code::F_ACCESS => Self::AccessFlag { fault, ipa: fault_ipa },
            code::F_PERMISSION => Self::Permission { fault, ipa: fault_ipa },
            code::F_TLB_CONFLICT => Self::TlbConflict { stream, input_addr, access, s2, ipa },
            code::F_CFG_CONFLICT => {
                Self::ConfigConflict { stream, reason: w1.read(EVT_1::CFG_REASON) as u32 }
            }
            code::E_PAGE_REQUEST => Self::PageRequest {
                stream,
                addr: Iova(record[2] & !0xfff),
                span: w1.read(EVT_1::SPAN) as u8,
                perms: PagePerms {
                    priv_read: w1.is_set(EVT_1::PR),
                    priv_write: w1.is_set(EVT_1::PW),
                    priv_exec: w1.is_set(EVT_1::PX),
                    user_read: w1.is_set(EVT_1::UR),
                    user_write: w1.is_set(EVT_1::UW),
                    user_exec: w1.is_set(EVT_1::UX),
                },
            },
            code::F_VMS_FETCH => Self::VmsFetch { stream, fetch_addr, reason: fetch_reason },
            0xe0..=0xef => Self::ImplementationDefined { code: c, record },
            _ => Self::Unknown { code: c, record },
        }
    }

    /// The event number.
    pub fn code(&self) -> u8 {
        match self {
            Self::UnsupportedTransaction { .. } => code::F_UUT,
            Self::BadStreamId { .. } => code::C_BAD_STREAMID,
            Self::SteFetch { .. } => code::F_STE_FETCH,
            Self::BadSte { .. } => code::C_BAD_STE,
            Self::BadAtsTreq { .. } => code::F_BAD_ATS_TREQ,
            Self::StreamDisabled { .. } => code::F_STREAM_DISABLED,
            Self::TranslationForbidden { .. } => code::F_TRANSL_FORBIDDEN,
            Self::BadSubstreamId { .. } => code::C_BAD_SUBSTREAMID,
            Self::CdFetch { .. } => code::F_CD_FETCH,
            Self::BadCd { .. } => code::C_BAD_CD,
            Self::WalkAbort { .. } => code::F_WALK_EABT,
            Self::Translation { .. } => code::F_TRANSLATION,
            Self::AddressSize { .. } => code::F_ADDR_SIZE,
            Self::AccessFlag { .. } => code::F_ACCESS,
            Self::Permission { .. } => code::F_PERMISSION,
            Self::TlbConflict { .. } => code::F_TLB_CONFLICT,
            Self::ConfigConflict { .. } => code::F_CFG_CONFLICT,
            Self::PageRequest { .. } => code::E_PAGE_REQUEST,
            Self::VmsFetch { .. } => code::F_VMS_FETCH,
            Self::ImplementationDefined { code, .. } | Self::Unknown { code, .. } => *code,
        }
    }

    /// The spec name of the event.
    pub fn name(&self) -> &'static str {
        match self {
            Self::UnsupportedTransaction { .. } => "F_UUT",
            Self::BadStreamId { .. } => "C_BAD_STREAMID",
            Self::SteFetch { .. } => "F_STE_FETCH",
            Self::BadSte { .. } => "C_BAD_STE",
            Self::BadAtsTreq { .. } => "F_BAD_ATS_TREQ",
            Self::StreamDisabled { .. } => "F_STREAM_DISABLED",
            Self::TranslationForbidden { .. } => "F_TRANSL_FORBIDDEN",
            Self::BadSubstreamId { .. } => "C_BAD_SUBSTREAMID",
            Self::CdFetch { .. } => "F_CD_FETCH",
            Self::BadCd { .. } => "C_BAD_CD",
            Self::WalkAbort { .. } => "F_WALK_EABT",
            Self::Translation { .. } => "F_TRANSLATION",
            Self::AddressSize { .. } => "F_ADDR_SIZE",
            Self::AccessFlag { .. } => "F_ACCESS",
            Self::Permission { .. } => "F_PERMISSION",
            Self::TlbConflict { .. } => "F_TLB_CONFLICT",
            Self::ConfigConflict { .. } => "F_CFG_CONFLICT",
            Self::PageRequest { .. } => "E_PAGE_REQUEST",
            Self::VmsFetch { .. } => "F_VMS_FETCH",
            Self::ImplementationDefined { .. } => "IMPDEF_EVENT",
            Self::Unknown { .. } => "reserved",
        }
    }

    /// The StreamID the record names.
    pub fn stream_id(&self) -> StreamId {
        match self {
            Self::UnsupportedTransaction { stream, .. }
            | Self::BadStreamId { stream }
            | Self::SteFetch { stream, .. }
            | Self::BadSte { stream }
            | Self::BadAtsTreq { stream, .. }
            | Self::CdFetch { stream, .. }
            | Self::BadCd { stream }
            | Self::TlbConflict { stream, .. }
            | Self::ConfigConflict { stream, .. }
            | Self::PageRequest { stream, .. }
            | Self::VmsFetch { stream, .. } => stream.sid,
            Self::StreamDisabled { sid }
            | Self::TranslationForbidden { sid, .. }
            | Self::BadSubstreamId { sid, .. } => *sid,
            Self::WalkAbort { fault, .. }
            | Self::Translation { fault, .. }
            | Self::AddressSize { fault, .. }
            | Self::AccessFlag { fault, .. }
            | Self::Permission { fault, .. } => fault.stream.sid,
            Self::ImplementationDefined { record, .. } | Self::Unknown { record, .. } => {
                StreamId((record[0] >> 32) as u32)
            }
        }
    }

    /// The fault details, for the translation-related faults.
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Self::WalkAbort { fault, .. }
            | Self::Translation { fault, .. }
            | Self::AddressSize { fault, .. }
            | Self::AccessFlag { fault, .. }
            | Self::Permission { fault, .. } => Some(fault),
            _ => None,
        }
    }
}

impl fmt::Display for Event {
    /// One line: name, StreamID, and the address and access where present.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), self.stream_id())?;
        if let Some(fault) = self.fault() {
            let rw = if fault.access.rnw { "read" } else { "write" };
            let stage = if fault.s2 { 2 } else { 1 };
            write!(f, " addr {:#x} {rw} stage {stage} class {:?}", fault.input_addr.0, fault.class)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds word 0 from the common layout: type `[7:0]`, SSV `[11]`,
    /// SubstreamID `[31:12]`, StreamID `[63:32]`.
    fn w0(code: u64, sid: u64, ssid: Option<u64>) -> u64 {
        code | ssid.map_or(0, |s| (1 << 11) | (s << 12)) | (sid << 32)
    }

    #[test]
    fn f_translation_stage2() {
        // Stall [95]=0, PnU [97], InD [98]=0, RnW [99]=0 (write), S2 [103],
        // CLASS [105:104] = 0b10 (IN); InputAddr [191:128]; IPA [247:204].
        let rec = [w0(0x10, 0x18, None), (1 << 33) | (1 << 39) | (0b10 << 40), 0x8000_1234, 0x4_5678_9000];
        let e = Event::decode(rec);
        assert_eq!(
            e,
            Event::Translation {
                fault: Fault {
                    stream: StreamInfo { sid: StreamId(0x18), ssid: None },
                    input_addr: Iova(0x8000_1234),
                    access: Access { rnw: false, ind: false, pnu: true },
                    s2: true,
                    class: FaultClass::In,
                    stall: None,
                    nsipa: false,
                },
                ipa: Some(Ipa(0x4_5678_9000)),
            }
        );
        assert_eq!(e.name(), "F_TRANSLATION");
        assert_eq!(e.code(), 0x10);
        assert!(e.fault().unwrap().access.is_write());
    }

    #[test]
    fn stage1_permission_with_stall_and_substream() {
        let rec = [w0(0x13, 7, Some(0xabcde)), 0xbeef | (1 << 31) | (1 << 35) | (1 << 34), 0x1000, 0x9000];
        let Event::Permission { fault, ipa } = Event::decode(rec) else { panic!() };
        assert_eq!(fault.stream.ssid, SubstreamId::new(0xabcde));
        assert_eq!(fault.stall, Some(0xbeef));
        assert!(fault.access.rnw && fault.access.ind);
        assert_eq!(fault.class, FaultClass::Cd);
        assert_eq!(ipa, None, "IPA only valid for stage 2 faults");
    }

    #[test]
    fn fetch_events_carry_fetch_addr() {
        // FetchAddr [247:195] -> word 3 [55:3].
        let rec = [w0(0x03, 0x20, None), 0x12, 0, 0x00ff_ffff_ffff_fff8];
        assert_eq!(
            Event::decode(rec),
            Event::SteFetch {
                stream: StreamInfo { sid: StreamId(0x20), ssid: None },
                fetch_addr: PhysAddr(0x00ff_ffff_ffff_fff8),
                reason: 0x12,
            }
        );
        let rec = [w0(0x0b, 1, None), 1 << 40, 0x2000, 0x4000_0008];
        let Event::WalkAbort { fault, fetch_addr } = Event::decode(rec) else { panic!() };
        assert_eq!(fault.class, FaultClass::Tt);
        assert_eq!(fetch_addr, PhysAddr(0x4000_0008));
        let rec = [w0(0x09, 1, Some(3)), 0, 0, 0x100];
        assert!(matches!(Event::decode(rec), Event::CdFetch { fetch_addr: PhysAddr(0x100), .. }));
        let rec = [w0(0x25, 1, None), 0, 0, 0x200];
        assert!(matches!(Event::decode(rec), Event::VmsFetch { fetch_addr: PhysAddr(0x200), .. }));
    }

    #[test]
    fn configuration_errors() {
        let e = Event::decode([w0(0x02, 0xffff_ffff, None), 0, 0, 0]);
        assert_eq!(e, Event::BadStreamId { stream: StreamInfo { sid: StreamId(0xffff_ffff), ssid: None } });
        assert!(matches!(Event::decode([w0(0x04, 5, Some(1)), 0, 0, 0]), Event::BadSte { .. }));
        assert!(matches!(Event::decode([w0(0x0a, 5, None), 0, 0, 0]), Event::BadCd { .. }));
        // C_BAD_SUBSTREAMID: SubstreamID always valid, no SSV.
        assert_eq!(
            Event::decode([w0(0x08, 5, None) | (0x42 << 12), 0, 0, 0]),
            Event::BadSubstreamId { sid: StreamId(5), ssid: 0x42 }
        );
        assert_eq!(Event::decode([w0(0x06, 9, None), 0, 0, 0]), Event::StreamDisabled { sid: StreamId(9) });
        assert_eq!(
            Event::decode([w0(0x21, 1, None), 0xdead_beef, 0, 0]),
            Event::ConfigConflict {
                stream: StreamInfo { sid: StreamId(1), ssid: None },
                reason: 0xdead_beef
            }
        );
    }

    #[test]
    fn uut_forbidden_and_ats() {
        // F_UUT: Reason [95:80], RnW [99], InD [98], PnU [97].
        let e = Event::decode([w0(0x01, 3, None), (0x77 << 16) | (1 << 35), 0xfeed, 0]);
        assert_eq!(
            e,
            Event::UnsupportedTransaction {
                stream: StreamInfo { sid: StreamId(3), ssid: None },
                input_addr: Iova(0xfeed),
                access: Access { rnw: true, ind: false, pnu: false },
                reason: 0x77,
            }
        );
        let e = Event::decode([w0(0x07, 3, None), 1 << 35, 0xabc000, 0]);
        assert_eq!(
            e,
            Event::TranslationForbidden { sid: StreamId(3), input_addr: Iova(0xabc000), rnw: true }
        );
        assert!(matches!(
            Event::decode([w0(0x05, 3, None), 0, 0x5fff, 0]),
            Event::BadAtsTreq { input_addr: Iova(0x5000), .. }
        ));
    }

    #[test]
    fn page_request_and_tlb_conflict() {
        // Span [115:108], pR [103], pW [102], pX [101], uR [99], uW [98], uX [97].
        let rec = [w0(0x24, 2, Some(1)), (4 << 44) | (1 << 39) | (1 << 35) | (1 << 33), 0x7000_0abc, 0];
        assert_eq!(
            Event::decode(rec),
            Event::PageRequest {
                stream: StreamInfo { sid: StreamId(2), ssid: SubstreamId::new(1) },
                addr: Iova(0x7000_0000),
                span: 4,
                perms: PagePerms {
                    priv_read: true,
                    priv_write: false,
                    priv_exec: false,
                    user_read: true,
                    user_write: false,
                    user_exec: true,
                },
            }
        );
        let rec = [w0(0x20, 2, None), 1 << 39, 0x1000, 0x2000];
        assert!(matches!(Event::decode(rec), Event::TlbConflict { s2: true, ipa: Ipa(0x2000), .. }));
    }

    #[test]
    fn unknown_and_impdef() {
        let rec = [w0(0x0c, 1, None), 1, 2, 3];
        assert_eq!(Event::decode(rec), Event::Unknown { code: 0x0c, record: rec });
        let rec = [w0(0xe3, 1, None), 0, 0, 0];
        assert_eq!(Event::decode(rec).name(), "IMPDEF_EVENT");
        assert_eq!(Event::decode([0; 4]), Event::Unknown { code: 0, record: [0; 4] });
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config(1024))]

        #[test]
        fn decode_never_panics(rec in any::<[u64; 4]>()) {
            let e = Event::decode(rec);
            prop_assert_eq!(e.code(), rec[0] as u8);
            prop_assert_eq!(e.stream_id().0, (rec[0] >> 32) as u32);
            let _ = std::format!("{e}");
        }
    }
}
