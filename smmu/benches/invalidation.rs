//! "Count, not time": the commands the driver queues to invalidate an unmap
//! of 1 GiB mapped as 4 KiB pages, with range invalidation (SMMU_IDR3.RIL)
//! and without. The path and its limits are described in
//! `benches/common/invalidation.rs`; `tests/invalidation.rs` asserts the same
//! counts in `cargo test`.
//!
//! Each case prints its counts and panics if they differ from the target, so
//! a regression fails the bench; criterion then times the planning (gather to
//! command list), which is all the CPU does for it.
//!
//! Run: `cargo bench -p smmu --bench invalidation -- --warm-up-time 1 --measurement-time 3`.

#[path = "common/invalidation.rs"]
mod invalidation;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use invalidation::{caps, commands, policy, with_unmap_gather, Counts, GIB, K4};

/// A case: what is unmapped, how, and the counts it must produce.
struct Case {
    name: &'static str,
    pages: u64,
    one_call: bool,
    ril: bool,
    want: Counts,
}

const fn counts(range_tlbis: usize, page_tlbis: usize, vmalls: usize) -> Counts {
    Counts { range_tlbis, page_tlbis, vmalls, syncs: 1, other: 0 }
}

const GIB_PAGES: u64 = GIB / K4;

/// How the pages are unmapped (`Case::one_call`).
const ONE_CALL: bool = true;
const PAGE_BY_PAGE: bool = false;
/// Whether SMMU_IDR3.RIL is set (`Case::ril`).
const RIL: bool = true;
const NO_RIL: bool = false;

const fn case(name: &'static str, pages: u64, one_call: bool, ril: bool, want: Counts) -> Case {
    Case { name, pages, one_call, ril, want }
}

const CASES: [Case; 6] = [
    // 2^18 granules: NUM = 0, SCALE = 18, TG = 4 KiB.
    case("1GiB_4k_one_unmap/ril", GIB_PAGES, ONE_CALL, RIL, counts(1, 0, 0)),
    // 262 144 per-page commands > 64: CMD_TLBI_S12_VMALL.
    case("1GiB_4k_one_unmap/no_ril", GIB_PAGES, ONE_CALL, NO_RIL, counts(0, 0, 1)),
    // The same gather when every page is unmapped on its own.
    case("1GiB_4k_page_by_page/ril", GIB_PAGES, PAGE_BY_PAGE, RIL, counts(1, 0, 0)),
    case("1GiB_4k_page_by_page/no_ril", GIB_PAGES, PAGE_BY_PAGE, NO_RIL, counts(0, 0, 1)),
    // The threshold without RIL: 64 pages one by one, 65 the whole VMID.
    case("64_pages/no_ril", 64, ONE_CALL, NO_RIL, counts(0, 64, 0)),
    case("65_pages/no_ril", 65, ONE_CALL, NO_RIL, counts(0, 0, 1)),
];

fn invalidation(c: &mut Criterion) {
    let mut g = c.benchmark_group("invalidation");
    for case in &CASES {
        let policy = policy(&caps(case.ril));
        with_unmap_gather(case.pages, case.one_call, |gather| {
            let got = Counts::of(&commands(gather, policy));
            println!(
                "{}: {} range TLBI, {} per-page TLBI, {} TLBI_S12_VMALL, {} CMD_SYNC ({} gathered range(s))",
                case.name,
                got.range_tlbis,
                got.page_tlbis,
                got.vmalls,
                got.syncs,
                gather.ranges().len(),
            );
            assert_eq!(got, case.want, "{}: command counts regressed", case.name);
            g.bench_function(case.name, |b| b.iter(|| commands(black_box(gather), policy).len()));
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = invalidation
}
criterion_main!(benches);
