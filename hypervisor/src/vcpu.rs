//! Guest CPUs. Every vCPU of a partition owns one physical CPU for the whole
//! run (static partitioning, as Jailhouse and Bao do), so there is no
//! scheduler and no EL1 state to switch: a CPU enters its guest once and the
//! guest's traps come back to this module.
//!
//! A CPU without a running vCPU waits in [`idle`] for its mailbox: the boot
//! CPU posts a partition's first vCPU there, a guest's PSCI `CPU_ON` posts the
//! others. Requests from other CPUs (stop the partition, a new fault record
//! to announce) arrive as flags plus an SGI.

use crate::arch::boot;
use crate::arch::exception::{ExceptionClass, FaultStatus, TrapFrame};
use crate::partition::{self, Partition};
use crate::vdev::mmio::Access;
use crate::{gic, vgic, vpsci};
use aarch64_cpu::registers::{Readable, Writeable, CNTHCTL_EL2, ESR_EL2, FAR_EL2, HPFAR_EL2, MIDR_EL1};
use core::arch::asm;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// The SGI other CPUs use to make this one look at its requests.
pub const KICK_SGI: u32 = 1;
/// The architected timers' PPIs a guest uses (EL1 physical, virtual): they
/// are forwarded to the guest of the CPU they fire on.
pub const GUEST_TIMER_PPIS: [u32; 2] = [30, 27];

/// A vCPU's power state, as PSCI AFFINITY_INFO reports it.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
#[repr(u8)]
pub enum Power {
    /// Not running (never started, CPU_OFF, or its partition stopped).
    Off = 0,
    /// Posted to its CPU, not entered yet.
    OnPending = 1,
    /// Running guest code.
    On = 2,
    /// Being posted: the mailbox is claimed, its fields not yet written.
    Claimed = 3,
}

impl Power {
    fn from_u8(v: u8) -> Self {
        match v {
            1 | 3 => Self::OnPending,
            2 => Self::On,
            _ => Self::Off,
        }
    }
}

/// What a physical CPU is asked to run.
struct Mailbox {
    power: AtomicU8,
    /// Partition index + 1 (0: none).
    partition: AtomicUsize,
    vcpu: AtomicUsize,
    entry: AtomicU64,
    context: AtomicU64,
    /// [`REQ_STOP`] | [`REQ_FAULT`] | [`REQ_SGI`].
    requests: AtomicU32,
    /// Virtual SGIs (bit n: SGI n) other vCPUs sent to this one.
    sgis: AtomicU32,
    /// Purely virtual interrupts (INTID bitmap) posted for this vCPU, such
    /// as its virtual console's.
    virqs: [AtomicU32; 32],
}

const REQ_STOP: u32 = 1 << 0;
const REQ_FAULT: u32 = 1 << 1;
const REQ_SGI: u32 = 1 << 2;
const REQ_VIRQ: u32 = 1 << 3;

static MAILBOX: [Mailbox; boot::MAX_CPUS] = [const {
    Mailbox {
        power: AtomicU8::new(0),
        partition: AtomicUsize::new(0),
        vcpu: AtomicUsize::new(0),
        entry: AtomicU64::new(0),
        context: AtomicU64::new(0),
        requests: AtomicU32::new(0),
        sgis: AtomicU32::new(0),
        virqs: [const { AtomicU32::new(0) }; 32],
    }
}; boot::MAX_CPUS];

/// The physical CPU this code runs on (the logger's index).
pub fn this_cpu() -> usize {
    crate::log::cpu_index()
}

/// Power state of the vCPU posted to physical CPU `cpu`.
pub fn power(cpu: usize) -> Power {
    MAILBOX.get(cpu).map_or(Power::Off, |m| Power::from_u8(m.power.load(Ordering::Acquire)))
}

/// Why a vCPU could not be posted.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum PostError {
    /// The CPU has no stack (beyond `MAX_CPUS`).
    NoSuchCpu,
    /// The vCPU is already running.
    AlreadyOn,
    /// The vCPU was posted and has not started yet.
    OnPending,
}

/// Posts vCPU `vcpu` of partition `p` to physical CPU `cpu`: it starts at
/// `entry` with x0 = `context`.
pub fn post(cpu: usize, p: usize, vcpu: usize, entry: u64, context: u64) -> Result<(), PostError> {
    let m = MAILBOX.get(cpu).ok_or(PostError::NoSuchCpu)?;
    // Claim first, publish last: the target acts on OnPending only, so it
    // never reads the fields before they are written.
    match m.power.compare_exchange(
        Power::Off as u8,
        Power::Claimed as u8,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => {}
        Err(v) if v == Power::On as u8 => return Err(PostError::AlreadyOn),
        Err(_) => return Err(PostError::OnPending),
    }
    m.partition.store(p + 1, Ordering::Relaxed);
    m.vcpu.store(vcpu, Ordering::Relaxed);
    m.entry.store(entry, Ordering::Relaxed);
    m.context.store(context, Ordering::Relaxed);
    m.requests.store(0, Ordering::Relaxed);
    m.power.store(Power::OnPending as u8, Ordering::Release);
    wake(cpu);
    Ok(())
}

/// Wakes CPU `cpu` from [`idle`]: the kick SGI where there is a GICv3
/// (idle CPUs sleep in WFI), an event otherwise (they wait in WFE).
fn wake(cpu: usize) {
    if cpu != this_cpu() && gic::v3::get().is_some() {
        if let Some(mpidr) = crate::smp::mpidr_of(cpu) {
            send_sgi(KICK_SGI, mpidr);
        }
    }
    aarch64_cpu::asm::sev();
}

/// Asks physical CPU `cpu` to stop its vCPU (its partition stopped).
pub fn request_stop(cpu: usize) {
    request(cpu, REQ_STOP);
}

/// Makes virtual SGI `sgi` pending for the vCPU on physical CPU `cpu`.
pub fn request_sgi(cpu: usize, sgi: u32) {
    if let Some(m) = MAILBOX.get(cpu) {
        m.sgis.fetch_or(1 << (sgi & 0xf), Ordering::AcqRel);
        request(cpu, REQ_SGI);
    }
}

/// Makes virtual interrupt `intid` (no physical one behind it) pending for
/// the vCPU on physical CPU `cpu`.
pub fn request_virq(cpu: usize, intid: u32) {
    let Some(m) = MAILBOX.get(cpu) else { return };
    let Some(w) = m.virqs.get((intid / 32) as usize) else { return };
    w.fetch_or(1 << (intid % 32), Ordering::AcqRel);
    request(cpu, REQ_VIRQ);
}

/// Asks physical CPU `cpu` to announce its partition's new fault record.
pub fn request_fault_irq(cpu: usize) {
    request(cpu, REQ_FAULT);
}

fn request(cpu: usize, what: u32) {
    let Some(m) = MAILBOX.get(cpu) else { return };
    m.requests.fetch_or(what, Ordering::AcqRel);
    // This CPU serves its own requests on the way back to its guest
    // ([`serve_requests`]), never in the middle of the code that posted them.
    if cpu != this_cpu() && gic::v3::get().is_some() {
        if let Some(mpidr) = crate::smp::mpidr_of(cpu) {
            send_sgi(KICK_SGI, mpidr);
        }
    }
    aarch64_cpu::asm::sev();
}

/// ICC_SGI1R_EL1: SGI `intid` to the CPU with affinity `mpidr`.
fn send_sgi(intid: u32, mpidr: u64) {
    let aff0 = mpidr & 0xf;
    let v = ((mpidr >> 32) & 0xff) << 48
        | ((mpidr >> 16) & 0xff) << 32
        | u64::from(intid & 0xf) << 24
        | ((mpidr >> 8) & 0xff) << 16
        | 1 << aff0;
    // SAFETY: generates an SGI; no memory effects.
    unsafe { asm!("msr icc_sgi1r_el1, {}", "isb", in(reg) v, options(nomem, nostack)) };
}

/// The kick SGI's handler: the requests are served on the way out of the
/// interrupt ([`serve_requests`]), after the SGI has ended.
pub fn on_kick(_intid: u32) {}

/// Acts on the requests posted for this CPU: called last before returning to
/// the guest, with no lock held and every interrupt ended.
pub fn serve_requests() {
    let me = this_cpu();
    let Some(m) = MAILBOX.get(me) else { return };
    let req = m.requests.swap(0, Ordering::AcqRel);
    if req & REQ_FAULT != 0 && power(me) == Power::On {
        if let Err(e) = vgic::inject_virtual(boards::abi::FAULT_VINTID) {
            defmt::warn!("cpu {=usize}: fault interrupt not injected: {}", me, e);
        }
    }
    if req & REQ_SGI != 0 && power(me) == Power::On {
        let mut sgis = m.sgis.swap(0, Ordering::AcqRel);
        while sgis != 0 {
            let sgi = sgis.trailing_zeros();
            sgis &= sgis - 1;
            if let Err(e) = vgic::inject_virtual(sgi) {
                defmt::warn!("cpu {=usize}: SGI {=u32} not injected: {}", me, sgi, e);
            }
        }
    }
    if req & REQ_VIRQ != 0 && power(me) == Power::On {
        for (n, w) in m.virqs.iter().enumerate() {
            let mut bits = w.swap(0, Ordering::AcqRel);
            while bits != 0 {
                let intid = n as u32 * 32 + bits.trailing_zeros();
                bits &= bits - 1;
                if let Err(e) = vgic::inject_virtual(intid) {
                    defmt::warn!("cpu {=usize}: virtual IRQ {=u32} not injected: {}", me, intid, e);
                }
            }
        }
    }
    if req & REQ_STOP != 0 && power(me) == Power::On {
        park();
    }
}

/// The partition and vCPU running on this CPU.
pub fn current() -> Option<(&'static Partition, usize)> {
    let m = MAILBOX.get(this_cpu())?;
    let p = m.partition.load(Ordering::Acquire).checked_sub(1)?;
    Some((partition::get(p)?, m.vcpu.load(Ordering::Acquire)))
}

/// Stops this CPU's vCPU and waits for new work. Never returns to the trap
/// that called it (the stack is reset when the next vCPU enters).
pub fn park() -> ! {
    let me = this_cpu();
    quiesce_guest_timers();
    if let Some(m) = MAILBOX.get(me) {
        m.power.store(Power::Off as u8, Ordering::Release);
    }
    idle(me)
}

/// Turns off the EL1 timers a stopped vCPU leaves armed: their PPIs are
/// level interrupts that would otherwise fire at a CPU with no guest.
pub fn quiesce_guest_timers() {
    // SAFETY: CNTV_CTL_EL0 / CNTP_CTL_EL0 of this CPU, whose guest stopped;
    // clearing ENABLE drops the timer's interrupt output.
    unsafe { asm!("msr cntv_ctl_el0, xzr", "msr cntp_ctl_el0, xzr", "isb", options(nomem, nostack)) };
}

/// Marks this CPU's vCPU off without parking (a reset about to re-post it).
pub fn mark_off(cpu: usize) {
    if let Some(m) = MAILBOX.get(cpu) {
        m.power.store(Power::Off as u8, Ordering::Release);
    }
}

/// Waits for a vCPU to be posted to this CPU, then enters it.
///
/// With a GICv3 the CPU sleeps in WFI (QEMU halts its thread; WFE there is
/// only a yield, so a WFE loop keeps a host core busy): the check runs with
/// interrupts masked and WFI wakes for a pending one even then, so a post
/// between the check and the WFI is never missed. Without one (the Pi's
/// GIC-400 is not driven) it waits for the poster's SEV.
pub fn idle(cpu: usize) -> ! {
    let sleep = gic::v3::get().is_some();
    loop {
        // SAFETY: masks IRQs on this CPU; no memory effects.
        unsafe { asm!("msr daifset, #2", options(nomem, nostack)) };
        if let Some(m) = MAILBOX.get(cpu) {
            if m.power.load(Ordering::Acquire) == Power::OnPending as u8 {
                let p = m.partition.load(Ordering::Acquire);
                if let Some(part) = p.checked_sub(1).and_then(partition::get) {
                    let (entry, ctx) = (m.entry.load(Ordering::Relaxed), m.context.load(Ordering::Relaxed));
                    enter(cpu, part, m.vcpu.load(Ordering::Relaxed), entry, ctx);
                }
                m.power.store(Power::Off as u8, Ordering::Release);
            }
        }
        if sleep {
            aarch64_cpu::asm::wfi();
        } else {
            aarch64_cpu::asm::wfe();
        }
        // Take what woke us (a kick, an SMMU event) before looking again.
        crate::irq::enable_local();
    }
}

/// HCR_EL2 for a running guest: stage 2 on (VM), set/way invalidation made
/// clean+invalidate (SWIO), physical interrupts to EL2 (IMO/FMO/AMO), SMC
/// trapped (TSC: PSCI goes through the hypervisor whatever conduit a guest
/// tries), EL1 is AArch64 (RW), pointer authentication not trapped
/// (API/APK), broadcast maintenance inner shareable (BSU) with forced
/// broadcast (FB).
const HCR_GUEST: u64 = 1 << 0 // VM
    | 1 << 1 // SWIO
    | 1 << 3 // FMO
    | 1 << 4 // IMO
    | 1 << 5 // AMO
    | 1 << 9 // FB
    | 1 << 10 // BSU = inner shareable
    | 1 << 19 // TSC
    | 1 << 31 // RW
    | 1 << 40 // APK
    | 1 << 41; // API

/// SPSR for the guest's first instruction: EL1h, DAIF masked.
const SPSR_EL1H_MASKED: u64 = 0x3c5;

/// SCTLR_EL1 as an EL1 kernel expects it at entry: MMU and caches off,
/// RES1 bits set.
const SCTLR_EL1_RESET: u64 = 0x30d0_0800;

fn enter(cpu: usize, p: &Partition, vcpu: usize, entry: u64, x0: u64) -> ! {
    let m = &MAILBOX[cpu];
    m.power.store(Power::On as u8, Ordering::Release);
    defmt::debug!("cpu {=usize}: entering {=str} vCPU {=usize} at {=u64:#x}", cpu, p.name(), vcpu, entry);
    crate::arch::el2_guest::configure();
    if let Some(g) = gic::v3::get() {
        vgic::init_cpu();
        for ppi in GUEST_TIMER_PPIS {
            crate::irq::forward(ppi);
            if let Err(e) = g.enable_private(ppi) {
                defmt::warn!("cpu {=usize}: timer PPI {=u32} not enabled: {}", cpu, ppi, e);
            }
        }
    }
    let stack_top = boot::stack_top(cpu);
    // EL1PCTEN | EL1PCEN: the guest owns the EL1 physical counter and timer.
    CNTHCTL_EL2.set(CNTHCTL_EL2.get() | 0b11);
    // SAFETY: programs this CPU's EL2 controls for the guest (stage 2 from
    // the partition's tables, which stay alive for the whole run, and EL1
    // reset state), then erets into it on a fresh EL2 stack; nothing on the
    // current stack is used after the switch.
    unsafe {
        asm!(
            "msr vttbr_el2, {vttbr}",
            "msr vtcr_el2, {vtcr}",
            "msr vmpidr_el2, {vmpidr}",
            "msr vpidr_el2, {vpidr}",
            "msr cntvoff_el2, xzr",
            "msr sctlr_el1, {sctlr}",
            "msr hcr_el2, {hcr}",
            "isb",
            "tlbi vmalls12e1",
            "dsb nsh",
            "isb",
            "mov sp, {stack}",
            "msr elr_el2, {entry}",
            "msr spsr_el2, {spsr}",
            "mov x0, {x0}",
            "mov x1, xzr",
            "mov x2, xzr",
            "mov x3, xzr",
            "eret",
            vttbr = in(reg) p.vttbr(),
            vtcr = in(reg) p.vtcr(),
            vmpidr = in(reg) (1u64 << 31) | vcpu as u64,
            vpidr = in(reg) MIDR_EL1.get(),
            sctlr = in(reg) SCTLR_EL1_RESET,
            hcr = in(reg) HCR_GUEST,
            stack = in(reg) stack_top,
            entry = in(reg) entry,
            spsr = in(reg) SPSR_EL1H_MASKED,
            x0 = in(reg) x0,
            options(noreturn)
        )
    }
}

/// A synchronous exception from the guest on this CPU.
pub fn trap(frame: &mut TrapFrame) {
    let esr = ESR_EL2.get();
    let Some((p, vcpu)) = current() else {
        defmt::error!("cpu {=usize}: guest trap with no vCPU posted (ESR {=u64:#x})", this_cpu(), esr);
        park();
    };
    let class = ExceptionClass::from_esr(esr);
    let iss = esr & 0x1ff_ffff;
    match class {
        ExceptionClass::Hvc => vpsci::call(p, vcpu, frame),
        ExceptionClass::Smc => {
            frame.elr += 4;
            vpsci::call(p, vcpu, frame);
        }
        ExceptionClass::DataAbortLower => {
            let ipa = ((HPFAR_EL2.get() >> 4) << 12) | (FAR_EL2.get() & 0xfff);
            match Access::decode(iss, ipa) {
                Ok(acc) if p.emulate(&acc, &mut frame.x) => frame.elr += 4,
                Ok(acc) => p.guest_fault(frame, "data", acc.write, ipa, FaultStatus::from_iss(iss)),
                Err(_) => p.guest_fault(frame, "data", iss & (1 << 6) != 0, ipa, FaultStatus::from_iss(iss)),
            }
        }
        ExceptionClass::SysReg if is_sgi_write(iss) => {
            let rt = ((iss >> 5) & 0x1f) as usize;
            let value = frame.x.get(rt).copied().unwrap_or(0);
            send_guest_sgi(p, vcpu, value);
            frame.elr += 4;
        }
        ExceptionClass::InstrAbortLower => {
            let ipa = ((HPFAR_EL2.get() >> 4) << 12) | (FAR_EL2.get() & 0xfff);
            p.guest_fault(frame, "instruction", false, ipa, FaultStatus::from_iss(iss));
        }
        _ => {
            p.report_rate_limited(|| {
                defmt::error!(
                    "partition {=str}: vCPU {=usize} trapped with {} (ESR {=u64:#x}) at PC {=u64:#x}: not emulated",
                    p.name(),
                    vcpu,
                    class,
                    esr,
                    frame.elr
                )
            });
            p.stop("an instruction the hypervisor does not emulate");
        }
    }
    serve_requests();
}

/// Whether a trapped MSR/MRS (ISS of EC 0x18: Op0 [21:20], Op2 [19:17],
/// Op1 [16:14], CRn [13:10], CRm [4:1], read [0]) is a write of
/// ICC_SGI1R_EL1, ICC_ASGI1R_EL1 or ICC_SGI0R_EL1 (S3_0_C12_C11_{5,6,7}):
/// with HCR_EL2.IMO set these trap, and the hypervisor delivers the SGI.
fn is_sgi_write(iss: u64) -> bool {
    let op0 = (iss >> 20) & 3;
    let op2 = (iss >> 17) & 7;
    let op1 = (iss >> 14) & 7;
    let crn = (iss >> 10) & 0xf;
    let crm = (iss >> 1) & 0xf;
    iss & 1 == 0 && op0 == 3 && op1 == 0 && crn == 12 && crm == 11 && (5..=7).contains(&op2)
}

/// A guest's SGI: to every other vCPU (IRM), or to the vCPUs of the target
/// list (vCPU n has Aff0 = n, higher affinities 0).
fn send_guest_sgi(p: &Partition, from: usize, value: u64) {
    let sgi = ((value >> 24) & 0xf) as u32;
    let all_others = value & (1 << 40) != 0;
    let aff_high = (value >> 16) & 0xff | (value >> 32) & 0xff | (value >> 48) & 0xff;
    for v in 0..p.vcpus() {
        let target = if all_others { v != from } else { aff_high == 0 && v < 16 && value & (1 << v) != 0 };
        if let (true, Some(cpu)) = (target, p.cpu_of(v)) {
            if power(cpu) == Power::On {
                request_sgi(cpu, sgi);
            }
        }
    }
}

/// An IRQ taken while the guest ran: the hypervisor's own or a forwarded one.
pub fn irq() {
    crate::irq::handle();
    serve_requests();
}
