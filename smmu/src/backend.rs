//! The SMMUv3 as an `iommu-common` [`IommuBackend`]: the assignment model
//! (groups, domains, containers) drives the STEs and TLB invalidations.
//!
//! A domain is a stage-2 translation: its tag is the VMID, its configuration
//! the STE's stage-2 fields ([`Stage2Cfg`]) derived from the domain's
//! VMSAv8-64 stage-2 table. Attaching writes a stage-2 STE for every
//! StreamID of the device; blocking writes an abort STE (never bypass).
//! Invalidations are queued (`CMD_TLBI_S2_IPA`, range form when
//! `SMMU_IDR3.RIL`, or `CMD_TLBI_S12_VMALL` past the policy's threshold) and
//! completed by one `CMD_SYNC` in [`IommuBackend::sync`].

use embedded_hal::delay::DelayNs;
use iommu_common::domain::{DomainConfig, DomainHw, DomainTag, IommuBackend};
use iommu_common::group::Device;
use iommu_common::pasid::Pasid;
use iommu_common::pgtable::vmsav8::S2Table;
use iommu_common::pgtable::{IotlbGather, PageAllocator};

use crate::caps::Granule;
use crate::cmd::{plan_invalidation, Command, TlbiTarget};
use crate::dma::DmaFrames;
use crate::driver::{Error, Smmu};
use crate::ids::{StreamId, Vmid};
use crate::ste::{Stage2Cfg, Ste};

impl<F: DmaFrames, D: DelayNs> IommuBackend for Smmu<'_, F, D> {
    type Config = Stage2Cfg;
    type Error = Error;

    fn attach(&mut self, dev: &Device, domain: &DomainHw<Stage2Cfg>) -> Result<(), Error> {
        let cfg = Stage2Cfg { vmid: Vmid(domain.tag.0), ..domain.config };
        let ste = Ste::stage2(cfg);
        for hw in dev.hw_ids() {
            self.set_ste(StreamId(hw.id), &ste)?;
        }
        Ok(())
    }

    fn block(&mut self, dev: &Device) -> Result<(), Error> {
        for hw in dev.hw_ids() {
            self.set_ste(StreamId(hw.id), &Ste::abort())?;
        }
        Ok(())
    }

    fn attach_pasid(
        &mut self,
        _dev: &Device,
        _pasid: Pasid,
        _domain: &DomainHw<Stage2Cfg>,
    ) -> Result<(), Error> {
        // A SubstreamID selects a stage-1 context (a CD); a stage-2 domain
        // has none to offer, whatever SMMU_IDR1.SSIDSIZE says.
        Err(Error::Config("PASID attach needs a stage-1 domain; this backend's domains are stage 2"))
    }

    fn block_pasid(&mut self, _dev: &Device, _pasid: Pasid) -> Result<(), Error> {
        Err(Error::Config("PASID attach needs a stage-1 domain; this backend's domains are stage 2"))
    }

    fn invalidate(&mut self, tag: DomainTag, gather: &IotlbGather) -> Result<(), Error> {
        let target = TlbiTarget::Stage2 { vmid: Vmid(tag.0) };
        // Leaf-only invalidation is enough unless table pages were unlinked.
        let leaf = !gather.tables_removed();
        for r in gather.ranges() {
            let plan = plan_invalidation(target, r.start.0, r.len(), Granule::K4, leaf, 0, self.policy());
            self.queue(plan)?;
        }
        Ok(())
    }

    fn invalidate_tag(&mut self, tag: DomainTag) -> Result<(), Error> {
        self.queue([Command::TlbiS12Vmall { vmid: Vmid(tag.0) }])
    }

    fn sync(&mut self) -> Result<(), Error> {
        self.submit_sync([])
    }
}

impl<F: DmaFrames, D: DelayNs, A: PageAllocator> DomainConfig<S2Table<A>> for Smmu<'_, F, D> {
    fn domain_config(&self, table: &S2Table<A>) -> Result<Stage2Cfg, Error> {
        let c = table.stage2_config();
        let granule = match c.tg {
            0b00 => Granule::K4,
            0b01 => Granule::K64,
            _ => return Err(Error::Config("stage-2 table granule")),
        };
        // The VMID is the domain's tag, filled in at attach.
        Stage2Cfg::new(Vmid(0), c.vttb, 64 - c.t0sz, granule, c.start_level, self.capabilities().oas)
            .and_then(|cfg| cfg.check_walk().map(|_| cfg))
            .map_err(Error::Entry)
    }
}
