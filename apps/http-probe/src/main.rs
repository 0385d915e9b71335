//! Test app for the HTTP gateway (routes `/probe/...`):
//! - `/probe/echo`: the method, path, and the body's length and text;
//! - `/probe/trap`: traps (`unreachable`) before answering;
//! - `/probe/sleep/MS`: answers after MS milliseconds;
//! - `/probe/spin`: a busy loop that never answers (for timeouts);
//! - `/probe/fetch`: GETs the URL in the `x-url` header and answers with its status and
//!   body, or the error (for outbound rules and chaining).

use std::time::Duration;

use wstd::http::{Body, Client, Error, Request, Response, StatusCode};

fn text(status: StatusCode, s: String) -> Result<Response<Body>, Error> {
    Ok(Response::builder().status(status).body(s.into())?)
}

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match path.as_str() {
        "/probe/echo" => {
            let body = req.into_body().contents().await?.to_vec();
            println!("echo {} bytes", body.len());
            let text_body = String::from_utf8_lossy(&body);
            text(StatusCode::OK, format!("{method} {path} {} {text_body}", body.len()))
        }
        "/probe/trap" => {
            println!("about to trap");
            std::process::abort()
        }
        "/probe/spin" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "/probe/fetch" => {
            let url = req
                .headers()
                .get("x-url")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let call = Request::get(url.as_str()).body(Body::empty())?;
            match Client::new().send(call).await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = resp.into_body().contents().await?.to_vec();
                    text(
                        StatusCode::OK,
                        format!("fetched {} {}", status.as_u16(), String::from_utf8_lossy(&body)),
                    )
                }
                Err(e) => text(StatusCode::BAD_GATEWAY, format!("fetch failed: {e}")),
            }
        }
        p => match p.strip_prefix("/probe/sleep/").and_then(|ms| ms.parse::<u64>().ok()) {
            Some(ms) => {
                wstd::task::sleep(Duration::from_millis(ms).into()).await;
                text(StatusCode::OK, format!("slept {ms}"))
            }
            None => text(StatusCode::NOT_FOUND, "not found".to_string()),
        },
    }
}
