//! `vyoma new`, `vyoma build` and `vyoma bindings`: apps from source (the work is in
//! `vyoma-build`), and the `--build` of `run`, `deploy` and `update`.

use std::path::{Path, PathBuf};

use anyhow::bail;
use vyoma_build::{Lang, NewApp, Toolchains};
use vyoma_manifest::Manifest;
use vyoma_supervisor::console::terminal_safe;

use crate::Exit;

#[derive(clap::Args, Debug)]
pub(crate) struct NewArgs {
    /// The app's name (kebab-case), also its folder's.
    name: String,
    /// Its language: rust, c, python or js.
    #[arg(long)]
    lang: Lang,
    /// An app that answers requests over IPC, rather than one that prints and ends.
    #[arg(long)]
    ipc: bool,
    /// The folder to make it in.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

fn toolchains() -> Toolchains {
    Toolchains::find(
        std::env::current_exe().ok().as_deref(),
        Toolchains::default_root().as_deref(),
    )
}

pub(crate) fn new(args: &NewArgs) -> anyhow::Result<Exit> {
    let sdk = vyoma_image::source_tree("apps/vyoma-sdk");
    let files = vyoma_build::new_app(&NewApp {
        parent: &args.dir,
        name: &args.name,
        lang: args.lang,
        ipc: args.ipc,
        rust_sdk: &sdk,
    })?;
    let dir = args.dir.join(&args.name);
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(&dir).ok())
        .map(|f| f.display().to_string())
        .collect();
    let shown = terminal_safe(&dir.display().to_string()).into_owned();
    println!(
        "created {} app `{}` in {shown}: {}",
        args.lang,
        args.name,
        names.join(", ")
    );
    println!("build and run it: vyoma run --build {shown}");
    Ok(Exit::Ok)
}

pub(crate) fn bindings(lang: Lang, dir: &Path) -> anyhow::Result<Exit> {
    let files = vyoma_build::write_bindings(lang, dir)?;
    println!(
        "wrote {} file(s) of {lang} bindings for vyoma:app in {}",
        files.len(),
        terminal_safe(&dir.display().to_string())
    );
    Ok(Exit::Ok)
}

/// `vyoma build PATH`: runs the build of every app in PATH (a folder of app folders, one
/// app folder, or one app.toml), or only of `only`.
pub(crate) fn build(path: &Path, only: Option<&str>) -> anyhow::Result<Exit> {
    let folders = if path.is_file() {
        vec![path.to_path_buf()]
    } else {
        vyoma_manifest::app_folders(path).map_err(|d| anyhow::anyhow!("{d}"))?
    };
    let tools = toolchains();
    let (mut built, mut failed, mut found) = (0, 0, false);
    for folder in folders {
        let m = match Manifest::load(&folder) {
            Ok(m) => m,
            Err(d) => {
                println!("{}", terminal_safe(&d.to_string()));
                failed += 1;
                continue;
            }
        };
        if only.is_some_and(|o| o != m.name) {
            continue;
        }
        found = true;
        match vyoma_build::build_app(&m, &tools, vyoma_build::Echo::Stdout) {
            Ok(Some(r)) => {
                built += 1;
                println!(
                    "built {} in {:.1} s: {} ({})",
                    r.app,
                    r.elapsed.as_secs_f64(),
                    terminal_safe(&r.component.display().to_string()),
                    bytesize::ByteSize::b(r.bytes).display().iec()
                );
            }
            Ok(None) => println!("{}: no [build] in its manifest; its component is used as it is", m.name),
            Err(e) => {
                failed += 1;
                println!("error: {}", terminal_safe(&e.to_string()));
            }
        }
    }
    if let Some(o) = only
        && !found
    {
        bail!(
            "no app named `{}` in {}",
            terminal_safe(o),
            terminal_safe(&path.display().to_string())
        );
    }
    if failed > 0 {
        println!("{failed} app(s) failed to build, {built} built");
        return Ok(Exit::Error);
    }
    Ok(Exit::Ok)
}

/// For `--build`: builds the apps in `path`, and stops with an error if one fails.
pub(crate) fn build_first(path: &Path) -> anyhow::Result<()> {
    match build(path, None)? {
        Exit::Ok => Ok(()),
        _ => bail!("not started: the build failed (above)"),
    }
}
