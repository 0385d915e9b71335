//! Deploying apps into a running instance and removing them: a deployed app reaches and is
//! reached by the others, is kept across restarts once it passes probation, and is
//! forgotten if its first version fails; refusals change nothing; a removed app (deployed
//! or factory) stays removed across restarts; data folders survive restarts, updates,
//! rollbacks, restarts of the instance and removal, until purged. Real components, a real
//! store on disk.

use std::path::Path;

use vyoma_control::{UpdateOptions, UpdateSource};
use vyoma_lifecycle::AppState;
use vyoma_runtime::RuntimeConfig;
use vyoma_supervisor::{Supervisor, SupervisorError, UpdateError};
use vyoma_testkit::wasm;

use crate::common::{log_text, wait, wait_log};
use crate::update::{refused, version_dir, with_store};

fn folder(dir: std::path::PathBuf) -> UpdateSource {
    UpdateSource::Folder(dir)
}

async fn restart(sup: Supervisor, root: &Path, store: &Path) -> Supervisor {
    sup.shutdown().await;
    drop(sup);
    with_store(root, store, RuntimeConfig::default()).await
}

fn names(sup: &Supervisor) -> Vec<String> {
    sup.status().into_iter().map(|r| r.name).collect()
}

/// `tally` never reads its stop request: a short stop timeout keeps the tests quick.
const PEER: &str = "args = [\"tally\"]\n[lifecycle]\nstop_timeout = \"100ms\"\n[update]\nprobation = \"1s\"\n[capabilities.ipc]\naccept = [\"*\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_app_joins_the_set_stays_across_restarts_and_a_removed_one_stays_away() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("apps");
    let store = tmp.path().join("store");
    version_dir(&root.join("peer"), "peer", "0.1.0", PEER);
    let sup = with_store(&root, &store, RuntimeConfig::default()).await;
    wait(&sup, "peer", AppState::Running).await;
    let new = version_dir(
        &tmp.path().join("new"),
        "new",
        "0.1.0",
        "args = [\"send:peer:hello\", \"tally\"]\ndepends_on = [\"peer\"]\n[lifecycle]\nstop_timeout = \"100ms\"\n[capabilities.ipc]\nsend = [\"peer\"]\n[update]\nprobation = \"0s\"\n",
    );
    // A dry run checks and changes nothing.
    let dry = sup
        .deploy(
            folder(new.clone()),
            UpdateOptions {
                dry_run: true,
                ..UpdateOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(dry.dry_run && dry.version.id.is_none());
    assert_eq!(dry.depends_on, ["peer"]);
    assert_eq!(names(&sup), ["peer"]);
    let r = sup.deploy(folder(new.clone()), UpdateOptions::default()).await.unwrap();
    assert_eq!(
        (r.app.as_str(), r.version.id, r.version.version.as_str()),
        ("new", Some(1), "0.1.0")
    );
    wait(&sup, "new", AppState::Running).await;
    wait_log(&sup, "peer", "got new hello").await;
    assert_eq!(names(&sup), ["new", "peer"]);
    let answer = sup
        .request_from_console("new", b"health".to_vec(), std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(answer.as_deref(), Some(&b"ok"[..]));

    // Refusals leave everything as it was.
    let (e, text) = refused(sup.deploy(folder(new.clone()), UpdateOptions::default()).await);
    assert!(matches!(e, UpdateError::Exists(_)), "{text}");
    assert!(text.contains("`new` is already an app of this instance"), "{text}");
    let orphan = version_dir(
        &tmp.path().join("orphan"),
        "orphan",
        "0.1.0",
        "args = [\"tally\"]\ndepends_on = [\"ghost\"]\n",
    );
    let (e, text) = refused(sup.deploy(folder(orphan), UpdateOptions::default()).await);
    assert!(matches!(e, UpdateError::Manifest { .. }), "{text}");
    assert!(text.contains("ghost"), "{text}");
    let junk = tmp.path().join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("junk.wasm"), b"\0asm\x0d\0\x01\0not a component").unwrap();
    std::fs::write(
        junk.join("app.toml"),
        "manifest_version = 1\n[app]\nname = \"junk\"\nversion = \"0.1.0\"\ncomponent = \"junk.wasm\"\n",
    )
    .unwrap();
    let (e, text) = refused(sup.deploy(folder(junk), UpdateOptions::default()).await);
    assert!(matches!(e, UpdateError::Component { .. }), "{text}");
    assert_eq!(names(&sup), ["new", "peer"]);
    // More memory than the instance's apps share (a small instance beside this one).
    let small = tmp.path().join("small");
    version_dir(
        &small.join("small"),
        "small",
        "0.1.0",
        "args = [\"tally\"]\n[lifecycle]\nstop_timeout = \"100ms\"\n[limits]\nmemory = \"16 MiB\"\n",
    );
    let tight = with_store(
        &small,
        &tmp.path().join("tight-store"),
        RuntimeConfig {
            memory_budget: Some(256 << 20),
            ..RuntimeConfig::default()
        },
    )
    .await;
    let greedy = version_dir(
        &tmp.path().join("greedy"),
        "greedy",
        "0.1.0",
        "args = [\"tally\"]\n[limits]\nmemory = \"1 GiB\"\n",
    );
    let (e, text) = refused(tight.deploy(folder(greedy), UpdateOptions::default()).await);
    assert!(matches!(e, UpdateError::Memory { .. }), "{text}");
    assert_eq!(names(&tight), ["small"]);
    tight.shutdown().await;

    // Kept across a restart, once it passed probation.
    let deadline = tokio::time::Instant::now() + crate::common::LONG;
    while sup.versions("new").unwrap().versions.first().map(|v| v.status) != Some(vyoma_control::VersionStatus::Current)
    {
        assert!(tokio::time::Instant::now() < deadline, "never committed");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let sup = restart(sup, &root, &store).await;
    wait(&sup, "new", AppState::Running).await;
    wait_log(&sup, "peer", "got new hello").await;
    let v = sup.versions("new").unwrap();
    assert_eq!(v.versions.len(), 1);
    assert_eq!((v.versions[0].id, v.versions[0].origin.as_str()), (Some(1), "deployed"));

    // The factory app cannot go while the new one depends on it.
    let (e, text) = refused(sup.remove("peer", false).await);
    assert!(matches!(e, UpdateError::Needed { .. }), "{text}");
    assert!(text.contains("`new` depends on it"), "{text}");
    // Messages waiting for a removed app are dropped, counted; it is gone at once.
    sup.stop("new").unwrap();
    wait(&sup, "new", AppState::Stopped).await;
    for _ in 0..3 {
        sup.send_from_console("new", b"x".to_vec()).unwrap();
    }
    let r = sup.remove("new", false).await.unwrap();
    assert_eq!((r.dropped_messages, r.persistent, r.factory), (3, true, false));
    assert_eq!(names(&sup), ["peer"]);
    assert!(matches!(
        sup.send_from_console("new", b"x".to_vec()),
        Err(SupervisorError::UnknownApp(_))
    ));
    let r = sup.remove("peer", false).await.unwrap();
    assert!(r.factory && r.persistent);
    assert!(names(&sup).is_empty());

    // Both stay away after a restart; the factory one comes back when deployed again.
    let sup = restart(sup, &root, &store).await;
    assert!(names(&sup).is_empty(), "{:?}", names(&sup));
    let r = sup
        .deploy(folder(root.join("peer")), UpdateOptions::default())
        .await
        .unwrap();
    assert_eq!(r.version.id, Some(1));
    wait(&sup, "peer", AppState::Running).await;
    wait_log(&sup, "peer", "passed its probation").await;
    let sup = restart(sup, &root, &store).await;
    wait(&sup, "peer", AppState::Running).await;
    assert_eq!(names(&sup), ["peer"]);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_version_that_fails_probation_is_stopped_and_forgotten_and_a_trial_never_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("apps");
    let store = tmp.path().join("store");
    version_dir(&root.join("peer"), "peer", "0.1.0", PEER);
    let sup = with_store(&root, &store, RuntimeConfig::default()).await;
    let bad = version_dir(
        &tmp.path().join("bad"),
        "app",
        "0.1.0",
        "args = [\"sleep:200\", \"crash\"]\n[restart]\npolicy = \"always\"\n[update]\nprobation = \"10s\"\n",
    );
    let r = sup.deploy(folder(bad), UpdateOptions::default()).await.unwrap();
    wait_log(&sup, "app", "version 1 turned down").await;
    let state = sup.detail("app").unwrap().status.state;
    assert!(
        !state.is_live(),
        "a turned-down first version is not restarted: {state}"
    );
    assert!(log_text(&sup, "app").contains("not kept"));
    assert!(sup.versions("app").unwrap().versions.is_empty());
    assert_eq!(r.version.id, Some(1));
    // A fixed version takes its place.
    let good = version_dir(
        &tmp.path().join("good"),
        "app",
        "0.2.0",
        "args = [\"tally\"]\n[lifecycle]\nstop_timeout = \"100ms\"\n[update]\nprobation = \"60s\"\n",
    );
    let r = sup.deploy(folder(good), UpdateOptions::default()).await.unwrap();
    assert!(r.replaces.unwrap().contains("turned down"));
    assert_eq!(r.version.id, Some(1), "the store forgot the turned-down version");
    wait(&sup, "app", AppState::Running).await;
    // Still on probation when the instance stops: it does not come back.
    let sup = restart(sup, &root, &store).await;
    assert_eq!(names(&sup), ["peer"]);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_folder_outlives_restarts_updates_rollbacks_reboots_and_removal_until_purged() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("apps");
    let store = tmp.path().join("store");
    let files = |dir: &Path, version: &str| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("app.toml"),
            format!(
                "manifest_version = 1\n[app]\nname = \"files\"\nversion = \"{version}\"\ncomponent = \"{}\"\n[restart]\npolicy = \"never\"\n[capabilities]\ndata = true\n[update]\nprobation = \"0s\"\n",
                wasm("files").display()
            ),
        )
        .unwrap();
        dir.to_path_buf()
    };
    const SEEN: &str = "files: /data/written-by-app.txt (2 bytes): hi";
    let runs = |sup: &Supervisor| log_text(sup, "files").matches(SEEN).count();
    files(&root.join("files"), "0.1.0");
    let sup = with_store(&root, &store, RuntimeConfig::default()).await;
    wait(&sup, "files", AppState::Exited).await;
    assert!(log_text(&sup, "files").contains("wrote /data/written-by-app.txt"));
    assert_eq!(runs(&sup), 0, "a new data folder is empty");
    let data = sup
        .detail("files")
        .unwrap()
        .manifest
        .capabilities
        .data_dir()
        .unwrap()
        .host
        .value
        .clone();
    assert!(data.starts_with(&store), "{} is not in the store", data.display());
    // A restart of the app.
    sup.apply("files", vyoma_lifecycle::Event::Start).unwrap();
    wait_log(&sup, "files", SEEN).await;
    // An update, then a rollback.
    let r = sup
        .update(
            "files",
            folder(files(&tmp.path().join("v2"), "0.2.0")),
            UpdateOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(r.to.version, "0.2.0");
    let deadline = tokio::time::Instant::now() + crate::common::LONG;
    while runs(&sup) < 2 {
        assert!(tokio::time::Instant::now() < deadline, "{}", log_text(&sup, "files"));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    wait_log(&sup, "files", "passed its probation").await;
    sup.rollback("files").await.unwrap();
    while runs(&sup) < 3 {
        assert!(tokio::time::Instant::now() < deadline, "{}", log_text(&sup, "files"));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // A restart of the instance.
    let sup = restart(sup, &root, &store).await;
    wait_log(&sup, "files", SEEN).await;
    // (Ended, not killed while writing its file.)
    wait(&sup, "files", AppState::Exited).await;
    // Removed, then deployed again: the folder was kept.
    let r = sup.remove("files", false).await.unwrap();
    assert_eq!(r.kept_data.as_deref(), Some(data.to_str().unwrap()));
    sup.deploy(folder(root.join("files")), UpdateOptions::default())
        .await
        .unwrap();
    wait_log(&sup, "files", SEEN).await;
    wait(&sup, "files", AppState::Exited).await;
    // Purged: gone for good.
    let r = sup.remove("files", true).await.unwrap();
    assert_eq!(r.purged, Some(2));
    assert!(!data.exists());
    sup.deploy(folder(root.join("files")), UpdateOptions::default())
        .await
        .unwrap();
    wait(&sup, "files", AppState::Exited).await;
    assert_eq!(runs(&sup), 0, "{}", log_text(&sup, "files"));
    sup.shutdown().await;
    drop(sup);

    // Without a store there is nowhere to keep it: the app is refused with why.
    let plain = crate::common::supervisor(&root, 8).await;
    wait(&plain, "files", AppState::Failed).await;
    let why = plain.detail("files").unwrap().status.last_exit.unwrap().to_string();
    assert!(why.contains("keeps no app store"), "{why}");
    plain.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_precompiled_factory_version_is_rolled_back_to_from_the_images_own_files() {
    // As in the image: the factory app's component is an artifact in the trusted folder,
    // which is the only place precompiled code is loaded from. Its first update keeps it
    // in the store; going back to it must load it from there, not from the store.
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    let source = wasm("ipc-probe");
    let bytes = std::fs::read(&source).unwrap();
    let artifact = vyoma_runtime::precompile_for_image(&bytes, &source).unwrap();
    let file = lib.join(vyoma_runtime::image_artifact_name("ipc-probe", &artifact));
    std::fs::write(&file, &artifact).unwrap();
    let root = tmp.path().join("apps");
    std::fs::create_dir_all(root.join("app")).unwrap();
    std::fs::write(
        root.join("app/app.toml"),
        format!(
            "manifest_version = 1\n[app]\nname = \"app\"\nversion = \"0.1.0\"\ncomponent = \"{}\"\nargs = [\"tally\"]\n[lifecycle]\nstop_timeout = \"100ms\"\n",
            file.display()
        ),
    )
    .unwrap();
    let config = RuntimeConfig {
        trusted_artifacts: Some(lib.clone()),
        ..RuntimeConfig::default()
    };
    let store = tmp.path().join("store");
    let sup = with_store(&root, &store, config.clone()).await;
    wait(&sup, "app", AppState::Running).await;
    let v2 = version_dir(
        &tmp.path().join("v2"),
        "app",
        "0.2.0",
        "args = [\"tally\"]\n[lifecycle]\nstop_timeout = \"100ms\"\n[update]\nprobation = \"0s\"\n",
    );
    sup.update("app", folder(v2), UpdateOptions::default()).await.unwrap();
    wait_log(&sup, "app", "passed its probation").await;
    // After a restart too, where nothing of the factory version is in memory.
    sup.shutdown().await;
    drop(sup);
    let sup = with_store(&root, &store, config).await;
    wait(&sup, "app", AppState::Running).await;
    assert_eq!(sup.detail("app").unwrap().manifest.version.to_string(), "0.2.0");
    let r = sup.rollback("app").await.unwrap();
    assert_eq!(r.to.unwrap().version, "0.1.0");
    wait(&sup, "app", AppState::Running).await;
    let d = sup.detail("app").unwrap();
    assert_eq!(d.manifest.component.value, file, "not loaded from the trusted folder");
    sup.shutdown().await;
}
