//! A small JSON API: `GET /counter` reads the count, `POST /counter` adds one (or the
//! `by` number in a JSON body `{"by": N}`), `DELETE /counter` resets it. The count lives
//! in `/data/count` (a read-write folder its manifest grants), written to a temporary file
//! and renamed over the old one, so a crash never leaves half a number. Each request runs
//! in a fresh instance; the manifest's `max_in_flight = 1` makes updates one at a time.

use std::io::ErrorKind;

use wstd::http::{Body, Error, Method, Request, Response, StatusCode};

const FILE: &str = "/data/count";

fn read() -> std::io::Result<i64> {
    match std::fs::read_to_string(FILE) {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|e| std::io::Error::new(ErrorKind::InvalidData, format!("{FILE}: {e}"))),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

fn write(n: i64) -> std::io::Result<()> {
    let tmp = format!("{FILE}.tmp");
    std::fs::write(&tmp, n.to_string())?;
    std::fs::rename(&tmp, FILE)
}

fn json(status: StatusCode, v: serde_json::Value) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(format!("{v}\n").into())?)
}

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    if req.uri().path() != "/counter" {
        return json(StatusCode::NOT_FOUND, serde_json::json!({"error": "not found"}));
    }
    let method = req.method().clone();
    let body = req.into_body().contents().await?.to_vec();
    let result = match method {
        Method::GET => read(),
        Method::POST => {
            let by = if body.is_empty() {
                Ok(1)
            } else {
                serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v.get("by")?.as_i64())
                    .ok_or("the body must be JSON like {\"by\": 2}")
            };
            match by {
                Err(why) => return json(StatusCode::BAD_REQUEST, serde_json::json!({"error": why})),
                Ok(by) => read().and_then(|n| {
                    let n = n.saturating_add(by);
                    write(n).map(|()| n)
                }),
            }
        }
        Method::DELETE => write(0).map(|()| 0),
        _ => {
            return json(
                StatusCode::METHOD_NOT_ALLOWED,
                serde_json::json!({"error": "use GET, POST or DELETE"}),
            );
        }
    };
    match result {
        Ok(n) => json(StatusCode::OK, serde_json::json!({"count": n})),
        Err(e) => {
            eprintln!("counter: {e}");
            json(
                StatusCode::INTERNAL_SERVER_ERROR,
                serde_json::json!({"error": "the count could not be stored"}),
            )
        }
    }
}
