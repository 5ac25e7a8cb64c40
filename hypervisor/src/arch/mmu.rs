//! The hypervisor's own EL2 stage-1 translation: an identity map of RAM and
//! of the devices the device tree names, nothing else, so a stray access is a
//! translation fault that the exception report names.
//!
//! 4 KiB granule, 48-bit VA (T0SZ = 16, walks start at level 0), tables from a
//! static pool (this runs before the heap exists). The image itself is mapped
//! W^X: text read-only executable, rodata read-only, the rest never executable.

use aarch64_cpu::registers::{
    ReadWriteable, Readable, Writeable, ID_AA64MMFR0_EL1, MAIR_EL2, SCTLR_EL2, TCR_EL2, TTBR0_EL2,
};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// What a mapped range is.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum Attr {
    /// Normal write-back memory, read-write, never executable.
    RamRw,
    /// Normal memory, read-only, executable: the image's text.
    RamRx,
    /// Normal memory, read-only, never executable.
    RamRo,
    /// Device-nGnRE, read-write, never executable.
    Device,
}

/// Why a mapping could not be made.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum MapError {
    /// The static table pool is used up.
    OutOfTables,
    /// Two ranges with different attributes claim the same page.
    Conflict {
        /// The page.
        addr: u64,
    },
    /// The range leaves the 48-bit space.
    OutOfRange,
}

const ENTRIES: usize = 512;
const POOL_TABLES: usize = 48;
const PAGE: u64 = 0x1000;

const DESC_VALID: u64 = 1 << 0;
const DESC_TABLE: u64 = 1 << 1; // table at levels 0-2, page at level 3
const ATTR_INDX_SHIFT: u64 = 2;
const AP_RO: u64 = 1 << 7; // AP[2]: read-only at EL2
const SH_INNER: u64 = 0b11 << 8;
const AF: u64 = 1 << 10;
const XN: u64 = 1 << 54; // EL2 (non-VHE) XN
const OA_MASK: u64 = 0x0000_ffff_ffff_f000;

// MAIR_EL2 indices.
const MAIR_DEVICE_NGNRE: u64 = 0;
const MAIR_NORMAL_WB: u64 = 1;

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

struct Pool {
    tables: UnsafeCell<[Table; POOL_TABLES]>,
    used: UnsafeCell<usize>,
}

// SAFETY: the pool is written only by the primary CPU in `build`, before any
// other CPU runs; afterwards it is only read (by the table walker).
unsafe impl Sync for Pool {}

static POOL: Pool =
    Pool { tables: UnsafeCell::new([const { Table([0; ENTRIES]) }; POOL_TABLES]), used: UnsafeCell::new(0) };
static BUILT: AtomicBool = AtomicBool::new(false);

/// Builds the identity map. Call once, on the primary CPU, before
/// [`enable`], with no other CPU running.
pub struct Builder {
    _private: (),
}

impl Builder {
    /// Starts a fresh map (the root table is the pool's first table).
    pub fn new() -> Self {
        assert!(!BUILT.load(Ordering::Acquire), "EL2 map built twice");
        // SAFETY: single CPU, before the map is live; we own the pool.
        unsafe { *POOL.used.get() = 1 };
        Self { _private: () }
    }

    fn table(index: usize) -> *mut Table {
        // SAFETY: `index` < POOL_TABLES is checked by the callers via `alloc`.
        unsafe { (POOL.tables.get() as *mut Table).add(index) }
    }

    fn alloc() -> Result<*mut Table, MapError> {
        // SAFETY: single CPU during building, see `Builder::new`.
        let used = unsafe { &mut *POOL.used.get() };
        if *used >= POOL_TABLES {
            return Err(MapError::OutOfTables);
        }
        *used += 1;
        Ok(Self::table(*used - 1))
    }

    fn leaf_bits(attr: Attr) -> u64 {
        match attr {
            Attr::RamRw => (MAIR_NORMAL_WB << ATTR_INDX_SHIFT) | SH_INNER | AF | XN,
            Attr::RamRx => (MAIR_NORMAL_WB << ATTR_INDX_SHIFT) | SH_INNER | AF | AP_RO,
            Attr::RamRo => (MAIR_NORMAL_WB << ATTR_INDX_SHIFT) | SH_INNER | AF | AP_RO | XN,
            Attr::Device => (MAIR_DEVICE_NGNRE << ATTR_INDX_SHIFT) | AF | XN,
        }
    }

    /// Identity maps `[start, end)` (rounded out to pages) with `attr`, using
    /// 1 GiB and 2 MiB blocks where alignment allows. Re-mapping a page with
    /// the same attributes is allowed (device regions may share a block).
    pub fn map(&mut self, start: u64, end: u64, attr: Attr) -> Result<(), MapError> {
        let start = start & !(PAGE - 1);
        let end = end.checked_add(PAGE - 1).ok_or(MapError::OutOfRange)? & !(PAGE - 1);
        if end > 1 << 48 {
            return Err(MapError::OutOfRange);
        }
        let mut addr = start;
        while addr < end {
            addr = self.map_one(addr, end, attr)?;
        }
        Ok(())
    }

    /// Maps the largest block that starts at `addr` and fits before `end`;
    /// returns the address after it.
    fn map_one(&mut self, addr: u64, end: u64, attr: Attr) -> Result<u64, MapError> {
        let leaf = Self::leaf_bits(attr);
        let mut table = Self::table(0);
        for level in 0..4u32 {
            let shift = 39 - 9 * level;
            let size = 1u64 << shift;
            let idx = ((addr >> shift) & 0x1ff) as usize;
            // SAFETY: `table` points into the pool, owned by this builder.
            let entry = unsafe { &mut (*table).0[idx] };
            let block_ok = level >= 1 && addr % size == 0 && addr + size <= end;
            if *entry & DESC_VALID == 0 {
                if block_ok {
                    *entry = addr | leaf | DESC_VALID | if level == 3 { DESC_TABLE } else { 0 };
                    return Ok(addr + size);
                }
                let next = Self::alloc()?;
                *entry = (next as u64) | DESC_TABLE | DESC_VALID;
                table = next;
                continue;
            }
            let is_table = level < 3 && *entry & DESC_TABLE != 0;
            if !is_table {
                // An existing block or page: same attributes is fine, else conflict.
                let existing = *entry & !OA_MASK & !(DESC_TABLE | DESC_VALID);
                if existing != leaf {
                    return Err(MapError::Conflict { addr });
                }
                return Ok((addr | (size - 1)) + 1);
            }
            table = (*entry & OA_MASK) as *mut Table;
        }
        unreachable!("level 3 always returns")
    }

    /// Finishes the map; [`enable`] may now be called on any CPU.
    pub fn finish(self) {
        BUILT.store(true, Ordering::Release);
    }
}

/// Turns on this CPU's EL2 MMU and caches with the finished identity map.
pub fn enable() {
    assert!(BUILT.load(Ordering::Acquire), "EL2 map not built");
    MAIR_EL2.write(
        MAIR_EL2::Attr0_Device::nonGathering_nonReordering_EarlyWriteAck
            + MAIR_EL2::Attr1_Normal_Outer::WriteBack_NonTransient_ReadWriteAlloc
            + MAIR_EL2::Attr1_Normal_Inner::WriteBack_NonTransient_ReadWriteAlloc,
    );
    // PS: the CPU's physical range, capped at 48 bits (we use no 52-bit OA).
    let parange = ID_AA64MMFR0_EL1.read(ID_AA64MMFR0_EL1::PARange).min(0b101);
    TCR_EL2.write(
        TCR_EL2::T0SZ.val(16)
            + TCR_EL2::IRGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL2::ORGN0::WriteBack_ReadAlloc_WriteAlloc_Cacheable
            + TCR_EL2::SH0::Inner
            + TCR_EL2::TG0::KiB_4
            + TCR_EL2::PS.val(parange),
    );
    TTBR0_EL2.set_baddr(Builder::table(0) as u64);
    // The tables were written with plain stores (MMU off on this CPU or on the
    // builder); complete them and drop stale TLB entries before the walker
    // reads them (ARM ARM D8.14, "using break-before-make").
    // SAFETY: barriers and a TLB invalidation of our own regime.
    unsafe {
        core::arch::asm!("dsb ish", "tlbi alle2", "dsb ish", "isb", options(nostack));
    }
    SCTLR_EL2.modify(
        SCTLR_EL2::M::Enable + SCTLR_EL2::C::Cacheable + SCTLR_EL2::I::Cacheable + SCTLR_EL2::WXN::Enable,
    );
    aarch64_cpu::asm::barrier::isb(aarch64_cpu::asm::barrier::SY);
}

/// Asks the MMU (AT S1E2R / S1E2W) whether `addr` translates for a read or a
/// write at EL2 right now; returns the physical address if it does.
pub fn probe(addr: u64, write: bool) -> Option<u64> {
    use aarch64_cpu::registers::PAR_EL1;
    // SAFETY: address translation instructions only update PAR_EL1.
    unsafe {
        if write {
            core::arch::asm!("at s1e2w, {}", "isb", in(reg) addr, options(nostack));
        } else {
            core::arch::asm!("at s1e2r, {}", "isb", in(reg) addr, options(nostack));
        }
    }
    let par = PAR_EL1.get();
    (par & 1 == 0).then_some((par & OA_MASK) | (addr & (PAGE - 1)))
}

/// An address that is mapped nowhere (for fault-injection tests).
pub fn unmapped_address() -> Option<u64> {
    (1..256u64).map(|k| k << 32).find(|&a| probe(a, false).is_none())
}
