//! The conformance suite (`iommu_common::conformance`) on the SMMUv3: a
//! stage-2 domain per case, edu doing the DMA. The rig is the SMMU cases'
//! (`smmu::rig`: the SMMU brought up afresh, edu behind it), with eight
//! pages of heap memory and IOVAs below edu's 28-bit DMA mask. The case
//! names are the suite's, the same on VT-d and AMD-Vi.

use super::smmu::{self, DMA_BUDGET_US};
use super::Case;
use crate::devices::edu::Direction;
use crate::dtb::Dt;
use crate::smmu_host::HostSmmu;
use alloc::{boxed::Box, vec::Vec};
use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::conformance::{Blocked, Rig, Suite, CASE_COUNT, PAGE, PAGES};
use iommu_common::domain::TagAllocator;
use iommu_common::group::{Bdf, Device, DeviceId, HwId, IommuUnit};
use iommu_common::pgtable::vmsav8::S2Table;
use iommu_common::pgtable::PoolAllocator;

type Conf = Suite<SmmuRig>;

/// The suite's cases, run on the SMMU with edu.
pub static CASES: &[Case] = &[case::<0>(), case::<1>(), case::<2>(), case::<3>(), case::<4>()];
const _: () = assert!(Conf::CASES.len() == CASE_COUNT && CASES.len() == CASE_COUNT);

const fn case<const I: usize>() -> Case {
    Case { name: Conf::CASES[I].name, default: true, applies: smmu::has_smmu_edu, run: run::<I> }
}

fn run<const I: usize>(dt: &Dt) -> Result<(), &'static str> {
    let mut rig = SmmuRig::new(dt)?;
    (Conf::CASES[I].run)(&mut rig)
}

#[repr(C, align(4096))]
struct Page([u8; PAGE]);

struct SmmuRig {
    r: smmu::Rig,
    dev: Device,
    mem: Box<[Page]>,
}

impl SmmuRig {
    fn new(dt: &Dt) -> Result<Self, &'static str> {
        let r = smmu::rig(dt)?;
        let bdf = Bdf::new(0, r.bdf.bus, r.bdf.dev, r.bdf.func).ok_or("bad BDF")?;
        let dev = Device::new(DeviceId::Pci(bdf), [HwId::new(IommuUnit(0), r.sid.0)]);
        let mem = (0..PAGES).map(|_| Page([0; PAGE])).collect::<Vec<_>>().into_boxed_slice();
        Ok(Self { r, dev, mem })
    }

    fn byte(&self, i: usize, off: usize) -> *const u8 {
        &self.mem[i].0[off]
    }
}

impl Rig for SmmuRig {
    type Table = S2Table<PoolAllocator>;
    type Backend = HostSmmu;

    fn backend(&mut self) -> &mut HostSmmu {
        &mut self.r.smmu
    }

    fn device(&self) -> Device {
        self.dev.clone()
    }

    fn tags(&self) -> TagAllocator {
        TagAllocator::smmu_vmid(self.r.smmu.capabilities().vmid16)
    }

    fn new_table(&mut self) -> Result<Self::Table, &'static str> {
        smmu::s2_table()
    }

    fn page(&self, i: usize) -> PhysAddr {
        // EL2 maps RAM identically: the address is the physical one.
        PhysAddr(&self.mem[i] as *const Page as u64)
    }

    fn read(&self, i: usize, off: usize) -> u8 {
        // SAFETY: a byte of our own live allocation (indexing checked the
        // bounds); volatile because the device writes it behind the compiler.
        unsafe { self.byte(i, off).read_volatile() }
    }

    fn write(&mut self, i: usize, off: usize, v: u8) {
        let p: *mut u8 = &mut self.mem[i].0[off];
        // SAFETY: as in `read`; volatile because only the device reads it.
        unsafe { p.write_volatile(v) }
    }

    fn iova_window(&self) -> Iova {
        Iova(0x10_0000)
    }

    fn dma_limit(&self) -> u64 {
        1 << 28
    }

    fn dma_to_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str> {
        self.r
            .edu
            .dma(Direction::ToDevice, iova.0, 0, len as u64, DMA_BUDGET_US)
            .map_err(|_| "DMA to device timed out")
    }

    fn dma_from_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str> {
        self.r
            .edu
            .dma(Direction::FromDevice, iova.0, 0, len as u64, DMA_BUDGET_US)
            .map_err(|_| "DMA from device timed out")
    }

    fn drain_faults(&mut self) -> usize {
        smmu::events(&mut self.r).len()
    }

    fn records(&self, why: Blocked) -> bool {
        // An abort STE (Config = 0b000) aborts without an event.
        why != Blocked::Detached
    }

    fn mismatch(&self, page: usize, off: usize, got: u8, want: u8) {
        defmt::error!(
            "conformance: page {=usize} byte {=usize:#x} is {=u8:#x}, want {=u8:#x}",
            page,
            off,
            got,
            want
        );
    }
}
