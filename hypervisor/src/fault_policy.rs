//! What a partition's fault policy does after an SMMU fault of one of its
//! devices has been traced:
//! - `log`: nothing more; the DMA was already blocked by the SMMU.
//! - `stop-partition`: the partition stops (every vCPU parks, every device
//!   gets an abort STE).
//! - `inject`: the fault record is written to the partition's fault page
//!   (layout: `boards::abi::FaultRecord`) and the fault's virtual interrupt
//!   is made pending on its first vCPU.

use crate::partition::{AssignedPci, Partition};
use crate::vcpu;
use boards::abi::{FaultRecord, FAULT_MAGIC};
use boards::config::FaultPolicy;
use core::sync::atomic::Ordering;
use smmu::Event;

/// Applies `p`'s policy to `event` of its device `dev`.
pub fn apply(p: &Partition, dev: &AssignedPci, event: &Event) {
    match p.config.fault_policy {
        FaultPolicy::Log => {}
        FaultPolicy::StopPartition => p.stop_remote("fault policy stop-partition after a DMA fault"),
        FaultPolicy::Inject => inject(p, dev, event),
    }
}

fn inject(p: &Partition, dev: &AssignedPci, event: &Event) {
    let Some((_, page)) = p.fault_page else {
        defmt::warn!("partition {=str}: fault policy inject without a fault page", p.name());
        return;
    };
    let (address, write, stage) = event
        .fault()
        .map_or((0, false, 0), |f| (f.input_addr.0, f.access.is_write(), if f.s2 { 2 } else { 1 }));
    let count = p.dma_faults.load(Ordering::Acquire);
    let record = FaultRecord {
        magic: FAULT_MAGIC,
        count: 0,
        event: event.code(),
        write: u8::from(write),
        stage,
        reserved: 0,
        stream_id: dev.sid,
        requester_id: dev.bdf.rid(),
        reserved2: [0; 6],
        address,
        suppressed: p.limiter.suppressed_total.load(Ordering::Acquire),
        reserved3: 0,
    };
    let at = page as *mut FaultRecord;
    // SAFETY: `page` is the host address of the partition's fault page,
    // inside its RAM (checked at build), mapped read-write at EL2 and
    // written only here; the guest only reads it.
    unsafe {
        core::ptr::write_volatile(at, record);
        // `count` last, so a reader that sees it change reads a whole record.
        core::sync::atomic::fence(Ordering::SeqCst);
        core::ptr::write_volatile(core::ptr::addr_of_mut!((*at).count), count);
    }
    crate::arch::cache::clean_range(page, core::mem::size_of::<FaultRecord>() as u64);
    if let Some(cpu) = p.cpu_of(0) {
        vcpu::request_fault_irq(cpu);
    }
}
