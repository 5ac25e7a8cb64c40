//! GICv3 (Arm IHI 0069) as EL2 uses it for physical interrupts: the
//! distributor routes an SPI to a CPU, that CPU's redistributor is woken, and
//! the CPU interface is reached through the ICC_* system registers.

use aarch64_cpu::registers::{Readable, Writeable, MPIDR_EL1};
use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_bitfields! {u32,
    /// GICD_CTLR with a single security state (DS = 1, as QEMU's virt).
    GICD_CTLR [
        /// Register write pending.
        RWP OFFSET(31) NUMBITS(1) [],
        /// Affinity routing enable.
        ARE OFFSET(4) NUMBITS(1) [],
        /// Group 1 enable.
        ENABLE_GRP1 OFFSET(1) NUMBITS(1) []
    ],
    /// GICR_WAKER.
    GICR_WAKER [
        /// The redistributor's interface is quiescent.
        CHILDREN_ASLEEP OFFSET(2) NUMBITS(1) [],
        /// The CPU is asleep as far as the GIC is concerned.
        PROCESSOR_SLEEP OFFSET(1) NUMBITS(1) []
    ]
}

register_structs! {
    /// The distributor (the registers used here).
    pub GicdRegs {
        (0x0000 => ctlr: ReadWrite<u32, GICD_CTLR::Register>),
        (0x0004 => typer: ReadOnly<u32>),
        (0x0008 => _reserved0),
        (0x0080 => igroupr: [ReadWrite<u32>; 32]),
        (0x0100 => isenabler: [ReadWrite<u32>; 32]),
        (0x0180 => icenabler: [ReadWrite<u32>; 32]),
        (0x0200 => _reserved1),
        (0x0400 => ipriorityr: [ReadWrite<u32>; 256]),
        (0x0800 => _reserved2),
        (0x0c00 => icfgr: [ReadWrite<u32>; 64]),
        (0x0d00 => _reserved3),
        (0x6000 => irouter: [ReadWrite<u64>; 1020]),
        (0x7fe0 => _reserved4),
        (0x10000 => @END),
    }
}

register_structs! {
    /// One redistributor's RD_base frame (the registers used here).
    pub GicrRegs {
        (0x0000 => ctlr: ReadWrite<u32>),
        (0x0004 => _reserved0),
        (0x0008 => typer: ReadOnly<u64>),
        (0x0010 => _reserved1),
        (0x0014 => waker: ReadWrite<u32, GICR_WAKER::Register>),
        (0x0018 => _reserved2),
        (0x10000 => @END),
    }
}

register_structs! {
    /// One redistributor's SGI_base frame: SGIs and PPIs of its CPU.
    pub GicrSgiRegs {
        (0x0000 => _reserved0),
        (0x0080 => igroupr0: ReadWrite<u32>),
        (0x0084 => _reserved1),
        (0x0100 => isenabler0: ReadWrite<u32>),
        (0x0104 => _reserved2),
        (0x0180 => icenabler0: ReadWrite<u32>),
        (0x0184 => _reserved3),
        (0x0400 => ipriorityr: [ReadWrite<u32>; 8]),
        (0x0420 => _reserved4),
        (0x0c04 => icfgr1: ReadWrite<u32>),
        (0x0c08 => _reserved5),
        (0x10000 => @END),
    }
}

/// A bounded wait on the GIC did not end.
#[derive(Clone, Copy, defmt::Format)]
pub enum GicError {
    /// GICD_CTLR.RWP stayed set.
    DistributorRwp,
    /// GICR_WAKER.ChildrenAsleep stayed set.
    RedistributorWake,
    /// No redistributor frame has this CPU's affinity.
    NoRedistributor,
    /// The INTID is not an SPI the distributor implements.
    BadSpi(u32),
}

const SPIN_BUDGET: u32 = 1_000_000;
/// Bytes per redistributor (RD_base + SGI_base frames, GICv3).
const GICR_STRIDE: u64 = 0x2_0000;
/// GICR_TYPER.Last: this is the last redistributor of the region.
const GICR_TYPER_LAST: u64 = 1 << 4;

/// The distributor and the redistributor regions of a GICv3.
pub struct GicV3 {
    gicd: *const GicdRegs,
    redist_base: u64,
    redist_size: u64,
}

// SAFETY: MMIO shared by design; callers serialise configuration.
unsafe impl Send for GicV3 {}
// SAFETY: as above.
unsafe impl Sync for GicV3 {}

fn wait(mut done: impl FnMut() -> bool) -> bool {
    (0..SPIN_BUDGET).any(|_| {
        let d = done();
        core::hint::spin_loop();
        d
    })
}

impl GicV3 {
    /// Wraps the GIC the DT describes.
    ///
    /// # Safety
    /// The regions must be the GIC's, identity mapped as device memory.
    pub unsafe fn new(g: &boards::platform::GicV3) -> Self {
        let r = g.redists.first().copied().unwrap_or(boards::platform::Region { base: 0, size: 0 });
        Self { gicd: g.dist.base as *const GicdRegs, redist_base: r.base, redist_size: r.size }
    }

    fn gicd(&self) -> &GicdRegs {
        // SAFETY: `new`'s contract.
        unsafe { &*self.gicd }
    }

    /// Enables affinity routing and group 1 in the distributor.
    pub fn init_distributor(&self) -> Result<(), GicError> {
        let d = self.gicd();
        d.ctlr.write(GICD_CTLR::ARE::SET + GICD_CTLR::ENABLE_GRP1::SET);
        wait(|| !d.ctlr.is_set(GICD_CTLR::RWP)).then_some(()).ok_or(GicError::DistributorRwp)
    }

    /// Wakes this CPU's redistributor and enables its CPU interface for
    /// group 1 interrupts at every priority.
    pub fn init_cpu(&self) -> Result<(), GicError> {
        let base = self.my_redistributor().ok_or(GicError::NoRedistributor)?;
        // SAFETY: `my_redistributor` returns a frame inside the DT's region.
        let r = unsafe { &*(base as *const GicrRegs) };
        r.waker.modify_no_read(r.waker.extract(), GICR_WAKER::PROCESSOR_SLEEP::CLEAR);
        if !wait(|| !r.waker.is_set(GICR_WAKER::CHILDREN_ASLEEP)) {
            return Err(GicError::RedistributorWake);
        }
        // SAFETY: GICv3 CPU interface system registers (ICC_SRE_EL2.SRE
        // enables them; Enable lets EL1 use them too): no memory effects.
        unsafe {
            core::arch::asm!(
                "mrs {t}, icc_sre_el2",
                "orr {t}, {t}, #0x1",
                "orr {t}, {t}, #0x8",
                "msr icc_sre_el2, {t}",
                "isb",
                "msr icc_pmr_el1, {pmr}",
                // EOImode 1: EOIR only drops priority, deactivation is
                // separate (ICC_DIR_EL1, or a guest's EOI of a HW-linked
                // virtual interrupt).
                "mrs {t}, icc_ctlr_el1",
                "orr {t}, {t}, #0x2",
                "msr icc_ctlr_el1, {t}",
                "msr icc_igrpen1_el1, {one}",
                "isb",
                t = out(reg) _,
                pmr = in(reg) 0xffu64,
                one = in(reg) 1u64,
                options(nostack)
            );
        }
        Ok(())
    }

    /// The RD_base of this CPU's redistributor (found by affinity).
    fn my_redistributor(&self) -> Option<u64> {
        let aff = MPIDR_EL1.get();
        let aff = ((aff >> 32) & 0xff) << 24 | (aff & 0xff_ffff);
        let mut base = self.redist_base;
        loop {
            if base + GICR_STRIDE > self.redist_base + self.redist_size {
                return None;
            }
            // SAFETY: inside the DT's redistributor region, mapped as device.
            let r = unsafe { &*(base as *const GicrRegs) };
            let typer = r.typer.get();
            if typer >> 32 == aff {
                return Some(base);
            }
            if typer & GICR_TYPER_LAST != 0 {
                return None;
            }
            base += GICR_STRIDE;
        }
    }

    /// Enables SGI or PPI `intid` (0..32) on this CPU as a group 1
    /// interrupt (the kick SGI, the architected timers' PPIs a guest owns).
    pub fn enable_private(&self, intid: u32) -> Result<(), GicError> {
        if intid >= 32 {
            return Err(GicError::BadSpi(intid));
        }
        let base = self.my_redistributor().ok_or(GicError::NoRedistributor)?;
        // SAFETY: the SGI_base frame follows RD_base inside the region.
        let sgi = unsafe { &*((base + 0x1_0000) as *const GicrSgiRegs) };
        sgi.igroupr0.set(sgi.igroupr0.get() | 1 << intid);
        let prio = &sgi.ipriorityr[(intid / 4) as usize];
        let shift = (intid % 4) * 8;
        prio.set((prio.get() & !(0xff << shift)) | (0x80 << shift));
        sgi.isenabler0.set(1 << intid);
        Ok(())
    }

    /// Routes SPI `intid` to this CPU as a group 1 interrupt with the given
    /// trigger, and enables it.
    pub fn enable_spi(&self, intid: u32, edge: bool) -> Result<(), GicError> {
        self.route_spi(intid, edge, MPIDR_EL1.get())
    }

    /// GICD_TYPER.ITLinesNumber: the distributor implements
    /// `32 * (n + 1)` INTIDs.
    pub fn it_lines(&self) -> u32 {
        self.gicd().typer.get() & 0x1f
    }

    /// Enables SPI `intid` at the distributor, as configured before.
    pub fn enable(&self, intid: u32) {
        if (32..1020).contains(&intid) {
            self.gicd().isenabler[(intid / 32) as usize].set(1 << (intid % 32));
        }
    }

    /// Disables SPI `intid` at the distributor.
    pub fn disable_spi(&self, intid: u32) {
        if (32..1020).contains(&intid) {
            self.gicd().icenabler[(intid / 32) as usize].set(1 << (intid % 32));
        }
    }

    /// Routes SPI `intid` to the CPU with affinity `mpidr` as a group 1
    /// interrupt with the given trigger, and enables it.
    pub fn route_spi(&self, intid: u32, edge: bool, mpidr: u64) -> Result<(), GicError> {
        let lines = ((self.gicd().typer.get() & 0x1f) + 1) * 32;
        if !(32..lines.min(1020)).contains(&intid) {
            return Err(GicError::BadSpi(intid));
        }
        let d = self.gicd();
        let (word, bit) = ((intid / 32) as usize, intid % 32);
        d.igroupr[word].set(d.igroupr[word].get() | 1 << bit);
        let prio = &d.ipriorityr[(intid / 4) as usize];
        let shift = (intid % 4) * 8;
        prio.set((prio.get() & !(0xff << shift)) | (0x80 << shift));
        let cfg = &d.icfgr[(intid / 16) as usize];
        let cshift = (intid % 16) * 2 + 1;
        cfg.set((cfg.get() & !(1 << cshift)) | (u32::from(edge) << cshift));
        d.irouter[intid as usize].set(((mpidr >> 32) & 0xff) << 32 | (mpidr & 0xff_ffff));
        d.isenabler[word].set(1 << bit);
        wait(|| !d.ctlr.is_set(GICD_CTLR::RWP)).then_some(()).ok_or(GicError::DistributorRwp)
    }
}

/// Acknowledges the highest-priority pending group 1 interrupt (ICC_IAR1_EL1).
pub fn acknowledge() -> u32 {
    let iar: u64;
    // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt; no memory effects.
    unsafe { core::arch::asm!("mrs {}, icc_iar1_el1", out(reg) iar, options(nomem, nostack)) };
    (iar & 0xff_ffff) as u32
}

/// Drops the running priority of `intid` (ICC_EOIR1_EL1 with EOImode 1):
/// the interrupt stays active until [`deactivate`] or a guest's EOI of the
/// virtual interrupt linked to it.
pub fn priority_drop(intid: u32) {
    // SAFETY: writing ICC_EOIR1_EL1 for an acknowledged INTID; no memory effects.
    unsafe {
        core::arch::asm!("msr icc_eoir1_el1, {}", "isb", in(reg) u64::from(intid), options(nomem, nostack))
    };
}

/// Deactivates `intid` (ICC_DIR_EL1).
pub fn deactivate(intid: u32) {
    // SAFETY: writing ICC_DIR_EL1 for an acknowledged INTID; no memory effects.
    unsafe {
        core::arch::asm!("msr icc_dir_el1, {}", "isb", in(reg) u64::from(intid), options(nomem, nostack))
    };
}

/// Ends an interrupt the hypervisor handled itself: priority drop, then
/// deactivation.
pub fn end_of_interrupt(intid: u32) {
    priority_drop(intid);
    deactivate(intid);
}

/// The GIC, once the boot CPU has brought it up.
static GIC: spin::Once<GicV3> = spin::Once::new();

/// Publishes the GIC for the other CPUs and the partition code.
pub fn publish(gic: GicV3) -> &'static GicV3 {
    GIC.call_once(|| gic)
}

/// The GIC, if this board has a GICv3 that was brought up.
pub fn get() -> Option<&'static GicV3> {
    GIC.get()
}

/// INTIDs 1020..1023 mean "nothing to acknowledge".
pub fn is_spurious(intid: u32) -> bool {
    (1020..1024).contains(&intid)
}
