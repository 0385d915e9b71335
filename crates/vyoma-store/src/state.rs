//! The store's record of every app's versions, and the changes to it, as pure data: no
//! file is touched here. Each change is checked against the record before it is made, so
//! a refused change leaves the record as it was.
//!
//! An app's record holds its committed versions (the newest is the one that runs; up to
//! [`KEEP_PREVIOUS`] older ones are kept to roll back to), at most one version in
//! probation (the trial), and why the last trial was turned down.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// How many committed versions are kept besides the current one.
pub const KEEP_PREVIOUS: usize = 2;

/// The record's format version, written into `state.json`.
pub const FORMAT: u32 = 1;

/// The SHA-256 of a blob, 64 lowercase hex digits: its name in the store.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        use sha2::Digest as _;
        Digest(hex::encode(sha2::Sha256::digest(bytes)))
    }

    /// Its hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, for people.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Digest, String> {
        if s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Digest(s))
        } else {
            Err(format!("`{s}` is not a SHA-256 digest (64 lowercase hex digits)"))
        }
    }
}

impl std::str::FromStr for Digest {
    type Err = String;
    fn from_str(s: &str) -> Result<Digest, String> {
        Digest::try_from(s.to_string())
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.short())
    }
}

/// Where a version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// The app as the instance was built or started with (the image, or the apps folder).
    Factory,
    /// Deployed or updated while the instance ran.
    Deployed,
}

/// One kept version of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// Its number within the app: 1, 2, ... never reused.
    pub id: u64,
    /// The app's own version (`[app] version` of its manifest).
    pub version: String,
    /// The manifest's text.
    pub manifest: Digest,
    /// The component.
    pub component: Digest,
    /// The component's size in bytes.
    pub size: u64,
    /// When it was added (seconds since the Unix epoch).
    pub added: u64,
    /// Where it came from.
    pub origin: Origin,
}

/// A version to add (the store numbers it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    /// The app's own version.
    pub version: String,
    /// The manifest's text.
    pub manifest: Digest,
    /// The component.
    pub component: Digest,
    /// The component's size in bytes.
    pub size: u64,
    /// When (seconds since the Unix epoch).
    pub added: u64,
    /// Where it came from.
    pub origin: Origin,
}

/// Why a trial was turned down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// The version turned down.
    pub id: u64,
    /// Its app version.
    pub version: String,
    /// Why, in words.
    pub reason: String,
    /// When (seconds since the Unix epoch).
    pub at: u64,
}

/// One app's versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    /// Committed versions, oldest first; the last one is current.
    pub committed: Vec<Version>,
    /// The version in probation, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trial: Option<Version>,
    /// The last trial turned down (by probation or by the operator), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Rejection>,
    /// The number the next version gets.
    pub next_id: u64,
    /// The factory version the record started from (see [`State::adopt`]), so a changed
    /// factory set (a new image, an edited apps folder) is told apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factory: Option<FactoryStamp>,
    /// The folder relative paths in the app's manifests resolve against, for an app
    /// deployed while the instance ran (a factory app's is where its manifest is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    /// When the operator removed this factory app (seconds since the Unix epoch): it does
    /// not run while its factory version is the one [`AppRecord::factory`] names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
}

/// The manifest and component of an app's factory version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactoryStamp {
    /// The manifest's text.
    pub manifest: Digest,
    /// The component.
    pub component: Digest,
}

impl AppRecord {
    /// The committed version that runs (after a reboot, too).
    pub fn current(&self) -> Option<&Version> {
        self.committed.last()
    }

    fn number(&mut self, v: NewVersion) -> Version {
        self.next_id = self.next_id.max(1);
        let id = self.next_id;
        self.next_id += 1;
        Version {
            id,
            version: v.version,
            manifest: v.manifest,
            component: v.component,
            size: v.size,
            added: v.added,
            origin: v.origin,
        }
    }
}

/// A change the store refuses, with why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// The store keeps no version of the app.
    #[error("the store keeps no version of `{0}`")]
    UnknownApp(String),
    /// `adopt` on an app the store already keeps.
    #[error("the store already keeps versions of `{0}`")]
    AlreadyKept(String),
    /// The version named is not the one in probation.
    #[error("version {id} of `{app}` is not in probation{}", match now { Some(t) => format!(" (version {t} is)"), None => " (none is)".to_string() })]
    NotOnTrial {
        /// The app.
        app: String,
        /// The version named.
        id: u64,
        /// The version in probation, if one is.
        now: Option<u64>,
    },
    /// Nothing older to go back to.
    #[error("`{0}` has no earlier version to roll back to")]
    NothingToRollBackTo(String),
}

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack {
    /// The version that no longer runs (the trial, or the current one).
    pub from: Version,
    /// The version that runs now.
    pub to: Version,
    /// Whether `from` was in probation (else it was committed and is now dropped).
    pub was_trial: bool,
}

/// Every app's record: the contents of `state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// [`FORMAT`].
    pub format: u32,
    /// By app name.
    pub apps: BTreeMap<String, AppRecord>,
}

impl Default for State {
    fn default() -> State {
        State {
            format: FORMAT,
            apps: BTreeMap::new(),
        }
    }
}

impl State {
    /// The record of `app`, if the store keeps it.
    pub fn app(&self, app: &str) -> Option<&AppRecord> {
        self.apps.get(app)
    }

    fn record(&mut self, app: &str) -> Result<&mut AppRecord, Refused> {
        self.apps
            .get_mut(app)
            .ok_or_else(|| Refused::UnknownApp(app.to_string()))
    }

    /// Starts keeping `app`, with `v` (the version it runs now) as its committed version.
    pub fn adopt(&mut self, app: &str, v: NewVersion) -> Result<Version, Refused> {
        if self.apps.contains_key(app) {
            return Err(Refused::AlreadyKept(app.to_string()));
        }
        let mut r = AppRecord::default();
        if v.origin == Origin::Factory {
            r.factory = Some(FactoryStamp {
                manifest: v.manifest.clone(),
                component: v.component.clone(),
            });
        }
        let v = r.number(v);
        r.committed.push(v.clone());
        self.apps.insert(app.to_string(), r);
        Ok(v)
    }

    /// Puts `v` in probation for `app` (which the store need not keep yet: a new app's
    /// first version is a trial too). A trial already in probation is dropped and
    /// returned.
    pub fn propose(&mut self, app: &str, v: NewVersion) -> (Version, Option<Version>) {
        let r = self.apps.entry(app.to_string()).or_default();
        let v = r.number(v);
        let replaced = r.trial.replace(v.clone());
        (v, replaced)
    }

    /// Commits the trial `id` of `app`: it becomes current; versions beyond
    /// [`KEEP_PREVIOUS`] older ones are dropped (and returned).
    pub fn commit(&mut self, app: &str, id: u64) -> Result<Vec<Version>, Refused> {
        let r = self.record(app)?;
        let v = take_trial(app, r, id)?;
        r.removed = None;
        r.committed.push(v);
        let excess = r.committed.len().saturating_sub(KEEP_PREVIOUS + 1);
        Ok(r.committed.drain(..excess).collect())
    }

    /// Turns down the trial `id` of `app` for `reason`. An app with no committed version
    /// left (a first deploy that failed) is no longer kept.
    pub fn reject(&mut self, app: &str, id: u64, reason: &str, at: u64) -> Result<Version, Refused> {
        let r = self.record(app)?;
        let v = take_trial(app, r, id)?;
        r.rejected = Some(Rejection {
            id,
            version: v.version.clone(),
            reason: reason.to_string(),
            at,
        });
        if r.committed.is_empty() && r.removed.is_none() {
            self.apps.remove(app);
        }
        Ok(v)
    }

    /// Records that the operator removed `app`: a deployed app is no longer kept; a
    /// factory app (`factory`: its stamp) is kept as removed, so it stays away after a
    /// restart until its factory version changes. Returns the record as it was, if any.
    pub fn retire(&mut self, app: &str, factory: Option<FactoryStamp>, at: u64) -> Option<AppRecord> {
        let old = self.apps.remove(app);
        if let Some(stamp) = factory {
            let next_id = old.as_ref().map_or(1, |r| r.next_id);
            self.apps.insert(
                app.to_string(),
                AppRecord {
                    next_id,
                    factory: Some(stamp),
                    removed: Some(at),
                    ..AppRecord::default()
                },
            );
        }
        old
    }

    /// Goes back one version: the trial is turned down if there is one, otherwise the
    /// current version is dropped and the one before it becomes current.
    pub fn rollback(&mut self, app: &str, reason: &str, at: u64) -> Result<RolledBack, Refused> {
        let r = self.record(app)?;
        if let Some(trial) = &r.trial {
            let (id, to) = (trial.id, r.current().cloned());
            let Some(to) = to else {
                return Err(Refused::NothingToRollBackTo(app.to_string()));
            };
            let from = self.reject(app, id, reason, at)?;
            return Ok(RolledBack {
                from,
                to,
                was_trial: true,
            });
        }
        if r.committed.len() < 2 {
            return Err(Refused::NothingToRollBackTo(app.to_string()));
        }
        let from = r.committed.pop().expect("two or more versions");
        r.rejected = Some(Rejection {
            id: from.id,
            version: from.version.clone(),
            reason: reason.to_string(),
            at,
        });
        let to = r.current().cloned().expect("one version left");
        Ok(RolledBack {
            from,
            to,
            was_trial: false,
        })
    }

    /// Stops keeping `app`; returns its record.
    pub fn remove(&mut self, app: &str) -> Result<AppRecord, Refused> {
        self.apps
            .remove(app)
            .ok_or_else(|| Refused::UnknownApp(app.to_string()))
    }

    /// Every blob a kept version names.
    pub fn referenced(&self) -> BTreeSet<Digest> {
        self.apps
            .values()
            .flat_map(|r| r.committed.iter().chain(&r.trial))
            .flat_map(|v| [v.manifest.clone(), v.component.clone()])
            .collect()
    }
}

fn take_trial(app: &str, r: &mut AppRecord, id: u64) -> Result<Version, Refused> {
    match &r.trial {
        Some(t) if t.id == id => Ok(r.trial.take().expect("just matched")),
        other => Err(Refused::NotOnTrial {
            app: app.to_string(),
            id,
            now: other.as_ref().map(|t| t.id),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(n: u8) -> NewVersion {
        NewVersion {
            version: format!("0.{n}.0"),
            manifest: Digest::of(&[n, 0]),
            component: Digest::of(&[n, 1]),
            size: u64::from(n),
            added: u64::from(n),
            origin: Origin::Deployed,
        }
    }

    #[test]
    fn a_trial_becomes_current_when_committed_and_old_versions_are_pruned() {
        let mut s = State::default();
        s.adopt("a", new(1)).unwrap();
        for n in 2..=5 {
            let (v, replaced) = s.propose("a", new(n));
            assert_eq!(replaced, None);
            assert_eq!(
                s.app("a").unwrap().current().unwrap().id,
                u64::from(n) - 1,
                "trial is not current"
            );
            let dropped = s.commit("a", v.id).unwrap();
            assert_eq!(dropped.len(), usize::from(n >= 4));
        }
        let ids: Vec<u64> = s.app("a").unwrap().committed.iter().map(|v| v.id).collect();
        assert_eq!(ids, [3, 4, 5]);
    }

    #[test]
    fn a_removed_factory_app_stays_removed_until_deployed_again() {
        let mut s = State::default();
        let stamp = FactoryStamp {
            manifest: Digest::of(b"m"),
            component: Digest::of(b"c"),
        };
        s.adopt("a", new(1)).unwrap();
        let old = s.retire("a", Some(stamp.clone()), 7).unwrap();
        assert_eq!(old.committed.len(), 1);
        let r = s.app("a").unwrap();
        assert_eq!(
            (r.removed, r.current(), r.factory.as_ref()),
            (Some(7), None, Some(&stamp))
        );
        assert!(s.referenced().is_empty(), "a removed app keeps no blob");
        // A first deploy that fails keeps the app removed; one that passes brings it back.
        let (v, _) = s.propose("a", new(2));
        assert_eq!(v.id, 2, "ids are not reused");
        s.reject("a", v.id, "traps", 8).unwrap();
        assert!(s.app("a").is_some(), "the removal is not forgotten");
        let (v, _) = s.propose("a", new(3));
        s.commit("a", v.id).unwrap();
        let r = s.app("a").unwrap();
        assert_eq!((r.removed, r.current().map(|v| v.id)), (None, Some(3)));
        // A deployed app is forgotten whole.
        s.propose("b", new(1));
        assert!(s.retire("b", None, 9).is_some());
        assert!(s.app("b").is_none());
    }

    #[test]
    fn rollback_turns_down_the_trial_first_then_goes_back_through_committed_versions() {
        let mut s = State::default();
        s.adopt("a", new(1)).unwrap();
        let (v2, _) = s.propose("a", new(2));
        s.commit("a", v2.id).unwrap();
        let (v3, _) = s.propose("a", new(3));
        let rb = s.rollback("a", "traps", 9).unwrap();
        assert_eq!((rb.from.id, rb.to.id, rb.was_trial), (v3.id, v2.id, true));
        assert_eq!(s.app("a").unwrap().rejected.as_ref().unwrap().reason, "traps");
        let rb = s.rollback("a", "operator", 10).unwrap();
        assert_eq!((rb.from.id, rb.to.id, rb.was_trial), (2, 1, false));
        assert_eq!(s.rollback("a", "x", 11), Err(Refused::NothingToRollBackTo("a".into())));
        // Ids are never reused.
        assert_eq!(s.propose("a", new(4)).0.id, 4);
    }

    #[test]
    fn only_the_trial_in_probation_can_be_committed_or_rejected() {
        let mut s = State::default();
        s.adopt("a", new(1)).unwrap();
        assert_eq!(
            s.commit("a", 1),
            Err(Refused::NotOnTrial {
                app: "a".into(),
                id: 1,
                now: None
            })
        );
        let (v2, _) = s.propose("a", new(2));
        let (v3, replaced) = s.propose("a", new(3));
        assert_eq!(replaced, Some(v2.clone()));
        assert!(s.commit("a", v2.id).unwrap_err().to_string().contains("(version 3 is)"));
        s.commit("a", v3.id).unwrap();
        assert_eq!(s.commit("b", 1), Err(Refused::UnknownApp("b".into())));
    }

    #[test]
    fn a_first_deploy_turned_down_leaves_nothing_kept() {
        let mut s = State::default();
        let (v, _) = s.propose("new", new(1));
        assert_eq!(
            s.rollback("new", "x", 1),
            Err(Refused::NothingToRollBackTo("new".into()))
        );
        s.reject("new", v.id, "traps at start", 2).unwrap();
        assert!(s.app("new").is_none());
        assert!(s.referenced().is_empty());
    }

    #[test]
    fn referenced_blobs_are_those_of_kept_versions() {
        let mut s = State::default();
        s.adopt("a", new(1)).unwrap();
        s.propose("a", new(2));
        let r = s.referenced();
        assert_eq!(r.len(), 4);
        assert!(r.contains(&Digest::of(&[2, 1])));
    }

    #[test]
    fn digests_are_checked_when_read() {
        assert!(serde_json::from_str::<Digest>("\"abc\"").is_err());
        assert!(serde_json::from_str::<Digest>(&format!("\"{}\"", "A".repeat(64))).is_err());
        let d = Digest::of(b"x");
        let back: Digest = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }
}
