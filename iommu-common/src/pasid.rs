//! PASIDs: allocation, and binding (device, PASID) pairs to domains.
//!
//! A PASID (PCIe Process Address Space ID; SMMUv3 SubstreamID) tags a
//! device's transactions with an address space beyond the device's own, so
//! one device can DMA through several domains: SMMUv3 selects a context
//! descriptor by SubstreamID, VT-d scalable mode a PASID-table entry, AMD-Vi
//! a GCR3-table entry.
//!
//! [`PasidAllocator`] manages the one global 20-bit space. PASID 0 is not a
//! PASID here: it means "no PASID" (VT-d's `RID_PASID` default, SMMU's
//! SubstreamID 0 for untagged traffic), which the group's attachment covers,
//! so [`Pasid`] cannot hold it. Ranges can be reserved (for a guest's own
//! PASIDs, or the backend's defaults). A device supporting `N` PASID bits only
//! gets PASIDs below `2^N`; since the allocator hands out the lowest free
//! value, a device with a small width fails only when every value it could
//! use is taken. Every operation is O(log n) in the number of free ranges.
//!
//! [`PasidBindings`] records which domain each (device, PASID) pair
//! translates through and programs the backend.

#![forbid(unsafe_code)]

use alloc::collections::BTreeMap;
use core::fmt;

use crate::domain::{DomainHw, DomainId, IommuBackend};
use crate::group::{Device, DeviceId, MAX_PASID_BITS};

/// A PASID: 1 to `2^20 - 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pasid(u32);

impl Pasid {
    /// The largest PASID.
    pub const MAX: u32 = (1 << MAX_PASID_BITS) - 1;

    /// A PASID, or `None` for 0 ("no PASID") or values beyond 20 bits.
    pub const fn new(v: u32) -> Option<Self> {
        if v == 0 || v > Self::MAX {
            None
        } else {
            Some(Self(v))
        }
    }

    /// The raw value.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// Whether a device with `bits` PASID bits can emit this PASID.
    pub const fn fits(self, bits: u8) -> bool {
        bits <= MAX_PASID_BITS && (bits == MAX_PASID_BITS || self.0 < 1 << bits)
    }
}

impl fmt::Display for Pasid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pasid {:#x}", self.0)
    }
}

/// Why the PASID allocator refused. It is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasidError {
    /// The device cannot tag transactions with a PASID (0 bits).
    NoPasidSupport,
    /// A width beyond 20 bits was asked for.
    BadWidth(u8),
    /// Every PASID below `2^bits` is allocated or reserved.
    Exhausted {
        /// The width asked for.
        bits: u8,
    },
    /// The PASID is not allocated: never, or already freed (a double free).
    NotAllocated(Pasid),
    /// The PASID is already allocated.
    AlreadyAllocated(Pasid),
    /// The PASID lies in a reserved range.
    Reserved(Pasid),
    /// A reservation was given as `first > last`.
    EmptyRange,
}

impl fmt::Display for PasidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPasidSupport => f.write_str("device has no PASID support"),
            Self::BadWidth(b) => write!(f, "{b} PASID bits asked, at most {MAX_PASID_BITS}"),
            Self::Exhausted { bits } => write!(f, "no free PASID below 2^{bits}"),
            Self::NotAllocated(p) => write!(f, "{p} not allocated (double free?)"),
            Self::AlreadyAllocated(p) => write!(f, "{p} already allocated"),
            Self::Reserved(p) => write!(f, "{p} is reserved"),
            Self::EmptyRange => f.write_str("empty PASID range"),
        }
    }
}

/// The global PASID space: free ranges in a B-tree, lowest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasidAllocator {
    /// Free ranges `start -> end` (exclusive), disjoint and not touching.
    free: BTreeMap<u32, u32>,
    /// Reserved ranges `start -> end` (exclusive), disjoint.
    reserved: BTreeMap<u32, u32>,
    allocated: usize,
}

impl Default for PasidAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl PasidAllocator {
    /// Every PASID free.
    pub fn new() -> Self {
        let mut free = BTreeMap::new();
        free.insert(1, Pasid::MAX + 1);
        Self { free, reserved: BTreeMap::new(), allocated: 0 }
    }

    /// Number of PASIDs allocated.
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    /// Number of free PASIDs.
    pub fn free_count(&self) -> u32 {
        self.free.iter().map(|(s, e)| e - s).sum()
    }

    /// Whether `pasid` is allocated.
    pub fn is_allocated(&self, pasid: Pasid) -> bool {
        !Self::in_ranges(&self.free, pasid.0) && !Self::in_ranges(&self.reserved, pasid.0)
    }

    /// Whether `pasid` is reserved.
    pub fn is_reserved(&self, pasid: Pasid) -> bool {
        Self::in_ranges(&self.reserved, pasid.0)
    }

    /// Takes `first..=last` out of allocation. Every PASID in it must be
    /// free.
    pub fn reserve(&mut self, first: Pasid, last: Pasid) -> Result<(), PasidError> {
        if first > last {
            return Err(PasidError::EmptyRange);
        }
        let (start, end) = (first.0, last.0 + 1);
        match self.free.range(..=start).next_back() {
            Some((&s, &e)) if e >= end => {
                self.take(s, e, start, end);
                self.reserved.insert(start, end);
                Ok(())
            }
            // Some PASID in the range is not free: name the first one.
            found => {
                let first_busy = match found {
                    Some((_, &e)) if e > start => e,
                    _ => start,
                };
                let p = Pasid(first_busy);
                Err(if self.is_reserved(p) {
                    PasidError::Reserved(p)
                } else {
                    PasidError::AlreadyAllocated(p)
                })
            }
        }
    }

    /// Allocates the lowest free PASID below `2^bits`.
    pub fn alloc(&mut self, bits: u8) -> Result<Pasid, PasidError> {
        if bits == 0 {
            return Err(PasidError::NoPasidSupport);
        }
        if bits > MAX_PASID_BITS {
            return Err(PasidError::BadWidth(bits));
        }
        let (&s, &e) = self.free.first_key_value().ok_or(PasidError::Exhausted { bits })?;
        let p = Pasid(s);
        if !p.fits(bits) {
            return Err(PasidError::Exhausted { bits });
        }
        self.take(s, e, s, s + 1);
        self.allocated += 1;
        Ok(p)
    }

    /// Allocates a PASID `dev` can emit.
    pub fn alloc_for(&mut self, dev: &Device) -> Result<Pasid, PasidError> {
        self.alloc(dev.pasid_bits())
    }

    /// Allocates `pasid` itself (a value chosen elsewhere, e.g. by a guest).
    pub fn alloc_at(&mut self, pasid: Pasid) -> Result<(), PasidError> {
        match self.free.range(..=pasid.0).next_back() {
            Some((&s, &e)) if e > pasid.0 => {
                self.take(s, e, pasid.0, pasid.0 + 1);
                self.allocated += 1;
                Ok(())
            }
            _ if self.is_reserved(pasid) => Err(PasidError::Reserved(pasid)),
            _ => Err(PasidError::AlreadyAllocated(pasid)),
        }
    }

    /// Returns `pasid`.
    pub fn free(&mut self, pasid: Pasid) -> Result<(), PasidError> {
        if self.is_reserved(pasid) {
            return Err(PasidError::Reserved(pasid));
        }
        let p = pasid.0;
        let below = self.free.range(..=p).next_back().map(|(&s, &e)| (s, e));
        if below.is_some_and(|(_, e)| e > p) {
            return Err(PasidError::NotAllocated(pasid));
        }
        let (mut start, mut end) = (p, p + 1);
        if let Some((s, e)) = below.filter(|&(_, e)| e == p) {
            self.free.remove(&s);
            start = s;
            debug_assert_eq!(e, p);
        }
        if let Some(e) = self.free.remove(&end) {
            end = e;
        }
        self.free.insert(start, end);
        self.allocated -= 1;
        Ok(())
    }

    /// Removes `[start, end)` from the free range `[s, e)` containing it.
    fn take(&mut self, s: u32, e: u32, start: u32, end: u32) {
        debug_assert!(s <= start && end <= e);
        self.free.remove(&s);
        if s < start {
            self.free.insert(s, start);
        }
        if end < e {
            self.free.insert(end, e);
        }
    }

    fn in_ranges(ranges: &BTreeMap<u32, u32>, p: u32) -> bool {
        ranges.range(..=p).next_back().is_some_and(|(_, &e)| e > p)
    }
}

/// Why a PASID binding was refused. Bindings and hardware are unchanged,
/// except after [`Backend`](Self::Backend), which the call documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindError<E> {
    /// The device cannot tag transactions with a PASID.
    NoPasidSupport(DeviceId),
    /// The PASID is beyond the device's width.
    BeyondDeviceLimit {
        /// The device.
        device: DeviceId,
        /// The PASID.
        pasid: Pasid,
        /// The device's PASID width.
        bits: u8,
    },
    /// The PASID was not allocated from the allocator.
    NotAllocated(Pasid),
    /// The pair is already bound.
    AlreadyBound {
        /// The device.
        device: DeviceId,
        /// The PASID.
        pasid: Pasid,
        /// The domain it is bound to.
        domain: DomainId,
    },
    /// The pair is not bound.
    NotBound {
        /// The device.
        device: DeviceId,
        /// The PASID.
        pasid: Pasid,
    },
    /// The backend failed.
    Backend(E),
}

impl<E: fmt::Debug> fmt::Display for BindError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoPasidSupport(d) => write!(f, "{d} has no PASID support"),
            Self::BeyondDeviceLimit { device, pasid, bits } => {
                write!(f, "{pasid} beyond the {bits} PASID bits of {device}")
            }
            Self::NotAllocated(p) => write!(f, "{p} not allocated"),
            Self::AlreadyBound { device, pasid, domain } => {
                write!(f, "{device} {pasid} already bound to {domain}")
            }
            Self::NotBound { device, pasid } => write!(f, "{device} {pasid} not bound"),
            Self::Backend(e) => write!(f, "backend: {e:?}"),
        }
    }
}

/// Which domain each (device, PASID) pair translates through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PasidBindings {
    map: BTreeMap<(DeviceId, Pasid), DomainId>,
}

impl PasidBindings {
    /// No bindings.
    pub fn new() -> Self {
        Self::default()
    }

    /// The domain `dev`'s requests tagged `pasid` go through.
    pub fn lookup(&self, dev: DeviceId, pasid: Pasid) -> Option<DomainId> {
        self.map.get(&(dev, pasid)).copied()
    }

    /// The bindings of `dev`, by PASID.
    pub fn of_device(&self, dev: DeviceId) -> impl Iterator<Item = (Pasid, DomainId)> + '_ {
        let lo = Pasid(1);
        let hi = Pasid(Pasid::MAX);
        self.map.range((dev, lo)..=(dev, hi)).map(|(&(_, p), &d)| (p, d))
    }

    /// Number of pairs bound to `domain`.
    pub fn bound_to(&self, domain: DomainId) -> usize {
        self.map.values().filter(|&&d| d == domain).count()
    }

    /// Number of devices `pasid` is bound on.
    pub fn users_of(&self, pasid: Pasid) -> usize {
        self.map.keys().filter(|(_, p)| *p == pasid).count()
    }

    /// Number of bindings.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Checks that `dev` may bind `pasid`: it supports PASIDs, `pasid` fits
    /// its width, is allocated in `pasids`, and the pair is not bound.
    pub fn check_bind<E>(
        &self,
        pasids: &PasidAllocator,
        dev: &Device,
        pasid: Pasid,
    ) -> Result<(), BindError<E>> {
        let bits = dev.pasid_bits();
        if bits == 0 {
            return Err(BindError::NoPasidSupport(dev.id()));
        }
        if !pasid.fits(bits) {
            return Err(BindError::BeyondDeviceLimit { device: dev.id(), pasid, bits });
        }
        if !pasids.is_allocated(pasid) {
            return Err(BindError::NotAllocated(pasid));
        }
        if let Some(domain) = self.lookup(dev.id(), pasid) {
            return Err(BindError::AlreadyBound { device: dev.id(), pasid, domain });
        }
        Ok(())
    }

    /// Binds (`dev`, `pasid`) to `domain` whose hardware view is `hw`: the
    /// checks of [`check_bind`](Self::check_bind), then the backend's
    /// [`attach_pasid`](IommuBackend::attach_pasid). If the backend fails,
    /// the PASID entry is blocked again (best effort) and nothing is
    /// recorded.
    pub fn bind<B: IommuBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        pasids: &PasidAllocator,
        dev: &Device,
        pasid: Pasid,
        domain: DomainId,
        hw: &DomainHw<B::Config>,
    ) -> Result<(), BindError<B::Error>> {
        self.check_bind(pasids, dev, pasid)?;
        if let Err(e) = backend.attach_pasid(dev, pasid, hw) {
            let _ = backend.block_pasid(dev, pasid);
            return Err(BindError::Backend(e));
        }
        self.map.insert((dev.id(), pasid), domain);
        Ok(())
    }

    /// Unbinds (`dev`, `pasid`): the backend blocks the PASID entry, then
    /// the binding is dropped. If the backend fails the binding stays
    /// recorded, so that a retry blocks it.
    pub fn unbind<B: IommuBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        dev: &Device,
        pasid: Pasid,
    ) -> Result<DomainId, BindError<B::Error>> {
        let Some(domain) = self.lookup(dev.id(), pasid) else {
            return Err(BindError::NotBound { device: dev.id(), pasid });
        };
        backend.block_pasid(dev, pasid).map_err(BindError::Backend)?;
        self.map.remove(&(dev.id(), pasid));
        Ok(domain)
    }

    /// Unbinds every PASID of `dev`, stopping at the first backend error
    /// (the bindings not yet blocked stay recorded).
    pub fn unbind_device<B: IommuBackend + ?Sized>(
        &mut self,
        backend: &mut B,
        dev: &Device,
    ) -> Result<(), BindError<B::Error>> {
        let bound: alloc::vec::Vec<Pasid> = self.of_device(dev.id()).map(|(p, _)| p).collect();
        for pasid in bound {
            self.unbind(backend, dev, pasid)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fake::{Event, FakeBackend, FakeConfig, FakeError};
    use crate::domain::DomainTag;
    use crate::group::{Bdf, HwId, IommuUnit};
    use alloc::collections::BTreeSet;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    fn p(v: u32) -> Pasid {
        Pasid::new(v).unwrap()
    }

    fn dev(bits: u8) -> Device {
        let bdf = Bdf::new(0, 1, 0, 0).unwrap();
        Device::new(DeviceId::Pci(bdf), [HwId::pci(IommuUnit(0), bdf)]).with_pasid_bits(bits)
    }

    #[test]
    fn pasid_values() {
        assert_eq!(Pasid::new(0), None);
        assert_eq!(Pasid::new(1 << 20), None);
        assert_eq!(Pasid::new(0xf_ffff).map(Pasid::get), Some(0xf_ffff));
        assert!(p(3).fits(2));
        assert!(!p(4).fits(2));
        assert!(p(0xf_ffff).fits(20));
        assert!(!p(1).fits(0));
    }

    #[test]
    fn allocation_is_lowest_first_and_never_zero() {
        let mut a = PasidAllocator::new();
        assert_eq!(a.free_count(), Pasid::MAX);
        assert_eq!(a.alloc(20), Ok(p(1)));
        assert_eq!(a.alloc(20), Ok(p(2)));
        a.free(p(1)).unwrap();
        assert_eq!(a.alloc(20), Ok(p(1)));
        assert_eq!(a.allocated(), 2);
    }

    #[test]
    fn device_width_is_respected() {
        let mut a = PasidAllocator::new();
        // 2 bits: PASIDs 1, 2, 3.
        for v in 1..=3 {
            assert_eq!(a.alloc_for(&dev(2)), Ok(p(v)));
        }
        let before = a.clone();
        assert_eq!(a.alloc_for(&dev(2)), Err(PasidError::Exhausted { bits: 2 }));
        assert_eq!(a.alloc_for(&dev(0)), Err(PasidError::NoPasidSupport));
        assert_eq!(a.alloc(21), Err(PasidError::BadWidth(21)));
        assert_eq!(a, before);
        // A wider device still gets one.
        assert_eq!(a.alloc_for(&dev(3)), Ok(p(4)));
    }

    #[test]
    fn double_free_and_foreign_free_are_refused() {
        let mut a = PasidAllocator::new();
        let x = a.alloc(20).unwrap();
        a.free(x).unwrap();
        let before = a.clone();
        assert_eq!(a.free(x), Err(PasidError::NotAllocated(x)));
        assert_eq!(a.free(p(77)), Err(PasidError::NotAllocated(p(77))));
        assert_eq!(a, before);
    }

    #[test]
    fn reserved_ranges_are_skipped_and_protected() {
        let mut a = PasidAllocator::new();
        a.reserve(p(1), p(3)).unwrap();
        assert_eq!(a.alloc(20), Ok(p(4)));
        let before = a.clone();
        assert_eq!(a.alloc(2), Err(PasidError::Exhausted { bits: 2 }));
        assert_eq!(a.free(p(2)), Err(PasidError::Reserved(p(2))));
        assert_eq!(a.alloc_at(p(3)), Err(PasidError::Reserved(p(3))));
        assert_eq!(a.alloc_at(p(4)), Err(PasidError::AlreadyAllocated(p(4))));
        assert_eq!(a.reserve(p(3), p(5)), Err(PasidError::Reserved(p(3))));
        assert_eq!(a.reserve(p(4), p(5)), Err(PasidError::AlreadyAllocated(p(4))));
        assert_eq!(a.reserve(p(9), p(8)), Err(PasidError::EmptyRange));
        assert_eq!(a, before);
        assert!(a.is_reserved(p(1)) && !a.is_allocated(p(1)));
        assert_eq!(a.alloc_at(p(0xf_ffff)), Ok(()));
        assert_eq!(a.free_count(), Pasid::MAX - 5);
    }

    #[test]
    fn binding_checks_width_allocation_and_duplicates() {
        let mut be = FakeBackend::new();
        let mut a = PasidAllocator::new();
        let mut b = PasidBindings::new();
        let hw = DomainHw { tag: DomainTag(3), config: FakeConfig { ias: 40 } };
        let d = dev(4);
        let x = a.alloc_for(&d).unwrap();
        a.alloc_at(p(16)).unwrap();

        assert_eq!(b.bind(&mut be, &a, &dev(0), x, DomainId(1), &hw), Err(BindError::NoPasidSupport(d.id())));
        assert_eq!(
            b.bind(&mut be, &a, &d, p(16), DomainId(1), &hw),
            Err(BindError::BeyondDeviceLimit { device: d.id(), pasid: p(16), bits: 4 })
        );
        assert_eq!(b.bind(&mut be, &a, &d, p(9), DomainId(1), &hw), Err(BindError::NotAllocated(p(9))));
        assert!(b.is_empty() && be.events().is_empty());

        b.bind(&mut be, &a, &d, x, DomainId(1), &hw).unwrap();
        assert_eq!(b.lookup(d.id(), x), Some(DomainId(1)));
        assert_eq!(
            b.bind(&mut be, &a, &d, x, DomainId(2), &hw),
            Err(BindError::AlreadyBound { device: d.id(), pasid: x, domain: DomainId(1) })
        );
        assert_eq!(be.events(), [Event::AttachPasid { dev: d.id(), pasid: x, tag: DomainTag(3) }]);
        assert_eq!(b.bound_to(DomainId(1)), 1);
        assert_eq!(b.users_of(x), 1);

        be.clear();
        assert_eq!(b.unbind(&mut be, &d, x), Ok(DomainId(1)));
        assert_eq!(b.unbind(&mut be, &d, x), Err(BindError::NotBound { device: d.id(), pasid: x }));
        assert_eq!(be.events(), [Event::BlockPasid { dev: d.id(), pasid: x }]);
    }

    #[test]
    fn backend_failures_keep_bindings_on_the_safe_side() {
        let mut be = FakeBackend::new();
        let mut a = PasidAllocator::new();
        let mut b = PasidBindings::new();
        let hw = DomainHw { tag: DomainTag(3), config: FakeConfig { ias: 40 } };
        let d = dev(8);
        let x = a.alloc_for(&d).unwrap();
        // A failed attach records nothing and re-blocks the entry.
        be.fail_at = Some(0);
        be.fail_only = Some("attach_pasid");
        assert_eq!(
            b.bind(&mut be, &a, &d, x, DomainId(1), &hw),
            Err(BindError::Backend(FakeError("attach_pasid")))
        );
        assert!(b.is_empty());
        assert_eq!(be.events(), [Event::BlockPasid { dev: d.id(), pasid: x }]);
        // A failed block keeps the binding, so a retry blocks it.
        b.bind(&mut be, &a, &d, x, DomainId(1), &hw).unwrap();
        be.fail_at = Some(0);
        be.fail_only = Some("block_pasid");
        assert_eq!(b.unbind(&mut be, &d, x), Err(BindError::Backend(FakeError("block_pasid"))));
        assert_eq!(b.lookup(d.id(), x), Some(DomainId(1)));
        let y = a.alloc_for(&d).unwrap();
        b.bind(&mut be, &a, &d, y, DomainId(2), &hw).unwrap();
        b.unbind_device(&mut be, &d).unwrap();
        assert!(b.is_empty());
        assert!(be.pasid_hw.is_empty());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Alloc(u8),
        AllocAt(u32),
        Free(u32),
        Reserve(u32, u32),
    }

    fn op() -> impl Strategy<Value = Op> {
        // A small window at the bottom so that widths and collisions matter,
        // plus the top of the space.
        let value = prop_oneof![1u32..40, (Pasid::MAX - 4)..=Pasid::MAX];
        prop_oneof![
            4 => (0u8..=21).prop_map(Op::Alloc),
            2 => value.clone().prop_map(Op::AllocAt),
            4 => value.clone().prop_map(Op::Free),
            1 => (value, 0u32..4).prop_map(|(s, n)| Op::Reserve(s, (s + n).min(Pasid::MAX))),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, ..ProptestConfig::default() })]
        /// Random sequences against a set-based model: every result, every
        /// error, and the allocator unchanged after each error.
        #[test]
        fn allocator_matches_a_set_model(ops in proptest::collection::vec(op(), 1..80)) {
            let mut a = PasidAllocator::new();
            let mut allocated: BTreeSet<u32> = BTreeSet::new();
            let mut reserved: BTreeSet<u32> = BTreeSet::new();
            let busy = |allocated: &BTreeSet<u32>, reserved: &BTreeSet<u32>, v: u32| {
                allocated.contains(&v) || reserved.contains(&v)
            };
            for op in ops {
                let before = a.clone();
                let ok = match op {
                    Op::Alloc(bits) => {
                        let expect = if bits == 0 {
                            Err(PasidError::NoPasidSupport)
                        } else if bits > 20 {
                            Err(PasidError::BadWidth(bits))
                        } else {
                            let limit = if bits == 20 { Pasid::MAX + 1 } else { 1 << bits };
                            (1..limit)
                                .find(|&v| !busy(&allocated, &reserved, v))
                                .map(Pasid)
                                .ok_or(PasidError::Exhausted { bits })
                        };
                        let got = a.alloc(bits);
                        prop_assert_eq!(got, expect);
                        if let Ok(x) = got {
                            allocated.insert(x.0);
                        }
                        got.is_ok()
                    }
                    Op::AllocAt(v) => {
                        let expect = if reserved.contains(&v) {
                            Err(PasidError::Reserved(Pasid(v)))
                        } else if allocated.contains(&v) {
                            Err(PasidError::AlreadyAllocated(Pasid(v)))
                        } else {
                            Ok(())
                        };
                        let got = a.alloc_at(Pasid(v));
                        prop_assert_eq!(got, expect);
                        if got.is_ok() {
                            allocated.insert(v);
                        }
                        got.is_ok()
                    }
                    Op::Free(v) => {
                        let expect = if reserved.contains(&v) {
                            Err(PasidError::Reserved(Pasid(v)))
                        } else if !allocated.contains(&v) {
                            Err(PasidError::NotAllocated(Pasid(v)))
                        } else {
                            Ok(())
                        };
                        let got = a.free(Pasid(v));
                        prop_assert_eq!(got, expect);
                        if got.is_ok() {
                            allocated.remove(&v);
                        }
                        got.is_ok()
                    }
                    Op::Reserve(s, e) => {
                        let expect = match (s..=e).find(|&v| busy(&allocated, &reserved, v)) {
                            Some(v) if reserved.contains(&v) => Err(PasidError::Reserved(Pasid(v))),
                            Some(v) => Err(PasidError::AlreadyAllocated(Pasid(v))),
                            None => Ok(()),
                        };
                        let got = a.reserve(Pasid(s), Pasid(e));
                        prop_assert_eq!(got, expect);
                        if got.is_ok() {
                            reserved.extend(s..=e);
                        }
                        got.is_ok()
                    }
                };
                if !ok {
                    prop_assert_eq!(&a, &before);
                }
                prop_assert_eq!(a.allocated(), allocated.len());
                prop_assert_eq!(a.free_count() as usize, Pasid::MAX as usize - allocated.len() - reserved.len());
                // Free ranges stay disjoint, non-touching and sorted.
                let ranges: Vec<(u32, u32)> = a.free.iter().map(|(&s, &e)| (s, e)).collect();
                prop_assert!(ranges.iter().all(|(s, e)| s < e));
                prop_assert!(ranges.windows(2).all(|w| w[0].1 < w[1].0));
                for v in allocated.iter().chain(&reserved) {
                    prop_assert!(!PasidAllocator::in_ranges(&a.free, *v));
                }
            }
        }
    }
}
