//! How many instances this machine can hold at once, and the count of live ones. Past
//! that, a start is refused with a clear error instead of the process aborting when an
//! `mmap` fails (which is what happened at 30,000 apps: each instance needs a few memory
//! mappings, and `vm.max_map_count` is 65,530 by default).
//!
//! The limits, each measured or read at start:
//! - memory mappings: `vm.max_map_count` less the mappings the process already has,
//!   at [`maps_per_instance`] each, keeping a tenth for the supervisor's own heap (a
//!   failed heap `mmap` aborts the process);
//! - address space: each linear memory reserves [`crate::MAX_APP_MEMORY`] (so bounds
//!   checks can be elided) in a 47-bit user address space;
//! - the instance pool, when there is one: its slots;
//! - an operator's own cap, if set.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Memory mappings one idle instance adds, measured with 1,000 and 2,000 bundled tickers
/// (docs/PERFORMANCE.md): 6.0 with the pooling allocator (its slots are carved out of one
/// reservation, but each in-use memory, table and stack splits it), 4.9 on demand (the
/// memory reservation and its guard, the fiber stack and its guard page).
pub fn maps_per_instance(pooled: bool) -> u64 {
    if pooled { 6 } else { 5 }
}
/// User address space on x86-64 and aarch64 with 4-level page tables.
const ADDRESS_SPACE: u64 = 1 << 47;

/// What bounds the instance count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// Most instances at once.
    pub instances: usize,
    /// Why that many, for error messages: names the limit and how to raise it.
    pub limited_by: String,
}

/// The facts the capacity is computed from (read from /proc by [`Capacity::of_machine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineFacts {
    /// `vm.max_map_count`.
    pub max_map_count: u64,
    /// Mappings the process has now.
    pub maps_now: u64,
    /// Slots of the instance pool, if pooled (its address space is already reserved).
    pub pool_slots: Option<u64>,
    /// Bytes each on-demand instance reserves.
    pub reservation: u64,
    /// An operator's cap.
    pub cap: Option<u64>,
}

impl Capacity {
    /// The capacity the facts allow. Pure.
    pub fn from_facts(f: MachineFacts) -> Capacity {
        let per = maps_per_instance(f.pool_slots.is_some());
        let maps = f.max_map_count.saturating_sub(f.maps_now) * 9 / 10 / per;
        let mut best = (
            maps,
            format!(
                "vm.max_map_count is {} and each instance needs about {per} memory mappings; raise it with `sysctl vm.max_map_count=N`",
                f.max_map_count
            ),
        );
        let mut consider = |n: u64, why: String| {
            if n < best.0 {
                best = (n, why);
            }
        };
        match f.pool_slots {
            Some(slots) => consider(
                slots,
                format!("the instance pool has {slots} slots; raise it with --capacity"),
            ),
            None => consider(
                ADDRESS_SPACE / f.reservation.max(1),
                format!(
                    "each instance reserves {} GiB of address space and there are 128 TiB",
                    f.reservation >> 30
                ),
            ),
        }
        if let Some(cap) = f.cap {
            consider(cap, format!("the operator's cap is {cap}"));
        }
        Capacity {
            instances: usize::try_from(best.0).unwrap_or(usize::MAX),
            limited_by: best.1,
        }
    }

    /// The capacity of this machine now.
    pub fn of_machine(pool_slots: Option<u64>, cap: Option<u64>) -> Capacity {
        let max_map_count = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(65_530);
        let maps_now = std::fs::read_to_string("/proc/self/maps")
            .map(|s| s.lines().count() as u64)
            .unwrap_or(0);
        Capacity::from_facts(MachineFacts {
            max_map_count,
            maps_now,
            pool_slots,
            reservation: crate::MAX_APP_MEMORY + (32 << 20),
            cap,
        })
    }
}

/// The live-instance count, against a [`Capacity`].
#[derive(Debug)]
pub(crate) struct Instances {
    pub(crate) capacity: Capacity,
    live: Arc<AtomicUsize>,
}

/// Holds one instance's place; gives it back when dropped.
#[derive(Debug)]
pub(crate) struct Place(Arc<AtomicUsize>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Instances {
    pub(crate) fn new(capacity: Capacity) -> Instances {
        Instances {
            capacity,
            live: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// A place for one more instance, or the error that says why there is none.
    pub(crate) fn take(&self) -> Result<Place, String> {
        let max = self.capacity.instances;
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
            .map(|_| Place(self.live.clone()))
            .map_err(|_| {
                format!(
                    "not started: {max} instances are running, the most this machine can hold ({}); stop an app first",
                    self.capacity.limited_by
                )
            })
    }

    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> MachineFacts {
        MachineFacts {
            max_map_count: 65_530,
            maps_now: 530,
            pool_slots: None,
            reservation: (4 << 30) + (32 << 20),
            cap: None,
        }
    }

    #[test]
    fn the_default_map_count_bounds_an_on_demand_supervisor() {
        let c = Capacity::from_facts(facts());
        // 65,000 free mappings, a tenth kept, 5 per instance.
        assert_eq!(c.instances, 11_700);
        assert!(c.limited_by.contains("vm.max_map_count is 65530"), "{}", c.limited_by);
        assert!(c.limited_by.contains("sysctl"), "{}", c.limited_by);
    }

    #[test]
    fn with_more_mappings_the_address_space_bounds_it() {
        let c = Capacity::from_facts(MachineFacts {
            max_map_count: 10_000_000,
            ..facts()
        });
        assert_eq!(c.instances, 32_513);
        assert!(c.limited_by.contains("address space"), "{}", c.limited_by);
    }

    #[test]
    fn a_pool_or_a_cap_bounds_it_when_smaller() {
        let c = Capacity::from_facts(MachineFacts {
            pool_slots: Some(400),
            ..facts()
        });
        assert_eq!(c.instances, 400);
        assert!(c.limited_by.contains("--capacity"));
        let c = Capacity::from_facts(MachineFacts {
            cap: Some(3),
            ..facts()
        });
        assert_eq!((c.instances, c.limited_by.as_str()), (3, "the operator's cap is 3"));
    }

    #[test]
    fn places_are_refused_past_the_capacity_and_given_back() {
        let i = Instances::new(Capacity {
            instances: 2,
            limited_by: "a test".into(),
        });
        let a = i.take().unwrap();
        let _b = i.take().unwrap();
        let e = i.take().unwrap_err();
        assert_eq!(
            e,
            "not started: 2 instances are running, the most this machine can hold (a test); stop an app first"
        );
        drop(a);
        assert_eq!(i.live(), 1);
        i.take().unwrap();
    }

    #[test]
    fn this_machine_has_room_for_some() {
        assert!(Capacity::of_machine(None, None).instances > 100);
    }
}
