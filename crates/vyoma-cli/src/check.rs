//! `vyoma check`: every manifest and component problem, with file, line and column,
//! without running anything.

use std::path::Path;

use vyoma_manifest::{AppSet, Manifest};
use vyoma_runtime::{Runtime, RuntimeConfig};

use crate::Exit;

pub(crate) fn check(path: &Path, config: &RuntimeConfig) -> anyhow::Result<Exit> {
    let set = if path.is_file() {
        Manifest::load(path).and_then(|m| AppSet::new(vec![m]))
    } else {
        AppSet::load_dir(path)
    };
    let set = match set {
        Ok(s) => s,
        Err(d) => {
            println!("{d}");
            println!("{} problem(s) found", d.len());
            return Ok(Exit::InvalidApps);
        }
    };
    let mut problems = 0;
    let mut missing = false;
    for m in set.apps() {
        for d in m.check_paths() {
            println!("{d}");
            problems += 1;
            missing = true;
        }
    }
    let runtime = Runtime::new(&RuntimeConfig {
        capacity: 16,
        ..config.clone()
    })?;
    for m in set.apps() {
        if missing && !m.component.value.is_file() {
            continue;
        }
        match runtime.load(&m.component.value) {
            Ok(c) => println!(
                "ok: {} {} ({}, {} imports)",
                m.name,
                m.version,
                m.component.value.display(),
                c.info.imports.len()
            ),
            Err(e) => {
                let d = m
                    .source
                    .diagnostic(m.component.span.clone(), format!("app `{}`: {e}", m.name));
                println!("{d}");
                problems += 1;
            }
        }
    }
    if problems > 0 {
        println!("{problems} problem(s) found");
        Ok(Exit::InvalidApps)
    } else {
        println!("checked {} app(s): no problems", set.apps().len());
        Ok(Exit::Ok)
    }
}
