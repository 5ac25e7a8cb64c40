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
