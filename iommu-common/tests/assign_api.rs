//! The assignment model from outside the crate, as the SMMUv3 driver will use
//! it: a backend shaped like an SMMU (STEs per StreamID, `Stage2Config` as the
//! table config, VMIDs as tags, TLBI commands and CMD_SYNC), real stage-2
//! tables, and one partition's life cycle from assignment to teardown.

use std::collections::BTreeMap;

use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::container::{ContainerError, ContainerId, DeviceAssignment, PhysRange, PhysRegions};
use iommu_common::domain::{DomainConfig, DomainHw, DomainTag, IommuBackend, TagAllocator};
use iommu_common::group::{Bdf, Device, DeviceId, GroupBuilder, HwId, IommuUnit};
use iommu_common::pasid::Pasid;
use iommu_common::pgtable::vmsav8::{Granule, S2Table, Stage2, Stage2Config, TableConfig, Vmsav8Table};
use iommu_common::pgtable::{IotlbGather, PoolAllocator, Prot};

/// What the fake SMMU's stream table holds for a StreamID.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ste {
    /// `V` = 1, `Config` = 0b000: abort.
    Abort,
    /// Stage-2 translation through the table at `s2ttb`, tagged `vmid`.
    Stage2 { vmid: u16, s2ttb: PhysAddr, vtcr: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Cmd {
    CfgiSte(u32),
    TlbiS2Ipa { vmid: u16, start: u64, end: u64, leaf: bool },
    TlbiS12Vmall(u16),
    Sync,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SmmuError(&'static str);

/// Stream table plus command log. StreamIDs never written read as abort
/// (the driver programs abort STEs at bring-up).
#[derive(Default)]
struct FakeSmmu {
    strtab: BTreeMap<u32, Ste>,
    cmds: Vec<Cmd>,
    s2_ias: u32,
}

impl FakeSmmu {
    fn ste(&self, sid: u32) -> Ste {
        self.strtab.get(&sid).cloned().unwrap_or(Ste::Abort)
    }
}

impl IommuBackend for FakeSmmu {
    type Config = Stage2Config;
    type Error = SmmuError;

    fn attach(&mut self, dev: &Device, domain: &DomainHw<Stage2Config>) -> Result<(), SmmuError> {
        for hw in dev.hw_ids() {
            let ste =
                Ste::Stage2 { vmid: domain.tag.0, s2ttb: domain.config.vttb, vtcr: domain.config.vtcr() };
            self.strtab.insert(hw.id, ste);
            self.cmds.extend([Cmd::CfgiSte(hw.id), Cmd::Sync]);
        }
        Ok(())
    }

    fn block(&mut self, dev: &Device) -> Result<(), SmmuError> {
        for hw in dev.hw_ids() {
            self.strtab.insert(hw.id, Ste::Abort);
            self.cmds.extend([Cmd::CfgiSte(hw.id), Cmd::Sync]);
        }
        Ok(())
    }

    fn attach_pasid(&mut self, _: &Device, _: Pasid, _: &DomainHw<Stage2Config>) -> Result<(), SmmuError> {
        Err(SmmuError("no CD tables in this fake"))
    }

    fn block_pasid(&mut self, _: &Device, _: Pasid) -> Result<(), SmmuError> {
        Ok(())
    }

    fn invalidate(&mut self, tag: DomainTag, gather: &IotlbGather) -> Result<(), SmmuError> {
        let leaf = !gather.tables_removed();
        for r in gather.ranges() {
            self.cmds.push(Cmd::TlbiS2Ipa { vmid: tag.0, start: r.start.raw(), end: r.end.raw(), leaf });
        }
        Ok(())
    }

    fn invalidate_tag(&mut self, tag: DomainTag) -> Result<(), SmmuError> {
        self.cmds.push(Cmd::TlbiS12Vmall(tag.0));
        Ok(())
    }

    fn sync(&mut self) -> Result<(), SmmuError> {
        self.cmds.push(Cmd::Sync);
        Ok(())
    }
}

type Table = S2Table<PoolAllocator>;

impl DomainConfig<Table> for FakeSmmu {
    fn domain_config(&self, table: &Table) -> Result<Stage2Config, SmmuError> {
        // SMMU_IDR5.OAS / the stage-2 input size limit.
        if table.config().ias > self.s2_ias {
            return Err(SmmuError("IPA size beyond the SMMU's"));
        }
        Ok(table.stage2_config())
    }
}

const SMMU: IommuUnit = IommuUnit(0);
const RAM: u64 = 0x4000_0000;
const K4: u64 = 0x1000;

fn bdf(bus: u8, dev: u8, func: u8) -> Bdf {
    Bdf::new(0, bus, dev, func).unwrap()
}

fn table() -> Table {
    Vmsav8Table::new(Stage2, TableConfig::new(Granule::Size4K, 40, 40), PoolAllocator::new(16, 4096)).unwrap()
}

#[test]
fn a_partition_life_cycle_on_an_smmu_shaped_backend() {
    // Two functions of a NIC without ACS, and a lone NVMe drive.
    let (nic0, nic1, nvme) = (bdf(1, 0, 0), bdf(1, 0, 1), bdf(2, 0, 0));
    let mut topo = GroupBuilder::new();
    for b in [nic0, nic1, nvme] {
        topo.add_device(Device::new(DeviceId::Pci(b), [HwId::pci(SMMU, b)])).unwrap();
    }
    topo.multifunction_without_acs(0, 1, 0);
    let topo = topo.build();
    assert_eq!(topo.groups().len(), 2);

    let mut smmu = FakeSmmu { s2_ias: 40, ..FakeSmmu::default() };
    let mut model: DeviceAssignment<Table, FakeSmmu> =
        DeviceAssignment::new(topo, TagAllocator::smmu_vmid(false));
    let vm1 = ContainerId(1);
    let ram = PhysRegions::new([PhysRange::new(PhysAddr(RAM), 0x100_0000)]).unwrap();
    model.create_container(vm1, ram).unwrap();

    // Assigning one function brings its sibling along.
    let g = model.assign_device(vm1, DeviceId::Pci(nic1)).unwrap();
    assert_eq!(model.owner_of_device(DeviceId::Pci(nic0)), Some(vm1));
    assert_eq!(model.owner_of_device(DeviceId::Pci(nvme)), None);

    let d = model.create_domain(&smmu, vm1, table()).unwrap();
    let root = model.domain(vm1, d).unwrap().table().root_pa();
    model.map(vm1, d, Iova(0), PhysAddr(RAM), 0x20_0000, Prot::RW).unwrap();
    model.attach_group(&mut smmu, vm1, g, d).unwrap();
    for b in [nic0, nic1] {
        assert!(matches!(smmu.ste(u32::from(b.rid())), Ste::Stage2 { vmid: 1, s2ttb, .. } if s2ttb == root));
    }
    assert_eq!(smmu.ste(u32::from(nvme.rid())), Ste::Abort);

    // A mapping outside the partition's RAM is refused.
    let err = model.map(vm1, d, Iova(0x100_0000), PhysAddr(RAM + 0x100_0000), K4, Prot::RW).unwrap_err();
    assert_eq!(err, ContainerError::OutsideMemory { paddr: PhysAddr(RAM + 0x100_0000), len: K4 });
    assert_eq!(err.to_string(), "output range PhysAddr(0x41000000)+0x1000 outside the partition's memory");

    // Unmapping one page out of a 2 MiB block: TLBI for the block, then sync.
    smmu.cmds.clear();
    model.unmap(&mut smmu, vm1, d, Iova(0x1000), K4).unwrap();
    assert_eq!(smmu.cmds.last(), Some(&Cmd::Sync));
    assert!(matches!(smmu.cmds[0], Cmd::TlbiS2Ipa { vmid: 1, .. }));

    // Teardown: unassign blocks every StreamID, the VMID is invalidated
    // before it is freed.
    smmu.cmds.clear();
    model.unassign_group(&mut smmu, vm1, g).unwrap();
    assert_eq!(smmu.ste(u32::from(nic0.rid())), Ste::Abort);
    assert_eq!(smmu.ste(u32::from(nic1.rid())), Ste::Abort);
    let _table = model.destroy_domain(&mut smmu, vm1, d).unwrap();
    assert!(smmu.cmds.ends_with(&[Cmd::TlbiS12Vmall(1), Cmd::Sync]));
    assert_eq!(model.tags().in_use(), 0);
    model.destroy_container(vm1).unwrap();

    // A table the SMMU cannot walk is refused up front.
    smmu.s2_ias = 32;
    model.create_container(vm1, PhysRegions::new([PhysRange::new(PhysAddr(RAM), K4)]).unwrap()).unwrap();
    assert_eq!(
        model.create_domain(&smmu, vm1, table()).unwrap_err(),
        ContainerError::Backend(SmmuError("IPA size beyond the SMMU's"))
    );
}
