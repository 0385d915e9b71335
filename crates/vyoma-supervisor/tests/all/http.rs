//! HTTP apps end to end: real `wasi:http` components (`hello-http`, `http-probe`) served by
//! the gateway on a real socket, called with a real HTTP client (reqwest): routes, 404, a
//! trapping handler (500, the others unaffected), the body limit (413), the timeout (504),
//! overload (503), outbound requests allowed and denied against a live local server,
//! chaining by name under both sides' grants, and stop (drain) and kill (cancel).

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vyoma_lifecycle::{AppState, Event};
use vyoma_supervisor::Supervisor;

use crate::common::*;

const HELLO: &str = "[http]\nroutes = [{ path = \"/hello\" }, { path = \"/hello/:name\" }]\n";

fn probe(extra: &str) -> String {
    format!("[http]\nroutes = [{{ path = \"/probe/...\" }}]\n{extra}")
}

/// The supervisor over `root` with the gateway listening on a free loopback port.
async fn serve(root: &std::path::Path) -> (Supervisor, vyoma_http::Listening, String) {
    let sup = supervisor(root, 64).await;
    let l = sup
        .gateway()
        .listen(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap();
    let base = format!("http://{}", l.addr());
    (sup, l, base)
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Waits (at most [`LONG`]) until `app` has `n` requests in flight.
async fn in_flight(sup: &Supervisor, app: &str, n: u64) {
    let deadline = tokio::time::Instant::now() + LONG;
    while counts(sup, app).in_flight < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{n} requests never got in flight"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn counts(sup: &Supervisor, app: &str) -> vyoma_control::HttpStatus {
    status(sup, app).http.expect("an HTTP app has counts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_apps_serve_their_routes_beside_other_apps() {
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "hello-http", "hello-http", HELLO);
    app(d.path(), "probe", "http-probe", &probe(""));
    app(d.path(), "ticker", "ticker", "");
    // A cdylib built against the plain `wasi` crate: only `wasi:http/incoming-handler`.
    app(
        d.path(),
        "plain",
        "hello_wasi",
        "[http]\nroutes = [{ path = \"/plain/...\" }]\n",
    );
    let (sup, _l, base) = serve(d.path()).await;
    for a in ["hello-http", "probe", "ticker", "plain"] {
        wait(&sup, a, AppState::Running).await;
    }
    assert_eq!(
        get(&format!("{base}/plain/x?y=1")).await,
        (200, "hello from the wasi crate: Method::Get /plain/x?y=1\n".into())
    );
    assert_eq!(
        get(&format!("{base}/hello")).await,
        (200, "hello from VyomaOS\n".into())
    );
    assert_eq!(
        get(&format!("{base}/hello/ann")).await,
        (200, "hello, ann, from VyomaOS\n".into())
    );
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/probe/echo"))
        .body("abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "POST /probe/echo 3 abc");
    assert_eq!(
        get(&format!("{base}/elsewhere")).await,
        (404, "not found: no app serves this path\n".into())
    );
    assert_eq!(
        get(&format!("{base}/.well-known/vyoma/health")).await,
        (200, "ok\n".into())
    );
    // What the handler printed is in its app's log.
    wait_log(&sup, "probe", "echo 3 bytes").await;
    let c = counts(&sup, "hello-http");
    assert_eq!((c.requests, c.errors, c.in_flight), (2, 0, 0));
    assert!(status(&sup, "ticker").http.is_none());
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_handler_gets_a_500_and_every_other_app_keeps_serving() {
    let d = tempfile::tempdir().unwrap();
    app(d.path(), "hello-http", "hello-http", HELLO);
    app(d.path(), "probe", "http-probe", &probe(""));
    let (sup, _l, base) = serve(d.path()).await;
    wait(&sup, "probe", AppState::Running).await;
    wait(&sup, "hello-http", AppState::Running).await;
    for _ in 0..3 {
        let (code, body) = get(&format!("{base}/probe/trap")).await;
        assert_eq!(code, 500);
        assert_eq!(
            body,
            "internal server error: app `probe` failed handling this request\n"
        );
        assert_eq!(get(&format!("{base}/hello")).await.0, 200);
    }
    wait_log(&sup, "probe", "http: request failed: trap").await;
    assert!(log_text(&sup, "probe").contains("about to trap"));
    // The app itself is fine: each request had an instance of its own.
    let s = status(&sup, "probe");
    assert_eq!((s.state, s.restarts), (AppState::Running, 0));
    assert_eq!(get(&format!("{base}/probe/sleep/1")).await, (200, "slept 1".into()));
    let c = counts(&sup, "probe");
    assert_eq!((c.requests, c.errors), (4, 3));
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_refuse_large_bodies_slow_handlers_and_overload() {
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "probe",
        "http-probe",
        &probe("max_body = \"1 KiB\"\ntimeout = \"500ms\"\nmax_in_flight = 2\n"),
    );
    let (sup, _l, base) = serve(d.path()).await;
    wait(&sup, "probe", AppState::Running).await;
    let client = reqwest::Client::new();
    let post = |n: usize| client.post(format!("{base}/probe/echo")).body(vec![b'x'; n]).send();
    assert_eq!(post(1024).await.unwrap().status(), 200);
    let r = post(1025).await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(
        r.text().await.unwrap(),
        "payload too large: app `probe` takes request bodies up to 1024 bytes\n"
    );
    // Past its timeout, waiting or spinning, a request is ended with a 504.
    for path in ["sleep/5000", "spin"] {
        let (code, body) = get(&format!("{base}/probe/{path}")).await;
        assert_eq!(code, 504, "{path}");
        assert_eq!(body, "gateway timeout: app `probe` did not answer in time\n");
    }
    wait_log(&sup, "probe", "http: request ran past its timeout (500 ms): ended").await;
    // Two in flight is the most; a third is refused at once.
    let slow = |client: reqwest::Client, base: String| async move {
        client
            .get(format!("{base}/probe/sleep/400"))
            .send()
            .await
            .unwrap()
            .status()
    };
    let a = tokio::spawn(slow(client.clone(), base.clone()));
    let b = tokio::spawn(slow(client.clone(), base.clone()));
    in_flight(&sup, "probe", 2).await;
    let r = client.get(format!("{base}/probe/sleep/1")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(a.await.unwrap(), 200);
    assert_eq!(b.await.unwrap(), 200);
    let c = counts(&sup, "probe");
    assert_eq!((c.rejected, c.errors, c.in_flight), (2, 2, 0));
    assert_eq!(status(&sup, "probe").state, AppState::Running);
    sup.shutdown().await;
}

/// A one-route HTTP/1.1 server on loopback that answers every request with `pong` and
/// counts them.
async fn pong_server() -> (u16, Arc<std::sync::atomic::AtomicU64>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let hits = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\npong")
                    .await;
            });
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_requests_reach_only_what_the_manifest_allows() {
    let (port, hits) = pong_server().await;
    let (other, other_hits) = pong_server().await;
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "probe",
        "http-probe",
        &probe(&format!(
            "[capabilities.http]\noutbound = [\"http://127.0.0.1:{port}\"]\n"
        )),
    );
    let (sup, _l, base) = serve(d.path()).await;
    wait(&sup, "probe", AppState::Running).await;
    let client = reqwest::Client::new();
    let fetch = |url: String, host: Option<String>| {
        let mut r = client.get(format!("{base}/probe/fetch")).header("x-url", url);
        if let Some(h) = host {
            r = r.header("host", h);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(
        fetch(format!("http://127.0.0.1:{port}/ping"), None).await,
        (200, "fetched 200 pong".into())
    );
    // Another port, even on an allowed host, is refused before any connection is made;
    // naming the allowed host in the inbound `Host` header changes nothing.
    let (code, body) = fetch(
        format!("http://127.0.0.1:{other}/ping"),
        Some(format!("127.0.0.1:{port}")),
    )
    .await;
    assert_eq!(code, 502);
    assert!(body.starts_with("fetch failed"), "{body}");
    let (code, _) = fetch("https://example.com/".into(), None).await;
    assert_eq!(code, 502);
    wait_log(
        &sup,
        "probe",
        &format!("http: outgoing request refused: http://127.0.0.1:{other}: not in [capabilities.http] outbound"),
    )
    .await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(other_hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apps_call_each_other_by_name_when_both_sides_agree() {
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "hello-http",
        "hello-http",
        &format!("{HELLO}[capabilities.ipc]\naccept = [\"probe\"]\n"),
    );
    // `private` has no routes: reachable only by name, and it accepts nobody.
    app(d.path(), "private", "hello-http", "");
    app(
        d.path(),
        "probe",
        "http-probe",
        &probe(
            "[capabilities.http]\noutbound = [\"http://hello-http.vyoma.internal\", \"http://private.vyoma.internal\"]\n",
        ),
    );
    app(
        d.path(),
        "stranger",
        "http-probe",
        "[http]\nroutes = [{ path = \"/stranger/...\" }]\n",
    );
    let (sup, _l, base) = serve(d.path()).await;
    for a in ["hello-http", "private", "probe", "stranger"] {
        wait(&sup, a, AppState::Running).await;
    }
    let client = reqwest::Client::new();
    let fetch = |url: &str| {
        let r = client.get(format!("{base}/probe/fetch")).header("x-url", url).send();
        async move {
            let r = r.await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(
        fetch("http://hello-http.vyoma.internal/hello/probe").await,
        (200, "fetched 200 hello, probe, from VyomaOS\n".into())
    );
    assert_eq!(counts(&sup, "hello-http").requests, 1);
    // The target must accept the caller, as with IPC.
    assert_eq!(fetch("http://private.vyoma.internal/hello").await.0, 502);
    wait_log(
        &sup,
        "probe",
        "http: request to app `private` refused: app `private` does not accept requests from `probe`",
    )
    .await;
    // And the caller must be allowed to call it.
    assert_eq!(fetch("http://stranger.vyoma.internal/x").await.0, 502);
    wait_log(&sup, "probe", "not granted; add \"http://stranger.vyoma.internal\"").await;
    // A route-less app is not on the gateway.
    assert_eq!(get(&format!("{base}/hello")).await.0, 200);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_drains_requests_in_flight_and_kill_cancels_them() {
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "probe",
        "http-probe",
        &probe("[lifecycle]\nstop_timeout = \"30s\"\n"),
    );
    let (sup, _l, base) = serve(d.path()).await;
    wait(&sup, "probe", AppState::Running).await;
    let client = reqwest::Client::new();
    let slow = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let r = client.get(format!("{base}/probe/sleep/700")).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    in_flight(&sup, "probe", 1).await;
    sup.stop("probe").unwrap();
    // New requests are refused at once; the one in flight finishes.
    assert_eq!(get(&format!("{base}/probe/sleep/1")).await.0, 503);
    assert_eq!(slow.await.unwrap(), (200, "slept 700".into()));
    wait(&sup, "probe", AppState::Stopped).await;

    sup.apply("probe", Event::Start).unwrap();
    wait(&sup, "probe", AppState::Running).await;
    let slow = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            client
                .get(format!("{base}/probe/sleep/30000"))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    in_flight(&sup, "probe", 1).await;
    sup.apply("probe", Event::Kill).unwrap();
    assert_eq!(slow.await.unwrap(), 503);
    assert_eq!(counts(&sup, "probe").in_flight, 0);
    sup.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_on_a_command_are_refused_with_why() {
    let d = tempfile::tempdir().unwrap();
    app(
        d.path(),
        "cmd",
        "ticker",
        "[http]\nroutes = [{ path = \"/cmd\" }]\n[restart]\npolicy = \"never\"\n",
    );
    let (sup, _l, base) = serve(d.path()).await;
    wait(&sup, "cmd", AppState::Failed).await;
    let why = status(&sup, "cmd").last_exit.unwrap().to_string();
    assert!(
        why.contains("app `cmd` has [http] routes, but") && why.contains("is a command, not an HTTP handler"),
        "{why}"
    );
    assert_eq!(get(&format!("{base}/cmd")).await.0, 503);
    sup.shutdown().await;
}
