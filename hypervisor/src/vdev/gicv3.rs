//! The partition's GICv3 distributor and redistributors, emulated (Arm IHI
//! 0069: GICD_*, GICR_*), at the addresses of the physical ones.
//!
//! A partition may configure only its own interrupts: the SPIs of its
//! devices, and the SGIs and PPIs of its own vCPUs. Enabling or disabling an
//! owned SPI reaches the physical distributor; everything else a guest
//! writes is kept for read-back and changes nothing physical (priorities,
//! triggers and routing of the physical interrupts stay what the hypervisor
//! chose: an owned SPI always goes to the partition's first CPU). Delivery
//! is through the list registers (`vgic.rs`), never through these
//! registers: a guest that never touches them still gets its interrupts.
//!
//! Affinity routing is always on (GICD_CTLR.ARE reads 1, DS reads 1: one
//! security state), no LPIs and no ITS (the guest's device tree has none).

use alloc::vec;
use alloc::vec::Vec;
use spin::Mutex;

const GICD_SIZE: u64 = 0x1_0000;
/// RD_base + SGI_base frames of one redistributor.
pub const GICR_STRIDE: u64 = 0x2_0000;

// Distributor register offsets.
const GICD_CTLR: u64 = 0x0000;
const GICD_TYPER: u64 = 0x0004;
const GICD_IIDR: u64 = 0x0008;
const GICD_IGROUPR: u64 = 0x0080;
const GICD_ISENABLER: u64 = 0x0100;
const GICD_ICENABLER: u64 = 0x0180;
const GICD_IPRIORITYR: u64 = 0x0400;
const GICD_ICFGR: u64 = 0x0c00;
const GICD_IROUTER: u64 = 0x6000;
const PIDR2: u64 = 0xffe8;

// Redistributor offsets (RD_base, then SGI_base at +0x10000).
const GICR_CTLR: u64 = 0x0000;
const GICR_IIDR: u64 = 0x0004;
const GICR_TYPER: u64 = 0x0008;
const GICR_WAKER: u64 = 0x0014;
const SGI_BASE: u64 = 0x1_0000;
const GICR_IGROUPR0: u64 = SGI_BASE + 0x0080;
const GICR_ISENABLER0: u64 = SGI_BASE + 0x0100;
const GICR_ICENABLER0: u64 = SGI_BASE + 0x0180;
const GICR_IPRIORITYR: u64 = SGI_BASE + 0x0400;
const GICR_ICFGR0: u64 = SGI_BASE + 0x0c00;
const GICR_ICFGR1: u64 = SGI_BASE + 0x0c04;

/// GICD_CTLR.DS (single security state) and ARE_NS: fixed to one.
const CTLR_FIXED: u32 = 1 << 6 | 1 << 4;
/// GICD_CTLR bits a guest may set: EnableGrp0, EnableGrp1.
const CTLR_WRITABLE: u32 = 0b11;
/// IIDR: implementer Arm (0x43b), as QEMU's GIC reports.
const IIDR: u32 = 0x43b;
/// PIDR2.ArchRev = 3 (GICv3).
const PIDR2_V3: u32 = 0x3b;

struct Redistributor {
    waker: u32,
    /// SGI/PPI enable bits as the guest set them.
    enabled: u32,
    priority: [u8; 32],
    icfgr1: u32,
}

/// One partition's virtual distributor and its vCPUs' redistributors.
pub struct VirtualGicV3 {
    dist_base: u64,
    redist_base: u64,
    vcpus: usize,
    /// Physical GICD_TYPER.ITLinesNumber: the guest sees as many SPIs.
    it_lines: u32,
    /// The SPIs this partition owns.
    owned: Vec<u32>,
    ctlr: Mutex<u32>,
    /// Guest-visible enable bits of owned SPIs (by INTID / 32).
    enabled: Mutex<Vec<u32>>,
    priority: Mutex<Vec<u8>>,
    icfgr: Mutex<Vec<u32>>,
    irouter: Mutex<Vec<u64>>,
    redists: Vec<Mutex<Redistributor>>,
}

impl VirtualGicV3 {
    /// A distributor at `dist_base` and `vcpus` redistributors from
    /// `redist_base`, showing SPIs up to the physical ones and letting the
    /// guest configure `owned`.
    pub fn new(dist_base: u64, redist_base: u64, vcpus: usize, it_lines: u32, owned: Vec<u32>) -> Self {
        let lines = ((it_lines as usize) + 1) * 32;
        Self {
            dist_base,
            redist_base,
            vcpus,
            it_lines,
            owned,
            ctlr: Mutex::new(0),
            enabled: Mutex::new(vec![0; lines / 32]),
            priority: Mutex::new(vec![0; lines]),
            icfgr: Mutex::new(vec![0; lines / 16]),
            irouter: Mutex::new(vec![0; lines]),
            redists: (0..vcpus)
                .map(|_| {
                    Mutex::new(Redistributor {
                        waker: 0b110, // ProcessorSleep, ChildrenAsleep
                        enabled: 0,
                        priority: [0; 32],
                        icfgr1: 0,
                    })
                })
                .collect(),
        }
    }

    /// Whether `ipa` is in the distributor or one of the redistributors.
    pub fn claims(&self, ipa: u64) -> bool {
        (self.dist_base..self.dist_base + GICD_SIZE).contains(&ipa)
            || (self.redist_base..self.redist_base + GICR_STRIDE * self.vcpus as u64).contains(&ipa)
    }

    fn owns(&self, intid: u32) -> bool {
        self.owned.contains(&intid)
    }

    /// A guest read of `size` bytes at `ipa`.
    pub fn read(&self, ipa: u64, size: u8) -> u64 {
        if ipa >= self.dist_base && ipa < self.dist_base + GICD_SIZE {
            self.dist_read(ipa - self.dist_base, size)
        } else {
            let rel = ipa - self.redist_base;
            self.redist_read((rel / GICR_STRIDE) as usize, rel % GICR_STRIDE, size)
        }
    }

    /// A guest write of `value` (`size` bytes) at `ipa`.
    pub fn write(&self, ipa: u64, size: u8, value: u64) {
        if ipa >= self.dist_base && ipa < self.dist_base + GICD_SIZE {
            self.dist_write(ipa - self.dist_base, size, value)
        } else {
            let rel = ipa - self.redist_base;
            self.redist_write((rel / GICR_STRIDE) as usize, rel % GICR_STRIDE, size, value)
        }
    }

    fn lines(&self) -> u32 {
        (self.it_lines + 1) * 32
    }

    fn dist_read(&self, off: u64, size: u8) -> u64 {
        let lines = u64::from(self.lines());
        match off {
            GICD_CTLR => u64::from(*self.ctlr.lock() | CTLR_FIXED),
            // IDbits = 9 (10-bit INTIDs), no LPIs, no MBIS, ITLinesNumber.
            GICD_TYPER => u64::from(9 << 19 | self.it_lines),
            GICD_IIDR => u64::from(IIDR),
            o if (GICD_IGROUPR..GICD_IGROUPR + lines / 8).contains(&o) => u64::from(u32::MAX),
            o if (GICD_ISENABLER..GICD_ISENABLER + lines / 8).contains(&o)
                || (GICD_ICENABLER..GICD_ICENABLER + lines / 8).contains(&o) =>
            {
                let n = ((o & 0x7f) / 4) as usize;
                u64::from(self.enabled.lock().get(n).copied().unwrap_or(0))
            }
            o if (GICD_IPRIORITYR..GICD_IPRIORITYR + lines).contains(&o) => {
                let first = (o - GICD_IPRIORITYR) as usize;
                let p = self.priority.lock();
                (0..usize::from(size.min(8)))
                    .fold(0u64, |acc, i| acc | u64::from(p.get(first + i).copied().unwrap_or(0)) << (8 * i))
            }
            o if (GICD_ICFGR..GICD_ICFGR + lines / 4).contains(&o) => {
                u64::from(self.icfgr.lock().get(((o - GICD_ICFGR) / 4) as usize).copied().unwrap_or(0))
            }
            o if (GICD_IROUTER + 32 * 8..GICD_IROUTER + lines * 8).contains(&o) => {
                self.irouter.lock().get(((o - GICD_IROUTER) / 8) as usize).copied().unwrap_or(0)
            }
            PIDR2 => u64::from(PIDR2_V3),
            _ => 0,
        }
    }

    fn dist_write(&self, off: u64, size: u8, value: u64) {
        let lines = u64::from(self.lines());
        match off {
            GICD_CTLR => *self.ctlr.lock() = value as u32 & CTLR_WRITABLE,
            o if (GICD_ISENABLER + 4..GICD_ISENABLER + lines / 8).contains(&o) => {
                self.set_enables(((o - GICD_ISENABLER) / 4) as u32, value as u32, true)
            }
            o if (GICD_ICENABLER + 4..GICD_ICENABLER + lines / 8).contains(&o) => {
                self.set_enables(((o - GICD_ICENABLER) / 4) as u32, value as u32, false)
            }
            o if (GICD_IPRIORITYR + 32..GICD_IPRIORITYR + lines).contains(&o) => {
                let first = (o - GICD_IPRIORITYR) as usize;
                let mut p = self.priority.lock();
                for i in 0..usize::from(size.min(8)) {
                    if self.owns((first + i) as u32) {
                        if let Some(b) = p.get_mut(first + i) {
                            *b = (value >> (8 * i)) as u8;
                        }
                    }
                }
            }
            o if (GICD_ICFGR + 8..GICD_ICFGR + lines / 4).contains(&o) => {
                if let Some(w) = self.icfgr.lock().get_mut(((o - GICD_ICFGR) / 4) as usize) {
                    *w = value as u32;
                }
            }
            o if (GICD_IROUTER + 32 * 8..GICD_IROUTER + lines * 8).contains(&o) => {
                let intid = ((o - GICD_IROUTER) / 8) as u32;
                if self.owns(intid) {
                    if let Some(r) = self.irouter.lock().get_mut(intid as usize) {
                        *r = value;
                    }
                }
            }
            _ => {}
        }
    }

    /// GICD_IS/ICENABLER<n> for SPIs: owned bits reach the physical
    /// distributor, others are ignored.
    fn set_enables(&self, n: u32, bits: u32, enable: bool) {
        let Some(gic) = crate::gic::v3::get() else { return };
        let mut en = self.enabled.lock();
        for bit in 0..32 {
            let intid = n * 32 + bit;
            if bits & (1 << bit) == 0 || !self.owns(intid) {
                continue;
            }
            if let Some(w) = en.get_mut(n as usize) {
                if enable {
                    *w |= 1 << bit;
                    gic.enable(intid);
                } else {
                    *w &= !(1 << bit);
                    gic.disable_spi(intid);
                }
            }
        }
    }

    fn redist_read(&self, vcpu: usize, off: u64, size: u8) -> u64 {
        let Some(r) = self.redists.get(vcpu) else { return 0 };
        let r = r.lock();
        match off {
            GICR_CTLR => 0,
            GICR_IIDR => u64::from(IIDR),
            GICR_TYPER => {
                let last = if vcpu + 1 == self.vcpus { 1 << 4 } else { 0 };
                (vcpu as u64) << 32 | (vcpu as u64) << 8 | last
            }
            o if o == GICR_TYPER + 4 => vcpu as u64,
            GICR_WAKER => u64::from(r.waker),
            GICR_IGROUPR0 => u64::from(u32::MAX),
            GICR_ISENABLER0 | GICR_ICENABLER0 => u64::from(r.enabled),
            o if (GICR_IPRIORITYR..GICR_IPRIORITYR + 32).contains(&o) => {
                let first = (o - GICR_IPRIORITYR) as usize;
                (0..usize::from(size.min(8))).fold(0u64, |acc, i| {
                    acc | u64::from(r.priority.get(first + i).copied().unwrap_or(0)) << (8 * i)
                })
            }
            // SGIs are edge-triggered and read as such.
            GICR_ICFGR0 => 0xaaaa_aaaa,
            GICR_ICFGR1 => u64::from(r.icfgr1),
            PIDR2 => u64::from(PIDR2_V3),
            _ => 0,
        }
    }

    fn redist_write(&self, vcpu: usize, off: u64, size: u8, value: u64) {
        let Some(r) = self.redists.get(vcpu) else { return };
        let mut r = r.lock();
        match off {
            // ChildrenAsleep follows ProcessorSleep at once.
            GICR_WAKER => {
                let sleep = value as u32 & 0b10;
                r.waker = sleep | sleep << 1;
            }
            GICR_ISENABLER0 => r.enabled |= value as u32,
            GICR_ICENABLER0 => r.enabled &= !(value as u32),
            o if (GICR_IPRIORITYR..GICR_IPRIORITYR + 32).contains(&o) => {
                let first = (o - GICR_IPRIORITYR) as usize;
                for i in 0..usize::from(size.min(8)) {
                    if let Some(b) = r.priority.get_mut(first + i) {
                        *b = (value >> (8 * i)) as u8;
                    }
                }
            }
            GICR_ICFGR1 => r.icfgr1 = value as u32,
            _ => {}
        }
    }
}
