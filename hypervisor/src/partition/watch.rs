//! Proof that partitions left the hypervisor's own memory alone: digests of
//! what it keeps (its code, its read-only data, the device tree the loader
//! handed over) taken before any partition runs and compared when they have
//! all stopped. A DMA or CPU access that reached them would show here.

use spin::Once;

/// A region and its digest at boot.
struct Watched {
    what: &'static str,
    start: u64,
    len: u64,
    digest: u64,
}

static WATCHED: Once<[Watched; 2]> = Once::new();

/// FNV-1a over `[start, start + len)`, 8 bytes at a time.
fn digest(start: u64, len: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut a = start;
    while a + 8 <= start + len {
        // SAFETY: the watched regions are the hypervisor's own image and
        // the kept device tree, mapped for the whole run.
        let w = unsafe { core::ptr::read_volatile(a as *const u64) };
        h = (h ^ w).wrapping_mul(0x0000_0100_0000_01b3);
        a += 8;
    }
    h
}

/// Takes the digests: the image's code and the device tree.
pub fn arm(dtb_start: u64, dtb_len: u64) {
    let text = crate::mem::image().text;
    WATCHED.call_once(|| {
        [
            Watched {
                what: "code",
                start: text.start,
                len: text.end - text.start,
                digest: digest(text.start, text.end - text.start),
            },
            Watched {
                what: "device tree",
                start: dtb_start,
                len: dtb_len,
                digest: digest(dtb_start, dtb_len),
            },
        ]
    });
}

/// Compares them again and says so.
pub fn report() {
    let Some(w) = WATCHED.get() else { return };
    for r in w {
        let now = digest(r.start, r.len);
        if now == r.digest {
            defmt::info!(
                "hypervisor memory intact: {=str} at {=u64:#x} ({=u64} bytes) unchanged",
                r.what,
                r.start,
                r.len
            );
        } else {
            defmt::error!(
                "hypervisor memory CHANGED: {=str} at {=u64:#x} ({=u64} bytes)",
                r.what,
                r.start,
                r.len
            );
        }
    }
}
