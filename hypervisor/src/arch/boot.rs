//! Entry: the arm64 Image header, the drop from EL3 to EL2 where a loader
//! enters at EL3, per-CPU stacks, and the jump into Rust.
//!
//! Both QEMU (`-kernel` with an Image) and the Raspberry Pi firmware
//! recognise the header, load the image at RAM base + `text_offset` and pass
//! the DTB address in x0 (Documentation/arch/arm64/booting.rst). One way in
//! serves both boards.

use core::arch::global_asm;
use core::sync::atomic::AtomicU64;

/// Bytes of stack per CPU; must match `STACK_SIZE` in `linker/hypervisor.ld`.
pub const STACK_SIZE: usize = 0x10000;
/// CPUs the image has stacks for; must match `MAX_CPUS` in the linker script.
pub const MAX_CPUS: usize = 8;

global_asm!(
    r#"
    .section .text.head, "ax"
    .global _start
_start:
    b       primary_entry           // code0
    .long   0                       // code1
    .quad   0x80000                 // text_offset: where loaders place us above a 2 MiB base
    .quad   __image_size            // image_size, including .bss and stacks
    .quad   0x2                     // flags: little endian, 4 KiB pages, 2 MiB-aligned base near RAM start
    .quad   0, 0, 0                 // res2..res4
    .ascii  "ARM\x64"               // magic
    .long   0                       // res5

    .section .text.boot, "ax"
primary_entry:
    msr     daifset, #0xf
    mov     x19, x0                 // DTB address from the loader
    bl      enter_el2
    mov     x20, #0                 // logical CPU 0
    b       common_entry

    // PSCI CPU_ON target: x0 = context id = logical CPU index.
    .global secondary_entry
secondary_entry:
    msr     daifset, #0xf
    mov     x20, x0
    mov     x19, #0
    bl      enter_el2
    b       common_entry

    // Spin-table target: the index was published in SPIN_TABLE_CPU before release
    // (cleaned to the point of coherency, since we run with caches off here).
    .global spin_table_entry
spin_table_entry:
    msr     daifset, #0xf
    adrp    x9, SPIN_TABLE_CPU
    add     x9, x9, :lo12:SPIN_TABLE_CPU
    ldr     x20, [x9]
    mov     x19, #0
    bl      enter_el2
    b       common_entry

// Drops from EL3 to EL2 (AArch64, non-secure, HVC enabled); returns at EL2 or
// at whatever EL we were entered at if it was not EL3. Rust reports a wrong EL.
enter_el2:
    mrs     x9, CurrentEL
    lsr     x9, x9, #2
    cmp     x9, #3
    b.ne    1f
    mov     x9, #0x5b1              // SCR_EL3: NS | RES1[5:4] | HCE | RW
    msr     scr_el3, x9
    mov     x9, #0x3c9              // SPSR: DAIF masked, EL2h
    msr     spsr_el3, x9
    msr     elr_el3, x30
    eret
1:  ret

// x19 = DTB (primary) or 0, x20 = logical CPU index.
common_entry:
    cmp     x20, #{max_cpus}
    b.hs    park
    // sp = __stacks_start + (index + 1) * STACK_SIZE
    adrp    x9, __stacks_start
    add     x9, x9, :lo12:__stacks_start
    add     x10, x20, #1
    mov     x11, #{stack_size}
    madd    x9, x10, x11, x9
    mov     sp, x9
    cbnz    x20, 3f
    // Primary: zero .bss (secondaries find it already zeroed).
    adrp    x9, __bss_start
    add     x9, x9, :lo12:__bss_start
    adrp    x10, __bss_end
    add     x10, x10, :lo12:__bss_end
2:  cmp     x9, x10
    b.hs    3f
    stp     xzr, xzr, [x9], #16
    b       2b
3:  mrs     x2, CurrentEL
    lsr     x2, x2, #2
    cmp     x2, #2
    b.ne    4f
    // At EL2: vectors first, so any fault from here on is reported.
    adrp    x9, exception_vectors
    add     x9, x9, :lo12:exception_vectors
    msr     vbar_el2, x9
    // CPTR_EL2: RES1 bits, FP/SIMD not trapped (Rust code uses NEON registers).
    mov     x9, #0x33ff
    msr     cptr_el2, x9
    isb
4:  mov     x0, x20
    mov     x1, x19
    bl      rust_entry
park:
    wfe
    b       park
"#,
    max_cpus = const MAX_CPUS,
    stack_size = const STACK_SIZE,
);

extern "C" {
    static __stacks_start: u8;
}

/// The top of CPU `cpu`'s EL2 stack (stacks grow down).
pub fn stack_top(cpu: usize) -> u64 {
    // SAFETY: a linker-script symbol; only its address is taken.
    let base = unsafe { &__stacks_start as *const u8 as u64 };
    base + ((cpu.min(MAX_CPUS - 1) + 1) * STACK_SIZE) as u64
}

/// Logical index of the CPU a spin-table release is for; read by
/// `spin_table_entry` with the MMU off.
#[no_mangle]
pub static SPIN_TABLE_CPU: AtomicU64 = AtomicU64::new(0);
