//! An HTTP handler with nothing but the `wasi` crate's bindings, as `wasmtime serve` and
//! Spin take them: `cargo build --target wasm32-wasip2` of this cdylib gives a component
//! that exports only `wasi:http/incoming-handler`. Answers every request with
//! `hello from the wasi crate: METHOD PATH` (the method as the bindings print it).

use std::io::Write as _;

use wasi::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

struct Hello;

impl wasi::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let text = format!(
            "hello from the wasi crate: {:?} {}\n",
            request.method(),
            request.path_with_query().unwrap_or_default()
        );
        let headers = Fields::new();
        let _ = headers.set("content-type", &[b"text/plain; charset=utf-8".to_vec()]);
        let resp = OutgoingResponse::new(headers);
        let body = resp.body().expect("a new response has a body");
        ResponseOutparam::set(response_out, Ok(resp));
        let mut out = body.write().expect("the body's stream, once");
        // The client may have gone; nothing to do about it then.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
        drop(out);
        let _ = OutgoingBody::finish(body, None);
    }
}

wasi::http::proxy::export!(Hello);
