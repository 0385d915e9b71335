//! The smallest VyomaOS HTTP app: a `wasi:http/incoming-handler` built with the standard
//! `wstd` crate and `cargo build --target wasm32-wasip2`; no VyomaOS SDK. The gateway sends
//! it the requests its manifest routes (`/hello`, `/hello/...`), each in a fresh instance.

use wstd::http::{Body, Error, Request, Response, StatusCode};

#[wstd::http_server]
async fn main(req: Request<Body>) -> Result<Response<Body>, Error> {
    let path = req.uri().path();
    let name = path
        .strip_prefix("/hello/")
        .filter(|n| !n.is_empty() && !n.contains('/'));
    let text = match name {
        Some(n) => format!("hello, {n}, from VyomaOS\n"),
        None if path == "/hello" => "hello from VyomaOS\n".to_string(),
        None => {
            return Ok(Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body("not found\n".to_string().into())?);
        }
    };
    Ok(Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .body(text.into())?)
}
