//! The VT-d unit as an `iommu-common` [`IommuBackend`]: the assignment
//! model (groups, domains, containers) drives context entries and IOTLB
//! invalidations.
//!
//! A domain is a second-level table; its tag is the domain-ID (`DID`), its
//! configuration the context entry's `SLPTPTR` and `AW`
//! ([`SlDomainCfg`]). Attaching writes a legacy-mode context entry for
//! every source-id of the device (hardware IDs are 16-bit requester IDs:
//! bus in 15:8, devfn in 7:0); blocking makes it not present (never
//! pass-through). Invalidations are page-selective within the domain
//! (`plan_page_invalidation`, IH when no table was unlinked), domain-
//! selective past the policy's threshold, and completed by one wait
//! descriptor in [`IommuBackend::sync`].

use iommu_common::domain::{DomainConfig, DomainHw, DomainTag, IommuBackend};
use iommu_common::group::Device;
use iommu_common::pasid::Pasid;
use iommu_common::pgtable::x86::SlTable;
use iommu_common::pgtable::{IoPageTable, IotlbGather, PageAllocator};

use crate::vtd::dma::DmaFrames;
use crate::vtd::driver::{Error, SlDomainCfg, Vtd};
use crate::vtd::ids::{DomainId, SourceId};

/// The source-id of a hardware ID, or an error if it is not 16 bits.
fn source_id(id: u32) -> Result<SourceId, Error> {
    u16::try_from(id).map(SourceId).map_err(|_| Error::Config("VT-d source-ids are 16 bits"))
}

impl<F: DmaFrames> IommuBackend for Vtd<'_, F> {
    type Config = SlDomainCfg;
    type Error = Error;

    fn attach(&mut self, dev: &Device, domain: &DomainHw<SlDomainCfg>) -> Result<(), Error> {
        for hw in dev.hw_ids() {
            Vtd::attach(self, source_id(hw.id)?, DomainId(domain.tag.0), &domain.config)?;
        }
        Ok(())
    }

    fn block(&mut self, dev: &Device) -> Result<(), Error> {
        for hw in dev.hw_ids() {
            self.detach(source_id(hw.id)?)?;
        }
        Ok(())
    }

    fn attach_pasid(
        &mut self,
        _dev: &Device,
        _pasid: Pasid,
        _domain: &DomainHw<SlDomainCfg>,
    ) -> Result<(), Error> {
        // Legacy mode has no PASID table: requests with PASID are blocked.
        Err(Error::Config("PASID attach needs scalable mode; this backend runs in legacy mode"))
    }

    fn block_pasid(&mut self, _dev: &Device, _pasid: Pasid) -> Result<(), Error> {
        Err(Error::Config("PASID attach needs scalable mode; this backend runs in legacy mode"))
    }

    fn invalidate(&mut self, tag: DomainTag, gather: &IotlbGather) -> Result<(), Error> {
        let leaf_only = !gather.tables_removed();
        for r in gather.ranges() {
            self.invalidate_range(DomainId(tag.0), r.start, r.len(), leaf_only)?;
        }
        Ok(())
    }

    fn invalidate_tag(&mut self, tag: DomainTag) -> Result<(), Error> {
        self.invalidate_domain(DomainId(tag.0))
    }

    fn sync(&mut self) -> Result<(), Error> {
        Vtd::sync(self)
    }
}

impl<F: DmaFrames, A: PageAllocator> DomainConfig<SlTable<A>> for Vtd<'_, F> {
    fn domain_config(&self, table: &SlTable<A>) -> Result<SlDomainCfg, Error> {
        let cfg = SlDomainCfg::new(table.root_pa(), table.levels())?;
        let caps = self.capabilities();
        if !caps.supports_aw(cfg.aw) {
            return Err(Error::Config("the table's depth is not in CAP_REG.SAGAW"));
        }
        if table.ias() > caps.mgaw() {
            return Err(Error::Config("the table's input size exceeds CAP_REG.MGAW"));
        }
        let c = table.config();
        if (c.large_2m && !caps.sllps.m2) || (c.large_1g && !caps.sllps.g1) {
            return Err(Error::Config("the table uses page sizes CAP_REG.SLLPS does not offer"));
        }
        Ok(cfg)
    }
}
