//! The commands the SMMU driver issues to invalidate an unmap, counted.
//! Shared by `benches/invalidation.rs` (prints and checks the counts) and
//! `tests/invalidation.rs` (asserts them in `cargo test`).
//!
//! The path is the real one up to the command queue: an `iommu-common`
//! stage-2 table (`S2Table`) maps 1 GiB as 262 144 4 KiB pages
//! (`map_pages` with a 4 KiB page size: no blocks), unmaps it in one call
//! into an `IotlbGather`, and the gather goes through
//! [`smmu::cmd::plan_invalidation`] with the driver's policy (range
//! commands iff SMMU_IDR3.RIL, decoded from an ID register value; the
//! whole-VMID threshold of `SmmuConfig::default()`), the same call
//! `smmu::backend`'s `IommuBackend::invalidate` makes per gathered range.
//! `Domain::unmap` then calls `IommuBackend::sync`, which queues exactly one
//! CMD_SYNC; that step is modelled here by appending `Command::sync()`
//! (driving the `Smmu` itself needs its MMIO model, which is private to the
//! crate's unit tests).

#![allow(dead_code)] // each includer uses a different part

use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::pgtable::vmsav8::{Granule as PtGranule, S2Table, Stage2, TableConfig};
use iommu_common::pgtable::{IoPageTable, IotlbGather, PoolAllocator, Prot};
use smmu::caps::{Capabilities, Granule, IdRegs};
use smmu::cmd::{plan_invalidation, Command, InvalidationPolicy, TlbiTarget};
use smmu::{SmmuConfig, Vmid};

/// 4 KiB.
pub const K4: u64 = 4096;
/// 1 GiB.
pub const GIB: u64 = 1 << 30;
/// Where the gigabyte is mapped (IPA) and what it maps to.
pub const IPA: u64 = 0x4000_0000;
const PA: u64 = 0x8_0000_0000;
/// The domain's VMID.
pub const VMID: Vmid = Vmid(3);

/// SMMU_IDR3.RIL (bit 10, 6.3.4).
const IDR3_RIL: u32 = 1 << 10;

/// Capabilities decoded from ID registers with or without SMMU_IDR3.RIL.
pub fn caps(ril: bool) -> Capabilities {
    let mut idr = [0u32; 6];
    if ril {
        idr[3] = IDR3_RIL;
    }
    Capabilities::decode(&IdRegs { idr, iidr: 0, aidr: 0 })
}

/// The policy the driver builds at bring-up (`Smmu::init`).
pub fn policy(caps: &Capabilities) -> InvalidationPolicy {
    InvalidationPolicy { ril: caps.ril, max_commands: SmmuConfig::default().max_range_commands }
}

/// Maps `pages` 4 KiB pages from [`IPA`] one leaf each, unmaps them (in
/// one call, or page by page into one gather) and hands the gather to `f`
/// before completing it, as the domain does after its invalidation.
pub fn with_unmap_gather<R>(pages: u64, one_call: bool, f: impl FnOnce(&IotlbGather) -> R) -> R {
    let tables = pages.div_ceil(512) as usize + 8;
    let cfg = TableConfig::new(PtGranule::Size4K, 48, 48);
    let mut t = S2Table::new(Stage2, cfg, PoolAllocator::new(tables, 4096)).expect("stage-2 table");
    t.map_pages(Iova(IPA), PhysAddr(PA), K4, pages as usize, Prot::RW).expect("map 4 KiB pages");
    // 4 KiB leaves only (index 3 counts level-3 pages), no blocks.
    let stats = t.stats();
    assert_eq!(stats.leaves[3], pages, "not mapped as 4 KiB pages");
    assert_eq!(stats.leaves[..3].iter().sum::<u64>(), 0, "blocks were used");
    let mut g = IotlbGather::new();
    if one_call {
        t.unmap(Iova(IPA), pages * K4, &mut g).expect("unmap");
    } else {
        for i in 0..pages {
            t.unmap_pages(Iova(IPA + i * K4), K4, 1, &mut g).expect("unmap a page");
        }
    }
    let r = f(&g);
    t.complete(&mut g).expect("complete");
    r
}

/// The commands `smmu::backend`'s `invalidate` + `sync` put on the queue for
/// `gather`, under `policy`.
pub fn commands(gather: &IotlbGather, policy: InvalidationPolicy) -> Vec<Command> {
    let target = TlbiTarget::Stage2 { vmid: VMID };
    let leaf = !gather.tables_removed();
    let mut cmds = Vec::new();
    for r in gather.ranges() {
        cmds.extend(plan_invalidation(target, r.start.0, r.len(), Granule::K4, leaf, 0, policy));
    }
    cmds.push(Command::sync());
    cmds
}

/// What a command list holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// CMD_TLBI_S2_IPA in range form (TG != 0).
    pub range_tlbis: usize,
    /// CMD_TLBI_S2_IPA for one granule (TG == 0).
    pub page_tlbis: usize,
    /// CMD_TLBI_S12_VMALL.
    pub vmalls: usize,
    /// CMD_SYNC.
    pub syncs: usize,
    /// Anything else (none expected).
    pub other: usize,
}

impl Counts {
    /// Counts `cmds` by kind.
    pub fn of(cmds: &[Command]) -> Self {
        let mut c = Self::default();
        for cmd in cmds {
            match cmd {
                Command::TlbiS2Ipa { opts, .. } if opts.range.is_some() => c.range_tlbis += 1,
                Command::TlbiS2Ipa { .. } => c.page_tlbis += 1,
                Command::TlbiS12Vmall { .. } => c.vmalls += 1,
                Command::Sync(_) => c.syncs += 1,
                _ => c.other += 1,
            }
        }
        c
    }

    /// TLBI commands of any kind.
    pub fn tlbis(&self) -> usize {
        self.range_tlbis + self.page_tlbis + self.vmalls
    }
}
