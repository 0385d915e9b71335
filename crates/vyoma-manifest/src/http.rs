//! The HTTP parts of a manifest, as pure values: route patterns (`[[http.routes]]`) with
//! their matching and precedence rules, and outbound rules (`[capabilities.http]
//! outbound`) with theirs. Parsing returns a short reason; the validator turns it into a
//! diagnostic at the value's line and column.
//!
//! Routes follow Spin's well-known shapes: `/exact/path`, `:name` segments, and a trailing
//! `/...` that matches the rest of the path (including nothing). When several routes
//! match, the most specific wins, compared segment by segment from the left: a literal
//! segment beats a `:name` segment, which beats the wildcard; at equal segments a route
//! without the wildcard beats one with it. A route that names a host beats one that does
//! not. So `/api/users/:id` beats `/api/...` for `/api/users/7`, and `/api/...` beats
//! `/...` everywhere under `/api`.

use std::net::IpAddr;

/// Paths under this prefix are the gateway's own (health); no app may route them.
pub const RESERVED_PATH_PREFIX: &str = "/.well-known/vyoma";

/// The host suffix that names another VyomaOS app for outbound chaining:
/// `http://NAME.vyoma.internal/...` goes to app `NAME` through the supervisor.
pub const INTERNAL_SUFFIX: &str = ".vyoma.internal";

/// One segment of a route pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Matches exactly this text.
    Literal(String),
    /// `:name`: matches any one non-empty segment.
    Param(String),
}

/// A parsed route path: segments and whether it ends in the `/...` wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePattern {
    segments: Vec<Segment>,
    wildcard: bool,
    text: String,
}

/// How specific a match is: compare two matches of the same request, greater wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity(Vec<u8>);

const RANK_LITERAL: u8 = 3;
const RANK_PARAM: u8 = 2;
const RANK_WILDCARD: u8 = 1;

impl RoutePattern {
    /// Parses a route path, or says what is wrong with it.
    pub fn parse(s: &str) -> Result<RoutePattern, String> {
        if !s.starts_with('/') {
            return Err("a route starts with `/`".into());
        }
        if s.contains(['?', '#']) {
            return Err("a route is a path only: no `?` query or `#` fragment".into());
        }
        if s.contains(|c: char| c.is_control() || c == ' ') {
            return Err("a route may not contain spaces or control characters".into());
        }
        if s == RESERVED_PATH_PREFIX || s.starts_with(&format!("{RESERVED_PATH_PREFIX}/")) {
            return Err(format!("paths under `{RESERVED_PATH_PREFIX}` belong to the gateway"));
        }
        let mut segments = Vec::new();
        let mut wildcard = false;
        if s != "/" {
            let parts: Vec<&str> = s[1..].split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                let last = i + 1 == parts.len();
                match *part {
                    "" if last => {
                        return Err(
                            "a route does not end in `/` (write `/docs`, or `/docs/...` for everything under it)"
                                .into(),
                        );
                    }
                    "" => return Err("a route has no empty segments (`//`)".into()),
                    "..." if last => wildcard = true,
                    "..." => return Err("`...` may only be the last segment".into()),
                    "." | ".." => return Err(format!("a route may not contain a `{part}` segment")),
                    p if p.starts_with(':') => {
                        let name = &p[1..];
                        let ok = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                        if !ok {
                            return Err(format!(
                                "bad parameter `{p}`: write `:name` with letters, digits and `_`"
                            ));
                        }
                        if segments.iter().any(|s| matches!(s, Segment::Param(n) if n == name)) {
                            return Err(format!("parameter `:{name}` appears twice"));
                        }
                        segments.push(Segment::Param(name.to_string()));
                    }
                    p if p.contains("...") => return Err(format!("bad segment `{p}`: `...` is a whole segment")),
                    p => segments.push(Segment::Literal(p.to_string())),
                }
            }
        }
        Ok(RoutePattern {
            segments,
            wildcard,
            text: s.to_string(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The pattern's segments (without the wildcard).
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether it ends in `/...`.
    pub fn has_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The pattern with parameter names erased: two routes with the same shape match
    /// exactly the same requests, so they conflict.
    pub fn shape(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            match s {
                Segment::Literal(l) => out.push_str(l),
                Segment::Param(_) => out.push(':'),
            }
        }
        if self.wildcard {
            out.push_str("/...");
        }
        if out.is_empty() {
            out.push('/');
        }
        out
    }

    /// How specifically this pattern matches `path` (the request's path, without query),
    /// or `None` if it does not.
    pub fn matches(&self, path: &str) -> Option<Specificity> {
        self.matches_segments(&split_path(path)?)
    }

    /// [`RoutePattern::matches`] on a path already split with [`split_path`] (a router
    /// splits each request's path once, not once per route).
    pub fn matches_segments(&self, parts: &[&str]) -> Option<Specificity> {
        if parts.len() < self.segments.len() || (!self.wildcard && parts.len() != self.segments.len()) {
            return None;
        }
        // Check first, allocate only for a match.
        let fits = self.segments.iter().zip(parts).all(|(seg, part)| match seg {
            Segment::Literal(l) => l == part,
            Segment::Param(_) => !part.is_empty(),
        });
        if !fits {
            return None;
        }
        let mut key = Vec::with_capacity(parts.len() + 1);
        key.extend(self.segments.iter().map(|seg| match seg {
            Segment::Literal(_) => RANK_LITERAL,
            Segment::Param(_) => RANK_PARAM,
        }));
        key.resize(parts.len(), RANK_WILDCARD);
        // At equal segments, the route that matched without its wildcard wins.
        key.push(u8::from(!self.wildcard));
        Some(Specificity(key))
    }

    /// The values of the `:name` segments for a path this pattern matches.
    pub fn params<'p>(&self, path: &'p str) -> Vec<(&str, &'p str)> {
        let parts = path.strip_prefix('/').unwrap_or(path).split('/');
        self.segments
            .iter()
            .zip(parts)
            .filter_map(|(s, p)| match s {
                Segment::Param(n) => Some((n.as_str(), p)),
                Segment::Literal(_) => None,
            })
            .collect()
    }
}

/// A request path's segments (`/` is none; `/a/` is `a` and an empty one), or `None` if
/// it does not start with `/`.
pub fn split_path(path: &str) -> Option<Vec<&str>> {
    let rest = path.strip_prefix('/')?;
    Some(if rest.is_empty() {
        Vec::new()
    } else {
        rest.split('/').collect()
    })
}

impl std::fmt::Display for RoutePattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Which hosts a route answers: any, one name, or every subdomain of one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// `example.com`: exactly this host (any port).
    Exact(String),
    /// `*.example.com`: any host ending in `.example.com`.
    Suffix(String),
}

impl HostPattern {
    /// Parses a route's `host` (lowercased; no port, no scheme).
    pub fn parse(s: &str) -> Result<HostPattern, String> {
        let lower = s.to_ascii_lowercase();
        let (suffix, name) = match lower.strip_prefix("*.") {
            Some(n) => (true, n.to_string()),
            None => (false, lower),
        };
        check_host_name(&name)?;
        Ok(if suffix {
            HostPattern::Suffix(name)
        } else {
            HostPattern::Exact(name)
        })
    }

    /// Whether a request's host (its `Host` header or URI authority, port removed) is
    /// this one.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
            HostPattern::Suffix(s) => {
                // Bytes, not `str` slices: a host that is not ASCII must not split a char.
                let (host, s) = (host.as_bytes(), s.as_bytes());
                host.len() > s.len() + 1
                    && host[host.len() - s.len()..].eq_ignore_ascii_case(s)
                    && host[host.len() - s.len() - 1] == b'.'
            }
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Suffix(s) => write!(f, "*.{s}"),
        }
    }
}

/// A host name: dot-separated labels of letters, digits and `-`, or an IP address.
fn check_host_name(s: &str) -> Result<(), String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if s.is_empty() || s.len() > 253 {
        return Err("a host name has 1 to 253 characters".into());
    }
    for label in s.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "bad host name `{s}`: use labels of letters, digits and `-`, separated by dots"
            ));
        }
    }
    Ok(())
}

/// One route of an app: a path pattern and, optionally, the host it answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The path pattern.
    pub path: RoutePattern,
    /// The host, or `None` for any host.
    pub host: Option<HostPattern>,
}

impl Route {
    /// How specifically this route matches a request for `host` and `path`, or `None`.
    /// A route that names its host beats one that does not.
    pub fn matches(&self, host: &str, path: &str) -> Option<(bool, Specificity)> {
        self.matches_segments(host, &split_path(path)?)
    }

    /// [`Route::matches`] on a path already split with [`split_path`].
    pub fn matches_segments(&self, host: &str, parts: &[&str]) -> Option<(bool, Specificity)> {
        let named = match &self.host {
            Some(h) if !h.matches(host) => return None,
            Some(_) => true,
            None => false,
        };
        Some((named, self.path.matches_segments(parts)?))
    }

    /// Two routes conflict when they would match exactly the same requests.
    pub fn conflicts_with(&self, other: &Route) -> bool {
        self.host == other.host && self.path.shape() == other.path.shape()
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.host {
            Some(h) => write!(f, "{h}{}", self.path),
            None => write!(f, "{}", self.path),
        }
    }
}

/// A scheme an outbound rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemeRule {
    /// `http`.
    Http,
    /// `https`.
    Https,
    /// `*`: either.
    Any,
}

/// A host an outbound rule allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// Exactly this host name or IP address.
    Exact(String),
    /// `*.example.com`: any subdomain of it.
    Suffix(String),
    /// `*`: any host on the network (never another VyomaOS app: chaining is named).
    Any,
    /// `NAME.vyoma.internal`: app `NAME`, through the supervisor.
    App(String),
    /// `*.vyoma.internal`: any app (each still has to accept the caller).
    AnyApp,
}

/// A port an outbound rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRule {
    /// Not written: the scheme's default (80 for http, 443 for https).
    Default,
    /// This port.
    Exact(u16),
    /// `*`: any port.
    Any,
}

/// One entry of `[capabilities.http] outbound`: `SCHEME://HOST[:PORT]`, with `*` for any
/// scheme, host or port, `*.example.com` for subdomains, and `NAME.vyoma.internal` for
/// another app (Spin's `allowed_outbound_hosts` syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRule {
    /// Allowed scheme.
    pub scheme: SchemeRule,
    /// Allowed host.
    pub host: HostRule,
    /// Allowed port.
    pub port: PortRule,
}

/// The destination of an outgoing request, taken from the URL the app built (never from
/// an inbound request's `Host` header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    /// `http` or `https` (anything else is refused before rules are consulted).
    pub https: bool,
    /// The host, lowercase, IPv6 without brackets.
    pub host: &'a str,
    /// The port (the scheme's default when the URL has none).
    pub port: u16,
}

impl OutboundRule {
    /// Parses one outbound rule, or says what is wrong with it.
    pub fn parse(s: &str) -> Result<OutboundRule, String> {
        let (scheme, rest) = s
            .split_once("://")
            .ok_or("write SCHEME://HOST[:PORT], e.g. \"https://api.example.com\"")?;
        let scheme = match scheme {
            "http" => SchemeRule::Http,
            "https" => SchemeRule::Https,
            "*" => SchemeRule::Any,
            other => return Err(format!("unknown scheme `{other}`: use http, https or *")),
        };
        if rest.contains(['/', '?', '#', '@']) {
            return Err(
                "an outbound rule names a host, not a path, query or user: remove what follows the host and port"
                    .into(),
            );
        }
        let (host, port) = split_host_port(rest)?;
        let port = match port {
            None => PortRule::Default,
            Some("*") => PortRule::Any,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => PortRule::Exact(n),
                _ => return Err(format!("bad port `{p}`: use 1 to 65535 or *")),
            },
        };
        let host = host.to_ascii_lowercase();
        let host = if host == "*" {
            HostRule::Any
        } else if host == format!("*{INTERNAL_SUFFIX}") {
            HostRule::AnyApp
        } else if let Some(app) = host.strip_suffix(INTERNAL_SUFFIX) {
            if !crate::validate::is_valid_name(app) {
                return Err(format!("`{app}` is not an app name (kebab-case)"));
            }
            HostRule::App(app.to_string())
        } else if let Some(suffix) = host.strip_prefix("*.") {
            check_host_name(suffix)?;
            HostRule::Suffix(suffix.to_string())
        } else if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let ip: std::net::Ipv6Addr = v6.parse().map_err(|_| format!("bad IPv6 address `{v6}`"))?;
            HostRule::Exact(ip.to_string())
        } else {
            if host.contains('*') {
                return Err("`*` is a whole host, or the first label of one (`*.example.com`)".into());
            }
            if host.contains(':') {
                // `c::a:8080` could be an address and a port or an address alone.
                return Err(format!(
                    "write the IPv6 address `{host}` in brackets, e.g. \"http://[::1]:8080\""
                ));
            }
            check_host_name(&host)?;
            HostRule::Exact(host)
        };
        if matches!(host, HostRule::App(_) | HostRule::AnyApp) && scheme == SchemeRule::Https {
            return Err(
                "apps are called over http (the supervisor carries the request; it never leaves the device)".into(),
            );
        }
        Ok(OutboundRule { scheme, host, port })
    }

    /// Whether this rule allows a request to `d` on the network.
    pub fn allows(&self, d: &Destination<'_>) -> bool {
        let scheme = match self.scheme {
            SchemeRule::Http => !d.https,
            SchemeRule::Https => d.https,
            SchemeRule::Any => true,
        };
        let port = match self.port {
            PortRule::Default => d.port == if d.https { 443 } else { 80 },
            PortRule::Exact(p) => d.port == p,
            PortRule::Any => true,
        };
        let host = match &self.host {
            HostRule::Exact(h) => d.host == h,
            HostRule::Suffix(s) => HostPattern::Suffix(s.clone()).matches(d.host),
            HostRule::Any => !d.host.ends_with(INTERNAL_SUFFIX),
            HostRule::App(_) | HostRule::AnyApp => false,
        };
        scheme && port && host
    }

    /// Whether this rule allows calling app `app` by name.
    pub fn allows_app(&self, app: &str) -> bool {
        match &self.host {
            HostRule::App(a) => a == app,
            HostRule::AnyApp => true,
            _ => false,
        }
    }
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), String> {
    if s.starts_with('[') {
        let end = s.find(']').ok_or("unclosed `[` in an IPv6 host")?;
        let (host, rest) = s.split_at(end + 1);
        return match rest {
            "" => Ok((host, None)),
            r => r
                .strip_prefix(':')
                .map(|p| (host, Some(p)))
                .ok_or_else(|| format!("unexpected `{r}` after the host")),
        };
    }
    if s.is_empty() {
        return Err("the host is missing".into());
    }
    Ok(match s.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    })
}

impl std::fmt::Display for OutboundRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = match self.scheme {
            SchemeRule::Http => "http",
            SchemeRule::Https => "https",
            SchemeRule::Any => "*",
        };
        write!(f, "{scheme}://")?;
        match &self.host {
            HostRule::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostRule::Exact(h) => f.write_str(h)?,
            HostRule::Suffix(s) => write!(f, "*.{s}")?,
            HostRule::Any => f.write_str("*")?,
            HostRule::App(a) => write!(f, "{a}{INTERNAL_SUFFIX}")?,
            HostRule::AnyApp => write!(f, "*{INTERNAL_SUFFIX}")?,
        }
        match self.port {
            PortRule::Default => Ok(()),
            PortRule::Exact(p) => write!(f, ":{p}"),
            PortRule::Any => f.write_str(":*"),
        }
    }
}

#[cfg(test)]
mod tests;
