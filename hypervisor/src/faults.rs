//! The last faults and state changes, in memory: a fixed ring that a
//! stopped partition or a test can read without parsing the log (Hubris'
//! `ringbuf!` is the model). Every entry is also logged when recorded.

use spin::Mutex;

/// One recorded SMMU fault.
#[derive(Clone, Copy, PartialEq, Eq, defmt::Format)]
pub struct FaultRecord {
    /// Microseconds since boot.
    pub at_us: u64,
    /// Event type code (SMMUv3 7.3, e.g. 0x10 F_TRANSLATION).
    pub code: u8,
    /// StreamID.
    pub sid: u32,
    /// Input address (IOVA), 0 when the event has none.
    pub addr: u64,
    /// The access was a write.
    pub write: bool,
}

const LEN: usize = 32;

struct Ring {
    entries: [Option<FaultRecord>; LEN],
    next: usize,
    total: u64,
}

static RING: Mutex<Ring> = Mutex::new(Ring { entries: [None; LEN], next: 0, total: 0 });

/// Appends a record, overwriting the oldest when full.
pub fn record(r: FaultRecord) {
    let mut ring = RING.lock();
    let i = ring.next;
    ring.entries[i] = Some(r);
    ring.next = (i + 1) % LEN;
    ring.total += 1;
}

/// Records ever appended (including the overwritten ones).
pub fn total() -> u64 {
    RING.lock().total
}

/// The most recent record matching `pred`, newest first.
pub fn find_latest(pred: impl Fn(&FaultRecord) -> bool) -> Option<FaultRecord> {
    let ring = RING.lock();
    (0..LEN).map(|k| (ring.next + LEN - 1 - k) % LEN).filter_map(|i| ring.entries[i]).find(|r| pred(r))
}
