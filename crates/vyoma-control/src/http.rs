//! The management API's requests as pure data: [`route`] turns an HTTP request (method,
//! path, query, body) into the [`Call`] it asks for, or an [`ApiError`] that says what to
//! fix; [`request_for`] is its inverse, the request the remote client sends for a
//! [`Command`]. No sockets here: the server (`vyoma-api`) reads requests and writes
//! responses, and this module is unit-tested and fuzzed on its own.
//!
//! The endpoints (reference: `docs/api.md`):
//!
//! | method | path | command |
//! |---|---|---|
//! | GET | `/v1/apps` | `ps` |
//! | GET | `/v1/apps/{app}` | `inspect` |
//! | GET | `/v1/apps/{app}/log?last=N` | `log` |
//! | GET | `/v1/apps/{app}/log?follow=true&after=SEQ&duration_ms=N` | `logf` (NDJSON stream) |
//! | POST | `/v1/apps/{app}/start`, `stop`, `kill`, `restart` | the same |
//! | POST | `/v1/apps/{app}/wait` `{"state": "running", "timeout_ms": 30000}` | `wait` (`app` may be `all`) |
//! | POST | `/v1/apps/{app}/message` `{"text": "...", "reply_within_ms": 2000}` | `@app: text` |
//! | PUT | `/v1/blobs/{sha256}` (the bytes) | store a component before `update` |
//! | POST | `/v1/apps/{app}/update` `{"manifest": "...", "component": "SHA256", "force": false, "dry_run": false}` | `update` |
//! | POST | `/v1/apps/{app}/rollback` | `rollback` |
//! | GET | `/v1/apps/{app}/versions` | `versions` |
//! | GET | `/v1/display` | `display` |
//! | POST | `/v1/display/layout` `{"layout": "grid"}` | `layout` |
//! | POST | `/v1/display/focus` `{"app": "clock"}` | `focus` |
//! | POST | `/v1/display/input` `{"app": "paint", "events": [{"pointer": {"x": 10, "y": 10, "phase": "down"}}]}` | `input` |
//! | GET | `/v1/display/screenshot?app=APP` | `screenshot` (the PNG itself) |
//! | POST | `/v1/shutdown` | `shutdown` |
//! | GET | `/metrics` | Prometheus text |
//! | GET | `/healthz`, `/readyz` | probes (no token) |

use std::borrow::Cow;
use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use vyoma_lifecycle::{AppState, wire};

use crate::{Command, DEFAULT_WAIT};

/// Largest request body the API reads (a message of the largest size an inbox accepts by
/// default, JSON-escaped, fits).
pub const MAX_BODY: usize = 256 << 10;

/// Largest blob (`PUT /v1/blobs/{sha256}`): a component.
pub const MAX_BLOB: usize = 256 << 20;

/// The largest body the server reads for `method` on `path` (before routing: a blob's
/// body is far larger than any other).
pub fn body_limit(method: &str, path: &str) -> usize {
    if method == "PUT" && path.starts_with("/v1/blobs/") {
        MAX_BLOB
    } else {
        MAX_BODY
    }
}

/// A request as the server read it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `GET`, `POST`, ...
    pub method: &'a str,
    /// The path, still percent-encoded.
    pub path: &'a str,
    /// The query string without `?` (empty if none).
    pub query: &'a str,
    /// The body.
    pub body: &'a [u8],
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// A console command.
    Command(Command),
    /// Stream an app's log as NDJSON: held lines after `after` (all if `None`), then new ones
    /// as they come, for `duration` or until the client goes.
    Follow {
        /// The app.
        app: String,
        /// The last sequence number the client has; it gets the lines after it.
        after: Option<u64>,
        /// How long to follow.
        duration: Option<Duration>,
    },
    /// Prometheus metrics.
    Metrics,
    /// The screen (or `app`'s surface) as PNG bytes.
    Screenshot {
        /// The app; none: the whole screen.
        app: Option<String>,
    },
    /// Store the request's body as a blob named by its SHA-256 (a component, before an
    /// `update` names it).
    PutBlob {
        /// The SHA-256 the body must have, hex.
        digest: String,
    },
    /// Liveness probe.
    Live,
    /// Readiness probe.
    Ready,
}

impl Call {
    /// Whether the call needs the operator token (everything but the probes).
    pub fn needs_token(&self) -> bool {
        !matches!(self, Call::Live | Call::Ready)
    }
}

/// Whether `path` is a probe, served without a token.
pub fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// A refused request. In JSON: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// A stable, machine-readable code (`unauthorized`, `unknown_app`, `bad_request`, ...).
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "bad_request", message)
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a ApiError,
        }
        serde_json::to_string(&Body { error: self }).unwrap_or_default()
    }

    /// Reads an error body; `None` if it is not one.
    pub fn from_json(status: u16, body: &[u8]) -> Option<ApiError> {
        #[derive(Deserialize)]
        struct Body {
            error: ApiError,
        }
        let mut e = serde_json::from_slice::<Body>(body).ok()?.error;
        e.status = status;
        Some(e)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

/// Query keys that carry credentials: refused, because URLs end up in logs and histories.
const CREDENTIAL_KEYS: [&str; 5] = ["token", "access_token", "bearer", "auth", "authorization"];

/// Whether the query string carries credentials (refused before anything else).
pub fn credentials_in_query(query: &str) -> bool {
    query.split('&').any(|kv| {
        let key = kv.split('=').next().unwrap_or_default();
        let key = percent_decode_str(key).decode_utf8_lossy();
        CREDENTIAL_KEYS.iter().any(|c| key.eq_ignore_ascii_case(c))
    })
}

/// The refusal for credentials in the query string.
pub fn credentials_in_query_error() -> ApiError {
    ApiError::bad(
        "credentials in the URL are refused (URLs end up in logs): send the token in the header `Authorization: Bearer TOKEN`",
    )
}

/// `POST /v1/apps/{app}/wait`'s body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitBody {
    state: AppState,
    #[serde(default, with = "wire::opt_millis", skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<Duration>,
}

/// `POST /v1/apps/{app}/message`'s body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    text: String,
    #[serde(default, with = "wire::opt_millis", skip_serializing_if = "Option::is_none")]
    reply_within_ms: Option<Duration>,
}

/// `POST /v1/display/layout`'s body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutBody {
    layout: String,
}

/// `POST /v1/display/focus`'s body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FocusBody {
    app: String,
}

/// `POST /v1/display/input`'s body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputBody {
    /// The app; none: routed by the display as from a device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app: Option<String>,
    events: Vec<crate::WireInput>,
}

/// Most events in one `POST /v1/display/input`.
pub const MAX_INPUT_EVENTS: usize = 4096;

/// `POST /v1/apps/{app}/update`'s body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    manifest: String,
    component: String,
    #[serde(flatten)]
    options: crate::UpdateOptions,
}

/// `POST /v1/apps`'s body.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeployBody {
    manifest: String,
    component: String,
    #[serde(default)]
    dry_run: bool,
}

/// Whether `s` is a SHA-256 in hex, as blobs are named.
fn is_digest(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Decoded query parameters, checked against what the endpoint takes.
struct Query<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Query<'a> {
    fn parse(query: &'a str, endpoint: &str, allowed: &[&str]) -> Result<Query<'a>, ApiError> {
        let mut pairs = Vec::new();
        for kv in query.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let decode = |s: &'a str| {
                percent_decode_str(s)
                    .decode_utf8()
                    .map_err(|_| ApiError::bad(format!("query parameter `{}` is not UTF-8", s.escape_debug())))
            };
            let k = decode(k)?;
            if !allowed.contains(&k.as_ref()) {
                let takes = if allowed.is_empty() {
                    "it takes none".to_string()
                } else {
                    format!("it takes {}", allowed.join(", "))
                };
                return Err(ApiError::bad(format!(
                    "unknown query parameter `{}` for {endpoint}: {takes}",
                    k.escape_debug()
                )));
            }
            if pairs.iter().any(|(pk, _)| *pk == k) {
                return Err(ApiError::bad(format!(
                    "query parameter `{k}` given twice for {endpoint}"
                )));
            }
            pairs.push((k, decode(v)?));
        }
        Ok(Query { pairs })
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_ref())
    }

    fn number(&self, key: &str, endpoint: &str) -> Result<Option<u64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::bad(format!(
                        "query parameter `{key}` of {endpoint} must be a whole number, not `{}`",
                        v.escape_debug()
                    ))
                })
            })
            .transpose()
    }

    fn flag(&self, key: &str, endpoint: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("false") => Ok(false),
            Some("" | "true") => Ok(true),
            Some(v) => Err(ApiError::bad(format!(
                "query parameter `{key}` of {endpoint} must be true or false, not `{}`",
                v.escape_debug()
            ))),
        }
    }
}

fn json_body<'de, T: Deserialize<'de>>(body: &'de [u8], endpoint: &str, example: &str) -> Result<T, ApiError> {
    if body.len() > MAX_BODY {
        return Err(ApiError::new(
            413,
            "too_large",
            format!(
                "request body of {} bytes is over the limit of {MAX_BODY} bytes",
                body.len()
            ),
        ));
    }
    // serde's message quotes the body (`unknown variant `ru\nni``): one line, escaped.
    serde_json::from_slice(body).map_err(|e| {
        let message = format!("invalid JSON body for {endpoint}: {e}; send e.g. {example}");
        ApiError::bad(crate::render::printable(message.as_bytes()))
    })
}

fn no_body(body: &[u8], endpoint: &str) -> Result<(), ApiError> {
    let trimmed = body.trim_ascii();
    if trimmed.is_empty() || trimmed == b"{}" {
        Ok(())
    } else {
        Err(ApiError::bad(format!("{endpoint} takes no body (or `{{}}`)")))
    }
}

/// What `req` asks for, or why it is refused. Credentials in the query and the token are
/// checked by the caller first ([`credentials_in_query`], [`Call::needs_token`] via
/// [`is_probe`]).
pub fn route(req: &Request<'_>) -> Result<Call, ApiError> {
    let segments: Vec<Cow<'_, str>> = req
        .path
        .strip_prefix('/')
        .ok_or_else(|| ApiError::bad("the path must start with `/`"))?
        .split('/')
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .map_err(|_| ApiError::bad("the path is not UTF-8 once percent-decoded"))
        })
        .collect::<Result<_, _>>()?;
    let segs: Vec<&str> = segments.iter().map(|s| s.as_ref()).collect();
    let method = req.method;
    // The path as messages quote it: escaped, so a message stays one printable line.
    let shown = req.path.escape_debug().to_string();
    let endpoint = format!("{method} {shown}");
    let only = |allowed: &str| -> Result<(), ApiError> {
        if method == allowed {
            Ok(())
        } else {
            Err(ApiError::new(
                405,
                "method_not_allowed",
                format!("{shown} takes {allowed}, not {method}"),
            ))
        }
    };
    let query = |allowed: &[&str]| Query::parse(req.query, &endpoint, allowed);
    let app = |name: &str| -> Result<String, ApiError> {
        if name.is_empty() {
            Err(ApiError::bad(format!("empty app name in {shown}")))
        } else {
            Ok(name.to_string())
        }
    };
    let cmd = |c: Command| Ok(Call::Command(c));
    match segs.as_slice() {
        ["healthz"] => {
            only("GET")?;
            query(&[])?;
            Ok(Call::Live)
        }
        ["readyz"] => {
            only("GET")?;
            query(&[])?;
            Ok(Call::Ready)
        }
        ["metrics"] => {
            only("GET")?;
            query(&[])?;
            Ok(Call::Metrics)
        }
        ["v1", "apps"] if method == "POST" => {
            query(&[])?;
            let b: DeployBody = json_body(
                req.body,
                &endpoint,
                r#"{"manifest": "manifest_version = 1 ...", "component": "SHA256 of a blob PUT to /v1/blobs/", "dry_run": false}"#,
            )?;
            if !is_digest(&b.component) {
                return Err(ApiError::bad(format!(
                    "{endpoint}: `component` must be the SHA-256 of a blob uploaded with PUT /v1/blobs/SHA256, 64 lowercase hex digits"
                )));
            }
            cmd(Command::Deploy {
                source: crate::UpdateSource::Upload {
                    manifest: b.manifest,
                    component: b.component,
                },
                options: crate::UpdateOptions {
                    force: false,
                    dry_run: b.dry_run,
                },
            })
        }
        ["v1", "apps"] => {
            if method != "GET" {
                return Err(ApiError::new(
                    405,
                    "method_not_allowed",
                    format!("{shown} takes GET (the apps) or POST (deploy one), not {method}"),
                ));
            }
            query(&[])?;
            cmd(Command::Ps)
        }
        ["v1", "display"] => {
            only("GET")?;
            query(&[])?;
            cmd(Command::Display)
        }
        ["v1", "display", "layout"] => {
            only("POST")?;
            query(&[])?;
            let b: LayoutBody = json_body(req.body, &endpoint, r#"{"layout": "grid"}"#)?;
            cmd(Command::Layout(b.layout.parse().map_err(|e: String| {
                ApiError::bad(crate::render::printable(e.as_bytes()))
            })?))
        }
        ["v1", "display", "focus"] => {
            only("POST")?;
            query(&[])?;
            let b: FocusBody = json_body(req.body, &endpoint, r#"{"app": "clock"}"#)?;
            cmd(Command::Focus(app(&b.app)?))
        }
        ["v1", "display", "input"] => {
            only("POST")?;
            query(&[])?;
            let b: InputBody = json_body(
                req.body,
                &endpoint,
                r#"{"app": "paint", "events": [{"pointer": {"x": 10, "y": 10, "phase": "down", "button": 0}}]}"#,
            )?;
            if b.events.is_empty() || b.events.len() > MAX_INPUT_EVENTS {
                return Err(ApiError::bad(format!(
                    "{endpoint}: send 1 to {MAX_INPUT_EVENTS} events, not {}",
                    b.events.len()
                )));
            }
            let events = b
                .events
                .into_iter()
                .map(vyoma_display::Input::try_from)
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| ApiError::bad(format!("{endpoint}: {}", crate::render::printable(e.as_bytes()))))?;
            cmd(Command::Input {
                app: b.app.as_deref().map(app).transpose()?,
                events,
            })
        }
        ["v1", "display", "screenshot"] => {
            only("GET")?;
            let q = query(&["app"])?;
            Ok(Call::Screenshot {
                app: q.get("app").map(app).transpose()?,
            })
        }
        ["v1", "shutdown"] => {
            only("POST")?;
            query(&[])?;
            no_body(req.body, &endpoint)?;
            cmd(Command::Shutdown)
        }
        ["v1", "apps", name] if method == "DELETE" => {
            let q = query(&["purge"])?;
            no_body(req.body, &endpoint)?;
            cmd(Command::Remove {
                app: app(name)?,
                purge: q.flag("purge", &endpoint)?,
            })
        }
        ["v1", "apps", name] => {
            if method != "GET" {
                return Err(ApiError::new(
                    405,
                    "method_not_allowed",
                    format!("{shown} takes GET (inspect) or DELETE (remove), not {method}"),
                ));
            }
            query(&[])?;
            cmd(Command::Inspect(app(name)?))
        }
        ["v1", "apps", name, "log"] => {
            only("GET")?;
            let q = query(&["last", "follow", "after", "duration_ms"])?;
            let app = app(name)?;
            if q.flag("follow", &endpoint)? {
                if q.get("last").is_some() {
                    return Err(ApiError::bad(format!(
                        "{endpoint}: `last` is for a one-off read; with `follow`, use `after=SEQ` to resume"
                    )));
                }
                Ok(Call::Follow {
                    app,
                    after: q.number("after", &endpoint)?,
                    duration: q.number("duration_ms", &endpoint)?.map(Duration::from_millis),
                })
            } else {
                if q.get("after").is_some() || q.get("duration_ms").is_some() {
                    return Err(ApiError::bad(format!(
                        "{endpoint}: `after` and `duration_ms` need `follow=true`"
                    )));
                }
                let last = q
                    .number("last", &endpoint)?
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
                cmd(Command::Log { app, last })
            }
        }
        ["v1", "apps", name, action @ ("start" | "stop" | "kill" | "restart")] => {
            only("POST")?;
            query(&[])?;
            no_body(req.body, &endpoint)?;
            let a = app(name)?;
            cmd(match *action {
                "start" => Command::Start(a),
                "stop" => Command::Stop(a),
                "kill" => Command::Kill(a),
                _ => Command::Restart(a),
            })
        }
        ["v1", "blobs", digest] => {
            only("PUT")?;
            query(&[])?;
            if !is_digest(digest) {
                return Err(ApiError::bad(format!(
                    "{shown}: name the blob by the SHA-256 of its bytes, 64 lowercase hex digits"
                )));
            }
            Ok(Call::PutBlob {
                digest: digest.to_string(),
            })
        }
        ["v1", "apps", name, "update"] => {
            only("POST")?;
            query(&[])?;
            let b: UpdateBody = json_body(
                req.body,
                &endpoint,
                r#"{"manifest": "manifest_version = 1 ...", "component": "SHA256 of a blob PUT to /v1/blobs/", "force": false, "dry_run": false}"#,
            )?;
            if !is_digest(&b.component) {
                return Err(ApiError::bad(format!(
                    "{endpoint}: `component` must be the SHA-256 of a blob uploaded with PUT /v1/blobs/SHA256, 64 lowercase hex digits"
                )));
            }
            cmd(Command::Update {
                app: app(name)?,
                source: crate::UpdateSource::Upload {
                    manifest: b.manifest,
                    component: b.component,
                },
                options: b.options,
            })
        }
        ["v1", "apps", name, "rollback"] => {
            only("POST")?;
            query(&[])?;
            no_body(req.body, &endpoint)?;
            cmd(Command::Rollback(app(name)?))
        }
        ["v1", "apps", name, "versions"] => {
            only("GET")?;
            query(&[])?;
            cmd(Command::Versions(app(name)?))
        }
        ["v1", "apps", name, "wait"] => {
            only("POST")?;
            query(&[])?;
            let b: WaitBody = json_body(req.body, &endpoint, r#"{"state": "running", "timeout_ms": 30000}"#)?;
            cmd(Command::Wait {
                app: app(name)?,
                state: b.state,
                timeout: b.timeout_ms.unwrap_or(DEFAULT_WAIT),
            })
        }
        ["v1", "apps", name, "message"] => {
            only("POST")?;
            query(&[])?;
            let b: MessageBody = json_body(req.body, &endpoint, r#"{"text": "hello", "reply_within_ms": 2000}"#)?;
            cmd(Command::Message {
                to: app(name)?,
                text: b.text,
                reply_within: b.reply_within_ms,
            })
        }
        _ => Err(ApiError::new(
            404,
            "not_found",
            format!("no endpoint {shown}; the API's endpoints are listed in docs/api.md"),
        )),
    }
}

/// One line of a follow stream (`GET /v1/apps/{app}/log?follow=true`, NDJSON): a log line,
/// or the last line, saying why the stream ended (`{"end": "duration"}`). Empty lines are
/// keep-alives, sent while the log is quiet so a client can tell a quiet log from a dead
/// connection. A stream that stops without an `end` line was cut: the client reconnects
/// with `after` set to the last `seq` it has, and loses and repeats nothing (lines the
/// app's log dropped meanwhile show as a jump in `seq`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FollowItem {
    /// A log line.
    Line(vyoma_lifecycle::LogLine),
    /// The end of the stream.
    End {
        /// Why it ended: `duration` (the follow's duration passed), `shutdown`.
        end: String,
    },
}

/// How often a follow stream sends a keep-alive while the log is quiet.
pub const KEEPALIVE: Duration = Duration::from_secs(5);

/// A request the client sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// `GET`, `POST` or `PUT`.
    pub method: &'static str,
    /// Path and query, percent-encoded.
    pub path_and_query: String,
    /// The JSON body, for POSTs that take one.
    pub body: Option<String>,
}

/// Characters escaped in a path segment: everything but unreserved characters.
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|')
    .add(b'[')
    .add(b']')
    .add(b'&')
    .add(b'=')
    .add(b'+')
    .add(b';');

fn app_path(app: &str, rest: &str) -> String {
    let name = utf8_percent_encode(app, SEGMENT);
    if rest.is_empty() {
        format!("/v1/apps/{name}")
    } else {
        format!("/v1/apps/{name}/{rest}")
    }
}

/// The request for `cmd`; `None` for the commands the client answers itself (`help`, a
/// blank line), and for an `update` from a folder (the client uploads the component with
/// [`blob_request`] and sends the update as an upload). `logf` becomes a follow from the start of the log; the client resumes with
/// [`follow_request`].
pub fn request_for(cmd: &Command) -> Option<Outgoing> {
    let get = |p: String| Outgoing {
        method: "GET",
        path_and_query: p,
        body: None,
    };
    let post = |p: String, body: Option<String>| Outgoing {
        method: "POST",
        path_and_query: p,
        body,
    };
    Some(match cmd {
        Command::Nothing | Command::Help => return None,
        Command::Ps => get("/v1/apps".into()),
        Command::Inspect(a) => get(app_path(a, "")),
        Command::Log { app, last } => get(match last {
            Some(n) => format!("{}?last={n}", app_path(app, "log")),
            None => app_path(app, "log"),
        }),
        Command::Logf { app, duration } => follow_request(app, None, *duration),
        Command::Start(a) => post(app_path(a, "start"), None),
        Command::Stop(a) => post(app_path(a, "stop"), None),
        Command::Kill(a) => post(app_path(a, "kill"), None),
        Command::Restart(a) => post(app_path(a, "restart"), None),
        Command::Wait { app, state, timeout } => post(
            app_path(app, "wait"),
            serde_json::to_string(&WaitBody {
                state: *state,
                timeout_ms: Some(*timeout),
            })
            .ok(),
        ),
        Command::Message { to, text, reply_within } => post(
            app_path(to, "message"),
            serde_json::to_string(&MessageBody {
                text: text.clone(),
                reply_within_ms: *reply_within,
            })
            .ok(),
        ),
        Command::Shutdown => post("/v1/shutdown".into(), None),
        Command::Update {
            app,
            source: crate::UpdateSource::Upload { manifest, component },
            options,
        } => post(
            app_path(app, "update"),
            serde_json::to_string(&UpdateBody {
                manifest: manifest.clone(),
                component: component.clone(),
                options: *options,
            })
            .ok(),
        ),
        Command::Update {
            source: crate::UpdateSource::Folder(_),
            ..
        } => return None,
        Command::Rollback(a) => post(app_path(a, "rollback"), None),
        Command::Versions(a) => get(app_path(a, "versions")),
        Command::Deploy {
            source: crate::UpdateSource::Upload { manifest, component },
            options,
        } => post(
            "/v1/apps".into(),
            serde_json::to_string(&DeployBody {
                manifest: manifest.clone(),
                component: component.clone(),
                dry_run: options.dry_run,
            })
            .ok(),
        ),
        Command::Deploy {
            source: crate::UpdateSource::Folder(_),
            ..
        } => return None,
        Command::Display => get("/v1/display".into()),
        Command::Layout(l) => post(
            "/v1/display/layout".into(),
            serde_json::to_string(&LayoutBody { layout: l.to_string() }).ok(),
        ),
        Command::Focus(a) => post(
            "/v1/display/focus".into(),
            serde_json::to_string(&FocusBody { app: a.clone() }).ok(),
        ),
        Command::Input { app, events } => post(
            "/v1/display/input".into(),
            serde_json::to_string(&InputBody {
                app: app.clone(),
                events: events.iter().map(crate::WireInput::from).collect(),
            })
            .ok(),
        ),
        Command::Screenshot { app, .. } => get(match app {
            Some(a) => format!("/v1/display/screenshot?app={}", utf8_percent_encode(a, SEGMENT)),
            None => "/v1/display/screenshot".into(),
        }),
        Command::Remove { app, purge } => Outgoing {
            method: "DELETE",
            path_and_query: if *purge {
                format!("{}?purge=true", app_path(app, ""))
            } else {
                app_path(app, "")
            },
            body: None,
        },
    })
}

/// The request that stores a blob of the given SHA-256 (hex); its body is the bytes.
pub fn blob_request(digest: &str) -> Outgoing {
    Outgoing {
        method: "PUT",
        path_and_query: format!("/v1/blobs/{}", utf8_percent_encode(digest, SEGMENT)),
        body: None,
    }
}

/// The request that follows `app`'s log from after line `after` (from the start if
/// `None`), for `duration` (until the client goes if `None`).
pub fn follow_request(app: &str, after: Option<u64>, duration: Option<Duration>) -> Outgoing {
    let mut p = format!("{}?follow=true", app_path(app, "log"));
    if let Some(a) = after {
        p.push_str(&format!("&after={a}"));
    }
    if let Some(d) = duration {
        p.push_str(&format!("&duration_ms={}", d.as_millis()));
    }
    Outgoing {
        method: "GET",
        path_and_query: p,
        body: None,
    }
}

#[cfg(test)]
mod tests;
