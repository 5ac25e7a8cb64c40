//! The self-test cases. Each checks behaviour on the running machine and
//! says what it found when it fails.

use super::Case;
use crate::arch::exception::{expected, ExceptionClass, FaultStatus};
use crate::arch::mmu;
use crate::dtb::Dt;
use alloc::{boxed::Box, vec, vec::Vec};

/// Every case, in run order.
pub static ALL: &[Case] = &[
    Case { name: "cpus_all_online", default: true, applies: always, run: cpus_all_online },
    Case { name: "el2_map_wx", default: true, applies: always, run: el2_map_wx },
    Case { name: "el2_fault_recovered", default: true, applies: always, run: el2_fault_recovered },
    Case { name: "heap_alloc_free", default: true, applies: always, run: heap_alloc_free },
    Case { name: "timer_advances", default: true, applies: always, run: timer_advances },
    Case { name: "dt_damage_refused", default: true, applies: always, run: dt_damage_refused },
    Case { name: "pci_config_space", default: true, applies: has_pcie, run: pci_config_space },
    // Ends the run: only when named on the command line.
    Case { name: "el2_unmapped_read", default: false, applies: always, run: el2_unmapped_read },
    Case { name: "panic_is_reported", default: false, applies: always, run: panic_is_reported },
];

fn always(_: &Dt) -> bool {
    true
}

fn has_pcie(dt: &Dt) -> bool {
    !dt.platform.pcie.is_empty()
}

fn cpus_all_online(dt: &Dt) -> Result<(), &'static str> {
    let want = dt.platform.cpus.len().min(crate::arch::boot::MAX_CPUS);
    (crate::smp::online() == want).then_some(()).ok_or("not every CPU of the DT came online")
}

fn el2_map_wx(dt: &Dt) -> Result<(), &'static str> {
    let img = crate::mem::image();
    if mmu::probe(img.text.start, false) != Some(img.text.start) {
        return Err("text not identity mapped");
    }
    if mmu::probe(img.text.start, true).is_some() {
        return Err("text is writable");
    }
    if mmu::probe(img.rodata.start, true).is_some() {
        return Err("rodata is writable");
    }
    let data = &dt.range as *const _ as u64;
    if mmu::probe(data, true) != Some(data) {
        return Err("stack not writable");
    }
    if let Some(uart) = &dt.platform.uart {
        if mmu::probe(uart.base, true) != Some(uart.base) {
            return Err("console UART not mapped");
        }
    }
    mmu::unmapped_address().map(|_| ()).ok_or("no unmapped address: the map covers everything")
}

fn el2_fault_recovered(_: &Dt) -> Result<(), &'static str> {
    let addr = mmu::unmapped_address().ok_or("no unmapped address")?;
    expected::arm();
    // SAFETY: deliberately faulting read of an unmapped address; the armed
    // expectation makes the vector skip the load and return here.
    let _ = unsafe { core::ptr::read_volatile(addr as *const u32) };
    let (esr, far) = expected::recorded().ok_or("no exception taken")?;
    if ExceptionClass::from_esr(esr) != ExceptionClass::DataAbortSame {
        return Err("not a data abort at EL2");
    }
    if !matches!(FaultStatus::from_iss(esr), FaultStatus::Translation(_)) {
        return Err("not a translation fault");
    }
    if esr & (1 << 6) != 0 {
        return Err("reported as a write");
    }
    (far == addr).then_some(()).ok_or("FAR is not the faulting address")
}

fn el2_unmapped_read(_: &Dt) -> Result<(), &'static str> {
    let addr = mmu::unmapped_address().ok_or("no unmapped address")?;
    defmt::info!("reading unmapped {=u64:#x}: the exception report must end the run", addr);
    // SAFETY: deliberately faulting read; the exception handler ends the run.
    let _ = unsafe { core::ptr::read_volatile(addr as *const u32) };
    Err("the read of an unmapped address did not fault")
}

fn panic_is_reported(_: &Dt) -> Result<(), &'static str> {
    let v: Vec<u32> = Vec::new();
    // An out-of-bounds index: the panic handler must report it and end the run.
    let i = core::hint::black_box(3);
    defmt::info!("{=u32}", v[i]);
    Err("indexing past the end did not panic")
}

fn heap_alloc_free(_: &Dt) -> Result<(), &'static str> {
    let (before, total) = crate::heap::stats();
    {
        let mut big: Vec<u64> = vec![0; 128 * 1024];
        big.iter_mut().enumerate().for_each(|(i, x)| *x = i as u64);
        let boxed = Box::new([7u8; 4096]);
        if big[100_000] != 100_000 || boxed[4095] != 7 {
            return Err("heap memory did not hold its contents");
        }
        if crate::heap::stats().0 < before + 1024 * 1024 {
            return Err("allocations not accounted");
        }
    }
    if crate::heap::stats().0 != before {
        return Err("memory not returned on free");
    }
    if Vec::<u8>::new().try_reserve(total * 2).is_ok() {
        return Err("an allocation larger than the heap succeeded");
    }
    Ok(())
}

fn timer_advances(_: &Dt) -> Result<(), &'static str> {
    let a = crate::log::uptime_us();
    let mut spins = 0u32;
    while crate::log::uptime_us() < a + 1000 {
        spins += 1;
        if spins > 50_000_000 {
            return Err("the architected counter does not advance");
        }
    }
    Ok(())
}

/// The real DTB, damaged in memory in ways a loader or a bad flash could:
/// every variant is refused with an error (or parsed, for harmless flips),
/// never a panic or a hang.
fn dt_damage_refused(dt: &Dt) -> Result<(), &'static str> {
    let orig = dt.blob;
    // Truncated: the header claims more bytes than the slice has.
    if boards::dt::discover(&orig[..orig.len() / 2]).is_ok() {
        return Err("a truncated DTB was accepted");
    }
    let mut copy = orig.to_vec();
    copy[0] ^= 0xff;
    if boards::dt::discover(&copy).is_ok() {
        return Err("a DTB with a bad magic was accepted");
    }
    // totalsize lying upwards.
    let mut copy = orig.to_vec();
    copy[4..8].copy_from_slice(&(orig.len() as u32 * 4).to_be_bytes());
    if boards::dt::discover(&copy).is_ok() {
        return Err("a DTB whose totalsize exceeds the blob was accepted");
    }
    // Random single-byte damage in the structure block: any result but a panic.
    let mut x: u32 = 0x2545_f491;
    for _ in 0..200 {
        let mut copy = orig.to_vec();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let at = 40 + (x as usize % (orig.len() - 40));
        copy[at] = copy[at].wrapping_add((x >> 24) as u8 | 1);
        let _ = boards::dt::discover(&copy);
    }
    Ok(())
}

fn pci_config_space(dt: &Dt) -> Result<(), &'static str> {
    let host = dt.platform.pcie.first().ok_or("no PCIe host")?;
    let ecam = crate::pci::Ecam::of_host(host);
    let mut n = 0;
    let mut host_bridge = false;
    ecam.scan(|f| {
        n += 1;
        // QEMU's virt host bridge: Red Hat 1b36:0008, class 06 00 00.
        host_bridge |= f.bdf.dev == 0 && f.class >> 16 == 0x06;
    });
    if n == 0 || !host_bridge {
        return Err("no host bridge at 00:00.0");
    }
    // Out-of-window config addresses read as absent, never fault.
    let beyond = crate::pci::Bdf { bus: host.bus_end.wrapping_add(1), dev: 0, func: 0 };
    if host.bus_end < 255 && ecam.read32(beyond, 0) != u32::MAX {
        return Err("a bus beyond the ECAM window answered");
    }
    Ok(())
}
