//! IO page-table benchmarks: our VMSAv8-64 stage-1 and stage-2 tables (4 KiB
//! granule) side by side with `aarch64-paging` 0.12 (stage 1 `El1And0` and
//! `Stage2`, through `Mapping` with our translation), `x86_64` 0.15
//! (`OffsetPageTable`, x86 4-level format) and `page_table_multiarch` 0.6
//! (its generic `PageTable64` walker; its AArch64 entry type only compiles
//! for an aarch64 target, so on this x86-64 host it runs as `X64PageTable`).
//! The two non-ARM peers are format-independent and run once per workload.
//!
//! Every contender takes its table pages from the same pre-touched pool
//! (one `PoolAllocator`, physical address = pointer value, so every
//! contender's PA-to-VA translation is the identity), and every measured run
//! starts from a fresh table. After each run an untimed check compares the
//! pool's outstanding table count with what the workload must leave and
//! translates sample addresses; before timing, each contender's result is
//! checked page by page once.
//!
//! Workloads (IOVA base 256 GiB, PA base 512 GiB):
//! - a) 1 GiB in one call, then unmapped in one call: 4 KiB leaves only
//!   (`map_pages(.., 4K, 262144)`, aarch64-paging `NO_BLOCK_MAPPINGS`,
//!   `map_region(allow_huge = false)`, x86_64: 262144 `map_to`), timed map
//!   and unmap separately; and with blocks allowed (ours: `map`), one 1 GiB
//!   block, map + unmap timed together.
//! - b) 262144 single-page map calls, then as many single-page unmaps.
//! - c) 512 x 2 MiB block maps then 512 unmaps (per-call), timed together.
//! - d) 10 000 single-page maps at random distinct pages of a 4 GiB window
//!   (plan built once, outside the timing).
//! - e) unmapping 4 KiB inside a 2 MiB block (a split; ours includes
//!   `complete`, i.e. linking the new table after the break).
//!
//! Our unmaps include `complete` (freeing emptied tables); x86_64 and
//! page_table_multiarch never free tables on unmap, aarch64-paging only when
//! a whole subtable's range is unmapped.

use std::cell::RefCell;
use std::hint::black_box;
use std::ptr::NonNull;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode};

use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::pgtable::vmsav8::{Format, Granule, Stage1, Stage2, TableConfig, Vmsav8Table};
use iommu_common::pgtable::{IoPageTable, IotlbGather, PageAllocator, PoolAllocator, Prot, TablePage};

const K4: u64 = 0x1000;
const M2: u64 = 0x20_0000;
const G1: u64 = 0x4000_0000;
const IOVA: u64 = 0x40_0000_0000;
const PA: u64 = 0x80_0000_0000;
const PAGES_1G: usize = 262_144;
const POOL_PAGES: usize = 4096;

// ---------------------------------------------------------------- pool ---

thread_local! {
    static POOL: RefCell<PoolAllocator> = RefCell::new(PoolAllocator::new(POOL_PAGES, 4096));
}

fn pool_alloc() -> TablePage {
    POOL.with(|p| p.borrow_mut().alloc_table(4096)).expect("benchmark pool exhausted")
}

fn pool_free(pa: u64) {
    let page = TablePage { pa: PhysAddr(pa), va: identity(pa) };
    // SAFETY: Every contender frees only pages it got from `pool_alloc` and
    // no longer uses.
    POOL.with(|p| unsafe { p.borrow_mut().free_table(page, 4096) });
}

fn pool_in_use() -> usize {
    POOL.with(|p| p.borrow().in_use())
}

/// The pool maps physical = virtual (it exposes its provenance).
#[inline(always)]
fn identity(pa: u64) -> NonNull<u8> {
    NonNull::new(std::ptr::with_exposed_provenance_mut(pa as usize)).expect("null table address")
}

/// Our tables' view of the shared pool.
#[derive(Clone, Copy, Debug, Default)]
struct Shared;

// SAFETY: Pages come from the pool (page-sized and aligned, exclusively
// handed out); the pool's physical address is its pointer value.
unsafe impl PageAllocator for Shared {
    fn alloc_table(&mut self, size: usize) -> Option<TablePage> {
        assert_eq!(size, 4096);
        Some(pool_alloc())
    }

    unsafe fn free_table(&mut self, page: TablePage, _size: usize) {
        pool_free(page.pa.0);
    }

    #[inline(always)]
    fn phys_to_virt(&self, pa: PhysAddr) -> NonNull<u8> {
        identity(pa.0)
    }
}

// --------------------------------------------------------- contenders ---

/// What every contender does, with its own API.
trait Contender {
    const NAME: &'static str;
    fn new() -> Self;
    /// One call mapping `len` bytes, 4 KiB leaves only or blocks allowed.
    fn map_range(&mut self, va: u64, pa: u64, len: u64, blocks: bool);
    fn unmap_range(&mut self, va: u64, len: u64);
    /// One call mapping one leaf of `size` (4 KiB or 2 MiB).
    fn map_one(&mut self, va: u64, pa: u64, size: u64);
    fn unmap_one(&mut self, va: u64, size: u64);
    /// Frees whatever the contender batches until an invalidation.
    fn flush(&mut self) {}
    fn translate(&self, va: u64) -> Option<u64>;
}

struct Ours<F: Format> {
    t: Vmsav8Table<F, Shared>,
    g: IotlbGather,
}

trait OurFormat: Format {
    const NAME: &'static str;
    fn make() -> Self;
}

impl OurFormat for Stage1 {
    const NAME: &'static str = "ours-s1";
    fn make() -> Self {
        Stage1::default()
    }
}

impl OurFormat for Stage2 {
    const NAME: &'static str = "ours-s2";
    fn make() -> Self {
        Stage2
    }
}

impl<F: OurFormat> Contender for Ours<F> {
    const NAME: &'static str = F::NAME;

    fn new() -> Self {
        let cfg = TableConfig::new(Granule::Size4K, 48, 48);
        Self { t: Vmsav8Table::new(F::make(), cfg, Shared).unwrap(), g: IotlbGather::new() }
    }

    fn map_range(&mut self, va: u64, pa: u64, len: u64, blocks: bool) {
        if blocks {
            self.t.map(Iova(va), PhysAddr(pa), len, Prot::RW).unwrap();
        } else {
            self.t.map_pages(Iova(va), PhysAddr(pa), K4, (len / K4) as usize, Prot::RW).unwrap();
        }
    }

    fn unmap_range(&mut self, va: u64, len: u64) {
        self.t.unmap(Iova(va), len, &mut self.g).unwrap();
        self.flush();
    }

    #[inline]
    fn map_one(&mut self, va: u64, pa: u64, size: u64) {
        self.t.map_pages(Iova(va), PhysAddr(pa), size, 1, Prot::RW).unwrap();
    }

    #[inline]
    fn unmap_one(&mut self, va: u64, size: u64) {
        self.t.unmap_pages(Iova(va), size, 1, &mut self.g).unwrap();
    }

    fn flush(&mut self) {
        self.t.complete(&mut self.g).unwrap();
    }

    fn translate(&self, va: u64) -> Option<u64> {
        self.t.iova_to_phys(Iova(va)).map(|p| p.0)
    }
}

mod ap {
    use super::*;
    use aarch64_paging::descriptor::{El1Attributes, PagingAttributes, PhysicalAddress, Stage2Attributes};
    use aarch64_paging::paging::{
        Constraints, El1And0, MemoryRegion, PageTable, Stage2, Translation, TranslationRegime, VaRange,
    };
    use aarch64_paging::Mapping;

    /// aarch64-paging's view of the shared pool.
    pub struct PoolTranslation;

    impl<A: PagingAttributes> Translation<A> for PoolTranslation {
        fn allocate_table(&mut self) -> (NonNull<PageTable<A>>, PhysicalAddress) {
            let page = pool_alloc();
            // SAFETY: A fresh 4 KiB pool page; aarch64-paging wants it zeroed.
            unsafe { page.va.as_ptr().write_bytes(0, 4096) };
            (page.va.cast(), PhysicalAddress(page.pa.0 as usize))
        }

        unsafe fn deallocate_table(&mut self, page_table: NonNull<PageTable<A>>) {
            pool_free(page_table.as_ptr().addr() as u64);
        }

        #[inline(always)]
        fn physical_to_virtual(&self, pa: PhysicalAddress) -> NonNull<PageTable<A>> {
            identity(pa.0 as u64).cast()
        }
    }

    pub trait Regime: TranslationRegime {
        const NAME: &'static str;
        const RW: Self::Attributes;
        fn mapping() -> Mapping<PoolTranslation, Self>
        where
            PoolTranslation: Translation<Self::Attributes>;
    }

    impl Regime for El1And0 {
        const NAME: &'static str = "aarch64-paging-s1";
        const RW: El1Attributes = El1Attributes::VALID
            .union(El1Attributes::ATTRIBUTE_INDEX_0)
            .union(El1Attributes::INNER_SHAREABLE)
            .union(El1Attributes::ACCESSED)
            .union(El1Attributes::NON_GLOBAL)
            .union(El1Attributes::USER)
            .union(El1Attributes::PXN)
            .union(El1Attributes::UXN);
        fn mapping() -> Mapping<PoolTranslation, Self> {
            Mapping::with_asid_and_va_range(PoolTranslation, 1, 0, El1And0, VaRange::Lower)
        }
    }

    impl Regime for Stage2 {
        const NAME: &'static str = "aarch64-paging-s2";
        const RW: Stage2Attributes = Stage2Attributes::VALID
            .union(Stage2Attributes::MEMATTR_NORMAL_OUTER_WB)
            .union(Stage2Attributes::MEMATTR_NORMAL_INNER_WB)
            .union(Stage2Attributes::S2AP_ACCESS_RW)
            .union(Stage2Attributes::SH_INNER)
            .union(Stage2Attributes::ACCESS_FLAG)
            .union(Stage2Attributes::XN);
        fn mapping() -> Mapping<PoolTranslation, Self> {
            Mapping::new(PoolTranslation, 0, Stage2)
        }
    }

    pub struct Ap<R: Regime>(Mapping<PoolTranslation, R>)
    where
        PoolTranslation: Translation<R::Attributes>;

    fn region(va: u64, len: u64) -> MemoryRegion {
        MemoryRegion::new(va as usize, (va + len) as usize)
    }

    impl<R: Regime> Contender for Ap<R>
    where
        PoolTranslation: Translation<R::Attributes>,
    {
        const NAME: &'static str = R::NAME;

        fn new() -> Self {
            Self(R::mapping())
        }

        fn map_range(&mut self, va: u64, pa: u64, len: u64, blocks: bool) {
            let c = if blocks { Constraints::empty() } else { Constraints::NO_BLOCK_MAPPINGS };
            self.0.map_range(&region(va, len), PhysicalAddress(pa as usize), R::RW, c).unwrap();
        }

        fn unmap_range(&mut self, va: u64, len: u64) {
            let none = R::Attributes::default();
            self.0.map_range(&region(va, len), PhysicalAddress(0), none, Constraints::empty()).unwrap();
        }

        #[inline]
        fn map_one(&mut self, va: u64, pa: u64, size: u64) {
            self.0
                .map_range(&region(va, size), PhysicalAddress(pa as usize), R::RW, Constraints::empty())
                .unwrap();
        }

        #[inline]
        fn unmap_one(&mut self, va: u64, size: u64) {
            self.unmap_range(va, size);
        }

        fn translate(&self, va: u64) -> Option<u64> {
            let mut out = None;
            self.0
                .walk_range(&region(va & !(K4 - 1), K4), &mut |_, d, level| {
                    if d.is_valid() {
                        let size = 1u64 << (12 + 9 * (3 - level));
                        out = Some(d.output_address().0 as u64 + (va & (size - 1)));
                    }
                    Ok(())
                })
                .unwrap();
            out
        }
    }
}

mod x86 {
    use super::*;
    use x86_64::structures::paging::mapper::Translate;
    use x86_64::structures::paging::{
        FrameAllocator, FrameDeallocator, Mapper, OffsetPageTable, Page, PageTable, PageTableFlags,
        PhysFrame, Size1GiB, Size2MiB, Size4KiB,
    };
    use x86_64::{PhysAddr as XPhys, VirtAddr as XVirt};

    pub struct Frames;

    // SAFETY: Pool pages are unused, 4 KiB aligned frames.
    unsafe impl FrameAllocator<Size4KiB> for Frames {
        fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
            Some(PhysFrame::containing_address(XPhys::new(pool_alloc().pa.0)))
        }
    }

    impl FrameDeallocator<Size4KiB> for Frames {
        unsafe fn deallocate_frame(&mut self, frame: PhysFrame<Size4KiB>) {
            pool_free(frame.start_address().as_u64());
        }
    }

    const RW: PageTableFlags =
        PageTableFlags::PRESENT.union(PageTableFlags::WRITABLE).union(PageTableFlags::NO_EXECUTE);

    pub struct X86 {
        m: OffsetPageTable<'static>,
        root: u64,
    }

    impl Contender for X86 {
        const NAME: &'static str = "x86_64";

        fn new() -> Self {
            let root = pool_alloc();
            // SAFETY: A fresh, zeroed-below pool page used only as this PML4.
            let l4 = unsafe {
                root.va.as_ptr().write_bytes(0, 4096);
                &mut *root.va.as_ptr().cast::<PageTable>()
            };
            // SAFETY: The pool maps physical = virtual, so offset 0.
            let m = unsafe { OffsetPageTable::new(l4, XVirt::new(0)) };
            Self { m, root: root.pa.0 }
        }

        fn map_range(&mut self, va: u64, pa: u64, len: u64, blocks: bool) {
            if blocks && len % G1 == 0 && (va | pa) % G1 == 0 {
                for k in 0..len / G1 {
                    let page = Page::<Size1GiB>::containing_address(XVirt::new(va + k * G1));
                    let frame = PhysFrame::containing_address(XPhys::new(pa + k * G1));
                    // SAFETY: Maps no memory this program uses.
                    unsafe { self.m.map_to(page, frame, RW, &mut Frames) }.unwrap().ignore();
                }
            } else {
                for k in 0..len / K4 {
                    self.map_one(va + k * K4, pa + k * K4, K4);
                }
            }
        }

        fn unmap_range(&mut self, va: u64, len: u64) {
            if len % G1 == 0 {
                if let Ok((_, f)) =
                    Mapper::<Size1GiB>::unmap(&mut self.m, Page::containing_address(XVirt::new(va)))
                {
                    f.ignore();
                    return;
                }
            }
            for k in 0..len / K4 {
                self.unmap_one(va + k * K4, K4);
            }
        }

        #[inline]
        fn map_one(&mut self, va: u64, pa: u64, size: u64) {
            // SAFETY: Maps no memory this program uses.
            unsafe {
                if size == M2 {
                    let page = Page::<Size2MiB>::containing_address(XVirt::new(va));
                    let frame = PhysFrame::containing_address(XPhys::new(pa));
                    self.m.map_to(page, frame, RW, &mut Frames).unwrap().ignore();
                } else {
                    let page = Page::<Size4KiB>::containing_address(XVirt::new(va));
                    let frame = PhysFrame::containing_address(XPhys::new(pa));
                    self.m.map_to(page, frame, RW, &mut Frames).unwrap().ignore();
                }
            }
        }

        #[inline]
        fn unmap_one(&mut self, va: u64, size: u64) {
            if size == M2 {
                Mapper::<Size2MiB>::unmap(&mut self.m, Page::containing_address(XVirt::new(va)))
                    .unwrap()
                    .1
                    .ignore();
            } else {
                Mapper::<Size4KiB>::unmap(&mut self.m, Page::containing_address(XVirt::new(va)))
                    .unwrap()
                    .1
                    .ignore();
            }
        }

        fn translate(&self, va: u64) -> Option<u64> {
            self.m.translate_addr(XVirt::new(va)).map(|p| p.as_u64())
        }
    }

    impl Drop for X86 {
        fn drop(&mut self) {
            fn free_tree(t: &PageTable, level: u8) {
                for e in t.iter() {
                    let f = e.flags();
                    if level > 1
                        && f.contains(PageTableFlags::PRESENT)
                        && !f.contains(PageTableFlags::HUGE_PAGE)
                    {
                        let pa = e.addr().as_u64();
                        // SAFETY: A table this mapper created in a pool page.
                        free_tree(unsafe { identity(pa).cast::<PageTable>().as_ref() }, level - 1);
                        pool_free(pa);
                    }
                }
            }
            free_tree(self.m.level_4_table(), 4);
            pool_free(self.root);
        }
    }
}

mod ptm {
    use super::*;
    use memory_addr::{PhysAddr as MPhys, VirtAddr as MVirt};
    use page_table_multiarch::x86_64::X64PageTable;
    use page_table_multiarch::{MappingFlags, PageSize, PagingHandler};

    pub struct Handler;

    impl PagingHandler for Handler {
        fn alloc_frames(num: usize, _align: usize) -> Option<MPhys> {
            assert_eq!(num, 1);
            Some(MPhys::from(pool_alloc().pa.0 as usize))
        }

        fn dealloc_frames(paddr: MPhys, _num: usize) {
            pool_free(paddr.as_usize() as u64);
        }

        #[inline(always)]
        fn phys_to_virt(paddr: MPhys) -> MVirt {
            MVirt::from(paddr.as_usize())
        }
    }

    const RW: MappingFlags = MappingFlags::READ.union(MappingFlags::WRITE);

    pub struct Ptm(X64PageTable<Handler>);

    impl Contender for Ptm {
        const NAME: &'static str = "page_table_multiarch";

        fn new() -> Self {
            Self(X64PageTable::try_new().unwrap())
        }

        fn map_range(&mut self, va: u64, pa: u64, len: u64, blocks: bool) {
            let off = pa as usize - va as usize;
            self.0
                .cursor()
                .map_region(
                    MVirt::from(va as usize),
                    |v| MPhys::from(v.as_usize() + off),
                    len as usize,
                    RW,
                    blocks,
                )
                .unwrap();
        }

        fn unmap_range(&mut self, va: u64, len: u64) {
            self.0.cursor().unmap_region(MVirt::from(va as usize), len as usize).unwrap();
        }

        #[inline]
        fn map_one(&mut self, va: u64, pa: u64, size: u64) {
            let size = if size == M2 { PageSize::Size2M } else { PageSize::Size4K };
            self.0.cursor().map(MVirt::from(va as usize), MPhys::from(pa as usize), size, RW).unwrap();
        }

        #[inline]
        fn unmap_one(&mut self, va: u64, _size: u64) {
            self.0.cursor().unmap(MVirt::from(va as usize)).unwrap();
        }

        fn translate(&self, va: u64) -> Option<u64> {
            self.0.query(MVirt::from(va as usize)).ok().map(|(p, _, _)| p.as_usize() as u64)
        }
    }
}

use ap::Ap;
use ptm::Ptm;
use x86::X86;

type ApS1 = Ap<aarch64_paging::paging::El1And0>;
type ApS2 = Ap<aarch64_paging::paging::Stage2>;

// ---------------------------------------------------------- workloads ---

/// A workload: untimed setup, timed part, untimed check and teardown.
trait Workload {
    const ID: &'static str;
    fn setup<C: Contender>(&self, c: &mut C);
    fn run<C: Contender>(&self, c: &mut C);
    /// Checks the state after `run` (tables outstanding in the pool for a
    /// fresh contender, sample translations); `full` checks every page and
    /// may exercise the table further. Dropping the contender frees it.
    fn check<C: Contender>(&self, c: &mut C, full: bool);
}

fn assert_tables<C: Contender>(expect: usize, what: &str) {
    // Each contender's root is one pool page too.
    assert_eq!(pool_in_use(), expect, "{}: {what}: unexpected number of table pages", C::NAME);
}

fn check_pages<C: Contender>(c: &C, va: u64, pa: u64, pages: u64, full: bool) {
    let step = if full { 1 } else { (pages / 4).max(1) };
    let mut k = 0;
    while k < pages {
        assert_eq!(c.translate(va + k * K4 + 8), Some(pa + k * K4 + 8), "{}: page {k}", C::NAME);
        k += step;
    }
    assert_eq!(c.translate(va + pages * K4 - 1), Some(pa + pages * K4 - 1), "{}: last byte", C::NAME);
    assert_eq!(c.translate(va + pages * K4), None, "{}: after the range", C::NAME);
}

struct MapGig {
    blocks: bool,
}
impl Workload for MapGig {
    const ID: &'static str = "a_map_1g";
    fn setup<C: Contender>(&self, _: &mut C) {}
    fn run<C: Contender>(&self, c: &mut C) {
        c.map_range(black_box(IOVA), PA, G1, self.blocks);
    }
    fn check<C: Contender>(&self, c: &mut C, full: bool) {
        // Root, level 1 (x86: PDPT), level 2 (PD) and 512 leaf tables.
        assert_tables::<C>(515, "after mapping");
        check_pages(c, IOVA, PA, PAGES_1G as u64, full);
    }
}

struct UnmapGig;
impl Workload for UnmapGig {
    const ID: &'static str = "a_unmap_1g";
    fn setup<C: Contender>(&self, c: &mut C) {
        c.map_range(IOVA, PA, G1, false);
    }
    fn run<C: Contender>(&self, c: &mut C) {
        c.unmap_range(black_box(IOVA), G1);
    }
    fn check<C: Contender>(&self, c: &mut C, _: bool) {
        for k in [0, 1, PAGES_1G as u64 / 2, PAGES_1G as u64 - 1] {
            assert_eq!(c.translate(IOVA + k * K4), None, "{}: page {k}", C::NAME);
        }
    }
}

struct GigBlock;
impl Workload for GigBlock {
    const ID: &'static str = "a_1g_blocks_map_unmap";
    fn setup<C: Contender>(&self, _: &mut C) {}
    fn run<C: Contender>(&self, c: &mut C) {
        c.map_range(black_box(IOVA), PA, G1, true);
        black_box(c.translate(IOVA));
        c.unmap_range(IOVA, G1);
    }
    fn check<C: Contender>(&self, c: &mut C, full: bool) {
        assert_eq!(c.translate(IOVA), None, "{}", C::NAME);
        // A 1 GiB block: at most root and level 1 (aarch64-paging and x86_64
        // keep the level-1 table after the unmap).
        assert!(pool_in_use() <= 2, "{}: {} tables for one block", C::NAME, pool_in_use());
        if full {
            c.map_range(IOVA, PA, G1, true);
            assert_eq!(c.translate(IOVA + G1 - 1), Some(PA + G1 - 1), "{}", C::NAME);
            assert!(pool_in_use() <= 2, "{}: blocks not used", C::NAME);
            c.unmap_range(IOVA, G1);
        }
    }
}

struct MapPages;
impl Workload for MapPages {
    const ID: &'static str = "b_map_4k_x262144";
    fn setup<C: Contender>(&self, _: &mut C) {}
    fn run<C: Contender>(&self, c: &mut C) {
        let base = black_box(IOVA);
        for k in 0..PAGES_1G as u64 {
            c.map_one(base + k * K4, PA + k * K4, K4);
        }
    }
    fn check<C: Contender>(&self, c: &mut C, full: bool) {
        assert_tables::<C>(515, "after mapping");
        check_pages(c, IOVA, PA, PAGES_1G as u64, full);
    }
}

struct UnmapPages;
impl Workload for UnmapPages {
    const ID: &'static str = "b_unmap_4k_x262144";
    fn setup<C: Contender>(&self, c: &mut C) {
        c.map_range(IOVA, PA, G1, false);
    }
    fn run<C: Contender>(&self, c: &mut C) {
        let base = black_box(IOVA);
        for k in 0..PAGES_1G as u64 {
            c.unmap_one(base + k * K4, K4);
        }
        c.flush();
    }
    fn check<C: Contender>(&self, c: &mut C, _: bool) {
        for k in [0, 511, 512, PAGES_1G as u64 - 1] {
            assert_eq!(c.translate(IOVA + k * K4), None, "{}: page {k}", C::NAME);
        }
    }
}

struct Blocks2M;
impl Workload for Blocks2M {
    const ID: &'static str = "c_2m_x512_map_unmap";
    fn setup<C: Contender>(&self, _: &mut C) {}
    fn run<C: Contender>(&self, c: &mut C) {
        let base = black_box(IOVA);
        for k in 0..512 {
            c.map_one(base + k * M2, PA + k * M2, M2);
        }
        black_box(c.translate(base + 511 * M2));
        for k in 0..512 {
            c.unmap_one(base + k * M2, M2);
        }
        c.flush();
    }
    fn check<C: Contender>(&self, c: &mut C, full: bool) {
        assert_eq!(c.translate(IOVA), None, "{}", C::NAME);
        // 2 MiB leaves: at most root, level 1 and level 2 tables.
        assert!(pool_in_use() <= 3, "{}: {} tables for 2 MiB blocks", C::NAME, pool_in_use());
        if full {
            for k in 0..512 {
                c.map_one(IOVA + k * M2, PA + k * M2, M2);
            }
            assert!(pool_in_use() <= 3, "{}: {} tables for 2 MiB blocks", C::NAME, pool_in_use());
            let va = IOVA + 300 * M2 + 5 * K4;
            assert_eq!(c.translate(va), Some(PA + 300 * M2 + 5 * K4), "{}", C::NAME);
            for k in 0..512 {
                c.unmap_one(IOVA + k * M2, M2);
            }
            c.flush();
        }
    }
}

struct RandomPages {
    plan: Vec<(u64, u64)>,
}

impl RandomPages {
    fn new() -> Self {
        // xorshift64*, fixed seed: 10 000 distinct pages of a 4 GiB window.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            x.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        let mut seen = std::collections::HashSet::new();
        let mut plan = Vec::with_capacity(10_000);
        while plan.len() < 10_000 {
            let page = next() % (4 * G1 / K4);
            if seen.insert(page) {
                let pa = PA + (next() % (1 << 24)) * K4;
                plan.push((IOVA + page * K4, pa));
            }
        }
        Self { plan }
    }
}

impl Workload for RandomPages {
    const ID: &'static str = "d_random_4k_x10000";
    fn setup<C: Contender>(&self, _: &mut C) {}
    fn run<C: Contender>(&self, c: &mut C) {
        for &(va, pa) in black_box(&self.plan) {
            c.map_one(va, pa, K4);
        }
    }
    fn check<C: Contender>(&self, c: &mut C, full: bool) {
        let step = if full { 1 } else { 997 };
        for &(va, pa) in self.plan.iter().step_by(step) {
            assert_eq!(c.translate(va + 1), Some(pa + 1), "{}", C::NAME);
        }
        if full {
            for &(va, _) in &self.plan {
                c.unmap_one(va, K4);
            }
            c.flush();
            assert_eq!(c.translate(self.plan[0].0), None, "{}", C::NAME);
        }
    }
}

struct Split;
impl Workload for Split {
    const ID: &'static str = "e_unmap_4k_in_2m_block";
    fn setup<C: Contender>(&self, c: &mut C) {
        c.map_one(IOVA, PA, M2);
    }
    fn run<C: Contender>(&self, c: &mut C) {
        c.unmap_range(black_box(IOVA + 100 * K4), K4);
    }
    fn check<C: Contender>(&self, c: &mut C, full: bool) {
        assert_eq!(c.translate(IOVA + 100 * K4), None, "{}", C::NAME);
        assert_eq!(c.translate(IOVA + 99 * K4 + 1), Some(PA + 99 * K4 + 1), "{}", C::NAME);
        assert_eq!(c.translate(IOVA + 101 * K4), Some(PA + 101 * K4), "{}", C::NAME);
        if full {
            c.unmap_range(IOVA, 100 * K4);
            c.unmap_range(IOVA + 101 * K4, M2 - 101 * K4);
        }
    }
}

/// Benchmarks `w` for `C`, after one run with a full check.
fn bench<W: Workload, C: Contender>(g: &mut BenchmarkGroup<'_, WallTime>, w: &W) {
    let mut checked = false;
    g.bench_function(C::NAME, |b| {
        let start = pool_in_use();
        if !checked {
            let mut c = C::new();
            w.setup(&mut c);
            w.run(&mut c);
            w.check(&mut c, true);
            drop(c);
            assert_eq!(pool_in_use(), start, "{}: {} leaked table pages", C::NAME, W::ID);
            checked = true;
        }
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut c = C::new();
                w.setup(&mut c);
                let t = Instant::now();
                w.run(&mut c);
                total += t.elapsed();
                w.check(&mut c, false);
                drop(c);
            }
            total
        })
    });
}

fn group<'a>(c: &'a mut Criterion, w: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(w);
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g
}

fn all<W: Workload>(c: &mut Criterion, w: &W, name: &str, with_x86_ptm: bool) {
    let mut g = group(c, name);
    bench::<W, Ours<Stage1>>(&mut g, w);
    bench::<W, ApS1>(&mut g, w);
    bench::<W, Ours<Stage2>>(&mut g, w);
    bench::<W, ApS2>(&mut g, w);
    if with_x86_ptm {
        bench::<W, X86>(&mut g, w);
        bench::<W, Ptm>(&mut g, w);
    }
    g.finish();
}

/// Not a timing: how many ranges a gather holds after unmapping 1 GiB of
/// 4 KiB pages in one call (should be 1).
fn gather_report() {
    let mut t = Vmsav8Table::new(Stage2, TableConfig::new(Granule::Size4K, 48, 48), Shared).unwrap();
    t.map_pages(Iova(IOVA), PhysAddr(PA), K4, PAGES_1G, Prot::RW).unwrap();
    let mut g = IotlbGather::new();
    t.unmap_pages(Iova(IOVA), K4, PAGES_1G, &mut g).unwrap();
    println!(
        "gather after unmapping 1 GiB of 4 KiB pages in one call: {} range(s) {:?}, tables_removed={}, {} table pages to free",
        g.ranges().len(),
        g.ranges(),
        g.tables_removed(),
        g.freed_tables()
    );
    assert_eq!(g.ranges().len(), 1);
    t.complete(&mut g).unwrap();
    // The same 1 GiB unmapped page by page into one gather.
    t.map_pages(Iova(IOVA), PhysAddr(PA), K4, PAGES_1G, Prot::RW).unwrap();
    for k in 0..PAGES_1G as u64 {
        t.unmap_pages(Iova(IOVA + k * K4), K4, 1, &mut g).unwrap();
    }
    println!("gather after 262144 single-page unmaps: {} range(s)", g.ranges().len());
    assert_eq!(g.ranges().len(), 1);
    t.complete(&mut g).unwrap();
}

fn benches(c: &mut Criterion) {
    gather_report();
    all(c, &MapGig { blocks: false }, "a_map_1g_4k", true);
    all(c, &UnmapGig, UnmapGig::ID, true);
    all(c, &GigBlock, GigBlock::ID, true);
    all(c, &MapPages, MapPages::ID, true);
    all(c, &UnmapPages, UnmapPages::ID, true);
    all(c, &Blocks2M, Blocks2M::ID, true);
    all(c, &RandomPages::new(), RandomPages::ID, true);
    // x86_64 cannot split a huge page and page_table_multiarch unmaps the
    // whole 2 MiB page: only the ARM tables take part.
    all(c, &Split, Split::ID, false);
}

criterion_group! {
    name = pgtable;
    config = Criterion::default().without_plots();
    targets = benches
}
criterion_main!(pgtable);
