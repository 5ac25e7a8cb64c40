//! Bounded waits on the SMMU. Every poll has a budget and, when it runs out,
//! an error naming what did not acknowledge; nothing spins forever.
//!
//! Polls pause through `embedded_hal::delay::DelayNs`: the hypervisor passes
//! its timer, host tests pass a fake that advances a model of the SMMU.

use core::fmt;

use embedded_hal::delay::DelayNs;

/// A bit of SMMU_CR0 whose SMMU_CR0ACK mirror did not follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cr0Bit {
    /// SMMUEN.
    SmmuEn,
    /// PRIQEN.
    PriqEn,
    /// EVENTQEN.
    EventqEn,
    /// CMDQEN.
    CmdqEn,
    /// ATSCHK.
    AtsChk,
    /// VMW or another field.
    Other,
}

impl Cr0Bit {
    /// The lowest bit set in `diff` (CR0 ^ CR0ACK).
    pub(crate) fn first_of(diff: u32) -> Self {
        match diff.trailing_zeros() {
            0 => Self::SmmuEn,
            1 => Self::PriqEn,
            2 => Self::EventqEn,
            3 => Self::CmdqEn,
            4 => Self::AtsChk,
            _ => Self::Other,
        }
    }
}

/// What a bounded wait was waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timeout {
    /// SMMU_CR0ACK did not reach the value written to SMMU_CR0.
    Cr0Ack {
        /// The first bit that differs.
        bit: Cr0Bit,
    },
    /// SMMU_GBPA.Update did not clear.
    GbpaUpdate,
    /// SMMU_IRQ_CTRLACK did not reach the value written to SMMU_IRQ_CTRL.
    IrqCtrlAck,
    /// A CMD_SYNC was not consumed: the command queue did not drain.
    CmdSync,
    /// The command queue stayed full.
    CmdqSpace,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cr0Ack { bit } => write!(f, "SMMU_CR0ACK.{bit:?} did not acknowledge"),
            Self::GbpaUpdate => f.write_str("SMMU_GBPA.Update did not clear"),
            Self::IrqCtrlAck => f.write_str("SMMU_IRQ_CTRLACK did not acknowledge"),
            Self::CmdSync => f.write_str("CMD_SYNC did not complete"),
            Self::CmdqSpace => f.write_str("command queue stayed full"),
        }
    }
}

/// Budgets for the bounded waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Polls before giving up; the driver pauses `poll_interval_ns` between
    /// polls, so the budget in time is about `polls * poll_interval_ns`.
    pub polls: u32,
    /// Pause between polls.
    pub poll_interval_ns: u32,
}

impl Default for Timeouts {
    /// One second in 1 µs steps, as Linux's `ARM_SMMU_POLL_TIMEOUT_US`.
    fn default() -> Self {
        Self { polls: 1_000_000, poll_interval_ns: 1_000 }
    }
}

/// Polls `done` until it returns `Some`, pausing between polls, at most
/// `budget.polls + 1` times; returns `Err(what)` when the budget is spent.
pub(crate) fn poll<T, D: DelayNs>(
    delay: &mut D,
    budget: Timeouts,
    what: Timeout,
    mut done: impl FnMut() -> Option<T>,
) -> Result<T, Timeout> {
    for _ in 0..budget.polls {
        if let Some(v) = done() {
            return Ok(v);
        }
        delay.delay_ns(budget.poll_interval_ns);
    }
    done().ok_or(what)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Count(u32);
    impl DelayNs for Count {
        fn delay_ns(&mut self, _ns: u32) {
            self.0 += 1;
        }
    }

    #[test]
    fn poll_is_bounded() {
        let mut d = Count(0);
        let budget = Timeouts { polls: 10, poll_interval_ns: 1 };
        let r: Result<(), _> = poll(&mut d, budget, Timeout::CmdSync, || None);
        assert_eq!(r, Err(Timeout::CmdSync));
        assert_eq!(d.0, 10);
    }

    #[test]
    fn poll_returns_early() {
        let mut d = Count(0);
        let mut n = 0;
        let budget = Timeouts { polls: 10, poll_interval_ns: 1 };
        let r = poll(&mut d, budget, Timeout::GbpaUpdate, || {
            n += 1;
            (n == 3).then_some(n)
        });
        assert_eq!(r, Ok(3));
        assert_eq!(d.0, 2);
    }

    #[test]
    fn cr0_bit_names() {
        assert_eq!(Cr0Bit::first_of(0b1000), Cr0Bit::CmdqEn);
        assert_eq!(Cr0Bit::first_of(0b0101), Cr0Bit::SmmuEn);
        assert_eq!(Cr0Bit::first_of(1 << 7), Cr0Bit::Other);
    }
}
