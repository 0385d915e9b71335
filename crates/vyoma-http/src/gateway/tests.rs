use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::sync::Semaphore;
use vyoma_manifest::Manifest;

use super::*;

fn app(name: &str, http: &str) -> Manifest {
    Manifest::parse(
        &format!("manifest_version = 1\n[app]\nname = \"{name}\"\nversion = \"0.1.0\"\ncomponent = \"a.wasm\"\n{http}"),
        format!("{name}/app.toml"),
    )
    .unwrap()
}

/// Answers `NAME BODY-LENGTH`, after waiting for `gate` if it has one; a body it cannot
/// read (too long) is a 413 from the handler's side.
struct Fake {
    name: &'static str,
    gate: Option<Arc<Semaphore>>,
    fail: Option<StatusCode>,
}

impl Handler for Fake {
    fn handle(&self, req: Request<Body>, ticket: Ticket) -> BoxFuture<'static, Result<Response<Body>, Failure>> {
        let (name, gate, fail) = (self.name, self.gate.clone(), self.fail);
        Box::pin(async move {
            let _ticket = ticket;
            if let Some(g) = gate {
                g.acquire().await.unwrap().forget();
            }
            if let Some(status) = fail {
                return Err(Failure {
                    status,
                    message: "wasm trap: unreachable".into(),
                });
            }
            match req.into_body().collect().await {
                Ok(b) => Ok(text(StatusCode::OK, &format!("{name} {}", b.to_bytes().len()))),
                Err(e) => Ok(text(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string())),
            }
        })
    }
}

fn fake(name: &'static str) -> Arc<dyn Handler> {
    Arc::new(Fake {
        name,
        gate: None,
        fail: None,
    })
}

fn get(path: &str) -> Request<Body> {
    Request::builder()
        .uri(path)
        .header("host", "device.local:8080")
        .body(Full::new(Bytes::new()).map_err(|e| match e {}).boxed_unsync())
        .unwrap()
}

fn post(path: &str, body: Vec<u8>, declare: bool) -> Request<Body> {
    let mut b = Request::builder().method("POST").uri(path);
    if declare {
        b = b.header("content-length", body.len());
    }
    // A stream of unknown length, so the limit is enforced while reading.
    let stream = futures::stream::iter(
        body.chunks(100)
            .map(|c| Ok::<_, BoxError>(http_body::Frame::data(Bytes::copy_from_slice(c))))
            .collect::<Vec<_>>(),
    );
    b.body(http_body_util::StreamBody::new(stream).boxed_unsync()).unwrap()
}

async fn answer(r: Response<Body>) -> (StatusCode, String) {
    let status = r.status();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

fn gateway(apps: &[Manifest]) -> Gateway {
    Gateway::new(Router::from_manifests(apps))
}

#[tokio::test]
async fn requests_reach_the_app_their_route_names() {
    let hello = app("hello", "[http]\nroutes = [{ path = \"/hello\" }]");
    let api = app("api", "[http]\nroutes = [{ path = \"/api/...\" }]");
    let gw = gateway(&[hello.clone(), api.clone()]);
    gw.attach(&hello, fake("hello"));
    gw.attach(&api, fake("api"));
    assert_eq!(
        answer(gw.route(get("/hello")).await).await,
        (StatusCode::OK, "hello 0\n".into())
    );
    assert_eq!(
        answer(gw.route(get("/api/v1/x?y=1")).await).await,
        (StatusCode::OK, "api 0\n".into())
    );
    let (status, body) = answer(gw.route(get("/nothing")).await).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, "not found: no app serves this path\n")
    );
    assert_eq!(
        answer(gw.route(get(HEALTH_PATH)).await).await,
        (StatusCode::OK, "ok\n".into())
    );
    let c = gw.counts("api").unwrap();
    assert_eq!((c.requests, c.errors, c.rejected, c.in_flight), (1, 0, 0, 0));
}

#[tokio::test]
async fn an_app_that_is_not_running_gets_503() {
    let hello = app("hello", "[http]\nroutes = [{ path = \"/hello\" }]");
    let gw = gateway(std::slice::from_ref(&hello));
    let (status, body) = answer(gw.route(get("/hello")).await).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "service unavailable: app `hello` is not running\n");
    gw.attach(&hello, fake("hello"));
    assert_eq!(gw.detach("hello", Duration::from_secs(1)).await, 0);
    assert_eq!(
        answer(gw.route(get("/hello")).await).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(gw.counts("hello").unwrap().rejected, 1);
    assert_eq!(
        gw.call("hello", get("/")).await.unwrap_err(),
        Unreachable::Unavailable("app `hello` is not running".into())
    );
    assert_eq!(
        gw.call("ghost", get("/")).await.unwrap_err(),
        Unreachable::NotFound("ghost".into())
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let up = app("up", "[http]\nroutes = [{ path = \"/up\" }]\nmax_body = \"1 KiB\"");
    let gw = gateway(std::slice::from_ref(&up));
    gw.attach(&up, fake("up"));
    assert_eq!(
        answer(gw.route(post("/up", vec![7; 1024], true)).await).await.1,
        "up 1024\n"
    );
    // Declared too long: refused before the app sees it.
    let (status, body) = answer(gw.route(post("/up", vec![7; 1025], true)).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body,
        "payload too large: app `up` takes request bodies up to 1024 bytes\n"
    );
    // Not declared: the app's read fails at the limit.
    let (status, body) = answer(gw.route(post("/up", vec![7; 5000], false)).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body, "length limit exceeded\n");
    let c = gw.counts("up").unwrap();
    assert_eq!((c.requests, c.rejected), (2, 1));
}

#[tokio::test]
async fn past_its_limit_in_flight_an_app_gets_503_with_retry_after() {
    let slow = app("slow", "[http]\nroutes = [{ path = \"/slow\" }]\nmax_in_flight = 2");
    let gw = gateway(std::slice::from_ref(&slow));
    let gate = Arc::new(Semaphore::new(0));
    gw.attach(
        &slow,
        Arc::new(Fake {
            name: "slow",
            gate: Some(gate.clone()),
            fail: None,
        }),
    );
    let a = tokio::spawn({
        let gw = gw.clone();
        async move { gw.route(get("/slow")).await }
    });
    let b = tokio::spawn({
        let gw = gw.clone();
        async move { gw.route(get("/slow")).await }
    });
    while gw.counts("slow").unwrap().in_flight < 2 {
        tokio::task::yield_now().await;
    }
    let r = gw.route(get("/slow")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    assert_eq!(
        answer(r).await.1,
        "service unavailable: app `slow` is handling its most requests at once (2)\n"
    );
    // Detaching waits for the two in flight; they finish when let go.
    let drain = tokio::spawn({
        let gw = gw.clone();
        async move { gw.detach("slow", Duration::from_secs(30)).await }
    });
    tokio::task::yield_now().await;
    assert!(!drain.is_finished());
    gate.add_permits(2);
    assert_eq!(answer(a.await.unwrap()).await.0, StatusCode::OK);
    assert_eq!(answer(b.await.unwrap()).await.0, StatusCode::OK);
    assert_eq!(drain.await.unwrap(), 0);
    let c = gw.counts("slow").unwrap();
    assert_eq!((c.requests, c.rejected, c.in_flight), (2, 1, 0));
}

#[tokio::test]
async fn a_failed_request_gets_a_generic_answer_and_counts_as_an_error() {
    let bad = app("bad", "[http]\nroutes = [{ path = \"/bad\" }, { path = \"/late\" }]");
    let gw = gateway(std::slice::from_ref(&bad));
    gw.attach(
        &bad,
        Arc::new(Fake {
            name: "bad",
            gate: None,
            fail: Some(StatusCode::INTERNAL_SERVER_ERROR),
        }),
    );
    let (status, body) = answer(gw.route(get("/bad")).await).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    // The trap's details are in the app's log, never sent to the client.
    assert_eq!(body, "internal server error: app `bad` failed handling this request\n");
    assert_eq!(gw.counts("bad").unwrap().errors, 1);
}

#[tokio::test]
async fn a_new_handler_takes_new_requests_while_old_ones_finish() {
    let v = app("v", "[http]\nroutes = [{ path = \"/v\" }]");
    let gw = gateway(std::slice::from_ref(&v));
    let gate = Arc::new(Semaphore::new(0));
    gw.attach(
        &v,
        Arc::new(Fake {
            name: "old",
            gate: Some(gate.clone()),
            fail: None,
        }),
    );
    let first = tokio::spawn({
        let gw = gw.clone();
        async move { gw.route(get("/v")).await }
    });
    while gw.counts("v").unwrap().in_flight < 1 {
        tokio::task::yield_now().await;
    }
    gw.attach(&v, fake("new"));
    assert_eq!(answer(gw.route(get("/v")).await).await.1, "new 0\n");
    gate.add_permits(1);
    assert_eq!(answer(first.await.unwrap()).await.1, "old 0\n");
}

#[tokio::test]
async fn the_listener_serves_http_and_shuts_down_gracefully() {
    let hello = app("hello", "[http]\nroutes = [{ path = \"/hello\" }]");
    let gw = gateway(std::slice::from_ref(&hello));
    gw.attach(&hello, fake("hello"));
    let listening = gw
        .listen(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap())
        .unwrap();
    let url = format!("http://{}/hello", listening.addr());
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.text().await.unwrap(), "hello 0\n");
    }
    assert_eq!(listening.shutdown(Duration::from_secs(5)).await, 0);
    assert!(client.get(&url).send().await.is_err());
}
