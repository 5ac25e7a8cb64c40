//! Event log entries (48882 2.5): 128-bit records the IOMMU writes to the
//! event log. Decoding is total: every record becomes an [`Event`], unknown
//! codes included, because records come from hardware and are not trusted.
//!
//! Common layout: EventCode `[63:60]`; most events carry DeviceID `[15:0]`,
//! PASID`[19:16]` at `[19:16]`, PASID`[15:0]` or DomainID at `[47:32]`,
//! flags in `[59:48]` and an address in `[127:64]`. Flag bits: GN `[48]`,
//! NX `[49]`, US `[50]`, I `[51]`, PR `[52]`, RW `[53]`, PE `[54]`, RZ
//! `[55]`, TR `[56]`, and a Type field in `[59:57]` for some events.
//!
//! Overflow: when the log fills, the IOMMU sets Status.EventOverflow and
//! stops logging (EventLogRun clears); [`overflow`] reads that from a
//! [`Status`].

use core::fmt;

use iommu_common::addr::{Iova, PhysAddr};

use crate::amdvi::ids::{DeviceId, DomainId, Pasid};
use crate::amdvi::regs::Status;

/// Event codes (2.5).
pub mod code {
    /// ILLEGAL_DEV_TABLE_ENTRY.
    pub const ILLEGAL_DEV_TABLE_ENTRY: u8 = 0x1;
    /// IO_PAGE_FAULT.
    pub const IO_PAGE_FAULT: u8 = 0x2;
    /// DEV_TAB_HARDWARE_ERROR.
    pub const DEV_TAB_HARDWARE_ERROR: u8 = 0x3;
    /// PAGE_TAB_HARDWARE_ERROR.
    pub const PAGE_TAB_HARDWARE_ERROR: u8 = 0x4;
    /// ILLEGAL_COMMAND_ERROR.
    pub const ILLEGAL_COMMAND_ERROR: u8 = 0x5;
    /// COMMAND_HARDWARE_ERROR.
    pub const COMMAND_HARDWARE_ERROR: u8 = 0x6;
    /// IOTLB_INV_TIMEOUT.
    pub const IOTLB_INV_TIMEOUT: u8 = 0x7;
    /// INVALID_DEVICE_REQUEST.
    pub const INVALID_DEVICE_REQUEST: u8 = 0x8;
    /// INVALID_PPR_REQUEST.
    pub const INVALID_PPR_REQUEST: u8 = 0x9;
    /// EVENT_COUNTER_ZERO.
    pub const EVENT_COUNTER_ZERO: u8 = 0xa;
    /// GUEST_EVENT_FAULT.
    pub const GUEST_EVENT_FAULT: u8 = 0xb;
}

/// The flag bits `[59:48]` of an event, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Flags {
    /// GN: guest (PASID-tagged, GVA) access; PASID replaces DomainID.
    pub gn: bool,
    /// NX: an instruction fetch.
    pub nx: bool,
    /// US: user (1) or supervisor (0) access.
    pub us: bool,
    /// I: an interrupt request (0: a memory access).
    pub i: bool,
    /// PR: the page was present (the fault is a permission fault).
    pub pr: bool,
    /// RW: a write (1) or read (0).
    pub rw: bool,
    /// PE: permission denied.
    pub pe: bool,
    /// RZ: a reserved bit was set (or a bad level encoding) in a table entry.
    pub rz: bool,
    /// TR: a translation request (ATS) rather than a transaction.
    pub tr: bool,
    /// Type `[59:57]` (meaning per event; 2-bit for hardware errors).
    pub ty: u8,
}

impl Flags {
    /// Decodes the flags of record word 0.
    pub fn decode(w0: u64) -> Self {
        let b = |n: u32| w0 >> n & 1 != 0;
        Self {
            gn: b(48),
            nx: b(49),
            us: b(50),
            i: b(51),
            pr: b(52),
            rw: b(53),
            pe: b(54),
            rz: b(55),
            tr: b(56),
            ty: ((w0 >> 57) & 7) as u8,
        }
    }

    /// The raw 12-bit field (Linux prints this as `flags=`).
    pub const fn raw(w0: u64) -> u16 {
        ((w0 >> 48) & 0xfff) as u16
    }
}

/// Type of a hardware error (DEV_TAB/PAGE_TAB/COMMAND_HARDWARE_ERROR).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwErrorType {
    /// 00b: reserved.
    Reserved,
    /// 01b: master abort.
    MasterAbort,
    /// 10b: target abort.
    TargetAbort,
    /// 11b: data error.
    DataError,
}

impl HwErrorType {
    const fn decode(ty: u8) -> Self {
        match ty & 3 {
            1 => Self::MasterAbort,
            2 => Self::TargetAbort,
            3 => Self::DataError,
            _ => Self::Reserved,
        }
    }
}

/// Who an address-translation event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// GN=0: the DomainID.
    Domain(DomainId),
    /// GN=1: the PASID.
    Pasid(Pasid),
}

/// An event log entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// ILLEGAL_DEV_TABLE_ENTRY: the DTE had reserved bits or encodings.
    IllegalDevTableEntry {
        /// DeviceID.
        device: DeviceId,
        /// PASID (meaningful with GN).
        pasid: Pasid,
        /// Flags (GN, I, RW, RZ, TR).
        flags: Flags,
        /// Address `[63:2]` of the request.
        addr: Iova,
    },
    /// IO_PAGE_FAULT: a translation or permission fault.
    IoPageFault {
        /// DeviceID.
        device: DeviceId,
        /// DomainID (GN=0) or PASID (GN=1).
        tag: Tag,
        /// Flags.
        flags: Flags,
        /// The faulting address.
        addr: Iova,
    },
    /// DEV_TAB_HARDWARE_ERROR: reading the DTE failed.
    DevTabHardwareError {
        /// DeviceID.
        device: DeviceId,
        /// Flags (I, RW, TR).
        flags: Flags,
        /// Type.
        ty: HwErrorType,
        /// The DTE's address.
        addr: PhysAddr,
    },
    /// PAGE_TAB_HARDWARE_ERROR: reading a page table entry failed.
    PageTabHardwareError {
        /// DeviceID.
        device: DeviceId,
        /// DomainID or PASID.
        tag: Tag,
        /// Flags.
        flags: Flags,
        /// Type.
        ty: HwErrorType,
        /// The table entry's address `[63:3]`.
        addr: PhysAddr,
    },
    /// ILLEGAL_COMMAND_ERROR: the command at `addr` is malformed; the
    /// command buffer stopped (CmdBufRun clears).
    IllegalCommandError {
        /// The command's address.
        addr: PhysAddr,
    },
    /// COMMAND_HARDWARE_ERROR: fetching a command failed.
    CommandHardwareError {
        /// Type.
        ty: HwErrorType,
        /// The command's address.
        addr: PhysAddr,
    },
    /// IOTLB_INV_TIMEOUT: a device did not answer an ATS invalidation.
    IotlbInvTimeout {
        /// DeviceID.
        device: DeviceId,
        /// The INVALIDATE_IOTLB_PAGES command's address `[63:4]`.
        addr: PhysAddr,
    },
    /// INVALID_DEVICE_REQUEST: a request the DTE does not allow.
    InvalidDeviceRequest {
        /// DeviceID.
        device: DeviceId,
        /// PASID.
        pasid: Pasid,
        /// Flags (GN, US, TR, Type `[59:57]`).
        flags: Flags,
        /// The address.
        addr: Iova,
    },
    /// INVALID_PPR_REQUEST: a page request the IOMMU rejected.
    InvalidPprRequest {
        /// DeviceID.
        device: DeviceId,
        /// PASID: `[15:0]` at `[31:16]`, `[19:16]` at `[45:42]`.
        pasid: Pasid,
        /// PRG tag `[41:32]`.
        tag: u16,
        /// Flags.
        flags: Flags,
        /// The address.
        addr: Iova,
    },
    /// EVENT_COUNTER_ZERO: a performance counter reached zero.
    EventCounterZero {
        /// Counter value: `[83:64]` high, `[127:96]` low.
        counter: u64,
    },
    /// GUEST_EVENT_FAULT (vIOMMU): not decoded further.
    GuestEventFault {
        /// The raw record.
        record: [u64; 2],
    },
    /// Any other code (SNP's RMP events 0xD/0xE among them): kept raw.
    Unknown {
        /// EventCode.
        code: u8,
        /// The raw record.
        record: [u64; 2],
    },
}

const fn pasid(w0: u64) -> Pasid {
    Pasid::from_field(((w0 >> 16) & 0xf) << 16 | ((w0 >> 32) & 0xffff))
}

const fn tag(w0: u64) -> Tag {
    if w0 >> 48 & 1 != 0 {
        Tag::Pasid(pasid(w0))
    } else {
        Tag::Domain(DomainId((w0 >> 32) as u16))
    }
}

impl Event {
    /// Decodes a record (word 0 is bits `[63:0]`).
    pub fn decode(record: [u64; 2]) -> Self {
        let [w0, w1] = record;
        let device = DeviceId(w0 as u16);
        let flags = Flags::decode(w0);
        match (w0 >> 60) as u8 {
            code::ILLEGAL_DEV_TABLE_ENTRY => {
                Self::IllegalDevTableEntry { device, pasid: pasid(w0), flags, addr: Iova(w1 & !3) }
            }
            code::IO_PAGE_FAULT => Self::IoPageFault { device, tag: tag(w0), flags, addr: Iova(w1) },
            code::DEV_TAB_HARDWARE_ERROR => Self::DevTabHardwareError {
                device,
                flags,
                ty: HwErrorType::decode(flags.ty),
                addr: PhysAddr(w1),
            },
            code::PAGE_TAB_HARDWARE_ERROR => Self::PageTabHardwareError {
                device,
                tag: tag(w0),
                flags,
                ty: HwErrorType::decode(flags.ty),
                addr: PhysAddr(w1 & !7),
            },
            code::ILLEGAL_COMMAND_ERROR => Self::IllegalCommandError { addr: PhysAddr(w1) },
            code::COMMAND_HARDWARE_ERROR => {
                Self::CommandHardwareError { ty: HwErrorType::decode(flags.ty), addr: PhysAddr(w1) }
            }
            code::IOTLB_INV_TIMEOUT => Self::IotlbInvTimeout { device, addr: PhysAddr(w1 & !0xf) },
            code::INVALID_DEVICE_REQUEST => {
                Self::InvalidDeviceRequest { device, pasid: pasid(w0), flags, addr: Iova(w1) }
            }
            code::INVALID_PPR_REQUEST => Self::InvalidPprRequest {
                device,
                pasid: Pasid::from_field(((w0 >> 42) & 0xf) << 16 | ((w0 >> 16) & 0xffff)),
                tag: ((w0 >> 32) & 0x3ff) as u16,
                flags,
                addr: Iova(w1),
            },
            code::EVENT_COUNTER_ZERO => {
                Self::EventCounterZero { counter: ((w1 & 0xf_ffff) << 32) | (w1 >> 32) }
            }
            code::GUEST_EVENT_FAULT => Self::GuestEventFault { record },
            c => Self::Unknown { code: c, record },
        }
    }

    /// The EventCode.
    pub const fn code(&self) -> u8 {
        match self {
            Self::IllegalDevTableEntry { .. } => code::ILLEGAL_DEV_TABLE_ENTRY,
            Self::IoPageFault { .. } => code::IO_PAGE_FAULT,
            Self::DevTabHardwareError { .. } => code::DEV_TAB_HARDWARE_ERROR,
            Self::PageTabHardwareError { .. } => code::PAGE_TAB_HARDWARE_ERROR,
            Self::IllegalCommandError { .. } => code::ILLEGAL_COMMAND_ERROR,
            Self::CommandHardwareError { .. } => code::COMMAND_HARDWARE_ERROR,
            Self::IotlbInvTimeout { .. } => code::IOTLB_INV_TIMEOUT,
            Self::InvalidDeviceRequest { .. } => code::INVALID_DEVICE_REQUEST,
            Self::InvalidPprRequest { .. } => code::INVALID_PPR_REQUEST,
            Self::EventCounterZero { .. } => code::EVENT_COUNTER_ZERO,
            Self::GuestEventFault { .. } => code::GUEST_EVENT_FAULT,
            Self::Unknown { code, .. } => *code,
        }
    }

    /// The spec name.
    pub const fn name(&self) -> &'static str {
        match self.code() {
            code::ILLEGAL_DEV_TABLE_ENTRY => "ILLEGAL_DEV_TABLE_ENTRY",
            code::IO_PAGE_FAULT => "IO_PAGE_FAULT",
            code::DEV_TAB_HARDWARE_ERROR => "DEV_TAB_HARDWARE_ERROR",
            code::PAGE_TAB_HARDWARE_ERROR => "PAGE_TAB_HARDWARE_ERROR",
            code::ILLEGAL_COMMAND_ERROR => "ILLEGAL_COMMAND_ERROR",
            code::COMMAND_HARDWARE_ERROR => "COMMAND_HARDWARE_ERROR",
            code::IOTLB_INV_TIMEOUT => "IOTLB_INV_TIMEOUT",
            code::INVALID_DEVICE_REQUEST => "INVALID_DEVICE_REQUEST",
            code::INVALID_PPR_REQUEST => "INVALID_PPR_REQUEST",
            code::EVENT_COUNTER_ZERO => "EVENT_COUNTER_ZERO",
            code::GUEST_EVENT_FAULT => "GUEST_EVENT_FAULT",
            0xd => "RMP_PAGE_FAULT",
            0xe => "RMP_HW_ERROR",
            _ => "UNKNOWN",
        }
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.rw { "write" } else { "read" })?;
        for (set, name) in [
            (self.i, " intr"),
            (self.gn, " GN"),
            (self.nx, " NX"),
            (self.us, " user"),
            (self.pr, " PR"),
            (self.pe, " PE"),
            (self.rz, " RZ"),
            (self.tr, " TR"),
        ] {
            if set {
                f.write_str(name)?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Domain(d) => write!(f, "{d}"),
            Self::Pasid(p) => write!(f, "{p}"),
        }
    }
}

/// One line per event: name, device, address, access and kind.
impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.name();
        match self {
            Self::IllegalDevTableEntry { device, flags, addr, .. } => {
                write!(f, "{name} dev {device} addr {addr:#x} {flags}")
            }
            Self::IoPageFault { device, tag, flags, addr } => {
                write!(f, "{name} dev {device} {tag} addr {addr:#x} {flags}")
            }
            Self::DevTabHardwareError { device, ty, addr, .. } => {
                write!(f, "{name} dev {device} dte {addr:#x} {ty:?}")
            }
            Self::PageTabHardwareError { device, tag, ty, addr, .. } => {
                write!(f, "{name} dev {device} {tag} pte {addr:#x} {ty:?}")
            }
            Self::IllegalCommandError { addr } => write!(f, "{name} cmd {addr:#x}"),
            Self::CommandHardwareError { ty, addr } => write!(f, "{name} cmd {addr:#x} {ty:?}"),
            Self::IotlbInvTimeout { device, addr } => write!(f, "{name} dev {device} cmd {addr:#x}"),
            Self::InvalidDeviceRequest { device, pasid, flags, addr } => {
                write!(f, "{name} dev {device} {pasid} addr {addr:#x} type {} {flags}", flags.ty)
            }
            Self::InvalidPprRequest { device, pasid, tag, addr, .. } => {
                write!(f, "{name} dev {device} {pasid} tag {tag:#x} addr {addr:#x}")
            }
            Self::EventCounterZero { counter } => write!(f, "{name} counter {counter:#x}"),
            Self::GuestEventFault { record } | Self::Unknown { record, .. } => {
                write!(f, "{name} {:#018x} {:#018x}", record[0], record[1])
            }
        }
    }
}

/// The event log's state as Status reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogState {
    /// EventLogRun = 1: logging.
    Running,
    /// EventOverflow = 1: the log filled and logging stopped; events were
    /// lost. Recovery: drain, clear EventOverflow (write 1), then toggle
    /// EventLogEn off and on to restart logging.
    Overflowed,
    /// Neither: logging is off (EventLogEn = 0, or not yet started).
    Stopped,
}

/// Reads the event log's state from a Status value.
pub fn overflow(status: &Status) -> LogState {
    if status.event_overflow {
        LogState::Overflowed
    } else if status.event_log_run {
        LogState::Running
    } else {
        LogState::Stopped
    }
}

/// Tests against records built from the spec's event-log figures (2.5).
///
/// QEMU's AMD-Vi model writes nothing to the event log (see
/// `shared/reference/x86-qemu.md`: no IO_PAGE_FAULT for an unmapped access,
/// no ILLEGAL_DEV_TABLE_ENTRY for a bad DTE, no ILLEGAL_COMMAND_ERROR), so
/// there are no recorded bytes to test against: every record here is built
/// by hand from the spec's bit positions, none comes from a device.
#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use proptest::prelude::*;
    use std::format;

    /// Word 0: DeviceID [15:0], PASID[19:16] [19:16], DomainID/PASID[15:0]
    /// [47:32], flags [59:48], EventCode [63:60].
    fn w0(code: u64, dev: u64, hi: u64, lo: u64, flags: u64) -> u64 {
        dev | (hi << 16) | (lo << 32) | (flags << 48) | (code << 60)
    }

    #[test]
    fn io_page_fault_with_domain() {
        // GN [48] = 0 -> DomainID; RW [53] = 1 (write), PR [52] = 0.
        let rec = [w0(2, 0x0108, 0, 0x0042, 1 << 5), 0x0000_7fff_1234_5000];
        let e = Event::decode(rec);
        assert_eq!(
            e,
            Event::IoPageFault {
                device: DeviceId(0x0108),
                tag: Tag::Domain(DomainId(0x42)),
                flags: Flags { rw: true, ..Flags::default() },
                addr: Iova(0x0000_7fff_1234_5000),
            }
        );
        assert_eq!(e.name(), "IO_PAGE_FAULT");
        assert_eq!(format!("{e}"), "IO_PAGE_FAULT dev 01:01.0 dom 0x42 addr 0x7fff12345000 write");
    }

    #[test]
    fn io_page_fault_guest_and_every_flag() {
        // GN [48], NX [49], US [50], I [51], PR [52], RW [53], PE [54], RZ [55], TR [56].
        let rec = [w0(2, 1, 0xa, 0xbcde, 0x1ff), 0x1000];
        let Event::IoPageFault { tag, flags, .. } = Event::decode(rec) else { panic!() };
        assert_eq!(tag, Tag::Pasid(Pasid::new(0xa_bcde).unwrap()));
        assert_eq!(
            flags,
            Flags {
                gn: true,
                nx: true,
                us: true,
                i: true,
                pr: true,
                rw: true,
                pe: true,
                rz: true,
                tr: true,
                ty: 0
            }
        );
        for (bit, f) in [
            (48, Flags { gn: true, ..Flags::default() }),
            (49, Flags { nx: true, ..Flags::default() }),
            (50, Flags { us: true, ..Flags::default() }),
            (51, Flags { i: true, ..Flags::default() }),
            (52, Flags { pr: true, ..Flags::default() }),
            (53, Flags { rw: true, ..Flags::default() }),
            (54, Flags { pe: true, ..Flags::default() }),
            (55, Flags { rz: true, ..Flags::default() }),
            (56, Flags { tr: true, ..Flags::default() }),
        ] {
            assert_eq!(Flags::decode(1 << bit), f, "bit {bit}");
        }
    }

    #[test]
    fn illegal_dte_and_device_request() {
        // ILLEGAL_DEV_TABLE_ENTRY: Address [127:66] (low two bits reserved).
        let e = Event::decode([w0(1, 0x20, 0, 0, 1 << 7), 0x4003]);
        assert_eq!(
            e,
            Event::IllegalDevTableEntry {
                device: DeviceId(0x20),
                pasid: Pasid::default(),
                flags: Flags { rz: true, ..Flags::default() },
                addr: Iova(0x4000),
            }
        );
        // INVALID_DEVICE_REQUEST: Type [59:57] = 101b (posted write to the
        // interrupt range with IntCtl=00b), Linux prints flags=0x0a00.
        let rec = [w0(8, 0, 0, 0, 0b101 << 9), 0xffff_ffff_fdf8_0000];
        assert_eq!(Flags::raw(rec[0]), 0x0a00);
        let Event::InvalidDeviceRequest { flags, addr, .. } = Event::decode(rec) else { panic!() };
        assert_eq!(flags.ty, 0b101);
        assert_eq!(addr, Iova(0xffff_ffff_fdf8_0000));
    }

    #[test]
    fn hardware_errors() {
        // Type [58:57]: 01b master abort, 10b target abort, 11b data error.
        let e = Event::decode([w0(3, 5, 0, 0, (1 << 9) | (1 << 5)), 0x10_0020]);
        assert_eq!(
            e,
            Event::DevTabHardwareError {
                device: DeviceId(5),
                flags: Flags { rw: true, ty: 1, ..Flags::default() },
                ty: HwErrorType::MasterAbort,
                addr: PhysAddr(0x10_0020),
            }
        );
        let Event::PageTabHardwareError { tag, ty, addr, .. } =
            Event::decode([w0(4, 5, 0, 7, 2 << 9), 0x2007])
        else {
            panic!()
        };
        assert_eq!((tag, ty, addr), (Tag::Domain(DomainId(7)), HwErrorType::TargetAbort, PhysAddr(0x2000)));
        assert_eq!(
            Event::decode([w0(6, 0, 0, 0, 3 << 9), 0x8000]),
            Event::CommandHardwareError { ty: HwErrorType::DataError, addr: PhysAddr(0x8000) }
        );
        assert_eq!(
            Event::decode([w0(5, 0, 0, 0, 0), 0x8010]),
            Event::IllegalCommandError { addr: PhysAddr(0x8010) }
        );
        assert_eq!(
            Event::decode([w0(7, 9, 0, 0, 0), 0x8020]),
            Event::IotlbInvTimeout { device: DeviceId(9), addr: PhysAddr(0x8020) }
        );
    }

    #[test]
    fn ppr_counter_guest_unknown() {
        // INVALID_PPR_REQUEST: PASID[15:0] [31:16], tag [41:32], PASID[19:16] [45:42].
        let rec = [3 | (0x1234 << 16) | (0x155 << 32) | (0x9 << 42) | (9 << 60), 0x7000];
        let Event::InvalidPprRequest { pasid, tag, .. } = Event::decode(rec) else { panic!() };
        assert_eq!((pasid.get(), tag), (0x9_1234, 0x155));
        // EVENT_COUNTER_ZERO: counter [83:64] high, [127:96] low.
        assert_eq!(
            Event::decode([0xa << 60, 0x89ab_cdef_0000_0123]),
            Event::EventCounterZero { counter: 0x123_89ab_cdef }
        );
        assert!(matches!(Event::decode([0xb << 60, 0]), Event::GuestEventFault { .. }));
        let e = Event::decode([0xd << 60, 1]);
        assert_eq!((e.code(), e.name()), (0xd, "RMP_PAGE_FAULT"));
        assert_eq!(Event::decode([0, 0]).name(), "UNKNOWN");
    }

    #[test]
    fn overflow_from_status() {
        // Status: EventOverflow [0], EventLogRun [3].
        assert_eq!(overflow(&Status::decode(1)), LogState::Overflowed);
        assert_eq!(overflow(&Status::decode(1 << 3)), LogState::Running);
        assert_eq!(overflow(&Status::decode(0)), LogState::Stopped);
    }

    proptest! {
        #[test]
        fn decode_never_panics(rec in any::<[u64; 2]>()) {
            let e = Event::decode(rec);
            prop_assert_eq!(e.code(), (rec[0] >> 60) as u8);
            let _ = format!("{e}");
        }
    }
}
