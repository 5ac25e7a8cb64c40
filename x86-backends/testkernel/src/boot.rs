//! PVH entry (Xen `arch-x86/hvm/start_info.h`, "x86/HVM direct boot ABI"):
//! QEMU's `-kernel` finds the `XEN_ELFNOTE_PHYS32_ENTRY` note, loads the ELF
//! at its physical addresses and enters the 32-bit stub below in flat
//! protected mode with paging off and EBX = the `hvm_start_info` address.
//!
//! The stub zeroes `.bss`, builds identity page tables for the first 4 GiB
//! with 2 MiB pages (everything from 0xb000_0000 uncached: the q35 ECAM, the
//! 32-bit PCI window and the high MMIO at 0xfe00_0000.. where the IOAPIC,
//! HPET, AMD-Vi 0xfed8_0000, VT-d 0xfed9_0000 and the LAPIC live), enables
//! PAE and EFER.LME, loads a GDT with a 64-bit code segment, turns paging on,
//! far-jumps to 64-bit code, sets up a 64 KiB stack and calls
//! `kmain(start_info)`.

/// `hvm_start_info.magic` ("xEn3" with the high bit of the 4th byte set).
pub const HVM_START_MAGIC: u32 = 0x336e_c578;

/// The start of the first uncached 2 MiB page: RAM on q35 never reaches it
/// (QEMU's q35 keeps at most 0xb000_0000 bytes of RAM below 4 GiB).
pub const UNCACHED_FROM: u64 = 0xb000_0000;

/// Page-table entry bits (Intel SDM vol. 3 §4.5, tables 4-15 and 4-17).
pub mod pte {
    /// Present.
    pub const P: u64 = 1 << 0;
    /// Writable.
    pub const RW: u64 = 1 << 1;
    /// Page-level write-through.
    pub const PWT: u64 = 1 << 3;
    /// Page-level cache disable.
    pub const PCD: u64 = 1 << 4;
    /// Page size: a 2 MiB leaf in a page directory.
    pub const PS: u64 = 1 << 7;
}

/// `struct hvm_start_info` (version 1), as QEMU's PVH option ROM fills it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HvmStartInfo {
    /// [`HVM_START_MAGIC`].
    pub magic: u32,
    /// Structure version (QEMU: 1).
    pub version: u32,
    /// SIF_* flags.
    pub flags: u32,
    /// Entries in the module list.
    pub nr_modules: u32,
    /// Physical address of the module list.
    pub modlist_paddr: u64,
    /// Physical address of the NUL-terminated command line (`-append`), or 0.
    pub cmdline_paddr: u64,
    /// Physical address of the ACPI RSDP, or 0.
    pub rsdp_paddr: u64,
    /// Physical address of the E820-style memory map (version 1).
    pub memmap_paddr: u64,
    /// Entries in the memory map.
    pub memmap_entries: u32,
    /// Must be zero.
    pub reserved: u32,
}

/// The page tables the stub built: one PML4, one PDPT, four page directories.
#[repr(C, align(4096))]
pub struct BootTables {
    /// Level 4.
    pub pml4: [u64; 512],
    /// Level 3: entries 0..4 point at `pd`.
    pub pdpt: [u64; 512],
    /// Level 2: 2048 leaf entries of 2 MiB, identity for the first 4 GiB.
    pub pd: [[u64; 512]; 4],
}

extern "C" {
    /// Written by the stub before paging is on, read-only afterwards.
    pub static boot_tables: BootTables;
}

core::arch::global_asm!(
    r#"
    /* Xen ELF note: namesz, descsz, type, "Xen\0", then the entry address.
       QEMU reads the descriptor as a pointer-sized value, hence .quad. */
    .section .note.Xen, "a", @note
    .balign 4
    .long 4
    .long 8
    .long 18                        /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .balign 4
    .quad pvh_start32
    .balign 4

    .section .text.boot, "ax"
    .code32
    .global pvh_start32
pvh_start32:
    cli
    cld
    mov %ebx, %esi                  /* hvm_start_info, for kmain */

    /* Zero .bss: the page tables and the stack live there. */
    mov $__bss_start, %edi
    mov $__bss_end, %ecx
    sub %edi, %ecx
    xor %eax, %eax
    rep stosb

    /* PML4[0] -> PDPT, PDPT[0..4] -> PD0..PD3 (present, writable). */
    mov $(boot_tables + 0x1000 + 0x3), %eax
    mov %eax, boot_tables
    mov $(boot_tables + 0x2000 + 0x3), %eax
    mov %eax, boot_tables + 0x1000
    add $0x1000, %eax
    mov %eax, boot_tables + 0x1008
    add $0x1000, %eax
    mov %eax, boot_tables + 0x1010
    add $0x1000, %eax
    mov %eax, boot_tables + 0x1018

    /* 2048 leaves of 2 MiB: P|RW|PS, plus PCD|PWT from UNCACHED_FROM. */
    xor %ecx, %ecx
1:
    mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    cmp $(0xb0000000 >> 21), %ecx
    jb 2f
    or $0x18, %eax
2:
    mov %eax, boot_tables + 0x2000(,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jb 1b

    mov $boot_tables, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax                  /* CR4.PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx           /* IA32_EFER */
    rdmsr
    or $0x100, %eax                 /* EFER.LME */
    wrmsr
    lgdt boot_gdt_ptr
    mov %cr0, %eax
    or $0x80000001, %eax            /* CR0.PG | CR0.PE: IA-32e mode */
    mov %eax, %cr0
    ljmp $0x08, $pvh_start64

    .code64
pvh_start64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    xor %eax, %eax
    mov %eax, %fs
    mov %eax, %gs
    mov $boot_stack_top, %rsp
    /* The upper halves of the GPRs are undefined after the switch:
       the 32-bit move zero-extends the start_info address. */
    mov %esi, %edi
    call kmain
3:
    hlt
    jmp 3b

    .section .rodata.boot, "a"
    .balign 8
boot_gdt:
    .quad 0                         /* null */
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff        /* 0x10: flat data */
boot_gdt_end:
    .balign 4
boot_gdt_ptr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .section .bss.boot, "aw", @nobits
    .balign 4096
    .global boot_tables
boot_tables:
    .skip 0x1000 * 6
    .balign 16
boot_stack:
    .skip 0x10000
boot_stack_top:
"#,
    options(att_syntax)
);
