//! The management API end to end: a real supervisor running real components, the server on
//! its own thread, and the remote client (plus raw HTTP for what a client must not do).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use vyoma_api::client::{ClientError, FollowEvent, Remote};
use vyoma_api::{Api, ApiConfig, Endpoint, ServerCredentials, credentials};
use vyoma_control::{Command, Reply, StopOutcome};
use vyoma_lifecycle::{AppState, LogLine};
use vyoma_runtime::RuntimeConfig;
use vyoma_supervisor::{RealClock, Supervisor};
use vyoma_testkit::{shared_cache, write_app};

const LONG: Duration = Duration::from_secs(60);

struct Fixture {
    _dir: tempfile::TempDir,
    sup: Supervisor,
    api: Api,
    endpoint: Endpoint,
}

impl Fixture {
    fn remote(&self) -> Remote {
        Remote::new("test", &self.endpoint).unwrap()
    }

    fn url(&self) -> String {
        self.endpoint.url.clone()
    }
}

/// A supervisor over `apps` (name, component, extra manifest text), every app started,
/// with the API on a free loopback port (HTTPS when `tls`).
async fn fixture(tls: bool, apps: &[(&str, &str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("apps");
    for (name, component, extra) in apps {
        write_app(&root, name, component, extra);
    }
    let config = RuntimeConfig {
        cache_dir: Some(shared_cache(env!("CARGO_TARGET_TMPDIR"))),
        ..RuntimeConfig::default()
    };
    let booted = vyoma_supervisor::boot(&root, config, Arc::new(RealClock::default()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sup = booted.supervisor;
    let made = credentials::generate(&dir.path().join("api"), &[]).unwrap();
    let creds = ServerCredentials::load(&made.dir, tls).unwrap();
    let listener = vyoma_api::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let api = Api::spawn(
        &sup,
        ApiConfig {
            listener,
            credentials: creds,
        },
    )
    .unwrap();
    api.set_started();
    let endpoint = Endpoint {
        url: api.url(),
        token: made.token.as_str().to_string(),
        ca: tls.then_some(made.ca_pem),
    };
    Fixture {
        _dir: dir,
        sup,
        api,
        endpoint,
    }
}

async fn call(r: &Remote, line: &str) -> Reply {
    let cmd = Command::parse(line).unwrap();
    r.call(&cmd).await.unwrap_or_else(|e| panic!("{line}: {e}")).0
}

async fn refused(r: &Remote, cmd: Command) -> vyoma_control::http::ApiError {
    match r.call(&cmd).await {
        Err(ClientError::Api(e)) => e,
        other => panic!("{cmd:?} was not refused by the API: {other:?}"),
    }
}

/// A raw HTTP/1.1 exchange (what no well-behaved client sends); returns status and body.
async fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(LONG, s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_command_works_remotely_over_tls() {
    let f = fixture(
        true,
        &[
            ("ticker", "ticker", "args = [\"50\"]\n"),
            (
                "echo",
                "echo",
                "[capabilities.ipc]\nsend = [\"*\"]\naccept = [\"*\"]\n[restart]\npolicy = \"always\"\n",
            ),
            ("hello", "hello", "[restart]\npolicy = \"never\"\n"),
        ],
    )
    .await;
    assert!(f.url().starts_with("https://127.0.0.1:"));
    let r = f.remote();
    for app in ["ticker", "echo"] {
        assert_eq!(
            call(&r, &format!("wait {app} running 1m")).await,
            Reply::Reached {
                app: app.into(),
                state: AppState::Running
            }
        );
    }
    // ps: the same rows as the supervisor's own.
    let Reply::Ps(rows) = call(&r, "ps").await else {
        panic!()
    };
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["echo", "hello", "ticker"]);
    // log with a count.
    let Reply::Log { lines, .. } = call(&r, "log ticker 2").await else {
        panic!()
    };
    assert_eq!(lines.len(), 2);
    // inspect.
    let Reply::Inspect(d) = call(&r, "inspect echo").await else {
        panic!()
    };
    assert_eq!(
        (d.status.name.as_str(), d.capabilities.ipc_accept.as_str()),
        ("echo", "* (every app)")
    );
    // A message with its answer.
    let answer = r
        .call(&Command::Message {
            to: "echo".into(),
            text: "ping over https".into(),
            reply_within: Some(Duration::from_secs(10)),
        })
        .await
        .unwrap()
        .0;
    assert_eq!(
        answer,
        Reply::Answered {
            from: "echo".into(),
            text: "ping over https".into()
        }
    );
    // kill, start, restart, stop.
    assert_eq!(call(&r, "kill ticker").await, Reply::Killed("ticker".into()));
    assert_eq!(f.sup.detail("ticker").unwrap().status.state, AppState::Stopped);
    assert_eq!(call(&r, "start ticker").await, Reply::Started("ticker".into()));
    call(&r, "wait ticker running 1m").await;
    assert_eq!(call(&r, "restart ticker").await, Reply::Restarting("ticker".into()));
    call(&r, "wait ticker running 1m").await;
    assert_eq!(
        call(&r, "stop ticker").await,
        Reply::Stopping {
            app: "ticker".into(),
            outcome: StopOutcome::Stopped
        }
    );
    // Errors carry the supervisor's message and a code.
    let e = refused(&r, Command::Start("nope".into())).await;
    assert_eq!((e.status, e.code.as_str()), (404, "unknown_app"));
    assert_eq!(e.message, "no app named `nope`; `ps` lists the apps");
    let e = refused(&r, Command::Kill("ticker".into())).await;
    assert_eq!((e.status, e.code.as_str()), (409, "wrong_state"), "{}", e.message);
    let e = refused(
        &r,
        Command::Wait {
            app: "hello".into(),
            state: AppState::Running,
            timeout: Duration::from_millis(200),
        },
    )
    .await;
    assert_eq!((e.status, e.code.as_str()), (504, "wait_timed_out"), "{}", e.message);
    // Metrics.
    let m = r.get_text("/metrics").await.unwrap();
    assert!(m.contains("vyoma_app_state{app=\"echo\",state=\"running\"} 1"), "{m}");
    assert!(m.contains("vyoma_app_ipc_sent_total{app=\"echo\"} 1.0"), "{m}");
    // Shutdown: every app stopped, and the owner hears of it.
    let mut api = f.api;
    assert_eq!(call(&r, "shutdown").await, Reply::ShutDown);
    tokio::time::timeout(LONG, api.shutdown_requested()).await.unwrap();
    assert!(f.sup.status().iter().all(|s| !s.state.is_live()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_and_reveal_no_apps() {
    let f = fixture(true, &[("ticker", "ticker", "")]).await;
    let addr = f.api.addr();
    // Plain HTTP to the TLS port: told to use https, in plain HTTP.
    let (status, body) = raw(addr, "GET /v1/apps HTTP/1.1\r\nhost: x\r\n\r\n").await;
    assert_eq!(status, 400);
    assert!(
        body.contains("this port speaks HTTPS: use https://127.0.0.1:"),
        "{body}"
    );
    // Over TLS: no token, wrong token, token in the query.
    let http = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(f.endpoint.ca.as_ref().unwrap().as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = f.url();
    for (what, req, status, code) in [
        (
            "no token",
            http.get(format!("{url}/v1/apps/ticker")),
            401,
            "unauthorized",
        ),
        (
            "wrong token",
            http.get(format!("{url}/v1/apps/ticker")).bearer_auth("vyoma_wrong"),
            401,
            "unauthorized",
        ),
        (
            "token in the query",
            http.get(format!("{url}/v1/apps/ticker?token={}", f.endpoint.token)),
            400,
            "bad_request",
        ),
        (
            "no token, unknown app",
            http.get(format!("{url}/v1/apps/no-such-app")),
            401,
            "unauthorized",
        ),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{what}");
        if status == 401 {
            assert_eq!(resp.headers()["www-authenticate"], "Bearer");
        }
        let body = resp.text().await.unwrap();
        let e = vyoma_control::http::ApiError::from_json(status, body.as_bytes()).unwrap();
        assert_eq!(e.code, code, "{what}: {body}");
        assert!(
            !body.contains("ticker") && !body.contains("no-such-app"),
            "{what} leaks: {body}"
        );
    }
    // Probes need no token and say nothing else.
    let live = http.get(format!("{url}/healthz")).send().await.unwrap();
    assert_eq!(
        (live.status().as_u16(), live.text().await.unwrap().as_str()),
        (200, r#"{"status":"live"}"#)
    );
    // Oversized and malformed requests, with the token.
    let tok = &f.endpoint.token;
    let big = http
        .post(format!("{url}/v1/apps/ticker/message"))
        .bearer_auth(tok)
        .body(vec![b'x'; vyoma_control::http::MAX_BODY + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status().as_u16(), 413);
    let bad = http
        .post(format!("{url}/v1/apps/ticker/wait"))
        .bearer_auth(tok)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    assert!(
        bad.text()
            .await
            .unwrap()
            .contains("invalid JSON body for POST /v1/apps/ticker/wait")
    );
    let unknown = http
        .get(format!("{url}/v1/nothing"))
        .bearer_auth(tok)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    // A remote client with plain http to a non-loopback address is refused before sending.
    let e = Remote::new(
        "far",
        &Endpoint {
            url: "http://192.0.2.1:7420".into(),
            token: tok.clone(),
            ca: None,
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("refusing plain http"), "{e}");
    // Plain HTTP is only served on loopback.
    let d = tempfile::tempdir().unwrap();
    credentials::generate(d.path(), &[]).unwrap();
    let any = vyoma_api::bind("0.0.0.0:0".parse().unwrap()).unwrap();
    let e = Api::spawn(
        &f.sup,
        ApiConfig {
            listener: any,
            credentials: ServerCredentials::load(d.path(), false).unwrap(),
        },
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("refusing plain HTTP on 0.0.0.0:"), "{e}");
}

/// A TCP proxy whose connections the test can cut.
struct Proxy {
    addr: SocketAddr,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(to: SocketAddr) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let c = conns.clone();
        tokio::spawn(async move {
            loop {
                let (mut down, _) = l.accept().await.unwrap();
                let task = tokio::spawn(async move {
                    let mut up = TcpStream::connect(to).await.unwrap();
                    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                });
                c.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { addr, conns }
    }

    fn cut_all(&self) -> usize {
        let conns = std::mem::take(&mut *self.conns.lock().unwrap());
        for c in &conns {
            c.abort();
        }
        conns.len()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_log_survives_dropped_connections_without_losing_or_repeating_lines() {
    let f = fixture(false, &[("ticker", "ticker", "args = [\"20\"]\n")]).await;
    let proxy = Proxy::start(f.api.addr()).await;
    let r = Remote::new(
        "via-proxy",
        &Endpoint {
            url: format!("http://{}", proxy.addr),
            ..f.endpoint.clone()
        },
    )
    .unwrap();
    let lines: Arc<Mutex<Vec<LogLine>>> = Arc::default();
    let events: Arc<Mutex<Vec<FollowEvent>>> = Arc::default();
    let (l2, e2) = (lines.clone(), events.clone());
    let follow = tokio::spawn(async move {
        r.follow(
            "ticker",
            Some(Duration::from_secs(4)),
            |l| l2.lock().unwrap().push(l.clone()),
            |e| e2.lock().unwrap().push(e),
        )
        .await
    });
    // Cut the stream twice while lines flow.
    for _ in 0..2 {
        let seen = lines.lock().unwrap().len();
        tokio::time::timeout(LONG, async {
            while lines.lock().unwrap().len() < seen + 10 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .unwrap();
        assert!(proxy.cut_all() >= 1);
    }
    tokio::time::timeout(LONG, follow).await.unwrap().unwrap().unwrap();
    let lines = lines.lock().unwrap();
    let events = events.lock().unwrap();
    assert!(events.len() >= 2, "the client reconnected: {events:?}");
    // Every line from the first on, once, in order: nothing lost or repeated.
    let seqs: Vec<u64> = lines.iter().map(|l| l.seq).collect();
    let want: Vec<u64> = (0..seqs.len() as u64).collect();
    assert_eq!(seqs, want);
    assert!(seqs.len() > 30, "{} lines", seqs.len());
    // The log itself agrees on every line's text.
    let (held, _) = f.sup.log("ticker").unwrap().since(0);
    for l in lines.iter() {
        assert_eq!(Some(&l.text), held.iter().find(|h| h.seq == l.seq).map(|h| &h.text));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_at_once_while_apps_busy_loop() {
    let apps: Vec<(String, &str, &str)> = (0..6).map(|i| (format!("spin-{i}"), "spinner", "")).collect();
    let apps: Vec<(&str, &str, &str)> = apps.iter().map(|(n, c, e)| (n.as_str(), *c, *e)).collect();
    let f = fixture(false, &apps).await;
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let r = f.remote();
            tokio::spawn(async move {
                for _ in 0..5 {
                    let (reply, _) = r.call(&Command::Ps).await?;
                    let Reply::Ps(rows) = reply else {
                        panic!("ps answered {reply:?}")
                    };
                    assert_eq!(rows.len(), 6);
                }
                r.get_text("/metrics").await.map(|_| ())
            })
        })
        .collect();
    for c in clients {
        tokio::time::timeout(LONG, c).await.unwrap().unwrap().unwrap();
    }
    assert!(f.sup.status().iter().all(|s| s.state == AppState::Running));
}

async fn readyz(url: &str) -> (u16, String) {
    let resp = reqwest::get(format!("{url}/readyz")).await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_means_every_required_app_runs_or_is_done() {
    let f = fixture(
        false,
        &[
            ("ticker", "ticker", ""),
            ("hello", "hello", "[restart]\npolicy = \"never\"\n"),
            (
                "optional",
                "trapper",
                "args = [\"unreachable\"]\n[restart]\npolicy = \"never\"\n[lifecycle]\nrequired = false\n",
            ),
        ],
    )
    .await;
    let url = f.url();
    wait_until(&f.sup, "hello", AppState::Exited).await;
    wait_until(&f.sup, "optional", AppState::Failed).await;
    // A failed app that is not required does not matter; a job done with 0 counts as fine.
    assert_eq!(readyz(&url).await, (200, r#"{"status":"ready"}"#.into()));
    // A required app that is stopped makes the instance not ready, and says nothing more.
    f.sup.apply("ticker", vyoma_lifecycle::Event::Kill).unwrap();
    assert_eq!(readyz(&url).await, (503, r#"{"status":"not_ready"}"#.into()));
    assert_eq!(f.sup.not_ready(), vec![("ticker".to_string(), AppState::Stopped)]);
    let m = f.remote().get_text("/metrics").await.unwrap();
    assert!(m.contains("vyoma_ready 0.0"), "{m}");
}

async fn wait_until(sup: &Supervisor, app: &str, state: AppState) {
    assert!(
        sup.wait_for(app, state, LONG).await.unwrap(),
        "{app} never became {state}"
    );
}
