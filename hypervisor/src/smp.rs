//! Bringing up the secondary CPUs the device tree lists: PSCI `CPU_ON` where
//! the DT says `enable-method = "psci"` (QEMU virt), the spin table where it
//! says `"spin-table"` (Raspberry Pi 4 firmware). Each secondary enables the
//! shared EL2 map, reports in, and waits for work.

use crate::arch::{boot, mmu, psci};
use aarch64_cpu::registers::{Readable, CNTFRQ_EL0, CNTPCT_EL0, MPIDR_EL1};
use boards::platform::EnableMethod;
use boards::Platform;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// MPIDR affinity of each logical CPU (+1; 0: unknown), for SGIs.
static MPIDRS: [AtomicU64; boot::MAX_CPUS] = [const { AtomicU64::new(0) }; boot::MAX_CPUS];

/// The MPIDR affinity of logical CPU `cpu`, once it came online.
pub fn mpidr_of(cpu: usize) -> Option<u64> {
    MPIDRS.get(cpu)?.load(Ordering::Acquire).checked_sub(1)
}

/// Records this CPU's affinity under its logical index.
pub fn record_self(cpu: usize) {
    if let Some(m) = MPIDRS.get(cpu) {
        m.store(affinity(MPIDR_EL1.get()) + 1, Ordering::Release);
    }
}

extern "C" {
    fn secondary_entry();
    fn spin_table_entry();
}

/// CPUs that have reported in (the boot CPU included).
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

/// The affinity fields of an MPIDR, as the DT `reg` of a CPU gives them.
fn affinity(mpidr: u64) -> u64 {
    mpidr & 0xff_00ff_ffff
}

/// Cleans and invalidates the cache line holding `addr` to the point of
/// coherency, for a reader whose caches (and MMU) are still off.
fn clean_to_poc(addr: u64) {
    // SAFETY: data cache maintenance by VA on a mapped address; no memory is changed.
    unsafe { core::arch::asm!("dc civac, {}", "dsb sy", in(reg) addr, options(nostack)) };
}

fn wait_online(target: usize, budget_us: u64) -> bool {
    let freq = CNTFRQ_EL0.get().max(1);
    let deadline = CNTPCT_EL0.get() + budget_us * freq / 1_000_000;
    while CNTPCT_EL0.get() < deadline {
        if ONLINE.load(Ordering::Acquire) >= target {
            return true;
        }
        core::hint::spin_loop();
    }
    ONLINE.load(Ordering::Acquire) >= target
}

/// Starts every other CPU of `platform`, one at a time; returns how many CPUs
/// are online afterwards. A CPU that does not report in within the budget is
/// logged and skipped, never waited for forever.
pub fn start_secondaries(platform: &Platform<'_>) -> usize {
    let me = affinity(MPIDR_EL1.get());
    let mut index = 0;
    for cpu in platform.cpus.iter() {
        if affinity(cpu.mpidr) == me {
            continue;
        }
        index += 1;
        if index >= boot::MAX_CPUS {
            defmt::warn!(
                "cpu MPIDR {=u64:#x}: no stack for more than {=usize} CPUs, left off",
                cpu.mpidr,
                boot::MAX_CPUS
            );
            continue;
        }
        let target = online() + 1;
        let started = match cpu.enable {
            EnableMethod::Psci => psci::cpu_on(cpu.mpidr, secondary_entry as *const () as u64, index as u64)
                .map_err(|e| defmt::error!("cpu {=usize}: PSCI CPU_ON refused: {}", index, e))
                .is_ok(),
            EnableMethod::SpinTable { release_addr: None } => {
                defmt::error!("cpu {=usize}: spin-table CPU without a release address", index);
                false
            }
            EnableMethod::SpinTable { release_addr: Some(release_addr) } => {
                boot::SPIN_TABLE_CPU.store(index as u64, Ordering::Release);
                clean_to_poc(&boot::SPIN_TABLE_CPU as *const _ as u64);
                // SAFETY: the DT names this word as the CPU's release address,
                // inside RAM that is identity mapped.
                unsafe {
                    core::ptr::write_volatile(release_addr as *mut u64, spin_table_entry as *const () as u64)
                };
                clean_to_poc(release_addr);
                aarch64_cpu::asm::sev();
                true
            }
            _ => {
                defmt::warn!("cpu {=usize}: unsupported enable method", index);
                false
            }
        };
        if started && !wait_online(target, 500_000) {
            defmt::error!("cpu {=usize} (MPIDR {=u64:#x}) did not come online", index, cpu.mpidr);
        }
    }
    online()
}

/// Where a secondary CPU lands after `boot.rs` gave it a stack.
pub fn secondary_main(index: usize) -> ! {
    crate::log::set_cpu_index(index);
    mmu::enable();
    // Log before reporting in, so the line is out before the primary moves on.
    defmt::info!("cpu {=usize} online (MPIDR {=u64:#x})", index, affinity(MPIDR_EL1.get()));
    record_self(index);
    crate::init_cpu_interrupts(index);
    ONLINE.fetch_add(1, Ordering::AcqRel);
    crate::vcpu::idle(index)
}
