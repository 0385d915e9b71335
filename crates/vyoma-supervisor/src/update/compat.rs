//! Whether a new version of an app keeps what the other apps rely on, and what changes
//! between two versions, in words. Pure: manifests and interface lists in, sentences out.
//!
//! What other apps rely on, and so what an update must keep (unless forced):
//! - apps that may send to it (their `send` grant names it): that it still reads IPC
//!   (imports `vyoma:app/ipc`) and still accepts each of them;
//! - apps that may call it over HTTP (`http://NAME.vyoma.internal` in their outbound
//!   rules): that it is still an HTTP handler and still accepts each of them;
//! - every interface its component exported.

use vyoma_manifest::{Manifest, Peers};

/// One version of an app, as far as compatibility goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Side<'a> {
    pub(crate) manifest: &'a Manifest,
    /// Imported interface names.
    pub(crate) imports: &'a [String],
    /// Exported interface names.
    pub(crate) exports: &'a [String],
    /// Whether it is an HTTP handler.
    pub(crate) http: bool,
}

fn reads_ipc(s: &Side<'_>) -> bool {
    s.imports.iter().any(|i| i.starts_with(vyoma_runtime::IPC_INTERFACE))
}

fn allows(p: &Peers, name: &str) -> bool {
    match p {
        Peers::Any(_) => true,
        Peers::Only(_) => p.iter_names().any(|n| n == name),
    }
}

/// What `new` breaks of what `others` rely on in `old`; empty: compatible.
pub(crate) fn breaking(old: &Side<'_>, new: &Side<'_>, others: &[&Manifest]) -> Vec<String> {
    let app = old.manifest.name.as_str();
    let mut out = Vec::new();
    let senders: Vec<&str> = others
        .iter()
        .filter(|m| m.name != app && allows(&m.capabilities.ipc.send, app))
        .map(|m| m.name.as_str())
        .collect();
    if !senders.is_empty() && reads_ipc(old) && !reads_ipc(new) {
        out.push(format!(
            "`{app}` would no longer read IPC messages (its component does not import `{}`), but {} may send to it",
            vyoma_runtime::IPC_INTERFACE,
            vyoma_control::backquoted(&senders)
        ));
    }
    let (old_accept, new_accept) = (
        &old.manifest.capabilities.ipc.accept,
        &new.manifest.capabilities.ipc.accept,
    );
    let dropped: Vec<&str> = senders
        .iter()
        .copied()
        .filter(|s| allows(old_accept, s) && !allows(new_accept, s))
        .collect();
    if !dropped.is_empty() {
        out.push(format!(
            "`{app}` would no longer accept messages from {}, which may send to it (`accept` in `[capabilities.ipc]`)",
            vyoma_control::backquoted(&dropped)
        ));
    }
    let callers: Vec<&str> = others
        .iter()
        .filter(|m| m.name != app && m.capabilities.http_outbound.iter().any(|r| r.value.allows_app(app)))
        .map(|m| m.name.as_str())
        .collect();
    if !callers.is_empty() && old.http && !new.http {
        out.push(format!(
            "`{app}` would no longer be an HTTP handler, but {} may call it at http://{app}.vyoma.internal",
            vyoma_control::backquoted(&callers)
        ));
    }
    let refused: Vec<&str> = callers
        .iter()
        .copied()
        .filter(|c| !dropped.contains(c) && allows(old_accept, c) && !allows(new_accept, c))
        .collect();
    if !refused.is_empty() && new.http {
        out.push(format!(
            "`{app}` would no longer accept requests from {}, which may call it over HTTP (`accept` in `[capabilities.ipc]`)",
            vyoma_control::backquoted(&refused)
        ));
    }
    let handled = ["wasi:cli/run", "wasi:http/incoming-handler"];
    for e in old.exports {
        if !new.exports.contains(e) && !handled.iter().any(|h| e.starts_with(h)) {
            out.push(format!("its component would no longer export `{e}`"));
        }
    }
    out
}

/// What differs between `old` and `new`, one line each; the component's digest is the
/// caller's to report.
pub(crate) fn changes(old: &Side<'_>, new: &Side<'_>) -> Vec<String> {
    let (o, n) = (old.manifest, new.manifest);
    let mut out = Vec::new();
    if o.version != n.version {
        out.push(format!("version {} -> {}", o.version, n.version));
    }
    let mut diff = |what: &str, a: String, b: String| {
        if a != b {
            out.push(format!("{what}: {a} -> {b}"));
        }
    };
    let peers = |p: &Peers| match p {
        Peers::Any(_) => "*".to_string(),
        Peers::Only(_) if p.names().is_empty() => "none".to_string(),
        Peers::Only(_) => p.iter_names().collect::<Vec<_>>().join(", "),
    };
    diff(
        "ipc send",
        peers(&o.capabilities.ipc.send),
        peers(&n.capabilities.ipc.send),
    );
    diff(
        "ipc accept",
        peers(&o.capabilities.ipc.accept),
        peers(&n.capabilities.ipc.accept),
    );
    let routes = |m: &Manifest| {
        let r: Vec<String> = m.http.routes.iter().map(|r| r.value.to_string()).collect();
        if r.is_empty() { "none".to_string() } else { r.join(", ") }
    };
    diff("http routes", routes(o), routes(n));
    let outbound = |m: &Manifest| {
        let r: Vec<String> = m
            .capabilities
            .http_outbound
            .iter()
            .map(|r| r.value.to_string())
            .collect();
        if r.is_empty() { "none".to_string() } else { r.join(", ") }
    };
    diff("http outbound", outbound(o), outbound(n));
    let dirs = |m: &Manifest| {
        let d: Vec<String> = m.capabilities.dirs.iter().map(|d| d.guest.clone()).collect();
        if d.is_empty() { "none".to_string() } else { d.join(", ") }
    };
    diff("dirs", dirs(o), dirs(n));
    diff(
        "memory limit",
        vyoma_control::fmt_bytes(o.limits.memory),
        vyoma_control::fmt_bytes(n.limits.memory),
    );
    diff("args", format!("{:?}", o.args), format!("{:?}", n.args));
    diff(
        "probation",
        humantime::format_duration(o.update.probation).to_string(),
        humantime::format_duration(n.update.probation).to_string(),
    );
    let added: Vec<&String> = new.imports.iter().filter(|i| !old.imports.contains(i)).collect();
    let gone: Vec<&String> = old.imports.iter().filter(|i| !new.imports.contains(i)).collect();
    if !added.is_empty() {
        out.push(format!("imports added: {}", join(&added)));
    }
    if !gone.is_empty() {
        out.push(format!("imports removed: {}", join(&gone)));
    }
    let added: Vec<&String> = new.exports.iter().filter(|i| !old.exports.contains(i)).collect();
    if !added.is_empty() {
        out.push(format!("exports added: {}", join(&added)));
    }
    out
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Manifest {
        let head = "manifest_version = 1\n[app]\nversion = \"0.1.0\"\ncomponent = \"x.wasm\"\n";
        Manifest::parse(&format!("{head}{text}"), "/apps/x/app.toml").unwrap()
    }

    fn side<'a>(manifest: &'a Manifest, imports: &'a [String], exports: &'a [String], http: bool) -> Side<'a> {
        Side {
            manifest,
            imports,
            exports,
            http,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dropping_ipc_or_a_sender_breaks_the_apps_that_send() {
        let old = m("name = \"echo\"\n[capabilities.ipc]\naccept = [\"a\", \"b\"]\n");
        let new = m("name = \"echo\"\n[capabilities.ipc]\naccept = [\"a\"]\n");
        let a = m("name = \"a\"\n[capabilities.ipc]\nsend = [\"echo\"]\n");
        let b = m("name = \"b\"\n[capabilities.ipc]\nsend = [\"*\"]\n");
        let quiet = m("name = \"q\"\n");
        let ipc = strings(&["vyoma:app/ipc@0.1.0"]);
        let none: Vec<String> = vec![];
        let peers = [&a, &b, &quiet];
        // Same grants, same imports: nothing breaks.
        assert!(breaking(&side(&old, &ipc, &none, false), &side(&old, &ipc, &none, false), &peers).is_empty());
        let b1 = breaking(&side(&old, &ipc, &none, false), &side(&new, &ipc, &none, false), &peers);
        assert_eq!(
            b1,
            [
                "`echo` would no longer accept messages from `b`, which may send to it (`accept` in `[capabilities.ipc]`)"
            ]
        );
        let b2 = breaking(
            &side(&old, &ipc, &none, false),
            &side(&old, &none, &none, false),
            &peers,
        );
        assert_eq!(
            b2,
            [
                "`echo` would no longer read IPC messages (its component does not import `vyoma:app/ipc`), but `a`, `b` may send to it"
            ]
        );
        // With no app sending to it, neither matters.
        assert!(
            breaking(
                &side(&old, &ipc, &none, false),
                &side(&new, &none, &none, false),
                &[&quiet]
            )
            .is_empty()
        );
    }

    #[test]
    fn an_http_app_called_by_name_must_stay_one_and_exports_must_stay() {
        let old = m("name = \"counter\"\n[capabilities.ipc]\naccept = [\"front\"]\n");
        let front = m("name = \"front\"\n[capabilities.http]\noutbound = [\"http://counter.vyoma.internal\"]\n");
        let none: Vec<String> = vec![];
        let ex = strings(&["wasi:http/incoming-handler@0.2.6", "acme:counter/api@1.0.0"]);
        let b = breaking(
            &side(&old, &none, &ex, true),
            &side(&old, &none, &none, false),
            &[&front],
        );
        assert_eq!(
            b,
            [
                "`counter` would no longer be an HTTP handler, but `front` may call it at http://counter.vyoma.internal",
                "its component would no longer export `acme:counter/api@1.0.0`"
            ]
        );
        let closed = m("name = \"counter\"\n");
        let b = breaking(
            &side(&old, &none, &ex, true),
            &side(&closed, &none, &ex, true),
            &[&front],
        );
        assert_eq!(
            b,
            [
                "`counter` would no longer accept requests from `front`, which may call it over HTTP (`accept` in `[capabilities.ipc]`)"
            ]
        );
    }

    #[test]
    fn changes_are_listed_one_per_line() {
        let old = m("name = \"x\"\n");
        let new = Manifest::parse(
            "manifest_version = 1\n[app]\nname = \"x\"\nversion = \"0.2.0\"\ncomponent = \"x.wasm\"\n[capabilities.ipc]\nsend = [\"console\"]\n[update]\nprobation = \"2s\"\n",
            "/apps/x/app.toml",
        )
        .unwrap();
        let imports = strings(&["vyoma:app/ipc@0.1.0"]);
        let none: Vec<String> = vec![];
        assert_eq!(
            changes(&side(&old, &none, &none, false), &side(&new, &imports, &none, false)),
            [
                "version 0.1.0 -> 0.2.0",
                "ipc send: none -> console",
                "probation: 10s -> 2s",
                "imports added: vyoma:app/ipc@0.1.0"
            ]
        );
    }
}
