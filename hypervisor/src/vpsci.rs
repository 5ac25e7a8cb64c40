//! PSCI 1.1 (Arm DEN 0022) for partitions, called by HVC (or SMC, which is
//! trapped): every call acts on the calling partition only. CPU_ON starts
//! one of the partition's own vCPUs on the physical CPU it owns;
//! SYSTEM_OFF and SYSTEM_RESET stop or restart the partition, never the
//! machine.

use crate::arch::exception::TrapFrame;
use crate::partition::Partition;
use crate::vcpu::{self, PostError, Power};

/// SMCCC_VERSION.
const SMCCC_VERSION: u32 = 0x8000_0000;
/// SMCCC_ARCH_FEATURES.
const SMCCC_ARCH_FEATURES: u32 = 0x8000_0001;
const PSCI_VERSION: u32 = 0x8400_0000;
const CPU_SUSPEND: u32 = 0x8400_0001;
const CPU_OFF: u32 = 0x8400_0002;
const CPU_ON: u32 = 0x8400_0003;
const AFFINITY_INFO: u32 = 0x8400_0004;
const MIGRATE_INFO_TYPE: u32 = 0x8400_0006;
const SYSTEM_OFF: u32 = 0x8400_0008;
const SYSTEM_RESET: u32 = 0x8400_0009;
const PSCI_FEATURES: u32 = 0x8400_000a;
/// SMC64 variants differ in bit 30.
const SMC64: u32 = 1 << 30;

const SUCCESS: i64 = 0;
const NOT_SUPPORTED: i64 = -1;
const INVALID_PARAMETERS: i64 = -2;
const ALREADY_ON: i64 = -4;
const ON_PENDING: i64 = -5;
const INTERNAL_FAILURE: i64 = -6;

/// The calls this implementation answers, as 32-bit function IDs (the SMC64
/// forms of CPU_SUSPEND, CPU_ON and AFFINITY_INFO are accepted too).
const SUPPORTED: [u32; 9] = [
    PSCI_VERSION,
    CPU_SUSPEND,
    CPU_OFF,
    CPU_ON,
    AFFINITY_INFO,
    MIGRATE_INFO_TYPE,
    SYSTEM_OFF,
    SYSTEM_RESET,
    PSCI_FEATURES,
];

fn base_id(fid: u32) -> u32 {
    match fid & !SMC64 {
        f @ (CPU_SUSPEND | CPU_ON | AFFINITY_INFO) => f,
        _ => fid,
    }
}

/// Serves the call in the guest's x0..x3; the result goes to x0.
pub fn call(p: &Partition, vcpu: usize, frame: &mut TrapFrame) {
    let fid = frame.x[0] as u32;
    let result: i64 = match base_id(fid) {
        SMCCC_VERSION => 0x1_0001,
        SMCCC_ARCH_FEATURES => NOT_SUPPORTED,
        PSCI_VERSION => 0x1_0001,
        PSCI_FEATURES => {
            let q = frame.x[1] as u32;
            if SUPPORTED.contains(&base_id(q)) {
                SUCCESS
            } else {
                NOT_SUPPORTED
            }
        }
        // Standby: return at once, which the spec allows for any suspend.
        CPU_SUSPEND => SUCCESS,
        CPU_OFF => {
            defmt::info!("partition {=str}: vCPU {=usize} off", p.name(), vcpu);
            vcpu::park();
        }
        CPU_ON => cpu_on(p, frame.x[1], frame.x[2], frame.x[3]),
        AFFINITY_INFO => match p.vcpu_from_mpidr(frame.x[1]) {
            Some(v) => match p.cpu_of(v).map(vcpu::power) {
                Some(Power::On) => 0,
                Some(Power::OnPending | Power::Claimed) => 2,
                Some(Power::Off) => 1,
                None => INVALID_PARAMETERS,
            },
            None => INVALID_PARAMETERS,
        },
        MIGRATE_INFO_TYPE => 2,
        SYSTEM_OFF => {
            defmt::info!("partition {=str}: SYSTEM_OFF", p.name());
            p.stop(crate::partition::GUEST_OFF);
        }
        SYSTEM_RESET => {
            defmt::info!("partition {=str}: SYSTEM_RESET", p.name());
            p.reset();
        }
        _ => NOT_SUPPORTED,
    };
    frame.x[0] = result as u64;
}

fn cpu_on(p: &Partition, target: u64, entry: u64, context: u64) -> i64 {
    let Some(v) = p.vcpu_from_mpidr(target) else { return INVALID_PARAMETERS };
    let Some(cpu) = p.cpu_of(v) else { return INVALID_PARAMETERS };
    if !p.contains_ipa(entry) {
        return INVALID_PARAMETERS;
    }
    match vcpu::post(cpu, p.index(), v, entry, context) {
        Ok(()) => SUCCESS,
        Err(PostError::AlreadyOn) => ALREADY_ON,
        Err(PostError::OnPending) => ON_PENDING,
        Err(PostError::NoSuchCpu) => INTERNAL_FAILURE,
    }
}
