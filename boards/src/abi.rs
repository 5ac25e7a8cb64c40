//! What a partition sees of Bulkhead beyond its device tree: the fault
//! record page of the `inject` fault policy and its virtual interrupt.
//!
//! The hypervisor writes and guests read these, so both sides take the layout
//! from here. Everything else a guest needs (memory, CPUs, console, PCI host,
//! PSCI method) it finds in the device tree the hypervisor generates for it.

/// Name of the `/reserved-memory` child that covers the fault record page.
pub const FAULT_PAGE_NODE: &str = "bulkhead-faults";

/// Size of the fault record page.
pub const FAULT_PAGE_SIZE: u64 = 0x1000;

/// The virtual interrupt that announces a new fault record: PPI 15
/// (INTID 31), unused by the architected timer and the PMU.
pub const FAULT_VINTID: u32 = 31;

/// `magic` of a written fault record page ("BHFR", little endian).
pub const FAULT_MAGIC: u32 = u32::from_le_bytes(*b"BHFR");

/// The fault record page, as the hypervisor writes it (little endian, at the
/// start of the page). `count` is written last, so a reader that sees it
/// change reads a complete record of the latest fault.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultRecord {
    /// [`FAULT_MAGIC`] once the hypervisor wrote a record.
    pub magic: u32,
    /// Faults reported to this partition so far (the latest is below).
    pub count: u32,
    /// SMMU event code (0x10 F_TRANSLATION, 0x13 F_PERMISSION, ...).
    pub event: u8,
    /// 1 for a write, 0 for a read.
    pub write: u8,
    /// Translation stage that faulted (1 or 2).
    pub stage: u8,
    /// Reserved, zero.
    pub reserved: u8,
    /// The device's StreamID.
    pub stream_id: u32,
    /// The device's PCI RequesterID (bus << 8 | dev << 3 | fn), 0xffff if
    /// it is not a PCI function.
    pub requester_id: u16,
    /// Reserved, zero.
    pub reserved2: [u8; 6],
    /// The faulting DMA address (a guest-physical address of the partition).
    pub address: u64,
    /// Faults dropped from the log by rate limiting so far.
    pub suppressed: u32,
    /// Reserved, zero.
    pub reserved3: u32,
}

/// Byte offset of [`FaultRecord::count`] in the page.
pub const FAULT_COUNT_OFFSET: usize = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_layout_is_fixed() {
        assert_eq!(core::mem::size_of::<FaultRecord>(), 40);
        assert_eq!(core::mem::offset_of!(FaultRecord, count), FAULT_COUNT_OFFSET);
        assert_eq!(core::mem::offset_of!(FaultRecord, stream_id), 12);
        assert_eq!(core::mem::offset_of!(FaultRecord, address), 24);
        assert_eq!(&FAULT_MAGIC.to_le_bytes(), b"BHFR");
    }
}
