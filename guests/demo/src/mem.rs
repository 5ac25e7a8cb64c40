//! Guest RAM this program reads and writes directly: the victim's pattern
//! region, the DMA buffers, the fault record page. The raw pointers live here
//! and nowhere else.
//!
//! With the MMU off every data access is Device-nGnRnE: accesses must be
//! aligned and the compiler must not merge, split or drop them, since a
//! device (the edu DMA engine, the hypervisor) writes this memory behind the
//! program's back. So all accesses are volatile, aligned 64-bit words.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// Bytes per word of a [`Ram`] range.
pub const WORD: usize = 8;
/// Bytes of one DMA buffer (and of edu's internal buffer).
pub const PAGE: usize = 4096;

/// A range of guest RAM accessed as 64-bit words. Guest-physical addresses
/// are identity mapped (MMU off), so the address is also what a device is
/// given for DMA.
pub struct Ram {
    base: *mut u64,
    words: usize,
}

impl Ram {
    /// The `len` bytes at `base`.
    ///
    /// # Safety
    ///
    /// `base..base + len` is RAM that no Rust reference points into while
    /// this value exists (it is not the image, the stacks or the device
    /// tree), and `base` is 8-byte aligned.
    pub unsafe fn new(base: u64, len: usize) -> Self {
        assert!(base as usize % WORD == 0, "Ram base must be word aligned");
        Self { base: base as usize as *mut u64, words: len / WORD }
    }

    /// The first byte's address.
    pub fn base(&self) -> u64 {
        self.base as usize as u64
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.words * WORD
    }

    /// Word `i` (byte offset `i * 8`).
    pub fn read(&self, i: usize) -> u64 {
        assert!(i < self.words, "word index out of range");
        // SAFETY: in range and aligned (checked above and in `new`); the
        // memory is ours per `new`'s contract.
        unsafe { self.base.add(i).read_volatile() }
    }

    /// Writes word `i`.
    pub fn write(&self, i: usize, value: u64) {
        assert!(i < self.words, "word index out of range");
        // SAFETY: as in `read`.
        unsafe { self.base.add(i).write_volatile(value) }
    }

    /// Writes `f(byte offset)` to every word.
    pub fn fill(&self, f: impl Fn(u64) -> u64) {
        (0..self.words).for_each(|i| self.write(i, f((i * WORD) as u64)));
    }

    /// The first word that differs from `f(byte offset)`: (byte offset,
    /// expected, found).
    pub fn first_mismatch(&self, f: impl Fn(u64) -> u64) -> Option<(u64, u64, u64)> {
        (0..self.words).find_map(|i| {
            let off = (i * WORD) as u64;
            let (want, got) = (f(off), self.read(i));
            (want != got).then_some((off, want, got))
        })
    }

    /// How many words equal `f(byte offset)`.
    pub fn count_matches(&self, f: impl Fn(u64) -> u64) -> usize {
        (0..self.words).filter(|&i| self.read(i) == f((i * WORD) as u64)).count()
    }
}

/// The DMA buffers, in `.bss`: a source page, then a destination page with a
/// guard page on each side (to see a DMA that writes more than it should).
#[repr(C, align(4096))]
struct DmaArea(UnsafeCell<[u64; 4 * PAGE / WORD]>);

// SAFETY: only reached through `dma_buffers`, which hands the area out once.
unsafe impl Sync for DmaArea {}

static DMA_AREA: DmaArea = DmaArea(UnsafeCell::new([0; 4 * PAGE / WORD]));
static DMA_TAKEN: AtomicBool = AtomicBool::new(false);

/// The DMA buffers (see [`dma_buffers`]).
pub struct DmaBuffers {
    /// A page the device reads from.
    pub src: Ram,
    /// The page before `dst`.
    pub guard_before: Ram,
    /// A page the device writes to.
    pub dst: Ram,
    /// The page after `dst`.
    pub guard_after: Ram,
}

/// The DMA buffers; `None` after the first call. One CPU only (a plain load
/// and store, no exclusive access: see the module docs).
pub fn dma_buffers() -> Option<DmaBuffers> {
    if DMA_TAKEN.load(Ordering::Relaxed) {
        return None;
    }
    DMA_TAKEN.store(true, Ordering::Relaxed);
    let base = DMA_AREA.0.get() as usize as u64;
    let page = |n: u64| {
        // SAFETY: page `n` of DMA_AREA, handed out once (DMA_TAKEN), and
        // never referenced otherwise; 4096-byte aligned.
        unsafe { Ram::new(base + n * PAGE as u64, PAGE) }
    };
    Some(DmaBuffers { src: page(0), guard_before: page(1), dst: page(2), guard_after: page(3) })
}

/// Orders earlier memory accesses before later ones, the device's included
/// (DSB SY: a DMA must see the buffer it is started on, and the CPU must read
/// what a finished DMA wrote).
pub fn dsb() {
    aarch64_cpu::asm::barrier::dsb(aarch64_cpu::asm::barrier::SY);
}
