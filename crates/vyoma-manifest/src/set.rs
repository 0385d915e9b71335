//! A set of apps run together: names unique, dependencies known and acyclic, and a start
//! order in which every app comes after the apps it depends on. The apps that break those
//! rules can be set aside ([`PartialSet`]) so the rest still run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::{Diagnostic, Diagnostics, MANIFEST_FILE, Manifest};

/// Validated manifests in start order (dependencies first; otherwise by name), and the
/// warnings found checking them against each other.
#[derive(Debug, Clone, Default)]
pub struct AppSet {
    apps: Vec<Manifest>,
    warnings: Vec<Diagnostic>,
}

/// An app that cannot run, and why: its manifest is invalid, its name is taken, it depends
/// on an app that is unknown or cannot run itself, or it is part of a dependency cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The app's name, or its folder's name when its manifest could not be read (or when
    /// another app already has its name).
    pub name: String,
    /// Its manifest file.
    pub manifest: PathBuf,
    /// Every problem, with file, line and column.
    pub problems: Diagnostics,
}

/// What loading a folder of apps found: the apps that can run, and those that cannot. One
/// bad app does not stop the others (systemd style): the supervisor runs the set and shows
/// the rejected apps as failed, with their problems.
#[derive(Debug, Clone, Default)]
pub struct PartialSet {
    /// The apps that can run, in start order.
    pub set: AppSet,
    /// The apps that cannot.
    pub rejected: Vec<Rejected>,
    peers: Peers,
}

impl PartialSet {
    /// Sets aside, too, the apps for which `problems` finds any (checks only the caller
    /// can make, such as grants the runtime refuses), and the apps that depend on them.
    pub fn reject_where(self, problems: impl Fn(&Manifest) -> Vec<Diagnostic>) -> PartialSet {
        let mut rejected = self.rejected;
        let mut keep = Vec::new();
        for m in self.set.apps {
            let p = problems(&m);
            if p.is_empty() {
                keep.push(m);
            } else {
                rejected.push(Rejected {
                    name: m.name.clone(),
                    manifest: m.source.path.clone(),
                    problems: Diagnostics(p),
                });
            }
        }
        AppSet::check(keep, rejected, self.peers)
    }
}

/// How apps that are not in the set are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Peers {
    /// A set of apps: every name must be an app of the set.
    #[default]
    Closed,
    /// One app on its own: the apps it names live elsewhere, so unknown names are warnings.
    Lone,
}

impl AppSet {
    /// Checks the apps against each other and orders them. Any app that cannot run makes
    /// the whole set an error (for `vyoma check` and the image builder, which want all or
    /// nothing); see [`AppSet::partial`] for the forgiving form.
    pub fn new(manifests: Vec<Manifest>) -> Result<AppSet, Diagnostics> {
        AppSet::strict(AppSet::check(manifests, Vec::new(), Peers::Closed))
    }

    /// One app on its own: like [`AppSet::new`], but the apps it depends on or exchanges
    /// messages with are expected to live elsewhere, so naming them is a warning.
    pub fn lone(m: Manifest) -> Result<AppSet, Diagnostics> {
        AppSet::strict(AppSet::check(vec![m], Vec::new(), Peers::Lone))
    }

    /// Checks the apps against each other and orders those that can run; the others are
    /// returned as [`Rejected`], each with every problem.
    pub fn partial(manifests: Vec<Manifest>) -> PartialSet {
        AppSet::check(manifests, Vec::new(), Peers::Closed)
    }

    fn strict(p: PartialSet) -> Result<AppSet, Diagnostics> {
        if p.rejected.is_empty() {
            Ok(p.set)
        } else {
            Err(Diagnostics(p.rejected.into_iter().flat_map(|r| r.problems.0).collect()))
        }
    }

    fn check(manifests: Vec<Manifest>, mut rejected: Vec<Rejected>, peers: Peers) -> PartialSet {
        // Names are addresses: the first folder (in sorted order) keeps a name.
        let mut keep: Vec<Manifest> = Vec::new();
        let mut first_of: BTreeMap<String, PathBuf> = BTreeMap::new();
        for m in manifests {
            match first_of.get(&m.name) {
                Some(first) => {
                    let d = Diagnostic::file(
                        &m.source.path,
                        format!("app name `{}` is already used by {}", m.name, first.display()),
                        Some("app names are addresses and must be unique: rename one of the apps".into()),
                    );
                    rejected.push(Rejected {
                        name: folder_name(&m),
                        manifest: m.source.path.clone(),
                        problems: d.into(),
                    });
                }
                None => {
                    first_of.insert(m.name.clone(), m.source.path.clone());
                    keep.push(m);
                }
            }
        }
        let (mut keep, mut rejected) = route_conflicts(keep, rejected);
        // Rejecting an app can strand the apps that depend on it, and breaking a cycle
        // rejects its members: repeat until nothing changes.
        loop {
            let known: BTreeSet<&str> = keep.iter().map(|m| m.name.as_str()).collect();
            let failed: BTreeSet<&str> = rejected.iter().map(|r| r.name.as_str()).collect();
            let mut out: Vec<(usize, Diagnostics)> = Vec::new();
            for (i, m) in keep.iter().enumerate() {
                let problems = dependency_problems(m, &known, &failed, peers);
                if !problems.is_empty() {
                    out.push((i, Diagnostics(problems)));
                }
            }
            if out.is_empty() {
                match order(&keep) {
                    Ok(order) => {
                        let rank: BTreeMap<&str, usize> =
                            order.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
                        let ranks: Vec<usize> = keep.iter().map(|m| rank[m.name.as_str()]).collect();
                        let mut ranked: Vec<(usize, Manifest)> = ranks.into_iter().zip(keep).collect();
                        ranked.sort_by_key(|(r, _)| *r);
                        let apps: Vec<Manifest> = ranked.into_iter().map(|(_, m)| m).collect();
                        let known: BTreeSet<&str> = apps.iter().map(|m| m.name.as_str()).collect();
                        let failed: BTreeSet<&str> = rejected.iter().map(|r| r.name.as_str()).collect();
                        let warnings = apps
                            .iter()
                            .flat_map(|m| peer_warnings(m, &known, &failed, peers))
                            .collect();
                        return PartialSet {
                            set: AppSet { apps, warnings },
                            rejected,
                            peers,
                        };
                    }
                    Err((cycle, d)) => {
                        let (bad, good): (Vec<Manifest>, Vec<Manifest>) =
                            keep.into_iter().partition(|m| cycle.contains(&m.name));
                        keep = good;
                        for m in bad {
                            let mut d = d.clone();
                            d.file = m.source.path.clone();
                            rejected.push(Rejected {
                                name: m.name.clone(),
                                manifest: m.source.path.clone(),
                                problems: d.into(),
                            });
                        }
                    }
                }
                continue;
            }
            for (i, problems) in out.into_iter().rev() {
                let m = keep.remove(i);
                rejected.push(Rejected {
                    name: m.name.clone(),
                    manifest: m.source.path.clone(),
                    problems,
                });
            }
        }
    }

    /// Loads every app folder (a sub-folder holding `app.toml`) directly inside `dir`, or
    /// `dir` itself if it is an app folder (a lone app: see [`AppSet::lone`]). Collects
    /// every problem from every manifest; any problem is an error for the whole set.
    pub fn load_dir(dir: &Path) -> Result<AppSet, Diagnostics> {
        let p = AppSet::load_dir_partial(dir)?;
        AppSet::strict(p)
    }

    /// Like [`AppSet::load_dir`], but the apps that cannot run are returned as
    /// [`Rejected`] beside the set of those that can. An error only when `dir` cannot be
    /// read or holds no apps.
    pub fn load_dir_partial(dir: &Path) -> Result<PartialSet, Diagnostics> {
        let folders = app_folders(dir).map_err(Diagnostics::from)?;
        let peers = if folders.len() == 1 && folders[0] == dir {
            Peers::Lone
        } else {
            Peers::Closed
        };
        let mut manifests = Vec::new();
        let mut rejected = Vec::new();
        for f in &folders {
            let file = f.join(MANIFEST_FILE);
            match Manifest::load_file(&file) {
                Ok(m) => manifests.push(m),
                Err(problems) => rejected.push(Rejected {
                    name: f
                        .file_name()
                        .map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into_owned()),
                    manifest: file,
                    problems,
                }),
            }
        }
        Ok(AppSet::check(manifests, rejected, peers))
    }

    /// The apps in start order.
    pub fn apps(&self) -> &[Manifest] {
        &self.apps
    }

    /// What checking the apps against each other found that does not stop them.
    pub fn warnings(&self) -> &[Diagnostic] {
        &self.warnings
    }

    /// Consumes the set, giving the apps in start order.
    pub fn into_apps(self) -> Vec<Manifest> {
        self.apps
    }
}

/// The name a rejected app is shown under when its own is unusable: its folder's.
fn folder_name(m: &Manifest) -> String {
    let dir = m.source.dir();
    dir.file_name()
        .map_or_else(|| dir.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Why `m` cannot run among `known` apps (`failed` ones exist but cannot run): a
/// dependency that is unknown (in a closed set) or cannot run, or an IPC grant to an
/// unknown app (in a closed set).
fn dependency_problems(m: &Manifest, known: &BTreeSet<&str>, failed: &BTreeSet<&str>, peers: Peers) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for d in &m.depends_on {
        if known.contains(d.value.as_str()) {
            continue;
        }
        if failed.contains(d.value.as_str()) {
            problems.push(
                m.source
                    .diagnostic(
                        d.span.clone(),
                        format!("app `{}` depends on app `{}`, which cannot run", m.name, d.value),
                    )
                    .with_help(format!("fix `{}` first (its own errors say how)", d.value)),
            );
        } else if peers == Peers::Closed {
            problems.push(
                m.source
                    .diagnostic(
                        d.span.clone(),
                        format!("app `{}` depends on unknown app `{}`", m.name, d.value),
                    )
                    .with_help("add that app to the set, or remove it from `depends_on`"),
            );
        }
    }
    if peers == Peers::Closed {
        let ipc = &m.capabilities.ipc;
        for (key, list) in [("send", &ipc.send), ("accept", &ipc.accept)] {
            for n in list.names() {
                let name = n.value.as_str();
                if name != "console" && !known.contains(name) && !failed.contains(name) {
                    problems.push(
                        m.source
                            .diagnostic(
                                n.span.clone(),
                                format!("app `{}` grants IPC `{key}` to unknown app `{name}`", m.name),
                            )
                            .with_help(format!(
                                "add that app to the set, or remove it from `{key}` in `[capabilities.ipc]`"
                            )),
                    );
                }
            }
        }
    }
    problems
}

/// What does not stop `m` but is worth saying: peers that are elsewhere (a lone app) or
/// that cannot run.
fn peer_warnings(m: &Manifest, known: &BTreeSet<&str>, failed: &BTreeSet<&str>, peers: Peers) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let lone = peers == Peers::Lone;
    for d in &m.depends_on {
        if !known.contains(d.value.as_str()) && lone {
            out.push(
                m.source
                    .diagnostic(
                        d.span.clone(),
                        format!(
                            "app `{}` depends on `{}`, which is not here; it starts without waiting for it",
                            m.name, d.value
                        ),
                    )
                    .with_help("run the folder that holds both apps to start them in order")
                    .warning(),
            );
        }
    }
    let ipc = &m.capabilities.ipc;
    for (key, list) in [("send", &ipc.send), ("accept", &ipc.accept)] {
        for n in list.names() {
            let name = n.value.as_str();
            if name == "console" || known.contains(name) {
                continue;
            }
            let why = if failed.contains(name) {
                "which cannot run"
            } else if lone {
                "which is not here"
            } else {
                continue;
            };
            out.push(
                m.source
                    .diagnostic(
                        n.span.clone(),
                        format!("app `{}` grants IPC `{key}` to `{name}`, {why}", m.name),
                    )
                    .with_help("messages to or from it are refused until it runs")
                    .warning(),
            );
        }
    }
    out
}

/// The start order: depth-first topological sort over the apps' dependencies (names
/// visited in sorted order, so the result does not depend on folder order). Dependencies
/// that are not in `apps` (a lone app's) are skipped. A cycle is returned with its members.
fn order(apps: &[Manifest]) -> Result<Vec<String>, (Vec<String>, Diagnostic)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    struct Walk<'a> {
        by_name: BTreeMap<&'a str, &'a Manifest>,
        marks: BTreeMap<&'a str, Mark>,
        stack: Vec<&'a str>,
        order: Vec<String>,
    }
    impl<'a> Walk<'a> {
        fn visit(&mut self, name: &'a str) -> Result<(), (Vec<String>, Diagnostic)> {
            match self.marks.get(name) {
                Some(Mark::Done) => return Ok(()),
                Some(Mark::Visiting) => {
                    let start = self.stack.iter().position(|n| *n == name).unwrap_or(0);
                    let mut cycle: Vec<&str> = self.stack[start..].to_vec();
                    cycle.push(name);
                    let m = self.by_name[name];
                    let d = Diagnostic::file(
                        &m.source.path,
                        format!("dependency cycle: {}", cycle.join(" -> ")),
                        Some("remove one of these `depends_on` entries to break the cycle".into()),
                    );
                    return Err((cycle.iter().map(|s| s.to_string()).collect(), d));
                }
                None => {}
            }
            self.marks.insert(name, Mark::Visiting);
            self.stack.push(name);
            let m = self.by_name[name];
            let mut deps: Vec<&'a str> = m
                .depends_on
                .iter()
                .filter_map(|d| self.by_name.get_key_value(d.value.as_str()).map(|(k, _)| *k))
                .collect();
            deps.sort_unstable();
            for d in deps {
                self.visit(d)?;
            }
            self.stack.pop();
            self.marks.insert(name, Mark::Done);
            self.order.push(name.to_string());
            Ok(())
        }
    }
    let mut w = Walk {
        by_name: apps.iter().map(|m| (m.name.as_str(), m)).collect(),
        marks: BTreeMap::new(),
        stack: Vec::new(),
        order: Vec::new(),
    };
    let names: Vec<&str> = w.by_name.keys().copied().collect();
    for n in names {
        w.visit(n)?;
    }
    Ok(w.order)
}

/// The app folders under `dir`, sorted: `dir` itself if it holds `app.toml`, else each
/// sub-folder that does. One directory listing and one `stat` per sub-folder: start-up time
/// scales with the app count, so this stays lean.
pub fn app_folders(dir: &Path) -> Result<Vec<std::path::PathBuf>, Diagnostic> {
    if dir.join(MANIFEST_FILE).is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let rd = std::fs::read_dir(dir).map_err(|e| {
        Diagnostic::file(
            dir,
            format!("cannot read app directory: {e}"),
            Some("pass a folder of app folders, each holding an `app.toml`".into()),
        )
    })?;
    let mut out: Vec<_> = rd
        .filter_map(|e| e.ok())
        // `file_type` comes from the listing itself (no extra syscall on Linux).
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir() || t.is_symlink()))
        .map(|e| e.path())
        .filter(|p| p.join(MANIFEST_FILE).is_file())
        .collect();
    out.sort();
    if out.is_empty() {
        return Err(Diagnostic::file(
            dir,
            "no apps found",
            Some("each app is a sub-folder holding an `app.toml` manifest and its component".into()),
        ));
    }
    Ok(out)
}

/// Routes are addresses too: an app whose route matches the same requests as an earlier
/// app's (in start-folder order) cannot run, and each clash points at both routes.
fn route_conflicts(apps: Vec<Manifest>, mut rejected: Vec<Rejected>) -> (Vec<Manifest>, Vec<Rejected>) {
    let mut keep: Vec<Manifest> = Vec::new();
    for m in apps {
        let mut problems = Vec::new();
        for r in &m.http.routes {
            let clash = keep.iter().find_map(|k| {
                k.http
                    .routes
                    .iter()
                    .find(|x| x.value.conflicts_with(&r.value))
                    .map(|x| (k, x))
            });
            if let Some((other, x)) = clash {
                let line = crate::diagnostic::line_col(&other.source.text, x.span.start).0;
                problems.push(
                    m.source
                        .diagnostic(
                            r.span.clone(),
                            format!(
                                "route `{}` matches the same requests as app `{}`'s route `{}` ({}:{line})",
                                r.value,
                                other.name,
                                x.value,
                                other.source.path.display()
                            ),
                        )
                        .with_help("give one of the apps another path or a `host`, or remove the route"),
                );
            }
        }
        if problems.is_empty() {
            keep.push(m);
        } else {
            rejected.push(Rejected {
                name: m.name.clone(),
                manifest: m.source.path.clone(),
                problems: Diagnostics(problems),
            });
        }
    }
    (keep, rejected)
}
