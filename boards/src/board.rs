//! [`Board`]: the facts about a machine that its device tree does not carry
//! (how to launch it in QEMU, where the loader puts the image, fallbacks for
//! properties some trees omit), and the lookup from a name or a discovered
//! [`Platform`].

use crate::platform::{EnableMethod, Platform, Region, StrList, Uart};
use crate::{qemu_virt, rpi4};

/// Every supported board, in the order [`board_for_platform`] tries them.
pub const BOARDS: &[Board] = &[qemu_virt::BOARD, rpi4::BOARD];

/// The arm64 Image header `text_offset` Bulkhead's image uses: loaders put the
/// image at RAM base + this (Linux `Documentation/arch/arm64/booting.rst`).
pub const IMAGE_TEXT_OFFSET: u64 = 0x8_0000;

/// A QEMU machine, as the pieces of its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct QemuMachine {
    /// The system emulator.
    pub binary: &'static str,
    /// `-M` value.
    pub machine: &'static str,
    /// `-cpu` value, if the machine lets one choose.
    pub cpu: Option<&'static str>,
    /// `-smp` value, if the machine lets one choose: [`Board::cpus`] as text,
    /// so the CPUs a configuration may name are the CPUs QEMU starts.
    pub smp: Option<&'static str>,
    /// `-m` value.
    pub memory: &'static str,
}

impl QemuMachine {
    /// `-M <machine> [-cpu <cpu>] [-smp <n>] -m <memory>`, ready to append to
    /// a command.
    pub fn args(&self) -> impl Iterator<Item = &'static str> {
        let cpu = self.cpu.map(|c| ["-cpu", c]);
        let smp = self.smp.map(|n| ["-smp", n]);
        ["-M", self.machine]
            .into_iter()
            .chain(cpu.into_iter().flatten())
            .chain(smp.into_iter().flatten())
            .chain(["-m", self.memory])
    }
}

/// A supported machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Board {
    /// Short name (`xtask run --board <name>`).
    pub name: &'static str,
    /// Root `compatible` strings that identify it.
    pub compatible: &'static [&'static str],
    /// How xtask launches it.
    pub qemu: QemuMachine,
    /// First byte of RAM.
    pub ram_base: u64,
    /// Where the board's loader puts an Image whose header says
    /// [`IMAGE_TEXT_OFFSET`].
    pub load_address: u64,
    /// Where the DTB is when the loader leaves x0 = 0 (QEMU booting an ELF).
    pub dtb_if_x0_is_zero: Option<u64>,
    /// Console used when the DT names none, and the source of its clock rate
    /// when the DT's clock is not a fixed clock.
    pub console: Uart,
    /// Spin-table release addresses by CPU number (MPIDR Aff0), for spin-table
    /// CPUs without `cpu-release-addr`.
    pub spin_table_release: &'static [u64],
    /// Whether an IOMMU (SMMUv3) sits in front of DMA-capable devices.
    pub has_iommu: bool,
    /// CPUs the board has as launched ([`QemuMachine::smp`] on QEMU): a
    /// partition configuration names CPUs `0..cpus`, in the order of the DT's
    /// `/cpus`.
    pub cpus: u32,
    /// RAM the hypervisor leaves to partitions, in ascending order: the RAM
    /// of the default launch ([`QemuMachine::memory`]) minus what the
    /// hypervisor keeps for its image, the DTB and its heap.
    pub partition_ram: &'static [Region],
    /// Whether the functions of one multi-function PCI device can be told
    /// apart by the IOMMU and cannot reach each other (ACS). If not, they
    /// form one IOMMU group, assigned whole (Linux's rule for multi-function
    /// devices without ACS; see `iommu-common`'s `group` module).
    pub pci_functions_isolated: bool,
}

/// What [`Board::apply_fallbacks`] filled in, for a log line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Applied {
    /// The DT named no usable console: the board's was used.
    pub console: bool,
    /// The console's clock rate came from the board.
    pub console_clock: bool,
    /// Spin-table release addresses that came from the board.
    pub release_addrs: u32,
}

impl Board {
    /// Whether a root `compatible` list names this board.
    pub fn matches(&self, compatible: &StrList<'_>) -> bool {
        self.compatible.iter().any(|c| compatible.contains(c))
    }

    /// Where QEMU's loader puts an arm64 Image whose header says
    /// `text_offset` (QEMU `hw/arm/boot.c`: RAM base + `text_offset`, moved up
    /// 2 MiB when `text_offset` is below its 4 KiB boot stub). Checked on QEMU
    /// 10.0.2: 0x8_0000 loads at 0x4008_0000 on `virt` and 0x8_0000 on
    /// `raspi4b`; 0 loads at 0x4020_0000 and 0x20_0000.
    pub const fn qemu_image_address(&self, text_offset: u64) -> u64 {
        let offset = if text_offset < 0x1000 { text_offset + 0x20_0000 } else { text_offset };
        self.ram_base.saturating_add(offset)
    }

    /// The spin-table release address of the CPU with `mpidr`, if the board
    /// knows it (CPUs numbered by Aff0 with the other affinity fields zero).
    pub fn release_addr(&self, mpidr: u64) -> Option<u64> {
        if mpidr & !0xff != 0 {
            return None;
        }
        self.spin_table_release.get(mpidr as usize).copied()
    }

    /// Fills what the DT left out and the board knows: the console (or its
    /// clock rate) and spin-table release addresses.
    pub fn apply_fallbacks(&self, platform: &mut Platform<'_>) -> Applied {
        let mut applied = Applied::default();
        match &mut platform.uart {
            None => {
                platform.uart = Some(self.console);
                applied.console = true;
            }
            Some(uart) if uart.clock_hz.is_none() && uart.base == self.console.base => {
                uart.clock_hz = self.console.clock_hz;
                applied.console_clock = uart.clock_hz.is_some();
            }
            Some(_) => {}
        }
        for cpu in platform.cpus.iter_mut() {
            if let EnableMethod::SpinTable { release_addr: addr @ None } = &mut cpu.enable {
                *addr = self.release_addr(cpu.mpidr);
                if addr.is_some() {
                    applied.release_addrs += 1;
                }
            }
        }
        applied
    }
}

/// The board called `name` (`"qemu-virt"`, `"rpi4"`).
pub fn board_by_name(name: &str) -> Option<&'static Board> {
    BOARDS.iter().find(|b| b.name == name)
}

/// The board whose `compatible` the DT's root lists.
pub fn board_for_platform(platform: &Platform<'_>) -> Option<&'static Board> {
    BOARDS.iter().find(|b| b.matches(&platform.compatible))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_found() {
        for b in BOARDS {
            assert_eq!(board_by_name(b.name), Some(b));
            assert_eq!(BOARDS.iter().filter(|o| o.name == b.name).count(), 1);
        }
        assert_eq!(board_by_name("qemu-virt").map(|b| b.has_iommu), Some(true));
        assert_eq!(board_by_name("rpi4").map(|b| b.has_iommu), Some(false));
        assert!(board_by_name("pc").is_none());
    }

    #[test]
    fn qemu_args_are_in_order() {
        let v: heapless::Vec<&str, 8> = qemu_virt::BOARD.qemu.args().collect();
        assert_eq!(
            v.as_slice(),
            [
                "-M",
                "virt,virtualization=on,gic-version=3,iommu=smmuv3",
                "-cpu",
                "max",
                "-smp",
                "4",
                "-m",
                "1G"
            ]
        );
        let p: heapless::Vec<&str, 8> = rpi4::BOARD.qemu.args().collect();
        assert_eq!(p.as_slice(), ["-M", "raspi4b", "-m", "2G"]);
    }

    #[test]
    fn cpus_match_the_launch_and_partition_ram_is_sorted() {
        for b in BOARDS {
            if let Some(smp) = b.qemu.smp {
                assert_eq!(smp.parse::<u32>().ok(), Some(b.cpus), "{}", b.name);
            }
            assert!(b.cpus >= 1);
            assert!(!b.partition_ram.is_empty());
            for w in b.partition_ram.windows(2) {
                assert!(w[0].end().is_some_and(|e| e <= w[1].base), "{}", b.name);
            }
            for r in b.partition_ram {
                assert_eq!(r.base % 0x1000, 0);
                assert_eq!(r.size % 0x1000, 0);
                // The hypervisor's image is never in partition RAM.
                assert!(!r.contains(b.load_address), "{}", b.name);
            }
        }
        assert_eq!(rpi4::BOARD.cpus, 4);
    }

    #[test]
    fn image_addresses_match_qemu() {
        // Observed on QEMU 10.0.2 with `-d in_asm` (see the doc comment).
        let virt = &qemu_virt::BOARD;
        let pi = &rpi4::BOARD;
        assert_eq!(virt.qemu_image_address(IMAGE_TEXT_OFFSET), 0x4008_0000);
        assert_eq!(virt.qemu_image_address(0), 0x4020_0000);
        assert_eq!(pi.qemu_image_address(IMAGE_TEXT_OFFSET), 0x8_0000);
        assert_eq!(pi.qemu_image_address(0), 0x20_0000);
        assert_eq!(virt.load_address, virt.qemu_image_address(IMAGE_TEXT_OFFSET));
        assert_eq!(pi.load_address, pi.qemu_image_address(IMAGE_TEXT_OFFSET));
    }

    #[test]
    fn release_addresses_by_aff0() {
        let pi = &rpi4::BOARD;
        assert_eq!(pi.release_addr(0), Some(0xd8));
        assert_eq!(pi.release_addr(3), Some(0xf0));
        assert_eq!(pi.release_addr(4), None);
        assert_eq!(pi.release_addr(0x100), None);
        assert_eq!(qemu_virt::BOARD.release_addr(0), None);
    }
}
