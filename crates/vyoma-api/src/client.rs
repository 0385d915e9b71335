//! The remote client behind `vyoma --endpoint`: sends a [`Command`] to an instance's API
//! and reads the typed [`Reply`] back (so the caller renders it exactly as the console
//! would), follows logs across dropped connections, and reads `/metrics`.
//!
//! HTTPS only trusts the CA from the client config (no system roots: a device's
//! certificate is signed by its own CA). Plain `http://` is refused for anything but
//! loopback, because the token would cross the network in the clear.

use std::time::Duration;

use futures::StreamExt as _;
use vyoma_control::http::{ApiError, FollowItem, KEEPALIVE, Outgoing, follow_request, request_for};
use vyoma_control::{Command, Reply};
use vyoma_lifecycle::LogLine;

use crate::Endpoint;

/// Why a remote command failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The instance refused the request; its message says why.
    #[error("{0}")]
    Api(ApiError),
    /// The instance could not be reached.
    #[error("cannot reach {url}: {why}")]
    Connect {
        /// The URL.
        url: String,
        /// Why, from the HTTP client.
        why: String,
    },
    /// The answer was not what the API sends.
    #[error("unexpected answer from {url}: {why}")]
    Protocol {
        /// The URL.
        url: String,
        /// What was wrong.
        why: String,
    },
    /// The endpoint's settings are unusable.
    #[error("endpoint {name}: {why}")]
    Config {
        /// The endpoint.
        name: String,
        /// What to fix.
        why: String,
    },
    /// The command is answered locally (`help`).
    #[error("`{0}` is not sent to an instance")]
    Local(String),
}

/// Connection settings for one instance.
#[derive(Debug, Clone)]
pub struct Remote {
    name: String,
    url: String,
    token: String,
    http: reqwest::Client,
}

/// The error chain of a reqwest error in one line.
fn why(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

impl Remote {
    /// A client for `endpoint` (named `name` in messages).
    pub fn new(name: &str, endpoint: &Endpoint) -> Result<Remote, ClientError> {
        let config = |why: String| ClientError::Config {
            name: name.to_string(),
            why,
        };
        let url =
            reqwest::Url::parse(&endpoint.url).map_err(|e| config(format!("invalid url `{}`: {e}", endpoint.url)))?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30));
        match url.scheme() {
            "https" => {
                let ca = endpoint.ca.as_deref().ok_or_else(|| {
                    config(format!(
                        "{} is https but the endpoint has no `ca` (the CA certificate from `vyoma image build`'s client config)",
                        endpoint.url
                    ))
                })?;
                let cert = reqwest::Certificate::from_pem(ca.as_bytes())
                    .map_err(|e| config(format!("its `ca` is not a PEM certificate: {}", why(&e))))?;
                builder = builder.add_root_certificate(cert);
            }
            "http" => {
                let loopback = match url.host() {
                    Some(url::Host::Ipv4(a)) => a.is_loopback(),
                    Some(url::Host::Ipv6(a)) => a.is_loopback(),
                    Some(url::Host::Domain(d)) => d == "localhost",
                    None => false,
                };
                if !loopback {
                    return Err(config(format!(
                        "refusing plain http to {}: the token would cross the network in the clear; use https",
                        endpoint.url
                    )));
                }
            }
            other => {
                return Err(config(format!(
                    "unsupported scheme `{other}`: use http (loopback) or https"
                )));
            }
        }
        let http = builder
            .build()
            .map_err(|e| config(format!("cannot set up the HTTP client: {}", why(&e))))?;
        Ok(Remote {
            name: name.to_string(),
            url: endpoint.url.trim_end_matches('/').to_string(),
            token: endpoint.token.clone(),
            http,
        })
    }

    /// The endpoint's name (or URL).
    pub fn name(&self) -> &str {
        &self.name
    }

    async fn send(&self, out: &Outgoing, timeout: Option<Duration>) -> Result<reqwest::Response, ClientError> {
        self.send_with(out, None, timeout).await
    }

    async fn send_with(
        &self,
        out: &Outgoing,
        raw: Option<Vec<u8>>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{}", self.url, out.path_and_query);
        let mut req = match out.method {
            "POST" => self.http.post(&url),
            "PUT" => self.http.put(&url),
            "DELETE" => self.http.delete(&url),
            _ => self.http.get(&url),
        }
        .bearer_auth(&self.token);
        if let Some(b) = &out.body {
            req = req.header("content-type", "application/json").body(b.clone());
        }
        if let Some(bytes) = raw {
            req = req.header("content-type", "application/octet-stream").body(bytes);
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let resp = req.send().await.map_err(|e| ClientError::Connect {
            url: self.url.clone(),
            why: why(&e),
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        Err(match ApiError::from_json(status, &body) {
            Some(e) => ClientError::Api(e),
            None => ClientError::Protocol {
                url: self.url.clone(),
                why: format!("status {status} and a body that is not an API error"),
            },
        })
    }

    /// Runs `cmd` remotely: the reply, and its JSON as the instance sent it.
    pub async fn call(&self, cmd: &Command) -> Result<(Reply, String), ClientError> {
        let out = request_for(cmd).ok_or_else(|| ClientError::Local(format!("{cmd:?}")))?;
        // A wait or a message with an answer may take their time; anything else is quick.
        let timeout = match cmd {
            Command::Wait { timeout, .. } => Some(*timeout + Duration::from_secs(10)),
            Command::Message {
                reply_within: Some(w), ..
            } => Some(*w + Duration::from_secs(10)),
            Command::Shutdown | Command::Logf { .. } => None,
            // The instance compiles the new component first.
            Command::Update { .. } | Command::Deploy { .. } | Command::Remove { .. } => Some(Duration::from_secs(600)),
            _ => Some(Duration::from_secs(30)),
        };
        let resp = self.send(&out, timeout).await?;
        let text = resp.text().await.map_err(|e| ClientError::Connect {
            url: self.url.clone(),
            why: why(&e),
        })?;
        let reply = serde_json::from_str(&text).map_err(|e| ClientError::Protocol {
            url: self.url.clone(),
            why: format!("not a reply: {e}"),
        })?;
        Ok((reply, text))
    }

    /// Uploads `bytes` as the blob named `digest` (their SHA-256, hex): a component an
    /// update is about to name.
    pub async fn put_blob(&self, digest: &str, bytes: Vec<u8>) -> Result<(), ClientError> {
        let out = vyoma_control::http::blob_request(digest);
        self.send_with(&out, Some(bytes), Some(Duration::from_secs(600)))
            .await?;
        Ok(())
    }

    /// The screen (or `app`'s surface) as PNG bytes.
    pub async fn screenshot(&self, app: Option<&str>) -> Result<Vec<u8>, ClientError> {
        let cmd = Command::Screenshot {
            app: app.map(str::to_string),
            path: std::path::PathBuf::new(),
        };
        let out = request_for(&cmd).ok_or_else(|| ClientError::Local("screenshot".into()))?;
        let resp = self.send(&out, Some(Duration::from_secs(30))).await?;
        let png = resp.bytes().await.map_err(|e| ClientError::Connect {
            url: self.url.clone(),
            why: why(&e),
        })?;
        if !png.starts_with(b"\x89PNG") {
            return Err(ClientError::Protocol {
                url: self.url.clone(),
                why: "the screenshot is not a PNG".into(),
            });
        }
        Ok(png.to_vec())
    }

    /// `GET path` as text (`/metrics`).
    pub async fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let out = Outgoing {
            method: "GET",
            path_and_query: path.to_string(),
            body: None,
        };
        let resp = self.send(&out, Some(Duration::from_secs(30))).await?;
        resp.text().await.map_err(|e| ClientError::Connect {
            url: self.url.clone(),
            why: why(&e),
        })
    }

    /// Follows `app`'s log from the start, for `duration` (until the stream ends if
    /// `None`), calling `on_line` for each line once, in order. A dropped connection is
    /// resumed from the last line received, so nothing is lost or repeated; `on_event`
    /// hears about reconnects. Gives up after [`RESUME_FOR`] without a connection.
    pub async fn follow(
        &self,
        app: &str,
        duration: Option<Duration>,
        mut on_line: impl FnMut(&LogLine),
        mut on_event: impl FnMut(FollowEvent),
    ) -> Result<(), ClientError> {
        let deadline = duration.map(|d| tokio::time::Instant::now() + d);
        let mut last: Option<u64> = None;
        let mut failing_since: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            let remaining = match deadline {
                Some(d) => {
                    let now = tokio::time::Instant::now();
                    if now >= d {
                        return Ok(());
                    }
                    Some(d - now)
                }
                None => None,
            };
            let out = follow_request(app, last, remaining);
            let cut = match self.send(&out, None).await {
                Ok(resp) => {
                    failing_since = None;
                    backoff = Duration::from_millis(100);
                    match self.read_follow(resp, &mut last, &mut on_line).await {
                        Ok(()) => return Ok(()),
                        Err(why) => why,
                    }
                }
                // The instance answered: the request itself is wrong (unknown app, token).
                Err(e @ (ClientError::Api(_) | ClientError::Protocol { .. } | ClientError::Config { .. })) => {
                    return Err(e);
                }
                Err(e) => e.to_string(),
            };
            let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() > RESUME_FOR {
                return Err(ClientError::Connect {
                    url: self.url.clone(),
                    why: format!("lost the log stream and could not resume it for {RESUME_FOR:?}: {cut}"),
                });
            }
            on_event(FollowEvent::Reconnecting { why: cut, after: last });
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// Reads one follow stream. `Ok`: it ended properly; `Err`: it was cut (why).
    async fn read_follow(
        &self,
        resp: reqwest::Response,
        last: &mut Option<u64>,
        on_line: &mut impl FnMut(&LogLine),
    ) -> Result<(), String> {
        let mut stream = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            // The server sends a keep-alive every KEEPALIVE while the log is quiet; three
            // missed ones mean the connection is dead even if TCP has not noticed.
            let chunk = match tokio::time::timeout(KEEPALIVE * 3, stream.next()).await {
                Err(_) => return Err("no data or keep-alive for 15 s".into()),
                Ok(None) => return Err("the stream ended without its end line".into()),
                Ok(Some(Err(e))) => return Err(why(&e)),
                Ok(Some(Ok(c))) => c,
            };
            buf.extend_from_slice(&chunk);
            while let Some(nl) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=nl).collect();
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<FollowItem>(line) {
                    Ok(FollowItem::Line(l)) => {
                        // After a resume the server starts after `last`; never repeat.
                        if last.is_none_or(|s| l.seq > s) {
                            *last = Some(l.seq);
                            on_line(&l);
                        }
                    }
                    Ok(FollowItem::End { .. }) => return Ok(()),
                    Err(e) => return Err(format!("a line of the stream is not JSON: {e}")),
                }
            }
        }
    }
}

/// How long [`Remote::follow`] keeps trying to resume a cut stream.
pub const RESUME_FOR: Duration = Duration::from_secs(30);

/// What happened while following.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FollowEvent {
    /// The stream was cut; resuming after line `after`.
    Reconnecting {
        /// Why it was cut.
        why: String,
        /// The last line received.
        after: Option<u64>,
    },
}
