//! Host tests of probe, bring-up and the public operations, against the
//! SMMU model in `crate::testing` (QEMU 10 behavior).

use super::*;
use crate::caps::{AddrSize, Feature};
use crate::cmd::{TlbiOpts, TlbiRange};
use crate::cmdq::Cerror;
use crate::ste::Stage2Cfg;
use crate::testing::{
    cache_op_counts, counting_cache_ops, qemu_caps, Bench, HeapFrames, ModelCfg, ModelDelay, Obs, QEMU_IDR,
};
use iommu_common::addr::PhysAddr;
use std::vec::Vec;

type TestSmmu<'b> = Smmu<'b, HeapFrames, ModelDelay>;

fn config() -> SmmuConfig {
    SmmuConfig { timeouts: Timeouts { polls: 100, poll_interval_ns: 1 }, ..SmmuConfig::default() }
}

fn up(bench: &Bench) -> TestSmmu<'_> {
    up_with(bench, &config())
}

fn up_with<'b>(bench: &'b Bench, cfg: &SmmuConfig) -> TestSmmu<'b> {
    Smmu::probe(bench.regs()).init(cfg, bench.frames(), bench.delay()).expect("bring-up")
}

fn s2(vmid: u16, ttb: u64) -> Ste {
    Ste::stage2(Stage2Cfg::new(Vmid(vmid), PhysAddr(ttb), 40, Granule::K4, 1, AddrSize::Bits44).unwrap())
}

#[test]
fn probe_decodes_qemu() {
    let bench = Bench::new(ModelCfg::default());
    let probe = Smmu::probe(bench.regs());
    assert_eq!(*probe.capabilities(), qemu_caps());
    assert_eq!(probe.id_regs().idr, QEMU_IDR);
    // Probing writes nothing.
    assert_eq!(bench.model().regs().peek32(0x44), 0x1000);
}

#[test]
fn bring_up_order() {
    let bench = Bench::new(ModelCfg::default());
    let smmu = up(&bench);
    let m = bench.model();
    // GBPA.ABORT first (QEMU resets GBPA to 0x1000: bypass), SHCFG kept.
    assert_eq!(m.log[0], Obs::Gbpa(0x1000 | (1 << 20)));
    let cr0: Vec<u32> =
        m.log.iter().filter_map(|o| if let Obs::Cr0(v) = o { Some(*v) } else { None }).collect();
    // CMDQEN, then EVENTQEN, then SMMUEN (no PRI on QEMU).
    assert_eq!(cr0, [0b1000, 0b1100, 0b1101]);
    // Invalidation before the Event queue and SMMUEN; no CMD_TLBI_EL2_ALL
    // since QEMU has no Hyp (it would be CERROR_ILL on real hardware).
    let pos = |o: Obs| m.log.iter().position(|x| *x == o).unwrap();
    let cmds = &m.log[pos(Obs::Cr0(0b1000)) + 1..pos(Obs::Cr0(0b1100))];
    assert_eq!(cmds, [Obs::Cmd(Command::CfgiAll), Obs::Cmd(Command::TlbiNsnhAll), Obs::Cmd(Command::sync())]);
    assert!(!m.log.iter().any(|o| matches!(o, Obs::CmdError(_))));
    let r = m.regs();
    assert_eq!(r.peek32(0x28), 0b11_01_01_11_01_01, "CR1: ISH write-back tables and queues");
    assert_eq!(r.peek32(0x2c), 0b110, "CR2: PTM | RECINVSID");
    assert_eq!(r.peek32(0x88), (1 << 16) | (8 << 6) | 16, "2-level, SPLIT 8, 16 StreamID bits");
    assert_eq!(r.peek32(0x44) & (1 << 20), 1 << 20, "GBPA.ABORT stays set");
    assert_eq!(smmu.sid_bits(), 16);
    assert!(smmu.stale_gerrors().is_empty());
}

#[test]
fn firmware_left_the_smmu_on() {
    let bench = Bench::new(ModelCfg { cr0_reset: 0b1101, ..ModelCfg::default() });
    let _smmu = up(&bench);
    let m = bench.model();
    // Abort first, then everything off, then the normal bring-up.
    assert!(matches!(m.log[0], Obs::Gbpa(_)));
    assert_eq!(m.log[1], Obs::Cr0(0));
}

#[test]
fn stale_command_error_is_acknowledged_first() {
    let bench = Bench::new(ModelCfg::default());
    bench.model().raise_gerror(1);
    let smmu = up(&bench);
    assert_eq!(smmu.stale_gerrors(), GlobalErrors::CMDQ_ERR);
}

#[test]
fn waits_are_bounded_and_named() {
    let bench = Bench::new(ModelCfg { ack_gbpa: false, ..ModelCfg::default() });
    let r = Smmu::probe(bench.regs()).init(&config(), bench.frames(), bench.delay());
    assert_eq!(r.err(), Some(Error::Timeout(Timeout::GbpaUpdate)));

    let bench = Bench::new(ModelCfg { ack_cr0: false, ..ModelCfg::default() });
    let r = Smmu::probe(bench.regs()).init(&config(), bench.frames(), bench.delay());
    assert_eq!(r.err(), Some(Error::Timeout(Timeout::Cr0Ack { bit: Cr0Bit::CmdqEn })));

    let bench = Bench::new(ModelCfg { ack_irq: false, cr0_reset: 0, ..ModelCfg::default() });
    let r = Smmu::probe(bench.regs()).init(
        &SmmuConfig { irqs: IrqEnables { gerror: true, ..IrqEnables::default() }, ..config() },
        bench.frames(),
        bench.delay(),
    );
    assert_eq!(r.err(), Some(Error::Timeout(Timeout::IrqCtrlAck)));

    let bench = Bench::new(ModelCfg { consume: false, ..ModelCfg::default() });
    let r = Smmu::probe(bench.regs()).init(&config(), bench.frames(), bench.delay());
    assert_eq!(r.err(), Some(Error::Timeout(Timeout::CmdSync)));
}

#[test]
fn requirements_are_checked_before_touching_the_smmu() {
    let bench = Bench::new(ModelCfg::default());
    let cfg = SmmuConfig {
        requirements: Requirements { min_oas: Some(AddrSize::Bits48), ..Requirements::STAGE2_4K },
        ..config()
    };
    let r = Smmu::probe(bench.regs()).init(&cfg, bench.frames(), bench.delay());
    assert_eq!(r.err(), Some(Error::Caps(CapsError::Missing(Feature::OutputAddressSize(AddrSize::Bits48)))));
    assert_eq!(bench.model().regs().peek32(0x44), 0x1000, "GBPA untouched");
}

#[test]
fn every_stream_aborts_until_set() {
    let bench = Bench::new(ModelCfg::default());
    let mut smmu = up(&bench);
    // No L2 array yet: the SMMU's walk finds Span == 0 (C_BAD_STREAMID).
    assert_eq!(smmu.ste(StreamId(0x42)), Ok(None));
    assert_eq!(bench.model().find_ste(StreamId(0x42)), Err("C_BAD_STREAMID"));
    smmu.prepare_stream(StreamId(0x42)).unwrap();
    assert_eq!(smmu.ste(StreamId(0x42)), Ok(Some(Ste::abort())));
    assert_eq!(bench.model().find_ste(StreamId(0x42)), Ok(Ste::abort().encode()));
    assert_eq!(bench.model().find_ste(StreamId(0x43)), Ok(Ste::abort().encode()));
}

/// Every STE the SMMU could have fetched while we updated it: either not
/// live (abort/invalid word 0), the old entry, or the new one.
fn assert_never_mixed(snapshots: &[(StreamId, Result<[u64; 8], &str>)], old: [u64; 8], new: [u64; 8]) {
    for (_, s) in snapshots {
        let w = s.unwrap();
        assert!(
            !crate::ste::word0_is_live(w[0]) || w == old || w == new,
            "the SMMU could see a mixed live STE: {w:x?}"
        );
    }
}

#[test]
fn set_ste_end_to_end() {
    let bench = Bench::new(ModelCfg::default());
    let mut smmu = up(&bench);
    let sid = StreamId(0x10);
    let ste = s2(1, 0x8000_0000);
    assert_eq!(smmu.set_ste(sid, &ste), Ok(UpdatePath::Install));
    assert_eq!(smmu.ste(sid), Ok(Some(ste)));
    assert_eq!(bench.model().find_ste(sid), Ok(ste.encode()));
    {
        let m = bench.model();
        assert_never_mixed(&m.ste_at_cfgi, Ste::abort().encode(), ste.encode());
        // Non-leaf CFGI for the new L1STD, then the two update steps, each
        // followed by CMD_SYNC.
        let tail: Vec<Command> = m.commands[3..].to_vec();
        assert_eq!(
            tail,
            [
                Command::CfgiSte { sid, leaf: false },
                Command::sync(),
                Command::CfgiSte { sid, leaf: true },
                Command::sync(),
                Command::CfgiSte { sid, leaf: true },
                Command::sync(),
            ]
        );
    }
    // Re-point to another VMID and table: break-before-make.
    let before = bench.model().ste_at_cfgi.len();
    let new = s2(2, 0x9000_0000);
    assert_eq!(smmu.set_ste(sid, &new), Ok(UpdatePath::BreakBeforeMake));
    let m = bench.model();
    assert_never_mixed(&m.ste_at_cfgi[before..], ste.encode(), new.encode());
    assert_eq!(
        m.ste_at_cfgi[before].1,
        Ok({
            let mut w = ste.encode();
            w[0] = 1;
            w
        })
    );
}

#[test]
fn set_ste_refuses_what_the_smmu_would_reject() {
    let bench = Bench::new(ModelCfg::default());
    let mut smmu = up(&bench);
    let n = bench.model().commands.len();
    let mut cfg =
        Stage2Cfg::new(Vmid(1), PhysAddr(0x8000_0000), 40, Granule::K4, 1, AddrSize::Bits44).unwrap();
    cfg.s = true; // stall: QEMU has STALL_MODEL == 0b01
    let e = smmu.set_ste(StreamId(1), &Ste::stage2(cfg));
    assert!(matches!(e, Err(Error::Entry(SteError::Illegal { field: "STE.S2S", .. }))));
    assert_eq!(bench.model().commands.len(), n, "nothing written or issued");
}

#[test]
fn stream_ids_beyond_the_table_are_refused() {
    let bench = Bench::new(ModelCfg::default());
    let mut smmu = up_with(&bench, &SmmuConfig { sid_bits: Some(8), ..config() });
    // 8 bits: Auto picks a linear table (a single L2 would be pointless).
    assert_eq!(bench.model().regs().peek32(0x88), 8);
    assert_eq!(
        smmu.set_ste(StreamId(256), &Ste::bypass()),
        Err(Error::SidOutOfRange { sid: StreamId(256), sid_bits: 8 })
    );
    assert_eq!(smmu.set_ste(StreamId(255), &Ste::bypass()), Ok(UpdatePath::Install));
    assert_eq!(bench.model().find_ste(StreamId(255)), Ok(Ste::bypass().encode()));
}

#[test]
fn range_invalidation_uses_ril() {
    let bench = Bench::new(ModelCfg::default());
    let mut smmu = up(&bench);
    let n = bench.model().commands.len();
    smmu.invalidate_s2_range(Vmid(3), Ipa(0x8000_0000), 256 * 4096, Granule::K4).unwrap();
    let m = bench.model();
    assert_eq!(
        m.commands[n..],
        [
            Command::TlbiS2Ipa {
                vmid: Vmid(3),
                addr: Ipa(0x8000_0000),
                opts: TlbiOpts {
                    leaf: false,
                    range: Some(TlbiRange { tg: Granule::K4, ttl: 0, num: 0, scale: 8 })
                },
            },
            Command::sync(),
        ]
    );
}

#[test]
fn without_ril_big_ranges_invalidate_the_vmid() {
    let mut idr = QEMU_IDR;
    idr[3] &= !(1 << 10);
    let bench = Bench::new(ModelCfg { idr, ..ModelCfg::default() });
    let mut smmu = up(&bench);
    let n = bench.model().commands.len();
    smmu.invalidate_s2_range(Vmid(3), Ipa(0), 2 * 4096, Granule::K4).unwrap();
    smmu.invalidate_s2_range(Vmid(3), Ipa(0), 256 * 4096, Granule::K4).unwrap();
    let m = bench.model();
    let opts = TlbiOpts::default();
    assert_eq!(
        m.commands[n..],
        [
            Command::TlbiS2Ipa { vmid: Vmid(3), addr: Ipa(0), opts },
            Command::TlbiS2Ipa { vmid: Vmid(3), addr: Ipa(4096), opts },
            Command::sync(),
            Command::TlbiS12Vmall { vmid: Vmid(3) },
            Command::sync(),
        ]
    );
}

#[test]
fn command_errors_are_reported_and_the_queue_recovers() {
    let bench = Bench::new(ModelCfg { fail_opcode: Some(0x28), ..ModelCfg::default() });
    let mut smmu = up(&bench);
    let e = smmu.invalidate_vmid(Vmid(1));
    let Err(Error::Command(c)) = e else { panic!("{e:?}") };
    assert_eq!((c.opcode, c.cerror), (0x28, Cerror::Ill));
    // The queue works afterwards.
    smmu.invalidate_asid(Vmid(1), Asid(2)).unwrap();
    assert!(bench.model().commands.contains(&Command::TlbiNhAsid { vmid: Vmid(1), asid: Asid(2) }));
}

#[test]
fn gerror_is_decoded_and_acknowledged() {
    let bench = Bench::new(ModelCfg::default());
    let mut smmu = up(&bench);
    assert_eq!(smmu.handle_gerror(), GerrorReport::default());
    bench.model().raise_gerror((1 << 8) | (1 << 2));
    let r = smmu.handle_gerror();
    assert_eq!(r.errors, GlobalErrors::SFM_ERR.union(GlobalErrors::EVENTQ_ABT_ERR));
    assert_eq!(r.command, None);
    assert!(gerror::active(smmu.regs().page0()).is_empty());
}

#[test]
fn events_are_drained_through_the_driver() {
    let bench = Bench::new(ModelCfg::default());
    let mut smmu = up(&bench);
    // A stage 2 translation fault on a write to 0x1000 from StreamID 0x10.
    let rec = [0x10 | (0x10 << 32), (1 << 39) | (2 << 40), 0x1000, 0x1000];
    assert!(bench.model().inject_event(rec));
    let mut seen = Vec::new();
    let r = smmu.drain_events(|e| seen.push(*e));
    assert_eq!(r.records, 1);
    assert_eq!(seen[0].name(), "F_TRANSLATION");
    assert_eq!(seen[0].stream_id(), StreamId(0x10));
    assert_eq!(std::format!("{}", seen[0]), "F_TRANSLATION sid 0x10 addr 0x1000 write stage 2 class In");
    // No PRI queue on QEMU.
    assert_eq!(smmu.drain_page_requests(|_| None), Ok(DrainReport::default()));
}

#[test]
fn stage1_cd_table_on_qemu() {
    let bench = Bench::new(ModelCfg::default());
    let mut smmu = up(&bench);
    // SSIDSIZE == 0: one CD per stream, 2-level CD tables are refused.
    assert!(matches!(smmu.new_cd_table(S1Fmt::TwoLevel4K, 8), Err(Error::Config(_))));
    let mut table = smmu.new_cd_table(S1Fmt::Linear, 0).unwrap();
    let sid = StreamId(0x20);
    let cd = Cd::aarch64_ttb0(Asid(5), PhysAddr(0x7000_0000), 48, Granule::K4, AddrSize::Bits44, 0xff);
    let ssid0 = SubstreamId::new(0).unwrap();
    assert_eq!(smmu.set_cd(&mut table, &[sid], ssid0, &cd), Ok(UpdatePath::Install));
    assert!(bench.model().commands.contains(&Command::CfgiCd { sid, ssid: ssid0, leaf: true }));
    assert_eq!(smmu.set_ste(sid, &Ste::stage1(table.stage1_cfg())), Ok(UpdatePath::Install));
}

#[test]
fn non_coherent_smmu_gets_nc_attributes_and_cache_maintenance() {
    let mut idr = QEMU_IDR;
    idr[0] &= !(1 << 4); // COHACC = 0
    let bench = Bench::new(ModelCfg { idr, ..ModelCfg::default() });
    let frames = bench.frames().with_cache_ops(counting_cache_ops());
    let mut smmu = Smmu::probe(bench.regs()).init(&config(), frames, bench.delay()).unwrap();
    assert_eq!(bench.model().regs().peek32(0x28), (0b10 << 10) | (0b10 << 4), "CR1: NC, OSH");
    let (cleans, _) = cache_op_counts();
    smmu.set_ste(StreamId(1), &s2(1, 0x8000_0000)).unwrap();
    let (after, _) = cache_op_counts();
    assert!(after > cleans, "STE and command writes were cleaned");
    assert!(bench.model().inject_event([0x10, 0, 0, 0]));
    let (_, inv) = cache_op_counts();
    smmu.drain_events(|_| {});
    assert!(cache_op_counts().1 > inv, "event records were invalidated before reading");
}

#[test]
fn disable_keeps_abort() {
    let bench = Bench::new(ModelCfg::default());
    let mut smmu = up(&bench);
    smmu.disable().unwrap();
    let r = bench.model();
    assert_eq!(r.regs().peek32(0x20), 0);
    assert_eq!(r.regs().peek32(0x44) & (1 << 20), 1 << 20);
}

#[test]
fn smmu_can_move_between_cpus() {
    struct Frames;
    // SAFETY: never hands out memory.
    unsafe impl DmaFrames for Frames {
        fn alloc_zeroed(&mut self, _: usize, _: usize) -> Option<crate::dma::DmaBuf> {
            None
        }
    }
    struct Delay;
    impl DelayNs for Delay {
        fn delay_ns(&mut self, _: u32) {}
    }
    fn assert_send<T: Send>() {}
    // The hypervisor keeps its SMMU in a lock: it must be Send.
    assert_send::<Smmu<'static, Frames, Delay>>();
}

#[test]
fn raw_commands_exercise_cerror_recovery() {
    let bench = Bench::new(ModelCfg::default());
    let mut smmu = up(&bench);
    // A CMD_CFGI_STE for a StreamID beyond SIDSIZE is not illegal (4.1.7:
    // CONSTRAINED UNPREDICTABLE; QEMU ignores it), a reserved opcode is.
    assert_eq!(smmu.submit_sync([Command::CfgiSte { sid: StreamId(u32::MAX), leaf: false }]), Ok(()));
    for (words, opcode) in [([0x07, 0], 0x07), ([0x03 | (1 << 10), 0], 0x03)] {
        let e = smmu.submit_raw_sync(&[words]);
        let Err(Error::Command(c)) = e else { panic!("{e:?}") };
        assert_eq!((c.opcode, c.cerror), (opcode, Cerror::Ill));
        smmu.invalidate_all().unwrap();
    }
}

#[test]
fn malformed_typed_commands_are_not_submitted() {
    let bench = Bench::new(ModelCfg::default());
    let mut smmu = up(&bench);
    let n = bench.model().commands.len();
    let ok = Command::CfgiSte { sid: StreamId(1), leaf: true };
    let bad = Command::TlbiNhVaa { vmid: Vmid(0), addr: Iova(0x1234), opts: TlbiOpts::default() };
    assert_eq!(
        smmu.submit_sync([ok, bad, ok]),
        Err(Error::InvalidCommand(crate::cmd::CmdDecodeError::Truncated))
    );
    assert_eq!(bench.model().commands[n..], [ok, Command::sync()]);
}

/// QEMU's ID registers with SMMU_IDR0.MSI (bit 13) set (COHACC is set).
fn msi_model() -> ModelCfg {
    let mut idr = QEMU_IDR;
    idr[0] |= 1 << 13;
    ModelCfg { idr, ..ModelCfg::default() }
}

fn consumed_syncs(bench: &Bench) -> Vec<crate::cmd::Sync> {
    let m = bench.model();
    m.commands.iter().filter_map(|c| if let Command::Sync(s) = c { Some(*s) } else { None }).collect()
}

#[test]
fn msi_capable_coherent_smmu_completes_syncs_by_msi_write() {
    // CONS is held on each CMD_SYNC until the step after its MSI: every
    // return of a sync below is on the MSI word.
    let bench = Bench::new(ModelCfg { msi_before_cons: true, ..msi_model() });
    let mut smmu = up(&bench);
    assert_eq!(smmu.sync_completion(), SyncCompletion::MsiWrite);
    smmu.set_ste(StreamId(0x10), &s2(1, 0x8000_0000)).unwrap();
    smmu.invalidate_all().unwrap();
    // Returned on the MSI while CONS still points at the last CMD_SYNC
    // (2^8 entries: index and wrap in bits [8:0]).
    let p0 = smmu.regs().page0();
    assert_eq!(p0.cmdq_prod.get().wrapping_sub(p0.cmdq_cons.get()) & 0x1ff, 1);
    let syncs = consumed_syncs(&bench);
    assert!(syncs.len() >= 3, "bring-up, set_ste and invalidate_all each end with a CMD_SYNC");
    let addr = syncs[0].msi_addr.0;
    assert_ne!(addr, 0);
    for (i, s) in syncs.iter().enumerate() {
        assert_eq!((s.cs, s.msi_addr.0, s.msi_data), (crate::cmd::SyncSignal::Irq, addr, i as u32 + 1));
    }
    let m = bench.model();
    let msis = m.log.iter().filter(|o| matches!(o, Obs::Msi { .. })).count();
    assert_eq!(msis, syncs.len(), "one MSI per CMD_SYNC");
    assert_eq!(m.read32(addr), Some(syncs.len() as u32));
}

#[test]
fn without_msi_the_driver_polls_cons_and_never_asks_for_an_msi() {
    // QEMU 10 (SMMU_IDR0.MSI == 0); an MSI-capable but non-coherent SMMU;
    // an MSI-capable coherent SMMU with MSI completion turned off.
    let mut noncoherent = msi_model();
    noncoherent.idr[0] &= !(1 << 4);
    let cases = [
        (ModelCfg::default(), config()),
        (noncoherent, config()),
        (msi_model(), SmmuConfig { sync_msi: false, ..config() }),
    ];
    for (model, cfg) in cases {
        let bench = Bench::new(model);
        let mut smmu = up_with(&bench, &cfg);
        assert_eq!(smmu.sync_completion(), SyncCompletion::ConsPoll);
        smmu.invalidate_vmid(Vmid(1)).unwrap();
        let syncs = consumed_syncs(&bench);
        assert!(syncs.len() >= 2);
        assert!(syncs.iter().all(|s| *s == crate::cmd::Sync::default()), "CS = SIG_NONE, no MSI fields");
        assert!(!bench.model().log.iter().any(|o| matches!(o, Obs::Msi { .. })));
    }
}

#[test]
fn lost_completion_msi_fails_bring_up_with_cmd_sync_timeout() {
    let bench = Bench::new(ModelCfg { msi_writes: false, ..msi_model() });
    let r = Smmu::probe(bench.regs()).init(&config(), bench.frames(), bench.delay());
    assert_eq!(r.err(), Some(Error::Timeout(Timeout::CmdSync)));
}
