//! Which interactive shard an instance runs on: pure bookkeeping, no threads.
//!
//! The interactive lane is one single-threaded runtime per core (a shard, see `sched`).
//! Two apps that message each other hand over fastest on one thread: the receiver, woken
//! by the sender, runs next on the same thread with no system call and no cross-core
//! hand-off. Apps that do not talk are spread over the shards so all cores work. An app's
//! IPC grants (`send` and `accept`, both sides must agree) say whom it talks to, so an app
//! is placed on the shard where most of its peers already run, unless that shard holds
//! too many more apps than the least loaded one; otherwise on the least loaded shard.
//!
//! What it is not: a load balancer by CPU time. Apps that use whole slices leave the
//! interactive lane for the batch lane (`pace`), so what stays on a shard wakes, works
//! briefly and waits; counting apps is a fair measure of that.

use std::collections::HashMap;

/// Where instances run: one count of live instances per shard, and each app's shard.
#[derive(Debug)]
pub struct Placement {
    load: Vec<usize>,
    of: HashMap<String, (usize, usize)>,
}

impl Placement {
    /// Bookkeeping for `shards` shards (at least one).
    pub fn new(shards: usize) -> Placement {
        Placement {
            load: vec![0; shards.max(1)],
            of: HashMap::new(),
        }
    }

    /// Places an instance of `app`, whose IPC peers are `peers`, and returns its shard.
    /// Another instance of an app already placed (an HTTP app's requests, an update's
    /// new version beside the old) joins it there. Each `place` is matched by one
    /// [`Placement::release`].
    pub fn place<'a>(&mut self, app: &str, peers: impl IntoIterator<Item = &'a str>) -> usize {
        if let Some((shard, n)) = self.of.get_mut(app) {
            *n += 1;
            self.load[*shard] += 1;
            return *shard;
        }
        let least = (0..self.load.len()).min_by_key(|&s| self.load[s]).unwrap_or(0);
        let total: usize = self.load.iter().sum();
        // How many more apps than the least loaded shard a shard may hold and still take
        // an app for its peers: a hub that everyone talks to does not pull every app onto
        // one core.
        let slack = 2 + total / (4 * self.load.len());
        let mut with_peers = vec![0usize; self.load.len()];
        for p in peers {
            if let Some(&(s, _)) = self.of.get(p) {
                with_peers[s] += 1;
            }
        }
        let shard = (0..self.load.len())
            .filter(|&s| with_peers[s] > 0 && self.load[s] <= self.load[least] + slack)
            .max_by_key(|&s| (with_peers[s], std::cmp::Reverse(self.load[s])))
            .unwrap_or(least);
        self.load[shard] += 1;
        self.of.insert(app.to_string(), (shard, 1));
        shard
    }

    /// One instance of `app` ended.
    pub fn release(&mut self, app: &str) {
        let Some((shard, n)) = self.of.get_mut(app) else { return };
        let s = *shard;
        *n -= 1;
        if *n == 0 {
            self.of.remove(app);
        }
        self.load[s] = self.load[s].saturating_sub(1);
    }

    /// Live instances per shard.
    pub fn loads(&self) -> &[usize] {
        &self.load
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_share_a_shard_and_pairs_spread() {
        let mut p = Placement::new(2);
        // Started in name order, as the supervisor does: every ping, then every sink.
        let pings: Vec<usize> = (0..10).map(|i| p.place(&format!("ping-{i}"), [])).collect();
        assert_eq!(p.loads(), &[5, 5]);
        for (i, shard) in pings.into_iter().enumerate() {
            let ping = format!("ping-{i}");
            let sink = p.place(&format!("sink-{i}"), [ping.as_str()]);
            assert_eq!(sink, shard, "sink-{i} runs beside ping-{i}");
        }
        assert_eq!(p.loads(), &[10, 10]);
    }

    #[test]
    fn a_hub_does_not_pull_every_app_onto_one_shard() {
        let mut p = Placement::new(2);
        let hub = p.place("hub", []);
        let mut on_hub = 0;
        for i in 0..100 {
            if p.place(&format!("client-{i}"), ["hub"]) == hub {
                on_hub += 1;
            }
        }
        let (a, b) = (p.loads()[0], p.loads()[1]);
        // The slack at the end (2 + 101 / 8), plus the one app placed at its edge.
        assert!(a.abs_diff(b) <= 3 + 101 / 8, "loads {a} and {b} stay within the slack");
        assert!(on_hub > 50, "most clients still sit with the hub: {on_hub}");
    }

    #[test]
    fn apps_without_peers_go_to_the_least_loaded_shard() {
        let mut p = Placement::new(3);
        let shards: Vec<usize> = (0..6).map(|i| p.place(&format!("a{i}"), [])).collect();
        assert_eq!(shards, [0, 1, 2, 0, 1, 2]);
        p.release("a1");
        p.release("a4");
        assert_eq!(p.place("b", []), 1);
        assert_eq!(p.loads(), &[2, 1, 2]);
    }

    #[test]
    fn instances_of_one_app_share_its_shard_until_the_last_ends() {
        let mut p = Placement::new(2);
        assert_eq!(p.place("web", []), 0);
        assert_eq!(p.place("other", []), 1);
        assert_eq!(p.place("other2", []), 0);
        // A second instance of `web` (an update beside the old version) stays with it.
        assert_eq!(p.place("web", []), 0);
        assert_eq!(p.loads(), &[3, 1]);
        p.release("web");
        assert_eq!(p.loads(), &[2, 1]);
        p.release("web");
        p.release("web");
        assert_eq!(p.loads(), &[1, 1], "an extra release changes nothing");
        // Placed anew, as a new app: beside its peer.
        assert_eq!(p.place("web", ["other"]), 1);
    }

    #[test]
    fn unknown_peers_and_one_shard() {
        let mut p = Placement::new(0);
        assert_eq!(p.place("a", ["nobody"]), 0);
        assert_eq!(p.place("b", ["a"]), 0);
        assert_eq!(p.loads(), &[2]);
    }
}
