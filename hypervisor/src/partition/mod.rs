//! Partitions: a guest with its own CPUs, memory, devices and stage-2
//! tables, built once at boot from the configuration ([`build`]) and never
//! resized.
//!
//! The stage-2 table of a partition is shared by its CPUs (VTTBR_EL2) and
//! by the SMMU stream table entries of its devices (S2TTB, same VMID), so a
//! guest-physical address means the same thing to the guest's CPUs and to
//! its devices, and both stop at the same walls.

pub mod build;
pub mod embedded;
pub mod image;
pub mod watch;

use crate::arch::exception::{FaultStatus, TrapFrame};
use crate::vcpu;
use crate::vdev::ecam::VirtualEcam;
use crate::vdev::gicv3::VirtualGicV3;
use crate::vdev::mmio::Access;
use crate::vdev::pl011::VirtualPl011;
use alloc::string::String;
use alloc::vec::Vec;
use boards::config::FaultPolicy;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use iommu_common::pgtable::vmsav8::S2Table;
use iommu_common::pgtable::PoolAllocator;
use spin::{Mutex, Once};

/// A PCI function assigned to a partition.
pub struct AssignedPci {
    /// The configuration's name for it.
    pub name: String,
    /// Where it sits.
    pub bdf: crate::pci::Bdf,
    /// Its StreamID at the SMMU.
    pub sid: u32,
    /// Its INTx interrupt (GIC INTID), if it has one.
    pub intx: Option<u32>,
}

/// What is reloaded on SYSTEM_RESET.
pub struct BootImage {
    /// The kernel image bytes.
    pub image: &'static [u8],
    /// Host address the image is copied to.
    pub image_pa: u64,
    /// The generated device tree.
    pub dtb: Vec<u8>,
    /// Host address the device tree is copied to.
    pub dtb_pa: u64,
    /// Guest entry point and x0.
    pub entry: u64,
    /// Guest address of the device tree (x0).
    pub dtb_ipa: u64,
}

/// Limits fault lines per partition so a storm can neither flood the log
/// nor stall the CPU that reports it: at most [`FAULT_LINES_PER_SECOND`]
/// lines a second, the rest counted and summarised.
pub struct RateLimiter {
    window_start_us: AtomicU64,
    in_window: AtomicU32,
    suppressed_in_window: AtomicU32,
    /// Every line suppressed since boot.
    pub suppressed_total: AtomicU32,
}

/// Why a partition stops when its guest asked for it (SYSTEM_OFF).
pub const GUEST_OFF: &str = "the guest asked for SYSTEM_OFF";

/// Fault lines a partition may log per second.
pub const FAULT_LINES_PER_SECOND: u32 = 8;

impl RateLimiter {
    const fn new() -> Self {
        Self {
            window_start_us: AtomicU64::new(0),
            in_window: AtomicU32::new(0),
            suppressed_in_window: AtomicU32::new(0),
            suppressed_total: AtomicU32::new(0),
        }
    }

    /// Whether one more line may be logged now; `summary(n)` is called first
    /// when a new window starts after `n` suppressed lines.
    pub fn admit(&self, summary: impl FnOnce(u32)) -> bool {
        let now = crate::log::uptime_us();
        let start = self.window_start_us.load(Ordering::Acquire);
        if now.saturating_sub(start) >= 1_000_000
            && self.window_start_us.compare_exchange(start, now, Ordering::AcqRel, Ordering::Acquire).is_ok()
        {
            self.in_window.store(0, Ordering::Release);
            let dropped = self.suppressed_in_window.swap(0, Ordering::AcqRel);
            if dropped > 0 {
                summary(dropped);
            }
        }
        if self.in_window.fetch_add(1, Ordering::AcqRel) < FAULT_LINES_PER_SECOND {
            true
        } else {
            self.suppressed_in_window.fetch_add(1, Ordering::AcqRel);
            self.suppressed_total.fetch_add(1, Ordering::AcqRel);
            false
        }
    }
}

/// One partition.
pub struct Partition {
    index: usize,
    /// The partition as configured.
    pub config: boards::config::Partition,
    vmid: u16,
    vttbr: u64,
    vtcr: u64,
    /// Kept alive: the CPUs and the SMMU walk these tables.
    _stage2: Mutex<S2Table<PoolAllocator>>,
    /// Physical CPU of each vCPU.
    cpus: Vec<usize>,
    boot: BootImage,
    /// Guest and host address of the fault record page.
    pub fault_page: Option<(u64, u64)>,
    console: Option<VirtualPl011>,
    /// The INTID of its virtual console's interrupt.
    console_irq: Option<u32>,
    ecam: Option<VirtualEcam>,
    gic: Option<VirtualGicV3>,
    /// Its PCI functions.
    pub pci: Vec<AssignedPci>,
    stopped: AtomicBool,
    /// Fault lines in the log.
    pub limiter: RateLimiter,
    /// SMMU faults of its devices so far.
    pub dma_faults: AtomicU32,
}

static PARTITIONS: Once<Vec<Partition>> = Once::new();
/// Partitions that have not stopped.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// Partition `index`, once they are built.
pub fn get(index: usize) -> Option<&'static Partition> {
    PARTITIONS.get()?.get(index)
}

/// Every partition (empty before [`build`] ran).
pub fn all() -> &'static [Partition] {
    PARTITIONS.get().map_or(&[], |v| v.as_slice())
}

/// The partition owning the device with StreamID `sid`.
pub fn owner_of_stream(sid: u32) -> Option<(&'static Partition, &'static AssignedPci)> {
    all().iter().find_map(|p| p.pci.iter().find(|d| d.sid == sid).map(|d| (p, d)))
}

impl Partition {
    /// Its position in the configuration.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Its VMID (CPU and SMMU).
    pub fn vmid(&self) -> u16 {
        self.vmid
    }

    /// VTTBR_EL2 for its CPUs.
    pub fn vttbr(&self) -> u64 {
        self.vttbr
    }

    /// VTCR_EL2 for its CPUs.
    pub fn vtcr(&self) -> u64 {
        self.vtcr
    }

    /// Its number of vCPUs.
    pub fn vcpus(&self) -> usize {
        self.cpus.len()
    }

    /// The physical CPU of vCPU `v`.
    pub fn cpu_of(&self, v: usize) -> Option<usize> {
        self.cpus.get(v).copied()
    }

    /// The vCPU a guest MPIDR names (VMPIDR_EL2 gives vCPU `n` Aff0 = `n`).
    pub fn vcpu_from_mpidr(&self, mpidr: u64) -> Option<usize> {
        let v = usize::try_from(mpidr & 0xff_00ff_ffff).ok()?;
        (v < self.cpus.len()).then_some(v)
    }

    /// Whether `ipa` is in the partition's RAM.
    pub fn contains_ipa(&self, ipa: u64) -> bool {
        self.config.ipa_to_pa(boards::config::Ipa(ipa)).is_some()
    }

    /// Whether it has stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Serves a trapped access to an emulated device; false if nothing is
    /// emulated at that address.
    pub fn emulate(&self, acc: &Access, x: &mut [u64; 31]) -> bool {
        if let Some(uart) = self.console.as_ref().filter(|u| u.claims(acc.ipa)) {
            let raise = if acc.write {
                uart.write(acc.ipa, acc.store_value(x), self.name())
            } else {
                acc.complete_load(x, uart.read(acc.ipa));
                // More typed bytes wait after this one: keep it pending.
                uart.rx_interrupt()
            };
            if raise {
                self.raise_console_irq();
            }
            return true;
        }
        if let Some(gic) = self.gic.as_ref().filter(|g| g.claims(acc.ipa)) {
            if acc.write {
                gic.write(acc.ipa, acc.size, acc.store_value(x));
            } else {
                acc.complete_load(x, gic.read(acc.ipa, acc.size));
            }
            return true;
        }
        if let Some(ecam) = self.ecam.as_ref().filter(|e| e.claims(acc.ipa)) {
            if acc.write {
                ecam.write(acc.ipa, acc.size, acc.store_value(x));
            } else {
                acc.complete_load(x, ecam.read(acc.ipa, acc.size));
            }
            return true;
        }
        false
    }

    /// Whether the partition has a virtual console (it can take input).
    pub fn has_virtual_console(&self) -> bool {
        self.console.is_some()
    }

    /// A byte the user typed, for its virtual console.
    pub fn console_input(&self, byte: u8) {
        let Some(uart) = &self.console else { return };
        if !uart.push_input(byte) {
            return;
        }
        if uart.rx_interrupt() {
            self.raise_console_irq();
        }
    }

    fn raise_console_irq(&self) {
        if let (Some(intid), Some(cpu)) = (self.console_irq, self.cpu_of(0)) {
            vcpu::request_virq(cpu, intid);
        }
    }

    /// Logs `line` unless the partition's fault lines are being rate
    /// limited.
    pub fn report_rate_limited(&self, line: impl FnOnce()) {
        let name = self.name();
        if self.limiter.admit(|n| {
            defmt::warn!("partition {=str}: {=u32} more fault reports suppressed in the last second", name, n)
        }) {
            line();
        }
    }

    /// A guest access that is neither mapped nor emulated: reported, then
    /// the fault policy decides (stop the partition, or report the abort to
    /// the guest as a synchronous external abort, as a bus error would be).
    pub fn guest_fault(&self, frame: &mut TrapFrame, kind: &str, write: bool, ipa: u64, status: FaultStatus) {
        self.report_rate_limited(|| {
            defmt::warn!(
                "partition {=str}: CPU {=str} {=str} of IPA {=u64:#x} outside its memory and devices ({}) at PC {=u64:#x}",
                self.name(),
                kind,
                if write { "write" } else { "read" },
                ipa,
                status,
                frame.elr
            )
        });
        if self.config.fault_policy == FaultPolicy::StopPartition {
            self.stop("fault policy stop-partition");
        }
        if !inject_external_abort(frame, kind == "instruction", write) {
            self.stop("a fault the guest has no exception vectors for");
        }
    }

    /// Stops every vCPU of the partition; called on one of its own CPUs,
    /// which parks.
    pub fn stop(&self, why: &str) -> ! {
        self.stop_remote(why);
        vcpu::park()
    }

    /// Stops the partition from any CPU: its devices' DMA is blocked and each
    /// of its CPUs is asked to park.
    pub fn stop_remote(&self, why: &str) {
        if self.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        if why == GUEST_OFF {
            defmt::info!("partition {=str} stopped: {=str}", self.name(), why);
        } else {
            defmt::warn!("partition {=str} stopped: {=str}", self.name(), why);
        }
        let faults = self.dma_faults.load(Ordering::Acquire);
        if faults > 0 {
            defmt::info!(
                "partition {=str}: {=u32} DMA fault record(s) from its devices, {=u32} trace line(s) suppressed",
                self.name(),
                faults,
                self.limiter.suppressed_total.load(Ordering::Acquire)
            );
        }
        crate::smmu_host::block_partition(self);
        // This CPU too, if it runs one of the vCPUs: its request is served
        // on the way back to the guest, after whatever called this.
        for &cpu in &self.cpus {
            if vcpu::power(cpu) != vcpu::Power::Off {
                vcpu::request_stop(cpu);
            }
        }
        if LIVE.fetch_sub(1, Ordering::AcqRel) == 1 {
            all_stopped();
        }
    }

    /// SYSTEM_RESET: stops the other vCPUs, reloads the image and device
    /// tree, and starts vCPU 0 again. RAM is not cleared (as a warm reset).
    pub fn reset(&self) -> ! {
        let me = vcpu::this_cpu();
        for &cpu in &self.cpus {
            if cpu != me && vcpu::power(cpu) != vcpu::Power::Off {
                vcpu::request_stop(cpu);
            }
        }
        for &cpu in &self.cpus {
            let deadline = crate::log::uptime_us() + 100_000;
            while cpu != me && vcpu::power(cpu) != vcpu::Power::Off && crate::log::uptime_us() < deadline {
                core::hint::spin_loop();
            }
        }
        self.load();
        let boot_cpu = self.cpus[0];
        // This CPU first leaves its vCPU, so the boot vCPU can be posted even
        // when it is this one.
        vcpu::mark_off(me);
        if let Err(e) = vcpu::post(boot_cpu, self.index, 0, self.boot.entry, self.boot.dtb_ipa) {
            defmt::error!("partition {=str}: reset could not restart vCPU 0: {}", self.name(), e);
        }
        vcpu::idle(me)
    }

    /// Copies the image and device tree into the partition's RAM.
    fn load(&self) {
        // SAFETY: both targets were checked at build time to lie inside the
        // partition's RAM, which the hypervisor maps read-write and nobody
        // else uses; the sources are the hypervisor's own memory.
        unsafe {
            core::ptr::copy_nonoverlapping(
                self.boot.image.as_ptr(),
                self.boot.image_pa as *mut u8,
                self.boot.image.len(),
            );
            core::ptr::copy_nonoverlapping(
                self.boot.dtb.as_ptr(),
                self.boot.dtb_pa as *mut u8,
                self.boot.dtb.len(),
            );
        }
        crate::arch::cache::clean_range(self.boot.image_pa, self.boot.image.len() as u64);
        crate::arch::cache::clean_range(self.boot.dtb_pa, self.boot.dtb.len() as u64);
    }

    /// Starts vCPU 0 on its CPU.
    pub fn start(&self) {
        if let Err(e) = vcpu::post(self.cpus[0], self.index, 0, self.boot.entry, self.boot.dtb_ipa) {
            defmt::error!("partition {=str}: vCPU 0 not started: {}", self.name(), e);
        }
    }
}

/// Every partition stopped: with `qemu-exit` the run ends here (tests and
/// the demo), otherwise the CPUs idle.
fn all_stopped() {
    defmt::info!("all partitions stopped");
    watch::report();
    #[cfg(feature = "qemu-exit")]
    crate::exit::success();
}

/// Reports a synchronous external abort to the guest's EL1 as the hardware
/// would (ESR_EL1, FAR_EL1, ELR_EL1, SPSR_EL1, then its vector). False if
/// the guest has no vector table to take it.
fn inject_external_abort(frame: &mut TrapFrame, instruction: bool, write: bool) -> bool {
    use aarch64_cpu::registers::{
        Readable, Writeable, ELR_EL1, ESR_EL1, FAR_EL1, FAR_EL2, SPSR_EL1, VBAR_EL1,
    };
    let vbar = VBAR_EL1.get();
    if vbar == 0 {
        return false;
    }
    let from_el1 = (frame.spsr >> 2) & 3 == 1;
    let ec: u64 = match (instruction, from_el1) {
        (true, true) => 0x21,
        (true, false) => 0x20,
        (false, true) => 0x25,
        (false, false) => 0x24,
    };
    // IL = 1 (32-bit instruction), xFSC = 0x10: synchronous external abort.
    let esr = ec << 26 | 1 << 25 | if write && !instruction { 1 << 6 } else { 0 } | 0x10;
    ESR_EL1.set(esr);
    FAR_EL1.set(FAR_EL2.get());
    ELR_EL1.set(frame.elr);
    SPSR_EL1.set(frame.spsr);
    let offset = match (from_el1, frame.spsr & 1 == 1) {
        (true, true) => 0x200,  // current EL with SP_ELx
        (true, false) => 0x000, // current EL with SP_EL0
        (false, _) => 0x400,    // lower EL, AArch64
    };
    frame.elr = vbar + offset;
    frame.spsr = 0x3c5;
    true
}
