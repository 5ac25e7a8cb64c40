//! Data-cache maintenance to the point of coherency, for memory the
//! hypervisor writes through its cacheable map and a guest then reads with
//! its MMU (and so its caches) still off: images, device trees, the fault
//! record page.

/// The smallest data-cache line (CTR_EL0.DminLine, log2 of words).
fn line() -> u64 {
    let ctr: u64;
    // SAFETY: reading CTR_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    4 << ((ctr >> 16) & 0xf)
}

/// Cleans `[addr, addr + len)` to the point of coherency (DC CVAC).
pub fn clean_range(addr: u64, len: u64) {
    let step = line();
    let mut a = addr & !(step - 1);
    while a < addr.saturating_add(len) {
        // SAFETY: cache maintenance by VA on mapped memory changes no data.
        unsafe { core::arch::asm!("dc cvac, {}", in(reg) a, options(nostack)) };
        a += step;
    }
    // SAFETY: completes the maintenance before anything that depends on it.
    unsafe { core::arch::asm!("dsb sy", options(nostack)) };
}

/// Zeroes `[addr, addr + len)` with DC ZVA where the CPU allows it (a whole
/// block per instruction, much cheaper than stores, notably under QEMU),
/// plain stores otherwise and for unaligned edges.
///
/// # Safety
/// The range must be normal memory mapped read-write that nothing else uses.
pub unsafe fn zero_range(addr: u64, len: u64) {
    let dczid: u64;
    // SAFETY: reading DCZID_EL0 has no side effects.
    unsafe { core::arch::asm!("mrs {}, dczid_el0", out(reg) dczid, options(nomem, nostack)) };
    let end = addr.saturating_add(len);
    let block = 4u64 << (dczid & 0xf);
    if dczid & (1 << 4) != 0 || block > 2048 {
        // SAFETY: the caller's contract.
        unsafe { core::ptr::write_bytes(addr as *mut u8, 0, len as usize) };
        return;
    }
    let first = addr.next_multiple_of(block).min(end);
    let last = (end / block * block).max(first);
    // SAFETY: the caller's contract covers the edges and the blocks.
    unsafe {
        core::ptr::write_bytes(addr as *mut u8, 0, (first - addr) as usize);
        let mut a = first;
        while a < last {
            core::arch::asm!("dc zva, {}", in(reg) a, options(nostack));
            a += block;
        }
        core::ptr::write_bytes(last as *mut u8, 0, (end - last) as usize);
    }
}
