//! The memory budget every app shares: one limit on the linear memory of all instances
//! together plus the host memory apps cause (IPC messages waiting in inboxes), so that
//! apps together can never take the memory the supervisor needs. Each app's own limit
//! (`[limits] memory`) still applies; the budget is what keeps 200 apps with 64 MiB
//! limits from promising 12.8 GiB in a 512 MiB VM, where PID 1 under memory pressure
//! would end in a kernel panic.
//!
//! Charged when memory is taken (a `memory.grow`, including an instance's initial
//! memories, and a message queued) and given back when it is freed (the instance ends,
//! the message is taken). A growth the budget cannot cover ends the app that asked, with
//! a reason that names the budget; a message it cannot cover is refused as `full`.
//! Host buffers that are bounded per call are not charged: WASI reads (Wasmtime caps each
//! at 64 KiB) and IPC bodies being lifted (they are copies of the sender's own linear
//! memory, already charged, and are queued or dropped within the call).

use std::sync::atomic::{AtomicU64, Ordering};

/// What the budget could not cover.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the apps' shared memory budget is used up: asked for {asked} more bytes while all apps held {used} of {limit} bytes"
)]
pub struct BudgetExceeded {
    /// The budget, in bytes.
    pub limit: u64,
    /// Bytes held by all apps when it asked.
    pub used: u64,
    /// Bytes it asked for.
    pub asked: u64,
}

/// The shared account. Lock-free: charging is one compare-and-swap.
#[derive(Debug)]
pub struct MemoryBudget {
    limit: u64,
    used: AtomicU64,
}

/// Memory left to the supervisor and the kernel when the budget comes from the machine:
/// an eighth of it, at least 64 MiB.
fn reserve_for(total: u64) -> u64 {
    (total / 8).max(64 << 20)
}

impl MemoryBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> MemoryBudget {
        MemoryBudget {
            limit,
            used: AtomicU64::new(0),
        }
    }

    /// The default budget for this machine: its memory (`MemTotal`) less what the
    /// supervisor and kernel keep (an eighth, at least 64 MiB). `None` if the machine's
    /// memory cannot be read.
    pub fn default_limit() -> Option<u64> {
        let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
        let total = meminfo_kib(&meminfo, "MemTotal:")? * 1024;
        Some(total.saturating_sub(reserve_for(total)))
    }

    /// Takes `bytes`, or says why not.
    pub fn try_charge(&self, bytes: u64) -> Result<(), BudgetExceeded> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&n| n <= self.limit)
            })
            .map(drop)
            .map_err(|used| BudgetExceeded {
                limit: self.limit,
                used,
                asked: bytes,
            })
    }

    /// Gives back `bytes` taken earlier.
    pub fn release(&self, bytes: u64) {
        let before = self.used.fetch_sub(bytes, Ordering::AcqRel);
        debug_assert!(before >= bytes, "released {bytes} bytes but only {before} were charged");
    }

    /// The budget, in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes held by all apps now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Acquire)
    }
}

impl vyoma_ipc::HostMemory for MemoryBudget {
    fn try_charge(&self, bytes: u64) -> bool {
        MemoryBudget::try_charge(self, bytes).is_ok()
    }

    fn release(&self, bytes: u64) {
        MemoryBudget::release(self, bytes);
    }
}

/// A `/proc/meminfo` field, in KiB.
fn meminfo_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_up_to_the_limit_and_no_further() {
        let b = MemoryBudget::new(100);
        b.try_charge(60).unwrap();
        assert_eq!(
            b.try_charge(41),
            Err(BudgetExceeded {
                limit: 100,
                used: 60,
                asked: 41
            })
        );
        b.try_charge(40).unwrap();
        assert_eq!(b.used(), 100);
        b.release(60);
        assert_eq!(b.used(), 40);
        assert!(b.try_charge(u64::MAX).is_err(), "no overflow");
    }

    #[test]
    fn the_message_names_the_budget_and_the_figures() {
        let e = MemoryBudget::new(10).try_charge(11).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the apps' shared memory budget is used up: asked for 11 more bytes while all apps held 0 of 10 bytes"
        );
    }

    #[test]
    fn the_default_leaves_an_eighth_or_64_mib_to_the_supervisor() {
        assert_eq!(reserve_for(24 << 30), 3 << 30);
        assert_eq!(reserve_for(256 << 20), 64 << 20);
        let text = "MemTotal:       524288 kB\nMemFree:  1 kB\n";
        assert_eq!(meminfo_kib(text, "MemTotal:"), Some(524288));
        let limit = MemoryBudget::default_limit().expect("this machine has /proc/meminfo");
        assert!(limit > 0);
    }

    #[test]
    fn many_threads_never_overdraw_it() {
        let b = std::sync::Arc::new(MemoryBudget::new(1000));
        let granted: u64 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..8)
                .map(|_| {
                    let b = b.clone();
                    s.spawn(move || (0..1000).filter(|_| b.try_charge(1).is_ok()).count() as u64)
                })
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(granted, 1000);
        assert_eq!(b.used(), 1000);
    }
}
