//! EL2 exception vectors and the report of an unexpected exception.
//!
//! Every vector saves the general-purpose registers into a [`TrapFrame`] and
//! calls [`handle_exception`]. An exception taken from EL2 itself is always a
//! bug or an injected fault: it is reported with ESR/FAR/ELR decoded and the
//! run ends with a failure, never a silent loop.

use aarch64_cpu::registers::{Readable, ESR_EL2, FAR_EL2, HPFAR_EL2};
use core::arch::global_asm;

/// Registers saved on entry to EL2.
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    /// x0..x30.
    pub x: [u64; 31],
    /// Exception link register: where the exception was taken.
    pub elr: u64,
    /// Saved program status.
    pub spsr: u64,
    _pad: u64,
}

/// Which of the 16 vectors was taken.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
#[repr(u64)]
pub enum VectorKind {
    /// Synchronous, current EL with SP_EL0.
    CurSp0Sync = 0,
    /// IRQ, current EL with SP_EL0.
    CurSp0Irq,
    /// FIQ, current EL with SP_EL0.
    CurSp0Fiq,
    /// SError, current EL with SP_EL0.
    CurSp0SError,
    /// Synchronous, current EL with SP_ELx.
    CurSpxSync,
    /// IRQ, current EL with SP_ELx.
    CurSpxIrq,
    /// FIQ, current EL with SP_ELx.
    CurSpxFiq,
    /// SError, current EL with SP_ELx.
    CurSpxSError,
    /// Synchronous from a lower EL in AArch64.
    LowerA64Sync,
    /// IRQ from a lower EL in AArch64.
    LowerA64Irq,
    /// FIQ from a lower EL in AArch64.
    LowerA64Fiq,
    /// SError from a lower EL in AArch64.
    LowerA64SError,
    /// Synchronous from a lower EL in AArch32.
    LowerA32Sync,
    /// IRQ from a lower EL in AArch32.
    LowerA32Irq,
    /// FIQ from a lower EL in AArch32.
    LowerA32Fiq,
    /// SError from a lower EL in AArch32.
    LowerA32SError,
}

impl VectorKind {
    fn from_index(i: u64) -> Self {
        const ALL: [VectorKind; 16] = [
            VectorKind::CurSp0Sync,
            VectorKind::CurSp0Irq,
            VectorKind::CurSp0Fiq,
            VectorKind::CurSp0SError,
            VectorKind::CurSpxSync,
            VectorKind::CurSpxIrq,
            VectorKind::CurSpxFiq,
            VectorKind::CurSpxSError,
            VectorKind::LowerA64Sync,
            VectorKind::LowerA64Irq,
            VectorKind::LowerA64Fiq,
            VectorKind::LowerA64SError,
            VectorKind::LowerA32Sync,
            VectorKind::LowerA32Irq,
            VectorKind::LowerA32Fiq,
            VectorKind::LowerA32SError,
        ];
        ALL[(i & 0xf) as usize]
    }
}

/// ESR_ELx.EC, the exception class (ARM ARM D24.2.41), for the classes the
/// hypervisor can meet.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum ExceptionClass {
    /// EC 0x00.
    Unknown,
    /// EC 0x01: WFI/WFE trapped.
    WfiWfe,
    /// EC 0x07: SVE/SIMD/FP access trapped.
    FpAccess,
    /// EC 0x0e: illegal execution state.
    IllegalState,
    /// EC 0x11/0x15: SVC.
    Svc,
    /// EC 0x16: HVC from AArch64.
    Hvc,
    /// EC 0x17: SMC from AArch64.
    Smc,
    /// EC 0x18: MSR/MRS/system instruction trapped.
    SysReg,
    /// EC 0x20: instruction abort from a lower EL.
    InstrAbortLower,
    /// EC 0x21: instruction abort at the same EL.
    InstrAbortSame,
    /// EC 0x22: PC alignment fault.
    PcAlignment,
    /// EC 0x24: data abort from a lower EL.
    DataAbortLower,
    /// EC 0x25: data abort at the same EL.
    DataAbortSame,
    /// EC 0x26: SP alignment fault.
    SpAlignment,
    /// EC 0x2f: SError.
    SError,
    /// EC 0x3c: BRK instruction.
    Brk,
    /// Any other class, with its number.
    Other(u8),
}

impl ExceptionClass {
    /// Decodes ESR_ELx.EC (bits [31:26]).
    pub fn from_esr(esr: u64) -> Self {
        match ((esr >> 26) & 0x3f) as u8 {
            0x00 => Self::Unknown,
            0x01 => Self::WfiWfe,
            0x07 => Self::FpAccess,
            0x0e => Self::IllegalState,
            0x11 | 0x15 => Self::Svc,
            0x16 => Self::Hvc,
            0x17 => Self::Smc,
            0x18 => Self::SysReg,
            0x20 => Self::InstrAbortLower,
            0x21 => Self::InstrAbortSame,
            0x22 => Self::PcAlignment,
            0x24 => Self::DataAbortLower,
            0x25 => Self::DataAbortSame,
            0x26 => Self::SpAlignment,
            0x2f => Self::SError,
            0x3c => Self::Brk,
            other => Self::Other(other),
        }
    }
}

/// The fault status code of an instruction or data abort (ISS.xFSC, bits [5:0]).
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub enum FaultStatus {
    /// Address size fault at a lookup level.
    AddressSize(u8),
    /// Translation fault at a lookup level: nothing mapped there.
    Translation(u8),
    /// Access flag fault at a lookup level.
    AccessFlag(u8),
    /// Permission fault at a lookup level.
    Permission(u8),
    /// Synchronous external abort, not on a table walk.
    SyncExternal,
    /// Synchronous external abort on a table walk, at a lookup level.
    SyncExternalWalk(u8),
    /// Alignment fault.
    Alignment,
    /// TLB conflict abort.
    TlbConflict,
    /// Any other code.
    Other(u8),
}

impl FaultStatus {
    /// Decodes ISS.DFSC / ISS.IFSC.
    pub fn from_iss(iss: u64) -> Self {
        let fsc = (iss & 0x3f) as u8;
        let level = fsc & 3;
        match fsc & 0x3c {
            0x00 => Self::AddressSize(level),
            0x04 => Self::Translation(level),
            0x08 => Self::AccessFlag(level),
            0x0c => Self::Permission(level),
            0x14 => Self::SyncExternalWalk(level),
            _ => match fsc {
                0x10 => Self::SyncExternal,
                0x21 => Self::Alignment,
                0x30 => Self::TlbConflict,
                other => Self::Other(other),
            },
        }
    }
}

global_asm!(
    r#"
.macro VECTOR idx
    .balign 0x80
    sub     sp, sp, #(34 * 8)
    stp     x0, x1, [sp, #(0 * 8)]
    mov     x1, #\idx
    b       exception_common
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global exception_vectors
exception_vectors:
    VECTOR 0
    VECTOR 1
    VECTOR 2
    VECTOR 3
    VECTOR 4
    VECTOR 5
    VECTOR 6
    VECTOR 7
    VECTOR 8
    VECTOR 9
    VECTOR 10
    VECTOR 11
    VECTOR 12
    VECTOR 13
    VECTOR 14
    VECTOR 15

exception_common:
    stp     x2, x3, [sp, #(2 * 8)]
    stp     x4, x5, [sp, #(4 * 8)]
    stp     x6, x7, [sp, #(6 * 8)]
    stp     x8, x9, [sp, #(8 * 8)]
    stp     x10, x11, [sp, #(10 * 8)]
    stp     x12, x13, [sp, #(12 * 8)]
    stp     x14, x15, [sp, #(14 * 8)]
    stp     x16, x17, [sp, #(16 * 8)]
    stp     x18, x19, [sp, #(18 * 8)]
    stp     x20, x21, [sp, #(20 * 8)]
    stp     x22, x23, [sp, #(22 * 8)]
    stp     x24, x25, [sp, #(24 * 8)]
    stp     x26, x27, [sp, #(26 * 8)]
    stp     x28, x29, [sp, #(28 * 8)]
    mrs     x9, elr_el2
    mrs     x10, spsr_el2
    stp     x30, x9, [sp, #(30 * 8)]
    str     x10, [sp, #(32 * 8)]
    mov     x0, sp
    bl      handle_exception
    ldr     x10, [sp, #(32 * 8)]
    ldp     x30, x9, [sp, #(30 * 8)]
    msr     elr_el2, x9
    msr     spsr_el2, x10
    ldp     x0, x1, [sp, #(0 * 8)]
    ldp     x2, x3, [sp, #(2 * 8)]
    ldp     x4, x5, [sp, #(4 * 8)]
    ldp     x6, x7, [sp, #(6 * 8)]
    ldp     x8, x9, [sp, #(8 * 8)]
    ldp     x10, x11, [sp, #(10 * 8)]
    ldp     x12, x13, [sp, #(12 * 8)]
    ldp     x14, x15, [sp, #(14 * 8)]
    ldp     x16, x17, [sp, #(16 * 8)]
    ldp     x18, x19, [sp, #(18 * 8)]
    ldp     x20, x21, [sp, #(20 * 8)]
    ldp     x22, x23, [sp, #(22 * 8)]
    ldp     x24, x25, [sp, #(24 * 8)]
    ldp     x26, x27, [sp, #(26 * 8)]
    ldp     x28, x29, [sp, #(28 * 8)]
    add     sp, sp, #(34 * 8)
    eret
"#
);

/// Called from the vectors with the saved registers. Exceptions from EL2
/// itself are fatal: reported, then the run ends with a failure.
#[no_mangle]
extern "C" fn handle_exception(frame: &mut TrapFrame, index: u64) {
    let kind = VectorKind::from_index(index);
    match kind {
        VectorKind::CurSpxIrq => {
            crate::irq::handle();
            return;
        }
        // A guest's trap or an interrupt that arrived while it ran.
        VectorKind::LowerA64Sync => {
            crate::vcpu::trap(frame);
            return;
        }
        VectorKind::LowerA64Irq => {
            crate::vcpu::irq();
            return;
        }
        VectorKind::LowerA64Fiq | VectorKind::LowerA64SError | VectorKind::LowerA32Sync => {
            if let Some((p, v)) = crate::vcpu::current() {
                defmt::error!(
                    "partition {=str}: vCPU {=usize} raised {} (ESR {=u64:#x}) at PC {=u64:#x}",
                    p.name(),
                    v,
                    kind,
                    ESR_EL2.get(),
                    frame.elr
                );
                p.stop("an exception the hypervisor cannot hand back");
            }
        }
        _ => {}
    }
    let esr = ESR_EL2.get();
    let far = FAR_EL2.get();
    #[cfg(feature = "selftest")]
    if kind == VectorKind::CurSpxSync && expected::take(esr, far) {
        // A self-test provoked this fault on purpose: skip the instruction.
        frame.elr += 4;
        return;
    }
    let class = ExceptionClass::from_esr(esr);
    let iss = esr & 0x1ff_ffff;
    match class {
        ExceptionClass::DataAbortSame
        | ExceptionClass::DataAbortLower
        | ExceptionClass::InstrAbortSame
        | ExceptionClass::InstrAbortLower => {
            // ISS.WnR (bit 6) is meaningful for data aborts only.
            let data = matches!(class, ExceptionClass::DataAbortSame | ExceptionClass::DataAbortLower);
            let write = data && iss & (1 << 6) != 0;
            let access = if write { "write" } else { "read" };
            let status = FaultStatus::from_iss(iss);
            if matches!(class, ExceptionClass::DataAbortLower | ExceptionClass::InstrAbortLower) {
                // From a guest: HPFAR_EL2 holds the faulting IPA's page.
                defmt::error!(
                    "unexpected exception {}: {} {} on {=str} of {=u64:#x} (IPA page {=u64:#x}) at ELR {=u64:#x} (ESR {=u64:#x})",
                    kind, class, status, access, far, (HPFAR_EL2.get() >> 4) << 12, frame.elr, esr
                );
            } else {
                defmt::error!(
                    "unexpected exception {}: {} {} on {=str} of {=u64:#x} at ELR {=u64:#x} (ESR {=u64:#x})",
                    kind, class, status, access, far, frame.elr, esr
                );
            }
        }
        _ => defmt::error!(
            "unexpected exception {}: {} ISS {=u64:#x} at ELR {=u64:#x} (ESR {=u64:#x}, FAR {=u64:#x}, SPSR {=u64:#x})",
            kind,
            class,
            iss,
            frame.elr,
            esr,
            far,
            frame.spsr
        ),
    }
    defmt::error!(
        "x0 {=u64:#x} x1 {=u64:#x} x2 {=u64:#x} x3 {=u64:#x} x29 {=u64:#x} x30 {=u64:#x}",
        frame.x[0],
        frame.x[1],
        frame.x[2],
        frame.x[3],
        frame.x[29],
        frame.x[30]
    );
    crate::exit::fail(crate::exit::ExitCode::UnexpectedException);
}

/// Self-tests arm an expectation, provoke one synchronous fault at EL2 and
/// read back what the vectors saw.
#[cfg(feature = "selftest")]
pub mod expected {
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    static ARMED: AtomicBool = AtomicBool::new(false);
    static ESR: AtomicU64 = AtomicU64::new(0);
    static FAR: AtomicU64 = AtomicU64::new(0);

    /// The next synchronous EL2 exception is expected: record it, resume.
    pub fn arm() {
        ESR.store(0, Ordering::Relaxed);
        FAR.store(0, Ordering::Relaxed);
        ARMED.store(true, Ordering::Release);
    }

    pub(super) fn take(esr: u64, far: u64) -> bool {
        if ARMED.swap(false, Ordering::AcqRel) {
            ESR.store(esr, Ordering::Relaxed);
            FAR.store(far, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// (ESR, FAR) of the recorded fault, or None if none was taken.
    pub fn recorded() -> Option<(u64, u64)> {
        ARMED.store(false, Ordering::Release);
        let esr = ESR.load(Ordering::Relaxed);
        (esr != 0).then(|| (esr, FAR.load(Ordering::Relaxed)))
    }
}
