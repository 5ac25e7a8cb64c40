//! Building the partitions at boot from the embedded configuration: checked
//! again against the machine the device tree describes, then for each
//! partition its stage-2 tables, RAM (cleared), devices (BARs, StreamIDs,
//! interrupts), image, fault page and generated device tree.
//!
//! Guest RAM layout (first memory region): the image at the 2 MiB-aligned
//! base + its `text_offset`; at the top, the fault record page, below it the
//! device tree (2 MiB slot), below that the initramfs.

use super::image::{ImageError, ImageHeader};
use super::{embedded, AssignedPci, BootImage, Partition, RateLimiter, LIVE, PARTITIONS};
use crate::pci::{Bar, BarAllocator, Bdf, Ecam};
use crate::vdev::ecam::{Function, VirtualEcam};
use crate::vdev::gicv3::VirtualGicV3;
use crate::vdev::pl011::VirtualPl011;
use crate::{irq, smmu_host, smp};
use alloc::format;
use alloc::vec::Vec;
use boards::config::{Config, Console, DeviceKind, KernelSource};
use boards::guest_dt::{self, GuestDt, GuestGic, IntxEntry, Reserved};
use boards::platform::{Gic, PciSpace, Region, Trigger};
use boards::Platform;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use iommu_common::addr::{Iova, PhysAddr};
use iommu_common::pgtable::vmsav8::{Granule as PtGranule, S2Table, Stage2, TableConfig};
use iommu_common::pgtable::{Access as PtAccess, IoPageTable, MemType, PoolAllocator, Prot};
use smmu::caps::{AddrSize, Granule};
use smmu::ste::Stage2Cfg;
use smmu::{SmmuConfig, Vmid};
use spin::Mutex;

/// IPA and output size of partition stage-2 tables: 40 bits covers `virt`'s
/// high PCIe windows and every board's RAM, and every CPU and SMMU here
/// supports it.
const IPA_BITS: u32 = 40;
const PAGE: u64 = 0x1000;
/// Table pages per partition (a few suffice for block-mapped RAM; BARs and
/// small MMIO regions take 4 KiB leaves).
const TABLE_PAGES: usize = 128;
/// Slot for the device tree below the fault page (booting.rst: at most 2 MiB).
const DTB_SLOT: u64 = 2 << 20;

/// Why the partitions could not be built. Each is logged with its detail
/// where it happened.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct BuildError;

fn fail(msg: &str) -> BuildError {
    defmt::error!("partitions: {=str}", msg);
    BuildError
}

/// Builds the partitions the embedded configuration names and starts each
/// one's first vCPU. `online` is the number of CPUs that came up. Returns
/// how many partitions run (0 if the image carries no configuration).
pub fn build(platform: &Platform<'_>, online: usize, dt_range: (u64, u64)) -> Result<usize, BuildError> {
    let Some((file, text)) = embedded::CONFIG else {
        defmt::info!("no partitions configured (built without BULKHEAD_CONFIG)");
        return Ok(0);
    };
    let config = match Config::parse(text) {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                defmt::error!("{=str}:{=str}", file, format!("{e}").as_str());
            }
            return Err(fail("the configuration is refused"));
        }
    };
    check_machine(&config, platform, online)?;
    let needs_smmu =
        config.partitions.iter().any(|p| p.devices.iter().any(|d| matches!(d.kind, DeviceKind::Pci(_))));
    if needs_smmu {
        bring_up_smmu(platform)?;
    }
    let mut bars = platform
        .pcie
        .first()
        .and_then(|h| h.windows.iter().find(|w| w.kind == PciSpace::Mem32))
        .map(|w| BarAllocator::new(w.pci_addr, w.cpu_addr, w.size));
    let mut built = Vec::new();
    for (index, cfg) in config.partitions.iter().enumerate() {
        built.push(build_one(index, cfg, platform, bars.as_mut())?);
    }
    LIVE.store(built.len(), Ordering::Release);
    let parts = PARTITIONS.call_once(|| built);
    for p in parts.iter() {
        p.load();
        defmt::info!(
            "partition {=str}: VMID {=u16}, {=usize} vCPU(s) on CPU {=usize}.., {=u64} MiB RAM, {=usize} PCI device(s), fault policy {=str}",
            p.name(),
            p.vmid(),
            p.cpus.len(),
            p.cpus[0],
            p.config.memory.iter().map(|m| m.size).sum::<u64>() >> 20,
            p.pci.len(),
            policy_name(p.config.fault_policy)
        );
    }
    console_input(platform);
    super::watch::arm(dt_range.0, dt_range.1);
    for p in parts.iter() {
        p.start();
    }
    Ok(parts.len())
}

/// Which partition gets what the user types.
static INPUT_FOCUS: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
/// Ctrl-]: moves the input focus to the next partition with a virtual console.
const FOCUS_KEY: u8 = 0x1d;

/// The console's receive interrupt carries typed bytes to the partition in
/// focus: the first one with a virtual console, then the next at each
/// Ctrl-].
fn console_input(platform: &Platform<'_>) {
    let (Some(uart), Some(gic), Some(irq)) =
        (crate::log::console_uart(), crate::gic::v3::get(), platform.uart.as_ref().and_then(|u| u.irq))
    else {
        return;
    };
    let Some(first) = super::all().iter().position(|p| p.has_virtual_console()) else { return };
    INPUT_FOCUS.store(first, Ordering::Release);
    if irq::register(irq.intid(), on_console_rx).is_err() || gic.enable_spi(irq.intid(), false).is_err() {
        defmt::warn!("console input not available (interrupt {=u32})", irq.intid());
        return;
    }
    uart.enable_rx_interrupt();
    defmt::info!("console input goes to partition {=str} (Ctrl-] for the next)", super::all()[first].name());
}

fn on_console_rx(_intid: u32) {
    let Some(uart) = crate::log::console_uart() else { return };
    let parts = super::all();
    while let Some(b) = uart.read_byte() {
        if b == FOCUS_KEY {
            let from = INPUT_FOCUS.load(Ordering::Acquire);
            let next = (1..=parts.len())
                .map(|k| (from + k) % parts.len())
                .find(|&i| parts[i].has_virtual_console() && !parts[i].is_stopped());
            if let Some(n) = next {
                INPUT_FOCUS.store(n, Ordering::Release);
                defmt::info!("console input goes to partition {=str}", parts[n].name());
            }
            continue;
        }
        if let Some(p) = parts.get(INPUT_FOCUS.load(Ordering::Acquire)) {
            p.console_input(b);
        }
    }
}

fn policy_name(p: boards::config::FaultPolicy) -> &'static str {
    match p {
        boards::config::FaultPolicy::Log => "log",
        boards::config::FaultPolicy::StopPartition => "stop-partition",
        boards::config::FaultPolicy::Inject => "inject",
    }
}

/// What the configuration was checked against on the host, checked again
/// against this machine: the CPUs are online and the RAM exists.
fn check_machine(config: &Config, platform: &Platform<'_>, online: usize) -> Result<(), BuildError> {
    for p in &config.partitions {
        for &c in &p.cpus {
            if c as usize >= online || smp::mpidr_of(c as usize).is_none() {
                defmt::error!(
                    "partition {=str}: CPU {=u32} is not online ({=usize} CPUs are)",
                    p.name.as_str(),
                    c,
                    online
                );
                return Err(BuildError);
            }
        }
        for m in &p.memory {
            let inside = platform.memory.iter().any(|r| {
                r.base <= m.host.0
                    && r.end().is_some_and(|e| m.host.0.checked_add(m.size).is_some_and(|me| me <= e))
            });
            if !inside {
                defmt::error!(
                    "partition {=str}: RAM {=u64:#x}+{=u64:#x} is not RAM on this machine",
                    p.name.as_str(),
                    m.host.0,
                    m.size
                );
                return Err(BuildError);
            }
        }
    }
    Ok(())
}

fn bring_up_smmu(platform: &Platform<'_>) -> Result<(), BuildError> {
    let s =
        platform.smmus.first().ok_or_else(|| fail("PCI devices are assigned but the machine has no SMMU"))?;
    let host = platform
        .pcie
        .first()
        .ok_or_else(|| fail("PCI devices are assigned but the machine has no PCIe host"))?;
    smmu_host::report(s);
    let irqs = smmu::driver::IrqEnables { gerror: true, eventq: true, priq: false };
    // A blocked DMA of one page is 1024 event records in QEMU (one per
    // 4-byte access): a queue of 2^15 (1 MiB) keeps several devices'
    // storms apart before the interrupt drains them.
    let config = SmmuConfig { irqs, evtq_log2size: 15, ..SmmuConfig::default() };
    let smmu = smmu_host::bring_up(s, &config).map_err(|e| {
        defmt::error!("SMMU bring-up: {}", defmt::Display2Format(&e));
        BuildError
    })?;
    smmu_host::set_rid_map(host);
    smmu_host::with_active(|a| *a = Some(smmu));
    let gic = crate::gic::v3::get().ok_or_else(|| fail("the SMMU's interrupts need a GICv3"))?;
    for (irq, handler) in
        [(s.irqs.eventq, smmu_host::on_event_irq as fn(u32)), (s.irqs.gerror, smmu_host::on_gerror_irq)]
    {
        let Some(irq) = irq else { continue };
        irq::register(irq.intid(), handler).map_err(|_| fail("IRQ table full"))?;
        gic.enable_spi(irq.intid(), irq.trigger() != Trigger::LevelHigh)
            .map_err(|_| fail("the GIC refused an SMMU interrupt"))?;
    }
    defmt::info!("SMMU: every StreamID aborts until assigned");
    Ok(())
}

fn prot_ram() -> Prot {
    Prot::new(PtAccess::RW | PtAccess::EXEC, MemType::WriteBack)
}

fn prot_mmio() -> Prot {
    Prot::new(PtAccess::RW, MemType::Device)
}

/// Maps `[base, base + size)` identity as device memory, rounded out to
/// pages.
fn map_mmio(t: &mut S2Table<PoolAllocator>, base: u64, size: u64) -> Result<(), BuildError> {
    let start = base & !(PAGE - 1);
    let end = (base + size).next_multiple_of(PAGE);
    t.map(Iova(start), PhysAddr(start), end - start, prot_mmio()).map_err(|e| {
        defmt::error!(
            "stage 2: MMIO {=u64:#x}..{=u64:#x} not mapped: {}",
            start,
            end,
            defmt::Debug2Format(&e)
        );
        BuildError
    })
}

fn build_one(
    index: usize,
    cfg: &boards::config::Partition,
    platform: &Platform<'_>,
    bars: Option<&mut BarAllocator>,
) -> Result<Partition, BuildError> {
    let name = cfg.name.as_str();
    let vmid = u16::try_from(index + 1).map_err(|_| fail("too many partitions for 8-bit VMIDs"))?;
    let mut table = S2Table::new(
        Stage2,
        TableConfig::new(PtGranule::Size4K, IPA_BITS, IPA_BITS),
        PoolAllocator::new(TABLE_PAGES, PAGE as usize),
    )
    .map_err(|_| fail("stage-2 table configuration"))?;

    // RAM: mapped with the largest blocks alignment allows, and cleared so
    // nothing of a previous occupant leaks in.
    for m in &cfg.memory {
        table.map(Iova(m.guest.0), PhysAddr(m.host.0), m.size, prot_ram()).map_err(|e| {
            defmt::error!("partition {=str}: RAM not mapped: {}", name, defmt::Debug2Format(&e));
            BuildError
        })?;
        // SAFETY: the range is RAM of this machine (checked), owned by this
        // partition alone (validated: no overlap with other partitions or
        // the hypervisor's own memory), mapped read-write at EL2.
        unsafe { crate::arch::cache::zero_range(m.host.0, m.size) };
        crate::arch::cache::clean_range(m.host.0, m.size);
    }

    // Devices.
    let host = platform.pcie.first();
    let ecam = host.map(Ecam::of_host);
    let mut pci = Vec::new();
    let mut functions = Vec::new();
    let mut intx_entries: Vec<IntxEntry> = Vec::new();
    let mut owned_spis: Vec<u32> = Vec::new();
    let mut bars = bars;
    let boot_cpu = *cfg.cpus.first().ok_or_else(|| fail("a partition without CPUs"))? as usize;
    let boot_mpidr = smp::mpidr_of(boot_cpu).ok_or_else(|| fail("boot CPU not online"))?;
    for d in &cfg.devices {
        // The configuration may opt a device into bounce buffering, but
        // partitions cannot use it yet: a passed-through device's DMA goes
        // wherever its guest points it, so accepting it here would leave it
        // unconfined. Refused until the bounce path exists.
        if d.bounce {
            defmt::error!(
                "partition {=str}: device {=str} asks for bounce buffering, which partitions do not support yet: refused",
                name,
                d.name.as_str()
            );
            return Err(BuildError);
        }
        match &d.kind {
            DeviceKind::Pci(b) => {
                let (Some(host), Some(ecam), Some(bars)) = (host, ecam.as_ref(), bars.as_deref_mut()) else {
                    return Err(fail("a PCI device on a machine without a PCIe host"));
                };
                let bdf = Bdf { bus: b.bus, dev: b.dev, func: b.func };
                if ecam.read32(bdf, 0) & 0xffff == 0xffff {
                    defmt::error!(
                        "partition {=str}: device {=str}: no PCI function at {}",
                        name,
                        d.name.as_str(),
                        bdf
                    );
                    return Err(BuildError);
                }
                let (_, sid) = host
                    .stream_id(bdf.rid())
                    .ok_or_else(|| fail("an assigned PCI function has no StreamID"))?;
                let mut fbars: heapless::Vec<Bar, 6> = heapless::Vec::new();
                let mut i = 0u8;
                while i < 6 {
                    match ecam.assign_bar(bdf, i, bars) {
                        Ok(Some(bar)) => {
                            map_mmio(&mut table, bar.cpu_addr, bar.size)?;
                            i += if bar.wide { 2 } else { 1 };
                            let _ = fbars.push(bar);
                        }
                        Ok(None) => i += 1,
                        Err(crate::pci::BarError::IoBar) => {
                            defmt::warn!("partition {=str}: device {=str}: I/O BAR {=u8} left unassigned (no port I/O on this machine)", name, d.name.as_str(), i);
                            i += 1;
                        }
                        Err(e) => {
                            defmt::error!(
                                "partition {=str}: device {=str}: BAR {=u8}: {}",
                                name,
                                d.name.as_str(),
                                i,
                                e
                            );
                            return Err(BuildError);
                        }
                    }
                }
                // Memory decoding on; bus mastering is the guest driver's choice.
                ecam.enable(bdf, false);
                let pin = (ecam.read32(bdf, 0x3c) >> 8) as u8;
                let intx = if (1..=4).contains(&pin) {
                    host.intx.as_ref().and_then(|m| m.route(bdf.bus, bdf.dev, bdf.func, pin))
                } else {
                    None
                };
                if let Some(irq) = intx {
                    route_irq(irq.intid(), irq.trigger() != Trigger::LevelHigh, boot_mpidr)?;
                    owned_spis.push(irq.intid());
                    intx_entries.push(IntxEntry { bdf: bdf.rid(), pin, irq });
                }
                let stage2 = table.stage2_config();
                let ste = Stage2Cfg::new(
                    Vmid(vmid),
                    stage2.vttb,
                    IPA_BITS as u8,
                    Granule::K4,
                    stage2.start_level,
                    AddrSize::Bits40,
                )
                .map_err(|_| fail("stage-2 STE fields"))?;
                smmu_host::attach_stage2(sid, ste).map_err(|e| {
                    defmt::error!(
                        "partition {=str}: STE for StreamID {=u32:#x}: {}",
                        name,
                        sid,
                        defmt::Display2Format(&e)
                    );
                    BuildError
                })?;
                defmt::info!(
                    "partition {=str}: device {=str} = PCI {} (StreamID {=u32:#x}) shares its stage 2 (VMID {=u16}), {=usize} BAR(s), INTx {=u32}",
                    name,
                    d.name.as_str(),
                    bdf,
                    sid,
                    vmid,
                    fbars.len(),
                    intx.map_or(0, |i| i.intid())
                );
                functions.push(Function::new(ecam, bdf, fbars));
                pci.push(AssignedPci { name: d.name.clone(), bdf, sid, intx: intx.map(|i| i.intid()) });
            }
            DeviceKind::Mmio { regions, irqs } => {
                for r in regions {
                    map_mmio(&mut table, r.base, r.size)?;
                }
                for &intid in irqs {
                    route_irq(intid, false, boot_mpidr)?;
                    owned_spis.push(intid);
                }
            }
        }
    }

    // The image, the fault page, the device tree, the initramfs.
    let first = cfg.memory.first().ok_or_else(|| fail("a partition without RAM"))?;
    let key = match &cfg.kernel {
        KernelSource::Builtin(n) => format!("builtin:{n}"),
        KernelSource::Path(p) => p.clone(),
    };
    let image = embedded::image(&key).ok_or_else(|| fail("a kernel image is not embedded in this build"))?;
    let header = ImageHeader::parse(image).map_err(|e: ImageError| {
        defmt::error!("partition {=str}: kernel {=str}: {}", name, key.as_str(), e);
        BuildError
    })?;
    let base_ipa = first.guest.0.next_multiple_of(2 << 20);
    let entry = base_ipa + header.text_offset;
    let top = first.guest.0 + first.size;
    let fault_ipa = top - PAGE;
    let dtb_ipa = fault_ipa.checked_sub(DTB_SLOT).ok_or_else(|| fail("RAM too small"))?;
    let initrd = match &cfg.initramfs {
        Some(f) => {
            let bytes =
                embedded::image(f).ok_or_else(|| fail("an initramfs is not embedded in this build"))?;
            let at = dtb_ipa
                .checked_sub((bytes.len() as u64).next_multiple_of(PAGE))
                .ok_or_else(|| fail("RAM too small"))?;
            Some((at, bytes))
        }
        None => None,
    };
    let lowest_above_image = initrd.map_or(dtb_ipa, |(at, _)| at);
    if entry.checked_add(header.image_size).is_none_or(|e| e > lowest_above_image) {
        defmt::error!(
            "partition {=str}: kernel needs {=u64:#x} bytes at {=u64:#x}, RAM has room for {=u64:#x}",
            name,
            header.image_size,
            entry,
            lowest_above_image.saturating_sub(entry)
        );
        return Err(BuildError);
    }
    let to_pa = |ipa: u64| {
        cfg.ipa_to_pa(boards::config::Ipa(ipa)).map(|p| p.0).ok_or_else(|| fail("layout outside RAM"))
    };
    if let Some((at, bytes)) = initrd {
        let pa = to_pa(at)?;
        // SAFETY: inside the partition's first RAM region (checked above),
        // mapped read-write at EL2.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), pa as *mut u8, bytes.len()) };
        crate::arch::cache::clean_range(pa, bytes.len() as u64);
    }

    // Console: the virtual PL011 at the board console's address.
    let uart = platform.uart.as_ref();
    let console = match (&cfg.console, uart) {
        (Console::Virtual, Some(u)) => Some(VirtualPl011::new(u.base)),
        _ => None,
    };
    let guest_uart = match (&cfg.console, uart) {
        (Console::Virtual, Some(u)) => Some(guest_dt::Pl011 {
            regs: Region { base: u.base, size: u.size.max(0x1000) },
            irq: u.irq.unwrap_or(guest_dt::spi(1, guest_dt::IRQ_LEVEL_HIGH)),
            clock_hz: u.clock_hz.unwrap_or(24_000_000),
        }),
        _ => None,
    };
    let (gic, cpu_count) = match &platform.gic {
        Gic::V3(g) => (
            GuestGic::V3 {
                dist: g.dist,
                redist: Region {
                    base: g.redists.first().map_or(0, |r| r.base),
                    size: 0x2_0000 * cfg.cpus.len() as u64,
                },
            },
            cfg.cpus.len() as u32,
        ),
        Gic::V2(g) => (GuestGic::V2 { dist: g.dist, cpu: g.cpu }, cfg.cpus.len() as u32),
    };
    let memory: Vec<Region> = cfg.memory.iter().map(|m| Region { base: m.guest.0, size: m.size }).collect();
    let windows: Vec<boards::platform::PciWindow> =
        host.map(|h| h.windows.iter().copied().collect()).unwrap_or_default();
    let pcie = match (host, pci.is_empty()) {
        (Some(h), false) => Some(guest_dt::Pcie {
            ecam: h.ecam,
            bus_range: (h.bus_start, h.bus_end),
            windows: &windows,
            intx: (!intx_entries.is_empty()).then_some(guest_dt::Intx::Map(&intx_entries)),
            dma_coherent: h.coherent,
        }),
        _ => None,
    };
    let reserved =
        [Reserved { name: boards::abi::FAULT_PAGE_NODE, region: Region { base: fault_ipa, size: PAGE } }];
    let model = format!("Bulkhead partition {name}");
    let compatible: &[&str] = if platform.compatible.contains("linux,dummy-virt") {
        &["linux,dummy-virt"]
    } else {
        &["bulkhead,partition"]
    };
    let timer = platform.timer.unwrap_or(guest_dt::arch_timer(guest_dt::IRQ_LEVEL_HIGH));
    let spec = GuestDt {
        model: &model,
        compatible,
        memory: &memory,
        cpus: cpu_count,
        gic,
        timer,
        uart: guest_uart,
        pcie,
        chosen: guest_dt::Chosen {
            bootargs: cfg.bootargs.as_deref(),
            initrd: initrd.map(|(at, b)| Region { base: at, size: b.len() as u64 }),
        },
        reserved: &reserved,
    };
    let dtb = guest_dt::generate(&spec).map_err(|e| {
        defmt::error!("partition {=str}: device tree: {}", name, defmt::Display2Format(&e));
        BuildError
    })?;
    if dtb.len() as u64 > DTB_SLOT {
        return Err(fail("generated device tree larger than 2 MiB"));
    }

    let stage2 = table.stage2_config();
    let vtcr = u64::from(stage2.vtcr()) | 1 << 31;
    let vttbr = u64::from(vmid) << 48 | stage2.vttb.0;
    let vgic = match (&platform.gic, crate::gic::v3::get()) {
        (Gic::V3(g), Some(phys)) => Some(VirtualGicV3::new(
            g.dist.base,
            g.redists.first().map_or(0, |r| r.base),
            cfg.cpus.len(),
            phys.it_lines(),
            owned_spis,
        )),
        _ => None,
    };
    let vecam = match (host, ecam) {
        (Some(h), Some(e)) if !functions.is_empty() => {
            Some(VirtualEcam::new(h.ecam.base, h.ecam.size, h.bus_start, e, functions))
        }
        _ => None,
    };
    Ok(Partition {
        index,
        config: cfg.clone(),
        vmid,
        vttbr,
        vtcr,
        _stage2: Mutex::new(table),
        cpus: cfg.cpus.iter().map(|&c| c as usize).collect(),
        boot: BootImage { image, image_pa: to_pa(entry)?, dtb, dtb_pa: to_pa(dtb_ipa)?, entry, dtb_ipa },
        fault_page: Some((fault_ipa, to_pa(fault_ipa)?)),
        console,
        console_irq: guest_uart.map(|u| u.irq.intid()),
        ecam: vecam,
        gic: vgic,
        pci,
        stopped: AtomicBool::new(false),
        limiter: RateLimiter::new(),
        dma_faults: AtomicU32::new(0),
    })
}

/// Routes an assigned device's SPI to its partition's boot CPU and forwards
/// it to the guest there.
fn route_irq(intid: u32, edge: bool, mpidr: u64) -> Result<(), BuildError> {
    let gic = crate::gic::v3::get().ok_or_else(|| fail("device interrupts need a GICv3"))?;
    irq::forward(intid);
    gic.route_spi(intid, edge, mpidr).map_err(|e| {
        defmt::error!("SPI {=u32} not routed: {}", intid, e);
        BuildError
    })
}
