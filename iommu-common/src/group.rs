//! Devices and IOMMU groups: the unit of isolation.
//!
//! An IOMMU tells devices apart only by the requester identity on their
//! transactions: the SMMUv3 StreamID, the VT-d source-id, the AMD-Vi
//! DeviceID (here all a [`HwId`]). Devices it cannot tell apart cannot be
//! given to different partitions, so they form one [`Group`], which is
//! assigned whole or not at all (Linux's `iommu_group`, VFIO's unit of
//! ownership). Devices end up in one group when:
//!
//! - they share a hardware ID (two platform devices behind one StreamID, or a
//!   device and the requester ID another device aliases to);
//! - one issues DMA under another's ID: PCI DMA aliases and quirks
//!   ([`GroupBuilder::dma_alias`]), conventional PCI devices behind a
//!   PCIe-to-PCI bridge, which owns their transactions
//!   ([`GroupBuilder::behind_pci_bridge`]);
//! - they can reach each other without the IOMMU seeing it: functions of a
//!   multifunction device without ACS ([`GroupBuilder::multifunction_without_acs`]),
//!   or any pair the platform says cannot be isolated
//!   ([`GroupBuilder::cannot_isolate`], e.g. below a switch without ACS).
//!
//! [`GroupBuilder`] takes these facts and computes the groups with a
//! union-find. The result, a [`Topology`], does not depend on the order of
//! the input: groups are numbered by their smallest [`DeviceId`].

#![forbid(unsafe_code)]

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::vec::Vec;
use core::fmt;

/// A PCI requester: segment (domain), bus, device and function.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Bdf {
    segment: u16,
    bus: u8,
    device: u8,
    function: u8,
}

impl Bdf {
    /// A BDF, or `None` if `device > 31` or `function > 7`.
    pub const fn new(segment: u16, bus: u8, device: u8, function: u8) -> Option<Self> {
        if device > 31 || function > 7 {
            None
        } else {
            Some(Self { segment, bus, device, function })
        }
    }

    /// The BDF whose 16-bit requester ID (`bus << 8 | device << 3 | function`)
    /// is `rid`, on `segment`.
    pub const fn from_rid(segment: u16, rid: u16) -> Self {
        Self { segment, bus: (rid >> 8) as u8, device: ((rid >> 3) & 0x1f) as u8, function: (rid & 7) as u8 }
    }

    /// The 16-bit PCIe requester ID: what VT-d calls the source-id and AMD-Vi
    /// the DeviceID, and what an SMMU's StreamID is usually derived from.
    pub const fn rid(self) -> u16 {
        (self.bus as u16) << 8 | (self.device as u16) << 3 | self.function as u16
    }

    /// The PCI segment (domain).
    pub const fn segment(self) -> u16 {
        self.segment
    }

    /// The bus number.
    pub const fn bus(self) -> u8 {
        self.bus
    }

    /// The device (slot) number, 0..=31.
    pub const fn device(self) -> u8 {
        self.device
    }

    /// The function number, 0..=7.
    pub const fn function(self) -> u8 {
        self.function
    }
}

impl fmt::Debug for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{}", self.segment, self.bus, self.device, self.function)
    }
}

/// A device as the platform names it, independent of the IOMMU in front of
/// it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceId {
    /// A PCI function.
    Pci(Bdf),
    /// A non-PCI device, by a number unique in the system that the platform
    /// description assigns (device-tree node, ACPI IORT named component).
    Platform(u32),
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pci(bdf) => write!(f, "pci {bdf}"),
            Self::Platform(n) => write!(f, "platform device {n}"),
        }
    }
}

/// One IOMMU instance: an SMMU, a VT-d DRHD unit or an AMD-Vi IVHD. Hardware
/// IDs are only unique per instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IommuUnit(pub u16);

/// The requester identity an IOMMU sees on a transaction: an SMMUv3
/// StreamID (up to 32 bits), a VT-d source-id or an AMD-Vi DeviceID (16 bits,
/// the PCIe requester ID), on one [`IommuUnit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HwId {
    /// The IOMMU that sees it.
    pub unit: IommuUnit,
    /// The ID itself.
    pub id: u32,
}

impl HwId {
    /// The ID `id` on `unit`.
    pub const fn new(unit: IommuUnit, id: u32) -> Self {
        Self { unit, id }
    }

    /// The ID of a PCI requester seen with its own requester ID (VT-d,
    /// AMD-Vi; SMMUs whose `iommu-map` is the identity).
    pub const fn pci(unit: IommuUnit, bdf: Bdf) -> Self {
        Self { unit, id: bdf.rid() as u32 }
    }
}

impl fmt::Display for HwId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "iommu {} id {:#x}", self.unit.0, self.id)
    }
}

/// The largest PASID width the architectures allow (PCIe, SMMUv3
/// `SSIDSIZE`, VT-d, AMD-Vi): 20 bits.
pub const MAX_PASID_BITS: u8 = 20;

/// A device and every hardware ID its transactions may carry. Attaching the
/// device programs all of them; blocking it blocks all of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Device {
    id: DeviceId,
    hw_ids: Vec<HwId>,
    pasid_bits: u8,
}

impl Device {
    /// A device emitting `hw_ids` (order and repeats do not matter), without
    /// PASID support.
    pub fn new(id: DeviceId, hw_ids: impl IntoIterator<Item = HwId>) -> Self {
        let mut hw_ids: Vec<HwId> = hw_ids.into_iter().collect();
        hw_ids.sort_unstable();
        hw_ids.dedup();
        Self { id, hw_ids, pasid_bits: 0 }
    }

    /// The same device supporting PASIDs below `1 << bits` (PCIe PASID
    /// capability "Max PASID Width"; 0: no PASID support). At most
    /// [`MAX_PASID_BITS`]; [`GroupBuilder::add_device`] refuses more.
    pub fn with_pasid_bits(self, bits: u8) -> Self {
        Self { pasid_bits: bits, ..self }
    }

    /// The platform's name for the device.
    pub fn id(&self) -> DeviceId {
        self.id
    }

    /// The hardware IDs, sorted, without repeats.
    pub fn hw_ids(&self) -> &[HwId] {
        &self.hw_ids
    }

    /// PASID width in bits; 0 when the device cannot tag transactions with a
    /// PASID.
    pub fn pasid_bits(&self) -> u8 {
        self.pasid_bits
    }

    fn add_hw_ids(&mut self, ids: &[HwId]) {
        self.hw_ids.extend_from_slice(ids);
        self.hw_ids.sort_unstable();
        self.hw_ids.dedup();
    }
}

/// The number of an IOMMU group in a [`Topology`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupId(pub u32);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "group {}", self.0)
    }
}

/// Devices the IOMMU cannot isolate from each other.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    id: GroupId,
    devices: Vec<Device>,
}

impl Group {
    /// The group's number.
    pub fn id(&self) -> GroupId {
        self.id
    }

    /// Its devices, sorted by [`DeviceId`]; never empty.
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Whether `dev` is in the group.
    pub fn contains(&self, dev: DeviceId) -> bool {
        self.devices.binary_search_by_key(&dev, Device::id).is_ok()
    }
}

/// Why a topology input was refused. The builder is unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupError {
    /// The device was already added.
    DuplicateDevice(DeviceId),
    /// A fact names a device that was not added (first).
    UnknownDevice(DeviceId),
    /// The device has no hardware ID: the IOMMU could not block it, so it
    /// cannot be part of the model.
    NoHwId(DeviceId),
    /// The device claims more PASID bits than [`MAX_PASID_BITS`].
    PasidBitsTooLarge {
        /// The device.
        device: DeviceId,
        /// Its claimed width.
        bits: u8,
    },
}

impl fmt::Display for GroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateDevice(d) => write!(f, "{d} added twice"),
            Self::UnknownDevice(d) => write!(f, "{d} not in the topology"),
            Self::NoHwId(d) => write!(f, "{d} has no IOMMU-visible ID"),
            Self::PasidBitsTooLarge { device, bits } => {
                write!(f, "{device} claims {bits} PASID bits, more than {MAX_PASID_BITS}")
            }
        }
    }
}

/// Collects devices and isolation facts, then computes the groups.
///
/// Add devices first ([`add_device`](Self::add_device)); facts name devices
/// already added. [`build`](Self::build) never fails.
#[derive(Clone, Debug, Default)]
pub struct GroupBuilder {
    devices: BTreeMap<DeviceId, Device>,
    /// Pairs that cannot be isolated.
    links: Vec<(DeviceId, DeviceId)>,
    /// PCI slots (segment, bus, device) whose functions cannot be isolated.
    non_acs_slots: BTreeSet<(u16, u8, u8)>,
}

impl GroupBuilder {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a device.
    pub fn add_device(&mut self, dev: Device) -> Result<&mut Self, GroupError> {
        if self.devices.contains_key(&dev.id) {
            return Err(GroupError::DuplicateDevice(dev.id));
        }
        if dev.hw_ids.is_empty() {
            return Err(GroupError::NoHwId(dev.id));
        }
        if dev.pasid_bits > MAX_PASID_BITS {
            return Err(GroupError::PasidBitsTooLarge { device: dev.id, bits: dev.pasid_bits });
        }
        self.devices.insert(dev.id, dev);
        Ok(self)
    }

    /// `device` may also issue DMA as `alias` (PCI DMA alias quirks, phantom
    /// functions): the alias is programmed with the device, and any device
    /// emitting `alias` joins its group.
    pub fn dma_alias(&mut self, device: DeviceId, alias: HwId) -> Result<&mut Self, GroupError> {
        self.devices.get_mut(&device).ok_or(GroupError::UnknownDevice(device))?.add_hw_ids(&[alias]);
        Ok(self)
    }

    /// `devices` are conventional PCI devices behind the PCIe-to-PCI(-X)
    /// bridge `bridge`, which takes ownership of their transactions: the
    /// IOMMU sees them with the bridge's IDs (add the bridge with the IDs it
    /// emits, including a secondary-bus alias for PCI-X). All of them share
    /// the bridge's group, and each is programmed with the bridge's IDs too.
    pub fn behind_pci_bridge(
        &mut self,
        bridge: DeviceId,
        devices: &[DeviceId],
    ) -> Result<&mut Self, GroupError> {
        let bridge_ids = self.devices.get(&bridge).ok_or(GroupError::UnknownDevice(bridge))?.hw_ids.clone();
        if let Some(&d) = devices.iter().find(|d| !self.devices.contains_key(d)) {
            return Err(GroupError::UnknownDevice(d));
        }
        for d in devices {
            if let Some(dev) = self.devices.get_mut(d) {
                dev.add_hw_ids(&bridge_ids);
            }
            self.links.push((bridge, *d));
        }
        Ok(self)
    }

    /// The functions in PCI slot `segment:bus:device` can talk to each other
    /// without the IOMMU seeing it (a multifunction device without ACS): all
    /// of them, including ones added later, share a group.
    pub fn multifunction_without_acs(&mut self, segment: u16, bus: u8, device: u8) -> &mut Self {
        self.non_acs_slots.insert((segment, bus, device));
        self
    }

    /// `a` and `b` cannot be isolated from each other for a reason the
    /// platform knows (peer-to-peer below a switch without ACS, a shared
    /// DMA engine).
    pub fn cannot_isolate(&mut self, a: DeviceId, b: DeviceId) -> Result<&mut Self, GroupError> {
        for d in [a, b] {
            if !self.devices.contains_key(&d) {
                return Err(GroupError::UnknownDevice(d));
            }
        }
        self.links.push((a, b));
        Ok(self)
    }

    /// Computes the groups: the connected components of "shares a hardware
    /// ID", the links and the non-ACS slots, numbered in the order of their
    /// smallest device.
    pub fn build(&self) -> Topology {
        let ids: Vec<DeviceId> = self.devices.keys().copied().collect();
        let index = |d: &DeviceId| ids.binary_search(d).expect("facts only name added devices");
        let mut uf = UnionFind::new(ids.len());

        let mut by_hw: BTreeMap<HwId, usize> = BTreeMap::new();
        let mut by_slot: BTreeMap<(u16, u8, u8), usize> = BTreeMap::new();
        for (i, dev) in self.devices.values().enumerate() {
            for hw in &dev.hw_ids {
                let first = *by_hw.entry(*hw).or_insert(i);
                uf.union(first, i);
            }
            if let DeviceId::Pci(bdf) = dev.id {
                let slot = (bdf.segment, bdf.bus, bdf.device);
                if self.non_acs_slots.contains(&slot) {
                    let first = *by_slot.entry(slot).or_insert(i);
                    uf.union(first, i);
                }
            }
        }
        for (a, b) in &self.links {
            uf.union(index(a), index(b));
        }

        // Devices are visited in DeviceId order, so a component's first
        // device is its smallest and groups come out numbered by it.
        let mut group_of_root: BTreeMap<usize, GroupId> = BTreeMap::new();
        let mut groups: Vec<Group> = Vec::new();
        let mut index_of = BTreeMap::new();
        for (i, dev) in self.devices.values().enumerate() {
            let root = uf.find(i);
            let gid = *group_of_root.entry(root).or_insert_with(|| {
                let gid = GroupId(groups.len() as u32);
                groups.push(Group { id: gid, devices: Vec::new() });
                gid
            });
            index_of.insert(dev.id, gid);
            groups[gid.0 as usize].devices.push(dev.clone());
        }
        Topology { groups, group_of: index_of }
    }
}

/// Union-find over `0..n` with path halving and union by size.
struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        Self { parent: (0..n).collect(), size: alloc::vec![1; n] }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        if self.size[a] < self.size[b] {
            core::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

/// The devices of a system and their groups, as [`GroupBuilder::build`]
/// computed them. Immutable: the assignment model refers to it by
/// [`GroupId`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topology {
    groups: Vec<Group>,
    group_of: BTreeMap<DeviceId, GroupId>,
}

impl Topology {
    /// All groups, in [`GroupId`] order.
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group numbered `id`.
    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(id.0 as usize)
    }

    /// The group of `dev`.
    pub fn group_of(&self, dev: DeviceId) -> Option<GroupId> {
        self.group_of.get(&dev).copied()
    }

    /// The device named `dev`.
    pub fn device(&self, dev: DeviceId) -> Option<&Device> {
        let group = self.group(self.group_of(dev)?)?;
        let i = group.devices.binary_search_by_key(&dev, Device::id).ok()?;
        Some(&group.devices[i])
    }

    /// Number of devices.
    pub fn device_count(&self) -> usize {
        self.group_of.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;
    use proptest::prelude::*;

    const U0: IommuUnit = IommuUnit(0);

    fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
        Bdf::new(0, bus, dev, func).unwrap()
    }

    fn pci(bus: u8, dev: u8, func: u8) -> DeviceId {
        DeviceId::Pci(bdf(bus, dev, func))
    }

    fn pci_dev(bus: u8, dev: u8, func: u8) -> Device {
        Device::new(pci(bus, dev, func), [HwId::pci(U0, bdf(bus, dev, func))])
    }

    fn members(t: &Topology, d: DeviceId) -> Vec<DeviceId> {
        t.group(t.group_of(d).unwrap()).unwrap().devices().iter().map(Device::id).collect()
    }

    #[test]
    fn bdf_requester_id_layout() {
        // PCIe requester ID: Bus[15:8], Device[7:3], Function[2:0].
        let b = Bdf::new(1, 0x3a, 0x1f, 5).unwrap();
        assert_eq!(b.rid(), 0x3a00 | 0x1f << 3 | 5);
        assert_eq!(Bdf::from_rid(1, 0x3afd), b);
        assert_eq!(format!("{b}"), "0001:3a:1f.5");
        assert_eq!(Bdf::new(0, 0, 32, 0), None);
        assert_eq!(Bdf::new(0, 0, 0, 8), None);
    }

    #[test]
    fn isolated_devices_get_their_own_groups() {
        let mut b = GroupBuilder::new();
        b.add_device(pci_dev(0, 2, 0)).unwrap().add_device(pci_dev(0, 1, 0)).unwrap();
        let t = b.build();
        assert_eq!(t.groups().len(), 2);
        // Numbered by smallest device, not by insertion order.
        assert_eq!(members(&t, pci(0, 1, 0)), vec![pci(0, 1, 0)]);
        assert_eq!(t.group_of(pci(0, 1, 0)), Some(GroupId(0)));
        assert_eq!(t.group_of(pci(0, 2, 0)), Some(GroupId(1)));
        assert_eq!(t.device_count(), 2);
    }

    #[test]
    fn shared_hardware_id_groups_devices() {
        let mut b = GroupBuilder::new();
        let sid = HwId::new(U0, 0x40);
        b.add_device(Device::new(DeviceId::Platform(1), [sid])).unwrap();
        b.add_device(Device::new(DeviceId::Platform(2), [sid, HwId::new(U0, 0x41)])).unwrap();
        // Same number on another SMMU: a different stream.
        b.add_device(Device::new(DeviceId::Platform(3), [HwId::new(IommuUnit(1), 0x40)])).unwrap();
        let t = b.build();
        assert_eq!(members(&t, DeviceId::Platform(2)), vec![DeviceId::Platform(1), DeviceId::Platform(2)]);
        assert_eq!(members(&t, DeviceId::Platform(3)), vec![DeviceId::Platform(3)]);
    }

    #[test]
    fn dma_alias_joins_the_aliased_device_and_is_programmed() {
        let mut b = GroupBuilder::new();
        b.add_device(pci_dev(1, 0, 0)).unwrap().add_device(pci_dev(1, 0, 1)).unwrap();
        b.add_device(pci_dev(1, 1, 0)).unwrap();
        // 01:00.1 issues DMA as 01:00.0 (a phantom-function quirk).
        b.dma_alias(pci(1, 0, 1), HwId::pci(U0, bdf(1, 0, 0))).unwrap();
        let t = b.build();
        assert_eq!(members(&t, pci(1, 0, 0)), vec![pci(1, 0, 0), pci(1, 0, 1)]);
        assert_eq!(members(&t, pci(1, 1, 0)), vec![pci(1, 1, 0)]);
        assert_eq!(
            t.device(pci(1, 0, 1)).unwrap().hw_ids(),
            &[HwId::pci(U0, bdf(1, 0, 0)), HwId::pci(U0, bdf(1, 0, 1))]
        );
        // An alias to an ID nobody else uses groups nothing.
        let mut b = GroupBuilder::new();
        b.add_device(pci_dev(1, 0, 0)).unwrap().add_device(pci_dev(1, 1, 0)).unwrap();
        b.dma_alias(pci(1, 0, 0), HwId::new(U0, 0x9999)).unwrap();
        assert_eq!(b.build().groups().len(), 2);
    }

    #[test]
    fn devices_behind_a_pcie_to_pci_bridge_share_its_group() {
        let mut b = GroupBuilder::new();
        b.add_device(pci_dev(0, 4, 0)).unwrap(); // the bridge, secondary bus 5
        b.add_device(pci_dev(5, 1, 0)).unwrap().add_device(pci_dev(5, 2, 0)).unwrap();
        b.add_device(pci_dev(0, 3, 0)).unwrap();
        b.behind_pci_bridge(pci(0, 4, 0), &[pci(5, 1, 0), pci(5, 2, 0)]).unwrap();
        let t = b.build();
        assert_eq!(members(&t, pci(5, 2, 0)), vec![pci(0, 4, 0), pci(5, 1, 0), pci(5, 2, 0)]);
        assert_eq!(members(&t, pci(0, 3, 0)), vec![pci(0, 3, 0)]);
        // The IOMMU sees them as the bridge: its ID is programmed with them.
        assert!(t.device(pci(5, 1, 0)).unwrap().hw_ids().contains(&HwId::pci(U0, bdf(0, 4, 0))));
    }

    #[test]
    fn non_acs_multifunction_groups_the_slot_only_when_told() {
        let mut b = GroupBuilder::new();
        for f in 0..3 {
            b.add_device(pci_dev(2, 0, f)).unwrap();
        }
        b.add_device(pci_dev(2, 1, 0)).unwrap();
        assert_eq!(b.build().groups().len(), 4);
        b.multifunction_without_acs(0, 2, 0);
        let t = b.build();
        assert_eq!(t.groups().len(), 2);
        assert_eq!(members(&t, pci(2, 0, 2)), vec![pci(2, 0, 0), pci(2, 0, 1), pci(2, 0, 2)]);
        // Same slot number on another segment is another slot.
        let mut b2 = b.clone();
        let other = Bdf::new(1, 2, 0, 3).unwrap();
        b2.add_device(Device::new(DeviceId::Pci(other), [HwId::pci(IommuUnit(1), other)])).unwrap();
        assert_eq!(b2.build().groups().len(), 3);
    }

    #[test]
    fn cannot_isolate_links_devices_transitively() {
        let mut b = GroupBuilder::new();
        for d in 1..=4 {
            b.add_device(pci_dev(3, d, 0)).unwrap();
        }
        b.cannot_isolate(pci(3, 1, 0), pci(3, 3, 0)).unwrap();
        b.cannot_isolate(pci(3, 3, 0), pci(3, 4, 0)).unwrap();
        let t = b.build();
        assert_eq!(members(&t, pci(3, 4, 0)), vec![pci(3, 1, 0), pci(3, 3, 0), pci(3, 4, 0)]);
        assert_eq!(members(&t, pci(3, 2, 0)), vec![pci(3, 2, 0)]);
    }

    #[test]
    fn errors_leave_the_builder_unchanged() {
        let mut b = GroupBuilder::new();
        b.add_device(pci_dev(0, 1, 0)).unwrap();
        let before = b.build();

        let dup = Device::new(pci(0, 1, 0), [HwId::new(U0, 7)]);
        assert_eq!(b.add_device(dup).err(), Some(GroupError::DuplicateDevice(pci(0, 1, 0))));
        assert_eq!(b.add_device(Device::new(pci(0, 2, 0), [])).err(), Some(GroupError::NoHwId(pci(0, 2, 0))));
        assert_eq!(
            b.add_device(pci_dev(0, 2, 0).with_pasid_bits(21)).err(),
            Some(GroupError::PasidBitsTooLarge { device: pci(0, 2, 0), bits: 21 })
        );
        assert_eq!(
            b.dma_alias(pci(0, 9, 0), HwId::new(U0, 1)).err(),
            Some(GroupError::UnknownDevice(pci(0, 9, 0)))
        );
        assert_eq!(
            b.cannot_isolate(pci(0, 1, 0), pci(0, 9, 0)).err(),
            Some(GroupError::UnknownDevice(pci(0, 9, 0)))
        );
        assert_eq!(
            b.behind_pci_bridge(pci(0, 1, 0), &[pci(0, 9, 0)]).err(),
            Some(GroupError::UnknownDevice(pci(0, 9, 0)))
        );
        assert_eq!(
            b.behind_pci_bridge(pci(0, 9, 0), &[pci(0, 1, 0)]).err(),
            Some(GroupError::UnknownDevice(pci(0, 9, 0)))
        );
        assert_eq!(b.build(), before);
        assert_eq!(b.links.len(), 0);
    }

    /// Facts for the property test, over devices numbered 0..n.
    #[derive(Clone, Debug)]
    enum Fact {
        Alias(usize, u32),
        Link(usize, usize),
        Slot(u8),
    }

    fn device_n(i: usize) -> DeviceId {
        // Spread over 4 slots of bus 0 so that slot facts group something.
        DeviceId::Pci(Bdf::new(0, 0, (i / 4) as u8, (i % 4) as u8).unwrap())
    }

    fn facts() -> impl Strategy<Value = (Vec<Vec<u32>>, Vec<Fact>)> {
        let n = 1usize..12;
        n.prop_flat_map(|n| {
            let ids = proptest::collection::vec(proptest::collection::vec(0u32..16, 1..3), n);
            let fact = prop_oneof![
                (0..n, 0u32..16).prop_map(|(d, a)| Fact::Alias(d, a)),
                (0..n, 0..n).prop_map(|(a, b)| Fact::Link(a, b)),
                (0u8..3).prop_map(Fact::Slot),
            ];
            (ids, proptest::collection::vec(fact, 0..6))
        })
    }

    fn build(ids: &[Vec<u32>], facts: &[Fact], order: &[usize]) -> Topology {
        let mut b = GroupBuilder::new();
        for &i in order {
            b.add_device(Device::new(device_n(i), ids[i].iter().map(|&id| HwId::new(U0, id)))).unwrap();
        }
        for f in facts {
            match *f {
                Fact::Alias(d, a) => {
                    b.dma_alias(device_n(d), HwId::new(U0, a)).unwrap();
                }
                Fact::Link(x, y) => {
                    b.cannot_isolate(device_n(x), device_n(y)).unwrap();
                }
                Fact::Slot(s) => {
                    b.multifunction_without_acs(0, 0, s);
                }
            }
        }
        b.build()
    }

    /// "Cannot be isolated" by brute force: direct relations (shared
    /// hardware ID after aliases, links, non-ACS slots), then Warshall's
    /// transitive closure.
    #[allow(clippy::needless_range_loop)] // Index loops read best for a closure.
    fn naive_closure(ids: &[Vec<u32>], facts: &[Fact]) -> Vec<Vec<bool>> {
        let n = ids.len();
        let mut hw: Vec<BTreeSet<u32>> = ids.iter().map(|v| v.iter().copied().collect()).collect();
        let mut related = vec![vec![false; n]; n];
        let mut slots = BTreeSet::new();
        for f in facts {
            match *f {
                Fact::Alias(d, a) => {
                    hw[d].insert(a);
                }
                Fact::Link(x, y) => {
                    related[x][y] = true;
                    related[y][x] = true;
                }
                Fact::Slot(s) => {
                    slots.insert(s);
                }
            }
        }
        for i in 0..n {
            for j in 0..n {
                let slot = i / 4 == j / 4 && slots.contains(&((i / 4) as u8));
                if i == j || slot || !hw[i].is_disjoint(&hw[j]) {
                    related[i][j] = true;
                }
            }
        }
        for k in 0..n {
            for i in 0..n {
                for j in 0..n {
                    if related[i][k] && related[k][j] {
                        related[i][j] = true;
                    }
                }
            }
        }
        related
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: if cfg!(miri) { 4 } else { 256 }, ..ProptestConfig::default() })]
        /// Groups are the connected components of a naive closure, and do not
        /// depend on the order devices were added in.
        #[test]
        fn groups_match_a_naive_closure((ids, facts) in facts(), seed in any::<u64>()) {
            let n = ids.len();
            let order: Vec<usize> = (0..n).collect();
            let mut shuffled = order.clone();
            // Deterministic shuffle from the seed.
            let mut s = seed | 1;
            for i in (1..n).rev() {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            let t = build(&ids, &facts, &order);
            prop_assert_eq!(&build(&ids, &facts, &shuffled), &t);

            let related = naive_closure(&ids, &facts);
            for (i, row) in related.iter().enumerate() {
                for (j, &rel) in row.iter().enumerate() {
                    let same = t.group_of(device_n(i)) == t.group_of(device_n(j));
                    prop_assert_eq!(same, rel, "devices {} and {}", i, j);
                }
            }
            // Groups numbered by smallest member, members sorted.
            let firsts: Vec<DeviceId> = t.groups().iter().map(|g| g.devices()[0].id()).collect();
            prop_assert!(firsts.windows(2).all(|w| w[0] < w[1]));
            for g in t.groups() {
                prop_assert!(g.devices().windows(2).all(|w| w[0].id() < w[1].id()));
            }
        }
    }
}
