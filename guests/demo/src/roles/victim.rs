//! `role=victim [watch=SECONDS]`: fills a 64 KiB pattern region at RAM base +
//! 1 MiB and re-checks it until `watch` seconds (default 5) have passed, so a
//! DMA from another partition that lands here is seen.

use crate::{bootargs, mem::Ram, pattern, println, timer::Deadline, DtbRange};
use boards::Platform;

/// Where the pattern region starts, from the base of the first RAM region.
/// The guest image (linked at RAM + 0x80000) ends below it (`demo.ld`).
pub const PATTERN_OFFSET: u64 = 0x10_0000;
/// Size of the pattern region.
pub const PATTERN_SIZE: usize = 0x1_0000;
/// `watch` when the bootargs do not say.
const DEFAULT_WATCH_S: u64 = 5;
/// Longest `watch` accepted.
const MAX_WATCH_S: u64 = 3600;

/// Runs the role.
pub fn run(p: &Platform<'_>, bootargs: &str, dtb: DtbRange) {
    let watch = match bootargs::get(bootargs, "watch") {
        None => DEFAULT_WATCH_S,
        Some(s) => match bootargs::parse_u64(s) {
            Some(n) if n <= MAX_WATCH_S => n,
            _ => {
                println!("victim: FAIL: watch={s} is not a number of seconds up to {MAX_WATCH_S}");
                return;
            }
        },
    };
    let Some(region) = pattern_region(p, dtb) else { return };
    region.fill(pattern::victim);
    crate::mem::dsb();
    println!(
        "victim: pattern at {:#x} ready ({} bytes, watching for {watch} s)",
        region.base(),
        region.len()
    );

    let deadline = Deadline::after_ms(watch * 1000);
    let mut checks: u64 = 0;
    loop {
        checks += 1;
        if let Some((off, want, got)) = region.first_mismatch(pattern::victim) {
            let differ = region.len() / crate::mem::WORD - region.count_matches(pattern::victim);
            println!(
                "victim: memory CHANGED at {:#x} after {checks} checks ({differ} of {} words differ; first: expected {want:#018x}, found {got:#018x})",
                region.base() + off,
                region.len() / crate::mem::WORD
            );
            return;
        }
        if deadline.expired() {
            break;
        }
    }
    println!("victim: memory intact after {checks} checks ({} ms)", deadline.elapsed_ms());
}

/// The pattern region, checked to lie in RAM and clear of the image, the
/// device tree and every reserved region.
fn pattern_region(p: &Platform<'_>, dtb: DtbRange) -> Option<Ram> {
    let ram = p.memory.first()?;
    let base = ram.base.checked_add(PATTERN_OFFSET)?;
    let size = PATTERN_SIZE as u64;
    if base % crate::mem::PAGE as u64 != 0 {
        println!("victim: FAIL: RAM base {:#x} is not page aligned", ram.base);
        return None;
    }
    if !(ram.contains(base) && ram.contains(base + size - 1)) {
        println!(
            "victim: FAIL: RAM {:#x} (+{:#x}) is too small for the pattern at {base:#x}",
            ram.base, ram.size
        );
        return None;
    }
    let overlaps = |b: u64, s: u64| base < b.saturating_add(s) && b < base + size;
    let (image_start, image_end) = crate::boot::image_range();
    if overlaps(image_start, image_end - image_start) {
        println!("victim: FAIL: the pattern at {base:#x} would overwrite the image");
        return None;
    }
    if overlaps(dtb.base, dtb.size) {
        println!("victim: FAIL: the pattern at {base:#x} would overwrite the device tree at {:#x}", dtb.base);
        return None;
    }
    if let Some(r) = p.reserved.iter().find(|r| overlaps(r.base, r.size)) {
        println!("victim: FAIL: the pattern at {base:#x} would overwrite reserved memory at {:#x}", r.base);
        return None;
    }
    // SAFETY: inside RAM, 8-byte aligned (checked above), and clear of the
    // image (so of every Rust object and stack), the DTB and reserved memory,
    // as just checked.
    Some(unsafe { Ram::new(base, PATTERN_SIZE) })
}
