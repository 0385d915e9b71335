//! `vyoma check`: every manifest and component problem, with file, line and column,
//! without running anything.

use std::path::Path;

use vyoma_manifest::{AppSet, Manifest};
use vyoma_runtime::{Runtime, RuntimeConfig};
use vyoma_supervisor::app_problems;
use vyoma_supervisor::console::terminal_safe;

use crate::Exit;

pub(crate) fn check(path: &Path, config: &RuntimeConfig) -> anyhow::Result<Exit> {
    let set = if path.is_file() {
        Manifest::load(path).and_then(AppSet::lone)
    } else {
        AppSet::load_dir(path)
    };
    let set = match set {
        Ok(s) => s,
        Err(d) => {
            println!("{}", terminal_safe(&d.to_string()));
            println!("{} problem(s) found", d.len());
            return Ok(Exit::InvalidApps);
        }
    };
    for w in set.warnings() {
        println!("{}", terminal_safe(&w.to_string()));
    }
    // The engine `vyoma run` would make for these apps, so what is compiled here is cached
    // for it.
    let runtime = Runtime::new(&RuntimeConfig {
        capacity: 16,
        memory_images: vyoma_supervisor::memory_images(config, set.apps()),
        ..config.clone()
    })?;
    let mut problems = 0;
    for m in set.apps() {
        // A missing component is reported by `check_paths`; only load what exists.
        let loaded = m.component.value.is_file().then(|| runtime.load(&m.component.value));
        if let Some(Ok(c)) = &loaded
            && c.fits(m).is_ok()
        {
            let kind = if c.is_http() {
                format!(", an HTTP handler with {} route(s)", m.http.routes.len())
            } else {
                String::new()
            };
            println!(
                "ok: {} {} ({}, {} imports{kind})",
                m.name,
                m.version,
                terminal_safe(&m.component.value.display().to_string()),
                c.info.imports.len()
            );
        }
        let load_error = match loaded {
            Some(Ok(c)) => c.fits(m).err(),
            Some(Err(e)) => Some(e.to_string()),
            None => None,
        };
        for d in app_problems(m, load_error.as_deref())
            .into_iter()
            .chain(runtime.grant_problems(m))
        {
            println!("{}", terminal_safe(&d.to_string()));
            problems += 1;
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
