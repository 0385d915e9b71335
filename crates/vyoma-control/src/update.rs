//! The replies of `deploy`, `update`, `rollback`, `versions` and `remove`: typed, with
//! their JSON shapes (the management API's), rendered by [`crate::render`].

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use vyoma_lifecycle::wire;

/// Where `update` takes the new version from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpdateSource {
    /// An app folder on the machine the supervisor runs on (the console's `update APP DIR`).
    Folder(std::path::PathBuf),
    /// A manifest's text and a component already uploaded (the API: `PUT /v1/blobs/SHA256`).
    Upload {
        /// The manifest's text.
        manifest: String,
        /// The component's SHA-256, hex.
        component: String,
    },
}

/// How `update` goes about it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateOptions {
    /// Let a breaking interface change through.
    #[serde(default)]
    pub force: bool,
    /// Check and report what would change; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// A version of an app, as replies name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionBrief {
    /// Its number in the app store (`None`: the factory version, not yet in the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The app's own version.
    pub version: String,
    /// The component's SHA-256, hex.
    pub component: String,
}

/// What `update` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateReport {
    /// The app.
    pub app: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// The version that ran.
    pub from: VersionBrief,
    /// The version that runs now, in probation.
    pub to: VersionBrief,
    /// What differs, in words (component, grants, limits, routes, interfaces).
    pub changes: Vec<String>,
    /// Breaking changes let through by `force`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forced: Vec<String>,
    /// How long the new version is on probation.
    #[serde(rename = "probation_ms", with = "wire::millis")]
    pub probation: Duration,
    /// How the swap went (not for a dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapReport>,
}

/// How one version took over from another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwapReport {
    /// How long the old instance took to finish the message it was handling.
    #[serde(rename = "handover_us", with = "micros")]
    pub handover: Duration,
    /// From the request to the new version's instance created and started.
    #[serde(rename = "swap_us", with = "micros")]
    pub total: Duration,
    /// The senders of what the old instance took and had not finished when it was
    /// stopped (a message, or a batch from `recv-many`: not handed to the new version),
    /// each once; empty: nothing was lost.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unfinished_from: Vec<String>,
}

/// What `rollback` did (or probation did, automatically).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackReport {
    /// The app.
    pub app: String,
    /// The version that no longer runs.
    pub from: VersionBrief,
    /// The version that runs now; `None`: the app was deployed with the version turned
    /// down, so there is none to go back to (it is stopped and not kept).
    pub to: Option<VersionBrief>,
    /// Why.
    pub reason: String,
    /// How the swap went (`None` when nothing was swapped in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swap: Option<SwapReport>,
}

/// What `deploy` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployReport {
    /// The new app.
    pub app: String,
    /// Nothing was changed.
    pub dry_run: bool,
    /// Its version.
    pub version: VersionBrief,
    /// The apps it waits for at start (`depends_on`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// What it replaces: an app that could not run, or an earlier deploy turned down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// Its own data folder (`[capabilities] data`), on the supervisor's machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// How long it is on probation: a failure within it stops the app and forgets it.
    #[serde(rename = "probation_ms", with = "wire::millis")]
    pub probation: Duration,
}

/// What `remove` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveReport {
    /// The app.
    pub app: String,
    /// It was one of the apps the instance started with: it stays removed across
    /// restarts until the factory set changes (a new image), or it is deployed again.
    pub factory: bool,
    /// Messages that were waiting in its inbox, dropped.
    pub dropped_messages: u64,
    /// Requests to it still unanswered; their senders were told at once.
    pub unanswered: u64,
    /// The removal is kept in the app store (`false`: this instance keeps none, and the
    /// app comes back at the next start).
    pub persistent: bool,
    /// With `purge`: the bytes its data folder held, deleted. Without: the data folder
    /// kept for a later deploy of the same name, if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purged: Option<u64>,
    /// Its data folder, kept (not purged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_data: Option<String>,
}

/// Where a kept version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VersionStatus {
    /// It runs, committed.
    Current,
    /// It runs, in probation.
    Trial,
    /// Kept to roll back to.
    Previous,
}

/// One row of `versions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRow {
    /// Its number (`None`: the factory version, not yet in the store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The app's own version.
    pub version: String,
    /// The component's SHA-256, hex.
    pub component: String,
    /// The component's size in bytes.
    pub size: u64,
    /// When it was added (`None`: the factory version).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_rfc3339")]
    pub added: Option<SystemTime>,
    /// `factory` or `deployed`.
    pub origin: String,
    /// Where it stands.
    pub status: VersionStatus,
}

/// A version turned down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedVersion {
    /// Its number.
    pub id: u64,
    /// The app's own version.
    pub version: String,
    /// Why.
    pub reason: String,
    /// When.
    #[serde(with = "wire::rfc3339")]
    pub at: SystemTime,
}

/// What `versions` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionsReport {
    /// The app.
    pub app: String,
    /// Newest first.
    pub versions: Vec<VersionRow>,
    /// The last version turned down, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<RejectedVersion>,
}

/// Durations as whole microseconds.
mod micros {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_micros)
    }
}

/// An optional time as an RFC 3339 string.
mod opt_rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => vyoma_lifecycle::wire::rfc3339::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "vyoma_lifecycle::wire::rfc3339")] SystemTime);
        Option::<W>::deserialize(d).map(|o| o.map(|w| w.0))
    }
}
