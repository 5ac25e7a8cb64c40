//! Entry: the arm64 Image header (Documentation/arch/arm64/booting.rst), the
//! load-address check, FP/SIMD and exception vectors on, a stack, `.bss`
//! zeroed, then Rust's `rust_main(dtb)`. Also the PSCI `CPU_ON` entry point of
//! the secondary CPUs and the EL1 exception vectors.
//!
//! The loader enters at EL1 with the MMU off, x0 = DTB address and DAIF
//! masked (booting.rst §4). With the MMU off every data access is
//! Device-nGnRnE, so the code keeps all accesses aligned (the target has
//! `strict-align`) and avoids exclusive (atomic read-modify-write) accesses.

use core::arch::global_asm;

/// Bytes of the boot CPU's stack; must match `BOOT_STACK_SIZE` in `demo.ld`.
pub const BOOT_STACK_SIZE: usize = 0x10000;
/// Bytes of stack per secondary CPU; must match `SECONDARY_STACK_SIZE`.
pub const SECONDARY_STACK_SIZE: usize = 0x4000;
/// Secondary CPUs with a stack; must match `MAX_SECONDARIES` in `demo.ld`.
/// Secondary `i` (1-based, the PSCI context id) runs on stack `i - 1`.
pub const MAX_SECONDARIES: usize = 7;

/// PSCI SYSTEM_OFF, for the entry code's own use before Rust runs.
const PSCI_SYSTEM_OFF: u32 = 0x8400_0008;

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x80000                 // text_offset: loaded at RAM base + 0x80000
    .quad   __image_size            // image_size, including .bss and stacks
    .quad   0x2                     // flags: little endian, 4 KiB pages
    .quad   0, 0, 0                 // res2..res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

    .section .text.boot, "ax"
primary_entry:
    msr     daifset, #0xf
    mov     x19, x0                 // DTB address from the loader
    // Not position independent: refuse to run anywhere but the link address.
    adr     x9, _start
    ldr     x10, =_start
    cmp     x9, x10
    b.ne    wrong_place
    bl      cpu_setup
    // sp = top of the boot stack
    adrp    x9, __stacks_start
    add     x9, x9, :lo12:__stacks_start
    mov     x10, #{boot_stack}
    add     sp, x9, x10
    // Zero .bss (16-byte aligned by the linker script).
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
1:  cmp     x9, x10
    b.hs    2f
    stp     xzr, xzr, [x9], #16
    b       1b
2:  mov     x0, x19
    bl      rust_main
    b       park

    // PSCI CPU_ON target: x0 = context id = secondary index (1..=MAX_SECONDARIES).
    .global secondary_entry
secondary_entry:
    msr     daifset, #0xf
    mov     x19, x0
    cbz     x19, park
    cmp     x19, #{max_secondaries}
    b.hi    park
    bl      cpu_setup
    // sp = __stacks_start + boot_stack + index * secondary_stack
    adrp    x9, __stacks_start
    add     x9, x9, :lo12:__stacks_start
    mov     x10, #{boot_stack}
    add     x9, x9, x10
    mov     x11, #{secondary_stack}
    madd    x9, x19, x11, x9
    mov     sp, x9
    mov     x0, x19
    bl      rust_secondary
    b       park

// FP/SIMD untrapped at EL1 (Rust code uses the SIMD registers), then the
// exception vectors. Clobbers x9.
cpu_setup:
    mov     x9, #(3 << 20)          // CPACR_EL1.FPEN = 0b11
    msr     cpacr_el1, x9
    adrp    x9, exception_vectors
    add     x9, x9, :lo12:exception_vectors
    msr     vbar_el1, x9
    isb
    ret

wrong_place:
    // No console yet: power off through PSCI over HVC (the conduit a guest has).
    ldr     x0, ={system_off}
    hvc     #0
park:
    wfe
    b       park
    .ltorg

    // EL1 vectors (ARM DDI 0487 D1.10.2): 16 entries of 0x80 bytes. Every
    // exception is unexpected here: report it and power off.
    .section .text.vectors, "ax"
    .balign 2048
    .global exception_vectors
exception_vectors:
    .set    vec_index, 0
    .rept   16
    .balign 0x80
    mov     x0, #vec_index
    b       exception_common
    .set    vec_index, vec_index + 1
    .endr

exception_common:
    mrs     x1, esr_el1
    mrs     x2, elr_el1
    mrs     x3, far_el1
    bl      rust_exception
    b       park
"#,
    boot_stack = const BOOT_STACK_SIZE,
    secondary_stack = const SECONDARY_STACK_SIZE,
    max_secondaries = const MAX_SECONDARIES,
    system_off = const PSCI_SYSTEM_OFF,
);

extern "C" {
    /// The PSCI `CPU_ON` entry point above (x0 = context id).
    fn secondary_entry();
    static __image_start: u8;
    static __image_end: u8;
}

/// The physical (guest-physical) address of the secondary CPUs' entry point.
pub fn secondary_entry_addr() -> u64 {
    secondary_entry as *const () as usize as u64
}

/// The image's first byte and one past its last (including `.bss` and stacks).
pub fn image_range() -> (u64, u64) {
    // Only the addresses of the linker-defined symbols are taken.
    (&raw const __image_start as u64, &raw const __image_end as u64)
}
