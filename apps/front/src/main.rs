//! Chaining: `GET /front` counts a visit by calling the `counter` app by name,
//! `http://counter.vyoma.internal/counter`. The request goes through the supervisor, never
//! the network, and only because both sides agree: this app's manifest allows that URL
//! (`[capabilities.http] outbound`) and counter's accepts this app (`[capabilities.ipc]
//! accept`).

use wstd::http::{Body, Client, Error, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    if req.uri().path() != "/front" {
        return Ok(Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body("not found\n".to_string().into())?);
    }
    let call = Request::post("http://counter.vyoma.internal/counter").body(Body::empty())?;
    let text = match Client::new().send(call).await {
        Ok(resp) if resp.status().is_success() => {
            let body = resp.into_body().contents().await?.to_vec();
            let n = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("count")?.as_i64());
            match n {
                Some(n) => format!("welcome, visitor number {n}\n"),
                None => "welcome (the counter answered something unexpected)\n".to_string(),
            }
        }
        Ok(resp) => format!("welcome (the counter answered {})\n", resp.status()),
        Err(e) => format!("welcome (the counter could not be reached: {e})\n"),
    };
    Ok(Response::new(text.into()))
}
