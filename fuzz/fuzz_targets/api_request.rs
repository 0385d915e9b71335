//! Any HTTP request the management API could receive (method, path, query, body), and any
//! answer its client could read: routing never panics, refusals are 4xx with a one-line
//! message, a routed command comes back from the request the client would send for it,
//! and replies, follow lines and error bodies parse or fail cleanly.
//!
//! Input: byte 0 picks the method; the rest is `target NUL body`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vyoma_control::http::{self, ApiError, Call, FollowItem, Request};

fuzz_target!(|data: &[u8]| {
    let Some((&m, rest)) = data.split_first() else { return };
    let method = ["GET", "POST", "PUT", "DELETE"][usize::from(m) % 4];
    let (target, body) = match rest.iter().position(|&b| b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let Ok(target) = std::str::from_utf8(target) else { return };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let _ = http::credentials_in_query(query);
    match http::route(&Request { method, path, query, body }) {
        Ok(Call::Command(cmd)) => {
            // The client's request for this command routes back to it.
            if let Some(out) = http::request_for(&cmd) {
                let (p, q) = out.path_and_query.split_once('?').unwrap_or((&out.path_and_query, ""));
                let b = out.body.unwrap_or_default();
                let again = http::route(&Request { method: out.method, path: p, query: q, body: b.as_bytes() });
                assert_eq!(again, Ok(Call::Command(cmd)));
            }
        }
        Ok(_) => {}
        Err(e) => {
            assert!((400..500).contains(&e.status), "{e:?}");
            assert!(!e.message.is_empty() && !e.message.contains('\n'), "{e:?}");
        }
    }
    // What a client reads from an instance.
    let _ = serde_json::from_slice::<vyoma_control::Reply>(body);
    let _ = serde_json::from_slice::<FollowItem>(body);
    let _ = ApiError::from_json(400, body);
});
