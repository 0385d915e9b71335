//! A set of apps run together: names unique, dependencies known and acyclic, and a start
//! order in which every app comes after the apps it depends on.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{Diagnostic, Diagnostics, MANIFEST_FILE, Manifest};

/// Validated manifests in start order (dependencies first; otherwise by name).
#[derive(Debug, Clone, Default)]
pub struct AppSet {
    apps: Vec<Manifest>,
}

impl AppSet {
    /// Checks the apps against each other and orders them.
    pub fn new(manifests: Vec<Manifest>) -> Result<AppSet, Diagnostics> {
        let mut problems = Vec::new();
        let mut by_name: BTreeMap<&str, &Manifest> = BTreeMap::new();
        for m in &manifests {
            if let Some(first) = by_name.get(m.name.as_str()) {
                problems.push(Diagnostic::file(
                    &m.source.path,
                    format!(
                        "app name `{}` is already used by {}",
                        m.name,
                        first.source.path.display()
                    ),
                    Some("app names are addresses and must be unique: rename one of the apps".into()),
                ));
            } else {
                by_name.insert(&m.name, m);
            }
        }
        for m in &manifests {
            for d in &m.depends_on {
                if !by_name.contains_key(d.value.as_str()) {
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
            let ipc = &m.capabilities.ipc;
            for (key, list) in [("send", &ipc.send), ("accept", &ipc.accept)] {
                for n in list.names() {
                    if n.value != "console" && !by_name.contains_key(n.value.as_str()) {
                        problems.push(
                            m.source
                                .diagnostic(
                                    n.span.clone(),
                                    format!("app `{}` grants IPC `{key}` to unknown app `{}`", m.name, n.value),
                                )
                                .with_help(format!(
                                    "add that app to the set, or remove it from `{key}` in `[capabilities.ipc]`"
                                )),
                        );
                    }
                }
            }
        }
        if !problems.is_empty() {
            return Err(Diagnostics(problems));
        }

        // Depth-first topological sort; names visited in sorted order so the result is
        // deterministic whatever order the folders were listed in.
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        fn visit<'a>(
            name: &'a str,
            by_name: &BTreeMap<&'a str, &'a Manifest>,
            marks: &mut BTreeMap<&'a str, Mark>,
            stack: &mut Vec<&'a str>,
            order: &mut Vec<&'a str>,
        ) -> Result<(), Diagnostic> {
            match marks.get(name) {
                Some(Mark::Done) => return Ok(()),
                Some(Mark::Visiting) => {
                    let start = stack.iter().position(|n| *n == name).unwrap_or(0);
                    let mut cycle: Vec<&str> = stack[start..].to_vec();
                    cycle.push(name);
                    let m = by_name[name];
                    return Err(Diagnostic::file(
                        &m.source.path,
                        format!("dependency cycle: {}", cycle.join(" -> ")),
                        Some("remove one of these `depends_on` entries to break the cycle".into()),
                    ));
                }
                None => {}
            }
            marks.insert(name, Mark::Visiting);
            stack.push(name);
            let m = by_name[name];
            let mut deps: Vec<&str> = m.depends_on.iter().map(|d| d.value.as_str()).collect();
            deps.sort_unstable();
            for d in deps {
                let key = by_name.get_key_value(d).map(|(k, _)| *k).unwrap_or(d);
                visit(key, by_name, marks, stack, order)?;
            }
            stack.pop();
            marks.insert(name, Mark::Done);
            order.push(name);
            Ok(())
        }
        let mut marks = BTreeMap::new();
        let mut order = Vec::new();
        for name in by_name.keys() {
            visit(name, &by_name, &mut marks, &mut Vec::new(), &mut order).map_err(Diagnostics::from)?;
        }
        let rank: BTreeMap<String, usize> = order.iter().enumerate().map(|(i, n)| (n.to_string(), i)).collect();
        let mut manifests = manifests;
        manifests.sort_by_cached_key(|m| rank[m.name.as_str()]);
        Ok(AppSet { apps: manifests })
    }

    /// Loads every app folder (a sub-folder holding `app.toml`) directly inside `dir`, or
    /// `dir` itself if it is an app folder. Collects every problem from every manifest.
    pub fn load_dir(dir: &Path) -> Result<AppSet, Diagnostics> {
        let folders = app_folders(dir).map_err(Diagnostics::from)?;
        AppSet::load_folders(&folders)
    }

    /// Loads the given app folders (as listed by [`app_folders`]).
    fn load_folders(folders: &[std::path::PathBuf]) -> Result<AppSet, Diagnostics> {
        let mut manifests = Vec::new();
        let mut problems = Vec::new();
        for f in folders {
            match Manifest::load_file(&f.join(MANIFEST_FILE)) {
                Ok(m) => manifests.push(m),
                Err(d) => problems.extend(d.0),
            }
        }
        if !problems.is_empty() {
            return Err(Diagnostics(problems));
        }
        AppSet::new(manifests)
    }

    /// The apps in start order.
    pub fn apps(&self) -> &[Manifest] {
        &self.apps
    }

    /// Consumes the set, giving the apps in start order.
    pub fn into_apps(self) -> Vec<Manifest> {
        self.apps
    }
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
