//! Domains, and the backend trait every IOMMU driver implements.
//!
//! A [`Domain`] is one I/O address space: an [`IoPageTable`], the hardware
//! tag its TLB entries carry ([`DomainTag`]) and the set of groups attached
//! to it. Groups ([`crate::group`]) are attached to domains, and domains are
//! owned by containers ([`crate::container`]), which decide what memory a
//! domain may map.
//!
//! # The backend
//!
//! [`IommuBackend`] is what the SMMUv3, VT-d and AMD-Vi drivers implement:
//! point a device's entry at a domain, block it, and invalidate a domain's
//! cached translations. [`DomainConfig`] turns a page table into what the
//! backend's device entry needs ([`IommuBackend::Config`]).
//!
//! | model | SMMUv3 | VT-d | AMD-Vi |
//! | --- | --- | --- | --- |
//! | [`HwId`](crate::group::HwId) | StreamID | source-id (bus, devfn) | DeviceID |
//! | device entry | STE | root entry → context entry (scalable mode: → PASID directory/table) | DTE |
//! | [`DomainTag`] | VMID (stage 2), ASID (stage 1) | domain ID (`CAP_REG.ND`) | DomainID (16 bits) |
//! | `Config` | `S2TTB` + `S2VTCR` (`Stage2Config`), or a CD's `TTB0`/`TCR`/`MAIR` | `SLPTPTR`, `AW`, `TT` = second level | host page table root, `Mode` (levels), `IR`/`IW` |
//! | [`attach`](IommuBackend::attach) | write STE (`Config` = S2 or S1 translate), `CMD_CFGI_STE` + `CMD_SYNC` | write context entry, context-cache invalidation (device), IOTLB (domain) + wait descriptor | write DTE, `INVALIDATE_DEVTAB_ENTRY` + `COMPLETION_WAIT` |
//! | [`block`](IommuBackend::block) | abort STE (`V` = 1, `Config` = 0b000) | context entry `P` = 0 | DTE `V` = 1, `TV` = 1, `IR` = `IW` = 0 (`V` = 0 would pass DMA untranslated) |
//! | [`attach_pasid`](IommuBackend::attach_pasid) | CD at SubstreamID in the STE's CD table, `CMD_CFGI_CD` | PASID-table entry, PASID-cache invalidation | GCR3 table entry, `INVALIDATE_IOMMU_PAGES` with the PASID |
//! | [`invalidate`](IommuBackend::invalidate) | `CMD_TLBI_S2_IPA` / `CMD_TLBI_NH_VA` (range form with `IDR3.RIL`, `Leaf` = !`tables_removed`, `TTL` from `leaf_sizes`), `CMD_TLBI_S12_VMALL` past a threshold, `CMD_ATC_INV` for ATS devices | page-selective-within-domain IOTLB invalidation (`AM` up to `CAP_REG.MAMV`, `IH` = leaf only), domain-selective past a threshold, device-TLB invalidation | `INVALIDATE_IOMMU_PAGES` (`S` = 1 for ranges, `PDE` = `tables_removed`), all pages past a threshold, `INVALIDATE_IOTLB_PAGES` for ATS |
//! | [`sync`](IommuBackend::sync) | `CMD_SYNC`, bounded wait | invalidation wait descriptor, bounded wait | `COMPLETION_WAIT`, bounded wait |
//!
//! Detaching never means bypass: a device that is not attached is blocked,
//! and so is every device the backend has not been told about (SMMU: abort
//! STEs and `GBPA.ABORT` from bring-up).
//!
//! # Life cycle of an unmap
//!
//! [`Domain::unmap`] follows [`crate::pgtable`]'s rule: the table unmaps into
//! an [`IotlbGather`]; the backend invalidates its ranges for the domain's
//! tag and waits ([`invalidate`](IommuBackend::invalidate), then
//! [`sync`](IommuBackend::sync)); only then does
//! [`IoPageTable::complete`] free the unlinked table pages. If the
//! invalidation fails, the mapping is gone but the gather stays with the
//! domain, table pages held, until [`Domain::flush_pending`] (or the next
//! unmap) gets it through.
//!
//! # Tags
//!
//! [`TagAllocator`] hands out tags from the backend's space (VMID of 8 or 16
//! bits, VT-d's `ND` domain-ID width, AMD-Vi's 16-bit DomainID), tag 0
//! reserved. One allocator serves all IOMMU units, so a domain's tag is valid
//! on each unit a group of it sits behind. A tag goes back only after
//! [`IommuBackend::invalidate_tag`], so its next owner starts with clean TLBs.

#![forbid(unsafe_code)]

use alloc::collections::BTreeSet;
use alloc::vec;
use alloc::vec::Vec;
use core::convert::Infallible;
use core::fmt;

use crate::addr::{Iova, PhysAddr};
use crate::container::PhysRegions;
use crate::group::{Device, GroupId};
use crate::pasid::Pasid;
use crate::pgtable::{IoPageTable, IotlbGather, PgTableError, Prot};

/// The tag an IOMMU's TLB entries of one domain carry: an SMMU VMID or ASID,
/// a VT-d domain ID, an AMD-Vi DomainID. Never 0 from a [`TagAllocator`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainTag(pub u16);

/// The software name of a domain. Never reused, unlike its tag, so a stale
/// handle cannot reach a newer domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DomainId(pub u32);

impl fmt::Display for DomainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "domain {}", self.0)
    }
}

/// What a backend programs into a device entry to attach it to a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainHw<C> {
    /// The domain's TLB tag.
    pub tag: DomainTag,
    /// The table root and format fields, as the backend's
    /// [`DomainConfig::domain_config`] produced them.
    pub config: C,
}

/// The operations an IOMMU driver provides to the assignment model (see the
/// module docs for how SMMUv3, VT-d and AMD-Vi implement each).
///
/// Every device starts blocked. [`attach`](Self::attach),
/// [`block`](Self::block) and the PASID variants return once the hardware
/// uses the new entry (the driver issues the configuration-cache
/// invalidation and waits). An error means the change may not have taken
/// effect; the model then rolls back or keeps its records on the safe side.
pub trait IommuBackend {
    /// What a device entry needs to translate through a domain's table.
    type Config: Clone + fmt::Debug;
    /// The driver's error (a timeout naming what did not acknowledge, an
    /// entry the hardware cannot hold, ...).
    type Error: Clone + fmt::Debug;

    /// Points every hardware ID of `dev` at `domain` for requests without a
    /// PASID, replacing its previous entry (blocked or another domain). PASID
    /// entries of the device stay as they are.
    fn attach(&mut self, dev: &Device, domain: &DomainHw<Self::Config>) -> Result<(), Self::Error>;

    /// Blocks every hardware ID of `dev`: its transactions, with or without
    /// PASID, are aborted from now on. Never bypass.
    fn block(&mut self, dev: &Device) -> Result<(), Self::Error>;

    /// Points requests of `dev` tagged with `pasid` at `domain`.
    fn attach_pasid(
        &mut self,
        dev: &Device,
        pasid: Pasid,
        domain: &DomainHw<Self::Config>,
    ) -> Result<(), Self::Error>;

    /// Blocks requests of `dev` tagged with `pasid`.
    fn block_pasid(&mut self, dev: &Device, pasid: Pasid) -> Result<(), Self::Error>;

    /// Queues the invalidation of the input ranges in `gather` for `tag`
    /// (walk caches too when [`IotlbGather::tables_removed`]). The backend
    /// chooses range commands, per-page commands, or the whole tag past a
    /// threshold. Takes effect at the next [`sync`](Self::sync).
    fn invalidate(&mut self, tag: DomainTag, gather: &IotlbGather) -> Result<(), Self::Error>;

    /// Queues the invalidation of everything cached for `tag`.
    fn invalidate_tag(&mut self, tag: DomainTag) -> Result<(), Self::Error>;

    /// Waits, bounded, until every invalidation queued so far has completed.
    fn sync(&mut self) -> Result<(), Self::Error>;
}

/// A page-table format a backend's hardware can walk.
pub trait DomainConfig<T: IoPageTable>: IommuBackend {
    /// The device-entry fields for `table`, or an error if this IOMMU cannot
    /// walk it (granule, input or output size beyond its `IDR`/`CAP`
    /// registers).
    fn domain_config(&self, table: &T) -> Result<Self::Config, Self::Error>;
}

/// Why a domain operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainError<E = Infallible> {
    /// The output range `[paddr, paddr + len)` is not wholly inside the
    /// memory the domain may map. Nothing was changed.
    OutsideMemory {
        /// Start of the refused output range.
        paddr: PhysAddr,
        /// Its length.
        len: u64,
    },
    /// The page table refused the change (see [`PgTableError`]). Nothing was
    /// changed.
    Table(PgTableError),
    /// The backend failed to invalidate. For an unmap: the mapping is gone,
    /// but its table pages are held until a later
    /// [`Domain::flush_pending`] succeeds.
    Backend(E),
}

impl DomainError {
    /// The same error in a context that also has backend errors.
    pub fn widen<E>(self) -> DomainError<E> {
        match self {
            Self::OutsideMemory { paddr, len } => DomainError::OutsideMemory { paddr, len },
            Self::Table(e) => DomainError::Table(e),
            Self::Backend(never) => match never {},
        }
    }
}

impl<E: fmt::Debug> fmt::Display for DomainError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutsideMemory { paddr, len } => {
                write!(f, "output range {paddr:?}+{len:#x} outside the domain's memory")
            }
            Self::Table(e) => write!(f, "page table: {e}"),
            Self::Backend(e) => write!(f, "invalidation failed: {e:?}"),
        }
    }
}

/// One I/O address space.
///
/// Domains live in containers ([`crate::container::DeviceAssignment`]),
/// which create them with a fresh tag and keep the attached-group set in
/// step with the hardware. The table is only reachable read-only, so every
/// change goes through [`map`](Self::map) and [`unmap`](Self::unmap).
pub struct Domain<T: IoPageTable> {
    id: DomainId,
    tag: DomainTag,
    table: T,
    groups: BTreeSet<GroupId>,
    /// Unmaps whose invalidation has not completed yet.
    pending: IotlbGather,
}

impl<T: IoPageTable> Domain<T> {
    pub(crate) fn new(id: DomainId, tag: DomainTag, table: T) -> Self {
        Self { id, tag, table, groups: BTreeSet::new(), pending: IotlbGather::new() }
    }

    /// The domain's name.
    pub fn id(&self) -> DomainId {
        self.id
    }

    /// The domain's TLB tag.
    pub fn tag(&self) -> DomainTag {
        self.tag
    }

    /// The page table.
    pub fn table(&self) -> &T {
        &self.table
    }

    /// The groups attached, in order.
    pub fn groups(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.groups.iter().copied()
    }

    /// Whether `group` is attached.
    pub fn has_group(&self, group: GroupId) -> bool {
        self.groups.contains(&group)
    }

    /// Whether an unmap's invalidation has not completed (see
    /// [`flush_pending`](Self::flush_pending)).
    pub fn has_pending_flush(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The translation of `iova`, as the IOMMU would find it.
    pub fn translate(&self, iova: Iova) -> Option<PhysAddr> {
        self.table.iova_to_phys(iova)
    }

    /// What `backend` programs to attach a device to this domain.
    pub fn hw<B: DomainConfig<T> + ?Sized>(&self, backend: &B) -> Result<DomainHw<B::Config>, B::Error> {
        Ok(DomainHw { tag: self.tag, config: backend.domain_config(&self.table)? })
    }

    /// Maps `len` bytes from `iova` to `paddr` with `prot`, after checking
    /// that `[paddr, paddr + len)` lies wholly inside `allowed` (the owning
    /// partition's memory). All or nothing: on error the table is unchanged.
    /// A new mapping needs no invalidation (only invalid entries become
    /// valid).
    pub fn map(
        &mut self,
        allowed: &PhysRegions,
        iova: Iova,
        paddr: PhysAddr,
        len: u64,
        prot: Prot,
    ) -> Result<(), DomainError> {
        if len == 0 {
            return Err(DomainError::Table(PgTableError::SizeZero));
        }
        if !allowed.contains(paddr, len) {
            return Err(DomainError::OutsideMemory { paddr, len });
        }
        self.table.map(iova, paddr, len, prot).map_err(DomainError::Table)
    }

    /// Unmaps `len` bytes from `iova`: the table unmaps into a gather, the
    /// backend invalidates it for this domain's tag and syncs, and only then
    /// are the unlinked table pages freed ([`IoPageTable::complete`]).
    ///
    /// A [`DomainError::Table`] changes nothing. A [`DomainError::Backend`]
    /// leaves the range unmapped with its invalidation pending.
    pub fn unmap<B: IommuBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        iova: Iova,
        len: u64,
    ) -> Result<(), DomainError<B::Error>> {
        self.table.unmap(iova, len, &mut self.pending).map_err(DomainError::Table)?;
        self.flush_pending(backend)
    }

    /// Invalidates what earlier unmaps left pending, waits, and frees their
    /// table pages. Does nothing when nothing is pending.
    pub fn flush_pending<B: IommuBackend + ?Sized>(
        &mut self,
        backend: &mut B,
    ) -> Result<(), DomainError<B::Error>> {
        if self.pending.is_empty() {
            return Ok(());
        }
        backend.invalidate(self.tag, &self.pending).map_err(DomainError::Backend)?;
        backend.sync().map_err(DomainError::Backend)?;
        self.table.complete(&mut self.pending).map_err(DomainError::Table)
    }

    pub(crate) fn attach_group(&mut self, group: GroupId) {
        self.groups.insert(group);
    }

    pub(crate) fn detach_group(&mut self, group: GroupId) {
        self.groups.remove(&group);
    }

    /// The table, once the domain is gone.
    pub(crate) fn into_table(self) -> T {
        self.table
    }
}

impl<T: IoPageTable> fmt::Debug for Domain<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Domain")
            .field("id", &self.id)
            .field("tag", &self.tag)
            .field("groups", &self.groups)
            .field("pending_flush", &self.has_pending_flush())
            .finish_non_exhaustive()
    }
}

/// Why the tag allocator refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagError {
    /// Every tag in the space is in use.
    Exhausted,
    /// The tag is outside the space, or not allocated (a double free).
    NotAllocated(DomainTag),
    /// The requested space is empty or includes tag 0.
    BadRange,
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exhausted => f.write_str("no domain tag left"),
            Self::NotAllocated(t) => write!(f, "tag {} not allocated", t.0),
            Self::BadRange => f.write_str("empty tag range, or one that includes 0"),
        }
    }
}

/// Allocates domain tags from `first..=last`, lowest free first.
#[derive(Clone, Debug)]
pub struct TagAllocator {
    first: u16,
    last: u16,
    /// One bit per tag of the range, set when in use.
    used: Vec<u64>,
    /// No free tag lies in a word below this one.
    hint: usize,
    in_use: usize,
}

impl TagAllocator {
    /// Tags `first..=last`; `first` must be at least 1.
    pub fn new(first: u16, last: u16) -> Result<Self, TagError> {
        if first == 0 || first > last {
            return Err(TagError::BadRange);
        }
        let n = usize::from(last - first) + 1;
        Ok(Self { first, last, used: vec![0; n.div_ceil(64)], hint: 0, in_use: 0 })
    }

    /// SMMUv3 VMIDs: 16 bits with `SMMU_IDR0.VMID16`, else 8. VMID 0 is left
    /// out (the hypervisor's own stage 2, and Linux's convention).
    pub fn smmu_vmid(vmid16: bool) -> Self {
        Self::new(1, if vmid16 { u16::MAX } else { u8::MAX as u16 }).expect("non-empty")
    }

    /// SMMUv3 ASIDs: 16 bits with `SMMU_IDR0.ASID16`, else 8; ASID 0 left
    /// out.
    pub fn smmu_asid(asid16: bool) -> Self {
        Self::smmu_vmid(asid16)
    }

    /// VT-d domain IDs for `CAP_REG.ND` (0..=6: `4 + 2 * nd` bits). Domain
    /// ID 0 is left out (reserved when `CAP_REG.CM` = 1).
    pub fn vtd(nd: u8) -> Result<Self, TagError> {
        if nd > 6 {
            return Err(TagError::BadRange);
        }
        let bits = 4 + 2 * u32::from(nd);
        Self::new(1, ((1u32 << bits) - 1) as u16)
    }

    /// AMD-Vi DomainIDs: 16 bits, 0 left out.
    pub fn amdvi() -> Self {
        Self::new(1, u16::MAX).expect("non-empty")
    }

    /// Number of tags in the space.
    pub fn capacity(&self) -> usize {
        usize::from(self.last - self.first) + 1
    }

    /// Number of tags allocated.
    pub fn in_use(&self) -> usize {
        self.in_use
    }

    /// Whether `tag` is allocated.
    pub fn is_allocated(&self, tag: DomainTag) -> bool {
        self.bit(tag).is_some_and(|i| self.used[i / 64] & (1 << (i % 64)) != 0)
    }

    /// The lowest free tag.
    pub fn alloc(&mut self) -> Result<DomainTag, TagError> {
        let n = self.capacity();
        for w in self.hint..self.used.len() {
            let free = !self.used[w];
            if free != 0 {
                let i = w * 64 + free.trailing_zeros() as usize;
                if i >= n {
                    break;
                }
                self.used[w] |= 1 << (i % 64);
                self.hint = w;
                self.in_use += 1;
                return Ok(DomainTag(self.first + i as u16));
            }
        }
        self.hint = self.used.len();
        Err(TagError::Exhausted)
    }

    /// Returns `tag`. The caller has invalidated everything cached for it.
    pub fn free(&mut self, tag: DomainTag) -> Result<(), TagError> {
        if !self.is_allocated(tag) {
            return Err(TagError::NotAllocated(tag));
        }
        let i = self.bit(tag).expect("allocated tags are in range");
        self.used[i / 64] &= !(1 << (i % 64));
        self.hint = self.hint.min(i / 64);
        self.in_use -= 1;
        Ok(())
    }

    fn bit(&self, tag: DomainTag) -> Option<usize> {
        (self.first..=self.last).contains(&tag.0).then(|| usize::from(tag.0 - self.first))
    }
}

/// A recording backend and page table for the model's tests.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use crate::group::{DeviceId, HwId};
    use crate::pgtable::{IovaRange, Translation};
    use alloc::collections::BTreeMap;
    use alloc::rc::Rc;
    use core::cell::RefCell;

    /// What the fake saw, in order.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub(crate) enum Event {
        Attach {
            dev: DeviceId,
            tag: DomainTag,
        },
        Block(DeviceId),
        AttachPasid {
            dev: DeviceId,
            pasid: Pasid,
            tag: DomainTag,
        },
        BlockPasid {
            dev: DeviceId,
            pasid: Pasid,
        },
        Invalidate {
            tag: DomainTag,
            ranges: Vec<IovaRange>,
            tables_removed: bool,
        },
        InvalidateTag(DomainTag),
        Sync,
        /// Logged by [`Recorded`] tables.
        Unmap {
            iova: Iova,
            len: u64,
        },
        /// Logged by [`Recorded`] tables: table pages freed.
        Complete {
            freed_tables: usize,
        },
    }

    pub(crate) type Log = Rc<RefCell<Vec<Event>>>;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct FakeError(pub &'static str);

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) struct FakeConfig {
        pub ias: u32,
    }

    /// Keeps the hardware state it was told to set up, per hardware ID
    /// (absent: blocked), and fails the `fail_at`-th call from now when set.
    #[derive(Debug, Default)]
    pub(crate) struct FakeBackend {
        pub log: Log,
        pub hw: BTreeMap<HwId, DomainTag>,
        pub pasid_hw: BTreeMap<(HwId, Pasid), DomainTag>,
        /// Calls (of any kind) to let through before one fails.
        pub fail_at: Option<usize>,
        /// Only the operation named here fails (any, if `None`).
        pub fail_only: Option<&'static str>,
        /// Refuse tables with a larger input size.
        pub max_ias: Option<u32>,
        /// Tags whose invalidation has been queued, not yet synced.
        pub queued: Vec<DomainTag>,
    }

    impl FakeBackend {
        pub(crate) fn new() -> Self {
            Self::default()
        }

        pub(crate) fn events(&self) -> Vec<Event> {
            self.log.borrow().clone()
        }

        pub(crate) fn clear(&self) {
            self.log.borrow_mut().clear();
        }

        fn call(&mut self, what: &'static str) -> Result<(), FakeError> {
            if self.fail_only.is_some_and(|f| f != what) {
                return Ok(());
            }
            match self.fail_at {
                Some(0) => {
                    self.fail_at = None;
                    Err(FakeError(what))
                }
                Some(n) => {
                    self.fail_at = Some(n - 1);
                    Ok(())
                }
                None => Ok(()),
            }
        }

        /// The tag `hw` translates through, if attached.
        pub(crate) fn state(&self, hw: HwId) -> Option<DomainTag> {
            self.hw.get(&hw).copied()
        }
    }

    impl IommuBackend for FakeBackend {
        type Config = FakeConfig;
        type Error = FakeError;

        fn attach(&mut self, dev: &Device, domain: &DomainHw<FakeConfig>) -> Result<(), FakeError> {
            self.call("attach")?;
            for hw in dev.hw_ids() {
                self.hw.insert(*hw, domain.tag);
            }
            self.log.borrow_mut().push(Event::Attach { dev: dev.id(), tag: domain.tag });
            Ok(())
        }

        fn block(&mut self, dev: &Device) -> Result<(), FakeError> {
            self.call("block")?;
            for hw in dev.hw_ids() {
                self.hw.remove(hw);
                self.pasid_hw.retain(|(h, _), _| h != hw);
            }
            self.log.borrow_mut().push(Event::Block(dev.id()));
            Ok(())
        }

        fn attach_pasid(
            &mut self,
            dev: &Device,
            pasid: Pasid,
            domain: &DomainHw<FakeConfig>,
        ) -> Result<(), FakeError> {
            self.call("attach_pasid")?;
            for hw in dev.hw_ids() {
                self.pasid_hw.insert((*hw, pasid), domain.tag);
            }
            self.log.borrow_mut().push(Event::AttachPasid { dev: dev.id(), pasid, tag: domain.tag });
            Ok(())
        }

        fn block_pasid(&mut self, dev: &Device, pasid: Pasid) -> Result<(), FakeError> {
            self.call("block_pasid")?;
            for hw in dev.hw_ids() {
                self.pasid_hw.remove(&(*hw, pasid));
            }
            self.log.borrow_mut().push(Event::BlockPasid { dev: dev.id(), pasid });
            Ok(())
        }

        fn invalidate(&mut self, tag: DomainTag, gather: &IotlbGather) -> Result<(), FakeError> {
            self.call("invalidate")?;
            self.queued.push(tag);
            self.log.borrow_mut().push(Event::Invalidate {
                tag,
                ranges: gather.ranges().to_vec(),
                tables_removed: gather.tables_removed(),
            });
            Ok(())
        }

        fn invalidate_tag(&mut self, tag: DomainTag) -> Result<(), FakeError> {
            self.call("invalidate_tag")?;
            self.queued.push(tag);
            self.log.borrow_mut().push(Event::InvalidateTag(tag));
            Ok(())
        }

        fn sync(&mut self) -> Result<(), FakeError> {
            self.call("sync")?;
            self.queued.clear();
            self.log.borrow_mut().push(Event::Sync);
            Ok(())
        }
    }

    impl<T: IoPageTable> DomainConfig<T> for FakeBackend {
        fn domain_config(&self, table: &T) -> Result<FakeConfig, FakeError> {
            if self.max_ias.is_some_and(|m| table.ias() > m) {
                return Err(FakeError("input size"));
            }
            Ok(FakeConfig { ias: table.ias() })
        }
    }

    /// A page table that logs its unmaps and completions into the
    /// backend's log, so tests see one ordered history.
    pub(crate) struct Recorded<T> {
        pub inner: T,
        pub log: Log,
    }

    impl<T: IoPageTable> IoPageTable for Recorded<T> {
        fn page_sizes(&self) -> u64 {
            self.inner.page_sizes()
        }

        fn ias(&self) -> u32 {
            self.inner.ias()
        }

        fn oas(&self) -> u32 {
            self.inner.oas()
        }

        fn map_pages(
            &mut self,
            iova: Iova,
            paddr: PhysAddr,
            pgsize: u64,
            pgcount: usize,
            prot: Prot,
        ) -> Result<(), PgTableError> {
            self.inner.map_pages(iova, paddr, pgsize, pgcount, prot)
        }

        fn map(&mut self, iova: Iova, paddr: PhysAddr, len: u64, prot: Prot) -> Result<(), PgTableError> {
            self.inner.map(iova, paddr, len, prot)
        }

        fn unmap_pages(
            &mut self,
            iova: Iova,
            pgsize: u64,
            pgcount: usize,
            gather: &mut IotlbGather,
        ) -> Result<(), PgTableError> {
            self.inner.unmap_pages(iova, pgsize, pgcount, gather)?;
            self.log.borrow_mut().push(Event::Unmap { iova, len: pgsize * pgcount as u64 });
            Ok(())
        }

        fn complete(&mut self, gather: &mut IotlbGather) -> Result<(), PgTableError> {
            let freed_tables = gather.freed_tables();
            self.inner.complete(gather)?;
            self.log.borrow_mut().push(Event::Complete { freed_tables });
            Ok(())
        }

        fn lookup(&self, iova: Iova) -> Option<Translation> {
            self.inner.lookup(iova)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::{Event, FakeBackend, FakeError, Recorded};
    use super::*;
    use crate::container::{PhysRange, PhysRegions};
    use crate::pgtable::vmsav8::{Granule, S2Table, Stage2, TableConfig, Vmsav8Table};
    use crate::pgtable::{IovaRange, PoolAllocator};

    const K4: u64 = 0x1000;
    const MEM: u64 = 0x8000_0000;

    fn s2() -> S2Table<PoolAllocator> {
        Vmsav8Table::new(Stage2, TableConfig::new(Granule::Size4K, 40, 40), PoolAllocator::new(16, 4096))
            .unwrap()
    }

    fn memory() -> PhysRegions {
        PhysRegions::new([PhysRange::new(PhysAddr(MEM), 0x10_0000)]).unwrap()
    }

    fn recorded(backend: &FakeBackend) -> Domain<Recorded<S2Table<PoolAllocator>>> {
        Domain::new(DomainId(1), DomainTag(7), Recorded { inner: s2(), log: backend.log.clone() })
    }

    #[test]
    fn tag_spaces_follow_the_specs() {
        assert_eq!(TagAllocator::smmu_vmid(false).capacity(), 255);
        assert_eq!(TagAllocator::smmu_vmid(true).capacity(), 65535);
        assert_eq!(TagAllocator::smmu_asid(false).capacity(), 255);
        // VT-d CAP_REG.ND: 0 -> 4 bits (16 IDs), 6 -> 16 bits; 7 reserved.
        assert_eq!(TagAllocator::vtd(0).unwrap().capacity(), 15);
        assert_eq!(TagAllocator::vtd(2).unwrap().capacity(), 255);
        assert_eq!(TagAllocator::vtd(6).unwrap().capacity(), 65535);
        assert_eq!(TagAllocator::vtd(7).err(), Some(TagError::BadRange));
        assert_eq!(TagAllocator::amdvi().capacity(), 65535);
        assert_eq!(TagAllocator::new(0, 5).err(), Some(TagError::BadRange));
        assert_eq!(TagAllocator::new(5, 4).err(), Some(TagError::BadRange));
    }

    #[test]
    fn tags_run_out_and_come_back() {
        let mut tags = TagAllocator::vtd(0).unwrap();
        let all: Vec<DomainTag> = (0..15).map(|_| tags.alloc().unwrap()).collect();
        assert_eq!(all.first(), Some(&DomainTag(1)));
        assert_eq!(all.last(), Some(&DomainTag(15)));
        assert_eq!(tags.alloc(), Err(TagError::Exhausted));
        assert_eq!(tags.in_use(), 15);
        tags.free(DomainTag(9)).unwrap();
        assert_eq!(tags.free(DomainTag(9)), Err(TagError::NotAllocated(DomainTag(9))));
        assert_eq!(tags.free(DomainTag(0)), Err(TagError::NotAllocated(DomainTag(0))));
        assert_eq!(tags.free(DomainTag(16)), Err(TagError::NotAllocated(DomainTag(16))));
        assert_eq!(tags.in_use(), 14);
        assert_eq!(tags.alloc(), Ok(DomainTag(9)));
        assert_eq!(tags.alloc(), Err(TagError::Exhausted));
    }

    #[test]
    fn tags_across_words() {
        let mut tags = TagAllocator::new(1, 200).unwrap();
        for i in 1..=200 {
            assert_eq!(tags.alloc(), Ok(DomainTag(i)));
        }
        assert_eq!(tags.alloc(), Err(TagError::Exhausted));
        tags.free(DomainTag(3)).unwrap();
        tags.free(DomainTag(150)).unwrap();
        assert_eq!(tags.alloc(), Ok(DomainTag(3)));
        assert_eq!(tags.alloc(), Ok(DomainTag(150)));
        assert!(tags.is_allocated(DomainTag(200)));
        assert!(!tags.is_allocated(DomainTag(201)));
    }

    #[test]
    fn map_outside_memory_is_refused_and_changes_nothing() {
        let mut d = Domain::new(DomainId(1), DomainTag(1), s2());
        let mem = memory();
        let before = d.table().stats();
        // Wholly outside, straddling the end, straddling the start.
        for (pa, len) in [(0x1000, K4), (MEM + 0x10_0000 - K4, 2 * K4), (MEM - K4, 2 * K4)] {
            assert_eq!(
                d.map(&mem, Iova(0), PhysAddr(pa), len, Prot::RW),
                Err(DomainError::OutsideMemory { paddr: PhysAddr(pa), len })
            );
        }
        // Wrapping around the address space.
        assert!(matches!(
            d.map(&mem, Iova(0), PhysAddr(u64::MAX - K4 + 1), 2 * K4, Prot::RW),
            Err(DomainError::OutsideMemory { .. })
        ));
        assert_eq!(
            d.map(&mem, Iova(0), PhysAddr(MEM), 0, Prot::RW),
            Err(DomainError::Table(PgTableError::SizeZero))
        );
        assert_eq!(d.table().stats(), before);
        assert_eq!(d.table().allocator().in_use(), 1);

        d.map(&mem, Iova(0x4000), PhysAddr(MEM), 0x10_0000, Prot::RW).unwrap();
        assert_eq!(d.translate(Iova(0x4000 + 0x1234)), Some(PhysAddr(MEM + 0x1234)));
        // A page-table refusal changes nothing either.
        let before = d.table().stats();
        assert_eq!(
            d.map(&mem, Iova(0x4000), PhysAddr(MEM), K4, Prot::RW),
            Err(DomainError::Table(PgTableError::AlreadyMapped(Iova(0x4000))))
        );
        assert_eq!(d.table().stats(), before);
    }

    #[test]
    fn unmap_invalidates_and_syncs_before_freeing_table_pages() {
        let mut backend = FakeBackend::new();
        let mut d = recorded(&backend);
        d.map(&memory(), Iova(0x20_0000), PhysAddr(MEM), 2 * K4, Prot::RW).unwrap();
        let tables = d.table().inner.allocator().in_use();
        assert_eq!(tables, 3);

        d.unmap(&mut backend, Iova(0x20_0000), 2 * K4).unwrap();
        let range = IovaRange { start: Iova(0x20_0000), end: Iova(0x20_2000) };
        assert_eq!(
            backend.events(),
            [
                Event::Unmap { iova: Iova(0x20_0000), len: 2 * K4 },
                Event::Invalidate { tag: DomainTag(7), ranges: vec![range], tables_removed: true },
                Event::Sync,
                Event::Complete { freed_tables: 2 },
            ]
        );
        assert_eq!(d.table().inner.allocator().in_use(), 1);
        assert!(!d.has_pending_flush());
        assert_eq!(d.translate(Iova(0x20_0000)), None);
    }

    #[test]
    fn failed_invalidation_keeps_table_pages_until_a_later_flush() {
        for failing in ["invalidate", "sync"] {
            let mut backend = FakeBackend::new();
            let mut d = recorded(&backend);
            d.map(&memory(), Iova(0x20_0000), PhysAddr(MEM), K4, Prot::RW).unwrap();
            backend.fail_at = Some(0);
            backend.fail_only = Some(failing);
            assert_eq!(
                d.unmap(&mut backend, Iova(0x20_0000), K4),
                Err(DomainError::Backend(FakeError(failing)))
            );
            // Unmapped, but its tables are not freed: the walker may still
            // hold them.
            assert_eq!(d.translate(Iova(0x20_0000)), None);
            assert!(d.has_pending_flush());
            assert_eq!(d.table().inner.allocator().in_use(), 3);
            assert!(!backend.events().iter().any(|e| matches!(e, Event::Complete { .. })));

            backend.clear();
            d.flush_pending(&mut backend).unwrap();
            assert!(matches!(
                backend.events().as_slice(),
                [Event::Invalidate { .. }, Event::Sync, Event::Complete { freed_tables: 2 }]
            ));
            assert_eq!(d.table().inner.allocator().in_use(), 1);
            // Nothing left: a second flush does nothing.
            backend.clear();
            d.flush_pending(&mut backend).unwrap();
            assert!(backend.events().is_empty());
        }
    }

    #[test]
    fn unmap_of_unmapped_range_changes_nothing() {
        let mut backend = FakeBackend::new();
        let mut d = recorded(&backend);
        d.map(&memory(), Iova(0x20_0000), PhysAddr(MEM), K4, Prot::RW).unwrap();
        assert_eq!(
            d.unmap(&mut backend, Iova(0x20_0000), 2 * K4),
            Err(DomainError::Table(PgTableError::NotMapped(Iova(0x20_1000))))
        );
        assert!(backend.events().is_empty());
        assert_eq!(d.translate(Iova(0x20_0000)), Some(PhysAddr(MEM)));
        assert!(!d.has_pending_flush());
    }

    #[test]
    fn hw_config_comes_from_the_backend() {
        let mut backend = FakeBackend::new();
        let d = Domain::new(DomainId(3), DomainTag(4), s2());
        assert_eq!(
            d.hw(&backend).unwrap(),
            DomainHw { tag: DomainTag(4), config: fake::FakeConfig { ias: 40 } }
        );
        backend.max_ias = Some(39);
        assert_eq!(d.hw(&backend), Err(FakeError("input size")));
    }
}
