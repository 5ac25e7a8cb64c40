//! The commands that invalidate an unmap of 1 GiB of 4 KiB pages, counted
//! (the "count, not time"; `cargo bench -p smmu --bench
//! invalidation` prints the same counts). With SMMU_IDR3.RIL: one range
//! CMD_TLBI_S2_IPA and one CMD_SYNC; without: one CMD_TLBI_S12_VMALL (past
//! the 64-command threshold) and one CMD_SYNC.

#[path = "../benches/common/invalidation.rs"]
mod invalidation;

use invalidation::{caps, commands, policy, with_unmap_gather, Counts, GIB, IPA, K4, VMID};
use iommu_common::addr::Ipa;
use smmu::caps::Granule;
use smmu::cmd::{Command, TlbiOpts, TlbiRange};

const GIB_PAGES: u64 = GIB / K4;

#[test]
fn unmapping_a_gib_of_pages_gathers_one_range_of_4k_leaves() {
    with_unmap_gather(GIB_PAGES, true, |g| {
        assert_eq!(g.ranges().len(), 1);
        assert_eq!((g.ranges()[0].start.0, g.ranges()[0].len()), (IPA, GIB));
        assert_eq!(g.leaf_sizes(), K4);
        // The 512 level-3 tables (and the level-2 one) went with them.
        assert!(g.tables_removed());
    });
}

#[test]
fn with_ril_one_range_command_and_one_sync() {
    let cmds = with_unmap_gather(GIB_PAGES, true, |g| commands(g, policy(&caps(true))));
    // 2^18 granules = (NUM + 1) * 2^SCALE with NUM = 0, SCALE = 18, TG = 4 KiB.
    let range = TlbiRange { tg: Granule::K4, ttl: 0, num: 0, scale: 18 };
    assert_eq!(
        cmds,
        [
            Command::TlbiS2Ipa {
                vmid: VMID,
                addr: Ipa(IPA),
                opts: TlbiOpts { leaf: false, range: Some(range) }
            },
            Command::sync(),
        ]
    );
    assert_eq!(range.pages() * K4, GIB);
    let c = Counts::of(&cmds);
    assert_eq!((c.range_tlbis, c.page_tlbis, c.vmalls, c.syncs, c.other), (1, 0, 0, 1, 0));
}

#[test]
fn without_ril_one_whole_vmid_invalidation_and_one_sync() {
    let cmds = with_unmap_gather(GIB_PAGES, true, |g| commands(g, policy(&caps(false))));
    assert_eq!(cmds, [Command::TlbiS12Vmall { vmid: VMID }, Command::sync()]);
}

#[test]
fn page_by_page_unmaps_into_one_gather_cost_the_same() {
    for ril in [true, false] {
        let one_call = with_unmap_gather(GIB_PAGES, true, |g| commands(g, policy(&caps(ril))));
        let by_page = with_unmap_gather(GIB_PAGES, false, |g| commands(g, policy(&caps(ril))));
        assert_eq!(one_call, by_page, "ril = {ril}");
    }
}

#[test]
fn one_page_more_costs_one_range_command_more() {
    // 2^18 + 1 granules: one command per 5-bit window of the count, the
    // single page widened to 2 (NUM = SCALE = TTL = 0 is reserved).
    let cmds = with_unmap_gather(GIB_PAGES + 1, true, |g| commands(g, policy(&caps(true))));
    let c = Counts::of(&cmds);
    assert_eq!((c.range_tlbis, c.syncs, c.tlbis()), (2, 1, 2));
}

#[test]
fn without_ril_the_threshold_is_64_commands() {
    let small = with_unmap_gather(64, true, |g| Counts::of(&commands(g, policy(&caps(false)))));
    assert_eq!((small.page_tlbis, small.vmalls, small.syncs), (64, 0, 1));
    let big = with_unmap_gather(65, true, |g| Counts::of(&commands(g, policy(&caps(false)))));
    assert_eq!((big.page_tlbis, big.vmalls, big.syncs), (0, 1, 1));
}
