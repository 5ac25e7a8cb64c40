//! Corrupted blobs: `discover` must return an error or a valid `Platform`,
//! never panic and never hang. Every mutant runs on this thread, so a hang
//! shows up as a test that does not finish.

mod common;

use std::time::{Duration, Instant};

use boards::{discover, header_total_size, DtError};
use common::{fixture, used_len, FIXTURES};
use proptest::prelude::*;

/// Mutants per fixture for the random mutation test.
const MUTANTS: usize = 3_000;

/// xorshift64*: deterministic, so a failure names a reproducible mutant.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Runs discovery and checks what a success promises.
fn check(blob: &[u8]) -> Result<(), DtError> {
    match discover(blob) {
        Ok(p) => {
            assert!(!p.memory.is_empty(), "a Platform always has memory");
            assert!(!p.cpus.is_empty(), "a Platform always has CPUs");
            for r in &p.memory {
                assert!(r.end().is_some(), "regions never wrap");
            }
            Ok(())
        }
        Err(e) => {
            // Formatting an error must not panic either.
            assert!(!e.to_string().is_empty() && !e.what().is_empty());
            Err(e)
        }
    }
}

/// Words worth writing over a cell: small counts, tokens, sizes, extremes.
const INTERESTING: [u32; 16] = [
    0,
    1,
    2,
    3,
    4,
    5,
    9,
    0x10,
    0x20,
    0xff,
    0x1000,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
    0xd00d_feed,
];

#[test]
fn truncation_at_many_lengths() {
    let mut cuts = 0;
    for name in FIXTURES {
        let blob = fixture(name);
        let used = used_len(&blob);
        // As handed over (header intact): always refused, never read past.
        for len in (0..used).step_by(7).chain([used - 1, blob.len() - 1]) {
            let e = check(&blob[..len]).unwrap_err();
            assert!(
                matches!(e, DtError::HeaderTooShort { .. } | DtError::Truncated { .. }),
                "{name} cut at {len}: {e:?}"
            );
            cuts += 1;
        }
        // With totalsize rewritten to the cut length, so the parser runs on
        // a blob whose blocks end early.
        let mut cut = blob[..used].to_vec();
        for len in (40..used).step_by(11) {
            cut.truncate(len);
            cut[4..8].copy_from_slice(&(len as u32).to_be_bytes());
            let _ = check(&cut);
            cut.extend_from_slice(&blob[len..used]);
            cuts += 1;
        }
    }
    println!("{cuts} truncated blobs");
}

#[test]
fn header_fields_that_lie() {
    let mut lies = 0;
    for name in FIXTURES {
        let blob = fixture(name);
        let used = used_len(&blob) as u32;
        let len = blob.len() as u32;
        let mut mutant = blob.clone();
        // Every header field after the magic: totalsize, the offsets, the
        // versions, boot cpu, the block sizes.
        for field in 1..10 {
            let original: [u8; 4] = blob[field * 4..field * 4 + 4].try_into().unwrap();
            let o = u32::from_be_bytes(original);
            let values = [
                0,
                1,
                4,
                39,
                40,
                56,
                o.wrapping_sub(4),
                o.wrapping_add(4),
                o.wrapping_add(1),
                used,
                used - 1,
                len,
                len - 1,
                len + 1,
                0x7fff_ffff,
                u32::MAX,
            ];
            for v in values {
                mutant[field * 4..field * 4 + 4].copy_from_slice(&v.to_be_bytes());
                let _ = check(&mutant);
                lies += 1;
            }
            mutant[field * 4..field * 4 + 4].copy_from_slice(&original);
        }
    }
    println!("{lies} headers that lie");
}

#[test]
fn random_mutations() {
    let mut rng = Rng(0x0b0a_4d5e_ed00_0001);
    let mut total = 0;
    let mut accepted = 0;
    let start = Instant::now();
    for name in FIXTURES {
        let blob = fixture(name);
        let used = used_len(&blob);
        let mut mutant = blob.clone();
        let mut touched = Vec::new();
        let mut slowest = Duration::ZERO;
        for i in 0..MUTANTS {
            for _ in 0..1 + rng.below(4) {
                // Mostly the structure and strings blocks, where the meaning is.
                let at = rng.below(used);
                let word = (at & !3).min(used - 4);
                touched.push(word);
                match rng.below(3) {
                    0 => mutant[at] ^= 1 << rng.below(8),
                    1 => mutant[at] = rng.next() as u8,
                    _ => {
                        let v = INTERESTING[rng.below(INTERESTING.len())];
                        mutant[word..word + 4].copy_from_slice(&v.to_be_bytes());
                    }
                }
            }
            let t = Instant::now();
            if check(&mutant).is_ok() {
                accepted += 1;
            }
            slowest = slowest.max(t.elapsed());
            for at in touched.drain(..) {
                mutant[at..at + 4].copy_from_slice(&blob[at..at + 4]);
            }
            assert!(mutant[..used] == blob[..used], "mutant {i} not restored");
            total += 1;
        }
        println!("{name}: {MUTANTS} mutants, slowest discover {slowest:?}");
    }
    println!("{total} mutants, {accepted} still discovered, {:?} in all", start.elapsed());
    assert_eq!(total, MUTANTS * FIXTURES.len());
}

/// Byte ranges of every non-empty property value in a blob's structure block
/// (a minimal token scan for the test; the blob is a valid fixture).
fn property_values(blob: &[u8]) -> Vec<(usize, usize)> {
    let word = |at: usize| u32::from_be_bytes(blob[at..at + 4].try_into().unwrap());
    let mut at = word(8) as usize;
    let mut out = Vec::new();
    loop {
        match word(at) {
            1 => {
                let name_end = at + 4 + blob[at + 4..].iter().position(|&b| b == 0).unwrap();
                at = (name_end + 1).next_multiple_of(4);
            }
            3 => {
                let len = word(at + 4) as usize;
                if len > 0 {
                    out.push((at + 12, len));
                }
                at = (at + 12 + len).next_multiple_of(4);
            }
            2 | 4 => at += 4,
            9 => return out,
            t => panic!("token {t:#x} at {at:#x}"),
        }
    }
}

/// Mutants that keep the structure valid and change only property values:
/// these get past dtoolkit's validation and exercise every decoder here.
#[test]
fn property_value_mutations() {
    let mut rng = Rng(0x5eed_0fd7_0000_0002);
    let mut total = 0;
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for name in FIXTURES {
        let blob = fixture(name);
        let values = property_values(&blob);
        assert!(values.len() > 100, "{name}: {} values", values.len());
        let mut mutant = blob.clone();
        for _ in 0..MUTANTS {
            let mut touched = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let (start, len) = values[rng.below(values.len())];
                let at = start + rng.below(len);
                touched.push((start, len));
                match rng.below(4) {
                    0 => mutant[at] ^= 1 << rng.below(8),
                    1 => mutant[at] = rng.next() as u8,
                    2 => mutant[at] = 0,
                    _ if len >= 4 => {
                        let word = start + (rng.below(len / 4) * 4);
                        let v = INTERESTING[rng.below(INTERESTING.len())];
                        mutant[word..word + 4].copy_from_slice(&v.to_be_bytes());
                    }
                    _ => mutant[at] = b'/',
                }
            }
            let kind = match check(&mutant) {
                Ok(()) => "ok",
                Err(e) => e.what(),
            };
            *kinds.entry(kind).or_default() += 1;
            for (start, len) in touched {
                mutant[start..start + len].copy_from_slice(&blob[start..start + len]);
            }
            total += 1;
        }
        assert!(mutant == blob);
    }
    println!("{total} value mutants: {kinds:?}");
    assert_eq!(total, MUTANTS * FIXTURES.len());
}

#[test]
fn header_total_size_on_fixtures() {
    for name in FIXTURES {
        let blob = fixture(name);
        assert_eq!(header_total_size(&blob[..40]), Ok(blob.len()), "{name}");
    }
}

fn pi4() -> &'static [u8] {
    static BLOB: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BLOB.get_or_init(|| fixture("raspi4b.dtb"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any handful of byte writes into the Pi 4 tree (the deepest fixture,
    /// with `ranges` on three buses) is refused or understood.
    #[test]
    fn edited_pi4_tree_never_panics(edits in prop::collection::vec((0usize..40_000, any::<u8>()), 1..12)) {
        let mut blob = pi4().to_vec();
        let used = used_len(&blob);
        for (at, byte) in edits {
            blob[at % used] = byte;
        }
        let _ = check(&blob);
    }

    /// Garbage behind a valid header is refused (or, by a long chance,
    /// understood), never a panic.
    #[test]
    fn garbage_after_a_valid_header(body in prop::collection::vec(any::<u8>(), 0..2048), offsets in any::<[u16; 3]>()) {
        let total = 40 + body.len() as u32;
        let mut blob = Vec::with_capacity(total as usize);
        for w in [
            0xd00d_feed,
            total,
            u32::from(offsets[0]) % total,
            u32::from(offsets[1]) % total,
            40,
            17,
            16,
            0,
            u32::from(offsets[2]) % total,
            total / 2,
        ] {
            blob.extend_from_slice(&u32::to_be_bytes(w));
        }
        blob.extend_from_slice(&body);
        let _ = check(&blob);
    }
}
