//! The AMD-Vi IOMMU as an `iommu-common` [`IommuBackend`]: the assignment
//! model (groups, domains, containers) drives DTEs and IOTLB invalidations.
//!
//! A domain is a host (v1) page table ([`AmdTable`]); its tag is the
//! DomainID, its configuration the DTE's root pointer and Mode
//! ([`AmdDomainCfg`]). Attaching writes a translated DTE for every DeviceID
//! of the device; blocking writes the blocked DTE (never pass-through).
//! Invalidations are queued (`INVALIDATE_IOMMU_PAGES` as
//! [`plan_invalidation`](super::cmd::plan_invalidation) splits them) and
//! completed by one COMPLETION_WAIT in [`IommuBackend::sync`].

use iommu_common::addr::PhysAddr;
use iommu_common::domain::{DomainConfig, DomainHw, DomainTag, IommuBackend};
use iommu_common::group::Device;
use iommu_common::pasid::Pasid;
use iommu_common::pgtable::amd::AmdTable;
use iommu_common::pgtable::{IotlbGather, PageAllocator};

use super::dma::DmaMemory;
use super::driver::{AmdVi, Error};
use super::dte::DteError;
use super::ids::{DeviceId, DomainId};

/// The DTE fields a domain's table gives: HostPageTableRootPtr and Mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AmdDomainCfg {
    /// The root table.
    pub root: PhysAddr,
    /// Levels (DTE Mode).
    pub levels: u8,
}

fn device_id(id: u32) -> Result<DeviceId, Error> {
    u16::try_from(id).map(DeviceId).map_err(|_| Error::Unsupported("hardware ID beyond 16-bit DeviceIDs"))
}

impl<M: DmaMemory> IommuBackend for AmdVi<'_, M> {
    type Config = AmdDomainCfg;
    type Error = Error;

    fn attach(&mut self, dev: &Device, domain: &DomainHw<AmdDomainCfg>) -> Result<(), Error> {
        for hw in dev.hw_ids() {
            let c = domain.config;
            self.attach_root(device_id(hw.id)?, DomainId(domain.tag.0), c.root, c.levels)?;
        }
        Ok(())
    }

    fn block(&mut self, dev: &Device) -> Result<(), Error> {
        for hw in dev.hw_ids() {
            self.detach(device_id(hw.id)?)?;
        }
        Ok(())
    }

    fn attach_pasid(
        &mut self,
        _dev: &Device,
        _pasid: Pasid,
        _domain: &DomainHw<AmdDomainCfg>,
    ) -> Result<(), Error> {
        // PASID-tagged DMA goes through guest (v2) tables behind the GCR3
        // table; a host-table domain has none to offer.
        Err(Error::Unsupported(
            "PASID attach needs guest (v2) tables; this backend's domains are host tables",
        ))
    }

    fn block_pasid(&mut self, _dev: &Device, _pasid: Pasid) -> Result<(), Error> {
        Err(Error::Unsupported(
            "PASID attach needs guest (v2) tables; this backend's domains are host tables",
        ))
    }

    fn invalidate(&mut self, tag: DomainTag, gather: &IotlbGather) -> Result<(), Error> {
        self.queue_invalidation(DomainId(tag.0), gather)
    }

    fn invalidate_tag(&mut self, tag: DomainTag) -> Result<(), Error> {
        self.queue_invalidate_domain(DomainId(tag.0))
    }

    fn sync(&mut self) -> Result<(), Error> {
        self.completion_wait()
    }
}

impl<M: DmaMemory, A: PageAllocator> DomainConfig<AmdTable<A>> for AmdVi<'_, M> {
    fn domain_config(&self, table: &AmdTable<A>) -> Result<AmdDomainCfg, Error> {
        let hats = self.efr().hats.levels();
        if table.levels() > hats {
            return Err(Error::Dte(DteError::TooManyLevels { mode: table.levels(), hats }));
        }
        Ok(AmdDomainCfg { root: table.root(), levels: table.levels() })
    }
}
