//! Putting apps into the image: every app folder of DIR goes to `/apps/NAME/`, with its
//! manifest's `component` pointed at its component precompiled for the image's supervisor.
//! Each distinct component is compiled and stored once, in `/lib/vyoma/STEM-XXH3-SHA256.cwasm`
//! (the artifact's XXH3-128, which the image's supervisor checks its bytes against before
//! loading, and its own SHA-256, its identity):
//! many apps running one component share one file, which the supervisor then loads once.
//! Everything else in the folder (granted data, stdin files) is copied as is, so the
//! manifest's relative paths keep working.

use std::path::{Path, PathBuf};

use vyoma_manifest::{AppSet, Diagnostic, Diagnostics, Manifest};

use crate::initramfs::{Node, Tree};
use crate::{ARTIFACTS, ImageError};

/// One app as it went into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedApp {
    /// Its name.
    pub name: String,
    /// Size of its `.wasm` component.
    pub wasm_size: u64,
    /// Size of the precompiled artifact in the image.
    pub artifact_size: u64,
    /// Its path in the image, possibly shared with other apps.
    pub artifact: String,
    /// Size of the other files of its folder.
    pub data_size: u64,
}

/// The manifest text with `component` replaced by `artifact` (a path in the image).
pub fn point_at_artifact(m: &Manifest, artifact: &str) -> String {
    let mut text = m.source.text.clone();
    let quoted = format!("\"{}\"", artifact.replace('\\', "\\\\").replace('"', "\\\""));
    text.replace_range(m.component.span.clone(), &quoted);
    text
}

/// Files the image cannot carry: grants that point outside the app's folder.
fn outside_folder(m: &Manifest) -> Vec<Diagnostic> {
    let folder = m.source.dir();
    let inside = |p: &Path| {
        p.canonicalize()
            .ok()
            .zip(folder.canonicalize().ok())
            .is_some_and(|(p, f)| p.starts_with(f))
    };
    let mut out = Vec::new();
    let help = "an image carries only the files inside each app's folder: move it there and use a relative path";
    for d in &m.capabilities.dirs {
        if !inside(&d.host.value) {
            out.push(
                m.source
                    .diagnostic(
                        d.host.span.clone(),
                        format!(
                            "granted directory `{}` is outside the app's folder",
                            d.host.value.display()
                        ),
                    )
                    .with_help(help),
            );
        }
    }
    if let Some(s) = &m.capabilities.stdin
        && !inside(&s.value)
    {
        out.push(
            m.source
                .diagnostic(
                    s.span.clone(),
                    format!("stdin file `{}` is outside the app's folder", s.value.display()),
                )
                .with_help(help),
        );
    }
    out
}

/// Every file under `dir` (an app folder), recursively, sorted. Symbolic links are
/// followed only while they stay inside the folder: a link that leaves it (which would
/// copy a host file, say a private key, into the image) or that loops is an error naming
/// the link.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let root = dir
        .canonicalize()
        .map_err(|e| ImageError::io(format!("reading {}", dir.display()), e))?;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| ImageError::io(format!("reading {}", d.display()), e))?;
        for e in entries {
            let p = e
                .map_err(|e| ImageError::io(format!("reading {}", d.display()), e))?
                .path();
            let meta =
                std::fs::symlink_metadata(&p).map_err(|e| ImageError::io(format!("reading {}", p.display()), e))?;
            let link = meta.file_type().is_symlink();
            let target = if link {
                let t = p.canonicalize().map_err(|e| ImageError::Link {
                    link: p.clone(),
                    problem: format!("it cannot be followed ({e})"),
                })?;
                if !t.starts_with(&root) {
                    return Err(ImageError::Link {
                        link: p.clone(),
                        problem: format!("it points to {}, outside the app's folder", t.display()),
                    });
                }
                t
            } else {
                p.clone()
            };
            if target.is_dir() {
                // A link to a folder that contains the link itself would be copied forever.
                if link && d.canonicalize().is_ok_and(|here| here.starts_with(&target)) {
                    return Err(ImageError::Link {
                        link: p,
                        problem: format!("it points to {}, a folder that contains it (a loop)", target.display()),
                    });
                }
                todo.push(p);
            } else if target.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Validates the apps in `dir` as a set, precompiles each component and adds every app's
/// folder to `tree` under `apps/`. Any problem (invalid manifest, missing file, a file the
/// image cannot carry, a component that does not compile) fails the whole build, each
/// with file, line and column.
pub fn stage_apps(dir: &Path, tree: &mut Tree) -> Result<Vec<StagedApp>, ImageError> {
    let set = AppSet::load_dir(dir).map_err(ImageError::Apps)?;
    let mut problems = Vec::new();
    for m in set.apps() {
        problems.extend(m.check_paths());
        problems.extend(outside_folder(m));
    }
    if !problems.is_empty() {
        return Err(ImageError::Apps(Diagnostics(problems)));
    }
    let mut staged = Vec::new();
    // Many apps often run one component: compile each distinct one once.
    let mut compiled: std::collections::HashMap<String, (String, u64)> = std::collections::HashMap::new();
    for m in set.apps() {
        let folder = m.source.dir().to_path_buf();
        let folder_name = folder
            .canonicalize()
            .ok()
            .and_then(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| m.name.clone());
        let base = format!("apps/{folder_name}");
        let component = &m.component.value;
        let wasm =
            std::fs::read(component).map_err(|e| ImageError::io(format!("reading {}", component.display()), e))?;
        let sha = vyoma_runtime::sha256_hex(&wasm);
        let stem = component
            .file_stem()
            .map_or_else(|| m.name.clone(), |s| s.to_string_lossy().into_owned());
        let (artifact_path, artifact_size) = match compiled.get(&sha) {
            Some(known) => known.clone(),
            None => {
                let a = vyoma_runtime::precompile_for_image(&wasm, component).map_err(|e| {
                    ImageError::Apps(Diagnostics(vec![
                        m.source.diagnostic(m.component.span.clone(), e.to_string()),
                    ]))
                })?;
                // The name records the artifact's own SHA-256; the image's supervisor
                // checks it before loading the machine code.
                let path = format!("{ARTIFACTS}/{}", vyoma_runtime::image_artifact_name(&stem, &a));
                let size = a.len() as u64;
                tree.add(&path, Node::File { mode: 0o644, data: a });
                compiled.insert(sha, (path.clone(), size));
                (path, size)
            }
        };
        let mut data_size = 0;
        let component_canon = component.canonicalize().ok();
        for f in files_under(&folder)? {
            let rel = f.strip_prefix(&folder).unwrap_or(&f).to_string_lossy().into_owned();
            if f.canonicalize().ok() == component_canon || rel == vyoma_manifest::MANIFEST_FILE {
                continue;
            }
            let meta = std::fs::metadata(&f).map_err(|e| ImageError::io(format!("reading {}", f.display()), e))?;
            let data = std::fs::read(&f).map_err(|e| ImageError::io(format!("reading {}", f.display()), e))?;
            use std::os::unix::fs::PermissionsExt;
            data_size += data.len() as u64;
            tree.add(
                &format!("{base}/{rel}"),
                Node::File {
                    mode: meta.permissions().mode() & 0o777,
                    data,
                },
            );
        }
        tree.add(
            &format!("{base}/{}", vyoma_manifest::MANIFEST_FILE),
            Node::File {
                mode: 0o644,
                data: point_at_artifact(m, &artifact_path).into_bytes(),
            },
        );
        staged.push(StagedApp {
            name: m.name.clone(),
            wasm_size: wasm.len() as u64,
            artifact_size,
            artifact: artifact_path,
            data_size,
        });
    }
    Ok(staged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_is_pointed_at_the_artifact_and_stays_valid() {
        let text = "manifest_version = 1\n[app]\nname = \"echo\"\nversion = \"0.1.0\"\ncomponent = \"build/echo.wasm\" # the app\nargs = [\"x\"]\n";
        let m = Manifest::parse(text, "/apps/echo/app.toml").unwrap();
        let out = point_at_artifact(&m, "/lib/vyoma/echo-0123.cwasm");
        assert_eq!(
            out,
            text.replace("\"build/echo.wasm\"", "\"/lib/vyoma/echo-0123.cwasm\"")
        );
        let again = Manifest::parse(&out, "/apps/echo/app.toml").unwrap();
        assert_eq!(again.component.value, Path::new("/lib/vyoma/echo-0123.cwasm"));
        assert_eq!(again.args, ["x"]);
    }

    #[test]
    fn apps_are_staged_with_their_data_and_bad_ones_named() {
        let d = tempfile::tempdir().unwrap();
        let dir = vyoma_testkit::write_app(
            d.path(),
            "files",
            "hello",
            "[[capabilities.dirs]]\nhost = \"data\"\nguest = \"/data\"\n",
        );
        std::fs::create_dir_all(dir.join("data/sub")).unwrap();
        std::fs::write(dir.join("data/sub/note.txt"), b"hi").unwrap();
        let mut tree = Tree::base();
        let staged = stage_apps(d.path(), &mut tree).unwrap();
        assert_eq!(staged.len(), 1);
        assert_eq!(staged[0].data_size, 2);
        assert!(staged[0].artifact_size > staged[0].wasm_size / 2);
        assert!(matches!(tree.get("apps/files/data/sub/note.txt"), Some(Node::File { data, .. }) if data == b"hi"));
        let artifact = &staged[0].artifact;
        assert!(
            artifact.starts_with("/lib/vyoma/hello-")
                && artifact.ends_with(".cwasm")
                && artifact.len() == 11 + 6 + 64 + 1 + 32 + 6,
            "{artifact}"
        );
        assert!(tree.get(&artifact[1..]).is_some());
        let Some(Node::File { data, .. }) = tree.get("apps/files/app.toml") else {
            panic!("no manifest");
        };
        assert!(String::from_utf8_lossy(data).contains(&format!("component = \"{artifact}\"")));

        // Two apps running one component share one artifact.
        vyoma_testkit::write_app(d.path(), "twin", "hello", "");
        let mut tree = Tree::base();
        let staged = stage_apps(d.path(), &mut tree).unwrap();
        assert_eq!(staged[0].artifact, staged[1].artifact);
        assert_eq!(tree.paths().filter(|p| p.ends_with(".cwasm")).count(), 1);

        // A grant outside the folder cannot be carried.
        let d2 = tempfile::tempdir().unwrap();
        vyoma_testkit::write_app(
            d2.path(),
            "leaky",
            "hello",
            &format!(
                "[[capabilities.dirs]]\nhost = \"{}\"\nguest = \"/data\"\n",
                d.path().display()
            ),
        );
        let e = stage_apps(d2.path(), &mut Tree::base()).unwrap_err().to_string();
        assert!(e.contains("is outside the app's folder"), "{e}");
    }

    #[test]
    fn links_out_of_an_app_folder_and_loops_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let dir = vyoma_testkit::write_app(d.path(), "linky", "hello", "");
        std::fs::create_dir_all(dir.join("data/v2")).unwrap();
        std::fs::write(dir.join("data/v2/a.txt"), b"a").unwrap();
        // A link inside the folder is followed: its file is carried.
        std::os::unix::fs::symlink("v2", dir.join("data/latest")).unwrap();
        let mut tree = Tree::base();
        stage_apps(d.path(), &mut tree).unwrap();
        assert!(tree.get("apps/linky/data/latest/a.txt").is_some());
        assert!(tree.get("apps/linky/data/v2/a.txt").is_some());

        // A link to a host secret is not copied into the image.
        let secret = d.path().join("id_ed25519");
        std::fs::write(&secret, b"PRIVATE KEY").unwrap();
        std::os::unix::fs::symlink(&secret, dir.join("data/key")).unwrap();
        let e = stage_apps(d.path(), &mut Tree::base()).unwrap_err().to_string();
        assert!(
            e.contains("data/key") && e.contains("outside the app's folder") && e.contains("id_ed25519"),
            "{e}"
        );
        std::fs::remove_file(dir.join("data/key")).unwrap();

        // A relative link that climbs out is refused the same way.
        std::os::unix::fs::symlink("../../id_ed25519", dir.join("data/sneaky")).unwrap();
        let e = stage_apps(d.path(), &mut Tree::base()).unwrap_err().to_string();
        assert!(
            e.contains("data/sneaky") && e.contains("outside the app's folder"),
            "{e}"
        );
        std::fs::remove_file(dir.join("data/sneaky")).unwrap();

        // A loop is an error, not an endless copy.
        std::os::unix::fs::symlink(".", dir.join("data/v2/again")).unwrap();
        let e = stage_apps(d.path(), &mut Tree::base()).unwrap_err().to_string();
        assert!(e.contains("data/v2/again") && e.contains("a loop"), "{e}");
    }
}
