//! The IOMMU conformance suite: one set of cases, written once against
//! [`IommuBackend`] and the assignment model, run unchanged on every backend
//! (SMMUv3 in the hypervisor's self-test, VT-d and AMD-Vi in the x86 test
//! kernel) and on a software IOMMU in the host tests below.
//!
//! A platform provides a [`Rig`]: its backend, the device under test and
//! what that device can do (DMA from an IOVA into its buffer and back), a
//! few pages of memory it may reach, and whatever fault evidence its IOMMU
//! gives. Each case then drives the backend only through the model:
//! [`DeviceAssignment`] creates a container over the rig's pages, a domain
//! over a fresh table, assigns the device's group and attaches it; maps go
//! through [`Domain::map`](crate::domain::Domain::map), unmaps through
//! [`Domain::unmap`](crate::domain::Domain::unmap) (gather → `invalidate`
//! → `sync` → `complete`), detach through `block`.
//!
//! | case | proves |
//! | --- | --- |
//! | `conf_map_dma_lands` | two mapped pages, both directions: the bytes arrive, every other page is unchanged |
//! | `conf_unmapped_blocked` | a write and a read at an unmapped IOVA change nothing (the IOVA is a rig page's own address where the device can reach it untranslated) |
//! | `conf_readonly_blocks_write` | a read-only mapping refuses the write and serves the read |
//! | `conf_remap_invalidates` | after a DMA cached the translation, unmap + map elsewhere moves the next DMA to the new page |
//! | `conf_detach_blocks` | a detached device can neither write nor read; re-attaching works again |
//!
//! Every case checks all the rig's pages after every DMA (an expected fill
//! per page), so "nothing else changed" is checked everywhere. Blocked DMAs
//! must leave a fault record where the rig says its IOMMU writes one
//! ([`Rig::records`]); DMAs that should pass must leave none.
//!
//! The model's [`Domain::map`](crate::domain::Domain::map) tells the backend
//! nothing (a new mapping needs no invalidation), so a backend whose
//! hardware caches not-present entries (VT-d `CAP_REG.CM`) is only right
//! here if its hardware model does not cache them.

#![forbid(unsafe_code)]

use core::marker::PhantomData;

use crate::addr::{Iova, PhysAddr};
use crate::container::{ContainerId, DeviceAssignment, PhysRange, PhysRegions};
use crate::domain::{DomainConfig, DomainId, TagAllocator};
use crate::group::{Device, GroupBuilder, GroupId};
use crate::pgtable::{IoPageTable, Prot};

/// The size of every page and DMA the cases use.
pub const PAGE: usize = 4096;

/// How many pages a rig provides ([`Rig::page`] `0..PAGES`).
pub const PAGES: usize = 8;

/// How many pages of IOVA space from [`Rig::iova_window`] the cases use.
pub const IOVA_SLOTS: u64 = 64;

/// Why a DMA is expected to be blocked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// No translation for the IOVA.
    Unmapped,
    /// A write through a read-only mapping.
    ReadOnly,
    /// The device is detached (blocked entry).
    Detached,
}

/// What a platform provides to run the suite: a backend, one device that
/// does DMA through it, and memory that device may reach.
pub trait Rig {
    /// The page-table format of the rig's domains.
    type Table: IoPageTable;
    /// The IOMMU driver, as the model drives it.
    type Backend: DomainConfig<Self::Table>;

    /// The driver. The device must be blocked in it when a case starts.
    fn backend(&mut self) -> &mut Self::Backend;
    /// The device under test, with its hardware IDs.
    fn device(&self) -> Device;
    /// The tags the cases' domains may use (none any other live domain of
    /// this backend uses).
    fn tags(&self) -> TagAllocator;
    /// A fresh, empty table for a case's domain.
    fn new_table(&mut self) -> Result<Self::Table, &'static str>;

    /// The physical address of page `i` (`i < PAGES`), page aligned.
    fn page(&self, i: usize) -> PhysAddr;
    /// Byte `off` of page `i`, as memory holds it now (after device writes).
    fn read(&self, i: usize, off: usize) -> u8;
    /// Writes byte `off` of page `i` where the device will see it.
    fn write(&mut self, i: usize, off: usize, v: u8);

    /// The first of [`IOVA_SLOTS`] pages of IOVA space the cases may map,
    /// below [`dma_limit`](Self::dma_limit).
    fn iova_window(&self) -> Iova;
    /// The first address the device cannot emit (its DMA mask + 1).
    fn dma_limit(&self) -> u64;

    /// The device reads `len` bytes at `iova` into its buffer (memory to
    /// device). `Ok` once the device is done, whether or not the IOMMU let
    /// the access through.
    fn dma_to_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str>;
    /// The device writes `len` bytes of its buffer to `iova` (device to
    /// memory).
    fn dma_from_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str>;

    /// Drains the fault records the IOMMU wrote since the last call
    /// (logging them) and returns how many there were.
    fn drain_faults(&mut self) -> usize;
    /// Whether the IOMMU writes a fault record for a DMA blocked because of
    /// `why` (SMMUv3 aborts silently on an abort STE; QEMU's AMD-Vi writes
    /// no events at all).
    fn records(&self, why: Blocked) -> bool;

    /// Called with the first byte that differs from what a case expected.
    fn mismatch(&self, _page: usize, _off: usize, _got: u8, _want: u8) {}
}

/// One case: its name (the same on every platform) and its body.
pub struct Case<R> {
    /// Reported as `case NAME: pass`.
    pub name: &'static str,
    /// Runs the case on a rig; says why it failed.
    pub run: fn(&mut R) -> Result<(), &'static str>,
}

/// The suite for rig `R`.
pub struct Suite<R>(PhantomData<R>);

impl<R: Rig + 'static> Suite<R> {
    /// Every case, in run order.
    pub const CASES: &'static [Case<R>] = &[
        Case { name: "conf_map_dma_lands", run: map_dma_lands::<R> },
        Case { name: "conf_unmapped_blocked", run: unmapped_blocked::<R> },
        Case { name: "conf_readonly_blocks_write", run: readonly_blocks_write::<R> },
        Case { name: "conf_remap_invalidates", run: remap_invalidates::<R> },
        Case { name: "conf_detach_blocks", run: detach_blocks::<R> },
    ];
}

/// The number of cases in [`Suite::CASES`], for platform tables.
pub const CASE_COUNT: usize = 5;

// ---- memory and its expected contents ----

/// Page roles: a source, two targets, guards between them, and a canary
/// whose own address serves as the unmapped IOVA where the device can
/// reach it untranslated.
const SRC: usize = 0;
const A: usize = 2;
const B: usize = 4;
const CANARY: usize = 6;

const ROLES: [&str; PAGES] = [
    "the source page is not as expected",
    "the guard page after the source changed",
    "target page A is not as expected",
    "the guard page after A changed",
    "target page B is not as expected",
    "the guard page after B changed",
    "the canary page changed",
    "the last guard page changed",
];

const GUARD_FILL: u8 = 0xc3;
const TARGET_FILL: u8 = 0x5a;
const CANARY_FILL: u8 = 0x3c;

/// What a page holds: one byte everywhere, or a pattern unlike any other
/// seed's at every offset (and unlike any single byte).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fill {
    Byte(u8),
    Pattern(u8),
}

impl Fill {
    fn at(self, off: usize) -> u8 {
        match self {
            Self::Byte(b) => b,
            Self::Pattern(seed) => (off as u8).wrapping_mul(7) ^ (off >> 8) as u8 ^ seed,
        }
    }
}

/// The rig's pages as the case expects them.
struct Mem {
    fills: [Fill; PAGES],
}

impl Mem {
    /// Fills every page: guards, targets, canary and a patterned source.
    fn prepare<R: Rig>(rig: &mut R) -> Self {
        let mut m = Self { fills: [Fill::Byte(GUARD_FILL); PAGES] };
        m.set(rig, SRC, Fill::Pattern(0xa5));
        for i in 1..PAGES {
            m.set(rig, i, Fill::Byte(GUARD_FILL));
        }
        m.set(rig, A, Fill::Byte(TARGET_FILL));
        m.set(rig, B, Fill::Byte(TARGET_FILL));
        m.set(rig, CANARY, Fill::Byte(CANARY_FILL));
        m
    }

    /// Writes `fill` into page `i` and expects it there.
    fn set<R: Rig>(&mut self, rig: &mut R, i: usize, fill: Fill) {
        for off in 0..PAGE {
            rig.write(i, off, fill.at(off));
        }
        self.fills[i] = fill;
    }

    /// Expects `fill` in page `i` (a DMA put it there).
    fn landed(&mut self, i: usize, fill: Fill) {
        self.fills[i] = fill;
    }

    /// Whether page `i` holds `fill` everywhere.
    fn holds<R: Rig>(rig: &R, i: usize, fill: Fill) -> bool {
        (0..PAGE).all(|off| rig.read(i, off) == fill.at(off))
    }

    /// Every page holds what the case expects.
    fn check<R: Rig>(&self, rig: &R) -> Result<(), &'static str> {
        for (i, fill) in self.fills.iter().enumerate() {
            for off in 0..PAGE {
                let (got, want) = (rig.read(i, off), fill.at(off));
                if got != want {
                    rig.mismatch(i, off, got, want);
                    return Err(ROLES[i]);
                }
            }
        }
        Ok(())
    }
}

// ---- the model, opened and closed around each case ----

const PART: ContainerId = ContainerId(1);

/// IOVA slot `n` of the rig's window.
fn slot<R: Rig>(rig: &R, n: u64) -> Iova {
    debug_assert!(n < IOVA_SLOTS);
    Iova(rig.iova_window().0 + n * PAGE as u64)
}

/// A container over the rig's pages with one domain, the device's group
/// assigned and attached.
struct Session<R: Rig> {
    model: DeviceAssignment<R::Table, R::Backend>,
    dom: DomainId,
    group: GroupId,
}

impl<R: Rig> Session<R> {
    fn open(rig: &mut R) -> Result<Self, &'static str> {
        let dev = rig.device();
        let dev_id = dev.id();
        let mut topo = GroupBuilder::new();
        topo.add_device(dev).map_err(|_| "the rig's device does not make a topology")?;
        let mut model = DeviceAssignment::new(topo.build(), rig.tags());
        let memory = PhysRegions::new((0..PAGES).map(|i| PhysRange::new(rig.page(i), PAGE as u64)))
            .map_err(|_| "the rig's pages overlap")?;
        model.create_container(PART, memory).map_err(|_| "create container")?;
        let table = rig.new_table()?;
        let dom =
            model.create_domain(rig.backend(), PART, table).map_err(|_| "the backend refused the table")?;
        let group = model.assign_device(PART, dev_id).map_err(|_| "assign the device")?;
        let mut s = Self { model, dom, group };
        if let Err(e) = s.attach(rig) {
            s.close(rig)?;
            return Err(e);
        }
        // Records of earlier runs are not this case's.
        rig.drain_faults();
        Ok(s)
    }

    fn attach(&mut self, rig: &mut R) -> Result<(), &'static str> {
        self.model.attach_group(rig.backend(), PART, self.group, self.dom).map_err(|_| "attach failed")
    }

    fn detach(&mut self, rig: &mut R) -> Result<(), &'static str> {
        self.model.detach_group(rig.backend(), PART, self.group).map_err(|_| "detach failed")
    }

    fn map(&mut self, rig: &R, iova: Iova, page: usize, prot: Prot) -> Result<(), &'static str> {
        self.model.map(PART, self.dom, iova, rig.page(page), PAGE as u64, prot).map_err(|_| "map refused")
    }

    fn unmap(&mut self, rig: &mut R, iova: Iova) -> Result<(), &'static str> {
        self.model
            .unmap(rig.backend(), PART, self.dom, iova, PAGE as u64)
            .map_err(|_| "unmap (or its invalidation) failed")
    }

    fn translate(&self, iova: Iova) -> Option<PhysAddr> {
        self.model.domain(PART, self.dom)?.translate(iova)
    }

    /// Detaches (blocks) the device, destroys the domain (its tag
    /// invalidated) and the container. If the backend fails on the way,
    /// the model is leaked rather than dropped: the device may still walk
    /// the table.
    fn close(mut self, rig: &mut R) -> Result<(), &'static str> {
        let r = self.teardown(rig);
        if r.is_err() {
            core::mem::forget(self.model);
        }
        r
    }

    fn teardown(&mut self, rig: &mut R) -> Result<(), &'static str> {
        let attached = self.model.container(PART).and_then(|c| c.attachment(self.group)).is_some();
        if attached {
            self.detach(rig)?;
        }
        let table = self
            .model
            .destroy_domain(rig.backend(), PART, self.dom)
            .map_err(|_| "destroying the domain failed")?;
        drop(table);
        self.model.unassign_group(rig.backend(), PART, self.group).map_err(|_| "unassign failed")?;
        self.model.destroy_container(PART).map_err(|_| "destroy container")?;
        Ok(())
    }
}

/// Runs `body` in a fresh session and closes it whatever the outcome.
fn with_session<R: Rig>(
    rig: &mut R,
    body: impl FnOnce(&mut R, &mut Session<R>, &mut Mem) -> Result<(), &'static str>,
) -> Result<(), &'static str> {
    let mut mem = Mem::prepare(rig);
    let mut s = Session::open(rig)?;
    let r = body(rig, &mut s, &mut mem);
    let closed = s.close(rig);
    r.and(closed)
}

fn no_faults<R: Rig>(rig: &mut R) -> Result<(), &'static str> {
    match rig.drain_faults() {
        0 => Ok(()),
        _ => Err("a DMA that should pass left a fault record"),
    }
}

fn blocked<R: Rig>(rig: &mut R, why: Blocked) -> Result<(), &'static str> {
    let n = rig.drain_faults();
    if rig.records(why) && n == 0 {
        return Err(match why {
            Blocked::Unmapped => "no fault record for the DMA at an unmapped IOVA",
            Blocked::ReadOnly => "no fault record for the write through a read-only mapping",
            Blocked::Detached => "no fault record for the detached device's DMA",
        });
    }
    Ok(())
}

// ---- the cases ----

/// Two pages mapped read-write; memory → device → memory one way, then the
/// other way round.
fn map_dma_lands<R: Rig>(rig: &mut R) -> Result<(), &'static str> {
    with_session(rig, |rig, s, m| {
        let (i0, i1) = (slot(rig, 0), slot(rig, 1));
        s.map(rig, i0, SRC, Prot::RW)?;
        s.map(rig, i1, A, Prot::RW)?;
        rig.dma_to_device(i0, PAGE)?;
        rig.dma_from_device(i1, PAGE)?;
        m.landed(A, Fill::Pattern(0xa5));
        m.check(rig)?;
        no_faults(rig)?;
        m.set(rig, A, Fill::Pattern(0x5b));
        rig.dma_to_device(i1, PAGE)?;
        rig.dma_from_device(i0, PAGE)?;
        m.landed(SRC, Fill::Pattern(0x5b));
        m.check(rig)?;
        no_faults(rig)
    })
}

/// The unmapped IOVA: the canary's own address if the device could reach
/// it untranslated (so a bypass would show in memory), else a free slot.
fn unmapped_iova<R: Rig>(rig: &R) -> Iova {
    let canary = rig.page(CANARY).0;
    let window = rig.iova_window().0..slot(rig, IOVA_SLOTS - 1).0 + PAGE as u64;
    let reachable = canary.checked_add(PAGE as u64).is_some_and(|end| end <= rig.dma_limit());
    if reachable && !window.contains(&canary) {
        Iova(canary)
    } else {
        slot(rig, IOVA_SLOTS / 2)
    }
}

fn unmapped_blocked<R: Rig>(rig: &mut R) -> Result<(), &'static str> {
    with_session(rig, |rig, s, m| {
        let (i0, i1, hole) = (slot(rig, 0), slot(rig, 1), unmapped_iova(rig));
        s.map(rig, i0, SRC, Prot::RW)?;
        s.map(rig, i1, A, Prot::RW)?;
        if s.translate(hole).is_some() {
            return Err("the unmapped IOVA is mapped");
        }
        m.set(rig, SRC, Fill::Pattern(0x11));
        rig.dma_to_device(i0, PAGE)?;
        no_faults(rig)?;
        // Write: nothing anywhere may change.
        rig.dma_from_device(hole, PAGE)?;
        m.check(rig)?;
        blocked(rig, Blocked::Unmapped)?;
        // Read: the device must not get the canary's bytes.
        rig.dma_to_device(hole, PAGE)?;
        blocked(rig, Blocked::Unmapped)?;
        rig.dma_from_device(i1, PAGE)?;
        no_faults(rig)?;
        if Mem::holds(rig, A, Fill::Byte(CANARY_FILL)) {
            return Err("a read at an unmapped IOVA returned memory");
        }
        // What a blocked read leaves in the buffer is the device's business.
        m.set(rig, A, Fill::Byte(TARGET_FILL));
        m.check(rig)
    })
}

fn readonly_blocks_write<R: Rig>(rig: &mut R) -> Result<(), &'static str> {
    with_session(rig, |rig, s, m| {
        let (i0, i1, i2) = (slot(rig, 0), slot(rig, 1), slot(rig, 2));
        s.map(rig, i0, SRC, Prot::RW)?;
        s.map(rig, i1, A, Prot::RW)?;
        s.map(rig, i2, B, Prot::RO)?;
        m.set(rig, B, Fill::Pattern(0x22));
        m.set(rig, SRC, Fill::Pattern(0x33));
        rig.dma_to_device(i0, PAGE)?;
        // The write first: QEMU's SMMUv3 and VT-d record a permission fault
        // only on a table walk, not on a hit in an IOTLB entry a read made.
        rig.dma_from_device(i2, PAGE)?;
        m.check(rig)?;
        blocked(rig, Blocked::ReadOnly)?;
        // Reading through it works.
        rig.dma_to_device(i2, PAGE)?;
        rig.dma_from_device(i1, PAGE)?;
        m.landed(A, Fill::Pattern(0x22));
        m.check(rig)?;
        no_faults(rig)
    })
}

fn remap_invalidates<R: Rig>(rig: &mut R) -> Result<(), &'static str> {
    with_session(rig, |rig, s, m| {
        let (i0, i1) = (slot(rig, 0), slot(rig, 1));
        s.map(rig, i0, SRC, Prot::RW)?;
        s.map(rig, i1, A, Prot::RW)?;
        // The IOMMU caches i1 -> A.
        m.set(rig, SRC, Fill::Pattern(0x44));
        rig.dma_to_device(i0, PAGE)?;
        rig.dma_from_device(i1, PAGE)?;
        m.landed(A, Fill::Pattern(0x44));
        m.check(rig)?;
        no_faults(rig)?;
        // Through the model: unmap (invalidate + sync), map to B.
        s.unmap(rig, i1)?;
        s.map(rig, i1, B, Prot::RW)?;
        m.set(rig, SRC, Fill::Pattern(0x55));
        rig.dma_to_device(i0, PAGE)?;
        rig.dma_from_device(i1, PAGE)?;
        m.landed(B, Fill::Pattern(0x55));
        m.check(rig).map_err(|e| {
            if e == ROLES[A] {
                "the DMA after the remap went to the old page"
            } else {
                e
            }
        })?;
        no_faults(rig)
    })
}

fn detach_blocks<R: Rig>(rig: &mut R) -> Result<(), &'static str> {
    with_session(rig, |rig, s, m| {
        let (i0, i1) = (slot(rig, 0), slot(rig, 1));
        s.map(rig, i0, SRC, Prot::RW)?;
        s.map(rig, i1, A, Prot::RW)?;
        m.set(rig, SRC, Fill::Pattern(0x66));
        rig.dma_to_device(i0, PAGE)?;
        rig.dma_from_device(i1, PAGE)?;
        m.landed(A, Fill::Pattern(0x66));
        m.check(rig)?;
        no_faults(rig)?;
        s.detach(rig)?;
        // Write: the buffer still holds 0x66's pattern; A is refilled.
        m.set(rig, A, Fill::Byte(TARGET_FILL));
        rig.dma_from_device(i1, PAGE)?;
        m.check(rig)?;
        blocked(rig, Blocked::Detached)?;
        // Read: a new source pattern must not reach the device.
        m.set(rig, SRC, Fill::Pattern(0x77));
        rig.dma_to_device(i0, PAGE)?;
        blocked(rig, Blocked::Detached)?;
        // Attached again, the buffer shows what the blocked read got.
        s.attach(rig)?;
        rig.dma_from_device(i1, PAGE)?;
        no_faults(rig)?;
        if Mem::holds(rig, A, Fill::Pattern(0x77)) {
            return Err("the detached device read memory");
        }
        m.set(rig, A, Fill::Byte(TARGET_FILL));
        m.check(rig)
    })
}

#[cfg(test)]
mod tests {
    //! The suite on a software IOMMU over plain memory: passes on a correct
    //! one, and each case fails on the bug it exists to catch.

    use alloc::collections::BTreeMap;
    use alloc::rc::Rc;
    use alloc::vec;
    use alloc::vec::Vec;
    use core::cell::RefCell;
    use core::fmt;

    use super::*;
    use crate::domain::{DomainHw, DomainTag, IommuBackend};
    use crate::group::{DeviceId, HwId, IommuUnit};
    use crate::pasid::Pasid;
    use crate::pgtable::vmsav8::{Granule, S2Table, Stage2, TableConfig, Vmsav8Table};
    use crate::pgtable::{Access, IotlbGather, PgTableError, PoolAllocator, Translation};

    /// A table the (software) IOMMU walks live, as hardware would.
    #[derive(Clone)]
    struct Live(Rc<RefCell<S2Table<PoolAllocator>>>);

    impl fmt::Debug for Live {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Live")
        }
    }

    impl IoPageTable for Live {
        fn page_sizes(&self) -> u64 {
            self.0.borrow().page_sizes()
        }
        fn ias(&self) -> u32 {
            self.0.borrow().ias()
        }
        fn oas(&self) -> u32 {
            self.0.borrow().oas()
        }
        fn map_pages(
            &mut self,
            iova: Iova,
            pa: PhysAddr,
            sz: u64,
            n: usize,
            prot: Prot,
        ) -> Result<(), PgTableError> {
            self.0.borrow_mut().map_pages(iova, pa, sz, n, prot)
        }
        fn map(&mut self, iova: Iova, pa: PhysAddr, len: u64, prot: Prot) -> Result<(), PgTableError> {
            self.0.borrow_mut().map(iova, pa, len, prot)
        }
        fn unmap_pages(
            &mut self,
            iova: Iova,
            sz: u64,
            n: usize,
            g: &mut IotlbGather,
        ) -> Result<(), PgTableError> {
            self.0.borrow_mut().unmap_pages(iova, sz, n, g)
        }
        fn complete(&mut self, g: &mut IotlbGather) -> Result<(), PgTableError> {
            self.0.borrow_mut().complete(g)
        }
        fn lookup(&self, iova: Iova) -> Option<Translation> {
            self.0.borrow().lookup(iova)
        }
    }

    /// What the software IOMMU gets wrong, if anything.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Bug {
        None,
        /// `block` leaves the device translating.
        BlockIgnored,
        /// Invalidations are accepted and dropped.
        InvalidateIgnored,
        /// Read-only leaves are writable.
        WriteIgnoresPermission,
        /// Unmapped IOVAs pass untranslated.
        BypassUnmapped,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct SoftError;

    /// A queued invalidation: a tag, and its `[start, end)` ranges (all of
    /// it if `None`).
    type Queued = (DomainTag, Option<Vec<(u64, u64)>>);

    /// Device entries, an IOTLB tagged by domain and filled by walks,
    /// invalidations that take effect at `sync`, and a fault count.
    struct SoftIommu {
        bug: Bug,
        entries: BTreeMap<u32, (DomainTag, Live)>,
        tlb: BTreeMap<(u16, u64), Translation>,
        queued: Vec<Queued>,
        faults: usize,
    }

    impl IommuBackend for SoftIommu {
        type Config = Live;
        type Error = SoftError;

        fn attach(&mut self, dev: &Device, d: &DomainHw<Live>) -> Result<(), SoftError> {
            for hw in dev.hw_ids() {
                self.entries.insert(hw.id, (d.tag, d.config.clone()));
            }
            Ok(())
        }
        fn block(&mut self, dev: &Device) -> Result<(), SoftError> {
            if self.bug != Bug::BlockIgnored {
                for hw in dev.hw_ids() {
                    self.entries.remove(&hw.id);
                }
            }
            Ok(())
        }
        fn attach_pasid(&mut self, _: &Device, _: Pasid, _: &DomainHw<Live>) -> Result<(), SoftError> {
            Err(SoftError)
        }
        fn block_pasid(&mut self, _: &Device, _: Pasid) -> Result<(), SoftError> {
            Err(SoftError)
        }
        fn invalidate(&mut self, tag: DomainTag, g: &IotlbGather) -> Result<(), SoftError> {
            self.queued.push((tag, Some(g.ranges().iter().map(|r| (r.start.0, r.end.0)).collect())));
            Ok(())
        }
        fn invalidate_tag(&mut self, tag: DomainTag) -> Result<(), SoftError> {
            self.queued.push((tag, None));
            Ok(())
        }
        fn sync(&mut self) -> Result<(), SoftError> {
            for (tag, ranges) in core::mem::take(&mut self.queued) {
                if self.bug == Bug::InvalidateIgnored {
                    continue;
                }
                self.tlb.retain(|&(t, page), _| {
                    t != tag.0
                        || ranges.as_ref().is_some_and(|rs| !rs.iter().any(|&(s, e)| page >= s && page < e))
                });
            }
            Ok(())
        }
    }

    impl DomainConfig<Live> for SoftIommu {
        fn domain_config(&self, table: &Live) -> Result<Live, SoftError> {
            Ok(table.clone())
        }
    }

    const SID: u32 = 8;
    const MEM: u64 = 0x10_0000;

    struct SoftRig {
        iommu: SoftIommu,
        mem: Vec<[u8; PAGE]>,
        buffer: [u8; PAGE],
        /// Device accesses that reached an address outside `mem`.
        strays: usize,
    }

    impl SoftRig {
        fn new(bug: Bug) -> Self {
            let iommu = SoftIommu {
                bug,
                entries: BTreeMap::new(),
                tlb: BTreeMap::new(),
                queued: Vec::new(),
                faults: 0,
            };
            Self { iommu, mem: vec![[0; PAGE]; PAGES], buffer: [0; PAGE], strays: 0 }
        }

        /// Where the device's access at `iova` goes, or `None` if blocked.
        fn translate(&mut self, iova: Iova, access: Access) -> Option<u64> {
            let Some((tag, table)) = self.iommu.entries.get(&SID) else {
                self.iommu.faults += 1;
                return None;
            };
            let page = iova.0 & !(PAGE as u64 - 1);
            let hit = self.iommu.tlb.get(&(tag.0, page)).copied();
            let t = match hit.or_else(|| table.lookup(Iova(page))) {
                Some(t) => t,
                None if self.iommu.bug == Bug::BypassUnmapped => return Some(iova.0),
                None => {
                    self.iommu.faults += 1;
                    return None;
                }
            };
            self.iommu.tlb.insert((tag.0, page), t);
            let allowed = t.prot.access().contains(access)
                || (self.iommu.bug == Bug::WriteIgnoresPermission && access == Access::WRITE);
            if !allowed {
                self.iommu.faults += 1;
                return None;
            }
            Some(t.paddr.0 + (iova.0 - page))
        }

        fn page_of(&mut self, pa: u64) -> Option<usize> {
            let i = pa.checked_sub(MEM).map(|o| (o / PAGE as u64) as usize).filter(|&i| i < PAGES);
            if i.is_none() {
                self.strays += 1;
            }
            i
        }
    }

    impl Rig for SoftRig {
        type Table = Live;
        type Backend = SoftIommu;

        fn backend(&mut self) -> &mut SoftIommu {
            &mut self.iommu
        }
        fn device(&self) -> Device {
            Device::new(DeviceId::Platform(1), [HwId::new(IommuUnit(0), SID)])
        }
        fn tags(&self) -> TagAllocator {
            TagAllocator::new(2, 255).unwrap()
        }
        fn new_table(&mut self) -> Result<Live, &'static str> {
            let t = Vmsav8Table::new(
                Stage2,
                TableConfig::new(Granule::Size4K, 40, 40),
                PoolAllocator::new(16, PAGE),
            )
            .map_err(|_| "table")?;
            Ok(Live(Rc::new(RefCell::new(t))))
        }
        fn page(&self, i: usize) -> PhysAddr {
            PhysAddr(MEM + (i * PAGE) as u64)
        }
        fn read(&self, i: usize, off: usize) -> u8 {
            self.mem[i][off]
        }
        fn write(&mut self, i: usize, off: usize, v: u8) {
            self.mem[i][off] = v;
        }
        fn iova_window(&self) -> Iova {
            Iova(0x0800_0000)
        }
        fn dma_limit(&self) -> u64 {
            1 << 28
        }
        fn dma_to_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str> {
            assert!(len == PAGE && iova.0 % PAGE as u64 == 0);
            if let Some(pa) = self.translate(iova, Access::READ) {
                if let Some(i) = self.page_of(pa) {
                    self.buffer = self.mem[i];
                }
            }
            Ok(())
        }
        fn dma_from_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str> {
            assert!(len == PAGE && iova.0 % PAGE as u64 == 0);
            if let Some(pa) = self.translate(iova, Access::WRITE) {
                if let Some(i) = self.page_of(pa) {
                    self.mem[i] = self.buffer;
                }
            }
            Ok(())
        }
        fn drain_faults(&mut self) -> usize {
            core::mem::take(&mut self.iommu.faults)
        }
        fn records(&self, _why: Blocked) -> bool {
            true
        }
    }

    fn run(name: &str, bug: Bug) -> Result<(), &'static str> {
        let case = Suite::<SoftRig>::CASES.iter().find(|c| c.name == name).expect("case exists");
        let mut rig = SoftRig::new(bug);
        let r = (case.run)(&mut rig);
        // Every case leaves the device blocked and the IOTLB without its tags.
        assert!(rig.iommu.entries.is_empty() || bug == Bug::BlockIgnored, "{name}: device left attached");
        assert_eq!(rig.strays, 0, "{name}: the device reached memory outside the rig");
        r
    }

    #[test]
    fn every_case_passes_on_a_correct_iommu() {
        assert_eq!(Suite::<SoftRig>::CASES.len(), CASE_COUNT);
        for case in Suite::<SoftRig>::CASES {
            assert_eq!(run(case.name, Bug::None), Ok(()), "{}", case.name);
        }
    }

    #[test]
    fn names_are_distinct_and_prefixed() {
        let names: Vec<&str> = Suite::<SoftRig>::CASES.iter().map(|c| c.name).collect();
        for (i, n) in names.iter().enumerate() {
            assert!(n.starts_with("conf_"));
            assert!(!names[..i].contains(n));
        }
    }

    #[test]
    fn each_case_catches_its_bug() {
        assert_eq!(run("conf_detach_blocks", Bug::BlockIgnored), Err(ROLES[A]));
        assert_eq!(
            run("conf_remap_invalidates", Bug::InvalidateIgnored),
            Err("the DMA after the remap went to the old page")
        );
        assert_eq!(run("conf_readonly_blocks_write", Bug::WriteIgnoresPermission), Err(ROLES[B]));
        // The canary's own address is the unmapped IOVA: a bypass writes it.
        assert_eq!(run("conf_unmapped_blocked", Bug::BypassUnmapped), Err(ROLES[CANARY]));
        // The other cases do not trip over those bugs.
        assert_eq!(run("conf_map_dma_lands", Bug::InvalidateIgnored), Ok(()));
    }

    /// A rig whose IOMMU blocks correctly but writes no fault records, and
    /// says so or not (QEMU's AMD-Vi is the honest kind).
    struct Silent {
        inner: SoftRig,
        claims_records: bool,
    }

    impl Rig for Silent {
        type Table = Live;
        type Backend = SoftIommu;
        fn backend(&mut self) -> &mut SoftIommu {
            self.inner.backend()
        }
        fn device(&self) -> Device {
            self.inner.device()
        }
        fn tags(&self) -> TagAllocator {
            self.inner.tags()
        }
        fn new_table(&mut self) -> Result<Live, &'static str> {
            self.inner.new_table()
        }
        fn page(&self, i: usize) -> PhysAddr {
            self.inner.page(i)
        }
        fn read(&self, i: usize, off: usize) -> u8 {
            self.inner.read(i, off)
        }
        fn write(&mut self, i: usize, off: usize, v: u8) {
            self.inner.write(i, off, v)
        }
        fn iova_window(&self) -> Iova {
            self.inner.iova_window()
        }
        fn dma_limit(&self) -> u64 {
            self.inner.dma_limit()
        }
        fn dma_to_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str> {
            self.inner.dma_to_device(iova, len)
        }
        fn dma_from_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str> {
            self.inner.dma_from_device(iova, len)
        }
        fn drain_faults(&mut self) -> usize {
            self.inner.drain_faults();
            0
        }
        fn records(&self, _why: Blocked) -> bool {
            self.claims_records
        }
    }

    #[test]
    fn fault_evidence_is_required_where_the_rig_claims_it() {
        for case in Suite::<Silent>::CASES {
            let mut honest = Silent { inner: SoftRig::new(Bug::None), claims_records: false };
            assert_eq!((case.run)(&mut honest), Ok(()), "{}", case.name);
            let mut claiming = Silent { inner: SoftRig::new(Bug::None), claims_records: true };
            let r = (case.run)(&mut claiming);
            if case.name == "conf_map_dma_lands" || case.name == "conf_remap_invalidates" {
                assert_eq!(r, Ok(()), "{}: nothing is blocked", case.name);
            } else {
                assert!(r.is_err_and(|e| e.starts_with("no fault record")), "{}: {r:?}", case.name);
            }
        }
    }
}
