//! The kernel heap: a bump allocator over a static arena, for the
//! `alloc` users among the driver crates (`iommu-common`'s page tables and
//! gathers). Nothing is ever returned: a test run allocates a few hundred
//! KiB and ends.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

const HEAP_SIZE: usize = 4 << 20;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; HEAP_SIZE]>);

// SAFETY: the bytes are handed out in disjoint blocks (the atomic `next`),
// never shared.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; HEAP_SIZE]));

struct Bump {
    next: AtomicUsize,
}

// SAFETY: `alloc` returns disjoint, suitably aligned blocks inside the arena
// or null; `dealloc` does nothing, which is always allowed.
unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = ARENA.0.get() as usize;
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            let start = (base + cur).next_multiple_of(layout.align()) - base;
            let Some(end) = start.checked_add(layout.size()).filter(|&e| e <= HEAP_SIZE) else {
                return core::ptr::null_mut();
            };
            match self.next.compare_exchange(cur, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (ARENA.0.get() as *mut u8).wrapping_add(start),
                Err(now) => cur = now,
            }
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static HEAP: Bump = Bump { next: AtomicUsize::new(0) };
