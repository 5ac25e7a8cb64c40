//! The in-QEMU test plan: which images boot on which board with which QEMU
//! arguments, and what each run must show. `cargo xtask test` runs every
//! suite, collects the named cases each image reports (`case NAME: pass`),
//! checks the exit status and the expected log lines, and counts a suite
//! that hangs past its timeout as failed.
//!
//! The cases themselves run inside the hypervisor (`hypervisor/src/selftest/`,
//! built with the `selftest` feature); this crate only says how to run them
//! and what to expect, so the plan is reviewable in one place.
#![forbid(unsafe_code)]

/// How a device tree is damaged before QEMU hands it over, to prove that bad
/// input is refused with an error instead of a crash or a hang.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtbDamage {
    /// Rename a node (same length, so the blob stays well-formed): the node
    /// the hypervisor looks for is then missing.
    RenameNode {
        /// The node's name as it appears in the blob.
        from: &'static str,
        /// Its new name, of the same length.
        to: &'static str,
    },
}

/// Which device tree the run gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtb {
    /// The board's own: QEMU's generated DT on `virt`, the kernel package's
    /// `bcm2711-rpi-4-b.dtb` on `raspi4b` (as the Pi firmware would pass).
    Board,
    /// The board's DT with damage applied.
    Damaged(DtbDamage),
}

/// One QEMU run and what it must show.
#[derive(Clone, Debug)]
pub struct Suite {
    /// Unique name, printed in the summary.
    pub name: &'static str,
    /// Board name (`boards::BOARDS`).
    pub board: &'static str,
    /// Hypervisor cargo features beyond `qemu-exit`.
    pub features: &'static [&'static str],
    /// Kernel command line: selects self-test cases (`bulkhead.selftest=a,b`).
    pub append: Option<&'static str>,
    /// Extra QEMU arguments (after those of the configuration's `qemu` key).
    pub qemu_args: &'static [&'static str],
    /// The device tree handed over.
    pub dtb: Dtb,
    /// The exit status the hypervisor must end with.
    pub expect_status: i32,
    /// The partition configuration built into the image (a path from the
    /// repository root), if any.
    pub config: Option<&'static str>,
    /// Substrings that must each appear in some decoded log line.
    pub expect_lines: &'static [&'static str],
    /// Substrings that must appear in this order (each in a later line than
    /// the one before): what happened before what.
    pub expect_order: &'static [&'static str],
    /// Disk images (paths from the repository root) whose first MiB must
    /// hold the Linux guest's test pattern after the run (see
    /// `guests/linux/init`): what the guest's driver wrote reached the disk.
    pub disk_patterns: &'static [&'static str],
    /// Text typed into the board's console once a decoded line contains the
    /// trigger: (trigger, text).
    pub input: &'static [(&'static str, &'static str)],
    /// Substrings that must appear in no decoded log line.
    pub forbid_lines: &'static [&'static str],
    /// Wall-clock limit; a run still going is killed and fails.
    pub timeout_secs: u64,
}

const SELFTEST: &[&str] = &["selftest"];

/// Every suite, in the order `cargo xtask test` runs them.
pub fn suites() -> Vec<Suite> {
    let base = Suite {
        name: "",
        board: "qemu-virt",
        features: &[],
        append: None,
        qemu_args: &[],
        dtb: Dtb::Board,
        expect_status: 0,
        config: None,
        expect_lines: &[],
        expect_order: &[],
        disk_patterns: &[],
        input: &[],
        forbid_lines: &["panic", "unexpected exception"],
        timeout_secs: 60,
    };
    vec![
        Suite {
            name: "virt-boot-banner",
            qemu_args: &["-smp", "1", "-nic", "none", "-device", "edu"],
            expect_lines: &[
                "board qemu-virt",
                "RAM 1024 MiB",
                "CPUs online: 1 of 1",
                "GICv3",
                "SMMUv3 at 0x9050000",
                "PCI 00:01.0 1234:11e8",
            ],
            ..base.clone()
        },
        Suite {
            name: "virt-smp3-2g-edu",
            qemu_args: &["-smp", "3", "-m", "2G", "-device", "edu"],
            expect_lines: &["RAM 2048 MiB", "CPUs online: 3 of 3", "1234:11e8"],
            ..base.clone()
        },
        Suite {
            name: "virt-smp4-all-cores",
            qemu_args: &["-smp", "4"],
            expect_lines: &["CPUs online: 4 of 4", "cpu 3 online"],
            ..base.clone()
        },
        Suite {
            name: "virt-selftest",
            features: SELFTEST,
            qemu_args: &["-smp", "2", "-nic", "none", "-device", "edu"],
            // The conformance suite (iommu_common::conformance) on the
            // SMMUv3; the same names pass on VT-d and AMD-Vi (x86 suites).
            expect_lines: &[
                "case conf_map_dma_lands: pass",
                "case conf_unmapped_blocked: pass",
                "case conf_readonly_blocks_write: pass",
                "case conf_remap_invalidates: pass",
                "case conf_detach_blocks: pass",
                "selftest: ",
            ],
            ..base.clone()
        },
        Suite {
            name: "virt-smmu-bypass",
            features: SELFTEST,
            append: Some("bulkhead.selftest=smmu_bypass_ste_passes"),
            // A DMA mask wide enough to reach RAM without translation.
            qemu_args: &["-nic", "none", "-device", "edu,dma_mask=0xffffffffff"],
            expect_lines: &["selftest: 1 passed, 0 failed"],
            ..base.clone()
        },
        Suite {
            name: "virt-el2-fault-is-reported",
            features: SELFTEST,
            append: Some("bulkhead.selftest=el2_unmapped_read"),
            expect_status: 2,
            expect_lines: &["unexpected exception", "Translation", "read of 0x"],
            forbid_lines: &["panic"],
            ..base.clone()
        },
        Suite {
            name: "virt-panic-is-reported",
            features: SELFTEST,
            append: Some("bulkhead.selftest=panic_is_reported"),
            expect_status: 3,
            expect_lines: &["panic: panicked at", "cases.rs", "index out of bounds"],
            forbid_lines: &["unexpected exception"],
            ..base.clone()
        },
        Suite {
            name: "virt-dt-without-cpus-is-refused",
            dtb: Dtb::Damaged(DtbDamage::RenameNode { from: "cpus", to: "cpuz" }),
            expect_status: 4,
            expect_lines: &["device tree", "/cpus"],
            ..base.clone()
        },
        Suite {
            name: "rpi4-boot-banner",
            board: "rpi4",
            expect_lines: &["board rpi4", "CPUs online: 4 of 4", "GICv2", "no SMMU"],
            ..base.clone()
        },
        Suite {
            name: "rpi4-selftest",
            board: "rpi4",
            features: SELFTEST,
            expect_lines: &["selftest: "],
            ..base.clone()
        },
        Suite {
            name: "rpi4-dt-without-cpus-is-refused",
            board: "rpi4",
            dtb: Dtb::Damaged(DtbDamage::RenameNode { from: "cpus", to: "cpuz" }),
            expect_status: 4,
            expect_lines: &["device tree", "/cpus"],
            ..base.clone()
        },
        // The product demo (`cargo xtask run`): the DMA owner's edu reaches
        // its own memory, its DMA at the victim's memory is blocked and
        // traced, and the victim's memory stays intact afterwards.
        Suite {
            name: "virt-demo-partitions",
            config: Some("examples/qemu-virt-demo.toml"),
            expect_lines: &[
                "partition dma-owner: device edu0 = PCI 00:01.0 (StreamID 0x8) shares its stage 2 (VMID 1)",
                "[dma-owner] dma-owner: edu at 00:01.0",
                "[dma-owner] dma-owner: edu interrupt: INTID 36 delivered once",
                // Two vCPUs, the emulated distributor, a virtual SGI between them.
                "[greeter] hello: GICv3 distributor: ",
                "[greeter] hello: cpu 0x1 is up",
                "[greeter] hello: SGI 3 to cpu 0x1 delivered",
                "[greeter] hello: goodbye",
                "partition dma-owner: 3072 DMA fault record(s) from its devices",
            ],
            expect_order: &[
                "[victim] victim: pattern at 0x40100000 ready",
                "[dma-owner] dma-owner: DMA inside own memory: ok (4096 bytes both directions)",
                "SMMU F_TRANSLATION: partition dma-owner, device edu0 (StreamID 0x8, PCI 00:01.0) read of IPA 0x58100000..",
                "[dma-owner] dma-owner: read of peer memory blocked",
                "SMMU F_TRANSLATION: partition dma-owner, device edu0 (StreamID 0x8, PCI 00:01.0) write of IPA 0x58100000..",
                "[dma-owner] dma-owner: expectation met: peer memory blocked",
                "[victim] victim: memory intact after",
                "all partitions stopped",
            ],
            forbid_lines: &["panic", "unexpected exception", "FAIL", "LEAKED", "CHANGED", "ERROR"],
            timeout_secs: 90,
            ..base.clone()
        },
        // Two devices in different IOMMU groups, two partitions, the other
        // fault policies: alpha (inject) gets the fault record and its
        // interrupt, beta (stop-partition) is stopped by its first fault,
        // gamma's memory, which both aim at, stays intact.
        Suite {
            name: "virt-two-devices-fault-policies",
            config: Some("examples/qemu-virt-policies.toml"),
            expect_lines: &[
                // Each sees only its own function on the bus (ECAM filtered).
                "[alpha] dma-owner:   00:01.0 1234:11e8",
                "[beta] dma-owner:   00:02.0 1234:11e8",
                "[alpha] dma-owner: DMA inside own memory: ok (4096 bytes both directions)",
                "[beta] dma-owner: DMA inside own memory: ok (4096 bytes both directions)",
                // INTx forwarded through a HW-linked list register.
                "[alpha] dma-owner: edu interrupt: INTID 36 delivered once",
                "[beta] dma-owner: edu interrupt: INTID 37 delivered once",
                // A CPU access outside the partition: reported, then an abort for the guest.
                "partition delta: CPU data read of IPA 0x60100000 outside its memory and devices",
                "[delta] stray: the load from 0x60100000 was refused: data abort, DFSC 0x10",
                "SMMU F_TRANSLATION: partition alpha, device edu-alpha (StreamID 0x8, PCI 00:01.0) read of IPA 0x60100000..",
                "SMMU F_TRANSLATION: partition beta, device edu-beta (StreamID 0x10, PCI 00:02.0) read of IPA 0x60100000..",
                "[alpha] dma-owner: fault record: event 0x10 read address 0x60100000 stream 0x8",
                "partition beta stopped: fault policy stop-partition",
                "partition beta: device edu-beta blocked (abort STE)",
                "[alpha] dma-owner: expectation met: peer memory blocked",
                "[gamma] victim: memory intact after",
                "all partitions stopped",
            ],
            // beta never gets to report on its attack: it is stopped first.
            forbid_lines: &[
                "panic",
                "unexpected exception",
                "FAIL",
                "LEAKED",
                "CHANGED",
                "[beta] dma-owner: read of peer",
                "[alpha] dma-owner:   00:02.0",
                "[beta] dma-owner:   00:01.0",
                "dma-owner:   00:00.0",
            ],
            timeout_secs: 90,
            ..base.clone()
        },
        // Two partitions on the Pi, two vCPUs each (PSCI CPU_ON inside the
        // partition), each with the virtual console tagged by its name.
        Suite {
            name: "rpi4-two-partitions",
            board: "rpi4",
            config: Some("examples/rpi4-two.toml"),
            expect_lines: &[
                "[left] hello: 2 CPU(s)",
                "[left] hello: cpu 0x1 is up",
                "[right] hello: 2 CPU(s)",
                "[right] hello: cpu 0x1 is up",
                "[left] hello: goodbye",
                "[right] hello: goodbye",
            ],
            // The right partition restarts itself once (SYSTEM_RESET of the
            // partition only): the left one is untouched by it.
            expect_order: &[
                "[right] hello: other CPUs off (AFFINITY_INFO); SYSTEM_RESET",
                "partition right: SYSTEM_RESET",
                "[right] hello: second boot, after SYSTEM_RESET",
                "[right] hello: goodbye",
                "all partitions stopped",
            ],
            forbid_lines: &["panic", "unexpected exception", "FAIL", "ERROR"],
            timeout_secs: 90,
            ..base.clone()
        },
        // An unmodified Debian arm64 kernel (6.12) in a partition with two
        // vCPUs and 128 MiB backed at another physical address, driving
        // its NVMe disk through the SMMU (stage 2 shared with its CPUs),
        // beside a bare-metal partition whose memory stays intact.
        Suite {
            name: "virt-linux-nvme",
            config: Some("examples/linux-nvme.toml"),
            expect_lines: &[
                "[linux] [    0.000000] Machine model: Bulkhead partition linux",
                "[linux] linux-guest: booted 6.12",
                "[linux] linux-guest: cpus online 0-1",
                "[linux] linux-guest: nvme 1 MiB pattern written and read back: ok",
                "[linux] linux-guest: virtio-blk 1 MiB pattern written and read back: ok",
                "[linux] linux-guest: pci 0000:00:01.0 1b36:0010 driver nvme",
                "[linux] linux-guest: pci 0000:00:03.0 1af4:1042 driver virtio-pci",
                "[linux] linux-guest: pci devices: 3",
                // Hostile DMA programmed by hand from Linux: blocked and
                // traced with the partition's name, the victim intact.
                "SMMU F_TRANSLATION: partition linux, device edu0 (StreamID 0x10, PCI 00:02.0) read of IPA 0x58100000..",
                "SMMU F_TRANSLATION: partition linux, device edu0 (StreamID 0x10, PCI 00:02.0) write of IPA 0x58100000..",
                "SMMU F_TRANSLATION: partition linux, device edu0 (StreamID 0x10, PCI 00:02.0) write of IPA 0x48000000..",
                "[linux] linux-guest: hostile: done",
                "hypervisor memory intact: code at ",
                "hypervisor memory intact: device tree at 0x48000000 (1048576 bytes) unchanged",
                "console input goes to partition linux",
                "[linux] typed-42",
                "partition linux: SYSTEM_OFF",
                "all partitions stopped",
            ],
            // Linux's poweroff stops its partition only; the victim checks
            // its memory after the attack, still running.
            expect_order: &[
                "SMMU F_TRANSLATION: partition linux, device edu0 (StreamID 0x10, PCI 00:02.0) write of IPA 0x58100000..",
                "partition linux stopped: the guest asked for SYSTEM_OFF",
                "[victim] victim: memory intact after",
            ],
            disk_patterns: &["target/images/linux/nvme.img", "target/images/linux/vblk.img"],
            // The console takes input: a command typed into Linux's shell.
            input: &[("[linux] linux-guest: shell", "echo typed-$((6*7)); poweroff -f\n")],
            forbid_lines: &["panic", "unexpected exception", "FAIL", "CHANGED", "belongs to a guest"],
            timeout_secs: 180,
            ..base.clone()
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn suite_names_are_unique_and_boards_known() {
        let mut seen = HashSet::new();
        for s in suites() {
            assert!(seen.insert(s.name), "duplicate suite {}", s.name);
            assert!(["qemu-virt", "rpi4"].contains(&s.board), "{}: unknown board {}", s.name, s.board);
            assert!(s.timeout_secs > 0 && s.timeout_secs <= 600, "{}: timeout", s.name);
        }
    }

    #[test]
    fn damage_keeps_the_blob_size() {
        for s in suites() {
            if let Dtb::Damaged(DtbDamage::RenameNode { from, to }) = s.dtb {
                assert_eq!(from.len(), to.len(), "{}: a rename must keep the length", s.name);
            }
        }
    }
}
