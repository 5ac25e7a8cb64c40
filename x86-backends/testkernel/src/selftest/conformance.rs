//! The conformance suite (`iommu_common::conformance`) on VT-d and AMD-Vi,
//! edu doing the DMA. Each rig borrows its driver's unit as the driver
//! cases brought it up (`vtd::state`, `amdvi::state`), blocks edu before a
//! case (the model starts from a blocked device) and puts it back into the
//! driver cases' domain afterwards. The case names are the suite's, the
//! same as the SMMUv3's; only the IOMMU the machine has runs them.

use core::cell::UnsafeCell;

use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::conformance::{Blocked, Rig, Suite, CASE_COUNT, PAGE, PAGES};
use iommu_common::domain::{DomainConfig, IommuBackend, TagAllocator};
use iommu_common::group::{Bdf, Device, DeviceId, HwId, IommuUnit};
use iommu_common::pgtable::amd::AmdTable;
use iommu_common::pgtable::x86::SlTable;
use iommu_common::pgtable::PoolAllocator;
use x86_backends::amdvi::driver::AmdVi;
use x86_backends::vtd::dma::ClflushPages;
use x86_backends::vtd::driver::Vtd;

use super::{amdvi, vtd, Case};
use crate::bootinfo::BootInfo;
use crate::edu::{self, Direction, DmaAddr, Edu};

/// The suite on VT-d, then on AMD-Vi (a machine has one or the other).
pub static ALL: &[Case] = &[
    vtd_case::<0>(),
    vtd_case::<1>(),
    vtd_case::<2>(),
    vtd_case::<3>(),
    vtd_case::<4>(),
    amd_case::<0>(),
    amd_case::<1>(),
    amd_case::<2>(),
    amd_case::<3>(),
    amd_case::<4>(),
];
const _: () = assert!(
    Suite::<VtdRig>::CASES.len() == CASE_COUNT
        && Suite::<AmdRig>::CASES.len() == CASE_COUNT
        && ALL.len() == 2 * CASE_COUNT
);

const fn vtd_case<const I: usize>() -> Case {
    Case { name: Suite::<VtdRig>::CASES[I].name, default: true, applies: vtd::has_dmar, run: vtd_run::<I> }
}

const fn amd_case<const I: usize>() -> Case {
    Case { name: Suite::<AmdRig>::CASES[I].name, default: true, applies: amdvi::has_ivrs, run: amd_run::<I> }
}

// ---- what both rigs share: the pages and edu ----

#[repr(C, align(4096))]
struct Pages(UnsafeCell<[u8; PAGES * PAGE]>);
// SAFETY: one CPU; only these cases touch the pages, through raw pointers.
unsafe impl Sync for Pages {}
static MEM: Pages = Pages(UnsafeCell::new([0; PAGES * PAGE]));

fn byte(i: usize, off: usize) -> *mut u8 {
    assert!(i < PAGES && off < PAGE);
    (MEM.0.get() as *mut u8).wrapping_add(i * PAGE + off)
}

fn page_pa(i: usize) -> PhysAddr {
    // Identity mapped: the address is the physical one.
    PhysAddr(byte(i, 0) as u64)
}

fn read(i: usize, off: usize) -> u8 {
    // SAFETY: inside MEM (`byte` checks); volatile because the device wrote it.
    unsafe { byte(i, off).read_volatile() }
}

fn write(i: usize, off: usize, v: u8) {
    // SAFETY: as in `read`; volatile because only the device reads it.
    unsafe { byte(i, off).write_volatile(v) }
}

/// IOVAs the driver cases' domains never map (theirs lie at 1 MiB and
/// 64..256 MiB): QEMU tags neither IOTLB by domain alone, so a stale entry
/// of theirs could otherwise answer for ours.
const WINDOW: Iova = Iova(0x0800_0000);

fn edu_dma(edu: &Edu, dir: Direction, iova: Iova, len: usize) -> Result<(), &'static str> {
    edu.dma(dir, DmaAddr(iova.0), len).map_err(|e| {
        defmt::error!("edu dma {} {=u64:#x}: {}", dir, iova.0, e);
        "edu DMA did not complete"
    })
}

fn mismatch(page: usize, off: usize, got: u8, want: u8) {
    defmt::error!(
        "conformance: page {=usize} byte {=usize:#x} is {=u8:#x}, want {=u8:#x}",
        page,
        off,
        got,
        want
    );
}

fn pci_device(bus: u8, dev: u8, func: u8, hw: u16) -> Result<Device, &'static str> {
    let bdf = Bdf::new(0, bus, dev, func).ok_or("edu BDF")?;
    Ok(Device::new(DeviceId::Pci(bdf), [HwId::new(IommuUnit(0), u32::from(hw))]))
}

// ---- VT-d ----

struct VtdRig {
    s: &'static mut vtd::State,
    dev: Device,
}

fn vtd_run<const I: usize>(boot: &BootInfo) -> Result<(), &'static str> {
    let s = vtd::state(boot)?;
    let sid = s.sid;
    let dev = pci_device(sid.bus(), sid.device(), sid.function(), sid.0)?;
    IommuBackend::block(&mut s.vtd, &dev).map_err(|_| "blocking edu before the case failed")?;
    let mut rig = VtdRig { s, dev };
    let r = (Suite::<VtdRig>::CASES[I].run)(&mut rig);
    // Back into the driver cases' domain.
    let s = rig.s;
    let dom = s.vtd.domain_config(&s.table).map_err(|_| "domain config")?;
    let back = s.vtd.attach(s.sid, vtd::DID, &dom).map_err(|_| "re-attaching edu to its domain failed");
    r.and(back)
}

impl Rig for VtdRig {
    type Table = SlTable<ClflushPages<PoolAllocator>>;
    type Backend = Vtd<'static, vtd::ArenaFrames>;

    fn backend(&mut self) -> &mut Self::Backend {
        &mut self.s.vtd
    }
    fn device(&self) -> Device {
        self.dev.clone()
    }
    fn tags(&self) -> TagAllocator {
        // 16 IDs at least (CAP_REG.ND = 0); 1 is the driver cases' domain.
        TagAllocator::new(vtd::DID.0 + 1, 15).expect("non-empty")
    }
    fn new_table(&mut self) -> Result<Self::Table, &'static str> {
        let pages = ClflushPages::new(PoolAllocator::new(64, PAGE), self.s.vtd.capabilities().c);
        SlTable::new(*self.s.table.config(), pages).map_err(|_| "second-level table")
    }
    fn page(&self, i: usize) -> PhysAddr {
        page_pa(i)
    }
    fn read(&self, i: usize, off: usize) -> u8 {
        read(i, off)
    }
    fn write(&mut self, i: usize, off: usize, v: u8) {
        write(i, off, v)
    }
    fn iova_window(&self) -> Iova {
        WINDOW
    }
    fn dma_limit(&self) -> u64 {
        edu::DMA_LIMIT
    }
    fn dma_to_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str> {
        edu_dma(&self.s.edu, Direction::ToDevice, iova, len)
    }
    fn dma_from_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str> {
        edu_dma(&self.s.edu, Direction::FromDevice, iova, len)
    }
    fn drain_faults(&mut self) -> usize {
        self.s.faults().1
    }
    fn records(&self, _why: Blocked) -> bool {
        // Reasons 5/6 (not present, write/read), 5 (read-only), 2 (context
        // entry not present).
        true
    }
    fn mismatch(&self, page: usize, off: usize, got: u8, want: u8) {
        mismatch(page, off, got, want)
    }
}

// ---- AMD-Vi ----

struct AmdRig {
    s: &'static mut amdvi::State,
    dev: Device,
}

fn amd_run<const I: usize>(boot: &BootInfo) -> Result<(), &'static str> {
    let s = amdvi::state(boot)?;
    let devid = s.devid.0;
    let dev = pci_device((devid >> 8) as u8, ((devid >> 3) & 0x1f) as u8, (devid & 7) as u8, devid)?;
    IommuBackend::block(&mut s.iommu, &dev).map_err(|_| "blocking edu before the case failed")?;
    let mut rig = AmdRig { s, dev };
    let r = (Suite::<AmdRig>::CASES[I].run)(&mut rig);
    let s = rig.s;
    let back =
        s.iommu.attach(s.devid, amdvi::DOMAIN, &s.table).map_err(|_| "re-attaching edu to its domain failed");
    r.and(back)
}

impl Rig for AmdRig {
    type Table = AmdTable<PoolAllocator>;
    type Backend = AmdVi<'static, amdvi::ArenaMemory>;

    fn backend(&mut self) -> &mut Self::Backend {
        &mut self.s.iommu
    }
    fn device(&self) -> Device {
        self.dev.clone()
    }
    fn tags(&self) -> TagAllocator {
        TagAllocator::new(amdvi::DOMAIN.0 + 1, u16::MAX).expect("non-empty")
    }
    fn new_table(&mut self) -> Result<Self::Table, &'static str> {
        AmdTable::new(3, PoolAllocator::new(32, PAGE)).map_err(|_| "page table")
    }
    fn page(&self, i: usize) -> PhysAddr {
        page_pa(i)
    }
    fn read(&self, i: usize, off: usize) -> u8 {
        read(i, off)
    }
    fn write(&mut self, i: usize, off: usize, v: u8) {
        write(i, off, v)
    }
    fn iova_window(&self) -> Iova {
        WINDOW
    }
    fn dma_limit(&self) -> u64 {
        edu::DMA_LIMIT
    }
    fn dma_to_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str> {
        edu_dma(&self.s.edu, Direction::ToDevice, iova, len)
    }
    fn dma_from_device(&mut self, iova: Iova, len: usize) -> Result<(), &'static str> {
        edu_dma(&self.s.edu, Direction::FromDevice, iova, len)
    }
    fn drain_faults(&mut self) -> usize {
        self.s.iommu.drain_events(|e| defmt::warn!("amdvi event: {}", defmt::Display2Format(&e)))
    }
    fn records(&self, _why: Blocked) -> bool {
        // QEMU's AMD-Vi writes no event log records: memory is the evidence.
        false
    }
    fn mismatch(&self, page: usize, off: usize, got: u8, want: u8) {
        mismatch(page, off, got, want)
    }
}
