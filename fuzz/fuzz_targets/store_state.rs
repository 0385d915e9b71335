//! Any `state.json` (the app store's record, read from a disk that may be damaged):
//! reading never panics; what reads back writes back the same; and every change on it
//! (propose, commit, reject, rollback, remove) either applies or is refused, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vyoma_store::{Digest, NewVersion, Origin, State};

fuzz_target!(|data: &[u8]| {
    let Ok(state) = serde_json::from_slice::<State>(data) else {
        return;
    };
    let text = serde_json::to_vec(&state).unwrap();
    assert_eq!(serde_json::from_slice::<State>(&text).unwrap(), state);
    let apps: Vec<String> = state.apps.keys().cloned().collect();
    for app in apps {
        let mut s = state.clone();
        let trial = s.app(&app).and_then(|r| r.trial.as_ref()).map(|t| t.id);
        if let Some(id) = trial {
            let _ = s.clone().commit(&app, id);
            let _ = s.clone().reject(&app, id, "fuzz", 0);
        }
        let _ = s.clone().rollback(&app, "fuzz", 0);
        let (v, _) = s.propose(
            &app,
            NewVersion {
                version: "1.0.0".into(),
                manifest: Digest::of(b"m"),
                component: Digest::of(b"c"),
                size: 1,
                added: 0,
                origin: Origin::Deployed,
            },
        );
        s.commit(&app, v.id).unwrap();
        let _ = s.referenced();
        s.remove(&app).unwrap();
    }
});
