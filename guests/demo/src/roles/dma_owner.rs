//! `role=dma-owner peer=0xADDR [expect=blocked|open]`: the partition that
//! owns QEMU's `edu` PCI device. It checks that DMA works inside its own RAM,
//! then aims the device at `peer` (another partition's memory, by physical
//! address), and reports the fault record the hypervisor's `inject` policy
//! leaves for it.

use crate::edu::{self, Direction, Edu};
use crate::mem::{self, Ram, PAGE};
use crate::{bootargs, gic, pattern, pci, println, timer::Deadline};
use boards::abi::{FaultRecord, FAULT_MAGIC, FAULT_PAGE_SIZE, FAULT_VINTID};
use boards::platform::{PcieHost, ReservedSource};
use boards::Platform;

/// How long to wait for the fault interrupt.
const FAULT_IRQ_TIMEOUT_MS: u64 = 2000;

/// What the bootargs ask the peer access to do.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// The hypervisor's IOMMU set-up must stop DMA to the peer.
    Blocked,
    /// Nothing stops it (no IOMMU, e.g. QEMU without the hypervisor).
    Open,
}

/// A failed step; the message has been printed.
struct Failed;

/// Runs the role.
pub fn run(p: &Platform<'_>, bootargs: &str) {
    let Some(peer) = bootargs::get(bootargs, "peer") else {
        println!("dma-owner: FAIL: no peer=0xADDR in bootargs");
        return;
    };
    let Some(peer) = bootargs::parse_u64(peer).filter(|a| a % PAGE as u64 == 0) else {
        println!("dma-owner: FAIL: peer={peer} is not a page-aligned address");
        return;
    };
    let expect = match bootargs::get(bootargs, "expect") {
        None => None,
        Some("blocked") => Some(Expect::Blocked),
        Some("open") => Some(Expect::Open),
        Some(other) => {
            println!("dma-owner: FAIL: expect={other}: want blocked or open");
            return;
        }
    };
    let _ = steps(p, peer, expect);
}

fn steps(p: &Platform<'_>, peer: u64, expect: Option<Expect>) -> Result<(), Failed> {
    let Some(host) = p.pcie.first() else {
        println!("dma-owner: FAIL: no PCIe host bridge in the device tree");
        return Err(Failed);
    };
    let dev = find_edu(host)?;
    let edu = map_edu(host, &dev)?;
    let Some(bufs) = mem::dma_buffers() else {
        println!("dma-owner: FAIL: DMA buffers already in use");
        return Err(Failed);
    };

    own_memory(&edu, &bufs)?;
    interrupt(host, &dev, &edu)?;
    let leaked = read_peer(&edu, &bufs, peer)?;
    let landed = write_peer(&edu, &bufs, peer)?;
    fault_record(p);

    if let Some(expect) = expect {
        let open = leaked || landed;
        match (expect, open) {
            (Expect::Blocked, false) => println!("dma-owner: expectation met: peer memory blocked"),
            (Expect::Open, true) => println!("dma-owner: expectation met: peer memory open"),
            (Expect::Blocked, true) => {
                println!("dma-owner: FAIL: expected blocked, but DMA reached peer memory")
            }
            (Expect::Open, false) => {
                println!("dma-owner: FAIL: expected open, but DMA did not reach peer memory")
            }
        }
    }
    Ok(())
}

/// How long to wait for edu's interrupt.
const EDU_IRQ_TIMEOUT_MS: u64 = 1000;

/// edu raises its INTx; the INTID the device tree's `interrupt-map` names
/// must arrive at this CPU's (virtual) interface exactly once: after the
/// device is acknowledged and the interrupt ended, nothing more is pending.
fn interrupt(host: &PcieHost, f: &pci::Function, edu: &Edu) -> Result<(), Failed> {
    let pin = ((f.read32(pci::INTERRUPT) >> 8) & 0xff) as u8;
    let Some(irq) = host.intx.as_ref().and_then(|m| m.route(f.bus, f.dev, f.func, pin)) else {
        println!(
            "dma-owner: FAIL: no interrupt-map entry for {f} INT{}",
            (b'A' + pin.saturating_sub(1)) as char
        );
        return Err(Failed);
    };
    let intid = irq.intid();
    gic::enable();
    edu.raise_irq(0x1);
    let deadline = Deadline::after_ms(EDU_IRQ_TIMEOUT_MS);
    let got = loop {
        let i = gic::acknowledge();
        if i != gic::SPURIOUS || deadline.expired() {
            break i;
        }
    };
    if got != intid {
        println!("dma-owner: FAIL: edu interrupt: expected INTID {intid}, got {got}");
        if got != gic::SPURIOUS {
            gic::end_of_interrupt(got);
        }
        return Err(Failed);
    }
    let status = edu.irq_status();
    edu.ack_irq(status);
    gic::end_of_interrupt(got);
    let again = Deadline::after_ms(50);
    while !again.expired() {
        let i = gic::acknowledge();
        if i != gic::SPURIOUS {
            println!("dma-owner: FAIL: INTID {i} pending again after the device was acknowledged");
            gic::end_of_interrupt(i);
            return Err(Failed);
        }
    }
    println!("dma-owner: edu interrupt: INTID {intid} delivered once (status {status:#x})");
    Ok(())
}

/// The edu function on the host's first bus.
fn find_edu(host: &PcieHost) -> Result<pci::Function, Failed> {
    println!("dma-owner: scanning bus {} of ECAM {:#x}", host.bus_start, host.ecam.base);
    let mut found = None;
    for (f, vendor, device) in pci::scan_first_bus(host) {
        println!("dma-owner:   {f} {vendor:04x}:{device:04x}");
        if (vendor, device) == (edu::VENDOR, edu::DEVICE) && found.is_none() {
            found = Some(f);
        }
    }
    match found {
        Some(f) => {
            println!("dma-owner: edu at {f}");
            Ok(f)
        }
        None => {
            println!("dma-owner: FAIL: no edu device ({:04x}:{:04x}) on the bus", edu::VENDOR, edu::DEVICE);
            Err(Failed)
        }
    }
}

/// Reads BAR0, turns on memory decoding and bus mastering, checks the ID.
fn map_edu(host: &PcieHost, f: &pci::Function) -> Result<Edu, Failed> {
    let bar = match pci::mem_bar0(f) {
        Ok(bar) if !bar.is_64 => bar,
        Ok(_) => {
            println!("dma-owner: FAIL: edu BAR0 is a 64-bit BAR, expected 32-bit");
            return Err(Failed);
        }
        Err(raw) => {
            println!("dma-owner: FAIL: edu BAR0 {raw:#x} is not a memory BAR");
            return Err(Failed);
        }
    };
    let size = edu::REGS_SIZE;
    let pci_addr = if bar.pci_addr != 0 {
        bar.pci_addr
    } else {
        // Nobody assigned it: QEMU `-kernel` without firmware or hypervisor.
        // Under Bulkhead the hypervisor assigns BARs and this never runs.
        let Some((window, window_size)) = pci::mem32_window(host) else {
            println!("dma-owner: FAIL: edu BAR0 unassigned and no 32-bit memory window to place it");
            return Err(Failed);
        };
        let bar_size = pci::size_bar0(f);
        if bar_size == 0 || bar_size > window_size || window % bar_size != 0 {
            println!(
                "dma-owner: FAIL: edu BAR0 unassigned, size {bar_size:#x} does not fit window {window:#x}"
            );
            return Err(Failed);
        }
        f.write32(pci::BAR0, window as u32);
        println!(
            "dma-owner: edu BAR0 was unassigned (no firmware): placed at {window:#x} (size {bar_size:#x})"
        );
        window
    };
    let Some(cpu) = pci::cpu_addr(host, pci_addr, size) else {
        println!("dma-owner: FAIL: edu BAR0 {pci_addr:#x} is in none of the host's memory windows");
        return Err(Failed);
    };
    println!("dma-owner: edu BAR0 {pci_addr:#x} (CPU address {cpu:#x})");
    let cmd = f.enable(pci::CMD_MEM | pci::CMD_BUS_MASTER);
    let want = (pci::CMD_MEM | pci::CMD_BUS_MASTER) as u16;
    if cmd & want != want {
        println!("dma-owner: FAIL: Command reads {cmd:#06x} after setting MEM|BUS_MASTER");
        return Err(Failed);
    }
    println!("dma-owner: Command {cmd:#06x} (MEM|BUS_MASTER)");
    // SAFETY: BAR0 of the edu function, decoded (Command.MEM just set), at
    // the CPU address its host window gives; only this `Edu` accesses it.
    let edu = unsafe { Edu::new(cpu) };
    let id = edu.id();
    if id != edu::ID_VALUE {
        println!("dma-owner: FAIL: edu id register reads {id:#010x}, expected {:#010x}", edu::ID_VALUE);
        return Err(Failed);
    }
    println!("dma-owner: edu id {id:#010x}");
    Ok(edu)
}

/// One DMA, with a FAIL line naming `what` if it does not complete.
fn dma(edu: &Edu, dir: Direction, addr: u64, what: &str) -> Result<(), Failed> {
    edu.dma(dir, addr, PAGE).map_err(|e| {
        println!("dma-owner: FAIL: DMA {what}: {e}");
        Failed
    })
}

/// Step 1: RAM → edu → RAM inside the partition's own memory.
fn own_memory(edu: &Edu, bufs: &mem::DmaBuffers) -> Result<(), Failed> {
    bufs.src.fill(pattern::owner);
    bufs.dst.fill(|_| 0);
    bufs.guard_before.fill(|_| pattern::GUARD);
    bufs.guard_after.fill(|_| pattern::GUARD);
    dma(edu, Direction::ToDevice, bufs.src.base(), "own RAM to edu")?;
    dma(edu, Direction::FromDevice, bufs.dst.base(), "edu to own RAM")?;
    if let Some((off, want, got)) = bufs.dst.first_mismatch(pattern::owner) {
        println!(
            "dma-owner: DMA inside own memory: FAIL (first difference at offset {off:#x}: expected {want:#018x}, found {got:#018x})"
        );
        return Err(Failed);
    }
    for guard in [&bufs.guard_before, &bufs.guard_after] {
        if let Some((off, _, got)) = guard.first_mismatch(|_| pattern::GUARD) {
            println!(
                "dma-owner: DMA inside own memory: FAIL (bytes around the buffer changed at {:#x}: {got:#018x})",
                guard.base() + off
            );
            return Err(Failed);
        }
    }
    println!("dma-owner: DMA inside own memory: ok ({PAGE} bytes both directions)");
    Ok(())
}

/// Step 2a: reads the peer's page into edu's buffer (pre-filled with a
/// sentinel), copies the buffer back and looks for the victim's pattern.
/// Whether it leaked.
fn read_peer(edu: &Edu, bufs: &mem::DmaBuffers, peer: u64) -> Result<bool, Failed> {
    bufs.src.fill(pattern::sentinel);
    dma(edu, Direction::ToDevice, bufs.src.base(), "sentinel to edu")?;
    println!("dma-owner: reading peer memory at {peer:#x} by DMA");
    dma(edu, Direction::ToDevice, peer, "peer to edu")?;
    bufs.dst.fill(|_| 0);
    dma(edu, Direction::FromDevice, bufs.dst.base(), "edu to own RAM")?;
    let words = PAGE / mem::WORD;
    let victim = bufs.dst.count_matches(pattern::victim);
    describe("read of peer", &bufs.dst);
    if victim == 0 {
        println!("dma-owner: read of peer memory blocked (the victim's pattern did not arrive)");
        Ok(false)
    } else {
        println!(
            "dma-owner: read of peer memory LEAKED ({victim} of {words} words are the victim's pattern)"
        );
        Ok(true)
    }
}

/// Step 2b: writes the owner's pattern into the peer's page, then reads it
/// back by DMA. Whether the read-back shows the write landed (the victim
/// checks the write on its side too).
fn write_peer(edu: &Edu, bufs: &mem::DmaBuffers, peer: u64) -> Result<bool, Failed> {
    bufs.src.fill(pattern::owner);
    dma(edu, Direction::ToDevice, bufs.src.base(), "own pattern to edu")?;
    dma(edu, Direction::FromDevice, peer, "edu to peer")?;
    println!(
        "dma-owner: wrote {PAGE} bytes of own pattern to peer memory at {peer:#x} (the victim checks it)"
    );
    // Read back through a cleared edu buffer, so stale data cannot pass.
    bufs.src.fill(pattern::sentinel);
    dma(edu, Direction::ToDevice, bufs.src.base(), "sentinel to edu")?;
    dma(edu, Direction::ToDevice, peer, "peer to edu (read-back)")?;
    bufs.dst.fill(|_| 0);
    dma(edu, Direction::FromDevice, bufs.dst.base(), "edu to own RAM")?;
    let landed = bufs.dst.count_matches(pattern::owner);
    if landed == 0 {
        println!("dma-owner: read-back of peer memory: own pattern absent");
    } else {
        println!(
            "dma-owner: read-back of peer memory: own pattern present ({landed} words): the write landed"
        );
    }
    Ok(landed != 0)
}

/// One line on what a DMA from the peer brought back.
fn describe(what: &str, buf: &Ram) {
    let words = buf.len() / mem::WORD;
    let first = buf.read(0);
    if buf.count_matches(pattern::sentinel) == words {
        println!("dma-owner: {what}: edu buffer kept the sentinel (nothing was transferred)");
    } else if buf.count_matches(|_| 0) == words {
        println!("dma-owner: {what}: returned all zeros");
    } else if buf.count_matches(pattern::victim) == words {
        println!("dma-owner: {what}: returned the victim's pattern");
    } else {
        println!("dma-owner: {what}: returned other data (first word {first:#018x})");
    }
}

/// Step 3: the fault interrupt and the record it announces, if the
/// hypervisor gave this partition a fault record page.
fn fault_record(p: &Platform<'_>) {
    let page =
        p.reserved.iter().find(|r| r.no_map && r.source == ReservedSource::Node && r.size >= FAULT_PAGE_SIZE);
    let Some(page) = page else {
        println!("dma-owner: no fault record page in the device tree: fault interrupt not checked");
        return;
    };
    if page.base % PAGE as u64 != 0 {
        println!("dma-owner: FAIL: fault record page {:#x} is not page aligned", page.base);
        return;
    }
    println!("dma-owner: fault record page at {:#x}; waiting for INTID {FAULT_VINTID}", page.base);
    gic::enable();
    let deadline = Deadline::after_ms(FAULT_IRQ_TIMEOUT_MS);
    while !deadline.expired() {
        let intid = gic::acknowledge();
        if intid == gic::SPURIOUS {
            continue;
        }
        if intid != FAULT_VINTID {
            println!("dma-owner: unexpected interrupt INTID {intid}");
            gic::end_of_interrupt(intid);
            continue;
        }
        // SAFETY: the hypervisor's fault record page (a no-map reserved
        // region of this partition), page aligned as checked; only read.
        let ram = unsafe { Ram::new(page.base, core::mem::size_of::<FaultRecord>()) };
        let rec = read_record(&ram);
        gic::end_of_interrupt(intid);
        if rec.magic != FAULT_MAGIC {
            println!("dma-owner: FAIL: fault interrupt, but the record's magic is {:#010x}", rec.magic);
            return;
        }
        let access = if rec.write != 0 { "write" } else { "read" };
        println!(
            "dma-owner: fault record: event {:#x} {access} address {:#x} stream {:#x} count {}",
            rec.event, rec.address, rec.stream_id, rec.count
        );
        return;
    }
    println!("dma-owner: no fault interrupt");
}

/// The record, decoded from five aligned 64-bit reads (the layout of
/// [`FaultRecord`], little endian).
fn read_record(ram: &Ram) -> FaultRecord {
    let mut bytes = [0u8; 40];
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&ram.read(i).to_le_bytes());
    }
    let u32_at = |o: usize| u32::from_le_bytes([bytes[o], bytes[o + 1], bytes[o + 2], bytes[o + 3]]);
    let mut address = [0u8; 8];
    address.copy_from_slice(&bytes[24..32]);
    FaultRecord {
        magic: u32_at(0),
        count: u32_at(4),
        event: bytes[8],
        write: bytes[9],
        stage: bytes[10],
        reserved: bytes[11],
        stream_id: u32_at(12),
        requester_id: u16::from_le_bytes([bytes[16], bytes[17]]),
        reserved2: [0; 6],
        address: u64::from_le_bytes(address),
        suppressed: u32_at(32),
        reserved3: u32_at(36),
    }
}
